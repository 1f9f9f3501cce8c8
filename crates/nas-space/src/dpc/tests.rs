//! Tests of the DPC space.

use std::collections::HashMap;

use rand::{SeedableRng, rngs::ChaCha8Rng};

use super::*;
use crate::common::permutations;
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::laws;
use crate::test_support::{check_all_laws, check_small_laws, config_field, parse_error};
use crate::{Canonicalize, Encode, Enumerable, Neighborhood, SearchSpace, TextFormat, ToGraph};

#[test]
fn laws_hold() {
    check_all_laws(&DpcSpace::default());
}

#[test]
fn small_spaces_keep_the_laws() {
    let s = DpcSpace::new(3, &[1], &[1]).unwrap();
    assert_eq!(s.ops().len(), 3);
    assert_eq!(s.size(), 3 * 6 * 9);
    assert_eq!(s.iter().count(), 162);
    check_small_laws(&s, 1);
    // One branch: only the operation can change.
    let one = DpcSpace::new(1, &[1], &[1]).unwrap();
    let a = one.parse("conv_1x1<0").unwrap();
    assert_eq!(one.neighbors(&a).unwrap().len(), 2);
    laws::check_neighbors(&one, 2, 10).unwrap();
}

#[test]
fn published_top1_cityscapes_cell() {
    let s = DpcSpace::default();
    let a = s.parse(TOP1_CITYSCAPES).unwrap();
    // JSON: rate [1, 6] input -1; [18, 15] input 0; [6, 3] input 1; [1, 1] input 0;
    // [6, 21] input 0 (inputs counted from 0, -1 = backbone).
    let expected: Vec<(u32, u32, usize)> =
        vec![(1, 6, 0), (18, 15, 1), (6, 3, 2), (1, 1, 1), (6, 21, 1)];
    for (b, (h, w, i)) in a.branches.iter().zip(expected) {
        assert_eq!(
            b.op,
            DpcOp::SepAtrous3x3 {
                rate_h: h,
                rate_w: w
            }
        );
        assert_eq!(b.input, i);
    }
    assert_eq!(a.to_string(), TOP1_CITYSCAPES);
    let g = s.graph(&a).unwrap();
    assert_eq!(g.labels[1], "sep_atrous_3x3_r1x6");
    assert_eq!(g.labels[6], "output");
    assert_eq!(
        g.edges,
        vec![
            (0, 1),
            (1, 2),
            (1, 4),
            (1, 5),
            (1, 6),
            (2, 3),
            (2, 6),
            (3, 6),
            (4, 6),
            (5, 6)
        ]
    );
    let i = s.index_of(&a).unwrap();
    assert_eq!(s.arch_at(i).unwrap(), a);
}

#[test]
fn op_names_round_trip() {
    let s = DpcSpace::default();
    assert_eq!(s.ops().len(), 81);
    assert_eq!(s.ops()[0], DpcOp::Conv1x1);
    assert_eq!(
        s.ops()[1],
        DpcOp::SepAtrous3x3 {
            rate_h: 1,
            rate_w: 1
        }
    );
    assert_eq!(
        s.ops()[80],
        DpcOp::Spp {
            grid_h: 8,
            grid_w: 8
        }
    );
    for &op in s.ops() {
        assert_eq!(op.name().parse::<DpcOp>().unwrap(), op);
    }
    assert_eq!(
        "spp_2x4".parse::<DpcOp>().unwrap(),
        DpcOp::Spp {
            grid_h: 2,
            grid_w: 4
        }
    );
    for bad in [
        "conv_3x3",
        "spp_2",
        "spp_x2",
        "sep_atrous_3x3_r+1x2",
        "spp_2x4x8",
    ] {
        assert!(matches!(
            bad.parse::<DpcOp>().unwrap_err().kind,
            ParseErrorKind::UnknownOp { .. }
        ));
    }
}

#[test]
fn size_encoding_and_enumeration_order() {
    let s = DpcSpace::default();
    assert_eq!(s.size(), 418_414_128_120);
    assert_eq!(s.encoding_len(), 5 * 81 + 15);
    let first = s.arch_at(0).unwrap();
    assert_eq!(
        first.to_string(),
        "conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0"
    );
    let second = s.arch_at(1).unwrap();
    assert_eq!(
        second.branches[0].op,
        DpcOp::SepAtrous3x3 {
            rate_h: 1,
            rate_w: 1
        }
    );
    // Branch 2's digit: input 1 is 81 steps of 81.
    let a = s.arch_at(81 * 81).unwrap();
    assert_eq!(
        a.branches[1],
        DpcBranch {
            input: 1,
            op: DpcOp::Conv1x1
        }
    );
    let last = s.arch_at(s.size() - 1).unwrap();
    assert_eq!(
        last.branches[4],
        DpcBranch {
            input: 4,
            op: DpcOp::Spp {
                grid_h: 8,
                grid_w: 8
            }
        }
    );

    let top = s.parse(TOP1_CITYSCAPES).unwrap();
    let e = s.encode(&top).unwrap();
    assert_eq!(e.iter().sum::<f32>(), 10.0);
    let p = s
        .ops()
        .iter()
        .position(|&o| {
            o == DpcOp::SepAtrous3x3 {
                rate_h: 1,
                rate_w: 6,
            }
        })
        .unwrap();
    assert_eq!(e[p], 1.0);
    // Input adjacency: [1←0 | 2←0, 2←1 | 3←0..3←2 | ...].
    assert_eq!(
        &e[405..],
        &[1., 0., 1., 0., 0., 1., 0., 1., 0., 0., 0., 1., 0., 0., 0.]
    );
}

