//! What every network built from an architecture offers: classification logits, for inference
//! and for training (where drop-path and auxiliary heads apply).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

/// Options of a training forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrainOptions {
    /// Drop-path probability (DARTS, NASNet): each non-identity path of a cell is dropped per
    /// sample with this probability, the kept ones rescaled. 0 disables it.
    pub drop_path: f64,
}

/// A network that maps images `[batch, channels, height, width]` to class logits.
pub trait Classifier<B: Backend>: Module<B> {
    /// Logits `[batch, classes]`.
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2>;

    /// Logits of a training pass, and the auxiliary head's logits where the network has one.
    /// The default is [`Classifier::logits`] without auxiliary output.
    fn train_logits(
        &self,
        images: Tensor<B, 4>,
        options: &TrainOptions,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let _ = options;
        (self.logits(images), None)
    }
}

/// Global average pooling: `[n, c, h, w]` → `[n, c]`.
pub fn global_avg_pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([n, c])
}

/// Drop-path: zeroes whole samples with probability `p` and rescales the rest by `1 / (1 - p)`.
pub fn drop_path<B: Backend>(x: Tensor<B, 4>, p: f64) -> Tensor<B, 4> {
    if p <= 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    let [n, _, _, _] = x.dims();
    let mask = Tensor::<B, 4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
    x * mask.div_scalar(keep)
}

/// The number of trainable parameters of `module`, as PyTorch counts them: batch-norm running
/// statistics are buffers and not included (Burn's `Module::num_params` includes them). Needs
/// an autodiff backend, which is what tells parameters from buffers.
pub fn count_params<B: burn::tensor::backend::AutodiffBackend, M: Module<B>>(module: &M) -> usize {
    struct Count(usize);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            if param.is_require_grad() {
                self.0 += param.shape().num_elements();
            }
        }
    }
    let mut count = Count(0);
    module.visit(&mut count);
    count.0
}
