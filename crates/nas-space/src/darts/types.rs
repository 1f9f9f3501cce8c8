//! The DARTS operations, genotypes and configuration.

use serde::{Deserialize, Serialize};

use super::FORMAT;
use crate::common::named_op;

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
    /// The DARTS search space's `PRIMITIVES`, in the repository's order: the first eight of
    /// [`DartsOp::ALL`], `none` to `dil_conv_5x5`.
    pub const PRIMITIVES: [DartsOp; 8] = DartsOp::all_from(0);

    /// The seven primitives a derived DARTS genotype can contain (`PRIMITIVES` without `none`:
    /// DARTS' derivation never picks `none`). The default [`DartsSpace`](super::DartsSpace) samples these.
    pub const DERIVED: [DartsOp; 7] = DartsOp::all_from(1);

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

    /// `N` operations of [`DartsOp::ALL`] from position `start`.
    const fn all_from<const N: usize>(start: usize) -> [DartsOp; N] {
        let mut out = [DartsOp::None; N];
        let mut k = 0;
        while k < N {
            out[k] = DartsOp::ALL[start + k];
            k += 1;
        }
        out
    }

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

    pub(crate) fn table() -> [(&'static str, DartsOp); 10] {
        DartsOp::ALL.map(|o| (o.name(), o))
    }
}

named_op!(DartsOp, FORMAT);

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

    pub(super) fn cell_mut(
        &mut self,
        kind: CellKind,
    ) -> (&mut Vec<(DartsOp, usize)>, &mut Vec<usize>) {
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

/// Configuration of a [`DartsSpace`](super::DartsSpace).
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
    /// The space of the NASNet and AmoebaNet genotypes of the DARTS repository ([`NASNET`](super::NASNET),
    /// [`AMOEBANET`](super::AMOEBANET)): 5 nodes, every [`DartsOp`] but `none`, inputs may repeat, concat of the
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
