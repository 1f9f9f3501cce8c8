//! The NAS-RL space: the CIFAR-10 convolutional networks of Zoph & Le, "Neural Architecture
//! Search with Reinforcement Learning" (ICLR 2017), Section 3.3 and 4.1.
//!
//! A network is a chain of `N` convolutional layers (default 15, the depth of the paper's best
//! CIFAR-10 model without strides). For every layer the controller picks a filter height in
//! `[1, 3, 5, 7]`, a filter width in `[1, 3, 5, 7]` and a number of filters in
//! `[24, 36, 48, 64]`; in one experiment it also picks a stride in `[1, 2, 3]` (off by default,
//! as in the paper's main setting, i.e. strides `[1]`). Skip connections: at layer `N` an anchor
//! point with one sigmoid per previous layer decides which earlier layers feed it; the chosen
//! inputs are concatenated along the depth dimension, a layer with no input reads the image, and
//! at the end every layer output that no layer consumes is concatenated and sent to the
//! classifier (the paper pads inputs of different sizes with zeros).
//!
//! Architectures print as the layers separated by single spaces, each
//! `{h}x{w}x{filters}s{stride}[{inputs}]` where `inputs` lists the 1-based numbers of the earlier
//! layers that feed it (empty: the image):
//!
//! ```
//! use nas_space::nasrl::{NasRlArch, NasRlSpace};
//! use nas_space::{Canonicalize, SearchSpace, TextFormat};
//!
//! let space = NasRlSpace::with_layers(3)?;
//! let arch = space.parse("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]")?;
//! assert_eq!(arch.layers[2].inputs, vec![1, 2]);
//! assert_eq!(arch.unconsumed(), vec![3]);
//! assert_eq!(space.to_text(&arch).parse::<NasRlArch>()?, arch);
//! // The default space (15 layers) is far too large to enumerate: about 2^195 networks.
//! assert_eq!(NasRlSpace::default().log2_size(), 195.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The space's size, `(|heights|·|widths|·|filters|·|strides|)^N · 2^(N(N-1)/2)`, overflows
//! `u128` at the paper's depth (`64^15 · 2^105 = 2^195`, or `192^15 · 2^105` with strides), so
//! the space does not implement [`Enumerable`](crate::Enumerable); [`NasRlSpace::log2_size`]
//! gives its size instead.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Mutate, Neighborhood, SearchSpace, TextFormat,
    ToGraph, choose,
};

const FORMAT: &str = "NAS-RL architecture string";
const NAME: &str = "nas-rl";

/// The paper's filter heights.
pub const HEIGHTS: [u32; 4] = [1, 3, 5, 7];
/// The paper's filter widths.
pub const WIDTHS: [u32; 4] = [1, 3, 5, 7];
/// The paper's numbers of filters.
pub const FILTERS: [u32; 4] = [24, 36, 48, 64];
/// The strides of the paper's experiment that also searches strides.
pub const SEARCHED_STRIDES: [u32; 3] = [1, 2, 3];
/// The paper's depth for the best model without strides.
pub const DEFAULT_LAYERS: usize = 15;

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
    /// The layer's operation label, e.g. `conv_3x5_36_s1` (used by [`ToGraph`]).
    pub fn label(&self) -> String {
        format!(
            "conv_{}x{}_{}_s{}",
            self.filter_height, self.filter_width, self.filters, self.stride
        )
    }
}

