//! Chain networks: the ProxylessNAS MobileNetV2 backbone and the SPOS ShuffleNetV2 backbone,
//! built from an architecture of [`nas_space::proxyless`] / [`nas_space::spos`].
//!
//! **ProxylessNAS** (`proxyless_nas/nas_modules.py` and `models/normal_nets/proxyless_nets.py`
//! of `mit-han-lab/proxylessnas`): first convolution 3×3 (stride of the space's stem) to the
//! stem width, BN, ReLU6; a fixed `3x3_MBConv1` block to `first_block_channels`; the searched
//! layers, each an [`OpKind::MbConv`] (with its identity shortcut when stride is 1 and widths are
//! equal) or, for `zero`, the shortcut alone; a 1×1 feature-mix convolution, BN, ReLU6; global
//! average pooling; a linear classifier.
//!
//! **SPOS** (`ShuffleNetV2_OneShot` in `megvii-model/SinglePathOneShot`): first convolution
//! 3×3 stride 2 to the stem width, BN, ReLU; the 20 choice units ([`OpKind::Shuffle`],
//! [`OpKind::ShuffleXception`]); a 1×1 convolution to `last_channels`, BN, ReLU; global
//! average pooling; a linear classifier without bias.
//!
//! Both take a width multiplier (channels rounded to multiples of 8 for ProxylessNAS, as its
//! `make_divisible`, and of 4 for SPOS, whose channel split needs it) and a stem stride, so that
//! proxy tasks can shrink the network and small images keep some resolution. The papers' dropout
//! before the classifier is left out (it would draw from the backend's generator and break
//! same-seed reproducibility); regularize with weight decay or drop-path elsewhere.

use crate::probe::relu;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::SearchSpace;
use nas_space::proxyless::{MbConvChoice, ProxylessArch, ProxylessConfig, ProxylessSpace};
use nas_space::spos::{SposArch, SposChoice, SposConfig, SposLayer, SposSpace};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::{Conv, batch_norm};
use crate::network::{Classifier, global_avg_pool, linear_macs};
use crate::ops::{Op, OpConfig, OpKind};

/// Network-level options of the chain networks (the space's configuration gives the widths).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChainNetConfig {
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Multiplies every width of the space (proxy networks use less than 1).
    pub width_multiplier: f64,
    /// Overrides the stride of the first convolution (`None`: the space's, 2 on ImageNet).
    pub stem_stride: Option<usize>,
}

impl Default for ChainNetConfig {
    /// ImageNet: RGB, 1000 classes, full width, the space's stem stride.
    fn default() -> Self {
        Self {
            in_channels: 3,
            num_classes: 1000,
            width_multiplier: 1.0,
            stem_stride: None,
        }
    }
}

impl ChainNetConfig {
    /// `num_classes` classes of `in_channels`-channel images at full width.
    pub fn new(in_channels: usize, num_classes: usize) -> Self {
        Self {
            in_channels,
            num_classes,
            ..Self::default()
        }
    }

    /// Sets the width multiplier.
    pub fn with_width(mut self, multiplier: f64) -> Self {
        self.width_multiplier = multiplier;
        self
    }

    /// Sets the stride of the first convolution.
    pub fn with_stem_stride(mut self, stride: usize) -> Self {
        self.stem_stride = Some(stride);
        self
    }

    /// Checks the values.
    pub fn check(&self) -> Result<(), SupernetError> {
        let bad = |reason: String| {
            Err(SupernetError::InvalidConfig {
                what: "chain network",
                reason,
            })
        };
        if self.in_channels == 0 || self.num_classes == 0 {
            return bad("`in_channels` and `num_classes` must be positive".into());
        }
        if !(self.width_multiplier.is_finite() && self.width_multiplier > 0.0) {
            return bad(format!(
                "`width_multiplier` must be a positive number, got {}",
                self.width_multiplier
            ));
        }
        if self.stem_stride == Some(0) {
            return bad("`stem_stride` must be at least 1".into());
        }
        Ok(())
    }

