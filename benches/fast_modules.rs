//! A network of your own on the fast CPU path: the same 4-layer convolution chain written with
//! `burn::nn` layers and with `nas::supernet::nn` layers, trained step by step on the same
//! batches with the same weights, in one run, on the same backend and thread pool.
//!
//! ```text
//! cargo bench --bench fast_modules                   # batch 64, 14×14 inputs, 2 threads
//! cargo bench --bench fast_modules -- --threads 1 --steps 10
//! ```
//!
//! The network: four blocks of conv 3×3 (16, 32, 32, 64 channels, the 2nd and 4th with stride
//! 2) → batch norm → ReLU, global average pooling, a linear classifier; a Fashion-MNIST-sized
//! input (1 × 14 × 14, as the proxy tasks downsample it). One step is forward, cross-entropy,
//! backward and an SGD step (momentum 0.9), as `nas_supernet::train::fit` does. Both sides
//! start from the same parameters (the fast layers keep theirs in `burn::nn` modules, which are
//! copied into the plain network). Each row is the median of `--steps` timed steps after two
//! untimed ones. A plain `harness = false` program.

use std::time::Instant;

use clap::Parser;
use nas::supernet::backend::DefaultBackend;
use nas::supernet::burn;
use nas::supernet::network::seeded;
use nas::supernet::nn::{BatchNorm2d, BatchNorm2dConfig, Conv2d, Conv2dConfig};

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};

type B = DefaultBackend;

#[derive(Parser, Debug)]
#[command(about = "fast layers against burn::nn layers, one training step, images/s")]
struct Args {
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed steps per side (the median is printed).
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// Threads of the CPU backend's pool (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

const WIDTHS: [usize; 4] = [16, 32, 32, 64];
const STRIDES: [usize; 4] = [1, 2, 1, 2];

#[derive(Module, Debug)]
struct FastNet<B: Backend> {
    convs: Vec<Conv2d<B>>,
    bns: Vec<BatchNorm2d<B>>,
    head: Linear<B>,
}

#[derive(Module, Debug)]
struct PlainNet<B: Backend> {
    convs: Vec<burn::nn::conv::Conv2d<B>>,
    bns: Vec<BatchNorm<B>>,
    head: Linear<B>,
}

fn pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

impl<B: Backend> FastNet<B> {
    fn new(device: &B::Device) -> Self {
        let mut c_in = 1;
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for (w, s) in WIDTHS.into_iter().zip(STRIDES) {
            convs.push(
                Conv2dConfig::new([c_in, w], [3, 3])
                    .with_padding(1)
                    .with_stride(s)
                    .init(device),
            );
            bns.push(BatchNorm2dConfig::new(w).init(device));
            c_in = w;
        }
        Self {
            convs,
            bns,
            head: LinearConfig::new(c_in, 10).init(device),
        }
    }

    fn forward(&self, mut x: Tensor<B, 4>) -> Tensor<B, 2> {
        for (conv, bn) in self.convs.iter().zip(&self.bns) {
            x = relu(bn.forward(conv.forward(x)));
        }
        self.head.forward(pool(x))
    }

    /// The same parameters in Burn's layers.
    fn plain(&self) -> PlainNet<B> {
        PlainNet {
            convs: self.convs.iter().map(|c| c.conv.inner.clone()).collect(),
            bns: self.bns.iter().map(|b| b.inner.clone()).collect(),
            head: self.head.clone(),
        }
    }
}

impl<B: Backend> PlainNet<B> {
    fn forward(&self, mut x: Tensor<B, 4>) -> Tensor<B, 2> {
        for (conv, bn) in self.convs.iter().zip(&self.bns) {
            x = relu(bn.forward(conv.forward(x)));
        }
        self.head.forward(pool(x))
    }
}

/// Median seconds of one training step of `net` (forward by `forward`).
fn time_steps<Bk: AutodiffBackend, M: AutodiffModule<Bk>>(
    mut net: M,
    forward: impl Fn(&M, Tensor<Bk, 4>) -> Tensor<Bk, 2>,
    x: &Tensor<Bk, 4>,
    y: &Tensor<Bk, 1, Int>,
    steps: usize,
) -> f64 {
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .init::<Bk, M>();
    let loss_fn = CrossEntropyLossConfig::new().init(&x.device());
    let mut times = Vec::new();
    for i in 0..steps + 2 {
        let start = Instant::now();
        let loss = loss_fn.forward(forward(&net, x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.01, net, grads);
        // Wait for the backend (a read-back) before stopping the clock.
        let _ = net.clone().into_record();
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // SAFETY: no other thread exists yet; the rayon pool reads this when it starts.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let device = Default::default();
    let net = seeded(&device, 0, || {
        Ok::<_, std::convert::Infallible>(FastNet::<B>::new(&device))
    })
    .unwrap_or_else(|e| match e {});
    let plain = net.plain();
    let x = Tensor::<B, 4>::random(
        [args.batch, 1, 14, 14],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let y = Tensor::<B, 1, Int>::from_data(
        burn::tensor::TensorData::new(
            (0..args.batch as i64).map(|i| i % 10).collect::<Vec<_>>(),
            [args.batch],
        ),
        &device,
    );
    println!(
        "backend: ndarray (CPU), {threads} thread(s) on both sides (RAYON_NUM_THREADS); batch {}, input 1×14×14, conv widths {WIDTHS:?}, strides {STRIDES:?}; median of {} steps",
        args.batch, args.steps
    );
    let fast = time_steps(net, |n, x| n.forward(x), &x, &y, args.steps);
    let reference = time_steps(plain, |n, x| n.forward(x), &x, &y, args.steps);
    let ips = |s: f64| args.batch as f64 / s;
    println!("| network | step (ms) | images/s |");
    println!("| --- | --- | --- |");
    println!(
        "| `burn::nn` layers (reference) | {:.1} | {:.0} |",
        reference * 1e3,
        ips(reference)
    );
    println!(
        "| `nas::supernet::nn` layers | {:.1} | {:.0} |",
        fast * 1e3,
        ips(fast)
    );
    println!(
        "fast / reference time: {:.2}× ({:.1}× the images/s)",
        fast / reference,
        reference / fast
    );
}
