//! Training from scratch with proxy settings: the estimator that multi-trial searches call.
//!
//! [`TrainEstimator`] builds the network of an architecture (with a network configuration such
//! as `Nb201NetConfig`, any [`BuildNetwork`], or a closure, so any network of `nas-supernet` or
//! your own works), seeds it, trains it with
//! [`nas_supernet::train::fit`] and reports validation accuracy and loss per epoch, parameters,
//! multiply-accumulates of one inference (`macs`, where the network counts them: every network
//! of `nas-supernet` does), inference latency measured on the device and wall time. The
//! survey's proxy knobs: fewer epochs (the [`Budget`]'s fidelity or
//! [`TrainConfig::epochs`]), a subsample of the training data
//! ([`TrainEstimator::with_data_fraction`]), a lower input resolution
//! ([`TrainEstimator::with_resolution`]), and width and depth multipliers, which belong to the
//! network configuration the build function uses (e.g. `Nb201NetConfig::channels` and
//! `cells_per_stage`, `ChainNetConfig::width_multiplier`).
//!
//! A diverging loss fails that trial ([`EstimateError::Failed`]); the search goes on.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Instant;

use nas_supernet::burn::module::AutodiffModule;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use nas_supernet::burn::tensor::{Device, Tensor, TensorData};
use nas_supernet::data::{ImageDataset, Normalize};
use nas_supernet::driver::{Checkpoint, EpochSolver};
use nas_supernet::network::{Classifier, count_params, seeded};
use nas_supernet::network_config::BuildNetwork;
use nas_supernet::train::{
    FitOptions, Teacher, TrainConfig, TrainError, TrainObserver, TrainReport, Trainer, fit_with,
};

use crate::{Budget, Estimate, EstimateError, Estimator, Metrics};

/// Trains each architecture from scratch on `train` and scores it on `valid`.
pub struct TrainEstimator<B: AutodiffBackend, M, F> {
    build: F,
    train: ImageDataset,
    valid: ImageDataset,
    normalize: Normalize,
    config: TrainConfig,
    device: Device<B>,
    data_fraction: f64,
    progress: bool,
    teacher: Option<Teacher<B::InnerBackend>>,
    _model: PhantomData<fn() -> M>,
}

