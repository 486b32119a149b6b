//! The REST API under `/api/v1`. Handlers are thin: authenticate (extractor), parse strictly,
//! validate in `domain`, check references against the store for the caller's tenant, write.

pub mod access;
pub mod agent;
pub mod agent_controls;
pub mod attachments;
pub mod calendars;
pub mod config;
pub mod direct;
pub mod health;
pub mod parameters;
pub mod reports;
pub mod skills;
pub mod system_messages;
pub mod tenants;
pub mod widget;
pub mod workflows;
pub mod wrap_up;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use parley_domain::{OrgUnitId, TenantId};
use parley_store::StoreError;

/// The organization unit named in an input, or the tenant's root when absent; an id of another
/// tenant is reported as an unknown reference at `path`.
pub async fn ou_or_root(state: &AppState, tenant: TenantId, ou: Option<OrgUnitId>, path: &str) -> ApiResult<OrgUnitId> {
    match ou {
        None => Ok(state.store.get_tenant(tenant).await?.root_ou_id),
        Some(id) => referenced(state.store.get_org_unit(tenant, id).await, path, "organization unit").map(|_| id),
    }
}

/// Maps `NotFound` of an entity named in an input to an unknown-reference error at `path`.
pub fn referenced<T>(r: Result<T, StoreError>, path: &str, what: &str) -> ApiResult<T> {
    r.map_err(|e| match e {
        StoreError::NotFound => ApiError::unknown_reference(path, what),
        other => other.into(),
    })
}

/// Maps `NotFound` to a 404 naming the kind of thing.
pub fn found<T>(r: Result<T, StoreError>, what: &str) -> ApiResult<T> {
    r.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found(what),
        other => other.into(),
    })
}
