//! Sampling decisions from the controller, and their log-probabilities.

use nas_supernet::burn;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;

use super::model::transform;
use super::{Controller, Sample};
use crate::StrategyError;

impl<B: AutodiffBackend> Controller<B> {
    /// Samples one architecture's decisions, with their log-probability and entropy.
    pub fn sample(&mut self) -> Sample {
        let net = self.sampler.get_or_insert_with(|| self.model.valid());
        if let (Some(g), Some(attention)) = (&self.graph, &net.attention) {
            let w = super::graph::walk(
                &net.base,
                attention,
                &self.config,
                g,
                &self.decisions,
                &self.heads_of,
                super::graph::Choose::Sample(&mut self.rng),
            );
            let scalar = |t: Tensor<B::InnerBackend, 1>| {
                t.into_data().iter::<f64>().next().unwrap_or(f64::NAN)
            };
            return Sample {
                log_prob: scalar(w.log_prob),
                entropy: scalar(w.entropy),
                decisions: w.decisions.into_iter().next().unwrap_or_default(),
            };
        }
        let model = &net.base;
        let hidden = self.config.hidden_size;
        let mut decisions = vec![0; self.decisions.len()];
        let (mut log_prob, mut entropy) = (0.0, 0.0);
        let mut x = model.start.val().reshape([1, 1, hidden]);
        let mut state = None;
        for &(d, h) in &self.steps {
            let (_, s) = model.lstm.forward(x, state);
            let logits = transform(&self.config, model.heads[h].forward(s.hidden.clone()));
            let logits: Vec<f64> = logits.into_data().iter::<f64>().collect();
            let probs = softmax(&logits);
            let u: f64 = self.rng.random();
            let mut acc = 0.0;
            let mut c = probs.len() - 1;
            for (k, p) in probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    c = k;
                    break;
                }
            }
            decisions[d] = c;
            log_prob += probs[c].ln();
            entropy -= probs
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|p| p * p.ln())
                .sum::<f64>();
            let id = Tensor::<B::InnerBackend, 2, Int>::from_data(
                TensorData::new(vec![c as i64], [1, 1]),
                &self.device,
            );
            x = model.embeddings[h].forward(id);
            state = Some(s);
        }
        Sample {
            decisions,
            log_prob,
            entropy,
        }
    }

    /// The log-probability of each decision vector under the current controller.
    pub fn log_probs(&self, decisions: &[Vec<usize>]) -> Result<Vec<f64>, StrategyError> {
        for d in decisions {
            self.check_decisions(d)?;
        }
        if decisions.is_empty() {
            return Ok(Vec::new());
        }
        let (lp, _) = self.evaluate(&self.model.valid(), decisions);
        Ok(lp.into_data().iter::<f64>().collect())
    }
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}
