//! Choosing which of an estimator's metrics a search optimizes.
//!
//! Estimators report one objective (the train-from-scratch estimator: validation accuracy) and
//! further named values. [`ObjectiveFrom`] makes another of those values the objective, to be
//! maximized or minimized, for any estimator. The case it was made for: the final-epoch
//! training loss of a short training ranks architectures better than their validation
//! accuracy (Ru et al., "Speedy Performance Estimation for Neural Architecture Search",
//! NeurIPS 2021: SoTL-E); on the quickstart's 3-epoch Fashion-MNIST proxy it put a cell of
//! the NAS-Bench-201 table's top 1 % first in 3 of 5 searches' journals where validation
//! accuracy put them 12th to 35th (`docs/benchmarks.md`).
//!
//! A metric the inner estimator does not report fails each trial with
//! [`EstimateError::InvalidConfig`] naming the metrics it does report; check the name on one
//! architecture before a long search.
//!
//! ```
//! use nas_estimate::objective::ObjectiveFrom;
//! use nas_estimate::{Budget, Estimator, Metrics};
//!
//! let inner = |_: &u32, _: &Budget| {
//!     let mut m = Metrics::new(81.5);
//!     m.values.insert("train_loss".into(), 0.42);
//!     Ok(m)
//! };
//! let mut by_loss = ObjectiveFrom::minimize(inner, "train_loss");
//! let m = by_loss.estimate(&7, &Budget::full())?;
//! assert_eq!(m.objective, -0.42);
//! assert_eq!(m.values["inner_objective"], 81.5);
//! # Ok::<(), nas_estimate::EstimateError>(())
//! ```

use crate::{Budget, Estimate, EstimateError, Estimator, Metrics};

/// An estimator whose objective is one of `inner`'s values: the value itself
/// ([`ObjectiveFrom::maximize`]) or its negation ([`ObjectiveFrom::minimize`], since searches
/// maximize). The inner objective is kept in the values as `inner_objective`.
#[derive(Debug, Clone)]
pub struct ObjectiveFrom<E> {
    inner: E,
    metric: String,
    sign: f64,
}

impl<E> ObjectiveFrom<E> {
    /// The objective is `inner`'s value `metric`, larger is better.
    pub fn maximize(inner: E, metric: impl Into<String>) -> Self {
        Self {
            inner,
            metric: metric.into(),
            sign: 1.0,
        }
    }

    /// The objective is minus `inner`'s value `metric`: smaller is better (a loss).
    pub fn minimize(inner: E, metric: impl Into<String>) -> Self {
        Self {
            inner,
            metric: metric.into(),
            sign: -1.0,
        }
    }

    /// The metric that is the objective.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// True when the metric is minimized (the objective is its negation).
    pub fn minimizes(&self) -> bool {
        self.sign < 0.0
    }

    /// The wrapped estimator.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped estimator, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// The wrapped estimator, unwrapped.
    pub fn into_inner(self) -> E {
        self.inner
    }

    fn convert(&self, mut m: Metrics) -> Result<Metrics, EstimateError> {
        let Some(&value) = m.values.get(&self.metric) else {
            let known: Vec<&str> = m.values.keys().map(String::as_str).collect();
            return Err(EstimateError::InvalidConfig(format!(
                "the objective is the metric `{}`, which the estimator did not report; it \
                 reports: {}",
                self.metric,
                if known.is_empty() {
                    "no named values".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !value.is_finite() {
            return Err(EstimateError::Failed(format!(
                "the objective's metric `{}` is {value}",
                self.metric
            )));
        }
        m.values.insert("inner_objective".into(), m.objective);
        m.objective = self.sign * value;
        Ok(m)
    }
}

impl<A, E: Estimator<A>> Estimator<A> for ObjectiveFrom<E> {
    fn estimate(&mut self, arch: &A, budget: &Budget) -> Result<Metrics, EstimateError> {
        let m = self.inner.estimate(arch, budget)?;
        self.convert(m)
    }

    /// Forwards to the inner estimator; the intermediate reports are the inner estimator's
    /// objective (a pruner compares those), the final metrics carry this one.
    fn estimate_reporting(
        &mut self,
        arch: &A,
        budget: &Budget,
        report: &mut dyn FnMut(usize, f64) -> bool,
    ) -> Result<Estimate, EstimateError> {
        let e = self.inner.estimate_reporting(arch, budget, report)?;
        Ok(Estimate {
            metrics: self.convert(e.metrics)?,
            stopped_early: e.stopped_early,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(
        values: &[(&str, f64)],
    ) -> impl FnMut(&u32, &Budget) -> Result<Metrics, EstimateError> {
        let values: Vec<(String, f64)> = values.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        move |a: &u32, _: &Budget| {
            let mut m = Metrics::new(f64::from(*a));
            for (k, v) in &values {
                m.values.insert(k.clone(), *v);
            }
            Ok(m)
        }
    }

    #[test]
    fn maximize_and_minimize_take_the_named_value() {
        let mut up = ObjectiveFrom::maximize(inner(&[("params", 3.0)]), "params");
        let m = up.estimate(&5, &Budget::full()).unwrap();
        assert_eq!((m.objective, m.values["inner_objective"]), (3.0, 5.0));
        assert!(!up.minimizes());
        let mut down = ObjectiveFrom::minimize(inner(&[("train_loss", 0.25)]), "train_loss");
        let m = down.estimate(&5, &Budget::full()).unwrap();
        assert_eq!(m.objective, -0.25);
        assert!(down.minimizes());
        assert_eq!(down.metric(), "train_loss");
    }

    #[test]
    fn a_missing_or_non_finite_metric_is_a_typed_error() {
        let mut e = ObjectiveFrom::minimize(inner(&[("valid_loss", 1.0)]), "train_loss");
        let err = e.estimate(&1, &Budget::full()).unwrap_err();
        assert!(matches!(err, EstimateError::InvalidConfig(_)));
        assert!(err.to_string().contains("valid_loss"), "{err}");
        let mut e = ObjectiveFrom::minimize(inner(&[("train_loss", f64::NAN)]), "train_loss");
        assert!(matches!(
            e.estimate(&1, &Budget::full()),
            Err(EstimateError::Failed(_))
        ));
    }

    #[test]
    fn reporting_forwards_and_converts() {
        let mut e = ObjectiveFrom::minimize(inner(&[("train_loss", 0.5)]), "train_loss");
        let mut seen = 0;
        let out = e
            .estimate_reporting(&2, &Budget::full(), &mut |_, _| {
                seen += 1;
                false
            })
            .unwrap();
        assert_eq!(out.metrics.objective, -0.5);
        assert!(!out.stopped_early);
        assert_eq!(seen, 0, "the closure estimator has no intermediate steps");
    }
}
