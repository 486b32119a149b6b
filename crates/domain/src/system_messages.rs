//! System messages (spec §5): the texts Parley sends by itself to the customer and to the user
//! at a conversation's events, and how the user and the service are named to the customer.
//!
//! One [`SystemMessages`] item is written once and linked from services (scope `service`) or
//! from users' personal widgets (scope `direct`). Every text is a placeholder template and may
//! have variants per language; the customer's language picks the variant (exact tag, then its
//! primary subtag, then the item's default language). An event without a text sends nothing,
//! except where Parley has a built-in text (the direct chat's unavailable, declined and missed
//! notes, and the idle warning of the service's routing settings).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::entities::MAX_NAME_CHARS;
use crate::error::ValidationErrors;
use crate::ids::{OrgUnitId, SystemMessagesId, TenantId};
use crate::template::{Channel, Lookup, PlaceholderKey, SystemField, Template, validate_template};
use crate::validate::required_text;

/// Longest text of one event and language, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Most texts (events × languages) one item holds.
pub const MAX_TEXTS: usize = 500;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The language of an item created without one.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Whether an item is for service chats or for direct (personal widget) chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageScope {
    Service,
    Direct,
}

/// Who reads a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The agent (user), in the workspace: never shown to the customer.
    User,
    /// The customer: a system message in the conversation's log, which the agent also sees.
    Customer,
}

/// A moment Parley may send a text at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum SystemEvent {
    /// The chat is offered to the user (shown on the offer).
    #[serde(rename = "user.incoming")]
    UserIncoming,
    /// The user accepted it.
    #[serde(rename = "user.accepted")]
    UserAccepted,
    /// The customer left or the system closed the chat.
    #[serde(rename = "user.ended")]
    UserEnded,
    /// The user ended the chat.
    #[serde(rename = "user.terminated")]
    UserTerminated,
    /// The user let an offer run out (redirect on no answer).
    #[serde(rename = "user.rona")]
    UserRona,
    /// The chat is being offered (a direct chat's invitation, or a service chat's offer).
    #[serde(rename = "customer.incoming")]
    CustomerIncoming,
    /// A user accepted.
    #[serde(rename = "customer.connected")]
    CustomerConnected,
    /// The user ended the chat.
    #[serde(rename = "customer.ended")]
    CustomerEnded,
    /// The chat entered a queue; `$(Queue.Position)` is its place.
    #[serde(rename = "customer.queued")]
    CustomerQueued,
    /// Its place in the queue changed.
    #[serde(rename = "customer.position_changed")]
    CustomerPositionChanged,
    /// The service's opening hours say closed (a Check Opening Hours activity left by its
    /// closed or holiday exit).
    #[serde(rename = "customer.closed_hours")]
    CustomerClosedHours,
    /// It waited as long as its Queue Task allows.
    #[serde(rename = "customer.limit_reached")]
    CustomerLimitReached,
    /// A workflow moved it to another service.
    #[serde(rename = "customer.transferred")]
    CustomerTransferred,
    /// The customer has been silent; the chat closes unless they write.
    #[serde(rename = "customer.idle_warning")]
    CustomerIdleWarning,
    /// The chat was closed because the customer stayed silent.
    #[serde(rename = "customer.idle_closed")]
    CustomerIdleClosed,
    /// A direct chat's user cannot be reached (off, offline, no workspace open).
    #[serde(rename = "customer.unavailable")]
    CustomerUnavailable,
    /// A direct chat's user declined.
    #[serde(rename = "customer.declined")]
    CustomerDeclined,
    /// A direct chat's user did not answer in time.
    #[serde(rename = "customer.missed")]
    CustomerMissed,
}

impl SystemEvent {
    pub const ALL: [Self; 18] = [
        Self::UserIncoming,
        Self::UserAccepted,
        Self::UserEnded,
        Self::UserTerminated,
        Self::UserRona,
        Self::CustomerIncoming,
        Self::CustomerConnected,
        Self::CustomerEnded,
        Self::CustomerQueued,
        Self::CustomerPositionChanged,
        Self::CustomerClosedHours,
        Self::CustomerLimitReached,
        Self::CustomerTransferred,
        Self::CustomerIdleWarning,
        Self::CustomerIdleClosed,
        Self::CustomerUnavailable,
        Self::CustomerDeclined,
        Self::CustomerMissed,
    ];

    #[must_use]
    pub fn audience(self) -> Audience {
        match self {
            Self::UserIncoming | Self::UserAccepted | Self::UserEnded | Self::UserTerminated | Self::UserRona => {
                Audience::User
            }
            _ => Audience::Customer,
        }
    }

