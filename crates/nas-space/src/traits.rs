//! The core traits: a [`SearchSpace`] and the capabilities a space may offer.

use std::fmt::Debug;
use std::hash::Hash;

use rand::Rng;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::SpaceError;

/// A set of architectures that can be sampled and checked.
///
/// This is the one trait every space implements. Further capabilities are separate traits
/// ([`Mutate`], [`Neighborhood`], [`Encode`], [`Enumerable`], [`Canonicalize`], [`TextFormat`],
/// [`ToGraph`]) so a strategy states in its bounds exactly what it needs, and a custom space
/// implements only what it can.
///
/// The space owns its configuration (depth, allowed operations...); architectures are plain
/// values (`Clone + Eq + Hash + serde`) that the space validates. The random number generator
/// always comes from the caller, so a seeded strategy is reproducible.
///
/// # A complete custom space
///
/// ```
/// use nas_space::{Mutate, SearchSpace, SpaceError};
/// use rand::{Rng, RngExt, SeedableRng, rngs::ChaCha8Rng};
/// use serde::{Deserialize, Serialize};
///
/// /// A chain of `depth` layers, each with a kernel size from {3, 5, 7}.
/// struct KernelChain {
///     depth: usize,
/// }
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
/// struct Kernels(Vec<u8>);
///
/// const KERNELS: [u8; 3] = [3, 5, 7];
///
/// impl SearchSpace for KernelChain {
///     type Arch = Kernels;
///
///     fn name(&self) -> &str {
///         "kernel-chain"
///     }
///
///     fn sample(&self, rng: &mut dyn Rng) -> Kernels {
///         Kernels((0..self.depth).map(|_| KERNELS[rng.random_range(0..3)]).collect())
///     }
///
///     fn validate(&self, arch: &Kernels) -> Result<(), SpaceError> {
///         if arch.0.len() != self.depth {
///             return Err(SpaceError::invalid(self.name(), format!(
///                 "expected {} layers, found {}", self.depth, arch.0.len()
///             )));
///         }
///         match arch.0.iter().find(|k| !KERNELS.contains(k)) {
///             Some(k) => Err(SpaceError::invalid(self.name(), format!("kernel {k} is not 3, 5 or 7"))),
///             None => Ok(()),
///         }
///     }
/// }
///
/// impl Mutate for KernelChain {
///     fn mutate(&self, arch: &Kernels, rng: &mut dyn Rng) -> Result<Kernels, SpaceError> {
///         self.validate(arch)?;
///         let mut child = arch.clone();
///         let layer = rng.random_range(0..self.depth);
///         let others: Vec<u8> = KERNELS.into_iter().filter(|&k| k != arch.0[layer]).collect();
///         child.0[layer] = others[rng.random_range(0..others.len())];
///         Ok(child)
///     }
/// }
///
/// let space = KernelChain { depth: 4 };
/// let mut rng = ChaCha8Rng::seed_from_u64(0);
/// let parent = space.sample(&mut rng);
/// let child = space.mutate(&parent, &mut rng)?;
/// assert!(space.validate(&child).is_ok());
/// assert_ne!(parent, child);
/// assert!(space.validate(&Kernels(vec![3, 4, 5, 7])).is_err());
/// # Ok::<(), SpaceError>(())
/// ```
pub trait SearchSpace {
    /// One architecture of the space.
    type Arch: Clone + Debug + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// A short name used in messages and journals, e.g. `"nas-bench-201"`.
    fn name(&self) -> &str;

    /// Draws an architecture; uniform over the space unless the space documents otherwise.
    fn sample(&self, rng: &mut dyn Rng) -> Self::Arch;

    /// Checks that `arch` belongs to this space (with this configuration).
    fn validate(&self, arch: &Self::Arch) -> Result<(), SpaceError>;
}

/// One random step in the space: the mutation operator of evolutionary search.
pub trait Mutate: SearchSpace {
    /// Returns a valid architecture that differs from `arch` in exactly one decision.
    /// Fails if `arch` is not in the space, or has no neighbour.
    fn mutate(&self, arch: &Self::Arch, rng: &mut dyn Rng) -> Result<Self::Arch, SpaceError>;
}

