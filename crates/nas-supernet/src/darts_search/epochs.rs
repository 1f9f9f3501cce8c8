//! A search as an [`EpochSolver`]: one epoch (of one stage) at a time, checkpointed and
//! resumed by the [`crate::driver::Driver`].
//!
//! Data order, augmentation, Gumbel noise and dropout are drawn from seeds derived from the
//! configuration's seed and the epoch or step index, so a search resumed from a checkpoint
//! ends with the alphas and weights of an uninterrupted one.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use super::SearchError;
use super::alphas::{Alphas, ArchMask};
use super::bilevel::{
    EpochReport, SearchReport, Searcher, StepContext, StepStats, max_opt, optimizers,
};
use super::method::EpochAt;
use super::supernet::SupernetBuilder;
use crate::data::{ImageBatcher, ImageDataset, Normalize, epoch_batches};
use crate::driver::{Checkpoint, CheckpointError, DriverError, EpochSolver};
use crate::network::{mix_seed, seeded};

/// The epochs of a [`Searcher`] over one dataset, for the [`crate::driver::Driver`]: made by
/// [`Searcher::epochs`].
pub struct SearchEpochs<'a, B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    pub(super) searcher: &'a mut Searcher<B, S>,
    pub(super) w_data: ImageDataset,
    pub(super) a_data: ImageDataset,
    pub(super) normalize: Normalize,
    data_len: usize,
}

impl<B, S> std::fmt::Debug for SearchEpochs<'_, B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchEpochs")
            .field("weights_half", &self.w_data.len())
            .field("alphas_half", &self.a_data.len())
            .field("epochs_done", &self.searcher.epochs_done)
            .finish_non_exhaustive()
    }
}

impl<B, S> Searcher<B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    /// The search over `data` (split into the weights' and the alphas' halves by the
    /// configuration's `train_portion` and seed) as an [`EpochSolver`].
    ///
    /// ```no_run
    /// # use nas_supernet::darts_search::{Searcher, SearchConfig, SupernetConfig};
    /// # use nas_supernet::darts_search::supernet::Nb201SupernetConfig;
    /// # use nas_supernet::driver::Driver;
    /// # use nas_supernet::backend::DefaultBackend as B;
    /// # let data = nas_supernet::data::ImageDataset::digits();
    /// let builder = SupernetConfig::Nb201(Nb201SupernetConfig::default());
    /// let mut searcher = Searcher::<B, _>::new(builder, SearchConfig::default(), Default::default())?;
    /// let mut epochs = searcher.epochs(&data)?;
    /// let mut driver = Driver::new(&mut epochs)
    ///     .checkpoint("runs/darts/checkpoint.bin", 1)
    ///     .resume(true);
    /// driver.run()?;
    /// let history = driver.into_history();
    /// let report = epochs.report(history);
    /// println!("{}", report.derived);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn epochs<'a>(
        &'a mut self,
        data: &ImageDataset,
    ) -> Result<SearchEpochs<'a, B, S>, SearchError> {
        let (w_data, a_data) = if self.config.single_level {
            (data.clone(), data.clone())
        } else {
            data.split(self.config.train_portion, self.config.seed)?
        };
        if w_data.is_empty() || a_data.is_empty() {
            return Err(SearchError::Data(format!(
                "{} images are too few to split into two non-empty halves",
                data.len()
            )));
        }
        Ok(SearchEpochs {
            normalize: data.channel_stats(),
            data_len: data.len(),
            searcher: self,
            w_data,
            a_data,
        })
    }
}

