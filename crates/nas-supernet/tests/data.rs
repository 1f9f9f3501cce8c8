//! Data: the embedded digits, IDX and CIFAR readers with their errors, splits, batching and
//! augmentation.

use std::io::Write;
use std::path::PathBuf;

use burn::backend::NdArray;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use nas_supernet::SupernetError;
use nas_supernet::data::{Augment, ImageBatch, ImageBatcher, ImageDataset, ImageItem};

type B = NdArray;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nas-supernet-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn embedded_digits() {
    let d = ImageDataset::digits();
    assert_eq!(d.len(), 1797);
    assert_eq!(d.shape(), [1, 8, 8]);
    let first = d.get(0).unwrap();
    assert_eq!(first.label, 0);
    assert_eq!(first.pixels[2], 5.0 / 16.0);
    let mut counts = [0usize; 10];
    for l in d.labels() {
        counts[l as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (170..=185).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn embedded_fashion_mnist() {
    for (train, n, byte_sum) in [(true, 9000, 514_941_592u64), (false, 1000, 56_973_981)] {
        let d = ImageDataset::fashion_mnist_embedded(train);
        assert_eq!(d.len(), n);
        assert_eq!(d.shape(), [1, 28, 28]);
        assert_eq!(d.num_classes(), 10);
        let mut counts = [0usize; 10];
        for l in d.labels() {
            counts[l as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c == n / 10), "{counts:?}");
        // The first image of both original files is an ankle boot (class 9).
        assert_eq!(d.get(0).unwrap().label, 9);
        // Pixels are the original bytes scaled by 1/255: their sum is the files' byte sum.
        let sum: f64 = (0..n)
            .map(|i| {
                let item = d.get(i).unwrap();
                item.pixels
                    .iter()
                    .map(|&p| (f64::from(p) * 255.0).round())
                    .sum::<f64>()
            })
            .sum();
        assert!((sum - byte_sum as f64).abs() < 1.0, "{sum} vs {byte_sum}");
    }
}

#[test]
fn splits_are_deterministic_and_disjoint() {
    let d = ImageDataset::digits();
    let (a, b) = d.split(0.5, 7).unwrap();
    let (a2, _) = d.split(0.5, 7).unwrap();
    let (a3, _) = d.split(0.5, 8).unwrap();
    assert_eq!(a.len() + b.len(), d.len());
    assert_eq!(a.labels(), a2.labels());
    let items = |x: &ImageDataset| {
        (0..x.len())
            .map(|i| x.get(i).unwrap().pixels)
            .collect::<Vec<_>>()
    };
    assert_eq!(items(&a), items(&a2));
    assert_ne!(items(&a), items(&a3));
    // Disjoint and complete, on a dataset whose items are all distinct (item i holds the value
    // i), so that equal pixels mean the same item.
    let n = 101;
    let tagged = ImageDataset::new(
        "tagged",
        [1, 1, 1],
        2,
        (0..n).map(|i| i as f32).collect(),
        (0..n).map(|i| (i % 2) as u32).collect(),
    )
    .unwrap();
    let (x, y) = tagged.split(0.3, 7).unwrap();
    let ids = |d: &ImageDataset| -> Vec<usize> {
        (0..d.len())
            .map(|i| d.get(i).unwrap().pixels[0] as usize)
            .collect()
    };
    let (ix, iy) = (ids(&x), ids(&y));
    assert_eq!(ix.len(), 30);
    assert!(ix.iter().all(|i| !iy.contains(i)), "{ix:?} / {iy:?}");
    let mut all: Vec<usize> = ix.iter().chain(&iy).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
    assert!(matches!(
        d.split(1.5, 0),
        Err(SupernetError::InvalidConfig { .. })
    ));
    assert_eq!(d.sample(100, 1).len(), 100);
}

#[test]
fn fashion_mnist_from_the_shared_copy() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fashion-mnist");
    if !dir.is_dir() {
        let what = format!("no Fashion-MNIST at {}", dir.display());
        if std::env::var_os("NAS_REQUIRE_DATA").is_some_and(|v| v == "1") {
            panic!("NAS_REQUIRE_DATA=1 but {what}");
        }
        eprintln!("SKIPPED: {what}");
        return;
    }
    let test = ImageDataset::fashion_mnist(&dir, false).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.shape(), [1, 28, 28]);
    assert!(test.labels().iter().all(|&l| l < 10));
}

fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

#[test]
fn idx_reader_and_its_errors() {
    let images = tmp("imgs-idx3-ubyte");
    let labels = tmp("labs-idx1-ubyte");
    std::fs::write(&images, idx(&[2, 2, 2], &[0, 255, 0, 255, 1, 2, 3, 4])).unwrap();
    std::fs::write(&labels, idx(&[2], &[3, 9])).unwrap();
    let d = ImageDataset::read_idx("toy", &images, &labels, 10).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d.get(0).unwrap().pixels, vec![0.0, 1.0, 0.0, 1.0]);

    // Gzipped files are read too.
    let gz = tmp("imgs-idx3-ubyte.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&idx(&[2, 2, 2], &[0, 255, 0, 255, 1, 2, 3, 4]))
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    assert_eq!(
        ImageDataset::read_idx("toy", &gz, &labels, 10)
            .unwrap()
            .len(),
        2
    );

    // Missing file, truncated body, label out of range, count mismatch.
    let e = ImageDataset::read_idx("toy", tmp("nope"), &labels, 10).unwrap_err();
    assert!(matches!(e, SupernetError::MissingFile { .. }), "{e}");
    std::fs::write(&images, idx(&[2, 2, 2], &[0, 1, 2])).unwrap();
    let e = ImageDataset::read_idx("toy", &images, &labels, 10).unwrap_err();
    assert!(e.to_string().contains("announces 8 values"), "{e}");
    std::fs::write(&images, idx(&[2, 2, 2], &[0; 8])).unwrap();
    assert!(ImageDataset::read_idx("toy", &images, &labels, 5).is_err());
    std::fs::write(&labels, idx(&[3], &[1, 2, 3])).unwrap();
    let e = ImageDataset::read_idx("toy", &images, &labels, 10).unwrap_err();
    assert!(e.to_string().contains("3 labels for 2 images"), "{e}");
    std::fs::write(&images, b"not idx").unwrap();
    assert!(matches!(
        ImageDataset::read_idx("toy", &images, &labels, 10),
        Err(SupernetError::Corrupt { .. })
    ));
    let e =
        ImageDataset::fashion_mnist(std::env::temp_dir().join("no-such-dir"), true).unwrap_err();
    assert!(matches!(e, SupernetError::MissingFile { .. }), "{e}");
}

#[test]
fn cifar_reader() {
    let dir = tmp("cifar");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rec = vec![7u8];
    rec.extend(std::iter::repeat_n(128u8, 3072));
    std::fs::write(dir.join("test_batch.bin"), [rec.clone(), rec].concat()).unwrap();
    let d = ImageDataset::cifar10(&dir, false).unwrap();
    assert_eq!(
        (d.len(), d.shape(), d.labels()),
        (2, [3, 32, 32], vec![7, 7])
    );
    std::fs::write(dir.join("test_batch.bin"), [1u8, 2, 3]).unwrap();
    assert!(matches!(
        ImageDataset::cifar10(&dir, false),
        Err(SupernetError::Corrupt { .. })
    ));
    assert!(matches!(
        ImageDataset::cifar10(&dir, true),
        Err(SupernetError::MissingFile { .. })
    ));
}

#[test]
fn batcher_normalizes_and_augments_deterministically() {
    let d = ImageDataset::digits();
    let stats = d.channel_stats();
    assert!((stats.mean[0] - 0.3).abs() < 0.05, "{stats:?}");
    let items: Vec<ImageItem> = (0..4).map(|i| d.get(i).unwrap()).collect();
    let device = Default::default();

    let plain = ImageBatcher::new(d.shape())
        .with_normalize(stats.clone())
        .unwrap();
    let b: ImageBatch<B> = plain.batch(items.clone(), &device);
    assert_eq!(b.images.dims(), [4, 1, 8, 8]);
    assert_eq!(
        b.targets.into_data().to_vec::<i64>().unwrap(),
        vec![0, 1, 2, 3]
    );

    let aug = |seed| {
        ImageBatcher::new(d.shape()).with_augment(
            Augment {
                crop_padding: 2,
                flip: true,
                cutout: 4,
            },
            seed,
        )
    };
    let x: ImageBatch<B> = aug(1).batch(items.clone(), &device);
    let y: ImageBatch<B> = aug(1).batch(items.clone(), &device);
    let z: ImageBatch<B> = aug(2).batch(items.clone(), &device);
    let v = |b: ImageBatch<B>| b.images.into_data().to_vec::<f32>().unwrap();
    let (x, y, z) = (v(x), v(y), v(z));
    assert_eq!(x, y);
    assert_ne!(x, z);
    // Cutout zeroes at least a few pixels of every image.
    let zeros = x
        .chunks(64)
        .map(|img| img.iter().filter(|&&p| p == 0.0).count());
    assert!(
        zeros.clone().all(|n| n >= 4),
        "{:?}",
        zeros.collect::<Vec<_>>()
    );
    assert!(
        plain
            .with_normalize(nas_supernet::data::Normalize {
                mean: vec![],
                std: vec![]
            })
            .is_err()
    );
}

#[test]
fn burn_data_loader_iterates_the_dataset() {
    let d = ImageDataset::digits().sample(100, 3);
    let loader = DataLoaderBuilder::<B, _, _>::new(ImageBatcher::new(d.shape()))
        .batch_size(32)
        .shuffle(5)
        .num_workers(1)
        .build(d);
    let sizes: Vec<usize> = loader
        .iter()
        .map(|b: ImageBatch<B>| b.targets.dims()[0])
        .collect();
    assert_eq!(sizes, vec![32, 32, 32, 4]);
}

#[test]
fn a_batcher_of_another_shape_is_a_typed_error() {
    let digits = ImageDataset::digits();
    let device = Default::default();
    let wrong = ImageBatcher::new([1, 28, 28]);
    let e = nas_supernet::data::epoch_batches::<NdArray>(&digits, wrong, 16, None, &device)
        .err()
        .expect("a batcher for 28×28 images cannot batch 8×8 digits");
    assert!(
        matches!(&e, SupernetError::InvalidConfig { what: "batcher", reason } if reason.contains("[1, 8, 8]")),
        "{e}"
    );
    let right = ImageBatcher::new(digits.shape());
    let batches: Vec<ImageBatch<NdArray>> =
        nas_supernet::data::epoch_batches(&digits, right, 500, None, &device)
            .unwrap()
            .collect();
    assert_eq!(batches.len(), digits.len().div_ceil(500));
    // Cutout on a batcher of empty images draws nothing (it used to panic on an empty range).
    let empty = ImageBatcher::new([1, 0, 0]).with_augment(
        Augment {
            cutout: 4,
            ..Augment::default()
        },
        0,
    );
    let item = ImageItem {
        pixels: Vec::new(),
        label: 0,
    };
    let batch: ImageBatch<NdArray> = empty.batch(vec![item], &device);
    assert_eq!(batch.images.dims(), [1, 1, 0, 0]);
}
