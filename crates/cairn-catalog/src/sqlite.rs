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
    use super::*;

    fn row(item: &str, scope: &str, path: &str, change: &str) -> ItemRow {
        ItemRow {
            item: item.into(),
            scope: scope.into(),
            kind: "message".into(),
            path: path.into(),
            size: 10,
            mtime: from_micros(1_700_000_000_000_000),
            change: change.into(),
            subject: Some(format!("Subject of {item}")),
            ..ItemRow::default()
        }
    }

    fn next(c: &SqliteCatalog, res: i64) -> Vec<(String, String)> {
        let mut out = Vec::new();
        c.for_each_next(res, &mut |r| {
            out.push((r.item, r.path));
            true
        })
        .unwrap();
        out
    }

    fn at(c: &SqliteCatalog, res: i64, seq: i64) -> Vec<String> {
        let mut out = Vec::new();
        c.for_each_at(res, seq, "", &mut |r| {
            out.push(format!("{}@{}", r.item, r.change));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn versions_hold_intervals_and_old_points_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap();
        let res = c.resource("t", ResourceKind::User, "alice").unwrap().id;
        c.stage_put(res, &row("a", "mail:inbox", "mail/Inbox/a.eml", "1"))
            .unwrap();
        c.stage_put(res, &row("b", "mail:inbox", "mail/Inbox/b.eml", "1"))
            .unwrap();
        c.stage_token(res, "mail:inbox", Some("link1")).unwrap();
        assert_eq!(
            c.token(res, "mail:inbox").unwrap().as_deref(),
            Some("link1")
        );
        let r1 = c.commit(res, "snap1", Utc::now()).unwrap();
        assert_eq!((r1.seq, r1.added, r1.changed, r1.removed), (1, 2, 0, 0));

        // Point 2: a changes, b is deleted, c arrives.
        c.stage_put(res, &row("a", "mail:inbox", "mail/Inbox/a.eml", "2"))
            .unwrap();
        assert!(c.stage_remove(res, "mail:inbox", "b").unwrap());
        c.stage_put(res, &row("c", "mail:inbox", "mail/Inbox/c.eml", "1"))
            .unwrap();
        assert_eq!(
            next(&c, res).into_iter().map(|x| x.0).collect::<Vec<_>>(),
            ["a", "c"]
        );
        // Not committed yet: the link still read is the staged one only after staging.
        assert_eq!(
            c.token(res, "mail:inbox").unwrap().as_deref(),
            Some("link1")
        );
        c.stage_token(res, "mail:inbox", Some("link2")).unwrap();
        let r2 = c.commit(res, "snap2", Utc::now()).unwrap();
        assert_eq!((r2.seq, r2.added, r2.changed, r2.removed), (2, 1, 1, 1));
        assert_eq!(at(&c, res, 1), ["a@1", "b@1"]);
        assert_eq!(at(&c, res, 2), ["a@2", "c@1"]);
        assert_eq!(
            c.token(res, "mail:inbox").unwrap().as_deref(),
            Some("link2")
        );
        assert_eq!(c.staged(res).unwrap(), 0);
        let hits = c
            .find(&Query {
                text: Some("subject of B".into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 1);
        // Case folds in every script, not in ASCII only.
        c.stage_put(
            res,
            &ItemRow {
                subject: Some("Отчёт за квартал".into()),
                ..row("q", "mail:inbox", "mail/Inbox/q.eml", "1")
            },
        )
        .unwrap();
        c.commit(res, "snap3", Utc::now()).unwrap();
        for typed in ["отчёт", "ОТЧЁТ ЗА"] {
            let found = c
                .find(&Query {
                    text: Some(typed.into()),
                    ..Query::default()
                })
                .unwrap();
            assert_eq!(found.len(), 1, "{typed}");
        }
        assert_eq!(hits[0].first.snapshot, "snap1");
        assert_eq!(hits[0].last.as_ref().map(|p| p.seq), Some(1));
    }

    #[test]
    fn changes_between_points_pair_the_versions_of_each_item() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap();
        let res = c.resource("t", ResourceKind::User, "alice").unwrap().id;
        for i in ["a", "b", "c", "d"] {
            c.stage_put(
                res,
                &row(i, "mail:inbox", &format!("mail/Inbox/{i}.eml"), "1"),
            )
            .unwrap();
        }
        c.commit(res, "snap1", Utc::now()).unwrap();
        // Point 2: a changes, b goes, e arrives; point 3: d moves, e goes, f arrives.
        c.stage_put(res, &row("a", "mail:inbox", "mail/Inbox/a.eml", "2"))
            .unwrap();
        c.stage_remove(res, "mail:inbox", "b").unwrap();
        c.stage_put(res, &row("e", "mail:inbox", "mail/Inbox/e.eml", "1"))
            .unwrap();
        c.commit(res, "snap2", Utc::now()).unwrap();
        c.stage_put(res, &row("d", "mail:old", "mail/Old/d.eml", "2"))
            .unwrap();
        c.stage_remove(res, "mail:inbox", "e").unwrap();
        c.stage_put(res, &row("f", "mail:inbox", "mail/Inbox/f.eml", "1"))
            .unwrap();
        c.commit(res, "snap3", Utc::now()).unwrap();
        let diff = |from, to| {
            let mut out = Vec::new();
            c.changes(res, from, to, &mut |ch| {
                let item = ch.old.as_ref().or(ch.new.as_ref()).unwrap().item.clone();
                out.push(format!(
                    "{item}:{}>{}",
                    ch.old.map(|o| o.change).unwrap_or_default(),
                    ch.new.map(|n| n.change).unwrap_or_default()
                ));
                true
            })
            .unwrap();
            out
        };
        assert_eq!(diff(1, 2), ["a:1>2", "b:1>", "e:>1"]);
        assert_eq!(diff(2, 3), ["d:1>2", "e:1>", "f:>1"]);
        // Across two runs: e came and went, and is no change at all.
        assert_eq!(diff(1, 3), ["a:1>2", "b:1>", "d:1>2", "f:>1"]);
        let counts = c.count_at(res, 2).unwrap();
        assert_eq!(counts.get("message"), Some(&4));
        let mut versions = Vec::new();
        c.for_each_version(res, &mut |r, first, last| {
            versions.push(format!("{}{first}-{}", r.item, last.unwrap_or(0)));
            true
        })
        .unwrap();
        assert_eq!(
            versions,
            [
                "a1-1", "a2-0", "b1-1", "c1-0", "d1-2", "d3-0", "e2-2", "f3-0"
            ]
        );
        let held = c
            .snapshots_matching(&Query {
                text: Some("subject of e".into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(held, ["snap2"]);
        assert_eq!(c.remove_versions(res, &["a".into()]).unwrap(), 2);
        assert_eq!(at(&c, res, 1), ["b@1", "c@1", "d@1"]);
    }

    #[test]
    fn forgotten_points_leave_with_the_versions_only_they_held() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let res = c.resource("t", ResourceKind::User, "erin").unwrap().id;
        c.stage_put(res, &row("a", "s", "mail/a.eml", "1")).unwrap();
        c.stage_put(res, &row("b", "s", "mail/b.eml", "1")).unwrap();
        c.commit(res, "s1", Utc::now()).unwrap();
        c.stage_put(res, &row("a", "s", "mail/a.eml", "2")).unwrap();
        c.commit(res, "s2", Utc::now()).unwrap();
        c.stage_remove(res, "s", "b").unwrap();
        c.commit(res, "s3", Utc::now()).unwrap();
        // b@1 lives in 1..=2, a@1 in 1..=1: forgetting point 1 keeps b, drops a@1.
        assert_eq!(c.forget_snapshots(&["s1".into()]).unwrap(), 1);
        let seqs: Vec<i64> = c.points(res).unwrap().iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(at(&c, res, 2), ["a@2", "b@1"]);
        let hits = c
            .find(&Query {
                text: Some("subject of a".into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 1, "a@1 is gone, a@2 stays");
        assert_eq!(c.forget_snapshots(&["s2".into()]).unwrap(), 1);
        assert_eq!(at(&c, res, 3), ["a@2"]);
        let all = c
            .find(&Query {
                kind: Some("message".into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(all.len(), 1, "b is in no point any more");
    }

    #[test]
    fn a_move_reported_by_the_old_folder_does_not_remove_the_item() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let res = c.resource("t", ResourceKind::User, "bob").unwrap().id;
        c.stage_put(res, &row("m", "mail:a", "mail/A/m.eml", "1"))
            .unwrap();
        c.commit(res, "s1", Utc::now()).unwrap();
        // The new folder's delta comes first, then the old folder reports a removal.
        c.stage_put(res, &row("m", "mail:b", "mail/B/m.eml", "2"))
            .unwrap();
        assert!(!c.stage_remove(res, "mail:a", "m").unwrap());
        assert_eq!(
            next(&c, res),
            [("m".to_string(), "mail/B/m.eml".to_string())]
        );
        // In the other order the removal is taken back by the arrival.
        c.commit(res, "s2", Utc::now()).unwrap();
        assert!(c.stage_remove(res, "mail:b", "m").unwrap());
        c.stage_put(res, &row("m", "mail:a", "mail/A/m.eml", "3"))
            .unwrap();
        assert_eq!(
            next(&c, res),
            [("m".to_string(), "mail/A/m.eml".to_string())]
        );
    }

    #[test]
    fn a_resync_removes_what_the_fresh_enumeration_does_not_see_again() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let res = c.resource("t", ResourceKind::User, "carol").unwrap().id;
        for i in ["x", "y", "z"] {
            c.stage_put(res, &row(i, "drive:d", &format!("onedrive/{i}"), "1"))
                .unwrap();
        }
        c.stage_put(res, &row("o", "drive:other", "onedrive2/o", "1"))
            .unwrap();
        c.stage_token(res, "drive:d", Some("old")).unwrap();
        c.commit(res, "s1", Utc::now()).unwrap();
        assert_eq!(c.stage_resync(res, "drive:d").unwrap(), 3);
        c.stage_token(res, "drive:d", None).unwrap();
        assert_eq!(c.token(res, "drive:d").unwrap(), None);
        // Seen again unchanged: x (unstaged); changed: y; z is gone.
        c.unstage(res, "x").unwrap();
        c.stage_put(res, &row("y", "drive:d", "onedrive/y", "2"))
            .unwrap();
        let r = c.commit(res, "s2", Utc::now()).unwrap();
        assert_eq!((r.added, r.changed, r.removed), (0, 1, 1));
        // Component-wise order: `onedrive/…` before `onedrive2/…`.
        assert_eq!(at(&c, res, 2), ["x@1", "y@2", "o@1"]);
        assert_eq!(c.token(res, "drive:d").unwrap(), None);
        assert_eq!(c.scopes(res).unwrap(), ["drive:d", "drive:other"]);
    }

    #[test]
    fn unstage_all_leaves_the_committed_state() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let res = c.resource("t", ResourceKind::User, "erin").unwrap().id;
        c.stage_put(res, &row("a", "mail:i", "mail/I/a.eml", "1"))
            .unwrap();
        c.commit(res, "s1", Utc::now()).unwrap();
        c.stage_put(res, &row("b", "mail:i", "mail/I/b.eml", "1"))
            .unwrap();
        assert!(c.stage_remove(res, "mail:i", "a").unwrap());
        assert_eq!(c.unstage_all(res).unwrap(), 2);
        assert_eq!(c.staged(res).unwrap(), 0);
        assert_eq!(
            next(&c, res),
            [("a".to_string(), "mail/I/a.eml".to_string())]
        );
    }

    #[test]
    fn staged_changes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.db");
        {
            let c = SqliteCatalog::open(&p).unwrap();
            let res = c.resource("t", ResourceKind::User, "dave").unwrap().id;
            let mut r = row("a", "mail:i", "mail/I/a.eml", "1");
            r.spool = Some("/spool/a".into());
            c.stage_put(res, &r).unwrap();
            c.stage_token(res, "mail:i", Some("l")).unwrap();
        }
        let c = SqliteCatalog::open(&p).unwrap();
        let res = c.resource("t", ResourceKind::User, "dave").unwrap().id;
        let l = c.lookup(res, "a").unwrap();
        assert!(l.current.is_none());
        let (staged, removed) = l.staged.unwrap();
        assert!(!removed);
        assert_eq!(staged.spool.as_deref(), Some("/spool/a"));
        assert_eq!(c.token(res, "mail:i").unwrap().as_deref(), Some("l"));
    }

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
