//! CPU kernels on contiguous `f32` slices in NCHW order: the forward and backward passes of
//! convolutions and batch norm that [`crate::fast`] runs on the `ndarray` backend.
//!
//! - Dense convolutions: im2col of one image into a scratch matrix, then one matrix product
//!   with the weight (the `gemm` crate, AVX-512/AVX2/FMA kernels chosen at run time); a 1×1
//!   convolution with stride 1 multiplies the image itself. The backward pass recomputes the
//!   im2col matrix (no copy of it is kept between the passes) for the weight gradient and
//!   scatters `Wᵀ·dY` back (col2im) for the input gradient. Large stride-1 convolutions take
//!   direct SIMD kernels for the forward pass and the weight gradient instead (`direct`).
//! - DARTS' factorized reduction: one operation (`reduce`).
//! - Depthwise convolutions: per channel plane, one multiply-add of a shifted row per tap.
//! - Batch norm (training): per-channel statistics in `f64`, normalization and the analytic
//!   backward pass in two sweeps each, optionally followed by a fused ReLU or ReLU6.
//!
//! Work is split over images (or channels) on rayon's pool in fixed chunks, and partial sums
//! are added in chunk order, so results do not depend on the number of threads.

use rayon::prelude::*;

/// Images per chunk of work: partial weight gradients are summed per chunk, in order.
const CHUNK: usize = 4;

/// Partial sums kept by the reductions below: independent accumulators let the compiler use
/// vector registers (a single running sum is a chain of dependent scalar additions).
const LANES: usize = 16;

/// `Σ f(a[i], b[i])` over the common length, in a fixed order (lanes, then the tail).
#[inline(always)]
fn reduce2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += f(x[i], y[i]);
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(&x, &y)| f(x, y)).sum();
    acc.iter().sum::<f32>() + tail
}

/// `n` zeros, written now. `vec![0.0; n]` of a large `n` maps fresh pages to the kernel's
/// shared zero page, so a later read-modify-write (`+=`) takes a copy-on-write fault on every
/// page, and each of those flushes the TLB of every thread of the process with an
/// inter-processor interrupt: most of a max-pooling backward pass on 2 threads, in
/// `perf`.
fn zeros(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    v.resize(n, 0.0);
    v
}

/// `buf` cut into `size`-long parts when `need`, else `chunks` empty slices: one part per
/// chunk of images either way, so that a parallel zip over the chunks keeps its length when a
/// gradient is not wanted.
fn chunks_or_empty(buf: &mut [f32], need: bool, size: usize, chunks: usize) -> Vec<&mut [f32]> {
    if need {
        buf.chunks_mut(size).collect()
    } else {
        (0..chunks).map(|_| <&mut [f32]>::default()).collect()
    }
}

/// The element-wise sum of the `size`-long parts of `partial` (per-chunk partial gradients),
/// added in chunk order, so that the result does not depend on the thread count.
fn sum_parts(partial: &[f32], size: usize) -> Vec<f32> {
    let mut sum = vec![0.0f32; size];
    for part in partial.chunks(size) {
        for (a, b) in sum.iter_mut().zip(part) {
            *a += b;
        }
    }
    sum
}

/// `Σ a[i]·b[i]`.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    reduce2(a, b, |x, y| x * y)
}

/// Geometry of a 2-D convolution on `[n, c, h, w]` inputs with `[o, c / groups, kh, kw]`
/// weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Output channels (equal to `c` for depthwise convolutions).
    pub o: usize,
    /// Kernel height and width.
    pub k: [usize; 2],
    /// Stride, zero padding and dilation (height, width).
    pub stride: [usize; 2],
    /// Zero padding on each side.
    pub pad: [usize; 2],
    /// Dilation.
    pub dil: [usize; 2],
    /// Apply ReLU to the input first (ReLU → conv fused: the input gradient is masked).
    pub relu: bool,
}

impl ConvShape {
    /// Output height and width.
    pub fn out_hw(&self) -> [usize; 2] {
        let f = |a: usize| {
            (self.hw[a] + 2 * self.pad[a] - self.dil[a] * (self.k[a] - 1) - 1) / self.stride[a] + 1
        };
        [f(0), f(1)]
    }

