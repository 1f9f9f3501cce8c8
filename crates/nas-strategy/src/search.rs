//! The search loop: ask, estimate, tell, record.
//!
//! [`Search`] pairs a space and a [`Strategy`] with one estimator ([`Search::run`], in the
//! calling thread) or one estimator per worker thread ([`Search::run_parallel`]), stops on a
//! trial budget, a wall-time budget or a target objective, reports to [`Observer`]s, and
//! appends every finished trial to a JSON-lines journal from which a killed search resumes
//! without estimating a finished trial again. [`run`] and [`run_with_journal`] are its
//! shortest forms.
//!
//! ```
//! use std::time::Duration;
//! use nas_estimate::{Budget, EstimateError, Metrics};
//! use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
//! use nas_strategy::{RegularizedEvolution, RegularizedEvolutionConfig, Search};
//! use nas_strategy::search::StopReason;
//!
//! let space = Nb201Space::default();
//! let mut rea = RegularizedEvolution::new(RegularizedEvolutionConfig::nb201(), 0)?;
//! // An estimator per worker (each could own a device); here: the number of 3x3 convolutions.
//! let estimator = |_worker: usize| {
//!     |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
//!         let convs = a.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count();
//!         Ok(Metrics::new(convs as f64).with("params", a.edges.len() as f64))
//!     }
//! };
//! let result = Search::new(&space, &mut rea)
//!     .trials(5_000)
//!     .wall_time(Duration::from_secs(60))
//!     .target(6.0)
//!     .run_parallel(2, estimator)?;
//! assert_eq!(result.stop, Some(StopReason::Target));
//! assert_eq!(result.best().unwrap().objective(), Some(6.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod journal;
pub(crate) mod pool;

pub use crate::record::{SearchResult, StopReason, TrialRecord};
pub use journal::JournalSync;
pub use journal::parse_records as parse_journal;
pub use journal::read_records as read_journal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nas_estimate::Estimator;
use nas_space::SearchSpace;

use crate::observe::{Observer, Progress, StartInfo};
use crate::pruner::Pruner;
use crate::{Strategy, StrategyError, Trial, TrialId};
use pool::{Done, Event, Pool};

/// A search that stopped before its budget: the error and every trial finished before it.
#[derive(Debug)]
pub struct Interrupted<A> {
    /// Why the search stopped.
    pub error: StrategyError,
    /// The trials finished before it stopped.
    pub partial: SearchResult<A>,
}

impl<A> std::fmt::Display for Interrupted<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "search stopped after {} trials: {}",
            self.partial.trials.len(),
            self.error
        )
    }
}

impl<A: std::fmt::Debug> std::error::Error for Interrupted<A> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What a search returns: its result, or the error that stopped it with the trials finished
/// before.
pub type SearchOutcome<A> = Result<SearchResult<A>, Box<Interrupted<A>>>;

fn interrupted<A>(error: StrategyError, partial: SearchResult<A>) -> Box<Interrupted<A>> {
    Box::new(Interrupted { error, partial })
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StrategyError {
    StrategyError::InvalidConfig {
        strategy: "search loop",
        field,
        reason: reason.into(),
    }
}

/// A search, configured step by step and run by [`Search::run`] (one worker, the caller's
/// thread) or [`Search::run_parallel`] (worker threads).
///
/// Stopping rules (at least one is required): [`Search::trials`], [`Search::wall_time`],
/// [`Search::target`]; the search stops asking for new trials as soon as one applies, and
/// always finishes (and records) the trials already handed out.
///
/// An estimator's error, non-finite objective or panic fails that trial
/// ([`crate::Outcome::Failed`]) and the search goes on. A strategy error (an exhausted space,
/// say) or a journal that cannot be written stops asking; the running trials finish, and the
/// error comes back in [`Interrupted`] with every finished trial.
///
/// Trials are told to the strategy in the order they finish. With one worker and a
/// deterministic estimator a search is reproducible: the same seed gives the same trials, and
/// a resumed search the same trials as an uninterrupted one. With several workers, call
/// [`Search::synchronous`] to keep that guarantee.
pub struct Search<'a, S: SearchSpace, St: ?Sized> {
    space: &'a S,
    strategy: &'a mut St,
    trials: Option<usize>,
    wall_time: Option<Duration>,
    target: Option<f64>,
    journal: Option<PathBuf>,
    journal_sync: JournalSync,
    seed: Option<u64>,
    observers: Vec<Box<dyn Observer<S::Arch> + 'a>>,
    pruner: Option<pool::SharedPruner>,
    synchronous: bool,
}

