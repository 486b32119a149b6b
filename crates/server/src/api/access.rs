//! Domain templates and the widget's website check (spec V6, E3). A service with Restrict
//! Access on serves its widget only to the origins of its linked templates: the loader asks
//! `GET /api/v1/widget/access` from the host page (the browser sets `Origin`), the chat frame
//! may only be framed by those origins (`frame-ancestors`), and the widget API and visitor
//! socket refuse requests from any other origin.

use super::{found, ou_or_root};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_domain::access::origin_allowed;
use parley_domain::{Conversation, DomainTemplate, DomainTemplateId, NewDomainTemplate, TenantId, WidgetAccess};
use serde::Deserialize;
use uuid::Uuid;

/// Creates a domain template.
#[utoipa::path(post, path = "/api/v1/domain-templates", tag = "tenant", security(("api_key" = [])),
    request_body = NewDomainTemplate, responses((status = 201, body = DomainTemplate), (status = 422, body = Problem)))]
pub async fn create_template(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewDomainTemplate>,
) -> ApiResult<(StatusCode, Json<DomainTemplate>)> {
    let input = input.validate()?;
    let ou_id = ou_or_root(&state, admin.tenant_id, input.ou_id, "/ou_id").await?;
    let t = DomainTemplate {
        id: DomainTemplateId::from_uuid(Uuid::now_v7()),
        tenant_id: admin.tenant_id,
        ou_id,
        name: input.name,
        origins: input.origins,
        created_at: state.clock.now(),
    };
    state.store.create_domain_template(&t).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Lists the tenant's domain templates.
#[utoipa::path(get, path = "/api/v1/domain-templates", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = Vec<DomainTemplate>), (status = 401, body = Problem)))]
pub async fn list_templates(admin: TenantAdmin, State(state): State<AppState>) -> ApiResult<Json<Vec<DomainTemplate>>> {
    Ok(Json(state.store.list_domain_templates(admin.tenant_id).await?))
}

/// One domain template.
#[utoipa::path(get, path = "/api/v1/domain-templates/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = DomainTemplate), (status = 404, body = Problem)))]
pub async fn get_template(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<DomainTemplate>> {
    found(state.store.get_domain_template(admin.tenant_id, DomainTemplateId::from_uuid(id)).await, "domain template")
        .map(Json)
}

/// Replaces a template's name and origins; services using it follow at once.
#[utoipa::path(put, path = "/api/v1/domain-templates/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), request_body = NewDomainTemplate,
    responses((status = 200, body = DomainTemplate), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_template(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewDomainTemplate>,
) -> ApiResult<Json<DomainTemplate>> {
    let input = input.validate()?;
    let id = DomainTemplateId::from_uuid(id);
    let mut t = found(state.store.get_domain_template(admin.tenant_id, id).await, "domain template")?;
    t.name = input.name;
    t.origins = input.origins;
    state.store.update_domain_template(&t).await?;
    Ok(Json(t))
}

/// Deletes a template no service or personal snippet links (409 `template_in_use` otherwise).
#[utoipa::path(delete, path = "/api/v1/domain-templates/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_template(
    admin: TenantAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let id = DomainTemplateId::from_uuid(id);
    found(state.store.get_domain_template(admin.tenant_id, id).await, "domain template")?;
    let services = state.store.list_services(admin.tenant_id).await?;
    if let Some(s) = services.iter().find(|s| s.access.domain_template_ids.contains(&id)) {
        return Err(ApiError::conflict("template_in_use", format!("service '{}' links this template", s.name)));
    }
    let users = state.store.list_users(admin.tenant_id).await?;
    if let Some(u) = users.iter().find(|u| u.direct.settings.access.domain_template_ids.contains(&id)) {
        let detail = format!("the personal snippet of '{}' links this template", u.display_name);
        return Err(ApiError::conflict("template_in_use", detail));
    }
    found(state.store.delete_domain_template(admin.tenant_id, id).await, "domain template")?;
    Ok(StatusCode::NO_CONTENT)
}

/// A service may only link the tenant's own templates.
///
/// # Errors
/// `unknown_reference` at the template's path.
pub async fn check_access_refs(state: &AppState, tenant: TenantId, access: &WidgetAccess) -> ApiResult<()> {
    for (i, id) in access.domain_template_ids.iter().enumerate() {
        super::referenced(
            state.store.get_domain_template(tenant, *id).await,
            &format!("/access/domain_template_ids/{i}"),
            "domain template",
        )?;
    }
    Ok(())
}

/// The origins allowed to use a widget (a service's or a user's personal one); `None` when it
/// is not restricted.
///
/// # Errors
/// Store failures.
pub async fn allowed_origins(
    state: &AppState,
    tenant: TenantId,
    access: &WidgetAccess,
) -> ApiResult<Option<Vec<String>>> {
    if !access.restrict_access {
        return Ok(None);
    }
    let mut origins = Vec::new();
    for id in &access.domain_template_ids {
        match state.store.get_domain_template(tenant, *id).await {
            Ok(t) => origins.extend(t.origins),
            Err(parley_store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(origins))
}

fn refused(origin: Option<&str>) -> ApiError {
    ApiError::forbidden(
        "origin_not_allowed",
        match origin {
            Some(o) => format!("this chat is not available on {o}"),
            None => "this chat is only available on its own websites".to_owned(),
        },
    )
}

/// Refuses a widget request from a website the widget does not allow. Parley's own origin
/// (the chat frame, which browsers only show on allowed pages) is always allowed, also for a
/// same-origin GET that carries no `Origin` but `Sec-Fetch-Site: same-origin`; any other request
/// without `Origin` is refused when the widget is restricted.
///
/// # Errors
/// `403 origin_not_allowed`.
pub async fn check_origin(
    state: &AppState,
    tenant: TenantId,
    access: &WidgetAccess,
    headers: &HeaderMap,
) -> ApiResult<()> {
    let Some(allowed) = allowed_origins(state, tenant, access).await? else { return Ok(()) };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    // Browsers send no Origin with a same-origin GET (the frame reading its log or a file), but
    // say where a request comes from in Sec-Fetch-Site, which no page script can set.
    let same_origin_fetch = headers.get("sec-fetch-site").is_some_and(|v| v == "same-origin");
    match origin {
        Some(o) if o.eq_ignore_ascii_case(&own_origin(&state.config.public_url)) => Ok(()),
        Some(o) if origin_allowed(&allowed, o) => Ok(()),
        None if same_origin_fetch => Ok(()),
        other => Err(refused(other)),
    }
}

/// The website check for a visitor's request about their conversation: the rules of the
/// widget it started from (its service's, or the personal snippet's user's).
///
/// # Errors
/// `403 origin_not_allowed`, store failures.
pub async fn check_conversation_origin(state: &AppState, c: &Conversation, headers: &HeaderMap) -> ApiResult<()> {
    let access = widget_access_of(state, c).await?;
    check_origin(state, c.tenant_id, &access, headers).await
}

async fn widget_access_of(state: &AppState, c: &Conversation) -> ApiResult<WidgetAccess> {
    Ok(match (c.service_id, c.direct_user_id) {
        (Some(service), _) => state.store.get_service(c.tenant_id, service).await?.access,
        (None, Some(user)) => state.store.get_user(c.tenant_id, user).await?.direct.settings.access,
        (None, None) => WidgetAccess::default(),
    })
}

/// `scheme://host[:port]` of a URL.
#[must_use]
pub fn own_origin(public_url: &str) -> String {
    let (scheme, rest) = public_url.split_once("://").unwrap_or(("http", public_url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// Query of `GET /api/v1/widget/access`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    pub contact_id: String,
    pub widget_key: String,
}

/// Asked by the widget loader from the host page: may this website show the chat? `204` when
/// it may; `403 origin_not_allowed` (readable cross-origin, so the loader can say why) when not.
#[utoipa::path(get, path = "/api/v1/widget/access", tag = "widget", params(AccessQuery),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn widget_access(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AccessQuery>,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let result = async {
        let snippet = super::widget::resolve_snippet(&state, &q.contact_id, &q.widget_key).await?;
        check_origin(&state, snippet.tenant_id, &snippet.access, &headers).await
    }
    .await;
    let mut res = match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    };
    // Echo the caller's origin either way: the answer says nothing a page could not learn by
    // trying, and the loader needs to read the refusal to explain it.
    if let Some(o) = origin {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}
