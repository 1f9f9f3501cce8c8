//! Chain supernets: every candidate block of every searchable layer of the ProxylessNAS
//! (MobileNetV2) and SPOS (ShuffleNetV2) backbones, with the fixed layers of
//! [`crate::chain_net`] around them.
//!
//! The layout mirrors [`ChainNetConfig::proxyless`] and [`ChainNetConfig::spos`] exactly (same
//! width multiplier, stem stride and channel rounding), so the path of an architecture computes
//! the same function as the stand-alone network of that architecture, with shared weights, and
//! has the same multiply-accumulates.
//!
//! Each searchable layer is a [`ChoiceLayer`]: its candidates in the space's choice order
//! (ProxylessNAS: [`ProxylessSpace::layer_choices`], `zero` last where the layer may be skipped;
//! SPOS: [`SposChoice::ALL`]). The `zero` choice of ProxylessNAS computes nothing: the layer is
//! its identity shortcut. An MBConv candidate of an identity-shaped layer includes that shortcut
//! (`x + f(x)`), as in the stand-alone network.
//!
//! The ProxylessNAS supernet's candidates have independent weights by default, as in the
//! paper; [`CandidateWeights::Nested`] shares one set of convolution weights per layer among
//! them ([`NestedMbConv`]: Single-Path NAS' superkernel, Once-for-All's elastic kernel and
//! width), which lets a short single-path training learn (`docs/benchmarks.md`).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::SearchSpace;
use nas_space::proxyless::{MbConvChoice, ProxylessArch, ProxylessSpace};
use nas_space::spos::{SposArch, SposChoice, SposSpace};

use super::SinglePath;
use crate::chain_net::{ChainNetConfig, Stem, spos_block};
use crate::error::SupernetError;
use crate::network::{global_avg_pool, linear_macs};
use crate::ops::{NestedMbConv, Op, OpConfig, OpKind};

/// One searchable layer of a supernet: every candidate operation, and optionally the `zero`
/// choice (identity shortcut only), which has the index `candidates().len()`.
#[derive(Module, Debug)]
pub struct ChoiceLayer<B: Backend> {
    candidates: Vec<Op<B>>,
    /// The candidates as one block of nested, shared weights (then `candidates` is empty).
    nested: Option<NestedMbConv<B>>,
    skippable: bool,
}

/// How the candidates of a ProxylessNAS supernet's layer hold their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum CandidateWeights {
    /// Every candidate has its own weights (the paper's supernet).
    #[default]
    Independent,
    /// The candidates of a layer share one set of nested convolution weights
    /// ([`NestedMbConv`]); their batch norms stay their own.
    Nested,
}

impl<B: Backend> ChoiceLayer<B> {
    /// The candidate operations (without the `zero` choice); empty when the candidates share
    /// nested weights ([`ChoiceLayer::nested`]).
    pub fn candidates(&self) -> &[Op<B>] {
        &self.candidates
    }

    /// The candidates' shared, nested weights, when the supernet was built with
    /// [`CandidateWeights::Nested`].
    pub fn nested(&self) -> Option<&NestedMbConv<B>> {
        self.nested.as_ref()
    }

    fn num_candidates(&self) -> usize {
        self.nested
            .as_ref()
            .map_or(self.candidates.len(), NestedMbConv::num_candidates)
    }

    /// The number of choices: the candidates, plus one when the layer may be skipped.
    pub fn num_choices(&self) -> usize {
        self.num_candidates() + usize::from(self.skippable)
    }

    /// True when `choice` is the `zero` choice (the identity shortcut alone).
    pub fn is_zero(&self, choice: usize) -> bool {
        self.skippable && choice == self.num_candidates()
    }

    /// Applies choice `choice`.
    ///
    /// # Panics
    /// If `choice >= num_choices()` (a bug in the caller: choices come from the space).
    pub fn forward_choice(&self, x: Tensor<B, 4>, choice: usize) -> Tensor<B, 4> {
        if let Some(nested) = &self.nested
            && choice < nested.num_candidates()
        {
            return nested.forward(x, choice);
        }
        match self.candidates.get(choice) {
            Some(op) => op.forward(x),
            None if self.is_zero(choice) => x,
            None => panic!(
                "choice {choice} out of range: the layer has {} choices",
                self.num_choices()
            ),
        }
    }

