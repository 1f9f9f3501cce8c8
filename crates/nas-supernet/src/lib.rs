//! Burn modules for neural architecture search: candidate operations, networks built from an
//! architecture, data loading, and the choice of backend.
//!
//! Everything is generic over `B: Backend` (`B: AutodiffBackend` to train); [`backend`] is the
//! one place that names concrete backends (the pure-Rust CPU backend by default, `wgpu` and
//! `cuda` behind cargo features).
#![warn(missing_docs)]

mod averaging;
pub mod backend;
pub mod chain_net;
pub mod darts_net;
pub mod darts_search;
pub mod data;
pub mod driver;
pub mod error;
pub mod fast;
pub mod fpn_net;
mod geometry;
pub mod grad;
#[cfg(feature = "ndarray")]
mod kernels;
pub mod memory;
pub mod multi_net;
#[cfg(feature = "ndarray")]
mod native;
pub mod nb201_net;
pub mod network;
pub mod network_config;
pub mod nn;
pub mod oneshot;
pub mod ops;
pub mod persist;
pub mod probe;
pub mod segment;
pub mod train;

pub use burn;
pub use error::SupernetError;
pub use network::{Classifier, TrainOptions};
