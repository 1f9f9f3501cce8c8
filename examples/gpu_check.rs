//! The GPU check: every space's network, a DARTS bi-level step and a ProxylessNAS step give the
//! CPU's numbers on `cuda` and on `wgpu`, and the training steps of `benches/ops.rs` timed on
//! the GPU (images/s), next to PyTorch CUDA when `torch` imports. Prints one markdown report
//! (and writes it to `--out`).
//!
//! Built once, stripped, to be carried to a GPU machine without network:
//!
//! ```text
//! scripts/gpu-check.sh build     # here: gpu-bin/gpu_check (--features cuda,wgpu, thin LTO)
//! scripts/gpu-check.sh run OUT   # there: the report in OUT/gpu-check.md, within 8 minutes
//! cargo run --release --example gpu_check   # without a GPU: the CPU parts, and why no GPU
//! ```
//!
//! Parity: the CPU (`ndarray`) network is built, its parameters copied to the GPU, and both
//! compute logits, the cross-entropy's gradients of every parameter and of the input, on the
//! same images and labels. DARTS: the supernet and alphas of a CPU searcher are loaded into a
//! GPU searcher through a checkpoint, and both compute the alphas' gradient (first and second
//! order), take one bi-level step and compute it again. ProxylessNAS: one epoch of a tiny
//! search (binary gates, two weight steps, two architecture steps) from the same checkpoint.
//! A difference is relative to the largest magnitude of the CPU's values (per parameter tensor
//! for gradients, with a floor of 1e-3 of the largest gradient). The DARTS rows also show, in
//! brackets, how far two correct CPU implementations are apart (this library's CPU kernels and
//! Burn's own): DARTS' second-order gradient is a finite difference across max pooling's
//! kinks, where rounding alone moves it by tens of percent, so its tolerance is twice that
//! spread. The weight update and the gradient after it are judged against how far the CPU's
//! own move when the pixels move by 1e-5 (relative): on the DARTS supernet such small
//! differences move the weights' update by percents (its gradient is not smooth).
//!
//! Exit code: 0 when every check on a present GPU passes, 1 when one fails, 2 when no GPU
//! backend could run (the report says why: not compiled in, no driver, no adapter).

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;

#[path = "../benches/common/rows.rs"]
#[allow(dead_code)]
mod rows;

use nas::space::darts::{DartsOp, darts_v2};
use nas::space::dpc::{DpcSpace, TOP1_CITYSCAPES};
use nas::space::nasnet::NasNetSpace;
use nas::space::nasrl::NasRlSpace;
use nas::space::nb201::Nb201Arch;
use nas::space::proxyless::{ProxylessConfig, ProxylessSpace, Stage};
use nas::space::spos::{SposArch, SposConfig, SposSpace};
use nas::space::{SearchSpace, TextFormat};
use nas::supernet::backend::{BackendKind, BackendTask, run_on};
use nas::supernet::burn;
use nas::supernet::chain_net::ChainNetConfig;
use nas::supernet::darts_net::DartsNetConfig;
use nas::supernet::darts_search::{
    EpochPlan, Method, SearchConfig, Searcher, StepContext, SupernetConfig,
};
use nas::supernet::data::{ImageBatch, ImageDataset};
use nas::supernet::driver::{Checkpoint, EpochSolver};
use nas::supernet::multi_net::{DpcNetConfig, NasRlNetConfig};
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::network::{Classifier, seeded};
use nas::supernet::oneshot::gates::{ArchOptimConfig, ArchParams};
use nas::supernet::oneshot::proxyless::{ProxylessSearch, ProxylessSearchConfig, layer_choices};
use nas::supernet::train::TrainConfig;

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;

type Cpu = Autodiff<NdArray>;
/// The same CPU backend under another checkpointing strategy: this library's CPU kernels
/// (`nas_supernet::native`) recognise only `Autodiff<NdArray>`, so this one runs Burn's own
/// kernels and the tensor-operation decompositions, a second correct implementation.
type CpuBurnKernels = Autodiff<NdArray, BalancedCheckpointing>;

/// Largest relative difference allowed for outputs and gradients of networks and first-order
/// alpha gradients (f32 on both sides, reductions in another order).
const TOL: f64 = 1e-3;
/// For the second-order alpha gradient: DARTS' finite-difference Hessian-vector product
/// divides a difference of two gradients by 2ε, which amplifies rounding.
const TOL_SECOND_ORDER: f64 = 2e-2;
/// The relative jitter of the pixels against which the DARTS weight update is judged.
const JITTER: f32 = 1e-5;

