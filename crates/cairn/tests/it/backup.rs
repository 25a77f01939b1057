//! `cairn backup` as an administrator runs it: a tenant added to the configuration, a
//! repository initialised, backups with a report, restore points listed.

use super::config::s;
use super::{home, serve};
use cairn_testkit::{ok, stderr, stdout};

#[test]
fn backup_from_the_configuration_reports_per_resource_and_incrementals_fetch_nothing_new() {
    let (_sim, url, tenant, client) = serve();
    let home = home();
    let secret = home.write("secrets/contoso", "s3cret-for-test\n");
    let pw = home.write("secrets/repo", "repository password\n");
    ok(&home
        .cmd()
        .args(["tenant", "add", "contoso", "--tenant-id", &tenant])
        .args(["--client-id", &client, "--client-secret-file", s(&secret)])
        .args(["--graph-url", &url, "--login-url", &url])
        .output()
        .unwrap());
    let repo = home.path("repo");
    ok(&home
        .cmd()
        .args(["init", "--repo", s(&repo), "--password-file", s(&pw)])
        .output()
        .unwrap());
    let users = stdout(&home.run(&["graph", "get", "/users?$select=userPrincipalName"]));
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    let upn = users["value"][0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_string();

    let backup = |extra: &[&str]| {
        home.cmd()
            .args([
                "backup", "--users", &upn, "--groups", "none", "--sites", "none",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = backup(&["--json"]);
    ok(&first);
    let report: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    let r = &report["resources"][0];
    assert_eq!(r["resource"], upn.as_str());
    assert!(r["items"].as_u64().unwrap() > 20, "{r}");
    assert_eq!(r["items"], r["added"]);
    assert!(r["fetched"].as_u64().unwrap() > 0);
    assert!(r["snapshot"].is_string());

    // Nothing changed: a restore point all the same, nothing fetched; the table names the
    // resource.
    let second = backup(&[]);
    ok(&second);
    let table = stdout(&second);
    assert!(table.contains(&upn), "{table}");
    assert!(table.contains("1 resources"), "{table}");
    let line = table.lines().find(|l| l.starts_with(&upn)).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[2..6], ["0", "0", "0", "0"], "{line}");

    let snaps = home.run(&["snapshots"]);
    ok(&snaps);
    assert_eq!(
        stdout(&snaps).lines().filter(|l| l.contains(&upn)).count(),
        2,
        "{}",
        stdout(&snaps)
    );

    // Forgetting a restore point removes it from the catalog too.
    ok(&home.run(&["forget", "--keep-last", "1"]));
    let snaps = home.run(&["snapshots"]);
    ok(&snaps);
    let text = stdout(&snaps);
    let listed: Vec<&str> = text.lines().filter(|l| l.contains(&upn)).collect();
    assert_eq!(listed.len(), 1, "{text}");
    assert!(!listed[0].contains("forgotten"), "{}", listed[0]);

    // The user's mistakes: exit 2 with a hint.
    let none = backup(&["--exclude", "*"]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(stderr(&none).contains("hint:"), "{}", stderr(&none));
    let bad = backup(&["--services", "mail,fax"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("unknown service 'fax'"));
}
