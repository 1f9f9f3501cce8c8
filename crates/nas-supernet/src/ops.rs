//! Candidate operations: the building blocks of cells and chains.
//!
//! Every operation is a Config/Module pair in Burn's style: an [`OpConfig`] (serde, the
//! operation's kind plus its channels and stride) builds an [`Op`] module with
//! [`OpConfig::init`]. The kinds follow the papers' definitions:
//!
//! | kind | definition | used by |
//! | --- | --- | --- |
//! | [`OpKind::Zero`] | the zero tensor (strided when the op reduces) | NB201 `none`, DARTS `none` |
//! | [`OpKind::Identity`] | identity; [`OpKind::FactorizedReduce`] when it must reduce or change width | `skip_connect` |
//! | [`OpKind::ReluConvBn`] | ReLU, k×k convolution (dilation d), batch norm | NB201 `nor_conv_kxk`, cell preprocessing |
//! | [`OpKind::SepConv`] | twice: ReLU, depthwise k×k, pointwise 1×1, batch norm (the first with the stride) | DARTS `sep_conv_kxk` |
//! | [`OpKind::DilConv`] | ReLU, depthwise k×k dilated, pointwise 1×1, batch norm | DARTS `dil_conv_kxk` |
//! | [`OpKind::AvgPool`], [`OpKind::MaxPool`] | k×k pooling (average excludes padding), optional batch norm | `avg_pool_3x3`, `max_pool_3x3` |
//! | [`OpKind::FactorizedReduce`] | ReLU, two stride-2 1×1 convolutions offset by one pixel, concatenated, batch norm | DARTS reductions |
//! | [`OpKind::SpatialConv`] | ReLU, 1×k then k×1 convolution, batch norm | NASNet `1x7 then 7x1`, DARTS `conv_7x1_1x7` |
//! | [`OpKind::ConvBnRelu`] | k×k convolution, batch norm, ReLU (post-activation) | DPC `conv_1x1`, NAS-RL layers |
//! | [`OpKind::MbConv`] | 1×1 expansion to e·c_in (skipped for e = 1), BN, ReLU6; depthwise k×k with the stride, BN, ReLU6; 1×1 projection, BN; plus the input when the shapes allow | ProxylessNAS `kxk_MBConv{e}`, MobileNetV2 |
//! | [`OpKind::Shuffle`] | ShuffleNetV2 unit: channel split (stride 1) or two branches (stride 2), 1×1–depthwise k×k–1×1 main branch, concatenation; the next unit's split is the channel shuffle | SPOS `shufflenet_kxk` |
//! | [`OpKind::ShuffleXception`] | ShuffleNetV2 unit whose main branch is three depthwise 3×3 + 1×1 pairs | SPOS `xception` |
//! | [`OpKind::SepAtrous`] | depthwise 3×3 with atrous rates r_h × r_w, BN, ReLU, pointwise 1×1, BN, ReLU | DPC `sep_atrous_3x3_r{h}x{w}` |
//! | [`OpKind::PyramidPool`] | average pooling to a g_h × g_w grid, 1×1 conv, BN, ReLU, bilinear resize back | DPC `spp_{h}x{w}` |
//!
//! Convolutions have no bias (batch norm follows). Spatial padding keeps the size for stride 1
//! and halves it (rounding up) for stride 2.

use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::{Conv, ConvGeometry, avg_pool2d, batch_norm, max_pool2d};