    fn taps(&self) -> usize {
        self.k[0] * self.k[1]
    }

    /// A 1×1 stride-1 convolution without padding (or ReLU) reads the image as its im2col
    /// matrix.
    fn pointwise(&self) -> bool {
        self.taps() == 1 && self.stride == [1, 1] && self.pad == [0, 0] && !self.relu
    }

    /// Input position of output coordinate `out` and tap `tap` along `axis`, if inside.
    #[inline]
    fn input_at(&self, axis: usize, out: usize, tap: usize) -> Option<usize> {
        let i = (out * self.stride[axis] + tap * self.dil[axis]) as isize - self.pad[axis] as isize;
        (i >= 0 && (i as usize) < self.hw[axis]).then_some(i as usize)
    }

    /// Height and width of a plane with its padding border, and the length of its buffer:
    /// a few elements past the last row let stride-1 taps read whole padded-width rows.
    fn padded(&self) -> [usize; 3] {
        let (hp, wp) = (self.hw[0] + 2 * self.pad[0], self.hw[1] + 2 * self.pad[1]);
        [hp, wp, hp * wp + (self.k[1] - 1) * self.dil[1]]
    }

    /// Offset of tap `(ky, kx)` in a padded plane of row pitch `wp`.
    #[inline]
    fn tap_offset(&self, wp: usize, ky: usize, kx: usize) -> usize {
        ky * self.dil[0] * wp + kx * self.dil[1]
    }

    /// Offset in a padded plane of the first input that output row `oy` reads for tap `ky`.
    #[inline]
    fn row_offset(&self, wp: usize, oy: usize, ky: usize) -> usize {
        (oy * self.stride[0] + ky * self.dil[0]) * wp
    }
}

/// `dst (m×n) [+]= lhs (m×k) · rhs (k×n)`, each matrix given by its row and column strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    [dst_rs, dst_cs]: [usize; 2],
    accumulate: bool,
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rs: usize, cs: usize, rows: usize, cols: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        dst.len() > last(dst_rs, dst_cs, m, n),
        "matmul: dst too short"
    );
    if k == 0 {
        if !accumulate {
            dst.iter_mut().for_each(|v| *v = 0.0);
        }
        return;
    }
    assert!(
        lhs.len() > last(lhs_rs, lhs_cs, m, k),
        "matmul: lhs too short"
    );
    assert!(
        rhs.len() > last(rhs_rs, rhs_cs, k, n),
        "matmul: rhs too short"
    );
    // SAFETY: the assertions above keep every element the strides address inside the slices;
    // `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Copies one plane `[h, w]` into `buf` inside a border of `fill` (the padding), applying the
/// ReLU when the shape has one, so that taps read whole rows without bounds checks.
fn pad_plane(s: &ConvShape, x: &[f32], fill: f32, buf: &mut Vec<f32>) {
    let [h, w] = s.hw;
    let [_, wp, len] = s.padded();
    buf.clear();
    buf.resize(len, fill);
    for (iy, src) in x.chunks_exact(w).take(h).enumerate() {
        let dst = &mut buf[(iy + s.pad[0]) * wp + s.pad[1]..][..w];
        if s.relu {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v.max(0.0);
            }
        } else {
            dst.copy_from_slice(src);
        }
    }
}

/// Writes the interior of a padded plane gradient to `dx` `[h, w]`, masked where the
/// (pre-ReLU) input `x` is not positive when the shape has a ReLU.
fn unpad_plane(s: &ConvShape, padded: &[f32], x: &[f32], dx: &mut [f32]) {
    let [h, w] = s.hw;
    let [_, wp, _] = s.padded();
    for iy in 0..h {
        let src = &padded[(iy + s.pad[0]) * wp + s.pad[1]..][..w];
        let dst = &mut dx[iy * w..(iy + 1) * w];
        if s.relu {
            let xr = &x[iy * w..(iy + 1) * w];
            for ((d, &g), &v) in dst.iter_mut().zip(src).zip(xr) {
                *d = if v > 0.0 { g } else { 0.0 };
            }
        } else {
            dst.copy_from_slice(src);
        }
    }
}

