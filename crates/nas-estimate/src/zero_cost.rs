//! Zero-cost proxies: scores of an untrained network from one forward and backward pass on a
//! few images, in milliseconds where training takes seconds or hours.
//!
//! [`ZeroCostEstimator`] builds the network of an architecture (any [`BuildNetwork`], as for
//! [`crate::train::TrainEstimator`]), seeds it, and scores it with a [`ZeroCostProxy`]. Its
//! scores rank candidates before any training: as a pre-screen of a multi-trial search
//! ([`nas_space::screen::Screened`] keeps the best of several proposals by such a score), or
//! as an estimator of its own.
//!
//! The proxies:
//!
//! - [`ZeroCostProxy::LiveParameters`]: the parameters whose gradient of the cross-entropy
//!   loss on the batch is not zero, i.e. the parameters on some path from the input to the output. Operations cut
//!   off by a `none` edge, or fed only by a node that no path reaches, do not count. On
//!   NAS-Bench-201 this count ranks cells by their 200-epoch CIFAR-10 accuracy with Spearman ρ
//!   ≈ 0.8 (the parameter count is the baseline zero-cost proxy of Abdelfattah et al., "Zero-Cost
//!   Proxies for Lightweight NAS", ICLR 2021, and of NAS-Bench-Suite-Zero); counting only the
//!   live ones matters in a space with `none` edges. Measure it on your space with
//!   `cargo run --release --example proxy_rank -- --zero-cost`.
//! - [`ZeroCostProxy::Synflow`] ([`synflow`]): data-free, the synaptic flow of the network
//!   with absolute weights and no batch norm on an all-ones image (Tanaka et al., NeurIPS
//!   2020; Abdelfattah et al., ICLR 2021 report Spearman ρ 0.74 on NAS-Bench-201's CIFAR-10).
//!   `cargo run --release --example proxy_rank -- --zero-cost --proxy synflow --channels 16
//!   --cells 5 --input 3,32,32 --sample 1000` measures it on the benchmark's own network (in
//!   64-bit floats: its sums overflow 32-bit ones there).
//! - [`ZeroCostProxy::Snip`] and [`ZeroCostProxy::GradNorm`] ([`gradient_scores`]): from the
//!   gradient of the cross-entropy loss on one batch, the sum of `|θ · ∂L/∂θ|` (SNIP, Lee et
//!   al., ICLR 2019) and of the gradients' L2 norms over the weights (Abdelfattah et al.
//!   report Spearman ρ 0.58 for both on NAS-Bench-201's CIFAR-10).
//! - [`ZeroCostProxy::JacobCov`] ([`jacob_cov`]): how uncorrelated the network's input
//!   Jacobians of different images are (Mellor et al., "Neural Architecture Search without
//!   Training", 2020, first version; Abdelfattah et al. report Spearman ρ 0.73 on
//!   NAS-Bench-201's CIFAR-10). The eigenvalues come from `faer`.
//! - [`ZeroCostProxy::Naswot`] ([`naswot`]): the log-determinant of the agreement kernel of
//!   the ReLU codes of a batch (Mellor et al., ICML 2021).
//! - [`ZeroCostProxy::Fisher`] ([`fisher`]): from the loss's gradient at the convolutions'
//!   outputs (Abdelfattah et al. report Spearman ρ 0.36 on NAS-Bench-201's CIFAR-10).
//!
//! - [`ZeroCostProxy::Grasp`] ([`grasp`]): `−θ · H g` over the weights, the Hessian-gradient
//!   product of the loss (Wang et al., ICLR 2020; Abdelfattah et al. report Spearman ρ 0.48 on
//!   NAS-Bench-201's CIFAR-10). Burn 0.21 has no double backward, so `H g` is a central
//!   difference of gradients along `g` with the ReLUs' activation masks frozen (as autograd's
//!   double backward treats them). Measured here, the score as defined ranks cells *against*
//!   their accuracy (Spearman ρ −0.30 on 200 NAS-Bench-201 cells, `docs/benchmarks.md`; the
//!   published value may be an absolute one), so [`ZeroCostEstimator`] maximizes its negation
//!   (the `grasp` metric keeps the score itself).
//!
//! `cargo run --release --example zero_cost` prints every proxy's Spearman ρ against the
//! NAS-Bench-201 table.

use std::time::Instant;

use nas_supernet::burn::data::dataset::Dataset;
use nas_supernet::burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use nas_supernet::burn::nn::loss::CrossEntropyLossConfig;
use nas_supernet::burn::tensor::backend::AutodiffBackend;
use nas_supernet::burn::tensor::{Device, Int, Tensor, TensorData};
use nas_supernet::data::{ImageDataset, Normalize};
use nas_supernet::fast::without_batch_norm;
use nas_supernet::network::{Classifier, count_params, seeded};
use nas_supernet::network_config::BuildNetwork;
use nas_supernet::probe::{probe_conv_outputs, record_relu_codes};
use serde::{Deserialize, Serialize};

use crate::{Budget, EstimateError, Estimator, Metrics};

