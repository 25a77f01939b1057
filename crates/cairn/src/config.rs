//! Glue between the flags and `cairn-config`/`cairn-app`: the process environment is
//! captured once, flags become overrides, and the password prompt lives here (a library
//! never prompts; a server refuses to).

use crate::graph::TenantFlags;
use crate::repo_cmd::RepoArgs;
use cairn_app::Workspace;
use cairn_config::{Environment, RepoOverrides, TenantOverrides};
use std::io::IsTerminal;
use std::path::Path;

pub use cairn_app::UserError;
pub use cairn_config::{
    Config, CredentialSource, ResolvedTenant, TenantEntry, absolute_location, edit_file, path_value,
};

/// The configuration file (`--config`, else `CAIRN_CONFIG`, else the XDG default) with
/// this process's environment.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::load(explicit, Environment::from_process())?)
}

/// The workspace of the repository the flags, the environment and the file name; the
/// password is asked for on a terminal when nothing else gives it, and only when the
/// repository is opened.
pub fn workspace(
    explicit: Option<&Path>,
    repo: &RepoArgs,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Workspace> {
    let ws = Workspace::new(load(explicit)?, &repo.overrides(cache_dir))?;
    Ok(if std::io::stdin().is_terminal() {
        ws.with_prompt(Box::new(|| {
            Ok(rpassword::prompt_password("repository password: ")?)
        }))
    } else {
        ws
    })
}

impl RepoArgs {
    pub fn overrides(&self, cache_dir: Option<&Path>) -> RepoOverrides {
        RepoOverrides {
            repository: self.repository.clone(),
            password_file: self.password_file.clone(),
            cache_dir: cache_dir.map(Path::to_path_buf),
            catalog: self.catalog.clone(),
            nats: self.nats.clone(),
        }
    }
}

impl TenantFlags {
    pub fn overrides(&self) -> TenantOverrides {
        TenantOverrides {
            tenant: self.tenant.clone(),
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_secret_file: self.client_secret_file.clone(),
            certificate: self.certificate.clone(),
            certificate_password: self.certificate_password.clone(),
            certificate_password_file: self.certificate_password_file.clone(),
            graph_url: self.graph_url.clone(),
            login_url: self.login_url.clone(),
        }
    }
}
