//! Killed and resumed runs end where uninterrupted ones do: a DARTS search, a SPOS supernet
//! training and a ProxylessNAS search.
//!
//! Each test runs the same training twice: once uninterrupted in this process, once in a child
//! process (this test binary again, running the `#[ignore]`d `child_*` test) that writes a
//! checkpoint every two epochs, finishes a third epoch, then blocks until the parent kills it
//! with SIGKILL (no race: the parent waits for a marker file the child writes after the third
//! epoch). The third epoch is lost with the process; the parent resumes from the checkpoint of
//! epoch 2 and must end with exactly the uninterrupted run's alphas and weights.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::{tiny_proxyless, tiny_spos};

use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn::module::{Module, ModuleVisitor, Param};
use nas_supernet::burn::tensor::Tensor;
use nas_supernet::burn::tensor::backend::Backend;
use nas_supernet::chain_net::ChainNetConfig;
use nas_supernet::darts_search::supernet::Nb201SupernetConfig;
use nas_supernet::darts_search::{
    AlphaOptimConfig, EpochReport, Method, SearchConfig, Searcher, SupernetConfig,
};
use nas_supernet::data::ImageDataset;
use nas_supernet::driver::{Checkpoint, Driver, EpochObserver, EpochSolver, RunSummary};
use nas_supernet::network::seeded;
use nas_supernet::oneshot::gates::{ArchOptimConfig, ArchParams};
use nas_supernet::oneshot::proxyless::{
    ProxylessEpoch, ProxylessSearch, ProxylessSearchConfig, layer_choices,
};
use nas_supernet::oneshot::train::{StepInfo, SupernetEpoch, SupernetTraining};
use nas_supernet::oneshot::{SinglePath, SposSupernet, UniformSampler};
use nas_supernet::train::TrainConfig;

type B = DefaultBackend;

const EPOCHS: usize = 5;
const DIR_VAR: &str = "NAS_KILL_RESUME_DIR";

/// Every float tensor of `module` (parameters and batch-norm statistics), in visiting order.
fn tensors<Bk: Backend, M: Module<Bk>>(module: &M) -> Vec<Vec<f32>> {
    struct All(Vec<Vec<f32>>);
    impl<Bk: Backend> ModuleVisitor<Bk> for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            self.0
                .push(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    // Burn's running statistics hold their last update apart until synchronized; making a
    // record synchronizes them (the clone shares them), so the visit reads the current values.
    let _ = module.clone().into_record();
    let mut all = All(Vec::new());
    module.visit(&mut all);
    all.0
}

/// Asserts that two lists of tensors are bit for bit equal, reporting the first that differs.
fn assert_same(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: tensor count");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len(), "{what}: tensor {i} size");
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(
            x == y,
            "{what}: tensor {i} of {} differs (max |Δ| = {diff:e})",
            a.len()
        );
    }
}

/// After epoch index 2 (the third), tells the parent and waits to be killed.
struct BlockAfterThird(PathBuf);

