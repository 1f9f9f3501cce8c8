//! The NAS-Bench-201 (NATS-Bench topology) cell space.
//!
//! A cell has 4 nodes; node 0 is the cell input and node 3 its output. Every pair `i < j` is
//! joined by an edge carrying one of five operations, so a cell has 6 edges and the space holds
//! 5^6 = 15,625 cells. Architectures print in the benchmark's notation,
//! `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, where the `j`-th group lists the edges into node `j`
//! and `op~i` is the edge from node `i`.
//!
//! ```
//! use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
//! use nas_space::{Canonicalize, TextFormat};
//!
//! let space = Nb201Space::default();
//! let best = space.parse(
//!     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
//! )?;
//! assert_eq!(best.edge(3, 0), Nb201Op::SkipConnect);
//! assert_eq!(space.to_text(&best).parse::<Nb201Arch>()?, best);
//! let canon = space.canonical(&best)?;
//! assert!(canon.as_str().ends_with("+0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod impls;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use types::{Nb201Arch, Nb201Op, Nb201Space, edge_index, edge_nodes};

const FORMAT: &str = "NAS-Bench-201 architecture string";

/// Number of nodes in a cell (input, two intermediate nodes, output).
pub const NODES: usize = 4;
/// Number of edges in a cell.
pub const EDGES: usize = 6;
