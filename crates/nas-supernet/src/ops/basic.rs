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
        // On the `ndarray` backend one operation (no padded, sliced and concatenated copies),
        // unless a zero-cost proxy records or replays ReLU codes or probes convolution outputs.
        #[cfg(feature = "ndarray")]
        let x = if crate::probe::inactive() {
            match crate::native::factorized_reduce(
                x,
                self.conv_a.inner.weight.val(),
                self.conv_b.inner.weight.val(),
            ) {
                Ok(y) => return batch_norm(&self.bn, y),
                Err((x, _, _)) => x,
            }
        } else {
            x
        };
        self.forward_unfused(x)
    }

    /// [`Self::forward`] as separate tensor operations (every backend; under probes).
    fn forward_unfused(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
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

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::Distribution;

    type Ad = Autodiff<NdArray>;

    /// The fused factorized reduction (one kernel operation) against its tensor-operation
    /// form: output and the gradients of the input and both weights, on even and odd sizes.
    #[test]
    fn fused_factorized_reduction_matches_tensor_operations() {
        let device = Default::default();
        for [n, c, h, w] in [[3, 4, 8, 8], [2, 3, 7, 9]] {
            let fr = FactorizedReduce::<Ad>::new(c, 6, &device);
            let x = Tensor::<Ad, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let run = |fused: bool| {
                let x = x.clone().detach().require_grad();
                let y = if fused {
                    fr.forward(x.clone())
                } else {
                    fr.forward_unfused(x.clone())
                };
                let probe = y.clone().detach().sin();
                let grads = (y.clone() * probe).sum().backward();
                let flat = |t: Tensor<NdArray, 4>| t.into_data().to_vec::<f32>().unwrap();
                [
                    y.inner().into_data().to_vec::<f32>().unwrap(),
                    flat(x.grad(&grads).unwrap()),
                    flat(fr.conv_a.inner.weight.val().grad(&grads).unwrap()),
                    flat(fr.conv_b.inner.weight.val().grad(&grads).unwrap()),
                ]
            };
            let (fused, plain) = (run(true), run(false));
            for (what, (a, b)) in ["output", "input gradient", "conv_a", "conv_b"]
                .iter()
                .zip(fused.iter().zip(&plain))
            {
                let d = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(d < 1e-4, "{what} {n}x{c}x{h}x{w}: {d}");
            }
        }
    }
}
