//! `cairn-server`: Cairn protecting a tenant by itself — jobs on a schedule with retention,
//! a history of every run, a REST API with roles, four-eyes approval for anything that
//! destroys backups, a tamper-evident audit log, alerts and metrics. A front end of
//! `cairn-app`, as the command line is: every operation is the same code.
//!
//! The server is [`app`]`(state) -> Router`, tested without a socket; [`serve`] wraps it in
//! a listener and the scheduler, and stops both gracefully on a signal.

pub mod alerts;
mod api;
pub mod audit;
pub mod auth;
pub mod jobs;
pub mod metrics;
pub mod oidc;
mod portal;
pub mod session;
mod signin;
pub mod store;
pub mod tasks;
pub mod users;

pub use api::{ApiDoc, app};

use cairn_app::Workspace;
use cairn_config::{AlertsEntry, TenantOverrides};
use jobs::{Job, Outcome, Status};
use std::sync::Arc;
use std::time::Duration;

/// Everything the API and the scheduler share.
pub struct State {
    pub ws: Arc<Workspace>,
    pub store: Arc<store::Store>,
    pub audit: Arc<audit::AuditLog>,
    pub running: Arc<jobs::Running>,
    pub metrics: metrics::Metrics,
    /// One writer of the repository at a time: runs, retention and approved requests
    /// queue here rather than fail on the backup lock.
    pub writer: tokio::sync::Mutex<()>,
    /// How long a filed request waits for a second admin.
    pub approval: chrono::Duration,
    /// Alerts of jobs that name none.
    pub alerts: Option<AlertsEntry>,
    /// Backoff before retrying resources that failed for a transient reason (tests
    /// shorten it).
    pub retry_backoff: Duration,
    /// Restores and exports started through the API.
    pub tasks: tasks::Tasks,
    /// Where exports are written for download.
    pub exports: std::path::PathBuf,
    /// Where people reach the server (`[server] public-url`, no trailing `/`).
    pub public_url: Option<String>,
    /// The tenants people sign in through (those with a portal app).
    pub portal: Vec<oidc::PortalTenant>,
    /// `[server.portal] groups`: group object id → role.
    pub portal_groups: std::collections::BTreeMap<String, String>,
    /// The Content-Security-Policy of every response.
    pub csp: String,
    /// HTTP client of the sign-in (discovery, keys, code redemption).
    pub http: reqwest::Client,
}

impl State {
    /// The state of `ws` (a serving workspace: [`Workspace::serving`]).
    pub fn new(ws: Arc<Workspace>) -> anyhow::Result<Arc<State>> {
        // A restore drill whose schedule cannot be read would never run: refused now.
        for (name, spec) in &ws.config().file().jobs {
            jobs::Schedule::of_drill(name, spec)?;
        }
        let path = ws.local().catalog.clone();
        // The catalog first: it creates the file with the settings SQLite needs.
        ws.catalog_for_backup()?;
        let store = Arc::new(store::Store::open(&path)?);
        let audit = Arc::new(audit::AuditLog::open(&path)?);
        let server = ws.config().file().server.clone().unwrap_or_default();
        let public_url = match server.public_url.as_deref() {
            None => None,
            Some(u) => match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {
                    Some(u.trim_end_matches('/').to_string())
                }
                _ => {
                    return Err(cairn_app::UserError::new(format!(
                        "[server] public-url = {u:?} is not an http(s) URL"
                    ))
                    .hint("the address people reach the server at, e.g. https://cairn.example.com")
                    .into());
                }
            },
        };
        let portal_groups = server.portal.clone().unwrap_or_default().groups;
        for (group, role) in &portal_groups {
            if auth::Role::parse(role).is_none() {
                return Err(cairn_app::UserError::new(format!(
                    "[server.portal] groups gives group {group} the role {role:?}, which is none"
                ))
                .hint("admin, backup-operator, restore-operator or auditor")
                .into());
            }
        }
        let portal = oidc::portal_tenants(&ws);
        let csp = signin::content_security_policy(
            &portal
                .iter()
                .map(|t| t.login_url.clone())
                .collect::<Vec<_>>(),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Arc::new(State {
            ws,
            store,
            audit,
            running: Arc::default(),
            metrics: metrics::Metrics::new(),
            writer: tokio::sync::Mutex::new(()),
            approval: chrono::Duration::hours(server.approval_hours.unwrap_or(72) as i64),
            alerts: server.alerts,
            retry_backoff: Duration::from_secs(30),
            tasks: tasks::Tasks::default(),
            exports: path.with_file_name("exports"),
            public_url,
            portal,
            portal_groups,
            csp,
            http,
        }))
    }

    /// The portal's sign-in redirect URI: `{public-url}/auth/callback`.
    pub fn redirect_uri(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|u| format!("{u}/auth/callback"))
    }

    /// Cookies carry `Secure` when people reach the server over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https:"))
    }

    /// Every job, from the configuration file and the API.
    pub fn jobs(&self) -> anyhow::Result<Vec<Job>> {
        jobs::all(&self.ws.config().file().jobs, &self.store)
    }

    pub fn job(&self, name: &str) -> anyhow::Result<Option<Job>> {
        Ok(self.jobs()?.into_iter().find(|j| j.name == name))
    }
}