/// The full one-step neighbourhood: local search, and the candidates that Bayesian optimization
/// scores when it maximizes its acquisition function.
pub trait Neighborhood: SearchSpace {
    /// Every architecture that differs from `arch` in exactly one decision, without duplicates
    /// and without `arch` itself, in a deterministic order.
    fn neighbors(&self, arch: &Self::Arch) -> Result<Vec<Self::Arch>, SpaceError>;
}

/// A fixed-length numeric encoding, for performance predictors and kernels.
///
/// The built-in spaces use one-hot operations followed (where the topology is searched) by the
/// flattened adjacency matrix; each space's docs give its layout.
pub trait Encode: SearchSpace {
    /// The length of every encoding of this space.
    fn encoding_len(&self) -> usize;
    /// Encodes `arch`; the result has length [`Encode::encoding_len`].
    fn encode(&self, arch: &Self::Arch) -> Result<Vec<f32>, SpaceError>;
}

/// A finite space with a bijection between `0..size()` and its architectures.
pub trait Enumerable: SearchSpace {
    /// The number of architectures (as represented, before any canonicalization).
    fn size(&self) -> u128;
    /// The architecture with index `index`.
    fn arch_at(&self, index: u128) -> Result<Self::Arch, SpaceError>;
    /// The index of `arch`; the inverse of [`Enumerable::arch_at`].
    fn index_of(&self, arch: &Self::Arch) -> Result<u128, SpaceError>;
    /// All architectures in index order.
    fn iter(&self) -> impl Iterator<Item = Self::Arch> + '_
    where
        Self: Sized,
    {
        (0..self.size()).filter_map(move |i| self.arch_at(i).ok())
    }
}

/// A canonical form: two architectures with the same canonical form compute the same function
/// family (their graphs are isomorphic, up to the equivalences each space documents).
pub trait Canonicalize: SearchSpace {
    /// The canonical form of `arch`.
    fn canonical(&self, arch: &Self::Arch) -> Result<CanonicalForm, SpaceError>;
}

/// A human-readable text format that round-trips: `parse(to_text(a)) == a`.
pub trait TextFormat: SearchSpace {
    /// Prints `arch` in the space's published notation.
    fn to_text(&self, arch: &Self::Arch) -> String;
    /// Parses and validates a string in that notation.
    fn parse(&self, text: &str) -> Result<Self::Arch, SpaceError>;
}

/// The space as a fixed sequence of categorical decisions: what an RNN controller samples one
/// decision at a time (Zoph & Le, ICLR 2017; ENAS, Pham et al., ICML 2018).
///
/// Decision `i` has [`decisions`](Sequential::decisions)`()[i]` choices (at least one; a
/// decision with one choice carries no information and a controller may skip it). The
/// number of choices of each decision does not depend on earlier choices, and the mapping is
/// a bijection: every vector `c` with `c[i] < decisions()[i]` is an architecture of the
/// space ([`from_decisions`](Sequential::from_decisions)), and every architecture has exactly
/// one vector ([`to_decisions`](Sequential::to_decisions)). Each space's docs give its order.
///
/// ```
/// use nas_space::nb201::Nb201Space;
/// use nas_space::{SearchSpace, Sequential};
///
/// let space = Nb201Space::default();
/// assert_eq!(space.decisions(), vec![5; 6]); // 6 edges, 5 operations each
/// let arch = space.from_decisions(&[3, 3, 3, 1, 3, 2])?;
/// assert_eq!(arch.to_string(), "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|");
/// assert_eq!(space.to_decisions(&arch)?, vec![3, 3, 3, 1, 3, 2]);
/// assert!(space.from_decisions(&[3, 3, 3, 1, 3, 5]).is_err()); // 5 is out of range
/// # Ok::<(), nas_space::SpaceError>(())
/// ```
pub trait Sequential: SearchSpace {
    /// The number of choices of each decision, in the order a controller makes them.
    fn decisions(&self) -> Vec<usize>;
    /// The architecture of `choices`. Fails when the length differs from
    /// [`Sequential::decisions`] or a choice is out of its range.
    // The space converts its argument, not itself (like `Enumerable::arch_at`); the name pairs
    // with `to_decisions`.
    #[allow(clippy::wrong_self_convention)]
    fn from_decisions(&self, choices: &[usize]) -> Result<Self::Arch, SpaceError>;
    /// The choices of `arch`; the inverse of [`Sequential::from_decisions`]. Fails when `arch`
    /// is not in the space.
    fn to_decisions(&self, arch: &Self::Arch) -> Result<Vec<usize>, SpaceError>;
    /// Which decisions choose among earlier states (inputs, skip connections), for a
    /// controller that makes them by attention over those states (see
    /// [`DecisionGraph`](crate::DecisionGraph)); `None` (the default) when the space has no such
    /// decisions, or does not say. A returned graph passes
    /// [`DecisionGraph::check`](crate::DecisionGraph::check) against
    /// [`Sequential::decisions`].
    fn decision_graph(&self) -> Option<crate::DecisionGraph> {
        None
    }
}

