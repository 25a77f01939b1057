//! Alerts delivered for real: webhooks to an axum receiver on localhost, e-mail to an SMTP
//! server (Python's aiosmtpd) on localhost — in clear, with a login, with STARTTLS and with
//! TLS from the start, against a CA made for the test.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cairn_config::AlertsEntry;
use cairn_server::alerts::{
    Alert, AlertKind, Alerter, Channel, DELIVERY_HEADER, EVENT_HEADER, Retry, SIGNATURE_HEADER,
    verify,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const SECRET: &str = "s3cret-webhook-key";
const PASSWORD: &str = "hunter2-smtp-password";

fn quick() -> Retry {
    Retry {
        attempts: 3,
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
    }
}

fn alert() -> Alert {
    Alert::new(
        AlertKind::RunPartial,
        "backup job nightly failed: 3 of 40 resources",
    )
    .job("nightly")
    .tenant("contoso")
    .run(42)
    .details([
        "adele@contoso.com: mail: Graph answered 503 after 6 attempts",
        "bob@contoso.com: onedrive: item 01ABC: size differs from announced",
        "sales (group): conversations: 404 not found",
    ])
}

fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    p
}

/// What a webhook receiver got: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver on 127.0.0.1 answering each request with the next of `answers` (the last
/// one repeated).
async fn receiver(answers: Vec<StatusCode>) -> (String, Received) {
    let got: Received = Arc::default();
    let state = (got.clone(), Arc::new(answers));
    let app = axum::Router::new()
        .route(
            "/hooks/{token}",
            post(
                |State((got, answers)): State<(Received, Arc<Vec<StatusCode>>)>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    let mut got = got.lock().unwrap();
                    got.push((headers, body.to_vec()));
                    let status = answers[(got.len() - 1).min(answers.len() - 1)];
                    (status, format!("answer {}", got.len()))
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hooks/t0ken-in-path"), got)
}

fn webhook(url: &str, secret: Option<PathBuf>) -> AlertsEntry {
    AlertsEntry {
        webhook_url: Some(url.to_string()),
        webhook_secret_file: secret,
        ..Default::default()
    }
}

#[tokio::test]
async fn webhook_is_signed_with_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (url, got) = receiver(vec![StatusCode::NO_CONTENT]).await;
    let alerter = Alerter::new(&webhook(
        &url,
        Some(secret_file(dir.path(), "hook", SECRET)),
    ))
    .unwrap()
    .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    assert_eq!(delivery.channels.len(), 1);
    assert_eq!(delivery.channels[0].channel, Channel::Webhook);
    assert_eq!(delivery.channels[0].attempts, 1);

    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
    assert!(signature.starts_with("sha256="), "{signature}");
    // The secret file's trailing newline is not part of the key.
    assert!(verify(SECRET.as_bytes(), body, signature));
    assert!(!verify(b"another secret", body, signature));
    assert!(!verify(format!("{SECRET}\n").as_bytes(), body, signature));
    let mut tampered = body.clone();
    tampered[0] = b' ';
    assert!(!verify(SECRET.as_bytes(), &tampered, signature));
    assert_eq!(headers[EVENT_HEADER], "run-partial");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers[DELIVERY_HEADER].len(), 32);

    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["kind"], "run-partial");
    assert_eq!(json["job"], "nightly");
    assert_eq!(json["tenant"], "contoso");
    assert_eq!(json["run"], 42);
    assert_eq!(
        json["summary"],
        "backup job nightly failed: 3 of 40 resources"
    );
    assert_eq!(json["details"].as_array().unwrap().len(), 3);
    assert!(
        json["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    assert_eq!(
        json["text"],
        "[cairn] backup job nightly failed: 3 of 40 resources"
    );

    // Neither the secret nor the URL's token shows anywhere.
    let shown = format!(
        "{alerter:?} {delivery:?} {}",
        serde_json::to_string(&delivery).unwrap()
    );
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("t0ken-in-path"), "{shown}");
}

