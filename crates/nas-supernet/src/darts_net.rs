//! The DARTS evaluation network (`NetworkCIFAR` of `quark0/darts`) built from a genotype.
//!
//! Stem: 3×3 convolution to `stem_multiplier · C` channels and batch norm. Then `layers` cells;
//! the cells at 1/3 and 2/3 of the depth are reduction cells (stride 2, channels doubled). Each
//! cell reads the outputs of the two previous cells, preprocessed to C channels (a factorized
//! reduction when the previous cell reduced, a 1×1 ReLU-conv-BN otherwise); each intermediate
//! node sums two operations of earlier states; the cell output concatenates the genotype's
//! `concat` states. Drop-path applies to every non-identity operation during training. An
//! optional auxiliary head after the second reduction adds a second classifier (ReLU, average
//! pooling to 2×2, 1×1 conv to 128 + BN + ReLU, 2×2 conv to 768 + BN + ReLU, linear); it pools
//! adaptively (the paper's 5×5/3 pooling assumes 8×8 maps) so any input resolution works.

use crate::probe::relu;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::darts::{CellKind, DartsOp, Genotype};
use nas_space::nasnet::{Combiner, NasNetArch, NasNetOp};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::{Conv, batch_norm, batch_norm_relu};
use crate::network::{Classifier, TrainOptions, drop_path, global_avg_pool, linear_macs, mix_seed};
use crate::ops::{Op, OpConfig, OpKind};

/// Configuration of the DARTS network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DartsNetConfig {
    /// Initial channels C.
    pub channels: usize,
    /// Number of cells.
    pub layers: usize,
    /// Stem width as a multiple of C.
    pub stem_multiplier: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Adds the auxiliary head after the second reduction cell.
    pub auxiliary: bool,
}

impl Default for DartsNetConfig {
    /// The DARTS CIFAR-10 evaluation network: C = 36, 20 cells, auxiliary head.
    fn default() -> Self {
        Self {
            channels: 36,
            layers: 20,
            stem_multiplier: 3,
            in_channels: 3,
            num_classes: 10,
            auxiliary: true,
        }
    }
}

impl DartsNetConfig {
    /// The DARTS search network's size: C = 16, 8 cells, no auxiliary head.
    pub fn search() -> Self {
        Self {
            channels: 16,
            layers: 8,
            auxiliary: false,
            ..Self::default()
        }
    }

    /// Checks the sizes (all positive; at least 3 cells so that both reductions exist).
    pub fn check(&self) -> Result<(), SupernetError> {
        let bad = |reason: String| {
            Err(SupernetError::InvalidConfig {
                what: "DARTS network",
                reason,
            })
        };
        for (name, v) in [
            ("channels", self.channels),
            ("stem_multiplier", self.stem_multiplier),
            ("in_channels", self.in_channels),
            ("num_classes", self.num_classes),
        ] {
            if v == 0 {
                return bad(format!("`{name}` must be positive"));
            }
        }
        if self.layers < 3 {
            return bad(format!("`layers` must be at least 3, got {}", self.layers));
        }
        Ok(())
    }

    /// The indices of the reduction cells.
    pub fn reductions(&self) -> [usize; 2] {
        self.macro_structure().reductions()
    }

    /// Builds the network of a DARTS `genotype`.
    pub fn init<B: Backend>(
        &self,
        genotype: &Genotype,
        device: &Device<B>,
    ) -> Result<DartsNetwork<B>, SupernetError> {
        let normal = CellSpec::darts(genotype, CellKind::Normal)?;
        let reduce = CellSpec::darts(genotype, CellKind::Reduce)?;
        self.init_cells(&normal, &reduce, device)
    }

    /// Builds the network of a NASNet architecture (the same macro structure: stem, normal
    /// cells, reduction cells at 1/3 and 2/3, global pooling).
    pub fn init_nasnet<B: Backend>(
        &self,
        arch: &NasNetArch,
        device: &Device<B>,
    ) -> Result<DartsNetwork<B>, SupernetError> {
        let normal = CellSpec::nasnet(arch, CellKind::Normal);
        let reduce = CellSpec::nasnet(arch, CellKind::Reduce);
        self.init_cells(&normal, &reduce, device)
    }

