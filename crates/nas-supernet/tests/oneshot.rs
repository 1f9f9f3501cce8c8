//! One-shot supernets: samplers, binarized paths and gates, batch-norm recalibration, and the
//! agreement of supernet paths with stand-alone networks.

mod support;

use support::{tiny_nb201, tiny_proxyless, tiny_spos};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use nas_space::SearchSpace;
use nas_space::nb201::{Nb201Arch, Nb201Space};
use nas_space::proxyless::ProxylessSpace;
use nas_space::spos::{SposArch, SposSpace};
use nas_supernet::Classifier;
use nas_supernet::backend::DefaultBackend;
use nas_supernet::chain_net::ChainNetConfig;
use nas_supernet::data::ImageDataset;
use nas_supernet::network::seeded;
use nas_supernet::oneshot::bn_recalibration::recalibrate_bn;
use nas_supernet::oneshot::gates::{ArchOptimConfig, ArchParams};
use nas_supernet::oneshot::proxyless::{arch_step, gate_gradients, layer_choices};
use nas_supernet::oneshot::train::train_supernet;
use nas_supernet::oneshot::{ArchSampler, CandidateWeights, SinglePath, UniformSampler};
use nas_supernet::train::TrainConfig;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

type B = DefaultBackend;

fn images(n: usize) -> Tensor<B, 4> {
    let device = Default::default();
    seeded::<B, _, std::convert::Infallible>(&device, 5, || {
        Ok(Tensor::<B, 4>::random(
            [n, 1, 8, 8],
            Distribution::Normal(0.0, 1.0),
            &device,
        ))
    })
    .unwrap()
}

fn targets(n: usize) -> Tensor<B, 1, Int> {
    let t: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    Tensor::from_data(TensorData::new(t, [n]), &Default::default())
}

