//! The network of a NAS-FPN architecture ([`nas_space::fpn`]): a backbone's feature pyramid,
//! rebuilt by the architecture's merging cells, stacked `repeats` times, with a segmentation
//! head and a classification head.
//!
//! **Backbone.** `max_level` 3×3 conv-BN-ReLU layers of stride 2, each with `channels` outputs:
//! layer `l` (from 1) gives the features of level `l` (stride `2^l`); levels `min_level..=
//! max_level` are the pyramid's inputs (all with `channels` channels, so no projection is
//! needed, as in the reference implementation when widths agree).
//!
//! **Pyramid.** As `official/vision/modeling/decoders/nasfpn.py` (tensorflow/models): each
//! cell resamples its two inputs to its level (max pooling with kernel and stride `2^Δ` down,
//! nearest upsampling up), merges them (`sum`, or global attention: `coarse + fine ·
//! σ(global_max(coarse))`), adds, if it is an output cell, the features of its level no cell
//! has read so far ([`FpnSpace::absorbed`]), then applies ReLU, a 3×3 convolution and batch
//! norm. The last `L` cells are the new pyramid, which the next repeat (with its own weights)
//! takes as input. Two details differ from the reference, for maps whose sizes are not
//! multiples of `2^Δ` (the reference pads its images so that they are): upsampling resizes to
//! the target level's size instead of scaling by `2^Δ`, and pooling windows start at the first
//! row and column (ceil mode) where TensorFlow's `'SAME'` pads before them; a kernel larger
//! than the map shrinks to it.
//!
//! **Heads.** [`FpnNetwork::segment`]: every output level resized to the finest one
//! (bilinear), summed, a 1×1 convolution to the classes and a bilinear resize to the input (the
//! semantic-segmentation head of Panoptic FPN, without its extra convolutions).
//! [`Classifier::logits`]: the mean of the output levels' global average pools, then a linear
//! layer.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use nas_space::SearchSpace;
use nas_space::fpn::{FpnArch, FpnOp, FpnSpace};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::{Conv, batch_norm};
use crate::network::{Classifier, global_avg_pool, linear_macs};
use crate::ops::{ConvBnRelu, resize_bilinear};
use crate::segment::Segmenter;

/// Configuration of a NAS-FPN network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpnNetConfig {
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes (of pixels, or of images for the classification head).
    pub num_classes: usize,
    /// Channels of the backbone and of every pyramid feature (256 in the paper).
    pub channels: usize,
    /// The finest pyramid level (the architecture's space must have the same levels).
    pub min_level: u32,
    /// The coarsest pyramid level.
    pub max_level: u32,
    /// How many times the pyramid network is stacked (the paper's figure 7 stacks up to 7).
    pub repeats: usize,
}

impl Default for FpnNetConfig {
    /// For 32×32 images: levels 1 to 3 (16×16 to 4×4 maps), 16 channels, one pyramid.
    fn default() -> Self {
        Self {
            in_channels: 3,
            num_classes: 10,
            channels: 16,
            min_level: 1,
            max_level: 3,
            repeats: 1,
        }
    }
}

/// ReLU, 3×3 convolution and batch norm: the end of a merging cell.
#[derive(Module, Debug)]
struct CellConv<B: Backend> {
    conv: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> CellConv<B> {
    fn new(channels: usize, device: &Device<B>) -> Self {
        Self {
            conv: Conv::new(channels, channels, 3, 1, 1, 1, device),
            bn: BatchNormConfig::new(channels).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_norm(&self.bn, self.conv.forward_relu(x))
    }
}

/// One merging cell's wiring, from the architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Wiring {
    inputs: [usize; 2],
    level: u32,
    attention: bool,
    absorbed: Vec<usize>,
}

/// A NAS-FPN network (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct FpnNetwork<B: Backend> {
    backbone: Vec<ConvBnRelu<B>>,
    /// `repeats × cells` cell convolutions.
    cells: Vec<Vec<CellConv<B>>>,
    #[module(skip)]
    wiring: Vec<Wiring>,
    min_level: u32,
    max_level: u32,
    segment_head: Conv<B>,
    classifier: Linear<B>,
}

impl FpnNetConfig {
    /// Builds the network of `arch` (a valid architecture of the space with these levels and
    /// `arch.cells.len()` cells).
    ///
    /// # Errors
    /// [`SupernetError::InvalidConfig`] for a zero width, class count, channel count or repeat
    /// count, levels that no space has, or an architecture that is not valid over these
    /// levels.
    pub fn init<B: Backend>(
        &self,
        arch: &FpnArch,
        device: &Device<B>,
    ) -> Result<FpnNetwork<B>, SupernetError> {
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "NAS-FPN network",
            reason,
        };
        for (name, v) in [
            ("in_channels", self.in_channels),
            ("num_classes", self.num_classes),
            ("channels", self.channels),
            ("repeats", self.repeats),
        ] {
            if v == 0 {
                return Err(bad(format!("`{name}` must be positive")));
            }
        }
        if self.min_level == 0 {
            return Err(bad(
                "`min_level` must be at least 1: level l is the backbone's l-th stride-2 layer"
                    .into(),
            ));
        }
        let space = FpnSpace::new(arch.cells.len(), self.min_level, self.max_level)
            .map_err(|e| bad(e.to_string()))?;
        space.validate(arch).map_err(|e| bad(e.to_string()))?;
        let absorbed = space.absorbed(arch).map_err(|e| bad(e.to_string()))?;
        let wiring = arch
            .cells
            .iter()
            .zip(absorbed)
            .map(|(c, absorbed)| Wiring {
                inputs: c.inputs,
                level: c.level,
                attention: c.op == FpnOp::Attention,
                absorbed,
            })
            .collect();
        let c = self.channels;
        let backbone = (0..self.max_level as usize)
            .map(|l| {
                let c_in = if l == 0 { self.in_channels } else { c };
                ConvBnRelu::new(c_in, c, [3, 3], 2, device)
            })
            .collect();
        let cells = (0..self.repeats)
            .map(|_| {
                (0..arch.cells.len())
                    .map(|_| CellConv::new(c, device))
                    .collect()
            })
            .collect();
        Ok(FpnNetwork {
            backbone,
            cells,
            wiring,
            min_level: self.min_level,
            max_level: self.max_level,
            segment_head: Conv::new(c, self.num_classes, 1, 1, 1, 1, device),
            classifier: LinearConfig::new(c, self.num_classes).init(device),
        })
    }
}

