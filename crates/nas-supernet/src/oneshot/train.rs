//! Training a supernet: the loop of SPOS, One-Shot and (with a controller) ENAS.
//!
//! [`train_supernet`] runs SGD over the training set with the settings of
//! [`crate::train::TrainConfig`] (momentum, weight decay, cosine learning rate, gradient
//! clipping); every step asks `forward` for the logits of that step's path, so the caller
//! decides how paths are chosen. Parameters off the path get no gradient and are left alone by
//! the optimizer that step. [`path_accuracy`] scores one architecture's path on batches.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsParams, Optimizer, Sgd};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

use super::SinglePath;
use crate::data::{ImageBatch, ImageBatcher, ImageDataset, Normalize};
use crate::driver::{Checkpoint, CheckpointError, Control, Driver, EpochSolver, WithHistory};
pub(crate) use crate::train::count_correct;
use crate::train::{TrainConfig, TrainError, sgd_optimizer};

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

/// One epoch of supernet training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SupernetEpoch {
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (%) of the paths trained.
    pub train_accuracy: f64,
    /// Wall time, in seconds.
    pub seconds: f64,
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

impl SupernetReport {
    /// The report of `epochs`, in order.
    pub fn from_epochs(epochs: &[SupernetEpoch]) -> Self {
        Self {
            train_loss: epochs.iter().map(|e| e.train_loss).collect(),
            train_accuracy: epochs.iter().map(|e| e.train_accuracy).collect(),
            epoch_seconds: epochs.iter().map(|e| e.seconds).collect(),
        }
    }

    /// The report's epochs.
    pub fn epochs(&self) -> Vec<SupernetEpoch> {
        (0..self.train_loss.len())
            .map(|i| SupernetEpoch {
                train_loss: self.train_loss[i],
                train_accuracy: self.train_accuracy.get(i).copied().unwrap_or(f64::NAN),
                seconds: self.epoch_seconds.get(i).copied().unwrap_or(f64::NAN),
            })
            .collect()
    }
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
    crate::data::epoch_batches(data, batcher, batch_size, seed, device)
}

/// Trains `model` for `config.epochs` epochs over `train` (shuffled by `config.seed` every
/// epoch), with the logits of each step given by `forward(model, images, step)`. Augmentation,
/// drop-path and auxiliary settings of `config` are not used. `observer` is called after every
/// epoch. A non-finite loss stops training with [`TrainError::Diverged`].
///
/// To interleave other work between epochs (ENAS trains its controller after each), drive a
/// [`SupernetTrainer`] epoch by epoch instead.
pub fn train_supernet<B, M>(
    model: M,
    train: &ImageDataset,
    normalize: &Normalize,
    config: &TrainConfig,
    device: &Device<B>,
    forward: impl FnMut(&M, Tensor<B, 4>, StepInfo) -> Tensor<B, 2>,
    mut observer: impl FnMut(usize, &SupernetReport),
) -> Result<(M, SupernetReport), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let mut training = SupernetTraining::new(model, train, normalize, config, device, forward)?;
    let mut driver = Driver::new(&mut training).observer(WithHistory(
        |epoch: usize, _: &SupernetEpoch, history: &[SupernetEpoch]| {
            observer(epoch, &SupernetReport::from_epochs(history));
            Control::Continue
        },
    ));
    driver.run().map_err(TrainError::from_driver)?;
    drop(driver);
    Ok(training.into_parts())
}

/// SGD on a supernet one epoch at a time, with the optimizer's state (momentum) and the
/// cosine learning-rate schedule running across epochs as in [`train_supernet`].
pub struct SupernetTrainer<B: AutodiffBackend, M: AutodiffModule<B>> {
    optim: crate::grad::ClipGlobalNorm<OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>>,
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

    /// Writes the trainer's state (optimizer moments, epoch and step counters, report) into
    /// `checkpoint`, its entries named with `prefix`.
    pub fn save(&self, checkpoint: &mut Checkpoint, prefix: &str) -> Result<(), CheckpointError> {
        checkpoint.put_optimizer::<B, M, _>(&format!("{prefix}optimizer"), &self.optim)?;
        checkpoint.put(
            &format!("{prefix}trainer"),
            &(self.epoch, self.step, self.total_steps, &self.report),
        )
    }

