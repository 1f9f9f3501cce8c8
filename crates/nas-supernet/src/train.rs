//! Training a network from scratch: the loop every estimator and example shares.
//!
//! SGD with momentum, weight decay and a cosine learning-rate schedule (per step), gradient
//! clipping by norm, optional auxiliary loss and drop-path, evaluation on a validation set
//! after every epoch. A non-finite loss stops training with [`TrainError::Diverged`], which
//! carries the report of the epochs finished before it.
//!
//! Two of the training tricks of Nekrasov et al. ("Fast Neural Architecture Search of Compact
//! Semantic Segmentation Models via Auxiliary Cells", CVPR 2019) that make short proxy
//! trainings rank architectures more like long ones: Polyak averaging of the weights over the
//! last epochs ([`TrainConfig::averaging`], [`WeightAveraging`]) and knowledge distillation
//! from a teacher network's logits ([`TrainConfig::distillation`], [`Distillation`],
//! [`Trainer::with_teacher`]). (Their third, progressive early stopping, is
//! `nas_strategy::pruner::StageStopping`.)

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

use crate::averaging::WeightAverage;

use crate::data::{Augment, ImageBatch, ImageBatcher, ImageDataset, Normalize, epoch_batches};
use crate::driver::{Checkpoint, Control, Driver, EpochSolver, WithHistory};
use crate::grad::ClipGlobalNorm;
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
    /// Polyak averaging of the weights over the last epochs (`None`: off): validation and
    /// the trained model use the averaged weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaging: Option<WeightAveraging>,
    /// Knowledge distillation from a teacher's logits (`None`: off); the teacher is given to
    /// [`Trainer::with_teacher`] (or `TrainEstimator::with_teacher` in `nas-estimate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distillation: Option<Distillation>,
}

/// Polyak averaging of the weights (Polyak & Juditsky 1992; one of the proxy-training tricks
/// of Nekrasov et al., CVPR 2019): the weights after every step of the last
/// [`WeightAveraging::epochs`] epochs are averaged, and the validation of those epochs and the
/// trained model use the average. Every float tensor of the model is averaged, the batch
/// norms' running statistics included (as timm's `ModelEma` does).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightAveraging {
    /// The last epochs of [`TrainConfig::epochs`] whose steps are averaged (at least 1, at
    /// most the epochs).
    pub epochs: usize,
    /// `0`: the uniform mean of the iterates (Polyak–Ruppert); in `(0, 1)`: an exponential
    /// moving average, `average ← decay · average + (1 − decay) · weights` after each step,
    /// from the first step of the window.
    pub decay: f64,
}

impl WeightAveraging {
    /// The uniform mean of the weights after every step of the last `epochs` epochs.
    pub fn last_epochs(epochs: usize) -> Self {
        Self { epochs, decay: 0.0 }
    }
}

/// Knowledge distillation (Hinton et al. 2015; one of the proxy-training tricks of Nekrasov et
/// al., CVPR 2019): the loss is `(1 − weight) · CE(student, labels) + weight · T² ·
/// KL(softmax(teacher / T) ‖ softmax(student / T))` on every training batch, the teacher's
/// logits computed on the same (augmented) images, without gradient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distillation {
    /// The distillation term's share of the loss, in `(0, 1]`.
    pub weight: f64,
    /// The softmax temperature `T` (> 0; Hinton et al. use 1–20, 4 is common).
    pub temperature: f64,
}

impl Default for Distillation {
    /// Weight 0.5, temperature 4.
    fn default() -> Self {
        Self {
            weight: 0.5,
            temperature: 4.0,
        }
    }
}

/// A teacher for [`Distillation`]: the logits `[batch, classes]` of a batch of images, without
/// gradient. [`teacher`] makes one of a trained network.
pub type Teacher<B> = std::sync::Arc<dyn Fn(Tensor<B, 4>) -> Tensor<B, 2> + Send + Sync>;

