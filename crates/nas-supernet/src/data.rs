//! Image classification data on Burn's `Dataset` / `Batcher` / `DataLoader`.
//!
//! [`ImageDataset`] holds images (`f32` in `[0, 1]`, channel-major) in memory, or on disk
//! ([`ImageDataset::from_f32_file`]: read image by image, for sets larger than memory), and reads:
//! the embedded UCI digits ([`ImageDataset::digits`], 1,797 8×8 images, so everything runs with
//! no download), the IDX format of MNIST and Fashion-MNIST (gzipped or not), and the binary
//! format of CIFAR-10 and CIFAR-100. [`ImageBatcher`] normalizes and augments (random crop
//! with padding, horizontal flip, cutout) and stacks items into an [`ImageBatch`]. Splits are
//! deterministic by seed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;

static DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");
static FASHION_TRAIN_IMAGES_GZ: &[u8] =
    include_bytes!("../data/fashion-mnist-train-images-idx3-ubyte.gz");
static FASHION_TRAIN_LABELS_GZ: &[u8] =
    include_bytes!("../data/fashion-mnist-train-labels-idx1-ubyte.gz");
static FASHION_TEST_IMAGES_GZ: &[u8] =
    include_bytes!("../data/fashion-mnist-test-images-idx3-ubyte.gz");
static FASHION_TEST_LABELS_GZ: &[u8] =
    include_bytes!("../data/fashion-mnist-test-labels-idx1-ubyte.gz");

/// An image classification dataset: its images in memory, or in a file read image by image
/// ([`ImageDataset::from_f32_file`]); labels are always in memory.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    name: String,
    shape: [usize; 3],
    num_classes: usize,
    pixels: Pixels,
    labels: Arc<Vec<u32>>,
    indices: Arc<Vec<usize>>,
}

/// Where a dataset's pixels are.
#[derive(Debug, Clone)]
enum Pixels {
    Memory(Arc<Vec<f32>>),
    File(Arc<PixelFile>),
}

/// Images stored as little-endian `f32` values, one image after the other, from `offset`.
#[derive(Debug)]
struct PixelFile {
    path: PathBuf,
    #[cfg(unix)]
    file: std::fs::File,
    #[cfg(not(unix))]
    file: Mutex<std::fs::File>,
    offset: u64,
    /// The first failed read (its message): reported by [`ImageDataset::check_reads`].
    failure: Mutex<Option<String>>,
}

impl PixelFile {
    fn read(&self, image: usize, out: &mut [f32]) -> std::io::Result<()> {
        let mut bytes = vec![0u8; 4 * out.len()];
        let at = self.offset + (4 * out.len() * image) as u64;
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(&mut bytes, at)?;
        }
        #[cfg(not(unix))]
        {
            use std::io::Seek;
            let mut f = self
                .file
                .lock()
                .map_err(|_| std::io::Error::other("a reader panicked"))?;
            f.seek(std::io::SeekFrom::Start(at))?;
            f.read_exact(&mut bytes)?;
        }
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }
}

/// One image and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageItem {
    /// Pixels, channel-major (`[channels, height, width]`), in `[0, 1]`.
    pub pixels: Vec<f32>,
    /// The class.
    pub label: u32,
}

