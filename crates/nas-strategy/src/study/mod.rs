//! One search shared by many machines through PostgreSQL (`postgres` feature).
//!
//! A **study** is a search kept in a database: its space, strategy and seed, and every trial
//! with its state (`WAITING`, `RUNNING`, `COMPLETE`, `PRUNED`, `FAILED`), worker, times,
//! metrics, curves and retries. One **coordinator** holds the strategy: it asks, inserts the
//! proposals as `WAITING` trials, and tells the outcomes in the order they complete, through
//! the same [`Search`](crate::Search) loop as a one-process search ([`Search::run_study`](crate::Search::run_study):
//! the same observers, stopping rules and [`SearchResult`](crate::search::SearchResult)).
//! **Workers** are stateless processes on any machine ([`Worker::run`]): each claims a
//! `WAITING` trial (`SELECT … FOR UPDATE SKIP LOCKED`), sends a heartbeat while it trains, and
//! writes the outcome in one transaction.
//!
//! Nothing finished is lost to a crash:
//! - a worker that dies (SIGKILL, a lost machine) stops sending heartbeats; once its trial's
//!   last heartbeat is older than the grace period ([`CoordinatorOptions::grace`]) the trial
//!   goes back to `WAITING` for another worker, up to [`CoordinatorOptions::max_retries`]
//!   times, then ends `FAILED` (and the strategy is told so);
//! - a coordinator that dies is started again with the same [`StudySpec`]: it rebuilds its
//!   strategy by replaying the study's tells in their recorded order (as a journal resume
//!   does), takes back the trials still waiting or running, and goes on;
//! - a second coordinator on the same study is refused ([`StudyError::CoordinatorRunning`],
//!   a PostgreSQL advisory lock held for the coordinator's whole session).
//!
//! The connection string comes from an environment variable or a file
//! ([`ConnectionString::from_source`]) and is never printed; every query is parameterized.
//!
//! ```no_run
//! use nas_space::nb201::Nb201Space;
//! use nas_space::SearchSpace;
//! use nas_strategy::study::{ConnectionString, Coordinator, CoordinatorOptions, StudySpec};
//! use nas_strategy::{RegularizedEvolution, RegularizedEvolutionConfig, Search};
//!
//! let url = ConnectionString::from_source("env:NAS_DATABASE_URL")?;
//! let space = Nb201Space::default();
//! let config = RegularizedEvolutionConfig::nb201();
//! let spec = StudySpec::new("nb201-rea", &space)
//!     .strategy("regularized_evolution", &config, 0)?;
//! let coordinator = Coordinator::open(&url, &spec, CoordinatorOptions::default())?;
//! let mut rea = RegularizedEvolution::new(config, 0)?;
//! let result = Search::new(&space, &mut rea).trials(200).run_study(coordinator)?;
//! println!("best: {:?}", result.best().map(|t| &t.arch));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! and on each machine, as many times as it has devices:
//!
//! ```no_run
//! use nas_estimate::{Budget, EstimateError, Metrics};
//! use nas_space::nb201::{Nb201Arch, Nb201Space};
//! use nas_strategy::study::{ConnectionString, Worker, WorkerOptions};
//!
//! let url = ConnectionString::from_source("env:NAS_DATABASE_URL")?;
//! let space = Nb201Space::default();
//! let mut worker = Worker::open(&url, "nb201-rea", &space, WorkerOptions::default())?;
//! let mut estimator = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
//!     Ok(Metrics::new(a.edges.len() as f64))
//! };
//! let summary = worker.run(&mut estimator)?;
//! println!("{} trials estimated", summary.finished);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod pool;
mod schema;
mod worker;

pub use schema::SCHEMA_VERSION;
pub use worker::{Worker, WorkerOptions, WorkerSummary};

pub(crate) use pool::StudyPool;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use nas_space::SearchSpace;
use postgres::Client;
use serde::Serialize;
use serde_json::Value;

