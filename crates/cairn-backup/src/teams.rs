//! Microsoft Teams: a team's channels in its group's restore point, each person's chats in
//! theirs (docs/decisions/0011-teams.md; the layout below is what `cairn export` and the
//! restore read).
//!
//! Layout of a team (group restore point):
//! - `teams/team.json` (kind `team`), `teams/members.json` (kind `teamMembers`);
//! - `teams/<channel>/channel.json` (kind `channel`, with its `members` and `tabs`);
//! - `teams/<channel>/<YYYY-MM>/<root created>-<root id hash>/<created>-<id hash>.json`
//!   (kind `chatMessage`, a root post and each reply, item id `<channel id>/<message id>`);
//! - `<message file stem>.<hosted id hash>.<ext>` (kind `hostedContent`, an inline image's
//!   bytes, item id `<channel id>/<message id>/<hosted id>`).
//!
//! Of a person (user restore point): `chats/<label>/chat.json` (kind `chat`, with its
//! members) and `chats/<label>/<YYYY-MM>/<created>-<id hash>.json`, hosted contents beside.
//!
//! Channels come from a delta query per channel (`$expand=replies`: a changed thread comes
//! whole, and is reconciled against what the last restore point held of it). Delta only
//! reaches eight months back: root posts older than that are listed once (`channel-old:<id>`
//! holds `done`) and kept from the catalog afterwards. Chats have no delta: the export API
//! `getAllMessages` gives every message changed in a time window, from the last run's end
//! (less five minutes) to now. A message deleted (`deletedDateTime` set) leaves the next
//! restore point; the earlier ones keep it. Every page goes straight to the catalog: memory
//! holds one page (one thread with its replies) at a time.

use crate::engine::{Run, component, is_forbidden, short_id, status_of, time_of};
use crate::scope::{changed, drop_vanished};
use cairn_catalog::ItemRow;
use cairn_graph::{DeltaEvent, GraphError};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// Graph's largest page of messages.
const PAGE: u32 = 50;

/// How file names show times (`yyyymmddThhmmss`, UTC).
const STAMP: &str = "%Y%m%dT%H%M%S";

/// Scope of the chat window's end time.
const CHATS: &str = "chats";

/// What the backup app needs to read Teams, for hints.
pub(crate) const READ_PERMISSIONS: &str = "Team.ReadBasic.All, Channel.ReadBasic.All, ChannelMember.Read.All, TeamMember.Read.All, TeamsTab.Read.All, ChannelMessage.Read.All and Chat.Read.All";

/// Graph has no such resource: 404, or the 400 Graph gives for a path segment it does not
/// serve (a tenant or cloud without Teams).
fn absent(e: &GraphError) -> bool {
    match status_of(e) {
        Some(404) => true,
        Some(400) => e.to_string().contains("Resource not found for the segment"),
        _ => false,
    }
}

fn with_hint(e: GraphError) -> anyhow::Error {
    let e = anyhow::Error::from(e);
    if is_forbidden(&e) {
        e.context(format!(
            "reading Microsoft Teams\nhint: the backup app needs {READ_PERMISSIONS} (docs/entra-app.md)"
        ))
    } else {
        e
    }
}

/// One conversation (a channel or a chat): where its messages go, how they are fetched.
struct Conv<'a> {
    /// `channel:<id>` or `chat:<id>`.
    scope: String,
    /// `teams/<channel>` or `chats/<label>`.
    dir: String,
    /// The channel or chat id: item ids are `<id>/<message id>`.
    id: &'a str,
    /// `/teams/{t}/channels/{c}` or `/chats/{id}`: hosted contents are read under it.
    base: String,
    /// Set when something could not be read: the conversation's token is then kept.
    failed: AtomicBool,
}

impl Conv<'_> {
    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// A channel message's thread: its root id and directory.
struct Thread<'a> {
    root: &'a str,
    dir: &'a str,
}

/// The team's id if the group is a team; `None` for a group without one.
pub(crate) async fn team(run: &Run<'_>) -> anyhow::Result<Option<Value>> {
    match run.graph().get(&format!("/teams/{}", run.target.id)).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(with_hint(e)),
    }
}

