//! The One-Shot supernet of the NAS-Bench-201 cell space (Bender et al. 2018's one-shot model,
//! on NAS-Bench-201's macro network).
//!
//! Every edge of every cell holds all candidate operations of the space except `none`, and
//! the macro network is the same [`Nb201Backbone`] as the stand-alone network's (stem, three
//! stages of cells joined by residual reductions, batch norm, pooling, classifier). A forward pass takes a mask per
//! cell, edge and candidate: training runs all candidates under path dropout
//! ([`Nb201Supernet::dropout_logits`]); an architecture's path keeps exactly its operation on
//! each edge (`none`: the edge is absent), which is [`SinglePath::path_logits`].

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::SearchSpace;
use nas_space::nb201::{EDGES, Nb201Arch, Nb201Op, Nb201Space};
use rand::Rng;

use super::SinglePath;
use super::path_dropout::PathDropout;
use crate::error::SupernetError;
use crate::nb201_net::{Nb201Backbone, Nb201NetConfig, cell_forward, nb201_op_kind};
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
        cell_forward(x, |k, input| {
            self.edges[k]
                .iter()
                .zip(&mask[k])
                .filter(|(_, keep)| **keep)
                .map(|(op, _)| op.forward(input.clone()))
                .reduce(|a, b| a + b)
        })
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

/// The NAS-Bench-201 one-shot supernet (see the [module docs](self)): the
/// [`Nb201Backbone`] with [`SuperCell`]s, and the space it holds.
#[derive(Module, Debug)]
pub struct Nb201Supernet<B: Backend> {
    backbone: Nb201Backbone<B, SuperCell<B>>,
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
        let ops = candidates(space);
        let backbone = Nb201Backbone::new(self, device, |width| {
            let edges = (0..EDGES)
                .map(|_| {
                    ops.iter()
                        .map(|&op| OpConfig::new(nb201_op_kind(op), width, width, 1).init(device))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SuperCell { edges })
        })?;
        Ok(Nb201Supernet {
            backbone,
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
        self.backbone.num_cells()
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
        self.backbone
            .forward_with(images, |site, cell, x| cell.forward(x, &masks[site.cell]))
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

    /// Training logits under path dropout with ghost batch norm (Bender et al. 2018): the
    /// batch is cut into ghost batches of `ghost` images (the last may be smaller), each run
    /// with its own dropout masks and so normalized by its own batch statistics, and their
    /// logits are stacked in order. `ghost` 0 or at least the batch size is
    /// [`dropout_logits`](Self::dropout_logits).
    pub fn ghost_dropout_logits(
        &self,
        images: Tensor<B, 4>,
        rate: f64,
        ghost: usize,
        rng: &mut dyn Rng,
    ) -> Tensor<B, 2> {
        let n = images.dims()[0];
        if ghost == 0 || ghost >= n {
            return self.dropout_logits(images, rate, rng);
        }
        let parts: Vec<Tensor<B, 2>> = (0..n)
            .step_by(ghost)
            .map(|start| {
                let chunk = images.clone().narrow(0, start, ghost.min(n - start));
                self.dropout_logits(chunk, rate, rng)
            })
            .collect();
        Tensor::cat(parts, 0)
    }

    fn masks_macs(&self, masks: &[CellMask], input: [usize; 3]) -> u64 {
        self.backbone
            .macs_with(input, |i, cell, shape| cell.macs(&masks[i], shape))
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
