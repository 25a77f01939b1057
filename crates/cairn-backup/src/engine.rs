//! A backup run: which resources, in what parallelism, and the life of one resource's
//! restore point (stage changes, archive, commit).

use crate::error::BackupError;
use crate::report::{JobReport, Progress, ResourceReport, Skipped};
use crate::spool::Spool;
use cairn_catalog::Catalog;
use cairn_graph::{GraphClient, GraphError};
use cairn_repo::Repo;
use futures::StreamExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What can be backed up of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Mail,
    Calendar,
    Contacts,
    OneDrive,
    SharePoint,
    /// Channels of teams (in their group's restore point) and people's chats (in theirs).
    Teams,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Mail,
        Service::Calendar,
        Service::Contacts,
        Service::OneDrive,
        Service::SharePoint,
        Service::Teams,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "mail" | "exchange" => Service::Mail,
            "calendar" | "calendars" => Service::Calendar,
            "contacts" => Service::Contacts,
            "onedrive" => Service::OneDrive,
            "sharepoint" | "sites" => Service::SharePoint,
            "teams" | "chats" => Service::Teams,
            _ => return None,
        })
    }
}

/// What a target is: the catalog stores it with the resource.
pub use cairn_catalog::ResourceKind as TargetKind;

/// A protected resource.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: TargetKind,
    /// Graph id.
    pub id: String,
    /// What people call it: user principal name, group name, site URL. Restore points are
    /// labelled with it.
    pub name: String,
}

impl Target {
    pub(crate) fn base(&self) -> String {
        match self.kind {
            TargetKind::User => format!("/users/{}", self.id),
            TargetKind::Group => format!("/groups/{}", self.id),
            TargetKind::Site => format!("/sites/{}", self.id),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub services: Vec<Service>,
    /// Resources backed up at once (their changes read from Graph; mostly waiting on it).
    /// Each mailbox has limits of its own, so the more are worked on at once the faster the
    /// run: the default takes every resource of most tenants at once and leaves the limiting
    /// to the Graph client's per-mailbox pacing. A resource being staged holds little
    /// memory; the restore points being written (`archives`) hold the heavy buffers.
    pub parallel: usize,
    /// Restore points written at once: each holds the repository's packers and compressors
    /// in memory and downloads its new files, so fewer than `parallel`.
    pub archives: usize,
    /// Concurrent content fetches per resource (Exchange allows 4 per mailbox).
    pub per_resource: usize,
    /// Where content waits between its fetch and its archive.
    pub spool_dir: PathBuf,
    /// Also keep the earlier versions of files (one more request per changed file, and
    /// their content).
    pub file_versions: bool,
    /// Also keep each primary-mailbox item's full-fidelity stream beside its MIME (the
    /// mailbox import/export API: one request per 20 items, and the storage of a second
    /// copy).
    pub full_fidelity: bool,
}

impl BackupOptions {
    pub fn new(spool_dir: PathBuf) -> Self {
        Self {
            services: Service::ALL.to_vec(),
            parallel: 2_000,
            archives: 6,
            per_resource: 4,
            spool_dir,
            file_versions: false,
            full_fidelity: false,
        }
    }
}

pub struct Engine {
    pub(crate) graph: Arc<GraphClient>,
    pub(crate) repo: Arc<Repo>,
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) tenant: String,
    pub(crate) opts: BackupOptions,
    pub(crate) progress: Arc<dyn Progress>,
    archive_slots: tokio::sync::Semaphore,
}

/// One resource's run: its catalog id, spool, and the report being filled.
pub(crate) struct Run<'a> {
    pub engine: &'a Engine,
    pub target: &'a Target,
    pub res: i64,
    pub spool: Spool,
    pub base: String,
    /// Answers of the batched polls, waiting for the requests they stand for.
    pub(crate) prefetched: crate::poll::Prefetched,
    skipped: Mutex<Vec<Skipped>>,
    fetched: AtomicU64,
    fetched_bytes: AtomicU64,
}

