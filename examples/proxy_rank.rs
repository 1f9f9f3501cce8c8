//! How well does a training proxy rank NAS-Bench-201 cells? Trains a seeded sample of distinct
//! cells on an embedded dataset (the proxy the quickstart searches with, or any other setting
//! given by the flags) and compares the proxy's accuracies with the table's 200-epoch CIFAR-10
//! accuracies: Spearman ρ, Kendall τ, and the table rank of the proxy's best cells.
//!
//! The table is read only here, to measure the proxy; the quickstart's search never reads it.
//!
//! ```text
//! cargo run --release --example proxy_rank -- --sample 60
//! cargo run --release --example proxy_rank -- --dataset digits --size 8 --channels 8 --epochs 3
//! cargo run --release --example proxy_rank -- --zero-cost --sample 1000 --cells 2
//! cargo run --release --example proxy_rank -- --zero-cost --proxy synflow --channels 16 --cells 5 --input 3,32,32 --sample 1000
//! cargo run --release --example proxy_rank -- --archs cells.txt --rank-by train-loss --cells 2
//! ```
//!
//! `--archs FILE` measures listed cells (e.g. a search's best) instead of a sample, and
//! `--rank-by train-loss` scores by the last epoch's training loss (the quickstart's ranking).
//!
//! `--zero-cost` scores the untrained networks instead (`nas::estimate::zero_cost`): the
//! live-parameter count on one batch of `--batch` images, or `--proxy synflow` (data-free;
//! `--input 3,32,32` scores the benchmark's own input shape): milliseconds per cell.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::{kendall_tau, spearman_rho};
use nas::estimate::tabular::Nb201Table;
use nas::estimate::train::TrainEstimator;
use nas::estimate::zero_cost::{ZeroCostEstimator, ZeroCostProxy};
use nas::estimate::{Budget, Estimator};
use nas::space::TextFormat;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::data::ImageDataset;
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::train::TrainConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "Rank correlation of a training proxy with NAS-Bench-201's CIFAR-10 column")]
struct Args {
    /// Distinct cells to train (a seeded sample of the space).
    #[arg(long, default_value_t = 60)]
    sample: usize,
    /// Embedded dataset: `fashion` (Fashion-MNIST subset, 28×28) or `digits` (8×8).
    #[arg(long, default_value = "fashion")]
    dataset: String,
    /// Resize the images to SIZE×SIZE (0: keep).
    #[arg(long, default_value_t = 16)]
    size: usize,
    /// Training images (a seeded subset; 0: all). The validation set is held out from the
    /// embedded training set.
    #[arg(long, default_value_t = 3000)]
    train: usize,
    /// Validation images.
    #[arg(long, default_value_t = 1000)]
    valid: usize,
    /// Channels of the first stage.
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Cells per stage.
    #[arg(long, default_value_t = 1)]
    cells: usize,
    /// Training epochs per cell.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Peak learning rate (cosine schedule).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Seed of the sample and of every training run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// NAS-Bench-201 table (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv).
    #[arg(long)]
    nb201: Option<PathBuf>,
    /// Backend: ndarray, flex, wgpu or cuda (default: $NAS_BACKEND, else the CPU backend).
    #[arg(long)]
    backend: Option<String>,
    /// Score the untrained networks with a zero-cost proxy (`--proxy`) instead of training
    /// them.
    #[arg(long)]
    zero_cost: bool,
    /// The zero-cost proxy of `--zero-cost`: `live-parameters`, `snip`, `grad-norm` (on one
    /// batch of `--batch` images) or `synflow` (data-free: one all-ones image of the data's
    /// shape, or of `--input C,H,W`).
    #[arg(long, default_value = "live-parameters")]
    proxy: Proxy,
    /// Score the zero-cost proxy on inputs of this shape (channels,height,width; e.g. 3,32,32
    /// for the NAS-Bench-201 network on CIFAR-10) instead of the data's: only for `synflow`,
    /// which sees no data.
    #[arg(long, value_delimiter = ',')]
    input: Option<Vec<usize>>,
    /// Measure these cells (a file of NAS-Bench-201 cells in the benchmark's notation, one per
    /// line; `#` starts a comment) instead of a random sample: e.g. the best cells of a search,
    /// to see whether the proxy ranks the good ones right.
    #[arg(long)]
    archs: Option<PathBuf>,
    /// What the trained proxy reports as its score: `train-loss` (the last epoch's training
    /// loss, lower is better; the quickstart's ranking) or `valid-accuracy`.
    #[arg(long, default_value = "valid-accuracy")]
    rank_by: RankBy,
}

