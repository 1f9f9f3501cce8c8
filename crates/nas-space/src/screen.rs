//! Screening proposals with a cheap score: a space whose sampling and mutation keep the best
//! of several draws.
//!
//! A zero-cost proxy (a score of the untrained network, such as its number of parameters on
//! paths from input to output) costs milliseconds where training a candidate costs seconds.
//! [`Screened`] wraps any space and uses such a score where proposals are made, the two
//! places Abdelfattah et al. ("Zero-Cost Proxies for Lightweight NAS", ICLR 2021) use one:
//!
//! - **warm-up**: [`SearchSpace::sample`] draws `sample_pool` architectures from the inner
//!   space and returns the best by the score, so a strategy's random initial population starts
//!   from promising architectures;
//! - **move proposal**: [`Mutate::mutate`] draws `mutate_pool` mutants of the parent and
//!   returns the best by the score.
//!
//! Strategies are unchanged: they see a space like any other, with the same architectures,
//! text format, canonical forms and encodings as the inner one (its capabilities are passed
//! through). The score is any function of an architecture; scores are cached per
//! architecture, so each is computed once. A non-finite score (NaN, a failed computation
//! reported as `-inf`) ranks below every finite one. Ties keep the first draw, so a seeded
//! strategy stays reproducible.
//!
//! ```
//! use nas_space::nb201::{Nb201Op, Nb201Space};
//! use nas_space::screen::{ScreenConfig, Screened};
//! use nas_space::{Mutate, SearchSpace};
//! use rand::{SeedableRng, rngs::ChaCha8Rng};
//!
//! // A stand-in for a zero-cost proxy: the number of 3×3 convolutions.
//! let convs = |a: &nas_space::nb201::Nb201Arch| {
//!     a.edges.iter().filter(|&&op| op == Nb201Op::NorConv3x3).count() as f64
//! };
//! let space = Screened::new(Nb201Space::default(), ScreenConfig::new(50, 5), convs)?;
//! let mut rng = ChaCha8Rng::seed_from_u64(0);
//! let a = space.sample(&mut rng); // the best of 50 random cells
//! assert!(convs(&a) >= 3.0);
//! let child = space.mutate(&a, &mut rng)?; // the best of 5 mutants
//! assert_ne!(child, a);
//! assert_eq!(space.scored(), 50 + 5 - space.repeats());
//! # Ok::<(), nas_space::SpaceError>(())
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::SpaceError;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Mutate, Neighborhood, SearchSpace, TextFormat,
    ToGraph,
};

/// How many draws [`Screened`] scores per proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenConfig {
    /// Random architectures drawn per [`SearchSpace::sample`] (1: plain sampling).
    pub sample_pool: usize,
    /// Mutants drawn per [`Mutate::mutate`] (1: plain mutation).
    pub mutate_pool: usize,
}

impl ScreenConfig {
    /// Keep the best of `sample_pool` random draws and of `mutate_pool` mutants.
    pub fn new(sample_pool: usize, mutate_pool: usize) -> Self {
        Self {
            sample_pool,
            mutate_pool,
        }
    }

    /// Checks that both pools hold at least one draw.
    pub fn check(&self) -> Result<(), SpaceError> {
        for (field, value) in [
            ("sample_pool", self.sample_pool),
            ("mutate_pool", self.mutate_pool),
        ] {
            if value == 0 {
                return Err(SpaceError::invalid(
                    "screened space",
                    format!("{field} must be at least 1 (1 draws without screening), got 0"),
                ));
            }
        }
        Ok(())
    }
}

/// A space whose proposals are the best of several draws by a cheap score (see the
/// [module docs](self)).
pub struct Screened<S: SearchSpace, F> {
    inner: S,
    config: ScreenConfig,
    score: F,
    cache: Mutex<Cache<S::Arch>>,
}

struct Cache<A> {
    scores: HashMap<A, f64>,
    lookups: usize,
}

impl<S: SearchSpace, F: Fn(&S::Arch) -> f64> Screened<S, F> {
    /// Wraps `inner`; `score` rates an architecture (higher is better).
    pub fn new(inner: S, config: ScreenConfig, score: F) -> Result<Self, SpaceError> {
        config.check()?;
        Ok(Self {
            inner,
            config,
            score,
            cache: Mutex::new(Cache {
                scores: HashMap::new(),
                lookups: 0,
            }),
        })
    }

    /// The wrapped space.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The pool sizes.
    pub fn config(&self) -> ScreenConfig {
        self.config
    }

