//! The controller over a [`DecisionGraph`]: choices among earlier states by attention over
//! their anchors (Zoph & Le 2017, Section 3.3; ENAS' `_build_sampler` for the micro space).
//!
//! The walk, for a batch of `m` sequences at once:
//! - a [`GraphStep::Input`] runs one LSTM step on the start vector; its output's key
//!   `W_prev·h` is the anchor's key, and its value (what a later step reads when it selects the
//!   anchor) is zero, as ENAS' for a cell's inputs;
//! - a [`GraphStep::Anchor`] runs one LSTM step on the last decision's input; its output is
//!   the anchor's value and `W_prev·h` its key; the next input is the start vector again;
//! - a categorical decision is a softmax head on the LSTM's output, and its embedding the next
//!   input;
//! - a select decision scores each candidate anchor `j` by `v·tanh(W_prev·h_j + W_curr·h)`
//!   (the logits, then the temperature and tanh of the configuration), and the chosen anchor's
//!   value is the next input;
//! - a link decision's probability of yes is the sigmoid of that score for its one anchor
//!   (after the temperature and tanh: a softmax over `[0, score]`), and the embedding of yes
//!   or no the next input.
//!
//! The excluded candidate of a select distinct from the previous one gets `-1e4` added to its
//! logit (probability zero in `f32` and `f16`, without the `0·∞` of an infinite mask).
//!
//! The same walk samples (one sequence, with the controller's generator) and scores a batch of
//! given sequences (teacher forcing), so the log-probabilities of both agree.

use nas_space::{DecisionGraph, DecisionKind, GraphStep};
use nas_supernet::burn;

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, LstmState};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::config::ControllerConfig;
use super::model::{ControllerModel, transform};

/// The attention's parameters: `W_prev` (the anchors' keys), `W_curr` (the query), `v` (the
/// score) and the embedding of a link's yes or no.
#[derive(Module, Debug)]
pub(super) struct Attention<B: Backend> {
    key: Linear<B>,
    query: Linear<B>,
    score: Linear<B>,
    link: Embedding<B>,
}

pub(super) fn init_attention<B: Backend>(
    config: &ControllerConfig,
    device: &B::Device,
) -> Attention<B> {
    let hidden = config.hidden_size;
    let init = Initializer::Uniform {
        min: -config.init_range,
        max: config.init_range,
    };
    let linear = |out| {
        LinearConfig::new(hidden, out)
            .with_bias(false)
            .with_initializer(init.clone())
            .init(device)
    };
    Attention {
        key: linear(hidden),
        query: linear(hidden),
        score: linear(1),
        link: EmbeddingConfig::new(2, hidden)
            .with_initializer(init.clone())
            .init(device),
    }
}

