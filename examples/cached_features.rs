//! Cached backbone features against training end to end: DPC's proxy (Chen et al. 2018).
//!
//! A convolutional trunk (`--trunk-layers`, default 4) is pretrained once on the embedded Fashion-MNIST subset and
//! frozen; its features are computed once (`nas::estimate::features::cache_features`, kept in
//! `<out>/features/`). Then `--cells` random Dense Prediction Cells (3 branches, atrous rates and
//! pyramid grids for small maps) are each trained twice with the same settings:
//!
//! - **cached**: the head alone (one 3×3 conv-BN-ReLU adapter, the cell, the classifier) on the
//!   frozen trunk's features;
//! - **end to end**: the same network with the trunk's layers in front (same shapes, trained
//!   from scratch with the head: what a search without the cache trains per trial).
//!
//! It prints each cell's validation accuracy and training time both ways, the speed-up per
//! trial, the one-time cost (pretraining and feature extraction), and the Kendall τ between
//! the two rankings of the cells.
//!
//! ```text
//! cargo run --release --example cached_features
//! cargo run --release --example cached_features -- --cells 12 --epochs 4 --size 28
//! cargo run --release --example cached_features -- --max-memory-mib 0   # features on disk
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::features::{FeatureCacheConfig, FeatureOrigin, cache_features};
use nas::estimate::rank::kendall_tau;
use nas::estimate::train::TrainEstimator;
use nas::estimate::{Budget, Estimator};
use nas::space::dpc::{DpcArch, DpcSpace};
use nas::space::{SearchSpace, TextFormat};
use nas::supernet::backend::DefaultBackend;
// The `Module` derive names `burn::…` paths.
use nas::supernet::burn;
use nas::supernet::burn::module::{AutodiffModule, Module};
use nas::supernet::burn::nn::{Linear, LinearConfig};
use nas::supernet::burn::tensor::Tensor;
use nas::supernet::burn::tensor::backend::{AutodiffBackend, Backend};
use nas::supernet::multi_net::DpcNetConfig;
use nas::supernet::network::{Classifier, global_avg_pool, seeded};
use nas::supernet::ops::ConvBnRelu;
use nas::supernet::train::{TrainConfig, fit};
use rand::{SeedableRng, rngs::ChaCha8Rng};

type Inner = <DefaultBackend as AutodiffBackend>::InnerBackend;

#[derive(Parser, Debug)]
#[command(about = "Cached backbone features against training end to end (DPC cells)")]
struct Args {
    /// Random cells, each trained both ways.
    #[arg(long, default_value_t = 8)]
    cells: usize,
    /// Training epochs per trial (both ways).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Epochs of the trunk's pretraining.
    #[arg(long, default_value_t = 3)]
    pretrain_epochs: usize,
    /// Trunk width (and the head's).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Trunk depth: 3×3 conv-BN-ReLU layers, the first of stride 2.
    #[arg(long, default_value_t = 4)]
    trunk_layers: usize,
    /// Image side (the embedded Fashion-MNIST, resized from 28).
    #[arg(long, default_value_t = 16)]
    size: usize,
    /// Training images.
    #[arg(long, default_value_t = 3000)]
    train: usize,
    /// Validation images (held out).
    #[arg(long, default_value_t = 1000)]
    valid: usize,
    /// Seed of the data split, the trunk and the cells.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The most MiB of features held in memory; larger features stay on disk in the cache
    /// file and are read image by image (0: always on disk).
    #[arg(long, default_value_t = 1024)]
    max_memory_mib: u64,
    /// Output directory (the feature cache goes to `<out>/features`).
    #[arg(long, default_value = "runs/cached_features")]
    out: PathBuf,
}

/// The trunk: 3×3 conv-BN-ReLU layers, the first of stride 2.
#[derive(Module, Debug)]
struct Trunk<B: Backend> {
    layers: Vec<ConvBnRelu<B>>,
}

impl<B: Backend> Trunk<B> {
    fn new(channels: usize, layers: usize, device: &B::Device) -> Self {
        Self {
            layers: (0..layers)
                .map(|i| {
                    let (c_in, stride) = if i == 0 { (1, 2) } else { (channels, 1) };
                    ConvBnRelu::new(c_in, channels, [3, 3], stride, device)
                })
                .collect(),
        }
    }

    fn forward(&self, mut x: Tensor<B, 4>) -> Tensor<B, 4> {
        for layer in &self.layers {
            x = layer.forward(x);
        }
        x
    }
}

/// The trunk with a linear classifier, for pretraining.
#[derive(Module, Debug)]
struct Pretrain<B: Backend> {
    trunk: Trunk<B>,
    fc: Linear<B>,
}

