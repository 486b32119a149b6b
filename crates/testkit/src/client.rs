//! HTTP and WebSocket clients for tests, speaking the real protocols.

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest a test waits for an expected frame before failing (a bound, not a sleep).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A JSON HTTP client bound to one server and, optionally, one credential.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    bearer: Option<String>,
    cookie: Option<String>,
    origin: Option<String>,
}

/// A response: status and parsed JSON (Null for an empty body).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub set_cookie: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

/// A downloaded body with its status and headers.
#[derive(Debug, Clone)]
pub struct Download {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Download {
    /// A header's value, `""` when absent.
    #[must_use]
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

impl Reply {
    /// A header's value, `""` when absent.
    #[must_use]
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The problem document's `code`.
    #[must_use]
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

impl Api {
    #[must_use]
    pub fn new(base: &str) -> Self {
        Self { base: base.to_owned(), http: reqwest::Client::new(), bearer: None, cookie: None, origin: None }
    }

    /// The same client sending `Authorization: Bearer token`.
    #[must_use]
    pub fn bearer(&self, token: &str) -> Self {
        Self { bearer: Some(token.to_owned()), ..self.clone() }
    }

    /// The same client sending a `Cookie` header.
    #[must_use]
    pub fn cookie(&self, cookie: &str) -> Self {
        Self { cookie: Some(cookie.to_owned()), ..self.clone() }
    }

    /// The same client sending an `Origin` header, as a browser on that website would.
    #[must_use]
    pub fn origin(&self, origin: &str) -> Self {
        Self { origin: Some(origin.to_owned()), ..self.clone() }
    }

    /// Sends a request with an optional raw body.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(o) = &self.origin {
            req = req.header("origin", o);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.with_context(|| format!("request to {path}"))?;
        let status = res.status();
        let content_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let set_cookie = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let headers = res.headers().clone();
        let bytes = res.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply { status, content_type, body, set_cookie, headers })
    }

    /// `GET path`, keeping the body's bytes and every response header (for file downloads).
    ///
    /// # Errors
    /// Transport failures.
    pub async fn download(&self, path: &str) -> anyhow::Result<Download> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(o) = &self.origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.with_context(|| format!("request to {path}"))?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await?.to_vec();
        Ok(Download { status, headers, bytes })
    }

    /// `GET path`.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.raw("GET", path, None, None).await
    }

    /// `method path` with a JSON body.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn send(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.raw(method, path, Some("application/json"), Some(serde_json::to_vec(body)?)).await
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send("POST", path, body).await
    }
}

/// A test WebSocket client.
#[derive(Debug)]
pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Why a socket closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Ws {
    /// Connects, optionally with a cookie.
    ///
    /// # Errors
    /// Connection or upgrade failures (an HTTP error status is an error).
    pub async fn connect(url: &str, cookie: Option<&str>) -> anyhow::Result<Self> {
        let mut req = url.into_client_request()?;
        if let Some(c) = cookie {
            req.headers_mut().insert(http::header::COOKIE, c.parse()?);
        }
        let (inner, _) = tokio_tungstenite::connect_async(req).await.with_context(|| format!("connecting {url}"))?;
        Ok(Self { inner })
    }

    /// Connects with a cookie and an `Origin` header.
    ///
    /// # Errors
    /// Connection or upgrade failures.
    pub async fn connect_with_origin(url: &str, cookie: &str, origin: &str) -> anyhow::Result<Self> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(http::header::COOKIE, cookie.parse()?);
        req.headers_mut().insert(http::header::ORIGIN, origin.parse()?);
        let (inner, _) = tokio_tungstenite::connect_async(req).await.with_context(|| format!("connecting {url}"))?;
        Ok(Self { inner })
    }

    /// The HTTP status a refused upgrade answered with.
    pub async fn refused_status(url: &str, cookie: Option<&str>) -> Option<u16> {
        Self::refused_status_from(url, cookie, None).await
    }

    /// Like [`Self::refused_status`], sending an `Origin` header as a browser page would.
    pub async fn refused_status_from(url: &str, cookie: Option<&str>, origin: Option<&str>) -> Option<u16> {
        let mut req = url.into_client_request().ok()?;
        if let Some(c) = cookie {
            req.headers_mut().insert(http::header::COOKIE, c.parse().ok()?);
        }
        if let Some(o) = origin {
            req.headers_mut().insert(http::header::ORIGIN, o.parse().ok()?);
        }
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Some(res.status().as_u16()),
            _ => None,
        }
    }

    /// Sends one JSON text frame.
    ///
    /// # Errors
    /// If the socket is closed.
    pub async fn send(&mut self, v: &Value) -> anyhow::Result<()> {
        self.inner.send(Message::Text(v.to_string().into())).await?;
        Ok(())
    }

    /// Sends raw text.
    ///
    /// # Errors
    /// If the socket is closed.
    pub async fn send_text(&mut self, t: &str) -> anyhow::Result<()> {
        self.inner.send(Message::Text(t.to_owned().into())).await?;
        Ok(())
    }

    /// The next JSON frame, or `Err(Closed)` inside the anyhow error when the server closed.
    ///
    /// # Errors
    /// Timeout, close or a non-JSON frame.
    pub async fn next(&mut self) -> anyhow::Result<Value> {
        loop {
            let msg = tokio::time::timeout(FRAME_TIMEOUT, self.inner.next())
                .await
                .context("timed out waiting for a frame")?;
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    let c = frame.map_or(Closed { code: 1005, reason: String::new() }, |f| Closed {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    });
                    return Err(anyhow::Error::msg(format!("closed {} {}", c.code, c.reason)).context(c.code));
                }
                Some(Ok(other)) => anyhow::bail!("unexpected frame {other:?}"),
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("socket ended"),
            }
        }
    }

    /// Reads frames until one satisfies `pred`, returning it (frames before it are dropped).
    ///
    /// # Errors
    /// Timeout or close before a match.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        loop {
            let v = self.next().await.with_context(|| format!("waiting for {what}"))?;
            if pred(&v) {
                return Ok(v);
            }
        }
    }

    /// Reads frames until the server closes; returns the close code.
    ///
    /// # Errors
    /// Timeout.
    pub async fn closed(&mut self) -> anyhow::Result<u16> {
        loop {
            match self.next().await {
                Ok(_) => {}
                Err(e) => {
                    return e.downcast_ref::<u16>().copied().ok_or(e);
                }
            }
        }
    }

    /// Closes from our side.
    pub async fn close(mut self) {
        let _ = self.inner.close(None).await;
    }
}
