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
    grace_seconds double precision NOT NULL CHECK (grace_seconds > 0 AND grace_seconds <= 604800),
    max_retries integer NOT NULL CHECK (max_retries >= 0),
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
    UNIQUE (study_id, trial_id),
    UNIQUE (study_id, told_seq)
);
CREATE INDEX IF NOT EXISTS nas_trials_waiting ON nas_trials (study_id, id) WHERE state = 'WAITING';
CREATE INDEX IF NOT EXISTS nas_trials_untold ON nas_trials (study_id) WHERE told_seq IS NULL;
CREATE TABLE IF NOT EXISTS nas_heartbeats (
    trial_pk bigint PRIMARY KEY REFERENCES nas_trials (id) ON DELETE CASCADE,
    worker_id bigint NOT NULL REFERENCES nas_workers (id),
    beat_at timestamptz NOT NULL DEFAULT now()
);
";

/// Connects, creating the tables on first use and checking the schema's version.
///
/// A database that has the tables is only read (no DDL, which would need the right to create
/// in the schema and would wait for a lock on busy tables); the first process creates them
/// under a transaction-scoped advisory lock, so processes that connect together do not race.
pub(crate) fn connect(url: &ConnectionString) -> Result<Client, StudyError> {
    let mut client = open(url)?;
    let db = |during: &'static str| move |e: postgres::Error| StudyError::db(during, &e);
    if version(&mut client)?.is_none() {
        let mut tx = client.transaction().map_err(db("creating the tables"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_SPACE])
            .map_err(db("creating the tables"))?;
        tx.batch_execute(DDL).map_err(db("creating the tables"))?;
        let empty = tx
            .query_one("SELECT count(*) FROM nas_schema", &[])
            .map_err(db("reading the schema version"))?
            .get::<_, i64>(0)
            == 0;
        if empty {
            tx.execute(
                "INSERT INTO nas_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .map_err(db("writing the schema version"))?;
        }
        tx.commit().map_err(db("creating the tables"))?;
    }
    match version(&mut client)? {
        Some(v) if v == SCHEMA_VERSION => Ok(client),
        Some(v) => Err(StudyError::SchemaVersion {
            found: v,
            expected: SCHEMA_VERSION,
        }),
        None => Err(StudyError::Database {
            during: "reading the schema version",
            reason: "the tables were created, but no version was recorded".into(),
        }),
    }
}

/// The schema version recorded in the database (`None`: no tables yet; -1: several).
fn version(client: &mut Client) -> Result<Option<i32>, StudyError> {
    let db = |e: postgres::Error| StudyError::db("reading the schema version", &e);
    let exists: bool = client
        .query_one("SELECT to_regclass('nas_schema') IS NOT NULL", &[])
        .map_err(db)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let versions: Vec<i32> = client
        .query("SELECT version FROM nas_schema", &[])
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(match versions.as_slice() {
        [] => None,
        [v] => Some(*v),
        _ => Some(-1),
    })
}

/// Whether `e` means the connection is gone (closed, or ended by the server: a FATAL
/// message such as `pg_terminate_backend`'s or a shutdown's arrives before the socket
/// closes), so the statement is worth retrying on a new connection.
pub(crate) fn connection_lost(client: &Client, e: &postgres::Error) -> bool {
    if client.is_closed() || e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error()
        && matches!(db.severity(), "FATAL" | "PANIC")
    {
        return true;
    }
    e.code().is_some_and(|c| {
        let c = c.code();
        c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
    })
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
    let mut wait = Duration::from_millis(200);
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

/// Runs `f` on `client`. When the connection is lost ([`connection_lost`]), reopens it,
/// lets `reopened` take the new session back (its locks, its `LISTEN`; it gets the time the
/// first attempt started), and runs `f` again, for `patience` in all; past that,
/// [`StudyError::ConnectionLost`]. Any other error is [`StudyError::Database`] naming
/// `during`.
pub(crate) fn retrying<T>(
    client: &mut Client,
    url: &ConnectionString,
    patience: Duration,
    during: &'static str,
    mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    mut reopened: impl FnMut(&mut Client, Instant) -> Result<(), StudyError>,
) -> Result<T, StudyError> {
    let start = Instant::now();
    loop {
        let e = match f(client) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !connection_lost(client, &e) {
            return Err(StudyError::db(during, &e));
        }
        if start.elapsed() >= patience {
            return Err(StudyError::ConnectionLost {
                seconds: start.elapsed().as_secs_f64(),
                reason: e.to_string(),
            });
        }
        let mut new = reconnect(
            url,
            patience.saturating_sub(start.elapsed()),
            &e.to_string(),
        )?;
        reopened(&mut new, start)?;
        *client = new;
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
