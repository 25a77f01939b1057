//! Teams channel messages and chat messages back through Graph's migration mode, the only
//! way Graph lets an app post a message with its original author and time.
//!
//! A conversation (one channel, one chat) is restored as a whole, one message at a time,
//! oldest first: a channel created in migration mode for `folder:NAME`; with `original`,
//! the channel itself put into migration mode (`startMigration`, a beta call, when the
//! tenant's configuration allows beta) or, without beta, a new channel
//! `<channel> (restored <date>)`. Replies go under their restored root (or under the root
//! still in the channel), inline images are posted again as hosted contents, shared files
//! as the same reference attachments. `completeMigration` ends every migration started,
//! also after failures, so no channel is left closed to its people. Messages still in the
//! target (same author and time) follow the collision policy; what Graph cannot import
//! (system events, announcements, code snippets, stickers) is reported skipped with why.
//! Posts are paced to stay under Teams' five per second per channel; a 429 is waited out
//! by the client (`Retry-After`).

use crate::Collision;
use crate::names::decode_component;
use crate::report::{Done, Outcome};
use crate::run::Ctx;
use base64::Engine as _;
use cairn_catalog::ItemRow;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Whether a row belongs to Teams (restored here, conversation by conversation).
pub(crate) fn is_teams(row: &ItemRow) -> bool {
    row.path.starts_with("teams/") || row.path.starts_with("chats/")
}

/// Teams allows about five posts per second per channel or chat in migration mode.
const POST_INTERVAL: Duration = Duration::from_millis(210);

/// Attachment kinds Graph's import refuses, by content type.
const UNRESTORABLE: &[(&str, &str)] = &[
    (
        "application/vnd.microsoft.card.announcement",
        "an announcement",
    ),
    (
        "application/vnd.microsoft.card.codesnippet",
        "a code snippet",
    ),
    ("application/vnd.microsoft.card.sticker", "a sticker"),
];

/// `teams/<channel>` or `chats/<label>` of a path.
fn conversation_of(path: &str) -> Option<String> {
    let mut it = path.splitn(3, '/');
    let (top, name) = (it.next()?, it.next()?);
    it.next()?;
    matches!(top, "teams" | "chats").then(|| format!("{top}/{name}"))
}

/// Restores the Teams rows of a selection; each item's outcome goes to `done`.
pub(crate) async fn restore(
    ctx: &Ctx,
    rows: Vec<ItemRow>,
    notes: &mut Vec<String>,
    done: &mut (dyn FnMut(Outcome) + Send),
) {
    // Conversations in path order; their rows are only metadata (content is read per message).
    let mut convs: BTreeMap<String, Vec<ItemRow>> = BTreeMap::new();
    for row in rows {
        match conversation_of(&row.path) {
            Some(c) => convs.entry(c).or_default().push(row),
            None => done(outcome(
                row,
                Done::Skipped,
                "the team's settings and members are not restored through Graph; its channels' messages are".into(),
            )),
        }
    }
    let several = convs.len() > 1;
    for (conv, rows) in convs {
        let mut c = Conversation::new(ctx, &conv, several);
        c.run(rows, notes, done).await;
    }
}

fn outcome(row: ItemRow, done: Done, detail: String) -> Outcome {
    Outcome {
        path: row.path,
        kind: row.kind,
        done,
        detail,
        bytes: 0,
    }
}

/// Why a conversation's target could not be opened.
enum Open {
    /// Nothing to do in this configuration: its messages are reported skipped.
    Skip(String),
    Fail(String),
}

impl From<String> for Open {
    fn from(s: String) -> Self {
        Open::Fail(s)
    }
}

impl From<&str> for Open {
    fn from(s: &str) -> Self {
        Open::Fail(s.to_string())
    }
}

/// A message already in the target: its id and its thread's root id.
#[derive(Clone, Debug)]
struct Present {
    id: String,
    root: Option<String>,
}

struct Conversation<'a> {
    ctx: &'a Ctx,
    /// `teams/<channel>` or `chats/<label>`.
    key: String,
    chat: bool,
    /// The name it had (decoded).
    label: String,
    /// Several conversations restored at once: `folder:NAME` gets the channel's name added.
    several: bool,
    /// Graph path of the target thread's messages (`/teams/{t}/channels/{c}` or `/chats/{id}`).
    target: Option<String>,
    /// Where it went, in words.
    where_: String,
    /// Original message id → id at the target (roots, for replies).
    ids: HashMap<String, String>,
    /// By (created ms, author id): messages already at the target.
    present: HashMap<(i64, String), Present>,
    /// Roots at the target by id (not deleted).
    roots: HashMap<String, ()>,
    last_post: Option<Instant>,
}

