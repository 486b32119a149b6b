//! Building and running the server: open the store, start the log writer and the engines, bind,
//! serve until shutdown, then stop in order (stop accepting, close sockets with a reconnect hint,
//! commit what is queued, close the store).

use crate::bus::{EventBus, LiveEvent, LocalBus, Topic};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::http;
use crate::state::{AppState, Inner};
use crate::tenant_engine::{EngineDeps, Engines};
use anyhow::Context;
use parley_domain::{LogEntry, TenantId};
use parley_store::{ConversationLog, NodeClaim};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A built server, bound and ready to run.
#[derive(Debug)]
pub struct App {
    pub state: AppState,
    listener: TcpListener,
    log_task: tokio::task::JoinHandle<()>,
    /// This process's claim on the database, released after the store closes.
    claim: NodeClaim,
}

/// Argon2id runs at once (19 MiB each, kept by the allocator afterwards) and sign-ins waiting
/// for one; more are turned away with 503 at once.
const PASSWORD_WORKERS: usize = 2;
const PASSWORD_QUEUE: usize = 32;

/// How long start-up waits for a predecessor's claim to go: a process killed a moment ago may
/// still hold its PostgreSQL connection (and so its lock) until the server notices.
const CLAIM_WAIT: Duration = Duration::from_secs(3);
const CLAIM_RETRY: Duration = Duration::from_millis(250);

/// Claims the database for this process, or says who else serves it.
async fn claim(store: &dyn parley_store::Store) -> anyhow::Result<NodeClaim> {
    let until = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        match store.claim_node().await {
            Ok(claim) => return Ok(claim),
            Err(parley_store::StoreError::InUse(why)) if tokio::time::Instant::now() >= until => {
                anyhow::bail!("{why}")
            }
            Err(parley_store::StoreError::InUse(_)) => tokio::time::sleep(CLAIM_RETRY).await,
            Err(e) => return Err(e).context("claiming the database"),
        }
    }
}

/// Optional parts tests replace.
#[derive(Debug, Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub listener: Option<TcpListener>,
}

impl App {
    /// Opens and migrates the store, starts the log writer and every tenant's engine, binds.
    ///
    /// # Errors
    /// Store or bind failures, with context.
    pub async fn build(mut config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        if config.database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
        }
        let store = parley_store::connect(&config.database_url).await.context("opening the database")?;
        let claim = claim(store.as_ref()).await?;
        store.migrate().await.context("migrating the database")?;
        let listener = match overrides.listener {
            Some(l) => l,
            None => bind(config.listen).with_context(|| format!("binding {}", config.listen))?,
        };
        // With port 0 the default public URL only becomes known once bound.
        if config.listen.port() == 0 && config.public_url == format!("http://{}", config.listen) {
            config.public_url = format!("http://{}", listener.local_addr()?);
        }
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::new());
        let hook_bus = Arc::clone(&bus);
        let hook = move |tenant: TenantId, entry: &LogEntry| {
            let topic = Topic::conversation(tenant, entry.conversation_id);
            hook_bus.publish(topic, LiveEvent::Entry { entry: entry.clone() });
        };
        let (log, log_task) = ConversationLog::start(Arc::clone(&store), config.log_batch, Arc::new(hook));
        let tracker = TaskTracker::new();
        let deps = EngineDeps {
            store: Arc::clone(&store),
            bus: Arc::clone(&bus),
            clock: Arc::clone(&clock),
            tracker: tracker.clone(),
            outbound: Arc::new(crate::outbound::Outbound::from_config(&config)),
        };
        let engines = Engines::new(deps);
        for tenant in store.list_tenants().await.context("listing tenants")? {
            engines.ensure_started(tenant.id);
        }
        // Listening does not wait for the engines' rebuilds: what needs an engine waits in its
        // channel until the rebuild is done, and a chat created meanwhile runs its workflow from
        // the start either way (`/readyz` says `engine_down` until then).
        let files = crate::files::Files::new(config.attachments_dir.clone());
        let passwords = crate::passwords::Passwords::start(PASSWORD_WORKERS, PASSWORD_QUEUE)
            .context("starting the password workers")?;
        let state = AppState::new(Inner {
            files,
            config,
            store,
            log,
            bus,
            engines,
            passwords,
            clock,
            shutdown: CancellationToken::new(),
            tracker,
        });
        Ok(Self { state, listener, log_task, claim })
    }

    /// The bound address.
    ///
    /// # Errors
    /// If the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `state.shutdown` is cancelled, then shuts down gracefully.
    ///
    /// # Errors
    /// Serving errors.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self { state, listener, log_task, claim } = self;
        let router = http::router(state.clone());
        let shutdown = state.shutdown.clone();
        tracing::info!(addr = %listener.local_addr()?, store = ?state.store.backend(), "parley is listening");
        // Chat frames are small and latency-bound: without NODELAY, Nagle's algorithm holds a
        // frame back until the previous one is acknowledged (~40 ms with delayed ACKs).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving")?;
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        state.tracker.close();
        state.engines.close();
        if tokio::time::timeout(grace, state.tracker.wait()).await.is_err() {
            tracing::warn!("some connections did not close within the grace period");
        }
        state.log.stop().await;
        let _ = log_task.await;
        state.store.close().await;
        drop(claim);
        tracing::info!("parley stopped");
        Ok(())
    }
}

/// Connections the kernel may hold completed but not yet accepted (Linux caps it at
/// `net.core.somaxconn`, 4096 by default since 5.4).
// Why: after a restart every widget reconnects at once (close code 1012); with the default of 128
// the SYNs beyond it are dropped and retried only after 1, 3, 7 s.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listening socket as `TcpListener::bind` does (address reuse on Unix, so a restart
/// binds while old connections linger in TIME_WAIT), with a backlog of [`LISTEN_BACKLOG`].
///
/// # Errors
/// The socket cannot be created, bound or put to listen.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                s.recv().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("shutdown requested");
        token.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More connections than the old default backlog (128) complete while nobody accepts: none
    /// of their SYNs is dropped.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_listener_holds_more_than_128_unaccepted_connections() {
        let cap =
            std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse::<u32>().ok());
        if cap.is_some_and(|c| c < 300) {
            eprintln!("skipped: net.core.somaxconn {cap:?} caps every backlog below 300");
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connect = tokio::task::spawn_blocking(move || {
            (0..300)
                .map(|i| {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                        .unwrap_or_else(|e| panic!("connection {i}: {e}"))
                })
                .collect::<Vec<_>>()
        });
        assert_eq!(connect.await.unwrap().len(), 300);
        drop(listener);
    }

    #[tokio::test]
    async fn a_port_is_bound_again_while_its_last_connection_lingers() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // The server side closes first, so its end of the connection waits in TIME_WAIT.
        drop(server);
        drop(listener);
        drop(client);
        bind(addr).unwrap();
    }
}
