//! Performance predictors: BANANAS' path encoding of an architecture and an ensemble of
//! multilayer perceptrons trained on it (White, Neiswanger and Savani, AAAI 2021).
//!
//! The path encoding ([`paths`]) works on any space with a graph ([`ToGraph`]): every path from
//! an input node to the output, named by the labels along it, is a feature; an architecture is
//! the multiset of its paths. Inputs are the nodes without incoming edges labelled as the
//! library's spaces label them (`input`, DARTS' `c_{k-2}` and `c_{k-1}`, NASNet's `h_{i-1}`
//! and `h_i`; in a graph without such a label, every node without incoming edges), the output
//! the nodes labelled `output` (without one, every node without outgoing edges). An operation
//! cut off from the inputs or from the output starts or ends no path. On NAS-Bench-201 a cell
//! has at most four such paths (through 1, 2 or 3 operations; a path through `none` does not
//! exist), out of 84 possible ones (4 + 4² + 4³).
//!
//! [`Ensemble`] fits several MLPs ([`MlpConfig`]) from different random initializations and
//! batch orders to the same observations; the spread of their predictions is the uncertainty
//! that [`crate::Bananas`]' acquisition functions use. Everything is plain `f64` on one thread:
//! the same seed and data give the same predictions on every machine and thread count.
//!
//! ```
//! use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
//! use nas_space::SearchSpace;
//! use nas_strategy::predictor::{paths, Ensemble, MlpConfig};
//! use rand::{SeedableRng, rngs::ChaCha8Rng};
//!
//! let space = Nb201Space::default();
//! let mut rng = ChaCha8Rng::seed_from_u64(0);
//! let convs = |a: &Nb201Arch| a.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count() as f64;
//! let archs: Vec<Nb201Arch> = (0..60).map(|_| space.sample(&mut rng)).collect();
//! let x: Vec<_> = archs.iter().map(|a| paths(&space, a)).collect::<Result<_, _>>()?;
//! let y: Vec<f64> = archs.iter().map(convs).collect();
//! let config = MlpConfig { epochs: 100, ..MlpConfig::default() };
//! let model = Ensemble::fit(&config, &x, &y, 0)?;
//! let all_conv = Nb201Arch::new([Nb201Op::NorConv3x3; 6]);
//! let no_conv = Nb201Arch::new([Nb201Op::SkipConnect; 6]);
//! let (hi, _) = model.mean_std(&paths(&space, &all_conv)?);
//! let (lo, _) = model.mean_std(&paths(&space, &no_conv)?);
//! assert!(hi > lo + 1.0);
//! # Ok::<(), nas_strategy::StrategyError>(())
//! ```

use std::collections::HashMap;

use nas_space::{ArchGraph, ToGraph};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::StrategyError;

/// Paths are counted up to this many per architecture: beyond it the encoding fails (a graph
/// with that many input-output paths is not a cell, and the vector would not fit a model).
pub const MAX_PATHS: usize = 100_000;

/// An architecture's path encoding: each distinct path (by the 64-bit FNV-1a hash of its labels)
/// with the number of times it occurs, sorted by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paths {
    counts: Vec<(u64, f64)>,
}

impl Paths {
    /// The paths (hash, count), sorted by hash.
    pub fn counts(&self) -> &[(u64, f64)] {
        &self.counts
    }

