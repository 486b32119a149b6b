//! Who is calling: the platform admin (bootstrap token), a tenant admin (API key), an agent
//! (session cookie) or a visitor (token bound to one conversation). Every credential is a random
//! secret stored only as a SHA-256 hash (passwords use Argon2id, see `passwords.rs`), and every extractor yields the
//! tenant the caller may touch, so handlers cannot forget it.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};
use parley_domain::{ApiKeyId, ConversationId, TenantId, UserId};
use parley_store::{ApiKeyRecord, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// Name of the agent session cookie.
pub const SESSION_COOKIE: &str = "parley_session";

/// `n` random bytes from the OS generator, hex encoded.
#[must_use]
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Hex SHA-256, for high-entropy secrets (not passwords).
#[must_use]
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Compares without stopping at the first difference.
#[must_use]
pub fn ct_eq(a: &str, b: &str) -> bool {
    ct_eq_bytes(a.as_bytes(), b.as_bytes())
}

/// [`ct_eq`] for bytes.
#[must_use]
pub fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fixed hash to verify against when the user does not exist, so timing does not reveal it.
pub const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2pZxgk9jH6bL7V0VnTqgQ2wJ3zq6kNfIFvT6cKxVWcA";

/// A new tenant admin key: the record to store and the plaintext to show once.
#[must_use]
pub fn mint_api_key(tenant: TenantId, name: &str, now: OffsetDateTime) -> (ApiKeyRecord, String) {
    let id = ApiKeyId::from_uuid(Uuid::now_v7());
    let secret = random_hex(24);
    let plaintext = format!("pk_{}_{secret}", id.0.simple());
    let record = ApiKeyRecord {
        id,
        tenant_id: tenant,
        name: name.to_owned(),
        secret_hash: sha256_hex(&secret),
        created_at: now,
    };
    (record, plaintext)
}

/// A new visitor token for one conversation: the plaintext and the hash to store.
#[must_use]
pub fn mint_visitor_token(tenant: TenantId, conversation: ConversationId) -> (String, String) {
    let secret = random_hex(24);
    (format!("vt_{}_{}_{secret}", tenant.0.simple(), conversation.0.simple()), sha256_hex(&secret))
}

fn parse_visitor_token(token: &str) -> Option<(TenantId, ConversationId, &str)> {
    let rest = token.strip_prefix("vt_")?;
    let mut it = rest.splitn(3, '_');
    let tenant = Uuid::try_parse(it.next()?).ok()?;
    let conv = Uuid::try_parse(it.next()?).ok()?;
    let secret = it.next()?;
    Some((TenantId::from_uuid(tenant), ConversationId::from_uuid(conv), secret))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The value of one cookie of the request.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The platform administrator.
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdmin;

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.config.admin_token.expose();
        match bearer(parts) {
            Some(t) if !expected.is_empty() && ct_eq(&sha256_hex(t), &sha256_hex(expected)) => Ok(Self),
            _ => Err(ApiError::unauthorized("unauthorized", "a platform admin token is required")),
        }
    }
}

/// A tenant administrator, authenticated by an API key.
#[derive(Debug, Clone, Copy)]
pub struct TenantAdmin {
    pub tenant_id: TenantId,
}

impl FromRequestParts<AppState> for TenantAdmin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_api_key", "a valid tenant API key is required");
        let token = bearer(parts).ok_or_else(invalid)?;
        let (id, secret) = token
            .strip_prefix("pk_")
            .and_then(|r| r.split_once('_'))
            .and_then(|(id, s)| Some((ApiKeyId::from_uuid(Uuid::try_parse(id).ok()?), s)))
            .ok_or_else(invalid)?;
        let record = match state.store.find_api_key(id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if ct_eq(&record.secret_hash, &sha256_hex(secret)) {
            Ok(Self { tenant_id: record.tenant_id })
        } else {
            Err(invalid())
        }
    }
}

/// A signed-in agent.
#[derive(Debug, Clone, Copy)]
pub struct Agent {
    pub tenant_id: TenantId,
    pub user_id: UserId,
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let missing = || ApiError::unauthorized("not_signed_in", "sign in to the agent workspace first");
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(missing)?;
        let session = match state.store.find_session(&sha256_hex(token)).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(missing()),
            Err(e) => return Err(e.into()),
        };
        if session.expires_at <= state.clock.now() {
            return Err(ApiError::unauthorized("session_expired", "the sign-in has expired; sign in again"));
        }
        Ok(Self { tenant_id: session.tenant_id, user_id: session.user_id })
    }
}

/// A visitor, holding the token of exactly one conversation.
#[derive(Debug, Clone, Copy)]
pub struct Visitor {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
}

impl Visitor {
    /// Checks a visitor token (from a header or the WebSocket query).
    ///
    /// # Errors
    /// `invalid_token` for anything unknown or wrong, `token_expired` after its lifetime.
    pub async fn authenticate(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_token", "the visitor token is not valid");
        let (tenant, conv, secret) = parse_visitor_token(token).ok_or_else(invalid)?;
        let cred = match state.store.visitor_credential(tenant, conv).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if !ct_eq(&cred.token_hash, &sha256_hex(secret)) {
            return Err(invalid());
        }
        if cred.expires_at <= state.clock.now() {
            return Err(ApiError::unauthorized("token_expired", "the visitor token has expired; start a new chat"));
        }
        Ok(Self { tenant_id: tenant, conversation_id: conv })
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::unauthorized("invalid_token", "a visitor token is required"))?;
        Self::authenticate(state, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_tokens_carry_tenant_and_conversation() {
        let t = TenantId::from_uuid(Uuid::now_v7());
        let c = ConversationId::from_uuid(Uuid::now_v7());
        let (token, hash) = mint_visitor_token(t, c);
        let (pt, pc, secret) = parse_visitor_token(&token).unwrap();
        assert_eq!((pt, pc), (t, c));
        assert_eq!(sha256_hex(secret), hash);
        assert!(parse_visitor_token("vt_nope").is_none());
    }

    #[test]
    fn ct_eq_compares_whole_strings() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"));
    }
}
