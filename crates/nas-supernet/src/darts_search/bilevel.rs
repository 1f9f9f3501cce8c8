//! The bi-level search driver every method plugs into.
//!
//! One step ([`Searcher::step`]) first updates the alphas on a validation batch (first order:
//! `∇α L_val(w, α)`; second order: the unrolled gradient of DARTS), then the weights on a
//! training batch with the new alphas. [`Searcher::run`] splits the training data in two halves
//! (weights, alphas), runs the epochs (and P-DARTS' stages), applies the schedules, and reports
//! every epoch. A NaN or infinite loss or gradient stops the search with
//! [`SearchError::Diverged`]; the searcher then still holds the alphas and weights of the last
//! good step.

use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::SearchError;
use super::alphas::{Alphas, ArchLayout, ArchMask, ArchProbabilities, ArchWeights, Relaxation};
use super::method::{EpochPlan, Method, SearchMethod};
use super::supernet::{SearchNetwork, SupernetBuilder};
use crate::data::{Augment, ImageBatch, ImageDataset};
use crate::grad::{global_norm, scalar, scale_grads};
use crate::memory;
use crate::network::{mix_seed, seeded};
use crate::train::count_correct;

/// The weights' optimizer: SGD with momentum, weight decay, cosine learning rate per step,
/// gradient clipping by global norm (DARTS' settings by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightOptimConfig {
    /// Initial learning rate (DARTS: 0.025).
    pub learning_rate: f64,
    /// Final learning rate of the cosine schedule (DARTS: 0.001).
    pub min_learning_rate: f64,
    /// Momentum (DARTS: 0.9).
    pub momentum: f64,
    /// L2 weight decay (DARTS: 3e-4).
    pub weight_decay: f64,
    /// Clip the weights' gradient to this global norm (DARTS: 5); `None`: off.
    pub grad_clip: Option<f64>,
}

impl Default for WeightOptimConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.025,
            min_learning_rate: 0.001,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: Some(5.0),
        }
    }
}

/// The alphas' optimizer: Adam with L2 weight decay (DARTS' settings by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaOptimConfig {
    /// Learning rate (DARTS: 3e-4).
    pub learning_rate: f64,
    /// Adam's β1 (DARTS: 0.5).
    pub beta1: f64,
    /// Adam's β2 (DARTS: 0.999).
    pub beta2: f64,
    /// L2 weight decay (DARTS: 1e-3).
    pub weight_decay: f64,
    /// Standard deviation of the initial alphas (DARTS: 1e-3).
    pub init_std: f64,
    /// Epochs at the start of each stage in which only the weights learn and the alphas stay
    /// as they are (DARTS: 0; PC-DARTS: 15 of 50). Parameter-free operations (pooling, skip,
    /// `none`) lower the loss before the convolutions have learned anything, so alphas that
    /// learn from the first step drift towards them; a warm-up lets the convolutions catch up.
    /// Equal to the epochs, the alphas never learn: a supernet for selection by perturbation
    /// with fixed alphas (DARTS-PT's "fix α", [`super::perturb`]).
    #[serde(default)]
    pub warmup_epochs: usize,
    /// How the weights train during the warm-up ([`WarmupPaths`]; default: through the
    /// method's own relaxation). GDAS' single sampled path gives each convolution a fifth of
    /// the warm-up's steps; [`WarmupPaths::Fair`] computes every operation on every step.
    /// (Left out of the serialized configuration at its default.)
    #[serde(default, skip_serializing_if = "WarmupPaths::is_method")]
    pub warmup_paths: WarmupPaths,
    /// β-DARTS' beta-decay regularization (Ye et al., CVPR 2022): the alphas' loss gains
    /// `λ · mean over edges of logsumexp(α_edge)`, with `λ = beta_decay · epoch / epochs` (0 in
    /// the first epoch of each stage, `beta_decay · (epochs − 1) / epochs` in the last; the
    /// paper's `50 · epoch / 100` over 50 epochs is 25). Its gradient, `λ · softmax(α_edge) / edges`,
    /// pulls every edge's strongest alpha back hardest, so no operation runs away with an edge
    /// (DARTS' drift towards skip connections) and the alphas stay where the supernet's
    /// weights are comparable. 0 (the default): off.
    /// (Left out of the serialized configuration when 0, so checkpoints written before the
    /// setting existed still resume.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub beta_decay: f64,
    /// SNAS' resource constraint (Xie et al., ICLR 2019): the alphas' loss gains
    /// `resource_weight · Σ_edges Σ_ops w_op · MACs_op / MACs_max`, the MACs of the sampled
    /// (or softmax-weighted) cell as a fraction of the largest cell's, differentiable through
    /// the relaxed weights `w` of the same pass ([`Searcher::op_macs`] counts each operation's
    /// MACs once per input shape). Larger values push the search towards cheaper operations;
    /// it works with every relaxation. 0 (the default): off. (Left out of the serialized
    /// configuration when 0.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resource_weight: f64,
}

