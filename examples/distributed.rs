//! One NAS-Bench-201 search shared by many processes and machines through PostgreSQL.
//!
//! ```sh
//! export NAS_DATABASE_URL=postgresql://user:password@host:5432/nas   # never on the command line
//! # one coordinator (holds the strategy)...
//! cargo run --release --features postgres --example distributed -- coordinator --study demo --trials 200
//! # ...and any number of workers, on any machine that reaches the database
//! cargo run --release --features postgres --example distributed -- worker --study demo
//! ```
//!
//! The estimator is `train` (each trial trains the cell's network on the embedded 8×8 digits
//! for a few epochs; a worker per device) or `table` (NAS-Bench-201's CIFAR-10 accuracy looked
//! up, for trying the set-up in seconds: `--nb201 path/to/nats_bench_tss_200ep.csv` or
//! `$NAS_NB201_CSV`). The coordinator prints each finished trial, the best cell and its
//! NAS-Bench-201 rank when the table is given. Kill any process and start it again: nothing
//! finished is lost (docs/distributed.md).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::estimate::train::TrainEstimator;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::observe::LogObserver;
use nas::strategy::study::{
    ConnectionString, Coordinator, CoordinatorOptions, StudySpec, Worker, WorkerOptions,
};
use nas::strategy::{RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, Search};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::nb201_net::Nb201NetConfig;

