//! The canonical form of ProxylessNAS architectures: skipped layers removed.

use super::{ProxylessArch, ProxylessSpace};
use crate::error::SpaceError;
use crate::traits::{CanonicalForm, Canonicalize, SearchSpace};

impl Canonicalize for ProxylessSpace {
    /// Skipped layers removed, segment by segment.
    ///
    /// A skippable layer computes `x + op(x)` with equal input and output shapes, or the
    /// identity when it is `zero`. The layers from one layer that changes the shape (stride ≠ 1
    /// or a width change: with the defaults, the first layer of each stage) up to the next
    /// such layer form a *segment*, whose skippable layers all share one shape. Within a segment
    /// a `zero` layer can therefore be moved anywhere among the skippable layers without
    /// changing the function family: a stage `[A, zero, B, C]` is the same network as
    /// `[A, B, zero, C]` or `[A, B, C, zero]`. The canonical form lists, per segment, the
    /// non-zero layers in order (the first, shape-changing layer keeps its place), segments
    /// joined by ` | `; with the defaults a segment is a stage, e.g.
    /// `5x5_MBConv3 | 7x7_MBConv3 3x3_MBConv3 | ...`. An empty segment (only possible when the
    /// network's first searchable layer is itself skippable and every layer of the segment is
    /// zero) prints as `-`. The order of non-zero layers matters, as they differ in function.
    fn canonical(&self, arch: &ProxylessArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        let segs: Vec<String> = self
            .segments()
            .into_iter()
            .map(|r| {
                let ops: Vec<String> = arch.layers[r]
                    .iter()
                    .filter(|c| !c.is_zero())
                    .map(|c| c.to_string())
                    .collect();
                if ops.is_empty() {
                    "-".to_string()
                } else {
                    ops.join(" ")
                }
            })
            .collect();
        Ok(CanonicalForm(segs.join(" | ")))
    }
}
