//! Convolutions written through the fastest primitives Burn's CPU backends have.
//!
//! Burn 0.21's CPU convolution backward is slow (`docs/benchmarks.md`: a 16→16 3×3 convolution
//! on a 64×16×32×32 batch takes seconds on `ndarray`), while matrix products and element-wise
//! operations are fast in both directions. So:
//!
//! - a dense k×k convolution is an im2col built from k² shifted (strided) slices of the padded
//!   input, followed by one batched matrix product with the weight ([`conv2d`]);
//! - a 1×1 convolution is the matrix product alone;
//! - a depthwise convolution is a sum of k² shifted slices scaled per channel
//!   ([`depthwise_conv2d`]).
//!
//! Autodiff differentiates these compositions with slices, concatenations and matrix products,
//! all of which have fast backward passes. The weights keep Burn's `Conv2d` layout
//! (`[out, in / groups, k, k]`), so modules store them in `Conv2d` and records stay compatible.
//! `tests/fast_ops.rs` checks outputs and gradients against Burn's own `conv2d`.

use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::{Slice, Tensor};

pub use crate::geometry::ConvGeometry;

/// The `kh·kw` shifted slices of `x` (padded), each `[n, c, h_out, w_out]`, in kernel order.
fn shifted<B: Backend>(x: Tensor<B, 4>, k: [usize; 2], g: ConvGeometry) -> Vec<Tensor<B, 4>> {
    let [_, _, h, w] = x.dims();
    let (ho, wo) = (g.output_size(0, h, k[0]), g.output_size(1, w, k[1]));
    let [ph, pw] = g.padding;
    let xp = if ph > 0 || pw > 0 {
        x.pad([(ph, ph), (pw, pw)], PadMode::Constant(0.0))
    } else {
        x
    };
    let span = |start: usize, len: usize, s: usize| {
        let (start, s) = (start as isize, s as isize);
        Slice::new(start, Some(start + (len as isize - 1) * s + 1), s)
    };
    let mut out = Vec::with_capacity(k[0] * k[1]);
    for ky in 0..k[0] {
        for kx in 0..k[1] {
            let y = span(ky * g.dilation[0], ho, g.stride[0]);
            let x = span(kx * g.dilation[1], wo, g.stride[1]);
            out.push(xp.clone().slice([Slice::full(), Slice::full(), y, x]));
        }
    }
    out
}

/// Dense 2-D convolution (groups = 1, no bias) of `x` `[n, c, h, w]` with `weight`
/// `[o, c, kh, kw]`: on the `ndarray` backend one operation whose forward and backward passes
/// are CPU kernels (im2col + matrix product, col2im), elsewhere [`conv2d_tensor_ops`].
pub fn conv2d<B: Backend>(x: Tensor<B, 4>, weight: Tensor<B, 4>, g: ConvGeometry) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    let (x, weight) = match crate::native::conv(x, weight, g, false, false) {
        Ok(y) => return y,
        Err(args) => args,
    };
    conv2d_tensor_ops(x, weight, g)
}

/// [`conv2d`] of `relu(x)`; on the `ndarray` backend the ReLU is fused into the
/// convolution (no separate activation tensor, the input gradient is masked in place).
pub fn relu_conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    g: ConvGeometry,
) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    let (x, weight) = match crate::native::conv(x, weight, g, false, true) {
        Ok(y) => return y,
        Err(args) => args,
    };
    conv2d_tensor_ops(relu(x), weight, g)
}

/// [`depthwise_conv2d`] of `relu(x)`, fused on the `ndarray` backend like [`relu_conv2d`].
pub fn relu_depthwise_conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    g: ConvGeometry,
) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    let (x, weight) = match crate::native::conv(x, weight, g, true, true) {
        Ok(y) => return y,
        Err(args) => args,
    };
    depthwise_conv2d_tensor_ops(relu(x), weight, g)
}

/// [`conv2d`] written with Burn tensor operations, for any backend: im2col from shifted
/// strided slices of the padded input, then one batched matrix product.
pub fn conv2d_tensor_ops<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    g: ConvGeometry,
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let [o, ci, kh, kw] = weight.dims();
    assert_eq!(c, ci, "conv2d: input has {c} channels, weight expects {ci}");
    let (ho, wo) = (g.output_size(0, h, kh), g.output_size(1, w, kw));
    let taps = kh * kw;
    let cols = if taps == 1 {
        shifted(x, [1, 1], g).remove(0).reshape([n, c, ho * wo])
    } else {
        // [n, c, kh·kw, ho, wo] → [n, c·kh·kw, ho·wo], matching the weight's [o, c·kh·kw] layout.
        Tensor::stack::<5>(shifted(x, [kh, kw], g), 2).reshape([n, c * taps, ho * wo])
    };
    let wm = weight.reshape([1, o, c * taps]);
    wm.matmul(cols).reshape([n, o, ho, wo])
}