/// Stages the team's channels, or, for a group that is no team (any more), removes what
/// was held of one. `false`: the group is no team.
pub(crate) async fn stage_team(run: &Run<'_>) -> anyhow::Result<bool> {
    let Some(mut team_json) = team(run).await? else {
        for prefix in ["team:", "channel:", "channel-old:"] {
            drop_vanished(run, prefix, &HashSet::new())?;
        }
        return Ok(false);
    };
    let team_id = run.target.id.as_str();
    let team_scope = format!("team:{team_id}");
    strip_odata(&mut team_json);
    stage_doc(
        run,
        &team_scope,
        "team",
        team_id,
        "teams/team.json",
        &team_json,
    )?;
    match collect(run, &format!("/teams/{team_id}/members")).await {
        Ok(members) => {
            stage_doc(
                run,
                &team_scope,
                "teamMembers",
                "teamMembers",
                "teams/members.json",
                &Value::Array(members),
            )?;
        }
        Err(e) => run.skip("team members", format!("{:#}", with_hint(e))),
    }
    // The team's own channels (a shared channel is backed up with the team hosting it).
    let channels = collect(run, &format!("/teams/{team_id}/channels"))
        .await
        .map_err(with_hint)?;
    let last = run.catalog().points(run.res)?.last().map(|p| p.seq);
    let mut listed = HashSet::from([team_scope]);
    let mut old = HashSet::new();
    for ch in channels {
        let Some(cid) = ch["id"].as_str().map(str::to_string) else {
            run.skip("a channel", "Graph gave no id");
            continue;
        };
        listed.insert(format!("channel:{cid}"));
        old.insert(format!("channel-old:{cid}"));
        let name = ch["displayName"]
            .as_str()
            .unwrap_or("(channel)")
            .to_string();
        if let Err(e) = channel(run, team_id, &cid, ch, last).await {
            run.skip(format!("channel {name}"), format!("{e:#}"));
        }
    }
    drop_vanished(run, "team:", &listed)?;
    drop_vanished(run, "channel:", &listed)?;
    drop_vanished(run, "channel-old:", &old)?;
    Ok(true)
}

/// One channel: its description, then its messages.
async fn channel(
    run: &Run<'_>,
    team: &str,
    cid: &str,
    mut ch: Value,
    last: Option<i64>,
) -> anyhow::Result<()> {
    let cat = run.catalog();
    let name = ch["displayName"]
        .as_str()
        .unwrap_or("(channel)")
        .to_string();
    let conv = Conv {
        scope: format!("channel:{cid}"),
        dir: format!("teams/{}", component(&name)),
        id: cid,
        base: format!("/teams/{team}/channels/{cid}"),
        failed: AtomicBool::new(false),
    };
    strip_odata(&mut ch);
    for (part, what) in [("members", "members"), ("tabs", "tabs")] {
        match collect(run, &format!("{}/{part}", conv.base)).await {
            Ok(v) => ch[part] = Value::Array(v),
            Err(e) => run.skip(
                format!("the {what} of channel {name}"),
                format!("{:#}", with_hint(e)),
            ),
        }
    }
    let path = format!("{}/channel.json", conv.dir);
    if let Some(moved) = stage_doc(run, &conv.scope, "channel", cid, &path, &ch)? {
        // Renamed: what the last point held moves along.
        relocate(run, last, &moved, &conv.dir)?;
    }

    // Changed threads, from the delta query.
    let start = format!("{}/messages/delta?$expand=replies&$top={PAGE}", conv.base);
    let mut link = cat.token(run.res, &conv.scope)?;
    let mut count = 0;
    let mut complete = None;
    loop {
        let mut restart = false;
        {
            let mut events = Box::pin(run.graph().delta(&start, link.as_deref()));
            while let Some(ev) = events.next().await {
                match ev.map_err(with_hint)? {
                    DeltaEvent::Upsert(root) => {
                        count += 1;
                        stage_thread(run, &conv, root, last).await?;
                    }
                    DeltaEvent::Removed { id } => {
                        remove_message(run, &conv.scope, &format!("{cid}/{id}"))?;
                    }
                    DeltaEvent::Complete { delta_link } => complete = Some(delta_link),
                    DeltaEvent::Resync { .. } => {
                        restart = true;
                        break;
                    }
                }
            }
        }
        if restart && link.is_some() {
            // Root posts delta no longer returns are kept: no reconciliation of the channel.
            tracing::info!(resource = %run.target.name, channel = %name, "delta token expired: reading the last eight months afresh");
            link = None;
            continue;
        }
        break;
    }
    if !conv.failed()
        && let Some(l) = complete
    {
        cat.stage_token(run.res, &conv.scope, Some(&l))?;
    }

    // Root posts older than delta reaches, once.
    let old = format!("channel-old:{cid}");
    if cat.token(run.res, &old)?.as_deref() != Some("done") {
        let mut roots = Box::pin(run.graph().items(&format!(
            "{}/messages?$expand=replies&$top={PAGE}",
            conv.base
        )));
        while let Some(root) = roots.next().await {
            count += 1;
            stage_thread(run, &conv, root.map_err(with_hint)?, last).await?;
        }
        if !conv.failed() {
            cat.stage_token(run.res, &old, Some("done"))?;
        }
    }
    run.enumerated(count);
    Ok(())
}

