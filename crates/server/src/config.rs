//! Configuration: built-in defaults, then an optional TOML file, then `PARLEY_*` environment
//! variables, then command-line flags, each layer overriding the one before. The whole
//! configuration is checked once at start-up, so a bad value fails with its name.

use crate::outbound::HostPattern;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is compared or sent.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(empty)" } else { "Secret([redacted])" })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Largest file a chat accepts unless configured otherwise (10 MiB).
pub const DEFAULT_ATTACHMENT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// The configurable limit's ceiling (uploads are held in memory while checked).
pub const MAX_ATTACHMENT_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Folder for the SQLite database and other local files.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file in `data_dir`.
    pub database_url: String,
    /// URL visitors and agents use to reach this server (links, widget snippet, cookies).
    pub public_url: String,
    pub log_format: LogFormat,
    /// Bootstrap token of the platform administrator (creates tenants). Empty disables it.
    pub admin_token: Secret,
    /// How long a visitor token stays valid.
    pub visitor_token_ttl_secs: u64,
    /// How long an agent's sign-in lasts.
    pub agent_session_ttl_secs: u64,
    /// Longest a graceful shutdown waits for in-flight work.
    pub shutdown_grace_secs: u64,
    /// Most entries written in one conversation-log transaction.
    pub log_batch: usize,
    /// Shortest gap between two typing signals a socket passes on (per chat); more are dropped.
    pub typing_interval_ms: u64,
    /// Hosts workflow HTTP Request activities may call; empty refuses every call.
    pub http_allow_hosts: Vec<HostPattern>,
    /// Whether those calls may reach loopback, private, link-local and other internal addresses.
    pub http_allow_private: bool,
    /// Where files sent in chats are kept (one file per attachment id, per tenant).
    pub attachments_dir: PathBuf,
    /// Largest file a chat accepts, in bytes.
    pub attachment_max_bytes: u64,
}

/// The layers below the command line: what a TOML file or the environment may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub admin_token: Option<Secret>,
    pub visitor_token_ttl_secs: Option<u64>,
    pub agent_session_ttl_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
    pub log_batch: Option<usize>,
    pub typing_interval_ms: Option<u64>,
    pub http_allow_hosts: Option<Vec<String>>,
    pub http_allow_private: Option<bool>,
    pub attachments_dir: Option<PathBuf>,
    pub attachment_max_bytes: Option<u64>,
}

impl Layer {
    /// Fields set in `over` replace those in `self`.
    #[must_use]
    pub fn merge(self, over: Self) -> Self {
        Self {
            listen: over.listen.or(self.listen),
            data_dir: over.data_dir.or(self.data_dir),
            database_url: over.database_url.or(self.database_url),
            public_url: over.public_url.or(self.public_url),
            log_format: over.log_format.or(self.log_format),
            admin_token: over.admin_token.or(self.admin_token),
            visitor_token_ttl_secs: over.visitor_token_ttl_secs.or(self.visitor_token_ttl_secs),
            agent_session_ttl_secs: over.agent_session_ttl_secs.or(self.agent_session_ttl_secs),
            shutdown_grace_secs: over.shutdown_grace_secs.or(self.shutdown_grace_secs),
            log_batch: over.log_batch.or(self.log_batch),
            typing_interval_ms: over.typing_interval_ms.or(self.typing_interval_ms),
            http_allow_hosts: over.http_allow_hosts.or(self.http_allow_hosts),
            http_allow_private: over.http_allow_private.or(self.http_allow_private),
            attachments_dir: over.attachments_dir.or(self.attachments_dir),
            attachment_max_bytes: over.attachment_max_bytes.or(self.attachment_max_bytes),
        }
    }

