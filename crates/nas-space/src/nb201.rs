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

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::{Cursor, lookup};
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

const FORMAT: &str = "NAS-Bench-201 architecture string";

/// Number of nodes in a cell (input, two intermediate nodes, output).
pub const NODES: usize = 4;
/// Number of edges in a cell.
pub const EDGES: usize = 6;

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

    fn table() -> [(&'static str, Nb201Op); 5] {
        Nb201Op::ALL.map(|o| (o.name(), o))
    }
}

impl fmt::Display for Nb201Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Nb201Op {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        lookup(FORMAT, &Nb201Op::table(), s, 0)
    }
}

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

impl fmt::Display for Nb201Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for to in 1..NODES {
            if to > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..to {
                write!(f, "{}~{}|", self.edge(to, from), from)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Nb201Arch {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut c = Cursor::new(s, FORMAT);
        c.non_empty()?;
        c.skip_ws();
        let mut edges = [Nb201Op::None; EDGES];
        for to in 1..NODES {
            if to > 1 {
                c.expect_char('+').map_err(|e| {
                    if c.at_end() {
                        c.error(ParseErrorKind::WrongCount {
                            what: "nodes after the input".into(),
                            expected: NODES - 1,
                            found: to - 1,
                        })
                    } else {
                        e
                    }
                })?;
            }
            c.expect_char('|')?;
            let mut count = 0;
            while matches!(c.peek(), Some(ch) if ch.is_ascii_alphanumeric() || ch == '_') {
                let (name, pos) = c.ident()?;
                let op = lookup(FORMAT, &Nb201Op::table(), name, pos)?;
                c.expect_char('~')?;
                let (from, fpos) = c.number()?;
                if from >= to {
                    return Err(c.error_at(
                        ParseErrorKind::EdgeFromLaterNode { from, to },
                        fpos,
                        &from.to_string(),
                    ));
                }
                if from != count {
                    return Err(c.error_at(
                        ParseErrorKind::Invalid {
                            reason: format!(
                                "the edges into node {to} must be listed from node 0 upwards; expected `~{count}` here"
                            ),
                        },
                        fpos,
                        &from.to_string(),
                    ));
                }
                edges[edge_index(to, from)] = op;
                count += 1;
                c.expect_char('|')?;
            }
            if count != to {
                return Err(c.error(ParseErrorKind::WrongCount {
                    what: format!("edges into node {to}"),
                    expected: to,
                    found: count,
                }));
            }
        }
        if c.peek() == Some('+') {
            return Err(c.error(ParseErrorKind::WrongCount {
                what: "nodes after the input".into(),
                expected: NODES - 1,
                found: NODES - 1 + c.rest().matches('+').count(),
            }));
        }
        c.finish()?;
        Ok(Nb201Arch { edges })
    }
}

impl TryFrom<String> for Nb201Arch {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<Nb201Arch> for String {
    fn from(a: Nb201Arch) -> String {
        a.to_string()
    }
}

/// The NAS-Bench-201 cell space, optionally restricted to a subset of the operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Nb201SpaceConfig")]
pub struct Nb201Space {
    ops: Vec<Nb201Op>,
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
        if ops.is_empty() {
            return Err(SpaceError::config(
                "nas-bench-201",
                "ops",
                "must not be empty",
            ));
        }
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

    fn op_pos(&self, op: Nb201Op) -> Option<usize> {
        self.ops.iter().position(|&o| o == op)
    }
}

impl SearchSpace for Nb201Space {
    type Arch = Nb201Arch;

    fn name(&self) -> &str {
        "nas-bench-201"
    }

    fn sample(&self, rng: &mut dyn Rng) -> Nb201Arch {
        let mut edges = [Nb201Op::None; EDGES];
        for e in &mut edges {
            *e = choose(rng, &self.ops);
        }
        Nb201Arch { edges }
    }

    fn validate(&self, arch: &Nb201Arch) -> Result<(), SpaceError> {
        for (k, &op) in arch.edges.iter().enumerate() {
            if self.op_pos(op).is_none() {
                let (to, from) = edge_nodes(k);
                return Err(SpaceError::invalid(
                    self.name(),
                    format!("edge {from}->{to} uses `{op}`, which this space excludes"),
                ));
            }
        }
        Ok(())
    }
}

impl Mutate for Nb201Space {
    /// Changes the operation of one random edge (the mutation of REA on NAS-Bench-201).
    fn mutate(&self, arch: &Nb201Arch, rng: &mut dyn Rng) -> Result<Nb201Arch, SpaceError> {
        self.validate(arch)?;
        if self.ops.len() < 2 {
            return Err(SpaceError::NoNeighbor {
                space: self.name().into(),
            });
        }
        let k = choose(rng, &[0, 1, 2, 3, 4, 5]);
        let others: Vec<Nb201Op> = self
            .ops
            .iter()
            .copied()
            .filter(|&o| o != arch.edges[k])
            .collect();
        let mut child = *arch;
        child.edges[k] = choose(rng, &others);
        Ok(child)
    }
}

impl Neighborhood for Nb201Space {
    fn neighbors(&self, arch: &Nb201Arch) -> Result<Vec<Nb201Arch>, SpaceError> {
        self.validate(arch)?;
        let mut out = Vec::with_capacity(EDGES * (self.ops.len() - 1));
        for k in 0..EDGES {
            for &op in &self.ops {
                if op != arch.edges[k] {
                    let mut n = *arch;
                    n.edges[k] = op;
                    out.push(n);
                }
            }
        }
        if out.is_empty() {
            return Err(SpaceError::NoNeighbor {
                space: self.name().into(),
            });
        }
        Ok(out)
    }
}

impl Encode for Nb201Space {
    /// 6 edges × |ops| one-hot (edge-major, ops in the space's order). The topology is fixed, so
    /// the adjacency carries no information and is not included.
    fn encoding_len(&self) -> usize {
        EDGES * self.ops.len()
    }