    /// Multiply-accumulates of choice `choice` and its output shape.
    pub fn choice_macs(&self, choice: usize, input: [usize; 3]) -> (u64, [usize; 3]) {
        if let Some(nested) = &self.nested
            && choice < nested.num_candidates()
        {
            return nested.macs(choice, input);
        }
        match self.candidates.get(choice) {
            Some(op) => op.macs(input),
            None => (0, input),
        }
    }

    /// The all-paths mixture of DARTS: `Σ_i softmax(alpha)_i · choice_i(x)`, computing every
    /// candidate (for comparison with the binarized, single-path forward pass).
    pub fn forward_mixture(&self, x: Tensor<B, 4>, alpha: Tensor<B, 1>) -> Tensor<B, 4> {
        let n = self.num_choices();
        let w = softmax(alpha, 0);
        let mut sum: Option<Tensor<B, 4>> = None;
        for i in 0..n {
            let wi = w.clone().slice(i..i + 1).reshape([1, 1, 1, 1]);
            let y = self.forward_choice(x.clone(), i) * wi;
            sum = Some(match sum {
                Some(s) => s + y,
                None => y,
            });
        }
        sum.unwrap_or(x)
    }
}

fn arch_error(space: &str, reason: String) -> SupernetError {
    SupernetError::InvalidConfig {
        what: "supernet architecture",
        reason: format!("{space}: {reason}"),
    }
}

/// The ProxylessNAS supernet (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct ProxylessSupernet<B: Backend> {
    stem: Stem<B>,
    first: Op<B>,
    layers: Vec<ChoiceLayer<B>>,
    feature_mix: Stem<B>,
    classifier: Linear<B>,
    space: ProxylessSpace,
}

/// The SPOS supernet (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct SposSupernet<B: Backend> {
    stem: Stem<B>,
    layers: Vec<ChoiceLayer<B>>,
    conv_last: Stem<B>,
    classifier: Linear<B>,
    space: SposSpace,
}

impl ChainNetConfig {
    /// Builds the ProxylessNAS supernet of `space`: every layer holds all of its choices, each
    /// with its own weights.
    pub fn proxyless_supernet<B: Backend>(
        &self,
        space: &ProxylessSpace,
        device: &Device<B>,
    ) -> Result<ProxylessSupernet<B>, SupernetError> {
        self.proxyless_supernet_with(space, CandidateWeights::Independent, device)
    }

    /// [`ChainNetConfig::proxyless_supernet`] with the candidates' weights held as `weights`
    /// says.
    pub fn proxyless_supernet_with<B: Backend>(
        &self,
        space: &ProxylessSpace,
        weights: CandidateWeights,
        device: &Device<B>,
    ) -> Result<ProxylessSupernet<B>, SupernetError> {
        let scaled = self.proxyless_space(space)?;
        let c = scaled.config();
        let first = OpConfig::new(
            OpKind::MbConv {
                kernel: 3,
                expansion: 1,
            },
            c.stem_channels,
            c.first_block_channels,
            1,
        )
        .init(device)?;
        let mut layers = Vec::with_capacity(scaled.num_layers());
        // Widths come from the scaled space, the choices from the given one: scaling can make
        // a layer identity-shaped (e.g. two stages rounded to the same width) that is not in
        // `space`, and that layer must not offer `zero`, which `space`'s architectures cannot
        // name.
        for (i, (layer, given)) in scaled.layers().iter().zip(space.layers()).enumerate() {
            let mut candidates = Vec::new();
            let mut shapes = Vec::new();
            for choice in space.layer_choices(i) {
                if let MbConvChoice::MbConv { kernel, expansion } = choice {
                    let kind = OpKind::MbConv {
                        kernel: kernel as usize,
                        expansion: expansion as usize,
                    };
                    let config =
                        OpConfig::new(kind, layer.in_channels, layer.out_channels, layer.stride);
                    if weights == CandidateWeights::Nested {
                        config.check()?;
                        shapes.push((kernel as usize, expansion as usize));
                    } else {
                        candidates.push(config.init(device)?);
                    }
                }
            }
            let nested = (weights == CandidateWeights::Nested && !shapes.is_empty()).then(|| {
                NestedMbConv::new(
                    layer.in_channels,
                    layer.out_channels,
                    layer.stride,
                    &shapes,
                    device,
                )
            });
            layers.push(ChoiceLayer {
                candidates,
                nested,
                skippable: given.skippable,
            });
        }
        let last = scaled
            .layers()
            .last()
            .map_or(c.first_block_channels, |l| l.out_channels);
        Ok(ProxylessSupernet {
            stem: Stem::new(self.in_channels, c.stem_channels, 3, c.stem_stride, device),
            first,
            layers,
            feature_mix: Stem::new(last, c.feature_mix_channels, 1, 1, device),
            classifier: LinearConfig::new(c.feature_mix_channels, self.num_classes).init(device),
            space: space.clone(),
        })
    }

