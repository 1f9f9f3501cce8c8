//! ENAS (Pham et al. 2018): an LSTM controller samples child cells, the children share the
//! weights of one supernet, and the search alternates training the shared weights on sampled
//! children with training the controller by REINFORCE on the children's validation accuracy
//! under the shared weights. The final cell is the best of many samples by shared-weight
//! accuracy; it is then trained from scratch.
//!
//! ```text
//! cargo run --release --example enas                       # ENAS' micro space on the embedded digits
//! cargo run --release --example enas -- --space nb201      # NAS-Bench-201; looks the cell up in the table
//! cargo run --release --example enas -- --data path/to/fashion-mnist --epochs 20 --backend wgpu
//! ```
//!
//! `--space enas` is ENAS' micro space (5 nodes per cell, two inputs each, the operations
//! sep_conv_3x3/5x5, avg/max pooling and identity, loose ends concatenated) in a DARTS-style
//! macro network; `--space nb201` the NAS-Bench-201 cell. The data are the embedded 8×8 digits
//! (70 % searched on, split in half for the shared weights and the controller's rewards, 30 %
//! held out for the from-scratch test), or Fashion-MNIST / CIFAR-10 from `--data`.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::space::darts::{DartsConfig, DartsSpace};
use nas::space::nb201::Nb201Space;
use nas::space::{Enumerable, Sequential};
use nas::strategy::controller::ControllerConfig;
use nas::strategy::{Enas, EnasConfig, EnasEpoch};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::module::AutodiffModule;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::darts_search::DerivedArch;
use nas::supernet::darts_search::supernet::DartsSupernet;
use nas::supernet::data::ImageDataset;
use nas::supernet::network::seeded;
use nas::supernet::oneshot::SinglePath;
use nas::supernet::train::{TrainConfig, TrainReport};

#[derive(Parser, Debug, Clone)]
#[command(about = "ENAS: weight sharing with an LSTM controller trained by REINFORCE")]
struct Args {
    /// Search space: `enas` (ENAS' micro cell space) or `nb201` (NAS-Bench-201).
    #[arg(long, default_value = "enas")]
    space: String,
    /// Directory with Fashion-MNIST IDX files or CIFAR-10 binary batches (default: the
    /// embedded digits).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use only this many training images for the search (default: all).
    #[arg(long)]
    samples: Option<usize>,
    /// ENAS epochs (each: one pass of the shared weights, then the controller's updates;
    /// the paper: 150).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Initial channels of the supernet and of the retrained network.
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Cells of the DARTS-style network (enas space), or cells per stage (nb201).
    #[arg(long)]
    cells: Option<usize>,
    /// Minibatch size of the shared weights and of the rewards.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Controller updates per epoch (the paper: 30).
    #[arg(long, default_value_t = 10)]
    controller_steps: usize,
    /// Children per controller update (the paper: 10).
    #[arg(long, default_value_t = 10)]
    controller_batch: usize,
    /// Children sampled to derive the final architecture.
    #[arg(long, default_value_t = 100)]
    derive_samples: usize,
    /// Epochs of training the derived architecture from scratch (0: skip).
    #[arg(long, default_value_t = 3)]
    train_epochs: usize,
    #[command(flatten)]
    run: common::RunArgs,
    /// Path of `nats_bench_tss_200ep.csv` for `--space nb201` (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv; skipped when absent).
    #[arg(long)]
    nb201: Option<PathBuf>,
}

fn print_epoch<A: std::fmt::Display>(e: &EnasEpoch<A>, epochs: usize) {
    println!(
        "epoch {:>2}/{epochs}: shared weights loss {:.3} acc {:5.1}% ({:.1} s) | controller mean reward {:.3} baseline {:.3} entropy {:.2} ({:.1} s) | best child {:.3}: {}",
        e.epoch + 1,
        e.train_loss,
        e.train_accuracy,
        e.weight_seconds,
        e.mean_reward,
        e.baseline,
        e.entropy,
        e.controller_seconds,
        e.best.1,
        e.best.0,
    );
}

/// ENAS' split of the search data: the shared weights train on one half, the controller's
/// rewards come from the other.
struct Halves {
    weights: ImageDataset,
    rewards: ImageDataset,
}

