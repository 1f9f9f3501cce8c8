//! The evolutionary search of SPOS (Guo et al., *Single Path One-Shot Neural Architecture
//! Search with Uniform Sampling*, 2019; `src/Search/search.py` of
//! `megvii-model/SinglePathOneShot`), and [`Constrained`], which keeps any strategy inside a
//! hardware budget (SPOS: a FLOPs limit).
//!
//! SPOS scores candidates with weights inherited from a trained supernet, so an evaluation is
//! cheap and the search is generational: a population of 50; each generation keeps the 10 best
//! architectures seen so far, makes 25 children by mutation (each layer's choice redrawn with
//! probability 0.1) and 25 by crossover (each layer's choice taken from one of two parents),
//! fills up with random architectures, and never proposes an architecture twice; 20 generations.
//! This is why it is written here rather than reused from [`crate::RegularizedEvolution`]:
//! aging evolution mutates one decision of a tournament winner per trial and has no crossover;
//! SPOS's operators need the layer-wise view of an architecture that [`Sequential`] gives
//! (one decision per layer for the chain spaces; any sequential space works, children that the
//! space rejects are redrawn).

use std::collections::HashSet;
use std::marker::PhantomData;

use nas_space::{SearchSpace, Sequential};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// Configuration of [`SposEvolution`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SposEvolutionConfig {
    /// Candidates per generation (50).
    pub population_size: usize,
    /// Parents: the best this many architectures seen so far (10).
    pub top_k: usize,
    /// Children by mutation per generation (25).
    pub mutation_count: usize,
    /// Children by crossover per generation (25).
    pub crossover_count: usize,
    /// Probability that mutation redraws a layer's choice (0.1).
    pub mutation_probability: f64,
    /// Attempts at a new, legal child before giving up on that operator for the slot (10 per
    /// child, as the reference code's `max_iters`).
    pub max_attempts: usize,
}

impl Default for SposEvolutionConfig {
    /// The paper's setting.
    fn default() -> Self {
        Self {
            population_size: 50,
            top_k: 10,
            mutation_count: 25,
            crossover_count: 25,
            mutation_probability: 0.1,
            max_attempts: 10,
        }
    }
}

