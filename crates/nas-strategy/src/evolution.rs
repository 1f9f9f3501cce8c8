//! Regularized (aging) evolution (Real et al., "Regularized Evolution for Image Classifier
//! Architecture Search", AAAI 2019).

use std::collections::VecDeque;

use nas_space::{Mutate, SearchSpace};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// Configuration of [`RegularizedEvolution`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegularizedEvolutionConfig {
    /// Population size P: the number of most recent complete trials kept alive.
    pub population_size: usize,
    /// Tournament size S: how many population members are drawn to pick a parent.
    pub sample_size: usize,
}

impl Default for RegularizedEvolutionConfig {
    /// The paper's CIFAR-10 setting: P = 100, S = 25.
    fn default() -> Self {
        Self {
            population_size: 100,
            sample_size: 25,
        }
    }
}

impl RegularizedEvolutionConfig {
    /// The setting of the NAS-Bench-201 paper's REA baseline: P = 10, S = 3.
    pub fn nb201() -> Self {
        Self {
            population_size: 10,
            sample_size: 3,
        }
    }

    /// Checks the values: P ≥ 1 and 1 ≤ S ≤ P.
    pub fn check(&self) -> Result<(), StrategyError> {
        let err = |field, reason: String| StrategyError::InvalidConfig {
            strategy: "regularized evolution",
            field,
            reason,
        };
        if self.population_size == 0 {
            return Err(err("population_size", "must be at least 1".into()));
        }
        if self.sample_size == 0 || self.sample_size > self.population_size {
            return Err(err(
                "sample_size",
                format!(
                    "must be between 1 and population_size ({}), got {}",
                    self.population_size, self.sample_size
                ),
            ));
        }
        Ok(())
    }
}

/// Regularized evolution: the first P proposals are random; afterwards each proposal mutates
/// the fittest of S members drawn at random from the population, and every complete trial
/// enters the population while the oldest member dies. Failed and pruned trials do not enter
/// the population.
///
/// The state (population, random generator, pending trials) serializes, so a saved search
/// resumes with the same proposals.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RegularizedEvolution<S: SearchSpace> {
    config: RegularizedEvolutionConfig,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    pending: Pending<S::Arch>,
    population: VecDeque<(S::Arch, f64)>,
    /// Number of random proposals made during initialization.
    initial: usize,
}

impl<S: SearchSpace> RegularizedEvolution<S> {
    /// Checks `config` and seeds the strategy.
    pub fn new(config: RegularizedEvolutionConfig, seed: u64) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            pending: Pending::default(),
            population: VecDeque::with_capacity(config.population_size + 1),
            initial: 0,
        })
    }

    /// The current population, oldest first, with fitness.
    pub fn population(&self) -> impl Iterator<Item = (&S::Arch, f64)> {
        self.population.iter().map(|(a, f)| (a, *f))
    }
}

impl<S: Mutate> Strategy<S> for RegularizedEvolution<S> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        let arch = if self.initial < self.config.population_size || self.population.is_empty() {
            self.initial = self.initial.saturating_add(1);
            space.sample(&mut self.rng)
        } else {
            let n = self.population.len();
            let mut parent = self.rng.random_range(0..n);
            for _ in 1..self.config.sample_size {
                let i = self.rng.random_range(0..n);
                if self.population[i].1 > self.population[parent].1 {
                    parent = i;
                }
            }
            space.mutate(&self.population[parent].0, &mut self.rng)?
        };
        Ok(self.pending.open(arch))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let arch = self.pending.close(id)?;
        if let Outcome::Complete(m) = outcome {
            self.population.push_back((arch, m.objective));
            if self.population.len() > self.config.population_size {
                self.population.pop_front();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_estimate::Metrics;
    use nas_space::nb201::{Nb201Op, Nb201Space};

    fn convs(a: &nas_space::nb201::Nb201Arch) -> f64 {
        a.edges
            .iter()
            .filter(|&&o| o == Nb201Op::NorConv3x3)
            .count() as f64
    }

    #[test]
    fn invalid_configs_are_rejected() {
        for (p, s) in [(0, 0), (10, 0), (10, 11)] {
            let c = RegularizedEvolutionConfig {
                population_size: p,
                sample_size: s,
            };
            assert!(matches!(
                RegularizedEvolution::<Nb201Space>::new(c, 0),
                Err(StrategyError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn climbs_a_simple_objective_and_ages_the_population() {
        let space = Nb201Space::default();
        let mut rea = RegularizedEvolution::new(RegularizedEvolutionConfig::nb201(), 5).unwrap();
        let mut best = 0.0f64;
        for _ in 0..300 {
            let t = rea.ask(&space).unwrap();
            let v = convs(&t.arch);
            best = best.max(v);
            rea.tell(t.id, Outcome::Complete(Metrics::new(v))).unwrap();
        }
        assert_eq!(best, 6.0);
        assert_eq!(rea.population().count(), 10);
    }

    #[test]
    fn failed_trials_do_not_enter_the_population() {
        let space = Nb201Space::default();
        let mut rea = RegularizedEvolution::new(RegularizedEvolutionConfig::nb201(), 1).unwrap();
        for _ in 0..15 {
            let t = rea.ask(&space).unwrap();
            rea.tell(t.id, Outcome::Failed("diverged".into())).unwrap();
        }
        assert_eq!(rea.population().count(), 0);
        // With an empty population it keeps sampling instead of failing.
        assert!(rea.ask(&space).is_ok());
    }

    /// Aging, the point of regularized evolution (Real et al. 2019): a new member replaces the
    /// oldest, not the worst; the best dies of age like any other.
    #[test]
    fn the_oldest_member_dies_not_the_worst() {
        let space = Nb201Space::default();
        let config = RegularizedEvolutionConfig {
            population_size: 3,
            sample_size: 2,
        };
        let mut rea = RegularizedEvolution::new(config, 0).unwrap();
        let mut told = Vec::new();
        // The first member is the best; the fourth the worst.
        for fitness in [10.0, 1.0, 2.0, 0.0] {
            let t = rea.ask(&space).unwrap();
            told.push(t.arch);
            rea.tell(t.id, Outcome::Complete(Metrics::new(fitness)))
                .unwrap();
        }
        let population: Vec<(nas_space::nb201::Nb201Arch, f64)> =
            rea.population().map(|(a, f)| (*a, f)).collect();
        assert_eq!(
            population.iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![1.0, 2.0, 0.0],
            "the best (oldest) member left, the worst (newest) stayed"
        );
        assert_eq!(population[2].0, told[3]);
        assert!(population.iter().all(|p| p.0 != told[0] || p.1 != 10.0));
    }
}
