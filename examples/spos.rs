//! SPOS (Guo et al., *Single Path One-Shot Neural Architecture Search with Uniform Sampling*):
//! train a supernet with uniform single-path sampling, then run the paper's evolutionary
//! search over it under a FLOPs (multiply-accumulate) limit, scoring every candidate with
//! inherited weights after recomputing its batch-norm statistics.
//!
//! Two spaces (`--space`):
//! - `nb201` (the default): the NAS-Bench-201 cell (6 edges × 5 operations) in the
//!   NAS-Bench-201 supernet (`--channels`, `--cells` per stage), all the training images but
//!   the held-out ones, no MACs limit by default. After the search the best cell and the
//!   random ones are looked up in the NAS-Bench-201 table (`--nb201 PATH`; only for the
//!   report, the search never reads it), with the Kendall τ of the candidates' one-shot
//!   accuracy against the table's.
//! - `shufflenet` (the paper's): a chain of ShuffleNetV2 and Xception blocks, 5 choice layers
//!   by default (`--stage-repeats 1,1,2,1`; the paper's 20 layers are `--stage-repeats
//!   4,4,8,4`: with uniform sampling over 4^20 paths the supernet of a few-minute run stays at
//!   chance, since the blocks of a layer switch every step and no layer sees the same
//!   features twice), width multiplier 0.5, stride-2 stem, 3,000 training images. The MACs
//!   limit is half of the way from the cheapest to the most expensive path
//!   (`--macs-fraction`). On this proxy its architectures train to within the validation
//!   noise of each other, so the search cannot beat random choice here (`docs/benchmarks.md`).
//!
//! The data are the embedded Fashion-MNIST subset at 16×16 (`--samples` training images and
//! `--valid` held-out ones of its training pool; `--data digits` for the 8×8 digits, on
//! which every architecture scores 97–99 %). At the end the best architecture and
//! `--random-baselines` random feasible ones are trained from scratch for `--final-epochs`
//! epochs (0 skips it), which prints whether the best beats random search and the Kendall τ
//! between one-shot and from-scratch accuracy; the best is saved into `<report-dir>/network`
//! (`network.json` and `weights.mpk`; load it with `nas::supernet::persist::load_network`).
//!
//! The run ends by writing a report page, `<report-dir>/report.html` (default
//! `runs/spos/report.html`), with SVG figures: the supernet's training accuracy per epoch, the
//! one-shot accuracy of every candidate of the evolution with its best so far, the best
//! architecture, one-shot accuracy against MACs with the Pareto front, the final training's
//! validation accuracy, a table of the candidates, and with `--space nb201` and the table the
//! look-up of the searched and the random cells.
//!
//! ```text
//! cargo run --release --example spos                      # NAS-Bench-201, about 3 minutes on 2 cores
//! cargo run --release --example spos -- --space shufflenet # the paper's space, about 8 minutes
//! cargo run --release --example spos -- --epochs 20 --population 50 --generations 20
//! cargo run --release --example spos -- --final-epochs 10 --report-dir runs/spos-long
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::kendall_tau;
use nas::estimate::tabular::Nb201Table;
use nas::estimate::weight_sharing::WeightSharingConfig;
use nas::estimate::{Budget, Estimator};
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::space::spos::{SposArch, SposChoice, SposConfig, SposSpace};
use nas::space::{Sequential, TextFormat, ToGraph};
use nas::strategy::report::{Report, ReportError};
use nas::strategy::search::{self, TrialRecord};
use nas::strategy::{Constrained, Outcome, SposEvolution, SposEvolutionConfig};
use nas::supernet::Classifier;
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::module::AutodiffModule;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::{AutodiffBackend, Backend};
use nas::supernet::network::seeded;
use nas::supernet::network_config::BuildNetwork;
use nas::supernet::oneshot::train::{StepInfo, SupernetReport};
use nas::supernet::oneshot::{SinglePath, UniformSampler};
use nas::supernet::train::TrainConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "SPOS: uniform single-path supernet training, then evolution under a MACs limit")]
struct Args {
    /// Search space: `nb201` (the NAS-Bench-201 cell, 6 edges × 5 operations; the best cell
    /// and the random ones are looked up in the table after the search when it is found) or
    /// `shufflenet` (the paper's ShuffleNetV2 and Xception blocks, a chain of
    /// `--stage-repeats` choice layers, under a MACs limit; on this proxy its architectures
    /// train to within the validation noise of each other, so no search beats random choice).
    #[arg(long, value_enum, default_value_t = SpaceArg::Nb201)]
    space: SpaceArg,
    /// Initial channels of the NAS-Bench-201 supernet and networks (`--space nb201`).
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Cells per stage of the NAS-Bench-201 supernet and networks (`--space nb201`; default 1).
    #[arg(long)]
    cells: Option<usize>,
    /// Path of `nats_bench_tss_200ep.csv` for `--space nb201` (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv; the look-up is skipped when absent).
    #[arg(long)]
    nb201: Option<PathBuf>,
    /// Supernet training epochs.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Paths of each supernet training step: `uniform` (SPOS: one uniformly drawn path per
    /// minibatch) or `fair` (FairNAS' strict fairness: the minibatch split into one slice per
    /// choice, 5 for nb201 and 4 for shufflenet, whose paths together take every choice of
    /// every decision once).
    #[arg(long, value_enum, default_value_t = Sampling::Uniform)]
    sampling: Sampling,
    /// Learning rate of the supernet training and of the from-scratch trainings (SGD with
    /// momentum, cosine schedule, batch 64).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Choice layers per stage of `--space shufflenet` (the paper: 4,4,8,4, i.e. 20 layers).
    #[arg(long, value_delimiter = ',', default_value = "1,1,2,1")]
    stage_repeats: Vec<usize>,
    /// Width multiplier of the `--space shufflenet` supernet (the paper's network is 1.0).
    #[arg(long, default_value_t = 0.5)]
    width: f64,
    /// Candidates per generation (the paper: 50).
    #[arg(long, default_value_t = 12)]
    population: usize,
    /// Parents kept (the paper: 10).
    #[arg(long, default_value_t = 4)]
    top_k: usize,
    /// Children by mutation and by crossover per generation (the paper: 25 each).
    #[arg(long, default_value_t = 4)]
    children: usize,
    /// Generations (the paper: 20).
    #[arg(long, default_value_t = 4)]
    generations: usize,
    /// MACs limit, as a fraction of the way from the cheapest to the most expensive path
    /// (default: 0.5 with `--space shufflenet`, 1.0, i.e. no limit, with `nb201`).
    #[arg(long)]
    macs_fraction: Option<f64>,
    /// Training batches the batch norms of each candidate are recalibrated on.
    #[arg(long, default_value_t = 4)]
    recalibration_batches: usize,
    /// Epochs of the final from-scratch training of the best architecture, saved into
    /// <report-dir>/network (0: skip), and of the random architectures it is compared with.
    #[arg(long, alias = "retrain-epochs", default_value_t = 5)]
    final_epochs: usize,
    /// Random feasible architectures trained from scratch like the best one: the comparison
    /// with random search, and (with the best) the Kendall τ between one-shot and stand-alone
    /// accuracy.
    #[arg(long, default_value_t = 5)]
    random_baselines: usize,
    /// Directory of the report page (report.html and its SVG figures) and of the final
    /// network.
    #[arg(long, default_value = "runs/spos")]
    report_dir: PathBuf,
    /// Data: `fashion` (the embedded Fashion-MNIST subset at 16×16, the default), `digits`
    /// (the embedded 8×8 digits, split 70 / 30: every architecture scores 97–99 %, so the
    /// search cannot beat random choice there), or a directory with Fashion-MNIST IDX files or
    /// CIFAR-10 binary batches.
    #[arg(long, default_value = "fashion")]
    data: PathBuf,
    /// Training images of the supernet and of the from-scratch trainings (a random subset of
    /// the training pool; default: 3,000 with `--space shufflenet`, the whole pool but the
    /// held-out images with `nb201`).
    #[arg(long)]
    samples: Option<usize>,
    /// Images of the training pool held out to score the candidates and the from-scratch
    /// trainings (with `--data digits`: the 30 % split).
    #[arg(long, default_value_t = 1000)]
    valid: usize,
    #[command(flatten)]
    run: common::RunArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum SpaceArg {
    Shufflenet,
    Nb201,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Sampling {
    Uniform,
    Fair,
}

struct Spos(Args, Option<Nb201Table>);

/// MACs of every path from per-decision increments (MACs are additive along the chain and
/// over a cell's edges): the path of all first choices plus, per decision, what its choice
/// adds. Checked against the supernet's own count on random paths when built.
struct MacsTable<S> {
    space: S,
    base: u64,
    delta: Vec<Vec<i64>>,
}

impl<S: Sequential> MacsTable<S> {
    fn new<B: Backend, N: SinglePath<B, Arch = S::Arch>>(
        space: S,
        net: &N,
        input: [usize; 3],
        seed: u64,
    ) -> Result<Self, String> {
        let decisions = space.decisions();
        let first = vec![0; decisions.len()];
        let arch = |choices: &[usize]| space.from_decisions(choices).map_err(|e| e.to_string());
        let base = net.path_macs(&arch(&first)?, input);
        let mut delta = Vec::with_capacity(decisions.len());
        for (d, &n) in decisions.iter().enumerate() {
            let mut row = Vec::with_capacity(n);
            for c in 0..n {
                let mut choices = first.clone();
                choices[d] = c;
                row.push(net.path_macs(&arch(&choices)?, input) as i64 - base as i64);
            }
            delta.push(row);
        }
        let table = Self { space, base, delta };
        let mut rng = <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        for _ in 0..16 {
            let a = table.space.sample(&mut rng);
            let (counted, summed) = (net.path_macs(&a, input), table.macs(&a));
            if counted != summed {
                return Err(format!(
                    "the MACs of the {} space's paths are not additive over its decisions ({counted} counted, {summed} summed); this example's MACs limit needs them to be",
                    table.space.name()
                ));
            }
        }
        Ok(table)
    }

    fn macs(&self, arch: &S::Arch) -> u64 {
        // Architectures here come from the space, so `to_decisions` cannot fail; an
        // architecture it rejects counts as infinitely expensive (never feasible).
        let Ok(choices) = self.space.to_decisions(arch) else {
            return u64::MAX;
        };
        let d: i64 = choices.iter().zip(&self.delta).map(|(&c, d)| d[c]).sum();
        (self.base as i64 + d) as u64
    }

    fn range(&self) -> (u64, u64) {
        let sum = |pick: fn(&[i64]) -> i64| -> u64 {
            (self.base as i64 + self.delta.iter().map(|d| pick(d)).sum::<i64>()) as u64
        };
        (
            sum(|d| d.iter().copied().min().unwrap_or(0)),
            sum(|d| d.iter().copied().max().unwrap_or(0)),
        )
    }
}

/// The space-specific parts of a run: the space, its supernet, the builder of stand-alone
/// networks, a description for the log and the report, and the NAS-Bench-201 look-up (CIFAR-10
/// accuracy and rank) where the space has one.
struct Setup<S, N, F, R> {
    space: S,
    supernet: N,
    scratch: F,
    description: String,
    /// Part of the checkpoint's directory name (the space and the supernet's shape): a resumed
    /// training never mixes them.
    tag: String,
    rank: R,
}

impl BackendTask for Spos {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let Spos(args, table) = self;
        let samples = match (args.samples, args.space) {
            (Some(n), _) => Some(n),
            (None, SpaceArg::Shufflenet) => Some(3000),
            (None, SpaceArg::Nb201) => None,
        };
        let data = common::Digits::load(Some(&args.data), samples, args.valid, args.run.seed)?;
        match args.space {
            SpaceArg::Shufflenet => {
                let space = SposSpace::new(SposConfig {
                    stage_repeats: args.stage_repeats.clone(),
                    ..SposConfig::default()
                })
                .map_err(|e| e.to_string())?;
                let net = common::chain_net_for(&data.train, args.width);
                let supernet = seeded(&device, args.run.seed, || {
                    net.spos_supernet::<B>(&space, &device)
                })
                .map_err(|e| e.to_string())?;
                let description = format!(
                    "a supernet of {} layers × {} blocks, width {}",
                    space.num_layers(),
                    SposChoice::ALL.len(),
                    args.width
                );
                let scratch = net.with_space(space.clone());
                let setup = Setup {
                    space,
                    supernet,
                    scratch,
                    description,
                    tag: format!(
                        "-shufflenet-{}-w{}",
                        args.stage_repeats
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join("."),
                        args.width
                    ),
                    rank: |_: &SposArch| None,
                };
                search(&args, &data, setup, &device)
            }
            SpaceArg::Nb201 => {
                let space = Nb201Space::default();
                let net = common::NetShape::new(args.channels, args.cells, &data.train).nb201();
                let supernet = seeded(&device, args.run.seed, || {
                    net.supernet::<B>(&space, &device)
                })
                .map_err(|e| e.to_string())?;
                let description = format!(
                    "the NAS-Bench-201 supernet ({} cell{} per stage, C = {}; 6 edges × 5 operations)",
                    net.cells_per_stage,
                    if net.cells_per_stage == 1 { "" } else { "s" },
                    net.channels
                );
                let table = table.as_ref();
                let setup = Setup {
                    space,
                    supernet,
                    scratch: net,
                    description,
                    tag: format!("-nb201-c{}n{}", net.channels, net.cells_per_stage),
                    rank: |a: &Nb201Arch| table.and_then(|t| common::cifar10_rank(t, a)),
                };
                search(&args, &data, setup, &device)
            }
        }
    }
}

/// Supernet training, evolution under the MACs limit, and the final trainings.
fn search<B, S, N, F, R>(
    args: &Args,
    data: &common::Digits,
    setup: Setup<S, N, F, R>,
    device: &Device<B>,
) -> Result<(), String>
where
    B: AutodiffBackend,
    S: Sequential + TextFormat + ToGraph + Clone,
    N: SinglePath<B, Arch = S::Arch> + AutodiffModule<B>,
    N::InnerModule: SinglePath<B::InnerBackend, Arch = S::Arch>,
    F: BuildNetwork<S::Arch, B> + serde::Serialize,
    F::Network: Classifier<B> + AutodiffModule<B>,
    <F::Network as AutodiffModule<B>>::InnerModule: Classifier<B::InnerBackend>,
    R: Fn(&S::Arch) -> Option<(f64, usize)>,
{
    let start = Instant::now();
    let Setup {
        space,
        supernet,
        scratch,
        description,
        tag,
        rank,
    } = setup;
    println!(
        "SPOS: {description}, {} paths per step, {}: {} training / {} validation images",
        match args.sampling {
            Sampling::Uniform => "uniform single",
            Sampling::Fair => "strictly fair",
        },
        data.train.name(),
        data.train.len(),
        data.valid.len()
    );

    // Checked before the training, so that a wrong flag costs nothing.
    let macs_fraction = args.macs_fraction.unwrap_or(match args.space {
        SpaceArg::Shufflenet => 0.5,
        SpaceArg::Nb201 => 1.0,
    });
    if !(0.0..=1.0).contains(&macs_fraction) {
        return Err(format!(
            "--macs-fraction {macs_fraction} is not between 0 and 1: it places the MACs limit \
             between the cheapest path (0) and the most expensive one (1)"
        ));
    }
    let trials = args
        .population
        .checked_mul(args.generations)
        .ok_or("--population times --generations is too large")?;

    // 1. Supernet training with uniform single-path sampling (or strictly fair paths).
    let config = TrainConfig {
        weight_decay: 4e-5,
        ..common::train_config(args.epochs, 64, args.lr, args.run.seed)
    };
    // Each step's paths are drawn from the seed and the step alone, so that a resumed
    // training draws the same paths as an uninterrupted one.
    let sampler = UniformSampler::new(space.clone(), args.run.seed);
    let fair = |step: usize| {
        let mut rng = <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(
            nas::supernet::network::mix_seed(args.run.seed, step as u64, 29),
        );
        nas::strategy::strictly_fair(&space, &mut rng)
    };
    // The space accepts every decision vector in range, so the draws cannot fail; checked
    // once here rather than assumed inside the training step.
    fair(0).map_err(|e| e.to_string())?;
    let sampling = args.sampling;
    let mut training = data.supernet_training(
        supernet,
        &config,
        device,
        |net: &N, images, info: StepInfo| match sampling {
            Sampling::Uniform => net.path_logits(images, &sampler.sample_at(info.step)),
            Sampling::Fair => match fair(info.step) {
                Ok(paths) => net.sliced_logits(images, &paths),
                Err(_) => net.path_logits(images, &sampler.sample_at(info.step)),
            },
        },
    )?;
    // The space, the supernet's shape and the sampling are in the path: a resumed training
    // never mixes them.
    let path = format!(
        "runs/spos/{}{tag}-seed{}{}/supernet.ckpt",
        args.data
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("data"),
        args.run.seed,
        match args.sampling {
            Sampling::Uniform => "",
            Sampling::Fair => "-fair",
        }
    );
    let accuracy = "accuracy of sampled paths";
    common::train_supernet(&args.run.checkpoint, &mut training, path, accuracy)?;
    let (supernet, supernet_report) = training.into_parts();

    // 2. Evolution under a MACs limit, scored with inherited weights.
    let table = MacsTable::new(space.clone(), &supernet, data.train.shape(), args.run.seed)?;
    let (lo, hi) = table.range();
    let limit = lo + ((hi - lo) as f64 * macs_fraction) as u64;
    println!(
        "path MACs range {lo}..{hi}; limit {limit} ({:.0}% of the way)",
        100.0 * macs_fraction
    );
    let evo = SposEvolution::<S>::new(
        SposEvolutionConfig {
            population_size: args.population,
            top_k: args.top_k,
            mutation_count: args.children,
            crossover_count: args.children,
            ..SposEvolutionConfig::default()
        },
        args.run.seed,
    )
    .map_err(|e| e.to_string())?;
    let mut strategy = Constrained::new(evo, |a: &S::Arch| table.macs(a) <= limit);
    let recalibration = WeightSharingConfig {
        recalibration_batches: args.recalibration_batches,
        batch_size: 64,
        seed: args.run.seed,
    };
    let mut estimator = data.weight_sharing(supernet, recalibration, device)?;
    let mut done = 0;
    let mut best = f64::NEG_INFINITY;
    let search_start = Instant::now();
    let result = search::run(
        &space,
        &mut strategy,
        &mut estimator,
        trials,
        |t: &TrialRecord<S::Arch>| {
            done += 1;
            if let Outcome::Complete(m) = &t.outcome {
                best = best.max(m.objective);
                if done % args.population == 0 || done == 1 {
                    println!(
                        "[{done:>4}/{trials}] generation {}: one-shot accuracy {:5.1}%, best {best:5.1}% ({:.2}s per candidate)",
                        (done - 1) / args.population,
                        m.objective,
                        t.seconds
                    );
                }
            }
        },
    )
    .map_err(|e| e.to_string())?;
    let best = result.best().ok_or("no candidate was scored")?;
    let m = best
        .outcome
        .complete()
        .ok_or("the best trial is incomplete")?;
    println!(
        "\nsearch: {} candidates scored in {:.1}s, {} proposals over the MACs limit rejected",
        result.trials.len(),
        search_start.elapsed().as_secs_f64(),
        strategy.rejected()
    );
    println!("best architecture: {}", space.to_text(&best.arch));
    println!(
        "  one-shot validation accuracy {:.2}%, {} MACs (limit {limit})",
        m.objective,
        table.macs(&best.arch)
    );
    let ranked = |a: &S::Arch| {
        rank(a).map_or(String::new(), |(acc, r)| {
            format!("NAS-Bench-201 CIFAR-10 {acc:.2}%, rank {r}")
        })
    };
    // Only for reporting: the search never reads the table.
    let looked_up: Vec<(f64, f64, usize)> = result
        .trials
        .iter()
        .filter_map(|t| {
            let (acc, r) = rank(&t.arch)?;
            Some((t.objective()?, acc, r))
        })
        .collect();
    let mut lookup_text = None;
    if let Some((acc, r)) = rank(&best.arch) {
        let shots: Vec<f64> = looked_up.iter().map(|x| x.0).collect();
        let accs: Vec<f64> = looked_up.iter().map(|x| x.1).collect();
        let mut ranks: Vec<usize> = looked_up.iter().map(|x| x.2).collect();
        ranks.sort_unstable();
        let text = format!(
            "In the NAS-Bench-201 table (200 epochs, looked up after the search): the best candidate has {acc:.2}% on CIFAR-10, rank {r} of 15,625; the {} candidates scored have median rank {}, best rank {}; Kendall τ of their one-shot accuracy against the table's CIFAR-10 accuracy: {}.",
            looked_up.len(),
            ranks.get(ranks.len() / 2).copied().unwrap_or(0),
            ranks.first().copied().unwrap_or(0),
            kendall_tau(&shots, &accs).map_or("n/a".to_string(), |t| format!("{t:.3}"))
        );
        println!("  {text}");
        lookup_text = Some(text);
    }

    let search_seconds = search_start.elapsed().as_secs_f64();
    let mut report = Report::new("SPOS: supernet training, then evolution under a MACs limit");
    report.intro(format!(
        "SPOS on {} ({} training / {} validation images): {description}, trained for {} epochs with {} paths per step; then evolution ({} candidates per generation, top {}, {} children by mutation and {} by crossover, {} generations) under a limit of {limit} MACs ({:.0}% of the way from {lo} to {hi}), each candidate scored with inherited weights after recalibrating its batch norms on {} batches. Seed {}.",
        data.train.name(),
        data.train.len(),
        data.valid.len(),
        args.epochs,
        match args.sampling {
            Sampling::Uniform => "uniform single",
            Sampling::Fair => "strictly fair",
        },
        args.population,
        args.top_k,
        args.children,
        args.children,
        args.generations,
        100.0 * macs_fraction,
        args.recalibration_batches,
        args.run.seed
    ));
    report_search(
        &mut report,
        &space,
        &supernet_report,
        &result.trials,
        |a: &S::Arch| table.macs(a),
    )?;
    report.paragraph(format!(
        "The evolution scored {} candidates in {search_seconds:.1} s; {} proposals over the MACs limit were rejected.",
        result.trials.len(),
        strategy.rejected()
    ));
    if let Some(text) = lookup_text {
        report.paragraph(text);
    }

    // 3. The best architecture (and, for comparison, random feasible ones) from scratch.
    let mut final_curve = None;
    let mut saved = None;
    if args.final_epochs > 0 {
        let mut rng = <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(args.run.seed);
        let mut randoms = Vec::new();
        let mut draws = 0;
        while randoms.len() < args.random_baselines {
            draws += 1;
            if draws > 100_000 {
                return Err(format!(
                    "found only {} of {} random architectures under the MACs limit in \
                     100,000 draws: raise --macs-fraction or lower --random-baselines",
                    randoms.len(),
                    args.random_baselines
                ));
            }
            let a = space.sample(&mut rng);
            if table.macs(&a) <= limit {
                randoms.push(a);
            }
        }
        let retrain = common::train_config(args.final_epochs, 64, args.lr, args.run.seed);
        let mut scratch = data.scratch_estimator::<B, _, _>(scratch, retrain, device)?;
        let dir = args.report_dir.join("network");
        let full = Budget::full();
        let best_metrics = scratch
            .train_and_save(&best.arch, &full, &dir)
            .map_err(|e| e.to_string())?;
        println!(
            "  best: trained from scratch for {} epochs: {:.2}% validation accuracy",
            args.final_epochs, best_metrics.objective
        );
        println!(
            "  saved in {} (load it with nas::supernet::persist::load_network)",
            dir.display()
        );
        // Random feasible architectures trained the same way: is the best better than
        // random search, and do one-shot accuracies rank stand-alone ones?
        let mut one_shot = vec![m.objective];
        let mut alone = vec![best_metrics.objective];
        let mut rows = Vec::new();
        for (i, random) in randoms.iter().enumerate() {
            let inherited = estimator
                .estimate(random, &full)
                .map_err(|e| e.to_string())?
                .objective;
            let trained = scratch
                .estimate(random, &full)
                .map_err(|e| e.to_string())?
                .objective;
            let line = format!(
                "  random feasible {}: one-shot {inherited:5.1}%, from scratch {trained:5.2}%  {}  {}",
                i + 1,
                space.to_text(random),
                ranked(random)
            );
            println!("{}", line.trim_end());
            one_shot.push(inherited);
            alone.push(trained);
            rows.push(vec![
                format!("random {}", i + 1),
                space.to_text(random),
                table.macs(random).to_string(),
                format!("{inherited:.1}"),
                format!("{trained:.2}"),
                ranked(random),
            ]);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let tau = kendall_tau(&one_shot, &alone);
        let tau_text = tau.map_or("n/a".to_string(), |t| format!("{t:.3}"));
        if !randoms.is_empty() {
            println!(
                "  best {:.2}% against {:.2}% for the random ones on average (best of them {:.2}%); Kendall τ of one-shot and from-scratch accuracy over these {} architectures: {tau_text}",
                best_metrics.objective,
                mean(&alone[1..]),
                alone[1..].iter().copied().fold(f64::NEG_INFINITY, f64::max),
                alone.len()
            );
        }
        report.paragraph(if randoms.is_empty() {
            format!(
                "Trained from scratch for {} epochs: the best architecture {:.2}% validation accuracy (no random baselines).",
                args.final_epochs, best_metrics.objective
            )
        } else {
            format!(
                "Trained from scratch for {} epochs: the best architecture {:.2}% validation accuracy; {} random feasible ones {:.2}% on average. Kendall τ between one-shot and from-scratch accuracy over these {} architectures: {tau_text}.",
                args.final_epochs,
                best_metrics.objective,
                randoms.len(),
                mean(&alone[1..]),
                alone.len()
            )
        });
        let mut table_rows = vec![vec![
            "best".to_string(),
            space.to_text(&best.arch),
            table.macs(&best.arch).to_string(),
            format!("{:.1}", m.objective),
            format!("{:.2}", best_metrics.objective),
            ranked(&best.arch),
        ]];
        table_rows.extend(rows);
        let mut headers = vec![
            "architecture",
            "choices",
            "MACs",
            "one-shot acc (%)",
            "from scratch (%)",
            "NAS-Bench-201 (CIFAR-10)",
        ];
        // The look-up's column only where the space has a table and it was found.
        if rank(&best.arch).is_none() {
            headers.pop();
            for row in &mut table_rows {
                row.pop();
            }
        }
        report.table(&headers, table_rows);
        final_curve = Some(
            best_metrics
                .curves
                .get("valid_accuracy")
                .cloned()
                .unwrap_or_else(|| vec![best_metrics.objective]),
        );
        saved = Some(dir);
    }
    common::final_training_section(
        &mut report,
        final_curve.as_deref(),
        "validation accuracy",
        saved.as_deref(),
    )?;
    let population = args.population;
    candidates_table(&mut report, &space, &result.trials, population, |a| {
        table.macs(a)
    });
    println!("total {:.1} min", start.elapsed().as_secs_f64() / 60.0);
    common::write_report(&report, &args.report_dir)?;
    Ok(())
}

/// Adds the supernet's training curve, the candidates' one-shot accuracy (with best so far),
/// the best architecture, and one-shot accuracy against `macs` with the Pareto front to
/// `report`.
fn report_search<S: TextFormat + ToGraph>(
    report: &mut Report,
    space: &S,
    supernet: &SupernetReport,
    trials: &[TrialRecord<S::Arch>],
    macs: impl Fn(&S::Arch) -> u64,
) -> Result<(), String> {
    let err = |e: ReportError| e.to_string();
    if !supernet.train_accuracy.is_empty() {
        report
            .curve(
                "supernet_training.svg",
                "supernet training: accuracy of the sampled paths per epoch",
                "epoch",
                "training accuracy (%)",
                &supernet.train_accuracy,
            )
            .map_err(err)?;
    }
    let values: Vec<f64> = trials
        .iter()
        .map(|t| t.objective().unwrap_or(f64::NAN))
        .collect();
    report
        .curve(
            "candidates.svg",
            "one-shot validation accuracy of each candidate of the evolution, and best so far",
            "candidate",
            "one-shot accuracy (%)",
            &values,
        )
        .map_err(err)?;
    let best = trials
        .iter()
        .filter(|t| t.objective().is_some())
        .max_by(|a, b| {
            a.objective()
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.objective().unwrap_or(f64::NEG_INFINITY))
                .then(b.id.cmp(&a.id))
        });
    if let Some(best) = best {
        let graph = space.graph(&best.arch).map_err(|e| e.to_string())?;
        report
            .architecture(
                "best_architecture.svg",
                &format!(
                    "best architecture (one-shot accuracy {:.2}%, {} MACs): {}",
                    best.objective().unwrap_or(f64::NAN),
                    macs(&best.arch),
                    space.to_text(&best.arch)
                ),
                &graph,
            )
            .map_err(err)?;
    }
    let points: Vec<(f64, f64, String)> = trials
        .iter()
        .filter_map(|t| {
            Some((
                macs(&t.arch) as f64,
                t.objective()?,
                format!("candidate {}", t.id),
            ))
        })
        .collect();
    if !points.is_empty() {
        report
            .pareto(
                "pareto.svg",
                "one-shot accuracy against multiply-accumulates of the candidates, with the Pareto front",
                "MACs per image",
                "one-shot accuracy (%)",
                &points,
            )
            .map_err(err)?;
    }
    Ok(())
}

/// Adds the table of the candidates (best first) to `report`.
fn candidates_table<S: TextFormat>(
    report: &mut Report,
    space: &S,
    trials: &[TrialRecord<S::Arch>],
    population: usize,
    macs: impl Fn(&S::Arch) -> u64,
) {
    let mut order: Vec<usize> = (0..trials.len()).collect();
    order.sort_by(|&a, &b| {
        let value = |i: usize| trials[i].objective().unwrap_or(f64::NEG_INFINITY);
        value(b).total_cmp(&value(a)).then(a.cmp(&b))
    });
    let rows = order
        .into_iter()
        .map(|i| {
            let t = &trials[i];
            vec![
                (i + 1).to_string(),
                (i / population.max(1)).to_string(),
                match &t.outcome {
                    Outcome::Complete(m) => format!("{:.2}", m.objective),
                    Outcome::Pruned(_) => "pruned".into(),
                    Outcome::Failed(why) => format!("failed: {why}"),
                },
                macs(&t.arch).to_string(),
                format!("{:.2}", t.seconds),
                space.to_text(&t.arch),
            ]
        })
        .collect();
    report.table(
        &[
            "candidate",
            "generation",
            "one-shot accuracy (%)",
            "MACs",
            "seconds",
            "architecture",
        ],
        rows,
    );
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The table is opened before the search, so that a wrong --nb201 path fails at once.
    let table = match args.space {
        SpaceArg::Nb201 => match common::open_nb201(args.nb201.clone()) {
            Ok(t) => t,
            Err(code) => return code,
        },
        SpaceArg::Shufflenet => None,
    };
    if args.space == SpaceArg::Nb201 && table.is_none() {
        println!(
            "NAS-Bench-201 table not found: the cells will not be looked up (pass --nb201 PATH)"
        );
    }
    let backend = args.run.backend.clone();
    common::run_to_exit(backend.as_deref(), Spos(args, table))
}
