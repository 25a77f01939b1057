//! Alerts: a backup nobody hears about failing is no backup. When a run fails or partly
//! fails, a resource is left unprotected, a run met throttling or errors above what its
//! job tolerates, a restore drill could not read back what was backed up, or a new
//! restore point shows signs of ransomware or mass change, the server tells someone — by webhook, by e-mail, or both — and once
//! a day it sends a summary. Which of these happen is the scheduler's decision; this module
//! only delivers an [`Alert`] to the channels of one `[server.alerts]` or `[jobs.NAME.alerts]`
//! table ([`cairn_config::AlertsEntry`]).
//!
//! Assumed, and why:
//! - Delivery is at least once. Each channel is retried with exponential backoff
//!   ([`Retry`]), independently of the other; a webhook request carries the same
//!   `X-Cairn-Delivery` id on every attempt so a receiver can drop repeats. A failure that
//!   retrying cannot fix (a 4xx answer, an SMTP 5xx reply such as a refused login) stops at
//!   once. Nothing is queued across restarts: an alert that fails every attempt is reported
//!   in the returned [`Delivery`] (and logged) for the caller to record.
//! - The webhook body is the alert as JSON plus a `text` line, which chat services' incoming
//!   webhooks (Slack, Mattermost) show as is. It is signed with HMAC-SHA256 over the exact
//!   bytes sent ([`sign`], [`SIGNATURE_HEADER`]); the alert's `at` lets a receiver refuse
//!   old ones. Redirects are not followed: a signed body goes only where it was configured.
//! - Secrets are read once, when the [`Alerter`] is built, and kept in `secrecy` wrappers.
//!   A webhook URL is treated as a secret too (chat services put their token in its path):
//!   reports, errors and logs name only its scheme, host and port.
//! - E-mail goes through `lettre` with rustls (no OpenSSL). `smtp://` upgrades with STARTTLS
//!   when offered — and requires it when a username is set, so a password never crosses the
//!   network in clear; `smtps://` is TLS from the start; `smtp+plain://` never encrypts and
//!   accepts a password only towards a loopback address (a relay on this machine).
//!   Certificates are checked against the Web PKI roots, plus any the caller adds
//!   ([`Alerter::with_root_certificate`]).
//! - An alert's details are capped ([`MAX_DETAILS`]) so a run that failed on ten thousand
//!   mailboxes still makes a readable message; the run's own record has them all.