impl<'a, S: SearchSpace, St: Strategy<S> + ?Sized> Search<'a, S, St> {
    /// A search over `space` driven by `strategy`, with no stopping rule yet.
    pub fn new(space: &'a S, strategy: &'a mut St) -> Self {
        Self {
            space,
            strategy,
            trials: None,
            wall_time: None,
            target: None,
            journal: None,
            journal_sync: JournalSync::default(),
            seed: None,
            observers: Vec::new(),
            pruner: None,
            synchronous: false,
        }
    }

    /// Runs in rounds: one trial per worker is handed out, and the round is told to the
    /// strategy (and journaled) in trial order once all of it has finished. With a
    /// deterministic estimator the search is then reproducible whatever the number of workers
    /// and their speed (the same trials, in the same order, as with one worker asking in
    /// batches of that size); a worker that finishes early waits for its round.
    pub fn synchronous(mut self) -> Self {
        self.synchronous = true;
        self
    }

    /// Stops unpromising trials early with `pruner` (e.g. [`crate::MedianStopping`]): each
    /// estimate reports its objective after every step ([`Estimator::estimate_reporting`]; the
    /// train-from-scratch estimator reports every epoch's validation accuracy), and a trial the
    /// pruner stops ends as [`crate::Outcome::Pruned`] with its metrics so far. The workers
    /// share the pruner. On resume, the journal's complete trials are fed to it again (their
    /// `valid_accuracy` curve, else their objective as a one-step curve).
    pub fn pruner(mut self, pruner: impl Pruner + Send + 'static) -> Self {
        self.pruner = Some(std::sync::Arc::new(std::sync::Mutex::new(pruner)));
        self
    }

    /// Stops after `n` trials in total (replayed trials of a resumed search included).
    pub fn trials(mut self, n: usize) -> Self {
        self.trials = Some(n);
        self
    }

    /// Stops handing out trials once `budget` has passed since this run started (time spent
    /// before a resume does not count).
    pub fn wall_time(mut self, budget: Duration) -> Self {
        self.wall_time = Some(budget);
        self
    }

    /// Stops handing out trials once a trial reaches an objective of `value` or more.
    pub fn target(mut self, value: f64) -> Self {
        self.target = Some(value);
        self
    }

    /// Appends every finished trial to the JSON-lines journal at `path` (one [`TrialRecord`]
    /// per line, written as the trial ends), and resumes from it if it already holds trials.
    ///
    /// To resume, build the strategy afresh with the same seed and configuration: it is
    /// replayed through the journal (asked and told the recorded outcomes, nothing is
    /// estimated again) and the search goes on from there. Trials that were running when the
    /// search was killed are handed out again first, so no finished trial is repeated and
    /// none is lost, with any number of workers. A last line cut off by the kill (a partial
    /// write) is dropped and its trial runs again ([`StartInfo::torn_line`] says so). A
    /// journal that does not match the strategy's proposals (another seed, configuration or
    /// strategy) is [`StrategyError::JournalMismatch`] and the file is left untouched; a
    /// corrupt line elsewhere is [`StrategyError::Journal`] naming it, and so is a file that
    /// is not a journal (nothing in it is cut off or overwritten).
    ///
    /// The search holds the file's exclusive lock from before it reads the journal until it
    /// ends: a second search on the same journal (in another process, or in this one) is
    /// [`StrategyError::Journal`] at once, not two searches appending to one file. Each
    /// record is synced to disk as it is written ([`Search::journal_sync`] to batch).
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// When the journal is forced to disk (default: after every record, so a power loss
    /// loses no finished trial). [`JournalSync::Every`]`(n)` batches `n` records per sync, for
    /// trials that take milliseconds; a killed process loses nothing either way.
    pub fn journal_sync(mut self, sync: JournalSync) -> Self {
        self.journal_sync = sync;
        self
    }

