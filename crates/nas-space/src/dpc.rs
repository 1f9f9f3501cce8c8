//! The Dense Prediction Cell (DPC) space of Chen et al., "Searching for Efficient Multi-Scale
//! Architectures for Dense Image Prediction" (NeurIPS 2018).
//!
//! A cell has `B` branches (default 5). Branch `b` (numbered from 1) reads either the backbone
//! feature map (input `0`) or the output of an earlier branch (`1..b`), and applies one
//! operation: a 1x1 convolution, a 3x3 atrous separable convolution with rate `r_h × r_w`
//! (`r_h, r_w ∈ {1, 3, 6, 9, 12, 15, 18, 21}`), or spatial pyramid (average) pooling with grid
//! `g_h × g_w` (`g_h, g_w ∈ {1, 2, 4, 8}`): 81 operations. The cell's output concatenates every
//! branch's output (the reference code then projects it with a 1x1 convolution).
//!
//! Architectures print as the branches separated by spaces, each `{op}<{input}`, with operations
//! `conv_1x1`, `sep_atrous_3x3_r{h}x{w}` and `spp_{h}x{w}`. The cell found by the paper's search
//! for Cityscapes ([`TOP1_CITYSCAPES`], from `dense_prediction_cell_branch5_top1_cityscapes.json`
//! in tensorflow/models `research/deeplab/core`, where input `-1` is the backbone and input `k`
//! the `k`-th branch counted from 0):
//!
//! ```
//! use nas_space::dpc::{DpcOp, DpcSpace, TOP1_CITYSCAPES};
//! use nas_space::{Enumerable, TextFormat};
//!
//! let space = DpcSpace::default();
//! let cell = space.parse(TOP1_CITYSCAPES)?;
//! assert_eq!(cell.branches[1].op, DpcOp::SepAtrous3x3 { rate_h: 18, rate_w: 15 });
//! assert_eq!(cell.branches[1].input, 1);
//! assert_eq!(space.to_text(&cell), TOP1_CITYSCAPES);
//! assert_eq!(space.size(), 120 * 81u128.pow(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The rates and grids are the paper's (Section 3.2); the reference implementation is
//! `research/deeplab/core/dense_prediction_cell.py` in tensorflow/models (operations `conv` with
//! kernel 1 or 3 and a `rate` pair, and `pyramid_pooling` with a `grid_size` pair).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

const FORMAT: &str = "DPC architecture string";
const NAME: &str = "dpc";

/// The paper's atrous rates (each of `r_h`, `r_w`).
pub const RATES: [u32; 8] = [1, 3, 6, 9, 12, 15, 18, 21];
/// The paper's pyramid-pooling grid sizes (each of `g_h`, `g_w`).
pub const GRIDS: [u32; 4] = [1, 2, 4, 8];
/// The paper's number of branches.
pub const DEFAULT_BRANCHES: usize = 5;

/// The top-1 DPC found for Cityscapes (tensorflow/models
/// `research/deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json`), in this
/// module's text format.
pub const TOP1_CITYSCAPES: &str = "sep_atrous_3x3_r1x6<0 sep_atrous_3x3_r18x15<1 \
                                   sep_atrous_3x3_r6x3<2 sep_atrous_3x3_r1x1<1 sep_atrous_3x3_r6x21<1";

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

const KNOWN_OPS: [&str; 3] = ["conv_1x1", "sep_atrous_3x3_r{h}x{w}", "spp_{h}x{w}"];

impl DpcOp {
    /// The operation's name in the text format, e.g. `sep_atrous_3x3_r6x3`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Parses a name, or returns `None` if it is none of the three forms.
    fn from_name(name: &str) -> Option<DpcOp> {
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

impl fmt::Display for DpcOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpcOp::Conv1x1 => f.write_str("conv_1x1"),
            DpcOp::SepAtrous3x3 { rate_h, rate_w } => {
                write!(f, "sep_atrous_3x3_r{rate_h}x{rate_w}")
            }
            DpcOp::Spp { grid_h, grid_w } => write!(f, "spp_{grid_h}x{grid_w}"),
        }
    }
}