impl<B, S> SearchEpochs<'_, B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    /// The searcher.
    pub fn searcher(&self) -> &Searcher<B, S> {
        self.searcher
    }

    /// The result of the search so far, with `epochs` (the driver's history) as its epochs.
    pub fn report(&self, epochs: Vec<EpochReport>) -> SearchReport<S::Arch> {
        SearchReport {
            derived: self.searcher.derive(),
            probabilities: self.searcher.probabilities(),
            alphas: self.searcher.alphas.to_tables(),
            mask: self.searcher.mask.clone(),
            epochs,
        }
    }

    fn steps_per_epoch(&self) -> usize {
        let b = self.searcher.config.batch_size;
        self.w_data
            .len()
            .div_ceil(b)
            .min(self.a_data.len().div_ceil(b))
    }

    /// The batcher and shuffle seed of half `half` (1: weights, 2: alphas) in global epoch
    /// `g`: shuffled and augmented from seeds of `half` and `g`.
    fn batcher(&self, half: u64, g: usize) -> Result<(ImageBatcher, u64), SearchError> {
        let cfg = &self.searcher.config;
        let seed = mix_seed(mix_seed(cfg.seed, half, 9), g as u64, 10);
        let batcher = ImageBatcher::new(self.w_data.shape())
            .with_normalize(self.normalize.clone())?
            .with_augment(cfg.augment, mix_seed(seed, 1, 0));
        Ok((batcher, seed))
    }
}

