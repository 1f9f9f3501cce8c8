//! The coordinator's side: the search loop's pool of workers, backed by the study's tables.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use nas_estimate::{Budget, Metrics};
use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Coordinator, StudyError, lock, schema};
use crate::record::TrialRecord;
use crate::search::pool::{Done, Event, Pool};
use crate::{Outcome, StrategyError, Trial, TrialId};

/// The columns [`trial_row`] reads, in its order.
const TRIAL_COLUMNS: &str = "trial_id, arch, budget, state, worker_id, retries, \
     extract(epoch FROM started_at)::float8, extract(epoch FROM ended_at)::float8, seconds, \
     metrics, failure, told_seq, issued";

/// One trial as the database holds it.
struct TrialRow<A> {
    id: TrialId,
    arch: A,
    budget: Budget,
    state: String,
    worker: Option<i64>,
    retries: i32,
    started_at: Option<f64>,
    ended_at: Option<f64>,
    seconds: Option<f64>,
    metrics: Option<serde_json::Value>,
    failure: Option<String>,
    told_seq: Option<i64>,
    issued: Option<i64>,
}

fn trial_row<A: DeserializeOwned>(
    study: &str,
    row: &postgres::Row,
) -> Result<TrialRow<A>, StudyError> {
    let id: i64 = row.get(0);
    let corrupt = |reason: String| StudyError::Corrupt {
        study: study.to_string(),
        trial: id,
        reason,
    };
    let arch = serde_json::from_value(row.get(1))
        .map_err(|e| corrupt(format!("its architecture is not one of this space: {e}")))?;
    let budget = serde_json::from_value(row.get(2))
        .map_err(|e| corrupt(format!("its budget cannot be read: {e}")))?;
    let id = u64::try_from(id).map_err(|_| corrupt("a negative trial id".into()))?;
    Ok(TrialRow {
        id,
        arch,
        budget,
        state: row.get(3),
        worker: row.get(4),
        retries: row.get(5),
        started_at: row.get(6),
        ended_at: row.get(7),
        seconds: row.get(8),
        metrics: row.get(9),
        failure: row.get(10),
        told_seq: row.get(11),
        issued: row.get(12),
    })
}

impl<A> TrialRow<A> {
    /// The outcome of a finished trial (`None` while it waits or runs).
    fn outcome(&self, study: &str) -> Result<Option<Outcome>, StudyError> {
        let metrics = || -> Result<Metrics, StudyError> {
            let value = self.metrics.clone().ok_or_else(|| StudyError::Corrupt {
                study: study.to_string(),
                trial: self.id as i64,
                reason: format!("state {} without metrics", self.state),
            })?;
            serde_json::from_value(value).map_err(|e| StudyError::Corrupt {
                study: study.to_string(),
                trial: self.id as i64,
                reason: format!("its metrics cannot be read: {e}"),
            })
        };
        Ok(match self.state.as_str() {
            "COMPLETE" => Some(Outcome::Complete(metrics()?)),
            "PRUNED" => Some(Outcome::Pruned(metrics()?)),
            "FAILED" => Some(Outcome::Failed(
                self.failure.clone().unwrap_or_else(|| "failed".into()),
            )),
            _ => None,
        })
    }

    fn worker(&self) -> usize {
        self.worker.map_or(0, |w| w as usize)
    }
}

/// The coordinator's pool: a submitted trial is a `WAITING` row, an event is a row that a
/// worker moved on.
pub(crate) struct StudyPool<A> {
    coordinator: Coordinator,
    /// Submitted trials not finished yet.
    waiting: HashMap<TrialId, Trial<A>>,
    /// (trial, retries) whose start was reported.
    started: HashSet<(TrialId, i32)>,
    events: VecDeque<Event<A>>,
    /// The last tell's sequence number.
    told: i64,
    /// When lost workers' trials were last looked for.
    last_reap: Option<Instant>,
    /// Why the pool stopped taking statements (a tell that may or may not have been
    /// recorded): a restart replays the study as it is.
    broken: Option<String>,
}