/// The kind of a candidate operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Outputs zeros.
    Zero,
    /// Identity (skip connection).
    Identity,
    /// ReLU → conv k×k (dilation) → BN.
    ReluConvBn {
        /// Kernel size.
        kernel: usize,
        /// Dilation.
        dilation: usize,
    },
    /// DARTS separable convolution (two stacked depthwise-separable blocks).
    SepConv {
        /// Kernel size.
        kernel: usize,
    },
    /// DARTS dilated depthwise-separable convolution.
    DilConv {
        /// Kernel size.
        kernel: usize,
        /// Dilation.
        dilation: usize,
    },
    /// Average pooling (padding excluded from the average).
    AvgPool {
        /// Kernel size.
        kernel: usize,
    },
    /// Max pooling.
    MaxPool {
        /// Kernel size.
        kernel: usize,
    },
    /// Factorized reduction (stride 2, any widths).
    FactorizedReduce,
    /// ReLU → conv 1×k → conv k×1 → BN (NASNet's `1x7 then 7x1`).
    SpatialConv {
        /// Kernel length k.
        kernel: usize,
    },
    /// Conv k×k → BN → ReLU.
    ConvBnRelu {
        /// Kernel size.
        kernel: usize,
    },
    /// MobileNetV2 inverted bottleneck with a residual when stride is 1 and widths are equal.
    MbConv {
        /// Depthwise kernel size.
        kernel: usize,
        /// Expansion ratio of the hidden width.
        expansion: usize,
    },
    /// ShuffleNetV2 unit (stride 1: `c_in == c_out`, split in halves; stride 2:
    /// `c_out > c_in`). The main branch is `c_out / 2` wide.
    Shuffle {
        /// Depthwise kernel size.
        kernel: usize,
    },
    /// ShuffleNetV2 unit with SPOS's Xception-like main branch.
    ShuffleXception,
    /// Depthwise-separable 3×3 atrous convolution (stride 1).
    SepAtrous {
        /// Atrous rate along the height.
        rate_h: usize,
        /// Atrous rate along the width.
        rate_w: usize,
    },
    /// Spatial pyramid pooling branch (stride 1).
    PyramidPool {
        /// Grid rows.
        grid_h: usize,
        /// Grid columns.
        grid_w: usize,
    },
}

/// Configuration of one operation: its kind, widths and stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpConfig {
    /// What the operation computes.
    pub kind: OpKind,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Spatial stride (1 or 2).
    pub stride: usize,
    /// Batch norm after pooling (DARTS's search network puts one there).
    pub pool_bn: bool,
}

impl OpConfig {
    /// An operation of `kind` from `c_in` to `c_out` channels with `stride`.
    pub fn new(kind: OpKind, c_in: usize, c_out: usize, stride: usize) -> Self {
        Self {
            kind,
            c_in,
            c_out,
            stride,
            pool_bn: false,
        }
    }

    /// Puts a batch norm after pooling operations.
    pub fn with_pool_bn(mut self, pool_bn: bool) -> Self {
        self.pool_bn = pool_bn;
        self
    }

    /// Checks widths, stride and kernel sizes: channels ≥ 1, stride 1 or 2, odd kernels,
    /// dilation ≥ 1, pooling and zero with `c_in == c_out`, factorized reduce with stride 2 and
    /// an even `c_out`.
    pub fn check(&self) -> Result<(), SupernetError> {
        let bad = |reason: String| {
            Err(SupernetError::InvalidConfig {
                what: "operation",
                reason,
            })
        };
        if self.c_in == 0 || self.c_out == 0 {
            return bad(format!("{:?}: channels must be positive", self.kind));
        }
        if self.stride != 1 && self.stride != 2 {
            return bad(format!(
                "{:?}: stride must be 1 or 2, got {}",
                self.kind, self.stride
            ));
        }
        let odd = |k: usize| k % 2 == 1;
        match self.kind {
            OpKind::ReluConvBn { kernel, dilation } | OpKind::DilConv { kernel, dilation } => {
                if !odd(kernel) || dilation == 0 {
                    return bad(format!(
                        "{:?}: kernel must be odd and dilation ≥ 1",
                        self.kind
                    ));
                }
            }
            OpKind::SepConv { kernel }
            | OpKind::AvgPool { kernel }
            | OpKind::MaxPool { kernel }
            | OpKind::SpatialConv { kernel }
            | OpKind::ConvBnRelu { kernel }
            | OpKind::Shuffle { kernel } => {
                if !odd(kernel) {
                    return bad(format!("{:?}: kernel must be odd", self.kind));
                }
            }
            OpKind::MbConv { kernel, expansion } => {
                if !odd(kernel) || expansion == 0 {
                    return bad(format!(
                        "{:?}: kernel must be odd and expansion ≥ 1",
                        self.kind
                    ));
                }
            }
            OpKind::ShuffleXception => {}
            OpKind::SepAtrous { rate_h, rate_w } => {
                if rate_h == 0 || rate_w == 0 || self.stride != 1 {
                    return bad(format!(
                        "{:?}: rates must be ≥ 1 and the stride 1",
                        self.kind
                    ));
                }
            }
            OpKind::PyramidPool { grid_h, grid_w } => {
                if grid_h == 0 || grid_w == 0 || self.stride != 1 {
                    return bad(format!(
                        "{:?}: grid sizes must be ≥ 1 and the stride 1",
                        self.kind
                    ));
                }
            }
            OpKind::FactorizedReduce => {
                if self.stride != 2 || !self.c_out.is_multiple_of(2) {
                    return bad("factorized reduce needs stride 2 and an even c_out".into());
                }
            }
            OpKind::Zero | OpKind::Identity => {}
        }
        let same_width = matches!(
            self.kind,
            OpKind::Zero | OpKind::AvgPool { .. } | OpKind::MaxPool { .. }
        );
        if same_width && self.c_in != self.c_out {
            return bad(format!(
                "{:?} keeps the width: c_in ({}) must equal c_out ({})",
                self.kind, self.c_in, self.c_out
            ));
        }
        if matches!(self.kind, OpKind::Shuffle { .. } | OpKind::ShuffleXception) {
            let ok = if self.stride == 1 {
                self.c_in == self.c_out && self.c_in.is_multiple_of(2) && self.c_in >= 2
            } else {
                self.c_out > self.c_in && self.c_out >= 2
            };
            if !ok {
                return bad(format!(
                    "{:?}: a stride-1 unit needs c_in == c_out (even), a stride-2 unit c_out > c_in; got {} -> {}",
                    self.kind, self.c_in, self.c_out
                ));
            }
        }
        Ok(())
    }

