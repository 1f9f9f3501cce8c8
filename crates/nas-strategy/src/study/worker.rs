//! The worker's side: claim a waiting trial, estimate it with heartbeats, write the outcome.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nas_estimate::{Budget, Estimator};
use nas_space::SearchSpace;
use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::pool::reap;
use super::{ConnectionString, StudyError, StudyRow, find_study, schema, state_name};
use crate::search::pool::evaluate;
use crate::{Outcome, Trial};

/// How a worker runs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// How often a running trial's heartbeat is written (default 10 s); keep it several times
    /// shorter than the coordinator's grace period ([`super::CoordinatorOptions::grace`]).
    pub heartbeat: Duration,
    /// How long to wait for the study to appear when the worker starts before its
    /// coordinator (default 5 minutes).
    pub wait_for_study: Duration,
    /// How often an idle worker looks for a waiting trial when no notification woke it
    /// (default 1 s).
    pub idle_poll: Duration,
    /// Leave after this many trials (default: none; the worker leaves when the study is done).
    pub max_trials: Option<usize>,
    /// How long a lost connection is retried before the worker stops with
    /// [`StudyError::ConnectionLost`] (default 60 s).
    pub reconnect: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(10),
            wait_for_study: Duration::from_secs(300),
            idle_poll: Duration::from_secs(1),
            max_trials: None,
            reconnect: Duration::from_secs(60),
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// The worker's id in the study (`nas_workers.id`, the records' `worker`).
    pub worker: i64,
    /// Trials it estimated and recorded.
    pub finished: usize,
    /// Of those, trials that failed (an estimator error, a non-finite objective, a panic).
    pub failed: usize,
    /// Trials it estimated whose outcome was not kept: the trial had been taken back (its
    /// heartbeats were late) and handed to another worker.
    pub lost: usize,
}

