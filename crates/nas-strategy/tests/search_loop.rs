//! The search loop from the outside: a strategy defined here, stopping rules, parallel
//! workers, failures, results and observers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nas_estimate::{Budget, EstimateError, Metrics};
use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas_space::{Canonicalize, Enumerable};
use nas_strategy::observe::{LogObserver, Observer, Progress, ProgressObserver, StartInfo};
use nas_strategy::search::{SearchResult, StopReason, TrialRecord, read_journal};
use nas_strategy::{
    Outcome, Pending, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, Search,
    Strategy, StrategyError, Trial, TrialId,
};

/// A distinct value for every cell: the cell's index in base 5, read from the last edge.
fn score(a: &Nb201Arch) -> f64 {
    a.edges
        .iter()
        .enumerate()
        .map(|(e, o)| (o.index() * 5usize.pow(e as u32)) as f64)
        .sum()
}

/// A parameter-like cost: convolutions are expensive.
fn cost(a: &Nb201Arch) -> f64 {
    a.edges
        .iter()
        .map(|o| match o {
            Nb201Op::NorConv3x3 => 9.0,
            Nb201Op::NorConv1x1 => 1.0,
            _ => 0.0,
        })
        .sum()
}

fn estimator(a: &Nb201Arch, _: &Budget) -> Result<Metrics, EstimateError> {
    Ok(Metrics::new(score(a)).with("params", cost(a)))
}

/// What makes two searches the same: each trial's id, cell and outcome, in order.
fn key(r: &SearchResult<Nb201Arch>) -> Vec<(u64, Nb201Arch, Outcome)> {
    r.trials
        .iter()
        .map(|t| (t.id, t.arch, t.outcome.clone()))
        .collect()
}

fn rea(seed: u64) -> RegularizedEvolution<Nb201Space> {
    RegularizedEvolution::new(RegularizedEvolutionConfig::nb201(), seed).unwrap()
}

/// A strategy written outside the crate: walks a finite space in index order, then proposes
/// nothing (which ends the search).
struct Sweep {
    next: u128,
    pending: Pending<Nb201Arch>,
}

impl<S: Enumerable<Arch = Nb201Arch>> Strategy<S> for Sweep {
    fn ask(&mut self, space: &S) -> Result<Trial<Nb201Arch>, StrategyError> {
        if self.next >= space.size() {
            return Err(StrategyError::Exhausted(space.size() as usize));
        }
        let arch = space.arch_at(self.next)?;
        self.next += 1;
        Ok(self.pending.open(arch))
    }

    fn tell(&mut self, id: TrialId, _outcome: Outcome) -> Result<(), StrategyError> {
        self.pending.close(id).map(drop)
    }

    fn ask_batch(&mut self, space: &S, n: usize) -> Result<Vec<Trial<Nb201Arch>>, StrategyError> {
        let left = space.size().saturating_sub(self.next) as usize;
        (0..n.min(left)).map(|_| self.ask(space)).collect()
    }
}

#[test]
fn a_strategy_defined_outside_the_crate_runs_on_three_workers() {
    let space = Nb201Space::with_ops(&[Nb201Op::None, Nb201Op::SkipConnect]).unwrap();
    let mut sweep = Sweep {
        next: 0,
        pending: Pending::default(),
    };
    let result = Search::new(&space, &mut sweep)
        .trials(1000)
        .run_parallel(3, |_| estimator)
        .unwrap();
    // The space has 64 cells: each evaluated once, then the strategy had nothing to propose.
    assert_eq!(result.stop, Some(StopReason::NoProposal));
    assert_eq!(result.trials.len(), 64);
    let cells: HashSet<Nb201Arch> = result.trials.iter().map(|t| t.arch).collect();
    assert_eq!(cells.len(), 64);
    let best = space.iter().map(|a| score(&a)).fold(f64::MIN, f64::max);
    assert_eq!(result.best().unwrap().objective(), Some(best));
}

