//! Tests of the SPOS space.

use super::*;
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::laws;
use crate::test_support::{
    chain_rejects_brackets, chain_trailing_word, chain_wrong_count, check_all_laws,
    check_small_laws, config_field, parse_error, rejects_blank,
};
use crate::{Canonicalize, Encode, Enumerable, Neighborhood, SearchSpace, TextFormat, ToGraph};

fn searched() -> SposArch {
    SposArch::from_indices(&SPOS_SEARCHED).unwrap()
}

const SEARCHED_TEXT: &str = "shufflenet_7x7 shufflenet_5x5 shufflenet_3x3 shufflenet_5x5 \
shufflenet_7x7 shufflenet_3x3 shufflenet_7x7 shufflenet_3x3 \
shufflenet_7x7 shufflenet_3x3 shufflenet_7x7 xception \
shufflenet_3x3 shufflenet_3x3 shufflenet_3x3 shufflenet_3x3 \
xception shufflenet_7x7 xception xception";

#[test]
fn laws_hold() {
    check_all_laws(&SposSpace::default());
}

#[test]
fn small_configuration_keeps_the_laws_and_enumerates_fully() {
    let s = SposSpace::new(SposConfig {
        stem_channels: 8,
        stage_repeats: vec![2, 1],
        stage_channels: vec![16, 32],
        last_channels: 64,
    })
    .unwrap();
    assert_eq!(s.size(), 64);
    let all: Vec<_> = s.iter().collect();
    let set: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(set.len(), 64);
    for (i, a) in all.iter().enumerate() {
        assert_eq!(s.index_of(a).unwrap(), i as u128);
    }
    let canon: std::collections::HashSet<_> = all.iter().map(|a| s.canonical(a).unwrap()).collect();
    assert_eq!(canon.len(), 64, "no two choice lists are equivalent");
    check_small_laws(&s, 1);
    laws::check_text(&s, 1, 50).unwrap();
}

#[test]
fn default_layers_match_the_repository() {
    let s = SposSpace::default();
    assert_eq!(s.num_layers(), 20);
    assert_eq!(s.size(), 4u128.pow(20));
    assert_eq!(s.encoding_len(), 80);
    let l = s.layers();
    // The first layer of each stage: input and output channels, hidden channels; stride 2.
    let firsts = [
        (16, 64, 32),
        (64, 160, 80),
        (160, 320, 160),
        (320, 640, 320),
    ];
    let found = l.iter().filter(|l| l.index == 0);
    assert_eq!(found.clone().count(), firsts.len());
    for (stage, (layer, (i, o, mid))) in found.zip(firsts).enumerate() {
        assert_eq!(layer.stage, stage);
        assert_eq!(layer.stride, 2);
        assert_eq!(
            (layer.in_channels, layer.out_channels, layer.mid_channels),
            (i, o, mid)
        );
    }
    assert!(
        l.iter()
            .filter(|l| l.index > 0)
            .all(|l| l.stride == 1 && l.in_channels == l.out_channels)
    );
    assert_eq!(l.iter().filter(|l| l.stage == 2).count(), 8);
    assert_eq!(s.config().last_channels, 1024);
    assert_eq!(s.config().stem_channels, 16);
}

#[test]
fn published_architecture_round_trips() {
    let s = SposSpace::default();
    let a = searched();
    s.validate(&a).unwrap();
    assert_eq!(s.to_text(&a), SEARCHED_TEXT);
    assert_eq!(s.parse(SEARCHED_TEXT).unwrap(), a);
    assert_eq!(a.to_indices(), SPOS_SEARCHED);
    assert_eq!(a.choices[11], SposChoice::Xception);
    assert_eq!(s.arch_at(s.index_of(&a).unwrap()).unwrap(), a);
    assert_eq!(s.canonical(&a).unwrap().as_str(), SEARCHED_TEXT);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        format!("\"{SEARCHED_TEXT}\"")
    );
    let g = s.graph(&a).unwrap();
    assert_eq!(g.labels.len(), 22);
    assert_eq!(g.labels[1], "shufflenet_7x7");
    assert_eq!(g.labels[21], "output");
    assert_eq!(g.edges, (0..21).map(|i| (i, i + 1)).collect::<Vec<_>>());
}

#[test]
fn indices_helpers() {
    assert_eq!(SposChoice::ALL.map(|c| c.index()), [0, 1, 2, 3]);
    assert_eq!(SposChoice::from_index(3), Some(SposChoice::Xception));
    assert_eq!(SposChoice::from_index(4), None);
    assert_eq!(SposChoice::ALL.map(|c| c.kernel()), [3, 5, 7, 3]);
    let e = SposArch::from_indices(&[0, 1, 4]).unwrap_err();
    assert!(matches!(e, SpaceError::InvalidArch { .. }));
    assert!(e.to_string().contains("layer 2"));
    assert_eq!(SposArch::from_indices(&[]).unwrap().choices.len(), 0);
    assert_eq!(
        "xception".parse::<SposChoice>().unwrap(),
        SposChoice::Xception
    );
    assert_eq!(
        serde_json::to_string(&SposChoice::Shufflenet5x5).unwrap(),
        "\"shufflenet_5x5\""
    );
}

