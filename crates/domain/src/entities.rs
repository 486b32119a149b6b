//! Configuration entities of a tenant and the validated inputs that create them.
//!
//! Inputs (`New*`) deny unknown fields, so a typo in an API call is an error rather than silently
//! ignored. `validate` returns every broken rule at once.

use crate::error::ValidationErrors;
use crate::ids::{CalendarId, OrgUnitId, ServiceId, TenantId, UserId, WorkflowId};
use crate::validate::{email, optional_text, required_text, slug};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Longest display name of anything, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Shortest agent password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Most concurrent chats one agent may be configured for.
pub const MAX_AGENT_CHATS: u32 = 20;

/// A customer company of the installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    /// URL-safe short name, unique in the installation; agents type it at login.
    pub slug: String,
    pub name: String,
    /// The organization unit at the top of the tenant's tree, created with the tenant.
    pub root_ou_id: OrgUnitId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/tenants`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
}

impl NewTenant {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let slug = slug(&mut e, "/slug", &self.slug);
        let name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        e.into_result(Self { slug, name })
    }
}

/// A node in the tenant's organization tree; every configurable entity lives in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgUnit {
    pub id: OrgUnitId,
    pub tenant_id: TenantId,
    pub name: String,
    /// `None` only for the tenant's root unit.
    pub parent_id: Option<OrgUnitId>,
}

/// Input of `POST /api/v1/org-units`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgUnit {
    pub name: String,
    /// Parent unit; the tenant root when absent.
    #[serde(default)]
    pub parent_id: Option<OrgUnitId>,
}

impl NewOrgUnit {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        e.into_result(Self { name, ..self })
    }
}

/// Licences a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Licence {
    ContactCenter,
    InstantMessaging,
    Interact,
}

impl Licence {
    /// The stable text form used in storage and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ContactCenter => "contact_center",
            Self::InstantMessaging => "instant_messaging",
            Self::Interact => "interact",
        }
    }

    /// Parses the stable text form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::ContactCenter, Self::InstantMessaging, Self::Interact].into_iter().find(|l| l.as_str() == s)
    }
}

/// What an agent says about themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Available,
    Busy,
    Away,
    #[default]
    Offline,
}

impl Presence {
    /// The stable text form used in storage and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }

    /// Parses the stable text form.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Available, Self::Busy, Self::Away, Self::Offline].into_iter().find(|p| p.as_str() == s)
    }
}

/// A person who handles chats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub display_name: String,
    /// Login name, unique within the tenant, lowercase.
    pub email: String,
    pub licences: Vec<Licence>,
    /// The user may receive instant-messaging tasks.
    pub im_enabled: bool,
    /// Concurrent chats this user can hold.
    pub max_chats: u32,
    pub presence: Presence,
    /// The user's personal widget: website chats straight to them, without a service.
    pub direct: DirectChat,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl User {
    /// Can receive chats from a service queue: IM enabled and licensed.
    #[must_use]
    pub fn can_take_chats(&self) -> bool {
        self.im_enabled && self.licences.contains(&Licence::InstantMessaging)
    }

    /// Can be invited by their personal snippet: switched on, IM enabled, and licensed for IM and
    /// Interact (spec V17).
    #[must_use]
    pub fn takes_direct_chats(&self) -> bool {
        self.direct.settings.enabled && self.can_take_chats() && self.licences.contains(&Licence::Interact)
    }
}

/// Seconds a user has to answer a direct-chat invitation by default (then it is missed).
pub const DEFAULT_INVITE_SECS: u32 = 60;
/// Bounds of a direct-chat invitation's answer time.
pub const INVITE_SECS_RANGE: std::ops::RangeInclusive<u32> = 5..=600;

/// A user's personal snippet and how it behaves. The credentials are minted by the server and
/// change only when regenerated; the settings are what an administrator edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DirectChat {
    /// Public identifier the personal snippet carries; unique in the installation (services and
    /// users alike).
    pub contact_id: String,
    /// Second half of the snippet's credentials.
    pub widget_key: String,
    #[serde(flatten)]
    pub settings: DirectChatSettings,
}

impl DirectChat {
    /// Freshly minted credentials with the default settings (switched off).
    #[must_use]
    pub fn new(contact_id: impl Into<String>, widget_key: impl Into<String>) -> Self {
        Self { contact_id: contact_id.into(), widget_key: widget_key.into(), settings: DirectChatSettings::default() }
    }
}

/// The editable part of a user's personal widget, `PUT /api/v1/users/{id}/direct-chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DirectChatSettings {
    /// Visitors may start chats with the user from the personal snippet (service chats reach
    /// the user either way).
    pub enabled: bool,
    /// Seconds the user has to answer an invitation before it counts as missed.
    pub invite_secs: u32,
    /// Which websites may use the personal snippet.
    pub access: crate::access::WidgetAccess,
    /// The system messages item (scope `direct`) for the user's direct chats.
    pub system_messages_id: Option<crate::SystemMessagesId>,
    /// A connected customer silent this long gets a warning (0–86400 s; 0: never).
    pub idle_warning_secs: u32,
    /// This long after the warning, a still silent customer's chat is closed (0–86400 s; 0: never).
    pub idle_close_secs: u32,
    /// The warning, as the customer reads it.
    pub idle_warning_text: String,
}

