//! The fast operations equal plain Burn, forward and backward, on random inputs of several
//! shapes, kernels, strides and dilations: the convolutions (the `ndarray` kernels and the
//! tensor-operation decomposition other backends use) against Burn's `conv2d`, the fused
//! ReLU → convolution against ReLU then Burn's `conv2d`, and batch norm against Burn's
//! `BatchNorm` (output, gradients and running statistics), pooling against Burn's pooling
//! modules.

use burn::backend::NdArray;
use burn::module::Param;
use burn::nn::BatchNormConfig;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, ElementConversion, Tensor};
use nas_supernet::backend::DefaultBackend as B;
use nas_supernet::burn;
use nas_supernet::fast::{
    Conv, ConvGeometry, avg_pool2d, batch_norm, batch_norm_relu, batch_norm_relu6, conv2d,
    conv2d_tensor_ops, depthwise_conv2d, depthwise_conv2d_tensor_ops, max_pool2d, relu_conv2d,
    relu_depthwise_conv2d,
};

fn max_diff<BE: Backend, const D: usize>(a: Tensor<BE, D>, b: Tensor<BE, D>) -> f32 {
    let a = a.into_data().to_vec::<f32>().unwrap();
    let b = b.into_data().to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

type ConvFn = fn(Tensor<B, 4>, Tensor<B, 4>, ConvGeometry) -> Tensor<B, 4>;

/// Output, input gradient and weight gradient of `f` against Burn's convolution (after a ReLU
/// when `relu_first`), for the gradient of a random linear functional.
fn compare(
    conv: &Conv<B>,
    x: Tensor<B, 4>,
    g: ConvGeometry,
    f: ConvFn,
    relu_first: bool,
    label: &str,
) {
    // Fresh leaves per comparison: clones of one tensor (or of a parameter) share its
    // autodiff node, and Burn frees a node's graph after the first backward pass through it.
    let device = x.device();
    let x = Tensor::<B, 4>::from_data(x.to_data(), &device).require_grad();
    let w = Tensor::<B, 4>::from_data(conv.inner.weight.val().to_data(), &device).require_grad();
    let [_, c_in, _, _] = x.dims();
    let [_, per_group, _, _] = w.dims();
    let options = ConvOptions::new(g.stride, g.padding, g.dilation, c_in / per_group);
    let input = if relu_first {
        relu(x.clone())
    } else {
        x.clone()
    };
    let reference = burn::tensor::module::conv2d(input, w.clone(), None, options);
    let ours = f(x.clone(), w.clone(), g);
    assert_eq!(reference.dims(), ours.dims(), "{label}");
    let d = max_diff(reference.clone(), ours.clone());
    assert!(d < 1e-4, "forward {label}: {d}");

    let probe = Tensor::<B, 4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &x.device());
    let gr = (reference * probe.clone()).sum().backward();
    let go = (ours * probe).sum().backward();
    let grad = |t: &Tensor<B, 4>,
                g: &<B as burn::tensor::backend::AutodiffBackend>::Gradients,
                what: &str| {
        t.grad(g)
            .unwrap_or_else(|| panic!("no {what} gradient: {label}"))
    };
    let dx = max_diff(grad(&x, &gr, "reference x"), grad(&x, &go, "x"));
    let dw = max_diff(grad(&w, &gr, "reference w"), grad(&w, &go, "w"));
    assert!(
        dx < 1e-3 && dw < 1e-3,
        "gradients {label}: dx {dx}, dw {dw}"
    );
}