#[tokio::test]
async fn webhook_without_secret_is_unsigned() {
    let (url, got) = receiver(vec![StatusCode::OK]).await;
    let alerter = Alerter::new(&webhook(&url, None)).unwrap();
    assert!(alerter.send(&alert()).await.is_complete());
    assert!(!got.lock().unwrap()[0].0.contains_key(SIGNATURE_HEADER));
}

#[tokio::test]
async fn webhook_is_retried_after_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (url, got) = receiver(vec![
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::OK,
    ])
    .await;
    let alerter = Alerter::new(&webhook(
        &url,
        Some(secret_file(dir.path(), "hook", SECRET)),
    ))
    .unwrap()
    .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    assert_eq!(delivery.channels[0].attempts, 3);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 3);
    // The same alert each time: one delivery id, one body, a valid signature.
    for (headers, body) in got.iter() {
        assert_eq!(headers[DELIVERY_HEADER], got[0].0[DELIVERY_HEADER]);
        assert_eq!(body, &got[0].1);
        assert!(verify(
            SECRET.as_bytes(),
            body,
            headers[SIGNATURE_HEADER].to_str().unwrap()
        ));
    }
}

#[tokio::test]
async fn webhook_gives_up_after_its_attempts() {
    let (url, got) = receiver(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
    let alerter = Alerter::new(&webhook(&url, None))
        .unwrap()
        .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert!(!delivery.is_complete());
    let failed: Vec<_> = delivery.failed().collect();
    assert_eq!(failed[0].attempts, 3);
    let error = failed[0].error.as_deref().unwrap();
    assert!(error.contains("503"), "{error}");
    assert!(error.contains("answer 3"), "{error}");
    assert_eq!(got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn webhook_client_errors_are_not_retried() {
    let (url, got) = receiver(vec![StatusCode::BAD_REQUEST]).await;
    let alerter = Alerter::new(&webhook(&url, None))
        .unwrap()
        .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert_eq!(delivery.failed().next().unwrap().attempts, 1);
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unreachable_webhook_is_reported_without_its_url() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let alerter = Alerter::new(&webhook(
        &format!("http://127.0.0.1:{port}/services/T000/B000/XXXXsecretXXXX"),
        None,
    ))
    .unwrap()
    .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    let failed = delivery.failed().next().unwrap();
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.target, format!("http://127.0.0.1:{port}"));
    let shown = format!("{delivery:?}");
    assert!(!shown.contains("XXXXsecretXXXX"), "{shown}");
    assert!(!shown.contains("/services"), "{shown}");
}

// ---------------------------------------------------------------------------------------
// E-mail

/// An SMTP server (aiosmtpd) on 127.0.0.1 that writes each message it accepts, parsed,
/// as `N.json` into a directory.
const SMTPD: &str = r#"
import asyncio, email, email.policy, json, os, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

out, mode, cert, key, login = sys.argv[1:6]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(('plain',))
        auth = session.auth_data
        record = {
            'mail_from': envelope.mail_from,
            'rcpt_tos': envelope.rcpt_tos,
            'from': str(msg['From']),
            'to': str(msg['To']),
            'subject': str(msg['Subject']),
            'content_type': msg.get_content_type(),
            'body': body.get_content() if body is not None else None,
            'tls': server.transport.get_extra_info('ssl_object') is not None,
            'login': auth.login.decode() if isinstance(auth, LoginPassword) else None,
        }
        n = len([f for f in os.listdir(out) if f.endswith('.json')])
        tmp = os.path.join(out, '%d.tmp' % n)
        with open(tmp, 'w') as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out, '%d.json' % n))
        return '250 OK'

def authenticator(server, session, envelope, mechanism, auth_data):
    user, _, password = login.partition(':')
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode() and auth_data.password == password.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

async def main():
    loop = asyncio.get_running_loop()
    ctx = None
    if cert != '-':
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    kw = dict(hostname='localhost', auth_require_tls=False, loop=loop)
    if login != '-':
        kw.update(authenticator=authenticator, auth_required=True)
    if mode == 'starttls':
        kw.update(tls_context=ctx, require_starttls=True)
    server = await loop.create_server(
        lambda: SMTP(Handler(), **kw), '127.0.0.1', 0,
        ssl=ctx if mode == 'smtps' else None)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"#;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    StartTls,
    Smtps,
}