use anyhow::Context as _;
use cairn_app::UserError;
use cairn_config::AlertsEntry;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Header of a webhook request holding `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Cairn-Signature";
/// Header of a webhook request naming the alert's kind (`run-failed`, …).
pub const EVENT_HEADER: &str = "X-Cairn-Event";
/// Header of a webhook request with an id that stays the same across retries.
pub const DELIVERY_HEADER: &str = "X-Cairn-Delivery";
/// At most this many detail lines are sent; a last line says how many were left out.
pub const MAX_DETAILS: usize = 100;

/// Something someone should know about.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub job: Option<String>,
    pub tenant: Option<String>,
    pub run: Option<i64>,
    /// One line, the e-mail's subject after `[cairn] `:
    /// `backup job nightly failed: 3 of 40 resources`.
    pub summary: String,
    /// One line each: a resource and what went wrong with it, a run of the day.
    pub details: Vec<String>,
    pub at: DateTime<Utc>,
}

/// Why an alert is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A run failed as a whole, or every resource in it did.
    RunFailed,
    /// Some resources of a run failed, the others were backed up.
    RunPartial,
    /// A resource has no recent restore point (not in any job's scope, or failing).
    Unprotected,
    /// A run met throttling or errors above its job's threshold.
    Throttling,
    /// A restore drill found items it could not read back as they were backed up, or
    /// could not run.
    DrillFailed,
    /// Ransomware or mass-change detection found signs in a new restore point; the last
    /// clean one is held.
    SuspectRestorePoint,
    /// What happened in the last day.
    DailySummary,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RunFailed => "run-failed",
            AlertKind::RunPartial => "run-partial",
            AlertKind::Unprotected => "unprotected",
            AlertKind::Throttling => "throttling",
            AlertKind::DrillFailed => "drill-failed",
            AlertKind::SuspectRestorePoint => "suspect-restore-point",
            AlertKind::DailySummary => "daily-summary",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Alert {
    /// An alert at this moment, about no job in particular yet.
    pub fn new(kind: AlertKind, summary: impl Into<String>) -> Alert {
        Alert {
            kind,
            job: None,
            tenant: None,
            run: None,
            summary: summary.into(),
            details: Vec::new(),
            at: Utc::now(),
        }
    }

    pub fn job(mut self, job: impl Into<String>) -> Alert {
        self.job = Some(job.into());
        self
    }

    pub fn tenant(mut self, tenant: impl Into<String>) -> Alert {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn run(mut self, run: i64) -> Alert {
        self.run = Some(run);
        self
    }

    pub fn details(mut self, details: impl IntoIterator<Item = impl Into<String>>) -> Alert {
        self.details.extend(details.into_iter().map(Into::into));
        self
    }

    /// The daily summary: the runs of the period, grouped by outcome, and the resources
    /// left unprotected.
    pub fn daily_summary(
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        runs: &[RunLine],
        unprotected: &[String],
    ) -> Alert {
        let mut by_status = BTreeMap::<&str, usize>::new();
        for r in runs {
            *by_status.entry(r.status.as_str()).or_default() += 1;
        }
        let mut summary = format!(
            "daily summary {}: {} run{}",
            until.format("%Y-%m-%d"),
            runs.len(),
            plural(runs.len())
        );
        if !by_status.is_empty() {
            let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
            summary.push_str(&format!(" ({})", counts.join(", ")));
        }
        if !unprotected.is_empty() {
            summary.push_str(&format!(
                ", {} unprotected resource{}",
                unprotected.len(),
                plural(unprotected.len())
            ));
        }
        let mut details = vec![format!(
            "from {} to {}",
            since.format("%Y-%m-%d %H:%M UTC"),
            until.format("%Y-%m-%d %H:%M UTC")
        )];
        details.extend(runs.iter().map(|r| {
            let drill = r.kind == "drill";
            let mut line = format!(
                "job {} (tenant {}) {} {} at {}: {}, {} {}{}",
                r.job,
                r.tenant,
                if drill { "restore drill" } else { "run" },
                r.run,
                r.started.format("%Y-%m-%d %H:%M UTC"),
                r.status,
                r.resources,
                if drill { "restore point" } else { "resource" },
                plural(r.resources as usize)
            );
            if r.failed > 0 {
                line.push_str(&format!(
                    ", {} {}failed",
                    r.failed,
                    if drill { "items " } else { "" }
                ));
            }
            if r.throttled > 0 {
                line.push_str(&format!(", {} throttled requests", r.throttled));
            }
            line
        }));
        details.extend(unprotected.iter().map(|u| format!("unprotected: {u}")));
        Alert {
            kind: AlertKind::DailySummary,
            job: None,
            tenant: None,
            run: None,
            summary,
            details,
            at: until,
        }
    }

    /// The e-mail's subject: `[cairn] ` and the summary, on one line.
    pub fn subject(&self) -> String {
        format!("[cairn] {}", one_line(&self.summary))
    }

    /// The e-mail's plain-text body.
    pub fn text(&self) -> String {
        let a = self.capped();
        let mut s = format!("{}\n\n", a.summary);
        let mut field = |name: &str, value: &str| s.push_str(&format!("{name:<8}{value}\n"));
        field("Kind:", a.kind.as_str());
        if let Some(j) = &a.job {
            field("Job:", j);
        }
        if let Some(t) = &a.tenant {
            field("Tenant:", t);
        }
        if let Some(r) = a.run {
            field("Run:", &r.to_string());
        }
        field("At:", &a.at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        if !a.details.is_empty() {
            s.push_str("\nDetails:\n");
            for d in &a.details {
                s.push_str(&format!("  {d}\n"));
            }
        }
        s.push_str("\n-- \nSent by cairn serve.\n");
        s
    }

    /// The alert with at most [`MAX_DETAILS`] detail lines.
    fn capped(&self) -> std::borrow::Cow<'_, Alert> {
        if self.details.len() <= MAX_DETAILS {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut a = self.clone();
        let more = a.details.len() - (MAX_DETAILS - 1);
        a.details.truncate(MAX_DETAILS - 1);
        a.details.push(match a.run {
            Some(r) => format!("… and {more} more (see run {r})"),
            None => format!("… and {more} more"),
        });
        std::borrow::Cow::Owned(a)
    }
}

/// One run as the daily summary lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RunLine {
    /// `backup`, or `drill` (a restore drill: `resources` counts the restore points it
    /// tested, `failed` the items that failed).
    pub kind: String,
    pub job: String,
    pub tenant: String,
    pub run: i64,
    /// As the run history records it (`succeeded`, `partial`, `failed`, …).
    pub status: String,
    pub started: DateTime<Utc>,
    pub resources: u64,
    pub failed: u64,
    pub throttled: u64,
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`, the value of [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `signature` (a [`SIGNATURE_HEADER`] value) is `body` signed with `secret`;
/// compared in constant time. What a receiver written in Rust checks.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// How hard a channel is tried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts in all, the first included (at least one).
    pub attempts: u32,
    /// Wait before the second attempt; it doubles for each further one.
    pub delay: Duration,
    /// The longest wait between two attempts (a receiver's `Retry-After` included).
    pub max_delay: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for Retry {
    /// Four attempts, 2, 4 and 8 s apart, each of at most 30 s.
    fn default() -> Retry {
        Retry {
            attempts: 4,
            delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait after failed attempt `n` (1-based).
    fn wait(&self, n: u32, asked: Option<Duration>) -> Duration {
        let backoff = self.delay.saturating_mul(1 << (n - 1).min(16));
        backoff.max(asked.unwrap_or_default()).min(self.max_delay)
    }
}

/// A channel an alert goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Webhook,
    Email,
}

/// What became of an alert on one channel.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelReport {
    pub channel: Channel,
    /// Where it went, without secrets: the webhook's `scheme://host:port`, the SMTP server
    /// and the recipients.
    pub target: String,
    pub attempts: u32,
    /// Why the last attempt failed; `None` when delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ChannelReport {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// What became of an alert: one report per configured channel (none when no channel is).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    pub channels: Vec<ChannelReport>,
}

impl Delivery {
    pub fn delivered(&self) -> impl Iterator<Item = &ChannelReport> {
        self.channels.iter().filter(|c| c.delivered())
    }

    pub fn failed(&self) -> impl Iterator<Item = &ChannelReport> {
        self.channels.iter().filter(|c| !c.delivered())
    }

    /// Every configured channel delivered.
    pub fn is_complete(&self) -> bool {
        self.channels.iter().all(ChannelReport::delivered)
    }
}

/// Delivers alerts to the channels of one alerts table.
pub struct Alerter {
    webhook: Option<Webhook>,
    email: Option<Email>,
    retry: Retry,
    roots: Vec<Vec<u8>>,
}

struct Webhook {
    url: reqwest::Url,
    /// `scheme://host:port`: the URL may hold a token.
    shown: String,
    secret: Option<SecretSlice<u8>>,
    client: reqwest::Client,
}

struct Email {
    host: String,
    port: u16,
    security: Security,
    login: Option<(String, SecretString)>,
    from: Mailbox,
    to: Vec<Mailbox>,
    shown: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// `smtp+plain://`
    Plain,
    /// `smtp://` without a username.
    StartTlsWhenOffered,
    /// `smtp://` with a username.
    StartTlsRequired,
    /// `smtps://`
    Tls,
}

impl fmt::Debug for Alerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerter")
            .field("webhook", &self.webhook.as_ref().map(|w| &w.shown))
            .field("signed", &self.webhook.as_ref().map(|w| w.secret.is_some()))
            .field("email", &self.email.as_ref().map(|e| &e.shown))
            .field("retry", &self.retry)
            .finish()
    }
}

