//! Performance estimation for neural architecture search.
//!
//! An [`Estimator`] turns an architecture and a [`Budget`] into [`Metrics`]. This crate holds
//! the trait, the tabular benchmark estimator ([`tabular::Nb201Table`]), training from
//! scratch ([`train::TrainEstimator`]), weight sharing with a trained supernet
//! ([`weight_sharing::WeightSharingEstimator`]) and rank correlation between estimators
//! ([`rank::kendall_tau`]), zero-cost proxies that score an untrained network
//! ([`zero_cost::ZeroCostEstimator`]), and the cached features of a frozen backbone on which a
//! head is trained alone ([`features::cache_features`]).
//!
//! The two estimators that train networks need Burn and sit behind the default `train`
//! feature; `default-features = false` leaves the Burn-free part (the trait and its vocabulary,
//! the table, rank correlation), which builds in seconds.
#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod error;
#[cfg(feature = "train")]
pub mod features;
pub mod objective;
pub mod rank;
#[cfg(feature = "train")]
pub mod segment;
pub mod tabular;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "train")]
pub mod weight_sharing;
#[cfg(feature = "train")]
pub mod zero_cost;

pub use error::EstimateError;

/// How much to spend on one estimate, in the estimator's own unit of fidelity.
///
/// For training estimators the fidelity is epochs; a tabular benchmark with a single column
/// ignores it. `None` means the estimator's full budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The fidelity to spend (e.g. epochs), or `None` for the full budget.
    pub fidelity: Option<f64>,
}

impl Budget {
    /// The estimator's full budget.
    pub fn full() -> Self {
        Self { fidelity: None }
    }

    /// A budget of `fidelity` units (epochs for training estimators).
    pub fn fidelity(fidelity: f64) -> Self {
        Self {
            fidelity: Some(fidelity),
        }
    }
}

/// The result of an estimate.
///
/// `objective` is the number searches maximize (accuracy in percent, for the built-in
/// estimators); `values` holds everything else that was measured, by name (other datasets'
/// accuracy, parameters, latency, wall time...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The value to maximize.
    pub objective: f64,
    /// Further named measurements.
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    /// Named per-epoch curves (e.g. `valid_accuracy`), for learning-curve methods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub curves: BTreeMap<String, Vec<f64>>,
}

impl Metrics {
    /// Metrics with only an objective.
    pub fn new(objective: f64) -> Self {
        Self {
            objective,
            values: BTreeMap::new(),
            curves: BTreeMap::new(),
        }
    }

    /// Adds a named measurement.
    pub fn with(mut self, name: impl Into<String>, value: f64) -> Self {
        self.values.insert(name.into(), value);
        self
    }

    /// Adds a named curve.
    pub fn with_curve(mut self, name: impl Into<String>, values: Vec<f64>) -> Self {
        self.curves.insert(name.into(), values);
        self
    }

    /// A named measurement, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }
}

/// Estimates the performance of architectures of type `A`.
///
/// # Example: a cheap analytic estimator
///
/// ```
/// use nas_estimate::{Budget, EstimateError, Estimator, Metrics};
///
/// /// Scores a chain of kernel sizes by how close its receptive field is to 15.
/// struct ReceptiveField;
///
/// impl Estimator<Vec<u8>> for ReceptiveField {
///     fn estimate(&mut self, arch: &Vec<u8>, _budget: &Budget) -> Result<Metrics, EstimateError> {
///         let rf: f64 = 1.0 + arch.iter().map(|&k| f64::from(k) - 1.0).sum::<f64>();
///         Ok(Metrics::new(-(rf - 15.0).abs()).with("receptive_field", rf))
///     }
/// }
///
/// let m = ReceptiveField.estimate(&vec![3, 5, 7, 3], &Budget::full())?;
/// assert_eq!(m.get("receptive_field"), Some(15.0));
/// assert_eq!(m.objective, 0.0);
/// # Ok::<(), EstimateError>(())
/// ```
pub trait Estimator<A> {
    /// Estimates `arch` within `budget`.
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError>;

    /// Estimates `arch`, reporting the objective after every step (epoch) to `report`, which
    /// returns `true` to stop the estimate early (a pruner such as median stopping decides).
    /// An estimate stopped early returns its metrics so far with `stopped_early` set.
    ///
    /// The default has no intermediate steps: it calls [`Estimator::estimate`] and never stops
    /// early. Estimators that train step by step (the train-from-scratch estimator) override
    /// it.
    fn estimate_reporting(
        &mut self,
        arch: &A,
        budget: &Budget,
        report: &mut dyn FnMut(usize, f64) -> bool,
    ) -> Result<Estimate, EstimateError> {
        let _ = report;
        Ok(Estimate {
            metrics: self.estimate(arch, budget)?,
            stopped_early: false,
        })
    }
}

/// The result of [`Estimator::estimate_reporting`].
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The metrics (partial when stopped early).
    pub metrics: Metrics,
    /// True when `report` asked to stop before the budget was spent.
    pub stopped_early: bool,
}

impl<A, F> Estimator<A> for F
where
    F: FnMut(&A, &Budget) -> Result<Metrics, EstimateError>,
{
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError> {
        self(arch, budget)
    }
}
