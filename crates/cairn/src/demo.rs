//! `cairn demo`: the story on embedded defaults — a simulated tenant, a local repository,
//! three users backed up (mail, calendars, contacts, OneDrive), changed, backed up again,
//! a file restored and verified, a deleted message restored into the mailbox, and a
//! ransomware attack caught by the next backup.
//!
//! `cairn demo --portal` then leaves the simulator and a `cairn serve` (in this process, on
//! 127.0.0.1) running, with the tenant's portal sign-in set up against the simulator, and
//! prints the portal's address and a demo user's sign-in until Ctrl-C.

use crate::sim::{print_banner, runtime};
use anyhow::Context;
use cairn_graph::GraphClient;
use cairn_repo::{Repo, RepoOptions};
use cairn_sim::{SimConfig, SimServer, TenantSpec};
use futures::TryStreamExt;
use serde_json::Value;
use sha2::Digest;
use std::sync::Arc;

pub fn demo(portal: bool) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let spec = TenantSpec {
            users: 10,
            files_per_drive: 30,
            max_item_size: 4 * 1024 * 1024,
            ..TenantSpec::default()
        };
        let server = SimServer::start(SimConfig::new(spec), "127.0.0.1:0".parse()?).await?;
        print_banner(&server)?;
        let graph = Arc::new(crate::sim::client_for(&server, None)?);

        outln!("\nusers:");
        let users: Vec<Value> = graph
            .items("/users?$select=id,userPrincipalName,mail")
            .try_collect()
            .await?;
        for u in &users {
            let note = if u["mail"].is_null() {
                "(no mailbox)"
            } else {
                ""
            };
            outln!("  {} {note}", u["userPrincipalName"].as_str().unwrap_or(""));
        }
        let user = users[0]["id"].as_str().context("no user")?.to_string();
        let upn = users[0]["userPrincipalName"]
            .as_str()
            .unwrap_or("")
            .to_string();

        outln!("\nmail folders of {upn}:");
        let folders: Vec<Value> = graph
            .items(&format!("/users/{user}/mailFolders/delta"))
            .try_collect()
            .await?;
        let mut total = 0;
        for f in folders
            .iter()
            .filter(|f| f["@odata.type"] != "#microsoft.graph.mailSearchFolder")
        {
            let id = f["id"].as_str().unwrap_or("");
            let n = graph
                .items(&format!(
                    "/users/{user}/mailFolders/{id}/messages/delta?$select=id"
                ))
                .try_fold(0usize, |n, _| async move { Ok(n + 1) })
                .await?;
            total += n;
            outln!(
                "  {:<28} {n:>4} messages",
                f["displayName"].as_str().unwrap_or("")
            );
        }
        outln!("  {total} messages in all");

        let dir = std::env::temp_dir().join(format!("cairn-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.to_string_lossy().into_owned();
        let repo = {
            let path = path.clone();
            Arc::new(
                tokio::task::spawn_blocking(move || Repo::init(RepoOptions::new(&path, "demo")?))
                    .await??,
            )
        };
        outln!("\nrepository created at {path}");

        // With --portal: the server's configuration, and its catalog is the demo's.
        let portal = match portal {
            true => Some(Portal::prepare(&server, &dir, &path).await?),
            false => None,
        };
        let catalog_path = match &portal {
            Some(p) => p.ws.local().catalog.clone(),
            None => dir.join("catalog.db"),
        };
        let catalog = Arc::new(cairn_catalog::SqliteCatalog::open(&catalog_path)?);
        let engine = Arc::new(cairn_backup::Engine::new(
            graph.clone(),
            repo.clone(),
            catalog.clone(),
            "contoso",
            cairn_backup::BackupOptions::new(dir.join("spool")),
            Arc::new(cairn_backup::Silent),
        ));
        let targets: Vec<cairn_backup::Target> =
            engine.users(&[]).await?.into_iter().take(3).collect();
        let first = engine.run(targets.clone()).await;
        outln!(
            "\nfull backup of {} users (mail, calendars, contacts, OneDrive):",
            targets.len()
        );
        print_job(&first)?;
        let mutated: Value = reqwest::Client::new()
            .post(format!("{}/_sim/mutate", server.url()))
            .json(
                &serde_json::json!({"seed": 7, "count": 12, "resource": user,
                "kinds": ["message", "file", "event", "contact"]}),
            )
            .send()
            .await?
            .json()
            .await?;
        outln!(
            "\n{upn} changes {} items (new mail, flags, moves, deletions, files, events, contacts)",
            mutated["applied"].as_array().map(Vec::len).unwrap_or(0)
        );
        let second = engine.run(targets.clone()).await;
        outln!("incremental backup:");
        print_job(&second)?;
        anyhow::ensure!(
            first.failed() + second.failed() == 0,
            "a resource failed: see the report above"
        );
        let latest = second
            .resources
            .iter()
            .find(|r| r.resource == upn)
            .and_then(|r| r.snapshot.clone())
            .context("no restore point for the first user")?;

        outln!("\nrestore points:");
        let r = repo.clone();
        for s in tokio::task::spawn_blocking(move || r.snapshots()).await?? {
            outln!(
                "  {}  {}  {:<36} {} files",
                &s.id[..8],
                s.time.format("%Y-%m-%d %H:%M:%S"),
                s.label,
                s.files_new + s.files_changed + s.files_unmodified
            );
        }

        // Restore one file of the latest restore point and compare it with the live drive.
        let manifest: Vec<Value> =
            reqwest::get(format!("{}/_sim/manifest?resource={user}", server.url()))
                .await?
                .json()
                .await?;
        let file = manifest
            .iter()
            .find(|e| e["kind"] == "file")
            .context("the drive has no file")?;
        let rel = file["path"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("OneDrive/")
            .to_string();
        let (r, id, p) = (repo.clone(), latest.clone(), format!("onedrive/{rel}"));
        let bytes = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            r.read(&id, &p, &mut out).map(|_| out)
        })
        .await??;
        let ok = hex::encode(sha2::Sha256::digest(&bytes)) == file["sha256"].as_str().unwrap_or("");
        outln!(
            "\nrestored {rel} ({} bytes): {}",
            bytes.len(),
            if ok {
                "identical to the original"
            } else {
                "DIFFERENT from the original"
            }
        );
        // A message deleted in the mailbox comes back from the latest restore point.
        let mail_ok =
            delete_and_restore_a_message(&server, &graph, &repo, &catalog, &user, &upn).await?;

        // Ransomware hits the second user's OneDrive: the next backup catches it.
        let caught = ransomware(&server, &engine, &repo, &catalog, &targets[1]).await?;

        let stats: Value = reqwest::get(format!("{}/_sim/stats", server.url()))
            .await?
            .json()
            .await?;
        outln!(
            "simulator: {} requests, {} throttled; Graph client: {} requests",
            stats["requests_total"],
            stats["throttled_total"],
            graph.requests()
        );
        let story = if !ok {
            Err(anyhow::anyhow!(
                "the restored file differs from the original"
            ))
        } else if !mail_ok {
            Err(anyhow::anyhow!(
                "the deleted message did not come back identical"
            ))
        } else if !caught {
            Err(anyhow::anyhow!("the attack went unnoticed"))
        } else {
            Ok(())
        };
        let served = match portal {
            Some(p) if story.is_ok() => p.serve(&server).await,
            _ => Ok(()),
        };
        server.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(portal_dir(&dir));
        story.and(served)
    })
}