/// A [`Teacher`] of a trained network (its inference logits; on a training backend, pass
/// `model.valid()`).
pub fn teacher<B: Backend, M: Classifier<B> + 'static>(model: M) -> Teacher<B> {
    let model = std::sync::Mutex::new(model);
    std::sync::Arc::new(move |images| {
        let model = model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        model.logits(images)
    })
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
            averaging: None,
            distillation: None,
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
        if let Some(a) = self.averaging {
            if !(1..=self.epochs).contains(&a.epochs) {
                return bad(
                    "averaging",
                    &format!(
                        "averages the last epochs: its epochs must be in 1..={}, got {}",
                        self.epochs, a.epochs
                    ),
                );
            }
            if !(0.0..1.0).contains(&a.decay) {
                return bad(
                    "averaging",
                    &format!(
                        "decay must be in [0, 1) (0: the uniform mean), got {}",
                        a.decay
                    ),
                );
            }
        }
        if let Some(d) = self.distillation {
            if !(d.weight > 0.0 && d.weight <= 1.0) {
                return bad(
                    "distillation",
                    &format!("weight must be in (0, 1], got {}", d.weight),
                );
            }
            if !(d.temperature > 0.0 && d.temperature.is_finite()) {
                return bad(
                    "distillation",
                    &format!("temperature must be positive, got {}", d.temperature),
                );
            }
        }
        Ok(())
    }

    /// The first epoch whose steps are averaged ([`TrainConfig::averaging`]), if any.
    pub fn averaging_start(&self) -> Option<usize> {
        self.averaging.map(|a| self.epochs.saturating_sub(a.epochs))
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
    /// A checkpoint could not be written, read or resumed.
    #[error(transparent)]
    Checkpoint(#[from] crate::driver::CheckpointError),
}

impl TrainError {
    /// The error of a driven run, flattened.
    pub fn from_driver(e: crate::driver::DriverError<TrainError>) -> Self {
        e.flatten()
    }
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

/// One epoch of training from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainEpoch {
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (%), on augmented batches.
    pub train_accuracy: f64,
    /// Validation loss.
    pub valid_loss: f64,
    /// Validation accuracy (%).
    pub valid_accuracy: f64,
    /// Wall time (training and validation), in seconds.
    pub seconds: f64,
}

impl TrainReport {
    /// The report of `epochs`, in order.
    pub fn from_epochs(epochs: &[TrainEpoch]) -> Self {
        Self {
            train_loss: epochs.iter().map(|e| e.train_loss).collect(),
            train_accuracy: epochs.iter().map(|e| e.train_accuracy).collect(),
            valid_loss: epochs.iter().map(|e| e.valid_loss).collect(),
            valid_accuracy: epochs.iter().map(|e| e.valid_accuracy).collect(),
            epoch_seconds: epochs.iter().map(|e| e.seconds).collect(),
            stopped_early: false,
        }
    }
}

pub(crate) type TrainOptim<B, M> =
    ClipGlobalNorm<OptimizerAdaptor<Sgd<<B as AutodiffBackend>::InnerBackend>, M, B>>;

/// Training from scratch as an [`EpochSolver`]: one epoch of SGD over `train` then an
/// evaluation on `valid`, checkpointed and resumed by the [`Driver`]. [`fit`] drives it to the
/// end with no checkpoint.
///
/// Each epoch's data order and augmentation come from seeds of the configuration's seed and
/// the epoch, drop-path masks from the step: a resumed training ends with the weights of an
/// uninterrupted one. A diverging epoch leaves the model and optimizer as they were before it.
pub struct Trainer<'d, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    model: M,
    optim: TrainOptim<B, M>,
    train: &'d ImageDataset,
    valid: &'d ImageDataset,
    normalize: Normalize,
    config: TrainConfig,
    device: Device<B>,
    epoch: usize,
    step: usize,
    report: TrainReport,
    /// The Polyak average of the weights, once its window has started.
    average: Option<WeightAverage<B::InnerBackend>>,
    teacher: Option<Teacher<B::InnerBackend>>,
}

impl<B, M> std::fmt::Debug for Trainer<'_, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A batcher for images of `shape` normalized with `normalize`; a normalization that does not
/// fit the images is [`TrainError::Data`].
pub(crate) fn normalized_batcher(
    shape: [usize; 3],
    normalize: &Normalize,
) -> Result<ImageBatcher, TrainError> {
    ImageBatcher::new(shape)
        .with_normalize(normalize.clone())
        .map_err(|e| TrainError::Data(e.to_string()))
}

/// The SGD optimizer of `config` (momentum, Nesterov, weight decay), its gradients clipped to
/// the global norm `config.grad_clip` first (as PyTorch's `clip_grad_norm_`; Burn's own
/// clipping would clip each parameter tensor on its own).
pub(crate) fn sgd_optimizer<B: AutodiffBackend, M: AutodiffModule<B>>(
    config: &TrainConfig,
) -> TrainOptim<B, M> {
    let mut momentum = MomentumConfig::new()
        .with_momentum(config.momentum)
        .with_dampening(0.0);
    momentum.nesterov = config.nesterov;
    let sgd = SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
        .init::<B, M>();
    ClipGlobalNorm::new(sgd, config.grad_clip)
}