struct Smtpd {
    _child: tokio::process::Child,
    port: u16,
    out: PathBuf,
    /// The CA the server's certificate is signed by (PEM), for TLS modes.
    ca: String,
    _dir: tempfile::TempDir,
}

impl Smtpd {
    async fn start(mode: Mode, login: Option<(&str, &str)>) -> Smtpd {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail");
        std::fs::create_dir(&out).unwrap();
        let script = dir.path().join("smtpd.py");
        std::fs::write(&script, SMTPD).unwrap();
        let (ca, cert, key) = certificates(dir.path());
        let (mode_arg, cert_arg, key_arg) = match mode {
            Mode::Plain => ("plain", "-".into(), "-".into()),
            Mode::StartTls => (
                "starttls",
                cert.display().to_string(),
                key.display().to_string(),
            ),
            Mode::Smtps => (
                "smtps",
                cert.display().to_string(),
                key.display().to_string(),
            ),
        };
        let login = login.map_or("-".to_string(), |(u, p)| format!("{u}:{p}"));
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .args([out.to_str().unwrap(), mode_arg, &cert_arg, &key_arg, &login])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 is needed for the SMTP server of these tests");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server did not start in 30 s")
            .unwrap();
        let port = first
            .and_then(|l| l.trim().parse().ok())
            .expect("the SMTP server did not start: is aiosmtpd installed (pip install aiosmtpd)?");
        Smtpd {
            _child: child,
            port,
            out,
            ca,
            _dir: dir,
        }
    }

    /// The messages received so far.
    fn received(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<_> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort_by_key(|n| n.trim_end_matches(".json").parse::<u32>().unwrap());
        names
            .iter()
            .map(|n| serde_json::from_slice(&std::fs::read(self.out.join(n)).unwrap()).unwrap())
            .collect()
    }
}

/// A CA and a certificate it signed for 127.0.0.1 and localhost: (CA PEM, cert file, key file).
fn certificates(dir: &Path) -> (String, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cairn test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (ca.as_ref().pem(), cert_file, key_file)
}

fn email(url: String) -> AlertsEntry {
    AlertsEntry {
        smtp_url: Some(url),
        email_from: Some("Cairn <cairn@example.com>".into()),
        email_to: vec!["ops@example.com".into(), "backup-admins@example.com".into()],
        ..Default::default()
    }
}

fn with_login(mut settings: AlertsEntry, dir: &Path, password: &str) -> AlertsEntry {
    settings.smtp_username = Some("cairn".into());
    settings.smtp_password_file = Some(secret_file(dir, "smtp-password", password));
    settings
}

/// The one message the server got carries the alert.
fn assert_alert_mail(m: &serde_json::Value) {
    assert_eq!(m["mail_from"], "cairn@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.com", "backup-admins@example.com"])
    );
    assert_eq!(m["from"], "Cairn <cairn@example.com>");
    assert_eq!(m["to"], "ops@example.com, backup-admins@example.com");
    assert_eq!(
        m["subject"],
        "[cairn] backup job nightly failed: 3 of 40 resources"
    );
    assert_eq!(m["content_type"], "text/plain");
    let body = m["body"].as_str().unwrap();
    for line in [
        "backup job nightly failed: 3 of 40 resources",
        "Kind:   run-partial",
        "Job:    nightly",
        "Tenant: contoso",
        "Run:    42",
        "  adele@contoso.com: mail: Graph answered 503 after 6 attempts",
        "  bob@contoso.com: onedrive: item 01ABC: size differs from announced",
        "  sales (group): conversations: 404 not found",
    ] {
        assert!(body.lines().any(|l| l == line), "{line:?} not in\n{body}");
    }
}

#[tokio::test]
async fn email_reaches_a_local_relay() {
    let smtpd = Smtpd::start(Mode::Plain, None).await;
    let alerter = Alerter::new(&email(format!("smtp+plain://127.0.0.1:{}", smtpd.port)))
        .unwrap()
        .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    assert_eq!(delivery.channels[0].channel, Channel::Email);
    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    assert_alert_mail(&got[0]);
    assert_eq!(got[0]["tls"], false);
    assert_eq!(got[0]["login"], serde_json::Value::Null);
}

