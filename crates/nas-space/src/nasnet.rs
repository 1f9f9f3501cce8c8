//! The NASNet cell space (Zoph, Vasudevan, Shlens and Le, "Learning Transferable Architectures
//! for Scalable Image Recognition", CVPR 2018).
//!
//! A network stacks normal and reduction cells. A cell has two input hidden states and `B`
//! blocks (5 in the paper). Block `b` picks two hidden states, applies one operation to each,
//! and combines the two results by element-wise addition or by concatenation along the
//! channels; its output becomes a new hidden state that later blocks may pick. The cell output
//! concatenates the blocks whose output no block of the cell uses (the paper: "all unused
//! hidden states generated in the convolutional cell are concatenated together in depth"; NNI's
//! and NDS' NASNet space: "concatenation of nodes not used as input to other nodes").
//!
//! Hidden states are numbered as in the DARTS notation ([`crate::darts`]): 0 = `h_{i-1}` (the
//! output of the cell before the previous one, DARTS' `c_{k-2}`), 1 = `h_i` (the previous
//! cell's output), `2 + b` = the output of block `b`. A block may pick the same state twice.
//!
//! The text format (this crate's own; NASNet has no published string notation) is one line:
//!
//! ```text
//! NASNet(normal=[('sep_conv_5x5', 1, 'sep_conv_3x3', 0, 'add'), ...], reduce=[...])
//! ```
//!
//! each block written `(op of the first input, first input, op of the second input, second
//! input, combiner)`. Double quotes, trailing commas and any whitespace are accepted.
//!
//! The 13 operations are the paper's list, named as in the NDS/NNI implementation of the
//! NASNet space (`NASNET_OPS` of `facebookresearch/pycls`/`unnas` and of NNI's
//! `nni/nas/hub/pytorch/nasnet.py`), in the paper's order; see [`NasNetOp`].
//!
//! [`NASNET_A`] is NASNet-A, transcribed from the TF-slim implementation
//! (`tensorflow/models`, `research/slim/nets/nasnet/nasnet_utils.py`, `NasNetANormalCell` and
//! `NasNetAReductionCell`): block `b` has operations `operations[2b]`, `operations[2b + 1]`
//! on states `hiddenstate_indices[2b]`, `hiddenstate_indices[2b + 1]`, combined by `add`.
//! Slim numbers the states the other way round (its 0 is the current input `h_i`, its 1 is
//! `h_{i-1}`), so indices 0 and 1 are swapped here; slim's `none` is the identity
//! (`skip_connect`) and its `separable_KxK_2` is `sep_conv_KxK` (a separable convolution
//! applied twice, as in DARTS). The result equals the DARTS repository's `NASNet` genotype
//! ([`crate::darts::NASNET`]) op for op. One difference remains in the cell outputs: slim
//! hard-codes `used_hiddenstates`, which for the normal cell also concatenates `h_{i-1}` and for
//! the reduction cell concatenates block 1 although block 3 reads it; the rule used here
//! (unused blocks only) gives the DARTS repository's concats, `[2, 3, 4, 5, 6]` and `[4, 5, 6]`.
//!
//! ```
//! use nas_space::nasnet::{self, NasNetSpace};
//! use nas_space::{Canonicalize, Enumerable, TextFormat};
//!
//! let space = NasNetSpace::default();
//! let a = space.parse(nasnet::NASNET_A)?;
//! assert_eq!(space.to_text(&a), nasnet::NASNET_A);
//! assert_eq!(a.output_states(nas_space::darts::CellKind::Reduce), vec![4, 5, 6]);
//! let _index = space.index_of(&a)?;
//! let _key = space.canonical(&a)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::darts::{CellKind, topo_orders};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::{Cursor, lookup};
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

const FORMAT: &str = "NASNet architecture string";
const NAME: &str = "nasnet";

/// The largest number of blocks per cell a [`NasNetSpace`] accepts (canonical forms are found
/// by brute force over block orders).
pub const MAX_BLOCKS: usize = 8;

/// NASNet-A (normal and reduction cell) in this module's notation; see the [module
/// documentation](self) for how it was transcribed from TF-slim.
pub const NASNET_A: &str = "NASNet(normal=[('sep_conv_5x5', 1, 'sep_conv_3x3', 0, 'add'), ('sep_conv_5x5', 0, 'sep_conv_3x3', 0, 'add'), ('avg_pool_3x3', 1, 'skip_connect', 0, 'add'), ('avg_pool_3x3', 0, 'avg_pool_3x3', 0, 'add'), ('sep_conv_3x3', 1, 'skip_connect', 1, 'add')], reduce=[('sep_conv_5x5', 1, 'sep_conv_7x7', 0, 'add'), ('max_pool_3x3', 1, 'sep_conv_7x7', 0, 'add'), ('avg_pool_3x3', 1, 'sep_conv_5x5', 0, 'add'), ('skip_connect', 3, 'avg_pool_3x3', 2, 'add'), ('sep_conv_3x3', 2, 'max_pool_3x3', 1, 'add')])";