#[derive(Parser, Debug, Clone)]
#[command(about = "Parity of networks and search steps on the GPU backends, and GPU step timings")]
struct Args {
    /// GPU backends to check, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "cuda,wgpu")]
    backends: Vec<String>,
    /// Backends to time the training steps on (`ndarray` times the CPU).
    #[arg(long, value_delimiter = ',', default_value = "cuda")]
    time: Vec<String>,
    /// Batch of the timed steps (the bi-level rows use a quarter).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed repetitions per operation row (the median is reported), after 2 warm-up ones.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Timed repetitions per step row, after 2 warm-up steps.
    #[arg(long, default_value_t = 5)]
    step_reps: usize,
    /// Time the training steps only, not the operation rows.
    #[arg(long)]
    no_ops: bool,
    /// The step rows to time, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',')]
    steps: Vec<String>,
    /// Time only: skip the parity tables.
    #[arg(long)]
    no_parity: bool,
    /// Skip the PyTorch CUDA column.
    #[arg(long)]
    no_torch: bool,
    /// `benches/pytorch/nas_bench.py` (default: that path under the working directory, else
    /// under the source tree this was built from).
    #[arg(long)]
    torch_script: Option<std::path::PathBuf>,
    /// Also write the report here.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// The outcome of one check.
#[derive(Debug, Clone)]
enum Outcome {
    /// Largest relative differences by quantity, each against its tolerance.
    Measured(Vec<(String, f64, f64)>),
    /// The check could not run (an error, a panic).
    Failed(String),
}

impl Outcome {
    fn passed(&self) -> bool {
        match self {
            Outcome::Measured(m) => m.iter().all(|(_, d, tol)| d.is_finite() && d <= tol),
            Outcome::Failed(_) => false,
        }
    }

    fn cell(&self) -> String {
        match self {
            Outcome::Measured(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(what, d, tol)| {
                        let mark = if d.is_finite() && d <= tol {
                            ""
                        } else {
                            " **FAIL**"
                        };
                        format!("{what} {d:.1e}{mark}")
                    })
                    .collect();
                let verdict = if self.passed() { "ok" } else { "FAIL" };
                format!("{verdict}: {}", parts.join(", "))
            }
            Outcome::Failed(e) => format!("**FAIL**: {}", e.replace('|', "/").replace('\n', " ")),
        }
    }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default()
}

/// Largest |a − b| relative to the largest |a| (at least `floor`).
fn rel_diff(a: &[f32], b: &[f32], floor: f32) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let scale = a.iter().map(|v| v.abs()).fold(floor.max(1e-12), f32::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs() / scale))
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        )
}

/// The gradients of every float parameter of a module, tensor by tensor, in visiting order.
fn param_grads<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: &B::Gradients,
) -> Vec<Vec<f32>> {
    struct Collect<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        out: Vec<Vec<f32>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.out.push(values(g));
            }
        }
    }
    let mut c = Collect {
        grads,
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// The values of every float parameter of a module, tensor by tensor, in visiting order.
fn param_values<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(values(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Per-tensor relative difference of two gradient lists, the largest over tensors; each
/// tensor's scale is at least 1e-3 of the largest CPU gradient.
fn grads_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let global = a.iter().flatten().map(|v| v.abs()).fold(0.0f32, f32::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| rel_diff(x, y, 1e-3 * global))
        .fold(0.0, f64::max)
}

/// Logits, input gradient and parameter gradients of the cross-entropy on one backend.
fn forward_backward<B: AutodiffBackend, M: Classifier<B>>(
    net: &M,
    x: &[f32],
    shape: [usize; 4],
    labels: &[i64],
    device: &Device<B>,
) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let x = Tensor::<B, 4>::from_data(TensorData::new(x.to_vec(), shape), device).require_grad();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels.to_vec(), [shape[0]]), device);
    let logits = net.logits(x.clone());
    let out = values(logits.clone());
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, y);
    let grads = loss.backward();
    let gx = x.grad(&grads).map(values).unwrap_or_default();
    (out, gx, param_grads(net, &grads))
}

/// Copies a CPU module's parameters and buffers into `gpu` (built with the same structure).
fn transfer<G: AutodiffBackend, MC: Module<Cpu>, MG: Module<G>>(
    cpu: &MC,
    gpu: MG,
    device: &Device<G>,
) -> Result<MG, String> {
    let mut c = Checkpoint::new("gpu-check");
    c.put_module::<Cpu, MC>("net", cpu)
        .map_err(|e| e.to_string())?;
    c.module::<G, MG>("net", gpu, device)
        .map_err(|e| e.to_string())
}

