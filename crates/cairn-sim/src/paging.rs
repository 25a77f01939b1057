//! Paging and delta over a collection: opaque `$skiptoken`/`$deltatoken` links that encode a
//! position in the generated items plus the change log, so tokens need no server memory and
//! survive restarts (with `--state`).

use crate::keys::{CollKey, ItemKey};
use crate::model::Model;
use crate::state::State;
use crate::wire::{Req, Resp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a paging token means.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tok {
    /// State instance that issued it.
    pub i: u64,
    /// 0: enumerating everything; 1: paging through changes; 2: a delta link.
    pub m: u8,
    /// Changes after this sequence number (m = 1, 2).
    pub s: u64,
    /// Snapshot: changes up to this sequence number.
    pub u: u64,
    /// Position within the enumeration or change list.
    pub p: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sel: Option<String>,
    /// Extra state (a calendarView window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// The `$filter` of the first request (delta options live in their tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<String>,
}

impl Tok {
    /// A plain listing's next page: just a position (and the page size).
    pub fn offset(p: u64, n: Option<u32>) -> Self {
        Tok {
            i: 0,
            m: 0,
            s: 0,
            u: 0,
            p,
            sel: None,
            x: None,
            n,
            f: None,
        }
    }

    /// The token a request carries (`$skiptoken`, `$deltatoken` or `token`), decoded.
    pub fn of(req: &Req) -> Option<Tok> {
        req.q("$skiptoken")
            .or_else(|| req.q("$deltatoken"))
            .or_else(|| req.q("token"))
            .and_then(Tok::decode)
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Option<Tok> {
        let raw = URL_SAFE_NO_PAD.decode(s.trim_matches('\'')).ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

pub type ParentsFn<'a> = &'a dyn Fn(&State, ItemKey) -> Vec<ItemKey>;
pub type FilterFn<'a> = &'a dyn Fn(&State, ItemKey) -> bool;

/// How one delta endpoint renders and names things.
pub struct DeltaSpec<'a> {
    /// Absolute URL of the endpoint without query, for next/delta links.
    pub url: String,
    /// Query parameter carrying tokens in links: `$skiptoken`/`$deltatoken` or `token`.
    pub drive_style: bool,
    pub default_page: u32,
    pub max_page: u32,
    /// Outlook (`syncStateNotFound`) or files (`resyncChangesApplyDifferences`) 410 flavour.
    pub files: bool,
    /// Extra query (`startDateTime=…&endDateTime=…`) kept in links.
    pub extra_query: String,
    pub render: &'a dyn Fn(&State, ItemKey) -> Option<Value>,
    pub tombstone: &'a dyn Fn(&State, ItemKey) -> Option<Value>,
    /// Drive deltas include the parents of changed items.
    pub parents: Option<ParentsFn<'a>>,
    /// Extra members of the collection beyond base items and arrivals (none usually).
    pub members_filter: Option<FilterFn<'a>>,
}

impl<'a> DeltaSpec<'a> {
    /// An Outlook-style delta (page 10 by default, 1,000 at most, `$skiptoken` links).
    pub fn new(
        url: String,
        render: &'a dyn Fn(&State, ItemKey) -> Option<Value>,
        tombstone: &'a dyn Fn(&State, ItemKey) -> Option<Value>,
    ) -> Self {
        Self {
            url,
            drive_style: false,
            default_page: 10,
            max_page: 1000,
            files: false,
            extra_query: String::new(),
            render,
            tombstone,
            parents: None,
            members_filter: None,
        }
    }
}

fn page_size(req: &Req, spec: &DeltaSpec, tok_n: Option<u32>) -> u32 {
    let want = tok_n
        .or_else(|| req.max_page_size())
        .or_else(|| req.q("$top").and_then(|t| t.parse().ok()))
        .unwrap_or(spec.default_page);
    want.clamp(1, spec.max_page)
}

pub fn gone(files: bool, url: &str) -> Resp {
    if files {
        Resp::error(
            410,
            "resyncChangesApplyDifferences",
            "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd.",
        )
        .with_header("Location", url)
    } else {
        Resp::error(
            410,
            "syncStateNotFound",
            "The sync state could not be found or is invalid. Restart the sync with an empty token.",
        )
    }
}

fn link(spec: &DeltaSpec, param_next: bool, tok: &Tok) -> String {
    let name = match (spec.drive_style, param_next) {
        (true, _) => "token",
        (false, true) => "$skiptoken",
        (false, false) => "$deltatoken",
    };
    let extra = if spec.extra_query.is_empty() {
        String::new()
    } else {
        format!("{}&", spec.extra_query)
    };
    format!("{}?{extra}{name}={}", spec.url, tok.encode())
}

/// Serves one page of a delta (or of a plain listing when `listing` is set: no delta link).
pub fn delta(
    model: &Model,
    st: &State,
    req: &Req,
    coll: CollKey,
    spec: &DeltaSpec,
    listing: bool,
) -> Resp {
    let raw = req
        .q("$skiptoken")
        .or_else(|| req.q("$deltatoken"))
        .or_else(|| req.q("token"));
    let fresh = |sel: Option<String>| Tok {
        i: st.instance,
        m: 0,
        s: 0,
        u: st.seq,
        p: 0,
        sel,
        x: None,
        n: None,
        f: req.q("$filter").map(str::to_string),
    };
    let mut tok = match raw {
        None => fresh(req.select().map(|s| s.join(","))),
        Some("latest") if spec.drive_style => {
            let t = Tok {
                m: 2,
                s: st.seq,
                ..fresh(None)
            };
            return Resp::ok(json!({"value": [], "@odata.deltaLink": link(spec, false, &t)}));
        }
        Some(raw) => match Tok::decode(raw) {
            Some(t) if t.i == st.instance && (t.m == 0 || t.s >= st.floor) => t,
            _ => return gone(spec.files, &spec.url),
        },
    };
    if tok.m == 2 {
        tok = Tok {
            m: 1,
            s: tok.s,
            u: st.seq,
            p: 0,
            ..tok
        };
    }
    let size = page_size(req, spec, tok.n) as usize;
    tok.n = Some(size as u32);
    let mut value: Vec<Value> = Vec::with_capacity(size);
    let mut emitted_parents = std::collections::HashSet::new();
    let done;
    if tok.m == 0 {
        let base = model.base_count(coll) as u64;
        let arrivals = st.arrivals(coll, tok.u);
        let total = base + arrivals.len() as u64;
        let mut pos = tok.p;
        if req.duplicate_page_item && pos > 0 {
            pos -= 1; // a replayed item, as Graph sometimes sends
        }
        let scan_limit = pos + (size as u64) * 20 + 100;
        while pos < total && value.len() < size && pos < scan_limit {
            let key = if pos < base {
                ItemKey::Base(coll, pos as u32)
            } else {
                arrivals[(pos - base) as usize]
            };
            pos += 1;
            let member = match st.items.get(&key) {
                Some(s) => s.coll == coll && !s.deleted,
                None => true,
            };
            let member = member && spec.members_filter.is_none_or(|f| f(st, key));
            if !member {
                continue;
            }
            if let Some(v) = (spec.render)(st, key) {
                value.push(v);
            }
        }
        tok.p = pos;
        done = pos >= total;
    } else {
        let changes = st.changes_since(coll, tok.s, tok.u);
        let mut pos = tok.p as usize;
        while pos < changes.len() && value.len() < size {
            let key = changes[pos];
            pos += 1;
            let present = st
                .items
                .get(&key)
                .is_some_and(|s| s.coll == coll && !s.deleted)
                && spec.members_filter.is_none_or(|f| f(st, key));
            if present {
                if let Some(parents) = spec.parents {
                    for p in parents(st, key) {
                        if emitted_parents.insert(p)
                            && let Some(v) = (spec.render)(st, p)
                        {
                            value.push(v);
                        }
                    }
                }
                if let Some(v) = (spec.render)(st, key) {
                    value.push(v);
                    continue;
                }
            }
            if let Some(v) = (spec.tombstone)(st, key) {
                value.push(v);
            }
        }
        tok.p = pos as u64;
        done = pos >= changes.len();
    }
    let sel = tok
        .sel
        .clone()
        .map(|s| s.split(',').map(str::to_string).collect());
    for v in value.iter_mut() {
        crate::wire::apply_select(v, &sel);
    }
    let mut body = json!({ "value": value });
    if !done {
        body["@odata.nextLink"] = json!(link(spec, true, &tok));
    } else if !listing {
        let t = Tok {
            m: 2,
            s: tok.u,
            p: 0,
            ..tok
        };
        body["@odata.deltaLink"] = json!(link(spec, false, &t));
    }
    Resp::ok(body)
}

/// Plain paging over a small, already materialised list (`$top` + `$skiptoken` = offset,
/// `$skip` on the first page), with `@odata.count` when `$count=true` (Outlook and files
/// count without further ado; the directory uses `page_list_counted`).
pub fn page_list(req: &Req, url: &str, items: Vec<Value>, default: u32, max: u32) -> Resp {
    let count = crate::odata::count_requested(req);
    page_list_counted(req, url, items, default, max, count)
}

/// `page_list`, with `@odata.count` on the first page when `count` is set.
pub fn page_list_counted(
    req: &Req,
    url: &str,
    items: Vec<Value>,
    default: u32,
    max: u32,
    count: bool,
) -> Resp {
    let size = req
        .max_page_size()
        .or_else(|| req.q("$top").and_then(|t| t.parse().ok()))
        .unwrap_or(default)
        .clamp(1, max) as usize;
    let token = req.q("$skiptoken").and_then(Tok::decode);
    let first = token.is_none();
    let offset: usize = match token {
        Some(t) => t.p as usize,
        None => req.q("$skip").and_then(|s| s.parse().ok()).unwrap_or(0),
    };
    let total = items.len();
    let sel = req.select();
    let mut page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    for v in page.iter_mut() {
        crate::wire::apply_select(v, &sel);
    }
    let mut body = json!({});
    if first && count {
        body["@odata.count"] = json!(total);
    }
    body["value"] = json!(page);
    if offset + size < total {
        let t = Tok::offset((offset + size) as u64, Some(size as u32));
        let mut q: Vec<String> = req
            .query
            .iter()
            // The query stays whole (a later page is the same query further on); the
            // token's offset overrides `$skip`, and `$count` is answered on the first page.
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        q.push(format!("$skiptoken={}", t.encode()));
        body["@odata.nextLink"] = json!(format!("{url}?{}", q.join("&")));
    }
    Resp::ok(body)
}
