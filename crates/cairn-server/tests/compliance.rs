//! Defence and compliance under `cairn serve`, end to end against the simulator: a suspect
//! restore point alerts, is audited and counted, shows in the API with the automatic hold
//! on its last clean point, and that hold goes only by four eyes; an erasure is a request a
//! second admin approves, leaving a signed record; a job's item-level retention removes
//! expired items after its run; the legal holds of the server's former table move to
//! Cairn's holds at start.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_server::auth::{self, Role};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A simulated tenant of `users` users with small messages and `files` files in each drive.
async fn tenant(users: u32, mail: u32, files: u32) -> cairn_testkit::SimTenant {
    cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        seed: 11,
        users,
        groups: 0,
        sites: 0,
        mail_per_mailbox: mail,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: files,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..cairn_sim::TenantSpec::default()
    })
    .await
}

/// The configuration of a server backing up `sim` with job `nightly` (once a day: only the
/// test starts it) and its `extra` keys, alerts to `hook`.
fn configure(dir: &Path, sim: &cairn_testkit::SimTenant, extra: &str, hook: &str) -> PathBuf {
    let c = sim.config();
    let secret = dir.join("tenant-secret");
    std::fs::write(&secret, &c.client_secret).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[tenants.contoso]
tenant-id = "{tenant}"
client-id = "{client}"
client-secret-file = "{secret}"
graph-url = "{url}"
login-url = "{url}"
[jobs.nightly]
tenant = "contoso"
every = "1d"
groups = "none"
sites = "none"
{extra}
[jobs.nightly.alerts]
webhook-url = "{hook}"
"#,
            tenant = c.tenant_id,
            client = c.client_id,
            secret = secret.display(),
            url = sim.url(),
        ),
    )
    .unwrap();
    config
}

