//! Helpers shared by the examples (a module, not an example: Cargo only builds subdirectories
//! of `examples/` that hold a `main.rs`). Each example uses some of them.
#![allow(dead_code)]

pub mod segmentation;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::estimate::train::TrainEstimator;
use nas::estimate::weight_sharing::{WeightSharingConfig, WeightSharingEstimator};
use nas::space::ToGraph;
use nas::space::darts::DartsSpace;
use nas::space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas::strategy::report::Report;
use nas::supernet::backend::{BackendKind, BackendTask, run_on};
use nas::supernet::burn::module::AutodiffModule;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::burn::tensor::{Device, Tensor};
use nas::supernet::chain_net::ChainNetConfig;
use nas::supernet::darts_net::DartsNetConfig;
use nas::supernet::darts_search::DerivedArch;
use nas::supernet::darts_search::supernet::DartsSupernetConfig;
use nas::supernet::data::{ImageDataset, Normalize};
use nas::supernet::driver::{Driver, EpochSolver};
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::network::seeded;
use nas::supernet::network_config::BuildNetwork;
use nas::supernet::oneshot::train::{StepInfo, SupernetEpoch, SupernetTraining};
use nas::supernet::persist::save_network;
use nas::supernet::train::{TrainConfig, TrainObserver, TrainReport, fit_with_progress};

/// Runs `task` on the backend named by `backend` (else `$NAS_BACKEND`, else the CPU), printing
/// it. An unknown or unavailable backend exits with code 2, a failed task with code 1, each
/// with its message on standard error.
pub fn run_task<T, O>(backend: Option<&str>, task: T) -> Result<O, ExitCode>
where
    T: BackendTask<Output = Result<O, String>>,
{
    let kind = match backend
        .map(str::parse)
        .unwrap_or_else(BackendKind::from_env)
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(2));
        }
    };
    println!("backend: {kind}");
    match run_on(kind, task) {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs `task` as [`run_task`] does, for an example whose task prints all it has to say: the
/// exit code of the example (0 when the task succeeded).
pub fn run_to_exit<T>(backend: Option<&str>, task: T) -> ExitCode
where
    T: BackendTask<Output = Result<(), String>>,
{
    match run_task(backend, task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// The seed, backend and checkpoint flags of the examples that train epoch by epoch.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Seed of everything.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Backend: ndarray, flex, wgpu or cuda (default: $NAS_BACKEND, else the CPU backend).
    #[arg(long)]
    pub backend: Option<String>,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
}

/// The checkpoint flags of the examples that train epoch by epoch.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Continue from the checkpoint when there is one: a killed run resumes at its last
    /// checkpointed epoch and ends as if never interrupted.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Overwrite an existing checkpoint (by default a run refuses to start over one).
    #[arg(long)]
    pub fresh: bool,
    /// Checkpoint file (default: under runs/<example>/).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write the checkpoint every N epochs (and at the end).
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,
}

impl CheckpointArgs {
    /// The checkpoint file: `--checkpoint`, else `default`.
    pub fn path(&self, default: impl Into<PathBuf>) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| default.into())
    }

    /// A driver for `solver` that checkpoints to [`CheckpointArgs::path`] as the flags say,
    /// and says where.
    pub fn driver<'s, S: EpochSolver>(
        &self,
        solver: &'s mut S,
        default: impl Into<PathBuf>,
    ) -> Driver<'s, S> {
        let path = self.path(default);
        println!(
            "checkpoint: {} (every {} epoch(s){})",
            path.display(),
            self.checkpoint_every,
            if self.resume {
                "; resuming when present"
            } else {
                ""
            }
        );
        Driver::new(solver)
            .progress("epochs")
            .checkpoint(path, self.checkpoint_every)
            .resume(self.resume)
            .fresh(self.fresh)
    }

    /// Runs `solver` to its last epoch through [`CheckpointArgs::driver`], calling `observe`
    /// after every epoch; a run that resumed from the checkpoint prints
    /// `resumed after <epoch_name> N`.
    pub fn run<S: EpochSolver>(
        &self,
        solver: &mut S,
        default: impl Into<PathBuf>,
        epoch_name: &str,
        observe: impl FnMut(usize, &S::Report),
    ) -> Result<(), String> {
        let summary = self
            .driver(solver, default)
            .observer(observe)
            .run()
            .map_err(|e| e.to_string())?;
        if let Some(at) = summary.resumed_at {
            println!("resumed after {epoch_name} {at}");
        }
        Ok(())
    }
}

