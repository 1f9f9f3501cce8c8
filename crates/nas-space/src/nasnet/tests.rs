//! Tests of the NASNet space.

use std::collections::HashSet;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::common::cells::{node_preds, state_map, topo_orders};
use crate::darts::{self, CellKind};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::test_support::{assert_wrong_count, check_all_laws, config_field, parse_error};
use crate::{
    Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, TextFormat, ToGraph,
};

fn small() -> NasNetSpace {
    NasNetSpace::new(NasNetConfig {
        blocks: 3,
        ops: vec![
            NasNetOp::SkipConnect,
            NasNetOp::SepConv3x3,
            NasNetOp::MaxPool3x3,
        ],
        combiners: vec![Combiner::Add],
    })
    .unwrap()
}

#[test]
fn laws_hold() {
    check_all_laws(&NasNetSpace::default());
    check_all_laws(&small());
}

#[test]
fn default_is_the_paper_setting() {
    let s = NasNetSpace::default();
    assert_eq!(s.blocks(), 5);
    assert_eq!(s.config().ops.len(), 13);
    assert_eq!(s.config().combiners, vec![Combiner::Add, Combiner::Concat]);
    assert_eq!(NasNetSpace::new(NasNetConfig::default()).unwrap(), s);
    let per_cell: u128 = 720u128 * 720 * 13u128.pow(10) * 32;
    assert_eq!(s.size(), per_cell * per_cell);
    assert_eq!(s.encoding_len(), 400);
    assert_eq!(
        NasNetOp::ALL.map(NasNetOp::name),
        [
            "skip_connect",
            "conv_3x1_1x3",
            "conv_7x1_1x7",
            "dil_conv_3x3",
            "avg_pool_3x3",
            "max_pool_3x3",
            "max_pool_5x5",
            "max_pool_7x7",
            "conv_1x1",
            "conv_3x3",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "sep_conv_7x7"
        ]
    );
}

#[test]
fn nasnet_a_round_trips_and_matches_the_darts_transcription() {
    let s = NasNetSpace::default();
    let a = s.parse(NASNET_A).unwrap();
    assert_eq!(a, nasnet_a());
    assert_eq!(s.to_text(&a), NASNET_A);
    assert_eq!(
        a.normal[0],
        NasNetBlock::new(
            (NasNetOp::SepConv5x5, 1),
            (NasNetOp::SepConv3x3, 0),
            Combiner::Add
        )
    );
    assert_eq!(a.reduce[3].inputs, [3, 2]);
    // The DARTS repository's NASNet genotype lists the same branches in the same order.
    let d = darts::nasnet();
    for kind in CellKind::BOTH {
        let ours: Vec<(String, usize)> = a
            .cell(kind)
            .iter()
            .flat_map(|b| (0..2).map(move |k| (b.ops[k].name().to_string(), b.inputs[k])))
            .collect();
        let theirs: Vec<(String, usize)> = d
            .cell(kind)
            .iter()
            .map(|&(op, j)| (op.name().to_string(), j))
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(a.output_states(kind), d.concat(kind));
    }
    assert_eq!(a.output_states(CellKind::Normal), vec![2, 3, 4, 5, 6]);
    // Slim's hiddenstate_indices with 0 and 1 swapped.
    let slim_normal = [0, 1, 1, 1, 0, 1, 1, 1, 0, 0];
    let slim_reduce = [0, 1, 0, 1, 0, 1, 3, 2, 2, 0];
    let swap = |i: usize| if i < 2 { 1 - i } else { i };
    for (cell, slim) in [(&a.normal, slim_normal), (&a.reduce, slim_reduce)] {
        let ours: Vec<usize> = cell.iter().flat_map(|b| b.inputs).collect();
        let theirs: Vec<usize> = slim.iter().map(|&i| swap(i)).collect();
        assert_eq!(ours, theirs);
    }
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<NasNetArch>(&json).unwrap(), a);
    // Outside a space without `add`.
    let concat_only = NasNetSpace::new(NasNetConfig {
        combiners: vec![Combiner::Concat],
        ..NasNetConfig::default()
    })
    .unwrap();
    assert!(matches!(
        concat_only.validate(&a),
        Err(SpaceError::InvalidArch { .. })
    ));
}

