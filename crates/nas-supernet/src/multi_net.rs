//! Multi-branch networks: the NAS-RL networks of Zoph & Le (a chain of convolutions with
//! searched skip connections) and a classifier around a Dense Prediction Cell (DPC).
//!
//! **NAS-RL** ([`nas_space::nasrl`]): layer `i` applies an `h×w` convolution with the searched
//! number of filters and stride, batch norm and ReLU to the concatenation (along channels) of
//! the layers it reads, or to the image when it reads none; inputs of different sizes are
//! zero-padded at the bottom and right to the largest, as the paper does. The outputs of all
//! layers no layer reads are concatenated the same way, globally pooled and classified.
//!
//! **DPC** ([`nas_space::dpc`], `research/deeplab/core/dense_prediction_cell.py`): a backbone
//! (3×3 conv-BN-ReLU layers, the first `backbone_strides` of them with stride 2) produces the
//! feature map; branch `b` applies its operation ([`OpKind::ConvBnRelu`] 1×1,
//! [`OpKind::SepAtrous`], [`OpKind::PyramidPool`]) to the feature map or to an earlier branch,
//! each with `branch_channels` outputs; the cell concatenates every branch and projects it with a
//! 1×1 conv-BN-ReLU to `branch_channels`. [`DpcNetwork::segment`] gives per-pixel logits (a 1×1
//! convolution, bilinear upsampling to the input size) for dense prediction, and
//! [`Classifier::logits`] global-pools the cell's output for classification proxies.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};
use nas_space::dpc::{DpcArch, DpcOp};
use nas_space::nasrl::NasRlArch;
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::Conv;
use crate::network::{Classifier, global_avg_pool, linear_macs};
use crate::ops::{ConvBnRelu, Op, OpConfig, OpKind};

fn positive(what: &'static str, fields: &[(&str, usize)]) -> Result<(), SupernetError> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(SupernetError::InvalidConfig {
            what,
            reason: format!("`{name}` must be positive"),
        }),
        None => Ok(()),
    }
}

/// Configuration of a NAS-RL network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NasRlNetConfig {
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Multiplies every layer's number of filters (rounded, at least 1).
    pub width_multiplier: f64,
}

impl Default for NasRlNetConfig {
    /// CIFAR-10 at the searched widths.
    fn default() -> Self {
        Self {
            in_channels: 3,
            num_classes: 10,
            width_multiplier: 1.0,
        }
    }
}

impl NasRlNetConfig {
    /// Builds the network of `arch`.
    pub fn init<B: Backend>(
        &self,
        arch: &NasRlArch,
        device: &Device<B>,
    ) -> Result<NasRlNetwork<B>, SupernetError> {
        positive(
            "NAS-RL network",
            &[
                ("in_channels", self.in_channels),
                ("num_classes", self.num_classes),
            ],
        )?;
        if !(self.width_multiplier.is_finite() && self.width_multiplier > 0.0) {
            return Err(SupernetError::InvalidConfig {
                what: "NAS-RL network",
                reason: format!(
                    "`width_multiplier` must be a positive number, got {}",
                    self.width_multiplier
                ),
            });
        }
        if arch.layers.is_empty() {
            return Err(SupernetError::InvalidConfig {
                what: "NAS-RL network",
                reason: "the architecture has no layers".into(),
            });
        }
        let mut widths = Vec::with_capacity(arch.layers.len());
        let mut layers = Vec::with_capacity(arch.layers.len());
        for (i, l) in arch.layers.iter().enumerate() {
            if let Some(&bad) = l.inputs.iter().find(|&&j| j == 0 || j > i) {
                return Err(SupernetError::InvalidConfig {
                    what: "NAS-RL network",
                    reason: format!("layer {} reads layer {bad}, not an earlier layer", i + 1),
                });
            }
            let (kh, kw, s) = (
                l.filter_height as usize,
                l.filter_width as usize,
                l.stride as usize,
            );
            if kh % 2 == 0 || kw % 2 == 0 || s == 0 || l.filters == 0 {
                return Err(SupernetError::InvalidConfig {
                    what: "NAS-RL network",
                    reason: format!(
                        "layer {}: filter sizes must be odd and stride and filters positive",
                        i + 1
                    ),
                });
            }
            let c_in = if l.inputs.is_empty() {
                self.in_channels
            } else {
                l.inputs.iter().map(|&j| widths[j - 1]).sum()
            };
            let c_out = ((l.filters as f64 * self.width_multiplier).round() as usize).max(1);
            layers.push(ConvBnRelu::new(c_in, c_out, [kh, kw], s, device));
            widths.push(c_out);
        }
        let outputs = arch.unconsumed();
        let c_out: usize = outputs.iter().map(|&j| widths[j - 1]).sum();
        Ok(NasRlNetwork {
            layers,
            inputs: arch.layers.iter().map(|l| l.inputs.clone()).collect(),
            outputs,
            classifier: LinearConfig::new(c_out, self.num_classes).init(device),
        })
    }
}