fn portal_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push("-portal");
    name.into()
}

/// `cairn demo --portal`: a `cairn serve` of the demo's repository, its tenant signing
/// people in through the simulator.
struct Portal {
    ws: cairn_app::Workspace,
    listener: tokio::net::TcpListener,
    public: String,
}

impl Portal {
    async fn prepare(
        server: &SimServer,
        dir: &std::path::Path,
        repo: &str,
    ) -> anyhow::Result<Portal> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let public = format!("http://{}", listener.local_addr()?);
        let home = portal_dir(dir);
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home)?;
        let c = &server.sim.cfg;
        let file = |name: &str, body: &str| -> anyhow::Result<String> {
            let p = home.join(name);
            std::fs::write(&p, body)?;
            Ok(p.to_string_lossy().into_owned())
        };
        let password = file("password", "demo\n")?;
        let secret = file("client-secret", &c.client_secret)?;
        let portal_secret = file("portal-secret", &c.client_secret)?;
        let config = format!(
            r#"repository = {repo:?}
password-file = {password:?}
cache-dir = {cache:?}

[server]
public-url = "{public}"

[tenants.contoso]
tenant-id = "{tenant}"
client-id = "{client}"
client-secret-file = {secret:?}
graph-url = "{url}"
login-url = "{url}"
portal-client-id = "{client}"
portal-client-secret-file = {portal_secret:?}

[jobs.demo]
tenant = "contoso"
every = "1d"
groups = "none"
sites = "none"
services = ["mail"]
"#,
            cache = home.join("cache").to_string_lossy(),
            tenant = c.tenant_id,
            client = c.client_id,
            url = server.url(),
        );
        let path = file("config.toml", &config)?;
        let ws = cairn_app::Workspace::new(
            crate::config::load(Some(std::path::Path::new(&path)))?,
            &Default::default(),
        )?
        .serving();
        if let Some(parent) = ws.local().catalog.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(Portal {
            ws,
            listener,
            public,
        })
    }

    /// Serves the portal until Ctrl-C.
    async fn serve(self, server: &SimServer) -> anyhow::Result<()> {
        let address = self.listener.local_addr()?.to_string();
        let _owner = self.ws.local().lock_for_serving(&address)?;
        let passwords: Vec<Value> = reqwest::get(format!("{}/_sim/passwords", server.url()))
            .await?
            .json()
            .await?;
        let who = passwords
            .first()
            .context("the simulator has no user with a password")?;
        let state = cairn_server::State::new(Arc::new(self.ws))?;
        outln!("\nthe portal: {}/", self.public);
        outln!(
            "  sign in with Microsoft (tenant contoso): {}/login?tenant=contoso",
            self.public
        );
        outln!(
            "  as {} with the password {}",
            who["user"].as_str().unwrap_or(""),
            who["password"].as_str().unwrap_or("")
        );
        outln!("Ctrl-C stops the server and the simulator");
        cairn_server::serve(state, self.listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    }
}

