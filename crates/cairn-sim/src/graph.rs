//! Microsoft Graph v1.0 endpoints: routing and handlers over the live model.

use crate::content::{self, CONTACT_CONTENT_FIELDS, EVENT_CONTENT_FIELDS, iso};
use crate::keys::{
    Coll, CollKey, DRIVE_ITEM_PREFIX, ItemKey, NEW_FOLDER, OUTLOOK_PREFIX, Res, SUBSITE, coll_id,
    parse_coll_id, parse_item_id, parse_list_item_id, parse_thread_id,
};
use crate::model::{Ctx, DriveNode, FolderInfo, Model, new_state, state_for_change};
use crate::odata::{self, Entity, Query};
use crate::paging::{DeltaSpec, delta, page_list, page_list_counted};
use crate::sim::Sim;
use crate::state::{Content, FolderState, ItemState, Kind, State, VersionRec};
use crate::wire::{Req, Resp, apply_select};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

/// Maximum size of a simple upload (`PUT …/content`).
const SIMPLE_UPLOAD_MAX: usize = 250 * 1024 * 1024;

fn segs(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Splits OneDrive path addressing: `items/{id}:/a/b.txt:/content` →
/// (`items/{id}`, `a/b.txt`, `content`).
fn split_path_addressing(path: &str) -> (String, Option<String>, String) {
    if let Some(start) = path.find(":/") {
        let head = path[..start].to_string();
        let rest = &path[start + 2..];
        match rest.find(':') {
            Some(end) => (
                head,
                Some(rest[..end].to_string()),
                rest[end + 1..].trim_start_matches('/').to_string(),
            ),
            None => (head, Some(rest.to_string()), String::new()),
        }
    } else if let Some(head) = path.strip_suffix(':') {
        (head.to_string(), None, String::new())
    } else {
        (path.to_string(), None, String::new())
    }
}

/// How `Sim::item_listing` lists one collection of generated items.
struct Listing<'a> {
    entity: Entity,
    /// The item as `$filter`, `$search` and `$orderby` see it.
    render: &'a dyn Fn(&State, ItemKey) -> Option<Value>,
    /// The item as the answer shows it (list items drop fields not asked for).
    finish: &'a dyn Fn(Value) -> Value,
    default_page: u32,
    max_page: u32,
}

impl<'a> Listing<'a> {
    /// An Outlook collection: pages of 10 by default.
    fn outlook(
        entity: Entity,
        render: &'a dyn Fn(&State, ItemKey) -> Option<Value>,
        max_page: u32,
    ) -> Self {
        Self {
            entity,
            render,
            finish: &|v| v,
            default_page: 10,
            max_page,
        }
    }
}

impl Sim {
    /// Answers one Graph request (already authenticated, throttled and fault-checked).
    pub fn graph(&self, req: &Req) -> Resp {
        let (head, addressed, tail) = split_path_addressing(&req.path);
        let s = segs(&head);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        let tail_s = segs(&tail);
        let tail_s: Vec<&str> = tail_s.iter().map(String::as_str).collect();
        let m = req.method.as_str();
        if m == "GET"
            && let Some(inner) = req.path.strip_suffix("/$count")
            && !matches!(inner, "/users" | "/groups")
        {
            return self.count_segment(req, inner);
        }
        match s.as_slice() {
            ["me", ..] => {
                Resp::bad_request("/me request is only valid with delegated authentication flow.")
            }
            ["users"] if m == "GET" => self.list_users(req),
            ["users", "$count"] if m == "GET" => self.directory_count(req, Entity::User),
            ["users", u, rest @ ..] => {
                let Some(user) = self.model.tenant.find_user(u) else {
                    return Resp::not_found_directory(u);
                };
                let r = Res::User(user.idx);
                match rest {
                    [] => match odata::item_expand(req, Entity::User, &[]) {
                        Ok(_) => self.user_json(req, user.idx),
                        Err(e) => e,
                    },
                    ["drive", more @ ..] => match self.model.tenant.drives(r).first() {
                        Some((c, _)) => self.drive_routes(req, *c, more, addressed, &tail_s),
                        None => Resp::error(404, "ResourceNotFound", "User's mysite not found."),
                    },
                    ["drives"] => self.list_drives(req, r),
                    ["settings", "exchange"] if m == "GET" => self.exchange_settings(req, user.idx),
                    ["chats", more @ ..] => self.user_chat_routes(req, user.idx, more),
                    _ if !self.model.tenant.has_mailbox(r) => Resp::error(
                        404,
                        "MailboxNotEnabledForRESTAPI",
                        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                    ),
                    _ => self.mailbox_routes(req, r, rest),
                }
            }
            ["groups"] if m == "GET" => self.list_groups(req),
            ["groups", "$count"] if m == "GET" => self.directory_count(req, Entity::Group),
            ["groups", g, rest @ ..] => {
                let Some(group) = self.model.tenant.find_group(g) else {
                    return Resp::not_found_directory(g);
                };
                let r = Res::Group(group.idx);
                match rest {
                    [] => match odata::item_expand(req, Entity::Group, &[]) {
                        Ok(_) => {
                            let mut v = self.group_json(group.idx);
                            apply_select(&mut v, &req.select());
                            Resp::ok(v)
                        }
                        Err(e) => e,
                    },
                    ["drive", more @ ..] => match self.model.tenant.drives(r).first() {
                        Some((c, _)) => self.drive_routes(req, *c, more, addressed, &tail_s),
                        None => Resp::not_found_files(),
                    },
                    ["drives"] => self.list_drives(req, r),
                    ["members"] if m == "GET" => self.list_group_members(req, group.idx),
                    ["threads"] if m == "GET" => self.list_threads(req, r),
                    ["threads", id, more @ ..] => self.thread_routes(req, r, id, more),
                    ["sites", "root", more @ ..] => {
                        let n = self.model.tenant.spec.sites + group.idx;
                        self.site_routes(req, n, more, addressed, &tail_s)
                    }
                    _ => no_segment(rest),
                }
            }
            ["sites"] if m == "GET" => self.list_sites(req, false),
            ["sites", "getAllSites"] if m == "GET" => self.list_sites(req, true),
            // A site by hostname and path: `/sites/host:/sites/hr` (then `:/lists…`).
            ["sites", host]
                if addressed.is_some() && self.model.tenant.find_site(host).is_none() =>
            {
                let path = addressed.as_deref().unwrap_or_default();
                let Some(site) = self.model.tenant.find_site_by_path(host, path) else {
                    return Resp::error(404, "itemNotFound", "Requested site could not be found");
                };
                self.site_routes(req, site.n, &tail_s, None, &[])
            }
            ["sites", id, rest @ ..] => {
                let Some(site) = self.model.tenant.find_site(id) else {
                    return Resp::error(404, "itemNotFound", "Requested site could not be found");
                };
                self.site_routes(req, site.n, rest, addressed, &tail_s)
            }
            ["teams", id, rest @ ..] => self.team_routes(req, id, rest),
            ["chats", id, rest @ ..] => self.chat_routes(req, id, rest),
            ["admin", "exchange", "mailboxes", mbx, rest @ ..] => {
                self.mailbox_api_routes(req, mbx, rest)
            }
            ["drives", d, rest @ ..] => {
                let Some(c) = parse_coll_id(d).filter(|c| matches!(c.coll, Coll::Drive(_))) else {
                    return Resp::not_found_files();
                };
                if !self.model.tenant.drives(c.res).iter().any(|(k, _)| *k == c) {
                    return Resp::not_found_files();
                }
                self.drive_routes(req, c, rest, addressed, &tail_s)
            }
            _ => Resp::error(
                400,
                "BadRequest",
                &format!(
                    "Resource not found for the segment '{}'.",
                    s.first().unwrap_or(&"")
                ),
            ),
        }
    }

    /// `…/$count` on an Outlook collection: the total `$count=true` reports, as text. (The
    /// directory's own `/$count` is an advanced query, `directory_count`.)
    fn count_segment(&self, req: &Req, inner: &str) -> Resp {
        let files = segs(inner)
            .iter()
            .any(|s| ["drive", "drives", "sites", "lists"].contains(&s.as_str()));
        if files {
            return odata::Service::Files
                .unsupported("The simulator does not serve /$count on files collections.");
        }
        let mut listing = req.clone();
        listing.path = inner.to_string();
        listing
            .query
            .retain(|(k, _)| !k.eq_ignore_ascii_case("$count") && !k.eq_ignore_ascii_case("$top"));
        listing.query.push(("$count".into(), "true".into()));
        listing.query.push(("$top".into(), "1".into()));
        let resp = self.graph(&listing);
        match &resp.body {
            crate::wire::Body::Json(v) if resp.status == 200 => match v["@odata.count"].as_u64() {
                Some(n) => Resp::bytes(200, Bytes::from(n.to_string()), "text/plain"),
                None => no_segment(&["$count"]),
            },
            _ => resp,
        }
    }

    // ---- directory ---------------------------------------------------------------------

    fn user_value(&self, idx: u32) -> Option<Value> {
        let u = self.model.tenant.user(idx)?;
        Some(json!({
            "id": u.id,
            "displayName": u.display_name,
            "userPrincipalName": u.upn,
            "mail": u.mail(),
            "accountEnabled": u.kind != crate::tenant::UserKind::SharedMailbox,
            "jobTitle": u.job_title,
            "department": u.department,
            "usageLocation": "US",
            "assignedLicenses": if u.has_drive() { json!([{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}]) } else { json!([]) },
        }))
    }

    fn user_json(&self, req: &Req, idx: u32) -> Resp {
        let mut v = self.user_value(idx).unwrap_or(Value::Null);
        apply_select(&mut v, &req.select());
        Resp::ok(v)
    }

