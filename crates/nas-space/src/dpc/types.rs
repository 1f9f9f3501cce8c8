//! The DPC operations, cells and space.

use serde::{Deserialize, Serialize};

use super::{DEFAULT_BRANCHES, GRIDS, NAME, RATES};
use crate::common::positive_distinct;
use crate::error::SpaceError;
use crate::traits::radix;

/// The operation of one DPC branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DpcOp {
    /// `conv_1x1`: 1x1 convolution.
    Conv1x1,
    /// `sep_atrous_3x3_r{h}x{w}`: 3x3 atrous separable convolution with rate `h × w`.
    SepAtrous3x3 {
        /// Rate along the height.
        rate_h: u32,
        /// Rate along the width.
        rate_w: u32,
    },
    /// `spp_{h}x{w}`: spatial pyramid (average) pooling on an `h × w` grid, then a 1x1
    /// convolution and bilinear upsampling.
    Spp {
        /// Grid rows.
        grid_h: u32,
        /// Grid columns.
        grid_w: u32,
    },
}

impl DpcOp {
    /// The operation's name in the text format, e.g. `sep_atrous_3x3_r6x3`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Parses a name, or returns `None` if it is none of the three forms.
    pub(super) fn from_name(name: &str) -> Option<DpcOp> {
        fn pair(s: &str) -> Option<(u32, u32)> {
            let (h, w) = s.split_once('x')?;
            let num = |t: &str| {
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    t.parse::<u32>().ok()
                } else {
                    None
                }
            };
            Some((num(h)?, num(w)?))
        }
        if name == "conv_1x1" {
            return Some(DpcOp::Conv1x1);
        }
        if let Some(rest) = name.strip_prefix("sep_atrous_3x3_r") {
            let (rate_h, rate_w) = pair(rest)?;
            return Some(DpcOp::SepAtrous3x3 { rate_h, rate_w });
        }
        let (grid_h, grid_w) = pair(name.strip_prefix("spp_")?)?;
        Some(DpcOp::Spp { grid_h, grid_w })
    }
}

/// One branch: its input and its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DpcBranch {
    /// `0` for the backbone feature map, `k` for the output of branch `k` (numbered from 1,
    /// and earlier than this branch).
    pub input: usize,
    /// The operation.
    pub op: DpcOp,
}

/// A dense prediction cell: its branches in order (branch `k` is `branches[k - 1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DpcArch {
    /// The branches, first to last.
    pub branches: Vec<DpcBranch>,
}

/// The DPC space: `branches` branches, each choosing an earlier input and one of the
/// operations built from the configured rates and grids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DpcSpaceConfig")]
pub struct DpcSpace {
    pub(super) branches: usize,
    pub(super) rates: Vec<u32>,
    pub(super) grids: Vec<u32>,
    pub(super) ops: Vec<DpcOp>,
}

/// The serialized form of [`DpcSpace`]; loading goes through [`DpcSpace::new`].
#[derive(Deserialize)]
struct DpcSpaceConfig {
    branches: usize,
    rates: Vec<u32>,
    grids: Vec<u32>,
}

impl TryFrom<DpcSpaceConfig> for DpcSpace {
    type Error = SpaceError;
    fn try_from(c: DpcSpaceConfig) -> Result<Self, SpaceError> {
        DpcSpace::new(c.branches, &c.rates, &c.grids)
    }
}

impl Default for DpcSpace {
    /// The paper's setting: 5 branches, rates `{1, 3, 6, 9, 12, 15, 18, 21}`, grids
    /// `{1, 2, 4, 8}`.
    fn default() -> Self {
        Self::build(DEFAULT_BRANCHES, &RATES, &GRIDS)
    }
}

fn check_values(field: &'static str, values: &[u32]) -> Result<(), SpaceError> {
    positive_distinct(NAME, field, values, "must be positive")
}

impl DpcSpace {
    fn build(branches: usize, rates: &[u32], grids: &[u32]) -> Self {
        let mut ops = vec![DpcOp::Conv1x1];
        for &rate_h in rates {
            for &rate_w in rates {
                ops.push(DpcOp::SepAtrous3x3 { rate_h, rate_w });
            }
        }
        for &grid_h in grids {
            for &grid_w in grids {
                ops.push(DpcOp::Spp { grid_h, grid_w });
            }
        }
        Self {
            branches,
            rates: rates.to_vec(),
            grids: grids.to_vec(),
            ops,
        }
    }

    /// A space with explicit choices. Fails with [`SpaceError::InvalidConfig`] on zero
    /// branches, on so many branches that the size overflows `u128`, or on an empty list, a
    /// zero or a duplicate among the rates or grids.
    pub fn new(branches: usize, rates: &[u32], grids: &[u32]) -> Result<Self, SpaceError> {
        if branches == 0 {
            return Err(SpaceError::config(NAME, "branches", "must be at least 1"));
        }
        check_values("rates", rates)?;
        check_values("grids", grids)?;
        let space = Self::build(branches, rates, grids);
        if radix::size(&space.radices()).is_none() {
            return Err(SpaceError::config(
                NAME,
                "branches",
                format!("{branches} branches make the space larger than u128 can count"),
            ));
        }
        Ok(space)
    }

    /// The paper's rates and grids with `branches` branches.
    pub fn with_branches(branches: usize) -> Result<Self, SpaceError> {
        Self::new(branches, &RATES, &GRIDS)
    }

    /// The number of branches.
    pub fn branches(&self) -> usize {
        self.branches
    }

    /// The allowed atrous rates.
    pub fn rates(&self) -> &[u32] {
        &self.rates
    }

    /// The allowed pooling grid sizes.
    pub fn grids(&self) -> &[u32] {
        &self.grids
    }

    /// Every operation a branch may use, in enumeration and encoding order: `conv_1x1`, then
    /// the atrous convolutions (`r_h` major), then the pyramid poolings (`g_h` major).
    pub fn ops(&self) -> &[DpcOp] {
        &self.ops
    }

    pub(super) fn op_pos(&self, op: DpcOp) -> Option<usize> {
        self.ops.iter().position(|&o| o == op)
    }

    /// Branch `b` (0-based) has `(b + 1)·|ops|` choices.
    pub(super) fn radices(&self) -> Vec<u128> {
        (0..self.branches)
            .map(|b| (b as u128 + 1) * self.ops.len() as u128)
            .collect()
    }

    pub(super) fn op_error(&self, op: DpcOp) -> String {
        format!(
            "`{op}` is not in this space (rates {:?}, grids {:?})",
            self.rates, self.grids
        )
    }

    /// All architectures that differ from `arch` in the op (`input == false`) or the input of
    /// branch `b`.
    pub(super) fn variants(&self, arch: &DpcArch, b: usize, input: bool) -> Vec<DpcArch> {
        let current = arch.branches[b];
        let with = |branch: DpcBranch| {
            let mut child = arch.clone();
            child.branches[b] = branch;
            child
        };
        if input {
            (0..=b)
                .filter(|&i| i != current.input)
                .map(|input| with(DpcBranch { input, ..current }))
                .collect()
        } else {
            self.ops
                .iter()
                .filter(|&&o| o != current.op)
                .map(|&op| with(DpcBranch { op, ..current }))
                .collect()
        }
    }

    /// Every decision `(branch, is_input)` with at least two options, in neighbour order.
    pub(super) fn decisions(&self) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        for b in 0..self.branches {
            if self.ops.len() > 1 {
                out.push((b, false));
            }
            if b > 0 {
                out.push((b, true));
            }
        }
        out
    }
}
