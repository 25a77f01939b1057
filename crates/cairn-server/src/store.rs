//! What the server keeps: run history, API tokens, jobs defined through the API and
//! requests awaiting approval — tables in the catalog's SQLite file, beside what the
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
