//! Migration mode: creating channels in migration, `startMigration` (beta) on existing
//! channels and chats, importing messages with their original author and time, and
//! `completeMigration`. The rules follow Microsoft's import guide (GRAPH-NOTES §10).

use super::generate::{MessageParts, channel_id, message_json};
use super::routes::identity_of;
use super::{Conv, Hosted, Migration, Msg, Owner, fmt_time, parse_time};
use crate::sim::Sim;
use crate::wire::{Req, Resp};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// Imported messages per second and thread.
const POSTS_PER_SEC: usize = 5;

const UNRESTORABLE: &[(&str, &str)] = &[
    (
        "application/vnd.microsoft.card.announcement",
        "announcement",
    ),
    ("application/vnd.microsoft.card.codesnippet", "code snippet"),
    ("application/vnd.microsoft.card.sticker", "sticker"),
];

fn forbidden(msg: &str) -> Resp {
    Resp::error(403, "Forbidden", msg)
}

fn body_object(req: &Req) -> Result<Map<String, Value>, Resp> {
    if req.body.is_empty() {
        return Ok(Map::new());
    }
    match req.json_body()? {
        Value::Object(o) => Ok(o),
        _ => Err(Resp::bad_request("The body must be a JSON object.")),
    }
}

impl Sim {
    fn has_role(&self, req: &Req, role: &str) -> bool {
        let roles = self.caller_roles(req);
        crate::permissions::effective(&roles).contains(&role)
    }