    /// Restores the state written by [`SupernetTrainer::save`].
    pub fn load(
        &mut self,
        checkpoint: &Checkpoint,
        prefix: &str,
        device: &Device<B>,
    ) -> Result<(), CheckpointError> {
        let (epoch, step, total_steps, report): (usize, usize, usize, SupernetReport) =
            checkpoint.get(&format!("{prefix}trainer"))?;
        let optim = sgd_optimizer::<B, M>(&self.config);
        self.optim =
            checkpoint.optimizer::<B, M, _>(&format!("{prefix}optimizer"), optim, device)?;
        self.epoch = epoch;
        self.step = step;
        self.total_steps = total_steps;
        self.report = report;
        Ok(())
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

/// Supernet training as an [`EpochSolver`]: [`SupernetTrainer`] with its model, data and
/// path choice, so that the [`Driver`] can checkpoint and resume it.
///
/// For an interrupted run to resume exactly, `forward` must choose each step's path from the
/// [`StepInfo`] alone (e.g. [`super::UniformSampler::sample_at`] with `info.step`), not from
/// a generator whose state the checkpoint does not hold. A diverging epoch leaves the model
/// and the optimizer as they were before it.
pub struct SupernetTraining<'d, B: AutodiffBackend, M: AutodiffModule<B>, F> {
    trainer: SupernetTrainer<B, M>,
    model: M,
    train: &'d ImageDataset,
    normalize: Normalize,
    config: TrainConfig,
    device: Device<B>,
    forward: F,
}

impl<B: AutodiffBackend, M: AutodiffModule<B>, F> std::fmt::Debug
    for SupernetTraining<'_, B, M, F>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupernetTraining")
            .field("trainer", &self.trainer)
            .field("train_len", &self.train.len())
            .finish_non_exhaustive()
    }
}

impl<'d, B, M, F> SupernetTraining<'d, B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    F: FnMut(&M, Tensor<B, 4>, StepInfo) -> Tensor<B, 2>,
{
    /// Training of `model` for `config.epochs` epochs over `train`, with each step's logits
    /// given by `forward`.
    pub fn new(
        model: M,
        train: &'d ImageDataset,
        normalize: &Normalize,
        config: &TrainConfig,
        device: &Device<B>,
        forward: F,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            trainer: SupernetTrainer::new(config, train.len())?,
            model,
            train,
            normalize: normalize.clone(),
            config: config.clone(),
            device: device.clone(),
            forward,
        })
    }

    /// The supernet.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The results of the epochs so far.
    pub fn report(&self) -> &SupernetReport {
        self.trainer.report()
    }

    /// The supernet and the report.
    pub fn into_parts(self) -> (M, SupernetReport) {
        (self.model, self.trainer.into_report())
    }
}

impl<B, M, F> EpochSolver for SupernetTraining<'_, B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    F: FnMut(&M, Tensor<B, 4>, StepInfo) -> Tensor<B, 2>,
{
    type Report = SupernetEpoch;
    type Error = TrainError;

    fn kind(&self) -> &'static str {
        "supernet-training"
    }

    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "config": self.config,
            "train_images": self.train.len(),
            "image_shape": self.train.shape(),
        })
    }

    fn total_epochs(&self) -> usize {
        self.config.epochs
    }

    fn epochs_done(&self) -> usize {
        self.trainer.epochs_done()
    }

    fn epoch(&mut self) -> Result<SupernetEpoch, TrainError> {
        // Restored on failure: the inference copy holds its own batch-norm statistics (clones
        // of a module share them), the optimizer record its moments.
        let before = self.model.valid();
        let optim_before = self.trainer.optim.to_record();
        let step_before = self.trainer.step;
        let result = self.trainer.epoch(
            self.model.clone(),
            self.train,
            &self.normalize,
            &self.device,
            &mut self.forward,
        );
        match result {
            Ok(model) => {
                self.model = model;
                let r = self.trainer.report();
                let last = |v: &Vec<f64>| v.last().copied().unwrap_or(f64::NAN);
                Ok(SupernetEpoch {
                    train_loss: last(&r.train_loss),
                    train_accuracy: last(&r.train_accuracy),
                    seconds: last(&r.epoch_seconds),
                })
            }
            Err(e) => {
                self.model = M::from_inner(before);
                self.trainer.optim = sgd_optimizer::<B, M>(&self.config).load_record(optim_before);
                self.trainer.step = step_before;
                Err(e)
            }
        }
    }

    fn save(&self, checkpoint: &mut Checkpoint) -> Result<(), TrainError> {
        checkpoint.put_module::<B, M>("model", &self.model)?;
        self.trainer.save(checkpoint, "")?;
        Ok(())
    }

    fn load(&mut self, checkpoint: &Checkpoint) -> Result<(), TrainError> {
        self.model = checkpoint.module::<B, M>("model", self.model.clone(), &self.device)?;
        self.trainer.load(checkpoint, "", &self.device)?;
        Ok(())
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
