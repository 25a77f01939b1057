//! Ransomware and mass-change detection: after a backup, each new restore point is
//! compared with the previous one of its resource, signal by signal. A finding makes the
//! point *suspect*: it is recorded (catalog and repository), and the last clean restore
//! point of the resource gets an automatic legal hold, so no retention rule expires the
//! copy to go back to.
//!
//! The comparison reads the catalog's changes between the two points (streamed, ordered
//! by item), and for the high-entropy signal the first bytes of changed files from the
//! repository (a bounded sample). Inbox rules are read from their catalog rows (the rule's
//! JSON is kept beside it): a rule newly forwarding mail outside the organisation is the
//! classic sign of a taken account.

use crate::Workspace;
use crate::holds::{self, HoldTarget};
use cairn_backup::Finding;
use cairn_catalog::{Catalog, Change, Point, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The catalog document kind and repository record kind of findings.
const KIND: &str = "findings";

pub use cairn_config::Thresholds;

/// Extensions ransomware families give the files they encrypt (lower case, with the dot).
const RANSOM_EXTENSIONS: &[&str] = &[
    ".locked",
    ".encrypted",
    ".enc",
    ".crypt",
    ".crypted",
    ".crypto",
    ".cry",
    ".locky",
    ".zepto",
    ".odin",
    ".cerber",
    ".wncry",
    ".wnry",
    ".ryk",
    ".conti",
    ".lockbit",
    ".hive",
    ".akira",
    ".blackcat",
    ".basta",
    ".ransom",
    ".pay2key",
    ".petya",
    ".vvv",
    ".ecc",
    ".ezz",
    ".exx",
    ".xyz",
    ".zzz",
    ".aaa",
    ".abc",
    ".ccc",
    ".micro",
    ".vault",
    ".xtbl",
    ".rdm",
    ".rrk",
    ".encrypt",
    ".enciphered",
];

/// Words ransom notes are named with (lower case).
const NOTE_WORDS: &[&str] = &[
    "decrypt",
    "ransom",
    "restore_files",
    "restore-files",
    "recover_files",
    "recover-files",
    "how_to",
    "how-to",
    "readme_restore",
    "read_me",
    "_readme",
    "help_restore",
    "files_encrypted",
    "unlock_files",
];

/// Extensions whose content is compressed or encrypted by nature: high entropy is no sign.
const COMPRESSED: &[&str] = &[
    "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "docx", "xlsx", "pptx", "odt", "ods",
    "odp", "jpg", "jpeg", "png", "gif", "webp", "heic", "mp3", "mp4", "m4a", "mov", "avi", "mkv",
    "pdf", "pst", "msg", "jar", "apk", "cab", "iso", "dmg", "gpg", "pgp", "p7m", "pfx",
];

fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Shannon entropy in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for b in bytes {
        counts[*b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// How much of a file the entropy signal reads.
const HEAD: usize = 8 * 1024;
/// Smaller files say little about their entropy.
const MIN_SIZE: u64 = 512;
/// Distinct ransom-note names followed, and folders counted per name, at most.
const NOTE_NAMES: usize = 64;
const NOTE_FOLDERS_MAX: usize = 10_000;
/// Examples kept per finding.
const EXAMPLES: usize = 5;

/// What the walk over the changes counts.
#[derive(Default)]
struct Tally {
    removed: u64,
    modified: u64,
    removed_messages: u64,
    to_deleted_items: u64,
    removed_examples: Vec<String>,
    modified_examples: Vec<String>,
    purged_examples: Vec<String>,
    deleted_items_examples: Vec<String>,
    /// Files newly carrying a ransomware extension, and a few of their paths.
    extension: u64,
    extension_examples: Vec<String>,
    /// note file name → folders it newly appears in.
    notes: BTreeMap<String, BTreeSet<String>>,
    /// (old path, new path) of modified files worth an entropy look.
    entropy_candidates: Vec<(String, String)>,
    /// Inbox rules newly sending mail outside, and "rule name → addresses" examples.
    forwarding: u64,
    forwarding_examples: Vec<String>,
}

/// The actions of an inbox rule that send mail on.
const FORWARD_ACTIONS: &[&str] = &["forwardTo", "forwardAsAttachmentTo", "redirectTo"];

/// Addresses outside `internal` an enabled rule (its JSON, as the catalog keeps it) sends
/// mail to. A disabled rule sends nothing.
fn external_targets(rule: Option<&str>, internal: &[String]) -> BTreeSet<String> {
    let Some(v) = rule.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return BTreeSet::new();
    };
    if v["isEnabled"] == serde_json::Value::Bool(false) {
        return BTreeSet::new();
    }
    FORWARD_ACTIONS
        .iter()
        .filter_map(|a| v["actions"][a].as_array())
        .flatten()
        .filter_map(|r| r["emailAddress"]["address"].as_str())
        .map(str::to_ascii_lowercase)
        .filter(|addr| {
            let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            !internal
                .iter()
                .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
        })
        .collect()
}

fn push(v: &mut Vec<String>, s: &str) {
    if v.len() < EXAMPLES {
        v.push(s.to_string());
    }
}

fn is_deleted_items(path: &str) -> bool {
    path.split('/')
        .nth(1)
        .is_some_and(|f| f.eq_ignore_ascii_case("Deleted Items"))
}

impl Tally {
    /// A rule created, or changed to send mail to an outside address it did not before.
    fn rule(&mut self, c: &Change, internal: &[String]) {
        let Some(n) = c.new.as_ref().filter(|n| n.kind == "messageRule") else {
            return;
        };
        let before = external_targets(c.old.as_ref().and_then(|o| o.sidecar.as_deref()), internal);
        let now = external_targets(n.sidecar.as_deref(), internal);
        let new: Vec<&String> = now.difference(&before).collect();
        if new.is_empty() {
            return;
        }
        self.forwarding += 1;
        let name = n
            .subject
            .as_deref()
            .or(n.name.as_deref())
            .unwrap_or(&n.item);
        let to: Vec<&str> = new.iter().map(|s| s.as_str()).collect();
        push(
            &mut self.forwarding_examples,
            &format!("rule \"{name}\" → {}", to.join(", ")),
        );
    }

    fn take(&mut self, c: Change, t: &Thresholds, extra: &[String]) {
        let is_ransom_ext = |name: &str| {
            let lower = name.to_ascii_lowercase();
            RANSOM_EXTENSIONS.iter().any(|e| lower.ends_with(e))
                || extra
                    .iter()
                    .any(|e| lower.ends_with(&e.to_ascii_lowercase()))
        };
        match (c.old, c.new) {
            (Some(o), None) => {
                if o.kind == crate::browse::FOLDER {
                    return;
                }
                self.removed += 1;
                push(&mut self.removed_examples, &o.path);
                if o.kind == "message" {
                    self.removed_messages += 1;
                    push(&mut self.purged_examples, &o.path);
                }
            }
            (Some(o), Some(n)) => {
                if n.kind == crate::browse::FOLDER {
                    return;
                }
                self.modified += 1;
                push(&mut self.modified_examples, &n.path);
                if n.kind == "message" && is_deleted_items(&n.path) && !is_deleted_items(&o.path) {
                    self.to_deleted_items += 1;
                    push(&mut self.deleted_items_examples, &n.path);
                }
                if n.kind == "file" {
                    let (old_name, new_name) = (file_name(&o.path), file_name(&n.path));
                    if old_name != new_name && is_ransom_ext(new_name) && !is_ransom_ext(old_name) {
                        self.extension += 1;
                        push(&mut self.extension_examples, &n.path);
                    }
                    let compressed = |name: &str| {
                        extension(name).is_some_and(|e| COMPRESSED.contains(&e.as_str()))
                    };
                    if n.size >= MIN_SIZE
                        && !compressed(old_name)
                        && (self.entropy_candidates.len() as u64) < t.entropy_sample
                    {
                        self.entropy_candidates
                            .push((o.path.clone(), n.path.clone()));
                    }
                }
            }
            (None, Some(n)) => {
                if n.kind != "file" {
                    return;
                }
                let name = file_name(&n.path);
                if is_ransom_ext(name) {
                    self.extension += 1;
                    push(&mut self.extension_examples, &n.path);
                }
                let lower = name.to_ascii_lowercase();
                if NOTE_WORDS.iter().any(|w| lower.contains(w))
                    && extension(&lower).is_some_and(|e| {
                        ["txt", "html", "htm", "hta", "url", "rtf"].contains(&e.as_str())
                    })
                {
                    // Bounded: a handful of note names, folders counted up to a cap.
                    let known = self.notes.contains_key(&lower);
                    if known || self.notes.len() < NOTE_NAMES {
                        let folders = self.notes.entry(lower).or_default();
                        if folders.len() < NOTE_FOLDERS_MAX {
                            folders.insert(folder_of(&n.path).to_string());
                        }
                    }
                }
            }
            (None, None) => {}
        }
    }
}

fn finding(
    signal: &str,
    summary: String,
    numbers: &[(&str, f64)],
    examples: Vec<String>,
) -> Finding {
    Finding {
        signal: signal.into(),
        summary,
        numbers: numbers.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        examples,
    }
}

/// Scores restore point `new` of `res` against `prev`. Blocking.
pub fn score(
    cat: &dyn Catalog,
    repo: &cairn_repo::Repo,
    res: &Resource,
    prev: &Point,
    new: &Point,
    t: &Thresholds,
) -> anyhow::Result<Vec<Finding>> {
    let counts = cat.count_at(res.id, prev.seq)?;
    let total: u64 = counts
        .iter()
        .filter(|(k, _)| k.as_str() != crate::browse::FOLDER)
        .map(|(_, n)| n)
        .sum();
    let messages = counts.get("message").copied().unwrap_or(0);
    let mut tally = Tally::default();
    let internal = internal_domains(res, t);
    cat.changes(res.id, prev.seq, new.seq, &mut |c| {
        if t.forwarding_rules > 0 {
            tally.rule(&c, &internal);
        }
        tally.take(c, t, &t.extensions);
        true
    })?;
    let mut out = Vec::new();
    let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let pct = |x: f64| format!("{:.0}%", x * 100.0);

    let s = share(tally.removed, total);
    if tally.removed >= t.min_items && s >= t.deleted_share {
        out.push(finding(
            "mass-deletion",
            format!(
                "{} of {total} items ({}) are gone since restore point {} (threshold {})",
                tally.removed,
                pct(s),
                prev.seq,
                pct(t.deleted_share)
            ),
            &[
                ("removed", tally.removed as f64),
                ("of", total as f64),
                ("share", s),
                ("threshold", t.deleted_share),
            ],
            std::mem::take(&mut tally.removed_examples),
        ));
    }
    let s = share(tally.modified, total);
    if tally.modified >= t.min_items && s >= t.modified_share {
        out.push(finding(
            "mass-modification",
            format!(
                "{} of {total} items ({}) changed since restore point {} (threshold {})",
                tally.modified,
                pct(s),
                prev.seq,
                pct(t.modified_share)
            ),
            &[
                ("modified", tally.modified as f64),
                ("of", total as f64),
                ("share", s),
                ("threshold", t.modified_share),
            ],
            std::mem::take(&mut tally.modified_examples),
        ));
    }
    if tally.extension >= t.extension_files {
        out.push(finding(
            "ransomware-extension",
            format!(
                "{} files newly named with a ransomware extension (threshold {})",
                tally.extension, t.extension_files
            ),
            &[
                ("files", tally.extension as f64),
                ("threshold", t.extension_files as f64),
            ],
            std::mem::take(&mut tally.extension_examples),
        ));
    }
    if let Some((note, folders)) = tally.notes.iter().max_by_key(|(_, f)| f.len())
        && folders.len() as u64 >= t.note_folders
    {
        out.push(finding(
            "ransom-note",
            format!(
                "a ransom note \"{note}\" appeared in {} folders (threshold {})",
                folders.len(),
                t.note_folders
            ),
            &[
                ("folders", folders.len() as f64),
                ("threshold", t.note_folders as f64),
            ],
            folders
                .iter()
                .take(EXAMPLES)
                .map(|f| format!("{f}/{note}"))
                .collect(),
        ));
    }
    let s = share(tally.to_deleted_items, messages);
    if tally.to_deleted_items >= t.min_items && s >= t.mail_deleted_share {
        out.push(finding(
            "mail-to-deleted-items",
            format!(
                "{} of {messages} messages ({}) moved into Deleted Items (threshold {})",
                tally.to_deleted_items,
                pct(s),
                pct(t.mail_deleted_share)
            ),
            &[
                ("moved", tally.to_deleted_items as f64),
                ("of", messages as f64),
                ("share", s),
                ("threshold", t.mail_deleted_share),
            ],
            std::mem::take(&mut tally.deleted_items_examples),
        ));
    }
    let s = share(tally.removed_messages, messages);
    if tally.removed_messages >= t.min_items && s >= t.mail_purged_share {
        out.push(finding(
            "mail-purged",
            format!(
                "{} of {messages} messages ({}) purged (threshold {})",
                tally.removed_messages,
                pct(s),
                pct(t.mail_purged_share)
            ),
            &[
                ("purged", tally.removed_messages as f64),
                ("of", messages as f64),
                ("share", s),
                ("threshold", t.mail_purged_share),
            ],
            std::mem::take(&mut tally.purged_examples),
        ));
    }
    if t.forwarding_rules > 0 && tally.forwarding >= t.forwarding_rules {
        out.push(finding(
            "forwarding-rule",
            format!(
                "{} inbox rule(s) newly forward or redirect mail outside the organisation ({}) (threshold {})",
                tally.forwarding,
                internal.join(", "),
                t.forwarding_rules
            ),
            &[
                ("rules", tally.forwarding as f64),
                ("threshold", t.forwarding_rules as f64),
            ],
            std::mem::take(&mut tally.forwarding_examples),
        ));
    }
    if !tally.entropy_candidates.is_empty() {
        let turned = high_entropy(repo, prev, new, &tally.entropy_candidates, t.entropy_bits)?;
        if turned.len() as u64 >= t.entropy_files {
            out.push(finding(
                "high-entropy",
                format!(
                    "{} of {} changed files read turned to random-looking content (over {} bits per byte) although their type is not a compressed one (threshold {})",
                    turned.len(),
                    tally.entropy_candidates.len(),
                    t.entropy_bits,
                    t.entropy_files
                ),
                &[("files", turned.len() as f64), ("read", tally.entropy_candidates.len() as f64), ("threshold", t.entropy_files as f64)],
                turned.into_iter().take(EXAMPLES).collect(),
            ));
        }
    }
    Ok(out)
}

/// The organisation's domains: the user's own (from the UPN) and the configured ones.
fn internal_domains(res: &Resource, t: &Thresholds) -> Vec<String> {
    let mut out: Vec<String> = t
        .internal_domains
        .iter()
        .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
        .collect();
    if let Some((_, d)) = res.name.rsplit_once('@') {
        out.push(d.to_ascii_lowercase());
    }
    out.sort();
    out.dedup();
    out
}

/// Changed files whose content went from ordinary to high entropy.
fn high_entropy(
    repo: &cairn_repo::Repo,
    prev: &Point,
    new: &Point,
    candidates: &[(String, String)],
    bits: f64,
) -> anyhow::Result<Vec<String>> {
    let before = repo.open_snapshot(&prev.snapshot)?;
    let after = repo.open_snapshot(&new.snapshot)?;
    let mut out = Vec::new();
    for (old, new) in candidates {
        let (Some(a), Some(b)) = (head(&before, old), head(&after, new)) else {
            continue;
        };
        if entropy(&a) < bits && entropy(&b) >= bits {
            out.push(new.clone());
        }
    }
    Ok(out)
}

/// The first bytes of an item (None: unreadable, the drill's business, not this one's).
fn head(r: &cairn_repo::SnapshotReader, path: &str) -> Option<Vec<u8>> {
    let mut w = Head(Vec::with_capacity(HEAD));
    match r.read(path, &mut w) {
        Ok(()) => Some(w.0),
        // The reader stops it once the head is full.
        Err(_) if w.0.len() >= HEAD => Some(w.0),
        Err(_) => None,
    }
}

struct Head(Vec<u8>);

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = HEAD - self.0.len();
        if room == 0 {
            return Err(std::io::Error::other("enough read"));
        }
        let n = room.min(buf.len());
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The findings of one restore point, as kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Suspect {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub snapshot: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub findings: Vec<Finding>,
    /// The automatic legal hold placed on the last clean restore point, if one was.
    pub hold: Option<String>,
}

/// The suspect restore points the catalog knows, by snapshot id.
pub fn suspects(cat: &dyn Catalog) -> anyhow::Result<BTreeMap<String, Suspect>> {
    let mut out = BTreeMap::new();
    for (id, json) in cat.docs(KIND)? {
        let s: Suspect = serde_json::from_str(&json).map_err(|e| {
            anyhow::anyhow!("the findings of restore point {id} are unreadable: {e}")
        })?;
        out.insert(id, s);
    }
    Ok(out)
}

/// `cat` takes the repository's findings (after a rebuild); a rewritten snapshot keeps the
/// findings of its point. Returns how many.
pub fn import(repo: &cairn_repo::Repo, cat: &dyn Catalog) -> anyhow::Result<usize> {
    let mut n = 0;
    for rec in repo.records(KIND)? {
        let s: Suspect = serde_json::from_slice(&rec.content)?;
        cat.put_doc(KIND, &s.snapshot, &serde_json::to_string(&s)?)?;
        n += 1;
    }
    Ok(n)
}

/// Scores the restore point each resource report names against its previous one, and acts
/// on findings: the point is recorded as suspect, the last clean point held. Fills the
/// reports' `findings`. Blocking.
pub fn after_backup(
    ws: &Workspace,
    tenant: &str,
    reports: &mut [cairn_backup::ResourceReport],
    t: &Thresholds,
) -> anyhow::Result<()> {
    if !t.enabled {
        return Ok(());
    }
    let cat = ws.catalog()?;
    let repo = ws.repo()?;
    let mut known = suspects(&*cat)?;
    let resources = cat.resources()?;
    for r in reports.iter_mut() {
        let Some(snapshot) = r.snapshot.clone() else {
            continue;
        };
        let Some(res) = resources
            .iter()
            .find(|x| x.tenant == tenant && x.name == r.resource)
        else {
            continue;
        };
        let points = cat.points(res.id)?;
        let Some(i) = points.iter().position(|p| p.snapshot == snapshot) else {
            continue;
        };
        if i == 0 {
            continue;
        }
        let (prev, new) = (&points[i - 1], &points[i]);
        let findings = score(&*cat, &repo, res, prev, new, t)?;
        if findings.is_empty() {
            continue;
        }
        // The copy to go back to: the newest earlier point not itself suspect.
        let clean = points[..i]
            .iter()
            .rev()
            .find(|p| !known.contains_key(&p.snapshot));
        let mut hold = None;
        if let Some(c) = clean {
            let already = holds::in_force(ws)?.into_iter().find(|h| {
                h.automatic
                    && matches!(&h.target, HoldTarget::Point { snapshot, .. } if *snapshot == c.snapshot)
            });
            hold = Some(match already {
                Some(h) => h.id,
                None => {
                    let signals: Vec<&str> = findings.iter().map(|f| f.signal.as_str()).collect();
                    holds::place_automatic(
                        ws,
                        tenant,
                        HoldTarget::Point {
                            resource: res.name.clone(),
                            point: c.seq,
                            snapshot: c.snapshot.clone(),
                        },
                        format!(
                            "restore point {} of {} is suspect ({}); this is its last clean restore point",
                            new.seq,
                            res.name,
                            signals.join(", ")
                        ),
                    )?
                    .id
                }
            });
        }
        let suspect = Suspect {
            tenant: tenant.to_string(),
            resource: res.name.clone(),
            point: new.seq,
            snapshot: new.snapshot.clone(),
            time: new.time,
            findings: findings.clone(),
            hold,
        };
        let json = serde_json::to_vec_pretty(&suspect)?;
        repo.put_record(KIND, &format!("{}.json", new.snapshot), json)?;
        cat.put_doc(KIND, &new.snapshot, &serde_json::to_string(&suspect)?)?;
        known.insert(new.snapshot.clone(), suspect);
        r.findings = findings;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_tells_text_from_random_bytes() {
        let text = "The quarterly report is attached; please review the figures. ".repeat(100);
        assert!(entropy(text.as_bytes()) < 5.0);
        let random: Vec<u8> = (0..8192).map(|_| rand::random::<u8>()).collect();
        assert!(entropy(&random) > 7.9);
        assert_eq!(entropy(&[]), 0.0);
        assert_eq!(entropy(&[7; 100]), 0.0);
    }

    #[test]
    fn deleted_items_is_the_second_component_of_a_mail_path() {
        assert!(is_deleted_items("mail/Deleted Items/2026-11/x.eml"));
        assert!(!is_deleted_items("mail/Inbox/Deleted Items.eml"));
    }
}
