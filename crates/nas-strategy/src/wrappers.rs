//! Wrappers that add behaviour to any [`Strategy`]: [`Dedup`] (never evaluate the same
//! architecture twice at the same budget) and [`RetryFailures`] (retry failed trials, and stop a
//! search whose estimator keeps failing). They nest: `Dedup::new(RetryFailures::new(inner, ..))`.
//!
//! Median stopping, the third wrapper of the issue, acts inside an evaluation rather than
//! between trials: it is the [`crate::pruner::MedianStopping`] pruner.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::marker::PhantomData;

use nas_estimate::Budget;
use nas_space::{Canonicalize, SearchSpace};
use serde::{Deserialize, Serialize};

use crate::{Outcome, Strategy, StrategyError, Trial, TrialId};

/// Deduplication: an architecture whose canonical form was already evaluated at the same budget
/// is not handed out again; the inner strategy is told the stored outcome at once, without an
/// evaluation, and asked again.
///
/// - Complete and pruned outcomes are stored; failures are not (a failure may be transient, so
///   a later proposal of that architecture is evaluated again).
/// - A proposal identical to a trial still running waits for that trial's outcome, which both
///   receive; if the running trial fails, the first waiting duplicate is handed out instead.
/// - Keys are (canonical form, budget): Hyperband's promotions of an architecture to a larger
///   budget are not duplicates.
/// - After `max_skips` duplicates in a row, `ask` fails with [`StrategyError::Exhausted`].
///
/// Trial ids are the inner strategy's. The wrapper's state serializes with the inner one's.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "St: Serialize", deserialize = "St: Deserialize<'de>"))]
pub struct Dedup<S: SearchSpace, St> {
    inner: St,
    max_skips: usize,
    /// Stored outcomes by key.
    outcomes: HashMap<String, Outcome>,
    /// Key → the trial being evaluated for it.
    running: HashMap<String, TrialId>,
    /// Trials handed out: id → key.
    keys: BTreeMap<TrialId, String>,
    /// Running trial → inner trials waiting for its outcome.
    waiting: BTreeMap<TrialId, Vec<Trial<S::Arch>>>,
    /// Inner trials to hand out before asking the inner strategy again.
    ready: VecDeque<Trial<S::Arch>>,
    /// Evaluations saved so far.
    saved: usize,
    #[serde(skip)]
    _space: PhantomData<fn() -> S>,
}

impl<S: SearchSpace, St> Dedup<S, St> {
    /// Wraps `inner`; at most 1,000 duplicates in a row are skipped.
    pub fn new(inner: St) -> Self {
        Self {
            inner,
            max_skips: 1000,
            outcomes: HashMap::new(),
            running: HashMap::new(),
            keys: BTreeMap::new(),
            waiting: BTreeMap::new(),
            ready: VecDeque::new(),
            saved: 0,
            _space: PhantomData,
        }
    }

    /// Sets how many duplicates in a row `ask` skips before it reports the space exhausted.
    pub fn with_max_skips(mut self, max_skips: usize) -> Self {
        self.max_skips = max_skips;
        self
    }

    /// The inner strategy.
    pub fn inner(&self) -> &St {
        &self.inner
    }

    /// Unwraps the inner strategy.
    pub fn into_inner(self) -> St {
        self.inner
    }

    /// The number of evaluations saved: proposals answered from stored outcomes or from a
    /// running duplicate.
    pub fn saved(&self) -> usize {
        self.saved
    }
}

fn key(form: &str, budget: &Budget) -> String {
    match budget.fidelity {
        Some(f) => format!("{f}|{form}"),
        None => format!("full|{form}"),
    }
}

impl<S: Canonicalize, St: Strategy<S>> Strategy<S> for Dedup<S, St> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        if let Some(t) = self.ready.pop_front() {
            return Ok(t);
        }
        for _ in 0..=self.max_skips {
            let trial = self.inner.ask(space)?;
            let k = key(space.canonical(&trial.arch)?.as_str(), &trial.budget);
            if let Some(outcome) = self.outcomes.get(&k) {
                self.saved += 1;
                self.inner.tell(trial.id, outcome.clone())?;
            } else if let Some(&first) = self.running.get(&k) {
                self.saved += 1;
                self.waiting.entry(first).or_default().push(trial);
            } else {
                self.running.insert(k.clone(), trial.id);
                self.keys.insert(trial.id, k);
                return Ok(trial);
            }
        }
        Err(StrategyError::Exhausted(self.outcomes.len()))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let k = self
            .keys
            .remove(&id)
            .ok_or(StrategyError::UnknownTrial(id))?;
        self.running.remove(&k);
        let mut waiting = self.waiting.remove(&id).unwrap_or_default();
        if matches!(outcome, Outcome::Failed(_)) {
            // The duplicates get their own evaluation: the first one runs, the others wait
            // for it.
            if !waiting.is_empty() {
                let first = waiting.remove(0);
                self.saved -= 1;
                self.running.insert(k.clone(), first.id);
                self.keys.insert(first.id, k);
                if !waiting.is_empty() {
                    self.waiting.insert(first.id, waiting);
                }
                self.ready.push_back(first);
            }
            return self.inner.tell(id, outcome);
        }
        self.outcomes.insert(k, outcome.clone());
        self.inner.tell(id, outcome.clone())?;
        for t in waiting {
            self.inner.tell(t.id, outcome.clone())?;
        }
        Ok(())
    }
}

