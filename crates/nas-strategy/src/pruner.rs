//! Pruners: stop unpromising evaluations early, from their intermediate values.
//!
//! A [`Pruner`] is asked after every step (epoch) of an evaluation whether to stop it. It
//! lives beside the estimator, not the strategy: the estimator reports each epoch's validation
//! accuracy and, when told to stop, ends the trial with the metrics so far, which the search
//! reports as [`Outcome::Pruned`]. [`MedianStopping`] is the median stopping rule,
//! [`StageStopping`] progressive early stopping by stage thresholds, and
//! [`crate::curve::LearningCurvePruner`] learning-curve extrapolation.
//!
//! # Plugging a pruner into a training estimator
//!
//! A training loop calls [`Pruner::should_prune`] at the end of each epoch with the trial's
//! id and the epoch's validation accuracy, and [`Pruner::finish`] when the trial ends:
//!
//! ```
//! use nas_estimate::Metrics;
//! use nas_strategy::pruner::{MedianStopping, MedianStoppingConfig, Pruner};
//! use nas_strategy::Outcome;
//!
//! let mut pruner = MedianStopping::new(MedianStoppingConfig::default())?;
//! // Inside an estimator: `train_one_epoch` stands for the real work.
//! let train_one_epoch = |trial: u64, epoch: usize| 50.0 + trial as f64 * (1.0 + epoch as f64);
//! for trial in (0..8).rev() {
//!     let mut curve = Vec::new();
//!     let mut outcome = None;
//!     for epoch in 0..10 {
//!         let accuracy = train_one_epoch(trial, epoch);
//!         curve.push(accuracy);
//!         if pruner.should_prune(trial, epoch, accuracy) {
//!             outcome = Some(Outcome::Pruned(Metrics::new(accuracy).with_curve("valid_accuracy", curve.clone())));
//!             break;
//!         }
//!     }
//!     let outcome = outcome.unwrap_or_else(|| Outcome::Complete(Metrics::new(*curve.last().unwrap())));
//!     pruner.finish(trial, &outcome);
//!     // ... and the search loop tells the strategy `outcome`.
//! }
//! // The five best trials ran first and completed; the worst ones were stopped early.
//! assert_eq!(pruner.completed(), 5);
//! # Ok::<(), nas_strategy::StrategyError>(())
//! ```
//!
//! In a search, [`crate::Search::pruner`] does this for you: every estimate reports its steps
//! through [`nas_estimate::Estimator::estimate_reporting`] (the train-from-scratch estimator
//! reports each epoch's validation accuracy and stops training when told), and a stopped trial
//! is told to the strategy as [`Outcome::Pruned`]. [`Pruner::replay`] applies a pruner to
//! finished learning curves (e.g. the `valid_accuracy` curve in
//! [`nas_estimate::Metrics::curves`]), which also measures what it would have saved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Outcome, StrategyError, TrialId};

/// Decides, from intermediate values, whether a running evaluation should stop.
///
/// Values are "higher is better" (accuracy), reported once per step in increasing step
/// order, steps counted from 0.
pub trait Pruner {
    /// Records `value` of trial `trial` at `step` and returns `true` if the trial should stop
    /// now.
    fn should_prune(&mut self, trial: TrialId, step: usize, value: f64) -> bool;

    /// Trial `trial` ended with `outcome`: a complete trial's values become part of the
    /// reference the next trials are compared with; pruned and failed trials' are dropped.
    fn finish(&mut self, trial: TrialId, outcome: &Outcome);

    /// Feeds a whole learning curve (value per step) and returns the step at which the trial
    /// would have been stopped, or `None` if it runs to the end. The trial is not finished:
    /// call [`Pruner::finish`] with its outcome afterwards.
    fn replay(&mut self, trial: TrialId, curve: &[f64]) -> Option<usize> {
        curve
            .iter()
            .enumerate()
            .find_map(|(step, &v)| self.should_prune(trial, step, v).then_some(step))
    }
}

/// Configuration of [`MedianStopping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedianStoppingConfig {
    /// No trial is stopped before this many trials have completed (the reference median needs
    /// them).
    pub min_completed: usize,
    /// No trial is stopped before this step (the first epochs are noisy).
    pub warmup_steps: usize,
}