#[test]
fn uniform_sampler_draws_only_allowed_choices_and_is_seeded() {
    let space = ProxylessSpace::default();
    let mut sampler = UniformSampler::new(space.clone(), 7);
    let mut zeros = 0;
    for _ in 0..200 {
        let arch = sampler.sample_arch();
        space.validate(&arch).unwrap();
        for (l, c) in arch.layers.iter().enumerate() {
            assert!(space.layer_choices(l).contains(c));
            if c.is_zero() {
                assert!(space.layers()[l].skippable, "zero in layer {l}");
                zeros += 1;
            }
        }
    }
    assert!(zeros > 0);
    let draw = |seed| {
        let mut s = UniformSampler::new(SposSpace::default(), seed);
        (0..20).map(|_| s.sample_arch()).collect::<Vec<SposArch>>()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

#[test]
fn supernet_paths_have_the_standalone_networks_macs_and_shapes() {
    let device = Default::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cfg = ChainNetConfig::new(1, 4)
        .with_width(0.5)
        .with_stem_stride(1);

    let space = tiny_proxyless();
    let supernet = seeded(&device, 0, || cfg.proxyless_supernet::<B>(&space, &device)).unwrap();
    for _ in 0..5 {
        let arch = space.sample(&mut rng);
        let child = seeded(&device, 0, || cfg.proxyless::<B>(&space, &arch, &device)).unwrap();
        assert_eq!(
            Some(supernet.path_macs(&arch, [1, 8, 8])),
            child.macs([1, 8, 8])
        );
        assert_eq!(supernet.path_logits(images(2), &arch).dims(), [2, 4]);
    }

    let space = tiny_spos();
    let cfg = ChainNetConfig::new(1, 4).with_stem_stride(1);
    let supernet = seeded(&device, 0, || cfg.spos_supernet::<B>(&space, &device)).unwrap();
    for _ in 0..5 {
        let arch = space.sample(&mut rng);
        let child = seeded(&device, 0, || cfg.spos::<B>(&space, &arch, &device)).unwrap();
        assert_eq!(
            Some(supernet.path_macs(&arch, [1, 8, 8])),
            child.macs([1, 8, 8])
        );
    }
    // A foreign architecture is a typed error, not a panic.
    assert!(
        supernet
            .check_arch(&SposArch::from_indices(&[0, 1]).unwrap())
            .is_err()
    );

    let space = Nb201Space::default();
    let net = tiny_nb201(4);
    let supernet = seeded(&device, 0, || net.supernet::<B>(&space, &device)).unwrap();
    for _ in 0..5 {
        let arch: Nb201Arch = space.sample(&mut rng);
        let child = seeded(&device, 0, || net.init::<B>(&arch, &device)).unwrap();
        assert_eq!(
            Some(supernet.path_macs(&arch, [1, 8, 8])),
            child.macs([1, 8, 8])
        );
        assert_eq!(supernet.path_logits(images(2), &arch).dims(), [2, 4]);
    }
}

/// ENAS' single-path DARTS supernet: every sampled genotype's path has the logits' shape and
/// the stand-alone network's MACs (loose-end concats included), only the path's operations get
/// gradients, and genotypes that do not fit are typed errors.
#[test]
fn darts_single_path_supernet_matches_standalone_networks() {
    use nas_space::darts::{DartsConfig, DartsOp, DartsSpace};
    use nas_supernet::darts_net::DartsNetConfig;
    use nas_supernet::darts_search::supernet::{DartsSupernet, DartsSupernetConfig};

    let device = Default::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let space = DartsSpace::new(DartsConfig::enas()).unwrap();
    let config = DartsSupernetConfig {
        channels: 4,
        layers: 3,
        steps: 5,
        stem_multiplier: 2,
        in_channels: 1,
        num_classes: 4,
    };
    // Under `seeded`: Burn's generator is process-wide and the other tests run in parallel.
    let supernet = seeded(&device, 4, || {
        DartsSupernet::<B>::single_path(&config, &space, &device)
    })
    .unwrap();
    let net = DartsNetConfig {
        channels: 4,
        layers: 3,
        stem_multiplier: 2,
        in_channels: 1,
        num_classes: 4,
        auxiliary: false,
    };
    for _ in 0..6 {
        let g = space.sample(&mut rng);
        supernet.check_arch(&g).unwrap();
        let child = seeded(&device, 5, || net.init::<B>(&g, &device)).unwrap();
        assert_eq!(
            Some(supernet.path_macs(&g, [1, 8, 8])),
            child.macs([1, 8, 8]),
            "{g}"
        );
        assert_eq!(supernet.path_logits(images(2), &g).dims(), [2, 4]);
    }

    // Only the sampled path's operations are trained.
    let g = space.sample(&mut rng);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(supernet.path_logits(images(4), &g), targets(4));
    let grads = GradientsParams::from_grads(loss.backward(), &supernet);
    let (params, with_grad) = count(&supernet, &grads);
    assert!(
        with_grad > 0 && with_grad < params / 2,
        "{with_grad} of {params}"
    );

    // An operation outside the space, a wrong number of nodes, a bad concat: typed errors.
    let mut other = g.clone();
    other.normal[0].0 = DartsOp::DilConv3x3;
    assert!(supernet.check_arch(&other).is_err());
    let small = DartsSpace::default().sample(&mut rng);
    assert!(supernet.check_arch(&small).is_err());
    let mut bad = g.clone();
    bad.normal_concat = vec![1, 2];
    assert!(supernet.check_arch(&bad).is_err());
}

/// Counts float parameters that require gradients, and those of them that got one.
struct GradCount<'a> {
    grads: &'a GradientsParams,
    params: usize,
    with_grad: usize,
}

impl ModuleVisitor<B> for GradCount<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        if p.is_require_grad() {
            self.params += 1;
            if self.grads.get::<burn::backend::NdArray, D>(p.id).is_some() {
                self.with_grad += 1;
            }
        }
    }
}

fn count<M: Module<B>>(m: &M, grads: &GradientsParams) -> (usize, usize) {
    let mut c = GradCount {
        grads,
        params: 0,
        with_grad: 0,
    };
    m.visit(&mut c);
    (c.params, c.with_grad)
}

