//! Tests of the DARTS space.

use std::collections::HashSet;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::common::cells::{node_preds, state_map, topo_orders};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::laws;
use crate::test_support::{assert_wrong_count, check_all_laws, config_field, parse_error};
use crate::{
    Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, TextFormat, ToGraph,
};

fn free_space() -> DartsSpace {
    DartsSpace::new(DartsConfig {
        steps: 3,
        ops: DartsOp::PRIMITIVES.to_vec(),
        distinct_inputs: false,
        concat: ConcatRule::Free,
    })
    .unwrap()
}

#[test]
fn laws_hold_default() {
    check_all_laws(&DartsSpace::default());
}

#[test]
fn laws_hold_nasnet_style_and_free_concat() {
    check_all_laws(&DartsSpace::new(DartsConfig::nasnet_style()).unwrap());
    check_all_laws(&DartsSpace::new(DartsConfig::enas()).unwrap());
    check_all_laws(&free_space());
}

#[test]
fn default_config_is_darts() {
    let s = DartsSpace::default();
    assert_eq!(s.steps(), 4);
    assert_eq!(s.ops(), &DartsOp::DERIVED);
    assert!(!s.ops().contains(&DartsOp::None));
    assert!(s.config().distinct_inputs);
    assert_eq!(s.config().concat, ConcatRule::All);
    assert_eq!(DartsSpace::new(DartsConfig::default()).unwrap(), s);
    assert_eq!(
        DartsOp::PRIMITIVES.map(DartsOp::name),
        [
            "none",
            "max_pool_3x3",
            "avg_pool_3x3",
            "skip_connect",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "dil_conv_3x3",
            "dil_conv_5x5"
        ]
    );
    let per_cell: u128 = 2 * 6 * 12 * 20 * 7u128.pow(8);
    assert_eq!(s.size(), per_cell * per_cell);
    assert_eq!(s.encoding_len(), 200);
}

#[test]
fn published_genotypes_parse_and_print_as_python() {
    let s = DartsSpace::default();
    let v2 = s.parse(DARTS_V2).unwrap();
    assert_eq!(v2, darts_v2());
    assert_eq!(v2.steps(), 4);
    assert_eq!(v2.normal[0], (DartsOp::SepConv3x3, 0));
    assert_eq!(v2.normal[7], (DartsOp::DilConv3x3, 2));
    assert_eq!(v2.reduce[7], (DartsOp::MaxPool3x3, 1));
    assert_eq!(v2.normal_concat, vec![2, 3, 4, 5]);
    assert_eq!(
        s.to_text(&v2),
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
    );
    // The list form of the concat is the same genotype.
    assert_eq!(
        s.to_text(&v2).replace("range(2, 6)", "[2, 3, 4, 5]"),
        DARTS_V2
    );
    for (text, g) in [(DARTS_V1, darts_v1()), (PDARTS, pdarts())] {
        assert_eq!(s.parse(text).unwrap(), g);
        assert_eq!(s.parse(&s.to_text(&g)).unwrap(), g);
    }
    assert_eq!(darts_v1().reduce[7], (DartsOp::AvgPool3x3, 0));
    assert_eq!(pdarts().normal[7], (DartsOp::DilConv5x5, 4));
    assert_ne!(
        s.canonical(&darts_v1()).unwrap(),
        s.canonical(&darts_v2()).unwrap()
    );
}

#[test]
fn nasnet_and_amoebanet_genotypes_need_the_nasnet_style_space() {
    let ns = DartsSpace::new(DartsConfig::nasnet_style()).unwrap();
    for (text, g) in [(NASNET, nasnet()), (AMOEBANET, amoebanet())] {
        assert_eq!(ns.parse(text).unwrap(), g);
        assert_eq!(g.steps(), 5);
        assert_eq!(ns.parse(&ns.to_text(&g)).unwrap(), g);
        assert_eq!(g.normal_concat, unused_states(&g.normal));
        assert_eq!(g.reduce_concat, unused_states(&g.reduce));
        assert!(matches!(
            DartsSpace::default().validate(&g),
            Err(SpaceError::InvalidArch { .. })
        ));
    }
    assert_eq!(amoebanet().reduce[8], (DartsOp::Conv7x1Conv1x7, 0));
    assert_eq!(amoebanet().reduce_concat, vec![3, 4, 6]);
    assert!(ns.to_text(&nasnet()).contains("normal_concat=range(2, 7)"));
    // The default space has 4 nodes: a 5-node genotype is a count error at the 9th input.
    let e = parse_error(DartsSpace::default().parse(NASNET));
    assert_wrong_count(&e, 8, 10);
    assert_eq!(e.position, NASNET.find("('sep_conv_3x3', 1)").unwrap());
}

