//! Probes into the library's networks, for zero-cost proxies that look inside a forward pass:
//! the binary codes of every ReLU ([`record_relu_codes`], NASWOT) and the gradient at every
//! convolution's output ([`probe_conv_outputs`], fisher).
//!
//! Every ReLU of the library's networks goes through [`relu`] or a
//! [`crate::fast::Conv::forward_relu`], and every convolution through a [`crate::fast::Conv`]:
//! a network of your own built from [`crate::nn`] layers and this [`relu`] is probed the same
//! way. The probes are thread-local and off by default; when off they cost one flag check.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// The agreement kernel of the ReLU codes of a batch (Mellor et al., "Neural Architecture
/// Search without Training", ICML 2021): `kernel[i * batch + j]` counts the ReLU units where
/// images `i` and `j` are both active or both inactive, over every ReLU the forward pass went
/// through (`units − d_H(cᵢ, cⱼ)`, the Hamming distance `d_H` of the binary codes `c`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReluCodes {
    /// Images in the batch.
    pub batch: usize,
    /// ReLU units per image (the length of each code).
    pub units: u64,
    /// The `batch × batch` kernel, row-major.
    pub kernel: Vec<f64>,
}

struct KernelRecorder {
    codes: ReluCodes,
    /// A ReLU whose batch differed from the first one's (the kernel is then meaningless).
    mismatch: Option<usize>,
}

/// Gradient probes of one forward pass, as `Box<dyn Any>` holding `Tensor<B, 4>`.
type Probes = Vec<Box<dyn Any>>;

/// The activation masks of every ReLU of a forward pass (`x > 0`, as float tensors of the
/// input's shape, in call order), recorded by [`record_relu_masks`] and replayed by
/// [`with_relu_masks`].
#[derive(Clone, Default)]
pub struct ReluMasks(Vec<Rc<dyn Any>>);

impl std::fmt::Debug for ReluMasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReluMasks({} ReLUs)", self.0.len())
    }
}

