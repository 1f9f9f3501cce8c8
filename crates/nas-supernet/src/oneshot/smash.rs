//! SMASH (Brock, Lim, Ritchie and Weston, *SMASH: One-Shot Model Architecture Search through
//! HyperNetworks*, ICLR 2018) on NAS-Bench-201's macro network.
//!
//! Weight sharing gives an operation the same weights in every architecture; SMASH generates
//! them: a hypernetwork maps the encoding of the whole architecture to the weights of each of
//! its convolutions, so an operation's weights depend on what else the architecture holds.
//! Training samples a random architecture per step and back-propagates through the generated
//! weights into the hypernetwork; an architecture is then scored by its validation accuracy
//! with the weights generated for it (the paper's "SMASH score"), and the best-scored ones
//! are trained from scratch.
//!
//! Here, per cell and edge, each convolution candidate (`nor_conv_1x1`, `nor_conv_3x3`: ReLU,
//! convolution, batch norm) has its weight generated as `W = A·e + b` (a linear map of the
//! architecture's embedding `e`, reshaped to `[C, C, k, k]`), where `e = relu(E·onehot)` embeds
//! the one-hot encoding of every edge's operation (the paper's encoding is a 3-D tensor of the
//! memory-bank reads and writes; NAS-Bench-201 architectures are six operations). The bias `b`
//! is the part common to all architectures: with `A = 0` SMASH is plain weight sharing. The
//! batch norms, the stem, the residual reductions and the classifier are ordinary parameters,
//! as the paper keeps its stem and transitions. [`SmashNb201`] is a [`SinglePath`] supernet, so
//! the SPOS training driver and the weight-sharing estimator (with batch-norm recalibration)
//! train and score it as they do the One-Shot supernet.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor, TensorData};
use nas_space::SearchSpace;
use nas_space::nb201::{EDGES, Nb201Arch, Nb201Op, Nb201Space};
use serde::{Deserialize, Serialize};

use super::SinglePath;
use crate::error::SupernetError;
use crate::fast::{batch_norm, relu_conv2d};
use crate::geometry::ConvGeometry;
use crate::nb201_net::{Nb201Backbone, Nb201NetConfig, cell_forward, nb201_op_kind};
use crate::ops::{Op, OpConfig};
use crate::probe::relu;

/// Configuration of a [`SmashNb201`] supernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmashConfig {
    /// The macro network (channels, cells per stage, input channels, classes).
    pub net: Nb201NetConfig,
    /// Size of the architecture embedding `e` the weights are generated from.
    pub embedding: usize,
    /// Whether the weights depend on the architecture (SMASH). `false` is the ablation: every
    /// convolution uses only its generator's bias `b`, the same weights for every
    /// architecture, which is plain single-path weight sharing on the same network and
    /// training.
    pub conditioned: bool,
}

impl SmashConfig {
    /// SMASH on the network `net` with an embedding of 64.
    pub fn new(net: Nb201NetConfig) -> Self {
        Self {
            net,
            embedding: 64,
            conditioned: true,
        }
    }

    /// Builds the supernet of `space`; fails on an invalid configuration (a zero size).
    pub fn init<B: Backend>(
        &self,
        space: &Nb201Space,
        device: &Device<B>,
    ) -> Result<SmashNb201<B>, SupernetError> {
        if self.embedding == 0 {
            return Err(SupernetError::InvalidConfig {
                what: "SMASH",
                reason: "`embedding` must be positive".into(),
            });
        }
        let h = self.embedding;
        let backbone = Nb201Backbone::new(&self.net, device, |width| {
            let edges = (0..EDGES)
                .map(|_| {
                    Ok(SmashEdge {
                        conv1: LinearConfig::new(h, width * width).init(device),
                        bn1: BatchNormConfig::new(width).init(device),
                        conv3: LinearConfig::new(h, width * width * 9).init(device),
                        bn3: BatchNormConfig::new(width).init(device),
                        pool: OpConfig::new(nb201_op_kind(Nb201Op::AvgPool3x3), width, width, 1)
                            .init(device)?,
                    })
                })
                .collect::<Result<Vec<_>, SupernetError>>()?;
            Ok(SmashCell {
                edges,
                channels: width,
                conditioned: self.conditioned,
            })
        })?;
        Ok(SmashNb201 {
            backbone,
            embed: LinearConfig::new(EDGES * space.ops().len(), h).init(device),
            space: space.clone(),
        })
    }
}

/// One edge of a [`SmashCell`]: the weight generators and batch norms of its two convolution
/// candidates, and its pooling candidate.
#[derive(Module, Debug)]
pub struct SmashEdge<B: Backend> {
    conv1: Linear<B>,
    bn1: BatchNorm<B>,
    conv3: Linear<B>,
    bn3: BatchNorm<B>,
    pool: Op<B>,
}

impl<B: Backend> SmashEdge<B> {
    /// The weight `[C, C, k, k]` generated from `e` `[1, h]` (only the bias when not
    /// `conditioned`).
    fn weight(
        generator: &Linear<B>,
        e: &Tensor<B, 2>,
        channels: usize,
        k: usize,
        conditioned: bool,
    ) -> Tensor<B, 4> {
        match (&generator.bias, conditioned) {
            (Some(b), false) => b.val().reshape([channels, channels, k, k]),
            _ => generator
                .forward(e.clone())
                .reshape([channels, channels, k, k]),
        }
    }

