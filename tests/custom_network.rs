//! A network of your own from the fast layers (`nas::supernet::nn`), through the public API
//! only: it computes what the same network written with `burn::nn` computes (outputs and
//! gradients), and a configuration of your own trains it through the train-from-scratch
//! estimator.

use nas::estimate::train::TrainEstimator;
use nas::estimate::{Budget, Estimator};
use nas::supernet::backend::DefaultBackend;
// The `Module` derive names `burn::…` paths.
use nas::supernet::burn;
use nas::supernet::burn::module::Module;
use nas::supernet::burn::nn::{Linear, LinearConfig};
use nas::supernet::burn::tensor::activation::relu;
use nas::supernet::burn::tensor::backend::Backend;
use nas::supernet::burn::tensor::{Device, Distribution, Tensor};
use nas::supernet::data::ImageDataset;
use nas::supernet::network::{Classifier, seeded};
use nas::supernet::network_config::{Configured, NetworkConfig};
use nas::supernet::nn::{
    AvgPool2d, AvgPool2dConfig, BatchNorm2d, BatchNorm2dConfig, Conv2d, Conv2dConfig,
    DepthwiseConv2dConfig, MaxPool2d, MaxPool2dConfig,
};
use nas::supernet::train::TrainConfig;

type B = DefaultBackend;

/// conv 3×3 → BN → max pool → depthwise 3×3 (ReLU first) → conv 1×1 with bias → BN → global
/// average pool → linear. The architecture is its width.
#[derive(Module, Debug)]
struct SmallNet<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm2d<B>,
    pool: MaxPool2d,
    depthwise: Conv2d<B>,
    pointwise: Conv2d<B>,
    bn2: BatchNorm2d<B>,
    avg: AvgPool2d,
    head: Linear<B>,
}

#[derive(Debug, Clone, Copy)]
struct SmallNetConfig {
    in_channels: usize,
    classes: usize,
}

impl NetworkConfig<usize> for SmallNetConfig {
    type Network<B: Backend> = SmallNet<B>;

    fn build<B: Backend>(
        &self,
        width: &usize,
        device: &Device<B>,
    ) -> Result<SmallNet<B>, nas::supernet::SupernetError> {
        let w = *width;
        Ok(SmallNet {
            conv: Conv2dConfig::new([self.in_channels, w], [3, 3])
                .with_padding(1)
                .init(device),
            bn: BatchNorm2dConfig::new(w).init(device),
            pool: MaxPool2dConfig::new(2).init(),
            depthwise: DepthwiseConv2dConfig::new(w, 3).init(device),
            pointwise: Conv2dConfig::new([w, 2 * w], [1, 1])
                .with_bias(true)
                .init(device),
            bn2: BatchNorm2dConfig::new(2 * w).init(device),
            avg: AvgPool2dConfig::new(4).init(),
            head: LinearConfig::new(2 * w, self.classes).init(device),
        })
    }
}

impl<B: Backend> Classifier<B> for SmallNet<B> {
    fn logits(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.pool.forward(self.bn.forward(self.conv.forward(x)));
        let x = self.depthwise.forward_relu(x);
        let x = self.bn2.forward(self.pointwise.forward(x));
        let x = self.avg.forward(relu(x));
        let [n, c, h, w] = x.dims();
        let x = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        self.head.forward(x)
    }
}

/// The same computation with Burn's own layers, on the same parameters.
fn burn_logits<B: Backend>(net: &SmallNet<B>, x: Tensor<B, 4>) -> Tensor<B, 2> {
    let x = net.conv.conv.inner.forward(x);
    let x = net.pool.inner.forward(net.bn.inner.forward(x));
    let x = net.depthwise.conv.inner.forward(relu(x));
    let b = net.pointwise.bias.as_ref().unwrap().val();
    let c = b.dims()[0];
    let x = net.pointwise.conv.inner.forward(x) + b.reshape([1, c, 1, 1]);
    let x = net.avg.inner.forward(relu(net.bn2.inner.forward(x)));
    let [n, c, h, w] = x.dims();
    let x = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
    net.head.forward(x)
}

fn max_rel_diff(a: Vec<f32>, b: Vec<f32>) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn fast_layers_compute_what_burn_layers_compute() {
    let device = Default::default();
    let config = SmallNetConfig {
        in_channels: 1,
        classes: 10,
    };
    let net = seeded(&device, 3, || config.build::<B>(&8, &device)).unwrap();
    let x = seeded::<B, _, std::convert::Infallible>(&device, 4, || {
        Ok(Tensor::<B, 4>::random(
            [6, 1, 16, 16],
            Distribution::Normal(0.0, 1.0),
            &device,
        ))
    })
    .unwrap();

    let x1 = x.clone().require_grad();
    let fast = net.logits(x1.clone());
    let g_fast = fast.clone().sum().backward();
    let x2 = x.require_grad();
    let reference = burn_logits(&net, x2.clone());
    let g_ref = reference.clone().sum().backward();

    let values = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().unwrap();
    let d = max_rel_diff(values(fast), values(reference));
    assert!(d < 1e-4, "logits differ by {d:e} (relative)");
    let grad = |x: &Tensor<B, 4>, g| x.grad(g).unwrap().into_data().to_vec::<f32>().unwrap();
    let d = max_rel_diff(grad(&x1, &g_fast), grad(&x2, &g_ref));
    assert!(d < 1e-4, "input gradients differ by {d:e} (relative)");
    let w = |net: &SmallNet<B>, g| {
        net.conv
            .conv
            .inner
            .weight
            .grad(g)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    let d = max_rel_diff(w(&net, &g_fast), w(&net, &g_ref));
    assert!(d < 1e-4, "weight gradients differ by {d:e} (relative)");
}

#[test]
fn a_configuration_of_your_own_trains_through_the_estimator() {
    let (train, valid) = ImageDataset::digits().split(0.7, 0).unwrap();
    let config = SmallNetConfig {
        in_channels: 1,
        classes: 10,
    };
    let mut estimator = TrainEstimator::<B, _, _>::new(
        Configured(config),
        train.sample(768, 1),
        valid.sample(256, 2),
        TrainConfig {
            epochs: 3,
            batch_size: 32,
            learning_rate: 0.05,
            ..TrainConfig::default()
        },
        Default::default(),
    )
    .unwrap();
    let m = estimator.estimate(&8, &Budget::full()).unwrap();
    // Ten classes: chance is 10 %.
    assert!(
        m.objective > 40.0,
        "validation accuracy {:.1}% after 3 epochs",
        m.objective
    );
    assert!(m.get("params").unwrap() > 100.0);
}
