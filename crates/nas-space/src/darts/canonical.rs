//! The canonical form of DARTS genotypes: each cell relabelled to its least text.

use super::{DartsOp, DartsSpace, Genotype};
use crate::common::cells::{least_relabelling, node_preds};
use crate::error::SpaceError;
use crate::traits::{CanonicalForm, Canonicalize, SearchSpace};

/// The canonical string of one (valid) cell: the least, over all node orders that keep every
/// node after its predecessors, of the relabelled cell with each node's two inputs sorted.
fn canonical_cell(cell: &[(DartsOp, usize)], concat: &[usize]) -> String {
    let preds = node_preds(cell.chunks(2).map(|node| node.iter().map(|(_, j)| j)));
    least_relabelling(&preds, |order, map| {
        let nodes: Vec<String> = order
            .iter()
            .map(|&o| {
                let mut e: Vec<String> = cell[2 * o..2 * o + 2]
                    .iter()
                    .map(|&(op, j)| format!("{op}~{}", map(j)))
                    .collect();
                e.sort();
                e.join("+")
            })
            .collect();
        let mut cc: Vec<usize> = concat.iter().map(|&j| map(j)).collect();
        cc.sort_unstable();
        let cc: Vec<String> = cc.iter().map(|s| s.to_string()).collect();
        format!("{}|concat={}", nodes.join(";"), cc.join(","))
    })
}

impl Canonicalize for DartsSpace {
    /// Each cell is canonicalized on its own: among all relabellings of its intermediate nodes
    /// that keep every node after the nodes it reads (brute force over the topological orders,
    /// at most `steps!`), the one whose text is least, with each node's two inputs sorted (a
    /// node sums them, so their order is irrelevant) and the concat relabelled and sorted. The
    /// result is `normal:<cell>/reduce:<cell>`, a cell being
    /// `op~state+op~state;...|concat=2,3,...`. Two genotypes get the same form exactly when each
    /// cell of one is a relabelling of the same cell of the other; no other equivalence (for
    /// instance, of `none` inputs) is applied.
    fn canonical(&self, arch: &Genotype) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(format!(
            "normal:{}/reduce:{}",
            canonical_cell(&arch.normal, &arch.normal_concat),
            canonical_cell(&arch.reduce, &arch.reduce_concat)
        )))
    }
}
