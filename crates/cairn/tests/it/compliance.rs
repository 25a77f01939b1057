//! Defence and compliance, driven through the command line: legal holds that survive a
//! catalog rebuild, ransomware caught at backup time, erasure of one person's data,
//! item-level retention.

use super::config::{init_repository, s};
use super::{Child, curl, home, serve};
use cairn_testkit::{Home, ok, stderr, stdout};
use serde_json::Value;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet};

/// A simulated tenant served by `cairn sim serve`, configured as `contoso`, and a repository.
pub(crate) struct Tenant {
    pub home: Home,
    pub url: String,
    _sim: Child,
}

impl Tenant {
    pub fn new() -> Tenant {
        Self::with(serve())
    }

    /// With a simulator of these flags (`cairn sim serve …`).
    pub fn simulating(flags: &[&str]) -> Tenant {
        Self::with(super::serve_tenant(flags))
    }

    fn with((sim, url, tenant, client): (Child, String, String, String)) -> Tenant {
        let home = home();
        let secret = home.write("secrets/contoso", "s3cret-for-test\n");
        ok(&home
            .cmd()
            .args(["tenant", "add", "contoso", "--tenant-id", &tenant])
            .args(["--client-id", &client, "--client-secret-file", s(&secret)])
            .args(["--graph-url", &url, "--login-url", &url])
            .output()
            .unwrap());
        init_repository(&home, "repository password");
        Tenant {
            home,
            url,
            _sim: sim,
        }
    }

