//! BANANAS: Bayesian optimization with an ensemble of neural predictors on the path encoding
//! (White, Neiswanger and Savani, AAAI 2021).
//!
//! After an initial design of random architectures, each proposal
//!
//! 1. (re)fits an [`Ensemble`] of MLPs to the path encodings ([`crate::predictor`]) of the
//!    observations, every [`refit_every`](BananasConfig::refit_every) observations (BANANAS
//!    proposes batches of 10 between fits);
//! 2. builds candidates by mutating the best observed architectures (BANANAS' mutation-based
//!    acquisition optimizer), plus optional random samples;
//! 3. picks the candidate that maximizes the acquisition function over the ensemble's
//!    predictive distribution (a Gaussian with the members' mean and standard deviation);
//!    by default independent Thompson sampling, BANANAS' choice.

use std::collections::HashSet;

use nas_space::{CanonicalForm, Canonicalize, Mutate, SearchSpace, ToGraph};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::predictor::{Ensemble, MlpConfig, Paths, paths};
use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId, gp};

/// The acquisition function that ranks candidates by the ensemble's predictive distribution
/// `N(μ, σ²)` (μ, σ: the members' mean and standard deviation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acquisition {
    /// Independent Thompson sampling: one draw from `N(μ, σ²)` per candidate, the largest
    /// wins (BANANAS' default; a fresh draw per proposal spreads a batch).
    #[default]
    ThompsonSampling,
    /// Upper confidence bound `μ + β σ`.
    UpperConfidenceBound {
        /// Weight of the standard deviation.
        beta: f64,
    },
    /// Expected improvement over the best observation.
    ExpectedImprovement,
    /// The mean alone (pure exploitation).
    Mean,
}

/// Configuration of [`Bananas`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BananasConfig {
    /// Random proposals before the predictor is used (the initial design); at least 2.
    pub initial_random: usize,
    /// The predictor: MLP layers, training and ensemble size.
    pub predictor: MlpConfig,
    /// The acquisition function.
    pub acquisition: Acquisition,
    /// How many of the best observations are mutated into candidates.
    pub parents: usize,
    /// Candidates per proposal built by mutation (split evenly over the parents), not counting
    /// architectures proposed before.
    pub candidates: usize,
    /// Each candidate is its parent mutated 1 to this many times.
    pub max_mutations: usize,
    /// Uniform random samples added to the candidates.
    pub random_candidates: usize,
    /// The ensemble is refitted once this many new observations arrived since the last fit
    /// (1: before every proposal).
    pub refit_every: usize,
}

impl Default for BananasConfig {
    /// BANANAS' settings: 10 random architectures, then batches of 10 proposals per fit, 100
    /// candidates from single mutations of the 2 best, independent Thompson sampling, an
    /// ensemble of 5 MLPs ([`MlpConfig::default`]).
    fn default() -> Self {
        Self {
            initial_random: 10,
            predictor: MlpConfig::default(),
            acquisition: Acquisition::ThompsonSampling,
            parents: 2,
            candidates: 100,
            max_mutations: 1,
            random_candidates: 0,
            refit_every: 10,
        }
    }
}

impl BananasConfig {
    /// Checks every value; each invalid one is its own error.
    pub fn check(&self) -> Result<(), StrategyError> {
        let err = |field, reason: &str| {
            Err(StrategyError::InvalidConfig {
                strategy: "BANANAS",
                field,
                reason: reason.into(),
            })
        };
        self.predictor.check("BANANAS")?;
        if self.initial_random < 2 {
            return err(
                "initial_random",
                "must be at least 2 (the predictor needs two observations)",
            );
        }
        if self.random_candidates == 0
            && (self.parents == 0 || self.candidates == 0 || self.max_mutations == 0)
        {
            return err(
                "random_candidates",
                "must be positive when parents, candidates or max_mutations is 0 (no candidate would ever be scored)",
            );
        }
        if self.max_mutations == 0 && self.parents > 0 && self.candidates > 0 {
            return err(
                "max_mutations",
                "must be at least 1 when parents and candidates are positive (set candidates to 0 for random candidates only)",
            );
        }
        if self.refit_every == 0 {
            return err("refit_every", "must be at least 1");
        }
        if let Acquisition::UpperConfidenceBound { beta } = self.acquisition
            && !(beta.is_finite() && beta >= 0.0)
        {
            return err("acquisition", "UCB's beta must be a finite number ≥ 0");
        }
        Ok(())
    }
}

