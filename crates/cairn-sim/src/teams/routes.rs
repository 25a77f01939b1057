//! The Graph endpoints of teams, channels and chats (reads), the manifest's entries and the
//! seeded mutations.

use super::generate::{self, MsgGen, Special, team_members, user_identity};
use super::{
    Conv, DELTA_WINDOW_DAYS, Inner, Msg, Owner, TEAMS_KINDS, fmt_time, message_sha256, parse_time,
    sha,
};
use crate::keys::Res;
use crate::sim::Sim;
use crate::tenant::Tenant;
use crate::wire::{Req, Resp};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::{Value, json};
use std::sync::MutexGuard;

/// Page sizes of message listings: default and maximum (`$top`).
const PAGE: u32 = 20;
const MAX_PAGE: u32 = 50;

pub(super) fn not_found(what: &str) -> Resp {
    Resp::error(404, "NotFound", &format!("{what} not found."))
}

fn bad_segment(s: &str) -> Resp {
    Resp::bad_request(&format!("Resource not found for the segment '{s}'."))
}

fn expand_has(req: &Req, name: &str) -> bool {
    req.q("$expand")
        .is_some_and(|e| e.split(',').any(|x| x.trim().eq_ignore_ascii_case(name)))
}

fn member_json(t: &Tenant, u: u32, owner: bool, since: &str) -> Value {
    let user = t.user(u);
    let uid = user.as_ref().map(|x| x.id.clone()).unwrap_or_default();
    json!({
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": crate::seeded::guid(crate::seeded::hash(t.spec.seed, &[0x7F5]), &[u as u64]),
        "roles": if owner { json!(["owner"]) } else { json!([]) },
        "displayName": user.as_ref().map(|x| x.display_name.clone()),
        "visibleHistoryStartDateTime": since,
        "userId": uid,
        "email": user.as_ref().map(|x| x.upn.clone()),
        "tenantId": null,
    })
}

/// A thread's messages as served: not vanished.
fn live(c: &Conv, now: DateTime<Utc>) -> impl Iterator<Item = &Msg> {
    c.msgs.iter().filter(move |m| !m.vanished(now))
}

/// Newest first.
fn newest_first(v: &mut [Value]) {
    v.sort_by(|a, b| {
        b["createdDateTime"]
            .as_str()
            .cmp(&a["createdDateTime"].as_str())
            .then(b["id"].as_str().cmp(&a["id"].as_str()))
    });
}

/// A root with its replies (newest first) under `replies`.
fn with_replies(c: &Conv, root: &Msg, now: DateTime<Utc>) -> Value {
    let mut v = root.v.clone();
    let mut replies: Vec<Value> = live(c, now)
        .filter(|m| m.root() == Some(root.id()))
        .map(|m| m.v.clone())
        .collect();
    newest_first(&mut replies);
    v["replies@odata.count"] = json!(replies.len());
    v["replies"] = json!(replies);
    v
}

