//! Errors of the `nas-estimate` crate.

use std::path::PathBuf;

/// Errors of estimators.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstimateError {
    /// A data or benchmark file does not exist. Give the right path.
    #[error("{what} not found at `{path}`: {hint}")]
    MissingFile {
        /// What the file is (e.g. "NAS-Bench-201 table").
        what: &'static str,
        /// The path that was tried.
        path: PathBuf,
        /// How to obtain or point to the file.
        hint: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not what the reader expects (missing column, bad
    /// number, wrong number of rows). The message names the line and the problem.
    #[error("corrupt {what} `{path}`{}: {reason}", .line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Corrupt {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The 1-based line, where the problem is on one line.
        line: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// An estimator's configuration is invalid (training hyperparameters, empty data...); the
    /// message says which value and what is accepted.
    #[error("invalid estimator configuration: {0}")]
    InvalidConfig(String),
    /// The architecture is not covered by this estimator (e.g. not in the benchmark table).
    #[error("architecture not covered by this estimator: {0}")]
    UnknownArch(String),
    /// The estimate failed and produced no usable number (e.g. the loss diverged).
    #[error("estimate failed: {0}")]
    Failed(String),
    /// An error from the network crate (an architecture that cannot be built, a backend that
    /// is missing, unreadable data).
    #[cfg(feature = "train")]
    #[error(transparent)]
    Supernet(#[from] nas_supernet::SupernetError),
    /// An error from the search-space crate.
    #[error(transparent)]
    Space(#[from] nas_space::SpaceError),
}
