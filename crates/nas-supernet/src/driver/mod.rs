//! One epoch driver for every training loop: observers, stopping and checkpoints.
//!
//! A training method implements [`EpochSolver`]: it runs one epoch when asked and can save and
//! restore its whole state (weights, optimizer moments, architecture parameters, schedules,
//! counters). The [`Driver`] owns everything around the epochs, as argmin's executor does
//! around a solver's iterations: it calls [`EpochObserver`]s after each epoch (any of which may
//! stop the run), writes a checkpoint every N epochs and at the end (atomically: a killed
//! process leaves the previous checkpoint whole), and resumes from a checkpoint, checking that
//! it was written by the same kind of run with the same configuration.
//!
//! Training from scratch ([`crate::train::Trainer`]), every differentiable search
//! ([`crate::darts_search::SearchEpochs`]) and one-shot supernet training
//! ([`crate::oneshot::train::SupernetTraining`]) are solvers; ENAS
//! (`nas_strategy::enas`) drives the supernet trainer and its controller the same way.
//!
//! Same seed, same result: every solver in this crate draws its randomness from seeds derived
//! from its configuration and the step or epoch index, never from a generator that would have
//! to be saved, so an interrupted and resumed run ends with exactly the state of an
//! uninterrupted one on the CPU backend.
//!
//! # A custom solver
//!
//! ```
//! use nas_supernet::driver::{Checkpoint, CheckpointError, Driver, EpochSolver};
//!
//! /// Gradient descent on x², one step per epoch.
//! struct Descent { x: f64, epoch: usize, epochs: usize }
//!
//! impl EpochSolver for Descent {
//!     type Report = f64;
//!     type Error = CheckpointError;
//!     fn kind(&self) -> &'static str { "descent" }
//!     fn fingerprint(&self) -> serde_json::Value { serde_json::json!({ "epochs": self.epochs }) }
//!     fn total_epochs(&self) -> usize { self.epochs }
//!     fn epochs_done(&self) -> usize { self.epoch }
//!     fn epoch(&mut self) -> Result<f64, CheckpointError> {
//!         self.x -= 0.2 * self.x;
//!         self.epoch += 1;
//!         Ok(self.x * self.x)
//!     }
//!     fn save(&self, c: &mut Checkpoint) -> Result<(), CheckpointError> {
//!         c.put("x", &self.x)?;
//!         c.put("epoch", &self.epoch)
//!     }
//!     fn load(&mut self, c: &Checkpoint) -> Result<(), CheckpointError> {
//!         self.x = c.get("x")?;
//!         self.epoch = c.get("epoch")?;
//!         Ok(())
//!     }
//! }
//!
//! let dir = std::env::temp_dir().join(format!("descent-{}", std::process::id()));
//! let path = dir.join("checkpoint.bin");
//! let mut full = Descent { x: 1.0, epoch: 0, epochs: 10 };
//! Driver::new(&mut full).run()?;
//!
//! // Five epochs, "killed", then resumed from the checkpoint by a new solver.
//! let mut first = Descent { x: 1.0, epoch: 0, epochs: 10 };
//! Driver::new(&mut first).checkpoint(&path, 1).max_epochs(5).run()?;
//! let mut second = Descent { x: 1.0, epoch: 0, epochs: 10 };
//! let summary = Driver::new(&mut second).checkpoint(&path, 1).resume(true).run()?;
//! assert_eq!(summary.resumed_at, Some(5));
//! assert_eq!(second.x, full.x);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checkpoint;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointLock, CheckpointMeta, FORMAT_VERSION};

/// The checkpoint entry of the driver's history (solvers name theirs otherwise).
const HISTORY: &str = "driver.history";

/// A training method that advances one epoch at a time and can save and restore its state.
pub trait EpochSolver {
    /// What one epoch reports (losses, accuracies, derived architecture...). It is kept in the
    /// checkpoint, so a resumed run has the whole history.
    type Report: Serialize + DeserializeOwned + Clone;
    /// The solver's error.
    type Error: std::error::Error + 'static;

    /// The kind of run, stored in checkpoints (`"darts-search"`, `"supernet"`...): a
    /// checkpoint of another kind is refused.
    fn kind(&self) -> &'static str;

