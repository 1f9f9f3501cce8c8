//! Training a network from scratch: the loop every estimator and example shares.
//!
//! SGD with momentum, weight decay and a cosine learning-rate schedule (per step), gradient
//! clipping by norm, optional auxiliary loss and drop-path, evaluation on a validation set
//! after every epoch. A non-finite loss stops training with [`TrainError::Diverged`], which
//! carries the report of the epochs finished before it.

use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{Augment, ImageBatch, ImageBatcher, ImageDataset, Normalize};
use crate::network::{Classifier, TrainOptions, mix_seed};

/// Hyperparameters of training from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Initial learning rate (cosine-annealed to `min_learning_rate` over all steps).
    pub learning_rate: f64,
    /// Final learning rate.
    pub min_learning_rate: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Gradient clipping by global norm (`None`: off).
    pub grad_clip: Option<f64>,
    /// Weight of the auxiliary head's loss, where the network has one.
    pub auxiliary_weight: f64,
    /// Drop-path probability, increased linearly from 0 over the epochs (as DARTS does).
    pub drop_path: f64,
    /// Augmentation of training images.
    pub augment: Augment,
    /// Seed of parameter initialization, shuffling and augmentation.
    pub seed: u64,
}

impl Default for TrainConfig {
    /// NAS-Bench-201's recipe (SGD, lr 0.1 cosine to 0, Nesterov momentum 0.9, weight decay
    /// 5e-4, batch 256) with 10 epochs and no augmentation: a proxy budget for search.
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 256,
            learning_rate: 0.1,
            min_learning_rate: 0.0,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            grad_clip: Some(5.0),
            auxiliary_weight: 0.4,
            drop_path: 0.0,
            augment: Augment::default(),
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks the values; the error names the field.
    pub fn check(&self) -> Result<(), TrainError> {
        let bad = |field: &'static str, reason: &str| {
            Err(TrainError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be positive and finite");
        }
        if !(0.0..=self.learning_rate).contains(&self.min_learning_rate) {
            return bad("min_learning_rate", "must be in [0, learning_rate]");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", "must be in [0, 1)");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", "must be ≥ 0");
        }
        if self.grad_clip.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return bad("grad_clip", "must be positive");
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return bad("drop_path", "must be in [0, 1)");
        }
        if self.auxiliary_weight < 0.0 {
            return bad("auxiliary_weight", "must be ≥ 0");
        }
        Ok(())
    }

    /// The learning rate at `step` of `total` (cosine annealing).
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let t = step as f64 / total.max(1) as f64;
        self.min_learning_rate
            + 0.5
                * (self.learning_rate - self.min_learning_rate)
                * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// Per-epoch results of a training run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Training accuracy (%) per epoch (on augmented batches).
    pub train_accuracy: Vec<f64>,
    /// Validation loss per epoch.
    pub valid_loss: Vec<f64>,
    /// Validation accuracy (%) per epoch.
    pub valid_accuracy: Vec<f64>,
    /// Wall time of each epoch (training and validation), in seconds.
    pub epoch_seconds: Vec<f64>,
    /// True when the observer stopped training before the configured epochs.
    #[serde(default)]
    pub stopped_early: bool,
}

impl TrainReport {
    /// The last epoch's validation accuracy.
    pub fn final_accuracy(&self) -> Option<f64> {
        self.valid_accuracy.last().copied()
    }
}

/// Errors of training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A training hyperparameter is invalid.
    #[error("invalid training configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is accepted.
        reason: String,
    },
    /// The dataset is empty or does not fit the network.
    #[error("unusable data: {0}")]
    Data(String),
    /// The loss became NaN or infinite. `report` holds the epochs finished before; lower the
    /// learning rate or enable gradient clipping.
    #[error(
        "training diverged at epoch {epoch}, step {step}: loss {loss}; lower the learning rate or clip gradients"
    )]
    Diverged {
        /// Epoch (0-based) where it happened.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The non-finite loss value.
        loss: f64,
        /// The finished epochs.
        report: Box<TrainReport>,
    },
}

/// Called after every epoch with the epoch index and the report so far.
pub trait TrainObserver {
    /// An epoch finished.
    fn epoch_end(&mut self, epoch: usize, report: &TrainReport);

    /// Asked after [`TrainObserver::epoch_end`]: `true` stops training now (e.g. a pruner
    /// judged the run unpromising); [`fit`] then returns the model and the report so far with
    /// [`TrainReport::stopped_early`] set. The default never stops.
    fn should_stop(&mut self, epoch: usize, report: &TrainReport) -> bool {
        let _ = (epoch, report);
        false
    }
}

impl<F: FnMut(usize, &TrainReport)> TrainObserver for F {
    fn epoch_end(&mut self, epoch: usize, report: &TrainReport) {
        self(epoch, report)
    }
}