impl fmt::Display for NasRlLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}x{}s{}[",
            self.filter_height, self.filter_width, self.filters, self.stride
        )?;
        for (k, j) in self.inputs.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
            }
            write!(f, "{j}")?;
        }
        f.write_str("]")
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
    fn check_structure(&self) -> Result<(), String> {
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

impl fmt::Display for NasRlArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, l) in self.layers.iter().enumerate() {
            if k > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Byte positions of the fields of one parsed layer, for error messages.
#[derive(Debug, Clone, Copy)]
struct LayerPos {
    start: usize,
    end: usize,
    height: usize,
    width: usize,
    filters: usize,
    stride: usize,
}

fn number_u32(c: &mut Cursor<'_>) -> Result<(u32, usize), ParseError> {
    let (v, pos) = c.number()?;
    let v = u32::try_from(v).map_err(|_| {
        c.error_at(
            ParseErrorKind::InvalidNumber {
                reason: format!("{v} does not fit in 32 bits"),
            },
            pos,
            &v.to_string(),
        )
    })?;
    Ok((v, pos))
}

/// Parses the layers (any number, any values) and checks the structure of the inputs.
fn parse_layers(s: &str) -> Result<Vec<(NasRlLayer, LayerPos)>, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.check_brackets(&[('[', ']')])?;
    c.skip_ws();
    let mut out: Vec<(NasRlLayer, LayerPos)> = Vec::new();
    loop {
        let i = out.len() + 1;
        let start = c.pos();
        let (filter_height, height) = number_u32(&mut c)?;
        c.expect_char('x')?;
        let (filter_width, width) = number_u32(&mut c)?;
        c.expect_char('x')?;
        let (filters, fpos) = number_u32(&mut c)?;
        c.expect_char('s')?;
        let (stride, spos) = number_u32(&mut c)?;
        c.expect_char('[')?;
        let mut inputs: Vec<usize> = Vec::new();
        if !c.eat_char(']') {
            loop {
                let (j, jpos) = c.number()?;
                if j == 0 {
                    return Err(c.error_at(
                        ParseErrorKind::Invalid {
                            reason: "layers are numbered from 1; write `[]` for a layer that reads the image".into(),
                        },
                        jpos,
                        "0",
                    ));
                }
                if j >= i {
                    return Err(c.error_at(
                        ParseErrorKind::EdgeFromLaterNode { from: j, to: i },
                        jpos,
                        &j.to_string(),
                    ));
                }
                if inputs.last().is_some_and(|&last| last >= j) {
                    return Err(c.error_at(
                        ParseErrorKind::Invalid {
                            reason: format!("the inputs of layer {i} must be sorted and distinct"),
                        },
                        jpos,
                        &j.to_string(),
                    ));
                }
                inputs.push(j);
                if c.eat_char(']') {
                    break;
                }
                c.expect_char(',')?;
            }
        }
        let layer = NasRlLayer {
            filter_height,
            filter_width,
            filters,
            stride,
            inputs,
        };
        let pos = LayerPos {
            start,
            end: c.pos(),
            height,
            width,
            filters: fpos,
            stride: spos,
        };
        out.push((layer, pos));
        if c.at_end() {
            break;
        }
        if !c.peek().is_some_and(char::is_whitespace) {
            return Err(c.error(ParseErrorKind::TrailingInput));
        }
        c.skip_ws();
        if c.at_end() {
            break;
        }
    }
    Ok(out)
}

impl FromStr for NasRlArch {
    type Err = ParseError;

    /// Parses any number of layers with any values; [`NasRlSpace`]'s `parse` also checks them
    /// against its configuration.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(NasRlArch {
            layers: parse_layers(s)?.into_iter().map(|(l, _)| l).collect(),
        })
    }
}

/// The NAS-RL space: `layers` layers, each choosing a filter height, width, count and stride
/// from the configured sets, plus any subset of the earlier layers as inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NasRlSpaceConfig")]
pub struct NasRlSpace {
    layers: usize,
    heights: Vec<u32>,
    widths: Vec<u32>,
    filters: Vec<u32>,
    strides: Vec<u32>,
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
    if values.is_empty() {
        return Err(SpaceError::config(NAME, field, "must not be empty"));
    }
    if values.contains(&0) {
        return Err(SpaceError::config(NAME, field, "must be positive"));
    }
    let set: BTreeSet<u32> = values.iter().copied().collect();
    if set.len() != values.len() {
        return Err(SpaceError::config(
            NAME,
            field,
            "contains a duplicate value",
        ));
    }
    Ok(())
}

/// One decision of a NAS-RL network (0-based layer index).
#[derive(Debug, Clone, Copy)]
enum Decision {
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
    /// uses [`SEARCHED_STRIDES`]).
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

    fn per_layer_len(&self) -> usize {
        self.heights.len() + self.widths.len() + self.filters.len() + self.strides.len()
    }

