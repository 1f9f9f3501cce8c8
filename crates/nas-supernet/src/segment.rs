//! Dense prediction: segmentation data, per-pixel training and its metrics.
//!
//! DPC (Chen et al., NeurIPS 2018) and NAS-FPN (Ghiasi et al., CVPR 2019) search for
//! architectures that label every pixel. This module gives them a task:
//!
//! - [`SegmentationDataset`]: images with one class per pixel. [`SegmentationDataset::scenes`]
//!   composes one from any image classification set, by pasting objects on a blank canvas
//!   ([`SceneConfig`]); on the UCI digits embedded in this crate
//!   ([`ImageDataset::digits`]) that is a real segmentation task with no download: 11 classes
//!   (background and ten digits), where the class of a stroke's pixel depends on the shape of
//!   the whole digit around it. That is the multi-scale context DPC and NAS-FPN exist for.
//! - [`Segmenter`]: a network that gives per-pixel logits (`DpcNetwork`, `FpnNetwork`).
//! - [`SegmentationTrainer`]: training from scratch with per-pixel cross-entropy, as an
//!   [`EpochSolver`] (checkpoints and resume come from the [`Driver`]), scored after every epoch
//!   by pixel accuracy and mean intersection over union ([`ConfusionMatrix`]); [`fit_segmentation`]
//!   runs one to the end.
//!
//! ```
//! use nas_supernet::data::ImageDataset;
//! use nas_supernet::segment::{SceneConfig, SegmentationDataset};
//!
//! let (digits_train, digits_valid) = ImageDataset::digits().split(0.7, 0)?;
//! let train = SegmentationDataset::scenes(&digits_train, &SceneConfig { images: 64, ..Default::default() })?;
//! let valid = SegmentationDataset::scenes(&digits_valid, &SceneConfig { images: 16, seed: 1, ..Default::default() })?;
//! assert_eq!(train.shape(), [1, 32, 32]);
//! assert_eq!(train.num_classes(), 11); // background and ten digits
//! assert_eq!(valid.len(), 16);
//! # Ok::<(), nas_supernet::SupernetError>(())
//! ```

use std::sync::Arc;
use std::time::Instant;

use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, ElementConversion, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

use crate::data::{ChannelStats, ImageDataset, Normalize, split_positions};
use crate::driver::{Checkpoint, Control, Driver, EpochSolver, WithHistory};
use crate::error::SupernetError;
use crate::network::mix_seed;
use crate::train::{TrainConfig, TrainError, TrainOptim, TrainReport, sgd_optimizer};

/// A network that labels every pixel: logits `[batch, classes, height, width]` at the input
/// resolution.
pub trait Segmenter<B: Backend> {
    /// Per-pixel class logits of `images` (`[batch, channels, height, width]`).
    fn segment(&self, images: Tensor<B, 4>) -> Tensor<B, 4>;
}

/// A segmentation dataset: images and one class per pixel, in memory.
#[derive(Debug, Clone)]
pub struct SegmentationDataset {
    name: String,
    shape: [usize; 3],
    num_classes: usize,
    pixels: Arc<Vec<f32>>,
    masks: Arc<Vec<u16>>,
    indices: Arc<Vec<usize>>,
}

/// How [`SegmentationDataset::scenes`] composes scenes from a classification set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SceneConfig {
    /// Scenes to compose.
    pub images: usize,
    /// Side of the square canvas, in pixels.
    pub size: usize,
    /// Fewest objects per scene (at least 1).
    pub min_objects: usize,
    /// Most objects per scene.
    pub max_objects: usize,
    /// Each object is enlarged by this integer factor (nearest neighbour) before pasting.
    pub scale: usize,
    /// An object's pixel whose value (mean over channels) exceeds this belongs to the object;
    /// the others leave the canvas's label as it was.
    pub threshold: f32,
    /// Seed of the objects drawn and of their places.
    pub seed: u64,
}

impl Default for SceneConfig {
    /// 1,000 scenes of 32×32 pixels, each with 1 to 3 objects enlarged twice (16×16 for the
    /// 8×8 digits), object pixels above 0.25.
    fn default() -> Self {
        Self {
            images: 1000,
            size: 32,
            min_objects: 1,
            max_objects: 3,
            scale: 2,
            threshold: 0.25,
            seed: 0,
        }
    }
}

/// How [`SegmentationDataset::shapes`] draws its scenes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShapesConfig {
    /// Scenes to draw.
    pub images: usize,
    /// Side of the square canvas, in pixels.
    pub size: usize,
    /// Fewest shapes per scene (at least 1).
    pub min_objects: usize,
    /// Most shapes per scene.
    pub max_objects: usize,
    /// Smallest half-size of a shape (the radius of a disk, half the side of a square).
    pub min_radius: usize,
    /// Largest half-size of a shape.
    pub max_radius: usize,
    /// Seed of the shapes, their sizes, places and shades.
    pub seed: u64,
}