#[tokio::test]
async fn email_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let smtpd = Smtpd::start(Mode::Plain, Some(("cairn", PASSWORD))).await;
    let url = format!("smtp+plain://127.0.0.1:{}", smtpd.port);
    let alerter = Alerter::new(&with_login(email(url.clone()), dir.path(), PASSWORD))
        .unwrap()
        .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    assert_alert_mail(&got[0]);
    assert_eq!(got[0]["login"], "cairn");
    assert!(!format!("{alerter:?}").contains(PASSWORD));

    // A wrong password is refused for good: no retry, and the password is not repeated.
    let wrong = "not-the-password";
    let alerter = Alerter::new(&with_login(email(url.clone()), dir.path(), wrong))
        .unwrap()
        .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    let failed = delivery.failed().next().expect("a wrong password fails");
    assert_eq!(failed.attempts, 1);
    let shown = format!("{delivery:?} {alerter:?}");
    assert!(shown.contains("535"), "{shown}");
    assert!(!shown.contains(wrong), "{shown}");
    assert_eq!(smtpd.received().len(), 1);

    // Without a login the server refuses the message.
    let alerter = Alerter::new(&email(url)).unwrap().with_retry(quick());
    assert!(!alerter.send(&alert()).await.is_complete());
    assert_eq!(smtpd.received().len(), 1);
}

#[tokio::test]
async fn email_over_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let smtpd = Smtpd::start(Mode::StartTls, Some(("cairn", PASSWORD))).await;
    let url = format!("smtp://127.0.0.1:{}", smtpd.port);
    let alerter = Alerter::new(&with_login(email(url.clone()), dir.path(), PASSWORD))
        .unwrap()
        .with_retry(quick())
        .with_root_certificate(smtpd.ca.as_bytes())
        .unwrap();
    let delivery = alerter.send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    assert_alert_mail(&got[0]);
    assert_eq!(got[0]["tls"], true);
    assert_eq!(got[0]["login"], "cairn");

    // A certificate nobody vouches for is refused.
    let alerter = Alerter::new(&with_login(email(url), dir.path(), PASSWORD))
        .unwrap()
        .with_retry(quick());
    let delivery = alerter.send(&alert()).await;
    assert!(!delivery.is_complete());
    assert_eq!(smtpd.received().len(), 1);
}

#[tokio::test]
async fn email_over_tls() {
    let smtpd = Smtpd::start(Mode::Smtps, None).await;
    let alerter = Alerter::new(&email(format!("smtps://127.0.0.1:{}", smtpd.port)))
        .unwrap()
        .with_retry(quick())
        .with_root_certificate(smtpd.ca.as_bytes())
        .unwrap();
    let delivery = alerter.send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    assert_alert_mail(&got[0]);
    assert_eq!(got[0]["tls"], true);
}

#[tokio::test]
async fn both_channels_at_once() {
    let smtpd = Smtpd::start(Mode::Plain, None).await;
    let (url, got) = receiver(vec![StatusCode::OK]).await;
    let settings = AlertsEntry {
        webhook_url: Some(url),
        ..email(format!("smtp+plain://127.0.0.1:{}", smtpd.port))
    };
    let delivery = Alerter::new(&settings).unwrap().send(&alert()).await;
    assert!(delivery.is_complete(), "{delivery:?}");
    let channels: Vec<_> = delivery.delivered().map(|c| c.channel).collect();
    assert_eq!(channels, [Channel::Webhook, Channel::Email]);
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_eq!(smtpd.received().len(), 1);
}