#[test]
fn a_binarized_path_computes_and_trains_only_the_sampled_candidates() {
    let device = Default::default();
    let space = tiny_proxyless();
    let cfg = ChainNetConfig::new(1, 4).with_stem_stride(1);
    let supernet = seeded(&device, 1, || cfg.proxyless_supernet::<B>(&space, &device)).unwrap();
    let alphas = ArchParams::new(&layer_choices(&supernet), ArchOptimConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // Every sampled gate is a choice of its layer; zero only where the layer is skippable.
    for _ in 0..50 {
        for (l, &i) in alphas.sample_paths(&mut rng).iter().enumerate() {
            let choice = space.layer_choices(l)[i];
            assert!(!choice.is_zero() || space.layers()[l].skippable);
        }
    }
    let path = alphas.sample_paths(&mut rng);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(supernet.forward_indices(images(4), &path), targets(4));
    let grads = GradientsParams::from_grads(loss.backward(), &supernet);
    for (l, (layer, &chosen)) in supernet.layers().iter().zip(&path).enumerate() {
        for (i, op) in layer.candidates().iter().enumerate() {
            let (params, with_grad) = count(op, &grads);
            assert!(params > 0);
            if i == chosen {
                assert_eq!(with_grad, params, "layer {l}: the sampled candidate {i}");
            } else {
                assert_eq!(with_grad, 0, "layer {l}: candidate {i} was not sampled");
            }
        }
    }
}

#[test]
fn architecture_steps_use_two_gates_and_leave_weights_alone() {
    let device = Default::default();
    let space = tiny_proxyless();
    let cfg = ChainNetConfig::new(1, 4).with_stem_stride(1);
    let supernet = seeded(&device, 1, || cfg.proxyless_supernet::<B>(&space, &device)).unwrap();
    let mut alphas = ArchParams::new(
        &layer_choices(&supernet),
        ArchOptimConfig {
            learning_rate: 0.1,
            ..ArchOptimConfig::default()
        },
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let pairs = alphas.sample_pairs(&mut rng);
    let (gate_grads, ce) = gate_gradients(&supernet, images(4), targets(4), &pairs);
    assert!(ce.is_finite());
    for ((pair, g), layer) in pairs.iter().zip(&gate_grads).zip(supernet.layers()) {
        assert_ne!(Some(pair.active), pair.inactive);
        assert!(pair.active < layer.num_choices());
        match g {
            Some((a, b)) => assert!(a.is_finite() && b.is_finite()),
            None => assert!(layer.is_zero(pair.active)),
        }
    }
    let before = values(&supernet);
    let probs_before = alphas.all_probs();
    let r = arch_step(
        &supernet,
        &mut alphas,
        images(4),
        targets(4),
        None,
        0.0,
        1.0,
        &mut rng,
    );
    assert!(r.loss.is_finite());
    assert_ne!(alphas.all_probs(), probs_before);
    assert_eq!(values(&supernet), before);
}

/// Every trainable weight of a module (batch-norm statistics excluded), in visiting order.
struct Values(Vec<f32>);

impl ModuleVisitor<B> for Values {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        if p.is_require_grad() {
            self.0.extend(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .unwrap(),
            );
        }
    }
}

fn values<M: Module<B>>(m: &M) -> Vec<f32> {
    let mut v = Values(Vec::new());
    m.visit(&mut v);
    v.0
}

/// Running means and variances of every batch norm, by visiting order.
struct Stats(Vec<Vec<f32>>);

impl ModuleVisitor<B> for Stats {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        if !p.is_require_grad() {
            self.0
                .push(p.val().into_data().convert::<f32>().into_vec().unwrap());
        }
    }
}

fn stats<M: Module<B>>(m: &M) -> Vec<Vec<f32>> {
    let mut s = Stats(Vec::new());
    m.visit(&mut s);
    s.0
}