/// Concatenates along channels after zero-padding every tensor (bottom, right) to the largest
/// height and width.
fn pad_cat<B: Backend>(xs: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
    let h = xs.iter().map(|x| x.dims()[2]).max().unwrap_or(0);
    let w = xs.iter().map(|x| x.dims()[3]).max().unwrap_or(0);
    let padded = xs
        .into_iter()
        .map(|x| {
            let [_, _, xh, xw] = x.dims();
            if (xh, xw) == (h, w) {
                x
            } else {
                x.pad([(0, h - xh), (0, w - xw)], PadMode::Constant(0.0))
            }
        })
        .collect();
    Tensor::cat(padded, 1)
}

/// A NAS-RL network (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct NasRlNetwork<B: Backend> {
    layers: Vec<ConvBnRelu<B>>,
    inputs: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    classifier: Linear<B>,
}

impl<B: Backend> Classifier<B> for NasRlNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut outs: Vec<Tensor<B, 4>> = Vec::with_capacity(self.layers.len());
        for (layer, inputs) in self.layers.iter().zip(&self.inputs) {
            let x = if inputs.is_empty() {
                images.clone()
            } else {
                pad_cat(inputs.iter().map(|&j| outs[j - 1].clone()).collect())
            };
            outs.push(layer.forward(x));
        }
        let x = pad_cat(self.outputs.iter().map(|&j| outs[j - 1].clone()).collect());
        self.classifier.forward(global_avg_pool(x))
    }

    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let mut shapes: Vec<[usize; 3]> = Vec::with_capacity(self.layers.len());
        let mut total = 0;
        for (layer, inputs) in self.layers.iter().zip(&self.inputs) {
            let [h, w] = if inputs.is_empty() {
                [input[1], input[2]]
            } else {
                inputs.iter().fold([0, 0], |[h, w], &j| {
                    [h.max(shapes[j - 1][1]), w.max(shapes[j - 1][2])]
                })
            };
            let (m, shape) = layer.macs(h, w);
            total += m;
            shapes.push(shape);
        }
        Some(total + linear_macs(&self.classifier))
    }
}

/// Configuration of a DPC network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpcNetConfig {
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Width of every backbone layer.
    pub backbone_channels: usize,
    /// Number of backbone layers (3×3 conv-BN-ReLU).
    pub backbone_layers: usize,
    /// How many of the first backbone layers have stride 2 (the output stride is 2^this).
    pub backbone_strides: usize,
    /// Output channels of every branch and of the cell (256 in the paper).
    pub branch_channels: usize,
}

impl Default for DpcNetConfig {
    /// A small backbone for 32×32 images (output stride 4) and the paper's 256 channels.
    fn default() -> Self {
        Self {
            in_channels: 3,
            num_classes: 10,
            backbone_channels: 64,
            backbone_layers: 3,
            backbone_strides: 2,
            branch_channels: 256,
        }
    }
}

/// The operation kind of a DPC branch.
pub fn dpc_op_kind(op: DpcOp) -> OpKind {
    match op {
        DpcOp::Conv1x1 => OpKind::ConvBnRelu { kernel: 1 },
        DpcOp::SepAtrous3x3 { rate_h, rate_w } => OpKind::SepAtrous {
            rate_h: rate_h as usize,
            rate_w: rate_w as usize,
        },
        DpcOp::Spp { grid_h, grid_w } => OpKind::PyramidPool {
            grid_h: grid_h as usize,
            grid_w: grid_w as usize,
        },
    }
}

