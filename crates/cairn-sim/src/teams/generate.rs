//! The seeded teams and chats: channels, members, tabs, messages with replies, mentions,
//! reactions, inline images, file references, edits, soft deletions and a few messages a
//! migration cannot import; creation times spread over the ~14 months before the anchor.

use super::{Conv, GRAPH_ROOT, Hosted, Msg, fmt_time, png};
use crate::keys::{CollKey, Res};
use crate::seeded::{guid, hash, rng};
use crate::tenant::{Tenant, UserKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const TOPICS: &[&str] = &[
    "Quarterly planning",
    "Release checklist",
    "Kundenfeedback",
    "Offsite in Lisbon",
    "Budget review",
    "Onboarding",
    "Incidents",
    "Design crit",
];
const LINES: &[&str] = &[
    "Can everyone review the draft by Friday?",
    "I pushed the new numbers to the sheet.",
    "Merci pour le retour, je regarde ça demain.",
    "The build is green again 🎉",
    "Who owns the vendor contract renewal?",
    "Minutes from today's call are in the wiki.",
    "会議は15時からです。",
    "Let's move this to next sprint.",
    "Ich habe die Präsentation aktualisiert.",
    "+1, ship it",
    "Heads-up: the VPN will be down on Saturday night.",
];
const CHANNEL_NAMES: &[&str] = &["Planning", "Engineering", "Marketing", "Support", "Random"];
const REACTIONS: &[&str] = &["like", "heart", "laugh", "surprised"];
const TABS: &[(&str, &str, &str)] = &[
    ("Wiki", "com.microsoft.teamspace.tab.wiki", "Wiki"),
    (
        "Planner",
        "com.microsoft.teamspace.tab.planner",
        "Tasks by Planner and To Do",
    ),
    ("Website", "com.microsoft.teamspace.tab.web", "Website"),
];

/// Licensed people (who can chat and post).
pub(super) fn licensed(t: &Tenant) -> Vec<u32> {
    (0..t.spec.users)
        .filter(|&i| t.user(i).is_some_and(|u| u.kind == UserKind::Member))
        .collect()
}

/// The members of a team: the group's members, or (a group without licensed members) the
/// first licensed users.
pub(super) fn team_members(t: &Tenant, g: u32) -> Vec<u32> {
    let m: Vec<u32> = t.group_members(g).collect();
    if m.len() >= 2 {
        return m;
    }
    let mut all = licensed(t);
    all.truncate(3);
    for u in m {
        if !all.contains(&u) {
            all.push(u);
        }
    }
    all
}

fn hex32(seed: u64, parts: &[u64]) -> String {
    let a = hash(seed, parts);
    let mut p2 = parts.to_vec();
    p2.push(0xB);
    format!("{a:016x}{:016x}", hash(seed, &p2))
}

pub(super) fn channel_id(seed: u64, g: u32, n: u64) -> String {
    format!("19:{}@thread.tacv2", hex32(seed, &[0x7EA, g as u64, n]))
}

pub(super) fn user_identity(t: &Tenant, u: u32) -> Value {
    let (id, name) = t
        .user(u)
        .map(|x| (x.id, x.display_name))
        .unwrap_or_default();
    json!({"id": id, "displayName": name, "userIdentityType": "aadUser"})
}

pub(super) fn from_user(t: &Tenant, u: u32) -> Value {
    json!({"application": null, "device": null, "user": user_identity(t, u)})
}

pub(super) fn team_url(t: &Tenant, g: u32) -> String {
    let id = t.group(g).map(|x| x.id).unwrap_or_default();
    format!("https://teams.microsoft.com/l/team/{id}")
}

/// A team's channels, generated.
pub(super) fn team(t: &Tenant, g: u32, anchor: DateTime<Utc>) -> Vec<Conv> {
    let seed = t.spec.seed;
    if g % 2 != 0 || g >= t.spec.groups {
        return vec![];
    }
    let ord = g / 2;
    let mut r = rng(seed, &[0x7EA, g as u64]);
    let members = team_members(t, g);
    let owners: Vec<u32> = members.iter().take(1).copied().collect();
    let group = t.group(g).map(|x| x.display_name).unwrap_or_default();
    let born = anchor - Duration::days(430 + r.random_range(0..20));
    let standard = r.random_range(1..=3u64);
    let mut out = Vec::new();
    let mut kinds: Vec<(String, &str)> = vec![("General".into(), "standard")];
    for i in 0..standard {
        let name = CHANNEL_NAMES
            [(hash(seed, &[0x7EB, g as u64, i]) as usize + i as usize) % CHANNEL_NAMES.len()];
        let name = if kinds.iter().any(|(n, _)| n == name) {
            format!("{name} {}", i + 1)
        } else {
            name.to_string()
        };
        kinds.push((name, "standard"));
    }
    kinds.push(("Leadership".into(), "private"));
    if ord % 3 == 0 {
        kinds.push((format!("{group} Partners"), "shared"));
    }
    for (n, (name, kind)) in kinds.into_iter().enumerate() {
        let id = channel_id(seed, g, n as u64);
        let created = born + Duration::minutes(n as i64 * 17);
        let chan_members: Vec<u32> = if kind == "private" {
            members
                .iter()
                .take(2.max(members.len() / 2))
                .copied()
                .collect()
        } else {
            members.clone()
        };
        let shared_with = if kind == "shared" && g + 2 < t.spec.groups {
            vec![g + 2]
        } else {
            vec![]
        };
        let mut conv = Conv {
            id: id.clone(),
            chat: false,
            team: g,
            team_id: t.group(g).map(|x| x.id).unwrap_or_default(),
            shared_with,
            v: channel_json(t, g, &id, &name, kind, &fmt_time(created)),
            members: chan_members.clone(),
            owners: owners.clone(),
            tabs: tabs(seed, g, n as u64, &id),
            msgs: vec![],
            migration: None,
        };
        let roots = r.random_range(3..=8usize);
        let mut ctx = MsgGen {
            t,
            anchor,
            not_before: created,
            authors: chan_members,
            team: Some(g),
        };
        for k in 0..roots {
            let special = match (n, k) {
                (0, 0) => Special::SystemEvent,
                (0, 1) => Special::Announcement,
                (1, 0) => Special::CodeSnippet,
                (1, 1) => Special::Sticker,
                _ => Special::None,
            };
            // Spread: the first roots old (some older than 8 months), the last recent.
            let age_days = match k {
                0 => r.random_range(300..420),
                1 => r.random_range(250..400),
                _ if k + 1 == roots => r.random_range(0..5),
                _ => r.random_range(0..420),
            };
            ctx.thread(&mut conv, &mut r, age_days, special);
        }
        out.push(conv);
    }
    out
}

fn channel_json(t: &Tenant, g: u32, id: &str, name: &str, kind: &str, created: &str) -> Value {
    let gid = t.group(g).map(|x| x.id).unwrap_or_default();
    let enc = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    let slug: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect();
    json!({
        "id": id,
        "displayName": name,
        "description": format!("{name} of team {}", t.group(g).map(|x| x.display_name).unwrap_or_default()),
        "createdDateTime": created,
        "membershipType": kind,
        "email": format!("{slug}.{:08x}@{}", hash(t.spec.seed, &[0x7EC, g as u64]) as u32, t.spec.domain),
        "webUrl": format!("https://teams.microsoft.com/l/channel/{enc}/{}?groupId={gid}", percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)),
        "tenantId": null,
        "isArchived": false,
    })
}

