//! Tests of the NAS-RL space.

use std::collections::{HashMap, HashSet};

use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

use super::canonical::relabel;
use super::*;
use crate::common::permutations;
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::laws;
use crate::test_support::{check_laws, config_field, parse_error};
use crate::{Canonicalize, Encode, Mutate, Neighborhood, SearchSpace, TextFormat, ToGraph};

const EXAMPLE: &str = "3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]";

fn small() -> NasRlSpace {
    NasRlSpace::with_layers(3).unwrap()
}

#[test]
fn laws_hold() {
    check_laws(&NasRlSpace::default());
}

#[test]
fn strided_and_tiny_spaces_keep_the_laws() {
    let s = NasRlSpace::default()
        .with_strides(&SEARCHED_STRIDES)
        .unwrap();
    assert_eq!(s.strides(), &[1, 2, 3]);
    laws::check_sample(&s, 1, 50).unwrap();
    laws::check_mutate(&s, 2, 100).unwrap();
    laws::check_neighbors(&s, 3, 10).unwrap();
    laws::check_text(&s, 4, 50).unwrap();
    laws::check_encode(&s, 5, 20).unwrap();
    // One layer, single values: nothing to change.
    let one = NasRlSpace::new(1, &[3], &[3], &[36], &[1]).unwrap();
    let a = one.parse("3x3x36s1[]").unwrap();
    assert!(matches!(
        one.neighbors(&a),
        Err(SpaceError::NoNeighbor { .. })
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert!(matches!(
        one.mutate(&a, &mut rng),
        Err(SpaceError::NoNeighbor { .. })
    ));
    // Two layers, single values: the one skip connection is the only decision.
    let two = NasRlSpace::new(2, &[3], &[3], &[36], &[1]).unwrap();
    let a = two.parse("3x3x36s1[] 3x3x36s1[]").unwrap();
    assert_eq!(
        two.neighbors(&a).unwrap(),
        vec![two.parse("3x3x36s1[] 3x3x36s1[1]").unwrap()]
    );
    laws::check_neighbors(&two, 1, 5).unwrap();
}

#[test]
fn size_is_reported_in_bits() {
    assert_eq!(NasRlSpace::default().log2_size(), 195.0);
    let strided = NasRlSpace::default()
        .with_strides(&SEARCHED_STRIDES)
        .unwrap();
    let expected = 15.0 * 192f64.log2() + 105.0;
    assert!((strided.log2_size() - expected).abs() < 1e-9);
    assert_eq!(small().log2_size(), 3.0 * 6.0 + 3.0);
}

#[test]
fn example_prints_parses_and_graphs() {
    let s = small();
    let a = s.parse(EXAMPLE).unwrap();
    assert_eq!(a.to_string(), EXAMPLE);
    assert_eq!(
        a.layers[1],
        NasRlLayer {
            filter_height: 5,
            filter_width: 7,
            filters: 48,
            stride: 1,
            inputs: vec![1]
        }
    );
    assert_eq!(a.unconsumed(), vec![3]);
    let g = s.graph(&a).unwrap();
    assert_eq!(
        g.labels,
        vec![
            "input",
            "conv_3x3_36_s1",
            "conv_5x7_48_s1",
            "conv_3x3_64_s1",
            "output"
        ]
    );
    assert_eq!(g.edges, vec![(0, 1), (1, 2), (1, 3), (2, 3), (3, 4)]);

    // Layers without inputs read the image; unconsumed layers feed the classifier.
    let b = s.parse("1x1x24s1[] 7x7x64s1[] 3x5x36s1[1]").unwrap();
    assert_eq!(b.unconsumed(), vec![2, 3]);
    let g = s.graph(&b).unwrap();
    assert_eq!(g.edges, vec![(0, 1), (0, 2), (1, 3), (2, 4), (3, 4)]);
    // Whitespace around and between layers is tolerated.
    assert_eq!(
        s.parse("  3x3x36s1[]   5x7x48s1[1]\t3x3x64s1[1,2] ")
            .unwrap(),
        a
    );
    // serde keeps the structure.
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<NasRlArch>(&json).unwrap(), a);
}

#[test]
fn encoding_layout() {
    let s = small();
    let a = s.parse(EXAMPLE).unwrap();
    let e = s.encode(&a).unwrap();
    assert_eq!(s.encoding_len(), 3 * 13 + 3);
    assert_eq!(e.len(), 42);
    // Layer 1: height 3 (pos 1), width 3 (pos 1), 36 filters (pos 1), stride 1 (pos 0).
    assert_eq!(
        &e[..13],
        &[0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 1.]
    );
    // Connections [2<-1, 3<-1, 3<-2].
    assert_eq!(&e[39..], &[1., 1., 1.]);
    let b = s.parse("3x3x36s1[] 5x7x48s1[] 3x3x64s1[2]").unwrap();
    assert_eq!(&s.encode(&b).unwrap()[39..], &[0., 0., 1.]);
    assert_eq!(e.iter().sum::<f32>(), 12.0 + 3.0);
}

#[test]
fn neighbors_count_every_decision() {
    let s = NasRlSpace::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let a = s.sample(&mut rng);
    // 15 layers × (3 + 3 + 3) value changes + 105 connection toggles.
    assert_eq!(s.neighbors(&a).unwrap().len(), 15 * 9 + 105);
    for n in s.neighbors(&a).unwrap() {
        let diff: usize = a
            .layers
            .iter()
            .zip(&n.layers)
            .map(|(x, y)| {
                (x.filter_height != y.filter_height) as usize
                    + (x.filter_width != y.filter_width) as usize
                    + (x.filters != y.filters) as usize
                    + (x.stride != y.stride) as usize
                    + x.inputs
                        .iter()
                        .collect::<HashSet<_>>()
                        .symmetric_difference(&y.inputs.iter().collect())
                        .count()
            })
            .sum();
        assert_eq!(diff, 1);
    }
}

/// A random topological relabelling of `a`.
fn shuffle(a: &NasRlArch, rng: &mut ChaCha8Rng) -> NasRlArch {
    let n = a.layers.len();
    let mut placed = vec![false; n];
    let mut order = Vec::new();
    while order.len() < n {
        let ready: Vec<usize> = (0..n)
            .filter(|&i| !placed[i] && a.layers[i].inputs.iter().all(|&j| placed[j - 1]))
            .collect();
        let i = ready[rng.random_range(0..ready.len())];
        placed[i] = true;
        order.push(i);
    }
    relabel(a, &order)
}

#[test]
fn canonical_form_is_invariant_under_relabelling() {
    let s = NasRlSpace::default();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for _ in 0..30 {
        let a = s.sample(&mut rng);
        let c = s.canonical(&a).unwrap();
        assert!(
            s.parse(c.as_str()).is_ok(),
            "canonical text is an architecture"
        );
        for _ in 0..5 {
            let b = shuffle(&a, &mut rng);
            s.validate(&b).unwrap();
            assert_eq!(s.canonical(&b).unwrap(), c, "{a} vs {b}");
        }
    }
    // Two independent layers swapped: same network.
    let s = small();
    let x = s.parse("3x3x36s1[] 5x5x48s1[] 1x1x64s1[1]").unwrap();
    let y = s.parse("5x5x48s1[] 3x3x36s1[] 1x1x64s1[2]").unwrap();
    assert_eq!(s.canonical(&x).unwrap(), s.canonical(&y).unwrap());
    // Genuinely different: the 1x1 layer reads the other layer.
    let z = s.parse("3x3x36s1[] 5x5x48s1[] 1x1x64s1[2]").unwrap();
    assert_ne!(s.canonical(&x).unwrap(), s.canonical(&z).unwrap());
}

#[test]
fn canonical_form_tells_shared_from_separate_inputs() {
    // Same unfolded expressions (B(A), C(A), C(A)), different sharing: in x the two C
    // layers share one A, in y one C shares its A with B.
    let s = NasRlSpace::new(5, &[3, 5], &[3], &[36, 48], &[1]).unwrap();
    let x = s
        .parse("3x3x36s1[] 3x3x36s1[] 5x3x48s1[1] 5x3x36s1[2] 5x3x36s1[2]")
        .unwrap();
    let y = s
        .parse("3x3x36s1[] 3x3x36s1[] 5x3x48s1[1] 5x3x36s1[1] 5x3x36s1[2]")
        .unwrap();
    assert_ne!(s.canonical(&x).unwrap(), s.canonical(&y).unwrap());
    // The same sharing as x with the A layers swapped.
    let z = s
        .parse("3x3x36s1[] 3x3x36s1[] 5x3x48s1[2] 5x3x36s1[1] 5x3x36s1[1]")
        .unwrap();
    assert_eq!(s.canonical(&x).unwrap(), s.canonical(&z).unwrap());
}

/// Every architecture of a small space, by brute force.
fn all_archs(s: &NasRlSpace) -> Vec<NasRlArch> {
    let n = s.layers();
    let mut archs = vec![NasRlArch { layers: vec![] }];
    for l in 0..n {
        let mut next = Vec::new();
        for a in &archs {
            for &h in s.heights() {
                for &f in s.filters() {
                    for mask in 0..(1usize << l) {
                        let mut b = a.clone();
                        b.layers.push(NasRlLayer {
                            filter_height: h,
                            filter_width: s.widths()[0],
                            filters: f,
                            stride: s.strides()[0],
                            inputs: (0..l)
                                .filter(|j| mask >> j & 1 == 1)
                                .map(|j| j + 1)
                                .collect(),
                        });
                        next.push(b);
                    }
                }
            }
        }
        archs = next;
    }
    archs
}

/// Canonical form by brute force over every topological relabelling.
fn brute_canonical(a: &NasRlArch) -> String {
    let n = a.layers.len();
    permutations(&(0..n).collect::<Vec<_>>())
        .into_iter()
        .filter(|order| {
            let mut pos = vec![0; n];
            for (k, &i) in order.iter().enumerate() {
                pos[i] = k;
            }
            (0..n).all(|i| a.layers[i].inputs.iter().all(|&j| pos[j - 1] < pos[i]))
        })
        .map(|order| relabel(a, &order).to_string())
        .min()
        .unwrap()
}

fn assert_same_partition(s: &NasRlSpace) {
    let archs = all_archs(s);
    let mut ours: HashMap<String, String> = HashMap::new();
    let mut theirs: HashMap<String, String> = HashMap::new();
    for a in &archs {
        s.validate(a).unwrap();
        let c = s.canonical(a).unwrap().0;
        let b = brute_canonical(a);
        if let Some(prev) = ours.insert(c.clone(), b.clone()) {
            assert_eq!(prev, b, "{a} merged with a non-isomorphic network");
        }
        if let Some(prev) = theirs.insert(b, c.clone()) {
            assert_eq!(prev, c, "isomorphic networks split: {a}");
        }
    }
    assert_eq!(ours.len(), theirs.len());
}

#[test]
fn canonical_form_matches_brute_force_isomorphism() {
    // 4 layers, 2 × 2 labels: 4^4 · 2^6 = 16,384 networks.
    assert_same_partition(&NasRlSpace::new(4, &[1, 3], &[3], &[24, 36], &[1]).unwrap());
    // 5 layers, one label: only the connections matter (1,024 networks).
    assert_same_partition(&NasRlSpace::new(5, &[3], &[3], &[36], &[1]).unwrap());
}

fn err(s: &str) -> ParseError {
    parse_error(small().parse(s))
}

#[test]
fn bad_strings_name_token_and_position() {
    // Value outside the configured set (an "unknown op" for this space).
    let e = err("3x3x36s1[] 5x7x40s1[1] 3x3x64s1[1,2]");
    assert!(
        matches!(e.kind, ParseErrorKind::InvalidNumber { .. }),
        "{e}"
    );
    assert_eq!((e.position, e.token.as_str()), (15, "40"));
    assert!(e.to_string().contains("[24, 36, 48, 64]"), "{e}");
    let e = err("3x3x36s2[] 5x7x48s1[1] 3x3x64s1[1,2]");
    assert_eq!((e.position, e.token.as_str()), (7, "2"));
    let e = err("3x2x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]");
    assert_eq!((e.position, e.token.as_str()), (2, "2"));

    // Wrong count: too few (at the end), too many (at the first extra layer).
    let e = err("3x3x36s1[] 5x7x48s1[1]");
    assert_eq!(
        e.kind,
        ParseErrorKind::WrongCount {
            what: "layers".into(),
            expected: 3,
            found: 2
        }
    );
    assert_eq!((e.position, e.token.as_str()), (22, ""));
    let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2] 1x1x24s1[]");
    assert!(matches!(
        e.kind,
        ParseErrorKind::WrongCount {
            expected: 3,
            found: 4,
            ..
        }
    ));
    assert_eq!((e.position, e.token.as_str()), (37, "1x1x24s1[]"));

    // Input from a later layer (or itself).
    let e = err("3x3x36s1[] 5x7x48s1[2] 3x3x64s1[1,2]");
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
    assert_eq!((e.position, e.token.as_str()), (20, "2"));
    let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,4]");
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 4, to: 3 });
    assert_eq!(e.position, 34);
    // Layer 0, unsorted and duplicate inputs.
    let e = err("3x3x36s1[] 5x7x48s1[0] 3x3x64s1[1,2]");
    assert!(
        matches!(e.kind, ParseErrorKind::Invalid { .. }) && e.position == 20,
        "{e}"
    );
    let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[2,1]");
    assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
    assert_eq!((e.position, e.token.as_str()), (34, "1"));
    let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,1]");
    assert!(
        matches!(e.kind, ParseErrorKind::Invalid { .. }) && e.position == 34,
        "{e}"
    );

    // Unbalanced brackets.
    let e = err("3x3x36s1[] 5x7x48s1[1 3x3x64s1[1,2]");
    assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: '[' });
    assert_eq!((e.position, e.token.as_str()), (19, "["));
    let e = err("3x3x36s1[]] 5x7x48s1[1] 3x3x64s1[1,2]");
    assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: ']' });
    assert_eq!(e.position, 10);

    // Trailing text glued to the last layer.
    let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2];");
    assert_eq!(e.kind, ParseErrorKind::TrailingInput);
    assert_eq!((e.position, e.token.as_str()), (36, ";"));
    let e = err("3x3x36s1[]x 5x7x48s1[1] 3x3x64s1[1,2]");
    assert_eq!((e.kind, e.position), (ParseErrorKind::TrailingInput, 10));

    // Empty.
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert_eq!(err(" \t ").kind, ParseErrorKind::Empty);

    // Malformed layers.
    let e = err("3x3x36[] 5x7x48s1[1] 3x3x64s1[1,2]");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!((e.position, e.token.as_str()), (6, "["));
    let e = err("3x3x36s1[] conv 3x3x64s1[1,2]");
    assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
    assert_eq!((e.position, e.token.as_str()), (11, "conv"));
    let e = err("3x3x36s1[] 5x7x48s1[1 2] 3x3x64s1[1,2]");
    assert!(
        matches!(e.kind, ParseErrorKind::Expected { .. }) && e.position == 21,
        "{e}"
    );
    let e = err("99999999999x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]");
    assert!(
        matches!(e.kind, ParseErrorKind::InvalidNumber { .. }) && e.position == 0,
        "{e}"
    );
}