    /// Every decision with at least two options, in neighbour order.
    fn decisions(&self) -> Vec<Decision> {
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
    fn variants(&self, arch: &NasRlArch, d: Decision) -> Vec<NasRlArch> {
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

    fn check_layer_values(&self, i: usize, l: &NasRlLayer) -> Result<(), (String, usize)> {
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

fn pos_of(options: &[u32], v: u32) -> Option<usize> {
    options.iter().position(|&o| o == v)
}

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
        if arch.layers.len() != self.layers {
            return Err(SpaceError::invalid(
                NAME,
                format!(
                    "expected {} layers, found {}",
                    self.layers,
                    arch.layers.len()
                ),
            ));
        }
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
        let decisions = self.decisions();
        if decisions.is_empty() {
            return Err(SpaceError::NoNeighbor { space: NAME.into() });
        }
        let d = decisions[choose(rng, &(0..decisions.len()).collect::<Vec<_>>())];
        let variants = self.variants(arch, d);
        let k = choose(rng, &(0..variants.len()).collect::<Vec<_>>());
        Ok(variants[k].clone())
    }
}

impl Neighborhood for NasRlSpace {
    /// Layer by layer: every other height, width, filter count and stride, then every skip
    /// connection toggled (from the earliest source layer).
    fn neighbors(&self, arch: &NasRlArch) -> Result<Vec<NasRlArch>, SpaceError> {
        self.validate(arch)?;
        let out: Vec<NasRlArch> = self
            .decisions()
            .into_iter()
            .flat_map(|d| self.variants(arch, d))
            .collect();
        if out.is_empty() {
            return Err(SpaceError::NoNeighbor { space: NAME.into() });
        }
        Ok(out)
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

/// Ranks `keys` densely: equal keys get equal ranks, in sorted order.
fn dense_rank<K: Ord + Clone>(keys: &[K]) -> Vec<usize> {
    let sorted: Vec<K> = keys
        .iter()
        .cloned()
        .collect::<BTreeSet<K>>()
        .into_iter()
        .collect();
    keys.iter()
        .map(|k| sorted.binary_search(k).unwrap_or(0))
        .collect()
}

/// All permutations of `items` (small slices only).
fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for k in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(k);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

/// The most relabellings the canonical form tries (see [`NasRlSpace`]'s `Canonicalize`).
const MAX_RELABELLINGS: usize = 40_320;

/// `arch` with its layers in the order `order` (old 0-based indices; must be topological).
fn relabel(arch: &NasRlArch, order: &[usize]) -> NasRlArch {
    let mut new_of = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old] = new + 1;
    }
    let layers = order
        .iter()
        .map(|&old| {
            let l = &arch.layers[old];
            let mut inputs: Vec<usize> = l.inputs.iter().map(|&j| new_of[j - 1]).collect();
            inputs.sort_unstable();
            NasRlLayer {
                inputs,
                ..l.clone()
            }
        })
        .collect();
    NasRlArch { layers }
}

/// The canonical relabelling of a structurally valid architecture (see `Canonicalize`).
fn canonical_arch(arch: &NasRlArch) -> NasRlArch {
    let n = arch.layers.len();
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut level = vec![0usize; n];
    for (i, l) in arch.layers.iter().enumerate() {
        for &j in &l.inputs {
            consumers[j - 1].push(i);
            level[i] = level[i].max(level[j - 1] + 1);
        }
    }
    // Colour refinement in both directions, starting from (level, layer values).
    let initial: Vec<(usize, u32, u32, u32, u32)> = arch
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                level[i],
                l.filter_height,
                l.filter_width,
                l.filters,
                l.stride,
            )
        })
        .collect();
    let mut color = dense_rank(&initial);
    loop {
        let sig: Vec<(usize, Vec<usize>, Vec<usize>)> = (0..n)
            .map(|i| {
                let mut ins: Vec<usize> = arch.layers[i]
                    .inputs
                    .iter()
                    .map(|&j| color[j - 1])
                    .collect();
                ins.sort_unstable();
                let mut outs: Vec<usize> = consumers[i].iter().map(|&c| color[c]).collect();
                outs.sort_unstable();
                (color[i], ins, outs)
            })
            .collect();
        let next = dense_rank(&sig);
        let classes = |c: &[usize]| c.iter().collect::<BTreeSet<_>>().len();
        let done = classes(&next) == classes(&color);
        color = next;
        if done {
            break;
        }
    }
    // Cells in colour order; the order of cells is topological because colours refine levels.
    let cells_count = color.iter().max().map_or(0, |m| m + 1);
    let mut cells: Vec<Vec<usize>> = vec![Vec::new(); cells_count];
    for (i, &c) in color.iter().enumerate() {
        cells[c].push(i);
    }
    // Within a cell, members that are twins (same inputs, same consumers) are interchangeable:
    // swapping them is an automorphism, so one order is enough. Other cells are permuted.
    let mut options: Vec<Vec<Vec<usize>>> = Vec::with_capacity(cells.len());
    let mut total: usize = 1;
    for cell in &cells {
        let twins = cell.iter().all(|&i| {
            arch.layers[i].inputs == arch.layers[cell[0]].inputs
                && consumers[i] == consumers[cell[0]]
        });
        let perms = if twins {
            vec![cell.clone()]
        } else {
            permutations(cell)
        };
        match total.checked_mul(perms.len()) {
            Some(t) if t <= MAX_RELABELLINGS => {
                total = t;
                options.push(perms);
            }
            _ => options.push(vec![cell.clone()]),
        }
    }
    let mut best: Option<(String, NasRlArch)> = None;
    let mut choice = vec![0usize; options.len()];
    loop {
        let order: Vec<usize> = options
            .iter()
            .zip(&choice)
            .flat_map(|(o, &k)| o[k].iter().copied())
            .collect();
        let candidate = relabel(arch, &order);
        let text = candidate.to_string();
        if best.as_ref().is_none_or(|(b, _)| text < *b) {
            best = Some((text, candidate));
        }
        // Next combination (odometer).
        let mut k = 0;
        loop {
            if k == options.len() {
                return best.map_or_else(|| arch.clone(), |(_, a)| a);
            }
            choice[k] += 1;
            if choice[k] < options[k].len() {
                break;
            }
            choice[k] = 0;
            k += 1;
        }
    }
}

