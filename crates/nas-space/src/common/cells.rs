//! The two-cell spaces (DARTS, NASNet): a normal and a reduction cell of nodes that read
//! earlier states (0 and 1 are the cell inputs, `2 + i` node `i`). The generic parts of their
//! parsers, enumeration, canonical forms and graphs.

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::{Cursor, lookup};
use crate::traits::{ArchGraph, radix};

/// Reads a number and returns it with its position and its text.
pub(crate) fn number_token<'a>(c: &mut Cursor<'a>) -> Result<(usize, usize, &'a str), ParseError> {
    let rest = c.rest();
    let (v, pos) = c.number()?;
    Ok((v, pos, &rest[..c.pos() - pos]))
}

/// A comma, with any whitespace around it.
pub(crate) fn comma(c: &mut Cursor<'_>) -> Result<(), ParseError> {
    c.skip_ws();
    c.expect_char(',')?;
    c.skip_ws();
    Ok(())
}

/// Starts a parser on `Head(...)`: checks the input is not empty and its brackets, and reads
/// `Head(`.
pub(crate) fn open_call<'a>(
    s: &'a str,
    format: &'static str,
    head: &str,
) -> Result<Cursor<'a>, ParseError> {
    let mut c = Cursor::new(s, format);
    c.non_empty()?;
    c.check_brackets(&[('(', ')'), ('[', ']')])?;
    c.skip_ws();
    c.expect_str(head)?;
    c.skip_ws();
    c.expect_char('(')?;
    Ok(c)
}

/// Reads `'op', state` where the state must be earlier than `to`.
pub(crate) fn op_input<T: Copy>(
    c: &mut Cursor<'_>,
    format: &'static str,
    table: &[(&str, T)],
    to: usize,
) -> Result<(T, usize), ParseError> {
    let (name, qpos) = c.quoted()?;
    let op = lookup(format, table, name, qpos + 1)?;
    comma(c)?;
    let (from, fpos, tok) = number_token(c)?;
    if from >= to {
        return Err(c.error_at(ParseErrorKind::EdgeFromLaterNode { from, to }, fpos, tok));
    }
    Ok((op, from))
}

/// A list of tuples as read, with the positions needed for count errors.
pub(crate) struct ParsedList<T> {
    /// The tuples.
    pub items: Vec<T>,
    /// Where each tuple starts (its `(`).
    pub starts: Vec<usize>,
    /// Where the list's `]` stands.
    pub close: usize,
}

impl<T> ParsedList<T> {
    /// A [`ParseErrorKind::WrongCount`] for a list that should hold `expected` tuples: at the
    /// first extra tuple, or at the `]` when tuples are missing.
    pub fn count_error(&self, c: &Cursor<'_>, what: String, expected: usize) -> ParseError {
        let n = self.items.len();
        let (pos, token) = if n > expected {
            (self.starts[expected], "(")
        } else {
            (self.close, "]")
        };
        c.error_at(
            ParseErrorKind::WrongCount {
                what,
                expected,
                found: n,
            },
            pos,
            token,
        )
    }
}

