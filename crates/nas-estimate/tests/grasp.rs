//! GraSP in 64-bit floats (a process of its own: Burn fixes the CPU device's float type at its
//! first tensor, and every other test of this crate computes in 32-bit floats).
#![cfg(feature = "train")]

use nas_estimate::zero_cost::grasp;
use nas_space::TextFormat;
use nas_space::nb201::Nb201Space;
use nas_supernet::burn;
use nas_supernet::burn::backend::{Autodiff, NdArray};
use nas_supernet::burn::module::Module;
use nas_supernet::burn::nn::{Linear, LinearConfig};
use nas_supernet::burn::tensor::backend::Backend;
use nas_supernet::burn::tensor::{Int, Tensor, TensorData};
use nas_supernet::nb201_net::Nb201NetConfig;
use nas_supernet::network::{Classifier, seeded};

type F64 = Autodiff<NdArray<f64>>;

/// A linear classifier of flattened images: its Hessian-gradient product has a closed form.
#[derive(Module, Debug)]
struct Lin<B: Backend> {
    linear: Linear<B>,
}

impl<B: Backend> Classifier<B> for Lin<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.linear.forward(images.flatten::<2>(1, 3))
    }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
}

#[test]
#[allow(clippy::needless_range_loop)] // the closed form reads best with indices
fn grasp_matches_the_closed_form_of_a_linear_classifier_and_scores_cells() {
    let device = Default::default();
    let (n, d, k) = (5usize, 6usize, 3usize);
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7 % 11) as f64 - 5.0) / 4.0)
        .collect();
    let y: Vec<i64> = (0..n).map(|i| (i % k) as i64).collect();
    let images = Tensor::<F64, 4>::from_data(TensorData::new(x.clone(), [n, 1, 2, 3]), &device);
    let targets = Tensor::<F64, 1, Int>::from_data(TensorData::new(y.clone(), [n]), &device);
    let model = seeded(&device, 3, || {
        Ok::<_, std::convert::Infallible>(Lin {
            linear: LinearConfig::new(d, k).init::<F64>(&device),
        })
    })
    .unwrap();
    let got = grasp(&model, images.clone(), targets.clone()).unwrap();

    // Closed form. z_i = W^T x_i + b (W: d × k), p_i = softmax(z_i), L = mean_i CE.
    // g = (1/n) Σ_i x_i (p_i − e_{y_i})^T; H V = (1/n) Σ_i x_i (J_i V^T x_i)^T with
    // J_i = diag(p_i) − p_i p_i^T; GraSP = −Σ W ⊙ H g = −(1/n) Σ_i (W^T x_i)^T J_i (g^T x_i).
    let w = values(model.linear.weight.val()); // row-major d × k
    let b = values(model.linear.bias.as_ref().unwrap().val());
    let xi = |i: usize| &x[i * d..(i + 1) * d];
    let t = |m: &[f64], v: &[f64]| -> Vec<f64> {
        (0..k)
            .map(|c| (0..d).map(|r| m[r * k + c] * v[r]).sum())
            .collect()
    };
    let probs: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let z: Vec<f64> = t(&w, xi(i)).iter().zip(&b).map(|(a, c)| a + c).collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        })
        .collect();
    let mut g = vec![0.0; d * k];
    for i in 0..n {
        for r in 0..d {
            for c in 0..k {
                let target = if y[i] as usize == c { 1.0 } else { 0.0 };
                g[r * k + c] += xi(i)[r] * (probs[i][c] - target) / n as f64;
            }
        }
    }
    let mut want = 0.0;
    for i in 0..n {
        let (a, c) = (t(&w, xi(i)), t(&g, xi(i)));
        let p = &probs[i];
        let pc: f64 = p.iter().zip(&c).map(|(p, c)| p * c).sum();
        // J c = p ⊙ c − p (p · c)
        let jc: Vec<f64> = (0..k).map(|j| p[j] * c[j] - p[j] * pc).collect();
        want -= a.iter().zip(&jc).map(|(a, b)| a * b).sum::<f64>() / n as f64;
    }
    assert!(
        (got - want).abs() <= 1e-6 * want.abs().max(1e-6),
        "grasp {got} vs closed form {want}"
    );

    // On NAS-Bench-201 cells: finite, deterministic, and different across cells.
    let net = Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    };
    let pixels: Vec<f64> = (0..4 * 64)
        .map(|i| ((i * 13 % 17) as f64 - 8.0) / 5.0)
        .collect();
    let images = Tensor::<F64, 4>::from_data(TensorData::new(pixels, [4, 1, 8, 8]), &device);
    let targets =
        Tensor::<F64, 1, Int>::from_data(TensorData::new(vec![0i64, 3, 5, 7], [4]), &device);
    let space = Nb201Space::default();
    let score = |cell: &str| {
        let arch = space.parse(cell).unwrap();
        let model = seeded(&device, 0, || net.init::<F64>(&arch, &device)).unwrap();
        grasp(&model, images.clone(), targets.clone()).unwrap()
    };
    let conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let pool = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|";
    let (a, b) = (score(conv), score(pool));
    assert!(a.is_finite() && b.is_finite(), "{a} {b}");
    assert_ne!(a, b);
    assert_eq!(score(conv), a);
}
