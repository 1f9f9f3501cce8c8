//! The model-based and multi-fidelity strategies against random search, reproducibility, and
//! saving and resuming every strategy's state.

mod common;

use common::{Landscape, mean, nb201_table};
use nas_estimate::Metrics;
use nas_estimate::tabular::Nb201Dataset;
use nas_space::nb201::{Nb201Arch, Nb201Space};
use nas_space::{Canonicalize, SearchSpace};
use nas_strategy::search;
use nas_strategy::{
    BayesianOptimization, BayesianOptimizationConfig, Bohb, BohbConfig, Dedup, Hamming, Hyperband,
    HyperbandConfig, Outcome, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig,
    RetryConfig, RetryFailures, Strategy, StrategyError, Trial, WeisfeilerLehman,
};
use serde::{Serialize, de::DeserializeOwned};

type Make = Box<dyn Fn(u64) -> Box<dyn Strategy<Nb201Space>>>;

fn bo_wl(seed: u64) -> BayesianOptimization<Nb201Space> {
    BayesianOptimization::new(
        BayesianOptimizationConfig::default(),
        WeisfeilerLehman::default(),
        seed,
    )
    .unwrap()
}

fn bo_hamming(seed: u64) -> BayesianOptimization<Nb201Space, Hamming> {
    BayesianOptimization::new(BayesianOptimizationConfig::default(), Hamming, seed).unwrap()
}

/// Mean over `seeds` of the best value found in `queries` queries.
fn mean_best(make: &Make, seeds: u64, queries: usize, f: &dyn Fn(&Nb201Arch) -> f64) -> f64 {
    let space = Nb201Space::default();
    let bests: Vec<f64> = (0..seeds)
        .map(|seed| {
            let mut s = make(seed);
            let mut est = |a: &Nb201Arch, _: &nas_estimate::Budget| Ok(Metrics::new(f(a)));
            let r = search::run(&space, s.as_mut(), &mut est, queries, |_| {}).unwrap();
            *r.best_so_far().last().unwrap()
        })
        .collect();
    mean(&bests)
}

#[test]
fn bayesian_optimization_beats_random_search() {
    let land = Landscape::new(7);
    let f = |a: &Nb201Arch| land.value(a);
    let rs: Make = Box::new(|s| Box::new(RandomSearch::<Nb201Space>::new(s)));
    let wl: Make = Box::new(|s| Box::new(bo_wl(s)));
    let ham: Make = Box::new(|s| Box::new(bo_hamming(s)));
    let (seeds, q) = (4, 50);
    let r = mean_best(&rs, seeds, q, &f);
    let w = mean_best(&wl, seeds, q, &f);
    let h = mean_best(&ham, seeds, q, &f);
    eprintln!("synthetic, best after {q} queries: random {r:.3}, BO-WL {w:.3}, BO-Hamming {h:.3}");
    assert!(w > r && h > r, "random {r}, WL {w}, Hamming {h}");

    let Some(table) = nb201_table() else {
        return;
    };
    let acc = |a: &Nb201Arch| table.get(a).unwrap().accuracy(Nb201Dataset::Cifar10);
    let r = mean_best(&rs, seeds, q, &acc);
    let w = mean_best(&wl, seeds, q, &acc);
    let h = mean_best(&ham, seeds, q, &acc);
    eprintln!(
        "NAS-Bench-201 CIFAR-10, best after {q} queries: random {r:.2}, BO-WL {w:.2}, BO-Hamming {h:.2}"
    );
    assert!(w > r && h > r, "random {r}, WL {w}, Hamming {h}");
}

#[test]
fn bayesian_optimization_never_repeats_and_spreads_a_batch() {
    let space = Nb201Space::default();
    let land = Landscape::new(3);
    let mut bo = bo_wl(1);
    let mut forms = std::collections::HashSet::new();
    for round in 0..12 {
        // Four parallel workers: the batch holds four different cells, none seen before.
        let batch = bo.ask_batch(&space, 4).unwrap();
        assert_eq!(batch.len(), 4);
        for t in &batch {
            assert!(
                forms.insert(space.canonical(&t.arch).unwrap()),
                "round {round}: {} proposed twice",
                t.arch
            );
        }
        for (k, t) in batch.into_iter().enumerate() {
            let outcome = if k == 3 && round % 3 == 0 {
                Outcome::Failed("out of memory".into())
            } else {
                Outcome::Complete(Metrics::new(land.value(&t.arch)))
            };
            bo.tell(t.id, outcome).unwrap();
        }
    }
    // Failures are not observations.
    assert_eq!(bo.observations().len(), 48 - 4);
    assert!(bo.hyperparameters().is_some());
    assert!(matches!(
        bo.tell(1000, Outcome::Failed("?".into())),
        Err(StrategyError::UnknownTrial(1000))
    ));
}

