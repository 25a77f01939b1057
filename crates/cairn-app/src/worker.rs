//! `cairn worker`: takes backup tasks from the NATS queue, one resource each, and backs them
//! up into the shared repository and catalog (docs/decisions/0013-workers.md).
//!
//! A task is acknowledged only after its restore point and catalog commit are durable and
//! its result is stored; until then the worker heartbeats. A worker killed in the middle of
//! a resource leaves what it staged in the shared catalog; the task goes to another worker
//! after the ack wait, and that one continues from there (content the first one spooled on
//! its own disk is read from Graph again).

use crate::Workspace;
use crate::error::UserError;
use cairn_backup::{BackupOptions, Engine, ResourceReport, Target, TargetKind};
use cairn_config::TenantOverrides;
use cairn_dist::{Delivery, Queue, Task, TaskResult};
use cairn_graph::GraphClient;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Tasks (resources) worked on at once.
    pub parallel: usize,
    /// Restore points written at once.
    pub archives: usize,
    /// Stop once the queue has stayed empty this long (`None`: run until stopped).
    pub idle_exit: Option<Duration>,
}

/// Resources a worker holds at once by default. Not the single machine's "every mailbox at
/// once": a worker takes as many tasks as it may hold, so a share of the tenant each leaves
/// the rest to the other workers.
pub const WORKER_PARALLEL: usize = 64;

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            parallel: WORKER_PARALLEL,
            archives: BackupOptions::new(".".into()).archives,
            idle_exit: None,
        }
    }
}

/// What a worker tells its operator.
pub trait WorkerProgress: Send + Sync {
    /// Connected; taking tasks.
    fn ready(&self, _queue: &str, _worker: &str) {}
    fn took(&self, _task: &Task, _delivered: i64) {}
    fn done(&self, _task: &Task, _report: &ResourceReport) {}
}

/// One engine per tenant and kind of request, so that a worker's restore points share its
/// archive slots and its Graph client shares the tenant's budgets.
struct Engines {
    ws: Arc<Workspace>,
    queue: Arc<Queue>,
    archives: usize,
    graphs: tokio::sync::Mutex<HashMap<String, Arc<GraphClient>>>,
    engines: tokio::sync::Mutex<HashMap<String, Arc<Engine>>>,
}

impl Engines {
    async fn graph(&self, tenant: &str) -> anyhow::Result<Arc<GraphClient>> {
        let mut graphs = self.graphs.lock().await;
        if let Some(g) = graphs.get(tenant) {
            return Ok(g.clone());
        }
        let t = self.ws.tenant(&TenantOverrides {
            tenant: Some(tenant.to_string()),
            ..TenantOverrides::default()
        })?;
        let mut cfg = t.graph_config()?;
        // Microsoft's SharePoint budget is the app's in the tenant, whichever worker spends it.
        let budget = self
            .queue
            .files_budget(&t.tenant_id, cfg.limits.files_ru_per_min)
            .await?;
        cfg.limits.shared_files = Some(budget);
        let g = Arc::new(GraphClient::new(cfg)?);
        graphs.insert(tenant.to_string(), g.clone());
        Ok(g)
    }

    async fn engine(&self, task: &Task) -> anyhow::Result<(Arc<Engine>, Arc<GraphClient>)> {
        let graph = self.graph(&task.tenant).await?;
        let key = format!(
            "{}|{}|{}|{}",
            task.tenant,
            task.services.join(","),
            task.file_versions,
            task.full_fidelity
        );
        let mut engines = self.engines.lock().await;
        if let Some(e) = engines.get(&key) {
            return Ok((e.clone(), graph));
        }
        let (repo, catalog) = {
            let ws = self.ws.clone();
            tokio::task::spawn_blocking(move || anyhow::Ok((ws.repo()?, ws.catalog_for_backup()?)))
                .await??
        };
        let mut opts = BackupOptions::new(self.ws.local().spool.clone());
        opts.services = crate::backup::services(Some(&task.services))?;
        opts.archives = self.archives.max(1);
        opts.file_versions = task.file_versions;
        opts.full_fidelity = task.full_fidelity;
        let e = Arc::new(Engine::new(
            graph.clone(),
            repo,
            catalog,
            &task.tenant,
            opts,
            Arc::new(cairn_backup::Silent),
        ));
        engines.insert(key, e.clone());
        Ok((e, graph))
    }
}

