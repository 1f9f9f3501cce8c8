//! The same network gives the same outputs and gradients on the `wgpu` backend as on the CPU.
//!
//! Runs only with `--features wgpu` and a Vulkan (or Metal/DX12) driver; on a machine without a
//! GPU, Mesa's software Vulkan driver works (`apt-get install mesa-vulkan-drivers`), slowly:
//!
//! ```text
//! cargo test -p nas-supernet --features wgpu --test wgpu_parity
//! ```
#![cfg(feature = "wgpu")]

mod support;

use burn::backend::{Autodiff, NdArray, Wgpu};
use burn::module::Module;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use nas_space::nb201::Nb201Arch;
use nas_space::proxyless::{ProxylessArch, ProxylessConfig, ProxylessSpace};
use nas_supernet::Classifier;
use nas_supernet::chain_net::ChainNetConfig;
use nas_supernet::network::seeded;

type Cpu = Autodiff<NdArray>;
type Gpu = Autodiff<Wgpu>;

/// Copies `module`'s parameters from the CPU to a freshly built GPU module of the same shape.
fn to_gpu<MC, MG>(cpu: MC, gpu: MG, device: &Device<Gpu>) -> MG
where
    MC: Module<Cpu>,
    MG: Module<Gpu>,
{
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder
        .record(cpu.into_record(), ())
        .expect("record the CPU module");
    let record = recorder.load(bytes, device).expect("load on the GPU");
    gpu.load_record(record)
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().map(|v| v.abs()).fold(1e-3, f32::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f32::max)
}

/// Logits and the input gradient of a scalar loss, on one backend.
fn run<B: AutodiffBackend, M: Classifier<B>>(
    net: &M,
    x: &[f32],
    shape: [usize; 4],
) -> (Vec<f32>, Vec<f32>)
where
    Device<B>: Default,
{
    let device = Default::default();
    let x = Tensor::<B, 4>::from_data(TensorData::new(x.to_vec(), shape), &device).require_grad();
    let logits = net.logits(x.clone());
    let out = values(logits.clone());
    let grads = logits.powf_scalar(2.0).mean().backward();
    let gx = x.grad(&grads).expect("input gradient");
    (out, values(gx))
}

fn check<MC, MG>(name: &str, cpu: MC, gpu: MG, shape: [usize; 4])
where
    MC: Module<Cpu> + Classifier<Cpu> + Clone,
    MG: Module<Gpu> + Classifier<Gpu>,
{
    let gpu_device = Default::default();
    let gpu = to_gpu(cpu.clone(), gpu, &gpu_device);
    let x = values(Tensor::<NdArray, 4>::random(
        shape,
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    ));
    let (yc, gc) = run::<Cpu, _>(&cpu, &x, shape);
    let (yg, gg) = run::<Gpu, _>(&gpu, &x, shape);
    let (dy, dg) = (max_rel_diff(&yc, &yg), max_rel_diff(&gc, &gg));
    eprintln!("{name}: logits differ by {dy:.2e}, input gradients by {dg:.2e} (relative)");
    assert!(dy < 1e-3 && dg < 1e-3, "{name}: {dy} {dg}");
}

#[test]
fn networks_agree_on_wgpu_and_cpu() {
    let cpu_device = Default::default();
    let gpu_device = Default::default();

    let arch: Nb201Arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
        .parse()
        .unwrap();
    let config = support::tiny_nb201(3);
    check(
        "NB201",
        // Under `seeded`, which draws every parameter: Burn initializes lazily, and a clone of
        // an uninitialized module draws its own values.
        seeded(&cpu_device, 0, || config.init::<Cpu>(&arch, &cpu_device)).unwrap(),
        config.init::<Gpu>(&arch, &gpu_device).unwrap(),
        [2, 1, 8, 8],
    );

    let space = ProxylessSpace::new(ProxylessConfig {
        stages: support::tiny_proxyless_stages(1),
        feature_mix_channels: 16,
        ..support::tiny_proxyless_config()
    })
    .unwrap();
    let arch: ProxylessArch = "5x5_MBConv3 3x3_MBConv6".parse().unwrap();
    let config = ChainNetConfig::new(1, 3);
    check(
        "ProxylessNAS",
        seeded(&cpu_device, 0, || {
            config.proxyless::<Cpu>(&space, &arch, &cpu_device)
        })
        .unwrap(),
        config.proxyless::<Gpu>(&space, &arch, &gpu_device).unwrap(),
        [2, 1, 8, 8],
    );

    // Factorized reductions (1×1 convolutions at stride 2) in every reduction cell.
    let darts = nas_supernet::darts_net::DartsNetConfig {
        channels: 4,
        layers: 3,
        auxiliary: false,
        in_channels: 1,
        num_classes: 3,
        ..Default::default()
    };
    let genotype = nas_space::darts::darts_v2();
    check(
        "DARTS V2",
        seeded(&cpu_device, 0, || darts.init::<Cpu>(&genotype, &cpu_device)).unwrap(),
        darts.init::<Gpu>(&genotype, &gpu_device).unwrap(),
        [2, 1, 8, 8],
    );

    // A 1×7 convolution at stride 2, and zero-padded concatenations.
    let arch = nas_space::nasrl::NasRlSpace::with_layers(4)
        .and_then(|s| s.with_strides(&[1, 2]))
        .and_then(|s| {
            nas_space::TextFormat::parse(&s, "3x3x24s1[] 1x7x36s2[1] 5x1x24s1[] 3x3x48s1[1,2,3]")
        })
        .unwrap();
    let config = nas_supernet::multi_net::NasRlNetConfig {
        in_channels: 1,
        num_classes: 3,
        width_multiplier: 0.25,
    };
    check(
        "NAS-RL",
        seeded(&cpu_device, 0, || config.init::<Cpu>(&arch, &cpu_device)).unwrap(),
        config.init::<Gpu>(&arch, &gpu_device).unwrap(),
        [2, 1, 8, 8],
    );
}