#[test]
fn every_rule_stops_the_search() {
    let space = Nb201Space::default();

    // Trial budget.
    let r = Search::new(&space, &mut RandomSearch::new(1))
        .trials(30)
        .run(&mut estimator)
        .unwrap();
    assert_eq!((r.trials.len(), r.stop), (30, Some(StopReason::Trials)));

    // Target: one worker, so the search stops right after the first trial that reaches it.
    let target = 12_000.0;
    let r = Search::new(&space, &mut rea(2))
        .trials(5_000)
        .target(target)
        .run(&mut estimator)
        .unwrap();
    assert_eq!(r.stop, Some(StopReason::Target));
    let (last, before) = r.trials.split_last().unwrap();
    assert!(last.objective().unwrap() >= target);
    assert!(before.iter().all(|t| t.objective().unwrap() < target));

    // Wall time: 2 ms per trial, a 40 ms budget, no trial budget.
    let clock = Instant::now();
    let r = Search::new(&space, &mut rea(3))
        .wall_time(Duration::from_millis(40))
        .run_parallel(2, |_| {
            |a: &Nb201Arch, b: &Budget| {
                std::thread::sleep(Duration::from_millis(2));
                estimator(a, b)
            }
        })
        .unwrap();
    assert_eq!(r.stop, Some(StopReason::WallTime));
    assert!(
        (2..=60).contains(&r.trials.len()),
        "{} trials",
        r.trials.len()
    );
    assert!(clock.elapsed() < Duration::from_secs(2));

    // No rule, no workers, a NaN target: typed errors before anything runs.
    let stop = Search::new(&space, &mut rea(4))
        .run(&mut estimator)
        .unwrap_err();
    assert!(matches!(
        stop.error,
        StrategyError::InvalidConfig {
            field: "stopping rule",
            ..
        }
    ));
    let stop = Search::new(&space, &mut rea(4))
        .trials(5)
        .run_parallel(0, |_| estimator)
        .unwrap_err();
    assert!(matches!(
        stop.error,
        StrategyError::InvalidConfig {
            field: "workers",
            ..
        }
    ));
    let stop = Search::new(&space, &mut rea(4))
        .target(f64::NAN)
        .run(&mut estimator)
        .unwrap_err();
    assert!(stop.error.to_string().contains("target"), "{}", stop.error);
}

#[test]
fn two_workers_finish_every_trial_once_and_journal_each() {
    let space = Nb201Space::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trials.jsonl");
    let r = Search::new(&space, &mut rea(5))
        .trials(40)
        .journal(&path)
        .seed(5)
        .run_parallel(2, |_| estimator)
        .unwrap();
    assert_eq!(r.trials.len(), 40);
    let ids: HashSet<u64> = r.trials.iter().map(|t| t.id).collect();
    assert_eq!(ids, (0..40).collect());
    assert!(r.trials.iter().all(|t| t.worker < 2 && t.seed == Some(5)));
    assert!(
        r.trials
            .iter()
            .all(|t| t.ended_at >= t.started_at && t.started_at > 0.0)
    );
    // Each trial was told after it was handed out, and never more than 2 were out at once.
    for (told, t) in r.trials.iter().enumerate() {
        assert!(t.issued > t.id && t.issued <= told as u64 + 2, "{t:?}");
    }

    let text = std::fs::read_to_string(&path).unwrap();
    let journal: Vec<TrialRecord<Nb201Arch>> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(journal, r.trials);
    // The public reader gives the same records; a missing journal is an error naming it, and
    // a torn last line (a killed write) is left out.
    assert_eq!(read_journal::<Nb201Arch>(&path).unwrap(), r.trials);
    let missing = dir.path().join("none.jsonl");
    let e = read_journal::<Nb201Arch>(&missing).unwrap_err();
    assert!(e.to_string().contains("none.jsonl"), "{e}");
    let torn = dir.path().join("torn.jsonl");
    std::fs::write(&torn, format!("{text}{{\"id\": 40, \"ar")).unwrap();
    assert_eq!(read_journal::<Nb201Arch>(&torn).unwrap(), r.trials);

    // Resuming a finished search with more workers and a larger budget repeats nothing.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let more = Search::new(&space, &mut rea(5))
        .trials(50)
        .journal(&path)
        .seed(5)
        .run_parallel(3, |_| {
            |a: &Nb201Arch, b: &Budget| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                estimator(a, b)
            }
        })
        .unwrap();
    assert_eq!(calls.into_inner(), 10);
    assert_eq!(more.trials[..40], r.trials[..]);
    let ids: HashSet<u64> = more.trials.iter().map(|t| t.id).collect();
    assert_eq!(ids, (0..50).collect());

    // Another seed is refused, and the journal is left as it was.
    let stop = Search::new(&space, &mut rea(5))
        .trials(60)
        .journal(&path)
        .seed(6)
        .run(&mut estimator)
        .unwrap_err();
    assert!(
        matches!(stop.error, StrategyError::JournalMismatch { line: 1, .. }),
        "{}",
        stop.error
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 50);
}

