//! Learning-curve extrapolation: stop a trial whose curve will probably not beat the best.
//!
//! [`LearningCurvePruner`] follows Domhan, Springenberg and Hutter, "Speeding up Automatic
//! Hyperparameter Optimization of Deep Neural Networks by Extrapolation of Learning Curves"
//! (IJCAI 2015): the values a trial has reported so far are fitted by an ensemble of
//! parametric curve models ([`CurveModel`]: saturating, increasing families such as
//! `c − a·x^(−α)`), each sampled by Markov chain Monte Carlo (the affine-invariant ensemble
//! sampler of Goodman and Weare, as the paper's `emcee`), and the trial is stopped when the
//! probability that its value at the final step beats the best final value so far falls below
//! a threshold (the paper's 5 %).
//!
//! Where this differs from the paper: each model is sampled on its own and the models are
//! mixed with weights proportional to the exponential of their mean posterior
//! log-likelihood, instead of sampling the weights of one combined model (a posterior over
//! ≈ 40 parameters that needs far longer chains); the predictive distribution of the final
//! value includes the observation noise, so a noisy best is not out of reach by construction.
//!
//! ```
//! use nas_strategy::curve::{LearningCurveConfig, LearningCurvePruner};
//! use nas_strategy::pruner::Pruner;
//! use nas_strategy::Outcome;
//! use nas_estimate::Metrics;
//!
//! // Accuracies in percent, 20 epochs (steps 0..=19).
//! let mut pruner = LearningCurvePruner::new(LearningCurveConfig::new(19, 100.0))?;
//! // A good trial runs to the end and sets the best final value (≈ 90 %).
//! let good: Vec<f64> = (1..=20).map(|x| 90.0 - 40.0 * (x as f64).powf(-1.0)).collect();
//! assert_eq!(pruner.replay(0, &good), None);
//! pruner.finish(0, &Outcome::Complete(Metrics::new(good[19])));
//! // A trial saturating near 60 % is stopped after a few epochs.
//! let bad: Vec<f64> = (1..=20).map(|x| 60.0 - 30.0 * (x as f64).powf(-1.0)).collect();
//! let stopped = pruner.replay(1, &bad).expect("stopped");
//! assert!(stopped < 10, "stopped at step {stopped}");
//! # Ok::<(), nas_strategy::StrategyError>(())
//! ```

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::pruner::Pruner;
use crate::{Outcome, StrategyError, TrialId};

/// A parametric family of learning curves, increasing and saturating in the step `x`
/// (counted from 1), values normalized to `[0, 1]`. The families and their names are the
/// paper's (its Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CurveModel {
    /// `c − a·x^(−α)`.
    Pow3,
    /// `a / (1 + (x / e^b)^c)`, `c < 0`.
    LogPower,
    /// `c − exp(−a·x + b)`.
    Exp3,
    /// `c − a / ln(x + 1)`.
    Ilog2,
    /// Morgan–Mercer–Flodin: `α − (α − β) / (1 + (κ·x)^δ)`.
    Mmf,
    /// Janoschek: `α − (α − β)·exp(−κ·x^δ)`.
    Janoschek,
}

impl CurveModel {
    /// Every model, the default ensemble.
    pub const ALL: [CurveModel; 6] = [
        CurveModel::Pow3,
        CurveModel::LogPower,
        CurveModel::Exp3,
        CurveModel::Ilog2,
        CurveModel::Mmf,
        CurveModel::Janoschek,
    ];