impl Default for ShapesConfig {
    /// 1,000 scenes of 32×32 pixels with 1 to 3 shapes of half-size 2 to 9.
    fn default() -> Self {
        Self {
            images: 1000,
            size: 32,
            min_objects: 1,
            max_objects: 3,
            min_radius: 2,
            max_radius: 9,
            seed: 0,
        }
    }
}

/// The classes of [`SegmentationDataset::shapes`], after the background (class 0).
pub const SHAPE_CLASSES: [&str; 3] = ["square", "disk", "triangle"];

impl SegmentationDataset {
    /// A dataset from raw parts: `pixels` holds `masks.len() / (h·w)` images of `shape`
    /// (`[channels, height, width]`, channel-major, values in `[0, 1]`), `masks` one class
    /// below `num_classes` per pixel, image after image.
    ///
    /// # Errors
    /// [`SupernetError::InvalidConfig`] when the sizes disagree, a class is out of range or
    /// there are more than 65,536 classes.
    pub fn new(
        name: impl Into<String>,
        shape: [usize; 3],
        num_classes: usize,
        pixels: Vec<f32>,
        masks: Vec<u16>,
    ) -> Result<Self, SupernetError> {
        let name = name.into();
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "segmentation dataset",
            reason: format!("{name}: {reason}"),
        };
        let [c, h, w] = shape;
        let per = c
            .checked_mul(h)
            .and_then(|x| x.checked_mul(w))
            .ok_or_else(|| bad(format!("images of {shape:?} are too large")))?;
        if per == 0 || num_classes == 0 {
            return Err(bad("image shape and class count must be positive".into()));
        }
        if num_classes > usize::from(u16::MAX) + 1 {
            return Err(bad(format!("{num_classes} classes: at most 65,536")));
        }
        if !masks.len().is_multiple_of(h * w) {
            return Err(bad(format!(
                "{} mask values are not a whole number of {h}×{w} masks",
                masks.len()
            )));
        }
        let n = masks.len() / (h * w);
        if pixels.len() != n * per {
            return Err(bad(format!(
                "{} pixel values for {n} images of {shape:?}",
                pixels.len()
            )));
        }
        if let Some(m) = masks.iter().find(|&&m| usize::from(m) >= num_classes) {
            return Err(bad(format!("class {m} is not below {num_classes} classes")));
        }
        Ok(Self {
            name,
            shape,
            num_classes,
            pixels: Arc::new(pixels),
            masks: Arc::new(masks),
            indices: Arc::new((0..n).collect()),
        })
    }

    /// Scenes composed from `source`, a classification set: each scene pastes between
    /// `min_objects` and `max_objects` of its images (drawn at random, enlarged `scale` times)
    /// at random places on a blank `size`×`size` canvas. A pixel takes the class `1 + label`
    /// of the last object whose pixel there exceeds `threshold` (later objects' labels over
    /// earlier ones'), else it is background (class `0`); the canvas keeps the brightest value
    /// pasted on each pixel. The set has `source.num_classes() + 1` classes.
    ///
    /// At the defaults on the embedded digits this is a hard task: in our exploratory runs
    /// (DPC networks of 16–32 channels, up to 16 epochs) the networks stayed at predicting
    /// background everywhere; [`SegmentationDataset::shapes`] is the task the examples and
    /// tests learn.
    ///
    /// Compose the training and the validation scenes from disjoint parts of the source
    /// (`source.split`), so no object is seen in both.
    ///
    /// # Errors
    /// [`SupernetError::InvalidConfig`] for an empty source, no scenes, an object larger than
    /// the canvas, an object count range that is empty or starts at 0, or more pixels than
    /// memory can index; the source's error when an image set on disk fails to read.
    pub fn scenes(source: &ImageDataset, config: &SceneConfig) -> Result<Self, SupernetError> {
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "scene config",
            reason,
        };
        let [c, sh, sw] = source.shape();
        let size = config.size;
        let too_large = || {
            bad(format!(
                "{} scenes of {size}×{size} pixels are too many",
                config.images
            ))
        };
        let (oh, ow) = match (sh.checked_mul(config.scale), sw.checked_mul(config.scale)) {
            (Some(oh), Some(ow)) => (oh, ow),
            _ => return Err(bad(format!("`scale` {} is too large", config.scale))),
        };
        if source.is_empty() {
            return Err(bad("the source dataset is empty".into()));
        }
        if config.images == 0 {
            return Err(bad("`images` must be positive".into()));
        }
        if config.scale == 0 || oh > size || ow > size {
            return Err(bad(format!(
                "objects of {sh}×{sw} enlarged {} times do not fit a {size}×{size} canvas: \
                 lower `scale` or raise `size`",
                config.scale
            )));
        }
        if config.min_objects == 0 || config.min_objects > config.max_objects {
            return Err(bad(format!(
                "objects per scene must be a range starting at 1 or more, got {}..={}",
                config.min_objects, config.max_objects
            )));
        }
        if source.num_classes() >= usize::from(u16::MAX) {
            return Err(bad(format!(
                "{} classes are too many",
                source.num_classes()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let plane = size.checked_mul(size).ok_or_else(too_large)?;
        let masks_len = config.images.checked_mul(plane).ok_or_else(too_large)?;
        let pixels_len = masks_len.checked_mul(c).ok_or_else(too_large)?;
        let mut pixels = vec![0f32; pixels_len];
        let mut masks = vec![0u16; masks_len];
        for s in 0..config.images {
            let canvas = &mut pixels[s * c * plane..(s + 1) * c * plane];
            let mask = &mut masks[s * plane..(s + 1) * plane];
            let objects = rng.random_range(config.min_objects..=config.max_objects);
            for _ in 0..objects {
                let index = rng.random_range(0..source.len());
                let item = source
                    .get(index)
                    .ok_or_else(|| bad(format!("the source dataset has no item {index}")))?;
                let (top, left) = (
                    rng.random_range(0..=size - oh),
                    rng.random_range(0..=size - ow),
                );
                let class = item.label as u16 + 1;
                for y in 0..oh {
                    for x in 0..ow {
                        let (sy, sx) = (y / config.scale, x / config.scale);
                        let mut mean = 0.0;
                        for ch in 0..c {
                            let v = item.pixels[(ch * sh + sy) * sw + sx];
                            mean += v / c as f32;
                            let at = &mut canvas[ch * plane + (top + y) * size + left + x];
                            *at = at.max(v);
                        }
                        if mean > config.threshold {
                            mask[(top + y) * size + left + x] = class;
                        }
                    }
                }
            }
        }
        // An image set on disk gives zeros for an image it fails to read: refuse the scenes.
        source.check_reads()?;
        Self::new(
            format!("{} scenes (seed {})", source.name(), config.seed),
            [c, size, size],
            source.num_classes() + 1,
            pixels,
            masks,
        )
    }

    /// Procedural scenes of filled shapes (one grey channel): each scene draws between
    /// `min_objects` and `max_objects` squares, disks and upward triangles ([`SHAPE_CLASSES`],
    /// classes 1 to 3; background is 0) of random half-size in `min_radius..=max_radius`,
    /// shade in `[0.5, 1]` and place, later shapes over earlier ones, with uniform noise of
    /// ±0.1 on every pixel. Inside a large shape every pixel looks alike: telling a square's
    /// pixel from a disk's takes context as large as the shape, at every scale from 2 to 9
    /// pixels, which is what DPC's atrous and pyramid-pooling branches are for.
    ///
    /// # Errors
    /// [`SupernetError::InvalidConfig`] for no scenes, an empty object or size range, or
    /// shapes that do not fit the canvas.
    pub fn shapes(config: &ShapesConfig) -> Result<Self, SupernetError> {
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "shapes config",
            reason,
        };
        let size = config.size;
        if config.images == 0 {
            return Err(bad("`images` must be positive".into()));
        }
        if config.min_objects == 0 || config.min_objects > config.max_objects {
            return Err(bad(format!(
                "objects per scene must be a range starting at 1 or more, got {}..={}",
                config.min_objects, config.max_objects
            )));
        }
        if config.min_radius == 0 || config.min_radius > config.max_radius {
            return Err(bad(format!(
                "half-sizes must be a range starting at 1 or more, got {}..={}",
                config.min_radius, config.max_radius
            )));
        }
        if config.max_radius >= size / 2 + size % 2 {
            return Err(bad(format!(
                "shapes of half-size {} do not fit a {size}×{size} canvas",
                config.max_radius
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let plane = size
            .checked_mul(size)
            .filter(|p| p.checked_mul(config.images).is_some())
            .ok_or_else(|| {
                bad(format!(
                    "{} scenes of {size}×{size} pixels are too many",
                    config.images
                ))
            })?;
        let mut pixels = vec![0f32; config.images * plane];
        let mut masks = vec![0u16; config.images * plane];
        for s in 0..config.images {
            let canvas = &mut pixels[s * plane..(s + 1) * plane];
            let mask = &mut masks[s * plane..(s + 1) * plane];
            for _ in 0..rng.random_range(config.min_objects..=config.max_objects) {
                let class = rng.random_range(1..=SHAPE_CLASSES.len() as u16);
                let r = rng.random_range(config.min_radius..=config.max_radius);
                let cy = rng.random_range(r..size - r) as i64;
                let cx = rng.random_range(r..size - r) as i64;
                let shade: f32 = rng.random_range(0.5..=1.0);
                let r = r as i64;
                for y in (cy - r).max(0)..=(cy + r).min(size as i64 - 1) {
                    for x in (cx - r).max(0)..=(cx + r).min(size as i64 - 1) {
                        let (dy, dx) = (y - cy, x - cx);
                        let inside = match class {
                            1 => true,
                            2 => dy * dy + dx * dx <= r * r,
                            // Apex at the top, base at the bottom row.
                            _ => 2 * dx.abs() <= dy + r,
                        };
                        if inside {
                            let at = y as usize * size + x as usize;
                            canvas[at] = shade;
                            mask[at] = class;
                        }
                    }
                }
            }
            for v in canvas.iter_mut() {
                *v = (*v + rng.random_range(-0.1f32..=0.1)).clamp(0.0, 1.0);
            }
        }
        Self::new(
            format!("shapes (seed {})", config.seed),
            [1, size, size],
            SHAPE_CLASSES.len() + 1,
            pixels,
            masks,
        )
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[channels, height, width]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The number of classes (background included).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Image `index` (channel-major) and its mask (row-major), or `None` past the end.
    pub fn get(&self, index: usize) -> Option<(&[f32], &[u16])> {
        let i = *self.indices.get(index)?;
        let [c, h, w] = self.shape;
        let (per, plane) = (c * h * w, h * w);
        Some((
            &self.pixels[i * per..(i + 1) * per],
            &self.masks[i * plane..(i + 1) * plane],
        ))
    }

    /// The items at `positions` (positions in this dataset), sharing the storage.
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

    /// Splits into `(first, second)` with `fraction` of the items (rounded) in the first,
    /// after a shuffle by `seed`.
    ///
    /// # Errors
    /// [`SupernetError::InvalidConfig`] when `fraction` is not in `[0, 1]`.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Self, Self), SupernetError> {
        let (first, second) = split_positions(self.len(), fraction, seed)?;
        Ok((self.subset(&first), self.subset(&second)))
    }

    /// How many pixels of each class the dataset has.
    pub fn class_pixels(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.num_classes];
        for index in 0..self.len() {
            if let Some((_, mask)) = self.get(index) {
                for &m in mask {
                    counts[usize::from(m)] += 1;
                }
            }
        }
        counts
    }

    /// Per-channel mean and standard deviation of the pixels.
    pub fn channel_stats(&self) -> Normalize {
        let [c, h, w] = self.shape;
        let mut stats = ChannelStats::new(c, h * w);
        for index in 0..self.len() {
            if let Some((image, _)) = self.get(index) {
                stats.add(image);
            }
        }
        stats.finish()
    }

    /// The images at `positions` as a normalized batch `[n, c, h, w]` and their masks
    /// `[n·h·w]` (row-major, image after image).
    fn batch<B: Backend>(
        &self,
        positions: &[usize],
        normalize: &Normalize,
        device: &Device<B>,
    ) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut images = Vec::with_capacity(positions.len() * c * plane);
        let mut masks = Vec::with_capacity(positions.len() * plane);
        for &p in positions {
            if let Some((image, mask)) = self.get(p) {
                for ch in 0..c {
                    let (m, s) = (normalize.mean[ch], normalize.std[ch]);
                    images.extend(
                        image[ch * plane..(ch + 1) * plane]
                            .iter()
                            .map(|v| (v - m) / s),
                    );
                }
                masks.extend(mask.iter().map(|&m| i64::from(m)));
            }
        }
        let n = masks.len() / plane;
        (
            Tensor::from_data(TensorData::new(images, [n, c, h, w]), device),
            Tensor::from_data(TensorData::new(masks, [n * plane]), device),
        )
    }
}

/// Counts of (true class, predicted class) over pixels: pixel accuracy and intersection over
/// union per class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfusion")]
pub struct ConfusionMatrix {
    classes: usize,
    /// `counts[truth * classes + predicted]`.
    counts: Vec<u64>,
}

/// The serialized form of [`ConfusionMatrix`], checked on loading.
#[derive(Deserialize)]
struct RawConfusion {
    classes: usize,
    counts: Vec<u64>,
}

impl TryFrom<RawConfusion> for ConfusionMatrix {
    type Error = String;

    fn try_from(raw: RawConfusion) -> Result<Self, String> {
        if raw.classes.checked_mul(raw.classes) != Some(raw.counts.len()) {
            return Err(format!(
                "a confusion matrix of {} classes needs {}² counts, got {}",
                raw.classes,
                raw.classes,
                raw.counts.len()
            ));
        }
        Ok(Self {
            classes: raw.classes,
            counts: raw.counts,
        })
    }
}

impl ConfusionMatrix {
    /// An empty matrix over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Adds pixels: `predicted[i]` against `truth[i]`. Pixels whose class (either) is out of
    /// range are not counted.
    ///
    /// # Errors
    /// [`SupernetError::InvalidConfig`] when the two slices differ in length (nothing is
    /// added).
    pub fn add(&mut self, predicted: &[i64], truth: &[u16]) -> Result<(), SupernetError> {
        if predicted.len() != truth.len() {
            return Err(SupernetError::InvalidConfig {
                what: "confusion matrix",
                reason: format!(
                    "{} predicted pixels against {} true ones",
                    predicted.len(),
                    truth.len()
                ),
            });
        }
        for (&p, &t) in predicted.iter().zip(truth) {
            let t = usize::from(t);
            if let Ok(p) = usize::try_from(p)
                && p < self.classes
                && t < self.classes
            {
                self.counts[t * self.classes + p] += 1;
            }
        }
        Ok(())
    }

    /// How many pixels of class `truth` were predicted as `predicted` (0 for a class out of
    /// range).
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        if truth < self.classes && predicted < self.classes {
            self.counts[truth * self.classes + predicted]
        } else {
            0
        }
    }

    /// Pixels counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Correct pixels over all pixels, in percent (0 when empty).
    pub fn pixel_accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes).map(|k| self.count(k, k)).sum();
        100.0 * correct as f64 / self.total().max(1) as f64
    }

    /// Intersection over union of each class, in percent: `TP / (TP + FP + FN)`; `None` for a
    /// class neither present nor predicted.
    pub fn iou(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|k| {
                let tp = self.count(k, k);
                let truth: u64 = (0..self.classes).map(|p| self.count(k, p)).sum();
                let predicted: u64 = (0..self.classes).map(|t| self.count(t, k)).sum();
                let union = truth + predicted - tp;
                (union > 0).then(|| 100.0 * tp as f64 / union as f64)
            })
            .collect()
    }

    /// Mean intersection over union (mIoU, %) over the classes present or predicted (the
    /// PASCAL VOC and Cityscapes convention); 0 when empty.
    pub fn mean_iou(&self) -> f64 {
        let ious: Vec<f64> = self.iou().into_iter().flatten().collect();
        if ious.is_empty() {
            0.0
        } else {
            ious.iter().sum::<f64>() / ious.len() as f64
        }
    }
}

