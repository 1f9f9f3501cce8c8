//! The controller's configuration: the network's size and initialization, the logits'
//! transformation, the optimizer, the baseline and the sharing of heads; and PPO's settings.

use serde::{Deserialize, Serialize};

use crate::StrategyError;

/// Which decisions share a softmax head (and the embedding of their choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadSharing {
    /// Decisions with the same number of choices share one head (ENAS shares one operation
    /// head across all nodes); the LSTM's state tells the positions apart.
    #[default]
    ByChoiceCount,
    /// Every decision has its own head (Zoph & Le: one softmax classifier per decision).
    PerDecision,
}

/// Configuration of a [`Controller`](super::Controller). The defaults are ENAS' (Pham et al.
/// 2018, Section 3 and their code): an LSTM of 64 units, parameters initialized uniformly in
/// `[-0.1, 0.1]`, logits divided by a temperature of 5 and squashed by `2.5·tanh`, Adam at a
/// learning rate of 3.5e-4, entropy weight 1e-4, baseline decay 0.99.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// Units of the LSTM, also the size of the decision embeddings (ENAS: 64; Zoph & Le: 35).
    pub hidden_size: usize,
    /// Which decisions share a head.
    pub heads: HeadSharing,
    /// Logits are divided by this temperature, when set (ENAS: 5).
    pub temperature: Option<f64>,
    /// Logits `l` become `c·tanh(l)` (after the temperature), when set: bounds the logits so
    /// the policy cannot collapse onto one choice (ENAS: 2.5).
    pub tanh_constant: Option<f64>,
    /// Parameters are initialized uniformly in `[-init_range, init_range]` (ENAS: 0.1; Zoph &
    /// Le: 0.08).
    pub init_range: f64,
    /// Adam's learning rate (ENAS: 3.5e-4; Zoph & Le: 6e-4). Adam's other settings are Burn's
    /// defaults (β₁ = 0.9, β₂ = 0.999, ε = 1e-5).
    pub learning_rate: f64,
    /// Weight β of the entropy bonus: the loss subtracts `β·H`, where `H` is the summed entropy
    /// of the decisions of an architecture (ENAS: 1e-4, with rewards in `[0, 1]`; scale it
    /// with the rewards). ENAS adds `β·H` to the reward instead; a separate term of the loss
    /// pushes towards higher entropy whatever the sign of the advantage.
    pub entropy_weight: f64,
    /// Decay of the exponential moving average of rewards used as the baseline: after each
    /// reward `R`, `b ← decay·b + (1 − decay)·R` (ENAS: 0.99). The baseline starts at the mean
    /// reward of the first update's batch.
    pub baseline_decay: f64,
    /// Gradients are rescaled to at most this global L2 norm (over all parameters together,
    /// as ENAS' `clip_by_global_norm`) before the Adam step, when set.
    pub grad_clip_norm: Option<f64>,
    /// Whether [`Controller::for_space`](super::Controller::for_space) (and the strategies and
    /// ENAS, which build their controller with it) makes a space's choices among earlier
    /// states (inputs, skip connections) by attention over the anchors of its
    /// [decision graph](nas_space::Sequential::decision_graph), as Zoph & Le and ENAS do; off,
    /// or for a space without a graph, every decision has a softmax head (default: on).
    #[serde(default = "yes")]
    pub attention: bool,
}

fn yes() -> bool {
    true
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            hidden_size: 64,
            heads: HeadSharing::ByChoiceCount,
            temperature: Some(5.0),
            tanh_constant: Some(2.5),
            init_range: 0.1,
            learning_rate: 3.5e-4,
            entropy_weight: 1e-4,
            baseline_decay: 0.99,
            grad_clip_norm: None,
            attention: true,
        }
    }
}

impl ControllerConfig {
    /// Checks every value; each invalid one is its own error.
    pub fn check(&self) -> Result<(), StrategyError> {
        let err = |field, reason: &str| {
            Err(StrategyError::InvalidConfig {
                strategy: "controller",
                field,
                reason: reason.into(),
            })
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.hidden_size == 0 {
            return err("hidden_size", "must be at least 1");
        }
        if self.temperature.is_some_and(|t| !positive(t)) {
            return err(
                "temperature",
                "must be a finite positive number (or None for no temperature)",
            );
        }
        if self.tanh_constant.is_some_and(|c| !positive(c)) {
            return err(
                "tanh_constant",
                "must be a finite positive number (or None for unbounded logits)",
            );
        }
        if !positive(self.init_range) {
            return err("init_range", "must be a finite positive number");
        }
        if !positive(self.learning_rate) {
            return err("learning_rate", "must be a finite positive number");
        }
        if !(self.entropy_weight.is_finite() && self.entropy_weight >= 0.0) {
            return err("entropy_weight", "must be a finite number ≥ 0");
        }
        if !(0.0..1.0).contains(&self.baseline_decay) {
            return err("baseline_decay", "must be in [0, 1)");
        }
        if self.grad_clip_norm.is_some_and(|c| !positive(c)) {
            return err(
                "grad_clip_norm",
                "must be a finite positive number (or None for no clipping)",
            );
        }
        Ok(())
    }
}

/// Checks PPO's clip range and epochs.
pub(crate) fn check_ppo(clip: f64, epochs: usize) -> Result<(), StrategyError> {
    let err = |field, reason: &str| {
        Err(StrategyError::InvalidConfig {
            strategy: "PPO",
            field,
            reason: reason.into(),
        })
    };
    if !(clip.is_finite() && clip > 0.0 && clip < 1.0) {
        return err("clip", "must be in (0, 1) (PPO's ε; 0.2 is usual)");
    }
    if epochs == 0 {
        return err("epochs", "must be at least 1");
    }
    Ok(())
}
