//! [`Sequential`] for the built-in spaces: each space as the sequence of categorical decisions
//! an RNN controller samples one at a time.
//!
//! | space | decisions, in order | choices |
//! | --- | --- | --- |
//! | NAS-Bench-201 | the operation of each edge, in string order | the number of operations |
//! | DARTS | per cell (normal, then reduce), per node `i`: first input, second input, first operation, second operation; then the concat if it is free | `i + 2`; `i + 1` with distinct inputs (the second input is ranked among the states other than the first), else `i + 2`; the number of operations, twice; concat `2^steps − 1` (a non-empty subset) |
//! | NASNet | per cell (normal, then reduce), per block `b`: the two hidden states, the two operations, the combiner (the paper's order) | `b + 2` twice, the number of operations twice, the number of combiners |
//! | ProxylessNAS | the block of each layer | the layer's choices (`zero` last where the layer may be skipped) |
//! | SPOS | the block of each layer | 4 |
//! | NAS-RL | per layer: filter height, filter width, number of filters, stride, then one yes/no per earlier layer (does this layer read it?) | the sizes of the sets; 2 |
//! | DPC | per branch `b` (0-based): its input, its operation | `b + 1`, the number of operations |
//!
//! NAS-RL's skip connections are yes/no decisions, one per earlier layer. Zoph & Le compute
//! them with a sigmoid over an attention between anchor points (one per earlier layer), and
//! ENAS chooses a node's inputs by attention over the earlier nodes: the spaces whose
//! decisions choose among earlier states (DARTS, NASNet, NAS-RL, DPC) say which in
//! [`Sequential::decision_graph`], and the controller of `nas-strategy` uses it.

use crate::SpaceError;
use crate::darts::{ConcatRule, DartsSpace, Genotype, unused_states};
use crate::dpc::{DpcArch, DpcBranch, DpcSpace};
use crate::nasnet::{NasNetArch, NasNetBlock, NasNetSpace};
use crate::nasrl::{NasRlArch, NasRlLayer, NasRlSpace};
use crate::nb201::{EDGES, Nb201Arch, Nb201Op, Nb201Space};
use crate::proxyless::{ProxylessArch, ProxylessSpace};
use crate::spos::{SposArch, SposChoice, SposSpace};
use crate::traits::{SearchSpace, Sequential, check_choices};
use crate::{DecisionGraph, DecisionKind, GraphStep};

/// A `Select` step among `anchors`.
fn select(anchors: std::ops::Range<usize>, distinct_from_previous: bool) -> GraphStep {
    GraphStep::Decide(DecisionKind::Select {
        anchors: anchors.collect(),
        distinct_from_previous,
    })
}

const CATEGORICAL: GraphStep = GraphStep::Decide(DecisionKind::Categorical);

/// The position of `x` in `options`, or an error naming `what`.
fn position<T: PartialEq + std::fmt::Debug>(
    space: &str,
    options: &[T],
    x: &T,
    what: &str,
) -> Result<usize, SpaceError> {
    options.iter().position(|o| o == x).ok_or_else(|| {
        SpaceError::invalid(space, format!("{what} {x:?} is not one of {options:?}"))
    })
}

impl Sequential for Nb201Space {
    /// Six decisions (the edges in string order: `1←0`, `2←0`, `2←1`, `3←0`, `3←1`, `3←2`),
    /// each the position of the edge's operation in [`Nb201Space::ops`].
    fn decisions(&self) -> Vec<usize> {
        vec![self.ops().len(); EDGES]
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<Nb201Arch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        let mut edges = [Nb201Op::None; EDGES];
        for (e, &c) in edges.iter_mut().zip(choices) {
            *e = self.ops()[c];
        }
        Ok(Nb201Arch { edges })
    }

    fn to_decisions(&self, arch: &Nb201Arch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        arch.edges
            .iter()
            .map(|op| position(self.name(), self.ops(), op, "operation"))
            .collect()
    }
}

impl DartsSpace {
    fn cell_decisions(&self) -> Vec<usize> {
        let (steps, ops) = (self.steps(), self.ops().len());
        let mut d = Vec::with_capacity(4 * steps + 1);
        for i in 0..steps {
            let n = i + 2;
            let second = if self.config().distinct_inputs {
                n - 1
            } else {
                n
            };
            d.extend([n, second, ops, ops]);
        }
        if self.config().concat == ConcatRule::Free {
            d.push((1 << steps) - 1);
        }
        d
    }

