//! Random search, deduplicated by canonical form.

use std::collections::HashSet;

use nas_space::{CanonicalForm, Canonicalize, SearchSpace, Sequential, SpaceError};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// Uniform random sampling from the space that never proposes two architectures with the same
/// canonical form (the NAS-Bench-201 paper's RS baseline, minus the duplicates).
///
/// Drawing stops with [`StrategyError::Exhausted`] when `max_draws` consecutive draws all hit
/// architectures proposed before.
///
/// The state (random generator, pending trials, canonical forms proposed) serializes, so a
/// saved search resumes with the same proposals.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RandomSearch<S: SearchSpace> {
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    pending: Pending<S::Arch>,
    seen: HashSet<CanonicalForm>,
    dedup: bool,
    max_draws: usize,
}

impl<S: SearchSpace> RandomSearch<S> {
    /// Random search seeded with `seed`, deduplicating by canonical form.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            pending: Pending::default(),
            seen: HashSet::new(),
            dedup: true,
            max_draws: 10_000,
        }
    }

    /// Allows repeated proposals (plain i.i.d. sampling).
    pub fn without_dedup(mut self) -> Self {
        self.dedup = false;
        self
    }

    /// The number of distinct canonical forms proposed so far.
    pub fn distinct_proposed(&self) -> usize {
        self.seen.len()
    }
}

impl<S: Canonicalize> Strategy<S> for RandomSearch<S> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        if !self.dedup {
            let arch = space.sample(&mut self.rng);
            return Ok(self.pending.open(arch));
        }
        for _ in 0..self.max_draws {
            let arch = space.sample(&mut self.rng);
            if self.seen.insert(space.canonical(&arch)?) {
                return Ok(self.pending.open(arch));
            }
        }
        Err(StrategyError::Exhausted(self.seen.len()))
    }

    fn tell(&mut self, id: TrialId, _outcome: Outcome) -> Result<(), StrategyError> {
        self.pending.close(id).map(drop)
    }
}

/// FairNAS' *strict fairness* (Chu et al., ICCV 2021): `k` architectures of a
/// [`Sequential`] space, `k` the most choices of any decision, that together take every choice
/// of every decision once. Each decision gets a random permutation of its choices and
/// architecture `j` takes the permutation's `j`-th (cycled for decisions with fewer than `k`
/// choices, which then take some twice). Training a supernet on all `k` in each step trains
/// every operation at every step, where uniform sampling (SPOS) trains each one step in `k` on
/// average. Fails only if the space rejects a decision vector in range.
pub fn strictly_fair<S: Sequential, R: Rng + ?Sized>(
    space: &S,
    rng: &mut R,
) -> Result<Vec<S::Arch>, SpaceError> {
    let decisions = space.decisions();
    let k = decisions.iter().copied().max().unwrap_or(1).max(1);
    let perms: Vec<Vec<usize>> = decisions
        .iter()
        .map(|&n| {
            let mut p: Vec<usize> = (0..n.max(1)).collect();
            p.shuffle(rng);
            p
        })
        .collect();
    (0..k)
        .map(|j| {
            let choices: Vec<usize> = perms.iter().map(|p| p[j % p.len()]).collect();
            space.from_decisions(&choices)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_estimate::Metrics;
    use nas_space::nb201::{Nb201Op, Nb201Space};

    #[test]
    fn dedups_until_exhaustion() {
        // Two ops, 64 cells; canonical classes are fewer.
        let space = Nb201Space::with_ops(&[Nb201Op::None, Nb201Op::SkipConnect]).unwrap();
        let mut rs = RandomSearch::new(3);
        let mut forms = HashSet::new();
        loop {
            match rs.ask(&space) {
                Ok(t) => {
                    assert!(forms.insert(space.canonical(&t.arch).unwrap()));
                    rs.tell(t.id, Outcome::Complete(Metrics::new(0.0))).unwrap();
                }
                Err(StrategyError::Exhausted(n)) => {
                    assert_eq!(n, forms.len());
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(forms.len() < 64 && forms.len() > 5, "{}", forms.len());
    }

    #[test]
    fn same_seed_same_proposals_and_unknown_tell_is_an_error() {
        let space = Nb201Space::default();
        let mut a = RandomSearch::<Nb201Space>::new(9);
        let mut b = RandomSearch::new(9);
        for _ in 0..20 {
            let (x, y) = (a.ask(&space).unwrap(), b.ask(&space).unwrap());
            assert_eq!(x, y);
        }
        assert!(matches!(
            a.tell(999, Outcome::Failed("x".into())),
            Err(StrategyError::UnknownTrial(999))
        ));
    }

    /// Strictly fair draws cover every choice of every decision, in NAS-Bench-201 (5 choices
    /// each) and in the DARTS space (decisions with 7, 2, 3, 4 and 5 choices), and differ
    /// between draws.
    #[test]
    fn strictly_fair_draws_take_every_choice() {
        fn check<S: Sequential>(space: &S) {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let decisions = space.decisions();
            let k = *decisions.iter().max().unwrap();
            let first = strictly_fair(space, &mut rng).unwrap();
            assert_eq!(first.len(), k);
            let choices: Vec<Vec<usize>> = first
                .iter()
                .map(|a| space.to_decisions(a).unwrap())
                .collect();
            for (d, &n) in decisions.iter().enumerate() {
                let mut taken: Vec<usize> = choices.iter().map(|c| c[d]).collect();
                taken.sort_unstable();
                taken.dedup();
                assert_eq!(taken, (0..n).collect::<Vec<_>>(), "decision {d}");
            }
            let second = strictly_fair(space, &mut rng).unwrap();
            let again: Vec<Vec<usize>> = second
                .iter()
                .map(|a| space.to_decisions(a).unwrap())
                .collect();
            assert_ne!(choices, again);
        }
        check(&Nb201Space::default());
        check(&nas_space::darts::DartsSpace::default());
    }
}