/// The score of a segmentation network on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationScore {
    /// Mean per-pixel cross-entropy.
    pub loss: f64,
    /// Pixel accuracy, %.
    pub pixel_accuracy: f64,
    /// Mean intersection over union, %.
    pub mean_iou: f64,
    /// The confusion matrix.
    pub confusion: ConfusionMatrix,
}

/// Logits `[n, k, h, w]` as rows `[n·h·w, k]`, pixel after pixel (row-major, image after
/// image, as the masks of a batch).
fn pixel_rows<B: Backend>(logits: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, k, h, w] = logits.dims();
    logits.permute([0, 2, 3, 1]).reshape([n * h * w, k])
}

fn check_logits(dims: [usize; 4], shape: [usize; 3], classes: usize) -> Result<(), TrainError> {
    let [_, k, h, w] = dims;
    if k != classes || [h, w] != [shape[1], shape[2]] {
        return Err(TrainError::Data(format!(
            "the network's logits are {dims:?}, but the dataset has {classes} classes and \
             {}×{} images: build the network with as many classes, and let it upsample its \
             logits to the input size",
            shape[1], shape[2]
        )));
    }
    Ok(())
}

/// The loss, pixel accuracy and mIoU of `model` on `data`, in batches of `batch_size`.
///
/// # Errors
/// [`TrainError::Data`] when the data is empty or the network's logits do not fit it.
pub fn evaluate_segmentation<B: Backend, M: Segmenter<B>>(
    model: &M,
    data: &SegmentationDataset,
    normalize: &Normalize,
    batch_size: usize,
    device: &Device<B>,
) -> Result<SegmentationScore, TrainError> {
    if data.is_empty() {
        return Err(TrainError::Data(
            "the dataset to evaluate on is empty".into(),
        ));
    }
    if batch_size == 0 {
        return Err(TrainError::InvalidConfig {
            field: "batch_size",
            reason: "must be positive".into(),
        });
    }
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut confusion = ConfusionMatrix::new(data.num_classes());
    let mut loss_sum = 0.0;
    let positions: Vec<usize> = (0..data.len()).collect();
    for chunk in positions.chunks(batch_size) {
        let (images, targets) = data.batch::<B>(chunk, normalize, device);
        let logits = model.segment(images);
        check_logits(logits.dims(), data.shape(), data.num_classes())?;
        let rows = pixel_rows(logits);
        let loss: f64 = loss_fn.forward(rows.clone(), targets).into_scalar().elem();
        loss_sum += loss * chunk.len() as f64;
        let predicted = rows.argmax(1).into_data();
        let predicted: Vec<i64> = predicted
            .convert::<i64>()
            .into_vec()
            .map_err(|e| TrainError::Data(format!("{e:?}")))?;
        let truth: Vec<u16> = chunk
            .iter()
            .filter_map(|&p| data.get(p))
            .flat_map(|(_, mask)| mask.iter().copied())
            .collect();
        confusion
            .add(&predicted, &truth)
            .map_err(|e| TrainError::Data(e.to_string()))?;
    }
    Ok(SegmentationScore {
        loss: loss_sum / data.len() as f64,
        pixel_accuracy: confusion.pixel_accuracy(),
        mean_iou: confusion.mean_iou(),
        confusion,
    })
}