impl<A> StudyPool<A>
where
    A: Serialize + DeserializeOwned + PartialEq + Debug,
{
    /// Starts listening for the workers' notifications.
    pub fn new(coordinator: Coordinator) -> Result<Self, StudyError> {
        let mut pool = Self {
            coordinator,
            waiting: HashMap::new(),
            started: HashSet::new(),
            events: VecDeque::new(),
            told: 0,
            last_reap: None,
            broken: None,
        };
        let listen = format!(
            "LISTEN {}",
            schema::coordinator_channel(pool.coordinator.study.id)
        );
        pool.with_client("listening for workers", |c| c.batch_execute(&listen))?;
        Ok(pool)
    }

    /// The number of trials kept in flight.
    pub fn in_flight(&self) -> usize {
        self.coordinator.options.in_flight
    }

    /// Runs `f` on the connection; a lost connection is reopened (the lock and the
    /// notifications taken again) and `f` run again, for [`super::CoordinatorOptions::reconnect`]
    /// in all.
    fn with_client<T>(
        &mut self,
        during: &'static str,
        f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StudyError> {
        if let Some(reason) = &self.broken {
            return Err(StudyError::Database {
                during,
                reason: format!(
                    "an earlier statement failed ({reason}); restart the coordinator to go on"
                ),
            });
        }
        let patience = self.coordinator.options.reconnect;
        let Coordinator {
            url, client, study, ..
        } = &mut self.coordinator;
        let told = self.told;
        schema::retrying(client, url, patience, during, f, |client, start| {
            // The lock went with the old session, which the server may not have ended yet:
            // try again until the patience runs out.
            loop {
                match lock(client, study) {
                    Ok(()) => break,
                    Err(StudyError::CoordinatorRunning { .. }) if start.elapsed() < patience => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(e),
                }
            }
            // Another coordinator may have held the study in between: then this one's
            // strategy is out of date.
            let recorded: i64 = client
                .query_one(
                    "SELECT coalesce(max(told_seq), 0) FROM nas_trials WHERE study_id = $1",
                    &[&study.id],
                )
                .map_err(|e| StudyError::db("reopening the study", &e))?
                .get(0);
            if recorded != told {
                return Err(StudyError::CoordinatorRunning {
                    study: study.name.clone(),
                });
            }
            let channel = schema::coordinator_channel(study.id);
            client
                .batch_execute(&format!("LISTEN {channel}"))
                .map_err(|e| StudyError::db("listening for workers", &e))
        })
    }

    /// The study's tells so far, in their order, as journal records (line = tell number).
    pub fn replay_records(&mut self) -> Result<Vec<(usize, TrialRecord<A>)>, StudyError> {
        let study_id = self.coordinator.study.id;
        let sql = format!(
            "SELECT {TRIAL_COLUMNS} FROM nas_trials WHERE study_id = $1 AND told_seq IS NOT NULL \
             ORDER BY told_seq"
        );
        let rows = self.with_client("reading the study's trials", |c| {
            c.query(sql.as_str(), &[&study_id])
        })?;
        let name = self.coordinator.study.name.clone();
        let seed = self.coordinator.study.spec.seed;
        let mut records = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let t = trial_row::<A>(&name, row)?;
            let expected = i as i64 + 1;
            if t.told_seq != Some(expected) {
                return Err(StudyError::Corrupt {
                    study: name,
                    trial: t.id as i64,
                    reason: format!(
                        "told as number {:?}, expected {expected}: the order of tells has a gap",
                        t.told_seq
                    ),
                });
            }
            let outcome = t.outcome(&name)?.ok_or_else(|| StudyError::Corrupt {
                study: name.clone(),
                trial: t.id as i64,
                reason: format!("told, but its state is {}", t.state),
            })?;
            records.push((
                expected as usize,
                TrialRecord {
                    id: t.id,
                    worker: t.worker(),
                    arch: t.arch,
                    budget: t.budget,
                    outcome,
                    seconds: t.seconds.unwrap_or(0.0),
                    started_at: t.started_at.unwrap_or(0.0),
                    ended_at: t.ended_at.unwrap_or(0.0),
                    seed: Some(seed),
                    issued: t.issued.unwrap_or(0).max(0) as u64,
                },
            ));
        }
        self.told = records.len() as i64;
        Ok(records)
    }

    /// Ends the study's run: a finished search removes the trials that earlier runs inserted
    /// and this one never asked again, and marks the study done, so idle workers leave.
    pub fn close(mut self, finished: bool) -> Result<(), StudyError> {
        let id = self.coordinator.study.id;
        let channel = schema::worker_channel(id);
        if finished {
            self.with_client("closing the study", |c| {
                let mut tx = c.transaction()?;
                // Every trial of this run was told: untold rows are earlier runs' proposals
                // that this run did not ask again (a worker still on one finds it gone).
                tx.execute(
                    "DELETE FROM nas_trials WHERE study_id = $1 AND told_seq IS NULL",
                    &[&id],
                )?;
                tx.execute(
                    "UPDATE nas_studies SET state = 'DONE' WHERE id = $1",
                    &[&id],
                )?;
                tx.execute("SELECT pg_notify($1, 'done')", &[&channel])?;
                tx.commit()
            })?;
        }
        Ok(())
    }

    /// Reads the rows that moved since the last look and queues their events.
    fn poll(&mut self) -> Result<(), StudyError> {
        let id = self.coordinator.study.id;
        let sql = format!(
            "SELECT {TRIAL_COLUMNS} FROM nas_trials WHERE study_id = $1 AND told_seq IS NULL \
             AND state <> 'WAITING' ORDER BY ended_at NULLS LAST, trial_id"
        );
        let rows = self.with_client("looking for finished trials", |c| {
            c.query(sql.as_str(), &[&id])
        })?;
        let name = self.coordinator.study.name.clone();
        for row in &rows {
            let t = trial_row::<A>(&name, row)?;
            if !self.waiting.contains_key(&t.id) {
                continue;
            }
            if self.started.insert((t.id, t.retries)) {
                self.events.push_back(Event::Started {
                    id: t.id,
                    worker: t.worker(),
                });
            }
            let Some(outcome) = t.outcome(&name)? else {
                continue;
            };
            let trial = self.waiting.remove(&t.id).expect("checked above");
            self.started.retain(|(id, _)| *id != t.id);
            self.events.push_back(Event::Finished(Done {
                trial,
                worker: t.worker(),
                outcome,
                seconds: t.seconds.unwrap_or(0.0),
                started_at: t.started_at.unwrap_or(0.0),
                ended_at: t.ended_at.unwrap_or(0.0),
            }));
        }
        Ok(())
    }

    /// Hands the running trials of lost workers back (or fails them after the retries).
    fn reap(&mut self) -> Result<(), StudyError> {
        // Every poll interval at most (a quarter of the grace period when that is shorter).
        let every = self
            .coordinator
            .options
            .poll
            .min(self.coordinator.options.grace / 4);
        if self.last_reap.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_reap = Some(Instant::now());
        let id = self.coordinator.study.id;
        let grace = self.coordinator.options.grace.as_secs_f64();
        let retries = self.coordinator.options.max_retries as i32;
        let requeued = self.with_client("taking back the trials of lost workers", |c| {
            reap(c, id, grace, retries)
        })?;
        if requeued > 0 {
            let channel = schema::worker_channel(id);
            self.with_client("waking the workers", |c| {
                c.execute("SELECT pg_notify($1, 'trial')", &[&channel])
            })?;
        }
        Ok(())
    }

    /// Waits up to the poll interval for a worker's notification.
    fn wait(&mut self) {
        let poll = self.coordinator.options.poll;
        let mut notes = self.coordinator.client.notifications();
        // An error here is a lost connection: the next query reconnects.
        let _ = notes.timeout_iter(poll).next();
        while let Ok(Some(_)) = notes.iter().next() {}
    }
}