/// A score of an untrained network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ZeroCostProxy {
    /// Parameters on a path from input to output (see the [module docs](self)).
    #[default]
    LiveParameters,
    /// Synflow (Tanaka et al., NeurIPS 2020, as a NAS proxy by Abdelfattah et al., ICLR 2021):
    /// data-free, the sum over weights of `θ · ∂R/∂θ` for the network with absolute weights
    /// and no batch norm, `R` the sum of its logits on one all-ones image ([`synflow`]).
    Synflow,
    /// SNIP (Lee et al., ICLR 2019; as a NAS proxy by Abdelfattah et al., ICLR 2021): the sum
    /// over weights of `|θ · ∂L/∂θ|`, `L` the cross-entropy loss on the batch
    /// ([`gradient_scores`]).
    Snip,
    /// Grad-norm (Abdelfattah et al., ICLR 2021): the sum over weight tensors of the L2 norm
    /// of `∂L/∂θ` on the batch ([`gradient_scores`]).
    GradNorm,
    /// Jacobian covariance (Mellor et al. 2020, first version; as a proxy by Abdelfattah et
    /// al., ICLR 2021): from the correlation matrix of the per-image gradients of the summed
    /// logits with respect to the input ([`jacob_cov`]).
    JacobCov,
    /// NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021): the
    /// log-determinant of the agreement kernel of the binary codes of every ReLU on the batch
    /// ([`naswot`]).
    Naswot,
    /// Fisher (Turner et al., "BlockSwap", ICLR 2020; as a NAS proxy by Abdelfattah et al.,
    /// ICLR 2021): from the gradient of the loss at every convolution's output ([`fisher`]).
    Fisher,
    /// GraSP (Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient
    /// Flow", ICLR 2020; as a NAS proxy by Abdelfattah et al., ICLR 2021): `−Σ θ · (H g)` over
    /// the weights ([`grasp`]).
    Grasp,
}

impl ZeroCostProxy {
    /// The proxy's name, as recorded in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ZeroCostProxy::LiveParameters => "live_parameters",
            ZeroCostProxy::Synflow => "synflow",
            ZeroCostProxy::Snip => "snip",
            ZeroCostProxy::GradNorm => "grad_norm",
            ZeroCostProxy::JacobCov => "jacob_cov",
            ZeroCostProxy::Naswot => "naswot",
            ZeroCostProxy::Fisher => "fisher",
            ZeroCostProxy::Grasp => "grasp",
        }
    }
}

/// The scores of one backward pass of the cross-entropy loss on a batch: see
/// [`gradient_scores`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GradientScores {
    /// The parameters whose gradient is not zero ([`live_parameters`]).
    pub live_parameters: u64,
    /// SNIP: `Σ |θ · ∂L/∂θ|` over the weights.
    pub snip: f64,
    /// Grad-norm: `Σ ‖∂L/∂θ‖₂` over the weight tensors.
    pub grad_norm: f64,
}

/// The gradient-based zero-cost scores of `model` from one backward pass of the cross-entropy
/// loss `L` on `images` and `targets` (batch norms in training mode, as the reference code
/// scores them): the live parameters (every parameter tensor whose gradient is not zero
/// counts whole), SNIP and grad-norm (over the weights: the parameters of two or more
/// dimensions, convolution and linear weights, as the reference code counts them).
///
/// Fails when the loss is not finite (the network cannot be scored).
pub fn gradient_scores<B, M>(
    model: &M,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
) -> Result<GradientScores, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    let grads = cross_entropy(model.logits(images), targets)?.backward();
    struct Scores<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        scores: GradientScores,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scores<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let tensor = param.val();
            let Some(g) = tensor.grad(self.grads) else {
                return;
            };
            if scalar(g.clone().abs().sum().into_data()) > 0.0 {
                self.scores.live_parameters += tensor.shape().num_elements() as u64;
            }
            if D >= 2 {
                self.scores.snip += scalar((tensor.inner() * g.clone()).abs().sum().into_data());
                self.scores.grad_norm += scalar(g.powi_scalar(2).sum().into_data()).sqrt();
            }
        }
    }
    let mut visitor = Scores::<B> {
        grads: &grads,
        scores: GradientScores {
            live_parameters: 0,
            snip: 0.0,
            grad_norm: 0.0,
        },
    };
    model.visit(&mut visitor);
    Ok(visitor.scores)
}

/// The one value of a scalar tensor's data, as `f64` (NaN when it holds none).
fn scalar(data: TensorData) -> f64 {
    data.convert::<f64>()
        .to_vec::<f64>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f64::NAN)
}

/// The number of parameters of `model` whose gradient of the cross-entropy loss on `images`
/// and `targets` is not zero: the parameters the output depends on. A tensor counts whole when
/// any of its entries' gradient is non-zero.
///
/// (The loss matters: the gradient of the plain sum of the logits is the same for every
/// image, and a training-mode batch norm turns a gradient that is constant over the batch
/// into zero, so everything before the last batch norm would look dead.)
///
/// Fails when the loss is not finite (the network cannot be scored).
pub fn live_parameters<B, M>(
    model: &M,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
) -> Result<u64, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    Ok(gradient_scores(model, images, targets)?.live_parameters)
}

