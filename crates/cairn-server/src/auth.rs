//! API tokens and roles. A token is shown once, at creation; the server keeps only its
//! SHA-256. What each role may do is one table ([`allowed`]), consulted by one middleware
//! for every route: no handler checks roles itself.

use crate::store::{Store, now, time};
use base64::Engine as _;
use rusqlite::{OptionalExtension, params};
use sha2::Digest;

/// What a token may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything (destruction only with a second admin's approval).
    Admin,
    /// Jobs and runs: create, change, run now. Never forget, prune, shorten retention,
    /// release holds or delete.
    BackupOperator,
    /// Browse, find, restore and export, within its tenant.
    RestoreOperator,
    /// Read everything, the audit log and run history included; no item content.
    Auditor,
    /// A person signed in to the portal without any of the roles above: their own restore
    /// points (their mailbox and drive) only — list, browse, search, export, and restore
    /// to where they came from. Never the role of a token or a local account.
    SelfService,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::BackupOperator,
        Role::RestoreOperator,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::BackupOperator => "backup-operator",
            Role::RestoreOperator => "restore-operator",
            Role::Auditor => "auditor",
            Role::SelfService => "self-service",
        }
    }

    /// One of [`Role::ALL`] (the roles of tokens and accounts; never `self-service`).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Everything the API lets a caller do, by what it risks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Tenants, jobs, runs, approvals, holds, metrics: what is protected and how well.
    ReadStatus,
    /// The restore points of the resources the caller may see.
    ListPoints,
    /// A restore's or export's progress (a self-service caller: its own tasks).
    TaskStatus,
    /// Who the caller is (`/api/v1/me`).
    Whoami,
    /// Create or change a job (not shortening its retention), run one now.
    ManageJobs,
    /// What a restore point holds: names, subjects, sizes (not content).
    Browse,
    /// Item content leaves the repository: restore, export, download.
    ReadContent,
    /// The audit log, and the erasure records.
    ReadAudit,
    /// Create, list, revoke tokens.
    ManageTokens,
    /// File a request that destroys or weakens backups (forget, prune, shorter retention,
    /// deleting a job's restore points, releasing a legal hold, erasing a person's data),
    /// or approve one.
    Destroy,
}

/// The role × action table (docs/server.md shows it).
pub fn allowed(role: Role, action: Action) -> bool {
    use Action::*;
    let everyone = matches!(action, ListPoints | TaskStatus | Whoami);
    everyone
        || match role {
            Role::Admin => true,
            Role::BackupOperator => matches!(action, ReadStatus | ManageJobs),
            Role::RestoreOperator => matches!(action, ReadStatus | Browse | ReadContent),
            Role::Auditor => matches!(action, ReadStatus | Browse | ReadAudit),
            // Limited further to the person's own resource by the middleware.
            Role::SelfService => matches!(action, Browse | ReadContent),
        }
}

/// What a token is limited to: one tenant, or one resource of one tenant (a token for a
/// department's restore desk, or for one person's mailbox).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Scope {
    pub tenant: Option<String>,
    /// A resource name (user principal name, group:NAME, site URL); needs `tenant`.
    pub resource: Option<String>,
}

/// Who is calling: an API token, or a person signed in to the portal (a session).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Caller {
    /// The token's name; a person's user principal name or local account name.
    pub name: String,
    pub role: Role,
    /// A token limited to one tenant sees and touches that tenant only.
    pub tenant: Option<String>,
    /// A token limited to one resource browses, finds, restores and exports that one only.
    pub resource: Option<String>,
}

impl Caller {
    /// Whether the caller may see `tenant`'s data.
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }

    /// Whether the caller may see the restore points of `resource` of `tenant`.
    pub fn sees_resource(&self, tenant: &str, resource: &str) -> bool {
        self.sees(tenant)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case(resource))
    }
}

/// A token as listed (never the secret, never its hash).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub resource: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked: Option<chrono::DateTime<chrono::Utc>>,
}

/// Prefix of every token, so a leaked one is recognised by secret scanners.
pub const TOKEN_PREFIX: &str = "cairn_";

fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Creates a token and returns it: the only time it is seen.
pub fn create(
    store: &Store,
    name: &str,
    role: Role,
    scope: &Scope,
    expires: Option<chrono::Duration>,
) -> anyhow::Result<String> {
    if role == Role::SelfService {
        return Err(cairn_app::UserError::new(
            "self-service is the role of people signed in to the portal, not of a token",
        )
        .hint("a token for one person's mailbox: --role restore-operator --tenant T --resource UPN")
        .into());
    }
    if scope.resource.is_some() && scope.tenant.is_none() {
        return Err(
            cairn_app::UserError::new("a token limited to a resource needs its tenant")
                .hint("give the tenant too (--tenant NAME)")
                .into(),
        );
    }
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(
            cairn_app::UserError::new(format!("{name:?} is not a token name"))
                .hint("use letters, digits, `-`, `_`, `.` and `@` (at most 64)")
                .into(),
        );
    }
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let created = now();
    let inserted = store.with(|c| {
        c.execute(
            "INSERT OR IGNORE INTO server_tokens (name, hash, role, tenant, resource, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                hash(&token),
                role.as_str(),
                scope.tenant,
                scope.resource,
                created,
                expires.map(|d| created + d.num_seconds())
            ],
        )
    })?;
    if inserted == 0 {
        return Err(
            cairn_app::UserError::new(format!("a token named {name} exists"))
                .hint("choose another name, or revoke that one first")
                .into(),
        );
    }
    Ok(token)
}

