//! Local accounts: operators of a server without Microsoft Entra ID sign in to the portal
//! with a name and a password. Only an argon2id hash of the password is kept, and a wrong
//! name costs as much time as a wrong password, so answers do not tell which names exist.

use crate::auth::Role;
use crate::store::{Store, now, time};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{OptionalExtension, params};
use std::sync::LazyLock;

/// A local account as listed (never its hash).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// Limited to this tenant.
    pub tenant: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
}

fn hasher() -> argon2::Argon2<'static> {
    // argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's minimum).
    argon2::Argon2::default()
}

fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
        .to_string())
}

/// The hash an unknown name is checked against, so that it takes as long as a known one.
static DECOY: LazyLock<String> =
    LazyLock::new(|| hash("not a password of anyone").unwrap_or_default());

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(
            cairn_app::UserError::new(format!("{name:?} is not an account name"))
                .hint("use letters, digits, `-`, `_`, `.` and `@` (at most 64)")
                .into(),
        );
    }
    Ok(())
}

/// Adds the account `name`. Blocking (hashing takes a moment on purpose).
pub fn add(
    store: &Store,
    name: &str,
    role: Role,
    tenant: Option<&str>,
    password: &str,
) -> anyhow::Result<()> {
    check_name(name)?;
    if role == Role::SelfService {
        return Err(cairn_app::UserError::new(
            "a local account has a role: admin, backup-operator, restore-operator or auditor",
        )
        .into());
    }
    if password.chars().count() < 12 {
        return Err(
            cairn_app::UserError::new("the password is shorter than 12 characters")
                .hint("choose a longer one (a passphrase of several words)")
                .into(),
        );
    }
    let h = hash(password)?;
    let inserted = store.with(|c| {
        c.execute(
            "INSERT OR IGNORE INTO server_users (name, hash, role, tenant, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, h, role.as_str(), tenant, now()],
        )
    })?;
    if inserted == 0 {
        return Err(
            cairn_app::UserError::new(format!("an account named {name} exists"))
                .hint("choose another name, or remove that one first (`cairn user remove`)")
                .into(),
        );
    }
    Ok(())
}

/// Every account, by name.
pub fn list(store: &Store) -> anyhow::Result<Vec<Account>> {
    store.with(|c| {
        let mut st =
            c.prepare("SELECT name, role, tenant, created FROM server_users ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(Account {
                name: r.get(0)?,
                role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Auditor),
                tenant: r.get(2)?,
                created: time(r.get(3)?),
            })
        })?;
        rows.collect()
    })
}

/// Removes the account `name` and ends its sessions; false when there is none.
pub fn remove(store: &Store, name: &str) -> anyhow::Result<bool> {
    store.with(|c| {
        let n = c.execute("DELETE FROM server_users WHERE name=?1", params![name])?;
        c.execute(
            "DELETE FROM server_sessions WHERE name=?1 AND via='local'",
            params![name],
        )?;
        Ok(n > 0)
    })
}

/// The account `name` when `password` is its password. Takes the same time whether the
/// name exists or not. Blocking.
pub fn verify(store: &Store, name: &str, password: &str) -> anyhow::Result<Option<Account>> {
    let row = store.with(|c| {
        c.query_row(
            "SELECT hash, role, tenant, created FROM server_users WHERE name=?1",
            params![name],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .optional()
    })?;
    let stored = row.as_ref().map_or(DECOY.as_str(), |r| r.0.as_str());
    // The comparison inside is constant-time; an unknown name runs the same work.
    let matches = PasswordHash::new(stored)
        .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false);
    Ok(match (row, matches) {
        (Some((_, role, tenant, created)), true) => Some(Account {
            name: name.to_string(),
            role: Role::parse(&role).unwrap_or(Role::Auditor),
            tenant,
            created: time(created),
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_kept_as_an_argon2id_hash() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        add(&s, "ann", Role::Admin, None, "correct horse battery").unwrap();
        let h: String = s
            .one("SELECT hash FROM server_users WHERE name='ann'", [])
            .unwrap()
            .unwrap();
        assert!(h.starts_with("$argon2id$") && !h.contains("horse"), "{h}");
        assert_eq!(
            verify(&s, "ann", "correct horse battery")
                .unwrap()
                .map(|a| a.role),
            Some(Role::Admin)
        );
        assert!(verify(&s, "ann", "wrong horse battery").unwrap().is_none());
        assert!(
            verify(&s, "bob", "correct horse battery")
                .unwrap()
                .is_none()
        );
        assert!(add(&s, "ann", Role::Auditor, None, "another long one").is_err());
        assert!(add(&s, "cy", Role::Auditor, None, "short").is_err());
        assert!(add(&s, "../x", Role::Auditor, None, "long enough here").is_err());
        assert!(remove(&s, "ann").unwrap());
        assert!(!remove(&s, "ann").unwrap());
        assert!(list(&s).unwrap().is_empty());
    }
}
