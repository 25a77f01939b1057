//! The `cairn` binary, driven as a user drives it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod backup;
mod browse;
mod compliance;
mod config;
mod permissions;
mod serve;
mod shared_catalog;
mod teams;
mod tenants;
mod workers;

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// A home of its own for the binary (`HOME`, XDG directories, no `CAIRN_*` variable).
fn home() -> cairn_testkit::Home {
    cairn_testkit::Home::new(env!("CARGO_BIN_EXE_cairn"))
}

/// Kills the child when the test ends, passing or failing.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `cairn sim serve` child and what its banner says: (child, url, tenant id, client id).
fn serve() -> (Child, String, String, String) {
    serve_tenant(&["--users", "3", "--seed", "5"])
}

/// `serve` with these flags describing the tenant.
fn serve_tenant(tenant: &[&str]) -> (Child, String, String, String) {
    let mut child = Child(
        cairn()
            .args(["sim", "serve", "--listen", "127.0.0.1:0"])
            .args(tenant)
            .env("CAIRN_SIM_CLIENT_SECRET", "s3cret-for-test")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cairn runs"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (mut url, mut tenant, mut client) = (None, None, None);
    let start = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let field = |name: &str| {
            line.trim_start()
                .strip_prefix(name)
                .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        };
        url = url.or(field("graph url"));
        tenant = tenant.or(field("tenant id"));
        client = client.or(field("client id"));
        if (url.is_some() && tenant.is_some() && client.is_some())
            || start.elapsed() > Duration::from_secs(30)
        {
            break;
        }
    }
    // Keep reading: the rest of the banner written to a closed pipe would kill the server.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url.unwrap(), tenant.unwrap(), client.unwrap())
}

