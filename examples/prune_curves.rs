//! Pruners on real training runs: trains random NAS-Bench-201 cells in full in the quickstart's
//! setting (the embedded Fashion-MNIST subset at 16×16, C = 8, N = 2, 3,000 training and
//! 1,000 validation images, batch 64, SGD at 0.05), records each cell's validation-accuracy
//! curve, then replays the curves, in training order, through no pruner, median stopping,
//! progressive early stopping by stage thresholds (Nekrasov et al. 2019, `--stages`) and
//! learning-curve extrapolation (`nas::strategy::curve`, Domhan et al. 2015) at the given
//! thresholds. For each it prints the epochs trained (and the share saved), how many trials
//! were stopped, the Kendall τ of the trials' ranking (a stopped trial ranks by its last
//! value) against the ranking after full training, and where the pruned search's answer (its
//! best completed trial) ranks among all trials trained in full.
//!
//! The curves are kept in `<out>/curves.json`; a second run with the same training settings
//! replays them without training (`--retrain` trains again).
//!
//! ```text
//! cargo run --release --example prune_curves                      # 50 cells × 10 epochs, about 50 minutes on 2 cores
//! cargo run --release --example prune_curves -- --constant-lr     # no cosine schedule
//! cargo run --release --example prune_curves -- --trials 8 --epochs 4   # a quick look
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::kendall_tau;
use nas::estimate::train::TrainEstimator;
use nas::estimate::{Budget, Estimator, Metrics};
use nas::space::TextFormat;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::Outcome;
use nas::strategy::curve::{LearningCurveConfig, LearningCurvePruner, forecast};
use nas::strategy::pruner::{
    MedianStopping, MedianStoppingConfig, Pruner, Stage, StageStopping, StageStoppingConfig,
};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Median stopping and learning-curve extrapolation replayed on real training curves"
)]
struct Args {
    /// Distinct random cells trained in full.
    #[arg(long, default_value_t = 50)]
    trials: usize,
    /// Epochs of each training (the full budget).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// The proxy task.
    #[command(flatten)]
    task: common::ProxyTask,
    /// Keep the learning rate constant (no cosine annealing): the curves then saturate as the
    /// parametric models assume.
    #[arg(long)]
    constant_lr: bool,
    /// Trainings run at once (threads).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Thresholds of the learning-curve pruner (probability of beating the best).
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.01")]
    thresholds: Vec<f64>,
    /// Stages of progressive early stopping: `STEP:VALUE` (a fixed accuracy, %) or
    /// `STEP:qQ` (the Q-quantile of the earlier trials' accuracies at that step), steps from 0.
    #[arg(long, value_delimiter = ',', default_value = "2:q0.5,5:q0.5")]
    stages: Vec<String>,
    /// Completed trials before median stopping stops any (Optuna's default: 5).
    #[arg(long, default_value_t = 5)]
    median_min_completed: usize,
    /// Seed of the cells, the data split and the training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train again even if `<out>/curves.json` holds curves of the same settings.
    #[arg(long)]
    retrain: bool,
    /// Where the curves are kept.
    #[arg(long, default_value = "runs/prune_curves")]
    out: PathBuf,
    /// Backend (default: $NAS_BACKEND, then the CPU).
    #[arg(long)]
    backend: Option<String>,
}

/// The training settings the curves depend on (a saved file of other settings is not reused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    trials: usize,
    epochs: usize,
    #[serde(flatten)]
    task: common::ProxyTask,
    constant_lr: bool,
    seed: u64,
}

impl Settings {
    fn of(args: &Args) -> Self {
        Self {
            trials: args.trials,
            epochs: args.epochs,
            task: args.task.clone(),
            constant_lr: args.constant_lr,
            seed: args.seed,
        }
    }
}

/// The saved curves.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Curves {
    settings: Settings,
    /// Per trial, in training order: the cell and its validation accuracy (%) per epoch.
    trials: Vec<(String, Vec<f64>)>,
    /// Seconds of training, all trials.
    seconds: f64,
}

struct Train(Args, Vec<Nb201Arch>);

/// One trial's curve, or why it has none, once a worker trained it.
type Slot = std::sync::Mutex<Option<Result<Vec<f64>, String>>>;