impl FromStr for DpcOp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        DpcOp::from_name(s).ok_or_else(|| unknown_op(s, 0))
    }
}

fn unknown_op(name: &str, pos: usize) -> ParseError {
    ParseError::new(
        FORMAT,
        ParseErrorKind::UnknownOp {
            known: KNOWN_OPS.iter().map(|s| s.to_string()).collect(),
        },
        pos,
        name,
    )
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

impl fmt::Display for DpcArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, b) in self.branches.iter().enumerate() {
            if k > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}<{}", b.op, b.input)?;
        }
        Ok(())
    }
}

/// Byte positions of one parsed branch: start (= the op name) and end.
#[derive(Debug, Clone, Copy)]
struct BranchPos {
    start: usize,
    end: usize,
}

/// Parses any number of branches with any operation parameters; checks that inputs are earlier.
fn parse_branches(s: &str) -> Result<Vec<(DpcBranch, BranchPos)>, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.skip_ws();
    let mut out = Vec::new();
    loop {
        let b = out.len() + 1;
        let (name, start) = c.ident()?;
        let op = DpcOp::from_name(name).ok_or_else(|| unknown_op(name, start))?;
        c.expect_char('<')?;
        let (input, ipos) = c.number()?;
        if input >= b {
            return Err(c.error_at(
                ParseErrorKind::EdgeFromLaterNode { from: input, to: b },
                ipos,
                &input.to_string(),
            ));
        }
        out.push((
            DpcBranch { input, op },
            BranchPos {
                start,
                end: c.pos(),
            },
        ));
        if c.at_end() {
            break;
        }
        if !c.peek().is_some_and(char::is_whitespace) {
            return Err(c.error(ParseErrorKind::TrailingInput));
        }
        c.skip_ws();
        if c.at_end() {
            break;
        }
    }
    Ok(out)
}

impl FromStr for DpcArch {
    type Err = ParseError;

    /// Parses any number of branches; [`DpcSpace`]'s `parse` also checks them against its
    /// configuration.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(DpcArch {
            branches: parse_branches(s)?.into_iter().map(|(b, _)| b).collect(),
        })
    }
}

/// The DPC space: `branches` branches, each choosing an earlier input and one of the
/// operations built from the configured rates and grids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DpcSpaceConfig")]
pub struct DpcSpace {
    branches: usize,
    rates: Vec<u32>,
    grids: Vec<u32>,
    ops: Vec<DpcOp>,
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
    if values.is_empty() {
        return Err(SpaceError::config(NAME, field, "must not be empty"));
    }
    if values.contains(&0) {
        return Err(SpaceError::config(NAME, field, "must be positive"));
    }
    if values.iter().collect::<BTreeSet<_>>().len() != values.len() {
        return Err(SpaceError::config(
            NAME,
            field,
            "contains a duplicate value",
        ));
    }
    Ok(())
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

    fn op_pos(&self, op: DpcOp) -> Option<usize> {
        self.ops.iter().position(|&o| o == op)
    }

    /// Branch `b` (0-based) has `(b + 1)·|ops|` choices.
    fn radices(&self) -> Vec<u128> {
        (0..self.branches)
            .map(|b| (b as u128 + 1) * self.ops.len() as u128)
            .collect()
    }

    fn op_error(&self, op: DpcOp) -> String {
        format!(
            "`{op}` is not in this space (rates {:?}, grids {:?})",
            self.rates, self.grids
        )
    }

