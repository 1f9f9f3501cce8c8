//! Supernets of the NAS-Bench-201 and DARTS spaces, and the derivation of a discrete
//! architecture from the alphas.
//!
//! Both mirror the discrete networks of [`crate::nb201_net`] and [`crate::darts_net`] (the
//! search networks of AutoDL-Projects' `TinyNetworkDARTS` and of `quark0/darts`'
//! `model_search.py`), with a [`MixedOp`] on every edge. As in the references, the batch norms
//! inside candidate operations (and the DARTS cells' preprocessing) have no learned scale and
//! shift, pooling operations of the DARTS space are followed by a batch norm, and all cells of
//! a kind share one set of alphas.

use std::fmt;

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::darts::{CellKind, DartsOp, DartsSpace, Genotype};
use nas_space::nb201::{EDGES, NODES, Nb201Arch, Nb201Op, edge_nodes};
use serde::{Deserialize, Serialize};

use super::alphas::{ArchLayout, ArchMask, ArchProbabilities, ArchWeights, CellLayout};
use super::mixed::{MixedOp, freeze_batch_norm_affine};
use crate::darts_net::darts_op_kind;
use crate::error::SupernetError;
use crate::fast::Conv;
use crate::nb201_net::{ResidualReduce, nb201_op_kind};
use crate::network::global_avg_pool;
use crate::ops::{Op, OpConfig, OpKind};

/// A network whose forward pass is driven by architecture weights.
pub trait SearchNetwork<B: Backend>: Module<B> {
    /// Logits `[batch, classes]` of `images` with the operations weighted by `weights`.
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2>;
}

/// What the search driver needs of a search space: the shape of its alphas, a supernet for a
/// mask of alive operations (at some extra depth, for P-DARTS), and the derivation of a
/// discrete architecture.
pub trait SupernetBuilder<B: Backend> {
    /// The supernet.
    type Network: SearchNetwork<B>;
    /// The discrete architecture derived from the alphas.
    type Arch: Clone + fmt::Debug + fmt::Display;

    /// The shape of the alphas.
    fn layout(&self) -> ArchLayout;

    /// Builds the supernet with `extra_cells` more cells than configured (P-DARTS grows the
    /// depth by stages); only the operations alive in `mask` are built.
    fn build(
        &self,
        extra_cells: usize,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self::Network, SupernetError>;

    /// The architecture the probabilities select; `max_skip` caps the skip connections
    /// (P-DARTS) by removing the weakest ones.
    fn derive(&self, probabilities: &ArchProbabilities, max_skip: Option<usize>) -> Self::Arch;
}

/// Configuration of the NAS-Bench-201 supernet (the macro network of
/// [`crate::nb201_net::Nb201NetConfig`] with mixed edges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nb201SupernetConfig {
    /// Channels of the first stage (C).
    pub channels: usize,
    /// Cells per stage (N).
    pub cells_per_stage: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
}

impl Default for Nb201SupernetConfig {
    /// The NAS-Bench-201 paper's search network: C = 16, N = 5, RGB, 10 classes.
    fn default() -> Self {
        Self {
            channels: 16,
            cells_per_stage: 5,
            in_channels: 3,
            num_classes: 10,
        }
    }
}

/// Configuration of the DARTS supernet (`Network` of `quark0/darts`' `model_search.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsSupernetConfig {
    /// Initial channels C.
    pub channels: usize,
    /// Number of cells; those at 1/3 and 2/3 of the depth reduce.
    pub layers: usize,
    /// Intermediate nodes per cell.
    pub steps: usize,
    /// Stem width as a multiple of C.
    pub stem_multiplier: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
}

impl Default for DartsSupernetConfig {
    /// DARTS' CIFAR-10 search network: C = 16, 8 cells, 4 nodes, stem 3C.
    fn default() -> Self {
        Self {
            channels: 16,
            layers: 8,
            steps: 4,
            stem_multiplier: 3,
            in_channels: 3,
            num_classes: 10,
        }
    }
}

/// The search space of a supernet and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "space", rename_all = "lowercase")]
pub enum SupernetConfig {
    /// The NAS-Bench-201 cell space.
    Nb201(Nb201SupernetConfig),
    /// The DARTS cell space.
    Darts(DartsSupernetConfig),
}

