//! The NASNet space: configuration checks and the per-cell work of its capabilities.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::types::output_states;
use super::{Combiner, MAX_BLOCKS, NAME, NasNetBlock, NasNetConfig, NasNetOp};
use crate::common::{cells, in_range, no_repeats};
use crate::darts::CellKind;
use crate::error::SpaceError;
use crate::traits::{ArchGraph, choose};

/// The NASNet cell space.
///
/// * **Sampling**: uniform over the represented architectures (every input, operation and
///   combiner uniformly and independently).
/// * **Mutation**: one uniformly chosen element of [`Neighborhood::neighbors`](crate::Neighborhood::neighbors): a new
///   operation or a new input for one branch, or a new combiner for one block. (The paper's
///   controller is an RNN; the mutation is the one of regularized evolution on this space.)
/// * **Canonical form**: see [`Canonicalize::canonical`](crate::Canonicalize::canonical) below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NasNetConfig", into = "NasNetConfig")]
pub struct NasNetSpace {
    pub(super) config: NasNetConfig,
    pub(super) cell_radices: Vec<u128>,
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

impl NasNetSpace {
    /// A space with the given configuration. Fails (naming the field) when `blocks` is not in
    /// `1..=`[`MAX_BLOCKS`] or the space has more than `u128::MAX` architectures (with all 13
    /// operations and both combiners, at most 5 blocks), or `ops` / `combiners` is empty or has
    /// a duplicate.
    pub fn new(config: NasNetConfig) -> Result<Self, SpaceError> {
        in_range(NAME, "blocks", config.blocks, MAX_BLOCKS)?;
        no_repeats(NAME, "ops", &config.ops)?;
        no_repeats(NAME, "combiners", &config.combiners)?;
        let cell_radices = cell_radices(&config);
        if !cells::fits(&cell_radices) {
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

    pub(super) fn op_pos(&self, op: NasNetOp) -> Option<usize> {
        self.config.ops.iter().position(|&o| o == op)
    }

    pub(super) fn comb_pos(&self, c: Combiner) -> Option<usize> {
        self.config.combiners.iter().position(|&x| x == c)
    }

    pub(super) fn validate_cell(
        &self,
        kind: CellKind,
        cell: &[NasNetBlock],
    ) -> Result<(), SpaceError> {
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

    pub(super) fn sample_cell(&self, rng: &mut dyn Rng) -> Vec<NasNetBlock> {
        (0..self.config.blocks)
            .map(|b| NasNetBlock {
                inputs: [rng.random_range(0..b + 2), rng.random_range(0..b + 2)],
                ops: [choose(rng, &self.config.ops), choose(rng, &self.config.ops)],
                combine: choose(rng, &self.config.combiners),
            })
            .collect()
    }

    pub(super) fn cell_neighbors(&self, cell: &[NasNetBlock]) -> Vec<Vec<NasNetBlock>> {
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

    pub(super) fn cell_digits(&self, cell: &[NasNetBlock]) -> Vec<u128> {
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

    pub(super) fn cell_from_digits(&self, d: &[u128]) -> Vec<NasNetBlock> {
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

    /// The graph of one cell (see [`ToGraph::graph`](crate::ToGraph::graph)).
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
