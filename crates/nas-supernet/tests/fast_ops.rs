//! The decomposed convolutions equal Burn's own, forward and backward, on random inputs of
//! several shapes, kernels, strides and dilations.

use burn::tensor::{Distribution, Tensor};
use nas_supernet::backend::DefaultBackend as B;
use nas_supernet::fast::{Conv, ConvGeometry, conv2d, depthwise_conv2d};

fn max_diff(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    let a = a.into_data().to_vec::<f32>().unwrap();
    let b = b.into_data().to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
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
    )
    .require_grad();
    let w = conv.inner.weight.val();

    let native = conv.inner.forward(x.clone());
    let ours = if depthwise {
        depthwise_conv2d(x.clone(), w.clone(), g)
    } else {
        conv2d(x.clone(), w.clone(), g)
    };
    let label = format!(
        "n{n} {c_in}->{c_out} {hw}x{} k{k} s{stride} d{dilation} dw{depthwise}",
        hw + 1
    );
    assert_eq!(native.dims(), ours.dims(), "{label}");
    assert!(
        max_diff(native.clone(), ours.clone()) < 1e-4,
        "forward {label}"
    );

    // Gradients of a random linear functional, for the input and the weight.
    let probe = Tensor::<B, 4>::random(native.dims(), Distribution::Normal(0.0, 1.0), &device);
    let gn = (native * probe.clone()).sum().backward();
    let go = (ours * probe).sum().backward();
    let (xn, xo) = (x.grad(&gn).unwrap(), x.grad(&go).unwrap());
    let (wn, wo) = (w.grad(&gn).unwrap(), w.grad(&go).unwrap());
    let dx = max_diff(Tensor::from_inner(xn), Tensor::from_inner(xo));
    let dw = max_diff(Tensor::from_inner(wn), Tensor::from_inner(wo));
    assert!(
        dx < 1e-3 && dw < 1e-3,
        "gradients {label}: dx {dx}, dw {dw}"
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
            let w = conv.inner.weight.val();
            let native = conv.inner.forward(x.clone());
            let ours = if groups == 1 {
                conv2d(x, w, geometry)
            } else {
                depthwise_conv2d(x, w, geometry)
            };
            assert_eq!(
                native.dims(),
                ours.dims(),
                "{kernel:?} {stride:?} g{groups}"
            );
            assert!(
                max_diff(native, ours) < 1e-4,
                "{kernel:?} {stride:?} g{groups}"
            );
        }
    }
}
