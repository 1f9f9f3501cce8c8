//! Tests of the ProxylessNAS space.

use rand::SeedableRng;

use super::*;
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::laws;
use crate::test_support::{
    chain_rejects_brackets, chain_trailing_word, chain_wrong_count, check_all_laws,
    check_small_laws, config_field, parse_error, rejects_blank,
};
use crate::{
    Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, TextFormat, ToGraph,
};

fn space() -> ProxylessSpace {
    ProxylessSpace::default()
}

#[test]
fn laws_hold() {
    check_all_laws(&space());
}

#[test]
fn other_configurations_keep_the_laws() {
    let cifar = ProxylessSpace::cifar();
    assert_eq!(cifar.num_layers(), 21);
    assert_eq!(cifar.layers()[0].stride, 1);
    laws::check_sample(&cifar, 1, 50).unwrap();
    check_small_laws(&cifar, 1);

    let no_zero = ProxylessSpace::new(ProxylessConfig {
        allow_zero: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(no_zero.size(), 6u128.pow(21));
    assert_eq!(no_zero.encoding_len(), 21 * 6);
    check_small_laws(&no_zero, 2);
    assert!(no_zero.parse(PROXYLESS_GPU).is_err());

    // A single choice per layer: nothing to mutate.
    let single = ProxylessSpace::new(ProxylessConfig {
        stages: vec![Stage {
            width: 24,
            depth: 2,
            stride: 2,
        }],
        kernels: vec![3],
        expansions: vec![6],
        allow_zero: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(single.size(), 1);
    let only = single.arch_at(0).unwrap();
    assert!(matches!(
        single.mutate(&only, &mut rand::rngs::ChaCha8Rng::seed_from_u64(0)),
        Err(SpaceError::NoNeighbor { .. })
    ));
    assert!(matches!(
        single.neighbors(&only),
        Err(SpaceError::NoNeighbor { .. })
    ));
}

#[test]
fn default_layers_match_the_search_code() {
    let s = space();
    let layers = s.layers();
    assert_eq!(layers.len(), 21);
    // First layer of each stage: (in, out, stride), never skippable.
    let firsts: Vec<_> = layers
        .iter()
        .filter(|l| l.index == 0)
        .map(|l| {
            (
                l.stage,
                l.in_channels,
                l.out_channels,
                l.stride,
                l.skippable,
            )
        })
        .collect();
    assert_eq!(
        firsts,
        vec![
            (0, 16, 24, 2, false),
            (1, 24, 40, 2, false),
            (2, 40, 80, 2, false),
            (3, 80, 96, 1, false),
            (4, 96, 192, 2, false),
            (5, 192, 320, 1, false),
        ]
    );
    assert!(
        layers
            .iter()
            .filter(|l| l.index > 0)
            .all(|l| l.skippable && l.stride == 1 && l.in_channels == l.out_channels)
    );
    assert_eq!(layers.iter().filter(|l| l.skippable).count(), 15);
    assert_eq!(
        s.ops().iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        [
            "3x3_MBConv3",
            "3x3_MBConv6",
            "5x5_MBConv3",
            "5x5_MBConv6",
            "7x7_MBConv3",
            "7x7_MBConv6"
        ]
    );
    assert_eq!(s.layer_choices(1).last(), Some(&MbConvChoice::Zero));
    assert_eq!(s.layer_choices(0).len(), 6);
    assert!(s.layer_choices(21).is_empty());
    assert_eq!(s.size(), 6u128.pow(6) * 7u128.pow(15));
    assert_eq!(s.encoding_len(), 147);
    let c = s.config();
    assert_eq!(
        (
            c.stem_channels,
            c.stem_stride,
            c.first_block_channels,
            c.feature_mix_channels
        ),
        (32, 2, 16, 1280)
    );
}

#[test]
fn published_architectures_parse_and_round_trip() {
    let s = space();
    for text in [PROXYLESS_GPU, PROXYLESS_MOBILE, PROXYLESS_CPU] {
        let a = s.parse(text).unwrap();
        assert_eq!(s.to_text(&a), text);
        assert_eq!(a.to_string().parse::<ProxylessArch>().unwrap(), a);
        let i = s.index_of(&a).unwrap();
        assert_eq!(s.arch_at(i).unwrap(), a);
    }
    let gpu = s.parse(PROXYLESS_GPU).unwrap();
    assert_eq!(gpu.layers.iter().filter(|c| c.is_zero()).count(), 8);
    assert_eq!(gpu.layers[20], MbConvChoice::mb_conv(7, 6));
    assert_eq!(
        s.canonical(&gpu).unwrap().as_str(),
        "5x5_MBConv3 | 7x7_MBConv3 3x3_MBConv3 | 7x7_MBConv6 5x5_MBConv3 | \
         5x5_MBConv6 3x3_MBConv3 5x5_MBConv3 | 7x7_MBConv6 7x7_MBConv6 7x7_MBConv6 5x5_MBConv6 | 7x7_MBConv6"
    );
    let g = s.graph(&gpu).unwrap();
    assert_eq!(g.labels.len(), 21 - 8 + 2);
    assert_eq!(g.labels[1], "5x5_MBConv3");
    assert_eq!(g.labels[2], "7x7_MBConv3");
    assert_eq!(g.edges.len(), g.labels.len() - 1);
    let mobile = s.parse(PROXYLESS_MOBILE).unwrap();
    assert_eq!(mobile.layers.iter().filter(|c| c.is_zero()).count(), 2);
    let cpu = s.parse(PROXYLESS_CPU).unwrap();
    assert_eq!(cpu.layers[9], MbConvChoice::Zero);
}

#[test]
fn canonical_form_moves_zeros_within_a_stage_only() {
    let s = space();
    let gpu = s.parse(PROXYLESS_GPU).unwrap();
    // Stage 1 (layers 4..8) is [7x7_MBConv3, zero, zero, 3x3_MBConv3]: moving the zeros to
    // the end of the stage is the same network.
    let mut moved = gpu.clone();
    moved.layers[5] = MbConvChoice::mb_conv(3, 3);
    moved.layers[7] = MbConvChoice::Zero;
    assert_ne!(moved, gpu);
    assert_eq!(s.canonical(&moved).unwrap(), s.canonical(&gpu).unwrap());
    assert_eq!(s.graph(&moved).unwrap(), s.graph(&gpu).unwrap());
    // Reordering two different non-zero layers is a different network.
    let mut swapped = gpu.clone();
    swapped.layers.swap(16, 19);
    assert_ne!(s.canonical(&swapped).unwrap(), s.canonical(&gpu).unwrap());
    // Moving a layer to another stage is a different network.
    let mut other = gpu.clone();
    other.layers[7] = MbConvChoice::Zero;
    other.layers[1] = MbConvChoice::mb_conv(3, 3);
    assert_ne!(s.canonical(&other).unwrap(), s.canonical(&gpu).unwrap());
    // Changing a choice is a different network.
    let mut changed = gpu.clone();
    changed.layers[0] = MbConvChoice::mb_conv(3, 3);
    assert_ne!(s.canonical(&changed).unwrap(), s.canonical(&gpu).unwrap());
}

#[test]
fn canonical_merges_stages_when_the_boundary_keeps_the_shape() {
    // Two stages of width 24 joined with stride 1: the second stage's first layer is
    // identity-shaped, so a zero may move across the boundary.
    let s = ProxylessSpace::new(ProxylessConfig {
        stages: vec![
            Stage {
                width: 24,
                depth: 2,
                stride: 2,
            },
            Stage {
                width: 24,
                depth: 2,
                stride: 1,
            },
        ],
        ..Default::default()
    })
    .unwrap();
    assert!(s.layers()[2].skippable);
    let a = s.parse("3x3_MBConv3 zero 5x5_MBConv3 7x7_MBConv6").unwrap();
    let b = s.parse("3x3_MBConv3 5x5_MBConv3 7x7_MBConv6 zero").unwrap();
    assert_eq!(s.canonical(&a).unwrap(), s.canonical(&b).unwrap());
    assert_eq!(
        s.canonical(&a).unwrap().as_str(),
        "3x3_MBConv3 5x5_MBConv3 7x7_MBConv6"
    );
    // A skippable first searchable layer can leave an empty leading segment.
    let s = ProxylessSpace::new(ProxylessConfig {
        stages: vec![
            Stage {
                width: 16,
                depth: 2,
                stride: 1,
            },
            Stage {
                width: 24,
                depth: 1,
                stride: 2,
            },
        ],
        ..Default::default()
    })
    .unwrap();
    let a = s.parse("zero zero 3x3_MBConv3").unwrap();
    assert_eq!(s.canonical(&a).unwrap().as_str(), "- | 3x3_MBConv3");
}

#[test]
fn choice_names() {
    assert_eq!("Zero".parse::<MbConvChoice>().unwrap(), MbConvChoice::Zero);
    assert_eq!("zero".parse::<MbConvChoice>().unwrap(), MbConvChoice::Zero);
    assert_eq!(MbConvChoice::Zero.to_string(), "zero");
    let c: MbConvChoice = "7x7_MBConv3".parse().unwrap();
    assert_eq!((c.kernel(), c.expansion()), (Some(7), Some(3)));
    assert_eq!(
        (MbConvChoice::Zero.kernel(), MbConvChoice::Zero.expansion()),
        (None, None)
    );
    assert_eq!(c.name(), "7x7_MBConv3");
    for bad in [
        "3x5_MBConv3",
        "3x3_MBConv",
        "x3_MBConv3",
        "3x3_MBConv0",
        "0x0_MBConv3",
        "3x3_MBConv999",
        "ZERO",
    ] {
        let e = bad.parse::<MbConvChoice>().unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }), "{bad}");
        assert_eq!(e.token, bad);
    }
    assert_eq!(serde_json::to_string(&c).unwrap(), "\"7x7_MBConv3\"");
    // "Zero" is read but printed as "zero".
    let a: ProxylessArch = "3x3_MBConv3 Zero".parse().unwrap();
    assert_eq!(a.to_string(), "3x3_MBConv3 zero");
}

#[test]
fn serde_uses_the_text() {
    let s = space();
    let a = s.parse(PROXYLESS_MOBILE).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        format!("\"{PROXYLESS_MOBILE}\"")
    );
    let r: Result<ProxylessArch, _> = serde_json::from_str("\"3x3_MBConv3 bogus\"");
    assert!(r.unwrap_err().to_string().contains("bogus"));
}

