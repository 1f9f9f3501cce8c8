//! The search methods: how alphas weight the operations, and their schedules.
//!
//! | method | relaxation | alphas' gradient | schedule | source of the defaults |
//! | --- | --- | --- | --- | --- |
//! | [`Method::Darts`] | softmax | first order: `∇α L_val(w, α)` | — | DARTS (Liu et al., ICLR 2019) |
//! | [`Method::Darts2`] | softmax | second order: `∇α L_val(w − ξ∇w L_train(w, α), α)`, Hessian-vector product by finite differences | — | DARTS, `architect.py` of `quark0/darts` (ε = 0.01 / ‖∇w'L_val‖) |
//! | [`Method::Gdas`] | hard Gumbel-softmax, straight-through; only the sampled operation is computed | first order | τ linear from 10 to 0.1 over the epochs | GDAS (Dong and Yang, CVPR 2019), AutoDL-Projects |
//! | [`Method::Snas`] | soft Gumbel-softmax | first order | τ exponential from 1 to 0.33 | SNAS (Xie et al., ICLR 2019); 0.33 as in ConfOpt's SNAS sampler |
//! | [`Method::Asap`] | softmax(α / τ), pruned operations masked | first order | τ = 1.6 · 0.95^epoch; at each epoch start, operations whose weight is below 0.4 / N (N candidates on the edge) are pruned | ASAP (Noy et al., AISTATS 2020), as implemented in UniNAS |
//! | [`Method::Pdarts`] | softmax; dropout on skip connections | first order | stages of growing depth; weakest operations dropped between stages; at most `max_skip` skip connections in the derived normal cell | P-DARTS (Chen et al., ICCV 2019), `chenxin061/pdarts` |
//!
//! Every method runs in the same bi-level driver ([`super::Searcher`]): the weights learn on
//! one half of the training data, the alphas on the other. (SNAS trains both on the same data
//! in its paper; here it shares the bi-level split of the others.)

use serde::{Deserialize, Serialize};

use super::SearchError;
use super::alphas::Relaxation;

/// Second-order DARTS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnrolledConfig {
    /// Step ξ of the virtual weight update `w' = w − ξ(∇w L_train + λw)`; `None`: the current
    /// weight learning rate, as in DARTS.
    pub xi: Option<f64>,
    /// The finite-difference step is `epsilon / ‖∇w' L_val(w', α)‖` (DARTS: 0.01).
    pub epsilon: f64,
}

impl Default for UnrolledConfig {
    fn default() -> Self {
        Self {
            xi: None,
            epsilon: 0.01,
        }
    }
}

/// Gumbel-softmax temperatures, annealed from `tau_max` (first epoch) to `tau_min` (last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GumbelConfig {
    /// Temperature of the first epoch.
    pub tau_max: f64,
    /// Temperature of the last epoch.
    pub tau_min: f64,
}

/// ASAP settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsapConfig {
    /// Initial temperature τ0.
    pub tau0: f64,
    /// Annealing factor per epoch: τ = τ0 · β^epoch.
    pub beta: f64,
    /// An operation is pruned when its weight falls below `threshold / N`, N the number of
    /// candidate operations of its edge (the paper's 0.4).
    pub threshold: f64,
}

impl Default for AsapConfig {
    fn default() -> Self {
        Self {
            tau0: 1.6,
            beta: 0.95,
            threshold: 0.4,
        }
    }
}

/// P-DARTS settings: one entry per stage in `add_cells` and `skip_dropout`, one per stage
/// transition in `keep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdartsConfig {
    /// Cells added to the configured depth in each stage (DARTS space: to `layers`;
    /// NAS-Bench-201: to `cells_per_stage`). The paper: 0, 6, 12 (5, 11, 17 cells).
    pub add_cells: Vec<usize>,
    /// Operations kept per edge after each stage but the last (the paper: 5, then 3).
    pub keep: Vec<usize>,
    /// Dropout probability on skip connections in each stage (the paper on CIFAR-10: 0, 0.4,
    /// 0.7), decayed within the stage.
    pub skip_dropout: Vec<f64>,
    /// Epochs at the start of each stage that train only the weights (the code: 10 of 25).
    pub warmup_epochs: usize,
    /// After the warm-up the dropout is `p · exp(−decay · (epoch − warmup))` (the code: 0.2);
    /// during it, `p · (epochs − epoch − 1) / epochs`.
    pub dropout_decay: f64,
    /// The most skip connections allowed in the derived normal cell (the paper: 2).
    pub max_skip: Option<usize>,
}

impl Default for PdartsConfig {
    fn default() -> Self {
        Self {
            add_cells: vec![0, 6, 12],
            keep: vec![5, 3],
            skip_dropout: vec![0.0, 0.4, 0.7],
            warmup_epochs: 10,
            dropout_decay: 0.2,
            max_skip: Some(2),
        }
    }
}

/// A differentiable search method (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Method {
    /// First-order DARTS.
    Darts,
    /// Second-order (unrolled) DARTS.
    Darts2(UnrolledConfig),
    /// GDAS.
    Gdas(GumbelConfig),
    /// SNAS.
    Snas(GumbelConfig),
    /// ASAP.
    Asap(AsapConfig),
    /// P-DARTS.
    Pdarts(PdartsConfig),
}

