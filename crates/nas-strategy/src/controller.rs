//! The LSTM controller of reinforcement-learning NAS (Zoph & Le, "Neural Architecture Search
//! with Reinforcement Learning", ICLR 2017; Pham et al., "Efficient Neural Architecture Search
//! via Parameter Sharing" (ENAS), ICML 2018), in Burn.
//!
//! The controller samples an architecture of a [`Sequential`](nas_space::Sequential) space one
//! decision at a time: the input of each LSTM step is the embedding of the previous decision (a
//! learned start vector first), and a softmax head turns the LSTM's output into the
//! probabilities of the decision's choices. It learns from rewards by REINFORCE with an
//! exponential-moving-average baseline and an entropy bonus ([`Controller::reinforce`]), or by
//! PPO's clipped objective ([`Controller::ppo`]).
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

use std::collections::BTreeMap;
use std::convert::Infallible;

use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn;
use nas_supernet::network::seeded;

use burn::module::{AutodiffModule, Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, Lstm, LstmConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Record, Recorder};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// Configuration of a [`Controller`]. The defaults are ENAS' (Pham et al. 2018, Section 3 and
/// their code): an LSTM of 64 units, parameters initialized uniformly in `[-0.1, 0.1]`, logits
/// divided by a temperature of 5 and squashed by `2.5·tanh`, Adam at a learning rate of
/// 3.5e-4, entropy weight 1e-4, baseline decay 0.99.
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
    /// Gradients are rescaled to at most this L2 norm before the Adam step, when set.
    pub grad_clip_norm: Option<f64>,
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

/// The controller's network: a start vector, one LSTM, and per head an embedding of its
/// choices and a linear layer to their logits.
#[derive(Module, Debug)]
struct ControllerModel<B: Backend> {
    start: Param<Tensor<B, 2>>,
    lstm: Lstm<B>,
    embeddings: Vec<Embedding<B>>,
    heads: Vec<Linear<B>>,
}

/// The controller's optimizer.
type Optim<B> = OptimizerAdaptor<Adam, ControllerModel<B>, B>;

type Bytes = BinBytesRecorder<FullPrecisionSettings>;

/// An LSTM controller over a fixed sequence of categorical decisions (see the
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
    model: ControllerModel<B>,
    optim: Optim<B>,
    /// The parameters without autodiff, for sampling; rebuilt after each update.
    sampler: Option<ControllerModel<B::InnerBackend>>,
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
            .field("baseline", &self.baseline)
            .field("updates", &self.updates)
            .finish_non_exhaustive()
    }
}

