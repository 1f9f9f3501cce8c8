//! Differentiable search: the alphas find the clearly best operation of a synthetic task, every
//! method runs on both supernets and is reproducible by seed, second order with ξ = 0 is first
//! order, divergence is a typed error that keeps the last good state, and invalid settings
//! name their field.

use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn::module::{Module, ModuleVisitor, Param};
use nas_supernet::burn::nn::{Linear, LinearConfig};
use nas_supernet::burn::tensor::Tensor;
use nas_supernet::burn::tensor::backend::Backend;
use nas_supernet::darts_search::alphas::{ArchLayout, ArchMask, ArchProbabilities, CellLayout};
use nas_supernet::darts_search::method::{GumbelConfig, PdartsConfig, UnrolledConfig};
use nas_supernet::darts_search::mixed::{EdgeWeights, MixedOp};
use nas_supernet::darts_search::perturb::PerturbationConfig;
use nas_supernet::darts_search::supernet::{DartsSupernetConfig, Nb201SupernetConfig};
use nas_supernet::darts_search::{
    AlphaOptimConfig, ArchWeights, DerivedArch, Method, SearchConfig, SearchError, SearchNetwork,
    Searcher, SupernetBuilder, SupernetConfig, WeightOptimConfig,
};
use nas_supernet::data::ImageDataset;
use nas_supernet::driver::Driver;
use nas_supernet::error::SupernetError;
use nas_supernet::ops::{OpConfig, OpKind};
use rand::{RngExt, SeedableRng};

type B = DefaultBackend;

/// One mixed edge (`none`, `skip_connect`, `avg_pool_3x3`) on the 8×8 input, then a linear
/// classifier on the flattened map.
#[derive(Module, Debug)]
struct Toy<B: Backend> {
    edge: MixedOp<B>,
    head: Linear<B>,
}

impl<B: Backend> SearchNetwork<B> for Toy<B> {
    fn search_logits(&self, images: Tensor<B, 4>, weights: &ArchWeights<B>) -> Tensor<B, 2> {
        let y = self.edge.forward(images, weights.edge(0, 0, 0));
        let [n, c, h, w] = y.dims();
        self.head.forward(y.reshape([n, c * h * w]))
    }
}

const TOY_OPS: [&str; 3] = ["none", "skip_connect", "avg_pool_3x3"];

struct ToySpace;

impl<B: Backend> SupernetBuilder<B> for ToySpace {
    type Network = Toy<B>;
    type Arch = String;

    fn layout(&self) -> ArchLayout {
        ArchLayout {
            cells: vec![CellLayout {
                name: "edge".into(),
                edges: vec!["1<-0".into()],
                ops: TOY_OPS.iter().map(|s| s.to_string()).collect(),
            }],
        }
    }

    fn build(
        &self,
        _extra: usize,
        mask: &ArchMask,
        device: &B::Device,
    ) -> Result<Toy<B>, SupernetError> {
        let configs = [
            OpConfig::new(OpKind::Zero, 1, 1, 1),
            OpConfig::new(OpKind::Identity, 1, 1, 1),
            OpConfig::new(OpKind::AvgPool { kernel: 3 }, 1, 1, 1),
        ];
        Ok(Toy {
            edge: MixedOp::new(&configs, &mask.cells[0][0], device)?,
            head: LinearConfig::new(64, 2).init(device),
        })
    }

    fn derive(&self, p: &ArchProbabilities, _max_skip: Option<usize>) -> String {
        let row = &p.cells[0][0];
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        TOY_OPS[best].to_string()
    }
}

/// Labels are the sign of a checkerboard pattern buried in noise. The identity passes it to
/// the linear classifier intact; 3×3 average pooling shrinks it ninefold relative to the
/// noise; `none` removes it. So `skip_connect` is clearly the best operation.
fn checkerboard_task(n: usize, seed: u64) -> ImageDataset {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.random_bool(0.5);
        let sign = if label { 1.0 } else { -1.0 };
        for y in 0..8 {
            for x in 0..8 {
                let checker = if (x + y) % 2 == 0 { 1.0 } else { -1.0 };
                let noise = rng.random::<f32>() - 0.5;
                pixels.push((0.5 + 0.15 * sign * checker + 0.3 * noise).clamp(0.0, 1.0));
            }
        }
        labels.push(u32::from(label));
    }
    ImageDataset::new("checkerboard", [1, 8, 8], 2, pixels, labels).unwrap()
}

fn toy_config(method: Method) -> SearchConfig {
    SearchConfig {
        method,
        epochs: 4,
        batch_size: 32,
        // A larger alpha step than DARTS' 3e-4 so that a handful of steps shows the trend.
        alphas: AlphaOptimConfig {
            learning_rate: 0.03,
            ..AlphaOptimConfig::default()
        },
        weights: WeightOptimConfig {
            learning_rate: 0.05,
            ..WeightOptimConfig::default()
        },
        seed: 3,
        ..SearchConfig::default()
    }
}

#[test]
fn alphas_move_toward_the_clearly_best_operation() {
    let data = checkerboard_task(512, 1);
    // GDAS is left out: its straight-through gradient rewards the sampled operation when
    // scaling its output lowers the loss, which in a one-edge network favours the weaker
    // operation (it gains most from a larger margin). Its runs are checked below.
    for name in ["darts", "darts2", "snas", "asap"] {
        let method = Method::from_name(name).unwrap();
        let mut s =
            Searcher::<B, _>::new(ToySpace, toy_config(method), Default::default()).unwrap();
        let before = s.probabilities().cells[0][0].clone();
        let report = s.run(&data, |_| {}).unwrap();
        let after = &report.probabilities.cells[0][0];
        assert_eq!(report.derived, "skip_connect", "{name}: {after:?}");
        assert!(
            after[1] > before[1] + 0.05,
            "{name}: skip_connect went from {:.3} to {:.3}",
            before[1],
            after[1]
        );
        assert!(
            after[1] > after[0] && after[1] > after[2],
            "{name}: {after:?}"
        );
    }
}