/// Trains a one-shot supernet (`training`) to its last epoch with [`CheckpointArgs::run`],
/// printing after every epoch `supernet epoch N/M: loss L, <accuracy> A% (Ts)`, where
/// `accuracy` names what the training accuracy measures.
pub fn train_supernet<S>(
    checkpoint: &CheckpointArgs,
    training: &mut S,
    default: impl Into<PathBuf>,
    accuracy: &str,
) -> Result<(), String>
where
    S: EpochSolver<Report = SupernetEpoch>,
{
    let epochs = training.total_epochs();
    checkpoint.run(
        training,
        default,
        "supernet epoch",
        |epoch: usize, e: &SupernetEpoch| {
            println!(
                "supernet epoch {:>2}/{epochs}: loss {:.3}, {accuracy} {:5.1}% ({:.1}s)",
                epoch + 1,
                e.train_loss,
                e.train_accuracy,
                e.seconds
            );
        },
    )
}

/// Training for `epochs` epochs in batches of `batch_size` at `learning_rate`, seeded by
/// `seed`; every other setting is the library's default.
pub fn train_config(
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    seed: u64,
) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        learning_rate,
        seed,
        ..TrainConfig::default()
    }
}

/// The chain network (of the SPOS and ProxylessNAS spaces) for the embedded digits: one input
/// channel, 10 classes, width multiplier `width`, and a stride-1 stem so that the 8×8 images
/// keep their resolution.
pub fn digits_chain_net(width: f64) -> ChainNetConfig {
    ChainNetConfig::new(1, 10)
        .with_width(width)
        .with_stem_stride(1)
}

/// The chain network (of the SPOS and ProxylessNAS spaces) for images like those of `data`:
/// its channels and classes, width multiplier `width`, and a stem of stride 1 for images of
/// at most 8×8 (the digits keep their resolution), else of stride 2.
pub fn chain_net_for(data: &ImageDataset, width: f64) -> ChainNetConfig {
    let [channels, side, _] = data.shape();
    ChainNetConfig::new(channels, data.num_classes())
        .with_width(width)
        .with_stem_stride(if side <= 8 { 1 } else { 2 })
}

/// The proxy task of the one-shot examples: training and validation images, and the training
/// images' channel statistics, which normalize both.
pub struct Digits {
    pub train: ImageDataset,
    pub valid: ImageDataset,
    pub normalize: Normalize,
}

impl Digits {
    /// The embedded digits, split as [`digits`] does by `seed`.
    pub fn new(seed: u64) -> Result<Self, String> {
        let (train, valid) = digits(seed)?;
        Ok(Self::from_split(train, valid))
    }

    /// The data an example's `--data` names ([`load`]: the embedded Fashion-MNIST subset at
    /// 16×16 by default, `digits` for the 8×8 digits split 70 / 30): `samples` training
    /// images drawn by `seed` (all when `None`) and, except for the digits, `valid` images of
    /// the training pool held out for validation (the test images stay untouched).
    pub fn load(
        data: Option<&Path>,
        samples: Option<usize>,
        valid: usize,
        seed: u64,
    ) -> Result<Self, String> {
        if data == Some(Path::new("digits")) {
            let (train, valid) = digits(seed)?;
            return Ok(Self::from_split(subset(&train, samples, seed), valid));
        }
        let (pool, _test) = load(data, seed)?;
        let (valid, train) = resize_and_hold_out(pool, 0, valid, seed)?;
        Ok(Self::from_split(subset(&train, samples, seed), valid))
    }

    /// `train` and `valid`, normalized by `train`'s channel statistics.
    pub fn from_split(train: ImageDataset, valid: ImageDataset) -> Self {
        let normalize = train.channel_stats();
        Self {
            train,
            valid,
            normalize,
        }
    }