    /// Builds the SPOS supernet of `space` (stem stride 2 unless overridden): every layer holds
    /// the four blocks.
    pub fn spos_supernet<B: Backend>(
        &self,
        space: &SposSpace,
        device: &Device<B>,
    ) -> Result<SposSupernet<B>, SupernetError> {
        let scaled = self.spos_space(space)?;
        let c = scaled.config();
        let layers = scaled
            .layers()
            .iter()
            .map(|layer| {
                let candidates = SposChoice::ALL
                    .iter()
                    .map(|choice| spos_block(*choice, layer).init(device))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ChoiceLayer {
                    candidates,
                    nested: None,
                    skippable: false,
                })
            })
            .collect::<Result<Vec<_>, SupernetError>>()?;
        let last_in = *c.stage_channels.last().unwrap_or(&c.stem_channels);
        Ok(SposSupernet {
            stem: Stem::new(
                self.in_channels,
                c.stem_channels,
                3,
                self.stem_stride.unwrap_or(2),
                device,
            ),
            layers,
            conv_last: Stem::new(last_in, c.last_channels, 1, 1, device),
            classifier: LinearConfig::new(c.last_channels, self.num_classes)
                .with_bias(false)
                .init(device),
            space: space.clone(),
        })
    }
}

impl<B: Backend> ProxylessSupernet<B> {
    /// The space (as given, before width scaling) whose architectures this supernet holds.
    pub fn space(&self) -> &ProxylessSpace {
        &self.space
    }

    /// The searchable layers.
    pub fn layers(&self) -> &[ChoiceLayer<B>] {
        &self.layers
    }

    /// The choice index of each layer of `arch` (positions in
    /// [`ProxylessSpace::layer_choices`]).
    pub fn choice_indices(&self, arch: &ProxylessArch) -> Result<Vec<usize>, SupernetError> {
        self.space.validate(arch)?;
        arch.layers
            .iter()
            .enumerate()
            .map(|(l, c)| {
                self.space
                    .layer_choices(l)
                    .iter()
                    .position(|x| x == c)
                    .ok_or_else(|| arch_error("proxyless", format!("layer {l} cannot be `{c}`")))
            })
            .collect()
    }