impl SupernetConfig {
    /// Checks the sizes: all positive; DARTS needs at least 3 cells (so that a normal cell
    /// exists beside the two reductions) and 1 to 8 nodes.
    pub fn check(&self) -> Result<(), SupernetError> {
        let bad = |reason: String| {
            Err(SupernetError::InvalidConfig {
                what: "supernet",
                reason,
            })
        };
        let sizes: Vec<(&str, usize)> = match self {
            SupernetConfig::Nb201(c) => vec![
                ("channels", c.channels),
                ("cells_per_stage", c.cells_per_stage),
                ("in_channels", c.in_channels),
                ("num_classes", c.num_classes),
            ],
            SupernetConfig::Darts(c) => vec![
                ("channels", c.channels),
                ("steps", c.steps),
                ("stem_multiplier", c.stem_multiplier),
                ("in_channels", c.in_channels),
                ("num_classes", c.num_classes),
            ],
        };
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return bad(format!("`{name}` must be positive"));
        }
        if let SupernetConfig::Darts(c) = self {
            if c.layers < 3 {
                return bad(format!(
                    "`layers` must be at least 3 (two reduction cells and a normal one), got {}",
                    c.layers
                ));
            }
            if c.steps > nas_space::darts::MAX_STEPS {
                return bad(format!(
                    "`steps` must be at most {}, got {}",
                    nas_space::darts::MAX_STEPS,
                    c.steps
                ));
            }
        }
        Ok(())
    }

    /// The space's name: `nb201` or `darts`.
    pub fn space_name(&self) -> &'static str {
        match self {
            SupernetConfig::Nb201(_) => "nb201",
            SupernetConfig::Darts(_) => "darts",
        }
    }
}

/// An architecture derived from a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DerivedArch {
    /// A NAS-Bench-201 cell.
    Nb201(Nb201Arch),
    /// A DARTS genotype.
    Darts(Genotype),
}

impl fmt::Display for DerivedArch {
    /// The published formats: `|op~0|+|...|` for NAS-Bench-201, Python's repr of the
    /// `Genotype` namedtuple for DARTS.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerivedArch::Nb201(a) => a.fmt(f),
            DerivedArch::Darts(g) => g.fmt(f),
        }
    }
}

fn darts_edges(steps: usize) -> Vec<(usize, usize)> {
    (0..steps)
        .flat_map(|i| (0..i + 2).map(move |j| (i + 2, j)))
        .collect()
}

impl<B: Backend> SupernetBuilder<B> for SupernetConfig {
    type Network = Supernet<B>;
    type Arch = DerivedArch;

    fn layout(&self) -> ArchLayout {
        match self {
            SupernetConfig::Nb201(_) => ArchLayout {
                cells: vec![CellLayout {
                    name: "cell".into(),
                    edges: (0..EDGES)
                        .map(|k| {
                            let (to, from) = edge_nodes(k);
                            format!("{to}<-{from}")
                        })
                        .collect(),
                    ops: Nb201Op::ALL.iter().map(|o| o.name().to_string()).collect(),
                }],
            },
            SupernetConfig::Darts(c) => {
                let edges: Vec<String> = darts_edges(c.steps)
                    .iter()
                    .map(|(to, from)| format!("{to}<-{from}"))
                    .collect();
                let ops: Vec<String> = DartsOp::PRIMITIVES
                    .iter()
                    .map(|o| o.name().to_string())
                    .collect();
                ArchLayout {
                    cells: ["normal", "reduce"]
                        .iter()
                        .map(|name| CellLayout {
                            name: (*name).into(),
                            edges: edges.clone(),
                            ops: ops.clone(),
                        })
                        .collect(),
                }
            }
        }
    }

