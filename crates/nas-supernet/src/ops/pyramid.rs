//! The DPC operations: separable atrous convolution and pyramid pooling.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor, TensorData};

use crate::fast::{Conv, ConvGeometry, batch_norm_relu};

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
        let x = batch_norm_relu(&self.bn_depthwise, self.depthwise.forward(x));
        batch_norm_relu(&self.bn_pointwise, self.pointwise.forward(x))
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
        use burn::tensor::module::adaptive_avg_pool2d;
        let [_, _, h, w] = x.dims();
        let pooled = adaptive_avg_pool2d(x, self.grid(h, w));
        let y = batch_norm_relu(&self.bn, self.conv.forward(pooled));
        resize_bilinear(y, [h, w])
    }
}

/// The `[out, in]` matrix of a 1-D bilinear resize with aligned corners: output `i` reads the
/// input at `i · (in − 1) / (out − 1)` from its two neighbours.
fn bilinear_weights(input: usize, output: usize) -> Vec<f32> {
    let mut a = vec![0f32; output * input];
    let ratio = (input - 1) as f64 / (output.max(2) - 1) as f64;
    for i in 0..output {
        let src = ratio * i as f64;
        let p0 = (src.floor() as usize).min(input - 1);
        let p1 = (p0 + 1).min(input - 1);
        let frac = (src - p0 as f64) as f32;
        a[i * input + p0] += 1.0 - frac;
        a[i * input + p1] += frac;
    }
    a
}

/// Bilinear resize of `x` (`[n, c, h, w]`) to `size`, corners aligned (DeepLab's
/// `resize_bilinear`, and Burn's `interpolate` in `Bilinear` mode, to rounding).
///
/// Written as two matrix products with fixed interpolation matrices, so it has a backward pass
/// on every backend (the `ndarray` backend of Burn 0.21 implements no backward for
/// `interpolate`).
pub fn resize_bilinear<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let [oh, ow] = size;
    if [h, w] == size {
        return x;
    }
    let device = x.device();
    if h == 0 || w == 0 {
        // Nothing to read from: an empty map resizes to zeros.
        return Tensor::zeros([n, c, oh, ow], &device);
    }
    let matrix = |input: usize, output: usize| {
        Tensor::<B, 2>::from_data(
            TensorData::new(bilinear_weights(input, output), [output, input]),
            &device,
        )
    };
    let nc = n * c;
    // Along the width: [nc, h, w] · [w, ow].
    let aw = matrix(w, ow)
        .transpose()
        .unsqueeze::<3>()
        .expand([nc, w, ow]);
    let y = x.reshape([nc, h, w]).matmul(aw);
    // Along the height: [oh, h] · [nc, h, ow].
    let ah = matrix(h, oh).unsqueeze::<3>().expand([nc, oh, h]);
    ah.matmul(y).reshape([n, c, oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    #[test]
    fn resize_matches_burns_bilinear_interpolation_and_has_a_gradient() {
        let device = Default::default();
        for (from, to) in [
            ([1, 1], [4, 4]),
            ([2, 3], [8, 8]),
            ([4, 4], [7, 5]),
            ([5, 6], [2, 3]),
        ] {
            let x = Tensor::<NdArray, 4>::random(
                [2, 3, from[0], from[1]],
                Distribution::Default,
                &device,
            );
            let ours = resize_bilinear(x.clone(), to);
            let burns = interpolate(x, to, InterpolateOptions::new(InterpolateMode::Bilinear));
            let diff = (ours - burns).abs().max().into_scalar();
            assert!(diff < 1e-5, "{from:?} -> {to:?}: {diff}");
        }
        let x = Tensor::<Autodiff<NdArray>, 4>::ones([1, 2, 2, 2], &device).require_grad();
        let y = resize_bilinear(x.clone(), [5, 5]);
        let grads = y.sum().backward();
        let g = x.grad(&grads).unwrap();
        // Every output pixel distributes a total weight of 1 over the inputs.
        let total = g.sum().into_scalar();
        assert!((total - 2.0 * 25.0).abs() < 1e-4, "{total}");
    }

    #[test]
    fn a_pyramid_pooling_branch_trains_on_the_cpu_backend() {
        // Burn's `interpolate` has no backward on `ndarray`: the branch must not depend on it.
        let device = Default::default();
        let branch = PyramidPool::<Autodiff<NdArray>>::new(3, 4, [2, 2], &device);
        let x =
            Tensor::<Autodiff<NdArray>, 4>::random([2, 3, 6, 6], Distribution::Default, &device)
                .require_grad();
        let y = branch.forward(x.clone());
        assert_eq!(y.dims(), [2, 4, 6, 6]);
        let grads = y.sum().backward();
        assert!(x.grad(&grads).is_some());
        assert!(branch.conv.inner.weight.grad(&grads).is_some());
    }
}