#[test]
fn warm_up_keeps_the_alphas_then_lets_them_learn() {
    let data = checkerboard_task(256, 1);
    let mut config = toy_config(Method::Darts);
    config.alphas.warmup_epochs = 2;
    let mut s = Searcher::<B, _>::new(ToySpace, config, Default::default()).unwrap();
    let before = s.probabilities().cells[0][0].clone();
    let mut seen = Vec::new();
    let report = s
        .run(&data, |e| {
            seen.push((e.valid_loss, e.probabilities.cells[0][0].clone()))
        })
        .unwrap();
    assert_eq!(seen.len(), 4);
    for (epoch, (loss, p)) in seen.iter().take(2).enumerate() {
        assert!(loss.is_nan(), "epoch {epoch}: no alpha step, no alpha loss");
        assert_eq!(
            p, &before,
            "epoch {epoch}: the alphas must not move in the warm-up"
        );
    }
    assert!(seen[2].0.is_finite() && seen[3].0.is_finite());
    let after = &report.probabilities.cells[0][0];
    assert!(after[1] > before[1] + 0.02, "{before:?} -> {after:?}");

    // Warm-up over every epoch is allowed (the alphas stay: select by perturbation); beyond
    // the epochs it is an error that names the field.
    let mut config = toy_config(Method::Darts);
    config.alphas.warmup_epochs = config.epochs;
    assert!(config.check().is_ok());
    config.alphas.warmup_epochs = config.epochs + 1;
    match config.check() {
        Err(SearchError::InvalidConfig { field, .. }) => assert_eq!(field, "alphas.warmup_epochs"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// `lambda · mean over edges of logsumexp(α_edge)` over the alive operations, on the host.
fn beta_regularizer(alphas: &[Vec<Vec<f32>>], mask: &ArchMask, lambda: f64) -> f64 {
    let mut sum = 0.0;
    let mut edges = 0;
    for (kind, table) in alphas.iter().enumerate() {
        for (e, row) in table.iter().enumerate() {
            let lse = row
                .iter()
                .enumerate()
                .filter(|&(o, _)| mask.alive(kind, e, o))
                .map(|(_, &a)| f64::from(a).exp())
                .sum::<f64>()
                .ln();
            sum += lse;
            edges += 1;
        }
    }
    lambda * sum / edges as f64
}

#[test]
fn beta_decay_gradient_is_the_regularizers_derivative() {
    // Two cell kinds, three edges in all; one operation masked out.
    let alphas = vec![
        vec![vec![0.3f32, -1.2, 2.0], vec![0.0, 0.5, -0.5]],
        vec![vec![1.0, 1.0, 4.0]],
    ];
    let mask = ArchMask {
        cells: vec![
            vec![vec![true, true, true], vec![true, false, true]],
            vec![vec![true, true, true]],
        ],
    };
    let lambda = 7.5;
    let g = ArchProbabilities::from_tables(&alphas, &mask).beta_decay_gradient(lambda);
    // Central differences of the regularizer itself, in f32 inputs (h large enough for f32).
    let h = 1e-2f32;
    for (kind, table) in alphas.iter().enumerate() {
        for (e, row) in table.iter().enumerate() {
            for o in 0..row.len() {
                let mut plus = alphas.clone();
                plus[kind][e][o] += h;
                let mut minus = alphas.clone();
                minus[kind][e][o] -= h;
                let numeric = (beta_regularizer(&plus, &mask, lambda)
                    - beta_regularizer(&minus, &mask, lambda))
                    / (2.0 * f64::from(h));
                assert!(
                    (g[kind][e][o] - numeric).abs() < 1e-4,
                    "[{kind}][{e}][{o}]: {} against {numeric}",
                    g[kind][e][o]
                );
            }
        }
    }
    assert_eq!(g[0][1][1], 0.0, "a masked operation has no gradient");
    // The strongest alpha of an edge is pulled back hardest.
    assert!(g[1][0][2] > g[1][0][0] && g[1][0][0] == g[1][0][1]);
}

#[test]
fn beta_decay_holds_the_alphas_back() {
    // The toy task favours skip_connect clearly; β-decay must not change the answer, only keep
    // the alphas from running away (a smaller logsumexp, a less peaked edge).
    let data = checkerboard_task(512, 1);
    let run = |beta_decay: f64| {
        let mut config = toy_config(Method::Darts);
        config.alphas.beta_decay = beta_decay;
        let mut s = Searcher::<B, _>::new(ToySpace, config, Default::default()).unwrap();
        let report = s.run(&data, |_| {}).unwrap();
        let tables = s.alphas().to_tables();
        (
            report.derived,
            report.probabilities.cells[0][0].clone(),
            tables,
        )
    };
    let (plain, p_plain, a_plain) = run(0.0);
    let (beta, p_beta, a_beta) = run(50.0);
    assert_eq!(plain, "skip_connect");
    assert_eq!(beta, "skip_connect", "{p_beta:?}");
    let mask = ArchMask {
        cells: vec![vec![vec![true; 3]]],
    };
    let (r_plain, r_beta) = (
        beta_regularizer(&a_plain, &mask, 1.0),
        beta_regularizer(&a_beta, &mask, 1.0),
    );
    assert!(
        r_beta < r_plain - 0.01,
        "logsumexp {r_beta} against {r_plain}"
    );
    assert!(p_beta[1] < p_plain[1], "{p_beta:?} against {p_plain:?}");
    // Off, it is left out of the saved configuration, so checkpoints written before the
    // setting existed (whose fingerprints lack it) still resume.
    let off = serde_json::to_string(&AlphaOptimConfig::default()).unwrap();
    assert!(!off.contains("beta_decay"), "{off}");
    let on = AlphaOptimConfig {
        beta_decay: 5.0,
        ..AlphaOptimConfig::default()
    };
    let text = serde_json::to_string(&on).unwrap();
    assert_eq!(serde_json::from_str::<AlphaOptimConfig>(&text).unwrap(), on);
    assert_eq!(
        serde_json::from_str::<AlphaOptimConfig>(&off).unwrap(),
        AlphaOptimConfig::default()
    );
    // And it is checked like every other setting.
    let mut config = toy_config(Method::Darts);
    config.alphas.beta_decay = -1.0;
    match config.check() {
        Err(SearchError::InvalidConfig { field, .. }) => assert_eq!(field, "alphas.beta_decay"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn mixed_op_weights_that_do_not_fit_are_a_typed_error() {
    let device = Default::default();
    let configs = [
        OpConfig::new(OpKind::Zero, 1, 1, 1),
        OpConfig::new(OpKind::Identity, 1, 1, 1),
        OpConfig::new(OpKind::AvgPool { kernel: 3 }, 1, 1, 1),
    ];
    // The pooling operation is masked out: not built.
    let edge = MixedOp::<B>::new(&configs, &[true, true, false], &device).unwrap();
    let x = Tensor::<B, 4>::ones([1, 1, 4, 4], &device);
    let w = |v: f32| Some(Tensor::<B, 4>::full([1, 1, 1, 1], v, &device));
    let edge_weights = |weights: &[Option<Tensor<B, 4>>], sampled: Option<usize>| {
        let e = EdgeWeights {
            weights,
            sampled,
            skip_dropout: 0.0,
            seed: 0,
        };
        edge.try_forward(x.clone(), e)
    };
    // Fitting weights: 0.25 · x (the identity's share; `none` adds nothing).
    let y = edge_weights(&[w(0.75), w(0.25), None], None).unwrap();
    let sum: f32 = y.sum().into_scalar();
    assert!((sum - 4.0).abs() < 1e-5, "{sum}");
    type Case = (Vec<Option<Tensor<B, 4>>>, Option<usize>, &'static str);
    let cases: Vec<Case> = vec![
        (vec![w(0.5), w(0.5)], None, "2 weights for 3 operations"),
        (
            vec![w(0.5), None, None],
            Some(1),
            "sampled operation 1 is masked",
        ),
        (
            vec![w(0.5), w(0.5), w(0.5)],
            Some(2),
            "sampled operation 2 is not built",
        ),
        (vec![w(0.5), w(0.5), w(0.5)], Some(7), "out of range"),
        (
            vec![None, None, w(1.0)],
            None,
            "no operation is both weighted and built",
        ),
    ];
    for (weights, sampled, expected) in cases {
        match edge_weights(&weights, sampled) {
            Err(SupernetError::InvalidConfig { reason, .. }) => {
                assert!(reason.contains(expected), "{reason}")
            }
            Err(e) => panic!("{expected}: unexpected error {e}"),
            Ok(_) => panic!("{expected}: accepted"),
        }
    }
}

#[test]
fn perturbation_selects_on_the_trained_supernet() {
    // On the toy task the alphas learn skip_connect; removing it from the supernet costs at
    // least as much as removing anything else, so the selection agrees.
    let data = checkerboard_task(512, 2);
    let mut s =
        Searcher::<B, _>::new(ToySpace, toy_config(Method::Darts), Default::default()).unwrap();
    let mut epochs = s.epochs(&data).unwrap();
    Driver::new(&mut epochs).run().unwrap();
    let config = PerturbationConfig {
        images: 200,
        tune_steps: 0,
        tune_learning_rate: None,
    };
    let pt = epochs.derive_by_perturbation(&config).unwrap();
    assert_eq!(pt.derived, "skip_connect", "{pt:?}");
    assert_eq!(pt.images, 200);
    assert_eq!(pt.edges.len(), 1);
    let without = &pt.edges[0].accuracy_without;
    let skip = without[1].unwrap();
    assert!(
        without.iter().all(|a| a.unwrap() >= skip),
        "removing skip_connect must cost the most: {without:?}"
    );
    assert_eq!(pt.mask.cells[0][0], vec![false, true, false]);
    let bad = PerturbationConfig {
        images: 0,
        ..config.clone()
    };
    assert!(matches!(
        epochs.derive_by_perturbation(&bad),
        Err(SearchError::Data(_))
    ));
    let bad = PerturbationConfig {
        tune_learning_rate: Some(-1.0),
        ..config
    };
    assert!(matches!(
        epochs.derive_by_perturbation(&bad),
        Err(SearchError::InvalidConfig { .. })
    ));
}

#[test]
fn perturbation_fixes_every_nb201_edge_and_repeats_by_seed() {
    let run = |tune_steps: usize| {
        let config = SearchConfig {
            epochs: 2,
            batch_size: 16,
            seed: 7,
            ..SearchConfig::default()
        };
        let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
        let mut epochs = s.epochs(&ImageDataset::digits().sample(96, 1)).unwrap();
        Driver::new(&mut epochs).run().unwrap();
        let (alphas, mask) = (
            epochs.searcher().probabilities(),
            epochs.searcher().mask().clone(),
        );
        let pt = epochs
            .derive_by_perturbation(&PerturbationConfig {
                images: 32,
                tune_steps,
                tune_learning_rate: None,
            })
            .unwrap();
        // Neither the alphas nor the search's mask change.
        assert_eq!(epochs.searcher().probabilities(), alphas);
        assert_eq!(epochs.searcher().mask(), &mask);
        pt
    };
    for tune_steps in [0, 3] {
        let pt = run(tune_steps);
        assert_eq!(pt.edges.len(), 6, "{pt:?}");
        let DerivedArch::Nb201(arch) = &pt.derived else {
            panic!("expected an NB201 cell, got {:?}", pt.derived)
        };
        for d in &pt.edges {
            assert_eq!(pt.mask.alive_on(0, d.edge), 1);
            assert!(pt.mask.alive(0, d.edge, d.chosen));
            assert!(d.accuracy_without.iter().all(Option::is_some));
            assert_eq!(arch.edges[d.edge].index(), d.chosen, "{arch} {d:?}");
        }
        assert_eq!(run(tune_steps), pt, "same seed, same selection");
    }
}

fn digits() -> ImageDataset {
    ImageDataset::digits().sample(32, 0)
}

fn tiny_nb201() -> SupernetConfig {
    SupernetConfig::Nb201(Nb201SupernetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    })
}

fn tiny_darts() -> SupernetConfig {
    SupernetConfig::Darts(DartsSupernetConfig {
        channels: 4,
        layers: 3,
        steps: 2,
        stem_multiplier: 2,
        in_channels: 1,
        num_classes: 10,
    })
}

fn tiny_pdarts() -> Method {
    Method::Pdarts(PdartsConfig {
        add_cells: vec![0, 1],
        keep: vec![3],
        skip_dropout: vec![0.0, 0.3],
        warmup_epochs: 0,
        dropout_decay: 0.2,
        max_skip: Some(1),
    })
}

fn tiny_search(space: SupernetConfig, method: Method) -> (String, Vec<Vec<Vec<f32>>>) {
    let config = SearchConfig {
        method,
        epochs: 1,
        batch_size: 16,
        seed: 5,
        ..SearchConfig::default()
    };
    let mut s = Searcher::<B, _>::new(space, config, Default::default()).unwrap();
    let mut epochs = 0;
    let report = s.run(&digits(), |e| {
        epochs += 1;
        assert!(e.train_loss.is_finite(), "{e:?}");
        assert!(e.step_seconds > 0.0);
    });
    let report = report.unwrap();
    assert_eq!(epochs, report.epochs.len());
    (report.derived.to_string(), report.alphas)
}

#[test]
fn every_method_runs_on_both_spaces() {
    for space in [tiny_nb201(), tiny_darts()] {
        for name in Method::NAMES {
            let method = if name == "pdarts" {
                tiny_pdarts()
            } else {
                Method::from_name(name).unwrap()
            };
            let (derived, alphas) = tiny_search(space, method);
            assert!(
                alphas.iter().flatten().flatten().all(|a| a.is_finite()),
                "{name}"
            );
            match space {
                SupernetConfig::Nb201(_) => {
                    assert!(derived.starts_with('|'), "{name}: {derived}");
                }
                SupernetConfig::Darts(_) => {
                    assert!(
                        derived.starts_with("Genotype(normal=["),
                        "{name}: {derived}"
                    );
                    assert!(derived.contains("normal_concat=range(2, 4)"), "{derived}");
                    assert!(!derived.contains("'none'"), "{name}: {derived}");
                    if name == "pdarts" {
                        let normal = derived.split("reduce=").next().unwrap();
                        assert!(normal.matches("skip_connect").count() <= 1, "{derived}");
                    }
                }
            }
        }
    }
}

#[test]
fn same_seed_same_search() {
    for method in ["darts2", "gdas"] {
        let a = tiny_search(tiny_nb201(), Method::from_name(method).unwrap());
        let b = tiny_search(tiny_nb201(), Method::from_name(method).unwrap());
        assert_eq!(a, b, "{method}");
    }
    let a = tiny_search(tiny_darts(), tiny_pdarts());
    let b = tiny_search(tiny_darts(), tiny_pdarts());
    assert_eq!(a, b);
    // GDAS with the paper's dense gradient repeats too, and its alphas learn differently
    // from the reference code's.
    let dense = || {
        Method::Gdas(GumbelConfig {
            tau_max: 10.0,
            tau_min: 0.1,
            dense_gradient: true,
        })
    };
    let a = tiny_search(tiny_nb201(), dense());
    assert_eq!(a, tiny_search(tiny_nb201(), dense()));
    let sparse = tiny_search(tiny_nb201(), Method::from_name("gdas").unwrap());
    assert_ne!(a.1, sparse.1);
}

#[test]
fn second_order_with_zero_xi_is_first_order() {
    let first = tiny_search(tiny_nb201(), Method::Darts).1;
    let second = tiny_search(
        tiny_nb201(),
        Method::Darts2(UnrolledConfig {
            xi: Some(0.0),
            epsilon: 0.01,
        }),
    )
    .1;
    for (a, b) in first
        .iter()
        .flatten()
        .flatten()
        .zip(second.iter().flatten().flatten())
    {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // With the default ξ (the learning rate) the Hessian term changes the alphas.
    let unrolled = tiny_search(tiny_nb201(), Method::from_name("darts2").unwrap()).1;
    assert_ne!(first, unrolled);
}

#[test]
fn divergence_keeps_the_last_good_state() {
    let config = SearchConfig {
        method: Method::Darts,
        epochs: 2,
        batch_size: 16,
        weights: WeightOptimConfig {
            learning_rate: 1e30,
            min_learning_rate: 1e30,
            grad_clip: None,
            weight_decay: 0.0,
            ..WeightOptimConfig::default()
        },
        ..SearchConfig::default()
    };
    let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
    match s.run(&digits(), |_| {}) {
        Err(SearchError::Diverged { step, value, .. }) => {
            assert!(!value.is_finite());
            assert_eq!(step, s.steps());
        }
        other => panic!("expected divergence, got {other:?}"),
    }
    assert!(
        s.alphas()
            .to_tables()
            .iter()
            .flatten()
            .flatten()
            .all(|a| a.is_finite())
    );
    struct Finite(bool);
    impl<B: Backend> ModuleVisitor<B> for Finite {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let v: Vec<f32> = p.val().into_data().convert::<f32>().to_vec().unwrap();
            self.0 &= v.iter().all(|x| x.is_finite());
        }
    }
    let mut finite = Finite(true);
    s.network().visit(&mut finite);
    assert!(finite.0, "the kept weights must be finite");
    // The kept state still derives an architecture.
    assert!(matches!(s.derive(), DerivedArch::Nb201(_)));
}

#[test]
fn invalid_settings_name_their_field() {
    let cases: Vec<(SearchConfig, &str)> = vec![
        (
            SearchConfig {
                epochs: 0,
                ..SearchConfig::default()
            },
            "epochs",
        ),
        (
            SearchConfig {
                train_portion: 1.0,
                ..SearchConfig::default()
            },
            "train_portion",
        ),
        (
            SearchConfig {
                weights: WeightOptimConfig {
                    learning_rate: -1.0,
                    ..WeightOptimConfig::default()
                },
                ..SearchConfig::default()
            },
            "weights.learning_rate",
        ),
        (
            SearchConfig {
                method: Method::Pdarts(PdartsConfig {
                    keep: vec![5],
                    ..PdartsConfig::default()
                }),
                ..SearchConfig::default()
            },
            "keep",
        ),
        (
            SearchConfig {
                method: Method::Snas(GumbelConfig {
                    tau_max: 1.0,
                    tau_min: 0.33,
                    dense_gradient: true,
                }),
                ..SearchConfig::default()
            },
            "dense_gradient",
        ),
    ];
    for (config, field) in cases {
        match config.check() {
            Err(SearchError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an error on {field}, got {other:?}"),
        }
    }
    assert!(matches!(
        Method::from_name("enas"),
        Err(SearchError::InvalidConfig {
            field: "method",
            ..
        })
    ));
    let bad_space = SupernetConfig::Darts(DartsSupernetConfig {
        layers: 2,
        ..DartsSupernetConfig::default()
    });
    assert!(Searcher::<B, _>::new(bad_space, SearchConfig::default(), Default::default()).is_err());
}

#[test]
fn derivation_follows_darts_and_nb201() {
    use nas_space::darts::DartsOp;
    use nas_space::nb201::Nb201Op;
    use nas_supernet::darts_search::supernet::{derive_genotype, derive_nb201};
    // Two nodes: edges (2←0), (2←1), (3←0), (3←1), (3←2); ops in PRIMITIVES order
    // (none, max_pool, avg_pool, skip, sep3, sep5, dil3, dil5).
    let row = |best: usize, p: f64| -> Vec<f64> {
        let mut r = vec![(1.0 - p) / 7.0; 8];
        r[best] = p;
        r
    };
    let mut normal = vec![
        row(4, 0.3),
        row(3, 0.5),
        row(6, 0.2),
        row(3, 0.6),
        row(5, 0.4),
    ];
    // `none` is strongest on (3←0) but never chosen: that edge's best other op counts.
    normal[2] = vec![0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0];
    let reduce = vec![
        row(1, 0.3),
        row(2, 0.3),
        row(1, 0.5),
        row(2, 0.2),
        row(7, 0.9),
    ];
    let g = derive_genotype(&normal, &reduce, 2, None);
    assert_eq!(
        g.normal,
        vec![
            (DartsOp::SkipConnect, 1),
            (DartsOp::SepConv3x3, 0),
            (DartsOp::SkipConnect, 1),
            (DartsOp::SepConv5x5, 2),
        ]
    );
    assert_eq!(
        g.reduce[2..],
        [(DartsOp::DilConv5x5, 2), (DartsOp::MaxPool3x3, 0)]
    );
    assert_eq!(g.normal_concat, vec![2, 3]);
    // A cap of one skip connection replaces the weaker one (0.5 on (2←1)) by its next choice.
    let capped = derive_genotype(&normal, &reduce, 2, Some(1));
    assert_eq!(
        capped
            .normal
            .iter()
            .filter(|(o, _)| *o == DartsOp::SkipConnect)
            .count(),
        1
    );
    assert_eq!(capped.normal[2], (DartsOp::SkipConnect, 1));

    // NAS-Bench-201: argmax per edge, `none` included.
    let probs: Vec<Vec<f64>> = (0..6)
        .map(|e| {
            let mut r = vec![0.1; 5];
            r[if e < 4 { 1 } else { e - 4 }] = 0.6 - e as f64 * 0.01;
            r
        })
        .collect();
    let a = derive_nb201(&probs, None);
    assert_eq!(a.edges[..4], [Nb201Op::SkipConnect; 4]);
    assert_eq!(a.edges[4], Nb201Op::None);
    let capped = derive_nb201(&probs, Some(2));
    assert_eq!(
        capped
            .edges
            .iter()
            .filter(|&&o| o == Nb201Op::SkipConnect)
            .count(),
        2
    );
    assert_eq!(capped.edges[..2], [Nb201Op::SkipConnect; 2]);
}

/// Convolutions run by one forward pass of `net` under `weights` (each `fast::Conv` is probed).
fn convolutions<N: SearchNetwork<B>>(net: &N, weights: &ArchWeights<B>) -> usize {
    use nas_supernet::burn::tensor::Distribution;
    let images = Tensor::<B, 4>::random(
        [2, 1, 8, 8],
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    nas_supernet::probe::probe_conv_outputs::<B, _>(|| {
        net.search_logits(images, weights);
    })
    .1
    .len()
}

#[test]
fn gdas_computes_only_the_sampled_operation_of_each_edge() {
    use nas_supernet::darts_search::alphas::{Alphas, Relaxation};
    let device = Default::default();
    let space = tiny_nb201();
    let layout = SupernetBuilder::<B>::layout(&space);
    let full = layout.full_mask();
    let net = SupernetBuilder::<B>::build(&space, 0, &full, &device).unwrap();
    let alphas = Alphas::<B>::new(&layout, 1e-3, 0, &device);
    let values: Vec<Tensor<B, 2>> = alphas.cells.iter().map(|p| p.val()).collect();
    let edges = full.cells[0].len();
    let ops = full.cells[0][0].len();
    let softmax = |mask: &ArchMask| {
        convolutions(
            &net,
            &ArchWeights::new(&values, mask, Relaxation::Softmax { tau: 1.0 }, 0.0, 0),
        )
    };
    // Convolutions outside the cells (stem, reduction blocks): every edge a skip connection.
    let only = |op: usize| {
        let mut m = full.clone();
        for edge in &mut m.cells[0] {
            for (o, alive) in edge.iter_mut().enumerate() {
                *alive = o == op;
            }
        }
        m
    };
    let skip = 1;
    let base = softmax(&only(skip));
    // Convolutions of one operation on one edge (of every cell, which share the alphas).
    let per_edge: Vec<usize> = (0..ops)
        .map(|o| (softmax(&only(o)) - base) / edges)
        .collect();
    assert!(
        per_edge.iter().filter(|&&c| c > 0).count() >= 2,
        "{per_edge:?}"
    );
    let all = softmax(&full);
    assert_eq!(all, base + edges * per_edge.iter().sum::<usize>());

    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..6 {
        let weights = ArchWeights::new(
            &values,
            &full,
            Relaxation::GumbelHard { tau: 1.0 },
            0.0,
            seed,
        );
        let sampled: Vec<usize> = (0..edges)
            .map(|e| weights.edge(0, e, 0).sampled.unwrap())
            .collect();
        let expected = base + sampled.iter().map(|&o| per_edge[o]).sum::<usize>();
        assert_eq!(
            convolutions(&net, &weights),
            expected,
            "seed {seed}: sampled {sampled:?}"
        );
        assert!(expected < all);
        seen.insert(sampled.clone());

        // The paper's gradient: the same sample and forward values, every operation computed
        // while the alphas take a gradient, only the sampled one when they do not.
        let dense = |values: &[Tensor<B, 2>]| {
            ArchWeights::new(
                values,
                &full,
                Relaxation::GumbelHardDense { tau: 1.0 },
                0.0,
                seed,
            )
        };
        let tracked = dense(&values);
        assert!((0..edges).all(|e| tracked.edge(0, e, 0).sampled.is_none()));
        assert_eq!(convolutions(&net, &tracked), all, "seed {seed}");
        // `detach` keeps a parameter's flag: a weight step also clears it.
        let detached: Vec<Tensor<B, 2>> = values
            .iter()
            .map(|v| v.clone().detach().set_require_grad(false))
            .collect();
        let held = dense(&detached);
        let held_sampled: Vec<usize> = (0..edges)
            .map(|e| held.edge(0, e, 0).sampled.unwrap())
            .collect();
        assert_eq!(held_sampled, sampled);
        assert_eq!(convolutions(&net, &held), expected);
        let images = Tensor::<B, 4>::ones([2, 1, 8, 8], &device);
        let sparse_out = net.search_logits(images.clone(), &weights).into_data();
        let dense_out = net.search_logits(images, &tracked).into_data();
        sparse_out.assert_approx_eq::<f32>(&dense_out, Default::default());
    }
    assert!(seen.len() > 1, "the samples should differ between seeds");
}

/// Search cells of an NB201 supernet and the candidate operations built in them.
#[derive(Debug, Default)]
struct Built {
    cells: usize,
    ops: usize,
    in_ops: usize,
}

impl<Bk: Backend> ModuleVisitor<Bk> for Built {
    fn enter_module(&mut self, name: &str, container: &str) {
        if container == "Struct:Nb201SearchCell" && name == "edges" {
            self.cells += 1;
        }
        if container == "Struct:MixedOp" && name == "ops" {
            self.in_ops += 1;
        }
        if self.in_ops > 0 && container == "Enum:Op" {
            self.ops += 1;
        }
    }
    fn exit_module(&mut self, name: &str, container: &str) {
        if container == "Struct:MixedOp" && name == "ops" {
            self.in_ops -= 1;
        }
    }
}

fn built<N: Module<B>>(net: &N) -> (usize, usize) {
    let mut b = Built::default();
    net.visit(&mut b);
    (b.cells, b.ops)
}

#[test]
fn pdarts_grows_the_depth_and_shrinks_the_candidates_between_stages() {
    let config = SearchConfig {
        method: tiny_pdarts(),
        epochs: 1,
        batch_size: 16,
        seed: 5,
        ..SearchConfig::default()
    };
    let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
    // Stage 0: one cell per stage (3 cells), every operation of the 6 edges.
    assert_eq!(built(s.network()), (3, 3 * 6 * 5));
    let mut alive = Vec::new();
    let report = s
        .run(&digits(), |e| alive.push((e.stage, e.alive_ops)))
        .unwrap();
    assert_eq!(alive, vec![(0, 30), (1, 18)]);
    // Stage 1: one more cell per stage (`add_cells: [0, 1]`), only the 3 strongest
    // operations of every edge (`keep: [3]`) built.
    assert_eq!(built(s.network()), (6, 6 * 6 * 3));
    for e in 0..6 {
        assert_eq!(report.mask.alive_on(0, e), 3);
    }
}

#[test]
fn asap_prunes_weak_operations_during_the_search() {
    use nas_supernet::darts_search::method::AsapConfig;
    let data = ImageDataset::digits().sample(256, 0);
    let run = |every_step: bool| {
        let config = SearchConfig {
            method: Method::Asap(AsapConfig {
                threshold: 0.9,
                every_step,
                ..AsapConfig::default()
            }),
            epochs: 2,
            batch_size: 16,
            seed: 3,
            alphas: AlphaOptimConfig {
                learning_rate: 0.05,
                ..AlphaOptimConfig::default()
            },
            ..SearchConfig::default()
        };
        let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
        let mut alive = Vec::new();
        let report = s.run(&data, |e| alive.push(e.alive_ops)).unwrap();
        (alive, report)
    };
    // UniNAS' schedule: nothing is pruned before the second epoch starts.
    let (per_epoch, _) = run(false);
    assert_eq!(per_epoch[0], 30, "{per_epoch:?}");
    assert!(per_epoch[1] < 30, "{per_epoch:?}");
    // The paper's: pruned after alpha steps of the first epoch already.
    let (per_step, report) = run(true);
    assert!(per_step[0] < 30, "{per_step:?}");
    assert!(
        per_step[1] <= per_step[0],
        "pruning is never undone: {per_step:?}"
    );
    for (e, row) in report.probabilities.cells[0].iter().enumerate() {
        assert!(
            report.mask.alive_on(0, e) >= 1,
            "every edge keeps an operation"
        );
        for (o, &p) in row.iter().enumerate() {
            if !report.mask.alive(0, e, o) {
                assert_eq!(p, 0.0, "a pruned operation has no weight");
            }
        }
    }
}

#[test]
fn op_macs_count_each_candidate_at_its_cells_shapes() {
    let config = SearchConfig {
        epochs: 1,
        batch_size: 16,
        ..SearchConfig::default()
    };
    let s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
    let macs = s.op_macs([1, 8, 8]);
    // NB201's operations: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
    let edge = &macs[0][0];
    assert_eq!((edge[0], edge[1], edge[4]), (0.0, 0.0, 0.0), "{edge:?}");
    assert!(edge[2] > 0.0);
    assert_eq!(
        edge[3],
        9.0 * edge[2],
        "a 3×3 convolution costs 9 times a 1×1"
    );
    assert!(
        macs[0].iter().all(|e| e == edge),
        "every edge sees the same shapes"
    );
    // Twice the resolution, four times the MACs.
    assert_eq!(s.op_macs([1, 16, 16])[0][0][3], 4.0 * edge[3]);
}

#[test]
fn snas_resource_term_lowers_the_expected_cost_as_its_weight_grows() {
    let data = ImageDataset::digits().sample(256, 0);
    let expected_macs = |eta: f64| {
        let config = SearchConfig {
            method: Method::from_name("snas").unwrap(),
            epochs: 3,
            batch_size: 16,
            seed: 4,
            alphas: AlphaOptimConfig {
                learning_rate: 0.03,
                resource_weight: eta,
                ..AlphaOptimConfig::default()
            },
            ..SearchConfig::default()
        };
        let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
        let report = s.run(&data, |_| {}).unwrap();
        let macs = s.op_macs([1, 8, 8]);
        report
            .probabilities
            .cells
            .iter()
            .zip(&macs)
            .flat_map(|(p, m)| p.iter().zip(m))
            .flat_map(|(p, m)| p.iter().zip(m))
            .map(|(p, m)| p * m)
            .sum::<f64>()
    };
    let free = expected_macs(0.0);
    let mild = expected_macs(1.0);
    let strong = expected_macs(30.0);
    eprintln!("expected MACs of the cells: {free:.0} free, {mild:.0} at 1, {strong:.0} at 30");
    assert!(mild < free, "{mild} vs {free}");
    assert!(strong < mild, "{strong} vs {mild}");
    assert!(strong < 0.7 * free, "{strong} vs {free}");
}

#[test]
fn single_level_search_trains_both_on_all_the_data() {
    let data = ImageDataset::digits().sample(64, 0);
    let steps = |single_level: bool| {
        let config = SearchConfig {
            method: Method::from_name("snas").unwrap(),
            epochs: 1,
            batch_size: 16,
            single_level,
            ..SearchConfig::default()
        };
        let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
        s.run(&data, |_| {}).unwrap();
        s.steps()
    };
    // Bi-level: half of the 64 images train the weights (2 batches of 16); single-level: all.
    assert_eq!((steps(false), steps(true)), (2, 4));
    let config = SearchConfig {
        method: Method::Darts2(UnrolledConfig::default()),
        single_level: true,
        ..SearchConfig::default()
    };
    let Err(err) = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()) else {
        panic!("second order needs the bi-level split");
    };
    assert!(
        matches!(
            &err,
            SearchError::InvalidConfig {
                field: "single_level",
                ..
            }
        ),
        "{err}"
    );
}

/// Second-order DARTS on the DARTS space is a finite difference of alpha gradients at
/// w ± ε·v: unless max pooling's window choices are frozen (as the ReLUs' masks are), a window
/// whose maximum changes hands between the two sides adds a jump / 2ε, and which windows do
/// depends on rounding. Two correct CPU implementations (this library's kernels under
/// `Autodiff<NdArray>`, Burn's own under another checkpointing strategy) then disagreed by
/// 50 % of the gradient's largest entry (C = 8, 5 cells, batch 8 of 16×16); frozen, by 2 %.
/// (At C = 4 no window changed hands: both ways agreed to 5e-6.)
#[test]
fn second_order_gradient_does_not_depend_on_the_kernels() {
    use nas_supernet::burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    use nas_supernet::burn::backend::{Autodiff, NdArray};
    use nas_supernet::burn::tensor::backend::AutodiffBackend;
    use nas_supernet::burn::tensor::{Device, Int, TensorData};
    use nas_supernet::darts_search::{EpochPlan, StepContext};
    use nas_supernet::data::ImageBatch;
    use nas_supernet::driver::{Checkpoint, EpochSolver};
    type Other = Autodiff<NdArray, BalancedCheckpointing>;

    fn searcher<A: AutodiffBackend>(name: &str, d: &Device<A>) -> Searcher<A, SupernetConfig> {
        let space = SupernetConfig::Darts(DartsSupernetConfig {
            channels: 8,
            layers: 5,
            steps: 4,
            stem_multiplier: 3,
            in_channels: 3,
            num_classes: 10,
        });
        let config = SearchConfig {
            method: Method::from_name(name).unwrap(),
            batch_size: 8,
            ..SearchConfig::default()
        };
        Searcher::new(space, config, d.clone()).unwrap()
    }
    fn gradient<A: AutodiffBackend>(ckpt: &Checkpoint, data: &ImageDataset) -> Vec<f32> {
        let d: Device<A> = Default::default();
        let mut s = searcher::<A>("darts2", &d);
        s.epochs(data).unwrap().load(ckpt).unwrap();
        let batch = |seed: u64| {
            let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
            let px: Vec<f32> = (0..8 * 3 * 16 * 16)
                .map(|_| rng.random::<f32>() * 2.0 - 1.0)
                .collect();
            let labels: Vec<i64> = (0..8).map(|_| rng.random_range(0..10)).collect();
            ImageBatch {
                images: Tensor::<A, 4>::from_data(TensorData::new(px, [8, 3, 16, 16]), &d),
                targets: Tensor::<A, 1, Int>::from_data(TensorData::new(labels, [8]), &d),
            }
        };
        let ctx = StepContext::new(0.025, EpochPlan::default());
        s.alpha_gradient(&batch(1), &batch(2), &ctx)
            .unwrap()
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }
    let data = ImageDataset::digits().sample(16, 1);
    let mut ckpt = Checkpoint::new("memory");
    searcher::<B>("darts2", &Default::default())
        .epochs(&data)
        .unwrap()
        .save(&mut ckpt)
        .unwrap();
    let ours = gradient::<B>(&ckpt, &data);
    let other = gradient::<Other>(&ckpt, &data);
    let scale = ours.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(&other)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
        / scale;
    eprintln!("second-order alpha gradient: two implementations differ by {diff:.2e} (relative)");
    assert!(scale > 0.0 && diff < 0.1, "{diff}");
}

/// Every trainable float parameter of `net`, flattened, in visiting order (the frozen
/// affine parameters of the search cells' batch norms left out).
fn parameter_values<N: Module<B>>(net: &N) -> Vec<Vec<f32>> {
    struct Values(Vec<Vec<f32>>);
    impl<Bk: Backend> ModuleVisitor<Bk> for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            if param.is_require_grad() {
                self.0
                    .push(param.val().into_data().convert::<f32>().to_vec().unwrap());
            }
        }
    }
    let mut v = Values(Vec::new());
    net.visit(&mut v);
    v.0
}

#[test]
fn fair_warm_up_trains_every_operation_on_every_step() {
    use nas_supernet::darts_search::WarmupPaths;
    // One GDAS step with the alphas held: how many parameter tensors does it change?
    let changed = |paths: WarmupPaths| {
        let mut config = SearchConfig {
            method: Method::from_name("gdas").unwrap(),
            epochs: 1,
            batch_size: 16,
            seed: 3,
            ..SearchConfig::default()
        };
        config.alphas.warmup_epochs = 1;
        config.alphas.warmup_paths = paths;
        let mut s = Searcher::<B, _>::new(tiny_nb201(), config, Default::default()).unwrap();
        let before = parameter_values(s.network());
        let alphas = s.alphas().to_tables();
        s.run(&digits(), |e| assert!(e.valid_loss.is_nan(), "{e:?}"))
            .unwrap();
        assert_eq!(s.steps(), 1);
        assert_eq!(s.alphas().to_tables(), alphas, "the alphas are held");
        let after = parameter_values(s.network());
        assert_eq!(before.len(), after.len());
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        (moved, before.len())
    };
    let (single, total) = changed(WarmupPaths::Method);
    let (mixture, _) = changed(WarmupPaths::Mixture);
    let (fair, _) = changed(WarmupPaths::Fair);
    // GDAS' own path computes one operation per edge: the other convolutions keep their
    // weights. The mixture reaches every parameter; the fair paths compute every operation,
    // and reach all but those of an operation whose path cuts its output off (`none` on
    // every edge out of its node).
    let counts = format!("single {single}, mixture {mixture}, fair {fair} of {total}");
    assert_eq!(mixture, total, "{counts}");
    assert!(single < fair && fair <= total, "{counts}");
    assert!(fair * 5 >= total * 4, "{counts}");
    // The configuration keeps its old serialized form at the default, and names the paths
    // otherwise.
    let mut config = SearchConfig::default();
    let plain = serde_json::to_string(&config).unwrap();
    assert!(!plain.contains("warmup_paths"), "{plain}");
    config.alphas.warmup_paths = WarmupPaths::Fair;
    let fair_json = serde_json::to_string(&config).unwrap();
    assert!(
        fair_json.contains(r#""warmup_paths":"fair""#),
        "{fair_json}"
    );
    let back: SearchConfig = serde_json::from_str(&fair_json).unwrap();
    assert_eq!(back, config);
}