/// [`NASNET_A`], parsed.
pub fn nasnet_a() -> NasNetArch {
    // A constant checked by the tests, not user input.
    NASNET_A.parse().expect("built-in NASNet-A parses")
}

/// An operation of the NASNet search space (the paper's 13, in the paper's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NasNetOp {
    /// `skip_connect`: identity (the paper's "identity"; also parsed as `identity`).
    #[serde(rename = "skip_connect")]
    SkipConnect,
    /// `conv_3x1_1x3`: a 1x3 then a 3x1 convolution (also parsed as `conv_1x3_3x1`).
    #[serde(rename = "conv_3x1_1x3")]
    Conv3x1Conv1x3,
    /// `conv_7x1_1x7`: a 1x7 then a 7x1 convolution (also parsed as `conv_1x7_7x1`).
    #[serde(rename = "conv_7x1_1x7")]
    Conv7x1Conv1x7,
    /// `dil_conv_3x3`: 3x3 dilated convolution.
    #[serde(rename = "dil_conv_3x3")]
    DilConv3x3,
    /// `avg_pool_3x3`: 3x3 average pooling.
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3,
    /// `max_pool_3x3`: 3x3 max pooling.
    #[serde(rename = "max_pool_3x3")]
    MaxPool3x3,
    /// `max_pool_5x5`: 5x5 max pooling.
    #[serde(rename = "max_pool_5x5")]
    MaxPool5x5,
    /// `max_pool_7x7`: 7x7 max pooling.
    #[serde(rename = "max_pool_7x7")]
    MaxPool7x7,
    /// `conv_1x1`: 1x1 convolution.
    #[serde(rename = "conv_1x1")]
    Conv1x1,
    /// `conv_3x3`: 3x3 convolution.
    #[serde(rename = "conv_3x3")]
    Conv3x3,
    /// `sep_conv_3x3`: 3x3 depthwise-separable convolution.
    #[serde(rename = "sep_conv_3x3")]
    SepConv3x3,
    /// `sep_conv_5x5`: 5x5 depthwise-separable convolution.
    #[serde(rename = "sep_conv_5x5")]
    SepConv5x5,
    /// `sep_conv_7x7`: 7x7 depthwise-separable convolution.
    #[serde(rename = "sep_conv_7x7")]
    SepConv7x7,
}

impl NasNetOp {
    /// The 13 operations, in the paper's (and NDS') order.
    pub const ALL: [NasNetOp; 13] = [
        NasNetOp::SkipConnect,
        NasNetOp::Conv3x1Conv1x3,
        NasNetOp::Conv7x1Conv1x7,
        NasNetOp::DilConv3x3,
        NasNetOp::AvgPool3x3,
        NasNetOp::MaxPool3x3,
        NasNetOp::MaxPool5x5,
        NasNetOp::MaxPool7x7,
        NasNetOp::Conv1x1,
        NasNetOp::Conv3x3,
        NasNetOp::SepConv3x3,
        NasNetOp::SepConv5x5,
        NasNetOp::SepConv7x7,
    ];

    /// The operation's name (NDS/NNI `NASNET_OPS`).
    pub fn name(self) -> &'static str {
        match self {
            NasNetOp::SkipConnect => "skip_connect",
            NasNetOp::Conv3x1Conv1x3 => "conv_3x1_1x3",
            NasNetOp::Conv7x1Conv1x7 => "conv_7x1_1x7",
            NasNetOp::DilConv3x3 => "dil_conv_3x3",
            NasNetOp::AvgPool3x3 => "avg_pool_3x3",
            NasNetOp::MaxPool3x3 => "max_pool_3x3",
            NasNetOp::MaxPool5x5 => "max_pool_5x5",
            NasNetOp::MaxPool7x7 => "max_pool_7x7",
            NasNetOp::Conv1x1 => "conv_1x1",
            NasNetOp::Conv3x3 => "conv_3x3",
            NasNetOp::SepConv3x3 => "sep_conv_3x3",
            NasNetOp::SepConv5x5 => "sep_conv_5x5",
            NasNetOp::SepConv7x7 => "sep_conv_7x7",
        }
    }

    /// Names accepted by the parser: the 13 names, then the aliases `identity`,
    /// `conv_1x3_3x1` and `conv_1x7_7x1`.
    fn table() -> Vec<(&'static str, NasNetOp)> {
        let mut t: Vec<_> = NasNetOp::ALL.iter().map(|&o| (o.name(), o)).collect();
        t.push(("identity", NasNetOp::SkipConnect));
        t.push(("conv_1x3_3x1", NasNetOp::Conv3x1Conv1x3));
        t.push(("conv_1x7_7x1", NasNetOp::Conv7x1Conv1x7));
        t
    }
}

