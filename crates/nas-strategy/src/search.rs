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

/// Like [`run`], and every finished trial is appended to the JSON-lines journal at `path` as
/// it ends (one [`TrialRecord`] per line), so a killed search loses nothing.
///
/// If the journal already holds trials, the search resumes: the strategy (freshly built with
/// the same seed and configuration) is replayed through them, asked and told the recorded
/// outcomes without estimating anything again, and the search continues from there until
/// `trials` trials in total. Because strategies are deterministic given their seed, a resumed
/// search ends exactly as an uninterrupted one would with a deterministic estimator. A journal
/// that does not match the strategy's proposals (another seed or configuration) is an error,
/// [`StrategyError::JournalMismatch`], and the file is left untouched.
pub fn run_with_journal<S, St, E>(
    space: &S,
    strategy: &mut St,
    estimator: &mut E,
    trials: usize,
    path: &std::path::Path,
    mut observe: impl FnMut(&TrialRecord<S::Arch>),
) -> Result<SearchResult<S::Arch>, Box<Interrupted<S::Arch>>>
where
    S: SearchSpace,
    St: Strategy<S> + ?Sized,
    E: Estimator<S::Arch> + ?Sized,
{
    use std::io::{BufRead, Write};
    let interrupted = |error, partial| Box::new(Interrupted { error, partial });
    let mut result = SearchResult { trials: Vec::new() };
    let journal_err = |line: usize, reason: String| StrategyError::Journal {
        path: path.to_path_buf(),
        line,
        reason,
    };
    if path.exists() {
        let file = std::fs::File::open(path).map_err(|e| {
            interrupted(
                journal_err(0, e.to_string()),
                SearchResult { trials: vec![] },
            )
        })?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line =
                line.map_err(|e| interrupted(journal_err(i + 1, e.to_string()), result.clone()))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: TrialRecord<S::Arch> = serde_json::from_str(&line)
                .map_err(|e| interrupted(journal_err(i + 1, e.to_string()), result.clone()))?;
            let trial = strategy
                .ask(space)
                .map_err(|e| interrupted(e, result.clone()))?;
            if trial.arch != record.arch {
                return Err(interrupted(
                    StrategyError::JournalMismatch {
                        line: i + 1,
                        expected: format!("{:?}", record.arch),
                        proposed: format!("{:?}", trial.arch),
                    },
                    result,
                ));
            }
            strategy
                .tell(trial.id, record.outcome.clone())
                .map_err(|e| interrupted(e, result.clone()))?;
            result.trials.push(TrialRecord {
                id: trial.id,
                ..record
            });
        }
    }
    let remaining = trials.saturating_sub(result.trials.len());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| interrupted(journal_err(0, e.to_string()), result.clone()))?;
    let mut write_error = None;
    let more = run(space, strategy, estimator, remaining, |record| {
        let line = serde_json::to_string(record).unwrap_or_default();
        if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
            write_error.get_or_insert(e);
        }
        observe(record);
    });
    let (more, error) = match more {
        Ok(r) => (r, None),
        Err(stop) => (stop.partial, Some(stop.error)),
    };
    result.trials.extend(more.trials);
    if let Some(e) = write_error {
        return Err(interrupted(
            journal_err(0, format!("cannot append: {e}")),
            result,
        ));
    }
    match error {
        Some(error) => Err(interrupted(error, result)),
        None => Ok(result),
    }
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
    fn a_resumed_search_ends_as_an_uninterrupted_one() {
        use crate::{RegularizedEvolution, RegularizedEvolutionConfig};
        let space = Nb201Space::default();
        let rea = || {
            RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 4).unwrap()
        };
        let score = |a: &Nb201Arch| a.edges.iter().map(|o| o.index() as f64 * 1.5).sum::<f64>();
        let dir = std::env::temp_dir().join(format!("nas-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trials.jsonl");
        let _ = std::fs::remove_file(&path);

        let calls = std::cell::Cell::new(0);
        let mut est = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
            calls.set(calls.get() + 1);
            Ok(Metrics::new(score(a)))
        };
        let full = run(&space, &mut rea(), &mut est, 40, |_| {}).unwrap();

        // "Killed" after 15 trials, then resumed to 40 with a fresh strategy.
        run_with_journal(&space, &mut rea(), &mut est, 15, &path, |_| {}).unwrap();
        calls.set(0);
        let resumed = run_with_journal(&space, &mut rea(), &mut est, 40, &path, |_| {}).unwrap();
        assert_eq!(calls.get(), 25, "finished trials are not estimated again");
        let arches =
            |r: &SearchResult<Nb201Arch>| r.trials.iter().map(|t| t.arch).collect::<Vec<_>>();
        assert_eq!(arches(&resumed), arches(&full));
        assert_eq!(resumed.best_so_far(), full.best_so_far());
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 40);

        // Another seed does not match the journal: a typed error, the file untouched.
        let mut other =
            RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 5)
                .unwrap();
        let stop = run_with_journal(&space, &mut other, &mut est, 50, &path, |_| {}).unwrap_err();
        assert!(
            matches!(stop.error, StrategyError::JournalMismatch { line: 1, .. }),
            "{}",
            stop.error
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 40);

        // A corrupt line names its number.
        std::fs::write(&path, "{not json}\n").unwrap();
        let stop = run_with_journal(&space, &mut rea(), &mut est, 5, &path, |_| {}).unwrap_err();
        assert!(
            matches!(stop.error, StrategyError::Journal { line: 1, .. }),
            "{}",
            stop.error
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