/// Reads `[(...), (...), ...]` (trailing commas and whitespace allowed), each tuple's content
/// with `item(cursor, tuples read so far)`.
pub(crate) fn parse_tuples<T>(
    c: &mut Cursor<'_>,
    mut item: impl FnMut(&mut Cursor<'_>, &[T]) -> Result<T, ParseError>,
) -> Result<ParsedList<T>, ParseError> {
    c.expect_char('[')?;
    let mut items = Vec::new();
    let mut starts = Vec::new();
    loop {
        c.skip_ws();
        if c.peek() == Some(']') {
            break;
        }
        let start = c.pos();
        c.expect_char('(')?;
        c.skip_ws();
        let x = item(c, &items)?;
        c.skip_ws();
        c.eat_char(',');
        c.skip_ws();
        c.expect_char(')')?;
        items.push(x);
        starts.push(start);
        c.skip_ws();
        if !c.eat_char(',') {
            c.skip_ws();
            break;
        }
    }
    let close = c.pos();
    c.expect_char(']')?;
    Ok(ParsedList {
        items,
        starts,
        close,
    })
}

/// The relabelling of states by a node order (`order[new] = old`): the cell inputs keep their
/// numbers, state `2 + old` becomes `2 + new`.
pub(crate) fn state_map(order: &[usize]) -> impl Fn(usize) -> usize {
    let mut inv = vec![0; order.len()];
    for (p, &o) in order.iter().enumerate() {
        inv[o] = p;
    }
    move |j| if j < 2 { j } else { inv[j - 2] + 2 }
}

/// For each node, the nodes it reads (the states `>= 2` among `inputs`, less 2).
pub(crate) fn node_preds<'a, I>(nodes: impl Iterator<Item = I>) -> Vec<Vec<usize>>
where
    I: IntoIterator<Item = &'a usize>,
{
    nodes
        .map(|inputs| {
            inputs
                .into_iter()
                .filter(|&&j| j >= 2)
                .map(|&j| j - 2)
                .collect()
        })
        .collect()
}

/// Every order of the nodes `0..preds.len()` in which each node comes after its predecessors
/// (`preds[i]` lists the nodes node `i` reads).
pub(crate) fn topo_orders(preds: &[Vec<usize>]) -> Vec<Vec<usize>> {
    fn rec(
        preds: &[Vec<usize>],
        placed: &mut [bool],
        order: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if order.len() == preds.len() {
            out.push(order.clone());
            return;
        }
        for i in 0..preds.len() {
            if !placed[i]
                && preds[i]
                    .iter()
                    .all(|&p| placed.get(p).copied().unwrap_or(false))
            {
                placed[i] = true;
                order.push(i);
                rec(preds, placed, order, out);
                order.pop();
                placed[i] = false;
            }
        }
    }
    let mut out = Vec::new();
    rec(
        preds,
        &mut vec![false; preds.len()],
        &mut Vec::with_capacity(preds.len()),
        &mut out,
    );
    out
}

/// The least text, over the node orders that keep every node after its predecessors, of
/// `render(order, state_map(order))`.
pub(crate) fn least_relabelling(
    preds: &[Vec<usize>],
    render: impl Fn(&[usize], &dyn Fn(usize) -> usize) -> String,
) -> String {
    topo_orders(preds)
        .iter()
        .map(|order| render(order, &state_map(order)))
        .min()
        .unwrap_or_default()
}

/// The radices of both cells (normal digits first).
fn both(cell_radices: &[u128]) -> Vec<u128> {
    cell_radices.iter().chain(cell_radices).copied().collect()
}

/// Whether two cells of these radices can be counted in a `u128`.
pub(crate) fn fits(cell_radices: &[u128]) -> bool {
    radix::size(&both(cell_radices)).is_some()
}

/// The number of architectures: one cell's count squared (saturating).
pub(crate) fn size(cell_radices: &[u128]) -> u128 {
    radix::size(&both(cell_radices)).unwrap_or(u128::MAX)
}

/// The digits of the normal and the reduction cell of `index` (checked against the size).
pub(crate) fn split_index(
    space: &str,
    index: u128,
    cell_radices: &[u128],
) -> Result<[Vec<u128>; 2], SpaceError> {
    SpaceError::check_index(space, index, size(cell_radices))?;
    let cell_size = radix::size(cell_radices).unwrap_or(u128::MAX);
    Ok([index % cell_size, index / cell_size].map(|i| radix::decode(i, cell_radices)))
}

/// The index of the cells with digits `normal` and `reduce`.
pub(crate) fn join_index(normal: &[u128], reduce: &[u128], cell_radices: &[u128]) -> u128 {
    let cell_size = radix::size(cell_radices).unwrap_or(u128::MAX);
    radix::encode(reduce, cell_radices) * cell_size + radix::encode(normal, cell_radices)
}

/// The two cells' graphs as disjoint parts of one graph, the normal cell first.
pub(crate) fn join_graphs(mut normal: ArchGraph, reduce: ArchGraph) -> ArchGraph {
    let off = normal.labels.len();
    normal.labels.extend(reduce.labels);
    normal
        .edges
        .extend(reduce.edges.into_iter().map(|(a, b)| (a + off, b + off)));
    normal
}

/// The encoding of one input: a one-hot of its operation (`nops` slots, `op` the hot one) then
/// a one-hot of its state (`states` slots).
pub(crate) fn input_slot(op: Option<usize>, nops: usize, state: usize, states: usize) -> Vec<f32> {
    let mut slot = vec![0.0; nops + states];
    if let Some(p) = op {
        slot[p] = 1.0;
    }
    slot[nops + state] = 1.0;
    slot
}
