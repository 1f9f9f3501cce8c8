//! Kill a journaled search in a child process, then resume it here: the result must equal an
//! uninterrupted run's, and no finished trial may be estimated twice.
//!
//! The child is this test binary again, started with `NAS_KILL_RESUME_CHILD` set to the
//! journal's path. The estimator is the NAS-Bench-201 table when `$NAS_NB201_CSV` names it
//! (CI sets it when the table is beside the checkout), else a deterministic synthetic
//! objective; the child's estimates block after a fixed number of trials, so it is killed
//! mid-run at a known point, never racing the parent.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nas_estimate::tabular::{Nb201Dataset, Nb201Table};
use nas_estimate::{Budget, EstimateError, Estimator, Metrics};
use nas_space::nb201::{Nb201Arch, Nb201Space};
use nas_strategy::observe::{Observer, StartInfo};
use nas_strategy::search::{SearchResult, StopReason, TrialRecord};
use nas_strategy::{Outcome, RegularizedEvolution, RegularizedEvolutionConfig, Search};

const CHILD: &str = "NAS_KILL_RESUME_CHILD";
const TEST: &str = "a_killed_search_resumes_to_the_uninterrupted_result";
const TRIALS: usize = 150;
const SEED: u64 = 3;

/// The objective: the table's CIFAR-10 accuracy, or a synthetic one without the table.
struct Objective(Option<Nb201Table>);

impl Objective {
    fn load() -> Self {
        let table = Nb201Table::path_from_env().and_then(|p| Nb201Table::open(p).ok());
        if table.is_none() {
            if std::env::var_os("NAS_REQUIRE_DATA").is_some_and(|v| v == "1") {
                panic!("NAS_REQUIRE_DATA=1 but NAS_NB201_CSV is not set or not readable");
            }
            eprintln!("NAS_NB201_CSV not set or unreadable: using a synthetic objective");
        }
        Self(table)
    }

    fn estimate(&self, arch: &Nb201Arch) -> Result<Metrics, EstimateError> {
        match &self.0 {
            Some(table) => table
                .estimator(Nb201Dataset::Cifar10)
                .estimate(arch, &Budget::full()),
            None => {
                let v = arch
                    .edges
                    .iter()
                    .enumerate()
                    .map(|(e, o)| ((o.index() * 7 + e * 3) % 11) as f64)
                    .sum();
                Ok(Metrics::new(v))
            }
        }
    }
}

fn rea() -> RegularizedEvolution<Nb201Space> {
    RegularizedEvolution::new(RegularizedEvolutionConfig::nb201(), SEED).unwrap()
}

/// Trials the one-worker child finishes before its estimates block.
const JOURNALED: usize = 40;

/// What the child does: the journaled search, whose estimates never return after the first
/// `JOURNALED`, so it is killed mid-run however loaded the machine is.
fn child(journal: &Path) {
    let objective = Objective::load();
    let space = Nb201Space::default();
    let mut calls = 0;
    let mut slow = |a: &Nb201Arch, _: &Budget| {
        calls += 1;
        if calls > JOURNALED {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        objective.estimate(a)
    };
    Search::new(&space, &mut rea())
        .trials(TRIALS)
        .journal(journal)
        .seed(SEED)
        .run(&mut slow)
        .unwrap();
}

fn complete_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

fn key(r: &SearchResult<Nb201Arch>) -> Vec<(u64, Nb201Arch, Outcome)> {
    r.trials
        .iter()
        .map(|t| (t.id, t.arch, t.outcome.clone()))
        .collect()
}

/// Keeps what the search reported when it started.
struct Info<'a>(&'a mut Option<StartInfo>);

impl<A> Observer<A> for Info<'_> {
    fn on_start(&mut self, info: &StartInfo) {
        *self.0 = Some(info.clone());
    }
}

