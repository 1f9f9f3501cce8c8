//! Differentiable architecture search: DARTS (first and second order), GDAS, SNAS, ASAP and
//! P-DARTS on a supernet of the NAS-Bench-201 or the DARTS space.
//!
//! Searches on the Fashion-MNIST subset embedded in the library, resized to 16×16, by default
//! (`--data digits` for the embedded 8×8 digits, `--data DIR` for Fashion-MNIST or CIFAR-10
//! from a directory), printing after every epoch the softmaxed alphas, the derived
//! architecture in its published format and the peak memory of a step. Then it selects the
//! architecture: by the largest alpha of each edge as the papers do (`--select alphas`, the
//! default), or by perturbation (`--select perturbation`, DARTS-PT: each edge keeps the
//! operation whose removal costs the trained supernet the most accuracy, the supernet tuned
//! for a few steps after each edge). On the NAS-Bench-201 space the selected cell is looked up
//! in the NAS-Bench-201 table when the table is found.
//!
//! Defaults for a run of minutes on 2 cores: 10 epochs, of which the first half train only the
//! weights (`--warmup-epochs`; parameter-free operations lower the loss before the
//! convolutions have learned anything, so alphas that learn from the start drift towards
//! them), the alphas' Adam at 3e-3 (`--arch-lr`; the papers' 3e-4 is meant for about
//! 100,000 alpha steps, a CPU run has a few hundred, in which the alphas would barely move),
//! and β-DARTS' beta-decay regularization growing to 5 (`--beta-decay`; 0 for plain DARTS):
//! it keeps any operation from running away with an edge, so the alphas stay within a few
//! hundredths of uniform and their order on each edge is the answer. Measured
//! (`docs/benchmarks.md`): NAS-Bench-201 CIFAR-10 ranks 742, 9,601, 80, 2,751 and 2,280 of
//! 15,625 on seeds 0-4 with it, 15,231, 3,576 and 7,557 on seeds 0-2 without (a random cell's
//! median rank is 7,813).
//! `--warmup-epochs` equal to `--epochs`: the alphas never learn, and the selection by
//! perturbation is all there is (DARTS-PT's "fixed α").
//!
//! GDAS (`--method gdas`) has its own defaults: the paper's straight-through gradient, every
//! operation computed in the alpha step (`--gdas-gradient dense`; `sampled` is the reference
//! code, whose gradient is the same for every operation but the sampled one), a strictly fair
//! warm-up that computes every operation on every step (`--warmup-paths fair`; GDAS' own
//! warm-up trains each convolution on a fifth of the steps) and no β-decay. Measured: CIFAR-10
//! ranks 461, 560, 6,384, 142 and 13,731 (a drift to skip connections) on seeds 0-4, in 2.5
//! minutes each; with the reference code's gradient and warm-up the alphas stay at uniform or
//! drift to `none` and pooling.
//!
//! `--final-epochs N` (default 5; 0 skips it) trains the selected network from scratch for N
//! epochs and saves it into `<report-dir>/network` (`network.json` and `weights.mpk`; load it
//! with `nas::supernet::persist::load_network`); `--random-baselines K` (default 3) random
//! architectures of the space are then trained the same way, and the run prints whether the
//! search beat them (with their NAS-Bench-201 ranks). The run ends by writing a report page,
//! `<report-dir>/report.html` (default `runs/darts/report.html`), with SVG figures: the
//! supernet's training accuracy per epoch, the selected cell(s), the perturbation table, the
//! test accuracy of the final training, and a table of the epochs.
//!
//! ```text
//! cargo run --release --example darts                                # DARTS on NB201
//! cargo run --release --example darts -- --method darts2 --space darts
//! cargo run --release --example darts -- --method gdas --epochs 20 --select alphas
//! cargo run --release --example darts -- --data path/to/fashion-mnist --method pdarts
//! cargo run --release --example darts -- --final-epochs 20 --report-dir runs/darts-long
//! NAS_BACKEND=wgpu cargo run --release --features wgpu --example darts
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::space::SearchSpace;
use nas::space::darts::{DartsConfig, DartsSpace};
use nas::space::nb201::Nb201Space;
use nas::strategy::report::Report;
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::darts_search::method::PdartsConfig;
use nas::supernet::darts_search::{
    AlphaOptimConfig, DerivedArch, EpochReport, Method, Perturbation, PerturbationConfig,
    SearchConfig, SearchError, SearchReport, Searcher, SupernetConfig, WarmupPaths,
};
use nas::supernet::data::Augment;
use nas::supernet::memory::CountingAlloc;
use nas::supernet::train::{TrainConfig, TrainReport};