/// Checks a decision vector against the number of choices of each decision: the length, and
/// every choice in range.
pub(crate) fn check_choices(
    space: &str,
    decisions: &[usize],
    choices: &[usize],
) -> Result<(), SpaceError> {
    if choices.len() != decisions.len() {
        return Err(SpaceError::invalid(
            space,
            format!(
                "expected {} decisions, found {}",
                decisions.len(),
                choices.len()
            ),
        ));
    }
    match choices.iter().zip(decisions).position(|(&c, &n)| c >= n) {
        Some(i) => Err(SpaceError::invalid(
            space,
            format!(
                "decision {i} is {}, but it has only {} choices (0..{})",
                choices[i], decisions[i], decisions[i]
            ),
        )),
        None => Ok(()),
    }
}

/// The architecture as a labelled directed acyclic graph with operations on the nodes, the
/// representation graph kernels (Weisfeiler-Lehman) and graph predictors work on.
pub trait ToGraph: SearchSpace {
    /// The graph of `arch`.
    fn graph(&self, arch: &Self::Arch) -> Result<ArchGraph, SpaceError>;
}

/// A labelled DAG: node labels (operation names, plus `input`/`output`) and directed edges
/// `(from, to)` with `from < to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArchGraph {
    /// One label per node.
    pub labels: Vec<String>,
    /// Directed edges between node indices.
    pub edges: Vec<(usize, usize)>,
}

impl ArchGraph {
    /// The adjacency matrix, row-major (`adj[from * n + to]`).
    pub fn adjacency(&self) -> Vec<u8> {
        let n = self.labels.len();
        let mut adj = vec![0u8; n * n];
        for &(a, b) in &self.edges {
            adj[a * n + b] = 1;
        }
        adj
    }
}

/// The canonical form of an architecture: a string, with a hash that is stable across
/// platforms, Rust versions and runs (FNV-1a, 64 bits, over the string's UTF-8 bytes), so it can
/// be stored in journals and compared between machines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CanonicalForm(pub String);

impl CanonicalForm {
    /// The canonical string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// FNV-1a 64-bit hash of the canonical string.
    pub fn stable_hash(&self) -> u64 {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(self.0.as_bytes());
        h.finish()
    }
}

impl std::fmt::Display for CanonicalForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Picks a uniformly random element of `options` (which must be non-empty).
pub(crate) fn choose<T: Copy>(rng: &mut dyn Rng, options: &[T]) -> T {
    use rand::RngExt;
    options[rng.random_range(0..options.len())]
}

/// Mixed-radix helpers for [`Enumerable`] implementations: digit `k` has radix `radices[k]`,
/// digit 0 is the least significant.
pub mod radix {
    /// The product of the radices, or `None` on overflow.
    pub fn size(radices: &[u128]) -> Option<u128> {
        radices.iter().try_fold(1u128, |acc, &r| acc.checked_mul(r))
    }

    /// Digits of `index` (caller checks `index < size(radices)`).
    pub fn decode(mut index: u128, radices: &[u128]) -> Vec<u128> {
        radices
            .iter()
            .map(|&r| {
                let d = index % r;
                index /= r;
                d
            })
            .collect()
    }

    /// The index of `digits` (caller checks `digits[k] < radices[k]`).
    pub fn encode(digits: &[u128], radices: &[u128]) -> u128 {
        digits
            .iter()
            .zip(radices)
            .rev()
            .fold(0u128, |acc, (&d, &r)| acc * r + d)
    }
}