#[test]
fn a_killed_search_resumes_to_the_uninterrupted_result() {
    if let Some(journal) = std::env::var_os(CHILD) {
        child(Path::new(&journal));
        std::process::exit(0);
    }
    let objective = Objective::load();
    let space = Nb201Space::default();
    let calls = std::cell::Cell::new(0);
    let mut counting = |a: &Nb201Arch, _: &Budget| {
        calls.set(calls.get() + 1);
        objective.estimate(a)
    };
    let full = Search::new(&space, &mut rea())
        .trials(TRIALS)
        .seed(SEED)
        .run(&mut counting)
        .unwrap();
    assert_eq!(calls.replace(0), TRIALS);

    // Start the child and kill it once it has journaled some trials.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trials.jsonl");
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let clock = Instant::now();
    while complete_lines(&path) < JOURNALED {
        if let Some(status) = process.try_wait().unwrap() {
            panic!("the child ended ({status}) before it could be killed");
        }
        if clock.elapsed() > Duration::from_secs(60) {
            process.kill().unwrap();
            panic!(
                "the child journaled {} trials in 60 s",
                complete_lines(&path)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    process.kill().unwrap();
    process.wait().unwrap();
    assert_eq!(complete_lines(&path), JOURNALED);

    // A kill in the middle of a write leaves a partial last line: make sure there is one, by
    // cutting the last line in half if the kill did not.
    let mut bytes = std::fs::read(&path).unwrap();
    if bytes.ends_with(b"\n") {
        let start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        bytes.truncate(start + (bytes.len() - start) / 2);
        std::fs::write(&path, &bytes).unwrap();
    }
    let kept: Vec<TrialRecord<Nb201Arch>> = std::str::from_utf8(&bytes)
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let copy = dir.path().join("copy.jsonl");
    std::fs::copy(&path, &copy).unwrap();

    // Resume with one worker: the same trials as the uninterrupted run, the finished ones
    // replayed (not estimated), the torn one dropped and run again.
    let mut info = None;
    let resumed = Search::new(&space, &mut rea())
        .trials(TRIALS)
        .journal(&path)
        .seed(SEED)
        .observer(Info(&mut info))
        .run(&mut counting)
        .unwrap();
    let info = info.unwrap();
    assert_eq!(info.replayed, kept.len());
    assert_eq!(info.torn_line, Some(kept.len() + 1));
    assert_eq!(calls.replace(0), TRIALS - kept.len());
    assert_eq!(resumed.trials[..kept.len()], kept[..]);
    assert_eq!(key(&resumed), key(&full));
    assert_eq!(resumed.best_so_far(), full.best_so_far());
    assert_eq!(resumed.stop, Some(StopReason::Trials));
    let journal: Vec<TrialRecord<Nb201Arch>> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(journal, resumed.trials);

    // Resume the same killed journal with three workers: nothing finished is repeated.
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let parallel = Search::new(&space, &mut rea())
        .trials(TRIALS)
        .journal(&copy)
        .seed(SEED)
        .run_parallel(3, |_| {
            |a: &Nb201Arch, _: &Budget| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                objective.estimate(a)
            }
        })
        .unwrap();
    assert_eq!(counter.into_inner(), TRIALS - kept.len());
    assert_eq!(parallel.trials[..kept.len()], kept[..]);
    let ids: HashSet<u64> = parallel.trials.iter().map(|t| t.id).collect();
    assert_eq!(ids, (0..TRIALS as u64).collect());
    assert_eq!(complete_lines(&copy), TRIALS);
}

const CHILD_PARALLEL: &str = "NAS_KILL_RESUME_PARALLEL_CHILD";
const TEST_PARALLEL: &str = "a_search_killed_with_trials_running_on_three_workers_reruns_them";
/// Trials the parallel child finishes (seven rounds of three) before every estimate blocks.
const FINISHED: usize = 21;

/// Three workers; the estimates after the first `FINISHED` never return, so the child is
/// killed with trials handed out and running (no race on timing).
fn child_parallel(journal: &Path) {
    let objective = Objective::load();
    let space = Nb201Space::default();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let _ = Search::new(&space, &mut rea())
        .trials(TRIALS)
        .journal(journal)
        .seed(SEED)
        .run_parallel(3, |_| {
            |a: &Nb201Arch, _: &Budget| {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= FINISHED {
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                objective.estimate(a)
            }
        });
}

/// The objective, counting its calls.
fn counting<'a>(
    objective: &'a Objective,
    calls: &'a std::sync::atomic::AtomicUsize,
) -> impl FnMut(&Nb201Arch, &Budget) -> Result<Metrics, EstimateError> + 'a {
    move |a: &Nb201Arch, _: &Budget| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        objective.estimate(a)
    }
}

#[test]
fn a_search_killed_with_trials_running_on_three_workers_reruns_them() {
    if let Some(journal) = std::env::var_os(CHILD_PARALLEL) {
        child_parallel(Path::new(&journal));
        std::process::exit(0);
    }
    let objective = Objective::load();
    let space = Nb201Space::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trials.jsonl");
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([TEST_PARALLEL, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_PARALLEL, &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let clock = Instant::now();
    while complete_lines(&path) < FINISHED {
        if let Some(status) = process.try_wait().unwrap() {
            panic!("the child ended ({status}) before it could be killed");
        }
        if clock.elapsed() > Duration::from_secs(120) {
            process.kill().unwrap();
            panic!(
                "the child journaled {} trials in 120 s",
                complete_lines(&path)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The child cannot finish another trial: every estimate after the 21st blocks.
    std::thread::sleep(Duration::from_millis(100));
    process.kill().unwrap();
    process.wait().unwrap();
    assert_eq!(complete_lines(&path), FINISHED);
    let kept: Vec<TrialRecord<Nb201Arch>> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // The trials handed out before the last record was written and never finished.
    let issued = kept.iter().map(|t| t.issued).max().unwrap() as usize;
    assert!(
        issued > FINISHED,
        "{issued} trials handed out when the last one finished"
    );

    // Resume with three workers: those trials are handed out again first (a rerun happened),
    // nothing finished is estimated again, and the search completes its trials.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let mut info = None;
    let resumed = Search::new(&space, &mut rea())
        .trials(TRIALS)
        .journal(&path)
        .seed(SEED)
        .observer(Info(&mut info))
        .run_parallel(3, |_| counting(&objective, &calls))
        .unwrap();
    let info = info.unwrap();
    assert_eq!(info.replayed, FINISHED);
    assert_eq!(
        info.rerun,
        issued - FINISHED,
        "the running trials are run again"
    );
    assert_eq!(info.torn_line, None);
    assert_eq!(calls.into_inner(), TRIALS - FINISHED);
    assert_eq!(resumed.trials[..FINISHED], kept[..]);
    assert_eq!(resumed.stop, Some(StopReason::Trials));
    let ids: HashSet<u64> = resumed.trials.iter().map(|t| t.id).collect();
    assert_eq!(ids, (0..TRIALS as u64).collect());
    assert_eq!(complete_lines(&path), TRIALS);
}