impl fmt::Display for NasNetOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NasNetOp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        lookup(FORMAT, &NasNetOp::table(), s, 0)
    }
}

/// How a block combines its two branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combiner {
    /// `add`: element-wise addition.
    Add,
    /// `concat`: concatenation along the channels.
    Concat,
}

impl Combiner {
    /// Both combiners.
    pub const ALL: [Combiner; 2] = [Combiner::Add, Combiner::Concat];

    /// `"add"` or `"concat"`.
    pub fn name(self) -> &'static str {
        match self {
            Combiner::Add => "add",
            Combiner::Concat => "concat",
        }
    }

    fn table() -> [(&'static str, Combiner); 2] {
        Combiner::ALL.map(|c| (c.name(), c))
    }
}

impl fmt::Display for Combiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One block of a NASNet cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NasNetBlock {
    /// The hidden states the two branches read (0 = `h_{i-1}`, 1 = `h_i`, `2 + b` = block `b`).
    pub inputs: [usize; 2],
    /// The operation of each branch.
    pub ops: [NasNetOp; 2],
    /// How the two branches are combined.
    pub combine: Combiner,
}

impl NasNetBlock {
    /// A block from its two `(operation, input)` branches and its combiner.
    pub fn new(a: (NasNetOp, usize), b: (NasNetOp, usize), combine: Combiner) -> Self {
        Self {
            inputs: [a.1, b.1],
            ops: [a.0, b.0],
            combine,
        }
    }
}

/// A NASNet architecture: the normal and the reduction cell, with the same number of blocks.
/// Serialized (serde) as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NasNetArch {
    /// The normal cell's blocks.
    pub normal: Vec<NasNetBlock>,
    /// The reduction cell's blocks.
    pub reduce: Vec<NasNetBlock>,
}

impl NasNetArch {
    /// Blocks per cell.
    pub fn blocks(&self) -> usize {
        self.normal.len()
    }

    /// The blocks of one cell.
    pub fn cell(&self, kind: CellKind) -> &[NasNetBlock] {
        match kind {
            CellKind::Normal => &self.normal,
            CellKind::Reduce => &self.reduce,
        }
    }

    fn cell_mut(&mut self, kind: CellKind) -> &mut Vec<NasNetBlock> {
        match kind {
            CellKind::Normal => &mut self.normal,
            CellKind::Reduce => &mut self.reduce,
        }
    }

    /// The states concatenated into the output of one cell: the blocks (states `2 + b`) that
    /// no block reads, in increasing order.
    pub fn output_states(&self, kind: CellKind) -> Vec<usize> {
        output_states(self.cell(kind))
    }
}

fn output_states(cell: &[NasNetBlock]) -> Vec<usize> {
    (2..cell.len() + 2)
        .filter(|&s| cell.iter().all(|b| !b.inputs.contains(&s)))
        .collect()
}

fn write_cell(f: &mut fmt::Formatter<'_>, cell: &[NasNetBlock]) -> fmt::Result {
    f.write_str("[")?;
    for (k, b) in cell.iter().enumerate() {
        if k > 0 {
            f.write_str(", ")?;
        }
        write!(
            f,
            "('{}', {}, '{}', {}, '{}')",
            b.ops[0], b.inputs[0], b.ops[1], b.inputs[1], b.combine
        )?;
    }
    f.write_str("]")
}

impl fmt::Display for NasNetArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NASNet(normal=")?;
        write_cell(f, &self.normal)?;
        f.write_str(", reduce=")?;
        write_cell(f, &self.reduce)?;
        f.write_str(")")
    }
}

struct ParsedCell {
    blocks: Vec<NasNetBlock>,
    starts: Vec<usize>,
    close: usize,
}

fn number_token<'a>(c: &mut Cursor<'a>) -> Result<(usize, usize, &'a str), ParseError> {
    let rest = c.rest();
    let (v, pos) = c.number()?;
    Ok((v, pos, &rest[..c.pos() - pos]))
}

fn comma(c: &mut Cursor<'_>) -> Result<(), ParseError> {
    c.skip_ws();
    c.expect_char(',')?;
    c.skip_ws();
    Ok(())
}

