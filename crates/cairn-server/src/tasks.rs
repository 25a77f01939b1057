//! Restores and exports started through the API run as tasks in the background: the call
//! answers 202 with the task's id at once, `GET /api/v1/tasks/{id}` shows its progress and,
//! when it is done, its report; an export's zip archive is downloaded from
//! `GET /api/v1/tasks/{id}/download`. Tasks live as long as the server runs (the reports
//! of restores are also in the audit log); exports are written under the server's state
//! directory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Restore,
    Export,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    Running,
    Succeeded,
    /// Done, but some items could not be restored or exported (the report lists them).
    Partial,
    Failed,
}

/// A task as the API shows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: u64,
    pub kind: Kind,
    pub status: TaskStatus,
    /// The token that started it.
    pub owner: String,
    /// The tenant it works on.
    pub tenant: Option<String>,
    /// Items done so far and bytes moved.
    pub items: u64,
    pub bytes: u64,
    pub created: chrono::DateTime<chrono::Utc>,
    pub finished: Option<chrono::DateTime<chrono::Utc>>,
    /// The restore's or export's report, when done.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
    /// The export can be downloaded.
    pub download: bool,
}

/// One task: its view, with counters the work updates as it goes.
pub struct Task {
    pub view: Mutex<TaskView>,
    pub items: AtomicU64,
    pub bytes: AtomicU64,
    /// The export's archive, once written.
    pub archive: Mutex<Option<std::path::PathBuf>>,
}

impl Task {
    pub fn snapshot(&self) -> TaskView {
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v.items = self.items.load(Ordering::Relaxed);
        v.bytes = self.bytes.load(Ordering::Relaxed);
        v
    }

    /// The task ended with `result`: succeeded when `complete` says every item made it,
    /// else partial; failed on an error.
    pub fn done<R: serde::Serialize, E: std::fmt::Display>(
        &self,
        result: Result<R, E>,
        complete: impl Fn(&R) -> bool,
    ) {
        match result {
            Ok(report) => {
                let status = if complete(&report) {
                    TaskStatus::Succeeded
                } else {
                    TaskStatus::Partial
                };
                self.finish(status, serde_json::to_value(&report).ok(), None);
            }
            Err(e) => self.finish(TaskStatus::Failed, None, Some(format!("{e:#}"))),
        }
    }

    /// The task ended.
    pub fn finish(
        &self,
        status: TaskStatus,
        report: Option<serde_json::Value>,
        error: Option<String>,
    ) {
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        v.status = status;
        v.report = report;
        v.error = error;
        v.finished = Some(chrono::Utc::now());
        v.download = self
            .archive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
    }
}

impl cairn_app::export::ExportProgress for Task {
    fn exported(&self, items: u64, bytes: u64) {
        self.items.store(items, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }
}

impl cairn_restore::Progress for Task {
    fn item(&self, o: &cairn_restore::Outcome) {
        self.items.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(o.bytes, Ordering::Relaxed);
    }
}

/// Every task of this server's life.
#[derive(Default)]
pub struct Tasks {
    next: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Task>>>,
}

impl Tasks {
    /// A new running task.
    pub fn create(&self, kind: Kind, owner: &str, tenant: Option<String>) -> Arc<Task> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let t = Arc::new(Task {
            view: Mutex::new(TaskView {
                id,
                kind,
                status: TaskStatus::Running,
                owner: owner.to_string(),
                tenant,
                items: 0,
                bytes: 0,
                created: chrono::Utc::now(),
                finished: None,
                report: None,
                error: None,
                download: false,
            }),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            archive: Mutex::new(None),
        });
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, t.clone());
        t
    }

    pub fn get(&self, id: u64) -> Option<Arc<Task>> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}
