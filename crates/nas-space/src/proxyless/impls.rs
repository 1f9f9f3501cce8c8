//! The capabilities of [`ProxylessSpace`] (text and canonical form apart).

use rand::Rng;

use super::{ProxylessArch, ProxylessConfig, ProxylessSpace, SPACE};
use crate::common::chain::{chain_graph, one_hot};
use crate::common::{check_len, config_serde};
use crate::error::SpaceError;
use crate::traits::{
    ArchGraph, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, ToGraph, choose,
};

impl SearchSpace for ProxylessSpace {
    type Arch = ProxylessArch;

    fn name(&self) -> &str {
        SPACE
    }

    /// Uniform over the space: each layer draws uniformly among its own choices.
    fn sample(&self, rng: &mut dyn Rng) -> ProxylessArch {
        let layers = (0..self.num_layers())
            .map(|i| choose(rng, &self.layer_choices(i)))
            .collect();
        ProxylessArch { layers }
    }

    fn validate(&self, arch: &ProxylessArch) -> Result<(), SpaceError> {
        check_len(SPACE, "layers", self.num_layers(), arch.layers.len())?;
        for (i, &c) in arch.layers.iter().enumerate() {
            self.check_layer(i, c)
                .map_err(|r| SpaceError::invalid(SPACE, r))?;
        }
        Ok(())
    }
}

impl Mutate for ProxylessSpace {
    /// Changes the choice of one random layer (among the layers with more than one choice) to
    /// another of its choices.
    fn mutate(&self, arch: &ProxylessArch, rng: &mut dyn Rng) -> Result<ProxylessArch, SpaceError> {
        self.validate(arch)?;
        Ok(ProxylessArch::new(self.chain().mutate(&arch.layers, rng)?))
    }
}

impl Neighborhood for ProxylessSpace {
    /// Layer by layer, every other choice of that layer (in [`ProxylessSpace::layer_choices`]
    /// order).
    fn neighbors(&self, arch: &ProxylessArch) -> Result<Vec<ProxylessArch>, SpaceError> {
        self.validate(arch)?;
        let ns = self.chain().neighbors(&arch.layers)?;
        Ok(ns.into_iter().map(ProxylessArch::new).collect())
    }
}

impl Encode for ProxylessSpace {
    /// One-hot per layer, layer-major. Every layer has the same number of slots: one per MBConv
    /// choice ([`ProxylessSpace::ops`] order), plus a last `zero` slot when the space allows
    /// zero (never set on a layer that cannot be skipped). Default length 21 × 7 = 147.
    fn encoding_len(&self) -> usize {
        self.num_layers() * self.slots()
    }

    fn encode(&self, arch: &ProxylessArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        Ok(one_hot(&arch.layers, self.slots(), |i, c| {
            self.choice_pos(i, c)
        }))
    }
}

impl Enumerable for ProxylessSpace {
    /// The product over layers of each layer's number of choices (6 or 7 by default).
    /// Index = mixed radix over layers, layer 0 the least significant digit, each digit the
    /// position in [`ProxylessSpace::layer_choices`]. Saturates at `u128::MAX` for configurations
    /// too large to count (far beyond any practical setting).
    fn size(&self) -> u128 {
        self.chain().size()
    }

    fn arch_at(&self, index: u128) -> Result<ProxylessArch, SpaceError> {
        Ok(ProxylessArch::new(self.chain().at(index)?))
    }

    fn index_of(&self, arch: &ProxylessArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        Ok(self.chain().index(&arch.layers))
    }
}

impl ToGraph for ProxylessSpace {
    /// A chain: `input`, then one node per non-zero layer labelled with its name, then
    /// `output`; each node feeds the next. Skipped layers have no node (they compute the
    /// identity), so equivalent architectures have equal graphs.
    fn graph(&self, arch: &ProxylessArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        Ok(chain_graph(
            arch.layers
                .iter()
                .filter(|c| !c.is_zero())
                .map(|c| c.to_string()),
        ))
    }
}

config_serde!(ProxylessSpace, ProxylessConfig);