/// Starts a run of `job` in the background; `None` when one is under way. Returns the
/// run's id.
pub fn start(state: &Arc<State>, job: Job, trigger: &str) -> anyhow::Result<Option<i64>> {
    let Some(slot) = state.running.claim(&job.name) else {
        return Ok(None);
    };
    let id = jobs::begin(&state.store, &job.name, &job.spec.tenant, trigger)?;
    let state = state.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let outcome = execute(&state, &job).await;
        if let Err(e) = jobs::finish(&state.store, id, &outcome) {
            tracing::error!(job = %job.name, run = id, "recording the run: {e:#}");
        }
        state.metrics.run(
            &job.name,
            &job.spec.tenant,
            outcome.status.as_str(),
            outcome.report.as_ref(),
        );
        tracing::info!(job = %job.name, run = id, status = outcome.status.as_str(), "run ended");
        alert(&state, &job, id, &outcome).await;
        suspected(&state, &job, id, &outcome).await;
        if let Some(items) = &outcome.items {
            state.metrics.items_expired(&job.name, items.expired);
            let result = match &items.error {
                None => format!(
                    "ok: {} items expired by the rule {} ({} restore points rewritten, {} spared by legal holds)",
                    items.expired, items.rule, items.rewritten, items.spared
                ),
                Some(e) => format!("failed: {e}"),
            };
            record_audit(
                &state,
                audit::AuditEntry {
                    actor: "scheduler".into(),
                    role: "server".into(),
                    source: None,
                    action: "retention.items".into(),
                    target: format!("job {} run {id} (tenant {})", job.name, job.spec.tenant),
                    outcome: result,
                },
            )
            .await;
        }
        // The drill follows a succeeded run when the job has no schedule of its own for
        // it, still in the job's slot: it tests the restore points this run wrote.
        if outcome.status == Status::Succeeded
            && let Ok(Some(percent)) = job.verify()
            && let Ok(None) = job.drill_schedule()
        {
            let resources = outcome
                .report
                .iter()
                .flat_map(|r| r.resources.iter().filter(|x| x.ok()))
                .map(|x| x.resource.clone())
                .collect();
            match jobs::begin_drill(
                &state.store,
                &job.name,
                &job.spec.tenant,
                "after-backup",
                percent,
            ) {
                Ok(drill) => run_drill(&state, &job, drill, percent, resources).await,
                Err(e) => tracing::error!(job = %job.name, "recording a drill: {e:#}"),
            }
        }
        mirror_audit(&state).await;
    });
    Ok(Some(id))
}

/// Starts a restore drill of `job` in the background, in the job's slot (never beside a
/// run of it); `None` when a run of it is under way, or the job has no `verify`. Returns
/// the drill's run id. It tests the latest restore point of each resource the job has
/// backed up.
pub fn start_drill(state: &Arc<State>, job: Job, trigger: &str) -> anyhow::Result<Option<i64>> {
    let Some(percent) = job.verify()? else {
        return Ok(None);
    };
    let Some(slot) = state.running.claim(&job.name) else {
        return Ok(None);
    };
    let id = jobs::begin_drill(&state.store, &job.name, &job.spec.tenant, trigger, percent)?;
    let state = state.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let s = state.clone();
        let name = job.name.clone();
        let resources = tokio::task::spawn_blocking(move || jobs::last_success(&s.store, &name))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r)
            .map(|m| m.into_keys().collect());
        match resources {
            Ok(resources) => run_drill(&state, &job, id, percent, resources).await,
            Err(e) => {
                let outcome = jobs::DrillOutcome::failed(format!(
                    "reading the job's resources from the run history: {e:#}"
                ));
                record_drill(&state, &job, id, &outcome).await;
            }
        }
        mirror_audit(&state).await;
    });
    Ok(Some(id))
}