    fn list_users(&self, req: &Req) -> Resp {
        let q = match odata::collection(req, Entity::User, &[]) {
            Ok(q) => q,
            Err(e) => return e,
        };
        let n = self.model.tenant.spec.users;
        let context = format!("{}/v1.0/$metadata#users", req.base);
        if q.filter.is_some() || q.search.is_some() || q.orderby.is_some() || q.skip {
            // A query over the directory: every user is looked at, then paged by offset.
            let items = (0..n).filter_map(|i| self.user_value(i)).collect();
            let items = q.apply(Entity::User, items);
            let url = format!("{}/v1.0/users", req.base);
            let mut resp = page_list_counted(req, &url, items, 100, 999, q.count);
            if let crate::wire::Body::Json(v) = &mut resp.body
                && let Some(o) = v.as_object_mut()
            {
                o.insert("@odata.context".into(), json!(context));
            }
            return resp;
        }
        // Users are generated on demand: slice the index range the page needs.
        let size = req
            .q("$top")
            .and_then(|t| t.parse().ok())
            .unwrap_or(100u32)
            .clamp(1, 999);
        let offset = req
            .q("$skiptoken")
            .and_then(crate::paging::Tok::decode)
            .map(|t| t.p as u32)
            .unwrap_or(0);
        let sel = req.select();
        let value: Vec<Value> = (offset..n.min(offset + size))
            .filter_map(|i| self.user_value(i))
            .map(|mut v| {
                apply_select(&mut v, &sel);
                v
            })
            .collect();
        let mut body = json!({"@odata.context": context});
        if offset == 0 && q.count {
            body["@odata.count"] = json!(n);
        }
        body["value"] = json!(value);
        if offset + size < n {
            let t = crate::paging::Tok::offset((offset + size) as u64, None);
            let mut q = format!("$top={size}");
            if let Some(s) = req.q("$select") {
                q.push_str(&format!("&$select={s}"));
            }
            body["@odata.nextLink"] = json!(format!(
                "{}/v1.0/users?{q}&$skiptoken={}",
                req.base,
                t.encode()
            ));
        }
        Resp::ok(body)
    }

    /// `GET /users/$count`, `/groups/$count`: the number of (matching) objects as text, an
    /// advanced query (`ConsistencyLevel: eventual`).
    fn directory_count(&self, req: &Req, entity: Entity) -> Resp {
        if !odata::eventual(req) {
            return odata::Service::Directory.unsupported(
                "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
            );
        }
        let q = match odata::collection(req, entity, &[]) {
            Ok(q) => q,
            Err(e) => return e,
        };
        let items: Vec<Value> = match entity {
            Entity::User => (0..self.model.tenant.spec.users)
                .filter_map(|i| self.user_value(i))
                .collect(),
            _ => (0..self.model.tenant.spec.groups)
                .map(|i| self.group_json(i))
                .collect(),
        };
        let n = q.apply(entity, items).len();
        Resp::bytes(200, Bytes::from(n.to_string()), "text/plain")
    }

    fn group_json(&self, idx: u32) -> Value {
        let Some(g) = self.model.tenant.group(idx) else {
            return Value::Null;
        };
        json!({
            "id": g.id,
            "displayName": g.display_name,
            "mailNickname": g.mail_nickname,
            "mail": format!("{}@{}", g.mail_nickname, self.model.tenant.spec.domain),
            "mailEnabled": true,
            "securityEnabled": false,
            "groupTypes": ["Unified"],
            "visibility": "Private",
            "resourceProvisioningOptions": if idx % 2 == 0 { json!(["Team"]) } else { json!([]) },
        })
    }

    fn list_groups(&self, req: &Req) -> Resp {
        let q = match odata::collection(req, Entity::Group, &[]) {
            Ok(q) => q,
            Err(e) => return e,
        };
        let items = (0..self.model.tenant.spec.groups)
            .map(|i| self.group_json(i))
            .collect();
        let items = q.apply(Entity::Group, items);
        let url = format!("{}/v1.0/groups", req.base);
        page_list_counted(req, &url, items, 100, 999, q.count)
    }

    /// `GET /groups/{id}/members`: the group's direct members (users only: the simulated
    /// groups have no nested groups, devices or service principals), each typed with
    /// `@odata.type`, paged like the directory (default 100, at most 999).
    fn list_group_members(&self, req: &Req, group: u32) -> Resp {
        let select = req.select();
        let items = self
            .model
            .tenant
            .group_members(group)
            .filter_map(|u| self.user_value(u))
            .map(|mut v| {
                apply_select(&mut v, &select);
                v["@odata.type"] = json!("#microsoft.graph.user");
                v
            })
            .collect();
        let id = self
            .model
            .tenant
            .group(group)
            .map(|g| g.id)
            .unwrap_or_default();
        let url = format!("{}/v1.0/groups/{id}/members", req.base);
        page_list(req, &url, items, 100, 999)
    }

    // ---- group conversations -----------------------------------------------------------

    /// `GET /groups/{id}/threads`: the conversation threads of the group's mailbox.
    fn list_threads(&self, req: &Req, r: Res) -> Resp {
        let q = match odata::collection(req, Entity::Thread, &[]) {
            Ok(q) => q,
            Err(e) => return e,
        };
        let st = self.state();
        let items: Vec<Value> = self
            .model
            .tenant
            .threads(r)
            .into_iter()
            .filter_map(|c| self.model.thread_json(&st, c))
            .collect();
        drop(st);
        page_list(
            req,
            &format!("{}/v1.0{}", req.base, req.path),
            q.apply(Entity::Thread, items),
            10,
            self.cfg.outlook_max_page,
        )
    }