impl ReluMasks {
    /// The ReLUs recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No ReLU was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

enum MaskMode {
    Record(Vec<Rc<dyn Any>>),
    Replay {
        masks: Vec<Rc<dyn Any>>,
        next: usize,
        /// A ReLU found no mask of its shape and backend (it ran as a plain ReLU).
        mismatch: bool,
    },
}

std::thread_local! {
    static RELU_CODES: RefCell<Option<KernelRecorder>> = const { RefCell::new(None) };
    static CONV_PROBES: RefCell<Option<Probes>> = const { RefCell::new(None) };
    static RELU_MASKS: RefCell<Option<MaskMode>> = const { RefCell::new(None) };
}

/// Runs `f` (a forward pass) recording the activation mask of every ReLU it goes through on
/// this thread. Replayed by [`with_relu_masks`], they freeze the network's activation
/// pattern: the network becomes smooth in its weights around the recorded point, as autograd
/// treats it (a ReLU's second derivative is zero), which lets a finite difference of
/// gradients compute a Hessian-vector product exactly where the pattern would flip. The max
/// poolings of the library's operations ([`crate::fast::max_pool2d`]) record and replay which
/// input each window takes in the same list.
pub fn record_relu_masks<R>(f: impl FnOnce() -> R) -> (R, ReluMasks) {
    let outer = RELU_MASKS.with(|m| m.borrow_mut().replace(MaskMode::Record(Vec::new())));
    let restore = RestoreMasks(outer);
    let out = f();
    let recorded = RELU_MASKS.with(|m| m.borrow_mut().take());
    drop(restore);
    let masks = match recorded {
        Some(MaskMode::Record(masks)) => ReluMasks(masks),
        _ => ReluMasks::default(),
    };
    (out, masks)
}

/// Runs `f` (a forward pass of the network [`record_relu_masks`] recorded, possibly with other
/// weights) with every ReLU multiplying its input by the recorded mask instead of testing its
/// sign, in call order. Returns `f`'s result and whether every ReLU found its mask (same
/// count, shapes and backend) and every mask was used.
pub fn with_relu_masks<R>(masks: &ReluMasks, f: impl FnOnce() -> R) -> (R, bool) {
    let outer = RELU_MASKS.with(|m| {
        m.borrow_mut().replace(MaskMode::Replay {
            masks: masks.0.clone(),
            next: 0,
            mismatch: false,
        })
    });
    let restore = RestoreMasks(outer);
    let out = f();
    let replayed = RELU_MASKS.with(|m| m.borrow_mut().take());
    drop(restore);
    let complete = match replayed {
        Some(MaskMode::Replay {
            masks,
            next,
            mismatch,
        }) => !mismatch && next == masks.len(),
        _ => false,
    };
    (out, complete)
}

struct RestoreMasks(Option<MaskMode>);

impl Drop for RestoreMasks {
    fn drop(&mut self) {
        let outer = self.0.take();
        RELU_MASKS.with(|m| *m.borrow_mut() = outer);
    }
}

/// True while [`with_relu_masks`] replays masks on this thread (fused ReLU kernels then take
/// the plain path through [`relu`]).
pub(crate) fn replaying_masks() -> bool {
    RELU_MASKS.with(|m| matches!(*m.borrow(), Some(MaskMode::Replay { .. })))
}

/// True while [`record_relu_masks`] records or [`with_relu_masks`] replays on this thread.
pub(crate) fn masks_active() -> bool {
    RELU_MASKS.with(|m| m.borrow().is_some())
}

/// Whether no probe is on: no ReLU codes recorded or replayed, no convolution output probed
/// (fused operations that hide a ReLU or a convolution may run).
#[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
pub(crate) fn inactive() -> bool {
    !masks_active() && CONV_PROBES.with(|p| p.borrow().is_none())
}

/// Max pooling of `x` (`kernel`, stride and symmetric padding of `g`, no dilation) whose
/// choices are frozen like the ReLUs' masks: while [`record_relu_masks`] records, the index of
/// the input each output takes (the first maximum of its window) is recorded; while
/// [`with_relu_masks`] replays, each output takes the recorded input (a gather, linear in
/// `x`), so a finite difference of the weights never crosses the kink where a window's
/// maximum changes hands. A recorded index that does not fit is a mismatch, as for masks.
pub(crate) fn max_pool<B: Backend>(
    x: Tensor<B, 4>,
    kernel: [usize; 2],
    g: crate::geometry::ConvGeometry,
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let (ho, wo) = (
        g.output_size(0, h, kernel[0]),
        g.output_size(1, w, kernel[1]),
    );
    if replaying_masks() {
        let index = next_replayed(|i: &Tensor<B, 4, Int>| i.dims() == [n, c, ho, wo]);
        if let Some(index) = index {
            return x
                .reshape([n, c, h * w])
                .gather(2, index.reshape([n, c, ho * wo]))
                .reshape([n, c, ho, wo]);
        }
    }
    let (y, index) = burn::tensor::module::max_pool2d_with_indices(
        x,
        kernel,
        g.stride,
        g.padding,
        [1, 1],
        false,
    );
    record_mask(index);
    y
}

/// The next replayed entry (a ReLU mask, a pooling's indices), if replaying and it is a `T`
/// that `fits`; otherwise `None`, and a mismatch is noted.
fn next_replayed<T: Clone + 'static>(fits: impl FnOnce(&T) -> bool) -> Option<T> {
    RELU_MASKS.with(|m| {
        let mut m = m.borrow_mut();
        let Some(MaskMode::Replay {
            masks,
            next,
            mismatch,
        }) = m.as_mut()
        else {
            return None;
        };
        let entry = masks
            .get(*next)
            .and_then(|e| e.downcast_ref::<T>())
            .filter(|e| fits(e))
            .cloned();
        *next += 1;
        if entry.is_none() {
            *mismatch = true;
        }
        entry
    })
}

/// Appends `entry` to the masks being recorded, if [`record_relu_masks`] is recording.
fn record_mask(entry: impl Any) {
    RELU_MASKS.with(|m| {
        if let Some(MaskMode::Record(masks)) = m.borrow_mut().as_mut() {
            masks.push(Rc::new(entry));
        }
    });
}

/// Runs `f` (a forward pass) recording the codes of every ReLU it goes through on this
/// thread, and returns the agreement kernel of those codes; `None` when no ReLU ran or two
/// ReLUs saw batches of different sizes. Calls nest: an inner call records only its own
/// ReLUs. The recording stops when `f` returns or panics.
pub fn record_relu_codes<R>(f: impl FnOnce() -> R) -> (R, Option<ReluCodes>) {
    struct Restore(Option<KernelRecorder>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            RELU_CODES.with(|r| *r.borrow_mut() = outer);
        }
    }
    let outer = RELU_CODES.with(|r| {
        r.borrow_mut().replace(KernelRecorder {
            codes: ReluCodes {
                batch: 0,
                units: 0,
                kernel: Vec::new(),
            },
            mismatch: None,
        })
    });
    let restore = Restore(outer);
    let out = f();
    let recorded = RELU_CODES.with(|r| r.borrow_mut().take());
    drop(restore);
    let codes =
        recorded.and_then(|r| (r.mismatch.is_none() && r.codes.units > 0).then_some(r.codes));
    (out, codes)
}

