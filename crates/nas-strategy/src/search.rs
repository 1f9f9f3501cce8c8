//! The sequential search loop: ask, estimate, tell, record.

use std::time::Instant;

use nas_estimate::Estimator;
use nas_space::SearchSpace;
use serde::{Deserialize, Serialize};

use crate::{Outcome, Strategy, StrategyError, TrialId};

/// One finished trial, as recorded by the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord<A> {
    /// The trial's id.
    pub id: TrialId,
    /// The architecture.
    pub arch: A,
    /// What came of it.
    pub outcome: Outcome,
    /// Wall time of the estimate, in seconds.
    pub seconds: f64,
}

/// Every trial of a search, in the order they finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult<A> {
    /// The finished trials.
    pub trials: Vec<TrialRecord<A>>,
}

impl<A> SearchResult<A> {
    /// The complete trial with the highest objective.
    pub fn best(&self) -> Option<&TrialRecord<A>> {
        self.complete()
            .max_by(|a, b| objective(a).total_cmp(&objective(b)))
    }

    /// The best objective after each trial (`NaN` until the first complete trial): the
    /// best-so-far curve against the number of queries.
    pub fn best_so_far(&self) -> Vec<f64> {
        let mut best = f64::NAN;
        self.trials
            .iter()
            .map(|t| {
                if let Some(m) = t.outcome.complete()
                    && (best.is_nan() || m.objective > best)
                {
                    best = m.objective;
                }
                best
            })
            .collect()
    }

    fn complete(&self) -> impl Iterator<Item = &TrialRecord<A>> {
        self.trials
            .iter()
            .filter(|t| t.outcome.complete().is_some())
    }
}

fn objective<A>(t: &TrialRecord<A>) -> f64 {
    t.outcome
        .complete()
        .map_or(f64::NEG_INFINITY, |m| m.objective)
}

/// A search that stopped before its budget: the strategy's error and every trial finished
/// before it.
#[derive(Debug)]
pub struct Interrupted<A> {
    /// Why the search stopped.
    pub error: StrategyError,
    /// The trials finished before it stopped.
    pub partial: SearchResult<A>,
}

impl<A> std::fmt::Display for Interrupted<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "search stopped after {} trials: {}",
            self.partial.trials.len(),
            self.error
        )
    }
}

impl<A: std::fmt::Debug> std::error::Error for Interrupted<A> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Runs `trials` sequential trials: each is asked from `strategy`, estimated by `estimator`
/// and told back; `observe` sees every record as it is made (progress display, logging).
///
/// An estimator error fails that trial ([`Outcome::Failed`]) and the search goes on; a
/// strategy error (e.g. an exhausted space) ends the search and returns it, together with the
/// trials finished so far so no work is lost ([`Interrupted`]).
pub fn run<S, St, E>(
    space: &S,
    strategy: &mut St,
    estimator: &mut E,
    trials: usize,
    mut observe: impl FnMut(&TrialRecord<S::Arch>),
) -> Result<SearchResult<S::Arch>, Box<Interrupted<S::Arch>>>
where
    S: SearchSpace,
    St: Strategy<S> + ?Sized,
    E: Estimator<S::Arch> + ?Sized,
{
    let mut result = SearchResult {
        trials: Vec::with_capacity(trials),
    };
    for _ in 0..trials {
        let trial = match strategy.ask(space) {
            Ok(t) => t,
            Err(error) => {
                return Err(Box::new(Interrupted {
                    error,
                    partial: result,
                }));
            }
        };
        let start = Instant::now();
        let outcome = match estimator.estimate(&trial.arch, &trial.budget) {
            Ok(m) if m.objective.is_finite() => Outcome::Complete(m),
            Ok(m) => Outcome::Failed(format!("non-finite objective {}", m.objective)),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        let record = TrialRecord {
            id: trial.id,
            arch: trial.arch,
            outcome: outcome.clone(),
            seconds: start.elapsed().as_secs_f64(),
        };
        if let Err(error) = strategy.tell(trial.id, outcome) {
            return Err(Box::new(Interrupted {
                error,
                partial: result,
            }));
        }
        observe(&record);
        result.trials.push(record);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RandomSearch;
    use nas_estimate::{Budget, EstimateError, Metrics};
    use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};

    #[test]
    fn failures_are_recorded_and_best_so_far_is_monotone() {
        let space = Nb201Space::default();
        let mut rs = RandomSearch::new(0);
        let mut est = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
            if a.edges[0] == Nb201Op::None {
                Err(EstimateError::Failed("diverged".into()))
            } else {
                Ok(Metrics::new(a.edges.iter().map(|o| o.index() as f64).sum()))
            }
        };
        let mut seen = 0;
        let r = run(&space, &mut rs, &mut est, 60, |_| seen += 1).unwrap();
        assert_eq!((r.trials.len(), seen), (60, 60));
        assert!(
            r.trials
                .iter()
                .any(|t| matches!(t.outcome, Outcome::Failed(_)))
        );
        let curve = r.best_so_far();
        let finite: Vec<f64> = curve.iter().copied().filter(|v| !v.is_nan()).collect();
        assert!(finite.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            r.best().unwrap().outcome.complete().unwrap().objective,
            *finite.last().unwrap()
        );
    }

    #[test]
    fn exhaustion_returns_the_finished_trials() {
        let space = Nb201Space::with_ops(&[Nb201Op::None]).unwrap();
        let mut rs = RandomSearch::new(0);
        let mut est = |_: &Nb201Arch, _: &Budget| Ok(Metrics::new(1.0));
        let stop = run(&space, &mut rs, &mut est, 5, |_| {}).unwrap_err();
        assert!(matches!(stop.error, StrategyError::Exhausted(1)));
        assert_eq!(stop.partial.trials.len(), 1);
    }
}
