//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json`. A committed snapshot (`docs/openapi.json`) is compared by a test so
//! every API change is reviewed; regenerate it with `UPDATE_SNAPSHOTS=1 cargo test -p parley-server openapi`.

use crate::api::{
    access, agent, agent_controls, attachments, calendars, config, direct, health, parameters, reports, skills,
    system_messages, tenants, widget, workflows, wrap_up,
};
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The generated document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Parley API", version = "1", description = "Contact-center chat server: configuration, widget and agent APIs."),
    paths(
        health::healthz, health::readyz,
        tenants::create_tenant, tenants::list_tenants,
        config::get_tenant, config::create_api_key,
        config::create_org_unit, config::list_org_units, config::get_org_unit,
        config::create_user, config::list_users, config::get_user,
        skills::create_skill, skills::list_skills, skills::delete_skill, skills::get_user_skills, skills::put_user_skills,
        workflows::create_workflow, workflows::list_workflows, workflows::get_workflow, workflows::put_draft,
        workflows::publish, workflows::list_versions, workflows::get_version, workflows::restore_version,
        workflows::used_by, workflows::simulate,
        parameters::create_parameter, parameters::list_parameters, parameters::get_parameter,
        parameters::patch_parameter, parameters::delete_parameter,
        calendars::create_calendar, calendars::list_calendars, calendars::get_calendar, calendars::put_calendar,
        calendars::delete_calendar,
        reports::user_sessions, reports::service_sessions, reports::wrap_ups,
        config::create_service, config::list_services, config::get_service, config::patch_service,
        config::list_members, config::put_member, config::delete_member, config::get_snippet,
        direct::get_user_snippet, direct::put_direct_chat, direct::regenerate_service_snippet,
        direct::regenerate_user_snippet,
        config::get_conversation, config::get_conversation_log, config::get_conversation_workflow, config::put_preferred_users,
        widget::start_conversation, widget::visitor_log, widget::transcript, access::widget_access,
        attachments::visitor_upload, attachments::agent_upload, attachments::visitor_download,
        attachments::agent_download, attachments::admin_download,
        access::create_template, access::list_templates, access::get_template, access::put_template,
        access::delete_template, system_messages::create, system_messages::list, system_messages::get,
        system_messages::put, system_messages::delete,
        wrap_up::create_code, wrap_up::list_codes, wrap_up::get_code, wrap_up::put_code, wrap_up::delete_code,
        wrap_up::get_wrap_up, wrap_up::put_wrap_up,
        agent::login, agent::logout, agent::me, agent::history,
        agent_controls::state, agent_controls::set_presence, agent_controls::accept, agent_controls::decline,
        agent_controls::end_chat, agent_controls::end_acw, agent_controls::extend_acw, agent_controls::reset_rona,
        agent_controls::services, agent_controls::set_active,
    ),
    modifiers(&Security),
    tags(
        (name = "platform", description = "Platform administration (bootstrap token)"),
        (name = "tenant", description = "Tenant configuration (tenant admin API key)"),
        (name = "workflows", description = "Workflows, versions, the simulator, custom parameters and opening-hours calendars (tenant admin API key)"),
        (name = "reports", description = "Reporting facts: user sessions and service sessions (tenant admin API key)"),
        (name = "widget", description = "Visitor side of the chat widget"),
        (name = "agent", description = "Agent sign-in and data"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        c.add_security_scheme("platform_token", bearer());
        c.add_security_scheme("api_key", bearer());
        c.add_security_scheme("visitor_token", bearer());
        c.add_security_scheme(
            "agent_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("parley_session"))),
        );
    }
}

/// The document as served.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_snapshot_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let now = document().to_pretty_json().unwrap() + "\n";
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == now,
            "docs/openapi.json is stale: run UPDATE_SNAPSHOTS=1 cargo test -p parley-server openapi"
        );
    }
}