/// The paths through which the weights train while the alphas warm up
/// ([`AlphaOptimConfig::warmup_epochs`], and the epochs a method's plan keeps the alphas fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmupPaths {
    /// The method's relaxation with the alphas held (DARTS: the softmax mixture; GDAS: one
    /// sampled operation per edge, so each operation trains on about `1/ops` of the steps).
    #[default]
    Method,
    /// Every alive operation of an edge at equal weight (DARTS' mixture), whatever the method.
    Mixture,
    /// Strictly fair single paths (FairNAS, Chu et al., ICCV 2021): each step runs the batch
    /// through `k` one-operation-per-edge paths that together take every alive operation of
    /// every edge once (`k`: the most alive operations of an edge; an edge with fewer repeats
    /// some at random), and applies the sum of their gradients. Every operation is computed
    /// on every step, each as a single path uses it, and learns unless its path leaves its
    /// output unused (`none` on every edge out of its node, in a cell); a step costs about `k`
    /// single-path steps.
    Fair,
}

impl WarmupPaths {
    fn is_method(&self) -> bool {
        *self == WarmupPaths::Method
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for AlphaOptimConfig {
    fn default() -> Self {
        Self {
            learning_rate: 3e-4,
            beta1: 0.5,
            beta2: 0.999,
            weight_decay: 1e-3,
            init_std: 1e-3,
            warmup_epochs: 0,
            warmup_paths: WarmupPaths::Method,
            beta_decay: 0.0,
            resource_weight: 0.0,
        }
    }
}

/// Configuration of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The method (ignored by [`Searcher::with_method`], which takes a method of any type).
    pub method: Method,
    /// Epochs (per stage for P-DARTS). DARTS: 50.
    pub epochs: usize,
    /// Batch size of both halves. DARTS: 64.
    pub batch_size: usize,
    /// The weights' optimizer.
    pub weights: WeightOptimConfig,
    /// The alphas' optimizer.
    pub alphas: AlphaOptimConfig,
    /// Fraction of the training data that trains the weights; the rest trains the alphas.
    /// DARTS: 0.5.
    pub train_portion: f64,
    /// Augmentation of both halves (DARTS on CIFAR: random crop and flip).
    pub augment: Augment,
    /// Seed of initialization, data order, Gumbel noise and dropout.
    pub seed: u64,
    /// Single-level search, as SNAS trains: the weights and the alphas both learn on the
    /// whole training set, each step's alpha update on the same batch as its weight update
    /// (`train_portion` is then unused). `false` (the default): DARTS' bi-level split. A
    /// second-order method needs the split. (Left out of the serialized configuration when
    /// false.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub single_level: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for SearchConfig {
    /// First-order DARTS with the paper's settings (50 epochs, batch 64).
    fn default() -> Self {
        Self {
            method: Method::Darts,
            epochs: 50,
            batch_size: 64,
            weights: WeightOptimConfig::default(),
            alphas: AlphaOptimConfig::default(),
            train_portion: 0.5,
            augment: Augment::default(),
            seed: 0,
            single_level: false,
        }
    }
}

impl SearchConfig {
    /// Checks every value; the error names the field.
    pub fn check(&self) -> Result<(), SearchError> {
        let bad = |field: &'static str, reason: &str| {
            Err(SearchError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        let positive = |v: f64| v > 0.0 && v.is_finite();
        self.method.check()?;
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        let w = &self.weights;
        if !positive(w.learning_rate) {
            return bad("weights.learning_rate", "must be positive and finite");
        }
        if !(0.0..=w.learning_rate).contains(&w.min_learning_rate) {
            return bad("weights.min_learning_rate", "must be in [0, learning_rate]");
        }
        if !(0.0..1.0).contains(&w.momentum) {
            return bad("weights.momentum", "must be in [0, 1)");
        }
        if !(w.weight_decay >= 0.0 && w.weight_decay.is_finite()) {
            return bad("weights.weight_decay", "must be ≥ 0 and finite");
        }
        if w.grad_clip.is_some_and(|c| !positive(c)) {
            return bad("weights.grad_clip", "must be positive");
        }
        let a = &self.alphas;
        if !positive(a.learning_rate) {
            return bad("alphas.learning_rate", "must be positive and finite");
        }
        if !(0.0..1.0).contains(&a.beta1) || !(0.0..1.0).contains(&a.beta2) {
            return bad("alphas.beta1/beta2", "must be in [0, 1)");
        }
        if !(a.weight_decay >= 0.0 && a.weight_decay.is_finite()) {
            return bad("alphas.weight_decay", "must be ≥ 0 and finite");
        }
        if !(a.init_std >= 0.0 && a.init_std.is_finite()) {
            return bad("alphas.init_std", "must be ≥ 0 and finite");
        }
        if !(a.beta_decay >= 0.0 && a.beta_decay.is_finite()) {
            return bad("alphas.beta_decay", "must be ≥ 0 and finite (0: off)");
        }
        if !(a.resource_weight >= 0.0 && a.resource_weight.is_finite()) {
            return bad("alphas.resource_weight", "must be ≥ 0 and finite (0: off)");
        }
        if a.warmup_epochs > self.epochs {
            return bad(
                "alphas.warmup_epochs",
                "must be at most epochs (equal: the alphas never learn, for a selection by \
                 perturbation)",
            );
        }
        if !(self.train_portion > 0.0 && self.train_portion < 1.0) {
            return bad("train_portion", "must be in (0, 1): both halves need data");
        }
        Ok(())
    }

    /// The weights' learning rate at `step` of `total` (cosine annealing).
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let w = &self.weights;
        let t = step as f64 / total.max(1) as f64;
        w.min_learning_rate
            + 0.5
                * (w.learning_rate - w.min_learning_rate)
                * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// The schedule values of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepContext {
    /// The weights' learning rate.
    pub learning_rate: f64,
    /// The method's settings of the epoch: temperature, dropout on skip connections, whether
    /// the alphas learn.
    pub plan: EpochPlan,
    /// β-DARTS' regularization coefficient `λ` of this step (0: off; see
    /// [`AlphaOptimConfig::beta_decay`]).
    pub beta_decay: f64,
}

impl StepContext {
    /// A step at the weights' learning rate `learning_rate` under `plan`, without β-decay.
    pub fn new(learning_rate: f64, plan: EpochPlan) -> Self {
        Self {
            learning_rate,
            plan,
            beta_decay: 0.0,
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Loss of the weight step (training half).
    pub train_loss: f64,
    /// Correct predictions of the weight step.
    pub train_correct: usize,
    /// Images of the weight step.
    pub train_seen: usize,
    /// Loss of the alpha step (validation half; at the unrolled weights for second order;
    /// NaN when the alphas did not learn in this step).
    pub valid_loss: f64,
    /// Correct predictions of the alpha step.
    pub valid_correct: usize,
    /// Images of the alpha step.
    pub valid_seen: usize,
    /// Wall time of the step, in seconds.
    pub seconds: f64,
    /// The most heap bytes in use during the step (with
    /// [`memory::CountingAlloc`] installed).
    pub peak_bytes: Option<usize>,
    /// `peak_bytes` minus the bytes in use when the step began: what the step itself needed.
    pub step_bytes: Option<usize>,
}

/// One epoch of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Stage (0 except for P-DARTS).
    pub stage: usize,
    /// Epoch within the stage (0-based).
    pub epoch: usize,
    /// Mean loss of the weight steps.
    pub train_loss: f64,
    /// Accuracy (%) of the weight steps.
    pub train_accuracy: f64,
    /// Mean loss of the alpha steps (NaN when the alphas did not learn).
    pub valid_loss: f64,
    /// Accuracy (%) of the alpha steps.
    pub valid_accuracy: f64,
    /// The relaxation's temperature.
    pub tau: f64,
    /// Dropout on skip connections.
    pub skip_dropout: f64,
    /// Candidate operations left, over all edges.
    pub alive_ops: usize,
    /// Mean wall time of a step, in seconds.
    pub step_seconds: f64,
    /// Wall time of the epoch, in seconds.
    pub seconds: f64,
    /// The largest [`StepStats::peak_bytes`] of the epoch.
    pub peak_bytes: Option<usize>,
    /// The largest [`StepStats::step_bytes`] of the epoch.
    pub step_bytes: Option<usize>,
    /// Softmaxed alphas after the epoch.
    pub probabilities: ArchProbabilities,
    /// The architecture derived after the epoch, in its published text format.
    pub derived: String,
}

/// The result of a finished search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReport<A> {
    /// The derived architecture.
    pub derived: A,
    /// Softmaxed final alphas.
    pub probabilities: ArchProbabilities,
    /// Final alphas, `[kind][edge][op]`.
    pub alphas: Vec<Vec<Vec<f32>>>,
    /// The final mask of candidate operations.
    pub mask: ArchMask,
    /// Every epoch.
    pub epochs: Vec<EpochReport>,
}

pub(super) type WeightOptim<B, N> =
    OptimizerAdaptor<Sgd<<B as AutodiffBackend>::InnerBackend>, N, B>;
pub(super) type AlphaOptim<B> = OptimizerAdaptor<Adam, Alphas<B>, B>;

/// A differentiable architecture search over the space of `S`.
pub struct Searcher<B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    pub(super) builder: S,
    pub(super) config: SearchConfig,
    pub(super) method: Box<dyn SearchMethod<B>>,
    pub(super) layout: ArchLayout,
    pub(super) net: S::Network,
    pub(super) alphas: Alphas<B>,
    pub(super) mask: ArchMask,
    pub(super) w_optim: WeightOptim<B, S::Network>,
    pub(super) a_optim: AlphaOptim<B>,
    pub(super) device: Device<B>,
    pub(super) stage: usize,
    pub(super) epoch: usize,
    pub(super) steps: usize,
    /// Epochs finished, over all stages.
    pub(super) epochs_done: usize,
    /// [`Searcher::op_macs`] of the last input shape and stage (the resource constraint).
    pub(super) op_macs: std::sync::Mutex<Option<([usize; 3], usize, OpTable)>>,
}

/// Adds `extra` to the gradient of parameter `id` in `grads` (registers it when there is none).
fn add_grad<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    id: burn::module::ParamId,
    extra: Tensor<B::InnerBackend, 2>,
) {
    let g = match grads.remove::<B::InnerBackend, 2>(id) {
        Some(g) => g + extra,
        None => extra,
    };
    grads.register::<B::InnerBackend, 2>(id, g);
}