/// Counts heap bytes so that every step's peak memory can be reported.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[derive(Parser, Debug, Clone)]
#[command(about = "Differentiable architecture search (DARTS, GDAS, SNAS, ASAP, P-DARTS)")]
struct Args {
    /// Method: darts (first order), darts2 (second order), gdas, snas, asap, pdarts.
    #[arg(long, default_value = "darts")]
    method: String,
    /// Search space: nb201 or darts.
    #[arg(long, default_value = "nb201")]
    space: String,
    /// Search epochs (per stage for P-DARTS).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Batch size of each half of the training data.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Initial channels C of the supernet.
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Cells: per stage for nb201, in all for darts (at least 3).
    #[arg(long)]
    cells: Option<usize>,
    /// Intermediate nodes of a DARTS cell.
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// Data: a directory of Fashion-MNIST (IDX files) or CIFAR-10 (binary batches), `digits`
    /// for the embedded 8×8 digits, or `fashion` (the default) for the embedded Fashion-MNIST
    /// subset at 16×16 (9,000 training, 1,000 test images).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Learning rate of the alphas' Adam. The papers' 3e-4 is meant for about 100,000 alpha
    /// steps; the few hundred of a CPU run need a larger rate for the alphas to move at all.
    #[arg(long, default_value_t = 3e-3)]
    arch_lr: f64,
    /// Epochs (per stage) in which only the weights learn before the alphas start to
    /// (default: half the epochs; equal to --epochs: the alphas never learn).
    #[arg(long)]
    warmup_epochs: Option<usize>,
    /// Paths through which the weights train during the warm-up: `method` (the method's own
    /// relaxation: GDAS samples one operation per edge), `mixture` (every operation at equal
    /// weight) or `fair` (strictly fair single paths: every operation computed every step).
    /// Default: `fair` for GDAS, `method` for the others.
    #[arg(long, value_enum)]
    warmup_paths: Option<Warmup>,
    /// β-DARTS' beta-decay regularization: the alphas' loss gains λ · mean over edges of
    /// logsumexp(α), λ growing linearly from 0 to this value over the epochs (the paper's
    /// schedule over 50 epochs ends at 25; 0: off). Default: 5, and 0 for GDAS.
    #[arg(long)]
    beta_decay: Option<f64>,
    /// GDAS' straight-through gradient: `dense` (the default: every operation computed in the
    /// alpha step, each operation's gradient its own, as in the paper's equation) or `sampled`
    /// (the reference code: only the sampled operation computed, the others' gradients all
    /// the same).
    #[arg(long, value_enum)]
    gdas_gradient: Option<GdasGradient>,
    /// SNAS' resource constraint: the alphas' loss gains this weight × the expected MACs of
    /// the cells as a fraction of the largest cells' (0: off). The expected MACs under the
    /// final alphas are printed.
    #[arg(long, default_value_t = 0.0)]
    resource_weight: f64,
    /// Single-level search (SNAS' training): weights and alphas both learn on all the search
    /// images, instead of DARTS' two halves. First-order methods only.
    #[arg(long)]
    single_level: bool,
    /// How the architecture is selected after the search: `alphas` (each edge keeps its
    /// largest alpha, as in the papers) or `perturbation` (DARTS-PT: each edge keeps the
    /// operation whose removal costs the trained supernet the most accuracy; the alphas'
    /// choice is printed too). The selected architecture is trained and reported.
    #[arg(long, value_enum, default_value_t = Select::Alphas)]
    select: Select,
    /// Held-out images on which perturbation-based selection measures the supernet.
    #[arg(long, default_value_t = 1000)]
    select_images: usize,
    /// Weight steps that tune the supernet after each edge perturbation-based selection fixes.
    #[arg(long, default_value_t = 20)]
    select_tune_steps: usize,
    /// Use at most this many training images (a random subset) for the search.
    #[arg(long)]
    samples: Option<usize>,
    /// Epochs to train the derived network from scratch and save it into
    /// <report-dir>/network (0: skip).
    #[arg(long, alias = "train-epochs", default_value_t = 5)]
    final_epochs: usize,
    /// Random architectures of the space trained from scratch like the derived one (with
    /// --final-epochs): does the search beat random choice at the same training cost?
    #[arg(long, default_value_t = 3)]
    random_baselines: usize,
    /// Directory of the report page (report.html and its SVG figures) and of the final
    /// network.
    #[arg(long, default_value = "runs/darts")]
    report_dir: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend (device): ndarray, flex, wgpu or cuda (default: $NAS_BACKEND, else the CPU).
    #[arg(long)]
    backend: Option<String>,
    /// NAS-Bench-201 table for looking the derived cell up (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv; skipped when absent).
    #[arg(long)]
    nb201: Option<PathBuf>,
    /// Print the alpha table only after the last epoch.
    #[arg(long)]
    quiet: bool,
    /// Write the search report (JSON) here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    checkpoint: common::CheckpointArgs,
}

