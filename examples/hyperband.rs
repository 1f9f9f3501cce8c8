//! Hyperband (or BOHB) on real training, with and without continuation: NAS-Bench-201 cells
//! trained in the quickstart's setting (the embedded Fashion-MNIST subset at 16×16, C = 8,
//! N = 2, 3,000 training and 1,000 validation images, batch 64, SGD at 0.05), budgets in
//! epochs from `--min-epochs` to `--max-epochs` with reduction factor `--eta`.
//!
//! `--continuation both` (the default) runs the same search twice: once training every rung
//! from scratch (each budget annealing the learning rate over its own epochs), once with
//! [`ContinuedTraining`](nas::estimate::train::ContinuedTraining) (every budget a prefix of
//! the `--max-epochs` schedule; a promoted cell continues from its previous rung's
//! checkpoint). It prints the epochs each trained, the wall time, and each answer (the best
//! cell at the largest budget) with its NAS-Bench-201 CIFAR-10 rank when the table is found.
//!
//! ```text
//! cargo run --release --example hyperband                          # 40 trials, both ways
//! cargo run --release --example hyperband -- --method bohb --continuation on
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::train::{ContinuationStore, TrainEstimator};
use nas::space::TextFormat;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::search::SearchResult;
use nas::strategy::{Bohb, BohbConfig, Hyperband, HyperbandConfig, Outcome, Search, Strategy};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Hyperband (Li et al., JMLR 2018): random cells.
    Hyperband,
    /// BOHB (Falkner et al., ICML 2018): cells from a kernel density model.
    Bohb,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Continuation {
    /// Every rung trains from scratch.
    Off,
    /// Promoted cells continue from their previous rung.
    On,
    /// Both searches, one after the other, and the comparison.
    Both,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Hyperband or BOHB on real training, with and without continuation")]
struct Args {
    /// The multi-fidelity strategy.
    #[arg(long, value_enum, default_value = "hyperband")]
    method: Method,
    /// Continue promoted cells from their previous rung's checkpoint.
    #[arg(long, value_enum, default_value = "both")]
    continuation: Continuation,
    /// Trials (evaluations at any budget) per search.
    #[arg(long, default_value_t = 40)]
    trials: usize,
    /// The smallest budget, in epochs.
    #[arg(long, default_value_t = 1.0)]
    min_epochs: f64,
    /// The largest budget, in epochs (the schedule of continued training).
    #[arg(long, default_value_t = 9)]
    max_epochs: usize,
    /// Reduction factor η.
    #[arg(long, default_value_t = 3.0)]
    eta: f64,
    /// Trainings run at once (workers; continued ones share their checkpoints).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// The proxy task.
    #[command(flatten)]
    task: common::ProxyTask,
    /// Seed of the strategy, the data split and the training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend (default: $NAS_BACKEND, then the CPU).
    #[arg(long)]
    backend: Option<String>,
    /// NAS-Bench-201 table for the final look-up (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv).
    #[arg(long)]
    nb201: Option<PathBuf>,
}

/// One search's outcome.
struct Run {
    continued: bool,
    result: SearchResult<Nb201Arch>,
    epochs_trained: usize,
    epochs_requested: usize,
    seconds: f64,
}

struct HyperbandTask(Args, bool);

impl BackendTask for HyperbandTask {
    type Output = Result<Run, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let HyperbandTask(args, continued) = self;
        let (train, valid) = args.task.data(args.seed)?;
        let net = args.task.net();
        let config = common::train_config(args.max_epochs, 64, 0.05, args.seed);
        let make = || {
            TrainEstimator::<B, _, _>::new(
                net,
                train.clone(),
                valid.clone(),
                config.clone(),
                device.clone(),
            )
            .map_err(|e| e.to_string())
        };
        make()?;
        let hyperband = HyperbandConfig {
            min_fidelity: args.min_epochs,
            max_fidelity: args.max_epochs as f64,
            eta: args.eta,
        };
        let mut strategy: Box<dyn Strategy<Nb201Space>> = match args.method {
            Method::Hyperband => Box::new(
                Hyperband::<Nb201Space>::new(hyperband, args.seed).map_err(|e| e.to_string())?,
            ),
            Method::Bohb => Box::new(
                Bohb::<Nb201Space>::new(
                    BohbConfig {
                        hyperband,
                        ..BohbConfig::default()
                    },
                    args.seed,
                )
                .map_err(|e| e.to_string())?,
            ),
        };
        let space = Nb201Space::default();
        let search = Search::new(&space, strategy.as_mut())
            .trials(args.trials)
            .seed(args.seed);
        let store = ContinuationStore::default();
        let start = Instant::now();
        let result = if continued {
            search.run_parallel(args.workers, |_| {
                make().expect("checked above").continued_with(&store)
            })
        } else {
            search.run_parallel(args.workers, |_| make().expect("checked above"))
        };
        let seconds = start.elapsed().as_secs_f64();
        let result = result.map_err(|e| e.to_string())?;
        let (epochs_trained, epochs_requested) = if continued {
            (store.epochs_trained(), store.epochs_requested())
        } else {
            // Complete and pruned trials (a failed one's epochs are not recorded).
            let epochs = result
                .trials
                .iter()
                .filter_map(|t| match &t.outcome {
                    Outcome::Complete(m) | Outcome::Pruned(m) => m.get("epochs"),
                    _ => None,
                })
                .sum::<f64>() as usize;
            (epochs, epochs)
        };
        Ok(Run {
            continued,
            result,
            epochs_trained,
            epochs_requested,
            seconds,
        })
    }
}

