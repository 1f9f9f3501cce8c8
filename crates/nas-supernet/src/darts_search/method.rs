//! The search methods: how alphas weight the operations, and their schedules.
//!
//! | method | relaxation | alphas' gradient | schedule | source of the defaults |
//! | --- | --- | --- | --- | --- |
//! | [`Method::Darts`] | softmax | first order: `∇α L_val(w, α)` | — | DARTS (Liu et al., ICLR 2019) |
//! | [`Method::Darts2`] | softmax | second order: `∇α L_val(w − ξ∇w L_train(w, α), α)`, Hessian-vector product by finite differences, ReLU activation patterns frozen at `w` | — | DARTS, `architect.py` of `quark0/darts` (ε = 0.01 / ‖∇w'L_val‖) |
//! | [`Method::Gdas`] | hard Gumbel-softmax, straight-through; only the sampled operation is computed (with `dense_gradient`: every operation in the alpha step, for the paper's gradient) | first order | τ linear from 10 to 0.1 over the epochs | GDAS (Dong and Yang, CVPR 2019), AutoDL-Projects |
//! | [`Method::Snas`] | soft Gumbel-softmax | first order | τ exponential from 1 to 0.33 | SNAS (Xie et al., ICLR 2019); 0.33 as in ConfOpt's SNAS sampler |
//! | [`Method::Asap`] | softmax(α / τ), pruned operations masked | first order | τ = 1.6 · 0.95^epoch; after every alpha step (as the paper does; `every_step: false`: at each epoch start, as UniNAS does), operations whose weight is below 0.4 / N (N candidates on the edge) are pruned | ASAP (Noy et al., AISTATS 2020) |
//! | [`Method::Pdarts`] | softmax; dropout on skip connections | first order | stages of growing depth; weakest operations dropped between stages; at most `max_skip` skip connections in the derived normal cell | P-DARTS (Chen et al., ICCV 2019), `chenxin061/pdarts` |
//!
//! Every method runs in the same bi-level driver ([`super::Searcher`]): the weights learn on
//! one half of the training data, the alphas on the other. (SNAS trains both on the same data
//! in its paper; here it shares the bi-level split of the others.)
//!
//! A method is a [`SearchMethod`]: the relaxation that turns the alphas into operation weights
//! each step, the per-epoch schedule ([`EpochPlan`]), and hooks after alpha steps and before
//! epochs (ASAP's pruning) and stages (P-DARTS). [`Method`] names the built-in ones in a configuration file. A new
//! relaxation is a type of your own crate:
//!
//! ```
//! use nas_supernet::backend::DefaultBackend;
//! use nas_supernet::burn::tensor::{Tensor, activation::softmax, backend::Backend};
//! use nas_supernet::darts_search::method::{EpochAt, EpochPlan, SearchMethod};
//! use nas_supernet::darts_search::supernet::{Nb201SupernetConfig, SupernetConfig};
//! use nas_supernet::darts_search::{ArchMask, ArchWeights, SearchConfig, Searcher};
//! use nas_supernet::data::ImageDataset;
//!
//! /// Softmax with a temperature that halves every epoch, and a uniform floor on every weight.
//! #[derive(Debug)]
//! struct Floored {
//!     floor: f64,
//! }
//!
//! impl<B: Backend> SearchMethod<B> for Floored {
//!     fn name(&self) -> String {
//!         "floored".into()
//!     }
//!     fn plan(&self, at: EpochAt) -> EpochPlan {
//!         EpochPlan { tau: 0.5f64.powi(at.epoch as i32), ..EpochPlan::default() }
//!     }
//!     fn weights(
//!         &self,
//!         alphas: &[Tensor<B, 2>],
//!         mask: &ArchMask,
//!         plan: &EpochPlan,
//!         seed: u64,
//!     ) -> ArchWeights<B> {
//!         let probs = ArchWeights::masked_logits(alphas, mask)
//!             .into_iter()
//!             .map(|logits| {
//!                 let p = softmax(logits.div_scalar(plan.tau), 1);
//!                 p.mul_scalar(1.0 - self.floor).add_scalar(self.floor / 5.0)
//!             })
//!             .collect();
//!         ArchWeights::from_probabilities(probs, None, mask, plan.skip_dropout, seed)
//!     }
//! }
//!
//! let space = SupernetConfig::Nb201(Nb201SupernetConfig {
//!     channels: 4,
//!     cells_per_stage: 1,
//!     in_channels: 1,
//!     num_classes: 10,
//! });
//! let config = SearchConfig { epochs: 2, batch_size: 64, ..SearchConfig::default() };
//! let mut searcher = Searcher::<DefaultBackend, _>::with_method(
//!     space,
//!     config,
//!     Floored { floor: 0.1 },
//!     Default::default(),
//! )?;
//! let report = searcher.run(&ImageDataset::digits().sample(256, 0), |_| {})?;
//! assert_eq!(report.epochs[1].tau, 0.5);
//! println!("{}", report.derived);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::SearchError;
use super::alphas::{Alphas, ArchMask, ArchProbabilities, ArchWeights, Relaxation, argmax_alive};

