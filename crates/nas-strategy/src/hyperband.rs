//! Hyperband (Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
//! Optimization", JMLR 2018): successive halving over the estimator's budget, in brackets that
//! trade the number of architectures against the budget each starts with.
//!
//! # Fidelity
//!
//! Budgets are [`Budget::fidelity`] values between [`HyperbandConfig::min_fidelity`] and
//! [`HyperbandConfig::max_fidelity`], in the estimator's unit. For
//! [`nas_estimate::train::TrainEstimator`] the fidelity is a number of epochs (rounded to the
//! nearest integer, at least 1): with `min_fidelity = 1`, `max_fidelity = 27`, `eta = 3`,
//! architectures are trained for 1, 3, 9 and 27 epochs, each time from scratch (the estimator
//! keeps no checkpoints). Choose fidelities that are meaningful for the estimator: an estimator
//! whose result does not depend on the budget gains nothing from Hyperband.
//!
//! A tabular benchmark with a single fidelity, such as the NAS-Bench-201 table of this project
//! (200-epoch accuracy only), ignores the budget: every rung would return the final accuracy,
//! promotions would query the same number again, and the "cheap" rungs would not be cheap.
//! Hyperband and BOHB are therefore not compared on that table; their tests use a synthetic
//! objective whose noise shrinks with the fidelity.
//!
//! # Schedule
//!
//! With `s_max = ⌊log_η(max / min)⌋`, bracket `s` (from `s_max` down to 0, then again) starts
//! `n = ⌈(s_max + 1) / (s + 1) · η^s⌉` architectures at budget `max · η^-s`; after each rung
//! the best `⌊n_i / η⌋` of the complete trials go on with `η` times the budget, up to
//! `max_fidelity`. Pruned and failed trials are never promoted. Budgets are counted down from
//! `max_fidelity`, so when `max / min` is not a power of η the smallest budget used is
//! `max · η^-s_max`, a little above `min_fidelity` (as in HpBandSter).
//!
//! Within the ask/tell interface a rung waits for all of its trials; when every trial of the
//! open brackets is handed out and some are still running, `ask` opens the next bracket, so
//! parallel workers are never idle (the scheme of BOHB's HpBandSter implementation).

use std::collections::BTreeMap;

use nas_estimate::Budget;
use nas_space::SearchSpace;
use rand::{SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// Configuration of the successive-halving brackets of [`Hyperband`] and [`crate::Bohb`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HyperbandConfig {
    /// The smallest budget a trial gets (e.g. epochs).
    pub min_fidelity: f64,
    /// The largest budget, the one architectures are finally compared at.
    pub max_fidelity: f64,
    /// The reduction factor η: each rung keeps 1/η of the architectures and gives them η
    /// times the budget.
    pub eta: f64,
}

impl Default for HyperbandConfig {
    /// Fidelities 1, 3, 9, 27 (e.g. epochs) with η = 3.
    fn default() -> Self {
        Self {
            min_fidelity: 1.0,
            max_fidelity: 27.0,
            eta: 3.0,
        }
    }
}

/// One rung of a bracket: how many architectures run, and at which budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The number of architectures of the rung.
    pub size: usize,
    /// Their budget.
    pub fidelity: f64,
}

/// The most trials the first rung of a bracket may hold (η^s_max): a fidelity ratio beyond it
/// asks for brackets no search could run.
pub const MAX_BRACKET_TRIALS: usize = 1_000_000;

impl HyperbandConfig {
    /// Checks the values: `0 < min_fidelity ≤ max_fidelity`, both finite, `η > 1`, and a
    /// largest bracket of at most [`MAX_BRACKET_TRIALS`] trials.
    pub fn check(&self) -> Result<(), StrategyError> {
        self.check_as("hyperband")
    }

