//! The LSTM controller of reinforcement-learning NAS (Zoph & Le, "Neural Architecture Search
//! with Reinforcement Learning", ICLR 2017; Pham et al., "Efficient Neural Architecture Search
//! via Parameter Sharing" (ENAS), ICML 2018), in Burn.
//!
//! The controller samples an architecture of a [`Sequential`] space one
//! decision at a time: the input of each LSTM step is the embedding of the previous decision (a
//! learned start vector first), and a softmax head turns the LSTM's output into the
//! probabilities of the decision's choices. It learns from rewards by REINFORCE with an
//! exponential-moving-average baseline and an entropy bonus ([`Controller::reinforce`]), or by
//! PPO's clipped objective ([`Controller::ppo`]).
//!
//! Decisions that choose among earlier states (a node's inputs, NAS-RL's skip connections) are
//! made as Zoph & Le and ENAS make them when the space gives its
//! [decision graph](Sequential::decision_graph) ([`Controller::for_space`], on by default
//! through [`ControllerConfig::attention`]): the LSTM's state at each earlier node is kept as
//! an anchor, each candidate is scored by `v·tanh(W_prev·h_j + W_curr·h)`, and the chosen
//! node's state is the next input (a link's probability is the sigmoid of that score); only
//! the categorical decisions have softmax heads.
//!
//! The strategies [`crate::Reinforce`] and [`crate::Ppo`] drive it through ask/tell; it can also
//! be used directly, as ENAS does (sample child architectures, score them with shared weights,
//! update the controller from the rewards):
//!
//! ```
//! use nas_space::nb201::{Nb201Op, Nb201Space};
//! use nas_space::Sequential;
//! use nas_strategy::controller::{Controller, ControllerConfig, Episode};
//!
//! let space = Nb201Space::default();
//! let mut controller: Controller = Controller::new(&space.decisions(), ControllerConfig::default(), 0)?;
//! let sample = controller.sample();
//! let arch = space.from_decisions(&sample.decisions)?;
//! let reward = arch.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count() as f64;
//! let stats = controller.reinforce(&[Episode::new(sample, reward)])?;
//! assert_eq!(controller.updates(), 1);
//! assert!(stats.loss.is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions with a single choice carry no information: the controller fills them with `0`
//! without an LSTM step.
//!
//! Reproducibility: the parameters are drawn under [`nas_supernet::network::seeded`] (the
//! backend's generator seeded with the controller's seed, under a process-wide lock), and the
//! decisions are drawn from the softmax probabilities with the controller's own seeded
//! [`ChaCha8Rng`], never with Burn's generator; so on one machine the same seed gives the same
//! samples and the same updates.

mod config;
mod graph;
mod model;
mod sample;
mod state;
#[cfg(test)]
mod tests;
mod update;

use std::convert::Infallible;

use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn;
use nas_supernet::network::seeded;

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::{SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::StrategyError;
pub(crate) use config::check_ppo;
pub use config::{ControllerConfig, HeadSharing};
use model::{ControllerNet, Optim, init_model, optimizer, plan};
use nas_space::{DecisionGraph, DecisionKind, Sequential};

/// One architecture sampled by a [`Controller`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The choice of each decision (see [`nas_space::Sequential`]).
    pub decisions: Vec<usize>,
    /// The log-probability of the whole sequence under the controller that sampled it.
    pub log_prob: f64,
    /// The summed entropy of the distributions the decisions were drawn from.
    pub entropy: f64,
}

/// A sampled architecture and its reward: what the controller learns from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// The choice of each decision.
    pub decisions: Vec<usize>,
    /// The log-probability of the decisions when they were sampled (PPO's old policy; REINFORCE
    /// does not use it).
    pub log_prob: f64,
    /// The reward (e.g. validation accuracy).
    pub reward: f64,
}

impl Episode {
    /// The episode of `sample` with `reward`.
    pub fn new(sample: Sample, reward: f64) -> Self {
        Self {
            decisions: sample.decisions,
            log_prob: sample.log_prob,
            reward,
        }
    }
}

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateStats {
    /// The loss of the (last) gradient step.
    pub loss: f64,
    /// The mean reward of the batch.
    pub mean_reward: f64,
    /// The baseline the advantages `R − b` were computed with.
    pub baseline: f64,
    /// The mean summed entropy of the batch's decisions under the controller before the update.
    pub entropy: f64,
}

/// An LSTM controller over a fixed sequence of decisions: categorical ones by softmax heads,
/// and, over a decision graph, choices among earlier states by attention (see the
/// [module docs](self)). Generic over the autodiff backend, [`DefaultBackend`] (the CPU) by
/// default.
///
/// The state (parameters, Adam's moments, baseline, random generator) serializes, the
/// parameters and moments as Burn records in bytes; a loaded controller samples and learns
/// exactly as the saved one would have. It is loaded on the backend's default device.
pub struct Controller<B: AutodiffBackend = DefaultBackend> {
    config: ControllerConfig,
    decisions: Vec<usize>,
    /// The informative decisions (two or more choices), in order, with their head.
    steps: Vec<(usize, usize)>,
    /// The number of choices of each head.
    head_sizes: Vec<usize>,
    /// The decision graph whose choices among earlier states are made by attention, if any.
    graph: Option<DecisionGraph>,
    /// The head of each decision that has one.
    heads_of: Vec<Option<usize>>,
    model: ControllerNet<B>,
    optim: Optim<B>,
    /// The parameters without autodiff, for sampling; rebuilt after each update.
    sampler: Option<ControllerNet<B::InnerBackend>>,
    device: B::Device,
    rng: ChaCha8Rng,
    baseline: Option<f64>,
    updates: usize,
}

