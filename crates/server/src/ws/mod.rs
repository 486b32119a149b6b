//! The two WebSockets. Both authenticate before the upgrade (a bad credential is an HTTP 401,
//! not an open socket), replay the durable log from the client's `since_seq`, then stream live
//! entries, and close with code 1012 ("restart: reconnect") when the server shuts down.

pub mod agent;
pub mod protocol;
pub mod visitor;

use crate::error::ApiError;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::StatusCode;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use parley_domain::{ConversationId, LogEntry, TenantId};
use parley_store::{Store, StoreError};
use serde::Serialize;

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

type Sink = SplitSink<WebSocket, Message>;

/// Serialises and sends one frame; `false` when the socket is gone.
async fn send<T: Serialize>(sink: &mut Sink, frame: &T) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => sink.send(Message::Text(text.into())).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "frame serialisation failed");
            false
        }
    }
}

async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

/// Maps a failed upgrade (not a WebSocket request) to problem+json.
pub fn upgrade_error(e: &axum::extract::ws::rejection::WebSocketUpgradeRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "websocket_required", e.to_string())
}

/// Where one socket is in one conversation's log: the highest `seq` it has sent.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub last: i64,
}

impl Cursor {
    /// Entries after the cursor from the store (all of them, page by page), advancing it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn catch_up(&mut self, store: &dyn Store) -> Result<Vec<LogEntry>, StoreError> {
        let mut out = Vec::new();
        loop {
            let page = store.read_log(self.tenant, self.conversation, self.last, 500).await?;
            let full = page.len() == 500;
            if let Some(last) = page.last() {
                self.last = last.seq;
            }
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// What to do with a live entry: nothing (already sent), send it, or fill a gap first.
    pub async fn live(&mut self, entry: &LogEntry, store: &dyn Store) -> Result<Vec<LogEntry>, StoreError> {
        if entry.seq <= self.last {
            Ok(Vec::new())
        } else if entry.seq == self.last + 1 {
            self.last = entry.seq;
            Ok(vec![entry.clone()])
        } else {
            self.catch_up(store).await
        }
    }
}
