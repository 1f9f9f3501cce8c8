//! Average and max pooling on the CPU.

use rayon::prelude::*;

use super::*;

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
    // A linear operation without ReLU: the input is not read.
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

/// Max pooling of one plane from its (−∞-)padded input `xp`: the maxima and, per output,
/// the index in the unpadded plane of the first maximum of its window (taps in row-major
/// order, ties keep the earlier). Branch-free selects, so that it vectorizes.
#[inline(never)]
fn max_pool_plane(
    s: &ConvShape,
    xp: &[f32],
    acc: &mut Vec<f32>,
    arg: &mut Vec<f32>,
    out: &mut [f32],
    idx: &mut [u32],
) {
    let [ho, wo] = s.out_hw();
    let [_, wp, _] = s.padded();
    // Candidate indices travel as f32 (exact below 2²⁴) so that the select vectorizes with
    // the values; they are positions in the padded plane.
    let l = if s.stride == [1, 1] { ho * wp } else { wo };
    let run = |acc: &mut [f32], arg: &mut [f32], base: usize, step: usize| {
        for (j, (a, i)) in acc.iter_mut().zip(arg.iter_mut()).enumerate() {
            let v = xp[base + j * step];
            // NaN propagates, as in PyTorch.
            let gt = v > *a || v.is_nan();
            *a = if gt { v } else { *a };
            *i = if gt { (base + j * step) as f32 } else { *i };
        }
    };
    let [h, w] = s.hw;
    let emit = |acc: &[f32], arg: &[f32], out: &mut [f32], idx: &mut [u32]| {
        for ((o, id), (&a, &p)) in out.iter_mut().zip(idx.iter_mut()).zip(acc.iter().zip(arg)) {
            let p = p as usize;
            // Clamped: a window of −∞ only (never in a padding smaller than the kernel, but
            // possible in the data) must still name a position inside the plane.
            let iy = (p / wp).saturating_sub(s.pad[0]).min(h - 1);
            let ix = (p % wp).saturating_sub(s.pad[1]).min(w - 1);
            *o = a;
            *id = (iy * w + ix) as u32;
        }
    };
    acc.clear();
    acc.resize(l, f32::NEG_INFINITY);
    arg.clear();
    arg.resize(l, 0.0);
    if s.stride == [1, 1] {
        for ky in 0..s.k[0] {
            for kx in 0..s.k[1] {
                run(acc, arg, s.tap_offset(wp, ky, kx), 1);
            }
        }
        for ((o, id), (a, p)) in out
            .chunks_exact_mut(wo)
            .zip(idx.chunks_exact_mut(wo))
            .zip(acc.chunks_exact(wp).zip(arg.chunks_exact(wp)))
        {
            emit(&a[..wo], &p[..wo], o, id);
        }
    } else {
        for (oy, (o, id)) in out
            .chunks_exact_mut(wo)
            .zip(idx.chunks_exact_mut(wo))
            .enumerate()
        {
            acc.fill(f32::NEG_INFINITY);
            for ky in 0..s.k[0] {
                for kx in 0..s.k[1] {
                    run(
                        acc,
                        arg,
                        s.row_offset(wp, oy, ky) + kx * s.dil[1],
                        s.stride[1],
                    );
                }
            }
            emit(acc, arg, o, id);
        }
    }
}

/// Max pooling forward: the maxima and, per output, the index of the (first) maximum inside
/// its input plane.
pub(crate) fn max_pool(s: &ConvShape, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let mut out = vec![0.0f32; s.n * s.c * ho * wo];
    let mut idx = vec![0u32; s.n * s.c * ho * wo];
    out.par_chunks_mut(ho * wo)
        .zip(idx.par_chunks_mut(ho * wo))
        .zip(x.par_chunks(h * w))
        .for_each_init(Scratch::default, |sc, ((out, idx), x)| {
            pad_plane(s, x, f32::NEG_INFINITY, &mut sc.a);
            max_pool_plane(s, &sc.a, &mut sc.b, &mut sc.c, out, idx);
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
