//! Reinforcement-learning strategies: an LSTM [`Controller`] samples architectures of a
//! [`Sequential`] space and learns from their rewards, by REINFORCE ([`Reinforce`]; Zoph & Le,
//! ICLR 2017, and ENAS' controller) or by PPO ([`Ppo`]; Schulman et al. 2017, as NASNet's
//! search used it, Zoph et al., CVPR 2018).
//!
//! Both follow the same ask/tell protocol:
//!
//! - `ask` samples an architecture from the current controller. Repeats are possible, and
//!   frequent once the policy concentrates; each counts as a query, as in evolution. Wrapping
//!   the strategy in [`crate::Dedup`] evaluates each canonical form once (a repeat's stored
//!   outcome is told back at once, and the controller still learns from it), but a
//!   concentrated policy then needs many samples, each a controller update, to find a new
//!   architecture, and `Dedup` reports the space exhausted after its `max_skips` duplicates in
//!   a row (docs/benchmarks.md).
//! - `tell` turns the outcome into a reward: the objective of a complete trial, or of a pruned
//!   one (a partial, pessimistic value: the trial looked bad enough to stop). A failed trial,
//!   or one whose objective is not finite, is skipped by default (no reward, no update), or
//!   rewarded with [`failed_reward`](ReinforceConfig::failed_reward) when that is set.
//! - Rewards collect into a batch; when it holds `batch_size` episodes the controller is
//!   updated. With parallel workers, a trial may be sampled by an older controller than the
//!   one it updates: REINFORCE ignores that (as asynchronous NAS-RL did), PPO's ratio
//!   accounts for it since each episode keeps the log-probability it was sampled with.
//!
//! Rewards are the objectives as they are: with accuracies in percent the advantages are in
//! percent too. Adam is insensitive to the scale of the gradient, but the entropy weight is
//! relative to it.
//!
//! Cost on the CPU backend, NAS-Bench-201: sampling about 0.5 ms, an update about 3.5 ms for a
//! batch of 4 (PPO runs `epochs` of them), see docs/benchmarks.md.

use std::collections::BTreeMap;

use nas_space::{SearchSpace, Sequential};
use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::controller::{Controller, ControllerConfig, Episode, Sample, UpdateStats, check_ppo};
use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// Configuration of [`Reinforce`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReinforceConfig {
    /// The controller.
    pub controller: ControllerConfig,
    /// Episodes per update (ENAS: 1 architecture per controller step; Zoph & Le: m = 8 per
    /// replica).
    pub batch_size: usize,
    /// The reward of a failed trial; `None` (the default) skips failed trials.
    pub failed_reward: Option<f64>,
}

impl Default for ReinforceConfig {
    /// ENAS' controller ([`ControllerConfig::default`]), one episode per update, failed trials
    /// skipped.
    fn default() -> Self {
        Self {
            controller: ControllerConfig::default(),
            batch_size: 1,
            failed_reward: None,
        }
    }
}

impl ReinforceConfig {
    /// Settings for short searches of a few hundred queries on a small space such as
    /// NAS-Bench-201: no temperature (the logits keep ENAS' `2.5·tanh` bound), Adam at 0.01,
    /// baseline decay 0.9 (the NAS-Bench-201 paper's REINFORCE baseline momentum), entropy
    /// weight 0.01, batches of 4. ENAS' defaults learn too slowly to matter within 200
    /// queries (docs/benchmarks.md).
    pub fn short_search() -> Self {
        Self {
            controller: ControllerConfig {
                temperature: None,
                learning_rate: 0.01,
                baseline_decay: 0.9,
                entropy_weight: 0.01,
                ..ControllerConfig::default()
            },
            batch_size: 4,
            failed_reward: None,
        }
    }

    /// Checks every value; each invalid one is its own error.
    pub fn check(&self) -> Result<(), StrategyError> {
        self.controller.check()?;
        check_common("REINFORCE", self.batch_size, self.failed_reward)
    }
}

/// Configuration of [`Ppo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoConfig {
    /// The controller.
    pub controller: ControllerConfig,
    /// Episodes per update (M).
    pub batch_size: usize,
    /// Gradient steps over each batch (K).
    pub epochs: usize,
    /// The clip range ε of the probability ratio.
    pub clip: f64,
    /// The reward of a failed trial; `None` (the default) skips failed trials.
    pub failed_reward: Option<f64>,
}