/// The informative steps and the head sizes of `decisions`.
fn plan(decisions: &[usize], heads: HeadSharing) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut steps = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut by_count = BTreeMap::new();
    for (d, &n) in decisions.iter().enumerate() {
        if n < 2 {
            continue;
        }
        let h = match heads {
            HeadSharing::PerDecision => {
                sizes.push(n);
                sizes.len() - 1
            }
            HeadSharing::ByChoiceCount => *by_count.entry(n).or_insert_with(|| {
                sizes.push(n);
                sizes.len() - 1
            }),
        };
        steps.push((d, h));
    }
    (steps, sizes)
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
        config.check()?;
        if let Some(i) = decisions.iter().position(|&n| n == 0) {
            return Err(StrategyError::Controller(format!(
                "decision {i} has no choice; every decision needs at least one"
            )));
        }
        let (steps, head_sizes) = plan(decisions, config.heads);
        let model = seeded::<B, _, Infallible>(&device, seed, || {
            Ok(init_model(&config, &head_sizes, &device))
        })
        .unwrap_or_else(|e| match e {});
        Ok(Self {
            optim: optimizer(&config),
            decisions: decisions.to_vec(),
            steps,
            head_sizes,
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

    /// The baseline (exponential moving average of the rewards), once an update has run.
    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    /// The number of updates so far (each REINFORCE batch counts one, each PPO batch one).
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// Samples one architecture's decisions, with their log-probability and entropy.
    pub fn sample(&mut self) -> Sample {
        let model = self.sampler.get_or_insert_with(|| self.model.valid());
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
        if self.steps.is_empty() {
            // Nothing to learn: every decision has one choice.
            return (value, entropy);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optim
            .step(self.config.learning_rate, self.model.clone(), grads);
        (value, entropy)
    }

    /// Log-probabilities and summed entropies `[M]` of a batch, teacher-forced in one pass.
    fn evaluate<C: Backend>(
        &self,
        model: &ControllerModel<C>,
        decisions: &[Vec<usize>],
    ) -> (Tensor<C, 1>, Tensor<C, 1>) {
        let m = decisions.len();
        let device = model.start.val().device();
        if self.steps.is_empty() {
            let zeros = Tensor::<C, 1>::zeros([m], &device);
            return (zeros.clone(), zeros);
        }
        let hidden = self.config.hidden_size;
        let ids = |d: usize| {
            let v: Vec<i64> = decisions.iter().map(|x| x[d] as i64).collect();
            Tensor::<C, 2, Int>::from_data(TensorData::new(v, [m, 1]), &device)
        };
        let mut inputs = vec![model.start.val().reshape([1, 1, hidden]).repeat_dim(0, m)];
        for w in self.steps.windows(2) {
            let (d, h) = w[0];
            inputs.push(model.embeddings[h].forward(ids(d)));
        }
        let (out, _) = model.lstm.forward(Tensor::cat(inputs, 1), None);
        let mut log_prob = Tensor::<C, 1>::zeros([m], &device);
        let mut entropy = Tensor::<C, 1>::zeros([m], &device);
        for (h, &size) in self.head_sizes.iter().enumerate() {
            let ts: Vec<usize> = (0..self.steps.len())
                .filter(|&t| self.steps[t].1 == h)
                .collect();
            let n = ts.len();
            let index = Tensor::<C, 1, Int>::from_data(
                TensorData::new(ts.iter().map(|&t| t as i64).collect::<Vec<_>>(), [n]),
                &device,
            );
            let rows = out.clone().select(1, index).reshape([m * n, hidden]);
            let logits = transform(&self.config, model.heads[h].forward(rows));
            let lsm = log_softmax(logits, 1);
            let targets: Vec<i64> = decisions
                .iter()
                .flat_map(|x| ts.iter().map(move |&t| x[self.steps[t].0] as i64))
                .collect();
            let targets =
                Tensor::<C, 2, Int>::from_data(TensorData::new(targets, [m * n, 1]), &device);
            let lp = lsm.clone().gather(1, targets).reshape([m, n]).sum_dim(1);
            let ent = lsm
                .clone()
                .exp()
                .mul(lsm)
                .sum_dim(1)
                .neg()
                .reshape([m, n])
                .sum_dim(1);
            debug_assert_eq!(lp.dims(), [m, 1], "head of {size} choices");
            log_prob = log_prob + lp.reshape([m]);
            entropy = entropy + ent.reshape([m]);
        }
        (log_prob, entropy)
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

/// Temperature and tanh squashing of logits.
fn transform<C: Backend>(config: &ControllerConfig, logits: Tensor<C, 2>) -> Tensor<C, 2> {
    let logits = match config.temperature {
        Some(t) => logits.div_scalar(t),
        None => logits,
    };
    match config.tanh_constant {
        Some(c) => logits.tanh().mul_scalar(c),
        None => logits,
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

fn vector<B: Backend>(v: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

fn init_model<B: Backend>(
    config: &ControllerConfig,
    head_sizes: &[usize],
    device: &B::Device,
) -> ControllerModel<B> {
    let hidden = config.hidden_size;
    let init = Initializer::Uniform {
        min: -config.init_range,
        max: config.init_range,
    };
    ControllerModel {
        start: init.init([1, hidden], device),
        lstm: LstmConfig::new(hidden, hidden, true)
            .with_initializer(init.clone())
            .init(device),
        embeddings: head_sizes
            .iter()
            .map(|&n| {
                EmbeddingConfig::new(n, hidden)
                    .with_initializer(init.clone())
                    .init(device)
            })
            .collect(),
        heads: head_sizes
            .iter()
            .map(|&n| {
                LinearConfig::new(hidden, n)
                    .with_initializer(init.clone())
                    .init(device)
            })
            .collect(),
    }
}

fn optimizer<B: AutodiffBackend>(config: &ControllerConfig) -> Optim<B> {
    AdamConfig::new()
        .with_grad_clipping(
            config
                .grad_clip_norm
                .map(|c| GradientClippingConfig::Norm(c as f32)),
        )
        .init()
}

/// The serialized form of a [`Controller`].
#[derive(Serialize, Deserialize)]
struct ControllerState {
    config: ControllerConfig,
    decisions: Vec<usize>,
    /// The parameters, a Burn record (bincode, full precision), as hex.
    model: String,
    /// Adam's state, a Burn record, as hex.
    optimizer: String,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    baseline: Option<f64>,
    updates: usize,
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err("a record is an even number of hex digits".into());
    }
    (0..s.len() / 2)
        .map(|i| {
            u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("invalid hex digits at {}", 2 * i))
        })
        .collect()
}

fn save<B: Backend, R: Record<B>>(record: R) -> Result<String, String> {
    Recorder::<B>::record(&Bytes::default(), record, ())
        .map(|b| to_hex(&b))
        .map_err(|e| e.to_string())
}

fn load<B: Backend, R: Record<B>>(hex: &str, device: &B::Device) -> Result<R, String> {
    let bytes = from_hex(hex)?;
    Recorder::<B>::load(&Bytes::default(), bytes, device).map_err(|e| e.to_string())
}

impl<B: AutodiffBackend> Serialize for Controller<B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let state = ControllerState {
            config: self.config.clone(),
            decisions: self.decisions.clone(),
            model: save::<B, _>(self.model.clone().into_record()).map_err(S::Error::custom)?,
            optimizer: save::<B, _>(self.optim.to_record()).map_err(S::Error::custom)?,
            rng: ChaCha8Rng::deserialize_state(&self.rng.serialize_state()),
            baseline: self.baseline,
            updates: self.updates,
        };
        state.serialize(serializer)
    }
}

impl<'de, B: AutodiffBackend> Deserialize<'de> for Controller<B> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let state = ControllerState::deserialize(deserializer)?;
        let mut c = Controller::<B>::new(&state.decisions, state.config, 0)
            .map_err(|e| D::Error::custom(e.to_string()))?;
        let model = load::<B, _>(&state.model, &c.device)
            .map_err(|e| D::Error::custom(format!("controller parameters: {e}")))?;
        c.model = c.model.load_record(model);
        let optim = load::<B, _>(&state.optimizer, &c.device)
            .map_err(|e| D::Error::custom(format!("controller optimizer state: {e}")))?;
        c.optim = c.optim.load_record(optim);
        c.rng = state.rng;
        c.baseline = state.baseline;
        c.updates = state.updates;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(decisions: &[usize], config: ControllerConfig) -> Controller {
        Controller::new(decisions, config, 11).unwrap()
    }

    #[test]
    fn sampled_log_probs_match_the_teacher_forced_pass() {
        // Single-choice decisions are skipped; heads shared by choice count or per decision.
        let decisions = [3, 1, 5, 2, 1, 5, 3];
        for heads in [HeadSharing::ByChoiceCount, HeadSharing::PerDecision] {
            let config = ControllerConfig {
                heads,
                temperature: None,
                init_range: 0.5,
                ..ControllerConfig::default()
            };
            let mut c = controller(&decisions, config);
            let samples: Vec<Sample> = (0..20).map(|_| c.sample()).collect();
            for s in &samples {
                assert_eq!((s.decisions[1], s.decisions[4]), (0, 0));
                assert!(s.decisions.iter().zip(&decisions).all(|(&x, &n)| x < n));
                assert!(s.entropy > 0.0 && s.log_prob < 0.0);
            }
            let all: Vec<Vec<usize>> = samples.iter().map(|s| s.decisions.clone()).collect();
            let lp = c.log_probs(&all).unwrap();
            for (s, l) in samples.iter().zip(lp) {
                assert!((s.log_prob - l).abs() < 1e-4, "{} vs {l}", s.log_prob);
            }
        }
    }

    #[test]
    fn reinforce_moves_probability_towards_the_better_episode() {
        let mut c = controller(&[5; 6], ControllerConfig::default());
        let (a, b) = (c.sample(), c.sample());
        assert_ne!(a.decisions, b.decisions);
        let before = c
            .log_probs(&[a.decisions.clone(), b.decisions.clone()])
            .unwrap();
        let batch = [Episode::new(a.clone(), 1.0), Episode::new(b.clone(), 0.0)];
        let stats = c.reinforce(&batch).unwrap();
        assert_eq!(stats.baseline, 0.5);
        assert_eq!(stats.mean_reward, 0.5);
        // The baseline folds the rewards in: 0.99² · 0.5 + 0.99 · 0.01 · 1 + 0.01 · 0.
        assert!((c.baseline().unwrap() - (0.99f64.powi(2) * 0.5 + 0.0099)).abs() < 1e-12);
        let after = c.log_probs(&[a.decisions, b.decisions]).unwrap();
        assert!(
            after[0] > before[0] && after[1] < before[1],
            "{before:?} -> {after:?}"
        );
    }

    #[test]
    fn ppo_clips_the_probability_ratio() {
        // One episode with advantage 1, no bound on the logits and no entropy bonus. Once the
        // ratio passes 1 + ε the clipped surrogate is the constant (1 + ε)·A: the loss is
        // exactly −(1 + ε) and has no gradient (only Adam's momentum carries on), so a wider
        // ε lets the probability rise further.
        let config = ControllerConfig {
            temperature: None,
            tanh_constant: None,
            entropy_weight: 0.0,
            learning_rate: 1e-3,
            ..ControllerConfig::default()
        };
        let run = |clip: f64| {
            let mut c = controller(&[5; 6], config.clone());
            // A first update with reward 0 sets the baseline to 0.
            let first = c.sample();
            c.reinforce(&[Episode::new(first, 0.0)]).unwrap();
            assert_eq!(c.baseline(), Some(0.0));
            let a = c.sample();
            let stats = c.ppo(&[Episode::new(a.clone(), 1.0)], clip, 60).unwrap();
            let gain = c.log_probs(std::slice::from_ref(&a.decisions)).unwrap()[0] - a.log_prob;
            (gain, stats.loss)
        };
        let ((clipped, loss), (loose, _)) = (run(0.2), run(0.9));
        eprintln!("log-ratio after 60 epochs: ε = 0.2: {clipped:.3}, ε = 0.9: {loose:.3}");
        assert!(
            clipped > 1.2f64.ln() && clipped < loose,
            "{clipped} vs {loose}"
        );
        assert!((loss + 1.2).abs() < 1e-5, "loss {loss}");
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(
            Controller::<DefaultBackend>::new(&[3, 0, 2], ControllerConfig::default(), 0),
            Err(StrategyError::Controller(_))
        ));
        let mut c = controller(&[3, 2], ControllerConfig::default());
        let s = c.sample();
        let bad = |d: Vec<usize>, r: f64| Episode {
            decisions: d,
            log_prob: s.log_prob,
            reward: r,
        };
        for batch in [
            vec![],
            vec![bad(vec![0], 1.0)],
            vec![bad(vec![0, 2], 1.0)],
            vec![bad(vec![0, 1], f64::NAN)],
        ] {
            assert!(matches!(
                c.reinforce(&batch),
                Err(StrategyError::Controller(_))
            ));
            assert!(matches!(
                c.ppo(&batch, 0.2, 2),
                Err(StrategyError::Controller(_))
            ));
        }
        let ok = [Episode::new(s, 1.0)];
        assert!(matches!(
            c.ppo(&ok, 0.0, 2),
            Err(StrategyError::InvalidConfig { field: "clip", .. })
        ));
        assert!(matches!(
            c.ppo(&ok, 0.2, 0),
            Err(StrategyError::InvalidConfig {
                field: "epochs",
                ..
            })
        ));
        assert!(c.log_probs(&[vec![3, 0]]).is_err());
        assert_eq!(c.updates(), 0);
        // Only single-choice decisions: nothing to learn, but sampling and updates work.
        let mut trivial = controller(&[1, 1], ControllerConfig::default());
        let s = trivial.sample();
        assert_eq!((s.decisions, s.log_prob, s.entropy), (vec![0, 0], 0.0, 0.0));
        let again = trivial.sample();
        assert!(trivial.reinforce(&[Episode::new(again, 1.0)]).is_ok());
    }

    #[test]
    fn a_controller_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<Controller>();
        send::<crate::Reinforce<nas_space::nb201::Nb201Space>>();
        send::<crate::Ppo<nas_space::nb201::Nb201Space>>();
    }

    #[test]
    fn a_saved_controller_continues_like_the_original() {
        let mut a = controller(&[5, 4, 5, 2], ControllerConfig::default());
        let update = |c: &mut Controller, k: usize| {
            let batch: Vec<Episode> = (0..3)
                .map(|i| {
                    let s = c.sample();
                    let r = (s.decisions[0] + i + k) as f64;
                    Episode::new(s, r)
                })
                .collect();
            c.ppo(&batch, 0.2, 2).unwrap()
        };
        for k in 0..3 {
            update(&mut a, k);
        }
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Controller = serde_json::from_str(&json).unwrap();
        assert_eq!((b.updates(), b.baseline()), (a.updates(), a.baseline()));
        for k in 3..6 {
            assert_eq!(update(&mut a, k), update(&mut b, k));
        }
        assert_eq!(a.sample(), b.sample());
        let broken = json.replacen("\"model\":\"", "\"model\":\"zz", 1);
        assert!(serde_json::from_str::<Controller>(&broken).is_err());
    }
}