/// Depthwise 2-D convolution (groups = channels, no bias) of `x` `[n, c, h, w]` with `weight`
/// `[c, 1, kh, kw]`: on the `ndarray` backend one operation with CPU kernels (shifted
/// multiply-adds per channel plane), elsewhere [`depthwise_conv2d_tensor_ops`].
pub fn depthwise_conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    g: ConvGeometry,
) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    let (x, weight) = match crate::native::conv(x, weight, g, true, false) {
        Ok(y) => return y,
        Err(args) => args,
    };
    depthwise_conv2d_tensor_ops(x, weight, g)
}

/// [`depthwise_conv2d`] written with Burn tensor operations, for any backend: a sum of
/// shifted slices scaled per channel.
pub fn depthwise_conv2d_tensor_ops<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    g: ConvGeometry,
) -> Tensor<B, 4> {
    let [_, c, _, _] = x.dims();
    let [cw, one, kh, kw] = weight.dims();
    assert!(
        cw == c && one == 1,
        "depthwise_conv2d: weight {:?} for {c} channels",
        weight.dims()
    );
    let taps = weight.reshape([c, kh * kw]);
    let mut sum: Option<Tensor<B, 4>> = None;
    for (i, xs) in shifted(x, [kh, kw], g).into_iter().enumerate() {
        let wk = taps.clone().slice([0..c, i..i + 1]).reshape([1, c, 1, 1]);
        let term = xs * wk;
        sum = Some(match sum {
            Some(s) => s + term,
            None => term,
        });
    }
    sum.unwrap_or_else(|| unreachable!("a kernel has at least one tap"))
}

/// How [`Conv`] computes its forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvImpl {
    /// Burn's own `conv2d`.
    Native,
    /// [`conv2d`] / [`depthwise_conv2d`]: this library's CPU kernels on `ndarray`, the
    /// tensor-operation decomposition (im2col + matmul, shifted multiply-adds) elsewhere.
    Decomposed,
}

/// The implementation forced by `NAS_CONV` (`native` or `decomposed`), if any.
fn forced_impl() -> Option<ConvImpl> {
    static FORCED: std::sync::OnceLock<Option<ConvImpl>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("NAS_CONV").as_deref() {
        Ok("native") => Some(ConvImpl::Native),
        Ok("decomposed") => Some(ConvImpl::Decomposed),
        _ => None,
    })
}

/// The implementation [`Conv`] uses for depthwise convolutions: the one `NAS_CONV` forces,
/// else [`ConvImpl::Decomposed`] on `ndarray` (one operation with this library's CPU kernel)
/// and Burn's own everywhere else. Elsewhere the decomposed form is k² shifted multiply-adds,
/// 3k² autodiff operations whose fixed cost exceeds the arithmetic on small maps: a DARTS
/// supernet step (C = 4, 5 cells, 16×3×8×8, first order) took 10.7 s that way on `flex` and
/// 3.1 s with Burn's kernel.
pub fn depthwise_impl<B: Backend>(device: &B::Device) -> ConvImpl {
    if let Some(f) = forced_impl() {
        return f;
    }
    if B::name(device).contains("ndarray") {
        ConvImpl::Decomposed
    } else {
        ConvImpl::Native
    }
}

/// The implementation [`Conv`] uses on backend `B` for dense convolutions (see
/// [`depthwise_impl`] for depthwise ones): `NAS_CONV=native` or `NAS_CONV=decomposed`
/// forces one; by default (`auto`) [`ConvImpl::Decomposed`] on `ndarray` (our kernels beat
/// Burn's CPU convolution in both directions) and when training on `flex` (whose convolution
/// backward is slow), Burn's own everywhere else (GPU backends have native kernels).
pub fn conv_impl<B: Backend>(device: &B::Device) -> ConvImpl {
    if let Some(f) = forced_impl() {
        return f;
    }
    let name = B::name(device);
    if name.contains("ndarray") || (B::ad_enabled(device) && name.contains("flex")) {
        ConvImpl::Decomposed
    } else {
        ConvImpl::Native
    }
}

