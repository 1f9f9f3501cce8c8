//! The DARTS cell space (Liu, Simonyan and Yang, "DARTS: Differentiable Architecture Search",
//! ICLR 2019).
//!
//! A network stacks normal and reduction cells. Each cell has two input states, `c_{k-2}`
//! (index 0) and `c_{k-1}` (index 1), and `steps` intermediate nodes (4 in DARTS): node `i`
//! (`i = 0..steps`) is state `i + 2` and is the sum of two operations, each applied to an
//! earlier state (`0..i + 2`). The cell output concatenates the states listed in its `concat`
//! (all intermediate nodes, `range(2, 6)`, in DARTS).
//!
//! Architectures are [`Genotype`]s, printed exactly as Python prints the DARTS repository's
//! `namedtuple` (`cnn/genotypes.py` of `quark0/darts`):
//!
//! ```text
//! Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))
//! ```
//!
//! `normal` lists the two inputs of node 0, then the two of node 1, and so on, each as
//! `(operation, predecessor state)`. The parser also accepts `[2, 3, 4, 5]` lists for the
//! concats, double quotes, trailing commas, the four fields in any order, and any whitespace
//! (so the multi-line genotypes of the DARTS repository parse as they are written).
//!
//! The published genotypes are test vectors here: [`DARTS_V1`], [`DARTS_V2`] (DARTS), [`PDARTS`]
//! (Chen et al. 2019, `chenxin061/pdarts`), and the DARTS repository's transcriptions of
//! [`NASNET`] (NASNet-A) and [`AMOEBANET`] (AmoebaNet-A). The last two have 5 nodes, repeat
//! inputs, use `sep_conv_7x7` / `conv_7x1_1x7` and concatenate only the unused states, so they
//! belong to a configured space ([`DartsConfig::nasnet_style`]), not to the default one.
//!
//! ```
//! use nas_space::darts::{self, DartsOp, DartsSpace, Genotype};
//! use nas_space::{Canonicalize, TextFormat};
//!
//! let space = DartsSpace::default();
//! let g = space.parse(darts::DARTS_V2)?;
//! assert_eq!(g.normal[7], (DartsOp::DilConv3x3, 2));
//! assert!(space.to_text(&g).contains("normal_concat=range(2, 6)"));
//! assert_eq!(space.to_text(&g).parse::<Genotype>()?, g);
//! assert_eq!(g, darts::darts_v2());
//! let _key = space.canonical(&g)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod canonical;
mod impls;
mod space;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use space::DartsSpace;
pub use types::{CellKind, ConcatRule, DartsConfig, DartsOp, Genotype, unused_states};

const FORMAT: &str = "DARTS genotype";
const NAME: &str = "darts";

/// The largest number of intermediate nodes a [`DartsSpace`] accepts (canonical forms are found
/// by brute force over node orders).
pub const MAX_STEPS: usize = 8;

/// `DARTS_V1` (first-order DARTS, CIFAR-10) as written in `cnn/genotypes.py` of `quark0/darts`.
pub const DARTS_V1: &str = "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])";

/// `DARTS_V2` (second-order DARTS, CIFAR-10; the repository's `DARTS = DARTS_V2`) as written in
/// `cnn/genotypes.py` of `quark0/darts`.
pub const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

/// The P-DARTS CIFAR-10 cell (Chen et al., ICCV 2019) as written in `genotypes.py` of
/// `chenxin061/pdarts`.
pub const PDARTS: &str = "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))";

/// NASNet-A (Zoph et al. 2018) in DARTS notation, from `cnn/genotypes.py` of `quark0/darts`
/// (written there over several lines; joined into one here). 5 nodes, concat of the unused
/// states. See [`crate::nasnet`] for the NASNet space itself.
pub const NASNET: &str = "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1)], normal_concat=[2, 3, 4, 5, 6], reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1)], reduce_concat=[4, 5, 6])";

/// AmoebaNet-A (Real et al. 2019) in DARTS notation, from `cnn/genotypes.py` of `quark0/darts`
/// (joined into one line). 5 nodes, concat of the unused states.
pub const AMOEBANET: &str = "Genotype(normal=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 0), ('avg_pool_3x3', 1)], normal_concat=[4, 5, 6], reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)], reduce_concat=[3, 4, 6])";

fn builtin(text: &str) -> Genotype {
    // The built-in strings are constants checked by the tests, not user input.
    text.parse().expect("built-in genotype parses")
}

/// [`DARTS_V1`], parsed.
pub fn darts_v1() -> Genotype {
    builtin(DARTS_V1)
}

/// [`DARTS_V2`], parsed.
pub fn darts_v2() -> Genotype {
    builtin(DARTS_V2)
}

/// [`PDARTS`], parsed.
pub fn pdarts() -> Genotype {
    builtin(PDARTS)
}

/// [`NASNET`], parsed.
pub fn nasnet() -> Genotype {
    builtin(NASNET)
}

/// [`AMOEBANET`], parsed.
pub fn amoebanet() -> Genotype {
    builtin(AMOEBANET)
}