    /// `relu → conv k×k → batch norm` of `x` with the weight generated from `e` `[1, h]`.
    fn conv(
        &self,
        x: Tensor<B, 4>,
        e: &Tensor<B, 2>,
        cell: &SmashCell<B>,
        k: usize,
    ) -> Tensor<B, 4> {
        let (generator, bn) = if k == 1 {
            (&self.conv1, &self.bn1)
        } else {
            (&self.conv3, &self.bn3)
        };
        let weight = Self::weight(generator, e, cell.channels, k, cell.conditioned);
        batch_norm(
            bn,
            relu_conv2d(x, weight, ConvGeometry::square(1, k / 2, 1)),
        )
    }
}

/// A NAS-Bench-201 cell whose convolutions take generated weights.
#[derive(Module, Debug)]
pub struct SmashCell<B: Backend> {
    edges: Vec<SmashEdge<B>>,
    channels: usize,
    conditioned: bool,
}

impl<B: Backend> SmashCell<B> {
    /// Applies the cell of `arch` with the weights generated from the embedding `e`.
    pub fn forward(&self, x: Tensor<B, 4>, arch: &Nb201Arch, e: &Tensor<B, 2>) -> Tensor<B, 4> {
        cell_forward(x, |k, input| {
            let edge = &self.edges[k];
            match arch.edges[k] {
                Nb201Op::None => None,
                Nb201Op::SkipConnect => Some(input.clone()),
                Nb201Op::AvgPool3x3 => Some(edge.pool.forward(input.clone())),
                Nb201Op::NorConv1x1 => Some(edge.conv(input.clone(), e, self, 1)),
                Nb201Op::NorConv3x3 => Some(edge.conv(input.clone(), e, self, 3)),
            }
        })
    }

    fn macs(&self, arch: &Nb201Arch, [c, h, w]: [usize; 3]) -> u64 {
        let per_op = |op: &Nb201Op| -> usize {
            match op {
                Nb201Op::NorConv1x1 => c * c * h * w,
                Nb201Op::NorConv3x3 => c * c * 9 * h * w,
                _ => 0,
            }
        };
        arch.edges.iter().map(|op| per_op(op) as u64).sum()
    }
}

/// The SMASH supernet of the NAS-Bench-201 space (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct SmashNb201<B: Backend> {
    backbone: Nb201Backbone<B, SmashCell<B>>,
    embed: Linear<B>,
    space: Nb201Space,
}

impl<B: Backend> SmashNb201<B> {
    /// The space whose architectures this supernet scores.
    pub fn space(&self) -> &Nb201Space {
        &self.space
    }

    /// The one-hot encoding of `arch` `[1, edges × operations]`: per edge, the position of
    /// its operation in the space's list.
    pub fn encode(&self, arch: &Nb201Arch) -> Tensor<B, 2> {
        let ops = self.space.ops();
        let mut code = vec![0.0f32; EDGES * ops.len()];
        for (k, op) in arch.edges.iter().enumerate() {
            if let Some(i) = ops.iter().position(|o| o == op) {
                code[k * ops.len() + i] = 1.0;
            }
        }
        let device = self.embed.weight.val().device();
        Tensor::from_data(TensorData::new(code, [1, EDGES * ops.len()]), &device)
    }

    /// The embedding `e = relu(E·onehot)` of `arch` `[1, h]` the weights are generated from.
    pub fn embedding(&self, arch: &Nb201Arch) -> Tensor<B, 2> {
        relu(self.embed.forward(self.encode(arch)))
    }

    /// The weight of `op` (`nor_conv_1x1` or `nor_conv_3x3`) on edge `edge` of cell `cell`
    /// as generated for `arch`, `[C, C, k, k]`; `None` for other operations or out-of-range
    /// indices.
    pub fn generated_weight(
        &self,
        arch: &Nb201Arch,
        cell: usize,
        edge: usize,
        op: Nb201Op,
    ) -> Option<Tensor<B, 4>> {
        let c = self.backbone.cells().nth(cell)?;
        let e = c.edges.get(edge)?;
        let (generator, k) = match op {
            Nb201Op::NorConv1x1 => (&e.conv1, 1),
            Nb201Op::NorConv3x3 => (&e.conv3, 3),
            _ => return None,
        };
        Some(SmashEdge::weight(
            generator,
            &self.embedding(arch),
            c.channels,
            k,
            c.conditioned,
        ))
    }
}

impl<B: Backend> SinglePath<B> for SmashNb201<B> {
    type Arch = Nb201Arch;

    fn path_logits(&self, images: Tensor<B, 4>, arch: &Nb201Arch) -> Tensor<B, 2> {
        let e = self.embedding(arch);
        self.backbone
            .forward_with(images, |_, cell, x| cell.forward(x, arch, &e))
    }

    fn path_macs(&self, arch: &Nb201Arch, input: [usize; 3]) -> u64 {
        self.backbone
            .macs_with(input, |_, cell, shape| cell.macs(arch, shape))
    }

    fn check_arch(&self, arch: &Nb201Arch) -> Result<(), SupernetError> {
        Ok(self.space.validate(arch)?)
    }
}
