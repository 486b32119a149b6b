//! Ceilings: what this machine and the crates Parley is built on do without Parley, measured in
//! the same run as Parley's figures, so that a ratio means something on a shared, noisy machine
//! (docs/benchmarks.md, "Ceilings").
//!
//! - [`bare_echo`]: an axum WebSocket server (the same axum and tungstenite as Parley's) that
//!   sends every text frame back, driven closed-loop by the same client the scenarios use;
//! - [`fsync`]: appends of one page to a file, each made durable with `fdatasync`;
//! - [`sqlite_rows`]: raw inserts into a table shaped like Parley's log, in SQLite's WAL mode
//!   with `synchronous=FULL` as Parley runs it, `batch` rows per transaction in multi-row
//!   statements as Parley's log writes them.

use crate::stats::{Percentiles, nanos};
use anyhow::Context;
use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{Message, WebSocket};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite;

/// A text frame about the size of a chat message frame.
const PAYLOAD: &str =
    "{\"type\":\"send\",\"client_msg_id\":\"0123456789abcdef\",\"text\":\"Hello, is anybody there?\"}";

/// Closed-loop echoes over WebSockets.
#[derive(Debug, Clone, Serialize)]
pub struct Echo {
    pub connections: usize,
    pub secs: f64,
    pub echoes: u64,
    pub echoes_per_sec: f64,
    /// Round trips, in milliseconds.
    pub latency_ms: Percentiles,
}

/// Durable single-page appends.
#[derive(Debug, Clone, Serialize)]
pub struct Fsync {
    pub writes: usize,
    /// Each write plus `fdatasync`, in milliseconds.
    pub latency_ms: Percentiles,
}

/// Raw SQLite inserts.
#[derive(Debug, Clone, Serialize)]
pub struct SqliteRows {
    pub rows: usize,
    pub batch: usize,
    pub secs: f64,
    pub rows_per_sec: f64,
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let back = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(back).await.is_err() {
            break;
        }
    }
}

/// Serves the bare echo on a fresh loopback port; returns its `ws://` URL and the serving task.
pub async fn echo_server() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    // Parley's read buffer: the ceiling shares its configuration, not only its crates.
    let app = Router::new().route(
        "/echo",
        get(|ws: WebSocketUpgrade| async {
            ws.read_buffer_size(parley_server::ws::READ_BUFFER_BYTES).on_upgrade(echo)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind the echo server")?;
    let url = format!("ws://{}/echo", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, task))
}

/// `connections` clients each send a frame and wait for it to come back, for `duration`, on an
/// in-process echo server.
///
/// # Errors
/// If the server cannot start or a client cannot connect.
pub async fn bare_echo(connections: usize, duration: Duration) -> anyhow::Result<Echo> {
    let (url, server) = echo_server().await?;
    let echo = echo_closed_loop(&url, connections, duration).await;
    server.abort();
    echo
}

/// [`bare_echo`] against the echo at `url` (a process of its own, say).
///
/// # Errors
/// If a client cannot connect.
pub async fn echo_closed_loop(url: &str, connections: usize, duration: Duration) -> anyhow::Result<Echo> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(crate::client::connect(url).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for mut ws in clients {
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                if ws.send(tungstenite::Message::text(PAYLOAD)).await.is_err() {
                    break;
                }
                match ws.next().await {
                    Some(Ok(_)) => samples.push(nanos(sent.elapsed())),
                    _ => break,
                }
            }
            let _ = ws.close(None).await;
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.context("echo client")?);
    }
    let secs = started.elapsed().as_secs_f64();
    let echoes = samples.len() as u64;
    Ok(Echo {
        connections,
        secs,
        echoes,
        echoes_per_sec: echoes as f64 / secs,
        latency_ms: Percentiles::of(&mut samples, 1e6),
    })
}

/// `writes` appends of 4 KiB to a file in `dir`, each followed by `fdatasync`.
///
/// # Errors
/// If the file cannot be written.
pub fn fsync(dir: &std::path::Path, writes: usize) -> anyhow::Result<Fsync> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).context("create the probe file")?;
    let page = vec![7u8; 4096];
    let mut samples = Vec::with_capacity(writes);
    for _ in 0..writes {
        let t = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        samples.push(nanos(t.elapsed()));
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(Fsync { writes, latency_ms: Percentiles::of(&mut samples, 1e6) })
}

/// Inserts `rows` rows of about a chat message's size into a log-shaped table, `batch` per
/// transaction, fully durable.
///
/// # Errors
/// If the database cannot be opened or written.
pub async fn sqlite_rows(dir: &std::path::Path, rows: usize, batch: usize) -> anyhow::Result<SqliteRows> {
    let path = dir.join("ceiling.db");
    let _ = std::fs::remove_file(&path);
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await.context("open the ceiling database")?;
    sqlx::query(
        "CREATE TABLE log (conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, tenant_id TEXT NOT NULL, \
         client_msg_id TEXT, body TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, seq)) \
         STRICT, WITHOUT ROWID",
    )
    .execute(&mut db)
    .await?;
    let body = r#"{"kind":"message","sender":{"role":"customer","name":"Ann"},"text":"Hello, is anybody there?"}"#;
    let tenant = uuid::Uuid::now_v7().to_string();
    let conversations: Vec<String> = (0..100).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let batch = batch.max(1);
    let started = Instant::now();
    let mut written = 0usize;
    while written < rows {
        let mut tx = db.begin().await?;
        let n = batch.min(rows - written);
        // As Parley's log writes a batch: multi-row statements of at most 256 rows.
        for chunk_start in (0..n).step_by(256) {
            let m = 256.min(n - chunk_start);
            let sql = format!("INSERT INTO log VALUES {}", vec!["(?, ?, ?, ?, ?, ?)"; m].join(", "));
            let mut q = sqlx::query(&sql).persistent(false);
            for k in written + chunk_start..written + chunk_start + m {
                let conversation = &conversations[k % conversations.len()];
                let seq = i64::try_from(k / conversations.len()).unwrap_or(i64::MAX) + 1;
                q = q
                    .bind(conversation)
                    .bind(seq)
                    .bind(&tenant)
                    .bind(format!("m-{k}"))
                    .bind(body)
                    .bind(i64::try_from(k).unwrap_or(i64::MAX));
            }
            q.execute(&mut *tx).await?;
        }
        written += n;
        tx.commit().await?;
    }
    let secs = started.elapsed().as_secs_f64();
    db.close().await?;
    Ok(SqliteRows { rows, batch, secs, rows_per_sec: rows as f64 / secs })
}