/// A root post with its replies (as `$expand=replies` gives them, and beyond through
/// `replies@odata.nextLink`). What the last point held of the thread and Graph no longer
/// gives leaves the next one.
async fn stage_thread(
    run: &Run<'_>,
    conv: &Conv<'_>,
    mut root: Value,
    last: Option<i64>,
) -> anyhow::Result<()> {
    let Some(rid) = root["id"].as_str().map(str::to_string) else {
        run.skip(format!("a post in {}", conv.dir), "Graph gave no id");
        return Ok(());
    };
    let created = created_of(&root);
    let dir = format!(
        "{}/{}/{}-{}",
        conv.dir,
        created.format("%Y-%m"),
        created.format(STAMP),
        short_id(&rid)
    );
    let thread = Thread {
        root: &rid,
        dir: &dir,
    };
    let replies = match root.as_object_mut().and_then(|o| o.remove("replies")) {
        Some(Value::Array(r)) => r,
        _ => Vec::new(),
    };
    let more = root["replies@odata.nextLink"].as_str().map(str::to_string);
    let mut seen = HashSet::new();
    let mut note = |m: &Value| {
        if let (Some(id), true) = (m["id"].as_str(), m["deletedDateTime"].is_null()) {
            seen.insert(id.to_string());
        }
    };
    note(&root);
    stage_message(run, conv, root, Some(&thread)).await?;
    for r in replies {
        note(&r);
        stage_message(run, conv, r, Some(&thread)).await?;
    }
    if let Some(more) = more {
        let mut rest = Box::pin(run.graph().items(&more));
        while let Some(r) = rest.next().await {
            let r = r.map_err(with_hint)?;
            note(&r);
            stage_message(run, conv, r, Some(&thread)).await?;
        }
    }
    let Some(seq) = last else {
        return Ok(());
    };
    // Messages the last point held in this thread that Graph no longer gives.
    let prefix = format!("{}/", conv.id);
    let mut gone = Vec::new();
    run.catalog()
        .for_each_at(run.res, seq, &format!("{dir}/"), &mut |r| {
            let message = r
                .item
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_default();
            if !seen.contains(message) {
                gone.push(r.item);
            }
            true
        })?;
    for item in gone {
        run.catalog().stage_remove(run.res, &conv.scope, &item)?;
    }
    Ok(())
}