fn tabs(seed: u64, g: u32, n: u64, channel: &str) -> Vec<Value> {
    let count = 1 + hash(seed, &[0x7ED, g as u64, n]) % 2;
    (0..count)
        .map(|i| {
            let (name, app, app_name) = TABS[((n + i) % TABS.len() as u64) as usize];
            let url = format!("https://tabs.example/{app_name}/{}", hash(seed, &[0x7EE, g as u64, n, i]) % 100_000);
            json!({
                "id": guid(seed, &[0x7EF, g as u64, n, i]),
                "displayName": name,
                "webUrl": format!("https://teams.microsoft.com/l/entity/{app}/{}?context={channel}", i),
                "teamsApp": {"id": app, "displayName": app_name, "distributionMethod": "store"},
                "configuration": {"entityId": null, "contentUrl": url, "websiteUrl": url, "removeUrl": null},
            })
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    SystemEvent,
    Announcement,
    CodeSnippet,
    Sticker,
}

/// What messages of one conversation are generated from.
pub(super) struct MsgGen<'a> {
    pub t: &'a Tenant,
    pub anchor: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub authors: Vec<u32>,
    /// The team (channels) or none (chats).
    pub team: Option<u32>,
}

impl MsgGen<'_> {
    /// A root post `age_days` before the anchor and its replies.
    fn thread(&mut self, c: &mut Conv, r: &mut ChaCha8Rng, age_days: i64, special: Special) {
        let created = (self.anchor - Duration::days(age_days)
            + Duration::minutes(r.random_range(0..600))
            + Duration::milliseconds(r.random_range(0..60_000)))
        .max(self.not_before + Duration::minutes(5))
        .min(self.anchor - Duration::minutes(1));
        let root = self.message(c, r, created, None, special);
        let root_id = root.id().to_string();
        c.msgs.push(root);
        if special == Special::SystemEvent {
            return;
        }
        let replies = r.random_range(0..=4);
        for i in 0..replies {
            let at = (created
                + Duration::minutes(r.random_range(1..4000))
                + Duration::milliseconds(r.random_range(0..60_000)))
            .min(self.anchor - Duration::seconds(30 - i as i64));
            let sp = if special == Special::CodeSnippet && i == 0 {
                Special::CodeSnippet
            } else {
                Special::None
            };
            let m = self.message(c, r, at, Some(&root_id), sp);
            c.msgs.push(m);
        }
    }

    /// One generated message (not yet added to `c`).
    pub fn message(
        &self,
        c: &Conv,
        r: &mut ChaCha8Rng,
        created: DateTime<Utc>,
        root: Option<&str>,
        special: Special,
    ) -> Msg {
        let t = self.t;
        let seed = t.spec.seed;
        let id = c.fresh_id(created.timestamp_millis());
        let author =
            self.authors[r.random_range(0..self.authors.len().max(1)) % self.authors.len().max(1)];
        let line = LINES[r.random_range(0..LINES.len())];
        let mut body = format!("<p>{}</p>", html_escape(line));
        let mut mentions = vec![];
        let mut attachments = vec![];
        let mut reactions = vec![];
        let mut hosted = vec![];
        if self.authors.len() > 1 && r.random_bool(0.2) {
            let who = self.authors[r.random_range(0..self.authors.len())];
            let name = t.user(who).map(|u| u.display_name).unwrap_or_default();
            body = format!(
                "<p><at id=\"0\">{}</at> {}</p>",
                html_escape(&name),
                html_escape(line)
            );
            mentions.push(json!({"id": 0, "mentionText": name,
                "mentioned": {"application": null, "device": null, "conversation": null, "tag": null,
                    "user": user_identity(t, who)}}));
        }
        if r.random_bool(0.3) {
            let who = self.authors[r.random_range(0..self.authors.len())];
            reactions.push(json!({
                "reactionType": REACTIONS[r.random_range(0..REACTIONS.len())],
                "createdDateTime": fmt_time((created + Duration::minutes(3)).min(self.anchor)),
                "user": {"application": null, "device": null, "user": user_identity(t, who)},
            }));
        }
        if r.random_bool(0.15) {
            let n = hash(seed, &[0x7F0, created.timestamp_millis() as u64]);
            let hid = URL_SAFE_NO_PAD.encode(format!("id=x_0-w{n:x},type=1"));
            let url = hosted_url(c, root.unwrap_or(&id), root.map(|_| id.as_str()), &hid);
            body.push_str(&format!(
                "<p><img src=\"{url}\" width=\"8\" height=\"8\" alt=\"image\" itemid=\"{hid}\"></p>"
            ));
            hosted.push(Hosted {
                id: hid,
                content_type: "image/png".into(),
                b64: STANDARD.encode(png(n)),
            });
        }
        if r.random_bool(0.15)
            && let Some(file) = self.file_ref(r, author)
        {
            body.push_str(&format!(
                "<attachment id=\"{}\"></attachment>",
                file["id"].as_str().unwrap_or_default()
            ));
            attachments.push(file);
        }
        let mut message_type = "message";
        let mut from = from_user(t, author);
        match special {
            Special::None => {}
            Special::SystemEvent => {
                message_type = "systemEventMessage";
                from = Value::Null;
                body = "<systemEventMessage/>".into();
                mentions.clear();
                reactions.clear();
                attachments.clear();
                hosted.clear();
            }
            Special::Announcement => {
                let aid = guid(seed, &[0x7F1, created.timestamp_millis() as u64]);
                body = format!("<attachment id=\"{aid}\"></attachment>");
                attachments = vec![
                    json!({"id": aid, "contentType": "application/vnd.microsoft.card.announcement",
                    "contentUrl": null, "name": null, "thumbnailUrl": null, "teamsAppId": null,
                    "content": "{\"title\":{\"text\":\"All-hands on Friday\"},\"imageUrl\":null}"}),
                ];
                hosted.clear();
            }
            Special::CodeSnippet => {
                let aid = guid(seed, &[0x7F2, created.timestamp_millis() as u64]);
                body = format!("<attachment id=\"{aid}\"></attachment>");
                attachments = vec![
                    json!({"id": aid, "contentType": "application/vnd.microsoft.card.codesnippet",
                    "contentUrl": format!("{GRAPH_ROOT}/code/{aid}"), "name": null, "thumbnailUrl": null, "teamsAppId": null,
                    "content": "{\"language\":\"rust\",\"name\":\"main.rs\",\"wrap\":true}"}),
                ];
                hosted.clear();
            }
            Special::Sticker => {
                let aid = guid(seed, &[0x7F3, created.timestamp_millis() as u64]);
                body = format!("<attachment id=\"{aid}\"></attachment>");
                attachments = vec![
                    json!({"id": aid, "contentType": "application/vnd.microsoft.card.sticker",
                    "contentUrl": "https://us-api.asm.skype.com/v1/objects/0-wus-d1-sticker/views/imgo", "name": null,
                    "thumbnailUrl": null, "teamsAppId": null, "content": null}),
                ];
                hosted.clear();
            }
        }
        let created_s = fmt_time(created);
        let mut modified = created_s.clone();
        let mut edited = Value::Null;
        let mut deleted = Value::Null;
        if special == Special::None && r.random_bool(0.12) {
            let at =
                fmt_time((created + Duration::minutes(r.random_range(1..300))).min(self.anchor));
            body = body.replacen("</p>", " (edited)</p>", 1);
            edited = json!(at);
            modified = at;
        }
        if special == Special::None
            && r.random_bool(0.05)
            && created < self.anchor - Duration::days(12)
        {
            let at = fmt_time(self.anchor - Duration::days(r.random_range(1..10)));
            deleted = json!(at);
            modified = at;
        }
        let subject = if root.is_none() && !c.chat && r.random_bool(0.4) {
            json!(TOPICS[r.random_range(0..TOPICS.len())])
        } else {
            Value::Null
        };
        let v = message_json(MessageParts {
            c,
            id: &id,
            root,
            message_type,
            created: &created_s,
            modified: &modified,
            edited,
            deleted,
            subject,
            importance: if r.random_bool(0.1) { "high" } else { "normal" },
            from,
            body,
            attachments,
            mentions,
            reactions,
        });
        Msg { v, seq: 0, hosted }
    }

    /// A reference to a file of the team's library (channels) or the author's OneDrive.
    fn file_ref(&self, r: &mut ChaCha8Rng, author: u32) -> Option<Value> {
        let t = self.t;
        let (res, base) = match self.team {
            Some(g) => (
                Res::Group(g),
                t.site(t.spec.sites + g)?.web_url + "/Shared Documents",
            ),
            None => {
                let u = t.user(author)?;
                if !u.has_drive() {
                    return None;
                }
                let slug: String = u
                    .upn
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                (
                    Res::User(author),
                    format!(
                        "https://{}-my.sharepoint.com/personal/{slug}/Documents",
                        t.tenant_short()
                    ),
                )
            }
        };
        let (c, _) = t.drives(res).into_iter().next()?;
        file_at(t, c, r.random_range(0..1000), &base)
    }
}