/// Synflow of `model` (Tanaka et al., "Pruning neural networks without any data by
/// iteratively conserving synaptic flow", NeurIPS 2020; the zero-cost NAS proxy of Abdelfattah
/// et al., ICLR 2021): every parameter replaced by its absolute value, every batch norm by the
/// identity ([`nas_supernet::fast::without_batch_norm`]), one image of ones of `shape`
/// through the network, `R` the sum of the logits; the score is `Σ θ · ∂R/∂θ` over the
/// weights (the parameters of two or more dimensions: convolution and linear weights, as the
/// reference code counts them). It is data-free: it sees no image and no label.
///
/// Fails when the score is not finite (the network's `R` overflowed; a deep network may need a
/// backend with 64-bit floats), and when `device` already makes floats of another type than
/// the backend's: Burn 0.21 fixes a device's float type at the first tensor made on it, and
/// the CPU backend's device is the same for 32- and 64-bit floats, so a process that has used
/// `NdArray<f32>` cannot then score on `NdArray<f64>` (its tensors would come out in 32-bit
/// floats): score in 64-bit floats first, or in a process of its own.
pub fn synflow<B, M>(model: M, shape: [usize; 3], device: &Device<B>) -> Result<f64, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    use nas_supernet::burn::tensor::{DType, Element, get_device_settings};
    let made = DType::from(get_device_settings::<B>(device).float_dtype);
    let wanted = <B::FloatElem as Element>::dtype();
    if made != wanted {
        return Err(EstimateError::InvalidConfig(format!(
            "the device makes {made:?} floats, the backend computes in {wanted:?}: this process \
             used the device with another float type first (Burn fixes a device's float type at \
             its first tensor); score synflow in 64-bit floats before any other work on the \
             device, or in a process of its own"
        )));
    }
    struct Abs;
    impl<B: AutodiffBackend> ModuleMapper<B> for Abs {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let tensor = Tensor::from_inner(tensor.inner().abs()).require_grad();
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    let model = model.map(&mut Abs);
    let [c, h, w] = shape;
    let ones = Tensor::<B, 4>::ones([1, c, h, w], device);
    let total = without_batch_norm(|| model.logits(ones)).sum();
    let grads = total.backward();
    struct Flow<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        sum: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Flow<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if D < 2 {
                return;
            }
            let tensor = param.val();
            if let Some(g) = tensor.grad(self.grads) {
                let flow: f64 = (tensor.inner() * g)
                    .sum()
                    .into_data()
                    .convert::<f64>()
                    .to_vec::<f64>()
                    .ok()
                    .and_then(|v| v.first().copied())
                    .unwrap_or(f64::NAN);
                self.sum += flow;
            }
        }
    }
    let mut flow = Flow::<B> {
        grads: &grads,
        sum: 0.0,
    };
    model.visit(&mut flow);
    if !flow.sum.is_finite() {
        return Err(EstimateError::Failed(format!(
            "synflow is not finite ({}): the network's output overflowed; score it on a \
             backend with 64-bit floats",
            flow.sum
        )));
    }
    Ok(flow.sum)
}

/// The Jacobian covariance score of `model` on `images` (Mellor et al., "Neural Architecture
/// Search without Training", arXiv:2006.04647v1; the `jacob_cov` proxy of Abdelfattah et al.,
/// ICLR 2021, whose code this follows): `J`, the gradient of the sum of the logits with respect
/// to the input (the whole batch in one pass, batch norms in training mode), one row per
/// image; `Σ`, the correlation matrix of those rows (NumPy's `corrcoef`); the score is
/// `−Σᵢ (ln(λᵢ + k) + 1 / (λᵢ + k))` over the eigenvalues `λᵢ` of `Σ`, `k = 1e-5` (higher:
/// the network maps different images more differently). Eigenvalues by `faer`'s symmetric
/// eigensolver.
///
/// A network whose output does not depend on some image (a zero Jacobian row, as when no path
/// joins input and output) has no correlation matrix and scores −∞, below every network that
/// does. Fails on a batch of fewer than 2 images or a non-finite gradient.
pub fn jacob_cov<B, M>(model: &M, images: Tensor<B, 4>) -> Result<f64, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    let [n, c, h, w] = images.dims();
    if n < 2 {
        return Err(EstimateError::InvalidConfig(format!(
            "jacob_cov correlates the Jacobians of different images: it needs a batch of at \
             least 2, got {n}"
        )));
    }
    let x = images.require_grad();
    let grads = model.logits(x.clone()).sum().backward();
    let Some(jacobian) = x.grad(&grads) else {
        // The graph never reached the input: the output does not depend on it.
        return Ok(f64::NEG_INFINITY);
    };
    let d = c * h * w;
    let values = jacobian
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| EstimateError::Failed(format!("cannot read the input gradient: {e:?}")))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(EstimateError::Failed(
            "the input gradient of the untrained network is not finite; check the network's \
             initialization and the input normalization"
                .to_string(),
        ));
    }
    correlation_score(values.chunks(d).map(<[f64]>::to_vec).collect())
}

