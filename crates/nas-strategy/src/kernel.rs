//! Kernels over architectures, for the Gaussian process of [`crate::BayesianOptimization`].
//!
//! An [`ArchKernel`] turns an architecture into features once (they are cached per
//! architecture) and measures a dissimilarity `d(a, b)` between two feature sets. The Gaussian
//! process uses the covariance `k(a, b) = s² · exp(-θ · d(a, b))`, with the signal variance
//! `s²` and the inverse length scale `θ` fitted by marginal likelihood. For that covariance to
//! be positive definite for every `θ > 0`, `d` must be *conditionally negative definite*
//! (Schoenberg's theorem): every ℓ1 distance is, and so is `1 - k̂` for any normalized positive
//! definite kernel `k̂`. Both kernels here are built that way:
//!
//! - [`WeisfeilerLehman`]: the Weisfeiler-Lehman subtree kernel on [`ToGraph`] graphs
//!   (Shervashidze et al., JMLR 2011; used for NAS by Ru et al., "Interpretable Neural
//!   Architecture Search via Bayesian Optimisation with Weisfeiler-Lehman Kernels", ICLR 2021),
//!   `d = 1 - cos(φ(a), φ(b))` over the subtree-pattern counts `φ`.
//! - [`Hamming`]: the exponential Hamming ("string") kernel on [`Encode`]'s vector, `d` the ℓ1
//!   distance divided by the encoding length (for one-hot encodings, the fraction of positions
//!   that differ).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hasher;

use nas_space::{ArchGraph, Encode, SearchSpace, ToGraph};
use serde::{Deserialize, Serialize};

use crate::StrategyError;

/// A kernel over the architectures of `S`, through per-architecture features and a
/// conditionally negative definite dissimilarity (see the [module docs](self)).
pub trait ArchKernel<S: SearchSpace> {
    /// What the kernel computes once per architecture.
    type Features: Debug + Send + Sync;

    /// A short name for messages.
    fn name(&self) -> &'static str;

    /// The features of `arch`. Fails if `arch` is not in `space`.
    fn features(&self, space: &S, arch: &S::Arch) -> Result<Self::Features, StrategyError>;

    /// The dissimilarity of two architectures: `d(a, a) = 0`, `d ≥ 0`, symmetric, and
    /// conditionally negative definite so that `exp(-θ d)` is a positive definite kernel for
    /// every `θ > 0`.
    fn distance(&self, a: &Self::Features, b: &Self::Features) -> f64;

    /// The distances from every one of `rows` to every one of `cols`, column by column
    /// (`out[j * rows.len() + i] = d(rows[i], cols[j])`). The default calls
    /// [`ArchKernel::distance`] for every pair; kernels with a faster batched form override it
    /// (this is the inner loop of scoring candidates).
    fn cross_distances(&self, rows: &[&Self::Features], cols: &[&Self::Features]) -> Vec<f64> {
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for c in cols {
            out.extend(rows.iter().map(|r| self.distance(r, c)));
        }
        out
    }
}

/// The Weisfeiler-Lehman subtree kernel on the architecture's labelled DAG ([`ToGraph`]).
///
/// Iteration 0 labels each node with its operation; iteration `i` relabels each node with a
/// hash of its label and the sorted labels of its predecessors and of its successors. The
/// features are the counts of every label of iterations `0..=h`; two architectures compare by
/// the cosine of their count vectors (`d = 1 - cos`). Labels are 64-bit FNV-1a hashes, so no
/// shared dictionary is needed and the features of an architecture never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeisfeilerLehman {
    /// The number of relabelling iterations `h` (Ru et al. use 1 or 2).
    pub iterations: usize,
}

impl Default for WeisfeilerLehman {
    /// `h = 2`.
    fn default() -> Self {
        Self { iterations: 2 }
    }
}

/// Weisfeiler-Lehman features: sorted `(label, count)` pairs and the vector's norm.
#[derive(Debug, Clone, PartialEq)]
pub struct WlFeatures {
    counts: Vec<(u64, f64)>,
    norm: f64,
}

