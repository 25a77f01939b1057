//! Erasure of one person's data from every restore point (a data subject's right to
//! erasure), and the item removal it shares with item-level retention.
//!
//! The person's own resources (mailbox, OneDrive) leave the repository whole; with
//! `sender`/`recipient`, messages and events they sent or received in other people's
//! mailboxes are cut out of every restore point holding them (the points are rewritten
//! without them, `cairn_repo::Repo::rewrite_many`), then the data is purged and the catalog
//! follows. The result is an erasure record — what was removed from which points, when, by
//! whom, never content — signed with the repository's key and kept in the repository. Data
//! under a legal hold is refused, naming the hold. On storage that keeps data under
//! retention (S3 Object Lock) what cannot be deleted yet is recorded as pending, and a later
//! `prune` completes it.

use crate::holds::{self, Held};
use crate::{UserError, Workspace};
use cairn_catalog::{Catalog, ItemRow, Query, Resource};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The catalog document kind and repository record kind of erasure records.
const KIND: &str = "erasure";

/// Whose data counts as the person's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// Their own mailbox, calendar, contacts and OneDrive.
    Owner,
    /// Items they sent, in other people's mailboxes.
    Sender,
    /// Items they received, in other people's mailboxes.
    Recipient,
}

impl Match {
    pub fn parse(s: &str) -> Result<Match, UserError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Match::Owner),
            "sender" => Ok(Match::Sender),
            "recipient" => Ok(Match::Recipient),
            other => Err(
                UserError::new(format!("--match {other}: not a kind of match"))
                    .hint("give owner, sender, recipient, or several separated by commas"),
            ),
        }
    }
}

/// An erasure to plan or carry out.
#[derive(Clone, Debug)]
pub struct EraseRequest {
    /// The person: an e-mail address / user principal name.
    pub subject: String,
    pub tenant: Option<String>,
    pub matches: BTreeSet<Match>,
    /// False: a dry run, nothing changes.
    pub execute: bool,
    /// Who asks (recorded).
    pub by: String,
}

/// What an erasure removes (or removed) from one restore point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErasedPoint {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    /// The snapshot as it was.
    pub snapshot: String,
    /// The snapshot written without the items (`None`: the whole point was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewritten_as: Option<String>,
    /// The whole restore point goes (the person's own resource).
    pub whole: bool,
    /// Items removed from it.
    pub count: u64,
    /// Their Graph ids (no content), for items cut out of someone else's restore point; a
    /// whole point of the person's own is counted only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// Why the storage still holds the data (retention): completed by a later prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// The signed record of an erasure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErasureRecord {
    /// `E-` and 8 hex digits.
    pub id: String,
    pub subject: String,
    pub tenant: Option<String>,
    pub matches: BTreeSet<Match>,
    pub requested_by: String,
    pub at: DateTime<Utc>,
    /// `planned` (dry run), `pending` (some data still under retention) or `complete`.
    pub status: String,
    pub points: Vec<ErasedPoint>,
    /// Items removed, counted once per item.
    pub items: u64,
    /// When the record was last completed (pending → complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<DateTime<Utc>>,
    /// HMAC-SHA256 of the record without this field, with the repository's key (hex).
    #[serde(default)]
    pub signature: String,
}

impl ErasureRecord {
    /// The bytes the signature covers.
    fn signed_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        Ok(serde_json::to_vec(&unsigned)?)
    }
}

/// Is `address` one of the addresses in `field` (a sender, or a recipient list)?
fn names(field: Option<&str>, address: &str) -> bool {
    field.is_some_and(|f| {
        f.split([',', ';', ' ', '<', '>', '"'])
            .any(|a| a.trim().eq_ignore_ascii_case(address))
    })
}

/// The rows of an item to remove from a point: its content and its sidecar.
pub(crate) fn paths_of(row: &ItemRow) -> Vec<String> {
    let mut p = vec![row.path.clone()];
    if row.sidecar.is_some() {
        p.push(format!("{}.meta.json", row.path));
    }
    p
}

/// Items to cut out of one resource's restore points: snapshot → paths, and the item ids.
#[derive(Default)]
struct Cut {
    resource: Option<Resource>,
    paths: BTreeMap<String, BTreeSet<String>>,
    items: BTreeMap<String, BTreeSet<String>>,
    ids: BTreeSet<String>,
}