impl Method {
    /// The names accepted by [`Method::from_name`].
    pub const NAMES: [&'static str; 6] = ["darts", "darts2", "gdas", "snas", "asap", "pdarts"];

    /// The method called `name` with its papers' defaults.
    pub fn from_name(name: &str) -> Result<Self, SearchError> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "darts" => Method::Darts,
            "darts2" => Method::Darts2(UnrolledConfig::default()),
            "gdas" => Method::Gdas(GumbelConfig {
                tau_max: 10.0,
                tau_min: 0.1,
            }),
            "snas" => Method::Snas(GumbelConfig {
                tau_max: 1.0,
                tau_min: 0.33,
            }),
            "asap" => Method::Asap(AsapConfig::default()),
            "pdarts" => Method::Pdarts(PdartsConfig::default()),
            other => {
                return Err(SearchError::InvalidConfig {
                    field: "method",
                    reason: format!(
                        "unknown method `{other}`: expected one of {}",
                        Self::NAMES.join(", ")
                    ),
                });
            }
        })
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Darts => "darts",
            Method::Darts2(_) => "darts2",
            Method::Gdas(_) => "gdas",
            Method::Snas(_) => "snas",
            Method::Asap(_) => "asap",
            Method::Pdarts(_) => "pdarts",
        }
    }

    /// Checks the method's settings; the error names the field.
    pub fn check(&self) -> Result<(), SearchError> {
        let bad = |field: &'static str, reason: &str| {
            Err(SearchError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        let positive = |v: f64| v > 0.0 && v.is_finite();
        match self {
            Method::Darts => Ok(()),
            Method::Darts2(u) => {
                if u.xi.is_some_and(|x| !(x >= 0.0 && x.is_finite())) {
                    return bad("xi", "must be ≥ 0 and finite");
                }
                if !positive(u.epsilon) {
                    return bad("epsilon", "must be positive and finite");
                }
                Ok(())
            }
            Method::Gdas(g) | Method::Snas(g) => {
                if !positive(g.tau_max) || !positive(g.tau_min) || g.tau_min > g.tau_max {
                    return bad("tau", "needs 0 < tau_min ≤ tau_max, both finite");
                }
                Ok(())
            }
            Method::Asap(a) => {
                if !positive(a.tau0) {
                    return bad("tau0", "must be positive and finite");
                }
                if !(a.beta > 0.0 && a.beta <= 1.0) {
                    return bad("beta", "must be in (0, 1]");
                }
                if !(0.0..1.0).contains(&a.threshold) {
                    return bad("threshold", "must be in [0, 1)");
                }
                Ok(())
            }
            Method::Pdarts(p) => {
                if p.add_cells.is_empty() {
                    return bad("add_cells", "needs one entry per stage (at least one)");
                }
                if p.skip_dropout.len() != p.add_cells.len() {
                    return bad("skip_dropout", "needs one entry per stage, as add_cells");
                }
                if p.keep.len() + 1 != p.add_cells.len() {
                    return bad(
                        "keep",
                        "needs one entry per stage transition (one fewer than add_cells)",
                    );
                }
                if p.keep.contains(&0) {
                    return bad("keep", "must keep at least one operation per edge");
                }
                if p.skip_dropout.iter().any(|d| !(0.0..1.0).contains(d)) {
                    return bad("skip_dropout", "must be in [0, 1)");
                }
                if !(p.dropout_decay >= 0.0 && p.dropout_decay.is_finite()) {
                    return bad("dropout_decay", "must be ≥ 0");
                }
                Ok(())
            }
        }
    }

    /// The number of stages (P-DARTS: one per entry of `add_cells`; the others: 1).
    pub fn stages(&self) -> usize {
        match self {
            Method::Pdarts(p) => p.add_cells.len().max(1),
            _ => 1,
        }
    }

    /// Whether the alphas' gradient is the unrolled (second-order) one.
    pub fn unrolled(&self) -> Option<&UnrolledConfig> {
        match self {
            Method::Darts2(u) => Some(u),
            _ => None,
        }
    }

    /// The relaxation of `epoch` (0-based) of `epochs`.
    pub fn relaxation(&self, epoch: usize, epochs: usize) -> Relaxation {
        let t = if epochs > 1 {
            epoch as f64 / (epochs - 1) as f64
        } else {
            0.0
        };
        match self {
            Method::Darts | Method::Darts2(_) | Method::Pdarts(_) => {
                Relaxation::Softmax { tau: 1.0 }
            }
            Method::Gdas(g) => Relaxation::GumbelHard {
                tau: g.tau_max - (g.tau_max - g.tau_min) * t,
            },
            Method::Snas(g) => Relaxation::GumbelSoft {
                tau: g.tau_max * (g.tau_min / g.tau_max).powf(t),
            },
            Method::Asap(a) => Relaxation::Softmax {
                tau: a.tau0 * a.beta.powi(epoch as i32),
            },
        }
    }

    /// The dropout on skip connections in `epoch` of `epochs` of `stage` (P-DARTS; 0 for the
    /// others).
    pub fn skip_dropout(&self, stage: usize, epoch: usize, epochs: usize) -> f64 {
        match self {
            Method::Pdarts(p) => {
                let base = p.skip_dropout.get(stage).copied().unwrap_or(0.0);
                if epoch < p.warmup_epochs {
                    base * (epochs.saturating_sub(epoch + 1)) as f64 / epochs.max(1) as f64
                } else {
                    base * (-(p.dropout_decay) * (epoch - p.warmup_epochs) as f64).exp()
                }
            }
            _ => 0.0,
        }
    }

    /// Whether the alphas learn in `epoch` (P-DARTS trains only the weights during its
    /// warm-up epochs).
    pub fn updates_alphas(&self, epoch: usize) -> bool {
        match self {
            Method::Pdarts(p) => epoch >= p.warmup_epochs,
            _ => true,
        }
    }

    /// The cap on skip connections in the derived architecture.
    pub fn max_skip(&self) -> Option<usize> {
        match self {
            Method::Pdarts(p) => p.max_skip,
            _ => None,
        }
    }
}