#[test]
fn one_worker_is_reproducible_in_or_out_of_a_thread() {
    let space = Nb201Space::default();
    let a = Search::new(&space, &mut rea(7))
        .trials(80)
        .run(&mut estimator)
        .unwrap();
    let b = Search::new(&space, &mut rea(7))
        .trials(80)
        .run_parallel(1, |_| estimator)
        .unwrap();
    assert_eq!(key(&a), key(&b));
    let c = Search::new(&space, &mut rea(8))
        .trials(80)
        .run(&mut estimator)
        .unwrap();
    assert_ne!(key(&a), key(&c));
}

#[test]
fn synchronous_rounds_are_reproducible_with_any_worker_speed() {
    let space = Nb201Space::default();
    // Worker `w` sleeps longer on some cells than others, and the two runs swap the slow
    // worker, so trials finish in different orders; the rounds make the results equal.
    let slow = |slow_worker: usize| {
        move |worker: usize| {
            move |a: &Nb201Arch, b: &Budget| {
                let ms = if worker == slow_worker {
                    1 + (score(a) as u64 % 3)
                } else {
                    0
                };
                std::thread::sleep(Duration::from_millis(ms));
                estimator(a, b)
            }
        }
    };
    let run = |slow_worker: usize| {
        Search::new(&space, &mut rea(3))
            .trials(60)
            .synchronous()
            .run_parallel(3, slow(slow_worker))
            .unwrap()
    };
    let (a, b) = (run(0), run(2));
    assert_eq!(a.trials.len(), 60);
    assert_eq!(key(&a), key(&b));
    // Told in trial order within each round of three.
    for round in a.trials.chunks(3) {
        assert!(round.windows(2).all(|w| w[0].id < w[1].id));
    }
}

#[test]
fn estimator_failures_and_panics_fail_only_their_trial() {
    let space = Nb201Space::default();
    let r = Search::new(&space, &mut RandomSearch::new(3))
        .trials(60)
        .run_parallel(2, |_| {
            |a: &Nb201Arch, b: &Budget| match a.edges[0] {
                Nb201Op::None => Err(EstimateError::Failed("diverged".into())),
                Nb201Op::SkipConnect => Ok(Metrics::new(f64::NAN)),
                Nb201Op::AvgPool3x3 if a.edges[1] == Nb201Op::None => {
                    panic!("shape mismatch")
                }
                _ => estimator(a, b).map(|m| {
                    m.with("broken", f64::INFINITY)
                        .with_curve("loss", vec![1.0, f64::NAN])
                }),
            }
        })
        .unwrap();
    assert_eq!(r.trials.len(), 60);
    let failed = |why: &str| {
        r.trials
            .iter()
            .filter(|t| matches!(&t.outcome, Outcome::Failed(w) if w.contains(why)))
            .count()
    };
    assert!(failed("diverged") > 0);
    assert!(failed("non-finite objective") > 0);
    assert!(failed("panicked: shape mismatch") > 0);
    // Non-finite measurements are dropped (they could not be journaled and read back).
    for m in r.complete().filter_map(|t| t.outcome.complete()) {
        assert_eq!(m.get("broken"), None);
        assert_eq!(m.curves["loss"], vec![1.0]);
    }
}

#[test]
fn a_strategy_error_keeps_every_finished_trial() {
    // 64 cells but fewer canonical classes: deduplicating random search runs out.
    let space = Nb201Space::with_ops(&[Nb201Op::None, Nb201Op::SkipConnect]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trials.jsonl");
    let mut rs = RandomSearch::new(0);
    let stop = Search::new(&space, &mut rs)
        .trials(1000)
        .journal(&path)
        .run_parallel(2, |_| estimator)
        .unwrap_err();
    let StrategyError::Exhausted(classes) = stop.error else {
        panic!("{}", stop.error)
    };
    // The batch that failed may have taken one proposal with it; every other class was
    // evaluated, once, and journaled.
    let done = &stop.partial.trials;
    assert!(
        done.len() == classes || done.len() + 1 == classes,
        "{} of {classes}",
        done.len()
    );
    let forms: HashSet<_> = done
        .iter()
        .map(|t| space.canonical(&t.arch).unwrap())
        .collect();
    assert_eq!(forms.len(), done.len());
    assert_eq!(stop.partial.stop, None);
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, done.len());
}

