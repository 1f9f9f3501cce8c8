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