    /// The architecture of choice indices `indices` (one per layer).
    pub fn arch_of(&self, indices: &[usize]) -> Result<ProxylessArch, SupernetError> {
        if indices.len() != self.layers.len() {
            return Err(arch_error(
                "proxyless",
                format!(
                    "{} choice indices for {} layers",
                    indices.len(),
                    self.layers.len()
                ),
            ));
        }
        indices
            .iter()
            .enumerate()
            .map(|(l, &i)| {
                self.space.layer_choices(l).get(i).copied().ok_or_else(|| {
                    arch_error(
                        "proxyless",
                        format!(
                            "layer {l} has no choice {i} (it has {})",
                            self.layers[l].num_choices()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(ProxylessArch::new)
    }

    /// The fixed layers before the searchable ones: stem and first block.
    pub fn head(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.first.forward(self.stem.forward(images, true))
    }

    /// The fixed layers after the searchable ones: feature mix, pooling, classifier.
    pub fn tail(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.feature_mix.forward(x, true);
        self.classifier.forward(global_avg_pool(x))
    }

    /// Logits of the path given by one choice index per layer.
    pub fn forward_indices(&self, images: Tensor<B, 4>, indices: &[usize]) -> Tensor<B, 2> {
        let mut x = self.head(images);
        for (layer, &i) in self.layers.iter().zip(indices) {
            x = layer.forward_choice(x, i);
        }
        self.tail(x)
    }

    /// The DARTS-style forward pass over the same space: every layer is the softmax-weighted
    /// sum of all its choices (`alphas[l]` has one entry per choice of layer `l`).
    pub fn forward_mixture(&self, images: Tensor<B, 4>, alphas: &[Tensor<B, 1>]) -> Tensor<B, 2> {
        let mut x = self.head(images);
        for (layer, alpha) in self.layers.iter().zip(alphas) {
            x = layer.forward_mixture(x, alpha.clone());
        }
        self.tail(x)
    }

    /// Multiply-accumulates of the fixed layers and of the path of `indices`.
    pub fn indices_macs(&self, indices: &[usize], input: [usize; 3]) -> u64 {
        let (stem, shape) = self.stem.macs(input);
        let (first, mut shape) = self.first.macs(shape);
        let mut total = stem + first;
        for (layer, &i) in self.layers.iter().zip(indices) {
            let (m, s) = layer.choice_macs(i, shape);
            total += m;
            shape = s;
        }
        let (mix, _) = self.feature_mix.macs(shape);
        total + mix + linear_macs(&self.classifier)
    }

    /// The input shape `[c, h, w]` of every searchable layer for one image of shape `input`.
    pub fn layer_inputs(&self, input: [usize; 3]) -> Vec<[usize; 3]> {
        let (_, shape) = self.stem.macs(input);
        let (_, mut shape) = self.first.macs(shape);
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            out.push(shape);
            shape = layer.choice_macs(0, shape).1;
        }
        out
    }
}

impl<B: Backend> SinglePath<B> for ProxylessSupernet<B> {
    type Arch = ProxylessArch;

    fn path_logits(&self, images: Tensor<B, 4>, arch: &ProxylessArch) -> Tensor<B, 2> {
        let indices = self
            .choice_indices(arch)
            .unwrap_or_else(|e| panic!("architecture not in the supernet's space: {e}"));
        self.forward_indices(images, &indices)
    }

    fn path_macs(&self, arch: &ProxylessArch, input: [usize; 3]) -> u64 {
        let indices = self
            .choice_indices(arch)
            .unwrap_or_else(|e| panic!("architecture not in the supernet's space: {e}"));
        self.indices_macs(&indices, input)
    }

    fn check_arch(&self, arch: &ProxylessArch) -> Result<(), SupernetError> {
        self.choice_indices(arch).map(|_| ())
    }
}

impl<B: Backend> SposSupernet<B> {
    /// The space (as given, before width scaling) whose architectures this supernet holds.
    pub fn space(&self) -> &SposSpace {
        &self.space
    }

    /// The searchable layers.
    pub fn layers(&self) -> &[ChoiceLayer<B>] {
        &self.layers
    }

    fn indices(&self, arch: &SposArch) -> Result<Vec<usize>, SupernetError> {
        self.space.validate(arch)?;
        Ok(arch.to_indices())
    }
}

impl<B: Backend> SinglePath<B> for SposSupernet<B> {
    type Arch = SposArch;

    fn path_logits(&self, images: Tensor<B, 4>, arch: &SposArch) -> Tensor<B, 2> {
        let indices = self
            .indices(arch)
            .unwrap_or_else(|e| panic!("architecture not in the supernet's space: {e}"));
        let mut x = self.stem.forward(images, false);
        for (layer, i) in self.layers.iter().zip(indices) {
            x = layer.forward_choice(x, i);
        }
        let x = self.conv_last.forward(x, false);
        self.classifier.forward(global_avg_pool(x))
    }

    fn path_macs(&self, arch: &SposArch, input: [usize; 3]) -> u64 {
        let indices = self
            .indices(arch)
            .unwrap_or_else(|e| panic!("architecture not in the supernet's space: {e}"));
        let (mut total, mut shape) = self.stem.macs(input);
        for (layer, i) in self.layers.iter().zip(indices) {
            let (m, s) = layer.choice_macs(i, shape);
            total += m;
            shape = s;
        }
        let (last, _) = self.conv_last.macs(shape);
        total + last + linear_macs(&self.classifier)
    }

    fn check_arch(&self, arch: &SposArch) -> Result<(), SupernetError> {
        self.indices(arch).map(|_| ())
    }
}