#[allow(clippy::too_many_arguments)]
fn check(
    n: usize,
    c_in: usize,
    c_out: usize,
    hw: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    depthwise: bool,
) {
    let device = Default::default();
    let groups = if depthwise { c_in } else { 1 };
    let conv = Conv::<B>::new(c_in, c_out, k, stride, dilation, groups, &device);
    let g = ConvGeometry::square(stride, dilation * (k - 1) / 2, dilation);
    let x = Tensor::<B, 4>::random(
        [n, c_in, hw, hw + 1],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let label = format!(
        "n{n} {c_in}->{c_out} {hw}x{} k{k} s{stride} d{dilation} dw{depthwise}",
        hw + 1
    );
    let fns: [(ConvFn, bool, &str); 3] = if depthwise {
        [
            (depthwise_conv2d, false, "kernels"),
            (depthwise_conv2d_tensor_ops, false, "tensor ops"),
            (relu_depthwise_conv2d, true, "relu fused"),
        ]
    } else {
        [
            (conv2d, false, "kernels"),
            (conv2d_tensor_ops, false, "tensor ops"),
            (relu_conv2d, true, "relu fused"),
        ]
    };
    for (f, relu_first, what) in fns {
        compare(
            &conv,
            x.clone(),
            g,
            f,
            relu_first,
            &format!("{label} {what}"),
        );
    }
    // A non-contiguous input (a slice of a wider tensor) takes the same path.
    let wide = Tensor::<B, 4>::random(
        [n, c_in, hw + 2, hw + 3],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let sliced = wide.slice([0..n, 0..c_in, 1..hw + 1, 2..hw + 3]);
    compare(
        &conv,
        sliced,
        g,
        fns[0].0,
        false,
        &format!("{label} sliced"),
    );
}

#[test]
fn dense_convolutions_match_burn() {
    for &(n, ci, co, hw, k, s, d) in &[
        (2, 3, 5, 7, 3, 1, 1),
        (2, 4, 4, 8, 3, 2, 1),
        (1, 4, 6, 9, 1, 1, 1),
        (3, 4, 4, 8, 1, 2, 1),
        (2, 2, 3, 9, 5, 1, 1),
        (2, 3, 3, 10, 3, 1, 2),
        (1, 3, 2, 11, 5, 2, 2),
        (9, 5, 7, 6, 3, 1, 1),
    ] {
        check(n, ci, co, hw, k, s, d, false);
    }
}

#[test]
fn depthwise_convolutions_match_burn() {
    for &(n, c, hw, k, s, d) in &[
        (2, 4, 7, 3, 1, 1),
        (2, 3, 8, 3, 2, 1),
        (1, 5, 9, 5, 1, 1),
        (2, 4, 10, 3, 1, 2),
        (1, 2, 11, 5, 2, 2),
        (9, 3, 6, 3, 1, 1),
    ] {
        check(n, c, c, hw, k, s, d, true);
    }
}

#[test]
fn rectangular_kernels_match_burn() {
    let device = Default::default();
    for &(kernel, stride, dilation) in &[
        ([1, 7], [1, 2], [1, 1]),
        ([7, 1], [2, 1], [1, 1]),
        ([3, 5], [1, 1], [2, 1]),
        ([3, 3], [1, 1], [6, 3]),
    ] {
        let geometry = ConvGeometry {
            stride,
            padding: [
                dilation[0] * (kernel[0] - 1) / 2,
                dilation[1] * (kernel[1] - 1) / 2,
            ],
            dilation,
        };
        for groups in [1, 3] {
            let conv = Conv::<B>::with_geometry([3, 3], kernel, geometry, groups, &device);
            let x = Tensor::<B, 4>::random([2, 3, 9, 11], Distribution::Normal(0.0, 1.0), &device);
            let f: ConvFn = if groups == 1 {
                conv2d
            } else {
                depthwise_conv2d
            };
            compare(
                &conv,
                x,
                geometry,
                f,
                false,
                &format!("{kernel:?} {stride:?} g{groups}"),
            );
        }
    }
}

#[test]
fn inference_backend_matches_burn() {
    // Plain `NdArray` (no autodiff): the forward kernels, against Burn's convolution.
    type I = NdArray;
    let device = Default::default();
    for (k, stride, groups) in [(3, 1, 1), (1, 2, 1), (3, 2, 4), (5, 1, 4)] {
        let conv = Conv::<I>::new(4, 4, k, stride, 1, groups, &device);
        let x = Tensor::<I, 4>::random([3, 4, 9, 8], Distribution::Normal(0.0, 1.0), &device);
        let d = max_diff(conv.inner.forward(x.clone()), conv.forward(x));
        assert!(d < 1e-4, "k{k} s{stride} g{groups}: {d}");
    }
}

/// The activation after a batch norm: ours (fused) and the plain Burn reference.
#[derive(Clone, Copy, Debug)]
enum Act {
    None,
    Relu,
    Relu6,
}

#[test]
fn batch_norm_matches_burn() {
    check_batch_norm(Act::None);
}

/// `batch_norm_relu` and `batch_norm_relu6` (one fused operation on the `ndarray` backend)
/// against Burn's `BatchNorm` followed by `relu` and `clamp(0, 6)`: output, gradients of the
/// input, gamma and beta, running statistics.
#[test]
fn fused_batch_norm_activations_match_burn() {
    check_batch_norm(Act::Relu);
    check_batch_norm(Act::Relu6);
}

fn check_batch_norm(act: Act) {
    let device = Default::default();
    // Outputs at ReLU6's upper bound, over all shapes: the upper gate must be exercised.
    let mut clipped = 0;
    for &[n, c, h, w] in &[[4, 3, 5, 6], [1, 2, 3, 3], [16, 8, 4, 4]] {
        let label = format!("{act:?} {n}x{c}x{h}x{w}");
        // Two modules with the same non-trivial affine parameters (clones would share their
        // running statistics). Gammas from 0.5 to 7.5 put a share of ReLU6's inputs above 6.
        let gammas: Vec<f32> = (0..c).map(|i| 0.5 + 7.0 * i as f32 / c as f32).collect();
        let gamma = Tensor::<B, 1>::from_floats(gammas.as_slice(), &device);
        let beta = Tensor::<B, 1>::random([c], Distribution::Uniform(-1.0, 1.0), &device);
        let make = || {
            let mut bn = BatchNormConfig::new(c).init::<B>(&device);
            bn.gamma = Param::from_tensor(Tensor::from_data(gamma.to_data(), &device));
            bn.beta = Param::from_tensor(Tensor::from_data(beta.to_data(), &device));
            bn
        };
        let (reference, bn) = (make(), make());
        let x = Tensor::<B, 4>::random([n, c, h, w], Distribution::Normal(1.0, 2.0), &device)
            .require_grad();

        let (ya, yb) = match act {
            Act::None => (reference.forward(x.clone()), batch_norm(&bn, x.clone())),
            Act::Relu => (
                relu(reference.forward(x.clone())),
                batch_norm_relu(&bn, x.clone()),
            ),
            Act::Relu6 => (
                reference.forward(x.clone()).clamp(0.0, 6.0),
                batch_norm_relu6(&bn, x.clone()),
            ),
        };
        let d = max_diff(ya.clone(), yb.clone());
        assert!(d < 1e-4, "forward {label}: {d}");
        let above: i64 = ya
            .clone()
            .greater_elem(5.999)
            .int()
            .sum()
            .into_scalar()
            .elem();
        clipped += above;

        let probe = Tensor::<B, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let ga = (ya * probe.clone()).sum().backward();
        let gb = (yb * probe).sum().backward();
        let dx = max_diff(x.grad(&ga).unwrap(), x.grad(&gb).unwrap());
        let dg = max_diff(
            reference.gamma.val().grad(&ga).unwrap(),
            bn.gamma.val().grad(&gb).unwrap(),
        );
        let db = max_diff(
            reference.beta.val().grad(&ga).unwrap(),
            bn.beta.val().grad(&gb).unwrap(),
        );
        assert!(
            dx < 1e-3 && dg < 1e-3 && db < 1e-3,
            "gradients {label}: dx {dx}, dgamma {dg}, dbeta {db}"
        );

        let rm = max_diff(reference.running_mean.value(), bn.running_mean.value());
        let rv = max_diff(reference.running_var.value(), bn.running_var.value());
        assert!(
            rm < 1e-5 && rv < 1e-4,
            "running statistics {label}: {rm}, {rv}"
        );
    }
    if let Act::Relu6 = act {
        assert!(
            clipped > 0,
            "no output clipped at 6: the upper gate is untested"
        );
    }
}

/// Inside `with_batch_statistics`, an inference-mode batch norm normalizes by the batch's own
/// statistics, as a training-mode one does, and leaves the running statistics as they were;
/// outside it uses them again.
#[test]
fn batch_statistics_in_inference() {
    use burn::module::AutodiffModule;
    let device = Default::default();
    let c = 3;
    let mut bn = BatchNormConfig::new(c).init::<B>(&device);
    bn.gamma = Param::from_tensor(Tensor::from_floats([0.5, 1.0, 2.0], &device));
    bn.beta = Param::from_tensor(Tensor::from_floats([-1.0, 0.0, 1.0], &device));
    let x = Tensor::<B, 4>::random([8, c, 4, 5], Distribution::Normal(3.0, 2.0), &device);
    // Training mode (autodiff): batch statistics, and the running ones move.
    let trained = bn.forward(x.clone());
    let inner = bn.valid();
    let running = (inner.running_mean.value(), inner.running_var.value());
    let xi = x.inner();
    let by_running = batch_norm(&inner, xi.clone());
    let by_batch = nas_supernet::fast::with_batch_statistics(|| batch_norm(&inner, xi.clone()));
    let d = max_diff(by_batch, trained.inner());
    assert!(
        d < 1e-4,
        "batch statistics in inference against training mode: {d}"
    );
    // Running statistics of a single step are far from this batch's (mean 3, variance 4):
    // the outputs differ.
    assert!(max_diff(by_running.clone(), batch_norm(&inner, xi.clone())) < 1e-6);
    let d = max_diff(
        by_running,
        nas_supernet::fast::with_batch_statistics(|| batch_norm(&inner, xi.clone())),
    );
    assert!(
        d > 0.1,
        "running and batch statistics gave the same output ({d})"
    );
    assert!(max_diff(inner.running_mean.value(), running.0) == 0.0);
    assert!(max_diff(inner.running_var.value(), running.1) == 0.0);
}

/// Output and input gradient of `ours` against `reference` on `x`.
fn compare_unary(
    x: Tensor<B, 4>,
    reference: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ours: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
    label: &str,
) {
    let x = Tensor::<B, 4>::from_data(x.to_data(), &x.device()).require_grad();
    let (ya, yb) = (reference(x.clone()), ours(x.clone()));
    assert_eq!(ya.dims(), yb.dims(), "{label}");
    let d = max_diff(ya.clone(), yb.clone());
    assert!(d < 1e-5, "forward {label}: {d}");
    let probe = Tensor::<B, 4>::random(ya.dims(), Distribution::Normal(0.0, 1.0), &x.device());
    let ga = (ya * probe.clone()).sum().backward();
    let gb = (yb * probe).sum().backward();
    let dx = max_diff(x.grad(&ga).unwrap(), x.grad(&gb).unwrap());
    assert!(dx < 1e-5, "gradient {label}: {dx}");
}

#[test]
fn pooling_matches_burn() {
    let device = Default::default();
    for &(k, s, p, hw) in &[
        (3, 1, 1, 7),
        (3, 2, 1, 8),
        (3, 2, 1, 7),
        (2, 2, 0, 8),
        (5, 1, 2, 6),
    ] {
        let x = Tensor::<B, 4>::random([3, 4, hw, hw + 1], Distribution::Normal(0.0, 1.0), &device);
        let padding = PaddingConfig2d::Explicit(p, p, p, p);
        for include_pad in [false, true] {
            let pool = AvgPool2dConfig::new([k, k])
                .with_strides([s, s])
                .with_padding(padding.clone())
                .with_count_include_pad(include_pad)
                .init();
            compare_unary(
                x.clone(),
                |x| pool.forward(x),
                |x| avg_pool2d(&pool, x),
                &format!("avg k{k} s{s} p{p} {hw} include_pad {include_pad}"),
            );
        }
        let pool = MaxPool2dConfig::new([k, k])
            .with_strides([s, s])
            .with_padding(padding)
            .init();
        compare_unary(
            x.clone(),
            |x| pool.forward(x),
            |x| max_pool2d(&pool, x),
            &format!("max k{k} s{s} p{p} {hw}"),
        );
    }
}