    /// The user principal names, in the simulator's order.
    pub fn users(&self) -> Vec<String> {
        let users = stdout(
            &self
                .home
                .run(&["graph", "get", "/users?$select=userPrincipalName"]),
        );
        let users: Value = serde_json::from_str(&users).unwrap();
        users["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.home.run(args);
        assert!(o.status.success(), "cairn {args:?}: {}", stderr(&o));
        stdout(&o)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Backs up these users (mail and OneDrive only: quicker); the JSON report.
    pub fn backup(&self, users: &str) -> Value {
        self.json(&[
            "backup", "--users", users, "--groups", "none", "--sites", "none", "--json",
        ])
    }

    /// `POST /_sim/mutate`: what was applied.
    pub fn mutate(&self, body: Value) -> Value {
        let out = curl(&[
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body.to_string(),
            &format!("{}/_sim/mutate", self.url),
        ]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The restore points of `user` in the catalog: (point, snapshot).
    pub fn points(&self, user: &str) -> Vec<(i64, String)> {
        let rows = self.json(&["snapshots", "--resource", user, "--json"]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["point"].as_i64().unwrap(),
                    r["snapshot"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Lines of `find --json`.
fn found(t: &Tenant, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["find", "--json"];
    a.extend_from_slice(args);
    t.ok(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_hold_on_a_search_spares_its_restore_points_and_survives_a_catalog_rebuild() {
    let t = Tenant::new();
    let user = t.users()[0].clone();
    t.backup(&user);
    // Messages deleted in Microsoft 365 after the first restore point.
    let applied = t.mutate(serde_json::json!({"seed": 9, "count": 6, "resource": user,
                                               "kinds": ["message"], "ops": ["delete"]}));
    assert!(
        !applied["applied"].as_array().unwrap().is_empty(),
        "{applied}"
    );
    t.backup(&user);
    assert_eq!(t.points(&user).len(), 2);
    // One of the deleted messages: only point 1 has it.
    let gone: Vec<Value> = found(&t, &["--resource", &user, "--kind", "message"])
        .into_iter()
        .filter(|h| h["current"] == false)
        .collect();
    assert!(
        !gone.is_empty(),
        "the deleted messages are found in point 1"
    );
    let subject = gone[0]["subject"].as_str().unwrap().to_string();

    let placed = t.ok(&[
        "hold",
        "add",
        "--query",
        &subject,
        "--reason",
        "matter 2026-114",
    ]);
    let id = placed
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    assert!(id.starts_with("H-"), "{placed}");

    // Retention would remove point 1: the hold spares it, and says so.
    let forget = t.ok(&["forget", "--keep-last", "1"]);
    assert!(
        forget.contains(&format!("spared by legal hold {id}")),
        "{forget}"
    );
    assert_eq!(t.points(&user).len(), 2, "{forget}");

    // A catalog rebuilt from the repository has the hold again, and it still works.
    let rebuilt = t.ok(&["catalog", "rebuild", "--force"]);
    assert!(rebuilt.contains("1 legal holds taken back"), "{rebuilt}");
    let holds = t.json(&["hold", "list", "--json"]);
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
    assert_eq!(holds[0]["id"], id.as_str());
    assert_eq!(holds[0]["target"]["kind"], "search");
    assert_eq!(holds[0]["target"]["query"], subject.as_str());
    assert_eq!(holds[0]["reason"], "matter 2026-114");
    assert_eq!(holds[0]["automatic"], false);
    let forget = t.ok(&["forget", "--keep-last", "1"]);
    assert!(
        forget.contains(&format!("spared by legal hold {id}")),
        "{forget}"
    );
    assert_eq!(t.points(&user).len(), 2);

    // Released, the hold keeps nothing: retention applies.
    t.ok(&["hold", "release", &id, "--reason", "matter closed"]);
    assert_eq!(t.json(&["hold", "list", "--json"]), serde_json::json!([]));
    let all = t.json(&["hold", "list", "--all", "--json"]);
    assert_eq!(all[0]["released"]["reason"], "matter closed", "{all}");
    let forget = t.ok(&["forget", "--keep-last", "1"]);
    assert!(!forget.contains("spared"), "{forget}");
    assert_eq!(t.points(&user).len(), 1, "{forget}");

    // Holds need a target and a reason: the user's mistake, exit 2.
    let bad = t.home.run(&["hold", "add", "--reason", "x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("hint:"), "{}", stderr(&bad));
}

/// Findings of the restore points of `user`, by point.
fn suspects(t: &Tenant, user: &str) -> Vec<(i64, bool, Vec<String>, Option<String>)> {
    let rows = t.json(&["snapshots", "--resource", user, "--json"]);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["point"].as_i64().unwrap(),
                r["suspect"].as_bool().unwrap(),
                r["findings"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .map(|x| x["signal"].as_str().unwrap().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                r["held_by"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn an_encrypt_attack_is_caught_its_clean_point_held_and_retention_spares_it() {
    let t = Tenant::new();
    let user = t.users()[1].clone();
    t.backup(&user);
    // Ordinary churn first: nothing to see.
    t.mutate(serde_json::json!({"seed": 4, "count": 3, "resource": user}));
    let report = t.backup(&user);
    assert!(report["resources"][0].get("findings").is_none(), "{report}");

    let attack = t.mutate(
        serde_json::json!({"seed": 5, "resource": user, "ops": ["encrypt"],
                                             "delete_mail": 0.5}),
    );
    assert!(
        !attack["applied"].as_array().unwrap().is_empty(),
        "{attack}"
    );
    let report = t.backup(&user);
    let signals: Vec<&str> = report["resources"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {report}"))
        .iter()
        .map(|f| f["signal"].as_str().unwrap())
        .collect();
    println!("signals after the attack: {signals:?}");
    for s in [
        "ransomware-extension",
        "ransom-note",
        "mail-purged",
        "high-entropy",
    ] {
        assert!(signals.contains(&s), "{s} missing: {report}");
    }
    let f = &report["resources"][0]["findings"][0];
    assert!(!f["examples"].as_array().unwrap().is_empty(), "{f}");
    assert!(f["numbers"]["threshold"].is_number(), "{f}");

    // The point is suspect; the one before it is held, automatically.
    let points = suspects(&t, &user);
    assert_eq!(points.len(), 3, "{points:?}");
    assert!(!points[0].1 && !points[1].1, "{points:?}");
    assert!(points[2].1, "{points:?}");
    assert!(points[2].2.contains(&"ransom-note".to_string()));
    let hold = points[1].3.clone().expect("point 2 held");
    let table = t.ok(&["snapshots", "--resource", &user]);
    assert!(table.contains("SUSPECT: "), "{table}");
    let holds = t.json(&["hold", "list", "--json"]);
    let auto = holds
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hold.as_str())
        .unwrap();
    assert_eq!(auto["automatic"], true, "{auto}");
    assert_eq!(auto["target"]["kind"], "point");
    assert_eq!(auto["target"]["point"], 2);
    assert!(
        auto["reason"].as_str().unwrap().contains("suspect"),
        "{auto}"
    );

    // Retention keeps the clean point whatever the rule says.
    let forget = t.ok(&["forget", "--keep-last", "1"]);
    assert!(
        forget.contains(&format!("spared by legal hold {hold}")),
        "{forget}"
    );
    let left: Vec<i64> = t.points(&user).into_iter().map(|p| p.0).collect();
    assert_eq!(left, vec![2, 3], "{forget}");
}

#[test]
fn ordinary_churn_over_many_runs_raises_no_finding() {
    let t = Tenant::new();
    let users = t.users().join(",");
    t.backup(&users);
    // A few percent of the items a day, every kind of change, for two weeks of runs.
    let runs = 14;
    let mut points = 0;
    let mut findings = Vec::new();
    for day in 0..runs {
        let applied = t.mutate(serde_json::json!({"seed": 100 + day, "count": 12}));
        assert!(!applied["applied"].as_array().unwrap().is_empty());
        let report = t.backup(&users);
        for r in report["resources"].as_array().unwrap() {
            points += 1;
            if let Some(f) = r.get("findings") {
                findings.push(format!("day {day} {}: {f}", r["resource"]));
            }
        }
    }
    println!(
        "false positives: {} findings over {points} restore points ({runs} runs of ordinary churn)",
        findings.len()
    );
    assert!(findings.is_empty(), "{findings:#?}");
    assert!(points >= runs as usize * 3);
}

/// Every file of every snapshot of the repository as the `restic` tool restores it:
/// (snapshot label, path) → bytes' sha256, and the sha256 of files that are the person's
/// (their own snapshots, and messages naming them in From, To or Cc).
type Files = BTreeMap<(String, String), String>;

/// Also the sha256 of every file whose bytes name the person anywhere.
fn restic_files(t: &Tenant, person: &str) -> (Files, BTreeSet<String>, BTreeSet<String>) {
    let repo = t.home.path("repo");
    let restic = |args: &[&str]| {
        let o = std::process::Command::new("restic")
            .args(["-r", s(&repo)])
            .args(args)
            .env("RESTIC_PASSWORD", "repository password")
            .output()
            .expect("the restic command line tool is needed (apt-get install restic)");
        assert!(o.status.success(), "restic {args:?}: {}", stderr(&o));
        o.stdout
    };
    let snaps: Value = serde_json::from_slice(&restic(&["snapshots", "--json"])).unwrap();
    // restic does not show rustic's labels: the resource of each snapshot, from cairn.
    let labels: Vec<(String, String)> = t
        .json(&["snapshots", "--no-catalog", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut files = BTreeMap::new();
    let mut theirs = BTreeSet::new();
    let mut mention = BTreeSet::new();
    let person = person.to_lowercase();
    for snap in snaps.as_array().unwrap() {
        if snap["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "cairn-record"))
        {
            continue;
        }
        let id = snap["id"].as_str().unwrap();
        let label = labels
            .iter()
            .find(|(short, _)| id.starts_with(short.as_str()))
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| panic!("snapshot {id} unknown to cairn snapshots --no-catalog"));
        let dir = t.home.path(&format!("restic/{id}"));
        restic(&["restore", id, "--target", s(&dir)]);
        // Archive items are full-fidelity streams whose strings are UTF-16LE.
        let wide: Vec<u8> = person.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut named: BTreeSet<String> = BTreeSet::new();
        let mut sidecars: Vec<(String, String)> = Vec::new();
        for e in walkdir(&dir) {
            let bytes = std::fs::read(&e).unwrap();
            let sha = hex::encode(sha2::Sha256::digest(&bytes));
            let rel = e.strip_prefix(&dir).unwrap().display().to_string();
            let head_end = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or(bytes.len());
            let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
            let names_them = rel.ends_with(".eml")
                && head.lines().any(|l| {
                    (l.starts_with("from:") || l.starts_with("to:") || l.starts_with("cc:"))
                        && l.contains(&person)
                });
            let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
            if String::from_utf8_lossy(&bytes)
                .to_lowercase()
                .contains(&person)
                || lower.windows(wide.len()).any(|w| w == wide.as_slice())
            {
                mention.insert(sha.clone());
                named.insert(rel.clone());
            }
            if let Some(stem) = rel.strip_suffix(".meta.json") {
                sidecars.push((stem.to_string(), sha.clone()));
            }
            if label.eq_ignore_ascii_case(&person) || names_them {
                theirs.insert(sha.clone());
            }
            files.insert((format!("{label} {id}"), rel), sha);
        }
        // A sidecar goes with its item.
        for (stem, sha) in sidecars {
            if named.contains(&format!("{stem}.eml")) || named.contains(&format!("{stem}.fts")) {
                mention.insert(sha);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    (files, theirs, mention)
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn erasure_leaves_nothing_of_the_person_in_any_restore_point_and_the_rest_unchanged() {
    let t = Tenant::new();
    let users = t.users();
    let (person, others) = (users[0].clone(), users[1..].join(","));
    let all = users.join(",");
    t.backup(&all);
    t.mutate(serde_json::json!({"seed": 7, "count": 10}));
    t.backup(&all);
    let (before, theirs, mention) = restic_files(&t, &person);
    // Others' mailboxes hold messages from or to the person: the test means something.
    let in_others: Vec<Value> = found(&t, &["--from", &person])
        .into_iter()
        .chain(found(&t, &["--to", &person]))
        .filter(|h| {
            !h["resource"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(&person)
        })
        .collect();
    assert!(
        !in_others.is_empty(),
        "no message of {person} in other mailboxes"
    );
    let own_points = t.points(&person).len();
    assert_eq!(own_points, 2);

    // A dry run changes nothing and says what would go.
    let dry = t.json(&[
        "erase",
        "--subject",
        &person,
        "--match",
        "owner,sender,recipient",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry["status"], "planned", "{dry}");
    let snapshots = || t.ok(&["snapshots", "--no-catalog", "--json"]);
    let unchanged = snapshots();
    assert!(unchanged.contains(&person), "{unchanged}");

    // Held data is refused, naming the hold; nothing changes.
    let other = in_others[0]["resource"].as_str().unwrap().to_string();
    let placed = t.ok(&[
        "hold",
        "add",
        "--resource",
        &format!("{other}@1"),
        "--reason",
        "case 7",
    ]);
    let hold = placed
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':');
    let refused = t.home.run(&[
        "erase",
        "--subject",
        &person,
        "--match",
        "owner,sender,recipient",
        "--execute",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains(hold), "{}", stderr(&refused));
    assert_eq!(snapshots(), unchanged);
    t.ok(&["hold", "release", hold, "--reason", "case closed"]);

    let done = t.json(&[
        "erase",
        "--subject",
        &person,
        "--match",
        "owner,sender,recipient",
        "--execute",
        "--json",
    ]);
    assert_eq!(done["status"], "complete", "{done}");
    assert!(done["items"].as_u64().unwrap() > 0, "{done}");
    assert!(done["signature"].as_str().unwrap().len() == 64, "{done}");

    // Nothing of theirs in any restore point, as the restic tool reads the repository
    // (content that another person's restore points hold the same, byte for byte, such as
    // default mailbox settings, is theirs too and stays).
    let (after, _, _) = restic_files(&t, &person);
    let shared: BTreeSet<&String> = before
        .iter()
        .filter(|((label, _), _)| !label.to_lowercase().starts_with(&person.to_lowercase()))
        .map(|(_, sha)| sha)
        .collect();
    let left: Vec<&(String, String)> = after
        .iter()
        .filter(|(_, sha)| theirs.contains(*sha) && !shared.contains(sha))
        .map(|(k, _)| k)
        .collect();
    assert!(left.is_empty(), "still there: {left:?}");
    assert!(
        !after
            .keys()
            .any(|(l, _)| l.to_lowercase().starts_with(&person.to_lowercase())),
        "their own restore points are gone"
    );
    // The catalog agrees: no hit from or to them, no restore point of theirs.
    assert!(found(&t, &["--from", &person]).is_empty());
    assert!(found(&t, &["--to", &person]).is_empty());
    assert!(t.points(&person).is_empty());
    // Everyone else's data is as it was, apart from items that name the person.
    let of_others = |files: &Files| -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for ((label, _), sha) in files {
            let resource = label.split(' ').next().unwrap().to_string();
            if others.split(',').any(|o| o.eq_ignore_ascii_case(&resource)) {
                out.entry(resource).or_default().insert(sha.clone());
            }
        }
        out
    };
    let (was, is) = (of_others(&before), of_others(&after));
    assert_eq!(
        was.keys().collect::<Vec<_>>(),
        is.keys().collect::<Vec<_>>()
    );
    let mut removed = 0;
    for (resource, had) in &was {
        let has = &is[resource];
        let added: Vec<&String> = has.difference(had).collect();
        assert!(added.is_empty(), "{resource}: {} new contents", added.len());
        let gone: Vec<&String> = had.difference(has).collect();
        let innocent = gone.iter().filter(|s| !mention.contains(**s)).count();
        assert_eq!(
            innocent, 0,
            "{resource}: {innocent} contents not naming the person went"
        );
        removed += gone.len();
    }
    assert!(removed > 0, "messages of the person left others' mailboxes");

    // The signed record is in the repository.
    let records = t.json(&["erase", "--list", "--json"]);
    assert_eq!(records.as_array().unwrap().len(), 1, "{records}");
    assert_eq!(records[0]["subject"], person.as_str());
    assert_eq!(records[0]["signature_valid"], true, "{records}");
    assert!(records[0].to_string().len() < 64 * 1024);
}

#[test]
fn item_level_retention_removes_exactly_the_expired_items_and_restic_still_reads_the_repository() {
    let t = Tenant::new();
    let user = t.users()[2].clone();
    t.backup(&user);
    t.mutate(serde_json::json!({"seed": 11, "count": 6, "resource": user,
                                "ops": ["delete", "modify"]}));
    t.backup(&user);
    // Each item's date as the rule reads it: its newest version's date, else its time.
    let mut dates: BTreeMap<String, (chrono::DateTime<chrono::Utc>, i64, String, bool)> =
        BTreeMap::new();
    for h in found(&t, &["--resource", &user]) {
        if h["kind"] == "folder" {
            continue;
        }
        let when = h["date"].as_str().or(h["mtime"].as_str()).unwrap();
        let when = chrono::DateTime::parse_from_rfc3339(when).unwrap().to_utc();
        let first = h["first"]["seq"].as_i64().unwrap();
        let id = h["id"].as_str().unwrap().to_string();
        let path = h["path"].as_str().unwrap().to_string();
        if dates.get(&id).is_none_or(|d| d.1 < first) {
            dates.insert(id, (when, first, path, h["current"] == true));
        }
    }
    // A span that cuts the items in two, with no item within two days of the cut.
    let now = chrono::Utc::now();
    let mut ages: Vec<i64> = dates.values().map(|d| (now - d.0).num_hours()).collect();
    ages.sort();
    let span = (ages[ages.len() / 2] / 24..)
        .find(|d| ages.iter().all(|a| (a - d * 24).abs() > 48))
        .unwrap();
    let expired: BTreeSet<&String> = dates
        .iter()
        .filter(|(_, d)| (now - d.0).num_hours() > span * 24)
        .map(|(id, _)| id)
        .collect();
    assert!(
        !expired.is_empty() && expired.len() < dates.len(),
        "{span} days"
    );

    let out = t.ok(&["forget", "--keep-items", &format!("{span}d")]);
    assert!(
        out.contains(&format!("{} items removed", expired.len())),
        "{out}"
    );
    // Exactly the expired items are gone from every restore point; the rest are there.
    let left: BTreeSet<String> = found(&t, &["--resource", &user])
        .into_iter()
        .filter(|h| h["kind"] != "folder")
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = dates
        .keys()
        .filter(|id| !expired.contains(id))
        .cloned()
        .collect();
    assert_eq!(left, expected);
    assert_eq!(t.points(&user).len(), 2);
    // The restic tool reads the rewritten repository, and none of the expired items.
    let (files, _, _) = restic_files(&t, &user);
    let gone: BTreeSet<&String> = dates
        .iter()
        .filter(|(id, _)| expired.contains(id))
        .map(|(_, d)| &d.2)
        .collect();
    let still: Vec<&String> = files
        .keys()
        .map(|(_, p)| p)
        .filter(|p| gone.contains(p))
        .collect();
    assert!(still.is_empty(), "{still:?}");
    assert!(files.keys().any(|(_, p)| p.ends_with(".eml")));

    // What exists only in the backup: the messages deleted in Microsoft 365 that the
    // rule left, each with its age and the rule that keeps it.
    let only = t.json(&[
        "only-in-backup",
        "--resource",
        &user,
        "--keep-items",
        "7y",
        "--items-from",
        "deleted",
        "--json",
    ]);
    let deleted_kept = dates
        .iter()
        .filter(|(id, d)| !d.3 && !expired.contains(id))
        .count();
    assert!(deleted_kept > 0, "no deleted message outlived the rule");
    assert_eq!(only.as_array().unwrap().len(), deleted_kept, "{only}");
    for i in only.as_array().unwrap() {
        assert_eq!(i["age_days"], 0, "{i}");
        assert!(
            i["kept_by"]
                .as_str()
                .unwrap()
                .starts_with("item rule 7y from deleted"),
            "{i}"
        );
        assert!(
            !expired.contains(&i["item"].as_str().unwrap().to_string()),
            "{i}"
        );
    }
}

/// Makes a file undeletable for the test's length, as Object Lock makes an object (needs
/// root and a file system with attributes).
struct Locked(std::path::PathBuf);

impl Locked {
    fn new(path: std::path::PathBuf) -> Locked {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "chattr +i is needed (root, a file system with attributes)"
        );
        Locked(path)
    }

    fn unlock(&self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.unlock();
    }
}

#[test]
fn an_erasure_the_storage_refuses_is_pending_and_a_later_prune_completes_it() {
    let t = Tenant::new();
    let person = t.users()[1].clone();
    t.backup(&person);
    let (_, snapshot) = t.points(&person).pop().unwrap();
    let file = std::fs::read_dir(t.home.path("repo/snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&snapshot)
        })
        .unwrap();
    let lock = Locked::new(file);

    let record = t.json(&["erase", "--subject", &person, "--execute", "--json"]);
    assert_eq!(record["status"], "pending", "{record}");
    assert!(record["points"][0]["pending"].is_string(), "{record}");
    let listed = t.json(&["erase", "--list", "--json"]);
    assert_eq!(listed[0]["status"], "pending");

    // Retention over: the next prune completes the erasure and says so.
    lock.unlock();
    let pruned = t.ok(&["prune"]);
    let id = record["id"].as_str().unwrap();
    assert!(
        pruned.contains(&format!("erasure {id} completed")),
        "{pruned}"
    );
    let listed = t.json(&["erase", "--list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["status"], "complete", "{listed}");
    assert_eq!(listed[0]["signature_valid"], true);
    assert!(t.points(&person).is_empty());
    let left = t.ok(&["snapshots", "--no-catalog", "--json"]);
    assert!(!left.contains(&person), "{left}");
}

#[test]
fn a_new_rule_forwarding_mail_outside_makes_the_point_suspect() {
    let t = Tenant::new();
    let user = t.users()[2].clone();
    let domain = user.rsplit_once('@').unwrap().1.to_string();
    t.backup(&user);

    // A rule forwarding to a colleague is ordinary.
    let inside = t.mutate(
        serde_json::json!({"resource": user, "ops": ["forward-rule"],
        "to": format!("assistant@{domain}")}),
    );
    assert_eq!(inside["applied"][0]["op"], "forward-rule", "{inside}");
    let report = t.backup(&user);
    assert!(report["resources"][0].get("findings").is_none(), "{report}");

    // One forwarding outside is the sign of a taken account.
    let outside = t.mutate(
        serde_json::json!({"resource": user, "ops": ["forward-rule"],
        "to": "drop@exfil.example"}),
    );
    assert_eq!(outside["applied"][0]["op"], "forward-rule", "{outside}");
    let report = t.backup(&user);
    let findings = report["resources"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {report}"));
    let f = findings
        .iter()
        .find(|f| f["signal"] == "forwarding-rule")
        .unwrap_or_else(|| panic!("no forwarding-rule finding: {report}"));
    assert_eq!(f["numbers"]["rules"], 1.0, "{f}");
    let example = f["examples"][0].as_str().unwrap();
    assert!(example.contains("drop@exfil.example"), "{f}");
    assert!(!example.contains(&domain), "{f}");
    let points = suspects(&t, &user);
    assert_eq!(points.len(), 3, "{points:?}");
    assert!(points[2].1 && points[2].2.contains(&"forwarding-rule".to_string()));
    assert!(
        points[1].3.is_some(),
        "the last clean point is held: {points:?}"
    );

    // Unchanged, the rule is not counted again.
    let report = t.backup(&user);
    assert!(report["resources"][0].get("findings").is_none(), "{report}");
}
