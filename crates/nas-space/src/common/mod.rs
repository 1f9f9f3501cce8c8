//! Helpers shared by several built-in spaces: configuration checks, neighbourhoods, text
//! output, and the macros for the trait impls that are the same in every space.

pub(crate) mod cells;
pub(crate) mod chain;

use std::collections::BTreeSet;
use std::fmt;

use rand::{Rng, RngExt};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::choose;

/// `TryFrom<String>` (parsing) and `From<T> for String` (printing) for a type whose serde form
/// is its text.
macro_rules! string_serde {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = $crate::error::ParseError;
            fn try_from(s: String) -> Result<Self, $crate::error::ParseError> {
                s.parse()
            }
        }

        impl From<$t> for String {
            fn from(a: $t) -> String {
                a.to_string()
            }
        }
    };
}

/// `Display` (its `name()`) and `FromStr` (a lookup in its `table()`) for an operation enum.
macro_rules! named_op {
    ($t:ty, $format:expr) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::error::ParseError;
            fn from_str(s: &str) -> Result<Self, $crate::error::ParseError> {
                $crate::text::lookup($format, &<$t>::table(), s, 0)
            }
        }
    };
}

/// A space serialized as its configuration: `From<Space> for Config`, and
/// `TryFrom<Config> for Space` through `Space::new`.
macro_rules! config_serde {
    ($space:ty, $config:ty) => {
        /// Serialized as its configuration, so a saved space can be reloaded; loading validates it.
        impl From<$space> for $config {
            fn from(space: $space) -> Self {
                space.config
            }
        }

        impl TryFrom<$config> for $space {
            type Error = $crate::error::SpaceError;
            fn try_from(config: $config) -> Result<Self, $crate::error::SpaceError> {
                <$space>::new(config)
            }
        }
    };
}

pub(crate) use {config_serde, named_op, string_serde};

/// Fails with "must not be empty" on an empty list.
pub(crate) fn non_empty<T>(
    space: &str,
    field: &'static str,
    items: &[T],
) -> Result<(), SpaceError> {
    if items.is_empty() {
        return Err(SpaceError::config(space, field, "must not be empty"));
    }
    Ok(())
}

/// A non-empty list without repeats (named in the error: "lists `x` twice").
pub(crate) fn no_repeats<T: PartialEq + fmt::Display>(
    space: &str,
    field: &'static str,
    items: &[T],
) -> Result<(), SpaceError> {
    non_empty(space, field, items)?;
    for (k, x) in items.iter().enumerate() {
        if items[..k].contains(x) {
            return Err(SpaceError::config(
                space,
                field,
                format!("lists `{x}` twice"),
            ));
        }
    }
    Ok(())
}

/// A non-empty list of distinct positive values; a zero is reported with `zero`.
pub(crate) fn positive_distinct<T: Ord + Copy + Default>(
    space: &str,
    field: &'static str,
    values: &[T],
    zero: &str,
) -> Result<(), SpaceError> {
    non_empty(space, field, values)?;
    if values.contains(&T::default()) {
        return Err(SpaceError::config(space, field, zero));
    }
    if values.iter().collect::<BTreeSet<_>>().len() != values.len() {
        return Err(SpaceError::config(
            space,
            field,
            "contains a duplicate value",
        ));
    }
    Ok(())
}

/// `value` in `1..=max`, or "must be between 1 and {max}, got {value}".
pub(crate) fn in_range(
    space: &str,
    field: &'static str,
    value: usize,
    max: usize,
) -> Result<(), SpaceError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(SpaceError::config(
            space,
            field,
            format!("must be between 1 and {max}, got {value}"),
        ))
    }
}

/// An architecture with `found` parts where the space has `expected`: "expected 5 layers, found 4".
pub(crate) fn check_len(
    space: &str,
    what: &str,
    expected: usize,
    found: usize,
) -> Result<(), SpaceError> {
    if expected == found {
        Ok(())
    } else {
        Err(SpaceError::invalid(
            space,
            format!("expected {expected} {what}, found {found}"),
        ))
    }
}