    pub(crate) fn check_as(&self, strategy: &'static str) -> Result<(), StrategyError> {
        let err = |field, reason: String| {
            Err(StrategyError::InvalidConfig {
                strategy,
                field,
                reason,
            })
        };
        if !(self.min_fidelity.is_finite() && self.min_fidelity > 0.0) {
            return err(
                "min_fidelity",
                format!(
                    "must be a finite positive number, got {}",
                    self.min_fidelity
                ),
            );
        }
        if !(self.max_fidelity.is_finite() && self.max_fidelity >= self.min_fidelity) {
            return err(
                "max_fidelity",
                format!(
                    "must be finite and at least min_fidelity ({}), got {}",
                    self.min_fidelity, self.max_fidelity
                ),
            );
        }
        if !(self.eta.is_finite() && self.eta > 1.0) {
            return err(
                "eta",
                format!(
                    "must be a finite number above 1 (3 is usual), got {}",
                    self.eta
                ),
            );
        }
        // The largest bracket starts with about η^s_max trials and has s_max + 1 rungs (the
        // smallest bracket as many trials): an η just above 1 makes s_max huge.
        let s_max = self.s_max() as f64;
        let first_rung = self.eta.powf(s_max).max(s_max + 1.0);
        if first_rung > MAX_BRACKET_TRIALS as f64 {
            return err(
                "max_fidelity",
                format!(
                    "max_fidelity / min_fidelity = {:e} at eta {} makes the largest bracket start \
                     with {first_rung:.3e} trials (at most {MAX_BRACKET_TRIALS}): lower the \
                     ratio or raise eta",
                    self.max_fidelity / self.min_fidelity,
                    self.eta
                ),
            );
        }
        Ok(())
    }

    /// `s_max = ⌊log_η(max / min)⌋`: brackets are numbered `s_max` down to 0.
    pub fn s_max(&self) -> usize {
        ((self.max_fidelity / self.min_fidelity).ln() / self.eta.ln() + 1e-9).floor() as usize
    }

    /// The rungs of bracket `s` (`s ≤ s_max`), from the first to the one at `max_fidelity`.
    pub fn bracket(&self, s: usize) -> Vec<Rung> {
        let s_max = self.s_max();
        let s = s.min(s_max);
        let n = (((s_max + 1) as f64 / (s + 1) as f64) * self.eta.powi(s as i32) - 1e-9).ceil();
        (0..=s)
            .map(|i| Rung {
                size: ((n * self.eta.powi(-(i as i32)) + 1e-9).floor() as usize).max(1),
                fidelity: self.max_fidelity * self.eta.powi(i as i32 - s as i32),
            })
            .collect()
    }
}

/// The state of one slot of a rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Slot<A> {
    /// To be handed out: a new architecture (`None`, sampled when asked) or a promoted one.
    Waiting(Option<A>),
    /// Handed out as this trial.
    Running(A, TrialId),
    /// Told: the objective of a complete trial, `None` if pruned or failed.
    Done(A, Option<f64>),
}

/// One bracket of successive halving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bracket<A> {
    id: u64,
    rungs: Vec<Rung>,
    rung: usize,
    slots: Vec<Slot<A>>,
}

/// One evaluation told to a successive-halving strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation<A> {
    /// The architecture.
    pub arch: A,
    /// The budget it ran with.
    pub fidelity: f64,
    /// Its objective if the trial completed; `None` if it was pruned or failed.
    pub objective: Option<f64>,
}

/// The bracket engine shared by Hyperband and BOHB.
///
/// A saved state is checked when it is read back ([`BracketsState`]): a state that does not
/// hold together (a corrupted or hand-edited file) is a deserialization error, never a panic
/// in a later `ask` or `tell`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    bound(
        serialize = "A: Serialize",
        deserialize = "A: Deserialize<'de> + Clone"
    ),
    try_from = "BracketsState<A>"
)]
pub(crate) struct Brackets<A> {
    pub config: HyperbandConfig,
    /// Brackets opened so far (bracket `i` has `s = s_max - i mod (s_max + 1)`).
    opened: u64,
    active: Vec<Bracket<A>>,
    pending: Pending<A>,
    /// Trial id → (bracket id, slot).
    running: BTreeMap<TrialId, (u64, usize)>,
    /// Every evaluation told, in order.
    pub evaluations: Vec<Evaluation<A>>,
}