#[derive(Parser, Debug)]
#[command(about = "A NAS-Bench-201 search shared through PostgreSQL")]
struct Args {
    /// Where the connection string is: env:VARIABLE or file:PATH (never the string itself:
    /// it would show in the process list).
    #[arg(long, default_value = "env:NAS_DATABASE_URL", global = true)]
    db: String,
    /// The study's name (one database holds many studies).
    #[arg(long, default_value = "nb201-demo", global = true)]
    study: String,
    /// How trials are estimated (the coordinator records it; workers must use the same).
    #[arg(long, value_enum, default_value_t = EstimatorKind::Train, global = true)]
    estimator: EstimatorKind,
    /// The NAS-Bench-201 table (`table` estimator; the coordinator also prints the answer's
    /// rank with it). Default: `$NAS_NB201_CSV`.
    #[arg(long, global = true)]
    nb201: Option<PathBuf>,
    /// Training epochs per trial (`train` estimator).
    #[arg(long, default_value_t = 4, global = true)]
    epochs: usize,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Holds the strategy: asks, hands out trials, tells their outcomes.
    Coordinator {
        /// Trials in the whole study (a restart counts those already finished).
        #[arg(long, default_value_t = 100)]
        trials: usize,
        /// The strategy.
        #[arg(long, value_enum, default_value_t = StrategyKind::Evolution)]
        strategy: StrategyKind,
        /// The strategy's seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Trials waiting or running at once: at least the number of workers.
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
        /// Seconds without a heartbeat before a trial is taken back from its worker.
        #[arg(long, default_value_t = 60.0)]
        grace: f64,
        /// How many times a lost worker's trial is handed out again before it fails.
        #[arg(long, default_value_t = 2)]
        retries: u32,
    },
    /// Claims and estimates trials until the study is done.
    Worker {
        /// Seconds between heartbeats while a trial runs.
        #[arg(long, default_value_t = 10.0)]
        heartbeat: f64,
        /// Leave after this many trials.
        #[arg(long)]
        max_trials: Option<usize>,
        /// The backend of the `train` estimator (ndarray, wgpu, cuda; default `$NAS_BACKEND`,
        /// else the CPU).
        #[arg(long)]
        backend: Option<String>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum EstimatorKind {
    /// Train the cell's network on the embedded digits.
    Train,
    /// Look the cell up in NAS-Bench-201 (CIFAR-10 test accuracy).
    Table,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum StrategyKind {
    /// Regularized evolution (population 20, sample 5).
    Evolution,
    /// Random search.
    Random,
}

/// The network each `train` trial trains: C = 8, N = 1 on 8×8 one-channel images.
fn network() -> Nb201NetConfig {
    Nb201NetConfig {
        channels: 8,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    }
}

fn evolution() -> RegularizedEvolutionConfig {
    RegularizedEvolutionConfig {
        population_size: 20,
        sample_size: 5,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let url = match ConnectionString::from_source(&args.db) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match &args.role {
        Role::Coordinator { .. } => coordinator(&args, &url),
        Role::Worker { backend, .. } => {
            let task = WorkerTask { args: &args, url };
            return common::run_to_exit(backend.as_deref(), task);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A positive period of at most 7 days given in seconds on the command line.
fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    if !(value > 0.0 && value <= 7.0 * 86_400.0) {
        return Err(format!(
            "{flag} must be a number of seconds between 0 and 604800 (7 days), got {value}"
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

/// The table, when the estimator needs it or the coordinator can rank its answer with it.
fn table(args: &Args, required: bool) -> Result<Option<Nb201Table>, String> {
    let path = args.nb201.clone().or_else(Nb201Table::path_from_env);
    match path {
        Some(p) => Nb201Table::open(&p).map(Some).map_err(|e| e.to_string()),
        None if required => Err(
            "the table estimator needs NAS-Bench-201: --nb201 path/to/nats_bench_tss_200ep.csv \
             or NAS_NB201_CSV"
                .into(),
        ),
        None => Ok(None),
    }
}

/// What the study records about its estimator: workers with other settings are refused.
fn space_config(args: &Args) -> serde_json::Value {
    match args.estimator {
        EstimatorKind::Table => serde_json::json!({ "estimator": "nb201-table-cifar10" }),
        EstimatorKind::Train => serde_json::json!({
            "estimator": "train-digits",
            "network": { "channels": network().channels, "cells": network().cells_per_stage },
            "epochs": args.epochs,
        }),
    }
}

fn coordinator(args: &Args, url: &ConnectionString) -> Result<(), String> {
    let Role::Coordinator {
        trials,
        strategy,
        seed,
        in_flight,
        grace,
        retries,
    } = args.role
    else {
        unreachable!("called for the coordinator")
    };
    let grace = seconds("--grace", grace)?;
    let table = table(args, false)?;
    let space = Nb201Space::default();
    let spec = StudySpec::new(&args.study, &space)
        .space_config(&space_config(args))
        .and_then(|s| match strategy {
            StrategyKind::Evolution => s.strategy("regularized_evolution", &evolution(), seed),
            StrategyKind::Random => s.strategy("random", &(), seed),
        })
        .map_err(|e| e.to_string())?
        .objective(match args.estimator {
            EstimatorKind::Train => "valid_accuracy",
            EstimatorKind::Table => "cifar10_test_accuracy",
        });
    let options = CoordinatorOptions {
        in_flight,
        grace,
        max_retries: retries,
        ..CoordinatorOptions::default()
    };
    let coordinator = Coordinator::open(url, &spec, options).map_err(|e| e.to_string())?;
    println!(
        "study `{}`: {trials} trials, {strategy:?} (seed {seed}), {:?} estimator; start workers with \
         `--example distributed -- worker --study {}`",
        args.study, args.estimator, args.study
    );
    let mut evolution_strategy;
    let mut random_strategy;
    let search = match strategy {
        StrategyKind::Evolution => {
            evolution_strategy =
                RegularizedEvolution::new(evolution(), seed).map_err(|e| e.to_string())?;
            Search::new(
                &space,
                &mut evolution_strategy as &mut dyn nas::strategy::Strategy<_>,
            )
        }
        StrategyKind::Random => {
            random_strategy = RandomSearch::new(seed);
            Search::new(
                &space,
                &mut random_strategy as &mut dyn nas::strategy::Strategy<_>,
            )
        }
    };
    let result = search
        .trials(trials)
        .observer(LogObserver::stderr().with_arch_format(|a: &Nb201Arch| a.to_string()))
        .run_study(coordinator)
        .map_err(|e| e.to_string())?;
    let Some(best) = result.best() else {
        return Err("no trial completed".into());
    };
    println!(
        "best of {} trials: {} (objective {:.4}, trial {})",
        result.trials.len(),
        best.arch,
        best.objective().unwrap_or(f64::NAN),
        best.id
    );
    if let Some((accuracy, rank)) = table
        .as_ref()
        .and_then(|t| common::cifar10_rank(t, &best.arch))
    {
        println!("NAS-Bench-201 (200 epochs): CIFAR-10 {accuracy:.2}%, rank {rank} of 15,625");
    }
    Ok(())
}

/// A worker, on the backend the command line names.
struct WorkerTask<'a> {
    args: &'a Args,
    url: ConnectionString,
}

impl BackendTask for WorkerTask<'_> {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Result<(), String> {
        let args = self.args;
        let Role::Worker {
            heartbeat,
            max_trials,
            ..
        } = args.role
        else {
            unreachable!("called for a worker")
        };
        let options = WorkerOptions {
            heartbeat: seconds("--heartbeat", heartbeat)?,
            max_trials,
            ..WorkerOptions::default()
        };
        let space = Nb201Space::default();
        let mut worker =
            Worker::open(&self.url, &args.study, &space, options).map_err(|e| e.to_string())?;
        worker
            .expect_space_config(&space_config(args))
            .map_err(|e| e.to_string())?;
        println!("worker {} of study `{}`", worker.id(), args.study);
        let summary = match args.estimator {
            EstimatorKind::Table => {
                let table = table(args, true)?.expect("required");
                let mut oracle = table.estimator(Nb201Dataset::Cifar10);
                worker.run::<Nb201Arch, _>(&mut oracle)
            }
            EstimatorKind::Train => {
                let (train, valid) = common::digits(0)?;
                let config = common::train_config(args.epochs, 64, 0.05, 0);
                let mut estimator =
                    TrainEstimator::<B, _, _>::new(network(), train, valid, config, device)
                        .map_err(|e| e.to_string())?;
                worker.run::<Nb201Arch, _>(&mut estimator)
            }
        }
        .map_err(|e| e.to_string())?;
        println!(
            "worker {} done: {} trials ({} failed, {} taken back from it)",
            summary.worker, summary.finished, summary.failed, summary.lost
        );
        Ok(())
    }
}
