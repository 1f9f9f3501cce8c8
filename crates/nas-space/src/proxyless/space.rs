//! The ProxylessNAS space: its layers and their choices.

use serde::{Deserialize, Serialize};

use super::{MbConvChoice, ProxylessConfig, ProxylessLayer, SPACE};
use crate::common::chain::Chain;
use crate::common::positive_distinct;
use crate::error::SpaceError;

/// The ProxylessNAS space (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProxylessConfig", into = "ProxylessConfig")]
pub struct ProxylessSpace {
    pub(super) config: ProxylessConfig,
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

    /// The layers and their choices, for the generic chain capabilities.
    pub(super) fn chain(&self) -> Chain<'static, MbConvChoice> {
        Chain {
            space: SPACE,
            choices: (0..self.layers.len())
                .map(|i| self.layer_choices(i))
                .collect(),
        }
    }

    /// The encoding slots of a layer: the MBConv choices, then `zero` if the space allows it.
    pub(super) fn slots(&self) -> usize {
        self.ops.len() + usize::from(self.config.allow_zero)
    }

    /// Position of `choice` among the choices of `layer`, if it is one of them.
    pub(super) fn choice_pos(&self, layer: usize, choice: MbConvChoice) -> Option<usize> {
        let l = self.layers.get(layer)?;
        match choice {
            MbConvChoice::Zero => l.skippable.then_some(self.ops.len()),
            op => self.ops.iter().position(|&o| o == op),
        }
    }

    pub(super) fn check_layer(&self, layer: usize, choice: MbConvChoice) -> Result<(), String> {
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
    pub(super) fn segments(&self) -> Vec<std::ops::Range<usize>> {
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
    positive_distinct(SPACE, field, values, "must not contain 0")
}