#[test]
fn settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let err = |s: &AlertsEntry| format!("{:#}", Alerter::new(s).unwrap_err());

    // A password would cross the network in clear.
    let e = err(&with_login(
        email("smtp+plain://mail.example.com:25".into()),
        dir.path(),
        PASSWORD,
    ));
    assert!(e.contains("in clear"), "{e}");
    let e = err(&with_login(
        email("smtp+plain://10.0.0.5:25".into()),
        dir.path(),
        PASSWORD,
    ));
    assert!(e.contains("in clear"), "{e}");
    // Credentials belong in their own settings, and are not echoed.
    let e = err(&email(format!("smtps://cairn:{PASSWORD}@mail.example.com")));
    assert!(!e.contains(PASSWORD), "{e}");
    let e = err(&email("imap://mail.example.com".into()));
    assert!(e.contains("smtp-url"), "{e}");
    let e = err(&AlertsEntry {
        email_from: None,
        ..email("smtp://mail.example.com".into())
    });
    assert!(e.contains("email-from"), "{e}");
    let e = err(&AlertsEntry {
        email_to: vec!["not an address".into()],
        ..email("smtp://mail.example.com".into())
    });
    assert!(e.contains("not an address"), "{e}");
    let e = err(&AlertsEntry {
        smtp_username: Some("cairn".into()),
        ..email("smtp://mail.example.com".into())
    });
    assert!(e.contains("smtp-password-file"), "{e}");
    let e = err(&webhook("ftp://hooks.example.com/x", None));
    assert!(e.contains("webhook-url"), "{e}");
    let e = err(&webhook(
        "https://hooks.example.com/x",
        Some(dir.path().join("missing")),
    ));
    assert!(e.contains("webhook secret file"), "{e}");
    let e = err(&webhook(
        "https://hooks.example.com/x",
        Some(secret_file(dir.path(), "empty", "")),
    ));
    assert!(e.contains("empty"), "{e}");

    // Nothing configured: nothing to deliver, not an error.
    assert!(
        !Alerter::new(&AlertsEntry::default())
            .unwrap()
            .is_configured()
    );
    // A relay on this machine may take a login in clear.
    assert!(
        Alerter::new(&with_login(
            email("smtp+plain://localhost:2525".into()),
            dir.path(),
            PASSWORD
        ))
        .unwrap()
        .is_configured()
    );
}

/// A job of `cairn serve` against a tenant whose secret is wrong: the run fails, and the
/// job's alerts arrive signed by webhook and by e-mail, through the server's own run path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_alerts_by_webhook_and_email() {
    let sim = cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        users: 1,
        groups: 0,
        sites: 0,
        ..cairn_sim::TenantSpec::default()
    })
    .await;
    let smtpd = Smtpd::start(Mode::Plain, None).await;
    let (url, got) = receiver(vec![StatusCode::OK]).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = secret_file(dir.path(), "tenant-secret", "not-the-secret");
    let hook = secret_file(dir.path(), "hook", SECRET);
    let c = sim.config();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[tenants.contoso]
tenant-id = "{tenant}"
client-id = "{client}"
client-secret-file = "{wrong}"
graph-url = "{url_sim}"
login-url = "{url_sim}"
[jobs.nightly]
tenant = "contoso"
every = "1d"
[jobs.nightly.alerts]
webhook-url = "{url}"
webhook-secret-file = "{hook}"
smtp-url = "smtp+plain://127.0.0.1:{port}"
email-from = "Cairn <cairn@example.com>"
email-to = ["ops@example.com"]
"#,
            tenant = c.tenant_id,
            client = c.client_id,
            wrong = wrong.display(),
            url_sim = sim.url(),
            hook = hook.display(),
            port = smtpd.port,
        ),
    )
    .unwrap();
    let state = common::state(&config);
    let job = state.job("nightly").unwrap().unwrap();
    let id = cairn_server::start(&state, job, "api").unwrap().unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let run = loop {
        let r = cairn_server::jobs::run(&state.store, id).unwrap().unwrap();
        if r.run.status != cairn_server::jobs::Status::Running
            && !got.lock().unwrap().is_empty()
            && !smtpd.received().is_empty()
        {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no alerts in time: {:?}",
            r.run
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(run.run.status, cairn_server::jobs::Status::Failed);
    let error = run.run.error.unwrap();
    assert!(error.contains("hint:"), "{error}");
    assert!(!error.contains("not-the-secret"), "{error}");

    let hooks = got.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    let (headers, body) = &hooks[0];
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
    assert!(
        verify(SECRET.as_bytes(), body, signature),
        "the webhook is signed"
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["kind"], "run-failed", "{v}");
    assert_eq!(v["job"], "nightly");
    assert_eq!(v["run"], id);
    let mail = smtpd.received();
    assert_eq!(mail.len(), 1);
    let subject = mail[0]["subject"].as_str().unwrap();
    assert!(
        subject.contains("nightly") && subject.contains("failed"),
        "{subject}"
    );
    assert!(!mail[0]["body"].as_str().unwrap().contains("not-the-secret"));
}

/// A resource its job has not backed up within about two intervals is reported once, not at
/// every check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprotected_resource_is_alerted_once() {
    let (url, got) = receiver(vec![StatusCode::OK]).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "tenant-secret", "s");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[tenants.contoso]
