//! Errors of the `nas-strategy` crate.

use crate::trial::TrialId;

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
    /// The search journal cannot be read, parsed or appended to. `line` is 1-based (0 when the
    /// problem is not on one line).
    #[error("search journal `{path}`, line {line}: {reason}")]
    Journal {
        /// The journal file.
        path: std::path::PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// While resuming, the strategy proposed another architecture than the journal recorded:
    /// the journal comes from a search with another seed, configuration or strategy. Resume
    /// with the same settings, or start a new journal.
    #[error(
        "search journal does not match this strategy at line {line}: the journal has {expected}, the strategy proposed {proposed}"
    )]
    JournalMismatch {
        /// The 1-based journal line.
        line: usize,
        /// The architecture in the journal.
        expected: String,
        /// The architecture the strategy proposed.
        proposed: String,
    },
    /// A result was asked for a metric that no complete trial measured (e.g. a Pareto front
    /// over `latency_ms` when the estimator does not measure latency). Use one of the names
    /// listed, or an estimator that records the metric in [`nas_estimate::Metrics::values`].
    #[error("no complete trial has the metric `{name}`; the trials have: {available}")]
    MissingMetric {
        /// The metric asked for.
        name: String,
        /// The metric names the complete trials do have, comma-separated.
        available: String,
    },
    /// A search result could not be written. Check that the directory exists and is writable.
    #[error("cannot export the search result to `{path}`: {reason}")]
    Export {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `count` evaluations in a row failed (see [`crate::RetryFailures`]): the estimator
    /// itself is probably broken (missing data, a device error, a bad training configuration).
    /// Fix the cause, then resume the search.
    #[error(
        "{count} evaluations failed in a row, the last with: {last}; the estimator is probably broken (check its data, device and configuration), fix it and resume"
    )]
    TooManyFailures {
        /// The number of consecutive failed evaluations.
        count: usize,
        /// The reason given by the last failure.
        last: String,
    },
    /// A reinforcement-learning controller was given input that does not fit it: a decision
    /// vector of the wrong length or with a choice out of range, a space whose decisions differ
    /// from those the controller was built for, an empty batch or a non-finite reward. The
    /// message says which.
    #[error("controller: {0}")]
    Controller(String),
    /// An error of a study shared through PostgreSQL (the database, the connection, a study
    /// made with other settings).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Study(#[from] crate::study::StudyError),
    /// An error from the search space (an invalid architecture, a space that cannot mutate...).
    #[error(transparent)]
    Space(#[from] nas_space::SpaceError),
    /// An error from the estimator that the search loop could not treat as a failed trial.
    #[error(transparent)]
    Estimate(#[from] nas_estimate::EstimateError),
}
