//! The ProxylessNAS search loop (Cai et al. 2019): binarized paths for the weights, binary
//! gates for the architecture parameters, an expected-latency term in the architecture loss.
//!
//! [`search`] follows `ArchSearchRunManager` of `mit-han-lab/proxylessnas`: warm-up epochs
//! train the weights on paths sampled from the (uniform) path probabilities; afterwards every
//! training step is a [`weight_step`] on one sampled path and every `arch_update_every` steps
//! an [`arch_step`] on a batch of the held-out architecture split (see [`super::gates`]). The
//! derived architecture is the most probable choice of every layer.
//!
//! [`ArchGradient::Reinforce`] replaces the binary gates by ProxylessNAS' REINFORCE path (its
//! §3.2.2 alternative): each architecture step samples whole paths from the path
//! probabilities, rewards each by its accuracy on the architecture batch minus the latency
//! penalty of *that path* (`λ · (lat − ref) / ref`), and moves the parameters along
//! `(R − b) ∇α log p(path)` with a moving-average baseline `b`. The objective needs no
//! gradient: the latency can be measured on the target device
//! ([`ProxylessSearch::with_path_latency`]) instead of read from a table.

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, ElementConversion, Int, Tensor};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::chain_supernet::ProxylessSupernet;
use super::gates::{ArchOptimConfig, ArchParams, latency_alpha_grads, pair_alpha_grads};
use super::latency::LatencyTable;
use super::train::count_correct;
use crate::data::{ImageBatch, ImageDataset, Normalize, epoch_batches};
use crate::driver::{Checkpoint, Control, Driver, EpochSolver, WithHistory};
use crate::network::mix_seed;
use crate::train::{TrainConfig, TrainError, TrainOptim, normalized_batcher, sgd_optimizer};

/// Settings of a ProxylessNAS search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxylessSearchConfig {
    /// Weight training: epochs (warm-up included), batch size, SGD settings, seed.
    pub train: TrainConfig,
    /// Epochs that train weights only, on uniformly sampled paths (the code's warm-up; 40 of
    /// 160 on ImageNet).
    pub warmup_epochs: usize,
    /// One architecture step every this many weight steps (the code's 5).
    pub arch_update_every: usize,
    /// Adam settings of the architecture parameters.
    pub arch_optim: ArchOptimConfig,
    /// λ of the latency term `λ · (E[lat] − ref) / ref` (the code's 0.1); 0 disables it.
    pub latency_weight: f64,
    /// `ref` of the latency term, in milliseconds; `None`: the expected latency under uniform
    /// path probabilities.
    pub latency_reference_ms: Option<f64>,
    /// How the architecture parameters learn: binary gates (the default) or REINFORCE.
    /// (Left out of the serialized configuration when gates.)
    #[serde(default, skip_serializing_if = "ArchGradient::is_gates")]
    pub arch_gradient: ArchGradient,
}

/// How the architecture parameters of a ProxylessNAS search get their gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum ArchGradient {
    /// Binary gates on two sampled paths ([`arch_step`]); the latency term is differentiable
    /// through a [`LatencyTable`]'s expected latency.
    #[default]
    Gates,
    /// REINFORCE ([`reinforce_step`]): `samples` paths per step, each rewarded by its accuracy
    /// on the architecture batch minus `λ · (lat − ref) / ref` of its own latency; the
    /// baseline is a moving average of the mean reward with this `baseline_decay`.
    Reinforce {
        /// Paths sampled per architecture step (≥ 1).
        samples: usize,
        /// Decay of the baseline's moving average, in `[0, 1)`.
        baseline_decay: f64,
    },
}

impl ArchGradient {
    fn is_gates(&self) -> bool {
        matches!(self, ArchGradient::Gates)
    }
}

/// The latency in milliseconds of a path (one choice index per layer), e.g. measured on the
/// target device: the non-differentiable objective of [`ArchGradient::Reinforce`].
pub type PathLatency = std::sync::Arc<dyn Fn(&[usize]) -> f64 + Send + Sync>;

/// A path's latency in milliseconds, as [`reinforce_step`] takes it.
pub type LatencyOf<'a> = dyn Fn(&[usize]) -> f64 + 'a;

