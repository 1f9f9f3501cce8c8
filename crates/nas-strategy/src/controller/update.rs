//! The controller's updates: REINFORCE and PPO steps, and the baseline.

use nas_supernet::burn;

use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};

use super::config::check_ppo;
use super::{Controller, Episode, UpdateStats};
use crate::StrategyError;

impl<B: AutodiffBackend> Controller<B> {
    /// One REINFORCE step (Williams 1992, as in Zoph & Le and ENAS) on a batch:
    /// minimizes `mean_i[−(R_i − b)·log π(d_i)] − β·mean_i[H_i]` with one Adam step, where `b`
    /// is the baseline before the batch; then folds the batch's rewards into the baseline.
    pub fn reinforce(&mut self, batch: &[Episode]) -> Result<UpdateStats, StrategyError> {
        let (baseline, advantages) = self.advantages(batch)?;
        let decisions: Vec<Vec<usize>> = batch.iter().map(|e| e.decisions.clone()).collect();
        let (loss, entropy) = self.step(&decisions, |lp| {
            let adv = vector::<B>(&advantages, &lp.device());
            lp.mul(adv).mean().neg()
        });
        Ok(self.finish(batch, baseline, loss, entropy))
    }

    /// One PPO update (Schulman et al. 2017) on a batch: `epochs` Adam steps on the clipped
    /// objective `mean_i[min(ρ_i·A_i, clip(ρ_i, 1 − ε, 1 + ε)·A_i)] + β·mean_i[H_i]`, where
    /// `ρ_i = π(d_i) / π_old(d_i)` from the episodes' log-probabilities and `A_i = R_i − b` with
    /// the baseline before the batch; then folds the rewards into the baseline.
    pub fn ppo(
        &mut self,
        batch: &[Episode],
        clip: f64,
        epochs: usize,
    ) -> Result<UpdateStats, StrategyError> {
        check_ppo(clip, epochs)?;
        let (baseline, advantages) = self.advantages(batch)?;
        if let Some(e) = batch.iter().find(|e| !e.log_prob.is_finite()) {
            return Err(StrategyError::Controller(format!(
                "PPO needs the log-probability of each episode when it was sampled; found {}",
                e.log_prob
            )));
        }
        let old: Vec<f64> = batch.iter().map(|e| e.log_prob).collect();
        let decisions: Vec<Vec<usize>> = batch.iter().map(|e| e.decisions.clone()).collect();
        let (mut loss, mut entropy) = (0.0, 0.0);
        for epoch in 0..epochs {
            let (l, h) = self.step(&decisions, |lp| {
                let device = lp.device();
                let adv = vector::<B>(&advantages, &device);
                let ratio = lp.sub(vector::<B>(&old, &device)).exp();
                let clipped = ratio.clone().clamp(1.0 - clip, 1.0 + clip);
                let surrogate = ratio.mul(adv.clone()).min_pair(clipped.mul(adv));
                surrogate.mean().neg()
            });
            loss = l;
            if epoch == 0 {
                entropy = h;
            }
        }
        Ok(self.finish(batch, baseline, loss, entropy))
    }

    /// Checks the batch and computes the advantages against the current baseline.
    fn advantages(&self, batch: &[Episode]) -> Result<(f64, Vec<f64>), StrategyError> {
        if batch.is_empty() {
            return Err(StrategyError::Controller(
                "an update needs at least one episode".into(),
            ));
        }
        for e in batch {
            self.check_decisions(&e.decisions)?;
            if !e.reward.is_finite() {
                return Err(StrategyError::Controller(format!(
                    "rewards must be finite, found {}",
                    e.reward
                )));
            }
        }
        let mean = batch.iter().map(|e| e.reward).sum::<f64>() / batch.len() as f64;
        let b = self.baseline.unwrap_or(mean);
        Ok((b, batch.iter().map(|e| e.reward - b).collect()))
    }

    /// Updates the baseline and the counters after a batch.
    fn finish(&mut self, batch: &[Episode], baseline: f64, loss: f64, entropy: f64) -> UpdateStats {
        let decay = self.config.baseline_decay;
        let mut b = baseline;
        for e in batch {
            b = decay * b + (1.0 - decay) * e.reward;
        }
        self.baseline = Some(b);
        self.updates += 1;
        self.sampler = None;
        UpdateStats {
            loss,
            mean_reward: batch.iter().map(|e| e.reward).sum::<f64>() / batch.len() as f64,
            baseline,
            entropy,
        }
    }

    /// One Adam step on `objective(log π) − β·mean(H)`; returns the loss and the mean
    /// entropy before the step.
    fn step(
        &mut self,
        decisions: &[Vec<usize>],
        objective: impl FnOnce(Tensor<B, 1>) -> Tensor<B, 1>,
    ) -> (f64, f64) {
        let (lp, h) = self.evaluate(&self.model, decisions);
        let mean_h = h.mean();
        let entropy: f64 = mean_h.clone().into_scalar().elem();
        let loss = objective(lp) - mean_h.mul_scalar(self.config.entropy_weight);
        let value: f64 = loss.clone().into_scalar().elem();
        if self.decisions.iter().all(|&n| n < 2) {
            // Nothing to learn: every decision has one choice.
            return (value, entropy);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optim
            .step(self.config.learning_rate, self.model.clone(), grads);
        (value, entropy)
    }
}

fn vector<B: Backend>(v: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}
