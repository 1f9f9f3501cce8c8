//! The SPOS space: the block choices, the architecture, the configuration and the space.

use serde::{Deserialize, Serialize};

use super::{FORMAT, SPACE};
use crate::common::chain::Chain;
use crate::common::named_op;
use crate::error::SpaceError;

/// The block of one choice layer, in the code's `blockIndex` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SposChoice {
    /// `shufflenet_3x3`: a ShuffleNetV2 block with a 3x3 depthwise convolution (index 0).
    #[serde(rename = "shufflenet_3x3")]
    Shufflenet3x3,
    /// `shufflenet_5x5`: a ShuffleNetV2 block with a 5x5 depthwise convolution (index 1).
    #[serde(rename = "shufflenet_5x5")]
    Shufflenet5x5,
    /// `shufflenet_7x7`: a ShuffleNetV2 block with a 7x7 depthwise convolution (index 2).
    #[serde(rename = "shufflenet_7x7")]
    Shufflenet7x7,
    /// `xception`: the Xception-like ShuffleNetV2 block, three 3x3 depthwise convolutions
    /// (index 3).
    Xception,
}

impl SposChoice {
    /// The four choices in index order.
    pub const ALL: [SposChoice; 4] = [
        SposChoice::Shufflenet3x3,
        SposChoice::Shufflenet5x5,
        SposChoice::Shufflenet7x7,
        SposChoice::Xception,
    ];

    /// The name used in the text format.
    pub fn name(self) -> &'static str {
        match self {
            SposChoice::Shufflenet3x3 => "shufflenet_3x3",
            SposChoice::Shufflenet5x5 => "shufflenet_5x5",
            SposChoice::Shufflenet7x7 => "shufflenet_7x7",
            SposChoice::Xception => "xception",
        }
    }

    /// The repository's block index (0..4).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The choice with block index `index`, if `index < 4`.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// The depthwise kernel size (3 for `xception`, whose three depthwise convolutions are 3x3).
    pub fn kernel(self) -> usize {
        match self {
            SposChoice::Shufflenet3x3 | SposChoice::Xception => 3,
            SposChoice::Shufflenet5x5 => 5,
            SposChoice::Shufflenet7x7 => 7,
        }
    }

    pub(crate) fn table() -> [(&'static str, SposChoice); 4] {
        SposChoice::ALL.map(|c| (c.name(), c))
    }
}

named_op!(SposChoice, FORMAT);

/// An SPOS architecture: the block chosen in each choice layer, in network order.
///
/// Serialized (serde) as its architecture string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SposArch {
    /// One choice per layer.
    pub choices: Vec<SposChoice>,
}

impl SposArch {
    /// An architecture from its choices.
    pub fn new(choices: Vec<SposChoice>) -> Self {
        Self { choices }
    }