/// [`Brackets`] as saved, before its checks.
#[derive(Deserialize)]
struct BracketsState<A> {
    config: HyperbandConfig,
    opened: u64,
    active: Vec<Bracket<A>>,
    pending: Pending<A>,
    running: BTreeMap<TrialId, (u64, usize)>,
    evaluations: Vec<Evaluation<A>>,
}

impl<A> TryFrom<BracketsState<A>> for Brackets<A> {
    type Error = String;

    fn try_from(s: BracketsState<A>) -> Result<Self, String> {
        s.config
            .check()
            .map_err(|e| format!("saved successive-halving state: {e}"))?;
        let bad = |what: String| Err(format!("saved successive-halving state: {what}"));
        if s.opened == u64::MAX {
            return bad("the count of opened brackets is at its maximum".into());
        }
        if s.active.windows(2).any(|w| w[0].id >= w[1].id) {
            return bad("active brackets are not in the order they were opened".into());
        }
        for br in &s.active {
            if br.id >= s.opened {
                return bad(format!(
                    "bracket {} was never opened ({} were)",
                    br.id, s.opened
                ));
            }
            let Some(rung) = br.rungs.get(br.rung) else {
                return bad(format!(
                    "bracket {} is at rung {} of {}",
                    br.id,
                    br.rung,
                    br.rungs.len()
                ));
            };
            if br
                .rungs
                .iter()
                .any(|r| r.size == 0 || !(r.fidelity > 0.0 && r.fidelity.is_finite()))
            {
                return bad(format!(
                    "bracket {} has an empty rung or a fidelity that is not positive",
                    br.id
                ));
            }
            if br.slots.is_empty() || br.slots.len() > rung.size {
                return bad(format!(
                    "bracket {} holds {} slots in a rung of {}",
                    br.id,
                    br.slots.len(),
                    rung.size
                ));
            }
        }
        for (id, &(bid, slot)) in &s.running {
            let holds = s.active.iter().any(|br| {
                br.id == bid && matches!(br.slots.get(slot), Some(Slot::Running(_, t)) if t == id)
            });
            if !holds {
                return bad(format!(
                    "running trial {id} is not in slot {slot} of bracket {bid}"
                ));
            }
        }
        Ok(Self {
            config: s.config,
            opened: s.opened,
            active: s.active,
            pending: s.pending,
            running: s.running,
            evaluations: s.evaluations,
        })
    }
}

impl<A: Clone> Brackets<A> {
    pub fn new(config: HyperbandConfig) -> Self {
        Self {
            config,
            opened: 0,
            active: Vec::new(),
            pending: Pending::default(),
            running: BTreeMap::new(),
            evaluations: Vec::new(),
        }
    }

    /// Hands out the next trial: a waiting slot of the oldest bracket that has one, else the
    /// first slot of a new bracket. A slot that needs a new architecture gets
    /// `choose(evaluations so far, its budget)`.
    pub fn next(
        &mut self,
        choose: impl FnOnce(&[Evaluation<A>], f64) -> Result<A, StrategyError>,
    ) -> Result<Trial<A>, StrategyError> {
        let found = self.active.iter().enumerate().find_map(|(b, br)| {
            br.slots
                .iter()
                .position(|s| matches!(s, Slot::Waiting(_)))
                .map(|i| (b, i))
        });
        let (b, i) = match found {
            Some(x) => x,
            None => {
                let s_max = self.config.s_max() as u64;
                let s = (s_max - self.opened % (s_max + 1)) as usize;
                let rungs = self.config.bracket(s);
                self.active.push(Bracket {
                    id: self.opened,
                    slots: (0..rungs[0].size).map(|_| Slot::Waiting(None)).collect(),
                    rungs,
                    rung: 0,
                });
                self.opened += 1;
                (self.active.len() - 1, 0)
            }
        };
        let arch = match &self.active[b].slots[i] {
            Slot::Waiting(Some(a)) => a.clone(),
            _ => {
                let br = &self.active[b];
                choose(&self.evaluations, br.rungs[br.rung].fidelity)?
            }
        };
        Ok(self.start(b, i, arch))
    }

