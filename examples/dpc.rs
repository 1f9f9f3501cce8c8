//! Dense Prediction Cell search (Chen et al., NeurIPS 2018), end to end, on a segmentation task
//! shipped with the library.
//!
//! **Task.** Procedural scenes of 32×32 grey pixels (`SegmentationDataset::shapes`), each with
//! one to three filled squares, disks and triangles of half-size 2 to 9, random shades and
//! noise; every pixel is labelled background or the shape it belongs to (4 classes). Inside a
//! large shape every pixel looks alike, so labelling it takes context as large as the shape,
//! at every scale: what DPC's atrous and pyramid-pooling branches are for. The training,
//! validation (the search's score) and test scenes (the final comparison) are independent
//! draws.
//!
//! **Search.** Each proposed cell is built into a DPC network (a 2-layer backbone with output
//! stride 4, the cell, a 1×1 classifier and bilinear upsampling), trained from scratch for a
//! few epochs and scored by its validation mIoU. The paper ran random search with a proxy
//! task; `--strategy evolution` (the default) runs regularized evolution. The space is the
//! paper's (branches reading the backbone or an earlier branch; 1×1 convolution, 3×3 atrous
//! separable convolution, pyramid pooling) with rates and grids scaled to the 8×8 feature map
//! (`--rates`, `--grids`; the paper's rates, up to 21, fit its 65×65 maps).
//!
//! **Answer.** The best cell is trained again for `--final-epochs` and tested on the test
//! scenes, beside three cells trained the same way: a single 1×1 convolution (no context), a
//! DeepLabv3-style ASPP (1×1, atrous rates 1, 3 and 4, image pooling) and the cell the paper
//! found on Cityscapes.
//!
//! ```text
//! cargo run --release --example dpc                      # a few minutes on 2 cores
//! cargo run --release --example dpc -- --strategy random --trials 24
//! cargo run --release --example dpc -- --resume          # continue a killed search
//! cargo run --release --example dpc -- --fresh           # start over an earlier one
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::segment::SegmentationEstimator;
use nas::space::dpc::{DpcArch, DpcBranch, DpcOp, DpcSpace, TOP1_CITYSCAPES};
use nas::space::{SearchSpace, TextFormat};
use nas::strategy::search::TrialRecord;
use nas::strategy::{
    Outcome, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, Search, Strategy,
};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::multi_net::DpcNetConfig;
use nas::supernet::network::{count_params, seeded};
use nas::supernet::segment::{
    SegmentationDataset, ShapesConfig, evaluate_segmentation, fit_segmentation,
};
use nas::supernet::train::TrainConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "Dense Prediction Cell search on procedural shape scenes, scored by mIoU")]
struct Args {
    /// Cells to train and score.
    #[arg(long, default_value_t = 16)]
    trials: usize,
    /// `evolution` (regularized evolution) or `random` (the paper's random search).
    #[arg(long, default_value = "evolution")]
    strategy: StrategyKind,
    /// Regularized evolution's population (its first cells are random).
    #[arg(long, default_value_t = 8)]
    population: usize,
    /// Regularized evolution's tournament size.
    #[arg(long, default_value_t = 3)]
    sample: usize,
    /// Branches of a cell (the paper's cells have 5).
    #[arg(long, default_value_t = 3)]
    branches: usize,
    /// Atrous rates of the space (each of r_h, r_w).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6")]
    rates: Vec<u32>,
    /// Pyramid pooling grids of the space (each of g_h, g_w).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    grids: Vec<u32>,
    /// Training scenes.
    #[arg(long, default_value_t = 1000)]
    train: usize,
    /// Validation scenes (the search's score).
    #[arg(long, default_value_t = 300)]
    valid: usize,
    /// Test scenes (the final comparison).
    #[arg(long, default_value_t = 300)]
    test: usize,
    /// Channels of the backbone, of every branch and of the cell's output.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Backbone layers (3×3 convolution, batch norm, ReLU; the first two with stride 2). Two
    /// see 7×7 pixels, less than most shapes, so the cell must gather the context; with more,
    /// the backbone does and every cell scores alike.
    #[arg(long, default_value_t = 2)]
    backbone_layers: usize,
    /// Training epochs of each searched cell.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Training epochs of the final comparison (0: skip it).
    #[arg(long, default_value_t = 12)]
    final_epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Initial learning rate (SGD, Nesterov momentum 0.9, cosine to 0).
    #[arg(long, default_value_t = 0.05)]
    learning_rate: f64,
    /// Seed of the data, the search and every training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend: ndarray, flex, wgpu or cuda (default: $NAS_BACKEND, else the CPU backend).
    #[arg(long)]
    backend: Option<String>,
    /// Directory of the journal.
    #[arg(long, default_value = "runs/dpc")]
    out: PathBuf,
    /// Resume the search recorded in `<out>/trials.jsonl`: finished trials are replayed.
    #[arg(long, conflicts_with = "fresh")]
    resume: bool,
    /// Start over an existing journal.
    #[arg(long)]
    fresh: bool,
    /// Print every training epoch of the search.
    #[arg(long)]
    verbose: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum StrategyKind {
    Evolution,
    Random,
}

/// The training, validation and test scenes: three independent draws of shapes.
fn scenes(args: &Args) -> Result<[SegmentationDataset; 3], String> {
    let make = |images: usize, salt: u64| {
        SegmentationDataset::shapes(&ShapesConfig {
            images,
            seed: args.seed.wrapping_mul(3).wrapping_add(salt),
            ..ShapesConfig::default()
        })
        .map_err(|e| e.to_string())
    };
    Ok([
        make(args.train, 0)?,
        make(args.valid, 1)?,
        make(args.test, 2)?,
    ])
}

/// A cell as text (any branch count and operation, unlike a space's `to_text`).
fn cell_text(cell: &DpcArch) -> String {
    cell.branches
        .iter()
        .map(|b| format!("{}<{}", b.op.name(), b.input))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reference cells of the final comparison.
fn references() -> Result<Vec<(&'static str, DpcArch)>, String> {
    let from_backbone = |ops: &[DpcOp]| DpcArch {
        branches: ops.iter().map(|&op| DpcBranch { input: 0, op }).collect(),
    };
    let atrous = |r| DpcOp::SepAtrous3x3 {
        rate_h: r,
        rate_w: r,
    };
    let cityscapes = DpcSpace::default()
        .parse(TOP1_CITYSCAPES)
        .map_err(|e| e.to_string())?;
    Ok(vec![
        ("1x1 convolution only", from_backbone(&[DpcOp::Conv1x1])),
        (
            "ASPP (DeepLabv3, rates scaled)",
            from_backbone(&[
                DpcOp::Conv1x1,
                atrous(1),
                atrous(3),
                atrous(4),
                DpcOp::Spp {
                    grid_h: 1,
                    grid_w: 1,
                },
            ]),
        ),
        ("the paper's Cityscapes cell", cityscapes),
    ])
}

struct Dpc(Args);

impl BackendTask for Dpc {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let start = Instant::now();
        let [train, valid, test] = scenes(&args)?;
        let pixels = train.class_pixels();
        let background = 100.0 * pixels[0] as f64 / pixels.iter().sum::<u64>().max(1) as f64;
        println!(
            "scenes: {} training, {} validation, {} test, {:?} pixels, {} classes ({background:.1}% \
             of training pixels are background)",
            train.len(),
            valid.len(),
            test.len(),
            train.shape(),
            train.num_classes()
        );
        let space =
            DpcSpace::new(args.branches, &args.rates, &args.grids).map_err(|e| e.to_string())?;
        let net = DpcNetConfig {
            in_channels: train.shape()[0],
            num_classes: train.num_classes(),
            backbone_channels: args.channels,
            backbone_layers: args.backbone_layers,
            backbone_strides: 2,
            branch_channels: args.channels,
        };
        let config = TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.learning_rate,
            seed: args.seed,
            ..TrainConfig::default()
        };
        let mut estimator = SegmentationEstimator::<B, _, _>::new(
            net,
            train.clone(),
            valid.clone(),
            config.clone(),
            device.clone(),
        )
        .map_err(|e| e.to_string())?
        .with_progress(args.verbose);
        let settings = format!(
            "{:?}; space {} branches, rates {:?}, grids {:?}; {} / {} scenes; {} channels; \
             {} epochs, batch {}, lr {}; seed {}; P = {}, S = {}",
            args.strategy,
            args.branches,
            args.rates,
            args.grids,
            args.train,
            args.valid,
            args.channels,
            args.epochs,
            args.batch_size,
            args.learning_rate,
            args.seed,
            args.population,
            args.sample
        );
        let journal = common::prepare_journal(&args.out, args.resume, args.fresh, &settings)?;
        println!(
            "space: {} ({} cells); search: {:?}, {} trials of {} epochs; journal {}",
            space.name(),
            nas::space::Enumerable::size(&space),
            args.strategy,
            args.trials,
            args.epochs,
            journal.display()
        );
        let mut strategy: Box<dyn Strategy<DpcSpace>> = match args.strategy {
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
        let observe = |t: &TrialRecord<DpcArch>| {
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
        let result = Search::new(&space, strategy.as_mut())
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

        println!(
            "\nfinal comparison: each cell trained {} epochs on the training scenes, tested on the \
             test scenes",
            args.final_epochs
        );
        println!(
            "| cell | parameters | test mIoU | test pixel accuracy | architecture |\n|---|---|---|---|---|"
        );
        let final_config = TrainConfig {
            epochs: args.final_epochs,
            ..config
        };
        let mut cells = vec![("the search's best", found.arch.clone())];
        cells.extend(references()?);
        for (name, cell) in cells {
            let model = seeded(&device, args.seed, || net.init::<B>(&cell, &device))
                .map_err(|e| e.to_string())?;
            let params = count_params(&model);
            let (model, _) =
                fit_segmentation(model, (&train, &valid), &final_config, &device, |_, _| {
                    false
                })
                .map_err(|e| format!("{name}: {e}"))?;
            let score = evaluate_segmentation(
                &nas::supernet::burn::module::AutodiffModule::valid(&model),
                &test,
                &train.channel_stats(),
                args.batch_size,
                &device,
            )
            .map_err(|e| e.to_string())?;
            println!(
                "| {name} | {params} | {:.1}% | {:.1}% | `{}` |",
                score.mean_iou,
                score.pixel_accuracy,
                cell_text(&cell)
            );
        }
        println!("\ntotal {:.1} min", start.elapsed().as_secs_f64() / 60.0);
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.backend.clone();
    common::run_to_exit(backend.as_deref(), Dpc(args))
}
