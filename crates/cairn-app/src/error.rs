//! One classification of errors, for every front end: the user's mistake (a bad setting,
//! a name that does not exist, a wrong password), a transient failure (the service
//! throttled or went away: the same request later may succeed), or an internal one (a bug,
//! a damaged store). [`classify`] walks an error's chain once, asking each library's typed
//! error what it is; the command line maps the class to an exit code, the server to an
//! HTTP status, the scheduler to "retry with backoff" or "alert".

use std::fmt;

/// A mistake the person can fix, with what to do about it. Operations of this crate
/// return it for what they check themselves (an unknown service, nothing to back up).
#[derive(Debug)]
pub struct UserError {
    message: String,
    hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What to do about it.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// What kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The user's to fix: exit code 2, HTTP 4xx.
    User,
    /// May succeed later: retry with backoff; HTTP 503.
    Transient,
    /// A bug or a damaged store: exit code 1, HTTP 500.
    Internal,
}

/// An error as front ends show it: its class and, where known, what to do next.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Classified {
    pub class: Class,
    pub hint: Option<String>,
    /// The error's whole chain on one line (never a secret: library errors carry none).
    pub message: String,
}

impl Classified {
    /// The command line's exit code: 2 for the user's mistakes, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.class {
            Class::User => 2,
            Class::Transient | Class::Internal => 1,
        }
    }
}

/// The class and hint of the first error in the chain that knows what it is; an error
/// no library typed is internal.
pub fn classify(e: &anyhow::Error) -> Classified {
    let (class, hint) = e.chain().find_map(known).unwrap_or((Class::Internal, None));
    Classified {
        class,
        hint,
        message: format!("{e:#}"),
    }
}

fn known(e: &(dyn std::error::Error + 'static)) -> Option<(Class, Option<String>)> {
    let user = |is: bool| if is { Class::User } else { Class::Internal };
    if let Some(u) = e.downcast_ref::<UserError>() {
        return Some((Class::User, u.hint.clone()));
    }
    if let Some(c) = e.downcast_ref::<cairn_config::ConfigError>() {
        return Some((user(c.is_user_error()), c.hint()));
    }
    if let Some(s) = e.downcast_ref::<cairn_catalog::SelectError>() {
        return Some((user(s.is_user_error()), s.hint()));
    }
    if let Some(c) = e.downcast_ref::<cairn_catalog::CatalogError>() {
        return Some((Class::Internal, c.hint().map(str::to_string)));
    }
    if let Some(r) = e.downcast_ref::<cairn_restore::RestoreError>() {
        // A restore error wrapping a Graph or repository error: let that one speak.
        return match r {
            cairn_restore::RestoreError::Graph(g) => Some(graph(g)),
            cairn_restore::RestoreError::Repo(r) => Some(repo(r)),
            r => Some((user(r.is_user_error()), r.hint())),
        };
    }
    if let Some(b) = e.downcast_ref::<cairn_backup::BackupError>() {
        return match b {
            cairn_backup::BackupError::Graph(g) => Some(graph(g)),
            cairn_backup::BackupError::Repo(r) => Some(repo(r)),
            b => Some((user(b.is_user_error()), b.hint())),
        };
    }
    if let Some(g) = e.downcast_ref::<cairn_graph::GraphError>() {
        return Some(graph(g));
    }
    if let Some(r) = e.downcast_ref::<cairn_repo::RepoError>() {
        return Some(repo(r));
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return Some(match io.kind() {
            std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::Interrupted => (Class::Transient, None),
            _ => (Class::Internal, None),
        });
    }
    None
}

fn graph(g: &cairn_graph::GraphError) -> (Class, Option<String>) {
    let class = match g {
        cairn_graph::GraphError::Auth { .. } | cairn_graph::GraphError::Config(_) => Class::User,
        g if g.is_retryable() => Class::Transient,
        cairn_graph::GraphError::Exhausted { .. } => Class::Transient,
        _ => Class::Internal,
    };
    (class, g.hint().map(str::to_string))
}

fn repo(r: &cairn_repo::RepoError) -> (Class, Option<String>) {
    let class = match r {
        r if r.is_user_error() => Class::User,
        cairn_repo::RepoError::Deferred(_) => Class::Transient,
        _ => Class::Internal,
    };
    (class, r.hint().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_typed_error_of_the_chain_decides() {
        let e = anyhow::Error::from(UserError::new("no such thing").hint("try another"))
            .context("listing");
        let c = classify(&e);
        assert_eq!(
            (c.class, c.hint.as_deref()),
            (Class::User, Some("try another"))
        );
        assert_eq!(c.exit_code(), 2);
        assert!(c.message.contains("listing") && c.message.contains("no such thing"));

        let wrong = anyhow::Error::from(cairn_repo::RepoError::WrongPassword("/r".into()));
        assert_eq!(classify(&wrong).class, Class::User);
        let storage = anyhow::Error::from(cairn_repo::RepoError::Storage {
            what: "reading".into(),
            detail: "disk".into(),
        });
        assert_eq!(classify(&storage).class, Class::Internal);
        assert_eq!(classify(&storage).exit_code(), 1);

        let throttled = anyhow::Error::from(cairn_graph::GraphError::Api {
            method: "GET".into(),
            path: "/users".into(),
            status: 503,
            code: "serviceNotAvailable".into(),
            message: "later".into(),
            retry_after: None,
        });
        assert_eq!(classify(&throttled).class, Class::Transient);

        let select = anyhow::Error::from(cairn_catalog::SelectError::BadTime {
            text: "soon".into(),
        });
        let c = classify(&select);
        assert_eq!(c.class, Class::User);
        assert!(c.hint.unwrap().contains("2026-03-01"));

        let unknown = anyhow::Error::from(cairn_backup::BackupError::UnknownResource {
            kind: "user",
            name: "zed@x".into(),
            tenant: "contoso".into(),
        });
        let c = classify(&unknown);
        assert_eq!(c.class, Class::User);
        assert!(c.hint.unwrap().contains("/users"));

        let untyped = anyhow::anyhow!("something odd");
        assert_eq!(classify(&untyped).class, Class::Internal);
    }
}
