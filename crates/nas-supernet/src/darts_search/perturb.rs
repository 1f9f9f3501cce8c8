//! Architecture selection by perturbation (DARTS-PT: Wang et al., "Rethinking Architecture
//! Selection in Differentiable NAS", ICLR 2021).
//!
//! The magnitude of an alpha need not say how much its operation matters to the supernet: on
//! NAS-Bench-201, DARTS' alphas favour skip connections and pooling (the "collapse") although
//! removing a convolution from the trained supernet costs far more accuracy than removing
//! either. Perturbation-based selection asks the supernet directly: edge after edge, each
//! candidate operation is removed in turn and the supernet's accuracy on held-out images
//! measured; the operation whose removal costs the most is kept, and the edge is fixed to it
//! before the next edge is decided. Between edges the supernet's weights are fine-tuned for a
//! few steps with the edges decided so far fixed ([`PerturbationConfig::tune_steps`]; the
//! paper tunes for epochs), so that it adapts to each edge losing its mixture.
//!
//! ```no_run
//! # use nas_supernet::darts_search::{Searcher, SearchConfig, SupernetConfig};
//! # use nas_supernet::darts_search::supernet::Nb201SupernetConfig;
//! # use nas_supernet::driver::Driver;
//! # use nas_supernet::darts_search::perturb::PerturbationConfig;
//! # use nas_supernet::backend::DefaultBackend as B;
//! # let data = nas_supernet::data::ImageDataset::digits();
//! let builder = SupernetConfig::Nb201(Nb201SupernetConfig::default());
//! let mut searcher = Searcher::<B, _>::new(builder, SearchConfig::default(), Default::default())?;
//! let mut epochs = searcher.epochs(&data)?;
//! Driver::new(&mut epochs).run()?;
//! let pt = epochs.derive_by_perturbation(&PerturbationConfig::default())?;
//! println!("by the alphas: {}; by perturbation: {}", epochs.searcher().derive(), pt.derived);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::SearchError;
use super::alphas::{ArchMask, ArchProbabilities, ArchWeights, Relaxation};
use super::bilevel::StepContext;
use super::epochs::SearchEpochs;
use super::method::EpochPlan;
use super::supernet::{SearchNetwork, SupernetBuilder};
use crate::data::{ImageBatch, ImageBatcher, epoch_batches};
use crate::network::mix_seed;
use crate::train::count_correct;

/// Settings of [`SearchEpochs::derive_by_perturbation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerturbationConfig {
    /// Held-out images (of the alphas' half of the search data) the supernet's accuracy is
    /// measured on.
    pub images: usize,
    /// Weight steps (batches of the weights' half) after each decided edge, with the decided
    /// edges fixed; 0: the supernet is not changed.
    pub tune_steps: usize,
    /// Learning rate of those steps (default: half the search's initial weight learning
    /// rate).
    pub tune_learning_rate: Option<f64>,
}

impl Default for PerturbationConfig {
    /// 1,000 images, 20 tuning steps after each edge.
    fn default() -> Self {
        Self {
            images: 1000,
            tune_steps: 20,
            tune_learning_rate: None,
        }
    }
}

/// How one edge was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeDecision {
    /// Cell kind (0: normal, 1: reduction in the DARTS space).
    pub kind: usize,
    /// Edge within the cell.
    pub edge: usize,
    /// The supernet's accuracy (%) with each operation removed (`None`: not a candidate).
    pub accuracy_without: Vec<Option<f64>>,
    /// The operation kept: the one whose removal cost the most accuracy.
    pub chosen: usize,
}

/// The result of [`SearchEpochs::derive_by_perturbation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Perturbation<A> {
    /// The architecture selected by perturbation.
    pub derived: A,
    /// The supernet's accuracy (%) on the held-out images before any edge was fixed.
    pub base_accuracy: f64,
    /// The supernet's accuracy (%) with every edge fixed to its chosen operation.
    pub final_accuracy: f64,
    /// Images the accuracies were measured on.
    pub images: usize,
    /// Every decided edge, in the order decided.
    pub edges: Vec<EdgeDecision>,
    /// The mask with one operation left on every decided edge.
    pub mask: ArchMask,
}