    /// Records the search's `seed` (the one its strategy was built with) in every journal
    /// line, so a resume with another seed is refused with a clear error.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Adds an observer (a [`crate::observe::ProgressObserver`], a
    /// [`crate::observe::LogObserver`], or a closure that sees each finished trial).
    pub fn observer(mut self, observer: impl Observer<S::Arch> + 'a) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Runs the search with one worker, `estimator`, in the calling thread.
    pub fn run<E>(self, estimator: &mut E) -> SearchOutcome<S::Arch>
    where
        E: Estimator<S::Arch> + ?Sized,
    {
        let mut driver = self.prepare(1)?;
        let pruner = driver.search.pruner.clone();
        driver.drive(&mut pool::Inline::new(estimator, pruner))
    }

    /// Runs the search with `workers` threads; worker `i` builds its own estimator with
    /// `estimator(i)` (in its own thread, so the estimator can own a device and need not be
    /// `Send`). The strategy stays in the calling thread and is asked whenever a worker is
    /// free ([`Strategy::ask_batch`] for several at once). The workers build their
    /// estimators before the first trial is asked: a panic in `estimator` stops the search
    /// there, as [`Interrupted`] naming the worker and the panic's message, with the trials
    /// replayed from a journal (a panic inside an estimate only fails that trial).
    pub fn run_parallel<E, F>(self, workers: usize, estimator: F) -> SearchOutcome<S::Arch>
    where
        E: Estimator<S::Arch>,
        F: Fn(usize) -> E + Sync,
    {
        if workers == 0 {
            return Err(interrupted(
                invalid("workers", "must be at least 1"),
                SearchResult::default(),
            ));
        }
        let mut driver = self.prepare(workers)?;
        std::thread::scope(|scope| {
            let pruner = driver.search.pruner.clone();
            let mut pool = match pool::Threaded::spawn(scope, workers, &estimator, pruner) {
                Ok(p) => p,
                Err(pool::SpawnError::Thread(e)) => {
                    let error = invalid("workers", format!("cannot start a worker thread: {e}"));
                    return Err(interrupted(error, std::mem::take(&mut driver.result)));
                }
                Err(pool::SpawnError::Factory { worker, message }) => {
                    let error =
                        StrategyError::Estimate(nas_estimate::EstimateError::Failed(format!(
                            "worker {worker} could not build its estimator (the factory \
                             panicked: {message})"
                        )));
                    return Err(interrupted(error, std::mem::take(&mut driver.result)));
                }
            };
            driver.drive(&mut pool)
        })
    }

    /// Runs the search as the coordinator of a study shared through PostgreSQL
    /// ([`crate::study`]): the strategy stays here, trials are inserted for workers in other
    /// processes or on other machines ([`crate::study::Worker::run`]) and told in the order
    /// they finish. A study that already holds trials is resumed: the strategy (built afresh
    /// with the study's seed and configuration) is replayed through the recorded tells, and
    /// the trials still waiting or running are taken back, so a killed coordinator loses
    /// nothing. The observers, stopping rules and result are those of [`Search::run`]; at
    /// most [`crate::study::CoordinatorOptions::in_flight`] trials wait or run at once.
    ///
    /// A study is its own journal and its workers estimate in other processes, so a
    /// [`Search::journal`] or a [`Search::pruner`] is refused; the seed, if set, must be the
    /// study's. When the search stops on a rule, the study is marked done and idle workers
    /// leave; when it stops on an error, the study stays open for a restart.
    #[cfg(feature = "postgres")]
    pub fn run_study(mut self, coordinator: crate::study::Coordinator) -> SearchOutcome<S::Arch> {
        let fail = |e| interrupted(e, SearchResult::default());
        if self.journal.is_some() {
            return Err(fail(invalid(
                "journal",
                "cannot be used with a study: the study's database is its journal",
            )));
        }
        if self.pruner.is_some() {
            return Err(fail(invalid(
                "pruner",
                "is not supported with a study yet: its workers estimate in other processes",
            )));
        }
        match self.seed {
            Some(s) if s != coordinator.seed() => {
                return Err(fail(invalid(
                    "seed",
                    format!(
                        "is {s}, but study `{}` has seed {}",
                        coordinator.study(),
                        coordinator.seed()
                    ),
                )));
            }
            _ => self.seed = Some(coordinator.seed()),
        }
        let mut pool = crate::study::StudyPool::new(coordinator).map_err(|e| fail(e.into()))?;
        let mut driver = self.prepare(pool.in_flight())?;
        let records = match pool.replay_records() {
            Ok(r) => r,
            Err(e) => return Err(fail(e.into())),
        };
        driver.rerun = match driver.replay(&records) {
            Ok(r) => r,
            Err(e) => return Err(interrupted(e, driver.result)),
        };
        driver.info.replayed = driver.result.trials.len();
        driver.info.rerun = driver.rerun.len();
        let outcome = driver.drive(&mut pool);
        match outcome {
            Ok(result) => match pool.close(true) {
                Ok(()) => Ok(result),
                Err(e) => Err(interrupted(e.into(), result)),
            },
            Err(interrupted) => Err(interrupted),
        }
    }

    /// Checks the settings, replays the journal and opens it for appending.
    fn prepare(self, workers: usize) -> Result<Driver<'a, S, St>, Box<Interrupted<S::Arch>>> {
        let fail = |e| interrupted(e, SearchResult::default());
        if self.trials.is_none() && self.wall_time.is_none() && self.target.is_none() {
            return Err(fail(invalid(
                "stopping rule",
                "is missing: set at least one of trials, wall_time or target",
            )));
        }
        if let Some(t) = self.target
            && !t.is_finite()
        {
            return Err(fail(invalid(
                "target",
                format!("must be a finite number, got {t}"),
            )));
        }
        if self.journal_sync == JournalSync::Every(0) {
            return Err(fail(invalid(
                "journal_sync",
                "Every(n) needs n of at least 1 (EachRecord is Every(1))",
            )));
        }
        let journal = self.journal.clone();
        let sync = self.journal_sync;
        let mut driver = Driver {
            info: StartInfo {
                planned: self.trials,
                workers,
                journal: journal.clone(),
                replayed: 0,
                rerun: 0,
                torn_line: None,
            },
            search: self,
            writer: None,
            result: SearchResult::default(),
            asked: 0,
            best: None,
            rerun: Vec::new(),
        };
        if let Some(path) = &journal {
            // Locked before it is read: no other search appends to it from here on.
            let locked = journal::Locked::open(path).map_err(fail)?;
            let contents = journal::read(path).map_err(fail)?;
            driver.info.torn_line = contents.torn_line;
            driver.rerun = match driver.replay(&contents.records) {
                Ok(r) => r,
                Err(e) => return Err(interrupted(e, driver.result)),
            };
            match journal::Writer::open(locked, &contents, sync) {
                Ok(w) => driver.writer = Some(w),
                Err(e) => return Err(interrupted(e, driver.result)),
            }
            driver.info.replayed = driver.result.trials.len();
            driver.info.rerun = driver.rerun.len();
        }
        Ok(driver)
    }
}