    /// The box (uniform prior) of each parameter, in the order of the formula.
    pub fn bounds(self) -> &'static [(f64, f64)] {
        match self {
            CurveModel::Pow3 => &[(0.0, 1.0), (0.0, 2.0), (0.0, 3.0)],
            CurveModel::LogPower => &[(0.0, 1.0), (-5.0, 10.0), (-6.0, 0.0)],
            CurveModel::Exp3 => &[(0.0, 1.0), (0.0, 3.0), (-10.0, 2.0)],
            CurveModel::Ilog2 => &[(0.0, 1.0), (0.0, 3.0)],
            CurveModel::Mmf => &[(0.0, 1.0), (0.0, 1.0), (0.0, 2.0), (0.0, 5.0)],
            CurveModel::Janoschek => &[(0.0, 1.0), (0.0, 1.0), (0.0, 5.0), (0.0, 3.0)],
        }
    }

    /// The model's value at step `x` (counted from 1) with parameters `p`.
    pub fn eval(self, p: &[f64], x: f64) -> f64 {
        match self {
            CurveModel::Pow3 => p[0] - p[1] * x.powf(-p[2]),
            CurveModel::LogPower => p[0] / (1.0 + (x / p[1].exp()).powf(p[2])),
            CurveModel::Exp3 => p[0] - (-p[1] * x + p[2]).exp(),
            CurveModel::Ilog2 => p[0] - p[1] / (x + 1.0).ln(),
            CurveModel::Mmf => p[0] - (p[0] - p[1]) / (1.0 + (p[2] * x).powf(p[3])),
            CurveModel::Janoschek => p[0] - (p[0] - p[1]) * (-p[2] * x.powf(p[3])).exp(),
        }
    }

    /// The model's name in the paper.
    pub fn name(self) -> &'static str {
        match self {
            CurveModel::Pow3 => "pow3",
            CurveModel::LogPower => "log power",
            CurveModel::Exp3 => "exp3",
            CurveModel::Ilog2 => "ilog2",
            CurveModel::Mmf => "MMF",
            CurveModel::Janoschek => "Janoschek",
        }
    }
}

/// Configuration of [`LearningCurvePruner`] and [`forecast`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningCurveConfig {
    /// The step whose value is predicted: the trial's last (epochs − 1 when steps are epochs
    /// counted from 0).
    pub final_step: usize,
    /// The smallest value a curve can take (0 for accuracy).
    pub lower: f64,
    /// The largest value a curve can take (100 for accuracy in percent, 1 for a fraction).
    /// Values are normalized by `lower` and `upper`; no model predicts beyond them.
    pub upper: f64,
    /// A trial stops when the probability that its final value beats the best final value
    /// so far is below this (the paper's 0.05).
    pub threshold: f64,
    /// Values a trial must have reported before it can be stopped (its own curve is the
    /// evidence; the paper predicts from its first steps on).
    pub min_steps: usize,
    /// Completed trials before any trial is stopped (the best so far must exist).
    pub min_completed: usize,
    /// The curve families of the ensemble.
    pub models: Vec<CurveModel>,
    /// Walkers of each model's ensemble sampler (even, at least 10).
    pub walkers: usize,
    /// Sampler steps discarded before the samples are kept.
    pub burn_in: usize,
    /// Sampler steps kept (each keeps every walker's state).
    pub samples: usize,
    /// Seed of the sampler: the forecast of a trial at a step depends only on the seed, the
    /// trial id, the step and the values, never on the order of other trials or on threads.
    pub seed: u64,
}

impl LearningCurveConfig {
    /// The defaults for trials whose last step is `final_step` and whose values lie in
    /// `[0, upper]`: threshold 0.05, 3 steps before the first prediction, 1 completed trial,
    /// every model, 24 walkers, 200 burn-in steps, 100 kept steps, seed 0.
    pub fn new(final_step: usize, upper: f64) -> Self {
        Self {
            final_step,
            lower: 0.0,
            upper,
            threshold: 0.05,
            min_steps: 3,
            min_completed: 1,
            models: CurveModel::ALL.to_vec(),
            walkers: 24,
            burn_in: 200,
            samples: 100,
            seed: 0,
        }
    }

