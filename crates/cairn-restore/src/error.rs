//! Why a restore could not start: the user's mistakes (unknown resource or restore point)
//! apart from outages and bugs.

use cairn_catalog::CatalogError;
use cairn_graph::GraphError;
use cairn_repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no resource '{name}' in the catalog")]
    UnknownResource {
        name: String,
        /// A few names the catalog does know.
        known: Vec<String>,
    },
    #[error("{resource} has no restore point {point}")]
    UnknownPoint { resource: String, point: String },
    #[error("{resource} has no restore points yet")]
    NoPoints { resource: String },
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
            RestoreError::UnknownResource { .. }
            | RestoreError::UnknownPoint { .. }
            | RestoreError::NoPoints { .. }
            | RestoreError::Unsupported(_)
            | RestoreError::Target { .. } => true,
            RestoreError::Repo(r) => r.is_user_error(),
            _ => false,
        }
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            RestoreError::UnknownResource { known, .. } => Some(if known.is_empty() {
                "the catalog is empty: back the resource up first (`cairn backup`)".into()
            } else {
                format!(
                    "resources are named as backed up (user principal name, group:<name>, site URL), e.g. {}",
                    known.join(", ")
                )
            }),
            RestoreError::UnknownPoint { resource, .. } => Some(format!(
                "`cairn snapshots` lists the restore points; give RESOURCE@N (point number), @<snapshot id prefix> or @<time> such as {resource}@2026-01-31"
            )),
            RestoreError::NoPoints { .. } => Some("run a backup of it first".into()),
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