fn parse_cell(c: &mut Cursor<'_>) -> Result<ParsedCell, ParseError> {
    c.expect_char('[')?;
    let table = NasNetOp::table();
    let mut blocks = Vec::new();
    let mut starts = Vec::new();
    loop {
        c.skip_ws();
        if c.peek() == Some(']') {
            break;
        }
        let start = c.pos();
        let to = blocks.len() + 2;
        c.expect_char('(')?;
        c.skip_ws();
        let mut ops = [NasNetOp::SkipConnect; 2];
        let mut inputs = [0; 2];
        for k in 0..2 {
            if k > 0 {
                comma(c)?;
            }
            let (name, qpos) = c.quoted()?;
            ops[k] = lookup(FORMAT, &table, name, qpos + 1)?;
            comma(c)?;
            let (from, fpos, tok) = number_token(c)?;
            if from >= to {
                return Err(c.error_at(ParseErrorKind::EdgeFromLaterNode { from, to }, fpos, tok));
            }
            inputs[k] = from;
        }
        comma(c)?;
        let (name, qpos) = c.quoted()?;
        let combine = lookup(FORMAT, &Combiner::table(), name, qpos + 1).map_err(|e| {
            ParseError::new(
                FORMAT,
                ParseErrorKind::Expected {
                    expected: "a combiner, `'add'` or `'concat'`".into(),
                },
                e.position,
                e.token,
            )
        })?;
        c.skip_ws();
        c.eat_char(',');
        c.skip_ws();
        c.expect_char(')')?;
        blocks.push(NasNetBlock {
            inputs,
            ops,
            combine,
        });
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
        blocks,
        starts,
        close,
    })
}

fn check_count(
    c: &Cursor<'_>,
    cell: &ParsedCell,
    field: &str,
    expected: Option<usize>,
) -> Result<(), ParseError> {
    let n = cell.blocks.len();
    let wrong = |expected: usize| {
        let (pos, token) = if n > expected {
            (cell.starts[expected], "(")
        } else {
            (cell.close, "]")
        };
        c.error_at(
            ParseErrorKind::WrongCount {
                what: format!("blocks in `{field}`"),
                expected,
                found: n,
            },
            pos,
            token,
        )
    };
    match expected {
        Some(e) if n != e => Err(wrong(e)),
        None if n == 0 => Err(wrong(1)),
        _ => Ok(()),
    }
}

fn parse_arch(s: &str, expected_blocks: Option<usize>) -> Result<NasNetArch, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.check_brackets(&[('(', ')'), ('[', ']')])?;
    c.skip_ws();
    c.expect_str("NASNet")?;
    c.skip_ws();
    c.expect_char('(')?;
    c.skip_ws();
    c.expect_str("normal")?;
    c.skip_ws();
    c.expect_char('=')?;
    c.skip_ws();
    let normal = parse_cell(&mut c)?;
    check_count(&c, &normal, "normal", expected_blocks)?;
    comma(&mut c)?;
    c.expect_str("reduce")?;
    c.skip_ws();
    c.expect_char('=')?;
    c.skip_ws();
    let reduce = parse_cell(&mut c)?;
    check_count(&c, &reduce, "reduce", Some(normal.blocks.len()))?;
    c.skip_ws();
    c.eat_char(',');
    c.skip_ws();
    c.expect_char(')')?;
    c.finish()?;
    Ok(NasNetArch {
        normal: normal.blocks,
        reduce: reduce.blocks,
    })
}

impl FromStr for NasNetArch {
    type Err = ParseError;

    /// Parses the notation; the number of blocks is taken from `normal` (and `reduce` must
    /// have as many).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_arch(s, None)
    }
}

impl TryFrom<String> for NasNetArch {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<NasNetArch> for String {
    fn from(a: NasNetArch) -> String {
        a.to_string()
    }
}

/// Configuration of a [`NasNetSpace`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NasNetConfig {
    /// Blocks per cell (the paper's `B`: 5).
    pub blocks: usize,
    /// The operations a branch may apply, in the order used by encoding and enumeration
    /// (default: all 13, [`NasNetOp::ALL`]).
    pub ops: Vec<NasNetOp>,
    /// The combiners a block may use (default: both, as in the paper's search space; NASNet-A
    /// uses only `add`).
    pub combiners: Vec<Combiner>,
}

impl Default for NasNetConfig {
    /// The paper's setting: 5 blocks, 13 operations, `add` or `concat`.
    fn default() -> Self {
        Self {
            blocks: 5,
            ops: NasNetOp::ALL.to_vec(),
            combiners: Combiner::ALL.to_vec(),
        }
    }
}

