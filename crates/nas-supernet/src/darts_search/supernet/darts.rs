//! The DARTS supernet: the [`DartsBackbone`] with a [`MixedOp`] on every edge of its cells,
//! and its single-path use (ENAS).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::darts::{CellKind, DartsOp, DartsSpace, Genotype};

use super::super::alphas::{ArchMask, ArchWeights};
use super::super::mixed::{MixedOp, freeze_batch_norm_affine};
use super::{DartsSupernetConfig, SearchNetwork, SupernetBuilder, SupernetConfig, darts_edges};
use crate::darts_net::{DartsBackbone, DartsCellSite, darts_op_kind, preprocess_configs};
use crate::error::SupernetError;
use crate::ops::{Op, OpConfig};

/// A DARTS search cell: preprocessing of the two inputs, a [`MixedOp`] per edge.
#[derive(Module, Debug)]
pub struct DartsSearchCell<B: Backend> {
    preprocess0: Op<B>,
    preprocess1: Op<B>,
    edges: Vec<MixedOp<B>>,
    reduction: bool,
    steps: usize,
}

impl<B: Backend> DartsSearchCell<B> {
    fn new(
        site: DartsCellSite,
        steps: usize,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let (preprocess0, preprocess1) = preprocess_configs(&site);
        let c = site.c;
        let reduction = site.reduction;
        let kind = usize::from(reduction);
        let edges = darts_edges(steps)
            .iter()
            .enumerate()
            .map(|(e, &(_, from))| {
                let stride = if reduction && from < 2 { 2 } else { 1 };
                let configs: Vec<OpConfig> = DartsOp::PRIMITIVES
                    .iter()
                    .map(|&op| OpConfig::new(darts_op_kind(op), c, c, stride).with_pool_bn(true))
                    .collect();
                MixedOp::new(&configs, &mask.cells[kind][e], device)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            preprocess0: freeze_batch_norm_affine(preprocess0.init(device)?),
            preprocess1: freeze_batch_norm_affine(preprocess1.init(device)?),
            edges,
            reduction,
            steps,
        })
    }

    fn forward(
        &self,
        s0: Tensor<B, 4>,
        s1: Tensor<B, 4>,
        weights: &ArchWeights<B>,
        layer: usize,
    ) -> Tensor<B, 4> {
        let kind = usize::from(self.reduction);
        let mut states = vec![self.preprocess0.forward(s0), self.preprocess1.forward(s1)];
        let mut offset = 0;
        for _ in 0..self.steps {
            let mut sum: Option<Tensor<B, 4>> = None;
            for (j, h) in states.iter().enumerate() {
                let y = self.edges[offset + j]
                    .forward(h.clone(), weights.edge(kind, offset + j, layer));
                sum = Some(match sum {
                    Some(s) => s + y,
                    None => y,
                });
            }
            offset += states.len();
            states.push(sum.unwrap_or_else(|| unreachable!("a node has two inputs or more")));
        }
        Tensor::cat(states.split_off(2), 1)
    }
}

impl<B: Backend> DartsSearchCell<B> {
    /// The edge index and operation of each input of `inputs` (`(operation, predecessor)`, two
    /// per node), or what does not fit this cell.
    fn path_edges(&self, inputs: &[(DartsOp, usize)]) -> Result<Vec<(usize, usize)>, String> {
        if inputs.len() != 2 * self.steps {
            return Err(format!(
                "{} inputs for a cell of {} nodes (two per node)",
                inputs.len(),
                self.steps
            ));
        }
        let mut offset = 0;
        let mut out = Vec::with_capacity(inputs.len());
        for node in 0..self.steps {
            for &(op, from) in &inputs[2 * node..2 * node + 2] {
                if from >= node + 2 {
                    return Err(format!(
                        "node {} reads state {from}, but only states 0..{} precede it",
                        node + 2,
                        node + 2
                    ));
                }
                let k = DartsOp::PRIMITIVES
                    .iter()
                    .position(|&p| p == op)
                    .unwrap_or_else(|| unreachable!("PRIMITIVES holds every DartsOp"));
                if !self.edges[offset + from].is_built(k) {
                    return Err(format!(
                        "operation {} on edge {}<-{from} is not in this supernet",
                        op.name(),
                        node + 2
                    ));
                }
                out.push((offset + from, k));
            }
            offset += node + 2;
        }
        Ok(out)
    }

