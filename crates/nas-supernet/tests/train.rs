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

mod tricks {
    //! Polyak averaging and distillation (Nekrasov et al. 2019): each changes what training
    //! returns, in the way it should.

    use super::CELL;
    use nas_space::nb201::Nb201Arch;
    use nas_supernet::backend::DefaultBackend;
    use nas_supernet::burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
    use nas_supernet::burn::tensor::backend::{AutodiffBackend, Backend};
    use nas_supernet::burn::tensor::{Tensor, TensorData};
    use nas_supernet::data::ImageDataset;
    use nas_supernet::driver::{Checkpoint, EpochSolver};
    use nas_supernet::nb201_net::{Nb201NetConfig, Nb201Network};
    use nas_supernet::network::{Classifier, seeded};
    use nas_supernet::train::{
        Distillation, FitOptions, TrainConfig, TrainError, TrainReport, Trainer, WeightAveraging,
        fit, fit_with, teacher,
    };

    type B = DefaultBackend;
    type Net = Nb201Network<B>;
    type I = <B as AutodiffBackend>::InnerBackend;

    fn data() -> (ImageDataset, ImageDataset) {
        let (train, valid) = ImageDataset::digits().split(0.7, 1).unwrap();
        (train.sample(64, 2), valid.sample(200, 3))
    }

    fn net(seed: u64) -> Net {
        let device = Default::default();
        let arch: Nb201Arch = CELL.parse().unwrap();
        seeded(&device, seed, || {
            Nb201NetConfig {
                channels: 4,
                cells_per_stage: 1,
                in_channels: 1,
                num_classes: 10,
            }
            .init::<B>(&arch, &device)
        })
        .unwrap()
    }