impl Default for DirectChatSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            invite_secs: DEFAULT_INVITE_SECS,
            access: crate::access::WidgetAccess::default(),
            system_messages_id: None,
            idle_warning_secs: 0,
            idle_close_secs: 0,
            idle_warning_text: DEFAULT_IDLE_WARNING.to_owned(),
        }
    }
}

impl DirectChatSettings {
    /// Checks the settings (template references are checked by the shell).
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if !INVITE_SECS_RANGE.contains(&self.invite_secs) {
            e.push(
                "/invite_secs",
                "out_of_range",
                format!("must be between {} and {}", INVITE_SECS_RANGE.start(), INVITE_SECS_RANGE.end()),
            );
        }
        self.access.check(&mut e, "/access");
        check_idle(&mut e, "", self.idle_warning_secs, self.idle_close_secs, &self.idle_warning_text);
        e.into_result(self)
    }
}

/// The customer-inactivity settings (of a service's routing or a personal widget), with paths
/// under `prefix`.
fn check_idle(e: &mut ValidationErrors, prefix: &str, warning_secs: u32, close_secs: u32, text: &str) {
    for (field, v) in [("idle_warning_secs", warning_secs), ("idle_close_secs", close_secs)] {
        if v > 86_400 {
            e.push(format!("{prefix}/{field}"), "out_of_range", "must be 0-86400");
        }
    }
    let mut local = ValidationErrors::default();
    required_text(&mut local, &format!("{prefix}/idle_warning_text"), text, MAX_MESSAGE_CHARS);
    e.0.extend(local.0);
}

fn default_true() -> bool {
    true
}
fn default_max_chats() -> u32 {
    3
}

/// Input of `POST /api/v1/users`.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Organization unit; the tenant root when absent.
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub display_name: String,
    pub email: String,
    /// Password for the agent workspace; without one the user cannot sign in.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub licences: Vec<Licence>,
    #[serde(default = "default_true")]
    pub im_enabled: bool,
    #[serde(default = "default_max_chats")]
    pub max_chats: u32,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("ou_id", &self.ou_id)
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("licences", &self.licences)
            .field("im_enabled", &self.im_enabled)
            .field("max_chats", &self.max_chats)
            .finish()
    }
}

impl NewUser {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.display_name = required_text(&mut e, "/display_name", &self.display_name, MAX_NAME_CHARS);
        self.email = email(&mut e, "/email", &self.email);
        if let Some(p) = &self.password {
            let n = p.chars().count();
            if n < MIN_PASSWORD_CHARS {
                e.push("/password", "too_short", format!("must be at least {MIN_PASSWORD_CHARS} characters"));
            } else if n > 256 {
                e.push("/password", "too_long", "must be at most 256 characters");
            }
        }
        if !(1..=MAX_AGENT_CHATS).contains(&self.max_chats) {
            e.push("/max_chats", "out_of_range", format!("must be between 1 and {MAX_AGENT_CHATS}"));
        }
        self.licences.sort_unstable();
        self.licences.dedup();
        e.into_result(self)
    }
}

/// A routing entity that owns a queue of chats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    pub id: ServiceId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    /// The instant-messaging workflow each new chat runs.
    pub workflow_id: WorkflowId,
    /// Public identifier the widget snippet carries; unique in the installation.
    pub contact_id: String,
    /// Second half of the snippet's credentials.
    pub widget_key: String,
    /// Opening hours Check Opening Hours reads first.
    pub primary_calendar_id: Option<CalendarId>,
    /// Consulted where the primary calendar has no period (holidays kept once for many services).
    pub secondary_calendar_id: Option<CalendarId>,
    /// How the distribution engine treats the service's chats.
    pub routing: RoutingSettings,
    /// Which websites may use the service's widget snippet.
    pub access: crate::access::WidgetAccess,
    /// The system messages item (scope `service`) its chats use; Parley's built-in texts when
    /// absent.
    pub system_messages_id: Option<crate::SystemMessagesId>,
    /// The codes its agents choose from to sum up a chat.
    pub codes: crate::ServiceCodes,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A service's distribution settings (spec §4.2). Every field has a default, so a client sends
