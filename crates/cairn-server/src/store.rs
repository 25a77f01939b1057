//! What the server keeps: run history, API tokens, local accounts, the portal's sessions
//! and pending sign-ins, jobs defined through the API and requests awaiting approval (and the legal holds of before they moved to `cairn-app`,
//! until [`migrate_holds`] has moved them) — tables in the catalog's SQLite file, beside what the
//! catalog holds (one file to back up, one place a restore of the server's state reads).

use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS server_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started INTEGER NOT NULL,
    finished INTEGER,
    resources INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    items INTEGER NOT NULL DEFAULT 0,
    fetched INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    forgotten INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS server_runs_job ON server_runs (job, id);
CREATE TABLE IF NOT EXISTS server_run_resources (
    run INTEGER NOT NULL,
    resource TEXT NOT NULL,
    kind TEXT NOT NULL,
    ok INTEGER NOT NULL,
    snapshot TEXT,
    items INTEGER NOT NULL,
    added INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    fetched INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    warnings TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run, resource)
);
CREATE TABLE IF NOT EXISTS server_drill_failures (
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    resource TEXT NOT NULL,
    point INTEGER NOT NULL,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE TABLE IF NOT EXISTS server_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    tenant TEXT,
    resource TEXT,
    created INTEGER NOT NULL,
    expires INTEGER,
    revoked INTEGER
);
CREATE TABLE IF NOT EXISTS server_jobs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_holds (
    id INTEGER PRIMARY KEY,
    tenant TEXT,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed INTEGER NOT NULL,
    released INTEGER
);
CREATE TABLE IF NOT EXISTS server_approvals (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    filed INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    approved_by TEXT,
    decided INTEGER,
    status TEXT NOT NULL,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS server_users (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS server_sessions (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    via TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT,
    resource TEXT,
    csrf TEXT NOT NULL,
    created INTEGER NOT NULL,
    seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS server_logins (
    state TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    expires INTEGER NOT NULL
);
"#;

/// The server's tables. Writers share one connection (SQLite in WAL mode).
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating the tables of) the server's state in the SQLite file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        )?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut c)?)
    }

    /// A value of a one-row query, `None` when there is no row.
    pub fn one<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> anyhow::Result<Option<T>> {
        self.with(|c| c.query_row(sql, args, |r| r.get(0)).optional())
    }
}