impl<R> EpochObserver<R> for BlockAfterThird {
    fn epoch_end(&mut self, epoch: usize, _: &R, _: &[R]) -> nas_supernet::driver::Control {
        if epoch == 2 {
            std::fs::write(&self.0, b"ready").unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        nas_supernet::driver::Control::Continue
    }
}

/// Runs `child` (an ignored test of this binary) with `dir` in its environment, waits for its
/// marker, kills it with SIGKILL and checks that it left the checkpoint of epoch 2.
fn run_and_kill_child(child: &str, dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let marker = dir.join("ready");
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            child,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !marker.exists() {
        if let Some(status) = process.try_wait().unwrap() {
            panic!("the child exited ({status}) before reaching epoch 3");
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the child did not reach epoch 3 in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    process.kill().unwrap(); // SIGKILL on Unix
    let status = process.wait().unwrap();
    assert!(!status.success(), "the child was killed");
    let path = dir.join("checkpoint.bin");
    let (meta, _) = Checkpoint::read(&path).unwrap();
    assert_eq!(
        meta.epochs_done, 2,
        "checkpoints every 2 epochs; epoch 3 was lost"
    );
    path
}

fn child_dir() -> Option<PathBuf> {
    std::env::var_os(DIR_VAR).map(PathBuf::from)
}

fn test_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nas-kill-resume-{}-{name}", std::process::id()))
}

// --- DARTS search -----------------------------------------------------------------------------

fn darts_data() -> ImageDataset {
    ImageDataset::digits().sample(192, 1)
}

fn darts_searcher() -> Searcher<B, SupernetConfig> {
    let builder = SupernetConfig::Nb201(Nb201SupernetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    });
    let config = SearchConfig {
        method: Method::Darts,
        epochs: EPOCHS,
        batch_size: 32,
        alphas: AlphaOptimConfig {
            learning_rate: 0.01,
            ..AlphaOptimConfig::default()
        },
        seed: 11,
        ..SearchConfig::default()
    };
    Searcher::new(builder, config, Default::default()).unwrap()
}

fn darts_state(s: &Searcher<B, SupernetConfig>) -> (Vec<Vec<Vec<f32>>>, Vec<Vec<f32>>) {
    (s.alphas().to_tables(), tensors(s.network()))
}

#[test]
#[ignore = "run by darts_search_killed_and_resumed in a child process"]
fn child_darts() {
    let dir = child_dir().expect("run by darts_search_killed_and_resumed");
    let data = darts_data();
    let mut searcher = darts_searcher();
    let mut epochs = searcher.epochs(&data).unwrap();
    Driver::new(&mut epochs)
        .checkpoint(dir.join("checkpoint.bin"), 2)
        .observer(BlockAfterThird(dir.join("ready")))
        .run()
        .unwrap();
    unreachable!("killed after epoch 3");
}

#[test]
fn darts_search_killed_and_resumed() {
    let data = darts_data();
    let mut full = darts_searcher();
    let report = full.run(&data, |_| {}).unwrap();
    assert_eq!(report.epochs.len(), EPOCHS);

    let dir = test_dir("darts");
    let path = run_and_kill_child("child_darts", &dir);
    let mut resumed = darts_searcher();
    let mut epochs = resumed.epochs(&data).unwrap();
    let mut seen = Vec::new();
    let mut driver = Driver::new(&mut epochs)
        .checkpoint(&path, 2)
        .resume(true)
        .observer(|e: usize, _: &EpochReport| seen.push(e));
    let summary = driver.run().unwrap();
    let history = driver.into_history();
    assert_eq!(summary.resumed_at, Some(2));
    assert_eq!(summary.epochs_run, EPOCHS - 2);
    assert_eq!(seen, vec![2, 3, 4]);
    let resumed_report = epochs.report(history);
    assert_eq!(resumed_report.epochs.len(), EPOCHS);
    for (a, b) in resumed_report.epochs.iter().zip(&report.epochs) {
        assert_eq!(a.train_loss, b.train_loss, "epoch {}", a.epoch);
        assert_eq!(a.probabilities, b.probabilities, "epoch {}", a.epoch);
    }
    let (alphas, weights) = darts_state(&resumed);
    let (full_alphas, full_weights) = darts_state(&full);
    let flat = |t: Vec<Vec<Vec<f32>>>| t.into_iter().flatten().collect::<Vec<_>>();
    assert_same(&flat(alphas), &flat(full_alphas), "alphas after resuming");
    assert_same(&weights, &full_weights, "supernet weights after resuming");
    assert_eq!(
        resumed_report.derived.to_string(),
        report.derived.to_string()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- SPOS supernet training -------------------------------------------------------------------

fn spos_config() -> TrainConfig {
    TrainConfig {
        epochs: EPOCHS,
        batch_size: 32,
        learning_rate: 0.05,
        seed: 4,
        ..TrainConfig::default()
    }
}

/// How a run is driven: uninterrupted, as the child that is killed after epoch 3, or resumed
/// from the child's checkpoint.
enum Mode<'p> {
    Full,
    Child(&'p Path),
    Resume(&'p Path),
}

impl Mode<'_> {
    fn driver<'s, S: EpochSolver>(&self, solver: &'s mut S) -> Driver<'s, S> {
        let driver = Driver::new(solver);
        match self {
            Mode::Full => driver,
            Mode::Child(dir) => driver
                .checkpoint(dir.join("checkpoint.bin"), 2)
                .observer(BlockAfterThird(dir.join("ready"))),
            Mode::Resume(path) => driver.checkpoint(path, 2).resume(true),
        }
    }
}

/// Trains the SPOS supernet (uniform paths drawn by step): uninterrupted, as the child, or
/// resumed; returns the trained supernet's tensors and the per-epoch reports.
fn spos_run(mode: Mode<'_>) -> (Vec<Vec<f32>>, Vec<SupernetEpoch>, RunSummary) {
    let device = Default::default();
    let data = ImageDataset::digits().sample(128, 2);
    let normalize = data.channel_stats();
    let space = tiny_spos();
    let net = seeded(&device, 4, || {
        ChainNetConfig::new(1, 10)
            .with_stem_stride(1)
            .spos_supernet::<B>(&space, &device)
    })
    .unwrap();
    let sampler = UniformSampler::new(space, 4);
    let forward = move |n: &SposSupernet<B>, x: Tensor<B, 4>, info: StepInfo| {
        n.path_logits(x, &sampler.sample_at(info.step))
    };
    let config = spos_config();
    let mut training =
        SupernetTraining::new(net, &data, &normalize, &config, &device, forward).unwrap();
    let mut driver = mode.driver(&mut training);
    let summary = driver.run().unwrap();
    let history = driver.into_history();
    (tensors(training.model()), history, summary)
}

#[test]
#[ignore = "run by spos_supernet_training_killed_and_resumed in a child process"]
fn child_spos() {
    let dir = child_dir().expect("run by spos_supernet_training_killed_and_resumed");
    spos_run(Mode::Child(&dir));
    unreachable!("killed after epoch 3");
}

#[test]
fn spos_supernet_training_killed_and_resumed() {
    let (full_weights, full_history, _) = spos_run(Mode::Full);
    assert_eq!(full_history.len(), EPOCHS);
    assert!(full_history.iter().all(|e| e.train_loss.is_finite()));

    let dir = test_dir("spos");
    let path = run_and_kill_child("child_spos", &dir);
    let (weights, history, summary) = spos_run(Mode::Resume(&path));
    assert_eq!(summary.resumed_at, Some(2));
    assert_eq!(summary.epochs_run, EPOCHS - 2);
    let losses = |h: &[SupernetEpoch]| h.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&history), losses(&full_history));
    assert_same(&weights, &full_weights, "supernet weights after resuming");
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- ProxylessNAS search ----------------------------------------------------------------------