/// Errors of a study: the database, the connection, or a study that does not match.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StudyError {
    /// The connection string could not be read or parsed. The string itself is never shown.
    #[error("the database connection string from {source_name} {reason}")]
    InvalidUrl {
        /// Where the string came from (`environment variable NAS_DATABASE_URL`, a file).
        source_name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The server could not be reached or refused the login.
    #[error(
        "cannot connect to the database given by {source_name}: {reason}; check that the server runs, the host and port, and the user's password"
    )]
    Connect {
        /// Where the connection string came from.
        source_name: String,
        /// The client's message.
        reason: String,
    },
    /// The connection was lost and could not be reopened in time. Everything the study had
    /// finished is in the database: start the process again once the server is back.
    #[error(
        "lost the database connection and could not reconnect within {seconds:.0} s ({reason}); finished trials are safe in the database, restart once it is back"
    )]
    ConnectionLost {
        /// How long reconnecting was tried.
        seconds: f64,
        /// The last errors.
        reason: String,
    },
    /// A query failed.
    #[error("database error while {during}: {reason}")]
    Database {
        /// What was being done.
        during: &'static str,
        /// The server's or the client's message.
        reason: String,
    },
    /// The database holds the tables of another version of this crate.
    #[error(
        "the database holds study tables of schema version {found}, this build uses version {expected}: use another database, or the version of nas that created it"
    )]
    SchemaVersion {
        /// The version found (-1: several versions recorded).
        found: i32,
        /// The version this build uses ([`SCHEMA_VERSION`]).
        expected: i32,
    },
    /// No study of that name (a worker started before its coordinator waited
    /// [`WorkerOptions::wait_for_study`] for it).
    #[error(
        "no study named `{study}` in the database (waited {waited:.0} s): start its coordinator first, or check the name"
    )]
    NoStudy {
        /// The study's name.
        study: String,
        /// How long the worker waited for it.
        waited: f64,
    },
    /// The study in the database was made with another space, strategy, seed or objective
    /// than this process was given: use the same settings, or another study name.
    #[error(
        "study `{study}` was created with {field} {stored}, this process has {given}: use the same settings, or another study name"
    )]
    Mismatch {
        /// The study's name.
        study: String,
        /// What differs (`space`, `space configuration`, `strategy`, `seed`...).
        field: &'static str,
        /// The study's value.
        stored: String,
        /// This process's value.
        given: String,
    },
    /// Another coordinator holds the study (its advisory lock). Only one process may drive a
    /// study's strategy; start workers instead, or stop the other coordinator first.
    #[error(
        "study `{study}` already has a running coordinator: start workers to help it, or stop it first (a coordinator whose machine died keeps its session until the server notices, up to the server's TCP keepalive time; end it with SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nas coordinator {study}')"
    )]
    CoordinatorRunning {
        /// The study's name.
        study: String,
    },
    /// A trial row could not be read back (an architecture of another space, a hand-edited
    /// row).
    #[error("study `{study}`, trial {trial}: {reason}")]
    Corrupt {
        /// The study's name.
        study: String,
        /// The strategy's trial id.
        trial: i64,
        /// What is wrong.
        reason: String,
    },
    /// An option is out of range.
    #[error("invalid study option `{field}`: {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What is accepted.
        reason: String,
    },
}

impl StudyError {
    pub(crate) fn db(during: &'static str, e: &postgres::Error) -> Self {
        StudyError::Database {
            during,
            reason: e.to_string(),
        }
    }
}

/// A PostgreSQL connection string (`postgresql://user:password@host:port/db` or
/// `host=... user=...`), read from an environment variable or a file, never printed: its
/// `Debug` shows where it came from, not what it says.
#[derive(Clone)]
pub struct ConnectionString {
    config: postgres::Config,
    source_name: String,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnectionString(from {}, redacted)", self.source_name)
    }
}

impl ConnectionString {
    /// Parses `value`; `source_name` says where it came from, for messages.
    pub fn new(value: &str, source_name: impl Into<String>) -> Result<Self, StudyError> {
        let source_name = source_name.into();
        let value = value.trim();
        if value.is_empty() {
            return Err(StudyError::InvalidUrl {
                source_name,
                reason: "is empty: give postgresql://user:password@host:port/database".into(),
            });
        }
        // The parser's own message may quote part of the string (a password): not shown.
        let mut config = postgres::Config::from_str(value).map_err(|_| StudyError::InvalidUrl {
            source_name: source_name.clone(),
            reason: "is not a PostgreSQL connection string: give \
                         postgresql://user:password@host:port/database (or key=value pairs)"
                .into(),
        })?;
        // A dead network must not block a query for the kernel's retransmission timeout
        // (about 15 minutes): bounded connection and socket timeouts, unless the string sets
        // its own.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(60));
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        Ok(Self {
            config,
            source_name,
        })
    }