    /// Training of `supernet` on the training images, as `config` says, with each step's
    /// logits given by `forward`.
    pub fn supernet_training<'d, B, M, F>(
        &'d self,
        supernet: M,
        config: &TrainConfig,
        device: &Device<B>,
        forward: F,
    ) -> Result<SupernetTraining<'d, B, M, F>, String>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        F: FnMut(&M, Tensor<B, 4>, StepInfo) -> Tensor<B, 2>,
    {
        SupernetTraining::new(
            supernet,
            &self.train,
            &self.normalize,
            config,
            device,
            forward,
        )
        .map_err(|e| e.to_string())
    }

    /// Scores architectures by their validation accuracy with the weights they inherit from
    /// `supernet`, each path's batch-norm statistics recomputed on training batches first.
    pub fn weight_sharing<B: AutodiffBackend, N>(
        &self,
        supernet: N,
        config: WeightSharingConfig,
        device: &Device<B>,
    ) -> Result<WeightSharingEstimator<B, N>, String> {
        let (train, valid) = (&self.train, &self.valid);
        WeightSharingEstimator::new(supernet, train, valid, &self.normalize, config, device)
            .map_err(|e| e.to_string())
    }

    /// Scores architectures by their validation accuracy after training the networks `build`
    /// builds from scratch on the training images, as `config` says. Name the backend, as in
    /// `digits.scratch_estimator::<B, _, _>(...)` (the device does not tell it).
    pub fn scratch_estimator<B, A, F>(
        &self,
        build: F,
        config: TrainConfig,
        device: &Device<B>,
    ) -> Result<TrainEstimator<B, F::Network, F>, String>
    where
        B: AutodiffBackend,
        F: BuildNetwork<A, B>,
    {
        let (train, valid) = (self.train.clone(), self.valid.clone());
        TrainEstimator::new(build, train, valid, config, device.clone()).map_err(|e| e.to_string())
    }
}

/// The UCI digits embedded in the library (8×8 images, 10 classes), split 70 / 30 into
/// training and validation images.
pub fn digits(seed: u64) -> Result<(ImageDataset, ImageDataset), String> {
    ImageDataset::digits()
        .split(0.7, seed)
        .map_err(|e| e.to_string())
}

/// `data` resized to `size`×`size` (kept as is when `size` is 0), split into `valid` validation
/// images drawn by `seed` and the rest (the training pool).
pub fn resize_and_hold_out(
    data: ImageDataset,
    size: usize,
    valid: usize,
    seed: u64,
) -> Result<(ImageDataset, ImageDataset), String> {
    let data = if size > 0 {
        data.resize(size, size).map_err(|e| e.to_string())?
    } else {
        data
    };
    data.split(valid as f64 / data.len() as f64, seed)
        .map_err(|e| e.to_string())
}

/// `samples` images of `data` drawn by `seed`, or all of them when `samples` is `None`.
pub fn subset(data: &ImageDataset, samples: Option<usize>, seed: u64) -> ImageDataset {
    match samples {
        Some(n) => data.sample(n, seed),
        None => data.clone(),
    }
}

/// The quickstart's proxy task for NAS-Bench-201 cells, as flags: the embedded Fashion-MNIST
/// subset resized to `size`×`size`, `valid` images held out of it, `train` training images
/// drawn from the rest, and the network's initial channels and cells per stage.
#[derive(clap::Args, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProxyTask {
    /// Image side.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Training images.
    #[arg(long, default_value_t = 3000)]
    pub train: usize,
    /// Validation images (held out of the training pool).
    #[arg(long, default_value_t = 1000)]
    pub valid: usize,
    /// Initial channels.
    #[arg(long, default_value_t = 8)]
    pub channels: usize,
    /// Cells per stage.
    #[arg(long, default_value_t = 2)]
    pub cells: usize,
}

impl ProxyTask {
    /// The training and validation images, split and drawn by `seed`.
    pub fn data(&self, seed: u64) -> Result<(ImageDataset, ImageDataset), String> {
        let data = ImageDataset::fashion_mnist_embedded(true);
        let (valid, pool) = resize_and_hold_out(data, self.size, self.valid, seed)?;
        let train = subset(&pool, Some(self.train.min(pool.len())), seed);
        Ok((train, valid))
    }

    /// The NAS-Bench-201 network of the task.
    pub fn net(&self) -> Nb201NetConfig {
        Nb201NetConfig {
            channels: self.channels,
            cells_per_stage: self.cells,
            in_channels: 1,
            num_classes: 10,
        }
    }

    /// The task in words.
    pub fn describe(&self) -> String {
        format!(
            "Fashion-MNIST {}×{} (C = {}, N = {}, {} training and {} validation images)",
            self.size, self.size, self.channels, self.cells, self.train, self.valid
        )
    }
}

/// Image side of the embedded Fashion-MNIST subset in the search examples (resized from 28).
pub const EMBEDDED_SIDE: usize = 16;

