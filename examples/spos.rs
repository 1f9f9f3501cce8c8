//! SPOS (Guo et al., *Single Path One-Shot Neural Architecture Search with Uniform Sampling*):
//! train the ShuffleNetV2-block supernet with uniform single-path sampling, then run the
//! paper's evolutionary search over it under a FLOPs (multiply-accumulate) limit, scoring every
//! candidate with inherited weights after recomputing its batch-norm statistics.
//!
//! The proxy task is the embedded Fashion-MNIST subset at 16×16 (`--samples` training images
//! and `--valid` held-out ones of its training pool; `--data digits` for the 8×8 digits, on
//! which every architecture scores 97–99 %) with a narrow supernet (width multiplier 0.5,
//! stride-2 stem) of 5 choice layers (`--stage-repeats 1,1,2,1`; the paper's 20 layers are
//! `--stage-repeats 4,4,8,4`): with uniform sampling over 4^20 paths the supernet of a
//! few-minute run stays at chance (the blocks of a layer switch every step, so no layer sees
//! the same features twice), while 5 layers learn in 40 epochs. The MACs limit is a fraction
//! of the way from the cheapest to the most expensive path (`--macs-fraction`). At the end the
//! best architecture and `--random-baselines` random feasible ones are trained from scratch
//! for `--final-epochs` epochs (0 skips it), which prints whether the best beats random search
//! and the Kendall τ between one-shot and from-scratch accuracy; the best is saved into
//! `<report-dir>/network` (`network.json` and `weights.mpk`; load it with
//! `nas::supernet::persist::load_network`).
//!
//! The run ends by writing a report page, `<report-dir>/report.html` (default
//! `runs/spos/report.html`), with SVG figures: the supernet's training accuracy per epoch, the
//! one-shot accuracy of every candidate of the evolution with its best so far, the best
//! architecture, one-shot accuracy against MACs with the Pareto front, the final training's
//! validation accuracy, and a table of the candidates.
//!
//! ```text
//! cargo run --release --example spos                      # about 8 minutes on 2 cores
//! cargo run --release --example spos -- --epochs 20 --population 50 --generations 20
//! cargo run --release --example spos -- --final-epochs 10 --report-dir runs/spos-long
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::kendall_tau;
use nas::estimate::weight_sharing::WeightSharingConfig;
use nas::estimate::{Budget, Estimator};
use nas::space::spos::{SposArch, SposChoice, SposConfig, SposSpace};
use nas::space::{SearchSpace, TextFormat, ToGraph};
use nas::strategy::report::{Report, ReportError};
use nas::strategy::search::{self, TrialRecord};
use nas::strategy::{Constrained, Outcome, SposEvolution, SposEvolutionConfig};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::network::seeded;
use nas::supernet::oneshot::train::{StepInfo, SupernetReport};
use nas::supernet::oneshot::{SinglePath, SposSupernet, UniformSampler};
use nas::supernet::train::TrainConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "SPOS: uniform single-path supernet training, then evolution under a MACs limit")]
struct Args {
    /// Supernet training epochs.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Paths of each supernet training step: `uniform` (SPOS: one uniformly drawn path per
    /// minibatch) or `fair` (FairNAS' strict fairness: the minibatch split into 4 slices
    /// whose paths together take every block of every layer once).
    #[arg(long, value_enum, default_value_t = Sampling::Uniform)]
    sampling: Sampling,
    /// Learning rate of the supernet training and of the from-scratch trainings (SGD with
    /// momentum, cosine schedule, batch 64).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Choice layers per stage (the paper: 4,4,8,4, i.e. 20 layers).
    #[arg(long, value_delimiter = ',', default_value = "1,1,2,1")]
    stage_repeats: Vec<usize>,
    /// Width multiplier of the supernet (the paper's network is 1.0).
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
    /// MACs limit, as a fraction of the way from the cheapest to the most expensive path.
    #[arg(long, default_value_t = 0.5)]
    macs_fraction: f64,
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
    /// the training pool; all with `--data digits`).
    #[arg(long, default_value_t = 3000)]
    samples: usize,
    /// Images of the training pool held out to score the candidates and the from-scratch
    /// trainings (with `--data digits`: the 30 % split).
    #[arg(long, default_value_t = 1000)]
    valid: usize,
    #[command(flatten)]
    run: common::RunArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Sampling {
    Uniform,
    Fair,
}

struct Spos(Args);

/// MACs of every path from per-layer increments (MACs are additive along the chain): the
/// all-`shufflenet_3x3` path plus, per layer, what its choice adds.
struct MacsTable {
    base: u64,
    delta: Vec<[i64; 4]>,
}

impl MacsTable {
    fn new<N: SinglePath<B, Arch = SposArch>, B: nas::supernet::burn::tensor::backend::Backend>(
        net: &N,
        layers: usize,
        input: [usize; 3],
    ) -> Self {
        let uniform = SposArch::new(vec![SposChoice::Shufflenet3x3; layers]);
        let base = net.path_macs(&uniform, input);
        let delta = (0..layers)
            .map(|l| {
                SposChoice::ALL.map(|c| {
                    let mut a = uniform.clone();
                    a.choices[l] = c;
                    net.path_macs(&a, input) as i64 - base as i64
                })
            })
            .collect();
        Self { base, delta }
    }

    fn macs(&self, arch: &SposArch) -> u64 {
        let d: i64 = arch
            .choices
            .iter()
            .zip(&self.delta)
            .map(|(c, d)| d[c.index()])
            .sum();
        (self.base as i64 + d) as u64
    }