    fn cell_from_choices(&self, c: &[usize]) -> (Vec<(crate::darts::DartsOp, usize)>, Vec<usize>) {
        let steps = self.steps();
        let mut cell = Vec::with_capacity(2 * steps);
        for i in 0..steps {
            let x = &c[4 * i..4 * i + 4];
            let a = x[0];
            let b = if self.config().distinct_inputs && x[1] >= a {
                x[1] + 1
            } else {
                x[1]
            };
            cell.push((self.ops()[x[2]], a));
            cell.push((self.ops()[x[3]], b));
        }
        let concat = match self.config().concat {
            ConcatRule::All => (2..steps + 2).collect(),
            ConcatRule::Unused => unused_states(&cell),
            ConcatRule::Free => {
                let mask = c[4 * steps] + 1;
                (0..steps)
                    .filter(|s| mask & (1 << s) != 0)
                    .map(|s| s + 2)
                    .collect()
            }
        };
        (cell, concat)
    }

    fn cell_choices(
        &self,
        cell: &[(crate::darts::DartsOp, usize)],
        concat: &[usize],
    ) -> Result<Vec<usize>, SpaceError> {
        let mut d = Vec::with_capacity(4 * self.steps() + 1);
        for node in cell.chunks(2) {
            let (a, b) = (node[0].1, node[1].1);
            let b = if self.config().distinct_inputs && b > a {
                b - 1
            } else {
                b
            };
            d.push(a);
            d.push(b);
            for &(op, _) in node {
                d.push(position(self.name(), self.ops(), &op, "operation")?);
            }
        }
        if self.config().concat == ConcatRule::Free {
            let mask: usize = concat.iter().map(|&s| 1 << (s - 2)).sum();
            d.push(mask - 1);
        }
        Ok(d)
    }
}

impl Sequential for DartsSpace {
    /// The normal cell's decisions, then the reduction cell's. Per intermediate node `i`
    /// (0-based, reading states `0..i + 2`): the first input's state, the second input's
    /// (with distinct inputs, its rank among the states other than the first), the first
    /// operation, the second operation (positions in [`DartsSpace::ops`]); ENAS' order. Under
    /// [`ConcatRule::Free`] each cell ends with its concat: the bit mask of the states minus
    /// one.
    fn decisions(&self) -> Vec<usize> {
        let cell = self.cell_decisions();
        cell.iter().chain(&cell).copied().collect()
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<Genotype, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        let (normal, reduce) = choices.split_at(choices.len() / 2);
        let (normal, normal_concat) = self.cell_from_choices(normal);
        let (reduce, reduce_concat) = self.cell_from_choices(reduce);
        Ok(Genotype {
            normal,
            normal_concat,
            reduce,
            reduce_concat,
        })
    }

    fn to_decisions(&self, arch: &Genotype) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        let mut d = self.cell_choices(&arch.normal, &arch.normal_concat)?;
        d.extend(self.cell_choices(&arch.reduce, &arch.reduce_concat)?);
        Ok(d)
    }

    /// Per cell: its two inputs are anchors, then per node the two inputs select among the
    /// cell's states so far (the second distinct from the first where the space asks it), the
    /// two operations are categorical, and the node becomes an anchor; a free concat is
    /// categorical (ENAS' controller, per cell).
    fn decision_graph(&self) -> Option<DecisionGraph> {
        let distinct = self.config().distinct_inputs;
        let mut steps = Vec::new();
        for cell in 0..2 {
            let base = cell * (self.steps() + 2);
            steps.extend([GraphStep::Input, GraphStep::Input]);
            for i in 0..self.steps() {
                let states = base..base + i + 2;
                steps.extend([
                    select(states.clone(), false),
                    select(states, distinct),
                    CATEGORICAL,
                    CATEGORICAL,
                    GraphStep::Anchor,
                ]);
            }
            if self.config().concat == ConcatRule::Free {
                steps.push(CATEGORICAL);
            }
        }
        Some(DecisionGraph { steps })
    }
}

