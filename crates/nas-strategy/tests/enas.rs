//! ENAS on tiny supernets: the alternation runs, the controller learns from shared-weight
//! rewards, derivation returns a valid architecture, the same seed gives the same search, and
//! bad input is a typed error that keeps the finished work.

use nas_space::darts::{DartsConfig, DartsSpace};
use nas_space::nb201::Nb201Space;
use nas_space::{SearchSpace, Sequential, TextFormat};
use nas_strategy::controller::ControllerConfig;
use nas_strategy::{Enas, EnasConfig, EnasError};
use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn::module::AutodiffModule;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use nas_supernet::darts_search::supernet::{DartsSupernet, DartsSupernetConfig};
use nas_supernet::data::{ImageDataset, Normalize};
use nas_supernet::nb201_net::Nb201NetConfig;
use nas_supernet::network::seeded;
use nas_supernet::oneshot::Nb201Supernet;
use nas_supernet::oneshot::SinglePath;
use nas_supernet::train::{TrainConfig, TrainError};

type B = DefaultBackend;

fn data() -> (ImageDataset, ImageDataset) {
    ImageDataset::digits().sample(240, 0).split(0.5, 0).unwrap()
}

fn config(seed: u64) -> EnasConfig {
    EnasConfig {
        child: TrainConfig {
            epochs: 2,
            batch_size: 40,
            learning_rate: 0.05,
            seed,
            ..EnasConfig::default().child
        },
        controller: ControllerConfig {
            hidden_size: 16,
            learning_rate: 3.5e-3,
            ..ControllerConfig::default()
        },
        controller_steps: 2,
        controller_batch: 3,
        reward_batch_size: 40,
        derive_samples: 6,
        derive_top: 2,
        seed,
        batch_statistics: false,
        warmup_epochs: 0,
        fair_warmup: false,
    }
}

fn nb201_supernet(seed: u64) -> Nb201Supernet<B> {
    let device = Default::default();
    let net = Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    };
    seeded(&device, seed, || {
        net.supernet::<B>(&Nb201Space::default(), &device)
    })
    .unwrap()
}

/// ENAS on the default device, for `train` (only its size counts), rewarded on `valid`.
fn new_enas<S, N>(
    space: S,
    supernet: N,
    config: EnasConfig,
    train: &ImageDataset,
    valid: &ImageDataset,
    normalize: &Normalize,
) -> Result<Enas<S, B, N>, EnasError>
where
    S: Sequential,
    N: AutodiffModule<B> + SinglePath<B, Arch = S::Arch>,
    N::InnerModule: SinglePath<<B as AutodiffBackend>::InnerBackend, Arch = S::Arch>,
{
    let device = Default::default();
    Enas::new(
        space,
        supernet,
        config,
        train.len(),
        valid,
        normalize,
        &device,
    )
}

/// Checks that `config` is refused with a configuration error naming `field`.
fn refused(config: EnasConfig, field: &str) {
    let (train, valid) = data();
    let normalize = train.channel_stats();
    let supernet = nb201_supernet(config.seed);
    let e = new_enas(
        Nb201Space::default(),
        supernet,
        config,
        &train,
        &valid,
        &normalize,
    )
    .unwrap_err();
    assert!(
        matches!(e, EnasError::Config(ref m) if m.contains(field)),
        "{e}"
    );
}

/// ENAS on NAS-Bench-201 (a supernet seeded with `config.seed`), run to its end on `train`
/// with the normalization of `train`, rewarded on `valid`.
fn trained_nb201(
    config: EnasConfig,
    train: &ImageDataset,
    valid: &ImageDataset,
) -> Enas<Nb201Space, B, Nb201Supernet<B>> {
    let normalize = train.channel_stats();
    let supernet = nb201_supernet(config.seed);
    let mut enas = new_enas(
        Nb201Space::default(),
        supernet,
        config,
        train,
        valid,
        &normalize,
    )
    .unwrap();
    enas.run(train, &normalize, |_| {}).unwrap();
    enas
}