/// A convolution without bias whose forward pass picks its implementation with
/// [`conv_impl`]. Parameters live in a Burn `Conv2d` (same initialization and records).
#[derive(burn::module::Module, Debug)]
pub struct Conv<B: Backend> {
    /// The parameters (and Burn's implementation).
    pub inner: burn::nn::conv::Conv2d<B>,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    depthwise: bool,
}

impl<B: Backend> Conv<B> {
    /// A k×k convolution from `c_in` to `c_out` channels; `groups` is 1 or `c_in` (depthwise,
    /// then `c_out` must equal `c_in`). Padding keeps the size at stride 1.
    ///
    /// # Panics
    /// As [`Conv::with_geometry`]. Configurations from users go through
    /// [`crate::ops::OpConfig`], whose check returns a typed error for these instead.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        groups: usize,
        device: &B::Device,
    ) -> Self {
        let padding = dilation * kernel.saturating_sub(1) / 2;
        Self::with_padding(
            c_in, c_out, kernel, stride, padding, dilation, groups, device,
        )
    }

    /// As [`Conv::new`] with explicit padding.
    ///
    /// # Panics
    /// As [`Conv::with_geometry`].
    #[allow(clippy::too_many_arguments)]
    pub fn with_padding(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
        device: &B::Device,
    ) -> Self {
        Self::with_geometry(
            [c_in, c_out],
            [kernel, kernel],
            ConvGeometry::square(stride, padding, dilation),
            groups,
            device,
        )
    }

    /// A `kernel[0]`×`kernel[1]` convolution with any geometry (for the rectangular kernels of
    /// NASNet's 1×7/7×1 and NAS-RL's h×w filters).
    ///
    /// # Panics
    /// If a channel count, a kernel side, a stride, a dilation or `groups` is 0, or `groups`
    /// does not divide both channel counts: a bug in the caller (Burn's `Conv2dConfig` panics on
    /// the same, later and less clearly).
    pub fn with_geometry(
        channels: [usize; 2],
        kernel: [usize; 2],
        geometry: ConvGeometry,
        groups: usize,
        device: &B::Device,
    ) -> Self {
        let g = geometry;
        assert!(
            channels
                .iter()
                .chain(&kernel)
                .chain(&g.stride)
                .chain(&g.dilation)
                .all(|&v| v > 0)
                && groups > 0
                && channels[0].is_multiple_of(groups)
                && channels[1].is_multiple_of(groups),
            "fast::Conv: channels {channels:?}, kernel {kernel:?}, stride {:?}, dilation {:?} \
             must all be ≥ 1 and groups ({groups}) must divide both channel counts",
            g.stride,
            g.dilation
        );
        let inner = burn::nn::conv::Conv2dConfig::new(channels, kernel)
            .with_stride(g.stride)
            .with_dilation(g.dilation)
            .with_groups(groups)
            .with_padding(burn::nn::PaddingConfig2d::Explicit(
                g.padding[0],
                g.padding[1],
                g.padding[0],
                g.padding[1],
            ))
            .with_bias(false)
            .init(device);
        Self {
            inner,
            stride: g.stride,
            padding: g.padding,
            dilation: g.dilation,
            depthwise: groups > 1,
        }
    }

    /// The implementation this convolution uses on `device`: [`depthwise_impl`] or
    /// [`conv_impl`], except that a training pass (autodiff) never takes Burn's own kernel when
    /// its window is shorter than the stride ([`ConvGeometry::window_shorter_than_stride`],
    /// e.g. a 1×1 convolution at stride 2): Burn 0.21's CubeCL backends (`cuda`, `wgpu`)
    /// return a wrong input gradient there (`crates/nas-supernet/tests/wgpu_parity.rs`,
    /// `docs/benchmarks.md`), so it takes the decomposed form, whose gradient is right on
    /// every backend.
    pub fn implementation(&self, device: &B::Device) -> ConvImpl {
        let choice = if self.depthwise {
            depthwise_impl::<B>(device)
        } else {
            conv_impl::<B>(device)
        };
        let [_, _, kh, kw] = self.inner.weight.shape().dims::<4>();
        if choice == ConvImpl::Native
            && B::ad_enabled(device)
            && self.geometry().window_shorter_than_stride([kh, kw])
        {
            ConvImpl::Decomposed
        } else {
            choice
        }
    }

    /// The geometry (stride, padding, dilation).
    pub fn geometry(&self) -> ConvGeometry {
        ConvGeometry {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.inner.weight.shape().dims::<4>()[0]
    }

    /// Multiply-accumulates of one image of `h`×`w` pixels, and the output size.
    pub fn macs(&self, h: usize, w: usize) -> (u64, [usize; 2]) {
        let [o, ci, kh, kw] = self.inner.weight.shape().dims::<4>();
        let g = self.geometry();
        let (ho, wo) = (g.output_size(0, h, kh), g.output_size(1, w, kw));
        ((o * ci * kh * kw * ho * wo) as u64, [ho, wo])
    }

    /// Applies ReLU, then the convolution (fused where [`relu_conv2d`] fuses them).
    ///
    /// The ReLU is recorded by [`crate::probe::record_relu_codes`] and the output probed by
    /// [`crate::probe::probe_conv_outputs`] when they are on.
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if crate::probe::replaying_masks() {
            // Frozen activation masks (`probe::with_relu_masks`): the unfused path.
            return self.forward(crate::probe::relu(x));
        }
        crate::probe::record_relu(&x);
        let y = match self.implementation(&x.device()) {
            ConvImpl::Native => self.inner.forward(relu(x)),
            ConvImpl::Decomposed => {
                let g = self.geometry();
                if self.depthwise {
                    relu_depthwise_conv2d(x, self.inner.weight.val(), g)
                } else {
                    relu_conv2d(x, self.inner.weight.val(), g)
                }
            }
        };
        crate::probe::conv_output(y)
    }

    /// Applies the convolution (its output probed by [`crate::probe::probe_conv_outputs`]
    /// when that is on).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = match self.implementation(&x.device()) {
            ConvImpl::Native => self.inner.forward(x),
            ConvImpl::Decomposed => {
                let g = self.geometry();
                if self.depthwise {
                    depthwise_conv2d(x, self.inner.weight.val(), g)
                } else {
                    conv2d(x, self.inner.weight.val(), g)
                }
            }
        };
        crate::probe::conv_output(y)
    }
}