#[test]
fn batch_norm_recalibration_sets_the_paths_batch_statistics() {
    let device = Default::default();
    let space = tiny_spos();
    let cfg = ChainNetConfig::new(1, 4).with_stem_stride(1);
    let supernet = seeded(&device, 2, || cfg.spos_supernet::<B>(&space, &device)).unwrap();
    let arch = SposArch::from_indices(&[0, 3, 1, 2]).unwrap();
    let x = images(8);
    let off_path_before = stats(&supernet.layers()[0].candidates()[1]);
    recalibrate_bn(&supernet, std::slice::from_ref(&x), |net, b| {
        let _ = net.path_logits(b, &arch);
    });
    // With one batch, inference (running statistics) equals training mode (batch statistics).
    let inference = supernet.valid().path_logits(x.clone().inner(), &arch);
    let training = supernet
        .clone()
        .no_grad()
        .path_logits(x.clone(), &arch)
        .inner();
    let diff: f32 = (inference - training).abs().max().into_scalar();
    assert!(diff < 1e-3, "max difference {diff}");
    // Batch norms off the path keep their statistics.
    assert_eq!(
        stats(&supernet.layers()[0].candidates()[1]),
        off_path_before
    );
    // The average of two batches is the mean of their statistics, whatever came before.
    let y = images(8).mul_scalar(2.0).add_scalar(1.0);
    recalibrate_bn(&supernet, &[x.clone(), y.clone()], |net, b| {
        let _ = net.path_logits(b, &arch);
    });
    let first = stats(&supernet);
    recalibrate_bn(&supernet, &[y, x], |net, b| {
        let _ = net.path_logits(b, &arch);
    });
    let second = stats(&supernet);
    for (a, b) in first.iter().flatten().zip(second.iter().flatten()) {
        assert!((a - b).abs() < 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

#[test]
fn supernet_training_is_seeded_and_runs_every_method() {
    let device = Default::default();
    let data = ImageDataset::digits().sample(96, 0);
    let normalize = data.channel_stats();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 32,
        learning_rate: 0.05,
        seed: 3,
        ..TrainConfig::default()
    };
    let space = tiny_spos();
    let cfg = ChainNetConfig::new(1, 10).with_stem_stride(1);
    let run = || {
        let net = seeded(&device, 3, || cfg.spos_supernet::<B>(&space, &device)).unwrap();
        let mut sampler = UniformSampler::new(space.clone(), 3);
        train_supernet(
            net,
            &data,
            &normalize,
            &config,
            &device,
            |n, x, _| n.path_logits(x, &sampler.sample_arch()),
            |_, _| {},
        )
        .unwrap()
        .1
    };
    let report = run();
    assert!(report.train_loss[0].is_finite());
    let mut again = run();
    again.epoch_seconds = report.epoch_seconds.clone();
    assert_eq!(again, report);

    let nb = tiny_nb201(10);
    let net = seeded(&device, 0, || {
        nb.supernet::<B>(&Nb201Space::default(), &device)
    })
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (_, report) = train_supernet(
        net,
        &data,
        &normalize,
        &config,
        &device,
        |n, x, info| {
            n.dropout_logits(
                x,
                0.3 * info.step as f64 / info.total_steps as f64,
                &mut rng,
            )
        },
        |_, _| {},
    )
    .unwrap();
    assert!(report.train_loss[0].is_finite());
}

#[test]
fn a_scaled_proxyless_supernet_offers_exactly_the_spaces_choices() {
    // Narrow widths round several stages to the same width, so layers that change width in the
    // space become identity-shaped in the scaled network; they must still not offer `zero`.
    let space = ProxylessSpace::default();
    let device = Default::default();
    for width in [0.1, 0.25, 0.35, 0.5, 1.0] {
        let net = ChainNetConfig::new(1, 10)
            .with_width(width)
            .with_stem_stride(1);
        let supernet = net.proxyless_supernet::<B>(&space, &device).unwrap();
        for (l, layer) in supernet.layers().iter().enumerate() {
            assert_eq!(
                layer.num_choices(),
                space.layer_choices(l).len(),
                "width {width}, layer {l}"
            );
        }
        // The last choice of every layer (`zero` where the space allows it) names an
        // architecture of the space.
        let last: Vec<usize> = supernet
            .layers()
            .iter()
            .map(|l| l.num_choices() - 1)
            .collect();
        let arch = supernet.arch_of(&last).unwrap();
        space.validate(&arch).unwrap();
    }
}

#[test]
fn reinforce_steps_learn_a_non_differentiable_latency() {
    use nas_supernet::oneshot::proxyless::reinforce_step;
    let device = Default::default();
    let space = tiny_proxyless();
    let cfg = ChainNetConfig::new(1, 4).with_stem_stride(1);
    let supernet = seeded(&device, 1, || cfg.proxyless_supernet::<B>(&space, &device)).unwrap();
    let choices = layer_choices(&supernet);
    let mut alphas = ArchParams::new(
        &choices,
        ArchOptimConfig {
            learning_rate: 0.1,
            ..ArchOptimConfig::default()
        },
    )
    .unwrap();
    // A latency only a measurement gives (no table, no gradient): choice 0 of every layer
    // costs 10 ms, any other 1 ms.
    let latency =
        |path: &[usize]| -> f64 { path.iter().map(|&c| if c == 0 { 10.0 } else { 1.0 }).sum() };
    let before = values(&supernet);
    let first = alphas.all_probs();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut baseline = None;
    let mut mean_latency = Vec::new();
    for _ in 0..40 {
        let r = reinforce_step(
            &supernet,
            &mut alphas,
            images(8),
            targets(8),
            4,
            Some(&latency),
            1.0,
            10.0,
            &mut baseline,
            0.9,
            &mut rng,
        );
        assert!(r.loss.is_finite() && r.cross_entropy.is_finite());
        mean_latency.push(r.expected_latency_ms);
    }
    assert!(baseline.is_some());
    let last = alphas.all_probs();
    for (l, (p0, p1)) in first.iter().zip(&last).enumerate() {
        if p0.len() > 1 {
            assert!(
                p1[0] < 0.5 * p0[0],
                "layer {l}: the slow choice should lose probability: {p0:?} -> {p1:?}"
            );
        }
    }
    let early = mean_latency[..5].iter().sum::<f64>() / 5.0;
    let late = mean_latency[35..].iter().sum::<f64>() / 5.0;
    assert!(late < early, "sampled paths get faster: {early} -> {late}");
    // The weights are not touched by an architecture step.
    assert_eq!(values(&supernet), before);
}

#[test]
fn ghost_batches_get_their_own_batch_statistics_and_masks() {
    let device = Default::default();
    let net = seeded(&device, 2, || {
        tiny_nb201(4).supernet::<B>(&Nb201Space::default(), &device)
    })
    .unwrap();
    let x = images(8);
    let rows = |t: Tensor<B, 2>, a: usize, n: usize| -> Vec<f32> {
        t.narrow(0, a, n)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap()
    };
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let whole = net.dropout_logits(x.clone(), 0.0, &mut rng);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let ghost = net.ghost_dropout_logits(x.clone(), 0.0, 4, &mut rng);
    // Without dropout, a ghost batch's logits are those of its four images run alone (its own
    // batch statistics), not the rows of the whole batch.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let alone = net.dropout_logits(x.clone().narrow(0, 4, 4), 0.0, &mut rng);
    assert!(close(&rows(ghost.clone(), 4, 4), &rows(alone, 0, 4)));
    assert!(!close(&rows(ghost, 4, 4), &rows(whole, 4, 4)));
    // With dropout, each ghost batch draws its own masks: the second ghost batch continues the
    // generator of the first.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let ghost = net.ghost_dropout_logits(x.clone(), 0.5, 4, &mut rng);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let first = net.dropout_logits(x.clone().narrow(0, 0, 4), 0.5, &mut rng);
    let second = net.dropout_logits(x.clone().narrow(0, 4, 4), 0.5, &mut rng);
    assert!(close(&rows(ghost.clone(), 0, 4), &rows(first, 0, 4)));
    assert!(close(&rows(ghost, 4, 4), &rows(second, 0, 4)));
    // A ghost size of 0 or of the batch is plain path dropout.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let plain = net.dropout_logits(x.clone(), 0.5, &mut rng);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let zero = net.ghost_dropout_logits(x, 0.5, 0, &mut rng);
    assert!(close(&rows(plain, 0, 8), &rows(zero, 0, 8)));
}

#[test]
fn a_reinforce_search_resumes_from_its_checkpoint() {
    use nas_supernet::driver::Driver;
    use nas_supernet::oneshot::proxyless::{ArchGradient, ProxylessSearch, ProxylessSearchConfig};
    let device = Default::default();
    let data = ImageDataset::digits().sample(160, 3);
    let (train, arch_data) = data.split(0.6, 3).unwrap();
    let normalize = data.channel_stats();
    let space = tiny_proxyless();
    let config = ProxylessSearchConfig {
        train: TrainConfig {
            epochs: 3,
            batch_size: 32,
            learning_rate: 0.05,
            seed: 6,
            ..TrainConfig::default()
        },
        warmup_epochs: 1,
        arch_update_every: 1,
        latency_weight: 0.5,
        latency_reference_ms: Some(3.0),
        arch_gradient: ArchGradient::Reinforce {
            samples: 2,
            baseline_decay: 0.5,
        },
        ..ProxylessSearchConfig::default()
    };
    // A latency that only a function of the path gives.
    let latency: nas_supernet::oneshot::proxyless::PathLatency =
        std::sync::Arc::new(|path: &[usize]| path.iter().map(|&c| 1.0 + c as f64).sum());
    let dir = tempfile_dir("reinforce-resume");
    let ckpt = dir.join("search.ckpt");
    let run = |epochs: Option<usize>, resume: bool| {
        let net = seeded(&device, 5, || {
            ChainNetConfig::new(1, 10).proxyless_supernet::<B>(&space, &device)
        })
        .unwrap();
        let alphas = ArchParams::new(
            &layer_choices(&net),
            ArchOptimConfig {
                learning_rate: 0.05,
                ..ArchOptimConfig::default()
            },
        )
        .unwrap();
        let mut search = ProxylessSearch::new(
            net, alphas, &train, &arch_data, &normalize, None, &config, &device,
        )
        .unwrap()
        .with_path_latency(latency.clone());
        let mut driver = Driver::new(&mut search).checkpoint(&ckpt, 1).resume(resume);
        if let Some(n) = epochs {
            driver = driver.max_epochs(n);
        }
        driver.run().unwrap();
        drop(driver);
        search.alphas().all_probs()
    };
    let whole = {
        let _ = std::fs::remove_file(&ckpt);
        run(None, false)
    };
    let _ = std::fs::remove_file(&ckpt);
    run(Some(2), false);
    let resumed = run(None, true);
    assert_eq!(resumed, whole, "the baseline and the alphas resume exactly");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nas-oneshot-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The gradient of the 4-D parameter of shape `dims`.
fn grad_of_shape(m: &impl Module<B>, grads: &GradientsParams, dims: [usize; 4]) -> Tensor<B, 4> {
    struct Find<'a> {
        grads: &'a GradientsParams,
        dims: [usize; 4],
        found: Option<Tensor<B, 4>>,
    }
    impl ModuleVisitor<B> for Find<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if D == 4 && p.shape().dims::<D>().as_slice() == self.dims.as_slice() {
                let g = self.grads.get::<burn::backend::NdArray, 4>(p.id);
                self.found = g.map(|g| Tensor::from_data(g.into_data(), &Default::default()));
            }
        }
    }
    let mut f = Find {
        grads,
        dims,
        found: None,
    };
    m.visit(&mut f);
    f.found
        .unwrap_or_else(|| panic!("no gradient of a parameter of shape {dims:?}"))
}