/// Deletes an Inbox message in the simulated mailbox, restores it with `cairn-restore` and
/// checks that the mailbox holds it again, MIME byte for byte.
async fn delete_and_restore_a_message(
    server: &SimServer,
    graph: &Arc<GraphClient>,
    repo: &Arc<Repo>,
    catalog: &Arc<cairn_catalog::SqliteCatalog>,
    user: &str,
    upn: &str,
) -> anyhow::Result<bool> {
    use cairn_catalog::Catalog;
    let manifest = |url: String| async move {
        anyhow::Ok(reqwest::get(url).await?.json::<Vec<Value>>().await?)
    };
    let url = format!("{}/_sim/manifest?resource={user}", server.url());
    let res = catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, upn)?
        .id;
    let seq = catalog.points(res)?.last().context("no restore point")?.seq;
    let mut found = None;
    catalog.for_each_at(res, seq, "mail/Inbox/", &mut |row| {
        found = Some(row);
        false
    })?;
    let row = found.context("no message in the Inbox")?;
    let before = manifest(url.clone()).await?;
    let sha = before
        .iter()
        .find(|e| e["id"] == row.item.as_str())
        .and_then(|e| e["sha256"].as_str())
        .context("the message is not in the mailbox")?
        .to_string();
    graph
        .delete(&format!("/users/{user}/messages/{}", row.item))
        .await?;
    outln!(
        "\n{upn} deletes the message \"{}\" from the Inbox",
        row.subject.as_deref().unwrap_or("(no subject)")
    );
    let restorer =
        cairn_restore::Restorer::new("contoso", graph.clone(), repo.clone(), catalog.clone());
    let mut sel = cairn_restore::Selection::new(upn);
    sel.paths = vec![row.path.clone()];
    let report = restorer
        .run(&sel, &cairn_restore::RestoreOptions::default())
        .await?;
    let after = manifest(url).await?;
    let back = after
        .iter()
        .any(|e| e["kind"] == "message" && e["sha256"] == sha.as_str());
    outln!(
        "cairn restore {upn} {}: {} restored, {} skipped → {}",
        row.path,
        report.restored,
        report.skipped_total,
        if back {
            "the message is back in the Inbox, identical"
        } else {
            "the message is NOT back"
        }
    );
    Ok(back)
}

