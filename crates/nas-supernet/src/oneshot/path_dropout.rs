//! Path dropout of One-Shot (Bender et al., *Understanding and Simplifying One-Shot
//! Architecture Search*, ICML 2018).
//!
//! The one-shot model runs every candidate operation and sums them; to make the weights useful
//! for the sub-networks that keep only a few operations, training drops operations at random.
//! The paper's rule: with `k` candidate paths into a choice, each is dropped independently
//! with probability `r^(1/k)`, so that all `k` are dropped with probability `r` whatever `k`;
//! the rate `r` rises linearly over training, from 0 to its final value. A choice whose paths
//! are all dropped contributes zeros. Kept paths are not rescaled (each candidate ends in its
//! own batch norm where it has weights). Masks come from a seeded generator, so training is
//! reproducible.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;

/// The path-dropout schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathDropout {
    /// The rate `r` at the end of training (the probability that all paths of a choice are
    /// dropped), in `[0, 1)`.
    pub final_rate: f64,
}

impl PathDropout {
    /// A linear schedule from 0 to `final_rate`; fails unless `final_rate` is in `[0, 1)`.
    pub fn new(final_rate: f64) -> Result<Self, SupernetError> {
        if !(0.0..1.0).contains(&final_rate) {
            return Err(SupernetError::InvalidConfig {
                what: "path dropout",
                reason: format!("the final rate must be in [0, 1), got {final_rate}"),
            });
        }
        Ok(Self { final_rate })
    }

    /// The rate `r` at `step` of `total` steps: `final_rate · step / total`.
    pub fn rate_at(&self, step: usize, total: usize) -> f64 {
        self.final_rate * (step as f64 / total.max(1) as f64).min(1.0)
    }

    /// The probability of dropping each of `k` paths at rate `rate`: `rate^(1/k)`.
    pub fn drop_probability(rate: f64, k: usize) -> f64 {
        if rate <= 0.0 || k == 0 {
            0.0
        } else {
            rate.powf(1.0 / k as f64)
        }
    }

    /// Which of `k` paths to keep at rate `rate`.
    pub fn sample_keep(rate: f64, k: usize, rng: &mut dyn Rng) -> Vec<bool> {
        let p = Self::drop_probability(rate, k);
        (0..k).map(|_| !(p > 0.0 && rng.random_bool(p))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;

    #[test]
    fn schedule_is_linear_and_all_dropped_has_probability_r() {
        let d = PathDropout::new(0.2).unwrap();
        assert_eq!(d.rate_at(0, 100), 0.0);
        assert!((d.rate_at(50, 100) - 0.1).abs() < 1e-12);
        assert!((d.rate_at(100, 100) - 0.2).abs() < 1e-12);
        for k in [1, 2, 4] {
            let p = PathDropout::drop_probability(0.2, k);
            assert!((p.powi(k as i32) - 0.2).abs() < 1e-12);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 20_000;
        let all_dropped = (0..n)
            .filter(|_| {
                PathDropout::sample_keep(0.2, 4, &mut rng)
                    .iter()
                    .all(|k| !k)
            })
            .count();
        let freq = all_dropped as f64 / n as f64;
        assert!((freq - 0.2).abs() < 0.02, "{freq}");
        // Rate 0 keeps every path.
        assert!(
            PathDropout::sample_keep(0.0, 4, &mut rng)
                .iter()
                .all(|&k| k)
        );
        assert!(PathDropout::new(1.0).is_err());
    }
}
