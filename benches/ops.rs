//! Tensor speed against PyTorch: candidate operations (forward + backward) and whole training
//! steps, each row timed here and by a PyTorch script doing the same computation, in one run.
//!
//! ```text
//! cargo bench --bench ops                      # the full table, batch 64, 2 threads
//! cargo bench --bench ops -- --quick           # batch 16, fewer repetitions
//! cargo bench --bench ops -- --rows conv,step  # rows whose name contains one of the words
//! cargo bench --bench ops -- --threads 1 --batch 32 --reps 5 --step-reps 3
//! cargo bench --bench ops --features cuda -- --backend cuda   # PyTorch then runs on CUDA
//! ```
//!
//! Every row is the median of `--reps` (operations) or `--step-reps` (training steps) timed
//! repetitions after `--warmup` untimed ones. Operation rows time `(op(x) * probe).sum()` and its
//! backward pass on a random `[batch, 16, 32, 32]` input that requires a gradient (the DARTS
//! search network's first stage). The step rows (NB201 and DARTS V2 training steps, first and
//! second-order DARTS search steps) are described in `benches/common/rows.rs`, shared with
//! `examples/gpu_check.rs`.
//!
//! The PyTorch side is `benches/pytorch/nas_bench.py`, started once per row with the same
//! batch, repetitions and thread count (`torch.set_num_threads`); the Burn side runs its CPU
//! work on a rayon pool of the same size (`RAYON_NUM_THREADS` is set before the pool starts).
//! Without `python3` and `torch` the PyTorch columns read `n/a`.
//! A plain `harness = false` program, like the strategy overhead bench.

use std::io::Write;
use std::process::Command;

use clap::Parser;

#[path = "common/rows.rs"]
mod rows;
use rows::{C, HW, row_batch};

use nas::supernet::backend::{BackendKind, BackendTask, run_on};
use nas::supernet::burn;

use burn::tensor::Device;
use burn::tensor::backend::AutodiffBackend;