impl<B: AutodiffBackend> std::fmt::Debug for Controller<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("config", &self.config)
            .field("decisions", &self.decisions)
            .field("attention", &self.graph.is_some())
            .field("baseline", &self.baseline)
            .field("updates", &self.updates)
            .finish_non_exhaustive()
    }
}

impl<B: AutodiffBackend> Controller<B> {
    /// A controller for decisions with `decisions[i]` choices each (e.g.
    /// [`nas_space::Sequential::decisions`]), on the backend's default device, with parameters
    /// and sampling seeded by `seed`.
    pub fn new(
        decisions: &[usize],
        config: ControllerConfig,
        seed: u64,
    ) -> Result<Self, StrategyError> {
        Self::new_on(decisions, config, seed, B::Device::default())
    }

    /// [`Controller::new`] on `device`.
    pub fn new_on(
        decisions: &[usize],
        config: ControllerConfig,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, StrategyError> {
        Self::with_graph_on(decisions, None, config, seed, device)
    }

    /// A controller for `space`: over its [decision graph](Sequential::decision_graph), making
    /// the choices among earlier states by attention, when the space has one and
    /// [`ControllerConfig::attention`] is on; else one softmax per decision, as
    /// [`Controller::new`].
    pub fn for_space<S: Sequential>(
        space: &S,
        config: ControllerConfig,
        seed: u64,
    ) -> Result<Self, StrategyError> {
        let graph = if config.attention {
            space.decision_graph()
        } else {
            None
        };
        Self::with_graph_on(
            &space.decisions(),
            graph,
            config,
            seed,
            B::Device::default(),
        )
    }

    /// A controller for `decisions`, over `graph` when given: the graph's select and link
    /// decisions are made by attention over its anchors (Zoph & Le's anchor points, ENAS'
    /// input selection; see [`nas_space::anchors`]), its categorical ones by softmax heads.
    /// Fails when the graph does not fit the decisions.
    pub fn with_graph_on(
        decisions: &[usize],
        graph: Option<DecisionGraph>,
        config: ControllerConfig,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, StrategyError> {
        config.check()?;
        if let Some(i) = decisions.iter().position(|&n| n == 0) {
            return Err(StrategyError::Controller(format!(
                "decision {i} has no choice; every decision needs at least one"
            )));
        }
        if let Some(g) = &graph {
            g.check(decisions)
                .map_err(|e| StrategyError::Controller(e.to_string()))?;
        }
        let categorical: Vec<bool> = match &graph {
            Some(g) => g
                .kinds()
                .iter()
                .map(|k| matches!(k, DecisionKind::Categorical))
                .collect(),
            None => vec![true; decisions.len()],
        };
        let (steps, head_sizes) = plan(decisions, config.heads, |d| categorical[d]);
        let mut heads_of = vec![None; decisions.len()];
        for &(d, h) in &steps {
            heads_of[d] = Some(h);
        }
        let attention = graph.is_some();
        let model = seeded::<B, _, Infallible>(&device, seed, || {
            Ok(init_model(&config, &head_sizes, attention, &device))
        })
        .unwrap_or_else(|e| match e {});
        Ok(Self {
            optim: optimizer(&config),
            decisions: decisions.to_vec(),
            steps,
            head_sizes,
            graph,
            heads_of,
            model,
            sampler: None,
            device,
            rng: ChaCha8Rng::seed_from_u64(seed),
            baseline: None,
            updates: 0,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The number of choices of each decision.
    pub fn decisions(&self) -> &[usize] {
        &self.decisions
    }

    /// The decision graph the controller walks, when it makes choices among earlier states by
    /// attention.
    pub fn graph(&self) -> Option<&DecisionGraph> {
        self.graph.as_ref()
    }

    /// The baseline (exponential moving average of the rewards), once an update has run.
    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    /// The number of updates so far (each REINFORCE batch counts one, each PPO batch one).
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// [`model::evaluate`] with this controller's configuration, steps and heads.
    fn evaluate<C: Backend>(
        &self,
        net: &ControllerNet<C>,
        decisions: &[Vec<usize>],
    ) -> (Tensor<C, 1>, Tensor<C, 1>) {
        // A graph comes with attention parameters (built so, and checked on loading).
        match (&self.graph, &net.attention) {
            (Some(g), Some(attention)) => {
                let w = graph::walk(
                    &net.base,
                    attention,
                    &self.config,
                    g,
                    &self.decisions,
                    &self.heads_of,
                    graph::Choose::Given(decisions),
                );
                (w.log_prob, w.entropy)
            }
            _ => model::evaluate(
                &net.base,
                &self.config,
                &self.steps,
                &self.head_sizes,
                decisions,
            ),
        }
    }

    fn check_decisions(&self, d: &[usize]) -> Result<(), StrategyError> {
        if d.len() != self.decisions.len() {
            return Err(StrategyError::Controller(format!(
                "expected {} decisions, found {}",
                self.decisions.len(),
                d.len()
            )));
        }
        match d.iter().zip(&self.decisions).position(|(&c, &n)| c >= n) {
            Some(i) => Err(StrategyError::Controller(format!(
                "decision {i} is {}, but it has only {} choices",
                d[i], self.decisions[i]
            ))),
            None => Ok(()),
        }
    }
}
