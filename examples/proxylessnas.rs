//! ProxylessNAS (Cai et al., *ProxylessNAS: Direct Neural Architecture Search on Target Task
//! and Hardware*): binarized paths on the MobileNetV2 chain space, architecture gradients from
//! two-path binary gates, and an expected-latency term from a latency table measured on the
//! chosen Burn device.
//!
//! First the peak memory of one training step is measured (a counting global allocator: on
//! the CPU backends tensors are heap allocations) for a ProxylessNAS weight step (one path), a
//! ProxylessNAS architecture step (two paths per layer, the inactive one without its graph),
//! the stand-alone child network of the same path, and a DARTS-style step that computes every
//! candidate of every layer. Then the search runs and prints the derived architecture, its
//! predicted and measured latency, and its accuracy with inherited weights and trained from
//! scratch for `--final-epochs` epochs (default 3; 0 skips it), the trained network saved into
//! `<report-dir>/network` (`network.json` and `weights.mpk`; load it with
//! `nas::supernet::persist::load_network`).
//!
//! The run ends by writing a report page, `<report-dir>/report.html` (default
//! `runs/proxylessnas/report.html`), with SVG figures: the weight steps' training accuracy per
//! epoch, the derived chain, the final training's validation accuracy, and a table of the
//! epochs (losses, expected latency, entropy).
//!
//! ```text
//! cargo run --release --example proxylessnas             # a few minutes on 2 cores
//! cargo run --release --example proxylessnas -- --epochs 20 --latency-weight 0.3
//! cargo run --release --example proxylessnas -- --final-epochs 10 --report-dir runs/proxyless-long
//! ```

use std::path::PathBuf;
mod common;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nas::estimate::rank::kendall_tau;
use nas::estimate::weight_sharing::{WeightSharingConfig, WeightSharingEstimator};
use nas::estimate::{Budget, Estimator};
use nas::space::proxyless::{ProxylessArch, ProxylessSpace};
use nas::space::{SearchSpace, TextFormat, ToGraph};
use nas::strategy::report::Report;
use nas::supernet::Classifier;
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::module::AutodiffModule;
use nas::supernet::burn::nn::loss::CrossEntropyLossConfig;
use nas::supernet::burn::optim::GradientsParams;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::burn::tensor::{Device, Tensor};
use nas::supernet::chain_net::ChainNetConfig;
use nas::supernet::data::ImageBatch;
use nas::supernet::network::seeded;
use nas::supernet::oneshot::gates::{ArchOptimConfig, ArchParams};
use nas::supernet::oneshot::latency::LatencyTable;
use nas::supernet::oneshot::memory::PeakAlloc;
use nas::supernet::oneshot::proxyless::{
    ArchGradient, ProxylessEpoch, ProxylessReport, ProxylessSearch, ProxylessSearchConfig,
    gate_gradients, layer_choices,
};
use nas::supernet::oneshot::train::batches;
use nas::supernet::oneshot::{CandidateWeights, ProxylessSupernet, SinglePath};
use nas::supernet::train::TrainConfig;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// `--weights`: how a layer's candidates hold their weights.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum Weights {
    Nested,
    Independent,
}

impl From<Weights> for CandidateWeights {
    fn from(w: Weights) -> Self {
        match w {
            Weights::Nested => CandidateWeights::Nested,
            Weights::Independent => CandidateWeights::Independent,
        }
    }
}