/// Takes back the running trials of `study` whose last heartbeat is older than `grace`
/// seconds: to `WAITING` with one more retry, or `FAILED` once `max_retries` are spent.
/// Returns how many went back to `WAITING`.
pub(crate) fn reap(
    client: &mut Client,
    study: i64,
    grace: f64,
    max_retries: i32,
) -> Result<i64, postgres::Error> {
    let row = client.query_one(
        "WITH stale AS ( \
             SELECT t.id FROM nas_trials t LEFT JOIN nas_heartbeats h ON h.trial_pk = t.id \
             WHERE t.study_id = $1 AND t.state = 'RUNNING' \
               AND coalesce(h.beat_at, t.started_at) < now() - make_interval(secs => $2::float8) \
             FOR UPDATE OF t SKIP LOCKED \
         ), moved AS ( \
             UPDATE nas_trials t SET \
                 state = CASE WHEN t.retries < $3::int4 THEN 'WAITING' ELSE 'FAILED' END, \
                 failure = CASE WHEN t.retries < $3::int4 THEN NULL ELSE format( \
                     'worker %s stopped sending heartbeats (grace %s s); the trial was handed out %s times', \
                     t.worker_id, $2::float8, t.retries + 1) END, \
                 ended_at = CASE WHEN t.retries < $3::int4 THEN NULL ELSE now() END, \
                 seconds = CASE WHEN t.retries < $3::int4 THEN NULL \
                     ELSE extract(epoch FROM now() - t.started_at)::float8 END, \
                 started_at = CASE WHEN t.retries < $3::int4 THEN NULL ELSE t.started_at END, \
                 worker_id = CASE WHEN t.retries < $3::int4 THEN NULL ELSE t.worker_id END, \
                 retries = CASE WHEN t.retries < $3::int4 THEN t.retries + 1 ELSE t.retries END \
             FROM stale WHERE t.id = stale.id \
             RETURNING t.id, t.state \
         ), beats AS ( \
             DELETE FROM nas_heartbeats h USING moved WHERE h.trial_pk = moved.id \
         ) \
         SELECT count(*) FILTER (WHERE state = 'WAITING') FROM moved",
        &[&study, &grace, &max_retries],
    )?;
    Ok(row.get(0))
}

