//! Precedence of the file, the environment and the overrides.

use super::*;
use cairn_graph::client::{DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL};

fn lookup(vars: &[(&str, &str)]) -> Environment {
    Environment::from_pairs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// The file as read with `env` (the home is /home/ann when `env` has none).
fn parse_with(text: &str, env: Environment) -> Result<Config> {
    Config::parse(Path::new("/etc/cairn/config.toml"), text, env)
}

fn parse(text: &str) -> Result<Config> {
    parse_with(text, lookup(&[("HOME", "/home/ann")]))
}

/// The user error's hint.
fn hint_of(e: &ConfigError) -> String {
    assert!(e.is_user_error(), "{e}");
    e.hint().unwrap_or_default()
}

const TWO: &str = r#"
repository = "repo"
password-file = "~/pw"
cache-dir = "/var/cache/cairn"

[tenants.contoso]
tenant-id = "contoso-id"
client-id = "contoso-app"
client-secret-file = "secrets/contoso"

[tenants.fabrikam]
tenant-id = "fabrikam-id"
client-id = "fabrikam-app"
certificate = "/certs/fabrikam.pfx"
certificate-password-file = "certs/pw"
graph-url = "http://127.0.0.1:9/"
"#;

fn repo_args(repo: Option<&str>, pw: Option<&str>) -> RepoOverrides {
    RepoOverrides {
        repository: repo.map(str::to_string),
        password_file: pw.map(PathBuf::from),
        cache_dir: None,
        catalog: None,
        nats: None,
    }
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let cfg = parse(TWO).unwrap();
    let f = cfg.file();
    assert_eq!(f.repository.as_deref(), Some("/etc/cairn/repo"));
    assert_eq!(f.password_file.as_deref(), Some(Path::new("/home/ann/pw")));
    let c = &f.tenants["contoso"];
    assert_eq!(
        c.client_secret_file.as_deref(),
        Some(Path::new("/etc/cairn/secrets/contoso"))
    );
    let fab = &f.tenants["fabrikam"];
    assert_eq!(
        fab.certificate.as_deref(),
        Some(Path::new("/certs/fabrikam.pfx"))
    );
    assert_eq!(
        fab.certificate_password_file.as_deref(),
        Some(Path::new("/etc/cairn/certs/pw"))
    );
    let s3 = parse(r#"repository = "s3:https://h/b/p""#).unwrap();
    assert_eq!(s3.file().repository.as_deref(), Some("s3:https://h/b/p"));
}

#[test]
fn unknown_keys_are_refused_with_their_name_and_the_file() {
    let err = parse("repository = \"/r\"\npasword-file = \"/p\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("pasword-file"), "{msg}");
    assert!(msg.contains("/etc/cairn/config.toml"), "{msg}");
    assert!(hint_of(&err).contains("docs/configuration.md"));
    let err = parse("[tenants.a]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("client-secret"), "{err}");
    // snake_case is not the spelling.
    assert!(parse("cache_dir = \"/c\"").is_err());
}

#[test]
fn a_tenant_needs_exactly_one_credential() {
    let none = parse("[tenants.a]\ntenant-id = \"t\"\nclient-id = \"c\"\n").unwrap_err();
    assert!(none.to_string().contains("tenant a"), "{none}");
    let both = parse(
        "[tenants.a]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret-file = \"s\"\ncertificate = \"c.pem\"\n",
    )
    .unwrap_err();
    assert!(both.to_string().contains("both"), "{both}");
}

#[test]
fn repository_flag_or_env_over_file_and_an_error_when_nowhere() {
    let cfg = parse(TWO).unwrap();
    assert_eq!(
        cfg.repository(&repo_args(None, None)).unwrap(),
        "/etc/cairn/repo"
    );
    assert_eq!(cfg.repository(&repo_args(Some("/x"), None)).unwrap(), "/x");
    let empty = parse("").unwrap();
    let err = empty.repository(&repo_args(None, None)).unwrap_err();
    assert!(hint_of(&err).contains("cairn init --repo"));
    assert!(err.to_string().contains("/etc/cairn/config.toml"));
}

#[test]
fn password_file_flag_then_env_password_then_file_then_prompt() {
    let env_pw = parse_with(
        TWO,
        lookup(&[("CAIRN_PASSWORD", "from-env"), ("HOME", "/home/ann")]),
    )
    .unwrap();
    let none = parse(TWO).unwrap();
    let src = |cfg: &Config, args: &RepoOverrides| match cfg.password_source(args) {
        PasswordSource::File(f) => format!("file {}", f.display()),
        PasswordSource::Value(v) => format!("value {v}"),
        PasswordSource::Prompt => "prompt".into(),
    };
    assert_eq!(src(&env_pw, &repo_args(None, Some("/f"))), "file /f");
    assert_eq!(src(&env_pw, &repo_args(None, None)), "value from-env");
    assert_eq!(src(&none, &repo_args(None, None)), "file /home/ann/pw");
    let empty = parse("").unwrap();
    assert!(matches!(
        empty.password_source(&repo_args(None, None)),
        PasswordSource::Prompt
    ));
}

#[test]
fn cache_dir_flag_env_file_xdg_home() {
    let all = lookup(&[
        ("CAIRN_CACHE_DIR", "/env-cache"),
        ("XDG_CACHE_HOME", "/xdg"),
        ("HOME", "/home/ann"),
    ]);
    let at = |text: &str, flag: Option<&str>, env: Environment| {
        let o = RepoOverrides {
            cache_dir: flag.map(PathBuf::from),
            ..RepoOverrides::default()
        };
        parse_with(text, env).unwrap().cache_dir(&o)
    };
    assert_eq!(
        at(TWO, Some("/flag"), all.clone()).unwrap(),
        Path::new("/flag")
    );
    assert_eq!(at(TWO, None, all).unwrap(), Path::new("/env-cache"));
    assert_eq!(
        at(TWO, None, lookup(&[("XDG_CACHE_HOME", "/xdg")])).unwrap(),
        Path::new("/var/cache/cairn")
    );
    assert_eq!(
        at(
            "",
            None,
            lookup(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/h")])
        )
        .unwrap(),
        Path::new("/xdg/cairn")
    );
    // A relative XDG variable is ignored, as the specification says.
    assert_eq!(
        at(
            "",
            None,
            lookup(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])
        )
        .unwrap(),
        Path::new("/h/.cache/cairn")
    );
    assert!(at("", None, lookup(&[])).is_err());
}

#[test]
fn default_config_path_follows_xdg() {
    assert_eq!(
        default_config_path(&lookup(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
        Path::new("/x/cairn/config.toml")
    );
    assert_eq!(
        default_config_path(&lookup(&[("HOME", "/h")])).unwrap(),
        Path::new("/h/.config/cairn/config.toml")
    );
    assert!(default_config_path(&lookup(&[])).is_err());
}

fn flags() -> TenantOverrides {
    TenantOverrides::default()
}

fn named(n: &str) -> TenantOverrides {
    TenantOverrides {
        tenant: Some(n.into()),
        ..flags()
    }
}

fn credential(t: &ResolvedTenant) -> String {
    match &t.credential {
        CredentialSource::Secret(_) => "secret".into(),
        CredentialSource::SecretFile(f) => format!("secret file {}", f.display()),
        CredentialSource::Certificate {
            path,
            password_file,
            ..
        } => format!(
            "certificate {} {}",
            path.display(),
            password_file.as_deref().unwrap_or(Path::new("-")).display()
        ),
    }
}

#[test]
fn the_only_tenant_is_the_default_and_several_need_a_name() {
    let one = parse(
        "[tenants.solo]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret-file = \"/s\"\n",
    )
    .unwrap();
    let t = one.tenant(&flags()).unwrap();
    assert_eq!(t.name.as_deref(), Some("solo"));
    assert_eq!(t.graph_url, DEFAULT_GRAPH_URL);
    assert_eq!(t.login_url, DEFAULT_LOGIN_URL);
    let two = parse(TWO).unwrap();
    let err = two.tenant(&flags()).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("contoso, fabrikam"), "{msg}");
    let hint = hint_of(&err);
    assert!(hint.contains("--tenant NAME"), "{hint}");
    let fab = two.tenant(&named("fabrikam")).unwrap();
    assert_eq!(fab.tenant_id, "fabrikam-id");
    assert_eq!(fab.graph_url, "http://127.0.0.1:9/");
    assert_eq!(
        credential(&fab),
        "certificate /certs/fabrikam.pfx /etc/cairn/certs/pw"
    );
    let unknown = two.tenant(&named("northwind")).err().unwrap().to_string();
    assert!(
        unknown.contains("northwind") && unknown.contains("contoso, fabrikam"),
        "{unknown}"
    );
}

#[test]
fn flags_override_the_file_field_by_field() {
    let two = parse(TWO).unwrap();
    let f = TenantOverrides {
        client_id: Some("other-app".into()),
        login_url: Some("http://login.test".into()),
        ..named("contoso")
    };
    let t = two.tenant(&f).unwrap();
    assert_eq!(t.tenant_id, "contoso-id", "not overridden: from the file");
    assert_eq!(t.client_id, "other-app");
    assert_eq!(t.login_url, "http://login.test");
    assert_eq!(credential(&t), "secret file /etc/cairn/secrets/contoso");
    // A secret from the environment replaces the file's credential.
    let s = TenantOverrides {
        client_secret: Some("s".into()),
        ..named("contoso")
    };
    assert_eq!(credential(&two.tenant(&s).unwrap()), "secret");
    // The environment counts as a flag.
    let env_secret = parse_with(TWO, lookup(&[("CAIRN_CLIENT_SECRET", "s")])).unwrap();
    assert_eq!(
        credential(&env_secret.tenant(&named("contoso")).unwrap()),
        "secret"
    );
    // Two credentials in the flags are refused.
    let both = TenantOverrides {
        client_secret: Some("s".into()),
        certificate: Some("/c.pem".into()),
        ..named("contoso")
    };
    assert!(two.tenant(&both).is_err());
}

#[test]
fn flags_alone_describe_a_tenant() {
    let f = TenantOverrides {
        tenant_id: Some("t".into()),
        client_id: Some("c".into()),
        client_secret: Some("s".into()),
        ..flags()
    };
    let t = parse("").unwrap().tenant(&f).unwrap();
    assert_eq!((t.name, t.tenant_id.as_str()), (None, "t"));
    // With several tenants in the file, complete flags need no name.
    let t = parse(TWO).unwrap().tenant(&f).unwrap();
    assert_eq!(t.name, None);
    assert_eq!(t.client_id, "c");
    let err = parse("").unwrap().tenant(&flags()).err().unwrap();
    let hint = hint_of(&err);
    assert!(hint.contains("cairn tenant add"), "{hint}");
}

#[test]
fn jobs_and_alerts_read_with_their_paths_relative_to_the_file() {
    let cfg = parse(
        r#"
[server]
listen = "0.0.0.0:8470"
[server.alerts]
webhook-url = "https://hooks.example/x"
webhook-secret-file = "secrets/hook"

[jobs.nightly]
tenant = "contoso"
schedule = "30 2 * * *"
timezone = "Europe/Berlin"
users = "all"
exclude = ["*@contractors.example"]
keep-daily = 14
[jobs.nightly.alerts]
smtp-url = "smtp://mail.example:587"
smtp-password-file = "~/smtp"
email-to = ["ops@example.com"]
"#,
    )
    .unwrap();
    let f = cfg.file();
    let hook = f.server.as_ref().unwrap().alerts.as_ref().unwrap();
    assert_eq!(
        hook.webhook_secret_file.as_deref(),
        Some(Path::new("/etc/cairn/secrets/hook"))
    );
    let job = &f.jobs["nightly"];
    assert_eq!(job.keep_daily, Some(14));
    assert_eq!(
        job.alerts.as_ref().unwrap().smtp_password_file.as_deref(),
        Some(Path::new("/home/ann/smtp"))
    );
    let err = parse("[jobs.x]\ntenant = \"t\"\nkeep_last = 1\n").unwrap_err();
    assert!(err.to_string().contains("keep_last"), "{err}");
}

#[test]
fn a_restore_drill_is_a_share_of_the_items() {
    let cfg = parse(
        "[jobs.nightly]\ntenant = \"t\"\nevery = \"1d\"\nverify = \"5%\"\nverify-schedule = \"7d\"\n",
    )
    .unwrap();
    let job = &cfg.file().jobs["nightly"];
    assert_eq!(job.verify_percent("nightly").unwrap(), Some(5.0));
    assert_eq!(job.verify_schedule.as_deref(), Some("7d"));
    assert_eq!(crate::parse_share(" 0.5 %"), Some(0.5));
    assert_eq!(crate::parse_share("100%"), Some(100.0));
    for bad in ["0%", "101%", "5", "five%", "-1%", "NaN%", "inf%"] {
        let text = format!("[jobs.nightly]\ntenant = \"t\"\nevery = \"1d\"\nverify = \"{bad}\"\n");
        let err = parse(&text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("job nightly") && msg.contains(bad) && msg.contains("config.toml"),
            "{msg}"
        );
        assert!(hint_of(&err).contains("5%"), "{}", hint_of(&err));
        assert!(err.is_user_error());
    }
    let err = parse("[jobs.nightly]\ntenant = \"t\"\nevery = \"1d\"\nverify-schedule = \"7d\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("no verify"), "{err}");
    assert!(hint_of(&err).contains("verify = "), "{}", hint_of(&err));
}

#[test]
fn item_retention_of_a_job_is_a_span_from_a_date() {
    let cfg = parse(
        "[jobs.nightly]\ntenant = \"t\"\nevery = \"1d\"\nkeep-items = \"7y\"\nitems-from = \"deleted\"\n",
    )
    .unwrap();
    let job = &cfg.file().jobs["nightly"];
    assert_eq!(
        job.item_retention("nightly").unwrap(),
        Some((7 * 365 + 1, crate::ItemsFrom::Deleted))
    );
    let cfg = parse("[jobs.n]\ntenant = \"t\"\nevery = \"1d\"\nkeep-items = \"90d\"\n").unwrap();
    assert_eq!(
        cfg.file().jobs["n"].item_retention("n").unwrap(),
        Some((90, crate::ItemsFrom::Modified))
    );
    let cfg = parse("[jobs.n]\ntenant = \"t\"\nevery = \"1d\"\n").unwrap();
    assert_eq!(cfg.file().jobs["n"].item_retention("n").unwrap(), None);
    assert_eq!(crate::span_days("2w"), Some(14));
    assert_eq!(crate::span_days("18m"), Some(547));
    for (keys, needle, hint) in [
        ("keep-items = \"7\"", "keep-items", "7y"),
        ("keep-items = \"0d\"", "keep-items", "7y"),
        ("keep-items = \"seven years\"", "keep-items", "7y"),
        (
            "keep-items = \"1d\"\nitems-from = \"created\"",
            "items-from",
            "deleted",
        ),
        ("items-from = \"deleted\"", "no keep-items", "keep-items = "),
    ] {
        let text = format!("[jobs.nightly]\ntenant = \"t\"\nevery = \"1d\"\n{keys}\n");
        let err = parse(&text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("job nightly") && msg.contains(needle) && msg.contains("config.toml"),
            "{msg}"
        );
        assert!(hint_of(&err).contains(hint), "{}", hint_of(&err));
        assert!(err.is_user_error());
    }
}

#[test]
fn the_portal_app_and_public_url_are_read_with_their_paths() {
    let text = format!(
        "{TWO}\nportal-client-id = \"portal-app\"\nportal-client-secret-file = \"secrets/portal\"\n\n[server]\npublic-url = \"https://cairn.example.com\"\n[server.portal]\ngroups = {{ \"g-1\" = \"auditor\" }}\n"
    );
    let cfg = parse(&text).unwrap();
    let f = cfg.file();
    let t = &f.tenants["fabrikam"];
    assert_eq!(t.portal_client_id.as_deref(), Some("portal-app"));
    assert_eq!(
        t.portal_client_secret_file.as_deref(),
        Some(Path::new("/etc/cairn/secrets/portal"))
    );
    let server = f.server.as_ref().unwrap();
    assert_eq!(
        server.public_url.as_deref(),
        Some("https://cairn.example.com")
    );
    assert_eq!(server.portal.as_ref().unwrap().groups["g-1"], "auditor");
    // One without the other is refused, naming both keys.
    let half = format!("{TWO}\nportal-client-id = \"portal-app\"\n");
    let e = parse(&half).unwrap_err();
    assert!(e.to_string().contains("portal-client-secret-file"), "{e}");
    assert!(hint_of(&e).contains("docs/portal.md"));
}

#[test]
fn a_catalog_url_keeps_its_password_out_of_debug() {
    let c = parse_with(
        "catalog = \"postgres://cairn:s3cret@db:5432/cairn?schema=a&password=other\"\n",
        lookup(&[("HOME", "/home/ann")]),
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("other"),
        "{shown}"
    );
    assert!(
        shown.contains("postgres://cairn:***@db:5432/cairn?schema=a&password=***"),
        "{shown}"
    );
    // The flag wins over the environment, which wins over the file.
    let o = RepoOverrides {
        repository: Some("/r".into()),
        ..RepoOverrides::default()
    };
    let s = c.repo_settings(&o).unwrap();
    assert_eq!(
        s.catalog.as_deref(),
        Some("postgres://cairn:s3cret@db:5432/cairn?schema=a&password=other")
    );
    let env = parse_with(
        "catalog = \"postgres://file/x\"\n",
        lookup(&[("HOME", "/home/ann"), ("CAIRN_CATALOG", "postgres://env/x")]),
    )
    .unwrap();
    assert_eq!(
        env.repo_settings(&o).unwrap().catalog.as_deref(),
        Some("postgres://env/x")
    );
    let flag = RepoOverrides {
        catalog: Some("postgres://flag/x".into()),
        ..o
    };
    assert_eq!(
        env.repo_settings(&flag).unwrap().catalog.as_deref(),
        Some("postgres://flag/x")
    );
}

#[test]
fn nats_url_from_flag_environment_or_file_and_its_token_never_shows() {
    let c = parse_with(
        "nats = \"nats://s3cret-token@mq:4222?queue=cairn\"\n",
        lookup(&[("HOME", "/home/ann")]),
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("nats://***@mq:4222?queue=cairn"), "{shown}");
    let o = RepoOverrides {
        repository: Some("/r".into()),
        ..RepoOverrides::default()
    };
    assert_eq!(
        c.repo_settings(&o).unwrap().nats.as_deref(),
        Some("nats://s3cret-token@mq:4222?queue=cairn")
    );
    let env = parse_with(
        "nats = \"nats://file:4222\"\n",
        lookup(&[("HOME", "/home/ann"), ("CAIRN_NATS", "nats://env:4222")]),
    )
    .unwrap();
    assert_eq!(
        env.repo_settings(&o).unwrap().nats.as_deref(),
        Some("nats://env:4222")
    );
    let flag = RepoOverrides {
        nats: Some("nats://flag:4222".into()),
        ..o
    };
    assert_eq!(
        env.repo_settings(&flag).unwrap().nats.as_deref(),
        Some("nats://flag:4222")
    );
}