impl<'a> Conversation<'a> {
    fn new(ctx: &'a Ctx, key: &str, several: bool) -> Self {
        let chat = key.starts_with("chats/");
        let label = decode_component(key.split_once('/').map(|x| x.1).unwrap_or(key));
        Self {
            ctx,
            key: key.to_string(),
            chat,
            label,
            several,
            target: None,
            where_: String::new(),
            ids: HashMap::new(),
            present: HashMap::new(),
            roots: HashMap::new(),
            last_post: None,
        }
    }

    async fn run(
        &mut self,
        rows: Vec<ItemRow>,
        notes: &mut Vec<String>,
        done: &mut (dyn FnMut(Outcome) + Send),
    ) {
        // Messages oldest first; inline images by their message; the rest reported.
        let mut messages: Vec<ItemRow> = Vec::new();
        let mut images: HashMap<String, Vec<(String, ItemRow)>> = HashMap::new();
        for row in rows {
            let kind = row.kind.clone();
            match kind.as_str() {
                "chatMessage" => messages.push(row),
                "hostedContent" => {
                    let mut it = row.item.splitn(3, '/');
                    let (_, m, h) = (it.next(), it.next(), it.next());
                    match (m, h) {
                        (Some(m), Some(h)) => {
                            let h = h.to_string();
                            images.entry(m.to_string()).or_default().push((h, row))
                        }
                        _ => done(outcome(row, Done::Skipped, "an inline image without its message".into())),
                    }
                }
                "channel" | "chat" => done(outcome(
                    row,
                    Done::Skipped,
                    "a channel's or chat's settings, members and tabs are not restored through Graph; its messages are".into(),
                )),
                k => done(outcome(row, Done::Skipped, format!("{k} items of Teams cannot be restored through Graph"))),
            }
        }
        if messages.is_empty() {
            for (_, row) in images.into_values().flatten() {
                done(outcome(
                    row,
                    Done::Skipped,
                    "its message is not in the selection".into(),
                ));
            }
            return;
        }
        messages.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.path.cmp(&b.path)));
        let oldest = messages.iter().filter_map(|r| r.date).min();

        if let Err((how, reason)) = self.open(oldest, notes).await {
            for row in messages {
                done(outcome(row, how, reason.clone()));
            }
            for (_, row) in images.into_values().flatten() {
                done(outcome(row, how, reason.clone()));
            }
            return;
        }
        for row in messages {
            let mid = row.item.rsplit('/').next().unwrap_or("").to_string();
            let imgs = images.remove(&mid).unwrap_or_default();
            let r = self.message(&row, &imgs).await;
            let (d, detail, bytes) = match r {
                Ok(x) => x,
                Err(reason) => (Done::Failed, reason, 0),
            };
            if d == Done::Failed {
                tracing::warn!(path = %row.path, "restore failed: {detail}");
            }
            for (_, img) in imgs {
                let (idone, idetail) = match d {
                    Done::Failed => (
                        Done::Failed,
                        format!("its message was not restored: {detail}"),
                    ),
                    Done::Skipped => (Done::Skipped, format!("its message was skipped: {detail}")),
                    x => (x, format!("inline image of its message, {}", self.where_)),
                };
                done(Outcome {
                    bytes: img.size,
                    ..outcome(img, idone, idetail)
                });
            }
            done(Outcome {
                bytes,
                ..outcome(row, d, detail)
            });
        }
        for (_, row) in images.into_values().flatten() {
            done(outcome(
                row,
                Done::Skipped,
                "its message is not in the selection".into(),
            ));
        }
        if let Err(e) = self.complete().await {
            notes.push(format!(
                "{}: completing the migration failed: {e}",
                self.where_
            ));
        }
    }

    /// The document the conversation was backed up with (`channel.json`, `chat.json`).
    async fn doc(&self) -> Value {
        let name = if self.chat {
            "chat.json"
        } else {
            "channel.json"
        };
        match self.ctx.read(&format!("{}/{name}", self.key)).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// Puts the target in migration mode: a new channel, or the original one (beta). When
    /// it cannot: whether the messages are skipped (nothing to do in this configuration) or
    /// failed, and why.
    async fn open(
        &mut self,
        oldest: Option<DateTime<Utc>>,
        notes: &mut Vec<String>,
    ) -> Result<(), (Done, String)> {
        self.open_inner(oldest, notes).await.map_err(|e| match e {
            Open::Skip(r) => (Done::Skipped, r),
            Open::Fail(r) => (Done::Failed, r),
        })
    }

    async fn open_inner(
        &mut self,
        oldest: Option<DateTime<Utc>>,
        notes: &mut Vec<String>,
    ) -> Result<(), Open> {
        let doc = self.doc().await;
        let dest = &self.ctx.dest;
        if self.chat {
            if !dest.original || dest.user.is_some() {
                return Err(Open::Skip("a chat is restored into itself only: use --target original (with beta = true in the tenant's configuration)".into()));
            }
            if !dest.beta {
                return Err(Open::Skip("restoring a chat needs Graph's beta startMigration: set beta = true in the tenant's configuration (docs/configuration.md)".into()));
            }
            let id = doc["id"]
                .as_str()
                .ok_or("the chat's id is not in the backup (chat.json)")?
                .to_string();
            let path = format!("/chats/{}", seg(&id));
            self.start_migration(&path).await?;
            self.where_ = format!("chat {}", self.label);
            self.target = Some(path.clone());
            self.index_present(&format!("{path}/messages?$top=50"))
                .await?;
            return Ok(());
        }
        let team = self
            .ctx
            .base
            .strip_prefix("/groups/")
            .ok_or("Teams channels are restored into their team (a group's restore point)")?
            .to_string();
        let original_name = doc["displayName"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.label.clone());
        let created = doc["createdDateTime"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        if doc["membershipType"]
            .as_str()
            .is_some_and(|m| m != "standard")
        {
            notes.push(format!(
                "{original_name}: a {} channel; Graph creates migration channels as standard channels only",
                doc["membershipType"].as_str().unwrap_or("")
            ));
        }
        let new_name = match &dest.root {
            Some(root) if self.several => format!("{root} {original_name}"),
            Some(root) => root.clone(),
            None if dest.original && dest.beta => {
                // The channel itself, while it exists.
                if let Some(cid) = doc["id"].as_str() {
                    let path = format!("/teams/{team}/channels/{}", seg(cid));
                    let exists = self
                        .ctx
                        .get_opt(&path)
                        .await
                        .map_err(|e| format!("looking for the channel: {e}"))?;
                    if exists.is_some() {
                        self.start_migration(&path).await?;
                        self.where_ = format!("channel {original_name}");
                        self.target = Some(path.clone());
                        self.index_present(&format!("{path}/messages?$expand=replies&$top=50"))
                            .await?;
                        return Ok(());
                    }
                }
                notes.push(format!(
                    "{original_name}: the channel is gone; restored into a new channel of that name"
                ));
                original_name.clone()
            }
            None => {
                let name = format!("{original_name} ({})", dest.label);
                notes.push(format!(
                    "{original_name}: restored into a new channel {name}, because restoring into the existing channel needs Graph's beta startMigration, which the tenant's configuration does not allow (beta = true enables it)"
                ));
                name
            }
        };
        // A channel of that name already (a rerun): into it when beta allows, else refused.
        let channels = format!("/teams/{team}/channels");
        let mut existing = None;
        let mut s = Box::pin(self.ctx.graph.items(&channels));
        while let Some(c) = s.next().await {
            let c = c.map_err(|e| format!("listing the team's channels: {e}"))?;
            if c["displayName"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&new_name))
            {
                existing = c["id"].as_str().map(str::to_string);
                break;
            }
        }
        drop(s);
        if let Some(cid) = existing {
            if !dest.beta {
                return Err(Open::Skip(format!(
                    "the team has a channel named {new_name} already (restored before?); restore with another --target folder:NAME, or allow beta to restore into it"
                )));
            }
            let path = format!("{channels}/{}", seg(&cid));
            self.start_migration(&path).await?;
            self.where_ = format!("channel {new_name}");
            self.target = Some(path.clone());
            self.index_present(&format!("{path}/messages?$expand=replies&$top=50"))
                .await?;
            return Ok(());
        }
        // Created before every message it will hold.
        let floor = oldest.map(|t| t - chrono::Duration::seconds(1));
        let when = match (created, floor) {
            (Some(c), Some(f)) if c <= f => c,
            (_, Some(f)) => f,
            (Some(c), None) => c,
            (None, None) => Utc::now() - chrono::Duration::days(1),
        };
        let body = json!({
            "@microsoft.graph.channelCreationMode": "migration",
            "displayName": new_name,
            "description": doc["description"],
            "membershipType": "standard",
            "createdDateTime": when.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let made = self
            .ctx
            .graph
            .send_json(Method::POST, &channels, body)
            .await
            .map_err(|e| format!("creating the channel {new_name} in migration mode: {e}"))?;
        let cid = made["id"]
            .as_str()
            .ok_or("the new channel has no id")?
            .to_string();
        self.where_ = format!("channel {new_name}");
        self.target = Some(format!("{channels}/{}", seg(&cid)));
        Ok(())
    }

    async fn start_migration(&self, path: &str) -> Result<(), String> {
        let url = self.ctx.graph.beta_url(&format!("{path}/startMigration"));
        match self
            .ctx
            .graph
            .send_json(Method::POST, &url, json!({}))
            .await
        {
            Ok(_) => Ok(()),
            // Left migrating by an interrupted run: this run completes it.
            Err(e) if e.status() == Some(400) && e.to_string().contains("already") => Ok(()),
            Err(e) => Err(format!("starting the migration (beta startMigration): {e}")),
        }
    }

    async fn complete(&self) -> Result<(), String> {
        let Some(path) = &self.target else {
            return Ok(());
        };
        let p = format!("{path}/completeMigration");
        match self.ctx.graph.send_json(Method::POST, &p, json!({})).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e.status(), Some(400 | 404)) && e.to_string().contains("segment") =>
            {
                let url = self.ctx.graph.beta_url(&p);
                self.ctx
                    .graph
                    .send_json(Method::POST, &url, json!({}))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// What the target thread holds (not deleted): for the collision policy and replies.
    async fn index_present(&mut self, path: &str) -> Result<(), String> {
        let mut s = Box::pin(self.ctx.graph.items(path));
        let add = |m: &Value, root: Option<String>, this: &mut Self| {
            if m["deletedDateTime"].as_str().is_some_and(|d| !d.is_empty()) {
                return;
            }
            let id = m["id"].as_str().unwrap_or("").to_string();
            if root.is_none() {
                this.roots.insert(id.clone(), ());
            }
            if let Some(t) = millis(&m["createdDateTime"]) {
                this.present.insert((t, author_id(m)), Present { id, root });
            }
        };
        let mut roots: Vec<Value> = Vec::new();
        while let Some(m) = s.next().await {
            roots.push(m.map_err(|e| format!("reading what the target holds: {e}"))?);
        }
        drop(s);
        for m in &roots {
            add(m, None, self);
            let rid = m["id"].as_str().unwrap_or("").to_string();
            if let Some(replies) = m["replies"].as_array() {
                for r in replies {
                    add(r, Some(rid.clone()), self);
                }
            }
        }
        Ok(())
    }

    /// Posts one message (paced), minding the collision policy.
    async fn message(
        &mut self,
        row: &ItemRow,
        imgs: &[(String, ItemRow)],
    ) -> Result<(Done, String, u64), String> {
        let target = self.target.clone().ok_or("no target")?;
        let raw = self.ctx.read(&row.path).await?;
        let m: Value = serde_json::from_slice(&raw)
            .map_err(|e| format!("the backed-up message is not JSON: {e}"))?;
        let oid = m["id"].as_str().unwrap_or("").to_string();
        if let Some(why) = unrestorable(&m) {
            return Ok((Done::Skipped, why, 0));
        }
        if m["deletedDateTime"].as_str().is_some_and(|d| !d.is_empty()) {
            return Ok((
                Done::Skipped,
                "it was already deleted when backed up (restore it from an earlier restore point)"
                    .into(),
                0,
            ));
        }
        let reply_to = m["replyToId"]
            .as_str()
            .filter(|s| !s.is_empty() && !self.chat)
            .map(str::to_string);
        // Its thread at the target: the restored root, or the root still there.
        let parent = reply_to.as_ref().and_then(|r| {
            self.ids
                .get(r)
                .cloned()
                .or_else(|| self.roots.contains_key(r).then(|| r.clone()))
        });
        let mut detail = self.where_.clone();
        if reply_to.is_some() && parent.is_none() {
            detail.push_str("; posted as a new post: the first post of its thread is not there");
        }
        let key = (millis(&m["createdDateTime"]).unwrap_or(0), author_id(&m));
        let mut done = Done::Created;
        let mut shift_ms = 0i64;
        if let Some(p) = self.present.get(&key).cloned() {
            let same_thread = match (&reply_to, &p.root) {
                (None, None) => true,
                (Some(_), Some(root)) => parent.as_deref() == Some(root.as_str()),
                _ => false,
            };
            if same_thread || self.chat {
                match self.ctx.dest.collision {
                    Collision::Skip => {
                        if reply_to.is_none() {
                            self.ids.insert(oid, p.id.clone());
                        }
                        return Ok((
                            Done::Skipped,
                            format!("already in {} (same author and time)", self.where_),
                            0,
                        ));
                    }
                    // Graph cannot replace a message: the restored one goes beside it, a
                    // millisecond later (two messages of a thread never share a time).
                    Collision::Overwrite | Collision::KeepBoth => {
                        done = Done::KeptBoth;
                        shift_ms = 1;
                        detail.push_str("; posted beside the message still there (Graph cannot replace a message)");
                    }
                }
            }
        }
        // The body with its inline images posted again as hosted contents.
        let mut content = m["body"]["content"].as_str().unwrap_or("").to_string();
        let mut hosted = Vec::new();
        let mut bytes = 0u64;
        for (n, (hid, img)) in imgs.iter().enumerate() {
            let data = self.ctx.read(&img.path).await?;
            bytes += data.len() as u64;
            let temp = (n + 1).to_string();
            content = rewrite_src(&content, hid, &format!("../hostedContents/{temp}/$value"));
            hosted.push(json!({
                "@microsoft.graph.temporaryId": temp,
                "contentBytes": base64::engine::general_purpose::STANDARD.encode(&data),
                "contentType": content_type(&img.path),
            }));
        }
        if content.contains("/hostedContents/") && content.contains("graph.microsoft.com") {
            detail.push_str("; an inline image was not in the backup");
        }
        if m["reactions"].as_array().is_some_and(|r| !r.is_empty()) {
            detail.push_str("; reactions are not restored (Graph imports none)");
        }
        let attachments: Vec<Value> = m["attachments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["contentType"] == "reference")
                    .map(|x| {
                        json!({"id": x["id"], "contentType": "reference",
                               "contentUrl": x["contentUrl"], "name": x["name"]})
                    })
                    .collect()
            })
            .unwrap_or_default();
        let user = &m["from"]["user"];
        let mut body = json!({
            "createdDateTime": m["createdDateTime"],
            "from": {"user": {
                "id": user["id"],
                "displayName": user["displayName"],
                "userIdentityType": user["userIdentityType"].as_str().unwrap_or("aadUser"),
            }},
            "body": {"contentType": m["body"]["contentType"].as_str().unwrap_or("html"), "content": content},
            "importance": m["importance"].as_str().unwrap_or("normal"),
            "attachments": attachments,
            "mentions": m["mentions"].as_array().cloned().unwrap_or_default(),
        });
        if reply_to.is_none() && !m["subject"].is_null() {
            body["subject"] = m["subject"].clone();
        }
        if !hosted.is_empty() {
            body["hostedContents"] = Value::Array(hosted);
        }
        let url = match &parent {
            Some(p) => format!("{target}/messages/{}/replies", seg(p)),
            None => format!("{target}/messages"),
        };
        bytes += serde_json::to_vec(&body)
            .map(|b| b.len() as u64)
            .unwrap_or(0);
        // Two messages of a thread may not share a time: on that refusal, a millisecond later.
        let mut tries = 0;
        let made = loop {
            if shift_ms > 0
                && let Some(t) = m["createdDateTime"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            {
                let t = t.with_timezone(&Utc) + chrono::Duration::milliseconds(shift_ms);
                body["createdDateTime"] =
                    json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            }
            self.pace().await;
            match self
                .ctx
                .graph
                .send_json(Method::POST, &url, body.clone())
                .await
            {
                Ok(v) => break v,
                Err(e)
                    if e.status() == Some(400)
                        && tries < 3
                        && e.to_string()
                            .to_ascii_lowercase()
                            .contains("createddatetime")
                        && !e.to_string().to_ascii_lowercase().contains("before") =>
                {
                    tries += 1;
                    shift_ms += 1;
                }
                Err(e) => return Err(format!("posting it in migration mode: {e}")),
            }
        };
        if shift_ms > 0 && done == Done::Created {
            detail.push_str(&format!("; posted {shift_ms} ms after its original time, which another message of the thread has"));
        }
        if reply_to.is_none()
            && let Some(id) = made["id"].as_str()
        {
            self.ids.insert(oid, id.to_string());
        }
        Ok((done, detail, bytes))
    }

    /// Waits so that posts to this thread stay under five per second.
    async fn pace(&mut self) {
        if let Some(last) = self.last_post {
            let since = last.elapsed();
            if since < POST_INTERVAL {
                tokio::time::sleep(POST_INTERVAL - since).await;
            }
        }
        self.last_post = Some(Instant::now());
    }
}

/// Why Graph's import cannot take this message, if it cannot.
pub(crate) fn unrestorable(m: &Value) -> Option<String> {
    if m["messageType"].as_str() == Some("systemEventMessage") {
        return Some(
            "a system event message (members added, channel renamed…): Graph imports none".into(),
        );
    }
    for a in m["attachments"].as_array().into_iter().flatten() {
        let ct = a["contentType"].as_str().unwrap_or("");
        if let Some((_, what)) = UNRESTORABLE.iter().find(|(c, _)| *c == ct) {
            return Some(format!(
                "it holds {what}, a kind of message Graph's import does not take"
            ));
        }
    }
    None
}

/// Replaces the `src` of inline images naming hosted content `hid` with `new`.
fn rewrite_src(html: &str, hid: &str, new: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find("src=") {
        let (before, after) = rest.split_at(i + 4);
        out.push_str(before);
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        let Some(q) = quote else {
            rest = after;
            continue;
        };
        let inner = &after[1..];
        let Some(end) = inner.find(q) else {
            rest = after;
            continue;
        };
        let url = &inner[..end];
        out.push(q);
        if hosted_id(url).as_deref() == Some(hid) {
            out.push_str(new);
        } else {
            out.push_str(url);
        }
        out.push(q);
        rest = &inner[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The hosted content id of `…/hostedContents/{h}/$value`.
fn hosted_id(url: &str) -> Option<String> {
    let i = url.find("/hostedContents/")?;
    let id = url[i + "/hostedContents/".len()..]
        .split(['/', '?', '#'])
        .next()?;
    (!id.is_empty()).then(|| {
        percent_encoding::percent_decode_str(id)
            .decode_utf8_lossy()
            .into_owned()
    })
}

fn content_type(path: &str) -> &'static str {
    match path
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        _ => "application/octet-stream",
    }
}

fn millis(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_millis())
}

fn author_id(m: &Value) -> String {
    m["from"]["user"]["id"]
        .as_str()
        .or(m["from"]["application"]["id"].as_str())
        .unwrap_or("")
        .to_string()
}

fn seg(s: &str) -> String {
    crate::names::segment(s)
}

/// Where a Teams row would go, in words (`--dry-run`).
pub(crate) fn describe(dest: &crate::run::Dest, row: &ItemRow) -> String {
    let Some(conv) = conversation_of(&row.path) else {
        return "(team settings are not restored)".into();
    };
    let label = decode_component(conv.split_once('/').map(|x| x.1).unwrap_or(""));
    if conv.starts_with("chats/") {
        return if dest.original && dest.beta {
            format!("chat {label} (migration mode)")
        } else {
            "(chats are restored with --target original and beta = true only)".into()
        };
    }
    match (&dest.root, dest.original && dest.beta) {
        (Some(root), _) => format!("new channel {root} (migration mode)"),
        (None, true) => format!("channel {label} (migration mode)"),
        (None, false) => format!("new channel {label} ({}) (migration mode)", dest.label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_images_are_pointed_at_their_temporary_ids() {
        let html = r#"<p>a<img src="https://graph.microsoft.com/v1.0/teams/t/channels/c/messages/1/hostedContents/aGk%3D/$value" alt='x'><img src='https://x.example/y.png'></p>"#;
        let out = rewrite_src(html, "aGk=", "../hostedContents/1/$value");
        assert!(out.contains(r#"src="../hostedContents/1/$value""#), "{out}");
        assert!(out.contains("src='https://x.example/y.png'"));
        assert!(out.contains("alt='x'"));
    }

    #[test]
    fn unrestorable_kinds_are_named() {
        assert!(unrestorable(&json!({"messageType": "systemEventMessage"})).is_some());
        let sticker = json!({"messageType": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.sticker"}]});
        assert_eq!(
            unrestorable(&sticker).unwrap(),
            "it holds a sticker, a kind of message Graph's import does not take"
        );
        let file = json!({"messageType": "message", "attachments": [{"contentType": "reference"}]});
        assert!(unrestorable(&file).is_none());
        assert_eq!(
            conversation_of("teams/General/2025-01/t/m.json").as_deref(),
            Some("teams/General")
        );
        assert_eq!(conversation_of("teams/team.json"), None);
    }
}