    fn build(
        &self,
        extra_cells: usize,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Supernet<B>, SupernetError> {
        self.check()?;
        let layout = SupernetBuilder::<B>::layout(self);
        let shape_ok =
            mask.cells.len() == layout.cells.len()
                && mask.cells.iter().zip(&layout.cells).all(|(m, l)| {
                    m.len() == l.edges.len() && m.iter().all(|e| e.len() == l.ops.len())
                });
        if !shape_ok {
            return Err(SupernetError::InvalidConfig {
                what: "supernet",
                reason: "the operation mask does not match the space's edges and operations".into(),
            });
        }
        Ok(match self {
            SupernetConfig::Nb201(c) => {
                let c = Nb201SupernetConfig {
                    cells_per_stage: c.cells_per_stage + extra_cells,
                    ..*c
                };
                Supernet::Nb201(Nb201Supernet::new(&c, mask, device)?)
            }
            SupernetConfig::Darts(c) => {
                let c = DartsSupernetConfig {
                    layers: c.layers + extra_cells,
                    ..*c
                };
                Supernet::Darts(DartsSupernet::new(&c, mask, device)?)
            }
        })
    }

    fn derive(&self, probabilities: &ArchProbabilities, max_skip: Option<usize>) -> DerivedArch {
        match self {
            SupernetConfig::Nb201(_) => {
                DerivedArch::Nb201(derive_nb201(&probabilities.cells[0], max_skip))
            }
            SupernetConfig::Darts(c) => DerivedArch::Darts(derive_genotype(
                &probabilities.cells[0],
                &probabilities.cells[1],
                c.steps,
                max_skip,
            )),
        }
    }
}

/// The NAS-Bench-201 cell of the largest probability on each edge (`none` included, as
/// AutoDL-Projects derives it). `max_skip` caps the number of `skip_connect` edges: the
/// weakest skip connections beyond it are replaced by their edge's next-best operation.
/// Masked operations have probability 0 and are never chosen while another is alive.
pub fn derive_nb201(probs: &[Vec<f64>], max_skip: Option<usize>) -> Nb201Arch {
    let skip = Nb201Op::SkipConnect.index();
    let mut p: Vec<Vec<f64>> = probs.to_vec();
    loop {
        let choice: Vec<usize> = p.iter().map(|row| argmax(row)).collect();
        let skips: Vec<usize> = (0..choice.len()).filter(|&e| choice[e] == skip).collect();
        match max_skip {
            Some(m) if skips.len() > m => {
                let weakest = skips
                    .iter()
                    .copied()
                    .min_by(|&a, &b| p[a][skip].total_cmp(&p[b][skip]))
                    .unwrap_or_else(|| unreachable!("more skips than the cap"));
                p[weakest][skip] = f64::NEG_INFINITY;
            }
            _ => {
                let mut edges = [Nb201Op::None; EDGES];
                for (e, &c) in choice.iter().enumerate().take(EDGES) {
                    edges[e] = Nb201Op::ALL[c.min(Nb201Op::ALL.len() - 1)];
                }
                return Nb201Arch::new(edges);
            }
        }
    }
}

/// Index of the largest value (the first on ties).
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// DARTS' `genotype()`: for each intermediate node, the two incoming edges whose strongest
/// non-`none` operation is strongest, each with that operation; edges are listed strongest
/// first and ties keep the lower input first (Python's stable sort). `normal` and `reduce`
/// are `[edge][op]` probabilities in the order of [`DartsOp::PRIMITIVES`] and of the edges
/// `(node 2 ← 0), (2 ← 1), (3 ← 0), …`. `max_skip` caps the `skip_connect` operations of the
/// normal cell (P-DARTS): the weakest are replaced by the next choice until the cap holds.
pub fn derive_genotype(
    normal: &[Vec<f64>],
    reduce: &[Vec<f64>],
    steps: usize,
    max_skip: Option<usize>,
) -> Genotype {
    let skip = DartsOp::PRIMITIVES
        .iter()
        .position(|&o| o == DartsOp::SkipConnect)
        .unwrap_or(3);
    let mut normal = normal.to_vec();
    let reduce_cell = parse_cell(reduce, steps).0;
    loop {
        let (cell, chosen) = parse_cell(&normal, steps);
        let skips: Vec<usize> = chosen
            .iter()
            .zip(&cell)
            .filter(|(_, (op, _))| *op == DartsOp::SkipConnect)
            .map(|(&e, _)| e)
            .collect();
        match max_skip {
            Some(m) if skips.len() > m => {
                let weakest = skips
                    .iter()
                    .copied()
                    .min_by(|&a, &b| normal[a][skip].total_cmp(&normal[b][skip]))
                    .unwrap_or_else(|| unreachable!("more skips than the cap"));
                normal[weakest][skip] = f64::NEG_INFINITY;
            }
            _ => {
                let concat: Vec<usize> = (2..steps + 2).collect();
                return Genotype {
                    normal: cell,
                    normal_concat: concat.clone(),
                    reduce: reduce_cell,
                    reduce_concat: concat,
                };
            }
        }
    }
}

/// One cell of [`derive_genotype`]: the genotype entries and the edge index of each.
fn parse_cell(w: &[Vec<f64>], steps: usize) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
    let none = 0;
    let mut cell = Vec::with_capacity(2 * steps);
    let mut chosen = Vec::with_capacity(2 * steps);
    let mut start = 0;
    for i in 0..steps {
        let n = i + 2;
        let best_op = |e: usize| -> (usize, f64) {
            let row = &w[start + e];
            let mut best: Option<usize> = None;
            for (k, &v) in row.iter().enumerate() {
                if k != none && v > 0.0 && best.is_none_or(|b| v > row[b]) {
                    best = Some(k);
                }
            }
            match best {
                Some(k) => (k, row[k]),
                // Every non-`none` operation is gone from this edge: it can only carry `none`.
                None => (none, f64::NEG_INFINITY),
            }
        };
        let mut edges: Vec<usize> = (0..n).collect();
        edges.sort_by(|&a, &b| best_op(b).1.total_cmp(&best_op(a).1));
        for &j in edges.iter().take(2) {
            let (k, _) = best_op(j);
            cell.push((DartsOp::PRIMITIVES[k], j));
            chosen.push(start + j);
        }
        start += n;
    }
    (cell, chosen)
}