impl<B, M, F> TrainEstimator<B, M, F>
where
    B: AutodiffBackend,
{
    /// An estimator that builds networks with `build` and trains them with `config` (its
    /// `epochs` are the full budget). Normalization statistics come from `train`.
    ///
    /// `build` is a network configuration of `nas-supernet` (e.g. `Nb201NetConfig`, or
    /// `ChainNetConfig::with_space(space)`), your own configuration wrapped in
    /// [`nas_supernet::network_config::Configured`], or a closure `|arch, device| ...`. Name
    /// the backend once, as `TrainEstimator::<MyBackend, _, _>::new` (Rust cannot infer it
    /// from the device type alone).
    ///
    /// ```no_run
    /// use nas_estimate::train::TrainEstimator;
    /// use nas_estimate::{Budget, Estimator};
    /// use nas_supernet::backend::DefaultBackend;
    /// use nas_supernet::data::ImageDataset;
    /// use nas_supernet::nb201_net::Nb201NetConfig;
    /// use nas_supernet::train::TrainConfig;
    ///
    /// let (train, valid) = ImageDataset::digits().split(0.7, 0)?;
    /// let net = Nb201NetConfig { channels: 8, cells_per_stage: 1, in_channels: 1, num_classes: 10 };
    /// let mut estimator = TrainEstimator::<DefaultBackend, _, _>::new(
    ///     net, train, valid, TrainConfig::default(), Default::default(),
    /// )?;
    /// let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|".parse()?;
    /// let metrics = estimator.estimate(&arch, &Budget::fidelity(2.0))?;
    /// println!("{}", metrics.objective);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<A>(
        build: F,
        train: ImageDataset,
        valid: ImageDataset,
        config: TrainConfig,
        device: Device<B>,
    ) -> Result<Self, EstimateError>
    where
        F: BuildNetwork<A, B, Network = M>,
    {
        config
            .check()
            .map_err(|e| EstimateError::InvalidConfig(e.to_string()))?;
        if train.is_empty() || valid.is_empty() {
            return Err(EstimateError::InvalidConfig(
                "the training and validation sets must not be empty".into(),
            ));
        }
        let normalize = train.channel_stats();
        Ok(Self {
            build,
            train,
            valid,
            normalize,
            config,
            device,
            data_fraction: 1.0,
            progress: false,
            teacher: None,
            _model: PhantomData,
        })
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains on a random `fraction` (in (0, 1]) of the training set, drawn with the training
    /// seed: the survey's data-subset proxy. The validation set stays whole.
    pub fn with_data_fraction(mut self, fraction: f64) -> Result<Self, EstimateError> {
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(EstimateError::InvalidConfig(format!(
                "the data fraction must be in (0, 1], got {fraction}"
            )));
        }
        let n = ((fraction * self.train.len() as f64).round() as usize).max(1);
        self.train = self.train.sample(n, self.config.seed);
        self.data_fraction *= fraction;
        self.normalize = self.train.channel_stats();
        Ok(self)
    }

    /// Trains and evaluates at `height`×`width` (bilinear resize of both sets): the survey's
    /// lower-resolution proxy.
    pub fn with_resolution(mut self, height: usize, width: usize) -> Result<Self, EstimateError> {
        let resize = |d: &ImageDataset| {
            d.resize(height, width)
                .map_err(|e| EstimateError::InvalidConfig(e.to_string()))
        };
        self.train = resize(&self.train)?;
        self.valid = resize(&self.valid)?;
        self.normalize = self.train.channel_stats();
        Ok(self)
    }

    /// Prints one line per epoch (loss, accuracy, time) to standard error and shows a progress
    /// bar of the epochs (when standard error is a terminal), for long runs.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Distils every training from `teacher` (a trained network's logits:
    /// [`nas_supernet::train::teacher`]), with the weight and temperature of
    /// [`TrainConfig::distillation`], which must be set (else the default
    /// [`nas_supernet::train::Distillation`] is used).
    pub fn with_teacher(mut self, teacher: Teacher<B::InnerBackend>) -> Self {
        if self.config.distillation.is_none() {
            self.config.distillation = Some(Default::default());
        }
        self.teacher = Some(teacher);
        self
    }

    /// Refuses a configuration that distils without a teacher.
    fn check_teacher(&self) -> Result<(), EstimateError> {
        if self.config.distillation.is_some() && self.teacher.is_none() {
            return Err(EstimateError::InvalidConfig(
                "the training configuration distils (`distillation` is set) but the estimator \
                 has no teacher: give one with TrainEstimator::with_teacher"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The training set the estimator uses (after the proxy settings).
    pub fn train_set(&self) -> &ImageDataset {
        &self.train
    }
}

/// What [`Estimator::estimate_reporting`] reports each epoch's validation accuracy to: called
/// with the epoch and the accuracy, it returns `true` to stop training.
type StepReport<'r> = &'r mut dyn FnMut(usize, f64) -> bool;

impl<A, B, M, F> Estimator<A> for TrainEstimator<B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
    F: BuildNetwork<A, B, Network = M>,
{
    /// Trains for `budget.fidelity` epochs (rounded, at least 1), or the configured epochs.
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError> {
        self.run(arch, budget, &mut |_, _| false)
            .map(|(e, _)| e.metrics)
    }

    /// As [`Estimator::estimate`], reporting each epoch's validation accuracy; training stops
    /// after the epoch for which `report` returns `true`.
    fn estimate_reporting(
        &mut self,
        arch: &A,
        budget: &Budget,
        report: StepReport<'_>,
    ) -> Result<Estimate, EstimateError> {
        self.run(arch, budget, report).map(|(estimate, _)| estimate)
    }
}

impl<B, M, F> TrainEstimator<B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    /// Trains `arch` as [`Estimator::estimate`] does (`budget` epochs, or the configured ones)
    /// and saves the trained network with its architecture, the network configuration and
    /// the metrics into directory `dir` ([`nas_supernet::persist::save_network`]: `network.json`
    /// and the Burn record `weights.mpk`); load it back with
    /// [`nas_supernet::persist::load_network`] and the same configuration's builder. Returns
    /// the metrics. The configuration must serialize: a network configuration of
    /// `nas-supernet`, or your own in [`nas_supernet::network_config::Configured`] (a closure
    /// cannot be saved).
    pub fn train_and_save<A>(
        &mut self,
        arch: &A,
        budget: &Budget,
        dir: &std::path::Path,
    ) -> Result<Metrics, EstimateError>
    where
        A: serde::Serialize,
        F: BuildNetwork<A, B, Network = M> + serde::Serialize,
    {
        let (estimate, model) = self.run(arch, budget, &mut |_, _| false)?;
        let meta = serde_json::json!({
            "metrics": estimate.metrics,
            "training": {
                "epochs": estimate.metrics.get("epochs"),
                "batch_size": self.config.batch_size,
                "learning_rate": self.config.learning_rate,
                "seed": self.config.seed,
                "train_images": self.train.len(),
                "valid_images": self.valid.len(),
                "image_shape": self.train.shape(),
            },
        });
        nas_supernet::persist::save_network(dir, model, arch, &self.build, meta)?;
        Ok(estimate.metrics)
    }

    fn run<A>(
        &mut self,
        arch: &A,
        budget: &Budget,
        report: StepReport<'_>,
    ) -> Result<(Estimate, M), EstimateError>
    where
        F: BuildNetwork<A, B, Network = M>,
    {
        self.check_teacher()?;
        let mut config = self.config.clone();
        config.epochs = budget_epochs(budget, config.epochs)?;
        if let Some(a) = &mut config.averaging {
            // A shorter budget averages as much of its training as the full one would.
            a.epochs = a.epochs.min(config.epochs);
        }
        let start = Instant::now();
        let device = self.device.clone();
        let build = &mut self.build;
        let model = seeded(&device, config.seed, || build.build_network(arch, &device))?;
        let params = count_params(&model);
        let progress = self.progress;
        let epochs = config.epochs;
        struct Observer<'r> {
            progress: bool,
            epochs: usize,
            report: StepReport<'r>,
        }
        impl TrainObserver for Observer<'_> {
            fn epoch_end(&mut self, epoch: usize, report: &TrainReport) {
                if !self.progress {
                    return;
                }
                let epochs = self.epochs;
                eprintln!(
                    "  epoch {}/{epochs}: train loss {:.4}, valid loss {:.4}, valid accuracy {:.2}% ({:.1}s)",
                    epoch + 1,
                    report.train_loss.last().copied().unwrap_or(f64::NAN),
                    report.valid_loss.last().copied().unwrap_or(f64::NAN),
                    report.valid_accuracy.last().copied().unwrap_or(f64::NAN),
                    report.epoch_seconds.last().copied().unwrap_or(f64::NAN),
                );
            }

            fn should_stop(&mut self, epoch: usize, report: &TrainReport) -> bool {
                let accuracy = report.valid_accuracy.last().copied().unwrap_or(0.0);
                (self.report)(epoch, accuracy)
            }
        }
        let observer = Observer {
            progress,
            epochs,
            report,
        };
        let options = FitOptions {
            progress: progress.then(|| "training".to_string()),
            teacher: self.teacher.clone(),
        };
        let trained = fit_with(
            model,
            (&self.train, &self.valid),
            &self.normalize,
            &config,
            &device,
            observer,
            options,
        );
        let (model, train_report) = match trained {
            Ok(r) => r,
            Err(e) => return Err(failed(e)),
        };
        let train_seconds = start.elapsed().as_secs_f64();
        let stopped_early = train_report.stopped_early;
        let epochs = train_report.valid_accuracy.len();
        let metrics = self.metrics_of(&model, train_report, params, train_seconds, epochs);
        Ok((
            Estimate {
                metrics,
                stopped_early,
            },
            model,
        ))
    }
}