    /// The channels of each intermediate node (C of the cell).
    fn node_channels(&self) -> usize {
        self.preprocess1.macs([1, 1, 1]).1[0]
    }

    /// Checks a concat: increasing intermediate states.
    fn check_concat(&self, concat: &[usize]) -> Result<(), String> {
        let ok = !concat.is_empty()
            && concat.iter().all(|&c| (2..self.steps + 2).contains(&c))
            && concat.windows(2).all(|w| w[0] < w[1]);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "concat {concat:?} is not an increasing list of intermediate states 2..{}",
                self.steps + 1
            ))
        }
    }

    /// The cell computing only the inputs of a discrete cell. The output keeps the supernet's
    /// width (every intermediate node's channels): nodes outside `concat` contribute zeros, so
    /// the next cell's 1×1 preprocessing uses only the weights of the concatenated nodes, as
    /// ENAS selects them (`tf.gather` of the used rows in `micro_child.py`).
    fn forward_path(
        &self,
        s0: Tensor<B, 4>,
        s1: Tensor<B, 4>,
        path: &[(usize, usize)],
        froms: &[(DartsOp, usize)],
        concat: &[usize],
    ) -> Tensor<B, 4> {
        let mut states = vec![self.preprocess0.forward(s0), self.preprocess1.forward(s1)];
        for node in 0..self.steps {
            let mut sum: Option<Tensor<B, 4>> = None;
            for i in 2 * node..2 * node + 2 {
                let (edge, k) = path[i];
                let op = self.edges[edge]
                    .op(k)
                    .unwrap_or_else(|| unreachable!("checked by path_edges"));
                let y = op.forward(states[froms[i].1].clone());
                sum = Some(match sum {
                    Some(s) => s + y,
                    None => y,
                });
            }
            states.push(sum.unwrap_or_else(|| unreachable!("a node has two inputs")));
        }
        let outputs: Vec<Tensor<B, 4>> = (2..self.steps + 2)
            .map(|n| {
                if concat.contains(&n) {
                    states[n].clone()
                } else {
                    states[n].zeros_like()
                }
            })
            .collect();
        Tensor::cat(outputs, 1)
    }

    /// MACs of [`Self::forward_path`] for one image, counted as the stand-alone network counts
    /// them: the preprocessing of a state built by a concat of `k` of `n` nodes reads `k/n` of
    /// the channels. Returns the MACs and the output `[h, w]`.
    fn path_macs(
        &self,
        path: &[(usize, usize)],
        froms: &[(DartsOp, usize)],
        inputs: [[usize; 3]; 2],
        fractions: [(usize, usize); 2],
    ) -> (u64, [usize; 2]) {
        let scaled = |m: u64, (k, n): (usize, usize)| m * k as u64 / n.max(1) as u64;
        let (m0, out0) = self.preprocess0.macs(inputs[0]);
        let (m1, out1) = self.preprocess1.macs(inputs[1]);
        let mut total = scaled(m0, fractions[0]) + scaled(m1, fractions[1]);
        let mut shapes = vec![out0, out1];
        for node in 0..self.steps {
            let mut out = shapes[1];
            for i in 2 * node..2 * node + 2 {
                let (edge, k) = path[i];
                if let Some(op) = self.edges[edge].op(k) {
                    let (m, o) = op.macs(shapes[froms[i].1]);
                    total += m;
                    out = o;
                }
            }
            shapes.push(out);
        }
        let [_, h, w] = shapes[shapes.len() - 1];
        (total, [h, w])
    }
}

/// The DARTS supernet: the [`DartsBackbone`] of [`DartsSearchCell`]s.
#[derive(Module, Debug)]
pub struct DartsSupernet<B: Backend> {
    backbone: DartsBackbone<B, DartsSearchCell<B>>,
}

impl<B: Backend> DartsSupernet<B> {
    /// The supernet of `config` with the operations alive in `mask` built.
    pub fn new(
        config: &DartsSupernetConfig,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let steps = config.steps;
        let backbone = DartsBackbone::new(config.macro_structure(), device, |site| {
            Ok((
                DartsSearchCell::new(site, steps, mask, device)?,
                steps * site.c,
            ))
        })?;
        Ok(Self { backbone })
    }
}

impl<B: Backend> SearchNetwork<B> for DartsSupernet<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        self.backbone
            .forward_with(images, |i, cell, s0, s1| cell.forward(s0, s1, weights, i))
    }
}

