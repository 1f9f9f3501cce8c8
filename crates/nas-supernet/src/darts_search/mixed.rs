//! The mixed operation of differentiable search and the weights that drive it.
//!
//! A [`MixedOp`] holds every candidate operation of one edge. Its output is `Σ_i w_i · op_i(x)`
//! over the operations that are still alive (DARTS, SNAS, ASAP, P-DARTS), or, when the edge
//! carries a sampled operation (GDAS), `w_k · op_k(x) + Σ_{i≠k} w_i` with only `op_k` computed:
//! the hard one-hot weights of GDAS are `1` for `k` and `0` elsewhere in value, and the terms
//! for the other operations only carry the straight-through gradient (as in the reference
//! implementation of GDAS). `none` never needs computing: its output is zero.

use std::cell::RefCell;
use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::error::SupernetError;
use crate::ops::{Op, OpConfig};

/// The weights of the operations of one edge for one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct EdgeWeights<'a, B: Backend> {
    /// One `[1, 1, 1, 1]` weight per candidate operation; `None` for an operation that is not
    /// computed (pruned, dropped or masked).
    pub weights: &'a [Option<Tensor<B, 4>>],
    /// GDAS: the one operation to compute (its weight is 1 in value).
    pub sampled: Option<usize>,
    /// P-DARTS: dropout probability on the output of identity operations (0: off).
    pub skip_dropout: f64,
    /// Seed of the dropout mask.
    pub seed: u64,
}

std::thread_local! {
    /// While [`record_op_macs`] runs: MACs per image of every operation computed, keyed by
    /// the address of its edge's weight slice and the operation's index.
    static OP_MACS: RefCell<Option<HashMap<(usize, usize), u64>>> = const { RefCell::new(None) };
}

/// Runs `f` (a forward pass) recording, for every operation a [`MixedOp`] computes on this
/// thread, its MACs per image at the shape of its input, summed per (address of the edge's
/// weight slice ([`EdgeWeights::weights`]), operation index): the edges of one cell kind
/// share their slice, so the sums run over the cells of the kind.
pub(crate) fn record_op_macs<R>(f: impl FnOnce() -> R) -> (R, HashMap<(usize, usize), u64>) {
    struct Restore(Option<HashMap<(usize, usize), u64>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            OP_MACS.with(|m| *m.borrow_mut() = outer);
        }
    }
    let outer = OP_MACS.with(|m| m.borrow_mut().replace(HashMap::new()));
    let restore = Restore(outer);
    let out = f();
    let recorded = OP_MACS.with(|m| m.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (out, recorded)
}

/// All candidate operations of one edge (`None` where an operation was not built, e.g. one
/// dropped by an earlier P-DARTS stage).
#[derive(Module, Debug)]
pub struct MixedOp<B: Backend> {
    ops: Vec<Option<Op<B>>>,
}

