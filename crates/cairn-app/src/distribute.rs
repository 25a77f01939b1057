//! A backup run handed to workers: one task per resource on the NATS queue, the run's
//! report gathered from what the workers did (docs/decisions/0013-workers.md).

use crate::Workspace;
use crate::backup::{BackupProgress, BackupRequest};
use crate::error::UserError;
use cairn_backup::{JobReport, Service, Target};
use cairn_config::ResolvedTenant;
use cairn_dist::{Queue, Task, Update};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Queues `targets` and waits for every one's result.
pub async fn run(
    ws: &Workspace,
    nats: &str,
    tenant: &ResolvedTenant,
    targets: Vec<Target>,
    services: &[Service],
    req: &BackupRequest,
    progress: Arc<dyn BackupProgress>,
) -> anyhow::Result<JobReport> {
    let Some(name) = tenant.name.clone() else {
        return Err(UserError::new(
            "a backup handed to workers names its tenant as the configuration file does",
        )
        .hint("add the tenant with `cairn tenant add NAME …` on every machine (same name), then give --tenant NAME")
        .into());
    };
    if ws.settings().catalog.is_none() {
        return Err(UserError::new("workers need the shared catalog, and none is configured")
            .hint("give --catalog postgres://… (or catalog = … in the configuration file) here and to every `cairn worker`")
            .into());
    }
    let queue = Queue::connect(nats).await?;
    let run = cairn_dist::run_id();
    let services: Vec<String> = services
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let tasks: Vec<Task> = targets
        .into_iter()
        .enumerate()
        .map(|(i, t)| Task {
            run: run.clone(),
            index: i as u32,
            tenant: name.clone(),
            kind: t.kind.as_str().to_string(),
            id: t.id,
            name: t.name,
            services: services.clone(),
            file_versions: req.file_versions,
            full_fidelity: req.full_fidelity,
        })
        .collect();
    tracing::info!(
        run,
        tasks = tasks.len(),
        queue = %queue.url().shown(),
        "the run is handed to workers"
    );
    let start = Instant::now();
    let results = queue
        .run(&tasks, &mut |u| match u {
            Update::Event(t, e) if e.what == "started" => progress.started(&t.name),
            Update::Event(..) => {}
            Update::Finished(r) => progress.finished(&r.report),
        })
        .await?;
    // A worker's counters over its tasks in this run.
    let mut workers: HashMap<&str, (u64, u64, u64, u64)> = HashMap::new();
    for r in results.iter().filter(|r| !r.worker.is_empty()) {
        let w = workers
            .entry(r.worker.as_str())
            .or_insert((u64::MAX, 0, u64::MAX, 0));
        w.0 = w.0.min(r.requests_before);
        w.1 = w.1.max(r.requests_after);
        w.2 = w.2.min(r.throttled_before);
        w.3 = w.3.max(r.throttled_after);
    }
    let requests = workers.values().map(|w| w.1.saturating_sub(w.0)).sum();
    let throttled = workers.values().map(|w| w.3.saturating_sub(w.2)).sum();
    let mut resources: Vec<_> = results.into_iter().map(|r| r.report).collect();
    resources.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(JobReport {
        tenant: tenant.key(),
        resources,
        requests,
        throttled,
        seconds: start.elapsed().as_secs_f64(),
    })
}