    fn start(&mut self, b: usize, slot: usize, arch: A) -> Trial<A> {
        let br = &mut self.active[b];
        let budget = Budget::fidelity(br.rungs[br.rung].fidelity);
        let trial = self.pending.open_with(arch.clone(), budget);
        br.slots[slot] = Slot::Running(arch, trial.id);
        self.running.insert(trial.id, (br.id, slot));
        trial
    }

    /// Records the outcome of trial `id` and promotes when its rung is complete.
    pub fn tell(&mut self, id: TrialId, outcome: &Outcome) -> Result<(), StrategyError> {
        let arch = self.pending.close(id)?;
        let (bid, slot) = self
            .running
            .remove(&id)
            .ok_or(StrategyError::UnknownTrial(id))?;
        let objective = match outcome {
            Outcome::Complete(m) if m.objective.is_finite() => Some(m.objective),
            _ => None,
        };
        let Some(b) = self.active.iter().position(|br| br.id == bid) else {
            return Err(StrategyError::UnknownTrial(id));
        };
        let br = &mut self.active[b];
        self.evaluations.push(Evaluation {
            arch: arch.clone(),
            fidelity: br.rungs[br.rung].fidelity,
            objective,
        });
        br.slots[slot] = Slot::Done(arch, objective);
        if br.slots.iter().all(|s| matches!(s, Slot::Done(..))) {
            let mut done: Vec<(usize, A, f64)> = br
                .slots
                .drain(..)
                .enumerate()
                .filter_map(|(i, s)| match s {
                    Slot::Done(a, Some(v)) => Some((i, a, v)),
                    _ => None,
                })
                .collect();
            done.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)));
            br.rung += 1;
            if br.rung < br.rungs.len() && !done.is_empty() {
                let keep = br.rungs[br.rung].size;
                br.slots = done
                    .into_iter()
                    .take(keep)
                    .map(|(_, a, _)| Slot::Waiting(Some(a)))
                    .collect();
            } else {
                self.active.remove(b);
            }
        }
        Ok(())
    }
}

/// Hyperband: successive halving in brackets, new architectures drawn uniformly at random
/// (see the [module docs](self) for the schedule and the meaning of fidelity).
///
/// Each trial carries its budget in [`Trial::budget`]; the search loop passes it to the
/// estimator. The state serializes (brackets, pending trials, random generator).
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Hyperband<S: SearchSpace> {
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    brackets: Brackets<S::Arch>,
}

impl<S: SearchSpace> Hyperband<S> {
    /// Checks `config` and seeds the strategy.
    pub fn new(config: HyperbandConfig, seed: u64) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            brackets: Brackets::new(config),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HyperbandConfig {
        &self.brackets.config
    }

    /// Every evaluation told so far, in order.
    pub fn evaluations(&self) -> &[Evaluation<S::Arch>] {
        &self.brackets.evaluations
    }

    /// The best complete evaluation at the largest budget reached so far.
    pub fn incumbent(&self) -> Option<&Evaluation<S::Arch>> {
        incumbent(&self.brackets.evaluations)
    }
}

/// The best complete evaluation at the largest fidelity that has one.
pub(crate) fn incumbent<A>(evals: &[Evaluation<A>]) -> Option<&Evaluation<A>> {
    let top = evals
        .iter()
        .filter(|e| e.objective.is_some())
        .map(|e| e.fidelity)
        .fold(f64::NEG_INFINITY, f64::max);
    evals
        .iter()
        .filter(|e| e.fidelity == top)
        .filter_map(|e| e.objective.map(|v| (e, v)))
        .fold(
            None,
            |best: Option<(&Evaluation<A>, f64)>, (e, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((e, v)),
            },
        )
        .map(|(e, _)| e)
}

