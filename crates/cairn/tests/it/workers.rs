//! Backups handed to workers (`cairn worker`) through NATS JetStream, with the catalog on
//! PostgreSQL and one repository: a worker killed with SIGKILL in the middle of a resource
//! has its task finished by another, exactly once; three workers together stay within the
//! limits Microsoft sets per app. NATS runs at 127.0.0.1:4222 (`CAIRN_TEST_NATS_URL`
//! elsewhere), PostgreSQL as for the shared catalog's tests.

use super::Child;
use super::compliance::Tenant;
use super::config::s;
use super::shared_catalog::{Schema, server};
use cairn_testkit::{stderr, stdout};
use serde_json::Value;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) fn nats_server() -> String {
    std::env::var("CAIRN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A catalog schema and a queue of the test's own (named alike); tasks are given to another
/// worker after 3 s without a heartbeat.
struct Shared {
    schema: Schema,
}

impl Shared {
    fn new(test: &str) -> Shared {
        Shared {
            schema: Schema::new(test),
        }
    }

    fn catalog(&self) -> String {
        self.schema.url()
    }

    fn nats(&self) -> String {
        format!("{}?queue={}&ack-wait=3", nats_server(), self.schema.0)
    }

    /// `cairn ARGS` with the shared catalog and the queue, in a cache directory of its own.
    fn cmd(&self, t: &Tenant, cache: &str) -> Command {
        let mut c = t.home.cmd();
        c.env("CAIRN_CATALOG", self.catalog())
            .env("CAIRN_NATS", self.nats())
            .env("CAIRN_CACHE_DIR", t.home.path(cache));
        c
    }

    /// `psql -tAc SQL` in the test's schema: the single value it prints.
    fn sql(&self, sql: &str) -> String {
        let o = Command::new("psql")
            .args([
                &server(),
                "-qtAc",
                &format!("SET search_path TO {}; {sql}", self.schema.0),
            ])
            .output()
            .expect("psql runs");
        assert!(o.status.success(), "{sql}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    }
}

/// A `cairn worker` child and the lines it has written to stderr.
pub(crate) struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn start(t: &Tenant, shared: &Shared, name: &str, parallel: usize) -> Worker {
        let mut c = shared.cmd(t, &format!("worker-{name}"));
        c.args(["worker", "--parallel", &parallel.to_string()]);
        Worker::spawn(c)
    }

    /// `c` (`cairn worker …`), once it says it takes tasks.
    pub fn spawn(mut c: Command) -> Worker {
        let mut child = Child(
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cairn worker runs"),
        );
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let err = child.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        let w = Worker { child, lines };
        w.wait_for("taking tasks", |l| l.contains("taking tasks from"), 1);
        w
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `n` lines match (at most a minute); panics with the lines otherwise.
    pub fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool, n: usize) {
        let start = Instant::now();
        while self.lines().iter().filter(|l| f(l)).count() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {what} from the worker: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `cairn backup` of every user's `services` handed to the workers, started in the
/// background.
fn dispatch(t: &Tenant, shared: &Shared, services: &str) -> std::process::Child {
    shared
        .cmd(t, "dispatcher")
        .args([
            "backup", "--users", "all", "--groups", "none", "--sites", "none",
        ])
        .args(["--services", services, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cairn backup runs")
}

fn report(child: std::process::Child) -> Value {
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "cairn backup: {}{}",
        stdout(&o),
        stderr(&o)
    );
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// The simulator's statistics.
fn sim_stats(t: &Tenant) -> Value {
    serde_json::from_str(&super::curl(&["-s", &format!("{}/_sim/stats", t.url)])).unwrap()
}

/// The sha256 of each message of `user` in the simulator (id → hash), by its manifest.
fn manifest_messages(t: &Tenant, user: &str) -> BTreeMap<String, usize> {
    let who = t.json(&["graph", "get", &format!("/users/{user}?$select=id")]);
    let id = who["id"].as_str().unwrap();
    let m: Value = serde_json::from_str(&super::curl(&[
        "-s",
        &format!("{}/_sim/manifest?resource={id}", t.url),
    ]))
    .unwrap();
    let mut out = BTreeMap::new();
    for e in m.as_array().unwrap() {
        if e["kind"] == "message" {
            *out.entry(e["sha256"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}

/// The sha256 of each `.eml` in a snapshot, as the `restic` tool restores it.
fn snapshot_messages(t: &Tenant, snapshot: &str) -> BTreeMap<String, usize> {
    let dir = t.home.path(&format!("restored-{snapshot}"));
    let o = Command::new("restic")
        .args(["-r", s(&t.home.path("repo")), "restore", snapshot])
        .args(["--target", s(&dir)])
        .env("RESTIC_PASSWORD", "repository password")
        .output()
        .expect("the restic command line tool is needed (apt-get install restic)");
    assert!(o.status.success(), "restic restore: {}", stderr(&o));
    let mut out = BTreeMap::new();
    let mut todo = vec![dir];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()));
                *out.entry(sha).or_default() += 1;
            }
        }
    }
    out
}

#[test]
fn a_worker_killed_in_the_middle_of_a_resource_has_its_task_finished_by_another() {
    // Slow enough (100 ms per response) that a mailbox takes seconds.
    let t = Tenant::simulating(&[
        "--users",
        "3",
        "--seed",
        "7",
        "--mail-per-mailbox",
        "150",
        "--files-per-drive",
        "0",
        "--latency-ms",
        "100",
    ]);
    let shared = Shared::new("workers_kill");
    let users = t.users();
    let first = Worker::start(&t, &shared, "first", 8);
    let run = dispatch(&t, &shared, "mail");
    // Every resource is taken by the first worker; once its mailboxes are being read, it
    // is killed.
    first.wait_for("task", |l| l.starts_with("started user"), users.len());
    std::thread::sleep(Duration::from_millis(2500));
    let lines = first.lines();
    let in_flight: Vec<&String> = users
        .iter()
        .filter(|u| {
            lines
                .iter()
                .any(|l| l.starts_with("started") && l.contains(u.as_str()))
                && !lines
                    .iter()
                    .any(|l| l.starts_with("done") && l.contains(u.as_str()))
        })
        .collect();
    assert!(
        !in_flight.is_empty(),
        "the first worker finished everything before it could be killed: {lines:#?}"
    );
    let fetched_before = sim_stats(&t)["requests_total"].as_u64().unwrap();
    let Worker {
        child: mut killed, ..
    } = first;
    killed.0.kill().unwrap(); // SIGKILL
    killed.0.wait().unwrap();

    let second = Worker::start(&t, &shared, "second", 8);
    let report = report(run);
    let resources = report["resources"].as_array().unwrap();
    assert_eq!(resources.len(), users.len(), "{report:#}");
    for r in resources {
        assert!(r["error"].is_null(), "{r:#}");
    }
    // The killed worker's tasks went to the second one, which says so.
    let taken = second.lines();
    for u in &in_flight {
        assert!(
            taken
                .iter()
                .any(|l| l.contains("taken over") && l.contains(u.as_str())),
            "{u} was not taken over: {taken:#?}"
        );
    }
    assert!(sim_stats(&t)["requests_total"].as_u64().unwrap() > fetched_before);

    // Each restore point holds exactly the simulator's messages.
    for r in resources.iter().filter(|r| !r["snapshot"].is_null()) {
        let user = r["resource"].as_str().unwrap();
        let want = manifest_messages(&t, user);
        let got = snapshot_messages(&t, r["snapshot"].as_str().unwrap());
        assert_eq!(
            got, want,
            "{user}: the restore point differs from the manifest"
        );
    }
    // Nothing duplicated or left over in the catalog: one point per resource, one version
    // of an item per point, nothing staged.
    assert_eq!(
        shared.sql("SELECT count(*) FROM (SELECT resource FROM points GROUP BY resource HAVING count(*) > 1) d"),
        "0"
    );
    assert_eq!(
        shared.sql(
            "SELECT count(*) FROM (SELECT resource, item FROM versions WHERE last IS NULL GROUP BY resource, item HAVING count(*) > 1) d"
        ),
        "0"
    );
    assert_eq!(shared.sql("SELECT count(*) FROM staged"), "0");
    let points: usize = shared.sql("SELECT count(*) FROM points").parse().unwrap();
    assert_eq!(
        points,
        resources
            .iter()
            .filter(|r| !r["snapshot"].is_null())
            .count()
    );
    // And the repository, written by two workers, checks clean.
    let check = shared
        .cmd(&t, "dispatcher")
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
}

#[test]
fn three_workers_never_ask_more_of_one_tenant_than_microsoft_allows_one_app() {
    // A SharePoint budget three workers pacing alone would each spend in full.
    let budget = 20;
    let t = Tenant::simulating(&[
        "--users",
        "4",
        "--seed",
        "11",
        "--mail-per-mailbox",
        "20",
        "--files-per-drive",
        "4",
        "--latency-ms",
        "30",
        "--sharepoint-ru-per-min",
        &budget.to_string(),
    ]);
    let config = std::fs::read_to_string(t.home.config()).unwrap();
    assert!(config.contains("[tenants.contoso]"), "{config}");
    std::fs::write(
        t.home.config(),
        config.replace(
            "[tenants.contoso]",
            &format!("[tenants.contoso]\nfiles-ru-per-min = {budget}"),
        ),
    )
    .unwrap();
    let shared = Shared::new("workers_limits");
    let workers: Vec<Worker> = ["a", "b", "c"]
        .iter()
        .map(|n| Worker::start(&t, &shared, n, 2))
        .collect();
    let run = dispatch(&t, &shared, "mail,onedrive");
    let report = report(run);
    for r in report["resources"].as_array().unwrap() {
        assert!(r["error"].is_null(), "{r:#}");
    }
    let busy = workers
        .iter()
        .filter(|w| w.lines().iter().any(|l| l.starts_with("done")))
        .count();
    assert!(busy >= 2, "the tasks were not spread over the workers");
    let stats = sim_stats(&t);
    let peaks = &stats["peaks"];
    // The run needed more than one window's budget, so the workers had to share it.
    let files_requests: u64 = stats["by_endpoint"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("/drive") || k.contains("/_dl"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert!(
        files_requests > budget,
        "only {files_requests} OneDrive requests: {stats:#}"
    );
    assert!(
        peaks["files_ru_per_min"].as_u64().unwrap() <= budget,
        "the simulator saw more resource units in a minute than the budget: {stats:#}"
    );
    assert!(
        peaks["mailbox_concurrency"].as_u64().unwrap() <= 4,
        "the simulator saw more concurrent requests on a mailbox than 4: {stats:#}"
    );
    assert!(
        peaks["mailbox_concurrency"].as_u64().unwrap() >= 1,
        "{stats:#}"
    );
}