#[test]
fn multi_line_repository_notation_parses() {
    let text = r#"Genotype(
  normal = [
("sep_conv_3x3", 0),
('sep_conv_3x3', 1),
('sep_conv_3x3', 0), ('sep_conv_3x3', 1),
('sep_conv_3x3', 1), ('skip_connect', 0),
('skip_connect', 0), ( 'dil_conv_3x3' , 2 , ),
  ],
  reduce_concat = range( 2 , 6 ),
  normal_concat = [2, 3, 4, 5,],
  reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)],
)"#;
    assert_eq!(text.parse::<Genotype>().unwrap(), darts_v2());
    let json = serde_json::to_string(&darts_v2()).unwrap();
    assert!(json.starts_with("\"Genotype(normal=[('sep_conv_3x3', 0)"));
    assert_eq!(serde_json::from_str::<Genotype>(&json).unwrap(), darts_v2());
    assert!(
        serde_json::from_str::<Genotype>("\"Genotype(normal=[('bogus', 0)])\"")
            .unwrap_err()
            .to_string()
            .contains("bogus")
    );
}

fn err(s: &str) -> ParseError {
    s.parse::<Genotype>().unwrap_err()
}

#[test]
fn unknown_op_is_named_with_its_position() {
    let bad = DARTS_V2.replacen("dil_conv_3x3", "dil_conv_7x7", 1);
    let e = err(&bad);
    assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
    assert_eq!(e.token, "dil_conv_7x7");
    assert_eq!(e.position, DARTS_V2.find("dil_conv_3x3").unwrap());
    assert!(e.to_string().contains("sep_conv_5x5"));
}

#[test]
fn input_from_a_later_node_is_rejected() {
    // Node 0 (state 2) reads state 2.
    let bad = DARTS_V2.replacen("('sep_conv_3x3', 1)", "('sep_conv_3x3', 2)", 1);
    let e = err(&bad);
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
    assert_eq!(e.token, "2");
    assert_eq!(e.position, bad.find("2)").unwrap());
}

#[test]
fn wrong_counts_are_reported() {
    // An odd number of inputs.
    let bad = DARTS_V2.replacen(", ('dil_conv_3x3', 2)", "", 1);
    let e = err(&bad);
    assert_wrong_count(&e, 8, 7);
    assert_eq!(
        (e.position, e.token.as_str()),
        (bad.find("], normal_concat").unwrap(), "]")
    );
    // Reduce with fewer nodes than normal.
    let bad = DARTS_V2.replacen(", ('skip_connect', 2), ('max_pool_3x3', 1)]", "]", 1);
    let e = err(&bad);
    assert_wrong_count(&e, 8, 6);
    // An empty cell.
    let e = err("Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[])");
    assert_wrong_count(&e, 2, 0);
    assert_eq!(e.position, 17);
    // Fewer nodes than the space.
    let three = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0)], normal_concat=range(2, 5), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2)], reduce_concat=range(2, 5))";
    assert_eq!(three.parse::<Genotype>().unwrap().steps(), 3);
    let e = parse_error(DartsSpace::default().parse(three));
    assert_wrong_count(&e, 8, 6);
    assert_eq!(e.position, three.find("], normal_concat").unwrap());
}