/// The NASNet cell space.
///
/// * **Sampling**: uniform over the represented architectures (every input, operation and
///   combiner uniformly and independently).
/// * **Mutation**: one uniformly chosen element of [`Neighborhood::neighbors`]: a new
///   operation or a new input for one branch, or a new combiner for one block. (The paper's
///   controller is an RNN; the mutation is the one of regularized evolution on this space.)
/// * **Canonical form**: see [`Canonicalize::canonical`] below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NasNetConfig", into = "NasNetConfig")]
pub struct NasNetSpace {
    config: NasNetConfig,
    cell_radices: Vec<u128>,
}

fn cell_radices(config: &NasNetConfig) -> Vec<u128> {
    let mut r = Vec::with_capacity(5 * config.blocks);
    for b in 0..config.blocks {
        let n = (b + 2) as u128;
        let o = config.ops.len() as u128;
        r.extend([n, n, o, o, config.combiners.len() as u128]);
    }
    r
}

impl Default for NasNetSpace {
    fn default() -> Self {
        let config = NasNetConfig::default();
        let cell_radices = cell_radices(&config);
        Self {
            config,
            cell_radices,
        }
    }
}

fn no_duplicates<T: PartialEq + fmt::Display>(
    items: &[T],
    field: &'static str,
) -> Result<(), SpaceError> {
    if items.is_empty() {
        return Err(SpaceError::config(NAME, field, "must not be empty"));
    }
    for (k, x) in items.iter().enumerate() {
        if items[..k].contains(x) {
            return Err(SpaceError::config(
                NAME,
                field,
                format!("lists `{x}` twice"),
            ));
        }
    }
    Ok(())
}