impl WlFeatures {
    /// The subtree patterns (as hashed labels) and how often each occurs, sorted by label.
    pub fn counts(&self) -> &[(u64, f64)] {
        &self.counts
    }
}

impl WeisfeilerLehman {
    /// The features of a graph (exposed for tests and other predictors).
    pub fn graph_features(&self, graph: &ArchGraph) -> WlFeatures {
        let n = graph.labels.len();
        let mut preds = vec![Vec::new(); n];
        let mut succs = vec![Vec::new(); n];
        for &(a, b) in &graph.edges {
            if a < n && b < n {
                succs[a].push(b);
                preds[b].push(a);
            }
        }
        let mut labels: Vec<u64> = graph
            .labels
            .iter()
            .map(|l| {
                let mut h = fnv::FnvHasher::default();
                h.write(b"wl0:");
                h.write(l.as_bytes());
                h.finish()
            })
            .collect();
        let mut counts: BTreeMap<u64, f64> = BTreeMap::new();
        for &l in &labels {
            *counts.entry(l).or_default() += 1.0;
        }
        for it in 1..=self.iterations {
            let next: Vec<u64> = (0..n)
                .map(|v| {
                    let mut h = fnv::FnvHasher::default();
                    h.write_u64(it as u64);
                    h.write_u64(labels[v]);
                    for (tag, nbrs) in [(1u8, &preds[v]), (2u8, &succs[v])] {
                        let mut ls: Vec<u64> = nbrs.iter().map(|&u| labels[u]).collect();
                        ls.sort_unstable();
                        h.write_u8(tag);
                        h.write_u64(ls.len() as u64);
                        for l in ls {
                            h.write_u64(l);
                        }
                    }
                    h.finish()
                })
                .collect();
            labels = next;
            for &l in &labels {
                *counts.entry(l).or_default() += 1.0;
            }
        }
        let counts: Vec<(u64, f64)> = counts.into_iter().collect();
        let norm = counts.iter().map(|(_, c)| c * c).sum::<f64>().sqrt();
        WlFeatures { counts, norm }
    }
}

impl<S: ToGraph> ArchKernel<S> for WeisfeilerLehman {
    type Features = WlFeatures;

    fn name(&self) -> &'static str {
        "weisfeiler-lehman"
    }

    fn features(&self, space: &S, arch: &S::Arch) -> Result<WlFeatures, StrategyError> {
        Ok(self.graph_features(&space.graph(arch)?))
    }

    fn distance(&self, a: &WlFeatures, b: &WlFeatures) -> f64 {
        if a.norm == 0.0 || b.norm == 0.0 {
            return if a.norm == b.norm { 0.0 } else { 1.0 };
        }
        let (mut i, mut j, mut dot) = (0, 0, 0.0);
        while i < a.counts.len() && j < b.counts.len() {
            let (ka, ca) = a.counts[i];
            let (kb, cb) = b.counts[j];
            match ka.cmp(&kb) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += ca * cb;
                    i += 1;
                    j += 1;
                }
            }
        }
        (1.0 - dot / (a.norm * b.norm)).max(0.0)
    }

    /// Through an inverted index of the rows' labels: each column only visits the rows that
    /// share one of its labels.
    fn cross_distances(&self, rows: &[&WlFeatures], cols: &[&WlFeatures]) -> Vec<f64> {
        let mut index: HashMap<u64, Vec<(usize, f64)>> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            for &(label, count) in &r.counts {
                index.entry(label).or_default().push((i, count));
            }
        }
        let nr = rows.len();
        let mut dots = vec![0.0; nr * cols.len()];
        for (j, c) in cols.iter().enumerate() {
            let col = &mut dots[j * nr..(j + 1) * nr];
            for &(label, count) in &c.counts {
                if let Some(posting) = index.get(&label) {
                    for &(i, ci) in posting {
                        col[i] += count * ci;
                    }
                }
            }
            for (d, r) in col.iter_mut().zip(rows) {
                *d = if r.norm == 0.0 || c.norm == 0.0 {
                    if r.norm == c.norm { 0.0 } else { 1.0 }
                } else {
                    (1.0 - *d / (r.norm * c.norm)).max(0.0)
                };
            }
        }
        dots
    }
}