    /// Reads the string from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Self, StudyError> {
        let source_name = format!("environment variable {name}");
        match std::env::var(name) {
            Ok(v) => Self::new(&v, source_name),
            // (The error of a value that is not Unicode quotes the value: not shown.)
            Err(std::env::VarError::NotPresent) => Err(StudyError::InvalidUrl {
                source_name,
                reason: format!("is not set: export {name}=postgresql://..."),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(StudyError::InvalidUrl {
                source_name,
                reason: "is not valid Unicode".into(),
            }),
        }
    }

    /// Reads the string from the file at `path` (its first line; a Kubernetes or Slurm secret
    /// mounted as a file).
    pub fn from_file(path: &Path) -> Result<Self, StudyError> {
        let source_name = format!("file {}", path.display());
        match std::fs::read_to_string(path) {
            Ok(v) => Self::new(v.lines().next().unwrap_or(""), source_name),
            Err(e) => Err(StudyError::InvalidUrl {
                source_name,
                reason: format!("cannot be read ({e})"),
            }),
        }
    }

    /// `env:NAME` reads the environment variable `NAME`, `file:PATH` the file at `PATH`; a
    /// connection string itself is refused (it would show in the process list and shell
    /// history).
    pub fn from_source(source: &str) -> Result<Self, StudyError> {
        if let Some(name) = source.strip_prefix("env:") {
            Self::from_env(name)
        } else if let Some(path) = source.strip_prefix("file:") {
            Self::from_file(Path::new(path))
        } else {
            Err(StudyError::InvalidUrl {
                source_name: "the command line".into(),
                reason: "must be env:VARIABLE or file:PATH (a connection string on the command line would show in the process list)".into(),
            })
        }
    }

    /// Where the string came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The same string, with the connections' `application_name` set to `name` (so a
    /// database administrator sees in `pg_stat_activity` which process of which study a
    /// connection belongs to; PostgreSQL keeps its first 63 bytes).
    pub(crate) fn named(&self, name: &str) -> Self {
        let mut named = self.clone();
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .collect();
        named.config.application_name(&name);
        named
    }

    pub(crate) fn config(&self) -> &postgres::Config {
        &self.config
    }
}

/// What a study is: its name, and the settings that must stay the same for its whole life
/// (a coordinator or worker started with others is refused with [`StudyError::Mismatch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StudySpec {
    /// The study's name, unique in the database.
    pub name: String,
    /// The space's name ([`SearchSpace::name`]).
    pub space: String,
    /// The space's configuration, as JSON (`null` when it has none).
    pub space_config: Value,
    /// The strategy's name.
    pub strategy: String,
    /// The strategy's configuration, as JSON.
    pub strategy_config: Value,
    /// The strategy's seed.
    pub seed: u64,
    /// What the objective measures (e.g. `valid_accuracy`), for people reading the database.
    pub objective: String,
}

impl StudySpec {
    /// A study named `name` over `space` (no space configuration; see
    /// [`StudySpec::space_config`]), with an unnamed strategy and seed 0 until
    /// [`StudySpec::strategy`] is called.
    pub fn new<S: SearchSpace>(name: impl Into<String>, space: &S) -> Self {
        Self {
            name: name.into(),
            space: space.name().to_string(),
            space_config: Value::Null,
            strategy: String::new(),
            strategy_config: Value::Null,
            seed: 0,
            objective: "objective".into(),
        }
    }

    /// Records the space's configuration (checked by every worker).
    pub fn space_config(mut self, config: &impl Serialize) -> Result<Self, StudyError> {
        self.space_config = to_json("space_config", config)?;
        Ok(self)
    }

    /// Records the strategy's name, configuration and seed.
    pub fn strategy(
        mut self,
        name: impl Into<String>,
        config: &impl Serialize,
        seed: u64,
    ) -> Result<Self, StudyError> {
        self.strategy = name.into();
        self.strategy_config = to_json("strategy_config", config)?;
        self.seed = seed;
        Ok(self)
    }

    /// Names the objective (what the estimator's objective measures).
    pub fn objective(mut self, name: impl Into<String>) -> Self {
        self.objective = name.into();
        self
    }
}

fn to_json(field: &'static str, value: &impl Serialize) -> Result<Value, StudyError> {
    serde_json::to_value(value).map_err(|e| StudyError::InvalidOption {
        field,
        reason: format!("cannot be written as JSON: {e}"),
    })
}

