//! The ProxylessNAS chain space: a MobileNetV2 backbone whose inverted-residual layers each
//! choose a kernel size and an expansion ratio, or are skipped.
//!
//! Cai, Zhu & Han, *ProxylessNAS: Direct Neural Architecture Search on Target Task and
//! Hardware*, ICLR 2019. The defaults follow the search code of `mit-han-lab/proxylessnas`:
//! `search/imagenet_arch_search.py` (`width_stages='24,40,80,96,192,320'`,
//! `n_cell_stages='4,4,4,4,4,1'`, `stride_stages='2,2,2,1,2,1'`, candidates `3x3_MBConv3,
//! 3x3_MBConv6, 5x5_MBConv3, 5x5_MBConv6, 7x7_MBConv3, 7x7_MBConv6`) and
//! `search/models/super_nets/super_proxyless.py` (`SuperProxylessNASNets`: a 3x3 stride-2 stem
//! convolution to 32 channels, a fixed first block `3x3_MBConv1` to 16 channels, the searched
//! stages, a 1x1 feature-mix convolution to 1280 channels; `Zero` is added to the candidates of
//! a layer exactly when `stride == 1 and input_channel == width`, and such a layer carries an
//! identity shortcut).
//!
//! With the defaults the network has 21 searchable layers. The first layer of every stage changes
//! the width (or the resolution), so it always computes a convolution; the other 15 may also be
//! `zero`, which leaves only the identity shortcut: the layer is skipped and the network is
//! shallower. The space holds 6^6 · 7^15 ≈ 2.2·10^17 architectures.
//!
//! Architectures print as the layers' names joined by single spaces, in network order:
//!
//! ```
//! use nas_space::proxyless::{MbConvChoice, ProxylessArch, ProxylessSpace, PROXYLESS_GPU};
//! use nas_space::{Canonicalize, SearchSpace, TextFormat};
//!
//! let space = ProxylessSpace::default();
//! let gpu = space.parse(PROXYLESS_GPU)?;
//! assert_eq!(gpu.layers.len(), 21);
//! assert_eq!(gpu.layers[0], MbConvChoice::mb_conv(5, 3));
//! assert_eq!(gpu.layers[1], MbConvChoice::Zero);
//! assert_eq!(space.to_text(&gpu), PROXYLESS_GPU);
//! // Moving a skipped layer inside its stage does not change the network:
//! // stage 1 `[7x7_MBConv3, zero, zero, 3x3_MBConv3]` = `[7x7_MBConv3, zero, 3x3_MBConv3, zero]`.
//! let mut moved = gpu.clone();
//! moved.layers.swap(6, 7);
//! assert_ne!(moved, gpu);
//! assert_eq!(space.canonical(&moved)?, space.canonical(&gpu)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

const FORMAT: &str = "ProxylessNAS architecture string";
const SPACE: &str = "proxylessnas";

/// The published ProxylessNAS-GPU network (75.1% top-1 on ImageNet), as a choice per searchable
/// layer of the default space.
///
/// Source: the official net config `proxyless_gpu.config` that
/// `mit-han-lab/proxylessnas/proxyless_nas/model_zoo.py` downloads, as transcribed in
/// `osmr/imgclsmob` (`pytorch/pytorchcv/models/proxylessnas.py`, `get_proxylessnas('gpu')`:
/// `residuals`, `kernel_sizes`, `expand_ratios`; a residual of 0 is a `zero` layer). The
/// published network uses wider stages (32, 56, 112, 128, 256, 432) than the search space; its
/// layer structure (depths and strides) and choices are those of this space.
pub const PROXYLESS_GPU: &str = "5x5_MBConv3 zero zero zero \
7x7_MBConv3 zero zero 3x3_MBConv3 \
7x7_MBConv6 zero zero 5x5_MBConv3 \
5x5_MBConv6 zero 3x3_MBConv3 5x5_MBConv3 \
7x7_MBConv6 7x7_MBConv6 7x7_MBConv6 5x5_MBConv6 \
7x7_MBConv6";

/// The published ProxylessNAS-Mobile network (74.6% top-1 on ImageNet); source as for
/// [`PROXYLESS_GPU`] (`get_proxylessnas('mobile')`). Its stage widths are 32, 40, 80, 96, 192,
/// 320 (the search space's first stage has 24).
pub const PROXYLESS_MOBILE: &str = "5x5_MBConv3 3x3_MBConv3 zero zero \
7x7_MBConv3 3x3_MBConv3 5x5_MBConv3 5x5_MBConv3 \
7x7_MBConv6 5x5_MBConv3 5x5_MBConv3 5x5_MBConv3 \
5x5_MBConv6 5x5_MBConv3 5x5_MBConv3 5x5_MBConv3 \
7x7_MBConv6 7x7_MBConv6 7x7_MBConv3 7x7_MBConv3 \
7x7_MBConv6";

/// The published ProxylessNAS-CPU network; source as for [`PROXYLESS_GPU`]
/// (`get_proxylessnas('cpu')`). Its stage widths are 32, 48, 88, 104, 216, 360.
pub const PROXYLESS_CPU: &str = "3x3_MBConv6 3x3_MBConv3 3x3_MBConv3 3x3_MBConv3 \
3x3_MBConv6 3x3_MBConv3 3x3_MBConv3 5x5_MBConv3 \
3x3_MBConv6 zero zero 3x3_MBConv3 \
5x5_MBConv6 3x3_MBConv3 3x3_MBConv3 3x3_MBConv3 \
5x5_MBConv6 5x5_MBConv3 5x5_MBConv3 3x3_MBConv3 \
5x5_MBConv6";

/// The choice of one searchable layer: a mobile inverted bottleneck convolution (MBConv) with a
/// kernel size and an expansion ratio, or `Zero` (the layer is skipped; only its identity
/// shortcut remains).
///
/// Named as in the ProxylessNAS code: `3x3_MBConv6` is a 3x3 depthwise kernel with expansion 6;
/// `zero` (also read as `Zero`, the code's spelling) is the skip. Serialized (serde) as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MbConvChoice {
    /// An MBConv layer: 1x1 expansion to `expansion`× the input channels, `kernel`×`kernel`
    /// depthwise convolution, 1x1 linear projection.
    MbConv {
        /// Depthwise kernel size (odd).
        kernel: u8,
        /// Expansion ratio of the hidden channels.
        expansion: u8,
    },
    /// The layer is skipped (the code's `ZeroLayer` next to an identity shortcut).
    Zero,
}

