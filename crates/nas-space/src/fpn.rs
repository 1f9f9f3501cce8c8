//! The NAS-FPN space of Ghiasi et al., "NAS-FPN: Learning Scalable Feature Pyramid
//! Architecture for Object Detection" (CVPR 2019).
//!
//! A feature pyramid network takes a backbone's features at `L` levels (level `l` has stride
//! `2^l`; P3 to P7 in the paper, so `L = 5`) and builds a new pyramid with `N` **merging
//! cells** (7 in the paper). Cell `k` (0-based):
//!
//! 1. picks a feature from the candidates: the `L` input levels (numbered `0..L`, finest first)
//!    and the outputs of the earlier cells (numbered `L..L + k`);
//! 2. picks another, different one;
//! 3. picks its output level: both inputs are resampled to it (max pooling down, nearest
//!    upsampling up);
//! 4. merges them with a binary operation: `sum`, or `attention` (global pooling attention:
//!    the coarser input's global max, through a sigmoid, gates the finer one, which is added
//!    to the coarser: `coarse + fine · σ(max(coarse))`);
//!
//! then applies ReLU, a 3×3 convolution and batch norm, and becomes a candidate. The last `L`
//! cells are the output pyramid, so their levels are a permutation of the `L` levels; an output
//! cell also sums in every earlier feature of its level that no cell has read so far. This is the
//! reference implementation's rule (`official/vision/modeling/decoders/nasfpn.py` in
//! tensorflow/models), which [`FpnSpace::absorbed`] computes.
//!
//! Architectures print as the cells separated by spaces, each `{op}({a},{b})->P{level}` with
//! the feature numbers above. The architecture the paper's search found ([`PUBLISHED`], the
//! reference implementation's `NASFPN_BLOCK_SPECS`):
//!
//! ```
//! use nas_space::fpn::{FpnOp, FpnSpace, PUBLISHED};
//! use nas_space::{Enumerable, TextFormat};
//!
//! let space = FpnSpace::default(); // 7 cells over P3..P7
//! let arch = space.parse(PUBLISHED)?;
//! assert_eq!(arch.cells[0].op, FpnOp::Attention);
//! assert_eq!(arch.cells[0].inputs, [1, 3]); // P4 and P6
//! assert_eq!(arch.cells[0].level, 4);
//! assert_eq!(space.to_text(&arch), PUBLISHED);
//! // No cell reads input P5 (feature 2): the output cell of P5 (cell 4) sums it in.
//! assert_eq!(space.absorbed(&arch)?[4], vec![2]);
//! # Ok::<(), nas_space::SpaceError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::anchors::{DecisionGraph, DecisionKind, GraphStep};
use crate::common::{
    check_item_count, check_len, item_done, mutate_by_decision, neighbors_by_decision,
};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    Sequential, TextFormat, ToGraph, check_choices, choose, radix,
};

const NAME: &str = "nas-fpn";
const FORMAT: &str = "NAS-FPN architecture";

/// The architecture found by the paper's search (7 cells over P3..P7), from the reference
/// implementation's `NASFPN_BLOCK_SPECS`.
pub const PUBLISHED: &str = "attention(1,3)->P4 sum(1,5)->P4 sum(0,6)->P3 sum(6,7)->P4 \
                             attention(7,8)->P5 attention(6,9)->P7 attention(9,10)->P6";

/// The binary operation of a merging cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FpnOp {
    /// Element-wise sum.
    Sum,
    /// Global pooling attention: `coarse + fine · σ(global_max(coarse))`, the coarser input
    /// by level (the first input when both have the same level).
    Attention,
}

impl FpnOp {
    /// Both operations, in encoding order.
    pub const ALL: [FpnOp; 2] = [FpnOp::Sum, FpnOp::Attention];

    /// The name in the text format.
    pub fn name(self) -> &'static str {
        match self {
            FpnOp::Sum => "sum",
            FpnOp::Attention => "attention",
        }
    }

    fn index(self) -> usize {
        match self {
            FpnOp::Sum => 0,
            FpnOp::Attention => 1,
        }
    }
}

impl fmt::Display for FpnOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One merging cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FpnCell {
    /// The two features merged: `0..L` are the input levels (finest first), `L + j` the output
    /// of cell `j`. Distinct, and earlier than this cell.
    pub inputs: [usize; 2],
    /// The output level (stride `2^level`).
    pub level: u32,
    /// The binary operation.
    pub op: FpnOp,
}

