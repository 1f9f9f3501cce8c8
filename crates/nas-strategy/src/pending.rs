//! Book-keeping of the trials a strategy handed out and was not yet told about.

use std::collections::BTreeMap;

use nas_estimate::Budget;
use serde::{Deserialize, Serialize};

use crate::StrategyError;
use crate::trial::{Trial, TrialId};

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
