//! ENAS (Pham et al., *Efficient Neural Architecture Search via Parameter Sharing*, ICML 2018;
//! `melodyguan/enas`): an LSTM [`Controller`] samples child architectures of a
//! [`Sequential`] space, the children share the weights of one supernet, and the search
//! alternates two phases every epoch:
//!
//! 1. **shared weights**: one pass over the training set, each minibatch through the path of a
//!    child freshly sampled from the controller, SGD on the path's weights
//!    ([`nas_supernet::oneshot::train::SupernetTrainer`]: momentum, weight decay, cosine
//!    learning rate);
//! 2. **controller**: [`EnasConfig::controller_steps`] REINFORCE updates, each on
//!    [`EnasConfig::controller_batch`] sampled children whose reward is the accuracy (in
//!    `[0, 1]`) of their path on one validation minibatch, with the shared weights fixed and
//!    batch norm in inference mode (the running statistics), as the reference code does.
//!
//! The final architecture is derived as in the paper: sample [`EnasConfig::derive_samples`]
//! children, score each on one validation minibatch, and keep the best; here the best
//! [`EnasConfig::derive_top`] are then rescored on the whole validation set and the best of
//! those wins (1 keeps the paper's rule). The derived architecture is then trained from scratch
//! by the caller (the `enas` example does).
//!
//! Any supernet implementing [`SinglePath`] works: the DARTS-space supernet
//! ([`nas_supernet::darts_search::supernet::DartsSupernet::single_path`], with
//! [`nas_space::darts::DartsConfig::enas`] for ENAS' micro space) or the NAS-Bench-201 one
//! ([`nas_supernet::nb201_net::Nb201NetConfig::supernet`], a [`nas_supernet::oneshot::Nb201Supernet`]).
//!
//! Reproducibility: the controller samples from its own seeded generator, the training batches
//! are shuffled by the configuration's seed, the validation minibatches by the ENAS seed; the
//! same seed gives the same search on the CPU backend.
//!
//! A diverging loss (non-finite) fails the epoch with [`EnasError::Train`]; the supernet, the
//! trainer (momentum, counters) and the controller (parameters, moments, baseline, generator)
//! are restored to their state before that epoch, so the search can be inspected, its state
//! kept, or continued.

use std::time::Instant;

use nas_space::{Sequential, SpaceError};
use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn;
use nas_supernet::data::{ImageBatch, ImageDataset, Normalize};
use nas_supernet::driver::{Checkpoint, Driver, DriverError, EpochSolver};
use nas_supernet::oneshot::SinglePath;
use nas_supernet::oneshot::train::{SupernetTrainer, batches, path_accuracy};
use nas_supernet::train::{TrainConfig, TrainError};

use burn::module::AutodiffModule;
use burn::tensor::Device;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::StrategyError;
use crate::controller::{Controller, ControllerConfig, Episode};

/// The bounds on [`Enas`]'s supernet, in one name for the trait impls: a module with autodiff
/// whose paths are the architectures of the space `S`.
trait EnasNet<S: Sequential, B: AutodiffBackend>:
    AutodiffModule<B> + SinglePath<B, Arch = S::Arch>
{
}

impl<S, B, N> EnasNet<S, B> for N
where
    S: Sequential,
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
{
}

