//! Legal holds: data that no retention rule, prune, item-level retention or erasure may
//! remove while the hold is in force.
//!
//! A hold covers a resource (every restore point of it), one restore point, or a search
//! (a custodian, words, a date range: every restore point holding a version of a matching
//! item, whichever resource it is in). Holds are kept in the catalog **and** in the
//! repository (a record, see `cairn_repo::Repo::put_record`), so a catalog rebuilt from the
//! repository has them again. A released hold stays on record, with who released it and why.

use crate::{UserError, Workspace};
use cairn_catalog::{Catalog, Query, select};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The catalog document kind and repository record kind of holds.
const KIND: &str = "hold";
/// The repository record's file name: every hold, released ones included.
const RECORD: &str = "holds.json";

/// What a hold covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HoldTarget {
    /// Every restore point of a resource, present and future.
    Resource { resource: String },
    /// One restore point (its snapshot id; `point` is its number, for people).
    Point {
        resource: String,
        point: i64,
        snapshot: String,
    },
    /// Every restore point holding a version of an item that matches: sent or received by
    /// the custodian (or in their mailbox or drive), with the words in its subject or name,
    /// dated in the range.
    Search {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custodian: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<DateTime<Utc>>,
    },
}

/// A legal hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// `H-` and 8 hex digits.
    pub id: String,
    /// The tenant whose data it holds (`None`: any tenant's, for a search).
    pub tenant: Option<String>,
    pub target: HoldTarget,
    pub reason: String,
    pub placed_by: String,
    pub placed: DateTime<Utc>,
    /// Placed by Cairn itself (a suspect restore point's last clean point).
    #[serde(default)]
    pub automatic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<Released>,
}

/// Who released a hold, when and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Released {
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: String,
}

impl Hold {
    pub fn in_force(&self) -> bool {
        self.released.is_none()
    }

    /// One line for people: what it holds.
    pub fn describe(&self) -> String {
        let t = self
            .tenant
            .as_deref()
            .map(|t| format!(" of tenant {t}"))
            .unwrap_or_default();
        match &self.target {
            HoldTarget::Resource { resource } => format!("{resource}{t}, every restore point"),
            HoldTarget::Point {
                resource, point, ..
            } => format!("{resource}@{point}{t}"),
            HoldTarget::Search {
                custodian,
                query,
                from,
                to,
            } => {
                let mut parts = Vec::new();
                if let Some(c) = custodian {
                    parts.push(format!("custodian {c}"));
                }
                if let Some(q) = query {
                    parts.push(format!("\"{q}\""));
                }
                if let Some(f) = from {
                    parts.push(format!("from {}", f.format("%Y-%m-%d")));
                }
                if let Some(x) = to {
                    parts.push(format!("to {}", x.format("%Y-%m-%d")));
                }
                format!("search: {}{t}", parts.join(", "))
            }
        }
    }
}

/// A hold to place, as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewHold {
    pub tenant: Option<String>,
    /// A resource, or `RESOURCE@POINT` for one restore point.
    pub resource: Option<String>,
    pub custodian: Option<String>,
    pub query: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub reason: String,
}

/// Every hold on record (released ones too), oldest first: the catalog's, and when the
/// catalog has none, the repository's record. Blocking.
pub fn list(ws: &Workspace) -> anyhow::Result<Vec<Hold>> {
    let from_catalog = match ws.existing_catalog()? {
        Some(cat) => parse_docs(&*cat)?,
        None => Vec::new(),
    };
    let mut holds = if from_catalog.is_empty() {
        from_repository(ws)?
    } else {
        from_catalog
    };
    holds.sort_by(|a, b| a.placed.cmp(&b.placed).then(a.id.cmp(&b.id)));
    Ok(holds)
}

/// The holds in force.
pub fn in_force(ws: &Workspace) -> anyhow::Result<Vec<Hold>> {
    Ok(list(ws)?.into_iter().filter(Hold::in_force).collect())
}

fn parse_docs(cat: &dyn Catalog) -> anyhow::Result<Vec<Hold>> {
    cat.docs(KIND)?
        .into_iter()
        .map(|(id, json)| {
            serde_json::from_str(&json)
                .map_err(|e| anyhow::anyhow!("the catalog's legal hold {id} is unreadable: {e}"))
        })
        .collect()
}

/// The holds the repository's newest record holds.
fn from_repository(ws: &Workspace) -> anyhow::Result<Vec<Hold>> {
    let Some(rec) = ws.repo()?.latest_record(KIND)? else {
        return Ok(Vec::new());
    };
    serde_json::from_slice(&rec.content).map_err(|e| {
        anyhow::anyhow!(
            "the repository's record of legal holds (snapshot {}) is unreadable: {e}",
            rec.snapshot.id
        )
    })
}