    /// All architectures that differ from `arch` in the op (`input == false`) or the input of
    /// branch `b`.
    fn variants(&self, arch: &DpcArch, b: usize, input: bool) -> Vec<DpcArch> {
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
    fn decisions(&self) -> Vec<(usize, bool)> {
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

impl SearchSpace for DpcSpace {
    type Arch = DpcArch;

    fn name(&self) -> &str {
        NAME
    }

    /// Uniform over the space: each branch's input uniformly among the backbone and the earlier
    /// branches, its operation uniformly among the [`DpcSpace::ops`] (so mostly atrous
    /// convolutions: 64 of the 81 operations by default).
    fn sample(&self, rng: &mut dyn Rng) -> DpcArch {
        let branches = (0..self.branches)
            .map(|b| DpcBranch {
                input: choose(rng, &(0..=b).collect::<Vec<_>>()),
                op: choose(rng, &self.ops),
            })
            .collect();
        DpcArch { branches }
    }

    fn validate(&self, arch: &DpcArch) -> Result<(), SpaceError> {
        if arch.branches.len() != self.branches {
            return Err(SpaceError::invalid(
                NAME,
                format!(
                    "expected {} branches, found {}",
                    self.branches,
                    arch.branches.len()
                ),
            ));
        }
        for (k, br) in arch.branches.iter().enumerate() {
            if br.input > k {
                return Err(SpaceError::invalid(
                    NAME,
                    format!(
                        "branch {} reads branch {}: inputs must be the backbone (0) or earlier branches",
                        k + 1,
                        br.input
                    ),
                ));
            }
            if self.op_pos(br.op).is_none() {
                return Err(SpaceError::invalid(
                    NAME,
                    format!("branch {}: {}", k + 1, self.op_error(br.op)),
                ));
            }
        }
        Ok(())
    }
}

impl Mutate for DpcSpace {
    /// Picks one decision uniformly (the operation of a branch, or the input of a branch after
    /// the first) and changes it to a different value, uniformly.
    fn mutate(&self, arch: &DpcArch, rng: &mut dyn Rng) -> Result<DpcArch, SpaceError> {
        self.validate(arch)?;
        let decisions = self.decisions();
        if decisions.is_empty() {
            return Err(SpaceError::NoNeighbor { space: NAME.into() });
        }
        let (b, input) = choose(rng, &decisions);
        let variants = self.variants(arch, b, input);
        let k = choose(rng, &(0..variants.len()).collect::<Vec<_>>());
        Ok(variants[k].clone())
    }
}

impl Neighborhood for DpcSpace {
    /// Branch by branch: every other operation (in [`DpcSpace::ops`] order), then every other
    /// input (ascending).
    fn neighbors(&self, arch: &DpcArch) -> Result<Vec<DpcArch>, SpaceError> {
        self.validate(arch)?;
        let out: Vec<DpcArch> = self
            .decisions()
            .into_iter()
            .flat_map(|(b, input)| self.variants(arch, b, input))
            .collect();
        if out.is_empty() {
            return Err(SpaceError::NoNeighbor { space: NAME.into() });
        }
        Ok(out)
    }
}

impl Encode for DpcSpace {
    /// `B·|ops|` one-hot operations (branch-major, [`DpcSpace::ops`] order), then the input
    /// adjacency: for branch `b` (from 1) a one-hot over its `b` possible inputs
    /// (`0..b`), branch after branch: `B(B+1)/2` entries.
    fn encoding_len(&self) -> usize {
        self.branches * self.ops.len() + self.branches * (self.branches + 1) / 2
    }

    fn encode(&self, arch: &DpcArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let n = self.ops.len();
        let mut v = vec![0.0; self.encoding_len()];
        let adj = self.branches * n;
        for (k, br) in arch.branches.iter().enumerate() {
            if let Some(p) = self.op_pos(br.op) {
                v[k * n + p] = 1.0;
            }
            v[adj + k * (k + 1) / 2 + br.input] = 1.0;
        }
        Ok(v)
    }
}

impl Enumerable for DpcSpace {
    /// `Π_b (b+1)·|ops|` over 0-based branches `b`: `120 · 81^5 = 418,414,128,120` by default.
    /// Branch `b`'s digit is `input·|ops| + pos(op)`; branch 1 is the least significant.
    fn size(&self) -> u128 {
        radix::size(&self.radices()).unwrap_or(u128::MAX)
    }

    fn arch_at(&self, index: u128) -> Result<DpcArch, SpaceError> {
        SpaceError::check_index(NAME, index, self.size())?;
        let n = self.ops.len() as u128;
        let branches = radix::decode(index, &self.radices())
            .into_iter()
            .map(|d| DpcBranch {
                input: (d / n) as usize,
                op: self.ops[(d % n) as usize],
            })
            .collect();
        Ok(DpcArch { branches })
    }

    fn index_of(&self, arch: &DpcArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        let n = self.ops.len() as u128;
        let digits: Vec<u128> = arch
            .branches
            .iter()
            .map(|b| b.input as u128 * n + self.op_pos(b.op).unwrap_or(0) as u128)
            .collect();
        Ok(radix::encode(&digits, &self.radices()))
    }
}

/// The canonical relabelling of a structurally valid cell (see `Canonicalize`).
fn canonical_arch(arch: &DpcArch) -> DpcArch {
    let n = arch.branches.len();
    // Node 0 is the backbone, node k is branch k; every branch has exactly one parent.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    for (k, b) in arch.branches.iter().enumerate() {
        children[b.input].push(k + 1);
    }
    // AHU-style subtree keys, bottom-up (children have larger numbers than their parent).
    let mut key: Vec<String> = vec![String::new(); n + 1];
    for node in (0..=n).rev() {
        children[node].sort_by(|a, b| key[*a].cmp(&key[*b]).then(a.cmp(b)));
        let label = match node {
            0 => "input".to_string(),
            k => arch.branches[k - 1].op.to_string(),
        };
        let inner: Vec<&str> = children[node].iter().map(|&c| key[c].as_str()).collect();
        key[node] = format!("{label}({})", inner.join(","));
    }
    // Preorder over the sorted tree: a topological order in which parents precede children.
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<usize> = children[0].iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        order.push(node);
        stack.extend(children[node].iter().rev().copied());
    }
    let mut new_of = vec![0usize; n + 1];
    for (new, &old) in order.iter().enumerate() {
        new_of[old] = new + 1;
    }
    DpcArch {
        branches: order
            .iter()
            .map(|&old| {
                let b = arch.branches[old - 1];
                DpcBranch {
                    input: new_of[b.input],
                    op: b.op,
                }
            })
            .collect(),
    }
}

impl Canonicalize for DpcSpace {
    /// The text of a canonical renumbering of the branches.
    ///
    /// The cell's output concatenates all branches, so their order only permutes channels: any
    /// renumbering of the branches that keeps every input earlier than its reader computes the
    /// same function family. Since every branch has exactly one input, a cell is a rooted tree
    /// (root: the backbone) with operations on the nodes, and these renumberings are exactly its
    /// isomorphisms. The canonical form sorts each node's children by their subtree's canonical
    /// key (`op(child keys...)`, the AHU tree-isomorphism code), numbers the branches in
    /// preorder of the sorted tree, and prints the renumbered cell: a valid cell's text, equal
    /// for two cells if and only if one is a renumbering of the other. (For the default 5
    /// branches this is checked against brute force over all 5! renumberings in the tests.)
    fn canonical(&self, arch: &DpcArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(canonical_arch(arch).to_string()))
    }
}