impl Default for MedianStoppingConfig {
    /// 5 completed trials, no warm-up (Optuna's `MedianPruner` defaults).
    fn default() -> Self {
        Self {
            min_completed: 5,
            warmup_steps: 0,
        }
    }
}

/// The median stopping rule (Golovin et al., "Google Vizier: A Service for Black-Box
/// Optimization", KDD 2017): a running trial is stopped at step `t` when its best value so far
/// is strictly below the median, over the completed trials that reached step `t`, of their
/// running averages up to `t` (the mean of their values at steps `0..=t`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MedianStopping {
    config: MedianStoppingConfig,
    /// Running trials: their values so far, as (step, value).
    running: BTreeMap<TrialId, Vec<(usize, f64)>>,
    /// Completed trials: the running mean at each reported step, as (step, mean up to step).
    completed: Vec<Vec<(usize, f64)>>,
}

impl MedianStopping {
    /// Checks `config`: `min_completed ≥ 1`.
    pub fn new(config: MedianStoppingConfig) -> Result<Self, StrategyError> {
        if config.min_completed == 0 {
            return Err(StrategyError::InvalidConfig {
                strategy: "median stopping",
                field: "min_completed",
                reason: "must be at least 1 (the median of no trial is undefined)".into(),
            });
        }
        Ok(Self {
            config,
            running: BTreeMap::new(),
            completed: Vec::new(),
        })
    }

    /// The number of completed trials in the reference.
    pub fn completed(&self) -> usize {
        self.completed.len()
    }

    /// The median of the running averages at `step` of the completed trials that reached it,
    /// if at least `min_completed` did.
    pub fn median_at(&self, step: usize) -> Option<f64> {
        let mut avgs: Vec<f64> = self
            .completed
            .iter()
            .filter(|c| c.last().is_some_and(|&(s, _)| s >= step))
            .filter_map(|c| {
                // The last reported step ≤ `step`.
                let i = c.partition_point(|&(s, _)| s <= step);
                (i > 0).then(|| c[i - 1].1)
            })
            .collect();
        if avgs.len() < self.config.min_completed {
            return None;
        }
        avgs.sort_by(f64::total_cmp);
        let n = avgs.len();
        Some(if n % 2 == 1 {
            avgs[n / 2]
        } else {
            0.5 * (avgs[n / 2 - 1] + avgs[n / 2])
        })
    }
}

impl Pruner for MedianStopping {
    fn should_prune(&mut self, trial: TrialId, step: usize, value: f64) -> bool {
        let values = self.running.entry(trial).or_default();
        values.push((step, value));
        if step < self.config.warmup_steps {
            return false;
        }
        let best = values
            .iter()
            .map(|&(_, v)| v)
            .fold(f64::NEG_INFINITY, f64::max);
        match self.median_at(step) {
            Some(m) => best < m || value.is_nan(),
            None => false,
        }
    }

    fn finish(&mut self, trial: TrialId, outcome: &Outcome) {
        let values = self.running.remove(&trial).unwrap_or_default();
        if matches!(outcome, Outcome::Complete(_)) && !values.is_empty() {
            let mut sum = 0.0;
            let means = values
                .iter()
                .enumerate()
                .map(|(i, &(s, v))| {
                    sum += v;
                    (s, sum / (i + 1) as f64)
                })
                .collect();
            self.completed.push(means);
        }
    }
}

/// The threshold of a [`Stage`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// A fixed value: a trial below it stops (Nekrasov et al.'s reward threshold).
    Value(f64),
    /// The `q`-quantile (in (0, 1)) of the values every earlier trial had at the stage: a
    /// trial below it stops (0.5: below the median; 0.25: in the worst quarter).
    Quantile(f64),
}

/// A stage of [`StageStopping`]: at `step`, a trial below `threshold` stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// The step at which the trial is judged (the first step reported at or after it).
    pub step: usize,
    /// What it must reach.
    pub threshold: Threshold,
}

impl Stage {
    /// A stage at `step` with a fixed threshold.
    pub fn value(step: usize, value: f64) -> Self {
        Self {
            step,
            threshold: Threshold::Value(value),
        }
    }

