//! Tensor speed against PyTorch: candidate operations (forward + backward) and whole training
//! steps, each row timed here and by a PyTorch script doing the same computation, in one run.
//!
//! ```text
//! cargo bench --bench ops                      # the full table, batch 64, 2 threads
//! cargo bench --bench ops -- --quick           # batch 16, fewer repetitions
//! cargo bench --bench ops -- --rows conv,step  # rows whose name contains one of the words
//! cargo bench --bench ops -- --threads 1 --batch 32 --reps 5 --step-reps 3
//! cargo bench --bench ops --features cuda -- --backend cuda   # PyTorch then runs on CUDA
//! ```
//!
//! Every row is the median of `--reps` (operations) or `--step-reps` (training steps) timed
//! repetitions after `--warmup` untimed ones. Operation rows time `(op(x) * probe).sum()` and its
//! backward pass on a random `[batch, 16, 32, 32]` input that requires a gradient (the DARTS
//! search network's first stage). Step rows time forward, cross-entropy, backward, gradient
//! clipping and an SGD step (Nesterov momentum, weight decay), as `nas_supernet::train::fit`
//! does, on a random batch of 32×32 RGB images: the NAS-Bench-201 network of the published best
//! cell (C = 16, N = 5) and the DARTS (V2 genotype) search-size network (C = 16, 8 cells).
//! The last row is a first-order DARTS search step (alphas on a validation batch, then the
//! weights; `nas_supernet::darts_search`) of a smaller supernet (C = 8, 5 cells, 16×16 inputs,
//! a quarter of the batch), against `benches/pytorch/darts_step.py`'s step.
//!
//! The PyTorch side is `benches/pytorch/nas_bench.py`, started once per row with the same
//! batch, repetitions and thread count (`torch.set_num_threads`); the Burn side runs its CPU
//! work on a rayon pool of the same size (`RAYON_NUM_THREADS` is set before the pool starts).
//! Without `python3` and `torch` the PyTorch columns read `n/a`.
//! A plain `harness = false` program, like the strategy overhead bench.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use nas::space::darts::DartsOp;
use nas::space::darts::darts_v2;
use nas::space::nb201::Nb201Arch;
use nas::supernet::backend::{BackendKind, BackendTask, run_on};
use nas::supernet::burn;
use nas::supernet::darts_net::{DartsNetConfig, darts_op_kind};
use nas::supernet::darts_search::mixed::{EdgeWeights, MixedOp};
use nas::supernet::darts_search::supernet::DartsSupernetConfig;
use nas::supernet::darts_search::{
    EpochPlan, Method, SearchConfig, Searcher, StepContext, SupernetConfig,
};
use nas::supernet::data::ImageBatch;
use nas::supernet::fast::Conv;
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::network::{Classifier, count_params};
use nas::supernet::ops::{OpConfig, OpKind};

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::nn::BatchNormConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Distribution, Int, Tensor};

/// The published best NAS-Bench-201 cell (the one the step row trains).
const NB201_BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
/// Channels and size of the operation rows' input.
const C: usize = 16;
const HW: usize = 32;

