//! One process per database until several nodes are built: a second `parley` on the same SQLite
//! file or PostgreSQL database refuses to start and says why; after the first is gone (even by
//! kill -9) a new one starts.

use parley_testkit::ServerProcess;
use std::path::Path;
use std::process::Output;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_parley"))
}

/// Runs a second `parley serve` to its exit (it must not get as far as listening).
async fn second_process(data_dir: &Path, env: &[(&str, &str)]) -> Output {
    let run = tokio::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("the second process exits").unwrap()
}

fn assert_refused(out: &Output, names: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second process must not run: {stderr}");
    assert!(stderr.contains("another Parley process"), "it says why: {stderr}");
    assert!(stderr.contains(names), "it names what is taken ({names}): {stderr}");
    assert!(!stderr.contains("parley is listening"), "{stderr}");
}

#[tokio::test]
async fn a_second_process_on_the_same_sqlite_file_refuses_to_start_and_names_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = ServerProcess::start(bin(), dir.path()).await.unwrap();
    let out = second_process(dir.path(), &[]).await;
    assert_refused(&out, &format!("(pid {})", first.pid().unwrap()));
    // The first one is untouched and, once killed, leaves the file free.
    let health = reqwest::get(format!("{}/readyz", first.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    first.kill9().await.unwrap();
    let again = ServerProcess::start(bin(), dir.path()).await.unwrap();
    again.terminate().await.unwrap();
}

#[tokio::test]
async fn a_second_process_on_the_same_postgres_database_refuses_to_start() {
    let Some(parley_testkit::Db::Postgres(base)) = crate::postgres() else { return };
    let url = parley_store::testing::fresh_postgres_url(&base).await;
    let env = [("PARLEY_DATABASE_URL", url.as_str())];
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = ServerProcess::start_with_env(bin(), one.path(), &env).await.unwrap();
    let out = second_process(two.path(), &env).await;
    assert_refused(&out, "PostgreSQL database");
    first.terminate().await.unwrap();
    // A clean stop frees it at once.
    let again = ServerProcess::start_with_env(bin(), two.path(), &env).await.unwrap();
    again.terminate().await.unwrap();
    parley_store::testing::drop_postgres_db(&base, &url).await;
}