/// Writes `holds` (all of them) to the catalog and the repository.
fn store(ws: &Workspace, holds: &[Hold]) -> anyhow::Result<()> {
    let repo = ws.repo()?;
    let before: Vec<String> = repo
        .record_snapshots(KIND)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    // The repository first: a hold is in force once it is durable where the data is.
    repo.put_record(KIND, RECORD, serde_json::to_vec_pretty(holds)?)?;
    repo.drop_records(&before)?;
    let cat = ws.catalog_for_backup()?;
    for h in holds {
        cat.put_doc(KIND, &h.id, &serde_json::to_string(h)?)?;
    }
    Ok(())
}

/// `cat` takes the repository's holds (after a rebuild). Returns how many.
pub fn import(repo: &cairn_repo::Repo, cat: &dyn Catalog) -> anyhow::Result<usize> {
    let holds = match repo.latest_record(KIND)? {
        Some(rec) => serde_json::from_slice::<Vec<Hold>>(&rec.content)?,
        None => Vec::new(),
    };
    for h in &holds {
        cat.put_doc(KIND, &h.id, &serde_json::to_string(h)?)?;
    }
    Ok(holds.len())
}

fn new_id() -> String {
    format!("H-{:08x}", rand::random::<u32>())
}

/// Places a hold as typed by a person. Blocking.
pub fn place(ws: &Workspace, new: &NewHold, by: &str) -> anyhow::Result<Hold> {
    ws.ensure_writer()?;
    if new.reason.trim().is_empty() {
        return Err(UserError::new("a legal hold needs a reason")
            .hint("give --reason, e.g. the matter or case number")
            .into());
    }
    let search =
        new.custodian.is_some() || new.query.is_some() || new.from.is_some() || new.to.is_some();
    let (tenant, target) = match (&new.resource, search) {
        (Some(_), true) => {
            return Err(
                UserError::new("a hold is on a resource or on a search, not both")
                    .hint("give --resource alone, or --custodian/--query/--from/--to")
                    .into(),
            );
        }
        (None, false) => {
            return Err(UserError::new("a hold needs something to hold")
                .hint(
                    "give --resource USER[@POINT], or a search: --custodian, --query, --from, --to",
                )
                .into());
        }
        (Some(spec), false) => {
            let cat = ws.catalog()?;
            let sel = select::select(&*cat, new.tenant.as_deref(), spec)?;
            // `select` takes the whole text as a resource first: then the hold is on all of
            // it; else the text named one of its restore points.
            let target = if sel.resource.name.eq_ignore_ascii_case(spec.trim()) {
                HoldTarget::Resource {
                    resource: sel.resource.name.clone(),
                }
            } else {
                HoldTarget::Point {
                    resource: sel.resource.name.clone(),
                    point: sel.point.seq,
                    snapshot: sel.point.snapshot.clone(),
                }
            };
            (Some(sel.resource.tenant.clone()), target)
        }
        (None, true) => (
            new.tenant.clone(),
            HoldTarget::Search {
                custodian: new.custodian.clone(),
                query: new.query.clone(),
                from: new.from,
                to: new.to,
            },
        ),
    };
    let hold = Hold {
        id: new_id(),
        tenant,
        target,
        reason: new.reason.trim().to_string(),
        placed_by: by.to_string(),
        placed: Utc::now(),
        automatic: false,
        released: None,
    };
    add(ws, hold)
}

/// Places a hold Cairn decided on itself (a suspect restore point). Blocking.
pub fn place_automatic(
    ws: &Workspace,
    tenant: &str,
    target: HoldTarget,
    reason: String,
) -> anyhow::Result<Hold> {
    let hold = Hold {
        id: new_id(),
        tenant: Some(tenant.to_string()),
        target,
        reason,
        placed_by: "cairn".into(),
        placed: Utc::now(),
        automatic: true,
        released: None,
    };
    add(ws, hold)
}

fn add(ws: &Workspace, hold: Hold) -> anyhow::Result<Hold> {
    let mut all = list(ws)?;
    all.push(hold.clone());
    store(ws, &all)?;
    Ok(hold)
}

