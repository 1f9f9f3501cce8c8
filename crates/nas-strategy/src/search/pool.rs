//! Where trials are estimated: inline in the calling thread, or by worker threads that each own
//! an estimator.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::Scope;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nas_estimate::{Estimator, Metrics};

use crate::pruner::Pruner;
use crate::record::TrialRecord;
use crate::{Outcome, StrategyError, Trial, TrialId};

/// A pruner shared by the workers of a search.
pub(crate) type SharedPruner = Arc<Mutex<dyn Pruner + Send>>;

/// What a pool reports back to the loop.
pub(crate) enum Event<A> {
    /// A worker began estimating trial `id`.
    Started { id: TrialId, worker: usize },
    /// A worker finished a trial.
    Finished(Done<A>),
}

/// Why the workers could not start.
pub(crate) enum SpawnError {
    /// The operating system refused a thread.
    Thread(std::io::Error),
    /// A worker's estimator factory panicked.
    Factory { worker: usize, message: String },
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// A finished estimate.
pub(crate) struct Done<A> {
    pub trial: Trial<A>,
    pub worker: usize,
    pub outcome: Outcome,
    pub seconds: f64,
    pub started_at: f64,
    pub ended_at: f64,
}

/// A set of workers that estimate submitted trials.
pub(crate) trait Pool<A> {
    /// The number of trials the pool estimates at once.
    fn workers(&self) -> usize;
    /// Queues a trial. An error (a study's database out of reach) stops the search.
    fn submit(&mut self, trial: Trial<A>) -> Result<(), StrategyError>;
    /// Waits for the next event; `None` when no worker is left to produce one, an error when
    /// the pool itself broke (the trials it holds are lost to this run).
    fn next(&mut self) -> Result<Option<Event<A>>, StrategyError>;
    /// Notes that the strategy was told `record` (a study records the order of its tells).
    fn told(&mut self, _record: &TrialRecord<A>) -> Result<(), StrategyError> {
        Ok(())
    }
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Non-finite measurements cannot be written to JSON and read back (they become `null`), so
/// they are dropped: a value is removed, a curve is cut at its first non-finite point.
pub(crate) fn sanitize(mut m: Metrics) -> Metrics {
    m.values.retain(|_, v| v.is_finite());
    for curve in m.curves.values_mut() {
        if let Some(i) = curve.iter().position(|v| !v.is_finite()) {
            curve.truncate(i);
        }
    }
    m
}

/// Estimates one trial. An error, a non-finite objective or a panic of the estimator fails the
/// trial, not the search.
pub(crate) fn evaluate<A, E: Estimator<A> + ?Sized>(
    estimator: &mut E,
    trial: Trial<A>,
    worker: usize,
    pruner: Option<&SharedPruner>,
) -> Done<A> {
    let started_at = unix_now();
    let clock = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| match pruner {
        None => estimator
            .estimate(&trial.arch, &trial.budget)
            .map(|m| (m, false)),
        Some(p) => {
            let id = trial.id;
            let mut report = |step: usize, value: f64| {
                p.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .should_prune(id, step, value)
            };
            estimator
                .estimate_reporting(&trial.arch, &trial.budget, &mut report)
                .map(|e| (e.metrics, e.stopped_early))
        }
    }));
    let seconds = clock.elapsed().as_secs_f64();
    let outcome = match result {
        Ok(Ok((m, true))) if m.objective.is_finite() => Outcome::Pruned(sanitize(m)),
        Ok(Ok((m, false))) if m.objective.is_finite() => Outcome::Complete(sanitize(m)),
        Ok(Ok((m, _))) => Outcome::Failed(format!("non-finite objective {}", m.objective)),
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Err(payload) => Outcome::Failed(format!(
            "the estimator panicked: {}",
            panic_message(payload.as_ref())
        )),
    };
    if let Some(p) = pruner {
        p.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish(trial.id, &outcome);
    }
    Done {
        trial,
        worker,
        outcome,
        seconds,
        started_at,
        ended_at: unix_now(),
    }
}

/// One worker: the caller's thread and the caller's estimator.
pub(crate) struct Inline<'e, A, E: ?Sized> {
    estimator: &'e mut E,
    queue: VecDeque<Trial<A>>,
    started: Option<Trial<A>>,
    pruner: Option<SharedPruner>,
}