    /// Everything that must be equal for a checkpoint to be resumed by this solver (seed,
    /// epochs, hyperparameters, space), as JSON. Not the data: give the same data.
    fn fingerprint(&self) -> serde_json::Value;

    /// The epochs the whole run has.
    fn total_epochs(&self) -> usize;

    /// The epochs finished.
    fn epochs_done(&self) -> usize;

    /// Runs the next epoch. On error the driver writes no checkpoint (the solver may hold a
    /// half-finished epoch): the finished epochs are on disk up to the last checkpoint, so
    /// resume from it. In memory, [`crate::train::Trainer`],
    /// [`crate::oneshot::train::SupernetTraining`] and
    /// [`crate::oneshot::proxyless::ProxylessSearch`] go back to their state before the failing
    /// epoch; a differentiable search keeps the alphas and weights of its last good step.
    fn epoch(&mut self) -> Result<Self::Report, Self::Error>;

    /// Writes the whole state into `checkpoint`.
    fn save(&self, checkpoint: &mut Checkpoint) -> Result<(), Self::Error>;

    /// Restores the state from `checkpoint` (written by [`EpochSolver::save`] of a solver with
    /// the same fingerprint).
    fn load(&mut self, checkpoint: &Checkpoint) -> Result<(), Self::Error>;
}

/// What an observer tells the driver after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this epoch (the driver still writes its checkpoint).
    Stop,
}

/// Watches a run epoch by epoch.
pub trait EpochObserver<R> {
    /// Epoch `epoch` (0-based, counted over the whole run) finished with `report`; `history`
    /// holds every report so far, this one last. Returning [`Control::Stop`] ends the run.
    fn epoch_end(&mut self, epoch: usize, report: &R, history: &[R]) -> Control;

    /// The run resumed from a checkpoint holding `history`.
    fn resumed(&mut self, history: &[R]) {
        let _ = history;
    }
}

impl<R, F: FnMut(usize, &R)> EpochObserver<R> for F {
    fn epoch_end(&mut self, epoch: usize, report: &R, _history: &[R]) -> Control {
        self(epoch, report);
        Control::Continue
    }
}

/// An observer from a closure that also sees the history and may stop the run.
pub struct WithHistory<F>(pub F);

impl<R, F: FnMut(usize, &R, &[R]) -> Control> EpochObserver<R> for WithHistory<F> {
    fn epoch_end(&mut self, epoch: usize, report: &R, history: &[R]) -> Control {
        (self.0)(epoch, report, history)
    }
}

/// Stops a run when a closure says so (e.g. a pruner judged it unpromising).
pub struct StopWhen<F>(pub F);

impl<R, F: FnMut(usize, &R, &[R]) -> bool> EpochObserver<R> for StopWhen<F> {
    fn epoch_end(&mut self, epoch: usize, report: &R, history: &[R]) -> Control {
        if (self.0)(epoch, report, history) {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}

/// Errors of a driven run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError<E: std::error::Error + 'static> {
    /// The solver failed during an epoch, or while saving or restoring its state. The epochs
    /// finished before are in [`Driver::history`] and, up to the last checkpoint, on disk
    /// (checkpoint every epoch to lose none); resume from the checkpoint to continue.
    #[error(transparent)]
    Solver(E),
    /// A checkpoint could not be written, read or resumed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl<E: std::error::Error + From<CheckpointError> + 'static> DriverError<E> {
    /// The error as the solver's own type (a checkpoint error converted into it).
    pub fn flatten(self) -> E {
        match self {
            Self::Solver(e) => e,
            Self::Checkpoint(e) => e.into(),
        }
    }
}

/// How a driven run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The epoch the run resumed at, when it resumed from a checkpoint.
    pub resumed_at: Option<usize>,
    /// Epochs run by this call (not counting those restored from the checkpoint).
    pub epochs_run: usize,
    /// Epochs finished in all.
    pub epochs_done: usize,
    /// True when an observer or [`Driver::max_epochs`] stopped the run before its last epoch.
    pub stopped_early: bool,
    /// Checkpoints written by this call.
    pub checkpoints_written: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Refuse to overwrite an existing checkpoint.
    New,
    /// Resume an existing checkpoint, or start when there is none.
    Resume,
    /// Overwrite an existing checkpoint.
    Fresh,
}

