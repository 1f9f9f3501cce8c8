//! Search strategies with an ask/tell interface, and a search loop on top.
//!
//! A [`Strategy`] proposes architectures ([`Strategy::ask`]) and learns from their outcomes
//! ([`Strategy::tell`]); it never evaluates anything itself, because evaluations take minutes
//! to hours and may run elsewhere. [`search::Search`] is the loop that pairs a strategy with an
//! [`nas_estimate::Estimator`] (or one estimator per worker thread), with stopping rules, a
//! journal to resume from and [`observe`]rs; [`search::run`] is its shortest form.
//!
//! Strategies own a seeded random number generator, so the same seed gives the same search,
//! and their state serializes (serde), so a saved search resumes with the same proposals.
//!
//! Strategies: [`RandomSearch`], [`RegularizedEvolution`], Gaussian-process
//! [`BayesianOptimization`] (kernels in [`kernel`]), the multi-fidelity [`Hyperband`] and
//! [`Bohb`], the predictor-based [`Bananas`] (an ensemble of MLPs on the path encoding,
//! [`predictor`]) and [`Pnas`] (cells grown block by block, [`Progressive`]), the
//! reinforcement-learning [`Reinforce`] and [`Ppo`] with an LSTM [`controller`]
//! in Burn, and SPOS's evolutionary search over a trained supernet ([`SposEvolution`]).
//! Wrappers for any strategy: [`Dedup`] and [`RetryFailures`] ([`wrappers`]), [`Constrained`]
//! (a hardware budget such as a FLOPs limit); the median stopping rule is a [`Pruner`] that a
//! training estimator consults every epoch ([`pruner`]).
//!
//! [`report::Report`] turns a search's trials into an HTML page with SVG figures (best so far,
//! the best architecture's diagram, the Pareto front, the table of trials).
//!
//! The strategies that hold tensors (the LSTM controller, REINFORCE, PPO, ENAS) need Burn and
//! sit behind the default `burn` feature; with `default-features = false` the crate builds
//! without any Burn crate.
#![warn(missing_docs)]

pub mod bananas;
pub mod bo;
pub mod bohb;
#[cfg(feature = "burn")]
pub mod controller;
pub mod curve;
#[cfg(feature = "burn")]
pub mod enas;
pub mod error;
pub mod evolution;
mod gp;
pub mod hyperband;
pub mod kernel;
pub mod observe;
mod pending;
pub mod pnas;
pub mod predictor;
pub mod pruner;
pub mod random;
mod record;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "burn")]
pub mod rl;
pub mod rng_serde;
pub mod search;
pub mod spos_evolution;
#[cfg(feature = "postgres")]
pub mod study;
mod trial;
pub mod wrappers;

pub use bananas::{Acquisition, Bananas, BananasConfig};
pub use bo::{BayesianOptimization, BayesianOptimizationConfig, TargetTransform};
pub use bohb::{Bohb, BohbConfig};
pub use curve::{LearningCurveConfig, LearningCurvePruner};
#[cfg(feature = "burn")]
pub use enas::{Enas, EnasConfig, EnasDerived, EnasEpoch, EnasError};
pub use error::StrategyError;
pub use evolution::{RegularizedEvolution, RegularizedEvolutionConfig};
pub use hyperband::{Evaluation, Hyperband, HyperbandConfig, Rung};
pub use kernel::{ArchKernel, Hamming, WeisfeilerLehman};
pub use pending::Pending;
pub use pnas::{NasNetCells, Pnas, PnasConfig, Progressive};
pub use pruner::{
    MedianStopping, MedianStoppingConfig, Pruner, Stage, StageStopping, StageStoppingConfig,
    Threshold,
};
pub use random::{RandomSearch, strictly_fair};
#[cfg(feature = "burn")]
pub use rl::{Ppo, PpoConfig, Reinforce, ReinforceConfig};
pub use search::Search;
pub use spos_evolution::{Constrained, SposEvolution, SposEvolutionConfig};
pub use trial::{Outcome, Trial, TrialId};
pub use wrappers::{Dedup, RetryConfig, RetryFailures};

use nas_space::SearchSpace;

/// A search strategy: proposes architectures and learns from their outcomes.
///
/// `ask` may be called several times before the matching `tell`s (parallel workers); every
/// trial handed out must eventually be told, as complete, pruned or failed.
///
/// # A complete custom strategy
///
/// A greedy local search: mutate the best architecture seen so far.
///
/// ```
/// use nas_space::{Mutate, SearchSpace, nb201::Nb201Space};
/// use nas_strategy::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};
/// use rand::{SeedableRng, rngs::ChaCha8Rng};
///
/// struct Greedy<S: SearchSpace> {
///     rng: ChaCha8Rng,
///     pending: Pending<S::Arch>,
///     best: Option<(S::Arch, f64)>,
/// }
///
/// impl<S: Mutate> Strategy<S> for Greedy<S> {
///     fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
///         let arch = match &self.best {
///             Some((a, _)) => space.mutate(a, &mut self.rng)?,
///             None => space.sample(&mut self.rng),
///         };
///         Ok(self.pending.open(arch))
///     }
///
///     fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
///         let arch = self.pending.close(id)?;
///         if let Outcome::Complete(m) = outcome {
///             if self.best.as_ref().is_none_or(|(_, v)| m.objective > *v) {
///                 self.best = Some((arch, m.objective));
///             }
///         }
///         Ok(())
///     }
/// }
///
/// let space = Nb201Space::default();
/// let mut greedy: Greedy<Nb201Space> = Greedy { rng: ChaCha8Rng::seed_from_u64(1), pending: Pending::default(), best: None };
/// // Objective: number of 3x3 convolutions.
/// for _ in 0..100 {
///     let trial = greedy.ask(&space)?;
///     let score = trial.arch.edges.iter().filter(|o| o.name() == "nor_conv_3x3").count();
///     greedy.tell(trial.id, Outcome::Complete(nas_estimate::Metrics::new(score as f64)))?;
/// }
/// assert!(greedy.best.unwrap().1 >= 4.0);
/// # Ok::<(), StrategyError>(())
/// ```
pub trait Strategy<S: SearchSpace> {
    /// Proposes the next architecture to evaluate.
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError>;

    /// Reports the outcome of trial `id`.
    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError>;

    /// Proposes up to `n` architectures at once, for `n` parallel workers; each must be told
    /// later.
    ///
    /// The default asks `n` times in a row. Strategies that account for pending trials (Bayesian
    /// optimization fantasizes their outcome, Hyperband opens a new bracket when the current one
    /// waits for results) therefore hand out `n` different proposals without an override.
    ///
    /// If an `ask` fails after some trials were opened, those trials are returned (fewer than
    /// `n`) so none is lost; the error is returned only when not even one trial could be opened.
    fn ask_batch(&mut self, space: &S, n: usize) -> Result<Vec<Trial<S::Arch>>, StrategyError> {
        let mut trials = Vec::with_capacity(n);
        for _ in 0..n {
            match self.ask(space) {
                Ok(t) => trials.push(t),
                Err(e) if trials.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(trials)
    }
}