    fn encode(&self, arch: &Nb201Arch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let n = self.ops.len();
        let mut v = vec![0.0; EDGES * n];
        for (k, &op) in arch.edges.iter().enumerate() {
            if let Some(p) = self.op_pos(op) {
                v[k * n + p] = 1.0;
            }
        }
        Ok(v)
    }
}

impl Enumerable for Nb201Space {
    /// `|ops|^6`; index = Σ_k pos(op_k)·|ops|^k over edges in string order (edge `1←0` is the
    /// least significant digit). This is our own order: the benchmark's table has its own row
    /// order, which a table reader keeps separately.
    fn size(&self) -> u128 {
        (self.ops.len() as u128).pow(EDGES as u32)
    }

    fn arch_at(&self, index: u128) -> Result<Nb201Arch, SpaceError> {
        SpaceError::check_index(self.name(), index, self.size())?;
        let digits = radix::decode(index, &[self.ops.len() as u128; EDGES]);
        let mut edges = [Nb201Op::None; EDGES];
        for (e, d) in edges.iter_mut().zip(digits) {
            *e = self.ops[d as usize];
        }
        Ok(Nb201Arch { edges })
    }

    fn index_of(&self, arch: &Nb201Arch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        let digits: Vec<u128> = arch
            .edges
            .iter()
            .map(|&o| self.op_pos(o).unwrap_or(0) as u128)
            .collect();
        Ok(radix::encode(&digits, &[self.ops.len() as u128; EDGES]))
    }
}

impl Canonicalize for Nb201Space {
    /// NAS-Bench-201's own functional-equivalence key ([`Nb201Arch::unique_string`]): it splits
    /// the 15,625 cells into the benchmark's 6,466 classes. Besides isomorphic relabellings it
    /// identifies cells that differ only in edges that carry no information (`none`, or edges
    /// out of a node that receives nothing).
    fn canonical(&self, arch: &Nb201Arch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(arch.unique_string()))
    }
}

impl TextFormat for Nb201Space {
    fn to_text(&self, arch: &Nb201Arch) -> String {
        arch.to_string()
    }