/// The reference attachment of a generated file of drive `c` (the `pick`th file, modulo).
fn file_at(t: &Tenant, c: CollKey, pick: u32, base: &str) -> Option<Value> {
    let layout = crate::content::drive_layout(t, c);
    if layout.files == 0 {
        return None;
    }
    let n = 1 + layout.folders + pick % layout.files;
    let e = layout.entry(t, n)?;
    let mut parts = vec![e.name.clone()];
    let mut p = e.parent;
    while let Some(i) = p.filter(|&i| i != 0) {
        let pe = layout.entry(t, i)?;
        parts.push(pe.name.clone());
        p = pe.parent;
    }
    parts.reverse();
    let cs = crate::tenant::coll_seed(c);
    // The file's eTag GUID, as Teams uses it for reference attachments.
    let id = guid(cs, &[cs ^ ((n as u64) << 1)]);
    Some(
        json!({"id": id, "contentType": "reference", "contentUrl": format!("{base}/{}", parts.join("/")),
        "content": null, "name": e.name, "thumbnailUrl": null, "teamsAppId": null}),
    )
}

/// The stable URL of an inline image: `…/messages/{root}[/replies/{reply}]/hostedContents/{id}/$value`.
pub(super) fn hosted_url(c: &Conv, root: &str, reply: Option<&str>, hid: &str) -> String {
    let msg = match reply {
        Some(rid) => format!("messages/{root}/replies/{rid}"),
        None => format!("messages/{root}"),
    };
    if c.chat {
        format!(
            "{GRAPH_ROOT}/chats/{}/{msg}/hostedContents/{hid}/$value",
            c.id
        )
    } else {
        let team = c.team_id.as_str();
        format!(
            "{GRAPH_ROOT}/teams/{team}/channels/{}/{msg}/hostedContents/{hid}/$value",
            c.id
        )
    }
}

