//! The canonical form of NASNet architectures: each cell relabelled to its least text.

use super::{NasNetArch, NasNetBlock, NasNetSpace};
use crate::common::cells::{least_relabelling, node_preds};
use crate::error::SpaceError;
use crate::traits::{CanonicalForm, Canonicalize, SearchSpace};

/// The canonical string of one (valid) cell: the least, over the block orders that keep every
/// block after the blocks it reads, of the relabelled cell with each block's branches sorted.
fn canonical_cell(cell: &[NasNetBlock]) -> String {
    let preds = node_preds(cell.iter().map(|b| &b.inputs));
    least_relabelling(&preds, |order, map| {
        let blocks: Vec<String> = order
            .iter()
            .map(|&o| {
                let b = &cell[o];
                let mut br = [0, 1].map(|k| format!("{}~{}", b.ops[k], map(b.inputs[k])));
                br.sort();
                format!("{}({},{})", b.combine, br[0], br[1])
            })
            .collect();
        blocks.join(";")
    })
}

impl Canonicalize for NasNetSpace {
    /// Each cell on its own: among all relabellings of its blocks that keep every block after
    /// the blocks it reads (brute force over the topological orders, at most `B!` = 120), the
    /// one whose text is least, with the two `(operation, input)` branches of every block
    /// sorted. Both combiners are treated as symmetric: `add` is commutative, and `concat` of
    /// `(x, y)` equals `concat` of `(y, x)` up to a permutation of channels, which the
    /// following layers absorb. The output concat follows from the blocks (unused ones), so it
    /// is not written. The result is `normal:<cell>/reduce:<cell>`, a cell being
    /// `add(op~state,op~state);...`.
    fn canonical(&self, arch: &NasNetArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(format!(
            "normal:{}/reduce:{}",
            canonical_cell(&arch.normal),
            canonical_cell(&arch.reduce)
        )))
    }
}
