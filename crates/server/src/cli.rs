//! The command line: `parley serve | demo | migrate`, with configuration layered from defaults,
//! a TOML file, `PARLEY_*` variables and flags.

use crate::app::{App, Overrides, cancel_on_signal};
use crate::config::{Config, Layer, LogFormat, Secret};
use crate::telemetry;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Parley: a contact-center chat server.
#[derive(Debug, Parser)]
#[command(name = "parley", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub flags: Flags,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API, WebSockets and pages.
    Serve,
    /// Serve with a demo tenant (created if missing) and print the URLs to open.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
}

/// Settings given on the command line (they override file and environment).
#[derive(Debug, clap::Args)]
pub struct Flags {
    /// TOML configuration file (also PARLEY_CONFIG; `parley.toml` in the working folder is read when present).
    #[arg(long, global = true, env = "PARLEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite database.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://…
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// URL visitors and agents use to reach this server.
    #[arg(long, global = true)]
    pub public_url: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl Flags {
    fn layer(&self) -> Layer {
        Layer {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            public_url: self.public_url.clone(),
            log_format: self.log_format,
            ..Layer::default()
        }
    }
}

/// Resolves the configuration layers.
///
/// # Errors
/// An unreadable file or a bad value, naming it.
pub fn load_config(flags: &Flags, env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Config> {
    let file = match &flags.config {
        Some(p) => Layer::from_file(p)?,
        None if std::path::Path::new("parley.toml").exists() => Layer::from_file(std::path::Path::new("parley.toml"))?,
        None => Layer::default(),
    };
    file.merge(Layer::from_env(env)?).merge(flags.layer()).finish()
}

/// Entry point of the binary.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli.flags, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parley: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    if !matches!(cli.command, Command::Migrate) {
        raise_open_file_limit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parley: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "parley failed");
            eprintln!("parley: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit of open files to the hard limit, logging both; a failure is only a
/// warning (the server still runs, with fewer sockets).
// Why: every widget, agent workspace and database connection holds a descriptor, and the usual
// soft limit (1024) would stop accepts at about a thousand widgets while the hard limit, which
// an unprivileged process may raise its soft limit to, is far higher.
pub fn raise_open_file_limit() {
    let before = rlimit::Resource::NOFILE.get();
    // Up to the hard limit (on macOS also capped at kern.maxfilesperproc, as setrlimit requires).
    match (before, rlimit::increase_nofile_limit(rlimit::INFINITY)) {
        (Ok((soft, hard)), Ok(now)) => {
            tracing::info!(soft_before = soft, hard, soft_now = now, "open-file limit");
        }
        (Ok((soft, hard)), Err(e)) => {
            tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit");
        }
        (Err(e), _) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let store = parley_store::connect(&config.database_url).await?;
            store.migrate().await?;
            store.close().await;
            println!("parley: migrations applied to {}", redact_url(&config.database_url));
            Ok(())
        }
        Command::Serve => {
            let app = App::build(config, Overrides::default()).await?;
            cancel_on_signal(app.state.shutdown.clone());
            app.run().await
        }
        Command::Demo => {
            if config.admin_token.expose().is_empty() {
                config.admin_token = Secret::new(crate::auth::random_hex(16));
            }
            let app = App::build(config, Overrides::default()).await?;
            let info = crate::demo::seed(&app.state)
                .await
                .map_err(|e| anyhow::anyhow!("seeding the demo tenant: {}", e.detail))?;
            println!("{}", info.banner(&app.state.config));
            cancel_on_signal(app.state.shutdown.clone());
            app.run().await
        }
    }
}

/// Hides a password in a database URL for printing.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://data/parley.db"), "sqlite://data/parley.db");
    }

    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        let (mut soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        // Lowering the soft limit is always allowed, so the raise is tried even where the two
        // are equal already; one below the hard limit leaves the other tests of this process
        // the descriptors they had.
        if soft == hard && hard > 1024 && hard != rlimit::INFINITY {
            soft = hard - 1;
            rlimit::Resource::NOFILE.set(soft, hard).unwrap();
        }
        raise_open_file_limit();
        let (now, hard_now) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(hard_now, hard, "the hard limit stays");
        if cfg!(target_os = "linux") {
            assert_eq!(now, hard, "raised from {soft}");
        } else {
            // macOS caps the soft limit at kern.maxfilesperproc, below an unlimited hard one.
            assert!(now >= soft, "{now} < {soft}");
        }
    }

    #[test]
    fn flags_override_environment() {
        let cli = Cli::parse_from(["parley", "serve", "--listen", "127.0.0.1:9"]);
        let c = load_config(&cli.flags, [("PARLEY_LISTEN".to_owned(), "127.0.0.1:8".to_owned())]).unwrap();
        assert_eq!(c.listen.port(), 9);
    }
}