#[test]
fn bad_concats_are_rejected() {
    let bad = DARTS_V2.replacen(
        "normal_concat=[2, 3, 4, 5]",
        "normal_concat=[2, 3, 4, 6]",
        1,
    );
    let e = err(&bad);
    assert!(
        matches!(e.kind, ParseErrorKind::InvalidNumber { .. }),
        "{e}"
    );
    assert_eq!(
        (e.position, e.token.as_str()),
        (bad.find("6]").unwrap(), "6")
    );
    let bad = DARTS_V2.replacen("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 3]", 1);
    let e = err(&bad);
    assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
    assert_eq!(e.position, bad.find("3]").unwrap());
    let bad = DARTS_V2.replacen("normal_concat=[2, 3, 4, 5]", "normal_concat=range(5, 2)", 1);
    assert!(matches!(err(&bad).kind, ParseErrorKind::Invalid { .. }));
    let bad = DARTS_V2.replacen(
        "normal_concat=[2, 3, 4, 5]",
        "normal_concat=range(2, 1000)",
        1,
    );
    assert!(matches!(
        err(&bad).kind,
        ParseErrorKind::InvalidNumber { .. }
    ));
    let bad = DARTS_V2.replacen("normal_concat=[2, 3, 4, 5]", "normal_concat=all", 1);
    assert!(matches!(err(&bad).kind, ParseErrorKind::Expected { .. }));
    // A valid genotype whose concat the default space rejects.
    let partial = DARTS_V2.replacen("normal_concat=[2, 3, 4, 5]", "normal_concat=[3, 5]", 1);
    let g: Genotype = partial.parse().unwrap();
    assert!(matches!(
        DartsSpace::default().validate(&g),
        Err(SpaceError::InvalidArch { .. })
    ));
    assert!(free_space_4().validate(&g).is_ok());
    assert!(free_space_4().to_text(&g).contains("normal_concat=[3, 5]"));
}

fn free_space_4() -> DartsSpace {
    DartsSpace::new(DartsConfig {
        concat: ConcatRule::Free,
        ..DartsConfig::default()
    })
    .unwrap()
}

#[test]
fn structural_errors_are_reported() {
    let e = err(&DARTS_V2.replacen("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0", 1));
    assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: '(' });
    assert_eq!((e.position, e.token.as_str()), (17, "("));
    let e = err(&DARTS_V2[..DARTS_V2.len() - 1]);
    assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: '(' });
    assert_eq!((e.position, e.token.as_str()), (8, "("));
    let e = err(&DARTS_V2.replacen("'dil_conv_3x3'", "'dil_conv_3x3", 1));
    assert!(matches!(e.kind, ParseErrorKind::Unbalanced { .. }), "{e}");
    let e = err(&format!("{DARTS_V2} extra"));
    assert_eq!(e.kind, ParseErrorKind::TrailingInput);
    assert_eq!(
        (e.position, e.token.as_str()),
        (DARTS_V2.len() + 1, "extra")
    );
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert_eq!(err(" \n ").kind, ParseErrorKind::Empty);
    let e = err(&DARTS_V2.replacen("Genotype", "Genome", 1));
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!(e.position, 0);
    let e = err(&DARTS_V2.replacen("reduce=", "reduced=", 1));
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!(e.token, "reduced");
    let e = err(&DARTS_V2.replacen(", reduce_concat=[2, 3, 4, 5]", "", 1));
    assert!(
        matches!(&e.kind, ParseErrorKind::Expected { expected } if expected.contains("reduce_concat"))
    );
    assert_eq!(e.position, DARTS_V2.len() - 29);
    let e = err(&DARTS_V2.replacen("reduce_concat", "normal_concat", 1));
    assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
    let e = err(&DARTS_V2.replacen("('sep_conv_3x3', 0)", "('sep_conv_3x3' 0)", 1));
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!(e.position, 33);
}

#[test]
fn space_validation_rejects_excluded_choices() {
    let s = DartsSpace::default();
    let mut g = darts_v2();
    g.normal[0].0 = DartsOp::None;
    assert!(matches!(
        s.validate(&g),
        Err(SpaceError::InvalidArch { .. })
    ));
    let mut g = darts_v2();
    g.normal[1].1 = 0; // node 0 reads c_{k-2} twice
    assert!(s.validate(&g).unwrap_err().to_string().contains("twice"));
    let mut g = darts_v2();
    g.normal[0].1 = 7;
    assert!(s.validate(&g).is_err());
    assert!(s.canonical(&g).is_err());
    assert!(s.graph(&g).is_err());
    assert!(s.index_of(&g).is_err());
}