/// One message (and its inline images): staged as Graph gave it, or removed when deleted.
async fn stage_message(
    run: &Run<'_>,
    conv: &Conv<'_>,
    mut m: Value,
    thread: Option<&Thread<'_>>,
) -> anyhow::Result<()> {
    let cat = run.catalog();
    let Some(mid) = m["id"].as_str().map(str::to_string) else {
        run.skip(format!("a message in {}", conv.dir), "Graph gave no id");
        return Ok(());
    };
    let item = format!("{}/{mid}", conv.id);
    if !m["deletedDateTime"].is_null() {
        return remove_message(run, &conv.scope, &item);
    }
    let created = created_of(&m);
    let dir = match thread {
        Some(t) => t.dir.to_string(),
        None => format!("{}/{}", conv.dir, created.format("%Y-%m")),
    };
    let stem = format!("{dir}/{}-{}", created.format(STAMP), short_id(&mid));
    let path = format!("{stem}.json");
    let change = m["etag"]
        .as_str()
        .or(m["lastModifiedDateTime"].as_str())
        .unwrap_or_default()
        .to_string();
    strip_odata(&mut m);
    let hosted = hosted_ids(&m);
    if let Some(found) = changed(run, &item, &change, &path)? {
        // Images the earlier version showed and this one does not.
        for old in [found.current.as_ref(), found.staged.as_ref().map(|s| &s.0)]
            .into_iter()
            .flatten()
        {
            for h in sidecar_hosted(old) {
                if !hosted.contains(&h) {
                    cat.stage_remove(run.res, &conv.scope, &format!("{item}/{h}"))?;
                }
            }
        }
        let doc = serde_json::to_string_pretty(&m)?;
        let f = crate::rebuild::json_fields("chatMessage", &m);
        let row = ItemRow {
            item: item.clone(),
            scope: conv.scope.clone(),
            kind: "chatMessage".into(),
            path,
            size: doc.len() as u64,
            mtime: time_of(&m["lastModifiedDateTime"]).unwrap_or(created),
            change,
            subject: f.subject,
            sender: f.sender,
            recipients: None,
            date: f.date,
            name: Some(conversation_name(&conv.dir)),
            hash: None,
            sidecar: Some(doc),
            spool: None,
        };
        cat.stage_put(run.res, &row)?;
    }
    for h in hosted {
        let source = match thread {
            Some(t) if t.root != mid => format!(
                "{}/messages/{}/replies/{mid}/hostedContents/{h}/$value",
                conv.base, t.root
            ),
            _ => format!("{}/messages/{mid}/hostedContents/{h}/$value", conv.base),
        };
        stage_hosted(run, conv, &item, &stem, &h, &source, created).await?;
    }
    Ok(())
}

/// An inline image, fetched unless the catalog holds it at this place already.
async fn stage_hosted(
    run: &Run<'_>,
    conv: &Conv<'_>,
    message: &str,
    stem: &str,
    h: &str,
    source: &str,
    created: DateTime<Utc>,
) -> anyhow::Result<()> {
    let cat = run.catalog();
    let item = format!("{message}/{h}");
    let prefix = format!("{stem}.{}.", short_id(h));
    let held = |r: &ItemRow| r.change == h && r.scope == conv.scope && r.path.starts_with(&prefix);
    let found = cat.lookup(run.res, &item)?;
    match &found.staged {
        Some((r, false)) if held(r) => return Ok(()),
        None | Some((_, true)) if found.current.as_ref().is_some_and(held) => {
            cat.unstage(run.res, &item)?;
            return Ok(());
        }
        _ => {}
    }
    let (bytes, content_type) = match fetch(run, source).await {
        Ok(b) => b,
        Err(e) => {
            run.skip(
                format!("an image of message {message}"),
                format!("{:#}", with_hint(e)),
            );
            conv.fail();
            return Ok(());
        }
    };
    run.fetched(bytes.len() as u64);
    let dest = run.spool.path_for(&item, h);
    crate::inplace::write_spool(&dest, &bytes)?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let row = ItemRow {
        item,
        scope: conv.scope.clone(),
        kind: "hostedContent".into(),
        path: format!("{prefix}{}", extension(content_type.as_deref())),
        size: bytes.len() as u64,
        mtime: created,
        change: h.to_string(),
        subject: None,
        sender: None,
        recipients: None,
        date: Some(created),
        name: Some(conversation_name(&conv.dir)),
        hash: Some(sha),
        sidecar: Some(hosted_sidecar(h, content_type.as_deref(), source)),
        spool: Some(dest.to_string_lossy().into_owned()),
    };
    cat.stage_put(run.res, &row)?;
    Ok(())
}