impl<S: SearchSpace> Strategy<S> for Hyperband<S> {
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        let rng = &mut self.rng;
        self.brackets.next(|_, _| Ok(space.sample(rng)))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        self.brackets.tell(id, &outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_estimate::Metrics;
    use nas_space::nb201::Nb201Space;

    /// A saved state reads back and goes on; a corrupted one (found by the `config_serde` fuzz
    /// target: a bracket at a rung it does not have, which panicked in `ask`) is refused when
    /// read.
    #[test]
    fn a_saved_state_is_checked_when_read() {
        let space = Nb201Space::default();
        let mut h = Hyperband::<Nb201Space>::new(HyperbandConfig::default(), 7).unwrap();
        for i in 0..5 {
            let t = h.ask(&space).unwrap();
            h.tell(t.id, Outcome::Complete(Metrics::new(f64::from(i))))
                .unwrap();
        }
        let json = serde_json::to_value(&h).unwrap();
        let mut back: Hyperband<Nb201Space> = serde_json::from_value(json.clone()).unwrap();
        back.ask(&space).unwrap();

        let corrupt = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut j = json.clone();
            edit(&mut j);
            serde_json::from_value::<Hyperband<Nb201Space>>(j)
                .unwrap_err()
                .to_string()
        };
        let e = corrupt(&|j| j["brackets"]["active"][0]["rung"] = 7.into());
        assert!(e.contains("at rung 7"), "{e}");
        let e = corrupt(&|j| j["brackets"]["config"]["eta"] = 1.0.into());
        assert!(e.contains("eta"), "{e}");
        let e = corrupt(&|j| j["brackets"]["opened"] = 0.into());
        assert!(e.contains("never opened"), "{e}");
        let e = corrupt(&|j| {
            let first = j["brackets"]["active"][0].clone();
            j["brackets"]["active"].as_array_mut().unwrap().push(first);
        });
        assert!(e.contains("order they were opened"), "{e}");
    }

