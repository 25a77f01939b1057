//! The tenant's SharePoint/OneDrive budget (resource units per minute, per app and tenant)
//! shared by every worker through a NATS KV bucket.
//!
//! The bucket holds, per tenant, a ledger of grants: (time, units). A worker takes a lease
//! of units from it with a compare-and-set on the ledger's revision, when the grants of the
//! last minute plus the lease's life stay within the budget, and spends the lease locally
//! for at most a twelfth of the window; what is left then is dropped, never carried over. So any minute
//! of requests, as Microsoft counts them, comes from grants made within a minute and a
//! lease's life of its end, which the ledger never lets exceed the budget. Times are the
//! workers' clocks: they must be synchronised (NTP), as for any distributed lease.

use anyhow::Context;
use async_nats::jetstream::{self, kv, stream};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Microsoft's window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a worker may spend a lease: a twelfth of the window (5 s of Microsoft's minute).
const LEASE_PART: u32 = 12;

#[derive(Default, Serialize, Deserialize)]
struct Ledger {
    /// (milliseconds since the epoch, units)
    grants: Vec<(u64, u32)>,
}

struct Lease {
    left: u32,
    until: Instant,
}

pub struct KvBudget {
    kv: kv::Store,
    key: String,
    /// Units per window.
    per_min: u32,
    window: Duration,
    lease: tokio::sync::Mutex<Lease>,
}

impl std::fmt::Debug for KvBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvBudget")
            .field("key", &self.key)
            .field("per_min", &self.per_min)
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl KvBudget {
    /// The budget of `per_window` units in any `window` (Microsoft's: [`WINDOW`]) of the
    /// tenant `tenant_id`, kept in `bucket` (made if missing).
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        tenant_id: &str,
        per_window: u32,
        window: Duration,
    ) -> anyhow::Result<KvBudget> {
        let per_min = per_window;
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                // The bucket's stream is made as the KV conventions describe it (one value
                // per key, rollups, no deletes): the client's own bucket creation asks for
                // settings servers of the 2.9 line answer in a form it cannot read.
                js.get_or_create_stream(stream::Config {
                    name: format!("KV_{bucket}"),
                    subjects: vec![format!("$KV.{bucket}.>")],
                    description: Some("Cairn: Microsoft's budgets shared by workers".into()),
                    max_messages_per_subject: 1,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: stream::DiscardPolicy::New,
                    storage: stream::StorageType::File,
                    max_age: Duration::from_secs(24 * 3600),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("the KV bucket {bucket}"))?;
                js.get_key_value(bucket)
                    .await
                    .with_context(|| format!("the KV bucket {bucket}"))?
            }
        };
        // Keys allow few characters; the tenant id is hashed (no secret, but not everything
        // an id may hold is a valid key).
        let key = format!(
            "files.{}",
            hex::encode(&sha2::Sha256::digest(tenant_id.as_bytes())[..12])
        );
        Ok(KvBudget {
            kv,
            key,
            per_min: per_min.max(1),
            window,
            lease: tokio::sync::Mutex::new(Lease {
                left: 0,
                until: Instant::now(),
            }),
        })
    }

    /// Waits for `ru` units of the shared budget.
    pub async fn take_units(&self, ru: u32) {
        let ru = ru.clamp(1, self.per_min);
        let mut lease = self.lease.lock().await;
        if lease.left >= ru && Instant::now() < lease.until {
            lease.left -= ru;
            return;
        }
        // A twentieth of the budget per lease: few ledger updates, little left unspent.
        let want = ru.max(self.per_min / 20).min(self.per_min);
        self.claim(want).await;
        *lease = Lease {
            left: want - ru,
            until: Instant::now() + self.lease(),
        };
    }

    fn lease(&self) -> Duration {
        self.window / LEASE_PART
    }

    /// Adds a grant of `n` units to the ledger once the budget has room for it.
    async fn claim(&self, n: u32) {
        let span = (self.window + self.lease()).as_millis() as u64;
        let mut failures = 0u32;
        loop {
            let (mut ledger, revision) = match self.kv.entry(self.key.as_str()).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => (
                    serde_json::from_slice::<Ledger>(&e.value).unwrap_or_default(),
                    Some(e.revision),
                ),
                Ok(Some(e)) => (Ledger::default(), Some(e.revision)),
                Ok(None) => (Ledger::default(), None),
                Err(e) => {
                    failures += 1;
                    self.backoff(failures, &e.to_string()).await;
                    continue;
                }
            };
            let now = now_ms();
            ledger.grants.retain(|(t, _)| t + span > now);
            let used: u64 = ledger.grants.iter().map(|(_, u)| u64::from(*u)).sum();
            if used + u64::from(n) > u64::from(self.per_min) {
                // Wait until enough grants have aged out.
                ledger.grants.sort();
                let mut freed = 0u64;
                let mut wait = Duration::from_millis(200);
                for (t, u) in &ledger.grants {
                    freed += u64::from(*u);
                    if used - freed + u64::from(n) <= u64::from(self.per_min) {
                        wait = Duration::from_millis((t + span).saturating_sub(now) + 1);
                        break;
                    }
                }
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
                continue;
            }
            ledger.grants.push((now, n));
            let body = match serde_json::to_vec(&ledger) {
                Ok(b) => bytes::Bytes::from(b),
                Err(_) => return,
            };
            let written = match revision {
                Some(r) => self
                    .kv
                    .update(self.key.as_str(), body, r)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .kv
                    .create(self.key.as_str(), body)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(_) => return,
                // Another worker wrote first: read again.
                Err(_) => {
                    let jitter: u64 = rand::random::<u64>() % 20;
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
            }
        }
    }

    async fn backoff(&self, failures: u32, why: &str) {
        if failures % 10 == 1 {
            tracing::warn!("the shared SharePoint budget cannot be read ({why}); retrying");
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(20)))).await;
    }
}

impl cairn_graph::pacer::SharedBudget for KvBudget {
    fn take(&self, ru: u32) -> BoxFuture<'_, ()> {
        Box::pin(self.take_units(ru))
    }
}