    /// Reads a TOML file layer.
    ///
    /// # Errors
    /// Unreadable file, bad TOML or an unknown key, naming the file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Reads the `PARLEY_*` environment layer from `vars` (the process environment in `main`).
    ///
    /// # Errors
    /// A value that does not parse, naming the variable.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        let mut l = Self::default();
        for (k, v) in vars {
            let Some(name) = k.strip_prefix("PARLEY_") else { continue };
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{k}: {e}");
            match name {
                "LISTEN" => l.listen = Some(v.parse().map_err(|e| bad(&e))?),
                "DATA_DIR" => l.data_dir = Some(v.into()),
                "DATABASE_URL" => l.database_url = Some(v),
                "PUBLIC_URL" => l.public_url = Some(v),
                "LOG_FORMAT" => {
                    l.log_format = Some(match v.as_str() {
                        "pretty" => LogFormat::Pretty,
                        "json" => LogFormat::Json,
                        _ => return Err(bad(&"must be pretty or json")),
                    });
                }
                "ADMIN_TOKEN" => l.admin_token = Some(Secret::new(v)),
                "VISITOR_TOKEN_TTL_SECS" => l.visitor_token_ttl_secs = Some(v.parse().map_err(|e| bad(&e))?),
                "AGENT_SESSION_TTL_SECS" => l.agent_session_ttl_secs = Some(v.parse().map_err(|e| bad(&e))?),
                "SHUTDOWN_GRACE_SECS" => l.shutdown_grace_secs = Some(v.parse().map_err(|e| bad(&e))?),
                "LOG_BATCH" => l.log_batch = Some(v.parse().map_err(|e| bad(&e))?),
                "TYPING_INTERVAL_MS" => l.typing_interval_ms = Some(v.parse().map_err(|e| bad(&e))?),
                "HTTP_ALLOW_HOSTS" => {
                    let hosts: Vec<String> =
                        v.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect();
                    // Checked here too so that a bad pattern names the variable it came from.
                    for h in &hosts {
                        HostPattern::parse(h).map_err(|e| bad(&e))?;
                    }
                    l.http_allow_hosts = Some(hosts);
                }
                "ATTACHMENTS_DIR" => l.attachments_dir = Some(v.into()),
                "ATTACHMENT_MAX_BYTES" => l.attachment_max_bytes = Some(v.parse().map_err(|e| bad(&e))?),
                "HTTP_ALLOW_PRIVATE" => {
                    l.http_allow_private = Some(v.parse().map_err(|_| bad(&"must be true or false"))?);
                }
                // Variables read by tests and scripts, not by the server.
                n if n.starts_with("TEST_") || n == "CONFIG" => {}
                _ => tracing::warn!(variable = %k, "unknown PARLEY_ environment variable ignored"),
            }
        }
        Ok(l)
    }

    /// Fills defaults and checks the result.
    ///
    /// # Errors
    /// A value out of range, naming it.
    pub fn finish(self) -> anyhow::Result<Config> {
        let listen = self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let database_url =
            self.database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("parley.db").display()));
        let public_url = self.public_url.unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            anyhow::bail!("public_url must start with http:// or https://, got '{public_url}'");
        }
        let log_batch = self.log_batch.unwrap_or(256);
        if !(1..=10_000).contains(&log_batch) {
            anyhow::bail!("log_batch must be between 1 and 10000");
        }
        let typing_interval_ms = self.typing_interval_ms.unwrap_or(1000);
        if typing_interval_ms > 60_000 {
            anyhow::bail!("typing_interval_ms must be at most 60000");
        }
        const YEAR: u64 = 366 * 24 * 3600;
        for (name, v) in [
            ("visitor_token_ttl_secs", self.visitor_token_ttl_secs),
            ("agent_session_ttl_secs", self.agent_session_ttl_secs),
        ] {
            if v.is_some_and(|v| !(60..=YEAR).contains(&v)) {
                anyhow::bail!("{name} must be between 60 seconds and one year");
            }
        }
        let http_allow_hosts = self
            .http_allow_hosts
            .unwrap_or_default()
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("http_allow_hosts: {e}"))?;
        let attachment_max_bytes = self.attachment_max_bytes.unwrap_or(DEFAULT_ATTACHMENT_MAX_BYTES);
        if !(1024..=MAX_ATTACHMENT_MAX_BYTES).contains(&attachment_max_bytes) {
            anyhow::bail!("attachment_max_bytes must be between 1024 and {MAX_ATTACHMENT_MAX_BYTES}");
        }
        let attachments_dir = self.attachments_dir.unwrap_or_else(|| data_dir.join("attachments"));
        Ok(Config {
            listen,
            data_dir,
            database_url,
            public_url,
            log_format: self.log_format.unwrap_or_default(),
            admin_token: self.admin_token.unwrap_or_default(),
            visitor_token_ttl_secs: self.visitor_token_ttl_secs.unwrap_or(24 * 3600),
            agent_session_ttl_secs: self.agent_session_ttl_secs.unwrap_or(12 * 3600),
            shutdown_grace_secs: self.shutdown_grace_secs.unwrap_or(10),
            log_batch,
            typing_interval_ms,
            http_allow_hosts,
            http_allow_private: self.http_allow_private.unwrap_or(false),
            attachments_dir,
            attachment_max_bytes,
        })
    }
}

