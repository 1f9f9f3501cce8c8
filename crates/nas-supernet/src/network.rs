//! What every network built from an architecture offers: classification logits, for inference
//! and for training (where drop-path and auxiliary heads apply).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Options of a training forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrainOptions {
    /// Drop-path probability (DARTS, NASNet): each non-identity path of a cell is dropped per
    /// sample with this probability, the kept ones rescaled. 0 disables it.
    pub drop_path: f64,
    /// Seed of this pass's random masks (the training loop derives one per step), so that
    /// training is reproducible whatever else uses the backend's generator.
    pub seed: u64,
}

/// Mixes `seed` with `a` and `b` into a new seed (SplitMix64 finalizer).
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds a network with `init` right after seeding the backend with `seed`, and draws every
/// parameter before returning (Burn initializes parameters lazily, on first use), all under a
/// process-wide lock: other threads building networks through this function cannot draw from
/// the backend's generator in between, so the same seed gives the same parameters.
pub fn seeded<B: Backend, M: Module<B>, E>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce() -> Result<M, E>,
) -> Result<M, E> {
    struct Touch;
    impl<B: Backend> burn::module::ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    B::seed(device, seed);
    let module = init()?;
    module.visit(&mut Touch);
    Ok(module)
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

    /// Multiply-accumulates of one inference pass on one image of shape
    /// `[channels, height, width]`: convolutions and linear layers, as the papers count FLOPs
    /// (see [`crate::ops::Op::macs`]). `None` when the network does not know (the default).
    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        let _ = input;
        None
    }
}

/// Multiply-accumulates of a linear layer on one sample.
pub fn linear_macs<B: Backend>(linear: &burn::nn::Linear<B>) -> u64 {
    let [i, o] = linear.weight.shape().dims::<2>();
    (i * o) as u64
}

/// Global average pooling: `[n, c, h, w]` → `[n, c]`.
pub fn global_avg_pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([n, c])
}

/// Drop-path: zeroes whole samples with probability `p` and rescales the rest by `1 / (1 - p)`.
/// The mask is drawn from a generator seeded with `seed`.
pub fn drop_path<B: Backend>(x: Tensor<B, 4>, p: f64, seed: u64) -> Tensor<B, 4> {
    use rand::{RngExt, SeedableRng};
    if p <= 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    let [n, _, _, _] = x.dims();
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let mask: Vec<f32> = (0..n)
        .map(|_| {
            if rng.random_bool(keep) {
                (1.0 / keep) as f32
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::<B, 4>::from_data(TensorData::new(mask, [n, 1, 1, 1]), &x.device());
    x * mask
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
