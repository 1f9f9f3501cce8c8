//! The timed rows shared by `benches/ops.rs` and `examples/gpu_check.rs`, so both time
//! exactly the work that `benches/pytorch/nas_bench.py` does for the same row names.
//!
//! Operation rows ([`OP_ROWS`]): forward and backward of `(op(x) * probe).sum()` on a random
//! `[batch, 16, 32, 32]` input that requires a gradient (the DARTS search network's first stage).
//!
//! Step rows ([`STEP_ROWS`]):
//! - `nb201_step`: the NAS-Bench-201 network of the published best cell (C = 16, N = 5);
//! - `darts_step`: the DARTS V2 genotype at search size (C = 16, 8 cells);
//!
//! both on a batch of 32×32 RGB images: forward, cross-entropy, backward, clipping at global
//! norm 5, SGD with Nesterov momentum 0.9 and weight decay 5e-4, as `nas_supernet::train::fit`;
//! - `darts_bilevel_step` / `darts_bilevel_step2`: one first / second-order DARTS search step
//!   (alphas on a validation batch, then the weights on a training batch; DARTS' optimizers) of
//!   the search network at C = 8, 5 cells, 4 nodes, on 16×16 inputs and a quarter of the batch.

use std::time::Instant;

use nas::space::darts::{DartsOp, darts_v2};
use nas::space::nb201::Nb201Arch;
use nas::supernet::burn;
use nas::supernet::darts_net::{DartsNetConfig, darts_op_kind};
use nas::supernet::darts_search::mixed::{EdgeWeights, MixedOp};
use nas::supernet::darts_search::supernet::DartsSupernetConfig;
use nas::supernet::darts_search::{
    EpochPlan, Method, SearchConfig, Searcher, StepContext, SupernetConfig,
};
use nas::supernet::data::ImageBatch;
use nas::supernet::fast::Conv;
use nas::supernet::grad::ClipGlobalNorm;
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::network::{Classifier, count_params};
use nas::supernet::ops::{OpConfig, OpKind};

use burn::module::AutodiffModule;
use burn::nn::BatchNormConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Distribution, Int, Tensor};

/// The published best NAS-Bench-201 cell (the one `nb201_step` trains).
pub const NB201_BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
/// Height and width of the rows' inputs (the bi-level rows use half).
pub const HW: usize = 32;
/// Channels of the operation rows' input.
pub const C: usize = 16;

/// The operation rows: name (shared with the PyTorch script) and description.
pub const OP_ROWS: &[(&str, &str)] = &[
    // The fixed cost of every operation row: the probe product, the sum and their backward
    // passes around an identity.
    (
        "harness",
        "no operation: `(x · probe).sum()` and its backward alone",
    ),
    ("conv3x3", "conv 3×3, 16→16"),
    ("conv1x1", "conv 1×1, 16→16"),
    ("depthwise3x3", "depthwise 3×3"),
    ("dilated3x3_d2", "depthwise 3×3, dilation 2"),
    ("nor_conv_3x3", "ReLU-conv 3×3-BN (NB201)"),
    ("nor_conv_1x1", "ReLU-conv 1×1-BN (NB201)"),
    ("sep_conv_3x3", "sep_conv_3x3 (DARTS)"),
    ("sep_conv_5x5", "sep_conv_5x5 (DARTS)"),
    ("dil_conv_3x3", "dil_conv_3x3 (DARTS)"),
    ("avg_pool_3x3", "avg pool 3×3 (pad excluded)"),
    ("max_pool_3x3", "max pool 3×3"),
    ("batch_norm", "batch norm (training)"),
    ("factorized_reduce", "factorized reduce 16→32, /2"),
    ("mbconv_3x3_e6", "MBConv 3×3, expansion 6"),
    ("mixed_op", "DARTS MixedOp (8 candidates)"),
];

type OpFn<B> = Box<dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>>;

/// The module of an operation row, its input channels and parameter count.
pub fn op_module<B: AutodiffBackend>(name: &str, device: &Device<B>) -> Option<(OpFn<B>, usize)> {
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
        "harness" => Some((Box::new(|x| x), 0)),
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

/// Times operation row `row` (one of [`OP_ROWS`]): forward and backward of
/// `(op(x) * probe).sum()` on a random `[batch, C, HW, HW]` input that requires a gradient.
/// `None` for an unknown row.
pub fn time_op_row<B: AutodiffBackend>(
    row: &str,
    batch: usize,
    warmup: usize,
    reps: usize,
    cpu_time: bool,
    device: &Device<B>,
) -> Option<Timed> {
    let (f, params) = op_module::<B>(row, device)?;
    let x = Tensor::<B, 4>::random([batch, C, HW, HW], Distribution::Normal(0.0, 1.0), device)
        .require_grad();
    let probe_shape = f(x.clone().detach()).dims();
    let probe = Tensor::<B, 4>::random(probe_shape, Distribution::Default, device);
    let ms = median_ms(warmup, reps, cpu_time, || {
        let grads = (f(x.clone()) * probe.clone()).sum().backward();
        drop(grads);
        let _ = B::sync(device);
    });
    Some(Timed { ms, params })
}

/// The step rows: name (shared with the PyTorch script) and description.
pub const STEP_ROWS: &[(&str, &str)] = &[
    ("nb201_step", "NB201 best cell, C=16, N=5"),
    ("darts_step", "DARTS V2, C=16, 8 cells"),
    (
        "darts_bilevel_step",
        "DARTS supernet bi-level step, 1st order (C=8, 5 cells, 16×16, batch/4)",
    ),
    (
        "darts_bilevel_step2",
        "DARTS supernet bi-level step, 2nd order (C=8, 5 cells, 16×16, batch/4)",
    ),
];

/// A timed row: median milliseconds per step and the model's parameter count.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub ms: f64,
    pub params: usize,
}

