//! Burn modules for neural architecture search: candidate operations, networks built from an
//! architecture, weight-sharing supernets, differentiable (DARTS family) and single-path (ENAS,
//! SPOS, ProxylessNAS) methods.
//!
//! Status: not implemented yet. The architecture types it will build networks from live in
//! `nas-space` today; the Burn side is tracked by the issues "From architecture to trained
//! network", "Differentiable search on Burn" and "Weight sharing with single paths". The crate
//! exists now so that the facade's layout (`nas::supernet`) is stable.
#![warn(missing_docs)]
