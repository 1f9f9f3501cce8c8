//! The `ndarray` backend's fast path: convolutions and batch norm as single autodiff operations
//! whose forward and backward passes are the CPU kernels of [`crate::kernels`].
//!
//! Everything else in the library is generic over `B: Backend`; these functions check at run
//! time whether `B` is `Autodiff<NdArray>` (training) or `NdArray` (inference) with `f32`
//! tensors, and give the arguments back untouched otherwise, so callers fall through to the
//! generic formulation. Burn's backend-extension route (a trait implemented for the backend)
//! would put a new bound on every module of the library; a type check keeps the module API.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::nn::BatchNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};

use crate::kernels::{self, ConvShape};

type Nd = NdArray;
type Ad = Autodiff<Nd>;

fn is<B: 'static, T: 'static>() -> bool {
    TypeId::of::<B>() == TypeId::of::<T>()
}

/// Moves `t` into type `U`, which the caller has checked is `T`.
fn cast<T: 'static, U: 'static>(t: T) -> U {
    match (Box::new(t) as Box<dyn Any>).downcast::<U>() {
        Ok(u) => *u,
        Err(_) => unreachable!("the caller checked that the types are equal"),
    }
}

/// Which of the two backends `B` is, if either, for `f32` tensors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Train,
    Infer,
}

fn which<B: Backend>(dtype: DType) -> Option<Which> {
    if dtype != DType::F32 {
        return None;
    }
    if is::<B, Ad>() {
        Some(Which::Train)
    } else if is::<B, Nd>() {
        Some(Which::Infer)
    } else {
        None
    }
}

/// The elements of an `f32` tensor in row-major order (borrowed when already contiguous).
fn values(t: &NdArrayTensor) -> Cow<'_, [f32]> {
    match t {
        NdArrayTensor::F32(s) => {
            let view = s.view();
            match view.to_slice() {
                Some(v) => Cow::Borrowed(v),
                None if view.ndim() <= 4 => Cow::Owned(strided_copy(
                    view.shape(),
                    view.strides(),
                    view.as_ptr(),
                    view.len(),
                )),
                None => Cow::Owned(view.iter().copied().collect()),
            }
        }
        other => unreachable!("only f32 tensors take this path, got {:?}", other.dtype()),
    }
}

/// Row-major copy of a strided view of at most 4 dimensions (sliced or permuted tensors);
/// `ndarray`'s own iteration over dynamic-rank views goes element by element through the
/// index arithmetic of `IxDyn`.
fn strided_copy(shape: &[usize], strides: &[isize], ptr: *const f32, len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    let pad = 4usize.saturating_sub(shape.len());
    let dim = |i: usize| if i < pad { 1 } else { shape[i - pad] };
    let stride = |i: usize| if i < pad { 0 } else { strides[i - pad] };
    for a in 0..dim(0) {
        for b in 0..dim(1) {
            for c in 0..dim(2) {
                let base = a as isize * stride(0) + b as isize * stride(1) + c as isize * stride(2);
                let s3 = stride(3);
                // SAFETY: every offset is inside the view ndarray describes with this shape
                // and these strides, which `ptr` points into.
                out.extend((0..dim(3)).map(|d| unsafe { *ptr.offset(base + d as isize * s3) }));
            }
        }
    }
    out
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(v, shape))
}

/// A convolution of the fast operations: dense (groups = 1) or depthwise.
#[derive(Debug, Clone, Copy)]
struct ConvSpec {
    shape: ConvShape,
    depthwise: bool,
}