#[derive(Parser, Debug, Clone)]
#[command(about = "ProxylessNAS on the MobileNetV2 chain space, with a measured latency table")]
struct Args {
    /// Epochs in all (weights), warm-up included.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Warm-up epochs (weights only, uniform paths).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Width multiplier of the supernet (the paper's is 1.0).
    #[arg(long, default_value_t = 0.35)]
    width: f64,
    /// One architecture step every this many weight steps (the paper: 5).
    #[arg(long, default_value_t = 2)]
    arch_every: usize,
    /// Adam learning rate of the architecture parameters (the paper: 1e-3 over 120 epochs of
    /// ImageNet; a short proxy run needs larger steps).
    #[arg(long, default_value_t = 0.03)]
    arch_lr: f64,
    /// λ of the expected-latency term (0 disables it).
    #[arg(long, default_value_t = 0.1)]
    latency_weight: f64,
    /// REINFORCE instead of binary gates (ProxylessNAS' alternative for non-differentiable
    /// objectives): this many paths sampled per architecture step, each rewarded by its
    /// accuracy minus the latency penalty of its own latency (the measured table's sum over
    /// the path). 0 (the default): binary gates.
    #[arg(long, default_value_t = 0)]
    reinforce: usize,
    /// How the candidates of a layer hold their weights: `nested` (one shared set of
    /// convolution weights per layer, of which each candidate uses the first `e · c_in` hidden
    /// channels and the centred k×k window: Single-Path NAS' superkernel, Once-for-All's
    /// elastic kernel and width) or `independent` (the paper's supernet, which does not learn
    /// in a run of minutes: docs/benchmarks.md).
    #[arg(long, value_enum, default_value_t = Weights::Nested)]
    weights: Weights,
    /// Timed runs per table entry (median).
    #[arg(long, default_value_t = 15)]
    latency_runs: usize,
    /// Batch size of training and of the memory measurement.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Searchable layers per stage (six stages; the paper: 4,4,4,4,4,1, i.e. 21 layers).
    #[arg(long, value_delimiter = ',', default_value = "4,4,4,4,4,1")]
    stage_depths: Vec<usize>,
    /// SGD learning rate of the weights (supernet and final training; cosine schedule).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Epochs of the final from-scratch training of the derived architecture, saved into
    /// <report-dir>/network (0: skip).
    #[arg(long, alias = "retrain-epochs", default_value_t = 10)]
    final_epochs: usize,
    /// Random architectures of the space trained from scratch exactly as the derived one (with
    /// `--final-epochs`), and scored with the supernet's weights: is the search better than
    /// random, and do inherited-weight accuracies rank stand-alone ones (Kendall τ)?
    #[arg(long, default_value_t = 3)]
    random_baselines: usize,
    #[command(flatten)]
    run: common::RunArgs,
    /// Directory of the latency table cache.
    #[arg(long, default_value = "runs/proxylessnas")]
    out: PathBuf,
    /// Directory of the report page (report.html and its SVG figures) and of the final
    /// network.
    #[arg(long, default_value = "runs/proxylessnas")]
    report_dir: PathBuf,
}

struct Proxyless(Args);

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Peak bytes above the baseline of `step`, second of two runs (the first warms up lazily
/// allocated state).
fn peak(mut step: impl FnMut()) -> usize {
    step();
    PeakAlloc::measure(step).1
}

/// Peak memory of one forward + backward step of each kind, on the same batch and path.
fn memory<B: AutodiffBackend>(
    supernet: &ProxylessSupernet<B>,
    net: &ChainNetConfig,
    batch: &ImageBatch<B>,
    seed: u64,
    device: &Device<B>,
) -> Result<(), String> {
    let params = ArchParams::new(&layer_choices(supernet), ArchOptimConfig::default())
        .map_err(|e| e.to_string())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pairs = params.sample_pairs(&mut rng);
    let path: Vec<usize> = pairs.iter().map(|p| p.active).collect();
    let arch = supernet.arch_of(&path).map_err(|e| e.to_string())?;
    let child = seeded(device, seed, || {
        net.proxyless::<B>(supernet.space(), &arch, device)
    })
    .map_err(|e| e.to_string())?;
    let loss = |logits: Tensor<B, 2>| {
        CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, batch.targets.clone())
    };
    let weight = peak(|| {
        let l = loss(supernet.forward_indices(batch.images.clone(), &path));
        let _ = GradientsParams::from_grads(l.backward(), supernet);
    });
    let arch_step = peak(|| {
        let _ = gate_gradients(
            supernet,
            batch.images.clone(),
            batch.targets.clone(),
            &pairs,
        );
    });
    let child_step = peak(|| {
        let l = loss(child.logits(batch.images.clone()));
        let _ = GradientsParams::from_grads(l.backward(), &child);
    });
    let darts = peak(|| {
        let alphas: Vec<Tensor<B, 1>> = supernet
            .layers()
            .iter()
            .map(|l| Tensor::zeros([l.num_choices()], device).require_grad())
            .collect();
        let l = loss(supernet.forward_mixture(batch.images.clone(), &alphas));
        let _ = GradientsParams::from_grads(l.backward(), supernet);
    });
    let n = batch.targets.dims()[0];
    println!(
        "\npeak memory of one training step (forward + backward, batch {n}, heap bytes above the baseline):"
    );
    let rows = [
        ("ProxylessNAS weight step (one path)", weight),
        ("ProxylessNAS architecture step (two paths)", arch_step),
        ("child network (the same path, stand-alone)", child_step),
        (
            "DARTS-style step (every candidate, softmax-weighted)",
            darts,
        ),
    ];
    for (name, bytes) in rows {
        println!(
            "  {name:<54} {:8.2} MiB  {:5.2}× the child",
            mib(bytes),
            bytes as f64 / child_step.max(1) as f64
        );
    }
    let worst = weight.max(arch_step) as f64 / child_step.max(1) as f64;
    println!(
        "  ProxylessNAS / child: {worst:.2}× (target ≤ 1.5×: {})",
        if worst <= 1.5 { "met" } else { "missed" }
    );
    Ok(())
}

