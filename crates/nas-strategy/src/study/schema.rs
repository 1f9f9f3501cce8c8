//! The tables of a study, and the connection that creates and checks them.

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::{ConnectionString, StudyError};

/// The schema this build reads and writes. A database created by another version is refused
/// on connect ([`StudyError::SchemaVersion`]).
pub const SCHEMA_VERSION: i32 = 1;

/// The first key of every advisory lock this crate takes (`'nas!'` as an integer); the second
/// is 0 for the schema's creation and the study's id for its coordinator.
pub(crate) const LOCK_SPACE: i32 = 0x6e61_7321;

/// Tables, created once per database (under a transaction-scoped advisory lock, so processes
/// that connect together do not race).
const DDL: &str = r"
CREATE TABLE IF NOT EXISTS nas_schema (
    version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS nas_studies (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    space text NOT NULL,
    space_config jsonb NOT NULL,
    strategy text NOT NULL,
    strategy_config jsonb NOT NULL,
    seed bigint NOT NULL,
    objective text NOT NULL,
    state text NOT NULL DEFAULT 'RUNNING' CHECK (state IN ('RUNNING', 'DONE')),
    grace_seconds double precision NOT NULL,
    max_retries integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS nas_workers (
    id bigserial PRIMARY KEY,
    study_id bigint NOT NULL REFERENCES nas_studies (id) ON DELETE CASCADE,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS nas_trials (
    id bigserial PRIMARY KEY,
    study_id bigint NOT NULL REFERENCES nas_studies (id) ON DELETE CASCADE,
    trial_id bigint NOT NULL,
    arch jsonb NOT NULL,
    budget jsonb NOT NULL,
    state text NOT NULL DEFAULT 'WAITING'
        CHECK (state IN ('WAITING', 'RUNNING', 'COMPLETE', 'PRUNED', 'FAILED')),
    worker_id bigint REFERENCES nas_workers (id),
    retries integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    ended_at timestamptz,
    seconds double precision,
    objective double precision,
    metrics jsonb,
    failure text,
    told_seq bigint,
    issued bigint,
    UNIQUE (study_id, trial_id)
);
CREATE INDEX IF NOT EXISTS nas_trials_waiting ON nas_trials (study_id, id) WHERE state = 'WAITING';
CREATE INDEX IF NOT EXISTS nas_trials_untold ON nas_trials (study_id) WHERE told_seq IS NULL;
CREATE INDEX IF NOT EXISTS nas_trials_told ON nas_trials (study_id, told_seq) WHERE told_seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS nas_heartbeats (
    trial_pk bigint PRIMARY KEY REFERENCES nas_trials (id) ON DELETE CASCADE,
    worker_id bigint NOT NULL REFERENCES nas_workers (id),
    beat_at timestamptz NOT NULL DEFAULT now()
);
";

/// Connects, creating the tables on first use and checking the schema's version.
pub(crate) fn connect(url: &ConnectionString) -> Result<Client, StudyError> {
    let mut client = open(url)?;
    let db = |during: &'static str| move |e: postgres::Error| StudyError::db(during, &e);
    let mut tx = client.transaction().map_err(db("creating the tables"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_SPACE])
        .map_err(db("creating the tables"))?;
    tx.batch_execute(DDL).map_err(db("creating the tables"))?;
    let versions: Vec<i32> = tx
        .query("SELECT version FROM nas_schema", &[])
        .map_err(db("reading the schema version"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    match versions.as_slice() {
        [] => {
            tx.execute(
                "INSERT INTO nas_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .map_err(db("writing the schema version"))?;
        }
        [v] if *v == SCHEMA_VERSION => {}
        [v] => {
            return Err(StudyError::SchemaVersion {
                found: *v,
                expected: SCHEMA_VERSION,
            });
        }
        _ => {
            return Err(StudyError::SchemaVersion {
                found: -1,
                expected: SCHEMA_VERSION,
            });
        }
    }
    tx.commit().map_err(db("creating the tables"))?;
    Ok(client)
}

/// Opens a connection without touching the tables (the heartbeat thread's).
pub(crate) fn open(url: &ConnectionString) -> Result<Client, StudyError> {
    url.config()
        .connect(NoTls)
        .map_err(|e| StudyError::Connect {
            source_name: url.source_name().to_string(),
            reason: e.to_string(),
        })
}

/// Reopens a lost connection, trying until `patience` has passed (1 s, then doubling up to
/// 10 s between tries).
pub(crate) fn reconnect(
    url: &ConnectionString,
    patience: Duration,
    last_error: &str,
) -> Result<Client, StudyError> {
    let start = Instant::now();
    let mut wait = Duration::from_secs(1);
    loop {
        match open(url) {
            Ok(c) => return Ok(c),
            Err(e) if start.elapsed() >= patience => {
                return Err(StudyError::ConnectionLost {
                    seconds: start.elapsed().as_secs_f64(),
                    reason: format!("{last_error}; the last reconnection attempt: {e}"),
                });
            }
            Err(_) => {
                std::thread::sleep(wait.min(patience.saturating_sub(start.elapsed())));
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The channel on which the coordinator is woken (a trial started or finished).
pub(crate) fn coordinator_channel(study_id: i64) -> String {
    format!("nas_study_{study_id}_coordinator")
}

/// The channel on which idle workers are woken (a trial is waiting, the study is done).
pub(crate) fn worker_channel(study_id: i64) -> String {
    format!("nas_study_{study_id}_workers")
}
