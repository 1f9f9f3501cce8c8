//! CPU kernels on contiguous `f32` slices in NCHW order: the forward and backward passes of
//! convolutions and batch norm that [`crate::fast`] runs on the `ndarray` backend.
//!
//! - Dense convolutions: im2col of one image into a scratch matrix, then one matrix product
//!   with the weight (the `gemm` crate, AVX-512/AVX2/FMA kernels chosen at run time); a 1×1
//!   convolution with stride 1 multiplies the image itself. The backward pass recomputes the
//!   im2col matrix (no copy of it is kept between the passes) for the weight gradient and
//!   scatters `Wᵀ·dY` back (col2im) for the input gradient.
//! - Depthwise convolutions: per channel plane, one multiply-add of a shifted row per tap.
//! - Batch norm (training): per-channel statistics in `f64`, normalization and the analytic
//!   backward pass in two sweeps each.
//!
//! Work is split over images (or channels) on rayon's pool in fixed chunks, and partial sums
//! are added in chunk order, so results do not depend on the number of threads.

use rayon::prelude::*;

/// Images per chunk of work: partial weight gradients are summed per chunk, in order.
const CHUNK: usize = 4;

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

    /// The input value as the convolution sees it.
    #[inline(always)]
    fn act(&self, v: f32) -> f32 {
        if self.relu { v.max(0.0) } else { v }
    }

    /// Input position of output coordinate `out` and tap `tap` along `axis`, if inside.
    #[inline]
    fn input_at(&self, axis: usize, out: usize, tap: usize) -> Option<usize> {
        let i = (out * self.stride[axis] + tap * self.dil[axis]) as isize - self.pad[axis] as isize;
        (i >= 0 && (i as usize) < self.hw[axis]).then_some(i as usize)
    }

    /// The output range `[lo, hi)` along the width whose input column for tap `kx` is
    /// inside, for stride 1, and the offset `input = output + off`.
    #[inline]
    fn row_span(&self, kx: usize) -> (usize, usize, isize) {
        let wo = self.out_hw()[1];
        let off = (kx * self.dil[1]) as isize - self.pad[1] as isize;
        let lo = (-off).max(0) as usize;
        let hi = ((self.hw[1] as isize - off).max(0) as usize).min(wo);
        (lo.min(hi), hi, off)
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

/// The im2col matrix `[c·kh·kw, ho·wo]` of one image `[c, h, w]`.
fn im2col(s: &ConvShape, x: &[f32], cols: &mut [f32]) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let p = ho * wo;
    for c in 0..s.c {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for ky in 0..s.k[0] {
            for kx in 0..s.k[1] {
                let r = (c * s.k[0] + ky) * s.k[1] + kx;
                let dst = &mut cols[r * p..(r + 1) * p];
                let (lo, hi, off) = s.row_span(kx);
                for oy in 0..ho {
                    let d = &mut dst[oy * wo..(oy + 1) * wo];
                    let Some(iy) = s.input_at(0, oy, ky) else {
                        d.fill(0.0);
                        continue;
                    };
                    let src = &plane[iy * w..(iy + 1) * w];
                    if s.stride[1] == 1 {
                        d[..lo].fill(0.0);
                        d[hi..].fill(0.0);
                        let a = (lo as isize + off) as usize;
                        if s.relu {
                            for (dv, &v) in d[lo..hi].iter_mut().zip(&src[a..a + (hi - lo)]) {
                                *dv = v.max(0.0);
                            }
                        } else {
                            d[lo..hi].copy_from_slice(&src[a..a + (hi - lo)]);
                        }
                    } else {
                        for (ox, v) in d.iter_mut().enumerate() {
                            *v = s.input_at(1, ox, kx).map_or(0.0, |ix| s.act(src[ix]));
                        }
                    }
                }
            }
        }
    }
}