/// Tries this many random draws for an architecture not proposed before.
const MAX_DRAWS: usize = 10_000;

/// The last fit: on how many observations, with which seed. The ensemble itself is rebuilt
/// from these after loading a saved strategy, so a loaded strategy proposes exactly what the
/// saved one would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Fit {
    observations: usize,
    seed: u64,
}

/// BANANAS: neural-predictor Bayesian optimization (see the [module](self) documentation).
///
/// - No architecture is proposed twice up to its canonical form, whether it was evaluated,
///   failed or is still pending; complete and pruned trials with a finite objective are
///   observations.
/// - Deterministic for a seed: the MLPs train in `f64` on one thread.
/// - The state serializes (observations, random generator, the last fit's size and seed); the
///   ensemble is refitted after loading.
///
/// Cost: one fit trains `ensemble × epochs` passes over the observations, once per
/// [`refit_every`](BananasConfig::refit_every) proposals; a 200-query search on the
/// NAS-Bench-201 table takes about 10 seconds on one core (`docs/benchmarks.md`, "Predictor-based
/// search").
///
/// # Example
///
/// ```
/// use nas_estimate::Metrics;
/// use nas_space::nb201::{Nb201Op, Nb201Space};
/// use nas_strategy::{Bananas, BananasConfig, Outcome, Strategy};
/// use nas_strategy::predictor::MlpConfig;
///
/// let space = Nb201Space::default();
/// let config = BananasConfig {
///     predictor: MlpConfig { epochs: 50, ..MlpConfig::default() },
///     ..BananasConfig::default()
/// };
/// let mut bananas = Bananas::<Nb201Space>::new(config, 0)?;
/// let score = |a: &nas_space::nb201::Nb201Arch| {
///     a.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count() as f64
/// };
/// let mut best = 0.0f64;
/// for _ in 0..40 {
///     let trial = bananas.ask(&space)?;
///     best = best.max(score(&trial.arch));
///     bananas.tell(trial.id, Outcome::Complete(Metrics::new(score(&trial.arch))))?;
/// }
/// assert!(best >= 5.0);
/// # Ok::<(), nas_strategy::StrategyError>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
pub struct Bananas<S: SearchSpace> {
    config: BananasConfig,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    pending: Pending<S::Arch>,
    /// Observed architectures and their objectives, in the order told.
    observed: Vec<(S::Arch, f64)>,
    /// Canonical forms of every architecture proposed.
    seen: HashSet<CanonicalForm>,
    fit: Option<Fit>,
    #[serde(skip)]
    model: Option<Ensemble>,
    #[serde(skip)]
    encoded: Vec<Paths>,
}

impl<S: SearchSpace> Bananas<S> {
    /// Checks `config` and seeds the strategy.
    pub fn new(config: BananasConfig, seed: u64) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            pending: Pending::default(),
            observed: Vec::new(),
            seen: HashSet::new(),
            fit: None,
            model: None,
            encoded: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BananasConfig {
        &self.config
    }

    /// The observations (architecture, objective), in the order they were told.
    pub fn observations(&self) -> &[(S::Arch, f64)] {
        &self.observed
    }

    /// The predictor of the last fit (`None` before the first, and after loading until the
    /// next proposal).
    pub fn predictor(&self) -> Option<&Ensemble> {
        self.model.as_ref()
    }
}

