//! Search strategies compared on the NAS-Bench-201 table.
//!
//! Runs every strategy of [`strategies`] through the search loop for many seeds, with the
//! NAS-Bench-201 table as the estimator (an oracle that returns each cell's 200-epoch test
//! accuracy), prints the mean ± std of the best accuracy found after 25, 50, 100 and 200
//! queries as a Markdown table, the best cell found, and writes an SVG plot of the mean
//! best-so-far accuracy (± one standard deviation) against the number of queries.
//!
//! ```text
//! cargo run --release --example nb201 -- --nb201 path/to/nats_bench_tss_200ep.csv
//! cargo run --release --example nb201 -- --seeds 20 --queries 100 --dataset cifar100 --out /tmp/nb201
//! ```
//!
//! The table is read from `--nb201`, else `$NAS_NB201_CSV`, else
//! `../shared/data/nb201/nats_bench_tss_200ep.csv`. Seeds run in parallel threads.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::{
    BayesianOptimization, BayesianOptimizationConfig, Hamming, Ppo, PpoConfig, RandomSearch,
    RegularizedEvolution, RegularizedEvolutionConfig, Reinforce, ReinforceConfig, Search, Strategy,
    WeisfeilerLehman,
};
use plotters::prelude::*;

/// Builds a strategy from a seed.
type MakeStrategy = fn(u64) -> Box<dyn Strategy<Nb201Space>>;

/// The strategies compared: one line each.
fn strategies() -> Vec<(&'static str, MakeStrategy)> {
    vec![
        ("random search", |seed| {
            Box::new(RandomSearch::<Nb201Space>::new(seed))
        }),
        ("regularized evolution (P = 10, S = 3)", |seed| {
            Box::new(
                RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), seed)
                    .expect("valid config"),
            )
        }),
        ("GP-BO (WL kernel)", |seed| {
            Box::new(
                BayesianOptimization::<Nb201Space>::new(
                    BayesianOptimizationConfig::default(),
                    WeisfeilerLehman::default(),
                    seed,
                )
                .expect("valid config"),
            )
        }),
        ("GP-BO (Hamming kernel)", |seed| {
            Box::new(
                BayesianOptimization::<Nb201Space, Hamming>::new(
                    BayesianOptimizationConfig::default(),
                    Hamming,
                    seed,
                )
                .expect("valid config"),
            )
        }),
        ("REINFORCE, LSTM controller", |seed| {
            Box::new(
                Reinforce::<Nb201Space>::new(
                    &Nb201Space::default(),
                    ReinforceConfig::short_search(),
                    seed,
                )
                .expect("valid config"),
            )
        }),
        ("PPO, LSTM controller", |seed| {
            Box::new(
                Ppo::<Nb201Space>::new(&Nb201Space::default(), PpoConfig::short_search(), seed)
                    .expect("valid config"),
            )
        }),
    ]
}

#[derive(Parser, Debug)]
#[command(about = "Search strategies compared on the NAS-Bench-201 table")]
struct Args {
    /// Path of `nats_bench_tss_200ep.csv` (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv).
    #[arg(long)]
    nb201: Option<PathBuf>,
    /// Dataset whose test accuracy is the objective: cifar10, cifar100, imagenet16-120.
    #[arg(long, default_value = "cifar10")]
    dataset: Nb201Dataset,
    /// Queries (table look-ups) per search.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Number of seeds per strategy (seeds 0, 1, ...).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Run only the strategies whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Directory for the plot.
    #[arg(long, default_value = "runs/nb201")]
    out: PathBuf,
}

/// One seed's search: the seed, its best-so-far curve, its best cell with its accuracy, and
/// whether it stopped before its queries.
type SeedRun = (u64, Vec<f64>, Option<(f64, Nb201Arch)>, bool);

