//! The DARTS cell space (Liu, Simonyan and Yang, "DARTS: Differentiable Architecture Search",
//! ICLR 2019).
//!
//! A network stacks normal and reduction cells. Each cell has two input states, `c_{k-2}`
//! (index 0) and `c_{k-1}` (index 1), and `steps` intermediate nodes (4 in DARTS): node `i`
//! (`i = 0..steps`) is state `i + 2` and is the sum of two operations, each applied to an
//! earlier state (`0..i + 2`). The cell output concatenates the states listed in its `concat`
//! (all intermediate nodes, `range(2, 6)`, in DARTS).
//!
//! Architectures are [`Genotype`]s, printed exactly as Python prints the DARTS repository's
//! `namedtuple` (`cnn/genotypes.py` of `quark0/darts`):
//!
//! ```text
//! Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))
//! ```
//!
//! `normal` lists the two inputs of node 0, then the two of node 1, and so on, each as
//! `(operation, predecessor state)`. The parser also accepts `[2, 3, 4, 5]` lists for the
//! concats, double quotes, trailing commas, the four fields in any order, and any whitespace
//! (so the multi-line genotypes of the DARTS repository parse as they are written).
//!
//! The published genotypes are test vectors here: [`DARTS_V1`], [`DARTS_V2`] (DARTS), [`PDARTS`]
//! (Chen et al. 2019, `chenxin061/pdarts`), and the DARTS repository's transcriptions of
//! [`NASNET`] (NASNet-A) and [`AMOEBANET`] (AmoebaNet-A). The last two have 5 nodes, repeat
//! inputs, use `sep_conv_7x7` / `conv_7x1_1x7` and concatenate only the unused states, so they
//! belong to a configured space ([`DartsConfig::nasnet_style`]), not to the default one.
//!
//! ```
//! use nas_space::darts::{self, DartsOp, DartsSpace, Genotype};
//! use nas_space::{Canonicalize, TextFormat};
//!
//! let space = DartsSpace::default();
//! let g = space.parse(darts::DARTS_V2)?;
//! assert_eq!(g.normal[7], (DartsOp::DilConv3x3, 2));
//! assert!(space.to_text(&g).contains("normal_concat=range(2, 6)"));
//! assert_eq!(space.to_text(&g).parse::<Genotype>()?, g);
//! assert_eq!(g, darts::darts_v2());
//! let _key = space.canonical(&g)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::{Cursor, lookup};
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

const FORMAT: &str = "DARTS genotype";

/// The largest number of intermediate nodes a [`DartsSpace`] accepts (canonical forms are found
/// by brute force over node orders).
pub const MAX_STEPS: usize = 8;

/// `DARTS_V1` (first-order DARTS, CIFAR-10) as written in `cnn/genotypes.py` of `quark0/darts`.
pub const DARTS_V1: &str = "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])";

/// `DARTS_V2` (second-order DARTS, CIFAR-10; the repository's `DARTS = DARTS_V2`) as written in
/// `cnn/genotypes.py` of `quark0/darts`.
pub const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

/// The P-DARTS CIFAR-10 cell (Chen et al., ICCV 2019) as written in `genotypes.py` of
/// `chenxin061/pdarts`.
pub const PDARTS: &str = "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))";

/// NASNet-A (Zoph et al. 2018) in DARTS notation, from `cnn/genotypes.py` of `quark0/darts`
/// (written there over several lines; joined into one here). 5 nodes, concat of the unused
/// states. See [`crate::nasnet`] for the NASNet space itself.
pub const NASNET: &str = "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1)], normal_concat=[2, 3, 4, 5, 6], reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1)], reduce_concat=[4, 5, 6])";

/// AmoebaNet-A (Real et al. 2019) in DARTS notation, from `cnn/genotypes.py` of `quark0/darts`
/// (joined into one line). 5 nodes, concat of the unused states.
pub const AMOEBANET: &str = "Genotype(normal=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 0), ('avg_pool_3x3', 1)], normal_concat=[4, 5, 6], reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)], reduce_concat=[3, 4, 6])";

fn builtin(text: &str) -> Genotype {
    // The built-in strings are constants checked by the tests, not user input.
    text.parse().expect("built-in genotype parses")
}

/// [`DARTS_V1`], parsed.
pub fn darts_v1() -> Genotype {
    builtin(DARTS_V1)
}

/// [`DARTS_V2`], parsed.
pub fn darts_v2() -> Genotype {
    builtin(DARTS_V2)
}

/// [`PDARTS`], parsed.
pub fn pdarts() -> Genotype {
    builtin(PDARTS)
}

/// [`NASNET`], parsed.
pub fn nasnet() -> Genotype {
    builtin(NASNET)
}

/// [`AMOEBANET`], parsed.
pub fn amoebanet() -> Genotype {
    builtin(AMOEBANET)
}

/// An operation of the DARTS code base (`OPS` of `cnn/operations.py`).
///
/// The first eight, in this order, are the DARTS search space's `PRIMITIVES`
/// ([`DartsOp::PRIMITIVES`]); `sep_conv_7x7` and `conv_7x1_1x7` occur only in the NASNet and
/// AmoebaNet genotypes of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DartsOp {
    /// `none`: the zero operation.
    #[serde(rename = "none")]
    None,
    /// `max_pool_3x3`: 3x3 max pooling.
    #[serde(rename = "max_pool_3x3")]
    MaxPool3x3,
    /// `avg_pool_3x3`: 3x3 average pooling.
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3,
    /// `skip_connect`: identity (a factorized reduction when the stride is 2).
    #[serde(rename = "skip_connect")]
    SkipConnect,
    /// `sep_conv_3x3`: two stacked ReLU, 3x3 depthwise-separable convolution, batch norm.
    #[serde(rename = "sep_conv_3x3")]
    SepConv3x3,
    /// `sep_conv_5x5`: as `sep_conv_3x3` with 5x5 kernels.
    #[serde(rename = "sep_conv_5x5")]
    SepConv5x5,
    /// `dil_conv_3x3`: ReLU, 3x3 depthwise convolution with dilation 2, 1x1 convolution, batch
    /// norm.
    #[serde(rename = "dil_conv_3x3")]
    DilConv3x3,
    /// `dil_conv_5x5`: as `dil_conv_3x3` with a 5x5 kernel.
    #[serde(rename = "dil_conv_5x5")]
    DilConv5x5,
    /// `sep_conv_7x7`: as `sep_conv_3x3` with 7x7 kernels (not in `PRIMITIVES`).
    #[serde(rename = "sep_conv_7x7")]
    SepConv7x7,
    /// `conv_7x1_1x7`: ReLU, 1x7 then 7x1 convolution, batch norm (not in `PRIMITIVES`).
    #[serde(rename = "conv_7x1_1x7")]
    Conv7x1Conv1x7,
}