impl<B, S> EpochSolver for SearchEpochs<'_, B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    type Report = EpochReport;
    type Error = SearchError;

    fn kind(&self) -> &'static str {
        "differentiable-search"
    }

    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "config": self.searcher.config,
            "method": {
                "name": self.searcher.method.name(),
                "settings": self.searcher.method.settings(),
            },
            "layout": self.searcher.layout,
            "images": self.data_len,
            "image_shape": self.w_data.shape(),
        })
    }

    fn total_epochs(&self) -> usize {
        self.searcher.config.epochs * self.searcher.method.stages()
    }

    fn epochs_done(&self) -> usize {
        self.searcher.epochs_done
    }

    fn epoch(&mut self) -> Result<EpochReport, SearchError> {
        let cfg = self.searcher.config.clone();
        let g = self.searcher.epochs_done;
        let (stage, epoch) = (g / cfg.epochs, g % cfg.epochs);
        if stage > 0 && epoch == 0 && self.searcher.stage < stage {
            self.searcher.next_stage(stage)?;
        }
        self.searcher.stage = stage;
        self.searcher.epoch = epoch;
        let start = Instant::now();
        let at = EpochAt {
            stage,
            epoch,
            epochs: cfg.epochs,
        };
        if epoch > 0 {
            let s = &mut *self.searcher;
            s.method.begin_epoch(at, &s.alphas.to_tables(), &mut s.mask);
        }
        let steps_per_epoch = self.steps_per_epoch();
        let total = steps_per_epoch * cfg.epochs;
        let mut plan = self.searcher.method.plan(at);
        if epoch < cfg.alphas.warmup_epochs {
            plan.update_alphas = false;
        }
        // β-DARTS: λ grows linearly from 0 over the epochs of the stage.
        let beta_decay = cfg.alphas.beta_decay * epoch as f64 / cfg.epochs.max(1) as f64;
        let (w_batcher, w_seed) = self.batcher(1, g)?;
        let (a_batcher, a_seed) = self.batcher(2, g)?;
        let (w_data, a_data) = (self.w_data.clone(), self.a_data.clone());
        let device = self.searcher.device.clone();
        let w_batches = epoch_batches(&w_data, w_batcher, cfg.batch_size, Some(w_seed), &device)?;
        let a_batches = epoch_batches(&a_data, a_batcher, cfg.batch_size, Some(a_seed), &device)?;
        let mut sum = StepStats::default();
        let (mut tl, mut vl, mut n) = (0.0, 0.0, 0usize);
        let (mut peak, mut step_peak) = (None::<usize>, None::<usize>);
        for (i, (tb, vb)) in w_batches.zip(a_batches).enumerate() {
            let ctx = StepContext {
                learning_rate: cfg.learning_rate_at(epoch * steps_per_epoch + i, total),
                plan,
                beta_decay,
            };
            // Single-level: the alphas learn on the weights' batch.
            let vb = if cfg.single_level { &tb } else { &vb };
            let s = self.searcher.step(&tb, vb, &ctx)?;
            if plan.update_alphas {
                let searcher = &mut *self.searcher;
                searcher
                    .method
                    .after_step(at, &searcher.alphas, &mut searcher.mask);
            }
            tl += s.train_loss * s.train_seen as f64;
            vl += s.valid_loss * s.valid_seen as f64;
            sum.train_seen += s.train_seen;
            sum.train_correct += s.train_correct;
            sum.valid_seen += s.valid_seen;
            sum.valid_correct += s.valid_correct;
            sum.seconds += s.seconds;
            peak = max_opt(peak, s.peak_bytes);
            step_peak = max_opt(step_peak, s.step_bytes);
            n += 1;
        }
        self.searcher.epochs_done += 1;
        let pct = |c: usize, s: usize| 100.0 * c as f64 / s.max(1) as f64;
        Ok(EpochReport {
            stage,
            epoch,
            train_loss: tl / sum.train_seen.max(1) as f64,
            train_accuracy: pct(sum.train_correct, sum.train_seen),
            valid_loss: if sum.valid_seen > 0 {
                vl / sum.valid_seen as f64
            } else {
                f64::NAN
            },
            valid_accuracy: pct(sum.valid_correct, sum.valid_seen),
            tau: plan.tau,
            skip_dropout: plan.skip_dropout,
            alive_ops: self.searcher.mask.count(),
            step_seconds: sum.seconds / n.max(1) as f64,
            seconds: start.elapsed().as_secs_f64(),
            peak_bytes: peak,
            step_bytes: step_peak,
            probabilities: self.searcher.probabilities(),
            derived: self.searcher.derive().to_string(),
        })
    }

    fn save(&self, c: &mut Checkpoint) -> Result<(), SearchError> {
        let s = &*self.searcher;
        c.put_module::<B, S::Network>("network", &s.net)?;
        c.put_module::<B, Alphas<B>>("alphas", &s.alphas)?;
        c.put_optimizer::<B, S::Network, _>("weight_optimizer", &s.w_optim)?;
        c.put_optimizer::<B, Alphas<B>, _>("alpha_optimizer", &s.a_optim)?;
        c.put("mask", &s.mask)?;
        c.put("counters", &(s.stage, s.epoch, s.steps, s.epochs_done))?;
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint) -> Result<(), SearchError> {
        let s = &mut *self.searcher;
        let mask: ArchMask = c.get("mask")?;
        let (stage, epoch, steps, epochs_done): (usize, usize, usize, usize) = c.get("counters")?;
        // The supernet of the checkpoint's stage (P-DARTS grows it), with its alive
        // operations; its weights come from the record.
        let extra = s.method.extra_cells(stage);
        let net = seeded(&s.device, s.config.seed, || {
            s.builder.build(extra, &mask, &s.device)
        })?;
        let net = c.module::<B, S::Network>("network", net, &s.device)?;
        let alphas = c.module::<B, Alphas<B>>("alphas", s.alphas.clone(), &s.device)?;
        let (w, a) = optimizers::<B, S::Network>(&s.config);
        s.w_optim = c.optimizer::<B, S::Network, _>("weight_optimizer", w, &s.device)?;
        s.a_optim = c.optimizer::<B, Alphas<B>, _>("alpha_optimizer", a, &s.device)?;
        s.net = net;
        s.alphas = alphas;
        s.mask = mask;
        (s.stage, s.epoch, s.steps, s.epochs_done) = (stage, epoch, steps, epochs_done);
        Ok(())
    }
}

impl SearchError {
    /// The error of a driven search, flattened.
    pub fn from_driver(e: DriverError<SearchError>) -> Self {
        e.flatten()
    }
}

impl From<CheckpointError> for SearchError {
    fn from(e: CheckpointError) -> Self {
        Self::Checkpoint(e)
    }
}