/// A restore drill of `job` recorded as run `id`: the latest restore point of each of
/// `resources` (the job's), `percent` of its items read back and compared with the
/// catalog. Then metrics, the audit log, and an alert when it failed or could not run.
async fn run_drill(state: &Arc<State>, job: &Job, id: i64, percent: f64, resources: Vec<String>) {
    let outcome = if resources.is_empty() {
        jobs::DrillOutcome::failed(
            "the job has backed up no resource yet: nothing to test (hint: the drill reads back what the job's backups wrote; it runs once a backup has succeeded)",
        )
    } else {
        // Queued with the writers: a prune or forget under way would pull data from under
        // the drill and pass for damage.
        let _writer = state.writer.lock().await;
        let ws = state.ws.clone();
        let req = cairn_app::maintenance::DrillRequest {
            tenant: Some(job.spec.tenant.clone()),
            resource: None,
            resources,
            sample_percent: percent,
        };
        match tokio::task::spawn_blocking(move || cairn_app::maintenance::drill(&ws, &req)).await {
            Ok(Ok(report)) => jobs::DrillOutcome::of(report),
            Ok(Err(e)) => {
                let c = cairn_app::classify(&e);
                jobs::DrillOutcome::failed(match c.hint {
                    Some(h) => format!("{} (hint: {h})", c.message),
                    None => c.message,
                })
            }
            Err(e) => jobs::DrillOutcome::failed(format!("the drill stopped: {e}")),
        }
    };
    record_drill(state, job, id, &outcome).await;
}

/// What a restore drill leaves behind: its run record, metrics, an audit entry, and an
/// alert when it failed.
async fn record_drill(state: &Arc<State>, job: &Job, id: i64, outcome: &jobs::DrillOutcome) {
    if let Err(e) = jobs::finish_drill(&state.store, id, outcome) {
        tracing::error!(job = %job.name, run = id, "recording the drill: {e:#}");
    }
    state
        .metrics
        .drill(&job.name, outcome.status.as_str(), outcome.report.as_ref());
    let result = match (&outcome.report, &outcome.error) {
        (Some(r), None) => format!(
            "ok: {} items of {} restore points read back",
            r.checked, r.points
        ),
        (Some(r), Some(_)) if !r.failed.is_empty() => format!(
            "failed: {} of the items of {} restore points could not be read back",
            r.failed.len(),
            r.points
        ),
        (_, e) => format!("failed: {}", e.as_deref().unwrap_or("?")),
    };
    tracing::info!(job = %job.name, run = id, status = outcome.status.as_str(), "restore drill: {result}");
    let entry = audit::AuditEntry {
        actor: "scheduler".into(),
        role: "server".into(),
        source: None,
        action: "drill.run".into(),
        target: format!("job {} run {id}", job.name),
        outcome: result,
    };
    record_audit(state, entry).await;
    if outcome.status != Status::Succeeded {
        send_alert(state, job, drill_alert(job, id, outcome)).await;
    }
}