impl DartsOp {
    /// The DARTS search space's `PRIMITIVES`, in the repository's order.
    pub const PRIMITIVES: [DartsOp; 8] = [
        DartsOp::None,
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
    ];

    /// The seven primitives a derived DARTS genotype can contain (`PRIMITIVES` without `none`:
    /// DARTS' derivation never picks `none`). The default [`DartsSpace`] samples these.
    pub const DERIVED: [DartsOp; 7] = [
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
    ];

    /// Every operation the text format knows: the primitives, then `sep_conv_7x7` and
    /// `conv_7x1_1x7`.
    pub const ALL: [DartsOp; 10] = [
        DartsOp::None,
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
        DartsOp::SepConv7x7,
        DartsOp::Conv7x1Conv1x7,
    ];

    /// The DARTS repository's name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            DartsOp::None => "none",
            DartsOp::MaxPool3x3 => "max_pool_3x3",
            DartsOp::AvgPool3x3 => "avg_pool_3x3",
            DartsOp::SkipConnect => "skip_connect",
            DartsOp::SepConv3x3 => "sep_conv_3x3",
            DartsOp::SepConv5x5 => "sep_conv_5x5",
            DartsOp::DilConv3x3 => "dil_conv_3x3",
            DartsOp::DilConv5x5 => "dil_conv_5x5",
            DartsOp::SepConv7x7 => "sep_conv_7x7",
            DartsOp::Conv7x1Conv1x7 => "conv_7x1_1x7",
        }
    }

    fn table() -> [(&'static str, DartsOp); 10] {
        DartsOp::ALL.map(|o| (o.name(), o))
    }
}

impl fmt::Display for DartsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DartsOp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        lookup(FORMAT, &DartsOp::table(), s, 0)
    }
}

/// Which of the two cells of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CellKind {
    /// The normal cell (stride 1).
    Normal,
    /// The reduction cell (stride 2 on the cell inputs).
    Reduce,
}

impl CellKind {
    /// Both kinds, normal first.
    pub const BOTH: [CellKind; 2] = [CellKind::Normal, CellKind::Reduce];

    /// `"normal"` or `"reduce"`, the field names of the genotype.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Normal => "normal",
            CellKind::Reduce => "reduce",
        }
    }
}

/// A DARTS genotype: the normal and the reduction cell (the DARTS repository's `Genotype`
/// namedtuple, with the same field names).
///
/// `normal[2 * i]` and `normal[2 * i + 1]` are the two inputs of intermediate node `i`, each an
/// operation and the predecessor state it reads (0 = `c_{k-2}`, 1 = `c_{k-1}`, `j + 2` =
/// intermediate node `j`). `normal_concat` lists the states concatenated into the cell output.
/// Both cells have the same number of nodes. Serialized (serde) as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Genotype {
    /// The normal cell: two `(operation, predecessor)` inputs per intermediate node.
    pub normal: Vec<(DartsOp, usize)>,
    /// The states concatenated into the normal cell's output.
    pub normal_concat: Vec<usize>,
    /// The reduction cell: two `(operation, predecessor)` inputs per intermediate node.
    pub reduce: Vec<(DartsOp, usize)>,
    /// The states concatenated into the reduction cell's output.
    pub reduce_concat: Vec<usize>,
}

impl Genotype {
    /// The number of intermediate nodes of the normal cell (`normal.len() / 2`).
    pub fn steps(&self) -> usize {
        self.normal.len() / 2
    }

    /// The inputs of one cell.
    pub fn cell(&self, kind: CellKind) -> &[(DartsOp, usize)] {
        match kind {
            CellKind::Normal => &self.normal,
            CellKind::Reduce => &self.reduce,
        }
    }

    /// The concat of one cell.
    pub fn concat(&self, kind: CellKind) -> &[usize] {
        match kind {
            CellKind::Normal => &self.normal_concat,
            CellKind::Reduce => &self.reduce_concat,
        }
    }

    fn cell_mut(&mut self, kind: CellKind) -> (&mut Vec<(DartsOp, usize)>, &mut Vec<usize>) {
        match kind {
            CellKind::Normal => (&mut self.normal, &mut self.normal_concat),
            CellKind::Reduce => (&mut self.reduce, &mut self.reduce_concat),
        }
    }
}

/// The intermediate states (`2..steps + 2`) of a cell that no node reads, in increasing order:
/// the NASNet rule for the cell output.
pub fn unused_states(cell: &[(DartsOp, usize)]) -> Vec<usize> {
    let steps = cell.len() / 2;
    (2..steps + 2)
        .filter(|&s| cell.iter().all(|&(_, j)| j != s))
        .collect()
}

fn write_concat(f: &mut fmt::Formatter<'_>, concat: &[usize], steps: usize) -> fmt::Result {
    if steps > 0 && concat.iter().copied().eq(2..steps + 2) {
        return write!(f, "range(2, {})", steps + 2);
    }
    f.write_str("[")?;
    for (k, v) in concat.iter().enumerate() {
        if k > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str("]")
}

fn write_cell(f: &mut fmt::Formatter<'_>, cell: &[(DartsOp, usize)]) -> fmt::Result {
    f.write_str("[")?;
    for (k, (op, j)) in cell.iter().enumerate() {
        if k > 0 {
            f.write_str(", ")?;
        }
        write!(f, "('{op}', {j})")?;
    }
    f.write_str("]")
}

impl fmt::Display for Genotype {
    /// Python's `repr` of the DARTS namedtuple; a concat equal to all intermediate nodes prints
    /// as `range(2, steps + 2)`, as DARTS' search code produces it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Genotype(normal=")?;
        write_cell(f, &self.normal)?;
        f.write_str(", normal_concat=")?;
        write_concat(f, &self.normal_concat, self.normal.len() / 2)?;
        f.write_str(", reduce=")?;
        write_cell(f, &self.reduce)?;
        f.write_str(", reduce_concat=")?;
        write_concat(f, &self.reduce_concat, self.reduce.len() / 2)?;
        f.write_str(")")
    }
}