    /// Builds the module. Identity that must reduce or change width becomes a factorized
    /// reduction (stride 2) or a 1×1 ReLU-conv-BN (stride 1), as in DARTS.
    pub fn init<B: Backend>(&self, device: &Device<B>) -> Result<Op<B>, SupernetError> {
        self.check()?;
        let (ci, co, s) = (self.c_in, self.c_out, self.stride);
        Ok(match self.kind {
            OpKind::Zero => Op::Zero(Zero { stride: s }),
            OpKind::Identity if s == 1 && ci == co => Op::Identity(Identity),
            OpKind::Identity if s == 2 && co % 2 == 0 => {
                Op::FactorizedReduce(FactorizedReduce::new(ci, co, device))
            }
            OpKind::Identity => Op::ReluConvBn(ReluConvBn::new(ci, co, 1, s, 1, device)),
            OpKind::ReluConvBn { kernel, dilation } => {
                Op::ReluConvBn(ReluConvBn::new(ci, co, kernel, s, dilation, device))
            }
            OpKind::SepConv { kernel } => Op::SepConv(SepConv::new(ci, co, kernel, s, device)),
            OpKind::DilConv { kernel, dilation } => {
                Op::DilConv(DilConv::new(ci, co, kernel, s, dilation, device))
            }
            OpKind::AvgPool { kernel } => {
                Op::Pool(Pool::new(false, ci, kernel, s, self.pool_bn, device))
            }
            OpKind::MaxPool { kernel } => {
                Op::Pool(Pool::new(true, ci, kernel, s, self.pool_bn, device))
            }
            OpKind::FactorizedReduce => Op::FactorizedReduce(FactorizedReduce::new(ci, co, device)),
            OpKind::SpatialConv { kernel } => {
                Op::SpatialConv(SpatialConv::new(ci, co, kernel, s, device))
            }
            OpKind::ConvBnRelu { kernel } => {
                Op::ConvBnRelu(ConvBnRelu::new(ci, co, [kernel, kernel], s, device))
            }
            OpKind::MbConv { kernel, expansion } => {
                Op::MbConv(MbConv::new(ci, co, kernel, s, expansion, device))
            }
            OpKind::Shuffle { kernel } => {
                Op::Shuffle(ShuffleUnit::new(ci, co, kernel, s, false, device))
            }
            OpKind::ShuffleXception => Op::Shuffle(ShuffleUnit::new(ci, co, 3, s, true, device)),
            OpKind::SepAtrous { rate_h, rate_w } => {
                Op::SepAtrous(SepAtrous::new(ci, co, [rate_h, rate_w], device))
            }
            OpKind::PyramidPool { grid_h, grid_w } => {
                Op::PyramidPool(PyramidPool::new(ci, co, [grid_h, grid_w], device))
            }
        })
    }
}

