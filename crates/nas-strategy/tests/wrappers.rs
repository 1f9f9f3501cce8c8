//! Deduplication, failure handling and median stopping.

mod common;

use std::collections::VecDeque;

use nas_estimate::{Budget, EstimateError, Metrics};
use nas_space::nb201::{Nb201Arch, Nb201Space};
use nas_space::{Canonicalize, TextFormat};
use nas_strategy::search;
use nas_strategy::{
    Dedup, Hyperband, HyperbandConfig, MedianStopping, MedianStoppingConfig, Outcome, Pending,
    Pruner, RetryConfig, RetryFailures, Strategy, StrategyError, Trial, TrialId,
};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

/// Proposes a fixed list of architectures and records what it is told.
struct Scripted {
    queue: VecDeque<Nb201Arch>,
    pending: Pending<Nb201Arch>,
    told: Vec<(Nb201Arch, Outcome)>,
}

impl Scripted {
    fn new(space: &Nb201Space, cells: &[&str]) -> Self {
        Self {
            queue: cells.iter().map(|c| space.parse(c).unwrap()).collect(),
            pending: Pending::default(),
            told: Vec::new(),
        }
    }
}

impl Strategy<Nb201Space> for Scripted {
    fn ask(&mut self, _: &Nb201Space) -> Result<Trial<Nb201Arch>, StrategyError> {
        let a = self.queue.pop_front().ok_or(StrategyError::Exhausted(0))?;
        Ok(self.pending.open(a))
    }
    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let a = self.pending.close(id)?;
        self.told.push((a, outcome));
        Ok(())
    }
}

/// The best cell of the table.
const A: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
/// Another cell.
const B: &str = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";
/// Node 1 receives nothing (`none` from 0), so its outgoing edges carry nothing: these two
/// cells are one canonical form.
const C1: &str =
    "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|";
const C2: &str =
    "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

#[test]
fn dedup_answers_repeats_from_stored_outcomes() {
    let space = Nb201Space::default();
    assert_eq!(
        space.canonical(&space.parse(C1).unwrap()).unwrap(),
        space.canonical(&space.parse(C2).unwrap()).unwrap()
    );
    let inner = Scripted::new(&space, &[A, B, A, C1, C2, B]);
    let mut d = Dedup::new(inner);
    let mut evaluated = Vec::new();
    let mut est = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
        evaluated.push(*a);
        Ok(Metrics::new(a.edges.iter().map(|o| o.index() as f64).sum()))
    };
    let stop = search::run(&space, &mut d, &mut est, 10, |_| {}).unwrap_err();
    assert!(matches!(stop.error, StrategyError::Exhausted(_)));
    let expected: Vec<Nb201Arch> = [A, B, C1].iter().map(|c| space.parse(c).unwrap()).collect();
    assert_eq!(evaluated, expected, "each canonical form evaluated once");
    assert_eq!(d.saved(), 3);
    // The inner strategy heard about all six proposals, repeats with the stored outcome.
    let told = &d.inner().told;
    assert_eq!(told.len(), 6);
    // Told in order: A, B, A (stored), C1, C2 (stored, C1's), B (stored).
    let arches: Vec<Nb201Arch> = told.iter().map(|t| t.0).collect();
    let expected: Vec<Nb201Arch> = [A, B, A, C1, C2, B]
        .iter()
        .map(|c| space.parse(c).unwrap())
        .collect();
    assert_eq!(arches, expected);
    assert_eq!(told[0].1, told[2].1, "A's outcome reused");
    assert_eq!(told[3].1, told[4].1, "C1's outcome reused for C2");
    assert_eq!(told[1].1, told[5].1, "B's outcome reused");
}