#[test]
fn lenient_syntax_and_aliases() {
    let text = "NASNet(\n normal = [ (\"identity\", 0, 'conv_1x7_7x1', 1, \"concat\",), ],\n reduce=[('conv_1x3_3x1',1,'max_pool_7x7',0,'add')],\n)";
    let a: NasNetArch = text.parse().unwrap();
    assert_eq!(
        a.normal[0].ops,
        [NasNetOp::SkipConnect, NasNetOp::Conv7x1Conv1x7]
    );
    assert_eq!(a.normal[0].combine, Combiner::Concat);
    assert_eq!(
        a.to_string(),
        "NASNet(normal=[('skip_connect', 0, 'conv_7x1_1x7', 1, 'concat')], reduce=[('conv_3x1_1x3', 1, 'max_pool_7x7', 0, 'add')])"
    );
}

fn err(s: &str) -> ParseError {
    s.parse::<NasNetArch>().unwrap_err()
}

#[test]
fn bad_strings_name_token_and_position() {
    // Unknown op.
    let bad = NASNET_A.replacen("sep_conv_5x5", "sep_conv_9x9", 1);
    let e = err(&bad);
    assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
    assert_eq!((e.position, e.token.as_str()), (17, "sep_conv_9x9"));
    assert!(e.to_string().contains("conv_7x1_1x7"));
    // Unknown combiner.
    let bad = NASNET_A.replacen("'add'", "'mul'", 1);
    let e = err(&bad);
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!(
        (e.position, e.token.as_str()),
        (bad.find("mul").unwrap(), "mul")
    );
    // Input from a later block: block 0 reads state 2.
    let bad = NASNET_A.replacen("('sep_conv_5x5', 1,", "('sep_conv_5x5', 2,", 1);
    let e = err(&bad);
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
    assert_eq!((e.position, e.token.as_str()), (32, "2"));
    // Wrong counts: reduce shorter than normal; empty normal; space with 5 blocks.
    let bad = NASNET_A.replacen(", ('sep_conv_3x3', 2, 'max_pool_3x3', 1, 'add')]", "]", 1);
    let e = err(&bad);
    assert_wrong_count(&e, 5, 4);
    assert_eq!((e.position, e.token.as_str()), (bad.len() - 2, "]"));
    let e = err("NASNet(normal=[], reduce=[])");
    assert_wrong_count(&e, 1, 0);
    assert_eq!(e.position, 15);
    let one = "NASNet(normal=[('conv_1x1', 0, 'conv_1x1', 1, 'add')], reduce=[('conv_1x1', 0, 'conv_1x1', 1, 'add')])";
    let e = parse_error(NasNetSpace::default().parse(one));
    assert_wrong_count(&e, 5, 1);
    assert_eq!(e.position, one.find("], reduce").unwrap());
    // Too many blocks for a 3-block space: reported at the first extra block.
    let e = parse_error(small().parse(NASNET_A));
    assert_wrong_count(&e, 3, 5);
    assert_eq!(e.position, NASNET_A.find("('avg_pool_3x3', 0").unwrap());
    // Unbalanced brackets, trailing text, empty, wrong head.
    let e = err(&NASNET_A[..NASNET_A.len() - 1]);
    assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: '(' });
    assert_eq!((e.position, e.token.as_str()), (6, "("));
    let e = err(&NASNET_A.replacen("'add')]", "'add']", 1));
    assert!(matches!(e.kind, ParseErrorKind::Unbalanced { .. }), "{e}");
    let e = err(&format!("{NASNET_A})"));
    assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: ')' });
    assert_eq!(e.position, NASNET_A.len());
    let e = err(&format!("{NASNET_A} x"));
    assert_eq!(e.kind, ParseErrorKind::TrailingInput);
    assert_eq!((e.position, e.token.as_str()), (NASNET_A.len() + 1, "x"));
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert!(matches!(
        err("NASnet()").kind,
        ParseErrorKind::Expected { .. }
    ));
    let e = err(&NASNET_A.replacen("reduce=", "reduction=", 1));
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    // Missing branch: 4-tuples.
    let e = err("NASNet(normal=[('conv_1x1', 0, 'conv_1x1', 1)], reduce=[])");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!(e.position, 44);
}