    /// The number of distinct paths.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether the architecture has no source-to-sink path (everything is cut by `none`).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// The path encoding of `arch` (see the [module](self) documentation).
pub fn paths<S: ToGraph>(space: &S, arch: &S::Arch) -> Result<Paths, StrategyError> {
    graph_paths(&space.graph(arch)?)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64 bits) of `bytes`, continued from state `h`: stable across platforms and runs.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Labels of input nodes in the library's graphs.
const INPUT_LABELS: [&str; 5] = ["input", "c_{k-2}", "c_{k-1}", "h_{i-1}", "h_i"];

/// The path encoding of a graph: every path from an input node to an output node (see the
/// [module](self) documentation for which nodes those are).
pub fn graph_paths(graph: &ArchGraph) -> Result<Paths, StrategyError> {
    let n = graph.labels.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut has_in = vec![false; n];
    for &(a, b) in &graph.edges {
        if a >= n || b >= n || a >= b {
            return Err(StrategyError::InvalidConfig {
                strategy: "path encoding",
                field: "graph",
                reason: format!(
                    "edge ({a}, {b}) is not a forward edge between the graph's {n} nodes; \
                     `ToGraph` must number nodes in topological order"
                ),
            });
        }
        out[a].push(b);
        has_in[b] = true;
    }
    let labelled_inputs =
        (0..n).any(|v| !has_in[v] && INPUT_LABELS.contains(&graph.labels[v].as_str()));
    let is_input = |v: usize| {
        !has_in[v] && (!labelled_inputs || INPUT_LABELS.contains(&graph.labels[v].as_str()))
    };
    let labelled_output = graph.labels.iter().any(|l| l == "output");
    let is_output = |v: usize| {
        if labelled_output {
            graph.labels[v] == "output"
        } else {
            out[v].is_empty()
        }
    };
    // Hash states of the paths from an input ending at each node, in topological order.
    let mut ending: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut counts: HashMap<u64, f64> = HashMap::new();
    let mut total = 0usize;
    for v in 0..n {
        let mut states = std::mem::take(&mut ending[v]);
        if is_input(v) {
            states.push(FNV_OFFSET);
        }
        if states.is_empty() {
            continue;
        }
        for h in &mut states {
            *h = fnv1a(fnv1a(*h, graph.labels[v].as_bytes()), &[0x1f]);
        }
        if is_output(v) && !(is_input(v) && out[v].is_empty()) {
            total += states.len();
            for &h in &states {
                *counts.entry(h).or_default() += 1.0;
            }
        }
        if !out[v].is_empty() {
            for &w in &out[v] {
                ending[w].extend_from_slice(&states);
            }
        }
        if total > MAX_PATHS || ending.iter().map(Vec::len).sum::<usize>() > MAX_PATHS {
            return Err(StrategyError::InvalidConfig {
                strategy: "path encoding",
                field: "graph",
                reason: format!(
                    "the architecture has more than {MAX_PATHS} input-to-output paths; the path \
                     encoding is meant for cells, use another encoding for this space"
                ),
            });
        }
    }
    let mut counts: Vec<(u64, f64)> = counts.into_iter().collect();
    counts.sort_by_key(|&(h, _)| h);
    Ok(Paths { counts })
}

/// The loss the MLPs minimize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Mean absolute error (BANANAS' choice: robust to the few collapsed networks).
    #[default]
    Absolute,
    /// Mean squared error.
    Squared,
}

/// Architecture and training of each MLP of an [`Ensemble`].
///
/// The defaults are BANANAS' meta neural network: 10 fully connected ReLU layers of width 20,
/// Adam at 0.01, 200 epochs of batches of 32, mean absolute error; an ensemble of 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Widths of the hidden layers (ReLU); the output is one linear unit.
    pub hidden: Vec<usize>,
    /// Passes over the observations per fit.
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the biases), added to the gradient.
    pub weight_decay: f64,
    /// Training loss.
    pub loss: Loss,
    /// Networks in the ensemble.
    pub ensemble: usize,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![20; 10],
            epochs: 200,
            batch_size: 32,
            learning_rate: 0.01,
            weight_decay: 0.0,
            loss: Loss::Absolute,
            ensemble: 5,
        }
    }
}

impl MlpConfig {
    /// Checks every value; `strategy` names the owner in the error.
    pub fn check(&self, strategy: &'static str) -> Result<(), StrategyError> {
        let err = |field, reason: &str| {
            Err(StrategyError::InvalidConfig {
                strategy,
                field,
                reason: reason.into(),
            })
        };
        if self.hidden.contains(&0) {
            return err(
                "predictor.hidden",
                "every hidden layer needs at least 1 unit",
            );
        }
        if self.epochs == 0 {
            return err("predictor.epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return err("predictor.batch_size", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return err("predictor.learning_rate", "must be a finite number > 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return err("predictor.weight_decay", "must be a finite number ≥ 0");
        }
        if self.ensemble == 0 {
            return err("predictor.ensemble", "must be at least 1");
        }
        Ok(())
    }
}

/// One fully connected layer: `in × out` weights and `out` biases, with Adam's
/// moments.
#[derive(Debug, Clone)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// Input-major: `w[i * outputs + o]`.
    w: Vec<f64>,
    b: Vec<f64>,
    gw: Vec<f64>,
    gb: Vec<f64>,
    mw: Vec<f64>,
    vw: Vec<f64>,
    mb: Vec<f64>,
    vb: Vec<f64>,
}