impl NasNetSpace {
    /// A space with the given configuration. Fails (naming the field) when `blocks` is not in
    /// `1..=`[`MAX_BLOCKS`] or the space has more than `u128::MAX` architectures (with all 13
    /// operations and both combiners, at most 5 blocks), or `ops` / `combiners` is empty or has
    /// a duplicate.
    pub fn new(config: NasNetConfig) -> Result<Self, SpaceError> {
        if !(1..=MAX_BLOCKS).contains(&config.blocks) {
            return Err(SpaceError::config(
                NAME,
                "blocks",
                format!("must be between 1 and {MAX_BLOCKS}, got {}", config.blocks),
            ));
        }
        no_duplicates(&config.ops, "ops")?;
        no_duplicates(&config.combiners, "combiners")?;
        let cell_radices = cell_radices(&config);
        let both: Vec<u128> = cell_radices.iter().chain(&cell_radices).copied().collect();
        if radix::size(&both).is_none() {
            return Err(SpaceError::config(
                NAME,
                "blocks",
                format!(
                    "{} blocks with {} operations give more than 2^128 architectures; use fewer",
                    config.blocks,
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
    pub fn config(&self) -> &NasNetConfig {
        &self.config
    }

    /// Blocks per cell.
    pub fn blocks(&self) -> usize {
        self.config.blocks
    }

    fn op_pos(&self, op: NasNetOp) -> Option<usize> {
        self.config.ops.iter().position(|&o| o == op)
    }

    fn comb_pos(&self, c: Combiner) -> Option<usize> {
        self.config.combiners.iter().position(|&x| x == c)
    }

    fn validate_cell(&self, kind: CellKind, cell: &[NasNetBlock]) -> Result<(), SpaceError> {
        let name = kind.name();
        if cell.len() != self.config.blocks {
            return Err(SpaceError::invalid(
                NAME,
                format!(
                    "`{name}` has {} blocks; this space has {}",
                    cell.len(),
                    self.config.blocks
                ),
            ));
        }
        for (b, block) in cell.iter().enumerate() {
            for k in 0..2 {
                if self.op_pos(block.ops[k]).is_none() {
                    return Err(SpaceError::invalid(
                        NAME,
                        format!(
                            "`{name}` block {b} uses `{}`, which this space excludes",
                            block.ops[k]
                        ),
                    ));
                }
                if block.inputs[k] >= b + 2 {
                    return Err(SpaceError::invalid(
                        NAME,
                        format!(
                            "`{name}` block {b} (state {}) reads state {}, which is not earlier",
                            b + 2,
                            block.inputs[k]
                        ),
                    ));
                }
            }
            if self.comb_pos(block.combine).is_none() {
                return Err(SpaceError::invalid(
                    NAME,
                    format!(
                        "`{name}` block {b} combines by `{}`, which this space excludes",
                        block.combine
                    ),
                ));
            }
        }
        Ok(())
    }

    fn sample_cell(&self, rng: &mut dyn Rng) -> Vec<NasNetBlock> {
        (0..self.config.blocks)
            .map(|b| NasNetBlock {
                inputs: [rng.random_range(0..b + 2), rng.random_range(0..b + 2)],
                ops: [choose(rng, &self.config.ops), choose(rng, &self.config.ops)],
                combine: choose(rng, &self.config.combiners),
            })
            .collect()
    }

    fn cell_neighbors(&self, cell: &[NasNetBlock]) -> Vec<Vec<NasNetBlock>> {
        let mut out = Vec::new();
        for (b, block) in cell.iter().enumerate() {
            for k in 0..2 {
                for &o in &self.config.ops {
                    if o != block.ops[k] {
                        let mut c = cell.to_vec();
                        c[b].ops[k] = o;
                        out.push(c);
                    }
                }
                for j in 0..b + 2 {
                    if j != block.inputs[k] {
                        let mut c = cell.to_vec();
                        c[b].inputs[k] = j;
                        out.push(c);
                    }
                }
            }
            for &m in &self.config.combiners {
                if m != block.combine {
                    let mut c = cell.to_vec();
                    c[b].combine = m;
                    out.push(c);
                }
            }
        }
        out
    }

    fn cell_digits(&self, cell: &[NasNetBlock]) -> Vec<u128> {
        cell.iter()
            .flat_map(|b| {
                [
                    b.inputs[0],
                    b.inputs[1],
                    self.op_pos(b.ops[0]).unwrap_or(0),
                    self.op_pos(b.ops[1]).unwrap_or(0),
                    self.comb_pos(b.combine).unwrap_or(0),
                ]
            })
            .map(|d| d as u128)
            .collect()
    }

    fn cell_from_digits(&self, d: &[u128]) -> Vec<NasNetBlock> {
        d.chunks(5)
            .map(|x| NasNetBlock {
                inputs: [x[0] as usize, x[1] as usize],
                ops: [
                    self.config.ops[x[2] as usize],
                    self.config.ops[x[3] as usize],
                ],
                combine: self.config.combiners[x[4] as usize],
            })
            .collect()
    }

    /// The graph of one cell (see [`ToGraph::graph`]).
    pub fn cell_graph(&self, cell: &[NasNetBlock]) -> ArchGraph {
        let mut labels = vec!["h_{i-1}".to_string(), "h_i".to_string()];
        let mut edges = Vec::new();
        let comb_id = |b: usize| 2 + 3 * b + 2;
        for (b, block) in cell.iter().enumerate() {
            for k in 0..2 {
                let me = labels.len();
                labels.push(block.ops[k].name().to_string());
                let j = block.inputs[k];
                edges.push((if j < 2 { j } else { comb_id(j - 2) }, me));
                edges.push((me, comb_id(b)));
            }
            labels.push(block.combine.name().to_string());
        }
        let out = labels.len();
        labels.push("output".into());
        for s in output_states(cell) {
            edges.push((comb_id(s - 2), out));
        }
        edges.sort_unstable();
        edges.dedup();
        ArchGraph { labels, edges }
    }
}

/// The canonical string of one (valid) cell: the least, over the block orders that keep every
/// block after the blocks it reads, of the relabelled cell with each block's branches sorted.
fn canonical_cell(cell: &[NasNetBlock]) -> String {
    let preds: Vec<Vec<usize>> = cell
        .iter()
        .map(|b| {
            b.inputs
                .iter()
                .filter(|&&j| j >= 2)
                .map(|&j| j - 2)
                .collect()
        })
        .collect();
    let mut best: Option<String> = None;
    for order in topo_orders(&preds) {
        let mut inv = vec![0; cell.len()];
        for (p, &o) in order.iter().enumerate() {
            inv[o] = p;
        }
        let map = |j: usize| if j < 2 { j } else { inv[j - 2] + 2 };
        let blocks: Vec<String> = order
            .iter()
            .map(|&o| {
                let b = &cell[o];
                let mut br = [
                    format!("{}~{}", b.ops[0], map(b.inputs[0])),
                    format!("{}~{}", b.ops[1], map(b.inputs[1])),
                ];
                br.sort();
                format!("{}({},{})", b.combine, br[0], br[1])
            })
            .collect();
        let s = blocks.join(";");
        if best.as_ref().is_none_or(|b| s < *b) {
            best = Some(s);
        }
    }
    best.unwrap_or_default()
}

impl SearchSpace for NasNetSpace {
    type Arch = NasNetArch;

    fn name(&self) -> &str {
        NAME
    }

    fn sample(&self, rng: &mut dyn Rng) -> NasNetArch {
        let normal = self.sample_cell(rng);
        let reduce = self.sample_cell(rng);
        NasNetArch { normal, reduce }
    }

    fn validate(&self, arch: &NasNetArch) -> Result<(), SpaceError> {
        self.validate_cell(CellKind::Normal, &arch.normal)?;
        self.validate_cell(CellKind::Reduce, &arch.reduce)
    }
}

impl Neighborhood for NasNetSpace {
    /// Normal cell first, then reduce; block by block: branch 0 (other operations in the
    /// space's order, then other inputs in increasing order), branch 1 likewise, then the
    /// other combiners.
    fn neighbors(&self, arch: &NasNetArch) -> Result<Vec<NasNetArch>, SpaceError> {
        self.validate(arch)?;
        let mut out = Vec::new();
        for kind in CellKind::BOTH {
            for cell in self.cell_neighbors(arch.cell(kind)) {
                let mut a = arch.clone();
                *a.cell_mut(kind) = cell;
                out.push(a);
            }
        }
        if out.is_empty() {
            return Err(SpaceError::NoNeighbor { space: NAME.into() });
        }
        Ok(out)
    }
}

impl Mutate for NasNetSpace {
    /// A uniformly chosen one-decision change (see [`NasNetSpace`]).
    fn mutate(&self, arch: &NasNetArch, rng: &mut dyn Rng) -> Result<NasNetArch, SpaceError> {
        let mut ns = self.neighbors(arch)?;
        let k = rng.random_range(0..ns.len());
        Ok(ns.swap_remove(k))
    }
}

impl Encode for NasNetSpace {
    /// Per cell (normal, then reduce), per block: for each branch a one-hot of its operation
    /// (`|ops|`, in the space's order) then a one-hot of its input state (`blocks + 1`
    /// positions, the branch's row of the cell's adjacency matrix), then a one-hot of the
    /// combiner (`|combiners|`). Length `2 · B · (2 · (|ops| + B + 1) + |combiners|)`: 400 for
    /// the default space.
    fn encoding_len(&self) -> usize {
        let b = self.config.blocks;
        2 * b * (2 * (self.config.ops.len() + b + 1) + self.config.combiners.len())
    }

    fn encode(&self, arch: &NasNetArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let (nb, no) = (self.config.blocks, self.config.ops.len());
        let mut v = Vec::with_capacity(self.encoding_len());
        for kind in CellKind::BOTH {
            for block in arch.cell(kind) {
                for k in 0..2 {
                    let mut slot = vec![0.0; no + nb + 1];
                    if let Some(p) = self.op_pos(block.ops[k]) {
                        slot[p] = 1.0;
                    }
                    slot[no + block.inputs[k]] = 1.0;
                    v.extend(slot);
                }
                let mut comb = vec![0.0; self.config.combiners.len()];
                if let Some(p) = self.comb_pos(block.combine) {
                    comb[p] = 1.0;
                }
                v.extend(comb);
            }
        }
        Ok(v)
    }
}

impl Enumerable for NasNetSpace {
    /// Mixed radix, least significant first: for the normal cell, block by block, input 0
    /// (`b + 2` states), input 1, op 0 (`|ops|`), op 1, combiner (`|combiners|`); then the same
    /// for the reduction cell. The size is `(Π_{b<B} (b+2)² · |ops|^{2B} · |combiners|^B)²`:
    /// `(720² · 13^10 · 2^5)² ≈ 5.2 · 10^36` for the default space, as represented (branch
    /// order and relabellings count).
    fn size(&self) -> u128 {
        let both: Vec<u128> = self
            .cell_radices
            .iter()
            .chain(&self.cell_radices)
            .copied()
            .collect();
        radix::size(&both).unwrap_or(u128::MAX)
    }

    fn arch_at(&self, index: u128) -> Result<NasNetArch, SpaceError> {
        SpaceError::check_index(NAME, index, self.size())?;
        let cell_size = radix::size(&self.cell_radices).unwrap_or(u128::MAX);
        Ok(NasNetArch {
            normal: self.cell_from_digits(&radix::decode(index % cell_size, &self.cell_radices)),
            reduce: self.cell_from_digits(&radix::decode(index / cell_size, &self.cell_radices)),
        })
    }

    fn index_of(&self, arch: &NasNetArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        let cell_size = radix::size(&self.cell_radices).unwrap_or(u128::MAX);
        let lo = radix::encode(&self.cell_digits(&arch.normal), &self.cell_radices);
        let hi = radix::encode(&self.cell_digits(&arch.reduce), &self.cell_radices);
        Ok(hi * cell_size + lo)
    }
}

impl Canonicalize for NasNetSpace {
    /// Each cell on its own: among all relabellings of its blocks that keep every block after
    /// the blocks it reads (brute force over the topological orders, at most `B!` = 120), the
    /// one whose text is least, with the two `(operation, input)` branches of every block
    /// sorted. Both combiners are treated as symmetric: `add` is commutative, and `concat` of
    /// `(x, y)` equals `concat` of `(y, x)` up to a permutation of channels, which the
    /// following layers absorb. The output concat follows from the blocks (unused ones), so it
    /// is not written. The result is `normal:<cell>/reduce:<cell>`, a cell being
    /// `add(op~state,op~state);...`.
    fn canonical(&self, arch: &NasNetArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(format!(
            "normal:{}/reduce:{}",
            canonical_cell(&arch.normal),
            canonical_cell(&arch.reduce)
        )))
    }
}

impl TextFormat for NasNetSpace {
    fn to_text(&self, arch: &NasNetArch) -> String {
        arch.to_string()
    }

    /// Parses the notation, reporting a cell with another number of blocks than the space as
    /// [`ParseErrorKind::WrongCount`], then validates against the space.
    fn parse(&self, text: &str) -> Result<NasNetArch, SpaceError> {
        let a = parse_arch(text, Some(self.config.blocks))?;
        self.validate(&a)?;
        Ok(a)
    }
}

impl ToGraph for NasNetSpace {
    /// Operations on nodes, the two cells as disjoint parts of one graph (normal first, then
    /// reduce, with the same labels). A cell is `h_{i-1}`, `h_i`, then per block its two
    /// operation nodes and a combiner node labelled `add` or `concat`, then `output`. An
    /// operation node reads its input state (`h_{i-1}`, `h_i` or the combiner node of an
    /// earlier block) and feeds its block's combiner; `output` reads the combiners of the
    /// unused blocks. Use [`NasNetSpace::cell_graph`] for one cell alone.
    fn graph(&self, arch: &NasNetArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        let mut g = self.cell_graph(&arch.normal);
        let r = self.cell_graph(&arch.reduce);
        let off = g.labels.len();
        g.labels.extend(r.labels);
        g.edges
            .extend(r.edges.into_iter().map(|(a, b)| (a + off, b + off)));
        Ok(g)
    }
}

/// Serialized as its configuration, so a saved space can be reloaded; loading validates it.
impl From<NasNetSpace> for NasNetConfig {
    fn from(space: NasNetSpace) -> Self {
        space.config
    }
}

impl TryFrom<NasNetConfig> for NasNetSpace {
    type Error = SpaceError;
    fn try_from(config: NasNetConfig) -> Result<Self, SpaceError> {
        NasNetSpace::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::darts;
    use crate::laws;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;
    use std::collections::HashSet;

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

    fn all_laws(s: &NasNetSpace) {
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
    fn laws_hold() {
        all_laws(&NasNetSpace::default());
        all_laws(&small());
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
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 5,
                    found: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!((e.position, e.token.as_str()), (bad.len() - 2, "]"));
        let e = err("NASNet(normal=[], reduce=[])");
        assert!(matches!(
            e.kind,
            ParseErrorKind::WrongCount {
                expected: 1,
                found: 0,
                ..
            }
        ));
        assert_eq!(e.position, 15);
        let one = "NASNet(normal=[('conv_1x1', 0, 'conv_1x1', 1, 'add')], reduce=[('conv_1x1', 0, 'conv_1x1', 1, 'add')])";
        match NasNetSpace::default().parse(one).unwrap_err() {
            SpaceError::Parse(e) => {
                assert!(matches!(
                    e.kind,
                    ParseErrorKind::WrongCount {
                        expected: 5,
                        found: 1,
                        ..
                    }
                ));
                assert_eq!(e.position, one.find("], reduce").unwrap());
            }
            other => panic!("{other}"),
        }
        // Too many blocks for a 3-block space: reported at the first extra block.
        match small().parse(NASNET_A).unwrap_err() {
            SpaceError::Parse(e) => {
                assert!(matches!(
                    e.kind,
                    ParseErrorKind::WrongCount {
                        expected: 3,
                        found: 5,
                        ..
                    }
                ));
                assert_eq!(e.position, NASNET_A.find("('avg_pool_3x3', 0").unwrap());
            }
            other => panic!("{other}"),
        }
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
        let field = |c: NasNetConfig| match NasNetSpace::new(c) {
            Err(SpaceError::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
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
        let mut inv = vec![0; order.len()];
        for (p, &o) in order.iter().enumerate() {
            inv[o] = p;
        }
        let map = |j: usize| if j < 2 { j } else { inv[j - 2] + 2 };
        order
            .iter()
            .enumerate()
            .map(|(p, &o)| {
                let mut b = cell[o];
                b.inputs = b.inputs.map(map);
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
                    let preds: Vec<Vec<usize>> = a
                        .cell(kind)
                        .iter()
                        .map(|x| {
                            x.inputs
                                .iter()
                                .filter(|&&j| j >= 2)
                                .map(|&j| j - 2)
                                .collect()
                        })
                        .collect();
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
}