    fn parse(&self, text: &str) -> Result<Nb201Arch, SpaceError> {
        let arch: Nb201Arch = text.parse()?;
        self.validate(&arch)?;
        Ok(arch)
    }
}

impl ToGraph for Nb201Space {
    /// Operations on nodes (the NAS-Bench-101 view): node 0 is `input`, one node per edge that
    /// is not `none`, and a last node `output`. An op node for edge `i→j` reads from every op
    /// node of an edge into `i` (or from `input` when `i = 0`) and feeds every op node of an
    /// edge out of `j` (or `output` when `j = 3`).
    fn graph(&self, arch: &Nb201Arch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        let live: Vec<usize> = (0..EDGES)
            .filter(|&k| arch.edges[k] != Nb201Op::None)
            .collect();
        let mut labels = vec!["input".to_string()];
        labels.extend(live.iter().map(|&k| arch.edges[k].name().to_string()));
        labels.push("output".into());
        let out = labels.len() - 1;
        let id = |k: usize| 1 + live.iter().position(|&x| x == k).unwrap_or(0);
        let mut edges = Vec::new();
        for &k in &live {
            let (to, from) = edge_nodes(k);
            if from == 0 {
                edges.push((0, id(k)));
            } else {
                for &k2 in &live {
                    if edge_nodes(k2).0 == from {
                        edges.push((id(k2), id(k)));
                    }
                }
            }
            if to == NODES - 1 {
                edges.push((id(k), out));
            }
        }
        edges.sort();
        Ok(ArchGraph { labels, edges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;

    const BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

    #[test]
    fn laws_hold() {
        let s = Nb201Space::default();
        laws::check_sample(&s, 1, 200).unwrap();
        laws::check_serde(&s, 2, 200).unwrap();
        laws::check_mutate(&s, 3, 200).unwrap();
        laws::check_neighbors(&s, 4, 50).unwrap();
        laws::check_text(&s, 5, 200).unwrap();
        laws::check_encode(&s, 6, 50).unwrap();
        laws::check_enumerable(&s, 7, 200).unwrap();
        laws::check_canonical(&s, 8, 50).unwrap();
        laws::check_graph(&s, 9, 50).unwrap();
    }

    #[test]
    fn restricted_space_laws_hold() {
        let s = Nb201Space::with_ops(&[Nb201Op::SkipConnect, Nb201Op::NorConv3x3]).unwrap();
        assert_eq!(s.size(), 64);
        laws::check_mutate(&s, 1, 50).unwrap();
        laws::check_enumerable(&s, 1, 50).unwrap();
        laws::check_neighbors(&s, 1, 20).unwrap();
        let all_none = Nb201Arch::new([Nb201Op::None; 6]);
        assert!(matches!(
            s.validate(&all_none),
            Err(SpaceError::InvalidArch { .. })
        ));
        assert!(Nb201Space::with_ops(&[]).is_err());
        assert!(Nb201Space::with_ops(&[Nb201Op::None, Nb201Op::None]).is_err());
    }

    #[test]
    fn prints_and_parses_the_published_best_cell() {
        let a: Nb201Arch = BEST.parse().unwrap();
        assert_eq!(a.to_string(), BEST);
        assert_eq!(a.edge(1, 0), Nb201Op::NorConv3x3);
        assert_eq!(a.edge(3, 2), Nb201Op::NorConv1x1);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{BEST}\""));
    }

    #[test]
    fn unique_string_matches_table_examples() {
        let a: Nb201Arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
            .parse()
            .unwrap();
        assert_eq!(
            a.unique_string(),
            "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0"
        );
        let b: Nb201Arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
            .parse()
            .unwrap();
        assert_eq!(
            b.unique_string(),
            "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1"
        );
    }

    #[test]
    fn full_enumeration_is_a_bijection() {
        let s = Nb201Space::default();
        let all: Vec<_> = s.iter().collect();
        assert_eq!(all.len(), 15_625);
        let set: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), 15_625);
        for (i, a) in all.iter().enumerate().step_by(97) {
            assert_eq!(s.index_of(a).unwrap(), i as u128);
        }
    }

    fn err(s: &str) -> ParseError {
        s.parse::<Nb201Arch>().unwrap_err()
    }

    #[test]
    fn bad_strings_name_token_and_position() {
        let e = err(
            "|nor_conv_5x5~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        );
        assert!(matches!(e.kind, ParseErrorKind::UnknownOp { .. }));
        assert_eq!((e.position, e.token.as_str()), (1, "nor_conv_5x5"));
        assert!(e.to_string().contains("nor_conv_5x5") && e.to_string().contains("skip_connect"));

        let e = err(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~2|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        );
        assert_eq!(e.kind, ParseErrorKind::EdgeFromLaterNode { from: 2, to: 2 });
        assert_eq!(e.position, 46);

        let e = err("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|");
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{e}"
        );

        let e =
            err("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|");
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 2,
                    found: 1,
                    ..
                }
            ),
            "{e}"
        );

        let e = err(&format!("{BEST}+|none~0|none~1|none~2|none~3|"));
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::WrongCount {
                    expected: 3,
                    found: 4,
                    ..
                }
            ),
            "{e}"
        );

        let e = err(&format!("{BEST} extra"));
        assert_eq!(e.kind, ParseErrorKind::TrailingInput);
        assert_eq!(e.token, "extra");

        assert_eq!(err("   ").kind, ParseErrorKind::Empty);
        assert!(matches!(
            err("nor_conv_3x3~0").kind,
            ParseErrorKind::Expected { .. }
        ));
        assert!(matches!(
            err("|nor_conv_3x3~x|").kind,
            ParseErrorKind::Expected { .. }
        ));
        assert!(matches!(
            err("|nor_conv_3x3~99999999999999999999999|").kind,
            ParseErrorKind::InvalidNumber { .. }
        ));
        // Edges out of order.
        let e = err(
            "|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        );
        assert!(matches!(e.kind, ParseErrorKind::Invalid { .. }), "{e}");
    }

    #[test]
    fn serde_rejects_bad_strings() {
        let r: Result<Nb201Arch, _> = serde_json::from_str("\"|bogus~0|\"");
        assert!(r.unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn graph_of_best_cell() {
        let s = Nb201Space::default();
        let a: Nb201Arch = BEST.parse().unwrap();
        let g = s.graph(&a).unwrap();
        assert_eq!(g.labels.len(), 8);
        assert_eq!(g.labels[0], "input");
        assert_eq!(g.labels[7], "output");
        // Edge 1<-0 (node 1) feeds edges 2<-1 (node 3) and 3<-1 (node 5).
        assert!(g.edges.contains(&(1, 3)) && g.edges.contains(&(1, 5)));
        let none = Nb201Arch::new([Nb201Op::None; 6]);
        assert_eq!(s.graph(&none).unwrap().labels, vec!["input", "output"]);
    }
}
