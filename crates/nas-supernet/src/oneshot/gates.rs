//! ProxylessNAS's architecture parameters and binarized path gates (Cai et al. 2019, §3.2).
//!
//! Each searchable layer `l` has architecture parameters `α_l` (one per choice); the path
//! probabilities are `p_l = softmax(α_l)`. Instead of running every candidate weighted by `p_l`
//! (DARTS), a step samples *binary gates*: one active path per layer, so that only that path is
//! computed and kept for the backward pass.
//!
//! - **Weight steps** sample one path per layer from `p_l` ([`ArchParams::sample_paths`]) and
//!   train the weights of that path only.
//! - **Architecture steps** ("two" mode of the paper and of `mit-han-lab/proxylessnas`'s
//!   `MixedEdge`) sample two distinct choices per layer from `p_l`
//!   ([`ArchParams::sample_pairs`]) and make one of them active with the probabilities of the
//!   two renormalized. The layer outputs `g_a·o_a(x) + g_b·o_b(x)` with gates `g = (1, 0)`: the
//!   active path is computed with its graph, the inactive one without (its output only), so
//!   memory stays near that of one path. The gradient of the loss with respect to the gates,
//!   `∂L/∂g_j = <∂L/∂y, o_j(x)>`, gives the paper's estimate of the gradient with respect to `α`
//!   ([`pair_alpha_grads`]): `∂L/∂α_i ≈ Σ_j ∂L/∂g_j · p_j (δ_ij − p_i)`, over the two sampled
//!   choices with their renormalized probabilities. After the update the two parameters are
//!   shifted so that the probabilities of the unsampled choices do not change
//!   ([`ArchParams::rescale_pair`]).
//! - An **expected-latency** term `λ · (E[lat] − ref) / ref` with `E[lat] = Σ_l Σ_i p_li ·
//!   lat_li` (a latency table, [`super::latency::LatencyTable`]) is differentiable in `α`
//!   directly ([`latency_alpha_grads`]); its gradient is added to the estimate (the code's
//!   `add#linear` regularizer).
//!
//! As in the reference code, a layer whose active choice is `zero` (the block is skipped) gets
//! no update of its parameters in that step. Architecture parameters start at zero (uniform
//! probabilities) and are optimized with Adam (the paper's β1 = 0, β2 = 0.999, ε = 1e-8).
//! An identity-shaped layer's MBConv candidates include the identity shortcut and its `zero`
//! choice is the shortcut, so every gate gradient of such a layer carries the same extra term
//! `<∂L/∂y, x>`; the estimate is unchanged by it, since `Σ_j c·p_j(δ_ij − p_i) = 0`.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;

/// Adam settings of the architecture parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArchOptimConfig {
    /// Learning rate (the paper's 1e-3).
    pub learning_rate: f64,
    /// First-moment decay (the paper's 0).
    pub beta1: f64,
    /// Second-moment decay (0.999).
    pub beta2: f64,
    /// Denominator offset (1e-8).
    pub epsilon: f64,
}

impl Default for ArchOptimConfig {
    /// `mit-han-lab/proxylessnas`'s `imagenet_arch_search.py`: Adam, lr 1e-3, betas (0, 0.999),
    /// eps 1e-8.
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta1: 0.0,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

impl ArchOptimConfig {
    /// Checks the values: a positive finite learning rate, betas in [0, 1), a positive epsilon.
    pub fn check(&self) -> Result<(), SupernetError> {
        let bad = |reason: &str| {
            Err(SupernetError::InvalidConfig {
                what: "architecture optimizer",
                reason: reason.into(),
            })
        };
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("`learning_rate` must be positive and finite");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("`beta1` and `beta2` must be in [0, 1)");
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return bad("`epsilon` must be positive");
        }
        Ok(())
    }
}

/// The two choices sampled for one layer in an architecture step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePair {
    /// The active choice (gate 1): computed with its graph.
    pub active: usize,
    /// The inactive choice (gate 0): only its output is computed. `None` for a layer with a
    /// single choice.
    pub inactive: Option<usize>,
}

