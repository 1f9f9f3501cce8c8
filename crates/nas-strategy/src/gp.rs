//! Gaussian-process regression on precomputed dissimilarities (the model of
//! [`crate::BayesianOptimization`]).
//!
//! Covariance `s² · (exp(-θ d(a, b)) + λ δ_ab)`: `θ` (inverse length scale) and `λ` (noise to
//! signal ratio) are chosen on a grid by marginal likelihood, with the signal variance `s²`
//! profiled out (its maximum-likelihood value is `yᵀ A⁻¹ y / n` for `A = exp(-θ D) + λ I`).
//! Targets are expected standardized by the caller. Linear algebra is `faer`'s: a blocked
//! Cholesky factorization and triangular solves with many right-hand sides, always sequential
//! (`Par::Seq`) so results do not depend on the machine's thread count.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Mat, Par};
use serde::{Deserialize, Serialize};

/// Kernel hyperparameters chosen by [`fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hyper {
    /// Inverse length scale θ.
    pub theta: f64,
    /// Noise variance relative to the signal variance, λ.
    pub lambda: f64,
}

/// Pairwise dissimilarities of a growing set of points, lower triangle by rows.
#[derive(Debug, Default, Clone)]
pub(crate) struct Distances {
    rows: Vec<Vec<f64>>,
}

impl Distances {
    /// The number of points.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a point given its distances to every earlier point.
    pub fn push(&mut self, row: Vec<f64>) {
        debug_assert_eq!(row.len(), self.rows.len());
        self.rows.push(row);
    }

    /// Keeps the first `n` points.
    pub fn truncate(&mut self, n: usize) {
        self.rows.truncate(n);
    }

    /// The distance of points `i` and `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        match i.cmp(&j) {
            std::cmp::Ordering::Greater => self.rows[i][j],
            std::cmp::Ordering::Less => self.rows[j][i],
            std::cmp::Ordering::Equal => 0.0,
        }
    }
}

/// Jitter added to the diagonal, increased tenfold until the factorization succeeds.
const JITTER: [f64; 4] = [1e-10, 1e-8, 1e-6, 1e-4];

/// The correlations `exp(-θ d)` of the first `n` points (lower triangle, unit diagonal).
fn correlations(d: &Distances, n: usize, theta: f64) -> Mat<f64> {
    let mut c = Mat::<f64>::zeros(n, n);
    for i in 0..n {
        for j in 0..i {
            c[(i, j)] = (-theta * d.get(i, j)).exp();
        }
        c[(i, i)] = 1.0;
    }
    c
}

/// Cholesky-factors `a + (λ + jitter) I` in place (lower triangle), trying larger jitter on
/// failure; `None` if it never succeeds.
fn factor_with(a: &Mat<f64>, lambda: f64) -> Option<Mat<f64>> {
    let n = a.nrows();
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(
        n,
        Par::Seq,
        Default::default(),
    ));
    for jitter in JITTER {
        let mut l = a.clone();
        for i in 0..n {
            l[(i, i)] += lambda + jitter;
        }
        let ok = cholesky_in_place(
            l.as_mut(),
            LltRegularization::default(),
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        );
        if ok.is_ok() {
            return Some(l);
        }
    }
    None
}

/// The Cholesky factor `L` (lower) of `exp(-θ D) + λ I` over the first `n` points.
fn factor(d: &Distances, n: usize, h: Hyper) -> Option<Mat<f64>> {
    factor_with(&correlations(d, n, h.theta), h.lambda)
}

/// Solves `A x = y` given `L` (`A = L Lᵀ`).
fn solve(l: &Mat<f64>, y: &[f64]) -> Vec<f64> {
    let mut x = Mat::<f64>::from_fn(y.len(), 1, |i, _| y[i]);
    solve_lower_triangular_in_place(l.as_ref(), x.as_mut(), Par::Seq);
    solve_upper_triangular_in_place(l.as_ref().transpose(), x.as_mut(), Par::Seq);
    (0..y.len()).map(|i| x[(i, 0)]).collect()
}

/// The profiled log marginal likelihood of standardized targets `y`, with `α = A⁻¹ y` and
/// the signal variance `s²`.
fn profiled(l: &Mat<f64>, y: &[f64]) -> (f64, Vec<f64>, f64) {
    let n = y.len() as f64;
    let alpha = solve(l, y);
    let quad: f64 = y.iter().zip(&alpha).map(|(a, b)| a * b).sum();
    let s2 = (quad / n).max(1e-12);
    let log_det_half: f64 = (0..y.len()).map(|i| l[(i, i)].ln()).sum();
    let ll =
        -0.5 * n * s2.ln() - log_det_half - 0.5 * n * (1.0 + (2.0 * std::f64::consts::PI).ln());
    (ll, alpha, s2)
}