impl Default for PpoConfig {
    /// ENAS' controller ([`ControllerConfig::default`]), batches of 10, 4 epochs, ε = 0.2,
    /// failed trials skipped.
    fn default() -> Self {
        Self {
            controller: ControllerConfig::default(),
            batch_size: 10,
            epochs: 4,
            clip: 0.2,
            failed_reward: None,
        }
    }
}

impl PpoConfig {
    /// Settings for short searches of a few hundred queries (see
    /// [`ReinforceConfig::short_search`]): the same controller, batches of 8, 4 epochs,
    /// ε = 0.2.
    pub fn short_search() -> Self {
        Self {
            controller: ReinforceConfig::short_search().controller,
            batch_size: 8,
            epochs: 4,
            clip: 0.2,
            failed_reward: None,
        }
    }

    /// Checks every value; each invalid one is its own error.
    pub fn check(&self) -> Result<(), StrategyError> {
        self.controller.check()?;
        check_ppo(self.clip, self.epochs)?;
        check_common("PPO", self.batch_size, self.failed_reward)
    }
}

fn check_common(
    strategy: &'static str,
    batch_size: usize,
    failed_reward: Option<f64>,
) -> Result<(), StrategyError> {
    let err = |field, reason: &str| {
        Err(StrategyError::InvalidConfig {
            strategy,
            field,
            reason: reason.into(),
        })
    };
    if batch_size == 0 {
        return err("batch_size", "must be at least 1");
    }
    if failed_reward.is_some_and(|r| !r.is_finite()) {
        return err(
            "failed_reward",
            "must be a finite number (or None to skip failed trials)",
        );
    }
    Ok(())
}

/// The ask/tell machinery shared by both strategies.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
struct Agent<S: SearchSpace, B: AutodiffBackend> {
    controller: Controller<B>,
    pending: Pending<S::Arch>,
    /// The decisions and log-probability of each pending trial.
    samples: BTreeMap<TrialId, (Vec<usize>, f64)>,
    /// Episodes waiting for the next update.
    batch: Vec<Episode>,
    batch_size: usize,
    failed_reward: Option<f64>,
    last: Option<Stats>,
}

/// [`UpdateStats`] with serde, for the saved state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Stats {
    loss: f64,
    mean_reward: f64,
    baseline: f64,
    entropy: f64,
}

impl From<UpdateStats> for Stats {
    fn from(s: UpdateStats) -> Self {
        Self {
            loss: s.loss,
            mean_reward: s.mean_reward,
            baseline: s.baseline,
            entropy: s.entropy,
        }
    }
}

impl From<Stats> for UpdateStats {
    fn from(s: Stats) -> Self {
        Self {
            loss: s.loss,
            mean_reward: s.mean_reward,
            baseline: s.baseline,
            entropy: s.entropy,
        }
    }
}

impl<S: Sequential, B: AutodiffBackend> Agent<S, B> {
    fn new(
        space: &S,
        controller: &ControllerConfig,
        batch_size: usize,
        failed_reward: Option<f64>,
        seed: u64,
    ) -> Result<Self, StrategyError> {
        Ok(Self {
            controller: Controller::for_space(space, controller.clone(), seed)?,
            pending: Pending::default(),
            samples: BTreeMap::new(),
            batch: Vec::new(),
            batch_size,
            failed_reward,
            last: None,
        })
    }

    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        let decisions = space.decisions();
        if decisions != self.controller.decisions() {
            return Err(StrategyError::Controller(format!(
                "the controller was built for a space with decisions {:?}, this {} space has {:?}; build the strategy with this space",
                self.controller.decisions(),
                space.name(),
                decisions
            )));
        }
        if let Some(graph) = self.controller.graph()
            && space.decision_graph().as_ref() != Some(graph)
        {
            return Err(StrategyError::Controller(format!(
                "the controller chooses among earlier states by the decision graph of the space it was built for; this {} space's graph differs; build the strategy with this space",
                space.name()
            )));
        }
        let Sample {
            decisions,
            log_prob,
            ..
        } = self.controller.sample();
        let arch = space.from_decisions(&decisions)?;
        let trial = self.pending.open(arch);
        self.samples.insert(trial.id, (decisions, log_prob));
        Ok(trial)
    }

    /// Closes the trial; returns true when a batch is complete.
    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<bool, StrategyError> {
        self.pending.close(id)?;
        let Some((decisions, log_prob)) = self.samples.remove(&id) else {
            return Err(StrategyError::UnknownTrial(id));
        };
        let reward = match &outcome {
            Outcome::Complete(m) | Outcome::Pruned(m) if m.objective.is_finite() => {
                Some(m.objective)
            }
            _ => self.failed_reward,
        };
        if let Some(reward) = reward {
            self.batch.push(Episode {
                decisions,
                log_prob,
                reward,
            });
        }
        Ok(self.batch.len() >= self.batch_size)
    }
}