    /// The macro structure of this network.
    pub fn macro_structure(&self) -> DartsMacro {
        DartsMacro {
            in_channels: self.in_channels,
            channels: self.channels,
            layers: self.layers,
            stem_multiplier: self.stem_multiplier,
            num_classes: self.num_classes,
        }
    }

    /// Builds the network of any normal and reduction cells.
    pub fn init_cells<B: Backend>(
        &self,
        normal: &CellSpec,
        reduce: &CellSpec,
        device: &Device<B>,
    ) -> Result<DartsNetwork<B>, SupernetError> {
        self.check()?;
        let aux_index = self.reductions()[1];
        let mut aux_channels = None;
        let backbone = DartsBackbone::new(self.macro_structure(), device, |site| {
            let spec = if site.reduction { reduce } else { normal };
            let cell = DartsCell::new(spec, &site, device)?;
            if site.index == aux_index {
                aux_channels = Some(cell.out_channels);
            }
            let out = cell.out_channels;
            Ok((cell, out))
        })?;
        let auxiliary = match (self.auxiliary, aux_channels) {
            (true, Some(ch)) => Some(AuxiliaryHead::new(ch, self.num_classes, device)),
            _ => None,
        };
        Ok(DartsNetwork {
            backbone,
            aux_index,
            auxiliary,
        })
    }
}

/// The macro structure of the DARTS network and its supernets (`NetworkCIFAR` and `Network`
/// of `quark0/darts`): a stem of `stem_multiplier · channels`, `layers` cells with reductions
/// at 1/3 and 2/3 of the depth, global pooling and a linear classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DartsMacro {
    /// Input image channels.
    pub in_channels: usize,
    /// Initial channels C.
    pub channels: usize,
    /// Number of cells.
    pub layers: usize,
    /// Stem width as a multiple of C.
    pub stem_multiplier: usize,
    /// Number of classes.
    pub num_classes: usize,
}

impl DartsMacro {
    /// The indices of the two reduction cells.
    pub fn reductions(&self) -> [usize; 2] {
        [self.layers / 3, 2 * self.layers / 3]
    }
}

/// The preprocessing of a DARTS cell's two inputs to `site.c` channels: a factorized reduction
/// of the state two back when the previous cell reduced (a 1×1 ReLU-conv-BN otherwise), a 1×1
/// ReLU-conv-BN of the previous state.
pub fn preprocess_configs(site: &DartsCellSite) -> (OpConfig, OpConfig) {
    let conv1x1 = OpKind::relu_conv_bn(1);
    let preprocess0 = if site.reduction_prev {
        OpConfig::new(OpKind::FactorizedReduce, site.c_pp, site.c, 2)
    } else {
        OpConfig::new(conv1x1, site.c_pp, site.c, 1)
    };
    (preprocess0, OpConfig::new(conv1x1, site.c_p, site.c, 1))
}

/// What a cell of a [`DartsBackbone`] is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DartsCellSite {
    /// The cell's index (0-based).
    pub index: usize,
    /// Channels of the state two cells back.
    pub c_pp: usize,
    /// Channels of the previous state.
    pub c_p: usize,
    /// Channels per operation of this cell.
    pub c: usize,
    /// Whether this cell reduces (stride 2, channels doubled).
    pub reduction: bool,
    /// Whether the previous cell reduced.
    pub reduction_prev: bool,
}

/// The DARTS macro network around a cell type `C`: stem (3×3 convolution, batch norm), the
/// cells, each reading the outputs of the two before it, global average pooling and a linear
/// classifier. The stand-alone [`DartsNetwork`] and the differentiable and single-path
/// supernets ([`crate::darts_search::supernet::DartsSupernet`]) are this backbone with their
/// cells.
#[derive(Module, Debug)]
pub struct DartsBackbone<B: Backend, C: Module<B>> {
    stem_conv: Conv<B>,
    stem_bn: BatchNorm<B>,
    cells: Vec<C>,
    classifier: Linear<B>,
}