/// Appends what the server did by itself to the audit log (an error is logged: the work
/// it records is done).
async fn record_audit(state: &Arc<State>, entry: audit::AuditEntry) {
    let audit = state.audit.clone();
    match tokio::task::spawn_blocking(move || audit.append(&entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!("appending to the audit log: {e:#}"),
        Err(e) => tracing::error!("appending to the audit log: {e}"),
    }
}

/// For each resource of a run whose new restore point is suspect: an alert, an audit entry
/// and the metric. The run keeps its status: a suspect point is still a good copy of what
/// the tenant held.
async fn suspected(state: &Arc<State>, job: &Job, id: i64, o: &Outcome) {
    let Some(report) = &o.report else { return };
    for r in report.resources.iter().filter(|r| !r.findings.is_empty()) {
        let recorded = o.suspects.get(&r.resource);
        state.metrics.suspect(&job.name);
        let snapshot = r.snapshot.as_deref().unwrap_or("?");
        let point = match recorded {
            Some(s) => format!("restore point {}", s.suspect.point),
            None => format!("the restore point of snapshot {snapshot}"),
        };
        let hold = match (
            recorded.and_then(|s| s.suspect.hold.as_deref()),
            recorded.and_then(|s| s.clean_point),
        ) {
            (Some(h), Some(clean)) => format!(
                "automatic legal hold {h} keeps restore point {clean}, the last clean one; it is released only by a four-eyes request (DELETE /api/v1/holds/{h})"
            ),
            (Some(h), None) => format!(
                "automatic legal hold {h} keeps the last clean restore point; it is released only by a four-eyes request (DELETE /api/v1/holds/{h})"
            ),
            (None, _) => "no earlier clean restore point to hold".to_string(),
        };
        let signals: Vec<&str> = r.findings.iter().map(|f| f.signal.as_str()).collect();
        tracing::warn!(job = %job.name, run = id, resource = %r.resource, "suspect {point}: {}", signals.join(", "));
        let mut details = vec![
            format!("resource: {} (tenant {})", r.resource, job.spec.tenant),
            format!("{point}, snapshot {snapshot}"),
        ];
        details.extend(
            r.findings
                .iter()
                .map(|f| format!("{}: {}", f.signal, f.summary)),
        );
        details.push(hold.clone());
        let a = alerts::Alert::new(
            alerts::AlertKind::SuspectRestorePoint,
            format!(
                "backup job {}: {point} of {} is suspect ({})",
                job.name,
                r.resource,
                signals.join(", ")
            ),
        )
        .job(job.name.clone())
        .tenant(job.spec.tenant.clone())
        .run(id)
        .details(details);
        send_alert(state, job, a).await;
        let findings: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{} ({})", f.signal, f.summary))
            .collect();
        record_audit(
            state,
            audit::AuditEntry {
                actor: "scheduler".into(),
                role: "server".into(),
                source: None,
                action: "backup.suspect".into(),
                target: format!(
                    "job {} run {id}: {} of tenant {}, {point} (snapshot {snapshot})",
                    job.name, r.resource, job.spec.tenant
                ),
                outcome: format!("suspect: {}; {hold}", findings.join("; ")),
            },
        )
        .await;
    }
}

/// Items of a failed drill named in its alert; the run's record has them all.
const DRILL_ALERT_ITEMS: usize = 10;

/// The alert of a restore drill that failed or could not run.
fn drill_alert(job: &Job, id: i64, o: &jobs::DrillOutcome) -> alerts::Alert {
    let (summary, mut details): (String, Vec<String>) = match &o.report {
        Some(r) if !r.failed.is_empty() => (
            format!(
                "restore drill of job {} failed: {} items could not be read back as they were backed up",
                job.name,
                r.failed.len()
            ),
            r.failed
                .iter()
                .take(DRILL_ALERT_ITEMS)
                .map(|f| {
                    let item = if f.path.is_empty() {
                        "(restore point)"
                    } else {
                        &f.path
                    };
                    format!("{} point {} {item}: {}", f.resource, f.point, f.reason)
                })
                .collect(),
        ),
        _ => (
            format!("restore drill of job {} could not run", job.name),
            o.error.iter().cloned().collect(),
        ),
    };
    if let Some(r) = &o.report
        && r.failed.len() > DRILL_ALERT_ITEMS
    {
        details.push(format!(
            "… and {} more (GET /api/v1/runs/{id} lists them all)",
            r.failed.len() - DRILL_ALERT_ITEMS
        ));
    }
    alerts::Alert::new(alerts::AlertKind::DrillFailed, summary)
        .job(job.name.clone())
        .tenant(job.spec.tenant.clone())
        .run(id)
        .details(details)
}

/// One run: back up, retry what failed for a transient reason, note the suspect restore
/// points, apply retention (restore points, then items).
async fn execute(state: &Arc<State>, job: &Job) -> Outcome {
    let _writer = state.writer.lock().await;
    let tenant = TenantOverrides {
        tenant: Some(job.spec.tenant.clone()),
        ..TenantOverrides::default()
    };
    let progress = Arc::new(jobs::Quiet);
    let mut report = match cairn_app::backup::backup(
        state.ws.clone(),
        &tenant,
        &job.request(),
        progress.clone(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            let c = cairn_app::classify(&e);
            return Outcome {
                status: Status::Failed,
                report: None,
                attempts: Default::default(),
                forgotten: 0,
                items: None,
                suspects: Default::default(),
                error: Some(match c.hint {
                    Some(h) => format!("{} (hint: {h})", c.message),
                    None => c.message,
                }),
            };
        }
    };
    let mut attempts: std::collections::BTreeMap<String, u32> = report
        .resources
        .iter()
        .map(|r| (r.resource.clone(), 1))
        .collect();
    let mut backoff = state.retry_backoff;
    for _ in 0..2 {
        let Some(retry) = jobs::retry_request(job, &report) else {
            break;
        };
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        match cairn_app::backup::backup(state.ws.clone(), &tenant, &retry, progress.clone()).await {
            Ok(again) => {
                for r in &again.resources {
                    *attempts.entry(r.resource.clone()).or_default() += 1;
                }
                jobs::merge(&mut report, again);
            }
            Err(e) => tracing::warn!(job = %job.name, "retry: {e:#}"),
        }
    }
    let status = jobs::status_of(&report);
    // Before retention rewrites anything: the suspect points as detection recorded them.
    let suspects = suspects_of(state, job, &report).await;
    let mut forgotten = 0;
    let mut error = None;
    let mut items = None;
    // Retention after each successful run only: a run that failed leaves every point.
    if status == Status::Succeeded
        && let Some(rule) = job.retention()
    {
        let req = cairn_app::maintenance::ForgetRequest {
            rule,
            // The legal holds on record are applied by forget itself.
            ..Default::default()
        };
        match cairn_app::maintenance::forget(state.ws.clone(), req).await {
            Ok(out) => forgotten = out.report.removed.len() as u64,
            Err(e) => error = Some(format!("retention: {e:#}")),
        }
    }
    // Then item-level retention, over the job's resources.
    if status == Status::Succeeded {
        match job.item_rule() {
            Ok(Some(rule)) => {
                let done = expire_items(state, job, &report, rule).await;
                if let Some(e) = &done.error {
                    error = Some(match error {
                        Some(before) => format!("{before}; item retention: {e}"),
                        None => format!("item retention: {e}"),
                    });
                }
                items = Some(done);
            }
            Ok(None) => {}
            Err(e) => error = Some(format!("item retention: {e}")),
        }
    }
    Outcome {
        status,
        report: Some(report),
        attempts,
        forgotten,
        items,
        suspects,
        error,
    }
}

/// The suspect restore points of a run (resources whose report has findings), as detection
/// recorded them in the catalog: with the automatic hold on the last clean point.
async fn suspects_of(
    state: &Arc<State>,
    job: &Job,
    report: &cairn_backup::JobReport,
) -> std::collections::BTreeMap<String, jobs::SuspectPoint> {
    let wanted: Vec<(String, String)> = report
        .resources
        .iter()
        .filter(|r| !r.findings.is_empty())
        .filter_map(|r| Some((r.resource.clone(), r.snapshot.clone()?)))
        .collect();
    if wanted.is_empty() {
        return Default::default();
    }
    let ws = state.ws.clone();
    let found = tokio::task::spawn_blocking(move || {
        let all = cairn_app::detect::suspects(&*ws.catalog()?)?;
        let holds = cairn_app::holds::list(&ws)?;
        let kept = |id: &str| {
            holds
                .iter()
                .find(|h| h.id == id)
                .and_then(|h| match &h.target {
                    cairn_app::holds::HoldTarget::Point { point, .. } => Some(*point),
                    _ => None,
                })
        };
        anyhow::Ok(
            wanted
                .into_iter()
                .filter_map(|(resource, snapshot)| {
                    let suspect = all.get(&snapshot)?.clone();
                    let clean_point = suspect.hold.as_deref().and_then(kept);
                    Some((
                        resource,
                        jobs::SuspectPoint {
                            suspect,
                            clean_point,
                        },
                    ))
                })
                .collect(),
        )
    })
    .await;
    match found {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            tracing::error!(job = %job.name, "reading the suspect restore points: {e:#}");
            Default::default()
        }
        Err(e) => {
            tracing::error!(job = %job.name, "reading the suspect restore points: {e}");
            Default::default()
        }
    }
}

