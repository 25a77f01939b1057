//! Retries: exponential backoff with full jitter for 5xx, resets and timeouts; `Retry-After`
//! honoured exactly on 429/503, and turned into a fence that pauses every request to the
//! same mailbox or tenant instead of hammering it.

use crate::error::GraphError;
use crate::pacer::Pacer;
use crate::transport::{Request, Response, Transport};
use futures::future::BoxFuture;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(cap, base · 2^attempt)].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let ms = exp.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 4..=ms.max(1)))
    }
}

pub struct RetryLayer<T> {
    inner: T,
    policy: RetryPolicy,
    pacer: Arc<Pacer>,
}

impl<T: Transport> RetryLayer<T> {
    pub fn new(inner: T, policy: RetryPolicy, pacer: Arc<Pacer>) -> Self {
        Self {
            inner,
            policy,
            pacer,
        }
    }
}

fn retryable_status(s: u16) -> bool {
    matches!(s, 429 | 500 | 502 | 503 | 504)
}

impl<T: Transport> Transport for RetryLayer<T> {
    fn send(&self, req: Request) -> BoxFuture<'_, Result<Response, GraphError>> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                self.pacer.wait_fence(&req.resource).await;
                let result = self.inner.send(req.clone()).await;
                let last = match result {
                    Ok(resp) if !retryable_status(resp.status) => return Ok(resp),
                    Ok(resp) => {
                        if resp.status == 429 {
                            self.pacer.note_throttled();
                        }
                        let err = resp.error(&req);
                        match resp.retry_after() {
                            // The service said when: pause everyone who shares the limit.
                            Some(wait) if resp.status == 429 || resp.status == 503 => {
                                self.pacer.fence(&req.resource, wait);
                            }
                            _ => {
                                if attempt < self.policy.max_attempts {
                                    tokio::time::sleep(self.policy.backoff(attempt)).await;
                                }
                            }
                        }
                        err
                    }
                    Err(e) if e.is_retryable() => {
                        if attempt < self.policy.max_attempts {
                            tokio::time::sleep(self.policy.backoff(attempt)).await;
                        }
                        e
                    }
                    Err(e) => return Err(e),
                };
                tracing::debug!(attempt, error = %last, "retrying");
                if attempt >= self.policy.max_attempts {
                    return Err(GraphError::Exhausted {
                        attempts: attempt,
                        last: Box::new(last),
                    });
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for a in 0..20 {
            assert!(p.backoff(a) <= Duration::from_secs(1));
        }
        assert!(p.backoff(1) <= Duration::from_millis(200));
    }
}
