//! Two tenants in one repository and catalog, as a service provider runs Cairn for several
//! customers. Both simulated tenants start from the same seed, so their users share names:
//! every command given `--tenant` must read and change that tenant's restore points and
//! Microsoft 365 data only, and a name without a tenant must be refused, never settled by
//! whichever tenant sorts first.

use super::config::s;
use super::home;
use cairn_sim::TenantSpec;
use cairn_testkit::{SimTenant, ok, stderr, stdout};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// (folder, sha256) of each message of a user, counted: restored messages get new ids, so
/// mailboxes are compared by what they hold.
type Messages = BTreeMap<(String, String), usize>;

/// Each tenant: the same seed, so both have the same users.
fn spec() -> TenantSpec {
    TenantSpec {
        seed: 77,
        users: 2,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 24,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..TenantSpec::default()
    }
}

async fn messages(t: &SimTenant, user_id: &str) -> Messages {
    let mut out = Messages::new();
    for e in t.manifest(user_id).await {
        if e.kind == "message" {
            *out.entry((e.path, e.sha256)).or_default() += 1;
        }
    }
    out
}

async fn mutate(t: &SimTenant, user_id: &str, op: &str, count: u32) {
    let applied = t
        .mutate(json!({"seed": 9, "count": count, "resource": user_id,
                       "kinds": ["message"], "ops": [op]}))
        .await;
    assert!(!applied.is_empty(), "{applied:?}");
}

