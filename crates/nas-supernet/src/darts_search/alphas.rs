//! Architecture parameters (alphas), the masks of pruned operations, and the relaxations that
//! turn alphas into operation weights.
//!
//! Alphas are a module of their own ([`Alphas`], one `[edges, operations]` parameter per cell
//! kind), kept apart from the network's weights so that each has its own optimizer. A forward
//! pass of a supernet reads [`ArchWeights`], built from the alphas by a [`Relaxation`]:
//!
//! | relaxation | weights of an edge | used by |
//! | --- | --- | --- |
//! | [`Relaxation::Softmax`] | `softmax(α / τ)` over the alive operations | DARTS, P-DARTS (τ = 1), ASAP (annealed τ) |
//! | [`Relaxation::GumbelSoft`] | `softmax((log_softmax(α) + g) / τ)`, `g` Gumbel noise | SNAS |
//! | [`Relaxation::GumbelHard`] | the one-hot of the argmax of the above, with its straight-through gradient; only the sampled operation is computed | GDAS (its reference code) |
//! | [`Relaxation::GumbelHardDense`] | the same one-hot weights; every operation is computed when a gradient flows back into the alphas | GDAS (its paper's gradient: [`super::method::GumbelConfig::dense_gradient`]) |

use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::mixed::EdgeWeights;
use crate::network::mix_seed;

/// The shape of one cell kind's architecture parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellLayout {
    /// The cell kind's name (`cell`, `normal`, `reduce`).
    pub name: String,
    /// A label per edge (`1<-0`: the edge from node 0 into node 1).
    pub edges: Vec<String>,
    /// The candidate operations' names, in the order of the alphas' columns.
    pub ops: Vec<String>,
}

/// The shape of all architecture parameters: one [`CellLayout`] per cell kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchLayout {
    /// The cell kinds.
    pub cells: Vec<CellLayout>,
}

impl ArchLayout {
    /// A mask with every operation alive.
    pub fn full_mask(&self) -> ArchMask {
        ArchMask {
            cells: self.per_edge(|_, _, cell| vec![true; cell.ops.len()]),
        }
    }

    /// `f(kind, edge, cell)` for every edge of every cell kind, as `[kind][edge]`: the shape of
    /// the alphas without their operation axis. Called kind by kind, edge by edge, so a
    /// random draw inside `f` happens in the same order every time.
    pub fn per_edge<T>(&self, mut f: impl FnMut(usize, usize, &CellLayout) -> T) -> Vec<Vec<T>> {
        self.cells
            .iter()
            .enumerate()
            .map(|(k, cell)| (0..cell.edges.len()).map(|e| f(k, e, cell)).collect())
            .collect()
    }
}

/// Which operations are still candidates (`cells[kind][edge][op]`): ASAP prunes, P-DARTS drops
/// operations between stages. Masked operations get weight zero and are not computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchMask {
    /// `cells[kind][edge][op]`: true while the operation is a candidate.
    pub cells: Vec<Vec<Vec<bool>>>,
}

impl ArchMask {
    /// True while operation `op` of `edge` in cell kind `cell` is a candidate.
    pub fn alive(&self, cell: usize, edge: usize, op: usize) -> bool {
        self.cells
            .get(cell)
            .and_then(|c| c.get(edge))
            .and_then(|e| e.get(op))
            .copied()
            .unwrap_or(false)
    }

    /// The number of candidate operations left on `edge` of cell kind `cell`.
    pub fn alive_on(&self, cell: usize, edge: usize) -> usize {
        self.cells[cell][edge].iter().filter(|&&a| a).count()
    }

    /// The number of candidate operations left, over all edges.
    pub fn count(&self) -> usize {
        self.cells
            .iter()
            .flatten()
            .flatten()
            .filter(|&&a| a)
            .count()
    }
}

/// The architecture parameters: one `[edges, operations]` tensor per cell kind.
#[derive(Module, Debug)]
pub struct Alphas<B: Backend> {
    /// `cells[kind]`: `[edges, operations]` logits.
    pub cells: Vec<Param<Tensor<B, 2>>>,
}

impl<B: Backend> Alphas<B> {
    /// Alphas of `layout` drawn from `N(0, std²)` with a generator seeded by `seed` (DARTS
    /// initializes them as `1e-3 · randn`).
    pub fn new(layout: &ArchLayout, std: f64, seed: u64, device: &B::Device) -> Self {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let cells = layout
            .cells
            .iter()
            .map(|c| {
                let (e, o) = (c.edges.len(), c.ops.len());
                let values: Vec<f32> = (0..e * o)
                    .map(|_| (std * standard_normal(&mut rng)) as f32)
                    .collect();
                Param::from_tensor(Tensor::from_data(TensorData::new(values, [e, o]), device))
            })
            .collect();
        Self { cells }
    }