    /// A stage at `step` whose threshold is the `q`-quantile of earlier trials there.
    pub fn quantile(step: usize, q: f64) -> Self {
        Self {
            step,
            threshold: Threshold::Quantile(q),
        }
    }
}

/// Configuration of [`StageStopping`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStoppingConfig {
    /// The stages, by increasing step.
    pub stages: Vec<Stage>,
    /// A quantile threshold applies once this many trials have values at its stage.
    pub min_trials: usize,
}

impl StageStoppingConfig {
    /// Checks the stages: steps strictly increasing, values finite, quantiles in (0, 1),
    /// `min_trials ≥ 1`.
    pub fn check(&self) -> Result<(), StrategyError> {
        let bad = |field: &'static str, reason: String| {
            Err(StrategyError::InvalidConfig {
                strategy: "stage stopping",
                field,
                reason,
            })
        };
        if self.stages.is_empty() {
            return bad("stages", "must hold at least one stage".into());
        }
        if self.min_trials == 0 {
            return bad(
                "min_trials",
                "must be at least 1 (the quantile of no trial is undefined)".into(),
            );
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 && stage.step <= self.stages[i - 1].step {
                return bad(
                    "stages",
                    format!(
                        "must have strictly increasing steps (stage {i} is at step {} after step {})",
                        stage.step,
                        self.stages[i - 1].step
                    ),
                );
            }
            match stage.threshold {
                Threshold::Value(v) if !v.is_finite() => {
                    return bad("stages", format!("stage {i}: the value {v} is not finite"));
                }
                Threshold::Quantile(q) if !(q > 0.0 && q < 1.0) => {
                    return bad(
                        "stages",
                        format!("stage {i}: the quantile {q} is not in (0, 1)"),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Progressive early stopping (Nekrasov et al., "Fast Neural Architecture Search of Compact
/// Semantic Segmentation Models via Auxiliary Cells", CVPR 2019): training goes on in stages,
/// and at the end of each stage a trial whose value is below the stage's threshold stops.
/// Thresholds are fixed values (the paper's reward thresholds) or quantiles of the values the
/// earlier trials had at that stage (so a stage keeps a fixed share of trials whatever the
/// scale of the values). A NaN value (a diverged loss) stops the trial at once.
///
/// Every trial's finite value at a stage joins that stage's reference when it is reported,
/// whether the trial later completes or is stopped (it was judged there); the search loop's
/// resume feeds the recorded curves of complete and stopped trials back in the same order.
///
/// ```
/// use nas_strategy::pruner::{Pruner, Stage, StageStopping, StageStoppingConfig};
///
/// let mut pruner = StageStopping::new(StageStoppingConfig {
///     stages: vec![Stage::value(2, 50.0), Stage::quantile(5, 0.5)],
///     min_trials: 1,
/// })?;
/// // Below 50 at step 2: stopped there.
/// assert_eq!(pruner.replay(0, &[20.0, 30.0, 40.0, 60.0, 70.0, 80.0]), Some(2));
/// # Ok::<(), nas_strategy::StrategyError>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageStopping {
    config: StageStoppingConfig,
    /// Running trials: the index of their next stage.
    running: BTreeMap<TrialId, usize>,
    /// Per stage: the values trials had there.
    seen: Vec<Vec<f64>>,
}

impl StageStopping {
    /// Checks `config` ([`StageStoppingConfig::check`]).
    pub fn new(config: StageStoppingConfig) -> Result<Self, StrategyError> {
        config.check()?;
        let seen = vec![Vec::new(); config.stages.len()];
        Ok(Self {
            config,
            running: BTreeMap::new(),
            seen,
        })
    }

    /// The threshold of stage `i` now, if it has one (a quantile needs `min_trials` values).
    pub fn threshold(&self, i: usize) -> Option<f64> {
        let stage = self.config.stages.get(i)?;
        match stage.threshold {
            Threshold::Value(v) => Some(v),
            Threshold::Quantile(q) => {
                let seen = &self.seen[i];
                if seen.len() < self.config.min_trials {
                    return None;
                }
                let mut sorted = seen.clone();
                sorted.sort_by(f64::total_cmp);
                // Linear interpolation between order statistics (NumPy's default).
                let pos = q * (sorted.len() - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                Some(sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo]))
            }
        }
    }
}

impl Pruner for StageStopping {
    fn should_prune(&mut self, trial: TrialId, step: usize, value: f64) -> bool {
        if value.is_nan() {
            return true;
        }
        let mut next = *self.running.get(&trial).unwrap_or(&0);
        let mut stop = false;
        while let Some(stage) = self.config.stages.get(next) {
            if step < stage.step {
                break;
            }
            if let Some(t) = self.threshold(next) {
                stop |= value < t;
            }
            if value.is_finite() {
                self.seen[next].push(value);
            }
            next += 1;
            if stop {
                break;
            }
        }
        self.running.insert(trial, next);
        stop
    }

    fn finish(&mut self, trial: TrialId, _outcome: &Outcome) {
        self.running.remove(&trial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_estimate::Metrics;

    #[test]
    fn stage_thresholds_stop_by_value_and_by_quantile() {
        let mut p = StageStopping::new(StageStoppingConfig {
            stages: vec![Stage::value(1, 10.0), Stage::quantile(3, 0.5)],
            min_trials: 3,
        })
        .unwrap();
        // Below the fixed value at step 1.
        assert_eq!(p.replay(0, &[5.0, 9.0, 30.0, 40.0]), Some(1));
        // The quantile needs 3 earlier values: the first three trials pass step 3.
        for (id, last) in [(1, 20.0), (2, 40.0), (3, 60.0)] {
            assert_eq!(p.replay(id, &[5.0, 11.0, 15.0, last]), None);
            p.finish(id, &Outcome::Complete(Metrics::new(last)));
        }
        assert_eq!(p.threshold(1), Some(40.0));
        // Step 3 below the median of 20, 40, 60: stopped; at it: kept.
        assert_eq!(p.replay(4, &[5.0, 11.0, 15.0, 39.0]), Some(3));
        assert_eq!(p.replay(5, &[5.0, 11.0, 15.0, 45.0]), None);
        // A trial that skips a stage's step is judged at its next report.
        let mut q = StageStopping::new(StageStoppingConfig {
            stages: vec![Stage::value(2, 10.0)],
            min_trials: 1,
        })
        .unwrap();
        assert!(!q.should_prune(0, 0, 1.0));
        assert!(q.should_prune(0, 4, 1.0));
        assert!(q.should_prune(1, 0, f64::NAN));
        for stages in [
            vec![],
            vec![Stage::value(2, 1.0), Stage::value(2, 2.0)],
            vec![Stage::quantile(1, 1.0)],
            vec![Stage::value(1, f64::INFINITY)],
        ] {
            assert!(
                StageStopping::new(StageStoppingConfig {
                    stages,
                    min_trials: 1
                })
                .is_err()
            );
        }
    }

    #[test]
    fn prunes_below_the_median_of_running_averages() {
        let mut p = MedianStopping::new(MedianStoppingConfig {
            min_completed: 3,
            warmup_steps: 1,
        })
        .unwrap();
        // Three complete curves; running averages at step 2: 2, 4, 6 → median 4.
        for (id, curve) in [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [5.0, 6.0, 7.0]]
            .iter()
            .enumerate()
        {
            assert_eq!(p.replay(id as u64, curve), None);
            p.finish(id as u64, &Outcome::Complete(Metrics::new(curve[2])));
        }
        assert_eq!(p.median_at(2), Some(4.0));
        assert_eq!(p.median_at(0), Some(3.0));
        // Warm-up: step 0 is never pruned, even far below the median.
        assert!(!p.should_prune(10, 0, 0.0));
        // Best so far 3.9 < 4 at step 2, but 3.5 ≥ median 3.5 at step 1.
        assert!(!p.should_prune(10, 1, 3.5));
        assert!(p.should_prune(10, 2, 3.9));
        // A pruned trial does not join the reference.
        p.finish(10, &Outcome::Pruned(Metrics::new(3.9)));
        assert_eq!(p.completed(), 3);
        // Steps beyond every completed curve have no reference: never pruned there.
        assert_eq!(p.median_at(3), None);
        assert!(
            MedianStopping::new(MedianStoppingConfig {
                min_completed: 0,
                warmup_steps: 0
            })
            .is_err()
        );
    }
}
