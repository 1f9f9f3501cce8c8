//! Cached features of a frozen backbone: the backbone runs once over the data, a head trains on
//! its features through the training estimator, and a cache file is reused and checked.

use std::cell::Cell;

use nas::estimate::features::{FeatureCacheConfig, FeatureOrigin, cache_features};
use nas::estimate::train::TrainEstimator;
use nas::estimate::{Budget, EstimateError, Estimator};
use nas::space::nb201::Nb201Arch;
use nas::supernet::backend::DefaultBackend;
use nas::supernet::burn::data::dataset::Dataset;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::burn::tensor::{Tensor, module};
use nas::supernet::data::ImageDataset;
use nas::supernet::nb201_net::Nb201NetConfig;
use nas::supernet::train::TrainConfig;

type Inner = <DefaultBackend as AutodiffBackend>::InnerBackend;

/// A parameter-free backbone that counts its calls: 2×2 average and max pooling of the 8×8
/// digits, stacked as two channels of 4×4.
fn backbone(calls: &Cell<usize>) -> impl Fn(Tensor<Inner, 4>) -> Tensor<Inner, 4> + '_ {
    move |x: Tensor<Inner, 4>| {
        calls.set(calls.get() + 1);
        let avg = module::avg_pool2d(x.clone(), [2, 2], [2, 2], [0, 0], true, false);
        let max = module::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false);
        Tensor::cat(vec![avg, max], 1)
    }
}

fn digits() -> (ImageDataset, ImageDataset) {
    ImageDataset::digits().split(0.7, 0).unwrap()
}

fn items(set: &ImageDataset) -> Vec<(Vec<f32>, u32)> {
    (0..set.len())
        .map(|i| {
            let it = set.get(i).unwrap();
            (it.pixels, it.label)
        })
        .collect()
}

