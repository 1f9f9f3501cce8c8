//! The NAS-RL layers, networks and space.

use serde::{Deserialize, Serialize};

use super::{DEFAULT_LAYERS, FILTERS, HEIGHTS, NAME, WIDTHS};
use crate::common::positive_distinct;
use crate::error::SpaceError;

/// One convolutional layer of a NAS-RL network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NasRlLayer {
    /// Filter height.
    pub filter_height: u32,
    /// Filter width.
    pub filter_width: u32,
    /// Number of filters (output channels).
    pub filters: u32,
    /// Stride.
    pub stride: u32,
    /// The 1-based numbers of the earlier layers whose outputs are concatenated (along depth) to
    /// form this layer's input, sorted and distinct; empty means the layer reads the image.
    pub inputs: Vec<usize>,
}

impl NasRlLayer {
    /// The layer's operation label, e.g. `conv_3x5_36_s1` (used by [`ToGraph`](crate::ToGraph)).
    pub fn label(&self) -> String {
        format!(
            "conv_{}x{}_{}_s{}",
            self.filter_height, self.filter_width, self.filters, self.stride
        )
    }
}

/// A NAS-RL network: its layers in chain order (layer `i` of the text is `layers[i - 1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NasRlArch {
    /// The layers, first to last.
    pub layers: Vec<NasRlLayer>,
}

impl NasRlArch {
    /// The 1-based numbers of the layers no later layer consumes: their outputs are
    /// concatenated and fed to the classifier. The last layer is always among them.
    pub fn unconsumed(&self) -> Vec<usize> {
        let mut used = vec![false; self.layers.len()];
        for l in &self.layers {
            for &j in &l.inputs {
                if let Some(u) = j.checked_sub(1).and_then(|k| used.get_mut(k)) {
                    *u = true;
                }
            }
        }
        (1..=self.layers.len()).filter(|&i| !used[i - 1]).collect()
    }

    /// Checks the structure that does not depend on a configuration: every input is an earlier
    /// layer (`1 <= j < i`), and each layer's inputs are sorted and distinct.
    pub(super) fn check_structure(&self) -> Result<(), String> {
        for (k, l) in self.layers.iter().enumerate() {
            let i = k + 1;
            if let Some(&j) = l.inputs.iter().find(|&&j| j == 0 || j >= i) {
                return Err(format!(
                    "layer {i} reads layer {j}: inputs must be earlier layers (1..{i})"
                ));
            }
            if l.inputs.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "the inputs of layer {i} are not sorted and distinct"
                ));
            }
        }
        Ok(())
    }
}

/// The NAS-RL space: `layers` layers, each choosing a filter height, width, count and stride
/// from the configured sets, plus any subset of the earlier layers as inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NasRlSpaceConfig")]
pub struct NasRlSpace {
    pub(super) layers: usize,
    pub(super) heights: Vec<u32>,
    pub(super) widths: Vec<u32>,
    pub(super) filters: Vec<u32>,
    pub(super) strides: Vec<u32>,
}

/// The serialized form of [`NasRlSpace`]; loading goes through [`NasRlSpace::new`].
#[derive(Deserialize)]
struct NasRlSpaceConfig {
    layers: usize,
    heights: Vec<u32>,
    widths: Vec<u32>,
    filters: Vec<u32>,
    strides: Vec<u32>,
}

impl TryFrom<NasRlSpaceConfig> for NasRlSpace {
    type Error = SpaceError;
    fn try_from(c: NasRlSpaceConfig) -> Result<Self, SpaceError> {
        NasRlSpace::new(c.layers, &c.heights, &c.widths, &c.filters, &c.strides)
    }
}

impl Default for NasRlSpace {
    /// The paper's CIFAR-10 setting without strides: 15 layers, heights and widths
    /// `[1, 3, 5, 7]`, filters `[24, 36, 48, 64]`, stride 1.
    fn default() -> Self {
        Self {
            layers: DEFAULT_LAYERS,
            heights: HEIGHTS.to_vec(),
            widths: WIDTHS.to_vec(),
            filters: FILTERS.to_vec(),
            strides: vec![1],
        }
    }
}

fn check_values(field: &'static str, values: &[u32]) -> Result<(), SpaceError> {
    positive_distinct(NAME, field, values, "must be positive")
}

/// One decision of a NAS-RL network (0-based layer index).
#[derive(Debug, Clone, Copy)]
pub(super) enum Decision {
    Height(usize),
    Width(usize),
    Filters(usize),
    Stride(usize),
    /// Whether layer `.0` reads layer `.1` (both 0-based, `.1 < .0`).
    Edge(usize, usize),
}

impl NasRlSpace {
    /// A space with explicit choices. The order of each list is kept for the encoding. Fails
    /// with [`SpaceError::InvalidConfig`] on zero layers, or an empty list, a zero or a
    /// duplicate in one of the lists.
    pub fn new(
        layers: usize,
        heights: &[u32],
        widths: &[u32],
        filters: &[u32],
        strides: &[u32],
    ) -> Result<Self, SpaceError> {
        if layers == 0 {
            return Err(SpaceError::config(NAME, "layers", "must be at least 1"));
        }
        check_values("heights", heights)?;
        check_values("widths", widths)?;
        check_values("filters", filters)?;
        check_values("strides", strides)?;
        Ok(Self {
            layers,
            heights: heights.to_vec(),
            widths: widths.to_vec(),
            filters: filters.to_vec(),
            strides: strides.to_vec(),
        })
    }