impl<'d, B, M> Trainer<'d, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    /// Training of `model` on `train`, evaluated on `valid` after each epoch; `normalize`
    /// (usually `train.channel_stats()`) applies to both sets, augmentation only to training
    /// batches. Fails on an invalid configuration or unusable data.
    pub fn new(
        model: M,
        train: &'d ImageDataset,
        valid: &'d ImageDataset,
        normalize: &Normalize,
        config: &TrainConfig,
        device: &Device<B>,
    ) -> Result<Self, TrainError> {
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
        // Fails early on a normalization that does not fit the images.
        normalized_batcher(train.shape(), normalize)?;
        Ok(Self {
            model,
            optim: sgd_optimizer::<B, M>(config),
            train,
            valid,
            normalize: normalize.clone(),
            config: config.clone(),
            device: device.clone(),
            epoch: 0,
            step: 0,
            report: TrainReport::default(),
            average: None,
            teacher: None,
        })
    }

    /// Distils from `teacher` ([`TrainConfig::distillation`] sets the weight and the
    /// temperature; training fails without it).
    pub fn with_teacher(mut self, teacher: Teacher<B::InnerBackend>) -> Self {
        self.teacher = Some(teacher);
        self
    }

    /// The model as trained so far (the weights of the last step: see
    /// [`Trainer::trained_model`] for the averaged ones).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model to evaluate and keep: the Polyak average of the weights once the
    /// averaging window has started ([`TrainConfig::averaging`]), else the model.
    pub fn trained_model(&self) -> M {
        match &self.average {
            Some(avg) => M::from_inner(avg.apply(self.model.valid())),
            None => self.model.clone(),
        }
    }

    /// The results of the epochs so far.
    pub fn report(&self) -> &TrainReport {
        &self.report
    }

    /// The trained model ([`Trainer::trained_model`]: averaged where averaging is on) and the
    /// report.
    pub fn into_parts(self) -> (M, TrainReport) {
        (self.trained_model(), self.report)
    }

    /// The distillation term `w · T² · KL(teacher ‖ student)` of the loss for `logits` on
    /// `images`.
    fn distillation_loss(
        &self,
        d: Distillation,
        images: Tensor<B::InnerBackend, 4>,
        logits: &Tensor<B, 2>,
    ) -> Result<Tensor<B, 1>, TrainError> {
        let Some(teacher) = &self.teacher else {
            return Err(TrainError::InvalidConfig {
                field: "distillation",
                reason: "needs a teacher: give one to Trainer::with_teacher (or \
                         TrainEstimator::with_teacher)"
                    .into(),
            });
        };
        let t = teacher(images);
        if t.dims() != logits.dims() {
            return Err(TrainError::Data(format!(
                "the teacher's logits are {:?}, the student's {:?}: the teacher must classify \
                 the same images into the same classes",
                t.dims(),
                logits.dims()
            )));
        }
        let temperature = d.temperature;
        let t = Tensor::<B, 2>::from_inner(t)
            .detach()
            .div_scalar(temperature);
        let s = logits.clone().div_scalar(temperature);
        let p_t = softmax(t.clone(), 1);
        let kl = (p_t * (log_softmax(t, 1) - log_softmax(s, 1)))
            .sum_dim(1)
            .mean();
        Ok(kl.mul_scalar(d.weight * temperature * temperature))
    }

    /// Adds the weights after a step to the Polyak average, in its window.
    fn average_step(&mut self) -> Result<(), TrainError> {
        let (Some(start), Some(a)) = (self.config.averaging_start(), self.config.averaging) else {
            return Ok(());
        };
        if self.epoch < start {
            return Ok(());
        }
        let weights = self.model.valid();
        match &mut self.average {
            None => self.average = Some(WeightAverage::start(&weights)),
            Some(avg) => avg.add(&weights, a.decay).map_err(TrainError::Data)?,
        }
        Ok(())
    }

    fn train_epoch(&mut self) -> Result<(f64, f64), TrainError> {
        let config = &self.config.clone();
        let epoch = self.epoch;
        let steps_per_epoch = self.train.len().div_ceil(config.batch_size);
        let total_steps = steps_per_epoch * config.epochs;
        let drop_path = config.drop_path * epoch as f64 / config.epochs as f64;
        let device = self.device.clone();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let batcher = normalized_batcher(self.train.shape(), &self.normalize)?
            .with_augment(config.augment, mix_seed(config.seed, epoch as u64, 31));
        let batches = epoch_batches::<B>(
            self.train,
            batcher,
            config.batch_size,
            Some(mix_seed(config.seed, epoch as u64, 30)),
            &device,
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (i, batch) in batches.enumerate() {
            let n = batch.targets.dims()[0];
            let options = TrainOptions {
                drop_path,
                seed: mix_seed(config.seed, self.step as u64, 2),
            };
            let distil_images = config
                .distillation
                .map(|d| (d, batch.images.clone().inner()));
            let (logits, aux) = self.model.train_logits(batch.images, &options);
            let mut loss = loss_fn.forward(logits.clone(), batch.targets.clone());
            if let Some((d, images)) = distil_images {
                let kd = self.distillation_loss(d, images, &logits)?;
                loss = loss.mul_scalar(1.0 - d.weight) + kd;
            }
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
                    report: Box::new(self.report.clone()),
                });
            }
            correct += count_correct(logits, batch.targets);
            seen += n;
            loss_sum += loss_value * n as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            let lr = config.learning_rate_at(self.step, total_steps);
            self.model = self.optim.step(lr, self.model.clone(), grads);
            self.step += 1;
            self.average_step()?;
        }
        self.train
            .check_reads()
            .map_err(|e| TrainError::Data(e.to_string()))?;
        Ok((
            loss_sum / seen.max(1) as f64,
            100.0 * correct as f64 / seen.max(1) as f64,
        ))
    }

    /// Validation loss and accuracy of the trained model (the average when averaging).
    fn validate(&self) -> Result<(f64, f64), TrainError> {
        let valid_batches = epoch_batches::<B::InnerBackend>(
            self.valid,
            normalized_batcher(self.valid.shape(), &self.normalize)?,
            self.config.batch_size,
            None,
            &self.device,
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        let out = evaluate(
            &self.trained_model().valid(),
            valid_batches,
            &CrossEntropyLossConfig::new().init(&self.device),
        );
        self.valid
            .check_reads()
            .map_err(|e| TrainError::Data(e.to_string()))?;
        Ok(out)
    }
}

