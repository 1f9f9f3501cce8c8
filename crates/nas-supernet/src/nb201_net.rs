//! The NAS-Bench-201 macro network built from a cell.
//!
//! Stem (3×3 convolution to C channels, batch norm), three stages of N cells at C, 2C and 4C
//! channels joined by residual reduction blocks (ResNet basic blocks with stride 2), then batch
//! norm, ReLU, global average pooling and a linear classifier. C = 16 and N = 5 in the
//! benchmark. Every cell node sums its incoming edges; `none` edges are skipped.

use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::nb201::{EDGES, NODES, Nb201Arch, Nb201Op, edge_nodes};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::{Conv, avg_pool2d, batch_norm, batch_norm_relu};
use crate::network::{Classifier, global_avg_pool, linear_macs};
use crate::ops::{Op, OpConfig, OpKind, ReluConvBn};

/// Configuration of the NAS-Bench-201 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nb201NetConfig {
    /// Channels of the first stage (C); the later stages have 2C and 4C.
    pub channels: usize,
    /// Cells per stage (N).
    pub cells_per_stage: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
}

impl Default for Nb201NetConfig {
    /// The benchmark's network for CIFAR-10: C = 16, N = 5, RGB input, 10 classes.
    fn default() -> Self {
        Self {
            channels: 16,
            cells_per_stage: 5,
            in_channels: 3,
            num_classes: 10,
        }
    }
}

impl Nb201NetConfig {
    /// Checks that every size is positive.
    pub fn check(&self) -> Result<(), SupernetError> {
        for (name, v) in [
            ("channels", self.channels),
            ("cells_per_stage", self.cells_per_stage),
            ("in_channels", self.in_channels),
            ("num_classes", self.num_classes),
        ] {
            if v == 0 {
                return Err(SupernetError::InvalidConfig {
                    what: "NAS-Bench-201 network",
                    reason: format!("`{name}` must be positive"),
                });
            }
        }
        Ok(())
    }

    /// Builds the network for `arch`.
    pub fn init<B: Backend>(
        &self,
        arch: &Nb201Arch,
        device: &Device<B>,
    ) -> Result<Nb201Network<B>, SupernetError> {
        Nb201Backbone::new(self, device, |width| Nb201Cell::new(arch, width, device))
    }
}

/// The NAS-Bench-201 macro network around a cell type `C`: stem (3×3 convolution, batch
/// norm), three stages of `cells_per_stage` cells at C, 2C and 4C channels joined by
/// [`ResidualReduce`] blocks, then batch norm, ReLU, global average pooling and a linear
/// classifier.
///
/// The stand-alone network ([`Nb201Network`] = `Nb201Backbone<B, Nb201Cell<B>>`), the one-shot
/// supernet ([`crate::oneshot::Nb201Supernet`]) and the differentiable supernet
/// ([`crate::darts_search::supernet::Nb201Supernet`]) are this backbone with different cells;
/// a new kind of NAS-Bench-201 cell only writes the cell. The stem and the final batch norm take
/// the fast CPU path ([`crate::fast::batch_norm`]).
#[derive(Module, Debug)]
pub struct Nb201Backbone<B: Backend, C: Module<B>> {
    stem_conv: Conv<B>,
    stem_bn: BatchNorm<B>,
    layers: Vec<Nb201Layer<B, C>>,
    last_bn: BatchNorm<B>,
    classifier: Linear<B>,
}

/// A layer of the NAS-Bench-201 macro network.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Nb201Layer<B: Backend, C: Module<B>> {
    /// A searched cell.
    Cell(C),
    /// A fixed residual reduction block.
    Reduce(ResidualReduce<B>),
}

/// Where a cell sits in the [`Nb201Backbone`], as its closures see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSite {
    /// The index of the cell among the cells (0-based).
    pub cell: usize,
    /// The index of its layer among all layers, reductions included.
    pub layer: usize,
}