/// A supernet of either space.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Supernet<B: Backend> {
    /// The NAS-Bench-201 supernet.
    Nb201(Nb201Supernet<B>),
    /// The DARTS supernet.
    Darts(DartsSupernet<B>),
}

impl<B: Backend> SearchNetwork<B> for Supernet<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        match self {
            Supernet::Nb201(n) => n.search_logits(images, weights),
            Supernet::Darts(n) => n.search_logits(images, weights),
        }
    }
}

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
        let mut nodes: Vec<Tensor<B, 4>> = Vec::with_capacity(NODES);
        nodes.push(x);
        for to in 1..NODES {
            let mut sum: Option<Tensor<B, 4>> = None;
            for k in (0..EDGES).filter(|&k| edge_nodes(k).0 == to) {
                let y = self.edges[k]
                    .forward(nodes[edge_nodes(k).1].clone(), weights.edge(0, k, layer));
                sum = Some(match sum {
                    Some(s) => s + y,
                    None => y,
                });
            }
            nodes.push(sum.unwrap_or_else(|| unreachable!("every node has an input edge")));
        }
        nodes
            .pop()
            .unwrap_or_else(|| unreachable!("a cell has 4 nodes"))
    }
}

/// A layer of the NAS-Bench-201 supernet.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Nb201SearchLayer<B: Backend> {
    /// A search cell.
    Cell(Nb201SearchCell<B>),
    /// A fixed residual reduction block.
    Reduce(ResidualReduce<B>),
}

/// The NAS-Bench-201 supernet.
#[derive(Module, Debug)]
pub struct Nb201Supernet<B: Backend> {
    stem_conv: Conv<B>,
    stem_bn: BatchNorm<B>,
    layers: Vec<Nb201SearchLayer<B>>,
    last_bn: BatchNorm<B>,
    classifier: Linear<B>,
}

