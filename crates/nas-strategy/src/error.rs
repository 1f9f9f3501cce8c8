//! Errors of the `nas-strategy` crate.

use crate::TrialId;

/// Errors of strategies and the search loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StrategyError {
    /// `tell` named a trial that was never handed out by `ask`, or was already told.
    #[error("trial {0} is not pending: it was never asked for, or was already told")]
    UnknownTrial(TrialId),
    /// A strategy configuration value is invalid. The message says which field and why.
    #[error("invalid {strategy} configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The strategy's name.
        strategy: &'static str,
        /// The offending field.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The strategy cannot propose anything new: every architecture of the (finite) space has
    /// been proposed already. Stop the search, or allow repeats.
    #[error("the search space is exhausted: all {0} distinct architectures have been proposed")]
    Exhausted(usize),
    /// An error from the search space (an invalid architecture, a space that cannot mutate...).
    #[error(transparent)]
    Space(#[from] nas_space::SpaceError),
    /// An error from the estimator that the search loop could not treat as a failed trial.
    #[error(transparent)]
    Estimate(#[from] nas_estimate::EstimateError),
}
