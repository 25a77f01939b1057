//! The configuration file, the environment and the flags, driven through the binary: each
//! test has its own home, so the user's own configuration is neither read nor written.

use super::{home, serve};
use cairn_testkit::{ok, stderr, stdout};
use std::path::Path;
use std::process::Output;

/// `cairn init` of a repository at `repo` in the home, its password (`password`) in a
/// file: both recorded in the configuration, as an administrator sets up.
pub(crate) fn init_repository(home: &cairn_testkit::Home, password: &str) {
    let pw = home.write("secrets/repo", &format!("{password}\n"));
    ok(&home
        .cmd()
        .args([
            "init",
            "--repo",
            s(&home.path("repo")),
            "--password-file",
            s(&pw),
        ])
        .output()
        .unwrap());
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const SECRET: &str = "s3cret-for-test";

#[test]
fn tenant_add_verifies_then_graph_get_needs_only_the_name() {
    let (_sim, url, tenant, client) = serve();
    let home = home();
    let secret = home.write("secrets/contoso", &format!("{SECRET}\n"));
    // Comments and other settings of an existing file survive.
    home.write(
        "xdg-config/cairn/config.toml",
        "# nightly backups, ask Ann before changing\ncache-dir = \"/var/cache/cairn\"\n",
    );
    let add = |name: &str, extra: &[&str]| {
        home.cmd()
            .args(["tenant", "add", name, "--tenant-id", &tenant])
            .args(["--client-id", &client, "--client-secret-file", s(&secret)])
            .args(["--graph-url", &url, "--login-url", &url])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = add("contoso", &[]);
    ok(&out);
    assert!(
        stderr(&out).contains("credentials work"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(home.config()).unwrap();
    assert!(
        text.starts_with("# nightly backups, ask Ann before changing\n"),
        "{text}"
    );
    assert!(text.contains("cache-dir = \"/var/cache/cairn\""), "{text}");
    assert!(text.contains("[tenants.contoso]"), "{text}");
    assert!(
        text.contains(&format!("client-secret-file = \"{}\"", s(&secret))),
        "{text}"
    );
    assert!(
        !text.contains(SECRET),
        "the secret is never written: {text}"
    );

    // From the file alone: no id, URL or secret on the command line or in the environment.
    let users = home.run(&["graph", "get", "/users", "--all", "--tenant", "contoso"]);
    ok(&users);
    assert_eq!(stdout(&users).lines().count(), 3, "{}", stdout(&users));
    // The only tenant is the default.
    let users = home.run(&["graph", "get", "/users", "--all"]);
    ok(&users);
    assert_eq!(stdout(&users).lines().count(), 3);

    // The same name again is refused, --force replaces.
    let again = add("contoso", &[]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("hint: --force replaces it"),
        "{}",
        stderr(&again)
    );
    ok(&add("contoso", &["--force"]));
    assert_eq!(
        std::fs::read_to_string(home.config())
            .unwrap()
            .matches("[tenants.contoso]")
            .count(),
        1
    );

    // With two tenants, commands must be told which.
    ok(&add("fabrikam", &["--no-verify"]));
    let which = home.run(&["graph", "get", "/users"]);
    assert_eq!(which.status.code(), Some(2), "{}", stderr(&which));
    assert!(
        stderr(&which).contains("contoso, fabrikam"),
        "{}",
        stderr(&which)
    );
    assert!(
        stderr(&which).contains("--tenant NAME"),
        "{}",
        stderr(&which)
    );
    let by_env = home
        .cmd()
        .args(["graph", "get", "/users?$top=1"])
        .env("CAIRN_TENANT", "fabrikam")
        .output()
        .unwrap();
    ok(&by_env);

    // The list shows ids and URLs, never the secret.
    let list = home.run(&["tenant", "list"]);
    ok(&list);
    let text = stdout(&list);
    for want in [
        "contoso",
        "fabrikam",
        tenant.as_str(),
        client.as_str(),
        url.as_str(),
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    assert!(!text.contains(SECRET), "{text}");
    let json = home.run(&["tenant", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["credential"], "secret file");
    assert!(!stdout(&json).contains(SECRET));

    ok(&home.run(&["tenant", "remove", "fabrikam"]));
    let list = stdout(&home.run(&["tenant", "list"]));
    assert!(!list.contains("fabrikam"), "{list}");
    let gone = home.run(&["tenant", "remove", "fabrikam"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        stderr(&gone).contains("configured: contoso"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn a_wrong_secret_exits_2_with_a_hint_and_writes_nothing() {
    let (_sim, url, tenant, client) = serve();
    let home = home();
    let secret = home.write("secrets/wrong", "Wr0ng-secret-xyz\n");
    let before = "# mine\nrepository = \"/srv/cairn\"\n";
    let config = home.write("elsewhere/cairn.toml", before);
    let out = home
        .cmd()
        .args(["--config", s(&config), "tenant", "add", "contoso"])
        .args(["--tenant-id", &tenant, "--client-id", &client])
        .args(["--client-secret-file", s(&secret)])
        .args(["--graph-url", &url, "--login-url", &url])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(err.contains("hint: check the tenant id"), "{err}");
    assert!(!err.contains("Wr0ng-secret-xyz"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    assert!(!home.config().exists());

    // A missing secret file is refused before anything is written, even without signing in.
    let out = home
        .cmd()
        .args(["tenant", "add", "contoso", "--no-verify"])
        .args(["--tenant-id", &tenant, "--client-id", &client])
        .args(["--client-secret-file", "no/such/file"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no/such/file"), "{}", stderr(&out));
    assert!(!home.config().exists());
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let (_sim, url, tenant, client) = serve();
    let home = home();
    let secret = home.write("secret", SECRET);
    // The file names a tenant id the simulator does not know: signing in fails.
    home.write(
        "xdg-config/cairn/config.toml",
        &format!(
            "[tenants.contoso]\ntenant-id = \"not-{tenant}\"\nclient-id = \"{client}\"\n\
             client-secret-file = \"../../secret\"\ngraph-url = \"{url}\"\nlogin-url = \"{url}\"\n"
        ),
    );
    let get = |env: Option<&str>, flag: Option<&str>| {
        let mut c = home.cmd();
        c.args(["graph", "get", "/users?$top=1"]);
        if let Some(t) = env {
            c.env("CAIRN_TENANT_ID", t);
        }
        if let Some(t) = flag {
            c.args(["--tenant-id", t]);
        }
        c.output().unwrap()
    };
    let file_only = get(None, None);
    assert_eq!(file_only.status.code(), Some(2), "{}", stderr(&file_only));
    assert!(stderr(&file_only).contains(&format!("not-{tenant}")));
    // The environment wins over the file (the rest, secret file included, still from it).
    ok(&get(Some(&tenant), None));
    // The flag wins over the environment.
    let flag = get(Some(&tenant), Some("flag-tenant"));
    assert_eq!(flag.status.code(), Some(2), "{}", stderr(&flag));
    assert!(stderr(&flag).contains("flag-tenant"), "{}", stderr(&flag));
    ok(&get(Some("env-tenant"), Some(&tenant)));
    // A secret in the environment replaces the file's secret file.
    let wrong = home
        .cmd()
        .args(["graph", "get", "/users?$top=1", "--tenant-id", &tenant])
        .env("CAIRN_CLIENT_SECRET", "Wr0ng-secret-xyz")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(!stderr(&wrong).contains("Wr0ng-secret-xyz"));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);
}

#[test]
fn an_unknown_key_is_an_error_naming_the_key_and_the_file() {
    let home = home();
    let config = home.write(
        "c.toml",
        "repository = \"/srv/cairn\"\n\n[tenants.contoso]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret = \"hunter2\"\n",
    );
    let out = home.run(&["--config", s(&config), "snapshots"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `client-secret`"), "{err}");
    assert!(err.contains(s(&config)), "{err}");
    assert!(
        err.contains("hint:") && err.contains("docs/configuration.md"),
        "{err}"
    );
    // Through CAIRN_CONFIG as well, and for every command that reads the file.
    home.write("c.toml", "repo = \"/srv/cairn\"\n");
    let out = home
        .cmd()
        .args(["tenant", "list"])
        .env("CAIRN_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown field `repo`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_records_the_repository_and_later_commands_need_no_flag() {
    let home = home();
    home.write("pw", "config password\n");
    // Without a repository anywhere: an error that says what to do.
    let none = home.run(&["snapshots"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("cairn init --repo"),
        "{}",
        stderr(&none)
    );

    // --no-config leaves the configuration alone.
    ok(&home.run(&[
        "init",
        "--repo",
        "scratch",
        "--password-file",
        "pw",
        "--no-config",
    ]));
    assert!(!home.config().exists());

    // Relative paths, as typed in the working directory.
    let out = home.run(&["init", "--repo", "repo-a", "--password-file", "pw"]);
    ok(&out);
    assert!(stdout(&out).contains(s(&home.config())), "{}", stdout(&out));
    let text = std::fs::read_to_string(home.config()).unwrap();
    let repo_a = home.path("repo-a");
    assert!(text.starts_with("# Cairn configuration"), "{text}");
    assert!(
        text.contains(&format!("repository = \"{}\"", s(&repo_a))),
        "{text}"
    );
    assert!(
        text.contains(&format!("password-file = \"{}\"", s(&home.path("pw")))),
        "{text}"
    );

    // No flag, no environment: the file says where and how.
    let snaps = home.run(&["snapshots", "--json"]);
    ok(&snaps);
    let v: serde_json::Value = serde_json::from_slice(&snaps.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 0);
    ok(&home.run(&["check"]));

    // A second init does not move the recorded repository.
    ok(&home.run(&["init", "--repo", "repo-b", "--password-file", "pw"]));
    assert_eq!(std::fs::read_to_string(home.config()).unwrap(), text);

    // One restore point in repo-b tells the two apart.
    let repo_b = home.path("repo-b");
    let repo = cairn_repo::Repo::open(
        cairn_repo::RepoOptions::new(s(&repo_b), "config password").unwrap(),
    )
    .unwrap();
    let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let meta = cairn_repo::SnapshotMeta {
        hostname: "contoso".into(),
        label: "a@x".into(),
        paths: vec!["/mail".into()],
        time: Some(t),
        ..Default::default()
    };
    repo.archive(&meta, vec![cairn_repo::Entry::dir("mail", t)].into_iter())
        .unwrap();
    let count = |o: Output| {
        ok(&o);
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let env_b = |args: &[&str]| {
        home.cmd()
            .args(args)
            .env("CAIRN_REPOSITORY", &repo_b)
            .output()
            .unwrap()
    };
    assert_eq!(
        count(home.run(&["snapshots", "--json"])),
        0,
        "the file's repo-a"
    );
    assert_eq!(
        count(env_b(&["snapshots", "--json"])),
        1,
        "the environment's repo-b"
    );
    assert_eq!(
        count(env_b(&["snapshots", "--json", "--repo", s(&repo_a)])),
        0,
        "the flag's repo-a"
    );
    // The password: CAIRN_PASSWORD over the file's password-file.
    let wrong = home
        .cmd()
        .args(["snapshots"])
        .env("CAIRN_PASSWORD", "Wr0ng-pass")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
}