    /// Whether the event can happen in chats of `scope`: direct chats have no queue, workflow
    /// or redistribution; service chats are never declined or missed as a whole.
    #[must_use]
    pub fn happens_in(self, scope: MessageScope) -> bool {
        let service_only = matches!(
            self,
            Self::UserRona
                | Self::CustomerQueued
                | Self::CustomerPositionChanged
                | Self::CustomerClosedHours
                | Self::CustomerLimitReached
                | Self::CustomerTransferred
        );
        let direct_only = matches!(self, Self::CustomerUnavailable | Self::CustomerDeclined | Self::CustomerMissed);
        match scope {
            MessageScope::Service => !direct_only,
            MessageScope::Direct => !service_only,
        }
    }

    /// The spelling used in the API, e.g. `customer.connected`.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::UserIncoming => "user.incoming",
            Self::UserAccepted => "user.accepted",
            Self::UserEnded => "user.ended",
            Self::UserTerminated => "user.terminated",
            Self::UserRona => "user.rona",
            Self::CustomerIncoming => "customer.incoming",
            Self::CustomerConnected => "customer.connected",
            Self::CustomerEnded => "customer.ended",
            Self::CustomerQueued => "customer.queued",
            Self::CustomerPositionChanged => "customer.position_changed",
            Self::CustomerClosedHours => "customer.closed_hours",
            Self::CustomerLimitReached => "customer.limit_reached",
            Self::CustomerTransferred => "customer.transferred",
            Self::CustomerIdleWarning => "customer.idle_warning",
            Self::CustomerIdleClosed => "customer.idle_closed",
            Self::CustomerUnavailable => "customer.unavailable",
            Self::CustomerDeclined => "customer.declined",
            Self::CustomerMissed => "customer.missed",
        }
    }
}

/// How the user who answers is named to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentName {
    /// Not at all: the customer reads "Agent" (service items only).
    Hidden,
    /// Their display name in the directory.
    #[default]
    DisplayName,
    /// A template, e.g. `$(User.FirstName) from $(Service.Name)`.
    Custom { template: String },
}

/// How the service is named to the customer (the widget's title and `$(Service.DisplayName)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceName {
    /// The name of the service the chat started in, even after transfers (a front desk that
    /// hands over to internal services keeps its own name).
    #[default]
    InitialServiceName,
    /// The name of the service the chat is in now.
    CurrentServiceName,
    /// A fixed text.
    Custom { text: String },
}

/// One text of one event in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventText {
    pub event: SystemEvent,
    /// A language tag such as `en`, `de` or `pt-BR`; the item's default language when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// A placeholder template.
    pub text: String,
}

/// A stored system messages item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemMessages {
    pub id: SystemMessagesId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    #[serde(flatten)]
    pub content: SystemMessagesContent,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What an administrator writes: everything of an item but its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemMessagesContent {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub scope: MessageScope,
    #[serde(default)]
    pub agent_name: AgentName,
    #[serde(default)]
    pub service_name: ServiceName,
    /// The language used when the customer's has no variant.
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Texts by event and language; each event and language at most once.
    #[serde(default)]
    pub texts: Vec<EventText>,
}

fn default_language() -> String {
    DEFAULT_LANGUAGE.to_owned()
}

/// Input of `POST /api/v1/system-messages` and `PUT /api/v1/system-messages/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSystemMessages {
    /// Organization unit; the tenant root when absent (ignored on update).
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    #[serde(flatten)]
    pub content: SystemMessagesContent,
}

/// `xx`, `xxx` or either with subtags (`pt-BR`, `zh-Hant-TW`), normalised to the usual case
/// (language lowercase, region uppercase); `None` when it is not such a tag.
#[must_use]
pub fn normalize_language(raw: &str) -> Option<String> {
    let mut parts = raw.trim().split(['-', '_']);
    let primary = parts.next()?;
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut tag = primary.to_ascii_lowercase();
    for p in parts {
        if !(2..=8).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        tag.push('-');
        tag.push_str(&match p.len() {
            2 => p.to_ascii_uppercase(),
            4 => {
                let mut s = p[..1].to_ascii_uppercase();
                s.push_str(&p[1..].to_ascii_lowercase());
                s
            }
            _ => p.to_ascii_lowercase(),
        });
    }
    Some(tag)
}