/// What one epoch of [`SegmentationTrainer`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationEpoch {
    /// Mean training loss (per-pixel cross-entropy).
    pub train_loss: f64,
    /// Pixel accuracy on the training batches, %.
    pub train_pixel_accuracy: f64,
    /// Validation loss.
    pub valid_loss: f64,
    /// Validation pixel accuracy, %.
    pub valid_pixel_accuracy: f64,
    /// Validation mean intersection over union, %.
    pub valid_mean_iou: f64,
    /// Wall time of the epoch (training and validation), seconds.
    pub seconds: f64,
}

/// The history as a [`TrainReport`]: accuracies are pixel accuracies (a diverged run's
/// [`TrainError::Diverged`] carries it).
fn train_report(history: &[SegmentationEpoch]) -> TrainReport {
    TrainReport {
        train_loss: history.iter().map(|e| e.train_loss).collect(),
        train_accuracy: history.iter().map(|e| e.train_pixel_accuracy).collect(),
        valid_loss: history.iter().map(|e| e.valid_loss).collect(),
        valid_accuracy: history.iter().map(|e| e.valid_pixel_accuracy).collect(),
        epoch_seconds: history.iter().map(|e| e.seconds).collect(),
        stopped_early: false,
    }
}

/// Checks `config` for segmentation training: valid ([`TrainConfig::check`]) and without the
/// classification extras segmentation does not use (augmentation, drop-path, weight averaging,
/// distillation), which are refused by name. `auxiliary_weight` is ignored (the segmentation
/// networks have no auxiliary head).
///
/// # Errors
/// [`TrainError::InvalidConfig`] naming the field.
pub fn check_segmentation_config(config: &TrainConfig) -> Result<(), TrainError> {
    config.check()?;
    let refuse = |field: &'static str| TrainError::InvalidConfig {
        field,
        reason: "is not used by segmentation training: leave it at its default".into(),
    };
    if config.augment != Default::default() {
        return Err(refuse("augment"));
    }
    if config.drop_path > 0.0 {
        return Err(refuse("drop_path"));
    }
    if config.averaging.is_some() {
        return Err(refuse("averaging"));
    }
    if config.distillation.is_some() {
        return Err(refuse("distillation"));
    }
    Ok(())
}

