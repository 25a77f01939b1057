//! Microsoft's throttling, modelled: per-mailbox concurrency and request budget (Outlook),
//! a tenant-wide resource-unit budget (SharePoint/OneDrive), a global app budget.

use crate::config::{ThrottleLimits, ThrottleMode};
use crate::keys::Res;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Which service limits a request falls under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// Outlook: mail, calendar, contacts of one mailbox.
    Mailbox(Res),
    /// SharePoint and OneDrive, charged in resource units.
    Files { ru: u32 },
    /// Teams reads of one team or chat by one app (a hash of both): requests per second.
    Teams(u64),
    /// Directory and everything else: only the global limit.
    Other,
}

/// A sliding window of counts in fixed slots.
#[derive(Debug)]
struct Window {
    slot_secs: u64,
    slots: Vec<u32>,
    /// Slot index (absolute, in slot units) of `slots[head]`.
    head_abs: u64,
}

impl Window {
    fn new(slot_secs: u64, n: usize) -> Self {
        Self {
            slot_secs,
            slots: vec![0; n],
            head_abs: 0,
        }
    }

    fn advance(&mut self, now_secs: u64) {
        let abs = now_secs / self.slot_secs;
        if abs > self.head_abs {
            let n = self.slots.len() as u64;
            let steps = (abs - self.head_abs).min(n);
            for i in 1..=steps {
                let idx = ((self.head_abs + i) % n) as usize;
                self.slots[idx] = 0;
            }
            self.head_abs = abs;
        }
    }

    fn total(&self) -> u64 {
        self.slots.iter().map(|&x| x as u64).sum()
    }

    fn add(&mut self, x: u32) {
        let n = self.slots.len() as u64;
        let idx = (self.head_abs % n) as usize;
        self.slots[idx] += x;
    }

    /// Seconds until at least `need` units have left the window.
    fn wait_for(&self, need: u64, now_secs: u64) -> u64 {
        let n = self.slots.len() as u64;
        let mut freed = 0u64;
        for age in (0..n).rev() {
            // The slot that is `age` slots old leaves the window after (n - age) slots.
            let abs = self.head_abs.saturating_sub(age);
            freed += self.slots[(abs % n) as usize] as u64;
            if freed >= need {
                let leave_at = (abs + n) * self.slot_secs;
                return leave_at.saturating_sub(now_secs).max(1);
            }
        }
        n * self.slot_secs
    }
}

#[derive(Debug)]
struct Inner {
    inflight: HashMap<Res, u32>,
    mailbox: HashMap<Res, Window>,
    teams: HashMap<u64, Window>,
    files: Window,
    global: Window,
    /// The most requests one mailbox had in flight, the one arriving included (whether
    /// admitted or not): what a client asked of the concurrency limit.
    peak_mailbox_inflight: u32,
    /// The most resource units asked for within one window (the arriving request's
    /// included, whether admitted or not).
    peak_files_ru: u64,
}

/// The highest demand the simulator has seen against the limits since it started.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Peaks {
    pub mailbox_concurrency: u32,
    pub files_ru_per_min: u64,
}

#[derive(Debug)]
pub struct Throttle {
    mode: ThrottleMode,
    limits: ThrottleLimits,
    files_budget: u32,
    start: Instant,
    inner: Mutex<Inner>,
}

/// A rejected request: what to answer.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
    pub retry_after: u64,
    pub headers: Vec<(String, String)>,
    pub files: bool,
}

/// Held while a request runs; releases its mailbox concurrency slot on drop.
pub struct Permit {
    throttle: Option<(Arc<Throttle>, Res)>,
    /// `RateLimit-*` headers to add to the response (files, past 80 % of budget).
    pub headers: Vec<(String, String)>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((t, r)) = self.throttle.take() {
            let mut inner = t.inner.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = inner.inflight.get_mut(&r) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    inner.inflight.remove(&r);
                }
            }
        }
    }
}

impl Throttle {
    pub fn new(mode: ThrottleMode, limits: ThrottleLimits, licences: u32) -> Self {
        let files_budget = limits.sharepoint_budget(licences);
        Self {
            mode,
            limits,
            files_budget,
            start: Instant::now(),
            inner: Mutex::new(Inner {
                inflight: HashMap::new(),
                mailbox: HashMap::new(),
                teams: HashMap::new(),
                files: Window::new(1, 60),
                global: Window::new(1, 10),
                peak_mailbox_inflight: 0,
                peak_files_ru: 0,
            }),
        }
    }

    pub fn files_budget_per_min(&self) -> u32 {
        self.files_budget
    }

    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    pub fn mode(&self) -> ThrottleMode {
        self.mode
    }

    /// The highest demand seen (nothing is recorded with throttling off).
    pub fn peaks(&self) -> Peaks {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Peaks {
            mailbox_concurrency: inner.peak_mailbox_inflight,
            files_ru_per_min: inner.peak_files_ru,
        }
    }

