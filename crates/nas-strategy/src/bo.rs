//! Bayesian optimization with a Gaussian process over architectures.
//!
//! The model is a Gaussian process whose kernel compares architectures directly
//! ([`crate::kernel`]: the Weisfeiler-Lehman graph kernel by default, as in NAS-BOWL, Ru et al.
//! ICLR 2021, or the exponential Hamming kernel on the encoding). The acquisition function is
//! expected improvement, maximized by mutation-based local search over the space (the
//! acquisition optimizer of BANANAS, White et al. AAAI 2021, and NAS-BOWL): candidates are
//! mutations of the best architectures observed plus random samples, and the most promising
//! candidates are mutated again for a few rounds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use faer::Mat;
use nas_space::{CanonicalForm, Canonicalize, Mutate, SearchSpace};
use rand::{SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::gp::{self, Distances, Hyper, Posterior};
use crate::kernel::{ArchKernel, WeisfeilerLehman};
use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// Configuration of [`BayesianOptimization`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesianOptimizationConfig {
    /// Random proposals before the model is used (the initial design); at least 2.
    pub initial_random: usize,
    /// How many of the best observed architectures are mutated to seed the candidate pool.
    pub parents: usize,
    /// Mutations drawn from each parent (and from each architecture expanded by local search).
    pub mutations_per_parent: usize,
    /// Uniform random samples added to the candidate pool.
    pub random_candidates: usize,
    /// Rounds of local search: each mutates the `local_search_width` candidates of highest
    /// expected improvement not mutated yet.
    pub local_search_steps: usize,
    /// Candidates expanded per round of local search.
    pub local_search_width: usize,
    /// The most candidates scored per proposal (bounds the cost of one `ask`).
    pub max_candidates: usize,
    /// Grid of inverse length scales θ of the covariance `exp(-θ d)`.
    pub inverse_length_scales: Vec<f64>,
    /// Grid of noise-to-signal variance ratios λ.
    pub noise_ratios: Vec<f64>,
    /// The hyperparameters are re-chosen when the number of observations has grown by this
    /// fraction since the last choice (and at least by one): 0 refits at every proposal.
    pub refit_growth: f64,
    /// The hyperparameters are chosen on at most this many observations (evenly spread over
    /// the history), which bounds the cost of a refit; at least 2.
    pub max_fit_points: usize,
    /// How objectives become targets.
    pub targets: TargetTransform,
    /// Exploration margin of expected improvement, in standard deviations of the targets.
    pub xi: f64,
}