/// Runs a whole search on NAS-Bench-201; returns the per-epoch rewards and the derived cell.
fn run_nb201(seed: u64) -> (Vec<f64>, String, f64) {
    let (train, valid) = data();
    let normalize = train.channel_stats();
    let mut enas: Enas<Nb201Space, B, Nb201Supernet<B>> = new_enas(
        Nb201Space::default(),
        nb201_supernet(seed),
        config(seed),
        &train,
        &valid,
        &normalize,
    )
    .unwrap();
    let mut seen = 0;
    enas.run(&train, &normalize, |e| {
        assert_eq!(e.epoch, seen);
        seen += 1;
        assert!((0.0..=1.0).contains(&e.mean_reward), "{}", e.mean_reward);
        assert!((0.0..=1.0).contains(&e.best.1));
        assert!(e.best.1 >= e.mean_reward);
        assert!(e.train_loss.is_finite() && e.entropy > 0.0);
        assert!(Nb201Space::default().validate(&e.best.0).is_ok());
    })
    .unwrap();
    assert_eq!(seen, 2);
    assert!(enas.is_done());
    // 2 epochs × 2 controller updates.
    assert_eq!(enas.controller().updates(), 4);
    assert!(enas.controller().baseline().is_some());
    let derived = enas.derive().unwrap();
    assert!(Nb201Space::default().validate(&derived.arch).is_ok());
    assert!(!derived.candidates.is_empty() && derived.candidates.len() <= 2);
    assert!(
        derived
            .candidates
            .windows(2)
            .all(|w| w[0].2 >= w[1].2 && w[0].0 != w[1].0)
    );
    assert_eq!(derived.validation_accuracy, derived.candidates[0].2);
    assert!((0.0..=100.0).contains(&derived.validation_accuracy));
    let rewards = enas.history().iter().map(|e| e.mean_reward).collect();
    (
        rewards,
        derived.arch.to_string(),
        derived.validation_accuracy,
    )
}

#[test]
fn enas_on_nb201_runs_and_is_seeded() {
    let a = run_nb201(3);
    let b = run_nb201(3);
    assert_eq!(a, b, "same seed, same search");
}

/// Trained for a few epochs on more digits, the shared weights score the derived cell well
/// above chance (10 classes: 10 %), and the controller's rewards are accuracies of the same
/// kind: its mean reward over the later epochs is twice chance.
#[test]
fn enas_learns_above_chance() {
    let (train, valid) = ImageDataset::digits().sample(600, 1).split(0.7, 1).unwrap();
    let mut config = config(5);
    config.child.epochs = 8;
    config.child.learning_rate = 0.1;
    config.batch_statistics = true;
    let mut enas = trained_nb201(config, &train, &valid);
    let derived = enas.derive().unwrap();
    let rewards: Vec<f64> = enas.history().iter().map(|e| e.mean_reward).collect();
    println!(
        "derived {} at {:.1} %, mean rewards {rewards:.2?}",
        derived.arch, derived.validation_accuracy
    );
    assert!(
        derived.validation_accuracy > 30.0,
        "derived {} at {:.1} % (rewards {rewards:?})",
        derived.arch,
        derived.validation_accuracy
    );
    // One epoch's mean reward is noisy (a few sampled children); the later half's is not.
    let late = &rewards[rewards.len() / 2..];
    let late_mean = late.iter().sum::<f64>() / late.len() as f64;
    assert!(late_mean > 0.2, "{rewards:?}");
}

#[test]
fn enas_on_the_micro_space_derives_a_genotype() {
    let (train, valid) = data();
    let normalize = train.channel_stats();
    let device = Default::default();
    let space = DartsSpace::new(DartsConfig::enas()).unwrap();
    let sc = DartsSupernetConfig {
        channels: 4,
        layers: 3,
        steps: 5,
        stem_multiplier: 1,
        in_channels: 1,
        num_classes: 10,
    };
    // Every parameter initialization under `seeded`: Burn's generator is process-wide, and
    // tests run in parallel threads.
    let supernet = seeded(&device, 1, || {
        DartsSupernet::<B>::single_path(&sc, &space, &device)
    })
    .unwrap();
    let mut cfg = config(1);
    cfg.child.epochs = 1;
    cfg.controller_steps = 1;
    let mut enas = new_enas(space.clone(), supernet, cfg, &train, &valid, &normalize).unwrap();
    enas.run(&train, &normalize, |_| {}).unwrap();
    let derived = enas.derive().unwrap();
    assert!(space.validate(&derived.arch).is_ok());
    assert!(enas.supernet().check_arch(&derived.arch).is_ok());
    // The controller's decisions round-trip through the space.
    let d = space.to_decisions(&derived.arch).unwrap();
    assert_eq!(space.from_decisions(&d).unwrap(), derived.arch);
}

