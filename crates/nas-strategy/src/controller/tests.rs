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

/// A graph with every kind of step: three inputs, a select, a distinct select, a categorical
/// decision of one choice (skipped) and one of three, an anchor, two links and a select that
/// reads the new anchor.
fn small_graph() -> (Vec<usize>, DecisionGraph) {
    use nas_space::GraphStep::*;
    let select = |anchors: Vec<usize>, distinct_from_previous| {
        Decide(DecisionKind::Select {
            anchors,
            distinct_from_previous,
        })
    };
    let steps = vec![
        Input,
        Input,
        Input,
        select(vec![0, 1, 2], false),
        select(vec![0, 1, 2], true),
        Decide(DecisionKind::Categorical),
        Decide(DecisionKind::Categorical),
        Anchor,
        Decide(DecisionKind::Link { anchor: 3 }),
        Decide(DecisionKind::Link { anchor: 0 }),
        select(vec![1, 3], false),
    ];
    (vec![3, 2, 1, 3, 2, 2, 2], DecisionGraph { steps })
}

fn graph_controller(config: ControllerConfig, seed: u64) -> Controller {
    let (decisions, graph) = small_graph();
    Controller::with_graph_on(&decisions, Some(graph), config, seed, Default::default()).unwrap()
}

/// The attention walk is a distribution over the decision vectors: the probabilities of all
/// of them sum to one (the distinct select's excluded anchor included), and a sample's
/// log-probability is the teacher-forced one.
#[test]
fn attention_walk_is_a_distribution_and_sampling_agrees_with_scoring() {
    let config = ControllerConfig {
        temperature: None,
        init_range: 0.5,
        ..ControllerConfig::default()
    };
    let mut c = graph_controller(config, 3);
    let (sizes, _) = small_graph();
    let mut all = vec![vec![]];
    for &n in &sizes {
        all = all
            .into_iter()
            .flat_map(|v: Vec<usize>| {
                (0..n).map(move |x| {
                    let mut v = v.clone();
                    v.push(x);
                    v
                })
            })
            .collect();
    }
    assert_eq!(all.len(), 144);
    let total: f64 = c.log_probs(&all).unwrap().iter().map(|l| l.exp()).sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    let samples: Vec<Sample> = (0..30).map(|_| c.sample()).collect();
    let distinct: std::collections::BTreeSet<_> =
        samples.iter().map(|s| s.decisions.clone()).collect();
    assert!(distinct.len() > 5, "{distinct:?}");
    let lp = c
        .log_probs(
            &samples
                .iter()
                .map(|s| s.decisions.clone())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    for (s, l) in samples.iter().zip(lp) {
        assert_eq!(s.decisions[2], 0);
        assert!((s.log_prob - l).abs() < 1e-4, "{} vs {l}", s.log_prob);
        assert!(s.entropy > 0.0);
    }
}

/// The point of attention: the select and link decisions have no softmax head of their own
/// (the scores come from the anchors), so the parameters do not grow with the number of
/// earlier states; and REINFORCE learns which state to read.
#[test]
fn attention_chooses_states_without_a_head_per_decision_and_learns() {
    use nas_space::dpc::DpcSpace;
    let config = ControllerConfig {
        learning_rate: 0.02,
        ..ControllerConfig::default()
    };
    let space = DpcSpace::default();
    let with = Controller::<DefaultBackend>::for_space(&space, config.clone(), 0).unwrap();
    let without = Controller::<DefaultBackend>::for_space(
        &space,
        ControllerConfig {
            attention: false,
            ..config.clone()
        },
        0,
    )
    .unwrap();
    assert!(with.graph().is_some() && without.graph().is_none());
    // DPC: the operation head only, against one head per number of inputs (2, 3, 4, 5) and
    // the operation head.
    assert_eq!(with.head_sizes.len(), 1);
    assert_eq!(without.head_sizes.len(), 5);
    // Reward: every branch reads the backbone (anchor 0), a choice whose position among the
    // candidates is the same (0) for every branch, or the branch just before (the last
    // candidate, whose position moves): the attention finds the latter from the anchors.
    let mut c = with;
    let decisions = space.decisions();
    let reward = |d: &[usize]| {
        (0..space.branches())
            .filter(|&b| b > 0 && d[2 * b] == b)
            .count() as f64
            / (space.branches() - 1) as f64
    };
    let mean =
        |c: &mut Controller| (0..40).map(|_| reward(&c.sample().decisions)).sum::<f64>() / 40.0;
    let before = mean(&mut c);
    for _ in 0..60 {
        let batch: Vec<Episode> = (0..8)
            .map(|_| {
                let s = c.sample();
                let r = reward(&s.decisions);
                Episode::new(s, r)
            })
            .collect();
        c.reinforce(&batch).unwrap();
    }
    let after = mean(&mut c);
    eprintln!("mean reward {before:.2} -> {after:.2} over {decisions:?}");
    assert!(after > before + 0.3, "{before} -> {after}");
}

#[test]
fn a_saved_attention_controller_continues_like_the_original() {
    let mut a = graph_controller(ControllerConfig::default(), 5);
    let update = |c: &mut Controller, k: usize| {
        let batch: Vec<Episode> = (0..3)
            .map(|i| {
                let s = c.sample();
                let r = (s.decisions[0] + s.decisions[6] + i + k) as f64;
                Episode::new(s, r)
            })
            .collect();
        c.reinforce(&batch).unwrap()
    };
    for k in 0..3 {
        update(&mut a, k);
    }
    let json = serde_json::to_string(&a).unwrap();
    let mut b: Controller = serde_json::from_str(&json).unwrap();
    assert_eq!(b.graph(), a.graph());
    for k in 3..6 {
        assert_eq!(update(&mut a, k), update(&mut b, k));
    }
    assert_eq!(a.sample(), b.sample());
}

#[test]
fn a_graph_that_does_not_fit_the_decisions_is_refused() {
    let (mut decisions, graph) = small_graph();
    decisions[0] = 4;
    let e = Controller::<DefaultBackend>::with_graph_on(
        &decisions,
        Some(graph),
        ControllerConfig::default(),
        0,
        Default::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, StrategyError::Controller(ref m) if m.contains("decision 0")),
        "{e}"
    );
}

