//! A simulated tenant running in the test's own process, a Graph client signed in to it, and
//! the simulator's test endpoints (`/_sim/…`): what a resource holds, changes made as its
//! users would make them, request counts.

use cairn_graph::{Credential, GraphClient, GraphConfig, RetryPolicy};
use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Retries quick enough for a test to ride out injected faults in seconds, many enough
/// that a fault rate of 10% never exhausts them.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 30,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(300),
    }
}

/// A simulator on a free port of 127.0.0.1, stopped when dropped.
pub struct SimTenant {
    server: SimServer,
    http: reqwest::Client,
}

impl SimTenant {
    /// A tenant generated from `spec`, without throttling (tests are about behaviour, not
    /// Microsoft's limits) and without faults.
    pub async fn start(spec: TenantSpec) -> Self {
        Self::start_with(spec, |_| {}).await
    }

    /// As [`SimTenant::start`], with `configure` changing the configuration first: a fault
    /// rate, latency, throttling after all.
    pub async fn start_with(spec: TenantSpec, configure: impl FnOnce(&mut SimConfig)) -> Self {
        let mut cfg = SimConfig::new(spec);
        cfg.throttle = ThrottleMode::Off;
        configure(&mut cfg);
        let server = SimServer::start(cfg, ([127, 0, 0, 1], 0).into())
            .await
            .expect("the simulator starts");
        Self {
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn server(&self) -> &SimServer {
        &self.server
    }

    /// The configuration it runs with: tenant id, app registration, faults.
    pub fn config(&self) -> &SimConfig {
        &self.server.sim.cfg
    }

    /// Graph and sign-in root, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Where it is and the app registration it accepts.
    pub fn app(&self) -> SimApp {
        let c = self.config();
        SimApp {
            url: self.url(),
            tenant_id: c.tenant_id.clone(),
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone(),
        }
    }

    /// A Graph client signed in with the client secret, retrying as [`fast_retry`].
    pub fn graph(&self) -> Arc<GraphClient> {
        self.graph_with(fast_retry())
    }

    /// A Graph client signed in with the client secret, retrying as `retry`.
    pub fn graph_with(&self, retry: RetryPolicy) -> Arc<GraphClient> {
        self.app().graph(retry)
    }

    /// Every item the simulator holds for a user, group or site now (`/_sim/manifest`).
    pub async fn manifest(&self, resource: &str) -> Vec<ManifestEntry> {
        let url = format!("{}/_sim/manifest", self.url());
        let v = self
            .admin(self.http.get(url).query(&[("resource", resource)]))
            .await;
        serde_json::from_value(v).expect("the manifest is a list of entries")
    }

    /// Changes made as a tenant's users make them (`/_sim/mutate`, body as the simulator's
    /// `MutateRequest`): what was applied, one JSON object per change.
    pub async fn mutate(&self, body: Value) -> Vec<Value> {
        let url = format!("{}/_sim/mutate", self.url());
        let r = self.admin(self.http.post(url).json(&body)).await;
        match r["applied"].as_array() {
            Some(applied) => applied.clone(),
            None => panic!("a mutation without `applied`: {r}"),
        }
    }

    /// Requests served so far, in all and by endpoint, and faults injected (`/_sim/stats`).
    pub async fn stats(&self) -> Value {
        let url = format!("{}/_sim/stats", self.url());
        self.admin(self.http.get(url)).await
    }

    /// Expires every delta token handed out so far: its next use is answered 410 Gone.
    pub async fn expire_tokens(&self) {
        let url = format!("{}/_sim/expire-tokens", self.url());
        self.admin(self.http.post(url)).await;
    }

    /// An access token for requests made around the Graph client.
    pub async fn token(&self) -> String {
        let c = self.config();
        let url = format!("{}/{}/oauth2/v2.0/token", self.url(), c.tenant_id);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let v = self.admin(self.http.post(url).form(&form)).await;
        v["access_token"]
            .as_str()
            .expect("an access token")
            .to_string()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// Sends a request to the simulator outside Graph; its JSON answer, or a panic saying
    /// what went wrong.
    async fn admin(&self, req: reqwest::RequestBuilder) -> Value {
        let resp = req.send().await.expect("the simulator answers");
        let (status, url) = (resp.status(), resp.url().clone());
        let body = resp.text().await.expect("the simulator's answer is read");
        assert!(status.is_success(), "{url}: {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
    }
}

/// One item of a manifest: the simulator's id, its kind (`message`, `file`, `event`,
/// `contact`, `post`, `listItem`…), its folder or path, and the sha256 of its content (for
/// JSON items, of their content fields; see `cairn_sim::content`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct ManifestEntry {
    pub id: String,
    pub kind: String,
    pub path: String,
    pub sha256: String,
}

/// What a Graph client needs to reach a simulator, also in another process: its URL and
/// the app registration it accepts. (No `Debug`: it holds the secret.)
#[derive(Clone)]
pub struct SimApp {
    pub url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl SimApp {
    /// A Graph client signed in with the client secret, Graph and sign-in both at `url`.
    pub fn graph(&self, retry: RetryPolicy) -> Arc<GraphClient> {
        let mut cfg = GraphConfig::new(
            &self.tenant_id,
            &self.client_id,
            Credential::Secret(self.client_secret.clone().into()),
        );
        cfg.graph_url = self.url.clone();
        cfg.login_url = self.url.clone();
        cfg.retry = retry;
        Arc::new(GraphClient::new(cfg).expect("a Graph client for the simulator"))
    }
}