#[test]
fn sim_serve_works_as_a_standalone_server() {
    let (_child, url, tenant, client) = serve();
    assert!(
        !url.ends_with(":0"),
        "the banner shows the real port: {url}"
    );
    let token_url = format!("{url}/{tenant}/oauth2/v2.0/token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.as_str()),
        ("client_secret", "s3cret-for-test"),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A").replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let token = curl(&["-s", "-X", "POST", &token_url, "-d", &body]);
    let token: serde_json::Value = serde_json::from_str(&token).expect("token JSON");
    let access = token["access_token"].as_str().expect("access token");
    let users = curl(&[
        "-s",
        "-H",
        &format!("Authorization: Bearer {access}"),
        &format!("{url}/v1.0/users"),
    ]);
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    assert_eq!(users["value"].as_array().unwrap().len(), 3);
    // The default secret no longer works when another is configured.
    let wrong = body.replace("s3cret-for-test", "cairn-sim-secret");
    let denied = curl(&["-s", "-X", "POST", &token_url, "-d", &wrong]);
    assert!(denied.contains("invalid_client"), "{denied}");
    assert!(
        !denied.contains("s3cret"),
        "the secret never appears in errors"
    );
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().expect("curl runs");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn demo_runs_on_embedded_defaults() {
    let out = cairn().arg("demo").output().expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("messages in all"), "{stdout}");
    assert!(stdout.contains("incremental backup:"), "{stdout}");
    assert!(stdout.contains("identical to the original"), "{stdout}");
    assert!(
        stdout.contains("the message is back in the Inbox, identical"),
        "{stdout}"
    );
}

#[test]
fn demo_portal_leaves_a_server_to_sign_in_to() {
    let mut child = Child(
        cairn()
            .args(["demo", "--portal"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cairn runs"),
    );
    let pid = child.0.id();
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (mut url, mut who, mut seen) = (None, None, String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(u) = line.strip_prefix("the portal: ") {
            url = Some(u.trim().to_string());
        }
        if let Some(rest) = line.trim_start().strip_prefix("as ") {
            who = rest
                .split_once(" with the password ")
                .map(|(u, p)| (u.to_string(), p.to_string()));
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        seen.contains("the message is back in the Inbox, identical"),
        "{seen}"
    );
    let url = url.unwrap_or_else(|| panic!("the portal's address: {seen}"));
    let (upn, password) = who.unwrap_or_else(|| panic!("a sign-in: {seen}"));
    assert!(upn.contains('@') && !password.is_empty(), "{seen}");
    let url = url.trim_end_matches('/');
    for path in ["/", "/login"] {
        let code = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{url}{path}"),
        ]);
        assert_eq!(code, "200", "{url}{path}");
    }
    drop(child);
    let demo = std::env::temp_dir().join(format!("cairn-demo-{pid}"));
    let _ = std::fs::remove_dir_all(&demo);
    let _ = std::fs::remove_dir_all(format!("{}-portal", demo.display()));
}

#[test]
fn graph_get_prints_json_like_az_rest() {
    let (_child, url, tenant, client) = serve();
    let run = |secret: &str, args: &[&str]| {
        cairn()
            .args(["graph", "get"])
            .args(args)
            .args([
                "--tenant-id",
                &tenant,
                "--client-id",
                &client,
                "--graph-url",
                &url,
                "--login-url",
                &url,
            ])
            .env("CAIRN_CLIENT_SECRET", secret)
            .output()
            .expect("cairn runs")
    };
    let out = run("s3cret-for-test", &["/users", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|u| u["userPrincipalName"].is_string()));
    let one = run("s3cret-for-test", &["/users?$top=1"]);
    let v: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert!(
        v["@odata.nextLink"].is_string(),
        "without --all: the page as Graph sent it"
    );
    // A wrong secret is the user's mistake: exit 2, a hint, and never the secret.
    let bad = run("Wr0ng-secret-xyz", &["/users"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("Wr0ng-secret-xyz"), "{err}");
}

#[test]
fn repository_commands_work_end_to_end() {
    let dir = std::env::temp_dir().join(format!("cairn-cli-repo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pwfile = dir.with_extension("pw");
    std::fs::write(&pwfile, "cli password\n").unwrap();
    let run = |args: &[&str]| {
        cairn()
            .args(args)
            .env("CAIRN_REPOSITORY", &dir)
            .env("CAIRN_PASSWORD_FILE", &pwfile)
            // `init` records the repository in the configuration file: not the user's.
            .env("CAIRN_CONFIG", dir.with_extension("toml"))
            .env_remove("CAIRN_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("cairn runs")
    };
    let out = run(&["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = run(&["init"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "init twice is the user's mistake"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("hint:"));
    // Restore points written through the library, as the backup engine does.
    let repo = cairn_repo::Repo::open(
        cairn_repo::RepoOptions::new(dir.to_str().unwrap(), "cli password").unwrap(),
    )
    .unwrap();
    for (day, who) in [(1, "a@x"), (2, "a@x"), (3, "a@x"), (1, "b@x"), (2, "b@x")] {
        let t = chrono::DateTime::from_timestamp(1_700_000_000 + day * 86_400, 0).unwrap();
        let meta = cairn_repo::SnapshotMeta {
            hostname: "contoso".into(),
            label: who.into(),
            paths: vec!["/mail".into()],
            time: Some(t),
            ..Default::default()
        };
        let entries = vec![
            cairn_repo::Entry::dir("mail", t),
            cairn_repo::Entry::file("mail/1.eml", 3, t, move || {
                Ok(Box::new(std::io::Cursor::new(
                    format!("{day:03}").into_bytes(),
                )))
            }),
        ];
        repo.archive(&meta, entries.into_iter()).unwrap();
    }
    let out = run(&["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 5);
    let out = run(&["forget", "--keep-last", "1", "--hold", "b@x", "--prune"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("2 removed") && text.contains("1 held"),
        "{text}"
    );
    let out = run(&["check", "--read-data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no errors"));
    // A wrong password is the user's mistake, and is not printed.
    std::fs::write(&pwfile, "Wr0ng-pass\n").unwrap();
    let bad = run(&["snapshots"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&bad.stderr).contains("Wr0ng-pass"));
}

#[test]
fn errors_name_the_repository_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-repo-here");
    let out = cairn()
        .args(["snapshots", "--repo", missing.to_str().unwrap()])
        .env("CAIRN_PASSWORD", "pw")
        .env("CAIRN_CONFIG", dir.path().join("config.toml"))
        .env("CAIRN_CACHE_DIR", dir.path().join("cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(!err.contains("Local(") && !err.contains("\"/"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn keys_are_added_removed_and_a_password_changed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let pw = |name: &str, p: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, format!("{p}\n")).unwrap();
        f
    };
    let (ann, bob, carol) = (
        pw("ann", "ann's password"),
        pw("bob", "bob's password"),
        pw("carol", "carol's password"),
    );
    let run = |password: &std::path::Path, args: &[&str]| {
        cairn()
            .args(args)
            .env("CAIRN_REPOSITORY", &repo)
            .env("CAIRN_PASSWORD_FILE", password)
            .env("CAIRN_CONFIG", dir.path().join("config.toml"))
            .env("CAIRN_CACHE_DIR", dir.path().join("cache"))
            .env_remove("CAIRN_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(&run(&ann, &["init", "--no-config"]));
    ok(&run(
        &ann,
        &[
            "key",
            "add",
            "--new-password-file",
            bob.to_str().unwrap(),
            "--label",
            "bob",
        ],
    ));
    let keys: serde_json::Value =
        serde_json::from_str(&ok(&run(&bob, &["key", "list", "--json"]))).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let anns = keys.iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The restic tool opens it with the new key too.
    let restic = Command::new("restic")
        .args([
            "-r",
            repo.to_str().unwrap(),
            "--password-file",
            bob.to_str().unwrap(),
            "snapshots",
        ])
        .output()
        .expect("restic runs");
    assert!(
        restic.status.success(),
        "{}",
        String::from_utf8_lossy(&restic.stderr)
    );
    // A key cannot remove itself; bob removes ann's, and ann's password stops working.
    let own = run(
        &bob,
        &[
            "key",
            "remove",
            &keys.iter().find(|k| k["current"] == true).unwrap()["id"]
                .as_str()
                .unwrap()[..8],
        ],
    );
    assert_eq!(
        own.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    ok(&run(&bob, &["key", "remove", &anns[..8]]));
    assert_eq!(
        run(&ann, &["key", "list"]).status.code(),
        Some(2),
        "ann's password no longer opens it"
    );
    // bob changes his password: the old one stops working, the new one works.
    ok(&run(
        &bob,
        &[
            "key",
            "passwd",
            "--new-password-file",
            carol.to_str().unwrap(),
        ],
    ));
    assert_eq!(run(&bob, &["key", "list"]).status.code(), Some(2));
    let left: serde_json::Value =
        serde_json::from_str(&ok(&run(&carol, &["key", "list", "--json"]))).unwrap();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(
        run(
            &carol,
            &["key", "remove", &left[0]["id"].as_str().unwrap()[..8]]
        )
        .status
        .code(),
        Some(2),
        "the last key stays"
    );
}