/// Configuration of an [`Enas`] search. The defaults are ENAS' micro search on CIFAR-10
/// (`scripts/cifar10_micro_search.sh`): 150 epochs, SGD at 0.05 with cosine decay to 5e-4,
/// momentum 0.9, weight decay 1e-4, gradient norm clipped at 5, batches of 160 (one pass
/// over the training set per epoch); 30 controller updates of 10 children each per epoch
/// (`controller_train_steps` × `controller_num_aggregate`), Adam at 3.5e-3, entropy weight
/// 1e-4, baseline decay 0.99, logits divided by 5 and squashed by 1.1·tanh. Two differences:
/// the learning rate follows one cosine decay over all epochs (ENAS restarts it, SGDR with
/// T₀ = 10, T_mul = 2), and the operation decisions share the 1.1·tanh bound (ENAS divides it
/// by 2.5 for operations, `controller_op_tanh_reduce`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnasConfig {
    /// Training of the shared weights; `child.epochs` is the number of ENAS epochs (each one
    /// pass over the training set, then the controller's updates). Augmentation, drop-path
    /// and auxiliary settings are not used.
    pub child: TrainConfig,
    /// The controller.
    pub controller: ControllerConfig,
    /// Controller updates after each epoch (ENAS: 30).
    pub controller_steps: usize,
    /// Children per controller update (ENAS: 10).
    pub controller_batch: usize,
    /// Validation images a child's reward is measured on: one minibatch (ENAS: 160, its
    /// batch size).
    pub reward_batch_size: usize,
    /// Children sampled to derive the final architecture.
    pub derive_samples: usize,
    /// The best this many of them (by one-minibatch reward) are rescored on the whole
    /// validation set (1: the paper's rule, the best single-minibatch reward).
    pub derive_top: usize,
    /// Seed of the controller (parameters and sampling) and of the validation minibatches.
    pub seed: u64,
    /// Whether the children's rewards (and the rescoring of [`Enas::derive`] and
    /// [`Enas::shared_accuracy`]) normalize with each minibatch's own statistics
    /// ([`nas_supernet::fast::with_batch_statistics`]) instead of the running statistics of
    /// the shared batch norms. Running statistics are averaged over every child trained, fit
    /// none of them, and score children with convolutions lower than parameter-free ones:
    /// on NAS-Bench-201 the controller then collapses onto pooling and skip connections.
    /// The NAS-Bench-201 paper's ENAS keeps no running statistics (`track_running_stats`
    /// off), i.e. `true`; ENAS' own code uses the moving averages (`false`, the default).
    #[serde(default)]
    pub batch_statistics: bool,
    /// Epochs at the start in which the shared weights train on children drawn uniformly
    /// from the space instead of from the controller, and the controller is not updated (its
    /// children's rewards are still measured and recorded). A controller that learns from the
    /// first epochs rewards whatever the barely trained shared weights favour: children
    /// without weights to train (skip connections, pooling), which then get most of the
    /// training. Uniform sampling first trains every operation equally, as SPOS and the
    /// warm-up of DARTS-style searches do. 0 (the default) is ENAS.
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Whether the warm-up is *strictly fair* (FairNAS, Chu et al., ICCV 2021): each
    /// minibatch is split into `k` equal slices (`k` the most choices of any decision), each
    /// slice goes through its own child, and the `k` children together take every choice of
    /// every decision once (a random permutation per decision). Where each decision picks one
    /// operation with weights of its own (NAS-Bench-201's edges, a chain's layers), every
    /// operation's weights then learn at every step, on a slice of the batch, instead of on
    /// the whole batch one step in `k`; where an operation's weights belong to an (input,
    /// operation) pair (DARTS-style cells), every input and every operation is taken, not
    /// every pair. Batch norm sees each slice's own statistics. FairNAS accumulates the
    /// gradients of `k` whole batches instead; the slices cost what one path costs.
    #[serde(default)]
    pub fair_warmup: bool,
}

impl Default for EnasConfig {
    fn default() -> Self {
        Self {
            child: TrainConfig {
                epochs: 150,
                batch_size: 160,
                learning_rate: 0.05,
                min_learning_rate: 5e-4,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-4,
                grad_clip: Some(5.0),
                ..TrainConfig::default()
            },
            controller: ControllerConfig {
                learning_rate: 3.5e-3,
                tanh_constant: Some(1.1),
                ..ControllerConfig::default()
            },
            controller_steps: 30,
            controller_batch: 10,
            reward_batch_size: 160,
            derive_samples: 100,
            derive_top: 5,
            seed: 0,
            batch_statistics: false,
            warmup_epochs: 0,
            fair_warmup: false,
        }
    }
}