/// How a coordinator runs a study.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinatorOptions {
    /// Trials kept waiting or running at once (default 8): at least the number of workers, so
    /// that none waits for the coordinator; more pending trials make model-based strategies
    /// (Bayesian optimization, evolution) decide with less information.
    pub in_flight: usize,
    /// How old a running trial's last heartbeat may be before the trial is taken back from
    /// its worker (default 60 s). Workers beat every [`WorkerOptions::heartbeat`]; keep the
    /// grace several beats long.
    pub grace: Duration,
    /// How many times a trial whose worker was lost is handed out again before it fails
    /// (default 2).
    pub max_retries: u32,
    /// How often the coordinator looks for finished trials when no notification woke it
    /// (default 1 s; workers notify it as they finish, so this is a fallback).
    pub poll: Duration,
    /// How long a lost connection is retried before the coordinator stops with
    /// [`StudyError::ConnectionLost`] (default 60 s).
    pub reconnect: Duration,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            in_flight: 8,
            grace: Duration::from_secs(60),
            max_retries: 2,
            poll: Duration::from_secs(1),
            reconnect: Duration::from_secs(60),
        }
    }
}

impl CoordinatorOptions {
    fn check(&self) -> Result<(), StudyError> {
        let bad = |field, reason: &str| {
            Err(StudyError::InvalidOption {
                field,
                reason: reason.into(),
            })
        };
        if self.in_flight == 0 {
            return bad("in_flight", "must be at least 1");
        }
        if self.grace < Duration::from_millis(100) {
            return bad("grace", "must be at least 100 ms (several heartbeats)");
        }
        if self.max_retries > i32::MAX as u32 {
            return bad("max_retries", "must fit in 32 bits");
        }
        if self.grace > MAX_PERIOD {
            return bad("grace", "must be at most 7 days");
        }
        if self.poll.is_zero() || self.poll > MAX_PERIOD {
            return bad("poll", "must be positive and at most 7 days");
        }
        if self.reconnect > MAX_PERIOD {
            return bad("reconnect", "must be at most 7 days");
        }
        Ok(())
    }
}

/// The longest period an option may hold (longer ones overflow the clocks' arithmetic).
pub(crate) const MAX_PERIOD: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The study's row, as the database holds it.
#[derive(Debug, Clone)]
pub(crate) struct StudyRow {
    pub id: i64,
    pub name: String,
    pub spec: StudySpec,
    pub grace: f64,
    pub max_retries: i32,
}

const STUDY_COLUMNS: &str = "id, name, space, space_config, strategy, strategy_config, seed, \
                             objective, grace_seconds, max_retries";

fn study_row(row: &postgres::Row) -> StudyRow {
    let seed: i64 = row.get(6);
    StudyRow {
        id: row.get(0),
        name: row.get(1),
        spec: StudySpec {
            name: row.get(1),
            space: row.get(2),
            space_config: row.get(3),
            strategy: row.get(4),
            strategy_config: row.get(5),
            // Seeds are stored as the bits of a signed 64-bit integer.
            seed: seed as u64,
            objective: row.get(7),
        },
        grace: row.get(8),
        max_retries: row.get(9),
    }
}

pub(crate) fn find_study(client: &mut Client, name: &str) -> Result<Option<StudyRow>, StudyError> {
    let sql = format!("SELECT {STUDY_COLUMNS} FROM nas_studies WHERE name = $1");
    let row = client
        .query_opt(sql.as_str(), &[&name])
        .map_err(|e| StudyError::db("reading the study", &e))?;
    Ok(row.as_ref().map(study_row))
}

/// Checks that the study in the database is the one `spec` describes.
fn check_spec(stored: &StudySpec, given: &StudySpec) -> Result<(), StudyError> {
    let mismatch = |field, theirs: String, ours: String| {
        Err(StudyError::Mismatch {
            study: given.name.clone(),
            field,
            stored: theirs,
            given: ours,
        })
    };
    if stored.space != given.space {
        return mismatch("space", stored.space.clone(), given.space.clone());
    }
    if stored.space_config != given.space_config {
        return mismatch(
            "space configuration",
            stored.space_config.to_string(),
            given.space_config.to_string(),
        );
    }
    if stored.strategy != given.strategy {
        return mismatch("strategy", stored.strategy.clone(), given.strategy.clone());
    }
    if stored.strategy_config != given.strategy_config {
        return mismatch(
            "strategy configuration",
            stored.strategy_config.to_string(),
            given.strategy_config.to_string(),
        );
    }
    if stored.seed != given.seed {
        return mismatch("seed", stored.seed.to_string(), given.seed.to_string());
    }
    if stored.objective != given.objective {
        return mismatch(
            "objective",
            stored.objective.clone(),
            given.objective.clone(),
        );
    }
    Ok(())
}