/// Training and test images named by an example's `--data`: absent or `fashion`, the
/// Fashion-MNIST subset embedded in the library resized to 16×16 (9,000 training and 1,000
/// test images, no download); `digits`, the embedded 8×8 UCI digits split 70 / 30 (easy: most architectures
/// score 97–99 %, so they separate little); else a directory of Fashion-MNIST IDX files or
/// CIFAR-10 binary batches.
pub fn load(dir: Option<&Path>, seed: u64) -> Result<(ImageDataset, ImageDataset), String> {
    let dir = dir.filter(|d| *d != Path::new("fashion"));
    let Some(dir) = dir else {
        let resize = |d: ImageDataset| {
            d.resize(EMBEDDED_SIDE, EMBEDDED_SIDE)
                .map_err(|e| e.to_string())
        };
        return Ok((
            resize(ImageDataset::fashion_mnist_embedded(true))?,
            resize(ImageDataset::fashion_mnist_embedded(false))?,
        ));
    };
    if dir == Path::new("digits") {
        return digits(seed);
    }
    let fashion = ImageDataset::fashion_mnist(dir, true);
    if let Ok(train) = fashion {
        let test = ImageDataset::fashion_mnist(dir, false).map_err(|e| e.to_string())?;
        return Ok((train, test));
    }
    match ImageDataset::cifar10(dir, true) {
        Ok(train) => Ok((
            train,
            ImageDataset::cifar10(dir, false).map_err(|e| e.to_string())?,
        )),
        Err(e) => Err(format!(
            "{} holds neither Fashion-MNIST IDX files nor CIFAR-10 binary batches ({e}); \
             leave --data out for the embedded Fashion-MNIST subset, or say --data digits",
            dir.display()
        )),
    }
}

/// The NAS-Bench-201 table's path: `path`, else `$NAS_NB201_CSV`, else
/// `../shared/data/nb201/nats_bench_tss_200ep.csv`.
pub fn nb201_path(path: Option<PathBuf>) -> PathBuf {
    path.or_else(Nb201Table::path_from_env)
        .unwrap_or_else(|| PathBuf::from("../shared/data/nb201/nats_bench_tss_200ep.csv"))
}

/// The CIFAR-10 test accuracy of `arch` in `table` and its rank among all the table's cells
/// (1: the best); `None` when the table lacks the cell.
pub fn cifar10_rank(table: &Nb201Table, arch: &Nb201Arch) -> Option<(f64, usize)> {
    let acc = table.get(arch)?.accuracy(Nb201Dataset::Cifar10);
    let better = table
        .rows()
        .iter()
        .filter(|r| r.accuracy(Nb201Dataset::Cifar10) > acc)
        .count();
    Some((acc, better + 1))
}

/// How well a search's scores rank NAS-Bench-201 cells: prints the Kendall τ and Spearman ρ of
/// `scored` (cell, score; higher is better) against the table's CIFAR-10 accuracy, and the
/// table ranks of the best-scored cells. Only for reporting: the searches never read the table.
pub fn nb201_rank_check(what: &str, scored: &[(Nb201Arch, f64)], table: &Nb201Table) {
    use nas::estimate::rank::{kendall_tau, spearman_rho};
    let mut rows: Vec<(f64, f64, usize)> = scored
        .iter()
        .filter_map(|(a, s)| cifar10_rank(table, a).map(|(acc, rank)| (*s, acc, rank)))
        .collect();
    let scores: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let accs: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<String> = rows.iter().take(5).map(|r| r.2.to_string()).collect();
    let mut ranks: Vec<usize> = rows.iter().map(|r| r.2).collect();
    ranks.sort_unstable();
    println!(
        "{what}: {} cells, Kendall τ {} and Spearman ρ {} against NAS-Bench-201's CIFAR-10 accuracy; table ranks of the 5 best-scored: {} (median rank of the {} cells: {})",
        rows.len(),
        fmt(kendall_tau(&scores, &accs)),
        fmt(spearman_rho(&scores, &accs)),
        top.join(", "),
        rows.len(),
        ranks
            .get(ranks.len() / 2)
            .map_or("n/a".to_string(), |r| r.to_string()),
    );
}

/// The NAS-Bench-201 table for an example's look-up, opened before the search: `--nb201 PATH`
/// (`given`) or `$NAS_NB201_CSV` that cannot be read is an error (exit code 2: a wrong path
/// fails before the search, not after it); the default path beside the checkout may be
/// absent (`None`: the look-up is skipped).
pub fn open_nb201(given: Option<PathBuf>) -> Result<Option<Nb201Table>, ExitCode> {
    let explicit = given.is_some() || Nb201Table::path_from_env().is_some();
    match Nb201Table::open(nb201_path(given)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if explicit => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
        Err(_) => Ok(None),
    }
}