impl ImageDataset {
    /// A dataset from raw parts: `pixels` holds `labels.len()` images of `shape`
    /// (`[channels, height, width]`), values in `[0, 1]`; labels are below `num_classes`.
    pub fn new(
        name: impl Into<String>,
        shape: [usize; 3],
        num_classes: usize,
        pixels: Vec<f32>,
        labels: Vec<u32>,
    ) -> Result<Self, SupernetError> {
        let name = name.into();
        let per = shape.iter().product::<usize>();
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "dataset",
            reason: format!("{name}: {reason}"),
        };
        if per == 0 || num_classes == 0 {
            return Err(bad("image shape and class count must be positive".into()));
        }
        if pixels.len() != per * labels.len() {
            return Err(bad(format!(
                "{} pixel values for {} images of {shape:?}",
                pixels.len(),
                labels.len()
            )));
        }
        if let Some(l) = labels.iter().find(|&&l| l as usize >= num_classes) {
            return Err(bad(format!("label {l} is not below {num_classes} classes")));
        }
        let n = labels.len();
        Ok(Self {
            name,
            shape,
            num_classes,
            pixels: Pixels::Memory(Arc::new(pixels)),
            labels: Arc::new(labels),
            indices: Arc::new((0..n).collect()),
        })
    }

    /// A dataset whose images stay on disk: `path` holds `labels.len()` images of `shape`
    /// (`[channels, height, width]`) as little-endian `f32` values, one image after the other,
    /// from byte `offset` on (the file may hold more after them). Each [`get`](Dataset::get)
    /// reads one image, so a set larger than memory trains at the speed of the disk (or of the
    /// operating system's page cache); the labels are kept in memory. The feature cache of
    /// `nas_estimate::features` keeps features past its memory limit this way.
    ///
    /// A read that fails later (the file was truncated or its disk went away) gives an image
    /// of zeros and is reported by [`check_reads`](Self::check_reads); the library's
    /// trainer checks after every epoch and fails the epoch instead of keeping its result.
    ///
    /// # Errors
    /// [`SupernetError::MissingFile`] when `path` does not exist, [`SupernetError::Io`] when it
    /// cannot be opened, [`SupernetError::Corrupt`] when it is too short for the images,
    /// [`SupernetError::InvalidConfig`] for a bad shape or label.
    pub fn from_f32_file(
        name: impl Into<String>,
        shape: [usize; 3],
        num_classes: usize,
        path: impl AsRef<Path>,
        offset: u64,
        labels: Vec<u32>,
    ) -> Result<Self, SupernetError> {
        let name = name.into();
        let path = path.as_ref();
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "dataset",
            reason: format!("{name}: {reason}"),
        };
        let per = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&p| p > 0);
        let Some(per) = per.filter(|_| num_classes > 0) else {
            return Err(bad("image shape and class count must be positive".into()));
        };
        if let Some(l) = labels.iter().find(|&&l| l as usize >= num_classes) {
            return Err(bad(format!("label {l} is not below {num_classes} classes")));
        }
        if !path.exists() {
            return Err(SupernetError::MissingFile {
                what: "image file of an on-disk dataset",
                path: path.to_path_buf(),
                hint: "check the path; a feature cache recomputes a deleted file on its next run"
                    .into(),
            });
        }
        let io = |source| SupernetError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let need = (per as u64)
            .checked_mul(4)
            .and_then(|b| b.checked_mul(labels.len() as u64))
            .and_then(|b| b.checked_add(offset));
        if need.is_none_or(|need| need > len) {
            return Err(SupernetError::Corrupt {
                what: "image file",
                path: path.to_path_buf(),
                reason: format!(
                    "{len} bytes cannot hold {} images of {shape:?} as 32-bit floats from byte                      {offset}",
                    labels.len()
                ),
            });
        }
        let n = labels.len();
        Ok(Self {
            name,
            shape,
            num_classes,
            pixels: Pixels::File(Arc::new(PixelFile {
                path: path.to_path_buf(),
                #[cfg(unix)]
                file,
                #[cfg(not(unix))]
                file: Mutex::new(file),
                offset,
                failure: Mutex::new(None),
            })),
            labels: Arc::new(labels),
            indices: Arc::new((0..n).collect()),
        })
    }

    /// The file the images are read from, for a dataset kept on disk
    /// ([`from_f32_file`](Self::from_f32_file)); `None` when they are in memory.
    pub fn on_disk(&self) -> Option<&Path> {
        match &self.pixels {
            Pixels::Memory(_) => None,
            Pixels::File(f) => Some(&f.path),
        }
    }

    /// Whether every image read so far was read: for a dataset on disk, the first read that
    /// failed since it was opened (the image was given as zeros); always `Ok` in memory.
    ///
    /// # Errors
    /// [`SupernetError::Io`] naming the file and the failure.
    pub fn check_reads(&self) -> Result<(), SupernetError> {
        let Pixels::File(f) = &self.pixels else {
            return Ok(());
        };
        let failure = f
            .failure
            .lock()
            .map_or_else(|_| Some("a reader panicked".to_string()), |g| g.clone());
        match failure {
            None => Ok(()),
            Some(message) => Err(SupernetError::Io {
                path: f.path.clone(),
                source: std::io::Error::other(format!(
                    "{message} (an image of the on-disk dataset `{}` could not be read; check \
                     that the file is still there and whole)",
                    self.name
                )),
            }),
        }
    }

    /// Image `i` (an index into the storage, not a position) into `out` (`c·h·w` values).
    fn read_image(&self, i: usize, out: &mut [f32]) {
        match &self.pixels {
            Pixels::Memory(p) => out.copy_from_slice(&p[i * out.len()..(i + 1) * out.len()]),
            Pixels::File(f) => {
                if let Err(e) = f.read(i, out) {
                    out.fill(0.0);
                    if let Ok(mut g) = f.failure.lock() {
                        g.get_or_insert_with(|| format!("image {i}: {e}"));
                    }
                }
            }
        }
    }

    /// The UCI optical digits embedded in this crate (1,797 grey 8×8 images, 10 classes,
    /// CC BY 4.0; see `data/README.md`).
    pub fn digits() -> Self {
        let parse = || -> Result<Self, String> {
            let mut text = String::new();
            flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())?;
            let mut pixels = Vec::with_capacity(1797 * 64);
            let mut labels = Vec::with_capacity(1797);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let values: Vec<u32> = line
                    .split(',')
                    .map(|v| v.trim().parse::<u32>().map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
                if values.len() != 65 {
                    return Err(format!("{} values on a line", values.len()));
                }
                pixels.extend(values[..64].iter().map(|&v| v as f32 / 16.0));
                labels.push(values[64]);
            }
            Self::new("digits", [1, 8, 8], 10, pixels, labels).map_err(|e| e.to_string())
        };
        // The file is part of the crate and checked by the tests.
        parse().unwrap_or_else(|e| panic!("embedded digits dataset is corrupt: {e}"))
    }

    /// Reads an IDX image file (`idx3-ubyte`, e.g. `train-images-idx3-ubyte[.gz]`) and its
    /// label file (`idx1-ubyte`). Gzipped files are recognized by their content; none may
    /// decompress to more than [`MAX_DECOMPRESSED_BYTES`].
    pub fn read_idx(
        name: &str,
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        num_classes: usize,
    ) -> Result<Self, SupernetError> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let img = read_maybe_gz(images, "IDX image file")?;
        let lab = read_maybe_gz(labels, "IDX label file")?;
        Self::idx_from_parts(name, (&img, images), (&lab, labels), num_classes)
    }

    /// As [`ImageDataset::read_idx`], from the bytes of the two files (gzipped or not), e.g.
    /// files inside an archive; errors name them `<name> images` and `<name> labels`.
    pub fn from_idx_bytes(
        name: &str,
        images: &[u8],
        labels: &[u8],
        num_classes: usize,
    ) -> Result<Self, SupernetError> {
        let (ip, lp) = (
            PathBuf::from(format!("<{name} images>")),
            PathBuf::from(format!("<{name} labels>")),
        );
        let img = gunzip_if_gzipped(images, &ip, "IDX image file", MAX_DECOMPRESSED_BYTES)?;
        let lab = gunzip_if_gzipped(labels, &lp, "IDX label file", MAX_DECOMPRESSED_BYTES)?;
        Self::idx_from_parts(name, (&img, &ip), (&lab, &lp), num_classes)
    }

    fn idx_from_parts(
        name: &str,
        (img, images): (&[u8], &Path),
        (lab, labels): (&[u8], &Path),
        num_classes: usize,
    ) -> Result<Self, SupernetError> {
        let corrupt = |path: &Path, what, reason: String| SupernetError::Corrupt {
            what,
            path: path.to_path_buf(),
            reason,
        };
        let (shape, pixels, labels_v) = idx_images(img, lab).map_err(|(in_labels, reason)| {
            if in_labels {
                corrupt(labels, "IDX label file", reason)
            } else {
                corrupt(images, "IDX image file", reason)
            }
        })?;
        Self::new(name, shape, num_classes, pixels, labels_v)
    }

    /// The class-balanced Fashion-MNIST subset embedded in this crate (28×28 grey images, 10
    /// classes, MIT licence; see `data/README.md`): 9,000 training images (the first 900 of
    /// each class of the original training file) or, with `train = false`, 1,000 test images
    /// (the first 100 of each class of the original test file). Harder than the 8×8 digits,
    /// so it separates architectures better, and still needs no download.
    pub fn fashion_mnist_embedded(train: bool) -> Self {
        let (images, labels) = if train {
            (FASHION_TRAIN_IMAGES_GZ, FASHION_TRAIN_LABELS_GZ)
        } else {
            (FASHION_TEST_IMAGES_GZ, FASHION_TEST_LABELS_GZ)
        };
        let parse = || -> Result<Self, String> {
            let gunzip = |bytes: &[u8]| -> Result<Vec<u8>, String> {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
                Ok(out)
            };
            let (img, lab) = (gunzip(images)?, gunzip(labels)?);
            let (shape, pixels, labels) = idx_images(&img, &lab).map_err(|(_, r)| r)?;
            Self::new("fashion-mnist", shape, 10, pixels, labels).map_err(|e| e.to_string())
        };
        // The files are part of the crate and checked by the tests.
        parse().unwrap_or_else(|e| panic!("embedded Fashion-MNIST subset is corrupt: {e}"))
    }

    /// Fashion-MNIST (or MNIST) from a directory holding the four standard IDX files
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`, each optionally `.gz`).
    pub fn fashion_mnist(dir: impl AsRef<Path>, train: bool) -> Result<Self, SupernetError> {
        let dir = dir.as_ref();
        let prefix = if train { "train" } else { "t10k" };
        let images = find_file(
            dir,
            &format!("{prefix}-images-idx3-ubyte"),
            "Fashion-MNIST images",
        )?;
        let labels = find_file(
            dir,
            &format!("{prefix}-labels-idx1-ubyte"),
            "Fashion-MNIST labels",
        )?;
        Self::read_idx("fashion-mnist", images, labels, 10)
    }

    /// CIFAR-10 from its binary distribution (`data_batch_1.bin` … `data_batch_5.bin`,
    /// `test_batch.bin`), in `dir` or `dir/cifar-10-batches-bin`.
    pub fn cifar10(dir: impl AsRef<Path>, train: bool) -> Result<Self, SupernetError> {
        let dir = cifar_dir(dir.as_ref(), "cifar-10-batches-bin");
        let files: Vec<String> = if train {
            (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
        } else {
            vec!["test_batch.bin".into()]
        };
        read_cifar(&dir, &files, 1, 0, 10, "cifar10")
    }

    /// CIFAR-100 (fine labels) from its binary distribution (`train.bin`, `test.bin`), in
    /// `dir` or `dir/cifar-100-binary`.
    pub fn cifar100(dir: impl AsRef<Path>, train: bool) -> Result<Self, SupernetError> {
        let dir = cifar_dir(dir.as_ref(), "cifar-100-binary");
        let file = if train { "train.bin" } else { "test.bin" };
        read_cifar(&dir, &[file.to_string()], 2, 1, 100, "cifar100")
    }

    /// CIFAR-10 from the bytes of its binary batches (each gzipped or not); errors name them
    /// `<cifar10 batch i>`.
    pub fn cifar10_from_bytes(batches: &[&[u8]]) -> Result<Self, SupernetError> {
        let batches = batches
            .iter()
            .enumerate()
            .map(|(i, b)| (PathBuf::from(format!("<cifar10 batch {i}>")), *b));
        cifar_batches(batches, 1, 0, 10, "cifar10")
    }

    /// CIFAR-100 (fine labels) from the bytes of its binary file (`train.bin` or `test.bin`,
    /// gzipped or not).
    pub fn cifar100_from_bytes(bytes: &[u8]) -> Result<Self, SupernetError> {
        let batches = std::iter::once((PathBuf::from("<cifar100 file>"), bytes));
        cifar_batches(batches, 2, 1, 100, "cifar100")
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The dataset's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The labels of the items, in order.
    pub fn labels(&self) -> Vec<u32> {
        self.indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// The items at `positions` (positions in this dataset).
    pub fn subset(&self, positions: &[usize]) -> Self {
        Self {
            indices: Arc::new(
                positions
                    .iter()
                    .filter_map(|&p| self.indices.get(p).copied())
                    .collect(),
            ),
            ..self.clone()
        }
    }

    /// The first `n` items after a shuffle by `seed` (the whole dataset if it is smaller): a
    /// deterministic random subsample, e.g. for a proxy task.
    pub fn sample(&self, n: usize, seed: u64) -> Self {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order.truncate(n);
        self.subset(&order)
    }

    /// Splits into `(first, second)` with `fraction` of the items (rounded) in the first,
    /// after a shuffle by `seed`. The same seed always gives the same split.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Self, Self), SupernetError> {
        let (first, second) = split_positions(self.len(), fraction, seed)?;
        Ok((self.subset(&first), self.subset(&second)))
    }

    /// The items resized to `height`×`width` by bilinear interpolation (pixel centres aligned,
    /// as PyTorch's `align_corners=False`; halving a size averages 2×2 blocks exactly): the
    /// survey's lower-resolution proxy. Only the items of this dataset are copied, into memory
    /// (also from a dataset on disk).
    pub fn resize(&self, height: usize, width: usize) -> Result<Self, SupernetError> {
        if height == 0 || width == 0 {
            return Err(SupernetError::InvalidConfig {
                what: "dataset resize",
                reason: format!("the new size must be positive, got {height}x{width}"),
            });
        }
        let [c, h, w] = self.shape;
        if [h, w] == [height, width] {
            return Ok(self.clone());
        }
        // Source coordinate and weights along one axis.
        let taps = |out: usize, size: usize| -> Vec<(usize, usize, f32)> {
            (0..out)
                .map(|o| {
                    let x = ((o as f64 + 0.5) * size as f64 / out as f64 - 0.5)
                        .clamp(0.0, (size - 1) as f64);
                    let lo = x.floor() as usize;
                    let hi = (lo + 1).min(size - 1);
                    (lo, hi, (x - lo as f64) as f32)
                })
                .collect()
        };
        let (ty, tx) = (taps(height, h), taps(width, w));
        let per = c * h * w;
        let mut pixels = Vec::with_capacity(self.len() * c * height * width);
        let mut img = vec![0f32; per];
        for &i in self.indices.iter() {
            self.read_image(i, &mut img);
            for ch in 0..c {
                let plane = &img[ch * h * w..(ch + 1) * h * w];
                for &(y0, y1, fy) in &ty {
                    for &(x0, x1, fx) in &tx {
                        let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
                        let bottom = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
                        pixels.push(top * (1.0 - fy) + bottom * fy);
                    }
                }
            }
        }
        Self::new(
            format!("{} at {height}x{width}", self.name),
            [c, height, width],
            self.num_classes,
            pixels,
            self.labels(),
        )
    }

    /// Per-channel mean and standard deviation over the items (for [`Normalize`]).
    pub fn channel_stats(&self) -> Normalize {
        let [c, h, w] = self.shape;
        let mut stats = ChannelStats::new(c, h * w);
        let mut img = vec![0f32; c * h * w];
        for &i in self.indices.iter() {
            self.read_image(i, &mut img);
            stats.add(&img);
        }
        stats.finish()
    }
}

/// The positions `0..len` shuffled by `seed` and cut after `fraction` of them (rounded): the
/// split of [`ImageDataset::split`] and of `SegmentationDataset::split`.
pub(crate) fn split_positions(
    len: usize,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), SupernetError> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(SupernetError::InvalidConfig {
            what: "dataset split",
            reason: format!("fraction must be in [0, 1], got {fraction}"),
        });
    }
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let k = (fraction * len as f64).round() as usize;
    let second = order.split_off(k.min(len));
    Ok((order, second))
}

/// Per-channel sums of images (channel-major), for [`Normalize`].
pub(crate) struct ChannelStats {
    plane: usize,
    images: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl ChannelStats {
    /// For images of `channels` planes of `plane` pixels.
    pub(crate) fn new(channels: usize, plane: usize) -> Self {
        Self {
            plane,
            images: 0,
            sum: vec![0.0; channels],
            sq: vec![0.0; channels],
        }
    }

    /// Adds one image.
    pub(crate) fn add(&mut self, image: &[f32]) {
        for (ch, values) in image
            .chunks(self.plane.max(1))
            .enumerate()
            .take(self.sum.len())
        {
            for &v in values {
                self.sum[ch] += f64::from(v);
                self.sq[ch] += f64::from(v) * f64::from(v);
            }
        }
        self.images += 1;
    }

    /// The mean and standard deviation of each channel.
    pub(crate) fn finish(&self) -> Normalize {
        let n = (self.images * self.plane).max(1) as f64;
        let mean: Vec<f32> = self.sum.iter().map(|s| (s / n) as f32).collect();
        let std = self
            .sq
            .iter()
            .zip(&mean)
            .map(|(q, &m)| ((q / n - f64::from(m) * f64::from(m)).max(1e-12).sqrt()) as f32)
            .collect();
        Normalize { mean, std }
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Option<ImageItem> {
        let i = *self.indices.get(index)?;
        let mut pixels = vec![0f32; self.shape.iter().product::<usize>()];
        self.read_image(i, &mut pixels);
        Some(ImageItem {
            pixels,
            label: self.labels[i],
        })
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// The most bytes a gzipped data file may decompress to (1 GiB; CIFAR-100's `train.bin`, the
/// largest file of the formats read here, is 154 MB): a larger stream is refused as corrupt
/// instead of exhausting memory (a "gzip bomb" expands 1,000-fold).
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// The bytes of the file at `path`, decompressed when gzipped.
fn read_maybe_gz(path: &Path, what: &'static str) -> Result<Vec<u8>, SupernetError> {
    let raw = read_file(path, what)?;
    // Ends the borrow of `raw` before a plain file's bytes are handed back without a copy.
    let decompressed = match gunzip_if_gzipped(&raw, path, what, MAX_DECOMPRESSED_BYTES)? {
        std::borrow::Cow::Owned(out) => Some(out),
        std::borrow::Cow::Borrowed(_) => None,
    };
    Ok(decompressed.unwrap_or(raw))
}

/// The bytes of the file at `path` as they are on disk.
fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, SupernetError> {
    if !path.is_file() {
        return Err(SupernetError::MissingFile {
            what,
            path: path.to_path_buf(),
            hint: "give the directory or path of the dataset's files".into(),
        });
    }
    std::fs::read(path).map_err(|source| SupernetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `raw` itself, or its decompression when it begins with gzip's magic number; refused as
/// corrupt when it decompresses to more than `limit` bytes.
fn gunzip_if_gzipped<'a>(
    raw: &'a [u8],
    path: &Path,
    what: &'static str,
    limit: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, SupernetError> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let corrupt = |reason: String| SupernetError::Corrupt {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("bad gzip data: {e}")))?;
    if out.len() as u64 > limit {
        return Err(corrupt(format!(
            "decompresses to more than {limit} bytes (a gzip bomb, or not a file of this kind)"
        )));
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Parses an unsigned-byte IDX file: returns the dimensions and the body.
/// Images `[1, h, w]` scaled to [0, 1] and their labels from the bytes of an IDX image file
/// and its label file; an error says whether the label file is at fault, and what is wrong.
type IdxImages = ([usize; 3], Vec<f32>, Vec<u32>);

fn idx_images(img: &[u8], lab: &[u8]) -> Result<IdxImages, (bool, String)> {
    let (dims, body) = parse_idx(img).map_err(|r| (false, r))?;
    let (ldims, lbody) = parse_idx(lab).map_err(|r| (true, r))?;
    if dims.len() != 3 || ldims.len() != 1 {
        return Err((
            false,
            format!(
                "expected 3-d images and 1-d labels, found {}-d and {}-d",
                dims.len(),
                ldims.len()
            ),
        ));
    }
    if dims[0] != ldims[0] {
        return Err((true, format!("{} labels for {} images", ldims[0], dims[0])));
    }
    let pixels = body.iter().map(|&b| f32::from(b) / 255.0).collect();
    let labels = lbody.iter().map(|&b| u32::from(b)).collect();
    Ok(([1, dims[1], dims[2]], pixels, labels))
}

fn parse_idx(bytes: &[u8]) -> Result<(Vec<usize>, &[u8]), String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not unsigned bytes (0x08)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err("truncated header".into());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            let b = &bytes[4 + 4 * d..8 + 4 * d];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("size overflow")?;
    let body = &bytes[header..];
    if body.len() != count {
        return Err(format!(
            "header announces {count} values ({dims:?}) but the file holds {}",
            body.len()
        ));
    }
    Ok((dims, body))
}

fn find_file(dir: &Path, stem: &str, what: &'static str) -> Result<PathBuf, SupernetError> {
    for candidate in [dir.join(stem), dir.join(format!("{stem}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(SupernetError::MissingFile {
        what,
        path: dir.join(stem),
        hint: format!("the directory must hold `{stem}` or `{stem}.gz`"),
    })
}

fn cifar_dir(dir: &Path, inner: &str) -> PathBuf {
    let nested = dir.join(inner);
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

fn read_cifar(
    dir: &Path,
    files: &[String],
    label_bytes: usize,
    label_offset: usize,
    num_classes: usize,
    name: &str,
) -> Result<ImageDataset, SupernetError> {
    // Read as they are on disk: `cifar_batches` decompresses gzipped ones.
    let mut batches = Vec::with_capacity(files.len());
    for f in files {
        let path = dir.join(f);
        let bytes = read_file(&path, "CIFAR binary batch")?;
        batches.push((path, bytes));
    }
    cifar_batches(
        batches.iter().map(|(p, b)| (p.clone(), b.as_slice())),
        label_bytes,
        label_offset,
        num_classes,
        name,
    )
}

/// Images and labels from CIFAR's binary records (`label_bytes` label bytes, the label at
/// `label_offset`, then 3×32×32 pixels), each batch gzipped or not.
fn cifar_batches<'a>(
    batches: impl Iterator<Item = (PathBuf, &'a [u8])>,
    label_bytes: usize,
    label_offset: usize,
    num_classes: usize,
    name: &str,
) -> Result<ImageDataset, SupernetError> {
    const PIXELS: usize = 3 * 32 * 32;
    let record = label_bytes + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (path, raw) in batches {
        let bytes = gunzip_if_gzipped(raw, &path, "CIFAR binary batch", MAX_DECOMPRESSED_BYTES)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(SupernetError::Corrupt {
                what: "CIFAR binary batch",
                path,
                reason: format!(
                    "{} bytes is not a whole number of {record}-byte records",
                    bytes.len()
                ),
            });
        }
        for r in bytes.chunks_exact(record) {
            labels.push(u32::from(r[label_offset]));
            pixels.extend(r[label_bytes..].iter().map(|&b| f32::from(b) / 255.0));
        }
    }
    ImageDataset::new(name, [3, 32, 32], num_classes, pixels, labels)
}

/// Per-channel normalization `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Per-channel means.
    pub mean: Vec<f32>,
    /// Per-channel standard deviations.
    pub std: Vec<f32>,
}

