//! The reinforcement-learning strategies (REINFORCE and PPO with an LSTM controller): they learn
//! a synthetic objective, are reproducible, check their configuration, handle failures, run
//! through the search loop (with parallel workers, and resumed from a journal), and sample
//! every built-in space.

use nas_estimate::{Budget, EstimateError, Metrics};
use nas_space::Sequential;
use nas_space::darts::DartsSpace;
use nas_space::dpc::DpcSpace;
use nas_space::fpn::FpnSpace;
use nas_space::nasnet::NasNetSpace;
use nas_space::nasrl::NasRlSpace;
use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas_space::proxyless::ProxylessSpace;
use nas_space::spos::SposSpace;
use nas_strategy::controller::{ControllerConfig, HeadSharing};
use nas_strategy::search::StopReason;
use nas_strategy::{
    Outcome, Ppo, PpoConfig, Reinforce, ReinforceConfig, Search, Strategy, StrategyError,
};

/// The synthetic reward: the number of 3x3 convolutions (1.2 on average for a random cell).
fn convs(a: &Nb201Arch) -> f64 {
    a.edges
        .iter()
        .filter(|&&o| o == Nb201Op::NorConv3x3)
        .count() as f64
}

fn reinforce(seed: u64) -> Reinforce<Nb201Space> {
    Reinforce::new(
        &Nb201Space::default(),
        ReinforceConfig::short_search(),
        seed,
    )
    .unwrap()
}

fn ppo(seed: u64) -> Ppo<Nb201Space> {
    Ppo::new(&Nb201Space::default(), PpoConfig::short_search(), seed).unwrap()
}