std::thread_local! {
    static SKIP_BATCH_NORM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static BATCH_STATISTICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every batch norm of the library's networks (all go through [`batch_norm`])
/// normalizing by the statistics of the batch it sees, also in inference mode, and leaving
/// the running statistics untouched, on this thread. This is how weight-sharing searches score
/// a path of a supernet (the NAS-Bench-201 paper's ENAS, RSPS, SETN and DARTS keep no running
/// statistics in the supernet, `track_running_stats=False`): running statistics averaged over
/// many paths fit none of them, and misjudge the paths with parameterized operations more than
/// the parameter-free ones. Score with batches of the size used in training. The setting is
/// restored when `f` returns or panics.
pub fn with_batch_statistics<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&BATCH_STATISTICS, f)
}

/// Runs `f` with every batch norm of the library's networks (all go through [`batch_norm`])
/// replaced by the identity, on this thread: the networks "without batch norm" that zero-cost
/// proxies such as synflow score (Tanaka et al. 2020; Abdelfattah et al. 2021 remove the batch
/// norms, whose batch statistics would cancel the signal of a constant input). The setting is
/// restored when `f` returns or panics.
pub fn without_batch_norm<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&SKIP_BATCH_NORM, f)
}

/// Runs `f` with the thread-local `flag` set, restoring its value when `f` returns or panics.
fn with_flag<R>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore {
        flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
        was: bool,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            self.flag.with(|c| c.set(self.was));
        }
    }
    let _restore = Restore {
        flag,
        was: flag.with(|c| c.replace(true)),
    };
    f()
}

/// Batch norm of `x` `[n, c, h, w]` with `bn`'s parameters and running statistics: the same
/// result as `bn.forward(x)` (training mode on autodiff backends, running statistics
/// otherwise). When training on the `ndarray` backend it is one operation with CPU kernels
/// (Burn's composes a dozen tensor operations, each with its own backward step).
///
/// Inside [`without_batch_norm`] it is the identity; inside [`with_batch_statistics`] it
/// normalizes by the batch's own mean and (biased) variance and updates no running statistic.
pub fn batch_norm<B: Backend>(bn: &burn::nn::BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    return batch_norm_then(bn, x, crate::kernels::Activation::Identity, |y| y);
    #[cfg(not(feature = "ndarray"))]
    batch_norm_then(bn, x, |y| y)
}

/// `relu(batch_norm(bn, x))`, the same result; when training on the `ndarray` backend one
/// operation whose forward and backward passes each sweep the tensor once fewer. Zero-cost
/// proxies that record or replay ReLU codes (`probe`) see this ReLU as any other.
pub fn batch_norm_relu<B: Backend>(bn: &burn::nn::BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    if !crate::probe::masks_active() {
        return batch_norm_then(bn, x, crate::kernels::Activation::Relu, crate::probe::relu);
    }
    crate::probe::relu(batch_norm(bn, x))
}