/// Checks that a training and a validation set can be used together: neither empty, the same
/// image shape and the same classes.
///
/// # Errors
/// [`TrainError::Data`] saying what differs.
pub fn check_segmentation_sets(
    train: &SegmentationDataset,
    valid: &SegmentationDataset,
) -> Result<(), TrainError> {
    if train.is_empty() || valid.is_empty() {
        return Err(TrainError::Data(
            "the training and validation sets must not be empty".into(),
        ));
    }
    if train.shape() != valid.shape() || train.num_classes() != valid.num_classes() {
        return Err(TrainError::Data(format!(
            "training images are {:?} with {} classes, validation images {:?} with {}",
            train.shape(),
            train.num_classes(),
            valid.shape(),
            valid.num_classes()
        )));
    }
    Ok(())
}

/// Training a [`Segmenter`] from scratch with per-pixel cross-entropy, as an [`EpochSolver`]:
/// the SGD, momentum, weight decay, clipping and cosine schedule of [`TrainConfig`], batches
/// shuffled per epoch by the seed (so a resumed run sees the batches an uninterrupted one
/// would), evaluation on the validation set after every epoch.
///
/// [`TrainConfig`]'s classification extras are refused ([`check_segmentation_config`]).
pub struct SegmentationTrainer<'d, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    model: M,
    optim: TrainOptim<B, M>,
    train: &'d SegmentationDataset,
    valid: &'d SegmentationDataset,
    normalize: Normalize,
    config: TrainConfig,
    device: Device<B>,
    epoch: usize,
    step: usize,
    history: Vec<SegmentationEpoch>,
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> std::fmt::Debug for SegmentationTrainer<'_, B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentationTrainer")
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .field("config", &self.config)
            .field("train", &self.train.name())
            .field("valid", &self.valid.name())
            .finish_non_exhaustive()
    }
}

