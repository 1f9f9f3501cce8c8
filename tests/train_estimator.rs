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
    train_estimator()
}

type Net = nas::supernet::nb201_net::Nb201Network<DefaultBackend>;
type Built = Result<Net, nas::supernet::SupernetError>;

/// The embedded digits, split 70 / 30 into training and validation images.
fn digits() -> (ImageDataset, ImageDataset) {
    ImageDataset::digits().split(0.7, 0).unwrap()
}

/// A narrow NAS-Bench-201 network (C = 4, one cell per stage) for the digits.
fn small_net() -> Nb201NetConfig {
    Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    }
}

/// One epoch of training in batches of 64.
fn one_epoch() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: 64,
        learning_rate: 0.05,
        ..TrainConfig::default()
    }
}

/// The cell every estimate here scores.
fn cell() -> Nb201Arch {
    ARCH.parse().unwrap()
}

const ARCH: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|";

fn train_estimator()
-> TrainEstimator<DefaultBackend, Net, impl FnMut(&Nb201Arch, &Device<DefaultBackend>) -> Built> {
    schedule_of(1)
}

#[test]
fn estimates_are_complete_and_reproducible() {
    let mut est = estimator();
    let arch = cell();
    let a = est.estimate(&arch, &Budget::fidelity(2.0)).unwrap();
    assert_eq!(a.curves["valid_accuracy"].len(), 2);
    assert_eq!(a.get("epochs"), Some(2.0));
    assert!(a.get("params").unwrap() > 1000.0);
    assert!(a.get("latency_ms").unwrap() > 0.0);
    assert!(a.get("macs").unwrap() > 1000.0);
    assert_eq!(a.get("data_fraction"), Some(1.0));
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
fn the_estimator_learns_the_digits() {
    // 12 epochs on the 1,257 training digits (240 steps): well above the 10 % of chance, which
    // an estimator that does not train (or scores a constant) would give.
    let (train, valid) = digits();
    let config = TrainConfig {
        epochs: 12,
        ..one_epoch()
    };
    let mut est = TrainEstimator::<DefaultBackend, _, _>::new(
        small_net(),
        train,
        valid,
        config,
        Default::default(),
    )
    .unwrap();
    let m = est.estimate(&cell(), &Budget::full()).unwrap();
    assert!(m.objective > 60.0, "validation accuracy {}", m.objective);
    let curve = &m.curves["train_loss"];
    assert!(curve.last() < curve.first(), "training loss {curve:?}");
}

#[test]
fn invalid_settings_are_typed_errors() {
    let (train, valid) = digits();
    let net = small_net();
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

#[test]
fn proxy_settings_shrink_the_task() {
    let arch = cell();
    let full = train_estimator().estimate(&arch, &Budget::full()).unwrap();
    let mut proxy = train_estimator()
        .with_data_fraction(0.5)
        .unwrap()
        .with_resolution(4, 4)
        .unwrap();
    assert_eq!(proxy.train_set().len(), 128);
    assert_eq!(proxy.train_set().shape(), [1, 4, 4]);
    let small = proxy.estimate(&arch, &Budget::full()).unwrap();
    assert_eq!(small.get("data_fraction"), Some(0.5));
    assert_eq!(small.get("resolution"), Some(4.0));
    // A quarter of the pixels: about a quarter of the multiply-accumulates.
    let ratio = small.get("macs").unwrap() / full.get("macs").unwrap();
    assert!((0.2..0.35).contains(&ratio), "{ratio}");
    assert!(train_estimator().with_data_fraction(0.0).is_err());
    assert!(train_estimator().with_resolution(0, 4).is_err());
}

/// A network configuration builds the networks directly, the backend named once, and the
/// estimates equal those of the closure that calls the same configuration.
#[test]
fn a_network_config_builds_the_networks() {
    let (train, valid) = digits();
    let net = small_net();
    let device = Default::default();
    let mut from_config = TrainEstimator::<DefaultBackend, _, _>::new(
        net,
        train.sample(256, 1),
        valid.sample(128, 2),
        one_epoch(),
        device,
    )
    .unwrap();
    let arch = cell();
    let a = from_config.estimate(&arch, &Budget::full()).unwrap();
    let b = train_estimator().estimate(&arch, &Budget::full()).unwrap();
    assert_eq!(a.objective, b.objective);
    assert_eq!(a.get("params"), b.get("params"));
    assert_eq!(a.get("macs"), b.get("macs"));
}

/// The best architecture's network, trained and saved with its architecture and
/// configuration, loads back (on the inference backend) into a network that scores exactly
/// what training reported; a saved directory that lost its weights is a typed error.
#[test]
fn a_trained_network_is_saved_and_loads_back() {
    use nas::supernet::burn::nn::loss::CrossEntropyLossConfig;
    use nas::supernet::burn::tensor::backend::AutodiffBackend;
    use nas::supernet::data::{ImageBatcher, epoch_batches};
    use nas::supernet::persist::load_network;
    use nas::supernet::train::evaluate;
    type Inner = <DefaultBackend as AutodiffBackend>::InnerBackend;

    let (train, valid) = digits();
    let (train, valid) = (train.sample(256, 1), valid.sample(128, 2));
    let mut estimator = TrainEstimator::<DefaultBackend, _, _>::new(
        small_net(),
        train.clone(),
        valid.clone(),
        one_epoch(),
        Default::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("best");
    let metrics = estimator
        .train_and_save(&cell(), &Budget::full(), &saved)
        .unwrap();
    let device = Default::default();
    let loaded = load_network::<Inner, _, Nb201Arch, Nb201NetConfig>(&saved, &device, |a, c, d| {
        c.init(a, d)
    })
    .unwrap();
    assert_eq!(loaded.arch, cell());
    assert_eq!(loaded.config, small_net());
    assert_eq!(
        loaded.meta["metrics"]["objective"].as_f64(),
        Some(metrics.objective)
    );
    let batcher = ImageBatcher::new(valid.shape())
        .with_normalize(train.channel_stats())
        .unwrap();
    let batches = epoch_batches::<Inner>(&valid, batcher, 64, None, &device).unwrap();
    let loss = CrossEntropyLossConfig::new().init(&device);
    let (_, accuracy) = evaluate(&loaded.network, batches, &loss);
    assert!(
        (accuracy - metrics.objective).abs() < 1e-9,
        "{accuracy} vs {}",
        metrics.objective
    );
    std::fs::remove_file(saved.join("weights.mpk")).unwrap();
    let err = load_network::<Inner, _, Nb201Arch, Nb201NetConfig>(&saved, &device, |a, c, d| {
        c.init(a, d)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("weights"), "{err}");
}

/// The estimator with `epochs` as its whole schedule.
fn schedule_of(
    epochs: usize,
) -> TrainEstimator<DefaultBackend, Net, impl FnMut(&Nb201Arch, &Device<DefaultBackend>) -> Built> {
    let (train, valid) = digits();
    let net = small_net();
    TrainEstimator::new(
        move |arch: &Nb201Arch, device: &_| net.init::<DefaultBackend>(arch, device),
        train.sample(256, 1),
        valid.sample(128, 2),
        TrainConfig {
            epochs,
            ..one_epoch()
        },
        Default::default(),
    )
    .unwrap()
}

#[test]
fn continued_training_reaches_the_same_curve_with_fewer_epochs() {
    let arch = cell();
    // In one go: 3 epochs of the 3-epoch schedule.
    let mut once = schedule_of(3).continued();
    let whole = once.estimate(&arch, &Budget::fidelity(3.0)).unwrap();
    assert_eq!(once.epochs_trained(), 3);
    // Rung by rung: 1 epoch, then 3, continuing.
    let mut rungs = schedule_of(3).continued();
    let first = rungs.estimate(&arch, &Budget::fidelity(1.0)).unwrap();
    let last = rungs.estimate(&arch, &Budget::fidelity(3.0)).unwrap();
    assert_eq!(
        first.curves["valid_accuracy"][..],
        whole.curves["valid_accuracy"][..1]
    );
    assert_eq!(
        last.curves["valid_accuracy"],
        whole.curves["valid_accuracy"]
    );
    assert_eq!(last.curves["train_loss"], whole.curves["train_loss"]);
    assert_eq!(last.objective, whole.objective);
    assert_eq!(last.get("epochs_trained"), Some(2.0));
    assert_eq!((rungs.epochs_trained(), rungs.epochs_requested()), (3, 4));
    // A smaller budget afterwards is answered from the kept curve, without training.
    let again = rungs.estimate(&arch, &Budget::fidelity(2.0)).unwrap();
    assert_eq!(
        again.curves["valid_accuracy"][..],
        whole.curves["valid_accuracy"][..2]
    );
    assert_eq!(again.get("epochs_trained"), Some(0.0));
    assert_eq!(rungs.epochs_trained(), 3);
    // Another architecture starts from scratch.
    let other: Nb201Arch =
        "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
            .parse()
            .unwrap();
    rungs.estimate(&other, &Budget::fidelity(2.0)).unwrap();
    assert_eq!((rungs.epochs_trained(), rungs.checkpoints()), (5, 2));
    // A budget beyond the schedule is a typed error that says what to set.
    match rungs.estimate(&arch, &Budget::fidelity(4.0)) {
        Err(EstimateError::InvalidConfig(m)) => assert!(m.contains("max_fidelity"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hyperband_rungs_continue_through_the_search_loop() {
    use nas::strategy::{Hyperband, HyperbandConfig, Search};
    let space = Nb201Space::default();
    let config = HyperbandConfig {
        min_fidelity: 1.0,
        max_fidelity: 3.0,
        eta: 3.0,
    };
    let run = |continued: bool| {
        let mut hb = Hyperband::<Nb201Space>::new(config, 3).unwrap();
        let search = Search::new(&space, &mut hb).trials(8).seed(3);
        if continued {
            let mut est = schedule_of(3).continued();
            let r = search.run(&mut est).unwrap();
            (r, est.epochs_trained(), est.epochs_requested())
        } else {
            let mut est = schedule_of(3);
            let r = search.run(&mut est).unwrap();
            let epochs = r
                .trials
                .iter()
                .filter_map(|t| t.outcome.complete().and_then(|m| m.get("epochs")))
                .sum::<f64>() as usize;
            (r, epochs, epochs)
        }
    };
    let (cont, trained, requested) = run(true);
    let (_, scratch_epochs, _) = run(false);
    // The first bracket: 3 cells for 1 epoch, the best continued to 3.
    assert_eq!(requested, scratch_epochs);
    assert!(trained < requested, "{trained} of {requested} epochs");
    let promoted = cont
        .trials
        .iter()
        .filter(|t| t.budget.fidelity == Some(3.0))
        .filter_map(|t| t.outcome.complete())
        .filter(|m| m.get("epochs_trained") < m.get("epochs"))
        .count();
    assert!(promoted >= 1, "a promoted cell continued its training");
}

/// The estimator passes the training tricks on: distillation needs a teacher and changes the
/// training; Polyak averaging changes the scored network, also when training continues.
#[test]
fn the_estimator_distils_and_averages() {
    use nas::supernet::burn::module::AutodiffModule;
    use nas::supernet::train::{Distillation, WeightAveraging, teacher};
    let arch = cell();
    let plain = schedule_of(2).estimate(&arch, &Budget::full()).unwrap();
    // Distillation without a teacher is refused before any training.
    let (train, valid) = digits();
    let net = small_net();
    let distilling = TrainConfig {
        epochs: 2,
        distillation: Some(Distillation::default()),
        ..one_epoch()
    };
    let make = |config: TrainConfig| {
        TrainEstimator::<DefaultBackend, _, _>::new(
            net,
            train.sample(256, 1),
            valid.sample(128, 2),
            config,
            Default::default(),
        )
        .unwrap()
    };
    match make(distilling.clone()).estimate(&arch, &Budget::full()) {
        Err(EstimateError::InvalidConfig(m)) => assert!(m.contains("with_teacher"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A teacher: the same cell trained 2 epochs by the library.
    let device = Default::default();
    let model = net.init::<DefaultBackend>(&arch, &device).unwrap();
    let (model, _) = nas::supernet::train::fit(
        model,
        &train.sample(256, 1),
        &valid.sample(128, 2),
        &train.sample(256, 1).channel_stats(),
        &TrainConfig {
            epochs: 2,
            ..one_epoch()
        },
        &device,
        |_, _: &nas::supernet::train::TrainReport| {},
    )
    .unwrap();
    let distilled = make(distilling)
        .with_teacher(teacher(model.valid()))
        .estimate(&arch, &Budget::full())
        .unwrap();
    assert_ne!(distilled.curves["train_loss"], plain.curves["train_loss"]);
    // Averaging: the same training, another scored network.
    let averaging = TrainConfig {
        epochs: 2,
        averaging: Some(WeightAveraging::last_epochs(1)),
        ..one_epoch()
    };
    let averaged = make(averaging.clone())
        .estimate(&arch, &Budget::full())
        .unwrap();
    assert_eq!(averaged.curves["train_loss"], plain.curves["train_loss"]);
    assert_ne!(averaged.get("valid_loss"), plain.get("valid_loss"));
    // Continued in two rungs, it ends on the same average.
    let mut rungs = make(averaging).continued();
    rungs.estimate(&arch, &Budget::fidelity(1.0)).unwrap();
    let last = rungs.estimate(&arch, &Budget::fidelity(2.0)).unwrap();
    assert_eq!(last.get("valid_loss"), averaged.get("valid_loss"));
}