/// Adds the im2col-shaped `cols` back into the image gradient `dx` `[c, h, w]` (col2im).
fn col2im(s: &ConvShape, cols: &[f32], dx: &mut [f32]) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let p = ho * wo;
    for c in 0..s.c {
        let plane = &mut dx[c * h * w..(c + 1) * h * w];
        for ky in 0..s.k[0] {
            for kx in 0..s.k[1] {
                let r = (c * s.k[0] + ky) * s.k[1] + kx;
                let src = &cols[r * p..(r + 1) * p];
                let (lo, hi, off) = s.row_span(kx);
                for oy in 0..ho {
                    let Some(iy) = s.input_at(0, oy, ky) else {
                        continue;
                    };
                    let g = &src[oy * wo..(oy + 1) * wo];
                    let d = &mut plane[iy * w..(iy + 1) * w];
                    if s.stride[1] == 1 {
                        let a = (lo as isize + off) as usize;
                        for (dv, gv) in d[a..a + (hi - lo)].iter_mut().zip(&g[lo..hi]) {
                            *dv += gv;
                        }
                    } else {
                        for (ox, gv) in g.iter().enumerate() {
                            if let Some(ix) = s.input_at(1, ox, kx) {
                                d[ix] += gv;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Zeroes the gradient where the (pre-ReLU) input is not positive.
fn relu_mask(x: &[f32], dx: &mut [f32]) {
    for (d, &v) in dx.iter_mut().zip(x) {
        if v <= 0.0 {
            *d = 0.0;
        }
    }
}

/// Dense convolution forward: `x` `[n, c, h, w]`, `weight` `[o, c, kh, kw]` → `[n, o, ho, wo]`.
pub(crate) fn conv2d(s: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let [ho, wo] = s.out_hw();
    let (p, ck, img) = (ho * wo, s.c * s.taps(), s.c * s.hw[0] * s.hw[1]);
    let mut out = vec![0.0f32; s.n * s.o * p];
    out.par_chunks_mut(CHUNK * s.o * p)
        .zip(x.par_chunks(CHUNK * img))
        .for_each(|(out, x)| {
            let mut cols = if s.pointwise() {
                Vec::new()
            } else {
                vec![0.0f32; ck * p]
            };
            for (out, x) in out.chunks_mut(s.o * p).zip(x.chunks(img)) {
                let src = if s.pointwise() {
                    x
                } else {
                    im2col(s, x, &mut cols);
                    &cols
                };
                matmul(
                    [s.o, p, ck],
                    out,
                    [p, 1],
                    false,
                    weight,
                    [ck, 1],
                    src,
                    [p, 1],
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
    let mut partial = vec![0.0f32; if need_dw { chunks * s.o * ck } else { 0 }];
    let work = |(((dx, dw), x), dy): (((&mut [f32], &mut [f32]), &[f32]), &[f32])| {
        let scratch = if s.pointwise() { 0 } else { ck * p };
        let mut cols = vec![0.0f32; if need_dw { scratch } else { 0 }];
        let mut dcols = vec![0.0f32; if need_dx { scratch } else { 0 }];
        for (i, (x, dy)) in x.chunks(img).zip(dy.chunks(s.o * p)).enumerate() {
            if need_dw {
                let src = if s.pointwise() {
                    x
                } else {
                    im2col(s, x, &mut cols);
                    &cols
                };
                // dW (o×ck) += dY (o×p) · colsᵀ (p×ck)
                matmul([s.o, ck, p], dw, [ck, 1], i > 0, dy, [p, 1], src, [1, p]);
            }
            if need_dx {
                let dxi = &mut dx[i * img..(i + 1) * img];
                // dcols (ck×p) = Wᵀ (ck×o) · dY (o×p), then col2im; a pointwise convolution
                // writes the image gradient directly.
                let wt = |dst: &mut [f32]| {
                    matmul(
                        [ck, p, s.o],
                        dst,
                        [p, 1],
                        false,
                        weight,
                        [1, ck],
                        dy,
                        [p, 1],
                    )
                };
                if s.pointwise() {
                    wt(dxi);
                } else {
                    wt(&mut dcols);
                    col2im(s, &dcols, dxi);
                }
                if s.relu {
                    relu_mask(x, dxi);
                }
            }
        }
    };
    let dx_chunks: Vec<&mut [f32]> = if need_dx {
        dx.chunks_mut(CHUNK * img).collect()
    } else {
        (0..chunks).map(|_| <&mut [f32]>::default()).collect()
    };
    let dw_chunks: Vec<&mut [f32]> = if need_dw {
        partial.chunks_mut(s.o * ck).collect()
    } else {
        (0..chunks).map(|_| <&mut [f32]>::default()).collect()
    };
    dx_chunks
        .into_par_iter()
        .zip(dw_chunks)
        .zip(x.par_chunks(CHUNK * img))
        .zip(dy.par_chunks(CHUNK * s.o * p))
        .for_each(work);
    let dw = need_dw.then(|| {
        let mut dw = vec![0.0f32; s.o * ck];
        for part in partial.chunks(s.o * ck) {
            for (a, b) in dw.iter_mut().zip(part) {
                *a += b;
            }
        }
        dw
    });
    (need_dx.then_some(dx), dw)
}

/// Adds `scale · src[i + off]` to `dst[i]` over the valid span of one row (stride 1 along the
/// width) or gathers strided inputs (other strides).
#[inline]
fn tap_row(s: &ConvShape, kx: usize, scale: f32, src: &[f32], dst: &mut [f32]) {
    if s.stride[1] == 1 {
        let (lo, hi, off) = s.row_span(kx);
        let a = (lo as isize + off) as usize;
        let src = &src[a..a + (hi - lo)];
        if s.relu {
            for (d, v) in dst[lo..hi].iter_mut().zip(src) {
                *d += scale * v.max(0.0);
            }
        } else {
            for (d, v) in dst[lo..hi].iter_mut().zip(src) {
                *d += scale * v;
            }
        }
    } else {
        for (ox, d) in dst.iter_mut().enumerate() {
            if let Some(ix) = s.input_at(1, ox, kx) {
                *d += scale * s.act(src[ix]);
            }
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
        .for_each(|(q, (out, x))| {
            let wk = &weight[(q % s.c) * taps..][..taps];
            for ky in 0..s.k[0] {
                for oy in 0..ho {
                    let Some(iy) = s.input_at(0, oy, ky) else {
                        continue;
                    };
                    let src = &x[iy * w..(iy + 1) * w];
                    let dst = &mut out[oy * wo..(oy + 1) * wo];
                    for kx in 0..s.k[1] {
                        tap_row(s, kx, wk[ky * s.k[1] + kx], src, dst);
                    }
                }
            }
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
    let taps = s.taps();
    let dx = need_dx.then(|| {
        let mut dx = vec![0.0f32; s.n * s.c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(dy.par_chunks(ho * wo))
            .enumerate()
            .for_each(|(q, (dx, dy))| {
                let wk = &weight[(q % s.c) * taps..][..taps];
                for ky in 0..s.k[0] {
                    for oy in 0..ho {
                        let Some(iy) = s.input_at(0, oy, ky) else {
                            continue;
                        };
                        let g = &dy[oy * wo..(oy + 1) * wo];
                        let d = &mut dx[iy * w..(iy + 1) * w];
                        for kx in 0..s.k[1] {
                            let scale = wk[ky * s.k[1] + kx];
                            if s.stride[1] == 1 {
                                let (lo, hi, off) = s.row_span(kx);
                                let a = (lo as isize + off) as usize;
                                for (dv, gv) in d[a..a + (hi - lo)].iter_mut().zip(&g[lo..hi]) {
                                    *dv += scale * gv;
                                }
                            } else {
                                for (ox, gv) in g.iter().enumerate() {
                                    if let Some(ix) = s.input_at(1, ox, kx) {
                                        d[ix] += scale * gv;
                                    }
                                }
                            }
                        }
                    }
                }
                if s.relu {
                    relu_mask(&x[q * h * w..(q + 1) * h * w], dx);
                }
            });
        dx
    });
    let dw = need_dw.then(|| {
        let mut dw = vec![0.0f32; s.c * taps];
        dw.par_chunks_mut(taps).enumerate().for_each(|(c, dw)| {
            let mut acc = vec![0.0f64; taps];
            for i in 0..s.n {
                let q = i * s.c + c;
                let xp = &x[q * h * w..(q + 1) * h * w];
                let gp = &dy[q * ho * wo..(q + 1) * ho * wo];
                for ky in 0..s.k[0] {
                    for oy in 0..ho {
                        let Some(iy) = s.input_at(0, oy, ky) else {
                            continue;
                        };
                        let src = &xp[iy * w..(iy + 1) * w];
                        let g = &gp[oy * wo..(oy + 1) * wo];
                        for kx in 0..s.k[1] {
                            let mut sum = 0.0f32;
                            if s.stride[1] == 1 {
                                let (lo, hi, off) = s.row_span(kx);
                                let a = (lo as isize + off) as usize;
                                let src = &src[a..a + (hi - lo)];
                                if s.relu {
                                    for (gv, xv) in g[lo..hi].iter().zip(src) {
                                        sum += gv * xv.max(0.0);
                                    }
                                } else {
                                    for (gv, xv) in g[lo..hi].iter().zip(src) {
                                        sum += gv * xv;
                                    }
                                }
                            } else {
                                for (ox, gv) in g.iter().enumerate() {
                                    if let Some(ix) = s.input_at(1, ox, kx) {
                                        sum += gv * s.act(src[ix]);
                                    }
                                }
                            }
                            acc[ky * s.k[1] + kx] += sum as f64;
                        }
                    }
                }
            }
            for (d, a) in dw.iter_mut().zip(acc) {
                *d = a as f32;
            }
        });
        dw
    });
    (dx, dw)
}

/// Average pooling forward (the kernel, stride and padding of `s`; `o == c`): window sums
/// scaled by the window size, or by the number of positions inside the input when
/// `include_pad` is false.
pub(crate) fn avg_pool(s: &ConvShape, include_pad: bool, x: &[f32]) -> Vec<f32> {
    let ones = vec![1.0f32; s.c * s.taps()];
    let mut out = depthwise(s, x, &ones);
    let inv = pool_scale(s, include_pad);
    out.par_chunks_mut(inv.len())
        .for_each(|plane| plane.iter_mut().zip(&inv).for_each(|(v, k)| *v *= k));
    out
}

/// Average pooling backward: the input gradient.
pub(crate) fn avg_pool_backward(s: &ConvShape, include_pad: bool, dy: &[f32]) -> Vec<f32> {
    let inv = pool_scale(s, include_pad);
    let scaled: Vec<f32> = dy
        .par_chunks(inv.len())
        .flat_map_iter(|plane| plane.iter().zip(&inv).map(|(g, k)| g * k))
        .collect();
    let ones = vec![1.0f32; s.c * s.taps()];
    // Inputs are not needed for a linear operation: `x` only sizes the ReLU mask, off here.
    let (dx, _) = depthwise_backward(s, &[], &ones, &scaled, true, false);
    dx.unwrap_or_default()
}

/// `1 / window size` for every output position of one plane.
fn pool_scale(s: &ConvShape, include_pad: bool) -> Vec<f32> {
    let [ho, wo] = s.out_hw();
    let count = |axis: usize, o: usize| {
        (0..s.k[axis])
            .filter(|&t| s.input_at(axis, o, t).is_some())
            .count()
    };
    let mut inv = Vec::with_capacity(ho * wo);
    for oy in 0..ho {
        for ox in 0..wo {
            let n = if include_pad {
                s.taps()
            } else {
                count(0, oy) * count(1, ox)
            };
            inv.push(1.0 / n.max(1) as f32);
        }
    }
    inv
}

/// Max pooling forward: the maxima and, per output, the index of the (first) maximum inside
/// its input plane.
pub(crate) fn max_pool(s: &ConvShape, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let mut out = vec![f32::NEG_INFINITY; s.n * s.c * ho * wo];
    let mut idx = vec![0u32; s.n * s.c * ho * wo];
    out.par_chunks_mut(ho * wo)
        .zip(idx.par_chunks_mut(ho * wo))
        .zip(x.par_chunks(h * w))
        .for_each(|((out, idx), x)| {
            for oy in 0..ho {
                let out = &mut out[oy * wo..(oy + 1) * wo];
                let idx = &mut idx[oy * wo..(oy + 1) * wo];
                for ky in 0..s.k[0] {
                    let Some(iy) = s.input_at(0, oy, ky) else {
                        continue;
                    };
                    let src = &x[iy * w..(iy + 1) * w];
                    for kx in 0..s.k[1] {
                        if s.stride[1] == 1 {
                            let (lo, hi, off) = s.row_span(kx);
                            for ox in lo..hi {
                                let ix = (ox as isize + off) as usize;
                                let v = src[ix];
                                if v > out[ox] {
                                    out[ox] = v;
                                    idx[ox] = (iy * w + ix) as u32;
                                }
                            }
                        } else {
                            for ox in 0..wo {
                                if let Some(ix) = s.input_at(1, ox, kx) {
                                    let v = src[ix];
                                    if v > out[ox] {
                                        out[ox] = v;
                                        idx[ox] = (iy * w + ix) as u32;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    (out, idx)
}

/// Max pooling backward: each output gradient goes to its maximum's input position.
pub(crate) fn max_pool_backward(s: &ConvShape, idx: &[u32], dy: &[f32]) -> Vec<f32> {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let mut dx = vec![0.0f32; s.n * s.c * h * w];
    dx.par_chunks_mut(h * w)
        .zip(idx.par_chunks(ho * wo).zip(dy.par_chunks(ho * wo)))
        .for_each(|(dx, (idx, dy))| {
            for (&i, &g) in idx.iter().zip(dy) {
                dx[i as usize] += g;
            }
        });
    dx
}

/// Per-channel mean and `1 / sqrt(var + eps)` (biased variance) of `x` `[n, c, hw]`, and the
/// biased variance itself.
pub(crate) struct BnStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// Batch-norm training forward: the normalized, scaled and shifted `x` `[n, c, hw]` and the
/// batch statistics.
pub(crate) fn batch_norm(
    [n, c, hw]: [usize; 3],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, BnStats) {
    let m = (n * hw) as f64;
    let stats: Vec<(f32, f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let planes = || (0..n).map(|i| &x[(i * c + ch) * hw..(i * c + ch + 1) * hw]);
            let sum: f64 = planes()
                .map(|p| p.iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / m;
            let sq: f64 = planes()
                .map(|p| {
                    p.iter()
                        .map(|&v| {
                            let d = v as f64 - mean;
                            d * d
                        })
                        .sum::<f64>()
                })
                .sum();
            let var = sq / m;
            (mean as f32, var as f32, (1.0 / (var + eps).sqrt()) as f32)
        })
        .collect();
    let mut out = vec![0.0f32; n * c * hw];
    out.par_chunks_mut(hw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .for_each(|(q, (out, x))| {
            let ch = q % c;
            let (mean, _, inv) = stats[ch];
            let scale = gamma[ch] * inv;
            let shift = beta[ch] - mean * scale;
            for (o, v) in out.iter_mut().zip(x) {
                *o = v * scale + shift;
            }
        });
    let stats = BnStats {
        mean: stats.iter().map(|s| s.0).collect(),
        var: stats.iter().map(|s| s.1).collect(),
        inv_std: stats.iter().map(|s| s.2).collect(),
    };
    (out, stats)
}

/// Batch-norm training backward: gradients of the input, gamma and beta.
pub(crate) fn batch_norm_backward(
    [n, c, hw]: [usize; 3],
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = (n * hw) as f64;
    // Per channel: Σ dy and Σ dy · x̂.
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mu, inv) = (mean[ch], inv_std[ch]);
            let (mut sd, mut sdx) = (0.0f64, 0.0f64);
            for i in 0..n {
                let r = (i * c + ch) * hw..(i * c + ch + 1) * hw;
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for (&g, &v) in dy[r.clone()].iter().zip(&x[r]) {
                    a += g;
                    b += g * (v - mu);
                }
                sd += a as f64;
                sdx += b as f64 * inv as f64;
            }
            (sd, sdx)
        })
        .collect();
    let mut dx = vec![0.0f32; n * c * hw];
    dx.par_chunks_mut(hw)
        .zip(x.par_chunks(hw).zip(dy.par_chunks(hw)))
        .enumerate()
        .for_each(|(q, (dx, (x, dy)))| {
            let ch = q % c;
            let (sd, sdx) = sums[ch];
            let (mu, inv) = (mean[ch], inv_std[ch]);
            let k = gamma[ch] * inv;
            let a = (sd / m) as f32;
            let b = (sdx / m) as f32;
            for ((d, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
                let xhat = (v - mu) * inv;
                *d = k * (g - a - xhat * b);
            }
        });
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct-loop convolution, the definition.
    fn reference(s: &ConvShape, x: &[f32], weight: &[f32], groups: usize) -> Vec<f32> {
        let [h, w] = s.hw;
        let [ho, wo] = s.out_hw();
        let cg = s.c / groups;
        let og = s.o / groups;
        let mut out = vec![0.0; s.n * s.o * ho * wo];
        for i in 0..s.n {
            for o in 0..s.o {
                let g = o / og;
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = 0.0;
                        for cc in 0..cg {
                            let c = g * cg + cc;
                            for ky in 0..s.k[0] {
                                for kx in 0..s.k[1] {
                                    if let (Some(iy), Some(ix)) =
                                        (s.input_at(0, oy, ky), s.input_at(1, ox, kx))
                                    {
                                        acc += x[((i * s.c + c) * h + iy) * w + ix]
                                            * weight[((o * cg + cc) * s.k[0] + ky) * s.k[1] + kx];
                                    }
                                }
                            }
                        }
                        out[((i * s.o + o) * ho + oy) * wo + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn kernels_match_direct_loops() {
        for (groups_dw, k, stride, pad, dil) in [
            (false, [3, 3], [1, 1], [1, 1], [1, 1]),
            (false, [1, 1], [1, 1], [0, 0], [1, 1]),
            (false, [1, 1], [2, 2], [0, 0], [1, 1]),
            (false, [3, 5], [2, 1], [1, 2], [1, 1]),
            (true, [3, 3], [1, 1], [2, 2], [2, 2]),
            (true, [5, 5], [2, 2], [2, 2], [1, 1]),
        ] {
            for relu in [false, true] {
                let (c, o) = if groups_dw { (3, 3) } else { (3, 4) };
                let s = ConvShape {
                    n: 5,
                    c,
                    hw: [7, 6],
                    o,
                    k,
                    stride,
                    pad,
                    dil,
                    relu,
                };
                let x = data(s.n * c * 42, 1);
                let cw = if groups_dw { 1 } else { c };
                let wt = data(o * cw * k[0] * k[1], 2);
                let (ours, groups) = if groups_dw {
                    (depthwise(&s, &x, &wt), c)
                } else {
                    (conv2d(&s, &x, &wt), 1)
                };
                let xr: Vec<f32> = x.iter().map(|&v| s.act(v)).collect();
                let want = reference(&s, &xr, &wt, groups);
                let diff = ours
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(diff < 1e-4, "{s:?}: {diff}");
            }
        }
    }
}