fn parse_err(text: &str) -> ParseError {
    parse_error(space().parse(text))
}

#[test]
fn unknown_op_names_token_and_position() {
    let text = PROXYLESS_GPU.replacen("7x7_MBConv3", "sep_conv_3x3", 1);
    let e = parse_err(&text);
    let pos = PROXYLESS_GPU.find("7x7_MBConv3").unwrap();
    assert_eq!((e.position, e.token.as_str()), (pos, "sep_conv_3x3"));
    match &e.kind {
        ParseErrorKind::UnknownOp { known } => {
            assert_eq!(known.len(), 7);
            assert!(known.contains(&"zero".to_string()));
        }
        k => panic!("{k:?}"),
    }
    // A well-formed MBConv that the space excludes is unknown to it too.
    let e = parse_err(&PROXYLESS_GPU.replacen("5x5_MBConv3", "9x9_MBConv3", 1));
    assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
    assert_eq!((e.position, e.token.as_str()), (0, "9x9_MBConv3"));
    // Arch-level FromStr also reports unknown names.
    let e = "3x3_MBConv3 conv".parse::<ProxylessArch>().unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
    assert_eq!((e.position, e.token.as_str()), (12, "conv"));
}

#[test]
fn zero_on_a_shape_changing_layer_is_invalid() {
    let e = parse_err(&PROXYLESS_GPU.replacen("5x5_MBConv3", "zero", 1));
    assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
    assert_eq!((e.position, e.token.as_str()), (0, "zero"));
    assert!(e.to_string().contains("cannot be `zero`"));
    // The first layer of stage 3 (80 -> 96, stride 1) cannot be skipped either.
    let mut a = space().parse(PROXYLESS_GPU).unwrap();
    a.layers[12] = MbConvChoice::Zero;
    assert!(matches!(
        space().validate(&a),
        Err(SpaceError::InvalidArch { .. })
    ));
}