/// The job's item-level retention over its resources (those of this run and those it
/// backed up before): expired items leave every restore point holding them, held ones
/// are spared. Under the run's hold on the repository.
async fn expire_items(
    state: &Arc<State>,
    job: &Job,
    report: &cairn_backup::JobReport,
    rule: cairn_app::retention::ItemRule,
) -> jobs::ItemRetention {
    let mut resources: std::collections::BTreeSet<String> = report
        .resources
        .iter()
        .map(|r| r.resource.clone())
        .collect();
    let (ws, store, name, tenant) = (
        state.ws.clone(),
        state.store.clone(),
        job.name.clone(),
        job.spec.tenant.clone(),
    );
    let text = rule.text.clone();
    let done = tokio::task::spawn_blocking(move || {
        resources.extend(jobs::last_success(&store, &name)?.into_keys());
        let scope = cairn_app::retention::Scope {
            tenant: Some(tenant),
            resources: resources.into_iter().collect(),
        };
        cairn_app::retention::apply(&ws, &rule, &scope, false, chrono::Utc::now())
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match done {
        Ok(r) => jobs::ItemRetention {
            rule: text,
            expired: r.removed.len() as u64,
            spared: r.spared.len() as u64,
            rewritten: r.rewritten,
            error: None,
        },
        Err(e) => {
            let c = cairn_app::classify(&e);
            jobs::ItemRetention {
                rule: text,
                error: Some(match c.hint {
                    Some(h) => format!("{} (hint: {h})", c.message),
                    None => c.message,
                }),
                ..Default::default()
            }
        }
    }
}

/// Writes the audit entries not yet in the repository into it, after each run: a wiped or
/// altered server still leaves the evidence where the backups are.
pub async fn mirror_audit(state: &Arc<State>) {
    let _writer = state.writer.lock().await;
    let (ws, audit) = (state.ws.clone(), state.audit.clone());
    match tokio::task::spawn_blocking(move || audit.mirror(&*ws.repo()?)).await {
        Ok(Ok(n)) if n > 0 => tracing::info!("{n} audit entries mirrored into the repository"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!("mirroring the audit log into the repository: {e:#}"),
        Err(e) => tracing::error!("mirroring the audit log: {e}"),
    }
}

/// Sends `alert` where `job`'s alerts go (or the server's), if anywhere.
async fn send_alert(state: &Arc<State>, job: &Job, alert: alerts::Alert) {
    let Some(settings) = job.spec.alerts.as_ref().or(state.alerts.as_ref()) else {
        return;
    };
    match alerts::Alerter::new(settings) {
        Ok(a) => {
            let d = a.send(&alert).await;
            tracing::info!(job = %job.name, "alert: {d:?}");
        }
        Err(e) => tracing::error!(job = %job.name, "alerts are not configured right: {e:#}"),
    }
}

/// A run found Graph throttling it this much (a share of its requests): worth an alert.
const THROTTLING_ALERT: f64 = 0.25;

/// Alerts for a run that failed or partly failed, or was throttled heavily.
async fn alert(state: &Arc<State>, job: &Job, run: i64, o: &Outcome) {
    if let Some(r) = &o.report
        && r.requests >= 100
        && r.throttled as f64 >= THROTTLING_ALERT * r.requests as f64
    {
        let a = alerts::Alert::new(
            alerts::AlertKind::Throttling,
            format!(
                "backup job {}: Graph throttled {} of {} requests",
                job.name, r.throttled, r.requests
            ),
        )
        .job(job.name.clone())
        .tenant(job.spec.tenant.clone())
        .run(run);
        send_alert(state, job, a).await;
    }
    let kind = match o.status {
        Status::Failed => alerts::AlertKind::RunFailed,
        Status::Partial => alerts::AlertKind::RunPartial,
        _ => return,
    };
    let details: Vec<String> = match &o.report {
        Some(r) => r
            .resources
            .iter()
            .filter_map(|x| x.error.as_ref().map(|e| format!("{}: {e}", x.resource)))
            .collect(),
        None => o.error.iter().cloned().collect(),
    };
    let summary = match &o.report {
        Some(r) => format!(
            "backup job {} {}: {} of {} resources failed",
            job.name,
            o.status.as_str(),
            r.failed(),
            r.resources.len()
        ),
        None => format!(
            "backup job {} failed: {}",
            job.name,
            o.error.as_deref().unwrap_or("?")
        ),
    };
    let a = alerts::Alert::new(kind, summary)
        .job(job.name.clone())
        .tenant(job.spec.tenant.clone())
        .run(run)
        .details(details);
    send_alert(state, job, a).await;
}

/// Resources of a job not backed up within about two of its intervals: one alert when a
/// resource becomes unprotected (again after it was protected in between).
pub async fn watch_unprotected(
    state: &Arc<State>,
    alerted: &mut std::collections::HashSet<(String, String)>,
) {
    let s = state.clone();
    let views = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<api::JobView>> {
        s.jobs()?
            .into_iter()
            .filter(Job::enabled)
            .map(|j| api::view(&s, j))
            .collect()
    })
    .await;
    let Ok(Ok(views)) = views else { return };
    let mut now_unprotected = std::collections::HashSet::new();
    for v in views {
        let fresh: Vec<String> = v
            .unprotected
            .iter()
            .filter(|r| !alerted.contains(&(v.job.name.clone(), (*r).clone())))
            .cloned()
            .collect();
        for r in &v.unprotected {
            now_unprotected.insert((v.job.name.clone(), r.clone()));
        }
        if fresh.is_empty() {
            continue;
        }
        let a = alerts::Alert::new(
            alerts::AlertKind::Unprotected,
            format!(
                "backup job {}: {} resources not backed up within their interval",
                v.job.name,
                fresh.len()
            ),
        )
        .job(v.job.name.clone())
        .tenant(v.job.spec.tenant.clone())
        .details(fresh.iter().map(|r| {
            let last = v
                .last_success
                .get(r)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            format!("{r}: last backed up {last}")
        }));
        send_alert(state, &v.job, a).await;
    }
    *alerted = now_unprotected;
}

/// The day's summary to the server's alerts: every run of the last 24 hours and the
/// resources left unprotected. Returns whether it was sent somewhere.
pub async fn daily_summary(state: &Arc<State>) -> anyhow::Result<bool> {
    let Some(settings) = state.alerts.clone() else {
        return Ok(false);
    };
    let until = chrono::Utc::now();
    let since = until - chrono::Duration::days(1);
    let s = state.clone();
    let (runs, unprotected) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let runs = jobs::runs_since(&s.store, since)?;
        let mut unprotected = Vec::new();
        for j in s.jobs()?.into_iter().filter(Job::enabled) {
            let name = j.name.clone();
            unprotected.extend(
                api::view(&s, j)?
                    .unprotected
                    .into_iter()
                    .map(|r| format!("{r} (job {name})")),
            );
        }
        Ok((runs, unprotected))
    })
    .await??;
    let lines: Vec<alerts::RunLine> = runs
        .iter()
        .map(|r| alerts::RunLine {
            kind: r.kind.as_str().to_string(),
            job: r.job.clone(),
            tenant: r.tenant.clone(),
            run: r.id,
            status: r.status.as_str().to_string(),
            started: r.started,
            resources: r.resources,
            failed: r.failed,
            throttled: r.throttled,
        })
        .collect();
    let alert = alerts::Alert::daily_summary(since, until, &lines, &unprotected);
    let d = alerts::Alerter::new(&settings)?.send(&alert).await;
    tracing::info!("daily summary: {d:?}");
    Ok(true)
}

