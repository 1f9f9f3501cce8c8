//! Weight sharing: scoring architectures with weights inherited from a trained supernet.
//!
//! [`WeightSharingEstimator`] holds a trained supernet (any
//! [`SinglePath`] supernet of `nas-supernet`: SPOS, the DARTS-space one of ENAS,
//! ProxylessNAS, NAS-Bench-201 one-shot, or your own). To estimate an architecture it
//! recomputes the batch-norm statistics of the architecture's path on a fixed set of training
//! batches ([`recalibrate_bn`]), then measures the path's accuracy and loss on the validation
//! set in inference mode. Nothing is trained, so an estimate takes seconds instead of a
//! training run; any multi-trial strategy uses it through the search loop as it would the
//! train-from-scratch estimator (SPOS's evolutionary search is exactly that).
//!
//! The recalibration batches are drawn once (shuffled by the configured seed), so the same
//! architecture always gets the same score. The [`Budget`] is ignored.
//!
//! Metrics: `objective` and `valid_accuracy` (%), `valid_loss`, `macs` (of the path, equal to
//! the stand-alone network's), `seconds`.

use std::time::Instant;

use nas_supernet::burn::module::AutodiffModule;
use nas_supernet::burn::nn::loss::CrossEntropyLossConfig;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use nas_supernet::burn::tensor::{Device, ElementConversion, Tensor};
use nas_supernet::data::{ImageBatch, ImageDataset, Normalize};
use nas_supernet::oneshot::SinglePath;
use nas_supernet::oneshot::bn_recalibration::recalibrate_bn;
use nas_supernet::oneshot::train::batches;
use serde::{Deserialize, Serialize};

use crate::{Budget, EstimateError, Estimator, Metrics};

/// Settings of [`WeightSharingEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightSharingConfig {
    /// Training batches whose statistics the batch norms of each path are set to (SPOS: 20
    /// batches of its training set). 0 keeps the supernet's running statistics.
    pub recalibration_batches: usize,
    /// Batch size of recalibration and evaluation.
    pub batch_size: usize,
    /// Seed of the choice of recalibration batches.
    pub seed: u64,
}

impl Default for WeightSharingConfig {
    /// 20 batches of 64 images.
    fn default() -> Self {
        Self {
            recalibration_batches: 20,
            batch_size: 64,
            seed: 0,
        }
    }
}

/// Scores architectures by the validation accuracy of their path in a trained supernet, with
/// batch norm recalibrated (see the [module docs](self)).
pub struct WeightSharingEstimator<B: AutodiffBackend, N> {
    supernet: N,
    recalibration: Vec<Tensor<B, 4>>,
    valid: Vec<ImageBatch<B::InnerBackend>>,
    shape: [usize; 3],
}

impl<B: AutodiffBackend, N> WeightSharingEstimator<B, N> {
    /// An estimator over `supernet`: recalibration batches come from `train`, scores from
    /// `valid`, both normalized with `normalize` (the statistics the supernet was trained with).
    pub fn new(
        supernet: N,
        train: &ImageDataset,
        valid: &ImageDataset,
        normalize: &Normalize,
        config: WeightSharingConfig,
        device: &Device<B>,
    ) -> Result<Self, EstimateError> {
        if config.batch_size == 0 {
            return Err(EstimateError::InvalidConfig(
                "the batch size must be at least 1".into(),
            ));
        }
        if valid.is_empty() || (train.is_empty() && config.recalibration_batches > 0) {
            return Err(EstimateError::InvalidConfig(
                "the recalibration and validation sets must not be empty".into(),
            ));
        }
        if train.shape() != valid.shape() && config.recalibration_batches > 0 {
            return Err(EstimateError::InvalidConfig(format!(
                "training images are {:?} but validation images are {:?}",
                train.shape(),
                valid.shape()
            )));
        }
        let recalibration = batches::<B>(
            train,
            normalize,
            config.batch_size,
            Some(config.seed),
            device,
        )?
        .take(config.recalibration_batches)
        .map(|b| b.images)
        .collect();
        let valid_batches =
            batches::<B::InnerBackend>(valid, normalize, config.batch_size, None, device)?
                .collect();
        Ok(Self {
            supernet,
            recalibration,
            valid: valid_batches,
            shape: valid.shape(),
        })
    }

    /// The supernet.
    pub fn supernet(&self) -> &N {
        &self.supernet
    }

    /// Gives the supernet back.
    pub fn into_supernet(self) -> N {
        self.supernet
    }
}

impl<B, N> Estimator<N::Arch> for WeightSharingEstimator<B, N>
where
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B>,
    N::InnerModule: SinglePath<B::InnerBackend, Arch = N::Arch>,
{
    fn estimate(&mut self, arch: &N::Arch, _budget: &Budget) -> Result<Metrics, EstimateError> {
        let start = Instant::now();
        self.supernet.check_arch(arch)?;
        recalibrate_bn(&self.supernet, &self.recalibration, |net, x| {
            let _ = net.path_logits(x, arch);
        });
        let inner = self.supernet.valid();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for batch in &self.valid {
            let n = batch.targets.dims()[0];
            let logits = inner.path_logits(batch.images.clone(), arch);
            let loss_fn = CrossEntropyLossConfig::new().init(&batch.images.device());
            let l: f64 = loss_fn
                .forward(logits.clone(), batch.targets.clone())
                .into_scalar()
                .elem();
            let pred = logits.argmax(1).flatten::<1>(0, 1);
            let c: i64 = pred
                .equal(batch.targets.clone())
                .int()
                .sum()
                .into_scalar()
                .elem();
            loss_sum += l * n as f64;
            correct += c as usize;
            seen += n;
        }
        let accuracy = 100.0 * correct as f64 / seen.max(1) as f64;
        let loss = loss_sum / seen.max(1) as f64;
        if !loss.is_finite() {
            return Err(EstimateError::Failed(format!(
                "the path's validation loss is {loss}"
            )));
        }
        Ok(Metrics::new(accuracy)
            .with("valid_accuracy", accuracy)
            .with("valid_loss", loss)
            .with("macs", self.supernet.path_macs(arch, self.shape) as f64)
            .with("seconds", start.elapsed().as_secs_f64()))
    }
}