#[test]
fn wrong_count_names_position() {
    chain_wrong_count(&space(), PROXYLESS_GPU, 21, "3x3_MBConv3 zero");
    let mut a = space().parse(PROXYLESS_GPU).unwrap();
    a.layers.pop();
    assert!(matches!(
        space().validate(&a),
        Err(SpaceError::InvalidArch { .. })
    ));
}

#[test]
fn trailing_text_is_reported() {
    chain_trailing_word(&space(), PROXYLESS_GPU, "extra");
}

#[test]
fn brackets_and_punctuation_are_not_part_of_the_format() {
    // The format has no brackets: an opening bracket is reported where it stands.
    chain_rejects_brackets(&space(), PROXYLESS_GPU);
    // A closing bracket glued to the last name.
    let e = parse_err(&format!("{PROXYLESS_GPU})"));
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!((e.position, e.token.as_str()), (PROXYLESS_GPU.len(), ")"));
    // Comma-separated names.
    let e = parse_err("3x3_MBConv3, zero");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!((e.position, e.token.as_str()), (11, ","));
}

#[test]
fn empty_input_is_reported() {
    rejects_blank(&space());
    assert_eq!(
        "".parse::<ProxylessArch>().unwrap_err().kind,
        ParseErrorKind::Empty
    );
}

