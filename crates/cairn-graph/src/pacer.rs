//! Proactive pacing: stay inside Microsoft's limits so that 429s are rare. Per mailbox a
//! concurrency cap and a request budget, for SharePoint/OneDrive the tenant's resource-unit
//! budget, and fences set by `Retry-After` that pause everyone sharing a limit.

use crate::error::GraphError;
use crate::transport::{Request, Resource, Response, Transport};
use futures::future::BoxFuture;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits to pace against. Defaults are Microsoft's published numbers (GRAPH-NOTES §3).
#[derive(Clone, Debug)]
pub struct Limits {
    pub mailbox_concurrency: u32,
    pub mailbox_requests_per_10min: u32,
    pub files_ru_per_min: u32,
    /// Requests in flight across everything (a guard for this process's sockets and
    /// memory; Graph sets no such limit, only per mailbox and per tenant budgets).
    pub global_concurrency: u32,
    /// The tenant's SharePoint/OneDrive budget as other processes share it (workers of one
    /// app): every resource unit is also taken from it. `None`: this process is alone.
    pub shared_files: Option<Arc<dyn SharedBudget>>,
}

/// A budget of resource units shared by every process that calls Graph as one app:
/// Microsoft's limits are per app and tenant, not per process.
pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// Waits until `ru` resource units may be spent now, and counts them as spent.
    fn take(&self, ru: u32) -> BoxFuture<'_, ()>;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            mailbox_concurrency: 4,
            mailbox_requests_per_10min: 10_000,
            files_ru_per_min: 1_250,
            global_concurrency: 256,
            shared_files: None,
        }
    }
}

