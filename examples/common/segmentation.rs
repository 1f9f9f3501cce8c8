//! The search-then-compare loop of the dense-prediction examples (`dpc`, `nas_fpn`): a
//! search over a space of segmentation networks scored by validation mIoU, then the best
//! architecture trained longer beside reference architectures and tested on held-out scenes.

use std::path::PathBuf;
use std::time::Instant;

use nas::estimate::segment::SegmentationEstimator;
use nas::space::{Canonicalize, Mutate, TextFormat};
use nas::strategy::search::TrialRecord;
use nas::strategy::{
    Outcome, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, Search, Strategy,
};
use nas::supernet::burn::module::AutodiffModule;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::network::{count_params, seeded};
use nas::supernet::network_config::BuildNetwork;
use nas::supernet::segment::{
    SegmentationDataset, Segmenter, ShapesConfig, evaluate_segmentation, fit_segmentation,
};
use nas::supernet::train::TrainConfig;

/// The search strategy.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// Regularized evolution.
    Evolution,
    /// Random search (what DPC's paper ran).
    Random,
}

/// The flags every dense-prediction search example has.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    /// Architectures to train and score.
    #[arg(long, default_value_t = 16)]
    pub trials: usize,
    /// `evolution` (regularized evolution) or `random`.
    #[arg(long, default_value = "evolution")]
    pub strategy: StrategyKind,
    /// Regularized evolution's population (its first architectures are random).
    #[arg(long, default_value_t = 8)]
    pub population: usize,
    /// Regularized evolution's tournament size.
    #[arg(long, default_value_t = 3)]
    pub sample: usize,
    /// Training scenes.
    #[arg(long, default_value_t = 1000)]
    pub train: usize,
    /// Validation scenes (the search's score).
    #[arg(long, default_value_t = 300)]
    pub valid: usize,
    /// Test scenes (the final comparison).
    #[arg(long, default_value_t = 300)]
    pub test: usize,
    /// Training epochs of each searched architecture.
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// Training epochs of the final comparison (0: skip it).
    #[arg(long, default_value_t = 12)]
    pub final_epochs: usize,
    /// Trainings of each architecture in the final comparison, each with its own seed (the
    /// table gives their mean, minimum and maximum: one training's mIoU varies widely with the
    /// seed here, docs/benchmarks.md).
    #[arg(long, default_value_t = 2)]
    pub final_seeds: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Initial learning rate (SGD, Nesterov momentum 0.9, cosine to 0).
    #[arg(long, default_value_t = 0.05)]
    pub learning_rate: f64,
    /// Seed of the data, the search and every training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Backend: ndarray, flex, wgpu or cuda (default: $NAS_BACKEND, else the CPU backend).
    #[arg(long)]
    pub backend: Option<String>,
    /// Directory of the journal (default: runs/<example>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Resume the search recorded in `<out>/trials.jsonl`: finished trials are replayed.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Start over an existing journal.
    #[arg(long)]
    pub fresh: bool,
    /// Print every training epoch of the search.
    #[arg(long)]
    pub verbose: bool,
}

impl SearchArgs {
    /// The training, validation and test scenes: three independent draws of shapes.
    pub fn scenes(&self) -> Result<[SegmentationDataset; 3], String> {
        let make = |images: usize, salt: u64| {
            SegmentationDataset::shapes(&ShapesConfig {
                images,
                seed: self.seed.wrapping_mul(3).wrapping_add(salt),
                ..ShapesConfig::default()
            })
            .map_err(|e| e.to_string())
        };
        Ok([
            make(self.train, 0)?,
            make(self.valid, 1)?,
            make(self.test, 2)?,
        ])
    }

    /// The training configuration of the search.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            seed: self.seed,
            ..TrainConfig::default()
        }
    }

    /// The settings that decide the journal's scores, with the example's own (`extra`).
    fn settings(&self, extra: &str) -> String {
        format!(
            "{extra}; {:?}, P = {}, S = {}; {} / {} scenes; {} epochs, batch {}, lr {}; seed {}",
            self.strategy,
            self.population,
            self.sample,
            self.train,
            self.valid,
            self.epochs,
            self.batch_size,
            self.learning_rate,
            self.seed
        )
    }
}

/// Prints the scenes' sizes and background share.
pub fn describe_scenes([train, valid, test]: &[SegmentationDataset; 3]) {
    let pixels = train.class_pixels();
    let background = 100.0 * pixels[0] as f64 / pixels.iter().sum::<u64>().max(1) as f64;
    println!(
        "scenes: {} training, {} validation, {} test, {:?} pixels, {} classes ({background:.1}% of \
         training pixels are background)",
        train.len(),
        valid.len(),
        test.len(),
        train.shape(),
        train.num_classes()
    );
}