pub(super) struct MessageParts<'a> {
    pub c: &'a Conv,
    pub id: &'a str,
    pub root: Option<&'a str>,
    pub message_type: &'a str,
    pub created: &'a str,
    pub modified: &'a str,
    pub edited: Value,
    pub deleted: Value,
    pub subject: Value,
    pub importance: &'a str,
    pub from: Value,
    pub body: String,
    pub attachments: Vec<Value>,
    pub mentions: Vec<Value>,
    pub reactions: Vec<Value>,
}

/// A chatMessage as Graph serves it.
pub(super) fn message_json(p: MessageParts<'_>) -> Value {
    let c = p.c;
    let etag = super::parse_time(p.modified)
        .map(|d| d.timestamp_millis().to_string())
        .unwrap_or_default();
    let mut v = json!({
        "id": p.id,
        "replyToId": p.root,
        "etag": etag,
        "messageType": p.message_type,
        "createdDateTime": p.created,
        "lastModifiedDateTime": p.modified,
        "lastEditedDateTime": p.edited,
        "deletedDateTime": p.deleted,
        "subject": p.subject,
        "summary": null,
        "chatId": null,
        "importance": p.importance,
        "locale": "en-us",
        "webUrl": null,
        "policyViolation": null,
        "eventDetail": null,
        "from": p.from,
        "body": {"contentType": "html", "content": p.body},
        "channelIdentity": null,
        "attachments": p.attachments,
        "mentions": p.mentions,
        "reactions": p.reactions,
        "messageHistory": [],
    });
    if c.chat {
        v["chatId"] = json!(c.id);
    } else {
        let team = c.team_id.as_str();
        v["channelIdentity"] = json!({"teamId": team, "channelId": c.id});
        let parent = p.root.unwrap_or(p.id);
        v["webUrl"] = json!(format!(
            "https://teams.microsoft.com/l/message/{}/{}?groupId={team}&parentMessageId={parent}",
            percent_encoding::utf8_percent_encode(&c.id, percent_encoding::NON_ALPHANUMERIC),
            p.id
        ));
    }
    if p.message_type == "systemEventMessage" {
        v["eventDetail"] = json!({"@odata.type": "#microsoft.graph.membersAddedEventMessageDetail",
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z", "members": [], "initiator": null});
    }
    v
}

pub(super) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every chat of the tenant, generated: each licensed user starts one or two (1:1, group or
/// meeting) with other licensed users.
pub(super) fn chats(t: &Tenant, anchor: DateTime<Utc>) -> Vec<Conv> {
    let seed = t.spec.seed;
    let people = licensed(t);
    let mut out: Vec<Conv> = Vec::new();
    if people.len() < 2 {
        return out;
    }
    for &u in &people {
        let mut r = rng(seed, &[0xC4A7, u as u64]);
        let n = r.random_range(1..=2u64);
        for k in 0..n {
            let kind = match (u as u64 + k) % 3 {
                0 => "oneOnOne",
                1 => "group",
                _ => "meeting",
            };
            let kind = if kind != "oneOnOne" && people.len() < 3 {
                "oneOnOne"
            } else {
                kind
            };
            let mut members = vec![u];
            let want = if kind == "oneOnOne" {
                2
            } else {
                r.random_range(3..=4usize).min(people.len())
            };
            let mut guard = 0;
            while members.len() < want && guard < 100 {
                guard += 1;
                let p = people[r.random_range(0..people.len())];
                if !members.contains(&p) {
                    members.push(p);
                }
            }
            if members.len() < 2 {
                continue;
            }
            let id = if kind == "oneOnOne" {
                let (a, b) = (
                    t.user(members[0]).map(|x| x.id).unwrap_or_default(),
                    t.user(members[1]).map(|x| x.id).unwrap_or_default(),
                );
                let (a, b) = if a < b { (a, b) } else { (b, a) };
                format!("19:{a}_{b}@unq.gbl.spaces")
            } else {
                format!("19:{}@thread.v2", hex32(seed, &[0xC4A8, u as u64, k]))
            };
            if out.iter().any(|c| c.id == id) {
                continue;
            }
            let created = anchor - Duration::days(r.random_range(30..420));
            let topic = match kind {
                "meeting" => json!(format!("{} sync", TOPICS[r.random_range(0..TOPICS.len())])),
                "group" if r.random_bool(0.5) => json!(TOPICS[r.random_range(0..TOPICS.len())]),
                _ => Value::Null,
            };
            let mut conv = Conv {
                id: id.clone(),
                chat: true,
                team: 0,
                team_id: String::new(),
                shared_with: vec![],
                v: json!({
                    "id": id,
                    "topic": topic,
                    "chatType": kind,
                    "createdDateTime": fmt_time(created),
                    "lastUpdatedDateTime": fmt_time(created),
                    "tenantId": null,
                    "webUrl": format!("https://teams.microsoft.com/l/chat/{}/0", percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)),
                }),
                members: members.clone(),
                owners: members.clone(),
                tabs: vec![],
                msgs: vec![],
                migration: None,
            };
            let mg = MsgGen {
                t,
                anchor,
                not_before: created,
                authors: members,
                team: None,
            };
            let count = r.random_range(3..=10);
            let span = (anchor - created).num_minutes().max(10);
            for i in 0..count {
                let special = if out.is_empty() && i == 0 {
                    Special::Sticker
                } else {
                    Special::None
                };
                let at =
                    created + Duration::minutes(1 + (span - 2) * i / count + r.random_range(0..5));
                let m = mg.message(
                    &conv,
                    &mut r,
                    at.min(anchor - Duration::minutes(1)),
                    None,
                    special,
                );
                conv.msgs.push(m);
            }
            let last = conv
                .msgs
                .iter()
                .map(|m| m.modified().to_string())
                .max()
                .unwrap_or_default();
            conv.v["lastUpdatedDateTime"] = json!(last);
            out.push(conv);
        }
    }
    out
}