    fn range(&self) -> (u64, u64) {
        let lo: i64 = self
            .delta
            .iter()
            .map(|d| *d.iter().min().unwrap_or(&0))
            .sum();
        let hi: i64 = self
            .delta
            .iter()
            .map(|d| *d.iter().max().unwrap_or(&0))
            .sum();
        (
            (self.base as i64 + lo) as u64,
            (self.base as i64 + hi) as u64,
        )
    }
}

impl BackendTask for Spos {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let start = Instant::now();
        let data = common::Digits::load(
            Some(&args.data),
            Some(args.samples),
            args.valid,
            args.run.seed,
        )?;
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
        println!(
            "SPOS supernet: {} layers × {} blocks, width {}, {} paths per step, {}: {} training / {} validation images",
            space.num_layers(),
            SposChoice::ALL.len(),
            args.width,
            match args.sampling {
                Sampling::Uniform => "uniform single",
                Sampling::Fair => "strictly fair",
            },
            data.train.name(),
            data.train.len(),
            data.valid.len()
        );

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
            &device,
            |net: &SposSupernet<B>, images, info: StepInfo| match sampling {
                Sampling::Uniform => net.path_logits(images, &sampler.sample_at(info.step)),
                Sampling::Fair => match fair(info.step) {
                    Ok(paths) => net.sliced_logits(images, &paths),
                    Err(_) => net.path_logits(images, &sampler.sample_at(info.step)),
                },
            },
        )?;
        // The sampling is in the path: a resumed training never mixes uniform and fair steps.
        let path = format!(
            "runs/spos/{}-seed{}{}/supernet.ckpt",
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
        let table = MacsTable::new(&supernet, space.num_layers(), data.train.shape());
        let (lo, hi) = table.range();
        let limit = lo + ((hi - lo) as f64 * args.macs_fraction) as u64;
        println!(
            "path MACs range {lo}..{hi}; limit {limit} ({:.0}% of the way)",
            100.0 * args.macs_fraction
        );
        let evo = SposEvolution::<SposSpace>::new(
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
        let mut strategy = Constrained::new(evo, |a: &SposArch| table.macs(a) <= limit);
        let recalibration = WeightSharingConfig {
            recalibration_batches: args.recalibration_batches,
            batch_size: 64,
            seed: args.run.seed,
        };
        let mut estimator = data.weight_sharing(supernet, recalibration, &device)?;
        let trials = args.population * args.generations;
        let mut done = 0;
        let mut best = f64::NEG_INFINITY;
        let search_start = Instant::now();
        let result = search::run(
            &space,
            &mut strategy,
            &mut estimator,
            trials,
            |t: &TrialRecord<SposArch>| {
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

        let search_seconds = search_start.elapsed().as_secs_f64();
        let mut report = Report::new("SPOS: supernet training, then evolution under a MACs limit");
        report.intro(format!(
            "SPOS on {} ({} training / {} validation images): a supernet of {} layers × {} blocks, width {}, trained for {} epochs with uniform single-path sampling; then evolution ({} candidates per generation, top {}, {} children by mutation and {} by crossover, {} generations) under a limit of {limit} MACs ({:.0}% of the way from {lo} to {hi}), each candidate scored with inherited weights after recalibrating its batch norms on {} batches. Seed {}.",
            data.train.name(),
            data.train.len(),
            data.valid.len(),
            space.num_layers(),
            SposChoice::ALL.len(),
            args.width,
            args.epochs,
            args.population,
            args.top_k,
            args.children,
            args.children,
            args.generations,
            100.0 * args.macs_fraction,
            args.recalibration_batches,
            args.run.seed
        ));
        report_search(
            &mut report,
            &space,
            &supernet_report,
            &result.trials,
            |a: &SposArch| table.macs(a),
        )?;
        report.paragraph(format!(
            "The evolution scored {} candidates in {search_seconds:.1} s; {} proposals over the MACs limit were rejected.",
            result.trials.len(),
            strategy.rejected()
        ));

        // 3. The best architecture (and, for comparison, random feasible ones) from scratch.
        let mut final_curve = None;
        let mut saved = None;
        if args.final_epochs > 0 {
            let mut rng =
                <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(args.run.seed);
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
            let mut scratch =
                data.scratch_estimator::<B, _, _>(net.with_space(space.clone()), retrain, &device)?;
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
                println!(
                    "  random feasible {}: one-shot {inherited:5.1}%, from scratch {trained:5.2}%  {}",
                    i + 1,
                    space.to_text(random)
                );
                one_shot.push(inherited);
                alone.push(trained);
                rows.push(vec![
                    format!("random {}", i + 1),
                    space.to_text(random),
                    table.macs(random).to_string(),
                    format!("{inherited:.1}"),
                    format!("{trained:.2}"),
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
            ]];
            table_rows.extend(rows);
            report.table(
                &[
                    "architecture",
                    "blocks",
                    "MACs",
                    "one-shot acc (%)",
                    "from scratch (%)",
                ],
                table_rows,
            );
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
}

/// Adds the supernet's training curve, the candidates' one-shot accuracy (with best so far),
/// the best architecture, and one-shot accuracy against `macs` with the Pareto front to
/// `report`.
fn report_search(
    report: &mut Report,
    space: &SposSpace,
    supernet: &SupernetReport,
    trials: &[TrialRecord<SposArch>],
    macs: impl Fn(&SposArch) -> u64,
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
fn candidates_table(
    report: &mut Report,
    space: &SposSpace,
    trials: &[TrialRecord<SposArch>],
    population: usize,
    macs: impl Fn(&SposArch) -> u64,
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
    let backend = args.run.backend.clone();
    common::run_to_exit(backend.as_deref(), Spos(args))
}
