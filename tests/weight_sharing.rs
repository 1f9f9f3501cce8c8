//! The weight-sharing estimator: deterministic scores, typed errors, and use by a multi-trial
//! strategy through the search loop.

mod support;

use nas::estimate::weight_sharing::{WeightSharingConfig, WeightSharingEstimator};
use nas::estimate::{Budget, EstimateError, Estimator};
use nas::space::SearchSpace;
use nas::space::spos::{SposArch, SposSpace};
use nas::strategy::search;
use nas::strategy::{Constrained, RandomSearch, SposEvolution, SposEvolutionConfig};
use nas::supernet::backend::DefaultBackend;
use nas::supernet::chain_net::ChainNetConfig;
use nas::supernet::data::ImageDataset;
use nas::supernet::network::seeded;
use nas::supernet::oneshot::{SinglePath, SposSupernet};

type B = DefaultBackend;

fn setup() -> (SposSpace, WeightSharingEstimator<B, SposSupernet<B>>) {
    let device = Default::default();
    let space = support::spaces::tiny_spos();
    let net = ChainNetConfig::new(1, 10).with_stem_stride(1);
    let supernet = seeded(&device, 0, || net.spos_supernet::<B>(&space, &device)).unwrap();
    let (train, valid) = ImageDataset::digits().sample(160, 0).split(0.6, 0).unwrap();
    let normalize = train.channel_stats();
    let estimator = WeightSharingEstimator::new(
        supernet,
        &train,
        &valid,
        &normalize,
        WeightSharingConfig {
            recalibration_batches: 2,
            batch_size: 32,
            seed: 1,
        },
        &device,
    )
    .unwrap();
    (space, estimator)
}

#[test]
fn same_architecture_same_score_and_foreign_architectures_are_errors() {
    let (space, mut estimator) = setup();
    let a = SposArch::from_indices(&[0, 1, 2, 3]).unwrap();
    let b = SposArch::from_indices(&[3, 3, 0, 1]).unwrap();
    let first = estimator.estimate(&a, &Budget::full()).unwrap();
    // Scoring another architecture in between recalibrates other batch norms; the first
    // architecture's score does not depend on it.
    let other = estimator.estimate(&b, &Budget::full()).unwrap();
    let again = estimator.estimate(&a, &Budget::full()).unwrap();
    assert_eq!(first.objective, again.objective);
    assert_eq!(first.get("valid_loss"), again.get("valid_loss"));
    assert!((0.0..=100.0).contains(&first.objective));
    assert_eq!(
        first.get("macs"),
        Some(estimator.supernet().path_macs(&a, [1, 8, 8]) as f64)
    );
    assert_ne!(first.get("macs"), other.get("macs"));
    let foreign = SposArch::from_indices(&[0, 1]).unwrap();
    assert!(space.validate(&foreign).is_err());
    assert!(matches!(
        estimator.estimate(&foreign, &Budget::full()),
        Err(EstimateError::Supernet(_))
    ));
}

/// A supernet trained by uniform single-path sampling scores architectures well above chance
/// (10 classes: 10 %) on held-out digits, and above its own untrained score: the estimator
/// measures the trained weights, not a constant.
#[test]
fn a_trained_supernet_scores_above_chance() {
    use nas::supernet::oneshot::train::train_supernet;
    use nas::supernet::oneshot::{ArchSampler, SinglePath, UniformSampler};
    use nas::supernet::train::TrainConfig;

    let device = Default::default();
    let space = support::spaces::tiny_spos();
    let net = ChainNetConfig::new(1, 10).with_stem_stride(1);
    let supernet = seeded(&device, 0, || net.spos_supernet::<B>(&space, &device)).unwrap();
    let (train, valid) = ImageDataset::digits().sample(600, 0).split(0.7, 0).unwrap();
    let normalize = train.channel_stats();
    let config = WeightSharingConfig {
        recalibration_batches: 4,
        batch_size: 32,
        seed: 1,
    };
    let arch = SposArch::from_indices(&[0, 1, 2, 3]).unwrap();
    let score = |supernet: SposSupernet<B>| {
        WeightSharingEstimator::new(supernet, &train, &valid, &normalize, config, &device)
            .unwrap()
            .estimate(&arch, &Budget::full())
            .unwrap()
            .objective
    };
    let untrained = score(supernet.clone());
    let mut sampler = UniformSampler::new(space.clone(), 3);
    let train_config = TrainConfig {
        epochs: 15,
        batch_size: 32,
        learning_rate: 0.2,
        seed: 3,
        ..TrainConfig::default()
    };
    let (trained, report) = train_supernet(
        supernet,
        &train,
        &normalize,
        &train_config,
        &device,
        |n, x, _| n.path_logits(x, &sampler.sample_arch()),
        |_, _| {},
    )
    .unwrap();
    let trained = score(trained);
    println!("untrained {untrained:.1} %, trained {trained:.1} %");
    assert!(
        trained > 40.0,
        "trained supernet: {trained:.1} % on 10 classes (untrained {untrained:.1} %; training loss {:?})",
        report.train_loss
    );
    assert!(trained > untrained + 20.0, "{untrained:.1} -> {trained:.1}");
}

#[test]
fn strategies_use_it_through_the_search_loop() {
    let (space, mut estimator) = setup();
    let mut random = RandomSearch::<SposSpace>::new(7);
    let result = search::run(&space, &mut random, &mut estimator, 4, |_| {}).unwrap();
    assert_eq!(result.trials.len(), 4);
    assert!(result.best().is_some());

    let evo = SposEvolution::<SposSpace>::new(
        SposEvolutionConfig {
            population_size: 4,
            top_k: 2,
            mutation_count: 1,
            crossover_count: 1,
            ..SposEvolutionConfig::default()
        },
        3,
    )
    .unwrap();
    let limit = {
        let net = estimator.supernet();
        let a = SposArch::from_indices(&[1, 1, 1, 1]).unwrap();
        net.path_macs(&a, [1, 8, 8])
    };
    let macs_net = estimator.supernet().clone();
    let mut constrained = Constrained::new(evo, move |a: &SposArch| {
        macs_net.path_macs(a, [1, 8, 8]) <= limit
    });
    let result = search::run(&space, &mut constrained, &mut estimator, 8, |_| {}).unwrap();
    assert_eq!(result.trials.len(), 8);
    for t in &result.trials {
        let m = t.outcome.complete().unwrap();
        assert!(m.get("macs").unwrap() <= limit as f64);
    }
}