#[test]
fn bad_input_is_a_typed_error_and_keeps_finished_work() {
    let (train, valid) = data();
    let normalize = train.channel_stats();
    let device = Default::default();

    // Invalid configuration.
    let mut bad = config(0);
    bad.controller_steps = 0;
    refused(bad, "controller_steps");

    // An empty validation set.
    let empty = valid.subset(&[]);
    let e = new_enas(
        Nb201Space::default(),
        nb201_supernet(0),
        config(0),
        &train,
        &empty,
        &normalize,
    )
    .unwrap_err();
    assert!(matches!(e, EnasError::Data(_)), "{e}");

    // A supernet built for another space: the DARTS space has operations (dil_conv, ...)
    // that the ENAS-space supernet does not hold.
    let sc = DartsSupernetConfig {
        channels: 4,
        layers: 3,
        steps: 4,
        stem_multiplier: 1,
        in_channels: 1,
        num_classes: 10,
    };
    let enas_space = DartsSpace::new(DartsConfig {
        steps: 4,
        ..DartsConfig::enas()
    })
    .unwrap();
    let supernet = seeded(&device, 0, || {
        DartsSupernet::<B>::single_path(&sc, &enas_space, &device)
    })
    .unwrap();
    let e = new_enas(
        DartsSpace::default(),
        supernet,
        config(0),
        &train,
        &valid,
        &normalize,
    )
    .unwrap_err();
    assert!(matches!(e, EnasError::Mismatch { .. }), "{e}");

    // A diverging loss: the epoch fails with a typed error, the supernet and the controller
    // (parameters, moments, baseline, generator) are restored to their state before the
    // epoch, and derivation still works.
    let mut cfg = config(0);
    cfg.child.learning_rate = 1e38;
    cfg.child.min_learning_rate = 1e38;
    cfg.child.grad_clip = None;
    cfg.child.weight_decay = 0.0;
    cfg.child.epochs = 5;
    let mut enas = new_enas(
        Nb201Space::default(),
        nb201_supernet(0),
        cfg,
        &train,
        &valid,
        &normalize,
    )
    .unwrap();
    let arch = Nb201Space::default()
        .sample(&mut <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0));
    let mut before = logits(enas.supernet(), &arch);
    let controller = |e: &Enas<Nb201Space, B, _>| serde_json::to_string(e.controller()).unwrap();
    let mut controller_before = controller(&enas);
    let mut done = 0;
    let error = loop {
        match enas.epoch(&train, &normalize) {
            Ok(_) => {
                done += 1;
                before = logits(enas.supernet(), &arch);
                controller_before = controller(&enas);
            }
            Err(e) => break e,
        }
        assert!(
            done < 5,
            "the loss did not diverge at a learning rate of 1e38"
        );
    };
    assert!(
        matches!(error, EnasError::Train(TrainError::Diverged { .. })),
        "{error:?}"
    );
    assert_eq!(enas.history().len(), done);
    assert_eq!(enas.controller().updates(), 2 * done);
    assert_eq!(logits(enas.supernet(), &arch), before);
    assert_eq!(controller(&enas), controller_before);
    assert!(enas.derive().is_ok());
}

/// The supernet's logits for `arch` on a fixed batch (inference mode).
fn logits(net: &Nb201Supernet<B>, arch: &nas_space::nb201::Nb201Arch) -> Vec<f32> {
    use nas_supernet::burn::module::AutodiffModule;
    use nas_supernet::burn::tensor::Tensor;
    let device = Default::default();
    let x = Tensor::<<B as nas_supernet::burn::tensor::backend::AutodiffBackend>::InnerBackend, 4>::ones(
        [2, 1, 8, 8],
        &device,
    );
    net.valid()
        .path_logits(x, arch)
        .into_data()
        .to_vec::<f32>()
        .unwrap()
}