impl Layer {
    /// He-uniform weights (suited to ReLU), zero biases.
    fn new(inputs: usize, outputs: usize, rng: &mut ChaCha8Rng) -> Self {
        let bound = (6.0 / inputs.max(1) as f64).sqrt();
        let w = (0..inputs * outputs)
            .map(|_| (2.0 * rng.random::<f64>() - 1.0) * bound)
            .collect();
        let z = |k| vec![0.0; k];
        Self {
            inputs,
            outputs,
            w,
            b: z(outputs),
            gw: z(inputs * outputs),
            gb: z(outputs),
            mw: z(inputs * outputs),
            vw: z(inputs * outputs),
            mb: z(outputs),
            vb: z(outputs),
        }
    }
}

/// A multilayer perceptron on a sparse input.
#[derive(Debug, Clone)]
struct Mlp {
    layers: Vec<Layer>,
}

/// A sparse input: (column, value).
type Sparse = [(usize, f64)];

impl Mlp {
    fn new(inputs: usize, hidden: &[usize], rng: &mut ChaCha8Rng) -> Self {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut width = inputs;
        for &h in hidden.iter().chain(std::iter::once(&1)) {
            layers.push(Layer::new(width, h, rng));
            width = h;
        }
        Self { layers }
    }

    /// The pre-activations of every layer (the last is the output).
    fn forward(&self, x: &Sparse, acts: &mut Vec<Vec<f64>>) {
        acts.clear();
        let first = &self.layers[0];
        let mut z = first.b.clone();
        for &(j, v) in x {
            let row = &first.w[j * first.outputs..(j + 1) * first.outputs];
            for (zo, w) in z.iter_mut().zip(row) {
                *zo += w * v;
            }
        }
        acts.push(z);
        for layer in &self.layers[1..] {
            let prev = acts.last().expect("one layer at least");
            let mut z = layer.b.clone();
            for (i, &p) in prev.iter().enumerate() {
                // ReLU: an inactive unit adds nothing.
                if p > 0.0 {
                    let row = &layer.w[i * layer.outputs..(i + 1) * layer.outputs];
                    for (zo, w) in z.iter_mut().zip(row) {
                        *zo += w * p;
                    }
                }
            }
            acts.push(z);
        }
    }

    fn predict(&self, x: &Sparse, acts: &mut Vec<Vec<f64>>) -> f64 {
        self.forward(x, acts);
        acts.last().expect("output layer")[0]
    }

    /// Adds the gradient of `loss'(prediction) = dout` for input `x` to the layers' gradients.
    fn backward(&mut self, x: &Sparse, acts: &[Vec<f64>], dout: f64) {
        let mut delta = vec![dout];
        for l in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[l];
            let out = layer.outputs;
            for (g, &d) in layer.gb.iter_mut().zip(&delta) {
                *g += d;
            }
            if l == 0 {
                for &(j, v) in x {
                    for (g, &d) in layer.gw[j * out..(j + 1) * out].iter_mut().zip(&delta) {
                        *g += d * v;
                    }
                }
                break;
            }
            let prev = &acts[l - 1];
            let mut next = vec![0.0; layer.inputs];
            for (i, &p) in prev.iter().enumerate() {
                // ReLU: no gradient through an inactive unit, and its weights saw a zero.
                if p > 0.0 {
                    let (g, w) = (
                        &mut layer.gw[i * out..(i + 1) * out],
                        &layer.w[i * out..(i + 1) * out],
                    );
                    for (g, &d) in g.iter_mut().zip(&delta) {
                        *g += d * p;
                    }
                    next[i] = w.iter().zip(&delta).map(|(w, d)| w * d).sum();
                }
            }
            delta = next;
        }
    }

    /// One Adam step on the accumulated gradients (divided by `batch`), then zeroes them.
    fn adam_step(&mut self, config: &MlpConfig, t: i32, batch: usize) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        let c1 = 1.0 - B1.powi(t);
        let c2 = 1.0 - B2.powi(t);
        let lr = config.learning_rate;
        let scale = 1.0 / batch as f64;
        let update = |p: &mut [f64], g: &mut [f64], m: &mut [f64], v: &mut [f64], decay: f64| {
            for k in 0..p.len() {
                let gk = g[k] * scale + decay * p[k];
                m[k] = B1 * m[k] + (1.0 - B1) * gk;
                v[k] = B2 * v[k] + (1.0 - B2) * gk * gk;
                p[k] -= lr * (m[k] / c1) / ((v[k] / c2).sqrt() + EPS);
                g[k] = 0.0;
            }
        };
        for layer in &mut self.layers {
            update(
                &mut layer.w,
                &mut layer.gw,
                &mut layer.mw,
                &mut layer.vw,
                config.weight_decay,
            );
            update(
                &mut layer.b,
                &mut layer.gb,
                &mut layer.mb,
                &mut layer.vb,
                0.0,
            );
        }
    }
}