impl<B: Backend, C: Module<B>> Nb201Backbone<B, C> {
    /// The backbone of `config`, with `cell(width)` building each cell at its stage's width
    /// (C, 2C, 4C), in network order.
    pub fn new(
        config: &Nb201NetConfig,
        device: &Device<B>,
        mut cell: impl FnMut(usize) -> Result<C, SupernetError>,
    ) -> Result<Self, SupernetError> {
        config.check()?;
        let c = config.channels;
        let mut layers = Vec::new();
        let mut width = c;
        for stage in 0..3 {
            if stage > 0 {
                layers.push(Nb201Layer::Reduce(ResidualReduce::new(
                    width,
                    2 * width,
                    device,
                )));
                width *= 2;
            }
            for _ in 0..config.cells_per_stage {
                layers.push(Nb201Layer::Cell(cell(width)?));
            }
        }
        Ok(Self {
            stem_conv: Conv::new(config.in_channels, c, 3, 1, 1, 1, device),
            stem_bn: BatchNormConfig::new(c).init(device),
            layers,
            last_bn: BatchNormConfig::new(width).init(device),
            classifier: LinearConfig::new(width, config.num_classes).init(device),
        })
    }

    /// The cells, in network order.
    pub fn cells(&self) -> impl Iterator<Item = &C> {
        self.layers.iter().filter_map(|l| match l {
            Nb201Layer::Cell(c) => Some(c),
            Nb201Layer::Reduce(_) => None,
        })
    }

    /// The number of cells.
    pub fn num_cells(&self) -> usize {
        self.cells().count()
    }

    /// Logits `[batch, classes]` of `images`, with `cell(site, c, x)` applying each cell.
    pub fn forward_with(
        &self,
        images: Tensor<B, 4>,
        mut cell: impl FnMut(CellSite, &C, Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 2> {
        let mut x = batch_norm(&self.stem_bn, self.stem_conv.forward(images));
        let mut index = 0;
        for (layer, l) in self.layers.iter().enumerate() {
            x = match l {
                Nb201Layer::Cell(c) => {
                    index += 1;
                    let site = CellSite {
                        cell: index - 1,
                        layer,
                    };
                    cell(site, c, x)
                }
                Nb201Layer::Reduce(r) => r.forward(x),
            };
        }
        let x = batch_norm_relu(&self.last_bn, x);
        self.classifier.forward(global_avg_pool(x))
    }

    /// Multiply-accumulates of one `input` image (`[channels, h, w]`), with `cell(index, c,
    /// shape)` counting each cell (cells keep their input's shape).
    pub fn macs_with(
        &self,
        input: [usize; 3],
        mut cell: impl FnMut(usize, &C, [usize; 3]) -> u64,
    ) -> u64 {
        let (mut total, [mut h, mut w]) = self.stem_conv.macs(input[1], input[2]);
        let mut c = self.stem_conv.out_channels();
        let mut index = 0;
        for layer in &self.layers {
            match layer {
                Nb201Layer::Cell(sc) => {
                    total += cell(index, sc, [c, h, w]);
                    index += 1;
                }
                Nb201Layer::Reduce(r) => {
                    let (m, [co, ho, wo]) = r.macs(h, w);
                    total += m;
                    (c, h, w) = (co, ho, wo);
                }
            }
        }
        total + linear_macs(&self.classifier)
    }
}

/// One NAS-Bench-201 cell: an operation per edge.
#[derive(Module, Debug)]
pub struct Nb201Cell<B: Backend> {
    edges: Vec<Op<B>>,
}

impl<B: Backend> Nb201Cell<B> {
    /// The cell of `arch` at `channels` channels.
    pub fn new(
        arch: &Nb201Arch,
        channels: usize,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let edges = arch
            .edges
            .iter()
            .map(|&op| OpConfig::new(nb201_op_kind(op), channels, channels, 1).init(device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { edges })
    }

    /// Applies the cell.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        cell_forward(x, |k, input| {
            let op = &self.edges[k];
            (!op.is_zero()).then(|| op.forward(input.clone()))
        })
    }
}