/// Looks `arch` up in the NAS-Bench-201 table (from [`open_nb201`]) and prints its accuracies,
/// CIFAR-10 rank and skip connections; `method`'s collapse in the NAS-Bench-201 paper (54.30 %
/// on CIFAR-10) is the comparison.
pub fn nb201_lookup(arch: &Nb201Arch, table: Option<&Nb201Table>, method: &str) {
    let Some(table) = table else {
        println!("NAS-Bench-201 table not found; pass --nb201 PATH to look the cell up");
        return;
    };
    let all_skip = arch.edges.iter().all(|&o| o == Nb201Op::SkipConnect);
    let skips = arch
        .edges
        .iter()
        .filter(|&&o| o == Nb201Op::SkipConnect)
        .count();
    if let (Some(row), Some((acc, rank))) = (table.get(arch), cifar10_rank(table, arch)) {
        println!(
            "NAS-Bench-201 (200 epochs): CIFAR-10 {:.2}%, CIFAR-100 {:.2}%, ImageNet16-120 {:.2}%; CIFAR-10 rank {} of {}",
            acc,
            row.accuracy(Nb201Dataset::Cifar100),
            row.accuracy(Nb201Dataset::ImageNet16_120),
            rank,
            table.rows().len()
        );
        println!(
            "skip connections: {skips} of 6 edges; {} (the paper's {method} collapses to all skip connections: 54.30%)",
            if all_skip {
                "collapsed to all skip connections"
            } else {
                "no all-skip collapse"
            }
        );
    }
}

/// The networks of the examples that search cells (darts, enas): `channels` initial channels,
/// `cells` cells (per stage for NAS-Bench-201, default 1; in all for DARTS, default 5), and the
/// input channels and classes of the data.
#[derive(Debug, Clone, Copy)]
pub struct NetShape {
    pub channels: usize,
    pub cells: Option<usize>,
    pub in_channels: usize,
    pub num_classes: usize,
}

impl NetShape {
    /// `channels` and `cells` (the flags) for images like those of `data`.
    pub fn new(channels: usize, cells: Option<usize>, data: &ImageDataset) -> Self {
        Self {
            channels,
            cells,
            in_channels: data.shape()[0],
            num_classes: data.num_classes(),
        }
    }

    /// The NAS-Bench-201 network (and supernet) of this shape.
    pub fn nb201(&self) -> Nb201NetConfig {
        Nb201NetConfig {
            channels: self.channels,
            cells_per_stage: self.cells.unwrap_or(1),
            in_channels: self.in_channels,
            num_classes: self.num_classes,
        }
    }

    /// The DARTS supernet of this shape, with `steps` intermediate nodes per cell.
    pub fn darts_supernet(&self, steps: usize) -> DartsSupernetConfig {
        DartsSupernetConfig {
            channels: self.channels,
            layers: self.cells.unwrap_or(5),
            steps,
            stem_multiplier: 3,
            in_channels: self.in_channels,
            num_classes: self.num_classes,
        }
    }

    /// The DARTS network of this shape (no auxiliary head).
    pub fn darts(&self) -> DartsNetConfig {
        DartsNetConfig {
            channels: self.channels,
            layers: self.cells.unwrap_or(5),
            stem_multiplier: 3,
            in_channels: self.in_channels,
            num_classes: self.num_classes,
            auxiliary: false,
        }
    }
}

/// The label of the final training's progress bar.
const PROGRESS: &str = "final training";

/// Trains the network of `derived` (its [`NetShape::nb201`] or [`NetShape::darts`] network,
/// parameters drawn from `config.seed`) from scratch on `data.0`, testing on `data.1` after
/// every epoch; `observe` sees each epoch. With `save`, the trained network is saved into that
/// directory ([`save_network`]: `network.json` with the architecture, the network
/// configuration, the test-accuracy curve and the training settings, and `weights.mpk`).
/// Name the backend, as in `retrain::<B>(...)`.
pub fn retrain<B: AutodiffBackend>(
    derived: &DerivedArch,
    shape: &NetShape,
    (train, test): (&ImageDataset, &ImageDataset),
    config: &TrainConfig,
    device: &Device<B>,
    observe: impl TrainObserver,
    save: Option<&Path>,
) -> Result<TrainReport, String> {
    let normalize = train.channel_stats();
    let seed = config.seed;
    let meta = |report: &TrainReport| {
        serde_json::json!({
            "test_accuracy": report.valid_accuracy,
            "train_loss": report.train_loss,
            "epoch_seconds": report.epoch_seconds,
            "training": {
                "config": config,
                "dataset": train.name(),
                "train_images": train.len(),
                "test_images": test.len(),
                "image_shape": train.shape(),
                "normalize": normalize,
            },
        })
    };
    let saved = |e: nas::supernet::SupernetError| format!("cannot save the network: {e}");
    match derived {
        DerivedArch::Nb201(arch) => {
            let net = shape.nb201();
            let model = seeded(device, seed, || net.init::<B>(arch, device));
            let model = model.map_err(|e| e.to_string())?;
            let data = (train, test);
            let (model, report) =
                fit_with_progress(PROGRESS, model, data, &normalize, config, device, observe)
                    .map_err(|e| e.to_string())?;
            if let Some(dir) = save {
                save_network(dir, model, arch, &net, meta(&report)).map_err(saved)?;
            }
            Ok(report)
        }
        DerivedArch::Darts(genotype) => {
            let net = shape.darts();
            let model = seeded(device, seed, || net.init::<B>(genotype, device));
            let model = model.map_err(|e| e.to_string())?;
            let data = (train, test);
            let (model, report) =
                fit_with_progress(PROGRESS, model, data, &normalize, config, device, observe)
                    .map_err(|e| e.to_string())?;
            if let Some(dir) = save {
                save_network(dir, model, genotype, &net, meta(&report)).map_err(saved)?;
            }
            Ok(report)
        }
    }
}