/// A NAS-FPN architecture: its merging cells in order (the last `L` are the output pyramid).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FpnArch {
    /// The cells, first to last.
    pub cells: Vec<FpnCell>,
}

impl fmt::Display for FpnArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, c) in self.cells.iter().enumerate() {
            if k > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}({},{})->P{}", c.op, c.inputs[0], c.inputs[1], c.level)?;
        }
        Ok(())
    }
}

/// The NAS-FPN space: `cells` merging cells over the pyramid levels `min_level..=max_level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FpnSpaceConfig")]
pub struct FpnSpace {
    cells: usize,
    min_level: u32,
    max_level: u32,
}

/// The serialized form of [`FpnSpace`]; loading goes through [`FpnSpace::new`].
#[derive(Deserialize)]
struct FpnSpaceConfig {
    cells: usize,
    min_level: u32,
    max_level: u32,
}

impl TryFrom<FpnSpaceConfig> for FpnSpace {
    type Error = SpaceError;
    fn try_from(c: FpnSpaceConfig) -> Result<Self, SpaceError> {
        FpnSpace::new(c.cells, c.min_level, c.max_level)
    }
}

impl Default for FpnSpace {
    /// The paper's: 7 cells over P3..P7.
    fn default() -> Self {
        Self {
            cells: 7,
            min_level: 3,
            max_level: 7,
        }
    }
}

impl FpnSpace {
    /// `cells` merging cells over levels `min_level..=max_level`.
    ///
    /// # Errors
    /// [`SpaceError::InvalidConfig`] with fewer than two levels (a cell merges two different
    /// features), fewer cells than levels (the last `L` cells are the output pyramid), or a
    /// level above 30.
    pub fn new(cells: usize, min_level: u32, max_level: u32) -> Result<Self, SpaceError> {
        if max_level > 30 || min_level >= max_level {
            return Err(SpaceError::config(
                NAME,
                "max_level",
                format!(
                    "levels must be at least two, from `min_level` to `max_level` ≤ 30, got \
                 {min_level}..={max_level}"
                ),
            ));
        }
        let levels = (max_level - min_level + 1) as usize;
        if cells > 1000 {
            return Err(SpaceError::config(
                NAME,
                "cells",
                format!("{cells} cells: at most 1,000"),
            ));
        }
        if cells < levels {
            return Err(SpaceError::config(
                NAME,
                "cells",
                format!(
                    "{cells} cells cannot make an output pyramid of {levels} levels: the last \
                 `L` cells are its outputs, so give at least {levels}"
                ),
            ));
        }
        let space = Self {
            cells,
            min_level,
            max_level,
        };
        if radix::size(&space.radices()).is_none() {
            return Err(SpaceError::config(
                NAME,
                "cells",
                format!(
                    "{cells} cells over {levels} levels make more architectures than a 128-bit                      index holds: use fewer cells"
                ),
            ));
        }
        Ok(space)
    }

    /// The number of merging cells.
    pub fn cells(&self) -> usize {
        self.cells
    }

    /// The finest level.
    pub fn min_level(&self) -> u32 {
        self.min_level
    }

    /// The coarsest level.
    pub fn max_level(&self) -> u32 {
        self.max_level
    }

    /// The number of levels `L`.
    pub fn levels(&self) -> usize {
        (self.max_level - self.min_level + 1) as usize
    }

    /// The level of every feature of `arch`: the `L` inputs, then each cell's.
    pub fn feature_levels(&self, arch: &FpnArch) -> Vec<u32> {
        (self.min_level..=self.max_level)
            .chain(arch.cells.iter().map(|c| c.level))
            .collect()
    }

    /// For every cell, the earlier features it also sums in: an output cell (one of the last
    /// `L`) absorbs every feature of its level that no cell has read so far, inputs
    /// included, as the reference implementation does. Other cells absorb nothing.
    ///
    /// # Errors
    /// When `arch` is not valid in this space.
    pub fn absorbed(&self, arch: &FpnArch) -> Result<Vec<Vec<usize>>, SpaceError> {
        self.validate(arch)?;
        let levels = self.feature_levels(arch);
        let l = self.levels();
        let mut readers = vec![0usize; l + arch.cells.len()];
        let first_output = self.cells - l;
        let mut out = Vec::with_capacity(arch.cells.len());
        for (k, c) in arch.cells.iter().enumerate() {
            for &i in &c.inputs {
                readers[i] += 1;
            }
            let mut taken = Vec::new();
            if k >= first_output {
                for j in 0..l + k {
                    if readers[j] == 0 && levels[j] == c.level {
                        readers[j] += 1;
                        taken.push(j);
                    }
                }
            }
            out.push(taken);
        }
        Ok(out)
    }

