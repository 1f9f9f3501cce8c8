//! Helpers shared by the examples (a module, not an example: Cargo only builds subdirectories
//! of `examples/` that hold a `main.rs`). Each example uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nas::supernet::backend::{BackendKind, BackendTask, run_on};
use nas::supernet::driver::{Driver, EpochSolver};

/// Runs `task` on the backend named by `backend` (else `$NAS_BACKEND`, else the CPU), printing
/// it. An unknown or unavailable backend exits with code 2, a failed task with code 1, each
/// with its message on standard error.
pub fn run_task<T, O>(backend: Option<&str>, task: T) -> Result<O, ExitCode>
where
    T: BackendTask<Output = Result<O, String>>,
{
    let kind = match backend
        .map(str::parse)
        .unwrap_or_else(BackendKind::from_env)
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(2));
        }
    };
    println!("backend: {kind}");
    match run_on(kind, task) {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// The checkpoint flags of the examples that train epoch by epoch.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Continue from the checkpoint when there is one: a killed run resumes at its last
    /// checkpointed epoch and ends as if never interrupted.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Overwrite an existing checkpoint (by default a run refuses to start over one).
    #[arg(long)]
    pub fresh: bool,
    /// Checkpoint file (default: under runs/<example>/).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write the checkpoint every N epochs (and at the end).
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,
}

impl CheckpointArgs {
    /// The checkpoint file: `--checkpoint`, else `default`.
    pub fn path(&self, default: impl Into<PathBuf>) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| default.into())
    }

    /// A driver for `solver` that checkpoints to [`CheckpointArgs::path`] as the flags say,
    /// and says where.
    pub fn driver<'s, S: EpochSolver>(
        &self,
        solver: &'s mut S,
        default: impl Into<PathBuf>,
    ) -> Driver<'s, S> {
        let path = self.path(default);
        println!(
            "checkpoint: {} (every {} epoch(s){})",
            path.display(),
            self.checkpoint_every,
            if self.resume {
                "; resuming when present"
            } else {
                ""
            }
        );
        Driver::new(solver)
            .checkpoint(path, self.checkpoint_every)
            .resume(self.resume)
            .fresh(self.fresh)
    }
}

use nas::estimate::tabular::{Nb201Dataset, Nb201Table};
use nas::space::nb201::{Nb201Arch, Nb201Op};
use nas::supernet::data::ImageDataset;

/// Training and test images: Fashion-MNIST or CIFAR-10 from `dir`, else the digits split
/// 70 / 30.
pub fn load(dir: Option<&Path>, seed: u64) -> Result<(ImageDataset, ImageDataset), String> {
    let Some(dir) = dir else {
        return ImageDataset::digits()
            .split(0.7, seed)
            .map_err(|e| e.to_string());
    };
    let fashion = ImageDataset::fashion_mnist(dir, true);
    if let Ok(train) = fashion {
        let test = ImageDataset::fashion_mnist(dir, false).map_err(|e| e.to_string())?;
        return Ok((train, test));
    }
    match ImageDataset::cifar10(dir, true) {
        Ok(train) => Ok((
            train,
            ImageDataset::cifar10(dir, false).map_err(|e| e.to_string())?,
        )),
        Err(e) => Err(format!(
            "{} holds neither Fashion-MNIST IDX files nor CIFAR-10 binary batches ({e})",
            dir.display()
        )),
    }
}

/// Looks `arch` up in the NAS-Bench-201 table (`path`, else `$NAS_NB201_CSV`, else
/// `../shared/data/nb201/`) and prints its accuracies, CIFAR-10 rank and skip connections;
/// `method`'s collapse in the NAS-Bench-201 paper (54.30 % on CIFAR-10) is the comparison.
pub fn nb201_lookup(arch: &Nb201Arch, path: Option<PathBuf>, method: &str) {
    let path = path
        .or_else(Nb201Table::path_from_env)
        .unwrap_or_else(|| PathBuf::from("../shared/data/nb201/nats_bench_tss_200ep.csv"));
    let table = match Nb201Table::open(&path) {
        Ok(t) => t,
        Err(e) => {
            println!("NAS-Bench-201 table not read ({e}); pass --nb201 PATH to look the cell up");
            return;
        }
    };
    let all_skip = arch.edges.iter().all(|&o| o == Nb201Op::SkipConnect);
    let skips = arch
        .edges
        .iter()
        .filter(|&&o| o == Nb201Op::SkipConnect)
        .count();
    if let Some(row) = table.get(arch) {
        let acc = row.accuracy(Nb201Dataset::Cifar10);
        let rank = table
            .rows()
            .iter()
            .filter(|r| r.accuracy(Nb201Dataset::Cifar10) > acc)
            .count();
        println!(
            "NAS-Bench-201 (200 epochs): CIFAR-10 {:.2}%, CIFAR-100 {:.2}%, ImageNet16-120 {:.2}%; CIFAR-10 rank {} of {}",
            acc,
            row.accuracy(Nb201Dataset::Cifar100),
            row.accuracy(Nb201Dataset::ImageNet16_120),
            rank + 1,
            table.rows().len()
        );
        println!(
            "skip connections: {skips} of 6 edges; {} (the paper's {method} collapses to all skip connections: 54.30%)",
            if all_skip {
                "collapsed to all skip connections"
            } else {
                "no all-skip collapse"
            }
        );
    }
}
