//! The zero and identity operations, pooling and the factorized reduction.

use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use super::same_padding;
use crate::fast::{Conv, avg_pool2d, batch_norm, max_pool2d};

/// The zero operation.
#[derive(Module, Clone, Debug)]
pub struct Zero {
    pub(super) stride: usize,
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

/// Average or max pooling, optionally followed by batch norm.
#[derive(Module, Debug)]
pub struct Pool<B: Backend> {
    pub(super) avg: Option<AvgPool2d>,
    pub(super) max: Option<MaxPool2d>,
    pub(super) bn: Option<BatchNorm<B>>,
    pub(super) stride: usize,
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
    pub(super) conv_a: Conv<B>,
    pub(super) conv_b: Conv<B>,
    pub(super) bn: BatchNorm<B>,
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