impl<'d, B, M> SegmentationTrainer<'d, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Segmenter<B>,
    M::InnerModule: Segmenter<B::InnerBackend>,
{
    /// Training of `model` on `train`, evaluated on `valid` after every epoch, both
    /// normalized by `train`'s channel statistics.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for an invalid configuration or one that asks for a
    /// classification extra; [`TrainError::Data`] for empty sets or sets that disagree.
    pub fn new(
        model: M,
        train: &'d SegmentationDataset,
        valid: &'d SegmentationDataset,
        config: &TrainConfig,
        device: &Device<B>,
    ) -> Result<Self, TrainError> {
        check_segmentation_config(config)?;
        check_segmentation_sets(train, valid)?;
        Ok(Self {
            model,
            optim: sgd_optimizer::<B, M>(config),
            train,
            valid,
            normalize: train.channel_stats(),
            config: config.clone(),
            device: device.clone(),
            epoch: 0,
            step: 0,
            history: Vec::new(),
        })
    }

    /// The model as trained so far.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The epochs finished so far.
    pub fn history(&self) -> &[SegmentationEpoch] {
        &self.history
    }

    /// The normalization applied to both sets (the training set's statistics).
    pub fn normalize(&self) -> &Normalize {
        &self.normalize
    }

    /// The trained model and the history.
    pub fn into_parts(self) -> (M, Vec<SegmentationEpoch>) {
        (self.model, self.history)
    }

    fn train_epoch(&mut self) -> Result<(f64, f64), TrainError> {
        let config = self.config.clone();
        let steps_per_epoch = self.train.len().div_ceil(config.batch_size);
        let total_steps = steps_per_epoch.saturating_mul(config.epochs);
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix_seed(
            config.seed,
            self.epoch as u64,
            40,
        )));
        let (mut loss_sum, mut correct, mut pixels) = (0.0, 0u64, 0u64);
        for (i, chunk) in order.chunks(config.batch_size).enumerate() {
            let (images, targets) = self.train.batch::<B>(chunk, &self.normalize, &self.device);
            let logits = self.model.segment(images);
            check_logits(logits.dims(), self.train.shape(), self.train.num_classes())?;
            let rows = pixel_rows(logits);
            let loss = loss_fn.forward(rows.clone(), targets.clone());
            let loss_value: f64 = loss.clone().into_scalar().elem();
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: self.epoch,
                    step: i,
                    loss: loss_value,
                    report: Box::new(train_report(&self.history)),
                });
            }
            let n = targets.dims()[0] as u64;
            let hits: i64 = rows
                .detach()
                .argmax(1)
                .flatten::<1>(0, 1)
                .equal(targets)
                .int()
                .sum()
                .into_scalar()
                .elem();
            correct += hits as u64;
            pixels += n;
            loss_sum += loss_value * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            let lr = config.learning_rate_at(self.step, total_steps);
            self.model = self.optim.step(lr, self.model.clone(), grads);
            self.step += 1;
        }
        Ok((
            loss_sum / self.train.len() as f64,
            100.0 * correct as f64 / pixels.max(1) as f64,
        ))
    }
}