/// `dst[i] op= src[i·stride]` for every `i` of `dst`.
#[inline(always)]
fn strided(dst: &mut [f32], src: &[f32], stride: usize, op: impl Fn(&mut f32, f32)) {
    if stride == 1 {
        let n = dst.len();
        for (d, &v) in dst.iter_mut().zip(&src[..n]) {
            op(d, v);
        }
    } else {
        for (d, &v) in dst.iter_mut().zip(src.iter().step_by(stride)) {
            op(d, v);
        }
    }
}

/// `dst[i·stride] += scale · src[i]` for every `i` of `src`.
#[inline(always)]
fn scatter(dst: &mut [f32], src: &[f32], stride: usize, scale: f32) {
    if stride == 1 {
        for (d, &v) in dst[..src.len()].iter_mut().zip(src) {
            *d += scale * v;
        }
    } else {
        for (d, &v) in dst.iter_mut().step_by(stride).zip(src) {
            *d += scale * v;
        }
    }
}

/// Per-thread buffers of the kernels.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

/// The im2col matrix `[c·kh·kw, ho·wo]` of one image `[c, h, w]`.
#[inline(never)]
fn im2col(s: &ConvShape, x: &[f32], cols: &mut [f32], buf: &mut Vec<f32>) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let [_, wp, _] = s.padded();
    let p = ho * wo;
    for (c, plane) in x.chunks_exact(h * w).take(s.c).enumerate() {
        pad_plane(s, plane, 0.0, buf);
        for ky in 0..s.k[0] {
            for kx in 0..s.k[1] {
                let r = (c * s.k[0] + ky) * s.k[1] + kx;
                let dst = &mut cols[r * p..(r + 1) * p];
                for (oy, d) in dst.chunks_exact_mut(wo).enumerate() {
                    let base = s.row_offset(wp, oy, ky) + kx * s.dil[1];
                    strided(d, &buf[base..], s.stride[1], |d, v| *d = v);
                }
            }
        }
    }
}

/// The input gradient of one image from its im2col-shaped gradient `cols` (col2im), masked
/// by the ReLU when the shape has one.
#[inline(never)]
fn col2im(s: &ConvShape, cols: &[f32], x: &[f32], dx: &mut [f32], buf: &mut Vec<f32>) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let [_, wp, len] = s.padded();
    let p = ho * wo;
    for c in 0..s.c {
        buf.clear();
        buf.resize(len, 0.0);
        for ky in 0..s.k[0] {
            for kx in 0..s.k[1] {
                let r = (c * s.k[0] + ky) * s.k[1] + kx;
                for (oy, g) in cols[r * p..(r + 1) * p].chunks_exact(wo).enumerate() {
                    let base = s.row_offset(wp, oy, ky) + kx * s.dil[1];
                    scatter(&mut buf[base..], g, s.stride[1], 1.0);
                }
            }
        }
        let plane = c * h * w..(c + 1) * h * w;
        unpad_plane(s, buf, &x[plane.clone()], &mut dx[plane]);
    }
}