    /// Checks every field, saying which is wrong and what it accepts.
    pub fn check(&self) -> Result<(), StrategyError> {
        let bad = |field: &'static str, reason: &str| {
            Err(StrategyError::InvalidConfig {
                strategy: "learning-curve pruner",
                field,
                reason: reason.into(),
            })
        };
        if !(self.lower.is_finite() && self.upper.is_finite() && self.lower < self.upper) {
            return bad(
                "upper",
                &format!(
                    "must be finite and above `lower` (got lower {} and upper {}); use 100 for \
                     accuracy in percent, 1 for a fraction",
                    self.lower, self.upper
                ),
            );
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad(
                "threshold",
                &format!(
                    "must lie in (0, 1), got {} (the paper uses 0.05)",
                    self.threshold
                ),
            );
        }
        if self.min_steps < 2 {
            return bad("min_steps", "must be at least 2 (one value has no trend)");
        }
        if self.min_steps > self.final_step {
            return bad(
                "min_steps",
                &format!(
                    "must be at most `final_step` ({}), or no trial is ever stopped before its end",
                    self.final_step
                ),
            );
        }
        if self.min_completed == 0 {
            return bad(
                "min_completed",
                "must be at least 1 (a best final value is needed)",
            );
        }
        if self.models.is_empty() {
            return bad("models", "must name at least one curve model");
        }
        if self.walkers < 10 || self.walkers % 2 == 1 {
            return bad(
                "walkers",
                &format!("must be even and at least 10, got {}", self.walkers),
            );
        }
        if self.samples == 0 {
            return bad("samples", "must be at least 1");
        }
        const MAX_WORK: usize = 1 << 24;
        if self
            .walkers
            .saturating_mul(self.burn_in.saturating_add(self.samples))
            > MAX_WORK
        {
            return bad(
                "walkers",
                "times (burn_in + samples) must stay below 16,777,216 sampler moves per model",
            );
        }
        Ok(())
    }
}

/// One component of a forecast: a curve's value at the final step, the noise of its
/// observations and its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Component {
    value: f64,
    sigma: f64,
    weight: f64,
}

/// The predictive distribution of a curve's value at the final step: a weighted mixture of
/// normal distributions, one per posterior sample of each model.
#[derive(Debug, Clone)]
pub struct CurveForecast {
    components: Vec<Component>,
    weights: Vec<(CurveModel, f64)>,
    lower: f64,
    upper: f64,
}

impl CurveForecast {
    /// The mean predicted final value, in the curve's units.
    pub fn mean(&self) -> f64 {
        let m: f64 = self.components.iter().map(|c| c.weight * c.value).sum();
        self.lower + m * (self.upper - self.lower)
    }

    /// The probability that the final value exceeds `value` (in the curve's units).
    pub fn probability_above(&self, value: f64) -> f64 {
        let v = (value - self.lower) / (self.upper - self.lower);
        self.components
            .iter()
            .map(|c| {
                c.weight * 0.5 * libm::erfc((v - c.value) / (c.sigma * std::f64::consts::SQRT_2))
            })
            .sum::<f64>()
            .clamp(0.0, 1.0)
    }

    /// Each model's weight in the mixture (they sum to 1; a model that fits no sample has 0).
    pub fn model_weights(&self) -> &[(CurveModel, f64)] {
        &self.weights
    }
}

/// The log-likelihood of `p` (the model's parameters, then `ln σ`) on `(x, y)`, or `None`
/// where the prior rules it out (out of bounds, decreasing, outside `[0, 1]` at the end).
fn log_likelihood(model: CurveModel, p: &[f64], xs: &[f64], ys: &[f64], x_end: f64) -> Option<f64> {
    let bounds = model.bounds();
    let (theta, ln_sigma) = p.split_at(bounds.len());
    if theta
        .iter()
        .zip(bounds)
        .any(|(v, (lo, hi))| !(v >= lo && v <= hi))
    {
        return None;
    }
    let ln_sigma = ln_sigma[0];
    if !(LN_SIGMA.0..=LN_SIGMA.1).contains(&ln_sigma) {
        return None;
    }
    let sigma = ln_sigma.exp();
    let mut previous = f64::NEG_INFINITY;
    let mut sq = 0.0;
    for (&x, &y) in xs.iter().zip(ys) {
        let f = model.eval(theta, x);
        if !f.is_finite() || f < previous - 1e-9 {
            return None;
        }
        previous = f;
        sq += (y - f) * (y - f);
    }
    let end = model.eval(theta, x_end);
    if !(end >= previous - 1e-9 && (0.0..=1.0).contains(&end)) {
        return None;
    }
    Some(-0.5 * sq / (sigma * sigma) - xs.len() as f64 * ln_sigma)
}

