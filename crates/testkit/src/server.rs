//! Starting a real Parley server for a test: in-process on port 0 with a temp store and a manual
//! clock, or as a child process of the `parley` binary (for kill -9 and restart tests).

use anyhow::Context;
use parley_server::app::{App, Overrides};
use parley_server::clock::ManualClock;
use parley_server::config::{Layer, Secret};
use parley_server::state::AppState;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// The platform admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-platform-admin-token";

/// Which database a test runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in the server's temp folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server at this base URL.
    Postgres(String),
}

impl Db {
    /// SQLite, plus PostgreSQL when `PARLEY_TEST_DATABASE_URL` is set.
    #[must_use]
    pub fn all() -> Vec<Self> {
        let mut v = vec![Self::Sqlite];
        if let Some(url) = parley_store::testing::postgres_test_url() {
            v.push(Self::Postgres(url));
        }
        v
    }

    /// The base URL of the PostgreSQL server, if this is PostgreSQL.
    fn postgres_base(&self) -> Option<&str> {
        match self {
            Self::Sqlite => None,
            Self::Postgres(base) => Some(base),
        }
    }

    async fn url(&self, dir: &Path) -> String {
        match self {
            Self::Sqlite => format!("sqlite://{}", dir.join("parley.db").display()),
            Self::Postgres(base) => parley_store::testing::fresh_postgres_url(base).await,
        }
    }
}

/// A server running inside the test process.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub state: AppState,
    pub clock: ManualClock,
    pub db: Db,
    database_url: String,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The runtime of a server that [`Self::crash`] can stop dead (`None`: the test's own).
    runtime: Option<tokio::runtime::Runtime>,
    _dir: Arc<TempDir>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A runtime may not be dropped where the test's runtime could block on it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("base", &self.base).field("db", &self.db).finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on SQLite.
    pub async fn sqlite() -> Self {
        Self::spawn(Db::Sqlite).await
    }

    /// Starts a server on `db` with a manual clock at 2026-01-05 09:00 UTC.
    ///
    /// # Panics
    /// If the server cannot start (a test cannot go on without it).
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    /// Like [`Self::spawn`], with configuration changes on top of the test defaults.
    ///
    /// # Panics
    /// If the server cannot start.
    pub async fn spawn_with(db: Db, configure: impl FnOnce(&mut Layer)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = db.url(dir.path()).await;
        let clock = ManualClock::new(time::macros::datetime!(2026-01-05 09:00 UTC));
        Self::start(db, dir, database_url, clock, None, configure).await
    }

    /// A server on a runtime of its own, so [`Self::crash`] can stop it as kill -9 would.
    ///
    /// # Panics
    /// If the server cannot start.
    pub async fn crashable(db: Db) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = db.url(dir.path()).await;
        let clock = ManualClock::new(time::macros::datetime!(2026-01-05 09:00 UTC));
        Self::start(db, dir, database_url, clock, Some(own_runtime()), |_| {}).await
    }

    /// Stops the server dead (every task dropped where it stands: nothing flushed, no socket
    /// told, as kill -9 would) and starts a new one on the same database and clock, on a new
    /// port. Only what was committed survives.
    ///
    /// # Panics
    /// If the server was not started with [`Self::crashable`], or cannot start again.
    pub async fn crash(mut self) -> Self {
        let runtime = self.runtime.take().expect("a crashable server");
        let (db, clock, database_url, dir) =
            (self.db.clone(), self.clock.clone(), self.database_url.clone(), Arc::clone(&self._dir));
        drop(self);
        tokio::task::spawn_blocking(move || runtime.shutdown_timeout(std::time::Duration::from_secs(5)))
            .await
            .expect("runtime stopped");
        Self::start(db, dir, database_url, clock, Some(own_runtime()), |_| {}).await
    }

    async fn start(
        db: Db,
        dir: Arc<TempDir>,
        database_url: String,
        clock: ManualClock,
        runtime: Option<tokio::runtime::Runtime>,
        configure: impl FnOnce(&mut Layer),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut layer = Layer {
            listen: Some(addr),
            data_dir: Some(dir.path().to_path_buf()),
            database_url: Some(database_url.clone()),
            public_url: Some(base.clone()),
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            shutdown_grace_secs: Some(5),
            ..Layer::default()
        };
        configure(&mut layer);
        let config = layer.finish().expect("config");
        let overrides = Overrides { clock: Some(Arc::new(clock.clone())), listener: Some(listener) };
        let build = async move {
            let app = App::build(config, overrides).await.expect("server starts");
            let state = app.state.clone();
            (state, tokio::spawn(app.run()))
        };
        let (state, task) = match &runtime {
            Some(rt) => rt.spawn(build).await.expect("server starts"),
            None => build.await,
        };
        Self { base, state, clock, db, database_url, task, runtime, _dir: dir }
    }

    /// `ws://127.0.0.1:PORT`
    #[must_use]
    pub fn ws_base(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }

    /// Begins a graceful shutdown and waits until the server has stopped.
    ///
    /// # Errors
    /// If the server reported an error while stopping.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.state.shutdown.cancel();
        (&mut self.task).await.context("server task")??;
        if let Some(rt) = self.runtime.take() {
            tokio::task::spawn_blocking(move || rt.shutdown_timeout(std::time::Duration::from_secs(5))).await?;
        }
        if let Some(base) = self.db.postgres_base() {
            parley_store::testing::drop_postgres_db(base, &self.database_url).await;
        }
        Ok(())
    }
}

