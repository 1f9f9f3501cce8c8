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
/// order, ties keep the earlier). Each tap is one branch-free sweep that keeps the maximum
/// and the number of the tap that gave it (as `f32`, so that the select vectorizes with the
/// values); positions are computed from the tap numbers once, per output row.
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
    let [h, w] = s.hw;
    // One sweep of tap `tap` over `src` (every `step`-th element).
    #[inline(always)]
    fn run(acc: &mut [f32], arg: &mut [f32], src: &[f32], step: usize, tap: f32) {
        // NaN propagates, as in PyTorch. Selects of values, with a non-short-circuit `|`.
        #[inline(always)]
        fn pick(a: &mut f32, i: &mut f32, v: f32, tap: f32) {
            let gt = (v > *a) | v.is_nan();
            *a = if gt { v } else { *a };
            *i = if gt { tap } else { *i };
        }
        let n = acc.len();
        if step == 1 {
            // Blocks of LANES in local arrays, so that the selects become vector blends.
            let src = &src[..n];
            let mut blocks = acc
                .chunks_exact_mut(LANES)
                .zip(arg.chunks_exact_mut(LANES))
                .zip(src.chunks_exact(LANES));
            for ((a, i), v) in &mut blocks {
                let mut la: [f32; LANES] = a.try_into().expect("a block of LANES");
                let mut li: [f32; LANES] = i.try_into().expect("a block of LANES");
                let lv: [f32; LANES] = v.try_into().expect("a block of LANES");
                for k in 0..LANES {
                    pick(&mut la[k], &mut li[k], lv[k], tap);
                }
                a.copy_from_slice(&la);
                i.copy_from_slice(&li);
            }
            let done = n - n % LANES;
            for ((a, i), &v) in acc[done..]
                .iter_mut()
                .zip(&mut arg[done..])
                .zip(&src[done..])
            {
                pick(a, i, v, tap);
            }
        } else {
            for ((a, i), &v) in acc
                .iter_mut()
                .zip(arg.iter_mut())
                .zip(src.iter().step_by(step))
            {
                pick(a, i, v, tap);
            }
        }
    }
    // Row and column offsets of each tap inside the window.
    let taps: Vec<[usize; 2]> = (0..s.k[0])
        .flat_map(|ky| (0..s.k[1]).map(move |kx| [ky * s.dil[0], kx * s.dil[1]]))
        .collect();
    // Output row `oy` from the row's maxima and tap numbers. A window of −∞ only (never in a
    // padding smaller than the kernel, but possible in the data) keeps tap 0, clamped so that
    // it still names a position inside the plane.
    let emit = |oy: usize, acc: &[f32], arg: &[f32], out: &mut [f32], idx: &mut [u32]| {
        let top = (oy * s.stride[0]) as isize - s.pad[0] as isize;
        for (ox, ((o, id), (&a, &t))) in out
            .iter_mut()
            .zip(idx.iter_mut())
            .zip(acc.iter().zip(arg))
            .enumerate()
        {
            let [dy, dx] = taps[t as usize];
            let left = (ox * s.stride[1]) as isize - s.pad[1] as isize;
            let iy = (top + dy as isize).clamp(0, h as isize - 1) as usize;
            let ix = (left + dx as isize).clamp(0, w as isize - 1) as usize;
            *o = a;
            *id = (iy * w + ix) as u32;
        }
    };
    let l = if s.stride == [1, 1] { ho * wp } else { wo };
    acc.clear();
    acc.resize(l, f32::NEG_INFINITY);
    arg.clear();
    arg.resize(l, 0.0);
    if s.stride == [1, 1] {
        for (t, &[dy, dx]) in taps.iter().enumerate() {
            run(acc, arg, &xp[dy * wp + dx..], 1, t as f32);
        }
        for (oy, ((o, id), (a, p))) in out
            .chunks_exact_mut(wo)
            .zip(idx.chunks_exact_mut(wo))
            .zip(acc.chunks_exact(wp).zip(arg.chunks_exact(wp)))
            .enumerate()
        {
            emit(oy, &a[..wo], &p[..wo], o, id);
        }
    } else {
        for (oy, (o, id)) in out
            .chunks_exact_mut(wo)
            .zip(idx.chunks_exact_mut(wo))
            .enumerate()
        {
            acc.fill(f32::NEG_INFINITY);
            arg.fill(0.0);
            for (t, &[dy, dx]) in taps.iter().enumerate() {
                let base = (oy * s.stride[0] + dy) * wp + dx;
                run(acc, arg, &xp[base..], s.stride[1], t as f32);
            }
            emit(oy, acc, arg, o, id);
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
    // Accumulated into (`+=`): pages written before they are read.
    let mut dx = zeros(s.n * s.c * h * w);
    dx.par_chunks_mut(h * w)
        .zip(idx.par_chunks(ho * wo).zip(dy.par_chunks(ho * wo)))
        .for_each(|(dx, (idx, dy))| {
            for (&i, &g) in idx.iter().zip(dy) {
                dx[i as usize] += g;
            }
        });
    dx
}
