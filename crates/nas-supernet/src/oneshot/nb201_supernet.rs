//! The One-Shot supernet of the NAS-Bench-201 cell space (Bender et al. 2018's one-shot model,
//! on NAS-Bench-201's macro network).
//!
//! Every edge of every cell holds all candidate operations of the space except `none`, and
//! the layout is that of [`crate::nb201_net::Nb201Network`] (stem, three stages of cells joined
//! by residual reductions, batch norm, pooling, classifier). A forward pass takes a mask per
//! cell, edge and candidate: training runs all candidates under path dropout
//! ([`Nb201Supernet::dropout_logits`]); an architecture's path keeps exactly its operation on
//! each edge (`none`: the edge is absent), which is [`SinglePath::path_logits`].

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::SearchSpace;
use nas_space::nb201::{EDGES, NODES, Nb201Arch, Nb201Op, Nb201Space, edge_nodes};
use rand::Rng;

use super::SinglePath;
use super::path_dropout::PathDropout;
use crate::error::SupernetError;
use crate::fast::Conv;
use crate::nb201_net::{Nb201NetConfig, ResidualReduce, nb201_op_kind};
use crate::network::{global_avg_pool, linear_macs};
use crate::ops::{Op, OpConfig};

/// Which candidates run: `mask[edge][candidate]` for one cell.
pub type CellMask = Vec<Vec<bool>>;

/// A cell with every candidate operation on every edge.
#[derive(Module, Debug)]
pub struct SuperCell<B: Backend> {
    edges: Vec<Vec<Op<B>>>,
}