/// The constructor, the accessors and the ask/tell of [`Reinforce`] and [`Ppo`], which differ
/// only in their configuration and in the controller update that a complete batch makes
/// (`|config, controller, batch| update`).
macro_rules! rl_strategy {
    (
        $strategy:ident,
        $config:ty,
        |$cfg:ident, $controller:ident, $batch:ident| $update:expr
    ) => {
        impl<S: Sequential, B: AutodiffBackend> $strategy<S, B> {
            /// Checks `config` and builds the controller for `space`'s decisions, seeded with
            /// `seed` (parameters and sampling). Use the strategy with this space (or one with
            /// the same decisions).
            pub fn new(space: &S, config: $config, seed: u64) -> Result<Self, StrategyError> {
                config.check()?;
                let agent = Agent::new(
                    space,
                    &config.controller,
                    config.batch_size,
                    config.failed_reward,
                    seed,
                )?;
                Ok(Self { config, agent })
            }

            /// The configuration.
            pub fn config(&self) -> &$config {
                &self.config
            }

            /// The controller.
            pub fn controller(&self) -> &Controller<B> {
                &self.agent.controller
            }

            /// What the last update did, once one has run.
            pub fn last_update(&self) -> Option<UpdateStats> {
                self.agent.last.map(UpdateStats::from)
            }
        }

        impl<S: Sequential, B: AutodiffBackend> Strategy<S> for $strategy<S, B> {
            fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
                self.agent.ask(space)
            }

            fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
                if self.agent.tell(id, outcome)? {
                    let batch = std::mem::take(&mut self.agent.batch);
                    let update = |$cfg: &$config,
                                  $controller: &mut Controller<B>,
                                  $batch: &[Episode]| { $update };
                    let stats = update(&self.config, &mut self.agent.controller, &batch)?;
                    self.agent.last = Some(stats.into());
                }
                Ok(())
            }
        }
    };
}

/// REINFORCE with an LSTM controller (Zoph & Le, ICLR 2017; ENAS' controller, Pham et al., ICML
/// 2018): see the [module docs](self) for how trials become episodes, and
/// [`Controller::reinforce`] for the update.
///
/// The state (controller parameters, Adam's moments, baseline, random generator, pending
/// trials, the batch being collected) serializes, so a saved search resumes with the same
/// proposals.
///
/// # Example
///
/// ```
/// use nas_estimate::Metrics;
/// use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
/// use nas_strategy::{Outcome, Reinforce, ReinforceConfig, Strategy};
///
/// let space = Nb201Space::default();
/// let mut rl: Reinforce<Nb201Space> = Reinforce::new(&space, ReinforceConfig::short_search(), 0)?;
/// let convs = |a: &Nb201Arch| a.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count() as f64;
/// let mut rewards = Vec::new();
/// for _ in 0..120 {
///     let trial = rl.ask(&space)?;
///     rewards.push(convs(&trial.arch));
///     rl.tell(trial.id, Outcome::Complete(Metrics::new(convs(&trial.arch))))?;
/// }
/// let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
/// // Random cells have 1.2 convolutions on average; the controller learns to pick more.
/// assert!(mean(&rewards[80..]) > mean(&rewards[..40]) + 0.5);
/// # Ok::<(), nas_strategy::StrategyError>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Reinforce<S: SearchSpace, B: AutodiffBackend = DefaultBackend> {
    config: ReinforceConfig,
    agent: Agent<S, B>,
}

rl_strategy!(Reinforce, ReinforceConfig, |_config, controller, batch| {
    controller.reinforce(batch)
});

/// PPO with an LSTM controller (Schulman et al. 2017; the update of NASNet's search, Zoph et
/// al., CVPR 2018): see the [module docs](self) for how trials become episodes, and
/// [`Controller::ppo`] for the update (K epochs of the clipped objective over each batch of M
/// episodes).
///
/// The state serializes like [`Reinforce`]'s, so a saved search resumes with the same
/// proposals.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Ppo<S: SearchSpace, B: AutodiffBackend = DefaultBackend> {
    config: PpoConfig,
    agent: Agent<S, B>,
}

rl_strategy!(Ppo, PpoConfig, |config, controller, batch| {
    controller.ppo(batch, config.clip, config.epochs)
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<Controller>();
        send::<Reinforce<nas_space::nb201::Nb201Space>>();
        send::<Ppo<nas_space::nb201::Nb201Space>>();
    }
}