impl Default for ProxylessSearchConfig {
    /// The code's architecture settings with [`TrainConfig::default`] weights and one warm-up
    /// epoch.
    fn default() -> Self {
        Self {
            train: TrainConfig::default(),
            warmup_epochs: 1,
            arch_update_every: 5,
            arch_optim: ArchOptimConfig::default(),
            latency_weight: 0.1,
            latency_reference_ms: None,
            arch_gradient: ArchGradient::Gates,
        }
    }
}

/// Per-epoch results of a ProxylessNAS search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxylessReport {
    /// Mean training loss of the weight steps.
    pub train_loss: Vec<f64>,
    /// Training accuracy (%) of the weight steps.
    pub train_accuracy: Vec<f64>,
    /// Mean architecture loss (cross-entropy plus latency term); NaN in warm-up epochs.
    pub arch_loss: Vec<f64>,
    /// Expected latency (ms) under the path probabilities at the end of the epoch (NaN
    /// without a latency table).
    pub expected_latency_ms: Vec<f64>,
    /// Mean entropy of the path distributions at the end of the epoch.
    pub entropy: Vec<f64>,
    /// Wall time per epoch, in seconds.
    pub epoch_seconds: Vec<f64>,
}

/// What one architecture step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchStepResult {
    /// Cross-entropy of the batch on the active paths.
    pub cross_entropy: f64,
    /// Expected latency before the update (NaN without a table).
    pub expected_latency_ms: f64,
    /// The loss: cross-entropy plus the latency term.
    pub loss: f64,
}

/// One weight step on the path of `indices`: forward, backward and the optimizer's update of
/// the path's weights. Returns the model, the loss and the number of correct predictions.
pub fn weight_step<B, O>(
    model: ProxylessSupernet<B>,
    optim: &mut O,
    learning_rate: f64,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    indices: &[usize],
) -> (ProxylessSupernet<B>, f64, usize)
where
    B: AutodiffBackend,
    O: Optimizer<ProxylessSupernet<B>, B>,
{
    let device = images.device();
    let logits = model.forward_indices(images, indices);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), targets.clone());
    let value: f64 = loss.clone().into_scalar().elem();
    let correct = count_correct(logits, targets);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(learning_rate, model, grads), value, correct)
}

/// The gradient of the loss with respect to the two gates of every layer (two-path binary
/// gates), with the weights frozen. `None` for layers whose active choice is `zero` or that
/// have a single choice. Also returns the cross-entropy.
pub fn gate_gradients<B: AutodiffBackend>(
    model: &ProxylessSupernet<B>,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    pairs: &[super::gates::GatePair],
) -> (Vec<Option<(f64, f64)>>, f64) {
    let device = images.device();
    let frozen = model.clone().no_grad();
    let mut x = frozen.head(images);
    let mut gates = Vec::with_capacity(pairs.len());
    for (layer, pair) in frozen.layers().iter().zip(pairs) {
        let Some(inactive) = pair.inactive.filter(|_| !layer.is_zero(pair.active)) else {
            x = layer.forward_choice(x, pair.active);
            gates.push(None);
            continue;
        };
        let active_gate = Tensor::<B, 1>::ones([1], &device).require_grad();
        let inactive_gate = Tensor::<B, 1>::zeros([1], &device).require_grad();
        // The inactive path: its output only, without a graph.
        let other = layer.forward_choice(x.clone().detach(), inactive).detach();
        let active = layer.forward_choice(x, pair.active);
        x = active * active_gate.clone().reshape([1, 1, 1, 1])
            + other * inactive_gate.clone().reshape([1, 1, 1, 1]);
        gates.push(Some((active_gate, inactive_gate)));
    }
    let logits = frozen.tail(x);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits, targets);
    let ce: f64 = loss.clone().into_scalar().elem();
    let grads = loss.backward();
    let scalar = |g: &Tensor<B, 1>| -> f64 {
        g.grad(&grads)
            .map(|t| t.into_scalar().elem::<f64>())
            .unwrap_or(0.0)
    };
    let out = gates
        .iter()
        .map(|g| g.as_ref().map(|(a, b)| (scalar(a), scalar(b))))
        .collect();
    (out, ce)
}