impl BackendTask for Train {
    type Output = Result<Vec<Vec<f64>>, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let Train(args, cells) = self;
        let (train, valid) = args.task.data(args.seed)?;
        let net = args.task.net();
        let mut config = common::train_config(args.epochs, 64, 0.05, args.seed);
        if args.constant_lr {
            config.min_learning_rate = config.learning_rate;
        }
        let make = || {
            TrainEstimator::<B, _, _>::new(
                net,
                train.clone(),
                valid.clone(),
                config.clone(),
                device.clone(),
            )
            .map(|e| e.with_progress(false))
            .map_err(|e| e.to_string())
        };
        // Built once here so that a bad setting is an error, not a worker's panic.
        make()?;
        let workers = args.workers.clamp(1, cells.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Slot> = cells.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut estimator = make().expect("checked above");
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= cells.len() {
                            return;
                        }
                        let outcome = estimator
                            .estimate(&cells[i], &Budget::full())
                            .map_err(|e| e.to_string())
                            .and_then(|m: Metrics| {
                                m.curves.get("valid_accuracy").cloned().ok_or_else(|| {
                                    "the estimator returned no valid_accuracy curve".to_string()
                                })
                            });
                        let finished = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        if let Ok(curve) = &outcome {
                            println!(
                                "[{finished:>3}/{}] {:6.1} s  final {:5.2} %  {}",
                                cells.len(),
                                start.elapsed().as_secs_f64(),
                                curve.last().copied().unwrap_or(f64::NAN),
                                Nb201Space::default().to_text(&cells[i])
                            );
                        }
                        *results[i].lock().unwrap() = Some(outcome);
                    }
                });
            }
        });
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.into_inner()
                    .map_err(|_| "a training thread panicked".to_string())?
                    .unwrap_or_else(|| Err(format!("trial {i} was not trained")))
            })
            .collect()
    }
}

/// What one pruner did over the replayed curves.
struct Replay {
    name: String,
    epochs: usize,
    stopped: usize,
    tau: f64,
    /// Rank (1 = best), among all trials trained in full, of the best completed trial, and its
    /// final accuracy (none when every trial was stopped).
    answer: Option<(usize, f64)>,
    /// The best trial trained in full: was it stopped?
    best_stopped: bool,
    seconds: f64,
}