/// The state of a running search.
struct Driver<'a, S: SearchSpace, St: ?Sized> {
    /// The space, the strategy and the settings.
    search: Search<'a, S, St>,
    writer: Option<journal::Writer>,
    result: SearchResult<S::Arch>,
    /// Trials handed out by the strategy so far (replayed and re-run ones included).
    asked: u64,
    best: Option<f64>,
    /// Trials handed out before a kill and never finished: run first.
    rerun: Vec<Trial<S::Arch>>,
    info: StartInfo,
}

impl<S: SearchSpace, St: Strategy<S> + ?Sized> Driver<'_, S, St> {
    /// Replays the journal's records through the strategy: asks as many trials as the
    /// original search had handed out before each tell, checks that the strategy proposes
    /// what the journal holds, and tells the recorded outcomes. Returns the trials handed out
    /// and never finished (running when the search was killed).
    fn replay(
        &mut self,
        records: &[(usize, TrialRecord<S::Arch>)],
    ) -> Result<Vec<Trial<S::Arch>>, StrategyError> {
        let mut pending: Vec<Trial<S::Arch>> = Vec::new();
        for (line, record) in records {
            let mismatch = |expected: String, proposed: String| StrategyError::JournalMismatch {
                line: *line,
                expected,
                proposed,
            };
            if let (Some(ours), Some(theirs)) = (self.search.seed, record.seed)
                && ours != theirs
            {
                return Err(mismatch(
                    format!("seed {theirs}"),
                    format!("a search with seed {ours}"),
                ));
            }
            let missing = record.issued.saturating_sub(self.asked);
            if missing > 0 {
                let batch = self
                    .search
                    .strategy
                    .ask_batch(self.search.space, missing as usize)?;
                self.asked += batch.len() as u64;
                pending.extend(batch);
            }
            // Journals written before `issued` existed: one ask per tell.
            if record.issued == 0 && !pending.iter().any(|t| t.id == record.id) {
                pending.push(self.search.strategy.ask(self.search.space)?);
                self.asked += 1;
            }
            let Some(at) = pending.iter().position(|t| t.id == record.id) else {
                return Err(mismatch(
                    format!("trial {} ({:?})", record.id, record.arch),
                    format!("no trial {} among those handed out", record.id),
                ));
            };
            let trial = pending.remove(at);
            if trial.arch != record.arch {
                return Err(mismatch(
                    format!("{:?}", record.arch),
                    format!("{:?}", trial.arch),
                ));
            }
            if trial.budget != record.budget {
                return Err(mismatch(
                    format!("budget {:?}", record.budget),
                    format!("budget {:?}", trial.budget),
                ));
            }
            self.search
                .strategy
                .tell(trial.id, record.outcome.clone())?;
            if let Some(p) = &self.search.pruner {
                let mut p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let crate::Outcome::Complete(m) | crate::Outcome::Pruned(m) = &record.outcome {
                    let curve = m
                        .curves
                        .get("valid_accuracy")
                        .cloned()
                        .unwrap_or_else(|| vec![m.objective]);
                    // Every value is recorded (the trial completed, or was stopped after
                    // its last value), whatever the pruner would decide now.
                    for (step, &v) in curve.iter().enumerate() {
                        let _ = p.should_prune(record.id, step, v);
                    }
                }
                p.finish(record.id, &record.outcome);
            }
            self.note_best(record);
            self.result.trials.push(record.clone());
        }
        Ok(pending)
    }

    fn note_best(&mut self, record: &TrialRecord<S::Arch>) {
        if let Some(v) = record.objective()
            && self.best.is_none_or(|b| v > b)
        {
            self.best = Some(v);
        }
    }

    /// The stopping rule that applies now, if any.
    fn should_stop(&self, start: Instant) -> Option<StopReason> {
        if let (Some(target), Some(best)) = (self.search.target, self.best)
            && best >= target
        {
            return Some(StopReason::Target);
        }
        if self.search.trials.is_some_and(|n| self.asked >= n as u64) {
            return Some(StopReason::Trials);
        }
        if self.search.wall_time.is_some_and(|d| start.elapsed() >= d) {
            return Some(StopReason::WallTime);
        }
        None
    }

    /// The loop: keep every worker busy until a stopping rule applies, then let the running
    /// trials finish.
    fn drive(&mut self, pool: &mut impl Pool<S::Arch>) -> SearchOutcome<S::Arch> {
        let start = Instant::now();
        for o in &mut self.search.observers {
            o.on_start(&self.info);
        }
        let mut running: BTreeMap<TrialId, Trial<S::Arch>> = BTreeMap::new();
        let mut in_flight = 0usize;
        // Synchronous mode: the finished trials of the current round.
        let mut round = Vec::new();
        let mut stop = None;
        let mut error = None;
        for trial in std::mem::take(&mut self.rerun) {
            let id = trial.id;
            running.insert(id, trial.clone());
            if let Err(e) = pool.submit(trial) {
                running.remove(&id);
                error.get_or_insert(e);
                break;
            }
            in_flight += 1;
        }
        loop {
            if stop.is_none() && error.is_none() {
                stop = self.should_stop(start);
                let free = if self.search.synchronous && in_flight > 0 {
                    0
                } else {
                    pool.workers().saturating_sub(in_flight)
                };
                let left = self
                    .search
                    .trials
                    .map_or(usize::MAX, |n| n.saturating_sub(self.asked as usize));
                let want = free.min(left);
                if stop.is_none() && want > 0 {
                    match self.search.strategy.ask_batch(self.search.space, want) {
                        Ok(batch) if batch.is_empty() && in_flight == 0 => {
                            stop = Some(StopReason::NoProposal);
                        }
                        Ok(batch) => {
                            for trial in batch {
                                self.asked += 1;
                                if error.is_some() {
                                    // Asked but never handed out: a resumed search asks
                                    // for it again.
                                    continue;
                                }
                                let id = trial.id;
                                running.insert(id, trial.clone());
                                match pool.submit(trial) {
                                    Ok(()) => in_flight += 1,
                                    Err(e) => {
                                        running.remove(&id);
                                        error = Some(e);
                                    }
                                }
                            }
                        }
                        Err(e) => error = Some(e),
                    }
                }
            }
            if in_flight == 0 {
                break;
            }
            match pool.next() {
                Err(e) => {
                    // The pool broke (a study's database out of reach): its running trials
                    // are not lost (a study keeps them), but this run cannot wait for them.
                    error.get_or_insert(e);
                    break;
                }
                Ok(None) => {
                    error.get_or_insert(StrategyError::Estimate(
                        nas_estimate::EstimateError::Failed(
                            "every worker stopped before the running trials finished".into(),
                        ),
                    ));
                    break;
                }
                Ok(Some(Event::Started { id, worker })) => {
                    if let Some(trial) = running.get(&id) {
                        for o in &mut self.search.observers {
                            o.on_trial_start(trial, worker);
                        }
                    }
                }
                Ok(Some(Event::Finished(done))) => {
                    running.remove(&done.trial.id);
                    in_flight -= 1;
                    round.push(done);
                    if !self.search.synchronous || in_flight == 0 {
                        round.sort_by_key(|d| d.trial.id);
                        for done in std::mem::take(&mut round) {
                            if let Err(e) = self.finish(done, in_flight, start, pool) {
                                error.get_or_insert(e);
                            }
                        }
                    }
                }
            }
        }
        if let Some(writer) = &mut self.writer
            && let Err(e) = writer.sync()
        {
            error.get_or_insert(e);
        }
        let mut result = std::mem::take(&mut self.result);
        result.stop = if error.is_none() { stop } else { None };
        for o in &mut self.search.observers {
            o.on_finish(&result);
        }
        match error {
            Some(e) => Err(interrupted(e, result)),
            None => Ok(result),
        }
    }

    /// Tells a finished trial to the strategy, journals and records it. A trial whose tell
    /// fails is not recorded (a resume would fail on it again).
    fn finish(
        &mut self,
        done: Done<S::Arch>,
        running: usize,
        start: Instant,
        pool: &mut impl Pool<S::Arch>,
    ) -> Result<(), StrategyError> {
        let Done {
            trial,
            worker,
            outcome,
            seconds,
            started_at,
            ended_at,
        } = done;
        self.search.strategy.tell(trial.id, outcome.clone())?;
        let record = TrialRecord {
            id: trial.id,
            arch: trial.arch,
            budget: trial.budget,
            outcome,
            seconds,
            worker,
            started_at,
            ended_at,
            seed: self.search.seed,
            issued: self.asked,
        };
        let written = match &mut self.writer {
            Some(w) => w.append(&record),
            None => Ok(()),
        };
        if written.is_err() {
            // The journal stays a clean prefix of the search; what it holds is forced to disk
            // before it is closed (a batched sync would otherwise leave records unsynced).
            if let Some(w) = &mut self.writer {
                let _ = w.sync();
            }
            self.writer = None;
        }
        // A study records the order of its tells (a restarted coordinator replays it).
        let written = written.and(pool.told(&record));
        self.note_best(&record);
        self.result.trials.push(record);
        let progress = Progress {
            finished: self.result.trials.len(),
            planned: self.search.trials,
            running,
            best: self.best,
            elapsed: start.elapsed(),
        };
        let record = self.result.trials.last().expect("just pushed");
        for o in &mut self.search.observers {
            o.on_trial_end(record, &progress);
        }
        written
    }
}