/// Dense convolution forward: `x` `[n, c, h, w]`, `weight` `[o, c, kh, kw]` → `[n, o, ho, wo]`.
pub(crate) fn conv2d(s: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let [ho, wo] = s.out_hw();
    let (p, ck, img) = (ho * wo, s.c * s.taps(), s.c * s.hw[0] * s.hw[1]);
    let mut out = vec![0.0f32; s.n * s.o * p];
    if !s.pointwise() && direct::applies(s) {
        // Stride 1: multiply-adds straight from the padded planes, no im2col matrix.
        let mut wt = Vec::new();
        direct::weights_by_tap(s, weight, &mut wt);
        out.par_chunks_mut(s.o * p)
            .zip(x.par_chunks(img))
            .for_each_init(Scratch::default, |sc, (out, x)| {
                direct::pad_image(s, x, &mut sc.a, &mut sc.c);
                direct::conv_forward(s, &sc.a, &wt, &mut sc.b, out);
            });
        return out;
    }
    out.par_chunks_mut(CHUNK * s.o * p)
        .zip(x.par_chunks(CHUNK * img))
        .for_each_init(Scratch::default, |sc, (out, x)| {
            for (out, x) in out.chunks_mut(s.o * p).zip(x.chunks(img)) {
                let src = if s.pointwise() {
                    x
                } else {
                    sc.a.resize(ck * p, 0.0);
                    im2col(s, x, &mut sc.a, &mut sc.b);
                    &sc.a
                };
                // Transposed, outᵀ (p×o) = colsᵀ (p×ck) · Wᵀ (ck×o): the long side (positions)
                // runs along the microkernel's rows, which a few output channels would leave
                // mostly empty, and colsᵀ is column-major, as the kernel reads it.
                matmul(
                    [p, s.o, ck],
                    out,
                    [1, p],
                    false,
                    src,
                    [1, p],
                    weight,
                    [1, ck],
                );
            }
        });
    out
}

/// Dense convolution backward: the input gradient (if `need_dx`) and the weight gradient (if
/// `need_dw`) for the output gradient `dy` `[n, o, ho, wo]`.
pub(crate) fn conv2d_backward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    need_dx: bool,
    need_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let [ho, wo] = s.out_hw();
    let (p, ck, img) = (ho * wo, s.c * s.taps(), s.c * s.hw[0] * s.hw[1]);
    let mut dx = vec![0.0f32; if need_dx { s.n * img } else { 0 }];
    let chunks = s.n.div_ceil(CHUNK);
    // Accumulated into by the direct kernel: written before it is read (see `zeros`).
    let mut partial = zeros(if need_dw { chunks * s.o * ck } else { 0 });
    // One chunk of images: (its dX, its partial dW), its X, its dY.
    type Chunk<'a> = (((&'a mut [f32], &'a mut [f32]), &'a [f32]), &'a [f32]);
    let work = |sc: &mut Scratch, (((dx, dw), x), dy): Chunk| {
        for (i, (x, dy)) in x.chunks(img).zip(dy.chunks(s.o * p)).enumerate() {
            if need_dw && !s.pointwise() && direct::applies(s) {
                direct::pad_image(s, x, &mut sc.a, &mut sc.c);
                direct::widen(s, dy, &mut sc.b);
                direct::conv_weight_grad(s, &sc.a, &sc.b, dw);
            } else if need_dw {
                let src = if s.pointwise() {
                    x
                } else {
                    sc.a.resize(ck * p, 0.0);
                    im2col(s, x, &mut sc.a, &mut sc.c);
                    &sc.a
                };
                // dWᵀ (ck×o) += cols (ck×p) · dYᵀ (p×o), transposed as in the forward pass.
                matmul([ck, s.o, p], dw, [1, ck], i > 0, src, [p, 1], dy, [1, p]);
            }
            if need_dx {
                let dxi = &mut dx[i * img..(i + 1) * img];
                // dcols (ck×p) = Wᵀ (ck×o) · dY (o×p), then col2im; a pointwise convolution
                // writes the image gradient directly.
                if s.pointwise() {
                    matmul(
                        [ck, p, s.o],
                        dxi,
                        [p, 1],
                        false,
                        weight,
                        [1, ck],
                        dy,
                        [p, 1],
                    );
                } else {
                    sc.b.resize(ck * p, 0.0);
                    matmul(
                        [ck, p, s.o],
                        &mut sc.b,
                        [p, 1],
                        false,
                        weight,
                        [1, ck],
                        dy,
                        [p, 1],
                    );
                    col2im(s, &sc.b, x, dxi, &mut sc.c);
                }
            }
        }
    };
    chunks_or_empty(&mut dx, need_dx, CHUNK * img, chunks)
        .into_par_iter()
        .zip(chunks_or_empty(&mut partial, need_dw, s.o * ck, chunks))
        .zip(x.par_chunks(CHUNK * img))
        .zip(dy.par_chunks(CHUNK * s.o * p))
        .for_each_init(Scratch::default, work);
    let dw = need_dw.then(|| sum_parts(&partial, s.o * ck));
    (need_dx.then_some(dx), dw)
}

