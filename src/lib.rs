//! Neural architecture search on Burn.
#![warn(missing_docs)]
pub use nas_estimate as estimate;
pub use nas_space as space;
pub use nas_strategy as strategy;
pub use nas_supernet as supernet;