/// Runs `trials` sequential trials: each is asked from `strategy`, estimated by `estimator`
/// and told back; `observe` sees every record as it is made (progress display, logging).
/// The shortest form of [`Search`]: `Search::new(space, strategy).trials(trials)
/// .observer(observe).run(estimator)`.
///
/// An estimator error fails that trial ([`crate::Outcome::Failed`]) and the search goes on; a
/// strategy error (e.g. an exhausted space) ends the search and returns it, together with the
/// trials finished so far so no work is lost ([`Interrupted`]).
pub fn run<S: SearchSpace, St: Strategy<S> + ?Sized, E: Estimator<S::Arch> + ?Sized>(
    space: &S,
    strategy: &mut St,
    estimator: &mut E,
    trials: usize,
    mut observe: impl FnMut(&TrialRecord<S::Arch>),
) -> SearchOutcome<S::Arch> {
    Search::new(space, strategy)
        .trials(trials)
        .observer(&mut observe)
        .run(estimator)
}

/// Like [`run`], and every finished trial is appended to the JSON-lines journal at `path` as
/// it ends, so a killed search loses nothing; if the journal already holds trials, the search
/// resumes from it (see [`Search::journal`]) until `trials` trials in total.
pub fn run_with_journal<
    S: SearchSpace,
    St: Strategy<S> + ?Sized,
    E: Estimator<S::Arch> + ?Sized,