/// A cell list as read, with the positions needed for count errors.
struct ParsedCell {
    entries: Vec<(DartsOp, usize)>,
    starts: Vec<usize>,
    close: usize,
}

/// Reads a number and returns it with its position and its text.
fn number_token<'a>(c: &mut Cursor<'a>) -> Result<(usize, usize, &'a str), ParseError> {
    let rest = c.rest();
    let (v, pos) = c.number()?;
    Ok((v, pos, &rest[..c.pos() - pos]))
}

fn parse_cell(c: &mut Cursor<'_>) -> Result<ParsedCell, ParseError> {
    c.expect_char('[')?;
    let mut entries = Vec::new();
    let mut starts = Vec::new();
    loop {
        c.skip_ws();
        if c.peek() == Some(']') {
            break;
        }
        let start = c.pos();
        c.expect_char('(')?;
        c.skip_ws();
        let (name, qpos) = c.quoted()?;
        let op = lookup(FORMAT, &DartsOp::table(), name, qpos + 1)?;
        c.skip_ws();
        c.expect_char(',')?;
        c.skip_ws();
        let (from, fpos, tok) = number_token(c)?;
        let to = entries.len() / 2 + 2;
        if from >= to {
            return Err(c.error_at(ParseErrorKind::EdgeFromLaterNode { from, to }, fpos, tok));
        }
        c.skip_ws();
        c.eat_char(',');
        c.skip_ws();
        c.expect_char(')')?;
        entries.push((op, from));
        starts.push(start);
        c.skip_ws();
        if !c.eat_char(',') {
            c.skip_ws();
            break;
        }
    }
    let close = c.pos();
    c.expect_char(']')?;
    Ok(ParsedCell {
        entries,
        starts,
        close,
    })
}

/// Longest `range(a, b)` accepted in a concat (guards against `range(0, 10**18)`).
const MAX_RANGE: usize = 64;

fn parse_concat(c: &mut Cursor<'_>) -> Result<Vec<(usize, usize, String)>, ParseError> {
    let mut out = Vec::new();
    if c.eat_str("range") {
        c.skip_ws();
        c.expect_char('(')?;
        c.skip_ws();
        let (a, apos, atok) = number_token(c)?;
        c.skip_ws();
        c.expect_char(',')?;
        c.skip_ws();
        let (b, bpos, btok) = number_token(c)?;
        c.skip_ws();
        c.eat_char(',');
        c.skip_ws();
        c.expect_char(')')?;
        if b <= a {
            return Err(c.error_at(
                ParseErrorKind::Invalid {
                    reason: format!("`range({a}, {b})` is empty; a cell must output something"),
                },
                apos,
                atok,
            ));
        }
        if b - a > MAX_RANGE {
            return Err(c.error_at(
                ParseErrorKind::InvalidNumber {
                    reason: format!("a concat range is at most {MAX_RANGE} states long"),
                },
                bpos,
                btok,
            ));
        }
        out.extend((a..b).map(|v| (v, apos, v.to_string())));
        return Ok(out);
    }
    if c.peek() != Some('[') {
        return Err(c.error(ParseErrorKind::Expected {
            expected: "a list `[2, 3, 4, 5]` or `range(2, 6)`".into(),
        }));
    }
    c.expect_char('[')?;
    loop {
        c.skip_ws();
        if c.peek() == Some(']') {
            break;
        }
        let (v, pos, tok) = number_token(c)?;
        out.push((v, pos, tok.to_string()));
        c.skip_ws();
        if !c.eat_char(',') {
            c.skip_ws();
            break;
        }
    }
    c.expect_char(']')?;
    Ok(out)
}

fn check_count(
    c: &Cursor<'_>,
    cell: &ParsedCell,
    field: &str,
    expected_steps: Option<usize>,
) -> Result<(), ParseError> {
    let n = cell.entries.len();
    match expected_steps {
        Some(steps) if n != 2 * steps => {
            let (pos, token) = if n > 2 * steps {
                (cell.starts[2 * steps], "(")
            } else {
                (cell.close, "]")
            };
            Err(c.error_at(
                ParseErrorKind::WrongCount {
                    what: format!("inputs in `{field}` (two per node, {steps} nodes)"),
                    expected: 2 * steps,
                    found: n,
                },
                pos,
                token,
            ))
        }
        None if n == 0 || n % 2 == 1 => Err(c.error_at(
            ParseErrorKind::WrongCount {
                what: format!("inputs in `{field}` (two per node)"),
                expected: if n == 0 { 2 } else { n + 1 },
                found: n,
            },
            cell.close,
            "]",
        )),
        _ => Ok(()),
    }
}

fn check_concat(
    c: &Cursor<'_>,
    concat: &[(usize, usize, String)],
    field: &str,
    steps: usize,
) -> Result<Vec<usize>, ParseError> {
    let mut out: Vec<usize> = Vec::with_capacity(concat.len());
    for (v, pos, tok) in concat {
        if !(2..steps + 2).contains(v) {
            return Err(c.error_at(
                ParseErrorKind::InvalidNumber {
                    reason: format!(
                        "`{field}` may only list intermediate nodes, states 2..{} here",
                        steps + 2
                    ),
                },
                *pos,
                tok,
            ));
        }
        if out.contains(v) {
            return Err(c.error_at(
                ParseErrorKind::Invalid {
                    reason: format!("state {v} appears twice in `{field}`"),
                },
                *pos,
                tok,
            ));
        }
        out.push(*v);
    }
    Ok(out)
}

const FIELDS: [&str; 4] = ["normal", "normal_concat", "reduce", "reduce_concat"];

