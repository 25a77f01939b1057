//! A restore run: the restore point and rows selected from the catalog, the target
//! resolved in Graph, each item handed to its service with a few in flight at once.

use crate::error::RestoreError;
use crate::report::{Done, Outcome, Planned, Progress, RestoreReport, Silent};
use crate::select::{Collision, RestoreTarget, Selection, prefixes, selected};
use cairn_catalog::{Catalog, ItemRow, Point, Resource, ResourceKind};
use cairn_graph::transport::Request;
use cairn_graph::{GraphClient, GraphError};
use cairn_repo::{Repo, SnapshotReader};
use futures::{Stream, StreamExt};
use http::{HeaderValue, Method};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub target: RestoreTarget,
    pub collision: Collision,
    /// Items restored at once (Exchange allows 4 concurrent requests per mailbox).
    pub concurrency: usize,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            target: RestoreTarget::Original,
            collision: Collision::Skip,
            concurrency: 4,
        }
    }
}

pub struct Restorer {
    /// The tenant `graph` reaches, as the catalog names it: only its restore points are
    /// restored, so one customer's data never goes into another customer's tenant.
    tenant: String,
    graph: Arc<GraphClient>,
    repo: Arc<Repo>,
    catalog: Arc<dyn Catalog>,
    progress: Arc<dyn Progress>,
    /// Graph's beta endpoint may be used (Teams: `startMigration`).
    beta: bool,
}

/// Where items go, known without asking Graph.
#[derive(Clone, Debug)]
pub(crate) struct Dest {
    /// The folder every restored item goes under (`folder:` targets).
    pub root: Option<String>,
    /// Restoring to where the items came from: an item may still exist under its
    /// original id.
    pub original: bool,
    pub collision: Collision,
    /// Distinguishes keep-both copies: `restored 2026-01-31`.
    pub label: String,
    /// The user whose mailbox and drive receive the items, when it is another one.
    pub user: Option<String>,
    /// Graph's beta endpoint may be used (Teams: restoring into an existing channel).
    pub beta: bool,
}

/// One run's state: the target in Graph, the restore point, caches of folders created or
/// found and of what the target already holds.
pub(crate) struct Ctx {
    pub graph: Arc<GraphClient>,
    pub reader: Arc<SnapshotReader>,
    pub dest: Dest,
    /// `/users/{id}`, `/groups/{id}`, `/sites/{id}` of the target.
    pub base: String,
    /// Folder (mail, contacts, drive) paths → ids. Held while a folder is resolved, so
    /// two items never create the same folder.
    pub dirs: tokio::sync::Mutex<HashMap<String, String>>,
    /// The target mailbox's root folder: (display name, id), read once.
    pub mail_root: tokio::sync::OnceCell<(String, String)>,
    /// Per target collection: content fingerprint → item id of what it holds.
    pub index: tokio::sync::Mutex<HashMap<String, HashMap<String, String>>>,
    /// The target's `settings/exchange` (its primary and archive mailbox ids), read once.
    pub mailboxes: tokio::sync::OnceCell<serde_json::Value>,
}

/// What restoring one item came to: done how, detail, bytes sent.
pub(crate) type ItemResult = Result<(Done, String, u64), String>;

impl Ctx {
    /// Reads an item's content from the restore point (blocking, on its own thread).
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let r = self.reader.clone();
        let p = path.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            r.read(&p, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| format!("reading the repository: {e}"))?
        .map_err(|e| format!("reading the repository: {e}"))
    }

    /// A request with a raw body (base64 MIME as text/plain, file content).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: bytes::Bytes,
    ) -> Result<Value, GraphError> {
        let url = self.graph.url(path);
        let mut req = Request::get(url.clone(), self.graph.resource_for(&method, &url));
        req.method = method;
        req.headers
            .insert("Prefer", HeaderValue::from_static("IdType=\"ImmutableId\""));
        req.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        req.body = Some(body);
        let resp = self.graph.send(req.clone()).await?;
        if !(200..300).contains(&resp.status) {
            return Err(resp.error(&req));
        }
        Ok(serde_json::from_slice(resp.bytes()).unwrap_or(Value::Null))
    }

    /// `GET` that answers `None` for 404.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, GraphError> {
        match self.graph.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What to do with an item whose identity is taken at the target by different content.
    pub fn collision_skip(&self, what: &str) -> ItemResult {
        Ok((
            Done::Skipped,
            format!(
                "{what} exists at the target with other content; --collision overwrite replaces it, keep-both restores beside it"
            ),
            0,
        ))
    }
}

