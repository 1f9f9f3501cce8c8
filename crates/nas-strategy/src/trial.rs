use nas_estimate::{Budget, Metrics};
use serde::{Deserialize, Serialize};

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