#[test]
fn top_k_pareto_front_and_json_export() {
    let space = Nb201Space::default();
    let r = Search::new(&space, &mut RandomSearch::new(11).without_dedup())
        .trials(300)
        .run(&mut |a: &Nb201Arch, b: &Budget| {
            // A coarse objective, so that ties and repeated canonical forms occur.
            estimator(a, b).map(|m| Metrics {
                objective: cost(a),
                ..m
            })
        })
        .unwrap();

    let top = r.top_k(10);
    assert_eq!(top.len(), 10);
    assert!(top.windows(2).all(|w| w[0].objective() >= w[1].objective()));
    assert_eq!(top[0].objective(), r.best().unwrap().objective());
    assert_eq!(top.iter().map(|t| t.arch).collect::<HashSet<_>>().len(), 10);
    let all = r.top_k(usize::MAX);
    let distinct: HashSet<_> = r.trials.iter().map(|t| t.arch).collect();
    assert_eq!(all.len(), distinct.len());

    let canonical = r.top_k_canonical(&space, 10).unwrap();
    let forms: HashSet<_> = canonical
        .iter()
        .map(|t| space.canonical(&t.arch).unwrap())
        .collect();
    assert_eq!(forms.len(), 10);

    // Pareto front over (objective up, a second cost down): nothing beats a front member on
    // both, and every other trial is beaten by (or equal to) some front member.
    let r2 = SearchResult::from_trials(
        r.trials
            .iter()
            .map(|t| {
                let mut t = t.clone();
                if let Outcome::Complete(m) = &mut t.outcome {
                    m.objective = score(&t.arch);
                }
                t
            })
            .collect(),
    );
    let front = r2.pareto_front("params").unwrap();
    let point = |t: &TrialRecord<Nb201Arch>| (t.objective().unwrap(), t.metric("params").unwrap());
    let beats = |a: (f64, f64), b: (f64, f64)| a.0 >= b.0 && a.1 <= b.1 && a != b;
    assert!(front.windows(2).all(|w| point(w[0]).1 < point(w[1]).1));
    for f in &front {
        assert!(!r2.trials.iter().any(|t| beats(point(t), point(f))));
    }
    for t in &r2.trials {
        assert!(
            front
                .iter()
                .any(|f| beats(point(f), point(t)) || point(f) == point(t))
        );
    }
    let missing = r2.pareto_front("latency_ms").unwrap_err();
    assert!(
        matches!(&missing, StrategyError::MissingMetric { available, .. } if available == "params"),
        "{missing}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.json");
    r.save_json(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["stop"], "trials");
    assert_eq!(
        value["best"]["id"].as_u64(),
        Some(r.best().unwrap().id),
        "the export names the best trial"
    );
    let back: SearchResult<Nb201Arch> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    let bad = r.save_json(dir.path().join("no/such/dir/result.json"));
    assert!(matches!(bad, Err(StrategyError::Export { .. })));
}

#[derive(Default)]
struct Counter {
    starts: usize,
    trial_starts: usize,
    trial_ends: usize,
    finishes: usize,
    last: Option<Progress>,
    info: Option<StartInfo>,
}

impl<A> Observer<A> for &mut Counter {
    fn on_start(&mut self, info: &StartInfo) {
        self.starts += 1;
        self.info = Some(info.clone());
    }
    fn on_trial_start(&mut self, _: &Trial<A>, worker: usize) {
        assert!(worker < 2);
        self.trial_starts += 1;
    }
    fn on_trial_end(&mut self, _: &TrialRecord<A>, progress: &Progress) {
        self.trial_ends += 1;
        assert_eq!(progress.finished, self.trial_ends);
        self.last = Some(*progress);
    }
    fn on_finish(&mut self, result: &SearchResult<A>) {
        self.finishes += 1;
        assert_eq!(result.trials.len(), self.trial_ends);
    }
}

#[test]
fn observers_see_every_event() {
    let space = Nb201Space::default();
    let mut counter = Counter::default();
    let mut log = Vec::new();
    let mut seen = 0;
    let bar = ProgressObserver::new().quiet(true);
    assert!(bar.is_hidden());
    let r = Search::new(&space, &mut rea(9))
        .trials(25)
        .observer(&mut counter)
        .observer(LogObserver::new(&mut log).with_arch_format(|a: &Nb201Arch| a.to_string()))
        .observer(|_: &TrialRecord<Nb201Arch>| seen += 1)
        .observer(bar)
        .run_parallel(2, |_| estimator)
        .unwrap();
    assert_eq!(
        (
            counter.starts,
            counter.trial_starts,
            counter.trial_ends,
            counter.finishes,
            seen
        ),
        (1, 25, 25, 1, 25)
    );
    let info = counter.info.unwrap();
    assert_eq!(
        (info.planned, info.workers, info.replayed),
        (Some(25), 2, 0)
    );
    let last = counter.last.unwrap();
    assert_eq!(last.best, r.best().unwrap().objective());
    assert_eq!(last.running, 0);

    let log = String::from_utf8(log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 25 + 2, "{log}");
    assert!(lines[0].contains("25 trials, 2 workers"), "{}", lines[0]);
    assert!(lines[25].starts_with("[25/25] trial "), "{}", lines[25]);
    assert!(lines[25].contains("|nor_conv") || lines[25].contains("~0|"));
    assert!(
        lines[26].contains("stopped by the trial budget"),
        "{}",
        lines[26]
    );
    assert_eq!(r.trials.len(), 25);
}

