//! What `/metrics` shows, in Prometheus' text format: runs by job and outcome, what they
//! backed up, how long they took, when each job and each resource last succeeded, Graph's
//! requests and throttling, restore drills and what they found, suspect restore points,
//! items removed by item-level retention, restores and exports. Kept with
//! `prometheus-client`, fed by the run executor and the API as things happen.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub job: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub tenant: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub runs: Family<RunLabels, Counter>,
    pub items: Family<JobLabels, Counter>,
    pub bytes: Family<JobLabels, Counter>,
    pub requests: Family<JobLabels, Counter>,
    pub throttled: Family<JobLabels, Counter>,
    pub run_seconds: Family<JobLabels, Counter<f64, AtomicU64>>,
    pub last_success: Family<JobLabels, Gauge>,
    pub resource_last_success: Family<ResourceLabels, Gauge>,
    pub tasks: Family<TaskLabels, Counter>,
    pub drills: Family<RunLabels, Counter>,
    pub drill_checked: Family<JobLabels, Counter>,
    pub drill_failed_items: Family<JobLabels, Gauge>,
    pub drill_last_success: Family<JobLabels, Gauge>,
    pub suspect_points: Family<JobLabels, Counter>,
    pub items_expired: Family<JobLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cairn");
        let m = Metrics {
            runs: Family::default(),
            items: Family::default(),
            bytes: Family::default(),
            requests: Family::default(),
            throttled: Family::default(),
            run_seconds: Family::default(),
            last_success: Family::default(),
            resource_last_success: Family::default(),
            tasks: Family::default(),
            drills: Family::default(),
            drill_checked: Family::default(),
            drill_failed_items: Family::default(),
            drill_last_success: Family::default(),
            suspect_points: Family::default(),
            items_expired: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "backup_runs",
            "Backup runs by job and outcome",
            m.runs.clone(),
        );
        registry.register(
            "backup_items",
            "Items in the restore points written",
            m.items.clone(),
        );
        registry.register(
            "backup_fetched_bytes",
            "Bytes fetched from Graph by backups",
            m.bytes.clone(),
        );
        registry.register(
            "graph_requests",
            "Graph requests made by backups",
            m.requests.clone(),
        );
        registry.register(
            "graph_throttled",
            "Graph requests answered 429 or 503",
            m.throttled.clone(),
        );
        registry.register(
            "backup_run_seconds",
            "Time spent in backup runs",
            m.run_seconds.clone(),
        );
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the job's last run succeeded",
            m.last_success.clone(),
        );
        registry.register(
            "resource_last_success_timestamp_seconds",
            "When the resource was last backed up",
            m.resource_last_success.clone(),
        );
        registry.register("tasks", "Restores and exports started", m.tasks.clone());
        registry.register(
            "drill_runs",
            "Restore drills by job and outcome",
            m.drills.clone(),
        );
        registry.register(
            "drill_checked_items",
            "Items restore drills read back",
            m.drill_checked.clone(),
        );
        registry.register(
            "drill_failed_items",
            "Items the job's last restore drill could not read back as they were backed up",
            m.drill_failed_items.clone(),
        );
        registry.register(
            "drill_last_success_timestamp_seconds",
            "When the job's last restore drill succeeded",
            m.drill_last_success.clone(),
        );
        registry.register(
            "suspect_restore_points",
            "New restore points in which detection found signs of ransomware or mass change",
            m.suspect_points.clone(),
        );
        registry.register(
            "retention_expired_items",
            "Items removed by the jobs' item-level retention",
            m.items_expired.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A run wrote a suspect restore point.
    pub fn suspect(&self, job: &str) {
        self.suspect_points
            .get_or_create(&JobLabels { job: job.into() })
            .inc();
    }

    /// The job's item-level retention removed `n` items.
    pub fn items_expired(&self, job: &str, n: u64) {
        self.items_expired
            .get_or_create(&JobLabels { job: job.into() })
            .inc_by(n);
    }

    /// The text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A restore or export started.
    pub fn task(&self, kind: &str) {
        self.tasks
            .get_or_create(&TaskLabels { kind: kind.into() })
            .inc();
    }

    /// A restore drill ended (`report`: what it found, `None` when it could not run).
    pub fn drill(
        &self,
        job: &str,
        status: &str,
        report: Option<&cairn_app::maintenance::DrillReport>,
    ) {
        let j = JobLabels { job: job.into() };
        self.drills
            .get_or_create(&RunLabels {
                job: job.into(),
                status: status.into(),
            })
            .inc();
        if let Some(r) = report {
            self.drill_checked.get_or_create(&j).inc_by(r.checked);
            self.drill_failed_items
                .get_or_create(&j)
                .set(r.failed.len() as i64);
        }
        if status == "succeeded" {
            self.drill_last_success
                .get_or_create(&j)
                .set(chrono::Utc::now().timestamp());
        }
    }

    /// A run ended.
    pub fn run(
        &self,
        job: &str,
        tenant: &str,
        status: &str,
        report: Option<&cairn_backup::JobReport>,
    ) {
        let j = JobLabels { job: job.into() };
        self.runs
            .get_or_create(&RunLabels {
                job: job.into(),
                status: status.into(),
            })
            .inc();
        let Some(r) = report else { return };
        self.items
            .get_or_create(&j)
            .inc_by(r.resources.iter().map(|x| x.items).sum());
        self.bytes
            .get_or_create(&j)
            .inc_by(r.resources.iter().map(|x| x.fetched_bytes).sum());
        self.requests.get_or_create(&j).inc_by(r.requests);
        self.throttled.get_or_create(&j).inc_by(r.throttled);
        self.run_seconds.get_or_create(&j).inc_by(r.seconds);
        let now = chrono::Utc::now().timestamp();
        if status == "succeeded" {
            self.last_success.get_or_create(&j).set(now);
        }
        for res in r.resources.iter().filter(|x| x.ok()) {
            self.resource_last_success
                .get_or_create(&ResourceLabels {
                    tenant: tenant.into(),
                    resource: res.resource.clone(),
                })
                .set(now);
        }
    }
}
