//! The catalog rebuilt from the repository alone, when it is lost or damaged.
//!
//! The repository is the record; the catalog only indexes it. Every restore point of a
//! resource (snapshots grouped by hostname = tenant and label = resource, oldest first) is
//! walked in the repository's order and compared, entry by entry, with the previous point as
//! the catalog already holds it (a merge of two sorted streams: memory holds one tree level
//! of the walk and a bounded channel of catalog rows, whatever the resource's size). An
//! entry whose path, size and time (and, for a message, its sidecar's) are those of the
//! previous point continues its version without being read; anything else is read and
//! becomes a new version, and what the walk no longer meets ends.
//!
//! What the repository cannot say, and what that costs:
//! - Item ids of messages, events, contacts and list items come from their sidecar or JSON
//!   (`id`). Files carry none: they get a pseudo id, `rebuilt:<path>`, stable across the
//!   rebuilt points. The next backup keys them by their Graph id again; because the
//!   repository matches unchanged files against the previous restore point by path, size and
//!   time, their content is not downloaded again.
//! - Graph's version markers (`changeKey`, `eTag`), the collection ids (mail folder, drive,
//!   list) and delta links are not in the repository. Rebuilt versions have an empty marker
//!   and a placeholder collection per service (`mail:(rebuilt)`, …), so the next backup
//!   enumerates every collection afresh and stages every item again under its real
//!   collection (a message keeps its known size and is not fetched again, unless it is a
//!   draft, whose content may change under the same time). Items Graph no longer has stay in
//!   the placeholder collection, which no enumeration lists: the engine removes them from
//!   the next restore point, as it does for a deleted folder.
//! - Recipients of a message come from its MIME header (`To`, `Cc`, `Bcc`); the next backup
//!   replaces them with Graph's. A file's permissions and earlier versions come from
//!   `~permissions/…` and `~versions/…` (id, size and time of each version only), a shared
//!   folder's from `~folder-permissions/…`.

use crate::engine::time_of;
use crate::report::{Silent, Skipped};
use cairn_catalog::{Catalog, ItemRow, sort_key};
use cairn_repo::{Repo, SnapshotInfo, SnapshotReader, WalkEntry};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::time::Instant;

/// Prefix of the pseudo ids files get in a rebuilt catalog (followed by their path).
pub const REBUILT_ID: &str = "rebuilt:";

/// How much of a message is read for its recipients: its header, almost always.
const MIME_HEAD: usize = 64 * 1024;

/// Progress of a rebuild, reported as it goes (the CLI draws it on stderr).
pub trait RebuildProgress: Send + Sync {
    /// The rebuild begins: this many resources and restore points.
    fn begin(&self, _resources: u64, _points: u64) {}
    /// A restore point of `resource` is in the catalog (or was left out, see the report).
    fn point(&self, _resource: &str, _seq: i64) {}
    fn finished(&self, _report: &RebuiltResource) {}
}

impl RebuildProgress for Silent {}

/// One resource, rebuilt.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RebuiltResource {
    pub tenant: String,
    pub resource: String,
    /// Restore points now in the catalog.
    pub points: u64,
    /// Items of its latest restore point.
    pub items: u64,
    /// Versions recorded over all its restore points.
    pub versions: u64,
    /// Entries whose content was read (the others continued a version unread).
    pub read: u64,
    /// Entries or whole restore points left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// Why the resource was not rebuilt.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RebuildReport {
    pub resources: Vec<RebuiltResource>,
    /// Snapshots that are no restore point of a resource (no label), left alone.
    pub ignored: Vec<Skipped>,
    pub seconds: f64,
}

impl RebuildReport {
    pub fn failed(&self) -> usize {
        self.resources.iter().filter(|r| r.error.is_some()).count()
    }
}

