//! What only the PostgreSQL catalog has: URLs, schemas and their migrations, secrets.

use crate::stores::{drop_schema, fresh_schema, pg_base_url, pg_open, with_schema};
use cairn_catalog::{Catalog, PgCatalog, ResourceKind, open_url};

/// Drops its schema at the end of the test, whatever happens.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        drop_schema(&self.0);
    }
}

/// `postgres://user@…` with `:password` after the user.
fn with_password(base: &str, password: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

#[test]
fn a_password_never_shows_in_errors_or_debug() {
    // Nothing listens on port 1: the connection fails.
    let url = "postgres://cairn:Pa55-word-xyz@127.0.0.1:1/test?schema=w1";
    let e = PgCatalog::open(url).unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("Pa55-word-xyz"), "{shown}");
    assert!(
        shown.contains("postgres://cairn:***@127.0.0.1:1/test"),
        "{shown}"
    );
    assert!(e.hint().unwrap().contains("PostgreSQL"));

    // Trust authentication ignores the password: the catalog opens, and hides it too.
    let schema = Schema(fresh_schema("password"));
    let url = with_schema(&with_password(&pg_base_url(), "Pa55-word-xyz"), &schema.0);
    let c = pg_open(&url);
    let shown = format!("{c:?} {}", c.url());
    assert!(!shown.contains("Pa55-word-xyz"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
    // An error from the server names the redacted URL.
    let e = PgCatalog::open(&url.replace("schema=", "schema=9bad"))
        .unwrap_err()
        .to_string();
    assert!(!e.contains("Pa55-word-xyz") && e.contains("***"), "{e}");
    // What the server says comes through, and says what is wrong.
    let (base, _) = url.split_once('?').unwrap();
    let (base, _) = base.rsplit_once('/').unwrap();
    let e = PgCatalog::open(&format!("{base}/no_such_db_xyz"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no_such_db_xyz") && e.contains("does not exist"),
        "{e}"
    );
    assert!(!e.contains("Pa55-word-xyz"), "{e}");
}

#[test]
fn opening_migrates_once_whoever_comes_first() {
    let schema = Schema(fresh_schema("migrate"));
    let url = with_schema(&pg_base_url(), &schema.0);
    // Four workers open a new schema at once: one creates it, the others find it.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                pg_open(&url);
            });
        }
    });
    let c = pg_open(&url);
    assert_eq!(c.schema(), schema.0);
    let mut admin = postgres::Client::connect(&pg_base_url(), postgres::NoTls).unwrap();
    let versions: Vec<i32> = admin
        .query(
            &format!("SELECT version FROM \"{}\".schema_version", schema.0),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1]);
    // A schema written by a newer cairn is refused, not misread.
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_version (version) VALUES (99)",
                schema.0
            ),
            &[],
        )
        .unwrap();
    let e = PgCatalog::open(&url).unwrap_err().to_string();
    assert!(e.contains("newer"), "{e}");
}

#[test]
fn the_default_schema_is_cairn_and_schemas_are_apart() {
    let one = Schema(fresh_schema("apart_one"));
    let two = Schema(fresh_schema("apart_two"));
    let a = pg_open(&with_schema(&pg_base_url(), &one.0));
    let b = pg_open(&with_schema(&pg_base_url(), &two.0));
    a.resource("t", ResourceKind::User, "ann").unwrap();
    assert_eq!(b.resources().unwrap().len(), 0);
    let e = PgCatalog::open(&with_schema(&pg_base_url(), "no;such"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a plain name"), "{e}");
    // No `schema=`: `cairn` (checked without opening, to leave that schema alone).
    let e = PgCatalog::open("postgres://u@127.0.0.1:1/db").unwrap_err();
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
}

#[test]
fn open_url_picks_the_store_by_the_form_of_its_argument() {
    let schema = Schema(fresh_schema("open_url"));
    let c = open_url(&with_schema(&pg_base_url(), &schema.0)).unwrap();
    c.resource("t", ResourceKind::User, "ann").unwrap();
    assert_eq!(c.resources().unwrap().len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/catalog.db");
    let c = open_url(path.to_str().unwrap()).unwrap();
    c.resource("t", ResourceKind::User, "ann").unwrap();
    assert!(path.exists());
}