/// The search, generic over the space and its supernet; returns the derived architecture.
fn search<S, B, N>(
    space: S,
    supernet: N,
    args: &Args,
    halves: &Halves,
    device: &Device<B>,
) -> Result<S::Arch, String>
where
    S: Sequential,
    S::Arch: std::fmt::Display,
    B: AutodiffBackend,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
    N::InnerModule: SinglePath<B::InnerBackend, Arch = S::Arch>,
{
    let (search_train, search_valid) = (&halves.weights, &halves.rewards);
    let normalize = search_train.channel_stats();
    let config = EnasConfig {
        child: TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            ..EnasConfig::default().child
        },
        controller: ControllerConfig {
            learning_rate: 3.5e-3,
            tanh_constant: Some(1.1),
            ..ControllerConfig::default()
        },
        controller_steps: args.controller_steps,
        controller_batch: args.controller_batch,
        reward_batch_size: args.batch_size,
        derive_samples: args.derive_samples,
        derive_top: args.derive_samples.min(5),
        seed: args.run.seed,
    };
    let mut enas: Enas<S, B, N> = Enas::new(
        space,
        supernet,
        config,
        search_train.len(),
        search_valid,
        &normalize,
        device,
    )
    .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let path = format!(
        "runs/enas/{}-seed{}/checkpoint.bin",
        args.space, args.run.seed
    );
    let mut epochs = enas.epochs(search_train, &normalize);
    let mut driver = args
        .run
        .checkpoint
        .driver(&mut epochs, path)
        .observer(|_: usize, e: &EnasEpoch<S::Arch>| print_epoch(e, args.epochs));
    let result = driver.run();
    drop(driver);
    if let Ok(summary) = &result
        && let Some(at) = summary.resumed_at
    {
        println!("resumed after epoch {at} of {}", args.epochs);
    }
    if let Err(e) = result {
        // The epochs that finished are kept: derive from them.
        eprintln!(
            "search stopped after {} epochs: {e}; deriving from the shared weights so far",
            enas.history().len()
        );
    }
    let derived = enas.derive().map_err(|e| e.to_string())?;
    println!(
        "\nsearch: {:.1} s; {} children sampled to derive, the best {} rescored on {} validation images:",
        start.elapsed().as_secs_f64(),
        args.derive_samples,
        derived.candidates.len(),
        search_valid.len()
    );
    for (arch, reward, acc) in &derived.candidates {
        println!("  minibatch {reward:.3}, whole set {acc:5.1}%: {arch}");
    }
    println!(
        "derived architecture (shared-weight validation accuracy {:.1}%):\n{}",
        derived.validation_accuracy, derived.arch
    );
    Ok(derived.arch)
}

struct Run(Args);

impl BackendTask for Run {
    type Output = Result<(DerivedArch, Option<TrainReport>), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let (train, test) = common::load(args.data.as_deref(), args.run.seed)?;
        let search_data = common::subset(&train, args.samples, args.run.seed);
        let (weights, rewards) = search_data
            .split(0.5, args.run.seed)
            .map_err(|e| e.to_string())?;
        let halves = Halves { weights, rewards };
        let shape = common::NetShape::new(args.channels, args.cells, &train);
        println!(
            "ENAS on {} ({} images for the shared weights, {} for the rewards, {} held out), space {}",
            train.name(),
            halves.weights.len(),
            halves.rewards.len(),
            test.len(),
            args.space
        );
        let derived = match args.space.as_str() {
            "enas" => {
                let space = DartsSpace::new(DartsConfig::enas()).map_err(|e| e.to_string())?;
                let config = shape.darts_supernet(space.steps());
                let supernet = seeded(&device, args.run.seed, || {
                    DartsSupernet::<B>::single_path(&config, &space, &device)
                })
                .map_err(|e| e.to_string())?;
                println!(
                    "supernet: {} cells, C = {}, {} decisions per architecture, {:.3e} architectures",
                    config.layers,
                    config.channels,
                    space.decisions().len(),
                    space.size() as f64
                );
                DerivedArch::Darts(search(space, supernet, &args, &halves, &device)?)
            }
            "nb201" => {
                let space = Nb201Space::default();
                let net = shape.nb201();
                let supernet = seeded(&device, args.run.seed, || {
                    net.supernet::<B>(&space, &device)
                })
                .map_err(|e| e.to_string())?;
                DerivedArch::Nb201(search(space, supernet, &args, &halves, &device)?)
            }
            other => {
                return Err(format!(
                    "unknown space `{other}`: expected `enas` or `nb201`"
                ));
            }
        };

        if args.train_epochs == 0 {
            return Ok((derived, None));
        }
        let tc = common::train_config(args.train_epochs, 64, 0.05, args.run.seed);
        let print = |epoch: usize, r: &TrainReport| {
            println!(
                "  epoch {}: train loss {:.3}, test accuracy {:.2}%",
                epoch + 1,
                r.train_loss[epoch],
                r.valid_accuracy[epoch]
            )
        };
        println!(
            "\ntraining the derived network from scratch ({} epochs, {} training / {} test images):",
            tc.epochs,
            train.len(),
            test.len()
        );
        let report = common::retrain::<B>(&derived, &shape, (&train, &test), &tc, &device, print)?;
        Ok((derived, Some(report)))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.run.backend.clone();
    let nb201_path = args.nb201.clone();
    match common::run_task(backend.as_deref(), Run(args)) {
        Ok((derived, _)) => {
            if let DerivedArch::Nb201(arch) = derived {
                common::nb201_lookup(&arch, nb201_path, "ENAS");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
