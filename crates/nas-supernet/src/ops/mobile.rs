//! Mobile blocks: MobileNetV2's inverted bottleneck (ProxylessNAS) and the ShuffleNetV2 units
//! (SPOS).

use crate::probe::relu;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};

use super::chain_macs;
use crate::fast::{Conv, batch_norm};

fn relu6<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.clamp(0.0, 6.0)
}

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
            Some((conv, bn)) => relu6(batch_norm(bn, conv.forward(x.clone()))),
            None => x.clone(),
        };
        let h = relu6(batch_norm(&self.bn_depthwise, self.depthwise.forward(h)));
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
            x = batch_norm(bn, conv.forward(x));
            if *act {
                x = relu(x);
            }
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
