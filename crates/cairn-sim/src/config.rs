//! Simulator configuration: the tenant to generate, the app registration it accepts, and how
//! hostile the service is (throttling, faults, latency, bandwidth).

use crate::tenant::TenantSpec;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleMode {
    /// Microsoft's published limits (see `ThrottleLimits`).
    Microsoft,
    /// No throttling: for unit tests.
    Off,
}

/// Service limits. Defaults follow Microsoft's published numbers (see GRAPH-NOTES §3); every
/// one is configurable because Microsoft changes them.
#[derive(Clone, Debug)]
pub struct ThrottleLimits {
    /// Concurrent requests per app and mailbox (Outlook).
    pub mailbox_concurrency: u32,
    /// Requests per app and mailbox per 10 minutes (Outlook).
    pub mailbox_requests_per_10min: u32,
    /// SharePoint/OneDrive resource units per app per tenant per minute. `None`: by licence
    /// count as Microsoft's table (1,250 up to 1,000 licences, more above).
    pub sharepoint_ru_per_min: Option<u32>,
    /// Global requests per app per 10 seconds.
    pub global_requests_per_10s: u32,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            mailbox_concurrency: 4,
            mailbox_requests_per_10min: 10_000,
            sharepoint_ru_per_min: None,
            global_requests_per_10s: 130_000,
        }
    }
}

impl ThrottleLimits {
    /// SharePoint RU per minute for a tenant with `licences` licensed users.
    pub fn sharepoint_budget(&self, licences: u32) -> u32 {
        self.sharepoint_ru_per_min.unwrap_or(match licences {
            0..=1_000 => 1_250,
            1_001..=5_000 => 2_500,
            5_001..=15_000 => 3_750,
            15_001..=50_000 => 5_000,
            _ => 6_250,
        })
    }
}

#[derive(Clone)]
pub struct SimConfig {
    pub tenant: TenantSpec,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// PEM certificates accepted for client assertions.
    pub client_certificates_pem: Option<String>,
    pub token_lifetime: Duration,
    pub throttle: ThrottleMode,
    pub limits: ThrottleLimits,
    /// Probability that a Graph request meets an injected fault.
    pub fault_rate: f64,
    /// Added to every Graph response.
    pub latency: Duration,
    /// Per-response bandwidth cap for bodies, bytes per second.
    pub bandwidth: Option<u64>,
    pub state_dir: Option<PathBuf>,
    /// Maximum page size of message/contact/event deltas and lists.
    pub outlook_max_page: u32,
    /// Maximum page size of drive deltas and children.
    pub drive_max_page: u32,
}

impl SimConfig {
    pub fn new(tenant: TenantSpec) -> Self {
        let seed = tenant.seed;
        Self {
            tenant_id: crate::seeded::guid(seed, &[900]),
            client_id: crate::seeded::guid(seed, &[901]),
            client_secret: "cairn-sim-secret".into(),
            client_certificates_pem: None,
            token_lifetime: Duration::from_secs(3599),
            throttle: ThrottleMode::Microsoft,
            limits: ThrottleLimits::default(),
            fault_rate: 0.0,
            latency: Duration::ZERO,
            bandwidth: None,
            state_dir: None,
            outlook_max_page: 1000,
            drive_max_page: 1000,
            tenant,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("tenant", &self.tenant)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("throttle", &self.throttle)
            .field("fault_rate", &self.fault_rate)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_client_secret() {
        let mut c = SimConfig::new(TenantSpec::default());
        c.client_secret = "very-secret-value".into();
        assert!(!format!("{c:?}").contains("very-secret-value"));
    }
}
