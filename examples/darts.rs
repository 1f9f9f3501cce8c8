//! Differentiable architecture search: DARTS (first and second order), GDAS, SNAS, ASAP and
//! P-DARTS on a supernet of the NAS-Bench-201 or the DARTS space.
//!
//! Searches on the UCI digits embedded in the library by default (or Fashion-MNIST / CIFAR-10
//! from a directory), printing after every epoch the softmaxed alphas, the derived architecture
//! in its published format and the peak memory of a step; then trains the derived network
//! briefly from scratch and reports its accuracy. On the NAS-Bench-201 space it looks the
//! derived cell up in the NAS-Bench-201 table when the table is found.
//!
//! `--final-epochs N` (default 5; 0 skips it) trains the derived network from scratch for N
//! epochs and saves it into `<report-dir>/network` (`network.json` and `weights.mpk`; load it
//! with `nas::supernet::persist::load_network`). The run ends by writing a report page,
//! `<report-dir>/report.html` (default `runs/darts/report.html`), with SVG figures: the
//! accuracy of the alpha steps per epoch, the derived cell(s), the test accuracy of the final
//! training, and a table of the epochs.
//!
//! ```text
//! cargo run --release --example darts                                # DARTS on NB201, digits
//! cargo run --release --example darts -- --method darts2 --space darts
//! cargo run --release --example darts -- --method gdas --epochs 10
//! cargo run --release --example darts -- --data path/to/fashion-mnist --method pdarts
//! cargo run --release --example darts -- --final-epochs 20 --report-dir runs/darts-long
//! NAS_BACKEND=wgpu cargo run --release --features wgpu --example darts
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::strategy::report::Report;
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::darts_search::method::PdartsConfig;
use nas::supernet::darts_search::{
    DerivedArch, EpochReport, Method, SearchConfig, SearchError, SearchReport, Searcher,
    SupernetConfig,
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
    #[arg(long, default_value_t = 6)]
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
    /// Data directory: Fashion-MNIST (IDX files) or CIFAR-10 (binary batches). Default: the
    /// embedded digits.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use at most this many training images (a random subset) for the search.
    #[arg(long)]
    samples: Option<usize>,
    /// Epochs to train the derived network from scratch and save it into
    /// <report-dir>/network (0: skip).
    #[arg(long, alias = "train-epochs", default_value_t = 5)]
    final_epochs: usize,
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
    Ok(m)
}

fn print_epoch(e: &EpochReport, layout: &nas::supernet::darts_search::ArchLayout, quiet: bool) {
    let mib = |b: Option<usize>| {
        b.map_or("n/a".to_string(), |b| {
            format!("{:.1} MiB", b as f64 / 1048576.0)
        })
    };
    println!(
        "stage {} epoch {:>2}: train loss {:.3} acc {:5.1}% | alpha-half loss {:.3} acc {:5.1}% | tau {:.2} skip-dropout {:.2} | {} ops alive | {:.2} s/step, peak {} (step {})",
        e.stage,
        e.epoch,
        e.train_loss,
        e.train_accuracy,
        e.valid_loss,
        e.valid_accuracy,
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
    report: SearchReport<DerivedArch>,
    /// The final training's report and the directory the network was saved in.
    train: Option<(TrainReport, PathBuf)>,
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
        let config = SearchConfig {
            method: method(&args).map_err(|e| e.to_string())?,
            epochs: args.epochs,
            batch_size: args.batch_size,
            augment,
            seed: args.seed,
            ..SearchConfig::default()
        };
        let (space_name, shape_text) = (space.space_name(), format!("{space:?}"));
        println!(
            "{} on the {} space ({:?}); {} search images ({} for the weights, {} for the alphas), {} test images",
            config.method.name(),
            space.space_name(),
            space,
            search_data.len(),
            (search_data.len() as f64 * config.train_portion).round(),
            search_data.len() - (search_data.len() as f64 * config.train_portion).round() as usize,
            test.len()
        );
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
        let report = match result.map_err(SearchError::from_driver) {
            Ok(_) => solver.report(history),
            Err(e @ SearchError::Diverged { .. }) => {
                println!("{e}");
                println!("last good architecture: {}", solver.searcher().derive());
                return Err("the search diverged".into());
            }
            Err(e) => return Err(e.to_string()),
        };
        println!(
            "\nsearch: {:.1} s; derived architecture:\n{}",
            search_seconds, report.derived
        );

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
        let intro = format!(
            "{} on the {} space ({}): {} search epochs{}, batch size {}, seed {}; {} search images of {} ({} for the weights, the rest for the alphas), {} test images.",
            config.method.name(),
            space_name,
            shape_text,
            config.epochs,
            if config.method.stages() > 1 {
                format!(" per stage × {} stages", config.method.stages())
            } else {
                String::new()
            },
            config.batch_size,
            args.seed,
            search_data.len(),
            train.name(),
            (search_data.len() as f64 * config.train_portion).round(),
            test.len()
        );
        Ok(Outcome {
            report,
            train: train_report,
            search_seconds,
            intro,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match common::run_task(args.backend.as_deref(), Run(args.clone())) {
        Ok(o) => o,
        Err(code) => return code,
    };
    if let DerivedArch::Nb201(arch) = &outcome.report.derived {
        common::nb201_lookup(arch, args.nb201.clone(), "DARTS");
    }
    if let Some((t, _)) = &outcome.train {
        println!(
            "derived network: {:.2}% test accuracy after {} epochs (search took {:.1} s)",
            t.final_accuracy().unwrap_or(0.0),
            t.valid_accuracy.len(),
            outcome.search_seconds
        );
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
    match write_report(&args, &outcome) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `<report-dir>/report.html`: the accuracy of the alpha steps per epoch, the derived
/// architecture, the final training's test accuracy and a table of the epochs.
fn write_report(args: &Args, outcome: &Outcome) -> Result<PathBuf, String> {
    let search = &outcome.report;
    let mut report = Report::new(format!("{} search ({} space)", args.method, args.space));
    report.intro(outcome.intro.clone());
    let valid: Vec<f64> = search.epochs.iter().map(|e| e.valid_accuracy).collect();
    report
        .curve(
            "search_accuracy.svg",
            "accuracy of the alpha steps (held-out half of the search images) per epoch",
            "epoch",
            "accuracy (%)",
            &valid,
        )
        .map_err(|e| e.to_string())?;
    common::derived_figures(&mut report, &search.derived, "derived architecture")?;
    report.paragraph(format!("The search took {:.1} s.", outcome.search_seconds));
    let (curve, saved) = match &outcome.train {
        Some((t, dir)) => (Some(t.valid_accuracy.as_slice()), Some(dir.as_path())),
        None => (None, None),
    };
    common::final_training_section(&mut report, curve, "test accuracy", saved)?;
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
