//! Mobile blocks: MobileNetV2's inverted bottleneck (ProxylessNAS) and the ShuffleNetV2 units
//! (SPOS).

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};

use super::chain_macs;
use crate::fast::{Conv, batch_norm, batch_norm_relu, batch_norm_relu6};

/// MobileNetV2's inverted bottleneck (ProxylessNAS `MBInvertedConvLayer`), with the residual
/// connection of `MobileInvertedResidualBlock` when the stride is 1 and the widths are equal.
#[derive(Module, Debug)]
pub struct MbConv<B: Backend> {
    pub(super) expand: Option<(Conv<B>, BatchNorm<B>)>,
    pub(super) depthwise: Conv<B>,
    pub(super) bn_depthwise: BatchNorm<B>,
    pub(super) project: Conv<B>,
    pub(super) bn_project: BatchNorm<B>,
    pub(super) residual: bool,
}

impl<B: Backend> MbConv<B> {
    /// An inverted bottleneck of hidden width `expansion · c_in`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        expansion: usize,
        device: &Device<B>,
    ) -> Self {
        let hidden = c_in * expansion;
        Self {
            expand: (expansion != 1).then(|| {
                (
                    Conv::new(c_in, hidden, 1, 1, 1, 1, device),
                    BatchNormConfig::new(hidden).init(device),
                )
            }),
            depthwise: Conv::new(hidden, hidden, kernel, stride, 1, hidden, device),
            bn_depthwise: BatchNormConfig::new(hidden).init(device),
            project: Conv::new(hidden, c_out, 1, 1, 1, 1, device),
            bn_project: BatchNormConfig::new(c_out).init(device),
            residual: stride == 1 && c_in == c_out,
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = match &self.expand {
            Some((conv, bn)) => batch_norm_relu6(bn, conv.forward(x.clone())),
            None => x.clone(),
        };
        let h = batch_norm_relu6(&self.bn_depthwise, self.depthwise.forward(h));
        let h = batch_norm(&self.bn_project, self.project.forward(h));
        if self.residual { h + x } else { h }
    }
}

/// A ShuffleNetV2 unit as in SPOS's `Shufflenet` and `Shuffle_Xception` blocks.
///
/// Stride 1: the input's even channels pass through, the odd ones go through the main branch
/// (this split *is* the channel shuffle of the previous unit, as in the SPOS code's
/// `channel_shuffle`); stride 2: a projection branch (depthwise k×k stride 2, BN, 1×1, BN,
/// ReLU) and the main branch both read the whole input. The outputs are concatenated.
#[derive(Module, Debug)]
pub struct ShuffleUnit<B: Backend> {
    pub(super) main: Vec<(Conv<B>, BatchNorm<B>, bool)>,
    pub(super) projection: Vec<(Conv<B>, BatchNorm<B>, bool)>,
    pub(super) stride: usize,
}

