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
            let xr: Vec<f32> = x
                .iter()
                .map(|&v| if relu { v.max(0.0) } else { v })
                .collect();
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

/// The weight gradient by direct loops, the definition: `Σ dy · relu(x)` over images and
/// output positions for every weight.
fn reference_weight_grad(s: &ConvShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let mut dw = vec![0.0f64; s.o * s.c * s.taps()];
    for i in 0..s.n {
        for o in 0..s.o {
            for c in 0..s.c {
                for ky in 0..s.k[0] {
                    for kx in 0..s.k[1] {
                        let mut acc = 0.0f64;
                        for oy in 0..ho {
                            for ox in 0..wo {
                                if let (Some(iy), Some(ix)) =
                                    (s.input_at(0, oy, ky), s.input_at(1, ox, kx))
                                {
                                    let v = x[((i * s.c + c) * h + iy) * w + ix];
                                    let v = if s.relu { v.max(0.0) } else { v };
                                    acc += (dy[((i * s.o + o) * ho + oy) * wo + ox] * v) as f64;
                                }
                            }
                        }
                        dw[((o * s.c + c) * s.k[0] + ky) * s.k[1] + kx] += acc;
                    }
                }
            }
        }
    }
    dw.into_iter().map(|v| v as f32).collect()
}

/// The input gradient by direct loops, the definition: every output gradient times its
/// weight, added at the input position it read (masked where the ReLU was flat).
fn reference_input_grad(s: &ConvShape, x: &[f32], weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    let mut dx = vec![0.0f32; s.n * s.c * h * w];
    for i in 0..s.n {
        for o in 0..s.o {
            for oy in 0..ho {
                for ox in 0..wo {
                    let g = dy[((i * s.o + o) * ho + oy) * wo + ox];
                    for c in 0..s.c {
                        for ky in 0..s.k[0] {
                            for kx in 0..s.k[1] {
                                if let (Some(iy), Some(ix)) =
                                    (s.input_at(0, oy, ky), s.input_at(1, ox, kx))
                                {
                                    dx[((i * s.c + c) * h + iy) * w + ix] +=
                                        g * weight[((o * s.c + c) * s.k[0] + ky) * s.k[1] + kx];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if s.relu {
        for (d, &v) in dx.iter_mut().zip(x) {
            if v <= 0.0 {
                *d = 0.0;
            }
        }
    }
    dx
}

/// The direct stride-1 kernels (`direct`: forward, weight gradient; and col2im's input
/// gradient) against the definition:
/// output channels not a multiple of their blocks (8 for the forward pass, 4 for the weight
/// gradient), kernels wider than the weight gradient's block of 3 columns, planes whose length
/// is not a multiple of the vector width, dilation, ReLU.
#[test]
fn direct_kernels_match_direct_loops() {
    for (c, o, hw, k, pad, dil) in [
        (8, 4, [22, 23], [3, 3], [1, 1], [1, 1]),
        (5, 7, [24, 21], [5, 5], [2, 2], [1, 1]),
        (8, 6, [23, 22], [3, 3], [2, 2], [2, 2]),
        (10, 3, [32, 16], [1, 7], [0, 3], [1, 1]),
        (16, 16, [32, 32], [3, 3], [1, 1], [1, 1]),
        (9, 17, [24, 23], [3, 3], [1, 1], [1, 1]),
    ] {
        for relu in [false, true] {
            let s = ConvShape {
                n: 6,
                c,
                hw,
                o,
                k,
                stride: [1, 1],
                pad,
                dil,
                relu,
            };
            assert!(direct::applies(&s), "{s:?} does not take the direct kernel");
            let [ho, wo] = s.out_hw();
            let x = data(s.n * c * hw[0] * hw[1], 1);
            let wt = data(o * c * s.taps(), 2);
            let dy = data(s.n * o * ho * wo, 3);
            let xr: Vec<f32> = x
                .iter()
                .map(|&v| if relu { v.max(0.0) } else { v })
                .collect();
            let want = reference(&s, &xr, &wt, 1);
            let diff = conv2d(&s, &x, &wt)
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-4, "forward {s:?}: {diff}");
            // The input gradient (col2im) of the same shapes.
            let (dx, _) = conv2d_backward(&s, &x, &wt, &dy, true, false);
            let want_dx = reference_input_grad(&s, &x, &wt, &dy);
            let diff = dx
                .expect("asked for")
                .iter()
                .zip(&want_dx)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-4, "input gradient {s:?}: {diff}");
            let (_, dw) = conv2d_backward(&s, &x, &wt, &dy, false, true);
            let want = reference_weight_grad(&s, &x, &dy);
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = dw
                .expect("asked for")
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-5 * scale, "{s:?}: {diff} (scale {scale})");
        }
    }
}

/// The fused factorized reduction against its definition (ReLU, the even and the odd pixels
/// through two 1×1 weights, concatenated), forward and backward, on even and odd sizes.
#[test]
fn factorized_reduction_matches_its_definition() {
    for (n, c, hw, o) in [
        (3, 4, [6, 8], [3, 5]),
        (2, 5, [7, 5], [4, 4]),
        (5, 3, [1, 2], [2, 1]),
    ] {
        let s = ReduceShape { n, c, hw, o };
        let [h, w] = hw;
        let [ho, wo] = s.out_hw();
        let ot = o[0] + o[1];
        let x = data(n * c * h * w, 1);
        let wa = data(o[0] * c, 2);
        let wb = data(o[1] * c, 3);
        let dy = data(n * ot * ho * wo, 4);
        // The pixel of image i, channel ch that output (oy, ox) of `path` reads, if any.
        let at = |i: usize, ch: usize, path: usize, oy: usize, ox: usize| {
            let (iy, ix) = (2 * oy + path, 2 * ox + path);
            (iy < h && ix < w).then(|| ((i * c + ch) * h + iy) * w + ix)
        };
        let weight = |path: usize, oc: usize, ch: usize| {
            if path == 0 {
                wa[oc * c + ch]
            } else {
                wb[oc * c + ch]
            }
        };
        let mut want = vec![0.0f32; n * ot * ho * wo];
        let mut want_dx = vec![0.0f32; x.len()];
        let mut want_dw = [vec![0.0f32; wa.len()], vec![0.0f32; wb.len()]];
        for i in 0..n {
            for path in 0..2 {
                for oc in 0..o[path] {
                    let row = path * o[0] + oc;
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let out = ((i * ot + row) * ho + oy) * wo + ox;
                            for ch in 0..c {
                                if let Some(j) = at(i, ch, path, oy, ox) {
                                    let v = x[j].max(0.0);
                                    want[out] += weight(path, oc, ch) * v;
                                    want_dw[path][oc * c + ch] += dy[out] * v;
                                    if x[j] > 0.0 {
                                        want_dx[j] += dy[out] * weight(path, oc, ch);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len(), "{what} {s:?}");
            let d = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(d < 1e-4, "{what} {s:?}: {d}");
        };
        close(&factorized_reduce(&s, &x, [&wa, &wb]), &want, "forward");
        let (dx, dw) = factorized_reduce_backward(&s, &x, [&wa, &wb], &dy, true, true);
        close(&dx.expect("asked for"), &want_dx, "input gradient");
        let [da, db] = dw.expect("asked for");
        close(&da, &want_dw[0], "even weights' gradient");
        close(&db, &want_dw[1], "odd weights' gradient");
    }
}