#[test]
fn neighbors_count_every_decision() {
    let s = DpcSpace::default();
    let a = s.parse(TOP1_CITYSCAPES).unwrap();
    let ns = s.neighbors(&a).unwrap();
    // 5 × 80 other operations + (1 + 2 + 3 + 4) other inputs.
    assert_eq!(ns.len(), 400 + 10);
    for n in &ns {
        let diff = a
            .branches
            .iter()
            .zip(&n.branches)
            .map(|(x, y)| (x.op != y.op) as usize + (x.input != y.input) as usize);
        assert_eq!(diff.sum::<usize>(), 1);
    }
}

/// Every renumbering of the branches that keeps inputs earlier.
fn renumberings(a: &DpcArch) -> Vec<DpcArch> {
    let n = a.branches.len();
    permutations(&(1..=n).collect::<Vec<_>>())
        .into_iter()
        .filter_map(|order| {
            let mut new_of = vec![0; n + 1];
            for (k, &old) in order.iter().enumerate() {
                new_of[old] = k + 1;
            }
            let branches: Vec<DpcBranch> = order
                .iter()
                .map(|&old| {
                    let b = a.branches[old - 1];
                    DpcBranch {
                        input: new_of[b.input],
                        op: b.op,
                    }
                })
                .collect();
            branches
                .iter()
                .enumerate()
                .all(|(k, b)| b.input <= k)
                .then_some(DpcArch { branches })
        })
        .collect()
}