/// `−Σᵢ (ln(λᵢ + k) + 1 / (λᵢ + k))`, `k = 1e-5`, over the eigenvalues `λᵢ` of the correlation
/// matrix of `rows` (all of one length); −∞ when a row is constant (no correlation).
fn correlation_score(mut rows: Vec<Vec<f64>>) -> Result<f64, EstimateError> {
    let n = rows.len();
    // Rows centred and scaled to unit norm: their Gram matrix is the correlation matrix.
    for row in &mut rows {
        let mean = row.iter().sum::<f64>() / row.len().max(1) as f64;
        row.iter_mut().for_each(|v| *v -= mean);
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Ok(f64::NEG_INFINITY);
        }
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let corr = faer::Mat::<f64>::from_fn(n, n, |i, j| {
        rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum()
    });
    let eigenvalues = corr
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|e| {
            EstimateError::Failed(format!("eigenvalues of the correlation matrix: {e:?}"))
        })?;
    const K: f64 = 1e-5;
    Ok(-eigenvalues
        .iter()
        .map(|&l| {
            // Rounding can make the zero eigenvalues of a singular matrix slightly negative.
            let l = l.max(0.0) + K;
            l.ln() + 1.0 / l
        })
        .sum::<f64>())
}

/// The NASWOT score of `model` on `images` (Mellor et al., "Neural Architecture Search without
/// Training", ICML 2021): one forward pass (batch norms in training mode, as the reference code
/// runs it) records the binary code of every ReLU unit for every image
/// ([`nas_supernet::probe::record_relu_codes`]); the score is `ln det K`, `K[i][j]` the number
/// of units where images `i` and `j` agree (both active or both inactive). Higher: the network
/// separates the images more. A kernel that is singular (two images with the same code, as in
/// a network whose output ignores its input) scores −∞, below every other network. Fails on a
/// batch of fewer than 2 images, and on a network with no ReLU the probes see (the library's
/// networks all route theirs through [`nas_supernet::probe::relu`] and
/// [`nas_supernet::fast::Conv::forward_relu`]).
pub fn naswot<B, M>(model: &M, images: Tensor<B, 4>) -> Result<f64, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    let n = images.dims()[0];
    if n < 2 {
        return Err(EstimateError::InvalidConfig(format!(
            "naswot compares the ReLU codes of different images: it needs a batch of at least              2, got {n}"
        )));
    }
    let (_, codes) = record_relu_codes(|| model.logits(images));
    let Some(codes) = codes else {
        return Err(EstimateError::InvalidConfig(
            "naswot saw no ReLU in the network's forward pass: route its activations through              nas_supernet::probe::relu (or fast::Conv::forward_relu)"
                .into(),
        ));
    };
    let k = faer::Mat::<f64>::from_fn(n, n, |i, j| codes.kernel[i * n + j]);
    let eigenvalues = k
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|e| EstimateError::Failed(format!("eigenvalues of the NASWOT kernel: {e:?}")))?;
    // Relative to the largest: rounding leaves a singular kernel's zero eigenvalues tiny.
    let largest = eigenvalues.iter().copied().fold(0.0f64, f64::max);
    if eigenvalues.iter().any(|&l| l <= largest * 1e-12) {
        return Ok(f64::NEG_INFINITY);
    }
    Ok(eigenvalues.iter().map(|l| l.ln()).sum())
}

/// The fisher score of `model` on `images` and `targets` (Turner et al., "BlockSwap", ICLR
/// 2020; the `fisher` proxy of Abdelfattah et al., ICLR 2021, whose code this follows): for
/// every convolution's output `y` (probed by [`nas_supernet::probe::probe_conv_outputs`]),
/// `½ Σ_c mean_n (Σ_{h,w} y · ∂L/∂y)²`, summed over the convolutions; `L` the cross-entropy
/// loss on the batch (batch norms in training mode). The reference code also counts the
/// linear classifier; this counts the convolutions, where the cells differ.
///
/// Fails when the loss is not finite.
pub fn fisher<B, M>(
    model: &M,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
) -> Result<f64, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    let (logits, probes) = probe_conv_outputs::<B, _>(|| model.logits(images));
    let loss = cross_entropy(logits, targets)?;
    let grads = loss.backward();
    let mut total = 0.0;
    for probe in probes {
        if let Some(g) = probe.grad(&grads) {
            let n = g.dims()[0].max(1) as f64;
            total += 0.5 * scalar(g.powi_scalar(2).sum().into_data()) / n;
        }
    }
    if !total.is_finite() {
        return Err(EstimateError::Failed(format!(
            "fisher is not finite ({total}); check the network's initialization and the input              normalization"
        )));
    }
    Ok(total)
}