/// ReLU, recorded by [`record_relu_codes`] and [`record_relu_masks`] when they are on, and
/// replaced by the recorded mask under [`with_relu_masks`].
pub fn relu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if replaying_masks() {
        if let Some(mask) = next_replayed(|m: &Tensor<B, D>| m.dims() == x.dims()) {
            return x * mask;
        }
        return activation::relu(x);
    }
    record_relu(&x);
    activation::relu(x)
}

/// Adds the codes of `relu(x)` (`x > 0`, one row per image) to the kernel being recorded.
pub(crate) fn record_relu<B: Backend, const D: usize>(x: &Tensor<B, D>) {
    if RELU_MASKS.with(|m| matches!(*m.borrow(), Some(MaskMode::Record(_)))) {
        record_mask(x.clone().greater_elem(0.0).float());
    }
    if RELU_CODES.with(|r| r.borrow().is_none()) {
        return;
    }
    let dims = x.dims();
    let n = dims[0];
    let units = dims[1..].iter().product::<usize>();
    if n == 0 || units == 0 {
        return;
    }
    // K = c cᵀ + (1 − c)(1 − c)ᵀ = units − |cᵢ| − |cⱼ| + 2 cᵢ·cⱼ: one product and the rows'
    // counts (the codes carry no gradient).
    let codes: Tensor<B, 2> = x.clone().greater_elem(0.0).float().reshape([n, units]);
    let counts = codes
        .clone()
        .sum_dim(1)
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>();
    let dots = codes
        .clone()
        .matmul(codes.transpose())
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>();
    let (Ok(counts), Ok(dots)) = (counts, dots) else {
        return;
    };
    RELU_CODES.with(|r| {
        let mut r = r.borrow_mut();
        let Some(rec) = r.as_mut() else { return };
        if rec.codes.units == 0 {
            rec.codes.batch = n;
            rec.codes.kernel = vec![0.0; n * n];
        } else if rec.codes.batch != n {
            rec.mismatch = Some(n);
            return;
        }
        rec.codes.units += units as u64;
        for i in 0..n {
            for j in 0..n {
                rec.codes.kernel[i * n + j] +=
                    units as f64 - counts[i] - counts[j] + 2.0 * dots[i * n + j];
            }
        }
    });
}

/// Runs `f` (a forward pass) with every convolution's output multiplied by a probe of ones
/// of shape `[batch, channels, 1, 1]` that requires a gradient, on this thread, and returns
/// the probes in the order the convolutions ran. After a backward pass, the gradient of a
/// probe is `Σ_{h,w} y · ∂L/∂y` per image and channel, `y` that convolution's output: the
/// quantity the fisher proxy squares (Turner et al. 2020; Abdelfattah et al. 2021). The
/// forward pass computes the same values as without probes. Probes made on another backend
/// than `B` are left out. Calls nest; probing stops when `f` returns or panics.
pub fn probe_conv_outputs<B: Backend, R>(f: impl FnOnce() -> R) -> (R, Vec<Tensor<B, 4>>) {
    struct Restore(Option<Probes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            CONV_PROBES.with(|p| *p.borrow_mut() = outer);
        }
    }
    let outer = CONV_PROBES.with(|p| p.borrow_mut().replace(Vec::new()));
    let restore = Restore(outer);
    let out = f();
    let probes = CONV_PROBES
        .with(|p| p.borrow_mut().take())
        .unwrap_or_default();
    drop(restore);
    let probes = probes
        .into_iter()
        .filter_map(|p| p.downcast::<Tensor<B, 4>>().ok().map(|p| *p))
        .collect();
    (out, probes)
}