impl<B: Backend> ShuffleUnit<B> {
    /// A unit from `c_in` to `c_out` channels; `xception` selects SPOS's Xception-like branch.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        xception: bool,
        device: &Device<B>,
    ) -> Self {
        let inp = if stride == 1 { c_in / 2 } else { c_in };
        let mid = (c_out / 2).max(1);
        let outputs = c_out - inp;
        let bn = |c| BatchNormConfig::new(c).init(device);
        let pw = |a, b| (Conv::new(a, b, 1, 1, 1, 1, device), bn(b), true);
        let dw = |c, k, s| (Conv::new(c, c, k, s, 1, c, device), bn(c), false);
        let main = if xception {
            vec![
                dw(inp, 3, stride),
                pw(inp, mid),
                dw(mid, 3, 1),
                pw(mid, mid),
                dw(mid, 3, 1),
                pw(mid, outputs),
            ]
        } else {
            vec![pw(inp, mid), dw(mid, kernel, stride), pw(mid, outputs)]
        };
        let projection = if stride == 2 {
            vec![dw(inp, kernel, 2), pw(inp, inp)]
        } else {
            Vec::new()
        };
        Self {
            main,
            projection,
            stride,
        }
    }

    pub(super) fn branch(
        layers: &[(Conv<B>, BatchNorm<B>, bool)],
        mut x: Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        for (conv, bn, act) in layers {
            let y = conv.forward(x);
            x = if *act {
                batch_norm_relu(bn, y)
            } else {
                batch_norm(bn, y)
            };
        }
        x
    }

    /// Applies the unit.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.stride == 1 {
            let [n, c, h, w] = x.dims();
            let pairs = x.reshape([n, c / 2, 2, h, w]);
            let keep = pairs
                .clone()
                .slice([0..n, 0..c / 2, 0..1])
                .reshape([n, c / 2, h, w]);
            let main = pairs
                .slice([0..n, 0..c / 2, 1..2])
                .reshape([n, c / 2, h, w]);
            Tensor::cat(vec![keep, Self::branch(&self.main, main)], 1)
        } else {
            let proj = Self::branch(&self.projection, x.clone());
            Tensor::cat(vec![proj, Self::branch(&self.main, x)], 1)
        }
    }

    pub(super) fn macs(&self, input: [usize; 3]) -> (u64, [usize; 3]) {
        let [c, h, w] = input;
        let run = |layers: &[(Conv<B>, BatchNorm<B>, bool)]| {
            let convs: Vec<&Conv<B>> = layers.iter().map(|(c, _, _)| c).collect();
            chain_macs(&convs, h, w)
        };
        let (main, [cm, ho, wo]) = run(&self.main);
        if self.stride == 1 {
            (main, [c - c / 2 + cm, ho, wo])
        } else {
            let (proj, [cp, _, _]) = run(&self.projection);
            (main + proj, [cp + cm, ho, wo])
        }
    }
}

/// The batch norms of one candidate of a [`NestedMbConv`] (each candidate keeps its own).
#[derive(Module, Debug)]
pub struct NestedNorms<B: Backend> {
    expand: Option<BatchNorm<B>>,
    depthwise: BatchNorm<B>,
    project: BatchNorm<B>,
}

/// The inverted-bottleneck candidates of one layer (`kxk_MBConv{e}` for several kernels `k`
/// and expansions `e`) with **nested, shared convolution weights**: one expansion, depthwise
/// and projection weight of the largest kernel and expansion, of which each candidate uses the
/// first `e · c_in` hidden channels and the centred `k × k` window. This is Single-Path NAS'
/// superkernel (Stamoulis et al., 2019) and Once-for-All's elastic kernel and width (Cai et
/// al., ICLR 2020, without its kernel transformation matrices). Every candidate's batch norms
/// are its own (their statistics differ per candidate, as in slimmable networks).
///
/// Sharing makes a single-path supernet of such layers trainable in few steps: with
/// independent candidates, a layer that switches candidates hands the next one unrelated
/// channels (`docs/benchmarks.md`, ProxylessNAS).
#[derive(Module, Debug)]
pub struct NestedMbConv<B: Backend> {
    expand: Option<Param<Tensor<B, 4>>>,
    depthwise: Param<Tensor<B, 4>>,
    project: Param<Tensor<B, 4>>,
    norms: Vec<NestedNorms<B>>,
    kernels: Vec<usize>,
    expansions: Vec<usize>,
    in_channels: usize,
    stride: usize,
    residual: bool,
}