impl<B: Backend, C: Module<B>> DartsBackbone<B, C> {
    /// The backbone of `structure`; `cell(site)` builds each cell and says its output
    /// channels.
    pub fn new(
        structure: DartsMacro,
        device: &Device<B>,
        mut cell: impl FnMut(DartsCellSite) -> Result<(C, usize), SupernetError>,
    ) -> Result<Self, SupernetError> {
        let stem_c = structure.stem_multiplier * structure.channels;
        let (mut c_pp, mut c_p, mut c) = (stem_c, stem_c, structure.channels);
        let mut cells = Vec::with_capacity(structure.layers);
        let mut reduction_prev = false;
        for index in 0..structure.layers {
            let reduction = structure.reductions().contains(&index);
            if reduction {
                c *= 2;
            }
            let (built, out) = cell(DartsCellSite {
                index,
                c_pp,
                c_p,
                c,
                reduction,
                reduction_prev,
            })?;
            cells.push(built);
            reduction_prev = reduction;
            c_pp = c_p;
            c_p = out;
        }
        Ok(Self {
            stem_conv: Conv::new(structure.in_channels, stem_c, 3, 1, 1, 1, device),
            stem_bn: BatchNormConfig::new(stem_c).init(device),
            cells,
            classifier: LinearConfig::new(c_p, structure.num_classes).init(device),
        })
    }

    /// The cells, in network order.
    pub fn cells(&self) -> &[C] {
        &self.cells
    }

    /// Logits `[batch, classes]` of `images`; `cell(i, c, s0, s1)` applies cell `i` to the
    /// two previous states.
    pub fn forward_with(
        &self,
        images: Tensor<B, 4>,
        mut cell: impl FnMut(usize, &C, Tensor<B, 4>, Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 2> {
        let s = batch_norm(&self.stem_bn, self.stem_conv.forward(images));
        let (mut s0, mut s1) = (s.clone(), s);
        for (i, c) in self.cells.iter().enumerate() {
            let next = cell(i, c, s0, s1.clone());
            s0 = s1;
            s1 = next;
        }
        self.classifier.forward(global_avg_pool(s1))
    }

    /// The stem's multiply-accumulates for one `input` image and its output shape.
    pub fn stem_macs(&self, input: [usize; 3]) -> (u64, [usize; 3]) {
        let (m, [h, w]) = self.stem_conv.macs(input[1], input[2]);
        (m, [self.stem_conv.out_channels(), h, w])
    }

    /// The classifier's multiply-accumulates for one image.
    pub fn classifier_macs(&self) -> u64 {
        linear_macs(&self.classifier)
    }
}

/// The operation kind of a DARTS primitive.
pub fn darts_op_kind(op: DartsOp) -> OpKind {
    match op {
        DartsOp::None => OpKind::Zero,
        DartsOp::MaxPool3x3 => OpKind::MaxPool { kernel: 3 },
        DartsOp::AvgPool3x3 => OpKind::AvgPool { kernel: 3 },
        DartsOp::SkipConnect => OpKind::Identity,
        DartsOp::SepConv3x3 => OpKind::SepConv { kernel: 3 },
        DartsOp::SepConv5x5 => OpKind::SepConv { kernel: 5 },
        DartsOp::SepConv7x7 => OpKind::SepConv { kernel: 7 },
        DartsOp::DilConv3x3 => OpKind::dil_conv(3),
        DartsOp::DilConv5x5 => OpKind::dil_conv(5),
        DartsOp::Conv7x1Conv1x7 => OpKind::SpatialConv { kernel: 7 },
    }
}

/// A cell as the networks of this module build it: intermediate nodes, each combining one
/// operation per input state by a sum (DARTS, NASNet `add`) or a concatenation (NASNet
/// `concat`), and the states the cell outputs. States are numbered as in the DARTS notation:
/// 0 and 1 are the two previous cells' outputs, `2 + k` is node `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSpec {
    /// The intermediate nodes, in order.
    pub nodes: Vec<NodeSpec>,
    /// The states concatenated into the cell's output.
    pub concat: Vec<usize>,
}

/// One intermediate node of a [`CellSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// `(operation, input state)` pairs.
    pub inputs: Vec<(OpKind, usize)>,
    /// Concatenate the operations' outputs (true) or sum them (false).
    pub concat: bool,
}