    /// `POST /teams/{id}/channels`: a new channel, in migration mode with the annotation.
    pub(super) fn create_channel(&self, req: &Req, g: u32) -> Resp {
        let b = match body_object(req) {
            Ok(b) => b,
            Err(e) => return e,
        };
        let migration = b
            .get("@microsoft.graph.channelCreationMode")
            .and_then(Value::as_str)
            .is_some_and(|m| m.eq_ignore_ascii_case("migration"));
        let needs = if migration {
            "Teamwork.Migrate.All"
        } else {
            "Channel.Create"
        };
        if !self.has_role(req, needs) {
            return forbidden(&format!(
                "Missing role permissions on the request. API requires one of '{needs}'."
            ));
        }
        let Some(name) = b
            .get("displayName")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
        else {
            return Resp::bad_request("displayName is required.");
        };
        let kind = b
            .get("membershipType")
            .and_then(Value::as_str)
            .unwrap_or("standard");
        if migration && kind != "standard" {
            return Resp::bad_request("Only standard channels can be created in migration mode.");
        }
        if !["standard", "private"].contains(&kind) {
            return Resp::bad_request(&format!("membershipType '{kind}' is not supported."));
        }
        let now = Utc::now();
        let created = if migration {
            match b
                .get("createdDateTime")
                .and_then(Value::as_str)
                .and_then(parse_time)
            {
                Some(t) if t < now => t,
                Some(_) => {
                    return Resp::bad_request("createdDateTime must be in the past.");
                }
                None => {
                    return Resp::bad_request(
                        "createdDateTime is required to create a channel in migration mode.",
                    );
                }
            }
        } else {
            now
        };
        let app = self.caller_id(req).unwrap_or_default();
        let (mut inner, t) = self.tm();
        if inner
            .convs(t, Owner::Team(g))
            .iter()
            .any(|c| c.name().eq_ignore_ascii_case(name))
        {
            return Resp::bad_request(&format!("Channel name already existed: '{name}'."));
        }
        let id = channel_id(t.spec.seed ^ inner.instance, g, 1000 + inner.seq);
        let team_id = t.group(g).map(|x| x.id).unwrap_or_default();
        let mut v = json!({
            "id": id,
            "displayName": name,
            "description": b.get("description").cloned().unwrap_or(Value::Null),
            "createdDateTime": fmt_time(created),
            "membershipType": kind,
            "email": "",
            "webUrl": format!("https://teams.microsoft.com/l/channel/{}/{}?groupId={team_id}",
                percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)),
            "tenantId": null,
            "isArchived": false,
        });
        let members = super::generate::team_members(t, g);
        let c = Conv {
            id: id.clone(),
            chat: false,
            team: g,
            team_id,
            shared_with: vec![],
            v: v.clone(),
            owners: members.iter().take(1).copied().collect(),
            members,
            tabs: vec![],
            msgs: vec![],
            migration: migration.then(|| Migration {
                app,
                since: fmt_time(created),
                state: "inProgress".into(),
            }),
        };
        if let Err(e) = inner.put_conv(t, Owner::Team(g), c) {
            return e;
        }
        if migration {
            v["migrationMode"] = json!("inProgress");
        }
        Resp::json(201, v)
    }

    /// `POST /beta/…/startMigration`.
    pub(super) fn start_migration(&self, req: &Req, o: Owner, c: &Conv) -> Resp {
        if req.header(crate::mailbox_api::VERSION_HEADER) != Some("beta") {
            return Resp::bad_request("Resource not found for the segment 'startMigration'.");
        }
        if c.migrating() {
            return Resp::bad_request("The conversation is already in migration mode.");
        }
        let b = match body_object(req) {
            Ok(b) => b,
            Err(e) => return e,
        };
        let oldest = c
            .msgs
            .iter()
            .map(|m| m.created().to_string())
            .min()
            .unwrap_or_else(|| c.v["createdDateTime"].as_str().unwrap_or_default().into());
        let since = match b.get("conversationCreationDateTime") {
            None | Some(Value::Null) => c.v["createdDateTime"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Some(v) => {
                let Some(t) = v.as_str().and_then(parse_time) else {
                    return Resp::bad_request("conversationCreationDateTime is not a date-time.");
                };
                let oldest = parse_time(&oldest).unwrap_or_else(Utc::now);
                if t >= oldest {
                    return Resp::bad_request(
                        "conversationCreationDateTime must be earlier than the oldest message of the conversation.",
                    );
                }
                fmt_time(t)
            }
        };
        let mut c = c.clone();
        c.migration = Some(Migration {
            app: self.caller_id(req).unwrap_or_default(),
            since,
            state: "inProgress".into(),
        });
        let (mut inner, t) = self.tm();
        match inner.put_conv(t, o, c) {
            Ok(()) => Resp::empty(204),
            Err(e) => e,
        }
    }

    /// `POST …/completeMigration`.
    pub(super) fn complete_migration(&self, req: &Req, o: Owner, c: &Conv) -> Resp {
        let Some(m) = c.migration.as_ref().filter(|_| c.migrating()) else {
            return Resp::bad_request("The conversation is not in migration mode.");
        };
        if self.caller_id(req).unwrap_or_default() != m.app {
            return forbidden("Another application manages the migration of this conversation.");
        }
        let mut c = c.clone();
        if let Some(m) = c.migration.as_mut() {
            m.state = "completed".into();
        }
        let (mut inner, t) = self.tm();
        inner.posts.remove(&c.id);
        match inner.put_conv(t, o, c) {
            Ok(()) => Resp::empty(204),
            Err(e) => e,
        }
    }

    /// `POST …/messages`, `…/messages/{id}/replies`, `/chats/{id}/messages`: an imported message.
    pub(super) fn migration_post(&self, req: &Req, o: Owner, c: &Conv, root: Option<&str>) -> Resp {
        let Some(mig) = c.migration.as_ref().filter(|_| c.migrating()) else {
            return forbidden(
                "Messages with createdDateTime and from can only be posted while the conversation is in migration mode (startMigration or channelCreationMode 'migration').",
            );
        };
        if self.caller_id(req).unwrap_or_default() != mig.app {
            return forbidden("Another application manages the migration of this conversation.");
        }
        let b = match body_object(req) {
            Ok(b) => b,
            Err(e) => return e,
        };
        let t = &self.model.tenant;
        let message_type = b
            .get("messageType")
            .and_then(Value::as_str)
            .unwrap_or("message");
        if message_type != "message" {
            return Resp::bad_request(&format!(
                "messageType '{message_type}' cannot be imported (systemEventMessage and other kinds are out of scope)."
            ));
        }
        let attachments: Vec<Value> = b
            .get("attachments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for a in &attachments {
            let ct = a["contentType"].as_str().unwrap_or_default();
            if let Some((_, kind)) = UNRESTORABLE.iter().find(|(x, _)| *x == ct) {
                return Resp::bad_request(&format!(
                    "Attachments of kind {kind} ({ct}) cannot be imported."
                ));
            }
        }
        let Some(created) = b
            .get("createdDateTime")
            .and_then(Value::as_str)
            .and_then(parse_time)
        else {
            return Resp::bad_request("createdDateTime is required in migration mode.");
        };
        let since = parse_time(&mig.since).unwrap_or(created);
        if created < since {
            return Resp::bad_request(&format!(
                "createdDateTime {} is before the conversation's creation ({}).",
                fmt_time(created),
                mig.since
            ));
        }
        if created > Utc::now() {
            return Resp::bad_request("createdDateTime cannot be in the future.");
        }
        let ms = created.timestamp_millis();
        // Soft-deleted messages do not count: restoring one puts it back beside its tombstone.
        if c.msgs
            .iter()
            .filter(|m| !m.deleted())
            .any(|m| parse_time(m.created()).is_some_and(|x| x.timestamp_millis() == ms))
        {
            return Resp::bad_request(&format!(
                "Another message of this conversation has createdDateTime {}; it must be unique.",
                fmt_time(created)
            ));
        }
        let user = b
            .get("from")
            .and_then(|f| f.get("user"))
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str)
            .and_then(|id| t.find_user(id));
        let Some(user) = user else {
            return Resp::bad_request("from.user.id must name a user of the tenant.");
        };
        let mut identity = identity_of(t, user.idx);
        if let Some(n) = b["from"]["user"]["displayName"].as_str() {
            identity["displayName"] = json!(n);
        }
        let id = c.fresh_id(ms);
        // Inline images: temporary ids in the body become hosted contents.
        let mut content = b
            .get("body")
            .and_then(|x| x.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let content_type = b["body"]["contentType"].as_str().unwrap_or("html");
        let mut hosted = Vec::new();
        for h in b
            .get("hostedContents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let temp = h["@microsoft.graph.temporaryId"]
                .as_str()
                .unwrap_or_default();
            let Some(bytes) = h["contentBytes"]
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
            else {
                return Resp::bad_request("hostedContents need contentBytes (base64).");
            };
            let hid = URL_SAFE_NO_PAD.encode(format!("id=x_{id}-{temp},type=1"));
            let url = super::generate::hosted_url(
                c,
                root.unwrap_or(&id),
                root.map(|_| id.as_str()),
                &hid,
            );
            content = content.replace(&format!("../hostedContents/{temp}/$value"), &url);
            hosted.push(Hosted {
                id: hid,
                content_type: h["contentType"].as_str().unwrap_or("image/png").to_string(),
                b64: STANDARD.encode(bytes),
            });
        }
        // At most 5 imported messages per second and thread.
        let (mut inner, t) = self.tm();
        let now = Instant::now();
        let recent = inner.posts.entry(c.id.clone()).or_default();
        recent.retain(|i| now.duration_since(*i).as_millis() < 1000);
        if recent.len() >= POSTS_PER_SEC {
            return Resp::error(
                429,
                "TooManyRequests",
                "Too many messages imported into this conversation: at most 5 per second.",
            )
            .with_header("Retry-After", "1");
        }
        recent.push(now);
        let created_s = fmt_time(created);
        let v = message_json(MessageParts {
            c,
            id: &id,
            root,
            message_type: "message",
            created: &created_s,
            modified: &created_s,
            edited: Value::Null,
            deleted: Value::Null,
            subject: b.get("subject").cloned().unwrap_or(Value::Null),
            importance: b
                .get("importance")
                .and_then(Value::as_str)
                .unwrap_or("normal"),
            from: json!({"application": null, "device": null, "user": identity}),
            body: content,
            attachments,
            mentions: b
                .get("mentions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            reactions: b
                .get("reactions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        });
        let mut v = v;
        v["body"]["contentType"] = json!(content_type);
        let msg = Msg {
            v: v.clone(),
            seq: 0,
            hosted,
        };
        match inner.put_msg(t, o, &c.id, msg) {
            Ok(_) => Resp::json(201, v),
            Err(e) => e,
        }
    }
}