impl Default for BayesianOptimizationConfig {
    fn default() -> Self {
        Self {
            initial_random: 10,
            parents: 10,
            mutations_per_parent: 10,
            random_candidates: 100,
            local_search_steps: 2,
            local_search_width: 5,
            max_candidates: 500,
            inverse_length_scales: vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
            noise_ratios: vec![1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            refit_growth: 0.05,
            max_fit_points: 200,
            targets: TargetTransform::Copula,
            xi: 0.0,
        }
    }
}

impl BayesianOptimizationConfig {
    /// Checks every value; each invalid one is its own error.
    pub fn check(&self) -> Result<(), StrategyError> {
        let err = |field, reason: &str| {
            Err(StrategyError::InvalidConfig {
                strategy: "bayesian optimization",
                field,
                reason: reason.into(),
            })
        };
        if self.initial_random < 2 {
            return err(
                "initial_random",
                "must be at least 2 (the model needs two observations)",
            );
        }
        if self.random_candidates == 0 && (self.parents == 0 || self.mutations_per_parent == 0) {
            return err(
                "random_candidates",
                "must be positive when parents or mutations_per_parent is 0 (no candidate would ever be scored)",
            );
        }
        if self.max_candidates == 0 {
            return err("max_candidates", "must be at least 1");
        }
        if self.inverse_length_scales.is_empty()
            || self
                .inverse_length_scales
                .iter()
                .any(|t| !(t.is_finite() && *t > 0.0))
        {
            return err(
                "inverse_length_scales",
                "must be a non-empty list of finite positive numbers",
            );
        }
        if self.noise_ratios.is_empty()
            || self
                .noise_ratios
                .iter()
                .any(|l| !(l.is_finite() && *l >= 0.0))
        {
            return err(
                "noise_ratios",
                "must be a non-empty list of finite numbers ≥ 0",
            );
        }
        if !(self.refit_growth.is_finite() && self.refit_growth >= 0.0) {
            return err("refit_growth", "must be a finite number ≥ 0");
        }
        if self.max_fit_points < 2 {
            return err("max_fit_points", "must be at least 2");
        }
        if !(self.xi.is_finite() && self.xi >= 0.0) {
            return err("xi", "must be a finite number ≥ 0");
        }
        Ok(())
    }
}

/// How objectives are turned into the Gaussian process's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetTransform {
    /// Subtract the mean and divide by the standard deviation.
    Standardize,
    /// Replace each objective by the normal quantile of its rank, `Φ⁻¹((rank + ½) / n)`
    /// (ties share their mean rank): a Gaussian copula (Salinas et al., ICML 2020). Robust to
    /// the heavy tails of accuracy tables, where a few collapsed networks score near chance
    /// and squeeze the differences between good ones after standardization. The default: on
    /// the NAS-Bench-201 table it finds the optimum in far fewer queries (docs/benchmarks.md).
    #[default]
    Copula,
}

impl TargetTransform {
    /// The targets of `raw` objectives (mean 0 and about unit variance).
    pub fn apply(self, raw: &[f64]) -> Vec<f64> {
        let n = raw.len();
        if n == 0 {
            return Vec::new();
        }
        match self {
            TargetTransform::Standardize => {
                let mean = raw.iter().sum::<f64>() / n as f64;
                let sd = (raw.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
                let sd = if sd > 1e-12 { sd } else { 1.0 };
                raw.iter().map(|v| (v - mean) / sd).collect()
            }
            TargetTransform::Copula => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]));
                let mut y = vec![0.0; n];
                let mut i = 0;
                while i < n {
                    let mut j = i;
                    while j + 1 < n && raw[order[j + 1]] == raw[order[i]] {
                        j += 1;
                    }
                    let rank = (i + j) as f64 / 2.0;
                    let q = gp::normal_quantile((rank + 0.5) / n as f64);
                    for &k in &order[i..=j] {
                        y[k] = q;
                    }
                    i = j + 1;
                }
                y
            }
        }
    }
}

/// Caches rebuilt from the observations (not saved with the state).
#[derive(Debug)]
struct Cache<A, F> {
    /// Features by architecture (observations, pending trials and candidates).
    features: HashMap<A, Arc<F>>,
    /// Features of the observations, in order.
    observed: Vec<Arc<F>>,
    /// Distances between observations.
    distances: Distances,
}

impl<A, F> Default for Cache<A, F> {
    fn default() -> Self {
        Self {
            features: HashMap::new(),
            observed: Vec::new(),
            distances: Distances::default(),
        }
    }
}

/// Features are recomputed rather than kept beyond this many architectures.
const FEATURE_CACHE_LIMIT: usize = 50_000;

/// Tries this many random draws for an architecture not proposed before.
const MAX_DRAWS: usize = 10_000;