/// `--warmup-paths`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Warmup {
    /// The method's own relaxation.
    Method,
    /// Every operation at equal weight.
    Mixture,
    /// Strictly fair single paths.
    Fair,
}

/// `--gdas-gradient`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum GdasGradient {
    /// Every operation computed in the alpha step.
    Dense,
    /// Only the sampled operation computed.
    Sampled,
}

/// How the architecture is selected after the search.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    /// Each edge keeps its largest alpha.
    Alphas,
    /// DARTS-PT: each edge keeps the operation whose removal costs the supernet the most.
    #[value(alias = "pt")]
    Perturbation,
}

fn method(args: &Args) -> Result<Method, SearchError> {
    let mut m = Method::from_name(&args.method)?;
    if let Method::Pdarts(p) = &mut m {
        // The paper grows 5 → 11 → 17 cells over 3 stages of 25 epochs with 10 warm-up epochs;
        // scaled down for a CPU run, with the same ratio of warm-up to epochs.
        *p = PdartsConfig {
            add_cells: if args.space == "darts" {
                vec![0, 2, 4]
            } else {
                vec![0, 1, 2]
            },
            keep: if args.space == "darts" {
                vec![5, 3]
            } else {
                vec![4, 3]
            },
            warmup_epochs: args.epochs * 2 / 5,
            ..PdartsConfig::default()
        };
    }
    match (&mut m, args.gdas_gradient) {
        (Method::Gdas(g), gradient) => {
            g.dense_gradient = gradient.unwrap_or(GdasGradient::Dense) == GdasGradient::Dense;
        }
        (_, Some(_)) => {
            return Err(SearchError::InvalidConfig {
                field: "gdas_gradient",
                reason: "applies to --method gdas only: drop it, or search with --method gdas"
                    .into(),
            });
        }
        (_, None) => {}
    }
    Ok(m)
}

fn print_epoch(e: &EpochReport, layout: &nas::supernet::darts_search::ArchLayout, quiet: bool) {
    let mib = |b: Option<usize>| {
        b.map_or("n/a".to_string(), |b| {
            format!("{:.1} MiB", b as f64 / 1048576.0)
        })
    };
    let alpha_half = if e.valid_loss.is_finite() {
        format!(
            "alpha-half loss {:.3} acc {:5.1}%",
            e.valid_loss, e.valid_accuracy
        )
    } else {
        "alphas frozen (warm-up)".to_string()
    };
    println!(
        "stage {} epoch {:>2}: train loss {:.3} acc {:5.1}% | {alpha_half} | tau {:.2} skip-dropout {:.2} | {} ops alive | {:.2} s/step, peak {} (step {})",
        e.stage,
        e.epoch,
        e.train_loss,
        e.train_accuracy,
        e.tau,
        e.skip_dropout,
        e.alive_ops,
        e.step_seconds,
        mib(e.peak_bytes),
        mib(e.step_bytes),
    );
    if !quiet {
        print!("{}", e.probabilities.table(layout));
    }
    println!("  {}", e.derived);
}

