//! ENAS (Pham et al. 2018): an LSTM controller samples child cells, the children share the
//! weights of one supernet, and the search alternates training the shared weights on sampled
//! children with training the controller by REINFORCE on the children's validation accuracy
//! under the shared weights (scored with each minibatch's own batch-norm statistics, as the
//! NAS-Bench-201 paper's ENAS does: the running averages over all children misjudge children
//! with convolutions; `--batch-statistics running` for ENAS' own). `--warmup-epochs W` trains
//! the shared weights for the first W epochs without the controller, on strictly fair children
//! (FairNAS: each minibatch split among children that together take every operation;
//! `--warmup-sampling uniform` for one uniform child per minibatch). `--rank-check N` scores N
//! random cells with the final shared weights and, on NAS-Bench-201, prints how well they rank
//! against the table. The final cell is the best of many samples by shared-weight accuracy; it
//! is then trained from scratch for `--final-epochs` epochs (default 3; 0 skips it) and saved
//! into `<report-dir>/network` (`network.json` and `weights.mpk`; load it with
//! `nas::supernet::persist::load_network`), and `--random-baselines` random cells of the space are trained the same way: the run
//! prints whether the search beat them and the Kendall τ of shared-weight against
//! from-scratch accuracy over all of them. The run ends by writing a report page,
//! `<report-dir>/report.html` (default `runs/enas/report.html`), with SVG figures: the
//! training accuracy of the sampled children and the controller's mean reward per epoch, the
//! derived cell(s), the test accuracy of the final training, and a table of the epochs.
//!
//! ```text
//! cargo run --release --example enas                       # ENAS' micro space on the embedded digits, ~2 min
//! cargo run --release --example enas -- --space nb201 --data fashion  # NAS-Bench-201 on Fashion-MNIST; looks the cell up in the table
//! cargo run --release --example enas -- --data path/to/fashion-mnist --epochs 20 --backend wgpu
//! cargo run --release --example enas -- --final-epochs 10 --report-dir runs/enas-long
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
use nas::estimate::rank::kendall_tau;
use nas::space::darts::{DartsConfig, DartsSpace};
use nas::space::nb201::Nb201Space;
use nas::space::{Enumerable, Sequential, TextFormat};
use nas::strategy::controller::ControllerConfig;
use nas::strategy::report::Report;
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
    /// Data: `digits` (the embedded 8×8 digits, the default), `fashion` (the embedded
    /// Fashion-MNIST subset at 16×16), or a directory with Fashion-MNIST IDX files or CIFAR-10
    /// binary batches.
    #[arg(long, default_value = "digits")]
    data: PathBuf,
    /// Use only this many training images for the search (default: all).
    #[arg(long)]
    samples: Option<usize>,
    /// ENAS epochs (each: one pass of the shared weights, then the controller's updates;
    /// the paper: 150). Weight sharing needs many passes before the children's rewards mean
    /// anything: with 10 the shared weights stay near chance.
    #[arg(long, default_value_t = 60)]
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
    /// Controller updates per epoch (the paper: 30; fewer here, so that the time goes to the
    /// shared weights while their rewards are still noise).
    #[arg(long, default_value_t = 2)]
    controller_steps: usize,
    /// Children per controller update (the paper: 10).
    #[arg(long, default_value_t = 10)]
    controller_batch: usize,
    /// Batch-norm statistics of the children's rewards and of the derivation: `batch` (each
    /// minibatch's own, as the NAS-Bench-201 paper's ENAS) or `running` (the shared running
    /// averages, as ENAS' code; on NAS-Bench-201 the controller then collapses onto
    /// parameter-free cells).
    #[arg(long, value_enum, default_value_t = BatchNorms::Batch)]
    batch_statistics: BatchNorms,
    /// How the controller chooses each node's inputs in ENAS' micro space: `attention` over
    /// the earlier nodes (ENAS' and Zoph & Le's; the default) or `independent` (softmax heads,
    /// shared by decisions with the same number of choices). NAS-Bench-201 has no input
    /// choices.
    #[arg(long, value_enum, default_value_t = Inputs::Attention)]
    inputs: Inputs,
    /// Epochs at the start in which the shared weights train on children drawn without the
    /// controller (`--warmup-sampling`) and the controller does not learn (0, the default:
    /// ENAS, the controller from the first epoch). A fair warm-up makes the shared weights
    /// rank NAS-Bench-201 cells better, but did not make the derived cell better
    /// (`docs/benchmarks.md`, session 20).
    #[arg(long, default_value_t = 0)]
    warmup_epochs: usize,
    /// The warm-up's children: `fair` (FairNAS' strict fairness: each minibatch split into
    /// slices whose children together take every choice of every decision once) or `uniform`
    /// (one uniformly drawn child per minibatch, as SPOS).
    #[arg(long, value_enum, default_value_t = WarmupSampling::Fair)]
    warmup_sampling: WarmupSampling,
    /// Children sampled to derive the final architecture.
    #[arg(long, default_value_t = 100)]
    derive_samples: usize,
    /// After the search, score this many distinct random architectures with the shared
    /// weights; with `--space nb201` and the table, print how well the shared weights rank
    /// them against the table (Kendall τ, Spearman ρ). The search never reads the table.
    #[arg(long, default_value_t = 0)]
    rank_check: usize,
    /// Epochs of training the derived architecture from scratch, saved into
    /// <report-dir>/network (0: skip).
    #[arg(long, alias = "train-epochs", default_value_t = 3)]
    final_epochs: usize,
    /// Random architectures of the space trained from scratch like the derived one (with
    /// --final-epochs): does the search beat random choice at the same training cost?
    #[arg(long, default_value_t = 3)]
    random_baselines: usize,
    /// Directory of the report page (report.html and its SVG figures) and of the final
    /// network.
    #[arg(long, default_value = "runs/enas")]
    report_dir: PathBuf,
    #[command(flatten)]
    run: common::RunArgs,
    /// Path of `nats_bench_tss_200ep.csv` for `--space nb201` (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv; skipped when absent).
    #[arg(long)]
    nb201: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum BatchNorms {
    Batch,
    Running,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum WarmupSampling {
    Fair,
    Uniform,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Inputs {
    Attention,
    Independent,
}

fn print_epoch<A: std::fmt::Display>(e: &EnasEpoch<A>, epochs: usize, warmup: usize) {
    let controller = if e.epoch < warmup {
        format!(
            "warm-up: controller not learning, its children's mean reward {:.3}",
            e.mean_reward
        )
    } else {
        format!(
            "controller mean reward {:.3} baseline {:.3} entropy {:.2} ({:.1} s)",
            e.mean_reward, e.baseline, e.entropy, e.controller_seconds
        )
    };
    println!(
        "epoch {:>2}/{epochs}: shared weights loss {:.3} acc {:5.1}% ({:.1} s) | {controller} | best child {:.3}: {}",
        e.epoch + 1,
        e.train_loss,
        e.train_accuracy,
        e.weight_seconds,
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

/// What the search did, for the report: every epoch and the rescored candidates, their
/// architectures as text.
struct Searched {
    epochs: Vec<EnasEpoch<String>>,
    /// Architecture, one-minibatch reward, whole-set accuracy (%), best first.
    candidates: Vec<(String, f64, f64)>,
    /// The derived architecture's shared-weight validation accuracy (%).
    validation_accuracy: f64,
    seconds: f64,
    /// `--rank-check` random architectures (as text) and their shared-weight validation
    /// accuracy (%).
    checked: Vec<(String, f64)>,
    /// Why the search stopped before its epochs (the answer is derived from those that
    /// finished, and the example exits with an error).
    stopped: Option<String>,
}

/// The search, generic over the space and its supernet; returns the derived architecture, the
/// random baselines (`--random-baselines` random architectures of the space, distinct from the
/// derived one) with their shared-weight validation accuracy, and what the search did.
#[allow(clippy::type_complexity)]
fn search<S, B, N>(
    space: S,
    supernet: N,
    args: &Args,
    halves: &Halves,
    device: &Device<B>,
) -> Result<(S::Arch, Vec<(S::Arch, f64)>, Searched), String>
where
    S: Sequential + Clone,
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
            attention: args.inputs == Inputs::Attention,
            ..ControllerConfig::default()
        },
        controller_steps: args.controller_steps,
        controller_batch: args.controller_batch,
        reward_batch_size: args.batch_size,
        derive_samples: args.derive_samples,
        derive_top: args.derive_samples.min(5),
        seed: args.run.seed,
        batch_statistics: args.batch_statistics == BatchNorms::Batch,
        warmup_epochs: args.warmup_epochs,
        fair_warmup: args.warmup_sampling == WarmupSampling::Fair,
    };
    let mut enas: Enas<S, B, N> = Enas::new(
        space.clone(),
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
    let mut driver = args.run.checkpoint.driver(&mut epochs, path).observer(
        |_: usize, e: &EnasEpoch<S::Arch>| print_epoch(e, args.epochs, args.warmup_epochs),
    );
    let result = driver.run();
    drop(driver);
    if let Ok(summary) = &result
        && let Some(at) = summary.resumed_at
    {
        println!("resumed after epoch {at} of {}", args.epochs);
    }
    let stopped = match result {
        Ok(_) => None,
        // Nothing was trained (a checkpoint that cannot be read, or an earlier run's that
        // --resume or --fresh must settle): nothing to derive from.
        Err(e) if enas.history().is_empty() => return Err(e.to_string()),
        Err(e) => {
            // The epochs that finished are kept: derive from them, then exit with the error.
            eprintln!(
                "search stopped after {} epochs: {e}; deriving from the shared weights so far",
                enas.history().len()
            );
            Some(format!(
                "the search stopped after {} of {} epochs: {e}",
                enas.history().len(),
                args.epochs
            ))
        }
    };
    let derived = enas.derive().map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let final_training = args.final_epochs > 0;
    let count = if final_training {
        args.random_baselines
    } else {
        0
    };
    let sample = |rng: &mut rand::rngs::ChaCha8Rng| space.sample(rng);
    let randoms: Vec<(S::Arch, f64)> =
        common::draw_distinct(count, &derived.arch, sample, args.run.seed)?
            .into_iter()
            .map(|a| {
                let acc = enas.shared_accuracy(&a);
                (a, acc)
            })
            .collect();
    // Only where there is something to rank against: NAS-Bench-201 cells (the table is
    // looked for in `main`, which says so when it is absent).
    let rank_check = if args.space == "nb201" {
        args.rank_check
    } else {
        if args.rank_check > 0 {
            println!("--rank-check needs --space nb201 (the table to rank against): skipped");
        }
        0
    };
    let checked: Vec<(String, f64)> = common::draw_distinct(
        rank_check,
        &derived.arch,
        sample,
        args.run.seed.wrapping_add(0x0063_6865_636b),
    )
    .map_err(|e| e.replace("--random-baselines", "--rank-check"))?
    .into_iter()
    .map(|a| {
        let acc = enas.shared_accuracy(&a);
        (a.to_string(), acc)
    })
    .collect();
    println!(
        "\nsearch: {:.1} s; {} children sampled to derive, the best {} rescored on {} validation images:",
        seconds,
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
    let epochs = enas
        .history()
        .iter()
        .map(|e| EnasEpoch {
            epoch: e.epoch,
            train_loss: e.train_loss,
            train_accuracy: e.train_accuracy,
            mean_reward: e.mean_reward,
            baseline: e.baseline,
            entropy: e.entropy,
            best: (e.best.0.to_string(), e.best.1),
            weight_seconds: e.weight_seconds,
            controller_seconds: e.controller_seconds,
        })
        .collect();
    let searched = Searched {
        epochs,
        candidates: derived
            .candidates
            .iter()
            .map(|(a, r, acc)| (a.to_string(), *r, *acc))
            .collect(),
        validation_accuracy: derived.validation_accuracy,
        seconds,
        checked,
        stopped,
    };
    Ok((derived.arch, randoms, searched))
}

struct Run(Args);

/// What a run found: the derived architecture, the search, the settings (for the report) and
/// the final training's report with the directory the network was saved in.
struct Outcome {
    derived: DerivedArch,
    searched: Searched,
    intro: String,
    train: Option<(TrainReport, PathBuf)>,
    /// Random architectures trained like the derived one.
    baselines: Option<common::RandomBaselines>,
    /// The random architectures' shared-weight validation accuracy (%).
    shared: Vec<f64>,
    /// Kendall τ between shared-weight and from-scratch accuracy over the derived and the
    /// random architectures.
    tau: Option<f64>,
}

impl BackendTask for Run {
    type Output = Result<Outcome, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let (train, test) = common::load(Some(&args.data), args.run.seed)?;
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
        let (derived, randoms, searched): (DerivedArch, Vec<(DerivedArch, f64)>, Searched) =
            match args.space.as_str() {
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
                    let (arch, randoms, searched) =
                        search(space, supernet, &args, &halves, &device)?;
                    let randoms = randoms
                        .into_iter()
                        .map(|(a, acc)| (DerivedArch::Darts(a), acc))
                        .collect();
                    (DerivedArch::Darts(arch), randoms, searched)
                }
                "nb201" => {
                    let space = Nb201Space::default();
                    let net = shape.nb201();
                    let supernet = seeded(&device, args.run.seed, || {
                        net.supernet::<B>(&space, &device)
                    })
                    .map_err(|e| e.to_string())?;
                    let (arch, randoms, searched) =
                        search(space, supernet, &args, &halves, &device)?;
                    let randoms = randoms
                        .into_iter()
                        .map(|(a, acc)| (DerivedArch::Nb201(a), acc))
                        .collect();
                    (DerivedArch::Nb201(arch), randoms, searched)
                }
                other => {
                    return Err(format!(
                        "unknown space `{other}`: expected `enas` or `nb201`"
                    ));
                }
            };

        let intro = format!(
            "ENAS on the {} space: {} epochs{}, batch size {}, {} controller updates of {} children per epoch, {} children sampled to derive, C = {}, seed {}; {} of {} ({} images for the shared weights, {} for the rewards), {} test images.",
            args.space,
            args.epochs,
            match args.warmup_epochs {
                0 => String::new(),
                w => format!(
                    " (the first {w} a {} warm-up of the shared weights without the controller)",
                    match args.warmup_sampling {
                        WarmupSampling::Fair => "strictly fair",
                        WarmupSampling::Uniform => "uniform",
                    }
                ),
            },
            args.batch_size,
            args.controller_steps,
            args.controller_batch,
            args.derive_samples,
            args.channels,
            args.run.seed,
            search_data.len(),
            train.name(),
            halves.weights.len(),
            halves.rewards.len(),
            test.len()
        );
        let mut outcome = Outcome {
            derived,
            searched,
            intro,
            train: None,
            baselines: None,
            shared: Vec::new(),
            tau: None,
        };
        if args.final_epochs == 0 {
            return Ok(outcome);
        }
        let tc = common::train_config(args.final_epochs, 64, 0.05, args.run.seed);
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
        let dir = args.report_dir.join("network");
        let data = (&train, &test);
        let derived = &outcome.derived;
        let report = common::retrain::<B>(derived, &shape, data, &tc, &device, print, Some(&dir))?;
        println!(
            "saved the derived network in {} (load it with nas::supernet::persist::load_network)",
            dir.display()
        );
        outcome.train = Some((report, dir));
        if !randoms.is_empty() {
            println!(
                "\ntraining {} random architectures of the space the same way:",
                randoms.len()
            );
            let (archs, shared): (Vec<DerivedArch>, Vec<f64>) = randoms.into_iter().unzip();
            let baselines = common::RandomBaselines::train::<B>(archs, &shape, data, &tc, &device)?;
            // Does the shared-weight accuracy rank the architectures as training from scratch
            // does? The derived one and the random ones.
            let trained = outcome.train.as_ref().and_then(|(t, _)| t.final_accuracy());
            let mut one_shot = vec![outcome.searched.validation_accuracy];
            one_shot.extend(&shared);
            let mut alone = vec![trained.unwrap_or(f64::NAN)];
            alone.extend(baselines.archs.iter().map(|(_, a)| *a));
            outcome.tau = kendall_tau(&one_shot, &alone);
            outcome.shared = shared;
            outcome.baselines = Some(baselines);
        }
        Ok(outcome)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let table = match common::open_nb201(args.nb201.clone()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let backend = args.run.backend.clone();
    match common::run_task(backend.as_deref(), Run(args.clone())) {
        Ok(outcome) => {
            if let DerivedArch::Nb201(arch) = &outcome.derived {
                common::nb201_lookup(arch, table.as_ref(), "ENAS");
                if let Some(table) = &table {
                    let space = Nb201Space::default();
                    let parse =
                        |list: &[(String, f64)]| -> Vec<(nas::space::nb201::Nb201Arch, f64)> {
                            list.iter()
                                .filter_map(|(a, s)| space.parse(a).ok().map(|a| (a, *s)))
                                .collect()
                        };
                    let candidates: Vec<(String, f64)> = outcome
                        .searched
                        .candidates
                        .iter()
                        .map(|(a, _, acc)| (a.clone(), *acc))
                        .collect();
                    common::nb201_rank_check(
                        "the derivation's rescored candidates (shared-weight accuracy)",
                        &parse(&candidates),
                        table,
                    );
                    if !outcome.searched.checked.is_empty() {
                        common::nb201_rank_check(
                            "random cells scored with the shared weights (--rank-check)",
                            &parse(&outcome.searched.checked),
                            table,
                        );
                    }
                }
            }
            if let (Some(b), Some((t, _))) = (&outcome.baselines, &outcome.train) {
                let acc = t.final_accuracy().unwrap_or(f64::NAN);
                println!("{}", b.summary(acc, table.as_ref()));
                println!(
                    "Kendall τ of shared-weight and from-scratch accuracy over these {} architectures: {}",
                    b.archs.len() + 1,
                    outcome.tau.map_or("n/a".to_string(), |t| format!("{t:.3}"))
                );
            }
            if let Err(e) = write_report(&args, &outcome, table.as_ref()) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            match &outcome.searched.stopped {
                Some(why) => {
                    eprintln!("error: {why} (the answer above is from the finished epochs)");
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(code) => code,
    }
}

/// `<report-dir>/report.html`: the children's training accuracy and the controller's mean
/// reward per epoch, the derived architecture, the rescored candidates, the final training's
/// test accuracy and a table of the epochs.
fn write_report(
    args: &Args,
    outcome: &Outcome,
    table: Option<&nas::estimate::tabular::Nb201Table>,
) -> Result<PathBuf, String> {
    let searched = &outcome.searched;
    let mut report = Report::new(format!("ENAS search ({} space)", args.space));
    report.intro(outcome.intro.clone());
    let err = |e: nas::strategy::report::ReportError| e.to_string();
    let train_acc: Vec<f64> = searched.epochs.iter().map(|e| e.train_accuracy).collect();
    report
        .curve(
            "search_accuracy.svg",
            "training accuracy of the sampled children (shared weights) per epoch",
            "epoch",
            "accuracy (%)",
            &train_acc,
        )
        .map_err(err)?;
    let reward: Vec<f64> = searched
        .epochs
        .iter()
        .map(|e| 100.0 * e.mean_reward)
        .collect();
    report
        .curve(
            "mean_reward.svg",
            "the controller's mean reward per epoch (validation-minibatch accuracy of its children)",
            "epoch",
            "mean reward (%)",
            &reward,
        )
        .map_err(err)?;
    common::derived_figures(&mut report, &outcome.derived, "derived architecture")?;
    report.paragraph(format!(
        "The search took {:.1} s. The derived architecture has {:.1}% validation accuracy with the shared weights; the rescored candidates, best first:",
        searched.seconds, searched.validation_accuracy
    ));
    let candidates = searched
        .candidates
        .iter()
        .map(|(arch, reward, acc)| vec![format!("{reward:.3}"), format!("{acc:.1}"), arch.clone()])
        .collect();
    report.table(
        &["minibatch reward", "whole-set accuracy (%)", "architecture"],
        candidates,
    );
    let (curve, saved) = match &outcome.train {
        Some((t, dir)) => (Some(t.valid_accuracy.as_slice()), Some(dir.as_path())),
        None => (None, None),
    };
    common::final_training_section(&mut report, curve, "test accuracy", saved)?;
    if let (Some(b), Some((t, _))) = (&outcome.baselines, &outcome.train) {
        let acc = t.final_accuracy().unwrap_or(f64::NAN);
        report.paragraph(format!(
            "{}. Kendall τ of shared-weight and from-scratch accuracy over these {} architectures: {}.",
            b.summary(acc, table),
            b.archs.len() + 1,
            outcome.tau.map_or("n/a".to_string(), |t| format!("{t:.3}"))
        ));
        let rows = b
            .rows()
            .into_iter()
            .zip(&outcome.shared)
            .map(|(mut row, s)| {
                row.insert(1, format!("{s:.1}"));
                row
            })
            .collect();
        report.table(
            &[
                "architecture",
                "shared-weight acc (%)",
                "test accuracy (%)",
                "cell",
            ],
            rows,
        );
    }
    let rows = searched
        .epochs
        .iter()
        .map(|e| {
            vec![
                (e.epoch + 1).to_string(),
                format!("{:.3}", e.train_loss),
                format!("{:.1}", e.train_accuracy),
                format!("{:.3}", e.mean_reward),
                format!("{:.3}", e.baseline),
                format!("{:.2}", e.entropy),
                format!("{:.1}", e.weight_seconds + e.controller_seconds),
                format!("{:.3}: {}", e.best.1, e.best.0),
            ]
        })
        .collect();
    report.table(
        &[
            "epoch",
            "train loss",
            "train acc (%)",
            "mean reward",
            "baseline",
            "entropy",
            "seconds",
            "best child (reward: architecture)",
        ],
        rows,
    );
    common::write_report(&report, &args.report_dir)
}
