//! Book-keeping of the trials a strategy handed out and was not yet told about.

use std::collections::BTreeMap;

use nas_estimate::Budget;
use serde::{Deserialize, Serialize};

use crate::StrategyError;
use crate::trial::{Trial, TrialId};

/// Book-keeping of trials handed out and not yet told: assigns ids and remembers architectures.
/// Strategies use it so that `tell` only needs the id.
///
/// A saved state is checked when read back: an open trial with an id not yet handed out, or an
/// id counter at its maximum, is a deserialization error (a later trial would reuse an id).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    try_from = "PendingState<A>",
    bound(serialize = "A: Serialize", deserialize = "A: Deserialize<'de>")
)]
pub struct Pending<A> {
    next_id: TrialId,
    open: BTreeMap<TrialId, A>,
}

/// The largest trial-id counter a saved state may hold (2^63: no search hands out more
/// trials; a larger one is a corrupted file, and the counter would overflow).
const MAX_TRIAL_ID: TrialId = 1 << 63;

/// [`Pending`] as saved, before its checks.
#[derive(Deserialize)]
struct PendingState<A> {
    next_id: TrialId,
    open: BTreeMap<TrialId, A>,
}

impl<A> TryFrom<PendingState<A>> for Pending<A> {
    type Error = String;

    fn try_from(s: PendingState<A>) -> Result<Self, String> {
        if s.next_id > MAX_TRIAL_ID {
            return Err(format!(
                "saved pending trials: the trial-id counter {} is beyond {MAX_TRIAL_ID}",
                s.next_id
            ));
        }
        if let Some((&id, _)) = s.open.range(s.next_id..).next() {
            return Err(format!(
                "saved pending trials: trial {id} is open but ids from {} were never handed out",
                s.next_id
            ));
        }
        Ok(Self {
            next_id: s.next_id,
            open: s.open,
        })
    }
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
        self.next_id = self.next_id.saturating_add(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_is_checked_when_read() {
        let mut p = Pending::default();
        p.open(1u32);
        p.open(2u32);
        p.close(0).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: Pending<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.iter().collect::<Vec<_>>(), vec![(1, &2)]);
        let e = serde_json::from_str::<Pending<u32>>(r#"{"next_id":1,"open":{"5":3}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("trial 5 is open"), "{e}");
        for next_id in [u64::MAX, u64::MAX - 1, (1 << 63) + 1] {
            let max = format!(r#"{{"next_id":{next_id},"open":{{}}}}"#);
            assert!(serde_json::from_str::<Pending<u32>>(&max).is_err());
        }
    }
}
