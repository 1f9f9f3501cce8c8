//! Networks built from architectures: shapes, parameter counts against the papers, gradients.

mod support;

use burn::backend::NdArray;
use burn::module::{AutodiffModule, Module};
use burn::tensor::{Distribution, Tensor};
use nas_space::darts::{self, Genotype};
use nas_space::nb201::Nb201Arch;
use nas_supernet::backend::DefaultBackend;
use nas_supernet::darts_net::DartsNetConfig;
use nas_supernet::nb201_net::Nb201NetConfig;
use nas_supernet::network::count_params;
use nas_supernet::{Classifier, TrainOptions};
use support::tiny_nb201;

type B = NdArray;

const BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

#[test]
fn nb201_network_shapes_and_params() {
    let device = Default::default();
    let arch: Nb201Arch = BEST.parse().unwrap();
    let net = Nb201NetConfig::default()
        .init::<DefaultBackend>(&arch, &device)
        .unwrap();
    let x = Tensor::<DefaultBackend, 4>::random([2, 3, 32, 32], Distribution::Default, &device);
    assert_eq!(net.logits(x).dims(), [2, 10]);
    // Hand count: per cell 4 conv3x3 + 1 conv1x1 (37 C^2) and 5 batch norms (10 C), at
    // C = 16, 32, 64, 5 cells each; plus stem, two residual blocks, last BN and classifier.
    let fixed = (3 * 16 * 9 + 32)
        + (16 * 32 * 9 + 64 + 32 * 32 * 9 + 64 + 16 * 32)
        + (32 * 64 * 9 + 128 + 64 * 64 * 9 + 128 + 32 * 64)
        + 128
        + 650;
    let cells: usize = [16usize, 32, 64]
        .iter()
        .map(|c| 5 * (37 * c * c + 10 * c))
        .sum();
    assert_eq!(count_params(&net), fixed + cells);
    // Burn's own count also includes the batch norms' running mean and variance.
    assert!(net.num_params() > count_params(&net));
    // The all-3x3 cell is the largest of the benchmark: about 1.53 M parameters (NAS-Bench-201).
    let big: Nb201Arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        .parse()
        .unwrap();
    let params = count_params(
        &Nb201NetConfig::default()
            .init::<DefaultBackend>(&big, &device)
            .unwrap(),
    );
    assert!((1_520_000..1_545_000).contains(&params), "{params}");

    // A cell with only `none` edges still runs (the cell outputs zeros).
    let none: Nb201Arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
        .parse()
        .unwrap();
    let net = tiny_nb201(3).init::<B>(&none, &device).unwrap();
    let y = net.logits(Tensor::random([1, 1, 8, 8], Distribution::Default, &device));
    assert_eq!(y.dims(), [1, 3]);
}

#[test]
fn darts_v2_network_has_the_papers_parameter_count() {
    let device = Default::default();
    let g: Genotype = darts::darts_v2();
    let config = DartsNetConfig::default();
    let net = config.init::<DefaultBackend>(&g, &device).unwrap();
    // DARTS reports 3.3 M parameters for DARTS_V2 at C = 36, 20 cells (auxiliary head excluded).
    let aux = 768 * 10 + 10 + 128 * 576 + 768 * 128 * 4 + 2 * 128 + 2 * 768;
    let params = count_params(&net) - aux;
    assert!((3_250_000..3_400_000).contains(&params), "{params}");

    let small = DartsNetConfig {
        channels: 8,
        layers: 5,
        ..DartsNetConfig::default()
    };
    let net = small.init::<B>(&g, &device).unwrap();
    let x = Tensor::<B, 4>::random([2, 3, 16, 16], Distribution::Default, &device);
    let (logits, aux) = net.train_logits(
        x.clone(),
        &TrainOptions {
            drop_path: 0.2,
            seed: 1,
        },
    );
    assert_eq!(logits.dims(), [2, 10]);
    assert_eq!(aux.unwrap().dims(), [2, 10]);
    assert_eq!(net.logits(x).dims(), [2, 10]);
}

#[test]
fn published_genotypes_all_build() {
    let device = Default::default();
    let config = DartsNetConfig {
        channels: 4,
        layers: 3,
        auxiliary: false,
        ..DartsNetConfig::default()
    };
    for g in [
        darts::darts_v1(),
        darts::darts_v2(),
        darts::pdarts(),
        darts::nasnet(),
        darts::amoebanet(),
    ] {
        let net = config.init::<B>(&g, &device).unwrap();
        let x = Tensor::<B, 4>::random([1, 3, 8, 8], Distribution::Default, &device);
        assert_eq!(net.logits(x).dims(), [1, 10], "{g}");
    }
}

#[test]
fn gradients_reach_every_parameter() {
    let device = Default::default();
    let arch: Nb201Arch = BEST.parse().unwrap();
    let net = tiny_nb201(3)
        .init::<DefaultBackend>(&arch, &device)
        .unwrap();
    let x = Tensor::random([2, 1, 8, 8], Distribution::Default, &device);
    let loss = net.logits(x).powf_scalar(2.0).mean();
    let grads = loss.backward();
    let grads = burn::optim::GradientsParams::from_grads(grads, &net);

    struct Check<'a> {
        grads: &'a burn::optim::GradientsParams,
        seen: usize,
        missing: usize,
    }
    impl burn::module::ModuleVisitor<DefaultBackend> for Check<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            p: &burn::module::Param<Tensor<DefaultBackend, D>>,
        ) {
            self.seen += 1;
            // Batch-norm running statistics are buffers without gradients; every other
            // float parameter must receive one.
            if p.is_require_grad() && self.grads.get::<burn::backend::NdArray, D>(p.id).is_none() {
                self.missing += 1;
            }
        }
    }
    let mut check = Check {
        grads: &grads,
        seen: 0,
        missing: 0,
    };
    net.visit(&mut check);
    assert!(check.seen > 20);
    assert_eq!(check.missing, 0);
    let _valid = net.valid();
}
