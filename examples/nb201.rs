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
//!
//! The rows marked "zero-cost warm start" run their strategy on a [`Screened`] space: every
//! random draw (the initial population of evolution, the initial design and random candidates
//! of GP-BO, every proposal of random search) is the best of `--zc-pool` random cells by a
//! zero-cost proxy (`--zc-proxy`, default synflow) of the untrained network (C = 8, N = 2, the
//! quickstart's screening network, on 16×16 inputs; the data proxies see 16 images of the
//! embedded Fashion-MNIST subset). Scoring spends no query. Scores are kept per canonical
//! cell in `<out>/zero_cost_<proxy>.json` and reused by later runs (every dataset shares them).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::estimate::zero_cost::{ZeroCostEstimator, ZeroCostProxy};
use nas::estimate::{Budget, Estimator};
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::space::screen::{ScreenConfig, Screened};
use nas::space::{Canonicalize, SearchSpace};
use nas::strategy::{
    Bananas, BananasConfig, BayesianOptimization, BayesianOptimizationConfig, Hamming, Pnas,
    PnasConfig, Ppo, PpoConfig, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig,
    Reinforce, ReinforceConfig, Search, Strategy, WeisfeilerLehman,
};
use nas::supernet::burn::backend::{Autodiff, NdArray};
use nas::supernet::nb201_net::Nb201NetConfig;
use plotters::prelude::*;

/// Builds a strategy from a seed.
type MakeStrategy = fn(u64) -> Box<dyn Strategy<Nb201Space>>;

/// The space of the warm-started rows: NAS-Bench-201, each draw the best of a pool by the
/// zero-cost proxy.
type ZcSpace = Screened<Nb201Space, Box<dyn Fn(&Nb201Arch) -> f64 + Send + Sync>>;

/// Builds a warm-started strategy from a seed.
type MakeZcStrategy = fn(u64) -> Box<dyn Strategy<ZcSpace>>;

/// The strategies run with zero-cost warm start.
fn zc_strategies() -> Vec<(&'static str, MakeZcStrategy)> {
    vec![
        ("random search, zero-cost warm start", |seed| {
            Box::new(RandomSearch::<ZcSpace>::new(seed))
        }),
        (
            "regularized evolution (P = 10, S = 3), zero-cost warm start",
            |seed| {
                Box::new(
                    RegularizedEvolution::<ZcSpace>::new(RegularizedEvolutionConfig::nb201(), seed)
                        .expect("valid config"),
                )
            },
        ),
        ("GP-BO (WL kernel), zero-cost warm start", |seed| {
            Box::new(
                BayesianOptimization::<ZcSpace>::new(
                    BayesianOptimizationConfig::default(),
                    WeisfeilerLehman::default(),
                    seed,
                )
                .expect("valid config"),
            )
        }),
    ]
}

/// The zero-cost proxy of the warm-started rows.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ZcProxy {
    /// Synflow (data-free).
    Synflow,
    /// NASWOT (ReLU codes on 16 images).
    Naswot,
    /// Parameters on a path from input to output (16 images).
    LiveParameters,
    /// No warm-started rows.
    None,
}

impl ZcProxy {
    fn proxy(self) -> Option<ZeroCostProxy> {
        match self {
            ZcProxy::Synflow => Some(ZeroCostProxy::Synflow),
            ZcProxy::Naswot => Some(ZeroCostProxy::Naswot),
            ZcProxy::LiveParameters => Some(ZeroCostProxy::LiveParameters),
            ZcProxy::None => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ZcProxy::Synflow => "synflow",
            ZcProxy::Naswot => "naswot",
            ZcProxy::LiveParameters => "live_parameters",
            ZcProxy::None => "none",
        }
    }
}

type CpuBackend = Autodiff<NdArray>;

/// Zero-cost scores by canonical cell: read from a file, computed on first use, written back.
struct ZeroCostScores {
    estimator: Mutex<ZeroCostEstimator<CpuBackend, Nb201NetConfig>>,
    scores: Mutex<HashMap<String, f64>>,
    /// Cells scored in this run, and the seconds they took.
    computed: Mutex<(usize, f64)>,
    path: PathBuf,
}

