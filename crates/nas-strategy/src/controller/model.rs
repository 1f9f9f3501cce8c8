//! The controller's network (a start vector, an LSTM, per head an embedding and a linear
//! layer), its initialization and optimizer, and the teacher-forced pass over a batch.

use std::collections::BTreeMap;

use nas_supernet::burn;

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, Lstm, LstmConfig};
use burn::optim::Adam;
use burn::optim::AdamConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use super::config::{ControllerConfig, HeadSharing};

/// The controller's network: a start vector, one LSTM, and per head an embedding of its
/// choices and a linear layer to their logits.
#[derive(Module, Debug)]
pub(super) struct ControllerModel<B: Backend> {
    pub(super) start: Param<Tensor<B, 2>>,
    pub(super) lstm: Lstm<B>,
    pub(super) embeddings: Vec<Embedding<B>>,
    pub(super) heads: Vec<Linear<B>>,
}

/// All of the controller's parameters: the network, and the attention over anchors of a
/// controller over a decision graph. (Two records, so that a controller saved before the
/// attention existed loads unchanged.)
#[derive(Module, Debug)]
pub(super) struct ControllerNet<B: Backend> {
    pub(super) base: ControllerModel<B>,
    pub(super) attention: Option<super::graph::Attention<B>>,
}

/// The controller's optimizer.
/// Adam after clipping the gradients to a global L2 norm (ENAS' `clip_by_global_norm`; Burn's
/// own `GradientClippingConfig::Norm` would clip each parameter tensor on its own).
pub(super) type Optim<B> =
    nas_supernet::grad::ClipGlobalNorm<OptimizerAdaptor<Adam, ControllerNet<B>, B>>;

/// The informative steps and the head sizes of `decisions`; only the decisions for which
/// `categorical(d)` holds get a head (the others are made by attention).
pub(super) fn plan(
    decisions: &[usize],
    heads: HeadSharing,
    categorical: impl Fn(usize) -> bool,
) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut steps = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut by_count = BTreeMap::new();
    for (d, &n) in decisions.iter().enumerate() {
        if n < 2 || !categorical(d) {
            continue;
        }
        let h = match heads {
            HeadSharing::PerDecision => {
                sizes.push(n);
                sizes.len() - 1
            }
            HeadSharing::ByChoiceCount => *by_count.entry(n).or_insert_with(|| {
                sizes.push(n);
                sizes.len() - 1
            }),
        };
        steps.push((d, h));
    }
    (steps, sizes)
}

/// Log-probabilities and summed entropies `[M]` of a batch, teacher-forced in one pass:
/// `steps` are the informative decisions with their head, `head_sizes` the heads' numbers
/// of choices.
pub(super) fn evaluate<C: Backend>(
    model: &ControllerModel<C>,
    config: &ControllerConfig,
    steps: &[(usize, usize)],
    head_sizes: &[usize],
    decisions: &[Vec<usize>],
) -> (Tensor<C, 1>, Tensor<C, 1>) {
    let m = decisions.len();
    let device = model.start.val().device();
    if steps.is_empty() {
        let zeros = Tensor::<C, 1>::zeros([m], &device);
        return (zeros.clone(), zeros);
    }
    let hidden = config.hidden_size;
    let ids = |d: usize| {
        let v: Vec<i64> = decisions.iter().map(|x| x[d] as i64).collect();
        Tensor::<C, 2, Int>::from_data(TensorData::new(v, [m, 1]), &device)
    };
    let mut inputs = vec![model.start.val().reshape([1, 1, hidden]).repeat_dim(0, m)];
    for w in steps.windows(2) {
        let (d, h) = w[0];
        inputs.push(model.embeddings[h].forward(ids(d)));
    }
    let (out, _) = model.lstm.forward(Tensor::cat(inputs, 1), None);
    let mut log_prob = Tensor::<C, 1>::zeros([m], &device);
    let mut entropy = Tensor::<C, 1>::zeros([m], &device);
    for (h, &size) in head_sizes.iter().enumerate() {
        let ts: Vec<usize> = (0..steps.len()).filter(|&t| steps[t].1 == h).collect();
        let n = ts.len();
        let index = Tensor::<C, 1, Int>::from_data(
            TensorData::new(ts.iter().map(|&t| t as i64).collect::<Vec<_>>(), [n]),
            &device,
        );
        let rows = out.clone().select(1, index).reshape([m * n, hidden]);
        let logits = transform(config, model.heads[h].forward(rows));
        let lsm = log_softmax(logits, 1);
        let targets: Vec<i64> = decisions
            .iter()
            .flat_map(|x| ts.iter().map(move |&t| x[steps[t].0] as i64))
            .collect();
        let targets = Tensor::<C, 2, Int>::from_data(TensorData::new(targets, [m * n, 1]), &device);
        let lp = lsm.clone().gather(1, targets).reshape([m, n]).sum_dim(1);
        let ent = lsm
            .clone()
            .exp()
            .mul(lsm)
            .sum_dim(1)
            .neg()
            .reshape([m, n])
            .sum_dim(1);
        debug_assert_eq!(lp.dims(), [m, 1], "head of {size} choices");
        log_prob = log_prob + lp.reshape([m]);
        entropy = entropy + ent.reshape([m]);
    }
    (log_prob, entropy)
}

/// Temperature and tanh squashing of logits.
pub(super) fn transform<C: Backend>(
    config: &ControllerConfig,
    logits: Tensor<C, 2>,
) -> Tensor<C, 2> {
    let logits = match config.temperature {
        Some(t) => logits.div_scalar(t),
        None => logits,
    };
    match config.tanh_constant {
        Some(c) => logits.tanh().mul_scalar(c),
        None => logits,
    }
}

pub(super) fn init_model<B: Backend>(
    config: &ControllerConfig,
    head_sizes: &[usize],
    attention: bool,
    device: &B::Device,
) -> ControllerNet<B> {
    let hidden = config.hidden_size;
    let init = Initializer::Uniform {
        min: -config.init_range,
        max: config.init_range,
    };
    let base = ControllerModel {
        start: init.init([1, hidden], device),
        lstm: LstmConfig::new(hidden, hidden, true)
            .with_initializer(init.clone())
            .init(device),
        embeddings: head_sizes
            .iter()
            .map(|&n| {
                EmbeddingConfig::new(n, hidden)
                    .with_initializer(init.clone())
                    .init(device)
            })
            .collect(),
        heads: head_sizes
            .iter()
            .map(|&n| {
                LinearConfig::new(hidden, n)
                    .with_initializer(init.clone())
                    .init(device)
            })
            .collect(),
    };
    ControllerNet {
        base,
        attention: attention.then(|| super::graph::init_attention(config, device)),
    }
}

pub(super) fn optimizer<B: AutodiffBackend>(config: &ControllerConfig) -> Optim<B> {
    nas_supernet::grad::ClipGlobalNorm::new(AdamConfig::new().init(), config.grad_clip_norm)
}