fn user(message: impl Into<String>, hint: &str) -> anyhow::Error {
    UserError::new(message).hint(hint).into()
}

fn read_secret(what: &str, path: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(user(
            format!("the {what} {} is empty", path.display()),
            "write the secret into the file (a trailing newline is ignored)",
        ));
    }
    Ok(s)
}

impl Alerter {
    /// The channels `settings` configures, their secrets read now. A table with neither a
    /// webhook nor e-mail gives an alerter that delivers nothing.
    pub fn new(settings: &AlertsEntry) -> anyhow::Result<Alerter> {
        let webhook = Self::webhook(settings)?;
        let email = Self::email(settings)?;
        let mut a = Alerter {
            webhook,
            email,
            retry: Retry::default(),
            roots: Vec::new(),
        };
        a.rebuild_client()?;
        Ok(a)
    }

    /// How hard each channel is tried (tests use short delays).
    pub fn with_retry(mut self, retry: Retry) -> Alerter {
        self.retry = Retry {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Also trusts this CA (PEM) for the webhook's HTTPS and the SMTP server's TLS: a
    /// private CA, or a test's.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> anyhow::Result<Alerter> {
        Certificate::from_pem(pem).context("the root certificate is not a PEM certificate")?;
        self.roots.push(pem.to_vec());
        self.rebuild_client()?;
        Ok(self)
    }

    /// Whether any channel is configured.
    pub fn is_configured(&self) -> bool {
        self.webhook.is_some() || self.email.is_some()
    }

    fn webhook(s: &AlertsEntry) -> anyhow::Result<Option<Webhook>> {
        let Some(raw) = &s.webhook_url else {
            if s.webhook_secret_file.is_some() {
                return Err(user(
                    "alerts: webhook-secret-file is set without webhook-url",
                    "add webhook-url, or remove webhook-secret-file",
                ));
            }
            return Ok(None);
        };
        // The URL itself is not shown: it may hold a token.
        let url = reqwest::Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                user(
                    "alerts: webhook-url is not an http:// or https:// URL",
                    "write the receiver's full URL, e.g. https://hooks.example.com/cairn",
                )
            })?;
        let shown = origin(&url);
        let secret = match &s.webhook_secret_file {
            Some(f) => Some(SecretSlice::from(
                read_secret("webhook secret file", f)?.into_bytes(),
            )),
            None => None,
        };
        Ok(Some(Webhook {
            url,
            shown,
            secret,
            client: reqwest::Client::new(),
        }))
    }

    fn email(s: &AlertsEntry) -> anyhow::Result<Option<Email>> {
        let Some(raw) = &s.smtp_url else {
            if s.email_from.is_some() || !s.email_to.is_empty() || s.smtp_username.is_some() {
                return Err(user(
                    "alerts: e-mail settings are given without smtp-url",
                    "add smtp-url (smtp://host:587, smtps://host:465 or smtp+plain://127.0.0.1:25)",
                ));
            }
            return Ok(None);
        };
        let bad_url = || {
            user(
                "alerts: smtp-url is not smtp://host[:port], smtps://host[:port] or smtp+plain://host[:port]",
                "the username goes into smtp-username and the password into a file named by smtp-password-file",
            )
        };
        let url = reqwest::Url::parse(raw).map_err(|_| bad_url())?;
        if !url.username().is_empty()
            || url.password().is_some()
            || !matches!(url.path(), "" | "/")
            || url.query().is_some()
        {
            return Err(bad_url());
        }
        let (host, loopback) = match url.host() {
            // `smtp://` is no special scheme to the URL parser: an IPv4 address stays text.
            Some(url::Host::Domain(d)) => (
                d.to_string(),
                d.parse::<IpAddr>()
                    .map_or(d.eq_ignore_ascii_case("localhost"), |a| a.is_loopback()),
            ),
            Some(url::Host::Ipv4(a)) => (a.to_string(), IpAddr::V4(a).is_loopback()),
            Some(url::Host::Ipv6(a)) => (a.to_string(), IpAddr::V6(a).is_loopback()),
            None => return Err(bad_url()),
        };
        let (security, default_port) = match (url.scheme(), s.smtp_username.is_some()) {
            ("smtp", false) => (Security::StartTlsWhenOffered, 587),
            ("smtp", true) => (Security::StartTlsRequired, 587),
            ("smtps", _) => (Security::Tls, 465),
            ("smtp+plain", _) => (Security::Plain, 25),
            _ => return Err(bad_url()),
        };
        let port = url.port().unwrap_or(default_port);
        let login = match (&s.smtp_username, &s.smtp_password_file) {
            (Some(u), Some(f)) => Some((
                u.clone(),
                SecretString::from(read_secret("SMTP password file", f)?),
            )),
            (None, None) => None,
            _ => {
                return Err(user(
                    "alerts: smtp-username and smtp-password-file go together",
                    "set both to log in to the SMTP server, or neither",
                ));
            }
        };
        if login.is_some() && security == Security::Plain && !loopback {
            return Err(user(
                format!("alerts: smtp+plain:// would send the SMTP password in clear to {host}"),
                "use smtp:// (STARTTLS) or smtps:// (TLS); smtp+plain:// logs in only to a relay on this machine",
            ));
        }
        let from: Mailbox = match &s.email_from {
            Some(f) => f.parse().map_err(|_| {
                user(
                    format!("alerts: email-from {f:?} is not an e-mail address"),
                    "write e.g. \"Cairn <cairn@example.com>\"",
                )
            })?,
            None => {
                return Err(user(
                    "alerts: smtp-url is set without email-from",
                    "add email-from, the sender address (e.g. cairn@example.com)",
                ));
            }
        };
        if s.email_to.is_empty() {
            return Err(user(
                "alerts: smtp-url is set without email-to",
                "add email-to, the list of recipients",
            ));
        }
        let to = s
            .email_to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>().map_err(|_| {
                    user(
                        format!("alerts: email-to {t:?} is not an e-mail address"),
                        "write e.g. [\"ops@example.com\"]",
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let shown = format!(
            "{}://{shown_host}:{port} to {}",
            url.scheme(),
            to.iter()
                .map(|m| m.email.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Some(Email {
            host,
            port,
            security,
            login,
            from,
            to,
            shown,
        }))
    }

    fn rebuild_client(&mut self) -> anyhow::Result<()> {
        let Some(w) = &mut self.webhook else {
            return Ok(());
        };
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10));
        for pem in &self.roots {
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(pem)
                    .context("the root certificate is not a PEM certificate")?,
            );
        }
        w.client = b
            .build()
            .context("cannot set up the webhook's HTTP client")?;
        Ok(())
    }

    /// Sends `alert` to every configured channel at once, each retried on its own; what
    /// was delivered and what failed, without secrets.
    pub async fn send(&self, alert: &Alert) -> Delivery {
        let webhook = async {
            match &self.webhook {
                Some(w) => Some(self.post(w, alert).await),
                None => None,
            }
        };
        let email = async {
            match &self.email {
                Some(e) => Some(self.mail(e, alert).await),
                None => None,
            }
        };
        let (w, e) = tokio::join!(webhook, email);
        Delivery {
            channels: w.into_iter().chain(e).collect(),
        }
    }

    async fn post(&self, w: &Webhook, alert: &Alert) -> ChannelReport {
        #[derive(Serialize)]
        struct Payload<'a> {
            #[serde(flatten)]
            alert: &'a Alert,
            text: String,
        }
        let alert = alert.capped();
        let payload = Payload {
            alert: &alert,
            text: alert.subject(),
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(b) => b,
            Err(e) => {
                return report(
                    Channel::Webhook,
                    &w.shown,
                    0,
                    Some(format!("cannot encode the alert: {e}")),
                );
            }
        };
        let signature = w.secret.as_ref().map(|s| sign(s.expose_secret(), &body));
        let id = hex::encode(rand::random::<[u8; 16]>());
        self.attempt(Channel::Webhook, &w.shown, || async {
            let mut req = w
                .client
                .post(w.url.clone())
                .timeout(self.retry.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_HEADER, alert.kind.as_str())
                .header(DELIVERY_HEADER, &id)
                .body(body.clone());
            if let Some(s) = &signature {
                req = req.header(SIGNATURE_HEADER, s);
            }
            let resp = req.send().await.map_err(|e| Failure {
                message: chain(&e.without_url()),
                retry: true,
                after: None,
            })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = resp.text().await.unwrap_or_default();
            let text = one_line(&text);
            let mut message = format!("the receiver answered {status}");
            if status.is_redirection() {
                message.push_str(" (redirects are not followed: configure the final URL)");
            }
            if !text.is_empty() {
                message.push_str(&format!(": {}", truncate(&text, 200)));
            }
            Err(Failure {
                message,
                retry: status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT,
                after,
            })
        })
        .await
    }

    async fn mail(&self, e: &Email, alert: &Alert) -> ChannelReport {
        let mut b = Message::builder()
            .from(e.from.clone())
            .subject(alert.subject())
            .header(ContentType::TEXT_PLAIN);
        for t in &e.to {
            b = b.to(t.clone());
        }
        let message = match b.body(alert.text()) {
            Ok(m) => m,
            Err(err) => {
                return report(
                    Channel::Email,
                    &e.shown,
                    0,
                    Some(format!("cannot compose the e-mail: {err}")),
                );
            }
        };
        self.attempt(Channel::Email, &e.shown, || async {
            let transport = self.transport(e).map_err(|err| Failure {
                message: chain(&err),
                retry: false,
                after: None,
            })?;
            transport
                .send(message.clone())
                .await
                .map(drop)
                .map_err(|err| Failure {
                    message: chain(&err),
                    retry: !err.is_permanent(),
                    after: None,
                })
        })
        .await
    }

    fn transport(
        &self,
        e: &Email,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
        let tls = || {
            let mut p = TlsParameters::builder(e.host.clone());
            for pem in &self.roots {
                p = p.add_root_certificate(Certificate::from_pem(pem)?);
            }
            p.build()
        };
        let tls = match e.security {
            Security::Plain => Tls::None,
            Security::StartTlsWhenOffered => Tls::Opportunistic(tls()?),
            Security::StartTlsRequired => Tls::Required(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.host.clone())
            .port(e.port)
            .tls(tls)
            .timeout(Some(self.retry.timeout));
        if let Some((u, p)) = &e.login {
            b = b.credentials(Credentials::new(u.clone(), p.expose_secret().to_string()));
        }
        Ok(b.build())
    }

    /// Runs `once` until it succeeds, fails for good, or the attempts are spent.
    async fn attempt<F, Fut>(&self, channel: Channel, target: &str, mut once: F) -> ChannelReport
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            match once().await {
                Ok(()) => {
                    tracing::info!(channel = ?channel, target, attempts = n, "alert delivered");
                    return report(channel, target, n, None);
                }
                Err(f) if f.retry && n < self.retry.attempts => {
                    let wait = self.retry.wait(n, f.after);
                    tracing::warn!(channel = ?channel, target, attempt = n, error = %f.message, "alert not delivered, retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(f) => {
                    tracing::error!(channel = ?channel, target, attempts = n, error = %f.message, "alert not delivered");
                    return report(channel, target, n, Some(f.message));
                }
            }
        }
    }
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
    after: Option<Duration>,
}

