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

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::darts::{CellKind, DartsOp, Genotype};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::Conv;
use crate::network::{Classifier, TrainOptions, drop_path, global_avg_pool, mix_seed};
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
        [self.layers / 3, 2 * self.layers / 3]
    }

    /// Builds the network of `genotype`.
    pub fn init<B: Backend>(
        &self,
        genotype: &Genotype,
        device: &Device<B>,
    ) -> Result<DartsNetwork<B>, SupernetError> {
        self.check()?;
        let stem_c = self.stem_multiplier * self.channels;
        let (mut c_pp, mut c_p, mut c) = (stem_c, stem_c, self.channels);
        let mut cells = Vec::with_capacity(self.layers);
        let mut reduction_prev = false;
        let mut aux_channels = None;
        for i in 0..self.layers {
            let reduction = self.reductions().contains(&i);
            if reduction {
                c *= 2;
            }
            let cell = DartsCell::new(genotype, c_pp, c_p, c, reduction, reduction_prev, device)?;
            reduction_prev = reduction;
            c_pp = c_p;
            c_p = cell.out_channels;
            cells.push(cell);
            if i == self.reductions()[1] {
                aux_channels = Some(c_p);
            }
        }
        let auxiliary = match (self.auxiliary, aux_channels) {
            (true, Some(ch)) => Some(AuxiliaryHead::new(ch, self.num_classes, device)),
            _ => None,
        };
        Ok(DartsNetwork {
            stem_conv: Conv::new(self.in_channels, stem_c, 3, 1, 1, 1, device),
            stem_bn: BatchNormConfig::new(stem_c).init(device),
            cells,
            aux_index: self.reductions()[1],
            auxiliary,
            classifier: LinearConfig::new(c_p, self.num_classes).init(device),
        })
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
        DartsOp::DilConv3x3 => OpKind::DilConv {
            kernel: 3,
            dilation: 2,
        },
        DartsOp::DilConv5x5 => OpKind::DilConv {
            kernel: 5,
            dilation: 2,
        },
        DartsOp::Conv7x1Conv1x7 => OpKind::SpatialConv { kernel: 7 },
    }
}

/// One DARTS cell.
#[derive(Module, Debug)]
pub struct DartsCell<B: Backend> {
    preprocess0: Op<B>,
    preprocess1: Op<B>,
    ops: Vec<Op<B>>,
    inputs: Vec<usize>,
    concat: Vec<usize>,
    out_channels: usize,
}

impl<B: Backend> DartsCell<B> {
    /// A normal or reduction cell of `genotype` with `c` channels per node, reading states of
    /// `c_pp` and `c_p` channels (`reduction_prev`: the previous cell halved the resolution).
    pub fn new(
        genotype: &Genotype,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction: bool,
        reduction_prev: bool,
        device: &Device<B>,
    ) -> Result<Self, SupernetError> {
        let kind = if reduction {
            CellKind::Reduce
        } else {
            CellKind::Normal
        };
        let preprocess0 = if reduction_prev {
            OpConfig::new(OpKind::FactorizedReduce, c_pp, c, 2)
        } else {
            OpConfig::new(
                OpKind::ReluConvBn {
                    kernel: 1,
                    dilation: 1,
                },
                c_pp,
                c,
                1,
            )
        };
        let preprocess1 = OpConfig::new(
            OpKind::ReluConvBn {
                kernel: 1,
                dilation: 1,
            },
            c_p,
            c,
            1,
        );
        let mut ops = Vec::new();
        let mut inputs = Vec::new();
        for &(op, input) in genotype.cell(kind) {
            let stride = if reduction && input < 2 { 2 } else { 1 };
            ops.push(OpConfig::new(darts_op_kind(op), c, c, stride).init(device)?);
            inputs.push(input);
        }
        let concat = genotype.concat(kind).to_vec();
        if concat.is_empty() || ops.len() % 2 != 0 {
            return Err(SupernetError::InvalidConfig {
                what: "DARTS cell",
                reason: "a genotype cell needs two inputs per node and a non-empty concat".into(),
            });
        }
        let states = 2 + ops.len() / 2;
        if let Some(&bad) = inputs.iter().chain(&concat).find(|&&i| i >= states) {
            return Err(SupernetError::InvalidConfig {
                what: "DARTS cell",
                reason: format!("state {bad} does not exist (the cell has {states} states)"),
            });
        }
        Ok(Self {
            preprocess0: preprocess0.init(device)?,
            preprocess1: preprocess1.init(device)?,
            out_channels: concat.len() * c,
            ops,
            inputs,
            concat,
        })
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
        for node in 0..self.ops.len() / 2 {
            let mut sum: Option<Tensor<B, 4>> = None;
            for k in [2 * node, 2 * node + 1] {
                let op = &self.ops[k];
                let mut h = op.forward(states[self.inputs[k]].clone());
                if !matches!(op, Op::Identity(_)) {
                    h = drop_path(h, drop_prob, mix_seed(seed, k as u64, 0));
                }
                sum = Some(match sum {
                    Some(s) => s + h,
                    None => h,
                });
            }
            let zero = states[0].zeros_like();
            states.push(sum.unwrap_or(zero));
        }
        Tensor::cat(self.concat.iter().map(|&i| states[i].clone()).collect(), 1)
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
        let x = relu(self.bn1.forward(self.conv1.forward(x)));
        let x = relu(self.bn2.forward(self.conv2.forward(x)));
        let [n, c, _, _] = x.dims();
        self.classifier.forward(x.reshape([n, c]))
    }
}

/// The DARTS network of one genotype.
#[derive(Module, Debug)]
pub struct DartsNetwork<B: Backend> {
    stem_conv: Conv<B>,
    stem_bn: BatchNorm<B>,
    cells: Vec<DartsCell<B>>,
    aux_index: usize,
    auxiliary: Option<AuxiliaryHead<B>>,
    classifier: Linear<B>,
}

impl<B: Backend> DartsNetwork<B> {
    fn run(
        &self,
        images: Tensor<B, 4>,
        options: &TrainOptions,
        aux: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let s = self.stem_bn.forward(self.stem_conv.forward(images));
        let (mut s0, mut s1) = (s.clone(), s);
        let mut aux_logits = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let seed = mix_seed(options.seed, i as u64, 1);
            let next = cell.forward(s0, s1.clone(), options.drop_path, seed);
            s0 = s1;
            s1 = next;
            if aux && i == self.aux_index {
                aux_logits = self.auxiliary.as_ref().map(|h| h.forward(s1.clone()));
            }
        }
        (self.classifier.forward(global_avg_pool(s1)), aux_logits)
    }
}

impl<B: Backend> Classifier<B> for DartsNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.run(images, &TrainOptions::default(), false).0
    }

    fn train_logits(
        &self,
        images: Tensor<B, 4>,
        options: &TrainOptions,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        self.run(images, options, true)
    }
}