/// only what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    /// Concurrent IM tasks (offered or connected) of the service, 1–50.
    pub max_tasks: u32,
    /// A waiting chat gains one priority level every this many seconds (1–86400); none: off.
    pub aging_secs: Option<u32>,
    /// Seconds an agent has to answer an offer before it goes to the next (5–600).
    pub rona_secs: u32,
    /// A missed offer flags the agent RONA: no more offers until reset.
    pub persistent_rona: bool,
    /// The RONA flag clears itself after this many seconds (60–86400); none: by hand or offline.
    pub rona_reset_secs: Option<u32>,
    /// After-chat work after each chat, in seconds (0–3600; 0: none).
    pub acw_secs: u32,
    /// Extensions of after-chat work an agent may take (0–10).
    pub acw_max_extensions: u8,
    /// Agents set to Busy still receive this service's chats.
    pub busy_opt_in: bool,
    /// Agents set to Away still receive this service's chats.
    pub away_opt_in: bool,
    /// A returning customer's last agent gets their chat first for this many seconds (0–3600; 0: off).
    pub last_user_secs: u32,
    /// An agent who declined or let an offer run out gets the same chat again only when no one
    /// else can take it, this many seconds after (0–3600; 0: at once).
    pub reoffer_secs: u32,
    /// Skill-based distribution: the levels of the policy, widening over waiting time. Empty:
    /// every active member may take the chats.
    pub policy: Vec<crate::skill::PolicyLevel>,
    /// A connected customer silent this long gets a warning (0–86400 s; 0: never).
    pub idle_warning_secs: u32,
    /// This long after the warning, a still silent customer's chat is closed (0–86400 s; 0: never).
    pub idle_close_secs: u32,
    /// The warning, as the customer reads it.
    pub idle_warning_text: String,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            max_tasks: 50,
            aging_secs: None,
            rona_secs: 30,
            persistent_rona: false,
            rona_reset_secs: None,
            acw_secs: 0,
            acw_max_extensions: 0,
            busy_opt_in: false,
            away_opt_in: false,
            last_user_secs: 0,
            reoffer_secs: 0,
            policy: Vec::new(),
            idle_warning_secs: 0,
            idle_close_secs: 0,
            idle_warning_text: DEFAULT_IDLE_WARNING.to_owned(),
        }
    }
}

/// The inactivity warning when a service sets none.
pub const DEFAULT_IDLE_WARNING: &str = "Are you still there? This chat will close soon if we do not hear from you.";

impl RoutingSettings {
    /// Checks every range, with paths under `prefix` (e.g. `/routing`).
    pub fn check(&self, e: &mut ValidationErrors, prefix: &str) {
        let mut range = |field: &str, v: u32, lo: u32, hi: u32| {
            if !(lo..=hi).contains(&v) {
                e.push(format!("{prefix}/{field}"), "out_of_range", format!("must be {lo}-{hi}"));
            }
        };
        range("max_tasks", self.max_tasks, 1, 50);
        if let Some(a) = self.aging_secs {
            range("aging_secs", a, 1, 86_400);
        }
        range("rona_secs", self.rona_secs, 5, 600);
        if let Some(r) = self.rona_reset_secs {
            range("rona_reset_secs", r, 60, 86_400);
        }
        range("acw_secs", self.acw_secs, 0, 3600);
        range("acw_max_extensions", u32::from(self.acw_max_extensions), 0, 10);
        range("last_user_secs", self.last_user_secs, 0, 3600);
        range("reoffer_secs", self.reoffer_secs, 0, 3600);
        crate::skill::check_policy(e, &format!("{prefix}/policy"), &self.policy);
        check_idle(e, prefix, self.idle_warning_secs, self.idle_close_secs, &self.idle_warning_text);
    }
}

/// A user's membership of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    pub service_id: ServiceId,
    pub user_id: UserId,
    /// Only active members are offered the service's chats.
    pub active: bool,
}

/// Input of a member inside `POST /api/v1/services` or `PUT /api/v1/services/{id}/members/{user}`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub user_id: UserId,
    #[serde(default = "default_true")]
    pub active: bool,
}

/// Input of `POST /api/v1/services`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    /// Organization unit; the tenant root when absent.
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    pub workflow_id: WorkflowId,
    #[serde(default)]
    pub primary_calendar_id: Option<CalendarId>,
    #[serde(default)]
    pub secondary_calendar_id: Option<CalendarId>,
    #[serde(default)]
    pub routing: RoutingSettings,
    #[serde(default)]
    pub access: crate::access::WidgetAccess,
    /// A system messages item of scope `service`.
    #[serde(default)]
    pub system_messages_id: Option<crate::SystemMessagesId>,
    /// Codes of the tenant its agents choose from.
    #[serde(default)]
    pub codes: crate::ServiceCodes,
    #[serde(default)]
    pub members: Vec<NewMember>,
}