/// The parity check of one network: `build` makes it on a backend.
fn network_parity<G, MC, MG>(
    shape: [usize; 4],
    classes: usize,
    cpu: impl FnOnce(&Device<Cpu>) -> Result<MC, String>,
    gpu: impl FnOnce(&Device<G>) -> Result<MG, String>,
    device: &Device<G>,
) -> Outcome
where
    G: AutodiffBackend,
    MC: Classifier<Cpu>,
    MG: Classifier<G>,
{
    let run = || -> Result<Outcome, String> {
        let cd = Default::default();
        let cpu_net = seeded(&cd, 7, || cpu(&cd))?;
        let gpu_net = transfer(&cpu_net, gpu(device)?, device)?;
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(11);
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|_| rand::RngExt::random::<f32>(&mut rng) * 2.0 - 1.0)
            .collect();
        let labels: Vec<i64> = (0..shape[0]).map(|i| (i % classes) as i64).collect();
        let (yc, xc, pc) = forward_backward(&cpu_net, &x, shape, &labels, &cd);
        let (yg, xg, pg) = forward_backward(&gpu_net, &x, shape, &labels, device);
        Ok(Outcome::Measured(vec![
            ("logits".into(), rel_diff(&yc, &yg, 1e-3), TOL),
            ("input grad".into(), rel_diff(&xc, &xg, 1e-6), TOL),
            (
                format!("{} param grads", pc.len()),
                grads_diff(&pc, &pg),
                TOL,
            ),
        ]))
    };
    guarded(run)
}

/// Runs `f`, turning an error or a panic into [`Outcome::Failed`].
fn guarded(f: impl FnOnce() -> Result<Outcome, String>) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(p) => Outcome::Failed(format!("panicked: {}", panic_message(&*p))),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// A small ProxylessNAS space: two stages of two layers, 8 and 16 channels, stride-1 stem.
fn small_proxyless() -> Result<ProxylessSpace, String> {
    let stage = |width, stride| Stage {
        width,
        depth: 2,
        stride,
    };
    ProxylessSpace::new(ProxylessConfig {
        stem_channels: 8,
        stem_stride: 1,
        first_block_channels: 8,
        stages: vec![stage(8, 1), stage(16, 2)],
        feature_mix_channels: 32,
        ..ProxylessConfig::default()
    })
    .map_err(|e| e.to_string())
}

