//! Same inputs, same results, whatever the number of threads: the CPU kernels split their work
//! in fixed chunks (images, planes, channels) and add partial sums in a fixed order, so a
//! training step on 1, 2 or 3 threads gives bit-for-bit the same outputs and gradients.
//!
//! The networks cover every kernel: dense convolutions (the im2col path, and the direct
//! weight-gradient kernel of stride-1 convolutions on planes of 128 positions or more),
//! depthwise convolutions, average and max pooling, batch norm alone and fused with ReLU and
//! ReLU6, the factorized reduction.

#![cfg(feature = "ndarray")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};
use nas_space::nb201::Nb201Arch;
use nas_supernet::backend::DefaultBackend as B;
use nas_supernet::burn;
use nas_supernet::nb201_net::Nb201NetConfig;
use nas_supernet::ops::{FactorizedReduce, MbConv};
use nas_supernet::{Classifier, fast};

type Grads = <B as AutodiffBackend>::Gradients;

/// The gradient of every parameter of `module`, in visiting order.
fn gradients<M: Module<B>>(module: &M, grads: &Grads) -> Vec<Vec<f32>> {
    struct Collect<'a>(&'a Grads, Vec<Vec<f32>>);
    impl ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = param.val().grad(self.0) {
                self.1.push(g.into_data().to_vec::<f32>().unwrap());
            }
        }
    }
    let mut collect = Collect(grads, Vec::new());
    module.visit(&mut collect);
    collect.1
}

/// Output and gradients (parameters, then the input) of `f` on `x` for the linear functional
/// `Σ f(x) · probe`, computed on a rayon pool of `threads` threads.
fn run<M: Module<B> + Sync>(
    threads: usize,
    module: &M,
    x: &Tensor<B, 4>,
    f: impl Fn(&M, Tensor<B, 4>) -> Tensor<B, 2> + Send + Sync,
) -> Vec<Vec<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| {
        let x = x.clone().detach().require_grad();
        let y = f(module, x.clone());
        // A fixed pattern, not the random generator's state.
        let [a, b] = y.dims();
        let probe = Tensor::<B, 1, Int>::arange(0..(a * b) as i64, &x.device())
            .float()
            .reshape([a, b])
            .sin();
        let grads = (y.clone() * probe).sum().backward();
        let mut all = vec![y.into_data().to_vec::<f32>().unwrap()];
        all.extend(gradients(module, &grads));
        all.push(x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap());
        all
    })
}

fn assert_same_on_1_2_3_threads<M: Module<B> + Sync>(
    label: &str,
    module: &M,
    x: &Tensor<B, 4>,
    f: impl Fn(&M, Tensor<B, 4>) -> Tensor<B, 2> + Send + Sync + Copy,
) {
    let one = run(1, module, x, f);
    assert!(one.len() > 2, "{label}: no parameter gradient");
    for threads in [2, 3] {
        let many = run(threads, module, x, f);
        assert_eq!(one.len(), many.len(), "{label}: tensor count");
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            let same =
                a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(
                same,
                "{label}: tensor {i} differs between 1 and {threads} threads"
            );
        }
    }
}

#[test]
fn nb201_network_is_independent_of_the_thread_count() {
    let device = Default::default();
    let arch: Nb201Arch =
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
            .parse()
            .unwrap();
    let config = Nb201NetConfig {
        channels: 8,
        cells_per_stage: 1,
        in_channels: 3,
        num_classes: 10,
    };
    let net = config.init::<B>(&arch, &device).unwrap();
    let x = Tensor::<B, 4>::random([6, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    assert_same_on_1_2_3_threads("NB201", &net, &x, |net, x| net.logits(x));
}

/// An inverted bottleneck (1×1, BN + ReLU6, depthwise 3×3, BN + ReLU6, 1×1, BN), max pooling,
/// a factorized reduction (ReLU, two stride-2 1×1 convolutions, BN), global pooling.
/// (Burn's `Module` derive expects the backend parameter to be called `B`.)
#[derive(Module, Debug)]
struct Blocks<B: Backend> {
    mbconv: MbConv<B>,
    reduce: FactorizedReduce<B>,
}

#[test]
fn mobile_blocks_and_pooling_are_independent_of_the_thread_count() {
    let device = Default::default();
    let blocks = Blocks::<B> {
        mbconv: MbConv::new(8, 8, 3, 1, 6, &device),
        reduce: FactorizedReduce::new(8, 16, &device),
    };
    let x = Tensor::<B, 4>::random([5, 8, 16, 16], Distribution::Normal(0.0, 2.0), &device);
    assert_same_on_1_2_3_threads(
        "MBConv, max pool, factorized reduce",
        &blocks,
        &x,
        |b, x| {
            let pool = MaxPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init();
            let y = fast::max_pool2d(&pool, b.mbconv.forward(x));
            let y = b.reduce.forward(y);
            y.mean_dim(3).mean_dim(2).flatten(1, 3)
        },
    );
}