/// A call through the server's router with `token`: the status and the JSON answer (a
/// string when it is not JSON).
async fn call(
    state: &Arc<cairn_server::State>,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = cairn_server::app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

/// `GET path`, which must answer 200.
async fn get(state: &Arc<cairn_server::State>, path: &str, token: &str) -> Value {
    let (status, v) = call(state, "GET", path, token, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

/// Runs job `nightly` now and waits for the run to end: its record, through the API.
async fn run_job(state: &Arc<cairn_server::State>, token: &str) -> Value {
    let job = state.job("nightly").unwrap().unwrap();
    let id = cairn_server::start(state, job, "api").unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let run = get(state, &format!("/api/v1/runs/{id}"), token).await;
        if run["status"] != "running" && !state.running.is_running("nightly") {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} did not end in time: {run}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every audit entry so far.
fn audit(state: &cairn_server::State) -> Vec<cairn_server::audit::AuditRecord> {
    let mut all = Vec::new();
    state
        .audit
        .since(chrono::DateTime::UNIX_EPOCH, &mut |r| {
            all.push(r);
            true
        })
        .unwrap();
    all
}

/// Whether the metrics hold this exact line.
async fn metric(state: &Arc<cairn_server::State>, token: &str, line: &str) {
    let text = get(state, "/api/v1/metrics", token).await;
    let text = text.as_str().unwrap();
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
}

fn token(state: &cairn_server::State, name: &str, role: Role) -> String {
    auth::create(&state.store, name, role, &Default::default(), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspect_restore_point_alerts_is_audited_and_its_hold_goes_only_by_four_eyes() {
    let sim = tenant(1, 12, 20).await;
    let (hook, got) = common::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(
        dir.path(),
        &sim,
        "services = [\"mail\", \"onedrive\"]",
        &hook,
    );
    let state = common::state(&config);
    let ann = token(&state, "ann", Role::Admin);
    let bob = token(&state, "bob", Role::Admin);
    let aud = token(&state, "aud", Role::Auditor);

    let first = run_job(&state, &aud).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let user = first["results"][0]["resource"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first["results"][0].get("findings").is_none(), "{first}");

    // The simulator's ransomware attack on the user, then the next run.
    let applied = sim
        .mutate(json!({"ops": ["encrypt"], "resource": user, "delete_mail": 0.5}))
        .await;
    assert!(!applied.is_empty());
    let run = run_job(&state, &aud).await;
    // A suspect point is still a good copy of what the tenant held.
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_i64().unwrap();
    let result = &run["results"][0];
    let signals: Vec<&str> = result["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in the run: {run}"))
        .iter()
        .map(|f| f["signal"].as_str().unwrap())
        .collect();
    assert!(
        signals.contains(&"ransom-note") || signals.contains(&"ransomware-extension"),
        "{signals:?}"
    );
    let hold = result["hold"]
        .as_str()
        .expect("the automatic hold")
        .to_string();

    // The webhook: one alert naming the job, the resource, the point, each finding and the
    // hold.
    let hooks = got.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "one alert: {hooks:?}");
    let (headers, body) = &hooks[0];
    assert_eq!(headers["x-cairn-event"], "suspect-restore-point");
    let alert: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(alert["kind"], "suspect-restore-point", "{alert}");
    assert_eq!(alert["job"], "nightly", "{alert}");
    assert_eq!(alert["run"], id, "{alert}");
    let summary = alert["summary"].as_str().unwrap();
    assert!(
        summary.contains(&user) && summary.contains("restore point 2"),
        "{summary}"
    );
    let details = alert["details"].to_string();
    for s in &signals {
        assert!(details.contains(s), "{s} not in {details}");
    }
    assert!(details.contains(&hold), "{details}");
    assert!(details.contains("keeps restore point 1"), "{details}");
    assert!(details.contains(&run["results"][0]["snapshot"].as_str().unwrap()[..8]));

    // The audit log has the same facts.
    let entries = audit(&state);
    let entry = entries
        .iter()
        .find(|r| r.entry.action == "backup.suspect")
        .expect("the suspect point is in the audit log");
    assert_eq!(entry.entry.actor, "scheduler");
    assert!(
        entry.entry.target.contains("nightly") && entry.entry.target.contains(&user),
        "{entry:?}"
    );
    assert!(
        entry.entry.outcome.contains(signals[0]) && entry.entry.outcome.contains(&hold),
        "{entry:?}"
    );
    metric(
        &state,
        &aud,
        r#"cairn_suspect_restore_points_total{job="nightly"} 1"#,
    )
    .await;

    // The restore points: the last suspect with its findings, the one before held.
    let points = get(
        &state,
        &format!("/api/v1/restore-points?resource={user}"),
        &aud,
    )
    .await;
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[1]["suspect"], true, "{points:?}");
    assert!(!points[1]["findings"].as_array().unwrap().is_empty());
    assert_eq!(points[0]["suspect"], false, "{points:?}");
    assert_eq!(points[0]["held_by"], hold.as_str(), "{points:?}");
    assert!(
        !points[1]["findings"][0]["examples"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Example items are names in a restore point: for roles that may browse only.
    let ops = token(&state, "ops", Role::BackupOperator);
    let seen = get(
        &state,
        &format!("/api/v1/restore-points?resource={user}"),
        &ops,
    )
    .await;
    let run_seen = get(&state, &format!("/api/v1/runs/{id}"), &ops).await;
    for f in seen[1]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .chain(run_seen["results"][0]["findings"].as_array().unwrap())
    {
        assert!(f["examples"].as_array().unwrap().is_empty(), "{f}");
        assert!(f["summary"].is_string(), "{f}");
    }

    let holds = get(&state, "/api/v1/holds", &aud).await;
    let h = holds
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hold.as_str())
        .unwrap_or_else(|| panic!("{hold} not in {holds}"));
    assert_eq!(h["automatic"], true, "{h}");
    assert_eq!(h["target"]["point"], 1, "{h}");
    assert!(h["released"].is_null(), "{h}");

    // Releasing it is a request; the admin who filed it cannot approve it, another can.
    let (s, _) = call(
        &state,
        "DELETE",
        &format!("/api/v1/holds/{hold}"),
        &aud,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, filed) = call(
        &state,
        "DELETE",
        &format!("/api/v1/holds/{hold}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{filed}");
    let request = filed["id"].as_i64().unwrap();
    let still = get(&state, "/api/v1/holds", &aud).await;
    assert!(
        still
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == hold.as_str() && h["released"].is_null()),
        "in force until approved: {still}"
    );
    let approve = format!("/api/v1/approvals/{request}/approve");
    let (s, v) = call(&state, "POST", &approve, &ann, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(&state, "POST", &approve, &bob, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "done", "{v}");
    let after = get(&state, "/api/v1/holds", &aud).await;
    let h = after
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hold.as_str())
        .unwrap();
    assert!(h["released"].is_object(), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_is_a_request_a_second_admin_approves_and_leaves_a_signed_record() {
    let sim = tenant(4, 30, 0).await;
    let (hook, _got) = common::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(dir.path(), &sim, "services = [\"mail\"]", &hook);
    let state = common::state(&config);
    let ann = token(&state, "ann", Role::Admin);
    let bob = token(&state, "bob", Role::Admin);
    let aud = token(&state, "aud", Role::Auditor);
    let ops = token(&state, "ops", Role::BackupOperator);

    let run = run_job(&state, &aud).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let users: Vec<String> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource"].as_str().unwrap().to_string())
        .collect();
    // The person: the user most named in the others' mailboxes.
    let hits = get(&state, "/api/v1/find?limit=10000", &aud).await;
    let hits = hits["hits"].as_array().unwrap().clone();
    let names = |h: &Value, who: &str| {
        let who = who.to_ascii_lowercase();
        ["from", "to"].iter().any(|f| {
            h[*f]
                .as_str()
                .is_some_and(|v| v.to_ascii_lowercase().contains(&who))
        })
    };
    let mentions = |who: &String| {
        hits.iter()
            .filter(|h| h["resource"] != who.as_str() && names(h, who))
            .count()
    };
    let person = users.iter().max_by_key(|u| mentions(u)).unwrap().clone();
    assert!(
        mentions(&person) > 0,
        "no message of any user in another mailbox"
    );
    let body = json!({"subject": person, "match": ["owner", "sender", "recipient"]});

    // A dry run answers the plan and changes nothing.
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let (s, plan) = call(&state, "POST", "/api/v1/erasures", &ann, Some(dry)).await;
    assert_eq!(s, StatusCode::OK, "{plan}");
    assert_eq!(plan["status"], "planned", "{plan}");
    assert!(plan["items"].as_u64().unwrap() > 0, "{plan}");
    let (s, _) = call(&state, "POST", "/api/v1/erasures", &ops, Some(body.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad input is the caller's to fix now.
    let (s, v) = call(
        &state,
        "POST",
        "/api/v1/erasures",
        &ann,
        Some(json!({"subject": person, "match": ["cc"]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["hint"].is_string(), "{v}");
    let (s, v) = call(
        &state,
        "POST",
        "/api/v1/erasures",
        &ann,
        Some(json!({"subject": "nobody@nowhere.example", "match": ["owner"]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let points = get(
        &state,
        &format!("/api/v1/restore-points?resource={person}"),
        &aud,
    )
    .await;
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");

    // Filed by one admin, approved by another.
    let (s, filed) = call(&state, "POST", "/api/v1/erasures", &ann, Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{filed}");
    let request = filed["id"].as_i64().unwrap();
    let approvals = get(&state, "/api/v1/approvals", &aud).await;
    assert!(
        approvals
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == request && a["action"] == "erase" && a["status"] == "pending"),
        "{approvals}"
    );
    let approve = format!("/api/v1/approvals/{request}/approve");
    let (s, v) = call(&state, "POST", &approve, &ann, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(&state, "POST", &approve, &bob, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "done", "{v}");
    assert!(v["outcome"].as_str().unwrap().contains("complete"), "{v}");

    // The signed record, for auditors too.
    let (s, _) = call(&state, "GET", "/api/v1/erasures", &ops, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let records = get(&state, "/api/v1/erasures", &aud).await;
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["subject"], person.as_str(), "{r}");
    assert_eq!(r["status"], "complete", "{r}");
    assert_eq!(r["signature_valid"], true, "{r}");
    let by = r["requested_by"].as_str().unwrap();
    assert!(by.contains("ann") && by.contains("bob"), "{r}");

    // Nothing of the person is left to see.
    let points = get(
        &state,
        &format!("/api/v1/restore-points?resource={person}"),
        &aud,
    )
    .await;
    assert!(points.as_array().unwrap().is_empty(), "{points}");
    let after = get(&state, "/api/v1/find?limit=10000", &aud).await;
    let left: Vec<&Value> = after["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["resource"] == person.as_str() || names(h, &person))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!after["hits"].as_array().unwrap().is_empty());
    // The audit log has the request and its approval.
    let entries = audit(&state);
    assert!(
        entries
            .iter()
            .any(|e| e.entry.action == "POST /api/v1/erasures" && e.entry.outcome == "202")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_keep_items_removes_expired_items_after_its_run() {
    let sim = tenant(1, 12, 6).await;
    let (hook, _got) = common::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(
        dir.path(),
        &sim,
        "services = [\"mail\", \"onedrive\"]\nkeep-items = \"1d\"",
        &hook,
    );
    let state = common::state(&config);
    let aud = token(&state, "aud", Role::Auditor);
    // Generated items are dated before the simulator's epoch, weeks ago at least; files
    // created now are not a day old.
    let created = sim
        .mutate(json!({"kinds": ["file"], "ops": ["create"], "count": 3, "seed": 3}))
        .await;
    assert_eq!(created.len(), 3, "{created:?}");

    let run = run_job(&state, &aud).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["error"].is_null(), "{run}");
    let items = run["items"].as_u64().unwrap();
    let expired = run["items_expired"].as_u64().unwrap();
    assert!(expired >= 12, "the messages at least: {run}");
    assert!(expired < items, "{run}");
    let user = run["results"][0]["resource"].as_str().unwrap().to_string();

    // Only the new files are left, in the restore point rewritten without the rest.
    let found = get(
        &state,
        &format!("/api/v1/find?resource={user}&limit=10000"),
        &aud,
    )
    .await;
    let hits: Vec<&Value> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] != "folder")
        .collect();
    assert_eq!(hits.len(), 3, "{hits:?}");
    let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
    for h in &hits {
        assert_eq!(h["kind"], "file", "{h}");
        let when = h["date"].as_str().or(h["mtime"].as_str()).unwrap();
        let when = chrono::DateTime::parse_from_rfc3339(when).unwrap().to_utc();
        assert!(when > day_ago, "{h}");
    }
    let points = get(
        &state,
        &format!("/api/v1/restore-points?resource={user}"),
        &aud,
    )
    .await;
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
    assert_eq!(points[0]["items"], 3, "{points}");

    let entries = audit(&state);
    let entry = entries
        .iter()
        .find(|r| r.entry.action == "retention.items")
        .expect("item retention is in the audit log");
    assert!(
        entry.entry.outcome.starts_with(&format!(
            "ok: {expired} items expired by the rule 1d from modified"
        )),
        "{entry:?}"
    );
    metric(
        &state,
        &aud,
        &format!(r#"cairn_retention_expired_items_total{{job="nightly"}} {expired}"#),
    )
    .await;

    // A shorter item retention of a job made through the API is a request.
    let ann = token(&state, "ann", Role::Admin);
    let spec = |keep: &str| json!({"tenant": "contoso", "every": "1d", "keep-items": keep});
    let (s, v) = call(
        &state,
        "POST",
        "/api/v1/jobs",
        &ann,
        Some(json!({"name": "kept", "spec": spec("7y")})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&state, "PUT", "/api/v1/jobs/kept", &ann, Some(spec("1y"))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = call(&state, "PUT", "/api/v1/jobs/kept", &ann, Some(spec("10y"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &state,
        "PUT",
        "/api/v1/jobs/kept",
        &ann,
        Some(spec("ten years")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keep-items"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_of_the_former_server_table_move_to_cairns_holds_at_start() {
    let sim = tenant(2, 6, 0).await;
    let (hook, _got) = common::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(dir.path(), &sim, "services = [\"mail\"]", &hook);
    let state = common::state(&config);
    let aud = token(&state, "aud", Role::Auditor);
    let run = run_job(&state, &aud).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let a = run["results"][0]["resource"].as_str().unwrap().to_string();
    let b = run["results"][1]["resource"].as_str().unwrap().to_string();
    let snapshot = run["results"][1]["snapshot"].as_str().unwrap().to_string();

    // Rows as the server wrote them before holds moved to cairn-app: a resource, a
    // snapshot id prefix, a name the catalog does not know, and one released long ago.
    let insert = |tenant: Option<&str>, target: &str, reason: &str, released: Option<i64>| {
        state
            .store
            .with(|c| {
                c.execute(
                    "INSERT INTO server_holds (tenant, target, reason, placed_by, placed, released)
                     VALUES (?1, ?2, ?3, 'carol', 1767225600, ?4)",
                    rusqlite::params![tenant, target, reason, released],
                )
                .map(|_| c.last_insert_rowid())
            })
            .unwrap()
    };
    let on_resource = insert(Some("contoso"), &a, "matter 7", None);
    let on_point = insert(None, &snapshot[..6], "matter 8", None);
    let unknown = insert(Some("contoso"), "nobody@contoso.example", "matter 9", None);
    insert(None, &b, "matter 1", Some(1767225700));

    let moved = cairn_server::migrate_holds(&state).await.unwrap();
    assert_eq!(
        moved.moved.iter().map(|m| m.0).collect::<Vec<_>>(),
        [on_resource, on_point]
    );
    assert_eq!(moved.left.len(), 1, "{:?}", moved.left);
    assert_eq!(moved.left[0].0, unknown);

    let holds = get(&state, "/api/v1/holds", &aud).await;
    let holds = holds.as_array().unwrap();
    assert_eq!(holds.len(), 2, "{holds:?}");
    let of = |reason: &str| {
        holds
            .iter()
            .find(|h| h["reason"].as_str().unwrap().starts_with(reason))
            .unwrap_or_else(|| panic!("no hold for {reason}: {holds:?}"))
    };
    let r = of("matter 7");
    assert_eq!(
        r["target"],
        json!({"kind": "resource", "resource": a}),
        "{r}"
    );
    assert_eq!(r["placed_by"], "carol", "{r}");
    assert_eq!(r["tenant"], "contoso", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("2026-01-01"), "{r}");
    let p = of("matter 8");
    assert_eq!(p["target"]["kind"], "point", "{p}");
    assert_eq!(p["target"]["snapshot"], snapshot.as_str(), "{p}");
    assert_eq!(p["target"]["resource"], b.as_str(), "{p}");
    // The holds are in force: the restore points are held.
    let points = get(&state, "/api/v1/restore-points", &aud).await;
    for pt in points.as_array().unwrap() {
        assert!(pt["held_by"].is_string(), "{pt}");
    }

    // The old rows: moved ones released with a note, the unknown one left in force.
    let rows: Vec<(i64, Option<i64>, Option<String>)> = state
        .store
        .with(|c| {
            let mut st = c.prepare("SELECT id, released, note FROM server_holds ORDER BY id")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
        .unwrap();
    for (id, released, note) in &rows {
        if *id == on_resource || *id == on_point {
            assert!(released.is_some(), "{rows:?}");
            assert!(note.as_deref().unwrap().contains("H-"), "{rows:?}");
        }
        if *id == unknown {
            assert!(released.is_none() && note.is_none(), "{rows:?}");
        }
    }

    // Once: nothing moves twice. And the server does it when it starts.
    let again = cairn_server::migrate_holds(&state).await.unwrap();
    assert!(again.moved.is_empty(), "{again:?}");
    let late = insert(Some("contoso"), &b, "matter 10", None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cairn_server::serve(state.clone(), listener, async {})
        .await
        .unwrap();
    let holds = get(&state, "/api/v1/holds", &aud).await;
    assert_eq!(holds.as_array().unwrap().len(), 3, "{holds}");
    let released = state
        .store
        .one::<Option<i64>>(
            "SELECT released FROM server_holds WHERE id=?1",
            rusqlite::params![late],
        )
        .unwrap()
        .flatten();
    assert!(released.is_some());
}