/// Parses a genotype; with `expected_steps`, a cell with another number of nodes is a
/// [`ParseErrorKind::WrongCount`] at the offending position.
fn parse_genotype(s: &str, expected_steps: Option<usize>) -> Result<Genotype, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.check_brackets(&[('(', ')'), ('[', ']')])?;
    c.skip_ws();
    c.expect_str("Genotype")?;
    c.skip_ws();
    c.expect_char('(')?;
    let mut cells: [Option<ParsedCell>; 2] = [None, None];
    let mut concats: [Option<Vec<(usize, usize, String)>>; 2] = [None, None];
    loop {
        c.skip_ws();
        if c.peek() == Some(')') {
            break;
        }
        let (name, pos) = c.ident().map_err(|_| {
            c.error(ParseErrorKind::Expected {
                expected: "a field: `normal`, `normal_concat`, `reduce` or `reduce_concat`".into(),
            })
        })?;
        let Some(field) = FIELDS.iter().position(|&f| f == name) else {
            return Err(c.error_at(
                ParseErrorKind::Expected {
                    expected: "a field: `normal`, `normal_concat`, `reduce` or `reduce_concat`"
                        .into(),
                },
                pos,
                name,
            ));
        };
        let (is_cell, k) = (field % 2 == 0, field / 2);
        let taken = if is_cell {
            cells[k].is_some()
        } else {
            concats[k].is_some()
        };
        if taken {
            return Err(c.error_at(
                ParseErrorKind::Invalid {
                    reason: format!("the field `{name}` is given twice"),
                },
                pos,
                name,
            ));
        }
        c.skip_ws();
        c.expect_char('=')?;
        c.skip_ws();
        if is_cell {
            cells[k] = Some(parse_cell(&mut c)?);
        } else {
            concats[k] = Some(parse_concat(&mut c)?);
        }
        c.skip_ws();
        if !c.eat_char(',') {
            c.skip_ws();
            if c.peek() != Some(')') {
                return Err(c.error(ParseErrorKind::Expected {
                    expected: "`,` or `)`".into(),
                }));
            }
            break;
        }
    }
    let close = c.pos();
    c.expect_char(')')?;
    c.finish()?;
    let missing = |field: &str| {
        c.error_at(
            ParseErrorKind::Expected {
                expected: format!("the field `{field}`"),
            },
            close,
            ")",
        )
    };
    let [normal, reduce] = cells;
    let [normal_concat, reduce_concat] = concats;
    let normal = normal.ok_or_else(|| missing("normal"))?;
    let normal_concat = normal_concat.ok_or_else(|| missing("normal_concat"))?;
    let reduce = reduce.ok_or_else(|| missing("reduce"))?;
    let reduce_concat = reduce_concat.ok_or_else(|| missing("reduce_concat"))?;
    check_count(&c, &normal, "normal", expected_steps)?;
    let steps = normal.entries.len() / 2;
    check_count(&c, &reduce, "reduce", Some(steps))?;
    let normal_concat = check_concat(&c, &normal_concat, "normal_concat", steps)?;
    let reduce_concat = check_concat(&c, &reduce_concat, "reduce_concat", steps)?;
    Ok(Genotype {
        normal: normal.entries,
        normal_concat,
        reduce: reduce.entries,
        reduce_concat,
    })
}

impl FromStr for Genotype {
    type Err = ParseError;

    /// Parses the DARTS notation; the number of nodes is taken from `normal` (and `reduce`
    /// must have as many).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_genotype(s, None)
    }
}

impl TryFrom<String> for Genotype {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<Genotype> for String {
    fn from(g: Genotype) -> String {
        g.to_string()
    }
}

/// Which states a cell concatenates into its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcatRule {
    /// Every intermediate node, `range(2, steps + 2)` (DARTS, P-DARTS). Not a decision.
    All,
    /// The intermediate nodes that no node reads, in increasing order (NASNet, AmoebaNet). Not
    /// a decision: it follows from the inputs.
    Unused,
    /// Any non-empty increasing list of intermediate nodes: a decision of its own.
    Free,
}

/// Configuration of a [`DartsSpace`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsConfig {
    /// Intermediate nodes per cell (DARTS: 4).
    pub steps: usize,
    /// The operations an input may carry, in the order used by encoding and enumeration
    /// (default: [`DartsOp::DERIVED`]).
    pub ops: Vec<DartsOp>,
    /// Whether the two inputs of a node must read different states (DARTS' derivation keeps
    /// the two strongest edges from distinct predecessors: default `true`).
    pub distinct_inputs: bool,
    /// Which states the cells concatenate (default [`ConcatRule::All`]).
    pub concat: ConcatRule,
}

impl Default for DartsConfig {
    /// The DARTS setting: 4 nodes, the 7 non-`none` primitives, distinct inputs, concat of
    /// all intermediate nodes.
    fn default() -> Self {
        Self {
            steps: 4,
            ops: DartsOp::DERIVED.to_vec(),
            distinct_inputs: true,
            concat: ConcatRule::All,
        }
    }
}

impl DartsConfig {
    /// The space of the NASNet and AmoebaNet genotypes of the DARTS repository ([`NASNET`],
    /// [`AMOEBANET`]): 5 nodes, every [`DartsOp`] but `none`, inputs may repeat, concat of the
    /// unused states.
    pub fn nasnet_style() -> Self {
        Self {
            steps: 5,
            ops: DartsOp::ALL
                .into_iter()
                .filter(|&o| o != DartsOp::None)
                .collect(),
            distinct_inputs: false,
            concat: ConcatRule::Unused,
        }
    }

    /// ENAS' micro search space (Pham et al. 2018, Section 2.3 and `micro_child.py` of
    /// `melodyguan/enas`): 5 nodes, the 5 operations `sep_conv_3x3`, `sep_conv_5x5`,
    /// `avg_pool_3x3`, `max_pool_3x3` and `skip_connect` (identity), each node's two inputs
    /// drawn independently (they may repeat), concat of the nodes no node reads ("loose ends").
    pub fn enas() -> Self {
        Self {
            steps: 5,
            ops: vec![
                DartsOp::SepConv3x3,
                DartsOp::SepConv5x5,
                DartsOp::AvgPool3x3,
                DartsOp::MaxPool3x3,
                DartsOp::SkipConnect,
            ],
            distinct_inputs: false,
            concat: ConcatRule::Unused,
        }
    }
}