/// Configuration of [`RetryFailures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryConfig {
    /// How many times a failed trial is handed out again before the inner strategy is told it
    /// failed.
    pub max_retries: usize,
    /// After this many failed evaluations in a row (retries included), `tell` and `ask` fail
    /// with [`StrategyError::TooManyFailures`].
    pub max_consecutive_failures: usize,
}

impl Default for RetryConfig {
    /// One retry; stop after 10 failures in a row.
    fn default() -> Self {
        Self {
            max_retries: 1,
            max_consecutive_failures: 10,
        }
    }
}

impl RetryConfig {
    /// Checks the values: `max_consecutive_failures ≥ 1`.
    pub fn check(&self) -> Result<(), StrategyError> {
        if self.max_consecutive_failures == 0 {
            return Err(StrategyError::InvalidConfig {
                strategy: "retry failures",
                field: "max_consecutive_failures",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// One evaluation attempt of an inner trial.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attempt<A> {
    trial: Trial<A>,
    attempt: usize,
}

/// Failure handling: a failed trial is handed out again (same architecture and budget, a new
/// trial id) up to `max_retries` times; once its retries are spent the inner strategy is told
/// it failed. Complete and pruned trials pass through. After `max_consecutive_failures` failed
/// evaluations in a row the wrapper reports [`StrategyError::TooManyFailures`] (from that
/// `tell`, and from every later `ask`), which stops [`crate::search::run`] with the trials
/// finished so far: an estimator that fails every time is broken, and searching on would only
/// burn the budget.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "St: Serialize", deserialize = "St: Deserialize<'de>"))]
pub struct RetryFailures<S: SearchSpace, St> {
    inner: St,
    config: RetryConfig,
    next_id: TrialId,
    open: BTreeMap<TrialId, Attempt<S::Arch>>,
    retry: VecDeque<Attempt<S::Arch>>,
    consecutive: usize,
    last_failure: String,
    #[serde(skip)]
    _space: PhantomData<fn() -> S>,
}

impl<S: SearchSpace, St> RetryFailures<S, St> {
    /// Wraps `inner` after checking `config`.
    pub fn new(inner: St, config: RetryConfig) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            inner,
            config,
            next_id: 0,
            open: BTreeMap::new(),
            retry: VecDeque::new(),
            consecutive: 0,
            last_failure: String::new(),
            _space: PhantomData,
        })
    }

    /// The inner strategy.
    pub fn inner(&self) -> &St {
        &self.inner
    }

    /// Unwraps the inner strategy.
    pub fn into_inner(self) -> St {
        self.inner
    }

    /// The number of failed evaluations in a row so far.
    pub fn consecutive_failures(&self) -> usize {
        self.consecutive
    }

    fn too_many(&self) -> Option<StrategyError> {
        (self.consecutive >= self.config.max_consecutive_failures).then(|| {
            StrategyError::TooManyFailures {
                count: self.consecutive,
                last: self.last_failure.clone(),
            }
        })
    }
}

impl<S: SearchSpace, St: Strategy<S>> Strategy<S> for RetryFailures<S, St> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        if let Some(e) = self.too_many() {
            return Err(e);
        }
        let attempt = match self.retry.pop_front() {
            Some(a) => a,
            None => Attempt {
                trial: self.inner.ask(space)?,
                attempt: 0,
            },
        };
        let id = self.next_id;
        self.next_id += 1;
        let trial = Trial {
            id,
            arch: attempt.trial.arch.clone(),
            budget: attempt.trial.budget,
        };
        self.open.insert(id, attempt);
        Ok(trial)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let attempt = self
            .open
            .remove(&id)
            .ok_or(StrategyError::UnknownTrial(id))?;
        match outcome {
            Outcome::Failed(reason) => {
                self.consecutive += 1;
                self.last_failure.clone_from(&reason);
                if attempt.attempt < self.config.max_retries {
                    self.retry.push_back(Attempt {
                        attempt: attempt.attempt + 1,
                        ..attempt
                    });
                } else {
                    self.inner.tell(attempt.trial.id, Outcome::Failed(reason))?;
                }
                match self.too_many() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
            other => {
                self.consecutive = 0;
                self.inner.tell(attempt.trial.id, other)
            }
        }
    }
}
