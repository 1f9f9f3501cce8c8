//! The canonical form of DPC cells: a canonical renumbering of the branches.

use super::{DpcArch, DpcBranch, DpcSpace};
use crate::error::SpaceError;
use crate::traits::{CanonicalForm, Canonicalize, SearchSpace};

/// The canonical relabelling of a structurally valid cell (see `Canonicalize`).
fn canonical_arch(arch: &DpcArch) -> DpcArch {
    let n = arch.branches.len();
    // Node 0 is the backbone, node k is branch k; every branch has exactly one parent.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    for (k, b) in arch.branches.iter().enumerate() {
        children[b.input].push(k + 1);
    }
    // AHU-style subtree keys, bottom-up (children have larger numbers than their parent).
    let mut key: Vec<String> = vec![String::new(); n + 1];
    for node in (0..=n).rev() {
        children[node].sort_by(|a, b| key[*a].cmp(&key[*b]).then(a.cmp(b)));
        let label = match node {
            0 => "input".to_string(),
            k => arch.branches[k - 1].op.to_string(),
        };
        let inner: Vec<&str> = children[node].iter().map(|&c| key[c].as_str()).collect();
        key[node] = format!("{label}({})", inner.join(","));
    }
    // Preorder over the sorted tree: a topological order in which parents precede children.
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<usize> = children[0].iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        order.push(node);
        stack.extend(children[node].iter().rev().copied());
    }
    let mut new_of = vec![0usize; n + 1];
    for (new, &old) in order.iter().enumerate() {
        new_of[old] = new + 1;
    }
    DpcArch {
        branches: order
            .iter()
            .map(|&old| {
                let b = arch.branches[old - 1];
                DpcBranch {
                    input: new_of[b.input],
                    op: b.op,
                }
            })
            .collect(),
    }
}

impl Canonicalize for DpcSpace {
    /// The text of a canonical renumbering of the branches.
    ///
    /// The cell's output concatenates all branches, so their order only permutes channels: any
    /// renumbering of the branches that keeps every input earlier than its reader computes the
    /// same function family. Since every branch has exactly one input, a cell is a rooted tree
    /// (root: the backbone) with operations on the nodes, and these renumberings are exactly its
    /// isomorphisms. The canonical form sorts each node's children by their subtree's canonical
    /// key (`op(child keys...)`, the AHU tree-isomorphism code), numbers the branches in
    /// preorder of the sorted tree, and prints the renumbered cell: a valid cell's text, equal
    /// for two cells if and only if one is a renumbering of the other. (For the default 5
    /// branches this is checked against brute force over all 5! renumberings in the tests.)
    fn canonical(&self, arch: &DpcArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(canonical_arch(arch).to_string()))
    }
}