/// The DARTS cell space.
///
/// * **Sampling**: uniform: every input picks its predecessor uniformly (the second one among
///   the states other than the first when inputs are distinct) and its operation uniformly;
///   a free concat is a uniform non-empty subset.
/// * **Mutation**: one uniformly chosen element of [`Neighborhood::neighbors`]: a new operation
///   for one input, a new predecessor for one input (keeping the two inputs of its node
///   distinct when the space requires it), or (free concat only) one state added to or removed
///   from a concat. Under [`ConcatRule::Unused`] the concat follows the new inputs.
/// * **Canonical form**: see [`Canonicalize::canonical`] below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DartsConfig", into = "DartsConfig")]
pub struct DartsSpace {
    config: DartsConfig,
    cell_radices: Vec<u128>,
}

impl Default for DartsSpace {
    fn default() -> Self {
        let config = DartsConfig::default();
        let cell_radices = cell_radices(&config);
        Self {
            config,
            cell_radices,
        }
    }
}

const NAME: &str = "darts";

fn pair_count(n: usize, distinct: bool) -> usize {
    if distinct { n * (n - 1) } else { n * n }
}

fn cell_radices(config: &DartsConfig) -> Vec<u128> {
    let mut r = Vec::new();
    for i in 0..config.steps {
        r.push(pair_count(i + 2, config.distinct_inputs) as u128);
        r.push(config.ops.len() as u128);
        r.push(config.ops.len() as u128);
    }
    if config.concat == ConcatRule::Free {
        r.push((1u128 << config.steps) - 1);
    }
    r
}