#[test]
fn canonical_distinguishes_different_lists() {
    let s = SposSpace::default();
    let a = searched();
    for n in s.neighbors(&a).unwrap() {
        assert_ne!(s.canonical(&n).unwrap(), s.canonical(&a).unwrap());
    }
    assert_eq!(s.neighbors(&a).unwrap().len(), 60);
}

#[test]
fn enumeration_order() {
    let s = SposSpace::default();
    assert!(
        s.arch_at(0)
            .unwrap()
            .choices
            .iter()
            .all(|&c| c == SposChoice::Shufflenet3x3)
    );
    assert_eq!(s.arch_at(3).unwrap().choices[0], SposChoice::Xception);
    assert_eq!(s.arch_at(4).unwrap().choices[1], SposChoice::Shufflenet5x5);
    assert!(
        s.arch_at(s.size() - 1)
            .unwrap()
            .choices
            .iter()
            .all(|&c| c == SposChoice::Xception)
    );
    assert!(matches!(
        s.arch_at(s.size()),
        Err(SpaceError::IndexOutOfRange { .. })
    ));
}

#[test]
fn encoding_is_one_hot() {
    let s = SposSpace::default();
    let e = s.encode(&searched()).unwrap();
    for (i, chunk) in e.chunks(4).enumerate() {
        assert_eq!(chunk[SPOS_SEARCHED[i]], 1.0);
        assert_eq!(chunk.iter().sum::<f32>(), 1.0);
    }
}

fn parse_err(text: &str) -> ParseError {
    parse_error(SposSpace::default().parse(text))
}

#[test]
fn unknown_op_names_token_and_position() {
    let text = SEARCHED_TEXT.replacen("shufflenet_5x5", "shufflenet_9x9", 1);
    let e = parse_err(&text);
    let pos = SEARCHED_TEXT.find("shufflenet_5x5").unwrap();
    assert_eq!((e.position, e.token.as_str()), (pos, "shufflenet_9x9"));
    match &e.kind {
        ParseErrorKind::UnknownOp { known } => assert_eq!(known.len(), 4),
        k => panic!("{k:?}"),
    }
    assert!(e.to_string().contains("xception"));
    let e = "xception Xception".parse::<SposArch>().unwrap_err();
    assert_eq!((e.position, e.token.as_str()), (9, "Xception"));
}

#[test]
fn wrong_count_names_position() {
    chain_wrong_count(&SposSpace::default(), SEARCHED_TEXT, 20, "xception");
    let mut a = searched();
    a.choices.push(SposChoice::Xception);
    assert!(matches!(
        SposSpace::default().validate(&a),
        Err(SpaceError::InvalidArch { .. })
    ));
}

#[test]
fn trailing_text_is_reported() {
    let e = parse_err(&format!("{SEARCHED_TEXT} # comment"));
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }), "{e}");
    assert_eq!(
        (e.position, e.token.as_str()),
        (SEARCHED_TEXT.len() + 1, "#")
    );
    chain_trailing_word(&SposSpace::default(), SEARCHED_TEXT, "done");
}

#[test]
fn brackets_are_not_part_of_the_format() {
    // The repository's tuple form is read with `from_indices`, not as text.
    let e = parse_err("(2, 1, 0)");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!((e.position, e.token.as_str()), (0, "("));
    chain_rejects_brackets(&SposSpace::default(), SEARCHED_TEXT);
}

#[test]
fn empty_input_is_reported() {
    rejects_blank(&SposSpace::default());
}

#[test]
fn invalid_configs_name_the_field() {
    let with = |change: fn(&mut SposConfig)| {
        let mut c = SposConfig::default();
        change(&mut c);
        SposSpace::new(c)
    };
    let cases = [
        (with(|c| c.stem_channels = 0), "stem_channels"),
        (with(|c| c.last_channels = 0), "last_channels"),
        (
            with(|c| {
                c.stage_repeats = vec![];
                c.stage_channels = vec![];
            }),
            "stage_repeats",
        ),
        (with(|c| c.stage_repeats = vec![4, 4, 8]), "stage_channels"),
        (
            with(|c| c.stage_repeats = vec![4, 0, 8, 4]),
            "stage_repeats",
        ),
        (
            with(|c| c.stage_channels = vec![64, 162, 320, 640]),
            "stage_channels",
        ),
        (
            with(|c| c.stage_channels = vec![64, 0, 320, 640]),
            "stage_channels",
        ),
        (
            with(|c| c.stage_channels = vec![64, 64, 320, 640]),
            "stage_channels",
        ),
        (with(|c| c.stem_channels = 64), "stage_channels"),
    ];
    for (result, field) in cases {
        assert_eq!(config_field(result), field);
    }
    assert_eq!(
        SposSpace::new(SposConfig::default()).unwrap(),
        SposSpace::default()
    );
}
