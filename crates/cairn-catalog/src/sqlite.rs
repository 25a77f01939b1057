//! The embedded catalog: one SQLite file in WAL mode. Writers share one connection; long
//! walks (`for_each_next` feeding an archive) open their own read connection so they never
//! hold up the stagings of other resources.

use crate::{
    Catalog, CatalogError, Change, CommitReport, Hit, ItemRow, Lookup, Point, Query, Resource,
    ResourceKind, Result, sort_key,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT,
    UNIQUE (tenant, name)
);
CREATE TABLE IF NOT EXISTS points (
    resource INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    snapshot TEXT NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (resource, seq)
);
-- One row per version; valid in points first..=last (last NULL: still current).
CREATE TABLE IF NOT EXISTS versions (
    resource INTEGER NOT NULL,
    item TEXT NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    change TEXT NOT NULL,
    subject TEXT, sender TEXT, recipients TEXT, date INTEGER, name TEXT, hash TEXT,
    sidecar TEXT,
    first INTEGER NOT NULL,
    last INTEGER
);
CREATE INDEX IF NOT EXISTS versions_current ON versions (resource, last, key);
CREATE INDEX IF NOT EXISTS versions_item ON versions (resource, item);
CREATE TABLE IF NOT EXISTS staged (
    resource INTEGER NOT NULL,
    item TEXT NOT NULL,
    op TEXT NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    change TEXT NOT NULL,
    subject TEXT, sender TEXT, recipients TEXT, date INTEGER, name TEXT, hash TEXT,
    sidecar TEXT,
    spool TEXT,
    PRIMARY KEY (resource, item)
);
CREATE INDEX IF NOT EXISTS staged_key ON staged (resource, op, key);
-- Small documents kept beside the index: legal holds, findings of restore points.
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS tokens (
    resource INTEGER NOT NULL,
    scope TEXT NOT NULL,
    link TEXT,
    staged_link TEXT,
    staged_set INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource, scope)
);
"#;

const COLS: &str = "item, scope, kind, path, size, mtime, change, subject, sender, recipients, date, name, hash, sidecar";

pub struct SqliteCatalog {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCatalog")
            .field("path", &self.path)
            .finish()
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

/// Catalogs written before resources had a stored kind get the column, and their resources
/// the kind their names have always implied (`group:` names, site URLs, else users). This
/// is the only place a kind is inferred from a name; the backup registers kinds as Graph
/// reports them.
fn migrate_kinds(c: &mut Connection) -> rusqlite::Result<()> {
    let has_kind = c
        .prepare("SELECT 1 FROM pragma_table_info('resources') WHERE name='kind'")?
        .exists([])?;
    if !has_kind {
        c.execute_batch("ALTER TABLE resources ADD COLUMN kind TEXT")?;
    }
    c.execute_batch(
        "UPDATE resources SET kind = CASE
             WHEN name LIKE 'group:%' THEN 'group'
             WHEN name LIKE '%://%' THEN 'site'
             ELSE 'user' END
         WHERE kind IS NULL",
    )
}

/// A resource from `id, tenant, name, kind` starting at `at`.
fn resource_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Resource> {
    let kind: Option<String> = r.get(at + 3)?;
    Ok(Resource {
        id: r.get(at)?,
        tenant: r.get(at + 1)?,
        name: r.get(at + 2)?,
        kind: kind
            .as_deref()
            .and_then(ResourceKind::parse)
            .unwrap_or(ResourceKind::User),
    })
}

/// Reads the `COLS` columns starting at `at`.
fn row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ItemRow> {
    Ok(ItemRow {
        item: r.get(at)?,
        scope: r.get(at + 1)?,
        kind: r.get(at + 2)?,
        path: r.get(at + 3)?,
        size: r.get::<_, i64>(at + 4)? as u64,
        mtime: from_micros(r.get(at + 5)?),
        change: r.get(at + 6)?,
        subject: r.get(at + 7)?,
        sender: r.get(at + 8)?,
        recipients: r.get(at + 9)?,
        date: r.get::<_, Option<i64>>(at + 10)?.map(from_micros),
        name: r.get(at + 11)?,
        hash: r.get(at + 12)?,
        sidecar: r.get(at + 13)?,
        spool: None,
    })
}

impl SqliteCatalog {
    /// Opens (creating if needed) the catalog at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CatalogError::Store {
                path: path.display().to_string(),
                detail: format!("creating its directory: {e}"),
            })?;
        }
        let conn = Self::connect(path)?;
        let this = Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        this.with(|c| c.execute_batch(SCHEMA))?;
        this.with(migrate_kinds)?;
        Ok(this)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(path: &Path) -> Result<Connection> {
        let err = |e: rusqlite::Error| CatalogError::Store {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let conn = Connection::open(path).map_err(err)?;
        // WAL with NORMAL sync: a killed process loses nothing committed; readers never
        // block the writer.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;",
        )
        .map_err(err)?;
        // SQLite's lower() folds ASCII only: searches fold case as Rust does, for every
        // script (a Cyrillic subject is found whatever the case typed).
        conn.create_scalar_function(
            "cairn_lower",
            1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase())),
        )
        .map_err(err)?;
        Ok(conn)
    }

    fn err(&self, e: rusqlite::Error) -> CatalogError {
        CatalogError::Store {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c).map_err(|e| self.err(e))
    }

    /// The first remaining point of `first..=last` (`last` false) or the last one (true):
    /// points may have been forgotten since the version was recorded.
    fn point(
        &self,
        c: &Connection,
        res: i64,
        first: i64,
        last: Option<i64>,
        latest: bool,
    ) -> rusqlite::Result<Option<Point>> {
        let order = if latest { "DESC" } else { "ASC" };
        c.query_row(
            &format!(
                "SELECT seq, snapshot, time FROM points WHERE resource=?1 AND seq>=?2 AND seq<=?3
                 ORDER BY seq {order} LIMIT 1"
            ),
            params![res, first, last.unwrap_or(i64::MAX)],
            |r| {
                Ok(Point {
                    seq: r.get(0)?,
                    snapshot: r.get(1)?,
                    time: from_micros(r.get(2)?),
                })
            },
        )
        .optional()
    }
}

