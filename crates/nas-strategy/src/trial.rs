use std::collections::BTreeMap;

use nas_estimate::{Budget, Metrics};
use serde::{Deserialize, Serialize};

use crate::StrategyError;

/// Identifies a trial within one strategy (assigned in increasing order from 0).
pub type TrialId = u64;

/// An architecture to evaluate, as handed out by [`crate::Strategy::ask`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial<A> {
    /// The trial's id, to give back to [`crate::Strategy::tell`].
    pub id: TrialId,
    /// The architecture to evaluate.
    pub arch: A,
    /// The budget to evaluate it with.
    pub budget: Budget,
}

/// What became of a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The evaluation finished.
    Complete(Metrics),
    /// The evaluation was stopped early (e.g. by median stopping); the metrics are partial.
    Pruned(Metrics),
    /// The evaluation failed (diverged, crashed...); the string says why.
    Failed(String),
}

impl Outcome {
    /// The metrics of a complete trial.
    pub fn complete(&self) -> Option<&Metrics> {
        match self {
            Outcome::Complete(m) => Some(m),
            _ => None,
        }
    }
}

/// Book-keeping of trials handed out and not yet told: assigns ids and remembers architectures.
/// Strategies use it so that `tell` only needs the id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending<A> {
    next_id: TrialId,
    open: BTreeMap<TrialId, A>,
}

impl<A> Default for Pending<A> {
    fn default() -> Self {
        Self {
            next_id: 0,
            open: BTreeMap::new(),
        }
    }
}

impl<A: Clone> Pending<A> {
    /// Opens a trial for `arch` with the full budget.
    pub fn open(&mut self, arch: A) -> Trial<A> {
        self.open_with(arch, Budget::full())
    }

    /// Opens a trial for `arch` with `budget`.
    pub fn open_with(&mut self, arch: A, budget: Budget) -> Trial<A> {
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(id, arch.clone());
        Trial { id, arch, budget }
    }

    /// Closes trial `id`, returning its architecture.
    pub fn close(&mut self, id: TrialId) -> Result<A, StrategyError> {
        self.open.remove(&id).ok_or(StrategyError::UnknownTrial(id))
    }

    /// The open trials, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (TrialId, &A)> {
        self.open.iter().map(|(&id, a)| (id, a))
    }

    /// The architecture of open trial `id`.
    pub fn get(&self, id: TrialId) -> Option<&A> {
        self.open.get(&id)
    }

    /// The number of open trials.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when no trial is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}