/// The GraSP score of `model` on `images` and `targets` (Wang et al., ICLR 2020; the `grasp`
/// proxy of Abdelfattah et al., ICLR 2021, whose definition this follows): `−Σ θ · (H g)` over
/// the weights `θ` (the parameters of two or more dimensions), `g` the gradient of the
/// cross-entropy loss `L` on the batch (batch norms in training mode) and `H` its Hessian with
/// respect to the weights, as autograd's double backward computes it (a ReLU's second
/// derivative taken as zero). Higher: removing the weights would reduce the gradient flow
/// more.
///
/// Burn 0.21 has no double backward, so the product is a central difference of gradients:
/// `θ · H g ≈ (θ · ∇L(θ + εg) − θ · ∇L(θ − εg)) / 2ε`, `ε ‖g‖ = δ ‖θ‖` (δ = 10⁻⁶ in 64-bit
/// floats, 10⁻³ in 32-bit ones), with every ReLU's activation mask frozen at `θ`
/// ([`nas_supernet::probe::record_relu_masks`], [`nas_supernet::probe::with_relu_masks`]):
/// without that, ReLUs near zero flip under the step and the difference does not converge
/// (measured: the score changed sign between δ = 10⁻² and 10⁻³); with it the network is smooth
/// in its weights around `θ` and the difference converges to the double-backward value (a
/// test compares it with the closed form of a linear classifier to 10⁻⁶ in 64-bit floats).
/// Max pooling's and ReLU6's upper kinks are not frozen (NAS-Bench-201 has neither).
///
/// Fails when the loss is not finite, or when a perturbed forward pass does not go through
/// the ReLUs the first one recorded.
pub fn grasp<B, M>(
    model: &M,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
) -> Result<f64, EstimateError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
{
    use nas_supernet::burn::tensor::{DType, Element};
    use nas_supernet::probe::{record_relu_masks, with_relu_masks};
    let relative = if <B::FloatElem as Element>::dtype() == DType::F64 {
        1e-6
    } else {
        1e-3
    };
    type Flat<B> = Vec<Tensor<<B as AutodiffBackend>::InnerBackend, 1>>;
    /// The weights of `model` and the gradient of the loss there (zeros where none), flattened,
    /// and the ReLU codes of the forward pass.
    fn weights_and_gradient<B: AutodiffBackend, M: AutodiffModule<B> + Classifier<B>>(
        model: &M,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
    ) -> Result<(Flat<B>, Flat<B>), EstimateError> {
        let grads = cross_entropy(model.logits(images), targets)?.backward();
        struct Collect<'a, B: AutodiffBackend> {
            grads: &'a B::Gradients,
            weights: Flat<B>,
            gradient: Flat<B>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if D < 2 {
                    return;
                }
                let tensor = param.val();
                let w = tensor.clone().inner().flatten::<1>(0, D - 1);
                let g = match tensor.grad(self.grads) {
                    Some(g) => g.flatten::<1>(0, D - 1),
                    None => w.zeros_like(),
                };
                self.weights.push(w);
                self.gradient.push(g);
            }
        }
        let mut c = Collect::<B> {
            grads: &grads,
            weights: Vec::new(),
            gradient: Vec::new(),
        };
        model.visit(&mut c);
        Ok((c.weights, c.gradient))
    }
    fn dot<B: nas_supernet::burn::tensor::backend::Backend>(
        a: &[Tensor<B, 1>],
        b: &[Tensor<B, 1>],
    ) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| scalar((x.clone() * y.clone()).sum().into_data()))
            .sum()
    }
    /// `model` with its weights moved by `step · direction`.
    fn moved<B: AutodiffBackend, M: AutodiffModule<B>>(
        model: &M,
        direction: &Flat<B>,
        step: f64,
    ) -> M {
        struct Move<'a, B: AutodiffBackend> {
            direction: std::slice::Iter<'a, Tensor<B::InnerBackend, 1>>,
            step: f64,
        }
        impl<B: AutodiffBackend> ModuleMapper<B> for Move<'_, B> {
            fn map_float<const D: usize>(
                &mut self,
                param: Param<Tensor<B, D>>,
            ) -> Param<Tensor<B, D>> {
                if D < 2 {
                    return param;
                }
                let Some(d) = self.direction.next() else {
                    return param;
                };
                let (id, tensor, mapper) = param.consume();
                let inner = tensor.inner();
                let shape = inner.shape();
                let value = inner + d.clone().reshape(shape).mul_scalar(self.step);
                Param::from_mapped_value(id, Tensor::from_inner(value).require_grad(), mapper)
            }
        }
        model.clone().map(&mut Move::<B> {
            direction: direction.iter(),
            step,
        })
    }
    let (gradients, masks) =
        record_relu_masks(|| weights_and_gradient(model, images.clone(), targets.clone()));
    let (weights, gradient) = gradients?;
    let g_norm = dot::<B::InnerBackend>(&gradient, &gradient).sqrt();
    let w_norm = dot::<B::InnerBackend>(&weights, &weights).sqrt();
    if g_norm == 0.0 || !g_norm.is_finite() {
        // No weight moves the loss: no gradient flow to preserve.
        return Ok(0.0);
    }
    let eps = relative * w_norm.max(1e-12) / g_norm;
    let side = |step: f64| -> Result<f64, EstimateError> {
        let moved = moved(model, &gradient, step);
        let (result, complete) = with_relu_masks(&masks, || {
            weights_and_gradient(&moved, images.clone(), targets.clone())
        });
        if !complete {
            return Err(EstimateError::Failed(
                "grasp: the perturbed network did not go through the ReLUs of the first \
                 forward pass (is the forward pass deterministic?)"
                    .into(),
            ));
        }
        let (_, g) = result?;
        Ok(dot::<B::InnerBackend>(&weights, &g))
    };
    let (plus, minus) = (side(eps)?, side(-eps)?);
    let score = -(plus - minus) / (2.0 * eps);
    if !score.is_finite() {
        return Err(EstimateError::Failed(format!(
            "grasp is not finite ({score})"
        )));
    }
    Ok(score)
}