/// A built operation (see [`OpKind`] for the definitions).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Op<B: Backend> {
    /// Zero.
    Zero(Zero),
    /// Identity.
    Identity(Identity),
    /// ReLU-conv-BN.
    ReluConvBn(ReluConvBn<B>),
    /// Separable convolution.
    SepConv(SepConv<B>),
    /// Dilated separable convolution.
    DilConv(DilConv<B>),
    /// Pooling.
    Pool(Pool<B>),
    /// Factorized reduction.
    FactorizedReduce(FactorizedReduce<B>),
    /// 1×k then k×1 convolution.
    SpatialConv(SpatialConv<B>),
    /// Conv-BN-ReLU.
    ConvBnRelu(ConvBnRelu<B>),
    /// Inverted bottleneck.
    MbConv(MbConv<B>),
    /// ShuffleNetV2 unit.
    Shuffle(ShuffleUnit<B>),
    /// Atrous separable convolution.
    SepAtrous(SepAtrous<B>),
    /// Pyramid pooling branch.
    PyramidPool(PyramidPool<B>),
}

impl<B: Backend> Op<B> {
    /// Applies the operation to `x` (`[batch, channels, height, width]`).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Op::Zero(m) => m.forward(x),
            Op::Identity(_) => x,
            Op::ReluConvBn(m) => m.forward(x),
            Op::SepConv(m) => m.forward(x),
            Op::DilConv(m) => m.forward(x),
            Op::Pool(m) => m.forward(x),
            Op::FactorizedReduce(m) => m.forward(x),
            Op::SpatialConv(m) => m.forward(x),
            Op::ConvBnRelu(m) => m.forward(x),
            Op::MbConv(m) => m.forward(x),
            Op::Shuffle(m) => m.forward(x),
            Op::SepAtrous(m) => m.forward(x),
            Op::PyramidPool(m) => m.forward(x),
        }
    }

    /// Multiply-accumulates of convolutions and linear layers for one input of shape
    /// `[channels, height, width]`, and the output shape. Element-wise work (batch norm,
    /// activations, pooling, additions) is not counted, following the papers' FLOPs
    /// (ProxylessNAS, DARTS, SPOS count the multiply-adds of convolutions and linear layers).
    pub fn macs(&self, input: [usize; 3]) -> (u64, [usize; 3]) {
        let [c, h, w] = input;
        match self {
            Op::Zero(z) => (0, [c, h.div_ceil(z.stride), w.div_ceil(z.stride)]),
            Op::Identity(_) => (0, input),
            Op::ReluConvBn(m) => conv_macs(&m.conv, h, w),
            Op::SepConv(m) => chain_macs(
                &[
                    &m.first.depthwise,
                    &m.first.pointwise,
                    &m.second.depthwise,
                    &m.second.pointwise,
                ],
                h,
                w,
            ),
            Op::DilConv(m) => chain_macs(&[&m.depthwise, &m.pointwise], h, w),
            Op::Pool(m) => (0, [c, h.div_ceil(m.stride), w.div_ceil(m.stride)]),
            Op::FactorizedReduce(m) => {
                let (a, [ca, ho, wo]) = conv_macs(&m.conv_a, h, w);
                let (b, [cb, _, _]) = conv_macs(&m.conv_b, h, w);
                (a + b, [ca + cb, ho, wo])
            }
            Op::SpatialConv(m) => chain_macs(&[&m.row, &m.column], h, w),
            Op::ConvBnRelu(m) => conv_macs(&m.conv, h, w),
            Op::MbConv(m) => {
                let mut convs: Vec<&Conv<B>> = m.expand.iter().map(|(c, _)| c).collect();
                convs.extend([&m.depthwise, &m.project]);
                chain_macs(&convs, h, w)
            }
            Op::Shuffle(m) => m.macs(input),
            Op::SepAtrous(m) => chain_macs(&[&m.depthwise, &m.pointwise], h, w),
            Op::PyramidPool(m) => {
                let [gh, gw] = m.grid(h, w);
                let (macs, [co, _, _]) = conv_macs(&m.conv, gh, gw);
                (macs, [co, h, w])
            }
        }
    }

    /// True for the zero operation (whose output can be skipped in a sum).
    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero(_))
    }
}

