//! Cached features of a frozen backbone: run the backbone over the data once, then train only
//! the searched part (a head, a decoder, a dense-prediction cell) on its outputs.
//!
//! This is the proxy of DPC (Chen et al., NeurIPS 2018), which searched its dense prediction
//! cell on precomputed features of a fixed, pretrained backbone: every trial then costs only
//! the head's training. [`cache_features`] turns a training and a validation
//! [`ImageDataset`] into datasets of feature maps (`[channels, height, width]` of the
//! backbone's output, the same labels); give them to
//! [`TrainEstimator`](crate::train::TrainEstimator) with a network configuration for the head
//! (its input channels are the backbone's output channels), and every option of the training
//! estimator (epochs as fidelity, pruners, continuation) works on the head.
//!
//! With [`FeatureCacheConfig::dir`] the features are also written to a file named by the
//! backbone's [`key`](FeatureCacheConfig::key) and a fingerprint of the data, and later runs
//! (other processes, other machines sharing the directory) load them instead of running the
//! backbone. A truncated or altered file is an [`EstimateError::Corrupt`] error that says to
//! delete it; finished work elsewhere is not touched.
//!
//! Features larger than [`FeatureCacheConfig::max_memory_bytes`] (1 GiB by default) are not
//! held in memory: they are streamed to the cache file as the backbone makes them, and the
//! returned datasets read them from there image by image
//! ([`ImageDataset::on_disk`] names the file), so a backbone's features of a set larger than
//! memory can still be searched over.
//!
//! What caching gives up: the backbone is frozen (it is not fine-tuned with the head), and
//! augmentation of the images is impossible (the features are computed once, from the
//! unaugmented images).
//!
//! ```no_run
//! use nas_estimate::features::{FeatureCacheConfig, cache_features};
//! use nas_estimate::train::TrainEstimator;
//! use nas_supernet::backend::DefaultBackend;
//! use nas_supernet::burn::tensor::Tensor;
//! use nas_supernet::data::ImageDataset;
//! use nas_supernet::multi_net::DpcNetConfig;
//! use nas_supernet::train::TrainConfig;
//!
//! type Inner = nas_supernet::burn::backend::NdArray;
//! let (train, valid) = ImageDataset::digits().split(0.7, 0)?;
//! // A frozen backbone: any function of an image batch (here a fixed 2×2 average pooling).
//! let backbone = |x: Tensor<Inner, 4>| nas_supernet::burn::tensor::module::avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false);
//! let config = FeatureCacheConfig::new("avg-pool-2x2").with_dir("runs/features");
//! let cached = cache_features::<Inner, _>(&backbone, &train, &valid, &config, &Default::default())?;
//! let head = DpcNetConfig { in_channels: 1, backbone_layers: 1, backbone_strides: 0, backbone_channels: 16, branch_channels: 16, num_classes: 10 };
//! let mut estimator = TrainEstimator::<DefaultBackend, _, _>::new(
//!     head, cached.train, cached.valid, TrainConfig::default(), Default::default(),
//! )?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nas_supernet::burn::data::dataset::Dataset;
use nas_supernet::burn::tensor::Tensor;
use nas_supernet::burn::tensor::backend::Backend;
use nas_supernet::data::{ImageBatcher, ImageDataset, Normalize, epoch_batches};
use serde::{Deserialize, Serialize};

use crate::EstimateError;

/// A frozen feature extractor: an image batch `[n, c, h, w]` (normalized) to a feature batch
/// `[n, c', h', w']`. Any `Fn(Tensor<B, 4>) -> Tensor<B, 4>` is one, e.g.
/// `|x| trunk.forward(x)` for a trained module `trunk` (use its `valid()` copy: no gradients
/// are needed).
pub trait FeatureExtractor<B: Backend> {
    /// The features of `images`.
    fn extract(&self, images: Tensor<B, 4>) -> Tensor<B, 4>;
}

impl<B: Backend, F: Fn(Tensor<B, 4>) -> Tensor<B, 4>> FeatureExtractor<B> for F {
    fn extract(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self(images)
    }
}