impl<B, M, F> TrainEstimator<B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
{
    /// The metrics of a trained `model` from its training `report`: the objective (final
    /// validation accuracy), losses, parameters, latency, MACs, times and curves;
    /// `epochs_trained` is the epochs this estimate itself trained (fewer than the curve's
    /// when training continued from a checkpoint).
    fn metrics_of(
        &self,
        model: &M,
        report: TrainReport,
        params: usize,
        train_seconds: f64,
        epochs_trained: usize,
    ) -> Metrics {
        let inference = model.valid();
        let latency = latency_ms(&inference, self.train.shape(), &self.device);
        let macs = inference.macs(self.train.shape());
        let accuracy = report.final_accuracy().unwrap_or(0.0);
        let valid_loss = report.valid_loss.last().copied().unwrap_or(f64::NAN);
        let [_, height, _] = self.train.shape();
        let mut metrics = Metrics::new(accuracy)
            .with("valid_accuracy", accuracy)
            .with("valid_loss", valid_loss)
            .with(
                "train_loss",
                report.train_loss.last().copied().unwrap_or(f64::NAN),
            )
            .with("params", params as f64)
            .with("latency_ms", latency)
            .with("train_seconds", train_seconds)
            .with("epochs", report.valid_accuracy.len() as f64)
            .with("epochs_trained", epochs_trained as f64)
            .with("data_fraction", self.data_fraction)
            .with("resolution", height as f64)
            .with_curve("valid_accuracy", report.valid_accuracy)
            .with_curve("valid_loss", report.valid_loss)
            .with_curve("train_loss", report.train_loss);
        if let Some(macs) = macs {
            metrics = metrics.with("macs", macs as f64);
        }
        metrics
    }