/// A zero-cost proxy.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    /// Parameters on a path from input to output.
    LiveParameters,
    /// Synflow (data-free).
    Synflow,
    /// SNIP, on one batch of `--batch` images.
    Snip,
    /// Grad-norm, on one batch of `--batch` images.
    GradNorm,
    /// Jacobian covariance, on one batch of `--batch` images.
    JacobCov,
}

/// The score of a trained cell.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum RankBy {
    /// Minus the training loss of the last epoch.
    TrainLoss,
    /// The validation accuracy (%).
    ValidAccuracy,
}

/// The cells listed in `path`, one per line.
fn read_archs(path: &std::path::Path) -> Result<Vec<Nb201Arch>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let space = Nb201Space::default();
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            space
                .parse(line)
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The proxy's data: the embedded dataset, resized, split into training and validation.
fn proxy_data(args: &Args) -> Result<(ImageDataset, ImageDataset), String> {
    let data = match args.dataset.as_str() {
        "fashion" => ImageDataset::fashion_mnist_embedded(true),
        "digits" => ImageDataset::digits(),
        other => {
            return Err(format!(
                "unknown dataset `{other}`: expected fashion or digits"
            ));
        }
    };
    let (valid, train) = common::resize_and_hold_out(data, args.size, args.valid, args.seed)?;
    let train = if args.train > 0 && args.train < train.len() {
        train.sample(args.train, args.seed)
    } else {
        train
    };
    Ok((train, valid))
}

struct Measure(Args, Vec<Nb201Arch>);