/// Every space's network, checked on backend `G`.
fn network_checks<G: AutodiffBackend>(device: &Device<G>, emit: &mut dyn FnMut((String, Outcome))) {
    let err = |e: &dyn std::fmt::Display| e.to_string();

    let nb201 = Nb201NetConfig {
        channels: 8,
        cells_per_stage: 1,
        in_channels: 3,
        num_classes: 10,
    };
    let arch: Nb201Arch = rows::NB201_BEST.parse().expect("the published cell parses");
    emit((
        "NAS-Bench-201 network (best cell, C=8, N=1), 4×3×16×16".into(),
        network_parity(
            [4, 3, 16, 16],
            10,
            |d| nb201.init::<Cpu>(&arch, d).map_err(|e| err(&e)),
            |d| nb201.init::<G>(&arch, d).map_err(|e| err(&e)),
            device,
        ),
    ));

    let darts = DartsNetConfig {
        channels: 8,
        layers: 5,
        auxiliary: false,
        in_channels: 3,
        num_classes: 10,
        ..DartsNetConfig::default()
    };
    let genotype = darts_v2();
    emit((
        "DARTS network (V2 genotype, C=8, 5 cells), 4×3×16×16".into(),
        network_parity(
            [4, 3, 16, 16],
            10,
            |d| darts.init::<Cpu>(&genotype, d).map_err(|e| err(&e)),
            |d| darts.init::<G>(&genotype, d).map_err(|e| err(&e)),
            device,
        ),
    ));

    // The same network with max pooling replaced by average pooling: whether the difference
    // of the row above comes from max pooling, whose gradient jumps to another pixel of the
    // window when a forward pass of lower precision swaps two nearly equal values.
    let mut smooth = genotype.clone();
    for (op, _) in smooth.normal.iter_mut().chain(smooth.reduce.iter_mut()) {
        if *op == DartsOp::MaxPool3x3 {
            *op = DartsOp::AvgPool3x3;
        }
    }
    emit((
        "DARTS network, its max pooling replaced by average pooling".into(),
        network_parity(
            [4, 3, 16, 16],
            10,
            |d| darts.init::<Cpu>(&smooth, d).map_err(|e| err(&e)),
            |d| darts.init::<G>(&smooth, d).map_err(|e| err(&e)),
            device,
        ),
    ));

    let nasnet_arch = NasNetSpace::default().sample(&mut rand::rngs::ChaCha8Rng::seed_from_u64(3));
    let nasnet = DartsNetConfig {
        channels: 4,
        layers: 3,
        ..darts
    };
    emit((
        "NASNet network (a sampled cell, C=4, 3 cells), 4×3×16×16".into(),
        network_parity(
            [4, 3, 16, 16],
            10,
            |d| {
                nasnet
                    .init_nasnet::<Cpu>(&nasnet_arch, d)
                    .map_err(|e| err(&e))
            },
            |d| {
                nasnet
                    .init_nasnet::<G>(&nasnet_arch, d)
                    .map_err(|e| err(&e))
            },
            device,
        ),
    ));

    match small_proxyless() {
        Ok(space) => {
            let arch = space.sample(&mut rand::rngs::ChaCha8Rng::seed_from_u64(4));
            let chain = ChainNetConfig::new(3, 10);
            emit((
                format!(
                    "ProxylessNAS network (`{}`), 4×3×16×16",
                    space.to_text(&arch)
                ),
                network_parity(
                    [4, 3, 16, 16],
                    10,
                    |d| {
                        chain
                            .proxyless::<Cpu>(&space, &arch, d)
                            .map_err(|e| err(&e))
                    },
                    |d| chain.proxyless::<G>(&space, &arch, d).map_err(|e| err(&e)),
                    device,
                ),
            ));
        }
        Err(e) => emit(("ProxylessNAS network".into(), Outcome::Failed(e))),
    }

    let spos = SposSpace::new(SposConfig {
        stem_channels: 8,
        stage_repeats: vec![2, 2],
        stage_channels: vec![16, 32],
        last_channels: 32,
    });
    match (spos, SposArch::from_indices(&[0, 3, 2, 1])) {
        (Ok(space), Ok(arch)) => {
            let chain = ChainNetConfig::new(3, 10).with_stem_stride(1);
            emit((
                "SPOS network (ShuffleNetV2 and Xception units), 4×3×16×16".into(),
                network_parity(
                    [4, 3, 16, 16],
                    10,
                    |d| chain.spos::<Cpu>(&space, &arch, d).map_err(|e| err(&e)),
                    |d| chain.spos::<G>(&space, &arch, d).map_err(|e| err(&e)),
                    device,
                ),
            ));
        }
        (a, b) => emit((
            "SPOS network".into(),
            Outcome::Failed(format!("{:?} {:?}", a.err(), b.err())),
        )),
    }

    let nasrl = NasRlSpace::with_layers(4)
        .map_err(|e| e.to_string())
        .and_then(|s| s.with_strides(&[1, 2]).map_err(|e| e.to_string()))
        .and_then(|s| {
            s.parse("3x3x24s1[] 1x7x36s2[1] 5x1x24s1[] 3x3x48s1[1,2,3]")
                .map_err(|e| e.to_string())
        });
    match nasrl {
        Ok(arch) => {
            let config = NasRlNetConfig {
                in_channels: 3,
                num_classes: 10,
                width_multiplier: 0.25,
            };
            emit((
                "NAS-RL network (4 layers with skip connections), 4×3×16×16".into(),
                network_parity(
                    [4, 3, 16, 16],
                    10,
                    |d| config.init::<Cpu>(&arch, d).map_err(|e| err(&e)),
                    |d| config.init::<G>(&arch, d).map_err(|e| err(&e)),
                    device,
                ),
            ));
        }
        Err(e) => emit(("NAS-RL network".into(), Outcome::Failed(e))),
    }

    match DpcSpace::default().parse(TOP1_CITYSCAPES) {
        Ok(cell) => {
            let config = DpcNetConfig {
                in_channels: 3,
                num_classes: 10,
                backbone_channels: 8,
                backbone_layers: 2,
                backbone_strides: 1,
                branch_channels: 8,
            };
            emit((
                "DPC network (the published Cityscapes cell), 4×3×12×12".into(),
                network_parity(
                    [4, 3, 12, 12],
                    10,
                    |d| config.init::<Cpu>(&cell, d).map_err(|e| err(&e)),
                    |d| config.init::<G>(&cell, d).map_err(|e| err(&e)),
                    device,
                ),
            ));
        }
        Err(e) => emit(("DPC network".into(), Outcome::Failed(e.to_string()))),
    }
}

/// The same random batch on any backend; `jitter` multiplies every pixel by `1 + jitter · u`,
/// `u` uniform in [−1, 1) (0: the batch itself).
fn image_batch<B: AutodiffBackend>(
    seed: u64,
    n: usize,
    jitter: f32,
    device: &Device<B>,
) -> ImageBatch<B> {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let mut noise = rand::rngs::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let shape = [n, 3, 16, 16];
    let pixels: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            let u = rand::RngExt::random::<f32>(&mut noise) * 2.0 - 1.0;
            (rand::RngExt::random::<f32>(&mut rng) * 2.0 - 1.0) * (1.0 + jitter * u)
        })
        .collect();
    let labels: Vec<i64> = (0..n)
        .map(|_| rand::RngExt::random_range(&mut rng, 0..10))
        .collect();
    ImageBatch {
        images: Tensor::from_data(TensorData::new(pixels, shape), device),
        targets: Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), device),
    }
}

fn flat(g: Vec<Vec<Vec<f32>>>) -> Vec<f32> {
    g.into_iter().flatten().flatten().collect()
}