/// Takes tasks until stopped (or idle for `idle_exit`); tasks in hand are finished first
/// when `stop` resolves.
pub async fn work(
    ws: Arc<Workspace>,
    nats: &str,
    opts: WorkerOptions,
    progress: Arc<dyn WorkerProgress>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    if ws.settings().catalog.is_none() {
        return Err(UserError::new("a worker needs the shared catalog, and none is configured")
            .hint("give --catalog postgres://… (or catalog = … in the configuration file), the one `cairn serve` and the other workers use")
            .into());
    }
    ws.ensure_writer()?;
    let _lock = ws.local().lock_for_backup()?;
    // Fail early on a repository or catalog that cannot be opened.
    {
        let ws = ws.clone();
        tokio::task::spawn_blocking(move || anyhow::Ok((ws.repo()?, ws.catalog_for_backup()?)))
            .await??;
    }
    let queue = Arc::new(Queue::connect(nats).await?);
    let tasks = queue.tasks().await?;
    progress.ready(&queue.url().shown(), tasks.worker());
    let engines = Arc::new(Engines {
        ws: ws.clone(),
        queue: queue.clone(),
        archives: opts.archives,
        graphs: tokio::sync::Mutex::new(HashMap::new()),
        engines: tokio::sync::Mutex::new(HashMap::new()),
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.parallel.max(1)));
    let worker = tasks.worker().to_string();
    let mut idle_since = std::time::Instant::now();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p?,
            () = &mut stop => break,
        };
        let next = tokio::select! {
            n = tasks.next(Duration::from_secs(2)) => n,
            () = &mut stop => break,
        };
        let delivery = match next {
            Ok(Some(d)) => d,
            Ok(None) => {
                let busy = slots.available_permits() + 1 < opts.parallel.max(1);
                if busy {
                    idle_since = std::time::Instant::now();
                }
                if let Some(idle) = opts.idle_exit
                    && idle_since.elapsed() >= idle
                {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!("taking a task: {e:#}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        idle_since = std::time::Instant::now();
        let (engines, queue, progress, worker) = (
            engines.clone(),
            queue.clone(),
            progress.clone(),
            worker.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            handle(delivery, &engines, &queue, progress.as_ref(), &worker).await;
        });
    }
    // Finish what is in hand.
    let _ = slots.acquire_many(opts.parallel.max(1) as u32).await?;
    Ok(())
}

async fn handle(
    d: Delivery,
    engines: &Engines,
    queue: &Queue,
    progress: &dyn WorkerProgress,
    worker: &str,
) {
    let heartbeat = d.heartbeat();
    let task = d.task.clone();
    progress.took(&task, d.delivered);
    queue.event(&task, worker, "started").await;
    let (mut report, counters) = match engines.engine(&task).await {
        Ok((engine, graph)) => {
            let before = (graph.requests(), graph.throttled());
            let report = match TargetKind::parse(&task.kind) {
                Some(kind) => {
                    engine
                        .backup(&Target {
                            kind,
                            id: task.id.clone(),
                            name: task.name.clone(),
                        })
                        .await
                }
                None => failed(&task, format!("unknown kind of resource '{}'", task.kind)),
            };
            (
                report,
                (before.0, graph.requests(), before.1, graph.throttled()),
            )
        }
        Err(e) => (
            failed(
                &task,
                format!(
                    "worker {worker} cannot back up for tenant {}: {e:#}",
                    task.tenant
                ),
            ),
            (0, 0, 0, 0),
        ),
    };
    if d.delivered > 1 {
        report.skipped.push(cairn_backup::Skipped {
            object: "worker".into(),
            reason: format!(
                "taken over by {worker} (delivery {}): the worker before stopped in the middle; what it had committed or staged was kept",
                d.delivered
            ),
        });
    }
    progress.done(&task, &report);
    let result = TaskResult {
        run: task.run.clone(),
        index: task.index,
        worker: worker.to_string(),
        delivered: d.delivered,
        requests_before: counters.0,
        requests_after: counters.1,
        throttled_before: counters.2,
        throttled_after: counters.3,
        report,
    };
    // The restore point and its catalog commit are durable by now (the engine returns
    // after the commit); only then does the task leave the queue.
    if let Err(e) = d.finish(queue, &result).await {
        tracing::error!(
            "the result of {} could not be stored: {e:#}; the task will be given to a worker again",
            task.name
        );
    }
    drop(heartbeat);
}

fn failed(task: &Task, why: String) -> ResourceReport {
    ResourceReport {
        resource: task.name.clone(),
        kind: task.kind.clone(),
        error: Some(why),
        ..ResourceReport::default()
    }
}
