//! The load generator's WebSocket client: one configuration for every scenario and ceiling, so
//! the client costs the same on both sides of a ratio.

use anyhow::Context;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::COOKIE;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Parley's own read buffer (see [`parley_server::ws::READ_BUFFER_BYTES`]): with tungstenite's
/// default, the generator would spend its CPU zero-filling 128 KiB before every read and starve
/// the server it shares the machine with.
#[must_use]
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(parley_server::ws::READ_BUFFER_BYTES)
}

/// Opens a WebSocket to `url` with [`config`], Nagle off as browsers have it.
///
/// # Errors
/// If the connection or the handshake fails.
pub async fn connect(url: &str) -> anyhow::Result<Ws> {
    connect_with_cookie(url, None).await
}

/// [`connect`] with a `Cookie` header (an agent's session).
///
/// # Errors
/// If the connection or the handshake fails.
pub async fn connect_with_cookie(url: &str, cookie: Option<&str>) -> anyhow::Result<Ws> {
    let mut request = url.into_client_request()?;
    if let Some(c) = cookie {
        request.headers_mut().insert(COOKIE, c.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config()), true)
        .await
        .with_context(|| format!("connect to {url}"))?;
    Ok(ws)
}
