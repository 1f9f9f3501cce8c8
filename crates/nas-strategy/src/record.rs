//! What a search returns: every finished trial, and the views on them (best, top-k, Pareto
//! front, JSON export).

use std::collections::{BTreeSet, HashSet};
use std::hash::Hash;
use std::path::Path;

use nas_estimate::Budget;
use nas_space::Canonicalize;
use serde::{Deserialize, Serialize};

use crate::{Outcome, StrategyError, TrialId};

/// One finished trial, as recorded by the loop: one line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord<A> {
    /// The trial's id, as the strategy assigned it.
    pub id: TrialId,
    /// The architecture.
    pub arch: A,
    /// The budget it was evaluated with (the trial's configuration).
    #[serde(default)]
    pub budget: Budget,
    /// What came of it.
    pub outcome: Outcome,
    /// Wall time of the estimate, in seconds.
    pub seconds: f64,
    /// The worker that evaluated it (0 for a single worker).
    #[serde(default)]
    pub worker: usize,
    /// When the estimate started, in seconds since the Unix epoch.
    #[serde(default)]
    pub started_at: f64,
    /// When the estimate ended, in seconds since the Unix epoch.
    #[serde(default)]
    pub ended_at: f64,
    /// The search's seed, when it was given ([`crate::Search::seed`]); a resume with another
    /// seed is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How many trials the strategy had handed out when this one was told. This is what lets
    /// a resumed search replay asks and tells in their original order, whatever the number of
    /// workers (0 in journals written before the field existed: one ask per tell).
    #[serde(default)]
    pub issued: u64,
}

impl<A> TrialRecord<A> {
    /// The objective of a complete trial.
    pub fn objective(&self) -> Option<f64> {
        self.outcome.complete().map(|m| m.objective)
    }

    /// A named measurement of a complete trial.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.outcome.complete().and_then(|m| m.get(name))
    }
}

/// Why a search stopped asking for new trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The trial budget ([`crate::Search::trials`]) was spent.
    Trials,
    /// The wall-time budget ([`crate::Search::wall_time`]) ran out.
    WallTime,
    /// A trial reached the target objective ([`crate::Search::target`]).
    Target,
    /// The strategy proposed nothing while no trial was running.
    NoProposal,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Trials => "the trial budget",
            StopReason::WallTime => "the wall-time budget",
            StopReason::Target => "reaching the target",
            StopReason::NoProposal => "the strategy proposing nothing",
        })
    }
}

/// Every trial of a search, in the order they finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult<A> {
    /// The finished trials (replayed ones first when the search was resumed).
    pub trials: Vec<TrialRecord<A>>,
    /// Why the search stopped (`None` for a search that stopped on an error, or a result
    /// assembled by hand).
    #[serde(default)]
    pub stop: Option<StopReason>,
}

impl<A> Default for SearchResult<A> {
    fn default() -> Self {
        Self {
            trials: Vec::new(),
            stop: None,
        }
    }
}

impl<A> SearchResult<A> {
    /// A result holding `trials`.
    pub fn from_trials(trials: Vec<TrialRecord<A>>) -> Self {
        Self { trials, stop: None }
    }

    /// The complete trial with the highest objective (the first one among equals).
    pub fn best(&self) -> Option<&TrialRecord<A>> {
        self.complete().fold(None, |best, t| match best {
            Some(b) if objective(b) >= objective(t) => Some(b),
            _ => Some(t),
        })
    }

    /// The best objective after each trial (`NaN` until the first complete trial): the
    /// best-so-far curve against the number of queries.
    pub fn best_so_far(&self) -> Vec<f64> {
        let mut best = f64::NAN;
        self.trials
            .iter()
            .map(|t| {
                if let Some(v) = t.objective()
                    && (best.is_nan() || v > best)
                {
                    best = v;
                }
                best
            })
            .collect()
    }

    /// The complete trials, in the order they finished.
    pub fn complete(&self) -> impl Iterator<Item = &TrialRecord<A>> {
        self.trials
            .iter()
            .filter(|t| t.outcome.complete().is_some())
    }

    /// The `k` best complete trials with distinct architectures, best first. An architecture
    /// evaluated several times (a noisy estimator) appears once, with its best evaluation.
    pub fn top_k(&self, k: usize) -> Vec<&TrialRecord<A>>
    where
        A: Eq + Hash,
    {
        self.distinct_top(k, |i| &self.trials[i].arch)
    }