/// A stateless worker of a study: claims waiting trials and estimates them until the study
/// is done. Run one per device, on as many machines as there are.
pub struct Worker {
    url: ConnectionString,
    client: Client,
    study: StudyRow,
    id: i64,
    options: WorkerOptions,
    /// Connections reopened so far.
    reconnects: u64,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("study", &self.study.name)
            .field("id", &self.id)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What a claim found.
enum Claim<A> {
    /// A trial to estimate.
    Trial(Claimed<A>),
    /// A trial this worker cannot read: recorded as failed.
    Unreadable,
    /// No waiting trial.
    Nothing,
}

/// A claimed trial: its row, and how many times it was handed out before.
struct Claimed<A> {
    pk: i64,
    retries: i32,
    trial: Trial<A>,
}

impl Worker {
    /// Connects to study `study` (waiting for it up to [`WorkerOptions::wait_for_study`]) and
    /// checks that it searches `space` (by name; [`Worker::expect_space_config`] checks the
    /// configuration too).
    pub fn open<S: SearchSpace>(
        url: &ConnectionString,
        study: &str,
        space: &S,
        options: WorkerOptions,
    ) -> Result<Self, StudyError> {
        for (field, value) in [
            ("heartbeat", options.heartbeat),
            ("idle_poll", options.idle_poll),
        ] {
            if value.is_zero() || value > super::MAX_PERIOD {
                return Err(StudyError::InvalidOption {
                    field,
                    reason: "must be positive and at most 7 days".into(),
                });
            }
        }
        for (field, value) in [
            ("wait_for_study", options.wait_for_study),
            ("reconnect", options.reconnect),
        ] {
            if value > super::MAX_PERIOD {
                return Err(StudyError::InvalidOption {
                    field,
                    reason: "must be at most 7 days".into(),
                });
            }
        }
        let url = &url.named(&format!("nas worker {study}"));
        let mut client = schema::connect(url)?;
        let start = Instant::now();
        let row = loop {
            if let Some(row) = find_study(&mut client, study)? {
                break row;
            }
            if start.elapsed() >= options.wait_for_study {
                return Err(StudyError::NoStudy {
                    study: study.to_string(),
                    waited: start.elapsed().as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        if options.heartbeat.as_secs_f64() >= row.grace {
            return Err(StudyError::InvalidOption {
                field: "heartbeat",
                reason: format!(
                    "is {:.1} s, not shorter than study `{study}`'s grace period ({:.1} s): \
                     every trial would be taken back from this worker; beat several times per \
                     grace period",
                    options.heartbeat.as_secs_f64(),
                    row.grace
                ),
            });
        }
        if row.spec.space != space.name() {
            return Err(StudyError::Mismatch {
                study: study.to_string(),
                field: "space",
                stored: row.spec.space.clone(),
                given: space.name().to_string(),
            });
        }
        let host = hostname();
        let pid = std::process::id() as i32;
        let id: i64 = client
            .query_one(
                "INSERT INTO nas_workers (study_id, host, pid) VALUES ($1, $2, $3) RETURNING id",
                &[&row.id, &host, &pid],
            )
            .map_err(|e| StudyError::db("registering the worker", &e))?
            .get(0);
        let listen = format!("LISTEN {}", schema::worker_channel(row.id));
        client
            .batch_execute(&listen)
            .map_err(|e| StudyError::db("listening for trials", &e))?;
        Ok(Self {
            url: url.clone(),
            client,
            study: row,
            id,
            options,
            reconnects: 0,
        })
    }

    /// Checks that the study's space has this configuration.
    pub fn expect_space_config(&self, config: &impl Serialize) -> Result<(), StudyError> {
        let given = super::to_json("space_config", config)?;
        if given != self.study.spec.space_config {
            return Err(StudyError::Mismatch {
                study: self.study.name.clone(),
                field: "space configuration",
                stored: self.study.spec.space_config.to_string(),
                given: given.to_string(),
            });
        }
        Ok(())
    }

    /// The worker's id in the study.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Estimates trials until the study is done (or [`WorkerOptions::max_trials`]). An
    /// estimator's error, non-finite objective or panic fails that trial, and the worker goes
    /// on; so does a trial whose architecture this worker cannot read (it ends `FAILED` with
    /// the reason).
    ///
    /// A worker that finds its study marked done before it has seen it running (a worker
    /// started with the coordinator of a study's second run) waits for the coordinator up to
    /// [`WorkerOptions::wait_for_study`].
    pub fn run<A, E>(&mut self, estimator: &mut E) -> Result<WorkerSummary, StudyError>
    where
        A: DeserializeOwned,
        E: Estimator<A> + ?Sized,
    {
        let mut summary = WorkerSummary {
            worker: self.id,
            ..WorkerSummary::default()
        };
        let heart = Heart::start(self.url.clone(), self.id, self.options.heartbeat);
        let started = Instant::now();
        let mut seen_running = false;
        let mut last_reap: Option<Instant> = None;
        // Whether to ask if the study is done: at the start, after a quiet wait, and when
        // the coordinator said so (not each time a new trial woke every idle worker).
        let mut check_done = true;
        loop {
            if self
                .options
                .max_trials
                .is_some_and(|n| summary.finished + summary.lost >= n)
            {
                break;
            }
            let claimed = match self.claim::<A>()? {
                Claim::Trial(c) => c,
                Claim::Unreadable => {
                    summary.finished += 1;
                    summary.failed += 1;
                    continue;
                }
                Claim::Nothing => {
                    if check_done {
                        let study = self.refresh()?;
                        match study {
                            None => break, // deleted
                            Some(true) if seen_running => break,
                            Some(true) if started.elapsed() >= self.options.wait_for_study => {
                                break;
                            }
                            Some(true) => {}
                            Some(false) => seen_running = true,
                        }
                    }
                    // Idle workers look for lost workers' trials every idle poll at most (or
                    // a quarter of the grace period, when longer): not each time a
                    // notification wakes them all.
                    let every = self.options.idle_poll.max(self.grace() / 4);
                    if last_reap.is_none_or(|t| t.elapsed() >= every) {
                        last_reap = Some(Instant::now());
                        let (id, grace, retries) =
                            (self.study.id, self.study.grace, self.study.max_retries);
                        let requeued = self
                            .with_client("taking back the trials of lost workers", |c| {
                                reap(c, id, grace, retries)
                            })?;
                        if requeued > 0 {
                            continue;
                        }
                    }
                    check_done = self.wait();
                    continue;
                }
            };
            seen_running = true;
            heart.beat(Some(claimed.pk));
            let done = evaluate(estimator, claimed.trial, self.id as usize, None);
            heart.beat(None);
            if self.report(claimed.pk, claimed.retries, &done.outcome, done.seconds)? {
                summary.finished += 1;
                if matches!(done.outcome, Outcome::Failed(_)) {
                    summary.failed += 1;
                }
            } else {
                summary.lost += 1;
            }
        }
        Ok(summary)
    }

    /// The study's grace period (at least 1 ms; the database checks it is positive).
    fn grace(&self) -> Duration {
        Duration::try_from_secs_f64(self.study.grace)
            .unwrap_or(super::MAX_PERIOD)
            .clamp(Duration::from_millis(1), super::MAX_PERIOD)
    }

    /// Reads the study's state and the coordinator's current settings (grace period, retry
    /// limit): `Some(done)`, or `None` when the study was deleted.
    fn refresh(&mut self) -> Result<Option<bool>, StudyError> {
        let id = self.study.id;
        let row = self.with_client("reading the study's state", |c| {
            c.query_opt(
                "SELECT state, grace_seconds, max_retries FROM nas_studies WHERE id = $1",
                &[&id],
            )
        })?;
        Ok(row.map(|r| {
            self.study.grace = r.get(1);
            self.study.max_retries = r.get(2);
            r.get::<_, String>(0) == "DONE"
        }))
    }

    /// Runs `f` on the connection; a lost connection is reopened and `f` run again, for
    /// [`WorkerOptions::reconnect`] in all.
    fn with_client<T>(
        &mut self,
        during: &'static str,
        f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StudyError> {
        let listen = format!("LISTEN {}", schema::worker_channel(self.study.id));
        let reconnects = &mut self.reconnects;
        schema::retrying(
            &mut self.client,
            &self.url,
            self.options.reconnect,
            during,
            f,
            |client, _| {
                *reconnects += 1;
                client
                    .batch_execute(&listen)
                    .map_err(|e| StudyError::db("listening for trials", &e))
            },
        )
    }

    /// Takes the oldest waiting trial, if any (one statement: the claim, its first heartbeat
    /// and the coordinator's notification).
    fn claim<A: DeserializeOwned>(&mut self) -> Result<Claim<A>, StudyError> {
        let (study, worker) = (self.study.id, self.id);
        let channel = schema::coordinator_channel(study);
        let reconnects = self.reconnects;
        let row = self.with_client("claiming a trial", |c| {
            c.query_opt(
                "WITH next AS ( \
                     SELECT id FROM nas_trials WHERE study_id = $1 AND state = 'WAITING' \
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED \
                 ), claimed AS ( \
                     UPDATE nas_trials t SET state = 'RUNNING', worker_id = $2, started_at = now() \
                     FROM next WHERE t.id = next.id \
                     RETURNING t.id, t.trial_id, t.arch, t.budget, t.retries \
                 ), beat AS ( \
                     INSERT INTO nas_heartbeats (trial_pk, worker_id, beat_at) \
                     SELECT id, $2, now() FROM claimed \
                     ON CONFLICT (trial_pk) DO UPDATE \
                     SET worker_id = EXCLUDED.worker_id, beat_at = EXCLUDED.beat_at \
                 ) \
                 SELECT id, trial_id, arch, budget, retries, pg_notify($3, 'started')::text \
                 FROM claimed",
                &[&study, &worker, &channel],
            )
        })?;
        let pk = row.as_ref().map_or(0, |r| r.get::<_, i64>(0));
        if self.reconnects != reconnects {
            // A claim whose reply was lost with the connection may have committed: such a
            // trial is this worker's and nobody runs it. Hand it back (no retry spent).
            self.with_client("handing back a lost claim", |c| {
                c.execute(
                    "WITH back AS ( \
                         UPDATE nas_trials SET state = 'WAITING', worker_id = NULL, \
                         started_at = NULL WHERE study_id = $1 AND worker_id = $2 \
                         AND state = 'RUNNING' AND id <> $3 RETURNING id) \
                     DELETE FROM nas_heartbeats h USING back WHERE h.trial_pk = back.id",
                    &[&study, &worker, &pk],
                )
            })?;
        }
        let Some(row) = row else {
            return Ok(Claim::Nothing);
        };
        let retries: i32 = row.get(4);
        let trial_id = u64::try_from(row.get::<_, i64>(1));
        let arch = serde_json::from_value::<A>(row.get(2));
        let budget = serde_json::from_value::<Budget>(row.get(3));
        let (trial_id, arch, budget) = match (trial_id, arch, budget) {
            (Ok(t), Ok(a), Ok(b)) => (t, a, b),
            (t, a, b) => {
                // Not an architecture this worker reads (another space's, a hand-edited row):
                // the trial fails with the reason, and the coordinator tells the strategy.
                let reason = match (t.err(), a.err(), b.err()) {
                    (Some(_), _, _) => "a negative trial id".to_string(),
                    (_, Some(e), _) => {
                        format!("worker {worker} cannot read its architecture: {e}")
                    }
                    (_, _, Some(e)) => format!("worker {worker} cannot read its budget: {e}"),
                    _ => unreachable!("one of the three failed"),
                };
                let failed = Outcome::Failed(reason);
                self.report(pk, retries, &failed, 0.0)?;
                return Ok(Claim::Unreadable);
            }
        };
        Ok(Claim::Trial(Claimed {
            pk,
            retries,
            trial: Trial {
                id: trial_id,
                arch,
                budget,
            },
        }))
    }

    /// Writes a trial's outcome in one statement, if the trial is still this worker's.
    /// Returns whether it was kept.
    fn report(
        &mut self,
        pk: i64,
        retries: i32,
        outcome: &Outcome,
        seconds: f64,
    ) -> Result<bool, StudyError> {
        let state = state_name(outcome);
        let (objective, metrics, failure) = match outcome {
            Outcome::Complete(m) | Outcome::Pruned(m) => (
                Some(m.objective),
                Some(serde_json::to_value(m).map_err(|e| StudyError::Corrupt {
                    study: self.study.name.clone(),
                    trial: pk,
                    reason: format!("its metrics cannot be written as JSON: {e}"),
                })?),
                None,
            ),
            Outcome::Failed(why) => (None, None, Some(why.clone())),
        };
        let (worker, channel) = (self.id, schema::coordinator_channel(self.study.id));
        let reconnects = self.reconnects;
        let rows = self.with_client("writing a trial's outcome", |c| {
            c.query(
                "WITH done AS ( \
                     UPDATE nas_trials SET state = $4, objective = $5, metrics = $6, \
                     failure = $7, seconds = $8, ended_at = now() \
                     WHERE id = $1 AND state = 'RUNNING' AND worker_id = $2 AND retries = $3 \
                     RETURNING id \
                 ), beat AS ( \
                     DELETE FROM nas_heartbeats h USING done WHERE h.trial_pk = done.id \
                 ) \
                 SELECT done.id, pg_notify($9, 'finished')::text FROM done",
                &[
                    &pk, &worker, &retries, &state, &objective, &metrics, &failure, &seconds,
                    &channel,
                ],
            )
        })?;
        if !rows.is_empty() {
            return Ok(true);
        }
        if self.reconnects == reconnects {
            return Ok(false);
        }
        // The first attempt may have committed before its reply was lost: kept if the row
        // now holds this worker's outcome.
        let row = self.with_client("reading a trial's outcome", |c| {
            c.query_opt(
                "SELECT state, worker_id, retries FROM nas_trials WHERE id = $1",
                &[&pk],
            )
        })?;
        Ok(row.is_some_and(|r| {
            r.get::<_, String>(0) == state
                && r.get::<_, Option<i64>>(1) == Some(worker)
                && r.get::<_, i32>(2) == retries
        }))
    }

    /// Waits up to the idle poll for a notification (a new trial, the study's end). Returns
    /// whether the study may be done: no notification came, or one said so.
    fn wait(&mut self) -> bool {
        let mut notes = self.client.notifications();
        let mut done = match notes.timeout_iter(self.options.idle_poll).next() {
            Ok(Some(n)) => n.payload() == "done",
            // A timeout, or a lost connection (the next query reconnects).
            Ok(None) | Err(_) => true,
        };
        while let Ok(Some(n)) = notes.iter().next() {
            done |= n.payload() == "done";
        }
        done
    }
}

/// The heartbeat thread: its own connection, a beat every interval while a trial runs.
struct Heart {
    tx: Option<mpsc::Sender<Option<i64>>>,
    handle: Option<JoinHandle<()>>,
}

impl Heart {
    fn start(url: ConnectionString, worker: i64, interval: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<Option<i64>>();
        let handle = std::thread::Builder::new()
            .name("nas-heartbeat".into())
            .spawn(move || {
                let mut current = None;
                let mut client: Option<Client> = None;
                loop {
                    match rx.recv_timeout(interval) {
                        Ok(trial) => current = trial,
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            let Some(pk) = current else { continue };
                            if client.as_ref().is_none_or(Client::is_closed) {
                                // Not reachable now: the next beat tries again; the trial
                                // is taken back only once the grace period has passed.
                                client = schema::open(&url).ok();
                            }
                            if let Some(c) = &mut client {
                                let beat = c.execute(
                                    "UPDATE nas_heartbeats SET beat_at = now() \
                                     WHERE trial_pk = $1 AND worker_id = $2",
                                    &[&pk, &worker],
                                );
                                if beat.is_err() {
                                    client = None;
                                }
                            }
                        }
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            handle,
        }
    }

    fn beat(&self, trial: Option<i64>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(trial);
        }
    }
}

impl Drop for Heart {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// This machine's name, for the workers table.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
