//! One-Shot (Bender et al., *Understanding and Simplifying One-Shot Architecture Search*):
//! train a supernet of NAS-Bench-201 cells that runs every candidate operation, with path
//! dropout on a linear schedule; then rank random architectures by their one-shot accuracy
//! (inherited weights, batch norm recalibrated) and compare with their stand-alone accuracy
//! (each trained from scratch by the train-from-scratch estimator on the same data), by
//! Kendall's τ.
//!
//! ```text
//! cargo run --release --example oneshot                   # a few minutes on 2 cores
//! cargo run --release --example oneshot -- --archs 30 --epochs 20 --standalone-epochs 5
//! ```

mod common;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::weight_sharing::WeightSharingConfig;
use nas::space::nb201::Nb201Space;
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::network::{mix_seed, seeded};
use nas::supernet::oneshot::Nb201Supernet;
use nas::supernet::oneshot::path_dropout::PathDropout;
use nas::supernet::oneshot::train::StepInfo;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

#[derive(Parser, Debug, Clone)]
#[command(
    about = "One-Shot: path-dropout supernet on NAS-Bench-201 cells, rank correlation with stand-alone training"
)]
struct Args {
    /// Supernet training epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Final path-dropout rate r (each of k paths is dropped with probability r^(1/k)).
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// Ghost batch norm (Bender et al.): each ghost batch of this many images gets its own
    /// dropout masks and batch statistics (the paper: 32 of 1,024); 0: the whole batch of 64.
    #[arg(long, default_value_t = 0)]
    ghost_batch: usize,
    /// Channels of the first stage (the benchmark: 16).
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Cells per stage (the benchmark: 5).
    #[arg(long, default_value_t = 1)]
    cells: usize,
    /// Random architectures to rank.
    #[arg(long, default_value_t = 12)]
    archs: usize,
    /// Epochs of each stand-alone training.
    #[arg(long, default_value_t = 3)]
    standalone_epochs: usize,
    /// Training batches the batch norms of each path are recalibrated on.
    #[arg(long, default_value_t = 8)]
    recalibration_batches: usize,
    #[command(flatten)]
    run: common::RunArgs,
}

struct OneShot(Args);

impl BackendTask for OneShot {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let seed = args.run.seed;
        let digits = common::Digits::new(seed)?;
        let start = Instant::now();
        let space = Nb201Space::default();
        let net = common::NetShape::new(args.channels, Some(args.cells), &digits.train).nb201();
        let dropout = PathDropout::new(args.dropout).map_err(|e| e.to_string())?;
        let supernet = seeded(&device, seed, || net.supernet::<B>(&space, &device))
            .map_err(|e| e.to_string())?;
        println!(
            "One-Shot supernet: NAS-Bench-201 cells with {} candidates per edge, C = {}, N = {}; path dropout up to r = {}",
            supernet.candidates().len(),
            args.channels,
            args.cells,
            args.dropout
        );
        let config = common::train_config(args.epochs, 64, 0.05, seed);
        // Each step's dropout draws from a generator seeded by the step, so that a resumed
        // training drops the same paths as an uninterrupted one.
        let mut training = digits.supernet_training(
            supernet,
            &config,
            &device,
            |net: &Nb201Supernet<B>, images, info: StepInfo| {
                let rate = dropout.rate_at(info.step, info.total_steps);
                let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 1, info.step as u64));
                net.ghost_dropout_logits(images, rate, args.ghost_batch, &mut rng)
            },
        )?;
        let path = format!("runs/oneshot/seed{seed}/supernet.ckpt");
        common::train_supernet(&args.run.checkpoint, &mut training, path, "accuracy")?;
        let (supernet, _) = training.into_parts();
        let train_seconds = start.elapsed().as_secs_f64();

        let archs = common::distinct_nb201_archs(&space, args.archs, seed);
        let recalibration = WeightSharingConfig {
            recalibration_batches: args.recalibration_batches,
            batch_size: 64,
            seed,
        };
        let mut one_shot = digits.weight_sharing(supernet, recalibration, &device)?;
        let standalone_config = common::train_config(args.standalone_epochs, 64, 0.05, seed);
        let mut standalone =
            digits.scratch_estimator::<B, _, _>(net, standalone_config, &device)?;
        let (score_seconds, alone_seconds) = common::rank_against_standalone(
            &space,
            &archs,
            &mut one_shot,
            &mut standalone,
            "one-shot",
            "one-shot",
        )?;
        println!(
            "supernet training {train_seconds:.1}s; one-shot score {:.2}s per architecture; stand-alone training {:.1}s per architecture; total {:.1} min",
            score_seconds,
            alone_seconds,
            start.elapsed().as_secs_f64() / 60.0
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.run.backend.clone();
    common::run_to_exit(backend.as_deref(), OneShot(args))
}