impl EnasConfig {
    /// Checks every field; the error names the field and what it accepts.
    pub fn check(&self) -> Result<(), EnasError> {
        self.child.check()?;
        self.controller.check()?;
        let positive = [
            ("controller_steps", self.controller_steps),
            ("controller_batch", self.controller_batch),
            ("reward_batch_size", self.reward_batch_size),
            ("derive_samples", self.derive_samples),
            ("derive_top", self.derive_top),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(EnasError::Config(format!("`{field}` must be at least 1")));
            }
        }
        if self.warmup_epochs >= self.child.epochs {
            return Err(EnasError::Config(format!(
                "`warmup_epochs` ({}) must be less than the epochs (`child.epochs`, {}): the controller learns only after the warm-up",
                self.warmup_epochs, self.child.epochs
            )));
        }
        if self.derive_top > self.derive_samples {
            return Err(EnasError::Config(format!(
                "`derive_top` ({}) must not exceed `derive_samples` ({})",
                self.derive_top, self.derive_samples
            )));
        }
        Ok(())
    }
}

/// Errors of an ENAS search.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnasError {
    /// An invalid [`EnasConfig`].
    #[error("invalid ENAS configuration: {0}")]
    Config(String),
    /// Training the shared weights failed (a diverging loss, unusable data). The supernet was
    /// restored to its state before the failed epoch.
    #[error("training the shared weights: {0}")]
    Train(#[from] TrainError),
    /// The controller failed (an invalid configuration, a non-finite reward).
    #[error("controller: {0}")]
    Controller(#[from] StrategyError),
    /// The controller's decisions are not an architecture of the space, or the architecture
    /// does not fit the supernet (built for another space).
    #[error("architecture: {0}")]
    Space(#[from] SpaceError),
    /// The supernet rejects an architecture of the space: they do not match.
    #[error("the supernet does not hold the space's architecture {arch}: {reason}")]
    Mismatch {
        /// The architecture, in the space's text format or debug form.
        arch: String,
        /// Why the supernet rejects it.
        reason: String,
    },
    /// The data cannot be used (an empty validation set, a shape the supernet does not take).
    #[error("data: {0}")]
    Data(String),
    /// A checkpoint could not be written, read or resumed.
    #[error(transparent)]
    Checkpoint(#[from] nas_supernet::driver::CheckpointError),
}

/// What one ENAS epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnasEpoch<A> {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Mean training loss of the sampled children on the training set.
    pub train_loss: f64,
    /// Training accuracy (%) of the sampled children.
    pub train_accuracy: f64,
    /// Mean reward (validation-minibatch accuracy in `[0, 1]`) of the children the controller
    /// sampled this epoch (and learned from, after the warm-up).
    pub mean_reward: f64,
    /// The controller's baseline after the epoch (NaN until its first update, i.e. during
    /// the warm-up).
    pub baseline: f64,
    /// Mean summed entropy of the controller's decisions (lower: a more certain policy).
    pub entropy: f64,
    /// The child with the highest reward this epoch, and its reward.
    pub best: (A, f64),
    /// Seconds spent training the shared weights.
    pub weight_seconds: f64,
    /// Seconds spent training the controller.
    pub controller_seconds: f64,
}

/// The derived architecture and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnasDerived<A> {
    /// The architecture.
    pub arch: A,
    /// Its accuracy (%) on the whole validation set with the shared weights.
    pub validation_accuracy: f64,
    /// The rescored candidates: architecture, one-minibatch reward, whole-set accuracy (%),
    /// best first.
    pub candidates: Vec<(A, f64, f64)>,
}

/// An ENAS search: the space, the controller, the supernet and its trainer (see the
/// [module docs](self)).
pub struct Enas<S, B, N, C = DefaultBackend>
where
    S: Sequential,
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
    C: AutodiffBackend,
{
    space: S,
    config: EnasConfig,
    controller: Controller<C>,
    supernet: N,
    trainer: SupernetTrainer<B, N>,
    device: Device<B>,
    /// Validation minibatches for the rewards, and which is next.
    valid: Vec<ImageBatch<B::InnerBackend>>,
    next_valid: usize,
    history: Vec<EnasEpoch<S::Arch>>,
}

impl<S: Sequential, B: AutodiffBackend, N: EnasNet<S, B>, C: AutodiffBackend> std::fmt::Debug
    for Enas<S, B, N, C>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enas")
            .field("config", &self.config)
            .field("controller", &self.controller)
            .field("epochs_done", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl<S, B, N, C> Enas<S, B, N, C>
where
    S: Sequential,
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
    N::InnerModule: SinglePath<B::InnerBackend, Arch = S::Arch>,
    C: AutodiffBackend,
{
    /// A search over `space` with the shared weights of `supernet` (on `device`), the rewards
    /// measured on `valid` (normalized with `normalize`). `train_len` is the size of the
    /// training set the epochs will run over (it sets the learning-rate schedule).
    ///
    /// Fails on an invalid configuration, an empty validation set, or a supernet that does not
    /// hold the space's architectures (checked on a few samples).
    pub fn new(
        space: S,
        supernet: N,
        config: EnasConfig,
        train_len: usize,
        valid: &ImageDataset,
        normalize: &Normalize,
        device: &Device<B>,
    ) -> Result<Self, EnasError> {
        config.check()?;
        if valid.is_empty() {
            return Err(EnasError::Data(
                "the validation set is empty: ENAS rewards children by their validation accuracy"
                    .into(),
            ));
        }
        let controller = Controller::for_space(&space, config.controller.clone(), config.seed)?;
        let trainer = SupernetTrainer::new(&config.child, train_len)?;
        let valid_batches: Vec<ImageBatch<B::InnerBackend>> = batches(
            valid,
            normalize,
            config.reward_batch_size,
            Some(nas_supernet::network::mix_seed(config.seed, 0, 31)),
            device,
        )
        .map_err(|e| EnasError::Data(e.to_string()))?
        .collect();
        let mut rng = <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(config.seed);
        for _ in 0..8 {
            held(&supernet, space.sample(&mut rng))?;
        }
        Ok(Self {
            space,
            config,
            controller,
            supernet,
            trainer,
            device: device.clone(),
            valid: valid_batches,
            next_valid: 0,
            history: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EnasConfig {
        &self.config
    }

    /// The controller.
    pub fn controller(&self) -> &Controller<C> {
        &self.controller
    }

    /// The supernet (its shared weights as trained so far).
    pub fn supernet(&self) -> &N {
        &self.supernet
    }

    /// The supernet, ending the search.
    pub fn into_supernet(self) -> N {
        self.supernet
    }

    /// The epochs run so far.
    pub fn history(&self) -> &[EnasEpoch<S::Arch>] {
        &self.history
    }

    /// Whether all `config.child.epochs` epochs have run.
    pub fn is_done(&self) -> bool {
        self.history.len() >= self.config.child.epochs
    }

    /// Samples one child from the controller: its controller sample and architecture.
    fn sample_child(&mut self) -> Result<(crate::controller::Sample, S::Arch), EnasError> {
        let sample = self.controller.sample();
        let arch = held(
            &self.supernet,
            self.space.from_decisions(&sample.decisions)?,
        )?;
        Ok((sample, arch))
    }

    /// A child drawn uniformly from the space (the warm-up's), checked against the supernet.
    fn uniform_child(&self, rng: &mut rand::rngs::ChaCha8Rng) -> Result<S::Arch, EnasError> {
        held(&self.supernet, self.space.sample(rng))
    }

    /// The children of one strictly fair minibatch (see [`EnasConfig::fair_warmup`] and
    /// [`crate::random::strictly_fair`]), checked against the supernet.
    fn fair_children(&self, rng: &mut rand::rngs::ChaCha8Rng) -> Result<Vec<S::Arch>, EnasError> {
        crate::random::strictly_fair(&self.space, rng)?
            .into_iter()
            .map(|arch| held(&self.supernet, arch))
            .collect()
    }

    /// One epoch: the shared weights over `train` (normalized with `normalize`), then the
    /// controller's updates. On any failure (a diverging loss, a bad sample) the supernet, the
    /// trainer and the controller are restored to their state before the epoch and the error
    /// returned.
    pub fn epoch(
        &mut self,
        train: &ImageDataset,
        normalize: &Normalize,
    ) -> Result<&EnasEpoch<S::Arch>, EnasError> {
        // The trainer (momentum, counters, report) and the controller (parameters, moments,
        // baseline, generator) as they were, to restore on any failure of the epoch; the
        // supernet is restored from its inference copy below.
        let mut before = Checkpoint::new("(in memory)");
        self.trainer.save(&mut before, "")?;
        before.put("controller", &self.controller)?;
        let next_valid = self.next_valid;
        let supernet = self.supernet.valid();
        match self.run_epoch(train, normalize) {
            Ok(()) => Ok(self
                .history
                .last()
                .unwrap_or_else(|| unreachable!("pushed by run_epoch"))),
            Err(e) => {
                self.supernet = N::from_inner(supernet);
                self.trainer.load(&before, "", &self.device)?;
                self.controller = before.get("controller")?;
                self.next_valid = next_valid;
                Err(e)
            }
        }
    }

    fn run_epoch(&mut self, train: &ImageDataset, normalize: &Normalize) -> Result<(), EnasError> {
        let epoch = self.history.len();
        // 1. Shared weights: a fresh child per minibatch. The children are drawn before the
        //    pass (the controller does not change during it), so a bad sample is an error
        //    here rather than a panic inside the training step.
        //    During the warm-up the children are uniform samples of the space (seeded by the
        //    epoch, so a resumed search draws the same ones).
        let steps = train.len().div_ceil(self.config.child.batch_size.max(1));
        let warmup = epoch < self.config.warmup_epochs;
        let mut uniform = <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(
            nas_supernet::network::mix_seed(self.config.seed, epoch as u64, 47),
        );
        let mut children: Vec<Vec<S::Arch>> = Vec::with_capacity(steps);
        for _ in 0..steps {
            children.push(match (warmup, self.config.fair_warmup) {
                (true, true) => self.fair_children(&mut uniform)?,
                (true, false) => vec![self.uniform_child(&mut uniform)?],
                (false, _) => vec![self.sample_child()?.1],
            });
        }
        let start = Instant::now();
        let mut next = 0;
        let result = self.trainer.epoch(
            self.supernet.clone(),
            train,
            normalize,
            &self.device,
            |net, images, _| {
                let paths = &children[next.min(children.len() - 1)];
                next += 1;
                net.sliced_logits(images, paths)
            },
        );
        // On failure `epoch` restores the supernet from its inference copy (not a clone:
        // clones of a module share their batch-norm running statistics, which the failed
        // epoch would have moved).
        self.supernet = result?;
        let weight_seconds = start.elapsed().as_secs_f64();
        let report = self.trainer.report();
        let train_loss = report.train_loss.last().copied().unwrap_or(f64::NAN);
        let train_accuracy = report.train_accuracy.last().copied().unwrap_or(f64::NAN);

        // 2. Controller: REINFORCE on validation-minibatch accuracies of sampled children (during
        //    the warm-up the rewards are measured, not learned from).
        let start = Instant::now();
        let net = self.supernet.valid();
        let (mut reward_sum, mut entropy_sum, mut count) = (0.0, 0.0, 0usize);
        let mut best: Option<(S::Arch, f64)> = None;
        for _ in 0..self.config.controller_steps {
            let mut episodes = Vec::with_capacity(self.config.controller_batch);
            for _ in 0..self.config.controller_batch {
                let (sample, arch) = self.sample_child()?;
                let batch = &self.valid[self.next_valid % self.valid.len()];
                self.next_valid += 1;
                let (_, accuracy) =
                    self.scored(|| path_accuracy(&net, &arch, std::slice::from_ref(batch)));
                let reward = accuracy / 100.0;
                reward_sum += reward;
                entropy_sum += sample.entropy;
                count += 1;
                if best.as_ref().is_none_or(|(_, r)| reward > *r) {
                    best = Some((arch, reward));
                }
                episodes.push(Episode::new(sample, reward));
            }
            if !warmup {
                self.controller.reinforce(&episodes)?;
            }
        }
        let controller_seconds = start.elapsed().as_secs_f64();
        let best = best.unwrap_or_else(|| unreachable!("controller_steps and batch are >= 1"));
        self.history.push(EnasEpoch {
            epoch,
            train_loss,
            train_accuracy,
            mean_reward: reward_sum / count.max(1) as f64,
            baseline: self.controller.baseline().unwrap_or(f64::NAN),
            entropy: entropy_sum / count.max(1) as f64,
            best,
            weight_seconds,
            controller_seconds,
        });
        Ok(())
    }

    /// Runs the remaining epochs, calling `observer` after each.
    pub fn run(
        &mut self,
        train: &ImageDataset,
        normalize: &Normalize,
        mut observer: impl FnMut(&EnasEpoch<S::Arch>),
    ) -> Result<(), EnasError> {
        let mut epochs = self.epochs(train, normalize);
        Driver::new(&mut epochs)
            .observer(|_: usize, e: &EnasEpoch<S::Arch>| observer(e))
            .run()
            .map_err(EnasError::from_driver)?;
        Ok(())
    }

    /// The remaining epochs over `train` as an [`EpochSolver`], for a [`Driver`] that
    /// checkpoints and resumes them: the shared weights, the trainer's momentum and schedule,
    /// the controller (parameters, Adam moments, baseline, generator) and the history.
    pub fn epochs<'a>(
        &'a mut self,
        train: &'a ImageDataset,
        normalize: &'a Normalize,
    ) -> EnasEpochs<'a, S, B, N, C> {
        EnasEpochs {
            enas: self,
            train,
            normalize,
        }
    }

    /// The validation accuracy (%) of `arch` with the shared weights on the whole validation
    /// set, in inference mode: the score [`Enas::derive`] rescores its candidates by, for any
    /// architecture of the space (to compare one-shot with stand-alone accuracy, say).
    pub fn shared_accuracy(&self, arch: &S::Arch) -> f64 {
        let net = self.supernet.valid();
        self.scored(|| path_accuracy(&net, arch, &self.valid).1)
    }

    /// `f` with the batch norms set as [`EnasConfig::batch_statistics`] says.
    fn scored<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.config.batch_statistics {
            nas_supernet::fast::with_batch_statistics(f)
        } else {
            f()
        }
    }

    /// Derives the final architecture (see the [module docs](self)): samples
    /// `derive_samples` children, keeps the `derive_top` best by one-minibatch reward, rescores
    /// them on the whole validation set and returns the best.
    pub fn derive(&mut self) -> Result<EnasDerived<S::Arch>, EnasError> {
        let net = self.supernet.valid();
        let mut scored: Vec<(S::Arch, f64)> = Vec::with_capacity(self.config.derive_samples);
        for _ in 0..self.config.derive_samples {
            let (_, arch) = self.sample_child()?;
            let batch = &self.valid[self.next_valid % self.valid.len()];
            self.next_valid += 1;
            let (_, accuracy) =
                self.scored(|| path_accuracy(&net, &arch, std::slice::from_ref(batch)));
            scored.push((arch, accuracy / 100.0));
        }
        // Stable sort: ties keep the sampling order, so the result is deterministic.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut candidates: Vec<(S::Arch, f64, f64)> = Vec::new();
        for (arch, reward) in scored {
            if candidates.len() == self.config.derive_top {
                break;
            }
            if candidates.iter().any(|(a, _, _)| *a == arch) {
                continue;
            }
            let (_, accuracy) = self.scored(|| path_accuracy(&net, &arch, &self.valid));
            candidates.push((arch, reward, accuracy));
        }
        candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
        let (arch, _, validation_accuracy) = candidates[0].clone();
        Ok(EnasDerived {
            arch,
            validation_accuracy,
            candidates,
        })
    }
}

/// `arch` if `supernet` holds its path, else [`EnasError::Mismatch`] saying why not.
fn held<B: burn::tensor::backend::Backend, N: SinglePath<B>>(
    supernet: &N,
    arch: N::Arch,
) -> Result<N::Arch, EnasError>
where
    N::Arch: std::fmt::Debug,
{
    match supernet.check_arch(&arch) {
        Ok(()) => Ok(arch),
        Err(e) => Err(EnasError::Mismatch {
            arch: format!("{arch:?}"),
            reason: e.to_string(),
        }),
    }
}

/// The epochs of an [`Enas`] search over one training set, for the
/// [`nas_supernet::driver::Driver`]: made by [`Enas::epochs`].
pub struct EnasEpochs<'a, S, B, N, C>
where
    S: Sequential,
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
    C: AutodiffBackend,
{
    enas: &'a mut Enas<S, B, N, C>,
    train: &'a ImageDataset,
    normalize: &'a Normalize,
}

impl<S: Sequential, B: AutodiffBackend, N: EnasNet<S, B>, C: AutodiffBackend> std::fmt::Debug
    for EnasEpochs<'_, S, B, N, C>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnasEpochs")
            .field("enas", &self.enas)
            .field("train_images", &self.train.len())
            .finish()
    }
}