impl NasNetSpace {
    fn cell_decisions(&self) -> Vec<usize> {
        let c = self.config();
        (0..c.blocks)
            .flat_map(|b| [b + 2, b + 2, c.ops.len(), c.ops.len(), c.combiners.len()])
            .collect()
    }

    fn cell_choices(&self, cell: &[NasNetBlock]) -> Result<Vec<usize>, SpaceError> {
        let c = self.config();
        let mut d = Vec::with_capacity(5 * cell.len());
        for block in cell {
            d.extend(block.inputs);
            for op in &block.ops {
                d.push(position(self.name(), &c.ops, op, "operation")?);
            }
            d.push(position(
                self.name(),
                &c.combiners,
                &block.combine,
                "combiner",
            )?);
        }
        Ok(d)
    }

    fn cell_from_choices(&self, d: &[usize]) -> Vec<NasNetBlock> {
        let c = self.config();
        d.chunks(5)
            .map(|x| NasNetBlock {
                inputs: [x[0], x[1]],
                ops: [c.ops[x[2]], c.ops[x[3]]],
                combine: c.combiners[x[4]],
            })
            .collect()
    }
}

impl Sequential for NasNetSpace {
    /// The normal cell's decisions, then the reduction cell's; per block `b` (0-based) the
    /// paper's five: the hidden state of each branch (`0..b + 2`), the operation of each
    /// branch and the combiner (positions in the configuration's lists).
    fn decisions(&self) -> Vec<usize> {
        let cell = self.cell_decisions();
        cell.iter().chain(&cell).copied().collect()
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<NasNetArch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        let (normal, reduce) = choices.split_at(choices.len() / 2);
        Ok(NasNetArch {
            normal: self.cell_from_choices(normal),
            reduce: self.cell_from_choices(reduce),
        })
    }

    fn to_decisions(&self, arch: &NasNetArch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        let mut d = self.cell_choices(&arch.normal)?;
        d.extend(self.cell_choices(&arch.reduce)?);
        Ok(d)
    }

    /// Per cell: its two inputs are anchors, then per block the two hidden states select
    /// among the cell's states so far, the operations and the combiner are categorical, and
    /// the block becomes an anchor.
    fn decision_graph(&self) -> Option<DecisionGraph> {
        let blocks = self.config().blocks;
        let mut steps = Vec::new();
        for cell in 0..2 {
            let base = cell * (blocks + 2);
            steps.extend([GraphStep::Input, GraphStep::Input]);
            for b in 0..blocks {
                let states = base..base + b + 2;
                steps.extend([
                    select(states.clone(), false),
                    select(states, false),
                    CATEGORICAL,
                    CATEGORICAL,
                    CATEGORICAL,
                    GraphStep::Anchor,
                ]);
            }
        }
        Some(DecisionGraph { steps })
    }
}

impl Sequential for ProxylessSpace {
    /// One decision per layer: the position of its block in
    /// [`ProxylessSpace::layer_choices`].
    fn decisions(&self) -> Vec<usize> {
        (0..self.num_layers())
            .map(|l| self.layer_choices(l).len())
            .collect()
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<ProxylessArch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        Ok(ProxylessArch {
            layers: choices
                .iter()
                .enumerate()
                .map(|(l, &c)| self.layer_choices(l)[c])
                .collect(),
        })
    }

    fn to_decisions(&self, arch: &ProxylessArch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        arch.layers
            .iter()
            .enumerate()
            .map(|(l, c)| position(self.name(), &self.layer_choices(l), c, "block"))
            .collect()
    }
}

impl Sequential for SposSpace {
    /// One decision per layer: the block's index in [`SposChoice::ALL`].
    fn decisions(&self) -> Vec<usize> {
        vec![SposChoice::ALL.len(); self.num_layers()]
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<SposArch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        Ok(SposArch {
            choices: choices.iter().map(|&c| SposChoice::ALL[c]).collect(),
        })
    }

    fn to_decisions(&self, arch: &SposArch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        Ok(arch.to_indices())
    }
}