    /// `…/threads/{thread-id}`, its posts and one post.
    fn thread_routes(&self, req: &Req, r: Res, id: &str, rest: &[&str]) -> Resp {
        let m = req.method.as_str();
        let Some(c) = parse_thread_id(id).filter(|c| c.res == r) else {
            return Resp::not_found_outlook();
        };
        let st = self.state();
        if !self.model.coll_exists(&st, c) {
            return Resp::not_found_outlook();
        }
        match rest {
            [] if m == "GET" => {
                if let Err(e) = odata::item_expand(req, Entity::Thread, &[]) {
                    return e;
                }
                let Some(mut v) = self.model.thread_json(&st, c) else {
                    return Resp::not_found_outlook();
                };
                apply_select(&mut v, &req.select());
                Resp::ok(v)
            }
            ["posts"] if m == "GET" => {
                let q = match odata::collection(req, Entity::Post, &[]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let render = |st: &State, k: ItemKey| self.model.post_json(st, k);
                let listing = Listing::outlook(Entity::Post, &render, self.cfg.outlook_max_page);
                self.item_listing(req, &st, c, &q, listing)
            }
            ["posts", pid] if m == "GET" => {
                let post = parse_item_id(OUTLOOK_PREFIX, pid)
                    .filter(|k| self.model.current(&st, *k).is_some_and(|(pc, _)| pc == c))
                    .and_then(|k| self.model.post_json(&st, k));
                match post {
                    Some(mut v) => {
                        apply_select(&mut v, &req.select());
                        Resp::ok(v)
                    }
                    None => Resp::not_found_outlook(),
                }
            }
            _ => no_segment(rest),
        }
    }

    fn site_json(&self, n: u32) -> Value {
        let Some(s) = self.model.tenant.site(n) else {
            return Value::Null;
        };
        json!({
            "id": s.id,
            "name": s.name,
            "displayName": s.display_name,
            "webUrl": s.web_url,
            "createdDateTime": iso(content::epoch() - chrono::Duration::days(1200)),
            "lastModifiedDateTime": iso(content::epoch()),
            "siteCollection": {"hostname": format!("{}.sharepoint.com", self.model.tenant.tenant_short())},
            "root": if n == 0 { json!({}) } else { Value::Null },
        })
    }

    fn list_sites(&self, req: &Req, all: bool) -> Resp {
        let search = req.q("search").map(|s| s.trim_matches('"').to_lowercase());
        if !all && search.is_none() {
            // `GET /sites` without search lists nothing useful on Graph either.
            return Resp::bad_request(
                "Provide a search query: GET /sites?search=…, or use getAllSites.",
            );
        }
        let items: Vec<Value> = self
            .model
            .tenant
            .all_sites()
            // getAllSites lists site collections; search also finds subsites.
            .filter(|n| !all || n & SUBSITE == 0)
            .map(|n| self.site_json(n))
            .filter(|v| match &search {
                Some(q) if q != "*" && !q.is_empty() => v["displayName"]
                    .as_str()
                    .is_some_and(|d| d.to_lowercase().contains(q.as_str())),
                _ => true,
            })
            .collect();
        let url = if all {
            format!("{}/v1.0/sites/getAllSites", req.base)
        } else {
            format!("{}/v1.0/sites", req.base)
        };
        match odata::collection(req, Entity::Site, &[]) {
            Ok(_) => page_list(req, &url, items, 200, 999),
            Err(e) => e,
        }
    }

    fn site_routes(
        &self,
        req: &Req,
        n: u32,
        rest: &[&str],
        addressed: Option<String>,
        tail: &[&str],
    ) -> Resp {
        let t = &self.model.tenant;
        let listed = match rest {
            ["sites"] => Some(Entity::Site),
            ["drives"] => Some(Entity::Drive),
            ["lists"] => Some(Entity::List),
            _ => None,
        };
        if req.method == "GET"
            && let Some(entity) = listed
            && let Err(e) = odata::collection(req, entity, &[])
        {
            return e;
        }
        match rest {
            [] => match odata::item_expand(req, Entity::Site, &[]) {
                Ok(_) => {
                    let mut v = self.site_json(n);
                    apply_select(&mut v, &req.select());
                    Resp::ok(v)
                }
                Err(e) => e,
            },
            ["sites"] => {
                let items = t
                    .subsites(n)
                    .into_iter()
                    .map(|k| self.site_json(k))
                    .collect();
                page_list(
                    req,
                    &format!(
                        "{}/v1.0/sites/{}/sites",
                        req.base,
                        self.site_json(n)["id"].as_str().unwrap_or_default()
                    ),
                    items,
                    200,
                    999,
                )
            }
            ["drives"] => {
                let st = self.state();
                let items = t
                    .site_drives(n)
                    .into_iter()
                    .filter_map(|(c, _)| self.model.drive_json(&st, c))
                    .collect();
                page_list(
                    req,
                    &format!("{}/v1.0/sites/drives", req.base),
                    items,
                    200,
                    999,
                )
            }
            ["drive", more @ ..] => match t.site_drives(n).first() {
                Some((c, _)) => self.drive_routes(req, *c, more, addressed, tail),
                None => Resp::not_found_files(),
            },
            ["lists"] if req.method == "GET" => {
                let mut items: Vec<Value> = t
                    .lists(n)
                    .into_iter()
                    .map(|(c, name)| self.list_json(c, name))
                    .collect();
                // Document libraries are lists too.
                for (c, name) in t.site_drives(n) {
                    items.push(json!({
                        "id": crate::seeded::guid(crate::tenant::coll_seed(c), &[9]),
                        "name": name, "displayName": name,
                        "list": {"template": "documentLibrary", "hidden": false},
                    }));
                }
                page_list(
                    req,
                    &format!("{}/v1.0/sites/lists", req.base),
                    items,
                    200,
                    999,
                )
            }
            ["lists", l, more @ ..] => {
                let Some((c, name)) = t.lists(n).into_iter().find(|(c, name)| {
                    self.list_json(*c, name)["id"].as_str() == Some(*l)
                        || name.eq_ignore_ascii_case(l)
                }) else {
                    return Resp::error(404, "itemNotFound", "List not found");
                };
                self.list_routes(req, c, name, more)
            }
            ["permissions", more @ ..] => self.site_permissions(req, n, more),
            _ => no_segment(rest),
        }
    }

    fn list_json(&self, c: CollKey, name: &str) -> Value {
        json!({
            "id": crate::seeded::guid(crate::tenant::coll_seed(c), &[8]),
            "name": name.replace(' ', ""),
            "displayName": name,
            "list": {"template": if name.starts_with("Contacts") { "contacts" } else { "issueTracking" }, "hidden": false, "contentTypesEnabled": false},
            "createdDateTime": iso(content::epoch() - chrono::Duration::days(500)),
            "lastModifiedDateTime": iso(content::epoch()),
        })
    }

    fn list_routes(&self, req: &Req, c: CollKey, name: &str, rest: &[&str]) -> Resp {
        let m = req.method.as_str();
        match rest {
            [] => match odata::item_expand(req, Entity::List, &[]) {
                Ok(_) => {
                    let mut v = self.list_json(c, name);
                    apply_select(&mut v, &req.select());
                    Resp::ok(v)
                }
                Err(e) => e,
            },
            ["items"] if m == "GET" => {
                let q = match odata::collection(req, Entity::ListItem, &["fields"]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let st = self.state();
                // Filters and sorts see the fields; the answer shows them when expanded.
                let render = |st: &State, k: ItemKey| self.model.list_item_json(st, k, true);
                let finish = |v: Value| expand_fields(v, &q);
                let listing = Listing {
                    entity: Entity::ListItem,
                    render: &render,
                    finish: &finish,
                    default_page: 200,
                    max_page: 5000,
                };
                self.item_listing(req, &st, c, &q, listing)
            }
            ["items", "delta"] if m == "GET" => {
                if let Err(e) = odata::delta(req, Entity::ListItem) {
                    return e;
                }
                let st = self.state();
                let render = |st: &State, k: ItemKey| self.model.list_item_json(st, k, true);
                let tomb = |_: &State, k: ItemKey| {
                    Some(
                        json!({"id": crate::keys::list_item_id(k), "deleted": {"state": "deleted"}}),
                    )
                };
                let spec = DeltaSpec {
                    drive_style: true,
                    default_page: 200,
                    files: true,
                    ..DeltaSpec::new(format!("{}/v1.0{}", req.base, req.path), &render, &tomb)
                };
                delta(&self.model, &st, req, c, &spec, false)
            }
            ["items"] if m == "POST" => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let fields = body["fields"].as_object().cloned().unwrap_or_default();
                let mut st = self.state();
                let key = ItemKey::New(st.next_seq());
                let s = new_state(Kind::ListItem, c, fields);
                if let Err(e) = st.put(key, s, None) {
                    return internal(e);
                }
                Resp::json(
                    201,
                    self.model
                        .list_item_json(&st, key, true)
                        .unwrap_or_default(),
                )
            }
            ["items", id, more @ ..] => {
                let Some(key) = parse_list_item_id(c, id) else {
                    return Resp::not_found_files();
                };
                let mut st = self.state();
                let Some((coll, _)) = self.model.current(&st, key) else {
                    return Resp::not_found_files();
                };
                if coll != c {
                    return Resp::not_found_files();
                }
                match (m, more) {
                    ("GET", []) => match odata::item_expand(req, Entity::ListItem, &["fields"]) {
                        Ok(q) => {
                            let v = self.model.list_item_json(&st, key, true);
                            let mut v = expand_fields(v.unwrap_or_default(), &q);
                            apply_select(&mut v, &req.select());
                            Resp::ok(v)
                        }
                        Err(e) => e,
                    },
                    ("GET", ["fields"]) => Resp::ok(
                        self.model
                            .list_item_json(&st, key, true)
                            .unwrap_or_default()["fields"]
                            .clone(),
                    ),
                    ("PATCH", ["fields"]) | ("PATCH", []) => {
                        let body = match req.json_body() {
                            Ok(b) => b,
                            Err(e) => return e,
                        };
                        let patch = if more.is_empty() {
                            body["fields"].clone()
                        } else {
                            body
                        };
                        let mut s = state_for_change(&st, key, Kind::ListItem, c);
                        if let Some(obj) = patch.as_object() {
                            for (k, v) in obj {
                                s.props.insert(k.clone(), v.clone());
                            }
                        }
                        touch(&mut s);
                        if let Err(e) = st.put(key, s, None) {
                            return internal(e);
                        }
                        let v = self
                            .model
                            .list_item_json(&st, key, true)
                            .unwrap_or_default();
                        Resp::ok(if more.is_empty() {
                            v
                        } else {
                            v["fields"].clone()
                        })
                    }
                    ("DELETE", []) => {
                        let mut s = state_for_change(&st, key, Kind::ListItem, c);
                        s.deleted = true;
                        touch(&mut s);
                        match st.put(key, s, None) {
                            Ok(_) => Resp::empty(204),
                            Err(e) => internal(e),
                        }
                    }
                    _ => no_segment(more),
                }
            }
            _ => no_segment(rest),
        }
    }

    // ---- mailbox -----------------------------------------------------------------------

    fn mailbox_routes(&self, req: &Req, r: Res, rest: &[&str]) -> Resp {
        let m = req.method.as_str();
        let ctx = Ctx {
            immutable_ids: req.immutable_ids(),
        };
        match rest {
            ["mailboxSettings"] => self.mailbox_settings(
                req,
                r,
                coll_id(CollKey {
                    res: r,
                    coll: Coll::MailFolder(crate::tenant::wk::ARCHIVE),
                }),
            ),
            ["todo", more @ ..] => self.todo_routes(req, r, more),
            ["mailFolders", f, "messageRules", more @ ..] if f.eq_ignore_ascii_case("inbox") => {
                self.rule_routes(req, r, more)
            }
            ["mailFolders"] if m == "GET" => {
                let st = self.state();
                let folders = self.model.mail_folders(&st, r);
                drop(st);
                let hidden = req.q("includeHiddenFolders") == Some("true");
                self.folder_listing(req, &folders, Some(crate::tenant::wk::ROOT), hidden, true)
            }
            ["mailFolders"] if m == "POST" => {
                self.create_folder(req, r, Some(crate::tenant::wk::ROOT), true)
            }
            ["mailFolders", "delta"] => {
                if let Err(e) = odata::delta(req, Entity::MailFolder) {
                    return e;
                }
                let st = self.state();
                self.folder_delta(req, &st, r, true)
            }
            ["contactFolders"] if m == "GET" => {
                let st = self.state();
                let folders = self.model.contact_folders(&st, r);
                drop(st);
                self.folder_listing(req, &folders, None, true, false)
            }
            ["contactFolders"] if m == "POST" => self.create_folder(req, r, None, false),
            ["contactFolders", "delta"] => {
                if let Err(e) = odata::delta(req, Entity::ContactFolder) {
                    return e;
                }
                let st = self.state();
                self.folder_delta(req, &st, r, false)
            }
            ["mailFolders", f, more @ ..] | ["contactFolders", f, more @ ..] => {
                let mail = rest[0] == "mailFolders";
                let st = self.state();
                let folders = if mail {
                    self.model.mail_folders(&st, r)
                } else {
                    self.model.contact_folders(&st, r)
                };
                let folder = folders.iter().find(|x| {
                    x.well_known.is_some_and(|w| w.eq_ignore_ascii_case(f)) || coll_id(x.coll) == *f
                });
                let Some(folder) = folder.cloned() else {
                    return Resp::not_found_outlook();
                };
                drop(st);
                self.folder_routes(req, r, &folder, &folders, more, mail, ctx)
            }
            ["messages"] if m == "GET" => {
                // All messages of the mailbox: the inbox-and-friends view.
                let q = match odata::collection(req, Entity::Message, &["attachments"]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let st = self.state();
                let folders = self.model.mail_folders(&st, r);
                let mut items = Vec::new();
                for f in folders.iter().filter(|f| !f.search_folder) {
                    let n = self.model.base_count(f.coll).min(50);
                    for i in 0..n {
                        if let Some(v) = self.render_message(&st, ItemKey::Base(f.coll, i), ctx, &q)
                        {
                            items.push(v);
                        }
                    }
                }
                page_list(
                    req,
                    &format!("{}/v1.0{}", req.base, req.path),
                    q.apply(Entity::Message, items),
                    10,
                    1000,
                )
            }
            ["messages", id, more @ ..] => self.message_routes(req, r, id, more, ctx),
            ["contacts"] => {
                let c = CollKey {
                    res: r,
                    coll: Coll::ContactFolder(0),
                };
                let st = self.state();
                let folders = self.model.contact_folders(&st, r);
                let Some(folder) = folders.iter().find(|f| f.coll == c).cloned() else {
                    return Resp::not_found_outlook();
                };
                drop(st);
                self.folder_routes(req, r, &folder, &folders, &["contacts"], false, ctx)
            }
            ["contacts", id, more @ ..] => {
                self.pim_item_routes(req, r, id, more, Kind::Contact, ctx)
            }
            ["calendars"] => {
                let q = match odata::collection(req, Entity::Calendar, &[]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let items = self
                    .model
                    .calendars(r)
                    .into_iter()
                    .map(|(c, name)| self.calendar_json(c, name))
                    .collect();
                page_list(
                    req,
                    &format!("{}/v1.0{}", req.base, req.path),
                    q.apply(Entity::Calendar, items),
                    10,
                    1000,
                )
            }
            ["calendar"] => {
                let c = CollKey {
                    res: r,
                    coll: Coll::Calendar(0),
                };
                Resp::ok(self.calendar_json(c, "Calendar"))
            }
            ["calendar", more @ ..] => self.calendar_routes(
                req,
                CollKey {
                    res: r,
                    coll: Coll::Calendar(0),
                },
                more,
                ctx,
            ),
            ["calendars", cid, more @ ..] => {
                let Some(c) = parse_coll_id(cid)
                    .filter(|c| c.res == r && matches!(c.coll, Coll::Calendar(_)))
                else {
                    return Resp::not_found_outlook();
                };
                if !self.model.calendars(r).iter().any(|(k, _)| *k == c) {
                    return Resp::not_found_outlook();
                }
                if more.is_empty() {
                    let name = self.model.calendar_name(c);
                    return Resp::ok(self.calendar_json(c, name));
                }
                self.calendar_routes(req, c, more, ctx)
            }
            ["events"] => self.calendar_routes(
                req,
                CollKey {
                    res: r,
                    coll: Coll::Calendar(0),
                },
                &["events"],
                ctx,
            ),
            ["events", "delta"] => Resp::bad_request(
                "events/delta is not available in v1.0; use calendarView/delta with startDateTime and endDateTime.",
            ),
            ["events", id, more @ ..] => self.pim_item_routes(req, r, id, more, Kind::Event, ctx),
            ["calendarView"] | ["calendarView", "delta"] => self.calendar_view(
                req,
                CollKey {
                    res: r,
                    coll: Coll::Calendar(0),
                },
                rest.len() == 2,
                ctx,
            ),
            _ => no_segment(rest),
        }
    }

    fn calendar_json(&self, c: CollKey, name: &str) -> Value {
        json!({
            "id": coll_id(c),
            "name": name,
            "color": "auto",
            "isDefaultCalendar": c.coll == Coll::Calendar(0),
            "canEdit": true,
            "changeKey": format!("ck{}", crate::tenant::coll_seed(c) % 100_000),
        })
    }

    fn calendar_routes(&self, req: &Req, c: CollKey, rest: &[&str], ctx: Ctx) -> Resp {
        match rest {
            ["events"] if req.method == "GET" => {
                let q = match odata::collection(req, Entity::Event, &[]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let st = self.state();
                let render = |st: &State, k: ItemKey| self.model.event_json(st, k, ctx);
                let listing = Listing::outlook(Entity::Event, &render, self.cfg.outlook_max_page);
                self.item_listing(req, &st, c, &q, listing)
            }
            ["events"] if req.method == "POST" => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let Some(obj) = body.as_object() else {
                    return Resp::bad_request("Event body must be a JSON object.");
                };
                let mut props = Map::new();
                for (k, v) in obj {
                    if EVENT_CONTENT_FIELDS.contains(&k.as_str())
                        || k == "organizer"
                        || k == "iCalUId"
                    {
                        props.insert(k.clone(), v.clone());
                    }
                }
                if !props.contains_key("subject") || !props.contains_key("start") {
                    return Resp::error(
                        400,
                        "ErrorInvalidRequest",
                        "An event needs subject, start and end.",
                    );
                }
                let is_series = props.get("recurrence").is_some_and(|r| !r.is_null());
                props.insert(
                    "type".into(),
                    json!(if is_series {
                        "seriesMaster"
                    } else {
                        "singleInstance"
                    }),
                );
                let mut st = self.state();
                let key = ItemKey::New(st.next_seq());
                let s = new_state(Kind::Event, c, props);
                if let Err(e) = st.put(key, s, None) {
                    return internal(e);
                }
                Resp::json(
                    201,
                    self.model.event_json(&st, key, ctx).unwrap_or_default(),
                )
            }
            ["calendarView"] | ["calendarView", "delta"] => {
                self.calendar_view(req, c, rest.len() == 2, ctx)
            }
            _ => no_segment(rest),
        }
    }

    /// `calendarView` (and its delta): events overlapping [startDateTime, endDateTime).
    /// Recurring series are returned as their master (Cairn keeps series, not occurrences).
    fn calendar_view(&self, req: &Req, c: CollKey, is_delta: bool, ctx: Ctx) -> Resp {
        let tok = req
            .q("$deltatoken")
            .or_else(|| req.q("$skiptoken"))
            .and_then(crate::paging::Tok::decode);
        let window = tok.as_ref().and_then(|t| t.x.clone()).or_else(|| {
            Some(format!(
                "{}|{}",
                req.q("startDateTime")?,
                req.q("endDateTime")?
            ))
        });
        let Some(window) = window else {
            return Resp::error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            );
        };
        // calendarView/delta takes no query options but the window (`event-delta`); the
        // simulator serves none on calendarView either.
        for opt in ["$select", "$filter", "$orderby", "$expand", "$search"] {
            if req.q(opt).is_some() && (is_delta || opt != "$select") {
                let what = if is_delta {
                    "calendarView/delta"
                } else {
                    "calendarView"
                };
                return odata::Service::Outlook
                    .unsupported(&format!("{opt} is not supported on {what}."));
            }
        }
        let (a, b) = window.split_once('|').unwrap_or_default();
        let parse = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                        .map(|d| d.and_utc())
                })
        };
        let (Ok(start), Ok(end)) = (parse(a), parse(b)) else {
            return Resp::error(
                400,
                "ErrorInvalidParameter",
                "startDateTime and endDateTime must be ISO 8601 date-times.",
            );
        };
        let st = self.state();
        let in_window = |st: &State, k: ItemKey| -> bool {
            let Some(v) = self.model.event_json(st, k, ctx) else {
                return false;
            };
            let ev_start = v["start"]["dateTime"]
                .as_str()
                .and_then(|s| parse(&s[..19.min(s.len())]).ok());
            let ev_end = v["end"]["dateTime"]
                .as_str()
                .and_then(|s| parse(&s[..19.min(s.len())]).ok());
            let recurring = !v["recurrence"].is_null();
            match (ev_start, ev_end) {
                (Some(s), Some(e)) => s < end && (e > start || recurring),
                _ => false,
            }
        };
        let render = |st: &State, k: ItemKey| self.model.event_json(st, k, ctx);
        let tomb = |_: &State, k: ItemKey| {
            Some(
                json!({"@odata.type": "#microsoft.graph.event", "id": self.model.outlook_id(k, c, ctx), "@removed": {"reason": "deleted"}}),
            )
        };
        let extra = format!("startDateTime={a}&endDateTime={b}");
        let spec = DeltaSpec {
            extra_query: if tok.is_some() { String::new() } else { extra },
            members_filter: Some(&in_window),
            ..DeltaSpec::new(format!("{}/v1.0{}", req.base, req.path), &render, &tomb)
        };
        let mut resp = delta(&self.model, &st, req, c, &spec, !is_delta);
        // Keep the window inside the tokens, as Graph encodes it in its state token.
        if let crate::wire::Body::Json(v) = &mut resp.body {
            for key in ["@odata.nextLink", "@odata.deltaLink"] {
                if let Some(link) = v[key].as_str().map(str::to_string)
                    && let Some((head, t)) = link.rsplit_once('=')
                    && let Some(mut tk) = crate::paging::Tok::decode(t)
                {
                    tk.x = Some(window.clone());
                    v[key] = json!(format!("{head}={}", tk.encode()));
                }
            }
        }
        resp
    }

    fn folder_json(&self, f: &FolderInfo, st: &State, mail: bool) -> Value {
        let kids = if mail {
            self.model.mail_folders(st, f.coll.res)
        } else {
            self.model.contact_folders(st, f.coll.res)
        };
        let n = folder_num(f.coll);
        let child_count = kids.iter().filter(|k| k.parent == Some(n)).count();
        let parent_id = f.parent.map(|p| {
            coll_id(CollKey {
                res: f.coll.res,
                coll: if mail {
                    Coll::MailFolder(p)
                } else {
                    Coll::ContactFolder(p)
                },
            })
        });
        if mail {
            let total = self.model.base_count(f.coll);
            let mut v = json!({
                "id": coll_id(f.coll),
                "displayName": f.name,
                "parentFolderId": parent_id,
                "childFolderCount": child_count,
                "unreadItemCount": total / 7,
                "totalItemCount": total,
                "sizeInBytes": total as u64 * 40_000,
                "isHidden": f.hidden,
            });
            if f.search_folder {
                v["@odata.type"] = json!("#microsoft.graph.mailSearchFolder");
                v["isSupported"] = json!(true);
                v["filterQuery"] = json!("isRead eq false");
            }
            v
        } else {
            json!({"id": coll_id(f.coll), "displayName": f.name, "parentFolderId": parent_id})
        }
    }

    fn folder_listing(
        &self,
        req: &Req,
        folders: &[FolderInfo],
        parent: Option<u32>,
        include_hidden: bool,
        mail: bool,
    ) -> Resp {
        let entity = if mail {
            Entity::MailFolder
        } else {
            Entity::ContactFolder
        };
        let q = match odata::collection(req, entity, &[]) {
            Ok(q) => q,
            Err(e) => return e,
        };
        let st = self.state();
        let items: Vec<Value> = folders
            .iter()
            .filter(|f| f.parent == parent || (!mail && parent.is_none() && f.parent.is_none()))
            .filter(|f| include_hidden || !f.hidden)
            .filter(|f| f.well_known != Some("msgfolderroot"))
            .map(|f| self.folder_json(f, &st, mail))
            .collect();
        page_list(
            req,
            &format!("{}/v1.0{}", req.base, req.path),
            q.apply(entity, items),
            10,
            1000,
        )
    }

    /// `mailFolders/delta` and `contactFolders/delta`: the whole hierarchy, flat.
    fn folder_delta(&self, req: &Req, st: &State, r: Res, mail: bool) -> Resp {
        let folders = if mail {
            self.model.mail_folders(st, r)
        } else {
            self.model.contact_folders(st, r)
        };
        let raw = req.q("$deltatoken").or_else(|| req.q("$skiptoken"));
        let url = format!("{}/v1.0{}", req.base, req.path);
        // (changes since, offset in the list, snapshot, page size); m = 4 marks a next page.
        let (since, offset, snapshot, page) = match raw.map(crate::paging::Tok::decode) {
            None => (None, 0, st.seq, req.max_page_size()),
            Some(Some(t)) if t.i == st.instance && t.m == 4 => {
                let since = (t.s != u64::MAX).then_some(t.s);
                (since, t.p as usize, t.u, t.n)
            }
            Some(Some(t)) if t.i == st.instance && t.s >= st.floor => {
                (Some(t.s), 0, st.seq, req.max_page_size())
            }
            Some(_) => return crate::paging::gone(false, &url),
        };
        let mut value: Vec<Value> = Vec::new();
        match since {
            None => {
                // The hierarchy under the message folder root; Recoverable Items lives
                // outside it and is reached by its well-known name.
                let under_root = |f: &FolderInfo| {
                    let mut cur = Some(f.clone());
                    let mut guard = 0;
                    while let Some(x) = cur {
                        if x.well_known == Some("msgfolderroot") {
                            return true;
                        }
                        cur = x.parent.and_then(|p| {
                            folders.iter().find(|y| folder_num(y.coll) == p).cloned()
                        });
                        guard += 1;
                        if guard > 64 {
                            break;
                        }
                    }
                    !mail
                };
                for f in folders
                    .iter()
                    .filter(|f| f.well_known != Some("msgfolderroot") && under_root(f))
                {
                    value.push(self.folder_json(f, st, mail));
                }
            }
            Some(s) => {
                let log = st.folder_log.get(&r).cloned().unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                for (seq, c) in log.into_iter().filter(|(seq, _)| *seq > s) {
                    let _ = seq;
                    if !seen.insert(c) || mail != matches!(c.coll, Coll::MailFolder(_)) {
                        continue;
                    }
                    match folders.iter().find(|f| f.coll == c) {
                        Some(f) => value.push(self.folder_json(f, st, mail)),
                        None => {
                            value.push(json!({"id": coll_id(c), "@removed": {"reason": "deleted"}}))
                        }
                    }
                }
            }
        }
        let sel = req.select();
        for v in value.iter_mut() {
            apply_select(v, &sel);
        }
        // `Prefer: odata.maxpagesize` pages the hierarchy; without it, one page.
        let size = page.map(|n| n.max(1) as usize).unwrap_or(usize::MAX);
        let total = value.len();
        let value: Vec<Value> = value.into_iter().skip(offset).take(size).collect();
        let mut t = crate::paging::Tok {
            i: st.instance,
            m: 2,
            s: snapshot,
            u: snapshot,
            p: 0,
            sel: None,
            x: None,
            n: None,
            f: None,
        };
        if offset.saturating_add(size) < total {
            t.m = 4;
            t.s = since.unwrap_or(u64::MAX);
            t.p = (offset + size) as u64;
            t.n = page;
            return Resp::ok(
                json!({"value": value, "@odata.nextLink": format!("{url}?$skiptoken={}", t.encode())}),
            );
        }
        Resp::ok(
            json!({"value": value, "@odata.deltaLink": format!("{url}?$deltatoken={}", t.encode())}),
        )
    }

    fn create_folder(&self, req: &Req, r: Res, parent: Option<u32>, mail: bool) -> Resp {
        let body = match req.json_body() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let Some(name) = body["displayName"]
            .as_str()
            .filter(|n| !n.trim().is_empty())
        else {
            return Resp::error(400, "ErrorInvalidRequest", "displayName is required.");
        };
        let mut st = self.state();
        let folders = if mail {
            self.model.mail_folders(&st, r)
        } else {
            self.model.contact_folders(&st, r)
        };
        if folders
            .iter()
            .any(|f| f.parent == parent && f.name.eq_ignore_ascii_case(name))
        {
            return Resp::error(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            );
        }
        let n = NEW_FOLDER + st.next_seq() as u32;
        let coll = CollKey {
            res: r,
            coll: if mail {
                Coll::MailFolder(n)
            } else {
                Coll::ContactFolder(n)
            },
        };
        let fs = FolderState {
            coll,
            name: name.to_string(),
            parent,
            deleted: false,
            rev: 1,
        };
        if let Err(e) = st.put_folder(fs) {
            return internal(e);
        }
        let folders = if mail {
            self.model.mail_folders(&st, r)
        } else {
            self.model.contact_folders(&st, r)
        };
        let f = folders.iter().find(|f| f.coll == coll).cloned();
        match f {
            Some(f) => Resp::json(201, self.folder_json(&f, &st, mail)),
            None => Resp::error(500, "generalException", "Folder vanished."),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn folder_routes(
        &self,
        req: &Req,
        r: Res,
        folder: &FolderInfo,
        folders: &[FolderInfo],
        rest: &[&str],
        mail: bool,
        ctx: Ctx,
    ) -> Resp {
        let m = req.method.as_str();
        let n = folder_num(folder.coll);
        match rest {
            [] if m == "GET" => {
                let entity = if mail {
                    Entity::MailFolder
                } else {
                    Entity::ContactFolder
                };
                if let Err(e) = odata::item_expand(req, entity, &[]) {
                    return e;
                }
                let st = self.state();
                let mut v = self.folder_json(folder, &st, mail);
                apply_select(&mut v, &req.select());
                Resp::ok(v)
            }
            [] if m == "DELETE" => {
                if folder.well_known.is_some() {
                    return Resp::error(
                        403,
                        "ErrorDeleteDistinguishedFolder",
                        "Distinguished folders cannot be deleted.",
                    );
                }
                let mut st = self.state();
                let fs = FolderState {
                    coll: folder.coll,
                    name: folder.name.clone(),
                    parent: folder.parent,
                    deleted: true,
                    rev: 2,
                };
                match st.put_folder(fs) {
                    Ok(_) => Resp::empty(204),
                    Err(e) => internal(e),
                }
            }
            ["childFolders"] if m == "GET" => {
                let hidden = req.q("includeHiddenFolders") == Some("true");
                self.folder_listing(req, folders, Some(n), hidden, mail)
            }
            ["childFolders"] if m == "POST" => self.create_folder(req, r, Some(n), mail),
            ["messages"] | ["messages", "delta"] | ["contacts"] | ["contacts", "delta"]
                if m == "GET" =>
            {
                if folder.search_folder {
                    return Resp::error(
                        400,
                        "ErrorInvalidRequest",
                        "Search folders have no items of their own.",
                    );
                }
                let st = self.state();
                let coll = folder.coll;
                let is_delta = rest.len() == 2;
                let msg = rest[0] == "messages";
                let entity = if msg {
                    Entity::Message
                } else {
                    Entity::Contact
                };
                if !is_delta {
                    let expandable: &[&str] = if msg { &["attachments"] } else { &[] };
                    let q = match odata::collection(req, entity, expandable) {
                        Ok(q) => q,
                        Err(e) => return e,
                    };
                    let render = |st: &State, k: ItemKey| {
                        if msg {
                            self.render_message(st, k, ctx, &q)
                        } else {
                            self.model.contact_json(st, k, ctx)
                        }
                    };
                    return self.item_listing(
                        req,
                        &st,
                        coll,
                        &q,
                        Listing::outlook(entity, &render, self.cfg.outlook_max_page),
                    );
                }
                let filter = match odata::delta(req, entity) {
                    Ok(f) => f,
                    Err(e) => return e,
                };
                let render = |st: &State, k: ItemKey| {
                    if msg {
                        self.model.message_json(st, k, ctx)
                    } else {
                        self.model.contact_json(st, k, ctx)
                    }
                };
                let tomb = |_: &State, k: ItemKey| {
                    Some(json!({
                        "@odata.type": if msg { "#microsoft.graph.message" } else { "#microsoft.graph.contact" },
                        "id": self.model.outlook_id(k, coll, ctx),
                        "@removed": {"reason": "deleted"},
                    }))
                };
                // `$filter=receivedDateTime ge …`: the delta tracks those messages only.
                let received = |st: &State, k: ItemKey| {
                    filter
                        .as_ref()
                        .is_none_or(|f| render(st, k).is_some_and(|v| f.matches(&v)))
                };
                let spec = DeltaSpec {
                    max_page: self.cfg.outlook_max_page,
                    members_filter: filter.is_some().then_some(&received as _),
                    ..DeltaSpec::new(format!("{}/v1.0{}", req.base, req.path), &render, &tomb)
                };
                delta(&self.model, &st, req, coll, &spec, false)
            }
            ["messages"] if m == "POST" => self.create_message(req, folder.coll, ctx),
            ["contacts"] if m == "POST" => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let Some(obj) = body.as_object() else {
                    return Resp::bad_request("Contact body must be a JSON object.");
                };
                let props: Map<String, Value> = obj
                    .iter()
                    .filter(|(k, _)| CONTACT_CONTENT_FIELDS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut st = self.state();
                let key = ItemKey::New(st.next_seq());
                if let Err(e) = st.put(key, new_state(Kind::Contact, folder.coll, props), None) {
                    return internal(e);
                }
                Resp::json(
                    201,
                    self.model.contact_json(&st, key, ctx).unwrap_or_default(),
                )
            }
            _ => no_segment(rest),
        }
    }

    /// `POST …/messages`: from base64 MIME (`Content-Type: text/plain`) or from JSON.
    fn create_message(&self, req: &Req, coll: CollKey, ctx: Ctx) -> Resp {
        let ct = req
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut st = self.state();
        let key = ItemKey::New(st.next_seq());
        let mut props = Map::new();
        let content;
        if ct.starts_with("text/plain") {
            let cleaned: Vec<u8> = req
                .body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let Ok(mime) = STANDARD.decode(&cleaned) else {
                return Resp::error(
                    400,
                    "ErrorMimeContentInvalidBase64String",
                    "Invalid base64 string for MIME content.",
                );
            };
            if mime.is_empty() {
                return Resp::error(400, "ErrorMimeContentInvalid", "The MIME content is empty.");
            }
            props = crate::mime_headers::props_from_mime(&mime);
            props.insert("isDraft".into(), json!(true));
            props.insert("isRead".into(), json!(true));
            match st.put_blob(Bytes::from(mime)) {
                Ok(b) => content = Some(Content::Blob(b)),
                Err(e) => return internal(e),
            }
        } else {
            let body = match req.json_body() {
                Ok(b) => b,
                Err(e) => return e,
            };
            if let Some(obj) = body.as_object() {
                props = obj.clone();
            }
            props.insert("isDraft".into(), json!(true));
            let mime = crate::mime_headers::mime_from_props(&props);
            match st.put_blob(Bytes::from(mime)) {
                Ok(b) => content = Some(Content::Blob(b)),
                Err(e) => return internal(e),
            }
        }
        let mut s = new_state(Kind::Message, coll, props);
        s.content = content;
        if let Err(e) = st.put(key, s, None) {
            return internal(e);
        }
        Resp::json(
            201,
            self.model.message_json(&st, key, ctx).unwrap_or_default(),
        )
    }

    fn message_routes(&self, req: &Req, r: Res, id: &str, rest: &[&str], ctx: Ctx) -> Resp {
        let m = req.method.as_str();
        let mut st = self.state();
        let Some(key) = self.model.parse_outlook_id(&st, id) else {
            return Resp::not_found_outlook();
        };
        let Some((coll, _)) = self.model.current(&st, key) else {
            return Resp::not_found_outlook();
        };
        // Items of the in-place archive are served by the mailbox import/export API only.
        if coll.res != r
            || !matches!(coll.coll, Coll::MailFolder(_))
            || crate::mailbox_api::is_archive(coll)
        {
            return Resp::not_found_outlook();
        }
        match (m, rest) {
            ("GET", []) => {
                let q = match odata::item_expand(req, Entity::Message, &["attachments"]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let mut v = self.render_message(&st, key, ctx, &q).unwrap_or_default();
                apply_select(&mut v, &req.select());
                Resp::ok(v)
            }
            ("GET", ["$value"]) => match self.model.message_mime(&st, key) {
                Some(b) => Resp::bytes(200, b, "message/rfc822"),
                None => Resp::not_found_outlook(),
            },
            ("GET", ["attachments"]) => {
                let list = self.attachments(&st, key, ctx, req.q("$select").is_none());
                Resp::ok(json!({"value": list}))
            }
            ("GET", ["attachments", aid, more @ ..]) => {
                let list = self.attachments(&st, key, ctx, true);
                let Some(a) = list.into_iter().find(|a| a["id"] == *aid) else {
                    return Resp::not_found_outlook();
                };
                if more == ["$value"] {
                    let raw = STANDARD
                        .decode(a["contentBytes"].as_str().unwrap_or(""))
                        .unwrap_or_default();
                    return Resp::bytes(
                        200,
                        Bytes::from(raw),
                        a["contentType"]
                            .as_str()
                            .unwrap_or("application/octet-stream"),
                    );
                }
                Resp::ok(a)
            }
            ("PATCH", []) => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let mut s = state_for_change(&st, key, Kind::Message, coll);
                if let Some(obj) = body.as_object() {
                    for (k, v) in obj {
                        if [
                            "isRead",
                            "categories",
                            "flag",
                            "importance",
                            "subject",
                            "inferenceClassification",
                            "receivedDateTime",
                            "sentDateTime",
                        ]
                        .contains(&k.as_str())
                            || k == "singleValueExtendedProperties"
                        {
                            if k == "singleValueExtendedProperties" {
                                // PR_MESSAGE_FLAGS cleared: the message is no longer a draft.
                                s.props.insert("isDraft".into(), json!(false));
                            } else {
                                s.props.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                touch(&mut s);
                if let Err(e) = st.put(key, s, None) {
                    return internal(e);
                }
                Resp::ok(self.model.message_json(&st, key, ctx).unwrap_or_default())
            }
            ("DELETE", []) => {
                let mut s = state_for_change(&st, key, Kind::Message, coll);
                s.deleted = true;
                touch(&mut s);
                match st.put(key, s, None) {
                    Ok(_) => Resp::empty(204),
                    Err(e) => internal(e),
                }
            }
            ("POST", ["move"]) => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let dest = body["destinationId"].as_str().unwrap_or("");
                let folders = self.model.mail_folders(&st, r);
                let Some(target) = folders.iter().find(|f| {
                    f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(dest))
                        || coll_id(f.coll) == dest
                }) else {
                    return Resp::error(400, "ErrorInvalidIdMalformed", "Id is malformed.");
                };
                let mut s = state_for_change(&st, key, Kind::Message, coll);
                s.coll = target.coll;
                touch(&mut s);
                if let Err(e) = st.put(key, s, Some(coll)) {
                    return internal(e);
                }
                Resp::json(
                    201,
                    self.model.message_json(&st, key, ctx).unwrap_or_default(),
                )
            }
            _ => no_segment(rest),
        }
    }

    /// A message as JSON, with its attachments when the query expands them.
    fn render_message(&self, st: &State, key: ItemKey, ctx: Ctx, q: &Query) -> Option<Value> {
        let mut v = self.model.message_json(st, key, ctx)?;
        if let Some(opts) = q.expands("attachments") {
            let sel = odata::nested_select(opts);
            let mut list = self.attachments(st, key, ctx, true);
            for a in list.iter_mut() {
                apply_select(a, &sel);
            }
            v["attachments"] = json!(list);
        }
        Some(v)
    }

    /// Lists a collection of generated items: page by page through the collection's
    /// positions (`$filter` evaluated on the way, its tokens carrying it), or — when the
    /// query needs every member at once (`$orderby`, `$search`, `$count`, `$skip`) — all
    /// matching members, sorted, paged by offset.
    fn item_listing(&self, req: &Req, st: &State, c: CollKey, q: &Query, l: Listing) -> Resp {
        let url = format!("{}/v1.0{}", req.base, req.path);
        if q.whole() {
            let items = self
                .members(st, c)
                .into_iter()
                .filter_map(|k| (l.render)(st, k))
                .collect();
            let items = q.apply(l.entity, items).into_iter().map(l.finish).collect();
            return page_list(req, &url, items, l.default_page, l.max_page);
        }
        let shown = |st: &State, k: ItemKey| (l.render)(st, k).map(l.finish);
        let keep = |st: &State, k: ItemKey| {
            q.filter
                .as_ref()
                .is_none_or(|f| (l.render)(st, k).is_some_and(|v| f.matches(&v)))
        };
        let none = |_: &State, _: ItemKey| None;
        // `$expand` rides along in the links; `$select` and `$filter` live in the tokens.
        let expand = req
            .query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("$expand") || k.eq_ignore_ascii_case("expand"))
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .unwrap_or_default();
        let spec = DeltaSpec {
            default_page: l.default_page,
            max_page: l.max_page,
            files: l.entity.service() == odata::Service::Files,
            extra_query: expand,
            members_filter: q.filter.is_some().then_some(&keep as _),
            ..DeltaSpec::new(url, &shown, &none)
        };
        delta(&self.model, st, req, c, &spec, true)
    }

    fn attachments(&self, st: &State, key: ItemKey, ctx: Ctx, with_bytes: bool) -> Vec<Value> {
        let _ = ctx;
        let Some(plan) = self.model.message_plan(key) else {
            return vec![];
        };
        if st.items.get(&key).is_some_and(|s| s.content.is_some()) {
            return vec![];
        }
        plan.attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let id = format!("AAMkAGatt{i}{:x}", a.seed % 0xffff_ffff);
                let mut v = json!({
                    "id": id,
                    "name": a.name,
                    "contentType": a.content_type,
                    "size": a.size,
                    "isInline": a.inline,
                    "lastModifiedDateTime": iso(plan.received),
                });
                match a.kind {
                    crate::plan::AttKind::File => {
                        v["@odata.type"] = json!("#microsoft.graph.fileAttachment");
                        v["contentId"] = json!(a.content_id);
                        if with_bytes {
                            v["contentBytes"] =
                                json!(STANDARD.encode(crate::mime::attachment_bytes(a)));
                        }
                    }
                    crate::plan::AttKind::Item => {
                        v["@odata.type"] = json!("#microsoft.graph.itemAttachment");
                    }
                    crate::plan::AttKind::Reference => {
                        v["@odata.type"] = json!("#microsoft.graph.referenceAttachment");
                        v["sourceUrl"] = json!(format!(
                            "https://{}-my.sharepoint.com/personal/doc/{}",
                            self.model.tenant.tenant_short(),
                            a.seed % 100_000
                        ));
                    }
                }
                v
            })
            .collect()
    }

    fn pim_item_routes(
        &self,
        req: &Req,
        r: Res,
        id: &str,
        rest: &[&str],
        kind: Kind,
        ctx: Ctx,
    ) -> Resp {
        let mut st = self.state();
        let Some(key) = self.model.parse_outlook_id(&st, id) else {
            return Resp::not_found_outlook();
        };
        let Some((coll, s)) = self.model.current(&st, key) else {
            return Resp::not_found_outlook();
        };
        if coll.res != r || self.model.kind_of(key, s) != Some(kind) {
            return Resp::not_found_outlook();
        }
        let render = |st: &State| match kind {
            Kind::Event => self.model.event_json(st, key, ctx),
            _ => self.model.contact_json(st, key, ctx),
        };
        let fields = if kind == Kind::Event {
            EVENT_CONTENT_FIELDS
        } else {
            CONTACT_CONTENT_FIELDS
        };
        match (req.method.as_str(), rest) {
            ("GET", []) => {
                let entity = if kind == Kind::Event {
                    Entity::Event
                } else {
                    Entity::Contact
                };
                if let Err(e) = odata::item_expand(req, entity, &[]) {
                    return e;
                }
                let mut v = render(&st).unwrap_or_default();
                apply_select(&mut v, &req.select());
                Resp::ok(v)
            }
            ("PATCH", []) => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let mut s = state_for_change(&st, key, kind, coll);
                if let Some(obj) = body.as_object() {
                    for (k, v) in obj {
                        if fields.contains(&k.as_str()) {
                            s.props.insert(k.clone(), v.clone());
                        }
                    }
                }
                touch(&mut s);
                if let Err(e) = st.put(key, s, None) {
                    return internal(e);
                }
                Resp::ok(render(&st).unwrap_or_default())
            }
            ("DELETE", []) => {
                let mut s = state_for_change(&st, key, kind, coll);
                s.deleted = true;
                touch(&mut s);
                match st.put(key, s, None) {
                    Ok(_) => Resp::empty(204),
                    Err(e) => internal(e),
                }
            }
            _ => no_segment(rest),
        }
    }

    // ---- drives ------------------------------------------------------------------------

    fn list_drives(&self, req: &Req, r: Res) -> Resp {
        if let Err(e) = odata::collection(req, Entity::Drive, &[]) {
            return e;
        }
        let st = self.state();
        let items = self
            .model
            .tenant
            .drives(r)
            .into_iter()
            .filter_map(|(c, _)| self.model.drive_json(&st, c))
            .collect();
        page_list(
            req,
            &format!("{}/v1.0{}", req.base, req.path),
            items,
            200,
            999,
        )
    }

    /// The children of a folder as JSON, files with their download URL.
    fn children_json(&self, req: &Req, st: &State, folder: &DriveNode) -> Vec<Value> {
        self.model
            .children(st, folder)
            .into_iter()
            .filter_map(|k| self.model.drive_node(st, k))
            .map(|n| {
                let url = (!n.folder).then(|| self.download_url(req, &n));
                self.model.drive_item_json(st, &n, url)
            })
            .collect()
    }

    /// Finds a child of a folder by name (case-insensitive, as OneDrive).
    pub(crate) fn child_by_name(
        &self,
        st: &State,
        parent: &DriveNode,
        name: &str,
    ) -> Option<DriveNode> {
        self.model
            .children(st, parent)
            .into_iter()
            .filter_map(|k| self.model.drive_node(st, k))
            .find(|n| !n.deleted && n.name.eq_ignore_ascii_case(name))
    }

    #[allow(clippy::result_large_err)]
    fn resolve_path(
        &self,
        st: &State,
        from: DriveNode,
        path: &str,
    ) -> Result<DriveNode, (DriveNode, Vec<String>)> {
        let parts: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let mut cur = from;
        for (i, p) in parts.iter().enumerate() {
            match self.child_by_name(st, &cur, p) {
                Some(n) => cur = n,
                None => return Err((cur, parts[i..].to_vec())),
            }
        }
        Ok(cur)
    }

    fn drive_routes(
        &self,
        req: &Req,
        c: CollKey,
        rest: &[&str],
        addressed: Option<String>,
        tail: &[&str],
    ) -> Resp {
        let m = req.method.as_str();
        // Resolve the item the request is about: root, items/{id}, optionally :/path:.
        let (item_key, after): (Option<ItemKey>, Vec<&str>) = match rest {
            [] => {
                if m == "GET" {
                    if let Err(e) = odata::item_expand(req, Entity::Drive, &[]) {
                        return e;
                    }
                    let st = self.state();
                    let mut v = self.model.drive_json(&st, c).unwrap_or_default();
                    apply_select(&mut v, &req.select());
                    return Resp::ok(v);
                }
                return no_segment(rest);
            }
            ["root", more @ ..] => (Some(ItemKey::Base(c, 0)), more.to_vec()),
            ["items", id, more @ ..] => match parse_item_id(DRIVE_ITEM_PREFIX, id) {
                Some(k) => (Some(k), more.to_vec()),
                None if *id == "root" => (Some(ItemKey::Base(c, 0)), more.to_vec()),
                None => (None, vec![]),
            },
            _ => (None, vec![]),
        };
        let Some(mut key) = item_key else {
            return Resp::not_found_files();
        };
        let mut st = self.state();
        let Some(mut node) = self
            .model
            .drive_node(&st, key)
            .filter(|n| !n.deleted && n.coll == c)
        else {
            return Resp::not_found_files();
        };
        let mut after: Vec<&str> = after;
        let mut pending_name: Option<String> = None;
        if let Some(path) = &addressed {
            after = tail.to_vec();
            match self.resolve_path(&st, node.clone(), path) {
                Ok(n) => {
                    key = n.key;
                    node = n;
                }
                Err((parent, missing))
                    if missing.len() == 1 && (m == "PUT" || after == ["createUploadSession"]) =>
                {
                    key = parent.key;
                    node = parent;
                    pending_name = missing.into_iter().next();
                }
                Err(_) => return Resp::not_found_files(),
            }
        }
        match (m, after.as_slice(), pending_name) {
            ("GET", ["delta"], None) if node.parent.is_none() => {
                if let Err(e) = odata::delta(req, Entity::DriveItem) {
                    return e;
                }
                let hierarchical = req.prefers("hierarchicalsharing");
                let sharing_changes = req.prefers("deltashowsharingchanges");
                let render = |st: &State, k: ItemKey| {
                    self.model
                        .drive_node(st, k)
                        .filter(|n| !n.deleted)
                        .map(|n| {
                            let url = req
                                .select()
                                .filter(|s| s.iter().any(|x| x == "@microsoft.graph.downloadUrl"))
                                .map(|_| self.download_url(req, &n));
                            let mut v = self.model.drive_item_json(st, &n, url);
                            // Without `Prefer: hierarchicalsharing`, delta gives sharing
                            // information for every item, inherited or not.
                            if !hierarchical && n.parent.is_some() && v.get("shared").is_none() {
                                v["shared"] = json!({"scope": "users"});
                            }
                            if sharing_changes
                                && st
                                    .items
                                    .get(&k)
                                    .is_some_and(|s| s.props.contains_key("sharedChanged"))
                            {
                                v["@microsoft.graph.sharedChanged"] = json!(true);
                            }
                            v
                        })
                };
                let tomb = |st: &State, k: ItemKey| {
                    self.model.drive_node(st, k).map(|mut n| {
                        n.deleted = true;
                        let mut v = self.model.drive_item_json(st, &n, None);
                        if let Some(o) = v.as_object_mut() {
                            o.retain(|k, _| {
                                [
                                    "id",
                                    "name",
                                    "deleted",
                                    "parentReference",
                                    "file",
                                    "folder",
                                    "eTag",
                                    "lastModifiedDateTime",
                                ]
                                .contains(&k.as_str())
                            });
                        }
                        if let Some(f) = v.get_mut("file").and_then(|f| f.as_object_mut()) {
                            f.remove("hashes");
                        }
                        v
                    })
                };
                let parents = |st: &State, k: ItemKey| -> Vec<ItemKey> {
                    let mut out = Vec::new();
                    let mut cur = self.model.drive_node(st, k).and_then(|n| n.parent);
                    while let Some(p) = cur {
                        out.push(p);
                        cur = self.model.drive_node(st, p).and_then(|n| n.parent);
                        if out.len() > 256 {
                            break;
                        }
                    }
                    out.reverse();
                    out
                };
                let spec = DeltaSpec {
                    drive_style: true,
                    default_page: 200,
                    max_page: self.cfg.drive_max_page,
                    files: true,
                    parents: if req.header("deltaExcludeParent").is_some() {
                        None
                    } else {
                        Some(&parents)
                    },
                    ..DeltaSpec::new(
                        format!("{}/v1.0/drives/{}/root/delta", req.base, coll_id(c)),
                        &render,
                        &tomb,
                    )
                };
                delta(&self.model, &st, req, c, &spec, false)
            }
            ("GET", [], None) => {
                let q = match odata::item_expand(
                    req,
                    Entity::DriveItem,
                    &["children", "permissions"],
                ) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let url = (!node.folder).then(|| self.download_url(req, &node));
                let mut v = self.model.drive_item_json(&st, &node, url);
                if let Some(opts) = q.expands("children") {
                    let sel = odata::nested_select(opts);
                    let mut kids = self.children_json(req, &st, &node);
                    for k in kids.iter_mut() {
                        apply_select(k, &sel);
                    }
                    v["children"] = json!(kids);
                }
                if q.expands("permissions").is_some() {
                    v["permissions"] = self.model.permissions_json(&node)["value"].clone();
                }
                apply_select(&mut v, &req.select());
                Resp::ok(v)
            }
            ("GET", ["children"], None) => {
                if !node.folder {
                    return Resp::bad_request("Item is not a folder.");
                }
                let q = match odata::collection(req, Entity::DriveItem, &[]) {
                    Ok(q) => q,
                    Err(e) => return e,
                };
                let items = self.children_json(req, &st, &node);
                page_list(
                    req,
                    &format!("{}/v1.0{}", req.base, req.path),
                    q.apply(Entity::DriveItem, items),
                    200,
                    self.cfg.drive_max_page,
                )
            }
            ("GET", ["content"], None) => {
                if node.folder {
                    return Resp::bad_request("Folders have no content.");
                }
                Resp::empty(302).with_header("Location", self.download_url(req, &node))
            }
            ("GET", ["versions"], None) => {
                let mut list = vec![json!({
                    "id": format!("{}.0", node.versions.len() + 1),
                    "lastModifiedDateTime": node.modified,
                    "size": node.size,
                    "lastModifiedBy": {"user": {"displayName": "System Account"}},
                })];
                for (i, (c, modified)) in node.versions.iter().enumerate().rev() {
                    list.push(json!({
                        "id": format!("{}.0", i + 1),
                        "lastModifiedDateTime": modified,
                        "size": Model::content_len(c),
                        "lastModifiedBy": {"user": {"displayName": "System Account"}},
                    }));
                }
                Resp::ok(json!({"value": list}))
            }
            ("GET", ["versions", vid, "content"], None) => {
                let idx: usize = vid.trim_end_matches(".0").parse().unwrap_or(0);
                let content = if idx == node.versions.len() + 1 {
                    Some(node.content.clone())
                } else if idx >= 1 {
                    node.versions.get(idx - 1).map(|v| v.0.clone())
                } else {
                    None
                };
                match content {
                    Some(content) => Resp::empty(302).with_header(
                        "Location",
                        self.download_url_for(req, &node, Some(content), idx),
                    ),
                    None => Resp::not_found_files(),
                }
            }
            ("GET", ["permissions"], None) => Resp::ok(self.model.permissions_json(&node)),
            ("POST", ["children"], None) => {
                if !node.folder {
                    return Resp::bad_request("Item is not a folder.");
                }
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let Some(name) = body["name"].as_str() else {
                    return Resp::bad_request("name is required.");
                };
                if let Err(msg) = check_name(name) {
                    return Resp::error(400, "invalidRequest", &msg);
                }
                let behaviour = body["@microsoft.graph.conflictBehavior"]
                    .as_str()
                    .unwrap_or("fail");
                let mut name = name.to_string();
                if let Some(existing) = self.child_by_name(&st, &node, &name) {
                    match behaviour {
                        "replace" if existing.folder => {
                            return Resp::json(
                                201,
                                self.model.drive_item_json(&st, &existing, None),
                            );
                        }
                        "rename" => name = self.free_name(&st, &node, &name),
                        _ => {
                            return Resp::error(
                                409,
                                "nameAlreadyExists",
                                "The specified item name already exists.",
                            );
                        }
                    }
                }
                let new = ItemKey::New(st.next_seq());
                let mut s = new_state(Kind::DriveItem, c, Map::new());
                s.folder = true;
                s.name = Some(name);
                s.parent = Some(node.key);
                if let Err(e) = st.put(new, s, None) {
                    return internal(e);
                }
                let n = self.model.drive_node(&st, new).unwrap_or(node);
                Resp::json(201, self.model.drive_item_json(&st, &n, None))
            }
            ("PUT", ["content"], pending) => {
                if req.body.len() > SIMPLE_UPLOAD_MAX {
                    return Resp::error(
                        413,
                        "requestEntityTooLarge",
                        "Use an upload session for files over 250 MB.",
                    );
                }
                let behaviour = req
                    .q("@microsoft.graph.conflictBehavior")
                    .unwrap_or(if pending.is_some() { "fail" } else { "replace" });
                self.write_file(
                    &mut st,
                    req,
                    c,
                    &node,
                    pending,
                    Bytes::clone(&req.body),
                    behaviour,
                )
            }
            ("POST", ["createUploadSession"], pending) => {
                self.create_upload_session(&st, req, c, &node, pending)
            }
            ("PATCH", [], None) => {
                let body = match req.json_body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let mut s = state_for_change(&st, key, Kind::DriveItem, c);
                s.folder = node.folder;
                let from = s.coll;
                if let Some(name) = body["name"].as_str() {
                    if let Err(msg) = check_name(name) {
                        return Resp::error(400, "invalidRequest", &msg);
                    }
                    s.name = Some(name.to_string());
                }
                if let Some(pid) = body["parentReference"]["id"].as_str() {
                    match parse_item_id(DRIVE_ITEM_PREFIX, pid)
                        .and_then(|k| self.model.drive_node(&st, k))
                    {
                        Some(p) if p.folder && p.coll == c => s.parent = Some(p.key),
                        _ => {
                            return Resp::error(400, "invalidRequest", "Invalid parent reference.");
                        }
                    }
                }
                touch(&mut s);
                if let Err(e) = st.put(key, s, Some(from)) {
                    return internal(e);
                }
                let n = self.model.drive_node(&st, key).unwrap_or(node);
                Resp::ok(self.model.drive_item_json(&st, &n, None))
            }
            ("DELETE", [], None) => {
                if node.parent.is_none() {
                    return Resp::error(403, "accessDenied", "The root cannot be deleted.");
                }
                // Deleting a folder deletes its subtree.
                let mut stack = vec![node.clone()];
                while let Some(n) = stack.pop() {
                    if n.folder {
                        for k in self.model.children(&st, &n) {
                            if let Some(ch) = self.model.drive_node(&st, k) {
                                stack.push(ch);
                            }
                        }
                    }
                    let mut s = state_for_change(&st, n.key, Kind::DriveItem, c);
                    s.folder = n.folder;
                    s.deleted = true;
                    touch(&mut s);
                    if let Err(e) = st.put(n.key, s, None) {
                        return internal(e);
                    }
                }
                Resp::empty(204)
            }
            _ => no_segment(&after),
        }
    }

    /// A name for a new child of `parent` like `name` that no child has yet ("a 1.txt").
    pub(crate) fn free_name(&self, st: &State, parent: &DriveNode, name: &str) -> String {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
            _ => (name.to_string(), String::new()),
        };
        (1..)
            .map(|i| format!("{stem} {i}{ext}"))
            .find(|n| self.child_by_name(st, parent, n).is_none())
            .unwrap_or_else(|| name.to_string())
    }

    /// Writes file content: a new file under `parent` named `new_name`, or new content of
    /// `node` (replace). Returns the driveItem.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_file(
        &self,
        st: &mut State,
        req: &Req,
        c: CollKey,
        node: &DriveNode,
        new_name: Option<String>,
        data: Bytes,
        behaviour: &str,
    ) -> Resp {
        let (target, parent, name) = match new_name {
            Some(name) => {
                if let Err(msg) = check_name(&name) {
                    return Resp::error(400, "invalidRequest", &msg);
                }
                (None, node.clone(), name)
            }
            None if node.folder => return Resp::bad_request("Cannot write content to a folder."),
            None => {
                let parent = node.parent.and_then(|p| self.model.drive_node(st, p));
                let Some(parent) = parent else {
                    return Resp::not_found_files();
                };
                (Some(node.clone()), parent, node.name.clone())
            }
        };
        let mut name = name;
        let existing = match target {
            Some(t) => Some(t),
            None => self.child_by_name(st, &parent, &name),
        };
        let existing = match (existing, behaviour) {
            (Some(e), "replace") if !e.folder => Some(e),
            (Some(_), "rename") => {
                name = self.free_name(st, &parent, &name);
                None
            }
            (Some(_), _) => {
                return Resp::error(
                    409,
                    "nameAlreadyExists",
                    "The specified item name already exists.",
                );
            }
            (None, _) => None,
        };
        let blob = match st.put_blob(data) {
            Ok(b) => b,
            Err(e) => return internal(e),
        };
        let mime_type = mime_guess(&name);
        let (key, s, status) = match existing {
            Some(e) => {
                let mut s = state_for_change(st, e.key, Kind::DriveItem, c);
                s.versions.push(VersionRec {
                    content: e.content.clone(),
                    modified: e.modified.clone(),
                });
                s.content = Some(Content::Blob(blob));
                touch(&mut s);
                (e.key, s, 200)
            }
            None => {
                let key = ItemKey::New(st.next_seq());
                let mut s = new_state(Kind::DriveItem, c, Map::new());
                s.name = Some(name);
                s.parent = Some(parent.key);
                s.content = Some(Content::Blob(blob));
                s.props.insert("mimeType".into(), json!(mime_type));
                (key, s, 201)
            }
        };
        if let Err(e) = st.put(key, s, None) {
            return internal(e);
        }
        match self.model.drive_node(st, key) {
            Some(n) => {
                let url = Some(self.download_url(req, &n));
                Resp::json(status, self.model.drive_item_json(st, &n, url))
            }
            None => Resp::error(500, "generalException", "Item vanished."),
        }
    }
}