impl<B: Backend> Nb201Supernet<B> {
    /// The supernet of `config` with the operations alive in `mask` built.
    pub fn new(
        config: &Nb201SupernetConfig,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let c = config.channels;
        let mut layers = Vec::new();
        let mut width = c;
        for stage in 0..3 {
            if stage > 0 {
                layers.push(Nb201SearchLayer::Reduce(ResidualReduce::new(
                    width,
                    2 * width,
                    device,
                )));
                width *= 2;
            }
            for _ in 0..config.cells_per_stage {
                layers.push(Nb201SearchLayer::Cell(Nb201SearchCell::new(
                    width, mask, device,
                )?));
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
}

impl<B: Backend> SearchNetwork<B> for Nb201Supernet<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        let mut x = self.stem_bn.forward(self.stem_conv.forward(images));
        for (i, layer) in self.layers.iter().enumerate() {
            x = match layer {
                Nb201SearchLayer::Cell(c) => c.forward(x, weights, i),
                Nb201SearchLayer::Reduce(r) => r.forward(x),
            };
        }
        let x = relu(self.last_bn.forward(x));
        self.classifier.forward(global_avg_pool(x))
    }
}

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
    #[allow(clippy::too_many_arguments)]
    fn new(
        steps: usize,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction: bool,
        reduction_prev: bool,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let conv1 = OpKind::ReluConvBn {
            kernel: 1,
            dilation: 1,
        };
        let preprocess0 = if reduction_prev {
            OpConfig::new(OpKind::FactorizedReduce, c_pp, c, 2)
        } else {
            OpConfig::new(conv1, c_pp, c, 1)
        };
        let preprocess1 = OpConfig::new(conv1, c_p, c, 1);
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

/// The DARTS supernet.
#[derive(Module, Debug)]
pub struct DartsSupernet<B: Backend> {
    stem_conv: Conv<B>,
    stem_bn: BatchNorm<B>,
    cells: Vec<DartsSearchCell<B>>,
    classifier: Linear<B>,
}

impl<B: Backend> DartsSupernet<B> {
    /// The supernet of `config` with the operations alive in `mask` built.
    pub fn new(
        config: &DartsSupernetConfig,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let stem_c = config.stem_multiplier * config.channels;
        let (mut c_pp, mut c_p, mut c) = (stem_c, stem_c, config.channels);
        let reductions = [config.layers / 3, 2 * config.layers / 3];
        let mut cells = Vec::with_capacity(config.layers);
        let mut reduction_prev = false;
        for i in 0..config.layers {
            let reduction = reductions.contains(&i);
            if reduction {
                c *= 2;
            }
            cells.push(DartsSearchCell::new(
                config.steps,
                c_pp,
                c_p,
                c,
                reduction,
                reduction_prev,
                mask,
                device,
            )?);
            reduction_prev = reduction;
            c_pp = c_p;
            c_p = config.steps * c;
        }
        Ok(Self {
            stem_conv: Conv::new(config.in_channels, stem_c, 3, 1, 1, 1, device),
            stem_bn: BatchNormConfig::new(stem_c).init(device),
            cells,
            classifier: LinearConfig::new(c_p, config.num_classes).init(device),
        })
    }
}

impl<B: Backend> SearchNetwork<B> for DartsSupernet<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        let s = self.stem_bn.forward(self.stem_conv.forward(images));
        let (mut s0, mut s1) = (s.clone(), s);
        for (i, cell) in self.cells.iter().enumerate() {
            let next = cell.forward(s0, s1.clone(), weights, i);
            s0 = s1;
            s1 = next;
        }
        self.classifier.forward(global_avg_pool(s1))
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
        let normal = self.cells.iter().find(|c| !c.reduction);
        let reduce = self.cells.iter().find(|c| c.reduction);
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
        let s = self.stem_bn.forward(self.stem_conv.forward(images));
        let (mut s0, mut s1) = (s.clone(), s);
        for cell in &self.cells {
            let kind = if cell.reduction {
                CellKind::Reduce
            } else {
                CellKind::Normal
            };
            let next = cell.forward_path(
                s0,
                s1.clone(),
                &paths[usize::from(cell.reduction)],
                arch.cell(kind),
                arch.concat(kind),
            );
            s0 = s1;
            s1 = next;
        }
        self.classifier.forward(global_avg_pool(s1))
    }

    fn path_macs(&self, arch: &Genotype, input: [usize; 3]) -> u64 {
        let Ok(paths) = self.genotype_paths(arch) else {
            return 0;
        };
        let (mut total, [h, w]) = self.stem_conv.macs(input[1], input[2]);
        let stem_c = self.stem_conv.out_channels();
        // Shape and concat fraction of the two states a cell reads.
        let mut prev = ([stem_c, h, w], (1, 1));
        let mut last = ([stem_c, h, w], (1, 1));
        for cell in &self.cells {
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
        total + crate::network::linear_macs(&self.classifier) * k as u64 / n.max(1) as u64
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