/// Plans, and with `execute` carries out, an erasure. Blocking.
pub fn erase(ws: &Workspace, req: &EraseRequest) -> anyhow::Result<ErasureRecord> {
    let subject = req.subject.trim().to_string();
    if subject.is_empty() || req.matches.is_empty() {
        return Err(
            UserError::new("an erasure needs a person and what to match")
                .hint("give --subject alice@contoso.com and --match owner[,sender,recipient]")
                .into(),
        );
    }
    if req.execute {
        ws.ensure_writer()?;
    }
    let cat = ws.catalog()?;
    let tenant_ok = |r: &Resource| req.tenant.as_ref().is_none_or(|t| *t == r.tenant);
    let resources = cat.resources()?;
    let own: Vec<&Resource> = resources
        .iter()
        .filter(|r| tenant_ok(r) && r.name.eq_ignore_ascii_case(&subject))
        .collect();
    let mut points: Vec<ErasedPoint> = Vec::new();
    if req.matches.contains(&Match::Owner) {
        for r in &own {
            for p in cat.points(r.id)? {
                let count = cat
                    .count_at(r.id, p.seq)?
                    .into_iter()
                    .filter(|(k, _)| k.as_str() != crate::browse::FOLDER)
                    .map(|(_, n)| n)
                    .sum();
                points.push(ErasedPoint {
                    tenant: r.tenant.clone(),
                    resource: r.name.clone(),
                    point: p.seq,
                    snapshot: p.snapshot,
                    rewritten_as: None,
                    whole: true,
                    count,
                    items: Vec::new(),
                    pending: None,
                });
            }
        }
    }
    // Items sent or received in other resources.
    let mut cuts: BTreeMap<i64, Cut> = BTreeMap::new();
    let mut points_of: BTreeMap<i64, Vec<cairn_catalog::Point>> = BTreeMap::new();
    if req.matches.contains(&Match::Sender) || req.matches.contains(&Match::Recipient) {
        let q = Query {
            tenant: req.tenant.clone(),
            person: Some(subject.clone()),
            ..Query::default()
        };
        for hit in cat.find(&q)? {
            if own.iter().any(|o| o.id == hit.resource.id) && req.matches.contains(&Match::Owner) {
                continue;
            }
            let sent =
                req.matches.contains(&Match::Sender) && names(hit.row.sender.as_deref(), &subject);
            let received = req.matches.contains(&Match::Recipient)
                && names(hit.row.recipients.as_deref(), &subject);
            if !sent && !received {
                continue;
            }
            let cut = cuts.entry(hit.resource.id).or_default();
            cut.resource = Some(hit.resource.clone());
            cut.ids.insert(hit.row.item.clone());
            let last = hit.last.as_ref().map(|p| p.seq).unwrap_or(i64::MAX);
            // Each resource's restore points are read once, however many hits it has.
            let known = match points_of.entry(hit.resource.id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(cat.points(hit.resource.id)?)
                }
            };
            for p in known.iter() {
                if p.seq >= hit.first.seq && p.seq <= last {
                    cut.paths
                        .entry(p.snapshot.clone())
                        .or_default()
                        .extend(paths_of(&hit.row));
                    cut.items
                        .entry(p.snapshot.clone())
                        .or_default()
                        .insert(hit.row.item.clone());
                }
            }
        }
        for cut in cuts.values() {
            let r = cut.resource.as_ref().expect("set with the cut");
            let seqs: BTreeMap<&str, i64> = points_of
                .get(&r.id)
                .into_iter()
                .flatten()
                .map(|p| (p.snapshot.as_str(), p.seq))
                .collect();
            for (snap, items) in &cut.items {
                points.push(ErasedPoint {
                    tenant: r.tenant.clone(),
                    resource: r.name.clone(),
                    point: seqs.get(snap.as_str()).copied().unwrap_or_default(),
                    snapshot: snap.clone(),
                    rewritten_as: None,
                    whole: false,
                    count: items.len() as u64,
                    items: items.iter().cloned().collect(),
                    pending: None,
                });
            }
        }
    }
    if points.is_empty() {
        return Err(UserError::new(format!(
            "no restore point holds data of {subject} (as {})",
            req.matches
                .iter()
                .map(|m| format!("{m:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("check the address, --tenant and --match; `cairn find --from/--to` shows what the catalog knows")
        .into());
    }
    // Held data is never erased.
    refuse_held(&holds::held(ws)?, &points)?;
    // Distinct items: those cut out of others' points, and those of the person's own.
    let mut own_items = 0;
    if req.matches.contains(&Match::Owner) {
        for r in &own {
            own_items += distinct_items(&*cat, r.id, &mut |_| {})?;
        }
    }
    let items: BTreeSet<&String> = points.iter().flat_map(|p| p.items.iter()).collect();
    let mut record = ErasureRecord {
        id: format!("E-{:08x}", rand::random::<u32>()),
        subject: subject.clone(),
        tenant: req.tenant.clone(),
        matches: req.matches.clone(),
        requested_by: req.by.clone(),
        at: Utc::now(),
        status: "planned".into(),
        items: items.len() as u64 + own_items,
        points,
        completed: None,
        signature: String::new(),
    };
    if !req.execute {
        return Ok(record);
    }

    let repo = ws.repo()?;
    // The person's own restore points: deleted whole.
    let whole: Vec<String> = record
        .points
        .iter()
        .filter(|p| p.whole)
        .map(|p| p.snapshot.clone())
        .collect();
    let refused = repo.delete_snapshots(&whole)?;
    let kept: BTreeMap<&String, Option<String>> = whole.iter().zip(refused).collect();
    let gone: Vec<String> = kept
        .iter()
        .filter(|(_, why)| why.is_none())
        .map(|(s, _)| (*s).clone())
        .collect();
    cat.forget_snapshots(&gone)?;
    if req.matches.contains(&Match::Owner) {
        for r in &own {
            // Every version of their items leaves the catalog, a bounded batch at a time.
            let mut batch = Vec::new();
            let mut failed = None;
            distinct_items(&*cat, r.id, &mut |item| {
                batch.push(item);
                if batch.len() >= 10_000
                    && let Err(e) = cat.remove_versions(r.id, &std::mem::take(&mut batch))
                {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            cat.remove_versions(r.id, &batch)?;
        }
    }
    for p in record.points.iter_mut().filter(|p| p.whole) {
        if let Some(Some(why)) = kept.get(&p.snapshot) {
            p.pending = Some(format!("the storage keeps the restore point: {why}"));
        }
    }
    // Other people's restore points: rewritten without the items.
    for cut in cuts.values() {
        let r = cut.resource.as_ref().expect("set with the cut");
        let snaps: Vec<String> = cut.paths.keys().cloned().collect();
        let paths: Vec<String> = cut
            .paths
            .values()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids: Vec<String> = cut.ids.iter().cloned().collect();
        for (old, new, pending) in cut_out(&repo, &*cat, r.id, &snaps, &paths, &ids, "erased")? {
            if let Some(p) = record
                .points
                .iter_mut()
                .find(|p| !p.whole && p.snapshot == old)
            {
                p.rewritten_as = Some(new);
                p.pending = pending
                    .map(|why| format!("the storage keeps the original restore point: {why}"));
            }
        }
    }
    // The data itself leaves the storage.
    let purge = repo.purge();
    let pending_purge = match purge {
        Ok(_) => None,
        Err(cairn_repo::RepoError::Deferred(why)) => Some(why),
        Err(e) => return Err(e.into()),
    };
    let any_pending = pending_purge.is_some() || record.points.iter().any(|p| p.pending.is_some());
    record.status = if any_pending { "pending" } else { "complete" }.into();
    if !any_pending {
        record.completed = Some(Utc::now());
    }
    store(ws, &mut record)?;
    Ok(record)
}

fn refuse_held(held: &Held, points: &[ErasedPoint]) -> anyhow::Result<()> {
    for p in points {
        if let Some(h) = held.keeping(&p.tenant, &p.resource, &p.snapshot) {
            return Err(UserError::new(format!(
                "restore point {} of {} holds data of this person and is under legal hold {h}",
                p.point, p.resource
            ))
            .hint(format!(
                "held data is never erased: release hold {h} first if the matter allows it (`cairn hold list` shows it)"
            ))
            .into());
        }
    }
    Ok(())
}

/// Visits each distinct item of a resource once (streamed); returns how many.
fn distinct_items(cat: &dyn Catalog, res: i64, f: &mut dyn FnMut(String)) -> anyhow::Result<u64> {
    let mut last: Option<String> = None;
    let mut n = 0;
    cat.for_each_version(res, &mut |row, _, _| {
        if row.kind != crate::browse::FOLDER && last.as_deref() != Some(row.item.as_str()) {
            last = Some(row.item.clone());
            n += 1;
            f(row.item);
        }
        true
    })?;
    Ok(n)
}

/// Rewrites restore points `snaps` of resource `res` without `paths`, and the catalog
/// follows: the points read from the new snapshots (findings too), the items' versions go.
/// Returns (old snapshot, new snapshot, why the storage keeps the old one) per rewritten
/// point. Shared by erasure and item-level retention.
pub(crate) fn cut_out(
    repo: &cairn_repo::Repo,
    cat: &dyn Catalog,
    res: i64,
    snaps: &[String],
    paths: &[String],
    items: &[String],
    tag: &str,
) -> anyhow::Result<Vec<(String, String, Option<String>)>> {
    let mut out = Vec::new();
    for o in repo.rewrite_many(snaps, paths, tag, false)? {
        let Some(new) = &o.snapshot else { continue };
        cat.replace_snapshot(&o.original.id, &new.id)?;
        // A suspect point stays suspect under its new id.
        if let Some((_, json)) = cat
            .docs("findings")?
            .into_iter()
            .find(|(id, _)| *id == o.original.id)
        {
            let mut v: serde_json::Value = serde_json::from_str(&json)?;
            v["snapshot"] = serde_json::Value::String(new.id.clone());
            cat.put_doc("findings", &new.id, &v.to_string())?;
            cat.delete_doc("findings", &o.original.id)?;
        }
        out.push((o.original.id.clone(), new.id.clone(), o.original_kept));
    }
    cat.remove_versions(res, items)?;
    Ok(out)
}

/// Signs the record and keeps it in the repository and the catalog.
fn store(ws: &Workspace, record: &mut ErasureRecord) -> anyhow::Result<()> {
    let repo = ws.repo()?;
    record.signature = repo.sign(&record.signed_bytes()?)?;
    repo.put_record(
        KIND,
        &format!("{}.json", record.id),
        serde_json::to_vec_pretty(record)?,
    )?;
    ws.catalog()?
        .put_doc(KIND, &record.id, &serde_json::to_string(record)?)?;
    Ok(())
}

/// An erasure record as kept, with whether its signature holds.
#[derive(Clone, Debug, Serialize)]
pub struct Kept {
    #[serde(flatten)]
    pub record: ErasureRecord,
    /// The signature is the repository's over exactly this record.
    pub signature_valid: bool,
}

/// The erasure records of the repository (the newest version of each), oldest first.
/// Blocking.
pub fn records(ws: &Workspace) -> anyhow::Result<Vec<Kept>> {
    let repo = ws.repo()?;
    let mut by_id: BTreeMap<String, ErasureRecord> = BTreeMap::new();
    for rec in repo.records(KIND)? {
        let r: ErasureRecord = serde_json::from_slice(&rec.content).map_err(|e| {
            anyhow::anyhow!(
                "the erasure record {} (snapshot {}) is unreadable: {e}",
                rec.name,
                rec.snapshot.id
            )
        })?;
        by_id.insert(r.id.clone(), r);
    }
    let mut out = Vec::new();
    for (_, record) in by_id {
        let signature_valid = repo.verify_signature(&record.signed_bytes()?, &record.signature)?;
        out.push(Kept {
            record,
            signature_valid,
        });
    }
    out.sort_by_key(|k| k.record.at);
    Ok(out)
}

/// Completes pending erasures once the storage lets their data go: originals it kept are
/// deleted, data purged, and the record updated. Returns the records completed. Blocking.
pub fn complete_pending(ws: &Workspace) -> anyhow::Result<Vec<String>> {
    let repo = ws.repo()?;
    let mut done = Vec::new();
    for kept in records(ws)? {
        let mut record = kept.record;
        if record.status != "pending" {
            continue;
        }
        let existing: BTreeSet<String> = repo.snapshots()?.into_iter().map(|s| s.id).collect();
        let mut still = false;
        for p in record.points.iter_mut().filter(|p| p.pending.is_some()) {
            if !existing.contains(&p.snapshot) {
                p.pending = None;
                continue;
            }
            match repo
                .delete_snapshots(std::slice::from_ref(&p.snapshot))?
                .pop()
            {
                Some(None) => {
                    if p.whole
                        && let Some(cat) = ws.existing_catalog()?
                    {
                        cat.forget_snapshots(std::slice::from_ref(&p.snapshot))?;
                    }
                    p.pending = None;
                }
                _ => still = true,
            }
        }
        if still {
            continue;
        }
        match repo.purge() {
            Ok(_) => {}
            Err(cairn_repo::RepoError::Deferred(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        record.status = "complete".into();
        record.completed = Some(Utc::now());
        store(ws, &mut record)?;
        done.push(record.id);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_matched_whole_in_sender_and_recipient_fields() {
        assert!(names(Some("alice@contoso.com"), "Alice@Contoso.com"));
        assert!(names(
            Some("bob@contoso.com, alice@contoso.com"),
            "alice@contoso.com"
        ));
        assert!(names(
            Some("\"Alice\" <alice@contoso.com>"),
            "alice@contoso.com"
        ));
        assert!(!names(Some("malice@contoso.com"), "alice@contoso.com"));
        assert!(!names(None, "alice@contoso.com"));
    }

    #[test]
    fn matches_parse_and_refuse_unknown_kinds() {
        assert_eq!(Match::parse(" Sender").unwrap(), Match::Sender);
        assert!(Match::parse("cc").is_err());
    }
}