#[test]
fn the_backbone_runs_once_and_a_head_learns_from_its_features() {
    let (train, valid) = digits();
    let calls = Cell::new(0);
    let extract = backbone(&calls);
    let config = FeatureCacheConfig {
        batch_size: 100,
        ..FeatureCacheConfig::new("pool-2x2")
    };
    let cached =
        cache_features::<Inner, _>(&extract, &train, &valid, &config, &Default::default()).unwrap();
    let batches = train.len().div_ceil(100) + valid.len().div_ceil(100);
    assert_eq!(
        calls.get(),
        batches,
        "one backbone pass per batch of images"
    );
    match &cached.origin {
        FeatureOrigin::Computed {
            images,
            batches: b,
            file,
            ..
        } => {
            assert_eq!(*images, train.len() + valid.len());
            assert_eq!(*b, batches);
            assert!(file.is_none(), "memory only without a directory");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cached.train.shape(), [2, 4, 4]);
    assert_eq!(cached.train.labels(), train.labels());
    assert_eq!(cached.valid.labels(), valid.labels());

    // The head: a NAS-Bench-201 network on the 2-channel 4×4 features; two trials train it,
    // the backbone does not run again.
    let head = Nb201NetConfig {
        channels: 8,
        cells_per_stage: 1,
        in_channels: 2,
        num_classes: 10,
    };
    let train_config = TrainConfig {
        epochs: 3,
        batch_size: 64,
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    let mut estimator = TrainEstimator::<DefaultBackend, _, _>::new(
        head,
        cached.train.clone(),
        cached.valid.clone(),
        train_config,
        Default::default(),
    )
    .unwrap();
    for text in [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    ] {
        let arch: Nb201Arch = text.parse().unwrap();
        let m = estimator.estimate(&arch, &Budget::default()).unwrap();
        assert!(
            m.objective > 0.5,
            "a head on pooled digits should reach well above chance (0.1): {}",
            m.objective
        );
    }
    assert_eq!(calls.get(), batches, "trials train the head only");
}

#[test]
fn a_cache_file_is_reused_only_for_its_key_and_data_and_checked() {
    let (train, valid) = digits();
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let extract = backbone(&calls);
    let config = FeatureCacheConfig::new("pool-2x2").with_dir(dir.path());
    let device = Default::default();
    let first = cache_features::<Inner, _>(&extract, &train, &valid, &config, &device).unwrap();
    let computed = calls.get();
    let FeatureOrigin::Computed {
        file: Some(file), ..
    } = &first.origin
    else {
        panic!("{:?}", first.origin)
    };
    assert!(file.exists());

    // A second run loads the file: no backbone pass, the same features.
    let second = cache_features::<Inner, _>(&extract, &train, &valid, &config, &device).unwrap();
    assert!(
        matches!(second.origin, FeatureOrigin::Loaded { .. }),
        "{:?}",
        second.origin
    );
    assert_eq!(calls.get(), computed);
    assert_eq!(items(&first.train), items(&second.train));
    assert_eq!(items(&first.valid), items(&second.valid));

    // Another backbone (key) or other data: computed anew.
    let other = FeatureCacheConfig::new("pool-2x2-v2").with_dir(dir.path());
    cache_features::<Inner, _>(&extract, &train, &valid, &other, &device).unwrap();
    assert_eq!(calls.get(), 2 * computed);
    let fewer = valid.sample(100, 1);
    let third = cache_features::<Inner, _>(&extract, &train, &fewer, &config, &device).unwrap();
    assert!(matches!(third.origin, FeatureOrigin::Computed { .. }));

    // An altered file is a typed error that says what to do, not a panic or silent reuse.
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(file, &bytes).unwrap();
    let err = cache_features::<Inner, _>(&extract, &train, &valid, &config, &device).unwrap_err();
    assert!(matches!(err, EstimateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("delete the file"), "{err}");
    std::fs::write(file, &bytes[..100]).unwrap();
    let err = cache_features::<Inner, _>(&extract, &train, &valid, &config, &device).unwrap_err();
    assert!(matches!(err, EstimateError::Corrupt { .. }), "{err}");

    // Keys become file names: anything else is refused.
    let bad = FeatureCacheConfig::new("../escape").with_dir(dir.path());
    let err = cache_features::<Inner, _>(&extract, &train, &valid, &bad, &device).unwrap_err();
    assert!(matches!(err, EstimateError::InvalidConfig(_)), "{err}");
}

#[test]
fn features_past_the_memory_limit_stay_on_disk_and_train_alike() {
    let (train, valid) = digits();
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let extract = backbone(&calls);
    let device = Default::default();
    let memory = cache_features::<Inner, _>(
        &extract,
        &train,
        &valid,
        &FeatureCacheConfig::new("pool-2x2"),
        &device,
    )
    .unwrap();
    assert!(memory.train.on_disk().is_none() && memory.valid.on_disk().is_none());

    // 1,797 images × 32 values × 4 bytes = 230 kB: past a limit of 1,000 bytes. Without a
    // directory that is an error that says what to do, after one backbone batch at most.
    let tight = FeatureCacheConfig::new("pool-2x2").with_max_memory_bytes(1000);
    let before = calls.get();
    let err = cache_features::<Inner, _>(&extract, &train, &valid, &tight, &device).unwrap_err();
    assert!(
        matches!(&err, EstimateError::InvalidConfig(m) if m.contains("with_dir")),
        "{err}"
    );
    assert!(calls.get() <= before + 1);

    let config = tight.with_dir(dir.path());
    let disk = cache_features::<Inner, _>(&extract, &train, &valid, &config, &device).unwrap();
    let FeatureOrigin::Computed {
        file: Some(file), ..
    } = &disk.origin
    else {
        panic!("{:?}", disk.origin)
    };
    assert_eq!(disk.train.on_disk(), Some(file.as_path()));
    assert_eq!(disk.valid.on_disk(), Some(file.as_path()));
    assert_eq!(items(&disk.train), items(&memory.train));
    assert_eq!(items(&disk.valid), items(&memory.valid));
    // No temporary file is left beside the cache.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // Loaded again, the features stay on disk under the limit's rule, or come into memory
    // when the limit allows.
    let again = cache_features::<Inner, _>(&extract, &train, &valid, &config, &device).unwrap();
    assert!(matches!(again.origin, FeatureOrigin::Loaded { .. }));
    assert_eq!(again.train.on_disk(), Some(file.as_path()));
    assert_eq!(items(&again.valid), items(&memory.valid));
    let loose = FeatureCacheConfig::new("pool-2x2").with_dir(dir.path());
    let loaded = cache_features::<Inner, _>(&extract, &train, &valid, &loose, &device).unwrap();
    assert!(loaded.train.on_disk().is_none());
    assert_eq!(items(&loaded.train), items(&memory.train));

    // A head trains on the disk's features exactly as on memory's.
    let head = Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 2,
        num_classes: 10,
    };
    let train_config = TrainConfig {
        epochs: 2,
        batch_size: 64,
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    let arch: Nb201Arch =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
            .parse()
            .unwrap();
    let estimate = |features: &nas::estimate::features::CachedFeatures| {
        TrainEstimator::<DefaultBackend, _, _>::new(
            head,
            features.train.clone(),
            features.valid.clone(),
            train_config.clone(),
            Default::default(),
        )
        .unwrap()
        .estimate(&arch, &Budget::default())
        .unwrap()
    };
    let (m, d) = (estimate(&memory), estimate(&disk));
    assert!(m.objective > 0.3, "{m:?}");
    assert_eq!(m.objective, d.objective);
}

#[test]
fn an_on_disk_dataset_cut_short_fails_the_epoch_and_keeps_the_finished_ones() {
    use nas::supernet::driver::EpochSolver;
    use nas::supernet::network::seeded;
    use nas::supernet::train::{TrainError, Trainer};
    use std::io::Write;

    let (train, valid) = digits();
    let train = train.sample(256, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.f32");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"head").unwrap();
    for i in 0..train.len() {
        for v in train.get(i).unwrap().pixels {
            f.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    drop(f);
    let disk = ImageDataset::from_f32_file(
        "digits on disk",
        train.shape(),
        10,
        &path,
        4,
        train.labels(),
    )
    .unwrap();
    assert_eq!(items(&disk), items(&train));
    assert_eq!(disk.channel_stats(), train.channel_stats());
    assert_eq!(
        items(&disk.resize(4, 4).unwrap()),
        items(&train.resize(4, 4).unwrap())
    );
    assert_eq!(
        items(&disk.split(0.5, 3).unwrap().1),
        items(&train.split(0.5, 3).unwrap().1)
    );

    // Too short a file, a missing one: typed errors at construction.
    let short = ImageDataset::from_f32_file("x", train.shape(), 10, &path, 8, train.labels());
    assert!(
        matches!(short, Err(nas::supernet::SupernetError::Corrupt { .. })),
        "{short:?}"
    );
    let missing =
        ImageDataset::from_f32_file("x", train.shape(), 10, dir.path().join("no"), 0, vec![]);
    assert!(
        matches!(
            missing,
            Err(nas::supernet::SupernetError::MissingFile { .. })
        ),
        "{missing:?}"
    );

    let device = Default::default();
    let arch: Nb201Arch =
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
            .parse()
            .unwrap();
    let net = seeded(&device, 0, || {
        Nb201NetConfig {
            channels: 4,
            cells_per_stage: 1,
            in_channels: 1,
            num_classes: 10,
        }
        .init::<DefaultBackend>(&arch, &device)
    })
    .unwrap();
    let norm = train.channel_stats();
    let config = TrainConfig {
        epochs: 3,
        batch_size: 64,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, &disk, &valid, &norm, &config, &device).unwrap();
    trainer.epoch().unwrap();
    disk.check_reads().unwrap();
    let done = trainer.report().clone();
    // The file loses its second half: the next epoch reads zeros there, and fails.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(4 + 4 * 64 * 128).unwrap();
    let err = trainer.epoch().unwrap_err();
    assert!(
        matches!(&err, TrainError::Data(m) if m.contains("train.f32") && m.contains("on-disk")),
        "{err}"
    );
    assert_eq!(trainer.epochs_done(), 1, "the failed epoch is not counted");
    assert_eq!(trainer.report(), &done, "the finished epoch is kept");
}