impl<B, S> SearchEpochs<'_, B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
    <S::Network as AutodiffModule<B>>::InnerModule: SearchNetwork<B::InnerBackend>,
{
    /// Selects the architecture by perturbation (module documentation), measuring the
    /// supernet on the first `config.images` images of a seeded shuffle of the alphas' half of
    /// the search data (fewer when the half is smaller), without augmentation, with the softmax
    /// of the current alphas as operation weights. Edges with a single candidate left are kept
    /// as they are. The alphas and the mask do not change. With `config.tune_steps > 0` the
    /// supernet does: its weights, batch-norm statistics, weight-optimizer momentum and step
    /// counter (which seeds later steps) keep what the tuning did, also when a tuning step
    /// fails. Tuning steps use the method's relaxation at τ = 1 (GDAS: one sampled path per
    /// step), the measurements the softmax mixture of the alive operations.
    ///
    /// # Errors
    /// [`SearchError::Data`] when `config.images` is 0; [`SearchError::Diverged`] when the
    /// supernet's logits or a tuning step's loss are not finite; [`SearchError::InvalidConfig`]
    /// for a tuning learning rate that is not positive.
    pub fn derive_by_perturbation(
        &mut self,
        config: &PerturbationConfig,
    ) -> Result<Perturbation<S::Arch>, SearchError> {
        if config.images == 0 {
            return Err(SearchError::Data(
                "perturbation-based selection needs at least one held-out image".into(),
            ));
        }
        if config
            .tune_learning_rate
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            return Err(SearchError::InvalidConfig {
                field: "tune_learning_rate",
                reason: "must be positive and finite".into(),
            });
        }
        let cfg = self.searcher.config.clone();
        let device = self.searcher.device.clone();
        let batcher =
            ImageBatcher::new(self.a_data.shape()).with_normalize(self.normalize.clone())?;
        let seed = mix_seed(cfg.seed, 3, 12);
        let take = config.images.min(self.a_data.len());
        let held_out = self.a_data.sample(take, seed);
        // Measured without autodiff (the inner backend): batch norms use their running
        // statistics, as a supernet in evaluation mode does.
        let batches: Vec<ImageBatch<B::InnerBackend>> =
            epoch_batches(&held_out, batcher, cfg.batch_size, None, &device)?.collect();
        let alphas: Vec<Tensor<B::InnerBackend, 2>> = self
            .searcher
            .alphas
            .cells
            .iter()
            .map(|p| p.val().inner())
            .collect();
        let accuracy = |s: &super::Searcher<B, S>, mask: &ArchMask| -> Result<f64, SearchError> {
            let net = s.net.valid();
            let weights = ArchWeights::new(&alphas, mask, Relaxation::Softmax { tau: 1.0 }, 0.0, 0);
            let (mut correct, mut seen) = (0usize, 0usize);
            for b in &batches {
                let logits = net.search_logits(b.images.clone(), &weights);
                let sum = crate::grad::scalar(logits.clone().sum());
                if !sum.is_finite() {
                    return Err(SearchError::Diverged {
                        stage: s.stage,
                        epoch: s.epoch,
                        step: s.steps,
                        what: "supernet logits during perturbation-based selection",
                        value: sum,
                    });
                }
                correct += count_correct(logits, b.targets.clone());
                seen += b.targets.dims()[0];
            }
            Ok(100.0 * correct as f64 / seen.max(1) as f64)
        };
        let tune_ctx = StepContext {
            learning_rate: config
                .tune_learning_rate
                .unwrap_or(cfg.weights.learning_rate / 2.0),
            plan: EpochPlan {
                update_alphas: false,
                ..EpochPlan::default()
            },
            beta_decay: 0.0,
        };
        let s = &*self.searcher;
        let original = s.mask().clone();
        let probabilities = s.probabilities();
        let mut mask = original.clone();
        let base_accuracy = accuracy(s, &mask)?;
        let mut edges = Vec::new();
        for kind in 0..mask.cells.len() {
            for edge in 0..mask.cells[kind].len() {
                if mask.alive_on(kind, edge) < 2 {
                    continue;
                }
                let ops = mask.cells[kind][edge].len();
                let mut without = vec![None; ops];
                for (op, slot) in without.iter_mut().enumerate() {
                    if !mask.alive(kind, edge, op) {
                        continue;
                    }
                    let mut m = mask.clone();
                    m.cells[kind][edge][op] = false;
                    *slot = Some(accuracy(&*self.searcher, &m)?);
                }
                // The lowest accuracy without it; ties go to the larger alpha, then to the
                // lower index.
                let alpha = |o: usize| probabilities.cells[kind][edge][o];
                let chosen = without
                    .iter()
                    .enumerate()
                    .filter_map(|(o, a)| a.map(|a| (o, a)))
                    .fold(None::<(usize, f64)>, |best, (o, a)| match best {
                        Some((b_op, b)) if b < a || (b == a && alpha(b_op) >= alpha(o)) => best,
                        _ => Some((o, a)),
                    })
                    .map_or(0, |(o, _)| o);
                for (op, alive) in mask.cells[kind][edge].iter_mut().enumerate() {
                    *alive = op == chosen;
                }
                edges.push(EdgeDecision {
                    kind,
                    edge,
                    accuracy_without: without,
                    chosen,
                });
                if config.tune_steps > 0 {
                    let round = edges.len() as u64;
                    self.searcher.mask = mask.clone();
                    let tuned = self.tune(config.tune_steps, round, &tune_ctx);
                    self.searcher.mask = original.clone();
                    tuned?;
                }
            }
        }
        let s = &*self.searcher;
        let final_accuracy = accuracy(s, &mask)?;
        // The kept operations with their probabilities under the search's own mask, so that
        // a space that also selects edges (DARTS keeps two inputs per node) ranks them by
        // their alphas; the other alive operations keep a vanishing share in their alphas'
        // order, so that a cap on skip connections falls back to the next operation by alpha
        // rather than to the first column.
        let cells = probabilities
            .cells
            .iter()
            .enumerate()
            .map(|(kind, edges)| {
                edges
                    .iter()
                    .enumerate()
                    .map(|(e, row)| {
                        row.iter()
                            .enumerate()
                            .map(|(o, &p)| {
                                if mask.alive(kind, e, o) {
                                    p
                                } else if original.alive(kind, e, o) {
                                    p * 1e-9
                                } else {
                                    0.0
                                }
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let derived = s
            .builder()
            .derive(&ArchProbabilities { cells }, s.method().max_skip());
        Ok(Perturbation {
            derived,
            base_accuracy,
            final_accuracy,
            images: take,
            edges,
            mask,
        })
    }

    /// `steps` weight steps on batches of the weights' half (a shuffle seeded by the search's
    /// seed and `round`), the alphas fixed.
    fn tune(&mut self, steps: usize, round: u64, ctx: &StepContext) -> Result<(), SearchError> {
        let cfg = self.searcher.config.clone();
        let device = self.searcher.device.clone();
        let seed = mix_seed(mix_seed(cfg.seed, 4, 13), round, 14);
        let mut done = 0;
        while done < steps {
            let epoch = mix_seed(seed, done as u64, 15);
            let batcher = ImageBatcher::new(self.w_data.shape())
                .with_normalize(self.normalize.clone())?
                .with_augment(cfg.augment, mix_seed(epoch, 1, 0));
            let batches =
                epoch_batches(&self.w_data, batcher, cfg.batch_size, Some(epoch), &device)?;
            for b in batches.take(steps - done) {
                self.searcher.step(&b, &b, ctx)?;
                done += 1;
            }
        }
        Ok(())
    }
}