impl DartsSpace {
    /// A space with the given configuration. Fails (naming the field) when `steps` is not in
    /// `1..=`[`MAX_STEPS`] or the space has more than `u128::MAX` architectures, or `ops` is
    /// empty or repeats an operation.
    pub fn new(config: DartsConfig) -> Result<Self, SpaceError> {
        if !(1..=MAX_STEPS).contains(&config.steps) {
            return Err(SpaceError::config(
                NAME,
                "steps",
                format!("must be between 1 and {MAX_STEPS}, got {}", config.steps),
            ));
        }
        if config.ops.is_empty() {
            return Err(SpaceError::config(NAME, "ops", "must not be empty"));
        }
        for (k, op) in config.ops.iter().enumerate() {
            if config.ops[..k].contains(op) {
                return Err(SpaceError::config(
                    NAME,
                    "ops",
                    format!("lists `{op}` twice"),
                ));
            }
        }
        let cell_radices = cell_radices(&config);
        let both: Vec<u128> = cell_radices.iter().chain(&cell_radices).copied().collect();
        if radix::size(&both).is_none() {
            return Err(SpaceError::config(
                NAME,
                "steps",
                format!(
                    "{} nodes with {} operations give more than 2^128 genotypes; use fewer",
                    config.steps,
                    config.ops.len()
                ),
            ));
        }
        Ok(Self {
            config,
            cell_radices,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DartsConfig {
        &self.config
    }

    /// Intermediate nodes per cell.
    pub fn steps(&self) -> usize {
        self.config.steps
    }

    /// The operations an input may carry.
    pub fn ops(&self) -> &[DartsOp] {
        &self.config.ops
    }

    fn op_pos(&self, op: DartsOp) -> Option<usize> {
        self.config.ops.iter().position(|&o| o == op)
    }

    fn all_states(&self) -> Vec<usize> {
        (2..self.config.steps + 2).collect()
    }

    /// The concat implied by the rule for `cell` (`None` for a free concat).
    fn implied_concat(&self, cell: &[(DartsOp, usize)]) -> Option<Vec<usize>> {
        match self.config.concat {
            ConcatRule::All => Some(self.all_states()),
            ConcatRule::Unused => Some(unused_states(cell)),
            ConcatRule::Free => None,
        }
    }

    fn validate_cell(&self, kind: CellKind, g: &Genotype) -> Result<(), SpaceError> {
        let (cell, concat, name) = (g.cell(kind), g.concat(kind), kind.name());
        let steps = self.config.steps;
        if cell.len() != 2 * steps {
            return Err(SpaceError::invalid(
                NAME,
                format!(
                    "`{name}` has {} inputs; this space has {steps} nodes with two inputs each",
                    cell.len()
                ),
            ));
        }
        for i in 0..steps {
            for s in 0..2 {
                let (op, j) = cell[2 * i + s];
                if self.op_pos(op).is_none() {
                    return Err(SpaceError::invalid(
                        NAME,
                        format!("`{name}` node {i} uses `{op}`, which this space excludes"),
                    ));
                }
                if j >= i + 2 {
                    return Err(SpaceError::invalid(
                        NAME,
                        format!(
                            "`{name}` node {i} (state {}) reads state {j}, which is not earlier",
                            i + 2
                        ),
                    ));
                }
            }
            if self.config.distinct_inputs && cell[2 * i].1 == cell[2 * i + 1].1 {
                return Err(SpaceError::invalid(
                    NAME,
                    format!(
                        "`{name}` node {i} reads state {} twice; this space requires distinct inputs",
                        cell[2 * i].1
                    ),
                ));
            }
        }
        match self.implied_concat(cell) {
            Some(expected) if concat != expected.as_slice() => Err(SpaceError::invalid(
                NAME,
                format!(
                    "`{name}_concat` is {concat:?}; this space ({:?} concat rule) requires {expected:?}",
                    self.config.concat
                ),
            )),
            Some(_) => Ok(()),
            None => {
                let increasing = concat.windows(2).all(|w| w[0] < w[1]);
                let in_range = concat.iter().all(|s| (2..steps + 2).contains(s));
                if concat.is_empty() || !increasing || !in_range {
                    Err(SpaceError::invalid(
                        NAME,
                        format!(
                            "`{name}_concat` is {concat:?}; it must be a non-empty increasing list of states in 2..{}",
                            steps + 2
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn sample_cell(&self, rng: &mut dyn Rng) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
        let mut cell = Vec::with_capacity(2 * self.config.steps);
        for i in 0..self.config.steps {
            let n = i + 2;
            let a = rng.random_range(0..n);
            let b = if self.config.distinct_inputs {
                let b = rng.random_range(0..n - 1);
                if b >= a { b + 1 } else { b }
            } else {
                rng.random_range(0..n)
            };
            cell.push((choose(rng, &self.config.ops), a));
            cell.push((choose(rng, &self.config.ops), b));
        }
        let concat = self.implied_concat(&cell).unwrap_or_else(|| {
            let mask = rng.random_range(1..1u64 << self.config.steps);
            mask_to_concat(mask as u128)
        });
        (cell, concat)
    }

    /// All one-decision changes of one cell, as (cell, concat) pairs.
    fn cell_neighbors(
        &self,
        cell: &[(DartsOp, usize)],
        concat: &[usize],
    ) -> Vec<(CellInputs, Vec<usize>)> {
        let mut out = Vec::new();
        let fix = |c: Vec<(DartsOp, usize)>| {
            let cc = self.implied_concat(&c).unwrap_or_else(|| concat.to_vec());
            (c, cc)
        };
        for k in 0..cell.len() {
            let (op, j) = cell[k];
            for &o in &self.config.ops {
                if o != op {
                    let mut c = cell.to_vec();
                    c[k].0 = o;
                    out.push(fix(c));
                }
            }
            let other = cell[k ^ 1].1;
            for nj in 0..k / 2 + 2 {
                if nj != j && !(self.config.distinct_inputs && nj == other) {
                    let mut c = cell.to_vec();
                    c[k].1 = nj;
                    out.push(fix(c));
                }
            }
        }
        if self.config.concat == ConcatRule::Free {
            for s in 2..self.config.steps + 2 {
                let mut cc: Vec<usize> = concat.to_vec();
                match cc.iter().position(|&x| x == s) {
                    Some(p) => {
                        cc.remove(p);
                    }
                    None => {
                        cc.push(s);
                        cc.sort_unstable();
                    }
                }
                if !cc.is_empty() {
                    out.push((cell.to_vec(), cc));
                }
            }
        }
        out
    }

    fn cell_digits(&self, cell: &[(DartsOp, usize)], concat: &[usize]) -> Vec<u128> {
        let mut d = Vec::with_capacity(self.cell_radices.len());
        for i in 0..self.config.steps {
            let n = i + 2;
            let (a, b) = (cell[2 * i].1, cell[2 * i + 1].1);
            let pair = if self.config.distinct_inputs {
                a * (n - 1) + if b > a { b - 1 } else { b }
            } else {
                a * n + b
            };
            d.push(pair as u128);
            d.push(self.op_pos(cell[2 * i].0).unwrap_or(0) as u128);
            d.push(self.op_pos(cell[2 * i + 1].0).unwrap_or(0) as u128);
        }
        if self.config.concat == ConcatRule::Free {
            let mask: u128 = concat.iter().map(|&s| 1u128 << (s - 2)).sum();
            d.push(mask - 1);
        }
        d
    }

    fn cell_from_digits(&self, d: &[u128]) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
        let mut cell = Vec::with_capacity(2 * self.config.steps);
        for i in 0..self.config.steps {
            let n = i + 2;
            let p = d[3 * i] as usize;
            let (a, b) = if self.config.distinct_inputs {
                let (a, b) = (p / (n - 1), p % (n - 1));
                (a, if b >= a { b + 1 } else { b })
            } else {
                (p / n, p % n)
            };
            cell.push((self.config.ops[d[3 * i + 1] as usize], a));
            cell.push((self.config.ops[d[3 * i + 2] as usize], b));
        }
        let concat = self
            .implied_concat(&cell)
            .unwrap_or_else(|| mask_to_concat(d[3 * self.config.steps] + 1));
        (cell, concat)
    }

    /// The graph of one cell (see [`ToGraph::graph`]): `c_{k-2}`, `c_{k-1}`, one node per
    /// input whose operation is not `none` (in input order), `output`.
    pub fn cell_graph(&self, cell: &[(DartsOp, usize)], concat: &[usize]) -> ArchGraph {
        let mut labels = vec!["c_{k-2}".to_string(), "c_{k-1}".to_string()];
        let mut id: Vec<Option<usize>> = Vec::with_capacity(cell.len());
        for &(op, _) in cell {
            if op == DartsOp::None {
                id.push(None);
            } else {
                id.push(Some(labels.len()));
                labels.push(op.name().to_string());
            }
        }
        let out = labels.len();
        labels.push("output".into());
        let live = |state: usize| -> Vec<usize> {
            let node = state - 2;
            [2 * node, 2 * node + 1]
                .into_iter()
                .filter_map(|k| id.get(k).copied().flatten())
                .collect()
        };
        let mut edges = Vec::new();
        for (k, &(_, j)) in cell.iter().enumerate() {
            let Some(me) = id[k] else { continue };
            if j < 2 {
                edges.push((j, me));
            } else {
                edges.extend(live(j).into_iter().map(|src| (src, me)));
            }
        }
        for &s in concat {
            if s < 2 {
                edges.push((s, out));
            } else {
                edges.extend(live(s).into_iter().map(|src| (src, out)));
            }
        }
        edges.sort_unstable();
        edges.dedup();
        ArchGraph { labels, edges }
    }
}

/// The inputs of one cell.
type CellInputs = Vec<(DartsOp, usize)>;

fn mask_to_concat(mask: u128) -> Vec<usize> {
    (0..128)
        .filter(|b| mask >> b & 1 == 1)
        .map(|b| b + 2)
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

/// The canonical string of one (valid) cell: the least, over all node orders that keep every
/// node after its predecessors, of the relabelled cell with each node's two inputs sorted.
fn canonical_cell(cell: &[(DartsOp, usize)], concat: &[usize]) -> String {
    let steps = cell.len() / 2;
    let preds: Vec<Vec<usize>> = (0..steps)
        .map(|i| {
            cell[2 * i..2 * i + 2]
                .iter()
                .filter(|&&(_, j)| j >= 2)
                .map(|&(_, j)| j - 2)
                .collect()
        })
        .collect();
    let mut best: Option<String> = None;
    for order in topo_orders(&preds) {
        let mut inv = vec![0; steps];
        for (p, &o) in order.iter().enumerate() {
            inv[o] = p;
        }
        let map = |j: usize| if j < 2 { j } else { inv[j - 2] + 2 };
        let nodes: Vec<String> = order
            .iter()
            .map(|&o| {
                let mut e: Vec<String> = cell[2 * o..2 * o + 2]
                    .iter()
                    .map(|&(op, j)| format!("{op}~{}", map(j)))
                    .collect();
                e.sort();
                e.join("+")
            })
            .collect();
        let mut cc: Vec<usize> = concat.iter().map(|&j| map(j)).collect();
        cc.sort_unstable();
        let cc: Vec<String> = cc.iter().map(|s| s.to_string()).collect();
        let s = format!("{}|concat={}", nodes.join(";"), cc.join(","));
        if best.as_ref().is_none_or(|b| s < *b) {
            best = Some(s);
        }
    }
    best.unwrap_or_default()
}

impl SearchSpace for DartsSpace {
    type Arch = Genotype;

    fn name(&self) -> &str {
        NAME
    }

    fn sample(&self, rng: &mut dyn Rng) -> Genotype {
        let (normal, normal_concat) = self.sample_cell(rng);
        let (reduce, reduce_concat) = self.sample_cell(rng);
        Genotype {
            normal,
            normal_concat,
            reduce,
            reduce_concat,
        }
    }

    fn validate(&self, arch: &Genotype) -> Result<(), SpaceError> {
        self.validate_cell(CellKind::Normal, arch)?;
        self.validate_cell(CellKind::Reduce, arch)
    }
}

impl Neighborhood for DartsSpace {
    /// Normal cell first, then reduce; within a cell input by input (each input: its other
    /// operations in the space's order, then its other predecessors in increasing order), then
    /// (free concat only) the concat toggles of states 2, 3, ...
    fn neighbors(&self, arch: &Genotype) -> Result<Vec<Genotype>, SpaceError> {
        self.validate(arch)?;
        let mut out = Vec::new();
        for kind in CellKind::BOTH {
            for (cell, concat) in self.cell_neighbors(arch.cell(kind), arch.concat(kind)) {
                let mut g = arch.clone();
                let (c, cc) = g.cell_mut(kind);
                *c = cell;
                *cc = concat;
                out.push(g);
            }
        }
        if out.is_empty() {
            return Err(SpaceError::NoNeighbor { space: NAME.into() });
        }
        Ok(out)
    }
}

impl Mutate for DartsSpace {
    /// A uniformly chosen one-decision change (see [`DartsSpace`]).
    fn mutate(&self, arch: &Genotype, rng: &mut dyn Rng) -> Result<Genotype, SpaceError> {
        let mut ns = self.neighbors(arch)?;
        let k = rng.random_range(0..ns.len());
        Ok(ns.swap_remove(k))
    }
}

impl Encode for DartsSpace {
    /// Per cell (normal, then reduce), per node and input slot: a one-hot of the operation
    /// (`|ops|`, in the space's order) followed by a one-hot of the predecessor state
    /// (`steps + 1` positions: states `0..steps + 1`, the row of the cell's adjacency matrix
    /// for that input); then a `steps`-long 0/1 mask of the concatenated intermediate nodes.
    /// Length `2 · (2 · steps · (|ops| + steps + 1) + steps)`: 200 for the default space.
    fn encoding_len(&self) -> usize {
        let s = self.config.steps;
        2 * (2 * s * (self.config.ops.len() + s + 1) + s)
    }

    fn encode(&self, arch: &Genotype) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let s = self.config.steps;
        let nops = self.config.ops.len();
        let mut v = Vec::with_capacity(self.encoding_len());
        for kind in CellKind::BOTH {
            for &(op, j) in arch.cell(kind) {
                let mut slot = vec![0.0; nops + s + 1];
                if let Some(p) = self.op_pos(op) {
                    slot[p] = 1.0;
                }
                slot[nops + j] = 1.0;
                v.extend(slot);
            }
            let concat = arch.concat(kind);
            v.extend((2..s + 2).map(|st| if concat.contains(&st) { 1.0 } else { 0.0 }));
        }
        Ok(v)
    }
}

impl Enumerable for DartsSpace {
    /// Per cell, per node `i` (with `n = i + 2` possible predecessors): an ordered pair of
    /// predecessors (`n · (n − 1)` pairs with distinct inputs, `n²` otherwise) and two
    /// operations (`|ops|²`); a free concat adds `2^steps − 1` choices. The space is the
    /// product over both cells: for the default space
    /// `(Π_{i=0..3} (i+2)(i+1) · 7^8)² = (2880 · 7^8)² ≈ 2.76 · 10^20` genotypes, as
    /// represented (the order of a node's two inputs counts). Digits, least significant first:
    /// the normal cell's (pair, op of input 0, op of input 1) for nodes 0, 1, ... (then its
    /// concat mask − 1), then the same for the reduction cell; the pair `(a, b)` has digit
    /// `a · (n − 1) + (b − [b > a])` (distinct) or `a · n + b`.
    fn size(&self) -> u128 {
        let both: Vec<u128> = self
            .cell_radices
            .iter()
            .chain(&self.cell_radices)
            .copied()
            .collect();
        radix::size(&both).unwrap_or(u128::MAX)
    }

    fn arch_at(&self, index: u128) -> Result<Genotype, SpaceError> {
        SpaceError::check_index(NAME, index, self.size())?;
        let cell_size = radix::size(&self.cell_radices).unwrap_or(u128::MAX);
        let (lo, hi) = (index % cell_size, index / cell_size);
        let (normal, normal_concat) = self.cell_from_digits(&radix::decode(lo, &self.cell_radices));
        let (reduce, reduce_concat) = self.cell_from_digits(&radix::decode(hi, &self.cell_radices));
        Ok(Genotype {
            normal,
            normal_concat,
            reduce,
            reduce_concat,
        })
    }

    fn index_of(&self, arch: &Genotype) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        let cell_size = radix::size(&self.cell_radices).unwrap_or(u128::MAX);
        let lo = radix::encode(
            &self.cell_digits(&arch.normal, &arch.normal_concat),
            &self.cell_radices,
        );
        let hi = radix::encode(
            &self.cell_digits(&arch.reduce, &arch.reduce_concat),
            &self.cell_radices,
        );
        Ok(hi * cell_size + lo)
    }
}

impl Canonicalize for DartsSpace {
    /// Each cell is canonicalized on its own: among all relabellings of its intermediate nodes
    /// that keep every node after the nodes it reads (brute force over the topological orders,
    /// at most `steps!`), the one whose text is least, with each node's two inputs sorted (a
    /// node sums them, so their order is irrelevant) and the concat relabelled and sorted. The
    /// result is `normal:<cell>/reduce:<cell>`, a cell being
    /// `op~state+op~state;...|concat=2,3,...`. Two genotypes get the same form exactly when each
    /// cell of one is a relabelling of the same cell of the other; no other equivalence (for
    /// instance, of `none` inputs) is applied.
    fn canonical(&self, arch: &Genotype) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(format!(
            "normal:{}/reduce:{}",
            canonical_cell(&arch.normal, &arch.normal_concat),
            canonical_cell(&arch.reduce, &arch.reduce_concat)
        )))
    }
}

impl TextFormat for DartsSpace {
    fn to_text(&self, arch: &Genotype) -> String {
        arch.to_string()
    }

    /// Parses the DARTS notation, reporting a cell with another number of nodes than the space
    /// as [`ParseErrorKind::WrongCount`], then validates the genotype against the space.
    fn parse(&self, text: &str) -> Result<Genotype, SpaceError> {
        let g = parse_genotype(text, Some(self.config.steps))?;
        self.validate(&g)?;
        Ok(g)
    }
}

impl ToGraph for DartsSpace {
    /// Operations on nodes, the two cells as disjoint parts of one graph: first the normal cell
    /// (nodes `c_{k-2}`, `c_{k-1}`, one node per input whose operation is not `none`, in input
    /// order, then `output`), then the reduction cell laid out the same way (its indices
    /// offset by the normal part's size; the labels are the same, so a graph kernel sees the
    /// two cells as one bag). An operation node reads `c_{k-2}`/`c_{k-1}` or every operation
    /// node of the intermediate node it reads (a node is the sum of its operations); `output`
    /// reads every operation node of the concatenated nodes. Use
    /// [`DartsSpace::cell_graph`] for one cell alone.
    fn graph(&self, arch: &Genotype) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        let mut g = self.cell_graph(&arch.normal, &arch.normal_concat);
        let r = self.cell_graph(&arch.reduce, &arch.reduce_concat);
        let off = g.labels.len();
        g.labels.extend(r.labels);
        g.edges
            .extend(r.edges.into_iter().map(|(a, b)| (a + off, b + off)));
        Ok(g)
    }
}

/// Serialized as its configuration, so a saved space can be reloaded; loading validates it.
impl From<DartsSpace> for DartsConfig {
    fn from(space: DartsSpace) -> Self {
        space.config
    }
}

impl TryFrom<DartsConfig> for DartsSpace {
    type Error = SpaceError;
    fn try_from(config: DartsConfig) -> Result<Self, SpaceError> {
        DartsSpace::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;
    use std::collections::HashSet;

    fn free_space() -> DartsSpace {
        DartsSpace::new(DartsConfig {
            steps: 3,
            ops: DartsOp::PRIMITIVES.to_vec(),
            distinct_inputs: false,
            concat: ConcatRule::Free,
        })
        .unwrap()
    }

    fn all_laws(s: &DartsSpace) {
        laws::check_sample(s, 1, 200).unwrap();
        laws::check_serde(s, 2, 100).unwrap();
        laws::check_mutate(s, 3, 200).unwrap();
        laws::check_neighbors(s, 4, 50).unwrap();
        laws::check_text(s, 5, 200).unwrap();
        laws::check_encode(s, 6, 50).unwrap();
        laws::check_enumerable(s, 7, 200).unwrap();
        laws::check_canonical(s, 8, 50).unwrap();
        laws::check_graph(s, 9, 50).unwrap();
    }

    #[test]
    fn laws_hold_default() {
        all_laws(&DartsSpace::default());
    }

    #[test]
    fn laws_hold_nasnet_style_and_free_concat() {
        all_laws(&DartsSpace::new(DartsConfig::nasnet_style()).unwrap());
        all_laws(&DartsSpace::new(DartsConfig::enas()).unwrap());
        all_laws(&free_space());
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
        let e = match DartsSpace::default().parse(NASNET).unwrap_err() {
            SpaceError::Parse(e) => e,
            other => panic!("{other}"),
        };
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 8,
                    found: 10,
                    ..
                }
            ),
            "{e}"
        );
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
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 8,
                    found: 7,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            (e.position, e.token.as_str()),
            (bad.find("], normal_concat").unwrap(), "]")
        );
        // Reduce with fewer nodes than normal.
        let bad = DARTS_V2.replacen(", ('skip_connect', 2), ('max_pool_3x3', 1)]", "]", 1);
        let e = err(&bad);
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 8,
                    found: 6,
                    ..
                }
            ),
            "{e}"
        );
        // An empty cell.
        let e = err("Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[])");
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 2,
                    found: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.position, 17);
        // Fewer nodes than the space.
        let three = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0)], normal_concat=range(2, 5), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2)], reduce_concat=range(2, 5))";
        assert_eq!(three.parse::<Genotype>().unwrap().steps(), 3);
        match DartsSpace::default().parse(three).unwrap_err() {
            SpaceError::Parse(e) => {
                assert!(matches!(
                    e.kind,
                    ParseErrorKind::WrongCount {
                        expected: 8,
                        found: 6,
                        ..
                    }
                ));
                assert_eq!(e.position, three.find("], normal_concat").unwrap());
            }
            other => panic!("{other}"),
        }
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
        let field = |c: DartsConfig| match DartsSpace::new(c) {
            Err(SpaceError::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
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
        let mut inv = vec![0; order.len()];
        for (p, &o) in order.iter().enumerate() {
            inv[o] = p;
        }
        let map = |j: usize| if j < 2 { j } else { inv[j - 2] + 2 };
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
        (0..cell.len() / 2)
            .map(|i| {
                cell[2 * i..2 * i + 2]
                    .iter()
                    .filter(|e| e.1 >= 2)
                    .map(|e| e.1 - 2)
                    .collect()
            })
            .collect()
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
}