impl<B, M> EpochSolver for Trainer<'_, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    type Report = TrainEpoch;
    type Error = TrainError;

    fn kind(&self) -> &'static str {
        "train"
    }

    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "config": self.config,
            "train_images": self.train.len(),
            "valid_images": self.valid.len(),
            "image_shape": self.train.shape(),
        })
    }

    fn total_epochs(&self) -> usize {
        self.config.epochs
    }

    fn epochs_done(&self) -> usize {
        self.epoch
    }

    fn epoch(&mut self) -> Result<TrainEpoch, TrainError> {
        let start = Instant::now();
        // Restored on failure (see `SupernetTraining::epoch`).
        let before = self.model.valid();
        let optim_before = self.optim.to_record();
        let step_before = self.step;
        let average_before = self.average.clone();
        // A failed read of an on-disk image set fails the epoch after training too.
        let outcome = self
            .train_epoch()
            .and_then(|t| self.validate().map(|v| (t, v)));
        let ((train_loss, train_accuracy), (valid_loss, valid_accuracy)) = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.model = M::from_inner(before);
                self.optim = sgd_optimizer::<B, M>(&self.config).load_record(optim_before);
                self.step = step_before;
                self.average = average_before;
                return Err(e);
            }
        };
        let e = TrainEpoch {
            train_loss,
            train_accuracy,
            valid_loss,
            valid_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        };
        self.report.train_loss.push(e.train_loss);
        self.report.train_accuracy.push(e.train_accuracy);
        self.report.valid_loss.push(e.valid_loss);
        self.report.valid_accuracy.push(e.valid_accuracy);
        self.report.epoch_seconds.push(e.seconds);
        self.epoch += 1;
        Ok(e)
    }

    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        c.put_module::<B, M>("model", &self.model)?;
        c.put_optimizer::<B, M, _>("optimizer", &self.optim)?;
        c.put("trainer", &(self.epoch, self.step, &self.report))?;
        if let Some(avg) = &self.average {
            c.put("average_count", &avg.count())?;
            c.put_module::<B, M>("average", &self.trained_model())?;
        }
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint) -> Result<(), TrainError> {
        let (epoch, step, report): (usize, usize, TrainReport) = c.get("trainer")?;
        self.model = c.module::<B, M>("model", self.model.clone(), &self.device)?;
        self.optim = c.optimizer::<B, M, _>(
            "optimizer",
            sgd_optimizer::<B, M>(&self.config),
            &self.device,
        )?;
        (self.epoch, self.step, self.report) = (epoch, step, report);
        self.average = None;
        if self
            .config
            .averaging_start()
            .is_some_and(|start| epoch > start)
        {
            let count: u64 = c.get("average_count")?;
            let average = c.module::<B, M>("average", self.model.clone(), &self.device)?;
            self.average = Some(WeightAverage::restore(&average.valid(), count));
        }
        Ok(())
    }
}

