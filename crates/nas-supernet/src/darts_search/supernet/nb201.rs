//! The NAS-Bench-201 supernet: the [`Nb201Backbone`] with a [`MixedOp`] on every edge.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::nb201::{EDGES, Nb201Op};

use super::super::alphas::{ArchMask, ArchWeights};
use super::super::mixed::MixedOp;
use super::{Nb201SupernetConfig, SearchNetwork};
use crate::error::SupernetError;
use crate::nb201_net::{Nb201Backbone, cell_forward, nb201_op_kind};
use crate::ops::OpConfig;

/// A NAS-Bench-201 search cell: a [`MixedOp`] per edge.
#[derive(Module, Debug)]
pub struct Nb201SearchCell<B: Backend> {
    edges: Vec<MixedOp<B>>,
}

impl<B: Backend> Nb201SearchCell<B> {
    fn new(channels: usize, mask: &ArchMask, device: &Device<B>) -> Result<Self, SupernetError> {
        let configs: Vec<OpConfig> = Nb201Op::ALL
            .iter()
            .map(|&op| OpConfig::new(nb201_op_kind(op), channels, channels, 1))
            .collect();
        let edges = (0..EDGES)
            .map(|e| MixedOp::new(&configs, &mask.cells[0][e], device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { edges })
    }

    fn forward(&self, x: Tensor<B, 4>, weights: &ArchWeights<B>, layer: usize) -> Tensor<B, 4> {
        cell_forward(x, |k, input| {
            Some(self.edges[k].forward(input.clone(), weights.edge(0, k, layer)))
        })
    }
}

/// The NAS-Bench-201 supernet: the [`Nb201Backbone`] of [`Nb201SearchCell`]s.
#[derive(Module, Debug)]
pub struct Nb201Supernet<B: Backend> {
    backbone: Nb201Backbone<B, Nb201SearchCell<B>>,
}

impl<B: Backend> Nb201Supernet<B> {
    /// The supernet of `config` with the operations alive in `mask` built.
    pub fn new(
        config: &Nb201SupernetConfig,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let backbone = Nb201Backbone::new(config, device, |width| {
            Nb201SearchCell::new(width, mask, device)
        })?;
        Ok(Self { backbone })
    }
}

impl<B: Backend> SearchNetwork<B> for Nb201Supernet<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        self.backbone
            .forward_with(images, |site, cell, x| cell.forward(x, weights, site.layer))
    }
}