/// The images per step of a row: the bi-level rows run a quarter of the batch.
pub fn row_batch(row: &str, batch: usize) -> usize {
    if row.starts_with("darts_bilevel_step") {
        (batch / 4).max(1)
    } else {
        batch
    }
}

/// CPU time of this process so far (all its threads), in seconds, from the scheduler's
/// per-thread statistics.
pub fn cpu_seconds() -> f64 {
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
pub fn median_ms(warmup: usize, reps: usize, cpu: bool, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let start = Instant::now();
    let now = || {
        if cpu {
            cpu_seconds()
        } else {
            start.elapsed().as_secs_f64()
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

/// Times step row `row` (one of [`STEP_ROWS`]) on `device` with `batch` images: `warmup`
/// untimed steps, the median of `reps`. `None` for an unknown row or a failed step.
pub fn time_step_row<B: AutodiffBackend>(
    row: &str,
    batch: usize,
    warmup: usize,
    reps: usize,
    cpu_time: bool,
    device: &Device<B>,
) -> Option<Timed> {
    let sync = || {
        let _ = B::sync(device);
    };
    let images =
        || Tensor::<B, 4>::random([batch, 3, HW, HW], Distribution::Normal(0.0, 1.0), device);
    let targets = || Tensor::<B, 1, Int>::random([batch], Distribution::Uniform(0.0, 10.0), device);
    let t = (warmup, reps, cpu_time);
    match row {
        "nb201_step" => {
            let arch: Nb201Arch = NB201_BEST.parse().ok()?;
            let model = Nb201NetConfig::default().init::<B>(&arch, device).ok()?;
            Some(time_steps(model, images(), targets(), t, sync))
        }
        "darts_step" => {
            let model = DartsNetConfig::search()
                .init::<B>(&darts_v2(), device)
                .ok()?;
            Some(time_steps(model, images(), targets(), t, sync))
        }
        "darts_bilevel_step" => bilevel_step::<B>(1, batch, t, device, sync),
        "darts_bilevel_step2" => bilevel_step::<B>(2, batch, t, device, sync),
        _ => None,
    }
}

/// The DARTS search network of the bi-level rows: C = 8, 5 cells, 4 nodes, 3 input channels,
/// 10 classes (`benches/pytorch/darts_step.py`'s `DartsNetwork(8, 10, 5, 4, 3)`).
pub fn bilevel_supernet() -> SupernetConfig {
    SupernetConfig::Darts(DartsSupernetConfig {
        channels: 8,
        layers: 5,
        steps: 4,
        stem_multiplier: 3,
        in_channels: 3,
        num_classes: 10,
    })
}

/// Times DARTS search steps of order `order` (alphas on a validation batch, then the weights
/// on a training batch; DARTS' optimizers) of the search network at C = 8, 5 cells, 4 nodes,
/// on 16×16 inputs, as `benches/pytorch/darts_step.py` does.
fn bilevel_step<B: AutodiffBackend>(
    order: u8,
    batch: usize,
    (warmup, reps, cpu_time): (usize, usize, bool),
    device: &Device<B>,
    sync: impl Fn(),
) -> Option<Timed> {
    let space = bilevel_supernet();
    let n = row_batch("darts_bilevel_step", batch);
    let config = SearchConfig {
        method: Method::from_name(if order == 2 { "darts2" } else { "darts" }).ok()?,
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
    let ms = median_ms(warmup, reps, cpu_time, || {
        failed |= s.step(&train, &valid, &ctx).is_err();
        sync();
    });
    (!failed).then_some(Timed { ms, params })
}

/// Times training steps of `model` as `train::fit` runs them (SGD with Nesterov momentum,
/// weight decay, clipping at global norm 5 as PyTorch's `clip_grad_norm_`).
fn time_steps<B: AutodiffBackend, M>(
    model: M,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    (warmup, reps, cpu_time): (usize, usize, bool),
    sync: impl Fn(),
) -> Timed
where
    M: AutodiffModule<B> + Classifier<B>,
{
    let params = count_params(&model);
    let mut momentum = MomentumConfig::new().with_momentum(0.9).with_dampening(0.0);
    momentum.nesterov = true;
    let sgd = SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init::<B, M>();
    let mut optim = ClipGlobalNorm::new(sgd, Some(5.0));
    let loss_fn = CrossEntropyLossConfig::new().init(&images.device());
    let mut model = Some(model);
    let ms = median_ms(warmup, reps, cpu_time, || {
        let m = model
            .take()
            .unwrap_or_else(|| unreachable!("put back every step"));
        let loss = loss_fn.forward(m.logits(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(0.025, m, grads));
        sync();
    });
    Timed { ms, params }
}