#[test]
fn whitespace_is_flexible() {
    let s = space();
    let spaced = format!("  {}\n", PROXYLESS_GPU.replace(' ', " \t "));
    assert_eq!(s.parse(&spaced).unwrap(), s.parse(PROXYLESS_GPU).unwrap());
}

#[test]
fn invalid_configs_name_the_field() {
    let with = |change: fn(&mut ProxylessConfig)| {
        let mut c = ProxylessConfig::default();
        change(&mut c);
        ProxylessSpace::new(c)
    };
    let stage = |width, depth, stride| {
        ProxylessSpace::new(ProxylessConfig {
            stages: vec![Stage {
                width,
                depth,
                stride,
            }],
            ..Default::default()
        })
    };
    let cases = [
        (with(|c| c.stem_channels = 0), "stem_channels"),
        (with(|c| c.stem_stride = 0), "stem_stride"),
        (with(|c| c.first_block_channels = 0), "first_block_channels"),
        (with(|c| c.feature_mix_channels = 0), "feature_mix_channels"),
        (with(|c| c.stages = vec![]), "stages"),
        (stage(0, 1, 1), "stages"),
        (stage(8, 0, 1), "stages"),
        (stage(8, 1, 0), "stages"),
        (with(|c| c.kernels = vec![]), "kernels"),
        (with(|c| c.kernels = vec![3, 4]), "kernels"),
        (with(|c| c.kernels = vec![3, 3]), "kernels"),
        (with(|c| c.kernels = vec![0]), "kernels"),
        (with(|c| c.expansions = vec![]), "expansions"),
        (with(|c| c.expansions = vec![6, 6]), "expansions"),
        (with(|c| c.expansions = vec![0, 6]), "expansions"),
    ];
    for (result, field) in cases {
        assert_eq!(config_field(result), field);
    }
    assert_eq!(
        ProxylessSpace::new(ProxylessConfig::default()).unwrap(),
        ProxylessSpace::default()
    );
}

#[test]
fn encoding_is_one_hot_per_layer() {
    let s = space();
    let gpu = s.parse(PROXYLESS_GPU).unwrap();
    let e = s.encode(&gpu).unwrap();
    for (i, chunk) in e.chunks(7).enumerate() {
        assert_eq!(chunk.iter().sum::<f32>(), 1.0, "layer {i}");
    }
    assert_eq!(e[0..7], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]); // 5x5_MBConv3
    assert_eq!(e[7 + 6], 1.0); // layer 1 is zero
}

#[test]
fn enumeration_order_is_mixed_radix() {
    let s = space();
    let first = s.arch_at(0).unwrap();
    assert!(
        first
            .layers
            .iter()
            .all(|&c| c == MbConvChoice::mb_conv(3, 3))
    );
    let a1 = s.arch_at(1).unwrap();
    assert_eq!(a1.layers[0], MbConvChoice::mb_conv(3, 6));
    // Layer 0 has radix 6, so index 6 moves layer 1.
    let a6 = s.arch_at(6).unwrap();
    assert_eq!(a6.layers[0], MbConvChoice::mb_conv(3, 3));
    assert_eq!(a6.layers[1], MbConvChoice::mb_conv(3, 6));
    let last = s.arch_at(s.size() - 1).unwrap();
    assert_eq!(last.layers[0], MbConvChoice::mb_conv(7, 6));
    assert_eq!(last.layers[1], MbConvChoice::Zero);
    assert!(matches!(
        s.arch_at(s.size()),
        Err(SpaceError::IndexOutOfRange { .. })
    ));
}

#[test]
fn neighbors_count() {
    let s = space();
    let gpu = s.parse(PROXYLESS_GPU).unwrap();
    assert_eq!(s.neighbors(&gpu).unwrap().len(), 6 * 5 + 15 * 6);
}
