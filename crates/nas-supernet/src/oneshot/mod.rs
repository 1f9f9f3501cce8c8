//! Single-path weight sharing: one-shot supernets, path samplers, binarized gates, path
//! dropout, batch-norm recalibration, latency tables and peak-memory measurement.
//!
//! A *supernet* holds every candidate operation of every searchable layer; an architecture is a
//! path through it that inherits its weights. Four methods are built on the same pieces:
//!
//! | method | supernet | what is sampled per training step | module |
//! | --- | --- | --- | --- |
//! | SPOS (Guo et al. 2019) | [`SposSupernet`] (ShuffleNetV2 blocks) | one path, uniformly ([`UniformSampler`]) | [`train`] |
//! | ProxylessNAS (Cai et al. 2019) | [`ProxylessSupernet`] (MobileNetV2 blocks) | one path from the architecture distribution for weights, two paths with binary gates for the architecture parameters | [`gates`], [`proxyless`] |
//! | One-Shot (Bender et al. 2018) | [`Nb201Supernet`] (NAS-Bench-201 cells) | every path, with path dropout on a linear schedule | [`path_dropout`] |
//! | SMASH (Brock et al. 2018) | [`SmashNb201`] (NAS-Bench-201 cells whose convolution weights a hypernetwork generates from the architecture's encoding) | one path, uniformly | [`smash`] |
//!
//! Every supernet implements [`SinglePath`]: the logits and the multiply-accumulates of one
//! architecture's path. The supernet training loop ([`train::train_supernet`]) asks a closure for
//! each step's logits, so any way of choosing paths plugs in: a uniform sampler (SPOS), path
//! dropout (One-Shot), or a learned controller. ENAS fits here: its LSTM controller is an
//! [`ArchSampler`] whose samples train the shared weights through [`train::train_supernet`], and
//! its reward for a sampled architecture is the path's validation accuracy
//! ([`train::path_accuracy`], or the weight-sharing estimator of `nas-estimate`).
//!
//! Before an architecture is scored with inherited weights, its batch-norm statistics are
//! recomputed on training batches ([`bn_recalibration::recalibrate_bn`]): the running statistics
//! accumulated while other paths were trained do not describe this path.
//!
//! The examples `spos`, `proxylessnas`, `oneshot` and `smash` run each method end to end on the
//! embedded digits.

pub mod bn_recalibration;
pub mod chain_supernet;
pub mod gates;
pub mod latency;
pub mod memory;
pub mod nb201_supernet;
pub mod path_dropout;
pub mod proxyless;
pub mod smash;
pub mod train;

pub use chain_supernet::{CandidateWeights, ProxylessSupernet, SposSupernet};
pub use nb201_supernet::Nb201Supernet;
pub use smash::{SmashConfig, SmashNb201};

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use nas_space::SearchSpace;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// A supernet that runs the path of one architecture, with the weights that path inherits.
pub trait SinglePath<B: Backend>: Module<B> {
    /// The architectures whose paths this supernet holds.
    type Arch;

    /// Logits `[batch, classes]` of the path of `arch` on `images` `[batch, c, h, w]`.
    ///
    /// `arch` must belong to the space the supernet was built for (check it with the space's
    /// `validate`); a foreign architecture panics with a message naming the layer.
    fn path_logits(&self, images: Tensor<B, 4>, arch: &Self::Arch) -> Tensor<B, 2>;

    /// Multiply-accumulates of the path of `arch` for one image of shape `input`
    /// (`[channels, height, width]`), counted as [`crate::Classifier::macs`] counts them: equal
    /// to the MACs of the stand-alone network of `arch`.
    fn path_macs(&self, arch: &Self::Arch, input: [usize; 3]) -> u64;

    /// Checks that `arch` belongs to the space this supernet was built for; the error says
    /// which layer does not fit. Call it before [`SinglePath::path_logits`] on architectures
    /// from outside.
    fn check_arch(&self, arch: &Self::Arch) -> Result<(), crate::SupernetError>;

    /// Logits `[batch, classes]` of `images` split into `paths.len()` slices of equal size
    /// (the first `batch % paths.len()` one image larger; one image each, and fewer slices,
    /// when the batch has fewer images than paths), slice `j` through the path of
    /// `paths[j]`, in batch order. Batch norm sees each slice's own statistics. With the
    /// architectures of `nas_strategy::strictly_fair`, every choice of every decision gets a
    /// slice of every batch (FairNAS' strict fairness, on slices of one batch). One path is
    /// [`SinglePath::path_logits`]. Panics on an empty `paths`.
    fn sliced_logits(&self, images: Tensor<B, 4>, paths: &[Self::Arch]) -> Tensor<B, 2> {
        assert!(!paths.is_empty(), "sliced_logits needs at least one path");
        let n = images.dims()[0];
        let k = paths.len().min(n);
        if k <= 1 {
            return self.path_logits(images, &paths[0]);
        }
        // Slices by hand: Burn 0.21's `chunk` asks for an empty or out-of-range last slice
        // for some sizes (8 images in 5 chunks, for one).
        let (base, extra) = (n / k, n % k);
        let mut start = 0;
        let mut logits = Vec::with_capacity(k);
        for (j, arch) in paths.iter().take(k).enumerate() {
            let len = base + usize::from(j < extra);
            logits.push(self.path_logits(images.clone().narrow(0, start, len), arch));
            start += len;
        }
        Tensor::cat(logits, 0)
    }
}

/// Chooses the architecture (path) of each supernet training step.
///
/// [`UniformSampler`] is SPOS's; a learned controller (ENAS's LSTM) implements it too and is
/// updated from rewards outside this trait.
pub trait ArchSampler<A> {
    /// The next architecture.
    fn sample_arch(&mut self) -> A;
}

/// Uniform single-path sampling (SPOS): each step draws an architecture with the space's
/// `sample` from a seeded generator, so the same seed gives the same sequence of paths.
#[derive(Debug)]
pub struct UniformSampler<S> {
    space: S,
    seed: u64,
    rng: ChaCha8Rng,
}

impl<S: SearchSpace> UniformSampler<S> {
    /// A sampler over `space` seeded with `seed`.
    pub fn new(space: S, seed: u64) -> Self {
        Self {
            space,
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The architecture of training step `step`: a draw from a generator seeded by the
    /// sampler's seed and the step alone, so a resumed training draws the same paths as an
    /// uninterrupted one (use it with [`train::StepInfo::step`]).
    pub fn sample_at(&self, step: usize) -> S::Arch {
        let mut rng =
            ChaCha8Rng::seed_from_u64(crate::network::mix_seed(self.seed, step as u64, 23));
        self.space.sample(&mut rng)
    }

    /// The space sampled from.
    pub fn space(&self) -> &S {
        &self.space
    }
}

impl<S: SearchSpace> ArchSampler<S::Arch> for UniformSampler<S> {
    fn sample_arch(&mut self) -> S::Arch {
        self.space.sample(&mut self.rng)
    }
}
