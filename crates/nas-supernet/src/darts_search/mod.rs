//! Differentiable architecture search: DARTS (first and second order), GDAS, SNAS, ASAP and
//! P-DARTS on supernets of the NAS-Bench-201 and DARTS spaces.
//!
//! - [`supernet`]: the supernets ([`MixedOp`](mixed::MixedOp) on every edge), the
//!   [`SupernetBuilder`] trait a space implements, and the derivation of a discrete
//!   architecture (top-2 non-`none` inputs per node for DARTS, argmax per edge for
//!   NAS-Bench-201).
//! - [`alphas`]: the architecture parameters, kept in a module of their own so that they have
//!   their own optimizer, and the relaxations (softmax, Gumbel-softmax soft and hard).
//! - [`method`]: the [`SearchMethod`] trait (relaxation, schedules, hooks) and the six
//!   built-in methods; a new relaxation implements it in its own crate.
//! - [`bilevel`]: the driver every method runs in.
//! - [`memory`]: a counting allocator for the peak memory of a step.
//!
//! ```no_run
//! use nas_supernet::backend::DefaultBackend;
//! use nas_supernet::darts_search::{Method, SearchConfig, Searcher};
//! use nas_supernet::darts_search::supernet::{Nb201SupernetConfig, SupernetConfig};
//! use nas_supernet::data::ImageDataset;
//!
//! let space = SupernetConfig::Nb201(Nb201SupernetConfig {
//!     channels: 8,
//!     cells_per_stage: 1,
//!     in_channels: 1,
//!     num_classes: 10,
//! });
//! let config = SearchConfig {
//!     method: Method::from_name("darts2")?,
//!     epochs: 2,
//!     batch_size: 32,
//!     ..SearchConfig::default()
//! };
//! let mut searcher = Searcher::<DefaultBackend, _>::new(space, config, Default::default())?;
//! let report = searcher.run(&ImageDataset::digits(), |epoch| println!("{}", epoch.derived))?;
//! println!("{}", report.derived); // |nor_conv_3x3~0|+|...|
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alphas;
pub mod bilevel;
pub mod epochs;
/// The counting allocator behind the peak-memory figures (moved to [`crate::memory`]).
pub use crate::memory;
pub mod method;
pub mod mixed;
pub mod perturb;
pub mod supernet;

pub use alphas::{Alphas, ArchLayout, ArchMask, ArchProbabilities, ArchWeights, Relaxation};
pub use bilevel::{
    AlphaOptimConfig, EpochReport, SearchConfig, SearchReport, Searcher, StepContext, StepStats,
    WarmupPaths, WeightOptimConfig,
};
pub use epochs::SearchEpochs;
pub use method::{EpochAt, EpochPlan, Method, SearchMethod};
pub use perturb::{EdgeDecision, Perturbation, PerturbationConfig};
pub use supernet::{DerivedArch, SearchNetwork, Supernet, SupernetBuilder, SupernetConfig};

use crate::error::SupernetError;

/// Errors of a differentiable search.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A search setting is invalid; the message names the field and what is accepted.
    #[error("invalid search configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is accepted.
        reason: String,
    },
    /// The data cannot be used (too small to split, or not fitting the supernet).
    #[error("unusable data: {0}")]
    Data(String),
    /// A loss or gradient became NaN or infinite. The searcher keeps the alphas and weights of
    /// the last good step; lower the learning rates or clip the gradients harder.
    #[error(
        "search diverged at stage {stage}, epoch {epoch}, step {step}: {what} is {value}; the last good alphas and weights are kept (lower the learning rates)"
    )]
    Diverged {
        /// Stage (P-DARTS; 0 otherwise).
        stage: usize,
        /// Epoch within the stage.
        epoch: usize,
        /// Steps finished before the failing one.
        step: usize,
        /// What became non-finite.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A supernet, data or space error.
    #[error(transparent)]
    Supernet(#[from] SupernetError),
    /// A checkpoint could not be written, read or resumed.
    #[error(transparent)]
    Checkpoint(crate::driver::CheckpointError),
}
