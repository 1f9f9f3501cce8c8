//! SPOS (Guo et al., *Single Path One-Shot Neural Architecture Search with Uniform Sampling*):
//! train the ShuffleNetV2-block supernet with uniform single-path sampling, then run the
//! paper's evolutionary search over it under a FLOPs (multiply-accumulate) limit, scoring every
//! candidate with inherited weights after recomputing its batch-norm statistics.
//!
//! The proxy task is the embedded 8×8 digits with a narrow supernet (width multiplier 0.25,
//! stride-1 stem); the search space is the paper's (20 layers × 4 blocks). The MACs limit is a
//! fraction of the way from the cheapest to the most expensive path (`--macs-fraction`). At the
//! end the best architecture is trained from scratch for comparison.
//!
//! ```text
//! cargo run --release --example spos                      # a few minutes on 2 cores
//! cargo run --release --example spos -- --epochs 20 --population 50 --generations 20
//! ```

mod common;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::Estimator;
use nas::estimate::weight_sharing::WeightSharingConfig;
use nas::space::spos::{SposArch, SposChoice, SposSpace};
use nas::space::{SearchSpace, TextFormat};
use nas::strategy::search::{self, TrialRecord};
use nas::strategy::{Constrained, Outcome, SposEvolution, SposEvolutionConfig};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::network::seeded;
use nas::supernet::oneshot::train::StepInfo;
use nas::supernet::oneshot::{SinglePath, SposSupernet, UniformSampler};
use nas::supernet::train::TrainConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "SPOS: uniform single-path supernet training, then evolution under a MACs limit")]
struct Args {
    /// Supernet training epochs.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Width multiplier of the supernet (the paper's network is 1.0).
    #[arg(long, default_value_t = 0.25)]
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
    /// Epochs of the final from-scratch training of the best architecture (0: skip).
    #[arg(long, default_value_t = 3)]
    retrain_epochs: usize,
    #[command(flatten)]
    run: common::RunArgs,
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
        let digits = common::Digits::new(args.run.seed)?;
        let space = SposSpace::default();
        let net = common::digits_chain_net(args.width);
        let supernet = seeded(&device, args.run.seed, || {
            net.spos_supernet::<B>(&space, &device)
        })
        .map_err(|e| e.to_string())?;
        println!(
            "SPOS supernet: {} layers × {} blocks, width {}, {} training / {} validation digits",
            space.num_layers(),
            SposChoice::ALL.len(),
            args.width,
            digits.train.len(),
            digits.valid.len()
        );

        // 1. Supernet training with uniform single-path sampling.
        // Learning rate: SPOS's 0.5 for batches of 1,024, scaled to 64.
        let config = TrainConfig {
            weight_decay: 4e-5,
            ..common::train_config(args.epochs, 64, 0.03, args.run.seed)
        };
        // Each step's path is drawn from the seed and the step alone, so that a resumed
        // training draws the same paths as an uninterrupted one.
        let sampler = UniformSampler::new(space.clone(), args.run.seed);
        let mut training = digits.supernet_training(
            supernet,
            &config,
            &device,
            |net: &SposSupernet<B>, images, info: StepInfo| {
                net.path_logits(images, &sampler.sample_at(info.step))
            },
        )?;
        let path = format!("runs/spos/seed{}/supernet.ckpt", args.run.seed);
        let accuracy = "accuracy of sampled paths";
        common::train_supernet(&args.run.checkpoint, &mut training, path, accuracy)?;
        let (supernet, _) = training.into_parts();

        // 2. Evolution under a MACs limit, scored with inherited weights.
        let table = MacsTable::new(&supernet, space.num_layers(), digits.train.shape());
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
        let mut estimator = digits.weight_sharing(supernet, recalibration, &device)?;
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

        // 3. The best architecture (and, for comparison, a random feasible one) from scratch.
        if args.retrain_epochs > 0 {
            let mut rng =
                <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(args.run.seed);
            let random = loop {
                let a = space.sample(&mut rng);
                if table.macs(&a) <= limit {
                    break a;
                }
            };
            let retrain = common::train_config(args.retrain_epochs, 64, 0.03, args.run.seed);
            let mut scratch = digits.scratch_estimator::<B, _, _>(
                net.with_space(space.clone()),
                retrain,
                &device,
            )?;
            for (name, arch) in [("best", &best.arch), ("random feasible", &random)] {
                let s = scratch
                    .estimate(arch, &nas::estimate::Budget::full())
                    .map_err(|e| e.to_string())?;
                println!(
                    "  {name}: trained from scratch for {} epochs: {:.2}% validation accuracy",
                    args.retrain_epochs, s.objective
                );
            }
        }
        println!("total {:.1} min", start.elapsed().as_secs_f64() / 60.0);
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.run.backend.clone();
    common::run_to_exit(backend.as_deref(), Spos(args))
}