/// How [`cache_features`] runs the backbone and where it keeps the features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureCacheConfig {
    /// Names the backbone and its weights (e.g. `"trunk-3x16-pretrained-2ep-seed0"`): a cache
    /// file is reused only for the same key and the same data, so change the key when the
    /// backbone changes.
    pub key: String,
    /// Images per backbone batch.
    pub batch_size: usize,
    /// The normalization the backbone expects; `None`: the training set's channel statistics.
    pub normalize: Option<Normalize>,
    /// Where the features are kept between runs; `None`: in memory only.
    pub dir: Option<PathBuf>,
    /// The most bytes of features (training and validation together, 4 bytes a value) held in
    /// memory; larger features stay on disk in [`dir`](Self::dir) (which they then need) and
    /// are read image by image while training. Default 1 GiB.
    #[serde(default = "default_max_memory_bytes")]
    pub max_memory_bytes: u64,
}

fn default_max_memory_bytes() -> u64 {
    1 << 30
}

impl FeatureCacheConfig {
    /// Memory only, batches of 256, the training set's normalization.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            batch_size: 256,
            normalize: None,
            dir: None,
            max_memory_bytes: default_max_memory_bytes(),
        }
    }

    /// Holds at most `bytes` of features in memory; larger ones stay on disk in the directory.
    pub fn with_max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// Keeps the features in `dir` too, and reuses them from there.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    fn check(&self) -> Result<(), EstimateError> {
        let ok_key = !self.key.is_empty()
            && self
                .key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_key {
            return Err(EstimateError::InvalidConfig(format!(
                "feature cache key `{}`: use a non-empty name of ASCII letters, digits, `-`, `_` \
                 and `.` (it becomes part of a file name)",
                self.key
            )));
        }
        if self.batch_size == 0 {
            return Err(EstimateError::InvalidConfig(
                "feature cache: `batch_size` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where the features came from.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureOrigin {
    /// The backbone ran over every image (once), and the features were written to `file`
    /// when a directory was given.
    Computed {
        /// Images passed through the backbone.
        images: usize,
        /// Backbone batches run.
        batches: usize,
        /// Wall time of the backbone passes, in seconds.
        seconds: f64,
        /// The cache file written.
        file: Option<PathBuf>,
    },
    /// Read from an earlier run's cache file.
    Loaded {
        /// The file.
        file: PathBuf,
        /// Wall time of reading it, in seconds.
        seconds: f64,
    },
}

/// The features of a training and a validation set.
#[derive(Debug, Clone)]
pub struct CachedFeatures {
    /// Features of the training images, with their labels.
    pub train: ImageDataset,
    /// Features of the validation images, with their labels.
    pub valid: ImageDataset,
    /// Computed now or loaded.
    pub origin: FeatureOrigin,
}

const MAGIC: &[u8; 8] = b"NASFEAT1";

/// The header of a cache file.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    key: String,
    fingerprint: u64,
    shape: [usize; 3],
    num_classes: usize,
    train: usize,
    valid: usize,
    train_name: String,
    valid_name: String,
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A fingerprint of the images, labels and shapes of both sets and of the normalization.
fn fingerprint(sets: [&ImageDataset; 2], normalize: &Normalize) -> u64 {
    let mut h = Fnv::new();
    for set in sets {
        h.write(&(set.num_classes() as u64).to_le_bytes());
        for d in set.shape() {
            h.write(&(d as u64).to_le_bytes());
        }
        h.write(&(set.len() as u64).to_le_bytes());
        for i in 0..set.len() {
            if let Some(item) = set.get(i) {
                h.write(&item.label.to_le_bytes());
                for v in item.pixels {
                    h.write(&v.to_bits().to_le_bytes());
                }
            }
        }
    }
    for v in normalize.mean.iter().chain(&normalize.std) {
        h.write(&v.to_bits().to_le_bytes());
    }
    h.0
}

/// Runs `extractor` over `train` and `valid` (in order, batches of
/// [`batch_size`](FeatureCacheConfig::batch_size), normalized), or loads the features of an
/// earlier run from [`dir`](FeatureCacheConfig::dir).
///
/// # Errors
/// An invalid configuration or normalization, empty or differently shaped sets, a backbone
/// whose output changes shape between batches or holds a non-finite value, an unreadable or
/// unwritable cache directory, a corrupt cache file ([`EstimateError::Corrupt`]: delete it and
/// run again).
pub fn cache_features<B: Backend, E: FeatureExtractor<B>>(
    extractor: &E,
    train: &ImageDataset,
    valid: &ImageDataset,
    config: &FeatureCacheConfig,
    device: &B::Device,
) -> Result<CachedFeatures, EstimateError> {
    config.check()?;
    if train.is_empty() || valid.is_empty() {
        return Err(EstimateError::InvalidConfig(
            "feature cache: the training and validation sets must not be empty".into(),
        ));
    }
    if train.shape() != valid.shape() || train.num_classes() != valid.num_classes() {
        return Err(EstimateError::InvalidConfig(format!(
            "feature cache: the training images are {:?} with {} classes, the validation images \
             {:?} with {}; both sets must match",
            train.shape(),
            train.num_classes(),
            valid.shape(),
            valid.num_classes()
        )));
    }
    let normalize = config
        .normalize
        .clone()
        .unwrap_or_else(|| train.channel_stats());
    let fp = fingerprint([train, valid], &normalize);
    // Images of an on-disk set that could not be read must not make a fingerprint.
    train.check_reads()?;
    valid.check_reads()?;
    let file = config
        .dir
        .as_ref()
        .map(|d| d.join(format!("{}-{fp:016x}.nasfeat", config.key)));
    if let Some(file) = &file
        && file.exists()
    {
        let clock = Instant::now();
        let (train, valid) = read(file, config, fp, train, valid)?;
        return Ok(CachedFeatures {
            train,
            valid,
            origin: FeatureOrigin::Loaded {
                file: file.clone(),
                seconds: clock.elapsed().as_secs_f64(),
            },
        });
    }
    let clock = Instant::now();
    let mut batches = 0;
    let mut shape: Option<[usize; 3]> = None;
    let mut writer: Option<CacheWriter> = None;
    // Decided at the first batch, when the features' size is known.
    let mut in_memory: Option<bool> = None;
    let mut values: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    let images = train.len() + valid.len();
    let name = |set: &ImageDataset| format!("{} ({} features)", set.name(), config.key);
    for (s, set) in [train, valid].into_iter().enumerate() {
        let batcher = ImageBatcher::new(set.shape()).with_normalize(normalize.clone())?;
        for batch in epoch_batches::<B>(set, batcher, config.batch_size, None, device)? {
            let f = extractor.extract(batch.images);
            let [_, c, h, w] = f.dims();
            if *shape.get_or_insert([c, h, w]) != [c, h, w] {
                return Err(EstimateError::InvalidConfig(format!(
                    "feature cache: the backbone gave features of shape {:?}, then {:?}; it must \
                     give one shape for every batch",
                    shape.unwrap_or_default(),
                    [c, h, w]
                )));
            }
            if in_memory.is_none() {
                let bytes = 4 * (c * h * w) as u128 * images as u128;
                let fits = bytes <= u128::from(config.max_memory_bytes);
                if !fits && file.is_none() {
                    return Err(EstimateError::InvalidConfig(format!(
                        "feature cache: the features of {images} images take {} MiB, past \
                         `max_memory_bytes` ({} MiB); give a directory (`with_dir`) to keep \
                         them on disk, or raise the limit",
                        bytes >> 20,
                        config.max_memory_bytes >> 20
                    )));
                }
                if let Some(file) = &file {
                    let header = Header {
                        key: config.key.clone(),
                        fingerprint: fp,
                        shape: [c, h, w],
                        num_classes: train.num_classes(),
                        train: train.len(),
                        valid: valid.len(),
                        train_name: name(train),
                        valid_name: name(valid),
                    };
                    writer = Some(CacheWriter::create(file, &header)?);
                }
                in_memory = Some(fits);
            }
            let batch_values = f
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| {
                    EstimateError::Failed(format!("feature cache: reading the features: {e:?}"))
                })?;
            if batch_values.iter().any(|v| !v.is_finite()) {
                return Err(EstimateError::Failed(
                    "feature cache: the backbone gave a non-finite feature (NaN or infinity); \
                     check its weights and the normalization"
                        .into(),
                ));
            }
            if let Some(w) = &mut writer {
                for v in &batch_values {
                    w.put(&v.to_le_bytes())?;
                }
            }
            if in_memory == Some(true) {
                values[s].extend(batch_values);
            }
            batches += 1;
        }
        set.check_reads()?;
    }
    let seconds = clock.elapsed().as_secs_f64();
    let shape = shape.expect("the sets are not empty");
    let values_offset = match writer {
        Some(mut w) => {
            for l in train.labels().into_iter().chain(valid.labels()) {
                w.put(&l.to_le_bytes())?;
            }
            Some(w.finish()?)
        }
        None => None,
    };
    let [train_values, valid_values] = values;
    let (ftrain, fvalid) = match (in_memory, &file, values_offset) {
        (Some(false), Some(file), Some(offset)) => on_disk(
            file,
            offset,
            shape,
            train,
            valid,
            [name(train), name(valid)],
        )?,
        _ => (
            ImageDataset::new(
                name(train),
                shape,
                train.num_classes(),
                train_values,
                train.labels(),
            )?,
            ImageDataset::new(
                name(valid),
                shape,
                valid.num_classes(),
                valid_values,
                valid.labels(),
            )?,
        ),
    };
    Ok(CachedFeatures {
        train: ftrain,
        valid: fvalid,
        origin: FeatureOrigin::Computed {
            images,
            batches,
            seconds,
            file,
        },
    })
}

/// The two sets' features read from `file`, the training images' from byte `offset` on, the
/// validation images' after them.
fn on_disk(
    file: &Path,
    offset: u64,
    shape: [usize; 3],
    train: &ImageDataset,
    valid: &ImageDataset,
    [train_name, valid_name]: [String; 2],
) -> Result<(ImageDataset, ImageDataset), EstimateError> {
    let per = shape.iter().product::<usize>() as u64;
    let t = ImageDataset::from_f32_file(
        train_name,
        shape,
        train.num_classes(),
        file,
        offset,
        train.labels(),
    )?;
    let v = ImageDataset::from_f32_file(
        valid_name,
        shape,
        valid.num_classes(),
        file,
        offset + 4 * per * train.len() as u64,
        valid.labels(),
    )?;
    Ok((t, v))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> EstimateError + '_ {
    move |source| EstimateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Streams a cache file: a temporary file renamed into place by [`finish`](Self::finish), so a
/// killed run leaves no half-written cache (and a failed one removes its temporary file).
struct CacheWriter {
    out: Option<BufWriter<fs::File>>,
    tmp: PathBuf,
    file: PathBuf,
    hash: Fnv,
    /// The byte where the values begin.
    values_offset: u64,
}

impl CacheWriter {
    fn create(file: &Path, header: &Header) -> Result<Self, EstimateError> {
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        // One temporary name per call: threads and processes writing the same cache do not meet.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = file.with_extension(format!(
            "tmp{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let f = fs::File::create(&tmp).map_err(io(&tmp))?;
        let head = serde_json::to_vec(header).expect("the header serializes");
        let mut w = Self {
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            tmp,
            file: file.to_path_buf(),
            hash: Fnv::new(),
            values_offset: (MAGIC.len() + 8 + head.len()) as u64,
        };
        if let Some(out) = &mut w.out {
            out.write_all(MAGIC).map_err(io(&w.tmp))?;
        }
        w.put(&(head.len() as u64).to_le_bytes())?;
        w.put(&head)?;
        Ok(w)
    }

    /// Writes `bytes` and adds them to the checksum.
    fn put(&mut self, bytes: &[u8]) -> Result<(), EstimateError> {
        self.hash.write(bytes);
        match &mut self.out {
            Some(out) => out.write_all(bytes).map_err(io(&self.tmp)),
            None => Ok(()),
        }
    }

    /// Appends the checksum, syncs and renames the file into place; the values' offset.
    fn finish(mut self) -> Result<u64, EstimateError> {
        let sum = self.hash.0.to_le_bytes();
        let Some(mut out) = self.out.take() else {
            return Ok(self.values_offset);
        };
        out.write_all(&sum).map_err(io(&self.tmp))?;
        let f = out
            .into_inner()
            .map_err(|e| io(&self.tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&self.tmp))?;
        drop(f);
        fs::rename(&self.tmp, &self.file).map_err(io(&self.file))?;
        Ok(self.values_offset)
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        // Not finished: an error or a panic stopped the features half-way.
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Reads and checks a cache file (streaming it once through the checksum); the features stay
/// on disk when they are larger than `max_memory_bytes`.
fn read(
    file: &Path,
    config: &FeatureCacheConfig,
    fp: u64,
    train: &ImageDataset,
    valid: &ImageDataset,
) -> Result<(ImageDataset, ImageDataset), EstimateError> {
    let key = config.key.as_str();
    let corrupt = |reason: String| EstimateError::Corrupt {
        what: "feature cache file",
        path: file.to_path_buf(),
        line: None,
        reason: format!("{reason}; delete the file and run again to recompute the features"),
    };
    let f = fs::File::open(file).map_err(io(file))?;
    let len = f.metadata().map_err(io(file))?.len();
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut h = Fnv::new();
    let mut magic = [0u8; 8];
    if len < (MAGIC.len() + 16) as u64 || r.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Err(corrupt("not a feature cache (bad magic bytes)".into()));
    }
    let mut word = [0u8; 8];
    r.read_exact(&mut word).map_err(io(file))?;
    h.write(&word);
    let head_len = u64::from_le_bytes(word);
    if head_len > len - (MAGIC.len() + 16) as u64 {
        return Err(corrupt("the header runs past the end".into()));
    }
    let mut head = vec![0u8; head_len as usize];
    r.read_exact(&mut head).map_err(io(file))?;
    h.write(&head);
    let header: Header =
        serde_json::from_slice(&head).map_err(|e| corrupt(format!("unreadable header: {e}")))?;
    if header.key != key || header.fingerprint != fp {
        return Err(corrupt(format!(
            "made for key `{}` and data {:016x}, not `{key}` and {fp:016x}",
            header.key, header.fingerprint
        )));
    }
    if header.num_classes != train.num_classes() {
        return Err(corrupt(format!(
            "made for {} classes, the data has {}",
            header.num_classes,
            train.num_classes()
        )));
    }
    if header.train != train.len() || header.valid != valid.len() {
        return Err(corrupt(format!(
            "holds {} + {} images, the data {} + {}",
            header.train,
            header.valid,
            train.len(),
            valid.len()
        )));
    }
    let values_offset = (MAGIC.len() + 8) as u64 + head_len;
    let sizes = || {
        let per = header
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
        let n = (header.train as u64).checked_add(header.valid as u64)?;
        let value_bytes = n.checked_mul(per)?.checked_mul(4)?;
        let total = values_offset
            .checked_add(value_bytes)?
            .checked_add(n.checked_mul(4)?)?
            .checked_add(8)?;
        Some((per as usize, value_bytes, total))
    };
    let (per, value_bytes, expected) =
        sizes().ok_or_else(|| corrupt("the header's sizes overflow".into()))?;
    if len != expected {
        return Err(corrupt(format!("{len} bytes, expected {expected}")));
    }
    let in_memory = value_bytes <= config.max_memory_bytes;
    let mut floats = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = value_bytes;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        r.read_exact(&mut chunk[..k]).map_err(io(file))?;
        h.write(&chunk[..k]);
        if in_memory {
            floats.extend(
                chunk[..k]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        left -= k as u64;
    }
    let mut label_bytes = vec![0u8; 4 * (header.train + header.valid)];
    r.read_exact(&mut label_bytes).map_err(io(file))?;
    h.write(&label_bytes);
    r.read_exact(&mut word).map_err(io(file))?;
    if h.0 != u64::from_le_bytes(word) {
        return Err(corrupt("checksum mismatch (truncated or altered)".into()));
    }
    let labels: Vec<u32> = label_bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if labels[..header.train] != train.labels()[..] || labels[header.train..] != valid.labels()[..]
    {
        return Err(corrupt("its labels are not the data's".into()));
    }
    let names = [header.train_name.clone(), header.valid_name.clone()];
    if !in_memory {
        return on_disk(file, values_offset, header.shape, train, valid, names);
    }
    let valid_values = floats.split_off(header.train * per);
    let [train_name, valid_name] = names;
    Ok((
        ImageDataset::new(
            train_name,
            header.shape,
            header.num_classes,
            floats,
            train.labels(),
        )?,
        ImageDataset::new(
            valid_name,
            header.shape,
            header.num_classes,
            valid_values,
            valid.labels(),
        )?,
    ))
}
