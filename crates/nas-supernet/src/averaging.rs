//! Polyak averaging of a module's weights (see [`crate::train::WeightAveraging`]).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// The running average of every float tensor of a module (its parameters and its batch norms'
/// running statistics), flattened, in the order the module visits them.
#[derive(Debug, Clone)]
pub(crate) struct WeightAverage<B: Backend> {
    values: Vec<Tensor<B, 1>>,
    /// Iterates averaged so far.
    count: u64,
}

/// The float tensors of `module`, flattened, in visiting order.
fn tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<Tensor<B, 1>> {
    struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
    impl<B: Backend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0
                .push(param.val().flatten::<1>(0, D.saturating_sub(1)));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

impl<B: Backend> WeightAverage<B> {
    /// An average of the one iterate `module`.
    pub(crate) fn start<M: Module<B>>(module: &M) -> Self {
        Self {
            values: tensors(module),
            count: 1,
        }
    }

    /// The number of iterates averaged.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Adds the iterate `module`: the uniform mean of all iterates when `decay` is 0, else
    /// `decay · average + (1 − decay) · module`. A module of another structure is refused.
    pub(crate) fn add<M: Module<B>>(&mut self, module: &M, decay: f64) -> Result<(), String> {
        let now = tensors(module);
        if now.len() != self.values.len() {
            return Err(format!(
                "the averaged model has {} tensors, this one {}",
                self.values.len(),
                now.len()
            ));
        }
        // Share of the new iterate.
        let w = if decay == 0.0 {
            1.0 / (self.count + 1) as f64
        } else {
            1.0 - decay
        };
        for (avg, x) in self.values.iter_mut().zip(now) {
            if avg.dims() != x.dims() {
                return Err(format!(
                    "a tensor of {} values where the average has {}",
                    x.dims()[0],
                    avg.dims()[0]
                ));
            }
            *avg = avg.clone() + (x - avg.clone()).mul_scalar(w);
        }
        self.count += 1;
        Ok(())
    }

    /// `module` with every float tensor replaced by its average.
    pub(crate) fn apply<M: Module<B>>(&self, module: M) -> M {
        struct Replace<'a, B: Backend> {
            values: std::slice::Iter<'a, Tensor<B, 1>>,
        }
        impl<B: Backend> ModuleMapper<B> for Replace<'_, B> {
            fn map_float<const D: usize>(
                &mut self,
                param: Param<Tensor<B, D>>,
            ) -> Param<Tensor<B, D>> {
                let Some(avg) = self.values.next() else {
                    return param;
                };
                let (id, tensor, mapper) = param.consume();
                let shape = tensor.shape();
                if avg.dims()[0] != shape.num_elements() {
                    return Param::from_mapped_value(id, tensor, mapper);
                }
                let value = avg.clone().reshape(shape).to_device(&tensor.device());
                Param::from_mapped_value(id, value, mapper)
            }
        }
        module.map(&mut Replace {
            values: self.values.iter(),
        })
    }

    /// The average held by `module` (as written by [`WeightAverage::apply`]) of `count`
    /// iterates: for resuming from a checkpoint.
    pub(crate) fn restore<M: Module<B>>(module: &M, count: u64) -> Self {
        Self {
            values: tensors(module),
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    type B = burn::backend::NdArray;

    fn linear(w: f32) -> Linear<B> {
        let device = Default::default();
        let mut l = LinearConfig::new(2, 1).init::<B>(&device);
        l.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![w, 2.0 * w], [2, 1]),
            &device,
        ));
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![-w], [1]),
            &device,
        )));
        l
    }

    fn weights(l: &Linear<B>) -> Vec<f32> {
        let mut v = l.weight.val().into_data().to_vec::<f32>().unwrap();
        v.extend(
            l.bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
        );
        v
    }

    #[test]
    fn the_uniform_average_is_the_mean_of_the_iterates() {
        let mut avg = WeightAverage::start(&linear(1.0));
        avg.add(&linear(2.0), 0.0).unwrap();
        avg.add(&linear(6.0), 0.0).unwrap();
        assert_eq!(avg.count(), 3);
        // Mean of 1, 2, 6: 3.
        assert_eq!(weights(&avg.apply(linear(100.0))), vec![3.0, 6.0, -3.0]);
    }

    #[test]
    fn the_exponential_average_weighs_the_new_iterate_by_one_minus_the_decay() {
        let mut avg = WeightAverage::start(&linear(1.0));
        avg.add(&linear(3.0), 0.75).unwrap();
        // 0.75 · 1 + 0.25 · 3 = 1.5.
        assert_eq!(weights(&avg.apply(linear(0.0))), vec![1.5, 3.0, -1.5]);
        let restored = WeightAverage::restore(&avg.apply(linear(0.0)), avg.count());
        assert_eq!(restored.count(), 2);
        assert_eq!(weights(&restored.apply(linear(9.0))), vec![1.5, 3.0, -1.5]);
        // Another structure is refused.
        let other = LinearConfig::new(3, 1).init::<B>(&Default::default());
        assert!(avg.add(&other, 0.0).is_err());
    }
}