impl CellSpec {
    /// The normal or reduction cell of a DARTS genotype (two inputs per node, summed).
    pub fn darts(genotype: &Genotype, kind: CellKind) -> Result<Self, SupernetError> {
        let ops = genotype.cell(kind);
        if !ops.len().is_multiple_of(2) {
            return Err(SupernetError::InvalidConfig {
                what: "DARTS cell",
                reason: "a genotype cell needs two inputs per node".into(),
            });
        }
        Ok(Self {
            nodes: ops
                .chunks(2)
                .map(|pair| NodeSpec {
                    inputs: pair
                        .iter()
                        .map(|&(op, input)| (darts_op_kind(op), input))
                        .collect(),
                    concat: false,
                })
                .collect(),
            concat: genotype.concat(kind).to_vec(),
        })
    }

    /// The normal or reduction cell of a NASNet architecture; the output concatenates the
    /// blocks no block uses ([`NasNetArch::output_states`]).
    pub fn nasnet(arch: &NasNetArch, kind: CellKind) -> Self {
        Self {
            nodes: arch
                .cell(kind)
                .iter()
                .map(|b| NodeSpec {
                    inputs: b
                        .ops
                        .iter()
                        .zip(b.inputs)
                        .map(|(&op, input)| (nasnet_op_kind(op), input))
                        .collect(),
                    concat: b.combine == Combiner::Concat,
                })
                .collect(),
            concat: arch.output_states(kind),
        }
    }
}

/// The operation kind of a NASNet operation (NDS/NNI definitions: `dil_conv_3x3` has
/// dilation 2, `conv_kxk` is ReLU-conv-BN).
pub fn nasnet_op_kind(op: NasNetOp) -> OpKind {
    match op {
        NasNetOp::SkipConnect => OpKind::Identity,
        NasNetOp::Conv3x1Conv1x3 => OpKind::SpatialConv { kernel: 3 },
        NasNetOp::Conv7x1Conv1x7 => OpKind::SpatialConv { kernel: 7 },
        NasNetOp::DilConv3x3 => OpKind::dil_conv(3),
        NasNetOp::AvgPool3x3 => OpKind::AvgPool { kernel: 3 },
        NasNetOp::MaxPool3x3 => OpKind::MaxPool { kernel: 3 },
        NasNetOp::MaxPool5x5 => OpKind::MaxPool { kernel: 5 },
        NasNetOp::MaxPool7x7 => OpKind::MaxPool { kernel: 7 },
        NasNetOp::Conv1x1 => OpKind::relu_conv_bn(1),
        NasNetOp::Conv3x3 => OpKind::relu_conv_bn(3),
        NasNetOp::SepConv3x3 => OpKind::SepConv { kernel: 3 },
        NasNetOp::SepConv5x5 => OpKind::SepConv { kernel: 5 },
        NasNetOp::SepConv7x7 => OpKind::SepConv { kernel: 7 },
    }
}

/// One operation of a cell: an optional 1×1 projection (when a width-keeping operation reads
/// a state whose width differs from the cell's, e.g. a NASNet `concat` node), then the op.
#[derive(Module, Debug)]
pub struct CellOp<B: Backend> {
    project: Option<Op<B>>,
    op: Op<B>,
    input: usize,
}

/// One cell of a DARTS or NASNet network.
#[derive(Module, Debug)]
pub struct DartsCell<B: Backend> {
    preprocess0: Op<B>,
    preprocess1: Op<B>,
    nodes: Vec<Vec<CellOp<B>>>,
    node_concat: Vec<bool>,
    concat: Vec<usize>,
    out_channels: usize,
}

