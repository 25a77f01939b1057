//! Why a restore could not start: the user's mistakes (unknown resource or restore point)
//! apart from outages and bugs.

use cairn_catalog::{CatalogError, SelectError};
use cairn_graph::GraphError;
use cairn_repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The resource or restore point asked for does not exist in the restorer's tenant,
    /// or the name is ambiguous.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The selection or target cannot be restored (a group's mailbox, a site to a user…).
    #[error("{0}")]
    Unsupported(String),
    /// The target does not exist in the tenant (another user, a group, a site).
    #[error("target {target}: {detail}")]
    Target { target: String, detail: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("{0}")]
    Internal(String),
}

impl RestoreError {
    /// The user's to fix (exit 2 in the CLI), not an outage or a bug.
    pub fn is_user_error(&self) -> bool {
        match self {
            RestoreError::Unsupported(_) | RestoreError::Target { .. } => true,
            RestoreError::Repo(r) => r.is_user_error(),
            RestoreError::Select(s) => s.is_user_error(),
            _ => false,
        }
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            RestoreError::Select(s) => s.hint(),
            RestoreError::Target { .. } => {
                Some("check the user principal name: `cairn graph get /users` lists users".into())
            }
            RestoreError::Catalog(c) => c.hint().map(str::to_string),
            RestoreError::Repo(r) => r.hint().map(str::to_string),
            RestoreError::Graph(g) => g.hint().map(str::to_string),
            _ => None,
        }
    }
}
