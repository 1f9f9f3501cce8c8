//! The capabilities of [`NasNetSpace`] (text and canonical form apart).

use rand::Rng;

use super::{NAME, NasNetArch, NasNetConfig, NasNetSpace};
use crate::common::{cells, config_serde, pick, some_neighbors};
use crate::darts::CellKind;
use crate::error::SpaceError;
use crate::traits::{ArchGraph, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, ToGraph};

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
        some_neighbors(NAME, out)
    }
}

impl Mutate for NasNetSpace {
    /// A uniformly chosen one-decision change (see [`NasNetSpace`]).
    fn mutate(&self, arch: &NasNetArch, rng: &mut dyn Rng) -> Result<NasNetArch, SpaceError> {
        Ok(pick(self.neighbors(arch)?, rng))
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
                    let op = self.op_pos(block.ops[k]);
                    v.extend(cells::input_slot(op, no, block.inputs[k], nb + 1));
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
        cells::size(&self.cell_radices)
    }

    fn arch_at(&self, index: u128) -> Result<NasNetArch, SpaceError> {
        let [lo, hi] = cells::split_index(NAME, index, &self.cell_radices)?;
        Ok(NasNetArch {
            normal: self.cell_from_digits(&lo),
            reduce: self.cell_from_digits(&hi),
        })
    }

    fn index_of(&self, arch: &NasNetArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        Ok(cells::join_index(
            &self.cell_digits(&arch.normal),
            &self.cell_digits(&arch.reduce),
            &self.cell_radices,
        ))
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
        Ok(cells::join_graphs(
            self.cell_graph(&arch.normal),
            self.cell_graph(&arch.reduce),
        ))
    }
}

config_serde!(NasNetSpace, NasNetConfig);
