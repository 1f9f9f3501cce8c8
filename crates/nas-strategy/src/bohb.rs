//! BOHB (Falkner et al., "BOHB: Robust and Efficient Hyperparameter Optimization at Scale",
//! ICML 2018): Hyperband's brackets, with new architectures chosen by a TPE-style density
//! ratio instead of uniform sampling.
//!
//! For each budget with enough evaluations, the evaluations are split into the best
//! `top_n_percent` ("good") and the rest ("bad"); a kernel density estimate is fit to each on
//! the space's encoding ([`Encode`]), and a new architecture maximizes `l(x) / g(x)` (good
//! density over bad density) among `num_samples` draws from the widened good density. The
//! model of the largest budget with at least `min_points_in_model + 2` evaluations is used; a
//! fraction `random_fraction` of the new architectures is always uniform at random (the
//! paper's guarantee of Hyperband's worst case).
//!
//! Two adaptations to architectures, stated here because they differ from HpBandSter:
//!
//! - Every coordinate of the encoding is treated as a categorical variable with the
//!   Aitchison-Aitken kernel (statsmodels' unordered kernel): probability `1 - bw` of keeping
//!   the value and `bw` of the other one, for one-hot encodings each position is binary. The
//!   bandwidth of each coordinate is the normal-reference rule `1.06 σ n^(-1/(4+d))` clipped to
//!   `[min_bandwidth, 0.5]`, as statsmodels and HpBandSter compute it.
//! - An encoding cannot be decoded into an architecture, so sampling from the widened good
//!   density is done in the space: a good architecture is drawn and mutated ([`Mutate`]) as
//!   many times as the kernel would change decisions (each position flips with probability
//!   `min(bandwidth_factor · bw, 0.5)`; two flipped positions make one changed decision of a
//!   one-hot encoding; at least one mutation, so a candidate is never a copy).
//!
//! Pruned and failed evaluations count as the worst of their budget in the model (HpBandSter
//! gives crashed runs an infinite loss) and are never promoted.

use std::collections::HashSet;

use nas_space::{Encode, Mutate, SearchSpace};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::hyperband::{Brackets, Evaluation, HyperbandConfig, incumbent};
use crate::{Outcome, Strategy, StrategyError, Trial, TrialId};

/// Configuration of [`Bohb`]. The defaults are HpBandSter's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BohbConfig {
    /// The brackets (fidelities and η).
    pub hyperband: HyperbandConfig,
    /// The model of a budget is used once it has `min_points_in_model + 2` evaluations; also
    /// the least number of good and of bad points. Falkner et al. use the dimension + 1; the
    /// default 7 is that for NAS-Bench-201's six decisions.
    pub min_points_in_model: usize,
    /// The percentage of evaluations of a budget that are "good".
    pub top_n_percent: usize,
    /// Candidates drawn from the good density per new architecture.
    pub num_samples: usize,
    /// The fraction of new architectures drawn uniformly at random.
    pub random_fraction: f64,
    /// Bandwidths are multiplied by this factor when drawing candidates (exploration).
    pub bandwidth_factor: f64,
    /// The smallest bandwidth of a coordinate.
    pub min_bandwidth: f64,
}

impl Default for BohbConfig {
    fn default() -> Self {
        Self {
            hyperband: HyperbandConfig::default(),
            min_points_in_model: 7,
            top_n_percent: 15,
            num_samples: 64,
            random_fraction: 1.0 / 3.0,
            bandwidth_factor: 3.0,
            min_bandwidth: 1e-3,
        }
    }
}

/// The most candidates BOHB may draw from its model per proposal (each is scored by two
/// kernel densities).
pub const MAX_NUM_SAMPLES: usize = 100_000;