impl MbConvChoice {
    /// An MBConv choice with a `kernel`×`kernel` depthwise kernel and expansion `expansion`.
    pub const fn mb_conv(kernel: u8, expansion: u8) -> Self {
        MbConvChoice::MbConv { kernel, expansion }
    }

    /// True for [`MbConvChoice::Zero`].
    pub fn is_zero(self) -> bool {
        self == MbConvChoice::Zero
    }

    /// The kernel size, `None` for `Zero`.
    pub fn kernel(self) -> Option<u8> {
        match self {
            MbConvChoice::MbConv { kernel, .. } => Some(kernel),
            MbConvChoice::Zero => None,
        }
    }

    /// The expansion ratio, `None` for `Zero`.
    pub fn expansion(self) -> Option<u8> {
        match self {
            MbConvChoice::MbConv { expansion, .. } => Some(expansion),
            MbConvChoice::Zero => None,
        }
    }

    /// The ProxylessNAS name: `{k}x{k}_MBConv{e}` or `zero`.
    pub fn name(self) -> String {
        self.to_string()
    }

    /// Reads a name (`3x3_MBConv6`, `zero`, `Zero`); `None` if it is not of that form.
    fn from_name(s: &str) -> Option<Self> {
        if s == "zero" || s == "Zero" {
            return Some(MbConvChoice::Zero);
        }
        let (k1, rest) = s.split_once('x')?;
        let (k2, e) = rest.split_once("_MBConv")?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !(digits(k1) && digits(k2) && digits(e)) || k1 != k2 {
            return None;
        }
        let kernel: u8 = k1.parse().ok()?;
        let expansion: u8 = e.parse().ok()?;
        (kernel > 0 && expansion > 0).then_some(MbConvChoice::MbConv { kernel, expansion })
    }
}

impl fmt::Display for MbConvChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MbConvChoice::MbConv { kernel, expansion } => {
                write!(f, "{kernel}x{kernel}_MBConv{expansion}")
            }
            MbConvChoice::Zero => f.write_str("zero"),
        }
    }
}

fn default_names() -> Vec<String> {
    ProxylessSpace::default()
        .layer_choices(1)
        .iter()
        .map(|c| c.to_string())
        .collect()
}

impl FromStr for MbConvChoice {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        MbConvChoice::from_name(s).ok_or_else(|| {
            ParseError::new(
                FORMAT,
                ParseErrorKind::UnknownOp {
                    known: default_names(),
                },
                0,
                s,
            )
        })
    }
}

impl TryFrom<String> for MbConvChoice {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<MbConvChoice> for String {
    fn from(c: MbConvChoice) -> String {
        c.to_string()
    }
}

/// Splits a chain string into its words (runs of `[A-Za-z0-9_]`) with their byte offsets.
///
/// Words are separated by whitespace; any other character (a bracket, a comma...) is reported
/// as [`ParseErrorKind::Expected`] at its position. An empty or blank string is
/// [`ParseErrorKind::Empty`].
pub(crate) fn chain_words<'a>(
    text: &'a str,
    format: &'static str,
) -> Result<Vec<(&'a str, usize)>, ParseError> {
    let mut c = Cursor::new(text, format);
    c.non_empty()?;
    let mut words = Vec::new();
    loop {
        c.skip_ws();
        match c.peek() {
            None => break,
            Some(ch) if ch.is_ascii_alphanumeric() || ch == '_' => {}
            Some(_) => {
                return Err(c.error(ParseErrorKind::Expected {
                    expected: "a layer name".into(),
                }));
            }
        }
        let word = c.ident()?;
        if matches!(c.peek(), Some(ch) if !ch.is_whitespace()) {
            return Err(c.error(ParseErrorKind::Expected {
                expected: "a space between layer names, or the end of the string".into(),
            }));
        }
        words.push(word);
    }
    Ok(words)
}

/// A ProxylessNAS architecture: one choice per searchable layer, in network order (stage by
/// stage). The fixed stem, first block and feature-mix layers are not listed.
///
/// Serialized (serde) as its architecture string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxylessArch {
    /// The choice of each searchable layer.
    pub layers: Vec<MbConvChoice>,
}

impl ProxylessArch {
    /// An architecture from its layer choices.
    pub fn new(layers: Vec<MbConvChoice>) -> Self {
        Self { layers }
    }
}

impl fmt::Display for ProxylessArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.layers.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl FromStr for ProxylessArch {
    type Err = ParseError;

