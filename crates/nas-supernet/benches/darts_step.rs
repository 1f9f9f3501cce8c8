//! One bi-level search step (first and second order DARTS) on our supernets against the same
//! step in PyTorch (`benches/pytorch/darts_step.py` at the workspace root, run in the same
//! bench), printing seconds per step, peak heap memory per step, and the ratio ours / PyTorch.
//!
//! ```text
//! cargo bench -p nas-supernet --bench darts_step
//! DARTS_BENCH_REPEATS=5 NAS_BACKEND=wgpu cargo bench -p nas-supernet --features wgpu --bench darts_step
//! ```
//!
//! `DARTS_BENCH_REPEATS` (default 3) steps are timed after one warm-up step; `DARTS_BENCH_ONLY`
//! (`nb201` or `darts`) runs one configuration; `PYTHON` names the interpreter (default
//! `python3`). Both sides use the same number of CPU threads: `RAYON_NUM_THREADS` (default:
//! every core) for ours, `torch.set_num_threads` with the same number for PyTorch, printed.
//! Without PyTorch the ratios are left out.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Int, Tensor, TensorData};
use nas_supernet::backend::{BackendKind, BackendTask, run_on};
use nas_supernet::burn;
use nas_supernet::darts_search::supernet::{DartsSupernetConfig, Nb201SupernetConfig};
use nas_supernet::darts_search::{
    EpochPlan, Method, SearchConfig, Searcher, StepContext, SupernetConfig,
};
use nas_supernet::data::ImageBatch;
use nas_supernet::memory::{self, CountingAlloc};
use rand::{RngExt, SeedableRng};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A benchmark configuration: the space and the batch.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    space: SupernetConfig,
    batch: usize,
    size: usize,
}

impl Case {
    fn in_channels(&self) -> usize {
        match self.space {
            SupernetConfig::Nb201(c) => c.in_channels,
            SupernetConfig::Darts(c) => c.in_channels,
        }
    }

    fn describe(&self) -> String {
        match self.space {
            SupernetConfig::Nb201(c) => format!(
                "NB201 C={} N={}, batch {}×{}×{}×{}",
                c.channels, c.cells_per_stage, self.batch, c.in_channels, self.size, self.size
            ),
            SupernetConfig::Darts(c) => format!(
                "DARTS C={} {} cells {} nodes, batch {}×{}×{}×{}",
                c.channels, c.layers, c.steps, self.batch, c.in_channels, self.size, self.size
            ),
        }
    }

    fn python_args(&self) -> Vec<String> {
        let (space, channels, layers, steps) = match self.space {
            SupernetConfig::Nb201(c) => ("nb201", c.channels, c.cells_per_stage, 4),
            SupernetConfig::Darts(c) => ("darts", c.channels, c.layers, c.steps),
        };
        [
            "--space",
            space,
            "--channels",
            &channels.to_string(),
            "--layers",
            &layers.to_string(),
            "--steps",
            &steps.to_string(),
            "--batch",
            &self.batch.to_string(),
            "--size",
            &self.size.to_string(),
            "--in-channels",
            &self.in_channels().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "nb201",
            space: SupernetConfig::Nb201(Nb201SupernetConfig {
                channels: 8,
                cells_per_stage: 1,
                in_channels: 1,
                num_classes: 10,
            }),
            batch: 64,
            size: 8,
        },
        Case {
            name: "darts",
            space: SupernetConfig::Darts(DartsSupernetConfig {
                channels: 4,
                layers: 5,
                steps: 4,
                stem_multiplier: 3,
                in_channels: 3,
                num_classes: 10,
            }),
            batch: 16,
            size: 8,
        },
    ]
}

fn batch<B: AutodiffBackend>(case: &Case, seed: u64, device: &Device<B>) -> ImageBatch<B> {
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
    let shape = [case.batch, case.in_channels(), case.size, case.size];
    let n: usize = shape.iter().product();
    let pixels: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let labels: Vec<i64> = (0..case.batch).map(|_| rng.random_range(0..10)).collect();
    ImageBatch {
        images: Tensor::from_data(TensorData::new(pixels, shape), device),
        targets: Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [case.batch]), device),
    }
}