/// A DARTS search on 16×16 images (C=8, 5 cells) with the method `name`.
fn darts_searcher<B: AutodiffBackend>(
    name: &str,
    device: &Device<B>,
) -> Result<Searcher<B, SupernetConfig>, String> {
    let config = SearchConfig {
        method: Method::from_name(name).map_err(|e| e.to_string())?,
        batch_size: 8,
        ..SearchConfig::default()
    };
    Searcher::new(rows::bilevel_supernet(), config, device.clone()).map_err(|e| e.to_string())
}

/// What one backend computes in the DARTS check, from the same checkpoint and batches.
struct DartsRun {
    first: Vec<f32>,
    second: Vec<f32>,
    loss: f64,
    update: Vec<Vec<f32>>,
    alphas: Vec<f32>,
    after: Vec<f32>,
}

/// The alphas' gradient of both orders, one first-order step (its loss, the weights' update,
/// the alphas after it) and the gradient again, on backend `B` from `ckpt`, with the batches'
/// pixels jittered by `jitter` (relative).
fn darts_run<B: AutodiffBackend>(
    device: &Device<B>,
    ckpt: &Checkpoint,
    data: &ImageDataset,
    jitter: f32,
) -> Result<DartsRun, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let load = |name: &str| -> Result<Searcher<B, SupernetConfig>, String> {
        let mut s = darts_searcher::<B>(name, device)?;
        s.epochs(data)
            .map_err(|x| e(&x))?
            .load(ckpt)
            .map_err(|x| e(&x))?;
        Ok(s)
    };
    let (mut s1, s2) = (load("darts")?, load("darts2")?);
    let (t, v) = (
        image_batch::<B>(1, 8, jitter, device),
        image_batch::<B>(2, 8, jitter, device),
    );
    let ctx = StepContext::new(0.025, EpochPlan::default());
    let grad = |s: &Searcher<B, SupernetConfig>| {
        s.alpha_gradient(&t, &v, &ctx).map(flat).map_err(|x| e(&x))
    };
    let (first, second) = (grad(&s1)?, grad(&s2)?);
    let before = param_values(s1.network());
    let stats = s1.step(&t, &v, &ctx).map_err(|x| e(&x))?;
    let update = param_values(s1.network())
        .iter()
        .zip(&before)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect())
        .collect();
    Ok(DartsRun {
        first,
        second,
        loss: stats.train_loss,
        update,
        alphas: flat(s1.alphas().to_tables()),
        after: grad(&s1)?,
    })
}

/// DARTS: [`darts_run`] on the CPU, on the CPU with Burn's own kernels instead of this
/// library's (two correct implementations: how far apart rounding alone puts them), and on
/// the GPU, all from one CPU searcher's checkpoint.
fn darts_check<G: AutodiffBackend>(device: &Device<G>) -> Outcome {
    guarded(|| {
        let data = ImageDataset::digits().sample(16, 1);
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let cd: Device<Cpu> = Default::default();
        let mut ckpt = Checkpoint::new("gpu-check");
        darts_searcher::<Cpu>("darts", &cd)?
            .epochs(&data)
            .map_err(|x| e(&x))?
            .save(&mut ckpt)
            .map_err(|x| e(&x))?;
        let cpu = darts_run::<Cpu>(&cd, &ckpt, &data, 0.0)?;
        let alt = darts_run::<CpuBurnKernels>(&Default::default(), &ckpt, &data, 0.0)?;
        // The CPU on pixels moved by 1e-5 (relative): how much the quantities themselves move
        // under differences of the size rounding makes deep in the network: on the DARTS
        // supernet the weight update moves by percents (its gradient is not smooth: ReLUs and
        // max pooling switch), the alpha gradients by far less.
        let jit = darts_run::<Cpu>(&cd, &ckpt, &data, JITTER)?;
        let gpu = darts_run::<G>(device, &ckpt, &data, 0.0)?;
        let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(1e-6);
        let row = |what: &str, d: f64, spread: f64, tol: f64| {
            (format!("{what} [CPU kernels: {spread:.1e}]"), d, tol)
        };
        let second_spread = rel_diff(&cpu.second, &alt.second, 0.0);
        // Judged against the CPU's own movement under the jitter.
        let jittered = |what: &str, d: f64, spread: f64, moved: f64| {
            (
                format!("{what} [CPU kernels: {spread:.1e}; pixels ±{JITTER:.0e}: {moved:.1e}]"),
                d,
                TOL.max(moved),
            )
        };
        Ok(Outcome::Measured(vec![
            row(
                "α grad 1st order",
                rel_diff(&cpu.first, &gpu.first, 0.0),
                rel_diff(&cpu.first, &alt.first, 0.0),
                TOL,
            ),
            row(
                "α grad 2nd order",
                rel_diff(&cpu.second, &gpu.second, 0.0),
                second_spread,
                TOL_SECOND_ORDER.max(2.0 * second_spread),
            ),
            row(
                "step loss",
                rel(cpu.loss, gpu.loss),
                rel(cpu.loss, alt.loss),
                TOL,
            ),
            row(
                "α after the step",
                rel_diff(&cpu.alphas, &gpu.alphas, 0.0),
                rel_diff(&cpu.alphas, &alt.alphas, 0.0),
                TOL,
            ),
            jittered(
                "weight update",
                grads_diff(&cpu.update, &gpu.update),
                grads_diff(&cpu.update, &alt.update),
                grads_diff(&cpu.update, &jit.update),
            ),
            jittered(
                "α grad after the step",
                rel_diff(&cpu.after, &gpu.after, 0.0),
                rel_diff(&cpu.after, &alt.after, 0.0),
                rel_diff(&cpu.after, &jit.after, 0.0),
            ),
        ]))
    })
}

