//! Convolution blocks: ReLU-conv-BN, dilated, separable, spatially factorized and
//! post-activation convolutions.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};

use super::conv_macs;
use crate::fast::{Conv, ConvGeometry, batch_norm, batch_norm_relu};

/// ReLU → conv → BN.
#[derive(Module, Debug)]
pub struct ReluConvBn<B: Backend> {
    pub(super) conv: Conv<B>,
    pub(super) bn: BatchNorm<B>,
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
    pub(super) depthwise: Conv<B>,
    pub(super) pointwise: Conv<B>,
    pub(super) bn: BatchNorm<B>,
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
    pub(super) first: DilConv<B>,
    pub(super) second: DilConv<B>,
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

/// ReLU → conv 1×k (stride along the width) → conv k×1 (stride along the height) → BN.
#[derive(Module, Debug)]
pub struct SpatialConv<B: Backend> {
    pub(super) row: Conv<B>,
    pub(super) column: Conv<B>,
    pub(super) bn: BatchNorm<B>,
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
    pub(super) conv: Conv<B>,
    pub(super) bn: BatchNorm<B>,
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
        batch_norm_relu(&self.bn, self.conv.forward(x))
    }

    /// Multiply-accumulates and output shape for one input of `h`×`w` pixels.
    pub fn macs(&self, h: usize, w: usize) -> (u64, [usize; 3]) {
        conv_macs(&self.conv, h, w)
    }
}
