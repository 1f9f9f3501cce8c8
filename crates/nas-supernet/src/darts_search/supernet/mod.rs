//! Supernets of the NAS-Bench-201 and DARTS spaces, and the derivation of a discrete
//! architecture from the alphas.
//!
//! Both mirror the discrete networks of [`crate::nb201_net`] and [`crate::darts_net`] (the
//! search networks of AutoDL-Projects' `TinyNetworkDARTS` and of `quark0/darts`'
//! `model_search.py`), with a [`MixedOp`](super::mixed::MixedOp) on every edge. As in the references, the batch norms
//! inside candidate operations (and the DARTS cells' preprocessing) have no learned scale and
//! shift, pooling operations of the DARTS space are followed by a batch norm, and all cells of
//! a kind share one set of alphas.

use std::fmt;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::darts::{DartsOp, Genotype};
use nas_space::nb201::{EDGES, Nb201Arch, Nb201Op, edge_nodes};
use serde::{Deserialize, Serialize};

use super::alphas::{ArchLayout, ArchMask, ArchProbabilities, ArchWeights, CellLayout};
use crate::error::SupernetError;

mod darts;
mod derive;
mod nb201;

pub use darts::{DartsSearchCell, DartsSupernet};
pub use derive::{derive_genotype, derive_nb201};
pub use nb201::{Nb201SearchCell, Nb201Supernet};

/// A network whose forward pass is driven by architecture weights.
pub trait SearchNetwork<B: Backend>: Module<B> {
    /// Logits `[batch, classes]` of `images` with the operations weighted by `weights`.
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2>;
}

/// What the search driver needs of a search space: the shape of its alphas, a supernet for a
/// mask of alive operations (at some extra depth, for P-DARTS), and the derivation of a
/// discrete architecture.
pub trait SupernetBuilder<B: Backend> {
    /// The supernet.
    type Network: SearchNetwork<B>;
    /// The discrete architecture derived from the alphas.
    type Arch: Clone + fmt::Debug + fmt::Display;

    /// The shape of the alphas.
    fn layout(&self) -> ArchLayout;

    /// Builds the supernet with `extra_cells` more cells than configured (P-DARTS grows the
    /// depth by stages); only the operations alive in `mask` are built.
    fn build(
        &self,
        extra_cells: usize,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Self::Network, SupernetError>;

    /// The architecture the probabilities select; `max_skip` caps the skip connections
    /// (P-DARTS) by removing the weakest ones.
    fn derive(&self, probabilities: &ArchProbabilities, max_skip: Option<usize>) -> Self::Arch;
}

/// Configuration of the NAS-Bench-201 supernet: the configuration of the stand-alone
/// network, whose [`Nb201Backbone`](crate::nb201_net::Nb201Backbone) the supernet shares (its
/// default, C = 16, N = 5, RGB, 10 classes, is the NAS-Bench-201 paper's search network).
pub type Nb201SupernetConfig = crate::nb201_net::Nb201NetConfig;

/// Configuration of the DARTS supernet (`Network` of `quark0/darts`' `model_search.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsSupernetConfig {
    /// Initial channels C.
    pub channels: usize,
    /// Number of cells; those at 1/3 and 2/3 of the depth reduce.
    pub layers: usize,
    /// Intermediate nodes per cell.
    pub steps: usize,
    /// Stem width as a multiple of C.
    pub stem_multiplier: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
}

impl DartsSupernetConfig {
    /// The macro structure of the supernet.
    pub fn macro_structure(&self) -> crate::darts_net::DartsMacro {
        crate::darts_net::DartsMacro {
            in_channels: self.in_channels,
            channels: self.channels,
            layers: self.layers,
            stem_multiplier: self.stem_multiplier,
            num_classes: self.num_classes,
        }
    }
}

impl Default for DartsSupernetConfig {
    /// DARTS' CIFAR-10 search network: C = 16, 8 cells, 4 nodes, stem 3C.
    fn default() -> Self {
        Self {
            channels: 16,
            layers: 8,
            steps: 4,
            stem_multiplier: 3,
            in_channels: 3,
            num_classes: 10,
        }
    }
}

/// The search space of a supernet and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "space", rename_all = "lowercase")]
pub enum SupernetConfig {
    /// The NAS-Bench-201 cell space.
    Nb201(Nb201SupernetConfig),
    /// The DARTS cell space.
    Darts(DartsSupernetConfig),
}

