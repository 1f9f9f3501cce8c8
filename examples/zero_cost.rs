//! Zero-cost proxies on NAS-Bench-201: every proxy of `nas::estimate::zero_cost` and the
//! parameter and MAC counts, on the untrained NAS-Bench-201 network (C = 16, N = 5 by
//! default) of a seeded sample of distinct cells (or all 15,625 with `--sample 15625`),
//! against the table's 200-epoch test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120:
//! Spearman ρ per proxy and column, and the time per cell.
//!
//! Synflow is data-free and scored on a 3×32×32 input (CIFAR's shape) in 64-bit floats on the
//! CPU, in a process of its own (its sums overflow 32-bit floats on this network); the data
//! proxies (SNIP, grad-norm, jacob_cov, NASWOT, fisher, GraSP, the live-parameter count) see
//! one batch of the embedded Fashion-MNIST subset resized to
//! 32×32 (one channel), not CIFAR-10 images, so only synflow's values are comparable with the
//! published ones (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021),
//! which the last column prints. It also prints NASWOT's protocol (Mellor et al. 2021): the
//! test accuracy of the best of 100 cells by the score, over 500 draws from the sample. The
//! table is needed: `--nb201 PATH`, `$NAS_NB201_CSV`, or
//! `../shared/data/nb201/nats_bench_tss_200ep.csv`.
//!
//! ```text
//! cargo run --release --example zero_cost                    # 1,000 cells, about 20 minutes on 2 cores
//! cargo run --release --example zero_cost -- --sample 100    # a quick look
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::spearman_rho;
use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::estimate::zero_cost::{fisher, gradient_scores, grasp, jacob_cov, naswot, synflow};
use nas::space::TextFormat;
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::backend::{Autodiff, NdArray};
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::burn::tensor::{Device, Int, Tensor, TensorData};
use nas::supernet::data::ImageDataset;
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::network::{Classifier, count_params, seeded};
use rand::SeedableRng;

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Zero-cost proxies against the NAS-Bench-201 table: Spearman rho and time per cell"
)]
struct Args {
    /// Distinct cells (by canonical form) drawn from the space by the seed.
    #[arg(long, default_value_t = 1000)]
    sample: usize,
    /// Seed of the sample, of the networks' initialization and of the batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Initial channels of the network (the benchmark's: 16).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Cells per stage (the benchmark's: 5).
    #[arg(long, default_value_t = 5)]
    cells: usize,
    /// Images of the batch the data proxies see.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Side of the (square) images of the data proxies and of synflow's input.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Backend of the data proxies (synflow runs on the CPU in 64-bit floats).
    #[arg(long)]
    backend: Option<String>,
    /// Only score synflow and print the scores as JSON (the example runs itself so).
    #[arg(long, hide = true)]
    synflow_only: bool,
    /// Path of `nats_bench_tss_200ep.csv` (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv).
    #[arg(long)]
    nb201: Option<PathBuf>,
}

/// The proxies, in the order of the printed table, with the published Spearman ρ on
/// CIFAR-10 / CIFAR-100 / ImageNet16-120 (Abdelfattah et al. 2021) where there is one.
const PROXIES: [(&str, Option<[f64; 3]>); 10] = [
    ("synflow", Some([0.74, 0.76, 0.75])),
    ("jacob_cov", Some([0.73, 0.71, 0.71])),
    ("snip", Some([0.58, 0.63, 0.58])),
    ("grad_norm", Some([0.58, 0.64, 0.58])),
    ("live parameters", None),
    ("parameters", Some([0.75, 0.72, 0.69])),
    ("MACs", None),
    ("naswot", None),
    ("fisher", Some([0.36, 0.39, 0.33])),
    ("grasp", Some([0.48, 0.54, 0.56])),
];

/// Index of GraSP in [`PROXIES`].
const GRASP: usize = 9;

/// Index of NASWOT in [`PROXIES`] (its "best of 100 cells" protocol is printed too).
const NASWOT: usize = 7;

/// Scores of every cell: `scores[proxy][cell]`, and the seconds each proxy took in all.
struct Scores {
    scores: Vec<Vec<f64>>,
    seconds: Vec<f64>,
}

/// Synflow runs in 64-bit floats on the CPU (its sums overflow 32-bit ones on this network),
/// in a child process of this example (`--synflow-only`): Burn 0.21 fixes the CPU device's
/// float type at its first tensor, so one process cannot use the `ndarray` backend in 64-bit
/// and in 32-bit floats, and the data proxies run in 32-bit floats (this library's CPU
/// kernels, about 40 times faster than 64-bit ones here).
type F64 = Autodiff<NdArray<f64>>;

