//! Why a backup could not start or a catalog rebuild could not run, typed so that a
//! scheduler can tell the user's mistakes (a user that does not exist) from outages
//! (Graph throttled, the storage away) and bugs.

use cairn_catalog::CatalogError;
use cairn_graph::GraphError;
use cairn_repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A resource asked for by name is not in the tenant.
    #[error("no {kind} '{name}' in tenant {tenant}")]
    UnknownResource {
        kind: &'static str,
        name: String,
        tenant: String,
    },
    /// The app may not read what was asked for.
    #[error("{what}: the app may not read it ({detail})")]
    Forbidden {
        what: String,
        detail: String,
        hint: String,
    },
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl BackupError {
    /// The user's to fix (exit 2), not an outage or a bug.
    pub fn is_user_error(&self) -> bool {
        match self {
            BackupError::UnknownResource { .. } | BackupError::Forbidden { .. } => true,
            BackupError::Graph(g) => matches!(g, GraphError::Auth { .. } | GraphError::Config(_)),
            BackupError::Repo(r) => r.is_user_error(),
            BackupError::Catalog(_) => false,
        }
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            BackupError::UnknownResource { kind, .. } => Some(format!(
                "`cairn graph get /{kind}s` lists them; names are user principal names, group names or site URLs"
            )),
            BackupError::Forbidden { hint, .. } => Some(hint.clone()),
            BackupError::Graph(g) => g.hint().map(str::to_string),
            BackupError::Repo(r) => r.hint().map(str::to_string),
            BackupError::Catalog(c) => c.hint().map(str::to_string),
        }
    }
}

/// Whether an error would likely not happen again later: the service throttled, timed
/// out or was unreachable. A scheduled job retries such resources with backoff.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<GraphError>()
            .is_some_and(|g| g.is_retryable() || matches!(g, GraphError::Exhausted { .. }))
    })
}