impl Config {
    /// [`Self::typing_interval_ms`] as a duration.
    #[must_use]
    pub fn typing_interval(&self) -> time::Duration {
        time::Duration::milliseconds(i64::try_from(self.typing_interval_ms).unwrap_or(i64::MAX))
    }

    /// `ws://` or `wss://` form of the public URL.
    #[must_use]
    pub fn public_ws_url(&self) -> String {
        self.public_url.replacen("http", "ws", 1)
    }

    /// Cookies get the `Secure` flag when the public URL is https.
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_override_earlier_ones() {
        let file = Layer { listen: Some("127.0.0.1:1".parse().unwrap()), log_batch: Some(5), ..Layer::default() };
        let env = Layer::from_env([("PARLEY_LISTEN".to_owned(), "127.0.0.1:2".to_owned())]).unwrap();
        let c = file.merge(env).finish().unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.log_batch, 5);
    }

    #[test]
    fn defaults_put_sqlite_in_the_data_folder() {
        let c = Layer::default().finish().unwrap();
        assert_eq!(c.database_url, "sqlite://data/parley.db");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.public_ws_url(), "ws://127.0.0.1:8080");
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let err = Layer::from_env([("PARLEY_LISTEN".to_owned(), "nope".to_owned())]).unwrap_err();
        assert!(err.to_string().starts_with("PARLEY_LISTEN"), "{err}");
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert!(Layer { visitor_token_ttl_secs: Some(u64::MAX), ..Layer::default() }.finish().is_err());
        assert!(Layer { agent_session_ttl_secs: Some(1), ..Layer::default() }.finish().is_err());
    }

    #[test]
    fn typing_interval_defaults_to_a_second_and_is_bounded() {
        assert_eq!(Layer::default().finish().unwrap().typing_interval(), time::Duration::seconds(1));
        let env = Layer::from_env([("PARLEY_TYPING_INTERVAL_MS".to_owned(), "0".to_owned())]).unwrap();
        assert_eq!(env.finish().unwrap().typing_interval(), time::Duration::ZERO);
        assert!(Layer { typing_interval_ms: Some(60_001), ..Layer::default() }.finish().is_err());
    }

    #[test]
    fn an_unknown_file_key_is_an_error() {
        assert!(toml::from_str::<Layer>("lissen = '127.0.0.1:1'").is_err());
    }

    #[test]
    fn outbound_http_is_refused_everywhere_by_default() {
        let c = Layer::default().finish().unwrap();
        assert!(c.http_allow_hosts.is_empty());
        assert!(!c.http_allow_private);
    }

    #[test]
    fn outbound_hosts_come_from_a_file_list_or_a_comma_separated_variable() {
        let file: Layer = toml::from_str("http_allow_hosts = ['crm.example.com']\nhttp_allow_private = true").unwrap();
        let env =
            Layer::from_env([("PARLEY_HTTP_ALLOW_HOSTS".to_owned(), " api.example.com, *.Example.org ,".to_owned())])
                .unwrap();
        let c = file.merge(env).finish().unwrap();
        let hosts: Vec<String> = c.http_allow_hosts.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["api.example.com", "*.example.org"]);
        assert!(c.http_allow_private);
    }

    #[test]
    fn a_bad_host_pattern_is_a_configuration_error() {
        let err =
            Layer::from_env([("PARLEY_HTTP_ALLOW_HOSTS".to_owned(), "https://x.example".to_owned())]).unwrap_err();
        assert!(err.to_string().starts_with("PARLEY_HTTP_ALLOW_HOSTS"), "{err}");
        let err = Layer { http_allow_hosts: Some(vec!["a.*.com".into()]), ..Layer::default() }.finish().unwrap_err();
        assert!(err.to_string().starts_with("http_allow_hosts"), "{err}");
        assert!(Layer::from_env([("PARLEY_HTTP_ALLOW_PRIVATE".to_owned(), "yes".to_owned())]).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let c = Layer { admin_token: Some(Secret::new("hunter2hunter2")), ..Layer::default() }.finish().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