/// Adds to `report` the diagram of `derived`: the NAS-Bench-201 cell (`cell.svg`), or the
/// normal and reduction cells of a DARTS genotype (`normal_cell.svg`, `reduction_cell.svg`),
/// captioned `what` and the architecture's text.
pub fn derived_figures(
    report: &mut Report,
    derived: &DerivedArch,
    what: &str,
) -> Result<(), String> {
    match derived {
        DerivedArch::Nb201(arch) => {
            let graph = Nb201Space::default()
                .graph(arch)
                .map_err(|e| e.to_string())?;
            report
                .architecture("cell.svg", &format!("{what}: {arch}"), &graph)
                .map_err(|e| e.to_string())?;
        }
        DerivedArch::Darts(genotype) => {
            // The cell graph depends on the genotype alone, not on the space's settings.
            let space = DartsSpace::default();
            let cells = [
                (
                    "normal_cell.svg",
                    "normal cell",
                    &genotype.normal,
                    &genotype.normal_concat,
                ),
                (
                    "reduction_cell.svg",
                    "reduction cell",
                    &genotype.reduce,
                    &genotype.reduce_concat,
                ),
            ];
            for (file, cell, inputs, concat) in cells {
                let graph = space.cell_graph(inputs, concat);
                report
                    .architecture(file, &format!("{what}, {cell}"), &graph)
                    .map_err(|e| e.to_string())?;
            }
            report.paragraph(format!("{what}: {genotype}"));
        }
    }
    Ok(())
}

/// Adds to `report` the curve of the final training (`final_training.svg`: `accuracy`, e.g.
/// "test accuracy", per epoch) and a paragraph saying where the network was saved, or that the
/// final training was skipped when `curve` is `None`.
pub fn final_training_section(
    report: &mut Report,
    curve: Option<&[f64]>,
    accuracy: &str,
    saved: Option<&Path>,
) -> Result<(), String> {
    let Some(curve) = curve else {
        report.paragraph("The final network was not trained (--final-epochs 0).");
        return Ok(());
    };
    report
        .curve(
            "final_training.svg",
            &format!("final training from scratch: {accuracy} per epoch"),
            "epoch",
            &format!("{accuracy} (%)"),
            curve,
        )
        .map_err(|e| e.to_string())?;
    report.paragraph(format!(
        "Final network: {:.2}% {accuracy} after {} epochs{}.",
        curve.last().copied().unwrap_or(f64::NAN),
        curve.len(),
        saved.map_or(String::new(), |d| format!(
            "; saved in {} (load it with nas::supernet::persist::load_network)",
            d.display()
        ))
    ));
    Ok(())
}

/// Writes `report` into `dir` and prints `report: <path>`.
pub fn write_report(report: &Report, dir: &Path) -> Result<PathBuf, String> {
    let page = report
        .write(dir)
        .map_err(|e| format!("cannot write the report: {e}"))?;
    println!("report: {}", page.display());
    Ok(page)
}