/// What the catalog keeps of an inline image: its id, type, and where Graph serves it (the
/// archive reads it from there when the image moves with a renamed channel or chat).
pub(crate) fn hosted_sidecar(id: &str, content_type: Option<&str>, source: &str) -> String {
    json!({"id": id, "contentType": content_type, "source": source}).to_string()
}

/// A deleted message and its images leave the next restore point.
fn remove_message(run: &Run<'_>, scope: &str, item: &str) -> anyhow::Result<()> {
    let cat = run.catalog();
    let found = cat.lookup(run.res, item)?;
    for row in [found.current.as_ref(), found.staged.as_ref().map(|s| &s.0)]
        .into_iter()
        .flatten()
    {
        for h in sidecar_hosted(row) {
            cat.stage_remove(run.res, scope, &format!("{item}/{h}"))?;
        }
    }
    cat.stage_remove(run.res, scope, item)?;
    Ok(())
}

/// Stages the chats of the user; `false` when the user has none (no Teams, or no chat).
pub(crate) async fn stage_chats(run: &Run<'_>) -> anyhow::Result<bool> {
    let cat = run.catalog();
    let me = run.target.id.as_str();
    // Chats are few per person: their descriptions are held while labels are chosen.
    let mut chats = Vec::new();
    {
        let mut s = Box::pin(
            run.graph()
                .items(&format!("{}/chats?$expand=members&$top={PAGE}", run.base)),
        );
        while let Some(c) = s.next().await {
            match c {
                Ok(c) => chats.push(c),
                Err(e) if absent(&e) && chats.is_empty() => return Ok(false),
                Err(e) => return Err(with_hint(e)),
            }
        }
    }
    let labels = labels(&chats, me);
    let last = cat.points(run.res)?.last().map(|p| p.seq);
    let window = cat.token(run.res, CHATS)?;
    let mut listed = HashSet::new();
    let mut dirs: HashMap<String, String> = HashMap::new();
    let mut failed = false;
    for (mut chat, label) in chats.into_iter().zip(labels) {
        let Some(id) = chat["id"].as_str().map(str::to_string) else {
            run.skip("a chat", "Graph gave no id");
            continue;
        };
        let scope = format!("chat:{id}");
        listed.insert(scope.clone());
        let dir = format!("chats/{}", component(&label));
        strip_odata(&mut chat);
        let new = cat.lookup(run.res, &id)?.current.is_none();
        if let Some(moved) =
            stage_doc(run, &scope, "chat", &id, &format!("{dir}/chat.json"), &chat)?
        {
            relocate(run, last, &moved, &dir)?;
        }
        // A chat the window would not show whole (joined since, or held no more): listed.
        if new && window.is_some() {
            let conv = conversation(&id, &scope, &dir);
            let mut s = Box::pin(
                run.graph()
                    .items(&format!("/chats/{id}/messages?$top={PAGE}")),
            );
            let mut r = Ok(());
            while let Some(m) = s.next().await {
                match m {
                    Ok(m) => stage_message(run, &conv, m, None).await?,
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            if let Err(e) = r {
                run.skip(format!("chat {label}"), format!("{:#}", with_hint(e)));
                failed = true;
            }
            failed |= conv.failed();
        }
        dirs.insert(id, dir);
    }

    // Messages changed since the last run's end (five minutes of overlap for clock skew).
    let end = Utc::now();
    let from = window
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc) - chrono::Duration::minutes(5))
        .unwrap_or_default();
    let url = format!(
        "{}/chats/getAllMessages?$filter=lastModifiedDateTime%20gt%20{}%20and%20lastModifiedDateTime%20lt%20{}&$top={PAGE}",
        run.base,
        stamp(from),
        stamp(end)
    );
    let mut convs: HashMap<String, Conv<'_>> = HashMap::new();
    let mut count = 0;
    {
        let mut s = Box::pin(run.graph().items(&url));
        while let Some(m) = s.next().await {
            let m = m.map_err(with_hint)?;
            count += 1;
            let Some(chat) = m["chatId"].as_str() else {
                run.skip("a chat message", "Graph gave no chatId");
                continue;
            };
            let Some(dir) = dirs.get(chat) else {
                // A chat the listing did not show (left since): nothing kept of it.
                tracing::debug!(resource = %run.target.name, chat, "a message of a chat not listed");
                continue;
            };
            let conv = convs.entry(chat.to_string()).or_insert_with(|| {
                let (id, _) = dirs.get_key_value(chat).expect("looked up");
                conversation(id, &format!("chat:{id}"), dir)
            });
            stage_message(run, conv, m, None).await?;
        }
    }
    run.enumerated(count);
    failed |= convs.values().any(Conv::failed);
    if !failed {
        cat.stage_token(run.res, CHATS, Some(&stamp(end)))?;
    }
    drop_vanished(run, "chat:", &listed)?;
    // No chat at all (an unlicensed user, say): nothing read that would need a point.
    Ok(!listed.is_empty())
}