/// Synflow of every cell, and the seconds it took in all.
fn synflow_scores(args: &Args, cells: &[Nb201Arch]) -> Result<(Vec<f64>, f64), String> {
    let device = Default::default();
    let net = Nb201NetConfig {
        channels: args.channels,
        cells_per_stage: args.cells,
        in_channels: 3,
        num_classes: 10,
    };
    let space = Nb201Space::default();
    let start = Instant::now();
    let scores = cells
        .iter()
        .map(|cell| {
            let failed = |e: String| format!("{}: {e}", space.to_text(cell));
            let model = seeded(&device, args.seed, || net.init::<F64>(cell, &device))
                .map_err(|e| failed(e.to_string()))?;
            synflow(model, [3, args.size, args.size], &device).map_err(|e| failed(e.to_string()))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok((scores, start.elapsed().as_secs_f64()))
}

/// Runs this example again with `--synflow-only` and reads its scores: one line of JSON,
/// `[scores, seconds]`.
fn synflow_in_child() -> Result<(Vec<f64>, f64), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let output = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--synflow-only")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run synflow's process: {e}"))?;
    if !output.status.success() {
        return Err(format!("synflow's process failed ({})", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("synflow's process wrote `{line}`: {e}"))
}

struct Measure(Args, Vec<Nb201Arch>);

impl BackendTask for Measure {
    type Output = Result<Scores, String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let Measure(args, cells) = self;
        let (flow, flow_seconds) = synflow_in_child()?;
        if flow.len() != cells.len() {
            return Err(format!(
                "synflow's process scored {} cells, not {}",
                flow.len(),
                cells.len()
            ));
        }
        println!(
            "synflow: {} cells in {flow_seconds:.1} s (64-bit floats, its own process)",
            cells.len()
        );
        let (images, targets) = batch::<B>(&args, &device)?;
        let net = Nb201NetConfig {
            channels: args.channels,
            cells_per_stage: args.cells,
            in_channels: 1,
            num_classes: 10,
        };
        let mut scores = vec![Vec::with_capacity(cells.len()); PROXIES.len()];
        scores[0] = flow;
        let mut seconds = vec![0.0; PROXIES.len()];
        seconds[0] = flow_seconds;
        let space = Nb201Space::default();
        let start = Instant::now();
        for (i, cell) in cells.iter().enumerate() {
            let failed = |e: String| format!("{}: {e}", space.to_text(cell));
            let model = seeded(&device, args.seed, || net.init::<B>(cell, &device))
                .map_err(|e| failed(e.to_string()))?;
            let t = Instant::now();
            let jc = jacob_cov(&model, images.clone()).map_err(|e| failed(e.to_string()))?;
            seconds[1] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let g = gradient_scores(&model, images.clone(), targets.clone())
                .map_err(|e| failed(e.to_string()))?;
            // One backward pass gives SNIP, grad-norm and the live parameters: each is
            // charged the whole pass.
            let pass = t.elapsed().as_secs_f64();
            seconds[2] += pass;
            seconds[3] += pass;
            seconds[4] += pass;
            let t = Instant::now();
            let params = count_params(&model) as f64;
            seconds[5] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let macs = model
                .macs([1, args.size, args.size])
                .map_or(f64::NAN, |m| m as f64);
            seconds[6] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let nw = naswot(&model, images.clone()).map_err(|e| failed(e.to_string()))?;
            seconds[7] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let fi = fisher(&model, images.clone(), targets.clone())
                .map_err(|e| failed(e.to_string()))?;
            seconds[8] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let gr = grasp(&model, images.clone(), targets.clone())
                .map_err(|e| failed(e.to_string()))?;
            seconds[GRASP] += t.elapsed().as_secs_f64();
            let row = [
                jc,
                g.snip,
                g.grad_norm,
                g.live_parameters as f64,
                params,
                macs,
                nw,
                fi,
                gr,
            ];
            for (s, v) in scores[1..].iter_mut().zip(row) {
                s.push(v);
            }
            if (i + 1) % 100 == 0 || i + 1 == cells.len() {
                println!(
                    "[{:>5}/{}] {:.1} s",
                    i + 1,
                    cells.len(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
        Ok(Scores { scores, seconds })
    }
}

/// The first `--batch` images of a seeded sample of the embedded Fashion-MNIST subset at
/// `--size`×`--size`, normalized by the subset's channel statistics, and their labels.
fn batch<B: nas::supernet::burn::tensor::backend::Backend>(
    args: &Args,
    device: &Device<B>,
) -> Result<(Tensor<B, 4>, Tensor<B, 1, Int>), String> {
    use nas::supernet::burn::data::dataset::Dataset;
    let data = ImageDataset::fashion_mnist_embedded(true)
        .resize(args.size, args.size)
        .map_err(|e| e.to_string())?;
    let normalize = data.channel_stats();
    let data = data.sample(args.batch, args.seed);
    if args.batch < 2 || data.len() < args.batch {
        return Err(format!(
            "--batch must be between 2 and {} (jacob_cov correlates images), got {}",
            ImageDataset::fashion_mnist_embedded(true).len(),
            args.batch
        ));
    }
    let [c, h, w] = data.shape();
    let mut pixels = Vec::with_capacity(args.batch * c * h * w);
    let mut labels = Vec::with_capacity(args.batch);
    for item in (0..args.batch).filter_map(|i| data.get(i)) {
        labels.push(i64::from(item.label));
        for (k, &p) in item.pixels.iter().enumerate() {
            let ch = k / (h * w);
            pixels.push((p - normalize.mean[ch]) / normalize.std[ch]);
        }
    }
    let n = labels.len();
    Ok((
        Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let table = match Nb201Table::open(common::nb201_path(args.nb201.clone())) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e} (pass --nb201 PATH or set NAS_NB201_CSV)");
            return ExitCode::from(2);
        }
    };
    if args.sample < 3 {
        eprintln!("error: --sample must be at least 3 for a rank correlation");
        return ExitCode::from(2);
    }
    // A seeded sample of distinct cells (isomorphic cells count once); all of them when the
    // sample asks for more than the space holds.
    let cells = common::distinct_nb201_cells(args.sample, args.seed);
    println!(
        "{} distinct NAS-Bench-201 cells (seed {}); network C = {}, N = {}; synflow on 3×{}×{} in 64-bit floats, the data proxies on {} Fashion-MNIST images at 1×{}×{}",
        cells.len(),
        args.seed,
        args.channels,
        args.cells,
        args.size,
        args.size,
        args.batch,
        args.size,
        args.size
    );
    if args.synflow_only {
        return match synflow_scores(&args, &cells) {
            Ok(scored) => {
                println!("{}", serde_json::json!(scored));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let seed = args.seed;
    let measured = match common::run_task(
        args.backend.clone().as_deref(),
        Measure(args, cells.clone()),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let columns = [
        Nb201Dataset::Cifar10,
        Nb201Dataset::Cifar100,
        Nb201Dataset::ImageNet16_120,
    ];
    let truth: Vec<Vec<f64>> = columns
        .iter()
        .map(|&d| {
            cells
                .iter()
                .map(|c| table.get(c).map_or(f64::NAN, |r| r.accuracy(d)))
                .collect()
        })
        .collect();
    if let Some(missing) = cells.iter().find(|c| table.get(c).is_none()) {
        eprintln!("error: the table lacks the cell {missing}: is it the full NAS-Bench-201 table?");
        return ExitCode::FAILURE;
    }
    println!(
        "\nSpearman ρ against the table's 200-epoch test accuracy ({} cells):",
        cells.len()
    );
    println!(
        "{:<16} {:>9} {:>10} {:>15} {:>10}   published (CIFAR-10 / CIFAR-100 / ImageNet16-120)",
        "proxy", "CIFAR-10", "CIFAR-100", "ImageNet16-120", "ms/cell"
    );
    for (p, (name, published)) in PROXIES.iter().enumerate() {
        let rho: Vec<String> = truth
            .iter()
            .map(|t| {
                spearman_rho(&measured.scores[p], t).map_or("n/a".into(), |r| format!("{r:.3}"))
            })
            .collect();
        println!(
            "{:<16} {:>9} {:>10} {:>15} {:>10.1}   {}",
            name,
            rho[0],
            rho[1],
            rho[2],
            1000.0 * measured.seconds[p] / cells.len() as f64,
            published.map_or("–".to_string(), |v| format!(
                "{:.2} / {:.2} / {:.2}",
                v[0], v[1], v[2]
            ))
        );
    }
    let dead = measured.scores[1]
        .iter()
        .filter(|v| **v == f64::NEG_INFINITY)
        .count();
    println!(
        "({dead} cells have no path from input to output: jacob_cov scores them −∞, ranked last)"
    );
    // Mellor et al.'s protocol: the best of N = 100 cells by the score, its test accuracy,
    // over repeated draws (here of 100 cells from the scored sample).
    if cells.len() >= 100 {
        let runs = 500;
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        println!(
            "\nbest of 100 cells (drawn from the {} scored, {runs} draws), its test accuracy, mean ± std:",
            cells.len()
        );
        for p in [NASWOT, 0, 5] {
            let picked: Vec<Vec<f64>> = (0..runs)
                .map(|_| {
                    let draw = rand::seq::index::sample(&mut rng, cells.len(), 100);
                    let best = draw
                        .iter()
                        .max_by(|&a, &b| measured.scores[p][a].total_cmp(&measured.scores[p][b]))
                        .expect("100 cells");
                    truth.iter().map(|t| t[best]).collect()
                })
                .collect();
            let stats: Vec<String> = (0..3)
                .map(|d| {
                    let v: Vec<f64> = picked.iter().map(|r| r[d]).collect();
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
                    format!("{mean:.2} ± {:.2}", var.sqrt())
                })
                .collect();
            println!(
                "{:<16} CIFAR-10 {}, CIFAR-100 {}, ImageNet16-120 {}{}",
                PROXIES[p].0,
                stats[0],
                stats[1],
                stats[2],
                if p == NASWOT {
                    "   (published, N = 100 from the whole space: 91.61 ± 1.71, 66.56, 36.37)"
                } else {
                    ""
                }
            );
        }
    }
    ExitCode::SUCCESS
}