impl TextFormat for DpcSpace {
    fn to_text(&self, arch: &DpcArch) -> String {
        arch.to_string()
    }

    /// Parses the text and checks it against this space: the branch count
    /// ([`ParseErrorKind::WrongCount`], at the end of the input or at the first extra branch)
    /// and each operation's rates or grid ([`ParseErrorKind::InvalidNumber`] at the operation).
    fn parse(&self, text: &str) -> Result<DpcArch, SpaceError> {
        let parsed = parse_branches(text)?;
        let wrong_count = |pos: usize, token: &str| {
            ParseError::new(
                FORMAT,
                ParseErrorKind::WrongCount {
                    what: "branches".into(),
                    expected: self.branches,
                    found: parsed.len(),
                },
                pos,
                token,
            )
        };
        if parsed.len() < self.branches {
            return Err(wrong_count(text.trim_end().len(), "").into());
        }
        if parsed.len() > self.branches {
            let p = parsed[self.branches].1;
            return Err(wrong_count(p.start, &text[p.start..p.end]).into());
        }
        for (b, p) in &parsed {
            if self.op_pos(b.op).is_none() {
                return Err(ParseError::new(
                    FORMAT,
                    ParseErrorKind::InvalidNumber {
                        reason: self.op_error(b.op),
                    },
                    p.start,
                    b.op.to_string(),
                )
                .into());
            }
        }
        let arch = DpcArch {
            branches: parsed.into_iter().map(|(b, _)| b).collect(),
        };
        self.validate(&arch)?;
        Ok(arch)
    }
}

