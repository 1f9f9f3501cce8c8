//! The model-based and multi-fidelity strategies against random search, reproducibility, and
//! saving and resuming every strategy's state.

mod common;

use common::{Landscape, mean, nb201_table};
use nas_estimate::Metrics;
use nas_estimate::tabular::Nb201Dataset;
use nas_space::nb201::{Nb201Arch, Nb201Space};
use nas_space::{Canonicalize, SearchSpace};
use nas_strategy::predictor::MlpConfig;
use nas_strategy::search;
use nas_strategy::{
    Bananas, BananasConfig, BayesianOptimization, BayesianOptimizationConfig, Bohb, BohbConfig,
    Dedup, Hamming, Hyperband, HyperbandConfig, NasNetCells, Outcome, Pnas, PnasConfig,
    RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, RetryConfig, RetryFailures,
    Strategy, StrategyError, Trial, WeisfeilerLehman,
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

/// The predictor of the tests: BANANAS' MLPs, fewer epochs.
fn quick_mlp() -> MlpConfig {
    MlpConfig {
        epochs: 100,
        ..MlpConfig::default()
    }
}

fn bananas(seed: u64) -> Bananas<Nb201Space> {
    let config = BananasConfig {
        predictor: quick_mlp(),
        ..BananasConfig::default()
    };
    Bananas::new(config, seed).unwrap()
}

fn pnas(seed: u64, beam: usize) -> Pnas<Nb201Space> {
    let config = PnasConfig {
        beam,
        predictor: quick_mlp(),
    };
    Pnas::new(config, seed).unwrap()
}

#[test]
fn predictor_based_searches_beat_random_search() {
    let land = Landscape::new(7);
    let f = |a: &Nb201Arch| land.value(a);
    let rs: Make = Box::new(|s| Box::new(RandomSearch::<Nb201Space>::new(s)));
    let ban: Make = Box::new(|s| Box::new(bananas(s)));
    let pn: Make = Box::new(|s| Box::new(pnas(s, 8)));
    let (seeds, q) = (4, 50);
    let r = mean_best(&rs, seeds, q, &f);
    let b = mean_best(&ban, seeds, q, &f);
    let p = mean_best(&pn, seeds, q, &f);
    eprintln!("synthetic, best after {q} queries: random {r:.3}, BANANAS {b:.3}, PNAS {p:.3}");
    assert!(b > r && p > r, "random {r}, BANANAS {b}, PNAS {p}");

    let Some(table) = nb201_table() else {
        return;
    };
    let acc = |a: &Nb201Arch| table.get(a).unwrap().accuracy(Nb201Dataset::Cifar10);
    let r = mean_best(&rs, seeds, q, &acc);
    let b = mean_best(&ban, seeds, q, &acc);
    let p = mean_best(&pn, seeds, q, &acc);
    eprintln!(
        "NAS-Bench-201 CIFAR-10, best after {q} queries: random {r:.2}, BANANAS {b:.2}, PNAS {p:.2}"
    );
    assert!(b > r && p > r, "random {r}, BANANAS {b}, PNAS {p}");
}

#[test]
fn pnas_grows_cells_level_by_level_from_the_best() {
    use nas_space::nb201::Nb201Op;
    let space = Nb201Space::default();
    let land = Landscape::new(3);
    let mut s = pnas(1, 2);
    let mut told: Vec<(Nb201Arch, f64)> = Vec::new();
    let mut run = |s: &mut Pnas<Nb201Space>, n: usize| -> Vec<Nb201Arch> {
        (0..n)
            .map(|_| {
                let t = s.ask(&space).unwrap();
                let v = land.value(&t.arch);
                told.push((t.arch, v));
                s.tell(t.id, Outcome::Complete(Metrics::new(v))).unwrap();
                t.arch
            })
            .collect()
    };
    // Level 1: the five one-node cells, node 1 wired to the output.
    let first = run(&mut s, 5);
    assert_eq!(s.level(), 1);
    for a in &first {
        assert_eq!(
            &a.edges[1..],
            &[
                Nb201Op::None,
                Nb201Op::None,
                Nb201Op::None,
                Nb201Op::SkipConnect,
                Nb201Op::None
            ]
        );
    }
    let mut best1: Vec<&Nb201Arch> = first.iter().collect();
    best1.sort_by(|a, b| land.value(b).total_cmp(&land.value(a)));
    // Level 2: two cells (the beam), each growing one of the two best of level 1 by node 2.
    let second = run(&mut s, 2);
    assert_eq!(s.level(), 2);
    for a in &second {
        assert!(
            a.edges[0] == best1[0].edges[0] || a.edges[0] == best1[1].edges[0],
            "{a}"
        );
        assert_eq!(a.edges[3], Nb201Op::None);
        assert_eq!(a.edges[5], Nb201Op::SkipConnect);
    }
    // Level 3 and on: complete cells grown from the two best of level 2.
    let mut best2 = second.clone();
    best2.sort_by(|a, b| land.value(b).total_cmp(&land.value(a)));
    let third = run(&mut s, 6);
    assert_eq!(s.level(), 3);
    for a in &third {
        assert!(best2.iter().any(|p| p.edges[..3] == a.edges[..3]), "{a}");
    }
    // Never a repeat, up to NAS-Bench-201's equivalence.
    let forms: std::collections::HashSet<_> = told
        .iter()
        .map(|(a, _)| space.canonical(a).unwrap())
        .collect();
    assert_eq!(forms.len(), told.len());
}

#[test]
fn pnas_grows_nasnet_cells_one_block_at_a_time() {
    use nas_space::nasnet::{Combiner, NasNetArch, NasNetConfig, NasNetOp};
    let cells = NasNetCells::new(NasNetConfig {
        blocks: 3,
        ops: vec![
            NasNetOp::SepConv3x3,
            NasNetOp::MaxPool3x3,
            NasNetOp::SkipConnect,
        ],
        combiners: vec![Combiner::Add],
    })
    .unwrap();
    // Separable convolutions count more in later blocks; a complete cell scores its size more.
    let f = |a: &NasNetArch| {
        a.normal
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (i + 1) as f64 * b.ops.iter().filter(|&&o| o == NasNetOp::SepConv3x3).count() as f64
            })
            .sum::<f64>()
            + a.blocks() as f64
    };
    let run = |strategy: &mut dyn Strategy<NasNetCells>| {
        let mut est = |a: &NasNetArch, _: &nas_estimate::Budget| Ok(Metrics::new(f(a)));
        search::run(&cells, strategy, &mut est, 60, |_| {}).unwrap()
    };
    let mut pnas_best = Vec::new();
    let mut random_best = Vec::new();
    for seed in 0..3 {
        let config = PnasConfig {
            beam: 4,
            predictor: quick_mlp(),
        };
        let mut p = Pnas::<NasNetCells>::new(config, seed).unwrap();
        let r = run(&mut p);
        let archs: Vec<NasNetArch> = r.trials.iter().map(|t| t.arch.clone()).collect();
        // 21 one-block cells (6 branches, unordered pairs under `add`), then 4 of two blocks,
        // then complete cells; the normal and the reduction cell are one structure.
        let sizes: Vec<usize> = archs.iter().map(|a| a.blocks()).collect();
        assert!(sizes[..21].iter().all(|&b| b == 1), "{sizes:?}");
        assert!(sizes[21..25].iter().all(|&b| b == 2), "{sizes:?}");
        assert!(sizes[25..].iter().all(|&b| b == 3), "{sizes:?}");
        for a in &archs {
            cells.validate(a).unwrap();
            assert_eq!(a.normal, a.reduce);
        }
        pnas_best.push(*r.best_so_far().last().unwrap());
        let mut rs = RandomSearch::<NasNetCells>::new(seed);
        random_best.push(*run(&mut rs).best_so_far().last().unwrap());
    }
    eprintln!("NASNet cells, best after 60: PNAS {pnas_best:?}, random {random_best:?}");
    assert!(mean(&pnas_best) > mean(&random_best) + 1.0);
    // Cells of another size than the space grows are errors, not panics.
    use rand::SeedableRng;
    let too_big = cells
        .full()
        .sample(&mut rand::rngs::ChaCha8Rng::seed_from_u64(0));
    let mut four = too_big.clone();
    four.normal.push(four.normal[0]);
    four.reduce.push(four.reduce[0]);
    assert!(cells.validate(&four).is_err());
}