    /// The paper's choices with `layers` layers.
    pub fn with_layers(layers: usize) -> Result<Self, SpaceError> {
        let d = Self::default();
        Self::new(layers, &d.heights, &d.widths, &d.filters, &d.strides)
    }

    /// This space with the strides searched among `strides` (the paper's strided experiment
    /// uses [`SEARCHED_STRIDES`](super::SEARCHED_STRIDES)).
    pub fn with_strides(&self, strides: &[u32]) -> Result<Self, SpaceError> {
        Self::new(
            self.layers,
            &self.heights,
            &self.widths,
            &self.filters,
            strides,
        )
    }

    /// The number of layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The allowed filter heights.
    pub fn heights(&self) -> &[u32] {
        &self.heights
    }

    /// The allowed filter widths.
    pub fn widths(&self) -> &[u32] {
        &self.widths
    }

    /// The allowed numbers of filters.
    pub fn filters(&self) -> &[u32] {
        &self.filters
    }

    /// The allowed strides.
    pub fn strides(&self) -> &[u32] {
        &self.strides
    }

    /// Base-2 logarithm of the number of architectures:
    /// `N·log2(|heights|·|widths|·|filters|·|strides|) + N(N-1)/2`. (The size itself overflows
    /// `u128` at the paper's depth, so the space is not [`Enumerable`](crate::Enumerable).)
    pub fn log2_size(&self) -> f64 {
        let n = self.layers as f64;
        let per_layer =
            (self.heights.len() * self.widths.len() * self.filters.len() * self.strides.len())
                as f64;
        n * per_layer.log2() + n * (n - 1.0) / 2.0
    }

    pub(super) fn per_layer_len(&self) -> usize {
        self.heights.len() + self.widths.len() + self.filters.len() + self.strides.len()
    }

    /// Every decision with at least two options, in neighbour order.
    pub(super) fn decisions(&self) -> Vec<Decision> {
        let mut out = Vec::new();
        for l in 0..self.layers {
            if self.heights.len() > 1 {
                out.push(Decision::Height(l));
            }
            if self.widths.len() > 1 {
                out.push(Decision::Width(l));
            }
            if self.filters.len() > 1 {
                out.push(Decision::Filters(l));
            }
            if self.strides.len() > 1 {
                out.push(Decision::Stride(l));
            }
            out.extend((0..l).map(|j| Decision::Edge(l, j)));
        }
        out
    }

    /// The options of a value decision, and the slot it writes.
    fn slot<'a>(
        &'a self,
        arch: &'a mut NasRlArch,
        d: Decision,
    ) -> Option<(&'a [u32], &'a mut u32)> {
        match d {
            Decision::Height(l) => Some((&self.heights, &mut arch.layers[l].filter_height)),
            Decision::Width(l) => Some((&self.widths, &mut arch.layers[l].filter_width)),
            Decision::Filters(l) => Some((&self.filters, &mut arch.layers[l].filters)),
            Decision::Stride(l) => Some((&self.strides, &mut arch.layers[l].stride)),
            Decision::Edge(..) => None,
        }
    }

    /// All architectures that differ from `arch` in decision `d`.
    pub(super) fn variants(&self, arch: &NasRlArch, d: Decision) -> Vec<NasRlArch> {
        if let Decision::Edge(l, j) = d {
            let mut child = arch.clone();
            toggle(&mut child.layers[l].inputs, j + 1);
            return vec![child];
        }
        let mut probe = arch.clone();
        let Some((options, current)) = self.slot(&mut probe, d) else {
            return Vec::new();
        };
        let current = *current;
        options
            .iter()
            .filter(|&&v| v != current)
            .map(|&v| {
                let mut child = arch.clone();
                if let Some((_, slot)) = self.slot(&mut child, d) {
                    *slot = v;
                }
                child
            })
            .collect()
    }

    fn check_value(&self, what: &str, i: usize, v: u32, options: &[u32]) -> Result<(), String> {
        if options.contains(&v) {
            Ok(())
        } else {
            Err(format!("layer {i} has {what} {v}, not one of {options:?}"))
        }
    }

    pub(super) fn check_layer_values(
        &self,
        i: usize,
        l: &NasRlLayer,
    ) -> Result<(), (String, usize)> {
        self.check_value("filter height", i, l.filter_height, &self.heights)
            .map_err(|e| (e, 0))?;
        self.check_value("filter width", i, l.filter_width, &self.widths)
            .map_err(|e| (e, 1))?;
        self.check_value("filters", i, l.filters, &self.filters)
            .map_err(|e| (e, 2))?;
        self.check_value("stride", i, l.stride, &self.strides)
            .map_err(|e| (e, 3))?;
        Ok(())
    }
}

/// Adds `j` to the sorted set `inputs`, or removes it.
fn toggle(inputs: &mut Vec<usize>, j: usize) {
    match inputs.binary_search(&j) {
        Ok(k) => {
            inputs.remove(k);
        }
        Err(k) => inputs.insert(k, j),
    }
}

pub(super) fn pos_of(options: &[u32], v: u32) -> Option<usize> {
    options.iter().position(|&o| o == v)
}