/// Rebuilds the catalog's resources, restore points and versions from every restore point
/// of `repo` (only those of `tenant`, if given). Resources must not have restore points in
/// `catalog` yet: rebuild into an empty catalog. Blocking (it reads the repository).
pub fn rebuild(
    repo: &Repo,
    catalog: &dyn Catalog,
    tenant: Option<&str>,
    progress: &dyn RebuildProgress,
) -> Result<RebuildReport, crate::BackupError> {
    let start = Instant::now();
    let mut report = RebuildReport::default();
    // Restore points are few (one per resource and run) and small: held as a list.
    let mut groups: BTreeMap<(String, String), Vec<SnapshotInfo>> = BTreeMap::new();
    for s in repo.snapshots()? {
        if tenant.is_some_and(|t| t != s.hostname) {
            continue;
        }
        // The server's audit log mirrored into the repository: not a resource.
        // Nor are records (legal holds, findings, erasures): the caller imports those.
        if s.tags.iter().any(|t| t == "audit-log") || cairn_repo::is_record(&s) {
            continue;
        }
        if s.label.is_empty() {
            report.ignored.push(Skipped {
                object: format!("snapshot {}", s.id),
                reason: "no label: not a restore point written by Cairn".into(),
            });
            continue;
        }
        groups
            .entry((s.hostname.clone(), s.label.clone()))
            .or_default()
            .push(s);
    }
    let points = groups.values().map(|v| v.len() as u64).sum();
    progress.begin(groups.len() as u64, points);
    // One reader for the whole run: the index is loaded once.
    let mut reader: Option<SnapshotReader> = None;
    for ((host, label), mut snaps) in groups {
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        let mut out = RebuiltResource {
            tenant: host.clone(),
            resource: label.clone(),
            ..RebuiltResource::default()
        };
        if let Err(e) = resource(repo, catalog, &mut reader, &snaps, &mut out, progress) {
            out.error = Some(format!("{e:#}"));
        }
        progress.finished(&out);
        report.resources.push(out);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The kind a restore point's tag records (`kind=user`); restore points written before the
/// tag existed are named as kinds always implied (`group:` names, site URLs, else users).
fn kind_of(snaps: &[SnapshotInfo]) -> cairn_catalog::ResourceKind {
    use cairn_catalog::ResourceKind;
    snaps
        .iter()
        .flat_map(|s| &s.tags)
        .find_map(|t| t.strip_prefix("kind=").and_then(ResourceKind::parse))
        .unwrap_or_else(|| match snaps.first().map(|s| s.label.as_str()) {
            Some(l) if l.starts_with("group:") => ResourceKind::Group,
            Some(l) if l.contains("://") => ResourceKind::Site,
            _ => ResourceKind::User,
        })
}

/// The restore points of one resource, oldest first.
fn resource(
    repo: &Repo,
    catalog: &dyn Catalog,
    reader: &mut Option<SnapshotReader>,
    snaps: &[SnapshotInfo],
    out: &mut RebuiltResource,
    progress: &dyn RebuildProgress,
) -> anyhow::Result<()> {
    let res = catalog
        .resource(&out.tenant, kind_of(snaps), &out.resource)?
        .id;
    if !catalog.points(res)?.is_empty() || catalog.staged(res)? > 0 {
        anyhow::bail!(
            "the catalog already holds restore points or staged changes of {}\nhint: rebuild into an empty catalog (`cairn catalog rebuild --force` moves the old one aside)",
            out.resource
        );
    }
    let mut prev: Option<i64> = None;
    for snap in snaps {
        let opened = match reader.take() {
            Some(r) => r.at(&snap.id),
            None => repo.open_snapshot(&snap.id),
        };
        let rd = match opened {
            Ok(r) => r,
            Err(e) => {
                out.skipped.push(Skipped {
                    object: format!("restore point {}", snap.id),
                    reason: format!("could not be opened: {e}"),
                });
                continue;
            }
        };
        let walked = point(&rd, catalog, res, prev, out);
        *reader = Some(rd);
        match walked {
            Ok(items) => {
                let c = catalog.commit(res, &snap.id, snap.time)?;
                prev = Some(c.seq);
                out.points += 1;
                out.items = items;
                out.versions += c.added + c.changed;
                progress.point(&out.resource, c.seq);
            }
            Err(e) => {
                // A restore point that cannot be read whole is left out: the next one is
                // compared with the last one read.
                catalog.unstage_all(res)?;
                out.skipped.push(Skipped {
                    object: format!("restore point {}", snap.id),
                    reason: format!("could not be read: {e:#}"),
                });
            }
        }
    }
    Ok(())
}

/// What a path of the layout (docs/decisions/0004) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// An item of this kind.
    Item(&'static str),
    /// A message's sidecar: read with its message.
    Sidecar,
    /// `~permissions/<file path>`, `~folder-permissions/<folder path as one name>.json`: the
    /// permissions of a file or folder shared on its own, kept in its sidecar.
    Permissions,
    /// `~versions/<file path>/<version id>`: an earlier version of a file.
    Version,
    /// A directory that is no item (a service's root, a mail folder, a month).
    Structure,
    Unknown,
}

fn classify(path: &str, is_dir: bool) -> Class {
    let parts: Vec<&str> = path.split('/').collect();
    let depth = parts.len();
    let file = |min: usize, kind: &'static str, ext: &str| {
        if is_dir {
            Class::Structure
        } else if depth >= min && path.ends_with(ext) {
            Class::Item(kind)
        } else {
            Class::Unknown
        }
    };
    match parts[0] {
        "mail" | "archive" | "fidelity" if !is_dir && path.ends_with(".meta.json") => {
            Class::Sidecar
        }
        "~permissions" | "~versions" | "~folder-permissions" if is_dir => Class::Structure,
        "~permissions" if depth >= 3 => Class::Permissions,
        "~folder-permissions" if depth == 2 && path.ends_with(".json") => Class::Permissions,
        "~versions" if depth >= 4 => Class::Version,
        "mail" => file(3, "message", ".eml"),
        "archive" => file(3, "archiveItem", ".fts"),
        "fidelity" => file(3, "messageStream", ".fts"),
        "calendar" => file(3, "event", ".json"),
        "contacts" => file(3, "contact", ".json"),
        "conversations" => file(3, "post", ".json"),
        "lists" => file(3, "listItem", ".json"),
        "todo" => file(3, "todoTask", ".json"),
        "rules" => file(2, "messageRule", ".json"),
        "settings" => file(2, "mailboxSettings", ".json"),
        // Teams (`teams.rs`): a team and its channels; a person's chats.
        "teams" if !is_dir && depth == 2 => match parts[1] {
            "team.json" => Class::Item("team"),
            "members.json" => Class::Item("teamMembers"),
            _ => Class::Unknown,
        },
        "teams" | "chats" if !is_dir && depth == 3 => match parts[2] {
            "channel.json" if parts[0] == "teams" => Class::Item("channel"),
            "chat.json" if parts[0] == "chats" => Class::Item("chat"),
            _ => Class::Unknown,
        },
        "teams" | "chats" if is_dir => Class::Structure,
        "teams" | "chats" => {
            let depth_of_message = if parts[0] == "teams" { 5 } else { 4 };
            let last = parts[depth - 1];
            if depth != depth_of_message {
                Class::Unknown
            } else if last.ends_with(".json") {
                Class::Item("chatMessage")
            } else if last.matches('.').count() == 2 {
                Class::Item("hostedContent")
            } else {
                Class::Unknown
            }
        }
        // Files and folders of a drive: `onedrive/…`, `libraries/<library>/…`.
        "onedrive" | "libraries" => {
            let root = if parts[0] == "onedrive" { 1 } else { 2 };
            match (is_dir, depth > root) {
                (_, false) if is_dir => Class::Structure,
                (_, false) => Class::Unknown,
                (true, true) => Class::Item("folder"),
                (false, true) => Class::Item("file"),
            }
        }
        _ if is_dir && depth == 1 => Class::Structure,
        _ => Class::Unknown,
    }
}

/// The placeholder collection of rebuilt versions (see the module's documentation).
fn scope_of(kind: &str, path_top: &str) -> &'static str {
    match kind {
        "message" => "mail:(rebuilt)",
        "archiveItem" => "archive:(rebuilt)",
        "messageStream" => "fidelity:(rebuilt)",
        "event" => "calendar:(rebuilt)",
        "contact" => "contacts:(rebuilt)",
        "post" => "conversations:(rebuilt)",
        "listItem" => "list:(rebuilt)",
        "todoTask" => "todo:(rebuilt)",
        "messageRule" => "rules:(rebuilt)",
        "mailboxSettings" => "settings:(rebuilt)",
        "team" | "teamMembers" => "team:(rebuilt)",
        "channel" => "channel:(rebuilt)",
        "chat" => "chat:(rebuilt)",
        "chatMessage" | "hostedContent" => match path_top {
            "chats" => "chat:(rebuilt)",
            _ => "channel:(rebuilt)",
        },
        _ => "drive:(rebuilt)",
    }
}

