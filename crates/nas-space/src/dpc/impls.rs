//! The capabilities of [`DpcSpace`] (text and canonical form apart).

use rand::Rng;

use super::{DpcArch, DpcBranch, DpcSpace, NAME};
use crate::common::{check_len, io_labels, mutate_by_decision, neighbors_by_decision};
use crate::error::SpaceError;
use crate::traits::{
    ArchGraph, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, ToGraph, choose, radix,
};

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
        check_len(NAME, "branches", self.branches, arch.branches.len())?;
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
        mutate_by_decision(
            NAME,
            &self.decisions(),
            |(b, input)| self.variants(arch, b, input),
            rng,
        )
    }
}

impl Neighborhood for DpcSpace {
    /// Branch by branch: every other operation (in [`DpcSpace::ops`] order), then every other
    /// input (ascending).
    fn neighbors(&self, arch: &DpcArch) -> Result<Vec<DpcArch>, SpaceError> {
        self.validate(arch)?;
        neighbors_by_decision(NAME, self.decisions(), |(b, input)| {
            self.variants(arch, b, input)
        })
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

impl ToGraph for DpcSpace {
    /// Node 0 is `input` (the backbone feature map), node `k` is branch `k` labelled with its
    /// operation name, the last node is `output` (the concatenation). Edges: `input(k) → k` for
    /// every branch and `k → output` for every branch.
    fn graph(&self, arch: &DpcArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        let n = arch.branches.len();
        let labels = io_labels(arch.branches.iter().map(|b| b.op.name()));
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