impl<'e, A, E: ?Sized> Inline<'e, A, E> {
    pub fn new(estimator: &'e mut E, pruner: Option<SharedPruner>) -> Self {
        Self {
            estimator,
            queue: VecDeque::new(),
            started: None,
            pruner,
        }
    }
}

impl<A, E: Estimator<A> + ?Sized> Pool<A> for Inline<'_, A, E> {
    fn workers(&self) -> usize {
        1
    }

    fn submit(&mut self, trial: Trial<A>) -> Result<(), StrategyError> {
        self.queue.push_back(trial);
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Event<A>>, StrategyError> {
        if let Some(trial) = self.started.take() {
            let done = evaluate(self.estimator, trial, 0, self.pruner.as_ref());
            return Ok(Some(Event::Finished(done)));
        }
        let Some(trial) = self.queue.pop_front() else {
            return Ok(None);
        };
        let id = trial.id;
        self.started = Some(trial);
        Ok(Some(Event::Started { id, worker: 0 }))
    }
}

/// Worker threads in a [`std::thread::scope`]; each builds its own estimator with the factory
/// (so an estimator may hold a device and need not be `Send`) and takes the next queued trial
/// whenever it is free.
pub(crate) struct Threaded<A> {
    jobs: mpsc::Sender<Trial<A>>,
    events: mpsc::Receiver<Event<A>>,
    workers: usize,
}

impl<A: Send> Threaded<A> {
    /// Starts `workers` threads in `scope` and waits until each has built its estimator, so
    /// that a factory that panics stops the search before any trial is handed out (the
    /// workers already started end when the pool is dropped).
    pub fn spawn<'scope, E, F>(
        scope: &'scope Scope<'scope, '_>,
        workers: usize,
        factory: &'scope F,
        pruner: Option<SharedPruner>,
    ) -> Result<Self, SpawnError>
    where
        A: 'scope,
        E: Estimator<A>,
        F: Fn(usize) -> E + Sync,
    {
        let (jobs, queue) = mpsc::channel::<Trial<A>>();
        let queue = Arc::new(Mutex::new(queue));
        let (report, events) = mpsc::channel();
        let (ready, built) = mpsc::channel::<Result<(), (usize, String)>>();
        for worker in 0..workers {
            let queue = Arc::clone(&queue);
            let report = report.clone();
            let ready = ready.clone();
            let pruner = pruner.clone();
            std::thread::Builder::new()
                .name(format!("nas-worker-{worker}"))
                .spawn_scoped(scope, move || {
                    // A panic here ends this worker and is reported to `spawn`.
                    let mut estimator = match catch_unwind(AssertUnwindSafe(|| factory(worker))) {
                        Ok(e) => {
                            let _ = ready.send(Ok(()));
                            e
                        }
                        Err(payload) => {
                            let _ = ready.send(Err((worker, panic_message(payload.as_ref()))));
                            return;
                        }
                    };
                    drop(ready);
                    loop {
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(trial) = next else { break };
                        let started = Event::Started {
                            id: trial.id,
                            worker,
                        };
                        if report.send(started).is_err() {
                            break;
                        }
                        let done = evaluate(&mut estimator, trial, worker, pruner.as_ref());
                        if report.send(Event::Finished(done)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(SpawnError::Thread)?;
        }
        drop(ready);
        // Every worker reports once; the first failure (by worker) is the error.
        let mut failed: Option<(usize, String)> = None;
        for report in built.iter() {
            if let Err((worker, message)) = report
                && failed.as_ref().is_none_or(|f| worker < f.0)
            {
                failed = Some((worker, message));
            }
        }
        if let Some((worker, message)) = failed {
            return Err(SpawnError::Factory { worker, message });
        }
        Ok(Self {
            jobs,
            events,
            workers,
        })
    }
}

impl<A> Pool<A> for Threaded<A> {
    fn workers(&self) -> usize {
        self.workers
    }

    fn submit(&mut self, trial: Trial<A>) -> Result<(), StrategyError> {
        // Fails only when every worker has stopped; `next` then reports that.
        let _ = self.jobs.send(trial);
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Event<A>>, StrategyError> {
        Ok(self.events.recv().ok())
    }
}