/// The catalog keeps times to the microsecond.
fn micros(t: Option<DateTime<Utc>>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp_micros(t.timestamp_micros()))
        .unwrap_or_default()
}

/// The time the archive gives a message's sidecar: the message's last change (see
/// `archive.rs`), so that a flag change is a change even when the size stays.
fn sidecar_time(sidecar: &str, fallback: DateTime<Utc>) -> DateTime<Utc> {
    serde_json::from_str::<Value>(sidecar)
        .ok()
        .and_then(|v| time_of(&v["lastModifiedDateTime"]))
        .unwrap_or(fallback)
}

/// One restore point walked against the previous one (`prev`), its changes staged.
/// Returns the number of items it holds.
fn point(
    reader: &SnapshotReader,
    catalog: &dyn Catalog,
    res: i64,
    prev: Option<i64>,
    out: &mut RebuiltResource,
) -> anyhow::Result<u64> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ItemRow>(256);
        let feeder = prev.map(|seq| {
            s.spawn(move || catalog.for_each_at(res, seq, "", &mut |r| tx.send(r).is_ok()))
        });
        let mut walk = PointWalk {
            reader,
            catalog,
            res,
            prev: rx.into_iter().peekable(),
            pending: None,
            items: 0,
            out,
            failed: None,
        };
        reader.walk(&mut |e| match walk.entry(e) {
            Ok(()) => true,
            Err(err) => {
                walk.failed = Some(err);
                false
            }
        })?;
        if let Some(e) = walk.failed.take() {
            return Err(e);
        }
        walk.finish()?;
        let items = walk.items;
        drop(walk);
        if let Some(f) = feeder {
            f.join()
                .map_err(|_| anyhow::anyhow!("the catalog walk panicked"))??;
        }
        Ok(items)
    })
}