impl ZeroCostScores {
    fn open(proxy: ZeroCostProxy, name: &str, out: &Path) -> Result<Self, String> {
        let (train, _) = common::load(None, 0)?;
        let net = Nb201NetConfig {
            channels: 8,
            cells_per_stage: 2,
            in_channels: 1,
            num_classes: 10,
        };
        let estimator =
            ZeroCostEstimator::<CpuBackend, _>::new(net, &train, 16, 0, Default::default())
                .map_err(|e| e.to_string())?
                .with_proxy(proxy);
        let path = out.join(format!("zero_cost_{name}.json"));
        let scores = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not a file of zero-cost scores ({e}); delete it to score again",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Self {
            estimator: Mutex::new(estimator),
            scores: Mutex::new(scores),
            computed: Mutex::new((0, 0.0)),
            path,
        })
    }

    fn score(&self, arch: &Nb201Arch) -> f64 {
        let space = Nb201Space::default();
        let key = space
            .canonical(arch)
            .map_or_else(|_| format!("{arch}"), |c| c.to_string());
        if let Some(&s) = self
            .scores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return s;
        }
        let start = Instant::now();
        // A cell whose network cannot be scored ranks last.
        let s = self
            .estimator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .estimate(arch, &Budget::full())
            .map_or(f64::NEG_INFINITY, |m| m.objective);
        let mut computed = self.computed.lock().unwrap_or_else(|e| e.into_inner());
        computed.0 += 1;
        computed.1 += start.elapsed().as_secs_f64();
        self.scores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, s);
        s
    }

    fn save(&self) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let scores = self.scores.lock().unwrap_or_else(|e| e.into_inner());
        // Non-finite scores are not written (JSON has no -inf): they are scored again.
        let finite: HashMap<&String, f64> = scores
            .iter()
            .filter(|s| s.1.is_finite())
            .map(|(k, &v)| (k, v))
            .collect();
        std::fs::write(
            &self.path,
            serde_json::to_string(&finite).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

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
        ("BANANAS (MLP ensemble, path encoding, ITS)", |seed| {
            Box::new(
                Bananas::<Nb201Space>::new(BananasConfig::default(), seed).expect("valid config"),
            )
        }),
        ("PNAS (K = 16, MLP ensemble)", |seed| {
            Box::new(Pnas::<Nb201Space>::new(PnasConfig::default(), seed).expect("valid config"))
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
    /// Zero-cost proxy of the warm-started rows (`none`: no such rows).
    #[arg(long, default_value = "synflow")]
    zc_proxy: ZcProxy,
    /// Random cells scored per draw of the warm-started rows (the best is proposed).
    #[arg(long, default_value_t = 10)]
    zc_pool: usize,
    /// Directory for the plot and the zero-cost scores.
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

    let selected = |name: &str| args.only.as_deref().is_none_or(|only| name.contains(only));
    let row = |c: &Curves| {
        let cells: Vec<String> = checkpoints
            .iter()
            .map(|&q| {
                let (mean, std) = mean_std(c.curves.iter().map(|curve| curve[q - 1]));
                format!("{mean:.2} ± {std:.2}")
            })
            .collect();
        println!("| {} | {} |", c.name, cells.join(" | "));
    };
    let mut all = Vec::new();
    let space = Nb201Space::default();
    for (name, make) in strategies() {
        if selected(name) {
            let c = run_seeds(&space, &table, &args, name, &make);
            row(&c);
            all.push(c);
        }
    }
    let zc = args
        .zc_proxy
        .proxy()
        .filter(|_| zc_strategies().iter().any(|(name, _)| selected(name)));
    let mut zc_summary = None;
    if let Some(proxy) = zc {
        let scores = match ZeroCostScores::open(proxy, args.zc_proxy.name(), &args.out) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let known = scores.scores.lock().map_or(0, |s| s.len());
        let score = {
            let scores = Arc::clone(&scores);
            Box::new(move |a: &Nb201Arch| scores.score(a))
                as Box<dyn Fn(&Nb201Arch) -> f64 + Send + Sync>
        };
        let space = match Screened::new(space, ScreenConfig::new(args.zc_pool, 1), score) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: --zc-pool: {e}");
                return ExitCode::from(2);
            }
        };
        for (name, make) in zc_strategies() {
            if selected(name) {
                let c = run_seeds(&space, &table, &args, name, &make);
                row(&c);
                all.push(c);
            }
        }
        if let Err(e) = scores.save() {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        let (n, seconds) = *scores.computed.lock().unwrap_or_else(|e| e.into_inner());
        zc_summary = Some(format!(
            "zero-cost warm start: best of {} random cells by {} (C = 8, N = 2, 16×16); {} cells \
             scored in this run ({:.1} ms each), {} read from {}",
            args.zc_pool,
            args.zc_proxy.name(),
            n,
            1000.0 * seconds / n.max(1) as f64,
            known,
            scores.path.display()
        ));
    }

    println!();
    if let Some(summary) = zc_summary {
        println!("{summary}");
    }
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

/// Runs `make` for every seed on `space`, spreading the seeds over the machine's threads.
fn run_seeds<S>(
    space: &S,
    table: &Nb201Table,
    args: &Args,
    name: &'static str,
    make: &(dyn Fn(u64) -> Box<dyn Strategy<S>> + Sync),
) -> Curves
where
    S: SearchSpace<Arch = Nb201Arch> + Sync,
{
    let clock = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut runs: Vec<SeedRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(args.seeds))
            .map(|first| {
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
