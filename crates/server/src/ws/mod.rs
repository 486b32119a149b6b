//! The two WebSockets. Both authenticate before the upgrade (a bad credential is an HTTP 401,
//! not an open socket), replay the durable log from the client's `since_seq`, then stream live
//! entries, and close with code 1012 ("restart: reconnect") when the server shuts down.

pub mod agent;
pub mod protocol;
pub mod visitor;

use crate::bus::{LiveEvent, Topic};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use parley_domain::{ConversationId, LogEntry, Reader, TenantId, Watermark};
use parley_store::{Store, StoreError};
use serde::Serialize;

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What a socket reads at a time. tungstenite zero-fills its whole read buffer before every read
/// (128 KiB by default): that was a third of a busy relay's CPU, and 128 KiB resident per idle
/// socket once it had read. Chat frames are small; a larger one grows the buffer as it arrives.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The limits both sockets upgrade with.
fn limits(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_FRAME_BYTES).read_buffer_size(READ_BUFFER_BYTES)
}

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

/// Records that `reader` received or read a conversation up to `seq` and, when that moved the
/// side's marks, tells the other side over the bus. `known` is the mark this socket last saw for
/// its side, so the frames a client repeats cost no write.
///
/// # Errors
/// The code and message of an error frame: `validation_failed` for a `seq` below 1,
/// `not_stored` when the store failed (the client may send the frame again).
async fn record_receipt(
    state: &AppState,
    conversation: (TenantId, ConversationId),
    reader: Reader,
    known: &mut Watermark,
    seen: protocol::Seen,
    seq: i64,
) -> Result<(), (&'static str, String)> {
    if seq < 1 {
        return Err(("validation_failed", "/seq: must be at least 1".into()));
    }
    let asked = seen.mark(seq);
    if known.raised(asked, i64::MAX) == *known {
        return Ok(());
    }
    let (tenant, id) = conversation;
    let now = match state.store.mark_receipt(tenant, id, reader, asked).await {
        Ok(r) => r.of(reader),
        Err(e) => {
            tracing::warn!(error = %e, "receipt not stored");
            return Err(("not_stored", "the receipt was not stored; send it again".into()));
        }
    };
    if now != *known {
        *known = now;
        state.bus.publish(Topic::conversation(tenant, id), LiveEvent::Receipt { reader, mark: now });
    }
    Ok(())
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