/// Releases a hold. Blocking.
pub fn release(ws: &Workspace, id: &str, by: &str, reason: &str) -> anyhow::Result<Hold> {
    ws.ensure_writer()?;
    let mut all = list(ws)?;
    let Some(h) = all
        .iter_mut()
        .find(|h| h.id.eq_ignore_ascii_case(id) && h.in_force())
    else {
        return Err(UserError::new(format!("no legal hold {id} in force"))
            .hint("`cairn hold list` shows the holds and their ids")
            .into());
    };
    h.released = Some(Released {
        at: Utc::now(),
        by: by.to_string(),
        reason: reason.to_string(),
    });
    let out = h.clone();
    store(ws, &all)?;
    Ok(out)
}

/// The snapshots the holds in force keep, each with the first hold that keeps it, for
/// the restore points of the catalog; resource holds are also given by name, so restore
/// points the catalog does not know (another machine's) are kept too.
#[derive(Debug, Default)]
pub struct Held {
    /// (tenant, resource) → hold id.
    pub resources: BTreeMap<(Option<String>, String), String>,
    /// snapshot id → hold id.
    pub snapshots: BTreeMap<String, String>,
}

impl Held {
    /// The hold keeping a restore point of `resource` of `tenant` in `snapshot`, if any.
    pub fn keeping(&self, tenant: &str, resource: &str, snapshot: &str) -> Option<&str> {
        if let Some(h) = self.snapshots.get(snapshot) {
            return Some(h);
        }
        self.resources
            .iter()
            .find(|((t, r), _)| {
                r.eq_ignore_ascii_case(resource) && t.as_deref().is_none_or(|t| t == tenant)
            })
            .map(|(_, h)| h.as_str())
    }

    /// The repository's form of these holds.
    pub fn as_legal_holds(&self) -> Vec<cairn_repo::LegalHold> {
        self.resources
            .keys()
            .map(|(_, r)| cairn_repo::LegalHold::Resource(r.clone()))
            .chain(
                self.snapshots
                    .keys()
                    .map(|s| cairn_repo::LegalHold::Snapshot(s.clone())),
            )
            .collect()
    }
}

/// What the holds in force keep. Blocking.
pub fn held(ws: &Workspace) -> anyhow::Result<Held> {
    let holds = in_force(ws)?;
    let cat = ws.existing_catalog()?;
    let cat = cat.as_deref().map(|c| c as &dyn Catalog);
    held_by(&holds, cat)
}

/// What the holds in force the catalog records keep.
pub fn held_in(cat: &dyn Catalog) -> anyhow::Result<Held> {
    let holds: Vec<Hold> = parse_docs(cat)?
        .into_iter()
        .filter(Hold::in_force)
        .collect();
    held_by(&holds, Some(cat))
}

fn held_by(holds: &[Hold], cat: Option<&dyn Catalog>) -> anyhow::Result<Held> {
    let mut out = Held::default();
    for h in holds {
        match &h.target {
            HoldTarget::Resource { resource } => {
                out.resources
                    .entry((h.tenant.clone(), resource.clone()))
                    .or_insert_with(|| h.id.clone());
            }
            HoldTarget::Point { snapshot, .. } => {
                out.snapshots
                    .entry(snapshot.clone())
                    .or_insert_with(|| h.id.clone());
            }
            HoldTarget::Search { .. } => {
                let Some(cat) = cat else { continue };
                for snap in search_snapshots(cat, h)? {
                    out.snapshots.entry(snap).or_insert_with(|| h.id.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The catalog query of a search hold.
fn query_of(h: &Hold) -> Option<Query> {
    let HoldTarget::Search {
        custodian,
        query,
        from,
        to,
    } = &h.target
    else {
        return None;
    };
    Some(Query {
        tenant: h.tenant.clone(),
        text: query.clone(),
        person: custodian.clone(),
        after: *from,
        before: *to,
        ..Query::default()
    })
}

/// Every snapshot holding a version of an item a search hold covers. A custodian's own
/// mailbox and drive are covered whole.
fn search_snapshots(cat: &dyn Catalog, h: &Hold) -> anyhow::Result<Vec<String>> {
    let Some(q) = query_of(h) else {
        return Ok(Vec::new());
    };
    let mut snaps: std::collections::BTreeSet<String> =
        cat.snapshots_matching(&q)?.into_iter().collect();
    // The custodian's own data: whatever their mailbox or drive holds matches, whoever
    // sent it.
    if let HoldTarget::Search {
        custodian: Some(c), ..
    } = &h.target
    {
        for r in cat.resources()? {
            if !r.name.eq_ignore_ascii_case(c) || h.tenant.as_ref().is_some_and(|t| *t != r.tenant)
            {
                continue;
            }
            let own = Query {
                resources: vec![r.id],
                person: None,
                ..q.clone()
            };
            snaps.extend(cat.snapshots_matching(&own)?);
        }
    }
    Ok(snaps.into_iter().collect())
}