impl DpcNetConfig {
    /// Builds the network of `cell`.
    pub fn init<B: Backend>(
        &self,
        cell: &DpcArch,
        device: &Device<B>,
    ) -> Result<DpcNetwork<B>, SupernetError> {
        positive(
            "DPC network",
            &[
                ("in_channels", self.in_channels),
                ("num_classes", self.num_classes),
                ("backbone_channels", self.backbone_channels),
                ("backbone_layers", self.backbone_layers),
                ("branch_channels", self.branch_channels),
            ],
        )?;
        if self.backbone_strides > self.backbone_layers {
            return Err(SupernetError::InvalidConfig {
                what: "DPC network",
                reason: format!(
                    "`backbone_strides` ({}) cannot exceed `backbone_layers` ({})",
                    self.backbone_strides, self.backbone_layers
                ),
            });
        }
        if cell.branches.is_empty() {
            return Err(SupernetError::InvalidConfig {
                what: "DPC network",
                reason: "the cell has no branches".into(),
            });
        }
        let backbone = (0..self.backbone_layers)
            .map(|i| {
                let c_in = if i == 0 {
                    self.in_channels
                } else {
                    self.backbone_channels
                };
                let stride = if i < self.backbone_strides { 2 } else { 1 };
                ConvBnRelu::new(c_in, self.backbone_channels, [3, 3], stride, device)
            })
            .collect();
        let bc = self.branch_channels;
        let mut branches = Vec::with_capacity(cell.branches.len());
        for (k, b) in cell.branches.iter().enumerate() {
            if b.input > k {
                return Err(SupernetError::InvalidConfig {
                    what: "DPC network",
                    reason: format!(
                        "branch {} reads branch {}, not an earlier one",
                        k + 1,
                        b.input
                    ),
                });
            }
            let c_in = if b.input == 0 {
                self.backbone_channels
            } else {
                bc
            };
            branches.push(OpConfig::new(dpc_op_kind(b.op), c_in, bc, 1).init(device)?);
        }
        let n = cell.branches.len();
        Ok(DpcNetwork {
            backbone,
            branches,
            inputs: cell.branches.iter().map(|b| b.input).collect(),
            project: ConvBnRelu::new(n * bc, bc, [1, 1], 1, device),
            segment_head: Conv::new(bc, self.num_classes, 1, 1, 1, 1, device),
            classifier: LinearConfig::new(bc, self.num_classes).init(device),
        })
    }
}

/// A DPC network (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct DpcNetwork<B: Backend> {
    backbone: Vec<ConvBnRelu<B>>,
    branches: Vec<Op<B>>,
    inputs: Vec<usize>,
    project: ConvBnRelu<B>,
    segment_head: Conv<B>,
    classifier: Linear<B>,
}

impl<B: Backend> DpcNetwork<B> {
    /// The cell's output feature map `[n, branch_channels, h / stride, w / stride]`.
    pub fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = images;
        for layer in &self.backbone {
            x = layer.forward(x);
        }
        let mut outs: Vec<Tensor<B, 4>> = Vec::with_capacity(self.branches.len());
        for (op, &input) in self.branches.iter().zip(&self.inputs) {
            let src = if input == 0 {
                x.clone()
            } else {
                outs[input - 1].clone()
            };
            outs.push(op.forward(src));
        }
        self.project.forward(Tensor::cat(outs, 1))
    }

    /// Per-pixel class logits `[n, classes, h, w]` at the input resolution.
    pub fn segment(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = images.dims();
        let logits = self.segment_head.forward(self.features(images));
        crate::ops::resize_bilinear(logits, [h, w])
    }
}

impl<B: Backend> crate::segment::Segmenter<B> for DpcNetwork<B> {
    fn segment(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        DpcNetwork::segment(self, images)
    }
}

impl<B: Backend> Classifier<B> for DpcNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.classifier
            .forward(global_avg_pool(self.features(images)))
    }

    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let (mut total, mut shape) = (0, input);
        for layer in &self.backbone {
            let (m, s) = layer.macs(shape[1], shape[2]);
            total += m;
            shape = s;
        }
        let mut shapes = Vec::with_capacity(self.branches.len());
        for (op, &input) in self.branches.iter().zip(&self.inputs) {
            let src = if input == 0 { shape } else { shapes[input - 1] };
            let (m, s) = op.macs(src);
            total += m;
            shapes.push(s);
        }
        let (m, _) = self.project.macs(shape[1], shape[2]);
        Some(total + m + linear_macs(&self.classifier))
    }
}
