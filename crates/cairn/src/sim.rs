//! `cairn sim …`: run and drive the tenant simulator.

use cairn_sim::tenant::{Tenant, TenantSpec};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Print the users, groups and sites a seed generates.
    Info(TenantArgs),
}

#[derive(Args, Clone)]
pub struct TenantArgs {
    /// Seed of the generated tenant: the same seed gives the same tenant.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of users.
    #[arg(long, default_value_t = 10)]
    users: u32,
    /// Number of Microsoft 365 groups (each with a drive and a site).
    #[arg(long, default_value_t = 2)]
    groups: u32,
    /// Number of standalone SharePoint sites.
    #[arg(long, default_value_t = 3)]
    sites: u32,
    /// Messages per mailbox.
    #[arg(long, default_value_t = 60)]
    mail_per_mailbox: u32,
    /// Files per drive.
    #[arg(long, default_value_t = 25)]
    files_per_drive: u32,
}

impl TenantArgs {
    pub fn spec(&self) -> TenantSpec {
        TenantSpec {
            seed: self.seed,
            users: self.users,
            groups: self.groups,
            sites: self.sites,
            mail_per_mailbox: self.mail_per_mailbox,
            files_per_drive: self.files_per_drive,
            ..TenantSpec::default()
        }
    }
}

/// The demo, as far as Cairn goes today: the tenant the simulator serves.
pub fn demo() -> anyhow::Result<()> {
    info(&TenantArgs {
        seed: 1,
        users: 10,
        groups: 2,
        sites: 3,
        mail_per_mailbox: 60,
        files_per_drive: 25,
    })
}

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.command {
        SimCommand::Info(t) => info(&t),
    }
}

fn info(t: &TenantArgs) -> anyhow::Result<()> {
    {
        {
            let tenant = Tenant::new(t.spec());
            for i in 0..t.users {
                if let Some(u) = tenant.user(i) {
                    println!("user  {}  {}  {:?}", u.id, u.upn, u.kind);
                }
            }
            for i in 0..t.groups {
                if let Some(g) = tenant.group(i) {
                    println!("group {}  {}", g.id, g.display_name);
                }
            }
            for n in tenant.all_sites() {
                if let Some(s) = tenant.site(n) {
                    println!("site  {}  {}", s.id, s.web_url);
                }
            }
            Ok(())
        }
    }
}