/// The range of `ln σ` (noise between 1e-4 and 0.5 of the value range).
const LN_SIGMA: (f64, f64) = (-9.210_340_371_976_182, -std::f64::consts::LN_2);

/// One model's posterior samples, (final value, σ) each, and their mean log-likelihood.
type Fit = (Vec<(f64, f64)>, f64);

/// One model's posterior samples: (final value, σ) per sample, and the mean log-likelihood.
fn sample_model(
    model: CurveModel,
    xs: &[f64],
    ys: &[f64],
    x_end: f64,
    config: &LearningCurveConfig,
    rng: &mut ChaCha8Rng,
) -> Option<Fit> {
    let bounds = model.bounds();
    let dim = bounds.len() + 1;
    let w = config.walkers;
    // Start: the best of many prior draws, each with σ at its root mean square residual.
    let mut candidates: Vec<(f64, Vec<f64>)> = Vec::new();
    for _ in 0..40 * w {
        let mut p: Vec<f64> = bounds
            .iter()
            .map(|&(lo, hi)| rng.random_range(lo..hi))
            .collect();
        let theta = &p[..];
        let rms = (xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| (y - model.eval(theta, x)).powi(2))
            .sum::<f64>()
            / xs.len() as f64)
            .sqrt();
        let ln_sigma = rms.max(1e-4).ln().clamp(LN_SIGMA.0, LN_SIGMA.1);
        p.push(ln_sigma);
        if let Some(ll) = log_likelihood(model, &p, xs, ys, x_end) {
            candidates.push((ll, p));
        }
    }
    // Stretch moves stay in the affine span of the starting walkers: at least `dim + 1`
    // distinct starts, or the model is left out.
    if candidates.len() <= dim {
        return None;
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    candidates.truncate(w);
    let distinct = candidates.len();
    let mut walkers = candidates;
    // Too few valid draws for every walker: the rest are jittered copies of the best ones.
    let mut i = 0;
    while walkers.len() < w {
        let mut p = walkers[i % distinct].1.clone();
        for (v, &(lo, hi)) in p.iter_mut().zip(bounds) {
            *v = (*v + 1e-3 * (hi - lo) * (rng.random::<f64>() - 0.5)).clamp(lo, hi);
        }
        if let Some(ll) = log_likelihood(model, &p, xs, ys, x_end) {
            walkers.push((ll, p));
        } else if i > 100 * w {
            // The valid region is too thin to jitter into: copies (still inside the span).
            walkers.push(walkers[i % distinct].clone());
        }
        i += 1;
    }
    // Goodman–Weare stretch moves (a = 2), one walker at a time.
    let a: f64 = 2.0;
    let mut kept = Vec::with_capacity(w * config.samples);
    let mut ll_sum = 0.0;
    let mut proposal = vec![0.0; dim];
    for step in 0..config.burn_in + config.samples {
        for k in 0..w {
            let mut j = rng.random_range(0..w - 1);
            if j >= k {
                j += 1;
            }
            let u: f64 = rng.random();
            let z = ((a - 1.0) * u + 1.0).powi(2) / a;
            for (d, v) in proposal.iter_mut().enumerate() {
                *v = walkers[j].1[d] + z * (walkers[k].1[d] - walkers[j].1[d]);
            }
            if let Some(ll) = log_likelihood(model, &proposal, xs, ys, x_end) {
                let log_accept = (dim as f64 - 1.0) * z.ln() + ll - walkers[k].0;
                let r: f64 = rng.random();
                if r.ln() < log_accept {
                    walkers[k].0 = ll;
                    walkers[k].1.copy_from_slice(&proposal);
                }
            }
        }
        if step >= config.burn_in {
            for (ll, p) in &walkers {
                let theta = &p[..bounds.len()];
                kept.push((model.eval(theta, x_end), p[bounds.len()].exp()));
                ll_sum += ll;
            }
        }
    }
    let mean_ll = ll_sum / kept.len() as f64;
    Some((kept, mean_ll))
}

