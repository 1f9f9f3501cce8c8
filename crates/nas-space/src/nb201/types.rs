//! The NAS-Bench-201 cell space: the architecture and operation types, and the space.

use serde::{Deserialize, Serialize};

use super::{EDGES, FORMAT, NODES};
use crate::common::{named_op, non_empty};
use crate::error::SpaceError;

/// An operation on a NAS-Bench-201 edge, in the benchmark's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nb201Op {
    /// `none`: the zero operation (no information flows).
    None,
    /// `skip_connect`: identity.
    SkipConnect,
    /// `nor_conv_1x1`: ReLU, 1x1 convolution, batch norm.
    NorConv1x1,
    /// `nor_conv_3x3`: ReLU, 3x3 convolution, batch norm.
    NorConv3x3,
    /// `avg_pool_3x3`: 3x3 average pooling, stride 1.
    AvgPool3x3,
}

impl Nb201Op {
    /// All five operations, in the benchmark's order.
    pub const ALL: [Nb201Op; 5] = [
        Nb201Op::None,
        Nb201Op::SkipConnect,
        Nb201Op::NorConv1x1,
        Nb201Op::NorConv3x3,
        Nb201Op::AvgPool3x3,
    ];

    /// The benchmark's name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Nb201Op::None => "none",
            Nb201Op::SkipConnect => "skip_connect",
            Nb201Op::NorConv1x1 => "nor_conv_1x1",
            Nb201Op::NorConv3x3 => "nor_conv_3x3",
            Nb201Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// Position in [`Nb201Op::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn table() -> [(&'static str, Nb201Op); 5] {
        Nb201Op::ALL.map(|o| (o.name(), o))
    }
}

named_op!(Nb201Op, FORMAT);

/// A NAS-Bench-201 cell: the operation on each of its 6 edges.
///
/// Edges are stored in the order of the string format: `1←0, 2←0, 2←1, 3←0, 3←1, 3←2`.
/// Serialized (serde) as its architecture string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nb201Arch {
    /// Operations in edge order `1←0, 2←0, 2←1, 3←0, 3←1, 3←2`.
    pub edges: [Nb201Op; EDGES],
}

/// The position in [`Nb201Arch::edges`] of the edge from node `from` into node `to`.
///
/// # Panics
/// If `from >= to` or `to` is not in `1..4` (a programming error, not user input).
pub fn edge_index(to: usize, from: usize) -> usize {
    assert!(
        from < to && (1..NODES).contains(&to),
        "no NB201 edge {from} -> {to}"
    );
    to * (to - 1) / 2 + from
}

/// The `(to, from)` nodes of edge `k` (inverse of [`edge_index`]).
pub fn edge_nodes(k: usize) -> (usize, usize) {
    const NODES_OF: [(usize, usize); EDGES] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];
    NODES_OF[k]
}

impl Nb201Arch {
    /// A cell from its 6 edge operations (edge order `1←0, 2←0, 2←1, 3←0, 3←1, 3←2`).
    pub fn new(edges: [Nb201Op; EDGES]) -> Self {
        Self { edges }
    }

    /// The operation on the edge from node `from` into node `to`.
    pub fn edge(&self, to: usize, from: usize) -> Nb201Op {
        self.edges[edge_index(to, from)]
    }

    /// The functional-equivalence key of NAS-Bench-201 (its `UniqueString`).
    ///
    /// Node 0 is `0`; for each later node every incoming edge gives a term: `#` when the op is
    /// `none` or the source's string is exactly `#`, the source string itself for
    /// `skip_connect`, and `(source)@op` otherwise; a node's string is its terms sorted (byte
    /// order) and joined by `+`. The key is the output node's string. This reproduces the
    /// benchmark's column for all 15,625 cells.
    pub fn unique_string(&self) -> String {
        let mut node: Vec<String> = vec!["0".to_string()];
        for to in 1..NODES {
            let mut terms: Vec<String> = (0..to)
                .map(|from| {
                    let src = &node[from];
                    match self.edge(to, from) {
                        Nb201Op::None => "#".to_string(),
                        _ if src == "#" => "#".to_string(),
                        Nb201Op::SkipConnect => src.clone(),
                        op => format!("({src})@{}", op.name()),
                    }
                })
                .collect();
            terms.sort();
            node.push(terms.join("+"));
        }
        node.pop().unwrap_or_default()
    }
}
/// The NAS-Bench-201 cell space, optionally restricted to a subset of the operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Nb201SpaceConfig")]
pub struct Nb201Space {
    pub(super) ops: Vec<Nb201Op>,
}

/// The serialized form of [`Nb201Space`]; loading goes through [`Nb201Space::with_ops`].
#[derive(Deserialize)]
struct Nb201SpaceConfig {
    ops: Vec<Nb201Op>,
}

impl TryFrom<Nb201SpaceConfig> for Nb201Space {
    type Error = SpaceError;
    fn try_from(c: Nb201SpaceConfig) -> Result<Self, SpaceError> {
        Nb201Space::with_ops(&c.ops)
    }
}

impl Default for Nb201Space {
    /// All five operations: the benchmark's 15,625 cells.
    fn default() -> Self {
        Self {
            ops: Nb201Op::ALL.to_vec(),
        }
    }
}

impl Nb201Space {
    /// A space whose edges choose among `ops` only (e.g. without `none`). Order is kept for
    /// enumeration and encoding. Fails on an empty list or duplicates.
    pub fn with_ops(ops: &[Nb201Op]) -> Result<Self, SpaceError> {
        non_empty("nas-bench-201", "ops", ops)?;
        let mut sorted = ops.to_vec();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != ops.len() {
            return Err(SpaceError::config(
                "nas-bench-201",
                "ops",
                "contains a duplicate operation",
            ));
        }
        Ok(Self { ops: ops.to_vec() })
    }

    /// The operations an edge may carry.
    pub fn ops(&self) -> &[Nb201Op] {
        &self.ops
    }

    pub(super) fn op_pos(&self, op: Nb201Op) -> Option<usize> {
        self.ops.iter().position(|&o| o == op)
    }
}