/// A convolution's output `y`, multiplied by a new probe when [`probe_conv_outputs`] is on.
pub(crate) fn conv_output<B: Backend>(y: Tensor<B, 4>) -> Tensor<B, 4> {
    if CONV_PROBES.with(|p| p.borrow().is_none()) {
        return y;
    }
    let [n, c, _, _] = y.dims();
    let probe = Tensor::<B, 4>::ones([n, c, 1, 1], &y.device()).require_grad();
    CONV_PROBES.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.push(Box::new(probe.clone()));
        }
    });
    y * probe
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DefaultBackend;
    use burn::tensor::TensorData;

    type B = DefaultBackend;

    #[test]
    fn replayed_masks_freeze_the_activation_pattern() {
        let device = Default::default();
        let x = Tensor::<B, 1>::from_data(TensorData::new(vec![1.0f32, -1.0, 2.0], [3]), &device);
        let (_, masks) = record_relu_masks(|| relu(x.clone()));
        assert_eq!(masks.len(), 1);
        // Other inputs, the recorded pattern: [on, off, on].
        let z = Tensor::<B, 1>::from_data(TensorData::new(vec![-3.0f32, 5.0, 4.0], [3]), &device);
        let (y, complete) = with_relu_masks(&masks, || relu(z.clone()));
        assert!(complete);
        assert_eq!(y.into_data().to_vec::<f32>().unwrap(), vec![-3.0, 0.0, 4.0]);
        // Outside the replay, a plain ReLU again.
        assert_eq!(
            relu(z.clone()).into_data().to_vec::<f32>().unwrap(),
            vec![0.0, 5.0, 4.0]
        );
        // A pass through more ReLUs, or of another shape, is not the recorded one.
        let (_, complete) = with_relu_masks(&masks, || relu(relu(z.clone())));
        assert!(!complete);
        let w = Tensor::<B, 1>::ones([2], &device);
        let (_, complete) = with_relu_masks(&masks, || relu(w.clone()));
        assert!(!complete);
    }

    #[test]
    fn the_relu_kernel_counts_agreeing_units() {
        let device = Default::default();
        // Three images, four units: codes 1100, 1010, 0000.
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 2.0, -1.0, 0.0, 3.0, -2.0, 1.0, -1.0, -1.0, -1.0, 0.0, -3.0,
                ],
                [3, 4],
            ),
            &device,
        );
        let (y, codes) = record_relu_codes(|| relu(x.clone()));
        let codes = codes.unwrap();
        assert_eq!((codes.batch, codes.units), (3, 4));
        // Agreements: (0,1): units 0 and 3 -> 2; (0,2): units 2, 3 -> 2; (1,2): units 1, 3 -> 2.
        assert_eq!(
            codes.kernel,
            vec![4.0, 2.0, 2.0, 2.0, 4.0, 2.0, 2.0, 2.0, 4.0]
        );
        // The activation itself is ReLU.
        assert_eq!(
            y.into_data().to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 0.0, 0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        // Two ReLUs add up; outside the recording nothing is kept.
        let (_, twice) = record_relu_codes(|| {
            relu(x.clone());
            relu(x.clone())
        });
        let twice = twice.unwrap();
        assert_eq!(twice.units, 8);
        assert_eq!(twice.kernel[1], 4.0);
        relu(x.clone());
        let (_, none) = record_relu_codes(|| ());
        assert!(none.is_none());
    }

    #[test]
    fn a_probe_s_gradient_is_the_output_times_its_gradient_summed_over_pixels() {
        use crate::fast::Conv;
        use crate::network::seeded;
        let device = Default::default();
        let conv = seeded(&device, 3, || {
            Ok::<_, std::convert::Infallible>(Conv::<B>::new(2, 3, 3, 1, 1, 1, &device))
        })
        .unwrap();
        let x = Tensor::<B, 4>::random(
            [2, 2, 4, 4],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (y, probes) = probe_conv_outputs::<B, _>(|| conv.forward(x.clone()));
        assert_eq!(probes.len(), 1);
        // L = Σ y²: ∂L/∂y = 2y, so the probe's gradient is Σ_hw 2y².
        let grads = y.clone().powi_scalar(2).sum().backward();
        let g = probes[0].grad(&grads).unwrap();
        assert_eq!(g.dims(), [2, 3, 1, 1]);
        let expected = (y.clone().inner().powi_scalar(2) * 2.0)
            .sum_dim(3)
            .sum_dim(2);
        let (g, e) = (
            g.into_data().to_vec::<f32>().unwrap(),
            expected.into_data().to_vec::<f32>().unwrap(),
        );
        for (a, b) in g.iter().zip(&e) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{g:?} vs {e:?}");
        }
        // The same output as without the probe.
        let plain = conv.forward(x).into_data().to_vec::<f32>().unwrap();
        let probed = y.into_data().to_vec::<f32>().unwrap();
        assert_eq!(plain, probed);
    }
}