/// Trains `model` on `train` and evaluates it on `valid` after each epoch.
///
/// `normalize` (usually `train.channel_stats()`) applies to both sets; augmentation only to
/// training batches. Returns the trained model and the report. To checkpoint and resume,
/// drive a [`Trainer`] with a [`Driver`] instead.
pub fn fit<B, M>(
    model: M,
    train: &ImageDataset,
    valid: &ImageDataset,
    normalize: &Normalize,
    config: &TrainConfig,
    device: &Device<B>,
    observer: impl TrainObserver,
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    fit_with(
        model,
        (train, valid),
        normalize,
        config,
        device,
        observer,
        FitOptions::default(),
    )
}

/// [`fit`] with a progress bar of the epochs on stderr labelled `label` (drawn only when
/// stderr is a terminal): for long final trainings.
pub fn fit_with_progress<B, M>(
    label: &str,
    model: M,
    (train, valid): (&ImageDataset, &ImageDataset),
    normalize: &Normalize,
    config: &TrainConfig,
    device: &Device<B>,
    observer: impl TrainObserver,
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    let options = FitOptions {
        progress: Some(label.to_string()),
        ..FitOptions::default()
    };
    fit_with(
        model,
        (train, valid),
        normalize,
        config,
        device,
        observer,
        options,
    )
}

/// What [`fit_with`] adds to [`fit`].
pub struct FitOptions<B: Backend> {
    /// A progress bar of the epochs on stderr with this label (drawn only when stderr is a
    /// terminal).
    pub progress: Option<String>,
    /// The teacher of [`TrainConfig::distillation`].
    pub teacher: Option<Teacher<B>>,
}

impl<B: Backend> Default for FitOptions<B> {
    fn default() -> Self {
        Self {
            progress: None,
            teacher: None,
        }
    }
}

impl<B: Backend> Clone for FitOptions<B> {
    fn clone(&self) -> Self {
        Self {
            progress: self.progress.clone(),
            teacher: self.teacher.clone(),
        }
    }
}

/// [`fit`] with [`FitOptions`]: a progress bar, a teacher to distil from.
pub fn fit_with<B, M>(
    model: M,
    (train, valid): (&ImageDataset, &ImageDataset),
    normalize: &Normalize,
    config: &TrainConfig,
    device: &Device<B>,
    mut observer: impl TrainObserver,
    options: FitOptions<B::InnerBackend>,
) -> Result<(M, TrainReport), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    let mut trainer = Trainer::new(model, train, valid, normalize, config, device)?;
    if let Some(teacher) = options.teacher {
        trainer = trainer.with_teacher(teacher);
    }
    let epochs = config.epochs;
    let mut driver = Driver::new(&mut trainer);
    if let Some(label) = &options.progress {
        driver = driver.progress(label);
    }
    let mut driver = driver.observer(WithHistory(
        |epoch: usize, _: &TrainEpoch, history: &[TrainEpoch]| {
            let report = TrainReport::from_epochs(history);
            observer.epoch_end(epoch, &report);
            if epoch + 1 < epochs && observer.should_stop(epoch, &report) {
                Control::Stop
            } else {
                Control::Continue
            }
        },
    ));
    let summary = driver.run().map_err(TrainError::from_driver)?;
    drop(driver);
    let (model, mut report) = trainer.into_parts();
    report.stopped_early = summary.stopped_early;
    Ok((model, report))
}

/// Number of correct predictions of `logits` for `targets`.
pub(crate) fn count_correct<B: Backend>(
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