#[test]
fn pnas_goes_on_past_its_expansions_without_repeats() {
    // A beam of 1 runs out of expansions after 5 + 1 + 125 cells; the search must go on
    // (random complete cells ranked by the predictor), never proposing a cell twice.
    let space = Nb201Space::default();
    let land = Landscape::new(2);
    let config = PnasConfig {
        beam: 1,
        predictor: MlpConfig {
            hidden: vec![8],
            epochs: 3,
            ensemble: 2,
            ..MlpConfig::default()
        },
    };
    let mut s = Pnas::<Nb201Space>::new(config, 0).unwrap();
    let mut est = |a: &Nb201Arch, _: &nas_estimate::Budget| Ok(Metrics::new(land.value(a)));
    let r = search::run(&space, &mut s, &mut est, 200, |_| {}).unwrap();
    assert_eq!(r.trials.len(), 200);
    let forms: std::collections::HashSet<_> = r
        .trials
        .iter()
        .map(|t| space.canonical(&t.arch).unwrap())
        .collect();
    assert_eq!(forms.len(), 200);
}

#[test]
fn pnas_and_bananas_check_their_configs_and_spaces() {
    let bad = PnasConfig {
        beam: 0,
        ..PnasConfig::default()
    };
    let e = Pnas::<Nb201Space>::new(bad, 0).unwrap_err().to_string();
    assert!(e.contains("`beam`"), "{e}");
    let bad = BananasConfig {
        initial_random: 1,
        ..BananasConfig::default()
    };
    let e = Bananas::<Nb201Space>::new(bad, 0).unwrap_err().to_string();
    assert!(e.contains("`initial_random`"), "{e}");
    let bad = BananasConfig {
        predictor: MlpConfig {
            learning_rate: f64::NAN,
            ..MlpConfig::default()
        },
        ..BananasConfig::default()
    };
    let e = Bananas::<Nb201Space>::new(bad, 0).unwrap_err().to_string();
    assert!(e.contains("predictor.learning_rate"), "{e}");
    // PNAS's small cells need `none` and `skip_connect`.
    use nas_space::nb201::Nb201Op;
    let convs = Nb201Space::with_ops(&[Nb201Op::NorConv1x1, Nb201Op::NorConv3x3]).unwrap();
    let e = pnas(0, 4).ask(&convs).unwrap_err().to_string();
    assert!(e.contains("none"), "{e}");
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
    save_load_continue(|| bananas(3), 24, 15);
    save_load_continue(|| pnas(3, 4), 20, 20);
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