impl SystemMessagesContent {
    /// Checks and normalises an item: names, language tags, each text a valid template, each
    /// event allowed in the scope and set once per language.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self, known_parameters: &dyn Fn(&str) -> bool) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        self.description = self.description.trim().to_owned();
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            e.push("/description", "too_long", format!("must be at most {MAX_DESCRIPTION_CHARS} characters"));
        }
        match normalize_language(&self.default_language) {
            Some(l) => self.default_language = l,
            None => e.push("/default_language", "invalid_language", "a language tag such as en, de or pt-BR"),
        }
        match &self.agent_name {
            AgentName::Hidden if self.scope == MessageScope::Direct => {
                e.push("/agent_name/mode", "not_in_scope", "a personal widget always names its user");
            }
            AgentName::Custom { template } => {
                let t = required_text(&mut e, "/agent_name/template", template, MAX_NAME_CHARS);
                validate_template(&mut e, "/agent_name/template", &t, known_parameters);
                self.agent_name = AgentName::Custom { template: t };
            }
            _ => {}
        }
        if let ServiceName::Custom { text } = &self.service_name {
            self.service_name =
                ServiceName::Custom { text: required_text(&mut e, "/service_name/text", text, MAX_NAME_CHARS) };
        }
        if self.texts.len() > MAX_TEXTS {
            e.push("/texts", "too_many", format!("at most {MAX_TEXTS} texts"));
            return e.into_result(self);
        }
        let mut seen = BTreeMap::new();
        for (i, t) in self.texts.iter_mut().enumerate() {
            let at = format!("/texts/{i}");
            if !t.event.happens_in(self.scope) {
                e.push(
                    format!("{at}/event"),
                    "not_in_scope",
                    format!("{} does not happen in this scope", t.event.key()),
                );
            }
            let language = match t.language.as_deref().map(normalize_language) {
                None => Some(self.default_language.clone()),
                Some(Some(l)) => Some(l),
                Some(None) => {
                    e.push(format!("{at}/language"), "invalid_language", "a language tag such as en, de or pt-BR");
                    None
                }
            };
            t.text = required_text(&mut e, &format!("{at}/text"), &t.text, MAX_TEXT_CHARS);
            validate_template(&mut e, &format!("{at}/text"), &t.text, known_parameters);
            if let Some(l) = language {
                if let Some(first) = seen.insert((t.event, l.clone()), i) {
                    e.push(
                        format!("{at}/language"),
                        "duplicate",
                        format!("the same event and language as /texts/{first}"),
                    );
                }
                t.language = Some(l);
            }
        }
        e.into_result(self)
    }

    /// The text of `event` in `language` (or its primary language, or the default language).
    #[must_use]
    pub fn text_for(&self, event: SystemEvent, language: Option<&str>) -> Option<&str> {
        let of = |lang: &str| {
            self.texts.iter().find(|t| t.event == event && t.language.as_deref() == Some(lang)).map(|t| t.text.as_str())
        };
        let wanted = language.and_then(normalize_language);
        let primary = wanted.as_deref().and_then(|w| w.split('-').next()).map(str::to_owned);
        wanted
            .as_deref()
            .and_then(of)
            .or_else(|| primary.as_deref().and_then(of))
            .or_else(|| of(&self.default_language))
    }
}

/// The facts a conversation's texts are rendered from: system messages, and the workflow's own
/// messages (the engine fills them from the same conversation).
#[derive(Debug, Clone, Copy)]
pub struct MessageFacts<'a> {
    pub conversation: &'a crate::Conversation,
    /// The service the chat is in now, if any.
    pub service_name: Option<&'a str>,
    /// The service as the customer reads it (the item's service name setting).
    pub service_display_name: Option<&'a str>,
    /// The service it started in (front desk), if any.
    pub initial_service_name: Option<&'a str>,
    /// The user it is offered to or connected with.
    pub user_name: Option<&'a str>,
    pub queue_position: Option<u32>,
    pub available_users: Option<u32>,
    pub parameters: Option<&'a BTreeMap<String, String>>,
    pub parameter_defaults: Option<&'a BTreeMap<String, String>>,
}