#[test]
fn invalid_configs_name_the_field() {
    let field = |c: DartsConfig| config_field(DartsSpace::new(c));
    let d = DartsConfig::default;
    assert_eq!(field(DartsConfig { steps: 0, ..d() }), "steps");
    assert_eq!(
        field(DartsConfig {
            steps: MAX_STEPS + 1,
            ..d()
        }),
        "steps"
    );
    assert_eq!(field(DartsConfig { ops: vec![], ..d() }), "ops");
    assert_eq!(
        field(DartsConfig {
            ops: vec![DartsOp::SkipConnect, DartsOp::SkipConnect],
            ..d()
        }),
        "ops"
    );
    let huge = DartsConfig {
        steps: 8,
        ops: DartsOp::ALL.to_vec(),
        distinct_inputs: false,
        concat: ConcatRule::Free,
    };
    assert_eq!(field(huge), "steps");
}

#[test]
fn tiny_space_enumerates_as_a_bijection() {
    let s = DartsSpace::new(DartsConfig {
        steps: 2,
        ops: vec![DartsOp::SepConv3x3],
        distinct_inputs: true,
        concat: ConcatRule::All,
    })
    .unwrap();
    assert_eq!(s.size(), 144);
    let all: Vec<_> = s.iter().collect();
    assert_eq!(all.len(), 144);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 144);
    for (i, g) in all.iter().enumerate() {
        s.validate(g).unwrap();
        assert_eq!(s.index_of(g).unwrap(), i as u128);
    }
    // Per cell: node 0 is (0,1) or (1,0) (one class); node 1 has 6 ordered pairs,
    // {0,1}, {0,2}, {1,2} unordered: 3 classes per cell, 9 for the genotype.
    let classes: HashSet<_> = all.iter().map(|g| s.canonical(g).unwrap()).collect();
    assert_eq!(classes.len(), 9);
    let free = DartsSpace::new(DartsConfig {
        steps: 2,
        ops: vec![DartsOp::SepConv3x3],
        distinct_inputs: false,
        concat: ConcatRule::Free,
    })
    .unwrap();
    assert_eq!(free.size(), (4 * 9 * 3u128).pow(2));
    laws::check_enumerable(&free, 1, 300).unwrap();
}

/// Relabels a cell by a node order (new position -> old node), swapping the inputs of the
/// nodes in `swap`.
fn relabel(
    cell: &[(DartsOp, usize)],
    concat: &[usize],
    order: &[usize],
    swap: &[bool],
) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
    let map = state_map(order);
    let mut out = Vec::new();
    for (p, &o) in order.iter().enumerate() {
        let (mut a, mut b) = (cell[2 * o], cell[2 * o + 1]);
        if swap[p] {
            std::mem::swap(&mut a, &mut b);
        }
        out.push((a.0, map(a.1)));
        out.push((b.0, map(b.1)));
    }
    let mut cc: Vec<usize> = concat.iter().map(|&j| map(j)).collect();
    cc.sort_unstable();
    (out, cc)
}

fn preds(cell: &[(DartsOp, usize)]) -> Vec<Vec<usize>> {
    node_preds(cell.chunks(2).map(|node| node.iter().map(|(_, j)| j)))
}

#[test]
fn canonical_form_is_invariant_under_relabelling() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for s in [
        free_space(),
        DartsSpace::default(),
        DartsSpace::new(DartsConfig::nasnet_style()).unwrap(),
    ] {
        for _ in 0..40 {
            let g = s.sample(&mut rng);
            let mut h = g.clone();
            for kind in CellKind::BOTH {
                let orders = topo_orders(&preds(g.cell(kind)));
                let order = &orders[rng.random_range(0..orders.len())];
                let swap: Vec<bool> = (0..s.steps()).map(|_| rng.random_bool(0.5)).collect();
                let (c, cc) = relabel(g.cell(kind), g.concat(kind), order, &swap);
                let (hc, hcc) = h.cell_mut(kind);
                *hc = c;
                *hcc = cc;
            }
            s.validate(&h).unwrap();
            assert_eq!(
                s.canonical(&g).unwrap(),
                s.canonical(&h).unwrap(),
                "{g} vs {h}"
            );
            // Every one-decision change that is not itself a relabelling changes the form;
            // at least one neighbour must differ.
            let ns = s.neighbors(&g).unwrap();
            assert!(
                ns.iter()
                    .any(|n| s.canonical(n).unwrap() != s.canonical(&g).unwrap())
            );
        }
    }
}