/// `x` (at `from`) resampled to level `to` of size `size`: max pooling with stride `2^(to −
/// from)` and as large a kernel (no larger than the map; ceil mode, so a size that does not
/// divide keeps its last rows) down, nearest up.
fn resample<B: Backend>(x: Tensor<B, 4>, from: u32, to: u32, size: [usize; 2]) -> Tensor<B, 4> {
    if from < to {
        let k = 1usize << (to - from);
        let [_, _, h, w] = x.dims();
        max_pool2d(x, [k.min(h), k.min(w)], [k, k], [0, 0], [1, 1], true)
    } else if from > to {
        interpolate(x, size, InterpolateOptions::new(InterpolateMode::Nearest))
    } else {
        x
    }
}

/// The reference implementation's global attention: `coarse + fine · σ(max_hw(coarse))`.
fn global_attention<B: Backend>(coarse: Tensor<B, 4>, fine: Tensor<B, 4>) -> Tensor<B, 4> {
    let gate = sigmoid(coarse.clone().max_dim(2).max_dim(3));
    coarse + fine * gate
}

impl<B: Backend> FpnNetwork<B> {
    /// The output pyramid: features of levels `min_level..=max_level`, finest first.
    pub fn pyramid(&self, images: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let mut x = images;
        let mut feats = Vec::with_capacity(self.backbone.len());
        for layer in &self.backbone {
            x = layer.forward(x);
            feats.push(x.clone());
        }
        let first = self.min_level as usize - 1;
        let mut pyramid: Vec<Tensor<B, 4>> = feats.split_off(first);
        let sizes: Vec<[usize; 2]> = pyramid
            .iter()
            .map(|f| {
                let [_, _, h, w] = f.dims();
                [h, w]
            })
            .collect();
        let l = pyramid.len();
        for convs in &self.cells {
            let mut nodes: Vec<(Tensor<B, 4>, u32)> = pyramid
                .drain(..)
                .zip(self.min_level..=self.max_level)
                .collect();
            for (w, conv) in self.wiring.iter().zip(convs) {
                let size = sizes[(w.level - self.min_level) as usize];
                let take = |i: usize| {
                    let (f, level) = &nodes[i];
                    (resample(f.clone(), *level, w.level, size), *level)
                };
                let (a, la) = take(w.inputs[0]);
                let (b, lb) = take(w.inputs[1]);
                let mut merged = if !w.attention {
                    a + b
                } else if la >= lb {
                    global_attention(a, b)
                } else {
                    global_attention(b, a)
                };
                for &j in &w.absorbed {
                    merged = merged + take(j).0;
                }
                nodes.push((conv.forward(merged), w.level));
            }
            let outputs = nodes.split_off(nodes.len() - l);
            let mut by_level: Vec<Option<Tensor<B, 4>>> = vec![None; l];
            for (f, level) in outputs {
                by_level[(level - self.min_level) as usize] = Some(f);
            }
            // The architecture is validated: its last L cells cover every level once.
            pyramid = by_level.into_iter().flatten().collect();
        }
        pyramid
    }
}

impl<B: Backend> Segmenter<B> for FpnNetwork<B> {
    fn segment(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = images.dims();
        let pyramid = self.pyramid(images);
        let [_, _, fh, fw] = pyramid[0].dims();
        let mut sum = pyramid[0].clone();
        for f in &pyramid[1..] {
            sum = sum + resize_bilinear(f.clone(), [fh, fw]);
        }
        resize_bilinear(self.segment_head.forward(sum), [h, w])
    }
}

impl<B: Backend> Classifier<B> for FpnNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let pyramid = self.pyramid(images);
        let n = pyramid.len() as f64;
        let pooled = pyramid
            .into_iter()
            .map(global_avg_pool)
            .reduce(|a, b| a + b)
            .map(|p| p.div_scalar(n));
        match pooled {
            Some(p) => self.classifier.forward(p),
            None => unreachable!("a pyramid has at least two levels"),
        }
    }

    /// The multiply-accumulates of the backbone, the cells, the segmentation head and the
    /// classifier (both heads, though one task uses one; the resampling, merging and pooling
    /// are not counted).
    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let (mut total, mut shape) = (0, input);
        let mut sizes = Vec::new();
        for layer in &self.backbone {
            let (m, s) = layer.macs(shape[1], shape[2]);
            total += m;
            shape = s;
            sizes.push([s[1], s[2]]);
        }
        let first = self.min_level as usize - 1;
        for convs in &self.cells {
            for (w, conv) in self.wiring.iter().zip(convs) {
                let [h, wd] = sizes[first + (w.level - self.min_level) as usize];
                total += conv.conv.macs(h, wd).0;
            }
        }
        let [h, w] = sizes[first];
        total += self.segment_head.macs(h, w).0;
        Some(total + linear_macs(&self.classifier))
    }
}
