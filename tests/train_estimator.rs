//! The train-from-scratch estimator through the search loop, on the embedded digits.

use nas::estimate::train::TrainEstimator;
use nas::estimate::{Budget, EstimateError, Estimator};
use nas::space::nb201::{Nb201Arch, Nb201Space};
use nas::strategy::search;
use nas::strategy::{Outcome, RegularizedEvolution, RegularizedEvolutionConfig};
use nas::supernet::backend::DefaultBackend;
use nas::supernet::burn::tensor::Device;
use nas::supernet::data::ImageDataset;
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::train::TrainConfig;

fn estimator() -> impl Estimator<Nb201Arch> {
    let (train, valid) = ImageDataset::digits().split(0.7, 0).unwrap();
    let net = Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    };
    let config = TrainConfig {
        epochs: 1,
        batch_size: 64,
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    TrainEstimator::new(
        move |arch: &Nb201Arch, device: &_| net.init::<DefaultBackend>(arch, device),
        train.sample(256, 1),
        valid.sample(128, 2),
        config,
        Default::default(),
    )
    .unwrap()
}

#[test]
fn estimates_are_complete_and_reproducible() {
    let mut est = estimator();
    let arch: Nb201Arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
        .parse()
        .unwrap();
    let a = est.estimate(&arch, &Budget::fidelity(2.0)).unwrap();
    assert_eq!(a.curves["valid_accuracy"].len(), 2);
    assert_eq!(a.get("epochs"), Some(2.0));
    assert!(a.get("params").unwrap() > 1000.0);
    assert!(a.get("latency_ms").unwrap() > 0.0);
    assert!((0.0..=100.0).contains(&a.objective));
    let b = est.estimate(&arch, &Budget::fidelity(2.0)).unwrap();
    assert_eq!(a.objective, b.objective);
    assert_eq!(a.curves, b.curves);
    assert!(matches!(
        est.estimate(&arch, &Budget::fidelity(f64::NAN)),
        Err(EstimateError::InvalidConfig(_))
    ));
}

#[test]
fn invalid_settings_are_typed_errors() {
    let (train, valid) = ImageDataset::digits().split(0.7, 0).unwrap();
    let net = Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    };
    let build = move |arch: &Nb201Arch, device: &Device<DefaultBackend>| {
        net.init::<DefaultBackend>(arch, device)
    };
    let bad = TrainConfig {
        epochs: 0,
        ..TrainConfig::default()
    };
    let e = TrainEstimator::<DefaultBackend, _, _>::new(
        build,
        train.clone(),
        valid.clone(),
        bad,
        Default::default(),
    );
    assert!(matches!(e, Err(EstimateError::InvalidConfig(m)) if m.contains("epochs")));
    let empty = train.subset(&[]);
    let e = TrainEstimator::<DefaultBackend, _, _>::new(
        build,
        empty,
        valid,
        TrainConfig::default(),
        Default::default(),
    );
    assert!(matches!(e, Err(EstimateError::InvalidConfig(_))));
}

#[test]
fn drives_a_search() {
    let space = Nb201Space::default();
    let mut rea = RegularizedEvolution::<Nb201Space>::new(
        RegularizedEvolutionConfig {
            population_size: 2,
            sample_size: 2,
        },
        0,
    )
    .unwrap();
    let mut est = estimator();
    let result = search::run(&space, &mut rea, &mut est, 3, |_| {}).unwrap();
    assert_eq!(result.trials.len(), 3);
    assert!(
        result
            .trials
            .iter()
            .all(|t| matches!(t.outcome, Outcome::Complete(_)))
    );
    assert!(result.best().is_some());
}