#[test]
fn canonical_form_is_invariant_under_renumbering() {
    let s = DpcSpace::default();
    let top = s.parse(TOP1_CITYSCAPES).unwrap();
    let c = s.canonical(&top).unwrap();
    assert!(s.parse(c.as_str()).is_ok(), "canonical text is a cell: {c}");
    for r in renumberings(&top) {
        s.validate(&r).unwrap();
        assert_eq!(s.canonical(&r).unwrap(), c, "{r}");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..30 {
        let a = s.sample(&mut rng);
        let c = s.canonical(&a).unwrap();
        for r in renumberings(&a) {
            assert_eq!(s.canonical(&r).unwrap(), c);
        }
    }
    // Swapping two independent branches: same cell.
    let x = s
        .parse("conv_1x1<0 spp_1x1<0 sep_atrous_3x3_r6x3<1 conv_1x1<0 conv_1x1<0")
        .unwrap();
    let y = s
        .parse("spp_1x1<0 conv_1x1<0 sep_atrous_3x3_r6x3<2 conv_1x1<0 conv_1x1<0")
        .unwrap();
    assert_eq!(s.canonical(&x).unwrap(), s.canonical(&y).unwrap());
    // Genuinely different: the atrous branch reads the pooling branch.
    let z = s
        .parse("conv_1x1<0 spp_1x1<0 sep_atrous_3x3_r6x3<2 conv_1x1<0 conv_1x1<0")
        .unwrap();
    assert_ne!(s.canonical(&x).unwrap(), s.canonical(&z).unwrap());
    // Rates are not symmetric: r6x3 differs from r3x6.
    let w = s
        .parse("conv_1x1<0 spp_1x1<0 sep_atrous_3x3_r3x6<1 conv_1x1<0 conv_1x1<0")
        .unwrap();
    assert_ne!(s.canonical(&x).unwrap(), s.canonical(&w).unwrap());
}

#[test]
fn canonical_form_matches_brute_force_over_renumberings() {
    // 5 branches, 3 operations: 120 · 3^5 = 29,160 cells.
    let s = DpcSpace::new(5, &[1], &[1]).unwrap();
    let mut ours: HashMap<String, String> = HashMap::new();
    let mut theirs: HashMap<String, String> = HashMap::new();
    for a in s.iter() {
        let c = s.canonical(&a).unwrap().0;
        let b = renumberings(&a)
            .iter()
            .map(|r| r.to_string())
            .min()
            .unwrap();
        if let Some(prev) = ours.insert(c.clone(), b.clone()) {
            assert_eq!(
                prev, b,
                "{a} merged with a cell that is no renumbering of it"
            );
        }
        if let Some(prev) = theirs.insert(b, c.clone()) {
            assert_eq!(prev, c, "renumberings of {a} split");
        }
    }
    assert_eq!(ours.len(), theirs.len());
}

fn err(s: &str) -> ParseError {
    parse_error(DpcSpace::default().parse(s))
}

#[test]
fn bad_strings_name_token_and_position() {
    // Unknown operation.
    let e = err("conv_1x1<0 conv_3x3<1 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
    assert_eq!((e.position, e.token.as_str()), (11, "conv_3x3"));
    assert!(e.to_string().contains("sep_atrous_3x3_r{h}x{w}"), "{e}");
    // Known form, value outside the configuration.
    let e = err("conv_1x1<0 sep_atrous_3x3_r5x3<1 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert!(
        matches!(e.kind, ParseErrorKind::InvalidNumber { .. }),
        "{e}"
    );
    assert_eq!((e.position, e.token.as_str()), (11, "sep_atrous_3x3_r5x3"));
    let e = err("conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 spp_16x1<0");
    assert_eq!((e.position, e.token.as_str()), (44, "spp_16x1"));

    // Wrong count.
    let e = err("conv_1x1<0 conv_1x1<1");
    assert_eq!(
        e.kind,
        ParseErrorKind::WrongCount {
            what: "branches".into(),
            expected: 5,
            found: 2
        }
    );
    assert_eq!((e.position, e.token.as_str()), (21, ""));
    let e = err("conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 spp_1x1<5");
    assert!(matches!(
        e.kind,
        ParseErrorKind::WrongCount {
            expected: 5,
            found: 6,
            ..
        }
    ));
    assert_eq!((e.position, e.token.as_str()), (55, "spp_1x1<5"));

    // Input from a later branch, or itself.
    let e = err("conv_1x1<0 conv_1x1<2 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
    assert_eq!((e.position, e.token.as_str()), (20, "2"));
    let e = err("conv_1x1<1 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 1, to: 1 });
    assert_eq!(e.position, 9);

    // Trailing text glued to a branch.
    let e = err("conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0)");
    assert_eq!(e.kind, ParseErrorKind::TrailingInput);
    assert_eq!((e.position, e.token.as_str()), (54, ")"));
    let e = err("conv_1x1<0x conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert_eq!(
        (e.kind, e.position, e.token.as_str()),
        (ParseErrorKind::TrailingInput, 10, "x")
    );

    // Empty.
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert_eq!(err("  \n").kind, ParseErrorKind::Empty);

    // Malformed branches.
    let e = err("conv_1x1 0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!(e.position, 8);
    let e = err("conv_1x1<x conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }) && e.position == 9);
    let e = err("<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }) && e.position == 0);
    let e = err("conv_1x1<99999999999999999999999 conv_1x1<0");
    assert!(matches!(e.kind, ParseErrorKind::InvalidNumber { .. }) && e.position == 9);
    // Whitespace between and around branches is tolerated.
    let a = DpcSpace::default()
        .parse(" conv_1x1<0\tconv_1x1<0  conv_1x1<0 conv_1x1<0 conv_1x1<0\n")
        .unwrap();
    assert_eq!(a, DpcSpace::default().arch_at(0).unwrap());
}

#[test]
fn validate_rejects_foreign_cells() {
    let s = DpcSpace::default();
    let mut a = s.parse(TOP1_CITYSCAPES).unwrap();
    a.branches[2].input = 3;
    assert!(matches!(
        s.validate(&a),
        Err(SpaceError::InvalidArch { .. })
    ));
    a.branches[2].input = 2;
    a.branches[0].op = DpcOp::SepAtrous3x3 {
        rate_h: 2,
        rate_w: 1,
    };
    assert!(
        s.validate(&a)
            .unwrap_err()
            .to_string()
            .contains("sep_atrous_3x3_r2x1")
    );
    assert!(s.index_of(&a).is_err() && s.encode(&a).is_err() && s.canonical(&a).is_err());
    a.branches.pop();
    assert!(s.validate(&a).is_err());
    assert!(matches!(
        s.arch_at(s.size()),
        Err(SpaceError::IndexOutOfRange { .. })
    ));
    // FromStr accepts any parameters; the space rejects them.
    let b: DpcArch = "spp_3x5<0".parse().unwrap();
    assert_eq!(
        b.branches[0].op,
        DpcOp::Spp {
            grid_h: 3,
            grid_w: 5
        }
    );
}

#[test]
fn invalid_configs_name_the_field() {
    let field = config_field::<DpcSpace>;
    assert_eq!(field(DpcSpace::with_branches(0)), "branches");
    assert_eq!(field(DpcSpace::with_branches(40)), "branches");
    assert_eq!(field(DpcSpace::new(5, &[], &[1])), "rates");
    assert_eq!(field(DpcSpace::new(5, &[1, 1], &[1])), "rates");
    assert_eq!(field(DpcSpace::new(5, &[1], &[0])), "grids");
    assert!(DpcSpace::with_branches(8).is_ok());
}