/// `batch_norm(bn, x).clamp(0, 6)` (MobileNetV2's ReLU6), the same result; when training on
/// the `ndarray` backend one operation (see [`batch_norm_relu`]). At exactly 0 and 6 the
/// gradient is zero, as in PyTorch's `hardtanh`.
pub fn batch_norm_relu6<B: Backend>(bn: &burn::nn::BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let relu6 = |y: Tensor<B, 4>| y.clamp(0.0, 6.0);
    #[cfg(feature = "ndarray")]
    return batch_norm_then(bn, x, crate::kernels::Activation::Relu6, relu6);
    #[cfg(not(feature = "ndarray"))]
    batch_norm_then(bn, x, relu6)
}

/// [`batch_norm`] followed by `act`, fused into the kernel as `fused` where the kernels run
/// it; `act` itself everywhere else.
fn batch_norm_then<B: Backend>(
    bn: &burn::nn::BatchNorm<B>,
    x: Tensor<B, 4>,
    #[cfg(feature = "ndarray")] fused: crate::kernels::Activation,
    act: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    if SKIP_BATCH_NORM.with(std::cell::Cell::get) {
        return act(x);
    }
    if BATCH_STATISTICS.with(std::cell::Cell::get) {
        let c = x.dims()[1];
        let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3);
        let centered = x - mean;
        let var = centered
            .clone()
            .powi_scalar(2)
            .mean_dim(0)
            .mean_dim(2)
            .mean_dim(3);
        let y = centered / (var + bn.epsilon).sqrt();
        return act(y * bn.gamma.val().reshape([1, c, 1, 1]) + bn.beta.val().reshape([1, c, 1, 1]));
    }
    #[cfg(feature = "ndarray")]
    let x = match crate::native::batch_norm(bn, x, fused) {
        Ok(y) => return y,
        Err(x) => x,
    };
    act(bn.forward(x))
}

/// Stride and symmetric padding of a pooling module, when the kernels can run it: explicit
/// symmetric (or no) padding smaller than the kernel, no dilation, no ceil mode.
#[cfg(feature = "ndarray")]
fn pool_geometry(
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: &burn::nn::PaddingConfig2d,
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Option<ConvGeometry> {
    use burn::nn::PaddingConfig2d;
    let pad = match *padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return None,
    };
    let ok = !ceil_mode && dilation == [1, 1] && pad[0] < kernel[0] && pad[1] < kernel[1];
    ok.then_some(ConvGeometry {
        stride,
        padding: pad,
        dilation: [1, 1],
    })
}

/// Average pooling with `pool`'s settings: the same result as `pool.forward(x)`, through CPU
/// kernels (window sums as multiply-adds of shifted rows) on the `ndarray` backend.
pub fn avg_pool2d<B: Backend>(pool: &burn::nn::pool::AvgPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    let x = match pool_geometry(
        pool.kernel_size,
        pool.stride,
        &pool.padding,
        [1, 1],
        pool.ceil_mode,
    ) {
        Some(g) => {
            match crate::native::pool(x, pool.kernel_size, g, Some(pool.count_include_pad)) {
                Ok(y) => return y,
                Err(x) => x,
            }
        }
        None => x,
    };
    pool.forward(x)
}

/// Max pooling with `pool`'s settings: the same result as `pool.forward(x)`, through CPU
/// kernels on the `ndarray` backend (the backward pass routes each gradient to the first
/// maximum of its window).
pub fn max_pool2d<B: Backend>(pool: &burn::nn::pool::MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    if crate::probe::masks_active()
        && let Some(g) = pool_geometry(
            pool.kernel_size,
            pool.stride,
            &pool.padding,
            [1, 1],
            pool.ceil_mode,
        )
    {
        // Under `probe::record_relu_masks` / `with_relu_masks`: the window's choice is
        // recorded, or replayed (a gather, linear in `x`).
        return crate::probe::max_pool(x, pool.kernel_size, g);
    }
    #[cfg(feature = "ndarray")]
    let x = match pool_geometry(
        pool.kernel_size,
        pool.stride,
        &pool.padding,
        pool.dilation,
        pool.ceil_mode,
    ) {
        Some(g) => match crate::native::pool(x, pool.kernel_size, g, None) {
            Ok(y) => return y,
            Err(x) => x,
        },
        None => x,
    };
    pool.forward(x)
}