#[test]
fn nested_candidates_train_only_their_slice_and_count_the_standalone_macs() {
    use nas_supernet::ops::{NestedMbConv, OpConfig, OpKind};
    let device = Default::default();
    let c = 8;
    let candidates = [(3, 3), (5, 3), (3, 6), (7, 6)];
    let nested: NestedMbConv<B> = seeded::<B, _, std::convert::Infallible>(&device, 3, || {
        Ok(NestedMbConv::new(c, c, 1, &candidates, &device))
    })
    .unwrap();
    let (x, probe) = seeded::<B, _, std::convert::Infallible>(&device, 4, || {
        let r = || Tensor::<B, 4>::random([4, c, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        Ok((r(), r()))
    })
    .unwrap();
    for (i, &(k, e)) in candidates.iter().enumerate() {
        let loss = (nested.forward(x.clone(), i) * probe.clone()).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &nested);
        let (h, off) = (c * e, (7 - k) / 2);
        // Depthwise [6c, 1, 7, 7]: only the first h channels' centred k×k window.
        let g = grad_of_shape(&nested, &grads, [c * 6, 1, 7, 7]).abs();
        let inside = g.clone().slice([0..h, 0..1, off..off + k, off..off + k]);
        let all: f32 = g.sum().into_scalar();
        let within: f32 = inside.clone().sum().into_scalar();
        assert!(within > 0.0, "candidate {i}: no gradient in its window");
        assert!(
            (all - within).abs() <= 1e-6 * all,
            "candidate {i} ({k}x{k}, e{e}): gradient outside its window ({} of {all})",
            all - within
        );
        // Expansion [6c, c, 1, 1] and projection [c, 6c, 1, 1]: only the first h channels.
        let g = grad_of_shape(&nested, &grads, [c * 6, c, 1, 1]).abs();
        let total: f32 = g.clone().sum().into_scalar();
        let within: f32 = g.narrow(0, 0, h).sum().into_scalar();
        assert!(total > 0.0 && within == total, "candidate {i}: expansion");
        let g = grad_of_shape(&nested, &grads, [c, c * 6, 1, 1]).abs();
        let total: f32 = g.clone().sum().into_scalar();
        let within: f32 = g.narrow(1, 0, h).sum().into_scalar();
        assert!(total > 0.0 && within == total, "candidate {i}: projection");
        // The same multiply-accumulates and output shape as the stand-alone block.
        let alone = OpConfig::new(
            OpKind::MbConv {
                kernel: k,
                expansion: e,
            },
            c,
            c,
            1,
        )
        .init::<B>(&device)
        .unwrap();
        assert_eq!(
            nested.macs(i, [c, 6, 6]),
            alone.macs([c, 6, 6]),
            "candidate {i}"
        );
    }
}

/// The supernet's training accuracy (%) in the last of `epochs` warm-up epochs of a
/// ProxylessNAS search (weights only, uniform random single paths) of the full space (21
/// layers, width 0.35) on 1,000 of the embedded digits, as `--example proxylessnas` trains it
/// (SGD lr 0.05, batch 32, its defaults otherwise), the supernet initialized from `init`.
fn warmup_accuracy(weights: CandidateWeights, epochs: usize, init: u64) -> f64 {
    use nas_supernet::oneshot::proxyless::{ProxylessSearchConfig, search};
    let device = Default::default();
    let digits = ImageDataset::digits();
    let (train, arch_data) = digits.split(1000.0 / 1797.0, 0).unwrap();
    let normalize = train.channel_stats();
    let space = ProxylessSpace::default();
    let cfg = ChainNetConfig::new(1, 10)
        .with_width(0.35)
        .with_stem_stride(1);
    let net = seeded(&device, init, || {
        cfg.proxyless_supernet_with::<B>(&space, weights, &device)
    })
    .unwrap();
    let mut alphas = ArchParams::new(&layer_choices(&net), ArchOptimConfig::default()).unwrap();
    let config = ProxylessSearchConfig {
        train: TrainConfig {
            epochs,
            batch_size: 32,
            learning_rate: 0.05,
            seed: init,
            ..TrainConfig::default()
        },
        warmup_epochs: epochs,
        ..ProxylessSearchConfig::default()
    };
    let (_, report) = search(
        net,
        &mut alphas,
        &train,
        &arch_data,
        &normalize,
        None,
        &config,
        &device,
        |_, _, _| {},
    )
    .unwrap();
    *report.train_accuracy.last().unwrap()
}

/// The finding behind `CandidateWeights::Nested` (docs/benchmarks.md, ProxylessNAS): with
/// independent candidates, a layer that switches candidates hands the next one unrelated
/// channels, and the random single paths of the warm-up learn nothing in a few hundred steps;
/// with nested weights they do. The supernet is initialized from seed 0, or from each seed of
/// `NAS_TEST_INITS` (comma-separated, e.g. `0,1,2`).
#[test]
fn nested_weights_let_random_single_paths_learn() {
    let inits = std::env::var("NAS_TEST_INITS").unwrap_or_else(|_| "0".into());
    for init in inits.split(',') {
        let init: u64 = init
            .trim()
            .parse()
            .expect("NAS_TEST_INITS: comma-separated seeds");
        let nested = warmup_accuracy(CandidateWeights::Nested, 10, init);
        let independent = warmup_accuracy(CandidateWeights::Independent, 10, init);
        eprintln!(
            "init {init}: training accuracy in epoch 10: nested {nested:.1}%, independent {independent:.1}%"
        );
        assert!(nested >= 50.0, "init {init}: nested weights: {nested:.1}%");
        assert!(
            independent <= 20.0,
            "init {init}: independent candidates learned ({independent:.1}%): the docs' finding \
             no longer holds"
        );
    }
}

/// SMASH's point: an operation's weights are generated from the encoding of the whole
/// architecture, not shared. Changing another edge changes them; the same architecture gets
/// the same ones; a training step reaches the hypernetwork through the generated weights (the
/// generators of the path's convolutions and the embedding get gradients, the generators of
/// convolutions the path lacks do not); paths have the stand-alone networks' MACs and shapes.
#[test]
fn smash_generates_each_architectures_weights_from_its_encoding() {
    use nas_space::nb201::Nb201Op::*;
    use nas_supernet::oneshot::SmashConfig;
    let device = Default::default();
    let space = Nb201Space::default();
    let config = SmashConfig {
        embedding: 16,
        ..SmashConfig::new(tiny_nb201(4))
    };
    let smash = seeded(&device, 0, || config.init::<B>(&space, &device)).unwrap();
    let a = Nb201Arch {
        edges: [
            NorConv3x3,
            SkipConnect,
            AvgPool3x3,
            None,
            NorConv1x1,
            NorConv3x3,
        ],
    };
    let mut b = a;
    b.edges[0] = AvgPool3x3;
    let w = |arch: &Nb201Arch| {
        smash
            .generated_weight(arch, 0, 5, NorConv3x3)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    let (wa, wb) = (w(&a), w(&b));
    assert_eq!(wa.len(), 4 * 4 * 9);
    assert_eq!(wa, w(&a));
    let moved = wa
        .iter()
        .zip(&wb)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let scale = wa.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
    assert!(
        moved > 0.05 * scale,
        "another edge's operation moved the weights by {moved} (of {scale})"
    );
    // The ablation shares the weights across architectures.
    let shared = seeded(&device, 0, || {
        SmashConfig {
            conditioned: false,
            ..config
        }
        .init::<B>(&space, &device)
    })
    .unwrap();
    let ws = |arch: &Nb201Arch| {
        shared
            .generated_weight(arch, 0, 5, NorConv3x3)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(ws(&a), ws(&b));
    assert!(smash.generated_weight(&a, 0, 5, AvgPool3x3).is_none());
    assert!(smash.generated_weight(&a, 9, 5, NorConv3x3).is_none());

    // One backward pass through the generated weights.
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(smash.path_logits(images(4), &a), targets(4));
    let grads = GradientsParams::from_grads(loss.backward(), &smash);
    let (params, with_grad) = count(&smash, &grads);
    assert!(
        with_grad > 0 && with_grad < params,
        "{with_grad} of {params}"
    );
    // the embedding, and cell 0's edge-5 3×3 generator (a [16, 144] weight)
    let has = |dims: [usize; 2]| {
        struct Find<'a> {
            grads: &'a GradientsParams,
            dims: [usize; 2],
            found: Vec<bool>,
        }
        impl ModuleVisitor<B> for Find<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
                if D == 2 && p.val().dims()[..] == self.dims[..] {
                    self.found
                        .push(self.grads.get::<burn::backend::NdArray, D>(p.id).is_some());
                }
            }
        }
        let mut f = Find {
            grads: &grads,
            dims,
            found: Vec::new(),
        };
        smash.visit(&mut f);
        f.found
    };
    // Linear weights are [in, out] in Burn: the embedding [6·5, 16].
    assert_eq!(has([30, 16]), vec![true]);
    // The 3×3 generators of cell 0 (C = 4: [16, 144]): edges 0 and 5 hold a 3×3 convolution
    // in `a`, the other four do not.
    assert_eq!(has([16, 144]), vec![true, false, false, false, false, true]);

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = tiny_nb201(4);
    for _ in 0..5 {
        let arch: Nb201Arch = space.sample(&mut rng);
        let child = seeded(&device, 0, || net.init::<B>(&arch, &device)).unwrap();
        assert_eq!(
            Some(smash.path_macs(&arch, [1, 8, 8])),
            child.macs([1, 8, 8])
        );
        assert_eq!(smash.path_logits(images(2), &arch).dims(), [2, 4]);
        assert!(smash.check_arch(&arch).is_ok());
    }
    let bad = SmashConfig {
        embedding: 0,
        ..config
    };
    assert!(bad.init::<B>(&space, &device).is_err());
}

