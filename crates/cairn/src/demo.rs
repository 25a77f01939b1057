//! `cairn demo`: the whole story on embedded defaults. Today it starts the simulator and
//! walks what it serves over Graph, as any client would.

use crate::sim::{print_banner, runtime};
use anyhow::{Context, bail};
use cairn_sim::{SimConfig, SimServer, TenantSpec};
use serde_json::Value;

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/v1.0{path}", self.url)
        };
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("GET {path}: body"))?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", body["error"]["message"]);
        }
        Ok(body)
    }

    /// Every item of every page.
    async fn all(&self, path: &str) -> anyhow::Result<(Vec<Value>, Option<String>)> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        let mut delta = None;
        while let Some(p) = next {
            let page = self.get(&p).await?;
            out.extend(page["value"].as_array().cloned().unwrap_or_default());
            next = page["@odata.nextLink"].as_str().map(str::to_string);
            delta = page["@odata.deltaLink"].as_str().map(str::to_string);
        }
        Ok((out, delta))
    }
}

pub fn demo() -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let spec = TenantSpec {
            users: 10,
            ..TenantSpec::default()
        };
        let cfg = SimConfig::new(spec);
        let server = SimServer::start(cfg, "127.0.0.1:0".parse()?).await?;
        print_banner(&server);
        let sim_cfg = server.sim.cfg.clone();
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                server.url(),
                sim_cfg.tenant_id
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", sim_cfg.client_id.as_str()),
                ("client_secret", sim_cfg.client_secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await?
            .json()
            .await?;
        let client = Client {
            http,
            url: server.url(),
            token: token["access_token"]
                .as_str()
                .context("no access token")?
                .to_string(),
        };
        println!("\nusers:");
        let (users, _) = client
            .all("/users?$select=id,userPrincipalName,mail")
            .await?;
        for u in &users {
            println!(
                "  {}  {}",
                u["userPrincipalName"].as_str().unwrap_or(""),
                if u["mail"].is_null() {
                    "(no mailbox)"
                } else {
                    ""
                }
            );
        }
        let first = users[0]["id"].as_str().context("no user")?;
        println!(
            "\nmail folders of {}:",
            users[0]["userPrincipalName"].as_str().unwrap_or("")
        );
        let (folders, _) = client
            .all(&format!("/users/{first}/mailFolders/delta"))
            .await?;
        let mut total = 0;
        for f in folders
            .iter()
            .filter(|f| f["@odata.type"] != "#microsoft.graph.mailSearchFolder")
        {
            let id = f["id"].as_str().unwrap_or("");
            let (msgs, _) = client
                .all(&format!(
                    "/users/{first}/mailFolders/{id}/messages/delta?$select=subject"
                ))
                .await?;
            total += msgs.len();
            println!(
                "  {:<28} {:>4} messages",
                f["displayName"].as_str().unwrap_or(""),
                msgs.len()
            );
        }
        println!("  {total} messages in all");
        let (files, _) = client
            .all(&format!("/users/{first}/drive/root/delta"))
            .await?;
        let count = files.iter().filter(|f| f.get("file").is_some()).count();
        println!("\nOneDrive: {} items, {count} files", files.len());
        let stats: Value = reqwest::get(format!("{}/_sim/stats", server.url()))
            .await?
            .json()
            .await?;
        println!(
            "\nsimulator: {} requests, {} throttled",
            stats["requests_total"], stats["throttled_total"]
        );
        server.stop().await;
        Ok(())
    })
}
