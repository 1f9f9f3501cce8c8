//! The capabilities of [`SposSpace`].

use rand::Rng;

use super::{SPACE, SposArch, SposChoice, SposConfig, SposSpace};
use crate::common::chain::{chain_graph, one_hot};
use crate::common::{check_len, config_serde};
use crate::error::SpaceError;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    ToGraph, choose,
};

impl SearchSpace for SposSpace {
    type Arch = SposArch;

    fn name(&self) -> &str {
        SPACE
    }

    /// Uniform over the space (the paper's uniform path sampling).
    fn sample(&self, rng: &mut dyn Rng) -> SposArch {
        SposArch {
            choices: (0..self.num_layers())
                .map(|_| choose(rng, &SposChoice::ALL))
                .collect(),
        }
    }

    fn validate(&self, arch: &SposArch) -> Result<(), SpaceError> {
        check_len(SPACE, "layers", self.num_layers(), arch.choices.len())
    }
}

impl Mutate for SposSpace {
    /// Changes the block of one random layer to one of the three others.
    fn mutate(&self, arch: &SposArch, rng: &mut dyn Rng) -> Result<SposArch, SpaceError> {
        self.validate(arch)?;
        Ok(SposArch::new(self.chain().mutate(&arch.choices, rng)?))
    }
}

impl Neighborhood for SposSpace {
    /// Layer by layer, the three other blocks in index order: 3 × layers neighbours.
    fn neighbors(&self, arch: &SposArch) -> Result<Vec<SposArch>, SpaceError> {
        self.validate(arch)?;
        let ns = self.chain().neighbors(&arch.choices)?;
        Ok(ns.into_iter().map(SposArch::new).collect())
    }
}

impl Encode for SposSpace {
    /// One-hot per layer (4 slots in index order), layer-major: 80 values by default.
    fn encoding_len(&self) -> usize {
        self.num_layers() * 4
    }

    fn encode(&self, arch: &SposArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        Ok(one_hot(&arch.choices, 4, |_, c| Some(c.index())))
    }
}

impl Enumerable for SposSpace {
    /// 4^layers; index = Σ_i index(choice_i)·4^i (layer 0 the least significant digit), so
    /// index 0 is all `shufflenet_3x3`. Saturates at `u128::MAX` beyond 63 layers.
    fn size(&self) -> u128 {
        self.chain().size()
    }

    fn arch_at(&self, index: u128) -> Result<SposArch, SpaceError> {
        Ok(SposArch::new(self.chain().at(index)?))
    }

    fn index_of(&self, arch: &SposArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        Ok(self.chain().index(&arch.choices))
    }
}

impl Canonicalize for SposSpace {
    /// The architecture string itself. No two different choice lists are equivalent: every
    /// layer computes a block (there is no zero or identity choice), the chain has a fixed
    /// order, and the four blocks compute different function families at every position, so
    /// the canonical form is the identity.
    fn canonical(&self, arch: &SposArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(arch.to_string()))
    }
}

impl ToGraph for SposSpace {
    /// A chain: `input`, one node per layer labelled with its block name, `output`.
    fn graph(&self, arch: &SposArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        Ok(chain_graph(
            arch.choices.iter().map(|c| c.name().to_string()),
        ))
    }
}

config_serde!(SposSpace, SposConfig);