/// Whether the daily summary is due at `now`: past its time of day and not sent today.
fn summary_due(
    at: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
    sent: Option<chrono::NaiveDate>,
) -> bool {
    let Some(t) = at.and_then(|a| chrono::NaiveTime::parse_from_str(a, "%H:%M").ok()) else {
        return false;
    };
    now.time() >= t && sent != Some(now.date_naive())
}

/// When a job first runs after the server started at `started`: at once when its last run
/// was cut short by a stop (it resumes) or a slot passed while the server was down (once,
/// not once per missed slot); else at its next slot.
fn first_due(
    sched: &jobs::Schedule,
    last_started: Option<chrono::DateTime<chrono::Utc>>,
    interrupted: bool,
    started: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    if interrupted {
        return Some(started);
    }
    match last_started.and_then(|l| sched.next_after(l)) {
        Some(t) if t <= started => Some(started),
        Some(t) => Some(t),
        None => sched.next_after(now),
    }
}

/// The scheduler: starts each enabled job at its slots; a job whose slot passed while the
/// server was down (or whose last run was interrupted) runs once at start-up.
pub async fn schedule(state: Arc<State>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let started = chrono::Utc::now();
    let mut next: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> =
        Default::default();
    let mut first = true;
    let mut alerted = std::collections::HashSet::new();
    let mut watched = std::time::Instant::now();
    let summary_at = state
        .ws
        .config()
        .file()
        .server
        .as_ref()
        .and_then(|s| s.daily_summary.clone());
    let mut summary_sent: Option<chrono::NaiveDate> = None;
    let mut next_drill = std::collections::HashMap::new();
    loop {
        let now = chrono::Utc::now();
        if summary_due(summary_at.as_deref(), now, summary_sent) {
            summary_sent = Some(now.date_naive());
            if let Err(e) = daily_summary(&state).await {
                tracing::error!("daily summary: {e:#}");
            }
        }
        if first || watched.elapsed() >= Duration::from_secs(60) {
            watched = std::time::Instant::now();
            watch_unprotected(&state, &mut alerted).await;
        }
        let jobs = match state.jobs() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!("listing jobs: {e:#}");
                Vec::new()
            }
        };
        for job in jobs.iter().filter(|j| j.enabled()) {
            let sched = match job.schedule() {
                Ok(s) => s,
                Err(e) => {
                    if first {
                        tracing::error!("{e}");
                    }
                    continue;
                }
            };
            let due = match next.get(&job.name) {
                Some(t) => *t,
                None => {
                    let last = jobs::last_started(&state.store, &job.name, jobs::Kind::Backup)
                        .ok()
                        .flatten();
                    let cut = jobs::last_interrupted(&state.store, &job.name).unwrap_or(false);
                    match first_due(&sched, last, cut, started, now) {
                        Some(t) => t,
                        None => continue,
                    }
                }
            };
            if due <= now {
                let trigger = if first && due == started {
                    "startup"
                } else {
                    "schedule"
                };
                match start(&state, job.clone(), trigger) {
                    Ok(Some(id)) => tracing::info!(job = %job.name, run = id, "run started"),
                    Ok(None) => {
                        tracing::warn!(job = %job.name, "slot skipped: the previous run is still going")
                    }
                    Err(e) => tracing::error!(job = %job.name, "starting a run: {e:#}"),
                }
                next.insert(
                    job.name.clone(),
                    sched
                        .next_after(now)
                        .unwrap_or(now + chrono::Duration::days(365)),
                );
            } else {
                next.insert(job.name.clone(), due);
            }
        }
        // After the backups: a backup and a drill of one job due at once, the backup goes
        // first and the drill waits for it.
        for job in jobs.iter().filter(|j| j.enabled()) {
            drill_if_due(&state, job, &mut next_drill, first, started, now);
        }
        first = false;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts `job`'s restore drill when its `verify-schedule` says so (a slot missed while