impl Sequential for NasRlSpace {
    /// Per layer `l` (0-based): the positions of its filter height, filter width, number of
    /// filters and stride in the space's lists, then `l` yes/no decisions (1 = yes), one per
    /// earlier layer from the first: whether layer `l` reads it. Decisions with one option (the
    /// stride, unless strides are searched) are kept, with one choice.
    fn decisions(&self) -> Vec<usize> {
        let values = [
            self.heights().len(),
            self.widths().len(),
            self.filters().len(),
            self.strides().len(),
        ];
        (0..self.layers())
            .flat_map(|l| values.into_iter().chain(std::iter::repeat_n(2, l)))
            .collect()
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<NasRlArch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        let mut rest = choices;
        let mut layers = Vec::with_capacity(self.layers());
        for l in 0..self.layers() {
            let (head, tail) = rest.split_at(4 + l);
            rest = tail;
            layers.push(NasRlLayer {
                filter_height: self.heights()[head[0]],
                filter_width: self.widths()[head[1]],
                filters: self.filters()[head[2]],
                stride: self.strides()[head[3]],
                inputs: (0..l)
                    .filter(|&j| head[4 + j] == 1)
                    .map(|j| j + 1)
                    .collect(),
            });
        }
        Ok(NasRlArch { layers })
    }

    fn to_decisions(&self, arch: &NasRlArch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        let mut d = Vec::new();
        for (l, layer) in arch.layers.iter().enumerate() {
            let name = self.name();
            d.push(position(
                name,
                self.heights(),
                &layer.filter_height,
                "filter height",
            )?);
            d.push(position(
                name,
                self.widths(),
                &layer.filter_width,
                "filter width",
            )?);
            d.push(position(name, self.filters(), &layer.filters, "filters")?);
            d.push(position(name, self.strides(), &layer.stride, "stride")?);
            d.extend((1..=l).map(|j| usize::from(layer.inputs.contains(&j))));
        }
        Ok(d)
    }

    /// Per layer: the four sizes are categorical, each earlier layer `j` is a link to anchor
    /// `j` (Zoph & Le's skip connections: a sigmoid of the attention between this layer's
    /// state and layer `j`'s anchor point), and the layer becomes an anchor.
    fn decision_graph(&self) -> Option<DecisionGraph> {
        let mut steps = Vec::new();
        for l in 0..self.layers() {
            steps.extend([CATEGORICAL; 4]);
            steps.extend((0..l).map(|anchor| GraphStep::Decide(DecisionKind::Link { anchor })));
            steps.push(GraphStep::Anchor);
        }
        Some(DecisionGraph { steps })
    }
}

impl Sequential for DpcSpace {
    /// Per branch `b` (0-based): its input (`0` the backbone, `k` branch `k`, so `b + 1`
    /// choices), then the position of its operation in [`DpcSpace::ops`].
    fn decisions(&self) -> Vec<usize> {
        (0..self.branches())
            .flat_map(|b| [b + 1, self.ops().len()])
            .collect()
    }

    fn from_decisions(&self, choices: &[usize]) -> Result<DpcArch, SpaceError> {
        check_choices(self.name(), &self.decisions(), choices)?;
        Ok(DpcArch {
            branches: choices
                .chunks(2)
                .map(|x| DpcBranch {
                    input: x[0],
                    op: self.ops()[x[1]],
                })
                .collect(),
        })
    }

    fn to_decisions(&self, arch: &DpcArch) -> Result<Vec<usize>, SpaceError> {
        self.validate(arch)?;
        let mut d = Vec::with_capacity(2 * arch.branches.len());
        for b in &arch.branches {
            d.push(b.input);
            d.push(position(self.name(), self.ops(), &b.op, "operation")?);
        }
        Ok(d)
    }