#[derive(Parser, Debug, Clone)]
#[command(about = "Operations and training steps, ours against PyTorch")]
struct Args {
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed repetitions of each operation row.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Timed repetitions of each training-step row.
    #[arg(long, default_value_t = 5)]
    step_reps: usize,
    /// Untimed repetitions before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// CPU threads, both sides (default: the machine's available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Backend: ndarray, flex, wgpu, cuda (default: `NAS_BACKEND`, else ndarray).
    #[arg(long)]
    backend: Option<String>,
    /// PyTorch device (default: cuda for the GPU backends, else cpu).
    #[arg(long)]
    torch_device: Option<String>,
    /// Batch 16, 3 repetitions (2 for steps), 1 warm-up: a quick look.
    #[arg(long)]
    quick: bool,
    /// Only rows whose name contains one of these comma-separated words.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Skip the PyTorch side.
    #[arg(long)]
    no_torch: bool,
    /// Time with the process's CPU time (all threads) instead of wall time, both sides: less
    /// sensitive to other processes on a busy machine, blind to idle waits.
    #[arg(long)]
    cpu_time: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What a row is: an operation (the name of the module it builds) or a training step.
#[derive(Clone, Copy)]
enum Kind {
    Op,
    Step,
}

/// The rows, in print order: name (shared with the PyTorch script), description, kind.
const ROWS: &[(&str, &str, Kind)] = &[
    ("conv3x3", "conv 3×3, 16→16", Kind::Op),
    ("conv1x1", "conv 1×1, 16→16", Kind::Op),
    ("depthwise3x3", "depthwise 3×3", Kind::Op),
    ("dilated3x3_d2", "depthwise 3×3, dilation 2", Kind::Op),
    ("nor_conv_3x3", "ReLU-conv 3×3-BN (NB201)", Kind::Op),
    ("nor_conv_1x1", "ReLU-conv 1×1-BN (NB201)", Kind::Op),
    ("sep_conv_3x3", "sep_conv_3x3 (DARTS)", Kind::Op),
    ("sep_conv_5x5", "sep_conv_5x5 (DARTS)", Kind::Op),
    ("dil_conv_3x3", "dil_conv_3x3 (DARTS)", Kind::Op),
    ("avg_pool_3x3", "avg pool 3×3 (pad excluded)", Kind::Op),
    ("max_pool_3x3", "max pool 3×3", Kind::Op),
    ("batch_norm", "batch norm (training)", Kind::Op),
    ("factorized_reduce", "factorized reduce 16→32, /2", Kind::Op),
    ("mbconv_3x3_e6", "MBConv 3×3, expansion 6", Kind::Op),
    ("mixed_op", "DARTS MixedOp (8 candidates)", Kind::Op),
    ("nb201_step", "NB201 best cell, C=16, N=5", Kind::Step),
    ("darts_step", "DARTS V2, C=16, 8 cells", Kind::Step),
    (
        "darts_bilevel_step",
        "DARTS supernet bi-level step, 1st order (C=8, 5 cells, 16×16, batch/4)",
        Kind::Step,
    ),
];

type OpFn<B> = Box<dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>>;

/// The module of an operation row, its input channels and parameter count.
fn op_module<B: AutodiffBackend>(name: &str, device: &Device<B>) -> Option<(OpFn<B>, usize)> {
    let op = |kind: OpKind, c_out: usize, stride: usize| -> Option<(OpFn<B>, usize)> {
        let m = OpConfig::new(kind, C, c_out, stride)
            .init::<B>(device)
            .ok()?;
        let p = count_params(&m);
        Some((Box::new(move |x| m.forward(x)), p))
    };
    let conv = |k: usize, dilation: usize, groups: usize| -> Option<(OpFn<B>, usize)> {
        let m = Conv::<B>::new(C, C, k, 1, dilation, groups, device);
        let p = count_params(&m);
        Some((Box::new(move |x| m.forward(x)), p))
    };
    // NAS-Bench-201's `nor_conv_kxk`: ReLU, k×k convolution, batch norm.
    let relu_conv_bn = |kernel: usize| {
        op(
            OpKind::ReluConvBn {
                kernel,
                dilation: 1,
            },
            C,
            1,
        )
    };
    match name {
        "conv3x3" => conv(3, 1, 1),
        "conv1x1" => conv(1, 1, 1),
        "depthwise3x3" => conv(3, 1, C),
        "dilated3x3_d2" => conv(3, 2, C),
        "nor_conv_3x3" => relu_conv_bn(3),
        "nor_conv_1x1" => relu_conv_bn(1),
        "sep_conv_3x3" => op(OpKind::SepConv { kernel: 3 }, C, 1),
        "sep_conv_5x5" => op(OpKind::SepConv { kernel: 5 }, C, 1),
        "dil_conv_3x3" => op(
            OpKind::DilConv {
                kernel: 3,
                dilation: 2,
            },
            C,
            1,
        ),
        "avg_pool_3x3" => op(OpKind::AvgPool { kernel: 3 }, C, 1),
        "max_pool_3x3" => op(OpKind::MaxPool { kernel: 3 }, C, 1),
        "batch_norm" => {
            let m = BatchNormConfig::new(C).init::<B>(device);
            let p = count_params(&m);
            Some((Box::new(move |x| nas::supernet::fast::batch_norm(&m, x)), p))
        }
        "factorized_reduce" => op(OpKind::FactorizedReduce, 2 * C, 2),
        "mbconv_3x3_e6" => op(
            OpKind::MbConv {
                kernel: 3,
                expansion: 6,
            },
            C,
            1,
        ),
        "mixed_op" => {
            // DARTS' search edge: the 8 primitives (pooling followed by batch norm, batch
            // norms without affine parameters), weighted by a fixed softmax.
            let configs: Vec<OpConfig> = DartsOp::PRIMITIVES
                .iter()
                .map(|&op| OpConfig::new(darts_op_kind(op), C, C, 1).with_pool_bn(true))
                .collect();
            let m = MixedOp::<B>::new(&configs, &[true; 8], device).ok()?;
            let p = count_params(&m);
            let w = burn::tensor::activation::softmax(
                Tensor::<B, 1>::random([8], Distribution::Normal(0.0, 1.0), device),
                0,
            );
            let weights: Vec<Option<Tensor<B, 4>>> = (0..8)
                .map(|i| Some(w.clone().slice(i..i + 1).reshape([1, 1, 1, 1])))
                .collect();
            Some((
                Box::new(move |x| {
                    m.forward(
                        x,
                        EdgeWeights {
                            weights: &weights,
                            sampled: None,
                            skip_dropout: 0.0,
                            seed: 0,
                        },
                    )
                }),
                p,
            ))
        }
        _ => None,
    }
}

/// CPU time of this process so far (all its threads), in seconds, from the scheduler's
/// per-thread statistics.
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 * 1e-9
}