/// the server was down: once at start-up). A drill due while a run of the job is under way
/// waits for it.
fn drill_if_due(
    state: &Arc<State>,
    job: &Job,
    next: &mut std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
    first: bool,
    started: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let sched = match (job.verify(), job.drill_schedule()) {
        (Ok(Some(_)), Ok(Some(s))) => s,
        (Err(e), _) | (Ok(Some(_)), Err(e)) => {
            if first {
                tracing::error!("{e}");
            }
            return;
        }
        _ => return,
    };
    let due = match next.get(&job.name) {
        Some(t) => *t,
        None => {
            let last = jobs::last_started(&state.store, &job.name, jobs::Kind::Drill)
                .ok()
                .flatten();
            match first_due(&sched, last, false, started, now) {
                Some(t) => t,
                None => return,
            }
        }
    };
    if due > now {
        next.insert(job.name.clone(), due);
        return;
    }
    let trigger = if first && due == started {
        "startup"
    } else {
        "schedule"
    };
    match start_drill(state, job.clone(), trigger) {
        Ok(Some(id)) => tracing::info!(job = %job.name, run = id, "restore drill started"),
        Ok(None) => {
            // A run of the job holds its slot: the drill goes once it is over.
            next.insert(job.name.clone(), due);
            return;
        }
        Err(e) => tracing::error!(job = %job.name, "starting a restore drill: {e:#}"),
    }
    next.insert(
        job.name.clone(),
        sched
            .next_after(now)
            .unwrap_or(now + chrono::Duration::days(365)),
    );
}