/// Runs an [`EpochSolver`] to the end: observers, stopping, checkpoints, resume.
pub struct Driver<'s, S: EpochSolver> {
    solver: &'s mut S,
    observers: Vec<Box<dyn EpochObserver<S::Report> + 's>>,
    checkpoint: Option<(PathBuf, usize)>,
    start: Start,
    max_epochs: Option<usize>,
    history: Vec<S::Report>,
    progress: Option<indicatif::ProgressBar>,
}

impl<S: EpochSolver> std::fmt::Debug for Driver<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("kind", &self.solver.kind())
            .field("observers", &self.observers.len())
            .field("checkpoint", &self.checkpoint)
            .field("start", &self.start)
            .field("max_epochs", &self.max_epochs)
            .field("epochs_in_history", &self.history.len())
            .finish()
    }
}

impl<'s, S: EpochSolver> Driver<'s, S> {
    /// A driver for `solver`: no observers, no checkpoints.
    pub fn new(solver: &'s mut S) -> Self {
        Self {
            solver,
            observers: Vec::new(),
            checkpoint: None,
            start: Start::New,
            max_epochs: None,
            history: Vec::new(),
            progress: None,
        }
    }

    /// Shows a progress bar of the run's epochs on stderr, labelled `label` (drawn with
    /// `indicatif`; nothing is drawn when stderr is not a terminal, so logs and CI output stay
    /// clean).
    pub fn progress(mut self, label: impl Into<String>) -> Self {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} {elapsed_precise} [{wide_bar}] {pos}/{len} epochs (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.into());
        self.progress = Some(bar);
        self
    }

    /// Adds an observer (a closure `|epoch, &report|` works).
    pub fn observer(mut self, observer: impl EpochObserver<S::Report> + 's) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Writes a checkpoint to `path` every `every` epochs (0 is taken as 1) and when the run
    /// ends. By default a run refuses to start when `path` already holds a checkpoint: see
    /// [`Driver::resume`] and [`Driver::fresh`].
    pub fn checkpoint(mut self, path: impl AsRef<Path>, every: usize) -> Self {
        self.checkpoint = Some((path.as_ref().to_path_buf(), every.max(1)));
        self
    }

    /// With `true`, continues from the checkpoint when one exists (and starts from the
    /// beginning when none does).
    pub fn resume(mut self, resume: bool) -> Self {
        if resume {
            self.start = Start::Resume;
        }
        self
    }

    /// With `true`, overwrites an existing checkpoint instead of refusing to start.
    pub fn fresh(mut self, fresh: bool) -> Self {
        if fresh {
            self.start = Start::Fresh;
        }
        self
    }

    /// Stops after `n` epochs of this call (the checkpoint is written), as if interrupted.
    pub fn max_epochs(mut self, n: usize) -> Self {
        self.max_epochs = Some(n);
        self
    }

    /// Every epoch's report so far, restored ones included.
    pub fn history(&self) -> &[S::Report] {
        &self.history
    }

    /// Takes the history out.
    pub fn into_history(self) -> Vec<S::Report> {
        self.history
    }

    fn write(&self, path: &Path) -> Result<(), DriverError<S::Error>> {
        let mut c = Checkpoint::new(path);
        self.solver.save(&mut c).map_err(DriverError::Solver)?;
        c.put(HISTORY, &self.history)?;
        c.write(&CheckpointMeta {
            kind: self.solver.kind().to_string(),
            fingerprint: self.solver.fingerprint(),
            epochs_done: self.solver.epochs_done(),
        })?;
        Ok(())
    }

    fn restore(&mut self, path: &Path) -> Result<usize, DriverError<S::Error>> {
        let (meta, c) = Checkpoint::read(path)?;
        if meta.kind != self.solver.kind() {
            return Err(CheckpointError::WrongKind {
                path: path.to_path_buf(),
                expected: self.solver.kind().into(),
                found: meta.kind,
            }
            .into());
        }
        if let Some(difference) =
            checkpoint::first_difference(&meta.fingerprint, &self.solver.fingerprint(), "")
        {
            return Err(CheckpointError::ConfigMismatch {
                path: path.to_path_buf(),
                difference,
            }
            .into());
        }
        let history: Vec<S::Report> = c.get(HISTORY)?;
        self.solver.load(&c).map_err(DriverError::Solver)?;
        if self.solver.epochs_done() != meta.epochs_done || history.len() != meta.epochs_done {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "it records {} epochs, its state {} and its history {}",
                    meta.epochs_done,
                    self.solver.epochs_done(),
                    history.len()
                ),
            }
            .into());
        }
        self.history = history;
        for o in &mut self.observers {
            o.resumed(&self.history);
        }
        Ok(meta.epochs_done)
    }

    /// Runs the remaining epochs.
    pub fn run(&mut self) -> Result<RunSummary, DriverError<S::Error>> {
        let mut summary = RunSummary {
            resumed_at: None,
            epochs_run: 0,
            epochs_done: self.solver.epochs_done(),
            stopped_early: false,
            checkpoints_written: 0,
        };
        // Held until the run returns: no other run reads or writes this checkpoint meanwhile.
        let _lock = match &self.checkpoint {
            Some((path, _)) => Some(CheckpointLock::acquire(path)?),
            None => None,
        };
        if let Some((path, _)) = self.checkpoint.clone()
            && path.exists()
        {
            match self.start {
                Start::New => {
                    return Err(CheckpointError::Exists { path }.into());
                }
                Start::Resume => summary.resumed_at = Some(self.restore(&path)?),
                Start::Fresh => {}
            }
        }
        let total = self.solver.total_epochs();
        if let Some(bar) = &self.progress {
            bar.set_length(total as u64);
            bar.set_position(self.solver.epochs_done() as u64);
        }
        let mut last_written = None;
        while self.solver.epochs_done() < total {
            if self.max_epochs.is_some_and(|m| summary.epochs_run >= m) {
                summary.stopped_early = true;
                break;
            }
            let epoch = self.solver.epochs_done();
            let report = self.solver.epoch().map_err(DriverError::Solver)?;
            if let Some(bar) = &self.progress {
                bar.set_position(self.solver.epochs_done() as u64);
            }
            summary.epochs_run += 1;
            self.history.push(report);
            let mut stop = false;
            if let Some(report) = self.history.last() {
                for o in &mut self.observers {
                    stop |= o.epoch_end(epoch, report, &self.history) == Control::Stop;
                }
            }
            let done = self.solver.epochs_done();
            if let Some((path, every)) = self.checkpoint.clone()
                && (done >= total || done.is_multiple_of(every))
            {
                self.write(&path)?;
                last_written = Some(done);
                summary.checkpoints_written += 1;
            }
            if stop {
                summary.stopped_early = done < total;
                break;
            }
        }
        let done = self.solver.epochs_done();
        if summary.epochs_run > 0
            && last_written != Some(done)
            && let Some((path, _)) = self.checkpoint.clone()
        {
            self.write(&path)?;
            summary.checkpoints_written += 1;
        }
        summary.epochs_done = self.solver.epochs_done();
        if let Some(bar) = &self.progress {
            bar.finish();
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom at {0}")]
    struct Boom(usize);

    impl From<CheckpointError> for Boom {
        fn from(_: CheckpointError) -> Self {
            Boom(usize::MAX)
        }
    }

    struct Count {
        value: u64,
        epoch: usize,
        epochs: usize,
        fail_at: Option<usize>,
    }

    impl EpochSolver for Count {
        type Report = u64;
        type Error = Boom;
        fn kind(&self) -> &'static str {
            "count"
        }
        fn fingerprint(&self) -> serde_json::Value {
            serde_json::json!({ "epochs": self.epochs })
        }
        fn total_epochs(&self) -> usize {
            self.epochs
        }
        fn epochs_done(&self) -> usize {
            self.epoch
        }
        fn epoch(&mut self) -> Result<u64, Boom> {
            if self.fail_at == Some(self.epoch) {
                return Err(Boom(self.epoch));
            }
            self.value = self.value.wrapping_mul(6364136223846793005).wrapping_add(1);
            self.epoch += 1;
            Ok(self.value)
        }
        fn save(&self, c: &mut Checkpoint) -> Result<(), Boom> {
            c.put("value", &self.value)?;
            c.put("epoch", &self.epoch)?;
            Ok(())
        }
        fn load(&mut self, c: &Checkpoint) -> Result<(), Boom> {
            self.value = c.get("value")?;
            self.epoch = c.get("epoch")?;
            Ok(())
        }
    }

    fn count(epochs: usize) -> Count {
        Count {
            value: 7,
            epoch: 0,
            epochs,
            fail_at: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nas-driver-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("ckpt.bin")
    }

    #[test]
    fn resume_continues_exactly_and_keeps_history() {
        let mut full = count(9);
        let mut d = Driver::new(&mut full);
        let s = d.run().unwrap();
        assert_eq!(s.epochs_run, 9);
        let full_history = d.into_history();

        let path = temp("resume");
        let mut a = count(9);
        let s = Driver::new(&mut a)
            .checkpoint(&path, 2)
            .max_epochs(5)
            .run()
            .unwrap();
        assert!(s.stopped_early);
        assert_eq!(s.checkpoints_written, 3, "epochs 2, 4 and the stop at 5");
        let mut b = count(9);
        let mut seen = Vec::new();
        let mut d = Driver::new(&mut b)
            .checkpoint(&path, 2)
            .resume(true)
            .observer(|e: usize, _: &u64| seen.push(e));
        let s = d.run().unwrap();
        assert_eq!(s.resumed_at, Some(5));
        assert_eq!(s.epochs_run, 4);
        assert_eq!(d.history(), &full_history[..]);
        drop(d);
        assert_eq!(seen, vec![5, 6, 7, 8]);
        assert_eq!(b.value, full.value);

        // A finished run resumes to nothing.
        let mut c = count(9);
        let s = Driver::new(&mut c)
            .checkpoint(&path, 2)
            .resume(true)
            .run()
            .unwrap();
        assert_eq!((s.resumed_at, s.epochs_run), (Some(9), 0));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn refuses_to_overwrite_or_mix_runs() {
        let path = temp("refuse");
        Driver::new(&mut count(4))
            .checkpoint(&path, 1)
            .run()
            .unwrap();
        let e = Driver::new(&mut count(4))
            .checkpoint(&path, 1)
            .run()
            .unwrap_err();
        assert!(matches!(
            e,
            DriverError::Checkpoint(CheckpointError::Exists { .. })
        ));
        assert!(e.to_string().contains("--resume"), "{e}");
        let e = Driver::new(&mut count(5))
            .checkpoint(&path, 1)
            .resume(true)
            .run()
            .unwrap_err();
        assert!(
            e.to_string().contains("epochs: 4 ≠ 5"),
            "names the difference: {e}"
        );
        let s = Driver::new(&mut count(5))
            .checkpoint(&path, 1)
            .fresh(true)
            .run()
            .unwrap();
        assert_eq!((s.resumed_at, s.epochs_run), (None, 5));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn two_runs_never_share_a_checkpoint() {
        let path = temp("busy");
        // Another run holds the path (a lock taken here stands for another process's).
        let held = CheckpointLock::acquire(&path).unwrap();
        let e = Driver::new(&mut count(3))
            .checkpoint(&path, 1)
            .run()
            .unwrap_err();
        assert!(
            matches!(e, DriverError::Checkpoint(CheckpointError::Busy { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("another checkpoint path"), "{e}");
        assert!(!path.exists(), "the refused run wrote nothing");
        drop(held);
        // The lock goes with its holder; the driver's goes when its run returns.
        let s = Driver::new(&mut count(3))
            .checkpoint(&path, 1)
            .run()
            .unwrap();
        assert_eq!(s.epochs_run, 3);
        let again = CheckpointLock::acquire(&path).unwrap();
        drop(again);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_failing_epoch_keeps_the_finished_work() {
        let path = temp("fail");
        let mut c = count(6);
        c.fail_at = Some(3);
        let mut d = Driver::new(&mut c).checkpoint(&path, 1);
        let e = d.run().unwrap_err();
        assert!(matches!(e, DriverError::Solver(Boom(3))));
        assert_eq!(d.history().len(), 3);
        drop(d);
        let (meta, _) = Checkpoint::read(&path).unwrap();
        assert_eq!(meta.epochs_done, 3);
        c.fail_at = None;
        let mut d = Driver::new(&mut c).checkpoint(&path, 1).resume(true);
        assert_eq!(d.run().unwrap().resumed_at, Some(3));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn observers_stop_the_run() {
        let mut c = count(10);
        let s = Driver::new(&mut c)
            .observer(StopWhen(|e: usize, _: &u64, _: &[u64]| e == 2))
            .run()
            .unwrap();
        assert!(s.stopped_early);
        assert_eq!(s.epochs_done, 3);
    }
}
