//! Test support: migrated stores for tests of this crate and of the crates above it, so that
//! every test suite gets the same store set-up (and the PostgreSQL one only when asked for).

use crate::Store;
use std::path::Path;
use std::sync::Arc;

/// Environment variable naming a PostgreSQL server to test against, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. Tests that need it skip without it.
pub const POSTGRES_URL_ENV: &str = "PARLEY_TEST_DATABASE_URL";

/// The URL of the SQLite database file `temp_sqlite` uses inside `dir`, for tests that open a
/// second store on the same file (a second node).
#[must_use]
pub fn sqlite_url_in(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("parley.db").display())
}

/// A migrated SQLite store in a fresh temporary directory, removed when the `TempDir` drops.
///
/// # Panics
/// When the directory or the database cannot be created: a test cannot go on without it.
pub async fn temp_sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let store = open_migrated(&sqlite_url_in(dir.path())).await;
    (store, dir)
}

/// The PostgreSQL server to test against, if [`POSTGRES_URL_ENV`] names one.
#[must_use]
pub fn postgres_test_url() -> Option<String> {
    std::env::var(POSTGRES_URL_ENV).ok().filter(|url| !url.trim().is_empty())
}

/// Creates a uniquely named empty database on the server `base` points at and returns its URL,
/// so tests running in parallel never see each other's rows.
///
/// # Panics
/// When the server cannot be reached or refuses to create the database.
pub async fn fresh_postgres_url(base: &str) -> String {
    let name = format!("parley_t_{}", uuid::Uuid::new_v4().simple());
    admin(base, &format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    with_database(base, &name)
}

/// Drops a database made by [`fresh_postgres_url`], closing its remaining connections.
/// Best effort: a failure only leaks a test database, so it is ignored.
pub async fn drop_postgres_db(base: &str, url: &str) {
    let Some(name) = database_name(url).filter(|n| n.starts_with("parley_t_")) else { return };
    let _ = admin(base, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
}

/// A migrated PostgreSQL store in a fresh database on the server `base` points at. The database
/// is left behind; call [`drop_postgres_db`] with [`fresh_postgres_url`] to clean up instead.
///
/// # Panics
/// When the server cannot be reached or the database cannot be created or migrated.
pub async fn temp_postgres(base: &str) -> Arc<dyn Store> {
    open_migrated(&fresh_postgres_url(base).await).await
}

/// Connects to `url` and migrates.
///
/// # Panics
/// When the store cannot be opened or migrated.
pub async fn open_migrated(url: &str) -> Arc<dyn Store> {
    let store = crate::connect(url).await.unwrap_or_else(|e| panic!("cannot open the test store: {e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("cannot migrate the test store: {e}"));
    store
}

async fn admin(base: &str, statement: &str) -> Result<(), sqlx::Error> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(base).await?;
    conn.execute(statement).await?;
    conn.close().await
}

/// `url` with its database (path) replaced by `name`, keeping user, host and query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (rest, query) = url.split_once('?').map_or((url, None), |(r, q)| (r, Some(q)));
    let authority_start = rest.find("://").map_or(0, |i| i + 3);
    let base = match rest[authority_start..].find('/') {
        Some(slash) => &rest[..authority_start + slash],
        None => rest,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn database_name(url: &str) -> Option<&str> {
    let rest = url.split('?').next()?;
    let after_scheme = &rest[rest.find("://")? + 3..];
    after_scheme.split_once('/').map(|(_, db)| db).filter(|db| !db.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_database_name_replaces_only_the_path() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(database_name("postgres://u@h:5432/parley_t_1?a=b"), Some("parley_t_1"));
        assert_eq!(database_name("postgres://h"), None);
    }
}