/// A value per operation: `[kind][edge][op]`.
type OpTable = Vec<Vec<Vec<f64>>>;

impl<B, S> Searcher<B, S>
where
    B: AutodiffBackend,
    S: SupernetBuilder<B>,
    S::Network: AutodiffModule<B>,
{
    /// A search over `builder`'s space with `config`, on `device`: the supernet of the first
    /// stage with every operation alive, fresh alphas and optimizers, all seeded.
    pub fn new(builder: S, config: SearchConfig, device: Device<B>) -> Result<Self, SearchError> {
        let method = config.method.to_method();
        Self::with_boxed_method(builder, config, method, device)
    }

    /// A search with a method of any type (a relaxation of your own: see
    /// [`super::method`]); `config.method` is ignored.
    pub fn with_method(
        builder: S,
        config: SearchConfig,
        method: impl SearchMethod<B> + 'static,
        device: Device<B>,
    ) -> Result<Self, SearchError> {
        Self::with_boxed_method(builder, config, Box::new(method), device)
    }

    fn with_boxed_method(
        builder: S,
        config: SearchConfig,
        method: Box<dyn SearchMethod<B>>,
        device: Device<B>,
    ) -> Result<Self, SearchError> {
        config.check()?;
        method.check()?;
        if method.stages() == 0 {
            return Err(SearchError::InvalidConfig {
                field: "method",
                reason: format!(
                    "`{}` has no stage (stages() must be at least 1)",
                    method.name()
                ),
            });
        }
        if config.single_level && method.unrolled().is_some() {
            return Err(SearchError::InvalidConfig {
                field: "single_level",
                reason: format!(
                    "`{}` is second order: its unrolled gradient needs the bi-level split of \
                     the data; use a first-order method or set single_level to false",
                    method.name()
                ),
            });
        }
        let layout = builder.layout();
        let mask = layout.full_mask();
        let extra = method.extra_cells(0);
        let net = seeded(&device, config.seed, || {
            builder.build(extra, &mask, &device)
        })?;
        let alphas = Alphas::new(
            &layout,
            config.alphas.init_std,
            mix_seed(config.seed, 0, 3),
            &device,
        );
        let (w_optim, a_optim) = optimizers(&config);
        Ok(Self {
            builder,
            config,
            method,
            layout,
            net,
            alphas,
            mask,
            w_optim,
            a_optim,
            device,
            stage: 0,
            epoch: 0,
            steps: 0,
            epochs_done: 0,
            op_macs: std::sync::Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// The method.
    pub fn method(&self) -> &dyn SearchMethod<B> {
        &*self.method
    }

    /// The shape of the alphas.
    pub fn layout(&self) -> &ArchLayout {
        &self.layout
    }

    /// The candidate operations left.
    pub fn mask(&self) -> &ArchMask {
        &self.mask
    }

    /// The supernet (its weights after the last good step).
    pub fn network(&self) -> &S::Network {
        &self.net
    }

    /// The alphas (after the last good step).
    pub fn alphas(&self) -> &Alphas<B> {
        &self.alphas
    }

    /// The space's builder.
    pub fn builder(&self) -> &S {
        &self.builder
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Softmaxed alphas over the alive operations.
    pub fn probabilities(&self) -> ArchProbabilities {
        ArchProbabilities::from_tables(&self.alphas.to_tables(), &self.mask)
    }

    /// The architecture the current alphas select.
    pub fn derive(&self) -> S::Arch {
        self.builder
            .derive(&self.probabilities(), self.method.max_skip())
    }

    fn diverged(&self, what: &'static str, value: f64) -> SearchError {
        SearchError::Diverged {
            stage: self.stage,
            epoch: self.epoch,
            step: self.steps,
            what,
            value,
        }
    }

    fn weights_of(
        &self,
        alphas: &Alphas<B>,
        detach: bool,
        ctx: &StepContext,
        seed: u64,
    ) -> ArchWeights<B> {
        let values: Vec<Tensor<B, 2>> = alphas
            .cells
            .iter()
            .map(|p| {
                if detach {
                    // `detach` keeps a parameter's flag; cleared, the relaxation knows that no
                    // gradient flows back (GDAS' dense gradient then computes one operation).
                    p.val().detach().set_require_grad(false)
                } else {
                    p.val()
                }
            })
            .collect();
        self.method.weights(&values, &self.mask, &ctx.plan, seed)
    }

    /// Every alive operation of every edge at equal weight ([`WarmupPaths::Mixture`]).
    fn mixture_weights(&self, ctx: &StepContext) -> ArchWeights<B> {
        let zeros: Vec<Tensor<B, 2>> = self
            .alphas
            .cells
            .iter()
            .map(|p| Tensor::zeros(p.val().dims(), &self.device))
            .collect();
        ArchWeights::new(
            &zeros,
            &self.mask,
            Relaxation::Softmax { tau: 1.0 },
            ctx.plan.skip_dropout,
            0,
        )
    }

    /// The one-hot paths of a strictly fair step ([`WarmupPaths::Fair`]): path `j` takes
    /// operation `perm[j]` of each edge, `perm` a random order of the edge's alive operations
    /// (drawn from `seed`), cycled on an edge with fewer operations than paths.
    fn fair_paths(&self, ctx: &StepContext, seed: u64) -> Vec<ArchWeights<B>> {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        // [kind][edge]: the edge's alive operations in a random order.
        let orders: Vec<Vec<Vec<usize>>> = self.layout.per_edge(|k, e, cell| {
            let mut alive: Vec<usize> = (0..cell.ops.len())
                .filter(|&o| self.mask.alive(k, e, o))
                .collect();
            alive.shuffle(&mut rng);
            alive
        });
        let paths = orders
            .iter()
            .flatten()
            .map(Vec::len)
            .max()
            .unwrap_or(1)
            .max(1);
        (0..paths)
            .map(|j| {
                let mut tables = Vec::with_capacity(orders.len());
                let mut sampled = Vec::with_capacity(orders.len());
                for (k, cell) in self.layout.cells.iter().enumerate() {
                    let ops = cell.ops.len();
                    let mut one_hot = vec![0f32; orders[k].len() * ops];
                    let mut picks = Vec::with_capacity(orders[k].len());
                    for (e, order) in orders[k].iter().enumerate() {
                        // An edge with no alive operation keeps index 0 (masked: not computed).
                        let op = if order.is_empty() {
                            0
                        } else {
                            order[j % order.len()]
                        };
                        one_hot[e * ops + op] = 1.0;
                        picks.push(op);
                    }
                    tables.push(Tensor::<B, 2>::from_data(
                        TensorData::new(one_hot, [orders[k].len(), ops]),
                        &self.device,
                    ));
                    sampled.push(picks);
                }
                ArchWeights::from_probabilities(
                    tables,
                    Some(sampled),
                    &self.mask,
                    ctx.plan.skip_dropout,
                    mix_seed(seed, j as u64, 0),
                )
            })
            .collect()
    }

    /// One bi-level step: the alphas learn on `valid` (unless `ctx.plan.update_alphas` is false),
    /// then the weights on `train`. Nothing changes when it fails.
    pub fn step(
        &mut self,
        train: &ImageBatch<B>,
        valid: &ImageBatch<B>,
        ctx: &StepContext,
    ) -> Result<StepStats, SearchError> {
        let start = Instant::now();
        let base = memory::bytes_in_use();
        memory::reset_peak();
        let seed = mix_seed(self.config.seed, self.steps as u64, 5);
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        let mut stats = StepStats {
            valid_loss: f64::NAN,
            ..StepStats::default()
        };

        // Alpha step.
        let (alphas, a_optim) = if ctx.plan.update_alphas {
            let (grads, loss, correct) = self.alpha_grads(train, valid, ctx, seed)?;
            let norm = global_norm::<B, _>(&grads, &self.alphas);
            if !norm.is_finite() {
                return Err(self.diverged("alphas' gradient norm", norm));
            }
            stats.valid_loss = loss;
            stats.valid_correct = correct;
            stats.valid_seen = valid.targets.dims()[0];
            let mut a_optim = self.a_optim.clone();
            let alphas = a_optim.step(self.config.alphas.learning_rate, self.alphas.clone(), grads);
            (alphas, Some(a_optim))
        } else {
            (self.alphas.clone(), None)
        };

        // Weight step, with the new alphas held fixed (during a warm-up, through the paths
        // the configuration names).
        let paths = match (ctx.plan.update_alphas, self.config.alphas.warmup_paths) {
            (false, WarmupPaths::Mixture) => vec![self.mixture_weights(ctx)],
            (false, WarmupPaths::Fair) => self.fair_paths(ctx, mix_seed(seed, 2, 1)),
            _ => vec![self.weights_of(&alphas, true, ctx, mix_seed(seed, 2, 0))],
        };
        let batch = train.targets.dims()[0];
        let mut total: Option<Tensor<B, 1>> = None;
        for w in &paths {
            let logits = self.net.search_logits(train.images.clone(), w);
            stats.train_correct += count_correct(logits.clone(), train.targets.clone());
            stats.train_seen += batch;
            let loss = loss_fn.forward(logits, train.targets.clone());
            total = Some(match total {
                Some(t) => t + loss,
                None => loss,
            });
        }
        let Some(loss) = total else {
            unreachable!("a weight step has at least one path")
        };
        stats.train_loss = scalar(loss.clone()) / paths.len() as f64;
        if !stats.train_loss.is_finite() {
            return Err(self.diverged("training loss", stats.train_loss));
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.net);
        let norm = global_norm::<B, _>(&grads, &self.net);
        if !norm.is_finite() {
            return Err(self.diverged("weights' gradient norm", norm));
        }
        if let Some(max) = self.config.weights.grad_clip
            && norm > max
        {
            scale_grads::<B, _>(&mut grads, &self.net, max / (norm + 1e-6));
        }
        let mut w_optim = self.w_optim.clone();
        let net = w_optim.step(ctx.learning_rate, self.net.clone(), grads);

        self.net = net;
        self.w_optim = w_optim;
        self.alphas = alphas;
        if let Some(a) = a_optim {
            self.a_optim = a;
        }
        self.steps += 1;
        stats.seconds = start.elapsed().as_secs_f64();
        stats.peak_bytes = memory::peak_bytes();
        stats.step_bytes = match (stats.peak_bytes, base) {
            (Some(p), Some(b)) => Some(p.saturating_sub(b)),
            _ => None,
        };
        Ok(stats)
    }

    /// The gradient of the alphas that the next [`step`](Self::step) on these batches would
    /// apply (`[kind][edge][op]`): first order `∇α L_val(w, α)`, or the method's unrolled
    /// second-order gradient (DARTS' Hessian-vector product by finite differences), plus
    /// β-decay's term when `ctx.beta_decay` is positive and the resource constraint's when
    /// [`AlphaOptimConfig::resource_weight`] is. Nothing changes; masked operations
    /// get 0. For diagnostics and tests (the second-order gradient against an exact one).
    ///
    /// # Errors
    /// [`SearchError::Diverged`] when a loss or a gradient is not finite.
    pub fn alpha_gradient(
        &self,
        train: &ImageBatch<B>,
        valid: &ImageBatch<B>,
        ctx: &StepContext,
    ) -> Result<Vec<Vec<Vec<f32>>>, SearchError> {
        let seed = mix_seed(self.config.seed, self.steps as u64, 5);
        let (grads, _, _) = self.alpha_grads(train, valid, ctx, seed)?;
        Ok(self
            .alphas
            .cells
            .iter()
            .map(|p| {
                let [edges, ops] = p.val().dims();
                let values: Vec<f32> = grads
                    .get::<B::InnerBackend, 2>(p.id)
                    .map(|g| g.into_data().convert::<f32>().to_vec().unwrap_or_default())
                    .unwrap_or_default();
                (0..edges)
                    .map(|e| {
                        (0..ops)
                            .map(|o| values.get(e * ops + o).copied().unwrap_or(0.0))
                            .collect()
                    })
                    .collect()
            })
            .collect())
    }

    /// MACs per image of every candidate operation, `[kind][edge][op]`, summed over the cells
    /// of each kind, for images of shape `input` (`[channels, height, width]`) in the current
    /// supernet (P-DARTS' stages change it): one forward pass of a blank image with every
    /// alive operation weighted, each computed operation counted at the shape it sees.
    /// Masked operations and `none` count 0. The expected MACs of the cells under
    /// probabilities `p` are `Σ p · MACs`.
    pub fn op_macs(&self, input: [usize; 3]) -> Vec<Vec<Vec<f64>>> {
        let key = (input, self.stage);
        if let Ok(cache) = self.op_macs.lock()
            && let Some((shape, stage, table)) = cache.as_ref()
            && (*shape, *stage) == key
        {
            return table.clone();
        }
        let [c, h, w] = input;
        let net = self.net.clone().no_grad();
        let values: Vec<Tensor<B, 2>> =
            self.alphas.cells.iter().map(|p| p.val().detach()).collect();
        let weights = ArchWeights::new(
            &values,
            &self.mask,
            super::alphas::Relaxation::Softmax { tau: 1.0 },
            0.0,
            0,
        );
        let image = Tensor::<B, 4>::zeros([1, c, h, w], &self.device);
        let (_, macs) = super::mixed::record_op_macs(|| net.search_logits(image, &weights));
        let table: OpTable = self.layout.per_edge(|k, e, cell| {
            let slice = weights.edge(k, e, 0).weights.as_ptr() as usize;
            (0..cell.ops.len())
                .map(|o| macs.get(&(slice, o)).copied().unwrap_or(0) as f64)
                .collect()
        });
        if let Ok(mut cache) = self.op_macs.lock() {
            *cache = Some((input, self.stage, table.clone()));
        }
        table
    }

    /// Adds the gradient of the resource constraint
    /// ([`AlphaOptimConfig::resource_weight`]) under the relaxed weights of `seed`.
    fn add_resource_term(
        &self,
        grads: &mut GradientsParams,
        images: &ImageBatch<B>,
        ctx: &StepContext,
        seed: u64,
    ) {
        let eta = self.config.alphas.resource_weight;
        let [_, c, h, w] = images.images.dims();
        let macs = self.op_macs([c, h, w]);
        let largest: f64 = macs
            .iter()
            .flatten()
            .map(|row| row.iter().copied().fold(0.0, f64::max))
            .sum();
        if eta <= 0.0 || largest <= 0.0 {
            return;
        }
        let weights = self.weights_of(&self.alphas, false, ctx, seed);
        let mut cost: Option<Tensor<B, 4>> = None;
        for (k, kind) in macs.iter().enumerate() {
            for (e, row) in kind.iter().enumerate() {
                let edge = weights.edge(k, e, 0);
                for (o, &m) in row.iter().enumerate() {
                    if let (true, Some(Some(wo))) = (m > 0.0, edge.weights.get(o)) {
                        let term = wo.clone().mul_scalar(m / largest);
                        cost = Some(match cost {
                            Some(c) => c + term,
                            None => term,
                        });
                    }
                }
            }
        }
        let Some(cost) = cost else {
            return;
        };
        let extra =
            GradientsParams::from_grads(cost.sum().mul_scalar(eta).backward(), &self.alphas);
        for p in &self.alphas.cells {
            if let Some(e) = extra.get::<B::InnerBackend, 2>(p.id) {
                add_grad::<B>(grads, p.id, e);
            }
        }
    }

    /// The alphas' gradients of one step (see [`alpha_gradient`](Self::alpha_gradient)), the
    /// validation loss and the correct validation predictions.
    fn alpha_grads(
        &self,
        train: &ImageBatch<B>,
        valid: &ImageBatch<B>,
        ctx: &StepContext,
        seed: u64,
    ) -> Result<(GradientsParams, f64, usize), SearchError> {
        let (mut grads, loss, correct) = match self.method.unrolled() {
            Some(u) => {
                let xi = u.xi.unwrap_or(ctx.learning_rate);
                self.unrolled_grads(train, valid, ctx, xi, u.epsilon, seed)?
            }
            None => {
                // The weights need no gradient here: only the alphas learn.
                let net = self.net.clone().no_grad();
                let w = self.weights_of(&self.alphas, false, ctx, mix_seed(seed, 1, 0));
                let logits = net.search_logits(valid.images.clone(), &w);
                let correct = count_correct(logits.clone(), valid.targets.clone());
                let loss = CrossEntropyLossConfig::new()
                    .init(&self.device)
                    .forward(logits, valid.targets.clone());
                let value = scalar(loss.clone());
                if !value.is_finite() {
                    return Err(self.diverged("validation loss", value));
                }
                let grads = GradientsParams::from_grads(loss.backward(), &self.alphas);
                (grads, value, correct)
            }
        };
        if ctx.beta_decay > 0.0 {
            self.add_beta_decay(&mut grads, ctx.beta_decay);
        }
        if self.config.alphas.resource_weight > 0.0 {
            // The same relaxed weights (Gumbel noise) as the first-order validation pass.
            self.add_resource_term(&mut grads, valid, ctx, mix_seed(seed, 1, 0));
        }
        Ok((grads, loss, correct))
    }

    /// Adds the gradient of β-DARTS' regularizer ([`ArchProbabilities::beta_decay_gradient`])
    /// to the alphas' gradients.
    fn add_beta_decay(&self, grads: &mut GradientsParams, lambda: f64) {
        let gradient = self.probabilities().beta_decay_gradient(lambda);
        for (p, table) in self.alphas.cells.iter().zip(&gradient) {
            let values: Vec<f32> = table.iter().flatten().map(|&g| g as f32).collect();
            let extra = Tensor::<B::InnerBackend, 2>::from_data(
                burn::tensor::TensorData::new(values, p.val().dims()),
                &self.device,
            );
            add_grad::<B>(grads, p.id, extra);
        }
    }

    /// DARTS' unrolled gradient of the alphas (`architect.py`, `_backward_step_unrolled`):
    /// `∇α L_val(w', α) − ξ · (∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / 2ε` with
    /// `w' = w − ξ(∇w L_train(w, α) + λw)`, `w± = w ± ε ∇w' L_val(w', α)` and
    /// `ε = epsilon / ‖∇w' L_val(w', α)‖`. (The reference also adds the SGD momentum buffer to
    /// the virtual step; the paper's equation, followed here, does not.) Both sides of the
    /// difference run with the ReLU activation pattern of `w` frozen
    /// ([`crate::probe::with_relu_masks`]): on a small network a step of `ε` flips some
    /// ReLUs, and each flip adds a jump divided by `2ε` (on the tiny NB201 supernet of
    /// `tests/darts_second_order.rs` the unfrozen difference was off by a factor of 6).
    /// Max pooling's choices are frozen the same way: unfrozen, the DARTS space's
    /// second-order gradient moved by 50 % (relative to its largest entry) between two correct
    /// CPU implementations that round differently (`examples/gpu_check.rs`).
    fn unrolled_grads(
        &self,
        train: &ImageBatch<B>,
        valid: &ImageBatch<B>,
        ctx: &StepContext,
        xi: f64,
        epsilon: f64,
        seed: u64,
    ) -> Result<(GradientsParams, f64, usize), SearchError> {
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        // ∇w L_train(w, α), alphas fixed.
        let w = self.weights_of(&self.alphas, true, ctx, mix_seed(seed, 3, 0));
        // The ReLUs' activation pattern at (w, α), frozen for the finite difference below.
        let (logits, masks) =
            crate::probe::record_relu_masks(|| self.net.search_logits(train.images.clone(), &w));
        let loss = loss_fn.forward(logits, train.targets.clone());
        let value = scalar(loss.clone());
        if !value.is_finite() {
            return Err(self.diverged("training loss (unrolling)", value));
        }
        let g = GradientsParams::from_grads(loss.backward(), &self.net);
        let unrolled = self.net.clone().map(&mut Shift::<B> {
            grads: &g,
            scale: -xi,
            decay: self.config.weights.weight_decay,
            require_grad: true,
            _b: std::marker::PhantomData,
        });

        // L_val(w', α): gradients for the alphas and for w'.
        let w = self.weights_of(&self.alphas, false, ctx, mix_seed(seed, 4, 0));
        let logits = unrolled.search_logits(valid.images.clone(), &w);
        let correct = count_correct(logits.clone(), valid.targets.clone());
        let loss = loss_fn.forward(logits, valid.targets.clone());
        let loss_value = scalar(loss.clone());
        if !loss_value.is_finite() {
            return Err(self.diverged("validation loss (unrolled)", loss_value));
        }
        let mut grads = loss.backward();
        let d_alpha = GradientsParams::from_module(&mut grads, &self.alphas);
        let d_w = GradientsParams::from_module(&mut grads, &unrolled);
        let norm = global_norm::<B, _>(&d_w, &unrolled);
        if !norm.is_finite() {
            return Err(self.diverged("unrolled weights' gradient norm", norm));
        }

        // Hessian-vector product by central differences.
        let hvp = if norm > 0.0 {
            let r = epsilon / norm;
            let alpha_grad_at = |scale: f64| {
                let net = self.net.clone().map(&mut Shift::<B> {
                    grads: &d_w,
                    scale,
                    decay: 0.0,
                    require_grad: false,
                    _b: std::marker::PhantomData,
                });
                // The same noise and masks for both sides of the difference.
                let w = self.weights_of(&self.alphas, false, ctx, mix_seed(seed, 3, 1));
                // With the activation pattern of w: the network is smooth in its weights
                // there, as double backward treats it; otherwise every ReLU whose sign flips
                // within the step adds a jump / 2r to the difference.
                let (logits, _) = crate::probe::with_relu_masks(&masks, || {
                    net.search_logits(train.images.clone(), &w)
                });
                let loss = loss_fn.forward(logits, train.targets.clone());
                GradientsParams::from_grads(loss.backward(), &self.alphas)
            };
            let plus = alpha_grad_at(r);
            let minus = alpha_grad_at(-r);
            Some((plus, minus, r))
        } else {
            None
        };
        let mut out = GradientsParams::new();
        for p in &self.alphas.cells {
            let Some(da) = d_alpha.get::<B::InnerBackend, 2>(p.id) else {
                continue;
            };
            let g = match &hvp {
                Some((plus, minus, r)) => {
                    match (
                        plus.get::<B::InnerBackend, 2>(p.id),
                        minus.get::<B::InnerBackend, 2>(p.id),
                    ) {
                        (Some(gp), Some(gm)) => da - (gp - gm).mul_scalar(xi / (2.0 * r)),
                        _ => da,
                    }
                }
                None => da,
            };
            out.register::<B::InnerBackend, 2>(p.id, g);
        }
        Ok((out, loss_value, correct))
    }

    /// Runs the whole search on `data` (the training set: it is split into the weights' and
    /// the alphas' halves), calling `observer` after every epoch. On
    /// [`SearchError::Diverged`] the searcher keeps the last good alphas and weights.
    ///
    /// To checkpoint and resume, drive [`Searcher::epochs`] with a [`crate::driver::Driver`]
    /// instead.
    pub fn run(
        &mut self,
        data: &ImageDataset,
        mut observer: impl FnMut(&EpochReport),
    ) -> Result<SearchReport<S::Arch>, SearchError> {
        let mut epochs = self.epochs(data)?;
        let mut driver = crate::driver::Driver::new(&mut epochs)
            .observer(|_: usize, r: &EpochReport| observer(r));
        driver.run().map_err(SearchError::from_driver)?;
        let history = driver.into_history();
        Ok(epochs.report(history))
    }

    /// Begins `stage` (≥ 1): the method's stage hook (P-DARTS keeps the strongest operations
    /// of every edge), then the supernet of the stage with the alive operations, fresh alphas
    /// and fresh optimizers.
    pub(super) fn next_stage(&mut self, stage: usize) -> Result<(), SearchError> {
        let probs = self.probabilities();
        self.method.next_stage(stage, &probs, &mut self.mask);
        let extra = self.method.extra_cells(stage);
        let seed = mix_seed(self.config.seed, stage as u64, 4);
        self.net = seeded(&self.device, seed, || {
            self.builder.build(extra, &self.mask, &self.device)
        })?;
        self.alphas = Alphas::new(
            &self.layout,
            self.config.alphas.init_std,
            mix_seed(seed, 0, 3),
            &self.device,
        );
        let (w, a) = optimizers(&self.config);
        self.w_optim = w;
        self.a_optim = a;
        Ok(())
    }
}

pub(super) fn optimizers<B: AutodiffBackend, N: AutodiffModule<B>>(
    config: &SearchConfig,
) -> (WeightOptim<B, N>, AlphaOptim<B>) {
    let w = &config.weights;
    let momentum = MomentumConfig::new()
        .with_momentum(w.momentum)
        .with_dampening(0.0);
    let sgd = SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay(Some(WeightDecayConfig::new(w.weight_decay as f32)))
        .init::<B, N>();
    let a = &config.alphas;
    let adam = AdamConfig::new()
        .with_beta_1(a.beta1 as f32)
        .with_beta_2(a.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(a.weight_decay as f32)))
        .init::<B, Alphas<B>>();
    (sgd, adam)
}

pub(super) fn max_opt(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Maps every parameter `p` that has a gradient `g` to `p + scale · (g + decay · p)` (same
/// parameter id), tracked by autodiff when `require_grad`; other parameters are unchanged.
struct Shift<'a, B> {
    grads: &'a GradientsParams,
    scale: f64,
    decay: f64,
    require_grad: bool,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Shift<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let p = tensor.inner();
        let step = if self.decay != 0.0 {
            g + p.clone().mul_scalar(self.decay)
        } else {
            g
        };
        let mut t = Tensor::<B, D>::from_inner(p + step.mul_scalar(self.scale));
        if self.require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}