impl<B: Backend> SuperCell<B> {
    /// Applies the cell with the candidates of `mask` (a node without any input is zeros).
    pub fn forward(&self, x: Tensor<B, 4>, mask: &CellMask) -> Tensor<B, 4> {
        let mut nodes: Vec<Tensor<B, 4>> = Vec::with_capacity(NODES);
        nodes.push(x);
        for to in 1..NODES {
            let mut sum: Option<Tensor<B, 4>> = None;
            for k in (0..EDGES).filter(|&k| edge_nodes(k).0 == to) {
                let input = &nodes[edge_nodes(k).1];
                for (op, _) in self.edges[k]
                    .iter()
                    .zip(&mask[k])
                    .filter(|(_, keep)| **keep)
                {
                    let y = op.forward(input.clone());
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

    fn macs(&self, mask: &CellMask, input: [usize; 3]) -> u64 {
        self.edges
            .iter()
            .zip(mask)
            .flat_map(|(ops, keep)| ops.iter().zip(keep).filter(|(_, k)| **k))
            .map(|(op, _)| op.macs(input).0)
            .sum()
    }
}

/// A layer of the supernet.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum SuperLayer<B: Backend> {
    /// A cell with all candidates.
    Cell(SuperCell<B>),
    /// A fixed residual reduction block.
    Reduce(ResidualReduce<B>),
}

/// The NAS-Bench-201 one-shot supernet (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct Nb201Supernet<B: Backend> {
    stem_conv: Conv<B>,
    stem_bn: BatchNorm<B>,
    layers: Vec<SuperLayer<B>>,
    last_bn: BatchNorm<B>,
    classifier: Linear<B>,
    space: Nb201Space,
}

impl Nb201NetConfig {
    /// Builds the one-shot supernet of `space` (its operations other than `none` on every
    /// edge) with this network configuration.
    pub fn supernet<B: Backend>(
        &self,
        space: &Nb201Space,
        device: &Device<B>,
    ) -> Result<Nb201Supernet<B>, SupernetError> {
        self.check()?;
        let ops = candidates(space);
        let c = self.channels;
        let mut layers = Vec::new();
        let mut width = c;
        for stage in 0..3 {
            if stage > 0 {
                layers.push(SuperLayer::Reduce(ResidualReduce::new(
                    width,
                    2 * width,
                    device,
                )));
                width *= 2;
            }
            for _ in 0..self.cells_per_stage {
                let edges = (0..EDGES)
                    .map(|_| {
                        ops.iter()
                            .map(|&op| {
                                OpConfig::new(nb201_op_kind(op), width, width, 1).init(device)
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                layers.push(SuperLayer::Cell(SuperCell { edges }));
            }
        }
        Ok(Nb201Supernet {
            stem_conv: Conv::new(self.in_channels, c, 3, 1, 1, 1, device),
            stem_bn: BatchNormConfig::new(c).init(device),
            layers,
            last_bn: BatchNormConfig::new(width).init(device),
            classifier: LinearConfig::new(width, self.num_classes).init(device),
            space: space.clone(),
        })
    }
}

fn candidates(space: &Nb201Space) -> Vec<Nb201Op> {
    space
        .ops()
        .iter()
        .copied()
        .filter(|&op| op != Nb201Op::None)
        .collect()
}

impl<B: Backend> Nb201Supernet<B> {
    /// The space whose architectures this supernet holds.
    pub fn space(&self) -> &Nb201Space {
        &self.space
    }

    /// The candidate operations of every edge, in mask order (the space's operations without
    /// `none`).
    pub fn candidates(&self) -> Vec<Nb201Op> {
        candidates(&self.space)
    }

    /// The number of cells.
    pub fn num_cells(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, SuperLayer::Cell(_)))
            .count()
    }

    /// The mask of `arch`'s path: on each edge, its operation only.
    pub fn arch_mask(&self, arch: &Nb201Arch) -> CellMask {
        let ops = self.candidates();
        arch.edges
            .iter()
            .map(|e| ops.iter().map(|o| o == e).collect())
            .collect()
    }

    /// Logits with `masks[i]` applied to the `i`-th cell.
    ///
    /// # Panics
    /// If there are fewer masks than cells.
    pub fn masked_logits(&self, images: Tensor<B, 4>, masks: &[CellMask]) -> Tensor<B, 2> {
        let mut x = self.stem_bn.forward(self.stem_conv.forward(images));
        let mut cell = 0;
        for layer in &self.layers {
            x = match layer {
                SuperLayer::Cell(c) => {
                    cell += 1;
                    c.forward(x, &masks[cell - 1])
                }
                SuperLayer::Reduce(r) => r.forward(x),
            };
        }
        let x = relu(self.last_bn.forward(x));
        self.classifier.forward(global_avg_pool(x))
    }

    /// Training logits under path dropout at rate `rate`: an independent mask for every cell
    /// and edge, each candidate dropped with probability `rate^(1/k)` (`k` candidates per edge).
    pub fn dropout_logits(
        &self,
        images: Tensor<B, 4>,
        rate: f64,
        rng: &mut dyn Rng,
    ) -> Tensor<B, 2> {
        let k = self.candidates().len();
        let masks: Vec<CellMask> = (0..self.num_cells())
            .map(|_| {
                (0..EDGES)
                    .map(|_| PathDropout::sample_keep(rate, k, rng))
                    .collect()
            })
            .collect();
        self.masked_logits(images, &masks)
    }

    fn masks_macs(&self, masks: &[CellMask], input: [usize; 3]) -> u64 {
        let (mut total, [mut h, mut w]) = self.stem_conv.macs(input[1], input[2]);
        let mut c = self.stem_conv.out_channels();
        let mut cell = 0;
        for layer in &self.layers {
            match layer {
                SuperLayer::Cell(sc) => {
                    total += sc.macs(&masks[cell], [c, h, w]);
                    cell += 1;
                }
                SuperLayer::Reduce(r) => {
                    let (m, [co, ho, wo]) = r.macs(h, w);
                    total += m;
                    (c, h, w) = (co, ho, wo);
                }
            }
        }
        total + linear_macs(&self.classifier)
    }
}

impl<B: Backend> SinglePath<B> for Nb201Supernet<B> {
    type Arch = Nb201Arch;

    fn path_logits(&self, images: Tensor<B, 4>, arch: &Nb201Arch) -> Tensor<B, 2> {
        let masks = vec![self.arch_mask(arch); self.num_cells()];
        self.masked_logits(images, &masks)
    }

    fn path_macs(&self, arch: &Nb201Arch, input: [usize; 3]) -> u64 {
        let masks = vec![self.arch_mask(arch); self.num_cells()];
        self.masks_macs(&masks, input)
    }

    fn check_arch(&self, arch: &Nb201Arch) -> Result<(), SupernetError> {
        Ok(self.space.validate(arch)?)
    }
}