/// A list item's `fields` as `$expand=fields` (or `fields($select=…)`) asks: dropped when
/// not expanded, trimmed to the selected columns.
fn expand_fields(mut v: Value, q: &Query) -> Value {
    match q.expands("fields") {
        None => {
            if let Some(o) = v.as_object_mut() {
                o.remove("fields");
            }
        }
        Some(opts) => {
            let sel = odata::nested_select(opts);
            apply_select(&mut v["fields"], &sel);
        }
    }
    v
}

fn folder_num(c: CollKey) -> u32 {
    match c.coll {
        Coll::MailFolder(n)
        | Coll::ContactFolder(n)
        | Coll::Calendar(n)
        | Coll::Drive(n)
        | Coll::List(n)
        | Coll::Thread(n) => n,
    }
}

fn touch(s: &mut ItemState) {
    s.rev += 1;
    s.modified = iso(chrono::Utc::now());
}

pub(crate) fn internal(e: anyhow::Error) -> Resp {
    tracing::error!("state write failed: {e:#}");
    Resp::error(
        500,
        "generalException",
        "An internal error occurred while saving the change.",
    )
}

/// OneDrive's naming rules.
pub fn check_name(name: &str) -> Result<(), String> {
    const BAD: &[char] = &['"', '*', ':', '<', '>', '?', '/', '\\', '|'];
    if name.is_empty() || name.trim().is_empty() {
        return Err("The name is empty.".into());
    }
    if name == "." || name == ".." {
        return Err(format!("The name '{name}' is not allowed."));
    }
    if let Some(c) = name.chars().find(|c| BAD.contains(c) || c.is_control()) {
        return Err(format!("The name contains the invalid character {c:?}."));
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Err("The name cannot end with a space or a period.".into());
    }
    Ok(())
}

fn mime_guess(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("txt") => "text/plain",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("zip") => "application/zip",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

/// Graph's answer to a path it has no resource for: 400 `BadRequest`, "Resource not found
/// for the segment '…'" (the simulator answers paths it does not serve the same way).
fn no_segment(rest: &[&str]) -> Resp {
    Resp::error(
        400,
        "BadRequest",
        &format!(
            "Resource not found for the segment '{}'.",
            rest.first().copied().unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_addressing_splits() {
        assert_eq!(
            split_path_addressing("/drives/x/items/y:/a/b.txt:/content"),
            (
                "/drives/x/items/y".into(),
                Some("a/b.txt".into()),
                "content".into()
            )
        );
        assert_eq!(
            split_path_addressing("/drives/x/root:/a/b.txt:"),
            (
                "/drives/x/root".into(),
                Some("a/b.txt".into()),
                String::new()
            )
        );
        assert_eq!(
            split_path_addressing("/users/x"),
            ("/users/x".into(), None, String::new())
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("Résumé #2 (final).docx").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("a:b").is_err());
        assert!(check_name("trailing.").is_err());
    }
}
