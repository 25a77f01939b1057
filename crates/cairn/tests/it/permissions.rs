//! Least privilege: a read-only backup app backs up, cannot restore, and a restore app
//! does; an app lacking a permission has that service skipped with what to grant.

use super::config::s;
use super::home;
use cairn_sim::TenantSpec;
use cairn_testkit::{Home, SimTenant, ok, stderr, stdout};
use serde_json::Value;

const READ: &[&str] = &[
    "User.Read.All",
    "Group.Read.All",
    "Mail.Read",
    "MailboxSettings.Read",
    "Tasks.Read.All",
    "Calendars.Read",
    "Contacts.Read",
    "Files.Read.All",
    "Sites.Read.All",
    "Team.ReadBasic.All",
    "Channel.ReadBasic.All",
    "ChannelMember.Read.All",
    "TeamMember.Read.All",
    "TeamsTab.Read.All",
    "ChannelMessage.Read.All",
    "Chat.Read.All",
];
const WRITE: &[&str] = &[
    "User.Read.All",
    "Mail.ReadWrite",
    "MailboxSettings.ReadWrite",
    "Tasks.ReadWrite.All",
    "Calendars.ReadWrite",
    "Contacts.ReadWrite",
    "Files.ReadWrite.All",
    "Sites.ReadWrite.All",
    "Teamwork.Migrate.All",
    "Channel.Create",
];

fn add(home: &Home, sim: &SimTenant, name: &str, client: &str, extra: &[&str]) {
    let c = sim.config();
    let secret = home.write(&format!("secrets/{client}"), &format!("{client}-secret"));
    let url = sim.url();
    ok(&home
        .cmd()
        .args([
            "tenant",
            "add",
            name,
            "--tenant-id",
            &c.tenant_id,
            "--force",
        ])
        .args(["--client-id", client, "--client-secret-file", s(&secret)])
        .args(["--graph-url", &url, "--login-url", &url])
        .args(extra)
        .output()
        .unwrap());
}

#[test]
fn a_read_only_backup_app_backs_up_and_only_a_restore_app_restores() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = TenantSpec {
        seed: 53,
        users: 1,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 12,
        events_per_mailbox: 2,
        contacts_per_mailbox: 2,
        files_per_drive: 4,
        items_per_list: 0,
        max_item_size: 8 * 1024,
        ..TenantSpec::default()
    };
    let sim = rt.block_on(SimTenant::start_with(spec, |c| {
        use cairn_sim::config::SimApp;
        c.apps
            .push(SimApp::new("backup-app", "backup-app-secret", READ));
        c.apps
            .push(SimApp::new("restore-app", "restore-app-secret", WRITE));
        c.apps.push(SimApp::new(
            "no-mail-app",
            "no-mail-app-secret",
            &["User.Read.All", "Files.Read.All"],
        ));
    }));
    let home = home();
    add(&home, &sim, "contoso", "backup-app", &[]);
    super::config::init_repository(&home, "least privilege");
    let check = home.run(&["tenant", "check", "contoso"]);
    ok(&check);
    let report = stdout(&check);
    assert!(report.contains("Mail.Read"), "{report}");
    assert!(report.contains("the backup app may not write"), "{report}");
    let users: Value = serde_json::from_str(&stdout(&home.run(&[
        "graph",
        "get",
        "/users?$select=userPrincipalName",
    ])))
    .unwrap();
    let upn = users["value"][0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_string();

    // The read-only app backs up everything.
    let backup = |tenant: &str| {
        home.cmd()
            .args([
                "backup", "--tenant", tenant, "--users", &upn, "--groups", "none",
            ])
            .args(["--sites", "none", "--json"])
            .output()
            .unwrap()
    };
    let out = backup("contoso");
    ok(&out);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let res = &r["resources"][0];
    assert!(res["items"].as_u64().unwrap() > 15, "{res}");
    assert_eq!(res["skipped"], serde_json::json!([]), "{res}");

    // It may not restore: refused before anything is done, with what to set up.
    let restore = || {
        home.cmd()
            .args(["restore", &upn, "mail/Inbox", "--tenant", "contoso"])
            .args(["--target", "folder:Restored", "--json"])
            .output()
            .unwrap()
    };
    let refused = restore();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("no restore app"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("--restore-client-id"),
        "{}",
        stderr(&refused)
    );

    // With a restore app, the restore goes through it.
    let restore_secret = home.write("secrets/restore-app", "restore-app-secret");
    add(
        &home,
        &sim,
        "contoso",
        "backup-app",
        &[
            "--restore-client-id",
            "restore-app",
            "--restore-client-secret-file",
            s(&restore_secret),
        ],
    );
    let done = restore();
    ok(&done);
    let report: Value = serde_json::from_str(&stdout(&done)).unwrap();
    assert!(report["restored"].as_u64().unwrap() > 0, "{report}");

    // An app without Mail.Read: mail skipped with the permission named, files backed up.
    add(&home, &sim, "nomail", "no-mail-app", &[]);
    let out = backup("nomail");
    ok(&out);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let res = &r["resources"][0];
    let skipped = res["skipped"].to_string();
    assert!(
        skipped.contains("\"mail\"") && skipped.contains("Mail.Read"),
        "{res}"
    );
    assert!(skipped.contains("adminconsent"), "{res}");
    assert!(
        res["items"].as_u64().unwrap() >= 4,
        "files are backed up: {res}"
    );
    rt.block_on(sim.stop());
}