    /// Alphas with the given values (`tables[kind][edge][op]`), e.g. to restore a search.
    pub fn from_tables(tables: &[Vec<Vec<f32>>], device: &B::Device) -> Self {
        let cells = tables
            .iter()
            .map(|t| {
                let (e, o) = (t.len(), t.first().map_or(0, Vec::len));
                let values: Vec<f32> = t.iter().flatten().copied().collect();
                Param::from_tensor(Tensor::from_data(TensorData::new(values, [e, o]), device))
            })
            .collect();
        Self { cells }
    }

    /// The values, `[kind][edge][op]`.
    pub fn to_tables(&self) -> Vec<Vec<Vec<f32>>> {
        self.cells
            .iter()
            .map(|p| {
                let t = p.val();
                let [_, o] = t.dims();
                let values: Vec<f32> = t.into_data().convert::<f32>().to_vec().unwrap_or_default();
                values.chunks(o.max(1)).map(<[f32]>::to_vec).collect()
            })
            .collect()
    }
}

/// A standard normal draw (Box–Muller).
pub(crate) fn standard_normal(rng: &mut rand::rngs::ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// How alphas become operation weights (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Relaxation {
    /// `softmax(α / τ)` over the alive operations.
    Softmax {
        /// Temperature τ (1 for DARTS).
        tau: f64,
    },
    /// Gumbel-softmax with temperature τ (SNAS).
    GumbelSoft {
        /// Temperature τ.
        tau: f64,
    },
    /// Hard Gumbel-softmax with the straight-through gradient; only the sampled operation is
    /// computed (GDAS).
    GumbelHard {
        /// Temperature τ.
        tau: f64,
    },
    /// The one-hot weights of [`Relaxation::GumbelHard`] with the gradient of the paper's
    /// equation: when the alphas require a gradient, every alive operation is computed and
    /// multiplied by its weight (exactly 1 for the sampled operation, exactly 0 for the others),
    /// so an operation's straight-through gradient is `⟨∂L/∂node, op(x)⟩`. `GumbelHard`, as
    /// GDAS' reference code does to save the computation, gives every operation but the sampled
    /// one `⟨∂L/∂node, 1⟩` instead: the same value for all of them, which carries no
    /// information about the operation. The forward values are those of `GumbelHard`. Every
    /// operation is computed when the alphas given to [`ArchWeights::new`] take a gradient
    /// (a parameter's value, as [`super::Searcher`]'s alpha step passes them); for alphas that
    /// take none (a weight step: `detach()` keeps a parameter's flag, so clear it with
    /// `set_require_grad(false)` as the searcher does) only the sampled operation is, as the
    /// others' weights are 0.
    GumbelHardDense {
        /// Temperature τ.
        tau: f64,
    },
}

/// Added to the logits of masked operations: their softmax weight underflows to exactly 0.
const MASKED: f32 = -1.0e9;

/// The operation weights of one forward pass, for every cell kind and edge.
#[derive(Debug, Clone)]
pub struct ArchWeights<B: Backend> {
    /// `[kind][edge][op]` `[1, 1, 1, 1]` weights (`None`: masked).
    cells: Vec<Vec<Vec<Option<Tensor<B, 4>>>>>,
    /// `[kind]`: the sampled operation per edge (GDAS).
    sampled: Vec<Option<Vec<usize>>>,
    /// Dropout on identity operations (P-DARTS).
    skip_dropout: f64,
    /// Seed of the dropout masks.
    seed: u64,
}

