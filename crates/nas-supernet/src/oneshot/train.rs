//! Training a supernet: the loop of SPOS, One-Shot and (with a controller) ENAS.
//!
//! [`train_supernet`] runs SGD over the training set with the settings of
//! [`crate::train::TrainConfig`] (momentum, weight decay, cosine learning rate, gradient
//! clipping); every step asks `forward` for the logits of that step's path, so the caller
//! decides how paths are chosen. Parameters off the path get no gradient and are left alone by
//! the optimizer that step. [`path_accuracy`] scores one architecture's path on batches.

use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, ElementConversion, Int, Tensor};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::SinglePath;
use crate::data::{ImageBatch, ImageBatcher, ImageDataset, Normalize};
use crate::train::{TrainConfig, TrainError};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;

/// Where a training step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepInfo {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The step, counted over all epochs (0-based).
    pub step: usize,
    /// The number of steps of the whole training.
    pub total_steps: usize,
}

/// Per-epoch results of supernet training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SupernetReport {
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Training accuracy (%) per epoch, of the paths trained.
    pub train_accuracy: Vec<f64>,
    /// Wall time per epoch, in seconds.
    pub epoch_seconds: Vec<f64>,
}

/// The batches of `data` in the order of a shuffle by `seed` (`None`: in order), normalized
/// with `normalize`, `batch_size` images each (the last may be smaller).
pub fn batches<'a, B: Backend>(
    data: &'a ImageDataset,
    normalize: &Normalize,
    batch_size: usize,
    seed: Option<u64>,
    device: &'a Device<B>,
) -> Result<impl Iterator<Item = ImageBatch<B>> + 'a, crate::SupernetError> {
    let batcher = ImageBatcher::new(data.shape()).with_normalize(normalize.clone())?;
    let mut order: Vec<usize> = (0..data.len()).collect();
    if let Some(seed) = seed {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    let chunks: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    Ok(chunks.into_iter().map(move |chunk| {
        let items = chunk.iter().filter_map(|&i| data.get(i)).collect();
        batcher.batch(items, device)
    }))
}

/// The SGD optimizer of `config` (momentum, Nesterov, weight decay, clipping).
pub(crate) fn sgd<B: AutodiffBackend, M: AutodiffModule<B>>(
    config: &TrainConfig,
) -> impl Optimizer<M, B> {
    sgd_optimizer::<B, M>(config)
}

fn sgd_optimizer<B: AutodiffBackend, M: AutodiffModule<B>>(
    config: &TrainConfig,
) -> OptimizerAdaptor<Sgd<B::InnerBackend>, M, B> {
    let mut momentum = MomentumConfig::new()
        .with_momentum(config.momentum)
        .with_dampening(0.0);
    momentum.nesterov = config.nesterov;
    SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
        .with_gradient_clipping(
            config
                .grad_clip
                .map(|c| GradientClippingConfig::Norm(c as f32)),
        )
        .init::<B, M>()
}

/// Number of correct predictions of `logits` for `targets`.
pub(crate) fn count_correct<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> usize {
    let pred = logits.argmax(1).flatten::<1>(0, 1);
    let c: i64 = pred.equal(targets).int().sum().into_scalar().elem();
    c as usize
}

/// Trains `model` for `config.epochs` epochs over `train` (shuffled by `config.seed` every
/// epoch), with the logits of each step given by `forward(model, images, step)`. Augmentation,
/// drop-path and auxiliary settings of `config` are not used. `observer` is called after every
/// epoch. A non-finite loss stops training with [`TrainError::Diverged`].
///
/// To interleave other work between epochs (ENAS trains its controller after each), drive a
/// [`SupernetTrainer`] epoch by epoch instead.
pub fn train_supernet<B, M>(
    mut model: M,
    train: &ImageDataset,
    normalize: &Normalize,
    config: &TrainConfig,
    device: &Device<B>,
    mut forward: impl FnMut(&M, Tensor<B, 4>, StepInfo) -> Tensor<B, 2>,
    mut observer: impl FnMut(usize, &SupernetReport),
) -> Result<(M, SupernetReport), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let mut trainer = SupernetTrainer::new(config, train.len())?;
    for epoch in 0..config.epochs {
        model = trainer.epoch(model, train, normalize, device, &mut forward)?;
        observer(epoch, trainer.report());
    }
    Ok((model, trainer.into_report()))
}