    /// The backbone's features are anchor 0; per branch `b`, its input selects among anchors
    /// `0..=b`, its operation is categorical, and the branch becomes anchor `b + 1`.
    fn decision_graph(&self) -> Option<DecisionGraph> {
        let mut steps = vec![GraphStep::Input];
        for b in 0..self.branches() {
            steps.extend([select(0..b + 1, false), CATEGORICAL, GraphStep::Anchor]);
        }
        Some(DecisionGraph { steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::darts::DartsConfig;
    use crate::laws;
    use crate::nasnet::NasNetConfig;
    use crate::nasrl::SEARCHED_STRIDES;
    use crate::proxyless::ProxylessConfig;

    #[test]
    fn every_built_in_space_keeps_the_laws() {
        let free = DartsSpace::new(DartsConfig {
            concat: ConcatRule::Free,
            steps: 3,
            ..DartsConfig::default()
        })
        .unwrap();
        laws::check_sequential(&Nb201Space::default(), 1, 200).unwrap();
        laws::check_sequential(
            &Nb201Space::with_ops(&[Nb201Op::NorConv3x3]).unwrap(),
            1,
            10,
        )
        .unwrap();
        laws::check_sequential(&DartsSpace::default(), 2, 200).unwrap();
        laws::check_sequential(&free, 3, 200).unwrap();
        laws::check_sequential(
            &DartsSpace::new(DartsConfig::nasnet_style()).unwrap(),
            4,
            200,
        )
        .unwrap();
        laws::check_sequential(&DartsSpace::new(DartsConfig::enas()).unwrap(), 6, 200).unwrap();
        laws::check_sequential(&NasNetSpace::default(), 5, 200).unwrap();
        let add_only = NasNetConfig {
            combiners: vec![crate::nasnet::Combiner::Add],
            ..NasNetConfig::default()
        };
        laws::check_sequential(&NasNetSpace::new(add_only).unwrap(), 5, 50).unwrap();
        laws::check_sequential(&ProxylessSpace::default(), 6, 200).unwrap();
        laws::check_sequential(
            &ProxylessSpace::new(ProxylessConfig::cifar()).unwrap(),
            6,
            50,
        )
        .unwrap();
        laws::check_sequential(&SposSpace::default(), 7, 200).unwrap();
        laws::check_sequential(&NasRlSpace::default(), 8, 100).unwrap();
        laws::check_sequential(
            &NasRlSpace::with_layers(4)
                .unwrap()
                .with_strides(&SEARCHED_STRIDES)
                .unwrap(),
            8,
            100,
        )
        .unwrap();
        laws::check_sequential(&DpcSpace::default(), 9, 200).unwrap();
    }

    #[test]
    fn decision_counts_follow_the_papers() {
        assert_eq!(Nb201Space::default().decisions(), vec![5; 6]);
        let darts = DartsSpace::default().decisions();
        // 2 cells × 4 nodes × 4 decisions; node 0 reads 2 states, distinct inputs.
        assert_eq!(darts.len(), 32);
        assert_eq!(&darts[..8], &[2, 1, 7, 7, 3, 2, 7, 7]);
        assert_eq!(
            &NasNetSpace::default().decisions()[..10],
            &[2, 2, 13, 13, 2, 3, 3, 13, 13, 2]
        );
        // 15 layers × 4 values + 105 skip decisions.
        let nasrl = NasRlSpace::default().decisions();
        assert_eq!(nasrl.len(), 60 + 105);
        assert_eq!(&nasrl[..9], &[4, 4, 4, 1, 4, 4, 4, 1, 2]);
        assert_eq!(&DpcSpace::default().decisions()[..4], &[1, 81, 2, 81]);
        assert_eq!(SposSpace::default().decisions(), vec![4; 20]);
        let free = DartsSpace::new(DartsConfig {
            concat: ConcatRule::Free,
            ..DartsConfig::default()
        })
        .unwrap();
        assert_eq!(free.decisions()[16], 15);
    }

    #[test]
    fn choices_map_to_the_expected_architectures() {
        let space = DartsSpace::default();
        let mut c = vec![0; 32];
        // Node 0 of the normal cell: inputs 1 and 0 (rank 0 among the states other than 1).
        c[0] = 1;
        c[2] = 3;
        let g = space.from_decisions(&c).unwrap();
        assert_eq!(g.normal[0].1, 1);
        assert_eq!(g.normal[1].1, 0);
        assert_eq!(g.normal[0].0, space.ops()[3]);
        assert_eq!(space.to_decisions(&g).unwrap(), c);

        let nasrl = NasRlSpace::with_layers(3).unwrap();
        let mut c = vec![0; nasrl.decisions().len()];
        // Layer 3 (0-based 2) reads layer 1: its first skip decision.
        c[4 + 5 + 4] = 1;
        let a = nasrl.from_decisions(&c).unwrap();
        assert_eq!(a.layers[2].inputs, vec![1]);
        assert!(a.layers[1].inputs.is_empty());

        let err = Nb201Space::default().from_decisions(&[0; 5]).unwrap_err();
        assert!(err.to_string().contains("expected 6 decisions"), "{err}");
    }
}
