//! The NASNet operations, blocks, architectures and configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FORMAT;
use crate::common::named_op;
use crate::darts::CellKind;

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
    pub(crate) fn table() -> Vec<(&'static str, NasNetOp)> {
        let mut t: Vec<_> = NasNetOp::ALL.iter().map(|&o| (o.name(), o)).collect();
        t.push(("identity", NasNetOp::SkipConnect));
        t.push(("conv_1x3_3x1", NasNetOp::Conv3x1Conv1x3));
        t.push(("conv_1x7_7x1", NasNetOp::Conv7x1Conv1x7));
        t
    }
}

named_op!(NasNetOp, FORMAT);

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

    pub(crate) fn table() -> [(&'static str, Combiner); 2] {
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

    pub(super) fn cell_mut(&mut self, kind: CellKind) -> &mut Vec<NasNetBlock> {
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

pub(super) fn output_states(cell: &[NasNetBlock]) -> Vec<usize> {
    (2..cell.len() + 2)
        .filter(|&s| cell.iter().all(|b| !b.inputs.contains(&s)))
        .collect()
}

/// Configuration of a [`NasNetSpace`](super::NasNetSpace).
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
