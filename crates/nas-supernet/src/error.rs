//! Errors of the `nas-supernet` crate.

use std::path::PathBuf;

/// Errors of networks, backends and data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupernetError {
    /// A network or operation configuration is invalid; the message says which value and why.
    #[error("invalid {what} configuration: {reason}")]
    InvalidConfig {
        /// What was being configured.
        what: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The requested backend was not compiled in, or its runtime is missing on this machine.
    #[error("backend `{backend}` is not available: {reason}")]
    BackendUnavailable {
        /// The backend asked for.
        backend: String,
        /// What is missing and how to get it.
        reason: String,
    },
    /// A backend name that this library does not know.
    #[error("unknown backend `{0}`: expected one of ndarray, flex, wgpu, cuda")]
    UnknownBackend(String),
    /// A data file does not exist.
    #[error("{what} not found at `{path}`: {hint}")]
    MissingFile {
        /// What the file is.
        what: &'static str,
        /// The path that was tried.
        path: PathBuf,
        /// How to obtain or point to the file.
        hint: String,
    },
    /// A data file exists but is not in the expected format.
    #[error("corrupt {what} `{path}`: {reason}")]
    Corrupt {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error on a file.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An error from the search-space crate (an invalid architecture).
    #[error(transparent)]
    Space(#[from] nas_space::SpaceError),
}