impl Run<'_> {
    pub fn graph(&self) -> &GraphClient {
        &self.engine.graph
    }

    pub fn catalog(&self) -> &dyn Catalog {
        self.engine.catalog.as_ref()
    }

    pub fn skip(&self, object: impl Into<String>, reason: impl Into<String>) {
        let (object, reason) = (object.into(), reason.into());
        tracing::warn!(resource = %self.target.name, %object, "skipped: {reason}");
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Skipped { object, reason });
    }

    pub fn fetched(&self, bytes: u64) {
        self.fetched.fetch_add(1, Ordering::Relaxed);
        self.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.engine.progress.fetched(&self.target.name, 1, bytes);
    }

    pub fn enumerated(&self, n: u64) {
        self.engine.progress.enumerated(&self.target.name, n);
    }

    pub fn wants(&self, s: Service) -> bool {
        self.engine.opts.services.contains(&s)
    }
}

/// The HTTP status behind a Graph error, if Graph answered.
pub(crate) fn status_of(e: &GraphError) -> Option<u16> {
    match e {
        GraphError::Api { status, .. } => Some(*status),
        GraphError::Exhausted { last, .. } => status_of(last),
        _ => None,
    }
}

/// Graph refused for want of a permission (403).
pub(crate) fn is_forbidden(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<GraphError>())
        .any(|g| status_of(g) == Some(403))
}

pub(crate) fn is_missing(e: &anyhow::Error) -> bool {
    e.downcast_ref::<GraphError>()
        .and_then(status_of)
        .is_some_and(|s| s == 404)
}

impl Engine {
    pub fn new(
        graph: Arc<GraphClient>,
        repo: Arc<Repo>,
        catalog: Arc<dyn Catalog>,
        tenant: &str,
        opts: BackupOptions,
        progress: Arc<dyn Progress>,
    ) -> Self {
        Self {
            graph,
            repo,
            catalog,
            tenant: tenant.to_string(),
            archive_slots: tokio::sync::Semaphore::new(opts.archives.max(1)),
            opts,
            progress,
        }
    }

    /// Users of the tenant; `only` (user principal names or ids) narrows the list.
    pub async fn users(&self, only: &[String]) -> Result<Vec<Target>, BackupError> {
        self.directory().users(only).await
    }

    /// Microsoft 365 groups; `only` (names or ids) narrows the list.
    pub async fn groups(&self, only: &[String]) -> Result<Vec<Target>, BackupError> {
        self.directory().groups(only).await
    }

    /// Sites and their subsites; `only` (URLs or ids) narrows the list.
    pub async fn sites(&self, only: &[String]) -> Result<Vec<Target>, BackupError> {
        self.directory().sites(only).await
    }