/// Supernet tensors, path probabilities, per-epoch reports, how the run ended.
type ProxylessOutcome = (
    Vec<Vec<f32>>,
    Vec<Vec<f64>>,
    Vec<ProxylessEpoch>,
    RunSummary,
);

/// A ProxylessNAS search (one warm-up epoch, an architecture step every 2 weight steps, no
/// latency table): uninterrupted, as the child, or resumed; returns the supernet's tensors,
/// the architecture parameters' probabilities and the per-epoch reports.
fn proxyless_run(mode: Mode<'_>) -> ProxylessOutcome {
    let device = Default::default();
    let data = ImageDataset::digits().sample(192, 3);
    let (train, arch_data) = data.split(0.6, 3).unwrap();
    let normalize = data.channel_stats();
    let space = tiny_proxyless();
    let net = seeded(&device, 5, || {
        ChainNetConfig::new(1, 10).proxyless_supernet::<B>(&space, &device)
    })
    .unwrap();
    let alphas = ArchParams::new(
        &layer_choices(&net),
        ArchOptimConfig {
            learning_rate: 0.05,
            ..ArchOptimConfig::default()
        },
    )
    .unwrap();
    let config = ProxylessSearchConfig {
        train: TrainConfig {
            epochs: EPOCHS,
            batch_size: 32,
            learning_rate: 0.05,
            seed: 6,
            ..TrainConfig::default()
        },
        warmup_epochs: 1,
        arch_update_every: 2,
        latency_weight: 0.0,
        ..ProxylessSearchConfig::default()
    };
    let mut search = ProxylessSearch::new(
        net, alphas, &train, &arch_data, &normalize, None, &config, &device,
    )
    .unwrap();
    let mut driver = mode.driver(&mut search);
    let summary = driver.run().unwrap();
    let history = driver.into_history();
    (
        tensors(search.model()),
        search.alphas().all_probs(),
        history,
        summary,
    )
}

#[test]
#[ignore = "run by proxylessnas_search_killed_and_resumed in a child process"]
fn child_proxyless() {
    let dir = child_dir().expect("run by proxylessnas_search_killed_and_resumed");
    proxyless_run(Mode::Child(&dir));
    unreachable!("killed after epoch 3");
}

#[test]
fn proxylessnas_search_killed_and_resumed() {
    let (full_weights, full_probs, full_history, _) = proxyless_run(Mode::Full);
    assert!(full_history[1..].iter().all(|e| e.arch_loss.is_finite()));

    let dir = test_dir("proxyless");
    let path = run_and_kill_child("child_proxyless", &dir);
    let (weights, probs, history, summary) = proxyless_run(Mode::Resume(&path));
    assert_eq!(summary.resumed_at, Some(2));
    let timeless = |h: &[ProxylessEpoch]| -> Vec<ProxylessEpoch> {
        h.iter()
            .map(|e| ProxylessEpoch {
                seconds: 0.0,
                ..e.clone()
            })
            .collect()
    };
    // Compared as text: NaN (the warm-up epoch's architecture loss, the expected latency
    // without a table) is not equal to itself, and floats print exactly.
    assert_eq!(
        format!("{:?}", timeless(&history)),
        format!("{:?}", timeless(&full_history))
    );
    assert_eq!(probs, full_probs, "architecture parameters after resuming");
    assert_same(&weights, &full_weights, "supernet weights after resuming");
    std::fs::remove_dir_all(&dir).unwrap();
}