/// A study's coordinator: the connection that holds the study's advisory lock. Give it to
/// [`Search::run_study`](crate::Search::run_study) with the strategy the study was created
/// with (the study checks the names, configurations and seed recorded in its [`StudySpec`];
/// that the strategy object matches them is the caller's part: build it from the same
/// values). The lock is a PostgreSQL session lock and workers wait on `LISTEN`: connect
/// directly or through a session-mode pooler, not a transaction-mode one (PgBouncer's
/// `pool_mode=transaction`).
pub struct Coordinator {
    pub(crate) url: ConnectionString,
    pub(crate) client: Client,
    pub(crate) study: StudyRow,
    pub(crate) options: CoordinatorOptions,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("study", &self.study.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Connects, creates the study or checks that the existing one matches `spec`, and takes
    /// its coordinator lock. A study that was finished is opened again (a larger trial budget
    /// goes on from where it stopped).
    pub fn open(
        url: &ConnectionString,
        spec: &StudySpec,
        options: CoordinatorOptions,
    ) -> Result<Self, StudyError> {
        options.check()?;
        if spec.name.is_empty() {
            return Err(StudyError::InvalidOption {
                field: "name",
                reason: "a study needs a name".into(),
            });
        }
        let url = &url.named(&format!("nas coordinator {}", spec.name));
        let mut client = schema::connect(url)?;
        let db = |during: &'static str| move |e: postgres::Error| StudyError::db(during, &e);
        client
            .execute(
                "INSERT INTO nas_studies (name, space, space_config, strategy, strategy_config, \
                 seed, objective, grace_seconds, max_retries) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING",
                &[
                    &spec.name,
                    &spec.space,
                    &spec.space_config,
                    &spec.strategy,
                    &spec.strategy_config,
                    &(spec.seed as i64),
                    &spec.objective,
                    &options.grace.as_secs_f64(),
                    &(options.max_retries as i32),
                ],
            )
            .map_err(db("creating the study"))?;
        let study = find_study(&mut client, &spec.name)?.ok_or_else(|| StudyError::Database {
            during: "creating the study",
            reason: "the study vanished right after it was created".into(),
        })?;
        check_spec(&study.spec, spec)?;
        lock(&mut client, &study)?;
        // Workers reap stale trials with the coordinator's settings.
        client
            .execute(
                "UPDATE nas_studies SET state = 'RUNNING', grace_seconds = $2, max_retries = $3 \
                 WHERE id = $1",
                &[
                    &study.id,
                    &options.grace.as_secs_f64(),
                    &(options.max_retries as i32),
                ],
            )
            .map_err(db("opening the study"))?;
        Ok(Self {
            url: url.clone(),
            client,
            study,
            options,
        })
    }

    /// The study's name.
    pub fn study(&self) -> &str {
        &self.study.name
    }

    /// The study's seed (its strategy's).
    pub fn seed(&self) -> u64 {
        self.study.spec.seed
    }

    /// The options it runs with.
    pub fn options(&self) -> &CoordinatorOptions {
        &self.options
    }
}

/// Takes the study's coordinator lock on `client`'s session.
pub(crate) fn lock(client: &mut Client, study: &StudyRow) -> Result<(), StudyError> {
    let key = i32::try_from(study.id).map_err(|_| StudyError::Database {
        during: "locking the study",
        reason: format!("study id {} does not fit an advisory lock key", study.id),
    })?;
    let locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&schema::LOCK_SPACE, &key],
        )
        .map_err(|e| StudyError::db("locking the study", &e))?
        .get(0);
    if locked {
        Ok(())
    } else {
        Err(StudyError::CoordinatorRunning {
            study: study.name.clone(),
        })
    }
}

/// A trial's state as the database writes it.
pub(crate) fn state_name(outcome: &crate::Outcome) -> &'static str {
    match outcome {
        crate::Outcome::Complete(_) => "COMPLETE",
        crate::Outcome::Pruned(_) => "PRUNED",
        crate::Outcome::Failed(_) => "FAILED",
    }
}
