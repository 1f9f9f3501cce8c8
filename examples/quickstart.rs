//! Quickstart: a real architecture search on a fresh machine, with no download.
//!
//! Regularized evolution over the NAS-Bench-201 cell space; every proposed cell is built into
//! the NAS-Bench-201 network, trained from scratch on the UCI digits embedded in the library
//! (a proxy task: 8×8 images, a narrow and shallow network, a few epochs), and scored by its
//! validation accuracy. Prints progress, writes every trial to a JSON-lines journal, and prints
//! the best cell in the benchmark's notation. Where the NAS-Bench-201 table is available it
//! also looks the best cell up there, to show what the proxy found on CIFAR-10 terms.
//!
//! ```text
//! cargo run --release --example quickstart                 # ~10 minutes on 2 cores
//! cargo run --release --example quickstart -- --trials 10 --epochs 2
//! cargo run --release --example quickstart -- --resume   # continue a killed run
//! NAS_BACKEND=wgpu cargo run --release --features wgpu --example quickstart
//! ```

use std::path::PathBuf;
mod common;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::tabular::Nb201Table;
use nas::estimate::train::TrainEstimator;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::space::{Canonicalize, TextFormat};
use nas::strategy::search::{self, TrialRecord};
use nas::strategy::{Outcome, RegularizedEvolution, RegularizedEvolutionConfig};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::nb201_net::Nb201NetConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "Regularized evolution over NAS-Bench-201 cells, trained on the embedded digits")]
struct Args {
    /// Architectures to train and evaluate.
    #[arg(long, default_value_t = 50)]
    trials: usize,
    /// Training epochs per architecture (the proxy budget).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Channels of the network's first stage (the benchmark uses 16).
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Cells per stage (the benchmark uses 5).
    #[arg(long, default_value_t = 1)]
    cells: usize,
    /// Population size P and tournament size S of regularized evolution.
    #[arg(long, default_value_t = 10)]
    population: usize,
    /// Tournament size S.
    #[arg(long, default_value_t = 3)]
    sample: usize,
    /// Seed of the search and of every training run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend: ndarray, flex, wgpu or cuda (default: $NAS_BACKEND, else the CPU backend).
    #[arg(long)]
    backend: Option<String>,
    /// Directory for the journal and the result.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Resume the search recorded in the journal (`<out>/trials.jsonl`) instead of starting
    /// anew: finished trials are replayed, not trained again.
    #[arg(long)]
    resume: bool,
    /// NAS-Bench-201 table to look the best cell up in (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv; skipped when absent).
    #[arg(long)]
    nb201: Option<PathBuf>,
}

struct Search(Args);

impl BackendTask for Search {
    type Output = Result<Vec<TrialRecord<Nb201Arch>>, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let (train, valid) = common::digits(args.seed)?;
        let net = Nb201NetConfig {
            channels: args.channels,
            cells_per_stage: args.cells,
            in_channels: 1,
            num_classes: 10,
        };
        let config = common::train_config(args.epochs, 64, 0.05, args.seed);
        println!(
            "training set {} images, validation {} images; network C = {}, N = {}; {} epochs per trial",
            train.len(),
            valid.len(),
            args.channels,
            args.cells,
            args.epochs
        );
        let mut estimator = TrainEstimator::<B, _, _>::new(net, train, valid, config, device)
            .map_err(|e| e.to_string())?;
        let space = Nb201Space::default();
        let mut strategy = RegularizedEvolution::<Nb201Space>::new(
            RegularizedEvolutionConfig {
                population_size: args.population,
                sample_size: args.sample,
            },
            args.seed,
        )
        .map_err(|e| e.to_string())?;

        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let journal_path = args.out.join("trials.jsonl");
        if !args.resume && journal_path.exists() {
            std::fs::remove_file(&journal_path)
                .map_err(|e| format!("{}: {e}", journal_path.display()))?;
        }
        let replayed = std::fs::read_to_string(&journal_path)
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0);
        if replayed > 0 {
            println!(
                "resuming: {replayed} finished trials in {}",
                journal_path.display()
            );
        }
        let start = Instant::now();
        let mut best = f64::NEG_INFINITY;
        let mut done = replayed.min(args.trials);
        let observe = |t: &TrialRecord<Nb201Arch>| {
            done += 1;
            let status = match &t.outcome {
                Outcome::Complete(m) => {
                    best = best.max(m.objective);
                    format!("acc {:5.1}%", m.objective)
                }
                Outcome::Pruned(_) => "pruned     ".into(),
                Outcome::Failed(why) => format!("failed ({why})"),
            };
            println!(
                "[{done:>3}/{}] {status}  best {best:5.1}%  {:5.1}s  {}",
                args.trials,
                t.seconds,
                space.to_text(&t.arch)
            );
        };
        let result = match search::run_with_journal(
            &space,
            &mut strategy,
            &mut estimator,
            args.trials,
            &journal_path,
            observe,
        ) {
            Ok(r) => r,
            Err(stop) => {
                eprintln!("{stop}");
                stop.partial
            }
        };
        println!(
            "\n{} trials in {:.1} min; journal: {}",
            result.trials.len(),
            start.elapsed().as_secs_f64() / 60.0,
            journal_path.display()
        );
        Ok(result.trials)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let trials = match common::run_task(args.backend.clone().as_deref(), Search(args.clone())) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let result = search::SearchResult::from_trials(trials);
    let Some(best) = result.best() else {
        eprintln!("no trial completed");
        return ExitCode::FAILURE;
    };
    let space = Nb201Space::default();
    let m = best
        .outcome
        .complete()
        .expect("best() returns a complete trial");
    println!("best cell: {}", space.to_text(&best.arch));
    println!(
        "  validation accuracy {:.2}% on the digits proxy, {} parameters, {:.2} ms latency",
        m.objective,
        m.get("params").unwrap_or(0.0),
        m.get("latency_ms").unwrap_or(0.0)
    );
    if let Ok(canon) = space.canonical(&best.arch) {
        println!("  canonical form: {canon}");
    }
    let table = Nb201Table::open(common::nb201_path(args.nb201)).ok();
    if let Some((acc, rank)) = table.and_then(|t| common::cifar10_rank(&t, &best.arch)) {
        println!(
            "  NAS-Bench-201 (200 epochs, CIFAR-10): {acc:.2}% test accuracy, rank {rank} of 15625 (optimum 94.37%)"
        );
    }
    let out = args.out.join("best.json");
    let written = serde_json::to_string_pretty(best)
        .map_err(|e| e.to_string())
        .and_then(|json| std::fs::write(&out, json).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("result: {}", out.display());
    ExitCode::SUCCESS
}