    /// Admits or rejects a request. Throttled requests still count, as on Graph.
    pub fn admit(self: &Arc<Self>, bucket: Bucket) -> Result<Permit, Rejection> {
        if self.mode == ThrottleMode::Off {
            return Ok(Permit {
                throttle: None,
                headers: vec![],
            });
        }
        let now = self.start.elapsed().as_secs();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.global.advance(now);
        inner.global.add(1);
        if inner.global.total() > self.limits.global_requests_per_10s as u64 {
            return Err(Rejection {
                status: 429,
                code: "TooManyRequests",
                message: "Too many requests for this application.",
                retry_after: 2,
                headers: vec![],
                files: false,
            });
        }
        match bucket {
            Bucket::Other => Ok(Permit {
                throttle: None,
                headers: vec![],
            }),
            Bucket::Teams(k) => {
                let limit = self.limits.teams_requests_per_sec as u64;
                let w = inner.teams.entry(k).or_insert_with(|| Window::new(1, 1));
                w.advance(now);
                w.add(1);
                if w.total() > limit {
                    return Err(Rejection {
                        status: 429,
                        code: "TooManyRequests",
                        message: "Too many requests to this team or chat by this application.",
                        retry_after: 1,
                        headers: vec![],
                        files: false,
                    });
                }
                Ok(Permit {
                    throttle: None,
                    headers: vec![],
                })
            }
            Bucket::Mailbox(r) => {
                let asked = inner.inflight.get(&r).copied().unwrap_or(0) + 1;
                inner.peak_mailbox_inflight = inner.peak_mailbox_inflight.max(asked);
                let limit = self.limits.mailbox_requests_per_10min as u64;
                let w = inner
                    .mailbox
                    .entry(r)
                    .or_insert_with(|| Window::new(10, 60));
                w.advance(now);
                w.add(1);
                if w.total() > limit {
                    let wait = w.wait_for(w.total() - limit, now);
                    return Err(Rejection {
                        status: 429,
                        code: "ApplicationThrottled",
                        message: "Application is over its MailboxRequests limit.",
                        retry_after: wait,
                        headers: vec![],
                        files: false,
                    });
                }
                let inflight = inner.inflight.entry(r).or_insert(0);
                if *inflight >= self.limits.mailbox_concurrency {
                    return Err(Rejection {
                        status: 429,
                        code: "ApplicationThrottled",
                        message: "Application is over its MailboxConcurrency limit.",
                        retry_after: 1,
                        headers: vec![],
                        files: false,
                    });
                }
                *inflight += 1;
                Ok(Permit {
                    throttle: Some((self.clone(), r)),
                    headers: vec![],
                })
            }
            Bucket::Files { ru } => {
                let budget = self.files_budget as u64;
                inner.files.advance(now);
                let used = inner.files.total();
                inner.peak_files_ru = inner.peak_files_ru.max(used + ru as u64);
                if used + ru as u64 > budget {
                    let wait = inner.files.wait_for(used + ru as u64 - budget, now);
                    return Err(Rejection {
                        status: 429,
                        code: "activityLimitReached",
                        message: "The request has been throttled",
                        retry_after: wait,
                        headers: rate_headers(budget, 0, wait),
                        files: true,
                    });
                }
                inner.files.add(ru);
                let used = used + ru as u64;
                let headers = if used * 10 >= budget * 8 {
                    let reset = inner.files.wait_for(1, now);
                    rate_headers(budget, budget - used, reset)
                } else {
                    vec![]
                };
                Ok(Permit {
                    throttle: None,
                    headers,
                })
            }
        }
    }
}

fn rate_headers(limit: u64, remaining: u64, reset: u64) -> Vec<(String, String)> {
    vec![
        ("RateLimit-Limit".into(), limit.to_string()),
        ("RateLimit-Remaining".into(), remaining.to_string()),
        ("RateLimit-Reset".into(), reset.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_concurrency_is_four() {
        let t = Arc::new(Throttle::new(
            ThrottleMode::Microsoft,
            ThrottleLimits::default(),
            10,
        ));
        let r = Res::User(1);
        let permits: Vec<_> = (0..4)
            .map(|_| t.admit(Bucket::Mailbox(r)).expect("within limit"))
            .collect();
        assert_eq!(t.peaks().mailbox_concurrency, 4);
        let rej = t
            .admit(Bucket::Mailbox(r))
            .err()
            .expect("fifth is throttled");
        assert_eq!(rej.code, "ApplicationThrottled");
        // The rejected fifth is what the client asked for: it is the peak.
        assert_eq!(t.peaks().mailbox_concurrency, 5);
        assert!(rej.message.contains("MailboxConcurrency"));
        // Another mailbox is not affected.
        assert!(t.admit(Bucket::Mailbox(Res::User(2))).is_ok());
        drop(permits);
        assert!(t.admit(Bucket::Mailbox(r)).is_ok());
    }

    #[test]
    fn files_budget_throttles_with_headers() {
        let limits = ThrottleLimits {
            sharepoint_ru_per_min: Some(10),
            ..Default::default()
        };
        let t = Arc::new(Throttle::new(ThrottleMode::Microsoft, limits, 10));
        let mut saw_headers = false;
        for _ in 0..5 {
            let p = t.admit(Bucket::Files { ru: 2 }).expect("within budget");
            saw_headers |= !p.headers.is_empty();
        }
        assert!(saw_headers, "RateLimit headers past 80 %");
        assert_eq!(t.peaks().files_ru_per_min, 10);
        let rej = t.admit(Bucket::Files { ru: 1 }).err().expect("over budget");
        assert_eq!(rej.status, 429);
        assert!(rej.retry_after >= 1 && rej.retry_after <= 60);
        assert_eq!(
            t.peaks().files_ru_per_min,
            11,
            "the refused unit was asked for"
        );
    }

    #[test]
    fn mailbox_request_budget() {
        let limits = ThrottleLimits {
            mailbox_requests_per_10min: 3,
            ..Default::default()
        };
        let t = Arc::new(Throttle::new(ThrottleMode::Microsoft, limits, 10));
        for _ in 0..3 {
            drop(t.admit(Bucket::Mailbox(Res::User(0))).unwrap());
        }
        let rej = t.admit(Bucket::Mailbox(Res::User(0))).err().unwrap();
        assert!(rej.retry_after > 1);
    }
}