/// Applies a NAS-Bench-201 cell to `x`: node `j` (1 to 3) is the sum over its incoming edges
/// `k` (in edge order) of `edge(k, input)`, `None` adding nothing; a node without any term is
/// zeros. Returns the last node. Every NAS-Bench-201 cell of the crate (stand-alone, one-shot,
/// differentiable) is this function with its own edges.
pub fn cell_forward<B: Backend>(
    x: Tensor<B, 4>,
    mut edge: impl FnMut(usize, &Tensor<B, 4>) -> Option<Tensor<B, 4>>,
) -> Tensor<B, 4> {
    let mut nodes: Vec<Tensor<B, 4>> = Vec::with_capacity(NODES);
    nodes.push(x);
    for to in 1..NODES {
        let mut sum: Option<Tensor<B, 4>> = None;
        for k in (0..EDGES).filter(|&k| edge_nodes(k).0 == to) {
            if let Some(y) = edge(k, &nodes[edge_nodes(k).1]) {
                sum = Some(match sum {
                    Some(s) => s + y,
                    None => y,
                });
            }
        }
        nodes.push(sum.unwrap_or_else(|| nodes[0].zeros_like()));
    }
    nodes
        .pop()
        .unwrap_or_else(|| unreachable!("a cell has 4 nodes"))
}

/// The operation kind of a NAS-Bench-201 edge.
pub fn nb201_op_kind(op: Nb201Op) -> OpKind {
    match op {
        Nb201Op::None => OpKind::Zero,
        Nb201Op::SkipConnect => OpKind::Identity,
        Nb201Op::NorConv1x1 => OpKind::relu_conv_bn(1),
        Nb201Op::NorConv3x3 => OpKind::relu_conv_bn(3),
        Nb201Op::AvgPool3x3 => OpKind::AvgPool { kernel: 3 },
    }
}

/// The residual reduction block between stages (a ResNet basic block with stride 2).
#[derive(Module, Debug)]
pub struct ResidualReduce<B: Backend> {
    conv_a: ReluConvBn<B>,
    conv_b: ReluConvBn<B>,
    pool: AvgPool2d,
    shortcut: Conv<B>,
}

impl<B: Backend> ResidualReduce<B> {
    /// A block from `c_in` to `c_out` channels halving the resolution.
    pub fn new(c_in: usize, c_out: usize, device: &Device<B>) -> Self {
        Self {
            conv_a: ReluConvBn::new(c_in, c_out, 3, 2, 1, device),
            conv_b: ReluConvBn::new(c_out, c_out, 3, 1, 1, device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            shortcut: Conv::new(c_in, c_out, 1, 1, 1, 1, device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let residual = self.shortcut.forward(avg_pool2d(&self.pool, x.clone()));
        residual + self.conv_b.forward(self.conv_a.forward(x))
    }

    /// Multiply-accumulates of one image of `h`×`w` pixels, and the output shape.
    pub fn macs(&self, h: usize, w: usize) -> (u64, [usize; 3]) {
        let (a, [co, ho, wo]) = self.conv_a.macs(h, w);
        let (b, _) = self.conv_b.macs(ho, wo);
        let (s, _) = self.shortcut.macs(h / 2, w / 2);
        (a + b + s, [co, ho, wo])
    }
}

/// The NAS-Bench-201 network of one cell.
pub type Nb201Network<B> = Nb201Backbone<B, Nb201Cell<B>>;

impl<B: Backend> Classifier<B> for Nb201Network<B> {
    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        Some(self.macs_with(input, |_, cell, shape| {
            cell.edges.iter().map(|op| op.macs(shape).0).sum()
        }))
    }

    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_with(images, |_, cell, x| cell.forward(x))
    }
}