/// Chooses `(θ, λ)` on the grid by profiled marginal likelihood over the first `y.len()`
/// points. Returns `None` if no grid point gives a positive definite matrix.
pub(crate) fn fit(d: &Distances, y: &[f64], thetas: &[f64], lambdas: &[f64]) -> Option<Hyper> {
    let mut best: Option<(f64, Hyper)> = None;
    for &theta in thetas {
        let c = correlations(d, y.len(), theta);
        for &lambda in lambdas {
            let h = Hyper { theta, lambda };
            if let Some(l) = factor_with(&c, lambda) {
                let (ll, _, _) = profiled(&l, y);
                if ll.is_finite() && best.is_none_or(|(b, _)| ll > b) {
                    best = Some((ll, h));
                }
            }
        }
    }
    best.map(|(_, h)| h)
}

/// A fitted Gaussian process: the posterior given the observed points, and a factor extended
/// with pending points (kriging believer: a pending point is believed to take its posterior
/// mean, which leaves the mean everywhere unchanged and shrinks the variance around it).
#[derive(Debug)]
pub(crate) struct Posterior {
    h: Hyper,
    /// Factor over observed then pending points.
    l: Mat<f64>,
    /// `A⁻¹ y` over the observed points.
    alpha: Vec<f64>,
    s2: f64,
}

impl Posterior {
    /// Fits the posterior over the first `y.len()` points of `d` (observed) and the remaining
    /// `d.len() - y.len()` points (pending, variance only).
    pub fn new(d: &Distances, y: &[f64], h: Hyper) -> Option<Self> {
        let n = y.len();
        let l_obs = factor(d, n, h)?;
        let (_, alpha, s2) = profiled(&l_obs, y);
        let total = d.len();
        let l = if total == n {
            l_obs
        } else {
            let p = total - n;
            // B = C_po L⁻ᵀ, i.e. L Bᵀ = C_op.
            let mut bt = Mat::<f64>::from_fn(n, p, |i, j| (-h.theta * d.get(i, n + j)).exp());
            solve_lower_triangular_in_place(l_obs.as_ref(), bt.as_mut(), Par::Seq);
            let mut full = Mat::<f64>::zeros(total, total);
            for i in 0..n {
                for j in 0..=i {
                    full[(i, j)] = l_obs[(i, j)];
                }
            }
            for a in 0..p {
                for j in 0..n {
                    full[(n + a, j)] = bt[(j, a)];
                }
            }
            // Schur complement C_pp + λI - B Bᵀ, factored in place.
            let mut schur = Mat::<f64>::zeros(p, p);
            for a in 0..p {
                for b in 0..=a {
                    let mut v = if a == b {
                        1.0 + h.lambda
                    } else {
                        (-h.theta * d.get(n + a, n + b)).exp()
                    };
                    for j in 0..n {
                        v -= bt[(j, a)] * bt[(j, b)];
                    }
                    schur[(a, b)] = v;
                }
            }
            // The diagonal already holds 1 + λ: factor with no further noise.
            let schur = factor_with(&schur, 0.0)?;
            for a in 0..p {
                for b in 0..=a {
                    full[(n + a, n + b)] = schur[(a, b)];
                }
            }
            full
        };
        Some(Self { h, l, alpha, s2 })
    }

    /// The correlation `exp(-θ d)` for a dissimilarity `d`.
    pub fn correlation(&self, d: f64) -> f64 {
        (-self.h.theta * d).exp()
    }

    /// The posterior mean and latent (noise-free) variance, in standardized units, of `m`
    /// candidates given their correlations with every point: `corr` is `(observed + pending)
    /// × m`, column `j` for candidate `j`. Consumes `corr` (it is overwritten by the solve).
    pub fn predict(&self, mut corr: Mat<f64>) -> Vec<(f64, f64)> {
        let n = self.alpha.len();
        let m = corr.ncols();
        let means: Vec<f64> = (0..m)
            .map(|j| (0..n).map(|i| corr[(i, j)] * self.alpha[i]).sum())
            .collect();
        solve_lower_triangular_in_place(self.l.as_ref(), corr.as_mut(), Par::Seq);
        (0..m)
            .map(|j| {
                let q: f64 = (0..corr.nrows()).map(|i| corr[(i, j)] * corr[(i, j)]).sum();
                (means[j], self.s2 * (1.0 - q).max(1e-12))
            })
            .collect()
    }
}