fn median_latency_ms<B: AutodiffBackend, M: Classifier<B::InnerBackend>>(
    model: &M,
    input: [usize; 3],
    device: &Device<B>,
) -> f64 {
    let x = Tensor::<B::InnerBackend, 4>::zeros([1, input[0], input[1], input[2]], device);
    let _ = model.logits(x.clone()).into_data();
    let mut t: Vec<f64> = (0..21)
        .map(|_| {
            let s = Instant::now();
            let _ = model.logits(x.clone()).into_data();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

impl BackendTask for Proxyless {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let start = Instant::now();
        if !PeakAlloc::is_installed() {
            return Err("the counting allocator is not installed".into());
        }
        let digits = common::Digits::new(args.run.seed)?;
        let (valid, normalize) = (&digits.valid, &digits.normalize);
        // ProxylessNAS trains the architecture on a held-out part of the training set.
        let (train, arch_data) = digits
            .train
            .split(0.8, args.run.seed)
            .map_err(|e| e.to_string())?;
        let input = train.shape();
        let mut config = nas::space::proxyless::ProxylessConfig::default();
        if args.stage_depths.len() != config.stages.len() || args.stage_depths.contains(&0) {
            return Err(format!(
                "--stage-depths needs {} positive depths, got {:?}",
                config.stages.len(),
                args.stage_depths
            ));
        }
        for (stage, &d) in config.stages.iter_mut().zip(&args.stage_depths) {
            stage.depth = d;
        }
        let space = ProxylessSpace::new(config).map_err(|e| e.to_string())?;
        let net = common::digits_chain_net(args.width);
        let supernet = seeded(&device, args.run.seed, || {
            net.proxyless_supernet_with::<B>(&space, args.weights.into(), &device)
        })
        .map_err(|e| e.to_string())?;
        println!(
            "ProxylessNAS supernet: {} layers, {} to {} choices each, width {}; {} weight / {} architecture / {} validation digits",
            space.num_layers(),
            space.ops().len(),
            space.ops().len() + 1,
            args.width,
            train.len(),
            arch_data.len(),
            valid.len()
        );

        let batch = batches::<B>(&train, normalize, args.batch, Some(args.run.seed), &device)
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("empty training set")?;
        memory(&supernet, &net, &batch, args.run.seed, &device)?;
        drop(batch);

        let backend: String = B::name(&device)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let table_path = args.out.join(format!("latency_{backend}.json"));
        let t = Instant::now();
        let (table, cached) = LatencyTable::load_or_measure(
            &table_path,
            &supernet.valid(),
            input,
            args.latency_runs,
            &device,
        )
        .map_err(|e| e.to_string())?;
        let entries: usize = table.layers.iter().map(Vec::len).sum();
        println!(
            "\nlatency table ({entries} entries, one image on {}): {} {} in {:.1}s; fixed layers {:.3} ms",
            B::name(&device),
            if cached {
                "read from"
            } else {
                "measured, written to"
            },
            table_path.display(),
            t.elapsed().as_secs_f64(),
            table.fixed_ms
        );
        let alphas = ArchParams::new(
            &layer_choices(&supernet),
            ArchOptimConfig {
                learning_rate: args.arch_lr,
                ..ArchOptimConfig::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let config = ProxylessSearchConfig {
            train: TrainConfig {
                weight_decay: 4e-5,
                ..common::train_config(args.epochs, args.batch, args.lr, args.run.seed)
            },
            warmup_epochs: args.warmup,
            arch_update_every: args.arch_every,
            arch_optim: alphas_config(args.arch_lr),
            latency_weight: args.latency_weight,
            latency_reference_ms: None,
            arch_gradient: if args.reinforce > 0 {
                ArchGradient::Reinforce {
                    samples: args.reinforce,
                    baseline_decay: 0.9,
                }
            } else {
                ArchGradient::Gates
            },
        };
        println!(
            "expected latency under uniform paths: {:.3} ms\n",
            table.expected(&alphas.all_probs())
        );
        let mut search = ProxylessSearch::new(
            supernet,
            alphas,
            &train,
            &arch_data,
            normalize,
            Some(&table),
            &config,
            &device,
        )
        .map_err(|e| e.to_string())?;
        let path = args.out.join(format!("seed{}/search.ckpt", args.run.seed));
        args.run.checkpoint.run(&mut search, path, "epoch", |epoch, e: &ProxylessEpoch| {
            // No architecture step runs in a warm-up epoch: its loss is NaN.
            let arch_loss = if e.arch_loss.is_finite() {
                format!("{:.3}", e.arch_loss)
            } else {
                "n/a".to_string()
            };
            println!(
                "epoch {:>2}/{}{}: weight loss {:.3}, accuracy {:5.1}%, architecture loss {arch_loss}, expected latency {:.3} ms, entropy {:.3} ({:.1}s)",
                epoch + 1,
                args.epochs,
                if epoch < args.warmup { " (warm-up)" } else { "" },
                e.train_loss,
                e.train_accuracy,
                e.expected_latency_ms,
                e.entropy,
                e.seconds
            );
        })?;
        let (supernet, alphas, search_report) = search.into_parts();

        let derived_indices = alphas.argmax();
        let derived: ProxylessArch = supernet
            .arch_of(&derived_indices)
            .map_err(|e| e.to_string())?;
        println!("\nderived architecture: {}", space.to_text(&derived));
        let macs = supernet.path_macs(&derived, input);
        let predicted = table.latency(&derived_indices);
        let standalone = net
            .proxyless::<B>(&space, &derived, &device)
            .map_err(|e| e.to_string())?;
        let measured = median_latency_ms::<B, _>(&standalone.valid(), input, &device);
        println!(
            "  {macs} MACs; latency predicted by the table {predicted:.3} ms, measured {measured:.3} ms (one image)"
        );
        let mut shared = WeightSharingEstimator::new(
            supernet,
            &train,
            valid,
            normalize,
            WeightSharingConfig {
                recalibration_batches: 8,
                batch_size: args.batch,
                seed: args.run.seed,
            },
            &device,
        )
        .map_err(|e| e.to_string())?;
        let inherited = shared
            .estimate(&derived, &Budget::full())
            .map_err(|e| e.to_string())?;
        println!(
            "  validation accuracy with inherited weights (batch norm recalibrated): {:.2}%",
            inherited.objective
        );
        let mut report = Report::new("ProxylessNAS on the MobileNetV2 chain space");
        report.intro(format!(
            "ProxylessNAS on the embedded digits ({} weight / {} architecture / {} validation images): a supernet of {} layers, width {}, trained for {} epochs ({} of warm-up) in batches of {}; one architecture step every {} weight steps (Adam, learning rate {}), latency weight λ = {} with a latency table measured on {}. Seed {}.",
            train.len(),
            arch_data.len(),
            valid.len(),
            space.num_layers(),
            args.width,
            args.epochs,
            args.warmup,
            args.batch,
            args.arch_every,
            args.arch_lr,
            args.latency_weight,
            B::name(&device),
            args.run.seed
        ));
        report
            .curve(
                "search_accuracy.svg",
                "training accuracy of the weight steps (sampled paths) per epoch",
                "epoch",
                "training accuracy (%)",
                &search_report.train_accuracy,
            )
            .map_err(|e| e.to_string())?;
        let graph = space.graph(&derived).map_err(|e| e.to_string())?;
        report
            .architecture(
                "derived_architecture.svg",
                &format!("derived architecture: {}", space.to_text(&derived)),
                &graph,
            )
            .map_err(|e| e.to_string())?;
        report.paragraph(format!(
            "Derived architecture: {macs} MACs; latency predicted by the table {predicted:.3} ms, measured {measured:.3} ms (one image); validation accuracy with inherited weights (batch norm recalibrated) {:.2}%.",
            inherited.objective
        ));
        let mut final_curve = None;
        let mut saved = None;
        if args.final_epochs > 0 {
            let retrain =
                common::train_config(args.final_epochs, args.batch, args.lr, args.run.seed);
            let mut scratch = digits.scratch_estimator::<B, _, _>(
                net.with_space(space.clone()),
                retrain,
                &device,
            )?;
            let dir = args.report_dir.join("network");
            let m = scratch
                .train_and_save(&derived, &Budget::full(), &dir)
                .map_err(|e| e.to_string())?;
            println!(
                "  trained from scratch for {} epochs: {:.2}% validation accuracy",
                args.final_epochs, m.objective
            );
            println!(
                "  saved in {} (load it with nas::supernet::persist::load_network)",
                dir.display()
            );
            final_curve = Some(
                m.curves
                    .get("valid_accuracy")
                    .cloned()
                    .unwrap_or_else(|| vec![m.objective]),
            );
            saved = Some(dir);
            // Random architectures trained the same way, and scored with the supernet's
            // weights: is the derived one better, and do inherited weights rank them?
            let mut rng = ChaCha8Rng::seed_from_u64(args.run.seed ^ 0x5eed_7a11);
            let (mut one_shot, mut alone) = (vec![inherited.objective], vec![m.objective]);
            let mut rows = vec![vec![
                "derived".to_string(),
                space.to_text(&derived),
                format!("{predicted:.3}"),
                format!("{:.2}", inherited.objective),
                format!("{:.2}", m.objective),
            ]];
            for i in 0..args.random_baselines {
                let random = space.sample(&mut rng);
                let indices = shared
                    .supernet()
                    .choice_indices(&random)
                    .map_err(|e| e.to_string())?;
                let latency = table.latency(&indices);
                let full = Budget::full();
                let inherited = shared
                    .estimate(&random, &full)
                    .map_err(|e| e.to_string())?
                    .objective;
                let trained = scratch
                    .estimate(&random, &full)
                    .map_err(|e| e.to_string())?
                    .objective;
                println!(
                    "  random {}: inherited weights {inherited:5.2}%, from scratch {trained:5.2}%, latency {latency:.3} ms  {}",
                    i + 1,
                    space.to_text(&random)
                );
                one_shot.push(inherited);
                alone.push(trained);
                rows.push(vec![
                    format!("random {}", i + 1),
                    space.to_text(&random),
                    format!("{latency:.3}"),
                    format!("{inherited:.2}"),
                    format!("{trained:.2}"),
                ]);
            }
            if args.random_baselines > 0 {
                let mean = alone[1..].iter().sum::<f64>() / (alone.len() - 1) as f64;
                let tau =
                    kendall_tau(&one_shot, &alone).map_or("n/a".to_string(), |t| format!("{t:.3}"));
                let summary = format!(
                    "derived {:.2}% from scratch against {mean:.2}% for {} random architectures on average (best of them {:.2}%); Kendall τ of inherited-weight and from-scratch accuracy over these {}: {tau}",
                    m.objective,
                    args.random_baselines,
                    alone[1..].iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    alone.len()
                );
                println!("  {summary}");
                report.paragraph(format!("{summary}."));
                report.table(
                    &[
                        "architecture",
                        "layers",
                        "latency (ms, table)",
                        "inherited weights (%)",
                        "from scratch (%)",
                    ],
                    rows,
                );
            }
        }
        common::final_training_section(
            &mut report,
            final_curve.as_deref(),
            "validation accuracy",
            saved.as_deref(),
        )?;
        epoch_table(&mut report, &search_report, args.warmup);
        println!("total {:.1} min", start.elapsed().as_secs_f64() / 60.0);
        common::write_report(&report, &args.report_dir)?;
        Ok(())
    }
}

/// Adds the table of the search's epochs to `report`.
fn epoch_table(report: &mut Report, search: &ProxylessReport, warmup: usize) {
    let number = |v: f64, digits: usize| {
        if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            "n/a".to_string()
        }
    };
    let rows = (0..search.train_accuracy.len())
        .map(|i| {
            let at = |v: &[f64]| v.get(i).copied().unwrap_or(f64::NAN);
            vec![
                format!("{}{}", i + 1, if i < warmup { " (warm-up)" } else { "" }),
                number(at(&search.train_loss), 3),
                number(at(&search.train_accuracy), 1),
                number(at(&search.arch_loss), 3),
                number(at(&search.expected_latency_ms), 3),
                number(at(&search.entropy), 3),
                number(at(&search.epoch_seconds), 1),
            ]
        })
        .collect();
    report.table(
        &[
            "epoch",
            "weight loss",
            "train acc (%)",
            "architecture loss",
            "expected latency (ms)",
            "entropy",
            "seconds",
        ],
        rows,
    );
}

fn alphas_config(lr: f64) -> ArchOptimConfig {
    ArchOptimConfig {
        learning_rate: lr,
        ..ArchOptimConfig::default()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.run.backend.clone();
    common::run_to_exit(backend.as_deref(), Proxyless(args))
}