tenant-id = "t"
client-id = "c"
client-secret-file = "{secret}"
graph-url = "http://127.0.0.1:9"
login-url = "http://127.0.0.1:9"
[jobs.hourly]
tenant = "contoso"
every = "1h"
[jobs.hourly.alerts]
webhook-url = "{url}"
"#,
            secret = secret.display(),
        ),
    )
    .unwrap();
    let state = common::state(&config);
    // ann was last backed up a day ago, bob an hour ago.
    let now = chrono::Utc::now().timestamp();
    state
        .store
        .with(|c| {
            for (run, resource, at) in [(1, "ann@x", now - 86_400), (2, "bob@x", now - 3_600)] {
                c.execute(
                    "INSERT INTO server_runs (id, job, tenant, status, trigger, started, finished)
                     VALUES (?1, 'hourly', 'contoso', 'succeeded', 'schedule', ?2, ?2)",
                    rusqlite::params![run, at],
                )?;
                c.execute(
                    "INSERT INTO server_run_resources (run, resource, kind, ok, items, added, changed,
                       removed, fetched, bytes, skipped, warnings, attempts, seconds)
                     VALUES (?1, ?2, 'user', 1, 1, 0, 0, 0, 0, 0, 0, '[]', 1, 1.0)",
                    rusqlite::params![run, resource],
                )?;
            }
            Ok(())
        })
        .unwrap();
    let mut alerted = Default::default();
    cairn_server::watch_unprotected(&state, &mut alerted).await;
    cairn_server::watch_unprotected(&state, &mut alerted).await;
    let hooks = got.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "once, not at every check");
    let v: serde_json::Value = serde_json::from_slice(&hooks[0].1).unwrap();
    assert_eq!(v["kind"], "unprotected", "{v}");
    let details = v["details"].to_string();
    assert!(
        details.contains("ann@x") && !details.contains("bob@x"),
        "{details}"
    );
}

/// The daily summary e-mail: the day's runs and what is unprotected, to the server's
/// alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_summary_is_mailed() {
    let smtpd = Smtpd::start(Mode::Plain, None).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "tenant-secret", "s");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[server]
daily-summary = "07:30"
[server.alerts]
smtp-url = "smtp+plain://127.0.0.1:{port}"
email-from = "Cairn <cairn@example.com>"
email-to = ["ops@example.com"]
[tenants.contoso]
tenant-id = "t"
client-id = "c"
client-secret-file = "{secret}"
[jobs.nightly]
tenant = "contoso"
schedule = "0 2 * * *"
"#,
            port = smtpd.port,
            secret = secret.display(),
        ),
    )
    .unwrap();
    let state = common::state(&config);
    let now = chrono::Utc::now().timestamp();
    state
        .store
        .with(|c| {
            c.execute(
                "INSERT INTO server_runs (job, tenant, status, trigger, started, finished, resources, failed)
                 VALUES ('nightly', 'contoso', 'partial', 'schedule', ?1, ?1, 40, 3)",
                rusqlite::params![now - 3_600],
            )
        })
        .unwrap();
    assert!(cairn_server::daily_summary(&state).await.unwrap());
    let mail = smtpd.received();
    assert_eq!(mail.len(), 1);
    let subject = mail[0]["subject"].as_str().unwrap();
    assert!(
        subject.contains("daily summary") && subject.contains("1 partial"),
        "{subject}"
    );
    let body = mail[0]["body"].as_str().unwrap();
    assert!(
        body.contains("job nightly (tenant contoso)") && body.contains("3 failed"),
        "{body}"
    );
}