/// Expected improvement (for maximization) over `best` of a Gaussian with mean `mean` and
/// variance `var`, with exploration margin `xi`.
pub(crate) fn expected_improvement(mean: f64, var: f64, best: f64, xi: f64) -> f64 {
    let sd = var.max(0.0).sqrt();
    let gain = mean - best - xi;
    if sd < 1e-12 {
        return gain.max(0.0);
    }
    let z = gain / sd;
    let cdf = normal_cdf(z);
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (gain * cdf + sd * pdf).max(0.0)
}

/// The standard normal distribution function.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// The standard normal quantile function, for `p` in (0, 1): Acklam's rational approximation
/// (relative error 1.2e-9) refined by one Halley step on [`normal_cdf`] (libm has no inverse
/// error function).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for p in [1e-10, 1e-4, 0.01, 0.1, 0.3, 0.5, 0.77, 0.975, 0.9999] {
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() < 1e-12 * p.max(1e-3), "{p} {x}");
        }
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
    }

    /// Points on a line, distance |x - x'| (an ℓ1 distance, so exp(-θ d) is the
    /// Ornstein-Uhlenbeck kernel).
    fn line(xs: &[f64]) -> Distances {
        let mut d = Distances::default();
        for (i, &x) in xs.iter().enumerate() {
            d.push(xs[..i].iter().map(|&x2| (x - x2).abs()).collect());
        }
        d
    }

    #[test]
    fn interpolates_and_is_uncertain_far_away() {
        let xs: Vec<f64> = (0..20).map(|i| i as f64 * 0.25).collect();
        let y: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
        let d = line(&xs);
        let h = fit(&d, &y, &[0.25, 1.0, 4.0], &[1e-6, 1e-2, 1.0]).unwrap();
        assert!(h.lambda < 1.0, "{h:?}");
        let post = Posterior::new(&d, &y, h).unwrap();
        let cands = [1.0, 2.6, 50.0];
        let corr = Mat::from_fn(xs.len(), cands.len(), |i, j| {
            post.correlation((xs[i] - cands[j]).abs())
        });
        let pred = post.predict(corr);
        assert!((pred[0].0 - 1.0f64.sin()).abs() < 0.05, "{pred:?}");
        assert!((pred[1].0 - 2.6f64.sin()).abs() < 0.1, "{pred:?}");
        assert!(pred[2].1 > 10.0 * pred[0].1, "{pred:?}");
        // Far from the data the mean returns to the prior mean 0.
        assert!(pred[2].0.abs() < 1e-3, "{pred:?}");
    }

    #[test]
    fn pending_points_shrink_variance_but_not_the_mean() {
        let xs = [0.0, 1.0, 2.0, 5.0];
        let y = [0.5, -0.2, 0.1, 1.0];
        let h = Hyper {
            theta: 1.0,
            lambda: 1e-4,
        };
        let cands = [3.5, 3.6];
        let run = |pending: &[f64]| {
            let all: Vec<f64> = xs.iter().chain(pending).copied().collect();
            let post = Posterior::new(&line(&all), &y, h).unwrap();
            let corr = Mat::from_fn(all.len(), cands.len(), |i, j| {
                post.correlation((all[i] - cands[j]).abs())
            });
            post.predict(corr)
        };
        let before = run(&[]);
        let after = run(&[3.5]);
        for (b, a) in before.iter().zip(&after) {
            assert!((b.0 - a.0).abs() < 1e-9);
            assert!(a.1 < b.1);
        }
        assert!(after[0].1 < 1e-3, "{after:?}");
    }

    #[test]
    fn expected_improvement_is_monotone_in_mean_and_variance() {
        let ei = |m, v| expected_improvement(m, v, 1.0, 0.0);
        assert!(ei(1.2, 0.1) > ei(1.0, 0.1));
        assert!(ei(1.0, 0.5) > ei(1.0, 0.1));
        assert_eq!(ei(0.5, 0.0), 0.0);
        assert!((ei(2.0, 0.0) - 1.0).abs() < 1e-12);
        // At the incumbent, EI = sd · φ(0).
        assert!((ei(1.0, 1.0) - 0.398_942_28).abs() < 1e-6);
    }
}
