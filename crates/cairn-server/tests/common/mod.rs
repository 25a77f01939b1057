//! Set-up shared by the server's test binaries (each uses some of it).
#![allow(dead_code)]

use axum::http::{HeaderMap, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The server's state over the configuration file at `config` (repository password `pw`),
/// with its repository created: what `cairn serve` builds at start, without a listener.
pub fn state(config: &Path) -> Arc<cairn_server::State> {
    let env = cairn_config::Environment::from_pairs([("CAIRN_PASSWORD", "pw")]);
    let cfg = cairn_config::Config::load(Some(config), env).unwrap();
    let ws = cairn_app::Workspace::new(cfg, &Default::default())
        .unwrap()
        .serving();
    cairn_repo::Repo::init(ws.repo_options().unwrap()).unwrap();
    cairn_server::State::new(Arc::new(ws)).unwrap()
}

/// What the webhook receiver got: each request's headers and body.
pub type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 answering 200.
pub async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(got): axum::extract::State<Received>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    got.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::OK
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// Where the browser test lives, and the Chromium it drives; `None` (after saying so) when
/// either is missing outside CI.
pub fn browser() -> Option<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cairn/tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = dir.join("node_modules/playwright-core").exists()
        && Path::new(&chromium).exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the browser test: install chromium and `npm ci --prefix {}`",
            dir.display()
        );
        eprintln!(
            "skipped: node, {chromium} or {}/node_modules missing",
            dir.display()
        );
        return None;
    }
    Some((dir, chromium))
}

/// Runs the browser script `script` of `dir` (crates/cairn/tests/browser) in `chromium`
/// with `env`, for at most `secs`; its output (stdout, then stderr) once it succeeded.
pub async fn node(
    dir: &Path,
    script: &str,
    chromium: &str,
    env: &[(&str, String)],
    secs: u64,
) -> String {
    let out = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("CHROMIUM", chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(secs), out)
        .await
        .expect("the browser test ends")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}
