//! Route table and the layers every request passes: body limit, tracing, panic catching (a
//! panic becomes a 500 problem, never a dropped connection), and problem+json for unknown
//! routes and methods.

use crate::api::{
    access, agent, agent_controls, attachments, calendars, config, direct, health, parameters, reports, skills,
    system_messages, tenants, widget, workflows, wrap_up,
};
use crate::error::ApiError;
use crate::extract::MAX_JSON_BYTES;
use crate::state::AppState;
use crate::{openapi, pages, ws};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    // Uploads may be as large as the configured limit (and no larger: the body stops there).
    let upload_limit = DefaultBodyLimit::max(usize::try_from(state.config.attachment_max_bytes).unwrap_or(usize::MAX));
    let uploads = Router::new()
        .route("/api/v1/widget/conversations/{id}/attachments", post(attachments::visitor_upload))
        .route("/api/v1/agent/chats/{id}/attachments", post(attachments::agent_upload))
        .layer(upload_limit);
    let api = Router::new()
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/tenants", post(tenants::create_tenant).get(tenants::list_tenants))
        .route("/api/v1/tenant", get(config::get_tenant))
        .route("/api/v1/api-keys", post(config::create_api_key))
        .route("/api/v1/org-units", post(config::create_org_unit).get(config::list_org_units))
        .route("/api/v1/org-units/{id}", get(config::get_org_unit))
        .route("/api/v1/users", post(config::create_user).get(config::list_users))
        .route("/api/v1/users/{id}", get(config::get_user))
        .route("/api/v1/users/{id}/snippet", get(direct::get_user_snippet))
        .route("/api/v1/users/{id}/snippet/regenerate", post(direct::regenerate_user_snippet))
        .route("/api/v1/users/{id}/direct-chat", put(direct::put_direct_chat))
        .route("/api/v1/users/{id}/skills", get(skills::get_user_skills).put(skills::put_user_skills))
        .route("/api/v1/skills", post(skills::create_skill).get(skills::list_skills))
        .route("/api/v1/skills/{id}", axum::routing::delete(skills::delete_skill))
        .route("/api/v1/workflows", post(workflows::create_workflow).get(workflows::list_workflows))
        .route("/api/v1/workflows/{id}", get(workflows::get_workflow))
        .route("/api/v1/workflows/{id}/draft", put(workflows::put_draft))
        .route("/api/v1/workflows/{id}/publish", post(workflows::publish))
        .route("/api/v1/workflows/{id}/versions", get(workflows::list_versions))
        .route("/api/v1/workflows/{id}/versions/{version}", get(workflows::get_version))
        .route("/api/v1/workflows/{id}/versions/{version}/restore", post(workflows::restore_version))
        .route("/api/v1/workflows/{id}/services", get(workflows::used_by))
        .route("/api/v1/workflows/{id}/simulate", post(workflows::simulate))
        .route("/api/v1/parameters", post(parameters::create_parameter).get(parameters::list_parameters))
        .route(
            "/api/v1/parameters/{id}",
            get(parameters::get_parameter).patch(parameters::patch_parameter).delete(parameters::delete_parameter),
        )
        .route("/api/v1/calendars", post(calendars::create_calendar).get(calendars::list_calendars))
        .route(
            "/api/v1/calendars/{id}",
            get(calendars::get_calendar).put(calendars::put_calendar).delete(calendars::delete_calendar),
        )
        .route("/api/v1/reports/user-sessions", get(reports::user_sessions))
        .route("/api/v1/reports/service-sessions", get(reports::service_sessions))
        .route("/api/v1/reports/wrap-ups", get(reports::wrap_ups))
        .route("/api/v1/codes", post(wrap_up::create_code).get(wrap_up::list_codes))
        .route("/api/v1/codes/{id}", get(wrap_up::get_code).put(wrap_up::put_code).delete(wrap_up::delete_code))
        .route("/api/v1/agent/chats/{id}/wrap-up", get(wrap_up::get_wrap_up).put(wrap_up::put_wrap_up))
        .route("/api/v1/system-messages", post(system_messages::create).get(system_messages::list))
        .route(
            "/api/v1/system-messages/{id}",
            get(system_messages::get).put(system_messages::put).delete(system_messages::delete),
        )
        .route("/api/v1/domain-templates", post(access::create_template).get(access::list_templates))
        .route(
            "/api/v1/domain-templates/{id}",
            get(access::get_template).put(access::put_template).delete(access::delete_template),
        )
        .route("/api/v1/widget/access", get(access::widget_access))
        .route("/api/v1/services", post(config::create_service).get(config::list_services))
        .route("/api/v1/services/{id}", get(config::get_service).patch(config::patch_service))
        .route("/api/v1/services/{id}/members", get(config::list_members))
        .route("/api/v1/services/{id}/members/{user_id}", put(config::put_member).delete(config::delete_member))
        .route("/api/v1/services/{id}/snippet", get(config::get_snippet))
        .route("/api/v1/services/{id}/snippet/regenerate", post(direct::regenerate_service_snippet))
        .route("/api/v1/conversations/{id}", get(config::get_conversation))
        .route("/api/v1/conversations/{id}/log", get(config::get_conversation_log))
        .route("/api/v1/conversations/{id}/workflow", get(config::get_conversation_workflow))
        .route("/api/v1/conversations/{id}/preferred-users", put(config::put_preferred_users))
        .route("/api/v1/widget/conversations", post(widget::start_conversation))
        .route("/api/v1/widget/conversations/{id}/log", get(widget::visitor_log))
        .route("/api/v1/widget/conversations/{id}/transcript", get(widget::transcript))
        .route("/api/v1/widget/conversations/{id}/attachments/{attachment_id}", get(attachments::visitor_download))
        .route("/api/v1/agent/chats/{id}/attachments/{attachment_id}", get(attachments::agent_download))
        .route("/api/v1/conversations/{id}/attachments/{attachment_id}", get(attachments::admin_download))
        .route("/api/v1/agent/login", post(agent::login))
        .route("/api/v1/agent/logout", post(agent::logout))
        .route("/api/v1/agent/me", get(agent::me))
        .route("/api/v1/agent/history", get(agent::history))
        .route("/api/v1/agent/state", get(agent_controls::state))
        .route("/api/v1/agent/presence", put(agent_controls::set_presence))
        .route("/api/v1/agent/offers/{id}/accept", post(agent_controls::accept))
        .route("/api/v1/agent/offers/{id}/decline", post(agent_controls::decline))
        .route("/api/v1/agent/chats/{id}/end", post(agent_controls::end_chat))
        .route("/api/v1/agent/acw/end", post(agent_controls::end_acw))
        .route("/api/v1/agent/acw/extend", post(agent_controls::extend_acw))
        .route("/api/v1/agent/rona/reset", post(agent_controls::reset_rona))
        .route("/api/v1/agent/services", get(agent_controls::services))
        .route("/api/v1/agent/services/{id}/active", put(agent_controls::set_active))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/ws/v1/visitor", get(ws::visitor::upgrade))
        .route("/ws/v1/agent", get(ws::agent::upgrade));
    let pages = Router::new()
        .route("/", get(pages::index))
        .route("/widget.js", get(pages::widget_js))
        .route("/widget/frame", get(pages::frame))
        .route("/widget/frame.js", get(pages::frame_js))
        .route("/widget/i18n.js", get(pages::i18n_js))
        .route("/widget/frame.css", get(pages::frame_css))
        .route("/widget/preview", get(pages::preview))
        .route("/agent/login", get(pages::login))
        .route("/agent/login.js", get(pages::login_js))
        .route("/agent", get(pages::workspace))
        .route("/agent/app.js", get(pages::agent_js))
        .route("/assets/text.js", get(pages::text_js))
        .route("/agent/app.css", get(pages::agent_css))
        .route("/sdk/parley-chat.js", get(pages::sdk_js))
        .route("/sdk/example", get(pages::sdk_example))
        .route("/sdk/example.js", get(pages::sdk_example_js))
        .route("/sdk/example.css", get(pages::sdk_example_css));
    api.layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .merge(uploads)
        .merge(pages)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::cors::widget_cors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not accept that method")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an unexpected error occurred").into_response()
}