#[test]
fn commands_given_a_tenant_touch_only_that_tenant() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = rt.block_on(async {
        (
            SimTenant::start(spec()).await,
            SimTenant::start(spec()).await,
        )
    });
    let home = home();
    for (name, t) in [("sim", &a), ("zeta", &b)] {
        let c = t.config();
        let secret = home.write(&format!("secrets/{name}"), &c.client_secret);
        let url = t.url();
        ok(&home
            .cmd()
            .args(["tenant", "add", name, "--tenant-id", &c.tenant_id])
            .args([
                "--client-id",
                &c.client_id,
                "--client-secret-file",
                s(&secret),
            ])
            .args(["--graph-url", &url, "--login-url", &url])
            .output()
            .unwrap());
    }
    super::config::init_repository(&home, "two tenants");
    let users: Value = serde_json::from_str(&stdout(&home.run(&[
        "graph",
        "get",
        "/users?$select=id,userPrincipalName",
        "--tenant",
        "zeta",
    ])))
    .unwrap();
    let upn = users["value"][0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_string();
    let id = users["value"][0]["id"].as_str().unwrap().to_string();

    // Tenant `sim` gets messages `zeta` never had; then both are backed up twice.
    rt.block_on(mutate(&a, &id, "create", 5));
    let backup = |tenant: &str| {
        ok(&home
            .cmd()
            .args(["backup", "--tenant", tenant, "--users", &upn])
            .args(["--groups", "none", "--sites", "none", "--services", "mail"])
            .output()
            .unwrap())
    };
    backup("sim");
    backup("zeta");
    let a_before = rt.block_on(messages(&a, &id));
    let b_before = rt.block_on(messages(&b, &id));
    assert_ne!(
        a_before, b_before,
        "the tenants must differ for the test to mean anything"
    );
    rt.block_on(mutate(&b, &id, "delete", 6));
    backup("sim");
    backup("zeta");
    let b_deleted = rt.block_on(messages(&b, &id));
    assert!(b_deleted.values().sum::<usize>() < b_before.values().sum::<usize>());

    // A user the tenant does not have is the user's mistake.
    let nobody = home.run(&[
        "backup",
        "--tenant",
        "zeta",
        "--users",
        "nobody@nowhere.example",
    ]);
    assert_eq!(nobody.status.code(), Some(2), "{}", stderr(&nobody));
    assert!(stderr(&nobody).contains("hint:"), "{}", stderr(&nobody));

    // The tables say whose restore point is whose.
    let table = stdout(&home.run(&["snapshots"]));
    let rows: Vec<&str> = table.lines().filter(|l| l.contains(&upn)).collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(
        rows.iter().filter(|l| l.starts_with("sim ")).count(),
        2,
        "{table}"
    );
    assert_eq!(
        rows.iter().filter(|l| l.starts_with("zeta ")).count(),
        2,
        "{table}"
    );
    assert!(table.contains("4 restore points of 2 resources"), "{table}");

    // Without a tenant, the name is ambiguous: refused, naming both tenants.
    for args in [
        vec!["restore", &upn, "mail/", "--target", "original"],
        vec!["ls", &upn],
        vec!["export", &upn, "mail/", "--format", "eml", "--output", "x"],
        vec!["find", "--resource", &upn],
        vec!["forget", "--keep-last", "1", "--resource", &upn],
    ] {
        let out = home.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("sim") && err.contains("zeta") && err.contains("--tenant"),
            "{args:?}: {err}"
        );
    }

    // ls and find of tenant zeta show zeta's points only.
    let ls: Value = serde_json::from_str(&stdout(&home.run(&[
        "ls",
        &format!("{upn}@1"),
        "--tenant",
        "zeta",
        "--recursive",
        "--json",
    ])))
    .unwrap();
    assert_eq!(ls["tenant"], "zeta");
    let listed = ls["items"].as_array().unwrap();
    let messages_in = |m: &Messages| m.values().sum::<usize>();
    assert_eq!(
        listed.iter().filter(|i| i["kind"] == "message").count(),
        messages_in(&b_before),
        "{ls}"
    );
    let found = stdout(&home.run(&["find", "--tenant", "zeta", "--kind", "message", "--json"]));
    let hits: Vec<Value> = found
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["tenant"] == "zeta"), "{found}");
    assert_eq!(hits.len(), messages_in(&b_before), "{found}");

    // Export of zeta's first point: zeta's messages, none of the ones only `sim` has.
    let out_dir = home.path("export");
    ok(&home
        .cmd()
        .args(["export", &format!("{upn}@1"), "mail/", "--tenant", "zeta"])
        .args(["--format", "eml", "--output", s(&out_dir)])
        .output()
        .unwrap());
    let mut exported = BTreeMap::<String, usize>::new();
    for e in walk(&out_dir) {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(&e).unwrap(),
        ));
        *exported.entry(sha).or_default() += 1;
    }
    let mut expected = BTreeMap::<String, usize>::new();
    for ((_, sha), n) in &b_before {
        *expected.entry(sha.clone()).or_default() += n;
    }
    assert_eq!(
        exported, expected,
        "the export holds zeta's messages exactly"
    );

    // Restore zeta's first point into zeta: zeta's mailbox is whole again, with nothing
    // of sim's; sim's mailbox is untouched.
    let restored = home
        .cmd()
        .args(["restore", &format!("{upn}@1"), "mail/", "--tenant", "zeta"])
        .args(["--target", "original", "--json"])
        .output()
        .unwrap();
    ok(&restored);
    let report: Value = serde_json::from_str(&stdout(&restored)).unwrap();
    assert!(report["restored"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(rt.block_on(messages(&b, &id)), b_before);
    assert_eq!(rt.block_on(messages(&a, &id)), a_before);
    // Without --tenant, a point of the only configured tenant that has the resource is
    // still refused when both have it (checked above); with --tenant sim, sim's own.
    ok(&home
        .cmd()
        .args(["restore", &format!("{upn}@1"), "mail/", "--tenant", "sim"])
        .args(["--target", "original"])
        .output()
        .unwrap());
    assert_eq!(rt.block_on(messages(&a, &id)), a_before);
    assert_eq!(rt.block_on(messages(&b, &id)), b_before);

    // forget --tenant zeta thins zeta's points only.
    ok(&home.run(&["forget", "--keep-last", "1", "--tenant", "zeta"]));
    let table = stdout(&home.run(&["snapshots", "--json"]));
    let rows: Vec<Value> = serde_json::from_str(&table).unwrap();
    let count = |t: &str| rows.iter().filter(|r| r["tenant"] == t).count();
    assert_eq!((count("sim"), count("zeta")), (2, 1), "{table}");
    rt.block_on(async {
        a.stop().await;
        b.stop().await;
    });
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
