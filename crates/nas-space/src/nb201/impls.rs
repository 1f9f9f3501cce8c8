//! The capabilities of [`Nb201Space`].

use rand::Rng;

use super::{EDGES, NODES, Nb201Arch, Nb201Op, Nb201Space, edge_nodes};
use crate::common::{io_labels, some_neighbors};
use crate::error::SpaceError;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

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
        some_neighbors(self.name(), out)
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
        let labels = io_labels(live.iter().map(|&k| arch.edges[k].name().to_string()));
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