    fn scale(&self, channels: usize, divisor: usize) -> usize {
        let v = channels as f64 * self.width_multiplier;
        // `make_divisible` of the MobileNet code: round to the nearest multiple, not below 90%.
        let mut r = (((v + divisor as f64 / 2.0) as usize) / divisor * divisor).max(divisor);
        if (r as f64) < 0.9 * v {
            r += divisor;
        }
        r
    }

    /// The ProxylessNAS space with this configuration's widths and stem stride: the layers of
    /// the network [`ChainNetConfig::proxyless`] builds (and of the one-shot supernet).
    pub fn proxyless_space(&self, space: &ProxylessSpace) -> Result<ProxylessSpace, SupernetError> {
        self.check()?;
        let base = space.config();
        let scaled = ProxylessConfig {
            stem_channels: self.scale(base.stem_channels, 8),
            stem_stride: self.stem_stride.unwrap_or(base.stem_stride),
            first_block_channels: self.scale(base.first_block_channels, 8),
            stages: base
                .stages
                .iter()
                .map(|s| nas_space::proxyless::Stage {
                    width: self.scale(s.width, 8),
                    ..*s
                })
                .collect(),
            // The final layer is not scaled down (as in ProxylessNAS/MobileNetV2 for width
            // multipliers below 1).
            feature_mix_channels: if self.width_multiplier > 1.0 {
                self.scale(base.feature_mix_channels, 8)
            } else {
                base.feature_mix_channels
            },
            ..base.clone()
        };
        Ok(ProxylessSpace::new(scaled)?)
    }

    /// Builds the ProxylessNAS network of `arch` in `space`.
    pub fn proxyless<B: Backend>(
        &self,
        space: &ProxylessSpace,
        arch: &ProxylessArch,
        device: &Device<B>,
    ) -> Result<ProxylessNetwork<B>, SupernetError> {
        self.check()?;
        space.validate(arch)?;
        let scaled_space = self.proxyless_space(space)?;
        let scaled = scaled_space.config().clone();
        let stem = scaled.stem_channels;
        let first = OpConfig::new(
            OpKind::MbConv {
                kernel: 3,
                expansion: 1,
            },
            stem,
            scaled.first_block_channels,
            1,
        )
        .init(device)?;
        let mut blocks = Vec::new();
        for (layer, choice) in scaled_space.layers().iter().zip(&arch.layers) {
            match choice {
                MbConvChoice::Zero => {}
                MbConvChoice::MbConv { kernel, expansion } => blocks.push(
                    OpConfig::new(
                        OpKind::MbConv {
                            kernel: *kernel as usize,
                            expansion: *expansion as usize,
                        },
                        layer.in_channels,
                        layer.out_channels,
                        layer.stride,
                    )
                    .init(device)?,
                ),
            }
        }
        let last = scaled_space
            .layers()
            .last()
            .map_or(scaled.first_block_channels, |l| l.out_channels);
        let mix = scaled.feature_mix_channels;
        Ok(ProxylessNetwork {
            stem: Stem::new(self.in_channels, stem, 3, scaled.stem_stride, device),
            first,
            blocks,
            feature_mix: Stem::new(last, mix, 1, 1, device),
            classifier: LinearConfig::new(mix, self.num_classes).init(device),
        })
    }

    /// The SPOS space with this configuration's widths: the layers of the network
    /// [`ChainNetConfig::spos`] builds (and of the one-shot supernet).
    pub fn spos_space(&self, space: &SposSpace) -> Result<SposSpace, SupernetError> {
        self.check()?;
        let base = space.config();
        let scaled = SposConfig {
            stem_channels: self.scale(base.stem_channels, 4),
            stage_channels: base
                .stage_channels
                .iter()
                .map(|&c| self.scale(c, 4))
                .collect(),
            last_channels: if self.width_multiplier > 1.0 {
                self.scale(base.last_channels, 4)
            } else {
                base.last_channels
            },
            ..base.clone()
        };
        Ok(SposSpace::new(scaled)?)
    }

