//! Helpers for the unit tests of the built-in spaces.

use std::fmt::Debug;

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::laws;
use crate::{Canonicalize, Encode, Enumerable, Mutate, Neighborhood, TextFormat, ToGraph};

/// Every law of [`laws`] but enumeration, with the usual seeds and sample counts.
pub(crate) fn check_laws<S>(s: &S)
where
    S: Mutate + Neighborhood + TextFormat + Encode + Canonicalize + ToGraph,
{
    laws::check_sample(s, 1, 200).unwrap();
    laws::check_serde(s, 2, 200).unwrap();
    laws::check_mutate(s, 3, 200).unwrap();
    laws::check_neighbors(s, 4, 50).unwrap();
    laws::check_text(s, 5, 200).unwrap();
    laws::check_encode(s, 6, 50).unwrap();
    laws::check_canonical(s, 8, 50).unwrap();
    laws::check_graph(s, 9, 50).unwrap();
}

/// Every law of [`laws`], enumeration included.
pub(crate) fn check_all_laws<S>(s: &S)
where
    S: Mutate + Neighborhood + TextFormat + Encode + Canonicalize + ToGraph + Enumerable,
{
    check_laws(s);
    laws::check_enumerable(s, 7, 200).unwrap();
}

/// The laws a small variant of a space is checked with: mutation, neighbours, enumeration.
pub(crate) fn check_small_laws<S: Mutate + Neighborhood + Enumerable>(s: &S, seed: u64) {
    laws::check_mutate(s, seed, 50).unwrap();
    laws::check_enumerable(s, seed, 50).unwrap();
    laws::check_neighbors(s, seed, 20).unwrap();
}

/// The field named by an [`SpaceError::InvalidConfig`].
pub(crate) fn config_field<S: Debug>(r: Result<S, SpaceError>) -> &'static str {
    match r {
        Err(SpaceError::InvalidConfig { field, .. }) => field,
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

/// The parse error of a space's `parse`.
pub(crate) fn parse_error<A: Debug>(r: Result<A, SpaceError>) -> ParseError {
    match r {
        Err(SpaceError::Parse(e)) => e,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// Asserts that `e` is a [`ParseErrorKind::WrongCount`] of `found` where `expected` are needed.
pub(crate) fn assert_wrong_count(e: &ParseError, expected: usize, found: usize) {
    assert!(
        matches!(e.kind, ParseErrorKind::WrongCount { expected: x, found: y, .. } if x == expected && y == found),
        "{e}"
    );
}

/// A chain space's count errors: `text` (an architecture of `s` with `n` layers) without its
/// last word is one layer short, reported at the end; with the layers `extra` appended it has
/// too many, reported at the first extra one.
pub(crate) fn chain_wrong_count<S: TextFormat>(s: &S, text: &str, n: usize, extra: &str) {
    let count = |found| ParseErrorKind::WrongCount {
        what: "layers".into(),
        expected: n,
        found,
    };
    let short = text.rsplit_once(' ').unwrap().0;
    let e = parse_error(s.parse(short));
    assert_eq!(e.kind, count(n - 1));
    assert_eq!((e.position, e.token.as_str()), (short.len(), ""));
    let e = parse_error(s.parse(&format!("{text} {extra}")));
    assert_eq!(e.kind, count(n + extra.split_whitespace().count()));
    let first = extra.split_whitespace().next().unwrap();
    assert_eq!((e.position, e.token.as_str()), (text.len() + 1, first));
}

/// A chain space's error for the word `word`, not a layer name, after a complete `text`.
pub(crate) fn chain_trailing_word<S: TextFormat>(s: &S, text: &str, word: &str) {
    let e = parse_error(s.parse(&format!("{text} {word}")));
    assert_eq!(e.kind, ParseErrorKind::TrailingInput);
    assert_eq!((e.position, e.token.as_str()), (text.len() + 1, word));
}

/// A chain space reports `text` in brackets at the opening one.
pub(crate) fn chain_rejects_brackets<S: TextFormat>(s: &S, text: &str) {
    for (open, close) in [('(', ')'), ('[', ']')] {
        let e = parse_error(s.parse(&format!("{open}{text}{close}")));
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }), "{e}");
        assert_eq!(
            (e.position, e.token.as_str()),
            (0, open.to_string().as_str())
        );
    }
}

/// Blank inputs are [`ParseErrorKind::Empty`] at 0.
pub(crate) fn rejects_blank<S: TextFormat>(s: &S) {
    for text in ["", "   \n", " \t\n"] {
        let e = parse_error(s.parse(text));
        assert_eq!(
            (e.kind, e.position, e.token.as_str()),
            (ParseErrorKind::Empty, 0, "")
        );
    }
}