fn conv_macs<B: Backend>(conv: &Conv<B>, h: usize, w: usize) -> (u64, [usize; 3]) {
    let (macs, [ho, wo]) = conv.macs(h, w);
    (macs, [conv.out_channels(), ho, wo])
}

fn chain_macs<B: Backend>(convs: &[&Conv<B>], h: usize, w: usize) -> (u64, [usize; 3]) {
    let (mut total, mut shape) = (0, [0, h, w]);
    for conv in convs {
        let (m, out) = conv_macs(conv, shape[1], shape[2]);
        total += m;
        shape = out;
    }
    (total, shape)
}

fn same_padding(kernel: usize, dilation: usize) -> PaddingConfig2d {
    let p = dilation * (kernel - 1) / 2;
    PaddingConfig2d::Explicit(p, p, p, p)
}

/// The zero operation.
#[derive(Module, Clone, Debug)]
pub struct Zero {
    stride: usize,
}

impl Zero {
    /// Zeros of the output shape.
    pub fn forward<B: Backend>(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.stride == 1 {
            return x.zeros_like();
        }
        let [n, c, h, w] = x.dims();
        Tensor::zeros(
            [n, c, h.div_ceil(self.stride), w.div_ceil(self.stride)],
            &x.device(),
        )
    }
}

/// The identity.
#[derive(Module, Clone, Debug)]
pub struct Identity;