/// The predictive distribution of `curve`'s value at `config.final_step`, from its
/// `(step, value)` points (steps counted from 0, increasing); `None` if `config` is invalid
/// ([`LearningCurveConfig::check`]), fewer than two points are finite, a value lies outside
/// `[lower, upper]`, or no model fits them within the prior (a curve falling steeply).
/// `seed` picks the sampler's stream.
pub fn forecast(
    curve: &[(usize, f64)],
    config: &LearningCurveConfig,
    seed: u64,
) -> Option<CurveForecast> {
    if config.check().is_err() {
        return None;
    }
    let span = config.upper - config.lower;
    let (xs, ys): (Vec<f64>, Vec<f64>) = curve
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|&(s, v)| (s as f64 + 1.0, (v - config.lower) / span))
        .unzip();
    if xs.len() < 2 || span.is_nan() || span <= 0.0 || ys.iter().any(|y| !(0.0..=1.0).contains(y)) {
        return None;
    }
    let x_end = config.final_step as f64 + 1.0;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fits: Vec<(CurveModel, Option<Fit>)> = config
        .models
        .iter()
        .map(|&m| (m, sample_model(m, &xs, &ys, x_end, config, &mut rng)))
        .collect();
    let best_ll = fits
        .iter()
        .filter_map(|(_, f)| f.as_ref().map(|f| f.1))
        .fold(f64::NEG_INFINITY, f64::max);
    if !best_ll.is_finite() {
        return None;
    }
    let raw: Vec<f64> = fits
        .iter()
        .map(|(_, f)| f.as_ref().map_or(0.0, |f| (f.1 - best_ll).exp()))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut components = Vec::new();
    let mut weights = Vec::new();
    for ((model, fit), r) in fits.into_iter().zip(raw) {
        let weight = r / total;
        weights.push((model, weight));
        if let Some((samples, _)) = fit {
            let each = weight / samples.len() as f64;
            components.extend(samples.into_iter().map(|(value, sigma)| Component {
                value,
                sigma,
                weight: each,
            }));
        }
    }
    Some(CurveForecast {
        components,
        weights,
        lower: config.lower,
        upper: config.upper,
    })
}

