//! Which decisions of a [`Sequential`](crate::Sequential) space choose among earlier states,
//! for a controller that makes those choices by attention (Zoph & Le 2017, Section 3.3:
//! "anchor points" and a sigmoid over an attention between them for skip connections; Pham et
//! al. 2018, ENAS: the inputs of each node chosen by attention over the earlier nodes' anchors)
//! instead of by an independent softmax head per decision.
//!
//! A [`DecisionGraph`] lists, in the order a controller walks them, the decisions of the space
//! (each with its [`DecisionKind`]) interleaved with the points where an *anchor* is made: a
//! state that later decisions may read. [`GraphStep::Input`] makes one for an input of the
//! architecture (a cell's two inputs, the backbone's features: nothing has been decided about
//! them), [`GraphStep::Anchor`] one for the node or layer whose decisions came just before.
//! Anchors are numbered from 0 in the order they are made.
//!
//! ```
//! use nas_space::dpc::DpcSpace;
//! use nas_space::{DecisionKind, GraphStep, Sequential};
//!
//! let space = DpcSpace::default();
//! let graph = space.decision_graph().expect("DPC branches choose their inputs");
//! graph.check(&space.decisions())?;
//! // The backbone's features are anchor 0; branch 0 reads them (one candidate), then picks
//! // its operation; its own output becomes anchor 1, which branch 1 may read.
//! assert_eq!(graph.steps[0], GraphStep::Input);
//! assert_eq!(graph.steps[1], GraphStep::Decide(DecisionKind::Select { anchors: vec![0], distinct_from_previous: false }));
//! assert_eq!(graph.steps[2], GraphStep::Decide(DecisionKind::Categorical));
//! assert_eq!(graph.steps[3], GraphStep::Anchor);
//! # Ok::<(), nas_space::SpaceError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::SpaceError;

/// How a controller makes one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// One of the decision's choices, from a softmax over them (an operation, a filter size).
    Categorical,
    /// Which earlier state to read: choice `k` is anchor `anchors[k]`, chosen by attention
    /// between the controller's state and each anchor (ENAS' input selection, NASNet's hidden
    /// states). With `distinct_from_previous`, the anchor the previous decision chose is not a
    /// candidate, and choice `k` is the `k`-th of the others in the order of `anchors` (a
    /// DARTS node's second input, distinct from its first); the previous decision must then be
    /// a `Select` over the same anchors.
    Select {
        /// The candidate anchors, in the order of the decision's choices.
        anchors: Vec<usize>,
        /// Whether the previous decision's anchor is excluded.
        distinct_from_previous: bool,
    },
    /// Whether to read anchor `anchor`: choice 1 is yes, 0 is no, with the probability of yes
    /// a sigmoid of the attention between the controller's state and the anchor (Zoph & Le's
    /// skip connections).
    Link {
        /// The anchor this decision links to.
        anchor: usize,
    },
}

/// One step of a [`DecisionGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraphStep {
    /// The next anchor is an input of the architecture.
    Input,
    /// The next decision of [`Sequential::decisions`](crate::Sequential::decisions), of this
    /// kind.
    Decide(DecisionKind),
    /// The next anchor is the node or layer whose decisions were just made.
    Anchor,
}

/// The decisions of a space in a controller's order, with the anchors they may read (see the
/// [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionGraph {
    /// The steps, in order; the `Decide` steps are the space's decisions, one each, in order.
    pub steps: Vec<GraphStep>,
}