/// A ProxylessNAS search of one short epoch on backend `B`, its state loaded from `ckpt` when
/// given, else saved into `save`.
fn proxyless_epoch<B: AutodiffBackend>(
    device: &Device<B>,
    ckpt: Option<&Checkpoint>,
    save: Option<&mut Checkpoint>,
) -> Result<(f64, f64, Vec<f32>), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let space = small_proxyless()?;
    let data = ImageDataset::digits().sample(64, 3);
    let (train, arch_data) = data.split(0.5, 3).map_err(|x| e(&x))?;
    let normalize = data.channel_stats();
    let net = seeded(device, 5, || {
        ChainNetConfig::new(1, 10).proxyless_supernet::<B>(&space, device)
    })
    .map_err(|x| e(&x))?;
    let alphas = ArchParams::new(
        &layer_choices(&net),
        ArchOptimConfig {
            learning_rate: 0.05,
            ..ArchOptimConfig::default()
        },
    )
    .map_err(|x| e(&x))?;
    let config = ProxylessSearchConfig {
        train: TrainConfig {
            epochs: 1,
            batch_size: 16,
            learning_rate: 0.05,
            seed: 6,
            ..TrainConfig::default()
        },
        warmup_epochs: 0,
        arch_update_every: 1,
        ..ProxylessSearchConfig::default()
    };
    let mut search = ProxylessSearch::new(
        net, alphas, &train, &arch_data, &normalize, None, &config, device,
    )
    .map_err(|x| e(&x))?;
    if let Some(c) = ckpt {
        search.load(c).map_err(|x| e(&x))?;
    }
    if let Some(c) = save {
        search.save(c).map_err(|x| e(&x))?;
    }
    let epoch = search.epoch().map_err(|x| e(&x))?;
    let probs: Vec<f32> = epoch
        .probabilities
        .iter()
        .flatten()
        .map(|&p| p as f32)
        .collect();
    Ok((epoch.train_loss, epoch.arch_loss, probs))
}

/// ProxylessNAS: one epoch (two weight steps, two gate steps) from the CPU's state.
fn proxyless_check<G: AutodiffBackend>(device: &Device<G>) -> Outcome {
    guarded(|| {
        let cd: Device<Cpu> = Default::default();
        let mut ckpt = Checkpoint::new("gpu-check");
        let (lc, ac, pc) = proxyless_epoch::<Cpu>(&cd, None, Some(&mut ckpt))?;
        let (lg, ag, pg) = proxyless_epoch::<G>(device, Some(&ckpt), None)?;
        let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(1e-6);
        Ok(Outcome::Measured(vec![
            ("weight loss".into(), rel(lc, lg), TOL),
            ("arch loss".into(), rel(ac, ag), TOL),
            ("path probabilities".into(), rel_diff(&pc, &pg, 0.0), TOL),
        ]))
    })
}

/// All parity checks on one backend.
/// The parity checks on one backend, each row handed to `report` as soon as it is known (a
/// run stopped early keeps the finished rows).
struct Parity<'a> {
    report: &'a mut dyn FnMut((String, Outcome)),
}

impl BackendTask for Parity<'_> {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: Device<B>) {
        network_checks::<B>(&device, self.report);
        (self.report)((
            "DARTS bi-level step (C=8, 5 cells, 8×3×16×16)".into(),
            darts_check::<B>(&device),
        ));
        (self.report)((
            "ProxylessNAS search epoch (gates; 2 weight and 2 architecture steps)".into(),
            proxyless_check::<B>(&device),
        ));
    }
}

/// A timed row: name, description, whether it is a training step, repetitions.
type Row = (&'static str, &'static str, bool, usize);

/// The operation and step rows timed on one backend (one backend check, one device), each
/// result handed to `report` as soon as it is measured.
struct Timing<'a> {
    rows: Vec<Row>,
    batch: usize,
    report: &'a mut dyn FnMut(Row, Result<rows::Timed, String>),
}