/// The cross-entropy loss of `logits` against `targets`, refused when not finite.
fn cross_entropy<B: AutodiffBackend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> Result<Tensor<B, 1>, EstimateError> {
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets);
    let value = scalar(loss.clone().into_data());
    if !value.is_finite() {
        return Err(EstimateError::Failed(format!(
            "the untrained network's loss is not finite ({value}); check the network's              initialization and the input normalization"
        )));
    }
    Ok(loss)
}

/// Scores each architecture's untrained network with a [`ZeroCostProxy`] on a fixed batch of
/// images.
///
/// The objective is the proxy's value (higher is better; for GraSP its negation, see the
/// [module docs](self)); the metrics also hold the network's
/// parameter count (`params`) and the wall time (`seconds`).
pub struct ZeroCostEstimator<B: AutodiffBackend, F> {
    build: F,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    proxy: ZeroCostProxy,
    seed: u64,
    device: Device<B>,
}

impl<B: AutodiffBackend, F> ZeroCostEstimator<B, F> {
    /// An estimator building networks with `build`, scoring them on the first `batch` images
    /// of `data` and their labels (normalized with the data's channel statistics), each network initialized
    /// with `seed`.
    pub fn new(
        build: F,
        data: &ImageDataset,
        batch: usize,
        seed: u64,
        device: Device<B>,
    ) -> Result<Self, EstimateError> {
        if batch == 0 || data.len() < batch {
            return Err(EstimateError::InvalidConfig(format!(
                "a zero-cost batch needs between 1 and {} images (the data's size), got {batch}",
                data.len()
            )));
        }
        let normalize: Normalize = data.channel_stats();
        let [c, h, w] = data.shape();
        let mut pixels = Vec::with_capacity(batch * c * h * w);
        let mut labels = Vec::with_capacity(batch);
        for item in (0..batch).filter_map(|i| data.get(i)) {
            labels.push(i64::from(item.label));
            for (k, &p) in item.pixels.iter().enumerate() {
                let ch = k / (h * w);
                pixels.push((p - normalize.mean[ch]) / normalize.std[ch]);
            }
        }
        let images = Tensor::from_data(TensorData::new(pixels, [batch, c, h, w]), &device);
        let targets = Tensor::from_data(TensorData::new(labels, [batch]), &device);
        Ok(Self {
            build,
            images,
            targets,
            proxy: ZeroCostProxy::default(),
            seed,
            device,
        })
    }

    /// Scores with `proxy` instead of the default ([`ZeroCostProxy::LiveParameters`]).
    pub fn with_proxy(mut self, proxy: ZeroCostProxy) -> Self {
        self.proxy = proxy;
        self
    }
}

