//! The DPC operations: separable atrous convolution and pyramid pooling.

use crate::probe::relu;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};

use crate::fast::{Conv, ConvGeometry, batch_norm};

/// DeepLab's separable atrous convolution (DPC `sep_atrous_3x3`): depthwise 3×3 with rates
/// `r_h × r_w`, BN, ReLU, pointwise 1×1, BN, ReLU.
#[derive(Module, Debug)]
pub struct SepAtrous<B: Backend> {
    pub(super) depthwise: Conv<B>,
    pub(super) bn_depthwise: BatchNorm<B>,
    pub(super) pointwise: Conv<B>,
    pub(super) bn_pointwise: BatchNorm<B>,
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
    pub(super) conv: Conv<B>,
    pub(super) bn: BatchNorm<B>,
    pub(super) grid: [usize; 2],
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

    pub(super) fn grid(&self, h: usize, w: usize) -> [usize; 2] {
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
