//! `cairn sim …`: run and drive the tenant simulator.

use anyhow::Context;
use cairn_sim::tenant::{Tenant, TenantSpec, User, UserKind};
use cairn_sim::{SimConfig, SimServer, ThrottleMode};
use clap::{Args, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Serve a simulated tenant over Microsoft Graph v1.0 until interrupted.
    Serve(Box<ServeArgs>),
    /// Create, modify, move and delete items in a running simulator, or play a ransomware
    /// attack on one user (`--ops encrypt`).
    Mutate(MutateArgs),
    /// Print the users, groups and sites a seed generates.
    Info(TenantArgs),
}

#[derive(Args, Clone)]
pub struct TenantArgs {
    /// Seed of the generated tenant: the same seed gives the same tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of users.
    #[arg(long, default_value_t = 10)]
    pub users: u32,
    /// Number of Microsoft 365 groups (each with a drive and a site).
    #[arg(long, default_value_t = 2)]
    pub groups: u32,
    /// Number of standalone SharePoint sites.
    #[arg(long, default_value_t = 3)]
    pub sites: u32,
    /// Messages per mailbox.
    #[arg(long, default_value_t = 60)]
    pub mail_per_mailbox: u32,
    /// Events per mailbox.
    #[arg(long, default_value_t = 12)]
    pub events_per_mailbox: u32,
    /// Contacts per mailbox.
    #[arg(long, default_value_t = 10)]
    pub contacts_per_mailbox: u32,
    /// Files per drive.
    #[arg(long, default_value_t = 25)]
    pub files_per_drive: u32,
    /// Items per SharePoint list.
    #[arg(long, default_value_t = 8)]
    pub items_per_list: u32,
    /// Conversation threads per Microsoft 365 group (1–4 posts each).
    #[arg(long, default_value_t = 4)]
    pub threads_per_group: u32,
    /// Largest generated message or file, in bytes.
    #[arg(long, default_value_t = 25 * 1024 * 1024)]
    pub max_item_size: u64,
}

