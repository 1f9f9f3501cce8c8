//! The numbers of `docs/benchmarks.md` for Bayesian optimization on the NAS-Bench-201 table
//! (ignored by default: minutes, and it needs the table). Run with
//!
//! ```text
//! SEEDS=100 QUERIES=200 cargo test --release -p nas-strategy --test nb201_benchmark -- --ignored --nocapture
//! ```

mod common;

use std::time::Instant;

use common::nb201_table;
use nas_estimate::Estimator;
use nas_estimate::tabular::Nb201Dataset;
use nas_space::nb201::Nb201Space;
use nas_strategy::search;
use nas_strategy::{
    BayesianOptimization, BayesianOptimizationConfig, Hamming, Outcome, RandomSearch,
    RegularizedEvolution, RegularizedEvolutionConfig, Strategy, TargetTransform, WeisfeilerLehman,
};

type Make = Box<dyn Fn(u64) -> Box<dyn Strategy<Nb201Space>>>;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

fn bo(targets: TargetTransform, hamming: bool, seed: u64) -> Box<dyn Strategy<Nb201Space>> {
    let config = BayesianOptimizationConfig {
        targets,
        ..Default::default()
    };
    if hamming {
        Box::new(BayesianOptimization::<Nb201Space, Hamming>::new(config, Hamming, seed).unwrap())
    } else {
        Box::new(
            BayesianOptimization::<Nb201Space>::new(config, WeisfeilerLehman::default(), seed)
                .unwrap(),
        )
    }
}

#[test]
#[ignore = "benchmark: minutes, needs the NAS-Bench-201 table"]
fn best_accuracy_by_queries() {
    let Some(table) = nb201_table() else { return };
    let seeds = env("SEEDS", 20) as u64;
    let queries = env("QUERIES", 200);
    let space = Nb201Space::default();
    let strategies: Vec<(&str, Make)> = vec![
        (
            "random search",
            Box::new(|s| Box::new(RandomSearch::<Nb201Space>::new(s))),
        ),
        (
            "regularized evolution",
            Box::new(|s| {
                Box::new(
                    RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), s)
                        .unwrap(),
                )
            }),
        ),
        (
            "GP-BO, WL, copula",
            Box::new(|s| bo(TargetTransform::Copula, false, s)),
        ),
        (
            "GP-BO, Hamming, copula",
            Box::new(|s| bo(TargetTransform::Copula, true, s)),
        ),
        (
            "GP-BO, WL, standardized",
            Box::new(|s| bo(TargetTransform::Standardize, false, s)),
        ),
        (
            "GP-BO, Hamming, standardized",
            Box::new(|s| bo(TargetTransform::Standardize, true, s)),
        ),
    ];
    println!(
        "{seeds} seeds x {queries} queries, CIFAR-10 test accuracy (mean ± std of the best so far)"
    );
    for (name, make) in &strategies {
        let start = Instant::now();
        let curves: Vec<Vec<f64>> = (0..seeds)
            .map(|seed| {
                let mut s = make(seed);
                let mut oracle = table.estimator(Nb201Dataset::Cifar10);
                let r = search::run(&space, s.as_mut(), &mut oracle, queries, |_| {}).unwrap();
                r.best_so_far()
            })
            .collect();
        print!("{name:<30}");
        for q in [25, 50, 100, 200].into_iter().filter(|&q| q <= queries) {
            let v: Vec<f64> = curves.iter().map(|c| c[q - 1]).collect();
            let (m, s) = mean_std(&v);
            let hits = v.iter().filter(|&&x| x >= 94.33).count();
            print!(" | @{q}: {m:.2} ± {s:.2} ({hits} ≥ 94.33)");
        }
        println!(" | {:.1} s", start.elapsed().as_secs_f64());
    }
}

#[test]
#[ignore = "benchmark: needs the NAS-Bench-201 table"]
fn overhead_at_500_observations() {
    let Some(table) = nb201_table() else { return };
    let space = Nb201Space::default();
    for (name, hamming) in [("WL", false), ("Hamming", true)] {
        let mut s = bo(TargetTransform::Copula, hamming, 0);
        let mut oracle = table.estimator(Nb201Dataset::Cifar10);
        let start = Instant::now();
        search::run(&space, s.as_mut(), &mut oracle, 500, |_| {}).unwrap();
        let first = start.elapsed().as_secs_f64();
        let mut times = Vec::new();
        for _ in 0..50 {
            let t0 = Instant::now();
            let t = s.ask(&space).unwrap();
            let m = oracle.estimate(&t.arch, &t.budget).unwrap();
            s.tell(t.id, Outcome::Complete(m)).unwrap();
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let (m, sd) = mean_std(&times);
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "GP-BO ({name}): 500 trials in {first:.1} s; one ask + tell at 500-550 observations: {m:.1} ± {sd:.1} ms (max {max:.1} ms)"
        );
    }
}