impl Canonicalize for NasRlSpace {
    /// The text of a canonical relabelling of the layers.
    ///
    /// The layer order of a NAS-RL network is only a topological order of its graph: two
    /// layers that do not depend on each other can swap places (renumbering the inputs that
    /// refer to them) without changing the computation, and inputs (and the classifier's
    /// input) are concatenations whose order is a mere channel permutation, so inputs are sets.
    /// The canonical form identifies exactly these relabellings (graph isomorphism preserving
    /// the layer values, the image and the classifier): layers are coloured by refining
    /// (longest-path depth, height, width, filters, stride) with the colours of their inputs
    /// and consumers until stable; cells of equal colour are put in colour order (a
    /// topological order), and every order within the cells is tried (twins, layers with the
    /// same inputs and consumers, need none), keeping the relabelled architecture whose text is
    /// smallest. The result is itself a valid architecture's text. Should the cells allow more
    /// than 40,320 orders (only for highly symmetric networks of many layers) the extra cells
    /// keep their original order, and the form may then separate some isomorphic networks.
    fn canonical(&self, arch: &NasRlArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(canonical_arch(arch).to_string()))
    }
}

impl TextFormat for NasRlSpace {
    fn to_text(&self, arch: &NasRlArch) -> String {
        arch.to_string()
    }