/// Columns added since the tables were first created, added to a file made before them.
const ADDED: &[(&str, &str, &str)] = &[
    // `backup` or `drill` (a restore drill of the job's restore points).
    ("server_runs", "kind", "TEXT NOT NULL DEFAULT 'backup'"),
    // A drill's share of items read back, in percent.
    ("server_runs", "sample", "REAL"),
    // Items the job's item-level retention removed after the run.
    ("server_runs", "items_expired", "INTEGER NOT NULL DEFAULT 0"),
    // What detection found in the resource's new restore point (JSON), and the automatic
    // legal hold placed on its last clean one.
    ("server_run_resources", "findings", "TEXT"),
    ("server_run_resources", "hold", "TEXT"),
    // Why a hold of the server's former table is no longer in force there (it moved).
    ("server_holds", "note", "TEXT"),
];

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in ADDED {
        let present: bool = conn.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name=?1"),
            [column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

/// What [`migrate_holds`] did with the holds of the server's former table.
#[derive(Debug, Default)]
pub struct MovedHolds {
    /// (row id in `server_holds`, id of the legal hold that replaces it).
    pub moved: Vec<(i64, String)>,
    /// (row id, target, why): left in force in the old table, tried again at the next
    /// start.
    pub left: Vec<(i64, String, String)>,
}

/// Moves the legal holds still in force in the server's former table (`server_holds`, no
/// longer read since holds are `cairn-app`'s, in the catalog and the repository): each is
/// placed as a hold on its target — a resource, or the restore point its snapshot id
/// prefix names — by whoever placed it, then marked released in the old table with a note
/// naming the hold that replaces it. A target the catalog cannot resolve (a resource it
/// does not know, a prefix of no restore point or of several) is logged and left in the
/// old table, to be tried again at the next start. Runs at every start and finds nothing
/// to do once every row has moved. Blocking.
pub fn migrate_holds(ws: &cairn_app::Workspace, store: &Store) -> anyhow::Result<MovedHolds> {
    type Row = (i64, Option<String>, String, String, String, i64);
    let rows: Vec<Row> = store.with(|c| {
        let mut st = c.prepare(
            "SELECT id, tenant, target, reason, placed_by, placed FROM server_holds
             WHERE released IS NULL ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect()
    })?;
    let mut out = MovedHolds::default();
    for (id, tenant, target, reason, placed_by, placed) in rows {
        let resolved = match cairn_app::maintenance::legal_hold(target.trim()) {
            cairn_repo::LegalHold::Resource(name) => Ok((tenant.clone(), name)),
            cairn_repo::LegalHold::Snapshot(prefix) => {
                point_of_prefix(ws, tenant.as_deref(), &prefix)
            }
        };
        let placed_as = resolved.and_then(|(tenant, spec)| {
            let new = cairn_app::holds::NewHold {
                tenant,
                resource: Some(spec),
                reason: format!(
                    "{} (placed {} through the server's API)",
                    reason.trim(),
                    time(placed).format("%Y-%m-%d %H:%M UTC")
                ),
                ..Default::default()
            };
            cairn_app::holds::place(ws, &new, &placed_by)
        });
        match placed_as {
            Ok(h) => {
                store.with(|c| {
                    c.execute(
                        "UPDATE server_holds SET released=?2, note=?3 WHERE id=?1",
                        rusqlite::params![id, now(), format!("moved to legal hold {}", h.id)],
                    )
                })?;
                tracing::info!(
                    "the server's legal hold {id} on {target} is now legal hold {}",
                    h.id
                );
                out.moved.push((id, h.id));
            }
            Err(e) if cairn_app::classify(&e).class == cairn_app::Class::User => {
                let c = cairn_app::classify(&e);
                tracing::warn!(
                    "the server's legal hold {id} on {target} ({reason}) could not be moved to Cairn's legal holds and stays in the old table, not in force for retention: {}{}",
                    c.message,
                    c.hint
                        .map(|h| format!(" (hint: {h}; or place it again with POST /api/v1/holds)"))
                        .unwrap_or_default()
                );
                out.left.push((id, target, c.message));
            }
            Err(e) => {
                return Err(e.context(format!(
                    "moving the server's legal hold {id} on {target} to Cairn's legal holds"
                )));
            }
        }
    }
    Ok(out)
}

/// The resource and restore point a snapshot id prefix of a former hold names, as
/// `RESOURCE@SNAPSHOT`, with the resource's tenant.
fn point_of_prefix(
    ws: &cairn_app::Workspace,
    tenant: Option<&str>,
    prefix: &str,
) -> anyhow::Result<(Option<String>, String)> {
    let cat = ws.catalog()?;
    let prefix = prefix.to_ascii_lowercase();
    let mut found: Vec<(cairn_catalog::Resource, String)> = Vec::new();
    for r in cat.resources()? {
        if tenant.is_some_and(|t| t != r.tenant) {
            continue;
        }
        for p in cat.points(r.id)? {
            if p.snapshot.starts_with(&prefix) && !found.iter().any(|(_, s)| *s == p.snapshot) {
                found.push((r.clone(), p.snapshot));
            }
        }
    }
    match found.len() {
        1 => {
            let (r, snapshot) = found.remove(0);
            Ok((Some(r.tenant), format!("{}@{snapshot}", r.name)))
        }
        0 => Err(cairn_app::UserError::new(format!(
            "no restore point of the catalog has a snapshot id starting with {prefix}"
        ))
        .hint("it may have been forgotten since")
        .into()),
        n => Err(cairn_app::UserError::new(format!(
            "{n} restore points have a snapshot id starting with {prefix}"
        ))
        .hint("place a hold on each of them (`cairn hold add --resource RESOURCE@POINT`)")
        .into()),
    }
}

/// Seconds since the epoch, as the tables keep times.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A stored time as a date.
pub fn time(v: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(v, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    #[test]
    fn tables_are_created_once_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("catalog.db");
        let s = Store::open(&p).unwrap();
        s.with(|c| {
            c.execute(
                "INSERT INTO server_jobs (name, spec) VALUES (?1, ?2)",
                params!["nightly", "{}"],
            )
        })
        .unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        let spec: Option<String> = s
            .one(
                "SELECT spec FROM server_jobs WHERE name=?1",
                params!["nightly"],
            )
            .unwrap();
        assert_eq!(spec.as_deref(), Some("{}"));
    }

    #[test]
    fn a_file_made_before_drills_gains_their_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("catalog.db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE server_runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, tenant TEXT NOT NULL,
               status TEXT NOT NULL, trigger TEXT NOT NULL, started INTEGER NOT NULL, finished INTEGER,
               resources INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
               items INTEGER NOT NULL DEFAULT 0, fetched INTEGER NOT NULL DEFAULT 0,
               bytes INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0,
               throttled INTEGER NOT NULL DEFAULT 0, forgotten INTEGER NOT NULL DEFAULT 0, error TEXT);
             INSERT INTO server_runs (job, tenant, status, trigger, started) VALUES ('n', 't', 'succeeded', 'schedule', 1);",
        )
        .unwrap();
        drop(c);
        let s = Store::open(&p).unwrap();
        let kind: Option<String> = s.one("SELECT kind FROM server_runs", []).unwrap();
        assert_eq!(kind.as_deref(), Some("backup"));
        // Opening again changes nothing.
        drop(s);
        Store::open(&p).unwrap();
    }
}
