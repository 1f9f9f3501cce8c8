//! Do the training tricks of Nekrasov et al. (CVPR 2019) make a short proxy training rank
//! architectures more like a long one? Trains random NAS-Bench-201 cells in the quickstart's
//! setting (the embedded Fashion-MNIST subset at 16×16, C = 8, N = 2, 3,000 training and
//! 1,000 validation images, batch 64, SGD at 0.05, cosine schedule) once for `--full-epochs`
//! (the reference ranking) and then for `--short-epochs`:
//!
//! - plain;
//! - with Polyak averaging of the weights over the last epoch (`TrainConfig::averaging`; the
//!   same compute);
//! - distilled from a teacher (`TrainConfig::distillation`, weight 0.5, temperature 4): a
//!   network of `--teacher-cell` trained by the library for `--full-epochs` first (a one-time
//!   cost), whose logits each step also computes (more compute per step);
//! - plain with one epoch more, the equal-compute reference for distillation (its extra epoch
//!   costs more than the teacher's forward passes).
//!
//! For each it prints the Kendall τ and Spearman ρ of the cells' final validation accuracies
//! against the reference ranking, the mean accuracy and the training time per cell.
//! (Progressive early stopping, the third trick, is measured by `--example prune_curves`.)
//!
//! ```text
//! cargo run --release --example training_tricks                   # 12 cells, about 8 minutes on 2 cores
//! cargo run --release --example training_tricks -- --trials 4 --full-epochs 4   # a quick look
//! ```

mod common;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::{kendall_tau, spearman_rho};
use nas::estimate::train::TrainEstimator;
use nas::estimate::{Budget, Estimator};
use nas::space::TextFormat;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::module::AutodiffModule;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::network::seeded;
use nas::supernet::train::{Distillation, TrainConfig, WeightAveraging, fit, teacher};

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Polyak averaging and distillation as proxy-training tricks: rank correlation \
                   with full training"
)]
struct Args {
    /// Distinct random cells.
    #[arg(long, default_value_t = 12)]
    trials: usize,
    /// Epochs of the reference training.
    #[arg(long, default_value_t = 8)]
    full_epochs: usize,
    /// Epochs of the proxy trainings.
    #[arg(long, default_value_t = 2)]
    short_epochs: usize,
    /// The teacher's cell (default: the best CIFAR-10 cell of NAS-Bench-201).
    #[arg(
        long,
        default_value = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )]
    teacher_cell: String,
    /// Weight of the distillation term.
    #[arg(long, default_value_t = 0.5)]
    distill_weight: f64,
    /// Softmax temperature of distillation.
    #[arg(long, default_value_t = 4.0)]
    temperature: f64,
    /// Decay of the Polyak average (0: the uniform mean of the last epoch's steps).
    #[arg(long, default_value_t = 0.0)]
    polyak_decay: f64,
    /// The proxy task.
    #[command(flatten)]
    task: common::ProxyTask,
    /// Seed of the cells, the data split and the trainings.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend (default: $NAS_BACKEND, then the CPU).
    #[arg(long)]
    backend: Option<String>,
}

/// One way of training every cell: its final validation accuracies and seconds.
struct Row {
    name: String,
    accuracies: Vec<f64>,
    seconds: f64,
}

struct Run(Args, Vec<Nb201Arch>, Nb201Arch);

impl BackendTask for Run {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let Run(args, cells, teacher_cell) = self;
        let (train, valid) = args.task.data(args.seed)?;
        let net = args.task.net();
        let base = |epochs| common::train_config(epochs, 64, 0.05, args.seed);
        let space = Nb201Space::default();

        // The teacher, trained once.
        let start = Instant::now();
        let model = seeded(&device, args.seed, || net.init::<B>(&teacher_cell, &device))
            .map_err(|e| e.to_string())?;
        let (model, report) = fit(
            model,
            &train,
            &valid,
            &train.channel_stats(),
            &base(args.full_epochs),
            &device,
            |_, _: &nas::supernet::train::TrainReport| {},
        )
        .map_err(|e| format!("training the teacher: {e}"))?;
        let teacher_seconds = start.elapsed().as_secs_f64();
        println!(
            "teacher {}: {:.2} % after {} epochs ({teacher_seconds:.0} s)",
            space.to_text(&teacher_cell),
            report.final_accuracy().unwrap_or(f64::NAN),
            args.full_epochs
        );
        let teacher = teacher(model.valid());

