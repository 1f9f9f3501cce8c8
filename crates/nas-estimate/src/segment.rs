//! Training from scratch on a dense-prediction task: the estimator of DPC and NAS-FPN
//! searches.
//!
//! [`SegmentationEstimator`] builds the network of an architecture (any [`BuildNetwork`] whose
//! network is a [`Segmenter`], such as `DpcNetConfig` or `FpnNetConfig`), seeds it, trains it
//! with [`fit_segmentation`] and reports the validation **mean intersection over union**
//! (mIoU, %) as the objective, with pixel accuracy, losses, parameters and wall time, and the
//! per-epoch curves.
//!
//! ```no_run
//! use nas_estimate::segment::SegmentationEstimator;
//! use nas_estimate::{Budget, Estimator};
//! use nas_space::TextFormat;
//! use nas_space::dpc::DpcSpace;
//! use nas_supernet::backend::DefaultBackend;
//! use nas_supernet::data::ImageDataset;
//! use nas_supernet::multi_net::DpcNetConfig;
//! use nas_supernet::segment::{SceneConfig, SegmentationDataset};
//! use nas_supernet::train::TrainConfig;
//!
//! let (a, b) = ImageDataset::digits().split(0.7, 0)?;
//! let train = SegmentationDataset::scenes(&a, &SceneConfig::default())?;
//! let valid = SegmentationDataset::scenes(&b, &SceneConfig { images: 300, seed: 1, ..Default::default() })?;
//! let net = DpcNetConfig { in_channels: 1, num_classes: 11, backbone_channels: 16,
//!     backbone_layers: 3, backbone_strides: 2, branch_channels: 16 };
//! let mut estimator = SegmentationEstimator::<DefaultBackend, _, _>::new(
//!     net, train, valid, TrainConfig::default(), Default::default(),
//! )?;
//! let space = DpcSpace::with_branches(2)?;
//! let cell = space.parse("sep_atrous_3x3_r3x3<0 spp_2x2<1")?;
//! let metrics = estimator.estimate(&cell, &Budget::fidelity(3.0))?;
//! println!("mIoU {:.1}%", metrics.objective);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::marker::PhantomData;
use std::time::Instant;

use nas_supernet::burn::module::AutodiffModule;
use nas_supernet::burn::tensor::Device;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use nas_supernet::network::{count_params, seeded};
use nas_supernet::network_config::BuildNetwork;
use nas_supernet::segment::{
    SegmentationDataset, Segmenter, check_segmentation_config, check_segmentation_sets,
    fit_segmentation,
};
use nas_supernet::train::TrainConfig;

use crate::{Budget, Estimate, EstimateError, Estimator, Metrics};

/// Trains each architecture's segmentation network from scratch on `train` and scores it by
/// its mIoU on `valid`.
pub struct SegmentationEstimator<B: AutodiffBackend, M, F> {
    build: F,
    train: SegmentationDataset,
    valid: SegmentationDataset,
    config: TrainConfig,
    device: Device<B>,
    progress: bool,
    _model: PhantomData<fn() -> M>,
}

impl<B: AutodiffBackend, M, F> SegmentationEstimator<B, M, F> {
    /// An estimator that builds networks with `build` and trains them with `config` (its
    /// `epochs` are the full budget; the classification extras of [`TrainConfig`] are
    /// refused, [`check_segmentation_config`]). Name the backend once, as `SegmentationEstimator::<MyBackend, _, _>::new`.
    ///
    /// # Errors
    /// [`EstimateError::InvalidConfig`] for an invalid configuration or empty or mismatched
    /// sets.
    pub fn new<A>(
        build: F,
        train: SegmentationDataset,
        valid: SegmentationDataset,
        config: TrainConfig,
        device: Device<B>,
    ) -> Result<Self, EstimateError>
    where
        F: BuildNetwork<A, B, Network = M>,
    {
        check_segmentation_config(&config)
            .map_err(|e| EstimateError::InvalidConfig(e.to_string()))?;
        check_segmentation_sets(&train, &valid)
            .map_err(|e| EstimateError::InvalidConfig(e.to_string()))?;
        Ok(Self {
            build,
            train,
            valid,
            config,
            device,
            progress: false,
            _model: PhantomData,
        })
    }

    /// Prints one line per epoch to standard error.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The training set.
    pub fn train_set(&self) -> &SegmentationDataset {
        &self.train
    }

    /// The validation set.
    pub fn valid_set(&self) -> &SegmentationDataset {
        &self.valid
    }
}

impl<A, B, M, F> Estimator<A> for SegmentationEstimator<B, M, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Segmenter<B>,
    M::InnerModule: Segmenter<B::InnerBackend>,
    F: BuildNetwork<A, B, Network = M>,
{
    /// Trains for `budget.fidelity` epochs (rounded, at least 1), or the configured epochs.
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError> {
        self.estimate_reporting(arch, budget, &mut |_, _| false)
            .map(|e| e.metrics)
    }

    /// As [`Estimator::estimate`], reporting each epoch's validation mIoU; training stops
    /// after the epoch for which `report` returns `true`.
    fn estimate_reporting(
        &mut self,
        arch: &A,
        budget: &Budget,
        report: &mut dyn FnMut(usize, f64) -> bool,
    ) -> Result<Estimate, EstimateError> {
        let mut config = self.config.clone();
        config.epochs = crate::train::budget_epochs(budget, config.epochs)?;
        let start = Instant::now();
        let device = self.device.clone();
        let build = &mut self.build;
        let model = seeded(&device, config.seed, || build.build_network(arch, &device))?;
        let params = count_params(&model);
        let (progress, epochs) = (self.progress, config.epochs);
        let mut stopped_early = false;
        let trained = fit_segmentation(
            model,
            (&self.train, &self.valid),
            &config,
            &device,
            |epoch, history| {
                let last = &history[history.len() - 1];
                if progress {
                    eprintln!(
                        "  epoch {}/{epochs}: train loss {:.4}, valid loss {:.4}, pixel accuracy \
                         {:.2}%, mIoU {:.2}% ({:.1}s)",
                        epoch + 1,
                        last.train_loss,
                        last.valid_loss,
                        last.valid_pixel_accuracy,
                        last.valid_mean_iou,
                        last.seconds
                    );
                }
                let stop = report(epoch, last.valid_mean_iou);
                stopped_early |= stop && epoch + 1 < epochs;
                stop
            },
        );
        let (_, history) = trained.map_err(crate::train::failed)?;
        let last = history
            .last()
            .ok_or_else(|| EstimateError::Failed("training finished no epoch".into()))?;
        let curve = |f: fn(&nas_supernet::segment::SegmentationEpoch) -> f64| {
            history.iter().map(f).collect::<Vec<f64>>()
        };
        let metrics = Metrics::new(last.valid_mean_iou)
            .with("valid_mean_iou", last.valid_mean_iou)
            .with("valid_pixel_accuracy", last.valid_pixel_accuracy)
            .with("valid_loss", last.valid_loss)
            .with("train_loss", last.train_loss)
            .with("train_pixel_accuracy", last.train_pixel_accuracy)
            .with("params", params as f64)
            .with("train_seconds", start.elapsed().as_secs_f64())
            .with("epochs", history.len() as f64)
            .with_curve("valid_mean_iou", curve(|e| e.valid_mean_iou))
            .with_curve("valid_pixel_accuracy", curve(|e| e.valid_pixel_accuracy))
            .with_curve("valid_loss", curve(|e| e.valid_loss))
            .with_curve("train_loss", curve(|e| e.train_loss));
        Ok(Estimate {
            metrics,
            stopped_early,
        })
    }
}