fn replay(name: String, mut pruner: Option<Box<dyn Pruner>>, curves: &[Vec<f64>]) -> Replay {
    let start = Instant::now();
    let finals: Vec<f64> = curves.iter().map(|c| *c.last().unwrap()).collect();
    let mut epochs = 0;
    let mut stopped = 0;
    let mut seen = Vec::with_capacity(curves.len());
    let mut completed = Vec::new();
    for (i, curve) in curves.iter().enumerate() {
        let stop = pruner.as_mut().and_then(|p| p.replay(i as u64, curve));
        let (used, outcome) = match stop {
            Some(s) => (s + 1, Outcome::Pruned(Metrics::new(curve[s]))),
            None => (curve.len(), Outcome::Complete(Metrics::new(finals[i]))),
        };
        if let Some(p) = pruner.as_mut() {
            p.finish(i as u64, &outcome);
        }
        epochs += used;
        if stop.is_some() {
            stopped += 1;
        } else {
            completed.push(i);
        }
        seen.push(curve[used - 1]);
    }
    let tau = kendall_tau(&seen, &finals).unwrap_or(f64::NAN);
    let answer = completed
        .iter()
        .copied()
        .max_by(|&a, &b| finals[a].total_cmp(&finals[b]))
        .map(|a| {
            let rank = 1 + finals.iter().filter(|&&f| f > finals[a]).count();
            (rank, finals[a])
        });
    let best = (0..finals.len())
        .max_by(|&a, &b| finals[a].total_cmp(&finals[b]))
        .unwrap_or(0);
    Replay {
        name,
        epochs,
        stopped,
        tau,
        answer,
        best_stopped: !completed.contains(&best),
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn load_curves(path: &Path, settings: &Settings) -> Option<Curves> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str::<Curves>(&text) {
        Ok(c) if c.settings == *settings => Some(c),
        Ok(_) => {
            println!(
                "{} holds curves of other settings: training again",
                path.display()
            );
            None
        }
        Err(e) => {
            println!("{} is unreadable ({e}): training again", path.display());
            None
        }
    }
}

fn run(args: Args) -> Result<(), ExitCode> {
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    };
    if args.trials < 2 || args.epochs < 4 {
        return Err(fail(
            "--trials must be at least 2 and --epochs at least 4 (a curve of fewer epochs \
             leaves nothing to extrapolate)"
                .into(),
        ));
    }
    if let Some(t) = args.thresholds.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
        return Err(fail(format!("--thresholds must lie in (0, 1), got {t}")));
    }
    let settings = Settings::of(&args);
    let path = args.out.join("curves.json");
    let saved = if args.retrain {
        None
    } else {
        load_curves(&path, &settings)
    };
    let curves = match saved {
        Some(c) => {
            println!(
                "replaying {} curves of {} epochs from {} (trained in {:.0} s; --retrain trains again)",
                c.trials.len(),
                settings.epochs,
                path.display(),
                c.seconds
            );
            c
        }
        None => {
            let cells = common::distinct_nb201_cells(args.trials, args.seed);
            println!(
                "training {} random NAS-Bench-201 cells for {} epochs each on {}, {} learning \
                 rate, {} at a time",
                cells.len(),
                args.epochs,
                args.task.describe(),
                if args.constant_lr {
                    "constant"
                } else {
                    "cosine-annealed"
                },
                args.workers
            );
            let start = Instant::now();
            let trained =
                common::run_task(args.backend.as_deref(), Train(args.clone(), cells.clone()))?;
            let curves = Curves {
                settings: settings.clone(),
                trials: cells
                    .iter()
                    .map(|c| Nb201Space::default().to_text(c))
                    .zip(trained)
                    .collect(),
                seconds: start.elapsed().as_secs_f64(),
            };
            std::fs::create_dir_all(&args.out)
                .and_then(|()| {
                    std::fs::write(
                        &path,
                        serde_json::to_string_pretty(&curves).expect("curves serialize"),
                    )
                })
                .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
            println!("curves saved in {}", path.display());
            curves
        }
    };
    let values: Vec<Vec<f64>> = curves.trials.iter().map(|t| t.1.clone()).collect();
    if let Some((cell, _)) = curves
        .trials
        .iter()
        .find(|t| t.1.len() != settings.epochs || t.1.iter().any(|v| !v.is_finite()))
    {
        return Err(fail(format!(
            "the curve of {cell} does not have {} finite values; train again with --retrain",
            settings.epochs
        )));
    }
    let final_step = settings.epochs - 1;
    let stages = args
        .stages
        .iter()
        .map(|s| parse_stage(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let mut runs = vec![replay("none (full training)".into(), None, &values)];
    let median = MedianStopping::new(MedianStoppingConfig {
        min_completed: args.median_min_completed,
        warmup_steps: 0,
    })
    .map_err(|e| fail(e.to_string()))?;
    runs.push(replay(
        format!(
            "median stopping (min. {} completed)",
            args.median_min_completed
        ),
        Some(Box::new(median)),
        &values,
    ));
    let stage_pruner = StageStopping::new(StageStoppingConfig {
        stages,
        min_trials: args.median_min_completed,
    })
    .map_err(|e| fail(e.to_string()))?;
    runs.push(replay(
        format!("stage thresholds ({})", args.stages.join(", ")),
        Some(Box::new(stage_pruner)),
        &values,
    ));
    for &threshold in &args.thresholds {
        let config = LearningCurveConfig {
            threshold,
            seed: args.seed,
            ..LearningCurveConfig::new(final_step, 100.0)
        };
        let pruner = LearningCurvePruner::new(config).map_err(|e| fail(e.to_string()))?;
        runs.push(replay(
            format!("learning curves, P(beat best) < {threshold}"),
            Some(Box::new(pruner)),
            &values,
        ));
    }
    // How well the curve models extrapolate: the forecast of each cell's final accuracy from
    // its first epochs, against the accuracy it reached.
    let forecast_config = LearningCurveConfig {
        seed: args.seed,
        ..LearningCurveConfig::new(final_step, 100.0)
    };
    let mut forecast_rows = Vec::new();
    for seen in [3, 5, 7].into_iter().filter(|&n| n < settings.epochs) {
        let errors: Vec<f64> = values
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let points: Vec<(usize, f64)> = c[..seen].iter().copied().enumerate().collect();
                forecast(&points, &forecast_config, i as u64).map(|f| f.mean() - c[final_step])
            })
            .collect();
        let n = errors.len().max(1) as f64;
        forecast_rows.push(format!(
            "| {seen} | {} | {:+.2} | {:.2} |",
            errors.len(),
            errors.iter().sum::<f64>() / n,
            errors.iter().map(|e| e.abs()).sum::<f64>() / n
        ));
    }
    let full = runs[0].epochs as f64;
    println!();
    println!(
        "{} trials × {} epochs, replayed in training order; τ: Kendall τ of the ranking (a \
         stopped trial ranks by its last value) against full training",
        values.len(),
        settings.epochs
    );
    println!(
        "| pruner | epochs trained | saved | trials stopped | τ | the answer's rank (its accuracy) | best trial stopped | pruner time |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &runs {
        println!(
            "| {} | {} | {:.0} % | {} | {:.3} | {} | {} | {:.1} s |",
            r.name,
            r.epochs,
            100.0 * (1.0 - r.epochs as f64 / full),
            r.stopped,
            r.tau,
            r.answer
                .map_or("none completed".into(), |(rank, acc)| format!(
                    "{rank} ({acc:.2} %)"
                )),
            if r.best_stopped { "yes" } else { "no" },
            r.seconds
        );
    }
    println!(
        "\nthe curve models' forecast of the final accuracy from the first epochs, against it \
         (percentage points; cells with no fitting model left out):"
    );
    println!("| epochs seen | cells | mean error | mean absolute error |");
    println!("| --- | --- | --- | --- |");
    for row in forecast_rows {
        println!("{row}");
    }
    Ok(())
}

/// A stage of `--stages`: `STEP:VALUE` or `STEP:qQ`.
fn parse_stage(text: &str) -> Result<Stage, String> {
    let err = || format!("--stages: `{text}` is neither STEP:VALUE nor STEP:qQUANTILE");
    let (step, threshold) = text.split_once(':').ok_or_else(err)?;
    let step: usize = step.trim().parse().map_err(|_| err())?;
    let threshold = threshold.trim();
    Ok(match threshold.strip_prefix('q') {
        Some(q) => Stage::quantile(step, q.parse().map_err(|_| err())?),
        None => Stage::value(step, threshold.parse().map_err(|_| err())?),
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