    /// The choices of cell `k`'s level decision: every level for an inner cell; for output
    /// cell `m` (of the last `L`), the levels the earlier output cells left.
    fn level_choices(&self, k: usize) -> usize {
        let first_output = self.cells - self.levels();
        if k < first_output {
            self.levels()
        } else {
            self.cells - k
        }
    }

    /// The levels the output cells before cell `k` have not taken, ascending.
    fn free_levels(&self, cells: &[FpnCell], k: usize) -> Vec<u32> {
        let first_output = self.cells - self.levels();
        (self.min_level..=self.max_level)
            .filter(|l| !cells[first_output.min(k)..k].iter().any(|c| c.level == *l))
            .collect()
    }

    /// Every architecture that differs from `arch` in one decision `(cell, field)`: field 0
    /// and 1 the inputs, 2 the operation, 3 the level (an output cell swaps levels with a
    /// later output cell, so each swap is one decision's).
    fn variants(&self, arch: &FpnArch, (k, field): (usize, usize)) -> Vec<FpnArch> {
        let c = arch.cells[k];
        let with = |cell: FpnCell| {
            let mut a = arch.clone();
            a.cells[k] = cell;
            a
        };
        let l = self.levels();
        match field {
            0 | 1 => (0..l + k)
                .filter(|&x| x != c.inputs[0] && x != c.inputs[1])
                .map(|x| {
                    let mut cell = c;
                    cell.inputs[field] = x;
                    with(cell)
                })
                .collect(),
            2 => {
                let op = if c.op == FpnOp::Sum {
                    FpnOp::Attention
                } else {
                    FpnOp::Sum
                };
                vec![with(FpnCell { op, ..c })]
            }
            _ => {
                let first_output = self.cells - l;
                if k < first_output {
                    (self.min_level..=self.max_level)
                        .filter(|&x| x != c.level)
                        .map(|level| with(FpnCell { level, ..c }))
                        .collect()
                } else {
                    (k + 1..self.cells)
                        .map(|j| {
                            let mut a = arch.clone();
                            a.cells[k].level = arch.cells[j].level;
                            a.cells[j].level = c.level;
                            a
                        })
                        .collect()
                }
            }
        }
    }

    /// The decisions `(cell, field)` that have at least one variant.
    fn mutable_decisions(&self, arch: &FpnArch) -> Vec<(usize, usize)> {
        (0..self.cells)
            .flat_map(|k| (0..4).map(move |f| (k, f)))
            .filter(|&d| !self.variants(arch, d).is_empty())
            .collect()
    }

    fn radices(&self) -> Vec<u128> {
        self.decisions().into_iter().map(|d| d as u128).collect()
    }
}

impl SearchSpace for FpnSpace {
    type Arch = FpnArch;

    fn name(&self) -> &str {
        NAME
    }

    /// Uniform over the space: each cell's inputs a uniform pair of distinct candidates, its
    /// operation uniform, its level uniform (the output cells' levels a uniform permutation).
    fn sample(&self, rng: &mut dyn Rng) -> FpnArch {
        let l = self.levels();
        let mut cells: Vec<FpnCell> = Vec::with_capacity(self.cells);
        for k in 0..self.cells {
            let candidates: Vec<usize> = (0..l + k).collect();
            let a = choose(rng, &candidates);
            let others: Vec<usize> = candidates.into_iter().filter(|&x| x != a).collect();
            let b = choose(rng, &others);
            let op = choose(rng, &FpnOp::ALL);
            let level = choose(rng, &self.free_levels(&cells, k));
            cells.push(FpnCell {
                inputs: [a, b],
                level,
                op,
            });
        }
        FpnArch { cells }
    }