/// One output plane of a depthwise (or window-sum) operation from the padded input plane
/// `xp`: every tap adds its weight times the shifted input. At stride 1 the taps run over the
/// padded-width rows as one contiguous sweep each (`acc`), then the valid columns are kept.
#[inline(never)]
fn depthwise_plane(s: &ConvShape, xp: &[f32], wk: &[f32], acc: &mut Vec<f32>, out: &mut [f32]) {
    let [ho, wo] = s.out_hw();
    let [_, wp, _] = s.padded();
    if s.stride == [1, 1] {
        let l = ho * wp;
        acc.clear();
        acc.resize(l, 0.0);
        for ky in 0..s.k[0] {
            for kx in 0..s.k[1] {
                let src = &xp[s.tap_offset(wp, ky, kx)..][..l];
                let scale = wk[ky * s.k[1] + kx];
                for (a, &v) in acc.iter_mut().zip(src) {
                    *a += scale * v;
                }
            }
        }
        for (dst, src) in out.chunks_exact_mut(wo).zip(acc.chunks_exact(wp)) {
            dst.copy_from_slice(&src[..wo]);
        }
    } else {
        for (oy, dst) in out.chunks_exact_mut(wo).enumerate() {
            dst.fill(0.0);
            for ky in 0..s.k[0] {
                for kx in 0..s.k[1] {
                    let base = s.row_offset(wp, oy, ky) + kx * s.dil[1];
                    let scale = wk[ky * s.k[1] + kx];
                    strided(dst, &xp[base..], s.stride[1], |d, v| *d += scale * v);
                }
            }
        }
    }
}

/// Backward pass of one depthwise plane: the weight-gradient contribution of every tap
/// (`dw`, from the padded input `xp`) and the input gradient (`dx`, through the padded
/// buffer `dxp`; masked by the ReLU).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn depthwise_back_plane(
    s: &ConvShape,
    x: &[f32],
    xp: Option<&[f32]>,
    dy: &[f32],
    wk: &[f32],
    gp: &mut Vec<f32>,
    dxp: &mut Vec<f32>,
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
) {
    let [ho, wo] = s.out_hw();
    let [_, wp, len] = s.padded();
    if s.stride == [1, 1] {
        // The output gradient on the padded-width grid, zero in the columns past `wo`.
        let l = ho * wp;
        gp.clear();
        gp.resize(l, 0.0);
        for (dst, src) in gp.chunks_exact_mut(wp).zip(dy.chunks_exact(wo)) {
            dst[..wo].copy_from_slice(src);
        }
        if let (Some(dw), Some(xp)) = (dw, xp) {
            for ky in 0..s.k[0] {
                for kx in 0..s.k[1] {
                    dw[ky * s.k[1] + kx] = dot(gp, &xp[s.tap_offset(wp, ky, kx)..][..l]);
                }
            }
        }
        if let Some(dx) = dx {
            dxp.clear();
            dxp.resize(len, 0.0);
            for ky in 0..s.k[0] {
                for kx in 0..s.k[1] {
                    let dst = &mut dxp[s.tap_offset(wp, ky, kx)..][..l];
                    scatter(dst, gp, 1, wk[ky * s.k[1] + kx]);
                }
            }
            unpad_plane(s, dxp, x, dx);
        }
    } else {
        if let (Some(dw), Some(xp)) = (dw, xp) {
            for ky in 0..s.k[0] {
                for kx in 0..s.k[1] {
                    let mut sum = 0.0f32;
                    for (oy, g) in dy.chunks_exact(wo).enumerate() {
                        let base = s.row_offset(wp, oy, ky) + kx * s.dil[1];
                        let src = xp[base..].iter().step_by(s.stride[1]);
                        sum += g.iter().zip(src).map(|(g, v)| g * v).sum::<f32>();
                    }
                    dw[ky * s.k[1] + kx] = sum;
                }
            }
        }
        if let Some(dx) = dx {
            dxp.clear();
            dxp.resize(len, 0.0);
            for (oy, g) in dy.chunks_exact(wo).enumerate() {
                for ky in 0..s.k[0] {
                    for kx in 0..s.k[1] {
                        let base = s.row_offset(wp, oy, ky) + kx * s.dil[1];
                        scatter(&mut dxp[base..], g, s.stride[1], wk[ky * s.k[1] + kx]);
                    }
                }
            }
            unpad_plane(s, dxp, x, dx);
        }
    }
}