impl<B: Backend> NestedMbConv<B> {
    /// The candidates `(kernel, expansion)` from `c_in` to `c_out` channels at `stride`, with
    /// the residual connection when the stride is 1 and the widths are equal. Weights are
    /// initialized as the largest candidate's would be.
    ///
    /// # Panics
    /// If `candidates` is empty, or a kernel is even or an expansion 0: a bug in the caller
    /// (the ProxylessNAS space's candidates are checked where they are parsed).
    pub fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        candidates: &[(usize, usize)],
        device: &Device<B>,
    ) -> Self {
        assert!(
            !candidates.is_empty() && candidates.iter().all(|&(k, e)| k % 2 == 1 && e > 0),
            "NestedMbConv: candidates {candidates:?} must be non-empty, with odd kernels and positive expansions"
        );
        let k_max = candidates.iter().map(|c| c.0).max().unwrap_or(1);
        let e_max = candidates.iter().map(|c| c.1).max().unwrap_or(1);
        let hidden = c_in * e_max;
        let norms = candidates
            .iter()
            .map(|&(_, e)| NestedNorms {
                expand: (e != 1).then(|| BatchNormConfig::new(c_in * e).init(device)),
                depthwise: BatchNormConfig::new(c_in * e).init(device),
                project: BatchNormConfig::new(c_out).init(device),
            })
            .collect();
        Self {
            expand: candidates
                .iter()
                .any(|c| c.1 != 1)
                .then(|| Conv::new(c_in, hidden, 1, 1, 1, 1, device).inner.weight),
            depthwise: Conv::new(hidden, hidden, k_max, stride, 1, hidden, device)
                .inner
                .weight,
            project: Conv::new(hidden, c_out, 1, 1, 1, 1, device).inner.weight,
            norms,
            kernels: candidates.iter().map(|c| c.0).collect(),
            expansions: candidates.iter().map(|c| c.1).collect(),
            in_channels: c_in,
            stride,
            residual: stride == 1 && c_in == c_out,
        }
    }

    /// The number of candidates.
    pub fn num_candidates(&self) -> usize {
        self.kernels.len()
    }

    /// Candidate `i`'s `(kernel, expansion)`.
    pub fn candidate(&self, i: usize) -> (usize, usize) {
        (self.kernels[i], self.expansions[i])
    }

    /// Candidate `i`'s convolution weights: expansion (`None` at expansion 1), depthwise and
    /// projection, sliced from the shared ones.
    pub fn weights(&self, i: usize) -> (Option<Tensor<B, 4>>, Tensor<B, 4>, Tensor<B, 4>) {
        let (k, e) = self.candidate(i);
        let h = self.in_channels * e;
        let [_, _, k_max, _] = self.depthwise.shape().dims::<4>();
        let off = (k_max - k) / 2;
        let [c_out, _, _, _] = self.project.shape().dims::<4>();
        let expand = match (&self.expand, e) {
            (Some(w), e) if e != 1 => Some(w.val().narrow(0, 0, h)),
            _ => None,
        };
        let depthwise = self
            .depthwise
            .val()
            .slice([0..h, 0..1, off..off + k, off..off + k]);
        let project = self.project.val().slice([0..c_out, 0..h]);
        (expand, depthwise, project)
    }

    /// The depthwise convolution's geometry for kernel `k`: the stride, "same" padding.
    fn depthwise_geometry(&self, k: usize) -> crate::geometry::ConvGeometry {
        crate::geometry::ConvGeometry::square(self.stride, (k - 1) / 2, 1)
    }

    /// Applies candidate `i` (`i < num_candidates()`; panics otherwise, a bug in the caller).
    pub fn forward(&self, x: Tensor<B, 4>, i: usize) -> Tensor<B, 4> {
        use crate::fast::{conv2d, depthwise_conv2d};
        use crate::geometry::ConvGeometry;
        let (k, _) = self.candidate(i);
        let norms = &self.norms[i];
        let (expand, depthwise, project) = self.weights(i);
        let one = ConvGeometry::square(1, 0, 1);
        let h = match (expand, &norms.expand) {
            (Some(w), Some(bn)) => batch_norm_relu6(bn, conv2d(x.clone(), w, one)),
            _ => x.clone(),
        };
        let g = self.depthwise_geometry(k);
        let h = batch_norm_relu6(&norms.depthwise, depthwise_conv2d(h, depthwise, g));
        let h = batch_norm(&norms.project, conv2d(h, project, one));
        if self.residual { h + x } else { h }
    }

    /// Multiply-accumulates of candidate `i` on one `input` `[c, h, w]`, and its output shape
    /// (the same as the stand-alone [`MbConv`]'s).
    pub fn macs(&self, i: usize, input: [usize; 3]) -> (u64, [usize; 3]) {
        let (k, e) = self.candidate(i);
        let [c, h, w] = input;
        let hidden = c * e;
        let c_out = self.project.shape().dims::<4>()[0];
        let g = self.depthwise_geometry(k);
        let (ho, wo) = (g.output_size(0, h, k), g.output_size(1, w, k));
        let expand = if e == 1 { 0 } else { hidden * c * h * w };
        let depthwise = hidden * k * k * ho * wo;
        let project = c_out * hidden * ho * wo;
        ((expand + depthwise + project) as u64, [c_out, ho, wo])
    }
}