/// Median of `reps` timings (ms) of `f` after `warmup` untimed calls: wall time, or the
/// process's CPU time when `cpu`.
fn median_ms(warmup: usize, reps: usize, cpu: bool, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let now = || {
        if cpu {
            cpu_seconds()
        } else {
            Instant::now()
                .duration_since(*START.get_or_init(Instant::now))
                .as_secs_f64()
        }
    };
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = now();
            f();
            (now() - t) * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let m = times.len() / 2;
    if times.len() % 2 == 1 {
        times[m]
    } else {
        0.5 * (times[m - 1] + times[m])
    }
}

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Our time (ms) and parameter count for one row.
struct Ours {
    ms: f64,
    params: usize,
}

struct Bench {
    args: Args,
    row: &'static str,
    kind: Kind,
}

impl BackendTask for Bench {
    type Output = Option<Ours>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Option<Ours> {
        let a = &self.args;
        let sync = || {
            let _ = B::sync(&device);
        };
        match self.kind {
            Kind::Op => {
                let (f, params) = op_module::<B>(self.row, &device)?;
                let x = Tensor::<B, 4>::random(
                    [a.batch, C, HW, HW],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                )
                .require_grad();
                let probe_shape = f(x.clone().detach()).dims();
                let probe = Tensor::<B, 4>::random(probe_shape, Distribution::Default, &device);
                let ms = median_ms(a.warmup, a.reps, a.cpu_time, || {
                    let grads = (f(x.clone()) * probe.clone()).sum().backward();
                    drop(grads);
                    sync();
                });
                Some(Ours { ms, params })
            }
            Kind::Step => {
                let images = Tensor::<B, 4>::random(
                    [a.batch, 3, HW, HW],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                );
                let targets = Tensor::<B, 1, Int>::random(
                    [a.batch],
                    Distribution::Uniform(0.0, 10.0),
                    &device,
                );
                if self.row == "darts_bilevel_step" {
                    return bilevel_step::<B>(a, &device, sync);
                }
                if self.row == "nb201_step" {
                    let arch: Nb201Arch = NB201_BEST.parse().ok()?;
                    let model = Nb201NetConfig::default().init::<B>(&arch, &device).ok()?;
                    Some(time_steps(model, images, targets, a, sync))
                } else {
                    let model = DartsNetConfig::search()
                        .init::<B>(&darts_v2(), &device)
                        .ok()?;
                    Some(time_steps(model, images, targets, a, sync))
                }
            }
        }
    }
}