impl Lookup for MessageFacts<'_> {
    fn get(&self, key: &PlaceholderKey) -> Option<String> {
        let c = self.conversation;
        match key {
            PlaceholderKey::Parameter(id) => self.parameters.and_then(|p| p.get(id).cloned()),
            PlaceholderKey::CustomerCustomField(_) => None,
            PlaceholderKey::System(field) => match field {
                SystemField::TaskId => Some(c.id.to_string()),
                SystemField::TaskCreated => c.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                SystemField::TaskInitialMessage => c.first_message.clone(),
                SystemField::CustomerDisplayName => Some(c.customer.display_name.clone()),
                SystemField::CustomerFirstName => c.customer.display_name.split_whitespace().next().map(str::to_owned),
                SystemField::CustomerEmail | SystemField::CustomerIdentifier => Some(c.customer.email.clone()),
                SystemField::ServiceName => self.service_name.map(str::to_owned),
                SystemField::ServiceDisplayName => self.service_display_name.or(self.service_name).map(str::to_owned),
                SystemField::ServiceInitialName => self.initial_service_name.or(self.service_name).map(str::to_owned),
                SystemField::UserDisplayName => self.user_name.map(str::to_owned),
                SystemField::UserFirstName => {
                    self.user_name.and_then(|n| n.split_whitespace().next()).map(str::to_owned)
                }
                SystemField::QueuePosition => self.queue_position.map(|p| p.to_string()),
                SystemField::ServiceAvailableUsers => self.available_users.map(|p| p.to_string()),
                _ => None,
            },
        }
    }

    fn parameter_default(&self, id: &str) -> Option<String> {
        self.parameter_defaults.and_then(|d| d.get(id).cloned())
    }
}

/// Renders a template text; an unparsable one (validation rules that out) is sent as written.
#[must_use]
pub fn render(text: &str, facts: &MessageFacts<'_>) -> String {
    match Template::parse(text) {
        Ok(t) => t.render(facts, Channel::Web),
        Err(_) => text.to_owned(),
    }
}

/// The name the customer reads for the user: as the item says, else the display name.
#[must_use]
pub fn agent_name_for_customer(item: Option<&SystemMessagesContent>, facts: &MessageFacts<'_>) -> String {
    let display = facts.user_name.unwrap_or_default().to_owned();
    match item.map(|i| &i.agent_name) {
        None | Some(AgentName::DisplayName) => display,
        Some(AgentName::Hidden) => String::new(),
        Some(AgentName::Custom { template }) => {
            let shown = render(template, facts);
            if shown.trim().is_empty() { display } else { shown.trim().to_owned() }
        }
    }
}