impl ToGraph for DpcSpace {
    /// Node 0 is `input` (the backbone feature map), node `k` is branch `k` labelled with its
    /// operation name, the last node is `output` (the concatenation). Edges: `input(k) → k` for
    /// every branch and `k → output` for every branch.
    fn graph(&self, arch: &DpcArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        let n = arch.branches.len();
        let mut labels = vec!["input".to_string()];
        labels.extend(arch.branches.iter().map(|b| b.op.name()));
        labels.push("output".into());
        let mut edges: Vec<(usize, usize)> = arch
            .branches
            .iter()
            .enumerate()
            .flat_map(|(k, b)| [(b.input, k + 1), (k + 1, n + 1)])
            .collect();
        edges.sort_unstable();
        Ok(ArchGraph { labels, edges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;
    use rand::{SeedableRng, rngs::ChaCha8Rng};
    use std::collections::HashMap;

    #[test]
    fn laws_hold() {
        let s = DpcSpace::default();
        laws::check_sample(&s, 1, 200).unwrap();
        laws::check_serde(&s, 2, 200).unwrap();
        laws::check_mutate(&s, 3, 200).unwrap();
        laws::check_neighbors(&s, 4, 50).unwrap();
        laws::check_text(&s, 5, 200).unwrap();
        laws::check_encode(&s, 6, 50).unwrap();
        laws::check_enumerable(&s, 7, 200).unwrap();
        laws::check_canonical(&s, 8, 50).unwrap();
        laws::check_graph(&s, 9, 50).unwrap();
    }

    #[test]
    fn small_spaces_keep_the_laws() {
        let s = DpcSpace::new(3, &[1], &[1]).unwrap();
        assert_eq!(s.ops().len(), 3);
        assert_eq!(s.size(), 3 * 6 * 9);
        assert_eq!(s.iter().count(), 162);
        laws::check_mutate(&s, 1, 50).unwrap();
        laws::check_neighbors(&s, 1, 20).unwrap();
        laws::check_enumerable(&s, 1, 50).unwrap();
        // One branch: only the operation can change.
        let one = DpcSpace::new(1, &[1], &[1]).unwrap();
        let a = one.parse("conv_1x1<0").unwrap();
        assert_eq!(one.neighbors(&a).unwrap().len(), 2);
        laws::check_neighbors(&one, 2, 10).unwrap();
    }

    #[test]
    fn published_top1_cityscapes_cell() {
        let s = DpcSpace::default();
        let a = s.parse(TOP1_CITYSCAPES).unwrap();
        // JSON: rate [1, 6] input -1; [18, 15] input 0; [6, 3] input 1; [1, 1] input 0;
        // [6, 21] input 0 (inputs counted from 0, -1 = backbone).
        let expected: Vec<(u32, u32, usize)> =
            vec![(1, 6, 0), (18, 15, 1), (6, 3, 2), (1, 1, 1), (6, 21, 1)];
        for (b, (h, w, i)) in a.branches.iter().zip(expected) {
            assert_eq!(
                b.op,
                DpcOp::SepAtrous3x3 {
                    rate_h: h,
                    rate_w: w
                }
            );
            assert_eq!(b.input, i);
        }
        assert_eq!(a.to_string(), TOP1_CITYSCAPES);
        let g = s.graph(&a).unwrap();
        assert_eq!(g.labels[1], "sep_atrous_3x3_r1x6");
        assert_eq!(g.labels[6], "output");
        assert_eq!(
            g.edges,
            vec![
                (0, 1),
                (1, 2),
                (1, 4),
                (1, 5),
                (1, 6),
                (2, 3),
                (2, 6),
                (3, 6),
                (4, 6),
                (5, 6)
            ]
        );
        let i = s.index_of(&a).unwrap();
        assert_eq!(s.arch_at(i).unwrap(), a);
    }

    #[test]
    fn op_names_round_trip() {
        let s = DpcSpace::default();
        assert_eq!(s.ops().len(), 81);
        assert_eq!(s.ops()[0], DpcOp::Conv1x1);
        assert_eq!(
            s.ops()[1],
            DpcOp::SepAtrous3x3 {
                rate_h: 1,
                rate_w: 1
            }
        );
        assert_eq!(
            s.ops()[80],
            DpcOp::Spp {
                grid_h: 8,
                grid_w: 8
            }
        );
        for &op in s.ops() {
            assert_eq!(op.name().parse::<DpcOp>().unwrap(), op);
        }
        assert_eq!(
            "spp_2x4".parse::<DpcOp>().unwrap(),
            DpcOp::Spp {
                grid_h: 2,
                grid_w: 4
            }
        );
        for bad in [
            "conv_3x3",
            "spp_2",
            "spp_x2",
            "sep_atrous_3x3_r+1x2",
            "spp_2x4x8",
        ] {
            assert!(matches!(
                bad.parse::<DpcOp>().unwrap_err().kind,
                ParseErrorKind::UnknownOp { .. }
            ));
        }
    }

    #[test]
    fn size_encoding_and_enumeration_order() {
        let s = DpcSpace::default();
        assert_eq!(s.size(), 418_414_128_120);
        assert_eq!(s.encoding_len(), 5 * 81 + 15);
        let first = s.arch_at(0).unwrap();
        assert_eq!(
            first.to_string(),
            "conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0"
        );
        let second = s.arch_at(1).unwrap();
        assert_eq!(
            second.branches[0].op,
            DpcOp::SepAtrous3x3 {
                rate_h: 1,
                rate_w: 1
            }
        );
        // Branch 2's digit: input 1 is 81 steps of 81.
        let a = s.arch_at(81 * 81).unwrap();
        assert_eq!(
            a.branches[1],
            DpcBranch {
                input: 1,
                op: DpcOp::Conv1x1
            }
        );
        let last = s.arch_at(s.size() - 1).unwrap();
        assert_eq!(
            last.branches[4],
            DpcBranch {
                input: 4,
                op: DpcOp::Spp {
                    grid_h: 8,
                    grid_w: 8
                }
            }
        );

        let top = s.parse(TOP1_CITYSCAPES).unwrap();
        let e = s.encode(&top).unwrap();
        assert_eq!(e.iter().sum::<f32>(), 10.0);
        let p = s
            .ops()
            .iter()
            .position(|&o| {
                o == DpcOp::SepAtrous3x3 {
                    rate_h: 1,
                    rate_w: 6,
                }
            })
            .unwrap();
        assert_eq!(e[p], 1.0);
        // Input adjacency: [1←0 | 2←0, 2←1 | 3←0..3←2 | ...].
        assert_eq!(
            &e[405..],
            &[1., 0., 1., 0., 0., 1., 0., 1., 0., 0., 0., 1., 0., 0., 0.]
        );
    }

    #[test]
    fn neighbors_count_every_decision() {
        let s = DpcSpace::default();
        let a = s.parse(TOP1_CITYSCAPES).unwrap();
        let ns = s.neighbors(&a).unwrap();
        // 5 × 80 other operations + (1 + 2 + 3 + 4) other inputs.
        assert_eq!(ns.len(), 400 + 10);
        for n in &ns {
            let diff = a
                .branches
                .iter()
                .zip(&n.branches)
                .map(|(x, y)| (x.op != y.op) as usize + (x.input != y.input) as usize);
            assert_eq!(diff.sum::<usize>(), 1);
        }
    }

    /// Every renumbering of the branches that keeps inputs earlier.
    fn renumberings(a: &DpcArch) -> Vec<DpcArch> {
        fn perms(items: Vec<usize>) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = Vec::new();
            for k in 0..items.len() {
                let mut rest = items.clone();
                let first = rest.remove(k);
                for mut p in perms(rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        let n = a.branches.len();
        perms((1..=n).collect())
            .into_iter()
            .filter_map(|order| {
                let mut new_of = vec![0; n + 1];
                for (k, &old) in order.iter().enumerate() {
                    new_of[old] = k + 1;
                }
                let branches: Vec<DpcBranch> = order
                    .iter()
                    .map(|&old| {
                        let b = a.branches[old - 1];
                        DpcBranch {
                            input: new_of[b.input],
                            op: b.op,
                        }
                    })
                    .collect();
                branches
                    .iter()
                    .enumerate()
                    .all(|(k, b)| b.input <= k)
                    .then_some(DpcArch { branches })
            })
            .collect()
    }

    #[test]
    fn canonical_form_is_invariant_under_renumbering() {
        let s = DpcSpace::default();
        let top = s.parse(TOP1_CITYSCAPES).unwrap();
        let c = s.canonical(&top).unwrap();
        assert!(s.parse(c.as_str()).is_ok(), "canonical text is a cell: {c}");
        for r in renumberings(&top) {
            s.validate(&r).unwrap();
            assert_eq!(s.canonical(&r).unwrap(), c, "{r}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..30 {
            let a = s.sample(&mut rng);
            let c = s.canonical(&a).unwrap();
            for r in renumberings(&a) {
                assert_eq!(s.canonical(&r).unwrap(), c);
            }
        }
        // Swapping two independent branches: same cell.
        let x = s
            .parse("conv_1x1<0 spp_1x1<0 sep_atrous_3x3_r6x3<1 conv_1x1<0 conv_1x1<0")
            .unwrap();
        let y = s
            .parse("spp_1x1<0 conv_1x1<0 sep_atrous_3x3_r6x3<2 conv_1x1<0 conv_1x1<0")
            .unwrap();
        assert_eq!(s.canonical(&x).unwrap(), s.canonical(&y).unwrap());
        // Genuinely different: the atrous branch reads the pooling branch.
        let z = s
            .parse("conv_1x1<0 spp_1x1<0 sep_atrous_3x3_r6x3<2 conv_1x1<0 conv_1x1<0")
            .unwrap();
        assert_ne!(s.canonical(&x).unwrap(), s.canonical(&z).unwrap());
        // Rates are not symmetric: r6x3 differs from r3x6.
        let w = s
            .parse("conv_1x1<0 spp_1x1<0 sep_atrous_3x3_r3x6<1 conv_1x1<0 conv_1x1<0")
            .unwrap();
        assert_ne!(s.canonical(&x).unwrap(), s.canonical(&w).unwrap());
    }

    #[test]
    fn canonical_form_matches_brute_force_over_renumberings() {
        // 5 branches, 3 operations: 120 · 3^5 = 29,160 cells.
        let s = DpcSpace::new(5, &[1], &[1]).unwrap();
        let mut ours: HashMap<String, String> = HashMap::new();
        let mut theirs: HashMap<String, String> = HashMap::new();
        for a in s.iter() {
            let c = s.canonical(&a).unwrap().0;
            let b = renumberings(&a)
                .iter()
                .map(|r| r.to_string())
                .min()
                .unwrap();
            if let Some(prev) = ours.insert(c.clone(), b.clone()) {
                assert_eq!(
                    prev, b,
                    "{a} merged with a cell that is no renumbering of it"
                );
            }
            if let Some(prev) = theirs.insert(b, c.clone()) {
                assert_eq!(prev, c, "renumberings of {a} split");
            }
        }
        assert_eq!(ours.len(), theirs.len());
    }

    fn err(s: &str) -> ParseError {
        match DpcSpace::default().parse(s).unwrap_err() {
            SpaceError::Parse(e) => e,
            other => panic!("not a parse error: {other}"),
        }
    }

    #[test]
    fn bad_strings_name_token_and_position() {
        // Unknown operation.
        let e = err("conv_1x1<0 conv_3x3<1 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
        assert_eq!((e.position, e.token.as_str()), (11, "conv_3x3"));
        assert!(e.to_string().contains("sep_atrous_3x3_r{h}x{w}"), "{e}");
        // Known form, value outside the configuration.
        let e = err("conv_1x1<0 sep_atrous_3x3_r5x3<1 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert!(
            matches!(e.kind, ParseErrorKind::InvalidNumber { .. }),
            "{e}"
        );
        assert_eq!((e.position, e.token.as_str()), (11, "sep_atrous_3x3_r5x3"));
        let e = err("conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 spp_16x1<0");
        assert_eq!((e.position, e.token.as_str()), (44, "spp_16x1"));

        // Wrong count.
        let e = err("conv_1x1<0 conv_1x1<1");
        assert_eq!(
            e.kind,
            ParseErrorKind::WrongCount {
                what: "branches".into(),
                expected: 5,
                found: 2
            }
        );
        assert_eq!((e.position, e.token.as_str()), (21, ""));
        let e = err("conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 spp_1x1<5");
        assert!(matches!(
            e.kind,
            ParseErrorKind::WrongCount {
                expected: 5,
                found: 6,
                ..
            }
        ));
        assert_eq!((e.position, e.token.as_str()), (55, "spp_1x1<5"));

        // Input from a later branch, or itself.
        let e = err("conv_1x1<0 conv_1x1<2 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
        assert_eq!((e.position, e.token.as_str()), (20, "2"));
        let e = err("conv_1x1<1 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 1, to: 1 });
        assert_eq!(e.position, 9);

        // Trailing text glued to a branch.
        let e = err("conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0)");
        assert_eq!(e.kind, ParseErrorKind::TrailingInput);
        assert_eq!((e.position, e.token.as_str()), (54, ")"));
        let e = err("conv_1x1<0x conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert_eq!(
            (e.kind, e.position, e.token.as_str()),
            (ParseErrorKind::TrailingInput, 10, "x")
        );

        // Empty.
        assert_eq!(err("").kind, ParseErrorKind::Empty);
        assert_eq!(err("  \n").kind, ParseErrorKind::Empty);

        // Malformed branches.
        let e = err("conv_1x1 0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
        assert_eq!(e.position, 8);
        let e = err("conv_1x1<x conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }) && e.position == 9);
        let e = err("<0 conv_1x1<0 conv_1x1<0 conv_1x1<0 conv_1x1<0");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }) && e.position == 0);
        let e = err("conv_1x1<99999999999999999999999 conv_1x1<0");
        assert!(matches!(e.kind, ParseErrorKind::InvalidNumber { .. }) && e.position == 9);
        // Whitespace between and around branches is tolerated.
        let a = DpcSpace::default()
            .parse(" conv_1x1<0\tconv_1x1<0  conv_1x1<0 conv_1x1<0 conv_1x1<0\n")
            .unwrap();
        assert_eq!(a, DpcSpace::default().arch_at(0).unwrap());
    }

    #[test]
    fn validate_rejects_foreign_cells() {
        let s = DpcSpace::default();
        let mut a = s.parse(TOP1_CITYSCAPES).unwrap();
        a.branches[2].input = 3;
        assert!(matches!(
            s.validate(&a),
            Err(SpaceError::InvalidArch { .. })
        ));
        a.branches[2].input = 2;
        a.branches[0].op = DpcOp::SepAtrous3x3 {
            rate_h: 2,
            rate_w: 1,
        };
        assert!(
            s.validate(&a)
                .unwrap_err()
                .to_string()
                .contains("sep_atrous_3x3_r2x1")
        );
        assert!(s.index_of(&a).is_err() && s.encode(&a).is_err() && s.canonical(&a).is_err());
        a.branches.pop();
        assert!(s.validate(&a).is_err());
        assert!(matches!(
            s.arch_at(s.size()),
            Err(SpaceError::IndexOutOfRange { .. })
        ));
        // FromStr accepts any parameters; the space rejects them.
        let b: DpcArch = "spp_3x5<0".parse().unwrap();
        assert_eq!(
            b.branches[0].op,
            DpcOp::Spp {
                grid_h: 3,
                grid_w: 5
            }
        );
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let field = |r: Result<DpcSpace, SpaceError>| match r {
            Err(SpaceError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid config, got {other:?}"),
        };
        assert_eq!(field(DpcSpace::with_branches(0)), "branches");
        assert_eq!(field(DpcSpace::with_branches(40)), "branches");
        assert_eq!(field(DpcSpace::new(5, &[], &[1])), "rates");
        assert_eq!(field(DpcSpace::new(5, &[1, 1], &[1])), "rates");
        assert_eq!(field(DpcSpace::new(5, &[1], &[0])), "grids");
        assert!(DpcSpace::with_branches(8).is_ok());
    }
}