/// An ensemble of MLPs fitted to the path encodings of observed architectures.
///
/// The targets are standardized (mean 0, standard deviation 1) for training; predictions are
/// in the targets' units. The input columns are the paths seen in the training data: a path no
/// observation has carries no information and is ignored.
#[derive(Debug, Clone)]
pub struct Ensemble {
    columns: HashMap<u64, usize>,
    nets: Vec<Mlp>,
    mean: f64,
    sd: f64,
}

impl Ensemble {
    /// Fits `config.ensemble` networks to `(x, y)`; member `i` is seeded from `seed` and `i`.
    ///
    /// Fails on a bad configuration, on no data, on `x` and `y` of different lengths, and on a
    /// target that is not finite.
    pub fn fit(
        config: &MlpConfig,
        x: &[Paths],
        y: &[f64],
        seed: u64,
    ) -> Result<Self, StrategyError> {
        config.check("MLP predictor")?;
        let bad = |reason: String| StrategyError::InvalidConfig {
            strategy: "MLP predictor",
            field: "data",
            reason,
        };
        if x.is_empty() || x.len() != y.len() {
            return Err(bad(format!(
                "needs at least one observation and one target per architecture (got {} \
                 architectures, {} targets)",
                x.len(),
                y.len()
            )));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("target {i} is {}, not a finite number", y[i])));
        }
        let mut columns = HashMap::new();
        for p in x {
            for &(h, _) in &p.counts {
                let next = columns.len();
                columns.entry(h).or_insert(next);
            }
        }
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let sd = if sd > 1e-12 { sd } else { 1.0 };
        let mut model = Self {
            columns,
            nets: Vec::with_capacity(config.ensemble),
            mean,
            sd,
        };
        let inputs: Vec<Vec<(usize, f64)>> = x.iter().map(|p| model.sparse(p)).collect();
        let targets: Vec<f64> = y.iter().map(|v| (v - mean) / sd).collect();
        for member in 0..config.ensemble {
            let mut rng = ChaCha8Rng::seed_from_u64(
                seed.wrapping_add((member as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            );
            let mut net = Mlp::new(model.columns.len(), &config.hidden, &mut rng);
            train(&mut net, config, &inputs, &targets, &mut rng);
            model.nets.push(net);
        }
        Ok(model)
    }

    fn sparse(&self, p: &Paths) -> Vec<(usize, f64)> {
        p.counts
            .iter()
            .filter_map(|(h, c)| self.columns.get(h).map(|&j| (j, *c)))
            .collect()
    }

    /// Each member's prediction for `x`, in the targets' units.
    pub fn predict(&self, x: &Paths) -> Vec<f64> {
        let input = self.sparse(x);
        let mut acts = Vec::new();
        self.nets
            .iter()
            .map(|net| self.mean + self.sd * net.predict(&input, &mut acts))
            .collect()
    }

    /// The members' mean prediction and their standard deviation (0 for one member).
    pub fn mean_std(&self, x: &Paths) -> (f64, f64) {
        let p = self.predict(x);
        let n = p.len() as f64;
        let mean = p.iter().sum::<f64>() / n;
        let var = p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    /// The number of input columns (distinct paths in the training data).
    pub fn inputs(&self) -> usize {
        self.columns.len()
    }
}

/// Minibatch Adam on one network.
fn train(
    net: &mut Mlp,
    config: &MlpConfig,
    x: &[Vec<(usize, f64)>],
    y: &[f64],
    rng: &mut ChaCha8Rng,
) {
    let mut order: Vec<usize> = (0..y.len()).collect();
    let mut acts = Vec::new();
    let mut t = 0;
    for _ in 0..config.epochs {
        order.shuffle(rng);
        for batch in order.chunks(config.batch_size) {
            for &i in batch {
                let pred = net.predict(&x[i], &mut acts);
                let r = pred - y[i];
                let dout = match config.loss {
                    Loss::Absolute => {
                        if r > 0.0 {
                            1.0
                        } else if r < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    }
                    Loss::Squared => r,
                };
                net.backward(&x[i], &acts, dout);
            }
            t += 1;
            net.adam_step(config, t, batch.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_space::SearchSpace;
    use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};

    fn arch(s: &str) -> Nb201Arch {
        s.parse().unwrap()
    }

    #[test]
    fn nb201_paths_are_counted_and_none_cuts_them() {
        let space = Nb201Space::default();
        // All four input-output paths live.
        let full = paths(&space, &Nb201Arch::new([Nb201Op::NorConv3x3; 6])).unwrap();
        assert_eq!(full.counts().iter().map(|c| c.1).sum::<f64>(), 4.0);
        // Through 1, 2 and 3 convolutions: the two paths through 2 have the same labels.
        assert_eq!(full.len(), 3);
        assert!(full.counts().iter().any(|c| c.1 == 2.0));
        let cut = paths(
            &space,
            &arch("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"),
        )
        .unwrap();
        assert_eq!(cut.counts().len(), 1);
        let none = paths(&space, &Nb201Arch::new([Nb201Op::None; 6])).unwrap();
        assert!(none.is_empty());
        // An operation cut off from the output, or from the input, makes no path.
        let dead_end = arch("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        assert!(paths(&space, &dead_end).unwrap().is_empty());
        let dead_start = arch("|none~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|");
        assert!(paths(&space, &dead_start).unwrap().is_empty());
        let mixed = arch("|none~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|");
        let b_only = arch("|none~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|avg_pool_3x3~2|");
        assert_eq!(
            paths(&space, &mixed).unwrap(),
            paths(&space, &b_only).unwrap()
        );
        // Two cells with the same paths in another arrangement share an encoding.
        let a = arch("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|");
        let b = arch("|none~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|avg_pool_3x3~2|");
        assert_eq!(paths(&space, &a).unwrap(), paths(&space, &b).unwrap());
        let c = arch("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|");
        assert_ne!(paths(&space, &a).unwrap(), paths(&space, &c).unwrap());
    }

    #[test]
    fn a_graph_with_backward_edges_is_an_error() {
        let g = ArchGraph {
            labels: vec!["input".into(), "a".into(), "output".into()],
            edges: vec![(0, 1), (2, 1)],
        };
        let e = graph_paths(&g).unwrap_err().to_string();
        assert!(e.contains("topological"), "{e}");
    }

    #[test]
    fn the_ensemble_learns_a_function_of_the_paths_and_is_deterministic() {
        let space = Nb201Space::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let score = |a: &Nb201Arch| {
            a.edges
                .iter()
                .map(|o| match o {
                    Nb201Op::NorConv3x3 => 2.0,
                    Nb201Op::NorConv1x1 => 1.0,
                    _ => 0.0,
                })
                .sum::<f64>()
        };
        let train: Vec<Nb201Arch> = (0..150).map(|_| space.sample(&mut rng)).collect();
        let test: Vec<Nb201Arch> = (0..100).map(|_| space.sample(&mut rng)).collect();
        let enc = |v: &[Nb201Arch]| -> Vec<Paths> {
            v.iter().map(|a| paths(&space, a).unwrap()).collect()
        };
        let (xt, xs) = (enc(&train), enc(&test));
        let yt: Vec<f64> = train.iter().map(score).collect();
        let config = MlpConfig {
            epochs: 100,
            ..MlpConfig::default()
        };
        let model = Ensemble::fit(&config, &xt, &yt, 7).unwrap();
        let pred: Vec<f64> = xs.iter().map(|x| model.mean_std(x).0).collect();
        let truth: Vec<f64> = test.iter().map(score).collect();
        let rho = pearson(&pred, &truth);
        assert!(rho > 0.6, "held-out correlation {rho}");
        // The members differ (an uncertainty), the same seed repeats exactly.
        let (_, sd) = model.mean_std(&xs[0]);
        assert!(sd > 0.0);
        let again = Ensemble::fit(&config, &xt, &yt, 7).unwrap();
        assert_eq!(model.predict(&xs[1]), again.predict(&xs[1]));
        let other = Ensemble::fit(&config, &xt, &yt, 8).unwrap();
        assert_ne!(model.predict(&xs[1]), other.predict(&xs[1]));
    }

    fn pearson(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    #[test]
    fn bad_data_and_configs_are_errors() {
        let space = Nb201Space::default();
        let x = vec![paths(&space, &Nb201Arch::new([Nb201Op::NorConv3x3; 6])).unwrap()];
        let ok = MlpConfig::default();
        assert!(Ensemble::fit(&ok, &x, &[], 0).is_err());
        assert!(Ensemble::fit(&ok, &x, &[f64::NAN], 0).is_err());
        let bad = MlpConfig {
            hidden: vec![20, 0],
            ..MlpConfig::default()
        };
        let e = Ensemble::fit(&bad, &x, &[1.0], 0).unwrap_err().to_string();
        assert!(e.contains("predictor.hidden"), "{e}");
        // One observation: a constant prediction, no failure.
        let model = Ensemble::fit(&ok, &x, &[0.5], 0).unwrap();
        assert!(model.mean_std(&x[0]).0.is_finite());
    }
}