/// The service name the customer reads.
#[must_use]
pub fn service_name_for_customer(item: Option<&SystemMessagesContent>, initial: &str, current: &str) -> String {
    match item.map(|i| &i.service_name) {
        None | Some(ServiceName::InitialServiceName) => initial.to_owned(),
        Some(ServiceName::CurrentServiceName) => current.to_owned(),
        Some(ServiceName::Custom { text }) => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conversation, ConversationId, ConversationStatus, Customer, ServiceId};
    use serde_json::json;

    fn content(v: serde_json::Value) -> SystemMessagesContent {
        serde_json::from_value(v).unwrap()
    }

    fn no_parameters(_: &str) -> bool {
        false
    }

    fn conversation() -> Conversation {
        Conversation {
            id: ConversationId::from_uuid(uuid::Uuid::nil()),
            tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
            service_id: Some(ServiceId::from_uuid(uuid::Uuid::nil())),
            workflow_id: None,
            workflow_version: None,
            direct_user_id: None,
            status: ConversationStatus::Queued,
            customer: Customer {
                display_name: "Tess Taylor".into(),
                email: "tess@example.com".into(),
                privacy_consent: true,
                language: None,
            },
            first_message: Some("Hi".into()),
            agent_id: None,
            last_seq: 0,
            created_at: time::macros::datetime!(2026-01-05 09:00 UTC),
            ended_at: None,
            outcome: None,
            outcome_reason: None,
            agent_alias: None,
            wrap_up: None,
        }
    }

    fn facts(c: &Conversation) -> MessageFacts<'_> {
        MessageFacts {
            conversation: c,
            service_name: Some("Billing"),
            service_display_name: Some("Front desk"),
            initial_service_name: Some("Front desk"),
            user_name: Some("Ada Lovelace"),
            queue_position: Some(3),
            available_users: Some(0),
            parameters: None,
            parameter_defaults: None,
        }
    }

    #[test]
    fn a_text_is_found_in_the_customer_language_then_its_primary_language_then_the_default() {
        let item = content(json!({"name": "Texts", "scope": "service", "default_language": "en", "texts": [
            {"event": "customer.connected", "text": "Hello"},
            {"event": "customer.connected", "language": "de", "text": "Hallo"},
            {"event": "customer.connected", "language": "pt-br", "text": "Olá"}
        ]}))
        .validate(&no_parameters)
        .unwrap();
        let connected = SystemEvent::CustomerConnected;
        assert_eq!(item.text_for(connected, Some("de-CH")), Some("Hallo"));
        assert_eq!(item.text_for(connected, Some("pt-BR")), Some("Olá"));
        assert_eq!(item.text_for(connected, Some("fr")), Some("Hello"));
        assert_eq!(item.text_for(connected, None), Some("Hello"));
        assert_eq!(item.text_for(SystemEvent::CustomerEnded, Some("de")), None);
        assert_eq!(item.texts[2].language.as_deref(), Some("pt-BR"), "tags are normalised");
    }

    #[test]
    fn validation_reports_every_broken_rule_with_its_path() {
        let e = content(json!({"name": " ", "scope": "direct", "default_language": "english",
            "agent_name": {"mode": "hidden"}, "texts": [
            {"event": "customer.queued", "text": "You are $(Queue.Position)"},
            {"event": "customer.connected", "language": "x1", "text": "$(Nope.Field)"},
            {"event": "customer.ended", "text": "Bye"},
            {"event": "customer.ended", "language": "en", "text": "Bye again"}
        ]}))
        .validate(&no_parameters)
        .unwrap_err();
        let got: Vec<(&str, &str)> = e.0.iter().map(|f| (f.path.as_str(), f.code)).collect();
        assert!(got.contains(&("/name", "required")), "{got:?}");
        assert!(got.contains(&("/default_language", "invalid_language")), "{got:?}");
        assert!(got.contains(&("/agent_name/mode", "not_in_scope")), "{got:?}");
        assert!(got.contains(&("/texts/0/event", "not_in_scope")), "{got:?}");
        assert!(got.contains(&("/texts/1/language", "invalid_language")), "{got:?}");
        assert!(got.iter().any(|(p, _)| *p == "/texts/1/text"), "{got:?}");
        // The default language failed, so the two `ended` texts cannot be compared.
        let ok = content(json!({"name": "x", "scope": "service", "texts": [
            {"event": "customer.ended", "text": "Bye"},
            {"event": "customer.ended", "language": "EN", "text": "Bye again"}
        ]}))
        .validate(&no_parameters)
        .unwrap_err();
        assert_eq!((ok.0[0].path.as_str(), ok.0[0].code), ("/texts/1/language", "duplicate"));
    }

    #[test]
    fn texts_are_rendered_with_the_conversation_facts() {
        let c = conversation();
        let f = facts(&c);
        assert_eq!(
            render(
                "$(Customer.FirstName), you are number $(Queue.Position) for $(Service.DisplayName) ($(Service.Name))",
                &f
            ),
            "Tess, you are number 3 for Front desk (Billing)"
        );
    }

    #[test]
    fn the_agent_is_named_as_the_item_says() {
        let c = conversation();
        let f = facts(&c);
        let with = |v: serde_json::Value| content(json!({"name": "x", "scope": "service", "agent_name": v}));
        assert_eq!(agent_name_for_customer(None, &f), "Ada Lovelace");
        assert_eq!(agent_name_for_customer(Some(&with(json!({"mode": "hidden"}))), &f), "");
        let custom = with(json!({"mode": "custom", "template": "$(User.FirstName) from $(Service.Name)"}));
        assert_eq!(agent_name_for_customer(Some(&custom), &f), "Ada from Billing");
        let blank = with(json!({"mode": "custom", "template": "$(Service.UPN)"}));
        assert_eq!(agent_name_for_customer(Some(&blank), &f), "Ada Lovelace", "never an empty custom name");
        let svc = with(json!({"mode": "display_name"}));
        assert_eq!(service_name_for_customer(Some(&svc), "Front desk", "Billing"), "Front desk");
        let cur = content(json!({"name": "x", "scope": "service", "service_name": {"mode": "current_service_name"}}));
        assert_eq!(service_name_for_customer(Some(&cur), "Front desk", "Billing"), "Billing");
    }

    #[test]
    fn every_event_has_its_key_as_its_json_spelling() {
        for e in SystemEvent::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), json!(e.key()));
        }
        assert!(!SystemEvent::CustomerDeclined.happens_in(MessageScope::Service));
        assert!(!SystemEvent::UserRona.happens_in(MessageScope::Direct));
        assert!(SystemEvent::CustomerConnected.happens_in(MessageScope::Direct));
    }

    #[test]
    fn language_tags_are_normalised_or_refused() {
        assert_eq!(normalize_language("DE_ch").as_deref(), Some("de-CH"));
        assert_eq!(normalize_language("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(normalize_language("e"), None);
        assert_eq!(normalize_language("en-"), None);
        assert_eq!(normalize_language("<script>"), None);
    }
}