fn report(channel: Channel, target: &str, attempts: u32, error: Option<String>) -> ChannelReport {
    ChannelReport {
        channel,
        target: target.to_string(),
        attempts,
        error,
    }
}

/// `scheme://host:port` of a URL: what may be shown of a webhook.
fn origin(url: &reqwest::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port_or_known_default() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        source = c.source();
    }
    s
}

fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|p| !p.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256() {
        // RFC 4231, test case 2.
        let s = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &s));
        assert!(!verify(b"Jeff", b"what do ya want for nothing?", &s));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &s));
        assert!(!verify(
            b"Jefe",
            b"what do ya want for nothing?",
            "sha256=zz"
        ));
        assert!(!verify(
            b"Jefe",
            b"what do ya want for nothing?",
            s.trim_start_matches("sha256=")
        ));
    }

    #[test]
    fn alerter_can_be_shared_and_sending_spawned() {
        fn shared<T: Send + Sync>(_: &T) {}
        fn spawned<T: Send>(_: &T) {}
        let a = Alerter::new(&AlertsEntry::default()).unwrap();
        shared(&a);
        spawned(&a.send(&Alert::new(AlertKind::RunFailed, "x")));
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let r = Retry {
            attempts: 10,
            delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u64> = (1..=6).map(|n| r.wait(n, None).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30]);
        assert_eq!(r.wait(1, Some(Duration::from_secs(10))).as_secs(), 10);
        assert_eq!(r.wait(1, Some(Duration::from_secs(3600))).as_secs(), 30);
    }

    #[test]
    fn details_are_capped() {
        let a = Alert::new(AlertKind::RunPartial, "x")
            .run(7)
            .details((0..250).map(|i| format!("r{i}")));
        let c = a.capped();
        assert_eq!(c.details.len(), MAX_DETAILS);
        assert_eq!(c.details.last().unwrap(), "… and 151 more (see run 7)");
        assert!(a.text().contains("… and 151 more"));
    }

    #[test]
    fn subject_is_one_line() {
        let a = Alert::new(
            AlertKind::RunFailed,
            "backup job nightly failed:\r\nBcc: x@example.com",
        );
        assert_eq!(
            a.subject(),
            "[cairn] backup job nightly failed: Bcc: x@example.com"
        );
    }

    #[test]
    fn daily_summary_groups_runs() {
        let at = |h| {
            DateTime::parse_from_rfc3339(&format!("2026-05-02T{h:02}:00:00Z"))
                .unwrap()
                .to_utc()
        };
        let run = |job: &str, status: &str, failed| RunLine {
            kind: "backup".into(),
            job: job.into(),
            tenant: "contoso".into(),
            run: 1,
            status: status.into(),
            started: at(2),
            resources: 40,
            failed,
            throttled: 0,
        };
        let a = Alert::daily_summary(
            at(0) - chrono::Duration::days(1),
            at(0),
            &[
                run("nightly", "partial", 3),
                run("hourly", "succeeded", 0),
                run("x", "succeeded", 0),
                RunLine {
                    kind: "drill".into(),
                    run: 2,
                    ..run("nightly", "failed", 2)
                },
            ],
            &["bob@contoso.com".into()],
        );
        assert_eq!(a.kind, AlertKind::DailySummary);
        assert_eq!(
            a.summary,
            "daily summary 2026-05-02: 4 runs (1 failed, 1 partial, 2 succeeded), 1 unprotected resource"
        );
        assert!(a.details.iter().any(|d| d == "job nightly (tenant contoso) restore drill 2 at 2026-05-02 02:00 UTC: failed, 40 restore points, 2 items failed"), "{:?}", a.details);
        assert!(a.details.iter().any(|d| d == "job nightly (tenant contoso) run 1 at 2026-05-02 02:00 UTC: partial, 40 resources, 3 failed"));
        assert!(
            a.details
                .iter()
                .any(|d| d == "unprotected: bob@contoso.com")
        );
    }
}