/// Gaussian-process Bayesian optimization (GP-BO) over architectures.
///
/// - The first [`initial_random`](BayesianOptimizationConfig::initial_random) proposals are
///   uniform random samples; then each proposal maximizes expected improvement over a pool of
///   candidates built by mutation-based local search (see [`BayesianOptimizationConfig`]).
/// - Targets are standardized (mean 0, variance 1 over the observations); the kernel's inverse
///   length scale and the noise ratio are chosen on a grid by marginal likelihood, the signal
///   variance in closed form.
/// - No architecture is proposed twice up to its canonical form ([`Canonicalize`]), whether
///   it was evaluated, failed or is still pending.
/// - Trials asked and not yet told (parallel workers, [`Strategy::ask_batch`]) are treated by
///   the kriging believer: each is believed to score its posterior mean, which leaves the mean
///   unchanged and shrinks the uncertainty around it, so the next proposal goes elsewhere.
/// - Complete and pruned trials with a finite objective are observations; failed trials are
///   not (they are only never proposed again).
///
/// The state (observations, random generator, hyperparameters) serializes; caches of features
/// and distances are rebuilt after loading, so a loaded strategy proposes exactly what the
/// saved one would have. Proposals are reproducible on one machine; on a CPU with other SIMD
/// instructions `faer` may round differently, which can (rarely) flip a near-tie between
/// candidates, so resume a journal of a GP-BO search on the same kind of machine.
///
/// Cost: with 500 observations one `ask` + `tell` takes about 20 ms on one core (under 50 ms
/// when the hyperparameters are re-chosen); see `docs/benchmarks.md`. The candidate pool is
/// bounded by [`max_candidates`](BayesianOptimizationConfig::max_candidates) and the
/// hyperparameter fit by [`max_fit_points`](BayesianOptimizationConfig::max_fit_points).
///
/// # Example
///
/// ```
/// use nas_estimate::Metrics;
/// use nas_space::nb201::{Nb201Op, Nb201Space};
/// use nas_strategy::{BayesianOptimization, BayesianOptimizationConfig, Hamming, Outcome, Strategy};
///
/// let space = Nb201Space::default();
/// // The Hamming kernel on the encoding; `WeisfeilerLehman::default()` compares graphs instead.
/// let mut bo = BayesianOptimization::<Nb201Space, Hamming>::new(
///     BayesianOptimizationConfig::default(),
///     Hamming,
///     0,
/// )?;
/// let score = |a: &nas_space::nb201::Nb201Arch| {
///     a.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count() as f64
/// };
/// let mut best = 0.0f64;
/// for _ in 0..30 {
///     let trial = bo.ask(&space)?;
///     best = best.max(score(&trial.arch));
///     bo.tell(trial.id, Outcome::Complete(Metrics::new(score(&trial.arch))))?;
/// }
/// assert_eq!(best, 6.0);
/// # Ok::<(), nas_strategy::StrategyError>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "K: Serialize", deserialize = "K: Deserialize<'de>"))]
pub struct BayesianOptimization<S: SearchSpace, K: ArchKernel<S> = WeisfeilerLehman> {
    config: BayesianOptimizationConfig,
    kernel: K,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    pending: Pending<S::Arch>,
    /// Observed architectures and their objectives, in the order told.
    observed: Vec<(S::Arch, f64)>,
    /// Canonical forms of every architecture proposed.
    seen: HashSet<CanonicalForm>,
    /// The hyperparameters in use and the number of observations they were chosen on.
    hyper: Option<(Hyper, usize)>,
    #[serde(skip)]
    cache: Cache<S::Arch, K::Features>,
}

impl<S: SearchSpace, K: ArchKernel<S>> BayesianOptimization<S, K> {
    /// Checks `config` and seeds the strategy.
    pub fn new(
        config: BayesianOptimizationConfig,
        kernel: K,
        seed: u64,
    ) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            kernel,
            rng: ChaCha8Rng::seed_from_u64(seed),
            pending: Pending::default(),
            observed: Vec::new(),
            seen: HashSet::new(),
            hyper: None,
            cache: Cache::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BayesianOptimizationConfig {
        &self.config
    }

    /// The observations (architecture, objective), in the order they were told.
    pub fn observations(&self) -> &[(S::Arch, f64)] {
        &self.observed
    }

    /// The kernel hyperparameters in use, `(θ, λ)`, once the model has been fitted.
    pub fn hyperparameters(&self) -> Option<(f64, f64)> {
        self.hyper.map(|(h, _)| (h.theta, h.lambda))
    }
}