/// A seeded sample of `count` distinct NAS-Bench-201 cells (by canonical form: isomorphic cells
/// count once), drawn uniformly from a generator seeded with `seed`; fewer when the space holds
/// fewer distinct cells (6,466), once 200 draws per cell asked for (at least 200,000) found no
/// more.
pub fn distinct_nb201_cells(count: usize, seed: u64) -> Vec<nas::space::nb201::Nb201Arch> {
    use nas::space::{Canonicalize, SearchSpace};
    use rand::SeedableRng;
    let space = nas::space::nb201::Nb201Space::default();
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::new();
    let mut cells = Vec::new();
    let mut draws = 0usize;
    while cells.len() < count && draws < count.max(1000).saturating_mul(200) {
        draws += 1;
        let cell = space.sample(&mut rng);
        if let Ok(canon) = space.canonical(&cell)
            && seen.insert(canon.to_string())
        {
            cells.push(cell);
        }
    }
    cells
}

/// `count` distinct architectures drawn with `sample` from a stream of `seed` of their own (so
/// the random baselines of a seed are the same whatever the search did), none equal to
/// `exclude` (the search's answer).
pub fn draw_distinct<A: PartialEq>(
    count: usize,
    exclude: &A,
    mut sample: impl FnMut(&mut rand::rngs::ChaCha8Rng) -> A,
    seed: u64,
) -> Result<Vec<A>, String> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed ^ 0x7261_6e64_6f6d);
    let mut drawn: Vec<A> = Vec::new();
    let mut attempts = 0;
    while drawn.len() < count {
        attempts += 1;
        if attempts > 100 * (count + 1) {
            return Err(format!(
                "drew only {} distinct random architectures of {count}: lower --random-baselines",
                drawn.len()
            ));
        }
        let a = sample(&mut rng);
        if &a != exclude && !drawn.contains(&a) {
            drawn.push(a);
        }
    }
    Ok(drawn)
}

/// Random architectures trained from scratch exactly as a search's derived one was: the
/// baseline a search must beat (random search at the same training cost per architecture).
pub struct RandomBaselines {
    /// Each random architecture and its final test accuracy (%).
    pub archs: Vec<(DerivedArch, f64)>,
}

impl RandomBaselines {
    /// Trains each of `archs` with [`retrain`] on `data` as `config` says, printing each
    /// result.
    pub fn train<B: AutodiffBackend>(
        archs: Vec<DerivedArch>,
        shape: &NetShape,
        data: (&ImageDataset, &ImageDataset),
        config: &TrainConfig,
        device: &Device<B>,
    ) -> Result<Self, String> {
        let count = archs.len();
        let mut trained = Vec::with_capacity(count);
        for (i, arch) in archs.into_iter().enumerate() {
            let quiet = |_: usize, _: &TrainReport| {};
            let report = retrain::<B>(&arch, shape, data, config, device, quiet, None)?;
            let acc = report.final_accuracy().unwrap_or(f64::NAN);
            println!(
                "  random baseline {}/{count}: {acc:.2}% test accuracy after {} epochs: {arch}",
                i + 1,
                config.epochs
            );
            trained.push((arch, acc));
        }
        Ok(Self { archs: trained })
    }

    /// How the derived architecture's `accuracy` compares: a sentence with the baselines'
    /// mean and range and how many the derived one beats (NAS-Bench-201 cells with their
    /// CIFAR-10 ranks in `table`).
    pub fn summary(&self, accuracy: f64, table: Option<&Nb201Table>) -> String {
        let accs: Vec<f64> = self.archs.iter().map(|(_, a)| *a).collect();
        if accs.is_empty() {
            return "no random baselines were trained (--random-baselines 0)".to_string();
        }
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        let lo = accs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = accs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let beaten = accs.iter().filter(|&&a| accuracy > a).count();
        let mut text = format!(
            "derived architecture {accuracy:.2}% against {} random ones trained the same way: mean {mean:.2}% (range {lo:.2}–{hi:.2}%); better than {beaten} of {}{}",
            accs.len(),
            accs.len(),
            if accuracy > mean {
                ", above the random mean"
            } else {
                ", NOT above the random mean"
            }
        );
        if let Some(table) = table {
            let ranks: Vec<String> = self
                .archs
                .iter()
                .filter_map(|(a, _)| match a {
                    DerivedArch::Nb201(cell) => {
                        cifar10_rank(table, cell).map(|(_, r)| r.to_string())
                    }
                    DerivedArch::Darts(_) => None,
                })
                .collect();
            if !ranks.is_empty() {
                text.push_str(&format!(
                    "; the random cells' NAS-Bench-201 CIFAR-10 ranks: {}",
                    ranks.join(", ")
                ));
            }
        }
        text
    }

    /// The rows of a report table: architecture and test accuracy.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.archs
            .iter()
            .enumerate()
            .map(|(i, (a, acc))| {
                vec![
                    format!("random {}", i + 1),
                    format!("{acc:.2}"),
                    a.to_string(),
                ]
            })
            .collect()
    }
}

