//! The memory of a binarized (single- or two-path) step does not grow with the number of
//! candidate operations, while a DARTS-style all-paths step does, and it stays within 1.5× of
//! training the chosen child network alone (ProxylessNAS' point). Measured with the counting
//! allocator; this binary holds one test so that nothing else allocates meanwhile.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use nas_space::proxyless::{MbConvChoice, ProxylessConfig, ProxylessSpace};
use nas_supernet::backend::DefaultBackend;
use nas_supernet::chain_net::ChainNetConfig;
use nas_supernet::network::{Classifier, seeded};
use nas_supernet::oneshot::ProxylessSupernet;
use nas_supernet::oneshot::gates::GatePair;
use nas_supernet::oneshot::memory::PeakAlloc;
use nas_supernet::oneshot::proxyless::gate_gradients;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

mod support;

type B = DefaultBackend;

fn space(kernels: Vec<u8>, expansions: Vec<u8>) -> ProxylessSpace {
    ProxylessSpace::new(ProxylessConfig {
        kernels,
        expansions,
        allow_zero: false,
        ..support::tiny_proxyless_config()
    })
    .unwrap()
}

/// Peak bytes of (single-path step, two-path step, all-paths step, the child's step), each the
/// second of two runs.
fn steps(space: &ProxylessSpace) -> (usize, usize, usize, usize) {
    let device = Default::default();
    let config = ChainNetConfig::new(1, 4).with_stem_stride(1);
    let net: ProxylessSupernet<B> =
        seeded(&device, 0, || config.proxyless_supernet(space, &device)).unwrap();
    let x = Tensor::<B, 4>::random([16, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<B, 1, Int>::from_data(
        TensorData::new((0..16i64).map(|i| i % 4).collect::<Vec<_>>(), [16]),
        &device,
    );
    // The same two choices in both spaces: 3x3_MBConv3 active, 5x5_MBConv3 inactive.
    let index =
        |l: usize, c: MbConvChoice| space.layer_choices(l).iter().position(|&x| x == c).unwrap();
    let (a, b) = (MbConvChoice::mb_conv(3, 3), MbConvChoice::mb_conv(5, 3));
    let path: Vec<usize> = (0..space.num_layers()).map(|l| index(l, a)).collect();
    let pairs: Vec<GatePair> = (0..space.num_layers())
        .map(|l| GatePair {
            active: index(l, a),
            inactive: Some(index(l, b)),
        })
        .collect();
    let loss = |logits| {
        CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, y.clone())
    };
    let measure = |f: &dyn Fn()| {
        f();
        PeakAlloc::measure(f).1
    };
    let single = measure(&|| {
        let l = loss(net.forward_indices(x.clone(), &path));
        let _ = GradientsParams::from_grads(l.backward(), &net);
    });
    let two = measure(&|| {
        let _ = gate_gradients(&net, x.clone(), y.clone(), &pairs);
    });
    let all = measure(&|| {
        let alphas: Vec<Tensor<B, 1>> = net
            .layers()
            .iter()
            .map(|l| Tensor::zeros([l.num_choices()], &device).require_grad())
            .collect();
        let l = loss(net.forward_mixture(x.clone(), &alphas));
        let _ = GradientsParams::from_grads(l.backward(), &net);
    });
    // The child: the active path as a stand-alone network, trained on the same batch.
    let arch = net.arch_of(&path).unwrap();
    let child = seeded(&device, 0, || config.proxyless::<B>(space, &arch, &device)).unwrap();
    let alone = measure(&|| {
        let l = loss(child.logits(x.clone()));
        let _ = GradientsParams::from_grads(l.backward(), &child);
    });
    (single, two, all, alone)
}

#[test]
fn binarized_step_memory_does_not_grow_with_the_number_of_candidates() {
    assert!(PeakAlloc::is_installed());
    let two_ops = steps(&space(vec![3, 5], vec![3]));
    let six_ops = steps(&space(vec![3, 5, 7], vec![3, 6]));
    eprintln!("2 candidates: {two_ops:?} bytes; 6 candidates: {six_ops:?} bytes");
    let close = |a: usize, b: usize| (a as f64 / b as f64 - 1.0).abs() < 0.1;
    assert!(two_ops.0 > 0 && two_ops.1 > 0);
    assert!(
        close(six_ops.0, two_ops.0),
        "single path: {six_ops:?} vs {two_ops:?}"
    );
    assert!(
        close(six_ops.1, two_ops.1),
        "two paths: {six_ops:?} vs {two_ops:?}"
    );
    // The all-paths step grows: every candidate is computed and kept for the backward pass.
    assert!(
        six_ops.2 as f64 > 2.0 * two_ops.2 as f64,
        "{six_ops:?} vs {two_ops:?}"
    );
    // And a binarized step is far below it.
    assert!(six_ops.1 * 2 < six_ops.2);
    // ProxylessNAS' claim: a search step costs about what training the child costs.
    for (single, two, _, child) in [two_ops, six_ops] {
        assert!(child > 0);
        let worst = single.max(two) as f64 / child as f64;
        assert!(
            worst <= 1.5,
            "a binarized step takes {worst:.2}× the child's memory ({single}, {two} against {child} bytes)"
        );
    }
}