fn conversation<'a>(id: &'a str, scope: &str, dir: &str) -> Conv<'a> {
    Conv {
        scope: scope.to_string(),
        dir: dir.to_string(),
        id,
        base: format!("/chats/{id}"),
        failed: AtomicBool::new(false),
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Each chat's label: its topic, or the other members' names joined by `, ` and followed by
/// ` (<id hash>)`. A topic two chats share gets the hash too, so labels stay unique.
fn labels(chats: &[Value], me: &str) -> Vec<String> {
    let topic = |c: &Value| {
        c["topic"]
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let mut topics: HashMap<String, usize> = HashMap::new();
    for c in chats {
        if let Some(t) = topic(c) {
            *topics.entry(t).or_default() += 1;
        }
    }
    chats
        .iter()
        .map(|c| {
            let hash = short_id(c["id"].as_str().unwrap_or_default());
            match topic(c) {
                Some(t) if topics.get(&t) == Some(&1) => t,
                Some(t) => format!("{t} ({hash})"),
                None => {
                    let names: Vec<&str> = c["members"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter(|m| m["userId"].as_str() != Some(me))
                                .filter_map(|m| m["displayName"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    let names = if names.is_empty() {
                        "(chat)".to_string()
                    } else {
                        names.join(", ")
                    };
                    format!("{names} ({hash})")
                }
            }
        })
        .collect()
}

/// A JSON document as one item, its content's hash as version marker. Returns the directory
/// it was in when it moved (a renamed channel or chat).
fn stage_doc(
    run: &Run<'_>,
    scope: &str,
    kind: &str,
    id: &str,
    path: &str,
    v: &Value,
) -> anyhow::Result<Option<String>> {
    let doc = serde_json::to_string_pretty(v)?;
    let change = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(doc.as_bytes())[..8])
    };
    let Some(found) = changed(run, id, &change, path)? else {
        return Ok(None);
    };
    let f = crate::rebuild::json_fields(kind, v);
    let row = ItemRow {
        item: id.to_string(),
        scope: scope.to_string(),
        kind: kind.to_string(),
        path: path.to_string(),
        size: doc.len() as u64,
        mtime: doc_time(v),
        change,
        subject: f.subject,
        sender: f.sender,
        recipients: None,
        date: f.date,
        name: f.name,
        hash: None,
        sidecar: Some(doc),
        spool: None,
    };
    run.catalog().stage_put(run.res, &row)?;
    let dir_of = |p: &str| p.rsplit_once('/').map(|(d, _)| d.to_string());
    Ok(found
        .current
        .and_then(|c| dir_of(&c.path))
        .filter(|old| Some(old) != dir_of(path).as_ref()))
}

/// The time a team, channel, chat or member list is filed under (the repository compares it).
pub(crate) fn doc_time(v: &Value) -> DateTime<Utc> {
    time_of(&v["lastUpdatedDateTime"])
        .or_else(|| time_of(&v["createdDateTime"]))
        .unwrap_or_default()
}

/// What the last restore point held under `from/` moves to `to/` (the channel or chat was
/// renamed): the rows are staged at their new paths, unread (a message's document is in
/// the catalog; an image is read from Graph again if the repository needs it).
fn relocate(run: &Run<'_>, last: Option<i64>, from: &str, to: &str) -> anyhow::Result<()> {
    let Some(seq) = last else {
        return Ok(());
    };
    let cat = run.engine.catalog.clone();
    let res = run.res;
    let prefix = format!("{from}/");
    let name = conversation_name(to);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ItemRow>(256);
        let walk = {
            let (cat, prefix) = (cat.clone(), prefix.clone());
            s.spawn(move || cat.for_each_at(res, seq, &prefix, &mut |r| tx.send(r).is_ok()))
        };
        for mut row in rx {
            if !matches!(row.kind.as_str(), "chatMessage" | "hostedContent") {
                continue;
            }
            if cat.lookup(res, &row.item)?.staged.is_some() {
                continue;
            }
            row.path = format!("{to}/{}", &row.path[prefix.len()..]);
            row.name = Some(name.clone());
            cat.stage_put(res, &row)?;
        }
        walk.join()
            .map_err(|_| anyhow::anyhow!("the catalog walk panicked"))??;
        Ok(())
    })
}

/// The channel or chat a path is in, as people name it (`teams/<channel>/…`).
pub(crate) fn conversation_name(path: &str) -> String {
    path.split('/')
        .nth(1)
        .map(cairn_catalog::component::decode)
        .unwrap_or_default()
}

/// `GET` bytes and their `Content-Type`.
async fn fetch(run: &Run<'_>, path: &str) -> Result<(bytes::Bytes, Option<String>), GraphError> {
    use cairn_graph::transport::{Body, Request};
    let graph = run.graph();
    let url = graph.url(path);
    let req = Request::get(url.clone(), graph.resource_for(&http::Method::GET, &url));
    let resp = graph.send(req.clone()).await?;
    if !(200..300).contains(&resp.status) {
        return Err(resp.error(&req));
    }
    let content_type = resp
        .header("content-type")
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase());
    let bytes = match resp.body {
        Body::Buffered(b) => b,
        Body::Streaming(r) => r.bytes().await.map_err(|e| GraphError::Network {
            method: "GET".into(),
            path: req.path(),
            detail: e.to_string(),
        })?,
    };
    Ok((bytes, content_type))
}