/// Plays the simulator's ransomware attack on `target`, backs it up and scores the new
/// restore point against the previous one, as every `cairn backup` does. Returns whether
/// it was found suspect.
async fn ransomware(
    server: &SimServer,
    engine: &Arc<cairn_backup::Engine>,
    repo: &Arc<Repo>,
    catalog: &Arc<cairn_catalog::SqliteCatalog>,
    target: &cairn_backup::Target,
) -> anyhow::Result<bool> {
    use cairn_catalog::Catalog;
    let attack: Value = reqwest::Client::new()
        .post(format!("{}/_sim/mutate", server.url()))
        .json(
            &serde_json::json!({"seed": 9, "ops": ["encrypt"], "resource": target.id,
                                  "delete_mail": 0.4}),
        )
        .send()
        .await?
        .json()
        .await?;
    outln!(
        "
ransomware hits {}: {} files encrypted and renamed, ransom notes dropped, mail purged",
        target.name,
        attack["applied"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["op"] == "encrypt").count())
            .unwrap_or(0)
    );
    let report = engine.run(vec![target.clone()]).await;
    print_job(&report)?;
    let (repo, catalog, name) = (repo.clone(), catalog.clone(), target.name.clone());
    let findings = tokio::task::spawn_blocking(move || {
        let res = catalog.resource("contoso", cairn_catalog::ResourceKind::User, &name)?;
        let points = catalog.points(res.id)?;
        let [.., prev, new] = points.as_slice() else {
            anyhow::bail!("{name} has fewer than two restore points");
        };
        let t = cairn_app::detect::Thresholds::default();
        let f = cairn_app::detect::score(&*catalog, &repo, &res, prev, new, &t)?;
        anyhow::Ok((prev.seq, new.seq, f))
    })
    .await??;
    let (prev, new, findings) = findings;
    for f in &findings {
        outln!("  SUSPECT {}: {}", f.signal, f.summary);
    }
    if !findings.is_empty() {
        outln!(
            "restore point {new} is suspect; `cairn backup` holds point {prev}, the last clean one, so no retention rule can expire it"
        );
    }
    Ok(!findings.is_empty())
}

/// One line per resource: what the run found and fetched.
fn print_job(r: &cairn_backup::JobReport) -> anyhow::Result<()> {
    for res in &r.resources {
        match &res.snapshot {
            Some(s) => outln!(
                "  {:<36} {:>5} items  +{} ~{} -{}  fetched {:>4} ({:.1} MB)  → restore point {}",
                res.resource,
                res.items,
                res.added,
                res.changed,
                res.removed,
                res.fetched,
                res.fetched_bytes as f64 / 1e6,
                &s[..8]
            ),
            None => outln!(
                "  {:<36} no restore point: {}",
                res.resource,
                res.error.as_deref().unwrap_or("nothing to back up")
            ),
        }
    }
    outln!(
        "  {} requests to Graph, {} throttled, {:.1} s",
        r.requests,
        r.throttled,
        r.seconds
    );
    Ok(())
}
