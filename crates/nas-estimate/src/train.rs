//! Training from scratch with proxy settings: the estimator that multi-trial searches call.
//!
//! [`TrainEstimator`] builds the network of an architecture (with a function you give, so any
//! network of `nas-supernet` or your own works), seeds it, trains it with
//! [`nas_supernet::train::fit`] and reports validation accuracy and loss per epoch, parameters,
//! inference latency measured on the device and wall time. The survey's proxy knobs are the
//! arguments: fewer epochs (the [`Budget`]'s fidelity), a subsample of the data
//! ([`nas_supernet::data::ImageDataset::sample`]), lower resolution or width and depth (the
//! network configuration the build function uses).
//!
//! A diverging loss fails that trial ([`EstimateError::Failed`]); the search goes on.

use std::marker::PhantomData;
use std::time::Instant;

use nas_supernet::SupernetError;
use nas_supernet::burn::module::AutodiffModule;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use nas_supernet::burn::tensor::{Device, Tensor, TensorData};
use nas_supernet::data::{ImageDataset, Normalize};
use nas_supernet::network::{Classifier, count_params, seeded};
use nas_supernet::train::{TrainConfig, TrainError, fit};

use crate::{Budget, EstimateError, Estimator, Metrics};

/// Trains each architecture from scratch on `train` and scores it on `valid`.
pub struct TrainEstimator<B: AutodiffBackend, M, F> {
    build: F,
    train: ImageDataset,
    valid: ImageDataset,
    normalize: Normalize,
    config: TrainConfig,
    device: Device<B>,
    _model: PhantomData<fn() -> M>,
}

impl<B, M, F> TrainEstimator<B, M, F>
where
    B: AutodiffBackend,
{
    /// An estimator that builds networks with `build(arch, device)` and trains them with
    /// `config` (its `epochs` are the full budget). Normalization statistics come from `train`.
    pub fn new<A>(
        build: F,
        train: ImageDataset,
        valid: ImageDataset,
        config: TrainConfig,
        device: Device<B>,
    ) -> Result<Self, EstimateError>
    where
        F: FnMut(&A, &Device<B>) -> Result<M, SupernetError>,
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
            _model: PhantomData,
        })
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
}

impl<A, B, M, F> Estimator<A> for TrainEstimator<B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    M::InnerModule: Classifier<B::InnerBackend>,
    F: FnMut(&A, &Device<B>) -> Result<M, SupernetError>,
{
    /// Trains for `budget.fidelity` epochs (rounded, at least 1), or the configured epochs.
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError> {
        let mut config = self.config.clone();
        if let Some(f) = budget.fidelity {
            if !(f.is_finite() && f > 0.0) {
                return Err(EstimateError::InvalidConfig(format!(
                    "a budget must be a positive number of epochs, got {f}"
                )));
            }
            config.epochs = (f.round() as usize).max(1);
        }
        let start = Instant::now();
        let device = self.device.clone();
        let build = &mut self.build;
        let model = seeded(&device, config.seed, || build(arch, &device))?;
        let params = count_params(&model);
        let (model, report) = match fit(
            model,
            &self.train,
            &self.valid,
            &self.normalize,
            &config,
            &device,
            |_, _: &_| {},
        ) {
            Ok(r) => r,
            Err(TrainError::Diverged { epoch, loss, .. }) => {
                return Err(EstimateError::Failed(format!(
                    "training diverged at epoch {epoch} (loss {loss})"
                )));
            }
            Err(e) => return Err(EstimateError::Failed(e.to_string())),
        };
        let train_seconds = start.elapsed().as_secs_f64();
        let latency = latency_ms(&model.valid(), self.train.shape(), &device);
        let accuracy = report.final_accuracy().unwrap_or(0.0);
        let valid_loss = report.valid_loss.last().copied().unwrap_or(f64::NAN);
        Ok(Metrics::new(accuracy)
            .with("valid_accuracy", accuracy)
            .with("valid_loss", valid_loss)
            .with(
                "train_loss",
                report.train_loss.last().copied().unwrap_or(f64::NAN),
            )
            .with("params", params as f64)
            .with("latency_ms", latency)
            .with("train_seconds", train_seconds)
            .with("epochs", config.epochs as f64)
            .with_curve("valid_accuracy", report.valid_accuracy)
            .with_curve("valid_loss", report.valid_loss)
            .with_curve("train_loss", report.train_loss))
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
