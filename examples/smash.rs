//! SMASH (Brock et al., *SMASH: One-Shot Model Architecture Search through HyperNetworks*):
//! a hypernetwork generates the convolution weights of each NAS-Bench-201 cell from the
//! encoding of the whole architecture; it trains on one uniformly sampled architecture per
//! step, then ranks random architectures by their validation accuracy with the weights
//! generated for them (batch norm recalibrated), and compares with their stand-alone accuracy
//! (each trained from scratch on the same data) by Kendall's τ, as the `oneshot` example does
//! for weight sharing.
//!
//! ```text
//! cargo run --release --example smash                     # a few minutes on 2 cores
//! cargo run --release --example smash -- --archs 20 --epochs 30 --standalone-epochs 5
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
use nas::supernet::oneshot::train::StepInfo;
use nas::supernet::oneshot::{SinglePath, SmashConfig, SmashNb201, UniformSampler};

#[derive(Parser, Debug, Clone)]
#[command(
    about = "SMASH: a hypernetwork generates NAS-Bench-201 cells' weights; rank correlation with stand-alone training"
)]
struct Args {
    /// Hypernetwork training epochs (one uniformly sampled architecture per step).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Size of the architecture embedding the weights are generated from.
    #[arg(long, default_value_t = 64)]
    embedding: usize,
    /// The ablation: the same network and training with weights that do not depend on the
    /// architecture (each generator's bias only): plain single-path weight sharing.
    #[arg(long)]
    unconditioned: bool,
    /// Learning rate of the hypernetwork and the other parameters (SGD with momentum, cosine).
    #[arg(long, default_value_t = 0.05)]
    learning_rate: f64,
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
    /// Training batches the batch norms of each architecture are recalibrated on.
    #[arg(long, default_value_t = 8)]
    recalibration_batches: usize,
    #[command(flatten)]
    run: common::RunArgs,
}

struct Smash(Args);

impl BackendTask for Smash {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let seed = args.run.seed;
        let digits = common::Digits::new(seed)?;
        let start = Instant::now();
        let space = Nb201Space::default();
        let net = common::NetShape::new(args.channels, Some(args.cells), &digits.train).nb201();
        let config = SmashConfig {
            embedding: args.embedding,
            conditioned: !args.unconditioned,
            ..SmashConfig::new(net)
        };
        let smash: SmashNb201<B> = seeded(&device, seed, || config.init::<B>(&space, &device))
            .map_err(|e| e.to_string())?;
        if args.unconditioned {
            println!(
                "SMASH ablation: NAS-Bench-201 cells whose convolution weights do not depend on the architecture (shared); C = {}, N = {}",
                args.channels, args.cells
            );
        } else {
            println!(
                "SMASH: NAS-Bench-201 cells whose convolution weights are generated from a {}-dimensional embedding of the architecture; C = {}, N = {}",
                args.embedding, args.channels, args.cells
            );
        }
        let train = common::train_config(args.epochs, 64, args.learning_rate, seed);
        // Each step's architecture comes from a generator seeded by the step, so that a
        // resumed training samples the same ones as an uninterrupted one.
        let sampler = UniformSampler::new(space.clone(), mix_seed(seed, 1, 0));
        let mut training = digits.supernet_training(
            smash,
            &train,
            &device,
            |net: &SmashNb201<B>, images, info: StepInfo| {
                net.path_logits(images, &sampler.sample_at(info.step))
            },
        )?;
        let path = format!(
            "runs/smash/seed{seed}{}/hypernet.ckpt",
            if args.unconditioned { "-shared" } else { "" }
        );
        common::train_supernet(&args.run.checkpoint, &mut training, path, "accuracy")?;
        let (smash, _) = training.into_parts();
        let train_seconds = start.elapsed().as_secs_f64();

        let archs = common::distinct_nb201_archs(&space, args.archs, seed);
        let recalibration = WeightSharingConfig {
            recalibration_batches: args.recalibration_batches,
            batch_size: 64,
            seed,
        };
        let mut scored = digits.weight_sharing(smash, recalibration, &device)?;
        let standalone_config = common::train_config(args.standalone_epochs, 64, 0.05, seed);
        let mut standalone =
            digits.scratch_estimator::<B, _, _>(net, standalone_config, &device)?;
        let (score_seconds, alone_seconds) = common::rank_against_standalone(
            &space,
            &archs,
            &mut scored,
            &mut standalone,
            "SMASH",
            "SMASH score",
        )?;
        println!(
            "hypernetwork training {train_seconds:.1}s; SMASH score {:.2}s per architecture; stand-alone training {:.1}s per architecture; total {:.1} min",
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
    common::run_to_exit(backend.as_deref(), Smash(args))
}