impl<B: Backend> DartsCell<B> {
    /// A normal or reduction cell of `spec` for `site`: `site.c` channels per operation, reading
    /// states of `site.c_pp` and `site.c_p` channels (`site.reduction_prev`: the previous cell
    /// halved the resolution).
    pub fn new(
        spec: &CellSpec,
        site: &DartsCellSite,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let conv1x1 = OpKind::relu_conv_bn(1);
        let (preprocess0, preprocess1) = preprocess_configs(site);
        let (c, reduction) = (site.c, site.reduction);
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "cell",
            reason,
        };
        if spec.concat.is_empty() || spec.nodes.iter().any(|n| n.inputs.is_empty()) {
            return Err(bad(
                "a cell needs a non-empty output concat and at least one input per node".into(),
            ));
        }
        let states = 2 + spec.nodes.len();
        let mut widths = vec![c, c];
        let mut nodes = Vec::with_capacity(spec.nodes.len());
        for (k, node) in spec.nodes.iter().enumerate() {
            let mut ops = Vec::with_capacity(node.inputs.len());
            for &(kind, input) in &node.inputs {
                if input >= 2 + k {
                    return Err(bad(format!(
                        "node {} reads state {input}, which is not an earlier state",
                        2 + k
                    )));
                }
                let stride = if reduction && input < 2 { 2 } else { 1 };
                let width = widths[input];
                let keeps_width = matches!(
                    kind,
                    OpKind::Zero | OpKind::AvgPool { .. } | OpKind::MaxPool { .. }
                );
                let project = (keeps_width && width != c)
                    .then(|| OpConfig::new(conv1x1, width, c, 1).init(device))
                    .transpose()?;
                let c_in = if project.is_some() { c } else { width };
                let op = OpConfig::new(kind, c_in, c, stride)
                    .with_pool_bn(false)
                    .init(device)?;
                ops.push(CellOp { project, op, input });
            }
            widths.push(if node.concat { c * ops.len() } else { c });
            nodes.push(ops);
        }
        if let Some(&out) = spec.concat.iter().find(|&&i| i >= states) {
            return Err(bad(format!(
                "output state {out} does not exist (the cell has {states} states)"
            )));
        }
        Ok(Self {
            preprocess0: preprocess0.init(device)?,
            preprocess1: preprocess1.init(device)?,
            out_channels: spec.concat.iter().map(|&i| widths[i]).sum(),
            nodes,
            node_concat: spec.nodes.iter().map(|n| n.concat).collect(),
            concat: spec.concat.clone(),
        })
    }

    /// The number of output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Applies the cell to the two previous states; `drop_prob > 0` applies drop-path with masks
    /// drawn from `seed`.
    pub fn forward(
        &self,
        s0: Tensor<B, 4>,
        s1: Tensor<B, 4>,
        drop_prob: f64,
        seed: u64,
    ) -> Tensor<B, 4> {
        let mut states = vec![self.preprocess0.forward(s0), self.preprocess1.forward(s1)];
        let mut index = 0u64;
        for (ops, &concat) in self.nodes.iter().zip(&self.node_concat) {
            let mut outs = Vec::with_capacity(ops.len());
            for cell_op in ops {
                let mut h = states[cell_op.input].clone();
                if let Some(p) = &cell_op.project {
                    h = p.forward(h);
                }
                h = cell_op.op.forward(h);
                if !matches!(cell_op.op, Op::Identity(_)) {
                    h = drop_path(h, drop_prob, mix_seed(seed, index, 0));
                }
                index += 1;
                outs.push(h);
            }
            let out = if concat {
                Tensor::cat(outs, 1)
            } else {
                let mut it = outs.into_iter();
                let first = it
                    .next()
                    .unwrap_or_else(|| unreachable!("checked non-empty"));
                it.fold(first, |a, b| a + b)
            };
            states.push(out);
        }
        Tensor::cat(self.concat.iter().map(|&i| states[i].clone()).collect(), 1)
    }

    /// Multiply-accumulates for inputs of shapes `s0` and `s1`, and the output shape.
    pub fn macs(&self, s0: [usize; 3], s1: [usize; 3]) -> (u64, [usize; 3]) {
        let (m0, p0) = self.preprocess0.macs(s0);
        let (m1, p1) = self.preprocess1.macs(s1);
        let mut total = m0 + m1;
        let mut shapes = vec![p0, p1];
        for (ops, &concat) in self.nodes.iter().zip(&self.node_concat) {
            let mut out = [0, 0, 0];
            for cell_op in ops {
                let mut shape = shapes[cell_op.input];
                if let Some(p) = &cell_op.project {
                    let (m, s) = p.macs(shape);
                    total += m;
                    shape = s;
                }
                let (m, s) = cell_op.op.macs(shape);
                total += m;
                out = if concat {
                    [out[0] + s[0], s[1], s[2]]
                } else {
                    s
                };
            }
            shapes.push(out);
        }
        let [_, h, w] = shapes[self.concat[0]];
        (total, [self.out_channels, h, w])
    }
}