    /// Parses the text and checks it against this space: the layer count
    /// ([`ParseErrorKind::WrongCount`], at the end of the input or at the first extra layer)
    /// and each value ([`ParseErrorKind::InvalidNumber`] at the value).
    fn parse(&self, text: &str) -> Result<NasRlArch, SpaceError> {
        let parsed = parse_layers(text)?;
        let wrong_count = |pos: usize, token: &str| {
            ParseError::new(
                FORMAT,
                ParseErrorKind::WrongCount {
                    what: "layers".into(),
                    expected: self.layers,
                    found: parsed.len(),
                },
                pos,
                token,
            )
        };
        if parsed.len() < self.layers {
            return Err(wrong_count(text.trim_end().len(), "").into());
        }
        if parsed.len() > self.layers {
            let p = parsed[self.layers].1;
            return Err(wrong_count(p.start, &text[p.start..p.end]).into());
        }
        for (k, (l, p)) in parsed.iter().enumerate() {
            if let Err((reason, field)) = self.check_layer_values(k + 1, l) {
                let (pos, v) = match field {
                    0 => (p.height, l.filter_height),
                    1 => (p.width, l.filter_width),
                    2 => (p.filters, l.filters),
                    _ => (p.stride, l.stride),
                };
                return Err(ParseError::new(
                    FORMAT,
                    ParseErrorKind::InvalidNumber { reason },
                    pos,
                    v.to_string(),
                )
                .into());
            }
        }
        let arch = NasRlArch {
            layers: parsed.into_iter().map(|(l, _)| l).collect(),
        };
        self.validate(&arch)?;
        Ok(arch)
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
        let mut labels = vec!["input".to_string()];
        labels.extend(arch.layers.iter().map(NasRlLayer::label));
        labels.push("output".into());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;
    use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
    use std::collections::{HashMap, HashSet};

    const EXAMPLE: &str = "3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]";

    fn small() -> NasRlSpace {
        NasRlSpace::with_layers(3).unwrap()
    }

    #[test]
    fn laws_hold() {
        let s = NasRlSpace::default();
        laws::check_sample(&s, 1, 100).unwrap();
        laws::check_serde(&s, 2, 100).unwrap();
        laws::check_mutate(&s, 3, 200).unwrap();
        laws::check_neighbors(&s, 4, 20).unwrap();
        laws::check_text(&s, 5, 100).unwrap();
        laws::check_encode(&s, 6, 50).unwrap();
        laws::check_canonical(&s, 8, 50).unwrap();
        laws::check_graph(&s, 9, 50).unwrap();
    }

    #[test]
    fn strided_and_tiny_spaces_keep_the_laws() {
        let s = NasRlSpace::default()
            .with_strides(&SEARCHED_STRIDES)
            .unwrap();
        assert_eq!(s.strides(), &[1, 2, 3]);
        laws::check_sample(&s, 1, 50).unwrap();
        laws::check_mutate(&s, 2, 100).unwrap();
        laws::check_neighbors(&s, 3, 10).unwrap();
        laws::check_text(&s, 4, 50).unwrap();
        laws::check_encode(&s, 5, 20).unwrap();
        // One layer, single values: nothing to change.
        let one = NasRlSpace::new(1, &[3], &[3], &[36], &[1]).unwrap();
        let a = one.parse("3x3x36s1[]").unwrap();
        assert!(matches!(
            one.neighbors(&a),
            Err(SpaceError::NoNeighbor { .. })
        ));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(matches!(
            one.mutate(&a, &mut rng),
            Err(SpaceError::NoNeighbor { .. })
        ));
        // Two layers, single values: the one skip connection is the only decision.
        let two = NasRlSpace::new(2, &[3], &[3], &[36], &[1]).unwrap();
        let a = two.parse("3x3x36s1[] 3x3x36s1[]").unwrap();
        assert_eq!(
            two.neighbors(&a).unwrap(),
            vec![two.parse("3x3x36s1[] 3x3x36s1[1]").unwrap()]
        );
        laws::check_neighbors(&two, 1, 5).unwrap();
    }

    #[test]
    fn size_is_reported_in_bits() {
        assert_eq!(NasRlSpace::default().log2_size(), 195.0);
        let strided = NasRlSpace::default()
            .with_strides(&SEARCHED_STRIDES)
            .unwrap();
        let expected = 15.0 * 192f64.log2() + 105.0;
        assert!((strided.log2_size() - expected).abs() < 1e-9);
        assert_eq!(small().log2_size(), 3.0 * 6.0 + 3.0);
    }

    #[test]
    fn example_prints_parses_and_graphs() {
        let s = small();
        let a = s.parse(EXAMPLE).unwrap();
        assert_eq!(a.to_string(), EXAMPLE);
        assert_eq!(
            a.layers[1],
            NasRlLayer {
                filter_height: 5,
                filter_width: 7,
                filters: 48,
                stride: 1,
                inputs: vec![1]
            }
        );
        assert_eq!(a.unconsumed(), vec![3]);
        let g = s.graph(&a).unwrap();
        assert_eq!(
            g.labels,
            vec![
                "input",
                "conv_3x3_36_s1",
                "conv_5x7_48_s1",
                "conv_3x3_64_s1",
                "output"
            ]
        );
        assert_eq!(g.edges, vec![(0, 1), (1, 2), (1, 3), (2, 3), (3, 4)]);

        // Layers without inputs read the image; unconsumed layers feed the classifier.
        let b = s.parse("1x1x24s1[] 7x7x64s1[] 3x5x36s1[1]").unwrap();
        assert_eq!(b.unconsumed(), vec![2, 3]);
        let g = s.graph(&b).unwrap();
        assert_eq!(g.edges, vec![(0, 1), (0, 2), (1, 3), (2, 4), (3, 4)]);
        // Whitespace around and between layers is tolerated.
        assert_eq!(
            s.parse("  3x3x36s1[]   5x7x48s1[1]\t3x3x64s1[1,2] ")
                .unwrap(),
            a
        );
        // serde keeps the structure.
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<NasRlArch>(&json).unwrap(), a);
    }

