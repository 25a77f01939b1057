//! Simulator configuration: the tenant to generate, the app registrations it accepts and
//! what they may do, and how hostile the service is (throttling, faults, latency, bandwidth).

use crate::tenant::TenantSpec;
use std::path::PathBuf;
use std::str::FromStr;
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
    /// Teams reads per app per second on one team (its channels) or one chat.
    pub teams_requests_per_sec: u32,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            mailbox_concurrency: 4,
            mailbox_requests_per_10min: 10_000,
            sharepoint_ru_per_min: None,
            global_requests_per_10s: 130_000,
            teams_requests_per_sec: 4,
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

/// An app registration besides the default one, with the application permissions an
/// administrator consented to (`roles`), so that tests can see what a client does when it
/// lacks one. It signs in with its client secret only.
#[derive(Clone, PartialEq, Eq)]
pub struct SimApp {
    pub client_id: String,
    pub client_secret: String,
    /// Application permissions, spelt as Graph spells them (`Mail.Read`, `Sites.Selected`).
    pub roles: Vec<String>,
}

impl SimApp {
    pub fn new(client_id: &str, client_secret: &str, roles: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            roles: roles
                .iter()
                .map(|r| crate::permissions::canonical_role(r))
                .collect(),
        }
    }
}

/// `CLIENT_ID:SECRET:ROLE,ROLE,...` (the form of `cairn sim serve --app`). The secret may
/// itself hold colons; the role list may be empty (an app no administrator consented to).
/// Roles are matched to Graph's spelling regardless of case.
impl FromStr for SimApp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The secret is what lies between the first and the last colon; never echo it.
        let Some((client_id, secret, roles)) = s.split_once(':').and_then(|(id, rest)| {
            rest.rsplit_once(':')
                .map(|(secret, roles)| (id, secret, roles))
        }) else {
            return Err("an app is given as CLIENT_ID:SECRET:ROLE,ROLE,... (e.g. \
                 11111111-2222-3333-4444-555555555555:s3cret:User.Read.All,Mail.Read)"
                .to_owned());
        };
        let client_id = client_id.trim();
        if client_id.is_empty() {
            return Err("the app's client id (before the first ':') is empty".to_owned());
        }
        if secret.is_empty() {
            return Err(format!(
                "app {client_id}: the client secret (between the first and the last ':') is empty"
            ));
        }
        let roles: Vec<&str> = roles
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect();
        Ok(Self::new(client_id, secret, &roles))
    }
}

impl std::fmt::Debug for SimApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("roles", &self.roles)
            .finish()
    }
}

#[derive(Clone)]
pub struct SimConfig {
    pub tenant: TenantSpec,
    pub tenant_id: String,
    /// The default app registration: every permission the simulator checks
    /// (`auth::GRANTED_ROLES`), a client secret and optionally certificates.
    pub client_id: String,
    pub client_secret: String,
    /// PEM certificates accepted for client assertions.
    pub client_certificates_pem: Option<String>,
    /// Further app registrations with the permissions given to each.
    pub apps: Vec<SimApp>,
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
            apps: Vec::new(),
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
            .field("apps", &self.apps)
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

    #[test]
    fn apps_parse_and_hide_their_secret() {
        let app: SimApp = "app-1:se:cr:et:user.read.all, Mail.Read,,Sites.Selected"
            .parse()
            .unwrap();
        assert_eq!(app.client_id, "app-1");
        assert_eq!(app.client_secret, "se:cr:et");
        assert_eq!(app.roles, ["User.Read.All", "Mail.Read", "Sites.Selected"]);
        let mut c = SimConfig::new(TenantSpec::default());
        c.apps.push(app);
        assert!(!format!("{c:?}").contains("se:cr:et"));

        let none: SimApp = "app-2:secret:".parse().unwrap();
        assert!(none.roles.is_empty());
        // A role unknown to the simulator is kept as given: it only never grants anything.
        let odd: SimApp = "app-3:secret:Chat.Read.All".parse().unwrap();
        assert_eq!(odd.roles, ["Chat.Read.All"]);
    }

    #[test]
    fn malformed_apps_are_refused_without_echoing_the_secret() {
        for bad in [
            "",
            "just-an-id",
            "id:hunter2",
            ":hunter2:Mail.Read",
            "id::Mail.Read",
        ] {
            let err = bad.parse::<SimApp>().unwrap_err();
            assert!(!err.contains("hunter2"), "{bad}: {err}");
        }
    }
}
