//! A workspace: what every operation works on, built once from resolved settings — the
//! repository (opened on first use), this machine's catalog of it and its local state,
//! and a Graph client per tenant.

use crate::error::UserError;
use crate::local::LocalState;
use cairn_catalog::Catalog;
use cairn_config::{Config, RepoOverrides, RepoSettings, ResolvedTenant, TenantOverrides};
use cairn_graph::GraphClient;
use cairn_repo::{Repo, RepoOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Asks a person for the repository password.
pub type Prompt = Box<dyn Fn() -> anyhow::Result<String> + Send + Sync>;

pub struct Workspace {
    config: Config,
    settings: RepoSettings,
    local: LocalState,
    /// Asks for the password when the settings name none (a terminal's prompt).
    prompt: Option<Prompt>,
    /// The password once asked for.
    asked: OnceLock<String>,
    repo: OnceLock<Arc<Repo>>,
    catalog: OnceLock<Arc<dyn Catalog>>,
    graphs: Mutex<HashMap<String, Arc<GraphClient>>>,
    /// This workspace is `cairn serve`'s: it is the catalog's writer.
    serving: bool,
}

impl Workspace {
    /// The repository the overrides, the environment and the configuration file name.
    /// Nothing is opened yet.
    pub fn new(config: Config, o: &RepoOverrides) -> anyhow::Result<Workspace> {
        let settings = config.repo_settings(o)?;
        let local = LocalState::new(&settings.cache_dir, &settings.repository);
        Ok(Workspace {
            config,
            settings,
            local,
            prompt: None,
            asked: OnceLock::new(),
            repo: OnceLock::new(),
            catalog: OnceLock::new(),
            graphs: Mutex::new(HashMap::new()),
            serving: false,
        })
    }

    /// How to ask for the password when the settings name none: called at most once, and
    /// only when the repository is opened (browsing the catalog needs no password). Without
    /// it, a missing password is an error with a hint.
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// The server's workspace: it writes while it holds the serve lock
    /// ([`LocalState::lock_for_serving`]).
    pub fn serving(mut self) -> Self {
        self.serving = true;
        self
    }

    /// Before changing the repository or the catalog: an error when a `cairn serve` owns
    /// them and this is not it.
    pub fn ensure_writer(&self) -> anyhow::Result<()> {
        if self.serving {
            return Ok(());
        }
        self.local.ensure_not_served()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn settings(&self) -> &RepoSettings {
        &self.settings
    }

    pub fn local(&self) -> &LocalState {
        &self.local
    }

    /// The repository location as given.
    pub fn repository(&self) -> &str {
        &self.settings.repository
    }

    /// Location, credentials and password of the repository.
    pub fn repo_options(&self) -> anyhow::Result<RepoOptions> {
        let password = match self.settings.password.read()? {
            Some(p) => p,
            None => match (self.asked.get(), &self.prompt) {
                (Some(p), _) => p.clone(),
                (None, Some(ask)) => {
                    let p = ask()?;
                    self.asked.get_or_init(|| p).clone()
                }
                (None, None) => return Err(self.settings.no_password().into()),
            },
        };
        Ok(self.settings.repo_options(&password)?)
    }

    /// The repository, opened on first use (blocking: call from a blocking thread in async
    /// code).
    pub fn repo(&self) -> anyhow::Result<Arc<Repo>> {
        if let Some(r) = self.repo.get() {
            return Ok(r.clone());
        }
        let r = Arc::new(Repo::open(self.repo_options()?)?);
        Ok(self.repo.get_or_init(|| r).clone())
    }

    /// The catalog of the repository, if there is one: the shared one the settings name
    /// (`postgres://…`), else this machine's. Opening never creates a local one: a missing
    /// catalog is reported, not replaced by an empty one.
    pub fn existing_catalog(&self) -> anyhow::Result<Option<Arc<dyn Catalog>>> {
        if self.catalog.get().is_none()
            && self.settings.catalog.is_none()
            && !self.local.catalog.exists()
        {
            return Ok(None);
        }
        self.catalog_for_backup().map(Some)
    }

    /// Like [`Workspace::existing_catalog`], an error with a hint when there is none.
    pub fn catalog(&self) -> anyhow::Result<Arc<dyn Catalog>> {
        match self.existing_catalog()? {
            Some(c) => Ok(c),
            None => Err(UserError::new(format!(
                "no catalog of the repository {} on this machine (looked for {})",
                self.settings.repository,
                self.local.catalog.display()
            ))
            .hint(format!(
                "the catalog is written by `cairn backup`; run a backup first, or point {} at the cache directory of the machine that ran the backups",
                cairn_config::env::CAIRN_CACHE_DIR
            ))
            .into()),
        }
    }

    /// The catalog, created when there is none yet (a first backup): a shared one's schema
    /// is created and migrated on first use.
    pub fn catalog_for_backup(&self) -> anyhow::Result<Arc<dyn Catalog>> {
        if let Some(c) = self.catalog.get() {
            return Ok(c.clone());
        }
        let c: Arc<dyn Catalog> = match &self.settings.catalog {
            Some(url) => cairn_catalog::open_url(url)?,
            None => Arc::new(self.local.open_catalog()?),
        };
        Ok(self.catalog.get_or_init(|| c).clone())
    }

    /// A tenant of the configuration, with the overrides over it.
    pub fn tenant(&self, o: &TenantOverrides) -> anyhow::Result<ResolvedTenant> {
        Ok(self.config.tenant(o)?)
    }

    /// A Graph client for `tenant`, one per tenant for the workspace's life (its token
    /// and its request budgets are shared by every operation).
    pub fn graph(&self, tenant: &ResolvedTenant) -> anyhow::Result<Arc<GraphClient>> {
        let key = tenant.key();
        let mut graphs = self.graphs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = graphs.get(&key) {
            return Ok(g.clone());
        }
        let g = Arc::new(tenant.client()?);
        graphs.insert(key, g.clone());
        Ok(g)
    }
}