impl<A> Pool<A> for StudyPool<A>
where
    A: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    fn workers(&self) -> usize {
        self.in_flight()
    }

    fn submit(&mut self, trial: Trial<A>) -> Result<(), StrategyError> {
        let study = self.coordinator.study.id;
        let name = self.coordinator.study.name.clone();
        let id = trial.id as i64;
        let arch = serde_json::to_value(&trial.arch).map_err(|e| StudyError::Corrupt {
            study: name.clone(),
            trial: id,
            reason: format!("the architecture cannot be written as JSON: {e}"),
        })?;
        let budget = serde_json::to_value(trial.budget).map_err(|e| StudyError::Corrupt {
            study: name.clone(),
            trial: id,
            reason: format!("the budget cannot be written as JSON: {e}"),
        })?;
        let channel = schema::worker_channel(study);
        let inserted = self.with_client("inserting a trial", |c| {
            c.query(
                "WITH ins AS ( \
                     INSERT INTO nas_trials (study_id, trial_id, arch, budget) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (study_id, trial_id) DO NOTHING \
                     RETURNING id) \
                 SELECT ins.id, pg_notify($5, 'trial')::text FROM ins",
                &[&study, &id, &arch, &budget, &channel],
            )
        })?;
        if inserted.is_empty() {
            // Inserted by an earlier run of this coordinator: it must be the same trial.
            let sql = format!(
                "SELECT {TRIAL_COLUMNS} FROM nas_trials WHERE study_id = $1 AND trial_id = $2"
            );
            let row = self.with_client("reading a trial", |c| {
                c.query_one(sql.as_str(), &[&study, &id])
            })?;
            // (A row this build cannot read is replaced like one that differs.)
            let stored = trial_row::<A>(&name, &row).ok();
            let told = row.get::<_, Option<i64>>(11).is_some();
            if told {
                return Err(StudyError::Corrupt {
                    study: name,
                    trial: id,
                    reason: "handed out again although it was already told: the study was \
                             driven by a strategy with other settings"
                        .into(),
                }
                .into());
            }
            let same = stored
                .as_ref()
                .is_some_and(|s| s.arch == trial.arch && s.budget == trial.budget);
            if !same {
                // An earlier run asked more trials after its last tell than this one (another
                // in-flight limit or budget), and was told more before asking this id: the
                // row never reached the strategy, so this run's proposal replaces it (a
                // worker still on the old one finds its outcome refused).
                self.with_client("replacing an untold trial", |c| {
                    let mut tx = c.transaction()?;
                    tx.execute(
                        "DELETE FROM nas_heartbeats h USING nas_trials t \
                         WHERE h.trial_pk = t.id AND t.study_id = $1 AND t.trial_id = $2",
                        &[&study, &id],
                    )?;
                    tx.execute(
                        "UPDATE nas_trials SET arch = $3, budget = $4, state = 'WAITING', \
                         worker_id = NULL, started_at = NULL, ended_at = NULL, seconds = NULL, \
                         objective = NULL, metrics = NULL, failure = NULL \
                         WHERE study_id = $1 AND trial_id = $2 AND told_seq IS NULL",
                        &[&study, &id, &arch, &budget],
                    )?;
                    tx.execute("SELECT pg_notify($1, 'trial')", &[&channel])?;
                    tx.commit()
                })?;
            }
        }
        self.waiting.insert(trial.id, trial);
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Event<A>>, StrategyError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            if self.waiting.is_empty() {
                return Ok(None);
            }
            // Lost workers' trials are looked for on a timer, busy or not.
            self.reap()?;
            self.poll()?;
            if self.events.is_empty() {
                self.wait();
            }
        }
    }

    fn told(&mut self, record: &TrialRecord<A>) -> Result<(), StrategyError> {
        let study = self.coordinator.study.id;
        let seq = self.told + 1;
        let id = record.id as i64;
        let issued = i64::try_from(record.issued).unwrap_or(i64::MAX);
        // Idempotent: a retry after a reply lost with the connection matches its own write.
        let written = self.with_client("recording a tell", |c| {
            c.execute(
                "UPDATE nas_trials SET told_seq = $3, issued = $4 \
                 WHERE study_id = $1 AND trial_id = $2 AND (told_seq IS NULL OR told_seq = $3)",
                &[&study, &id, &seq, &issued],
            )
        });
        let error = match written {
            Ok(1) => {
                self.told = seq;
                return Ok(());
            }
            Ok(_) => StudyError::Corrupt {
                study: self.coordinator.study.name.clone(),
                trial: id,
                reason: "was told twice, or vanished from the database".into(),
            },
            Err(e) => e,
        };
        // The strategy was told, the database may not say so: no further tell or trial from
        // this run (a restart replays what the database holds).
        self.broken = Some(error.to_string());
        Err(error.into())
    }
}