/// One architecture step: samples two-path gates, estimates `∂L/∂α` from the gate gradients,
/// adds the gradient of the latency term (with `table`), takes an Adam step and rescales the
/// sampled pairs. `reference_ms` is the latency term's `ref`.
#[allow(clippy::too_many_arguments)]
pub fn arch_step<B: AutodiffBackend>(
    model: &ProxylessSupernet<B>,
    alphas: &mut ArchParams,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    table: Option<&LatencyTable>,
    latency_weight: f64,
    reference_ms: f64,
    rng: &mut ChaCha8Rng,
) -> ArchStepResult {
    let pairs = alphas.sample_pairs(rng);
    let (gate_grads, ce) = gate_gradients(model, images, targets, &pairs);
    let probs = alphas.all_probs();
    let expected = table.map_or(f64::NAN, |t| t.expected(&probs));
    let scale = latency_weight / reference_ms;
    let mut grads = Vec::with_capacity(pairs.len());
    let mut old = Vec::with_capacity(pairs.len());
    for (l, (pair, gg)) in pairs.iter().zip(&gate_grads).enumerate() {
        let (Some((ga, gb)), Some(inactive)) = (gg, pair.inactive) else {
            grads.push(None);
            old.push(None);
            continue;
        };
        let a = alphas.alphas()[l].clone();
        let mut g = match table {
            Some(t) if latency_weight > 0.0 => latency_alpha_grads(&probs[l], &t.layers[l], scale),
            _ => vec![0.0; a.len()],
        };
        let (da, db) = pair_alpha_grads((a[pair.active], a[inactive]), (*ga, *gb));
        g[pair.active] += da;
        g[inactive] += db;
        grads.push(Some(g));
        old.push(Some((
            (pair.active, inactive),
            (a[pair.active], a[inactive]),
        )));
    }
    alphas.step(&grads);
    for (l, o) in old.into_iter().enumerate() {
        if let Some((pair, values)) = o {
            alphas.rescale_pair(l, pair, values);
        }
    }
    let penalty = if table.is_some() && latency_weight > 0.0 {
        latency_weight * (expected - reference_ms) / reference_ms
    } else {
        0.0
    };
    ArchStepResult {
        cross_entropy: ce,
        expected_latency_ms: expected,
        loss: ce + penalty,
    }
}

/// One REINFORCE architecture step (see [`ArchGradient::Reinforce`]): samples `samples` paths
/// from the path probabilities, rewards each by `accuracy − λ · (lat − ref) / ref` on the
/// batch (`accuracy` in `[0, 1]`; no latency penalty when `latency` is `None` or `λ` is 0),
/// and takes an Adam step on `−(R − b) ∇α log p(path)`, averaged over the samples. The
/// baseline `b` starts at the first step's mean reward and then follows
/// `b ← decay · b + (1 − decay) · mean reward`. The result's `loss` is minus the mean reward,
/// its `cross_entropy` the mean over the sampled paths, its `expected_latency_ms` their mean
/// latency (NaN without `latency`).
#[allow(clippy::too_many_arguments)]
pub fn reinforce_step<B: AutodiffBackend>(
    model: &ProxylessSupernet<B>,
    alphas: &mut ArchParams,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    samples: usize,
    latency: Option<&LatencyOf<'_>>,
    latency_weight: f64,
    reference_ms: f64,
    baseline: &mut Option<f64>,
    baseline_decay: f64,
    rng: &mut ChaCha8Rng,
) -> ArchStepResult {
    let inner = model.valid();
    let (images, targets) = (images.inner(), targets.inner());
    let n = targets.dims()[0].max(1) as f64;
    let probs = alphas.all_probs();
    let loss_fn = CrossEntropyLossConfig::new().init(&images.device());
    let mut episodes = Vec::with_capacity(samples.max(1));
    let (mut ce_sum, mut lat_sum) = (0.0, 0.0);
    for _ in 0..samples.max(1) {
        let path = alphas.sample_paths(rng);
        let logits = inner.forward_indices(images.clone(), &path);
        let accuracy = count_correct(logits.clone(), targets.clone()) as f64 / n;
        ce_sum += loss_fn
            .forward(logits, targets.clone())
            .into_scalar()
            .elem::<f64>();
        let lat = latency.map(|f| f(&path));
        let penalty = match lat {
            Some(l) if latency_weight > 0.0 => latency_weight * (l - reference_ms) / reference_ms,
            _ => 0.0,
        };
        lat_sum += lat.unwrap_or(f64::NAN);
        episodes.push((path, accuracy - penalty));
    }
    let k = episodes.len() as f64;
    let mean_reward = episodes.iter().map(|(_, r)| r).sum::<f64>() / k;
    let b = baseline.unwrap_or(mean_reward);
    let mut grads: Vec<Vec<f64>> = probs.iter().map(|p| vec![0.0; p.len()]).collect();
    for (path, reward) in &episodes {
        let advantage = reward - b;
        for ((g, p), &chosen) in grads.iter_mut().zip(&probs).zip(path) {
            for (o, (gi, &pi)) in g.iter_mut().zip(p).enumerate() {
                // ∂ log p(path) / ∂α_o = 1[o = chosen] − p_o; the loss is its negation.
                let indicator = if o == chosen { 1.0 } else { 0.0 };
                *gi -= advantage * (indicator - pi) / k;
            }
        }
    }
    *baseline = Some(baseline_decay * b + (1.0 - baseline_decay) * mean_reward);
    alphas.step(&grads.into_iter().map(Some).collect::<Vec<_>>());
    ArchStepResult {
        cross_entropy: ce_sum / k,
        expected_latency_ms: lat_sum / k,
        loss: -mean_reward,
    }
}