struct Run(Args);

struct Outcome {
    /// The search's report; its `derived` is the selected architecture.
    report: SearchReport<DerivedArch>,
    /// The architecture the alphas select (the same as the report's unless
    /// `--select perturbation`).
    by_alphas: DerivedArch,
    /// Perturbation-based selection, when chosen.
    perturbation: Option<Perturbation<DerivedArch>>,
    /// The alphas' layout (edge and operation names).
    layout: nas::supernet::darts_search::ArchLayout,
    /// The final training's report and the directory the network was saved in.
    train: Option<(TrainReport, PathBuf)>,
    /// Random architectures trained like the derived one.
    baselines: Option<common::RandomBaselines>,
    search_seconds: f64,
    /// The settings, for the report page.
    intro: String,
}

impl BackendTask for Run {
    type Output = Result<Outcome, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let (train, test) = common::load(args.data.as_deref(), args.seed)?;
        let search_data = common::subset(&train, args.samples, args.seed);
        let shape = common::NetShape::new(args.channels, args.cells, &train);
        let space = match args.space.as_str() {
            "nb201" => SupernetConfig::Nb201(shape.nb201()),
            "darts" => SupernetConfig::Darts(shape.darts_supernet(args.steps)),
            other => return Err(format!("unknown space `{other}`: expected nb201 or darts")),
        };
        let augment = if train.shape()[1] >= 32 {
            Augment {
                crop_padding: 4,
                flip: true,
                cutout: 0,
            }
        } else {
            Augment::default()
        };
        let gdas = args.method.trim().eq_ignore_ascii_case("gdas");
        let config = SearchConfig {
            method: method(&args).map_err(|e| e.to_string())?,
            epochs: args.epochs,
            batch_size: args.batch_size,
            augment,
            seed: args.seed,
            alphas: AlphaOptimConfig {
                learning_rate: args.arch_lr,
                warmup_epochs: args.warmup_epochs.unwrap_or(args.epochs / 2),
                warmup_paths: match args.warmup_paths.unwrap_or(if gdas {
                    Warmup::Fair
                } else {
                    Warmup::Method
                }) {
                    Warmup::Method => WarmupPaths::Method,
                    Warmup::Mixture => WarmupPaths::Mixture,
                    Warmup::Fair => WarmupPaths::Fair,
                },
                beta_decay: args.beta_decay.unwrap_or(if gdas { 0.0 } else { 5.0 }),
                resource_weight: args.resource_weight,
                ..AlphaOptimConfig::default()
            },
            single_level: args.single_level,
            ..SearchConfig::default()
        };
        let (space_name, shape_text) = (space.space_name(), format!("{space:?}"));
        let weights_part = (search_data.len() as f64 * config.train_portion).round() as usize;
        println!(
            "{} on the {} space ({:?}); {} search images ({}), {} test images",
            config.method.name(),
            space.space_name(),
            space,
            search_data.len(),
            if config.single_level {
                "all of them for both the weights and the alphas: single-level".to_string()
            } else {
                format!(
                    "{weights_part} for the weights, {} for the alphas",
                    search_data.len() - weights_part
                )
            },
            test.len()
        );
        let schedule = format!(
            "{}{} epochs{}; the alphas' Adam at {} after {} warm-up epochs{}{}; selection by {}",
            match &config.method {
                Method::Gdas(g) if g.dense_gradient => "dense straight-through gradient; ",
                Method::Gdas(_) => "sampled straight-through gradient; ",
                _ => "",
            },
            config.epochs,
            if config.method.stages() > 1 {
                format!(" per stage × {} stages", config.method.stages())
            } else {
                String::new()
            },
            config.alphas.learning_rate,
            config.alphas.warmup_epochs,
            match config.alphas.warmup_paths {
                WarmupPaths::Method => "",
                WarmupPaths::Mixture => " (weights through every operation at equal weight)",
                WarmupPaths::Fair => " (weights through strictly fair paths)",
            },
            if config.alphas.beta_decay > 0.0 {
                format!(", beta-decay up to {}", config.alphas.beta_decay)
            } else {
                String::new()
            },
            match args.select {
                Select::Alphas => "the alphas".to_string(),
                Select::Perturbation => format!(
                    "perturbation ({} held-out images, {} tuning steps per edge)",
                    args.select_images, args.select_tune_steps
                ),
            }
        );
        println!("{schedule}");
        let mut searcher = Searcher::<B, _>::new(space, config.clone(), device.clone())
            .map_err(|e| e.to_string())?;
        let layout = searcher.layout().clone();
        let start = Instant::now();
        let epochs = config.epochs * config.method.stages();
        let default_path = format!(
            "runs/darts/{}-{}-seed{}/checkpoint.bin",
            args.method, args.space, args.seed
        );
        let mut solver = searcher.epochs(&search_data).map_err(|e| e.to_string())?;
        let mut driver = args.checkpoint.driver(&mut solver, default_path).observer(
            |i: usize, e: &EpochReport| {
                print_epoch(e, &layout, args.quiet && i + 1 < epochs);
            },
        );
        let result = driver.run();
        if let Ok(summary) = &result
            && let Some(at) = summary.resumed_at
        {
            println!("resumed after epoch {at} of {epochs}");
        }
        let history = driver.into_history();
        let search_seconds = start.elapsed().as_secs_f64();
        let mut report = match result.map_err(SearchError::from_driver) {
            Ok(_) => solver.report(history),
            Err(e @ SearchError::Diverged { .. }) => {
                println!("{e}");
                println!("last good architecture: {}", solver.searcher().derive());
                return Err("the search diverged".into());
            }
            Err(e) => return Err(e.to_string()),
        };
        println!(
            "\nsearch: {:.1} s; architecture by the alphas:\n{}",
            search_seconds, report.derived
        );
        {
            let macs = solver.searcher().op_macs(search_data.shape());
            let sum = |f: &dyn Fn(&[f64], &[f64]) -> f64| -> f64 {
                report
                    .probabilities
                    .cells
                    .iter()
                    .zip(&macs)
                    .flat_map(|(p, m)| p.iter().zip(m))
                    .map(|(p, m)| f(p, m))
                    .sum()
            };
            let expected = sum(&|p, m| p.iter().zip(m).map(|(p, m)| p * m).sum());
            let largest = sum(&|_, m| m.iter().copied().fold(0.0, f64::max));
            println!(
                "expected MACs of the searched cells per image under the final alphas: {:.3} M \
                 ({:.0} % of the largest cells'{})",
                expected / 1e6,
                100.0 * expected / largest.max(1.0),
                if config.alphas.resource_weight > 0.0 {
                    format!(", resource weight {}", config.alphas.resource_weight)
                } else {
                    String::new()
                }
            );
        }
        let by_alphas = report.derived.clone();
        let perturbation = match args.select {
            Select::Alphas => None,
            Select::Perturbation => {
                let start = Instant::now();
                let pt = solver
                    .derive_by_perturbation(&PerturbationConfig {
                        images: args.select_images,
                        tune_steps: args.select_tune_steps,
                        tune_learning_rate: None,
                    })
                    .map_err(|e| e.to_string())?;
                println!(
                    "perturbation-based selection on {} held-out images ({:.1} s): supernet accuracy {:.1}% before, {:.1}% with every edge fixed",
                    pt.images,
                    start.elapsed().as_secs_f64(),
                    pt.base_accuracy,
                    pt.final_accuracy
                );
                for d in &pt.edges {
                    let cell = &layout.cells[d.kind];
                    let without: Vec<String> = d
                        .accuracy_without
                        .iter()
                        .enumerate()
                        .filter_map(|(o, a)| a.map(|a| format!("{} {a:.1}", cell.ops[o])))
                        .collect();
                    println!(
                        "  {} edge {}: accuracy without each operation: {}; keeps {}",
                        cell.name,
                        cell.edges[d.edge],
                        without.join(", "),
                        cell.ops[d.chosen]
                    );
                }
                println!("architecture by perturbation:\n{}", pt.derived);
                report.derived = pt.derived.clone();
                Some(pt)
            }
        };