/// Mixes `trial` and `step` into `seed` (SplitMix64 steps), so that each forecast has a
/// stream of its own.
fn mix(seed: u64, trial: TrialId, step: usize) -> u64 {
    let mut z = seed;
    for v in [trial, step as u64] {
        z = z.wrapping_add(v).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// The learning-curve extrapolation pruner (Domhan et al. 2015): after each step, a trial's
/// curve so far is extrapolated to `final_step` by [`forecast`], and the trial stops when the
/// probability that its final value beats the best final value of the completed trials is
/// below `threshold` (see [`Pruner::finish`] for which values count). A value of NaN (a
/// diverged loss) stops the trial at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearningCurvePruner {
    config: LearningCurveConfig,
    /// Running trials: their values so far, as (step, value).
    running: BTreeMap<TrialId, Vec<(usize, f64)>>,
    /// The best final value of a completed trial.
    best: Option<f64>,
    completed: usize,
}

impl LearningCurvePruner {
    /// Checks `config` ([`LearningCurveConfig::check`]).
    pub fn new(config: LearningCurveConfig) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            running: BTreeMap::new(),
            best: None,
            completed: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LearningCurveConfig {
        &self.config
    }

    /// The best final value of the completed trials, if any completed.
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    /// The number of completed trials.
    pub fn completed(&self) -> usize {
        self.completed
    }

    /// The forecast of running trial `trial` from its values so far (the one the last
    /// decision used), or `None` if it is unknown or no model fits.
    pub fn forecast(&self, trial: TrialId) -> Option<CurveForecast> {
        let values = self.running.get(&trial)?;
        let step = values.last()?.0;
        forecast(values, &self.config, mix(self.config.seed, trial, step))
    }
}

impl Pruner for LearningCurvePruner {
    fn should_prune(&mut self, trial: TrialId, step: usize, value: f64) -> bool {
        let values = self.running.entry(trial).or_default();
        values.push((step, value));
        if value.is_nan() {
            return true;
        }
        let Some(best) = self.best else {
            return false;
        };
        if self.completed < self.config.min_completed
            || values.len() < self.config.min_steps
            || step >= self.config.final_step
        {
            return false;
        }
        match forecast(values, &self.config, mix(self.config.seed, trial, step)) {
            Some(f) => f.probability_above(best) < self.config.threshold,
            None => false,
        }
    }

    /// A complete trial's value at `final_step` becomes a candidate for the best: the value
    /// it reported at that step, else the `valid_accuracy` curve of its metrics at that step
    /// (a training estimator does not report its last epoch: nothing is left to stop).
    /// Trials that ended before `final_step` (a low Hyperband rung), pruned and failed
    /// trials, and values outside `[lower, upper]` are not counted.
    fn finish(&mut self, trial: TrialId, outcome: &Outcome) {
        let values = self.running.remove(&trial).unwrap_or_default();
        let Outcome::Complete(metrics) = outcome else {
            return;
        };
        let step = self.config.final_step;
        let reported = values.iter().find(|&&(s, _)| s == step).map(|&(_, v)| v);
        let recorded = || {
            metrics
                .curves
                .get("valid_accuracy")
                .and_then(|c| c.get(step).copied())
        };
        let Some(last) = reported.or_else(recorded) else {
            return;
        };
        if last.is_finite() && (self.config.lower..=self.config.upper).contains(&last) {
            self.completed += 1;
            self.best = Some(self.best.map_or(last, |b| b.max(last)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_estimate::Metrics;

    fn pow_curve(c: f64, a: f64, alpha: f64, n: usize) -> Vec<f64> {
        (1..=n).map(|x| c - a * (x as f64).powf(-alpha)).collect()
    }

    fn points(values: &[f64]) -> Vec<(usize, f64)> {
        values.iter().copied().enumerate().collect()
    }

    #[test]
    fn forecasts_a_saturating_curve() {
        let config = LearningCurveConfig::new(29, 100.0);
        let curve = pow_curve(85.0, 50.0, 0.8, 30);
        let f = forecast(&points(&curve[..8]), &config, 1).unwrap();
        let truth = curve[29];
        assert!(
            (f.mean() - truth).abs() < 4.0,
            "mean {} against {truth}",
            f.mean()
        );
        assert!(f.probability_above(truth - 10.0) > 0.9);
        assert!(f.probability_above(truth + 10.0) < 0.1);
        let total: f64 = f.model_weights().iter().map(|w| w.1).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn is_deterministic_and_independent_of_other_trials() {
        let config = LearningCurveConfig::new(19, 1.0);
        let curve = points(&pow_curve(0.7, 0.4, 1.0, 5));
        let a = forecast(&curve, &config, 7).unwrap();
        let b = forecast(&curve, &config, 7).unwrap();
        assert_eq!(a.mean(), b.mean());
        let mut p = LearningCurvePruner::new(config.clone()).unwrap();
        let mut q = LearningCurvePruner::new(config).unwrap();
        for (s, v) in pow_curve(0.9, 0.4, 1.0, 20).into_iter().enumerate() {
            p.should_prune(0, s, v);
            q.should_prune(0, s, v);
        }
        p.finish(0, &Outcome::Complete(Metrics::new(0.9)));
        q.finish(0, &Outcome::Complete(Metrics::new(0.9)));
        // q sees another trial first; trial 5's decisions and forecast do not change.
        q.should_prune(9, 0, 0.2);
        for (s, v) in pow_curve(0.8, 0.4, 1.0, 4).into_iter().enumerate() {
            assert_eq!(p.should_prune(5, s, v), q.should_prune(5, s, v));
        }
        assert_eq!(p.forecast(5).unwrap().mean(), q.forecast(5).unwrap().mean());
    }

    #[test]
    fn stops_bad_curves_early_and_keeps_good_ones() {
        let mut p = LearningCurvePruner::new(LearningCurveConfig::new(19, 100.0)).unwrap();
        let best = pow_curve(90.0, 40.0, 1.0, 20);
        assert_eq!(p.replay(0, &best), None, "nothing to compare with yet");
        p.finish(0, &Outcome::Complete(Metrics::new(best[19])));
        // Worse by 25 points: stopped at the first prediction (3 steps).
        let bad = pow_curve(65.0, 40.0, 1.0, 20);
        let stopped = p.replay(1, &bad);
        assert!(matches!(stopped, Some(s) if s <= 4), "{stopped:?}");
        p.finish(1, &Outcome::Pruned(Metrics::new(bad[2])));
        // Better than the best: never stopped.
        let better = pow_curve(93.0, 40.0, 1.0, 20);
        assert_eq!(p.replay(2, &better), None);
        p.finish(2, &Outcome::Complete(Metrics::new(better[19])));
        assert_eq!(p.best(), Some(better[19]));
        assert_eq!(p.completed(), 2);
        // A slow starter that overtakes: below the best for its first steps, steeper.
        let slow = pow_curve(99.0, 80.0, 1.0, 20);
        assert!(slow[19] > better[19]);
        assert!(slow[1] < better[1] - 10.0);
        assert_eq!(p.replay(3, &slow), None, "a steep curve is still going up");
    }

    #[test]
    fn the_best_is_a_value_at_the_final_step() {
        let mut p = LearningCurvePruner::new(LearningCurveConfig::new(9, 100.0)).unwrap();
        let curve = pow_curve(80.0, 30.0, 1.0, 10);
        // A training estimator reports every epoch but the last; the metrics hold it.
        for (s, &v) in curve[..9].iter().enumerate() {
            p.should_prune(0, s, v);
        }
        let metrics = Metrics::new(curve[9]).with_curve("valid_accuracy", curve.clone());
        p.finish(0, &Outcome::Complete(metrics));
        assert_eq!(p.best(), Some(curve[9]));
        // A trial completed at a lower budget (a Hyperband rung) is not a final value.
        let short = pow_curve(95.0, 10.0, 1.0, 3);
        p.replay(1, &short);
        p.finish(
            1,
            &Outcome::Complete(Metrics::new(short[2]).with_curve("valid_accuracy", short)),
        );
        // Nor is a value outside [lower, upper] (percent given to a pruner of fractions).
        let mut bad = pow_curve(80.0, 30.0, 1.0, 10);
        bad[9] = 150.0;
        p.replay(2, &bad);
        p.finish(2, &Outcome::Complete(Metrics::new(150.0)));
        assert_eq!((p.best(), p.completed()), (Some(curve[9]), 1));
        // An invalid configuration (as a deserialized one could be) forecasts nothing.
        let broken = LearningCurveConfig {
            walkers: 1,
            ..LearningCurveConfig::new(9, 100.0)
        };
        assert!(forecast(&points(&curve[..5]), &broken, 0).is_none());
    }

    #[test]
    fn nan_stops_and_bad_configs_are_refused() {
        let mut p = LearningCurvePruner::new(LearningCurveConfig::new(9, 1.0)).unwrap();
        assert!(p.should_prune(0, 0, f64::NAN));
        for (field, config) in [
            (
                "upper",
                LearningCurveConfig {
                    upper: 0.0,
                    ..LearningCurveConfig::new(9, 1.0)
                },
            ),
            (
                "threshold",
                LearningCurveConfig {
                    threshold: 1.5,
                    ..LearningCurveConfig::new(9, 1.0)
                },
            ),
            ("min_steps", LearningCurveConfig::new(1, 1.0)),
            (
                "walkers",
                LearningCurveConfig {
                    walkers: 11,
                    ..LearningCurveConfig::new(9, 1.0)
                },
            ),
            (
                "models",
                LearningCurveConfig {
                    models: vec![],
                    ..LearningCurveConfig::new(9, 1.0)
                },
            ),
        ] {
            match LearningCurvePruner::new(config) {
                Err(StrategyError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn values_outside_the_range_are_never_stopped_on() {
        let mut p = LearningCurvePruner::new(LearningCurveConfig::new(19, 1.0)).unwrap();
        p.replay(0, &pow_curve(0.9, 0.4, 1.0, 20));
        p.finish(0, &Outcome::Complete(Metrics::new(0.9)));
        // Percent given to a pruner configured for fractions: no model fits, no stop.
        assert_eq!(p.replay(1, &pow_curve(60.0, 30.0, 1.0, 20)), None);
    }
}