    fn directory(&self) -> Directory<'_> {
        Directory {
            graph: &self.graph,
            tenant: &self.tenant,
        }
    }

    /// Backs up every target, `parallel` at a time; one failing resource does not stop the
    /// others.
    pub async fn run(self: &Arc<Self>, targets: Vec<Target>) -> JobReport {
        let start = Instant::now();
        let (req0, thr0) = (self.graph.requests(), self.graph.throttled());
        // Restore points share one loaded index; this run's starts with all written so far.
        self.repo.refresh_index();
        let mut resources: Vec<ResourceReport> = futures::stream::iter(targets)
            .map(|t| {
                let this = self.clone();
                async move {
                    let name = t.name.clone();
                    match tokio::spawn(async move { this.backup(&t).await }).await {
                        Ok(r) => r,
                        Err(e) => ResourceReport {
                            resource: name,
                            error: Some(format!("the backup task failed: {e}")),
                            ..ResourceReport::default()
                        },
                    }
                }
            })
            .buffer_unordered(self.opts.parallel.max(1))
            .collect()
            .await;
        resources.sort_by(|a, b| a.resource.cmp(&b.resource));
        JobReport {
            tenant: self.tenant.clone(),
            resources,
            requests: self.graph.requests() - req0,
            throttled: self.graph.throttled() - thr0,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// One resource: stage what changed, write its restore point, commit.
    pub async fn backup(&self, target: &Target) -> ResourceReport {
        let start = Instant::now();
        self.progress.started(&target.name);
        let mut report = ResourceReport {
            resource: target.name.clone(),
            kind: format!("{:?}", target.kind).to_lowercase(),
            ..ResourceReport::default()
        };
        let res = match self
            .catalog
            .resource(&self.tenant, target.kind, &target.name)
        {
            Ok(r) => r.id,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let run = Run {
            engine: self,
            target,
            res,
            spool: Spool::new(&self.opts.spool_dir, res),
            base: target.base(),
            prefetched: crate::poll::Prefetched::default(),
            skipped: Mutex::new(Vec::new()),
            fetched: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        };
        let outcome = self.stage_and_archive(&run).await;
        report.fetched = run.fetched.load(Ordering::Relaxed);
        report.fetched_bytes = run.fetched_bytes.load(Ordering::Relaxed);
        match outcome {
            Ok(Some(done)) => {
                report.snapshot = Some(done.snapshot);
                report.items = done.items;
                report.added = done.commit.added;
                report.changed = done.commit.changed;
                report.removed = done.commit.removed;
                report.stored_bytes = done.stored;
                for (object, reason) in done.skipped {
                    run.skip(object, reason);
                }
                run.spool.clear();
            }
            Ok(None) => {}
            Err(e) => {
                report.transient = crate::error::is_transient(&e);
                report.error = Some(format!("{e:#}"));
            }
        }
        report.skipped =
            std::mem::take(&mut *run.skipped.lock().unwrap_or_else(|e| e.into_inner()));
        report.seconds = start.elapsed().as_secs_f64();
        self.progress.finished(&report);
        report
    }

    async fn stage_and_archive(
        &self,
        run: &Run<'_>,
    ) -> anyhow::Result<Option<crate::archive::Done>> {
        let mut seen = Vec::new();
        let has_points = !run.catalog().points(run.res)?.is_empty();
        match run.target.kind {
            TargetKind::User => {
                // An incremental run's polls first, batched: what they answer is not asked
                // again (a first run has no saved links, and may find no mailbox at all).
                if has_points {
                    crate::poll::prefetch(run, crate::poll::user_polls(run)?).await;
                }
                // The services are staged at once: they share the mailbox's limits (which the
                // client keeps) except OneDrive, which counts against the tenant's SharePoint
                // budget, so a user's drive moves while its mailbox is read.
                type Staging<'r> =
                    std::pin::Pin<Box<dyn std::future::Future<Output = Read> + Send + 'r>>;
                let mut all: Vec<Staging<'_>> = Vec::new();
                if run.wants(Service::OneDrive) {
                    all.push(Box::pin(service(
                        run,
                        "onedrive",
                        crate::files::stage_onedrive(run),
                    )));
                }
                if run.wants(Service::Mail) {
                    // The in-place archive after the mailbox: Exchange counts both against
                    // the person's limits.
                    all.push(Box::pin(async move {
                        let mail = service(run, "mail", crate::mail::stage(run)).await;
                        if mail != Read::Missing {
                            service(run, "archive", crate::inplace::stage(run)).await;
                            if run.engine.opts.full_fidelity {
                                service(run, "full fidelity", crate::inplace::stage_primary(run))
                                    .await;
                            }
                        }
                        mail
                    }));
                }
                if run.wants(Service::Mail) {
                    // To Do, inbox rules and mailbox settings go with the mailbox.
                    all.push(Box::pin(service(
                        run,
                        "todo",
                        crate::mailbox_extras::stage(run),
                    )));
                }
                if run.wants(Service::Calendar) {
                    all.push(Box::pin(service(
                        run,
                        "calendar",
                        crate::pim::stage_calendars(run),
                    )));
                }
                if run.wants(Service::Contacts) {
                    all.push(Box::pin(service(
                        run,
                        "contacts",
                        crate::pim::stage_contacts(run),
                    )));
                }
                if run.wants(Service::Teams) {
                    // A person's chats; a user without Teams has none to read.
                    all.push(Box::pin(optional(
                        run,
                        "teams",
                        crate::teams::stage_chats(run),
                    )));
                }
                seen = futures::future::join_all(all).await;
                if run.prefetched.len() > 0 {
                    tracing::debug!(resource = %run.target.name, unused = run.prefetched.len(), "polled answers nobody read");
                }
            }
            TargetKind::Group => {
                if run.wants(Service::SharePoint) || run.wants(Service::OneDrive) {
                    seen.push(service(run, "files", crate::files::stage_libraries(run)).await);
                }
                if run.wants(Service::Mail) {
                    let conversations = crate::conversations::stage(run);
                    seen.push(service(run, "conversations", conversations).await);
                }
                if run.wants(Service::Teams) || run.wants(Service::Mail) {
                    // Channels, when the group is a team (its conversations in Teams).
                    seen.push(optional(run, "teams", crate::teams::stage_team(run)).await);
                }
            }
            TargetKind::Site => {
                if run.wants(Service::SharePoint) {
                    seen.push(service(run, "files", crate::files::stage_libraries(run)).await);
                    seen.push(service(run, "lists", crate::files::stage_lists(run)).await);
                }
            }
        }
        if !seen.contains(&Read::Yes) && !has_points {
            if seen.contains(&Read::Failed) {
                anyhow::bail!(
                    "nothing of {} could be read (see the skipped services)",
                    run.target.name
                );
            }
            // An unlicensed user: no mailbox, no OneDrive. Nothing to back up is no failure.
            return Ok(None);
        }
        let _slot = self.archive_slots.acquire().await?;
        self.progress.archiving(&run.target.name);
        crate::archive::write(run).await.map(Some)
    }
}

/// What a tenant holds to back up: its users, groups and sites, found through Graph
/// (without a repository or a catalog, for a run handed to workers).
pub struct Directory<'a> {
    pub graph: &'a GraphClient,
    /// The tenant's key, for messages.
    pub tenant: &'a str,
}

impl Directory<'_> {
    /// Users of the tenant; `only` (user principal names or ids) narrows the list.
    pub async fn users(&self, only: &[String]) -> Result<Vec<Target>, BackupError> {
        let mut out = Vec::new();
        let mut s = Box::pin(
            self.graph
                .items("/users?$select=id,userPrincipalName,displayName,mail"),
        );
        while let Some(u) = s.next().await {
            let u = u?;
            let id = u["id"].as_str().unwrap_or_default().to_string();
            let upn = u["userPrincipalName"].as_str().unwrap_or(&id).to_string();
            if only.is_empty()
                || only
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(&upn) || *o == id)
            {
                out.push(Target {
                    kind: TargetKind::User,
                    id,
                    name: upn,
                });
            }
        }
        for o in only {
            if !out
                .iter()
                .any(|t| t.name.eq_ignore_ascii_case(o) || t.id == *o)
            {
                return Err(BackupError::UnknownResource {
                    kind: "user",
                    name: o.clone(),
                    tenant: self.tenant.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Microsoft 365 groups; `only` (names or ids) narrows the list.
    pub async fn groups(&self, only: &[String]) -> Result<Vec<Target>, BackupError> {
        let mut out = Vec::new();
        let mut s = Box::pin(
            self.graph
                .items("/groups?$select=id,displayName,mailNickname,groupTypes"),
        );
        while let Some(g) = s.next().await {
            let g = g?;
            let unified = g["groupTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "Unified"));
            let id = g["id"].as_str().unwrap_or_default().to_string();
            let name = g["mailNickname"]
                .as_str()
                .or(g["displayName"].as_str())
                .unwrap_or(&id)
                .to_string();
            let wanted = only.is_empty()
                || only
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(&name) || *o == id);
            if unified && wanted {
                out.push(Target {
                    kind: TargetKind::Group,
                    id,
                    name: format!("group:{name}"),
                });
            }
        }
        Ok(out)
    }

    /// Sites and their subsites; `only` (URLs or ids) narrows the list.
    pub async fn sites(&self, only: &[String]) -> Result<Vec<Target>, BackupError> {
        let mut out = Vec::new();
        if only.is_empty() {
            let mut s = Box::pin(self.graph.items("/sites/getAllSites?$select=id,webUrl"));
            while let Some(site) = s.next().await {
                let site = match site {
                    Ok(v) => v,
                    Err(e) if e.status() == Some(403) => {
                        return Err(BackupError::Forbidden {
                            what: format!("the sites of tenant {}", self.tenant),
                            detail: e.to_string(),
                            hint: "an app holding Sites.Selected cannot list every site: name the sites granted to it (--sites URL,URL), or grant Sites.Read.All".into(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                out.push(Target {
                    kind: TargetKind::Site,
                    id: site["id"].as_str().unwrap_or_default().to_string(),
                    name: site["webUrl"].as_str().unwrap_or_default().to_string(),
                });
            }
        } else {
            // Named sites are looked up one by one (an app holding Sites.Selected may read
            // the sites granted to it, but not list them all).
            for o in only {
                let path = match o.split_once("://").map(|(_, rest)| rest) {
                    Some(rest) => match rest.split_once('/') {
                        Some((host, p)) => format!("/sites/{host}:/{}", p.trim_end_matches('/')),
                        None => format!("/sites/{rest}"),
                    },
                    None => format!("/sites/{o}"),
                };
                let site = match self.graph.get(&format!("{path}?$select=id,webUrl")).await {
                    Ok(v) => v,
                    Err(e) if e.status() == Some(404) || e.status() == Some(400) => {
                        return Err(BackupError::UnknownResource {
                            kind: "site",
                            name: o.clone(),
                            tenant: self.tenant.to_string(),
                        });
                    }
                    Err(e) if e.status() == Some(403) => {
                        return Err(BackupError::Forbidden {
                            what: format!("site {o}"),
                            detail: e.to_string(),
                            hint: "grant the backup app this site (Sites.Selected: POST /sites/{id}/permissions with role read, docs/entra-app.md), or Sites.Read.All".into(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                out.push(Target {
                    kind: TargetKind::Site,
                    id: site["id"].as_str().unwrap_or_default().to_string(),
                    name: site["webUrl"].as_str().unwrap_or(o).to_string(),
                });
            }
        }
        // Subsites are resources of their own, found under the selected sites.
        let mut i = 0;
        while i < out.len() {
            let parent = out[i].id.clone();
            let mut subs = Box::pin(
                self.graph
                    .items(&format!("/sites/{parent}/sites?$select=id,webUrl")),
            );
            while let Some(site) = subs.next().await {
                let site = site?;
                let id = site["id"].as_str().unwrap_or_default().to_string();
                if !out.iter().any(|t| t.id == id) {
                    out.push(Target {
                        kind: TargetKind::Site,
                        id,
                        name: site["webUrl"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
            i += 1;
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Read {
    Yes,
    /// The resource does not have this service (no mailbox, no drive).
    Missing,
    Failed,
}

/// Runs one service's staging; a failure is recorded and the others go on.
async fn service(
    run: &Run<'_>,
    name: &str,
    f: impl std::future::Future<Output = anyhow::Result<()>>,
) -> Read {
    optional(run, name, async { f.await.map(|()| true) }).await
}

/// `service` for what a resource may simply not have (a group that is no team, a user
/// without Teams): `Ok(false)` says so, and nothing is reported.
async fn optional(
    run: &Run<'_>,
    name: &str,
    f: impl std::future::Future<Output = anyhow::Result<bool>>,
) -> Read {
    match f.await {
        Ok(true) => Read::Yes,
        Ok(false) => Read::Missing,
        Err(e) if is_missing(&e) => {
            run.skip(name, format!("not available for this resource: {e:#}"));
            Read::Missing
        }
        Err(e) => {
            run.skip(
                name,
                format!("{e:#} (what was read is kept; the next run continues from there)"),
            );
            Read::Failed
        }
    }
}

/// RFC 3339 time of a Graph property.
pub(crate) fn time_of(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// A short stable name for an id (ids are long and may hold characters paths dislike).
pub(crate) fn short_id(id: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(id.as_bytes())[..6])
}

/// A name made safe as one path component (the catalog's one encoder).
pub(crate) use cairn_catalog::component::encode as component;
