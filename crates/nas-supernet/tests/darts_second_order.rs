//! Second-order DARTS: the unrolled gradient of the alphas, whose Hessian-vector product is a
//! finite difference of gradients (DARTS' `architect.py`), agrees with the exact gradient of
//! the unrolled validation loss `L_val(w − ξ(∇w L_train(w, α) + λw), α)`, taken here by central
//! differences of that whole loss in 64-bit floats; and the second-order term matters (the
//! first-order gradient is far from it). Without the frozen ReLU activation pattern the
//! library now uses for the difference, DARTS' step of ε = 0.01 / ‖d‖ flips ReLUs of this
//! small network and the product came out wrong by a factor of 6 (error 4.7 against a
//! second-order term of 0.79; now 7e-4).
//!
//! A binary of its own: Burn 0.21 fixes the CPU device's float type at its first tensor, and
//! this one computes in 64-bit floats.

use nas_supernet::burn::backend::{Autodiff, NdArray};
use nas_supernet::burn::module::Module;
use nas_supernet::burn::nn::loss::CrossEntropyLossConfig;
use nas_supernet::burn::optim::decay::WeightDecayConfig;
use nas_supernet::burn::optim::{GradientsParams, Optimizer, SgdConfig};
use nas_supernet::burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use nas_supernet::darts_search::method::UnrolledConfig;
use nas_supernet::darts_search::supernet::Nb201SupernetConfig;
use nas_supernet::darts_search::{
    AlphaOptimConfig, ArchWeights, EpochPlan, Method, Relaxation, SearchConfig, SearchNetwork,
    Searcher, StepContext, SupernetConfig, WeightOptimConfig,
};
use nas_supernet::data::ImageBatch;
use rand::{RngExt, SeedableRng};

type B = Autodiff<NdArray<f64>>;

/// Eight random 1×8×8 images (standard normal values) and labels of 10 classes.
fn batch(seed: u64) -> ImageBatch<B> {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let pixels: Vec<f64> = (0..8 * 64)
        .map(|_| {
            // Box–Muller.
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect();
    let labels: Vec<i64> = (0..8).map(|_| rng.random_range(0..10)).collect();
    let device = Default::default();
    ImageBatch {
        images: Tensor::from_data(TensorData::new(pixels, [8, 1, 8, 8]), &device),
        targets: Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [8]), &device),
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn minus(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[test]
fn the_finite_difference_hessian_vector_product_matches_the_exact_unrolled_gradient() {
    let device = Default::default();
    let (xi, decay) = (0.5, 3e-4);
    let config = SearchConfig {
        method: Method::Darts2(UnrolledConfig {
            xi: Some(xi),
            epsilon: 0.01,
        }),
        batch_size: 8,
        seed: 1,
        weights: WeightOptimConfig {
            weight_decay: decay,
            ..WeightOptimConfig::default()
        },
        // Alphas away from uniform, so every operation's weight differs.
        alphas: AlphaOptimConfig {
            init_std: 0.5,
            ..AlphaOptimConfig::default()
        },
        ..SearchConfig::default()
    };
    let space = SupernetConfig::Nb201(Nb201SupernetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    });
    let searcher = Searcher::<B, _>::new(space, config, device).unwrap();
    let (train, valid) = (batch(2), batch(3));
    let ctx = StepContext::new(0.025, EpochPlan::default());
    let library: Vec<f64> = searcher
        .alpha_gradient(&train, &valid, &ctx)
        .unwrap()
        .into_iter()
        .flatten()
        .flatten()
        .map(f64::from)
        .collect();

    let net = searcher.network().clone();
    let mask = searcher.mask().clone();
    let alphas: Vec<Tensor<B, 2>> = searcher
        .alphas()
        .cells
        .iter()
        .map(|p| p.val().detach())
        .collect();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let weights =
        |a: &[Tensor<B, 2>]| ArchWeights::new(a, &mask, Relaxation::Softmax { tau: 1.0 }, 0.0, 0);
    // The unrolled validation loss at alphas `a`: one SGD step of the weights (rate ξ, weight
    // decay λ, no momentum) on the training batch, then the loss on the validation batch.
    let unrolled_loss = |a: &[Tensor<B, 2>]| -> f64 {
        let w = weights(a);
        let loss = ce.forward(
            net.search_logits(train.images.clone(), &w),
            train.targets.clone(),
        );
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let mut sgd = SgdConfig::new()
            .with_weight_decay(Some(WeightDecayConfig::new(decay as f32)))
            .init::<B, _>();
        let stepped = sgd.step(xi, net.clone(), grads);
        let loss = ce.forward(
            stepped.search_logits(valid.images.clone(), &w),
            valid.targets.clone(),
        );
        loss.into_scalar().elem::<f64>()
    };
    // Its exact gradient, entry by entry, by central differences (truncation ~h², rounding
    // ~1e-16 / h: both far below the tolerance).
    let h = 1e-5;
    let mut exact = Vec::new();
    for (k, a) in alphas.iter().enumerate() {
        let [edges, ops] = a.dims();
        for i in 0..edges * ops {
            let mut unit = vec![0.0f64; edges * ops];
            unit[i] = h;
            let step = Tensor::<B, 2>::from_data(TensorData::new(unit, [edges, ops]), &device);
            let mut plus = alphas.clone();
            plus[k] = a.clone() + step.clone();
            let mut minus_ = alphas.clone();
            minus_[k] = a.clone() - step;
            exact.push((unrolled_loss(&plus) - unrolled_loss(&minus_)) / (2.0 * h));
        }
    }
    // The first-order gradient ∇α L_val(w, α), for scale.
    let first: Vec<f64> = {
        let a: Vec<Tensor<B, 2>> = alphas.iter().map(|t| t.clone().require_grad()).collect();
        let loss = ce.forward(
            net.clone()
                .no_grad()
                .search_logits(valid.images.clone(), &weights(&a)),
            valid.targets.clone(),
        );
        let grads = loss.backward();
        a.iter()
            .flat_map(|t| {
                t.grad(&grads)
                    .unwrap()
                    .into_data()
                    .convert::<f64>()
                    .to_vec::<f64>()
                    .unwrap()
            })
            .collect()
    };

    assert_eq!(library.len(), exact.len());
    let second_order_term = norm(&minus(&exact, &first));
    let error = norm(&minus(&library, &exact));
    eprintln!(
        "|exact| {:.3e}, |exact - first order| {second_order_term:.3e}, |library - exact| {error:.3e}",
        norm(&exact)
    );
    assert!(
        second_order_term > 0.05 * norm(&exact),
        "the second-order term should matter at xi = {xi}: {second_order_term:.3e} of {:.3e}",
        norm(&exact)
    );
    assert!(
        error < 0.02 * second_order_term,
        "the finite-difference Hessian-vector product misses the exact second-order term: \
         error {error:.3e} against a term of {second_order_term:.3e}"
    );
}