/// `count` distinct random NAS-Bench-201 cells, drawn from the seed's own stream (the same
/// cells for every example that ranks cells of a seed: `oneshot`, `smash`).
pub fn distinct_nb201_archs(space: &Nb201Space, count: usize, seed: u64) -> Vec<Nb201Arch> {
    use nas::space::SearchSpace;
    use rand::SeedableRng;
    let mut rng =
        rand::rngs::ChaCha8Rng::seed_from_u64(nas::supernet::network::mix_seed(seed, 2, 0));
    let mut seen = std::collections::HashSet::new();
    let mut archs = Vec::new();
    while archs.len() < count {
        let a = space.sample(&mut rng);
        if seen.insert(a) {
            archs.push(a);
        }
    }
    archs
}

/// Scores each of `archs` with `scored` (column `label`) and trains it with `standalone`,
/// printing a row per cell, then Kendall's τ between `what` and stand-alone accuracy.
/// Returns the seconds per architecture of each side.
pub fn rank_against_standalone(
    space: &Nb201Space,
    archs: &[Nb201Arch],
    scored: &mut impl nas::estimate::Estimator<Nb201Arch>,
    standalone: &mut impl nas::estimate::Estimator<Nb201Arch>,
    label: &str,
    what: &str,
) -> Result<(f64, f64), String> {
    use nas::estimate::Budget;
    use nas::estimate::rank::kendall_tau;
    use nas::space::TextFormat;
    use std::time::Instant;
    println!(
        "\n{:>3}  {:>9}  {:>10}  architecture",
        "#", label, "stand-alone"
    );
    let (mut scores, mut alones) = (Vec::new(), Vec::new());
    let (mut score_seconds, mut alone_seconds) = (0.0, 0.0);
    for (i, arch) in archs.iter().enumerate() {
        let t = Instant::now();
        let s = scored
            .estimate(arch, &Budget::full())
            .map_err(|e| e.to_string())?;
        score_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let a = standalone
            .estimate(arch, &Budget::full())
            .map_err(|e| e.to_string())?;
        alone_seconds += t.elapsed().as_secs_f64();
        println!(
            "{:>3}  {:>8.2}%  {:>9.2}%  {}",
            i + 1,
            s.objective,
            a.objective,
            space.to_text(arch)
        );
        scores.push(s.objective);
        alones.push(a.objective);
    }
    match kendall_tau(&scores, &alones) {
        Some(tau) => println!(
            "\nKendall's tau between {what} and stand-alone accuracy over {} architectures: {tau:.3}",
            archs.len()
        ),
        None => println!(
            "\nKendall's tau is undefined (fewer than two architectures, or constant scores)"
        ),
    }
    let n = archs.len().max(1) as f64;
    Ok((score_seconds / n, alone_seconds / n))
}

/// The journal `<out>/trials.jsonl` of a search example, ready for [`Search::journal`]:
/// `resume` keeps it (the search replays its trials), `fresh` empties it (under its lock, so a
/// search still writing it stops this run instead), and neither refuses an existing one.
/// `settings` (the flags that decide the scores) are kept beside it in `settings.txt`; a
/// resumed journal written with other settings is refused.
///
/// [`Search::journal`]: nas::strategy::Search::journal
pub fn prepare_journal(
    out: &Path,
    resume: bool,
    fresh: bool,
    settings: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let journal = out.join("trials.jsonl");
    let settings_path = out.join("settings.txt");
    if journal.exists() && !resume {
        if !fresh {
            return Err(format!(
                "{} holds an earlier search: --resume to continue it, --fresh to start over",
                journal.display()
            ));
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&journal)
            .map_err(|e| format!("{}: {e}", journal.display()))?;
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
            return Err(format!(
                "{} is being written by another search: wait for it to end, or give this run \
                 another --out",
                journal.display()
            ));
        }
        file.set_len(0)
            .map_err(|e| format!("{}: {e}", journal.display()))?;
    }
    if resume
        && journal.exists()
        && let Ok(before) = std::fs::read_to_string(&settings_path)
        && before.trim() != settings.trim()
    {
        return Err(format!(
            "{} was written with other settings ({}) than this run's ({settings}): resume \
             with the same flags, or --fresh to start over",
            journal.display(),
            before.trim()
        ));
    }
    std::fs::write(&settings_path, format!("{}\n", settings.trim()))
        .map_err(|e| format!("{}: {e}", settings_path.display()))?;
    Ok(journal)
}