impl<S, B, N, C> EnasEpochs<'_, S, B, N, C>
where
    S: Sequential,
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
    C: AutodiffBackend,
{
    /// The search.
    pub fn enas(&mut self) -> &mut Enas<S, B, N, C> {
        self.enas
    }
}

impl<S: Sequential, B: AutodiffBackend, N: EnasNet<S, B>, C: AutodiffBackend> EpochSolver
    for EnasEpochs<'_, S, B, N, C>
where
    N::InnerModule: SinglePath<B::InnerBackend, Arch = S::Arch>,
{
    type Report = EnasEpoch<S::Arch>;
    type Error = EnasError;

    fn kind(&self) -> &'static str {
        "enas"
    }

    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "space": self.enas.space.name(),
            "decisions": self.enas.space.decisions(),
            "config": self.enas.config,
            "train_images": self.train.len(),
        })
    }

    fn total_epochs(&self) -> usize {
        self.enas.config.child.epochs
    }

    fn epochs_done(&self) -> usize {
        self.enas.history.len()
    }

    fn epoch(&mut self) -> Result<EnasEpoch<S::Arch>, EnasError> {
        self.enas.epoch(self.train, self.normalize).cloned()
    }

    fn save(&self, c: &mut Checkpoint) -> Result<(), EnasError> {
        let e = &*self.enas;
        c.put_module::<B, N>("supernet", &e.supernet)?;
        e.trainer.save(c, "supernet_")?;
        c.put("controller", &e.controller)?;
        c.put("history", &e.history)?;
        c.put("next_valid", &e.next_valid)?;
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint) -> Result<(), EnasError> {
        let e = &mut *self.enas;
        e.supernet = c.module::<B, N>("supernet", e.supernet.clone(), &e.device)?;
        e.trainer.load(c, "supernet_", &e.device)?;
        e.controller = c.get("controller")?;
        e.history = c.get("history")?;
        e.next_valid = c.get("next_valid")?;
        Ok(())
    }
}

impl EnasError {
    /// The error of a driven search, flattened.
    pub fn from_driver(e: DriverError<EnasError>) -> Self {
        e.flatten()
    }
}