    /// Training that continues across budgets, with a store of its own: see
    /// [`ContinuedTraining`].
    pub fn continued(self) -> ContinuedTraining<B, M, F> {
        self.continued_with(&ContinuationStore::default())
    }

    /// Training that continues across budgets, keeping its checkpoints in `store`: the
    /// estimators of parallel workers (`Search::run_parallel`) given clones of one store
    /// continue each other's trainings.
    pub fn continued_with(self, store: &ContinuationStore) -> ContinuedTraining<B, M, F> {
        ContinuedTraining {
            inner: self,
            store: store.clone(),
        }
    }
}

/// The epochs of `budget`: its fidelity rounded (at least 1), or `configured` without one; a
/// fidelity that is not a positive number is an error.
pub(crate) fn budget_epochs(budget: &Budget, configured: usize) -> Result<usize, EstimateError> {
    match budget.fidelity {
        None => Ok(configured),
        Some(f) if f.is_finite() && f > 0.0 => Ok((f.round() as usize).max(1)),
        Some(f) => Err(EstimateError::InvalidConfig(format!(
            "a budget must be a positive number of epochs, got {f}"
        ))),
    }
}

/// A failed training as an estimate's error.
pub(crate) fn failed(e: TrainError) -> EstimateError {
    match e {
        TrainError::Diverged { epoch, loss, .. } => {
            EstimateError::Failed(format!("training diverged at epoch {epoch} (loss {loss})"))
        }
        e => EstimateError::Failed(e.to_string()),
    }
}

/// Multi-fidelity with continuation: a [`TrainEstimator`] whose budgets are prefixes of one
/// training, so a rung of Hyperband or BOHB continues where the previous rung of the same
/// architecture stopped instead of training from scratch.
///
/// Every architecture is trained with the learning-rate schedule of the configured
/// [`TrainConfig::epochs`] (the largest budget, e.g. Hyperband's `max_fidelity`); a budget of
/// `k` epochs trains its first `k` epochs. After each estimate the trainer's state (weights,
/// optimizer, epoch and step) is kept in memory per architecture (keyed by its JSON form); a
/// later estimate of the same architecture with a larger budget loads it and trains only the
/// missing epochs, and one with a smaller or equal budget is answered from the kept curves
/// without training. Because each epoch's data order, augmentation and drop-path masks depend
/// only on the seed, the epoch and the step, a continued training ends exactly where training
/// to the larger budget in one go would: the results are those of training every budget from
/// scratch with that schedule, at a fraction of the epochs.
///
/// This differs from [`TrainEstimator`] with budgets: there a `k`-epoch budget anneals the
/// learning rate over `k` epochs, here over the full schedule, so a low rung is measured
/// mid-schedule. The [`ContinuationStore`] counts the compute saved
/// ([`ContinuationStore::epochs_trained`] against [`ContinuationStore::epochs_requested`], the
/// epochs each estimate's curve holds: what training it from scratch would have cost, a
/// pruned estimate counting up to its stop). Checkpoints are keyed by the architecture and
/// the training settings, so estimators of other settings may share a store. The wrapped
/// estimator's progress lines ([`TrainEstimator::with_progress`]) are not printed.
/// Checkpoints stay in memory (the networks of a proxy search are small);
/// [`ContinuationStore::forget`] drops them.
pub struct ContinuedTraining<B: AutodiffBackend, M, F> {
    inner: TrainEstimator<B, M, F>,
    store: ContinuationStore,
}