impl<S> Bananas<S>
where
    S: Mutate + Canonicalize + ToGraph,
{
    /// A uniform sample not proposed before.
    fn random(&mut self, space: &S) -> Result<S::Arch, StrategyError> {
        for _ in 0..MAX_DRAWS {
            let arch = space.sample(&mut self.rng);
            if self.seen.insert(space.canonical(&arch)?) {
                return Ok(arch);
            }
        }
        Err(StrategyError::Exhausted(self.seen.len()))
    }

    /// Brings the ensemble up to date: refits when due, rebuilds after loading.
    fn update_model(&mut self, space: &S) -> Result<(), StrategyError> {
        while self.encoded.len() < self.observed.len() {
            let a = &self.observed[self.encoded.len()].0;
            self.encoded.push(paths(space, a)?);
        }
        let n = self.observed.len();
        let due = match self.fit {
            None => true,
            Some(f) => n >= f.observations + self.config.refit_every,
        };
        let fit = if due {
            let fit = Fit {
                observations: n,
                seed: self.rng.random(),
            };
            self.fit = Some(fit);
            self.model = None;
            fit
        } else {
            self.fit.expect("fitted before")
        };
        if self.model.is_none() {
            let k = fit.observations;
            if k > self.observed.len() {
                return Err(StrategyError::InvalidConfig {
                    strategy: "BANANAS",
                    field: "fit",
                    reason: format!(
                        "the saved state's last fit used {k} observations but holds only {}; \
                         the state was edited or cut short, start the search anew",
                        self.observed.len()
                    ),
                });
            }
            let y: Vec<f64> = self.observed[..k].iter().map(|(_, v)| *v).collect();
            self.model = Some(Ensemble::fit(
                &self.config.predictor,
                &self.encoded[..k],
                &y,
                fit.seed,
            )?);
        }
        Ok(())
    }

    /// The candidate of highest acquisition, or `None` when no candidate is new.
    fn propose(&mut self, space: &S) -> Result<Option<S::Arch>, StrategyError> {
        self.update_model(space)?;
        let mut order: Vec<usize> = (0..self.observed.len()).collect();
        order.sort_by(|&a, &b| {
            self.observed[b]
                .1
                .total_cmp(&self.observed[a].1)
                .then(a.cmp(&b))
        });
        let parents: Vec<S::Arch> = order
            .iter()
            .take(self.config.parents)
            .map(|&i| self.observed[i].0.clone())
            .collect();
        let mut pool: Vec<S::Arch> = Vec::new();
        let mut forms: HashSet<CanonicalForm> = HashSet::new();
        if !parents.is_empty() {
            let per_parent = self.config.candidates.div_ceil(parents.len());
            for p in &parents {
                let mut made = 0;
                // Neighbourhoods are finite: give up after a bounded number of repeats.
                for _ in 0..per_parent * 10 {
                    if made == per_parent {
                        break;
                    }
                    let edits = self.rng.random_range(1..=self.config.max_mutations);
                    let mut c = p.clone();
                    let mut ok = true;
                    for _ in 0..edits {
                        match space.mutate(&c, &mut self.rng) {
                            Ok(m) => c = m,
                            Err(_) => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    if !ok {
                        break;
                    }
                    let form = space.canonical(&c)?;
                    if !self.seen.contains(&form) && forms.insert(form) {
                        pool.push(c);
                        made += 1;
                    }
                }
            }
        }
        for _ in 0..self.config.random_candidates {
            let c = space.sample(&mut self.rng);
            let form = space.canonical(&c)?;
            if !self.seen.contains(&form) && forms.insert(form) {
                pool.push(c);
            }
        }
        if pool.is_empty() {
            return Ok(None);
        }
        let model = self.model.as_ref().expect("fitted above");
        let best = self
            .observed
            .iter()
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut top: Option<(f64, usize)> = None;
        for (i, c) in pool.iter().enumerate() {
            let (mu, sd) = model.mean_std(&paths(space, c)?);
            let score = match self.config.acquisition {
                Acquisition::ThompsonSampling => mu + sd * standard_normal(&mut self.rng),
                Acquisition::UpperConfidenceBound { beta } => mu + beta * sd,
                Acquisition::ExpectedImprovement => {
                    gp::expected_improvement(mu, sd * sd, best, 0.0)
                }
                Acquisition::Mean => mu,
            };
            if top.is_none_or(|(s, _)| score > s) {
                top = Some((score, i));
            }
        }
        let (_, pick) = top.expect("the pool is not empty");
        let arch = pool.swap_remove(pick);
        self.seen.insert(space.canonical(&arch)?);
        Ok(Some(arch))
    }
}

/// A draw from the standard normal distribution (Box–Muller).
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl<S> Strategy<S> for Bananas<S>
where
    S: Mutate + Canonicalize + ToGraph,
{
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        let arch = if self.observed.len() < self.config.initial_random {
            self.random(space)?
        } else {
            match self.propose(space)? {
                Some(a) => a,
                None => self.random(space)?,
            }
        };
        Ok(self.pending.open(arch))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let arch = self.pending.close(id)?;
        if let Outcome::Complete(m) | Outcome::Pruned(m) = &outcome
            && m.objective.is_finite()
        {
            self.observed.push((arch, m.objective));
        }
        Ok(())
    }
}