#[derive(Parser, Debug, Clone)]
#[command(about = "Operations and training steps, ours against PyTorch")]
struct Args {
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed repetitions of each operation row.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Timed repetitions of each training-step row.
    #[arg(long, default_value_t = 5)]
    step_reps: usize,
    /// Untimed repetitions before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// CPU threads, both sides (default: the machine's available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Backend: ndarray, flex, wgpu, cuda (default: `NAS_BACKEND`, else ndarray).
    #[arg(long)]
    backend: Option<String>,
    /// PyTorch device (default: cuda for the GPU backends, else cpu).
    #[arg(long)]
    torch_device: Option<String>,
    /// Batch 16, 3 repetitions (2 for steps), 1 warm-up: a quick look.
    #[arg(long)]
    quick: bool,
    /// Only rows whose name contains one of these comma-separated words.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Skip the PyTorch side.
    #[arg(long)]
    no_torch: bool,
    /// Time with the process's CPU time (all threads) instead of wall time, both sides: less
    /// sensitive to other processes on a busy machine, blind to idle waits.
    #[arg(long)]
    cpu_time: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What a row is: an operation (the name of the module it builds) or a training step.
#[derive(Clone, Copy)]
enum Kind {
    Op,
    Step,
}

/// Our time (ms) and parameter count for one row.
struct Ours {
    ms: f64,
    params: usize,
}

struct Bench {
    args: Args,
    row: &'static str,
    kind: Kind,
}

impl BackendTask for Bench {
    type Output = Option<Ours>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Option<Ours> {
        let a = &self.args;
        match self.kind {
            Kind::Op => {
                let t = rows::time_op_row::<B>(
                    self.row, a.batch, a.warmup, a.reps, a.cpu_time, &device,
                )?;
                Some(Ours {
                    ms: t.ms,
                    params: t.params,
                })
            }
            Kind::Step => {
                let t = rows::time_step_row::<B>(
                    self.row,
                    a.batch,
                    1,
                    a.step_reps,
                    a.cpu_time,
                    &device,
                )?;
                Some(Ours {
                    ms: t.ms,
                    params: t.params,
                })
            }
        }
    }
}

/// The PyTorch side of one row: median ms, parameter count and torch version, or why not.
fn torch_row(args: &Args, row: &str, threads: usize, device: &str) -> Result<(f64, usize), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch/nas_bench.py");
    let reps = if row.ends_with("_step") {
        args.step_reps
    } else {
        args.reps
    };
    let warmup = if row.ends_with("_step") {
        1
    } else {
        args.warmup
    };
    let out = Command::new("python3")
        .arg(script)
        .args(["--row", row, "--device", device])
        .args(["--batch", &args.batch.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--reps", &reps.to_string()])
        .args(args.cpu_time.then_some("--cpu-time"))
        .output()
        .map_err(|e| format!("python3 not found ({e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("unreadable output of the PyTorch script: {e}"))?;
    let ms = v["ms"].as_f64().ok_or("no `ms` in the PyTorch output")?;
    let params = v["params"].as_u64().unwrap_or(0) as usize;
    Ok((ms, params))
}

fn torch_version() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.batch = 16;
        args.reps = 3;
        args.step_reps = 2;
        args.warmup = 1;
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // SAFETY: no other thread exists yet; the rayon pools read this when they start.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    let kind = match &args.backend {
        Some(name) => name.parse::<BackendKind>(),
        None => BackendKind::from_env(),
    };
    let kind = match kind {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let gpu = matches!(kind, BackendKind::Cuda | BackendKind::Wgpu);
    let torch_device = args
        .torch_device
        .clone()
        .unwrap_or_else(|| if gpu { "cuda" } else { "cpu" }.to_string());
    let torch = if args.no_torch { None } else { torch_version() };

    println!(
        "machine: {} ({} logical CPUs), load average {}",
        cpu_model(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average()
    );
    println!(
        "ours: Burn 0.21.0, backend {kind}, {threads} thread(s); PyTorch: {} on {torch_device}, torch.set_num_threads({threads})",
        torch.as_deref().unwrap_or("n/a")
    );
    if torch.is_none() && !args.no_torch {
        println!(
            "  (no PyTorch: `pip install torch --index-url https://download.pytorch.org/whl/cpu` for the CPU wheel)"
        );
    }
    println!(
        "batch {}, median {} of {} (operations) / {} (steps) after {} warm-up; input [batch, {C}, {HW}, {HW}] for operations, [batch, 3, {HW}, {HW}] for steps",
        args.batch,
        if args.cpu_time {
            "CPU time"
        } else {
            "wall time"
        },
        args.reps,
        args.step_reps,
        args.warmup
    );
    println!();
    println!("| row | what | ours ms | PyTorch ms | ours/PyTorch | ours img/s | PyTorch img/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut notes = Vec::new();
    let op_rows = rows::OP_ROWS.iter().map(|&(r, w)| (r, w, Kind::Op));
    let step_rows = rows::STEP_ROWS.iter().map(|&(r, w)| (r, w, Kind::Step));
    for (row, what, kind_of) in op_rows.chain(step_rows) {
        if !args.rows.is_empty() && !args.rows.iter().any(|w| row.contains(w.as_str())) {
            continue;
        }
        let ours = match run_on(
            kind,
            Bench {
                args: args.clone(),
                row,
                kind: kind_of,
            },
        ) {
            Ok(Some(o)) => o,
            Ok(None) => {
                println!("| {row} | {what} | failed to build | | | | |");
                continue;
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let theirs = if torch.is_some() {
            torch_row(&args, row, threads, &torch_device)
        } else {
            Err("n/a".into())
        };
        let step = matches!(kind_of, Kind::Step);
        let ips = |ms: f64| {
            if step {
                format!("{:.0}", row_batch(row, args.batch) as f64 / (ms / 1e3))
            } else {
                String::new()
            }
        };
        let (t_ms, ratio, t_ips) = match &theirs {
            Ok((ms, params)) => {
                if *params != ours.params {
                    notes.push(format!(
                        "{row}: {} parameters here, {params} in the PyTorch model",
                        ours.params
                    ));
                }
                (format!("{ms:.1}"), format!("{:.2}", ours.ms / ms), ips(*ms))
            }
            Err(e) => {
                if torch.is_some() {
                    notes.push(format!("{row}: PyTorch side failed: {e}"));
                }
                ("n/a".into(), "n/a".into(), String::new())
            }
        };
        println!(
            "| {row} | {what} | {:.1} | {t_ms} | {ratio} | {} | {t_ips} |",
            ours.ms,
            ips(ours.ms)
        );
        let _ = std::io::stdout().flush();
    }
    println!();
    println!("load average at the end: {}", load_average());
    for n in notes {
        println!("note: {n}");
    }
}