/// The features of `arch`, from the cache or computed.
fn features_of<S: SearchSpace, K: ArchKernel<S>>(
    cache: &mut HashMap<S::Arch, Arc<K::Features>>,
    kernel: &K,
    space: &S,
    arch: &S::Arch,
) -> Result<Arc<K::Features>, StrategyError> {
    if let Some(f) = cache.get(arch) {
        return Ok(f.clone());
    }
    if cache.len() >= FEATURE_CACHE_LIMIT {
        cache.clear();
    }
    let f = Arc::new(kernel.features(space, arch)?);
    cache.insert(arch.clone(), f.clone());
    Ok(f)
}

/// The candidate pool of one proposal.
struct Pool<A, F> {
    archs: Vec<A>,
    feats: Vec<Arc<F>>,
    ei: Vec<f64>,
    expanded: Vec<bool>,
    forms: HashSet<CanonicalForm>,
}

impl<S, K> BayesianOptimization<S, K>
where
    S: Mutate + Canonicalize,
    K: ArchKernel<S>,
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

    /// Brings the features and distances of the observations up to date.
    fn sync(&mut self, space: &S) -> Result<(), StrategyError> {
        while self.cache.observed.len() < self.observed.len() {
            let i = self.cache.observed.len();
            let f = features_of(
                &mut self.cache.features,
                &self.kernel,
                space,
                &self.observed[i].0,
            )?;
            let rows: Vec<&K::Features> = self.cache.observed.iter().map(|g| g.as_ref()).collect();
            let row = self.kernel.cross_distances(&rows, &[f.as_ref()]);
            self.cache.distances.push(row);
            self.cache.observed.push(f);
        }
        Ok(())
    }

    /// The proposal maximizing expected improvement, or `None` when every candidate was seen.
    fn propose(&mut self, space: &S) -> Result<Option<S::Arch>, StrategyError> {
        self.sync(space)?;
        let n = self.observed.len();
        let raw: Vec<f64> = self.observed.iter().map(|(_, v)| *v).collect();
        let y = self.config.targets.apply(&raw);

        let due = match self.hyper {
            None => true,
            Some((_, at)) => {
                let step = ((at as f64 * self.config.refit_growth).ceil() as usize).max(1);
                n >= at + step
            }
        };
        if due {
            // At most `max_fit_points` observations, evenly spread over the history.
            let k = n.min(self.config.max_fit_points);
            let idx: Vec<usize> = (0..k).map(|i| i * n / k).collect();
            let mut sub = Distances::default();
            for (a, &i) in idx.iter().enumerate() {
                sub.push(
                    idx[..a]
                        .iter()
                        .map(|&j| self.cache.distances.get(i, j))
                        .collect(),
                );
            }
            let ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
            let h = gp::fit(
                &sub,
                &ys,
                &self.config.inverse_length_scales,
                &self.config.noise_ratios,
            );
            // Keep the previous hyperparameters if no grid point factors (degenerate data).
            if let Some(h) = h.or(self.hyper.map(|(h, _)| h)) {
                self.hyper = Some((h, n));
            }
        }
        let Some((h, _)) = self.hyper else {
            return Ok(None);
        };

        // Pending trials join the model (variance only) for the time of this proposal.
        let mut points = self.cache.observed.clone();
        let pending: Vec<S::Arch> = self.pending.iter().map(|(_, a)| a.clone()).collect();
        for a in &pending {
            let f = features_of(&mut self.cache.features, &self.kernel, space, a)?;
            let rows: Vec<&K::Features> = points.iter().map(|g| g.as_ref()).collect();
            let row = self.kernel.cross_distances(&rows, &[f.as_ref()]);
            self.cache.distances.push(row);
            points.push(f);
        }
        let post = Posterior::new(&self.cache.distances, &y, h);
        self.cache.distances.truncate(n);
        let Some(post) = post else {
            return Ok(None);
        };
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);

        let mut pool = Pool {
            archs: Vec::new(),
            feats: Vec::new(),
            ei: Vec::new(),
            expanded: Vec::new(),
            forms: HashSet::new(),
        };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| raw[b].total_cmp(&raw[a]).then(a.cmp(&b)));
        let parents: Vec<S::Arch> = order
            .iter()
            .take(self.config.parents)
            .map(|&i| self.observed[i].0.clone())
            .collect();
        for p in &parents {
            for _ in 0..self.config.mutations_per_parent {
                if let Ok(c) = space.mutate(p, &mut self.rng) {
                    self.add(space, &mut pool, c)?;
                }
            }
        }
        for _ in 0..self.config.random_candidates {
            let c = space.sample(&mut self.rng);
            self.add(space, &mut pool, c)?;
        }
        self.score(&mut pool, 0, &points, &post, best);
        for _ in 0..self.config.local_search_steps {
            let mut open: Vec<usize> = (0..pool.archs.len())
                .filter(|&i| !pool.expanded[i])
                .collect();
            open.sort_by(|&a, &b| pool.ei[b].total_cmp(&pool.ei[a]).then(a.cmp(&b)));
            let start = pool.archs.len();
            for &i in open.iter().take(self.config.local_search_width) {
                pool.expanded[i] = true;
                let parent = pool.archs[i].clone();
                for _ in 0..self.config.mutations_per_parent {
                    if let Ok(c) = space.mutate(&parent, &mut self.rng) {
                        self.add(space, &mut pool, c)?;
                    }
                }
            }
            if pool.archs.len() == start {
                break;
            }
            self.score(&mut pool, start, &points, &post, best);
        }
        let Some(pick) = (0..pool.archs.len())
            .max_by(|&a, &b| pool.ei[a].total_cmp(&pool.ei[b]).then(b.cmp(&a)))
        else {
            return Ok(None);
        };
        let arch = pool.archs.swap_remove(pick);
        self.seen.insert(space.canonical(&arch)?);
        Ok(Some(arch))
    }

    /// Adds `arch` to the pool unless it was proposed before, is in the pool, or the pool is
    /// full.
    fn add(
        &mut self,
        space: &S,
        pool: &mut Pool<S::Arch, K::Features>,
        arch: S::Arch,
    ) -> Result<(), StrategyError> {
        if pool.archs.len() >= self.config.max_candidates {
            return Ok(());
        }
        let form = space.canonical(&arch)?;
        if self.seen.contains(&form) || !pool.forms.insert(form) {
            return Ok(());
        }
        let f = features_of(&mut self.cache.features, &self.kernel, space, &arch)?;
        pool.archs.push(arch);
        pool.feats.push(f);
        pool.expanded.push(false);
        Ok(())
    }

    /// Scores the pool's candidates from `start` on.
    fn score(
        &self,
        pool: &mut Pool<S::Arch, K::Features>,
        start: usize,
        points: &[Arc<K::Features>],
        post: &Posterior,
        best: f64,
    ) {
        let m = pool.archs.len() - start;
        if m == 0 {
            return;
        }
        let rows: Vec<&K::Features> = points.iter().map(|p| p.as_ref()).collect();
        let cols: Vec<&K::Features> = pool.feats[start..].iter().map(|f| f.as_ref()).collect();
        let d = self.kernel.cross_distances(&rows, &cols);
        let nr = rows.len();
        let corr = Mat::<f64>::from_fn(nr, m, |i, j| post.correlation(d[j * nr + i]));
        for (mu, var) in post.predict(corr) {
            pool.ei
                .push(gp::expected_improvement(mu, var, best, self.config.xi));
        }
    }
}

impl<S, K> Strategy<S> for BayesianOptimization<S, K>
where
    S: Mutate + Canonicalize,
    K: ArchKernel<S>,
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