/// Depthwise convolution forward: `x` `[n, c, h, w]`, `weight` `[c, 1, kh, kw]`.
pub(crate) fn depthwise(s: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let taps = s.taps();
    let mut out = vec![0.0f32; s.n * s.c * ho * wo];
    out.par_chunks_mut(ho * wo)
        .zip(x.par_chunks(h * w))
        .enumerate()
        .for_each_init(Scratch::default, |sc, (q, (out, x))| {
            pad_plane(s, x, 0.0, &mut sc.a);
            let wk = &weight[(q % s.c) * taps..][..taps];
            depthwise_plane(s, &sc.a, wk, &mut sc.b, out);
        });
    out
}

/// Depthwise convolution backward: input and weight gradients.
pub(crate) fn depthwise_backward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    need_dx: bool,
    need_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let (img, out, taps, planes) = (h * w, ho * wo, s.taps(), s.n * s.c);
    let mut dx = vec![0.0f32; if need_dx { planes * img } else { 0 }];
    // Per-plane weight-gradient contributions, summed per channel in image order below.
    let mut part = vec![0.0f32; if need_dw { planes * taps } else { 0 }];
    let plane = |sc: &mut Scratch, q: usize, dx: Option<&mut [f32]>, dw: Option<&mut [f32]>| {
        // Pooling passes no input: its backward pass neither masks nor needs weight gradients.
        let xq = if x.is_empty() {
            &[][..]
        } else {
            &x[q * img..(q + 1) * img]
        };
        let xp = dw.is_some().then(|| {
            pad_plane(s, xq, 0.0, &mut sc.a);
            &sc.a[..]
        });
        let wk = &weight[(q % s.c) * taps..][..taps];
        let dyq = &dy[q * out..(q + 1) * out];
        depthwise_back_plane(s, xq, xp, dyq, wk, &mut sc.b, &mut sc.c, dx, dw);
    };
    match (need_dx, need_dw) {
        (true, true) => dx
            .par_chunks_mut(img)
            .zip(part.par_chunks_mut(taps))
            .enumerate()
            .for_each_init(Scratch::default, |sc, (q, (d, p))| {
                plane(sc, q, Some(d), Some(p))
            }),
        (true, false) => dx
            .par_chunks_mut(img)
            .enumerate()
            .for_each_init(Scratch::default, |sc, (q, d)| plane(sc, q, Some(d), None)),
        (false, true) => part
            .par_chunks_mut(taps)
            .enumerate()
            .for_each_init(Scratch::default, |sc, (q, p)| plane(sc, q, None, Some(p))),
        (false, false) => {}
    }
    let dw = need_dw.then(|| {
        let mut dw = vec![0.0f64; s.c * taps];
        for (q, p) in part.chunks_exact(taps).enumerate() {
            let c = q % s.c;
            for (d, &v) in dw[c * taps..(c + 1) * taps].iter_mut().zip(p) {
                *d += v as f64;
            }
        }
        dw.into_iter().map(|v| v as f32).collect()
    });
    (need_dx.then_some(dx), dw)
}

mod batch_norm;
mod direct;
mod pool;
mod reduce;
#[cfg(test)]
mod tests;

pub(crate) use batch_norm::{Activation, batch_norm, batch_norm_backward};
pub(crate) use pool::{avg_pool, avg_pool_backward, max_pool, max_pool_backward};
pub(crate) use reduce::{ReduceShape, factorized_reduce, factorized_reduce_backward};