impl<B: Backend> DartsSupernet<B> {
    /// The single-path (ENAS) supernet of `space` with this network configuration: on every
    /// edge, the operations of `space` (DARTS' `none` left out, it computes nothing), each
    /// with its own weights shared by every architecture that picks that operation on that
    /// edge. `config.steps` is taken from the space.
    pub fn single_path(
        config: &DartsSupernetConfig,
        space: &DartsSpace,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let config = DartsSupernetConfig {
            steps: space.steps(),
            ..*config
        };
        SupernetConfig::Darts(config).check()?;
        let layout = SupernetBuilder::<B>::layout(&SupernetConfig::Darts(config));
        let alive: Vec<bool> = DartsOp::PRIMITIVES
            .iter()
            .map(|op| *op != DartsOp::None && space.ops().contains(op))
            .collect();
        let mask = ArchMask {
            cells: layout
                .cells
                .iter()
                .map(|c| vec![alive.clone(); c.edges.len()])
                .collect(),
        };
        Self::new(&config, &mask, device)
    }

    /// The path of each cell of `genotype`, or what does not fit.
    fn genotype_paths(&self, genotype: &Genotype) -> Result<[Vec<(usize, usize)>; 2], String> {
        let normal = self.backbone.cells().iter().find(|c| !c.reduction);
        let reduce = self.backbone.cells().iter().find(|c| c.reduction);
        let mut paths = [Vec::new(), Vec::new()];
        for (kind, cell) in [(CellKind::Normal, normal), (CellKind::Reduce, reduce)] {
            if let Some(cell) = cell {
                let name = if kind == CellKind::Normal {
                    "normal"
                } else {
                    "reduction"
                };
                paths[usize::from(kind == CellKind::Reduce)] = cell
                    .path_edges(genotype.cell(kind))
                    .map_err(|e| format!("{name} cell: {e}"))?;
                cell.check_concat(genotype.concat(kind))
                    .map_err(|e| format!("{name} cell: {e}"))?;
            }
        }
        Ok(paths)
    }
}

impl<B: Backend> crate::oneshot::SinglePath<B> for DartsSupernet<B> {
    type Arch = Genotype;

    /// # Panics
    /// If `arch` does not fit the supernet ([`SinglePath::check_arch`] says why).
    ///
    /// [`SinglePath::check_arch`]: crate::oneshot::SinglePath::check_arch
    fn path_logits(&self, images: Tensor<B, 4>, arch: &Genotype) -> Tensor<B, 2> {
        let paths = self
            .genotype_paths(arch)
            .unwrap_or_else(|e| panic!("DARTS supernet: {e}"));
        self.backbone.forward_with(images, |_, cell, s0, s1| {
            let kind = if cell.reduction {
                CellKind::Reduce
            } else {
                CellKind::Normal
            };
            cell.forward_path(
                s0,
                s1,
                &paths[usize::from(cell.reduction)],
                arch.cell(kind),
                arch.concat(kind),
            )
        })
    }

    fn path_macs(&self, arch: &Genotype, input: [usize; 3]) -> u64 {
        let Ok(paths) = self.genotype_paths(arch) else {
            return 0;
        };
        let (mut total, stem) = self.backbone.stem_macs(input);
        // Shape and concat fraction of the two states a cell reads.
        let mut prev = (stem, (1, 1));
        let mut last = (stem, (1, 1));
        for cell in self.backbone.cells() {
            let kind = if cell.reduction {
                CellKind::Reduce
            } else {
                CellKind::Normal
            };
            let (m, [ho, wo]) = cell.path_macs(
                &paths[usize::from(cell.reduction)],
                arch.cell(kind),
                [prev.0, last.0],
                [prev.1, last.1],
            );
            total += m;
            let c_out = cell.steps * cell.node_channels();
            prev = last;
            last = ([c_out, ho, wo], (arch.concat(kind).len(), cell.steps));
        }
        // The classifier reads the concat of the last cell.
        let (k, n) = last.1;
        total + self.backbone.classifier_macs() * k as u64 / n.max(1) as u64
    }

    fn check_arch(&self, arch: &Genotype) -> Result<(), SupernetError> {
        self.genotype_paths(arch).map(|_| ()).map_err(|reason| {
            SupernetError::Space(nas_space::SpaceError::invalid(
                "darts",
                format!("the genotype does not fit the supernet: {reason}"),
            ))
        })
    }
}