impl BohbConfig {
    /// Checks every value; each invalid one is its own error.
    pub fn check(&self) -> Result<(), StrategyError> {
        self.hyperband.check_as("bohb")?;
        let err = |field, reason: String| {
            Err(StrategyError::InvalidConfig {
                strategy: "bohb",
                field,
                reason,
            })
        };
        if self.min_points_in_model < 1 {
            return err("min_points_in_model", "must be at least 1".into());
        }
        if !(1..=99).contains(&self.top_n_percent) {
            return err(
                "top_n_percent",
                format!("must be between 1 and 99, got {}", self.top_n_percent),
            );
        }
        if !(1..=MAX_NUM_SAMPLES).contains(&self.num_samples) {
            return err(
                "num_samples",
                format!(
                    "must be between 1 and {MAX_NUM_SAMPLES} (64 is usual), got {}",
                    self.num_samples
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.random_fraction) {
            return err(
                "random_fraction",
                format!("must be between 0 and 1, got {}", self.random_fraction),
            );
        }
        if !(self.bandwidth_factor.is_finite() && self.bandwidth_factor > 0.0) {
            return err(
                "bandwidth_factor",
                format!(
                    "must be a finite positive number, got {}",
                    self.bandwidth_factor
                ),
            );
        }
        if !(self.min_bandwidth > 0.0 && self.min_bandwidth <= 0.5) {
            return err(
                "min_bandwidth",
                format!(
                    "must be in (0, 0.5] (a bandwidth is a probability of change), got {}",
                    self.min_bandwidth
                ),
            );
        }
        Ok(())
    }
}

/// A product Aitchison-Aitken kernel density over encodings.
struct Kde {
    points: Vec<Vec<f32>>,
    bw: Vec<f64>,
}

impl Kde {
    fn fit(points: Vec<Vec<f32>>, min_bw: f64) -> Self {
        let n = points.len();
        let d = points.first().map_or(0, Vec::len);
        let factor = 1.06 * (n as f64).powf(-1.0 / (4.0 + d as f64));
        let bw = (0..d)
            .map(|i| {
                let mean = points.iter().map(|p| f64::from(p[i])).sum::<f64>() / n as f64;
                let var = points
                    .iter()
                    .map(|p| (f64::from(p[i]) - mean).powi(2))
                    .sum::<f64>()
                    / (n as f64 - 1.0).max(1.0);
                (factor * var.sqrt()).clamp(min_bw, 0.5)
            })
            .collect();
        Self { points, bw }
    }

    fn log_pdf(&self, x: &[f32]) -> f64 {
        let terms: Vec<f64> = self
            .points
            .iter()
            .map(|p| {
                p.iter()
                    .zip(x)
                    .zip(&self.bw)
                    .map(|((a, b), bw)| {
                        if (a - b).abs() < 1e-6 {
                            (1.0 - bw).ln()
                        } else {
                            bw.ln()
                        }
                    })
                    .sum()
            })
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
            - (self.points.len() as f64).ln()
    }
}

/// BOHB: Hyperband whose new architectures come from a TPE-style model per budget (see the
/// [module docs](self), and [`crate::hyperband`] for the brackets and fidelities).
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Bohb<S: SearchSpace> {
    config: BohbConfig,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    brackets: Brackets<S::Arch>,
    /// Every new architecture started so far (candidates avoid them).
    sampled: HashSet<S::Arch>,
    /// How many new architectures came from the model (the rest were random).
    model_based: usize,
}

impl<S: SearchSpace> Bohb<S> {
    /// Checks `config` and seeds the strategy.
    pub fn new(config: BohbConfig, seed: u64) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            brackets: Brackets::new(config.hyperband),
            sampled: HashSet::new(),
            model_based: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BohbConfig {
        &self.config
    }

    /// Every evaluation told so far, in order.
    pub fn evaluations(&self) -> &[Evaluation<S::Arch>] {
        &self.brackets.evaluations
    }

    /// The best complete evaluation at the largest budget reached so far.
    pub fn incumbent(&self) -> Option<&Evaluation<S::Arch>> {
        incumbent(&self.brackets.evaluations)
    }

    /// How many new architectures were chosen by the model rather than at random.
    pub fn model_based(&self) -> usize {
        self.model_based
    }
}

/// Everything the choice of a new architecture needs, borrowed apart from the brackets.
struct Sampler<'a, S: SearchSpace> {
    config: &'a BohbConfig,
    rng: &'a mut ChaCha8Rng,
    sampled: &'a HashSet<S::Arch>,
}

impl<S: Mutate + Encode> Sampler<'_, S> {
    /// A new architecture: from the model when one is ready, else uniform. `Ok(None)` means
    /// uniform.
    fn choose(
        &mut self,
        space: &S,
        evals: &[Evaluation<S::Arch>],
    ) -> Result<Option<S::Arch>, StrategyError> {
        let c = self.config;
        if self.rng.random_bool(c.random_fraction) {
            return Ok(None);
        }
        let need = c.min_points_in_model.saturating_add(2);
        let mut budgets: Vec<f64> = evals.iter().map(|e| e.fidelity).collect();
        budgets.sort_by(|a, b| b.total_cmp(a));
        budgets.dedup();
        let Some(budget) = budgets
            .into_iter()
            .find(|&b| evals.iter().filter(|e| e.fidelity == b).count() >= need)
        else {
            return Ok(None);
        };
        let mut data: Vec<(&S::Arch, f64)> = evals
            .iter()
            .filter(|e| e.fidelity == budget)
            .map(|e| (&e.arch, e.objective.unwrap_or(f64::NEG_INFINITY)))
            .collect();
        data.sort_by(|a, b| b.1.total_cmp(&a.1));
        let n = data.len();
        let n_good = (c.top_n_percent * n / 100).max(c.min_points_in_model);
        let n_bad = ((100 - c.top_n_percent) * n / 100).max(c.min_points_in_model);
        let good: Vec<&S::Arch> = data.iter().take(n_good).map(|(a, _)| *a).collect();
        let bad: Vec<&S::Arch> = data
            .iter()
            .skip(n_good)
            .take(n_bad)
            .map(|(a, _)| *a)
            .collect();
        if good.is_empty() || bad.is_empty() {
            return Ok(None);
        }
        let encode = |set: &[&S::Arch]| -> Result<Vec<Vec<f32>>, StrategyError> {
            set.iter()
                .map(|a| space.encode(a).map_err(StrategyError::from))
                .collect()
        };
        let l = Kde::fit(encode(&good)?, c.min_bandwidth);
        let g = Kde::fit(encode(&bad)?, c.min_bandwidth);

        let mut best: Option<(f64, S::Arch)> = None;
        let mut best_seen: Option<(f64, S::Arch)> = None;
        for _ in 0..c.num_samples {
            let start = good[self.rng.random_range(0..good.len())];
            let flips =
                l.bw.iter()
                    .filter(|&&bw| self.rng.random_bool((c.bandwidth_factor * bw).min(0.5)))
                    .count();
            let mut cand = start.clone();
            let mut ok = true;
            for _ in 0..flips.div_ceil(2).max(1) {
                match space.mutate(&cand, self.rng) {
                    Ok(m) => cand = m,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            let x = space.encode(&cand)?;
            let ratio = l.log_pdf(&x) - g.log_pdf(&x);
            let slot = if self.sampled.contains(&cand) {
                &mut best_seen
            } else {
                &mut best
            };
            if slot.as_ref().is_none_or(|(r, _)| ratio > *r) {
                *slot = Some((ratio, cand));
            }
        }
        Ok(best.or(best_seen).map(|(_, a)| a))
    }
}

impl<S: Mutate + Encode> Strategy<S> for Bohb<S> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        let mut sampler = Sampler::<S> {
            config: &self.config,
            rng: &mut self.rng,
            sampled: &self.sampled,
        };
        let mut from_model = false;
        let trial = self.brackets.next(|evals, _| {
            Ok(match sampler.choose(space, evals)? {
                Some(a) => {
                    from_model = true;
                    a
                }
                None => space.sample(sampler.rng),
            })
        })?;
        if from_model {
            self.model_based += 1;
        }
        self.sampled.insert(trial.arch.clone());
        Ok(trial)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        self.brackets.tell(id, &outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_space::nb201::Nb201Space;

    #[test]
    fn invalid_configs_are_rejected_field_by_field() {
        let base = BohbConfig::default();
        let cases: Vec<(BohbConfig, &str)> = vec![
            (
                BohbConfig {
                    min_points_in_model: 0,
                    ..base
                },
                "min_points_in_model",
            ),
            (
                BohbConfig {
                    top_n_percent: 0,
                    ..base
                },
                "top_n_percent",
            ),
            (
                BohbConfig {
                    top_n_percent: 100,
                    ..base
                },
                "top_n_percent",
            ),
            (
                BohbConfig {
                    num_samples: 0,
                    ..base
                },
                "num_samples",
            ),
            (
                BohbConfig {
                    num_samples: MAX_NUM_SAMPLES + 1,
                    ..base
                },
                "num_samples",
            ),
            (
                BohbConfig {
                    random_fraction: 1.5,
                    ..base
                },
                "random_fraction",
            ),
            (
                BohbConfig {
                    bandwidth_factor: 0.0,
                    ..base
                },
                "bandwidth_factor",
            ),
            (
                BohbConfig {
                    min_bandwidth: 0.0,
                    ..base
                },
                "min_bandwidth",
            ),
            (
                BohbConfig {
                    hyperband: HyperbandConfig {
                        eta: 0.5,
                        ..base.hyperband
                    },
                    ..base
                },
                "eta",
            ),
        ];
        for (c, field) in cases {
            match Bohb::<Nb201Space>::new(c, 0) {
                Err(StrategyError::InvalidConfig {
                    strategy: "bohb",
                    field: f,
                    ..
                }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn density_ratio_prefers_the_good_region() {
        let good = vec![vec![1.0, 0.0, 1.0, 0.0]; 5];
        let bad = vec![vec![0.0, 1.0, 0.0, 1.0]; 5];
        let l = Kde::fit(good, 1e-3);
        let g = Kde::fit(bad, 1e-3);
        let ratio = |x: &[f32]| l.log_pdf(x) - g.log_pdf(x);
        assert!(ratio(&[1.0, 0.0, 1.0, 0.0]) > ratio(&[1.0, 0.0, 0.0, 1.0]));
        assert!(ratio(&[1.0, 0.0, 0.0, 1.0]) > ratio(&[0.0, 1.0, 0.0, 1.0]));
    }
}