/// The exponential Hamming kernel on the space's numeric encoding ([`Encode`]): `d` is the ℓ1
/// distance of the encodings divided by their length, so for one-hot encodings `exp(-θ d)`
/// decays by the same factor for every decision that differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hamming;

impl<S: Encode> ArchKernel<S> for Hamming {
    type Features = Vec<f32>;

    fn name(&self) -> &'static str {
        "hamming"
    }

    fn features(&self, space: &S, arch: &S::Arch) -> Result<Vec<f32>, StrategyError> {
        Ok(space.encode(arch)?)
    }

    fn distance(&self, a: &Vec<f32>, b: &Vec<f32>) -> f64 {
        let len = a.len().max(b.len()).max(1) as f64;
        let l1: f32 = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum();
        f64::from(l1) / len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_space::nb201::Nb201Space;
    use nas_space::{Enumerable, TextFormat};

    #[test]
    fn wl_distance_is_zero_for_isomorphic_cells_and_grows_with_edits() {
        let space = Nb201Space::default();
        let wl = WeisfeilerLehman::default();
        let best = space
            .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
            .unwrap();
        let fb = wl.features(&space, &best).unwrap();
        assert_eq!(ArchKernel::<Nb201Space>::distance(&wl, &fb, &fb), 0.0);
        // Relabelling the nodes (an isomorphic graph) changes nothing.
        let g = space.graph(&best).unwrap();
        let n = g.labels.len();
        let perm: Vec<usize> = (0..n).rev().collect();
        let mut labels = vec![String::new(); n];
        for (i, l) in g.labels.iter().enumerate() {
            labels[perm[i]] = l.clone();
        }
        let edges = g.edges.iter().map(|&(a, b)| (perm[a], perm[b])).collect();
        let permuted = ArchGraph { labels, edges };
        assert_eq!(wl.graph_features(&permuted), fb);
        let one_edit = space
            .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
            .unwrap();
        let far = space
            .parse("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|avg_pool_3x3~0|skip_connect~1|skip_connect~2|")
            .unwrap();
        let d1 =
            ArchKernel::<Nb201Space>::distance(&wl, &fb, &wl.features(&space, &one_edit).unwrap());
        let d2 = ArchKernel::<Nb201Space>::distance(&wl, &fb, &wl.features(&space, &far).unwrap());
        assert!(0.0 < d1 && d1 < d2 && d2 <= 1.0, "{d1} {d2}");
        // Symmetry, range, and the batched form equals the pairwise one.
        let archs: Vec<_> = (0..200u128)
            .map(|i| space.arch_at(i * 77).unwrap())
            .collect();
        let feats: Vec<_> = archs
            .iter()
            .map(|a| wl.features(&space, a).unwrap())
            .collect();
        let refs: Vec<&WlFeatures> = feats.iter().collect();
        let batch = ArchKernel::<Nb201Space>::cross_distances(&wl, &refs[..50], &refs);
        for i in 0..archs.len() {
            for j in 0..archs.len() {
                let dij = ArchKernel::<Nb201Space>::distance(&wl, &feats[i], &feats[j]);
                let dji = ArchKernel::<Nb201Space>::distance(&wl, &feats[j], &feats[i]);
                assert!((dij - dji).abs() < 1e-12 && (0.0..=1.0).contains(&dij));
                if i < 50 {
                    assert!((batch[j * 50 + i] - dij).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn hamming_counts_differing_decisions() {
        let space = Nb201Space::default();
        let a = space.arch_at(0).unwrap();
        let mut b = a;
        b.edges[2] = nas_space::nb201::Nb201Op::NorConv3x3;
        let (fa, fb) = (
            Hamming.features(&space, &a).unwrap(),
            Hamming.features(&space, &b).unwrap(),
        );
        let d = ArchKernel::<Nb201Space>::distance(&Hamming, &fa, &fb);
        assert!((d - 2.0 / 30.0).abs() < 1e-9, "{d}");
        assert_eq!(ArchKernel::<Nb201Space>::distance(&Hamming, &fa, &fa), 0.0);
    }
}
