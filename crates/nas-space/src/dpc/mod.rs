//! The Dense Prediction Cell (DPC) space of Chen et al., "Searching for Efficient Multi-Scale
//! Architectures for Dense Image Prediction" (NeurIPS 2018).
//!
//! A cell has `B` branches (default 5). Branch `b` (numbered from 1) reads either the backbone
//! feature map (input `0`) or the output of an earlier branch (`1..b`), and applies one
//! operation: a 1x1 convolution, a 3x3 atrous separable convolution with rate `r_h × r_w`
//! (`r_h, r_w ∈ {1, 3, 6, 9, 12, 15, 18, 21}`), or spatial pyramid (average) pooling with grid
//! `g_h × g_w` (`g_h, g_w ∈ {1, 2, 4, 8}`): 81 operations. The cell's output concatenates every
//! branch's output (the reference code then projects it with a 1x1 convolution).
//!
//! Architectures print as the branches separated by spaces, each `{op}<{input}`, with operations
//! `conv_1x1`, `sep_atrous_3x3_r{h}x{w}` and `spp_{h}x{w}`. The cell found by the paper's search
//! for Cityscapes ([`TOP1_CITYSCAPES`], from `dense_prediction_cell_branch5_top1_cityscapes.json`
//! in tensorflow/models `research/deeplab/core`, where input `-1` is the backbone and input `k`
//! the `k`-th branch counted from 0):
//!
//! ```
//! use nas_space::dpc::{DpcOp, DpcSpace, TOP1_CITYSCAPES};
//! use nas_space::{Enumerable, TextFormat};
//!
//! let space = DpcSpace::default();
//! let cell = space.parse(TOP1_CITYSCAPES)?;
//! assert_eq!(cell.branches[1].op, DpcOp::SepAtrous3x3 { rate_h: 18, rate_w: 15 });
//! assert_eq!(cell.branches[1].input, 1);
//! assert_eq!(space.to_text(&cell), TOP1_CITYSCAPES);
//! assert_eq!(space.size(), 120 * 81u128.pow(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The rates and grids are the paper's (Section 3.2); the reference implementation is
//! `research/deeplab/core/dense_prediction_cell.py` in tensorflow/models (operations `conv` with

mod canonical;
mod impls;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use types::{DpcArch, DpcBranch, DpcOp, DpcSpace};

const FORMAT: &str = "DPC architecture string";
const NAME: &str = "dpc";

/// The paper's atrous rates (each of `r_h`, `r_w`).
pub const RATES: [u32; 8] = [1, 3, 6, 9, 12, 15, 18, 21];
/// The paper's pyramid-pooling grid sizes (each of `g_h`, `g_w`).
pub const GRIDS: [u32; 4] = [1, 2, 4, 8];
/// The paper's number of branches.
pub const DEFAULT_BRANCHES: usize = 5;

/// The top-1 DPC found for Cityscapes (tensorflow/models
/// `research/deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json`), in this
/// module's text format.
pub const TOP1_CITYSCAPES: &str = "sep_atrous_3x3_r1x6<0 sep_atrous_3x3_r18x15<1 \
                                   sep_atrous_3x3_r6x3<2 sep_atrous_3x3_r1x1<1 sep_atrous_3x3_r6x21<1";