/// One epoch of a ProxylessNAS search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxylessEpoch {
    /// Mean training loss of the weight steps.
    pub train_loss: f64,
    /// Training accuracy (%) of the weight steps.
    pub train_accuracy: f64,
    /// Mean architecture loss (cross-entropy plus latency term); NaN in warm-up epochs.
    pub arch_loss: f64,
    /// Expected latency (ms) under the path probabilities after the epoch (NaN without a
    /// latency table).
    pub expected_latency_ms: f64,
    /// Mean entropy of the path distributions after the epoch.
    pub entropy: f64,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// The path probabilities of every layer after the epoch.
    pub probabilities: Vec<Vec<f64>>,
}

impl ProxylessReport {
    /// The report of `epochs`, in order.
    pub fn from_epochs(epochs: &[ProxylessEpoch]) -> Self {
        Self {
            train_loss: epochs.iter().map(|e| e.train_loss).collect(),
            train_accuracy: epochs.iter().map(|e| e.train_accuracy).collect(),
            arch_loss: epochs.iter().map(|e| e.arch_loss).collect(),
            expected_latency_ms: epochs.iter().map(|e| e.expected_latency_ms).collect(),
            entropy: epochs.iter().map(|e| e.entropy).collect(),
            epoch_seconds: epochs.iter().map(|e| e.seconds).collect(),
        }
    }
}

/// A ProxylessNAS search as an [`EpochSolver`], for the [`Driver`] that checkpoints and resumes
/// it: the supernet, its optimizer, the architecture parameters with their Adam state, and the
/// position in the architecture split. Paths and gate choices are drawn from generators seeded
/// by the step, so a resumed search ends as an uninterrupted one.
pub struct ProxylessSearch<'d, B: AutodiffBackend> {
    model: ProxylessSupernet<B>,
    alphas: ArchParams,
    optim: TrainOptim<B, ProxylessSupernet<B>>,
    train: &'d ImageDataset,
    arch_data: &'d ImageDataset,
    normalize: Normalize,
    table: Option<&'d LatencyTable>,
    config: ProxylessSearchConfig,
    device: Device<B>,
    reference: f64,
    epoch: usize,
    step: usize,
    /// Passes over the architecture split begun, and batches used of the current one.
    arch_pass: u64,
    arch_used: usize,
    /// The order of the current pass over the architecture split.
    arch_order: Vec<usize>,
    report: ProxylessReport,
    /// REINFORCE: the latency of a path (default: the table's), and the reward baseline.
    path_latency: Option<PathLatency>,
    baseline: Option<f64>,
}