/// A `parley serve` child process.
#[derive(Debug)]
pub struct ServerProcess {
    pub base: String,
    child: Child,
}

impl ServerProcess {
    /// Starts `bin serve` on a free port with its data in `data_dir`, and waits (by reading its
    /// log, not by sleeping) until it is listening.
    ///
    /// # Errors
    /// If the process fails to start or exits before listening.
    pub async fn start(bin: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_env(bin, data_dir, &[]).await
    }

    /// [`Self::start`] with extra environment variables (configuration such as
    /// `PARLEY_TYPING_INTERVAL_MS`).
    ///
    /// # Errors
    /// If the process fails to start or exits before listening.
    pub async fn start_with_env(bin: &Path, data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Ok(Self::start_command(bin, "serve", data_dir, env).await?.0)
    }

    /// Starts `bin demo` like [`Self::start`] and returns the banner it printed.
    ///
    /// # Errors
    /// If the process fails to start or exits before listening.
    pub async fn start_demo(bin: &Path, data_dir: &Path) -> anyhow::Result<(Self, String)> {
        Self::start_command(bin, "demo", data_dir, &[]).await
    }

    async fn start_command(
        bin: &Path,
        command: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Self, String)> {
        let mut child = Command::new(bin)
            .arg(command)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("PARLEY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut out_lines = BufReader::new(stdout).lines();
        let mut banner = String::new();
        if command == "demo" {
            // The banner ends with the snippet line; it is printed before serving starts.
            while let Some(line) = out_lines.next_line().await? {
                banner.push_str(&line);
                banner.push('\n');
                if line.trim_start().starts_with("Snippet:") {
                    break;
                }
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = out_lines.next_line().await {} });
        let stderr = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next_line().await? else { anyhow::bail!("parley exited before listening") };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if v["message"] == "parley is listening" {
                break v["addr"].as_str().context("addr field")?.to_owned();
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((Self { base: format!("http://{addr}"), child }, banner))
    }

    /// `ws://…`
    #[must_use]
    pub fn ws_base(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }

    /// The process id (for reading its memory from `/proc`).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    ///
    /// # Errors
    /// If the process cannot be killed.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit.
    ///
    /// # Errors
    /// If the signal cannot be sent or the exit status is not success.
    pub async fn terminate(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("pid")?;
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let exit = self.child.wait().await?;
        anyhow::ensure!(exit.success(), "parley exited with {exit}");
        Ok(())
    }
}

fn own_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// Path of a workspace file, for tests that need one.
#[must_use]
pub fn workspace_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}