impl BackendTask for Measure {
    type Output = Result<Vec<f64>, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let Measure(args, cells) = self;
        let (train, valid) = proxy_data(&args)?;
        // Synflow sees no data: `--input` scores it on inputs of another shape (blank images).
        let train = match &args.input {
            Some(shape) if args.zero_cost => {
                if args.proxy != Proxy::Synflow {
                    return Err("--input is for --proxy synflow, which sees no data".into());
                }
                let &[c, h, w] = shape.as_slice() else {
                    return Err(format!("--input takes C,H,W (three sizes), got {shape:?}"));
                };
                let shape = [c, h, w];
                let n = args.batch.max(1);
                ImageDataset::new(
                    "blank",
                    shape,
                    10,
                    vec![0.0; n * shape.iter().product::<usize>()],
                    vec![0; n],
                )
                .map_err(|e| e.to_string())?
            }
            _ => train,
        };
        let [c, h, w] = train.shape();
        let net = Nb201NetConfig {
            channels: args.channels,
            cells_per_stage: args.cells,
            in_channels: c,
            num_classes: 10,
        };
        let space = Nb201Space::default();
        let start = Instant::now();
        if args.zero_cost {
            let (proxy, what) = match args.proxy {
                Proxy::LiveParameters => (
                    ZeroCostProxy::LiveParameters,
                    format!("live parameters, one batch of {} images", args.batch),
                ),
                Proxy::Synflow => (ZeroCostProxy::Synflow, "synflow, data-free".to_string()),
                Proxy::Snip => (
                    ZeroCostProxy::Snip,
                    format!("snip, one batch of {} images", args.batch),
                ),
                Proxy::GradNorm => (
                    ZeroCostProxy::GradNorm,
                    format!("grad-norm, one batch of {} images", args.batch),
                ),
                Proxy::JacobCov => (
                    ZeroCostProxy::JacobCov,
                    format!("jacob_cov, one batch of {} images", args.batch),
                ),
            };
            println!(
                "zero-cost proxy: {what} of the untrained network, C = {}, N = {}, {}×{}×{} input",
                args.channels, args.cells, c, h, w
            );
            if proxy == ZeroCostProxy::Synflow {
                // Synflow's sums of products of absolute weights overflow 32-bit floats in the
                // benchmark's network (C = 16, N = 5): the reference code computes it in double
                // precision, and so does this, on the CPU.
                type F64 = nas::supernet::burn::backend::Autodiff<
                    nas::supernet::burn::backend::NdArray<f64>,
                >;
                let mut estimator = ZeroCostEstimator::<F64, _>::new(
                    net,
                    &train,
                    args.batch,
                    args.seed,
                    Default::default(),
                )
                .map_err(|e| e.to_string())?
                .with_proxy(proxy);
                let scores = cells
                    .iter()
                    .map(|cell| {
                        estimator
                            .estimate(cell, &Budget::full())
                            .map(|m| m.objective)
                            .map_err(|e| format!("{}: {e}", space.to_text(cell)))
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                println!(
                    "{} cells scored in {:.1} s ({:.1} ms per cell; 64-bit floats on the CPU)",
                    cells.len(),
                    start.elapsed().as_secs_f64(),
                    1000.0 * start.elapsed().as_secs_f64() / cells.len().max(1) as f64
                );
                return Ok(scores);
            }
            let mut estimator =
                ZeroCostEstimator::<B, _>::new(net, &train, args.batch, args.seed, device)
                    .map_err(|e| e.to_string())?
                    .with_proxy(proxy);
            let scores = cells
                .iter()
                .map(|cell| {
                    estimator
                        .estimate(cell, &Budget::full())
                        .map(|m| m.objective)
                        .map_err(|e| format!("{}: {e}", space.to_text(cell)))
                })
                .collect::<Result<Vec<f64>, String>>()?;
            println!(
                "{} cells scored in {:.1} s ({:.1} ms per cell)",
                cells.len(),
                start.elapsed().as_secs_f64(),
                1000.0 * start.elapsed().as_secs_f64() / cells.len().max(1) as f64
            );
            return Ok(scores);
        }
        println!(
            "proxy: {} {}×{}×{}, {} training / {} validation images; C = {}, N = {}; {} epochs, lr {}, batch {}",
            args.dataset,
            c,
            h,
            w,
            train.len(),
            valid.len(),
            args.channels,
            args.cells,
            args.epochs,
            args.lr,
            args.batch
        );
        let config = TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch,
            learning_rate: args.lr,
            seed: args.seed,
            ..TrainConfig::default()
        };
        let mut estimator = TrainEstimator::<B, _, _>::new(net, train, valid, config, device)
            .map_err(|e| e.to_string())?;
        let mut scores = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let m = estimator
                .estimate(cell, &Budget::full())
                .map_err(|e| e.to_string())?;
            let loss = m.values.get("train_loss").copied().unwrap_or(f64::NAN);
            println!(
                "[{:>3}/{}] {:5.1}%  train loss {loss:.4}  {:6.1}s  {}",
                i + 1,
                cells.len(),
                m.objective,
                start.elapsed().as_secs_f64(),
                space.to_text(cell)
            );
            scores.push(match args.rank_by {
                RankBy::TrainLoss => -loss,
                RankBy::ValidAccuracy => m.objective,
            });
        }
        Ok(scores)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let table = match Nb201Table::open(common::nb201_path(args.nb201.clone())) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The listed cells, or a seeded sample of distinct cells (by canonical form: isomorphic
    // cells count once).
    let space = Nb201Space::default();
    let cells = match &args.archs {
        Some(path) => match read_archs(path) {
            Ok(listed) => listed,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => common::distinct_nb201_cells(args.sample, args.seed),
    };
    let proxy = match common::run_task(
        args.backend.clone().as_deref(),
        Measure(args, cells.clone()),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The table's CIFAR-10 accuracy and rank of every cell (NaN and 0 for a cell it lacks).
    let looked_up: Vec<(f64, usize)> = cells
        .iter()
        .map(|c| common::cifar10_rank(&table, c).unwrap_or((f64::NAN, 0)))
        .collect();
    let truth: Vec<f64> = looked_up.iter().map(|&(acc, _)| acc).collect();
    let fmt = |v: Option<f64>| v.map_or("undefined".to_string(), |v| format!("{v:.3}"));
    println!(
        "\n{} cells: Spearman ρ {}, Kendall τ {} (proxy accuracy against NAS-Bench-201 CIFAR-10, 200 epochs)",
        cells.len(),
        fmt(spearman_rho(&proxy, &truth)),
        fmt(kendall_tau(&proxy, &truth))
    );
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by(|&a, &b| proxy[b].total_cmp(&proxy[a]));
    if let Some(best) = (0..cells.len())
        .filter(|&i| !truth[i].is_nan())
        .max_by(|&a, &b| truth[a].total_cmp(&truth[b]))
    {
        println!(
            "best cell of the sample by the table: {:.2}% (rank {} of 15625)",
            looked_up[best].0, looked_up[best].1
        );
    }
    let top1 = (0..cells.len())
        .filter(|&i| (1..=156).contains(&looked_up[i].1))
        .count();
    let k = (cells.len() / 20).max(1);
    let in_top_k = order
        .iter()
        .take(k)
        .filter(|&&i| (1..=156).contains(&looked_up[i].1))
        .count();
    println!(
        "top-1 % cells (table rank ≤ 156): {top1} of the {} sampled, {in_top_k} of the proxy's best {k}",
        cells.len()
    );
    println!("the proxy's top 5:");
    for &i in order.iter().take(5) {
        println!(
            "  proxy {:9.1}  CIFAR-10 {:.2}% (rank {:>5})  {}",
            proxy[i],
            looked_up[i].0,
            looked_up[i].1,
            space.to_text(&cells[i])
        );
    }
    ExitCode::SUCCESS
}
