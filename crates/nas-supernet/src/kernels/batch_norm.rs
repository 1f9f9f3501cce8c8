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

/// The activation fused after a batch norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// None: the batch norm alone.
    Identity,
    /// `max(z, 0)`.
    Relu,
    /// `min(max(z, 0), 6)`.
    Relu6,
}

impl Activation {
    #[inline(always)]
    fn apply(self, z: f32) -> f32 {
        match self {
            // Comparisons, not `f32::max`, which would turn a NaN into 0: NaN propagates, as
            // in Burn's and PyTorch's activations (a diverging run must be seen as one).
            Activation::Identity => z,
            Activation::Relu => {
                if z < 0.0 {
                    0.0
                } else {
                    z
                }
            }
            // `f32::clamp` passes a NaN through.
            Activation::Relu6 => z.clamp(0.0, 6.0),
        }
    }

    /// The gradient `g` at the pre-activation `z`: zero where the activation is flat
    /// (`z ≤ 0`, and `z ≥ 6` for ReLU6, as PyTorch's `relu` and `hardtanh` pass it).
    #[inline(always)]
    fn gate(self, z: f32, g: f32) -> f32 {
        match self {
            Activation::Identity => g,
            Activation::Relu => {
                if z > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            Activation::Relu6 => {
                if z > 0.0 && z < 6.0 {
                    g
                } else {
                    0.0
                }
            }
        }
    }
}

/// Batch-norm training forward: the normalized, scaled and shifted `x` `[n, c, hw]` passed
/// through `act`, and the batch statistics.
pub(crate) fn batch_norm(
    [n, c, hw]: [usize; 3],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    act: Activation,
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
            let mut sweep = |act: Activation| {
                for (o, v) in out.iter_mut().zip(x) {
                    *o = act.apply(v * scale + shift);
                }
            };
            // One monomorphic loop per activation, so that each vectorizes.
            match act {
                Activation::Identity => sweep(Activation::Identity),
                Activation::Relu => sweep(Activation::Relu),
                Activation::Relu6 => sweep(Activation::Relu6),
            }
        });
    let stats = BnStats {
        mean: stats.iter().map(|s| s.0).collect(),
        var: stats.iter().map(|s| s.1).collect(),
        inv_std: stats.iter().map(|s| s.2).collect(),
    };
    (out, stats)
}

/// Batch-norm training backward (of [`batch_norm`] with the same `act`): gradients of the
/// input, gamma and beta. The activation's gate is recomputed from `x`, the statistics,
/// gamma and beta.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm_backward(
    [n, c, hw]: [usize; 3],
    x: &[f32],
    [gamma, beta]: [&[f32]; 2],
    mean: &[f32],
    inv_std: &[f32],
    dy: &[f32],
    act: Activation,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    match act {
        Activation::Identity => backward([n, c, hw], x, [gamma, beta], mean, inv_std, dy, |_, g| g),
        Activation::Relu => backward([n, c, hw], x, [gamma, beta], mean, inv_std, dy, |z, g| {
            Activation::Relu.gate(z, g)
        }),
        Activation::Relu6 => backward([n, c, hw], x, [gamma, beta], mean, inv_std, dy, |z, g| {
            Activation::Relu6.gate(z, g)
        }),
    }
}

/// [`batch_norm_backward`] with the activation's gate `gate(z, g)` as a monomorphic function.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward(
    [n, c, hw]: [usize; 3],
    x: &[f32],
    [gamma, beta]: [&[f32]; 2],
    mean: &[f32],
    inv_std: &[f32],
    dy: &[f32],
    gate: impl Fn(f32, f32) -> f32 + Sync,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = (n * hw) as f64;
    // Per channel: Σ dz and Σ dz · x̂, where dz is dy through the activation's gate.
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mu, inv) = (mean[ch], inv_std[ch]);
            // As the forward pass computes them, so that the gate matches its output.
            let scale = gamma[ch] * inv;
            let shift = beta[ch] - mu * scale;
            let dz = |g: f32, v: f32| gate(v * scale + shift, g);
            let (mut sd, mut sdx) = (0.0f64, 0.0f64);
            for i in 0..n {
                let r = (i * c + ch) * hw..(i * c + ch + 1) * hw;
                let (g, v) = (&dy[r.clone()], &x[r]);
                sd += reduce2(g, v, dz) as f64;
                sdx += reduce2(g, v, |g, v| dz(g, v) * (v - mu)) as f64 * inv as f64;
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
            let scale = gamma[ch] * inv;
            let shift = beta[ch] - mu * scale;
            for ((d, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
                let xhat = (v - mu) * inv;
                *d = k * (gate(v * scale + shift, g) - a - xhat * b);
            }
        });
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (dx, dgamma, dbeta)
}
