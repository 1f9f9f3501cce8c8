//! Checks the NAS-Bench-201 space against the benchmark's own table.

mod support;

use std::collections::{HashMap, HashSet};

use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas::space::{Canonicalize, Enumerable, TextFormat};

#[test]
fn canonical_form_reproduces_the_tables_6466_classes() {
    let Some(path) = support::nb201_csv() else {
        return;
    };
    let table = Nb201Table::open(&path).expect("read the table");
    let space = Nb201Space::default();
    assert_eq!(table.rows().len(), 15_625);

    // Our canonical form equals the table's UniqueString on every row...
    for row in table.rows() {
        let canon = space.canonical(&row.arch).unwrap();
        assert_eq!(canon.as_str(), row.unique_string, "cell {}", row.arch);
        assert_eq!(
            space.to_text(&row.arch),
            space.to_text(&space.parse(&row.arch.to_string()).unwrap())
        );
    }
    // ...so the partitions are the same; count the classes both ways.
    let ours: HashSet<_> = table
        .rows()
        .iter()
        .map(|r| space.canonical(&r.arch).unwrap().stable_hash())
        .collect();
    let theirs: HashSet<_> = table
        .rows()
        .iter()
        .map(|r| r.unique_string.as_str())
        .collect();
    assert_eq!(theirs.len(), 6_466);
    assert_eq!(
        ours.len(),
        6_466,
        "the stable hash must not collide on this space"
    );

    // Partition equality, checked directly: map each of our classes to the table's.
    let mut class_map: HashMap<String, &str> = HashMap::new();
    for r in table.rows() {
        let c = space.canonical(&r.arch).unwrap().0;
        let prev = class_map.entry(c).or_insert(&r.unique_string);
        assert_eq!(*prev, r.unique_string);
    }

    // The table holds exactly our enumeration.
    let enumerated: HashSet<Nb201Arch> = space.iter().collect();
    let tabled: HashSet<Nb201Arch> = table.rows().iter().map(|r| r.arch).collect();
    assert_eq!(enumerated, tabled);
}

#[test]
fn published_reference_points() {
    let Some(path) = support::nb201_csv() else {
        return;
    };
    let table = Nb201Table::open(&path).unwrap();
    let best = table.best(Nb201Dataset::Cifar10);
    assert_eq!(
        best.arch.to_string(),
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    );
    assert!((best.accuracy(Nb201Dataset::Cifar10) - 94.3733).abs() < 1e-3);
    assert!(
        (table
            .best(Nb201Dataset::Cifar100)
            .accuracy(Nb201Dataset::Cifar100)
            - 73.5133)
            .abs()
            < 1e-3
    );
    assert!(
        (table
            .best(Nb201Dataset::ImageNet16_120)
            .accuracy(Nb201Dataset::ImageNet16_120)
            - 47.3111)
            .abs()
            < 1e-3
    );
    let mean: f64 = table
        .rows()
        .iter()
        .map(|r| r.accuracy(Nb201Dataset::Cifar10))
        .sum::<f64>()
        / 15_625.0;
    assert!((mean - 87.06).abs() < 0.01, "{mean}");
    let skip = table
        .get(&Nb201Arch::new([Nb201Op::SkipConnect; 6]))
        .unwrap();
    assert!((skip.accuracy(Nb201Dataset::Cifar10) - 54.30).abs() < 0.01);
}