/// An app holding `Sites.Selected` backs up exactly the sites granted to it: named sites are
/// looked up one by one, one not granted is refused with what to grant, and "all sites",
/// which it may not list, is refused with a hint.
#[test]
fn sites_selected_backs_up_exactly_the_granted_sites() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = TenantSpec {
        seed: 59,
        users: 1,
        groups: 0,
        sites: 2,
        mail_per_mailbox: 0,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 3,
        items_per_list: 2,
        max_item_size: 4 * 1024,
        ..TenantSpec::default()
    };
    let sim = rt.block_on(SimTenant::start_with(spec, |c| {
        use cairn_sim::config::SimApp;
        c.apps.push(SimApp::new(
            "selected-app",
            "selected-app-secret",
            &["User.Read.All", "Sites.Selected"],
        ));
    }));
    // The administrator's side: list the sites, grant the app the first one.
    let admin = sim.graph();
    let (granted, other) = rt.block_on(async {
        let all = admin
            .get("/sites/getAllSites?$select=id,webUrl")
            .await
            .unwrap();
        let sites: Vec<(String, String)> = all["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["webUrl"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let (id, _) = &sites[0];
        admin
            .send_json(
                reqwest::Method::POST,
                &format!("/sites/{id}/permissions"),
                serde_json::json!({"roles": ["read"], "grantedToIdentities": [{"application": {"id": "selected-app", "displayName": "Cairn backup"}}]}),
            )
            .await
            .unwrap();
        (sites[0].1.clone(), sites[1].1.clone())
    });
    let home = home();
    add(&home, &sim, "contoso", "selected-app", &[]);
    super::config::init_repository(&home, "selected");
    let backup = |sites: &str| {
        home.cmd()
            .args([
                "backup", "--users", "none", "--groups", "none", "--sites", sites, "--json",
            ])
            .output()
            .unwrap()
    };
    let out = backup(&granted);
    ok(&out);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["resource"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n.starts_with(granted.as_str())),
        "{names:?}"
    );
    assert!(r["resources"][0]["items"].as_u64().unwrap() > 0, "{r}");
    let refused = backup(&other);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("Sites.Selected"),
        "{}",
        stderr(&refused)
    );
    let all = backup("all");
    assert_eq!(all.status.code(), Some(2), "{}", stderr(&all));
    assert!(stderr(&all).contains("name the sites"), "{}", stderr(&all));
    rt.block_on(sim.stop());
}