/// The auxiliary classifier of DARTS / NASNet.
#[derive(Module, Debug)]
pub struct AuxiliaryHead<B: Backend> {
    pool: AdaptiveAvgPool2d,
    conv1: Conv2d<B>,
    bn1: BatchNorm<B>,
    conv2: Conv2d<B>,
    bn2: BatchNorm<B>,
    classifier: Linear<B>,
}

impl<B: Backend> AuxiliaryHead<B> {
    fn new(c: usize, num_classes: usize, device: &Device<B>) -> Self {
        Self {
            pool: AdaptiveAvgPool2dConfig::new([2, 2]).init(),
            conv1: Conv2dConfig::new([c, 128], [1, 1])
                .with_bias(false)
                .init(device),
            bn1: BatchNormConfig::new(128).init(device),
            conv2: Conv2dConfig::new([128, 768], [2, 2])
                .with_bias(false)
                .init(device),
            bn2: BatchNormConfig::new(768).init(device),
            classifier: LinearConfig::new(768, num_classes).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.pool.forward(relu(x));
        let x = batch_norm_relu(&self.bn1, self.conv1.forward(x));
        let x = batch_norm_relu(&self.bn2, self.conv2.forward(x));
        let [n, c, _, _] = x.dims();
        self.classifier.forward(x.reshape([n, c]))
    }
}

/// The DARTS network of one genotype: the [`DartsBackbone`] of [`DartsCell`]s and the optional
/// auxiliary head.
#[derive(Module, Debug)]
pub struct DartsNetwork<B: Backend> {
    backbone: DartsBackbone<B, DartsCell<B>>,
    aux_index: usize,
    auxiliary: Option<AuxiliaryHead<B>>,
}

impl<B: Backend> DartsNetwork<B> {
    fn run(
        &self,
        images: Tensor<B, 4>,
        options: &TrainOptions,
        aux: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let mut aux_logits = None;
        let logits = self.backbone.forward_with(images, |i, cell, s0, s1| {
            let seed = mix_seed(options.seed, i as u64, 1);
            let next = cell.forward(s0, s1, options.drop_path, seed);
            if aux && i == self.aux_index {
                aux_logits = self.auxiliary.as_ref().map(|h| h.forward(next.clone()));
            }
            next
        });
        (logits, aux_logits)
    }
}

impl<B: Backend> Classifier<B> for DartsNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.run(images, &TrainOptions::default(), false).0
    }

    /// Stem, cells and classifier (the auxiliary head only trains, so it is not counted).
    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let (mut total, stem) = self.backbone.stem_macs(input);
        let (mut s0, mut s1) = (stem, stem);
        for cell in self.backbone.cells() {
            let (m, out) = cell.macs(s0, s1);
            total += m;
            s0 = s1;
            s1 = out;
        }
        Some(total + self.backbone.classifier_macs())
    }

    fn train_logits(
        &self,
        images: Tensor<B, 4>,
        options: &TrainOptions,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        self.run(images, options, true)
    }
}