#[test]
fn dedup_holds_duplicates_of_running_trials_and_retries_them_after_a_failure() {
    let space = Nb201Space::default();
    let mut d = Dedup::new(Scripted::new(&space, &[A, A, B]));
    let first = d.ask(&space).unwrap();
    // The second proposal duplicates the running one: B is handed out instead.
    let second = d.ask(&space).unwrap();
    assert_eq!(second.arch, space.parse(B).unwrap());
    // A fails: its duplicate gets its own evaluation.
    d.tell(first.id, Outcome::Failed("crash".into())).unwrap();
    let third = d.ask(&space).unwrap();
    assert_eq!(third.arch, first.arch);
    d.tell(third.id, Outcome::Complete(Metrics::new(1.0)))
        .unwrap();
    d.tell(second.id, Outcome::Complete(Metrics::new(2.0)))
        .unwrap();
    assert_eq!(d.inner().told.len(), 3);
    assert_eq!(d.saved(), 0);
}

#[test]
fn dedup_keeps_hyperband_promotions() {
    let space = Nb201Space::default();
    let c = HyperbandConfig {
        min_fidelity: 1.0,
        max_fidelity: 9.0,
        eta: 3.0,
    };
    let mut plain = Hyperband::<Nb201Space>::new(c, 4).unwrap();
    let mut dedup = Dedup::new(Hyperband::<Nb201Space>::new(c, 4).unwrap());
    let mut est = |a: &Nb201Arch, b: &Budget| -> Result<Metrics, EstimateError> {
        Ok(Metrics::new(
            a.edges.iter().map(|o| o.index() as f64).sum::<f64>() + b.fidelity.unwrap_or(0.0),
        ))
    };
    let r1 = search::run(&space, &mut plain, &mut est, 13, |_| {}).unwrap();
    let r2 = search::run(&space, &mut dedup, &mut est, 13, |_| {}).unwrap();
    // The first bracket (9 at 1, 3 at 3, 1 at 9) has no duplicate: identical runs,
    // promotions included.
    let key = |r: &search::SearchResult<Nb201Arch>| {
        r.trials
            .iter()
            .map(|t| (t.arch, t.outcome.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&r1), key(&r2));
    assert_eq!(r2.trials[12].arch, r2.trials[9].arch, "promoted twice");
    assert_eq!(dedup.saved(), 0);
}

#[test]
fn failed_trials_are_retried_then_reported() {
    let space = Nb201Space::default();
    let inner = Scripted::new(&space, &[A, B, C1]);
    let mut r = RetryFailures::new(
        inner,
        RetryConfig {
            max_retries: 2,
            max_consecutive_failures: 10,
        },
    )
    .unwrap();
    // A fails once then succeeds; B always fails; C1 succeeds.
    let mut calls: Vec<Nb201Arch> = Vec::new();
    let a = space.parse(A).unwrap();
    let b = space.parse(B).unwrap();
    let mut est = |x: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
        calls.push(*x);
        let tries = calls.iter().filter(|c| *c == x).count();
        if (*x == a && tries == 1) || *x == b {
            Err(EstimateError::Failed(format!("attempt {tries} failed")))
        } else {
            Ok(Metrics::new(tries as f64))
        }
    };
    let stop = search::run(&space, &mut r, &mut est, 20, |_| {}).unwrap_err();
    assert!(matches!(stop.error, StrategyError::Exhausted(_)));
    // A twice, B three times (two retries), C1 once.
    assert_eq!(stop.partial.trials.len(), 6);
    let told = &r.inner().told;
    assert_eq!(told.len(), 3);
    assert_eq!(told[0], (a, Outcome::Complete(Metrics::new(2.0))));
    assert_eq!(told[1].0, b);
    assert!(matches!(&told[1].1, Outcome::Failed(m) if m.ends_with("attempt 3 failed")));
    assert!(matches!(told[2].1, Outcome::Complete(_)));
}

