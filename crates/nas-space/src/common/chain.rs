//! The chain spaces (ProxylessNAS, SPOS): one choice per layer, written as the choices' names
//! separated by whitespace. The generic parts of their parsers and capabilities.

use std::fmt;

use rand::Rng;

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{ArchGraph, choose, radix};

use super::{io_labels, some_neighbors, write_list};

/// Splits a chain string into its words (runs of `[A-Za-z0-9_]`) with their byte offsets.
///
/// Words are separated by whitespace; any other character (a bracket, a comma...) is reported
/// as [`ParseErrorKind::Expected`] at its position. An empty or blank string is
/// [`ParseErrorKind::Empty`].
pub(crate) fn chain_words<'a>(
    text: &'a str,
    format: &'static str,
) -> Result<Vec<(&'a str, usize)>, ParseError> {
    let mut c = Cursor::new(text, format);
    c.non_empty()?;
    let mut words = Vec::new();
    loop {
        c.skip_ws();
        match c.peek() {
            None => break,
            Some(ch) if ch.is_ascii_alphanumeric() || ch == '_' => {}
            Some(_) => {
                return Err(c.error(ParseErrorKind::Expected {
                    expected: "a layer name".into(),
                }));
            }
        }
        let word = c.ident()?;
        if matches!(c.peek(), Some(ch) if !ch.is_whitespace()) {
            return Err(c.error(ParseErrorKind::Expected {
                expected: "a space between layer names, or the end of the string".into(),
            }));
        }
        words.push(word);
    }
    Ok(words)
}

/// Reads every word of `text` with `read` (any number of layers).
pub(crate) fn parse_words<C>(
    text: &str,
    format: &'static str,
    read: impl Fn(&str, usize) -> Result<C, ParseError>,
) -> Result<Vec<C>, ParseError> {
    chain_words(text, format)?
        .into_iter()
        .map(|(w, pos)| read(w, pos))
        .collect()
}

/// Reads exactly `n` layers: `read(layer, word, position)` reads each; too few words is a
/// [`ParseErrorKind::WrongCount`] at the end, and a word after the last layer is one too when
/// `is_name` accepts it, else [`ParseErrorKind::TrailingInput`].
pub(crate) fn parse_layers<C>(
    text: &str,
    format: &'static str,
    n: usize,
    mut read: impl FnMut(usize, &str, usize) -> Result<C, ParseError>,
    is_name: impl Fn(&str) -> bool,
) -> Result<Vec<C>, ParseError> {
    let words = chain_words(text, format)?;
    let layers = words
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, &(w, pos))| read(i, w, pos))
        .collect::<Result<Vec<_>, _>>()?;
    let count = |found| ParseErrorKind::WrongCount {
        what: "layers".into(),
        expected: n,
        found,
    };
    if words.len() < n {
        return Err(ParseError::new(format, count(words.len()), text.len(), ""));
    }
    if let Some(&(w, pos)) = words.get(n) {
        let kind = if is_name(w) {
            count(words.len())
        } else {
            ParseErrorKind::TrailingInput
        };
        return Err(ParseError::new(format, kind, pos, w));
    }
    Ok(layers)
}

/// The layers' names separated by single spaces.
pub(crate) fn write_chain<C: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    layers: &[C],
) -> fmt::Result {
    write_list(f, ["", " ", ""], layers, |f, c| write!(f, "{c}"))
}

/// `input → labels... → output` as a chain graph.
pub(crate) fn chain_graph(ops: impl Iterator<Item = String>) -> ArchGraph {
    let labels = io_labels(ops);
    let edges = (1..labels.len()).map(|i| (i - 1, i)).collect();
    ArchGraph { labels, edges }
}

/// A chain of layers and the choices of each (`choices(i)`, in the space's order).
pub(crate) struct Chain<'a, C> {
    /// The space's name, for errors.
    pub space: &'a str,
    /// The choices of each layer.
    pub choices: Vec<Vec<C>>,
}

impl<C: Copy + PartialEq> Chain<'_, C> {
    /// Changes one random layer among those with more than one choice to another of its
    /// choices (two draws: the layer, then the choice).
    pub fn mutate(&self, layers: &[C], rng: &mut dyn Rng) -> Result<Vec<C>, SpaceError> {
        let free: Vec<usize> = (0..self.choices.len())
            .filter(|&i| self.choices[i].len() > 1)
            .collect();
        if free.is_empty() {
            return Err(SpaceError::NoNeighbor {
                space: self.space.into(),
            });
        }
        let i = choose(rng, &free);
        let others: Vec<C> = self.choices[i]
            .iter()
            .copied()
            .filter(|&c| c != layers[i])
            .collect();
        let mut child = layers.to_vec();
        child[i] = choose(rng, &others);
        Ok(child)
    }

    /// Layer by layer, every other choice of that layer.
    pub fn neighbors(&self, layers: &[C]) -> Result<Vec<Vec<C>>, SpaceError> {
        let mut out = Vec::new();
        for (i, options) in self.choices.iter().enumerate() {
            for &c in options {
                if c != layers[i] {
                    let mut n = layers.to_vec();
                    n[i] = c;
                    out.push(n);
                }
            }
        }
        some_neighbors(self.space, out)
    }

    fn radices(&self) -> Vec<u128> {
        self.choices.iter().map(|c| c.len() as u128).collect()
    }

    /// The product of the layers' numbers of choices, saturating at `u128::MAX`.
    pub fn size(&self) -> u128 {
        radix::size(&self.radices()).unwrap_or(u128::MAX)
    }

    /// The layers of index `index` (mixed radix, layer 0 the least significant digit).
    pub fn at(&self, index: u128) -> Result<Vec<C>, SpaceError> {
        SpaceError::check_index(self.space, index, self.size())?;
        Ok(radix::decode(index, &self.radices())
            .iter()
            .enumerate()
            .map(|(i, &d)| self.choices[i][d as usize])
            .collect())
    }

    /// The index of `layers` (of valid layers).
    pub fn index(&self, layers: &[C]) -> u128 {
        let digits: Vec<u128> = layers
            .iter()
            .enumerate()
            .map(|(i, c)| self.choices[i].iter().position(|o| o == c).unwrap_or(0) as u128)
            .collect();
        radix::encode(&digits, &self.radices())
    }
}

/// One-hot per layer, layer-major, `slots` values a layer; `pos` gives the hot slot.
pub(crate) fn one_hot<C: Copy>(
    layers: &[C],
    slots: usize,
    pos: impl Fn(usize, C) -> Option<usize>,
) -> Vec<f32> {
    let mut v = vec![0.0; layers.len() * slots];
    for (i, &c) in layers.iter().enumerate() {
        if let Some(p) = pos(i, c) {
            v[i * slots + p] = 1.0;
        }
    }
    v
}