/// Trains `model` on `train` and evaluates it on `valid` after each epoch.
///
/// `normalize` (usually `train.channel_stats()`) applies to both sets; augmentation only to
/// training batches. Returns the trained model and the report.
pub fn fit<B, M>(
    mut model: M,
    train: &ImageDataset,
    valid: &ImageDataset,
    normalize: &Normalize,
    config: &TrainConfig,
    device: &Device<B>,
    mut observer: impl TrainObserver,
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    config.check()?;
    if train.is_empty() || valid.is_empty() {
        return Err(TrainError::Data(
            "the training and validation sets must not be empty".into(),
        ));
    }
    if train.shape() != valid.shape() {
        return Err(TrainError::Data(format!(
            "training images are {:?} but validation images are {:?}",
            train.shape(),
            valid.shape()
        )));
    }
    let batcher = ImageBatcher::new(train.shape())
        .with_normalize(normalize.clone())
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let train_batcher = ImageBatcher::new(train.shape())
        .with_normalize(normalize.clone())
        .map_err(|e| TrainError::Data(e.to_string()))?
        .with_augment(config.augment, config.seed);
    let train_loader = DataLoaderBuilder::<B, _, ImageBatch<B>>::new(train_batcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .num_workers(1)
        .set_device(device.clone())
        .build(train.clone());
    let valid_loader =
        DataLoaderBuilder::<B::InnerBackend, _, ImageBatch<B::InnerBackend>>::new(batcher)
            .batch_size(config.batch_size)
            .num_workers(1)
            .set_device(device.clone())
            .build(valid.clone());

    let mut momentum = MomentumConfig::new()
        .with_momentum(config.momentum)
        .with_dampening(0.0);
    momentum.nesterov = config.nesterov;
    let mut optim = SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
        .with_gradient_clipping(
            config
                .grad_clip
                .map(|c| GradientClippingConfig::Norm(c as f32)),
        )
        .init::<B, M>();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let steps_per_epoch = train.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let mut report = TrainReport::default();
    let mut step = 0;
    for epoch in 0..config.epochs {
        let start = Instant::now();
        let drop_path = config.drop_path * epoch as f64 / config.epochs as f64;
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (i, batch) in train_loader.iter().enumerate() {
            let n = batch.targets.dims()[0];
            let options = TrainOptions {
                drop_path,
                seed: mix_seed(config.seed, step as u64, 2),
            };
            let (logits, aux) = model.train_logits(batch.images, &options);
            let mut loss = loss_fn.forward(logits.clone(), batch.targets.clone());
            if let Some(aux) = aux
                && config.auxiliary_weight > 0.0
            {
                loss = loss
                    + loss_fn
                        .forward(aux, batch.targets.clone())
                        .mul_scalar(config.auxiliary_weight);
            }
            let loss_value: f64 = loss.clone().into_scalar().elem();
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step: i,
                    loss: loss_value,
                    report: Box::new(report),
                });
            }
            correct += count_correct(logits, batch.targets);
            seen += n;
            loss_sum += loss_value * n as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.learning_rate_at(step, total_steps), model, grads);
            step += 1;
        }
        report.train_loss.push(loss_sum / seen.max(1) as f64);
        report
            .train_accuracy
            .push(100.0 * correct as f64 / seen.max(1) as f64);
        let (vl, va) = evaluate(
            &model.valid(),
            valid_loader.iter(),
            &CrossEntropyLossConfig::new().init(device),
        );
        report.valid_loss.push(vl);
        report.valid_accuracy.push(va);
        report.epoch_seconds.push(start.elapsed().as_secs_f64());
        observer.epoch_end(epoch, &report);
        if epoch + 1 < config.epochs && observer.should_stop(epoch, &report) {
            report.stopped_early = true;
            break;
        }
    }
    Ok((model, report))
}

fn count_correct<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, burn::tensor::Int>,
) -> usize {
    let pred = logits.argmax(1).flatten::<1>(0, 1);
    let c: i64 = pred.equal(targets).int().sum().into_scalar().elem();
    c as usize
}

/// Mean loss and accuracy (%) of `model` over `batches`.
pub fn evaluate<B: Backend, M: Classifier<B>>(
    model: &M,
    batches: impl Iterator<Item = ImageBatch<B>>,
    loss_fn: &burn::nn::loss::CrossEntropyLoss<B>,
) -> (f64, f64) {
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
    for batch in batches {
        let n = batch.targets.dims()[0];
        let logits = model.logits(batch.images);
        let l: f64 = loss_fn
            .forward(logits.clone(), batch.targets.clone())
            .into_scalar()
            .elem();
        loss_sum += l * n as f64;
        correct += count_correct(logits, batch.targets);
        seen += n;
    }
    (
        loss_sum / seen.max(1) as f64,
        100.0 * correct as f64 / seen.max(1) as f64,
    )
}