impl<B: Backend> MixedOp<B> {
    /// Builds the operations of `configs` whose `build` flag is true. Batch norms inside the
    /// candidate operations have fixed scale 1 and shift 0 (`affine=False` in DARTS), so the
    /// architecture weights alone scale the operations.
    pub fn new(
        configs: &[OpConfig],
        build: &[bool],
        device: &B::Device,
    ) -> Result<Self, SupernetError> {
        if configs.len() != build.len() {
            return Err(SupernetError::InvalidConfig {
                what: "mixed operation",
                reason: format!(
                    "{} operations but {} build flags",
                    configs.len(),
                    build.len()
                ),
            });
        }
        let ops = configs
            .iter()
            .zip(build)
            .map(|(c, &b)| {
                b.then(|| c.init(device).map(freeze_batch_norm_affine))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { ops })
    }

    /// The number of candidate operations (built or not).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the edge has no candidate operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Whether operation `i` was built.
    pub fn is_built(&self, i: usize) -> bool {
        self.ops.get(i).is_some_and(Option::is_some)
    }

    /// Operation `i`, when it was built (single-path use: ENAS computes one operation of an
    /// edge, with the weights it shares with every architecture that picks it).
    pub fn op(&self, i: usize) -> Option<&Op<B>> {
        self.ops.get(i)?.as_ref()
    }

    fn apply(&self, i: usize, x: Tensor<B, 4>, w: &EdgeWeights<'_, B>) -> Option<Tensor<B, 4>> {
        let op = self.ops.get(i)?.as_ref()?;
        OP_MACS.with(|m| {
            if let Some(m) = m.borrow_mut().as_mut() {
                let [_, c, h, wd] = x.dims();
                *m.entry((w.weights.as_ptr() as usize, i)).or_default() += op.macs([c, h, wd]).0;
            }
        });
        let y = op.forward(x);
        Some(if matches!(op, Op::Identity(_)) && w.skip_dropout > 0.0 {
            dropout(
                y,
                w.skip_dropout,
                crate::network::mix_seed(w.seed, i as u64, 7),
            )
        } else {
            y
        })
    }

    /// Applies the edge to `x` with weights `w` (see the module documentation).
    ///
    /// # Panics
    /// When [`MixedOp::try_forward`] fails: weights that do not fit the edge are a bug in the
    /// caller, which builds both from the same mask. Custom methods and networks that cannot
    /// promise it call [`MixedOp::try_forward`].
    pub fn forward(&self, x: Tensor<B, 4>, w: EdgeWeights<'_, B>) -> Tensor<B, 4> {
        self.try_forward(x, w).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`MixedOp::forward`], with a typed error when `w` does not fit the edge: another
    /// number of weights than the edge has operations, a sampled operation that is masked or
    /// not built (or out of range), or no operation alive and built.
    pub fn try_forward(
        &self,
        x: Tensor<B, 4>,
        w: EdgeWeights<'_, B>,
    ) -> Result<Tensor<B, 4>, SupernetError> {
        let bad = |reason: String| SupernetError::InvalidConfig {
            what: "mixed-operation edge weights",
            reason,
        };
        if w.weights.len() != self.ops.len() {
            return Err(bad(format!(
                "{} weights for {} operations: build the weights and the edge from the same mask",
                w.weights.len(),
                self.ops.len()
            )));
        }
        if let Some(k) = w.sampled {
            let Some(wk) = w.weights.get(k).cloned().flatten() else {
                return Err(bad(format!(
                    "sampled operation {k} is masked or out of range (the edge has {} operations)",
                    self.ops.len()
                )));
            };
            let Some(y) = self.apply(k, x, &w) else {
                return Err(bad(format!(
                    "sampled operation {k} is not built (masked when the edge was built)"
                )));
            };
            let mut out = y * wk;
            for (i, wi) in w.weights.iter().enumerate() {
                if let Some(wi) = wi
                    && i != k
                {
                    out = out + wi.clone();
                }
            }
            return Ok(out);
        }
        let mut sum: Option<Tensor<B, 4>> = None;
        let mut zero: Option<usize> = None;
        for (i, wi) in w.weights.iter().enumerate() {
            let (Some(wi), Some(op)) = (wi, self.ops[i].as_ref()) else {
                continue;
            };
            if op.is_zero() {
                zero = Some(i);
                continue;
            }
            if let Some(y) = self.apply(i, x.clone(), &w) {
                let term = y * wi.clone();
                sum = Some(match sum {
                    Some(s) => s + term,
                    None => term,
                });
            }
        }
        match (sum, zero.and_then(|i| self.ops[i].as_ref())) {
            (Some(s), _) => Ok(s),
            (None, Some(op)) => Ok(op.forward(x)),
            (None, None) => Err(bad(
                "no operation is both weighted and built: the mask removed them all".to_string(),
            )),
        }
    }
}

/// Inverted dropout with a mask drawn from a generator seeded with `seed`.
pub fn dropout<B: Backend>(x: Tensor<B, 4>, p: f64, seed: u64) -> Tensor<B, 4> {
    use rand::{RngExt, SeedableRng};
    if p <= 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    let dims = x.dims();
    let n: usize = dims.iter().product();
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.random_bool(keep) { scale } else { 0.0 })
        .collect();
    let device = x.device();
    x * Tensor::<B, 4>::from_data(TensorData::new(mask, dims), &device)
}

/// Fixes the scale and shift of every batch norm in `module` at 1 and 0 (they no longer
/// require gradients, so optimizers leave them alone): DARTS's `affine=False`.
pub fn freeze_batch_norm_affine<B: Backend, M: Module<B>>(module: M) -> M {
    struct Freeze(Vec<(String, String)>);
    impl<B: Backend> ModuleMapper<B> for Freeze {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.0.push((name.to_string(), container_type.to_string()));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.0.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            match self.0.last() {
                Some((name, container))
                    if container == "Struct:BatchNorm" && (name == "gamma" || name == "beta") =>
                {
                    param.set_require_grad(false)
                }
                _ => param,
            }
        }
    }
    module.map(&mut Freeze(Vec::new()))
}