/// How the walk picks each decision.
pub(super) enum Choose<'a> {
    /// Teacher forcing: the batch's decision vectors.
    Given(&'a [Vec<usize>]),
    /// One sequence drawn with the generator.
    Sample(&'a mut ChaCha8Rng),
}

/// The result of a walk: log-probabilities and summed entropies `[m]`, and the decisions
/// (the given ones, or the sampled one).
pub(super) struct Walk<C: Backend> {
    pub(super) log_prob: Tensor<C, 1>,
    pub(super) entropy: Tensor<C, 1>,
    pub(super) decisions: Vec<Vec<usize>>,
}

/// Walks `graph` (checked against `sizes`) with `model`; `heads[d]` is the head of decision
/// `d` when it is categorical and informative.
pub(super) fn walk<C: Backend>(
    model: &ControllerModel<C>,
    attention: &Attention<C>,
    config: &ControllerConfig,
    graph: &DecisionGraph,
    sizes: &[usize],
    heads: &[Option<usize>],
    mut choose: Choose<'_>,
) -> Walk<C> {
    let m = match &choose {
        Choose::Given(d) => d.len(),
        Choose::Sample(_) => 1,
    };
    let hidden = config.hidden_size;
    let device = model.start.val().device();
    let start = model.start.val().reshape([1, hidden]).repeat_dim(0, m);
    let mut x = start.clone();
    let mut state: Option<LstmState<C, 2>> = None;
    let lstm = |x: Tensor<C, 2>, state: &mut Option<LstmState<C, 2>>| {
        let (_, s) = model.lstm.forward(x.reshape([m, 1, hidden]), state.take());
        let h = s.hidden.clone();
        *state = Some(s);
        h
    };
    let (mut keys, mut values): (Vec<Tensor<C, 2>>, Vec<Tensor<C, 2>>) = (Vec::new(), Vec::new());
    let mut out = match &choose {
        Choose::Given(d) => d.to_vec(),
        Choose::Sample(_) => vec![vec![0; sizes.len()]],
    };
    let mut log_prob = Tensor::<C, 1>::zeros([m], &device);
    let mut entropy = Tensor::<C, 1>::zeros([m], &device);
    // The anchor each sequence's previous select decision chose.
    let mut previous: Vec<usize> = vec![0; m];
    let mut d = 0;
    for step in &graph.steps {
        let kind = match step {
            GraphStep::Input => {
                let h = lstm(start.clone(), &mut state);
                keys.push(attention.key.forward(h));
                values.push(Tensor::zeros([m, hidden], &device));
                x = start.clone();
                continue;
            }
            GraphStep::Anchor => {
                let h = lstm(x, &mut state);
                keys.push(attention.key.forward(h.clone()));
                values.push(h);
                x = start.clone();
                continue;
            }
            GraphStep::Decide(kind) => kind,
        };
        // The candidates' columns for each sequence: every candidate anchor, less the one the
        // previous decision chose when this one must differ.
        let excluded: Option<Vec<usize>> = match kind {
            DecisionKind::Select {
                anchors,
                distinct_from_previous: true,
            } => Some(
                previous
                    .iter()
                    .map(|p| anchors.iter().position(|a| a == p).unwrap_or(usize::MAX))
                    .collect(),
            ),
            _ => None,
        };
        let column = |i: usize, c: usize| match &excluded {
            Some(ex) if c >= ex[i] => c + 1,
            _ => c,
        };
        if sizes[d] < 2 {
            // One choice: nothing to learn, no LSTM step (as for a plain controller).
            for (i, row) in out.iter_mut().enumerate() {
                row[d] = 0;
                if let DecisionKind::Select { anchors, .. } = kind {
                    previous[i] = anchors[column(i, 0)];
                }
            }
            d += 1;
            continue;
        }
        let h = lstm(x, &mut state);
        let logits = match kind {
            DecisionKind::Categorical => {
                let head = heads[d].expect("an informative categorical decision has a head");
                transform(config, model.heads[head].forward(h))
            }
            DecisionKind::Select { anchors, .. } => {
                let k = anchors.len();
                let candidates: Vec<Tensor<C, 2>> =
                    anchors.iter().map(|&a| keys[a].clone()).collect();
                let q = attention.query.forward(h).reshape([m, 1, hidden]);
                let e = attention
                    .score
                    .forward(Tensor::stack::<3>(candidates, 1).add(q).tanh())
                    .reshape([m, k]);
                let e = transform(config, e);
                match &excluded {
                    Some(ex) => {
                        let mask: Vec<f32> = (0..m)
                            .flat_map(|i| (0..k).map(move |j| if j == ex[i] { -1e4 } else { 0.0 }))
                            .collect();
                        e.add(Tensor::from_data(TensorData::new(mask, [m, k]), &device))
                    }
                    None => e,
                }
            }
            DecisionKind::Link { anchor } => {
                let q = attention.query.forward(h);
                let e = attention.score.forward(keys[*anchor].clone().add(q).tanh());
                let e = transform(config, e);
                Tensor::cat(vec![Tensor::zeros([m, 1], &device), e], 1)
            }
        };
        let lsm = log_softmax(logits, 1);
        let width = lsm.dims()[1];
        if let Choose::Sample(rng) = &mut choose {
            let probs: Vec<f64> = lsm.clone().exp().into_data().iter::<f64>().collect();
            let col = draw(&probs, rng);
            // the choice is the column's rank among the candidates
            out[0][d] = match &excluded {
                Some(ex) if col > ex[0] => col - 1,
                _ => col,
            };
        }
        let cols: Vec<usize> = (0..m).map(|i| column(i, out[i][d])).collect();
        let index = Tensor::<C, 2, Int>::from_data(
            TensorData::new(cols.iter().map(|&c| c as i64).collect::<Vec<_>>(), [m, 1]),
            &device,
        );
        log_prob = log_prob + lsm.clone().gather(1, index.clone()).reshape([m]);
        entropy = entropy + lsm.clone().exp().mul(lsm).sum_dim(1).neg().reshape([m]);
        debug_assert!(cols.iter().all(|&c| c < width));
        x = match kind {
            DecisionKind::Categorical => {
                let head = heads[d].expect("checked above");
                model.embeddings[head].forward(index).reshape([m, hidden])
            }
            DecisionKind::Select { anchors, .. } => {
                for (i, &c) in cols.iter().enumerate() {
                    previous[i] = anchors[c];
                }
                let candidates: Vec<Tensor<C, 2>> =
                    anchors.iter().map(|&a| values[a].clone()).collect();
                let index = index.reshape([m, 1, 1]).repeat_dim(2, hidden);
                Tensor::stack::<3>(candidates, 1)
                    .gather(1, index)
                    .reshape([m, hidden])
            }
            DecisionKind::Link { .. } => attention.link.forward(index).reshape([m, hidden]),
        };
        d += 1;
    }
    Walk {
        log_prob,
        entropy,
        decisions: out,
    }
}

/// A column drawn from `probs`; never one of probability zero.
fn draw(probs: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (k, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc && *p > 0.0 {
            return k;
        }
    }
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}