#[test]
fn invalid_configs_name_the_field() {
    let field = |c: NasNetConfig| config_field(NasNetSpace::new(c));
    let d = NasNetConfig::default;
    assert_eq!(field(NasNetConfig { blocks: 0, ..d() }), "blocks");
    assert_eq!(field(NasNetConfig { blocks: 9, ..d() }), "blocks");
    // 6 blocks with all ops and both combiners overflow u128.
    assert_eq!(field(NasNetConfig { blocks: 6, ..d() }), "blocks");
    assert_eq!(field(NasNetConfig { ops: vec![], ..d() }), "ops");
    assert_eq!(
        field(NasNetConfig {
            ops: vec![NasNetOp::Conv1x1, NasNetOp::Conv1x1],
            ..d()
        }),
        "ops"
    );
    assert_eq!(
        field(NasNetConfig {
            combiners: vec![],
            ..d()
        }),
        "combiners"
    );
    assert_eq!(
        field(NasNetConfig {
            combiners: vec![Combiner::Add, Combiner::Add],
            ..d()
        }),
        "combiners"
    );
    // With fewer ops, more blocks fit.
    assert!(
        NasNetSpace::new(NasNetConfig {
            blocks: 6,
            ops: NasNetOp::ALL[..5].to_vec(),
            combiners: vec![Combiner::Add],
        })
        .is_ok()
    );
}

#[test]
fn validation_rejects_excluded_choices() {
    let s = small();
    let mut a = s.arch_at(0).unwrap();
    a.normal[0].ops[1] = NasNetOp::Conv3x3;
    assert!(s.validate(&a).unwrap_err().to_string().contains("conv_3x3"));
    let mut a = s.arch_at(0).unwrap();
    a.reduce[1].inputs[0] = 3;
    assert!(s.validate(&a).is_err());
    assert!(s.canonical(&a).is_err() && s.graph(&a).is_err() && s.encode(&a).is_err());
    let mut a = s.arch_at(0).unwrap();
    a.reduce[2].combine = Combiner::Concat;
    assert!(s.validate(&a).is_err());
    let mut a = s.arch_at(0).unwrap();
    a.reduce.pop();
    assert!(s.validate(&a).is_err());
}

#[test]
fn tiny_space_enumerates_as_a_bijection() {
    let s = NasNetSpace::new(NasNetConfig {
        blocks: 2,
        ops: vec![NasNetOp::Conv1x1],
        combiners: vec![Combiner::Add],
    })
    .unwrap();
    // Per cell 2·2·3·3 = 36 input choices.
    assert_eq!(s.size(), 36 * 36);
    let all: Vec<_> = s.iter().collect();
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 1296);
    for (i, a) in all.iter().enumerate() {
        assert_eq!(s.index_of(a).unwrap(), i as u128);
    }
    let classes: HashSet<_> = all.iter().map(|a| s.canonical(a).unwrap()).collect();
    // Hand count per cell: block 1 independent of block 0 (its inputs in {0,1}: 3 choices)
    // -> 3 · 3 = 9 ordered = 6 unordered; block 1 reads block 0 (3 multisets with a 2)
    // -> 3 · 3 = 9 distinct. 15 per cell, 225 in all.
    assert_eq!(classes.len(), 225);
}

fn relabel(cell: &[NasNetBlock], order: &[usize], swap: &[bool]) -> Vec<NasNetBlock> {
    let map = state_map(order);
    order
        .iter()
        .enumerate()
        .map(|(p, &o)| {
            let mut b = cell[o];
            b.inputs = b.inputs.map(&map);
            if swap[p] {
                b.inputs.swap(0, 1);
                b.ops.swap(0, 1);
            }
            b
        })
        .collect()
}

#[test]
fn canonical_form_is_invariant_under_relabelling() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for s in [NasNetSpace::default(), small()] {
        for _ in 0..40 {
            let a = s.sample(&mut rng);
            let mut b = a.clone();
            for kind in CellKind::BOTH {
                let preds = node_preds(a.cell(kind).iter().map(|x| &x.inputs));
                let orders = topo_orders(&preds);
                let order = &orders[rng.random_range(0..orders.len())];
                let swap: Vec<bool> = (0..s.blocks()).map(|_| rng.random_bool(0.5)).collect();
                *b.cell_mut(kind) = relabel(a.cell(kind), order, &swap);
            }
            s.validate(&b).unwrap();
            assert_eq!(s.canonical(&a).unwrap(), s.canonical(&b).unwrap());
            assert_eq!(
                s.graph(&a).unwrap().labels.len(),
                s.graph(&b).unwrap().labels.len()
            );
        }
    }
}

