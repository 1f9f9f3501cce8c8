use std::time::Instant;

use nas_estimate::tabular::{Nb201Dataset, Nb201Table};
use nas_space::nb201::Nb201Space;
use nas_strategy::search;
use nas_strategy::*;

fn table() -> Nb201Table {
    Nb201Table::open("/work/shared/data/nb201/nats_bench_tss_200ep.csv").unwrap()
}

fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt(),
    )
}

fn bench(name: &str, seeds: u64, q: usize, make: &dyn Fn(u64) -> Box<dyn Strategy<Nb201Space>>) {
    let t = table();
    let space = Nb201Space::default();
    let mut curves = vec![];
    let start = Instant::now();
    for seed in 0..seeds {
        let mut s = make(seed);
        let mut o = t.estimator(Nb201Dataset::Cifar10);
        let r = search::run(&space, s.as_mut(), &mut o, q, |_| {}).unwrap();
        curves.push(r.best_so_far());
    }
    print!("{name:<28}");
    for c in [25, 50, 100, 200] {
        if c <= q {
            let v: Vec<f64> = curves.iter().map(|x| x[c - 1]).collect();
            let (m, s) = stats(&v);
            let hit = v.iter().filter(|&&x| x >= 94.33).count();
            print!(" {c}: {m:.2} ± {s:.2} ({hit} ≥94.33)");
        }
    }
    println!("  [{:.1}s]", start.elapsed().as_secs_f64());
}

#[test]
#[ignore]
fn probe() {
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let q: usize = std::env::var("Q")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    bench("random", seeds, q, &|s| {
        Box::new(RandomSearch::<Nb201Space>::new(s))
    });
    bench("rea", seeds, q, &|s| {
        Box::new(
            RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), s)
                .unwrap(),
        )
    });
    bench("bo-wl", seeds, q, &|s| {
        Box::new(
            BayesianOptimization::<Nb201Space>::new(
                Default::default(),
                WeisfeilerLehman::default(),
                s,
            )
            .unwrap(),
        )
    });
    bench("bo-wl-copula", seeds, q, &|s| {
        Box::new(
            BayesianOptimization::<Nb201Space>::new(
                BayesianOptimizationConfig {
                    targets: nas_strategy::bo::TargetTransform::Copula,
                    ..Default::default()
                },
                WeisfeilerLehman::default(),
                s,
            )
            .unwrap(),
        )
    });
    bench("bo-hamming-copula", seeds, q, &|s| {
        Box::new(
            BayesianOptimization::<Nb201Space, Hamming>::new(
                BayesianOptimizationConfig {
                    targets: nas_strategy::bo::TargetTransform::Copula,
                    ..Default::default()
                },
                Hamming,
                s,
            )
            .unwrap(),
        )
    });
    bench("bo-hamming", seeds, q, &|s| {
        Box::new(
            BayesianOptimization::<Nb201Space, Hamming>::new(Default::default(), Hamming, s)
                .unwrap(),
        )
    });
}

#[test]
#[ignore]
fn timing() {
    let t = table();
    let space = Nb201Space::default();
    for kernel in ["wl", "hamming"] {
        let mut s: Box<dyn Strategy<Nb201Space>> = if kernel == "wl" {
            Box::new(
                BayesianOptimization::<Nb201Space>::new(
                    Default::default(),
                    WeisfeilerLehman::default(),
                    0,
                )
                .unwrap(),
            )
        } else {
            Box::new(
                BayesianOptimization::<Nb201Space, Hamming>::new(Default::default(), Hamming, 0)
                    .unwrap(),
            )
        };
        let mut o = t.estimator(Nb201Dataset::Cifar10);
        let st = Instant::now();
        search::run(&space, s.as_mut(), &mut o, 500, |_| {}).unwrap();
        let setup = st.elapsed().as_secs_f64();
        let mut times = vec![];
        for _ in 0..30 {
            let st = Instant::now();
            let tr = s.ask(&space).unwrap();
            let m = nas_estimate::Estimator::estimate(&mut o, &tr.arch, &tr.budget).unwrap();
            s.tell(tr.id, Outcome::Complete(m)).unwrap();
            times.push(st.elapsed().as_secs_f64() * 1e3);
        }
        let (m, sd) = stats(&times);
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "{kernel}: first 500 in {setup:.1}s; ask+tell at 500: {m:.1} ± {sd:.1} ms, max {max:.1} ms"
        );
    }
}