/// Training-time augmentation. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Random crop after zero padding by this many pixels (CIFAR: 4). 0 disables it.
    pub crop_padding: usize,
    /// Random horizontal flip with probability 1/2.
    pub flip: bool,
    /// Cutout: a square of this side, at a random centre, set to zero after normalization
    /// (DARTS: 16 on CIFAR). 0 disables it.
    pub cutout: usize,
}

impl Augment {
    /// The CIFAR recipe of DARTS: crop with padding 4, flip, cutout 16.
    pub fn cifar() -> Self {
        Self {
            crop_padding: 4,
            flip: true,
            cutout: 16,
        }
    }
}

/// A batch of images and targets.
#[derive(Debug, Clone)]
pub struct ImageBatch<B: Backend> {
    /// `[batch, channels, height, width]`.
    pub images: Tensor<B, 4>,
    /// `[batch]` class indices.
    pub targets: Tensor<B, 1, Int>,
}

/// Stacks [`ImageItem`]s into an [`ImageBatch`], normalizing and (for training) augmenting.
///
/// Augmentation draws from a seeded generator inside the batcher, so a data loader with one
/// worker and a seeded shuffle gives the same batches on every run.
#[derive(Debug)]
pub struct ImageBatcher {
    shape: [usize; 3],
    normalize: Option<Normalize>,
    augment: Augment,
    rng: Mutex<ChaCha8Rng>,
}