/// Second-order DARTS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnrolledConfig {
    /// Step ξ of the virtual weight update `w' = w − ξ(∇w L_train + λw)`; `None`: the current
    /// weight learning rate, as in DARTS.
    pub xi: Option<f64>,
    /// The finite-difference step is `epsilon / ‖∇w' L_val(w', α)‖` (DARTS: 0.01).
    pub epsilon: f64,
}

impl Default for UnrolledConfig {
    fn default() -> Self {
        Self {
            xi: None,
            epsilon: 0.01,
        }
    }
}

/// Gumbel-softmax temperatures, annealed from `tau_max` (first epoch) to `tau_min` (last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GumbelConfig {
    /// Temperature of the first epoch.
    pub tau_max: f64,
    /// Temperature of the last epoch.
    pub tau_min: f64,
    /// GDAS only: compute every operation in the alpha step, so that each operation's
    /// straight-through gradient is `⟨∂L/∂node, op(x)⟩` as in the paper's equation
    /// ([`Relaxation::GumbelHardDense`]), instead of the reference code's shortcut, which
    /// computes only the sampled operation and gives the others a gradient that does not
    /// depend on them. Costs an alpha step about what a DARTS step costs; the weight step
    /// still computes one operation per edge. `false` (the default): the reference code.
    /// (Left out of the serialized configuration when false.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub dense_gradient: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// ASAP settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsapConfig {
    /// Initial temperature τ0.
    pub tau0: f64,
    /// Annealing factor per epoch: τ = τ0 · β^epoch.
    pub beta: f64,
    /// An operation is pruned when its weight falls below `threshold / N`, N the number of
    /// candidate operations of its edge (the paper's 0.4).
    pub threshold: f64,
    /// Prune after every alpha step, as the paper does (`true`, the default), or only at the
    /// start of each epoch, as UniNAS does (`false`).
    #[serde(default = "every_step_default")]
    pub every_step: bool,
}

fn every_step_default() -> bool {
    true
}

impl Default for AsapConfig {
    fn default() -> Self {
        Self {
            tau0: 1.6,
            beta: 0.95,
            threshold: 0.4,
            every_step: true,
        }
    }
}

/// P-DARTS settings: one entry per stage in `add_cells` and `skip_dropout`, one per stage
/// transition in `keep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdartsConfig {
    /// Cells added to the configured depth in each stage (DARTS space: to `layers`;
    /// NAS-Bench-201: to `cells_per_stage`). The paper: 0, 6, 12 (5, 11, 17 cells).
    pub add_cells: Vec<usize>,
    /// Operations kept per edge after each stage but the last (the paper: 5, then 3).
    pub keep: Vec<usize>,
    /// Dropout probability on skip connections in each stage (the paper on CIFAR-10: 0, 0.4,
    /// 0.7), decayed within the stage.
    pub skip_dropout: Vec<f64>,
    /// Epochs at the start of each stage that train only the weights (the code: 10 of 25).
    pub warmup_epochs: usize,
    /// After the warm-up the dropout is `p · exp(−decay · (epoch − warmup))` (the code: 0.2);
    /// during it, `p · (epochs − epoch − 1) / epochs`.
    pub dropout_decay: f64,
    /// The most skip connections allowed in the derived normal cell (the paper: 2).
    pub max_skip: Option<usize>,
}

impl Default for PdartsConfig {
    fn default() -> Self {
        Self {
            add_cells: vec![0, 6, 12],
            keep: vec![5, 3],
            skip_dropout: vec![0.0, 0.4, 0.7],
            warmup_epochs: 10,
            dropout_decay: 0.2,
            max_skip: Some(2),
        }
    }
}