    #[test]
    fn encoding_layout() {
        let s = small();
        let a = s.parse(EXAMPLE).unwrap();
        let e = s.encode(&a).unwrap();
        assert_eq!(s.encoding_len(), 3 * 13 + 3);
        assert_eq!(e.len(), 42);
        // Layer 1: height 3 (pos 1), width 3 (pos 1), 36 filters (pos 1), stride 1 (pos 0).
        assert_eq!(
            &e[..13],
            &[0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 1.]
        );
        // Connections [2<-1, 3<-1, 3<-2].
        assert_eq!(&e[39..], &[1., 1., 1.]);
        let b = s.parse("3x3x36s1[] 5x7x48s1[] 3x3x64s1[2]").unwrap();
        assert_eq!(&s.encode(&b).unwrap()[39..], &[0., 0., 1.]);
        assert_eq!(e.iter().sum::<f32>(), 12.0 + 3.0);
    }

    #[test]
    fn neighbors_count_every_decision() {
        let s = NasRlSpace::default();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let a = s.sample(&mut rng);
        // 15 layers × (3 + 3 + 3) value changes + 105 connection toggles.
        assert_eq!(s.neighbors(&a).unwrap().len(), 15 * 9 + 105);
        for n in s.neighbors(&a).unwrap() {
            let diff: usize = a
                .layers
                .iter()
                .zip(&n.layers)
                .map(|(x, y)| {
                    (x.filter_height != y.filter_height) as usize
                        + (x.filter_width != y.filter_width) as usize
                        + (x.filters != y.filters) as usize
                        + (x.stride != y.stride) as usize
                        + x.inputs
                            .iter()
                            .collect::<HashSet<_>>()
                            .symmetric_difference(&y.inputs.iter().collect())
                            .count()
                })
                .sum();
            assert_eq!(diff, 1);
        }
    }

    /// A random topological relabelling of `a`.
    fn shuffle(a: &NasRlArch, rng: &mut ChaCha8Rng) -> NasRlArch {
        let n = a.layers.len();
        let mut placed = vec![false; n];
        let mut order = Vec::new();
        while order.len() < n {
            let ready: Vec<usize> = (0..n)
                .filter(|&i| !placed[i] && a.layers[i].inputs.iter().all(|&j| placed[j - 1]))
                .collect();
            let i = ready[rng.random_range(0..ready.len())];
            placed[i] = true;
            order.push(i);
        }
        relabel(a, &order)
    }

    #[test]
    fn canonical_form_is_invariant_under_relabelling() {
        let s = NasRlSpace::default();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for _ in 0..30 {
            let a = s.sample(&mut rng);
            let c = s.canonical(&a).unwrap();
            assert!(
                s.parse(c.as_str()).is_ok(),
                "canonical text is an architecture"
            );
            for _ in 0..5 {
                let b = shuffle(&a, &mut rng);
                s.validate(&b).unwrap();
                assert_eq!(s.canonical(&b).unwrap(), c, "{a} vs {b}");
            }
        }
        // Two independent layers swapped: same network.
        let s = small();
        let x = s.parse("3x3x36s1[] 5x5x48s1[] 1x1x64s1[1]").unwrap();
        let y = s.parse("5x5x48s1[] 3x3x36s1[] 1x1x64s1[2]").unwrap();
        assert_eq!(s.canonical(&x).unwrap(), s.canonical(&y).unwrap());
        // Genuinely different: the 1x1 layer reads the other layer.
        let z = s.parse("3x3x36s1[] 5x5x48s1[] 1x1x64s1[2]").unwrap();
        assert_ne!(s.canonical(&x).unwrap(), s.canonical(&z).unwrap());
    }

    #[test]
    fn canonical_form_tells_shared_from_separate_inputs() {
        // Same unfolded expressions (B(A), C(A), C(A)), different sharing: in x the two C
        // layers share one A, in y one C shares its A with B.
        let s = NasRlSpace::new(5, &[3, 5], &[3], &[36, 48], &[1]).unwrap();
        let x = s
            .parse("3x3x36s1[] 3x3x36s1[] 5x3x48s1[1] 5x3x36s1[2] 5x3x36s1[2]")
            .unwrap();
        let y = s
            .parse("3x3x36s1[] 3x3x36s1[] 5x3x48s1[1] 5x3x36s1[1] 5x3x36s1[2]")
            .unwrap();
        assert_ne!(s.canonical(&x).unwrap(), s.canonical(&y).unwrap());
        // The same sharing as x with the A layers swapped.
        let z = s
            .parse("3x3x36s1[] 3x3x36s1[] 5x3x48s1[2] 5x3x36s1[1] 5x3x36s1[1]")
            .unwrap();
        assert_eq!(s.canonical(&x).unwrap(), s.canonical(&z).unwrap());
    }