/// The checkpoints of [`ContinuedTraining`], shared by its clones (one per parallel worker),
/// and the epochs trained and asked for.
#[derive(Clone, Default)]
pub struct ContinuationStore {
    inner: std::sync::Arc<std::sync::Mutex<StoreInner>>,
}

#[derive(Default)]
struct StoreInner {
    /// Per architecture: the trainer's state after its longest training so far.
    saved: HashMap<String, (usize, Checkpoint, TrainReport)>,
    epochs_trained: usize,
    epochs_requested: usize,
}

impl std::fmt::Debug for ContinuationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuationStore")
            .field("checkpoints", &self.checkpoints())
            .field("epochs_trained", &self.epochs_trained())
            .field("epochs_requested", &self.epochs_requested())
            .finish()
    }
}

impl ContinuationStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        // A worker that panicked left whole entries: the store stays usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Epochs actually trained so far, over all estimates.
    pub fn epochs_trained(&self) -> usize {
        self.lock().epochs_trained
    }

    /// Epochs the estimates asked for (what training every budget from scratch costs).
    pub fn epochs_requested(&self) -> usize {
        self.lock().epochs_requested
    }

    /// Architectures with a kept checkpoint.
    pub fn checkpoints(&self) -> usize {
        self.lock().saved.len()
    }

    /// Drops every kept checkpoint (later estimates train from scratch).
    pub fn forget(&self) {
        self.lock().saved.clear();
    }
}

impl<B: AutodiffBackend, M, F> ContinuedTraining<B, M, F> {
    /// Epochs actually trained so far by the estimators sharing this one's store.
    pub fn epochs_trained(&self) -> usize {
        self.store.epochs_trained()
    }

    /// Epochs asked for by the estimators sharing this one's store.
    pub fn epochs_requested(&self) -> usize {
        self.store.epochs_requested()
    }

    /// Architectures with a kept checkpoint.
    pub fn checkpoints(&self) -> usize {
        self.store.checkpoints()
    }

    /// The store of checkpoints and counts.
    pub fn store(&self) -> &ContinuationStore {
        &self.store
    }

    /// The estimator it wraps.
    pub fn inner(&self) -> &TrainEstimator<B, M, F> {
        &self.inner
    }
}