/// The file extension of an image type.
pub(crate) fn extension(content_type: Option<&str>) -> &'static str {
    match content_type.unwrap_or_default() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        "image/svg+xml" => "svg",
        "image/tiff" => "tif",
        _ => "bin",
    }
}

/// The content type an extension stands for (rebuild reads it back from the name).
pub(crate) fn content_type_of(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "tif" => "image/tiff",
        _ => return None,
    })
}

/// The ids of the inline images a message's body shows (`…/hostedContents/{id}/$value`).
pub(crate) fn hosted_ids(m: &Value) -> Vec<String> {
    let body = m["body"]["content"].as_str().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("hostedContents/") {
        rest = &rest[at + "hostedContents/".len()..];
        let end = rest.find(['/', '"', '\'', ' ', '>']).unwrap_or(rest.len());
        let id = &rest[..end];
        if rest[end..].starts_with("/$value") && !id.is_empty() && !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// The inline images of a message as the catalog holds it.
fn sidecar_hosted(row: &ItemRow) -> Vec<String> {
    row.sidecar
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .map(|v| hosted_ids(&v))
        .unwrap_or_default()
}

fn created_of(m: &Value) -> DateTime<Utc> {
    time_of(&m["createdDateTime"])
        .or_else(|| time_of(&m["lastModifiedDateTime"]))
        .unwrap_or_default()
}

/// Graph's annotations (`@odata.context`, `replies@odata.nextLink`…) are not the item.
fn strip_odata(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with("@odata.") && !k.contains("@odata."));
    }
}

