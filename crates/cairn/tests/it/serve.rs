//! `cairn serve` as an administrator runs it: a job in the configuration file runs on its
//! own, retention follows each run, the API shows the runs; roles and four-eyes keep a
//! single token from destroying backups; the CLI will not write behind the server's back;
//! SIGTERM stops it.

use super::config::s;
use super::home;
use cairn_sim::TenantSpec;
use cairn_testkit::{Home, SimTenant, ok, stderr, stdout};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A `cairn serve` child, killed when the test ends however it ends.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(home: &Home) -> Server {
    let mut child = home
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CAIRN_LOG", "info,cairn_server=debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    // Keep draining: a full pipe would block the server.
    std::thread::spawn(move || lines.for_each(drop));
    Server {
        child,
        url: url.expect("the server says where it listens"),
    }
}

struct Api<'a> {
    rt: &'a tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self
                .http
                .request(method.parse().unwrap(), format!("{}{path}", self.url))
                .bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    fn get(&self, path: &str, token: &str) -> Value {
        let (status, v) = self.call("GET", path, token, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

/// What an administrator does before `cairn serve`: the simulated tenant added as
/// `contoso` (signing in), a repository created with `password`.
fn tenant_and_repository(home: &Home, sim: &SimTenant, password: &str) {
    let c = sim.config();
    let secret = home.write("secrets/contoso", &c.client_secret);
    let url = sim.url();
    ok(&home
        .cmd()
        .args(["tenant", "add", "contoso", "--tenant-id", &c.tenant_id])
        .args([
            "--client-id",
            &c.client_id,
            "--client-secret-file",
            s(&secret),
        ])
        .args(["--graph-url", &url, "--login-url", &url])
        .output()
        .unwrap());
    super::config::init_repository(home, password);
}

fn token(home: &Home, name: &str, role: &str) -> String {
    let out = home
        .cmd()
        .args(["token", "create", "--name", name, "--role", role])
        .output()
        .unwrap();
    ok(&out);
    let t = stdout(&out).trim().to_string();
    assert!(
        t.starts_with("cairn_") && !t.contains(char::is_whitespace),
        "{t}"
    );
    t
}

#[test]
fn a_job_runs_on_its_own_and_destruction_needs_two_admins() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = TenantSpec {
        seed: 31,
        users: 2,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 20,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..TenantSpec::default()
    };
    let sim = rt.block_on(SimTenant::start(spec));
    let home = home();
    tenant_and_repository(&home, &sim, "served");
    let users: Value = serde_json::from_str(&stdout(&home.run(&[
        "graph",
        "get",
        "/users?$select=userPrincipalName",
    ])))
    .unwrap();
    let upn = users["value"][0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_string();
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        format!(
            "{config}\n[jobs.quick]\ntenant = \"contoso\"\nevery = \"4s\"\nusers = \"{upn}\"\ngroups = \"none\"\nsites = \"none\"\nservices = [\"mail\"]\nkeep-last = 2\n"
        ),
    )
    .unwrap();
    let admin = token(&home, "ann", "admin");
    let admin2 = token(&home, "bob", "admin");
    let operator = token(&home, "ops", "backup-operator");
    let auditor = token(&home, "audit", "auditor");

    let server = start(&home);
    let api = Api {
        rt: &rt,
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };

    // Two runs on its own: a full one, then an incremental one that fetches nothing.
    let deadline = Instant::now() + Duration::from_secs(90);
    let runs = loop {
        let runs = api.get("/api/v1/jobs/quick/runs", &auditor);
        let done: Vec<&Value> = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "running")
            .collect();
        if done.len() >= 2 {
            break runs;
        }
        assert!(Instant::now() < deadline, "no two runs in time: {runs}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let runs = runs.as_array().unwrap();
    let finished: Vec<&Value> = runs.iter().filter(|r| r["status"] != "running").collect();
    let (second, first) = (finished[0], finished[1]);
    assert!(
        second["id"].as_i64() > first["id"].as_i64(),
        "newest first: {runs:?}"
    );
    for r in [first, second] {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert!(r["started"].is_string() && r["finished"].is_string(), "{r}");
    }
    assert!(first["fetched"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(
        second["fetched"], 0,
        "the second run is incremental: {second}"
    );
    let detail = api.get(&format!("/api/v1/runs/{}", first["id"]), &auditor);
    let results = detail["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{detail}");
    assert_eq!(results[0]["resource"], upn.as_str());
    assert_eq!(results[0]["ok"], true);
    assert!(results[0]["items"].as_u64().unwrap() > 10, "{detail}");
    // keep-last = 2, applied after each run: never more than two points.
    let points = api.get(&format!("/api/v1/restore-points?resource={upn}"), &auditor);
    assert_eq!(points.as_array().unwrap().len(), 2, "{points}");

    // The CLI does not write behind the server's back.
    let behind = home.run(&[
        "backup", "--users", &upn, "--groups", "none", "--sites", "none",
    ]);
    assert_eq!(behind.status.code(), Some(2), "{}", stderr(&behind));
    assert!(
        stderr(&behind).contains("cairn serve"),
        "{}",
        stderr(&behind)
    );

    // Roles: no token, a wrong one, and roles that may not.
    let (status, body) = api.call("GET", "/api/v1/jobs", "cairn_wrong", None);
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["hint"].is_string(), "{body}");
    let forget = json!({"tenant": "contoso", "keep-last": 1});
    let (status, body) = api.call("POST", "/api/v1/forget", &operator, Some(forget.clone()));
    assert_eq!(status, 403, "a backup operator cannot forget: {body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = api.call("POST", "/api/v1/prune", &operator, None);
    assert_eq!(status, 403);
    let (status, _) = api.call("GET", "/api/v1/audit", &operator, None);
    assert_eq!(status, 403);
    let (status, _) = api.call("POST", "/api/v1/jobs/quick/run", &auditor, None);
    assert_eq!(status, 403, "an auditor cannot run jobs");

    // A legal hold keeps what retention would remove; releasing it takes two admins.
    let (status, v) = api.call(
        "POST",
        "/api/v1/holds",
        &auditor,
        Some(json!({"target": upn, "reason": "case 7"})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, hold) = api.call(
        "POST",
        "/api/v1/holds",
        &admin,
        Some(json!({"target": upn, "tenant": "contoso", "reason": "case 7"})),
    );
    assert_eq!(status, 201, "{hold}");
    let held_from = api.get("/api/v1/jobs/quick/runs", &auditor)[0]["id"]
        .as_i64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = api.get("/api/v1/jobs/quick/runs", &auditor);
        let after: Vec<&Value> = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"].as_i64().unwrap() > held_from && r["status"] == "succeeded")
            .collect();
        if after.len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no runs after the hold: {runs}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let points = api.get(&format!("/api/v1/restore-points?resource={upn}"), &auditor);
    assert!(
        points.as_array().unwrap().len() >= 3,
        "held, keep-last = 1 removes nothing: {points}"
    );
    let (status, filed) = api.call(
        "DELETE",
        &format!("/api/v1/holds/{}", hold["id"].as_str().unwrap()),
        &admin,
        None,
    );
    assert_eq!(status, 202, "{filed}");
    let (status, v) = api.call(
        "POST",
        &format!("/api/v1/approvals/{}/approve", filed["id"]),
        &admin2,
        None,
    );
    assert_eq!(status, 200, "{v}");
    let holds = api.get("/api/v1/holds", &auditor);
    assert!(holds[0]["released"]["at"].is_string(), "{holds}");
    assert!(
        holds[0]["released"]["by"]
            .as_str()
            .unwrap()
            .contains("approved"),
        "{holds}"
    );

    // Four eyes: a forget filed by one admin does nothing until another approves it.
    let (status, v) = api.call(
        "PUT",
        "/api/v1/jobs/quick",
        &admin,
        Some(json!({"tenant": "contoso", "every": "1d"})),
    );
    assert_eq!(status, 409, "a job of the file is changed in the file: {v}");
    let held_points = |api: &Api| {
        api.get(&format!("/api/v1/restore-points?resource={upn}"), &auditor)
            .as_array()
            .unwrap()
            .len()
    };
    let (status, filed) = api.call(
        "POST",
        "/api/v1/forget",
        &admin,
        Some(json!({"tenant": "contoso", "resource": upn, "keep-last": 1})),
    );
    assert_eq!(status, 202, "{filed}");
    let id = filed["id"].as_i64().unwrap();
    let pending = api.get("/api/v1/approvals", &admin);
    assert_eq!(pending[0]["status"], "pending", "{pending}");
    let (status, body) = api.call(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        &admin,
        None,
    );
    assert_eq!(status, 403, "the same admin cannot approve: {body}");
    // The job keeps two points: a forget that had run when filed would leave one.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        held_points(&api) >= 2,
        "nothing forgotten before the approval"
    );
    let (status, body) = api.call(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        &admin2,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(body["approved_by"], "bob");
    let removed: u64 = body["outcome"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(removed >= 1, "forgotten once approved: {body}");
    let (status, _) = api.call(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        &admin2,
        None,
    );
    assert_eq!(status, 409, "done once");

    // The audit log has the calls that changed something, with who made them.
    let log = api.get("/api/v1/audit", &auditor);
    let text = log.to_string();
    assert!(
        text.contains("/api/v1/forget") && text.contains("ann") && text.contains("bob"),
        "{text}"
    );

    // Metrics, for Prometheus.
    let metrics = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/metrics", server.url))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(metrics.contains("cairn_backup_runs_total{"), "{metrics}");
    assert!(metrics.contains("job=\"quick\""), "{metrics}");
    // Read back by an independent parser: the Prometheus project's Python client.
    let mut parser = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families as parse\nprint(json.dumps([[s.name, s.labels, s.value] for f in parse(sys.stdin.read()) for s in f.samples]))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (pip install prometheus_client)");
    {
        use std::io::Write;
        parser
            .stdin
            .take()
            .unwrap()
            .write_all(metrics.as_bytes())
            .unwrap();
    }
    let parsed = parser.wait_with_output().unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let samples: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&parsed.stdout).unwrap();
    let runs: f64 = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "cairn_backup_runs_total" && l["job"] == "quick" && l["status"] == "succeeded"
        })
        .map(|(_, _, v)| v)
        .sum();
    assert!(runs >= 2.0, "{samples:?}");
    assert!(
        samples.iter().any(
            |(n, l, v)| n == "cairn_resource_last_success_timestamp_seconds"
                && l.get("resource") == Some(&upn)
                && *v > 1.7e9
        ),
        "{samples:?}"
    );

    // A token limited to another resource sees nothing of this one.
    let out = home
        .cmd()
        .args([
            "token",
            "create",
            "--name",
            "desk",
            "--role",
            "restore-operator",
        ])
        .args([
            "--tenant",
            "contoso",
            "--resource",
            "someone-else@contoso.example",
        ])
        .output()
        .unwrap();
    ok(&out);
    let desk = stdout(&out).trim().to_string();
    let points = api.get("/api/v1/restore-points", &desk);
    assert_eq!(points, json!([]), "{points}");
    let (status, v) = api.call("GET", &format!("/api/v1/ls?target={upn}"), &desk, None);
    assert_eq!(status, 404, "{v}");
    let (status, v) = api.call(
        "POST",
        "/api/v1/exports",
        &desk,
        Some(json!({"target": upn, "format": "eml"})),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = api.call(
        "POST",
        "/api/v1/restores",
        &desk,
        Some(json!({"target": upn})),
    );
    assert_eq!(status, 404, "{v}");

    // Restores and exports are tasks; an export is downloaded as one zip archive.
    let restorer = token(&home, "rita", "restore-operator");
    let (status, v) = api.call(
        "POST",
        "/api/v1/exports",
        &auditor,
        Some(json!({"target": upn, "format": "eml"})),
    );
    assert_eq!(status, 403, "an auditor reads no content: {v}");
    let (status, v) = api.call(
        "POST",
        "/api/v1/exports",
        &restorer,
        Some(json!({"target": "nobody@nowhere", "format": "eml"})),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = api.call(
        "POST",
        "/api/v1/exports",
        &restorer,
        Some(json!({"target": upn, "paths": ["mail/"], "format": "eml"})),
    );
    assert_eq!(status, 202, "{v}");
    let export = v["id"].as_u64().unwrap();
    let (status, v) = api.call(
        "POST",
        "/api/v1/restores",
        &restorer,
        Some(json!({"target": upn, "paths": ["mail/Inbox"], "to": "folder:Restored by API"})),
    );
    assert_eq!(status, 202, "{v}");
    let restore = v["id"].as_u64().unwrap();
    let done = |id: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = api.get(&format!("/api/v1/tasks/{id}"), &restorer);
            if t["status"] != "running" {
                return t;
            }
            assert!(Instant::now() < deadline, "task {id} did not end: {t}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let e = done(export);
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["download"], true, "{e}");
    let written = e["report"]["written"].as_u64().unwrap();
    assert!(written > 10, "{e}");
    let zip_bytes = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/v1/tasks/{export}/download", server.url))
            .bearer_auth(&restorer)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
    let emls = (0..zip.len())
        .filter(|i| zip.by_index(*i).unwrap().name().unwrap().ends_with(".eml"))
        .count() as u64;
    assert_eq!(emls, written);
    let r = done(restore);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert!(r["report"]["restored"].as_u64().unwrap() > 0, "{r}");
    let log = api.get("/api/v1/audit", &auditor).to_string();
    assert!(
        log.contains("/api/v1/tasks/{id}/download") && log.contains("rita"),
        "{log}"
    );

    // SIGTERM: it stops, and says so.
    let mut server = server;
    let pid = server.child.id();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");

    // The audit log's chain holds; an entry edited behind the server's back breaks it.
    ok(&home.run(&["audit", "verify"]));
    let catalog = std::fs::read_dir(home.path("xdg-cache/cairn/repositories"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("catalog.db");
    let edit = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE server_audit SET actor='mallory' WHERE seq=2\")\nc.commit()",
            catalog.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(edit.success());
    let broken = home.run(&["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1), "{}", stderr(&broken));
    let said = format!("{}{}", stdout(&broken), stderr(&broken));
    assert!(said.contains('2'), "{said}");
    rt.block_on(sim.stop());
}

/// schemathesis (PyPI) against the served OpenAPI document with an admin token: no 5xx,
/// and every response (status, content type, headers, body) conforms to the document.
#[test]
fn schemathesis_finds_every_response_as_documented() {
    let home = home();
    let secret = home.write("secrets/contoso", "s");
    // A tenant nobody answers for: the API is exercised, Graph is not.
    ok(&home
        .cmd()
        .args([
            "tenant",
            "add",
            "contoso",
            "--tenant-id",
            "t",
            "--client-id",
            "c",
        ])
        .args(["--client-secret-file", s(&secret), "--no-verify"])
        .args([
            "--graph-url",
            "http://127.0.0.1:9",
            "--login-url",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap());
    super::config::init_repository(&home, "fuzzed");
    let admin = token(&home, "fuzz", "admin");
    let server = start(&home);
    let out = std::process::Command::new("schemathesis")
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        .args(["-n", "25", "--seed", "7"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // Its cache of findings goes with the test's home, not into the source tree.
        .current_dir(home.path("."))
        .output()
        .expect("schemathesis is needed (pip install schemathesis)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    drop(server);
}

/// Files under a directory, recursively.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { files_under(&p) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// SIGTERM in the middle of a run, then a restart: the interrupted run's job runs again at
/// start-up, completes, and fetches again nothing that was already durable.
#[test]
fn a_run_stopped_by_sigterm_resumes_at_the_next_start() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = TenantSpec {
        seed: 41,
        users: 1,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 300,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..TenantSpec::default()
    };
    // Slow enough to be caught half-way.
    let sim = rt.block_on(SimTenant::start_with(spec, |c| {
        c.latency = Duration::from_millis(15);
    }));
    let home = home();
    tenant_and_repository(&home, &sim, "resumed");
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        format!("{config}\n[jobs.daily]\ntenant = \"contoso\"\nschedule = \"0 3 * * *\"\ngroups = \"none\"\nsites = \"none\"\nservices = [\"mail\"]\n"),
    )
    .unwrap();
    let admin = token(&home, "ann", "admin");
    let spool = home.path("xdg-cache/cairn/repositories");

    let mut server = start(&home);
    let api = Api {
        rt: &rt,
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let (status, started) = api.call("POST", "/api/v1/jobs/daily/run", &admin, None);
    assert_eq!(status, 202, "{started}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_under(&spool) < 60 {
        assert!(Instant::now() < deadline, "nothing spooled in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = server.child.wait().unwrap();
    assert!(stopped.success(), "{stopped:?}");
    drop(server);

    let before = rt.block_on(sim.stats());
    let server = start(&home);
    let api = Api {
        rt: &rt,
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let runs = api.get("/api/v1/jobs/daily/runs", &admin);
        if runs[0]["status"] == "succeeded" {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "the interrupted run did not complete: {runs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["trigger"], "startup", "{runs:?}");
    assert_eq!(runs[1]["status"], "failed");
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{runs:?}"
    );
    let after = rt.block_on(sim.stats());
    let label = "GET /users/{id}/messages/{id}/$value";
    let count = |s: &Value| s["by_endpoint"][label].as_u64().unwrap_or(0);
    let fetched_before = count(&before);
    let refetched = count(&after) - fetched_before;
    assert!(
        refetched + fetched_before <= 300 + 5,
        "{fetched_before} messages fetched before the stop, {refetched} after, 300 in all"
    );
    assert!(refetched < 300, "the second run resumed: {refetched}");
    drop(server);
    rt.block_on(sim.stop());
}

#[test]
fn a_local_account_made_with_cairn_user_signs_in_and_sees_the_jobs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let home = home();
    super::config::init_repository(&home, "served");
    let pw = home.write("secrets/ann", "a long enough passphrase\n");
    ok(&home.run(&[
        "user",
        "add",
        "ann",
        "--role",
        "admin",
        "--password-file",
        s(&pw),
    ]));
    let short = home.write("secrets/short", "short\n");
    let refused = home.run(&[
        "user",
        "add",
        "bob",
        "--role",
        "auditor",
        "--password-file",
        s(&short),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let list: Value =
        serde_json::from_str(&stdout(&home.run(&["user", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (list[0]["name"].as_str(), list[0]["role"].as_str()),
        (Some("ann"), Some("admin"))
    );
    assert!(
        !list.to_string().contains("argon2"),
        "no hash listed: {list}"
    );

    let server = start(&home);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = server.url.clone();
    let login = |password: &str| {
        let r = rt
            .block_on(
                http.post(format!("{url}/login/local"))
                    .form(&[("username", "ann"), ("password", password)])
                    .send(),
            )
            .unwrap();
        let cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        (r.status().as_u16(), cookies)
    };
    let (status, cookies) = login("not the passphrase");
    assert_eq!((status, cookies.len()), (401, 0));
    let (status, cookies) = login("a long enough passphrase");
    assert_eq!(status, 303, "{cookies:?}");
    let session = cookies
        .iter()
        .find_map(|c| c.strip_prefix("cairn_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap();
    assert!(
        cookies.iter().all(|c| !c.contains("Secure")),
        "no https public-url: {cookies:?}"
    );
    let jobs = |session: &str| {
        let r = rt
            .block_on(
                http.get(format!("{url}/api/v1/jobs"))
                    .header("cookie", format!("cairn_session={session}"))
                    .send(),
            )
            .unwrap();
        assert!(r.headers().contains_key("content-security-policy"));
        r.status().as_u16()
    };
    assert_eq!(jobs(&session), 200);
    // Removing the account ends its sessions.
    ok(&home.run(&["user", "remove", "ann"]));
    assert_eq!(jobs(&session), 401);
    drop(server);
}

#[test]
fn a_run_of_cairn_serve_is_split_into_tasks_that_workers_back_up() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = TenantSpec {
        seed: 41,
        users: 3,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 15,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 3,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..TenantSpec::default()
    };
    let sim = rt.block_on(SimTenant::start(spec));
    let home = home();
    tenant_and_repository(&home, &sim, "served");
    let schema = super::shared_catalog::Schema::new("serve_workers");
    let nats = format!(
        "{}?queue={}&ack-wait=5",
        super::workers::nats_server(),
        schema.0
    );
    let config = std::fs::read_to_string(home.config()).unwrap();
    // Top-level keys first: appended, they would land in the last table.
    std::fs::write(
        home.config(),
        format!(
            "catalog = {:?}\nnats = {nats:?}\n{config}\n[jobs.spread]\ntenant = \"contoso\"\nevery = \"1d\"\ngroups = \"none\"\nsites = \"none\"\nservices = [\"mail\", \"onedrive\"]\n",
            schema.url()
        ),
    )
    .unwrap();
    let operator = token(&home, "ops", "backup-operator");
    let mut w = home.cmd();
    w.args(["worker", "--cache-dir", s(&home.path("worker-cache"))]);
    let worker = super::workers::Worker::spawn(w);
    let server = start(&home);
    let api = Api {
        rt: &rt,
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let (status, started) = api.call("POST", "/api/v1/jobs/spread/run", &operator, None);
    assert!(status == 202 || status == 409, "{status} {started}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let runs = api.get("/api/v1/jobs/spread/runs", &operator);
        if let Some(r) = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] != "running")
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "the run did not end: {runs}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let run = api.get(&format!("/api/v1/runs/{}", run["id"]), &operator);
    let resources = run["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{run:#}"));
    assert_eq!(resources.len(), 3, "{run:#}");
    // Every resource was backed up by the worker, not by the server.
    let done = worker.lines();
    for r in resources {
        let name = r["resource"].as_str().unwrap();
        assert_eq!(r["ok"], true, "{r:#}");
        assert!(
            done.iter()
                .any(|l| l.starts_with("done user") && l.contains(name)),
            "{name} was not backed up by the worker: {done:#?}"
        );
    }
    // The restore points are in the shared catalog, for any machine to browse.
    let there = tempfile::tempdir().unwrap();
    let points = home
        .cmd()
        .args(["snapshots", "--json"])
        .env("CAIRN_CACHE_DIR", there.path())
        .output()
        .unwrap();
    ok(&points);
    let points: Value = serde_json::from_str(&stdout(&points)).unwrap();
    let written = resources
        .iter()
        .filter(|r| !r["snapshot"].is_null())
        .count();
    assert!(written >= 1, "{run:#}");
    assert_eq!(points.as_array().unwrap().len(), written, "{points:#}");
}