impl<B: AutodiffBackend> std::fmt::Debug for ProxylessSearch<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxylessSearch")
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'d, B: AutodiffBackend> ProxylessSearch<'d, B> {
    /// A search that trains `model`'s weights on `train` and the architecture parameters
    /// `alphas` on `arch_data` (see the [module docs](self)). Fails on invalid settings or
    /// data.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: ProxylessSupernet<B>,
        alphas: ArchParams,
        train: &'d ImageDataset,
        arch_data: &'d ImageDataset,
        normalize: &Normalize,
        table: Option<&'d LatencyTable>,
        config: &ProxylessSearchConfig,
        device: &Device<B>,
    ) -> Result<Self, TrainError> {
        let tc = &config.train;
        tc.check()?;
        if train.is_empty() || arch_data.is_empty() {
            return Err(TrainError::Data(
                "the training and architecture sets must not be empty".into(),
            ));
        }
        if config.arch_update_every == 0 {
            return Err(TrainError::InvalidConfig {
                field: "arch_update_every",
                reason: "must be at least 1".into(),
            });
        }
        if let ArchGradient::Reinforce {
            samples,
            baseline_decay,
        } = config.arch_gradient
            && (samples == 0 || !(0.0..1.0).contains(&baseline_decay))
        {
            return Err(TrainError::InvalidConfig {
                field: "arch_gradient",
                reason: format!(
                    "REINFORCE needs at least 1 sample per step and a baseline decay in [0, 1), \
                     got {samples} and {baseline_decay}"
                ),
            });
        }
        if !(config.latency_weight >= 0.0 && config.latency_weight.is_finite()) {
            return Err(TrainError::InvalidConfig {
                field: "latency_weight",
                reason: "must be ≥ 0".into(),
            });
        }
        if alphas.num_layers() != model.layers().len() {
            return Err(TrainError::Data(format!(
                "{} architecture parameter vectors for {} layers",
                alphas.num_layers(),
                model.layers().len()
            )));
        }
        normalized_batcher(train.shape(), normalize)?;
        let reference = match (config.latency_reference_ms, table) {
            (Some(r), _) if r > 0.0 && r.is_finite() => r,
            (Some(r), _) => {
                return Err(TrainError::InvalidConfig {
                    field: "latency_reference_ms",
                    reason: format!("must be positive, got {r}"),
                });
            }
            (None, Some(t)) => {
                let uniform: Vec<Vec<f64>> = t
                    .layers
                    .iter()
                    .map(|l| vec![1.0 / l.len() as f64; l.len()])
                    .collect();
                t.expected(&uniform)
            }
            (None, None) => 1.0,
        };
        let mut search = Self {
            model,
            alphas,
            optim: sgd_optimizer::<B, ProxylessSupernet<B>>(tc),
            train,
            arch_data,
            normalize: normalize.clone(),
            table,
            config: config.clone(),
            device: device.clone(),
            reference,
            epoch: 0,
            step: 0,
            arch_pass: 0,
            arch_used: 0,
            arch_order: Vec::new(),
            report: ProxylessReport::default(),
            path_latency: None,
            baseline: None,
        };
        search.arch_order = search.arch_order_of(0);
        Ok(search)
    }

    /// Uses `latency` as the latency of a path in REINFORCE steps (for example measured on
    /// the target device), instead of the sum of the table's per-layer latencies. The gates
    /// path ignores it (its latency term needs the table's differentiable expectation).
    pub fn with_path_latency(mut self, latency: PathLatency) -> Self {
        self.path_latency = Some(latency);
        self
    }

    /// The supernet.
    pub fn model(&self) -> &ProxylessSupernet<B> {
        &self.model
    }

    /// The architecture parameters.
    pub fn alphas(&self) -> &ArchParams {
        &self.alphas
    }

    /// The supernet, the architecture parameters and the report.
    pub fn into_parts(self) -> (ProxylessSupernet<B>, ArchParams, ProxylessReport) {
        (self.model, self.alphas, self.report)
    }

    /// The shuffled order of pass `pass` over the architecture split.
    fn arch_order_of(&self, pass: u64) -> Vec<usize> {
        let seed = if pass == 0 {
            self.config.train.seed
        } else {
            mix_seed(self.config.train.seed, pass, 29)
        };
        let mut order: Vec<usize> = (0..self.arch_data.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order
    }

    /// The next batch of the architecture split (a new pass, reshuffled, after the last).
    fn next_arch_batch(&mut self) -> Result<ImageBatch<B>, TrainError> {
        let size = self.config.train.batch_size.max(1);
        if self.arch_used * size >= self.arch_order.len() {
            self.arch_pass += 1;
            self.arch_used = 0;
            self.arch_order = self.arch_order_of(self.arch_pass);
        }
        let start = self.arch_used * size;
        let end = (start + size).min(self.arch_order.len());
        let items = self.arch_order[start..end]
            .iter()
            .filter_map(|&i| self.arch_data.get(i))
            .collect();
        self.arch_used += 1;
        Ok(normalized_batcher(self.arch_data.shape(), &self.normalize)?.batch(items, &self.device))
    }

    fn run_epoch(&mut self) -> Result<(f64, f64, f64), TrainError> {
        let tc = self.config.train.clone();
        let epoch = self.epoch;
        let warmup = epoch < self.config.warmup_epochs;
        let steps_per_epoch = self.train.len().div_ceil(tc.batch_size);
        let total_steps = steps_per_epoch * tc.epochs;
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let (mut arch_sum, mut arch_n) = (0.0, 0usize);
        let seed = mix_seed(tc.seed, epoch as u64, 11);
        let device = self.device.clone();
        let epoch_batches = epoch_batches::<B>(
            self.train,
            normalized_batcher(self.train.shape(), &self.normalize)?,
            tc.batch_size,
            Some(seed),
            &device,
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        for (i, batch) in epoch_batches.enumerate() {
            let n = batch.targets.dims()[0];
            let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(tc.seed, self.step as u64, 23));
            let indices = self.alphas.sample_paths(&mut rng);
            let lr = tc.learning_rate_at(self.step, total_steps);
            let (m, loss, c) = weight_step(
                self.model.clone(),
                &mut self.optim,
                lr,
                batch.images,
                batch.targets,
                &indices,
            );
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step: i,
                    loss,
                    report: Box::default(),
                });
            }
            self.model = m;
            loss_sum += loss * n as f64;
            correct += c;
            seen += n;
            self.step += 1;
            if !warmup && (i + 1) % self.config.arch_update_every == 0 {
                let arch_batch = self.next_arch_batch()?;
                let r = match self.config.arch_gradient {
                    ArchGradient::Gates => arch_step(
                        &self.model,
                        &mut self.alphas,
                        arch_batch.images,
                        arch_batch.targets,
                        self.table,
                        self.config.latency_weight,
                        self.reference,
                        &mut rng,
                    ),
                    ArchGradient::Reinforce {
                        samples,
                        baseline_decay,
                    } => {
                        let table = self.table;
                        let from_table = move |path: &[usize]| {
                            table.map_or(f64::NAN, |t: &LatencyTable| t.latency(path))
                        };
                        let latency: Option<&LatencyOf<'_>> = match (&self.path_latency, table) {
                            (Some(f), _) => Some(f.as_ref()),
                            (None, Some(_)) => Some(&from_table),
                            (None, None) => None,
                        };
                        reinforce_step(
                            &self.model,
                            &mut self.alphas,
                            arch_batch.images,
                            arch_batch.targets,
                            samples,
                            latency,
                            self.config.latency_weight,
                            self.reference,
                            &mut self.baseline,
                            baseline_decay,
                            &mut rng,
                        )
                    }
                };
                arch_sum += r.loss;
                arch_n += 1;
            }
        }
        let s = seen.max(1) as f64;
        let arch_loss = if arch_n > 0 {
            arch_sum / arch_n as f64
        } else {
            f64::NAN
        };
        Ok((loss_sum / s, 100.0 * correct as f64 / s, arch_loss))
    }
}