impl BackendTask for Timing<'_> {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: Device<B>) {
        for row in self.rows {
            let (name, _, step, reps) = row;
            let started = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| {
                if step {
                    rows::time_step_row::<B>(name, self.batch, 2, reps, false, &device)
                } else {
                    rows::time_op_row::<B>(name, self.batch, 2, reps, false, &device)
                }
            }));
            let r = match r {
                Ok(Some(t)) => Ok(t),
                Ok(None) => Err("the row failed to build or run".to_string()),
                Err(p) => Err(format!("panicked: {}", panic_message(&*p))),
            };
            eprintln!(
                "  timed {name} in {:.0} s (warm-ups included): {r:?}",
                started.elapsed().as_secs_f64()
            );
            (self.report)(row, r);
        }
    }
}

/// PyTorch CUDA's median ms for each of `rows` (timed in one process, `reps` repetitions
/// after 2 warm-ups), or why not. A row the script did not report gets the last line of its
/// error output.
fn torch_rows(
    script: &std::path::Path,
    rows: &[&str],
    reps: usize,
    args: &Args,
) -> std::collections::HashMap<String, Result<f64, String>> {
    let mut found = std::collections::HashMap::new();
    if rows.is_empty() {
        return found;
    }
    let why = match Command::new("python3")
        .arg(script)
        .args(["--row", &rows.join(","), "--device", "cuda"])
        .args(["--batch", &args.batch.to_string()])
        .args(["--warmup", "2", "--reps", &reps.to_string()])
        .output()
    {
        Err(e) => format!("python3: {e}"),
        Ok(out) => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if let (Some(row), Some(ms)) = (v["row"].as_str(), v["ms"].as_f64()) {
                    found.insert(row.to_string(), Ok(ms));
                }
            }
            let err = String::from_utf8_lossy(&out.stderr);
            err.lines().last().unwrap_or("no output").to_string()
        }
    };
    for row in rows {
        found
            .entry(row.to_string())
            .or_insert_with(|| Err(why.clone()));
    }
    found
}

