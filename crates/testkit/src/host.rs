//! A customer's website for browser tests: one HTML page served from its own origin (another
//! port), so the widget runs cross-origin exactly as it does on a real site.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tokio::net::TcpListener;

/// A running host site.
#[derive(Debug)]
pub struct HostPage {
    /// URL of the page.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl HostPage {
    /// Serves `html` at `/` on a fresh port of 127.0.0.1.
    ///
    /// # Errors
    /// If no port can be bound.
    pub async fn serve(html: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        let app = Router::new().route("/", get(move || async move { Html(html) }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, task })
    }
}

impl Drop for HostPage {
    fn drop(&mut self) {
        self.task.abort();
    }
}