    /// The `k` best complete trials that differ in `key`, best first; the best trial of each
    /// key is kept, and ties keep the earlier trial.
    pub fn top_k_by<K: Eq + Hash>(
        &self,
        k: usize,
        mut key: impl FnMut(&A) -> K,
    ) -> Vec<&TrialRecord<A>> {
        self.distinct_top(k, |i| key(&self.trials[i].arch))
    }

    /// The `k` best complete trials that differ in canonical form (functionally different
    /// architectures), best first. Fails when an architecture is not in `space`.
    pub fn top_k_canonical<S>(
        &self,
        space: &S,
        k: usize,
    ) -> Result<Vec<&TrialRecord<A>>, StrategyError>
    where
        S: Canonicalize<Arch = A>,
    {
        let forms = self
            .trials
            .iter()
            .map(|t| space.canonical(&t.arch))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.distinct_top(k, |i| forms[i].clone()))
    }

    /// The best complete trial of each key (keyed by trial index), best first, `k` at most.
    fn distinct_top<K: Eq + Hash>(
        &self,
        k: usize,
        mut key: impl FnMut(usize) -> K,
    ) -> Vec<&TrialRecord<A>> {
        let mut ranked: Vec<usize> = (0..self.trials.len())
            .filter(|&i| self.trials[i].outcome.complete().is_some())
            .collect();
        // Stable: among equal objectives the earlier trial stays first.
        ranked.sort_by(|&a, &b| objective(&self.trials[b]).total_cmp(&objective(&self.trials[a])));
        let mut seen = HashSet::new();
        ranked
            .into_iter()
            .filter(|&i| seen.insert(key(i)))
            .take(k)
            .map(|i| &self.trials[i])
            .collect()
    }

    /// The Pareto front over (objective, `cost`): the complete trials that no other complete
    /// trial beats on both (a higher or equal objective at a lower or equal cost, one of them
    /// strictly), ordered by increasing cost. `cost` names a measurement of
    /// [`nas_estimate::Metrics::values`] to minimize, such as `"params"` or `"latency_ms"`;
    /// trials without it are left out, and of several trials at the same point the first is
    /// kept. Fails with [`StrategyError::MissingMetric`] when complete trials exist and none
    /// has the measurement.
    pub fn pareto_front(&self, cost: &str) -> Result<Vec<&TrialRecord<A>>, StrategyError> {
        let mut points: Vec<(f64, f64, &TrialRecord<A>)> = self
            .complete()
            .filter_map(|t| {
                let c = t.metric(cost)?;
                c.is_finite().then(|| (c, objective(t), t))
            })
            .collect();
        if points.is_empty() && self.complete().next().is_some() {
            let names: BTreeSet<&str> = self
                .complete()
                .filter_map(|t| t.outcome.complete())
                .flat_map(|m| m.values.keys().map(String::as_str))
                .collect();
            let available = if names.is_empty() {
                "no named metrics".to_string()
            } else {
                names.into_iter().collect::<Vec<_>>().join(", ")
            };
            return Err(StrategyError::MissingMetric {
                name: cost.to_string(),
                available,
            });
        }
        // By cost, then best objective first; a point is on the front when it beats the best
        // objective of every cheaper (or equally cheap) point.
        points.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut front = Vec::new();
        let mut best = f64::NEG_INFINITY;
        for (_, obj, t) in points {
            if obj > best {
                best = obj;
                front.push(t);
            }
        }
        Ok(front)
    }

    /// The whole result as pretty-printed JSON: `best` (the best trial, or `null`), `stop`
    /// and `trials`. [`SearchResult`] deserializes from it (the `best` field is ignored).
    pub fn to_json(&self) -> Result<String, serde_json::Error>
    where
        A: Serialize,
    {
        #[derive(Serialize)]
        struct Export<'a, A> {
            best: Option<&'a TrialRecord<A>>,
            stop: Option<StopReason>,
            trials: &'a [TrialRecord<A>],
        }
        serde_json::to_string_pretty(&Export {
            best: self.best(),
            stop: self.stop,
            trials: &self.trials,
        })
    }

    /// Writes [`SearchResult::to_json`] to `path`.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<(), StrategyError>
    where
        A: Serialize,
    {
        let path = path.as_ref();
        let err = |reason: String| StrategyError::Export {
            path: path.to_path_buf(),
            reason,
        };
        let json = self.to_json().map_err(|e| err(e.to_string()))?;
        std::fs::write(path, json).map_err(|e| err(e.to_string()))
    }
}

fn objective<A>(t: &TrialRecord<A>) -> f64 {
    t.objective().unwrap_or(f64::NEG_INFINITY)
}
