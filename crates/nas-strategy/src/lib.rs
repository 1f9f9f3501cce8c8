//! Search strategies with an ask/tell interface, and a search loop on top.
//!
//! A [`Strategy`] proposes architectures ([`Strategy::ask`]) and learns from their outcomes
//! ([`Strategy::tell`]); it never evaluates anything itself, because evaluations take minutes
//! to hours and may run elsewhere. [`search::Search`] is the loop that pairs a strategy with an
//! [`nas_estimate::Estimator`] (or one estimator per worker thread), with stopping rules, a
//! journal to resume from and [`observe`]rs; [`search::run`] is its shortest form.
//!
//! Strategies own a seeded random number generator, so the same seed gives the same search.
#![warn(missing_docs)]

pub mod error;
pub mod evolution;
pub mod observe;
pub mod random;
pub mod search;
mod trial;

pub use error::StrategyError;
pub use evolution::{RegularizedEvolution, RegularizedEvolutionConfig};
pub use random::RandomSearch;
pub use search::Search;
pub use trial::{Outcome, Pending, Trial, TrialId};

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

    /// Proposes `n` architectures at once, for `n` free workers. The default asks `n` times;
    /// strategies that can diversify a batch override it.
    fn ask_batch(&mut self, space: &S, n: usize) -> Result<Vec<Trial<S::Arch>>, StrategyError> {
        (0..n).map(|_| self.ask(space)).collect()
    }
}
