//! Files sent in chats. The sender uploads the raw bytes (`POST …/attachments?client_msg_id&name`,
//! `Content-Type` ignored); Parley tells the kind from the bytes, keeps the file in the
//! attachment folder, records it and appends a message carrying it to the log, all idempotent
//! per `client_msg_id` like a typed message. Both sides and the tenant admin download it with
//! their own credentials; files are served so that a browser never runs them.

use crate::auth::{Agent, TenantAdmin, Visitor};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::files::Staged;
use crate::state::AppState;
use crate::tenant_engine::Command;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_domain::attachment::check_upload;
use parley_domain::{
    Attachment, AttachmentId, Conversation, ConversationId, ConversationStatus, EntryBody, Sender, TenantId,
    validate_client_msg_id,
};
use parley_store::{AttachmentRecord, NewEntry, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Query of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The sender's idempotency key, as for a typed message (a retry returns the first result).
    pub client_msg_id: String,
    /// The file's name on the sender's device (made safe; its extension follows the content).
    pub name: String,
}

/// A file sent: the attachment and the log entry that carries it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SentFile {
    pub attachment: Attachment,
    pub seq: i64,
    /// `true` when this `client_msg_id` had already been sent (nothing new was written).
    pub duplicate: bool,
}

/// The customer sends a file in their conversation.
#[utoipa::path(post, path = "/api/v1/widget/conversations/{id}/attachments", tag = "widget",
    security(("visitor_token" = [])), params(("id" = Uuid, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = SentFile), (status = 200, body = SentFile), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem)))]
pub async fn visitor_upload(
    visitor: Visitor,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<SentFile>)> {
    let conversation = visitor_conversation(&state, visitor, id, &headers).await?;
    let sender = Sender::Customer { name: conversation.customer.display_name.clone() };
    let sent = send_file(&state, &conversation, sender, &q, body).await?;
    if !sent.duplicate {
        // A file ends the customer's silence like a message (no workflow takes it as an answer).
        let _ =
            state.engines.send(conversation.tenant_id, Command::CustomerActive { conversation: conversation.id }).await;
    }
    Ok((status_of(&sent), Json(sent)))
}

/// The agent sends a file in one of their connected chats.
#[utoipa::path(post, path = "/api/v1/agent/chats/{id}/attachments", tag = "agent",
    security(("agent_session" = [])), params(("id" = Uuid, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = SentFile), (status = 200, body = SentFile), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem)))]
pub async fn agent_upload(
    agent: Agent,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<SentFile>)> {
    let conversation = agent_conversation(&state, agent, id).await?;
    if conversation.status == ConversationStatus::Ended {
        return Err(ended());
    }
    if conversation.status != ConversationStatus::Connected {
        return Err(ApiError::conflict("not_your_chat", "this chat is not connected to you"));
    }
    // The customer reads the agent under the chat's alias (system messages' agent name).
    let name = match conversation.agent_alias.clone() {
        Some(alias) => alias,
        None => state.store.get_user(agent.tenant_id, agent.user_id).await?.display_name,
    };
    let sender = Sender::Agent { id: agent.user_id, name };
    let sent = send_file(&state, &conversation, sender, &q, body).await?;
    Ok((status_of(&sent), Json(sent)))
}

