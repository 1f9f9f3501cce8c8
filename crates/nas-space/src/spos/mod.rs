//! The Single Path One-Shot (SPOS) ShuffleNetV2 block space.
//!
//! Guo et al., *Single Path One-Shot Neural Architecture Search with Uniform Sampling*, ECCV
//! 2020 (arXiv:1904.00420); code `megvii-model/SinglePathOneShot`. The supernet
//! (`ShuffleNetV2_OneShot` in `src/Supernet/network.py` and `src/Evaluation/network.py`) has
//! `stage_repeats = [4, 4, 8, 4]` and `stage_out_channels = [-1, 16, 64, 160, 320, 640, 1024]`:
//! a 3x3 stride-2 stem convolution to 16 channels, four stages of 4, 4, 8 and 4 choice blocks
//! whose first block has stride 2, and a 1x1 convolution to 1024 channels. Each of the 20 choice
//! blocks picks one of four blocks, numbered as in the code (`blockIndex`):
//!
//! | index | name | block |
//! | --- | --- | --- |
//! | 0 | `shufflenet_3x3` | `Shufflenet(ksize=3)` |
//! | 1 | `shufflenet_5x5` | `Shufflenet(ksize=5)` |
//! | 2 | `shufflenet_7x7` | `Shufflenet(ksize=7)` |
//! | 3 | `xception` | `Shuffle_Xception` (three 3x3 depthwise convolutions) |
//!
//! The space holds 4^20 ≈ 1.1·10^12 architectures. The repository writes an architecture as a
//! tuple of block indices ([`SposArch::from_indices`], [`SposArch::to_indices`]); the text format
//! here joins the names with single spaces:
//!
//! ```
//! use nas_space::spos::{SposArch, SposChoice, SposSpace, SPOS_SEARCHED};
//! use nas_space::{SearchSpace, TextFormat};
//!
//! let space = SposSpace::default();
//! let searched = SposArch::from_indices(&SPOS_SEARCHED)?;
//! space.validate(&searched)?;
//! assert_eq!(searched.choices[0], SposChoice::Shufflenet7x7);
//! let text = space.to_text(&searched);
//! assert!(text.starts_with("shufflenet_7x7 shufflenet_5x5 shufflenet_3x3 "));
//! assert_eq!(space.parse(&text)?.to_indices(), SPOS_SEARCHED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod impls;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use types::{SposArch, SposChoice, SposConfig, SposLayer, SposSpace};

const FORMAT: &str = "SPOS architecture string";
const SPACE: &str = "spos";

/// The architecture found by the search of the paper's repository, as block indices: the
/// tuple in the results table of `megvii-model/SinglePathOneShot/README.md`
/// (323M FLOPs, 3.5M parameters, 25.6% top-1 error on ImageNet).
pub const SPOS_SEARCHED: [usize; 20] = [2, 1, 0, 1, 2, 0, 2, 0, 2, 0, 2, 3, 0, 0, 0, 0, 3, 2, 3, 3];
