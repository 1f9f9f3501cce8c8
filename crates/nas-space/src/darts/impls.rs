//! The capabilities of [`DartsSpace`] (text and canonical form apart).

use rand::Rng;

use super::{CellKind, DartsConfig, DartsSpace, Genotype, NAME};
use crate::common::{cells, config_serde, pick, some_neighbors};
use crate::error::SpaceError;
use crate::traits::{ArchGraph, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, ToGraph};

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
        some_neighbors(NAME, out)
    }
}

impl Mutate for DartsSpace {
    /// A uniformly chosen one-decision change (see [`DartsSpace`]).
    fn mutate(&self, arch: &Genotype, rng: &mut dyn Rng) -> Result<Genotype, SpaceError> {
        Ok(pick(self.neighbors(arch)?, rng))
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
                v.extend(cells::input_slot(self.op_pos(op), nops, j, s + 1));
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
        cells::size(&self.cell_radices)
    }

    fn arch_at(&self, index: u128) -> Result<Genotype, SpaceError> {
        let [lo, hi] = cells::split_index(NAME, index, &self.cell_radices)?;
        let (normal, normal_concat) = self.cell_from_digits(&lo);
        let (reduce, reduce_concat) = self.cell_from_digits(&hi);
        Ok(Genotype {
            normal,
            normal_concat,
            reduce,
            reduce_concat,
        })
    }

    fn index_of(&self, arch: &Genotype) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        Ok(cells::join_index(
            &self.cell_digits(&arch.normal, &arch.normal_concat),
            &self.cell_digits(&arch.reduce, &arch.reduce_concat),
            &self.cell_radices,
        ))
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
        Ok(cells::join_graphs(
            self.cell_graph(&arch.normal, &arch.normal_concat),
            self.cell_graph(&arch.reduce, &arch.reduce_concat),
        ))
    }
}

config_serde!(DartsSpace, DartsConfig);