/// The customer downloads a file of their conversation.
#[utoipa::path(get, path = "/api/v1/widget/conversations/{id}/attachments/{attachment_id}", tag = "widget",
    security(("visitor_token" = [])), params(("id" = Uuid, Path), ("attachment_id" = Uuid, Path)),
    responses((status = 200, description = "the file"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn visitor_download(
    visitor: Visitor,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath((id, attachment)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let conversation = visitor_conversation(&state, visitor, id, &headers).await?;
    serve(&state, conversation.tenant_id, conversation.id, attachment).await
}

/// The agent downloads a file of a chat they hold or held.
#[utoipa::path(get, path = "/api/v1/agent/chats/{id}/attachments/{attachment_id}", tag = "agent",
    security(("agent_session" = [])), params(("id" = Uuid, Path), ("attachment_id" = Uuid, Path)),
    responses((status = 200, description = "the file"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn agent_download(
    agent: Agent,
    State(state): State<AppState>,
    ApiPath((id, attachment)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let conversation = agent_conversation(&state, agent, id).await?;
    serve(&state, conversation.tenant_id, conversation.id, attachment).await
}

/// The tenant admin downloads a file of any conversation of the tenant.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/attachments/{attachment_id}", tag = "tenant",
    security(("api_key" = [])), params(("id" = Uuid, Path), ("attachment_id" = Uuid, Path)),
    responses((status = 200, description = "the file"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn admin_download(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath((id, attachment)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    serve(&state, admin.tenant_id, ConversationId::from_uuid(id), attachment).await
}

fn ended() -> ApiError {
    ApiError::conflict("conversation_ended", "the conversation has ended")
}

fn status_of(sent: &SentFile) -> StatusCode {
    if sent.duplicate { StatusCode::OK } else { StatusCode::CREATED }
}

async fn visitor_conversation(
    state: &AppState,
    visitor: Visitor,
    id: Uuid,
    headers: &HeaderMap,
) -> ApiResult<Conversation> {
    if visitor.conversation_id.0 != id {
        return Err(ApiError::forbidden("token_not_for_conversation", "the token belongs to another conversation"));
    }
    let conversation = state.store.get_conversation(visitor.tenant_id, visitor.conversation_id).await?;
    super::access::check_conversation_origin(state, &conversation, headers).await?;
    Ok(conversation)
}

/// The agent's chat; any other (another agent's, another tenant's, unknown) is not found.
async fn agent_conversation(state: &AppState, agent: Agent, id: Uuid) -> ApiResult<Conversation> {
    let not_found = || ApiError::not_found("chat");
    let conversation = match state.store.get_conversation(agent.tenant_id, ConversationId::from_uuid(id)).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if conversation.agent_id == Some(agent.user_id) { Ok(conversation) } else { Err(not_found()) }
}

/// The same id for the same message in the same conversation, so a retried upload finds the
/// first one's record.
fn attachment_id(conversation: ConversationId, client_msg_id: &str) -> AttachmentId {
    let digest =
        Sha256::new().chain_update(conversation.0.as_bytes()).chain_update(client_msg_id.as_bytes()).finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    AttachmentId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

fn too_large(max: u64) -> ApiError {
    let mut e: ApiError =
        parley_domain::ValidationErrors::single("/file", "too_large", format!("files may be at most {max} bytes"))
            .into();
    e.status = StatusCode::PAYLOAD_TOO_LARGE;
    e.code = "payload_too_large";
    e
}

async fn send_file(
    state: &AppState,
    conversation: &Conversation,
    sender: Sender,
    q: &UploadQuery,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<SentFile> {
    let max = state.config.attachment_max_bytes;
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(max)
        } else {
            ApiError::bad_request("bad_body", r.body_text())
        }
    })?;
    validate_client_msg_id(&q.client_msg_id)?;
    if conversation.status == ConversationStatus::Ended {
        return Err(ended());
    }
    let (name, kind) = check_upload(&q.name, &bytes, max)
        .map_err(|e| if e.0[0].code == "too_large" { too_large(max) } else { e.into() })?;
    let tenant = conversation.tenant_id;
    let record = AttachmentRecord {
        tenant_id: tenant,
        conversation_id: conversation.id,
        attachment: Attachment {
            id: attachment_id(conversation.id, &q.client_msg_id),
            name,
            content_type: kind.content_type.into(),
            size: bytes.len() as u64,
        },
        sha256: hex::encode(Sha256::digest(&bytes)),
        created_at: state.clock.now(),
    };
    let staged = state.files.stage(tenant, &bytes).await.map_err(|e| ApiError::internal(&e))?;
    let attachment = keep(state, record, staged).await?;
    let entry = NewEntry {
        tenant_id: tenant,
        conversation_id: conversation.id,
        client_msg_id: Some(q.client_msg_id.clone()),
        body: EntryBody::Message { sender, text: String::new(), attachment: Some(attachment.clone()) },
        created_at: state.clock.now(),
    };
    match state.log.append(entry).await {
        Ok(a) => {
            let attachment = match a.entry.body {
                EntryBody::Message { attachment: Some(first), .. } => first,
                // The key was used for a typed message before: this file went nowhere.
                _ => {
                    return Err(ApiError::conflict(
                        "client_msg_id_reused",
                        "that client_msg_id was used for another message",
                    ));
                }
            };
            Ok(SentFile { attachment, seq: a.entry.seq, duplicate: a.duplicate })
        }
        Err(StoreError::NotFound) => Err(ended()),
        Err(e) => Err(e.into()),
    }
}

/// Records the attachment and puts its bytes in place. A retry of the same upload (same id and
/// bytes) finds the first record, and puts the bytes in place if a crash kept them from it; the
/// same key with other bytes is refused.
async fn keep(state: &AppState, record: AttachmentRecord, staged: Staged) -> ApiResult<Attachment> {
    let (tenant, id) = (record.tenant_id, record.attachment.id);
    match state.store.create_attachment(&record).await {
        Ok(()) => {
            state.files.commit(staged, tenant, id).await.map_err(|e| ApiError::internal(&e))?;
            Ok(record.attachment)
        }
        Err(StoreError::Conflict(_)) => {
            let first = state.store.get_attachment(tenant, record.conversation_id, id).await?;
            if first.sha256 != record.sha256 {
                state.files.discard(staged).await;
                return Err(ApiError::conflict("client_msg_id_reused", "that client_msg_id was used for another file"));
            }
            if state.files.exists(tenant, id).await {
                state.files.discard(staged).await;
            } else {
                state.files.commit(staged, tenant, id).await.map_err(|e| ApiError::internal(&e))?;
            }
            Ok(first.attachment)
        }
        Err(e) => {
            state.files.discard(staged).await;
            Err(e.into())
        }
    }
}

/// The file, served so that browsers never run it: its recorded type only, no sniffing, a
/// sandboxing policy, and `attachment` disposition for anything but images and PDF.
async fn serve(state: &AppState, tenant: TenantId, conversation: ConversationId, id: Uuid) -> ApiResult<Response> {
    let id = AttachmentId::from_uuid(id);
    let record = match state.store.get_attachment(tenant, conversation, id).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Err(ApiError::not_found("attachment")),
        Err(e) => return Err(e.into()),
    };
    let bytes = match state.files.read(tenant, id).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(attachment = %id, "recorded attachment has no file");
            return Err(ApiError::not_found("attachment"));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    };
    let a = &record.attachment;
    let inline = a.is_image() || a.content_type == "application/pdf";
    let disposition =
        format!("{}; filename*=UTF-8''{}", if inline { "inline" } else { "attachment" }, percent(&a.name));
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| ApiError::internal(&e));
    h.insert(header::CONTENT_TYPE, value(&a.content_type)?);
    h.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    Ok(res)
}

/// RFC 8187 percent-encoding of a file name for `filename*`.
fn percent(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_percent_encoded_for_the_header() {
        assert_eq!(percent("Rechnung März \"1\".pdf"), "Rechnung%20M%C3%A4rz%20%221%22.pdf");
        assert_eq!(percent("a\r\nb.pdf"), "a%0D%0Ab.pdf");
    }

    #[test]
    fn a_retried_message_keeps_its_attachment_id() {
        let c = ConversationId::from_uuid(Uuid::new_v4());
        assert_eq!(attachment_id(c, "m-1"), attachment_id(c, "m-1"));
        assert_ne!(attachment_id(c, "m-1"), attachment_id(c, "m-2"));
        assert_ne!(attachment_id(c, "m-1"), attachment_id(ConversationId::from_uuid(Uuid::new_v4()), "m-1"));
    }
}