/// Searches `space` with networks built by `build`, scored by validation mIoU (journal in
/// `out`, `settings` naming what else decides the scores), then trains the best architecture
/// and `references` for `--final-epochs` and prints their test mIoU; `text` prints an
/// architecture (also one outside the space).
#[allow(clippy::too_many_arguments)]
pub fn search_and_compare<B, S, F, M>(
    args: &SearchArgs,
    space: &S,
    build: F,
    scenes: &[SegmentationDataset; 3],
    references: Vec<(&'static str, S::Arch)>,
    text: impl Fn(&S::Arch) -> String,
    (out, settings): (PathBuf, &str),
    device: &Device<B>,
) -> Result<(), String>
where
    B: AutodiffBackend,
    S: Mutate + Canonicalize + TextFormat,
    F: BuildNetwork<S::Arch, B, Network = M> + Clone,
    M: AutodiffModule<B> + Segmenter<B>,
    M::InnerModule: Segmenter<B::InnerBackend>,
{
    let start = Instant::now();
    let [train, valid, test] = scenes;
    let config = args.train_config();
    let mut estimator = SegmentationEstimator::<B, _, _>::new(
        build.clone(),
        train.clone(),
        valid.clone(),
        config.clone(),
        device.clone(),
    )
    .map_err(|e| e.to_string())?
    .with_progress(args.verbose);
    let journal = super::prepare_journal(&out, args.resume, args.fresh, &args.settings(settings))?;
    println!(
        "search: {:?}, {} trials of {} epochs; journal {}",
        args.strategy,
        args.trials,
        args.epochs,
        journal.display()
    );
    let mut strategy: Box<dyn Strategy<S>> = match args.strategy {
        StrategyKind::Random => Box::new(RandomSearch::new(args.seed)),
        StrategyKind::Evolution => Box::new(
            RegularizedEvolution::new(
                RegularizedEvolutionConfig {
                    population_size: args.population,
                    sample_size: args.sample,
                },
                args.seed,
            )
            .map_err(|e| e.to_string())?,
        ),
    };
    let (mut done, mut best) = (0, f64::NEG_INFINITY);
    let observe = |t: &TrialRecord<S::Arch>| {
        done += 1;
        let status = match &t.outcome {
            Outcome::Complete(m) => {
                best = best.max(m.objective);
                format!(
                    "mIoU {:5.1}%  pixel accuracy {:5.1}%",
                    m.objective,
                    m.get("valid_pixel_accuracy").unwrap_or(f64::NAN)
                )
            }
            Outcome::Pruned(_) => "pruned".into(),
            Outcome::Failed(why) => format!("failed ({why})"),
        };
        println!(
            "[{done:>3}/{}] {status}  best {best:5.1}%  {:5.1}s  {}",
            args.trials,
            t.seconds,
            space.to_text(&t.arch)
        );
    };
    let result = Search::new(space, strategy.as_mut())
        .trials(args.trials)
        .journal(&journal)
        .seed(args.seed)
        .observer(observe)
        .run(&mut estimator)
        .map_err(|stop| {
            format!(
                "{stop} ({} trials finished, kept in {})",
                stop.partial.trials.len(),
                journal.display()
            )
        })?;
    let found = result
        .best()
        .ok_or("no trial finished: every training failed")?;
    println!(
        "\nsearch: {} trials in {:.1} min; best validation mIoU {:.1}%: {}",
        result.trials.len(),
        start.elapsed().as_secs_f64() / 60.0,
        found.objective().unwrap_or(f64::NAN),
        space.to_text(&found.arch)
    );
    if args.final_epochs == 0 {
        return Ok(());
    }
    let seeds = args.final_seeds.max(1);
    println!(
        "\nfinal comparison: each architecture trained {} epochs on the training scenes with \
         seeds {}..={}, tested on the test scenes (mean, min–max)",
        args.final_epochs,
        args.seed,
        args.seed + seeds as u64 - 1
    );
    println!(
        "| architecture | parameters | test mIoU | test pixel accuracy | text |\n|---|---|---|---|---|"
    );
    let final_config = TrainConfig {
        epochs: args.final_epochs,
        ..config
    };
    let mut build = build;
    let mut candidates = vec![("the search's best", found.arch.clone())];
    candidates.extend(references);
    for (name, arch) in candidates {
        let (mut ious, mut accuracies, mut params) = (Vec::new(), Vec::new(), 0);
        for seed in args.seed..args.seed + seeds as u64 {
            let model = seeded(device, seed, || build.build_network(&arch, device))
                .map_err(|e| format!("{name}: {e}"))?;
            params = count_params(&model);
            let config = TrainConfig {
                seed,
                ..final_config.clone()
            };
            let (model, _) = fit_segmentation(model, (train, valid), &config, device, |_, _| false)
                .map_err(|e| format!("{name}: {e}"))?;
            let score = evaluate_segmentation(
                &model.valid(),
                test,
                &train.channel_stats(),
                args.batch_size,
                device,
            )
            .map_err(|e| e.to_string())?;
            ious.push(score.mean_iou);
            accuracies.push(score.pixel_accuracy);
        }
        let summary = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                    (l.min(x), h.max(x))
                });
            if v.len() > 1 {
                format!("{mean:.1}% ({lo:.1}–{hi:.1})")
            } else {
                format!("{mean:.1}%")
            }
        };
        println!(
            "| {name} | {params} | {} | {} | `{}` |",
            summary(&ious),
            summary(&accuracies),
            text(&arch)
        );
    }
    println!("\ntotal {:.1} min", start.elapsed().as_secs_f64() / 60.0);
    Ok(())
}