impl<A, B, M, F> Estimator<A> for ZeroCostEstimator<B, F>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Classifier<B>,
    F: BuildNetwork<A, B, Network = M>,
{
    /// Scores `arch`'s untrained network (the budget is ignored: there is no training).
    fn estimate(&mut self, arch: &A, _budget: &Budget) -> Result<Metrics, EstimateError> {
        let start = Instant::now();
        let device = self.device.clone();
        let build = &mut self.build;
        let model = seeded(&device, self.seed, || build.build_network(arch, &device))?;
        let params = count_params(&model);
        let score = match self.proxy {
            ZeroCostProxy::LiveParameters => {
                live_parameters(&model, self.images.clone(), self.targets.clone())? as f64
            }
            ZeroCostProxy::Synflow => {
                let [_, c, h, w] = self.images.dims();
                synflow(model, [c, h, w], &device)?
            }
            ZeroCostProxy::Snip => {
                gradient_scores(&model, self.images.clone(), self.targets.clone())?.snip
            }
            ZeroCostProxy::GradNorm => {
                gradient_scores(&model, self.images.clone(), self.targets.clone())?.grad_norm
            }
            ZeroCostProxy::JacobCov => jacob_cov(&model, self.images.clone())?,
            ZeroCostProxy::Naswot => naswot(&model, self.images.clone())?,
            ZeroCostProxy::Fisher => fisher(&model, self.images.clone(), self.targets.clone())?,
            ZeroCostProxy::Grasp => grasp(&model, self.images.clone(), self.targets.clone())?,
        };
        // GraSP ranks NAS-Bench-201 cells against their accuracy (module docs): its objective
        // is negated so that higher is better, as for every other proxy.
        let objective = if self.proxy == ZeroCostProxy::Grasp {
            -score
        } else {
            score
        };
        Ok(Metrics::new(objective)
            .with(self.proxy.name(), score)
            .with("params", params as f64)
            .with("seconds", start.elapsed().as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_space::TextFormat;
    use nas_space::nb201::Nb201Space;
    use nas_supernet::backend::DefaultBackend;
    use nas_supernet::nb201_net::Nb201NetConfig;

    type B = DefaultBackend;

    fn estimator() -> ZeroCostEstimator<B, Nb201NetConfig> {
        let data = ImageDataset::digits();
        let config = Nb201NetConfig {
            channels: 4,
            cells_per_stage: 1,
            in_channels: 1,
            num_classes: 10,
        };
        ZeroCostEstimator::new(config, &data, 4, 0, Default::default()).unwrap()
    }

    fn score(e: &mut ZeroCostEstimator<B, Nb201NetConfig>, cell: &str) -> (f64, f64) {
        let arch = Nb201Space::default().parse(cell).unwrap();
        let m = e.estimate(&arch, &Budget::full()).unwrap();
        (m.objective, m.get("params").unwrap())
    }

    /// Burn fixes the CPU device's float type at its first tensor: synflow on `NdArray<f64>`
    /// after 32-bit work in the same process is refused, not a NaN.
    #[test]
    fn synflow_refuses_a_device_locked_to_another_float_type() {
        type F64 = nas_supernet::burn::backend::Autodiff<nas_supernet::burn::backend::NdArray<f64>>;
        let device = Default::default();
        // 32-bit work first (other tests of this process may have done it already).
        let _ = Tensor::<B, 1>::ones([2], &device);
        let net = Nb201NetConfig {
            channels: 4,
            cells_per_stage: 1,
            in_channels: 1,
            num_classes: 10,
        };
        let arch = Nb201Space::default()
            .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
            .unwrap();
        let model = net.init::<F64>(&arch, &device).unwrap();
        match synflow(model, [1, 8, 8], &device) {
            Err(EstimateError::InvalidConfig(why)) => assert!(why.contains("float"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// GraSP in 32-bit floats (its 64-bit tests, against a closed form, are in
    /// `tests/grasp.rs`): finite, deterministic, 0 where no weight moves the loss.
    #[test]
    fn grasp_scores_cells_in_32_bit_floats() {
        let mut e = estimator().with_proxy(ZeroCostProxy::Grasp);
        let space = Nb201Space::default();
        let mut score = |cell: &str| {
            e.estimate(&space.parse(cell).unwrap(), &Budget::full())
                .unwrap()
                .objective
        };
        let conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let a = score(conv);
        assert!(a.is_finite() && a != 0.0, "{a}");
        assert_eq!(score(conv), a);
        let pool = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|";
        assert_ne!(score(pool), a);
    }

    #[test]
    fn correlation_score_follows_the_eigenvalues() {
        let k = 1e-5_f64;
        let term = |l: f64| (l + k).ln() + 1.0 / (l + k);
        // Uncorrelated rows: the identity, every eigenvalue 1.
        let rows = vec![
            vec![1.0, -1.0, 0.0, 0.0],
            vec![0.0, 0.0, 1.0, -1.0],
            vec![1.0, 1.0, -1.0, -1.0],
        ];
        let got = correlation_score(rows).unwrap();
        assert!((got + 3.0 * term(1.0)).abs() < 1e-9, "{got}");
        // Perfectly correlated rows (one a scaled, shifted copy of the other): eigenvalues 2
        // and 0, far lower.
        let rows = vec![vec![1.0, 2.0, 4.0], vec![3.0, 5.0, 9.0]];
        let got = correlation_score(rows).unwrap();
        let want = -(term(2.0) + term(0.0));
        assert!((got - want).abs() < 1e-6 * want.abs(), "{got} vs {want}");
        assert!(got < -3.0 * term(1.0));
        // A constant row has no correlation: the lowest score.
        let rows = vec![vec![1.0, 1.0, 1.0], vec![1.0, 2.0, 3.0]];
        assert_eq!(correlation_score(rows).unwrap(), f64::NEG_INFINITY);
    }

    #[test]
    fn jacob_cov_ranks_a_cell_without_a_path_last() {
        let mut e = estimator().with_proxy(ZeroCostProxy::JacobCov);
        let space = Nb201Space::default();
        let mut score = |cell: &str| {
            let arch = space.parse(cell).unwrap();
            e.estimate(&arch, &Budget::full()).unwrap().objective
        };
        let dead = score("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        let conv = score(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        );
        assert_eq!(dead, f64::NEG_INFINITY);
        assert!(conv.is_finite(), "{conv}");
        // A batch of one image has no correlation to measure.
        let model = estimator();
        let one = model.images.clone().narrow(0, 0, 1);
        let net = Nb201NetConfig {
            channels: 4,
            cells_per_stage: 1,
            in_channels: 1,
            num_classes: 10,
        }
        .init::<B>(&space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|").unwrap(), &Default::default())
        .unwrap();
        assert!(matches!(
            jacob_cov(&net, one),
            Err(EstimateError::InvalidConfig(_))
        ));
    }

    #[test]
    fn naswot_and_fisher_rank_a_cell_without_a_path_last() {
        let space = Nb201Space::default();
        let dead = space
            .parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
            .unwrap();
        let conv = space
            .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
            .unwrap();
        let pool = space
            .parse("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|")
            .unwrap();
        let mut naswot = estimator().with_proxy(ZeroCostProxy::Naswot);
        let mut fisher = estimator().with_proxy(ZeroCostProxy::Fisher);
        let score = |e: &mut ZeroCostEstimator<B, Nb201NetConfig>, a| {
            e.estimate(a, &Budget::full()).unwrap().objective
        };
        // No path: every image gets the same ReLU codes (a singular kernel), and no
        // convolution's output reaches the loss.
        assert_eq!(score(&mut naswot, &dead), f64::NEG_INFINITY);
        assert_eq!(score(&mut fisher, &dead), 0.0);
        let (n_conv, n_pool) = (score(&mut naswot, &conv), score(&mut naswot, &pool));
        assert!(
            n_conv.is_finite() && n_pool.is_finite(),
            "{n_conv} {n_pool}"
        );
        // A cell of convolutions separates the images more than one of poolings (whose only
        // ReLUs are the reduction blocks' and the last one).
        assert!(n_conv > n_pool, "naswot: conv {n_conv}, pool {n_pool}");
        let f_conv = score(&mut fisher, &conv);
        assert!(f_conv > 0.0 && f_conv.is_finite(), "{f_conv}");
        // Deterministic.
        assert_eq!(score(&mut naswot, &conv), n_conv);
        assert_eq!(score(&mut fisher, &conv), f_conv);
    }

    #[test]
    fn live_parameters_leave_out_operations_no_path_uses() {
        let mut e = estimator();
        let all = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let (live_all, params_all) = score(&mut e, all);
        // Every convolution lies on a path: every parameter is live.
        assert_eq!(live_all, params_all);
        // Node 2 feeds nothing (its edge to node 3 is none): its two incoming convolutions are
        // built but dead. A 3×3 convolution of C channels has 9 C² weights and its batch norm
        // 2 C, in each of the three cells (C = 4, 8, 16).
        let conv = |c: f64| 9.0 * c * c + 2.0 * c;
        let per_net = |n: f64| [4.0, 8.0, 16.0].map(|c| n * conv(c)).iter().sum::<f64>();
        let cut = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|";
        let (live_cut, params_cut) = score(&mut e, cut);
        assert_eq!(params_all - params_cut, per_net(1.0));
        assert_eq!(params_cut - live_cut, per_net(2.0));
        // No path from the input reaches node 2, and node 1 feeds nothing: the cell's output
        // is the same for every image (a convolution of zeros), so the network computes a
        // constant and only the classifier's bias is live.
        let none = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|";
        assert_eq!(score(&mut e, none).0, 10.0);
        // A parameter-free cell: the stem, reductions and classifier stay.
        let (live_skip, _) = score(
            &mut e,
            "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
        );
        assert!(10.0 < live_skip && live_skip < live_cut && live_cut < live_all);
    }

    #[test]
    fn scores_are_deterministic_and_a_bad_batch_is_refused() {
        let cell = "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|";
        assert_eq!(score(&mut estimator(), cell), score(&mut estimator(), cell));
        let data = ImageDataset::digits();
        let config = Nb201NetConfig::default();
        let err = ZeroCostEstimator::<B, _>::new(config, &data, 0, 0, Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("zero-cost batch"), "{err}");
    }

    #[test]
    fn synflow_is_data_free_and_counts_the_flow_that_reaches_the_output() {
        let config = Nb201NetConfig {
            channels: 4,
            cells_per_stage: 1,
            in_channels: 1,
            num_classes: 10,
        };
        let synflow_on = |data: &ImageDataset| {
            ZeroCostEstimator::<B, _>::new(config, data, 2, 0, Default::default())
                .unwrap()
                .with_proxy(ZeroCostProxy::Synflow)
        };
        let digits = ImageDataset::digits();
        // Other images and labels of the same shape: the same scores.
        let flipped = ImageDataset::new(
            "flipped",
            [1, 8, 8],
            10,
            (0..2 * 64).map(|i| (i % 7) as f32 / 7.0).collect(),
            vec![3, 9],
        )
        .unwrap();
        let all = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let (a, _) = score(&mut synflow_on(&digits), all);
        let (b, _) = score(&mut synflow_on(&flipped), all);
        assert_eq!(a, b);
        assert!(a > 0.0 && a.is_finite(), "{a}");
        // Fewer and smaller operations on the paths: less flow.
        let thinner = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|";
        let (t, _) = score(&mut synflow_on(&digits), thinner);
        assert!(0.0 < t && t < a, "{t} vs {a}");
        // No path through the cell: the network's output does not depend on any weight (the
        // cell outputs zeros), so no weight carries flow.
        let cut = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|";
        assert_eq!(score(&mut synflow_on(&digits), cut).0, 0.0);
        // Batch norms are back after synflow: the live-parameter count is unchanged.
        let mut live = estimator();
        let before = score(&mut live, thinner);
        score(&mut synflow_on(&digits), thinner);
        assert_eq!(score(&mut live, thinner), before);
    }

    #[test]
    fn snip_and_grad_norm_come_from_the_weights_the_loss_depends_on() {
        let with = |proxy| estimator().with_proxy(proxy);
        let all = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
        let cut = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|";
        for proxy in [ZeroCostProxy::Snip, ZeroCostProxy::GradNorm] {
            let (a, _) = score(&mut with(proxy), all);
            assert!(a > 0.0 && a.is_finite(), "{proxy:?}: {a}");
            assert_eq!(
                score(&mut with(proxy), all).0,
                a,
                "{proxy:?} is deterministic"
            );
            // The network computes a constant: no weight's gradient is non-zero.
            assert_eq!(score(&mut with(proxy), cut).0, 0.0, "{proxy:?}");
        }
    }
}
