//! One search shared through a real PostgreSQL server: a coordinator and worker processes.
//!
//! Needs `NAS_TEST_DATABASE_URL` (`scripts/with-postgres` starts a throwaway server and sets
//! it); without it the tests skip with a message, or fail with `NAS_REQUIRE_DATA=1` (CI).
//! Worker and coordinator processes are this test binary run again with `role_process` and
//! their role in the environment.

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nas::estimate::{Budget, EstimateError, Metrics};
use nas::space::SearchSpace;
use nas::space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas::strategy::observe::{Observer, StartInfo};
use nas::strategy::study::{
    ConnectionString, Coordinator, CoordinatorOptions, StudyError, StudySpec, Worker, WorkerOptions,
};
use nas::strategy::{Outcome, RegularizedEvolution, RegularizedEvolutionConfig, Search};
use postgres::{Client, NoTls};

const URL_VAR: &str = "NAS_TEST_DATABASE_URL";

/// The test database, or `None` (skip) when no server was given.
fn database() -> Option<ConnectionString> {
    match std::env::var(URL_VAR) {
        Ok(_) => Some(ConnectionString::from_env(URL_VAR).expect("a valid test URL")),
        Err(_) => {
            support::data_missing(&format!(
                "{URL_VAR} is not set: run the tests under scripts/with-postgres"
            ));
            None
        }
    }
}

fn admin() -> Client {
    Client::connect(&std::env::var(URL_VAR).unwrap(), NoTls).expect("the test database")
}

/// A study name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn rea_config() -> RegularizedEvolutionConfig {
    RegularizedEvolutionConfig {
        population_size: 6,
        sample_size: 3,
    }
}

fn spec(name: &str, seed: u64) -> StudySpec {
    StudySpec::new(name, &Nb201Space::default())
        .strategy("regularized_evolution", &rea_config(), seed)
        .unwrap()
        .objective("convolutions")
}

/// A deterministic objective (3x3 convolutions, then 1x1 ones), slept on for `sleep`.
fn objective(arch: &Nb201Arch, sleep: Duration) -> Result<Metrics, EstimateError> {
    std::thread::sleep(sleep);
    let count = |op| arch.edges.iter().filter(|&&o| o == op).count() as f64;
    Ok(Metrics::new(
        count(Nb201Op::NorConv3x3) + 0.1 * count(Nb201Op::NorConv1x1),
    ))
}

fn coordinator_options(in_flight: usize, grace: Duration) -> CoordinatorOptions {
    CoordinatorOptions {
        in_flight,
        grace,
        max_retries: 2,
        poll: Duration::from_millis(200),
        reconnect: Duration::from_secs(5),
    }
}

fn worker_options() -> WorkerOptions {
    WorkerOptions {
        heartbeat: Duration::from_millis(200),
        wait_for_study: Duration::from_secs(60),
        idle_poll: Duration::from_millis(200),
        max_trials: None,
        reconnect: Duration::from_secs(5),
    }
}

/// Runs a coordinator here, to the end.
fn coordinate(
    url: &ConnectionString,
    name: &str,
    trials: usize,
    options: CoordinatorOptions,
) -> Outcome2 {
    struct Replayed<'a>(&'a mut usize);
    impl<A> Observer<A> for Replayed<'_> {
        fn on_start(&mut self, info: &StartInfo) {
            *self.0 = info.replayed;
        }
    }
    // A coordinator killed a moment ago may still hold the lock (its session not ended yet).
    let start = Instant::now();
    let coordinator = loop {
        match Coordinator::open(url, &spec(name, 7), options.clone()) {
            Ok(c) => break c,
            Err(StudyError::CoordinatorRunning { .. })
                if start.elapsed() < Duration::from_secs(20) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("coordinator: {e}"),
        }
    };
    let space = Nb201Space::default();
    let mut rea = RegularizedEvolution::new(rea_config(), 7).unwrap();
    let mut replayed = 0;
    let result = Search::new(&space, &mut rea)
        .trials(trials)
        .observer(Replayed(&mut replayed))
        .run_study(coordinator)
        .expect("the study finishes");
    (result, replayed)
}

/// A study's result, and how many trials its coordinator replayed.
type Outcome2 = (nas::strategy::search::SearchResult<Nb201Arch>, usize);