/// Moves the legal holds still in force in the server's former table to Cairn's legal
/// holds ([`store::migrate_holds`]), under the repository's writer; done at every start
/// (nothing to do once they have moved). An error leaves the rows for the next start.
pub async fn migrate_holds(state: &Arc<State>) -> anyhow::Result<store::MovedHolds> {
    let _writer = state.writer.lock().await;
    let (ws, store) = (state.ws.clone(), state.store.clone());
    let moved = tokio::task::spawn_blocking(move || store::migrate_holds(&ws, &store)).await??;
    if !moved.moved.is_empty() {
        tracing::info!(
            "{} legal holds of the server's former table moved to Cairn's legal holds",
            moved.moved.len()
        );
    }
    Ok(moved)
}

/// Runs the server on `listener` until `stop` fires: the API, the scheduler, and on stop a
/// graceful end (running jobs are abandoned at their next await: what they staged is
/// durable, and their job runs again at the next start).
pub async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let closed = jobs::close_interrupted(&state.store)?;
    if closed > 0 {
        tracing::warn!(
            "{closed} runs were interrupted when the server last stopped; their jobs run again now"
        );
    }
    // Before any run: retention must see the holds of the server's former table.
    migrate_holds(&state).await?;
    let scheduler = tokio::spawn(schedule(state.clone(), rx.clone()));
    let mut api_stop = rx.clone();
    let router = app(state.clone());
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = api_stop.changed().await;
    });
    let handle = tokio::spawn(async move { server.await });
    stop.await;
    tracing::info!("stopping: no new runs; runs under way resume at the next start");
    let _ = tx.send(true);
    let _ = scheduler.await;
    handle.await??;
    // Runs still under way end here: recorded as interrupted, their jobs run again at the
    // next start and resume from what they staged.
    jobs::close_interrupted(&state.store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn missed_slots_run_once_at_start_up_and_interrupted_runs_resume() {
        let every = jobs::Schedule::Every(chrono::Duration::hours(1));
        let start = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let h = chrono::Duration::hours;
        // Never ran: its first slot.
        assert_eq!(
            first_due(&every, None, false, start, start),
            Some(start + h(1))
        );
        // Last ran 5 hours ago: five slots missed, one run now.
        assert_eq!(
            first_due(&every, Some(start - h(5)), false, start, start),
            Some(start)
        );
        // Last ran 10 minutes ago: its next slot.
        let recent = start - chrono::Duration::minutes(10);
        assert_eq!(
            first_due(&every, Some(recent), false, start, start),
            Some(recent + h(1))
        );
        // Cut short by the last stop: now, whatever the schedule says.
        assert_eq!(
            first_due(&every, Some(recent), true, start, start),
            Some(start)
        );
    }

    #[test]
    fn the_daily_summary_is_due_once_a_day_after_its_time() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 8, 30, 0).unwrap();
        assert!(summary_due(Some("08:00"), t, None));
        assert!(!summary_due(Some("09:00"), t, None));
        assert!(!summary_due(Some("08:00"), t, Some(t.date_naive())));
        assert!(summary_due(Some("08:00"), t, t.date_naive().pred_opt()));
        assert!(!summary_due(None, t, None));
        assert!(!summary_due(Some("eight"), t, None));
    }
}