/// A `lastModifiedDateTime` window: after, before (exclusive).
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `$filter=lastModifiedDateTime gt T1 [and lastModifiedDateTime lt T2]` (either half alone,
/// or none): the window, or 400.
fn modified_window(req: &Req) -> Result<Window, Resp> {
    let Some(f) = req.q("$filter") else {
        return Ok((None, None));
    };
    let bad = || {
        Resp::bad_request(&format!(
            "Invalid filter clause '{f}': only 'lastModifiedDateTime gt T1 and lastModifiedDateTime lt T2' is supported."
        ))
    };
    let (mut gt, mut lt) = (None, None);
    for part in f.split(" and ") {
        let w: Vec<&str> = part.split_whitespace().collect();
        let [field, op, value] = w.as_slice() else {
            return Err(bad());
        };
        if !field.eq_ignore_ascii_case("lastModifiedDateTime") {
            return Err(bad());
        }
        let t = parse_time(value.trim_matches('\'')).ok_or_else(bad)?;
        match op.to_ascii_lowercase().as_str() {
            "gt" if gt.is_none() => gt = Some(t),
            "lt" if lt.is_none() => lt = Some(t),
            _ => return Err(bad()),
        }
    }
    Ok((gt, lt))
}

fn in_window(m: &Msg, w: Window) -> bool {
    let Some(t) = parse_time(m.modified()) else {
        return false;
    };
    w.0.is_none_or(|a| t > a) && w.1.is_none_or(|b| t < b)
}

/// The query of a request minus paging tokens, for next and delta links.
fn keep_query(req: &Req) -> String {
    req.query
        .iter()
        .filter(|(k, _)| {
            !["$skiptoken", "$deltatoken"]
                .iter()
                .any(|t| k.eq_ignore_ascii_case(t))
        })
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .map(|s| format!("{s}&"))
        .collect()
}

fn page_size(req: &Req) -> usize {
    req.max_page_size()
        .or_else(|| req.q("$top").and_then(|t| t.parse().ok()))
        .unwrap_or(PAGE)
        .clamp(1, MAX_PAGE) as usize
}

impl Sim {
    pub(super) fn tm(&self) -> (MutexGuard<'_, Inner>, &Tenant) {
        (self.teams.lock(), &self.model.tenant)
    }

    /// The group index of a team id, or `None` (not a group, or a group without a team).
    pub(super) fn team_index(&self, id: &str) -> Option<u32> {
        self.model
            .tenant
            .find_group(id)
            .map(|g| g.idx)
            .filter(|g| g % 2 == 0)
    }

    /// The channel `cid` as team `g` sees it (its own, or shared with it): its owner.
    pub(super) fn find_channel(&self, g: u32, cid: &str) -> Option<Owner> {
        let (mut inner, t) = self.tm();
        if inner.convs(t, Owner::Team(g)).iter().any(|c| c.id == cid) {
            return Some(Owner::Team(g));
        }
        // Shared channels are hosted by an earlier team.
        (0..g).step_by(2).find_map(|h| {
            inner
                .convs(t, Owner::Team(h))
                .iter()
                .any(|c| c.id == cid && c.shared_with.contains(&g))
                .then_some(Owner::Team(h))
        })
    }

    fn snapshot(&self, o: Owner, id: &str) -> Option<Conv> {
        let (mut inner, t) = self.tm();
        inner.conv(t, o, id).cloned()
    }

    /// `/teams/{id}/…`.
    pub fn team_routes(&self, req: &Req, id: &str, rest: &[&str]) -> Resp {
        let Some(g) = self.team_index(id) else {
            return not_found(&format!("Team '{id}'"));
        };
        let m = req.method.as_str();
        let t = &self.model.tenant;
        let url = format!("{}/v1.0{}", req.base, req.path);
        match rest {
            [] if m == "GET" => {
                let group = t.group(g).map(|x| x.display_name).unwrap_or_default();
                let general = self
                    .snapshot(Owner::Team(g), &generate::channel_id(t.spec.seed, g, 0))
                    .map(|c| c.v["createdDateTime"].clone())
                    .unwrap_or(Value::Null);
                Resp::ok(json!({
                    "id": id,
                    "displayName": group,
                    "description": format!("The {group} team"),
                    "createdDateTime": general,
                    "internalId": generate::channel_id(t.spec.seed, g, 0),
                    "classification": null,
                    "specialization": "none",
                    "visibility": "private",
                    "webUrl": generate::team_url(t, g),
                    "isArchived": false,
                    "tenantId": self.cfg.tenant_id,
                    "isMembershipLimitedToOwners": false,
                }))
            }
            ["members"] if m == "GET" => {
                let members = team_members(t, g);
                let items = members
                    .iter()
                    .enumerate()
                    .map(|(i, &u)| member_json(t, u, i == 0, "0001-01-01T00:00:00Z"))
                    .collect();
                crate::paging::page_list(req, &url, items, 100, 999)
            }
            ["channels"] | ["allChannels"] if m == "GET" => {
                let all = rest[0] == "allChannels";
                let (mut inner, t) = self.tm();
                let mut items: Vec<Value> = inner
                    .convs(t, Owner::Team(g))
                    .iter()
                    .map(Conv::json)
                    .collect();
                if all {
                    for h in (0..g).step_by(2) {
                        items.extend(
                            inner
                                .convs(t, Owner::Team(h))
                                .iter()
                                .filter(|c| c.shared_with.contains(&g))
                                .map(Conv::json),
                        );
                    }
                }
                drop(inner);
                if let Some(f) = req.q("$filter") {
                    let w: Vec<&str> = f.split_whitespace().collect();
                    match w.as_slice() {
                        [field, op, value]
                            if field.eq_ignore_ascii_case("membershipType")
                                && op.eq_ignore_ascii_case("eq") =>
                        {
                            let value = value.trim_matches('\'');
                            items.retain(|c| c["membershipType"] == value);
                        }
                        _ => {
                            return Resp::bad_request(&format!(
                                "Invalid filter clause '{f}': only membershipType eq '…' is supported."
                            ));
                        }
                    }
                }
                crate::paging::page_list(req, &url, items, 100, 999)
            }
            ["channels"] if m == "POST" => self.create_channel(req, g),
            ["channels", "getAllMessages"] if m == "GET" => {
                let w = match modified_window(req) {
                    Ok(w) => w,
                    Err(e) => return e,
                };
                let now = Utc::now();
                let (mut inner, t) = self.tm();
                let mut items: Vec<Value> = inner
                    .convs(t, Owner::Team(g))
                    .iter()
                    .filter(|c| c.v["membershipType"] != "shared")
                    .flat_map(|c| {
                        live(c, now)
                            .filter(|m| in_window(m, w))
                            .map(|m| m.v.clone())
                    })
                    .collect();
                drop(inner);
                items.sort_by(|a, b| {
                    a["lastModifiedDateTime"]
                        .as_str()
                        .cmp(&b["lastModifiedDateTime"].as_str())
                        .then(a["id"].as_str().cmp(&b["id"].as_str()))
                });
                crate::paging::page_list(req, &url, items, PAGE, MAX_PAGE)
            }
            ["channels" | "allChannels", cid, more @ ..] => {
                let Some(o) = self.find_channel(g, cid) else {
                    return not_found(&format!("Channel '{cid}'"));
                };
                self.conv_routes(req, o, cid, more)
            }
            _ => bad_segment(rest.first().copied().unwrap_or_default()),
        }
    }

    /// `/chats/{id}/…`.
    pub fn chat_routes(&self, req: &Req, id: &str, rest: &[&str]) -> Resp {
        if self.snapshot(Owner::Chats, id).is_none() {
            return not_found(&format!("Chat '{id}'"));
        }
        self.conv_routes(req, Owner::Chats, id, rest)
    }

    /// `/users/{id}/chats[/getAllMessages | /{chat id}/…]`.
    pub fn user_chat_routes(&self, req: &Req, u: u32, rest: &[&str]) -> Resp {
        let m = req.method.as_str();
        let url = format!("{}/v1.0{}", req.base, req.path);
        let now = Utc::now();
        match rest {
            [] if m == "GET" => {
                let members = expand_has(req, "members");
                let (mut inner, t) = self.tm();
                let mut items: Vec<Value> = inner
                    .convs(t, Owner::Chats)
                    .iter()
                    .filter(|c| c.members.contains(&u))
                    .map(|c| {
                        let mut v = c.json();
                        if members {
                            v["members"] = json!(conv_members(t, c));
                        }
                        v
                    })
                    .collect();
                drop(inner);
                items.sort_by(|a, b| {
                    b["lastUpdatedDateTime"]
                        .as_str()
                        .cmp(&a["lastUpdatedDateTime"].as_str())
                });
                crate::paging::page_list(req, &url, items, PAGE, MAX_PAGE)
            }
            ["getAllMessages"] if m == "GET" => {
                let w = match modified_window(req) {
                    Ok(w) => w,
                    Err(e) => return e,
                };
                let (mut inner, t) = self.tm();
                let mut items: Vec<Value> = inner
                    .convs(t, Owner::Chats)
                    .iter()
                    .filter(|c| c.members.contains(&u))
                    .flat_map(|c| {
                        live(c, now)
                            .filter(|m| in_window(m, w))
                            .map(|m| m.v.clone())
                    })
                    .collect();
                drop(inner);
                items.sort_by(|a, b| {
                    a["lastModifiedDateTime"]
                        .as_str()
                        .cmp(&b["lastModifiedDateTime"].as_str())
                        .then(a["id"].as_str().cmp(&b["id"].as_str()))
                });
                crate::paging::page_list(req, &url, items, PAGE, MAX_PAGE)
            }
            [cid, more @ ..] => {
                let ok = self
                    .snapshot(Owner::Chats, cid)
                    .is_some_and(|c| c.members.contains(&u));
                if !ok {
                    return not_found(&format!("Chat '{cid}'"));
                }
                self.conv_routes(req, Owner::Chats, cid, more)
            }
            _ => bad_segment("chats"),
        }
    }

    /// A channel's or chat's own endpoints.
    fn conv_routes(&self, req: &Req, o: Owner, cid: &str, rest: &[&str]) -> Resp {
        let m = req.method.as_str();
        let url = format!("{}/v1.0{}", req.base, req.path);
        let now = Utc::now();
        let Some(c) = self.snapshot(o, cid) else {
            return not_found(&format!("Conversation '{cid}'"));
        };
        let t = &self.model.tenant;
        match rest {
            [] if m == "GET" => {
                let mut v = c.json();
                if c.chat && expand_has(req, "members") {
                    v["members"] = json!(conv_members(t, &c));
                }
                Resp::ok(v)
            }
            ["members"] if m == "GET" => {
                crate::paging::page_list(req, &url, conv_members(t, &c), 100, 999)
            }
            ["tabs"] if m == "GET" && !c.chat => {
                crate::paging::page_list(req, &url, c.tabs.clone(), 100, 999)
            }
            ["messages"] if m == "GET" => {
                let replies = expand_has(req, "replies") && !c.chat;
                let mut items: Vec<Value> = live(&c, now)
                    .filter(|m| m.root().is_none())
                    .map(|m| {
                        if replies {
                            with_replies(&c, m, now)
                        } else {
                            m.v.clone()
                        }
                    })
                    .collect();
                newest_first(&mut items);
                crate::paging::page_list(req, &url, items, PAGE, MAX_PAGE)
            }
            ["messages"] if m == "POST" => self.migration_post(req, o, &c, None),
            ["messages", "delta"] if m == "GET" && !c.chat => self.channel_delta(req, &url, &c),
            ["messages", mid, more @ ..] => {
                let Some(msg) = c
                    .msg(mid)
                    .filter(|x| !x.vanished(now) && x.root().is_none())
                else {
                    return not_found(&format!("Message '{mid}'"));
                };
                match more {
                    [] if m == "GET" => Resp::ok(msg.v.clone()),
                    ["replies"] if m == "GET" && !c.chat => {
                        let mut items: Vec<Value> = live(&c, now)
                            .filter(|x| x.root() == Some(*mid))
                            .map(|x| x.v.clone())
                            .collect();
                        newest_first(&mut items);
                        crate::paging::page_list(req, &url, items, PAGE, MAX_PAGE)
                    }
                    ["replies"] if m == "POST" && !c.chat => {
                        self.migration_post(req, o, &c, Some(mid))
                    }
                    ["replies", rid, tail @ ..] if !c.chat => {
                        let Some(reply) = c
                            .msg(rid)
                            .filter(|x| !x.vanished(now) && x.root() == Some(*mid))
                        else {
                            return not_found(&format!("Reply '{rid}'"));
                        };
                        match tail {
                            [] if m == "GET" => Resp::ok(reply.v.clone()),
                            ["hostedContents", ..] if m == "GET" => hosted(reply, &tail[1..]),
                            _ => bad_segment(tail.first().copied().unwrap_or_default()),
                        }
                    }
                    ["hostedContents", ..] if m == "GET" => hosted(msg, &more[1..]),
                    _ => bad_segment(more.first().copied().unwrap_or_default()),
                }
            }
            ["startMigration"] if m == "POST" => self.start_migration(req, o, &c),
            ["completeMigration"] if m == "POST" => self.complete_migration(req, o, &c),
            _ => bad_segment(rest.first().copied().unwrap_or_default()),
        }
    }

    /// `GET …/channels/{id}/messages/delta`: root posts whose thread changed, last 8 months.
    /// `$deltatoken=<instance>.<seq>`; `$skiptoken=<instance>.<from>.<upto>.<offset>.<fresh>`.
    fn channel_delta(&self, req: &Req, url: &str, c: &Conv) -> Resp {
        let (instance, seq) = {
            let g = self.teams.lock();
            (g.instance, g.seq)
        };
        let gone = || {
            Resp::error(
                410,
                "SyncStateNotFound",
                "The sync state generation is not found. Please re-sync from the start.",
            )
        };
        let parse = |t: &str| -> Option<Vec<u64>> {
            t.split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u64>>>()
        };
        let (from, upto, offset, fresh) = if let Some(t) = req.q("$skiptoken") {
            match parse(t).as_deref() {
                Some([i, f, u, o, n]) if *i == instance && *u <= seq => {
                    (*f, *u, *o as usize, *n == 1)
                }
                _ => return gone(),
            }
        } else if let Some(t) = req.q("$deltatoken") {
            match parse(t).as_deref() {
                Some([i, f]) if *i == instance && *f <= seq => (*f, seq, 0, false),
                _ => return gone(),
            }
        } else {
            (0, seq, 0, true)
        };
        let now = Utc::now();
        let since = fmt_time(now - Duration::days(DELTA_WINDOW_DAYS));
        let filter = match req.q("$filter") {
            None => None,
            Some(_) => match modified_window(req) {
                Ok((gt, None)) => gt.map(fmt_time),
                _ => {
                    return Resp::bad_request(
                        "Only '$filter=lastModifiedDateTime gt T' is supported on delta.",
                    );
                }
            },
        };
        let replies = expand_has(req, "replies");
        let mut roots: Vec<(u64, &Msg)> = live(c, now)
            .filter(|m| m.root().is_none())
            .map(|m| (c.thread_seq(m.id()), m))
            .filter(|(s, _)| *s <= upto && (fresh || *s > from))
            .filter(|(_, m)| {
                let last = c.thread_modified(m.id());
                last >= since && filter.as_ref().is_none_or(|f| last > *f)
            })
            .collect();
        roots.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.created().cmp(b.1.created())));
        let size = page_size(req);
        let page: Vec<Value> = roots
            .iter()
            .skip(offset)
            .take(size)
            .map(|(_, m)| {
                if replies {
                    with_replies(c, m, now)
                } else {
                    m.v.clone()
                }
            })
            .collect();
        let q = keep_query(req);
        let mut body = json!({"value": page});
        if offset + size < roots.len() {
            body["@odata.nextLink"] = json!(format!(
                "{url}?{q}$skiptoken={instance}.{from}.{upto}.{}.{}",
                offset + size,
                u8::from(fresh)
            ));
        } else {
            body["@odata.deltaLink"] = json!(format!("{url}?{q}$deltatoken={instance}.{upto}"));
        }
        Resp::ok(body)
    }

    /// Throttling of Teams reads: one budget per app and team (or chat).
    pub(crate) fn teams_bucket(&self, req: &Req) -> Option<crate::throttle::Bucket> {
        if req.method != "GET" {
            return None;
        }
        let s: Vec<String> = req
            .path
            .split('/')
            .filter(|x| !x.is_empty())
            .map(|x| {
                percent_encoding::percent_decode_str(x)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let key = match s.as_slice() {
            [t, id, ..] if t == "teams" => id.to_ascii_lowercase(),
            [c, id, ..] if c == "chats" => id.clone(),
            [u, _, c, id, ..] if u == "users" && c == "chats" && id != "getAllMessages" => {
                id.clone()
            }
            // A user's chat list and export: no team or chat budget (nor a mailbox's).
            [u, _, c, ..] if u == "users" && c == "chats" => {
                return Some(crate::throttle::Bucket::Other);
            }
            _ => return None,
        };
        let app = self.caller_id(req).unwrap_or_default();
        let h = key
            .bytes()
            .chain(std::iter::once(0))
            .chain(app.bytes())
            .fold(0x7EA5_u64, |h, b| crate::seeded::mix(h ^ b as u64));
        Some(crate::throttle::Bucket::Teams(h))
    }

    /// `GET /_sim/manifest?resource=ID[&extras=true][&teams=true]`: with `teams`, the
    /// entries of `teams_manifest` appended.
    pub fn manifest_with_teams(&self, id: &str, extras: bool, teams: bool) -> Resp {
        let mut resp = self.manifest_ext(id, extras);
        if teams
            && let (crate::wire::Body::Json(Value::Array(out)), Some(r)) =
                (&mut resp.body, self.model.tenant.find_res(id))
        {
            out.extend(self.teams_manifest(r));
        }
        resp
    }

    /// `GET /_sim/manifest?resource=ID&teams=true`: a team's channel messages and replies, or
    /// a user's chat messages; and the channels and chats in (or after) migration.
    pub fn teams_manifest(&self, r: Res) -> Vec<Value> {
        let now = Utc::now();
        let (mut inner, t) = self.tm();
        let convs: Vec<&Conv> = match r {
            Res::Group(g) if g % 2 == 0 => inner.convs(t, Owner::Team(g)).iter().collect(),
            Res::User(u) => inner
                .convs(t, Owner::Chats)
                .iter()
                .filter(|c| c.members.contains(&u))
                .collect(),
            _ => return vec![],
        };
        let mut out = Vec::new();
        for c in convs {
            if let Some(mig) = &c.migration {
                out.push(json!({"id": c.id, "kind": if c.chat { "chat" } else { "channel" },
                    "path": if c.chat { c.id.as_str() } else { c.name() }, "migrationMode": mig.state}));
            }
            for m in live(c, now).filter(|m| !m.deleted()) {
                let hosted: Vec<Value> = m
                    .hosted
                    .iter()
                    .map(|h| json!({"id": h.id, "sha256": sha(&h.bytes())}))
                    .collect();
                out.push(json!({
                    "id": m.id(),
                    "kind": "chatMessage",
                    "path": if c.chat { c.id.as_str() } else { c.name() },
                    "thread": m.root().unwrap_or(m.id()),
                    "sha256": message_sha256(&m.v),
                    "hostedContents": hosted,
                }));
            }
        }
        out
    }

    /// `POST /_sim/mutate` with kinds `chatMessage`: people posting, replying, editing and
    /// deleting in teams' channels (resource: a team) or chats (resource: a user).
    pub fn mutate_teams(&self, m: &crate::admin::MutateRequest) -> Resp {
        let t = &self.model.tenant;
        let ops = m.ops.clone().unwrap_or_else(|| {
            ["create", "reply", "modify", "delete"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        for o in &ops {
            if !["create", "reply", "modify", "delete"].contains(&o.as_str()) {
                return Resp::bad_request(&format!(
                    "Unknown op '{o}' for chatMessage: use create, reply, modify or delete."
                ));
            }
        }
        if let Some(k) = m
            .kinds
            .iter()
            .flatten()
            .find(|k| !TEAMS_KINDS.contains(&k.as_str()))
        {
            return Resp::bad_request(&format!("Kind '{k}' cannot be mixed with chatMessage."));
        }
        let owners: Vec<(Owner, Option<u32>)> = match &m.resource {
            Some(id) => match t.find_res(id) {
                Some(Res::Group(g)) if g % 2 == 0 => vec![(Owner::Team(g), None)],
                Some(Res::User(u)) => vec![(Owner::Chats, Some(u))],
                _ => {
                    return Resp::error(
                        404,
                        "notFound",
                        &format!("No team or user has id '{id}'."),
                    );
                }
            },
            None => (0..t.spec.groups)
                .step_by(2)
                .map(|g| (Owner::Team(g), None))
                .chain(std::iter::once((Owner::Chats, None)))
                .collect(),
        };
        let count = m.count.unwrap_or(1) as usize;
        let (mut inner, t) = self.tm();
        let anchor_now = Utc::now();
        let mut r = crate::seeded::rng(t.spec.seed ^ m.seed, &[0x7F6, inner.seq]);
        let mut applied = Vec::new();
        let mut attempts = 0;
        while applied.len() < count && attempts < count * 20 + 20 {
            attempts += 1;
            let (o, user) = owners[r.random_range(0..owners.len())];
            let op = ops[r.random_range(0..ops.len())].clone();
            // Threads in migration take no new messages from people.
            let convs: Vec<Conv> = inner
                .convs(t, o)
                .iter()
                .filter(|c| !c.migrating() && user.is_none_or(|u| c.members.contains(&u)))
                .filter(|c| !c.members.is_empty())
                .cloned()
                .collect();
            if convs.is_empty() {
                continue;
            }
            let c = &convs[r.random_range(0..convs.len())];
            let now = anchor_now.max(
                c.msgs
                    .iter()
                    .filter_map(|x| parse_time(x.created()))
                    .max()
                    .unwrap_or(anchor_now)
                    + Duration::milliseconds(1),
            );
            let mg = MsgGen {
                t,
                anchor: now + Duration::minutes(1),
                not_before: now - Duration::minutes(1),
                authors: c.members.clone(),
                team: (!c.chat).then_some(c.team),
            };
            let live_msgs: Vec<&Msg> = c
                .msgs
                .iter()
                .filter(|x| !x.deleted() && x.v["messageType"] == "message")
                .collect();
            let msg = match op.as_str() {
                "create" => {
                    let mut x = mg.message(c, &mut r, now, None, Special::None);
                    x.v["lastEditedDateTime"] = Value::Null;
                    x.v["deletedDateTime"] = Value::Null;
                    x.v["lastModifiedDateTime"] = x.v["createdDateTime"].clone();
                    Some(x)
                }
                "reply" if !c.chat => {
                    let roots: Vec<&&Msg> =
                        live_msgs.iter().filter(|x| x.root().is_none()).collect();
                    if roots.is_empty() {
                        None
                    } else {
                        let root = roots[r.random_range(0..roots.len())].id().to_string();
                        let mut x = mg.message(c, &mut r, now, Some(&root), Special::None);
                        x.v["lastEditedDateTime"] = Value::Null;
                        x.v["deletedDateTime"] = Value::Null;
                        x.v["lastModifiedDateTime"] = x.v["createdDateTime"].clone();
                        Some(x)
                    }
                }
                "reply" => None,
                _ if live_msgs.is_empty() => None,
                _ => {
                    let mut x = live_msgs[r.random_range(0..live_msgs.len())].clone();
                    let at = fmt_time(anchor_now);
                    if op == "delete" {
                        x.v["deletedDateTime"] = json!(at);
                    } else {
                        let content = x.v["body"]["content"].as_str().unwrap_or_default();
                        x.v["body"]["content"] =
                            json!(format!("{content}<p>Edit {}.</p>", inner.seq + 1));
                        x.v["lastEditedDateTime"] = json!(at);
                    }
                    x.v["lastModifiedDateTime"] = json!(at);
                    x.v["etag"] = json!(anchor_now.timestamp_millis().to_string());
                    Some(x)
                }
            };
            let Some(msg) = msg else {
                continue;
            };
            let mut entry = json!({"op": op, "kind": "chatMessage", "id": msg.id(),
                "thread": msg.root().unwrap_or(msg.id())});
            if c.chat {
                entry["chat"] = json!(c.id);
            } else {
                entry["channel"] = json!(c.id);
                entry["team"] = json!(c.team_id);
            }
            if let Err(e) = inner.put_msg(t, o, &c.id, msg) {
                return e;
            }
            if c.chat {
                let mut cc = c.clone();
                cc.v["lastUpdatedDateTime"] = json!(fmt_time(anchor_now));
                if let Err(e) = inner.put_conv(t, o, cc) {
                    return e;
                }
            }
            applied.push(entry);
        }
        Resp::ok(json!({"applied": applied, "seq": inner.seq}))
    }
}

fn conv_members(t: &Tenant, c: &Conv) -> Vec<Value> {
    let since = if c.chat {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        c.v["createdDateTime"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    c.members
        .iter()
        .map(|&u| member_json(t, u, c.owners.contains(&u), &since))
        .collect()
}

/// `…/hostedContents[/{id}[/$value]]` of one message.
fn hosted(m: &Msg, rest: &[&str]) -> Resp {
    let item = |h: &super::Hosted| json!({"id": h.id, "contentBytes": null, "contentType": h.content_type});
    match rest {
        [] => Resp::ok(json!({"value": m.hosted.iter().map(item).collect::<Vec<_>>()})),
        [hid, more @ ..] => {
            let Some(h) = m.hosted.iter().find(|h| h.id == *hid) else {
                return not_found(&format!("Hosted content '{hid}'"));
            };
            match more {
                [] => Resp::ok(item(h)),
                ["$value"] => Resp::bytes(200, Bytes::from(h.bytes()), &h.content_type),
                _ => bad_segment(more[0]),
            }
        }
    }
}

/// The user identity a JSON `from` names, for tests and the migration.
pub(super) fn identity_of(t: &Tenant, u: u32) -> Value {
    user_identity(t, u)
}