/// The merge of a restore point's walk with the previous point's catalog rows.
struct PointWalk<'a> {
    reader: &'a SnapshotReader,
    catalog: &'a dyn Catalog,
    res: i64,
    /// Rows of the previous point, in repository order.
    prev: Peekable<std::sync::mpsc::IntoIter<ItemRow>>,
    /// A message or archive item seen, waiting for its sidecar (the next entry).
    pending: Option<(&'static str, WalkEntry)>,
    items: u64,
    out: &'a mut RebuiltResource,
    failed: Option<anyhow::Error>,
}

impl PointWalk<'_> {
    fn skip(&mut self, path: &str, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::warn!(resource = %self.out.resource, path, "left out of the catalog: {reason}");
        self.out.skipped.push(Skipped {
            object: path.to_string(),
            reason,
        });
    }

    fn entry(&mut self, e: WalkEntry) -> anyhow::Result<()> {
        if let Some((kind, item)) = self.pending.take() {
            let stem = item
                .path
                .strip_suffix(".eml")
                .or_else(|| item.path.strip_suffix(".fts"))
                .unwrap_or(&item.path);
            if e.path.strip_suffix(".meta.json") == Some(stem) {
                return self.item(kind, item, Some(e));
            }
            self.item(kind, item, None)?;
        }
        match classify(&e.path, e.is_dir) {
            Class::Item(kind @ ("message" | "archiveItem" | "messageStream")) => {
                self.pending = Some((kind, e))
            }
            Class::Item(kind) => self.item(kind, e, None)?,
            Class::Sidecar => self.skip(&e.path, "a sidecar without its message"),
            Class::Permissions | Class::Version => self.file_meta(e)?,
            Class::Structure => {}
            Class::Unknown => self.skip(&e.path, "not part of Cairn's layout"),
        }
        Ok(())
    }

    /// The end of the walk: what the previous point held beyond it is gone.
    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some((kind, item)) = self.pending.take() {
            self.item(kind, item, None)?;
        }
        while let Some(p) = self.prev.next() {
            self.removed(p)?;
        }
        Ok(())
    }

    /// A version of the previous point is not in this one.
    fn removed(&mut self, p: ItemRow) -> anyhow::Result<()> {
        // Staged already: the item is elsewhere in this point (a moved message).
        if self.catalog.lookup(self.res, &p.item)?.staged.is_none() {
            self.catalog.stage_remove(self.res, &p.scope, &p.item)?;
        }
        Ok(())
    }

    fn item(&mut self, kind: &str, e: WalkEntry, meta: Option<WalkEntry>) -> anyhow::Result<()> {
        let key = sort_key(&e.path);
        while self.prev.peek().is_some_and(|p| sort_key(&p.path) < key) {
            let p = self.prev.next().expect("peeked");
            self.removed(p)?;
        }
        let old = self.prev.next_if(|p| p.path == e.path);
        if let Some(o) = &old
            && o.kind == kind
            && unchanged(o, &e, meta.as_ref())
        {
            self.items += u64::from(kind != "folder");
            return Ok(());
        }
        let row = match self.build(kind, &e, meta.as_ref()) {
            Ok(r) => r,
            Err(why) => {
                self.skip(&e.path, why);
                if let Some(o) = old {
                    self.removed(o)?;
                }
                return Ok(());
            }
        };
        if let Some(o) = old
            && o.item != row.item
        {
            self.removed(o)?;
        }
        if let Some((other, false)) = self.catalog.lookup(self.res, &row.item)?.staged {
            self.skip(
                &e.path,
                format!("its id {} is also the id of {}", row.item, other.path),
            );
            return Ok(());
        }
        self.catalog.stage_put(self.res, &row)?;
        self.items += u64::from(kind != "folder");
        Ok(())
    }

    /// A file's permissions or earlier version, recorded in the file's sidecar when the file
    /// began a version in this point (they change with the file: an unchanged file keeps
    /// those of its version, unread).
    fn file_meta(&mut self, e: WalkEntry) -> anyhow::Result<()> {
        let (top, rest) = e.path.split_once('/').unwrap_or_default();
        let folder;
        let (file, version) = match top {
            "~versions" => match rest.rsplit_once('/') {
                Some((file, v)) => (file, Some(v)),
                None => return Ok(()),
            },
            "~folder-permissions" => {
                let flat = rest.strip_suffix(".json").unwrap_or(rest);
                folder = cairn_catalog::component::decode(flat);
                (folder.as_str(), None)
            }
            _ => (rest, None),
        };
        let id = format!("{REBUILT_ID}{file}");
        let Some((mut row, false)) = self.catalog.lookup(self.res, &id)?.staged else {
            return Ok(());
        };
        let mut meta: Value = row
            .sidecar
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        match version {
            None => {
                let perms = match self.read_text(&e).and_then(|t| {
                    serde_json::from_str::<Value>(&t).map_err(|err| format!("not JSON: {err}"))
                }) {
                    Ok(v) => v,
                    Err(why) => {
                        self.skip(&e.path, why);
                        return Ok(());
                    }
                };
                meta["permissions"] = perms;
            }
            Some(v) => {
                let v = serde_json::json!({
                    "id": cairn_catalog::component::decode(v),
                    "size": e.size,
                    "lastModifiedDateTime": micros(e.mtime)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                });
                match meta["versions"].as_array_mut() {
                    Some(list) => list.push(v),
                    None => meta["versions"] = Value::Array(vec![v]),
                }
            }
        }
        row.sidecar = Some(meta.to_string());
        self.catalog.stage_put(self.res, &row)?;
        Ok(())
    }

    /// An inline image of a Teams message: its id is found in the message beside it (whose
    /// body names it), its hash and type in its content and name.
    fn hosted(&mut self, row: &mut ItemRow, e: &WalkEntry) -> Result<(), String> {
        let (dir, file) = e.path.rsplit_once('/').unwrap_or_default();
        let mut parts = file.rsplitn(3, '.');
        let (ext, hash, stem) = match (parts.next(), parts.next(), parts.next()) {
            (Some(x), Some(h), Some(s)) => (x, h, s),
            _ => return Err("not named as an image of a message".into()),
        };
        let message_path = format!("{dir}/{stem}.json");
        let mut doc = Vec::new();
        self.reader
            .read(&message_path, &mut doc)
            .map_err(|err| format!("its message {message_path} cannot be read: {err}"))?;
        self.out.read += 1;
        let v: Value = serde_json::from_slice(&doc)
            .map_err(|err| format!("its message {message_path} is not JSON: {err}"))?;
        let hosted = crate::teams::hosted_ids(&v)
            .into_iter()
            .find(|h| crate::engine::short_id(h) == hash)
            .ok_or("its message does not show it")?;
        let mid = id_of(&v).ok_or("its message holds no id")?;
        let (conversation, source) = match (
            v["channelIdentity"]["teamId"].as_str(),
            v["channelIdentity"]["channelId"].as_str(),
            v["chatId"].as_str(),
        ) {
            (Some(t), Some(c), _) => {
                let at = match v["replyToId"].as_str() {
                    Some(root) => format!("/teams/{t}/channels/{c}/messages/{root}/replies/{mid}"),
                    None => format!("/teams/{t}/channels/{c}/messages/{mid}"),
                };
                (c, at)
            }
            (_, _, Some(chat)) => (chat, format!("/chats/{chat}/messages/{mid}")),
            _ => return Err("its message names no channel or chat".into()),
        };
        let mut bytes = Vec::with_capacity(e.size as usize);
        self.reader
            .read_entry(e, &mut bytes)
            .map_err(|err| err.to_string())?;
        self.out.read += 1;
        row.item = format!("{conversation}/{mid}/{hosted}");
        row.change = hosted.clone();
        row.date = Some(row.mtime);
        row.name = Some(crate::teams::conversation_name(&e.path));
        row.hash = Some({
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        });
        row.sidecar = Some(crate::teams::hosted_sidecar(
            &hosted,
            crate::teams::content_type_of(ext),
            &format!("{source}/hostedContents/{hosted}/$value"),
        ));
        Ok(())
    }

    fn read_text(&mut self, e: &WalkEntry) -> Result<String, String> {
        let mut buf = Vec::with_capacity(e.size as usize);
        self.reader
            .read_entry(e, &mut buf)
            .map_err(|err| err.to_string())?;
        self.out.read += 1;
        String::from_utf8(buf).map_err(|_| format!("{} is not UTF-8 text", e.path))
    }

    /// The version an entry holds, read from the repository. The error says why the entry
    /// cannot be catalogued.
    fn build(
        &mut self,
        kind: &str,
        e: &WalkEntry,
        meta: Option<&WalkEntry>,
    ) -> Result<ItemRow, String> {
        let mtime = micros(e.mtime);
        let mut row = ItemRow {
            scope: scope_of(kind, e.path.split('/').next().unwrap_or_default()).into(),
            kind: kind.into(),
            path: e.path.clone(),
            size: e.size,
            mtime,
            ..ItemRow::default()
        };
        match kind {
            "message" => {
                let meta = meta.ok_or("its sidecar (.meta.json) is missing: its id is unknown")?;
                let text = self.read_text(meta)?;
                let v: Value = serde_json::from_str(&text)
                    .map_err(|err| format!("its sidecar is not JSON: {err}"))?;
                row.item = id_of(&v).ok_or("its sidecar holds no id")?;
                row.subject = v["subject"].as_str().map(str::to_string);
                row.sender = v["from"]["emailAddress"]["address"]
                    .as_str()
                    .map(str::to_string);
                row.date = Some(
                    time_of(&v["receivedDateTime"])
                        .or_else(|| time_of(&v["lastModifiedDateTime"]))
                        .unwrap_or(mtime),
                );
                row.recipients = match self.reader.read_head(e, MIME_HEAD) {
                    Ok(head) => mime_recipients(&head),
                    Err(err) => {
                        tracing::warn!(path = %e.path, "recipients unknown: {err}");
                        None
                    }
                };
                row.sidecar = Some(text);
            }
            "archiveItem" | "messageStream" => {
                let meta = meta.ok_or("its sidecar (.meta.json) is missing: its id is unknown")?;
                let text = self.read_text(meta)?;
                let v: Value = serde_json::from_str(&text)
                    .map_err(|err| format!("its sidecar is not JSON: {err}"))?;
                row.item = id_of(&v).ok_or("its sidecar holds no id")?;
                row.date = Some(time_of(&v["createdDateTime"]).unwrap_or(mtime));
                let mut stream = Vec::with_capacity(e.size as usize);
                self.reader
                    .read_entry(e, &mut stream)
                    .map_err(|err| err.to_string())?;
                self.out.read += 1;
                crate::inplace::describe(&mut row, &stream);
                row.sidecar = Some(text);
            }
            "chatMessage" => {
                let text = self.read_text(e)?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|err| format!("not JSON: {err}"))?;
                let conversation = v["channelIdentity"]["channelId"]
                    .as_str()
                    .or(v["chatId"].as_str())
                    .ok_or("its JSON names no channel or chat")?;
                row.item = format!(
                    "{conversation}/{}",
                    id_of(&v).ok_or("its JSON holds no id")?
                );
                let f = json_fields(kind, &v);
                (row.subject, row.sender, row.date) = (f.subject, f.sender, f.date);
                row.name = Some(crate::teams::conversation_name(&e.path));
                row.sidecar = Some(text);
            }
            "hostedContent" => self.hosted(&mut row, e)?,
            "team" | "teamMembers" | "channel" | "chat" => {
                let text = self.read_text(e)?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|err| format!("not JSON: {err}"))?;
                row.item = match kind {
                    "teamMembers" => "teamMembers".into(),
                    _ => id_of(&v).ok_or("its JSON holds no id")?,
                };
                let f = json_fields(kind, &v);
                (row.subject, row.sender, row.date, row.name) =
                    (f.subject, f.sender, f.date, f.name);
                row.sidecar = Some(text);
            }
            "event" | "contact" | "listItem" | "post" | "todoTask" | "messageRule"
            | "mailboxSettings" => {
                let text = self.read_text(e)?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|err| format!("not JSON: {err}"))?;
                row.item = id_of(&v)
                    .or_else(|| (kind == "mailboxSettings").then(|| "mailboxSettings".into()))
                    .ok_or("its JSON holds no id")?;
                let f = json_fields(kind, &v);
                (row.subject, row.sender, row.date, row.name) =
                    (f.subject, f.sender, f.date, f.name);
                row.sidecar = Some(text);
            }
            _ => {
                row.item = format!("{REBUILT_ID}{}", e.path);
                let last = e.path.rsplit('/').next().unwrap_or_default();
                row.name = Some(cairn_catalog::component::decode(last));
                row.date = (kind == "file").then_some(mtime);
            }
        }
        Ok(row)
    }
}

