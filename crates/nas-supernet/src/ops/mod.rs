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
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::Conv;

mod basic;
mod conv;
mod mobile;
mod pyramid;

pub use basic::{FactorizedReduce, Identity, Pool, Zero};
pub use conv::{ConvBnRelu, DilConv, ReluConvBn, SepConv, SpatialConv};
pub use mobile::{MbConv, NestedMbConv, NestedNorms, ShuffleUnit};
pub use pyramid::{PyramidPool, SepAtrous, resize_bilinear};

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

impl OpKind {
    /// ReLU, k×k convolution (dilation 1), batch norm.
    pub const fn relu_conv_bn(kernel: usize) -> Self {
        OpKind::ReluConvBn {
            kernel,
            dilation: 1,
        }
    }

    /// DARTS's dilated separable convolution: depthwise k×k with dilation 2.
    pub const fn dil_conv(kernel: usize) -> Self {
        OpKind::DilConv {
            kernel,
            dilation: 2,
        }
    }
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

pub(crate) fn conv_macs<B: Backend>(conv: &Conv<B>, h: usize, w: usize) -> (u64, [usize; 3]) {
    let (macs, [ho, wo]) = conv.macs(h, w);
    (macs, [conv.out_channels(), ho, wo])
}

pub(crate) fn chain_macs<B: Backend>(convs: &[&Conv<B>], h: usize, w: usize) -> (u64, [usize; 3]) {
    let (mut total, mut shape) = (0, [0, h, w]);
    for conv in convs {
        let (m, out) = conv_macs(conv, shape[1], shape[2]);
        total += m;
        shape = out;
    }
    (total, shape)
}

pub(crate) fn same_padding(kernel: usize, dilation: usize) -> PaddingConfig2d {
    let p = dilation * (kernel - 1) / 2;
    PaddingConfig2d::Explicit(p, p, p, p)
}
