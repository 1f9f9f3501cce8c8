//! DARTS' factorized reduction as one operation: ReLU, then two 1×1 stride-2 convolutions,
//! one on the even pixels (`x[.., 2i, 2j]`) and one on the odd ones (`x[.., 2i+1, 2j+1]`,
//! zero past an odd edge), their outputs concatenated along the channels. The unfused
//! formulation pads, slices, convolves twice through im2col copies and concatenates, and its
//! backward pass undoes each of those on full-size tensors.

use rayon::prelude::*;

use super::{CHUNK, Scratch, chunks_or_empty, matmul, sum_parts, zeros};

/// Shape of a factorized reduction: `[n, c, h, w]` in, `[n, oa + ob, ⌈h/2⌉, ⌈w/2⌉]` out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReduceShape {
    pub n: usize,
    pub c: usize,
    pub hw: [usize; 2],
    /// Output channels of the even and of the odd path.
    pub o: [usize; 2],
}

impl ReduceShape {
    /// Output height and width.
    pub fn out_hw(&self) -> [usize; 2] {
        [self.hw[0].div_ceil(2), self.hw[1].div_ceil(2)]
    }
}

/// The ReLU'd pixels of one image that path `path` (0 even, 1 odd) reads, `[c, ho · wo]`.
fn gather(s: &ReduceShape, x: &[f32], path: usize, out: &mut Vec<f32>) {
    let [h, w] = s.hw;
    let [ho, wo] = s.out_hw();
    out.clear();
    out.resize(s.c * ho * wo, 0.0);
    for (plane, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(ho * wo)) {
        for (oy, row) in dst.chunks_exact_mut(wo).enumerate() {
            let iy = 2 * oy + path;
            if iy >= h {
                continue;
            }
            let src = &plane[iy * w..(iy + 1) * w];
            for (ox, d) in row.iter_mut().enumerate() {
                if let Some(&v) = src.get(2 * ox + path) {
                    *d = v.max(0.0);
                }
            }
        }
    }
}

/// Forward pass: `x` `[n, c, h, w]`, the two weights `[oa, c]` and `[ob, c]`.
pub(crate) fn factorized_reduce(s: &ReduceShape, x: &[f32], w: [&[f32]; 2]) -> Vec<f32> {
    let [ho, wo] = s.out_hw();
    let (p, img) = (ho * wo, s.c * s.hw[0] * s.hw[1]);
    let o = s.o[0] + s.o[1];
    let mut out = vec![0.0f32; s.n * o * p];
    out.par_chunks_mut(o * p)
        .zip(x.par_chunks(img))
        .for_each_init(Scratch::default, |sc, (out, x)| {
            for path in 0..2 {
                gather(s, x, path, &mut sc.a);
                let dst = &mut out[path * s.o[0] * p..][..s.o[path] * p];
                // outᵀ (p×o) = xᵀ (p×c) · Wᵀ (c×o), as the convolutions compute it.
                matmul(
                    [p, s.o[path], s.c],
                    dst,
                    [1, p],
                    false,
                    &sc.a,
                    [1, p],
                    w[path],
                    [1, s.c],
                );
            }
        });
    out
}

/// Backward pass: the input gradient (masked by the ReLU) and the two weight gradients for
/// the output gradient `dy` `[n, oa + ob, ho, wo]`.
pub(crate) fn factorized_reduce_backward(
    s: &ReduceShape,
    x: &[f32],
    w: [&[f32]; 2],
    dy: &[f32],
    need_dx: bool,
    need_dw: bool,
) -> (Option<Vec<f32>>, Option<[Vec<f32>; 2]>) {
    let [h, wd] = s.hw;
    let [ho, wo] = s.out_hw();
    let (p, img) = (ho * wo, s.c * h * wd);
    let o = s.o[0] + s.o[1];
    let (wa, wb) = (s.o[0] * s.c, s.o[1] * s.c);
    let chunks = s.n.div_ceil(CHUNK);
    // Every pixel that neither path reads gets a zero gradient: written before it is read.
    let mut dx = zeros(if need_dx { s.n * img } else { 0 });
    let mut partial = zeros(if need_dw { chunks * (wa + wb) } else { 0 });
    type Chunk<'a> = (((&'a mut [f32], &'a mut [f32]), &'a [f32]), &'a [f32]);
    let work = |sc: &mut Scratch, (((dx, dw), x), dy): Chunk| {
        for (i, (x, dy)) in x.chunks(img).zip(dy.chunks(o * p)).enumerate() {
            for path in 0..2 {
                let g = &dy[path * s.o[0] * p..][..s.o[path] * p];
                if need_dw {
                    gather(s, x, path, &mut sc.a);
                    let dw = if path == 0 {
                        &mut dw[..wa]
                    } else {
                        &mut dw[wa..]
                    };
                    // dWᵀ (c×o) += x (c×p) · dYᵀ (p×o).
                    matmul(
                        [s.c, s.o[path], p],
                        dw,
                        [1, s.c],
                        i > 0,
                        &sc.a,
                        [p, 1],
                        g,
                        [1, p],
                    );
                }
                if need_dx {
                    // dX at the path's pixels (c×p) = Wᵀ (c×o) · dY (o×p), then scattered.
                    sc.b.resize(s.c * p, 0.0);
                    matmul(
                        [s.c, p, s.o[path]],
                        &mut sc.b,
                        [p, 1],
                        false,
                        w[path],
                        [1, s.c],
                        g,
                        [p, 1],
                    );
                    let dxi = &mut dx[i * img..(i + 1) * img];
                    for ((dplane, xplane), gplane) in dxi
                        .chunks_exact_mut(h * wd)
                        .zip(x.chunks_exact(h * wd))
                        .zip(sc.b.chunks_exact(p))
                    {
                        for (oy, grow) in gplane.chunks_exact(wo).enumerate() {
                            let iy = 2 * oy + path;
                            if iy >= h {
                                continue;
                            }
                            for (ox, &gv) in grow.iter().enumerate() {
                                let ix = 2 * ox + path;
                                if ix < wd && xplane[iy * wd + ix] > 0.0 {
                                    dplane[iy * wd + ix] = gv;
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    chunks_or_empty(&mut dx, need_dx, CHUNK * img, chunks)
        .into_par_iter()
        .zip(chunks_or_empty(&mut partial, need_dw, wa + wb, chunks))
        .zip(x.par_chunks(CHUNK * img))
        .zip(dy.par_chunks(CHUNK * o * p))
        .for_each_init(Scratch::default, work);
    let dw = need_dw.then(|| {
        let mut sum = sum_parts(&partial, wa + wb);
        let b = sum.split_off(wa);
        [sum, b]
    });
    (need_dx.then_some(dx), dw)
}