impl<B: Backend> Classifier<B> for Pretrain<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.fc.forward(global_avg_pool(self.trunk.forward(images)))
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.cells < 2 || args.epochs == 0 || args.trunk_layers == 0 {
        return Err("--cells must be at least 2, --epochs and --trunk-layers at least 1".into());
    }
    let task = common::ProxyTask {
        size: args.size,
        train: args.train,
        valid: args.valid,
        channels: args.channels,
        cells: 1,
    };
    let (train, valid) = task.data(args.seed)?;
    let device = Default::default();
    let c = args.channels;
    println!(
        "Fashion-MNIST {0}×{0}: {1} training and {2} validation images; trunk of {5} \
         conv-BN-ReLU layers (C = {c}, the first of stride 2), DPC heads of 3 branches; {3} \
         epochs per trial, SGD lr 0.05, batch 64; {4} thread(s) for the CPU backend\n",
        args.size,
        train.len(),
        valid.len(),
        args.epochs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.trunk_layers
    );

    // 1. Pretrain the trunk once.
    let clock = Instant::now();
    let pretrain_config = TrainConfig {
        epochs: args.pretrain_epochs,
        batch_size: 64,
        learning_rate: 0.05,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let model = seeded::<DefaultBackend, _, std::convert::Infallible>(&device, args.seed, || {
        Ok(Pretrain {
            trunk: Trunk::new(c, args.trunk_layers, &device),
            fc: LinearConfig::new(c, 10).init(&device),
        })
    })?;
    let normalize = train.channel_stats();
    let (model, report) = fit(
        model,
        &train,
        &valid,
        &normalize,
        &pretrain_config,
        &device,
        |_: usize, _: &nas::supernet::train::TrainReport| {},
    )?;
    let pretrain_seconds = clock.elapsed().as_secs_f64();
    println!(
        "trunk pretrained for {} epochs: {:.1} % validation accuracy, {pretrain_seconds:.1} s",
        args.pretrain_epochs,
        report.final_accuracy().unwrap_or(f64::NAN)
    );

    // 2. Its features, once (or from an earlier run's cache file).
    let trunk = model.valid().trunk;
    let key = format!(
        "trunk-c{c}-l{}-s{}-e{}-seed{}",
        args.trunk_layers, args.size, args.pretrain_epochs, args.seed
    );
    let cache = FeatureCacheConfig::new(key)
        .with_dir(args.out.join("features"))
        .with_max_memory_bytes(args.max_memory_mib << 20);
    let cached = cache_features::<Inner, _>(
        &|x: Tensor<Inner, 4>| trunk.forward(x),
        &train,
        &valid,
        &cache,
        &device,
    )?;
    let extract_seconds = match &cached.origin {
        FeatureOrigin::Computed { seconds, file, .. } => {
            println!(
                "features {:?} computed in {seconds:.2} s{}",
                cached.train.shape(),
                file.as_ref()
                    .map(|f| format!(", kept in {}", f.display()))
                    .unwrap_or_default()
            );
            *seconds
        }
        FeatureOrigin::Loaded { file, seconds } => {
            println!(
                "features {:?} loaded from {} in {seconds:.2} s",
                cached.train.shape(),
                file.display()
            );
            *seconds
        }
    };
    println!(
        "the trials read the features from {}",
        cached
            .train
            .on_disk()
            .map_or("memory".to_string(), |f| format!(
                "disk ({}, image by image)",
                f.display()
            ))
    );

    // 3. The cells, trained both ways with the same settings.
    let trial_config = TrainConfig {
        epochs: args.epochs,
        batch_size: 64,
        learning_rate: 0.05,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let head = DpcNetConfig {
        in_channels: c,
        num_classes: 10,
        backbone_channels: c,
        backbone_layers: 1,
        backbone_strides: 0,
        branch_channels: c,
    };
    let end_to_end = DpcNetConfig {
        in_channels: 1,
        backbone_layers: args.trunk_layers + 1,
        backbone_strides: 1,
        ..head
    };
    let mut on_features = TrainEstimator::<DefaultBackend, _, _>::new(
        head,
        cached.train.clone(),
        cached.valid.clone(),
        trial_config.clone(),
        device,
    )?;
    let mut on_images = TrainEstimator::<DefaultBackend, _, _>::new(
        end_to_end,
        train.clone(),
        valid.clone(),
        trial_config,
        device,
    )?;
    let space = DpcSpace::new(3, &[1, 2, 3], &[1, 2, 4])?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let cells: Vec<DpcArch> = (0..args.cells).map(|_| space.sample(&mut rng)).collect();
    println!("\n| cell | cached: accuracy | cached: s | end to end: accuracy | end to end: s |");
    println!("| --- | --- | --- | --- | --- |");
    let (mut acc_c, mut acc_e, mut sec_c, mut sec_e) = (vec![], vec![], vec![], vec![]);
    for cell in &cells {
        let t = Instant::now();
        let a = on_features.estimate(cell, &Budget::default())?.objective;
        let tc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let b = on_images.estimate(cell, &Budget::default())?.objective;
        let te = t.elapsed().as_secs_f64();
        println!(
            "| `{}` | {a:.1} % | {tc:.2} | {b:.1} % | {te:.2} |",
            space.to_text(cell)
        );
        acc_c.push(a);
        acc_e.push(b);
        sec_c.push(tc);
        sec_e.push(te);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mc, me) = (mean(&sec_c), mean(&sec_e));
    println!(
        "\nper trial: cached {mc:.2} s, end to end {me:.2} s: {:.2}× faster with the cache",
        me / mc
    );
    println!(
        "one-time cost of the cache: pretraining {pretrain_seconds:.1} s + features \
         {extract_seconds:.2} s; break-even after {:.1} trials",
        (pretrain_seconds + extract_seconds) / (me - mc).max(1e-9)
    );
    println!(
        "mean accuracy: cached {:.1} %, end to end {:.1} %",
        mean(&acc_c),
        mean(&acc_e)
    );
    match kendall_tau(&acc_c, &acc_e) {
        Some(tau) => println!(
            "Kendall τ between the two rankings of the {} cells: {tau:.3}",
            cells.len()
        ),
        None => println!("Kendall τ: undefined (ties everywhere)"),
    }
    Ok(())
}