/// The caller a bearer token stands for: `None` when unknown, revoked or expired.
pub fn authenticate(store: &Store, token: &str) -> anyhow::Result<Option<Caller>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = store.with(|c| {
        c.query_row(
            "SELECT name, role, tenant, expires, revoked, resource FROM server_tokens WHERE hash=?1",
            params![hash(token)],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )
        .optional()
    })?;
    Ok(
        row.and_then(|(name, role, tenant, expires, revoked, resource)| {
            let live = revoked.is_none() && expires.is_none_or(|e| e > now());
            let role = Role::parse(&role)?;
            live.then_some(Caller {
                name,
                role,
                tenant,
                resource,
            })
        }),
    )
}

/// Every token, newest first.
pub fn list(store: &Store) -> anyhow::Result<Vec<TokenInfo>> {
    store.with(|c| {
        let mut st = c.prepare(
            "SELECT name, role, tenant, created, expires, revoked, resource FROM server_tokens ORDER BY id DESC",
        )?;
        let rows = st.query_map([], |r| {
            Ok(TokenInfo {
                name: r.get(0)?,
                role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Auditor),
                tenant: r.get(2)?,
                created: time(r.get(3)?),
                expires: r.get::<_, Option<i64>>(4)?.map(time),
                revoked: r.get::<_, Option<i64>>(5)?.map(time),
                resource: r.get(6)?,
            })
        })?;
        rows.collect()
    })
}

/// Revokes the token `name`; false when there is none (or it was revoked already).
pub fn revoke(store: &Store, name: &str) -> anyhow::Result<bool> {
    let n = store.with(|c| {
        c.execute(
            "UPDATE server_tokens SET revoked=?2 WHERE name=?1 AND revoked IS NULL",
            params![name, now()],
        )
    })?;
    Ok(n > 0)
}

/// How many admin tokens are live (the server refuses to start an API nobody can use).
pub fn admins(store: &Store) -> anyhow::Result<u64> {
    let n: Option<i64> = store.one(
        "SELECT count(*) FROM server_tokens WHERE role='admin' AND revoked IS NULL
           AND (expires IS NULL OR expires > ?1)",
        params![now()],
    )?;
    Ok(n.unwrap_or(0) as u64)
}

/// `90d`, `12h`, `30m`, `45s` (also used for `every` of jobs).
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    match unit.trim() {
        "s" => Some(chrono::Duration::seconds(n)),
        "m" | "min" => Some(chrono::Duration::minutes(n)),
        "h" => Some(chrono::Duration::hours(n)),
        "d" => Some(chrono::Duration::days(n)),
        "w" => Some(chrono::Duration::weeks(n)),
        _ => None,
    }
    .filter(|d| *d > chrono::Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_as_a_hash_and_can_be_revoked_or_expire() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        let scope = Scope {
            tenant: Some("contoso".into()),
            resource: None,
        };
        let t = create(&s, "ops", Role::BackupOperator, &scope, None).unwrap();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() > 40);
        let stored: String = s
            .one("SELECT hash FROM server_tokens WHERE name='ops'", [])
            .unwrap()
            .unwrap();
        assert!(!stored.contains(&t[TOKEN_PREFIX.len()..]));
        let c = authenticate(&s, &t).unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.role), ("ops", Role::BackupOperator));
        assert!(c.sees("contoso") && !c.sees("fabrikam"));
        assert!(c.sees_resource("contoso", "anyone@x"), "no resource limit");
        let desk = Scope {
            tenant: Some("contoso".into()),
            resource: Some("ann@x".into()),
        };
        let d = create(&s, "desk", Role::RestoreOperator, &desk, None).unwrap();
        let d = authenticate(&s, &d).unwrap().unwrap();
        assert!(d.sees_resource("contoso", "ANN@x") && !d.sees_resource("contoso", "bob@x"));
        let no_tenant = Scope {
            tenant: None,
            resource: Some("ann@x".into()),
        };
        assert!(create(&s, "lost", Role::RestoreOperator, &no_tenant, None).is_err());
        assert!(authenticate(&s, "cairn_nope").unwrap().is_none());
        assert!(
            create(&s, "ops", Role::Admin, &Scope::default(), None).is_err(),
            "names are unique"
        );
        assert!(revoke(&s, "ops").unwrap());
        assert!(authenticate(&s, &t).unwrap().is_none());
        let old = create(
            &s,
            "old",
            Role::Admin,
            &Scope::default(),
            Some(chrono::Duration::seconds(1)),
        )
        .unwrap();
        s.with(|c| c.execute("UPDATE server_tokens SET expires=1 WHERE name='old'", []))
            .unwrap();
        assert!(authenticate(&s, &old).unwrap().is_none());
        assert_eq!(admins(&s).unwrap(), 0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Some(chrono::Duration::days(90)));
        assert_eq!(parse_duration("10m"), Some(chrono::Duration::minutes(10)));
        assert_eq!(parse_duration("3s"), Some(chrono::Duration::seconds(3)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5y"), None);
    }

    #[test]
    fn only_admins_destroy_and_only_content_roles_read_content() {
        for r in Role::ALL {
            assert_eq!(allowed(r, Action::Destroy), r == Role::Admin, "{r:?}");
            assert_eq!(
                allowed(r, Action::ReadContent),
                matches!(r, Role::Admin | Role::RestoreOperator),
                "{r:?}"
            );
        }
    }
}