/// The rewards of `n` sequential ask/tell pairs.
fn rewards(strategy: &mut dyn Strategy<Nb201Space>, n: usize) -> Vec<f64> {
    let space = Nb201Space::default();
    (0..n)
        .map(|_| {
            let t = strategy.ask(&space).unwrap();
            let r = convs(&t.arch);
            strategy
                .tell(t.id, Outcome::Complete(Metrics::new(r)))
                .unwrap();
            r
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn reinforce_and_ppo_raise_the_mean_reward() {
    for seed in 0..2 {
        let makes: [(&str, Box<dyn Strategy<Nb201Space>>); 2] = [
            ("REINFORCE", Box::new(reinforce(seed))),
            ("PPO", Box::new(ppo(seed))),
        ];
        for (name, mut s) in makes {
            let r = rewards(s.as_mut(), 200);
            let (first, last) = (mean(&r[..50]), mean(&r[150..]));
            eprintln!(
                "{name}, seed {seed}: mean reward {first:.2} over the first 50 asks, {last:.2} over the last 50"
            );
            assert!(
                last > first + 1.0 && last > 4.0,
                "{name}, seed {seed}: {first} then {last}"
            );
        }
    }
}

#[test]
fn same_seed_same_proposals() {
    let space = Nb201Space::default();
    let run = |mut s: Box<dyn Strategy<Nb201Space>>| -> Vec<Nb201Arch> {
        (0..40)
            .map(|i| {
                let t = s.ask(&space).unwrap();
                let outcome = if i % 7 == 3 {
                    Outcome::Failed("diverged".into())
                } else {
                    Outcome::Complete(Metrics::new(convs(&t.arch)))
                };
                s.tell(t.id, outcome).unwrap();
                t.arch
            })
            .collect()
    };
    assert_eq!(run(Box::new(reinforce(4))), run(Box::new(reinforce(4))));
    assert_ne!(run(Box::new(reinforce(4))), run(Box::new(reinforce(5))));
    assert_eq!(run(Box::new(ppo(4))), run(Box::new(ppo(4))));
}

/// The field named by an `InvalidConfig` error.
fn field<T: std::fmt::Debug>(r: Result<T, StrategyError>) -> &'static str {
    match r {
        Err(StrategyError::InvalidConfig { field, .. }) => field,
        other => panic!("expected an invalid configuration, got {other:?}"),
    }
}

#[test]
fn configs_are_checked_field_by_field() {
    let space = Nb201Space::default();
    let controller = |f: fn(&mut ControllerConfig)| {
        let mut c = ReinforceConfig::default();
        f(&mut c.controller);
        field(Reinforce::<Nb201Space>::new(&space, c, 0))
    };
    assert_eq!(controller(|c| c.hidden_size = 0), "hidden_size");
    assert_eq!(controller(|c| c.temperature = Some(0.0)), "temperature");
    assert_eq!(
        controller(|c| c.tanh_constant = Some(f64::NAN)),
        "tanh_constant"
    );
    assert_eq!(controller(|c| c.init_range = -0.1), "init_range");
    assert_eq!(controller(|c| c.learning_rate = 0.0), "learning_rate");
    assert_eq!(controller(|c| c.entropy_weight = -1.0), "entropy_weight");
    assert_eq!(controller(|c| c.baseline_decay = 1.0), "baseline_decay");
    assert_eq!(
        controller(|c| c.grad_clip_norm = Some(0.0)),
        "grad_clip_norm"
    );

    let rf = |f: fn(&mut ReinforceConfig)| {
        let mut c = ReinforceConfig::default();
        f(&mut c);
        field(Reinforce::<Nb201Space>::new(&space, c, 0))
    };
    assert_eq!(rf(|c| c.batch_size = 0), "batch_size");
    assert_eq!(
        rf(|c| c.failed_reward = Some(f64::INFINITY)),
        "failed_reward"
    );

    let pp = |f: fn(&mut PpoConfig)| {
        let mut c = PpoConfig::default();
        f(&mut c);
        field(Ppo::<Nb201Space>::new(&space, c, 0))
    };
    assert_eq!(pp(|c| c.batch_size = 0), "batch_size");
    assert_eq!(pp(|c| c.epochs = 0), "epochs");
    assert_eq!(pp(|c| c.clip = 0.0), "clip");
    assert_eq!(pp(|c| c.clip = 1.5), "clip");
    assert_eq!(
        pp(|c| c.controller.learning_rate = f64::NAN),
        "learning_rate"
    );

    assert!(ReinforceConfig::short_search().check().is_ok());
    assert!(PpoConfig::short_search().check().is_ok());
    assert!(PpoConfig::default().check().is_ok());
}

#[test]
fn failed_trials_are_skipped_or_penalized() {
    let space = Nb201Space::default();
    let fail_all = |s: &mut dyn Strategy<Nb201Space>| {
        for _ in 0..8 {
            let t = s.ask(&space).unwrap();
            s.tell(t.id, Outcome::Failed("out of memory".into()))
                .unwrap();
        }
    };
    let mut skip = reinforce(0);
    fail_all(&mut skip);
    assert_eq!(skip.controller().updates(), 0);
    assert!(skip.last_update().is_none());

    let config = ReinforceConfig {
        failed_reward: Some(0.0),
        ..ReinforceConfig::short_search()
    };
    let mut penalize = Reinforce::<Nb201Space>::new(&space, config, 0).unwrap();
    fail_all(&mut penalize);
    assert_eq!(penalize.controller().updates(), 2);
    assert_eq!(penalize.last_update().unwrap().mean_reward, 0.0);

    // A non-finite objective counts as a failure; pruned trials are rewarded.
    let mut s = reinforce(0);
    for k in 0..4 {
        let t = s.ask(&space).unwrap();
        let m = Metrics::new(if k == 0 { f64::NAN } else { 2.0 });
        s.tell(t.id, Outcome::Pruned(m)).unwrap();
    }
    assert_eq!(s.controller().updates(), 0);
    let t = s.ask(&space).unwrap();
    s.tell(t.id, Outcome::Pruned(Metrics::new(2.0))).unwrap();
    assert_eq!(s.controller().updates(), 1);

    assert!(matches!(
        s.tell(1234, Outcome::Failed("x".into())),
        Err(StrategyError::UnknownTrial(1234))
    ));
}

fn estimator(a: &Nb201Arch, _: &Budget) -> Result<Metrics, EstimateError> {
    Ok(Metrics::new(convs(a)))
}

#[test]
fn runs_through_the_search_loop_and_resumes_from_its_journal() {
    let space = Nb201Space::default();
    let full = Search::new(&space, &mut reinforce(7))
        .trials(80)
        .seed(7)
        .run(&mut estimator)
        .unwrap();
    assert_eq!(full.trials.len(), 80);
    assert_eq!(full.stop, Some(StopReason::Trials));
    assert!(full.best().unwrap().objective().unwrap() >= 5.0);

    // Stop after 30 trials, resume to 80 with a fresh strategy of the same seed: the journal
    // replays the first 30 (the controller learns from them again) and the rest is identical.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trials.jsonl");
    Search::new(&space, &mut reinforce(7))
        .trials(30)
        .journal(&path)
        .seed(7)
        .run(&mut estimator)
        .unwrap();
    let resumed = Search::new(&space, &mut reinforce(7))
        .trials(80)
        .journal(&path)
        .seed(7)
        .run(&mut estimator)
        .unwrap();
    let key = |r: &nas_strategy::search::SearchResult<Nb201Arch>| {
        r.trials
            .iter()
            .map(|t| (t.id, t.arch, t.outcome.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&resumed), key(&full));

    // Parallel workers: every trial finishes once.
    let mut p = ppo(1);
    let parallel = Search::new(&space, &mut p)
        .trials(48)
        .run_parallel(3, |_| estimator)
        .unwrap();
    assert_eq!(parallel.trials.len(), 48);
    assert_eq!(p.controller().updates(), 6);
}

/// A few ask/tell pairs with a REINFORCE controller on `space`; every proposal validates.
fn drive<S: Sequential>(space: &S, per_decision: bool) {
    let mut config = ReinforceConfig {
        batch_size: 2,
        ..ReinforceConfig::short_search()
    };
    if per_decision {
        config.controller.heads = HeadSharing::PerDecision;
    }
    let mut s = Reinforce::<S>::new(space, config, 3).unwrap();
    for k in 0..4 {
        let t = s.ask(space).unwrap();
        space.validate(&t.arch).unwrap();
        s.tell(t.id, Outcome::Complete(Metrics::new(k as f64)))
            .unwrap();
    }
    assert_eq!(s.controller().updates(), 2);
}

#[test]
fn samples_every_built_in_space() {
    drive(&Nb201Space::default(), true);
    drive(&DartsSpace::default(), false);
    drive(&NasNetSpace::default(), false);
    drive(&ProxylessSpace::default(), true);
    drive(&SposSpace::default(), false);
    drive(&NasRlSpace::with_layers(6).unwrap(), false);
    drive(&DpcSpace::default(), false);
    drive(&FpnSpace::default(), false);

    // A strategy built for one space refuses a space with other decisions.
    let mut s = reinforce(0);
    let few = Nb201Space::with_ops(&[Nb201Op::None, Nb201Op::NorConv3x3]).unwrap();
    assert!(matches!(s.ask(&few), Err(StrategyError::Controller(_))));
}