impl ImageBatcher {
    /// A batcher for images of `shape`, without normalization or augmentation.
    pub fn new(shape: [usize; 3]) -> Self {
        Self {
            shape,
            normalize: None,
            augment: Augment::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
        }
    }

    /// Normalizes with `normalize` (one mean and std per channel).
    pub fn with_normalize(mut self, normalize: Normalize) -> Result<Self, SupernetError> {
        if normalize.mean.len() != self.shape[0]
            || normalize.std.len() != self.shape[0]
            || normalize.std.iter().any(|&s| s <= 0.0 || !s.is_finite())
        {
            return Err(SupernetError::InvalidConfig {
                what: "normalization",
                reason: format!(
                    "need {} means and {} positive standard deviations",
                    self.shape[0], self.shape[0]
                ),
            });
        }
        self.normalize = Some(normalize);
        Ok(self)
    }

    /// Augments with `augment`, drawing from a generator seeded with `seed`.
    pub fn with_augment(mut self, augment: Augment, seed: u64) -> Self {
        self.augment = augment;
        self.rng = Mutex::new(ChaCha8Rng::seed_from_u64(seed));
        self
    }

    /// # Panics
    /// When `item` does not hold `c·h·w` pixels of the batcher's shape: a batcher fed by
    /// [`epoch_batches`] never sees such an item (it checks the dataset's shape, and an
    /// [`ImageDataset`] holds only images of its shape).
    fn process(&self, item: &ImageItem, rng: &mut ChaCha8Rng, out: &mut Vec<f32>) {
        let [c, h, w] = self.shape;
        assert_eq!(
            item.pixels.len(),
            c * h * w,
            "an image of {} values given to a batcher of shape {:?}",
            item.pixels.len(),
            self.shape
        );
        let a = self.augment;
        let (dy, dx) = if a.crop_padding > 0 {
            let p = a.crop_padding as i64;
            (rng.random_range(-p..=p), rng.random_range(-p..=p))
        } else {
            (0, 0)
        };
        let flip = a.flip && rng.random_bool(0.5);
        let cut = (a.cutout > 0 && h > 0 && w > 0)
            .then(|| (rng.random_range(0..h) as i64, rng.random_range(0..w) as i64));
        for ch in 0..c {
            let (m, s) = match &self.normalize {
                Some(n) => (n.mean[ch], n.std[ch]),
                None => (0.0, 1.0),
            };
            for y in 0..h as i64 {
                for x in 0..w as i64 {
                    let sx = if flip { w as i64 - 1 - x } else { x };
                    let (yy, xx) = (y + dy, sx + dx);
                    let v = if (0..h as i64).contains(&yy) && (0..w as i64).contains(&xx) {
                        (item.pixels[ch * h * w + yy as usize * w + xx as usize] - m) / s
                    } else {
                        // Zero padding, in pixel space.
                        (0.0 - m) / s
                    };
                    let cut_out =
                        cut.is_some_and(|(cy, cx)| within_cutout(y - cy, x - cx, a.cutout));
                    out.push(if cut_out { 0.0 } else { v });
                }
            }
        }
    }
}

