//! The stores the contract runs against, each fresh for one test. PostgreSQL is expected at
//! `CAIRN_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); if it is not
//! there the PostgreSQL tests fail, they do not skip: CI has one.

use cairn_catalog::{Catalog, PgCatalog, SqliteCatalog};
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

/// A catalog store made for one test.
pub trait Store {
    fn catalog(&self) -> &dyn Catalog;
    /// The same catalog opened again, as after a restart.
    fn reopen(&self) -> Arc<dyn Catalog>;
    /// The catalog as another worker sees it: for PostgreSQL a catalog opened anew (its
    /// own connections), for SQLite the same one (one process owns an SQLite file).
    fn worker(&self) -> Arc<dyn Catalog>;
}

pub struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
    catalog: Arc<dyn Catalog>,
}

impl Sqlite {
    pub fn new() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let catalog = Arc::new(SqliteCatalog::open(&path).unwrap());
        Sqlite {
            _dir: dir,
            path,
            catalog,
        }
    }
}

impl Store for Sqlite {
    fn catalog(&self) -> &dyn Catalog {
        &*self.catalog
    }
    fn reopen(&self) -> Arc<dyn Catalog> {
        Arc::new(SqliteCatalog::open(&self.path).unwrap())
    }
    fn worker(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }
}

pub fn pg_base_url() -> String {
    std::env::var("CAIRN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// `base` with `?schema=` (or `&schema=`) appended.
pub fn with_schema(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema={schema}")
}

/// A schema name for `test` no other test run uses.
pub fn fresh_schema(test: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(test.as_bytes());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    let name: String = test.chars().take(40).collect();
    format!("t_{name}_{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Opens `url`, failing the test with what to do if PostgreSQL is not there.
pub fn pg_open(url: &str) -> PgCatalog {
    PgCatalog::open(url).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL catalog tests need a PostgreSQL server: {e}\n\
             hint: start one at {} (trust auth, database `test`) or point CAIRN_TEST_PG_URL at one",
            pg_base_url()
        )
    })
}

/// Drops `schema` and everything in it (the end of a test).
pub fn drop_schema(schema: &str) {
    let base = pg_base_url();
    match postgres::Client::connect(&base, postgres::NoTls) {
        Ok(mut c) => {
            if let Err(e) = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            {
                eprintln!("dropping test schema {schema}: {e}");
            }
        }
        Err(e) => eprintln!("dropping test schema {schema}: {e}"),
    }
}

/// A PostgreSQL catalog in a schema of its own, dropped at the end of the test.
pub struct Pg {
    schema: String,
    url: String,
    catalog: Option<Arc<dyn Catalog>>,
}

impl Pg {
    pub fn new(test: &str) -> Pg {
        let schema = fresh_schema(test);
        let url = with_schema(&pg_base_url(), &schema);
        let catalog: Arc<dyn Catalog> = Arc::new(pg_open(&url));
        Pg {
            schema,
            url,
            catalog: Some(catalog),
        }
    }
}

impl Store for Pg {
    fn catalog(&self) -> &dyn Catalog {
        &**self.catalog.as_ref().unwrap()
    }
    fn reopen(&self) -> Arc<dyn Catalog> {
        Arc::new(pg_open(&self.url))
    }
    fn worker(&self) -> Arc<dyn Catalog> {
        self.reopen()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Its connections close first, so nothing holds the schema.
        self.catalog = None;
        drop_schema(&self.schema);
    }
}