/// ReLU → conv → BN.
#[derive(Module, Debug)]
pub struct ReluConvBn<B: Backend> {
    conv: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> ReluConvBn<B> {
    /// A ReLU-conv-BN block.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        device: &Device<B>,
    ) -> Self {
        Self {
            conv: Conv::new(c_in, c_out, kernel, stride, dilation, 1, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_norm(&self.bn, self.conv.forward_relu(x))
    }

    /// Multiply-accumulates and output shape for one input of `h`×`w` pixels.
    pub fn macs(&self, h: usize, w: usize) -> (u64, [usize; 3]) {
        conv_macs(&self.conv, h, w)
    }
}

/// ReLU → depthwise k×k → pointwise 1×1 → BN.
#[derive(Module, Debug)]
pub struct DilConv<B: Backend> {
    depthwise: Conv<B>,
    pointwise: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> DilConv<B> {
    /// A (dilated) depthwise-separable block.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        device: &Device<B>,
    ) -> Self {
        Self {
            depthwise: Conv::new(c_in, c_in, kernel, stride, dilation, c_in, device),
            pointwise: Conv::new(c_in, c_out, 1, 1, 1, 1, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_norm(
            &self.bn,
            self.pointwise.forward(self.depthwise.forward_relu(x)),
        )
    }
}

/// DARTS's separable convolution: two depthwise-separable blocks, the first with the stride and
/// keeping the width, the second changing it.
#[derive(Module, Debug)]
pub struct SepConv<B: Backend> {
    first: DilConv<B>,
    second: DilConv<B>,
}

impl<B: Backend> SepConv<B> {
    /// A separable convolution.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        device: &Device<B>,
    ) -> Self {
        Self {
            first: DilConv::new(c_in, c_in, kernel, stride, 1, device),
            second: DilConv::new(c_in, c_out, kernel, 1, 1, device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.second.forward(self.first.forward(x))
    }
}

/// Average or max pooling, optionally followed by batch norm.
#[derive(Module, Debug)]
pub struct Pool<B: Backend> {
    avg: Option<AvgPool2d>,
    max: Option<MaxPool2d>,
    bn: Option<BatchNorm<B>>,
    stride: usize,
}

impl<B: Backend> Pool<B> {
    /// A pooling operation (`max` or average) over `channels` channels.
    pub fn new(
        max: bool,
        channels: usize,
        kernel: usize,
        stride: usize,
        bn: bool,
        device: &Device<B>,
    ) -> Self {
        let pad = same_padding(kernel, 1);
        Self {
            avg: (!max).then(|| {
                AvgPool2dConfig::new([kernel, kernel])
                    .with_strides([stride, stride])
                    .with_padding(pad.clone())
                    .with_count_include_pad(false)
                    .init()
            }),
            max: max.then(|| {
                MaxPool2dConfig::new([kernel, kernel])
                    .with_strides([stride, stride])
                    .with_padding(pad.clone())
                    .init()
            }),
            bn: bn.then(|| BatchNormConfig::new(channels).init(device)),
            stride,
        }
    }

    /// Applies the pooling.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = match (&self.avg, &self.max) {
            (Some(p), _) => avg_pool2d(p, x),
            (None, Some(p)) => max_pool2d(p, x),
            (None, None) => x,
        };
        match &self.bn {
            Some(bn) => batch_norm(bn, y),
            None => y,
        }
    }
}

/// DARTS's factorized reduction: halves the resolution without losing the odd pixels.
#[derive(Module, Debug)]
pub struct FactorizedReduce<B: Backend> {
    conv_a: Conv<B>,
    conv_b: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> FactorizedReduce<B> {
    /// A factorized reduction from `c_in` to `c_out` (even) channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device<B>) -> Self {
        let half = |c| Conv::new(c_in, c, 1, 2, 1, 1, device);
        Self {
            conv_a: half(c_out / 2),
            conv_b: half(c_out - c_out / 2),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the reduction; odd sizes are padded so both paths give `ceil(size / 2)`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = x.dims();
        let shifted = x
            .clone()
            .pad([(0, h % 2), (0, w % 2)], PadMode::Constant(0.0))
            .slice([0.., 0.., 1.., 1..]);
        let a = self.conv_a.forward_relu(x);
        let b = self.conv_b.forward_relu(shifted);
        batch_norm(&self.bn, Tensor::cat(vec![a, b], 1))
    }
}

/// ReLU → conv 1×k (stride along the width) → conv k×1 (stride along the height) → BN.
#[derive(Module, Debug)]
pub struct SpatialConv<B: Backend> {
    row: Conv<B>,
    column: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> SpatialConv<B> {
    /// A factorized k×k convolution.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        device: &Device<B>,
    ) -> Self {
        let p = (kernel - 1) / 2;
        let geometry = |stride, padding| ConvGeometry {
            stride,
            padding,
            dilation: [1, 1],
        };
        Self {
            row: Conv::with_geometry(
                [c_in, c_in],
                [1, kernel],
                geometry([1, stride], [0, p]),
                1,
                device,
            ),
            column: Conv::with_geometry(
                [c_in, c_out],
                [kernel, 1],
                geometry([stride, 1], [p, 0]),
                1,
                device,
            ),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_norm(&self.bn, self.column.forward(self.row.forward_relu(x)))
    }
}

/// Conv k×k → BN → ReLU (post-activation).
#[derive(Module, Debug)]
pub struct ConvBnRelu<B: Backend> {
    conv: Conv<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> ConvBnRelu<B> {
    /// A conv-BN-ReLU block with a `kernel[0]`×`kernel[1]` kernel ("same" padding for odd
    /// sizes).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: [usize; 2],
        stride: usize,
        device: &Device<B>,
    ) -> Self {
        let geometry = ConvGeometry {
            stride: [stride; 2],
            padding: [(kernel[0] - 1) / 2, (kernel[1] - 1) / 2],
            dilation: [1, 1],
        };
        Self {
            conv: Conv::with_geometry([c_in, c_out], kernel, geometry, 1, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(batch_norm(&self.bn, self.conv.forward(x)))
    }

    /// Multiply-accumulates and output shape for one input of `h`×`w` pixels.
    pub fn macs(&self, h: usize, w: usize) -> (u64, [usize; 3]) {
        conv_macs(&self.conv, h, w)
    }
}

fn relu6<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.clamp(0.0, 6.0)
}

/// MobileNetV2's inverted bottleneck (ProxylessNAS `MBInvertedConvLayer`), with the residual
/// connection of `MobileInvertedResidualBlock` when the stride is 1 and the widths are equal.
#[derive(Module, Debug)]
pub struct MbConv<B: Backend> {
    expand: Option<(Conv<B>, BatchNorm<B>)>,
    depthwise: Conv<B>,
    bn_depthwise: BatchNorm<B>,
    project: Conv<B>,
    bn_project: BatchNorm<B>,
    residual: bool,
}

impl<B: Backend> MbConv<B> {
    /// An inverted bottleneck of hidden width `expansion · c_in`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        expansion: usize,
        device: &Device<B>,
    ) -> Self {
        let hidden = c_in * expansion;
        Self {
            expand: (expansion != 1).then(|| {
                (
                    Conv::new(c_in, hidden, 1, 1, 1, 1, device),
                    BatchNormConfig::new(hidden).init(device),
                )
            }),
            depthwise: Conv::new(hidden, hidden, kernel, stride, 1, hidden, device),
            bn_depthwise: BatchNormConfig::new(hidden).init(device),
            project: Conv::new(hidden, c_out, 1, 1, 1, 1, device),
            bn_project: BatchNormConfig::new(c_out).init(device),
            residual: stride == 1 && c_in == c_out,
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = match &self.expand {
            Some((conv, bn)) => relu6(batch_norm(bn, conv.forward(x.clone()))),
            None => x.clone(),
        };
        let h = relu6(batch_norm(&self.bn_depthwise, self.depthwise.forward(h)));
        let h = batch_norm(&self.bn_project, self.project.forward(h));
        if self.residual { h + x } else { h }
    }
}

/// A ShuffleNetV2 unit as in SPOS's `Shufflenet` and `Shuffle_Xception` blocks.
///
/// Stride 1: the input's even channels pass through, the odd ones go through the main branch
/// (this split *is* the channel shuffle of the previous unit, as in the SPOS code's
/// `channel_shuffle`); stride 2: a projection branch (depthwise k×k stride 2, BN, 1×1, BN,
/// ReLU) and the main branch both read the whole input. The outputs are concatenated.
#[derive(Module, Debug)]
pub struct ShuffleUnit<B: Backend> {
    main: Vec<(Conv<B>, BatchNorm<B>, bool)>,
    projection: Vec<(Conv<B>, BatchNorm<B>, bool)>,
    stride: usize,
}

impl<B: Backend> ShuffleUnit<B> {
    /// A unit from `c_in` to `c_out` channels; `xception` selects SPOS's Xception-like branch.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        xception: bool,
        device: &Device<B>,
    ) -> Self {
        let inp = if stride == 1 { c_in / 2 } else { c_in };
        let mid = (c_out / 2).max(1);
        let outputs = c_out - inp;
        let bn = |c| BatchNormConfig::new(c).init(device);
        let pw = |a, b| (Conv::new(a, b, 1, 1, 1, 1, device), bn(b), true);
        let dw = |c, k, s| (Conv::new(c, c, k, s, 1, c, device), bn(c), false);
        let main = if xception {
            vec![
                dw(inp, 3, stride),
                pw(inp, mid),
                dw(mid, 3, 1),
                pw(mid, mid),
                dw(mid, 3, 1),
                pw(mid, outputs),
            ]
        } else {
            vec![pw(inp, mid), dw(mid, kernel, stride), pw(mid, outputs)]
        };
        let projection = if stride == 2 {
            vec![dw(inp, kernel, 2), pw(inp, inp)]
        } else {
            Vec::new()
        };
        Self {
            main,
            projection,
            stride,
        }
    }

    fn branch(layers: &[(Conv<B>, BatchNorm<B>, bool)], mut x: Tensor<B, 4>) -> Tensor<B, 4> {
        for (conv, bn, act) in layers {
            x = batch_norm(bn, conv.forward(x));
            if *act {
                x = relu(x);
            }
        }
        x
    }

    /// Applies the unit.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.stride == 1 {
            let [n, c, h, w] = x.dims();
            let pairs = x.reshape([n, c / 2, 2, h, w]);
            let keep = pairs
                .clone()
                .slice([0..n, 0..c / 2, 0..1])
                .reshape([n, c / 2, h, w]);
            let main = pairs
                .slice([0..n, 0..c / 2, 1..2])
                .reshape([n, c / 2, h, w]);
            Tensor::cat(vec![keep, Self::branch(&self.main, main)], 1)
        } else {
            let proj = Self::branch(&self.projection, x.clone());
            Tensor::cat(vec![proj, Self::branch(&self.main, x)], 1)
        }
    }

    fn macs(&self, input: [usize; 3]) -> (u64, [usize; 3]) {
        let [c, h, w] = input;
        let run = |layers: &[(Conv<B>, BatchNorm<B>, bool)]| {
            let convs: Vec<&Conv<B>> = layers.iter().map(|(c, _, _)| c).collect();
            chain_macs(&convs, h, w)
        };
        let (main, [cm, ho, wo]) = run(&self.main);
        if self.stride == 1 {
            (main, [c - c / 2 + cm, ho, wo])
        } else {
            let (proj, [cp, _, _]) = run(&self.projection);
            (main + proj, [cp + cm, ho, wo])
        }
    }
}

/// DeepLab's separable atrous convolution (DPC `sep_atrous_3x3`): depthwise 3×3 with rates
/// `r_h × r_w`, BN, ReLU, pointwise 1×1, BN, ReLU.
#[derive(Module, Debug)]
pub struct SepAtrous<B: Backend> {
    depthwise: Conv<B>,
    bn_depthwise: BatchNorm<B>,
    pointwise: Conv<B>,
    bn_pointwise: BatchNorm<B>,
}

impl<B: Backend> SepAtrous<B> {
    /// An atrous separable convolution with `rates = [r_h, r_w]`.
    pub fn new(c_in: usize, c_out: usize, rates: [usize; 2], device: &Device<B>) -> Self {
        let geometry = ConvGeometry {
            stride: [1, 1],
            padding: rates,
            dilation: rates,
        };
        Self {
            depthwise: Conv::with_geometry([c_in, c_in], [3, 3], geometry, c_in, device),
            bn_depthwise: BatchNormConfig::new(c_in).init(device),
            pointwise: Conv::new(c_in, c_out, 1, 1, 1, 1, device),
            bn_pointwise: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(batch_norm(&self.bn_depthwise, self.depthwise.forward(x)));
        relu(batch_norm(&self.bn_pointwise, self.pointwise.forward(x)))
    }
}

/// DeepLab's pyramid pooling branch (DPC `spp_{h}x{w}`): average pooling to a `g_h × g_w`
/// grid (adaptive; a grid larger than the map is clipped to it), 1×1 conv, BN, ReLU, and a
/// bilinear resize (corners aligned, as DeepLab's `resize_bilinear`) back to the input size.
#[derive(Module, Debug)]
pub struct PyramidPool<B: Backend> {
    conv: Conv<B>,
    bn: BatchNorm<B>,
    grid: [usize; 2],
}

impl<B: Backend> PyramidPool<B> {
    /// A pyramid pooling branch with `grid = [g_h, g_w]`.
    pub fn new(c_in: usize, c_out: usize, grid: [usize; 2], device: &Device<B>) -> Self {
        Self {
            conv: Conv::new(c_in, c_out, 1, 1, 1, 1, device),
            bn: BatchNormConfig::new(c_out).init(device),
            grid,
        }
    }

    fn grid(&self, h: usize, w: usize) -> [usize; 2] {
        [self.grid[0].min(h), self.grid[1].min(w)]
    }

    /// Applies the branch.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
        use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
        let [_, _, h, w] = x.dims();
        let pooled = adaptive_avg_pool2d(x, self.grid(h, w));
        let y = relu(batch_norm(&self.bn, self.conv.forward(pooled)));
        let [_, _, gh, gw] = y.dims();
        if [gh, gw] == [h, w] {
            return y;
        }
        interpolate(
            y,
            [h, w],
            InterpolateOptions::new(InterpolateMode::Bilinear),
        )
    }
}