impl SposEvolutionConfig {
    /// Checks the values: a population of at least 1, `top_k` ≥ 1, mutation and crossover
    /// children together at most the population, a probability in [0, 1], attempts ≥ 1.
    pub fn check(&self) -> Result<(), StrategyError> {
        let err = |field, reason: String| StrategyError::InvalidConfig {
            strategy: "SPOS evolution",
            field,
            reason,
        };
        if self.population_size == 0 {
            return Err(err("population_size", "must be at least 1".into()));
        }
        if self.top_k == 0 {
            return Err(err("top_k", "must be at least 1".into()));
        }
        if self.mutation_count + self.crossover_count > self.population_size {
            return Err(err(
                "mutation_count",
                format!(
                    "mutation_count + crossover_count ({}) must not exceed population_size ({})",
                    self.mutation_count + self.crossover_count,
                    self.population_size
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.mutation_probability) {
            return Err(err("mutation_probability", "must be in [0, 1]".into()));
        }
        if self.max_attempts == 0 {
            return Err(err("max_attempts", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// SPOS's evolutionary search (see the [module docs](self)), as an ask/tell strategy.
///
/// A generation is `population_size` complete trials. Its proposals are made when the previous
/// generation is complete: `mutation_count` mutations and `crossover_count` crossovers of the
/// current top-k (while the top-k is empty: random architectures), then random architectures up
/// to the population size; a proposal that fails (or is rejected by [`Constrained`]) is
/// replaced by another of the same recipe. When parallel workers ask while the generation's
/// last trials run, extra children of the current top-k are handed out. No architecture is
/// proposed twice. The state serializes, so a saved search resumes with the same proposals.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SposEvolution<S: SearchSpace> {
    config: SposEvolutionConfig,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    pending: Pending<S::Arch>,
    /// Proposals of the current generation not yet handed out.
    queue: Vec<S::Arch>,
    /// Complete trials of the current generation.
    evaluated: Vec<(S::Arch, f64)>,
    /// The best architectures seen so far, best first.
    top: Vec<(S::Arch, f64)>,
    /// Every architecture proposed.
    seen: HashSet<S::Arch>,
    generation: usize,
    /// Whether the first generation was made.
    started: bool,
    /// Alternates mutation and crossover for replacement children.
    flip: bool,
    #[serde(skip)]
    _space: PhantomData<fn() -> S>,
}

impl<S: SearchSpace> SposEvolution<S> {
    /// Checks `config` and seeds the strategy.
    pub fn new(config: SposEvolutionConfig, seed: u64) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            pending: Pending::default(),
            queue: Vec::new(),
            evaluated: Vec::new(),
            top: Vec::new(),
            seen: HashSet::new(),
            generation: 0,
            started: false,
            flip: false,
            _space: PhantomData,
        })
    }

    /// The generation being evaluated (0-based).
    pub fn generation(&self) -> usize {
        self.generation
    }

    /// The best architectures seen so far with their objective, best first (at most `top_k`).
    pub fn top(&self) -> &[(S::Arch, f64)] {
        &self.top
    }
}

impl<S: Sequential> SposEvolution<S> {
    fn fresh(&mut self, arch: S::Arch) -> Option<S::Arch> {
        (!self.seen.contains(&arch) && !self.queue.contains(&arch)).then_some(arch)
    }

    fn random(&mut self, space: &S) -> Option<S::Arch> {
        for _ in 0..self.config.max_attempts * 100 {
            let a = space.sample(&mut self.rng);
            if let Some(a) = self.fresh(a) {
                return Some(a);
            }
        }
        None
    }

    fn mutation(&mut self, space: &S) -> Result<Option<S::Arch>, StrategyError> {
        let sizes = space.decisions();
        for _ in 0..self.config.max_attempts {
            let parent = &self.top[self.rng.random_range(0..self.top.len())].0;
            let mut genes = space.to_decisions(parent)?;
            for (g, &n) in genes.iter_mut().zip(&sizes) {
                if self.rng.random_bool(self.config.mutation_probability) {
                    *g = self.rng.random_range(0..n);
                }
            }
            let child = space.from_decisions(&genes)?;
            if let Some(c) = self.fresh(child) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn crossover(&mut self, space: &S) -> Result<Option<S::Arch>, StrategyError> {
        for _ in 0..self.config.max_attempts {
            let n = self.top.len();
            let a = space.to_decisions(&self.top[self.rng.random_range(0..n)].0)?;
            let b = space.to_decisions(&self.top[self.rng.random_range(0..n)].0)?;
            let genes: Vec<usize> = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| if self.rng.random_bool(0.5) { x } else { y })
                .collect();
            let child = space.from_decisions(&genes)?;
            if let Some(c) = self.fresh(child) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// One child of the current top-k (mutation and crossover alternately), or a random
    /// architecture when there is no top-k yet or the operator found nothing new.
    fn child(&mut self, space: &S) -> Result<S::Arch, StrategyError> {
        let child = if self.top.is_empty() {
            None
        } else {
            self.flip = !self.flip;
            if self.flip {
                self.mutation(space)?
            } else {
                self.crossover(space)?
            }
        };
        match child {
            Some(c) => Ok(c),
            None => self
                .random(space)
                .ok_or(StrategyError::Exhausted(self.seen.len())),
        }
    }

    fn next_generation(&mut self, space: &S) -> Result<(), StrategyError> {
        let mut all = std::mem::take(&mut self.top);
        all.append(&mut self.evaluated);
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(self.config.top_k);
        self.top = all;
        self.generation += 1;
        for _ in 0..self.config.mutation_count {
            if let Some(c) = self.mutation(space)? {
                self.queue.push(c);
            }
        }
        for _ in 0..self.config.crossover_count {
            if let Some(c) = self.crossover(space)? {
                self.queue.push(c);
            }
        }
        while self.queue.len() < self.config.population_size {
            match self.random(space) {
                Some(a) => self.queue.push(a),
                None if self.queue.is_empty() => {
                    return Err(StrategyError::Exhausted(self.seen.len()));
                }
                None => break,
            }
        }
        // Handed out in the order made: mutations, crossovers, random.
        self.queue.reverse();
        Ok(())
    }
}

impl<S: Sequential> Strategy<S> for SposEvolution<S> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        if self.queue.is_empty() {
            let have = self.evaluated.len() + self.pending.len();
            if !self.started {
                // First generation: random architectures.
                self.started = true;
                while self.queue.len() < self.config.population_size {
                    match self.random(space) {
                        Some(a) => self.queue.push(a),
                        None => break,
                    }
                }
                self.queue.reverse();
            } else if have < self.config.population_size || !self.pending.is_empty() {
                let c = self.child(space)?;
                self.queue.push(c);
            } else {
                self.next_generation(space)?;
            }
        }
        let arch = self
            .queue
            .pop()
            .ok_or(StrategyError::Exhausted(self.seen.len()))?;
        self.seen.insert(arch.clone());
        Ok(self.pending.open(arch))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let arch = self.pending.close(id)?;
        if let Outcome::Complete(m) = outcome {
            self.evaluated.push((arch, m.objective));
        }
        Ok(())
    }
}

/// Keeps any strategy inside a constraint (SPOS: a FLOPs limit; a latency or parameter budget
/// works the same way): a proposal that fails `feasible` is told to the inner strategy as
/// failed, without an evaluation, and the inner strategy is asked again, at most
/// `max_rejections` times in a row before [`StrategyError::Exhausted`].
///
/// The predicate is a closure, so this wrapper does not serialize; the inner strategy does.
pub struct Constrained<St, F> {
    inner: St,
    feasible: F,
    max_rejections: usize,
    rejected: usize,
}

impl<St, F> Constrained<St, F> {
    /// Wraps `inner`; at most 10,000 infeasible proposals in a row are skipped.
    pub fn new(inner: St, feasible: F) -> Self {
        Self {
            inner,
            feasible,
            max_rejections: 10_000,
            rejected: 0,
        }
    }

    /// Sets how many infeasible proposals in a row `ask` skips before giving up.
    pub fn with_max_rejections(mut self, max: usize) -> Self {
        self.max_rejections = max;
        self
    }

    /// The number of proposals rejected so far.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// The inner strategy.
    pub fn inner(&self) -> &St {
        &self.inner
    }

    /// Unwraps the inner strategy.
    pub fn into_inner(self) -> St {
        self.inner
    }
}

impl<S, St, F> Strategy<S> for Constrained<St, F>
where
    S: SearchSpace,
    St: Strategy<S>,
    F: FnMut(&S::Arch) -> bool,
{
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        for _ in 0..=self.max_rejections {
            let trial = self.inner.ask(space)?;
            if (self.feasible)(&trial.arch) {
                return Ok(trial);
            }
            self.rejected += 1;
            self.inner
                .tell(trial.id, Outcome::Failed("violates the constraint".into()))?;
        }
        Err(StrategyError::Exhausted(self.rejected))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        self.inner.tell(id, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_estimate::Metrics;
    use nas_space::spos::{SposArch, SposChoice, SposSpace};

    fn convs(a: &SposArch) -> f64 {
        a.choices
            .iter()
            .filter(|&&c| c == SposChoice::Shufflenet7x7)
            .count() as f64
    }

    #[test]
    fn generations_climb_never_repeat_and_are_seeded() {
        let space = SposSpace::default();
        let run = |seed| {
            let mut evo = SposEvolution::<SposSpace>::new(
                SposEvolutionConfig {
                    population_size: 20,
                    top_k: 5,
                    mutation_count: 8,
                    crossover_count: 8,
                    ..SposEvolutionConfig::default()
                },
                seed,
            )
            .unwrap();
            let mut archs = Vec::new();
            for _ in 0..200 {
                let t = evo.ask(&space).unwrap();
                archs.push(t.arch.clone());
                evo.tell(t.id, Outcome::Complete(Metrics::new(convs(&t.arch))))
                    .unwrap();
            }
            (archs, evo.generation(), evo.top()[0].1)
        };
        let (archs, generation, best) = run(4);
        assert_eq!(generation, 9);
        let distinct: HashSet<_> = archs.iter().collect();
        assert_eq!(distinct.len(), archs.len());
        // Random SPOS architectures have 5 of 20 layers at 7x7 on average.
        let first_gen_best = archs[..20].iter().map(convs).fold(0.0, f64::max);
        assert!(best > first_gen_best + 2.0, "{best} vs {first_gen_best}");
        assert_eq!(run(4).0, archs);
    }

    #[test]
    fn constraint_rejects_without_evaluating() {
        let space = SposSpace::default();
        let inner = SposEvolution::<SposSpace>::new(SposEvolutionConfig::default(), 1).unwrap();
        let mut constrained = Constrained::new(inner, |a: &SposArch| convs(a) <= 3.0);
        for _ in 0..120 {
            let t = constrained.ask(&space).unwrap();
            assert!(convs(&t.arch) <= 3.0);
            constrained
                .tell(t.id, Outcome::Complete(Metrics::new(convs(&t.arch))))
                .unwrap();
        }
        assert!(constrained.rejected() > 0);
        // The best feasible architectures sit at the limit.
        assert_eq!(constrained.inner().top()[0].1, 3.0);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        for c in [
            SposEvolutionConfig {
                population_size: 0,
                ..SposEvolutionConfig::default()
            },
            SposEvolutionConfig {
                mutation_count: 40,
                ..SposEvolutionConfig::default()
            },
            SposEvolutionConfig {
                mutation_probability: 1.5,
                ..SposEvolutionConfig::default()
            },
        ] {
            assert!(matches!(
                SposEvolution::<SposSpace>::new(c, 0),
                Err(StrategyError::InvalidConfig { .. })
            ));
        }
    }
}