/// Every item of a small collection (members, tabs, channels).
async fn collect(run: &Run<'_>, path: &str) -> Result<Vec<Value>, GraphError> {
    let mut out = Vec::new();
    let mut s = Box::pin(run.graph().items(path));
    while let Some(v) = s.next().await {
        let mut v = v?;
        strip_odata(&mut v);
        out.push(v);
    }
    Ok(out)
}

/// A message's text for search: its subject, else the start of its body without markup.
pub(crate) fn summary(m: &Value) -> Option<String> {
    if let Some(s) = m["subject"]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        return Some(s.to_string());
    }
    let html = m["body"]["content"].as_str()?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let words: Vec<&str> = text.split_whitespace().collect();
    let text: String = words.join(" ").chars().take(80).collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_images_are_found_in_the_body() {
        let m = json!({"body": {"contentType": "html", "content":
            "<p>see <img src=\"https://graph.microsoft.com/v1.0/teams/t/channels/c/messages/1/hostedContents/aGk=/$value\"> and <img src=\"https://x/hostedContents/b2/$value\"> <img src=\"https://x/hostedContents/aGk=/$value\"></p><a href=\"hostedContents/z\">"}});
        assert_eq!(hosted_ids(&m), ["aGk=", "b2"]);
        assert!(hosted_ids(&json!({})).is_empty());
    }

    #[test]
    fn a_message_is_summed_up_by_subject_or_body_text() {
        let m =
            json!({"subject": null, "body": {"content": "<p>Hello&nbsp;<b>team</b> &amp; co</p>"}});
        assert_eq!(summary(&m).as_deref(), Some("Hello team & co"));
        let m = json!({"subject": "Plan", "body": {"content": "x"}});
        assert_eq!(summary(&m).as_deref(), Some("Plan"));
        let long = json!({"body": {"content": "a".repeat(200)}});
        assert_eq!(summary(&long).unwrap().len(), 80);
        assert_eq!(summary(&json!({"body": {"content": "<img>"}})), None);
    }

    #[test]
    fn chats_are_labelled_by_topic_or_by_the_other_members() {
        let chats = vec![
            json!({"id": "a", "topic": "Launch"}),
            json!({"id": "b", "topic": null, "members": [
                {"userId": "me", "displayName": "Me"},
                {"userId": "u2", "displayName": "Ann"},
                {"userId": "u3", "displayName": "Bo"}]}),
            json!({"id": "c", "topic": "Same"}),
            json!({"id": "d", "topic": "Same"}),
        ];
        let l = labels(&chats, "me");
        assert_eq!(l[0], "Launch");
        assert_eq!(l[1], format!("Ann, Bo ({})", short_id("b")));
        assert_eq!(l[2], format!("Same ({})", short_id("c")));
        assert_ne!(l[2], l[3]);
    }

    #[test]
    fn image_types_and_extensions_round_trip() {
        for t in ["image/png", "image/jpeg", "image/gif", "image/webp"] {
            assert_eq!(content_type_of(extension(Some(t))), Some(t));
        }
        assert_eq!(extension(Some("application/x-unknown")), "bin");
        assert_eq!(extension(None), "bin");
    }

    #[test]
    fn annotations_are_not_kept() {
        let mut v = json!({"id": "1", "@odata.context": "x", "replies@odata.nextLink": "y", "body": {"@odata.type": "z"}});
        strip_odata(&mut v);
        assert_eq!(v, json!({"id": "1", "body": {"@odata.type": "z"}}));
    }

    #[test]
    fn the_conversation_of_a_path_is_its_second_component() {
        assert_eq!(
            conversation_name("teams/General/2026-01/x/y.json"),
            "General"
        );
        assert_eq!(conversation_name("chats/A%2FB"), "A/B");
    }
}