>(
    space: &S,
    strategy: &mut St,
    estimator: &mut E,
    trials: usize,
    path: &Path,
    mut observe: impl FnMut(&TrialRecord<S::Arch>),
) -> SearchOutcome<S::Arch> {
    Search::new(space, strategy)
        .trials(trials)
        .journal(path)
        .observer(&mut observe)
        .run(estimator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, RandomSearch};
    use nas_estimate::{Budget, EstimateError, Metrics};
    use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};

    #[test]
    fn journals_parse_from_bytes_as_from_files() {
        let arch: Nb201Arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|"
            .parse()
            .unwrap();
        let record = TrialRecord {
            id: 4,
            arch,
            budget: Budget::default(),
            outcome: Outcome::Complete(Metrics::new(0.5)),
            seconds: 1.0,
            worker: 0,
            started_at: 0.0,
            ended_at: 1.0,
            seed: Some(3),
            issued: 5,
        };
        let line = serde_json::to_string(&record).unwrap();
        // Two records and a torn third: the torn one is left out, as when reading a file.
        let bytes = format!("{line}\n{line}\n{}", &line[..20]);
        let source = std::path::Path::new("archive/trials.jsonl");
        let records = parse_journal::<Nb201Arch>(bytes.as_bytes(), source).unwrap();
        assert_eq!(records, vec![record.clone(), record]);
        // Something else is refused, naming the source and the line.
        let e = parse_journal::<Nb201Arch>(b"hello\n", source).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("archive/trials.jsonl") && msg.contains("not a search journal"),
            "{msg}"
        );
        assert!(parse_journal::<Nb201Arch>(b"", source).unwrap().is_empty());
    }

    #[test]
    fn failures_are_recorded_and_best_so_far_is_monotone() {
        let space = Nb201Space::default();
        let mut rs = RandomSearch::new(0);
        let mut est = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
            if a.edges[0] == Nb201Op::None {
                Err(EstimateError::Failed("diverged".into()))
            } else {
                Ok(Metrics::new(a.edges.iter().map(|o| o.index() as f64).sum()))
            }
        };
        let mut seen = 0;
        let r = run(&space, &mut rs, &mut est, 60, |_| seen += 1).unwrap();
        assert_eq!((r.trials.len(), seen), (60, 60));
        assert!(
            r.trials
                .iter()
                .any(|t| matches!(t.outcome, Outcome::Failed(_)))
        );
        let curve = r.best_so_far();
        let finite: Vec<f64> = curve.iter().copied().filter(|v| !v.is_nan()).collect();
        assert!(finite.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            r.best().unwrap().outcome.complete().unwrap().objective,
            *finite.last().unwrap()
        );
    }

    #[test]
    fn a_resumed_search_ends_as_an_uninterrupted_one() {
        use crate::{RegularizedEvolution, RegularizedEvolutionConfig};
        let space = Nb201Space::default();
        let rea = || {
            RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 4).unwrap()
        };
        let score = |a: &Nb201Arch| a.edges.iter().map(|o| o.index() as f64 * 1.5).sum::<f64>();
        let dir = std::env::temp_dir().join(format!("nas-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trials.jsonl");
        let _ = std::fs::remove_file(&path);

        let calls = std::cell::Cell::new(0);
        let mut est = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
            calls.set(calls.get() + 1);
            Ok(Metrics::new(score(a)))
        };
        let full = run(&space, &mut rea(), &mut est, 40, |_| {}).unwrap();

        // "Killed" after 15 trials, then resumed to 40 with a fresh strategy.
        run_with_journal(&space, &mut rea(), &mut est, 15, &path, |_| {}).unwrap();
        calls.set(0);
        let resumed = run_with_journal(&space, &mut rea(), &mut est, 40, &path, |_| {}).unwrap();
        assert_eq!(calls.get(), 25, "finished trials are not estimated again");
        let arches =
            |r: &SearchResult<Nb201Arch>| r.trials.iter().map(|t| t.arch).collect::<Vec<_>>();
        assert_eq!(arches(&resumed), arches(&full));
        assert_eq!(resumed.best_so_far(), full.best_so_far());
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 40);

        // Another seed does not match the journal: a typed error, the file untouched.
        let mut other =
            RegularizedEvolution::<Nb201Space>::new(RegularizedEvolutionConfig::nb201(), 5)
                .unwrap();
        let stop = run_with_journal(&space, &mut other, &mut est, 50, &path, |_| {}).unwrap_err();
        assert!(
            matches!(stop.error, StrategyError::JournalMismatch { line: 1, .. }),
            "{}",
            stop.error
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 40);

        // A corrupt line names its number.
        std::fs::write(&path, "{not json}\n").unwrap();
        let stop = run_with_journal(&space, &mut rea(), &mut est, 5, &path, |_| {}).unwrap_err();
        assert!(
            matches!(stop.error, StrategyError::Journal { line: 1, .. }),
            "{}",
            stop.error
        );
    }

    #[test]
    fn a_journal_is_locked_synced_and_never_trimmed_when_it_is_not_one() {
        let space = Nb201Space::default();
        let dir = std::env::temp_dir().join(format!("nas-journal-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trials.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut est = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
            Ok(Metrics::new(a.edges.iter().map(|o| o.index() as f64).sum()))
        };

        // A search holding the journal's lock (another process's, as far as the file knows):
        // a second search on it is a typed error at once and writes nothing.
        std::fs::write(&path, "").unwrap();
        let holder = std::fs::File::open(&path).unwrap();
        holder.lock().unwrap();
        let stop = Search::new(&space, &mut RandomSearch::new(0))
            .trials(3)
            .journal(&path)
            .run(&mut est)
            .unwrap_err();
        assert!(
            matches!(&stop.error, StrategyError::Journal { reason, .. } if reason.contains("another search")),
            "{}",
            stop.error
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        drop(holder);

        // Batched syncs: every record is still written, in order.
        let result = Search::new(&space, &mut RandomSearch::new(0))
            .trials(7)
            .journal(&path)
            .journal_sync(JournalSync::Every(3))
            .run(&mut est)
            .unwrap();
        let written = read_journal::<Nb201Arch>(&path).unwrap();
        assert_eq!(written.len(), 7);
        assert_eq!(
            written.iter().map(|t| t.arch).collect::<Vec<_>>(),
            result.trials.iter().map(|t| t.arch).collect::<Vec<_>>()
        );
        // The lock went with the search: a resume takes it again.
        let resumed = Search::new(&space, &mut RandomSearch::new(0))
            .trials(9)
            .journal(&path)
            .journal_sync(JournalSync::AtEnd)
            .run(&mut est)
            .unwrap();
        assert_eq!(resumed.trials.len(), 9);
        let stop = Search::new(&space, &mut RandomSearch::new(0))
            .trials(9)
            .journal(&path)
            .journal_sync(JournalSync::Every(0))
            .run(&mut est)
            .unwrap_err();
        assert!(
            matches!(stop.error, StrategyError::InvalidConfig { .. }),
            "{}",
            stop.error
        );

        // A file that is not a journal (here a one-line JSON object with no line end, as a
        // `best.json` given by mistake) is refused whole, not taken for a torn write and cut.
        for text in ["{\"best\": 1.5, \"arch\": \"x\"}", "[1, 2]\n", "hello"] {
            std::fs::write(&path, text).unwrap();
            let stop = Search::new(&space, &mut RandomSearch::new(0))
                .trials(3)
                .journal(&path)
                .run(&mut est)
                .unwrap_err();
            assert!(
                matches!(&stop.error, StrategyError::Journal { line: 1, reason, .. } if reason.contains("not a search journal")),
                "{text}: {}",
                stop.error
            );
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                text,
                "left untouched"
            );
        }
        // A torn first record (a kill during the first write) is still a journal.
        std::fs::write(&path, "{\"id\":0,\"arch\":\"|nor_co").unwrap();
        let result = Search::new(&space, &mut RandomSearch::new(0))
            .trials(2)
            .journal(&path)
            .run(&mut est)
            .unwrap();
        assert_eq!(result.trials.len(), 2);
        assert_eq!(read_journal::<Nb201Arch>(&path).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_panicking_estimator_factory_interrupts_the_search() {
        let space = Nb201Space::default();
        let score = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(Metrics::new(a.edges.iter().map(|o| o.index() as f64).sum()))
        };
        // Worker 1 cannot build its estimator: the search stops before its first trial.
        let stop = Search::new(&space, &mut RandomSearch::new(0))
            .trials(20)
            .run_parallel(3, |worker| {
                if worker == 1 {
                    panic!("no device for worker 1");
                }
                score
            })
            .unwrap_err();
        let message = stop.error.to_string();
        assert!(
            message.contains("worker 1") && message.contains("no device for worker 1"),
            "{message}"
        );
        assert!(stop.partial.trials.is_empty());
        // No worker at all: the first worker's error, no panic escapes.
        let stop = Search::new(&space, &mut RandomSearch::new(0))
            .trials(5)
            .run_parallel(
                2,
                |_| -> fn(&Nb201Arch, &Budget) -> Result<Metrics, EstimateError> {
                    panic!("broken factory")
                },
            )
            .unwrap_err();
        let message = stop.error.to_string();
        assert!(
            message.contains("worker 0") && message.contains("broken factory"),
            "{message}"
        );
        assert!(stop.partial.trials.is_empty());
    }

    #[test]
    fn exhaustion_returns_the_finished_trials() {
        let space = Nb201Space::with_ops(&[Nb201Op::None]).unwrap();
        let mut rs = RandomSearch::new(0);
        let mut est = |_: &Nb201Arch, _: &Budget| Ok(Metrics::new(1.0));
        let stop = run(&space, &mut rs, &mut est, 5, |_| {}).unwrap_err();
        assert!(matches!(stop.error, StrategyError::Exhausted(1)));
        assert_eq!(stop.partial.trials.len(), 1);
    }
}