impl ConvSpec {
    fn forward(&self, x: &NdArrayTensor, w: &NdArrayTensor) -> NdArrayTensor {
        let (x, w) = (values(x), values(w));
        let s = &self.shape;
        let out = if self.depthwise {
            kernels::depthwise(s, &x, &w)
        } else {
            kernels::conv2d(s, &x, &w)
        };
        let [ho, wo] = s.out_hw();
        tensor(out, [s.n, s.o, ho, wo])
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Nd, 2> for ConvBackward {
    type State = (NdArrayTensor, NdArrayTensor, ConvSpec);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<Nd>(&ops.node);
        let (x, w, spec) = ops.state;
        let s = &spec.shape;
        let (xv, wv, dyv) = (values(&x), values(&w), values(&dy));
        let (need_dx, need_dw) = (node_x.is_some(), node_w.is_some());
        let (dx, dw) = if spec.depthwise {
            kernels::depthwise_backward(s, &xv, &wv, &dyv, need_dx, need_dw)
        } else {
            kernels::conv2d_backward(s, &xv, &wv, &dyv, need_dx, need_dw)
        };
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Nd>(node.id, tensor(dx, [s.n, s.c, s.hw[0], s.hw[1]]));
        }
        if let (Some(node), Some(dw)) = (node_w, dw) {
            let ci = if spec.depthwise { 1 } else { s.c };
            grads.register::<Nd>(node.id, tensor(dw, [s.o, ci, s.k[0], s.k[1]]));
        }
    }
}

/// Dense (`depthwise == false`) or depthwise convolution through the kernels, of `relu(x)`
/// when `relu`, or the arguments back when `B` is not an `ndarray` backend with `f32` tensors.
pub(crate) fn conv<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    geometry: crate::geometry::ConvGeometry,
    depthwise: bool,
    relu: bool,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Tensor<B, 4>)> {
    let Some(which) = which::<B>(x.dtype()).filter(|_| weight.dtype() == DType::F32) else {
        return Err((x, weight));
    };
    let [n, c, h, w] = x.dims();
    let [o, _, kh, kw] = weight.dims();
    let spec = ConvSpec {
        shape: ConvShape {
            n,
            c,
            hw: [h, w],
            o,
            k: [kh, kw],
            stride: geometry.stride,
            pad: geometry.padding,
            dil: geometry.dilation,
            relu,
        },
        depthwise,
    };
    Ok(match which {
        Which::Infer => {
            let x: Tensor<Nd, 4> = cast(x);
            let w: Tensor<Nd, 4> = cast(weight);
            let y = spec.forward(&x.into_primitive().tensor(), &w.into_primitive().tensor());
            cast(Tensor::<Nd, 4>::from_primitive(TensorPrimitive::Float(y)))
        }
        Which::Train => {
            let x = cast::<_, Tensor<Ad, 4>>(x).into_primitive().tensor();
            let w = cast::<_, Tensor<Ad, 4>>(weight).into_primitive().tensor();
            let y = spec.forward(&x.primitive, &w.primitive);
            let out = match ConvBackward
                .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((x.primitive, w.primitive, spec), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            cast(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(out)))
        }
    })
}

#[derive(Debug)]
struct BnBackward;

/// What the batch-norm backward pass needs: the input, gamma and beta, the batch statistics,
/// the shape and the fused activation.
#[derive(Debug, Clone)]
struct BnState {
    x: NdArrayTensor,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    act: kernels::Activation,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    shape: [usize; 4],
}

