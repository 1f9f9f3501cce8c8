//! Observers of a search: a progress bar, a trial log, or anything else that implements
//! [`Observer`].
//!
//! Observers run on the thread that drives the search, between trials, so they see every
//! event in order and need no locking. Any `FnMut(&TrialRecord<A>)` closure is an observer
//! that sees each finished trial.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::Trial;
use crate::record::{SearchResult, TrialRecord};

/// What the search knows when it starts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StartInfo {
    /// The trial budget, if one was set.
    pub planned: Option<usize>,
    /// The number of workers.
    pub workers: usize,
    /// The journal, if there is one.
    pub journal: Option<PathBuf>,
    /// Finished trials replayed from the journal (not estimated again).
    pub replayed: usize,
    /// Trials that were running when the search was killed: handed out again first.
    pub rerun: usize,
    /// The 1-based line of the journal that a kill cut in the middle of its write, if any.
    /// That partial line was dropped and its trial runs again.
    pub torn_line: Option<usize>,
}

/// Where the search stands after a trial.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Finished trials, replayed ones included.
    pub finished: usize,
    /// The trial budget, if one was set.
    pub planned: Option<usize>,
    /// Trials being estimated now.
    pub running: usize,
    /// The best objective so far.
    pub best: Option<f64>,
    /// Time since this run of the search started (replayed trials not included).
    pub elapsed: Duration,
}

/// Sees the events of a search. Every method does nothing by default.
pub trait Observer<A> {
    /// The search starts (after replaying the journal, if any).
    fn on_start(&mut self, _info: &StartInfo) {}

    /// `worker` begins estimating `trial`.
    fn on_trial_start(&mut self, _trial: &Trial<A>, _worker: usize) {}

    /// A trial finished and was told to the strategy (and written to the journal).
    fn on_trial_end(&mut self, _record: &TrialRecord<A>, _progress: &Progress) {}

    /// The search is over; `result` holds every finished trial (also when it stopped on an
    /// error).
    fn on_finish(&mut self, _result: &SearchResult<A>) {}
}

impl<A, F: FnMut(&TrialRecord<A>)> Observer<A> for F {
    fn on_trial_end(&mut self, record: &TrialRecord<A>, _progress: &Progress) {
        self(record)
    }
}

/// A progress bar on stderr with the best objective so far (drawn with `indicatif`). It draws
/// nothing when stderr is not a terminal, or when made [`ProgressObserver::quiet`].
#[derive(Debug)]
pub struct ProgressObserver {
    bar: indicatif::ProgressBar,
}

impl Default for ProgressObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressObserver {
    /// A progress bar on stderr (hidden when stderr is not a terminal).
    pub fn new() -> Self {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} trials, {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        Self { bar }
    }

    /// Draws nothing when `quiet` is true (e.g. from a `--quiet` flag).
    pub fn quiet(self, quiet: bool) -> Self {
        if quiet {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        self
    }

    /// True when the bar draws nothing (quiet, or stderr is not a terminal).
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }

    /// The number of finished trials shown.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }
}

impl<A> Observer<A> for ProgressObserver {
    fn on_start(&mut self, info: &StartInfo) {
        if let Some(n) = info.planned {
            self.bar.set_length(n as u64);
        }
        self.bar.set_position(info.replayed as u64);
        self.bar.set_message("no result yet");
    }

    fn on_trial_end(&mut self, _record: &TrialRecord<A>, progress: &Progress) {
        self.bar.set_position(progress.finished as u64);
        if let Some(best) = progress.best {
            self.bar.set_message(format!("best {best:.4}"));
        }
    }

    fn on_finish(&mut self, _result: &SearchResult<A>) {
        self.bar.finish();
    }
}

type ArchFormat<'w, A> = Box<dyn Fn(&A) -> String + 'w>;

/// Writes one line per finished trial (and a line when the search starts and ends) to stderr
/// or any writer. Architectures are printed with `Debug` unless a format is given
/// ([`LogObserver::with_arch_format`]). Write errors are ignored: logging never stops a search.
pub struct LogObserver<'w, A> {
    out: Box<dyn Write + 'w>,
    format: ArchFormat<'w, A>,
}

impl<A> std::fmt::Debug for LogObserver<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogObserver").finish_non_exhaustive()
    }
}

impl<A: std::fmt::Debug> LogObserver<'static, A> {
    /// Logs to stderr.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr())
    }
}

impl<'w, A: std::fmt::Debug> LogObserver<'w, A> {
    /// Logs to `out` (a file, a `Vec<u8>`, `&mut Vec<u8>`...).
    pub fn new(out: impl Write + 'w) -> Self {
        Self {
            out: Box::new(out),
            format: Box::new(|a| format!("{a:?}")),
        }
    }
}

impl<'w, A> LogObserver<'w, A> {
    /// Prints architectures with `format` (e.g. `|a| space.to_text(a)`).
    pub fn with_arch_format(mut self, format: impl Fn(&A) -> String + 'w) -> Self {
        self.format = Box::new(format);
        self
    }
}

impl<A> Observer<A> for LogObserver<'_, A> {
    fn on_start(&mut self, info: &StartInfo) {
        let budget = info
            .planned
            .map_or_else(|| "no trial budget".to_string(), |n| format!("{n} trials"));
        let _ = writeln!(
            self.out,
            "search: {budget}, {} worker{}",
            info.workers,
            if info.workers == 1 { "" } else { "s" }
        );
        if let Some(path) = &info.journal {
            let _ = writeln!(
                self.out,
                "journal {}: {} finished trials replayed, {} interrupted trials to run again",
                path.display(),
                info.replayed,
                info.rerun
            );
            if let Some(line) = info.torn_line {
                let _ = writeln!(
                    self.out,
                    "journal line {line} was cut off by the kill (a partial write): dropped, its trial runs again"
                );
            }
        } else if info.replayed > 0 || info.rerun > 0 {
            // A resumed study: its database is the journal.
            let _ = writeln!(
                self.out,
                "resumed: {} finished trials replayed, {} interrupted trials taken back",
                info.replayed, info.rerun
            );
        }
    }

    fn on_trial_end(&mut self, record: &TrialRecord<A>, progress: &Progress) {
        let of = progress
            .planned
            .map_or_else(String::new, |n| format!("/{n}"));
        let status = match &record.outcome {
            crate::Outcome::Complete(m) => format!("objective {:.4}", m.objective),
            crate::Outcome::Pruned(m) => format!("pruned at {:.4}", m.objective),
            crate::Outcome::Failed(why) => format!("failed: {why}"),
        };
        let best = progress
            .best
            .map_or_else(|| "-".to_string(), |b| format!("{b:.4}"));
        let _ = writeln!(
            self.out,
            "[{}{of}] trial {} (worker {}, {:.2}s): {status}; best {best}; {}",
            progress.finished,
            record.id,
            record.worker,
            record.seconds,
            (self.format)(&record.arch)
        );
    }

    fn on_finish(&mut self, result: &SearchResult<A>) {
        let stop = result
            .stop
            .map_or_else(|| "an error".to_string(), |s| s.to_string());
        let best = result
            .best()
            .and_then(TrialRecord::objective)
            .map_or_else(|| "none".to_string(), |b| format!("{b:.4}"));
        let _ = writeln!(
            self.out,
            "search over after {} trials (stopped by {stop}); best objective {best}",
            result.trials.len()
        );
        let _ = self.out.flush();
    }
}