#[test]
fn bayesian_optimization_configs_are_checked_field_by_field() {
    let base = BayesianOptimizationConfig::default();
    let cases = [
        (
            BayesianOptimizationConfig {
                initial_random: 1,
                ..base.clone()
            },
            "initial_random",
        ),
        (
            BayesianOptimizationConfig {
                random_candidates: 0,
                parents: 0,
                ..base.clone()
            },
            "random_candidates",
        ),
        (
            BayesianOptimizationConfig {
                max_candidates: 0,
                ..base.clone()
            },
            "max_candidates",
        ),
        (
            BayesianOptimizationConfig {
                inverse_length_scales: vec![],
                ..base.clone()
            },
            "inverse_length_scales",
        ),
        (
            BayesianOptimizationConfig {
                inverse_length_scales: vec![1.0, -2.0],
                ..base.clone()
            },
            "inverse_length_scales",
        ),
        (
            BayesianOptimizationConfig {
                noise_ratios: vec![f64::NAN],
                ..base.clone()
            },
            "noise_ratios",
        ),
        (
            BayesianOptimizationConfig {
                refit_growth: -1.0,
                ..base.clone()
            },
            "refit_growth",
        ),
        (
            BayesianOptimizationConfig {
                max_fit_points: 1,
                ..base.clone()
            },
            "max_fit_points",
        ),
        (
            BayesianOptimizationConfig {
                xi: f64::INFINITY,
                ..base.clone()
            },
            "xi",
        ),
    ];
    for (c, field) in cases {
        match BayesianOptimization::<Nb201Space>::new(c, WeisfeilerLehman::default(), 0) {
            Err(StrategyError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// Runs a multi-fidelity strategy until it has spent `cost` (the sum of the fidelities of its
/// trials) and returns the true value of its incumbent at the largest budget it reached.
fn multi_fidelity_run(
    s: &mut dyn Strategy<Nb201Space>,
    land: &Landscape,
    max: f64,
    cost: f64,
) -> f64 {
    let space = Nb201Space::default();
    let mut spent = 0.0;
    let mut best: Option<(f64, f64, Nb201Arch)> = None;
    while spent < cost {
        let t = s.ask(&space).unwrap();
        let r = t.budget.fidelity.unwrap_or(max);
        spent += r;
        let v = land.at_fidelity(&t.arch, r, max);
        // The incumbent: best observed value at the largest fidelity seen.
        if best
            .as_ref()
            .is_none_or(|(br, bv, _)| r > *br || (r == *br && v > *bv))
        {
            best = Some((r, v, t.arch));
        }
        s.tell(t.id, Outcome::Complete(Metrics::new(v))).unwrap();
    }
    land.value(&best.unwrap().2)
}

#[test]
fn hyperband_and_bohb_beat_random_search_at_equal_cost() {
    let land = Landscape::new(11);
    let hb = HyperbandConfig::default();
    let max = hb.max_fidelity;
    // Random search evaluates everything at the full budget.
    let cost = 60.0 * max;
    let seeds = 0..6u64;
    let rs: Vec<f64> = seeds
        .clone()
        .map(|s| {
            let mut rs = FullBudget(RandomSearch::<Nb201Space>::new(s), max);
            multi_fidelity_run(&mut rs, &land, max, cost)
        })
        .collect();
    let hyperband: Vec<f64> = seeds
        .clone()
        .map(|s| {
            let mut h = Hyperband::<Nb201Space>::new(hb, s).unwrap();
            multi_fidelity_run(&mut h, &land, max, cost)
        })
        .collect();
    let bohb: Vec<f64> = seeds
        .map(|s| {
            let mut b = Bohb::<Nb201Space>::new(BohbConfig::default(), s).unwrap();
            let v = multi_fidelity_run(&mut b, &land, max, cost);
            assert!(b.model_based() > 0, "the model was never used");
            v
        })
        .collect();
    let (r, h, b) = (mean(&rs), mean(&hyperband), mean(&bohb));
    eprintln!(
        "true value of the incumbent at equal cost: random {r:.3}, Hyperband {h:.3}, BOHB {b:.3}"
    );
    assert!(h > r, "Hyperband {h} vs random {r}");
    assert!(b > r, "BOHB {b} vs random {r}");
}

/// Random search at the full fidelity `1` (as a multi-fidelity baseline).
struct FullBudget(RandomSearch<Nb201Space>, f64);

impl Strategy<Nb201Space> for FullBudget {
    fn ask(&mut self, space: &Nb201Space) -> Result<Trial<Nb201Arch>, StrategyError> {
        let mut t = self.0.ask(space)?;
        t.budget = nas_estimate::Budget::fidelity(self.1);
        Ok(t)
    }
    fn tell(&mut self, id: u64, outcome: Outcome) -> Result<(), StrategyError> {
        self.0.tell(id, outcome)
    }
}

/// Drives `a` for `before` trials (in batches of 3, one trial left pending), saves it to JSON
/// and loads it; then the original and the loaded copy, driven identically, must propose the
/// same `after` trials. Also checks that two fresh strategies with the same seed agree.
fn save_load_continue<St>(make: impl Fn() -> St, before: usize, after: usize)
where
    St: Strategy<Nb201Space> + Serialize + DeserializeOwned,
{
    let space = Nb201Space::default();
    let land = Landscape::new(5);
    let score = |t: &Trial<Nb201Arch>| {
        let v = land.at_fidelity(&t.arch, t.budget.fidelity.unwrap_or(27.0), 27.0);
        if t.id % 11 == 5 {
            Outcome::Failed("diverged".into())
        } else {
            Outcome::Complete(Metrics::new(v))
        }
    };
    let drive = |s: &mut St, n: usize, held: &mut Vec<Trial<Nb201Arch>>| {
        let mut out = Vec::new();
        while out.len() < n {
            let batch = s.ask_batch(&space, 3).unwrap();
            for t in &batch {
                space.validate(&t.arch).unwrap();
            }
            out.extend(batch.iter().cloned());
            // Tell the earlier held trial, hold back the last one of this batch.
            for t in held.drain(..) {
                s.tell(t.id, score(&t)).unwrap();
            }
            let (last, rest) = batch.split_last().unwrap();
            for t in rest {
                s.tell(t.id, score(t)).unwrap();
            }
            held.push(last.clone());
        }
        out
    };
    let mut a = make();
    let mut held = Vec::new();
    let first = drive(&mut a, before, &mut held);
    let mut twin = make();
    assert_eq!(
        drive(&mut twin, before, &mut Vec::new()),
        first,
        "same seed, same proposals"
    );

    let json = serde_json::to_string(&a).unwrap();
    let mut b: St = serde_json::from_str(&json).unwrap();
    let mut held_b = held.clone();
    let cont_a = drive(&mut a, after, &mut held);
    let cont_b = drive(&mut b, after, &mut held_b);
    assert_eq!(
        cont_a, cont_b,
        "a loaded state continues like the saved one"
    );
}

#[test]
fn every_strategy_resumes_from_a_saved_state() {
    save_load_continue(|| RandomSearch::<Nb201Space>::new(3), 20, 20);
    save_load_continue(
        || RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 3).unwrap(),
        30,
        30,
    );
    save_load_continue(|| bo_wl(3), 24, 15);
    save_load_continue(|| bo_hamming(3), 24, 15);
    save_load_continue(
        || Hyperband::<Nb201Space>::new(HyperbandConfig::default(), 3).unwrap(),
        60,
        60,
    );
    save_load_continue(
        || Bohb::<Nb201Space>::new(BohbConfig::default(), 3).unwrap(),
        90,
        60,
    );
    save_load_continue(
        || {
            Dedup::new(
                RetryFailures::new(
                    RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 3)
                        .unwrap(),
                    RetryConfig::default(),
                )
                .unwrap(),
            )
        },
        30,
        30,
    );
    #[cfg(feature = "burn")]
    {
        let space = Nb201Space::default();
        save_load_continue(
            || {
                nas_strategy::Reinforce::<Nb201Space>::new(
                    &space,
                    nas_strategy::ReinforceConfig::short_search(),
                    3,
                )
                .unwrap()
            },
            30,
            30,
        );
        save_load_continue(
            || {
                nas_strategy::Ppo::<Nb201Space>::new(
                    &space,
                    nas_strategy::PpoConfig::short_search(),
                    3,
                )
                .unwrap()
            },
            30,
            30,
        );
    }
}
