//! What a run tells its caller: a report per resource, and progress while it runs.

use serde::Serialize;

/// Progress of a run, reported by the engine; the CLI draws bars, the server exports
/// metrics. Calls come from many tasks at once.
pub trait Progress: Send + Sync {
    /// A resource's backup begins.
    fn started(&self, _resource: &str) {}
    /// Items were enumerated (new or changed ones are fetched).
    fn enumerated(&self, _resource: &str, _items: u64) {}
    /// Content was fetched from Graph.
    fn fetched(&self, _resource: &str, _items: u64, _bytes: u64) {}
    /// The resource's restore point is being written.
    fn archiving(&self, _resource: &str) {}
    fn finished(&self, _report: &ResourceReport) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// What happened to one resource.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ResourceReport {
    pub resource: String,
    pub kind: String,
    /// The restore point written, if any.
    pub snapshot: Option<String>,
    /// Items in the restore point.
    pub items: u64,
    /// Items new, changed or removed since the previous restore point.
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    /// Items whose content was fetched from Graph in this run.
    pub fetched: u64,
    pub fetched_bytes: u64,
    /// Bytes the repository stored anew (after deduplication and compression).
    pub stored_bytes: u64,
    /// Objects left out (an item, a folder, a service), with the reason.
    pub skipped: Vec<Skipped>,
    /// Signs of ransomware or mass change in this restore point against the previous one
    /// (the caller scores them after the run): not empty, the point is suspect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Why the resource has no restore point from this run.
    pub error: Option<String>,
    /// The failure may go away by itself (throttling, an outage): retry later.
    pub transient: bool,
    pub seconds: f64,
}

/// One sign of ransomware or mass change in a restore point.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Finding {
    /// `mass-deletion`, `mass-modification`, `ransomware-extension`, `ransom-note`,
    /// `high-entropy`, `mail-to-deleted-items`, `mail-purged`, `forwarding-rule`.
    pub signal: String,
    /// For people: what was seen against what threshold.
    pub summary: String,
    /// The measurements (counts, shares) and the threshold crossed.
    pub numbers: std::collections::BTreeMap<String, f64>,
    /// A few of the items concerned (paths in the restore point).
    pub examples: Vec<String>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Skipped {
    pub object: String,
    pub reason: String,
}

impl ResourceReport {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JobReport {
    pub tenant: String,
    pub resources: Vec<ResourceReport>,
    pub requests: u64,
    pub throttled: u64,
    pub seconds: f64,
}

impl JobReport {
    pub fn failed(&self) -> usize {
        self.resources.iter().filter(|r| !r.ok()).count()
    }
}