impl NewService {
    /// Checks and normalises the input (references are checked by the shell against the store).
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        self.routing.check(&mut e, "/routing");
        self.access.check(&mut e, "/access");
        self.codes.check(&mut e, "/codes");
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].iter().any(|o| o.user_id == m.user_id) {
                e.push(format!("/members/{i}/user_id"), "duplicate", "user is listed twice");
            }
        }
        if self.members.len() > 500 {
            e.push("/members", "too_many", "at most 500 members per request");
        }
        e.into_result(self)
    }
}

/// Input of `PATCH /api/v1/services/{id}`: absent fields stay; a calendar set to `null` is removed.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub workflow_id: Option<WorkflowId>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub primary_calendar_id: Option<Option<CalendarId>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub secondary_calendar_id: Option<Option<CalendarId>>,
    /// Replaces the routing settings (fields left out take their defaults).
    #[serde(default)]
    pub routing: Option<RoutingSettings>,
    /// Replaces the widget access settings.
    #[serde(default)]
    pub access: Option<crate::access::WidgetAccess>,
    /// Links a system messages item (scope `service`); `null` unlinks it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub system_messages_id: Option<Option<crate::SystemMessagesId>>,
    /// Replaces the service's code lists.
    #[serde(default)]
    pub codes: Option<crate::ServiceCodes>,
}

impl ServicePatch {
    /// Applies the patch to `s` after checking it (references are checked by the shell).
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn apply(self, mut s: Service) -> Result<Service, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if let Some(n) = self.name {
            s.name = required_text(&mut e, "/name", &n, MAX_NAME_CHARS);
        }
        if let Some(w) = self.workflow_id {
            s.workflow_id = w;
        }
        if let Some(c) = self.primary_calendar_id {
            s.primary_calendar_id = c;
        }
        if let Some(c) = self.secondary_calendar_id {
            s.secondary_calendar_id = c;
        }
        if let Some(r) = self.routing {
            r.check(&mut e, "/routing");
            s.routing = r;
        }
        if let Some(a) = self.access {
            a.check(&mut e, "/access");
            s.access = a;
        }
        if let Some(m) = self.system_messages_id {
            s.system_messages_id = m;
        }
        if let Some(c) = self.codes {
            c.check(&mut e, "/codes");
            s.codes = c;
        }
        e.into_result(s)
    }
}

/// A field that is present (even as `null`) becomes `Some(value)`; an absent one stays `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Optional free text that is cleaned the same way everywhere.
#[must_use]
pub fn clean_optional(errs: &mut ValidationErrors, path: &str, v: Option<&str>, max: usize) -> Option<String> {
    optional_text(errs, path, v, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(json: &str) -> Result<NewUser, String> {
        serde_json::from_str::<NewUser>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn new_user_refuses_unknown_fields() {
        let err = user(r#"{"display_name":"A","email":"a@b.co","role":"god"}"#).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn new_user_reports_every_broken_rule_with_its_path() {
        let u = user(r#"{"display_name":"","email":"nope","password":"short","max_chats":0}"#).unwrap();
        let errs = u.validate().unwrap_err().0;
        let paths: Vec<_> = errs.iter().map(|e| (e.path.as_str(), e.code)).collect();
        assert_eq!(
            paths,
            [
                ("/display_name", "required"),
                ("/email", "invalid_email"),
                ("/password", "too_short"),
                ("/max_chats", "out_of_range")
            ]
        );
    }

    #[test]
    fn new_user_debug_never_shows_the_password() {
        let u = user(r#"{"display_name":"A","email":"a@b.co","password":"correct horse battery"}"#).unwrap();
        assert!(!format!("{u:?}").contains("horse"));
    }

    #[test]
    fn new_service_refuses_a_member_listed_twice() {
        let id = uuid::Uuid::nil();
        let s: NewService = serde_json::from_value(serde_json::json!({
            "name": "Support", "workflow_id": id,
            "members": [{"user_id": id}, {"user_id": id}]
        }))
        .unwrap();
        let errs = s.validate().unwrap_err().0;
        assert_eq!(errs[0].path, "/members/1/user_id");
    }

    #[test]
    fn licence_and_presence_text_forms_round_trip() {
        for l in [Licence::ContactCenter, Licence::InstantMessaging, Licence::Interact] {
            assert_eq!(Licence::parse(l.as_str()), Some(l));
        }
        for p in [Presence::Available, Presence::Busy, Presence::Away, Presence::Offline] {
            assert_eq!(Presence::parse(p.as_str()), Some(p));
        }
    }
}