        let ways: Vec<(String, TrainConfig, bool)> = vec![
            (
                format!("full training, {} epochs (reference)", args.full_epochs),
                base(args.full_epochs),
                false,
            ),
            (
                format!("plain, {} epochs", args.short_epochs),
                base(args.short_epochs),
                false,
            ),
            (
                format!(
                    "Polyak averaging of the last epoch (decay {}), {} epochs",
                    args.polyak_decay, args.short_epochs
                ),
                TrainConfig {
                    averaging: Some(WeightAveraging {
                        epochs: 1,
                        decay: args.polyak_decay,
                    }),
                    ..base(args.short_epochs)
                },
                false,
            ),
            (
                format!(
                    "distillation (weight {}, T = {}), {} epochs",
                    args.distill_weight, args.temperature, args.short_epochs
                ),
                TrainConfig {
                    distillation: Some(Distillation {
                        weight: args.distill_weight,
                        temperature: args.temperature,
                    }),
                    ..base(args.short_epochs)
                },
                true,
            ),
            (
                format!("plain, {} epochs", args.short_epochs + 1),
                base(args.short_epochs + 1),
                false,
            ),
        ];
        let mut rows = Vec::new();
        for (name, config, distil) in ways {
            let mut estimator = TrainEstimator::<B, _, _>::new(
                net,
                train.clone(),
                valid.clone(),
                config,
                device.clone(),
            )
            .map_err(|e| e.to_string())?;
            if distil {
                estimator = estimator.with_teacher(teacher.clone());
            }
            let start = Instant::now();
            let mut accuracies = Vec::new();
            for cell in &cells {
                let m = estimator
                    .estimate(cell, &Budget::full())
                    .map_err(|e| format!("{name}, {}: {e}", space.to_text(cell)))?;
                accuracies.push(m.objective);
            }
            let seconds = start.elapsed().as_secs_f64();
            println!("{name}: {seconds:.0} s, accuracies {accuracies:.1?}");
            rows.push(Row {
                name,
                accuracies,
                seconds,
            });
        }

        let reference = rows[0].accuracies.clone();
        println!(
            "\n{} random NAS-Bench-201 cells (seed {}) on {}; batch 64, SGD 0.05 cosine",
            cells.len(),
            args.seed,
            args.task.describe()
        );
        println!(
            "| training | Kendall τ vs reference | Spearman ρ vs reference | mean accuracy (%) | seconds per cell |"
        );
        println!("| --- | --- | --- | --- | --- |");
        for row in &rows {
            let tau = kendall_tau(&row.accuracies, &reference).unwrap_or(f64::NAN);
            let rho = spearman_rho(&row.accuracies, &reference).unwrap_or(f64::NAN);
            let mean = row.accuracies.iter().sum::<f64>() / row.accuracies.len() as f64;
            println!(
                "| {} | {tau:.3} | {rho:.3} | {mean:.2} | {:.1} |",
                row.name,
                row.seconds / cells.len() as f64
            );
        }
        println!("(the teacher's one-time training: {teacher_seconds:.0} s)");
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.trials < 3 || args.short_epochs == 0 || args.full_epochs <= args.short_epochs {
        eprintln!(
            "error: --trials must be at least 3, and --full-epochs above --short-epochs (≥ 1)"
        );
        return ExitCode::from(2);
    }
    let teacher_cell = match Nb201Space::default().parse(&args.teacher_cell) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --teacher-cell: {e}");
            return ExitCode::from(2);
        }
    };
    let cells = common::distinct_nb201_cells(args.trials, args.seed);
    common::run_to_exit(
        args.backend.clone().as_deref(),
        Run(args, cells, teacher_cell),
    )
}