impl<B: AutodiffBackend> EpochSolver for ProxylessSearch<'_, B> {
    type Report = ProxylessEpoch;
    type Error = TrainError;

    fn kind(&self) -> &'static str {
        "proxylessnas-search"
    }

    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "config": self.config,
            "train_images": self.train.len(),
            "arch_images": self.arch_data.len(),
            "layer_choices": layer_choices(&self.model),
            // What the table was measured for, not its values: a table measured again has
            // other timings (the example caches it on disk, so a resumed run reads the same).
            "latency_table": self.table.map(|t| &t.key),
        })
    }

    fn total_epochs(&self) -> usize {
        self.config.train.epochs
    }

    fn epochs_done(&self) -> usize {
        self.epoch
    }

    fn epoch(&mut self) -> Result<ProxylessEpoch, TrainError> {
        let start = Instant::now();
        // Restored on failure (see `SupernetTraining::epoch`).
        let model = self.model.valid();
        let optim = self.optim.to_record();
        let alphas = self.alphas.clone();
        let counters = (self.step, self.arch_pass, self.arch_used);
        let (train_loss, train_accuracy, arch_loss) = match self.run_epoch() {
            Ok(v) => v,
            Err(e) => {
                self.model = ProxylessSupernet::from_inner(model);
                self.optim =
                    sgd_optimizer::<B, ProxylessSupernet<B>>(&self.config.train).load_record(optim);
                self.alphas = alphas;
                (self.step, self.arch_pass, self.arch_used) = counters;
                self.arch_order = self.arch_order_of(self.arch_pass);
                return Err(e);
            }
        };
        let probabilities = self.alphas.all_probs();
        let e = ProxylessEpoch {
            train_loss,
            train_accuracy,
            arch_loss,
            expected_latency_ms: self.table.map_or(f64::NAN, |t| t.expected(&probabilities)),
            entropy: self.alphas.mean_entropy(),
            seconds: start.elapsed().as_secs_f64(),
            probabilities,
        };
        let r = &mut self.report;
        r.train_loss.push(e.train_loss);
        r.train_accuracy.push(e.train_accuracy);
        r.arch_loss.push(e.arch_loss);
        r.expected_latency_ms.push(e.expected_latency_ms);
        r.entropy.push(e.entropy);
        r.epoch_seconds.push(e.seconds);
        self.epoch += 1;
        Ok(e)
    }

    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        c.put_module::<B, ProxylessSupernet<B>>("model", &self.model)?;
        c.put_optimizer::<B, ProxylessSupernet<B>, _>("optimizer", &self.optim)?;
        c.put("alphas", &self.alphas)?;
        c.put(
            "counters",
            &(self.epoch, self.step, self.arch_pass, self.arch_used),
        )?;
        c.put("report", &self.report)?;
        if !self.config.arch_gradient.is_gates() {
            c.put("reinforce_baseline", &self.baseline)?;
        }
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint) -> Result<(), TrainError> {
        let (epoch, step, arch_pass, arch_used): (usize, usize, u64, usize) = c.get("counters")?;
        self.model =
            c.module::<B, ProxylessSupernet<B>>("model", self.model.clone(), &self.device)?;
        self.optim = c.optimizer::<B, ProxylessSupernet<B>, _>(
            "optimizer",
            sgd_optimizer::<B, ProxylessSupernet<B>>(&self.config.train),
            &self.device,
        )?;
        self.alphas = c.get("alphas")?;
        self.report = c.get("report")?;
        if !self.config.arch_gradient.is_gates() {
            self.baseline = c.get("reinforce_baseline")?;
        }
        (self.epoch, self.step, self.arch_pass, self.arch_used) =
            (epoch, step, arch_pass, arch_used);
        self.arch_order = self.arch_order_of(arch_pass);
        Ok(())
    }
}