/// The images per step of a row: the bi-level row runs a quarter of the batch.
fn row_batch(row: &str, batch: usize) -> usize {
    if row == "darts_bilevel_step" {
        (batch / 4).max(1)
    } else {
        batch
    }
}

/// Times first-order DARTS search steps (alphas on a validation batch, then the weights on a
/// training batch; DARTS' optimizers) of the search network at C = 8, 5 cells, 4 nodes, on
/// 16×16 inputs, as `benches/pytorch/darts_step.py` does.
fn bilevel_step<B: AutodiffBackend>(a: &Args, device: &Device<B>, sync: impl Fn()) -> Option<Ours> {
    let space = SupernetConfig::Darts(DartsSupernetConfig {
        channels: 8,
        layers: 5,
        steps: 4,
        stem_multiplier: 3,
        in_channels: 3,
        num_classes: 10,
    });
    let n = row_batch("darts_bilevel_step", a.batch);
    let config = SearchConfig {
        method: Method::from_name("darts").ok()?,
        batch_size: n,
        ..SearchConfig::default()
    };
    let mut s = Searcher::<B, _>::new(space, config, device.clone()).ok()?;
    let params = count_params(s.network());
    let batch = || ImageBatch {
        images: Tensor::<B, 4>::random(
            [n, 3, HW / 2, HW / 2],
            Distribution::Normal(0.0, 1.0),
            device,
        ),
        targets: Tensor::<B, 1, Int>::random([n], Distribution::Uniform(0.0, 10.0), device),
    };
    let (train, valid) = (batch(), batch());
    let ctx = StepContext::new(0.025, EpochPlan::default());
    let mut failed = false;
    let ms = median_ms(1, a.step_reps, a.cpu_time, || {
        failed |= s.step(&train, &valid, &ctx).is_err();
        sync();
    });
    (!failed).then_some(Ours { ms, params })
}

