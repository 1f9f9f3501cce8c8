use super::*;

fn controller(decisions: &[usize], config: ControllerConfig) -> Controller {
    Controller::new(decisions, config, 11).unwrap()
}

#[test]
fn sampled_log_probs_match_the_teacher_forced_pass() {
    // Single-choice decisions are skipped; heads shared by choice count or per decision.
    let decisions = [3, 1, 5, 2, 1, 5, 3];
    for heads in [HeadSharing::ByChoiceCount, HeadSharing::PerDecision] {
        let config = ControllerConfig {
            heads,
            temperature: None,
            init_range: 0.5,
            ..ControllerConfig::default()
        };
        let mut c = controller(&decisions, config);
        let samples: Vec<Sample> = (0..20).map(|_| c.sample()).collect();
        for s in &samples {
            assert_eq!((s.decisions[1], s.decisions[4]), (0, 0));
            assert!(s.decisions.iter().zip(&decisions).all(|(&x, &n)| x < n));
            assert!(s.entropy > 0.0 && s.log_prob < 0.0);
        }
        let all: Vec<Vec<usize>> = samples.iter().map(|s| s.decisions.clone()).collect();
        let lp = c.log_probs(&all).unwrap();
        for (s, l) in samples.iter().zip(lp) {
            assert!((s.log_prob - l).abs() < 1e-4, "{} vs {l}", s.log_prob);
        }
    }
}

#[test]
fn reinforce_moves_probability_towards_the_better_episode() {
    let mut c = controller(&[5; 6], ControllerConfig::default());
    let (a, b) = (c.sample(), c.sample());
    assert_ne!(a.decisions, b.decisions);
    let before = c
        .log_probs(&[a.decisions.clone(), b.decisions.clone()])
        .unwrap();
    let batch = [Episode::new(a.clone(), 1.0), Episode::new(b.clone(), 0.0)];
    let stats = c.reinforce(&batch).unwrap();
    assert_eq!(stats.baseline, 0.5);
    assert_eq!(stats.mean_reward, 0.5);
    // The baseline folds the rewards in: 0.99² · 0.5 + 0.99 · 0.01 · 1 + 0.01 · 0.
    assert!((c.baseline().unwrap() - (0.99f64.powi(2) * 0.5 + 0.0099)).abs() < 1e-12);
    let after = c.log_probs(&[a.decisions, b.decisions]).unwrap();
    assert!(
        after[0] > before[0] && after[1] < before[1],
        "{before:?} -> {after:?}"
    );
}

#[test]
fn ppo_clips_the_probability_ratio() {
    // One episode with advantage 1, no bound on the logits and no entropy bonus. Once the
    // ratio passes 1 + ε the clipped surrogate is the constant (1 + ε)·A: the loss is
    // exactly −(1 + ε) and has no gradient (only Adam's momentum carries on), so a wider
    // ε lets the probability rise further.
    let config = ControllerConfig {
        temperature: None,
        tanh_constant: None,
        entropy_weight: 0.0,
        learning_rate: 1e-3,
        ..ControllerConfig::default()
    };
    let run = |clip: f64| {
        let mut c = controller(&[5; 6], config.clone());
        // A first update with reward 0 sets the baseline to 0.
        let first = c.sample();
        c.reinforce(&[Episode::new(first, 0.0)]).unwrap();
        assert_eq!(c.baseline(), Some(0.0));
        let a = c.sample();
        let stats = c.ppo(&[Episode::new(a.clone(), 1.0)], clip, 60).unwrap();
        let gain = c.log_probs(std::slice::from_ref(&a.decisions)).unwrap()[0] - a.log_prob;
        (gain, stats.loss)
    };
    let ((clipped, loss), (loose, _)) = (run(0.2), run(0.9));
    eprintln!("log-ratio after 60 epochs: ε = 0.2: {clipped:.3}, ε = 0.9: {loose:.3}");
    assert!(
        clipped > 1.2f64.ln() && clipped < loose,
        "{clipped} vs {loose}"
    );
    assert!((loss + 1.2).abs() < 1e-5, "loss {loss}");
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        Controller::<DefaultBackend>::new(&[3, 0, 2], ControllerConfig::default(), 0),
        Err(StrategyError::Controller(_))
    ));
    let mut c = controller(&[3, 2], ControllerConfig::default());
    let s = c.sample();
    let bad = |d: Vec<usize>, r: f64| Episode {
        decisions: d,
        log_prob: s.log_prob,
        reward: r,
    };
    for batch in [
        vec![],
        vec![bad(vec![0], 1.0)],
        vec![bad(vec![0, 2], 1.0)],
        vec![bad(vec![0, 1], f64::NAN)],
    ] {
        assert!(matches!(
            c.reinforce(&batch),
            Err(StrategyError::Controller(_))
        ));
        assert!(matches!(
            c.ppo(&batch, 0.2, 2),
            Err(StrategyError::Controller(_))
        ));
    }
    let ok = [Episode::new(s, 1.0)];
    assert!(matches!(
        c.ppo(&ok, 0.0, 2),
        Err(StrategyError::InvalidConfig { field: "clip", .. })
    ));
    assert!(matches!(
        c.ppo(&ok, 0.2, 0),
        Err(StrategyError::InvalidConfig {
            field: "epochs",
            ..
        })
    ));
    assert!(c.log_probs(&[vec![3, 0]]).is_err());
    assert_eq!(c.updates(), 0);
    // Only single-choice decisions: nothing to learn, but sampling and updates work.
    let mut trivial = controller(&[1, 1], ControllerConfig::default());
    let s = trivial.sample();
    assert_eq!((s.decisions, s.log_prob, s.entropy), (vec![0, 0], 0.0, 0.0));
    let again = trivial.sample();
    assert!(trivial.reinforce(&[Episode::new(again, 1.0)]).is_ok());
}

#[test]
fn a_saved_controller_continues_like_the_original() {
    let mut a = controller(&[5, 4, 5, 2], ControllerConfig::default());
    let update = |c: &mut Controller, k: usize| {
        let batch: Vec<Episode> = (0..3)
            .map(|i| {
                let s = c.sample();
                let r = (s.decisions[0] + i + k) as f64;
                Episode::new(s, r)
            })
            .collect();
        c.ppo(&batch, 0.2, 2).unwrap()
    };
    for k in 0..3 {
        update(&mut a, k);
    }
    let json = serde_json::to_string(&a).unwrap();
    let mut b: Controller = serde_json::from_str(&json).unwrap();
    assert_eq!((b.updates(), b.baseline()), (a.updates(), a.baseline()));
    for k in 3..6 {
        assert_eq!(update(&mut a, k), update(&mut b, k));
    }
    assert_eq!(a.sample(), b.sample());
    let broken = json.replacen("\"model\":\"", "\"model\":\"zz", 1);
    assert!(serde_json::from_str::<Controller>(&broken).is_err());
}