    /// Reads any number of layer names (no space configuration is known here; use
    /// [`TextFormat::parse`] of a [`ProxylessSpace`] to also check the count and the choices).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let words = chain_words(s, FORMAT)?;
        let layers = words
            .iter()
            .map(|&(w, pos)| {
                MbConvChoice::from_name(w).ok_or_else(|| {
                    ParseError::new(
                        FORMAT,
                        ParseErrorKind::UnknownOp {
                            known: default_names(),
                        },
                        pos,
                        w,
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ProxylessArch { layers })
    }
}

impl TryFrom<String> for ProxylessArch {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<ProxylessArch> for String {
    fn from(a: ProxylessArch) -> String {
        a.to_string()
    }
}

/// One stage of the backbone: `depth` layers of `width` output channels; the first layer has
/// stride `stride`, the others stride 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stage {
    /// Output channels of every layer of the stage.
    pub width: usize,
    /// Number of searchable layers.
    pub depth: usize,
    /// Stride of the first layer.
    pub stride: usize,
}

/// The configuration of a [`ProxylessSpace`]. [`Default`] is the paper's ImageNet setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxylessConfig {
    /// Output channels of the 3x3 stem convolution (32).
    pub stem_channels: usize,
    /// Stride of the stem convolution (2).
    pub stem_stride: usize,
    /// Output channels of the fixed first block, a `3x3_MBConv1` with stride 1 (16).
    pub first_block_channels: usize,
    /// The searched stages (widths 24, 40, 80, 96, 192, 320; depths 4, 4, 4, 4, 4, 1; strides
    /// 2, 2, 2, 1, 2, 1).
    pub stages: Vec<Stage>,
    /// Candidate depthwise kernel sizes (3, 5, 7).
    pub kernels: Vec<u8>,
    /// Candidate expansion ratios (3, 6).
    pub expansions: Vec<u8>,
    /// Whether layers with stride 1 and equal input and output widths may be `zero` (true).
    pub allow_zero: bool,
    /// Output channels of the final 1x1 feature-mix convolution (1280).
    pub feature_mix_channels: usize,
}

impl Default for ProxylessConfig {
    /// The ImageNet search setting of `search/imagenet_arch_search.py` (width multiplier 1).
    fn default() -> Self {
        let stage = |width, depth, stride| Stage {
            width,
            depth,
            stride,
        };
        Self {
            stem_channels: 32,
            stem_stride: 2,
            first_block_channels: 16,
            stages: vec![
                stage(24, 4, 2),
                stage(40, 4, 2),
                stage(80, 4, 2),
                stage(96, 4, 1),
                stage(192, 4, 2),
                stage(320, 1, 1),
            ],
            kernels: vec![3, 5, 7],
            expansions: vec![3, 6],
            allow_zero: true,
            feature_mix_channels: 1280,
        }
    }
}

impl ProxylessConfig {
    /// A CIFAR-style variant of the ImageNet setting for 32x32 inputs: the same stages and
    /// choices, but a stride-1 stem and a stride-1 first stage, so the network downsamples by 8
    /// instead of 32. This is our adaptation, not a setting of the paper (whose CIFAR-10
    /// experiments use a different, tree-structured space).
    pub fn cifar() -> Self {
        let mut stages = Self::default().stages;
        stages[0].stride = 1;
        Self {
            stem_stride: 1,
            stages,
            ..Self::default()
        }
    }
}

/// One searchable layer of the network, as `nas-supernet` needs it to build the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProxylessLayer {
    /// The stage (0-based).
    pub stage: usize,
    /// Position within the stage (0-based).
    pub index: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride of the depthwise convolution.
    pub stride: usize,
    /// Stride 1 and `in_channels == out_channels`: the layer has an identity shortcut (the
    /// block computes `x + op(x)`), and may be `zero` when the space allows it.
    pub identity_shaped: bool,
    /// The layer may be `zero` (it is identity-shaped and the space allows zero).
    pub skippable: bool,
}

/// The ProxylessNAS space (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProxylessConfig", into = "ProxylessConfig")]
pub struct ProxylessSpace {
    config: ProxylessConfig,
    layers: Vec<ProxylessLayer>,
    ops: Vec<MbConvChoice>,
}

impl Default for ProxylessSpace {
    /// The paper's ImageNet space: 21 searchable layers, 6 MBConv choices, `zero` on 15 layers.
    fn default() -> Self {
        Self::build(ProxylessConfig::default())
    }
}

impl ProxylessSpace {
    /// A space from a configuration. Fails with [`SpaceError::InvalidConfig`] naming the field
    /// when a channel count, depth or stride is 0, when there are no stages, or when `kernels`
    /// or `expansions` is empty, has a duplicate, a 0, or (kernels) an even size.
    pub fn new(config: ProxylessConfig) -> Result<Self, SpaceError> {
        let err = |field, reason: &str| Err(SpaceError::config(SPACE, field, reason));
        if config.stem_channels == 0 {
            return err("stem_channels", "must be positive");
        }
        if config.stem_stride == 0 {
            return err("stem_stride", "must be positive");
        }
        if config.first_block_channels == 0 {
            return err("first_block_channels", "must be positive");
        }
        if config.feature_mix_channels == 0 {
            return err("feature_mix_channels", "must be positive");
        }
        if config.stages.is_empty() {
            return err("stages", "must not be empty");
        }
        for (i, s) in config.stages.iter().enumerate() {
            if s.width == 0 || s.depth == 0 || s.stride == 0 {
                return Err(SpaceError::config(
                    SPACE,
                    "stages",
                    format!("stage {i} has a zero width, depth or stride: {s:?}"),
                ));
            }
        }
        check_list("kernels", &config.kernels)?;
        if let Some(k) = config.kernels.iter().find(|&&k| k % 2 == 0) {
            return Err(SpaceError::config(
                SPACE,
                "kernels",
                format!("kernel size {k} is even; kernel sizes must be odd"),
            ));
        }
        check_list("expansions", &config.expansions)?;
        Ok(Self::build(config))
    }

    /// The CIFAR-style space of [`ProxylessConfig::cifar`].
    pub fn cifar() -> Self {
        Self::build(ProxylessConfig::cifar())
    }