/// Runs a ProxylessNAS search: trains `model`'s weights on `train` and the architecture
/// parameters `alphas` on `arch_data` (see the [module docs](self)). `observer` is called after
/// every epoch with the report so far and the epoch. `alphas` ends as the search left them,
/// also on error. To checkpoint and resume, drive a [`ProxylessSearch`] with a [`Driver`].
#[allow(clippy::too_many_arguments)]
pub fn search<B: AutodiffBackend>(
    model: ProxylessSupernet<B>,
    alphas: &mut ArchParams,
    train: &ImageDataset,
    arch_data: &ImageDataset,
    normalize: &Normalize,
    table: Option<&LatencyTable>,
    config: &ProxylessSearchConfig,
    device: &Device<B>,
    mut observer: impl FnMut(usize, &ProxylessReport, &ProxylessEpoch),
) -> Result<(ProxylessSupernet<B>, ProxylessReport), TrainError> {
    let mut search = ProxylessSearch::new(
        model,
        alphas.clone(),
        train,
        arch_data,
        normalize,
        table,
        config,
        device,
    )?;
    let mut driver = Driver::new(&mut search).observer(WithHistory(
        |epoch: usize, e: &ProxylessEpoch, history: &[ProxylessEpoch]| {
            observer(epoch, &ProxylessReport::from_epochs(history), e);
            Control::Continue
        },
    ));
    let result = driver.run();
    drop(driver);
    let (model, params, report) = search.into_parts();
    *alphas = params;
    result.map_err(TrainError::from_driver)?;
    Ok((model, report))
}

/// The choices per layer of `model`, for [`ArchParams::new`].
pub fn layer_choices<B: burn::tensor::backend::Backend>(
    model: &ProxylessSupernet<B>,
) -> Vec<usize> {
    model.layers().iter().map(|l| l.num_choices()).collect()
}