    /// Found by the `config_serde` fuzz target: a fidelity ratio of 1e55 passed the check and
    /// the first bracket's slots overflowed a vector's capacity.
    #[test]
    fn a_fidelity_ratio_beyond_any_bracket_is_refused() {
        let c = HyperbandConfig {
            min_fidelity: 3.0,
            max_fidelity: 2.7e55,
            eta: 3.0,
        };
        match c.check() {
            Err(StrategyError::InvalidConfig { field, reason, .. }) => {
                assert_eq!(field, "max_fidelity");
                assert!(reason.contains("largest bracket"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // The usual settings pass, up to a million trials in the first rung.
        let ok = HyperbandConfig {
            min_fidelity: 1.0,
            max_fidelity: 3f64.powi(12),
            eta: 3.0,
        };
        assert!(ok.check().is_ok());
        assert!(HyperbandConfig::default().check().is_ok());
        // Found in review: η just above 1 keeps η^s_max small but makes s_max (rungs, and the
        // trials of the smallest bracket) about 7e11.
        let tiny_eta = HyperbandConfig {
            min_fidelity: 1.0,
            max_fidelity: 2.0,
            eta: 1.000000000001,
        };
        assert!(tiny_eta.check().is_err());
    }

    #[test]
    fn schedule_matches_the_paper_for_eta_3() {
        let c = HyperbandConfig {
            min_fidelity: 1.0,
            max_fidelity: 81.0,
            eta: 3.0,
        };
        assert_eq!(c.s_max(), 4);
        // Li et al. 2018, Table 1 (R = 81, η = 3).
        let sizes = |s| c.bracket(s).iter().map(|r| r.size).collect::<Vec<_>>();
        let budgets = |s| c.bracket(s).iter().map(|r| r.fidelity).collect::<Vec<_>>();
        assert_eq!(sizes(4), [81, 27, 9, 3, 1]);
        assert_eq!(budgets(4), [1.0, 3.0, 9.0, 27.0, 81.0]);
        assert_eq!(sizes(3), [34, 11, 3, 1]);
        assert_eq!(sizes(2), [15, 5, 1]);
        assert_eq!(sizes(1), [8, 2]);
        assert_eq!(sizes(0), [5]);
        assert_eq!(budgets(0), [81.0]);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad = [
            (0.0, 27.0, 3.0, "min_fidelity"),
            (f64::NAN, 27.0, 3.0, "min_fidelity"),
            (5.0, 4.0, 3.0, "max_fidelity"),
            (1.0, f64::INFINITY, 3.0, "max_fidelity"),
            (1.0, 27.0, 1.0, "eta"),
        ];
        for (min, max, eta, which) in bad {
            let c = HyperbandConfig {
                min_fidelity: min,
                max_fidelity: max,
                eta,
            };
            match Hyperband::<Nb201Space>::new(c, 0) {
                Err(StrategyError::InvalidConfig { field, .. }) => assert_eq!(field, which),
                other => panic!("{which}: {other:?}"),
            }
        }
    }

    #[test]
    fn promotes_the_best_and_skips_failures() {
        let space = Nb201Space::default();
        let c = HyperbandConfig {
            min_fidelity: 1.0,
            max_fidelity: 9.0,
            eta: 3.0,
        };
        let mut hb = Hyperband::<Nb201Space>::new(c, 2).unwrap();
        // First bracket: s = 2, 9 architectures at 1, 3 at 3, 1 at 9.
        let first: Vec<_> = (0..9).map(|_| hb.ask(&space).unwrap()).collect();
        assert!(first.iter().all(|t| t.budget == Budget::fidelity(1.0)));
        for (k, t) in first.iter().enumerate() {
            let outcome = if k == 8 {
                Outcome::Failed("diverged".into())
            } else {
                Outcome::Complete(Metrics::new(k as f64))
            };
            hb.tell(t.id, outcome).unwrap();
        }
        let second: Vec<_> = (0..3).map(|_| hb.ask(&space).unwrap()).collect();
        let promoted: Vec<_> = second.iter().map(|t| t.arch).collect();
        // Trials 7, 6, 5 were the best complete ones; 8 failed.
        assert_eq!(
            promoted,
            [first[7].arch, first[6].arch, first[5].arch],
            "best first"
        );
        assert!(second.iter().all(|t| t.budget == Budget::fidelity(3.0)));
        for (k, t) in second.iter().enumerate() {
            hb.tell(t.id, Outcome::Complete(Metrics::new(10.0 - k as f64)))
                .unwrap();
        }
        let last = hb.ask(&space).unwrap();
        assert_eq!(last.arch, first[7].arch);
        assert_eq!(last.budget, Budget::fidelity(9.0));
        hb.tell(last.id, Outcome::Complete(Metrics::new(42.0)))
            .unwrap();
        assert_eq!(hb.incumbent().unwrap().objective, Some(42.0));
        // The next bracket (s = 1) starts 5 architectures at budget 3.
        let t = hb.ask(&space).unwrap();
        assert_eq!(t.budget, Budget::fidelity(3.0));
    }

    #[test]
    fn waits_are_filled_by_a_new_bracket() {
        let space = Nb201Space::default();
        let c = HyperbandConfig {
            min_fidelity: 1.0,
            max_fidelity: 3.0,
            eta: 3.0,
        };
        // s_max = 1: bracket 1 has 3 at 1 then 1 at 3; bracket 0 has 2 at 3.
        let mut hb = Hyperband::<Nb201Space>::new(c, 0).unwrap();
        let batch = hb.ask_batch(&space, 5).unwrap();
        let budgets: Vec<_> = batch.iter().map(|t| t.budget.fidelity.unwrap()).collect();
        assert_eq!(budgets, [1.0, 1.0, 1.0, 3.0, 3.0]);
        assert!(matches!(
            hb.tell(99, Outcome::Failed("?".into())),
            Err(StrategyError::UnknownTrial(99))
        ));
    }
}