/// The conditions of a search, appended to `sql` (which selects from `versions v JOIN
/// resources r`), and their arguments.
fn filter(q: &Query, sql: &mut String) -> Vec<rusqlite::types::Value> {
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if !q.resources.is_empty() {
        let ids: Vec<String> = q.resources.iter().map(i64::to_string).collect();
        sql.push_str(&format!(" AND r.id IN ({})", ids.join(",")));
    }
    if let Some(t) = &q.tenant {
        arg(sql, " AND r.tenant = ?", t.clone().into());
    }
    if let Some(t) = &q.text {
        arg(
            sql,
            " AND (cairn_lower(v.subject) LIKE ? OR cairn_lower(v.name) LIKE ?)",
            format!("%{}%", t.to_lowercase()).into(),
        );
    }
    if let Some(p) = &q.person {
        arg(
            sql,
            " AND (cairn_lower(v.sender) LIKE ? OR cairn_lower(v.recipients) LIKE ?)",
            format!("%{}%", p.to_lowercase()).into(),
        );
    }
    if let Some(t) = q.after {
        arg(sql, " AND v.date >= ?", micros(t).into());
    }
    if let Some(t) = q.before {
        arg(sql, " AND v.date < ?", micros(t).into());
    }
    if let Some(n) = q.min_size {
        arg(sql, " AND v.size >= ?", (n as i64).into());
    }
    if let Some(n) = q.max_size {
        arg(sql, " AND v.size <= ?", (n as i64).into());
    }
    if let Some(k) = &q.kind {
        arg(sql, " AND v.kind = ?", k.clone().into());
    }
    args
}

impl Catalog for SqliteCatalog {
    fn resource(&self, tenant: &str, kind: ResourceKind, name: &str) -> Result<Resource> {
        self.with(|c| {
            c.execute(
                "INSERT INTO resources (tenant, name, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, name) DO UPDATE SET kind = coalesce(kind, excluded.kind)",
                params![tenant, name, kind.as_str()],
            )?;
            c.query_row(
                "SELECT id, tenant, name, kind FROM resources WHERE tenant=?1 AND name=?2",
                params![tenant, name],
                |r| resource_at(r, 0),
            )
        })
    }

