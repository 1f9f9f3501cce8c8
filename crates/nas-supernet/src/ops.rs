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
//!
//! Convolutions have no bias (batch norm follows). Spatial padding keeps the size for stride 1
//! and halves it (rounding up) for stride 2.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;
use crate::fast::Conv;

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
            | OpKind::SpatialConv { kernel } => {
                if !odd(kernel) {
                    return bad(format!("{:?}: kernel must be odd", self.kind));
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
        }
    }

    /// True for the zero operation (whose output can be skipped in a sum).
    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero(_))
    }
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
        self.bn.forward(self.conv.forward(relu(x)))
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
        self.bn
            .forward(self.pointwise.forward(self.depthwise.forward(relu(x))))
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
        }
    }

    /// Applies the pooling.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = match (&self.avg, &self.max) {
            (Some(p), _) => p.forward(x),
            (None, Some(p)) => p.forward(x),
            (None, None) => x,
        };
        match &self.bn {
            Some(bn) => bn.forward(y),
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
        let x = relu(x);
        let [_, _, h, w] = x.dims();
        let shifted = x
            .clone()
            .pad([(0, h % 2), (0, w % 2)], PadMode::Constant(0.0))
            .slice([0.., 0.., 1.., 1..]);
        let a = self.conv_a.forward(x);
        let b = self.conv_b.forward(shifted);
        self.bn.forward(Tensor::cat(vec![a, b], 1))
    }
}

/// ReLU → conv 1×k (stride along the width) → conv k×1 (stride along the height) → BN.
#[derive(Module, Debug)]
pub struct SpatialConv<B: Backend> {
    row: Conv2d<B>,
    column: Conv2d<B>,
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
        Self {
            row: Conv2dConfig::new([c_in, c_in], [1, kernel])
                .with_stride([1, stride])
                .with_padding(PaddingConfig2d::Explicit(0, p, 0, p))
                .with_bias(false)
                .init(device),
            column: Conv2dConfig::new([c_in, c_out], [kernel, 1])
                .with_stride([stride, 1])
                .with_padding(PaddingConfig2d::Explicit(p, 0, p, 0))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn
            .forward(self.column.forward(self.row.forward(relu(x))))
    }
}