impl TenantArgs {
    pub fn spec(&self) -> TenantSpec {
        TenantSpec {
            seed: self.seed,
            users: self.users,
            groups: self.groups,
            sites: self.sites,
            mail_per_mailbox: self.mail_per_mailbox,
            events_per_mailbox: self.events_per_mailbox,
            contacts_per_mailbox: self.contacts_per_mailbox,
            files_per_drive: self.files_per_drive,
            items_per_list: self.items_per_list,
            threads_per_group: self.threads_per_group,
            max_item_size: self.max_item_size,
            ..TenantSpec::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Throttle {
    Microsoft,
    Off,
}

/// Where `cairn sim serve` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8365";

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[command(flatten)]
    tenant: TenantArgs,
    /// Tenant id the token endpoint accepts (default: derived from the seed).
    #[arg(long)]
    tenant_id: Option<String>,
    /// Application (client) id the token endpoint accepts (default: derived from the seed).
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret the token endpoint accepts.
    #[arg(long, env = "CAIRN_SIM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// PEM file of certificates accepted for client assertions.
    #[arg(long)]
    client_certificate: Option<PathBuf>,
    /// A further app registration and its application permissions, to see what a client does
    /// without one: CLIENT_ID:SECRET:ROLE,ROLE,... (e.g. `--app
    /// 11111111-2222-3333-4444-555555555555:s3cret:User.Read.All,Mail.Read`; repeatable).
    // Parsed in `config`, so that a malformed value is not echoed with its secret.
    #[arg(long = "app", value_name = "CLIENT_ID:SECRET:ROLES")]
    apps: Vec<String>,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime: u64,
    /// Throttling: Microsoft's published limits, or none.
    #[arg(long, value_enum, default_value = "microsoft")]
    throttle: Throttle,
    /// Override the SharePoint/OneDrive resource-unit budget per minute.
    #[arg(long)]
    sharepoint_ru_per_min: Option<u32>,
    /// Probability (0..1) that a request meets an injected fault.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Latency added to every Graph response, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Bandwidth of response bodies, bytes per second.
    #[arg(long)]
    bandwidth: Option<u64>,
    /// Directory that keeps changes (mutations, restores) across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(Args)]
struct MutateArgs {
    /// URL of the running simulator.
    #[arg(long, default_value = "http://127.0.0.1:8365")]
    url: String,
    /// Number of changes (ignored by encrypt).
    #[arg(long, default_value_t = 10)]
    count: u32,
    /// Seed of the changes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only this resource (user, group or site id); for encrypt, the user attacked (id or
    /// UPN; default: one picked by the seed).
    #[arg(long)]
    resource: Option<String>,
    /// Kinds: message, event, contact, file, listItem, post (comma-separated).
    #[arg(long, value_delimiter = ',')]
    kinds: Option<Vec<String>>,
    /// Operations: create, modify, move, delete, share (comma-separated), or encrypt alone: a
    /// ransomware attack on one user's OneDrive.
    #[arg(long, value_delimiter = ',')]
    ops: Option<Vec<String>>,
    /// encrypt: fraction of the user's files encrypted, at least one [default: 0.6].
    #[arg(long, value_name = "FRACTION")]
    share: Option<f64>,
    /// encrypt: appended to the name of each encrypted file [default: .locked].
    #[arg(long)]
    extension: Option<String>,
    /// encrypt: name of the ransom note left in each folder it went through [default:
    /// README_RESTORE_FILES.txt].
    #[arg(long)]
    note: Option<String>,
    /// encrypt: fraction of the user's messages deleted [default: 0].
    #[arg(long, value_name = "FRACTION")]
    delete_mail: Option<f64>,
}

/// Builds the simulator configuration from `serve` flags.
fn config(a: &ServeArgs) -> anyhow::Result<SimConfig> {
    let mut cfg = SimConfig::new(a.tenant.spec());
    if let Some(t) = &a.tenant_id {
        cfg.tenant_id = t.clone();
    }
    if let Some(c) = &a.client_id {
        cfg.client_id = c.clone();
    }
    if let Some(s) = &a.client_secret {
        cfg.client_secret = s.clone();
    }
    cfg.apps = a
        .apps
        .iter()
        .map(|app| app.parse().map_err(|e| anyhow::anyhow!("--app: {e}")))
        .collect::<anyhow::Result<_>>()?;
    if let Some(p) = &a.client_certificate {
        cfg.client_certificates_pem = Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading client certificate {}", p.display()))?,
        );
    }
    if !(0.0..=1.0).contains(&a.fault_rate) {
        anyhow::bail!("--fault-rate must be between 0 and 1, got {}", a.fault_rate);
    }
    cfg.token_lifetime = Duration::from_secs(a.token_lifetime);
    cfg.throttle = match a.throttle {
        Throttle::Microsoft => ThrottleMode::Microsoft,
        Throttle::Off => ThrottleMode::Off,
    };
    cfg.limits.sharepoint_ru_per_min = a.sharepoint_ru_per_min;
    cfg.fault_rate = a.fault_rate;
    cfg.latency = Duration::from_millis(a.latency_ms);
    cfg.bandwidth = a.bandwidth;
    cfg.state_dir = a.state.clone();
    Ok(cfg)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.command {
        SimCommand::Info(t) => info(&t),
        SimCommand::Serve(a) => {
            let cfg = config(&a)?;
            runtime()?.block_on(async move {
                let server = SimServer::start(cfg, a.listen)
                    .await
                    .with_context(|| format!("starting the simulator on {}", a.listen))?;
                print_banner(&server)?;
                tokio::signal::ctrl_c().await?;
                eprintln!("stopping");
                server.stop().await;
                Ok(())
            })
        }
        SimCommand::Mutate(m) => {
            let body = serde_json::json!({
                "seed": m.seed, "count": m.count, "resource": m.resource,
                "kinds": m.kinds, "ops": m.ops, "share": m.share,
                "extension": m.extension, "note": m.note, "delete_mail": m.delete_mail,
            });
            runtime()?.block_on(async move {
                let resp = reqwest::Client::new()
                    .post(format!("{}/_sim/mutate", m.url.trim_end_matches('/')))
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("reaching the simulator at {}", m.url))?;
                let status = resp.status();
                let text = resp.text().await?;
                if !status.is_success() {
                    anyhow::bail!("the simulator answered {status}: {text}");
                }
                outln!("{text}");
                Ok(())
            })
        }
    }
}

/// What a new user needs to point Cairn (or any Graph client) at the simulator.
pub fn print_banner(server: &SimServer) -> anyhow::Result<()> {
    let cfg = &server.sim.cfg;
    let url = server.url();
    outln!("cairn-sim serving a simulated Microsoft 365 tenant");
    outln!("  graph url    {url}   (Graph v1.0 at {url}/v1.0)");
    outln!(
        "  login url    {url}   (token endpoint {url}/{}/oauth2/v2.0/token)",
        cfg.tenant_id
    );
    outln!("  tenant id    {}", cfg.tenant_id);
    outln!("  client id    {}", cfg.client_id);
    outln!(
        "  users        {}  (seed {})",
        cfg.tenant.users,
        cfg.tenant.seed
    );
    outln!(
        "  admin        {url}/_sim/stats, {url}/_sim/manifest?resource=ID, POST {url}/_sim/mutate"
    );
    outln!(
        "  sign-in      {url}/{}/v2.0/.well-known/openid-configuration",
        cfg.tenant_id
    );
    let tenant = Tenant::new(cfg.tenant.clone());
    if let Some(u) = sign_in_users(&tenant).next() {
        outln!(
            "               e.g. {} / {}   (every user: {url}/_sim/passwords)",
            u.upn,
            cairn_sim::user_password(cfg.tenant.seed, &u.upn)
        );
    }
    Ok(())
}

/// The users who can sign in (shared mailboxes are disabled accounts).
fn sign_in_users(tenant: &Tenant) -> impl Iterator<Item = User> + '_ {
    (0..tenant.spec.users)
        .filter_map(|i| tenant.user(i))
        .filter(|u| u.kind != UserKind::SharedMailbox)
}