impl DecisionGraph {
    /// The number of anchors the graph makes.
    pub fn anchors(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, GraphStep::Input | GraphStep::Anchor))
            .count()
    }

    /// The kind of each decision, in order.
    pub fn kinds(&self) -> Vec<&DecisionKind> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                GraphStep::Decide(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// Checks the graph against the number of choices of each decision: one `Decide` step per
    /// decision; every anchor read exists already and is read once per decision; a `Select`
    /// has as many candidates as choices (one more with `distinct_from_previous`, which must
    /// follow a `Select` over the same anchors); a `Link` has two choices. Each violation is
    /// an error naming the decision.
    pub fn check(&self, decisions: &[usize]) -> Result<(), SpaceError> {
        let err = |reason: String| Err(SpaceError::invalid("decision graph", reason));
        let kinds = self.kinds();
        if kinds.len() != decisions.len() {
            return err(format!(
                "{} decide steps for {} decisions; the graph needs one per decision",
                kinds.len(),
                decisions.len()
            ));
        }
        let (mut made, mut d) = (0usize, 0usize);
        let mut previous: Option<&DecisionKind> = None;
        for step in &self.steps {
            let kind = match step {
                GraphStep::Input | GraphStep::Anchor => {
                    made += 1;
                    continue;
                }
                GraphStep::Decide(k) => k,
            };
            let n = decisions[d];
            match kind {
                DecisionKind::Categorical => {}
                DecisionKind::Select {
                    anchors,
                    distinct_from_previous,
                } => {
                    if let Some(&a) = anchors.iter().find(|&&a| a >= made) {
                        return err(format!(
                            "decision {d} selects anchor {a}, but only {made} anchors are made before it"
                        ));
                    }
                    let mut sorted = anchors.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    if sorted.len() != anchors.len() {
                        return err(format!(
                            "decision {d} lists an anchor twice among {anchors:?}"
                        ));
                    }
                    if anchors.len() <= usize::from(*distinct_from_previous) {
                        return err(format!(
                            "decision {d} selects among no anchor; list at least one (two when \
                             it must differ from the previous decision's)"
                        ));
                    }
                    let expected = anchors.len() - usize::from(*distinct_from_previous);
                    if n != expected {
                        return err(format!(
                            "decision {d} has {n} choices but selects among {} anchors{}",
                            anchors.len(),
                            if *distinct_from_previous {
                                " less the previous decision's"
                            } else {
                                ""
                            }
                        ));
                    }
                    if *distinct_from_previous {
                        match previous {
                            Some(DecisionKind::Select { anchors: prev, .. }) if prev == anchors => {
                            }
                            _ => {
                                return err(format!(
                                    "decision {d} excludes the previous decision's anchor, so the \
                                     previous decision must select among the same anchors"
                                ));
                            }
                        }
                    }
                }
                DecisionKind::Link { anchor } => {
                    if *anchor >= made {
                        return err(format!(
                            "decision {d} links anchor {anchor}, but only {made} anchors are made before it"
                        ));
                    }
                    if n != 2 {
                        return err(format!(
                            "decision {d} is a link (yes or no) but has {n} choices"
                        ));
                    }
                }
            }
            previous = Some(kind);
            d += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sequential;
    use crate::darts::{ConcatRule, DartsConfig, DartsSpace};
    use crate::dpc::DpcSpace;
    use crate::nasnet::NasNetSpace;
    use crate::nasrl::NasRlSpace;
    use crate::nb201::Nb201Space;
    use crate::proxyless::ProxylessSpace;
    use crate::spos::SposSpace;

    #[test]
    fn the_built_in_graphs_fit_their_decisions() {
        let darts = [
            DartsConfig::default(),
            DartsConfig::enas(),
            DartsConfig::nasnet_style(),
            DartsConfig {
                concat: ConcatRule::Free,
                steps: 3,
                ..DartsConfig::default()
            },
        ];
        for c in darts {
            let s = DartsSpace::new(c).unwrap();
            let g = s.decision_graph().unwrap();
            g.check(&s.decisions()).unwrap();
            // two cells of two inputs and `steps` nodes each
            assert_eq!(g.anchors(), 2 * (2 + s.steps()));
        }
        let s = NasNetSpace::default();
        s.decision_graph().unwrap().check(&s.decisions()).unwrap();
        let s = DpcSpace::default();
        s.decision_graph().unwrap().check(&s.decisions()).unwrap();
        for layers in [1, 2, 6] {
            let s = NasRlSpace::with_layers(layers).unwrap();
            let g = s.decision_graph().unwrap();
            g.check(&s.decisions()).unwrap();
            let links = g
                .kinds()
                .iter()
                .filter(|k| matches!(k, DecisionKind::Link { .. }))
                .count();
            assert_eq!(links, layers * (layers - 1) / 2);
        }
        // Spaces without choices among earlier states have no graph.
        assert!(Nb201Space::default().decision_graph().is_none());
        assert!(ProxylessSpace::default().decision_graph().is_none());
        assert!(SposSpace::default().decision_graph().is_none());
    }

    /// A `Select` choice names the state the architecture reads: choosing the candidate that
    /// is anchor `a` yields an architecture whose input is the state anchor `a` stands for.
    #[test]
    fn select_choices_name_the_states_read() {
        let s = NasNetSpace::default();
        let g = s.decision_graph().unwrap();
        let kinds = g.kinds();
        let mut d = vec![0; kinds.len()];
        // the last block of the normal cell reads its last two candidate states
        let blocks = s.config().blocks;
        let first = 5 * (blocks - 1);
        d[first] = blocks;
        d[first + 1] = blocks - 1;
        let arch = s.from_decisions(&d).unwrap();
        assert_eq!(arch.normal[blocks - 1].inputs, [blocks, blocks - 1]);
        match kinds[first] {
            DecisionKind::Select { anchors, .. } => {
                // the normal cell's anchors are its two inputs (0, 1), then its blocks (2, ...)
                assert_eq!(anchors, &(0..blocks + 1).collect::<Vec<_>>());
            }
            k => panic!("expected a select, found {k:?}"),
        }
        // DARTS with distinct inputs: the second input is ranked among the others
        let s = DartsSpace::default();
        let g = s.decision_graph().unwrap();
        match g.kinds()[1] {
            DecisionKind::Select {
                anchors,
                distinct_from_previous,
            } => {
                assert_eq!(anchors, &vec![0, 1]);
                assert!(*distinct_from_previous);
            }
            k => panic!("expected a select, found {k:?}"),
        }
    }

    /// Every select decision of random decision vectors names, through its anchor, the state
    /// the decoded architecture reads, in both cells (the reduction cell's anchors start after
    /// the normal cell's); NAS-RL's links name the layers read.
    #[test]
    fn select_and_link_anchors_match_the_decoded_architectures() {
        use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut random = |sizes: &[usize]| -> Vec<usize> {
            sizes.iter().map(|&n| rng.random_range(0..n)).collect()
        };
        // The anchor chosen by each select decision, in decision order.
        let chosen = |g: &DecisionGraph, d: &[usize]| -> Vec<usize> {
            let mut out = Vec::new();
            let mut previous = 0;
            for (kind, &c) in g.kinds().iter().zip(d) {
                if let DecisionKind::Select {
                    anchors,
                    distinct_from_previous,
                } = kind
                {
                    let mut candidates = anchors.clone();
                    if *distinct_from_previous {
                        candidates.retain(|&a| a != previous);
                    }
                    previous = candidates[c];
                    out.push(previous);
                }
            }
            out
        };
        for config in [DartsConfig::default(), DartsConfig::enas()] {
            let s = DartsSpace::new(config).unwrap();
            let g = s.decision_graph().unwrap();
            let base = s.steps() + 2;
            for _ in 0..50 {
                let d = random(&s.decisions());
                let arch = s.from_decisions(&d).unwrap();
                let read: Vec<usize> = arch
                    .normal
                    .iter()
                    .map(|&(_, i)| i)
                    .chain(arch.reduce.iter().map(|&(_, i)| i + base))
                    .collect();
                assert_eq!(chosen(&g, &d), read);
            }
        }
        let s = NasNetSpace::default();
        let g = s.decision_graph().unwrap();
        let base = s.config().blocks + 2;
        for _ in 0..50 {
            let d = random(&s.decisions());
            let arch = s.from_decisions(&d).unwrap();
            let read: Vec<usize> = arch
                .normal
                .iter()
                .flat_map(|b| b.inputs)
                .chain(arch.reduce.iter().flat_map(|b| b.inputs.map(|i| i + base)))
                .collect();
            assert_eq!(chosen(&g, &d), read);
        }
        let s = DpcSpace::default();
        let g = s.decision_graph().unwrap();
        for _ in 0..50 {
            let d = random(&s.decisions());
            let arch = s.from_decisions(&d).unwrap();
            let read: Vec<usize> = arch.branches.iter().map(|b| b.input).collect();
            assert_eq!(chosen(&g, &d), read);
        }
        let s = NasRlSpace::with_layers(5).unwrap();
        let g = s.decision_graph().unwrap();
        for _ in 0..50 {
            let d = random(&s.decisions());
            let arch = s.from_decisions(&d).unwrap();
            let mut linked: Vec<Vec<usize>> = vec![Vec::new(); 5];
            let mut layer = 0;
            let mut d_index = 0;
            for step in &g.steps {
                match step {
                    GraphStep::Anchor => layer += 1,
                    GraphStep::Input => {}
                    GraphStep::Decide(kind) => {
                        if let DecisionKind::Link { anchor } = kind
                            && d[d_index] == 1
                        {
                            linked[layer].push(anchor + 1);
                        }
                        d_index += 1;
                    }
                }
            }
            let read: Vec<Vec<usize>> = arch.layers.iter().map(|l| l.inputs.clone()).collect();
            assert_eq!(linked, read);
        }
    }

    #[test]
    fn inconsistent_graphs_are_refused_with_the_decision_named() {
        use DecisionKind::*;
        use GraphStep::*;
        let g = |steps: Vec<GraphStep>| DecisionGraph { steps };
        let sel = |anchors: Vec<usize>, distinct_from_previous| {
            Decide(Select {
                anchors,
                distinct_from_previous,
            })
        };
        let cases = [
            (
                g(vec![Decide(Categorical)]),
                vec![3, 2],
                "1 decide steps for 2",
            ),
            (
                g(vec![Input, sel(vec![0, 1], false)]),
                vec![2],
                "only 1 anchors",
            ),
            (
                g(vec![Input, Input, sel(vec![0, 1], false)]),
                vec![3],
                "3 choices",
            ),
            (
                g(vec![Input, Input, sel(vec![1, 1], false)]),
                vec![2],
                "twice",
            ),
            (
                g(vec![
                    Input,
                    Input,
                    Decide(Categorical),
                    sel(vec![0, 1], true),
                ]),
                vec![3, 1],
                "previous decision must select",
            ),
            (g(vec![Input, Decide(Link { anchor: 0 })]), vec![3], "link"),
            (
                g(vec![Decide(Link { anchor: 0 })]),
                vec![2],
                "only 0 anchors",
            ),
        ];
        for (graph, decisions, expected) in cases {
            let e = graph.check(&decisions).unwrap_err().to_string();
            assert!(e.contains(expected), "{e} (expected {expected:?})");
        }
        g(vec![
            Input,
            Input,
            sel(vec![0, 1], false),
            sel(vec![0, 1], true),
            Anchor,
            Decide(Link { anchor: 2 }),
        ])
        .check(&[2, 1, 2])
        .unwrap();
    }
}
