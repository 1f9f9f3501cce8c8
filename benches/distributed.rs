//! Load on a study: `W` workers (default 8) finish `N` trials (default 2,000) of the
//! NAS-Bench-201 table estimator through PostgreSQL, against the same search run in one
//! process with `W` worker threads (`Search::run_parallel`, no database) as the reference.
//!
//! ```sh
//! scripts/with-postgres cargo bench --features postgres --bench distributed
//! ```
//!
//! Needs `NAS_TEST_DATABASE_URL` (set by `scripts/with-postgres`) and the table
//! (`$NAS_NB201_CSV`, else `../shared/data/nb201/nats_bench_tss_200ep.csv`). The workers are
//! threads of this process, each with its own connections (a claim, a heartbeat and an
//! outcome per trial, as a worker process on another machine would send). Prints trials per
//! second on both sides, the coordinator's CPU time per trial, and checks that every trial was
//! run and told exactly once. Settings: `NAS_BENCH_TRIALS`, `NAS_BENCH_WORKERS`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::study::{
    ConnectionString, Coordinator, CoordinatorOptions, StudySpec, Worker, WorkerOptions,
};
use nas::strategy::{RegularizedEvolution, RegularizedEvolutionConfig, Search};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This thread's CPU time (user + system), from /proc (Linux).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

fn config() -> RegularizedEvolutionConfig {
    RegularizedEvolutionConfig {
        population_size: 20,
        sample_size: 5,
    }
}

fn main() {
    let trials = setting("NAS_BENCH_TRIALS", 2_000);
    let workers = setting("NAS_BENCH_WORKERS", 8);
    let csv = std::env::var_os("NAS_NB201_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/nb201/nats_bench_tss_200ep.csv")
        });
    let table = Nb201Table::open(&csv)
        .unwrap_or_else(|e| panic!("the bench needs the NAS-Bench-201 table (NAS_NB201_CSV): {e}"));
    let url = ConnectionString::from_env("NAS_TEST_DATABASE_URL")
        .unwrap_or_else(|e| panic!("run the bench under scripts/with-postgres: {e}"));
    let space = Nb201Space::default();
    let in_flight = 2 * workers;
    println!(
        "settings: {trials} trials, {workers} workers, {in_flight} trials in flight, regularized \
         evolution (P 20, S 5), NAS-Bench-201 CIFAR-10 table estimator; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Reference: one process, `workers` threads, no database.
    let mut rea = RegularizedEvolution::new(config(), 0).unwrap();
    let start = Instant::now();
    let reference = Search::new(&space, &mut rea)
        .trials(trials)
        .run_parallel(workers, |_| table.estimator(Nb201Dataset::Cifar10))
        .expect("the reference search");
    let reference_s = start.elapsed().as_secs_f64();
    assert_eq!(reference.trials.len(), trials);

    // The study: `workers` worker threads, each with its own connections.
    let name = format!(
        "bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let spec = StudySpec::new(&name, &space)
        .strategy("regularized_evolution", &config(), 0)
        .unwrap()
        .objective("cifar10_test_accuracy");
    let options = CoordinatorOptions {
        in_flight,
        poll: Duration::from_millis(100),
        ..CoordinatorOptions::default()
    };
    let coordinator = Coordinator::open(&url, &spec, options).expect("the coordinator");
    let mut rea = RegularizedEvolution::new(config(), 0).unwrap();
    let (result, summaries, study_s, coordinator_cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (url, name, table, space) = (&url, &name, &table, &space);
                scope.spawn(move || {
                    let mut worker =
                        Worker::open(url, name, space, WorkerOptions::default()).expect("a worker");
                    let mut oracle = table.estimator(Nb201Dataset::Cifar10);
                    worker
                        .run::<Nb201Arch, _>(&mut oracle)
                        .expect("the worker's run")
                })
            })
            .collect();
        let cpu0 = thread_cpu();
        let start = Instant::now();
        let result = match Search::new(&space, &mut rea)
            .trials(trials)
            .run_study(coordinator)
        {
            Ok(r) => r,
            Err(e) => {
                // The workers would wait for a study that never ends: leave now.
                eprintln!("error: the study stopped: {e}");
                std::process::exit(1);
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        let cpu = thread_cpu().zip(cpu0).map(|(b, a)| (b - a).as_secs_f64());
        let summaries: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (result, summaries, seconds, cpu)
    });

    // Nothing lost, nothing run twice.
    let ids: BTreeSet<u64> = result.trials.iter().map(|t| t.id).collect();
    assert_eq!(result.trials.len(), trials, "told trials");
    assert_eq!(ids, (0..trials as u64).collect(), "every trial id once");
    let finished: usize = summaries.iter().map(|s| s.finished).sum();
    let lost: usize = summaries.iter().map(|s| s.lost).sum();
    assert_eq!(finished, trials, "trials the workers recorded");
    assert_eq!(lost, 0, "outcomes discarded");
    let per_worker: Vec<usize> = summaries.iter().map(|s| s.finished).collect();

    println!(
        "reference (one process, {workers} threads, no database): {reference_s:.2} s, {:.0} trials/s",
        trials as f64 / reference_s
    );
    println!(
        "study (PostgreSQL, {workers} workers): {study_s:.2} s, {:.0} trials/s; trials per worker {per_worker:?}",
        trials as f64 / study_s
    );
    if let Some(cpu) = coordinator_cpu {
        println!(
            "coordinator: {:.3} ms of CPU per trial (its thread: strategy, queries and bookkeeping), {:.3} ms of wall time per trial",
            1e3 * cpu / trials as f64,
            1e3 * study_s / trials as f64
        );
    }
    println!(
        "check: {trials} trials told, each id once, {finished} outcomes recorded by the workers, {lost} discarded"
    );
    println!(
        "ratio: the study takes {:.1}x the reference's time (a table look-up is microseconds: this is the \
         database's cost per trial, which a real training of minutes hides)",
        study_s / reference_s
    );
    println!(
        "best: reference {:.2}, study {:.2}",
        reference
            .best()
            .and_then(|t| t.objective())
            .unwrap_or(f64::NAN),
        result
            .best()
            .and_then(|t| t.objective())
            .unwrap_or(f64::NAN)
    );
}
