//! The capabilities of [`NasRlSpace`] (text and canonical form apart).

use rand::Rng;

use super::types::pos_of;
use super::{NAME, NasRlArch, NasRlLayer, NasRlSpace};
use crate::common::{check_len, io_labels, mutate_by_decision, neighbors_by_decision};
use crate::error::SpaceError;
use crate::traits::{ArchGraph, Encode, Mutate, Neighborhood, SearchSpace, ToGraph, choose};

impl SearchSpace for NasRlSpace {
    type Arch = NasRlArch;

    fn name(&self) -> &str {
        NAME
    }

    /// Uniform: every value uniformly from its set, every skip connection with probability 1/2.
    fn sample(&self, rng: &mut dyn Rng) -> NasRlArch {
        let layers = (0..self.layers)
            .map(|l| NasRlLayer {
                filter_height: choose(rng, &self.heights),
                filter_width: choose(rng, &self.widths),
                filters: choose(rng, &self.filters),
                stride: choose(rng, &self.strides),
                inputs: (1..=l).filter(|_| choose(rng, &[false, true])).collect(),
            })
            .collect();
        NasRlArch { layers }
    }

    fn validate(&self, arch: &NasRlArch) -> Result<(), SpaceError> {
        check_len(NAME, "layers", self.layers, arch.layers.len())?;
        arch.check_structure()
            .map_err(|e| SpaceError::invalid(NAME, e))?;
        for (k, l) in arch.layers.iter().enumerate() {
            self.check_layer_values(k + 1, l)
                .map_err(|(e, _)| SpaceError::invalid(NAME, e))?;
        }
        Ok(())
    }
}

impl Mutate for NasRlSpace {
    /// Picks one decision uniformly (the height, width, filter count or stride of one layer, or
    /// one skip connection) and changes it: a value to a different one of its set, a connection
    /// toggled on or off.
    fn mutate(&self, arch: &NasRlArch, rng: &mut dyn Rng) -> Result<NasRlArch, SpaceError> {
        self.validate(arch)?;
        mutate_by_decision(NAME, &self.decisions(), |d| self.variants(arch, d), rng)
    }
}

impl Neighborhood for NasRlSpace {
    /// Layer by layer: every other height, width, filter count and stride, then every skip
    /// connection toggled (from the earliest source layer).
    fn neighbors(&self, arch: &NasRlArch) -> Result<Vec<NasRlArch>, SpaceError> {
        self.validate(arch)?;
        neighbors_by_decision(NAME, self.decisions(), |d| self.variants(arch, d))
    }
}

impl Encode for NasRlSpace {
    /// Per layer, in order, one-hot filter height, width, filter count and stride (each over the
    /// configured set, in its order); then the `N(N-1)/2` connection bits, layer by layer
    /// (`[2←1, 3←1, 3←2, 4←1, ...]`, 1 when the later layer reads the earlier one).
    fn encoding_len(&self) -> usize {
        self.layers * self.per_layer_len() + self.layers * (self.layers - 1) / 2
    }

    fn encode(&self, arch: &NasRlArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let mut v = vec![0.0; self.encoding_len()];
        let per = self.per_layer_len();
        for (k, l) in arch.layers.iter().enumerate() {
            let mut base = k * per;
            for (options, value) in [
                (&self.heights, l.filter_height),
                (&self.widths, l.filter_width),
                (&self.filters, l.filters),
                (&self.strides, l.stride),
            ] {
                if let Some(p) = pos_of(options, value) {
                    v[base + p] = 1.0;
                }
                base += options.len();
            }
        }
        let edges = self.layers * per;
        for (k, l) in arch.layers.iter().enumerate() {
            for &j in &l.inputs {
                v[edges + k * (k.saturating_sub(1)) / 2 + (j - 1)] = 1.0;
            }
        }
        Ok(v)
    }
}

impl ToGraph for NasRlSpace {
    /// Node 0 is `input` (the image), node `i` is layer `i` labelled like `conv_3x5_36_s1`
    /// ([`NasRlLayer::label`]), the last node is `output` (the classifier). Edges: `j → i` for
    /// every input `j` of layer `i`, `input → i` for every layer without inputs, and `i → output`
    /// for every layer no layer consumes.
    fn graph(&self, arch: &NasRlArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        let n = arch.layers.len();
        let labels = io_labels(arch.layers.iter().map(NasRlLayer::label));
        let mut edges = Vec::new();
        for (k, l) in arch.layers.iter().enumerate() {
            if l.inputs.is_empty() {
                edges.push((0, k + 1));
            }
            edges.extend(l.inputs.iter().map(|&j| (j, k + 1)));
        }
        edges.extend(arch.unconsumed().into_iter().map(|i| (i, n + 1)));
        edges.sort_unstable();
        Ok(ArchGraph { labels, edges })
    }
}
