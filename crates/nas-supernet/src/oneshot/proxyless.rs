//! The ProxylessNAS search loop (Cai et al. 2019): binarized paths for the weights, binary
//! gates for the architecture parameters, an expected-latency term in the architecture loss.
//!
//! [`search`] follows `ArchSearchRunManager` of `mit-han-lab/proxylessnas`: warm-up epochs
//! train the weights on paths sampled from the (uniform) path probabilities; afterwards every
//! training step is a [`weight_step`] on one sampled path and every `arch_update_every` steps
//! an [`arch_step`] on a batch of the held-out architecture split (see [`super::gates`]). The
//! derived architecture is the most probable choice of every layer.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, ElementConversion, Int, Tensor};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::chain_supernet::ProxylessSupernet;
use super::gates::{ArchOptimConfig, ArchParams, latency_alpha_grads, pair_alpha_grads};
use super::latency::LatencyTable;
use super::train::{batches, count_correct, sgd};
use crate::data::{ImageDataset, Normalize};
use crate::network::mix_seed;
use crate::train::{TrainConfig, TrainError};

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
}

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

/// Runs a ProxylessNAS search: trains `model`'s weights on `train` and the architecture
/// parameters `alphas` on `arch_data` (see the [module docs](self)). `observer` is called after
/// every epoch with the report so far and the current parameters.
#[allow(clippy::too_many_arguments)]
pub fn search<B: AutodiffBackend>(
    mut model: ProxylessSupernet<B>,
    alphas: &mut ArchParams,
    train: &ImageDataset,
    arch_data: &ImageDataset,
    normalize: &Normalize,
    table: Option<&LatencyTable>,
    config: &ProxylessSearchConfig,
    device: &Device<B>,
    mut observer: impl FnMut(usize, &ProxylessReport, &ArchParams),
) -> Result<(ProxylessSupernet<B>, ProxylessReport), TrainError> {
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
    let mut optim = sgd::<B, ProxylessSupernet<B>>(tc);
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(tc.seed, 0, 23));
    let steps_per_epoch = train.len().div_ceil(tc.batch_size);
    let total_steps = steps_per_epoch * tc.epochs;
    let mut report = ProxylessReport::default();
    let mut step = 0;
    let mut arch_epoch = 0u64;
    let mut arch_batches = batches(arch_data, normalize, tc.batch_size, Some(tc.seed), device)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    for epoch in 0..tc.epochs {
        let start = Instant::now();
        let warmup = epoch < config.warmup_epochs;
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let (mut arch_sum, mut arch_n) = (0.0, 0usize);
        let seed = mix_seed(tc.seed, epoch as u64, 11);
        let epoch_batches = batches(train, normalize, tc.batch_size, Some(seed), device)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        for (i, batch) in epoch_batches.enumerate() {
            let n = batch.targets.dims()[0];
            let indices = alphas.sample_paths(&mut rng);
            let lr = tc.learning_rate_at(step, total_steps);
            let (m, loss, c) =
                weight_step(model, &mut optim, lr, batch.images, batch.targets, &indices);
            model = m;
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step: i,
                    loss,
                    report: Box::default(),
                });
            }
            loss_sum += loss * n as f64;
            correct += c;
            seen += n;
            step += 1;
            if !warmup && (i + 1) % config.arch_update_every == 0 {
                let arch_batch = match arch_batches.next() {
                    Some(b) => b,
                    None => {
                        arch_epoch += 1;
                        let seed = mix_seed(tc.seed, arch_epoch, 29);
                        arch_batches =
                            batches(arch_data, normalize, tc.batch_size, Some(seed), device)
                                .map_err(|e| TrainError::Data(e.to_string()))?;
                        arch_batches.next().ok_or_else(|| {
                            TrainError::Data("the architecture set is empty".into())
                        })?
                    }
                };
                let r = arch_step(
                    &model,
                    alphas,
                    arch_batch.images,
                    arch_batch.targets,
                    table,
                    config.latency_weight,
                    reference,
                    &mut rng,
                );
                arch_sum += r.loss;
                arch_n += 1;
            }
        }
        report.train_loss.push(loss_sum / seen.max(1) as f64);
        report
            .train_accuracy
            .push(100.0 * correct as f64 / seen.max(1) as f64);
        report.arch_loss.push(if arch_n > 0 {
            arch_sum / arch_n as f64
        } else {
            f64::NAN
        });
        report
            .expected_latency_ms
            .push(table.map_or(f64::NAN, |t| t.expected(&alphas.all_probs())));
        report.entropy.push(alphas.mean_entropy());
        report.epoch_seconds.push(start.elapsed().as_secs_f64());
        observer(epoch, &report, alphas);
    }
    Ok((model, report))
}

/// The choices per layer of `model`, for [`ArchParams::new`].
pub fn layer_choices<B: burn::tensor::backend::Backend>(
    model: &ProxylessSupernet<B>,
) -> Vec<usize> {
    model.layers().iter().map(|l| l.num_choices()).collect()
}