impl Backward<Nd, 3> for BnBackward {
    type State = BnState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Nd>(&ops.node);
        let st = ops.state;
        let [n, c, h, w] = st.shape;
        let (dx, dgamma, dbeta) = kernels::batch_norm_backward(
            [n, c, h * w],
            &values(&st.x),
            [&st.gamma, &st.beta],
            &st.mean,
            &st.inv_std,
            &values(&dy),
            st.act,
        );
        if let Some(node) = node_x {
            grads.register::<Nd>(node.id, tensor(dx, st.shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Nd>(node.id, tensor(dgamma, [c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Nd>(node.id, tensor(dbeta, [c]));
        }
    }
}

/// Training-mode batch norm followed by `act` through the kernels (one autodiff operation,
/// running statistics updated as Burn's `BatchNorm` updates them), or the input back when `B`
/// is not `Autodiff<NdArray>` with `f32` tensors.
pub(crate) fn batch_norm<B: Backend>(
    bn: &BatchNorm<B>,
    x: Tensor<B, 4>,
    act: kernels::Activation,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    if which::<B>(x.dtype()) != Some(Which::Train) {
        return Err(x);
    }
    let bn: &BatchNorm<Ad> = (bn as &dyn Any)
        .downcast_ref()
        .unwrap_or_else(|| unreachable!("B is Autodiff<NdArray>"));
    let shape = x.dims();
    let [n, c, h, w] = shape;
    let x = cast::<_, Tensor<Ad, 4>>(x).into_primitive().tensor();
    let gamma = bn.gamma.val().into_primitive().tensor();
    let beta = bn.beta.val().into_primitive().tensor();
    let gamma_v = values(&gamma.primitive).into_owned();
    let beta_v = values(&beta.primitive).into_owned();
    let (y, stats) = kernels::batch_norm(
        [n, c, h * w],
        &values(&x.primitive),
        &gamma_v,
        &beta_v,
        bn.epsilon,
        act,
    );
    let y = tensor(y, shape);
    let out = match BnBackward
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            BnState {
                x: x.primitive,
                gamma: gamma_v,
                beta: beta_v,
                act,
                mean: stats.mean.clone(),
                inv_std: stats.inv_std,
                shape,
            },
            y,
        ),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    // Running statistics, as `BatchNorm::forward_train` computes them (biased variance).
    let device = Default::default();
    let m = bn.momentum;
    let update = |state: &burn::module::RunningState<Tensor<Ad, 1>>, batch: Vec<f32>| {
        let batch = Tensor::<Ad, 1>::from_data(TensorData::new(batch, [c]), &device);
        let running = state.value_sync().to_device(&device);
        state.update(
            running
                .mul_scalar(1.0 - m)
                .add(batch.mul_scalar(m))
                .detach(),
        );
    };
    update(&bn.running_mean, stats.mean);
    update(&bn.running_var, stats.var);
    Ok(cast(Tensor::<Ad, 4>::from_primitive(
        TensorPrimitive::Float(out),
    )))
}

/// How a pooling operation pools, and what its backward pass needs.
#[derive(Debug, Clone)]
enum Pooling {
    Avg { include_pad: bool },
    Max { argmax: Arc<Vec<u32>> },
}

#[derive(Debug)]
struct PoolBackward;

impl Backward<Nd, 1> for PoolBackward {
    type State = (ConvShape, Pooling);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Nd>(&ops.node);
        let Some(node) = node_x else {
            return;
        };
        let (s, pooling) = ops.state;
        let dy = values(&dy);
        let dx = match pooling {
            Pooling::Avg { include_pad } => kernels::avg_pool_backward(&s, include_pad, &dy),
            Pooling::Max { argmax } => kernels::max_pool_backward(&s, &argmax, &dy),
        };
        grads.register::<Nd>(node.id, tensor(dx, [s.n, s.c, s.hw[0], s.hw[1]]));
    }
}

/// Average (`Some(count_include_pad)`) or max (`None`) pooling through the kernels, or the
/// input back when `B` is not an `ndarray` backend with `f32` tensors.
pub(crate) fn pool<B: Backend>(
    x: Tensor<B, 4>,
    kernel: [usize; 2],
    geometry: crate::geometry::ConvGeometry,
    average: Option<bool>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let Some(which) = which::<B>(x.dtype()) else {
        return Err(x);
    };
    let [n, c, h, w] = x.dims();
    let s = ConvShape {
        n,
        c,
        hw: [h, w],
        o: c,
        k: kernel,
        stride: geometry.stride,
        pad: geometry.padding,
        dil: [1, 1],
        relu: false,
    };
    let [ho, wo] = s.out_hw();
    let forward = |x: &NdArrayTensor| {
        let x = values(x);
        match average {
            Some(include_pad) => (
                kernels::avg_pool(&s, include_pad, &x),
                Pooling::Avg { include_pad },
            ),
            None => {
                let (out, argmax) = kernels::max_pool(&s, &x);
                (
                    out,
                    Pooling::Max {
                        argmax: Arc::new(argmax),
                    },
                )
            }
        }
    };
    Ok(match which {
        Which::Infer => {
            let x: Tensor<Nd, 4> = cast(x);
            let (y, _) = forward(&x.into_primitive().tensor());
            let y = tensor(y, [n, c, ho, wo]);
            cast(Tensor::<Nd, 4>::from_primitive(TensorPrimitive::Float(y)))
        }
        Which::Train => {
            let x = cast::<_, Tensor<Ad, 4>>(x).into_primitive().tensor();
            let (y, pooling) = forward(&x.primitive);
            let y = tensor(y, [n, c, ho, wo]);
            let out = match PoolBackward
                .prepare::<NoCheckpointing>([x.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((s, pooling), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            cast(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(out)))
        }
    })
}

#[derive(Debug)]
struct ReduceBackward;

impl Backward<Nd, 3> for ReduceBackward {
    type State = (
        NdArrayTensor,
        NdArrayTensor,
        NdArrayTensor,
        kernels::ReduceShape,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_a, node_b] = ops.parents;
        let dy = grads.consume::<Nd>(&ops.node);
        let (x, wa, wb, s) = ops.state;
        let (xv, wav, wbv, dyv) = (values(&x), values(&wa), values(&wb), values(&dy));
        let need_dw = node_a.is_some() || node_b.is_some();
        let (dx, dw) = kernels::factorized_reduce_backward(
            &s,
            &xv,
            [&wav, &wbv],
            &dyv,
            node_x.is_some(),
            need_dw,
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Nd>(node.id, tensor(dx, [s.n, s.c, s.hw[0], s.hw[1]]));
        }
        if let Some([da, db]) = dw {
            if let Some(node) = node_a {
                grads.register::<Nd>(node.id, tensor(da, [s.o[0], s.c, 1, 1]));
            }
            if let Some(node) = node_b {
                grads.register::<Nd>(node.id, tensor(db, [s.o[1], s.c, 1, 1]));
            }
        }
    }
}

/// DARTS' factorized reduction without its batch norm, `cat(conv_a(relu(x)), conv_b(relu(x)
/// shifted by one pixel))` with 1×1 stride-2 weights `[oa, c, 1, 1]` and `[ob, c, 1, 1]`, as
/// one operation through the kernels; the arguments back when `B` is not an `ndarray`
/// backend with `f32` tensors.
#[allow(clippy::type_complexity)]
pub(crate) fn factorized_reduce<B: Backend>(
    x: Tensor<B, 4>,
    wa: Tensor<B, 4>,
    wb: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>)> {
    let Some(which) =
        which::<B>(x.dtype()).filter(|_| wa.dtype() == DType::F32 && wb.dtype() == DType::F32)
    else {
        return Err((x, wa, wb));
    };
    let [n, c, h, w] = x.dims();
    let s = kernels::ReduceShape {
        n,
        c,
        hw: [h, w],
        o: [wa.dims()[0], wb.dims()[0]],
    };
    let [ho, wo] = s.out_hw();
    let shape = [n, s.o[0] + s.o[1], ho, wo];
    let forward = |x: &NdArrayTensor, a: &NdArrayTensor, b: &NdArrayTensor| {
        let (x, a, b) = (values(x), values(a), values(b));
        tensor(kernels::factorized_reduce(&s, &x, [&a, &b]), shape)
    };
    Ok(match which {
        Which::Infer => {
            let prim = |t: Tensor<B, 4>| cast::<_, Tensor<Nd, 4>>(t).into_primitive().tensor();
            let y = forward(&prim(x), &prim(wa), &prim(wb));
            cast(Tensor::<Nd, 4>::from_primitive(TensorPrimitive::Float(y)))
        }
        Which::Train => {
            let prim = |t: Tensor<B, 4>| cast::<_, Tensor<Ad, 4>>(t).into_primitive().tensor();
            let (x, wa, wb) = (prim(x), prim(wa), prim(wb));
            let y = forward(&x.primitive, &wa.primitive, &wb.primitive);
            let out = match ReduceBackward
                .prepare::<NoCheckpointing>([x.node.clone(), wa.node.clone(), wb.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    prep.finish((x.primitive, wa.primitive, wb.primitive, s), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            cast(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(out)))
        }
    })
}
