//! A shared catalog on PostgreSQL (`--catalog postgres://…`): what one machine backs up,
//! another with the same catalog URL browses, searches and restores from; a rebuild fills an
//! empty schema from the repository. PostgreSQL runs at 127.0.0.1:5432 (trust auth, database
//! `test`); each test uses its own schema and drops it.

use super::compliance::Tenant;
use cairn_testkit::{stderr, stdout};
use serde_json::Value;
use std::process::Command;

/// The server the tests use (`CAIRN_TEST_PG_URL` points elsewhere).
pub(crate) fn server() -> String {
    std::env::var("CAIRN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of its own, dropped when the test ends.
pub(crate) struct Schema(pub String);

impl Schema {
    pub fn new(test: &str) -> Schema {
        Schema(format!("{test}_{:08x}", rand_suffix()))
    }

    pub fn url(&self) -> String {
        format!("{}?schema={}", server(), self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &server(),
                "-qc",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0),
            ])
            .output();
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

/// `cairn ARGS` with the shared catalog (and, for "another machine", another cache
/// directory); the output, asserting success.
fn with(t: &Tenant, catalog: &str, cache: Option<&std::path::Path>, args: &[&str]) -> String {
    let mut c = t.home.cmd();
    c.args(args).env("CAIRN_CATALOG", catalog);
    if let Some(dir) = cache {
        c.env("CAIRN_CACHE_DIR", dir);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "cairn {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn a_backup_into_a_postgres_catalog_is_browsed_and_restored_from_another_machine() {
    let t = Tenant::new();
    let schema = Schema::new("cli_shared");
    let url = schema.url();
    let users = t.users();
    let who = format!("{},{}", users[0], users[1]);
    let report: Value = serde_json::from_str(&with(
        &t,
        &url,
        None,
        &[
            "backup", "--users", &who, "--groups", "none", "--sites", "none", "--json",
        ],
    ))
    .unwrap();
    assert_eq!(report["resources"].as_array().unwrap().len(), 2, "{report}");

    // This machine has no catalog of its own: the points live in PostgreSQL only.
    let local = t.home.run(&["ls", &users[0]]);
    assert!(!local.status.success(), "{}", stdout(&local));
    assert!(stderr(&local).contains("no catalog"), "{}", stderr(&local));

    // Another machine (another cache directory) with the same catalog sees them.
    let elsewhere = tempfile::tempdir().unwrap();
    let there = Some(elsewhere.path());
    let points = |catalog: &str| -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        for u in &users[..2] {
            let v: Value = serde_json::from_str(&with(
                &t,
                catalog,
                there,
                &["snapshots", "--resource", u, "--json"],
            ))
            .unwrap();
            for p in v.as_array().unwrap() {
                out.push((
                    u.clone(),
                    p["point"].as_i64().unwrap(),
                    p["snapshot"].as_str().unwrap().to_string(),
                ));
            }
        }
        out
    };
    let before = points(&url);
    assert_eq!(before.len(), 2, "{before:?}");

    // Search, then restore a message found by it into a folder.
    let listing = with(&t, &url, there, &["ls", &users[0], "mail/Inbox", "--json"]);
    let first: Value = serde_json::from_str(listing.lines().next().expect("an Inbox")).unwrap();
    let path = first["path"].as_str().unwrap().to_string();
    let subject = first["subject"].as_str().unwrap_or_default().to_string();
    if !subject.is_empty() {
        let hits = with(&t, &url, there, &["find", "--json", &subject]);
        assert!(hits.lines().count() >= 1, "{hits}");
    }
    let restored = with(
        &t,
        &url,
        there,
        &[
            "restore",
            &users[0],
            &path,
            "--target",
            "folder:From shared catalog",
            "--json",
        ],
    );
    let r: Value = serde_json::from_str(&restored).unwrap();
    assert!(r.to_string().contains("restored"), "{r}");

    // A rebuild fills an empty schema with the same points; a full one is refused.
    let refused = {
        let mut c = t.home.cmd();
        c.args(["catalog", "rebuild"]).env("CAIRN_CATALOG", &url);
        c.output().unwrap()
    };
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("new schema"),
        "{}",
        stderr(&refused)
    );
    let fresh = Schema::new("cli_rebuilt");
    with(&t, &fresh.url(), None, &["catalog", "rebuild"]);
    assert_eq!(points(&fresh.url()), before);
}