    /// The score of `arch` (cached; computed on first use). Non-finite scores come back as
    /// `-inf`.
    pub fn score(&self, arch: &S::Arch) -> f64 {
        let mut cache = self.lock();
        cache.lookups += 1;
        if let Some(&s) = cache.scores.get(arch) {
            return s;
        }
        let s = (self.score)(arch);
        let s = if s.is_finite() { s } else { f64::NEG_INFINITY };
        cache.scores.insert(arch.clone(), s);
        s
    }

    /// Distinct architectures scored so far (the number of times the score function ran).
    pub fn scored(&self) -> usize {
        self.lock().scores.len()
    }

    /// Draws whose architecture had been scored before (answered from the cache).
    pub fn repeats(&self) -> usize {
        let cache = self.lock();
        cache.lookups - cache.scores.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache<S::Arch>> {
        // The cache holds only finished scores: a panic in the score function leaves nothing
        // half-written, so a poisoned lock is safe to use.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first of the best-scored draws.
    fn best(&self, draws: impl Iterator<Item = S::Arch>) -> Option<S::Arch> {
        let mut best: Option<(S::Arch, f64)> = None;
        for arch in draws {
            let s = self.score(&arch);
            if best.as_ref().is_none_or(|(_, b)| s > *b) {
                best = Some((arch, s));
            }
        }
        best.map(|(a, _)| a)
    }
}

impl<S: SearchSpace, F: Fn(&S::Arch) -> f64> SearchSpace for Screened<S, F> {
    type Arch = S::Arch;

    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The best of `sample_pool` draws from the inner space.
    fn sample(&self, rng: &mut dyn Rng) -> S::Arch {
        let n = self.config.sample_pool.max(1);
        let mut draws = (0..n).map(|_| self.inner.sample(&mut *rng)).peekable();
        let first = draws.peek().cloned();
        self.best(draws)
            .or(first)
            .unwrap_or_else(|| self.inner.sample(rng))
    }

    fn validate(&self, arch: &S::Arch) -> Result<(), SpaceError> {
        self.inner.validate(arch)
    }
}

impl<S: Mutate, F: Fn(&S::Arch) -> f64> Mutate for Screened<S, F> {
    /// The best of `mutate_pool` mutants of `arch` from the inner space.
    fn mutate(&self, arch: &S::Arch, rng: &mut dyn Rng) -> Result<S::Arch, SpaceError> {
        let mut mutants = Vec::with_capacity(self.config.mutate_pool);
        for _ in 0..self.config.mutate_pool.max(1) {
            mutants.push(self.inner.mutate(arch, &mut *rng)?);
        }
        self.best(mutants.into_iter())
            .ok_or_else(|| SpaceError::invalid(self.name(), "no mutant was drawn"))
    }
}

impl<S: Canonicalize, F: Fn(&S::Arch) -> f64> Canonicalize for Screened<S, F> {
    fn canonical(&self, arch: &S::Arch) -> Result<CanonicalForm, SpaceError> {
        self.inner.canonical(arch)
    }
}

impl<S: TextFormat, F: Fn(&S::Arch) -> f64> TextFormat for Screened<S, F> {
    fn to_text(&self, arch: &S::Arch) -> String {
        self.inner.to_text(arch)
    }

    fn parse(&self, text: &str) -> Result<S::Arch, SpaceError> {
        self.inner.parse(text)
    }
}

impl<S: Neighborhood, F: Fn(&S::Arch) -> f64> Neighborhood for Screened<S, F> {
    fn neighbors(&self, arch: &S::Arch) -> Result<Vec<S::Arch>, SpaceError> {
        self.inner.neighbors(arch)
    }
}

impl<S: Encode, F: Fn(&S::Arch) -> f64> Encode for Screened<S, F> {
    fn encoding_len(&self) -> usize {
        self.inner.encoding_len()
    }

    fn encode(&self, arch: &S::Arch) -> Result<Vec<f32>, SpaceError> {
        self.inner.encode(arch)
    }
}

impl<S: ToGraph, F: Fn(&S::Arch) -> f64> ToGraph for Screened<S, F> {
    fn graph(&self, arch: &S::Arch) -> Result<ArchGraph, SpaceError> {
        self.inner.graph(arch)
    }
}

impl<S: SearchSpace + std::fmt::Debug, F> std::fmt::Debug for Screened<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screened")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;
    use crate::nb201::{Nb201Arch, Nb201Op, Nb201Space};
    use rand::{SeedableRng, rngs::ChaCha8Rng};

    fn convs(a: &Nb201Arch) -> f64 {
        a.edges
            .iter()
            .filter(|&&op| op == Nb201Op::NorConv3x3)
            .count() as f64
    }

    #[test]
    fn sampling_keeps_the_best_of_the_pool_drawn_from_the_same_stream() {
        let plain = Nb201Space::default();
        let space = Screened::new(plain.clone(), ScreenConfig::new(20, 1), convs).unwrap();
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..10 {
            let got = space.sample(&mut a);
            let draws: Vec<Nb201Arch> = (0..20).map(|_| plain.sample(&mut b)).collect();
            let best = draws.iter().map(convs).fold(f64::NEG_INFINITY, f64::max);
            let first_best = draws.iter().find(|d| convs(d) == best).unwrap();
            assert_eq!(&got, first_best);
        }
    }

    #[test]
    fn mutation_keeps_the_best_mutant_and_pools_of_one_change_nothing() {
        let plain = Nb201Space::default();
        let one = Screened::new(plain.clone(), ScreenConfig::new(1, 1), convs).unwrap();
        let five = Screened::new(plain.clone(), ScreenConfig::new(1, 5), convs).unwrap();
        let (mut r1, mut r2, mut r3) = (
            ChaCha8Rng::seed_from_u64(9),
            ChaCha8Rng::seed_from_u64(9),
            ChaCha8Rng::seed_from_u64(9),
        );
        let parent = plain.sample(&mut ChaCha8Rng::seed_from_u64(1));
        for _ in 0..10 {
            assert_eq!(one.sample(&mut r1), plain.sample(&mut r2));
            assert_eq!(
                one.mutate(&parent, &mut r1).unwrap(),
                plain.mutate(&parent, &mut r2).unwrap()
            );
            let child = five.mutate(&parent, &mut r3).unwrap();
            assert!(five.validate(&child).is_ok());
            assert_ne!(child, parent);
        }
        // From a cell without convolutions, one plain mutant has a 3×3 convolution with
        // probability 1/4, the best of five with 1 - (3/4)^5 = 0.76.
        let empty = Nb201Arch::new([Nb201Op::None; 6]);
        let mean = |space: &Screened<Nb201Space, fn(&Nb201Arch) -> f64>| {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let total: f64 = (0..200)
                .map(|_| convs(&space.mutate(&empty, &mut rng).unwrap()))
                .sum();
            total / 200.0
        };
        let f: fn(&Nb201Arch) -> f64 = convs;
        let plain_mean = mean(&Screened::new(plain.clone(), ScreenConfig::new(1, 1), f).unwrap());
        let five_mean = mean(&Screened::new(plain, ScreenConfig::new(1, 5), f).unwrap());
        assert!(
            plain_mean < 0.35 && five_mean > 0.65,
            "{plain_mean} {five_mean}"
        );
    }

    #[test]
    fn scores_are_cached_and_non_finite_ones_rank_last() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let score = |a: &Nb201Arch| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if a.edges[0] == Nb201Op::NorConv3x3 {
                f64::NAN
            } else {
                convs(a)
            }
        };
        let space = Screened::new(Nb201Space::default(), ScreenConfig::new(200, 1), score).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let a = space.sample(&mut rng);
        assert_ne!(a.edges[0], Nb201Op::NorConv3x3);
        assert_eq!(space.score(&a), convs(&a));
        let before = calls.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(before, space.scored());
        space.score(&a);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), before);
        let nan = Nb201Arch::new([Nb201Op::NorConv3x3; 6]);
        assert_eq!(space.score(&nan), f64::NEG_INFINITY);
    }

    #[test]
    fn empty_pools_are_refused_and_capabilities_pass_through() {
        let err = Screened::new(Nb201Space::default(), ScreenConfig::new(0, 3), convs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sample_pool must be at least 1"), "{err}");
        let space = Screened::new(Nb201Space::default(), ScreenConfig::new(4, 3), convs).unwrap();
        for check in [
            laws::check_sample(&space, 0, 20),
            laws::check_mutate(&space, 0, 20),
            laws::check_neighbors(&space, 0, 5),
            laws::check_text(&space, 0, 20),
            laws::check_encode(&space, 0, 20),
            laws::check_canonical(&space, 0, 20),
            laws::check_graph(&space, 0, 20),
        ] {
            check.unwrap();
        }
        let a = space.sample(&mut ChaCha8Rng::seed_from_u64(2));
        let plain = Nb201Space::default();
        assert_eq!(space.to_text(&a), plain.to_text(&a));
        assert_eq!(space.parse(&space.to_text(&a)).unwrap(), a);
        assert_eq!(space.canonical(&a).unwrap(), plain.canonical(&a).unwrap());
        assert_eq!(space.encode(&a).unwrap(), plain.encode(&a).unwrap());
        assert_eq!(space.neighbors(&a).unwrap(), plain.neighbors(&a).unwrap());
        assert_eq!(space.name(), plain.name());
    }
}