#[test]
fn canonical_form_of_nasnet_a() {
    let s = NasNetSpace::default();
    let a = nasnet_a();
    // Swap normal blocks 0 and 1 (both read only the cell inputs) and the branches of
    // block 4.
    let mut b = a.clone();
    b.normal.swap(0, 1);
    b.normal[4].inputs.swap(0, 1);
    b.normal[4].ops.swap(0, 1);
    assert_ne!(a, b);
    assert_eq!(s.canonical(&a).unwrap(), s.canonical(&b).unwrap());
    // Reduction blocks 0 and 1 are read by blocks 3 and 4; swapping them needs the readers
    // relabelled too.
    let mut c = a.clone();
    c.reduce.swap(0, 1);
    for blk in &mut c.reduce {
        for i in &mut blk.inputs {
            *i = match *i {
                2 => 3,
                3 => 2,
                x => x,
            };
        }
    }
    assert_eq!(s.canonical(&a).unwrap(), s.canonical(&c).unwrap());
    // Different combiner, different op: different forms.
    let mut d = a.clone();
    d.normal[2].combine = Combiner::Concat;
    assert_ne!(s.canonical(&a).unwrap(), s.canonical(&d).unwrap());
    let mut e = a.clone();
    e.reduce[4].ops[1] = NasNetOp::MaxPool5x5;
    assert_ne!(s.canonical(&a).unwrap(), s.canonical(&e).unwrap());
    // Without the relabelling of the readers, swapping reduction blocks changes the cell.
    let mut f = a.clone();
    f.reduce.swap(0, 1);
    assert_ne!(s.canonical(&a).unwrap(), s.canonical(&f).unwrap());
}

#[test]
fn neighbourhood_and_mutation() {
    let s = NasNetSpace::default();
    // Per cell: 10 branches × 12 other ops, inputs Σ_b 2·(b+1) = 30, 5 other combiners.
    assert_eq!(s.neighbors(&nasnet_a()).unwrap().len(), 2 * (120 + 30 + 5));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a = nasnet_a();
    for _ in 0..100 {
        let m = s.mutate(&a, &mut rng).unwrap();
        let changes: usize = a
            .normal
            .iter()
            .chain(&a.reduce)
            .zip(m.normal.iter().chain(&m.reduce))
            .map(|(x, y)| {
                (x.ops[0] != y.ops[0]) as usize
                    + (x.ops[1] != y.ops[1]) as usize
                    + (x.inputs[0] != y.inputs[0]) as usize
                    + (x.inputs[1] != y.inputs[1]) as usize
                    + (x.combine != y.combine) as usize
            })
            .sum();
        assert_eq!(changes, 1);
    }
    let single = NasNetSpace::new(NasNetConfig {
        blocks: 1,
        ops: vec![NasNetOp::Conv1x1],
        combiners: vec![Combiner::Add],
    })
    .unwrap();
    // Block 0 can still change an input (0 <-> 1).
    assert_eq!(
        single.neighbors(&single.arch_at(0).unwrap()).unwrap().len(),
        4
    );
}

#[test]
fn encoding_and_graph_of_nasnet_a() {
    let s = NasNetSpace::default();
    let e = s.encode(&nasnet_a()).unwrap();
    assert_eq!(e.len(), 400);
    assert_eq!(e.iter().sum::<f32>(), 2.0 * 5.0 * (2.0 * 2.0 + 1.0));
    let g = s.graph(&nasnet_a()).unwrap();
    // Per cell: 2 inputs, 5 × 3 block nodes, output.
    assert_eq!(g.labels.len(), 2 * 18);
    assert_eq!(
        &g.labels[..5],
        &["h_{i-1}", "h_i", "sep_conv_5x5", "sep_conv_3x3", "add"]
    );
    assert_eq!(g.labels[17], "output");
    // Normal: all 5 blocks feed the output; reduce: blocks 2, 3, 4.
    assert_eq!(g.edges.iter().filter(|e| e.1 == 17).count(), 5);
    assert_eq!(g.edges.iter().filter(|e| e.1 == 35).count(), 3);
    // Reduce block 3's first branch (skip_connect, node 18 + 11) reads block 1's combiner.
    assert_eq!(g.labels[18 + 11], "skip_connect");
    assert!(g.edges.contains(&(18 + 7, 18 + 11)));
}
