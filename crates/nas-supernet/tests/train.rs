//! Training from scratch: it learns, it is reproducible by seed, and divergence is a typed
//! error that keeps the finished epochs.

use nas_space::nb201::Nb201Arch;
use nas_supernet::backend::DefaultBackend;
use nas_supernet::data::ImageDataset;
use nas_supernet::nb201_net::Nb201NetConfig;
use nas_supernet::network::seeded;
use nas_supernet::train::{TrainConfig, TrainError, TrainReport, fit};

const CELL: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|";

fn run(config: &TrainConfig) -> Result<TrainReport, TrainError> {
    let device = Default::default();
    let data = ImageDataset::digits();
    let (train, valid) = data.split(0.7, 1).unwrap();
    let train = train.sample(600, 2);
    let valid = valid.sample(300, 3);
    let arch: Nb201Arch = CELL.parse().unwrap();
    let net = seeded(&device, config.seed, || {
        Nb201NetConfig {
            channels: 8,
            cells_per_stage: 1,
            in_channels: 1,
            num_classes: 10,
        }
        .init::<DefaultBackend>(&arch, &device)
    })
    .unwrap();
    let norm = train.channel_stats();
    let mut epochs_seen = 0;
    let (_, report) = fit(
        net,
        &train,
        &valid,
        &norm,
        config,
        &device,
        |_, _: &TrainReport| epochs_seen += 1,
    )?;
    assert_eq!(epochs_seen, config.epochs);
    Ok(report)
}

#[test]
fn learns_and_is_reproducible() {
    let config = TrainConfig {
        epochs: 3,
        batch_size: 32,
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    let a = run(&config).unwrap();
    assert_eq!(a.valid_accuracy.len(), 3);
    assert!(a.final_accuracy().unwrap() > 60.0, "{a:?}");
    assert!(a.train_loss[2] < a.train_loss[0], "{a:?}");
    let b = run(&config).unwrap();
    assert_eq!(a.valid_accuracy, b.valid_accuracy);
    assert_eq!(a.train_loss, b.train_loss);
}

#[test]
fn divergence_is_a_typed_error() {
    let config = TrainConfig {
        epochs: 2,
        batch_size: 32,
        learning_rate: 1e30,
        min_learning_rate: 1e30,
        grad_clip: None,
        weight_decay: 0.0,
        ..TrainConfig::default()
    };
    match run(&config) {
        Err(TrainError::Diverged { report, .. }) => assert!(report.valid_accuracy.len() < 2),
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn invalid_configs_name_the_field() {
    for (config, field) in [
        (
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            "epochs",
        ),
        (
            TrainConfig {
                learning_rate: -1.0,
                ..TrainConfig::default()
            },
            "learning_rate",
        ),
        (
            TrainConfig {
                momentum: 1.5,
                ..TrainConfig::default()
            },
            "momentum",
        ),
        (
            TrainConfig {
                drop_path: 1.0,
                ..TrainConfig::default()
            },
            "drop_path",
        ),
    ] {
        let e = config.check().unwrap_err();
        assert!(
            matches!(e, TrainError::InvalidConfig { field: f, .. } if f == field),
            "{e}"
        );
    }
}
