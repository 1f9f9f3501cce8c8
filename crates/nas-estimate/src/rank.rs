//! Rank correlation between two scorings of the same architectures: how well a cheap
//! estimator (weight sharing, a proxy) orders architectures compared with an expensive one.

/// Kendall's τ-b between `x` and `y` (paired scores of the same items): the difference between
/// concordant and discordant pairs, normalized for ties,
/// `(C − D) / sqrt((n₀ − T_x)(n₀ − T_y))` with `n₀ = n(n − 1)/2` and `T_x`, `T_y` the pairs
/// tied in `x` and in `y`. O(n²), fine for the tens of architectures an evaluation trains.
///
/// `None` when the lengths differ, there are fewer than two items, a value is NaN, or one
/// side is constant (τ is undefined).
///
/// ```
/// use nas_estimate::rank::kendall_tau;
///
/// assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
/// assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
/// ```
pub fn kendall_tau(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n != y.len() || n < 2 || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i] - x[j];
            let dy = y[i] - y[j];
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {
                    tied_x += 1;
                    tied_y += 1;
                }
                (true, false) => tied_x += 1,
                (false, true) => tied_y += 1,
                (false, false) => {
                    if (dx > 0.0) == (dy > 0.0) {
                        concordant += 1;
                    } else {
                        discordant += 1;
                    }
                }
            }
        }
    }
    let pairs = (n * (n - 1) / 2) as u64;
    let denom = (((pairs - tied_x) as f64) * ((pairs - tied_y) as f64)).sqrt();
    if denom == 0.0 {
        return None;
    }
    Some((concordant as f64 - discordant as f64) / denom)
}

/// Spearman's ρ between `x` and `y`: Pearson's correlation of their ranks (ties get the mean
/// of the ranks they span).
///
/// `None` when the lengths differ, there are fewer than two items, a value is NaN, or one
/// side is constant.
///
/// ```
/// use nas_estimate::rank::spearman_rho;
///
/// assert_eq!(spearman_rho(&[1.0, 2.0, 3.0], &[1.0, 4.0, 9.0]), Some(1.0));
/// assert_eq!(spearman_rho(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
/// ```
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n != y.len() || n < 2 || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mean) * (b - mean);
        sxx += (a - mean) * (a - mean);
        syy += (b - mean) * (b - mean);
    }
    let denom = (sxx * syy).sqrt();
    (denom > 0.0).then(|| sxy / denom)
}

/// 1-based ranks of `v` in increasing order, ties at the mean of their ranks.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Without ties: τ = (C − D) / (n(n−1)/2). Ranks (1,2,3,4,5) vs (3,4,1,2,5):
        // discordant pairs (1,3), (1,4), (2,3), (2,4) → C = 6, D = 4, τ = 0.2.
        let t = kendall_tau(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 1.0, 2.0, 5.0]).unwrap();
        assert!((t - 0.2).abs() < 1e-12, "{t}");
        // With ties (scipy.stats.kendalltau([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9128709291752769,
        // τ-b): C = 5, D = 0, one tie in x: 5 / sqrt(5 · 6).
        let t = kendall_tau(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((t - 5.0 / 30f64.sqrt()).abs() < 1e-12, "{t}");
        assert!((t - 0.912_870_929_175_276_9).abs() < 1e-12);
        // Invariant to monotone transformations.
        let a = [0.3, 0.1, 0.9, 0.5];
        let b: Vec<f64> = a.iter().map(|v: &f64| v.exp() * 10.0).collect();
        assert_eq!(kendall_tau(&a, &b), Some(1.0));
    }

    #[test]
    fn undefined_cases_are_none() {
        assert_eq!(kendall_tau(&[1.0], &[2.0]), None);
        assert_eq!(kendall_tau(&[1.0, 2.0], &[2.0]), None);
        assert_eq!(kendall_tau(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(kendall_tau(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    }

    #[test]
    fn spearman_with_ties() {
        // Ranks of x: 1, 2.5, 2.5, 4; of y: 1, 2, 3, 4. Pearson of the ranks: 0.9486833.
        let rho = spearman_rho(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((rho - 0.948_683_298).abs() < 1e-6, "{rho}");
        assert_eq!(spearman_rho(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(spearman_rho(&[1.0], &[1.0]), None);
        assert_eq!(spearman_rho(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    }
}
