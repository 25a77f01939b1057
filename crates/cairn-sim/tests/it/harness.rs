//! A simulator on a random port and a small, deliberately naive Graph client for tests:
//! token, GET with retries (429/5xx/401/connection errors), paging to the end.

use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use serde_json::Value;
use std::time::Duration;

pub fn small_spec(seed: u64) -> TenantSpec {
    TenantSpec {
        seed,
        users: 4,
        groups: 1,
        sites: 2,
        mail_per_mailbox: 40,
        events_per_mailbox: 8,
        contacts_per_mailbox: 6,
        files_per_drive: 20,
        items_per_list: 5,
        max_item_size: 2 * 1024 * 1024,
        ..TenantSpec::default()
    }
}

pub fn config(spec: TenantSpec) -> SimConfig {
    let mut cfg = SimConfig::new(spec);
    cfg.throttle = ThrottleMode::Off;
    cfg
}

pub struct Sim {
    pub server: SimServer,
    pub http: reqwest::Client,
    pub token: String,
    /// Requests retried by this client (faults seen).
    pub retries: std::sync::atomic::AtomicU64,
}

pub async fn start(cfg: SimConfig) -> Sim {
    let server = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut sim = Sim {
        server,
        http,
        token: String::new(),
        retries: Default::default(),
    };
    sim.token = sim.fetch_token().await;
    sim
}

/// What a GET ended in.
#[derive(Debug)]
pub enum Outcome {
    Ok(Value),
    Status(u16, Value),
}

impl Sim {
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub async fn fetch_token(&self) -> String {
        let cfg = &self.server.sim.cfg;
        let v: Value = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.url(),
                cfg.tenant_id
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", cfg.client_id.as_str()),
                ("client_secret", cfg.client_secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().expect("token").to_string()
    }

    pub fn abs(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/v1.0{path}", self.url())
        }
    }

    /// One GET without retries.
    pub async fn get_once(&self, path: &str, headers: &[(&str, &str)]) -> Result<Outcome, String> {
        let mut rb = self.http.get(self.abs(path)).bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        let v: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| format!("bad json: {e}"))?
        };
        if status == 200 {
            Ok(Outcome::Ok(v))
        } else {
            Ok(Outcome::Status(status, v))
        }
    }

    /// GET with the retries a Graph client must do; 410 and 4xx come back as `Status`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Outcome {
        for _ in 0..60 {
            match self.get_once(path, headers).await {
                Ok(Outcome::Status(s, _)) if s == 429 || s >= 500 || s == 401 => {
                    self.retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    self.retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(o) => return o,
            }
        }
        panic!("GET {path} kept failing");
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        match self.get(path, &[]).await {
            Outcome::Ok(v) => v,
            Outcome::Status(s, v) => panic!("GET {path}: {s} {v}"),
        }
    }

    /// Follows nextLinks to the end. Returns the items and the deltaLink (if any), or the
    /// status of a non-retryable failure (410 …).
    pub async fn walk(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Vec<Value>, Option<String>), u16> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        let mut delta = None;
        while let Some(p) = next {
            match self.get(&p, headers).await {
                Outcome::Ok(page) => {
                    out.extend(page["value"].as_array().cloned().unwrap_or_default());
                    next = page["@odata.nextLink"].as_str().map(str::to_string);
                    delta = page["@odata.deltaLink"].as_str().map(str::to_string);
                }
                Outcome::Status(s, _) => return Err(s),
            }
        }
        Ok((out, delta))
    }

    /// Raw bytes of a GET, following a 302 to a download URL (retrying faults).
    pub async fn bytes(&self, path: &str, range: Option<&str>) -> (u16, Vec<u8>, Option<String>) {
        for _ in 0..60 {
            let resp = match self
                .http
                .get(self.abs(path))
                .bearer_auth(&self.token)
                .send()
                .await
            {
                Ok(r) => r,
                Err(_) => continue,
            };
            let (status, resp) = if resp.status().as_u16() == 302 {
                let loc = resp.headers()["location"].to_str().unwrap().to_string();
                let mut rb = self.http.get(loc);
                if let Some(r) = range {
                    rb = rb.header("Range", r);
                }
                match rb.send().await {
                    Ok(r) => (r.status().as_u16(), r),
                    Err(_) => continue,
                }
            } else {
                (resp.status().as_u16(), resp)
            };
            if status == 429 || status >= 500 || status == 401 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let cr = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_string());
            match resp.bytes().await {
                Ok(b) => return (status, b.to_vec(), cr),
                Err(_) => continue,
            }
        }
        panic!("GET {path} kept failing");
    }

    pub async fn admin(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn mutate(&self, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/_sim/mutate", self.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "mutate failed");
        resp.json().await.unwrap()
    }

    /// `POST /_sim/mutate` whatever it answers: status and body.
    pub async fn mutate_raw(&self, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/_sim/mutate", self.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    pub async fn manifest(&self, resource: &str) -> Vec<Value> {
        self.admin(&format!("/_sim/manifest?resource={resource}"))
            .await
            .as_array()
            .cloned()
            .expect("manifest is an array")
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A directory removed when the test ends.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "cairn-sim-{tag}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