    /// From the repository's representation, a list of block indices in `0..4` (e.g.
    /// [`SPOS_SEARCHED`](super::SPOS_SEARCHED)). Fails with [`SpaceError::InvalidArch`] on an index of 4 or more.
    pub fn from_indices(indices: &[usize]) -> Result<Self, SpaceError> {
        let choices = indices
            .iter()
            .enumerate()
            .map(|(layer, &i)| {
                SposChoice::from_index(i).ok_or_else(|| {
                    SpaceError::invalid(
                        SPACE,
                        format!("layer {layer} has block index {i}; block indices are 0..=3"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { choices })
    }

    /// The repository's representation: the block index of each layer.
    pub fn to_indices(&self) -> Vec<usize> {
        self.choices.iter().map(|c| c.index()).collect()
    }
}

/// The configuration of a [`SposSpace`]. [`Default`] is the repository's supernet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SposConfig {
    /// Output channels of the 3x3 stride-2 stem convolution (`stage_out_channels[1]` = 16).
    pub stem_channels: usize,
    /// Number of choice layers per stage (`stage_repeats` = 4, 4, 8, 4).
    pub stage_repeats: Vec<usize>,
    /// Output channels of each stage (`stage_out_channels[2..6]` = 64, 160, 320, 640).
    pub stage_channels: Vec<usize>,
    /// Output channels of the last 1x1 convolution (`stage_out_channels[-1]` = 1024).
    pub last_channels: usize,
}

impl Default for SposConfig {
    fn default() -> Self {
        Self {
            stem_channels: 16,
            stage_repeats: vec![4, 4, 8, 4],
            stage_channels: vec![64, 160, 320, 640],
            last_channels: 1024,
        }
    }
}

/// One choice layer of the network, as `nas-supernet` needs it to build the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SposLayer {
    /// The stage (0-based).
    pub stage: usize,
    /// Position within the stage (0-based).
    pub index: usize,
    /// Channels of the block's input tensor. A stride-1 block splits them in half and runs its
    /// branch on one half (the code passes `inp = input_channel // 2`); a stride-2 block runs
    /// its projection and main branches on all of them.
    pub in_channels: usize,
    /// Channels of the block's output tensor.
    pub out_channels: usize,
    /// 2 for the first layer of each stage, else 1.
    pub stride: usize,
    /// Hidden channels of the main branch (`base_mid_channels = outp // 2`).
    pub mid_channels: usize,
}

/// The SPOS space (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SposConfig", into = "SposConfig")]
pub struct SposSpace {
    pub(super) config: SposConfig,
    layers: Vec<SposLayer>,
}

impl Default for SposSpace {
    /// The repository's supernet: 20 choice layers.
    fn default() -> Self {
        Self::build(SposConfig::default())
    }
}

impl SposSpace {
    /// A space from a configuration. Fails with [`SpaceError::InvalidConfig`] naming the field
    /// when there are no stages, `stage_repeats` and `stage_channels` differ in length, a repeat
    /// count or channel count is 0, a stage's channels are not a multiple of 4 (the code's
    /// `channel_shuffle` asserts it) or not larger than its input (a stride-2 block's main
    /// branch produces `out - in` channels).
    pub fn new(config: SposConfig) -> Result<Self, SpaceError> {
        let err = |field, reason: String| Err(SpaceError::config(SPACE, field, reason));
        if config.stem_channels == 0 {
            return err("stem_channels", "must be positive".into());
        }
        if config.last_channels == 0 {
            return err("last_channels", "must be positive".into());
        }
        if config.stage_repeats.is_empty() {
            return err("stage_repeats", "must not be empty".into());
        }
        if config.stage_repeats.len() != config.stage_channels.len() {
            return err(
                "stage_channels",
                format!(
                    "has {} entries but stage_repeats has {}; give one per stage",
                    config.stage_channels.len(),
                    config.stage_repeats.len()
                ),
            );
        }
        if let Some(i) = config.stage_repeats.iter().position(|&r| r == 0) {
            return err("stage_repeats", format!("stage {i} has 0 layers"));
        }
        let mut input = config.stem_channels;
        for (i, &c) in config.stage_channels.iter().enumerate() {
            if c == 0 || c % 4 != 0 {
                return err(
                    "stage_channels",
                    format!("stage {i} has {c} channels; a positive multiple of 4 is required"),
                );
            }
            if c <= input {
                return err(
                    "stage_channels",
                    format!("stage {i} has {c} channels, not more than its {input} input channels"),
                );
            }
            input = c;
        }
        Ok(Self::build(config))
    }

    fn build(config: SposConfig) -> Self {
        let mut layers = Vec::new();
        let mut input = config.stem_channels;
        for (stage, (&repeats, &out)) in config
            .stage_repeats
            .iter()
            .zip(&config.stage_channels)
            .enumerate()
        {
            for index in 0..repeats {
                layers.push(SposLayer {
                    stage,
                    index,
                    in_channels: input,
                    out_channels: out,
                    stride: if index == 0 { 2 } else { 1 },
                    mid_channels: out / 2,
                });
                input = out;
            }
        }
        Self { config, layers }
    }

    /// The configuration.
    pub fn config(&self) -> &SposConfig {
        &self.config
    }

    /// Every choice layer, in network order: stage, channels, stride.
    pub fn layers(&self) -> &[SposLayer] {
        &self.layers
    }

    /// The number of choice layers (20 by default).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The layers and their choices, for the generic chain capabilities.
    pub(super) fn chain(&self) -> Chain<'static, SposChoice> {
        Chain {
            space: SPACE,
            choices: vec![SposChoice::ALL.to_vec(); self.layers.len()],
        }
    }
}