    fn validate(&self, arch: &FpnArch) -> Result<(), SpaceError> {
        check_len(NAME, "cells", self.cells, arch.cells.len())?;
        let l = self.levels();
        for (k, c) in arch.cells.iter().enumerate() {
            let bad = |reason: String| SpaceError::invalid(NAME, format!("cell {k}: {reason}"));
            if let Some(&i) = c.inputs.iter().find(|&&i| i >= l + k) {
                return Err(bad(format!(
                    "reads feature {i}, but only the {l} inputs and the earlier cells (0..{}) \
                     exist",
                    l + k
                )));
            }
            if c.inputs[0] == c.inputs[1] {
                return Err(bad(format!(
                    "merges feature {} with itself: pick two different features",
                    c.inputs[0]
                )));
            }
            if !(self.min_level..=self.max_level).contains(&c.level) {
                return Err(bad(format!(
                    "level P{} is outside P{}..P{}",
                    c.level, self.min_level, self.max_level
                )));
            }
        }
        let outputs = &arch.cells[self.cells - l..];
        for level in self.min_level..=self.max_level {
            if !outputs.iter().any(|c| c.level == level) {
                return Err(SpaceError::invalid(
                    NAME,
                    format!(
                        "the last {l} cells are the output pyramid, so each level must be one's \
                         output, but none outputs P{level}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The byte range of a parsed cell.
type Span = (usize, usize);

fn parse_cells(s: &str) -> Result<Vec<(FpnCell, Span)>, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.skip_ws();
    let mut out = Vec::new();
    loop {
        let (name, start) = c.ident()?;
        let op = match name {
            "sum" => FpnOp::Sum,
            "attention" => FpnOp::Attention,
            _ => {
                return Err(ParseError::new(
                    FORMAT,
                    ParseErrorKind::UnknownOp {
                        known: vec!["sum".into(), "attention".into()],
                    },
                    start,
                    name,
                ));
            }
        };
        c.expect_char('(')?;
        let (a, _) = c.number()?;
        c.expect_char(',')?;
        let (b, _) = c.number()?;
        c.expect_char(')')?;
        c.expect_str("->")?;
        c.expect_char('P')?;
        let (level, lpos) = c.number()?;
        let level = u32::try_from(level).map_err(|e| {
            c.error_at(
                ParseErrorKind::InvalidNumber {
                    reason: e.to_string(),
                },
                lpos,
                &level.to_string(),
            )
        })?;
        out.push((
            FpnCell {
                inputs: [a, b],
                level,
                op,
            },
            (start, c.pos()),
        ));
        if item_done(&mut c)? {
            break;
        }
    }
    Ok(out)
}

impl FromStr for FpnArch {
    type Err = ParseError;

    /// Parses any number of cells; [`FpnSpace`]'s `parse` also checks them against its levels.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(FpnArch {
            cells: parse_cells(s)?.into_iter().map(|(c, _)| c).collect(),
        })
    }
}

impl TextFormat for FpnSpace {
    fn to_text(&self, arch: &FpnArch) -> String {
        arch.to_string()
    }

    /// Parses the text and checks it against this space: the cell count
    /// ([`ParseErrorKind::WrongCount`]), then the rules of [`SearchSpace::validate`].
    fn parse(&self, text: &str) -> Result<FpnArch, SpaceError> {
        let parsed = parse_cells(text)?;
        let spans: Vec<Span> = parsed.iter().map(|&(_, p)| p).collect();
        check_item_count(FORMAT, "cells", self.cells, text, &spans)?;
        let arch = FpnArch {
            cells: parsed.into_iter().map(|(c, _)| c).collect(),
        };
        self.validate(&arch)?;
        Ok(arch)
    }
}

impl Mutate for FpnSpace {
    /// Picks one decision uniformly among those that can change (a cell's first or second
    /// input, its operation, its level) and one of its other values uniformly. An output
    /// cell's level decision swaps its level with one of the later output cells, so the
    /// pyramid stays whole (the last output cell changes level only through an earlier one's
    /// swap).
    fn mutate(&self, arch: &FpnArch, rng: &mut dyn Rng) -> Result<FpnArch, SpaceError> {
        self.validate(arch)?;
        mutate_by_decision(
            NAME,
            &self.mutable_decisions(arch),
            |d| self.variants(arch, d),
            rng,
        )
    }
}

impl Neighborhood for FpnSpace {
    /// Every single change [`Mutate::mutate`] can make, cell by cell.
    fn neighbors(&self, arch: &FpnArch) -> Result<Vec<FpnArch>, SpaceError> {
        self.validate(arch)?;
        neighbors_by_decision(NAME, self.mutable_decisions(arch), |d| {
            self.variants(arch, d)
        })
    }
}

impl Encode for FpnSpace {
    /// Per cell: a one-hot of its first input and one of its second over the `L + N − 1`
    /// features a cell can read, a one-hot of the operation (sum, attention), a one-hot of
    /// the level (finest first).
    fn encoding_len(&self) -> usize {
        self.cells * (2 * (self.levels() + self.cells - 1) + 2 + self.levels())
    }

    fn encode(&self, arch: &FpnArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let features = self.levels() + self.cells - 1;
        let per = 2 * features + 2 + self.levels();
        let mut v = vec![0.0; self.encoding_len()];
        for (k, c) in arch.cells.iter().enumerate() {
            let base = k * per;
            v[base + c.inputs[0]] = 1.0;
            v[base + features + c.inputs[1]] = 1.0;
            v[base + 2 * features + c.op.index()] = 1.0;
            v[base + 2 * features + 2 + (c.level - self.min_level) as usize] = 1.0;
        }
        Ok(v)
    }
}

impl Enumerable for FpnSpace {
    /// The product of the [`Sequential::decisions`] ([`FpnSpace::new`] refuses a space whose
    /// size does not fit): an index is the mixed-radix number of an architecture's decisions.
    fn size(&self) -> u128 {
        radix::size(&self.radices()).unwrap_or(u128::MAX)
    }

    fn arch_at(&self, index: u128) -> Result<FpnArch, SpaceError> {
        SpaceError::check_index(NAME, index, self.size())?;
        let digits: Vec<usize> = radix::decode(index, &self.radices())
            .into_iter()
            .map(|d| d as usize)
            .collect();
        self.from_decisions(&digits)
    }

    fn index_of(&self, arch: &FpnArch) -> Result<u128, SpaceError> {
        let digits: Vec<u128> = self
            .to_decisions(arch)?
            .into_iter()
            .map(|d| d as u128)
            .collect();
        Ok(radix::encode(&digits, &self.radices()))
    }
}

impl ToGraph for FpnSpace {
    /// Nodes: the `L` inputs (`P{level}`), the cells (`{op}->P{level}`), then `output`. Edges:
    /// each cell's two inputs and the features it absorbs, and every output cell to `output`.
    fn graph(&self, arch: &FpnArch) -> Result<ArchGraph, SpaceError> {
        let absorbed = self.absorbed(arch)?;
        let l = self.levels();
        let n = arch.cells.len();
        let mut labels: Vec<String> = (self.min_level..=self.max_level)
            .map(|level| format!("P{level}"))
            .collect();
        labels.extend(arch.cells.iter().map(|c| format!("{}->P{}", c.op, c.level)));
        labels.push("output".into());
        let mut edges = Vec::new();
        for (k, c) in arch.cells.iter().enumerate() {
            for &i in c.inputs.iter().chain(&absorbed[k]) {
                edges.push((i, l + k));
            }
        }
        edges.extend((n - l..n).map(|k| (l + k, l + n)));
        edges.sort_unstable();
        edges.dedup();
        Ok(ArchGraph { labels, edges })
    }
}

impl Canonicalize for FpnSpace {
    /// The text with each cell's two inputs in ascending order wherever their order does not
    /// matter: always for `sum`, and for `attention` when the inputs' levels differ (the
    /// operation orders them by level itself). Two architectures with the same form compute
    /// the same function family. Cells whose output reaches no output cell are kept as they
    /// are (they cost compute, so they are not the same architecture for a search that
    /// measures it).
    fn canonical(&self, arch: &FpnArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        let levels = self.feature_levels(arch);
        let mut canon = arch.clone();
        for c in &mut canon.cells {
            let [a, b] = c.inputs;
            let symmetric = c.op == FpnOp::Sum || levels[a] != levels[b];
            if symmetric && a > b {
                c.inputs = [b, a];
            }
        }
        Ok(CanonicalForm(canon.to_string()))
    }
}

impl Sequential for FpnSpace {
    /// Per cell `k`: its first input (`L + k` choices), its second input ranked among the
    /// candidates other than the first (`L + k − 1`), its operation (sum, attention), and its
    /// level: `L` choices for an inner cell; for the output cells, the rank among the levels
    /// the earlier output cells left (`L`, `L − 1`, ..., 1), so every decision vector is a
    /// valid pyramid.
    fn decisions(&self) -> Vec<usize> {
        let l = self.levels();
        (0..self.cells)
            .flat_map(|k| [l + k, l + k - 1, 2, self.level_choices(k)])
            .collect()
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<FpnArch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        let mut cells: Vec<FpnCell> = Vec::with_capacity(self.cells);
        for (k, d) in choices.chunks(4).enumerate() {
            let a = d[0];
            let b = if d[1] >= a { d[1] + 1 } else { d[1] };
            let level = self.free_levels(&cells, k)[d[3]];
            cells.push(FpnCell {
                inputs: [a, b],
                level,
                op: FpnOp::ALL[d[2]],
            });
        }
        Ok(FpnArch { cells })
    }

    fn to_decisions(&self, arch: &FpnArch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        let mut d = Vec::with_capacity(4 * self.cells);
        for (k, c) in arch.cells.iter().enumerate() {
            let [a, b] = c.inputs;
            let free = self.free_levels(&arch.cells, k);
            let rank = free.iter().position(|&l| l == c.level).ok_or_else(|| {
                SpaceError::invalid(
                    NAME,
                    format!("cell {k}: level P{} is already another output's", c.level),
                )
            })?;
            d.extend([a, if b > a { b - 1 } else { b }, c.op.index(), rank]);
        }
        Ok(d)
    }

    /// The `L` input levels are anchors; per cell, its two inputs select among the features so
    /// far (the second distinct from the first), the operation and the level are categorical,
    /// and the cell becomes an anchor. (An output cell's level choice is a rank among the
    /// levels left, so the same choice index names different levels from one output cell to
    /// the next; each cell's level decision has its own softmax head in the controller.)
    fn decision_graph(&self) -> Option<DecisionGraph> {
        let l = self.levels();
        let select = |k: usize, distinct_from_previous: bool| {
            GraphStep::Decide(DecisionKind::Select {
                anchors: (0..l + k).collect(),
                distinct_from_previous,
            })
        };
        let mut steps = vec![GraphStep::Input; l];
        for k in 0..self.cells {
            steps.extend([
                select(k, false),
                select(k, true),
                GraphStep::Decide(DecisionKind::Categorical),
                GraphStep::Decide(DecisionKind::Categorical),
                GraphStep::Anchor,
            ]);
        }
        Some(DecisionGraph { steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;

    #[test]
    fn the_published_architecture_parses_and_prints_back() {
        let space = FpnSpace::default();
        let arch = space.parse(PUBLISHED).unwrap();
        assert_eq!(arch.cells.len(), 7);
        assert_eq!(
            arch.cells[6],
            FpnCell {
                inputs: [9, 10],
                level: 6,
                op: FpnOp::Attention
            }
        );
        assert_eq!(space.to_text(&arch), PUBLISHED);
        // docs/spaces.md: Π_k (L+k)(L+k−1)·2·levels(k), and 7 × (2·11 + 2 + 5).
        assert_eq!(space.size(), 386_266_890_240_000_000);
        assert_eq!(space.encoding_len(), 203);
        assert_eq!(space.decisions().len(), 28);
        // Input P5 (2) and P7 (4) are read by no cell: P5's output cell (cell 4) and P7's
        // (cell 5) absorb them; cell 0 (P4, inner) is read by cell 1.
        let absorbed = space.absorbed(&arch).unwrap();
        assert_eq!(absorbed[4], vec![2]);
        assert_eq!(absorbed[5], vec![4]);
        assert!(absorbed[..4].iter().all(Vec::is_empty));
        assert!(absorbed[6].is_empty());
        let d = space.to_decisions(&arch).unwrap();
        assert_eq!(space.from_decisions(&d).unwrap(), arch);
    }

    #[test]
    fn the_space_keeps_the_laws() {
        for space in [
            FpnSpace::default(),
            FpnSpace::new(3, 1, 3).unwrap(),
            FpnSpace::new(2, 0, 1).unwrap(),
        ] {
            laws::check_sample(&space, 1, 100).unwrap();
            laws::check_serde(&space, 2, 20).unwrap();
            laws::check_mutate(&space, 3, 100).unwrap();
            laws::check_neighbors(&space, 4, 20).unwrap();
            laws::check_text(&space, 5, 100).unwrap();
            laws::check_encode(&space, 6, 50).unwrap();
            laws::check_enumerable(&space, 7, 50).unwrap();
            laws::check_canonical(&space, 8, 50).unwrap();
            laws::check_graph(&space, 9, 50).unwrap();
            laws::check_sequential(&space, 10, 200).unwrap();
        }
    }

    #[test]
    fn the_smallest_space_is_enumerated_exactly() {
        // Two levels, two cells (both outputs): cell 0 reads 2 of 2 inputs in either order,
        // cell 1 2 of 3 (6 ordered pairs); 2 ops each; the levels are a permutation (2).
        let space = FpnSpace::new(2, 0, 1).unwrap();
        assert_eq!(space.size(), 2 * 2 * 6 * 2 * 2);
        let all: Vec<FpnArch> = space.iter().collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        for (i, a) in all.iter().enumerate() {
            space.validate(a).unwrap();
            assert_eq!(space.index_of(a).unwrap(), i as u128);
        }
    }

    #[test]
    fn canonical_forms_ignore_only_orders_that_do_not_matter() {
        let space = FpnSpace::new(2, 0, 1).unwrap();
        let canon = |t: &str| space.canonical(&space.parse(t).unwrap()).unwrap();
        assert_eq!(
            canon("sum(1,0)->P0 sum(2,0)->P1"),
            canon("sum(0,1)->P0 sum(0,2)->P1")
        );
        // Attention between levels 0 and 1 orders them itself.
        assert_eq!(
            canon("attention(1,0)->P0 sum(0,2)->P1"),
            canon("attention(0,1)->P0 sum(0,2)->P1")
        );
        // Between two features of the same level (input 0 and cell 0, both P0) it does not.
        assert_ne!(
            canon("sum(0,1)->P0 attention(0,2)->P1"),
            canon("sum(0,1)->P0 attention(2,0)->P1")
        );
        assert_ne!(
            canon("sum(0,1)->P0 sum(0,2)->P1"),
            canon("attention(0,1)->P0 sum(0,2)->P1")
        );
    }

    #[test]
    fn bad_architectures_and_configs_are_errors() {
        let space = FpnSpace::default();
        for (text, says) in [
            ("sum(1,3)->P4", "cells"),
            (
                "attention(1,1)->P4 sum(1,5)->P4 sum(0,6)->P3 sum(6,7)->P4 attention(7,8)->P5 attention(6,9)->P7 attention(9,10)->P6",
                "itself",
            ),
            (
                "attention(1,5)->P4 sum(1,5)->P4 sum(0,6)->P3 sum(6,7)->P4 attention(7,8)->P5 attention(6,9)->P7 attention(9,10)->P6",
                "reads feature 5",
            ),
            (
                "attention(1,3)->P9 sum(1,5)->P4 sum(0,6)->P3 sum(6,7)->P4 attention(7,8)->P5 attention(6,9)->P7 attention(9,10)->P6",
                "outside",
            ),
            (
                "attention(1,3)->P4 sum(1,5)->P4 sum(0,6)->P3 sum(6,7)->P4 attention(7,8)->P5 attention(6,9)->P7 attention(9,10)->P7",
                "none outputs P6",
            ),
            ("max(1,3)->P4", "sum"),
            ("sum(1;3)->P4", "`,`"),
        ] {
            let e = space.parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(FpnSpace::new(3, 3, 7).is_err());
        assert!(FpnSpace::new(7, 3, 3).is_err());
        assert!(FpnSpace::new(7, 5, 31).is_err());
        // 13 cells over 5 levels fit in a u128, 14 do not.
        assert!(FpnSpace::new(13, 3, 7).is_ok());
        assert!(FpnSpace::new(14, 3, 7).is_err());
        let json = r#"{"cells": 2, "min_level": 3, "max_level": 7}"#;
        assert!(serde_json::from_str::<FpnSpace>(json).is_err());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut arch = space.sample(&mut rng);
        arch.cells.pop();
        assert!(space.mutate(&arch, &mut rng).is_err());
        assert!(space.encode(&arch).is_err());
    }
}
