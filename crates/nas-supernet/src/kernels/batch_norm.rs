//! Batch norm (training) on the CPU.

use rayon::prelude::*;

use super::*;

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
            // Per plane in f32 lanes, across planes in f64.
            let sum: f64 = planes().map(|p| reduce2(p, p, |v, _| v) as f64).sum();
            let mean = sum / m;
            let mu = mean as f32;
            let sq: f64 = planes()
                .map(|p| reduce2(p, p, |v, _| (v - mu) * (v - mu)) as f64)
                .sum();
            // The mean's rounding to f32 shifts the centred sum by m·(mean - mu)².
            let var = (sq / m - (mean - mu as f64).powi(2)).max(0.0);
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
                let (g, v) = (&dy[r.clone()], &x[r]);
                sd += reduce2(g, g, |g, _| g) as f64;
                sdx += reduce2(g, v, |g, v| g * (v - mu)) as f64 * inv as f64;
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