/// Times training steps of `model` as `train::fit` runs them (SGD with Nesterov momentum,
/// weight decay, clipping by norm 5).
fn time_steps<B: AutodiffBackend, M>(
    model: M,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    a: &Args,
    sync: impl Fn(),
) -> Ours
where
    M: AutodiffModule<B> + Classifier<B>,
{
    let params = count_params(&model);
    let mut momentum = MomentumConfig::new().with_momentum(0.9).with_dampening(0.0);
    momentum.nesterov = true;
    let mut optim = SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .with_gradient_clipping(Some(GradientClippingConfig::Norm(5.0)))
        .init::<B, M>();
    let loss_fn = CrossEntropyLossConfig::new().init(&images.device());
    let mut model = Some(model);
    let ms = median_ms(1, a.step_reps, a.cpu_time, || {
        let m = model
            .take()
            .unwrap_or_else(|| unreachable!("put back every step"));
        let loss = loss_fn.forward(m.logits(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(0.025, m, grads));
        sync();
    });
    Ours { ms, params }
}

/// The PyTorch side of one row: median ms, parameter count and torch version, or why not.
fn torch_row(args: &Args, row: &str, threads: usize, device: &str) -> Result<(f64, usize), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch/nas_bench.py");
    let reps = if row.ends_with("_step") {
        args.step_reps
    } else {
        args.reps
    };
    let warmup = if row.ends_with("_step") {
        1
    } else {
        args.warmup
    };
    let out = Command::new("python3")
        .arg(script)
        .args(["--row", row, "--device", device])
        .args(["--batch", &args.batch.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--reps", &reps.to_string()])
        .args(args.cpu_time.then_some("--cpu-time"))
        .output()
        .map_err(|e| format!("python3 not found ({e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("unreadable output of the PyTorch script: {e}"))?;
    let ms = v["ms"].as_f64().ok_or("no `ms` in the PyTorch output")?;
    let params = v["params"].as_u64().unwrap_or(0) as usize;
    Ok((ms, params))
}

fn torch_version() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.batch = 16;
        args.reps = 3;
        args.step_reps = 2;
        args.warmup = 1;
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // SAFETY: no other thread exists yet; the rayon pools read this when they start.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let kind = match &args.backend {
        Some(name) => name.parse::<BackendKind>(),
        None => BackendKind::from_env(),
    };
    let kind = match kind {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let gpu = matches!(kind, BackendKind::Cuda | BackendKind::Wgpu);
    let torch_device = args
        .torch_device
        .clone()
        .unwrap_or_else(|| if gpu { "cuda" } else { "cpu" }.to_string());
    let torch = if args.no_torch { None } else { torch_version() };

    println!(
        "machine: {} ({} logical CPUs), load average {}",
        cpu_model(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average()
    );
    println!(
        "ours: Burn 0.21.0, backend {kind}, {threads} thread(s); PyTorch: {} on {torch_device}, torch.set_num_threads({threads})",
        torch.as_deref().unwrap_or("n/a")
    );
    if torch.is_none() && !args.no_torch {
        println!(
            "  (no PyTorch: `pip install torch --index-url https://download.pytorch.org/whl/cpu` for the CPU wheel)"
        );
    }
    println!(
        "batch {}, median {} of {} (operations) / {} (steps) after {} warm-up; input [batch, {C}, {HW}, {HW}] for operations, [batch, 3, {HW}, {HW}] for steps",
        args.batch,
        if args.cpu_time {
            "CPU time"
        } else {
            "wall time"
        },
        args.reps,
        args.step_reps,
        args.warmup
    );
    println!();
    println!("| row | what | ours ms | PyTorch ms | ours/PyTorch | ours img/s | PyTorch img/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut notes = Vec::new();
    for &(row, what, kind_of) in ROWS {
        if !args.rows.is_empty() && !args.rows.iter().any(|w| row.contains(w.as_str())) {
            continue;
        }
        let ours = match run_on(
            kind,
            Bench {
                args: args.clone(),
                row,
                kind: kind_of,
            },
        ) {
            Ok(Some(o)) => o,
            Ok(None) => {
                println!("| {row} | {what} | failed to build | | | | |");
                continue;
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let theirs = if torch.is_some() {
            torch_row(&args, row, threads, &torch_device)
        } else {
            Err("n/a".into())
        };
        let step = matches!(kind_of, Kind::Step);
        let ips = |ms: f64| {
            if step {
                format!("{:.0}", row_batch(row, args.batch) as f64 / (ms / 1e3))
            } else {
                String::new()
            }
        };
        let (t_ms, ratio, t_ips) = match &theirs {
            Ok((ms, params)) => {
                if *params != ours.params {
                    notes.push(format!(
                        "{row}: {} parameters here, {params} in the PyTorch model",
                        ours.params
                    ));
                }
                (format!("{ms:.1}"), format!("{:.2}", ours.ms / ms), ips(*ms))
            }
            Err(e) => {
                if torch.is_some() {
                    notes.push(format!("{row}: PyTorch side failed: {e}"));
                }
                ("n/a".into(), "n/a".into(), String::new())
            }
        };
        println!(
            "| {row} | {what} | {:.1} | {t_ms} | {ratio} | {} | {t_ips} |",
            ours.ms,
            ips(ours.ms)
        );
        let _ = std::io::stdout().flush();
    }
    println!();
    println!("load average at the end: {}", load_average());
    for n in notes {
        println!("note: {n}");
    }
}