    /// Every architecture of a small space, by brute force.
    fn all_archs(s: &NasRlSpace) -> Vec<NasRlArch> {
        let n = s.layers();
        let mut archs = vec![NasRlArch { layers: vec![] }];
        for l in 0..n {
            let mut next = Vec::new();
            for a in &archs {
                for &h in s.heights() {
                    for &f in s.filters() {
                        for mask in 0..(1usize << l) {
                            let mut b = a.clone();
                            b.layers.push(NasRlLayer {
                                filter_height: h,
                                filter_width: s.widths()[0],
                                filters: f,
                                stride: s.strides()[0],
                                inputs: (0..l)
                                    .filter(|j| mask >> j & 1 == 1)
                                    .map(|j| j + 1)
                                    .collect(),
                            });
                            next.push(b);
                        }
                    }
                }
            }
            archs = next;
        }
        archs
    }

    /// Canonical form by brute force over every topological relabelling.
    fn brute_canonical(a: &NasRlArch) -> String {
        let n = a.layers.len();
        permutations(&(0..n).collect::<Vec<_>>())
            .into_iter()
            .filter(|order| {
                let mut pos = vec![0; n];
                for (k, &i) in order.iter().enumerate() {
                    pos[i] = k;
                }
                (0..n).all(|i| a.layers[i].inputs.iter().all(|&j| pos[j - 1] < pos[i]))
            })
            .map(|order| relabel(a, &order).to_string())
            .min()
            .unwrap()
    }

    fn assert_same_partition(s: &NasRlSpace) {
        let archs = all_archs(s);
        let mut ours: HashMap<String, String> = HashMap::new();
        let mut theirs: HashMap<String, String> = HashMap::new();
        for a in &archs {
            s.validate(a).unwrap();
            let c = s.canonical(a).unwrap().0;
            let b = brute_canonical(a);
            if let Some(prev) = ours.insert(c.clone(), b.clone()) {
                assert_eq!(prev, b, "{a} merged with a non-isomorphic network");
            }
            if let Some(prev) = theirs.insert(b, c.clone()) {
                assert_eq!(prev, c, "isomorphic networks split: {a}");
            }
        }
        assert_eq!(ours.len(), theirs.len());
    }

    #[test]
    fn canonical_form_matches_brute_force_isomorphism() {
        // 4 layers, 2 × 2 labels: 4^4 · 2^6 = 16,384 networks.
        assert_same_partition(&NasRlSpace::new(4, &[1, 3], &[3], &[24, 36], &[1]).unwrap());
        // 5 layers, one label: only the connections matter (1,024 networks).
        assert_same_partition(&NasRlSpace::new(5, &[3], &[3], &[36], &[1]).unwrap());
    }

    fn err(s: &str) -> ParseError {
        match small().parse(s).unwrap_err() {
            SpaceError::Parse(e) => e,
            other => panic!("not a parse error: {other}"),
        }
    }

    #[test]
    fn bad_strings_name_token_and_position() {
        // Value outside the configured set (an "unknown op" for this space).
        let e = err("3x3x36s1[] 5x7x40s1[1] 3x3x64s1[1,2]");
        assert!(
            matches!(e.kind, ParseErrorKind::InvalidNumber { .. }),
            "{e}"
        );
        assert_eq!((e.position, e.token.as_str()), (15, "40"));
        assert!(e.to_string().contains("[24, 36, 48, 64]"), "{e}");
        let e = err("3x3x36s2[] 5x7x48s1[1] 3x3x64s1[1,2]");
        assert_eq!((e.position, e.token.as_str()), (7, "2"));
        let e = err("3x2x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]");
        assert_eq!((e.position, e.token.as_str()), (2, "2"));

        // Wrong count: too few (at the end), too many (at the first extra layer).
        let e = err("3x3x36s1[] 5x7x48s1[1]");
        assert_eq!(
            e.kind,
            ParseErrorKind::WrongCount {
                what: "layers".into(),
                expected: 3,
                found: 2
            }
        );
        assert_eq!((e.position, e.token.as_str()), (22, ""));
        let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2] 1x1x24s1[]");
        assert!(matches!(
            e.kind,
            ParseErrorKind::WrongCount {
                expected: 3,
                found: 4,
                ..
            }
        ));
        assert_eq!((e.position, e.token.as_str()), (37, "1x1x24s1[]"));