    /// Builds the SPOS network of `arch` in `space` (stem stride 2 unless overridden).
    pub fn spos<B: Backend>(
        &self,
        space: &SposSpace,
        arch: &SposArch,
        device: &Device<B>,
    ) -> Result<SposNetwork<B>, SupernetError> {
        self.check()?;
        space.validate(arch)?;
        let scaled_space = self.spos_space(space)?;
        let scaled = scaled_space.config().clone();
        let units = scaled_space
            .layers()
            .iter()
            .zip(&arch.choices)
            .map(|(layer, choice)| spos_block(*choice, layer).init(device))
            .collect::<Result<Vec<_>, _>>()?;
        let last_in = *scaled
            .stage_channels
            .last()
            .unwrap_or(&scaled.stem_channels);
        Ok(SposNetwork {
            stem: Stem::new(
                self.in_channels,
                scaled.stem_channels,
                3,
                self.stem_stride.unwrap_or(2),
                device,
            ),
            units,
            conv_last: Stem::new(last_in, scaled.last_channels, 1, 1, device),
            classifier: LinearConfig::new(scaled.last_channels, self.num_classes)
                .with_bias(false)
                .init(device),
        })
    }
}

/// Convolution, batch norm, then ReLU6 (ProxylessNAS) or ReLU (SPOS).
#[derive(Module, Debug)]
pub struct Stem<B: Backend> {
    conv: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> Stem<B> {
    pub(crate) fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        device: &Device<B>,
    ) -> Self {
        Self {
            conv: Conv::new(c_in, c_out, k, stride, 1, 1, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>, relu6: bool) -> Tensor<B, 4> {
        let y = batch_norm(&self.bn, self.conv.forward(x));
        if relu6 {
            if crate::probe::replaying_masks() {
                return relu(y).clamp_max(6.0);
            }
            crate::probe::record_relu(&y);
            y.clamp(0.0, 6.0)
        } else {
            relu(y)
        }
    }

    pub(crate) fn macs(&self, [_, h, w]: [usize; 3]) -> (u64, [usize; 3]) {
        let (m, [ho, wo]) = self.conv.macs(h, w);
        (m, [self.conv.out_channels(), ho, wo])
    }
}

fn chain_macs<B: Backend>(ops: &[Op<B>], mut shape: [usize; 3]) -> (u64, [usize; 3]) {
    let mut total = 0;
    for op in ops {
        let (m, s) = op.macs(shape);
        total += m;
        shape = s;
    }
    (total, shape)
}

/// A ProxylessNAS network (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct ProxylessNetwork<B: Backend> {
    stem: Stem<B>,
    first: Op<B>,
    blocks: Vec<Op<B>>,
    feature_mix: Stem<B>,
    classifier: Linear<B>,
}

impl<B: Backend> Classifier<B> for ProxylessNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.first.forward(self.stem.forward(images, true));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = self.feature_mix.forward(x, true);
        self.classifier.forward(global_avg_pool(x))
    }

    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let (stem, shape) = self.stem.macs(input);
        let (first, shape) = self.first.macs(shape);
        let (blocks, shape) = chain_macs(&self.blocks, shape);
        let (mix, _) = self.feature_mix.macs(shape);
        Some(stem + first + blocks + mix + linear_macs(&self.classifier))
    }
}

/// A SPOS ShuffleNetV2 network (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct SposNetwork<B: Backend> {
    stem: Stem<B>,
    units: Vec<Op<B>>,
    conv_last: Stem<B>,
    classifier: Linear<B>,
}

impl<B: Backend> Classifier<B> for SposNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.stem.forward(images, false);
        for unit in &self.units {
            x = unit.forward(x);
        }
        let x = self.conv_last.forward(x, false);
        self.classifier.forward(global_avg_pool(x))
    }

    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let (stem, shape) = self.stem.macs(input);
        let (units, shape) = chain_macs(&self.units, shape);
        let (last, _) = self.conv_last.macs(shape);
        Some(stem + units + last + linear_macs(&self.classifier))
    }
}

/// The operation of a SPOS block `choice` in `layer` (its widths and stride).
pub fn spos_block(choice: SposChoice, layer: &SposLayer) -> OpConfig {
    let kind = match choice {
        SposChoice::Xception => OpKind::ShuffleXception,
        other => OpKind::Shuffle {
            kernel: other.kernel(),
        },
    };
    OpConfig::new(kind, layer.in_channels, layer.out_channels, layer.stride)
}