/// Softmax of `alpha`.
pub fn softmax(alpha: &[f64]) -> Vec<f64> {
    let max = alpha.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = alpha.iter().map(|a| (a - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Draws an index with probabilities `probs` (which sum to 1).
fn categorical(probs: &[f64], rng: &mut dyn Rng) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// The binary-gate estimate of `∂L/∂α` over the two sampled choices `(a, b)`: `alpha` are
/// their parameters, `gate_grads` the gradients of the loss with respect to their gates.
/// Returns the gradients of `(α_a, α_b)`.
pub fn pair_alpha_grads(alpha: (f64, f64), gate_grads: (f64, f64)) -> (f64, f64) {
    let p = softmax(&[alpha.0, alpha.1]);
    let g = [gate_grads.0, gate_grads.1];
    let grad = |i: usize| -> f64 {
        (0..2)
            .map(|j| g[j] * p[j] * (f64::from(u8::from(i == j)) - p[i]))
            .sum()
    };
    (grad(0), grad(1))
}

/// The binary-gate estimate over all choices: `∂L/∂α_i = Σ_j ∂L/∂g_j · p_j (δ_ij − p_i)`.
pub fn full_alpha_grads(probs: &[f64], gate_grads: &[f64]) -> Vec<f64> {
    (0..probs.len())
        .map(|i| {
            (0..probs.len())
                .map(|j| gate_grads[j] * probs[j] * (f64::from(u8::from(i == j)) - probs[i]))
                .sum()
        })
        .collect()
}

/// Gradient of `scale · Σ_i p_i · lat_i` with respect to `α` (with `p = softmax(α)`):
/// `scale · p_i (lat_i − Σ_j p_j lat_j)`.
pub fn latency_alpha_grads(probs: &[f64], latency: &[f64], scale: f64) -> Vec<f64> {
    let mean: f64 = probs.iter().zip(latency).map(|(p, l)| p * l).sum();
    probs
        .iter()
        .zip(latency)
        .map(|(p, l)| scale * p * (l - mean))
        .collect()
}

/// The architecture parameters of every searchable layer, with their Adam state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchParams {
    alphas: Vec<Vec<f64>>,
    first_moment: Vec<Vec<f64>>,
    second_moment: Vec<Vec<f64>>,
    steps: Vec<u64>,
    config: ArchOptimConfig,
}

impl ArchParams {
    /// Zero parameters (uniform probabilities) for layers with `choices[l]` choices each.
    pub fn new(choices: &[usize], config: ArchOptimConfig) -> Result<Self, SupernetError> {
        config.check()?;
        if let Some(l) = choices.iter().position(|&c| c == 0) {
            return Err(SupernetError::InvalidConfig {
                what: "architecture parameters",
                reason: format!("layer {l} has no choice"),
            });
        }
        let zeros = || choices.iter().map(|&c| vec![0.0; c]).collect::<Vec<_>>();
        Ok(Self {
            alphas: zeros(),
            first_moment: zeros(),
            second_moment: zeros(),
            steps: vec![0; choices.len()],
            config,
        })
    }

    /// The parameters `α_l` of every layer.
    pub fn alphas(&self) -> &[Vec<f64>] {
        &self.alphas
    }

    /// The number of layers.
    pub fn num_layers(&self) -> usize {
        self.alphas.len()
    }

    /// The path probabilities `softmax(α_l)` of layer `l`.
    pub fn probs(&self, layer: usize) -> Vec<f64> {
        softmax(&self.alphas[layer])
    }

    /// The path probabilities of every layer.
    pub fn all_probs(&self) -> Vec<Vec<f64>> {
        self.alphas.iter().map(|a| softmax(a)).collect()
    }

    /// One path per layer, drawn from the path probabilities (the binary gates of a weight
    /// step).
    pub fn sample_paths(&self, rng: &mut dyn Rng) -> Vec<usize> {
        self.alphas
            .iter()
            .map(|a| categorical(&softmax(a), rng))
            .collect()
    }

    /// Two distinct choices per layer drawn without replacement from the path probabilities,
    /// one of them made active with the two probabilities renormalized (the binary gates of an
    /// architecture step).
    pub fn sample_pairs(&self, rng: &mut dyn Rng) -> Vec<GatePair> {
        self.alphas
            .iter()
            .map(|a| {
                let p = softmax(a);
                if p.len() == 1 {
                    return GatePair {
                        active: 0,
                        inactive: None,
                    };
                }
                let first = categorical(&p, rng);
                let mut rest = p.clone();
                rest[first] = 0.0;
                let total: f64 = rest.iter().sum();
                let second = if total > 0.0 {
                    rest.iter_mut().for_each(|x| *x /= total);
                    categorical(&rest, rng)
                } else {
                    (first + 1) % p.len()
                };
                let pair = softmax(&[a[first], a[second]]);
                let (active, inactive) = if rng.random::<f64>() < pair[0] {
                    (first, second)
                } else {
                    (second, first)
                };
                GatePair {
                    active,
                    inactive: Some(inactive),
                }
            })
            .collect()
    }

    /// The most probable choice of every layer: the derived architecture.
    pub fn argmax(&self) -> Vec<usize> {
        self.alphas
            .iter()
            .map(|a| {
                a.iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                        if v > best.1 { (i, v) } else { best }
                    })
                    .0
            })
            .collect()
    }

    /// Mean entropy (nats) of the path distributions: `ln(choices)` at the start, 0 once every
    /// layer has decided.
    pub fn mean_entropy(&self) -> f64 {
        let total: f64 = self
            .alphas
            .iter()
            .map(|a| {
                softmax(a)
                    .iter()
                    .filter(|&&p| p > 0.0)
                    .map(|p| -p * p.ln())
                    .sum::<f64>()
            })
            .sum();
        total / self.alphas.len().max(1) as f64
    }

    /// One Adam step with gradient `grads[l]` for layer `l`; layers whose gradient is `None`
    /// are not updated (their Adam state does not advance either, as PyTorch's Adam skips a
    /// parameter without a gradient).
    ///
    /// # Panics
    /// If a gradient's length differs from its layer's number of choices.
    pub fn step(&mut self, grads: &[Option<Vec<f64>>]) {
        let c = self.config;
        for (l, grad) in grads.iter().enumerate().take(self.alphas.len()) {
            let Some(g) = grad else { continue };
            assert_eq!(g.len(), self.alphas[l].len(), "gradient of layer {l}");
            self.steps[l] += 1;
            let t = self.steps[l] as i32;
            let (b1, b2) = (c.beta1, c.beta2);
            for (i, &gi) in g.iter().enumerate() {
                let m = &mut self.first_moment[l][i];
                *m = b1 * *m + (1.0 - b1) * gi;
                let v = &mut self.second_moment[l][i];
                *v = b2 * *v + (1.0 - b2) * gi * gi;
                let m_hat = *m / (1.0 - b1.powi(t));
                let v_hat = *v / (1.0 - b2.powi(t));
                self.alphas[l][i] -= c.learning_rate * m_hat / (v_hat.sqrt() + c.epsilon);
            }
        }
    }

    /// After a two-path update of layer `layer`, shifts the two parameters `(a, b)` by a common
    /// offset so that `exp(α_a) + exp(α_b)` equals its value before the update (`old`): the
    /// probabilities of the choices that were not sampled stay as they were.
    pub fn rescale_pair(&mut self, layer: usize, pair: (usize, usize), old: (f64, f64)) {
        let a = &mut self.alphas[layer];
        let new_sum = a[pair.0].exp() + a[pair.1].exp();
        let old_sum = old.0.exp() + old.1.exp();
        let offset = (new_sum / old_sum).ln();
        a[pair.0] -= offset;
        a[pair.1] -= offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;

    #[test]
    fn pair_estimate_matches_the_full_formula_on_two_choices() {
        let (ga, gb) = pair_alpha_grads((0.3, -0.2), (1.5, -0.5));
        let full = full_alpha_grads(&softmax(&[0.3, -0.2]), &[1.5, -0.5]);
        assert!((ga - full[0]).abs() < 1e-12 && (gb - full[1]).abs() < 1e-12);
        // The gradients of a softmax sum to zero.
        assert!((ga + gb).abs() < 1e-12);
        // A constant added to every gate gradient does not change the estimate.
        let shifted = full_alpha_grads(&softmax(&[0.3, -0.2]), &[2.5, 0.5]);
        assert!((shifted[0] - full[0]).abs() < 1e-12);
    }

    #[test]
    fn latency_gradient_is_the_derivative_of_the_expected_latency() {
        let alpha = [0.1, -0.4, 0.7];
        let lat = [1.0, 2.0, 4.0];
        let expected = |a: &[f64]| -> f64 { softmax(a).iter().zip(&lat).map(|(p, l)| p * l).sum() };
        let g = latency_alpha_grads(&softmax(&alpha), &lat, 1.0);
        for (i, gi) in g.iter().enumerate() {
            let mut up = alpha;
            up[i] += 1e-6;
            let numeric = (expected(&up) - expected(&alpha)) / 1e-6;
            assert!((numeric - gi).abs() < 1e-5, "{numeric} vs {gi}");
        }
    }

    #[test]
    fn sampled_gates_are_allowed_distinct_and_seeded() {
        let params = ArchParams::new(&[7, 6, 1], ArchOptimConfig::default()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let paths = params.sample_paths(&mut rng);
            assert!(paths[0] < 7 && paths[1] < 6 && paths[2] == 0);
            let pairs = params.sample_pairs(&mut rng);
            for (pair, n) in pairs.iter().zip([7, 6, 1]) {
                assert!(pair.active < n);
                match pair.inactive {
                    Some(i) => assert!(i < n && i != pair.active),
                    None => assert_eq!(n, 1),
                }
            }
        }
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (params.sample_paths(&mut rng), params.sample_pairs(&mut rng))
        };
        assert_eq!(draw(9), draw(9));
    }

    #[test]
    fn rescaling_keeps_unsampled_probabilities() {
        let mut params = ArchParams::new(
            &[4],
            ArchOptimConfig {
                learning_rate: 0.5,
                ..ArchOptimConfig::default()
            },
        )
        .unwrap();
        let before = params.probs(0);
        let old = (params.alphas()[0][1], params.alphas()[0][3]);
        params.step(&[Some(vec![0.0, 1.0, 0.0, -1.0])]);
        params.rescale_pair(0, (1, 3), old);
        let after = params.probs(0);
        assert!((before[0] - after[0]).abs() < 1e-12 && (before[2] - after[2]).abs() < 1e-12);
        assert!(after[3] > before[3] && after[1] < before[1]);
        assert_eq!(params.argmax(), vec![3]);
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(ArchParams::new(&[3, 0], ArchOptimConfig::default()).is_err());
        let bad = ArchOptimConfig {
            learning_rate: -1.0,
            ..ArchOptimConfig::default()
        };
        assert!(ArchParams::new(&[3], bad).is_err());
    }
}