/// `sliced_logits` runs slice `j` of the batch through path `j`, in batch order: in inference
/// mode (batch norm on its running statistics, so slicing changes nothing else) it equals the
/// paths' logits on slices of equal size (the first ones one image larger), concatenated; one
/// path is `path_logits`, and a batch smaller than the number of paths uses one path per
/// image. Sizes that Burn's `chunk` mishandles (8 or 7 images in 5 slices) included.
#[test]
fn sliced_logits_run_each_slice_through_its_path() {
    let device = Default::default();
    let space = Nb201Space::default();
    let net = seeded(&device, 3, || tiny_nb201(4).supernet::<B>(&space, &device))
        .unwrap()
        .valid();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let paths: Vec<Nb201Arch> = (0..5).map(|_| space.sample(&mut rng)).collect();
    let x = images(8).inner();
    let by_hand = |n: usize, k: usize, sizes: &[usize]| {
        let mut start = 0;
        let mut parts = Vec::new();
        for (j, &len) in sizes.iter().enumerate() {
            parts.push(net.path_logits(x.clone().narrow(0, start, len), &paths[j]));
            start += len;
        }
        assert_eq!(start, n);
        let sliced = net.sliced_logits(x.clone().narrow(0, 0, n), &paths[..k]);
        assert_eq!(sliced.dims(), [n, 4]);
        assert_eq!(
            sliced.into_data(),
            Tensor::cat(parts, 0).into_data(),
            "{n} in {k}"
        );
    };
    by_hand(7, 3, &[3, 2, 2]);
    by_hand(8, 5, &[2, 2, 2, 1, 1]);
    by_hand(7, 5, &[2, 2, 1, 1, 1]);
    by_hand(5, 5, &[1, 1, 1, 1, 1]);
    by_hand(2, 5, &[1, 1]);
    by_hand(8, 1, &[8]);
}