#[test]
fn canonical_form_of_darts_v2_relabelled_by_hand() {
    let s = DartsSpace::default();
    // Swap nodes 0 and 1 of the normal cell (both read only the cell inputs) and the input
    // order of node 3: node 2 reads states 3 and 2 swapped, node 3 reads state 3 for 2.
    let text = DARTS_V2.replacen(
        "normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]",
        "normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 3), ('skip_connect', 0)]",
        1,
    );
    let h = s.parse(&text).unwrap();
    assert_ne!(h, darts_v2());
    assert_eq!(s.canonical(&h).unwrap(), s.canonical(&darts_v2()).unwrap());
    // A genuinely different cell: another operation.
    let mut other = darts_v2();
    other.normal[7].0 = DartsOp::DilConv5x5;
    assert_ne!(
        s.canonical(&other).unwrap(),
        s.canonical(&darts_v2()).unwrap()
    );
    let c = s.canonical(&darts_v2()).unwrap();
    assert!(c.as_str().starts_with("normal:") && c.as_str().contains("/reduce:"));
}

#[test]
fn mutation_changes_one_decision() {
    let s = DartsSpace::default();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..200 {
        let g = s.sample(&mut rng);
        let m = s.mutate(&g, &mut rng).unwrap();
        let diff = g
            .normal
            .iter()
            .chain(&g.reduce)
            .zip(m.normal.iter().chain(&m.reduce))
            .map(|(a, b)| (a.0 != b.0) as usize + (a.1 != b.1) as usize)
            .sum::<usize>();
        assert_eq!(diff, 1, "{g} -> {m}");
    }
    // One op, distinct inputs, one node: no single change keeps the inputs distinct.
    let s = DartsSpace::new(DartsConfig {
        steps: 1,
        ops: vec![DartsOp::SkipConnect],
        ..DartsConfig::default()
    })
    .unwrap();
    let g = s.arch_at(0).unwrap();
    assert!(matches!(
        s.mutate(&g, &mut rng),
        Err(SpaceError::NoNeighbor { .. })
    ));
}

#[test]
fn neighbourhood_size_of_darts_v2() {
    let s = DartsSpace::default();
    // Per cell: 8 inputs × 6 other ops; other predecessors: node i has i + 2 states, one is
    // its own, one is its sibling's: i per input -> 2 · (0 + 1 + 2 + 3) = 12.
    assert_eq!(s.neighbors(&darts_v2()).unwrap().len(), 2 * (8 * 6 + 12));
    let f = free_space_4();
    assert_eq!(
        f.neighbors(&darts_v2()).unwrap().len(),
        2 * (8 * 6 + 12 + 4)
    );
}

#[test]
fn encoding_of_darts_v2() {
    let s = DartsSpace::default();
    let e = s.encode(&darts_v2()).unwrap();
    assert_eq!(e.len(), 200);
    // 16 inputs, each one op and one predecessor, plus 8 concat bits.
    assert_eq!(e.iter().sum::<f32>(), 16.0 * 2.0 + 8.0);
    // First slot: sep_conv_3x3 (position 3 of DERIVED) from state 0.
    assert_eq!(&e[..12], &[0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0., 0.]);
}

#[test]
fn graph_of_darts_v2() {
    let s = DartsSpace::default();
    let g = s.graph(&darts_v2()).unwrap();
    assert_eq!(g.labels.len(), 22);
    assert_eq!(&g.labels[..3], &["c_{k-2}", "c_{k-1}", "sep_conv_3x3"]);
    assert_eq!(g.labels[10], "output");
    assert_eq!(g.labels[11], "c_{k-2}");
    // Normal input 7 (dil_conv_3x3, node 9) reads node 0 (its ops are nodes 2 and 3).
    assert!(g.edges.contains(&(2, 9)) && g.edges.contains(&(3, 9)));
    // All 8 op nodes of the normal cell feed the output.
    assert_eq!(g.edges.iter().filter(|e| e.1 == 10).count(), 8);
    // `none` inputs have no node.
    let ns = DartsSpace::new(DartsConfig {
        ops: DartsOp::PRIMITIVES.to_vec(),
        ..DartsConfig::default()
    })
    .unwrap();
    let mut z = darts_v2();
    z.normal[0].0 = DartsOp::None;
    assert_eq!(ns.graph(&z).unwrap().labels.len(), 21);
}