/// Layer by layer: which building block differs between wgpu and the CPU.
#[test]
fn layers_agree_on_wgpu_and_cpu() {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    let shape = [2, 4, 8, 8];
    let x = values(Tensor::<NdArray, 4>::random(
        shape,
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    ));
    let cpu_device = Default::default();
    let gpu_device: Device<Gpu> = Default::default();
    let forward = |name: &str, yc: Vec<f32>, yg: Vec<f32>| {
        let d = max_rel_diff(&yc, &yg);
        eprintln!("{name}: outputs differ by {d:.2e} (relative)");
        d
    };
    let xc = Tensor::<Cpu, 4>::from_data(TensorData::new(x.clone(), shape), &cpu_device);
    let xg = Tensor::<Gpu, 4>::from_data(TensorData::new(x.clone(), shape), &gpu_device);
    let d_id = forward("identity", values(xc.clone()), values(xg.clone()));

    let conv = seeded::<Cpu, _, std::convert::Infallible>(&cpu_device, 0, || {
        Ok(Conv2dConfig::new([4, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init::<Cpu>(&cpu_device))
    })
    .unwrap();
    let conv_g = to_gpu(
        conv.clone(),
        Conv2dConfig::new([4, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init::<Gpu>(&gpu_device),
        &gpu_device,
    );
    let d_weights = forward(
        "conv weights after the transfer",
        values(conv.weight.val()),
        values(conv_g.weight.val()),
    );
    let d_conv = forward(
        "conv 3x3 (Burn's)",
        values(conv.forward(xc.clone())),
        values(conv_g.forward(xg.clone())),
    );
    let bn = BatchNormConfig::new(4).init::<Cpu>(&cpu_device);
    let bn_g = to_gpu(
        bn.clone(),
        BatchNormConfig::new(4).init::<Gpu>(&gpu_device),
        &gpu_device,
    );
    let d_bn = forward(
        "batch norm (training)",
        values(bn.forward(xc.clone())),
        values(bn_g.forward(xg.clone())),
    );
    let d_mean = forward(
        "mean over all",
        values(xc.clone().mean().reshape([1])),
        values(xg.clone().mean().reshape([1])),
    );
    assert!(
        d_id < 1e-6 && d_weights < 1e-6 && d_conv < 1e-3 && d_bn < 1e-3 && d_mean < 1e-3,
        "identity {d_id}, weights {d_weights}, conv {d_conv}, batch norm {d_bn}, mean {d_mean}"
    );
}

/// Convolutions whose window is shorter than the stride (DARTS' factorized reduction, NAS-RL's
/// 1×7 at stride 2): Burn 0.21's CubeCL input gradient is wrong there (printed, for the
/// record), so `Conv` decomposes them when training; its gradients must match the CPU's for
/// every geometry.
#[test]
fn convolution_gradients_agree_on_wgpu_and_cpu() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use nas_supernet::fast::{Conv, ConvGeometry};

    /// Output, input gradient and weight gradient of `(f(x) · probe).sum()`.
    fn grads<B: AutodiffBackend>(
        f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
        w: Tensor<B, 4>,
        x: &[f32],
        shape: [usize; 4],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>)
    where
        Device<B>: Default,
    {
        let device = Default::default();
        let x =
            Tensor::<B, 4>::from_data(TensorData::new(x.to_vec(), shape), &device).require_grad();
        let y = f(x.clone());
        let n: usize = y.dims().iter().product();
        let probe: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0)
            .collect();
        let probe = Tensor::<B, 4>::from_data(TensorData::new(probe, y.dims()), &device);
        let out = values(y.clone());
        let g = (y * probe).sum().backward();
        let gw = w.grad(&g).map(values).unwrap_or_default();
        (out, values(x.grad(&g).expect("input gradient")), gw)
    }

    let cpu_device = Default::default();
    let gpu_device: Device<Gpu> = Default::default();
    let mut failures = Vec::new();
    // (input, [c_out, c_in / groups, kh, kw], stride, padding, dilation, groups)
    for (shape, k, stride, padding, dilation, groups) in [
        ([2, 4, 8, 8], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([2, 4, 8, 8], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        ([2, 4, 8, 8], [1, 1], [2, 2], [0, 0], [1, 1], 1),
        ([2, 4, 7, 7], [1, 1], [2, 2], [0, 0], [1, 1], 1),
        ([2, 4, 8, 8], [1, 7], [2, 2], [0, 3], [1, 1], 1),
        ([2, 4, 8, 8], [7, 1], [2, 2], [3, 0], [1, 1], 1),
        ([2, 4, 9, 9], [2, 2], [3, 3], [0, 0], [1, 1], 1),
        ([2, 4, 8, 8], [2, 2], [2, 2], [0, 0], [1, 1], 1),
        ([2, 4, 8, 8], [3, 3], [2, 2], [2, 2], [2, 2], 1),
        ([2, 4, 8, 8], [1, 1], [2, 2], [0, 0], [1, 1], 4),
        ([2, 4, 8, 8], [5, 5], [2, 2], [2, 2], [1, 1], 4),
        // DARTS' separable and dilated candidates, at stride 1 and 2.
        ([2, 4, 8, 8], [3, 3], [1, 1], [1, 1], [1, 1], 4),
        ([2, 4, 8, 8], [3, 3], [2, 2], [1, 1], [1, 1], 4),
        ([2, 4, 8, 8], [5, 5], [1, 1], [2, 2], [1, 1], 4),
        ([2, 4, 8, 8], [3, 3], [1, 1], [2, 2], [2, 2], 4),
        ([2, 4, 8, 8], [3, 3], [2, 2], [2, 2], [2, 2], 4),
        ([2, 4, 8, 8], [5, 5], [1, 1], [4, 4], [2, 2], 4),
        ([2, 4, 8, 8], [5, 5], [2, 2], [4, 4], [2, 2], 4),
        ([2, 4, 8, 8], [1, 1], [1, 1], [0, 0], [1, 1], 1),
        // The sizes of a DARTS supernet's first reduction cell (C = 16, batch 8).
        ([8, 16, 16, 16], [3, 3], [2, 2], [1, 1], [1, 1], 16),
        ([8, 16, 16, 16], [5, 5], [2, 2], [2, 2], [1, 1], 16),
        ([8, 16, 16, 16], [3, 3], [2, 2], [2, 2], [2, 2], 16),
        ([8, 16, 16, 16], [5, 5], [2, 2], [4, 4], [2, 2], 16),
        ([8, 16, 8, 8], [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([8, 16, 8, 8], [3, 3], [1, 1], [1, 1], [1, 1], 16),
        ([8, 16, 8, 8], [5, 5], [1, 1], [4, 4], [2, 2], 16),
    ] {
        let geometry = ConvGeometry {
            stride,
            padding,
            dilation,
        };
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 104729 % 1000) as f32) / 500.0 - 1.0)
            .collect();
        let conv = seeded::<Cpu, _, std::convert::Infallible>(&cpu_device, 1, || {
            Ok(Conv::<Cpu>::with_geometry(
                [shape[1], shape[1]],
                k,
                geometry,
                groups,
                &cpu_device,
            ))
        })
        .unwrap();
        let conv_g = to_gpu(
            conv.clone(),
            Conv::<Gpu>::with_geometry([shape[1], shape[1]], k, geometry, groups, &gpu_device),
            &gpu_device,
        );
        let (yc, gc, wc) = grads::<Cpu>(|x| conv.forward(x), conv.inner.weight.val(), &x, shape);
        let (yg, gg, wg) =
            grads::<Gpu>(|x| conv_g.forward(x), conv_g.inner.weight.val(), &x, shape);
        let options = ConvOptions::new(stride, padding, dilation, groups);
        let w = conv_g.inner.weight.val().detach().require_grad();
        let (_, gb, _) = grads::<Gpu>(
            |x| conv2d(x, w.clone(), None, options.clone()),
            w.clone(),
            &x,
            shape,
        );
        let (dy, dg, dw, db) = (
            max_rel_diff(&yc, &yg),
            max_rel_diff(&gc, &gg),
            max_rel_diff(&wc, &wg),
            max_rel_diff(&gc, &gb),
        );
        eprintln!(
            "{shape:?} k{k:?} s{stride:?} p{padding:?} d{dilation:?} g{groups}: output {dy:.1e}, \
             input gradient {dg:.1e}, weight gradient {dw:.1e} (Burn's own conv2d: input \
             gradient {db:.1e})"
        );
        if dy >= 1e-3 || dg >= 1e-3 || dw >= 1e-3 {
            failures.push(format!("k{k:?} s{stride:?} g{groups}: {dy} {dg} {dw}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