/// SGD on a supernet one epoch at a time, with the optimizer's state (momentum) and the
/// cosine learning-rate schedule running across epochs as in [`train_supernet`].
pub struct SupernetTrainer<B: AutodiffBackend, M: AutodiffModule<B>> {
    optim: OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>,
    config: TrainConfig,
    epoch: usize,
    step: usize,
    total_steps: usize,
    report: SupernetReport,
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> std::fmt::Debug for SupernetTrainer<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupernetTrainer")
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .field("total_steps", &self.total_steps)
            .finish_non_exhaustive()
    }
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> SupernetTrainer<B, M> {
    /// A trainer for `config.epochs` epochs over a training set of `train_len` images (the
    /// length sets the learning-rate schedule). Fails on an invalid `config` or an empty set.
    pub fn new(config: &TrainConfig, train_len: usize) -> Result<Self, TrainError> {
        config.check()?;
        if train_len == 0 {
            return Err(TrainError::Data("the training set is empty".into()));
        }
        Ok(Self {
            optim: sgd_optimizer::<B, M>(config),
            config: config.clone(),
            epoch: 0,
            step: 0,
            total_steps: train_len.div_ceil(config.batch_size) * config.epochs,
            report: SupernetReport::default(),
        })
    }

    /// The epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// The results of the epochs so far.
    pub fn report(&self) -> &SupernetReport {
        &self.report
    }

    /// The results of all epochs.
    pub fn into_report(self) -> SupernetReport {
        self.report
    }

    /// One epoch over `train` (shuffled by the configuration's seed and the epoch), each step's
    /// logits given by `forward`. A non-finite loss fails with [`TrainError::Diverged`], whose
    /// report holds nothing; the epochs finished before stay in [`Self::report`].
    pub fn epoch(
        &mut self,
        mut model: M,
        train: &ImageDataset,
        normalize: &Normalize,
        device: &Device<B>,
        mut forward: impl FnMut(&M, Tensor<B, 4>, StepInfo) -> Tensor<B, 2>,
    ) -> Result<M, TrainError> {
        let start = Instant::now();
        let loss_fn = CrossEntropyLossConfig::new().init(device);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let seed = crate::network::mix_seed(self.config.seed, self.epoch as u64, 11);
        let epoch_batches = batches(train, normalize, self.config.batch_size, Some(seed), device)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        for (i, batch) in epoch_batches.enumerate() {
            let n = batch.targets.dims()[0];
            let info = StepInfo {
                epoch: self.epoch,
                step: self.step,
                total_steps: self.total_steps,
            };
            let logits = forward(&model, batch.images, info);
            let loss = loss_fn.forward(logits.clone(), batch.targets.clone());
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: self.epoch,
                    step: i,
                    loss: value,
                    report: Box::default(),
                });
            }
            correct += count_correct(logits, batch.targets);
            seen += n;
            loss_sum += value * n as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = self
                .config
                .learning_rate_at(self.step.min(self.total_steps), self.total_steps);
            model = self.optim.step(lr, model, grads);
            self.step += 1;
        }
        self.report.train_loss.push(loss_sum / seen.max(1) as f64);
        self.report
            .train_accuracy
            .push(100.0 * correct as f64 / seen.max(1) as f64);
        self.report
            .epoch_seconds
            .push(start.elapsed().as_secs_f64());
        self.epoch += 1;
        Ok(model)
    }
}

/// Mean cross-entropy loss and accuracy (%) of the path of `arch` over `batches`.
pub fn path_accuracy<B: Backend, N: SinglePath<B>>(
    net: &N,
    arch: &N::Arch,
    batches: &[ImageBatch<B>],
) -> (f64, f64) {
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
    for batch in batches {
        let device = batch.images.device();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let n = batch.targets.dims()[0];
        let logits = net.path_logits(batch.images.clone(), arch);
        let l: f64 = loss_fn
            .forward(logits.clone(), batch.targets.clone())
            .into_scalar()
            .elem();
        loss_sum += l * n as f64;
        correct += count_correct(logits, batch.targets.clone());
        seen += n;
    }
    (
        loss_sum / seen.max(1) as f64,
        100.0 * correct as f64 / seen.max(1) as f64,
    )
}