impl SupernetConfig {
    /// Checks the sizes: all positive; DARTS needs at least 3 cells (so that a normal cell
    /// exists beside the two reductions) and 1 to 8 nodes.
    pub fn check(&self) -> Result<(), SupernetError> {
        let bad = |reason: String| {
            Err(SupernetError::InvalidConfig {
                what: "supernet",
                reason,
            })
        };
        let sizes: Vec<(&str, usize)> = match self {
            SupernetConfig::Nb201(c) => vec![
                ("channels", c.channels),
                ("cells_per_stage", c.cells_per_stage),
                ("in_channels", c.in_channels),
                ("num_classes", c.num_classes),
            ],
            SupernetConfig::Darts(c) => vec![
                ("channels", c.channels),
                ("steps", c.steps),
                ("stem_multiplier", c.stem_multiplier),
                ("in_channels", c.in_channels),
                ("num_classes", c.num_classes),
            ],
        };
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return bad(format!("`{name}` must be positive"));
        }
        if let SupernetConfig::Darts(c) = self {
            if c.layers < 3 {
                return bad(format!(
                    "`layers` must be at least 3 (two reduction cells and a normal one), got {}",
                    c.layers
                ));
            }
            if c.steps > nas_space::darts::MAX_STEPS {
                return bad(format!(
                    "`steps` must be at most {}, got {}",
                    nas_space::darts::MAX_STEPS,
                    c.steps
                ));
            }
        }
        Ok(())
    }

    /// The space's name: `nb201` or `darts`.
    pub fn space_name(&self) -> &'static str {
        match self {
            SupernetConfig::Nb201(_) => "nb201",
            SupernetConfig::Darts(_) => "darts",
        }
    }
}

/// An architecture derived from a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DerivedArch {
    /// A NAS-Bench-201 cell.
    Nb201(Nb201Arch),
    /// A DARTS genotype.
    Darts(Genotype),
}

impl fmt::Display for DerivedArch {
    /// The published formats: `|op~0|+|...|` for NAS-Bench-201, Python's repr of the
    /// `Genotype` namedtuple for DARTS.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerivedArch::Nb201(a) => a.fmt(f),
            DerivedArch::Darts(g) => g.fmt(f),
        }
    }
}

pub(super) fn darts_edges(steps: usize) -> Vec<(usize, usize)> {
    (0..steps)
        .flat_map(|i| (0..i + 2).map(move |j| (i + 2, j)))
        .collect()
}

impl<B: Backend> SupernetBuilder<B> for SupernetConfig {
    type Network = Supernet<B>;
    type Arch = DerivedArch;

    fn layout(&self) -> ArchLayout {
        match self {
            SupernetConfig::Nb201(_) => ArchLayout {
                cells: vec![CellLayout {
                    name: "cell".into(),
                    edges: (0..EDGES)
                        .map(|k| {
                            let (to, from) = edge_nodes(k);
                            format!("{to}<-{from}")
                        })
                        .collect(),
                    ops: Nb201Op::ALL.iter().map(|o| o.name().to_string()).collect(),
                }],
            },
            SupernetConfig::Darts(c) => {
                let edges: Vec<String> = darts_edges(c.steps)
                    .iter()
                    .map(|(to, from)| format!("{to}<-{from}"))
                    .collect();
                let ops: Vec<String> = DartsOp::PRIMITIVES
                    .iter()
                    .map(|o| o.name().to_string())
                    .collect();
                ArchLayout {
                    cells: ["normal", "reduce"]
                        .iter()
                        .map(|name| CellLayout {
                            name: (*name).into(),
                            edges: edges.clone(),
                            ops: ops.clone(),
                        })
                        .collect(),
                }
            }
        }
    }

    fn build(
        &self,
        extra_cells: usize,
        mask: &ArchMask,
        device: &Device<B>,
    ) -> Result<Supernet<B>, SupernetError> {
        self.check()?;
        let layout = SupernetBuilder::<B>::layout(self);
        let shape_ok =
            mask.cells.len() == layout.cells.len()
                && mask.cells.iter().zip(&layout.cells).all(|(m, l)| {
                    m.len() == l.edges.len() && m.iter().all(|e| e.len() == l.ops.len())
                });
        if !shape_ok {
            return Err(SupernetError::InvalidConfig {
                what: "supernet",
                reason: "the operation mask does not match the space's edges and operations".into(),
            });
        }
        Ok(match self {
            SupernetConfig::Nb201(c) => {
                let c = Nb201SupernetConfig {
                    cells_per_stage: c.cells_per_stage + extra_cells,
                    ..*c
                };
                Supernet::Nb201(Nb201Supernet::new(&c, mask, device)?)
            }
            SupernetConfig::Darts(c) => {
                let c = DartsSupernetConfig {
                    layers: c.layers + extra_cells,
                    ..*c
                };
                Supernet::Darts(DartsSupernet::new(&c, mask, device)?)
            }
        })
    }

    fn derive(&self, probabilities: &ArchProbabilities, max_skip: Option<usize>) -> DerivedArch {
        match self {
            SupernetConfig::Nb201(_) => {
                DerivedArch::Nb201(derive_nb201(&probabilities.cells[0], max_skip))
            }
            SupernetConfig::Darts(c) => DerivedArch::Darts(derive_genotype(
                &probabilities.cells[0],
                &probabilities.cells[1],
                c.steps,
                max_skip,
            )),
        }
    }
}

/// A supernet of either space.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Supernet<B: Backend> {
    /// The NAS-Bench-201 supernet.
    Nb201(Nb201Supernet<B>),
    /// The DARTS supernet.
    Darts(DartsSupernet<B>),
}

impl<B: Backend> SearchNetwork<B> for Supernet<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        match self {
            Supernet::Nb201(n) => n.search_logits(images, weights),
            Supernet::Darts(n) => n.search_logits(images, weights),
        }
    }
}