        let train_report = if args.final_epochs > 0 {
            let tc = TrainConfig {
                augment,
                ..common::train_config(args.final_epochs, 64, 0.05, args.seed)
            };
            let print = |epoch: usize, r: &TrainReport| {
                println!(
                    "  derived network epoch {epoch}: train loss {:.3}, test accuracy {:.2}%",
                    r.train_loss[epoch], r.valid_accuracy[epoch]
                )
            };
            println!(
                "training the derived network from scratch ({} epochs):",
                tc.epochs
            );
            let data = (&train, &test);
            let dir = args.report_dir.join("network");
            let derived = &report.derived;
            let trained =
                common::retrain::<B>(derived, &shape, data, &tc, &device, print, Some(&dir))?;
            println!(
                "saved the derived network in {} (load it with nas::supernet::persist::load_network)",
                dir.display()
            );
            Some((trained, dir))
        } else {
            None
        };
        let baselines = if train_report.is_some() && args.random_baselines > 0 {
            println!(
                "training {} random architectures of the space the same way:",
                args.random_baselines
            );
            let tc = TrainConfig {
                augment,
                ..common::train_config(args.final_epochs, 64, 0.05, args.seed)
            };
            let darts_space = DartsSpace::new(DartsConfig {
                steps: args.steps,
                ..DartsConfig::default()
            })
            .map_err(|e| e.to_string())?;
            let sample = |rng: &mut rand::rngs::ChaCha8Rng| match &report.derived {
                DerivedArch::Nb201(_) => DerivedArch::Nb201(Nb201Space::default().sample(rng)),
                DerivedArch::Darts(_) => DerivedArch::Darts(darts_space.sample(rng)),
            };
            let archs =
                common::draw_distinct(args.random_baselines, &report.derived, sample, args.seed)?;
            let data = (&train, &test);
            Some(common::RandomBaselines::train::<B>(
                archs, &shape, data, &tc, &device,
            )?)
        } else {
            None
        };
        let intro = format!(
            "{} on the {} space ({}): {schedule}; batch size {}, seed {}; {} search images of {} ({} for the weights, the rest for the alphas), {} test images.",
            config.method.name(),
            space_name,
            shape_text,
            config.batch_size,
            args.seed,
            search_data.len(),
            train.name(),
            (search_data.len() as f64 * config.train_portion).round(),
            test.len()
        );
        Ok(Outcome {
            report,
            by_alphas,
            perturbation,
            layout,
            train: train_report,
            baselines,
            search_seconds,
            intro,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let table = match common::open_nb201(args.nb201.clone()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let outcome = match common::run_task(args.backend.as_deref(), Run(args.clone())) {
        Ok(o) => o,
        Err(code) => return code,
    };
    if outcome.perturbation.is_some()
        && let DerivedArch::Nb201(arch) = &outcome.by_alphas
    {
        println!("by the alphas: {arch}");
        common::nb201_lookup(arch, table.as_ref(), "DARTS");
        println!(
            "by perturbation{}: {}",
            if outcome.train.is_some() {
                " (trained and saved)"
            } else {
                ""
            },
            outcome.report.derived
        );
    }
    if let DerivedArch::Nb201(arch) = &outcome.report.derived {
        common::nb201_lookup(arch, table.as_ref(), "DARTS");
    }
    if let Some((t, _)) = &outcome.train {
        println!(
            "derived network: {:.2}% test accuracy after {} epochs (search took {:.1} s)",
            t.final_accuracy().unwrap_or(0.0),
            t.valid_accuracy.len(),
            outcome.search_seconds
        );
        if let Some(b) = &outcome.baselines {
            println!(
                "{}",
                b.summary(t.final_accuracy().unwrap_or(f64::NAN), table.as_ref())
            );
        }
    }
    if let Some(out) = &args.out {
        let written = serde_json::to_string_pretty(&outcome.report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(out, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write the report to {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    match write_report(&args, &outcome, table.as_ref()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `<report-dir>/report.html`: the supernet's training accuracy per epoch, the selected
/// architecture, the final training's test accuracy and a table of the epochs.
fn write_report(
    args: &Args,
    outcome: &Outcome,
    table: Option<&nas::estimate::tabular::Nb201Table>,
) -> Result<PathBuf, String> {
    let search = &outcome.report;
    let mut report = Report::new(format!("{} search ({} space)", args.method, args.space));
    report.intro(outcome.intro.clone());
    let train: Vec<f64> = search.epochs.iter().map(|e| e.train_accuracy).collect();
    report
        .curve(
            "search_accuracy.svg",
            "the supernet's training accuracy (weight steps) per epoch",
            "epoch",
            "accuracy (%)",
            &train,
        )
        .map_err(|e| e.to_string())?;
    common::derived_figures(&mut report, &search.derived, "derived architecture")?;
    if let Some(pt) = &outcome.perturbation {
        report.paragraph(format!(
            "Selected by perturbation (DARTS-PT): on {} held-out images the supernet scored {:.1} % with every operation, {:.1} % with every edge fixed to its choice. By the alphas the search would have chosen {}.",
            pt.images, pt.base_accuracy, pt.final_accuracy, outcome.by_alphas
        ));
        let layout = &outcome.layout;
        let rows = pt
            .edges
            .iter()
            .map(|d| {
                let cell = &layout.cells[d.kind];
                let mut row = vec![cell.name.clone(), cell.edges[d.edge].clone()];
                row.extend(
                    d.accuracy_without
                        .iter()
                        .map(|a| a.map_or("-".to_string(), |a| format!("{a:.1}"))),
                );
                row.push(cell.ops[d.chosen].clone());
                row
            })
            .collect();
        let mut header = vec!["cell".to_string(), "edge".to_string()];
        header.extend(
            layout.cells[0]
                .ops
                .iter()
                .map(|o| format!("acc. without {o} (%)")),
        );
        header.push("kept".to_string());
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        report.table(&header, rows);
    }
    report.paragraph(format!("The search took {:.1} s.", outcome.search_seconds));
    let (curve, saved) = match &outcome.train {
        Some((t, dir)) => (Some(t.valid_accuracy.as_slice()), Some(dir.as_path())),
        None => (None, None),
    };
    common::final_training_section(&mut report, curve, "test accuracy", saved)?;
    if let (Some(b), Some((t, _))) = (&outcome.baselines, &outcome.train) {
        let acc = t.final_accuracy().unwrap_or(f64::NAN);
        report.paragraph(format!("{}.", b.summary(acc, table)));
        report.table(&["architecture", "test accuracy (%)", "cell"], b.rows());
    }
    let rows = search
        .epochs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            vec![
                (i + 1).to_string(),
                e.stage.to_string(),
                format!("{:.3}", e.train_loss),
                format!("{:.1}", e.train_accuracy),
                format!("{:.1}", e.valid_accuracy),
                format!("{:.2}", e.tau),
                e.alive_ops.to_string(),
                format!("{:.1}", e.seconds),
            ]
        })
        .collect();
    report.table(
        &[
            "epoch",
            "stage",
            "train loss",
            "train acc (%)",
            "valid acc (%)",
            "tau",
            "alive ops",
            "seconds",
        ],
        rows,
    );
    common::write_report(&report, &args.report_dir)
}