fn id_of(v: &Value) -> Option<String> {
    v["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Is the entry the version `o` of the previous point? Path, size and time equal, and for a
/// message its sidecar too (as the archive decides what changed).
fn unchanged(o: &ItemRow, e: &WalkEntry, meta: Option<&WalkEntry>) -> bool {
    if o.size != e.size || o.mtime != micros(e.mtime) {
        return false;
    }
    if !matches!(o.kind.as_str(), "message" | "archiveItem" | "messageStream") {
        return true;
    }
    match (meta, &o.sidecar) {
        (Some(m), Some(s)) => {
            m.size == s.len() as u64 && micros(m.mtime) == sidecar_time(s, o.mtime)
        }
        (None, None) => true,
        _ => false,
    }
}

/// What browsing and search need of an event, contact or list item, from its Graph JSON.
pub(crate) struct JsonFields {
    pub subject: Option<String>,
    pub sender: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub name: Option<String>,
}

/// The fields the engine fills for these kinds (`pim.rs`, `conversations.rs`, `files.rs`).
pub(crate) fn json_fields(kind: &str, v: &Value) -> JsonFields {
    let text = |x: &Value| x.as_str().map(str::to_string);
    match kind {
        "event" => JsonFields {
            subject: text(&v["subject"]),
            sender: text(&v["organizer"]["emailAddress"]["address"]),
            date: v["start"]["dateTime"]
                .as_str()
                .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok())
                .map(|d| d.and_utc()),
            name: None,
        },
        "contact" => JsonFields {
            subject: None,
            sender: text(&v["emailAddresses"][0]["address"]),
            date: None,
            name: text(&v["displayName"]),
        },
        "todoTask" => JsonFields {
            subject: text(&v["title"]),
            sender: None,
            date: time_of(&v["createdDateTime"]),
            name: None,
        },
        "messageRule" => JsonFields {
            subject: text(&v["displayName"]),
            sender: None,
            date: None,
            name: None,
        },
        "mailboxSettings" => JsonFields {
            subject: Some("Mailbox settings".into()),
            sender: None,
            date: None,
            name: None,
        },
        "chatMessage" => JsonFields {
            subject: crate::teams::summary(v),
            sender: text(&v["from"]["user"]["displayName"]),
            date: time_of(&v["createdDateTime"]),
            name: None,
        },
        "team" | "channel" => JsonFields {
            subject: text(&v["description"]),
            sender: None,
            date: time_of(&v["createdDateTime"]),
            name: text(&v["displayName"]),
        },
        "chat" => JsonFields {
            subject: text(&v["topic"]),
            sender: None,
            date: time_of(&v["createdDateTime"]),
            name: text(&v["topic"]),
        },
        "teamMembers" => JsonFields {
            subject: Some("Team members".into()),
            sender: None,
            date: None,
            name: None,
        },
        "post" => JsonFields {
            subject: None,
            sender: text(&v["from"]["emailAddress"]["address"]),
            date: time_of(&v["receivedDateTime"]).or_else(|| time_of(&v["createdDateTime"])),
            name: None,
        },
        _ => JsonFields {
            subject: None,
            sender: None,
            date: time_of(&v["createdDateTime"]),
            name: text(&v["fields"]["Title"]),
        },
    }
}

/// The addresses of a message's `To`, `Cc` and `Bcc` headers, `, `-joined (as the engine
/// joins Graph's recipients).
fn mime_recipients(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let end = [text.find("\r\n\r\n"), text.find("\n\n")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(text.len());
    // Unfold: a line starting with white space continues the field before it.
    let mut fields: Vec<String> = Vec::new();
    for line in text[..end].split('\n') {
        let line = line.trim_end_matches('\r');
        match fields.last_mut() {
            Some(f) if line.starts_with([' ', '\t']) => {
                f.push(' ');
                f.push_str(line.trim_start());
            }
            _ => fields.push(line.to_string()),
        }
    }
    let mut out = Vec::new();
    for name in ["to", "cc", "bcc"] {
        for f in &fields {
            if let Some((n, v)) = f.split_once(':')
                && n.trim().eq_ignore_ascii_case(name)
            {
                out.extend(addresses(v));
            }
        }
    }
    (!out.is_empty()).then(|| out.join(", "))
}

/// The addr-specs of an address list: `"Doe, J." <j@x>, k@x` gives `j@x`, `k@x`.
fn addresses(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in list.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .into_iter()
        .filter_map(|p| {
            let addr = match (p.rfind('<'), p.rfind('>')) {
                (Some(a), Some(b)) if a < b => p[a + 1..b].trim().to_string(),
                _ => p.trim().to_string(),
            };
            (addr.contains('@') && !addr.contains(char::is_whitespace)).then_some(addr)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_the_layout() {
        assert_eq!(
            classify("mail/Inbox/2026-01/x.eml", false),
            Class::Item("message")
        );
        assert_eq!(
            classify("mail/Inbox/2026-01/x.meta.json", false),
            Class::Sidecar
        );
        assert_eq!(classify("mail/Inbox", true), Class::Structure);
        assert_eq!(
            classify("calendar/Calendar/ab.json", false),
            Class::Item("event")
        );
        assert_eq!(
            classify("contacts/Contacts/ab.json", false),
            Class::Item("contact")
        );
        assert_eq!(
            classify("lists/Tasks/1.json", false),
            Class::Item("listItem")
        );
        assert_eq!(classify("onedrive", true), Class::Structure);
        assert_eq!(classify("onedrive/a.txt", false), Class::Item("file"));
        assert_eq!(classify("onedrive/Docs", true), Class::Item("folder"));
        assert_eq!(classify("libraries/Documents", true), Class::Structure);
        assert_eq!(
            classify("libraries/Documents/a", true),
            Class::Item("folder")
        );
        assert_eq!(
            classify("libraries/Documents/a.txt", false),
            Class::Item("file")
        );
        assert_eq!(classify("libraries/stray.txt", false), Class::Unknown);
        assert_eq!(classify("other/x", false), Class::Unknown);
        assert_eq!(classify("~permissions/onedrive", true), Class::Structure);
        assert_eq!(
            classify("~permissions/onedrive/a.txt", false),
            Class::Permissions
        );
        assert_eq!(
            classify("~folder-permissions/onedrive%2FDocs.json", false),
            Class::Permissions
        );
        assert_eq!(classify("~versions/onedrive/a.txt", true), Class::Structure);
        assert_eq!(
            classify("~versions/onedrive/a.txt/v1", false),
            Class::Version
        );
    }

    #[test]
    fn recipients_come_from_the_mime_header() {
        let head = b"From: A <a@x.example>\r\nTo: \"Doe, Jane\" <jane@x.example>,\r\n bob@x.example\r\nCc: =?utf-8?q?Ren=C3=A9?= <rene@x.example>\r\nSubject: To: nobody@x.example\r\n\r\nTo: body@x.example\r\n";
        assert_eq!(
            mime_recipients(head).as_deref(),
            Some("jane@x.example, bob@x.example, rene@x.example")
        );
        assert_eq!(mime_recipients(b"Subject: hi\r\n\r\n"), None);
        assert_eq!(
            addresses("undisclosed-recipients:;, \"a <b>\" <c@d>"),
            ["c@d"]
        );
    }

    #[test]
    fn a_sidecar_takes_the_message_s_last_change_as_its_time() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            sidecar_time(r#"{"lastModifiedDateTime":"2026-01-02T03:04:05Z"}"#, t),
            DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap()
        );
        assert_eq!(sidecar_time("{}", t), t);
    }
}
