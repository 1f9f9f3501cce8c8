//! The NASNet cell space (Zoph, Vasudevan, Shlens and Le, "Learning Transferable Architectures
//! for Scalable Image Recognition", CVPR 2018).
//!
//! A network stacks normal and reduction cells. A cell has two input hidden states and `B`
//! blocks (5 in the paper). Block `b` picks two hidden states, applies one operation to each,
//! and combines the two results by element-wise addition or by concatenation along the
//! channels; its output becomes a new hidden state that later blocks may pick. The cell output
//! concatenates the blocks whose output no block of the cell uses (the paper: "all unused
//! hidden states generated in the convolutional cell are concatenated together in depth"; NNI's
//! and NDS' NASNet space: "concatenation of nodes not used as input to other nodes").
//!
//! Hidden states are numbered as in the DARTS notation ([`crate::darts`]): 0 = `h_{i-1}` (the
//! output of the cell before the previous one, DARTS' `c_{k-2}`), 1 = `h_i` (the previous
//! cell's output), `2 + b` = the output of block `b`. A block may pick the same state twice.
//!
//! The text format (this crate's own; NASNet has no published string notation) is one line:
//!
//! ```text
//! NASNet(normal=[('sep_conv_5x5', 1, 'sep_conv_3x3', 0, 'add'), ...], reduce=[...])
//! ```
//!
//! each block written `(op of the first input, first input, op of the second input, second
//! input, combiner)`. Double quotes, trailing commas and any whitespace are accepted.
//!
//! The 13 operations are the paper's list, named as in the NDS/NNI implementation of the
//! NASNet space (`NASNET_OPS` of `facebookresearch/pycls`/`unnas` and of NNI's
//! `nni/nas/hub/pytorch/nasnet.py`), in the paper's order; see [`NasNetOp`].
//!
//! [`NASNET_A`] is NASNet-A, transcribed from the TF-slim implementation
//! (`tensorflow/models`, `research/slim/nets/nasnet/nasnet_utils.py`, `NasNetANormalCell` and
//! `NasNetAReductionCell`): block `b` has operations `operations[2b]`, `operations[2b + 1]`
//! on states `hiddenstate_indices[2b]`, `hiddenstate_indices[2b + 1]`, combined by `add`.
//! Slim numbers the states the other way round (its 0 is the current input `h_i`, its 1 is
//! `h_{i-1}`), so indices 0 and 1 are swapped here; slim's `none` is the identity
//! (`skip_connect`) and its `separable_KxK_2` is `sep_conv_KxK` (a separable convolution
//! applied twice, as in DARTS). The result equals the DARTS repository's `NASNet` genotype
//! ([`crate::darts::NASNET`]) op for op. One difference remains in the cell outputs: slim
//! hard-codes `used_hiddenstates`, which for the normal cell also concatenates `h_{i-1}` and for
//! the reduction cell concatenates block 1 although block 3 reads it; the rule used here
//! (unused blocks only) gives the DARTS repository's concats, `[2, 3, 4, 5, 6]` and `[4, 5, 6]`.
//!
//! ```
//! use nas_space::nasnet::{self, NasNetSpace};
//! use nas_space::{Canonicalize, Enumerable, TextFormat};
//!
//! let space = NasNetSpace::default();
//! let a = space.parse(nasnet::NASNET_A)?;
//! assert_eq!(space.to_text(&a), nasnet::NASNET_A);
//! assert_eq!(a.output_states(nas_space::darts::CellKind::Reduce), vec![4, 5, 6]);
//! let _index = space.index_of(&a)?;
//! let _key = space.canonical(&a)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())

mod canonical;
mod impls;
mod space;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use space::NasNetSpace;
pub use types::{Combiner, NasNetArch, NasNetBlock, NasNetConfig, NasNetOp};

const FORMAT: &str = "NASNet architecture string";
const NAME: &str = "nasnet";

/// The largest number of blocks per cell a [`NasNetSpace`] accepts (canonical forms are found
/// by brute force over block orders).
pub const MAX_BLOCKS: usize = 8;

/// NASNet-A (normal and reduction cell) in this module's notation; see the [module
/// documentation](self) for how it was transcribed from TF-slim.
pub const NASNET_A: &str = "NASNet(normal=[('sep_conv_5x5', 1, 'sep_conv_3x3', 0, 'add'), ('sep_conv_5x5', 0, 'sep_conv_3x3', 0, 'add'), ('avg_pool_3x3', 1, 'skip_connect', 0, 'add'), ('avg_pool_3x3', 0, 'avg_pool_3x3', 0, 'add'), ('sep_conv_3x3', 1, 'skip_connect', 1, 'add')], reduce=[('sep_conv_5x5', 1, 'sep_conv_7x7', 0, 'add'), ('max_pool_3x3', 1, 'sep_conv_7x7', 0, 'add'), ('avg_pool_3x3', 1, 'sep_conv_5x5', 0, 'add'), ('skip_connect', 3, 'avg_pool_3x3', 2, 'add'), ('sep_conv_3x3', 2, 'max_pool_3x3', 1, 'add')])";

/// [`NASNET_A`], parsed.
pub fn nasnet_a() -> NasNetArch {
    // A constant checked by the tests, not user input.
    NASNET_A.parse().expect("built-in NASNet-A parses")
}
