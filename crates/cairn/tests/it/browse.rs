//! `snapshots`, `ls`, `find` and `export` through the binary, over a repository and catalog
//! that the backup engine wrote from the simulator: what they show and write is compared
//! with the simulator's own manifest, and exports are read back by independent parsers
//! (Python's `mailbox`, the `ical` crate, the `zip` crate).

use super::home;
use cairn_backup::{BackupOptions, Engine, Silent};
use cairn_catalog::{Catalog, ItemRow, SqliteCatalog};
use cairn_sim::TenantSpec;
use cairn_testkit::{Home, SimTenant, Workspace};
use futures::TryStreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

const PASSWORD: &str = "browse password";

/// One manifest entry: (kind, folder or path, sha256).
type Manifest = BTreeMap<String, (String, String, String)>;

/// A user backed up once or twice: repository, catalog where the CLI looks for it, and what
/// the simulator said the user held at each backup.
struct Fixture {
    ws: Workspace,
    /// Where the commands run, apart from the developer's home and `CAIRN_*` variables.
    home: Home,
    user: String,
    /// The manifest at each backup, by restore point (index 0: point 1).
    manifests: Vec<Manifest>,
    /// Messages of the Inbox at the first backup: id → (subject, sender).
    inbox: BTreeMap<String, (String, String)>,
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// Where `cairn` keeps the catalog and spool of the repository at `location`, relative to
/// its cache directory's parent: `cache/repositories/<hash of the location>`.
fn state_dir(location: &str) -> PathBuf {
    let key = hex::encode(&sha2::Sha256::digest(location.as_bytes())[..8]);
    Path::new("cache/repositories").join(key)
}

impl Fixture {
    /// Backs up the first user of a small simulated tenant; with `delete`, deletes a few
    /// messages and backs up again.
    fn new(seed: u64, delete: bool) -> Fixture {
        let ws = Workspace::builder()
            .password(PASSWORD)
            .state_dir(state_dir)
            .init();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (user, manifests, inbox) = rt.block_on(backup(&ws, seed, delete));
        Fixture {
            ws,
            home: home(),
            user,
            manifests,
            inbox,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = self.home.cmd();
        c.env("CAIRN_CONFIG", self.ws.path().join("config.toml"))
            .env("CAIRN_REPOSITORY", self.ws.location())
            .env("CAIRN_PASSWORD", PASSWORD)
            .env("CAIRN_CACHE_DIR", self.ws.cache_dir());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("cairn runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "cairn {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn out(&self, name: &str) -> PathBuf {
        self.ws.path().join("exports").join(name)
    }

    /// The catalog, where `cairn` finds it: `<cache>/repositories/<hash of the location>`.
    fn catalog(&self) -> SqliteCatalog {
        let path = self.ws.catalog_path();
        assert!(path.exists(), "{}", path.display());
        SqliteCatalog::open(&path).unwrap()
    }

    /// Manifest entries of one kind at a point: (folder or path, sha256) per id.
    fn of_kind(&self, point: usize, kind: &str) -> BTreeMap<String, (String, String)> {
        self.manifests[point - 1]
            .iter()
            .filter(|(_, v)| v.0 == kind)
            .map(|(id, v)| (id.clone(), (v.1.clone(), v.2.clone())))
            .collect()
    }
}

async fn manifest(sim: &SimTenant, resource: &str) -> Manifest {
    sim.manifest(resource)
        .await
        .into_iter()
        .map(|e| (e.id, (e.kind, e.path, e.sha256)))
        .collect()
}

async fn backup(
    ws: &Workspace,
    seed: u64,
    delete: bool,
) -> (String, Vec<Manifest>, BTreeMap<String, (String, String)>) {
    let sim = SimTenant::start(TenantSpec {
        seed,
        users: 1,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 30,
        events_per_mailbox: 6,
        contacts_per_mailbox: 5,
        files_per_drive: 8,
        max_item_size: 64 * 1024,
        ..TenantSpec::default()
    })
    .await;
    let graph = sim.graph();
    let engine = Arc::new(Engine::new(
        graph.clone(),
        ws.repo.clone(),
        ws.catalog.clone(),
        "contoso",
        BackupOptions::new(ws.spool_dir()),
        Arc::new(Silent),
    ));
    let users = engine.users(&[]).await.unwrap();
    let user = users[0].clone();
    let inbox: BTreeMap<String, (String, String)> = graph
        .items(&format!(
            "/users/{}/mailFolders/inbox/messages?$select=id,subject,from",
            user.id
        ))
        .try_collect::<Vec<Value>>()
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                (
                    m["subject"].as_str().unwrap_or("").to_string(),
                    m["from"]["emailAddress"]["address"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                ),
            )
        })
        .collect();

    let first = engine.run(vec![user.clone()]).await;
    assert!(first.resources[0].ok(), "{:?}", first.resources[0].error);
    let mut manifests = vec![manifest(&sim, &user.id).await];
    if delete {
        let applied = sim
            .mutate(json!({"seed": 3, "count": 4, "resource": user.id,
                           "kinds": ["message"], "ops": ["delete"]}))
            .await;
        assert!(!applied.is_empty(), "{applied:?}");
        let second = engine.run(vec![user.clone()]).await;
        assert!(second.resources[0].ok(), "{:?}", second.resources[0].error);
        manifests.push(manifest(&sim, &user.id).await);
    }
    sim.stop().await;
    (user.name, manifests, inbox)
}

#[test]
fn snapshots_ls_and_find_read_the_catalog() {
    let f = Fixture::new(21, true);
    let user = f.user.as_str();

    // Restore points per resource, with what they hold.
    let points = f.json(&["snapshots", "--json", "--resource", user]);
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[0]["point"], 1);
    assert_eq!(points[1]["point"], 2);
    let messages = |i: usize| points[i]["kinds"]["message"].as_u64().unwrap();
    assert_eq!(messages(0) as usize, f.of_kind(1, "message").len());
    assert_eq!(messages(1) as usize, f.of_kind(2, "message").len());
    assert!(messages(1) < messages(0));
    let text = f.ok(&["snapshots"]);
    assert!(
        text.contains(user) && text.contains("2 restore points"),
        "{text}"
    );
    let none = f.json(&["snapshots", "--json", "--until", "2000-01-01"]);
    assert_eq!(none.as_array().unwrap().len(), 0);
    let other = f.json(&["snapshots", "--json", "--tenant", "fabrikam"]);
    assert_eq!(other.as_array().unwrap().len(), 0);
    // The repository's own listing is still there.
    let raw = f.json(&["snapshots", "--json", "--no-catalog"]);
    assert_eq!(raw.as_array().unwrap().len(), 2);

    // ls: the Inbox of point 1, month by month, holds the manifest's Inbox messages, with
    // their subjects.
    let inbox = f.json(&["ls", &format!("{user}@1"), "mail/Inbox", "--json"]);
    assert_eq!(inbox["point"]["seq"], 1);
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    for folder in inbox["folders"].as_array().unwrap() {
        let name = folder["name"].as_str().unwrap();
        if name.len() != 7 || !name.starts_with('2') {
            continue; // a subfolder, not a month
        }
        let month = f.json(&[
            "ls",
            &format!("{user}@1"),
            &format!("mail/Inbox/{name}"),
            "--json",
        ]);
        for item in month["items"].as_array().unwrap() {
            assert_eq!(item["kind"], "message");
            listed.insert(
                item["id"].as_str().unwrap().to_string(),
                item["subject"].as_str().unwrap_or("").to_string(),
            );
        }
    }
    let want: BTreeMap<String, String> = f
        .inbox
        .iter()
        .map(|(id, (subject, _))| (id.clone(), subject.clone()))
        .collect();
    assert_eq!(listed, want, "the Inbox as Graph lists it");
    let month = inbox["folders"][0]["name"].as_str().unwrap();
    let text = f.ok(&["ls", user, &format!("mail/Inbox/{month}")]);
    let (_, (subject, _)) = f.inbox.iter().next().unwrap();
    assert!(
        f.inbox.values().any(|(s, _)| text.contains(s.as_str())),
        "ls shows subjects: {text}"
    );
    let top = f.ok(&["ls", user]);
    for dir in ["mail/", "calendar/", "contacts/", "onedrive/"] {
        assert!(top.contains(dir), "{top}");
    }

    // find by subject and sender: the message and the points it is in.
    let (id, (subject2, sender)) = f
        .inbox
        .iter()
        .find(|(id, _)| f.manifests[1].contains_key(*id))
        .unwrap();
    let hits = f.ok(&["find", subject2, "--from", sender, "--json"]);
    let hits: Vec<Value> = hits
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hit = hits
        .iter()
        .find(|h| h["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in {hits:?}"));
    assert_eq!(hit["resource"], user);
    assert_eq!(hit["first"]["seq"], 1);
    assert_eq!(hit["last"]["seq"], 2);
    assert_eq!(hit["current"], true);
    let text = f.ok(&["find", subject2, "--from", sender]);
    assert!(text.contains("points 1..2"), "{text}");
    // Another sender: not found.
    let none = f.ok(&[
        "find",
        subject2,
        "--from",
        "nobody@nowhere.invalid",
        "--json",
    ]);
    assert!(none.trim().is_empty(), "{none}");

    // A message deleted between the backups is still found, last in point 1.
    let gone: Vec<&String> = f.manifests[0]
        .iter()
        .filter(|(id, v)| v.0 == "message" && !f.manifests[1].contains_key(*id))
        .map(|(id, _)| id)
        .collect();
    assert!(!gone.is_empty());
    let all = f.ok(&["find", "--kind", "message", "--resource", user, "--json"]);
    let all: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for id in &gone {
        let h = all
            .iter()
            .find(|h| h["id"] == id.as_str())
            .unwrap_or_else(|| panic!("deleted {id} is found"));
        assert_eq!(h["first"]["seq"], 1);
        assert_eq!(h["last"]["seq"], 1, "{h}");
        assert_eq!(h["current"], false);
    }
    let _ = subject;

    // Mistakes: exit 2 and a hint that lists what exists.
    let bad = f.run(&["ls", "nobody@contoso.example"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("hint:") && err.contains(user), "{err}");
    let bad = f.run(&["ls", &format!("{user}@9")]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hint:") && err.contains("2 restore points"),
        "{err}"
    );
    // Points by snapshot id and by date.
    let snap = points[0]["snapshot"].as_str().unwrap();
    let by_id = f.json(&["ls", &format!("{user}@{}", &snap[..8]), "--json"]);
    assert_eq!(by_id["point"]["seq"], 1);
    let by_date = f.json(&["ls", &format!("{user}@2999-01-01"), "--json"]);
    assert_eq!(by_date["point"]["seq"], 2);
}

/// sha256 of every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn sorted<'a>(v: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    let mut v: Vec<&String> = v.into_iter().collect();
    v.sort();
    v
}

/// The message as an mbox holds it: CRLF → LF, a line end after the last line.
fn mbox_form(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    let mut i = 0;
    while i < msg.len() {
        if !(msg[i] == b'\r' && msg.get(i + 1) == Some(&b'\n')) {
            out.push(msg[i]);
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// sha256 of each message of an mbox, read by Python's `mailbox` (mboxrd quoting undone).
fn python_mbox(path: &Path) -> Vec<String> {
    let script = r#"
import hashlib, mailbox, re, sys
box = mailbox.mbox(sys.argv[1], create=False)
for key in box.iterkeys():
    raw = box.get_bytes(key)
    print(hashlib.sha256(re.sub(rb'(?m)^>(>*From )', rb'\1', raw)).hexdigest())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn exports_equal_what_was_backed_up() {
    let f = Fixture::new(33, false);
    let user = f.user.as_str();
    let messages = f.of_kind(1, "message");

    // EML: the original bytes, in the folder tree.
    let eml = f.out("eml");
    let report = f.json(&[
        "export",
        user,
        "--format",
        "eml",
        "-o",
        eml.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        messages.len(),
        "{report}"
    );
    assert!(report["skipped"].as_array().unwrap().is_empty(), "{report}");
    let files = tree(&eml);
    assert!(files.keys().all(|p| p.ends_with(".eml")));
    assert_eq!(
        sorted(files.values()),
        sorted(messages.values().map(|v| &v.1)),
        "every message byte for byte"
    );
    // Folders preserved: the Inbox's messages are in Inbox/.
    let inbox: Vec<&String> = files
        .iter()
        .filter(|(p, _)| p.starts_with("Inbox/") && p.matches('/').count() == 1)
        .map(|(_, s)| s)
        .collect();
    let want: Vec<&String> = messages
        .values()
        .filter(|v| v.0 == "Inbox")
        .map(|v| &v.1)
        .collect();
    assert_eq!(sorted(inbox), sorted(want));
    // Into a directory that is not empty: refused.
    let again = f.run(&[
        "export",
        user,
        "--format",
        "eml",
        "-o",
        eml.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));

    // MBOX: one file per folder, read by Python's mailbox module.
    let mbox = f.out("mbox");
    let report = f.json(&[
        "export",
        user,
        "mail",
        "--format",
        "mbox",
        "-o",
        mbox.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        messages.len(),
        "{report}"
    );
    let mut folders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, (folder, _)) in &messages {
        let (path, _) = files.iter().find(|(_, s)| **s == messages[id].1).unwrap();
        let bytes = std::fs::read(eml.join(path)).unwrap();
        folders
            .entry(format!("{folder}.mbox"))
            .or_default()
            .push(sha(&mbox_form(&bytes)));
    }
    let written: BTreeSet<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    for (name, mut want) in folders {
        assert!(written.contains(&name), "{name} in {written:?}");
        let mut got = python_mbox(&mbox.join(&name));
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}");
    }

    // ICS: one calendar per file, every event, read by the ical crate.
    let ics = f.out("ics");
    let report = f.json(&[
        "export",
        user,
        "--format",
        "ics",
        "-o",
        ics.to_str().unwrap(),
        "--json",
    ]);
    let events = f.of_kind(1, "event");
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        events.len(),
        "{report}"
    );
    let mut per_calendar: BTreeMap<String, usize> = BTreeMap::new();
    for (cal, _) in events.values() {
        *per_calendar.entry(format!("{cal}.ics")).or_default() += 1;
    }
    let catalog = f.catalog();
    let res = catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, user)
        .unwrap()
        .id;
    let mut rows: Vec<ItemRow> = Vec::new();
    catalog
        .for_each_at(res, 1, "", &mut |r| {
            rows.push(r);
            true
        })
        .unwrap();
    for (name, n) in &per_calendar {
        let bytes = std::fs::read(ics.join(name)).unwrap();
        let cals: Vec<_> = ical::IcalParser::new(&bytes[..])
            .collect::<Result<Vec<_>, _>>()
            .expect("the ical crate parses the export");
        assert_eq!(cals.len(), 1);
        assert_eq!(cals[0].events.len(), *n, "{name}");
        for e in &cals[0].events {
            let summary = e
                .properties
                .iter()
                .find(|p| p.name == "SUMMARY")
                .and_then(|p| p.value.clone())
                .unwrap_or_default();
            assert!(
                rows.iter().any(|r| r.kind == "event"
                    && r.subject
                        .as_deref()
                        .map(|s| s.replace(',', "\\,").replace(';', "\\;"))
                        == Some(summary.clone())),
                "{summary}"
            );
        }
    }

    // VCF: one address book per contact folder, every contact.
    let vcf = f.out("vcf");
    let report = f.json(&[
        "export",
        user,
        "--format",
        "vcf",
        "-o",
        vcf.to_str().unwrap(),
        "--json",
    ]);
    let contacts = f.of_kind(1, "contact");
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        contacts.len(),
        "{report}"
    );
    let mut cards = 0;
    for (path, _) in tree(&vcf) {
        let bytes = std::fs::read(vcf.join(&path)).unwrap();
        let parsed: Vec<_> = ical::VcardParser::new(&bytes[..])
            .collect::<Result<Vec<_>, _>>()
            .expect("the ical crate parses the vCards");
        for c in &parsed {
            assert!(c.properties.iter().any(|p| p.name == "FN"));
        }
        cards += parsed.len();
    }
    assert_eq!(cards, contacts.len());

    // Files: the drive as a tree, and as a zip, equal to the manifest.
    let drive = f.of_kind(1, "file");
    let want = sorted(drive.values().map(|v| &v.1));
    let out = f.out("files");
    let report = f.json(&[
        "export",
        user,
        "onedrive",
        "--format",
        "files",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        drive.len(),
        "{report}"
    );
    let got = tree(&out);
    assert_eq!(sorted(got.values()), want);
    for (path, _) in drive.values() {
        let rel = path.trim_start_matches("OneDrive/");
        assert!(
            got.contains_key(&format!("onedrive/{rel}")),
            "{rel} in {got:?}"
        );
    }
    let zip_path = f.out("drive.zip");
    std::fs::create_dir_all(zip_path.parent().unwrap()).unwrap();
    f.ok(&[
        "export",
        user,
        "onedrive",
        "--format",
        "files",
        "--zip",
        "-o",
        zip_path.to_str().unwrap(),
    ]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut in_zip = Vec::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        if e.is_dir() {
            continue;
        }
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut b).unwrap();
        let name = e.name().unwrap().to_string();
        assert!(!name.split('/').any(|c| c == ".."), "{name}");
        in_zip.push(sha(&b));
    }
    in_zip.sort();
    assert_eq!(in_zip.iter().collect::<Vec<_>>(), want);
    // mbox into a zip is refused: it appends per folder.
    let bad = f.run(&[
        "export",
        user,
        "--format",
        "mbox",
        "--zip",
        "-o",
        f.out("x").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// The subject of every message exported as EML (the original bytes), read by mail-parser.
fn eml_subjects(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = tree(dir)
        .keys()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(rel)).unwrap();
            mail_parser::MessageParser::default()
                .parse(&bytes)
                .and_then(|m| m.subject().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_pst_export_is_read_by_three_readers() {
    // Seed 38: the user has an in-place archive, exported beside the mailbox.
    let f = Fixture::new(38, false);
    let user = f.user.as_str();
    // Mail: the mailbox's messages and the in-place archive's items.
    let (messages, events, contacts) = (
        f.of_kind(1, "message").len() + f.of_kind(1, "archiveItem").len(),
        f.of_kind(1, "event").len(),
        f.of_kind(1, "contact").len(),
    );
    assert!(
        !f.of_kind(1, "archiveItem").is_empty(),
        "the user has an archive"
    );
    assert!(messages > 0 && events > 0 && contacts > 0);

    let pst = f.out("mailbox.pst");
    let report = f.json(&[
        "export",
        user,
        "--format",
        "pst",
        "-o",
        pst.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        messages + events + contacts,
        "{report}"
    );
    assert!(report["skipped"].as_array().unwrap().is_empty(), "{report}");
    // Never over an existing file.
    let again = f.run(&[
        "export",
        user,
        "--format",
        "pst",
        "-o",
        pst.to_str().unwrap(),
    ]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        cairn_testkit::stderr(&again)
    );

    // What the messages' subjects are: the EML export (byte for byte the manifest's MIME).
    let eml = f.out("eml");
    f.ok(&[
        "export",
        user,
        "--format",
        "eml",
        "-o",
        eml.to_str().unwrap(),
    ]);
    let want = eml_subjects(&eml);
    assert_eq!(want.len(), messages);
    let mail_folders: BTreeSet<Vec<String>> = tree(&eml)
        .keys()
        .map(|rel| {
            let parts: Vec<String> = rel.split('/').map(str::to_string).collect();
            // <folder…>/<file>.eml
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    let of_mail = |t: &BTreeMap<Vec<String>, Vec<String>>| -> Vec<String> {
        let mut v: Vec<String> = t
            .iter()
            .filter(|(k, _)| mail_folders.contains(*k))
            .flat_map(|(_, v)| v.clone())
            .collect();
        v.sort();
        v
    };
    let count = |t: &BTreeMap<Vec<String>, Vec<String>>| t.values().map(Vec::len).sum::<usize>();

    // Microsoft's outlook-pst crate: the folder tree, every item, the messages' subjects.
    let read = cairn_testkit::pst::read_tree(&pst);
    assert_eq!(count(&read), messages + events + contacts, "{read:?}");
    assert_eq!(of_mail(&read), want, "outlook-pst");

    // readpst (libpst).
    let out = f.out("readpst");
    let read = cairn_testkit::pst::readpst(&pst, &out);
    assert_eq!(count(&read), messages + events + contacts, "{read:?}");
    assert_eq!(of_mail(&read), want, "readpst");

    // pffexport (libpff), which drops characters outside the BMP.
    let out = f.out("pffexport");
    let read = cairn_testkit::pst::pffexport(&pst, &out);
    assert_eq!(count(&read), messages + events + contacts, "{read:?}");
}

#[test]
fn names_from_the_catalog_cannot_escape_the_output() {
    let f = Fixture::new(44, false);
    let user = f.user.as_str();
    // A version whose path climbs out, as a damaged or hostile catalog could hold.
    let catalog = f.catalog();
    let res = catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, user)
        .unwrap()
        .id;
    let latest = catalog.points(res).unwrap().pop().unwrap();
    let mut any_file = None;
    catalog
        .for_each_at(res, latest.seq, "onedrive/", &mut |r| {
            if r.kind == "file" {
                any_file = Some(r);
            }
            any_file.is_none()
        })
        .unwrap();
    let mut evil = any_file.unwrap();
    evil.item = "evil".into();
    evil.path = "onedrive/../../../escaped.txt".into();
    evil.name = Some("../escaped.txt".into());
    catalog.stage_put(res, &evil).unwrap();
    catalog
        .commit(
            res,
            &latest.snapshot,
            latest.time + chrono::Duration::seconds(1),
        )
        .unwrap();
    drop(catalog);

    for zip in [false, true] {
        let out = f.out(if zip { "evil.zip" } else { "evil" });
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let mut args = vec![
            "export",
            user,
            "--format",
            "files",
            "-o",
            out.to_str().unwrap(),
            "--json",
        ];
        if zip {
            args.push("--zip");
        }
        let report = f.json(&args);
        assert!(report["written"].as_u64().unwrap() > 0, "{report}");
        for up in [
            f.ws.path().join("escaped.txt"),
            f.ws.path().join("exports/escaped.txt"),
            out.join("../escaped.txt"),
            PathBuf::from("/escaped.txt"),
        ] {
            assert!(!up.exists(), "{} was written", up.display());
        }
        if !zip {
            for p in tree(&out).keys() {
                assert!(!p.split('/').any(|c| c == ".."), "{p}");
            }
        }
        let skipped = report["skipped"].as_array().unwrap();
        let written_inside = !zip && tree(&out).keys().any(|p| p.ends_with("escaped.txt"));
        assert!(
            written_inside || skipped.iter().any(|s| s["item"] == "evil"),
            "the hostile path was either written inside or reported: {report}"
        );
    }
    // A path argument that climbs selects nothing.
    let out = f.out("climb");
    let o = f.run(&[
        "export",
        user,
        "../x",
        "--format",
        "files",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success());
    assert!(!f.ws.path().join("x").exists());
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `cairn snapshots | head -1`: the pipe closes before everything is written.
    let f = Fixture::new(22, false);
    for args in [&["snapshots"][..], &["ls", &f.user, "--recursive"]] {
        let mut child = f
            .cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes anything: every write to stdout fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.trim().is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn a_repair_keeps_the_catalog_on_the_rewritten_restore_points() {
    let f = Fixture::new(23, false);
    // Lose the largest pack: the restore point refers to data that is gone.
    std::fs::remove_file(largest_pack(&f)).unwrap();
    let before: Value = f.json(&["snapshots", "--json"]);
    let old = before[0]["snapshot"].as_str().unwrap().to_string();

    f.ok(&["repair", "index"]);
    let out = f.ok(&["repair", "snapshots"]);
    assert!(
        out.contains("1 restore points now read from their repaired snapshot"),
        "{out}"
    );
    // The catalog names the snapshot the repository now has, and browsing goes on.
    let after: Value = f.json(&["snapshots", "--json"]);
    let rows = after.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{after}");
    let new = rows[0]["snapshot"].as_str().unwrap();
    assert_ne!(new, old, "{after}");
    assert_eq!(rows[0]["in_repository"], true, "{after}");
    let listed: Value = f.json(&["snapshots", "--json", "--no-catalog"]);
    assert_eq!(listed[0]["id"].as_str(), Some(new), "{listed}");
    f.ok(&["ls", &f.user]);
}

/// The largest pack file of the fixture's repository.
fn largest_pack(f: &Fixture) -> PathBuf {
    let mut packs: Vec<(u64, PathBuf)> = Vec::new();
    let mut dirs = vec![f.ws.path().join("repo/data")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                packs.push((std::fs::metadata(&p).unwrap().len(), p));
            }
        }
    }
    packs.sort();
    packs.pop().expect("a pack").1
}

#[test]
fn a_restore_drill_reads_back_and_names_what_a_damaged_pack_lost() {
    let f = Fixture::new(24, false);
    let report = f.json(&["verify", "--sample", "100%", "--json"]);
    // The manifest's items, and the To Do tasks, inbox rules and mailbox settings (which the
    // simulator lists only in its extended manifest).
    let cat = f.catalog();
    let res = cat
        .resource("contoso", cairn_catalog::ResourceKind::User, &f.user)
        .unwrap()
        .id;
    let counts = cat.count_at(res, 1).unwrap();
    let extras: u64 = ["todoTask", "messageRule", "mailboxSettings"]
        .iter()
        .map(|k| counts.get(*k).copied().unwrap_or(0))
        .sum();
    let items = f.manifests[0].len() as u64 + extras;
    assert_eq!(report["points"], 1, "{report}");
    assert_eq!(report["checked"].as_u64().unwrap(), items, "{report}");
    assert_eq!(report["failed"], json!([]), "{report}");
    // A flipped byte in the middle of the largest pack: the drill fails, naming items.
    let pack = largest_pack(&f);
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();
    let out = f.run(&["verify", "--sample", "100%"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert!(!failed.is_empty(), "{text}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains(&f.user) && l.contains(" point 1 ")),
        "{text}"
    );
    assert!(
        failed.len() < items as usize,
        "only what the pack held: {text}"
    );
}