impl<B: Backend> ArchWeights<B> {
    /// Weights from `alphas` (`[kind]` → `[edges, ops]`) under `mask` and `relaxation`. Gumbel
    /// noise and dropout masks are drawn from generators seeded with `seed`. Gradients flow
    /// back into `alphas` (detach them for a step that trains only the weights).
    pub fn new(
        alphas: &[Tensor<B, 2>],
        mask: &ArchMask,
        relaxation: Relaxation,
        skip_dropout: f64,
        seed: u64,
    ) -> Self {
        let mut weights = Vec::with_capacity(alphas.len());
        let mut sampled = Vec::with_capacity(alphas.len());
        for (kind, logits) in Self::masked_logits(alphas, mask).into_iter().enumerate() {
            let [e, o] = logits.dims();
            let device = logits.device();
            let (w, hard) = match relaxation {
                Relaxation::Softmax { tau } => (softmax(logits.div_scalar(tau), 1), None),
                Relaxation::GumbelSoft { tau }
                | Relaxation::GumbelHard { tau }
                | Relaxation::GumbelHardDense { tau } => {
                    let tracked = alphas[kind].is_require_grad();
                    let mut rng =
                        rand::rngs::ChaCha8Rng::seed_from_u64(mix_seed(seed, kind as u64, 11));
                    let g: Vec<f32> = (0..e * o)
                        .map(|_| {
                            let u: f64 = rng.random::<f64>().clamp(1e-10, 1.0 - 1e-10);
                            -(-u.ln()).ln() as f32
                        })
                        .collect();
                    let noisy = log_softmax(logits, 1)
                        + Tensor::from_data(TensorData::new(g, [e, o]), &device);
                    let probs = softmax(noisy.div_scalar(tau), 1);
                    if matches!(
                        relaxation,
                        Relaxation::GumbelHard { .. } | Relaxation::GumbelHardDense { .. }
                    ) {
                        let values: Vec<f32> = probs
                            .clone()
                            .into_data()
                            .convert::<f32>()
                            .to_vec()
                            .unwrap_or_default();
                        let index: Vec<usize> = (0..e)
                            .map(|r| {
                                argmax_alive(&values[r * o..(r + 1) * o], |c| {
                                    mask.alive(kind, r, c)
                                })
                            })
                            .collect();
                        let mut one_hot = vec![0f32; e * o];
                        for (r, &c) in index.iter().enumerate() {
                            one_hot[r * o + c] = 1.0;
                        }
                        let one_hot = Tensor::from_data(TensorData::new(one_hot, [e, o]), &device);
                        // Dense: no sampled index, so every alive operation is computed and
                        // weighted ((0 − p) + p is exactly 0, so the values stay one-hot).
                        let dense =
                            matches!(relaxation, Relaxation::GumbelHardDense { .. }) && tracked;
                        let hard = one_hot - probs.clone().detach() + probs;
                        (hard, if dense { None } else { Some(index) })
                    } else {
                        (probs, None)
                    }
                }
            };
            weights.push(w);
            sampled.push(hard);
        }
        Self::from_kinds(weights, sampled, mask, skip_dropout, seed)
    }

    /// The alphas with a large negative number added to the masked operations' logits (their
    /// softmax weight underflows to exactly 0): the input of a relaxation.
    pub fn masked_logits(alphas: &[Tensor<B, 2>], mask: &ArchMask) -> Vec<Tensor<B, 2>> {
        alphas
            .iter()
            .enumerate()
            .map(|(kind, a)| {
                let [e, o] = a.dims();
                let bias: Vec<f32> = (0..e * o)
                    .map(|i| {
                        if mask.alive(kind, i / o, i % o) {
                            0.0
                        } else {
                            MASKED
                        }
                    })
                    .collect();
                a.clone() + Tensor::from_data(TensorData::new(bias, [e, o]), &a.device())
            })
            .collect()
    }

    /// Weights from `weights[kind]` (`[edges, ops]`) that a relaxation computed: every alive
    /// operation of an edge is computed and scaled by its weight, unless `sampled[kind][edge]`
    /// names the one operation to compute (GDAS's hard sampling: the others only add their
    /// weight, which carries the straight-through gradient). Masked operations are never
    /// computed. Dropout on skip connections (`skip_dropout`) draws its masks from `seed`.
    ///
    /// # Panics
    /// If `weights` (or `sampled`) does not have the mask's number of cell kinds and edges.
    pub fn from_probabilities(
        weights: Vec<Tensor<B, 2>>,
        sampled: Option<Vec<Vec<usize>>>,
        mask: &ArchMask,
        skip_dropout: f64,
        seed: u64,
    ) -> Self {
        let sampled = match sampled {
            Some(s) => s.into_iter().map(Some).collect(),
            None => vec![None; weights.len()],
        };
        Self::from_kinds(weights, sampled, mask, skip_dropout, seed)
    }

