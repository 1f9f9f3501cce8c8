//! Regularized evolution against random search on the NAS-Bench-201 table.
//!
//! Runs both strategies through the search loop for several seeds, with the NAS-Bench-201
//! table as the estimator (an oracle that returns each cell's 200-epoch test accuracy), and
//! prints the mean ± std of the best accuracy found after 25, 50 and 100 queries, and the best
//! cell found, in the benchmark's notation.
//!
//! ```text
//! cargo run --release --example nb201 -- --nb201 path/to/nats_bench_tss_200ep.csv
//! ```
//!
//! The table is read from `--nb201`, else `$NAS_NB201_CSV`, else
//! `../shared/data/nb201/nats_bench_tss_200ep.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::search::{self, SearchResult};
use nas::strategy::{RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, Strategy};

#[derive(Parser, Debug)]
#[command(about = "Regularized evolution vs random search on the NAS-Bench-201 table")]
struct Args {
    /// Path of `nats_bench_tss_200ep.csv` (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv).
    #[arg(long)]
    nb201: Option<PathBuf>,
    /// Dataset whose test accuracy is the objective: cifar10, cifar100, imagenet16-120.
    #[arg(long, default_value = "cifar10")]
    dataset: Nb201Dataset,
    /// Queries (table look-ups) per search.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Number of seeds per strategy.
    #[arg(long, default_value_t = 50)]
    seeds: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = args
        .nb201
        .or_else(Nb201Table::path_from_env)
        .unwrap_or_else(|| PathBuf::from("../shared/data/nb201/nats_bench_tss_200ep.csv"));
    let table = match Nb201Table::open(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("(pass --nb201 PATH or set NAS_NB201_CSV)");
            return ExitCode::from(2);
        }
    };
    let space = Nb201Space::default();
    let oracle_best = table.best(args.dataset);
    println!(
        "NAS-Bench-201, {} test accuracy; optimum of the table: {:.2} ({})",
        args.dataset.name(),
        oracle_best.accuracy(args.dataset),
        oracle_best.arch
    );
    println!(
        "{} seeds x {} queries per strategy\n",
        args.seeds, args.queries
    );

    let checkpoints: Vec<usize> = [25, 50, 100, 200]
        .into_iter()
        .filter(|&q| q <= args.queries)
        .collect();
    print!("{:<24}", "strategy");
    for q in &checkpoints {
        print!("{:>18}", format!("best@{q}"));
    }
    println!();

    let mut overall: Option<(f64, Nb201Arch)> = None;
    type MakeStrategy = fn(u64) -> Box<dyn Strategy<Nb201Space>>;
    let strategies: [(&str, MakeStrategy); 2] = [
        ("random search", |seed| {
            Box::new(RandomSearch::<Nb201Space>::new(seed))
        }),
        ("regularized evolution", |seed| {
            Box::new(
                RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), seed)
                    .expect("valid config"),
            )
        }),
    ];
    for (name, make) in strategies {
        let mut curves = Vec::new();
        for seed in 0..args.seeds {
            let mut strategy = make(seed);
            let mut oracle = table.estimator(args.dataset);
            let result: SearchResult<Nb201Arch> =
                match search::run(&space, strategy.as_mut(), &mut oracle, args.queries, |_| {}) {
                    Ok(r) => r,
                    Err(stop) => {
                        eprintln!("{name}, seed {seed}: {stop}");
                        stop.partial
                    }
                };
            if let Some(best) = result.best() {
                let v = best.outcome.complete().map_or(f64::NAN, |m| m.objective);
                if overall.as_ref().is_none_or(|(o, _)| v > *o) {
                    overall = Some((v, best.arch));
                }
            }
            curves.push(result.best_so_far());
        }
        print!("{name:<24}");
        for &q in &checkpoints {
            let vals: Vec<f64> = curves
                .iter()
                .filter_map(|c| c.get(q - 1).copied())
                .collect();
            let (mean, std) = mean_std(&vals);
            print!("{:>18}", format!("{mean:.2} ± {std:.2}"));
        }
        println!();
    }
    if let Some((acc, arch)) = overall {
        let row = table
            .get(&arch)
            .expect("found architectures are in the table");
        println!("\nbest cell found: {arch}");
        println!(
            "  test accuracy: CIFAR-10 {:.2}, CIFAR-100 {:.2}, ImageNet16-120 {:.2} (objective {acc:.2})",
            row.accuracy(Nb201Dataset::Cifar10),
            row.accuracy(Nb201Dataset::Cifar100),
            row.accuracy(Nb201Dataset::ImageNet16_120),
        );
    }
    ExitCode::SUCCESS
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