/// Curves of `steps` values, `value(arch, step)` each, reported step by step (a training
/// estimator's shape without the training); a stopped estimate returns its curve so far.
struct CurveFn {
    steps: usize,
    value: fn(&nas_space::nb201::Nb201Arch, usize) -> f64,
}

impl nas_estimate::Estimator<nas_space::nb201::Nb201Arch> for CurveFn {
    fn estimate(
        &mut self,
        arch: &nas_space::nb201::Nb201Arch,
        budget: &nas_estimate::Budget,
    ) -> Result<nas_estimate::Metrics, nas_estimate::EstimateError> {
        self.estimate_reporting(arch, budget, &mut |_, _| false)
            .map(|e| e.metrics)
    }

    fn estimate_reporting(
        &mut self,
        arch: &nas_space::nb201::Nb201Arch,
        _budget: &nas_estimate::Budget,
        report: &mut dyn FnMut(usize, f64) -> bool,
    ) -> Result<nas_estimate::Estimate, nas_estimate::EstimateError> {
        let mut curve = Vec::new();
        for step in 0..self.steps {
            let v = (self.value)(arch, step);
            curve.push(v);
            if report(step, v) {
                return Ok(nas_estimate::Estimate {
                    metrics: nas_estimate::Metrics::new(v).with_curve("valid_accuracy", curve),
                    stopped_early: true,
                });
            }
        }
        Ok(nas_estimate::Estimate {
            metrics: nas_estimate::Metrics::new(*curve.last().unwrap())
                .with_curve("valid_accuracy", curve),
            stopped_early: false,
        })
    }
}

/// 3×3 convolutions of a cell.
fn convs(arch: &nas_space::nb201::Nb201Arch) -> f64 {
    arch.edges
        .iter()
        .filter(|o| o.name() == "nor_conv_3x3")
        .count() as f64
}

/// Linear curves: a cell with `q` 3×3 convolutions gives `q · (1 + step) / 10` at each of 10
/// steps.
fn curves() -> CurveFn {
    CurveFn {
        steps: 10,
        value: |arch, step| convs(arch) * (1.0 + step as f64) / 10.0,
    }
}

/// Saturating curves in percent: a cell's final value (40 + 8 per 3×3 convolution) grows
/// with its 3×3 convolutions.
fn saturating_curves() -> CurveFn {
    CurveFn {
        steps: 10,
        value: |arch, step| 40.0 + 8.0 * convs(arch) - 30.0 / (1.0 + step as f64) + 3.0,
    }
}

/// Rising curves whose values differ from cell to cell (so quantiles move with every trial).
fn distinct_curves() -> CurveFn {
    CurveFn {
        steps: 8,
        value: |arch, step| {
            let f: f64 = arch
                .edges
                .iter()
                .enumerate()
                .map(|(i, o)| (o.index() as f64 + 1.0) * ((i + 2) as f64).powf(1.37))
                .sum();
            f * (1.0 + step as f64).sqrt()
        },
    }
}

#[test]
fn median_stopping_prunes_through_the_loop_and_survives_resume() {
    use nas_strategy::{MedianStopping, MedianStoppingConfig, Outcome, RandomSearch, Search};
    let space = nas_space::nb201::Nb201Space::default();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("trials.jsonl");
    let run = |n: usize| {
        let mut rs = RandomSearch::<nas_space::nb201::Nb201Space>::new(4);
        Search::new(&space, &mut rs)
            .trials(n)
            .seed(4)
            .journal(&journal)
            .pruner(MedianStopping::new(MedianStoppingConfig::default()).unwrap())
            .run(&mut curves())
            .unwrap()
    };
    let first = run(20);
    let pruned = |r: &nas_strategy::search::SearchResult<_>| {
        r.trials
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Pruned(_)))
            .count()
    };
    assert!(pruned(&first) > 0, "some trials fall below the median");
    assert!(
        first
            .trials
            .iter()
            .any(|t| matches!(t.outcome, Outcome::Complete(_)))
    );
    // Resumed: the journal's trials are replayed into the pruner, and pruning goes on.
    let resumed = run(40);
    assert_eq!(resumed.trials[..20], first.trials[..]);
    assert!(pruned(&resumed) > pruned(&first));
}