/// The best-so-far curves of one strategy, one per seed, and the best cell it found.
struct Curves {
    name: &'static str,
    curves: Vec<Vec<f64>>,
    best: Option<(f64, Nb201Arch)>,
    seconds: f64,
    /// Seeds whose search stopped before its queries (an error, printed as it happened).
    stopped: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = common::nb201_path(args.nb201.clone());
    let table = match Nb201Table::open(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("(pass --nb201 PATH or set NAS_NB201_CSV)");
            return ExitCode::from(2);
        }
    };
    if args.queries == 0 || args.seeds == 0 {
        eprintln!("error: --queries and --seeds must be at least 1");
        return ExitCode::from(2);
    }
    let optimum = table.best(args.dataset);
    println!(
        "NAS-Bench-201, {} test accuracy; optimum of the table: {:.2} ({})",
        args.dataset.name(),
        optimum.accuracy(args.dataset),
        optimum.arch
    );
    println!(
        "{} seeds x {} queries per strategy; mean ± std of the best accuracy after N queries\n",
        args.seeds, args.queries
    );

    let checkpoints: Vec<usize> = [25, 50, 100, 200]
        .into_iter()
        .filter(|&q| q <= args.queries)
        .collect();
    let header: Vec<String> = checkpoints.iter().map(|q| q.to_string()).collect();
    println!("| strategy | {} |", header.join(" | "));
    println!("| --- |{}", " --- |".repeat(checkpoints.len()));

    let mut all = Vec::new();
    for (name, make) in strategies() {
        if args
            .only
            .as_deref()
            .is_some_and(|only| !name.contains(only))
        {
            continue;
        }
        let c = run_seeds(&table, &args, name, make);
        let cells: Vec<String> = checkpoints
            .iter()
            .map(|&q| {
                let (mean, std) = mean_std(c.curves.iter().map(|curve| curve[q - 1]));
                format!("{mean:.2} ± {std:.2}")
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
        all.push(c);
    }

    println!();
    for c in &all {
        println!(
            "{}: {:.1} s for {} seeds",
            c.name,
            c.seconds,
            c.curves.len()
        );
    }
    if let Some((acc, arch)) = all
        .iter()
        .filter_map(|c| c.best)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        && let Some(row) = table.get(&arch)
    {
        println!("\nbest cell found: {arch}");
        println!(
            "  test accuracy: CIFAR-10 {:.2}, CIFAR-100 {:.2}, ImageNet16-120 {:.2} (objective {acc:.2})",
            row.accuracy(Nb201Dataset::Cifar10),
            row.accuracy(Nb201Dataset::Cifar100),
            row.accuracy(Nb201Dataset::ImageNet16_120),
        );
    }

    let plot = args
        .out
        .join(format!("best_so_far_{}.svg", args.dataset.name()));
    match plot_curves(&plot, &all, args.dataset, optimum.accuracy(args.dataset)) {
        Ok(()) => println!("\nplot: {}", plot.display()),
        Err(e) => {
            eprintln!("error: cannot write the plot {}: {e}", plot.display());
            return ExitCode::FAILURE;
        }
    }
    let stopped: usize = all.iter().map(|c| c.stopped).sum();
    if stopped > 0 {
        eprintln!(
            "error: {stopped} search(es) stopped before {} queries (their errors are above; \
             the curves keep their best for the remaining queries)",
            args.queries
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Runs `make` for every seed, spreading the seeds over the machine's threads.
fn run_seeds(table: &Nb201Table, args: &Args, name: &'static str, make: MakeStrategy) -> Curves {
    let clock = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let space = Nb201Space::default();
    let mut runs: Vec<SeedRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(args.seeds))
            .map(|first| {
                let space = &space;
                scope.spawn(move || {
                    (first..args.seeds)
                        .step_by(threads as usize)
                        .map(|seed| {
                            let mut strategy = make(seed);
                            let mut oracle = table.estimator(args.dataset);
                            let (result, stopped) = match Search::new(space, strategy.as_mut())
                                .trials(args.queries)
                                .seed(seed)
                                .run(&mut oracle)
                            {
                                Ok(r) => (r, false),
                                Err(stop) => {
                                    eprintln!("{name}, seed {seed}: {stop}");
                                    (stop.partial, true)
                                }
                            };
                            let mut curve = result.best_so_far();
                            // A search that stopped early keeps its best for the other queries.
                            let last = curve.last().copied().unwrap_or(f64::NAN);
                            curve.resize(args.queries, last);
                            let best = result
                                .best()
                                .and_then(|t| t.objective().map(|v| (v, t.arch)));
                            (seed, curve, best, stopped)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a seed's thread panicked"))
            .collect()
    });
    runs.sort_by_key(|r| r.0);
    let best = runs
        .iter()
        .filter_map(|r| r.2)
        .fold(None, |acc: Option<(f64, Nb201Arch)>, b| match acc {
            Some(a) if a.0 >= b.0 => Some(a),
            _ => Some(b),
        });
    let stopped = runs.iter().filter(|r| r.3).count();
    Curves {
        name,
        stopped,
        curves: runs.into_iter().map(|r| r.1).collect(),
        best,
        seconds: clock.elapsed().as_secs_f64(),
    }
}

/// Mean and sample standard deviation (NaN values, searches with no complete trial yet, are
/// left out).
fn mean_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Mean best-so-far against queries, one line per strategy with a ± one-std band, and the
/// table's optimum as a grey line.
fn plot_curves(
    path: &Path,
    all: &[Curves],
    dataset: Nb201Dataset,
    optimum: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let queries = all.first().map_or(1, |c| c.curves[0].len());
    let stats: Vec<Vec<(f64, f64)>> = all
        .iter()
        .map(|c| {
            (0..queries)
                .map(|q| mean_std(c.curves.iter().map(|curve| curve[q])))
                .collect()
        })
        .collect();
    // The first few queries are far below the rest: start the axis where the curves are
    // after 10 queries, and clamp what lies below.
    let early = 9.min(queries - 1);
    let low = stats
        .iter()
        .map(|s| s[early].0 - s[early].1)
        .fold(optimum, f64::min)
        .floor();
    let high = optimum + 0.25;
    let clamp = |v: f64| v.clamp(low, high);

    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "NAS-Bench-201, {}: best test accuracy so far (mean ± std over {} seeds)",
                dataset.name(),
                all.first().map_or(0, |c| c.curves.len())
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(1f64..queries as f64, low..high)?;
    chart
        .configure_mesh()
        .x_desc("queries")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("test accuracy (%)")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, optimum), (queries as f64, optimum)],
            BLACK.mix(0.4).stroke_width(1),
        ))?
        .label(format!("optimum of the table ({optimum:.2})"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    for (i, (c, s)) in all.iter().zip(&stats).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let upper = s
            .iter()
            .enumerate()
            .map(|(q, &(m, sd))| ((q + 1) as f64, clamp(m + sd)));
        let lower = s
            .iter()
            .enumerate()
            .rev()
            .map(|(q, &(m, sd))| ((q + 1) as f64, clamp(m - sd)));
        chart.draw_series(std::iter::once(Polygon::new(
            upper.chain(lower).collect::<Vec<_>>(),
            color.mix(0.15).filled(),
        )))?;
        chart
            .draw_series(LineSeries::new(
                s.iter()
                    .enumerate()
                    .map(|(q, &(m, _))| ((q + 1) as f64, clamp(m))),
                color.stroke_width(2),
            ))?
            .label(c.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
