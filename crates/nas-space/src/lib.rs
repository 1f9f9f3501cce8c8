//! Search spaces and architectures for neural architecture search.
//!
//! This crate knows nothing of tensors: it describes, samples, mutates, encodes, enumerates,
//! canonicalizes, prints and parses architectures. Networks are built from these architectures
//! by `nas-supernet`.
//!
//! The core trait is [`SearchSpace`]; capabilities a space may offer are separate traits
//! ([`Mutate`], [`Neighborhood`], [`Encode`], [`Enumerable`], [`Canonicalize`], [`TextFormat`],
//! [`ToGraph`], [`Sequential`]). The spaces of the field:
//!
//! | family | space | text format |
//! | --- | --- | --- |
//! | cell | [`nb201::Nb201Space`] | `\|nor_conv_3x3~0\|+\|...\|` (NAS-Bench-201) |
//! | cell | [`darts::DartsSpace`] | `Genotype(normal=[('sep_conv_3x3', 0), ...], ...)` (DARTS) |
//! | cell | [`nasnet::NasNetSpace`] | `NASNet(normal=[...], reduce=[...])` |
//! | chain | [`proxyless::ProxylessSpace`] | `3x3_MBConv3 5x5_MBConv6 zero ...` |
//! | chain | [`spos::SposSpace`] | `shufflenet_3x3 xception ...` |
//! | multi-branch | [`nasrl::NasRlSpace`] | `3x3x36s1[] 5x7x48s1[1] ...` |
//! | multi-branch | [`dpc::DpcSpace`] | `conv_1x1<0 sep_atrous_3x3_r6x3<1 ...` |
//! | pyramid | [`fpn::FpnSpace`] | `attention(1,3)->P4 sum(1,5)->P4 ...` (NAS-FPN) |
//!
//! [`screen::Screened`] wraps any space so that its proposals are the best of several draws by
//! a cheap score (zero-cost warm-up and move proposal).
//!
//! [`laws`] holds the checks every implementation is tested with; use them on your own spaces.
#![warn(missing_docs)]

pub mod anchors;
mod common;
pub mod darts;
pub mod dpc;
pub mod error;
pub mod fpn;
pub mod laws;
pub mod nasnet;
pub mod nasrl;
pub mod nb201;
pub mod proxyless;
pub mod screen;
mod sequential;
pub mod spos;
#[cfg(test)]
mod test_support;
pub mod text;
mod traits;

pub use anchors::{DecisionGraph, DecisionKind, GraphStep};
pub use error::{ParseError, ParseErrorKind, SpaceError};
pub use traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    Sequential, TextFormat, ToGraph, radix,
};