impl<A, B, M, F> Estimator<A> for ContinuedTraining<B, M, F>
where
    A: serde::Serialize,
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
    F: BuildNetwork<A, B, Network = M>,
{
    /// Trains `arch` to `budget.fidelity` epochs (rounded, at least 1; the configured epochs
    /// without one), continuing from its kept checkpoint.
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError> {
        self.estimate_reporting(arch, budget, &mut |_, _| false)
            .map(|e| e.metrics)
    }

    /// As [`Estimator::estimate`], reporting every epoch's validation accuracy from the first
    /// (epochs loaded from the checkpoint included, so a pruner sees the whole curve).
    fn estimate_reporting(
        &mut self,
        arch: &A,
        budget: &Budget,
        report: StepReport<'_>,
    ) -> Result<Estimate, EstimateError> {
        let total = self.inner.config.epochs;
        let k = budget_epochs(budget, total)?;
        if k > total {
            return Err(EstimateError::InvalidConfig(format!(
                "a budget of {k} epochs exceeds the schedule of TrainConfig::epochs = {total}: \
                 continued training trains every budget as a prefix of that schedule, so set \
                 epochs to the largest budget (Hyperband's and BOHB's max_fidelity)"
            )));
        }
        let arch_key = serde_json::to_string(arch).map_err(|e| {
            EstimateError::InvalidConfig(format!("the architecture does not serialize: {e}"))
        })?;
        let start = Instant::now();
        let inner = &mut self.inner;
        let device = inner.device.clone();
        let seed = inner.config.seed;
        let build = &mut inner.build;
        let model = seeded(&device, seed, || build.build_network(arch, &device))?;
        let params = count_params(&model);
        let inner = &self.inner;
        inner.check_teacher()?;
        let mut trainer = Trainer::new(
            model,
            &inner.train,
            &inner.valid,
            &inner.normalize,
            &inner.config,
            &device,
        )
        .map_err(failed)?;
        if let Some(teacher) = &inner.teacher {
            trainer = trainer.with_teacher(teacher.clone());
        }
        // The training settings are part of the key: estimators of other settings sharing the
        // store never continue each other's trainings.
        let key = format!("{arch_key} {}", trainer.fingerprint());
        let saved = self
            .store
            .lock()
            .saved
            .get(&key)
            .map(|(d, c, r)| (*d, c.clone(), r.clone()));
        if let Some((done, checkpoint, kept)) = saved {
            // Replay the kept curve to the reporter; answer from it when it is long enough.
            let replay = done.min(k);
            for epoch in 0..replay {
                let stop = report(epoch, kept.valid_accuracy[epoch]);
                if stop || epoch + 1 == k {
                    let mut prefix = truncated(&kept, epoch + 1);
                    prefix.stopped_early = stop && epoch + 1 < k;
                    let stopped_early = prefix.stopped_early;
                    // The weights after `epoch + 1` epochs are not kept when fewer than
                    // `done`: the metrics of the network (latency, MACs) do not depend on them.
                    let model = trainer.model().clone();
                    let metrics = inner.metrics_of(&model, prefix, params, 0.0, 0);
                    self.store.lock().epochs_requested += epoch + 1;
                    return Ok(Estimate {
                        metrics,
                        stopped_early,
                    });
                }
            }
            trainer.load(&checkpoint).map_err(failed)?;
        }
        let loaded = trainer.epochs_done();
        let mut stopped = false;
        while trainer.epochs_done() < k {
            let epoch = trainer.epochs_done();
            let e = match trainer.epoch() {
                Ok(e) => e,
                Err(e) => {
                    let mut store = self.store.lock();
                    store.epochs_trained += trainer.epochs_done() - loaded;
                    store.epochs_requested += epoch + 1;
                    return Err(failed(e));
                }
            };
            if report(epoch, e.valid_accuracy) {
                stopped = trainer.epochs_done() < k;
                break;
            }
        }
        let done = trainer.epochs_done();
        let mut checkpoint = Checkpoint::new("continued training (memory)");
        trainer.save(&mut checkpoint).map_err(failed)?;
        let (model, mut train_report) = trainer.into_parts();
        train_report.stopped_early = stopped;
        {
            let mut store = self.store.lock();
            store.epochs_trained += done - loaded;
            store.epochs_requested += done;
            if store.saved.get(&key).is_none_or(|s| s.0 < done) {
                store
                    .saved
                    .insert(key, (done, checkpoint, train_report.clone()));
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let metrics = self
            .inner
            .metrics_of(&model, train_report, params, seconds, done - loaded);
        Ok(Estimate {
            metrics,
            stopped_early: stopped,
        })
    }
}

/// The first `epochs` epochs of `report`.
fn truncated(report: &TrainReport, epochs: usize) -> TrainReport {
    let cut = |v: &Vec<f64>| v[..epochs.min(v.len())].to_vec();
    TrainReport {
        train_loss: cut(&report.train_loss),
        train_accuracy: cut(&report.train_accuracy),
        valid_loss: cut(&report.valid_loss),
        valid_accuracy: cut(&report.valid_accuracy),
        epoch_seconds: cut(&report.epoch_seconds),
        ..report.clone()
    }
}

/// Median wall time (ms) of an inference pass on one image, over 5 runs after a warm-up.
fn latency_ms<B: nas_supernet::burn::tensor::backend::Backend, M: Classifier<B>>(
    model: &M,
    shape: [usize; 3],
    device: &Device<B>,
) -> f64 {
    let [c, h, w] = shape;
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(vec![0.5f32; c * h * w], [1, c, h, w]),
        device,
    );
    let mut times: Vec<f64> = (0..6)
        .map(|_| {
            let t = Instant::now();
            let _ = model.logits(x.clone()).into_data();
            t.elapsed().as_secs_f64() * 1e3
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