    fn from_kinds(
        weights: Vec<Tensor<B, 2>>,
        sampled: Vec<Option<Vec<usize>>>,
        mask: &ArchMask,
        skip_dropout: f64,
        seed: u64,
    ) -> Self {
        assert_eq!(
            weights.len(),
            mask.cells.len(),
            "operation weights for {} cell kinds, the mask has {}",
            weights.len(),
            mask.cells.len()
        );
        let cells = weights
            .iter()
            .enumerate()
            .map(|(kind, w)| {
                let [e, o] = w.dims();
                (0..e)
                    .map(|edge| {
                        let row = w.clone().slice([edge..edge + 1, 0..o]);
                        (0..o)
                            .map(|op| {
                                mask.alive(kind, edge, op).then(|| {
                                    row.clone().slice([0..1, op..op + 1]).reshape([1, 1, 1, 1])
                                })
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self {
            cells,
            sampled,
            skip_dropout,
            seed,
        }
    }

    /// The weights of `edge` of cell kind `cell`, in the cell at network position `layer`
    /// (which only varies the dropout masks).
    pub fn edge(&self, cell: usize, edge: usize, layer: usize) -> EdgeWeights<'_, B> {
        EdgeWeights {
            weights: &self.cells[cell][edge],
            sampled: self.sampled[cell].as_ref().map(|s| s[edge]),
            skip_dropout: self.skip_dropout,
            seed: mix_seed(self.seed, layer as u64, edge as u64),
        }
    }
}

/// The index of the largest of `values` among those `alive` accepts (the first on ties; 0
/// when none is alive).
pub(crate) fn argmax_alive(values: &[f32], alive: impl Fn(usize) -> bool) -> usize {
    let mut best: Option<usize> = None;
    for (i, &v) in values.iter().enumerate() {
        if alive(i) && best.is_none_or(|b| v > values[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// Softmaxed alphas on the host: `cells[kind][edge][op]`, masked operations 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchProbabilities {
    /// `[kind][edge][op]` probabilities; each edge's alive operations sum to 1.
    pub cells: Vec<Vec<Vec<f64>>>,
}

impl ArchProbabilities {
    /// The gradient of β-DARTS' regularizer `lambda · mean over edges of logsumexp(α_edge)`
    /// (over the alive operations) with respect to the alphas these probabilities come from:
    /// `lambda · softmax(α_edge) / edges`, `[kind][edge][op]` (0 for masked operations).
    pub fn beta_decay_gradient(&self, lambda: f64) -> Vec<Vec<Vec<f64>>> {
        let edges: usize = self.cells.iter().map(Vec::len).sum();
        let scale = if edges == 0 {
            0.0
        } else {
            lambda / edges as f64
        };
        self.cells
            .iter()
            .map(|kind| {
                kind.iter()
                    .map(|row| row.iter().map(|p| scale * p).collect())
                    .collect()
            })
            .collect()
    }

    /// `softmax(α)` per edge over the operations alive in `mask`.
    pub fn from_tables(alphas: &[Vec<Vec<f32>>], mask: &ArchMask) -> Self {
        let cells = alphas
            .iter()
            .enumerate()
            .map(|(kind, edges)| {
                edges
                    .iter()
                    .enumerate()
                    .map(|(e, row)| {
                        let alive = |o: usize| mask.alive(kind, e, o);
                        let max = row
                            .iter()
                            .enumerate()
                            .filter(|&(o, _)| alive(o))
                            .map(|(_, &v)| f64::from(v))
                            .fold(f64::NEG_INFINITY, f64::max);
                        let ex: Vec<f64> = row
                            .iter()
                            .enumerate()
                            .map(|(o, &v)| {
                                if alive(o) {
                                    (f64::from(v) - max).exp()
                                } else {
                                    0.0
                                }
                            })
                            .collect();
                        let sum: f64 = ex.iter().sum();
                        ex.iter()
                            .map(|v| if sum > 0.0 { v / sum } else { 0.0 })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self { cells }
    }

    /// A text table per cell kind: one row per edge, one column per operation.
    pub fn table(&self, layout: &ArchLayout) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (kind, cell) in layout.cells.iter().enumerate() {
            let width = cell.ops.iter().map(String::len).max().unwrap_or(4).max(6);
            let _ = write!(out, "{:<8}", cell.name);
            for op in &cell.ops {
                let _ = write!(out, " {op:>width$}");
            }
            out.push('\n');
            for (e, label) in cell.edges.iter().enumerate() {
                let _ = write!(out, "{label:<8}");
                for p in &self.cells[kind][e] {
                    let _ = write!(out, " {p:>width$.3}");
                }
                out.push('\n');
            }
        }
        out
    }
}