/// A differentiable search method (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Method {
    /// First-order DARTS.
    Darts,
    /// Second-order (unrolled) DARTS.
    Darts2(UnrolledConfig),
    /// GDAS.
    Gdas(GumbelConfig),
    /// SNAS.
    Snas(GumbelConfig),
    /// ASAP.
    Asap(AsapConfig),
    /// P-DARTS.
    Pdarts(PdartsConfig),
}

impl Method {
    /// The names accepted by [`Method::from_name`].
    pub const NAMES: [&'static str; 6] = ["darts", "darts2", "gdas", "snas", "asap", "pdarts"];

    /// The method called `name` with its papers' defaults.
    pub fn from_name(name: &str) -> Result<Self, SearchError> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "darts" => Method::Darts,
            "darts2" => Method::Darts2(UnrolledConfig::default()),
            "gdas" => Method::Gdas(GumbelConfig {
                tau_max: 10.0,
                tau_min: 0.1,
                dense_gradient: false,
            }),
            "snas" => Method::Snas(GumbelConfig {
                tau_max: 1.0,
                tau_min: 0.33,
                dense_gradient: false,
            }),
            "asap" => Method::Asap(AsapConfig::default()),
            "pdarts" => Method::Pdarts(PdartsConfig::default()),
            other => {
                return Err(SearchError::InvalidConfig {
                    field: "method",
                    reason: format!(
                        "unknown method `{other}`: expected one of {}",
                        Self::NAMES.join(", ")
                    ),
                });
            }
        })
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Darts => "darts",
            Method::Darts2(_) => "darts2",
            Method::Gdas(_) => "gdas",
            Method::Snas(_) => "snas",
            Method::Asap(_) => "asap",
            Method::Pdarts(_) => "pdarts",
        }
    }

    /// The built-in [`SearchMethod`] this names.
    pub fn to_method<B: Backend>(&self) -> Box<dyn SearchMethod<B>> {
        match self {
            Method::Darts => Box::new(Darts),
            Method::Darts2(u) => Box::new(Darts2(u.clone())),
            Method::Gdas(g) => Box::new(Gdas(g.clone())),
            Method::Snas(g) => Box::new(Snas(g.clone())),
            Method::Asap(a) => Box::new(Asap(a.clone())),
            Method::Pdarts(p) => Box::new(Pdarts(p.clone())),
        }
    }

    /// Checks the method's settings; the error names the field.
    pub fn check(&self) -> Result<(), SearchError> {
        match self {
            Method::Darts => Ok(()),
            Method::Darts2(u) => check_unrolled(u),
            Method::Gdas(g) => check_gumbel(g),
            Method::Snas(g) => {
                if g.dense_gradient {
                    return bad(
                        "dense_gradient",
                        "applies to GDAS only (SNAS' soft weights compute every operation \
                         anyway); set it to false",
                    );
                }
                check_gumbel(g)
            }
            Method::Asap(a) => check_asap(a),
            Method::Pdarts(p) => check_pdarts(p),
        }
    }

    /// The number of stages (P-DARTS: one per entry of `add_cells`; the others: 1).
    pub fn stages(&self) -> usize {
        match self {
            Method::Pdarts(p) => p.add_cells.len().max(1),
            _ => 1,
        }
    }
}

/// Where a search stands when a [`SearchMethod`] is asked for its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochAt {
    /// Stage (P-DARTS; 0 for single-stage methods).
    pub stage: usize,
    /// Epoch within the stage (0-based).
    pub epoch: usize,
    /// Epochs per stage.
    pub epochs: usize,
}

impl EpochAt {
    /// The position of the epoch in the stage, from 0 (first) to 1 (last).
    pub fn progress(&self) -> f64 {
        if self.epochs > 1 {
            self.epoch as f64 / (self.epochs - 1) as f64
        } else {
            0.0
        }
    }
}

/// The settings of one epoch of a differentiable search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPlan {
    /// The relaxation's temperature (reported in [`super::EpochReport::tau`]).
    pub tau: f64,
    /// Dropout probability on skip connections (P-DARTS; 0: off).
    pub skip_dropout: f64,
    /// Whether the alphas learn in this epoch.
    pub update_alphas: bool,
}

impl Default for EpochPlan {
    /// τ = 1, no dropout, the alphas learn.
    fn default() -> Self {
        Self {
            tau: 1.0,
            skip_dropout: 0.0,
            update_alphas: true,
        }
    }
}