impl<B, M> EpochSolver for SegmentationTrainer<'_, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Segmenter<B>,
    M::InnerModule: Segmenter<B::InnerBackend>,
{
    type Report = SegmentationEpoch;
    type Error = TrainError;

    fn kind(&self) -> &'static str {
        "segmentation"
    }

    fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "config": self.config,
            "train": self.train.name(),
            "train_images": self.train.len(),
            "valid": self.valid.name(),
            "valid_images": self.valid.len(),
            "image_shape": self.train.shape(),
            "classes": self.train.num_classes(),
        })
    }

    fn total_epochs(&self) -> usize {
        self.config.epochs
    }

    fn epochs_done(&self) -> usize {
        self.epoch
    }

    fn epoch(&mut self) -> Result<SegmentationEpoch, TrainError> {
        let start = Instant::now();
        // Restored on failure, as `Trainer::epoch` does.
        let before = self.model.valid();
        let optim_before = self.optim.to_record();
        let step_before = self.step;
        let outcome = self.train_epoch().and_then(|t| {
            evaluate_segmentation(
                &self.model.valid(),
                self.valid,
                &self.normalize,
                self.config.batch_size,
                &self.device,
            )
            .map(|v| (t, v))
        });
        let ((train_loss, train_pixel_accuracy), valid) = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.model = M::from_inner(before);
                self.optim = sgd_optimizer::<B, M>(&self.config).load_record(optim_before);
                self.step = step_before;
                return Err(e);
            }
        };
        let e = SegmentationEpoch {
            train_loss,
            train_pixel_accuracy,
            valid_loss: valid.loss,
            valid_pixel_accuracy: valid.pixel_accuracy,
            valid_mean_iou: valid.mean_iou,
            seconds: start.elapsed().as_secs_f64(),
        };
        self.history.push(e.clone());
        self.epoch += 1;
        Ok(e)
    }

    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        c.put_module::<B, M>("model", &self.model)?;
        c.put_optimizer::<B, M, _>("optimizer", &self.optim)?;
        c.put("trainer", &(self.epoch, self.step, &self.history))?;
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint) -> Result<(), TrainError> {
        let (epoch, step, history): (usize, usize, Vec<SegmentationEpoch>) = c.get("trainer")?;
        self.model = c.module::<B, M>("model", self.model.clone(), &self.device)?;
        self.optim = c.optimizer::<B, M, _>(
            "optimizer",
            sgd_optimizer::<B, M>(&self.config),
            &self.device,
        )?;
        (self.epoch, self.step, self.history) = (epoch, step, history);
        Ok(())
    }
}