/// The neighbours, or [`SpaceError::NoNeighbor`] when there are none.
pub(crate) fn some_neighbors<A>(space: &str, out: Vec<A>) -> Result<Vec<A>, SpaceError> {
    if out.is_empty() {
        return Err(SpaceError::NoNeighbor {
            space: space.into(),
        });
    }
    Ok(out)
}

/// One uniformly chosen element of a non-empty neighbourhood (one draw).
pub(crate) fn pick<A>(mut neighbors: Vec<A>, rng: &mut dyn Rng) -> A {
    let k = rng.random_range(0..neighbors.len());
    neighbors.swap_remove(k)
}

/// The mutation of the spaces whose neighbourhood is a list of decisions, each with its own
/// variants: one decision uniformly, then one of its variants uniformly (two draws).
pub(crate) fn mutate_by_decision<D: Copy, A>(
    space: &str,
    decisions: &[D],
    variants: impl Fn(D) -> Vec<A>,
    rng: &mut dyn Rng,
) -> Result<A, SpaceError> {
    if decisions.is_empty() {
        return Err(SpaceError::NoNeighbor {
            space: space.into(),
        });
    }
    let d = choose(rng, decisions);
    let mut variants = variants(d);
    let k = choose(rng, &(0..variants.len()).collect::<Vec<_>>());
    Ok(variants.swap_remove(k))
}

/// Every variant of every decision, in order, or [`SpaceError::NoNeighbor`].
pub(crate) fn neighbors_by_decision<D: Copy, A>(
    space: &str,
    decisions: Vec<D>,
    variants: impl Fn(D) -> Vec<A>,
) -> Result<Vec<A>, SpaceError> {
    some_neighbors(space, decisions.into_iter().flat_map(variants).collect())
}

/// Writes `items` between `open` and `close`, separated by `sep`, each with `each`.
pub(crate) fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    [open, sep, close]: [&str; 3],
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut fmt::Formatter<'_>, T) -> fmt::Result,
) -> fmt::Result {
    f.write_str(open)?;
    for (k, x) in items.into_iter().enumerate() {
        if k > 0 {
            f.write_str(sep)?;
        }
        each(f, x)?;
    }
    f.write_str(close)
}

/// `input`, the given labels, `output`: the nodes of the graphs with one input and one output.
pub(crate) fn io_labels(labels: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = vec!["input".to_string()];
    out.extend(labels);
    out.push("output".into());
    out
}

/// After one item of a whitespace-separated list: `true` at the end of the input, an error on
/// anything glued to the item, else skips the whitespace (and says whether the input ends).
pub(crate) fn item_done(c: &mut Cursor<'_>) -> Result<bool, ParseError> {
    if c.at_end() {
        return Ok(true);
    }
    if !c.peek().is_some_and(char::is_whitespace) {
        return Err(c.error(ParseErrorKind::TrailingInput));
    }
    c.skip_ws();
    Ok(c.at_end())
}

/// Checks the number of parsed items against `expected`: too few is a
/// [`ParseErrorKind::WrongCount`] at the end of the (trimmed) text, too many one at the first
/// extra item (`spans` are the items' byte ranges).
pub(crate) fn check_item_count(
    format: &'static str,
    what: &str,
    expected: usize,
    text: &str,
    spans: &[(usize, usize)],
) -> Result<(), ParseError> {
    let wrong = |pos: usize, token: &str| {
        ParseError::new(
            format,
            ParseErrorKind::WrongCount {
                what: what.into(),
                expected,
                found: spans.len(),
            },
            pos,
            token,
        )
    };
    if spans.len() < expected {
        return Err(wrong(text.trim_end().len(), ""));
    }
    if let Some(&(start, end)) = spans.get(expected) {
        return Err(wrong(start, &text[start..end]));
    }
    Ok(())
}

/// All permutations of `items` (small slices only).
pub(crate) fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for k in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(k);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}