/// A quota that never exceeds `limit` per `window`, in any window: 5 % burst, the rest
/// spread evenly.
fn quota(limit: u32, window: Duration) -> Quota {
    let limit = limit.max(2);
    let burst = (limit / 20).max(1);
    let steady = limit - burst;
    let period = window / steady;
    Quota::with_period(period.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FenceKey {
    Mailbox(String),
    Files,
    Tenant,
}

fn fence_key(r: &Resource) -> FenceKey {
    match r {
        Resource::Mailbox(m) => FenceKey::Mailbox(m.to_ascii_lowercase()),
        Resource::Files { .. } => FenceKey::Files,
        Resource::Tenant => FenceKey::Tenant,
    }
}

#[derive(Default, Debug)]
pub struct PacerStats {
    pub throttled: AtomicU64,
    pub fence_waits: AtomicU64,
    pub fence_wait_ms: AtomicU64,
}

pub struct Pacer {
    limits: Limits,
    global: Arc<Semaphore>,
    mailboxes: Mutex<HashMap<String, Arc<Semaphore>>>,
    mailbox_rate: DefaultKeyedRateLimiter<String>,
    files_rate: DefaultDirectRateLimiter,
    fences: Mutex<HashMap<FenceKey, Instant>>,
    pub stats: PacerStats,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Held while a request is in flight.
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _mailbox: Option<OwnedSemaphorePermit>,
}

impl Pacer {
    pub fn new(limits: Limits) -> Self {
        Self {
            global: Arc::new(Semaphore::new(limits.global_concurrency.max(1) as usize)),
            mailboxes: Mutex::new(HashMap::new()),
            mailbox_rate: RateLimiter::keyed(quota(
                limits.mailbox_requests_per_10min,
                Duration::from_secs(600),
            )),
            files_rate: RateLimiter::direct(quota(
                limits.files_ru_per_min,
                Duration::from_secs(60),
            )),
            fences: Mutex::new(HashMap::new()),
            stats: PacerStats::default(),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Pauses every request that shares `r`'s limit for `wait`.
    pub fn fence(&self, r: &Resource, wait: Duration) {
        let until = Instant::now() + wait;
        let mut f = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let e = f.entry(fence_key(r)).or_insert(until);
        if *e < until {
            *e = until;
        }
    }

    pub fn note_throttled(&self) {
        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until no fence covers `r`.
    pub async fn wait_fence(&self, r: &Resource) {
        loop {
            let until = {
                let f = self.fences.lock().unwrap_or_else(|e| e.into_inner());
                f.get(&fence_key(r)).copied()
            };
            match until {
                Some(t) if t > Instant::now() => {
                    let d = t - Instant::now();
                    self.stats.fence_waits.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .fence_wait_ms
                        .fetch_add(d.as_millis() as u64, Ordering::Relaxed);
                    tokio::time::sleep(d).await;
                }
                _ => return,
            }
        }
    }

    /// Waits for room under every limit that applies to `r`.
    pub async fn acquire(&self, r: &Resource) -> Permit {
        let mailbox = match r {
            Resource::Mailbox(m) => {
                let key = m.to_ascii_lowercase();
                let sem = {
                    let mut map = self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry(key.clone())
                        .or_insert_with(|| {
                            Arc::new(Semaphore::new(
                                self.limits.mailbox_concurrency.max(1) as usize
                            ))
                        })
                        .clone()
                };
                let permit = sem.acquire_owned().await.ok();
                self.mailbox_rate.until_key_ready(&key).await;
                permit
            }
            Resource::Files { ru } => {
                let n = NonZeroU32::new((*ru).max(1)).unwrap_or(NonZeroU32::MIN);
                // A cost larger than the burst can never be admitted at once: take it in ones.
                if self.files_rate.until_n_ready(n).await.is_err() {
                    for _ in 0..n.get() {
                        self.files_rate.until_ready().await;
                    }
                }
                if let Some(shared) = &self.limits.shared_files {
                    shared.take(n.get()).await;
                }
                None
            }
            Resource::Tenant => None,
        };
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the global semaphore is never closed");
        Permit {
            _global: global,
            _mailbox: mailbox,
        }
    }
}

/// Paces requests before they reach the retry layer.
pub struct PaceLayer<T> {
    inner: T,
    pacer: Arc<Pacer>,
}

impl<T: Transport> PaceLayer<T> {
    pub fn new(inner: T, pacer: Arc<Pacer>) -> Self {
        Self { inner, pacer }
    }
}

impl<T: Transport> Transport for PaceLayer<T> {
    fn send(&self, req: Request) -> BoxFuture<'_, Result<Response, GraphError>> {
        Box::pin(async move {
            let _permit = self.pacer.acquire(&req.resource).await;
            self.inner.send(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mailbox_concurrency_is_capped() {
        let p = Arc::new(Pacer::new(Limits {
            mailbox_concurrency: 2,
            ..Limits::default()
        }));
        let r = Resource::Mailbox("a@x".into());
        let a = p.acquire(&r).await;
        let _b = p.acquire(&r).await;
        let p2 = p.clone();
        let r2 = r.clone();
        let third = tokio::spawn(async move { p2.acquire(&r2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "a third request waits");
        // Another mailbox does not wait.
        let _other = p.acquire(&Resource::Mailbox("b@x".into())).await;
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("admitted once a slot frees")
            .unwrap();
    }

    #[tokio::test]
    async fn fences_pause_the_resource() {
        let p = Pacer::new(Limits::default());
        let r = Resource::Mailbox("a@x".into());
        p.fence(&r, Duration::from_millis(120));
        let t = Instant::now();
        p.wait_fence(&r).await;
        assert!(t.elapsed() >= Duration::from_millis(100));
        let t = Instant::now();
        p.wait_fence(&Resource::Mailbox("b@x".into())).await;
        assert!(t.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn quota_never_exceeds_the_window() {
        // burst + steady rate over the window equals the limit
        let q = quota(10_000, Duration::from_secs(600));
        let per_window = q.burst_size().get() as u128
            + Duration::from_secs(600).as_nanos() / q.replenish_interval().as_nanos();
        assert!(per_window <= 10_000, "{per_window}");
    }
}
