//! The ProxylessNAS layer choices, the architecture and the configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    pub(super) fn from_name(s: &str) -> Option<Self> {
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

/// The configuration of a [`ProxylessSpace`](super::ProxylessSpace). [`Default`] is the paper's ImageNet setting.
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
        let stages = [
            (24, 4, 2),
            (40, 4, 2),
            (80, 4, 2),
            (96, 4, 1),
            (192, 4, 2),
            (320, 1, 1),
        ];
        Self {
            stem_channels: 32,
            stem_stride: 2,
            first_block_channels: 16,
            stages: stages
                .map(|(width, depth, stride)| Stage {
                    width,
                    depth,
                    stride,
                })
                .to_vec(),
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