/// The best cell evaluated at the largest budget, with its validation accuracy.
fn answer(run: &Run, max_epochs: usize) -> Option<(Nb201Arch, f64)> {
    run.result
        .trials
        .iter()
        .filter(|t| t.budget.fidelity.is_none_or(|f| f >= max_epochs as f64))
        .filter_map(|t| t.outcome.complete().map(|m| (t.arch, m.objective)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.max_epochs == 0 || args.trials == 0 || args.workers == 0 {
        eprintln!("error: --max-epochs, --trials and --workers must be at least 1");
        return ExitCode::from(2);
    }
    let table = match common::open_nb201(args.nb201.clone()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let modes: &[bool] = match args.continuation {
        Continuation::Off => &[false],
        Continuation::On => &[true],
        Continuation::Both => &[false, true],
    };
    println!(
        "{:?}: budgets {}–{} epochs, η = {}, {} trials, {} workers; NAS-Bench-201 cells on {}",
        args.method,
        args.min_epochs,
        args.max_epochs,
        args.eta,
        args.trials,
        args.workers,
        args.task.describe()
    );
    let mut runs = Vec::new();
    for &continued in modes {
        println!(
            "\n== {}",
            if continued {
                "with continuation (every budget a prefix of one schedule)"
            } else {
                "from scratch at every rung"
            }
        );
        match common::run_task(
            args.backend.as_deref(),
            HyperbandTask(args.clone(), continued),
        ) {
            Ok(run) => runs.push(run),
            Err(code) => return code,
        }
    }
    let space = Nb201Space::default();
    println!(
        "\n| rungs | epochs trained | epochs asked for | wall | answer (best at {} epochs) | its validation accuracy | NAS-Bench-201 CIFAR-10 rank |",
        args.max_epochs
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for run in &runs {
        let (cell, accuracy, rank) = match answer(run, args.max_epochs) {
            Some((arch, acc)) => (
                space.to_text(&arch),
                format!("{acc:.2} %"),
                table
                    .as_ref()
                    .and_then(|t| common::cifar10_rank(t, &arch))
                    .map_or("–".into(), |(a, r)| format!("{r} ({a:.2} %)")),
            ),
            None => (
                "none reached the largest budget".into(),
                "–".into(),
                "–".into(),
            ),
        };
        println!(
            "| {} | {} | {} | {:.0} s | `{cell}` | {accuracy} | {rank} |",
            if run.continued {
                "continued"
            } else {
                "from scratch"
            },
            run.epochs_trained,
            run.epochs_requested,
            run.seconds
        );
    }
    if let [scratch, continued] = &runs[..] {
        println!(
            "\ncontinuation trained {:.0} % of the epochs of training every rung from scratch",
            100.0 * continued.epochs_trained as f64 / scratch.epochs_trained.max(1) as f64
        );
    }
    ExitCode::SUCCESS
}