    fn build(config: ProxylessConfig) -> Self {
        let mut layers = Vec::new();
        let mut input = config.first_block_channels;
        for (stage, s) in config.stages.iter().enumerate() {
            for index in 0..s.depth {
                let stride = if index == 0 { s.stride } else { 1 };
                let identity_shaped = stride == 1 && input == s.width;
                layers.push(ProxylessLayer {
                    stage,
                    index,
                    in_channels: input,
                    out_channels: s.width,
                    stride,
                    identity_shaped,
                    skippable: identity_shaped && config.allow_zero,
                });
                input = s.width;
            }
        }
        let ops = config
            .kernels
            .iter()
            .flat_map(|&k| {
                config
                    .expansions
                    .iter()
                    .map(move |&e| MbConvChoice::mb_conv(k, e))
            })
            .collect();
        Self {
            config,
            layers,
            ops,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxylessConfig {
        &self.config
    }

    /// Every searchable layer, in network order: stage, channels, stride, and whether it may be
    /// skipped.
    pub fn layers(&self) -> &[ProxylessLayer] {
        &self.layers
    }

    /// The number of searchable layers (21 by default).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The MBConv choices every layer offers, in the code's order (kernel-major:
    /// `3x3_MBConv3, 3x3_MBConv6, 5x5_MBConv3, ...`).
    pub fn ops(&self) -> &[MbConvChoice] {
        &self.ops
    }

    /// The choices of layer `layer`: [`ProxylessSpace::ops`], then `Zero` if the layer is
    /// skippable (the code appends `'Zero'` last). Empty for a layer that does not exist.
    pub fn layer_choices(&self, layer: usize) -> Vec<MbConvChoice> {
        match self.layers.get(layer) {
            None => Vec::new(),
            Some(l) => {
                let mut c = self.ops.clone();
                if l.skippable {
                    c.push(MbConvChoice::Zero);
                }
                c
            }
        }
    }

    fn radices(&self) -> Vec<u128> {
        self.layers
            .iter()
            .map(|l| (self.ops.len() + usize::from(l.skippable)) as u128)
            .collect()
    }

    /// Position of `choice` among the choices of `layer`, if it is one of them.
    fn choice_pos(&self, layer: usize, choice: MbConvChoice) -> Option<usize> {
        let l = self.layers.get(layer)?;
        match choice {
            MbConvChoice::Zero => l.skippable.then_some(self.ops.len()),
            op => self.ops.iter().position(|&o| o == op),
        }
    }

    fn check_layer(&self, layer: usize, choice: MbConvChoice) -> Result<(), String> {
        if self.choice_pos(layer, choice).is_some() {
            return Ok(());
        }
        let l = &self.layers[layer];
        Err(match choice {
            MbConvChoice::Zero => format!(
                "layer {layer} (stage {}, position {}: {}->{} channels, stride {}) cannot be `zero`: \
                 only layers with stride 1 and equal input and output channels can be skipped{}",
                l.stage,
                l.index,
                l.in_channels,
                l.out_channels,
                l.stride,
                if self.config.allow_zero {
                    ""
                } else {
                    ", and this space does not allow zero"
                }
            ),
            op => format!(
                "layer {layer} uses `{op}`, which this space excludes (choices: {})",
                self.ops
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// The segments of the network that canonicalization works on: each starts at a layer that
    /// is not identity-shaped (or at the network's first layer) and runs up to the next one.
    fn segments(&self) -> Vec<std::ops::Range<usize>> {
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            match out.last_mut() {
                Some(seg) if l.identity_shaped => seg.end = i + 1,
                _ => out.push(i..i + 1),
            }
        }
        out
    }
}

fn check_list(field: &'static str, values: &[u8]) -> Result<(), SpaceError> {
    if values.is_empty() {
        return Err(SpaceError::config(SPACE, field, "must not be empty"));
    }
    if values.contains(&0) {
        return Err(SpaceError::config(SPACE, field, "must not contain 0"));
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != values.len() {
        return Err(SpaceError::config(
            SPACE,
            field,
            "contains a duplicate value",
        ));
    }
    Ok(())
}

impl SearchSpace for ProxylessSpace {
    type Arch = ProxylessArch;

    fn name(&self) -> &str {
        SPACE
    }

    /// Uniform over the space: each layer draws uniformly among its own choices.
    fn sample(&self, rng: &mut dyn Rng) -> ProxylessArch {
        let layers = (0..self.layers.len())
            .map(|i| choose(rng, &self.layer_choices(i)))
            .collect();
        ProxylessArch { layers }
    }

    fn validate(&self, arch: &ProxylessArch) -> Result<(), SpaceError> {
        if arch.layers.len() != self.layers.len() {
            return Err(SpaceError::invalid(
                SPACE,
                format!(
                    "expected {} layers, found {}",
                    self.layers.len(),
                    arch.layers.len()
                ),
            ));
        }
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
        let free: Vec<usize> = self
            .radices()
            .iter()
            .enumerate()
            .filter(|&(_, &r)| r > 1)
            .map(|(i, _)| i)
            .collect();
        if free.is_empty() {
            return Err(SpaceError::NoNeighbor {
                space: SPACE.into(),
            });
        }
        let i = choose(rng, &free);
        let others: Vec<MbConvChoice> = self
            .layer_choices(i)
            .into_iter()
            .filter(|&c| c != arch.layers[i])
            .collect();
        let mut child = arch.clone();
        child.layers[i] = choose(rng, &others);
        Ok(child)
    }
}

impl Neighborhood for ProxylessSpace {
    /// Layer by layer, every other choice of that layer (in [`ProxylessSpace::layer_choices`]
    /// order).
    fn neighbors(&self, arch: &ProxylessArch) -> Result<Vec<ProxylessArch>, SpaceError> {
        self.validate(arch)?;
        let mut out = Vec::new();
        for i in 0..self.layers.len() {
            for c in self.layer_choices(i) {
                if c != arch.layers[i] {
                    let mut n = arch.clone();
                    n.layers[i] = c;
                    out.push(n);
                }
            }
        }
        if out.is_empty() {
            return Err(SpaceError::NoNeighbor {
                space: SPACE.into(),
            });
        }
        Ok(out)
    }
}

impl Encode for ProxylessSpace {
    /// One-hot per layer, layer-major. Every layer has the same number of slots: one per MBConv
    /// choice ([`ProxylessSpace::ops`] order), plus a last `zero` slot when the space allows
    /// zero (never set on a layer that cannot be skipped). Default length 21 × 7 = 147.
    fn encoding_len(&self) -> usize {
        self.layers.len() * self.slots()
    }

    fn encode(&self, arch: &ProxylessArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let n = self.slots();
        let mut v = vec![0.0; self.layers.len() * n];
        for (i, &c) in arch.layers.iter().enumerate() {
            if let Some(p) = self.choice_pos(i, c) {
                v[i * n + p] = 1.0;
            }
        }
        Ok(v)
    }
}

impl ProxylessSpace {
    fn slots(&self) -> usize {
        self.ops.len() + usize::from(self.config.allow_zero)
    }
}

impl Enumerable for ProxylessSpace {
    /// The product over layers of each layer's number of choices (6 or 7 by default).
    /// Index = mixed radix over layers, layer 0 the least significant digit, each digit the
    /// position in [`ProxylessSpace::layer_choices`]. Saturates at `u128::MAX` for configurations
    /// too large to count (far beyond any practical setting).
    fn size(&self) -> u128 {
        radix::size(&self.radices()).unwrap_or(u128::MAX)
    }

    fn arch_at(&self, index: u128) -> Result<ProxylessArch, SpaceError> {
        SpaceError::check_index(SPACE, index, self.size())?;
        let digits = radix::decode(index, &self.radices());
        let layers = digits
            .iter()
            .enumerate()
            .map(|(i, &d)| self.layer_choices(i)[d as usize])
            .collect();
        Ok(ProxylessArch { layers })
    }

    fn index_of(&self, arch: &ProxylessArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        let digits: Vec<u128> = arch
            .layers
            .iter()
            .enumerate()
            .map(|(i, &c)| self.choice_pos(i, c).unwrap_or(0) as u128)
            .collect();
        Ok(radix::encode(&digits, &self.radices()))
    }
}

impl Canonicalize for ProxylessSpace {
    /// Skipped layers removed, segment by segment.
    ///
    /// A skippable layer computes `x + op(x)` with equal input and output shapes, or the
    /// identity when it is `zero`. The layers from one layer that changes the shape (stride ≠ 1
    /// or a width change: with the defaults, the first layer of each stage) up to the next
    /// such layer form a *segment*, whose skippable layers all share one shape. Within a segment
    /// a `zero` layer can therefore be moved anywhere among the skippable layers without
    /// changing the function family: a stage `[A, zero, B, C]` is the same network as
    /// `[A, B, zero, C]` or `[A, B, C, zero]`. The canonical form lists, per segment, the
    /// non-zero layers in order (the first, shape-changing layer keeps its place), segments
    /// joined by ` | `; with the defaults a segment is a stage, e.g.
    /// `5x5_MBConv3 | 7x7_MBConv3 3x3_MBConv3 | ...`. An empty segment (only possible when the
    /// network's first searchable layer is itself skippable and every layer of the segment is
    /// zero) prints as `-`. The order of non-zero layers matters, as they differ in function.
    fn canonical(&self, arch: &ProxylessArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        let segs: Vec<String> = self
            .segments()
            .into_iter()
            .map(|r| {
                let ops: Vec<String> = arch.layers[r]
                    .iter()
                    .filter(|c| !c.is_zero())
                    .map(|c| c.to_string())
                    .collect();
                if ops.is_empty() {
                    "-".to_string()
                } else {
                    ops.join(" ")
                }
            })
            .collect();
        Ok(CanonicalForm(segs.join(" | ")))
    }
}

impl TextFormat for ProxylessSpace {
    fn to_text(&self, arch: &ProxylessArch) -> String {
        arch.to_string()
    }

    /// Parses layer names separated by whitespace and checks them against this space: an
    /// unknown name or an MBConv the space excludes is [`ParseErrorKind::UnknownOp`] (listing
    /// this space's names), `zero` on a layer that cannot be skipped is
    /// [`ParseErrorKind::Invalid`], too few or too many layer names is
    /// [`ParseErrorKind::WrongCount`], and text after the last layer that is not a layer name
    /// is [`ParseErrorKind::TrailingInput`].
    fn parse(&self, text: &str) -> Result<ProxylessArch, SpaceError> {
        let words = chain_words(text, FORMAT)?;
        let n = self.layers.len();
        let known = || {
            let mut k: Vec<String> = self.ops.iter().map(|o| o.to_string()).collect();
            if self.config.allow_zero {
                k.push("zero".into());
            }
            k
        };
        let mut layers = Vec::with_capacity(n);
        for (i, &(w, pos)) in words.iter().take(n).enumerate() {
            let unknown =
                || ParseError::new(FORMAT, ParseErrorKind::UnknownOp { known: known() }, pos, w);
            let c = MbConvChoice::from_name(w).ok_or_else(unknown)?;
            if !c.is_zero() && !self.ops.contains(&c) {
                return Err(unknown().into());
            }
            self.check_layer(i, c).map_err(|reason| {
                ParseError::new(FORMAT, ParseErrorKind::Invalid { reason }, pos, w)
            })?;
            layers.push(c);
        }
        if words.len() < n {
            return Err(ParseError::new(
                FORMAT,
                ParseErrorKind::WrongCount {
                    what: "layers".into(),
                    expected: n,
                    found: words.len(),
                },
                text.len(),
                "",
            )
            .into());
        }
        if let Some(&(w, pos)) = words.get(n) {
            let kind = if MbConvChoice::from_name(w).is_some() {
                ParseErrorKind::WrongCount {
                    what: "layers".into(),
                    expected: n,
                    found: words.len(),
                }
            } else {
                ParseErrorKind::TrailingInput
            };
            return Err(ParseError::new(FORMAT, kind, pos, w).into());
        }
        Ok(ProxylessArch { layers })
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

/// `input → labels... → output` as a chain graph.
pub(crate) fn chain_graph(ops: impl Iterator<Item = String>) -> ArchGraph {
    let mut labels = vec!["input".to_string()];
    labels.extend(ops);
    labels.push("output".into());
    let edges = (1..labels.len()).map(|i| (i - 1, i)).collect();
    ArchGraph { labels, edges }
}

/// Serialized as its configuration, so a saved space can be reloaded; loading validates it.
impl From<ProxylessSpace> for ProxylessConfig {
    fn from(space: ProxylessSpace) -> Self {
        space.config
    }
}

impl TryFrom<ProxylessConfig> for ProxylessSpace {
    type Error = SpaceError;
    fn try_from(config: ProxylessConfig) -> Result<Self, SpaceError> {
        ProxylessSpace::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;

    fn space() -> ProxylessSpace {
        ProxylessSpace::default()
    }

    #[test]
    fn laws_hold() {
        let s = space();
        laws::check_sample(&s, 1, 200).unwrap();
        laws::check_serde(&s, 2, 200).unwrap();
        laws::check_mutate(&s, 3, 200).unwrap();
        laws::check_neighbors(&s, 4, 50).unwrap();
        laws::check_text(&s, 5, 200).unwrap();
        laws::check_encode(&s, 6, 50).unwrap();
        laws::check_enumerable(&s, 7, 200).unwrap();
        laws::check_canonical(&s, 8, 50).unwrap();
        laws::check_graph(&s, 9, 50).unwrap();
    }

    #[test]
    fn other_configurations_keep_the_laws() {
        let cifar = ProxylessSpace::cifar();
        assert_eq!(cifar.num_layers(), 21);
        assert_eq!(cifar.layers()[0].stride, 1);
        laws::check_sample(&cifar, 1, 50).unwrap();
        laws::check_enumerable(&cifar, 1, 50).unwrap();
        laws::check_neighbors(&cifar, 1, 20).unwrap();

        let no_zero = ProxylessSpace::new(ProxylessConfig {
            allow_zero: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(no_zero.size(), 6u128.pow(21));
        assert_eq!(no_zero.encoding_len(), 21 * 6);
        laws::check_mutate(&no_zero, 2, 50).unwrap();
        laws::check_enumerable(&no_zero, 2, 50).unwrap();
        assert!(no_zero.parse(PROXYLESS_GPU).is_err());

        // A single choice per layer: nothing to mutate.
        let single = ProxylessSpace::new(ProxylessConfig {
            stages: vec![Stage {
                width: 24,
                depth: 2,
                stride: 2,
            }],
            kernels: vec![3],
            expansions: vec![6],
            allow_zero: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(single.size(), 1);
        let only = single.arch_at(0).unwrap();
        assert!(matches!(
            single.mutate(&only, &mut rand::rngs::ChaCha8Rng::seed_from_u64(0)),
            Err(SpaceError::NoNeighbor { .. })
        ));
        assert!(matches!(
            single.neighbors(&only),
            Err(SpaceError::NoNeighbor { .. })
        ));
    }

    use rand::SeedableRng;

    #[test]
    fn default_layers_match_the_search_code() {
        let s = space();
        let layers = s.layers();
        assert_eq!(layers.len(), 21);
        // First layer of each stage: (in, out, stride), never skippable.
        let firsts: Vec<_> = layers
            .iter()
            .filter(|l| l.index == 0)
            .map(|l| {
                (
                    l.stage,
                    l.in_channels,
                    l.out_channels,
                    l.stride,
                    l.skippable,
                )
            })
            .collect();
        assert_eq!(
            firsts,
            vec![
                (0, 16, 24, 2, false),
                (1, 24, 40, 2, false),
                (2, 40, 80, 2, false),
                (3, 80, 96, 1, false),
                (4, 96, 192, 2, false),
                (5, 192, 320, 1, false),
            ]
        );
        assert!(
            layers
                .iter()
                .filter(|l| l.index > 0)
                .all(|l| l.skippable && l.stride == 1 && l.in_channels == l.out_channels)
        );
        assert_eq!(layers.iter().filter(|l| l.skippable).count(), 15);
        assert_eq!(
            s.ops().iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            [
                "3x3_MBConv3",
                "3x3_MBConv6",
                "5x5_MBConv3",
                "5x5_MBConv6",
                "7x7_MBConv3",
                "7x7_MBConv6"
            ]
        );
        assert_eq!(s.layer_choices(1).last(), Some(&MbConvChoice::Zero));
        assert_eq!(s.layer_choices(0).len(), 6);
        assert!(s.layer_choices(21).is_empty());
        assert_eq!(s.size(), 6u128.pow(6) * 7u128.pow(15));
        assert_eq!(s.encoding_len(), 147);
        let c = s.config();
        assert_eq!(
            (
                c.stem_channels,
                c.stem_stride,
                c.first_block_channels,
                c.feature_mix_channels
            ),
            (32, 2, 16, 1280)
        );
    }

    #[test]
    fn published_architectures_parse_and_round_trip() {
        let s = space();
        for text in [PROXYLESS_GPU, PROXYLESS_MOBILE, PROXYLESS_CPU] {
            let a = s.parse(text).unwrap();
            assert_eq!(s.to_text(&a), text);
            assert_eq!(a.to_string().parse::<ProxylessArch>().unwrap(), a);
            let i = s.index_of(&a).unwrap();
            assert_eq!(s.arch_at(i).unwrap(), a);
        }
        let gpu = s.parse(PROXYLESS_GPU).unwrap();
        assert_eq!(gpu.layers.iter().filter(|c| c.is_zero()).count(), 8);
        assert_eq!(gpu.layers[20], MbConvChoice::mb_conv(7, 6));
        assert_eq!(
            s.canonical(&gpu).unwrap().as_str(),
            "5x5_MBConv3 | 7x7_MBConv3 3x3_MBConv3 | 7x7_MBConv6 5x5_MBConv3 | \
             5x5_MBConv6 3x3_MBConv3 5x5_MBConv3 | 7x7_MBConv6 7x7_MBConv6 7x7_MBConv6 5x5_MBConv6 | 7x7_MBConv6"
        );
        let g = s.graph(&gpu).unwrap();
        assert_eq!(g.labels.len(), 21 - 8 + 2);
        assert_eq!(g.labels[1], "5x5_MBConv3");
        assert_eq!(g.labels[2], "7x7_MBConv3");
        assert_eq!(g.edges.len(), g.labels.len() - 1);
        let mobile = s.parse(PROXYLESS_MOBILE).unwrap();
        assert_eq!(mobile.layers.iter().filter(|c| c.is_zero()).count(), 2);
        let cpu = s.parse(PROXYLESS_CPU).unwrap();
        assert_eq!(cpu.layers[9], MbConvChoice::Zero);
    }

    #[test]
    fn canonical_form_moves_zeros_within_a_stage_only() {
        let s = space();
        let gpu = s.parse(PROXYLESS_GPU).unwrap();
        // Stage 1 (layers 4..8) is [7x7_MBConv3, zero, zero, 3x3_MBConv3]: moving the zeros to
        // the end of the stage is the same network.
        let mut moved = gpu.clone();
        moved.layers[5] = MbConvChoice::mb_conv(3, 3);
        moved.layers[7] = MbConvChoice::Zero;
        assert_ne!(moved, gpu);
        assert_eq!(s.canonical(&moved).unwrap(), s.canonical(&gpu).unwrap());
        assert_eq!(s.graph(&moved).unwrap(), s.graph(&gpu).unwrap());
        // Reordering two different non-zero layers is a different network.
        let mut swapped = gpu.clone();
        swapped.layers.swap(16, 19);
        assert_ne!(s.canonical(&swapped).unwrap(), s.canonical(&gpu).unwrap());
        // Moving a layer to another stage is a different network.
        let mut other = gpu.clone();
        other.layers[7] = MbConvChoice::Zero;
        other.layers[1] = MbConvChoice::mb_conv(3, 3);
        assert_ne!(s.canonical(&other).unwrap(), s.canonical(&gpu).unwrap());
        // Changing a choice is a different network.
        let mut changed = gpu.clone();
        changed.layers[0] = MbConvChoice::mb_conv(3, 3);
        assert_ne!(s.canonical(&changed).unwrap(), s.canonical(&gpu).unwrap());
    }

    #[test]
    fn canonical_merges_stages_when_the_boundary_keeps_the_shape() {
        // Two stages of width 24 joined with stride 1: the second stage's first layer is
        // identity-shaped, so a zero may move across the boundary.
        let s = ProxylessSpace::new(ProxylessConfig {
            stages: vec![
                Stage {
                    width: 24,
                    depth: 2,
                    stride: 2,
                },
                Stage {
                    width: 24,
                    depth: 2,
                    stride: 1,
                },
            ],
            ..Default::default()
        })
        .unwrap();
        assert!(s.layers()[2].skippable);
        let a = s.parse("3x3_MBConv3 zero 5x5_MBConv3 7x7_MBConv6").unwrap();
        let b = s.parse("3x3_MBConv3 5x5_MBConv3 7x7_MBConv6 zero").unwrap();
        assert_eq!(s.canonical(&a).unwrap(), s.canonical(&b).unwrap());
        assert_eq!(
            s.canonical(&a).unwrap().as_str(),
            "3x3_MBConv3 5x5_MBConv3 7x7_MBConv6"
        );
        // A skippable first searchable layer can leave an empty leading segment.
        let s = ProxylessSpace::new(ProxylessConfig {
            stages: vec![
                Stage {
                    width: 16,
                    depth: 2,
                    stride: 1,
                },
                Stage {
                    width: 24,
                    depth: 1,
                    stride: 2,
                },
            ],
            ..Default::default()
        })
        .unwrap();
        let a = s.parse("zero zero 3x3_MBConv3").unwrap();
        assert_eq!(s.canonical(&a).unwrap().as_str(), "- | 3x3_MBConv3");
    }

    #[test]
    fn choice_names() {
        assert_eq!("Zero".parse::<MbConvChoice>().unwrap(), MbConvChoice::Zero);
        assert_eq!("zero".parse::<MbConvChoice>().unwrap(), MbConvChoice::Zero);
        assert_eq!(MbConvChoice::Zero.to_string(), "zero");
        let c: MbConvChoice = "7x7_MBConv3".parse().unwrap();
        assert_eq!((c.kernel(), c.expansion()), (Some(7), Some(3)));
        assert_eq!(
            (MbConvChoice::Zero.kernel(), MbConvChoice::Zero.expansion()),
            (None, None)
        );
        assert_eq!(c.name(), "7x7_MBConv3");
        for bad in [
            "3x5_MBConv3",
            "3x3_MBConv",
            "x3_MBConv3",
            "3x3_MBConv0",
            "0x0_MBConv3",
            "3x3_MBConv999",
            "ZERO",
        ] {
            let e = bad.parse::<MbConvChoice>().unwrap_err();
            assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }), "{bad}");
            assert_eq!(e.token, bad);
        }
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"7x7_MBConv3\"");
        // "Zero" is read but printed as "zero".
        let a: ProxylessArch = "3x3_MBConv3 Zero".parse().unwrap();
        assert_eq!(a.to_string(), "3x3_MBConv3 zero");
    }

    #[test]
    fn serde_uses_the_text() {
        let s = space();
        let a = s.parse(PROXYLESS_MOBILE).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!("\"{PROXYLESS_MOBILE}\"")
        );
        let r: Result<ProxylessArch, _> = serde_json::from_str("\"3x3_MBConv3 bogus\"");
        assert!(r.unwrap_err().to_string().contains("bogus"));
    }

    fn parse_err(text: &str) -> ParseError {
        match space().parse(text) {
            Err(SpaceError::Parse(e)) => e,
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn unknown_op_names_token_and_position() {
        let text = PROXYLESS_GPU.replacen("7x7_MBConv3", "sep_conv_3x3", 1);
        let e = parse_err(&text);
        let pos = PROXYLESS_GPU.find("7x7_MBConv3").unwrap();
        assert_eq!((e.position, e.token.as_str()), (pos, "sep_conv_3x3"));
        match &e.kind {
            ParseErrorKind::UnknownOp { known } => {
                assert_eq!(known.len(), 7);
                assert!(known.contains(&"zero".to_string()));
            }
            k => panic!("{k:?}"),
        }
        // A well-formed MBConv that the space excludes is unknown to it too.
        let e = parse_err(&PROXYLESS_GPU.replacen("5x5_MBConv3", "9x9_MBConv3", 1));
        assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
        assert_eq!((e.position, e.token.as_str()), (0, "9x9_MBConv3"));
        // Arch-level FromStr also reports unknown names.
        let e = "3x3_MBConv3 conv".parse::<ProxylessArch>().unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
        assert_eq!((e.position, e.token.as_str()), (12, "conv"));
    }

    #[test]
    fn zero_on_a_shape_changing_layer_is_invalid() {
        let e = parse_err(&PROXYLESS_GPU.replacen("5x5_MBConv3", "zero", 1));
        assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
        assert_eq!((e.position, e.token.as_str()), (0, "zero"));
        assert!(e.to_string().contains("cannot be `zero`"));
        // The first layer of stage 3 (80 -> 96, stride 1) cannot be skipped either.
        let mut a = space().parse(PROXYLESS_GPU).unwrap();
        a.layers[12] = MbConvChoice::Zero;
        assert!(matches!(
            space().validate(&a),
            Err(SpaceError::InvalidArch { .. })
        ));
    }

    #[test]
    fn wrong_count_names_position() {
        let short = PROXYLESS_GPU.rsplit_once(' ').unwrap().0;
        let e = parse_err(short);
        assert_eq!(
            e.kind,
            ParseErrorKind::WrongCount {
                what: "layers".into(),
                expected: 21,
                found: 20
            }
        );
        assert_eq!((e.position, e.token.as_str()), (short.len(), ""));
        let long = format!("{PROXYLESS_GPU} 3x3_MBConv3 zero");
        let e = parse_err(&long);
        assert_eq!(
            e.kind,
            ParseErrorKind::WrongCount {
                what: "layers".into(),
                expected: 21,
                found: 23
            }
        );
        assert_eq!(
            (e.position, e.token.as_str()),
            (PROXYLESS_GPU.len() + 1, "3x3_MBConv3")
        );
        let mut a = space().parse(PROXYLESS_GPU).unwrap();
        a.layers.pop();
        assert!(matches!(
            space().validate(&a),
            Err(SpaceError::InvalidArch { .. })
        ));
    }

    #[test]
    fn trailing_text_is_reported() {
        let e = parse_err(&format!("{PROXYLESS_GPU} extra"));
        assert_eq!(e.kind, ParseErrorKind::TrailingInput);
        assert_eq!(
            (e.position, e.token.as_str()),
            (PROXYLESS_GPU.len() + 1, "extra")
        );
    }

    #[test]
    fn brackets_and_punctuation_are_not_part_of_the_format() {
        // The format has no brackets: an opening bracket is reported where it stands.
        let e = parse_err(&format!("({PROXYLESS_GPU})"));
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }), "{e}");
        assert_eq!((e.position, e.token.as_str()), (0, "("));
        // A closing bracket glued to the last name.
        let e = parse_err(&format!("{PROXYLESS_GPU})"));
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
        assert_eq!((e.position, e.token.as_str()), (PROXYLESS_GPU.len(), ")"));
        // Comma-separated names.
        let e = parse_err("3x3_MBConv3, zero");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
        assert_eq!((e.position, e.token.as_str()), (11, ","));
    }

    #[test]
    fn empty_input_is_reported() {
        for text in ["", "   \n"] {
            let e = parse_err(text);
            assert_eq!(
                (e.kind, e.position, e.token.as_str()),
                (ParseErrorKind::Empty, 0, "")
            );
        }
        assert_eq!(
            "".parse::<ProxylessArch>().unwrap_err().kind,
            ParseErrorKind::Empty
        );
    }

    #[test]
    fn whitespace_is_flexible() {
        let s = space();
        let spaced = format!("  {}\n", PROXYLESS_GPU.replace(' ', " \t "));
        assert_eq!(s.parse(&spaced).unwrap(), s.parse(PROXYLESS_GPU).unwrap());
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let field = |c: ProxylessConfig| match ProxylessSpace::new(c) {
            Err(SpaceError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let d = ProxylessConfig::default;
        assert_eq!(
            field(ProxylessConfig {
                stem_channels: 0,
                ..d()
            }),
            "stem_channels"
        );
        assert_eq!(
            field(ProxylessConfig {
                stem_stride: 0,
                ..d()
            }),
            "stem_stride"
        );
        assert_eq!(
            field(ProxylessConfig {
                first_block_channels: 0,
                ..d()
            }),
            "first_block_channels"
        );
        assert_eq!(
            field(ProxylessConfig {
                feature_mix_channels: 0,
                ..d()
            }),
            "feature_mix_channels"
        );
        assert_eq!(
            field(ProxylessConfig {
                stages: vec![],
                ..d()
            }),
            "stages"
        );
        for bad in [
            Stage {
                width: 0,
                depth: 1,
                stride: 1,
            },
            Stage {
                width: 8,
                depth: 0,
                stride: 1,
            },
            Stage {
                width: 8,
                depth: 1,
                stride: 0,
            },
        ] {
            assert_eq!(
                field(ProxylessConfig {
                    stages: vec![bad],
                    ..d()
                }),
                "stages"
            );
        }
        assert_eq!(
            field(ProxylessConfig {
                kernels: vec![],
                ..d()
            }),
            "kernels"
        );
        assert_eq!(
            field(ProxylessConfig {
                kernels: vec![3, 4],
                ..d()
            }),
            "kernels"
        );
        assert_eq!(
            field(ProxylessConfig {
                kernels: vec![3, 3],
                ..d()
            }),
            "kernels"
        );
        assert_eq!(
            field(ProxylessConfig {
                kernels: vec![0],
                ..d()
            }),
            "kernels"
        );
        assert_eq!(
            field(ProxylessConfig {
                expansions: vec![],
                ..d()
            }),
            "expansions"
        );
        assert_eq!(
            field(ProxylessConfig {
                expansions: vec![6, 6],
                ..d()
            }),
            "expansions"
        );
        assert_eq!(
            field(ProxylessConfig {
                expansions: vec![0, 6],
                ..d()
            }),
            "expansions"
        );
        assert_eq!(ProxylessSpace::new(d()).unwrap(), ProxylessSpace::default());
    }

    #[test]
    fn encoding_is_one_hot_per_layer() {
        let s = space();
        let gpu = s.parse(PROXYLESS_GPU).unwrap();
        let e = s.encode(&gpu).unwrap();
        for (i, chunk) in e.chunks(7).enumerate() {
            assert_eq!(chunk.iter().sum::<f32>(), 1.0, "layer {i}");
        }
        assert_eq!(e[0..7], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]); // 5x5_MBConv3
        assert_eq!(e[7 + 6], 1.0); // layer 1 is zero
    }

    #[test]
    fn enumeration_order_is_mixed_radix() {
        let s = space();
        let first = s.arch_at(0).unwrap();
        assert!(
            first
                .layers
                .iter()
                .all(|&c| c == MbConvChoice::mb_conv(3, 3))
        );
        let a1 = s.arch_at(1).unwrap();
        assert_eq!(a1.layers[0], MbConvChoice::mb_conv(3, 6));
        // Layer 0 has radix 6, so index 6 moves layer 1.
        let a6 = s.arch_at(6).unwrap();
        assert_eq!(a6.layers[0], MbConvChoice::mb_conv(3, 3));
        assert_eq!(a6.layers[1], MbConvChoice::mb_conv(3, 6));
        let last = s.arch_at(s.size() - 1).unwrap();
        assert_eq!(last.layers[0], MbConvChoice::mb_conv(7, 6));
        assert_eq!(last.layers[1], MbConvChoice::Zero);
        assert!(matches!(
            s.arch_at(s.size()),
            Err(SpaceError::IndexOutOfRange { .. })
        ));
    }

    #[test]
    fn neighbors_count() {
        let s = space();
        let gpu = s.parse(PROXYLESS_GPU).unwrap();
        assert_eq!(s.neighbors(&gpu).unwrap().len(), 6 * 5 + 15 * 6);
    }
}