#[test]
fn validate_rejects_foreign_architectures() {
    let s = small();
    let mut a = s.parse(EXAMPLE).unwrap();
    assert!(
        s.validate(&NasRlSpace::default().sample(&mut ChaCha8Rng::seed_from_u64(1)))
            .is_err()
    );
    a.layers[2].inputs = vec![2, 1];
    assert!(matches!(
        s.validate(&a),
        Err(SpaceError::InvalidArch { .. })
    ));
    a.layers[2].inputs = vec![3];
    assert!(s.validate(&a).is_err());
    a.layers[2].inputs = vec![];
    a.layers[0].filters = 100;
    assert!(s.validate(&a).unwrap_err().to_string().contains("100"));
    assert!(s.encode(&a).is_err() && s.graph(&a).is_err() && s.canonical(&a).is_err());
    // FromStr accepts any values; the space rejects them.
    let b: NasRlArch = "2x2x10s9[]".parse().unwrap();
    assert_eq!(b.layers[0].stride, 9);
}

#[test]
fn invalid_configs_name_the_field() {
    let field = config_field::<NasRlSpace>;
    assert_eq!(field(NasRlSpace::with_layers(0)), "layers");
    assert_eq!(field(NasRlSpace::new(3, &[], &[3], &[24], &[1])), "heights");
    assert_eq!(
        field(NasRlSpace::new(3, &[3], &[3, 3], &[24], &[1])),
        "widths"
    );
    assert_eq!(
        field(NasRlSpace::new(3, &[3], &[3], &[0, 24], &[1])),
        "filters"
    );
    assert_eq!(field(NasRlSpace::default().with_strides(&[])), "strides");
}