/// Prints the generated tenant.
pub fn info(t: &TenantArgs) -> anyhow::Result<()> {
    let tenant = Tenant::new(t.spec());
    for i in 0..t.users {
        if let Some(u) = tenant.user(i) {
            outln!("user  {}  {}  {:?}", u.id, u.upn, u.kind);
        }
    }
    for i in 0..t.groups {
        if let Some(g) = tenant.group(i) {
            outln!("group {}  {}", g.id, g.display_name);
        }
    }
    for n in tenant.all_sites() {
        if let Some(s) = tenant.site(n) {
            outln!("site  {}  {}", s.id, s.web_url);
        }
    }
    // People sign in (OpenID Connect) with passwords derived from the seed.
    let tenant_id = SimConfig::new(t.spec()).tenant_id;
    outln!(
        "oidc  http://{DEFAULT_LISTEN}/{tenant_id}/v2.0/.well-known/openid-configuration  \
         (cairn sim serve with the default --listen)"
    );
    for u in sign_in_users(&tenant).take(3) {
        outln!(
            "login {}  password {}",
            u.upn,
            cairn_sim::user_password(t.seed, &u.upn)
        );
    }
    outln!("      (every user's password: GET http://{DEFAULT_LISTEN}/_sim/passwords)");
    Ok(())
}

/// A Graph client signed in to a simulator started in this process (demo, benchmarks).
pub fn client_for(
    server: &cairn_sim::SimServer,
    limits: Option<cairn_graph::Limits>,
) -> anyhow::Result<cairn_graph::GraphClient> {
    let c = &server.sim.cfg;
    let mut gc = cairn_graph::GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        cairn_graph::Credential::Secret(c.client_secret.clone().into()),
    );
    gc.graph_url = server.url();
    gc.login_url = server.url();
    if let Some(l) = limits {
        gc.limits = l;
    }
    Ok(cairn_graph::GraphClient::new(gc)?)
}
