//! The DARTS space: configuration checks and the per-cell work of its capabilities.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::{CellKind, ConcatRule, DartsConfig, DartsOp, Genotype, MAX_STEPS, NAME, unused_states};
use crate::common::{cells, in_range, no_repeats};
use crate::error::SpaceError;
use crate::traits::{ArchGraph, choose};

/// The DARTS cell space.
///
/// * **Sampling**: uniform: every input picks its predecessor uniformly (the second one among
///   the states other than the first when inputs are distinct) and its operation uniformly;
///   a free concat is a uniform non-empty subset.
/// * **Mutation**: one uniformly chosen element of [`Neighborhood::neighbors`](crate::Neighborhood::neighbors): a new operation
///   for one input, a new predecessor for one input (keeping the two inputs of its node
///   distinct when the space requires it), or (free concat only) one state added to or removed
///   from a concat. Under [`ConcatRule::Unused`] the concat follows the new inputs.
/// * **Canonical form**: see [`Canonicalize::canonical`](crate::Canonicalize::canonical) below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DartsConfig", into = "DartsConfig")]
pub struct DartsSpace {
    pub(super) config: DartsConfig,
    pub(super) cell_radices: Vec<u128>,
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
        in_range(NAME, "steps", config.steps, MAX_STEPS)?;
        no_repeats(NAME, "ops", &config.ops)?;
        let cell_radices = cell_radices(&config);
        if !cells::fits(&cell_radices) {
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

    pub(super) fn op_pos(&self, op: DartsOp) -> Option<usize> {
        self.config.ops.iter().position(|&o| o == op)
    }

    fn all_states(&self) -> Vec<usize> {
        (2..self.config.steps + 2).collect()
    }

    /// The concat implied by the rule for `cell` (`None` for a free concat).
    pub(super) fn implied_concat(&self, cell: &[(DartsOp, usize)]) -> Option<Vec<usize>> {
        match self.config.concat {
            ConcatRule::All => Some(self.all_states()),
            ConcatRule::Unused => Some(unused_states(cell)),
            ConcatRule::Free => None,
        }
    }

    pub(super) fn validate_cell(&self, kind: CellKind, g: &Genotype) -> Result<(), SpaceError> {
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

    pub(super) fn sample_cell(&self, rng: &mut dyn Rng) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
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
    pub(super) fn cell_neighbors(
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

    pub(super) fn cell_digits(&self, cell: &[(DartsOp, usize)], concat: &[usize]) -> Vec<u128> {
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

    pub(super) fn cell_from_digits(&self, d: &[u128]) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
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

    /// The graph of one cell (see [`ToGraph::graph`](crate::ToGraph::graph)): `c_{k-2}`, `c_{k-1}`, one node per
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