/// torch's version and GPU name when torch imports and sees a CUDA device.
fn torch_cuda() -> Result<String, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; \
             print(torch.__version__, torch.cuda.get_device_name(0))",
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().last().unwrap_or("failed").to_string())
    }
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    // `--time ""` (or `--backends ""`) means none.
    args.time.retain(|s| !s.is_empty());
    args.backends.retain(|s| !s.is_empty());
    if let Some(bad) = args
        .steps
        .iter()
        .find(|s| !rows::STEP_ROWS.iter().any(|r| r.0 == s.as_str()))
    {
        eprintln!(
            "error: unknown step row `{bad}` in --steps; the rows are {}",
            rows::STEP_ROWS
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(2);
    }
    let step_rows: Vec<(&str, &str)> = rows::STEP_ROWS
        .iter()
        .copied()
        .filter(|r| args.steps.is_empty() || args.steps.iter().any(|s| s == r.0))
        .collect();
    let started = Instant::now();
    let mut report = String::new();
    let mut say = |line: String| {
        println!("{line}");
        let _ = std::io::stdout().flush();
        report.push_str(&line);
        report.push('\n');
        if let Some(p) = &args.out {
            let _ = std::fs::write(p, &report);
        }
    };
    say("# GPU check".into());
    say(String::new());
    say(format!(
        "`gpu_check` built with features: {}; CubeCL autotuning {}; Burn's kernel fusion {}; CPU reference: ndarray, {} threads; tolerance {TOL:.0e} \
         (second-order α gradient {TOL_SECOND_ORDER:.0e}), relative to the largest CPU magnitude.",
        BackendKind::ALL
            .iter()
            .filter(|k| k.compiled())
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        if cfg!(feature = "autotune") {
            "on (`--features autotune`)"
        } else {
            "off (one fixed kernel per operation)"
        },
        if cfg!(feature = "fusion") {
            "on (`--features fusion`)"
        } else {
            "off"
        },
        rayon_threads()
    ));
    say(String::new());

    let script = args.torch_script.clone().unwrap_or_else(|| {
        let local = std::path::PathBuf::from("benches/pytorch/nas_bench.py");
        if local.exists() {
            local
        } else {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/pytorch/nas_bench.py"
            ))
        }
    });
    let torch = if args.no_torch {
        Err("skipped (--no-torch)".to_string())
    } else {
        torch_cuda()
    };
    say(format!(
        "PyTorch CUDA: {}. Autotuning level: {}.",
        match &torch {
            Ok(v) => format!("torch {v}"),
            Err(e) => format!("n/a ({e})"),
        },
        std::env::var("CUBECL_AUTOTUNE_LEVEL").unwrap_or_else(|_| "CubeCL's default".into())
    ));
    say(String::new());

    // Each backend's parity table, then its timings, so that a run stopped early keeps the
    // finished sections (the report file is rewritten after every line).
    let mut order: Vec<String> = args.backends.clone();
    for t in &args.time {
        if !order.contains(t) {
            order.push(t.clone());
        }
    }
    let mut failed = false;
    let mut any_ran = false;
    for name in &order {
        let kind = match name.parse::<BackendKind>() {
            Ok(k) => k,
            Err(e) => {
                say(format!("## {name}\n\n{e}\n"));
                continue;
            }
        };
        let cpu = matches!(kind, BackendKind::NdArray | BackendKind::Flex);
        if args.backends.contains(name) && !cpu && !args.no_parity {
            say(format!("## Parity with the CPU on {kind}"));
            say(String::new());
            let t = Instant::now();
            eprintln!("parity on {kind}...");
            let mut header = false;
            let mut report = |(check, o): (String, Outcome)| {
                if !header {
                    say("| check | result (largest relative difference) | elapsed s |".into());
                    say("| --- | --- | --- |".into());
                    header = true;
                }
                any_ran = true;
                failed |= !o.passed();
                eprintln!("  {check}: {:.0} s", t.elapsed().as_secs_f64());
                say(format!(
                    "| {check} | {} | {:.0} |",
                    o.cell(),
                    t.elapsed().as_secs_f64()
                ));
            };
            match run_on(
                kind,
                Parity {
                    report: &mut report,
                },
            ) {
                Err(e) => say(format!("unavailable: {e}")),
                Ok(()) => {
                    say(String::new());
                    say(format!("{:.0} s.", t.elapsed().as_secs_f64()));
                }
            }
            say(String::new());
        }
        if args.time.contains(name) {
            say(format!(
                "## Speed on {kind} (batch {}; operations: forward and backward on [batch, {}, {}, {}], \
                 median of {} after 2 warm-ups; steps: median of {} after 2 warm-up steps, the \
                 bi-level rows on a quarter of the batch)",
                args.batch,
                rows::C,
                rows::HW,
                rows::HW,
                args.reps,
                args.step_reps,
            ));
            say(String::new());
            let gpu = !cpu;
            eprintln!("timing on {kind}...");
            let ops = rows::OP_ROWS
                .iter()
                .filter(|_| !args.no_ops)
                .map(|&(r, w)| (r, w, false, args.reps));
            let steps = step_rows.iter().map(|&(r, w)| (r, w, true, args.step_reps));
            // PyTorch first, all rows of a kind in one process.
            let mut theirs = std::collections::HashMap::new();
            if gpu && torch.is_ok() {
                eprintln!("timing PyTorch CUDA...");
                let op_names: Vec<&str> = if args.no_ops {
                    Vec::new()
                } else {
                    rows::OP_ROWS.iter().map(|r| r.0).collect()
                };
                let step_names: Vec<&str> = step_rows.iter().map(|r| r.0).collect();
                theirs.extend(torch_rows(&script, &op_names, args.reps, &args));
                theirs.extend(torch_rows(&script, &step_names, args.step_reps, &args));
            }
            let mut header = false;
            let mut report = |(row, what, step, _reps): Row, r: Result<rows::Timed, String>| {
                if !header {
                    say("| row | what | ms | images/s | PyTorch CUDA ms | ours/PyTorch |".into());
                    say("| --- | --- | --- | --- | --- | --- |".into());
                    header = true;
                }
                any_ran |= gpu && r.is_ok();
                let (t, ratio) = match (&r, &theirs.get(row)) {
                    (Ok(o), Some(Ok(ms))) => (format!("{ms:.2}"), format!("{:.2}", o.ms / ms)),
                    (_, Some(Err(e))) => {
                        (format!("failed: {}", e.replace('|', "/")), String::new())
                    }
                    _ => ("n/a".into(), String::new()),
                };
                match r {
                    Ok(o) => {
                        let ips = if step {
                            format!(
                                "{:.0}",
                                rows::row_batch(row, args.batch) as f64 / (o.ms / 1e3)
                            )
                        } else {
                            String::new()
                        };
                        say(format!(
                            "| {row} | {what} | {:.2} | {ips} | {t} | {ratio} |",
                            o.ms
                        ));
                    }
                    Err(e) => {
                        failed = true;
                        say(format!(
                            "| {row} | {what} | **FAIL**: {} | | {t} | |",
                            e.replace('|', "/")
                        ));
                    }
                }
            };
            let timing = Timing {
                rows: ops.chain(steps).collect(),
                batch: args.batch,
                report: &mut report,
            };
            if let Err(e) = run_on(kind, timing) {
                say(format!("unavailable: {e}"));
            }
            say(String::new());
        }
    }
    say(format!(
        "Finished in {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    if !any_ran {
        eprintln!(
            "error: no GPU backend could run (see the table); build with `--features cuda,wgpu` \
             and run where an NVIDIA driver or a Vulkan adapter is present"
        );
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The size of the rayon pool the CPU backend uses.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}