#[test]
fn learning_curve_pruner_stops_hopeless_trials_through_the_loop_and_resumes_alike() {
    use nas_strategy::{
        LearningCurveConfig, LearningCurvePruner, Outcome, RandomSearch, Search, TrialId,
    };
    let space = nas_space::nb201::Nb201Space::default();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("trials.jsonl");
    let run = |n: usize| {
        let mut rs = RandomSearch::<nas_space::nb201::Nb201Space>::new(5);
        Search::new(&space, &mut rs)
            .trials(n)
            .seed(5)
            .journal(&journal)
            .pruner(LearningCurvePruner::new(LearningCurveConfig::new(9, 100.0)).unwrap())
            .run(&mut saturating_curves())
            .unwrap()
    };
    let first = run(20);
    let steps = |r: &nas_strategy::search::SearchResult<nas_space::nb201::Nb201Arch>| -> Vec<(TrialId, usize)> {
        r.trials
            .iter()
            .map(|t| {
                let m = match &t.outcome {
                    Outcome::Complete(m) | Outcome::Pruned(m) => m,
                    other => panic!("{other:?}"),
                };
                (t.id, m.curves["valid_accuracy"].len())
            })
            .collect()
    };
    let used = steps(&first);
    let total: usize = used.iter().map(|u| u.1).sum();
    assert!(
        total < 20 * 10 * 3 / 4,
        "{used:?}: saved under a quarter of the epochs"
    );
    // Every stopped trial would have ended below the best completed one.
    let finals =
        |r: &nas_strategy::search::SearchResult<nas_space::nb201::Nb201Arch>| -> (f64, Vec<f64>) {
            let best = r
                .trials
                .iter()
                .filter_map(|t| t.outcome.complete().map(|m| m.objective))
                .fold(f64::NEG_INFINITY, f64::max);
            let stopped = r
                .trials
                .iter()
                .filter(|t| matches!(t.outcome, Outcome::Pruned(_)))
                .map(|t| 40.0 + 8.0 * convs(&t.arch))
                .collect();
            (best, stopped)
        };
    let (best, stopped) = finals(&first);
    assert!(!stopped.is_empty());
    assert!(
        stopped.iter().all(|&f| f < best),
        "{stopped:?} against {best}"
    );
    // Resumed: the journal's curves are replayed into the pruner, which decides as before.
    let resumed = run(30);
    assert_eq!(resumed.trials[..20], first.trials[..]);
    assert_eq!(steps(&resumed)[..20], used[..]);
}

#[test]
fn stage_stopping_resumes_to_the_same_decisions_as_an_uninterrupted_run() {
    use nas_strategy::{RandomSearch, Search, Stage, StageStopping, StageStoppingConfig};
    let space = nas_space::nb201::Nb201Space::default();
    let dir = tempfile::tempdir().unwrap();
    let run = |n: usize, journal: &std::path::Path| {
        let mut rs = RandomSearch::<nas_space::nb201::Nb201Space>::new(6);
        Search::new(&space, &mut rs)
            .trials(n)
            .seed(6)
            .journal(journal)
            .pruner(
                StageStopping::new(StageStoppingConfig {
                    stages: vec![Stage::quantile(2, 0.5), Stage::quantile(5, 0.5)],
                    min_trials: 3,
                })
                .unwrap(),
            )
            .run(&mut distinct_curves())
            .unwrap()
    };
    let interrupted = dir.path().join("interrupted.jsonl");
    let first = run(15, &interrupted);
    assert!(
        first
            .trials
            .iter()
            .any(|t| matches!(t.outcome, nas_strategy::Outcome::Pruned(_)))
    );
    let resumed = run(30, &interrupted);
    let whole = run(30, &dir.path().join("whole.jsonl"));
    let outcomes = |r: &nas_strategy::search::SearchResult<nas_space::nb201::Nb201Arch>| {
        r.trials
            .iter()
            .map(|t| (t.id, t.outcome.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes(&resumed), outcomes(&whole));
}