/// [`coordinate`] in a thread of its own; [`finish`] waits for it, and fails the test instead
/// of hanging when the study does not finish within two minutes.
fn coordinate_in_thread(
    url: &ConnectionString,
    name: &str,
    trials: usize,
    options: CoordinatorOptions,
) -> std::sync::mpsc::Receiver<Outcome2> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, name) = (url.clone(), name.to_string());
    std::thread::spawn(move || {
        let _ = tx.send(coordinate(&url, &name, trials, options));
    });
    rx
}

fn finish(rx: std::sync::mpsc::Receiver<Outcome2>) -> Outcome2 {
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the study finishes within two minutes")
}

/// The trial that the killed worker `worker` was running (its row still says so).
fn lost_trial(client: &mut Client, name: &str, worker: i64) -> i64 {
    client
        .query_one(
            "SELECT t.trial_id FROM nas_trials t JOIN nas_studies s ON s.id = t.study_id \
             WHERE s.name = $1 AND t.state = 'RUNNING' AND t.worker_id = $2",
            &[&name, &worker],
        )
        .expect("the killed worker's trial is still running")
        .get(0)
}

/// Waits for a running trial of study `name`; returns its worker's id and process id.
fn running_worker(client: &mut Client, name: &str) -> (i64, i32) {
    let start = Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT w.id, w.pid FROM nas_trials t \
                 JOIN nas_studies s ON s.id = t.study_id JOIN nas_workers w ON w.id = t.worker_id \
                 WHERE s.name = $1 AND t.state = 'RUNNING' ORDER BY t.trial_id LIMIT 1",
                &[&name],
            )
            .ok()
            .flatten(); // (the tables may not exist yet)
        if let Some(r) = row {
            return (r.get(0), r.get(1));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no trial started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs the child whose process id is `pid`.
fn kill(children: &mut Children, pid: i32) {
    let victim = children
        .0
        .iter()
        .position(|c| c.id() == pid as u32)
        .expect("the worker is one of ours");
    let mut killed = children.0.remove(victim);
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
}

/// Child processes, killed if the test ends early.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Children {
    /// Waits for every child to exit, each within `limit`; all must succeed.
    fn wait_all(&mut self, limit: Duration) {
        let start = Instant::now();
        for c in &mut self.0 {
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(status.success(), "a child process failed: {status}");
                    break;
                }
                assert!(start.elapsed() < limit, "a child process did not exit");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Starts this binary as a `role` process of study `name`.
fn spawn(role: &str, name: &str, sleep_ms: u64, trials: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["role_process", "--exact", "--ignored", "--nocapture"])
        .env("NAS_STUDY_ROLE", role)
        .env("NAS_STUDY_NAME", name)
        .env("NAS_STUDY_SLEEP_MS", sleep_ms.to_string())
        .env("NAS_STUDY_TRIALS", trials.to_string())
        // The harness's own summary lines would read as this binary's.
        .stdout(Stdio::null())
        .spawn()
        .expect("start a child process")
}

/// The worker and coordinator processes of the tests below (started by them, not by hand).
#[test]
#[ignore = "a worker or coordinator process, started by the other tests"]
fn role_process() {
    let role = std::env::var("NAS_STUDY_ROLE").expect("started by a test");
    let name = std::env::var("NAS_STUDY_NAME").unwrap();
    let sleep = Duration::from_millis(
        std::env::var("NAS_STUDY_SLEEP_MS")
            .unwrap()
            .parse()
            .unwrap(),
    );
    let trials: usize = std::env::var("NAS_STUDY_TRIALS").unwrap().parse().unwrap();
    let url = ConnectionString::from_env(URL_VAR).unwrap();
    match role.as_str() {
        "worker" => {
            let mut worker =
                Worker::open(&url, &name, &Nb201Space::default(), worker_options()).unwrap();
            let mut estimator = |a: &Nb201Arch, _: &Budget| -> Result<Metrics, EstimateError> {
                objective(a, sleep)
            };
            let summary = worker.run(&mut estimator).unwrap();
            eprintln!("worker {summary:?}");
        }
        "coordinator" => {
            let (result, _) = coordinate(
                &url,
                &name,
                trials,
                coordinator_options(3, Duration::from_secs(3)),
            );
            eprintln!("coordinator: {} trials", result.trials.len());
        }
        other => panic!("unknown role {other}"),
    }
}

/// One trial of the study: (trial id, state, worker, retries, tell number).
type Row = (i64, String, Option<i64>, i32, Option<i64>);

/// The study's trials, by trial id.
fn rows(name: &str) -> Vec<Row> {
    admin()
        .query(
            "SELECT t.trial_id, t.state, t.worker_id, t.retries, t.told_seq FROM nas_trials t \
             JOIN nas_studies s ON s.id = t.study_id WHERE s.name = $1 ORDER BY t.trial_id",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Every trial 0..n finished exactly once, and was told exactly once, in tells 1..n.
fn assert_exactly_once(
    name: &str,
    result: &nas::strategy::search::SearchResult<Nb201Arch>,
    n: usize,
) {
    let ids: Vec<u64> = result.trials.iter().map(|t| t.id).collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), n, "{ids:?}");
    assert_eq!(distinct, (0..n as u64).collect(), "{ids:?}");
    assert!(
        result
            .trials
            .iter()
            .all(|t| matches!(t.outcome, Outcome::Complete(_)))
    );
    let rows = rows(name);
    assert_eq!(rows.len(), n);
    let tells: BTreeSet<i64> = rows.iter().filter_map(|r| r.4).collect();
    assert_eq!(tells, (1..=n as i64).collect());
    assert!(rows.iter().all(|r| r.1 == "COMPLETE"), "{rows:?}");
}

#[test]
fn three_worker_processes_finish_exactly_the_requested_trials() {
    let Some(url) = database() else { return };
    let name = unique("three");
    let mut workers = Children((0..3).map(|_| spawn("worker", &name, 50, 0)).collect());
    let (result, replayed) = finish(coordinate_in_thread(
        &url,
        &name,
        24,
        coordinator_options(4, Duration::from_secs(5)),
    ));
    assert_eq!(replayed, 0);
    assert_exactly_once(&name, &result, 24);
    // The study is done: the workers leave by themselves.
    workers.wait_all(Duration::from_secs(30));
    let used: BTreeSet<usize> = result.trials.iter().map(|t| t.worker).collect();
    assert!(used.len() >= 2, "the trials were shared: {used:?}");
}

#[test]
fn a_killed_worker_s_trial_is_retried_and_nothing_is_lost_or_repeated() {
    let Some(url) = database() else { return };
    let name = unique("sigkill");
    let mut workers = Children((0..3).map(|_| spawn("worker", &name, 700, 0)).collect());
    let coordinator = coordinate_in_thread(
        &url,
        &name,
        12,
        coordinator_options(3, Duration::from_secs(4)),
    );
    // Wait for a running trial, then SIGKILL its worker.
    let mut client = admin();
    let (worker, pid) = running_worker(&mut client, &name);
    kill(&mut workers, pid);
    let trial = lost_trial(&mut client, &name, worker);
    let result = finish(coordinator).0;
    assert_exactly_once(&name, &result, 12);
    let row = rows(&name).into_iter().find(|r| r.0 == trial).unwrap();
    assert_eq!(row.3, 1, "trial {trial} was handed out again once: {row:?}");
    assert_ne!(row.2, Some(worker), "another worker finished trial {trial}");
    workers.wait_all(Duration::from_secs(30));
}

#[test]
fn a_killed_coordinator_restarts_and_loses_no_finished_trial() {
    let Some(url) = database() else { return };
    let name = unique("restart");
    let mut children = Children(vec![spawn("coordinator", &name, 0, 20)]);
    children
        .0
        .extend((0..2).map(|_| spawn("worker", &name, 100, 0)));
    // Wait for some tells, then SIGKILL the coordinator.
    let start = Instant::now();
    let told = loop {
        let told: Vec<(i64, Option<f64>)> = admin()
            .query(
                "SELECT t.trial_id, t.objective FROM nas_trials t \
                 JOIN nas_studies s ON s.id = t.study_id \
                 WHERE s.name = $1 AND t.told_seq IS NOT NULL ORDER BY t.told_seq",
                &[&name],
            )
            .unwrap_or_default() // (the tables may not exist yet)
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if told.len() >= 6 {
            break told;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut coordinator = children.0.remove(0);
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    // A new coordinator (the same settings) replays the tells and finishes the study.
    // The same study settings, another in-flight limit: this coordinator asks other trials
    // after the last tell than the killed one did (the rows it does not ask again are
    // replaced or removed).
    let (result, replayed) = finish(coordinate_in_thread(
        &url,
        &name,
        20,
        coordinator_options(2, Duration::from_secs(3)),
    ));
    assert!(
        replayed >= told.len(),
        "{replayed} replayed, {} told",
        told.len()
    );
    assert_exactly_once(&name, &result, 20);
    for (id, objective) in &told {
        let record = result.trials.iter().find(|t| t.id == *id as u64).unwrap();
        assert_eq!(record.objective(), *objective, "trial {id}");
    }
    children.wait_all(Duration::from_secs(30));
}

#[test]
fn a_second_coordinator_is_refused_until_the_first_is_gone() {
    let Some(url) = database() else { return };
    let name = unique("second");
    let options = coordinator_options(2, Duration::from_secs(5));
    let first = Coordinator::open(&url, &spec(&name, 7), options.clone()).unwrap();
    let e = Coordinator::open(&url, &spec(&name, 7), options.clone()).unwrap_err();
    assert!(matches!(e, StudyError::CoordinatorRunning { .. }), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    drop(first);
    // The lock goes with the first coordinator's session.
    let start = Instant::now();
    loop {
        match Coordinator::open(&url, &spec(&name, 7), options.clone()) {
            Ok(_) => break,
            Err(StudyError::CoordinatorRunning { .. })
                if start.elapsed() < Duration::from_secs(10) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn bad_urls_and_other_studies_are_clear_errors() {
    let Some(url) = database() else { return };
    // A server that is not there: the message names the source, never the password.
    let gone =
        ConnectionString::new("postgresql://nas:s3cret@127.0.0.1:1/nas", "a test string").unwrap();
    let e = Coordinator::open(&gone, &spec("x", 0), CoordinatorOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StudyError::Connect { .. }), "{msg}");
    assert!(
        msg.contains("a test string") && !msg.contains("s3cret"),
        "{msg}"
    );
    assert!(!format!("{gone:?}").contains("s3cret"));
    // Malformed strings, and a string on the command line.
    let e =
        ConnectionString::new("postgresql://nas:s3cret@host:port/db", "a test string").unwrap_err();
    assert!(
        matches!(e, StudyError::InvalidUrl { .. }) && !e.to_string().contains("s3cret"),
        "{e}"
    );
    let e = ConnectionString::from_source("postgresql://nas:s3cret@host/db").unwrap_err();
    assert!(
        e.to_string().contains("env:VARIABLE or file:PATH") && !e.to_string().contains("s3cret"),
        "{e}"
    );
    // Another library's URL form: the parser would quote it back, the message does not.
    let e = ConnectionString::new(
        "postgresql+psycopg2://nas:s3cret@db/nas?sslmode=require",
        "a test string",
    )
    .unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
    let e = ConnectionString::from_env("NAS_TEST_NO_SUCH_VARIABLE").unwrap_err();
    assert!(e.to_string().contains("NAS_TEST_NO_SUCH_VARIABLE"), "{e}");

    // A study of another space, seed or strategy.
    let name = unique("other");
    let coordinator = Coordinator::open(
        &url,
        &spec(&name, 7),
        coordinator_options(2, Duration::from_secs(5)),
    )
    .unwrap();
    let darts = nas::space::darts::DartsSpace::default();
    let e = Worker::open(&url, &name, &darts, worker_options()).unwrap_err();
    assert!(
        matches!(&e, StudyError::Mismatch { field: "space", .. })
            && e.to_string().contains(darts.name()),
        "{e}"
    );
    drop(coordinator);
    let e = Coordinator::open(&url, &spec(&name, 8), CoordinatorOptions::default()).unwrap_err();
    assert!(
        matches!(e, StudyError::Mismatch { field: "seed", .. }),
        "{e}"
    );
    let other = StudySpec::new(&name, &Nb201Space::default())
        .strategy("random", &(), 7)
        .unwrap()
        .objective("convolutions");
    let e = Coordinator::open(&url, &other, CoordinatorOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            StudyError::Mismatch {
                field: "strategy",
                ..
            }
        ),
        "{e}"
    );
    // A worker of a study that never appears.
    let quick = WorkerOptions {
        wait_for_study: Duration::from_millis(100),
        ..worker_options()
    };
    let e = Worker::open(&url, &unique("missing"), &Nb201Space::default(), quick).unwrap_err();
    assert!(matches!(e, StudyError::NoStudy { .. }), "{e}");
    // A search with a journal or another seed is refused before anything runs.
    let coordinator = Coordinator::open(
        &url,
        &spec(&name, 7),
        coordinator_options(2, Duration::from_secs(5)),
    )
    .unwrap();
    let space = Nb201Space::default();
    let mut rea = RegularizedEvolution::new(rea_config(), 7).unwrap();
    let e = Search::new(&space, &mut rea)
        .trials(3)
        .seed(9)
        .run_study(coordinator)
        .unwrap_err();
    assert!(e.to_string().contains("seed"), "{e}");
}

#[test]
fn a_database_of_another_schema_version_is_refused() {
    let Some(_) = database() else { return };
    let db = format!("nas_version_{}", std::process::id());
    let mut client = admin();
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    let base = std::env::var(URL_VAR).unwrap();
    let other = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    let mut c = Client::connect(&other, NoTls).unwrap();
    c.batch_execute(
        "CREATE TABLE nas_schema (version integer NOT NULL); INSERT INTO nas_schema VALUES (999)",
    )
    .unwrap();
    drop(c);
    let url = ConnectionString::new(&other, "the version test").unwrap();
    let e = Coordinator::open(&url, &spec("v", 0), CoordinatorOptions::default()).unwrap_err();
    assert!(
        matches!(e, StudyError::SchemaVersion { found: 999, .. }),
        "{e}"
    );
    client
        .batch_execute(&format!("DROP DATABASE {db}"))
        .unwrap();
}

#[test]
fn a_trial_whose_worker_is_lost_past_its_retries_fails_and_the_search_goes_on() {
    let Some(url) = database() else { return };
    let name = unique("retries");
    let mut workers = Children((0..2).map(|_| spawn("worker", &name, 700, 0)).collect());
    let options = CoordinatorOptions {
        max_retries: 0,
        ..coordinator_options(2, Duration::from_secs(4))
    };
    let coordinator = coordinate_in_thread(&url, &name, 6, options);
    let mut client = admin();
    let (worker, pid) = running_worker(&mut client, &name);
    kill(&mut workers, pid);
    let trial = lost_trial(&mut client, &name, worker);
    let result = finish(coordinator).0;
    let ids: BTreeSet<u64> = result.trials.iter().map(|t| t.id).collect();
    assert_eq!(result.trials.len(), 6);
    assert_eq!(ids, (0..6).collect());
    for t in &result.trials {
        match &t.outcome {
            Outcome::Failed(why) if t.id == trial as u64 => {
                assert!(why.contains("stopped sending heartbeats"), "{why}");
            }
            Outcome::Complete(_) if t.id != trial as u64 => {}
            other => panic!("trial {}: {other:?}", t.id),
        }
    }
    workers.wait_all(Duration::from_secs(30));
}

#[test]
fn connections_dropped_by_the_server_are_reopened_and_the_study_completes() {
    let Some(url) = database() else { return };
    let name = unique("dropped");
    let mut workers = Children((0..2).map(|_| spawn("worker", &name, 100, 0)).collect());
    let coordinator = coordinate_in_thread(
        &url,
        &name,
        20,
        coordinator_options(3, Duration::from_secs(5)),
    );
    let mut client = admin();
    let start = Instant::now();
    loop {
        let told: i64 = client
            .query_one(
                "SELECT count(*) FROM nas_trials t JOIN nas_studies s ON s.id = t.study_id \
                 WHERE s.name = $1 AND t.told_seq IS NOT NULL",
                &[&name],
            )
            .map_or(0, |r| r.get(0));
        if told >= 5 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server ends every session of the study: the coordinator's (and its lock), the
    // workers' and their heartbeats'.
    let ended: i64 = client
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name IN ($1, $2)",
            &[
                &format!("nas coordinator {name}"),
                &format!("nas worker {name}"),
            ],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 3, "{ended} sessions ended");
    let result = finish(coordinator).0;
    assert_exactly_once(&name, &result, 20);
    workers.wait_all(Duration::from_secs(30));
}