/// True when offset `(oy, ox)` from the centre lies in a cutout square of side `size`
/// (`[-size/2, size - size/2)` on each axis, as the reference implementation clips it).
fn within_cutout(oy: i64, ox: i64, size: usize) -> bool {
    let lo = -((size / 2) as i64);
    let hi = (size - size / 2) as i64;
    (lo..hi).contains(&oy) && (lo..hi).contains(&ox)
}

impl<B: Backend> Batcher<B, ImageItem, ImageBatch<B>> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &B::Device) -> ImageBatch<B> {
        let [c, h, w] = self.shape;
        let mut data = Vec::with_capacity(items.len() * c * h * w);
        {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            for item in &items {
                self.process(item, &mut rng, &mut data);
            }
        }
        let targets: Vec<i64> = items.iter().map(|i| i64::from(i.label)).collect();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(data, [items.len(), c, h, w]), device),
            targets: Tensor::from_data(TensorData::new(targets, [items.len()]), device),
        }
    }
}

/// The batches of one epoch over `set`, made lazily by `batcher`, `batch_size` images each (the
/// last may be smaller), in the order of a shuffle seeded by `shuffle` (`None`: in order).
///
/// Every training loop of the library draws its epochs through this with a seed derived from
/// the run's seed and the epoch index, so an epoch's batches do not depend on the epochs
/// before it: a run resumed from a checkpoint sees the same batches as an uninterrupted one.
///
/// # Errors
/// [`SupernetError::InvalidConfig`] when the batcher was made for another image shape than
/// the dataset's.
pub fn epoch_batches<'a, B: Backend>(
    set: &'a ImageDataset,
    batcher: ImageBatcher,
    batch_size: usize,
    shuffle: Option<u64>,
    device: &'a B::Device,
) -> Result<impl Iterator<Item = ImageBatch<B>> + 'a, SupernetError> {
    if batcher.shape != set.shape() {
        return Err(SupernetError::InvalidConfig {
            what: "batcher",
            reason: format!(
                "made for images of shape {:?}, but the dataset's are {:?}: build it with \
                 ImageBatcher::new(dataset.shape())",
                batcher.shape,
                set.shape()
            ),
        });
    }
    let mut order: Vec<usize> = (0..set.len()).collect();
    if let Some(seed) = shuffle {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    let size = batch_size.max(1);
    let chunks = order.len().div_ceil(size);
    Ok((0..chunks).map(move |c| {
        let items = order[c * size..((c + 1) * size).min(order.len())]
            .iter()
            .filter_map(|&i| set.get(i))
            .collect();
        batcher.batch(items, device)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit() {
        // 4 MiB of zeros compress to about 4 KiB: a thousandfold expansion.
        let zeros = vec![0u8; 4 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 8 << 10, "{}", bomb.len());
        let path = Path::new("bomb.gz");
        let e = gunzip_if_gzipped(&bomb, path, "IDX image file", 1 << 20).unwrap_err();
        assert!(
            matches!(&e, SupernetError::Corrupt { reason, .. } if reason.contains("more than 1048576 bytes")),
            "{e}"
        );
        // At the limit exactly, it decompresses.
        let out = gunzip_if_gzipped(&bomb, path, "IDX image file", 4 << 20).unwrap();
        assert_eq!(out.len(), 4 << 20);
        // Bytes without gzip's magic number pass through untouched.
        let plain = [1u8, 2, 3];
        assert!(matches!(
            gunzip_if_gzipped(&plain, path, "IDX image file", 1).unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn datasets_from_bytes_match_the_files_readers() {
        // Two 2×3 images, labels 1 and 0, as IDX (gzipped images, plain labels).
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        img.extend([0u8, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 0]);
        let lab = vec![0, 0, 8, 1, 0, 0, 0, 2, 1, 0];
        let d = ImageDataset::from_idx_bytes("tiny", &gzip(&img), &lab, 2).unwrap();
        assert_eq!((d.len(), d.shape(), d.labels()), (2, [1, 2, 3], vec![1, 0]));
        // A truncated body names the image bytes.
        let e = ImageDataset::from_idx_bytes("tiny", &img[..20], &lab, 2).unwrap_err();
        assert!(e.to_string().contains("<tiny images>"), "{e}");
        // A label outside the classes is refused.
        assert!(ImageDataset::from_idx_bytes("tiny", &img, &lab, 1).is_err());

        // CIFAR-10: two records; CIFAR-100: the fine label is the second byte.
        let mut c10 = vec![7u8];
        c10.extend(vec![10u8; 3072]);
        c10.push(3);
        c10.extend(vec![20u8; 3072]);
        let d = ImageDataset::cifar10_from_bytes(&[&c10, &gzip(&c10)]).unwrap();
        assert_eq!((d.len(), d.labels()), (4, vec![7, 3, 7, 3]));
        let e = ImageDataset::cifar10_from_bytes(&[&c10[..100]]).unwrap_err();
        assert!(e.to_string().contains("whole number"), "{e}");
        let mut c100 = vec![2u8, 99];
        c100.extend(vec![0u8; 3072]);
        let d = ImageDataset::cifar100_from_bytes(&c100).unwrap();
        assert_eq!(d.labels(), vec![99]);
    }
}
