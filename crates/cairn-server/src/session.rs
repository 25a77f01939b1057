//! The portal's sessions: a person who signed in (through Microsoft Entra ID or a local
//! account) holds a random 256-bit id in the `cairn_session` cookie; the server keeps only
//! its SHA-256, with who it is, and a CSRF token the pages send back on every change
//! (`X-CSRF-Token`, or the form field `csrf`). A session ends after 8 hours unused or 24
//! hours after sign-in, or at sign-out.

use crate::auth::{Caller, Role};
use crate::store::{Store, now};
use base64::Engine as _;
use rusqlite::{OptionalExtension, params};
use sha2::Digest;

/// The session cookie (HttpOnly).
pub const COOKIE: &str = "cairn_session";
/// The CSRF cookie (readable by the pages' scripts, to send back as `X-CSRF-Token`).
pub const CSRF_COOKIE: &str = "cairn_csrf";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
pub const IDLE: i64 = 8 * 3600;
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE: i64 = 24 * 3600;

/// Who a session stands for.
#[derive(Clone, Debug)]
pub struct Person {
    /// User principal name (Entra) or account name (local).
    pub name: String,
    /// `entra` or `local`.
    pub via: &'static str,
    pub role: Role,
    pub tenant: Option<String>,
    /// A self-service person's own resource (their user principal name).
    pub resource: Option<String>,
}

/// A live session: the caller it makes, and its CSRF token.
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
}

/// 256 random bits, base64url.
pub fn random() -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn hash(id: &str) -> String {
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

/// Starts a session for `p`: its id (for the cookie; never kept) and CSRF token.
pub fn create(store: &Store, p: &Person) -> anyhow::Result<(String, String)> {
    let (id, csrf) = (random(), random());
    let t = now();
    store.with(|c| {
        // Ended sessions go as new ones start.
        c.execute(
            "DELETE FROM server_sessions WHERE seen <= ?1 OR created <= ?2",
            params![t - IDLE, t - ABSOLUTE],
        )?;
        c.execute(
            "INSERT INTO server_sessions (hash, name, via, role, tenant, resource, csrf, created, seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![hash(&id), p.name, p.via, p.role.as_str(), p.tenant, p.resource, csrf, t],
        )
    })?;
    Ok((id, csrf))
}

/// The live session of cookie value `id`, marked used now.
pub fn lookup(store: &Store, id: &str) -> anyhow::Result<Option<Session>> {
    let t = now();
    let h = hash(id);
    let row = store.with(|c| {
        c.query_row(
            "SELECT name, role, tenant, resource, csrf, seen FROM server_sessions
             WHERE hash=?1 AND seen > ?2 AND created > ?3",
            params![h, t - IDLE, t - ABSOLUTE],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()
    })?;
    let Some((name, role, tenant, resource, csrf, seen)) = row else {
        return Ok(None);
    };
    let role = match role.as_str() {
        "self-service" => Role::SelfService,
        r => match Role::parse(r) {
            Some(r) => r,
            None => return Ok(None),
        },
    };
    if t - seen >= 60 {
        store.with(|c| {
            c.execute(
                "UPDATE server_sessions SET seen=?2 WHERE hash=?1",
                params![h, t],
            )
        })?;
    }
    Ok(Some(Session {
        caller: Caller {
            name,
            role,
            tenant,
            resource,
        },
        csrf,
    }))
}

/// Ends the session of cookie value `id`.
pub fn delete(store: &Store, id: &str) -> anyhow::Result<()> {
    store.with(|c| {
        c.execute(
            "DELETE FROM server_sessions WHERE hash=?1",
            params![hash(id)],
        )
    })?;
    Ok(())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The two `Set-Cookie` values of a new session (`secure`: the server is reached over
/// https).
pub fn set_cookies(id: &str, csrf: &str, secure: bool) -> [String; 2] {
    let s = if secure { "; Secure" } else { "" };
    [
        format!("{COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/{s}"),
        format!("{CSRF_COOKIE}={csrf}; SameSite=Lax; Path=/{s}"),
    ]
}

/// The `Set-Cookie` values that remove both cookies.
pub fn clear_cookies(secure: bool) -> [String; 2] {
    let s = if secure { "; Secure" } else { "" };
    [
        format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{s}"),
        format!("{CSRF_COOKIE}=; SameSite=Lax; Path=/; Max-Age=0{s}"),
    ]
}

/// Whether `given` is the session's CSRF token, compared in constant time.
pub fn csrf_matches(session: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (session.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `csrf` field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &[u8], field: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_kept_hashed_and_ends_when_idle_or_old() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        let p = Person {
            name: "adele@contoso.com".into(),
            via: "entra",
            role: Role::SelfService,
            tenant: Some("contoso".into()),
            resource: Some("adele@contoso.com".into()),
        };
        let (id, csrf) = create(&s, &p).unwrap();
        assert_eq!(id.len(), 43);
        let stored: String = s
            .one("SELECT hash FROM server_sessions", [])
            .unwrap()
            .unwrap();
        assert_ne!(stored, id);
        let got = lookup(&s, &id).unwrap().unwrap();
        assert_eq!(got.caller.role, Role::SelfService);
        assert_eq!(got.csrf, csrf);
        assert!(lookup(&s, "nope").unwrap().is_none());
        s.with(|c| c.execute("UPDATE server_sessions SET seen=seen-?1", [IDLE]))
            .unwrap();
        assert!(lookup(&s, &id).unwrap().is_none(), "idle");
        let (id, _) = create(&s, &p).unwrap();
        s.with(|c| c.execute("UPDATE server_sessions SET created=created-?1", [ABSOLUTE]))
            .unwrap();
        assert!(lookup(&s, &id).unwrap().is_none(), "absolute");
        let (id, _) = create(&s, &p).unwrap();
        delete(&s, &id).unwrap();
        assert!(lookup(&s, &id).unwrap().is_none(), "signed out");
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert_eq!(
            form_field(b"a=1&csrf=x%2By", "csrf").as_deref(),
            Some("x+y")
        );
    }
}