/// A differentiable search method: how the alphas become operation weights each step, its
/// schedules, and its hooks between epochs and stages. The six built-in methods ([`Darts`],
/// [`Darts2`], [`Gdas`], [`Snas`], [`Asap`], [`Pdarts`]) implement it; [`Method`] names them
/// in a configuration. A new relaxation implements it in its own crate and runs with
/// [`super::Searcher::with_method`] (see the [module documentation](self)).
///
/// Every method runs in the same bi-level driver; the default implementations describe
/// first-order DARTS.
pub trait SearchMethod<B: Backend>: fmt::Debug + Send {
    /// The method's name (in reports and checkpoints).
    fn name(&self) -> String;

    /// The method's settings, recorded in checkpoints so that a resumed search refuses
    /// different ones (default: none).
    fn settings(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Checks the settings; the error names the field.
    fn check(&self) -> Result<(), SearchError> {
        Ok(())
    }

    /// The number of stages (each of `epochs` epochs; default 1).
    fn stages(&self) -> usize {
        1
    }

    /// Cells added to the configured depth in `stage` (default 0).
    fn extra_cells(&self, _stage: usize) -> usize {
        0
    }

    /// The second-order (unrolled) gradient's settings, or `None` for the first-order gradient
    /// `∇α L_val(w, α)` (default).
    fn unrolled(&self) -> Option<UnrolledConfig> {
        None
    }

    /// The settings of epoch `at` (default: [`EpochPlan::default`]).
    fn plan(&self, _at: EpochAt) -> EpochPlan {
        EpochPlan::default()
    }

    /// Which built-in relaxation the default [`SearchMethod::weights`] applies with the
    /// epoch's plan (default: `softmax(α / τ)` over the alive operations).
    fn relaxation(&self, plan: &EpochPlan) -> Relaxation {
        Relaxation::Softmax { tau: plan.tau }
    }

    /// The operation weights of one forward pass from the alphas (`[kind]` → `[edges, ops]`;
    /// gradients flow back into them), the mask of alive operations and the epoch's plan.
    /// Random draws (noise, dropout masks) must come from generators seeded with `seed`, so
    /// that searches repeat. Default: the [`SearchMethod::relaxation`] of the plan. Override
    /// it for a relaxation of your own.
    fn weights(
        &self,
        alphas: &[Tensor<B, 2>],
        mask: &ArchMask,
        plan: &EpochPlan,
        seed: u64,
    ) -> ArchWeights<B> {
        let relaxation = self.relaxation(plan);
        ArchWeights::new(alphas, mask, relaxation, plan.skip_dropout, seed)
    }

    /// Called before every epoch but the first of a stage with the current alphas
    /// (`[kind][edge][op]`); may mask operations (ASAP prunes the weak ones). Default: nothing.
    fn begin_epoch(&self, _at: EpochAt, _alphas: &[Vec<Vec<f32>>], _mask: &mut ArchMask) {}

    /// Called after every step that updated the alphas, with the alphas after it; may mask
    /// operations (ASAP prunes the weak ones at every step). Default: nothing. Read the alphas
    /// (`alphas.to_tables()`) only when needed: it copies them from the device.
    fn after_step(&self, _at: EpochAt, _alphas: &Alphas<B>, _mask: &mut ArchMask) {}

    /// Called before `stage` (≥ 1) begins, with the probabilities at the end of the previous
    /// stage; may mask operations (P-DARTS keeps the strongest). The searcher then builds the
    /// supernet of the stage, with fresh alphas and optimizers. Default: nothing.
    fn next_stage(&self, _stage: usize, _probabilities: &ArchProbabilities, _mask: &mut ArchMask) {}

    /// The cap on skip connections in the derived architecture (default: none).
    fn max_skip(&self) -> Option<usize> {
        None
    }
}

/// First-order DARTS: `softmax(α)`, first-order gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Darts;

impl<B: Backend> SearchMethod<B> for Darts {
    fn name(&self) -> String {
        "darts".into()
    }
}

/// Second-order DARTS: `softmax(α)`, the unrolled gradient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Darts2(pub UnrolledConfig);

impl<B: Backend> SearchMethod<B> for Darts2 {
    fn name(&self) -> String {
        "darts2".into()
    }
    fn settings(&self) -> serde_json::Value {
        settings_of(&self.0)
    }
    fn check(&self) -> Result<(), SearchError> {
        check_unrolled(&self.0)
    }
    fn unrolled(&self) -> Option<UnrolledConfig> {
        Some(self.0.clone())
    }
}

fn check_unrolled(u: &UnrolledConfig) -> Result<(), SearchError> {
    if u.xi.is_some_and(|x| !(x >= 0.0 && x.is_finite())) {
        return bad("xi", "must be ≥ 0 and finite");
    }
    if !positive(u.epsilon) {
        return bad("epsilon", "must be positive and finite");
    }
    Ok(())
}

fn check_gumbel(g: &GumbelConfig) -> Result<(), SearchError> {
    if !positive(g.tau_max) || !positive(g.tau_min) || g.tau_min > g.tau_max {
        return bad("tau", "needs 0 < tau_min ≤ tau_max, both finite");
    }
    Ok(())
}

/// GDAS: hard Gumbel-softmax with the straight-through gradient, τ linear from `tau_max` to
/// `tau_min`; only the sampled operation of an edge is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gdas(pub GumbelConfig);

impl<B: Backend> SearchMethod<B> for Gdas {
    fn name(&self) -> String {
        "gdas".into()
    }
    fn settings(&self) -> serde_json::Value {
        settings_of(&self.0)
    }
    fn check(&self) -> Result<(), SearchError> {
        check_gumbel(&self.0)
    }
    fn plan(&self, at: EpochAt) -> EpochPlan {
        let g = &self.0;
        EpochPlan {
            tau: g.tau_max - (g.tau_max - g.tau_min) * at.progress(),
            ..EpochPlan::default()
        }
    }
    fn relaxation(&self, plan: &EpochPlan) -> Relaxation {
        if self.0.dense_gradient {
            Relaxation::GumbelHardDense { tau: plan.tau }
        } else {
            Relaxation::GumbelHard { tau: plan.tau }
        }
    }
}

/// SNAS: soft Gumbel-softmax, τ exponential from `tau_max` to `tau_min`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snas(pub GumbelConfig);

impl<B: Backend> SearchMethod<B> for Snas {
    fn name(&self) -> String {
        "snas".into()
    }
    fn settings(&self) -> serde_json::Value {
        settings_of(&self.0)
    }
    fn check(&self) -> Result<(), SearchError> {
        check_gumbel(&self.0)
    }
    fn plan(&self, at: EpochAt) -> EpochPlan {
        let g = &self.0;
        EpochPlan {
            tau: g.tau_max * (g.tau_min / g.tau_max).powf(at.progress()),
            ..EpochPlan::default()
        }
    }
    fn relaxation(&self, plan: &EpochPlan) -> Relaxation {
        Relaxation::GumbelSoft { tau: plan.tau }
    }
}

/// ASAP: `softmax(α / τ)` with τ = τ0 · β^epoch; before every epoch but the first, the
/// operations whose weight is below `threshold / N` are pruned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Asap(pub AsapConfig);

impl Asap {
    fn tau(&self, epoch: usize) -> f64 {
        self.0.tau0 * self.0.beta.powi(epoch as i32)
    }
}

impl<B: Backend> SearchMethod<B> for Asap {
    fn name(&self) -> String {
        "asap".into()
    }
    fn settings(&self) -> serde_json::Value {
        settings_of(&self.0)
    }
    fn check(&self) -> Result<(), SearchError> {
        check_asap(&self.0)
    }
    fn plan(&self, at: EpochAt) -> EpochPlan {
        EpochPlan {
            tau: self.tau(at.epoch),
            ..EpochPlan::default()
        }
    }
    /// Masks the operations whose weight `softmax(α / τ)` is below `threshold / N`, keeping
    /// at least the strongest operation of every edge.
    fn begin_epoch(&self, at: EpochAt, alphas: &[Vec<Vec<f32>>], mask: &mut ArchMask) {
        self.prune(at, alphas, mask);
    }
    /// With [`AsapConfig::every_step`], prunes as [`begin_epoch`](SearchMethod::begin_epoch)
    /// after every alpha step.
    fn after_step(&self, at: EpochAt, alphas: &Alphas<B>, mask: &mut ArchMask) {
        if self.0.every_step {
            self.prune(at, &alphas.to_tables(), mask);
        }
    }
}

impl Asap {
    fn prune(&self, at: EpochAt, alphas: &[Vec<Vec<f32>>], mask: &mut ArchMask) {
        let tau = self.tau(at.epoch);
        let scaled: Vec<Vec<Vec<f32>>> = alphas
            .iter()
            .map(|c| {
                c.iter()
                    .map(|e| e.iter().map(|&a| (f64::from(a) / tau) as f32).collect())
                    .collect()
            })
            .collect();
        let probs = ArchProbabilities::from_tables(&scaled, mask);
        for (k, cell) in probs.cells.iter().enumerate() {
            for (e, row) in cell.iter().enumerate() {
                let limit = self.0.threshold / row.len().max(1) as f64;
                let best = argmax_alive(&row.iter().map(|&p| p as f32).collect::<Vec<_>>(), |o| {
                    mask.alive(k, e, o)
                });
                for (o, &p) in row.iter().enumerate() {
                    if o != best && p < limit {
                        mask.cells[k][e][o] = false;
                    }
                }
            }
        }
    }
}

/// P-DARTS: `softmax(α)` with dropout on skip connections, in stages of growing depth; the
/// weakest operations are dropped between stages, and the derived normal cell has at most
/// `max_skip` skip connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pdarts(pub PdartsConfig);

impl<B: Backend> SearchMethod<B> for Pdarts {
    fn name(&self) -> String {
        "pdarts".into()
    }
    fn settings(&self) -> serde_json::Value {
        settings_of(&self.0)
    }
    fn check(&self) -> Result<(), SearchError> {
        check_pdarts(&self.0)
    }
    fn stages(&self) -> usize {
        self.0.add_cells.len().max(1)
    }
    fn extra_cells(&self, stage: usize) -> usize {
        self.0.add_cells.get(stage).copied().unwrap_or(0)
    }
    fn plan(&self, at: EpochAt) -> EpochPlan {
        let p = &self.0;
        let base = p.skip_dropout.get(at.stage).copied().unwrap_or(0.0);
        let (epoch, epochs) = (at.epoch, at.epochs);
        let skip_dropout = if epoch < p.warmup_epochs {
            base * (epochs.saturating_sub(epoch + 1)) as f64 / epochs.max(1) as f64
        } else {
            base * (-(p.dropout_decay) * (epoch - p.warmup_epochs) as f64).exp()
        };
        EpochPlan {
            tau: 1.0,
            skip_dropout,
            update_alphas: epoch >= p.warmup_epochs,
        }
    }
    /// Keeps the strongest `keep[stage - 1]` operations of every edge.
    fn next_stage(&self, stage: usize, probabilities: &ArchProbabilities, mask: &mut ArchMask) {
        let Some(&keep) = self.0.keep.get(stage.wrapping_sub(1)) else {
            return;
        };
        for (k, cell) in probabilities.cells.iter().enumerate() {
            for (e, row) in cell.iter().enumerate() {
                let mut order: Vec<usize> =
                    (0..row.len()).filter(|&o| mask.alive(k, e, o)).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                for &o in order.iter().skip(keep) {
                    mask.cells[k][e][o] = false;
                }
            }
        }
    }
    fn max_skip(&self) -> Option<usize> {
        self.0.max_skip
    }
}

fn bad(field: &'static str, reason: &str) -> Result<(), SearchError> {
    Err(SearchError::InvalidConfig {
        field,
        reason: reason.to_string(),
    })
}

fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

fn check_asap(a: &AsapConfig) -> Result<(), SearchError> {
    if !positive(a.tau0) {
        return bad("tau0", "must be positive and finite");
    }
    if !(a.beta > 0.0 && a.beta <= 1.0) {
        return bad("beta", "must be in (0, 1]");
    }
    if !(0.0..1.0).contains(&a.threshold) {
        return bad("threshold", "must be in [0, 1)");
    }
    Ok(())
}

fn check_pdarts(p: &PdartsConfig) -> Result<(), SearchError> {
    if p.add_cells.is_empty() {
        return bad("add_cells", "needs one entry per stage (at least one)");
    }
    if p.skip_dropout.len() != p.add_cells.len() {
        return bad("skip_dropout", "needs one entry per stage, as add_cells");
    }
    if p.keep.len() + 1 != p.add_cells.len() {
        return bad(
            "keep",
            "needs one entry per stage transition (one fewer than add_cells)",
        );
    }
    if p.keep.contains(&0) {
        return bad("keep", "must keep at least one operation per edge");
    }
    if p.skip_dropout.iter().any(|d| !(0.0..1.0).contains(d)) {
        return bad("skip_dropout", "must be in [0, 1)");
    }
    if !(p.dropout_decay >= 0.0 && p.dropout_decay.is_finite()) {
        return bad("dropout_decay", "must be ≥ 0");
    }
    Ok(())
}

/// A built-in method's settings as JSON (for the checkpoint fingerprint).
fn settings_of(settings: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(settings).unwrap_or_default()
}