/// Trains `model` on `train`, scoring it on `valid` after every epoch; `observer` sees each
/// epoch with the history so far and returns `true` to stop. Returns the trained model and
/// the history. To checkpoint and resume, drive a [`SegmentationTrainer`] with a [`Driver`].
///
/// # Errors
/// As [`SegmentationTrainer::new`]; [`TrainError::Diverged`] for a non-finite loss.
pub fn fit_segmentation<B, M>(
    model: M,
    (train, valid): (&SegmentationDataset, &SegmentationDataset),
    config: &TrainConfig,
    device: &Device<B>,
    mut observer: impl FnMut(usize, &[SegmentationEpoch]) -> bool,
) -> Result<(M, Vec<SegmentationEpoch>), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Segmenter<B>,
    M::InnerModule: Segmenter<B::InnerBackend>,
{
    let mut trainer = SegmentationTrainer::new(model, train, valid, config, device)?;
    let epochs = config.epochs;
    let mut driver = Driver::new(&mut trainer).observer(WithHistory(
        |epoch: usize, _: &SegmentationEpoch, history: &[SegmentationEpoch]| {
            if observer(epoch, history) && epoch + 1 < epochs {
                Control::Stop
            } else {
                Control::Continue
            }
        },
    ));
    driver.run().map_err(TrainError::from_driver)?;
    drop(driver);
    Ok(trainer.into_parts())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_matrix_counts_accuracy_and_iou() {
        let mut m = ConfusionMatrix::new(3);
        // truth:     0 0 0 1 1 2
        // predicted: 0 0 1 1 2 2
        m.add(&[0, 0, 1, 1, 2, 2], &[0, 0, 0, 1, 1, 2]).unwrap();
        assert_eq!(m.total(), 6);
        assert!((m.pixel_accuracy() - 400.0 / 6.0).abs() < 1e-9);
        let iou = m.iou();
        // class 0: tp 2, union 3; class 1: tp 1, union 3; class 2: tp 1, union 2.
        assert!((iou[0].unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert!((iou[1].unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert!((iou[2].unwrap() - 50.0).abs() < 1e-9);
        assert!((m.mean_iou() - (200.0 / 3.0 + 100.0 / 3.0 + 50.0) / 3.0).abs() < 1e-9);
        // A class never present nor predicted is left out of the mean.
        let mut m = ConfusionMatrix::new(4);
        m.add(&[0, 1, -1, 9], &[0, 1, 1, 1]).unwrap();
        assert_eq!(m.total(), 2);
        assert_eq!(m.count(1, 9), 0);
        assert!(m.add(&[0], &[0, 1]).is_err());
        assert_eq!(m.total(), 2);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ConfusionMatrix>(&json).unwrap(), m);
        let bad = r#"{"classes":3,"counts":[1,2]}"#;
        assert!(serde_json::from_str::<ConfusionMatrix>(bad).is_err());
        assert_eq!(m.iou()[2], None);
        assert_eq!(m.mean_iou(), 100.0);
    }

    #[test]
    fn scenes_label_the_object_pixels_with_their_class() {
        // Two 2×2 "images": class 0 all bright, class 1 all dark.
        let source = ImageDataset::new(
            "toy",
            [1, 2, 2],
            2,
            vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            vec![0, 1],
        )
        .unwrap();
        let config = SceneConfig {
            images: 20,
            size: 6,
            min_objects: 1,
            max_objects: 2,
            scale: 2,
            threshold: 0.5,
            seed: 3,
        };
        let scenes = SegmentationDataset::scenes(&source, &config).unwrap();
        assert_eq!(scenes.num_classes(), 3);
        assert_eq!(scenes.shape(), [1, 6, 6]);
        for i in 0..scenes.len() {
            let (image, mask) = scenes.get(i).unwrap();
            for (v, m) in image.iter().zip(mask) {
                // Bright pixels are class-0 objects (class 1 of the scenes); dark objects
                // never pass the threshold, so nothing is labelled class 2.
                assert_eq!(*m == 1, *v == 1.0);
                assert_ne!(*m, 2);
            }
            // A bright object covers a 4×4 block (two may overlap).
            let bright = mask.iter().filter(|&&m| m == 1).count();
            assert!(bright == 0 || bright >= 16, "{bright}");
        }
        assert!(scenes.class_pixels()[1] > 0);
        // Same seed, same scenes; another seed, other scenes.
        let again = SegmentationDataset::scenes(&source, &config).unwrap();
        assert_eq!(again.get(7), scenes.get(7));
        let other =
            SegmentationDataset::scenes(&source, &SceneConfig { seed: 4, ..config }).unwrap();
        assert!((0..20).any(|i| other.get(i) != scenes.get(i)));
    }

    #[test]
    fn bad_scene_configs_and_datasets_are_errors() {
        let digits = ImageDataset::digits();
        for config in [
            SceneConfig {
                size: 15,
                ..Default::default()
            },
            SceneConfig {
                scale: 0,
                ..Default::default()
            },
            SceneConfig {
                images: 0,
                ..Default::default()
            },
            SceneConfig {
                min_objects: 0,
                ..Default::default()
            },
            SceneConfig {
                min_objects: 3,
                max_objects: 2,
                ..Default::default()
            },
        ] {
            let e = SegmentationDataset::scenes(&digits, &config).unwrap_err();
            assert!(matches!(e, SupernetError::InvalidConfig { .. }), "{e}");
        }
        assert!(
            SegmentationDataset::new("x", [1, 2, 2], 2, vec![0.0; 4], vec![0, 1, 2, 0]).is_err()
        );
        assert!(
            SegmentationDataset::new("x", [1, 2, 2], 2, vec![0.0; 3], vec![0, 1, 1, 0]).is_err()
        );
        assert!(SegmentationDataset::new("x", [1, 2, 2], 2, vec![0.0; 4], vec![0, 1, 1]).is_err());
        let ok = SegmentationDataset::new(
            "x",
            [1, 2, 2],
            2,
            vec![0.0; 8],
            vec![0, 1, 1, 0, 1, 1, 1, 1],
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok.class_pixels(), vec![2, 6]);
        let (a, b) = ok.split(0.5, 0).unwrap();
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(ok.split(1.5, 0).is_err());
    }
}
