//! Batch-norm recalibration: recomputing the running statistics of a path before it is scored.
//!
//! While a supernet trains, every batch norm's running mean and variance mix the statistics of
//! whatever paths went through it; an architecture scored with those statistics is scored
//! unfairly. SPOS (`bn_calibration_init` in `megvii-model/SinglePathOneShot`) resets them and
//! runs training-mode forward passes of the architecture over some training batches, with a
//! cumulative average (PyTorch's `momentum = None`). [`recalibrate_bn`] does the same: the
//! statistics of every batch norm on the path become the exact average of the batch
//! statistics over the given batches; batch norms off the path keep theirs. No weight changes
//! and no graph is recorded (the forward passes run on a copy whose parameters do not require
//! gradients; running statistics are shared with the original).
//!
//! Burn's batch norm updates `running ← (1 − m)·running + m·batch` with a fixed momentum `m`.
//! The average is recovered from that rule without reading `m` from the modules: the
//! statistics are set to 0 before each pass, so a pass leaves `m·batch`; one extra pass of the
//! first batch from statistics set to 1 leaves `1 − m + m·batch`, and the difference gives `m`
//! per element (0 for batch norms the path did not touch, which are restored).
//! Running statistics are told apart from parameters as the float tensors that do not require
//! gradients, which needs an autodiff backend.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

/// Values of the running statistics, by parameter id (flattened).
type Stats = HashMap<ParamId, Vec<f32>>;

struct Collect(Stats);

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.is_require_grad() {
            let values = param
                .val()
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap_or_default();
            self.0.insert(param.id, values);
        }
    }
}

/// Sets running statistics: `Fill(v)` everywhere, or given values by id.
enum Set<'a> {
    Fill(f32),
    Values(&'a Stats),
}

impl<B: AutodiffBackend> ModuleMapper<B> for Set<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if param.is_require_grad() {
            return param;
        }
        let id = param.id;
        let (_, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let device = tensor.device();
        let values = match self {
            Set::Fill(v) => vec![*v; shape.num_elements()],
            Set::Values(stats) => match stats.get(&id) {
                Some(v) => v.clone(),
                None => return Param::from_mapped_value(id, tensor, mapper),
            },
        };
        let tensor = Tensor::from_data(TensorData::new(values, shape), &device);
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Flushes pending running-state updates (Burn keeps them per thread until read).
fn sync<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) {
    let _ = model.valid();
}

fn collect<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) -> Stats {
    sync(model);
    let mut c = Collect(HashMap::new());
    model.visit(&mut c);
    c.0
}

fn set<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, mut how: Set<'_>) {
    sync(model);
    // Running states share their storage between clones: mapping a clone sets the original's.
    let _ = model.clone().map(&mut how);
}

/// Recomputes the batch-norm running statistics of the path that `forward` runs: each batch
/// of `batches` goes through `forward(model, batch)` in training mode, and every batch norm
/// that saw them ends with the average of their batch statistics (see the [module
/// docs](self)). `forward` is called `batches.len() + 1` times. Nothing happens without
/// batches.
pub fn recalibrate_bn<B, M>(
    model: &M,
    batches: &[Tensor<B, 4>],
    mut forward: impl FnMut(&M, Tensor<B, 4>),
) where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let Some(first) = batches.first() else {
        return;
    };
    let original = collect(model);
    let frozen = model.clone().no_grad();
    let pass = |forward: &mut dyn FnMut(&M, Tensor<B, 4>), x: &Tensor<B, 4>| {
        forward(&frozen, x.clone().detach());
    };
    // m·b₀ and 1 − m + m·b₀, per element.
    set(model, Set::Fill(0.0));
    pass(&mut forward, first);
    let r0 = collect(model);
    set(model, Set::Fill(1.0));
    pass(&mut forward, first);
    let r1 = collect(model);
    let mut sums = r0.clone();
    for batch in &batches[1..] {
        set(model, Set::Fill(0.0));
        pass(&mut forward, batch);
        for (id, values) in collect(model) {
            if let Some(s) = sums.get_mut(&id) {
                s.iter_mut().zip(values).for_each(|(s, v)| *s += v);
            }
        }
    }
    let n = batches.len() as f32;
    let mut result = Stats::new();
    for (id, orig) in original {
        let (Some(a), Some(b), Some(s)) = (r0.get(&id), r1.get(&id), sums.get(&id)) else {
            result.insert(id, orig);
            continue;
        };
        let values = orig
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                let m = 1.0 - (b[i] - a[i]);
                if m > 1e-3 { s[i] / (m * n) } else { o }
            })
            .collect();
        result.insert(id, values);
    }
    set(model, Set::Values(&result));
}
