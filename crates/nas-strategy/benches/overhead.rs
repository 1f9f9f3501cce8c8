//! What a strategy and the search loop cost per trial, estimates aside.
//!
//! ```text
//! cargo bench -p nas-strategy --bench overhead
//! ```
//!
//! Part 1 times one `ask` + `tell` of each strategy on the NAS-Bench-201 space after a number
//! of observations (the cost of a strategy grows with its history for model-based ones), and
//! compares it with the issue's targets: regularized evolution under 1 ms, GP-BO under 50 ms at
//! 500 observations. Part 2 times a whole trial of the search loop with an estimator that costs
//! nothing: the loop's own overhead, with and without the journal and worker threads.
//!
//! The objective told back is the table's CIFAR-10 accuracy where `$NAS_NB201_CSV` names the
//! table, else a synthetic one; either way the strategies see realistic, tied and untied
//! values. A plain `harness = false` program rather than Criterion: the targets are
//! thresholds three orders of magnitude above the measured times, and Criterion would add
//! some thirty crates to every test build of the workspace.

use std::time::{Duration, Instant};

use nas_estimate::tabular::{Nb201Dataset, Nb201Table};
use nas_estimate::{Budget, EstimateError, Estimator, Metrics};
use nas_space::nb201::{Nb201Arch, Nb201Space};
use nas_strategy::{
    Outcome, Ppo, PpoConfig, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig,
    Reinforce, ReinforceConfig, Search, Strategy,
};

type Make = fn() -> Box<dyn Strategy<Nb201Space>>;

/// One strategy to time: its name, the number of observations it gets first, how many
/// ask + tell pairs to time, and the target for one pair in milliseconds.
struct Case {
    name: &'static str,
    warm: usize,
    pairs: usize,
    target_ms: Option<f64>,
    make: Make,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "regularized evolution, P = 10, S = 3",
            warm: 500,
            pairs: 20_000,
            target_ms: Some(1.0),
            make: || {
                Box::new(
                    RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 0)
                        .expect("valid config"),
                )
            },
        },
        Case {
            name: "regularized evolution, P = 100, S = 25",
            warm: 500,
            pairs: 20_000,
            target_ms: Some(1.0),
            make: || {
                Box::new(
                    RegularizedEvolution::<Nb201Space>::new(
                        RegularizedEvolutionConfig::default(),
                        0,
                    )
                    .expect("valid config"),
                )
            },
        },
        Case {
            name: "random search (deduplicated)",
            warm: 500,
            pairs: 2_000,
            target_ms: Some(1.0),
            make: || Box::new(RandomSearch::<Nb201Space>::new(0)),
        },
        Case {
            name: "REINFORCE, LSTM controller (short search: batches of 4)",
            warm: 500,
            pairs: 1_000,
            target_ms: None,
            make: || {
                Box::new(
                    Reinforce::<Nb201Space>::new(
                        &Nb201Space::default(),
                        ReinforceConfig::short_search(),
                        0,
                    )
                    .expect("valid config"),
                )
            },
        },
        Case {
            name: "PPO, LSTM controller (short search: batches of 8, 4 epochs)",
            warm: 500,
            pairs: 1_000,
            target_ms: None,
            make: || {
                Box::new(
                    Ppo::<Nb201Space>::new(&Nb201Space::default(), PpoConfig::short_search(), 0)
                        .expect("valid config"),
                )
            },
        },
        // One line per further strategy, e.g. GP-BO at 500 observations:
        // Case { name: "GP-BO", warm: 500, pairs: 20, target_ms: Some(50.0), make: || Box::new(..) },
    ]
}

/// The objective: the table's CIFAR-10 accuracy, or a synthetic one.
fn objective() -> impl Fn(&Nb201Arch) -> Metrics {
    let table = Nb201Table::path_from_env().and_then(|p| Nb201Table::open(p).ok());
    println!(
        "objective: {}",
        if table.is_some() {
            "NAS-Bench-201 CIFAR-10 test accuracy"
        } else {
            "synthetic (set NAS_NB201_CSV for the table)"
        }
    );
    move |a: &Nb201Arch| match &table {
        Some(t) => t
            .estimator(Nb201Dataset::Cifar10)
            .estimate(a, &Budget::full())
            .unwrap_or_else(|_| Metrics::new(0.0)),
        None => Metrics::new(
            a.edges
                .iter()
                .enumerate()
                .map(|(e, o)| ((o.index() * 7 + e * 3) % 11) as f64)
                .sum(),
        ),
    }
}

/// The `q` quantile of `sorted`, in microseconds.
fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let space = Nb201Space::default();
    let score = objective();
    let mut missed = Vec::new();

    println!("\n## ask + tell, NAS-Bench-201 space (microseconds per pair)\n");
    println!("| strategy | observations | median | mean | p99 | max | target |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for case in cases() {
        let mut strategy = (case.make)();
        let pair = |strategy: &mut dyn Strategy<Nb201Space>| {
            let trial = strategy.ask(&space).expect("ask");
            let m = score(&trial.arch);
            strategy.tell(trial.id, Outcome::Complete(m)).expect("tell");
        };
        for _ in 0..case.warm {
            pair(strategy.as_mut());
        }
        let mut times: Vec<Duration> = (0..case.pairs)
            .map(|_| {
                let t = Instant::now();
                pair(strategy.as_mut());
                t.elapsed()
            })
            .collect();
        let total: Duration = times.iter().sum();
        times.sort();
        let mean = total.as_secs_f64() * 1e6 / case.pairs as f64;
        let median = quantile(&times, 0.5);
        let verdict = match case.target_ms {
            Some(t) if median < t * 1e3 => format!("< {t} ms: met"),
            Some(t) => {
                missed.push(case.name);
                format!("< {t} ms: MISSED")
            }
            None => "-".into(),
        };
        println!(
            "| {} | {}–{} | {median:.1} | {mean:.1} | {:.1} | {:.1} | {verdict} |",
            case.name,
            case.warm,
            case.warm + case.pairs,
            quantile(&times, 0.99),
            quantile(&times, 1.0),
        );
    }

    println!("\n## search loop, per trial, with an estimator that costs nothing (microseconds)\n");
    println!("| loop | trials | per trial |");
    println!("| --- | --- | --- |");
    let free = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> { Ok(score(a)) };
    let rea = || {
        RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 0)
            .expect("valid config")
    };
    let dir = std::env::temp_dir().join(format!("nas-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trials = 20_000;
    let report = |name: &str, run: &mut dyn FnMut()| {
        let t = Instant::now();
        run();
        let per = t.elapsed().as_secs_f64() * 1e6 / trials as f64;
        println!("| {name} | {trials} | {per:.1} |");
    };
    report("1 worker, caller's thread", &mut || {
        Search::new(&space, &mut rea())
            .trials(trials)
            .run(&mut { free })
            .expect("search");
    });
    report("1 worker, caller's thread, journal", &mut || {
        let path = dir.join("a.jsonl");
        let _ = std::fs::remove_file(&path);
        Search::new(&space, &mut rea())
            .trials(trials)
            .journal(&path)
            .run(&mut { free })
            .expect("search");
    });
    report("4 worker threads, journal", &mut || {
        let path = dir.join("b.jsonl");
        let _ = std::fs::remove_file(&path);
        Search::new(&space, &mut rea())
            .trials(trials)
            .journal(&path)
            .run_parallel(4, |_| free)
            .expect("search");
    });
    let _ = std::fs::remove_dir_all(&dir);

    if !missed.is_empty() {
        eprintln!("\ntargets missed: {}", missed.join(", "));
        std::process::exit(1);
    }
}