        // Input from a later layer (or itself).
        let e = err("3x3x36s1[] 5x7x48s1[2] 3x3x64s1[1,2]");
        assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
        assert_eq!((e.position, e.token.as_str()), (20, "2"));
        let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,4]");
        assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 4, to: 3 });
        assert_eq!(e.position, 34);
        // Layer 0, unsorted and duplicate inputs.
        let e = err("3x3x36s1[] 5x7x48s1[0] 3x3x64s1[1,2]");
        assert!(
            matches!(e.kind, ParseErrorKind::Invalid { .. }) && e.position == 20,
            "{e}"
        );
        let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[2,1]");
        assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
        assert_eq!((e.position, e.token.as_str()), (34, "1"));
        let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,1]");
        assert!(
            matches!(e.kind, ParseErrorKind::Invalid { .. }) && e.position == 34,
            "{e}"
        );

        // Unbalanced brackets.
        let e = err("3x3x36s1[] 5x7x48s1[1 3x3x64s1[1,2]");
        assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: '[' });
        assert_eq!((e.position, e.token.as_str()), (19, "["));
        let e = err("3x3x36s1[]] 5x7x48s1[1] 3x3x64s1[1,2]");
        assert_eq!(e.kind, ParseErrorKind::Unbalanced { bracket: ']' });
        assert_eq!(e.position, 10);

        // Trailing text glued to the last layer.
        let e = err("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2];");
        assert_eq!(e.kind, ParseErrorKind::TrailingInput);
        assert_eq!((e.position, e.token.as_str()), (36, ";"));
        let e = err("3x3x36s1[]x 5x7x48s1[1] 3x3x64s1[1,2]");
        assert_eq!((e.kind, e.position), (ParseErrorKind::TrailingInput, 10));

        // Empty.
        assert_eq!(err("").kind, ParseErrorKind::Empty);
        assert_eq!(err(" \t ").kind, ParseErrorKind::Empty);

        // Malformed layers.
        let e = err("3x3x36[] 5x7x48s1[1] 3x3x64s1[1,2]");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
        assert_eq!((e.position, e.token.as_str()), (6, "["));
        let e = err("3x3x36s1[] conv 3x3x64s1[1,2]");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
        assert_eq!((e.position, e.token.as_str()), (11, "conv"));
        let e = err("3x3x36s1[] 5x7x48s1[1 2] 3x3x64s1[1,2]");
        assert!(
            matches!(e.kind, ParseErrorKind::Expected { .. }) && e.position == 21,
            "{e}"
        );
        let e = err("99999999999x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]");
        assert!(
            matches!(e.kind, ParseErrorKind::InvalidNumber { .. }) && e.position == 0,
            "{e}"
        );
    }

    #[test]
    fn validate_rejects_foreign_architectures() {
        let s = small();
        let mut a = s.parse(EXAMPLE).unwrap();
        assert!(
            s.validate(&NasRlSpace::default().sample(&mut ChaCha8Rng::seed_from_u64(1)))
                .is_err()
        );
        a.layers[2].inputs = vec![2, 1];
        assert!(matches!(
            s.validate(&a),
            Err(SpaceError::InvalidArch { .. })
        ));
        a.layers[2].inputs = vec![3];
        assert!(s.validate(&a).is_err());
        a.layers[2].inputs = vec![];
        a.layers[0].filters = 100;
        assert!(s.validate(&a).unwrap_err().to_string().contains("100"));
        assert!(s.encode(&a).is_err() && s.graph(&a).is_err() && s.canonical(&a).is_err());
        // FromStr accepts any values; the space rejects them.
        let b: NasRlArch = "2x2x10s9[]".parse().unwrap();
        assert_eq!(b.layers[0].stride, 9);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let field = |r: Result<NasRlSpace, SpaceError>| match r {
            Err(SpaceError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid config, got {other:?}"),
        };
        assert_eq!(field(NasRlSpace::with_layers(0)), "layers");
        assert_eq!(field(NasRlSpace::new(3, &[], &[3], &[24], &[1])), "heights");
        assert_eq!(
            field(NasRlSpace::new(3, &[3], &[3, 3], &[24], &[1])),
            "widths"
        );
        assert_eq!(
            field(NasRlSpace::new(3, &[3], &[3], &[0, 24], &[1])),
            "filters"
        );
        assert_eq!(field(NasRlSpace::default().with_strides(&[])), "strides");
    }
}