/// Seconds per step and peak heap bytes per step of our implementation.
struct Ours {
    case: Case,
    order: u8,
    repeats: usize,
}

impl BackendTask for Ours {
    type Output = Result<(f64, Option<usize>), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let method = if self.order == 2 {
            Method::from_name("darts2")
        } else {
            Method::from_name("darts")
        }
        .map_err(|e| e.to_string())?;
        let config = SearchConfig {
            method,
            batch_size: self.case.batch,
            ..SearchConfig::default()
        };
        let mut s = Searcher::<B, _>::new(self.case.space, config, device.clone())
            .map_err(|e| e.to_string())?;
        let train = batch::<B>(&self.case, 1, &device);
        let valid = batch::<B>(&self.case, 2, &device);
        let ctx = StepContext::new(0.025, EpochPlan::default());
        s.step(&train, &valid, &ctx).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut peak = None;
        for _ in 0..self.repeats {
            let st = s.step(&train, &valid, &ctx).map_err(|e| e.to_string())?;
            peak = peak.max(st.peak_bytes);
        }
        Ok((start.elapsed().as_secs_f64() / self.repeats as f64, peak))
    }
}

/// PyTorch's seconds per step for orders 1 and 2, or why there are none.
fn pytorch(case: &Case, repeats: usize, threads: usize) -> Result<(f64, f64, String), String> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/pytorch/darts_step.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .args(case.python_args())
        .args(["--repeats", &repeats.to_string()])
        .args(["--threads", &threads.to_string()])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("bad output from the reference: {e}"))?;
    let get = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| format!("no `{k}` in the reference's output"))
    };
    let info = format!(
        "torch {}, {} threads",
        v["torch"].as_str().unwrap_or("?"),
        v["threads"].as_u64().unwrap_or(0)
    );
    Ok((get("order1_seconds")?, get("order2_seconds")?, info))
}

fn main() {
    let repeats: usize = std::env::var("DARTS_BENCH_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let only = std::env::var("DARTS_BENCH_ONLY").ok();
    // The same threads on both sides: rayon's pool (set before it starts) and PyTorch's.
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    // SAFETY: no other thread exists yet; the rayon pool reads this when it starts.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let kind = match BackendKind::from_env() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "backend {kind}, {threads} rayon thread(s); PyTorch torch.set_num_threads({threads}); \
         {repeats} timed steps after 1 warm-up"
    );
    println!(
        "| configuration | order | ours (s/step) | peak heap/step | PyTorch (s/step) | ours / PyTorch |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for case in cases() {
        if only.as_deref().is_some_and(|o| o != case.name) {
            continue;
        }
        let reference = pytorch(&case, repeats, threads);
        for order in [1u8, 2] {
            memory::reset_peak();
            let ours = run_on(
                kind,
                Ours {
                    case,
                    order,
                    repeats,
                },
            );
            let (secs, peak) = match ours {
                Ok(Ok(v)) => v,
                Ok(Err(e)) | Err(nas_supernet::SupernetError::InvalidConfig { reason: e, .. }) => {
                    println!("| {} | {order} | failed: {e} | | | |", case.describe());
                    continue;
                }
                Err(e) => {
                    println!("| {} | {order} | {e} | | | |", case.describe());
                    continue;
                }
            };
            let peak = peak.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
            match &reference {
                Ok((t1, t2, _)) => {
                    let t = if order == 1 { *t1 } else { *t2 };
                    println!(
                        "| {} | {order} | {secs:.3} | {peak} | {t:.3} | {:.1}x |",
                        case.describe(),
                        secs / t
                    );
                }
                Err(e) => println!(
                    "| {} | {order} | {secs:.3} | {peak} | unavailable ({e}) | |",
                    case.describe()
                ),
            }
        }
        if let Ok((_, _, info)) = &reference {
            println!("(PyTorch: {info})");
        }
    }
}