    fn resources(&self) -> Result<Vec<Resource>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT id, tenant, name, kind FROM resources ORDER BY tenant, name")?;
            let rows = st.query_map([], |r| resource_at(r, 0))?;
            rows.collect()
        })
    }

    fn lookup(&self, res: i64, item: &str) -> Result<Lookup> {
        self.with(|c| {
            let current = c
                .query_row(
                    &format!(
                        "SELECT {COLS} FROM versions WHERE resource=?1 AND item=?2 AND last IS NULL"
                    ),
                    params![res, item],
                    |r| row_at(r, 0),
                )
                .optional()?;
            let staged = c
                .query_row(
                    &format!("SELECT op, spool, {COLS} FROM staged WHERE resource=?1 AND item=?2"),
                    params![res, item],
                    |r| {
                        let op: String = r.get(0)?;
                        let mut row = row_at(r, 2)?;
                        row.spool = r.get(1)?;
                        Ok((row, op == "del"))
                    },
                )
                .optional()?;
            Ok(Lookup { current, staged })
        })
    }

    fn stage_put(&self, res: i64, row: &ItemRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO staged (resource, op, key, spool, {COLS})
                     VALUES (?1, 'put', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ),
                params![
                    res,
                    sort_key(&row.path),
                    row.spool,
                    row.item,
                    row.scope,
                    row.kind,
                    row.path,
                    row.size as i64,
                    micros(row.mtime),
                    row.change,
                    row.subject,
                    row.sender,
                    row.recipients,
                    row.date.map(micros),
                    row.name,
                    row.hash,
                    row.sidecar,
                ],
            )?;
            Ok(())
        })
    }

    fn stage_remove(&self, res: i64, scope: &str, item: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            // A staged version decides where the item lives now; else the committed one.
            let staged: Option<(String, String)> = tx
                .query_row(
                    "SELECT op, scope FROM staged WHERE resource=?1 AND item=?2",
                    params![res, item],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let n = match staged {
                Some((op, s)) if op == "put" && s == scope => tx.execute(
                    "UPDATE staged SET op='del' WHERE resource=?1 AND item=?2",
                    params![res, item],
                )?,
                Some(_) => 0,
                None => tx.execute(
                    &format!(
                        "INSERT INTO staged (resource, op, key, spool, {COLS})
                         SELECT resource, 'del', key, NULL, {COLS} FROM versions
                         WHERE resource=?1 AND item=?2 AND scope=?3 AND last IS NULL"
                    ),
                    params![res, item, scope],
                )?,
            };
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn drop_from_next(&self, res: i64, path: &str) -> Result<Option<String>> {
        let key = sort_key(path);
        let found: Option<(String, String)> = self.with(|c| {
            c.query_row(
                "SELECT item, scope FROM staged WHERE resource=?1 AND op='put' AND key=?2
                 UNION ALL
                 SELECT item, scope FROM versions v WHERE resource=?1 AND last IS NULL AND key=?2
                   AND NOT EXISTS (SELECT 1 FROM staged s WHERE s.resource=?1 AND s.item=v.item)
                 LIMIT 1",
                params![res, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        let Some((item, scope)) = found else {
            return Ok(None);
        };
        self.stage_remove(res, &scope, &item)?;
        Ok(Some(scope))
    }

    fn unstage(&self, res: i64, item: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM staged WHERE resource=?1 AND item=?2",
                params![res, item],
            )?;
            Ok(())
        })
    }

    fn unstage_all(&self, res: i64) -> Result<u64> {
        self.with(|c| {
            c.execute("DELETE FROM staged WHERE resource=?1", params![res])
                .map(|n| n as u64)
        })
    }

    fn stage_resync(&self, res: i64, scope: &str) -> Result<u64> {
        self.with(|c| {
            let tx = c.transaction()?;
            let a = tx.execute(
                "UPDATE staged SET op='del' WHERE resource=?1 AND scope=?2",
                params![res, scope],
            )?;
            let b = tx.execute(
                &format!(
                    "INSERT OR IGNORE INTO staged (resource, op, key, spool, {COLS})
                     SELECT resource, 'del', key, NULL, {COLS} FROM versions
                     WHERE resource=?1 AND scope=?2 AND last IS NULL"
                ),
                params![res, scope],
            )?;
            tx.commit()?;
            Ok((a + b) as u64)
        })
    }

    fn items_in_scope(&self, res: i64, scope: &str, f: &mut dyn FnMut(String)) -> Result<()> {
        let c = Self::connect(&self.path)?;
        let mut st = c
            .prepare(
                "SELECT item FROM versions v WHERE v.resource=?1 AND v.scope=?2 AND v.last IS NULL
                   AND NOT EXISTS (SELECT 1 FROM staged s WHERE s.resource=?1 AND s.item=v.item)
                 UNION ALL
                 SELECT item FROM staged WHERE resource=?1 AND scope=?2 AND op='put'",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st.query(params![res, scope]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            f(r.get(0).map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    fn scopes(&self, res: i64) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT scope FROM versions WHERE resource=?1 AND last IS NULL
                 UNION SELECT scope FROM staged WHERE resource=?1
                 UNION SELECT scope FROM tokens WHERE resource=?1
                 ORDER BY 1",
            )?;
            let rows = st.query_map(params![res], |r| r.get(0))?;
            rows.collect()
        })
    }

    fn token(&self, res: i64, scope: &str) -> Result<Option<String>> {
        self.with(|c| {
            let t: Option<(Option<String>, Option<String>, i64)> = c
                .query_row(
                    "SELECT link, staged_link, staged_set FROM tokens WHERE resource=?1 AND scope=?2",
                    params![res, scope],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(match t {
                Some((_, staged, 1)) => staged,
                Some((link, _, _)) => link,
                None => None,
            })
        })
    }

    fn stage_token(&self, res: i64, scope: &str, link: Option<&str>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (resource, scope, staged_link, staged_set) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (resource, scope) DO UPDATE SET staged_link=?3, staged_set=1",
                params![res, scope, link],
            )?;
            Ok(())
        })
    }

    fn for_each_next(&self, res: i64, f: &mut dyn FnMut(ItemRow) -> bool) -> Result<()> {
        // Its own connection: the walk lasts as long as the archive.
        let c = Self::connect(&self.path)?;
        let sql = format!(
            "SELECT key, NULL, {COLS} FROM versions v WHERE v.resource=?1 AND v.last IS NULL
               AND NOT EXISTS (SELECT 1 FROM staged s WHERE s.resource=?1 AND s.item=v.item)
             UNION ALL
             SELECT key, spool, {COLS} FROM staged WHERE resource=?1 AND op='put'
             ORDER BY 1"
        );
        let mut st = c.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = st.query(params![res]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let mut row = row_at(r, 2).map_err(|e| self.err(e))?;
            row.spool = r.get(1).map_err(|e| self.err(e))?;
            if !f(row) {
                break;
            }
        }
        Ok(())
    }

    fn staged(&self, res: i64) -> Result<u64> {
        self.with(|c| {
            c.query_row(
                "SELECT count(*) FROM staged WHERE resource=?1",
                params![res],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }

    fn commit(&self, res: i64, snapshot: &str, time: DateTime<Utc>) -> Result<CommitReport> {
        self.with(|c| {
            let tx = c.transaction()?;
            let seq: i64 = tx.query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM points WHERE resource=?1",
                params![res],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO points (resource, seq, snapshot, time) VALUES (?1, ?2, ?3, ?4)",
                params![res, seq, snapshot, micros(time)],
            )?;
            let count = |sql: &str| -> rusqlite::Result<u64> {
                tx.query_row(sql, params![res], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
            };
            let existing = "EXISTS (SELECT 1 FROM versions v WHERE v.resource=s.resource AND v.item=s.item AND v.last IS NULL)";
            let changed = count(&format!(
                "SELECT count(*) FROM staged s WHERE resource=?1 AND op='put' AND kind != 'folder' AND {existing}"
            ))?;
            let added = count(&format!(
                "SELECT count(*) FROM staged s WHERE resource=?1 AND op='put' AND kind != 'folder' AND NOT {existing}"
            ))?;
            let removed = count(&format!(
                "SELECT count(*) FROM staged s WHERE resource=?1 AND op='del' AND kind != 'folder' AND {existing}"
            ))?;
            tx.execute(
                "UPDATE versions SET last=?2 WHERE resource=?1 AND last IS NULL
                   AND item IN (SELECT item FROM staged WHERE resource=?1)",
                params![res, seq - 1],
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO versions (resource, key, first, last, {COLS})
                     SELECT resource, key, ?2, NULL, {COLS} FROM staged WHERE resource=?1 AND op='put'"
                ),
                params![res, seq],
            )?;
            tx.execute("DELETE FROM staged WHERE resource=?1", params![res])?;
            tx.execute(
                "UPDATE tokens SET link=staged_link, staged_link=NULL, staged_set=0
                 WHERE resource=?1 AND staged_set=1",
                params![res],
            )?;
            tx.commit()?;
            Ok(CommitReport {
                seq,
                added,
                changed,
                removed,
            })
        })
    }

    fn forget_snapshots(&self, snapshots: &[String]) -> Result<u64> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            for s in snapshots {
                n += tx.execute("DELETE FROM points WHERE snapshot=?1", params![s])?;
            }
            // A version stays while some remaining point lies in its interval; the current
            // ones (last NULL) always stay: the next backup builds on them.
            tx.execute(
                "DELETE FROM versions WHERE last IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM points p WHERE p.resource = versions.resource
                     AND p.seq BETWEEN versions.first AND versions.last)",
                [],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
    }

    fn replace_snapshot(&self, old: &str, new: &str) -> Result<u64> {
        self.with(|c| {
            c.execute(
                "UPDATE points SET snapshot=?2 WHERE snapshot=?1",
                params![old, new],
            )
            .map(|n| n as u64)
        })
    }

    fn remove_versions(&self, res: i64, items: &[String]) -> Result<u64> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            for i in items {
                n += tx.execute(
                    "DELETE FROM versions WHERE resource=?1 AND item=?2",
                    params![res, i],
                )?;
            }
            tx.commit()?;
            Ok(n as u64)
        })
    }

    fn put_doc(&self, kind: &str, id: &str, json: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO docs (kind, id, json) VALUES (?1, ?2, ?3)",
                params![kind, id, json],
            )
            .map(|_| ())
        })
    }

    fn docs(&self, kind: &str) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, json FROM docs WHERE kind=?1 ORDER BY id")?;
            let rows = st.query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    fn delete_doc(&self, kind: &str, id: &str) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "DELETE FROM docs WHERE kind=?1 AND id=?2",
                params![kind, id],
            )
            .map(|n| n > 0)
        })
    }

    fn points(&self, res: i64) -> Result<Vec<Point>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT seq, snapshot, time FROM points WHERE resource=?1 ORDER BY seq")?;
            let rows = st.query_map(params![res], |r| {
                Ok(Point {
                    seq: r.get(0)?,
                    snapshot: r.get(1)?,
                    time: from_micros(r.get(2)?),
                })
            })?;
            rows.collect()
        })
    }

    fn for_each_at(
        &self,
        res: i64,
        seq: i64,
        prefix: &str,
        f: &mut dyn FnMut(ItemRow) -> bool,
    ) -> Result<()> {
        let c = Self::connect(&self.path)?;
        let sql = format!(
            "SELECT {COLS} FROM versions WHERE resource=?1 AND first<=?2 AND (last IS NULL OR last>=?2)
               AND substr(path, 1, length(?3)) = ?3
             ORDER BY key"
        );
        let mut st = c.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = st
            .query(params![res, seq, prefix])
            .map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            if !f(row_at(r, 0).map_err(|e| self.err(e))?) {
                break;
            }
        }
        Ok(())
    }

    fn snapshots_matching(&self, q: &Query) -> Result<Vec<String>> {
        let mut sql = String::from(
            "SELECT DISTINCT p.snapshot FROM versions v JOIN resources r ON r.id = v.resource
             JOIN points p ON p.resource = v.resource AND p.seq >= v.first
               AND (v.last IS NULL OR p.seq <= v.last)
             WHERE 1=1",
        );
        let args = filter(q, &mut sql);
        self.with(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
            rows.collect()
        })
    }

    fn changes(
        &self,
        res: i64,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(Change) -> bool,
    ) -> Result<()> {
        let c = Self::connect(&self.path)?;
        // Valid at `from` but not at `to` (removed or replaced), and the reverse.
        let gone = format!(
            "SELECT {COLS} FROM versions WHERE resource=?1 AND first<=?2 AND last IS NOT NULL
               AND last>=?2 AND last<?3 ORDER BY item"
        );
        let came = format!(
            "SELECT {COLS} FROM versions WHERE resource=?1 AND first>?2 AND first<=?3
               AND (last IS NULL OR last>=?3) ORDER BY item"
        );
        let mut st_old = c.prepare(&gone).map_err(|e| self.err(e))?;
        let mut st_new = c.prepare(&came).map_err(|e| self.err(e))?;
        let mut olds = st_old
            .query(params![res, from, to])
            .map_err(|e| self.err(e))?;
        let mut news = st_new
            .query(params![res, from, to])
            .map_err(|e| self.err(e))?;
        let next = |rows: &mut rusqlite::Rows<'_>| -> Result<Option<ItemRow>> {
            match rows.next().map_err(|e| self.err(e))? {
                Some(r) => Ok(Some(row_at(r, 0).map_err(|e| self.err(e))?)),
                None => Ok(None),
            }
        };
        let (mut o, mut n) = (next(&mut olds)?, next(&mut news)?);
        loop {
            let change = match (o.take(), n.take()) {
                (None, None) => return Ok(()),
                (Some(a), Some(b)) if a.item == b.item => {
                    (o, n) = (next(&mut olds)?, next(&mut news)?);
                    Change {
                        old: Some(a),
                        new: Some(b),
                    }
                }
                (Some(a), b) if b.as_ref().is_none_or(|b| a.item < b.item) => {
                    (o, n) = (next(&mut olds)?, b);
                    Change {
                        old: Some(a),
                        new: None,
                    }
                }
                (a, Some(b)) => {
                    (o, n) = (a, next(&mut news)?);
                    Change {
                        old: None,
                        new: Some(b),
                    }
                }
                (Some(_), None) => unreachable!("handled above"),
            };
            if !f(change) {
                return Ok(());
            }
        }
    }

    fn for_each_version(
        &self,
        res: i64,
        f: &mut dyn FnMut(ItemRow, i64, Option<i64>) -> bool,
    ) -> Result<()> {
        let c = Self::connect(&self.path)?;
        let sql = format!(
            "SELECT first, last, {COLS} FROM versions WHERE resource=?1 ORDER BY item, first"
        );
        let mut st = c.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = st.query(params![res]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let first: i64 = r.get(0).map_err(|e| self.err(e))?;
            let last: Option<i64> = r.get(1).map_err(|e| self.err(e))?;
            if !f(row_at(r, 2).map_err(|e| self.err(e))?, first, last) {
                break;
            }
        }
        Ok(())
    }

    fn count_at(&self, res: i64, seq: i64) -> Result<BTreeMap<String, u64>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT kind, count(*) FROM versions WHERE resource=?1 AND first<=?2
                   AND (last IS NULL OR last>=?2) GROUP BY kind",
            )?;
            let rows = st.query_map(params![res, seq], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        })
    }

    fn find(&self, q: &Query) -> Result<Vec<Hit>> {
        let mut sql = format!(
            "SELECT r.id, r.tenant, r.name, r.kind, v.first, v.last, {} FROM versions v JOIN resources r ON r.id = v.resource WHERE 1=1",
            COLS.split(", ")
                .map(|c| format!("v.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let args = filter(q, &mut sql);
        sql.push_str(" ORDER BY r.tenant, r.name, v.key, v.first");
        if let Some(n) = q.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.with(|c| {
            let mut st = c.prepare(&sql)?;
            let found: Vec<(Resource, i64, Option<i64>, ItemRow)> = st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((resource_at(r, 0)?, r.get(4)?, r.get(5)?, row_at(r, 6)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(found.len());
            for (resource, first, last, row) in found {
                let Some(first_point) = self.point(c, resource.id, first, last, false)? else {
                    continue;
                };
                let last = match last {
                    Some(l) => self.point(c, resource.id, first, Some(l), true)?,
                    None => None,
                };
                let first = first_point;
                out.push(Hit {
                    resource,
                    row,
                    first,
                    last,
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    // What every store does is in `tests/it/contract.rs`, run against SQLite and
    // PostgreSQL; here what only SQLite has.
    use super::*;

    #[test]
    fn a_catalog_written_before_kinds_were_stored_gets_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE resources (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL,
                   name TEXT NOT NULL, UNIQUE (tenant, name));
                 INSERT INTO resources (tenant, name) VALUES
                   ('t', 'ann@x.example'), ('t', 'group:sales'),
                   ('t', 'https://x.sharepoint.com/sites/hr');",
            )
            .unwrap();
        }
        let c = SqliteCatalog::open(&path).unwrap();
        let kinds: Vec<(String, ResourceKind)> = c
            .resources()
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ann@x.example".to_string(), ResourceKind::User),
                ("group:sales".to_string(), ResourceKind::Group),
                (
                    "https://x.sharepoint.com/sites/hr".to_string(),
                    ResourceKind::Site
                ),
            ]
        );
        // A kind the backup registers stands from then on.
        let r = c.resource("t", ResourceKind::Group, "new-team").unwrap();
        assert_eq!(r.kind, ResourceKind::Group);
        assert_eq!(
            c.resource("t", ResourceKind::User, "new-team")
                .unwrap()
                .kind,
            ResourceKind::Group
        );
    }
}