    /// Every float tensor of `m`, flattened, in visiting order.
    fn tensors<Bk: Backend, M: Module<Bk>>(m: &M) -> Vec<Vec<f32>> {
        struct V(Vec<Vec<f32>>);
        impl<Bk: Backend> ModuleVisitor<Bk> for V {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Bk, D>>) {
                self.0
                    .push(p.val().into_data().convert::<f32>().to_vec().unwrap());
            }
        }
        let mut v = V(Vec::new());
        m.visit(&mut v);
        v.0
    }

    /// One step per epoch (the batch is the whole training set), 4 epochs.
    fn config() -> TrainConfig {
        TrainConfig {
            epochs: 4,
            batch_size: 64,
            learning_rate: 0.1,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn polyak_averaging_returns_the_mean_of_the_last_iterates() {
        let (train, valid) = data();
        let norm = train.channel_stats();
        let device = Default::default();
        // The plain trajectory: the weights after each step (= epoch).
        let mut plain = Trainer::new(net(0), &train, &valid, &norm, &config(), &device).unwrap();
        let mut iterates = Vec::new();
        for _ in 0..4 {
            plain.epoch().unwrap();
            iterates.push(tensors(&plain.model().valid()));
        }
        let averaged_config = TrainConfig {
            averaging: Some(WeightAveraging::last_epochs(2)),
            ..config()
        };
        let (model, report) = fit(
            net(0),
            &train,
            &valid,
            &norm,
            &averaged_config,
            &device,
            |_, _: &TrainReport| {},
        )
        .unwrap();
        // Averaging does not change the training itself.
        assert_eq!(report.train_loss, plain.report().train_loss);
        // The model returned is the mean of the weights after epochs 3 and 4.
        let got = tensors(&model.valid());
        let mut differs_from_last = false;
        for (k, t) in got.iter().enumerate() {
            for (i, &v) in t.iter().enumerate() {
                let want = 0.5 * (iterates[2][k][i] + iterates[3][k][i]);
                assert!(
                    (v - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "tensor {k}[{i}]: {v} vs {want}"
                );
                differs_from_last |= (v - iterates[3][k][i]).abs() > 1e-4;
            }
        }
        assert!(differs_from_last, "the average equals the last iterate");
        // Its last validation scored the average, not the last weights.
        assert_ne!(report.valid_loss.last(), plain.report().valid_loss.last());
    }

    #[test]
    fn polyak_averaging_resumes_from_a_checkpoint() {
        let (train, valid) = data();
        let norm = train.channel_stats();
        let device = Default::default();
        let config = TrainConfig {
            averaging: Some(WeightAveraging {
                epochs: 3,
                decay: 0.5,
            }),
            ..config()
        };
        let mut whole = Trainer::new(net(1), &train, &valid, &norm, &config, &device).unwrap();
        for _ in 0..4 {
            whole.epoch().unwrap();
        }
        let mut first = Trainer::new(net(1), &train, &valid, &norm, &config, &device).unwrap();
        first.epoch().unwrap();
        first.epoch().unwrap();
        let mut checkpoint = Checkpoint::new("test");
        first.save(&mut checkpoint).unwrap();
        let mut resumed = Trainer::new(net(5), &train, &valid, &norm, &config, &device).unwrap();
        resumed.load(&checkpoint).unwrap();
        resumed.epoch().unwrap();
        resumed.epoch().unwrap();
        assert_eq!(
            tensors(&resumed.trained_model().valid()),
            tensors(&whole.trained_model().valid())
        );
        assert_eq!(resumed.report().valid_loss, whole.report().valid_loss);
        assert_eq!(resumed.report().train_loss, whole.report().train_loss);
    }

    #[test]
    fn distillation_pulls_the_student_to_its_teacher() {
        let (train, valid) = data();
        let norm = train.channel_stats();
        let device = Default::default();
        // A teacher that calls every image a 3.
        let always_three: nas_supernet::train::Teacher<I> =
            std::sync::Arc::new(|images: Tensor<_, 4>| {
                let n = images.dims()[0];
                let mut logits = vec![0.0f32; n * 10];
                for i in 0..n {
                    logits[i * 10 + 3] = 8.0;
                }
                Tensor::from_data(TensorData::new(logits, [n, 10]), &images.device())
            });
        let config = TrainConfig {
            epochs: 6,
            batch_size: 16,
            learning_rate: 0.05,
            ..TrainConfig::default()
        };
        let threes = |model: &Net| {
            let inner = model.valid();
            let (mut n, mut three) = (0, 0);
            for batch in nas_supernet::data::epoch_batches::<I>(
                &valid,
                nas_supernet::data::ImageBatcher::new(valid.shape())
                    .with_normalize(norm.clone())
                    .unwrap(),
                64,
                None,
                &device,
            )
            .unwrap()
            {
                let pred = inner.logits(batch.images).argmax(1);
                let pred: Vec<i64> = pred.into_data().convert::<i64>().to_vec().unwrap();
                n += pred.len();
                three += pred.iter().filter(|&&p| p == 3).count();
            }
            three as f64 / n as f64
        };
        let train_with = |config: &TrainConfig, teacher| {
            fit_with(
                net(2),
                (&train, &valid),
                &norm,
                config,
                &device,
                |_, _: &TrainReport| {},
                FitOptions {
                    teacher,
                    ..FitOptions::default()
                },
            )
        };
        let (alone, alone_report) = train_with(&config, None).unwrap();
        let distilled_config = TrainConfig {
            distillation: Some(Distillation {
                weight: 1.0,
                temperature: 1.0,
            }),
            ..config.clone()
        };
        let (pupil, pupil_report) =
            train_with(&distilled_config, Some(always_three.clone())).unwrap();
        // Trained on the labels, the network calls few images a 3; taught only by the teacher,
        // nearly all.
        assert!(threes(&alone) < 0.4, "alone: {}", threes(&alone));
        assert!(threes(&pupil) > 0.9, "distilled: {}", threes(&pupil));
        assert!(
            alone_report.final_accuracy() > pupil_report.final_accuracy(),
            "{alone_report:?} {pupil_report:?}"
        );
        // Half and half: in between.
        let half = TrainConfig {
            distillation: Some(Distillation {
                weight: 0.5,
                temperature: 4.0,
            }),
            ..config.clone()
        };
        let (_, half_report) = train_with(&half, Some(always_three.clone())).unwrap();
        assert_ne!(half_report.train_loss, alone_report.train_loss);
        // Distilling needs a teacher.
        match train_with(&distilled_config, None) {
            Err(TrainError::InvalidConfig { field, .. }) => assert_eq!(field, "distillation"),
            other => panic!("expected an error, got {:?}", other.map(|r| r.1)),
        }
        // A teacher of other classes is refused, not a panic.
        let wrong_classes = teacher(
            Nb201NetConfig {
                channels: 4,
                cells_per_stage: 1,
                in_channels: 1,
                num_classes: 7,
            }
            .init::<I>(&CELL.parse().unwrap(), &device)
            .unwrap(),
        );
        assert!(matches!(
            train_with(&distilled_config, Some(wrong_classes)),
            Err(TrainError::Data(_))
        ));
    }

    #[test]
    fn invalid_tricks_name_the_field() {
        for config in [
            TrainConfig {
                averaging: Some(WeightAveraging::last_epochs(0)),
                ..config()
            },
            TrainConfig {
                averaging: Some(WeightAveraging::last_epochs(5)),
                ..config()
            },
            TrainConfig {
                averaging: Some(WeightAveraging {
                    epochs: 1,
                    decay: 1.0,
                }),
                ..config()
            },
        ] {
            let e = config.check().unwrap_err();
            assert!(
                matches!(
                    e,
                    TrainError::InvalidConfig {
                        field: "averaging",
                        ..
                    }
                ),
                "{e}"
            );
        }
        for d in [(0.0, 1.0), (1.5, 1.0), (0.5, 0.0), (0.5, f64::NAN)] {
            let config = TrainConfig {
                distillation: Some(Distillation {
                    weight: d.0,
                    temperature: d.1,
                }),
                ..config()
            };
            let e = config.check().unwrap_err();
            assert!(
                matches!(
                    e,
                    TrainError::InvalidConfig {
                        field: "distillation",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
}