#[test]
fn a_broken_estimator_stops_the_search_with_a_typed_error() {
    let space = Nb201Space::default();
    let inner = nas_strategy::RandomSearch::<Nb201Space>::new(0);
    let mut r = RetryFailures::new(
        inner,
        RetryConfig {
            max_retries: 1,
            max_consecutive_failures: 5,
        },
    )
    .unwrap();
    let mut est = |_: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
        Err(EstimateError::Failed("CUDA out of memory".into()))
    };
    let stop = search::run(&space, &mut r, &mut est, 100, |_| {}).unwrap_err();
    match &stop.error {
        StrategyError::TooManyFailures { count: 5, last } => {
            assert!(last.contains("out of memory"))
        }
        e => panic!("{e}"),
    }
    // The fifth failure ends the search (its trial is not in the partial result).
    assert_eq!(stop.partial.trials.len(), 4);
    assert!(matches!(
        r.ask(&space),
        Err(StrategyError::TooManyFailures { .. })
    ));
    assert!(matches!(
        RetryFailures::<Nb201Space, _>::new(
            nas_strategy::RandomSearch::<Nb201Space>::new(0),
            RetryConfig {
                max_retries: 0,
                max_consecutive_failures: 0
            }
        ),
        Err(StrategyError::InvalidConfig { .. })
    ));
}

#[test]
fn median_stopping_saves_epochs_and_keeps_the_best_on_learning_curves() {
    // 60 synthetic trials of 20 epochs: final accuracy a ~ U(70, 95), or U(10, 40) for the
    // quarter of networks that do not train; curve a · (1 - exp(-(t + 1) / τ)) with
    // τ ~ U(1, 4), plus noise of ±0.5.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let epochs = 20;
    let trials: Vec<(f64, Vec<f64>)> = (0..60)
        .map(|_| {
            let a = if rng.random_bool(0.25) {
                rng.random_range(10.0..40.0)
            } else {
                rng.random_range(70.0..95.0)
            };
            let tau = rng.random_range(1.0..4.0);
            let curve = (0..epochs)
                .map(|t| a * (1.0 - (-(t as f64 + 1.0) / tau).exp()) + rng.random_range(-0.5..0.5))
                .collect();
            (a, curve)
        })
        .collect();
    let mut pruner = MedianStopping::new(MedianStoppingConfig {
        min_completed: 5,
        warmup_steps: 2,
    })
    .unwrap();
    let mut spent = 0;
    let mut pruned_finals = Vec::new();
    let mut completed_finals = Vec::new();
    for (id, (a, curve)) in trials.iter().enumerate() {
        let id = id as u64;
        let reference = pruner.completed() >= 5;
        match pruner.replay(id, curve) {
            Some(step) => {
                // A network that does not train is stopped right after the warm-up.
                if *a < 40.0 {
                    assert_eq!(step, 2, "trial {id}");
                }
                spent += step + 1;
                pruned_finals.push(*a);
                pruner.finish(id, &Outcome::Pruned(Metrics::new(curve[step])));
            }
            None => {
                assert!(
                    !(reference && *a < 40.0),
                    "trial {id} does not train but ran to the end"
                );
                spent += epochs;
                completed_finals.push(*a);
                pruner.finish(id, &Outcome::Complete(Metrics::new(curve[epochs - 1])));
            }
        }
    }
    let full = trials.len() * epochs;
    let saved = 1.0 - spent as f64 / full as f64;
    eprintln!(
        "median stopping: {} of {} trials pruned, {:.0} % of epochs saved",
        pruned_finals.len(),
        trials.len(),
        100.0 * saved
    );
    assert!(saved > 0.15, "saved only {saved}");
    let best = trials.iter().map(|t| t.0).fold(f64::MIN, f64::max);
    assert!(completed_finals.contains(&best), "the best trial completed");
    // Every trial of the top decile completed.
    let mut finals: Vec<f64> = trials.iter().map(|t| t.0).collect();
    finals.sort_by(|a, b| b.total_cmp(a));
    for top in &finals[..6] {
        assert!(completed_finals.contains(top), "{top} was pruned");
    }
    assert_eq!(pruner.completed(), completed_finals.len());
}
