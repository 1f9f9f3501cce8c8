//! The NAS-RL space: the CIFAR-10 convolutional networks of Zoph & Le, "Neural Architecture
//! Search with Reinforcement Learning" (ICLR 2017), Section 3.3 and 4.1.
//!
//! A network is a chain of `N` convolutional layers (default 15, the depth of the paper's best
//! CIFAR-10 model without strides). For every layer the controller picks a filter height in
//! `[1, 3, 5, 7]`, a filter width in `[1, 3, 5, 7]` and a number of filters in
//! `[24, 36, 48, 64]`; in one experiment it also picks a stride in `[1, 2, 3]` (off by default,
//! as in the paper's main setting, i.e. strides `[1]`). Skip connections: at layer `N` an anchor
//! point with one sigmoid per previous layer decides which earlier layers feed it; the chosen
//! inputs are concatenated along the depth dimension, a layer with no input reads the image, and
//! at the end every layer output that no layer consumes is concatenated and sent to the
//! classifier (the paper pads inputs of different sizes with zeros).
//!
//! Architectures print as the layers separated by single spaces, each
//! `{h}x{w}x{filters}s{stride}[{inputs}]` where `inputs` lists the 1-based numbers of the earlier
//! layers that feed it (empty: the image):
//!
//! ```
//! use nas_space::nasrl::{NasRlArch, NasRlSpace};
//! use nas_space::{Canonicalize, SearchSpace, TextFormat};
//!
//! let space = NasRlSpace::with_layers(3)?;
//! let arch = space.parse("3x3x36s1[] 5x7x48s1[1] 3x3x64s1[1,2]")?;
//! assert_eq!(arch.layers[2].inputs, vec![1, 2]);
//! assert_eq!(arch.unconsumed(), vec![3]);
//! assert_eq!(space.to_text(&arch).parse::<NasRlArch>()?, arch);
//! // The default space (15 layers) is far too large to enumerate: about 2^195 networks.
//! assert_eq!(NasRlSpace::default().log2_size(), 195.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The space's size, `(|heights|·|widths|·|filters|·|strides|)^N · 2^(N(N-1)/2)`, overflows
//! `u128` at the paper's depth (`64^15 · 2^105 = 2^195`, or `192^15 · 2^105` with strides), so
//! the space does not implement [`Enumerable`](crate::Enumerable); [`NasRlSpace::log2_size`]

mod canonical;
mod impls;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use types::{NasRlArch, NasRlLayer, NasRlSpace};

const FORMAT: &str = "NAS-RL architecture string";
const NAME: &str = "nas-rl";

/// The paper's filter heights.
pub const HEIGHTS: [u32; 4] = [1, 3, 5, 7];
/// The paper's filter widths.
pub const WIDTHS: [u32; 4] = [1, 3, 5, 7];
/// The paper's numbers of filters.
pub const FILTERS: [u32; 4] = [24, 36, 48, 64];
/// The strides of the paper's experiment that also searches strides.
pub const SEARCHED_STRIDES: [u32; 3] = [1, 2, 3];
/// The paper's depth for the best model without strides.
pub const DEFAULT_LAYERS: usize = 15;
