//! Tests of the NAS-Bench-201 space.

use super::*;
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::test_support::{assert_wrong_count, check_all_laws, check_small_laws};
use crate::{Enumerable, SearchSpace, ToGraph};

const BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

#[test]
fn laws_hold() {
    check_all_laws(&Nb201Space::default());
}

#[test]
fn restricted_space_laws_hold() {
    let s = Nb201Space::with_ops(&[Nb201Op::SkipConnect, Nb201Op::NorConv3x3]).unwrap();
    assert_eq!(s.size(), 64);
    check_small_laws(&s, 1);
    let all_none = Nb201Arch::new([Nb201Op::None; 6]);
    assert!(matches!(
        s.validate(&all_none),
        Err(SpaceError::InvalidArch { .. })
    ));
    assert!(Nb201Space::with_ops(&[]).is_err());
    assert!(Nb201Space::with_ops(&[Nb201Op::None, Nb201Op::None]).is_err());
}

#[test]
fn prints_and_parses_the_published_best_cell() {
    let a: Nb201Arch = BEST.parse().unwrap();
    assert_eq!(a.to_string(), BEST);
    assert_eq!(a.edge(1, 0), Nb201Op::NorConv3x3);
    assert_eq!(a.edge(3, 2), Nb201Op::NorConv1x1);
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(json, format!("\"{BEST}\""));
}

#[test]
fn unique_string_matches_table_examples() {
    let a: Nb201Arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        .parse()
        .unwrap();
    assert_eq!(
        a.unique_string(),
        "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0"
    );
    let b: Nb201Arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
        .parse()
        .unwrap();
    assert_eq!(
        b.unique_string(),
        "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1"
    );
}

#[test]
fn full_enumeration_is_a_bijection() {
    let s = Nb201Space::default();
    let all: Vec<_> = s.iter().collect();
    assert_eq!(all.len(), 15_625);
    let set: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(set.len(), 15_625);
    for (i, a) in all.iter().enumerate().step_by(97) {
        assert_eq!(s.index_of(a).unwrap(), i as u128);
    }
}

fn err(s: &str) -> ParseError {
    s.parse::<Nb201Arch>().unwrap_err()
}

#[test]
fn bad_strings_name_token_and_position() {
    let e = err(
        "|nor_conv_5x5~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    );
    assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
    assert_eq!((e.position, e.token.as_str()), (1, "nor_conv_5x5"));
    assert!(e.to_string().contains("nor_conv_5x5") && e.to_string().contains("skip_connect"));

    let e = err(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~2|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    );
    assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
    assert_eq!(e.position, 46);

    let e = err("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|");
    assert_wrong_count(&e, 3, 2);

    let e = err("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|");
    assert_wrong_count(&e, 2, 1);

    let e = err(&format!("{BEST}+|none~0|none~1|none~2|none~3|"));
    assert_wrong_count(&e, 3, 4);

    let e = err(&format!("{BEST} extra"));
    assert_eq!(e.kind, ParseErrorKind::TrailingInput);
    assert_eq!(e.token, "extra");

    assert_eq!(err("   ").kind, ParseErrorKind::Empty);
    assert!(matches!(
        err("nor_conv_3x3~0").kind,
        ParseErrorKind::Expected { .. }
    ));
    assert!(matches!(
        err("|nor_conv_3x3~x|").kind,
        ParseErrorKind::Expected { .. }
    ));
    assert!(matches!(
        err("|nor_conv_3x3~99999999999999999999999|").kind,
        ParseErrorKind::InvalidNumber { .. }
    ));
    // Edges out of order.
    let e = err(
        "|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    );
    assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
}

#[test]
fn serde_rejects_bad_strings() {
    let r: Result<Nb201Arch, _> = serde_json::from_str("\"|bogus~0|\"");
    assert!(r.unwrap_err().to_string().contains("bogus"));
}

#[test]
fn graph_of_best_cell() {
    let s = Nb201Space::default();
    let a: Nb201Arch = BEST.parse().unwrap();
    let g = s.graph(&a).unwrap();
    assert_eq!(g.labels.len(), 8);
    assert_eq!(g.labels[0], "input");
    assert_eq!(g.labels[7], "output");
    // Edge 1<-0 (node 1) feeds edges 2<-1 (node 3) and 3<-1 (node 5).
    assert!(g.edges.contains(&(1, 3)) && g.edges.contains(&(1, 5)));
    let none = Nb201Arch::new([Nb201Op::None; 6]);
    assert_eq!(s.graph(&none).unwrap().labels, vec!["input", "output"]);
}
