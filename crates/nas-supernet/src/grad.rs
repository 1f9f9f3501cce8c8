//! Gradient utilities shared by the training loops: the global norm of a module's gradients
//! and scaling them, for clipping by global norm as PyTorch's `clip_grad_norm_` and the NAS
//! papers do (Burn's `GradientClippingConfig::Norm` clips each parameter tensor on its own).

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::LearningRate;
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

pub(crate) fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem()
}

/// The global L2 norm of the gradients of `module`'s parameters (one read back).
pub fn global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    grads: &GradientsParams,
    module: &M,
) -> f64 {
    struct Norm<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let s = g.square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(acc) => acc + s,
                    None => s,
                });
            }
        }
    }
    let mut v = Norm::<B> { grads, sum: None };
    module.visit(&mut v);
    v.sum.map_or(0.0, |s| scalar(s).sqrt())
}

/// Multiplies every gradient of `module`'s parameters by `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    grads: &mut GradientsParams,
    module: &M,
    factor: f64,
) {
    struct Scale<'a, B> {
        grads: &'a mut GradientsParams,
        factor: f64,
        _b: std::marker::PhantomData<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads
                    .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    module.visit(&mut Scale::<B> {
        grads,
        factor,
        _b: std::marker::PhantomData,
    });
}

/// Clips the gradients of `module` to global L2 norm `max` (PyTorch's `clip_grad_norm_`:
/// scaled by `max / (norm + 1e-6)` when that is below 1). Returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    grads: &mut GradientsParams,
    module: &M,
    max: f64,
) -> f64 {
    let norm = global_norm::<B, M>(grads, module);
    let coef = max / (norm + 1e-6);
    if coef < 1.0 {
        scale_grads::<B, M>(grads, module, coef);
    }
    norm
}

/// An optimizer that first clips the gradients to a global L2 norm, then steps `inner`.
#[derive(Clone)]
pub struct ClipGlobalNorm<O> {
    inner: O,
    max_norm: Option<f64>,
}

impl<O> ClipGlobalNorm<O> {
    /// `inner` with its gradients clipped to global norm `max_norm` (`None`: not clipped).
    pub fn new(inner: O, max_norm: Option<f64>) -> Self {
        Self { inner, max_norm }
    }
}

impl<O, M, B> Optimizer<M, B> for ClipGlobalNorm<O>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    type Record = O::Record;

    fn step(&mut self, lr: LearningRate, module: M, mut grads: GradientsParams) -> M {
        if let Some(max) = self.max_norm {
            clip_global_norm::<B, M>(&mut grads, &module, max);
        }
        self.inner.step(lr, module, grads)
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        // Gradients spread over devices are not clipped (the library does not use them).
        self.inner.step_multi(lr, module, grads)
    }

    fn to_record(&self) -> Self::Record {
        self.inner.to_record()
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            inner: self.inner.load_record(record),
            max_norm: self.max_norm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DefaultBackend;
    use burn::module::Module;
    use burn::optim::SgdConfig;
    use burn::tensor::TensorData;

    #[derive(Module, Debug)]
    struct Two<B: Backend> {
        a: Param<Tensor<B, 1>>,
        b: Param<Tensor<B, 1>>,
    }

    #[test]
    fn clipping_scales_all_gradients_by_their_global_norm() {
        type B = DefaultBackend;
        let device = Default::default();
        let t = |v: [f32; 2]| Tensor::<B, 1>::from_data(TensorData::from(v), &device);
        let m = Two {
            a: Param::from_tensor(t([0.0, 0.0])),
            b: Param::from_tensor(t([0.0, 0.0])),
        };
        // Loss 3·a₀ + 4·b₁: gradients (3, 0) and (0, 4), global norm 5.
        let loss = m.a.val().mul(t([3.0, 0.0])).sum() + m.b.val().mul(t([0.0, 4.0])).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        assert!((global_norm::<B, _>(&grads, &m) - 5.0).abs() < 1e-6);
        let mut sgd = ClipGlobalNorm::new(SgdConfig::new().init(), Some(1.0));
        let m = sgd.step(1.0, m, grads);
        let values = |p: &Param<Tensor<B, 1>>| p.val().into_data().to_vec::<f32>().unwrap();
        // Both scaled by 1/5 (clipping each tensor on its own would give (-1, 0) and (0, -1)).
        let close = |x: Vec<f32>, y: [f32; 2]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-5);
        assert!(close(values(&m.a), [-0.6, 0.0]), "{:?}", values(&m.a));
        assert!(close(values(&m.b), [0.0, -0.8]), "{:?}", values(&m.b));
    }
}