/// A space whose only choices are links (NAS-RL with one size of everything) still learns:
/// the update does not skip the attention's parameters for want of a softmax head.
#[test]
fn a_controller_of_links_only_learns() {
    use nas_space::TextFormat;
    use nas_space::nasrl::NasRlSpace;
    let space = NasRlSpace::new(4, &[3], &[3], &[32], &[1]).unwrap();
    let config = ControllerConfig {
        learning_rate: 0.05,
        ..ControllerConfig::default()
    };
    let mut c = Controller::<DefaultBackend>::for_space(&space, config, 2).unwrap();
    assert!(c.graph().is_some());
    assert_eq!(c.head_sizes.len(), 0);
    // Reward: every skip connection taken.
    let reward = |d: &[usize]| d.iter().filter(|&&x| x == 1).count() as f64 / 6.0;
    let all_links = space
        .to_decisions(
            &space
                .parse("3x3x32s1[] 3x3x32s1[1] 3x3x32s1[1,2] 3x3x32s1[1,2,3]")
                .unwrap(),
        )
        .unwrap();
    let before = c.log_probs(std::slice::from_ref(&all_links)).unwrap()[0];
    for _ in 0..20 {
        let batch: Vec<Episode> = (0..8)
            .map(|_| {
                let s = c.sample();
                let r = reward(&s.decisions);
                Episode::new(s, r)
            })
            .collect();
        c.reinforce(&batch).unwrap();
    }
    let after = c.log_probs(std::slice::from_ref(&all_links)).unwrap()[0];
    assert!(
        after > before + 1.0,
        "log π(all links) {before:.3} -> {after:.3}"
    );
}

/// A controller state whose parts do not fit together, or whose record is cut short, is an
/// error when loaded, not a panic.
#[test]
fn an_edited_or_truncated_controller_state_is_an_error() {
    let a = graph_controller(ControllerConfig::default(), 5);
    let json = serde_json::to_string(&a).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = value.clone();
        f(v.as_object_mut().unwrap());
        serde_json::from_value::<Controller>(v)
    };
    assert!(
        edit(&|m| {
            m.remove("attention");
        })
        .is_err()
    );
    assert!(
        edit(&|m| {
            m.remove("graph");
        })
        .is_err()
    );
    assert!(
        edit(&|m| {
            let hex = m["model"].as_str().unwrap().to_string();
            m.insert("model".into(), hex[..20].into());
        })
        .is_err()
    );
    // A plain controller's record against a graph's heads: the head counts differ.
    let plain = controller(&small_graph().0, ControllerConfig::default());
    let plain: serde_json::Value = serde_json::to_value(&plain).unwrap();
    assert!(
        edit(&|m| {
            m.insert("model".into(), plain["model"].clone());
        })
        .is_err()
    );
    assert!(edit(&|_| {}).is_ok());
}