/// With `batch_statistics`, the rewards and the rescoring use each minibatch's own batch-norm
/// statistics: the same trained supernet scores a cell differently than with the running
/// averages, and the derived cell's score is the one `shared_accuracy` gives.
#[test]
fn batch_statistics_change_the_scores() {
    let (train, valid) = data();
    let make = |batch_statistics: bool| {
        let config = EnasConfig {
            batch_statistics,
            ..config(3)
        };
        trained_nb201(config, &train, &valid)
    };
    let (mut running, mut batch) = (make(false), make(true));
    let cell = Nb201Space::default()
        .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
        .unwrap();
    let (a, b) = (running.shared_accuracy(&cell), batch.shared_accuracy(&cell));
    assert!((0.0..=100.0).contains(&a) && (0.0..=100.0).contains(&b));
    // The same trained supernet scored with the batches' statistics: another score.
    let a_by_batch = nas_supernet::fast::with_batch_statistics(|| running.shared_accuracy(&cell));
    assert!((0.0..=100.0).contains(&a_by_batch));
    assert_ne!(
        a, a_by_batch,
        "running and batch statistics scored the cell alike"
    );
    let derived = batch.derive().unwrap();
    assert_eq!(
        derived.validation_accuracy,
        batch.shared_accuracy(&derived.arch)
    );
    let derived = running.derive().unwrap();
    assert_eq!(
        derived.validation_accuracy,
        running.shared_accuracy(&derived.arch)
    );
}

/// During `warmup_epochs` the shared weights train (on uniformly drawn children, or strictly
/// fair ones) and the controller's children are rewarded but the controller does not learn;
/// after the warm-up it does. Seeded: the same configuration gives the same search. A warm-up as long as the search
/// is refused by name.
#[test]
fn warm_up_trains_the_shared_weights_and_leaves_the_controller_alone() {
    let (train, valid) = data();
    let normalize = train.channel_stats();
    let mut cfg = config(4);
    cfg.child.epochs = 3;
    cfg.warmup_epochs = 2;
    let run = |cfg: &EnasConfig| {
        let mut enas = new_enas(
            Nb201Space::default(),
            nb201_supernet(4),
            cfg.clone(),
            &train,
            &valid,
            &normalize,
        )
        .unwrap();
        let arch = Nb201Space::default()
            .parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
            .unwrap();
        // The controller's parameters, moments and baseline (its generator moves: the warm-up
        // still samples and rewards its children).
        let controller = |e: &Enas<Nb201Space, B, _>| {
            let mut v = serde_json::to_value(e.controller()).unwrap();
            v.as_object_mut().unwrap().remove("rng");
            v
        };
        let (initial, weights) = (controller(&enas), logits(enas.supernet(), &arch));
        for warm in 0..2 {
            let e = enas.epoch(&train, &normalize).unwrap();
            assert!(
                (0.0..=1.0).contains(&e.mean_reward),
                "warm-up epoch {warm}: {e:?}"
            );
            assert_eq!(enas.controller().updates(), 0);
            assert_eq!(controller(&enas), initial);
        }
        assert_ne!(
            logits(enas.supernet(), &arch),
            weights,
            "the shared weights trained"
        );
        enas.epoch(&train, &normalize).unwrap();
        assert_eq!(enas.controller().updates(), cfg.controller_steps);
        assert_ne!(controller(&enas), initial);
        enas.history()
            .iter()
            .map(|e| e.mean_reward)
            .collect::<Vec<_>>()
    };
    let uniform = run(&cfg);
    assert_eq!(run(&cfg), uniform);
    // Strictly fair (each batch split among children that take every operation): another
    // training, as seeded.
    cfg.fair_warmup = true;
    let fair = run(&cfg);
    assert_eq!(run(&cfg), fair);
    assert_ne!(fair, uniform);

    cfg.warmup_epochs = 3;
    refused(cfg, "warmup_epochs");
}