impl Restorer {
    /// A restorer into `tenant` (the catalog's name of the tenant `graph` signs in to).
    pub fn new(
        tenant: &str,
        graph: Arc<GraphClient>,
        repo: Arc<Repo>,
        catalog: Arc<dyn Catalog>,
    ) -> Self {
        Self {
            tenant: tenant.to_string(),
            graph,
            repo,
            catalog,
            progress: Arc::new(Silent),
            beta: false,
        }
    }

    /// Allows Graph's beta endpoint where v1.0 lacks a call: restoring Teams messages into
    /// an existing channel or chat (`startMigration`).
    pub fn with_beta(mut self, beta: bool) -> Self {
        self.beta = beta;
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The resource and restore point a selection names, among the restore points of this
    /// restorer's tenant only.
    pub fn resolve(&self, sel: &Selection) -> Result<(Resource, Point), RestoreError> {
        use cairn_catalog::select;
        let res = select::resolve_resource(&*self.catalog, Some(&self.tenant), &sel.resource)?;
        let found = select::select_point(&*self.catalog, res, &sel.point)?;
        Ok((found.resource, found.point))
    }

    fn dest(&self, point: &Point, opts: &RestoreOptions) -> Dest {
        let day = point.time.format("%Y-%m-%d").to_string();
        Dest {
            root: match &opts.target {
                RestoreTarget::Folder(Some(n)) => Some(n.clone()),
                RestoreTarget::Folder(None) => Some(format!("Restored {day}")),
                _ => None,
            },
            original: opts.target == RestoreTarget::Original,
            collision: opts.collision,
            label: format!("restored {day}"),
            user: match &opts.target {
                RestoreTarget::User(u) => Some(u.clone()),
                _ => None,
            },
            beta: self.beta,
        }
    }

    /// The selected rows of a restore point, walked on a thread of its own and handed over
    /// through a bounded channel.
    fn rows(
        &self,
        res: i64,
        seq: i64,
        paths: &[String],
    ) -> impl Stream<Item = Result<ItemRow, RestoreError>> + Send + 'static {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<ItemRow, RestoreError>>(64);
        let catalog = self.catalog.clone();
        let prefixes = prefixes(paths);
        std::thread::spawn(move || {
            for p in prefixes {
                let mut open = true;
                let r = catalog.for_each_at(res, seq, &p, &mut |row| {
                    if !selected(&p, &row.path) {
                        return true;
                    }
                    open = tx.blocking_send(Ok(row)).is_ok();
                    open
                });
                if let Err(e) = r {
                    let _ = tx.blocking_send(Err(e.into()));
                    return;
                }
                if !open {
                    return;
                }
            }
        });
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    /// What a restore would do, item by item, without asking Graph (`--dry-run`).
    pub fn plan(
        &self,
        sel: &Selection,
        opts: &RestoreOptions,
    ) -> Result<impl Stream<Item = Result<Planned, RestoreError>> + Send + 'static, RestoreError>
    {
        let (res, point) = self.resolve(sel)?;
        check_target(&res, &opts.target)?;
        let dest = self.dest(&point, opts);
        Ok(self.rows(res.id, point.seq, &sel.paths).map(move |r| {
            r.map(|row| Planned {
                destination: describe(&dest, &row),
                path: row.path,
                kind: row.kind,
                size: row.size,
            })
        }))
    }

    /// Restores the selection; one item's failure is reported and the rest go on.
    pub async fn run(
        &self,
        sel: &Selection,
        opts: &RestoreOptions,
    ) -> Result<RestoreReport, RestoreError> {
        let start = Instant::now();
        let req0 = self.graph.requests();
        let (res, point) = self.resolve(sel)?;
        check_target(&res, &opts.target)?;
        let dest = self.dest(&point, opts);
        let base = self.target_base(&res, &opts.target).await?;
        let repo = self.repo.clone();
        let snap = point.snapshot.clone();
        let reader = tokio::task::spawn_blocking(move || repo.open_snapshot(&snap))
            .await
            .map_err(|e| RestoreError::Internal(format!("opening the restore point: {e}")))??;
        let ctx = Arc::new(Ctx {
            graph: self.graph.clone(),
            reader: Arc::new(reader),
            dest,
            base,
            dirs: Default::default(),
            mail_root: Default::default(),
            index: Default::default(),
            mailboxes: Default::default(),
        });
        self.progress.started(&res.name, point.seq);
        let mut report = RestoreReport {
            resource: res.name.clone(),
            point: point.seq,
            snapshot: point.snapshot.clone(),
            target: match &opts.target {
                RestoreTarget::Original => "original".into(),
                RestoreTarget::Folder(_) => {
                    format!("folder:{}", ctx.dest.root.clone().unwrap_or_default())
                }
                RestoreTarget::User(u) => format!("user:{u}"),
            },
            ..RestoreReport::default()
        };
        let mut walk_error = None;
        // Teams messages are restored after the rest, a conversation at a time and in order.
        let teams_rows = Arc::new(std::sync::Mutex::new(Vec::<ItemRow>::new()));
        let diverted = teams_rows.clone();
        let mut outcomes = Box::pin(
            self.rows(res.id, point.seq, &sel.paths)
                .filter(move |r| {
                    let keep = match r {
                        Ok(row) if crate::teams::is_teams(row) => {
                            if let Ok(mut v) = diverted.lock() {
                                v.push(row.clone());
                            }
                            false
                        }
                        _ => true,
                    };
                    std::future::ready(keep)
                })
                .map(|r| {
                    let ctx = ctx.clone();
                    async move {
                        match r {
                            Ok(row) => Ok(restore_one(&ctx, row).await),
                            Err(e) => Err(e),
                        }
                    }
                })
                .buffer_unordered(opts.concurrency.max(1)),
        );
        while let Some(o) = outcomes.next().await {
            match o {
                Ok(o) => {
                    self.progress.item(&o);
                    report.record(o);
                }
                Err(e) => walk_error = Some(e),
            }
        }
        drop(outcomes);
        if let Some(e) = walk_error {
            return Err(e);
        }
        let teams_rows = std::mem::take(&mut *teams_rows.lock().unwrap_or_else(|e| e.into_inner()));
        // Teams conversations come back only when named (`teams/…`, `chats/…`): a whole
        // mailbox's or group's restore does not make new channels or touch chats.
        let named = sel.paths.iter().any(|p| {
            let p = p.trim().trim_start_matches('/');
            p.starts_with("teams") || p.starts_with("chats")
        });
        if !teams_rows.is_empty() && !named {
            report.notes.push(format!(
                "{} Teams items (channel and chat messages) were not restored: name them (teams/<channel>, chats/<chat>) to restore them through migration mode",
                teams_rows.len()
            ));
        } else if !teams_rows.is_empty() {
            let mut notes = Vec::new();
            let progress = self.progress.clone();
            crate::teams::restore(&ctx, teams_rows, &mut notes, &mut |o| {
                progress.item(&o);
                report.record(o);
            })
            .await;
            report.notes.extend(notes);
        }
        report.requests = self.graph.requests() - req0;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The Graph base path of the target resource.
    async fn target_base(
        &self,
        res: &Resource,
        target: &RestoreTarget,
    ) -> Result<String, RestoreError> {
        if let RestoreTarget::User(u) = target {
            return match self
                .graph
                .get(&format!(
                    "/users/{}?$select=id,userPrincipalName",
                    crate::names::segment(u)
                ))
                .await
            {
                Ok(v) => Ok(format!("/users/{}", v["id"].as_str().unwrap_or(u.as_str()))),
                Err(e) if e.status() == Some(404) => Err(RestoreError::Target {
                    target: u.clone(),
                    detail: "no such user in the tenant".into(),
                }),
                Err(e) => Err(e.into()),
            };
        }
        match res.kind {
            ResourceKind::User => Ok(format!("/users/{}", crate::names::segment(&res.name))),
            ResourceKind::Group => {
                let want = res.name.trim_start_matches("group:");
                let mut s = Box::pin(
                    self.graph
                        .items("/groups?$select=id,displayName,mailNickname"),
                );
                while let Some(g) = s.next().await {
                    let g = g?;
                    let nick = g["mailNickname"].as_str().or(g["displayName"].as_str());
                    if nick.is_some_and(|n| n.eq_ignore_ascii_case(want)) {
                        return Ok(format!("/groups/{}", g["id"].as_str().unwrap_or_default()));
                    }
                }
                Err(RestoreError::Target {
                    target: res.name.clone(),
                    detail: "no Microsoft 365 group of that name any more".into(),
                })
            }
            ResourceKind::Site => {
                let mut queue = Vec::new();
                let mut s = Box::pin(self.graph.items("/sites/getAllSites?$select=id,webUrl"));
                while let Some(site) = s.next().await {
                    let site = site?;
                    let id = site["id"].as_str().unwrap_or_default().to_string();
                    if site["webUrl"] == res.name.as_str() {
                        return Ok(format!("/sites/{id}"));
                    }
                    queue.push(id);
                }
                drop(s);
                // Subsites are found under their parents.
                while let Some(parent) = queue.pop() {
                    let mut s = Box::pin(
                        self.graph
                            .items(&format!("/sites/{parent}/sites?$select=id,webUrl")),
                    );
                    while let Some(site) = s.next().await {
                        let site = site?;
                        let id = site["id"].as_str().unwrap_or_default().to_string();
                        if site["webUrl"] == res.name.as_str() {
                            return Ok(format!("/sites/{id}"));
                        }
                        queue.push(id);
                    }
                }
                Err(RestoreError::Target {
                    target: res.name.clone(),
                    detail: "no site with that URL any more".into(),
                })
            }
        }
    }
}

fn check_target(res: &Resource, target: &RestoreTarget) -> Result<(), RestoreError> {
    if matches!(target, RestoreTarget::User(_)) && res.kind != ResourceKind::User {
        return Err(RestoreError::Unsupported(format!(
            "{} is not a user: --target user: restores a user's mailbox and OneDrive only; use original or folder:NAME",
            res.name
        )));
    }
    Ok(())
}

/// Where an item would go, in words.
fn describe(dest: &Dest, row: &ItemRow) -> String {
    let root = |v: Vec<String>| -> String {
        let mut all: Vec<String> = dest.root.iter().cloned().collect();
        all.extend(v);
        all.join("/")
    };
    if crate::teams::is_teams(row) {
        return crate::teams::describe(dest, row);
    }
    let whose = match &dest.user {
        Some(u) => format!(" of {u}"),
        None => String::new(),
    };
    match row.kind.as_str() {
        "message" => match crate::mail::folder_of(&row.path) {
            Some(f) => format!("mail folder {}{whose}", root(f)),
            None => "?".into(),
        },
        "archiveItem" => match (&dest.root, crate::archive::folder_of(&row.path)) {
            (Some(_), Some(f)) => {
                let mut v = vec!["In-Place Archive".to_string()];
                v.extend(f);
                format!("mail folder {}{whose}", root(v))
            }
            (None, Some(f)) => format!("archive folder {}{whose}", f.join("/")),
            (_, None) => "?".into(),
        },
        "messageStream" => match crate::mail::folder_under("fidelity/", &row.path) {
            Some(f) => format!("mail folder {}{whose} (full fidelity)", root(f)),
            None => "?".into(),
        },
        "file" | "folder" => match crate::files::file_of(&row.path) {
            Some((crate::files::Drive::OneDrive, parts)) => {
                format!("OneDrive{whose} /{}", root(parts))
            }
            Some((crate::files::Drive::Library(l), parts)) => {
                format!("library {l} /{}", root(parts))
            }
            None => "?".into(),
        },
        "event" => format!(
            "calendar {}{whose}",
            crate::pim::calendar_of(&row.path).unwrap_or_default()
        ),
        "contact" => format!(
            "contact folder {}{whose}",
            root(crate::pim::contact_folder_of(&row.path).unwrap_or_default())
        ),
        "listItem" => format!(
            "list {}",
            crate::pim::list_of(&row.path).unwrap_or_default()
        ),
        "todoTask" => format!(
            "task list {}{whose}",
            root(vec![
                crate::extras::task_list_of(&row.path).unwrap_or_default()
            ])
            .replace('/', " ")
        ),
        "messageRule" => format!("inbox rules{whose}"),
        "mailboxSettings" => format!("mailbox settings{whose}"),
        k => format!("(cannot restore {k} items)"),
    }
}

async fn restore_one(ctx: &Ctx, row: ItemRow) -> Outcome {
    let r = match row.kind.as_str() {
        "message" => crate::mail::restore(ctx, &row).await,
        "archiveItem" | "messageStream" => crate::archive::restore(ctx, &row).await,
        "file" => crate::files::restore(ctx, &row).await,
        "folder" => crate::files::restore_folder(ctx, &row).await,
        "event" | "contact" => crate::pim::restore(ctx, &row).await,
        "listItem" => crate::pim::restore_list_item(ctx, &row).await,
        "todoTask" => crate::extras::restore_task(ctx, &row).await,
        "messageRule" => crate::extras::restore_rule(ctx, &row).await,
        "mailboxSettings" => crate::extras::restore_settings(ctx, &row).await,
        k => Ok((
            Done::Skipped,
            format!("{k} items cannot be restored through Graph"),
            0,
        )),
    };
    let (done, detail, bytes) = match r {
        Ok(x) => x,
        Err(reason) => (Done::Failed, reason, 0),
    };
    if done == Done::Failed {
        tracing::warn!(path = %row.path, "restore failed: {detail}");
    }
    Outcome {
        path: row.path,
        kind: row.kind,
        done,
        detail,
        bytes,
    }
}

/// A Graph failure as an item's reason.
pub(crate) fn why(what: &str, e: GraphError) -> String {
    format!("{what}: {e}")
}
