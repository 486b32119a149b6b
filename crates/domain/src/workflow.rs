//! The workflow model: a graph of activity nodes with named exits, typed for instant messaging,
//! and the save-time rules a graph must pass before it can be published.
//!
//! Shape: `definition.start` names the first node; each node has an activity (its kind and
//! properties), an `enabled` flag and `exits` (exit name → target node id). A missing `next`
//! exit ends the workflow (the conversation keeps its state: a queued chat keeps waiting, a
//! connected one keeps chatting); any other unconnected exit is a validation error because
//! taking it at run time would fail the session.
//!
//! Validation (see [`WorkflowDefinition::validate`]) implements spec §3.3 V-1…V-4 and §6.1 V14
//! with a small path analysis: for every node it computes the states a conversation can be in
//! when it arrives (accepted or not, queued or not) over every path from Start, loops included.
//! V-5 (channels), V-6 (licences) and V-7 (references visible from the workflow's organization
//! unit) need facts about services and parameters, so they take them as arguments.

use crate::entities::{Licence, MAX_MESSAGE_CHARS, MAX_NAME_CHARS};
use crate::error::ValidationErrors;
use crate::ids::{OrgUnitId, ServiceId, TenantId, WorkflowId};
use crate::template::Channel;
use crate::validate::required_text;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The exit every single-exit activity uses.
pub const NEXT: &str = "next";
/// Most nodes a workflow may have.
pub const MAX_NODES: usize = 200;
/// Longest a Message may wait before sending, and a Delay may last.
pub const MAX_DELAY_SECS: u32 = 600;
/// Longest any wait for the customer, an HTTP answer or the queue may be configured.
pub const MAX_WAIT_SECS: u32 = 3600;

/// The modality a workflow is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowKind {
    InstantMessaging,
}

/// Distribution priority of a task (spec §4.4), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    /// Always first; can starve the others, meant for emergencies.
    Strict,
}

/// Which service an availability question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(tag = "kind", content = "service_id", rename_all = "snake_case")]
pub enum ServiceTarget {
    /// The service the conversation is in now, so one workflow can serve many services.
    #[default]
    Current,
    Service(ServiceId),
}

/// How a Collect Information answer is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(tag = "kind", content = "pattern", rename_all = "snake_case")]
pub enum AnswerRule {
    /// Any non-empty text.
    #[default]
    Any,
    Email,
    /// Digits with optional `+`, spaces, dashes and parentheses, 5–20 digits.
    Phone,
    /// A decimal number.
    Number,
    /// The whole answer must match this regular expression.
    Regex(String),
}

/// One choice of an Input Customer menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    /// What the customer types, e.g. `1`; also names the exit `option_<key>`.
    pub key: String,
    pub label: String,
}

/// How Check Parameter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    Regex,
    Empty,
    NotEmpty,
    /// Numeric comparisons; a value that is not a number never matches.
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Whether the comparison uses its `value`.
    #[must_use]
    pub const fn takes_value(self) -> bool {
        !matches!(self, Self::Empty | Self::NotEmpty)
    }
    /// Whether the comparison is numeric.
    #[must_use]
    pub const fn is_numeric(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }
}

/// One branch of Check Parameter; the first condition that holds picks its exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The exit taken when the condition holds (unique within the node, not `default`).
    pub exit: String,
    pub op: CompareOp,
    #[serde(default)]
    pub value: String,
    /// Compare text ignoring case (equals, contains, starts_with).
    #[serde(default)]
    pub ignore_case: bool,
}

/// HTTP methods the HTTP Request activity may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// A request header; the value may contain placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderTemplate {
    pub name: String,
    pub value: String,
}

/// Copies one field of a JSON response into a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseMapping {
    /// JSON pointer into the response body, e.g. `/customer/tier`.
    pub pointer: String,
    /// Custom parameter id to store it in.
    pub parameter: String,
}

fn default_answer_timeout() -> u32 {
    120
}
fn default_queue_secs() -> u32 {
    300
}
fn default_http_timeout() -> u32 {
    10
}

/// What a node does, with its properties (spec §3.2; Parley's choices where the spec says [P]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Activity {
    /// Opens the conversation with the customer (the "accepted by system" boundary).
    Accept,
    /// Sends a text (with placeholders) to the customer after an optional delay.
    Message {
        text: String,
        #[serde(default)]
        delay_secs: u32,
    },
    /// Asks a question and stores the next reply in a parameter.
    CollectInformation {
        prompt: String,
        parameter: String,
        #[serde(default)]
        rule: AnswerRule,
        #[serde(default = "default_answer_timeout")]
        timeout_secs: u32,
        /// Extra attempts after an invalid answer before the `invalid` exit.
        #[serde(default)]
        retries: u8,
        /// Sent after an invalid answer when attempts remain.
        #[serde(default)]
        retry_text: Option<String>,
    },
    /// A text menu: the customer answers with an option key; one exit per option.
    InputCustomer {
        prompt: String,
        options: Vec<MenuOption>,
        #[serde(default = "default_answer_timeout")]
        timeout_secs: u32,
        #[serde(default)]
        retries: u8,
        #[serde(default)]
        retry_text: Option<String>,
        /// Also store the chosen key here.
        #[serde(default)]
        parameter: Option<String>,
    },
    /// Writes a value (with placeholders) into a parameter.
    SaveToParameter { parameter: String, value: String },
    /// Hands the conversation to another service, whose own workflow takes over (same unified
    /// conversation); this workflow ends there. Only the `failed` exit continues here.
    Transfer { service_id: ServiceId },
    /// Waits.
    Delay { secs: u32 },
    /// Ends the conversation, optionally with a closing text. When an agent is connected it ends
    /// only the workflow: a workflow must never cut a live chat (spec §2.a step 13).
    Disconnect {
        #[serde(default)]
        text: Option<String>,
    },
    /// Branches on the service's availability right now: `available`, `busy`, `unavailable`.
    AvailabilityRouting {
        #[serde(default)]
        service: ServiceTarget,
    },
    /// Branches on the service's opening-hours category.
    CheckOpeningHours,
    /// Branches on a parameter's value.
    CheckParameter { parameter: String, conditions: Vec<Condition> },
    /// Stores the number of agents who could take a chat now.
    GetAvailableUsers {
        #[serde(default)]
        service: ServiceTarget,
        parameter: String,
    },
    /// Stores the conversation's 1-based queue position (`not_queued` when it is not waiting).
    GetQueuePosition { parameter: String },
    /// Puts the conversation into the service queue and continues at once.
    QueueTask {
        #[serde(default)]
        priority: Option<Priority>,
        /// After this long in the queue the task is `limit_reached` (seen by Check Task).
        #[serde(default = "default_queue_secs")]
        max_queue_secs: u32,
    },
    /// Branches on the task's live state.
    CheckTask,
    /// Withdraws the task from the queue and any offer; must be followed by Disconnect.
    CancelTask,
    /// Sets the task's distribution priority.
    DistributionPriority { priority: Priority },
    /// Calls an HTTP endpoint and maps fields of its JSON answer into parameters.
    HttpRequest {
        method: HttpMethod,
        url: String,
        #[serde(default)]
        headers: Vec<HeaderTemplate>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default = "default_http_timeout")]
        timeout_secs: u32,
        #[serde(default)]
        response: Vec<ResponseMapping>,
    },
}

/// Exit names of the activities with fixed branches.
pub mod exits {
    pub const ANSWERED: &str = "answered";
    pub const TIMEOUT: &str = "timeout";
    pub const INVALID: &str = "invalid";
    pub const SUCCESS: &str = "success";
    pub const FAILED: &str = "failed";
    pub const FAILURE: &str = "failure";
    pub const AVAILABLE: &str = "available";
    pub const BUSY: &str = "busy";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const DEFAULT: &str = "default";
    pub const NOT_QUEUED: &str = "not_queued";
    pub const QUEUED: &str = "queued";
    pub const OFFERING: &str = "offering";
    pub const CONNECTED: &str = "connected";
    pub const LIMIT_REACHED: &str = "limit_reached";
    pub const ENDED: &str = "ended";
    /// Check Opening Hours, one per category, then `default` when the service has no calendar.
    pub const OPENING: [&str; 8] =
        ["open", "closed", "holiday", "special_1", "special_2", "special_3", "special_4", "default"];
}

impl Activity {
    /// The kind's stable name (as in JSON).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Message { .. } => "message",
            Self::CollectInformation { .. } => "collect_information",
            Self::InputCustomer { .. } => "input_customer",
            Self::SaveToParameter { .. } => "save_to_parameter",
            Self::Transfer { .. } => "transfer",
            Self::Delay { .. } => "delay",
            Self::Disconnect { .. } => "disconnect",
            Self::AvailabilityRouting { .. } => "availability_routing",
            Self::CheckOpeningHours => "check_opening_hours",
            Self::CheckParameter { .. } => "check_parameter",
            Self::GetAvailableUsers { .. } => "get_available_users",
            Self::GetQueuePosition { .. } => "get_queue_position",
            Self::QueueTask { .. } => "queue_task",
            Self::CheckTask => "check_task",
            Self::CancelTask => "cancel_task",
            Self::DistributionPriority { .. } => "distribution_priority",
            Self::HttpRequest { .. } => "http_request",
        }
    }

    /// The exits this activity has, by name.
    #[must_use]
    pub fn exit_names(&self) -> Vec<String> {
        use exits::*;
        let fixed: &[&str] = match self {
            Self::Disconnect { .. } => &[],
            Self::CollectInformation { .. } => &[ANSWERED, TIMEOUT, INVALID],
            Self::Transfer { .. } => &[FAILED],
            Self::AvailabilityRouting { .. } => &[AVAILABLE, BUSY, UNAVAILABLE],
            Self::CheckOpeningHours => &OPENING,
            Self::GetQueuePosition { .. } => &[NEXT, NOT_QUEUED],
            Self::CheckTask => &[QUEUED, OFFERING, CONNECTED, LIMIT_REACHED, ENDED],
            Self::HttpRequest { .. } => &[SUCCESS, FAILURE],
            Self::InputCustomer { options, .. } => {
                let mut v: Vec<String> = options.iter().map(|o| option_exit(&o.key)).collect();
                v.extend([TIMEOUT.to_owned(), INVALID.to_owned()]);
                return v;
            }
            Self::CheckParameter { conditions, .. } => {
                let mut v: Vec<String> = conditions.iter().map(|c| c.exit.clone()).collect();
                v.push(DEFAULT.to_owned());
                return v;
            }
            _ => &[NEXT],
        };
        fixed.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The exit a disabled node passes through, if it may be disabled at all.
    #[must_use]
    pub fn pass_through_exit(&self) -> Option<&'static str> {
        match self {
            Self::Message { .. }
            | Self::SaveToParameter { .. }
            | Self::Delay { .. }
            | Self::GetAvailableUsers { .. }
            | Self::DistributionPriority { .. } => Some(NEXT),
            Self::CheckOpeningHours | Self::CheckParameter { .. } => Some(exits::DEFAULT),
            Self::AvailabilityRouting { .. } => Some(exits::AVAILABLE),
            Self::HttpRequest { .. } => Some(exits::FAILURE),
            _ => None,
        }
    }

    /// Needs an earlier Accept on every path from Start (spec §3.3 V-1): everything but the
    /// checks, Transfer, Disconnect and Accept itself.
    #[must_use]
    pub const fn needs_accept(&self) -> bool {
        !matches!(
            self,
            Self::Accept
                | Self::Transfer { .. }
                | Self::Disconnect { .. }
                | Self::AvailabilityRouting { .. }
                | Self::CheckOpeningHours
                | Self::CheckParameter { .. }
                | Self::GetAvailableUsers { .. }
        )
    }

    /// Needs an earlier Queue Task on every path (spec §3.3 V-3).
    #[must_use]
    pub const fn needs_queue(&self) -> bool {
        matches!(self, Self::CheckTask | Self::CancelTask | Self::GetQueuePosition { .. })
    }

    /// Ends the workflow; it has no exits.
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        matches!(self, Self::Disconnect { .. })
    }

    /// Pauses the workflow for a while, so a loop through it does not spin. (An HTTP request
    /// does not count: a fast endpoint would be called in a tight loop.)
    #[must_use]
    pub const fn can_wait(&self) -> bool {
        match self {
            Self::Delay { .. } | Self::CollectInformation { .. } | Self::InputCustomer { .. } => true,
            Self::Message { delay_secs, .. } => *delay_secs > 0,
            _ => false,
        }
    }

    /// The channels this activity works on. Parley supports every text activity on every text
    /// channel (spec §7 L2); the matrix exists so validation and the UI can rely on it.
    #[must_use]
    pub const fn channels(&self) -> &'static [Channel] {
        &Channel::ALL
    }

    /// The service licence a service needs to run this activity (spec §3.3 V-6).
    #[must_use]
    pub const fn required_licence(&self) -> Option<Licence> {
        match self {
            Self::QueueTask { .. }
            | Self::CheckTask
            | Self::CancelTask
            | Self::DistributionPriority { .. }
            | Self::AvailabilityRouting { .. }
            | Self::GetAvailableUsers { .. }
            | Self::GetQueuePosition { .. } => Some(Licence::ContactCenter),
            _ => None,
        }
    }

    /// Custom parameters this activity reads or writes directly (templates are scanned by the
    /// caller with the placeholder engine).
    #[must_use]
    pub fn parameters(&self) -> Vec<&str> {
        match self {
            Self::CollectInformation { parameter, .. }
            | Self::SaveToParameter { parameter, .. }
            | Self::CheckParameter { parameter, .. }
            | Self::GetAvailableUsers { parameter, .. }
            | Self::GetQueuePosition { parameter } => vec![parameter.as_str()],
            Self::InputCustomer { parameter, .. } => parameter.iter().map(String::as_str).collect(),
            Self::HttpRequest { response, .. } => response.iter().map(|m| m.parameter.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Texts that may contain placeholders, with their property names.
    #[must_use]
    pub fn templates(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        match self {
            Self::Message { text, .. } => v.push(("text", text.as_str())),
            Self::CollectInformation { prompt, retry_text, .. } | Self::InputCustomer { prompt, retry_text, .. } => {
                v.push(("prompt", prompt.as_str()));
                if let Some(t) = retry_text {
                    v.push(("retry_text", t.as_str()));
                }
            }
            Self::SaveToParameter { value, .. } => v.push(("value", value.as_str())),
            Self::Disconnect { text: Some(t) } => v.push(("text", t.as_str())),
            Self::HttpRequest { url, headers, body, .. } => {
                v.push(("url", url.as_str()));
                v.extend(headers.iter().map(|h| ("headers", h.value.as_str())));
                if let Some(b) = body {
                    v.push(("body", b.as_str()));
                }
            }
            _ => {}
        }
        v
    }

    /// Services this activity names.
    #[must_use]
    pub fn services(&self) -> Vec<ServiceId> {
        match self {
            Self::Transfer { service_id } => vec![*service_id],
            Self::AvailabilityRouting { service: ServiceTarget::Service(s) }
            | Self::GetAvailableUsers { service: ServiceTarget::Service(s), .. } => vec![*s],
            _ => Vec::new(),
        }
    }
}

/// The exit name of an Input Customer option.
#[must_use]
pub fn option_exit(key: &str) -> String {
    format!("option_{key}")
}

fn default_true() -> bool {
    true
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Unique within the workflow.
    pub id: String,
    pub activity: Activity,
    /// A disabled node is passed through along its pass-through exit.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Exit name → target node id.
    #[serde(default)]
    pub exits: BTreeMap<String, String>,
}

impl Node {
    /// A node with the given exits.
    #[must_use]
    pub fn new(id: &str, activity: Activity, exits: &[(&str, &str)]) -> Self {
        Self {
            id: id.to_owned(),
            activity,
            enabled: true,
            exits: exits.iter().map(|(e, t)| ((*e).to_owned(), (*t).to_owned())).collect(),
        }
    }
}

/// The graph: where it starts and its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// Id of the first node.
    pub start: String,
    pub nodes: Vec<Node>,
}

/// What validation needs to know about the rest of the tenant (spec §3.3 V-7).
pub trait References {
    /// The organization unit of a service of this tenant, `None` if there is no such service.
    fn service_ou(&self, service: ServiceId) -> Option<OrgUnitId>;
    /// The organization unit of a custom parameter, `None` if there is no such parameter.
    fn parameter_ou(&self, id: &str) -> Option<OrgUnitId>;
    /// `entity` lives in `from` or one of its ancestors (visible "along the path").
    fn visible(&self, entity: OrgUnitId, from: OrgUnitId) -> bool;
}

/// Abstract state of a conversation arriving at a node: accepted yet, queued yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Arrival {
    accepted: bool,
    queued: bool,
}

impl WorkflowDefinition {
    /// The node with this id.
    #[must_use]
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The minimal shape: accept, welcome the customer, queue (the walking skeleton's workflow).
    #[must_use]
    pub fn accept_welcome_queue(welcome: &str) -> Self {
        Self {
            start: "accept".into(),
            nodes: vec![
                Node::new("accept", Activity::Accept, &[(NEXT, "welcome")]),
                Node::new("welcome", Activity::Message { text: welcome.to_owned(), delay_secs: 0 }, &[(NEXT, "queue")]),
                Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs: 300 }, &[]),
            ],
        }
    }

    /// The recommended shape (spec §2.a): welcome, queue, keep the customer informed of their
    /// position every `interval_secs`, and when the queue limit is reached apologise, cancel and
    /// disconnect.
    #[must_use]
    pub fn recommended(welcome: &str, max_queue_secs: u32, interval_secs: u32) -> Self {
        use exits::*;
        let msg = |text: &str| Activity::Message { text: text.to_owned(), delay_secs: 0 };
        Self {
            start: "accept".into(),
            nodes: vec![
                Node::new("accept", Activity::Accept, &[(NEXT, "welcome")]),
                Node::new("welcome", msg(welcome), &[(NEXT, "queue")]),
                Node::new("queue", Activity::QueueTask { priority: None, max_queue_secs }, &[(NEXT, "wait")]),
                Node::new("wait", Activity::Delay { secs: interval_secs }, &[(NEXT, "check")]),
                Node::new(
                    "check",
                    Activity::CheckTask,
                    &[
                        (QUEUED, "position"),
                        (OFFERING, "wait"),
                        (CONNECTED, "done"),
                        (LIMIT_REACHED, "sorry"),
                        (ENDED, "done"),
                    ],
                ),
                Node::new(
                    "position",
                    Activity::GetQueuePosition { parameter: "QueuePosition".into() },
                    &[(NEXT, "tell_position"), (NOT_QUEUED, "wait")],
                ),
                Node::new(
                    "tell_position",
                    msg("You are number $(Queue.Position) in the queue. Thank you for waiting."),
                    &[(NEXT, "wait")],
                ),
                Node::new(
                    "sorry",
                    msg("We are sorry, all our agents are busy. Please try again later."),
                    &[(NEXT, "cancel")],
                ),
                Node::new("cancel", Activity::CancelTask, &[(NEXT, "bye")]),
                Node::new("bye", Activity::Disconnect { text: None }, &[]),
                Node::new("done", Activity::Disconnect { text: None }, &[]),
            ],
        }
    }

    /// The channels every activity of this workflow supports (spec §3.3 V-5).
    #[must_use]
    pub fn channels(&self) -> BTreeSet<Channel> {
        let mut all: BTreeSet<Channel> = Channel::ALL.into_iter().collect();
        for n in &self.nodes {
            all.retain(|c| n.activity.channels().contains(c));
        }
        all
    }

    /// Service licences a service needs to use this workflow (spec §3.3 V-6).
    #[must_use]
    pub fn required_licences(&self) -> BTreeSet<Licence> {
        self.nodes.iter().filter_map(|n| n.activity.required_licence()).collect()
    }

    /// Every custom parameter the workflow names directly.
    #[must_use]
    pub fn parameters(&self) -> BTreeSet<&str> {
        self.nodes.iter().flat_map(|n| n.activity.parameters()).collect()
    }

    /// Checks the graph on its own (structure, properties, V-1…V-4, V14).
    ///
    /// # Errors
    /// Every broken rule; paths point into `/definition`, node errors name their node.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.check_structure(&mut e);
        if e.0.is_empty() {
            self.check_paths(&mut e);
            self.check_loops(&mut e);
        }
        e.into_result(())
    }

    /// [`Self::validate`] plus the rules that need the rest of the tenant: channels a service
    /// needs (V-5), its licences (V-6), and references visible from the workflow's unit (V-7).
    ///
    /// # Errors
    /// Every broken rule.
    pub fn validate_for(
        &self,
        ou: OrgUnitId,
        refs: &dyn References,
        channels: &[Channel],
        licences: Option<&[Licence]>,
    ) -> Result<(), ValidationErrors> {
        let mut e = self.validate().err().unwrap_or_default();
        let supported = self.channels();
        for c in channels {
            if !supported.contains(c) {
                e.push("/definition", "channel_unsupported", format!("the workflow cannot run on {c:?}"));
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let path = format!("/definition/nodes/{i}/activity");
            if let (Some(have), Some(need)) = (licences, n.activity.required_licence())
                && !have.contains(&need)
            {
                e.push_node(
                    &n.id,
                    &path,
                    "licence_required",
                    format!("{} needs the {} licence", n.activity.kind(), need.as_str()),
                );
            }
            for s in n.activity.services() {
                match refs.service_ou(s) {
                    None => e.push_node(&n.id, format!("{path}/service_id"), "unknown_reference", "no such service"),
                    Some(o) if !refs.visible(o, ou) => e.push_node(
                        &n.id,
                        format!("{path}/service_id"),
                        "not_visible",
                        "the service is outside the workflow's organization path",
                    ),
                    Some(_) => {}
                }
            }
            for p in n.activity.parameters() {
                match refs.parameter_ou(p) {
                    None => e.push_node(
                        &n.id,
                        format!("{path}/parameter"),
                        "unknown_parameter",
                        format!("no parameter '{p}'"),
                    ),
                    Some(o) if !refs.visible(o, ou) => e.push_node(
                        &n.id,
                        format!("{path}/parameter"),
                        "not_visible",
                        format!("parameter '{p}' is outside the workflow's organization path"),
                    ),
                    Some(_) => {}
                }
            }
            for (prop, text) in n.activity.templates() {
                let mut local = ValidationErrors::default();
                let known = |id: &str| refs.parameter_ou(id).is_some();
                crate::template::validate_template(&mut local, &format!("{path}/{prop}"), text, &known);
                for f in local.0 {
                    e.push_node(&n.id, f.path, f.code, f.message);
                }
            }
        }
        e.into_result(())
    }

    /// Every custom parameter the workflow names, directly or in a placeholder.
    #[must_use]
    pub fn parameter_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for n in &self.nodes {
            ids.extend(n.activity.parameters().into_iter().map(str::to_owned));
            for (_, text) in n.activity.templates() {
                if let Ok(t) = crate::template::Template::parse(text) {
                    ids.extend(t.parameter_refs().map(str::to_owned));
                }
            }
        }
        ids
    }

    fn check_structure(&self, e: &mut ValidationErrors) {
        if self.nodes.is_empty() {
            e.push("/definition/nodes", "required", "a workflow needs at least one node");
        }
        if self.nodes.len() > MAX_NODES {
            e.push("/definition/nodes", "too_many", format!("at most {MAX_NODES} nodes"));
        }
        let mut seen = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let path = format!("/definition/nodes/{i}");
            if n.id.is_empty() || n.id.len() > 64 || n.id.chars().any(char::is_whitespace) {
                e.push_node(&n.id, format!("{path}/id"), "invalid_node_id", "must be 1-64 characters without spaces");
            } else if !seen.insert(n.id.as_str()) {
                e.push_node(
                    &n.id,
                    format!("{path}/id"),
                    "duplicate_node_id",
                    format!("node id '{}' is used twice", n.id),
                );
            }
            check_properties(e, n, &format!("{path}/activity"));
            if !n.enabled && n.activity.pass_through_exit().is_none() {
                e.push_node(
                    &n.id,
                    format!("{path}/enabled"),
                    "cannot_disable",
                    format!("a {} node cannot be disabled", n.activity.kind()),
                );
            }
            let names = n.activity.exit_names();
            for (exit, target) in &n.exits {
                let ep = format!("{path}/exits/{exit}");
                if !names.contains(exit) {
                    e.push_node(
                        &n.id,
                        ep,
                        "unknown_exit",
                        format!("a {} node has no exit '{exit}'", n.activity.kind()),
                    );
                } else if self.node(target).is_none() {
                    e.push_node(&n.id, ep, "unknown_target", format!("exit leads to missing node '{target}'"));
                }
            }
            // V-2: every exit but a trailing `next` must lead somewhere.
            for exit in names.iter().filter(|x| x.as_str() != NEXT) {
                if !n.exits.contains_key(exit) {
                    e.push_node(
                        &n.id,
                        format!("{path}/exits/{exit}"),
                        "exit_unconnected",
                        format!("exit '{exit}' is not connected"),
                    );
                }
            }
            // V14: Cancel Task must be followed by Disconnect.
            if matches!(n.activity, Activity::CancelTask)
                && !n.exits.get(NEXT).and_then(|t| self.node(t)).is_some_and(|t| t.activity.is_terminal())
            {
                e.push_node(
                    &n.id,
                    format!("{path}/exits/next"),
                    "disconnect_required",
                    "Cancel Task must lead straight to Disconnect",
                );
            }
        }
        if self.node(&self.start).is_none() {
            e.push("/definition/start", "unknown_target", format!("start node '{}' does not exist", self.start));
        }
    }

    /// Every state a conversation can arrive at each node in, over every path from Start.
    fn arrivals(&self) -> Vec<BTreeSet<Arrival>> {
        let mut at: Vec<BTreeSet<Arrival>> = vec![BTreeSet::new(); self.nodes.len()];
        let Some(start) = self.index(&self.start) else { return at };
        let mut work = VecDeque::from([(start, Arrival { accepted: false, queued: false })]);
        while let Some((i, arrival)) = work.pop_front() {
            if !at[i].insert(arrival) {
                continue;
            }
            let node = &self.nodes[i];
            let after = match node.activity {
                Activity::Accept => Arrival { accepted: true, ..arrival },
                Activity::QueueTask { .. } => Arrival { queued: true, ..arrival },
                Activity::CancelTask => Arrival { queued: false, ..arrival },
                _ => arrival,
            };
            for target in node.exits.values() {
                if let Some(t) = self.index(target) {
                    work.push_back((t, after));
                }
            }
        }
        at
    }

    /// V-1 (Accept first), V-3 (queue before Check/Cancel Task, Get Queue Position), V-4 (one
    /// Queue Task per path unless a Transfer intervenes).
    fn check_paths(&self, e: &mut ValidationErrors) {
        for (i, (node, states)) in self.nodes.iter().zip(self.arrivals()).enumerate() {
            let path = format!("/definition/nodes/{i}");
            let id = &node.id;
            if node.activity.needs_accept() && states.iter().any(|s| !s.accepted) {
                e.push_node(id, &path, "accept_required", format!("'{id}' can be reached without an Accept before it"));
            }
            if node.activity.needs_queue() && states.iter().any(|s| !s.queued) {
                e.push_node(
                    id,
                    &path,
                    "queue_task_required",
                    format!("'{id}' can be reached without a Queue Task before it"),
                );
            }
            if matches!(node.activity, Activity::QueueTask { .. }) && states.iter().any(|s| s.queued) {
                e.push_node(
                    id,
                    &path,
                    "queued_twice",
                    format!("'{id}' can queue a conversation that is already queued"),
                );
            }
            if matches!(node.activity, Activity::Accept) && states.iter().any(|s| s.accepted) {
                e.push_node(id, &path, "accepted_twice", format!("'{id}' can accept a conversation twice"));
            }
        }
    }

    /// A cycle made only of activities that never wait would spin forever.
    fn check_loops(&self, e: &mut ValidationErrors) {
        let n = self.nodes.len();
        // 0 = unvisited, 1 = on the stack, 2 = done; iterative DFS over non-waiting nodes.
        let mut mark = vec![0u8; n];
        for root in 0..n {
            if mark[root] != 0 || self.nodes[root].activity.can_wait() {
                continue;
            }
            let mut stack = vec![(root, self.successors(root))];
            mark[root] = 1;
            while let Some((node, succ)) = stack.last_mut() {
                let node = *node;
                if let Some(next) = succ.pop() {
                    if self.nodes[next].activity.can_wait() {
                        continue;
                    }
                    match mark[next] {
                        0 => {
                            mark[next] = 1;
                            let s = self.successors(next);
                            stack.push((next, s));
                        }
                        1 => {
                            let id = &self.nodes[next].id;
                            e.push_node(
                                id,
                                format!("/definition/nodes/{next}"),
                                "loop_without_wait",
                                format!("'{id}' is on a loop with no Delay or question to pause it"),
                            );
                            return;
                        }
                        _ => {}
                    }
                } else {
                    mark[node] = 2;
                    stack.pop();
                }
            }
        }
    }

    fn successors(&self, i: usize) -> Vec<usize> {
        self.nodes[i].exits.values().filter_map(|t| self.index(t)).collect()
    }
}

fn check_seconds(e: &mut ValidationErrors, node: &str, path: String, v: u32, min: u32, max: u32) {
    if !(min..=max).contains(&v) {
        e.push_node(node, path, "out_of_range", format!("must be between {min} and {max} seconds"));
    }
}

fn check_parameter_id(e: &mut ValidationErrors, node: &str, path: String, id: &str) {
    if !is_parameter_id(id) {
        e.push_node(node, path, "invalid_parameter_id", "must be 1-64 characters of letters, digits and _");
    }
}

/// A custom parameter id: 1–64 ASCII letters, digits or `_` (spec §1.2 Parameter).
#[must_use]
pub fn is_parameter_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_text(e: &mut ValidationErrors, node: &str, path: &str, text: &str) {
    let mut local = ValidationErrors::default();
    required_text(&mut local, path, text, MAX_MESSAGE_CHARS);
    for f in local.0 {
        e.push_node(node, f.path, f.code, f.message);
    }
}

/// A pattern must have 1-500 characters and compile exactly as the run will compile it.
fn check_pattern(
    e: &mut ValidationErrors,
    node: &str,
    path: String,
    pattern: &str,
    anchoring: crate::pattern::Anchoring,
) {
    if pattern.is_empty() || pattern.len() > 500 {
        e.push_node(node, path, "invalid_regex", "a pattern of 1-500 characters is required");
    } else if let Err(why) = crate::pattern::compile(pattern, anchoring) {
        e.push_node(node, path, "invalid_regex", format!("the pattern does not compile: {why}"));
    }
}

fn check_properties(e: &mut ValidationErrors, n: &Node, path: &str) {
    let id = n.id.as_str();
    match &n.activity {
        Activity::Message { text, delay_secs } => {
            check_text(e, id, &format!("{path}/text"), text);
            check_seconds(e, id, format!("{path}/delay_secs"), *delay_secs, 0, MAX_DELAY_SECS);
        }
        Activity::CollectInformation { prompt, parameter, rule, timeout_secs, retries, retry_text } => {
            check_text(e, id, &format!("{path}/prompt"), prompt);
            check_parameter_id(e, id, format!("{path}/parameter"), parameter);
            check_seconds(e, id, format!("{path}/timeout_secs"), *timeout_secs, 5, MAX_WAIT_SECS);
            if *retries > 5 {
                e.push_node(id, format!("{path}/retries"), "out_of_range", "at most 5 retries");
            }
            if let Some(t) = retry_text {
                check_text(e, id, &format!("{path}/retry_text"), t);
            }
            if let AnswerRule::Regex(p) = rule {
                check_pattern(e, id, format!("{path}/rule/pattern"), p, crate::pattern::Anchoring::Whole);
            }
        }
        Activity::InputCustomer { prompt, options, timeout_secs, retries, retry_text, parameter } => {
            check_text(e, id, &format!("{path}/prompt"), prompt);
            check_seconds(e, id, format!("{path}/timeout_secs"), *timeout_secs, 5, MAX_WAIT_SECS);
            if *retries > 5 {
                e.push_node(id, format!("{path}/retries"), "out_of_range", "at most 5 retries");
            }
            if let Some(t) = retry_text {
                check_text(e, id, &format!("{path}/retry_text"), t);
            }
            if let Some(p) = parameter {
                check_parameter_id(e, id, format!("{path}/parameter"), p);
            }
            if options.is_empty() || options.len() > 20 {
                e.push_node(id, format!("{path}/options"), "out_of_range", "a menu needs 1-20 options");
            }
            let mut keys = BTreeSet::new();
            for (k, o) in options.iter().enumerate() {
                let valid = (1..=16).contains(&o.key.len()) && o.key.bytes().all(|b| b.is_ascii_alphanumeric());
                if !valid {
                    e.push_node(id, format!("{path}/options/{k}/key"), "invalid_option_key", "1-16 letters or digits");
                } else if !keys.insert(o.key.to_ascii_lowercase()) {
                    e.push_node(id, format!("{path}/options/{k}/key"), "duplicate_option", "option keys must differ");
                }
                let mut local = ValidationErrors::default();
                required_text(&mut local, &format!("{path}/options/{k}/label"), &o.label, MAX_NAME_CHARS);
                for f in local.0 {
                    e.push_node(id, f.path, f.code, f.message);
                }
            }
        }
        Activity::SaveToParameter { parameter, value } => {
            check_parameter_id(e, id, format!("{path}/parameter"), parameter);
            if value.chars().count() > 5120 {
                e.push_node(id, format!("{path}/value"), "too_long", "at most 5120 characters");
            }
        }
        Activity::Delay { secs } => check_seconds(e, id, format!("{path}/secs"), *secs, 1, MAX_WAIT_SECS),
        Activity::Disconnect { text: Some(t) } => check_text(e, id, &format!("{path}/text"), t),
        Activity::CheckParameter { parameter, conditions } => {
            check_parameter_id(e, id, format!("{path}/parameter"), parameter);
            if conditions.is_empty() || conditions.len() > 20 {
                e.push_node(id, format!("{path}/conditions"), "out_of_range", "1-20 conditions");
            }
            let mut names = BTreeSet::new();
            for (k, c) in conditions.iter().enumerate() {
                let cp = format!("{path}/conditions/{k}");
                let valid = (1..=32).contains(&c.exit.len())
                    && c.exit.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid || c.exit == exits::DEFAULT {
                    e.push_node(id, format!("{cp}/exit"), "invalid_exit_name", "1-32 of a-z, 0-9, _ and not 'default'");
                } else if !names.insert(c.exit.as_str()) {
                    e.push_node(id, format!("{cp}/exit"), "duplicate_exit", "exit names must differ");
                }
                if c.op.is_numeric() && c.value.trim().parse::<f64>().is_err() {
                    e.push_node(id, format!("{cp}/value"), "not_a_number", "a numeric comparison needs a number");
                }
                if c.op == CompareOp::Regex {
                    let anchoring = crate::pattern::Anchoring::Search { ignore_case: c.ignore_case };
                    check_pattern(e, id, format!("{cp}/value"), &c.value, anchoring);
                }
            }
        }
        Activity::GetAvailableUsers { parameter, .. } | Activity::GetQueuePosition { parameter } => {
            check_parameter_id(e, id, format!("{path}/parameter"), parameter);
        }
        Activity::QueueTask { max_queue_secs, .. } => {
            check_seconds(e, id, format!("{path}/max_queue_secs"), *max_queue_secs, 5, MAX_WAIT_SECS);
        }
        Activity::HttpRequest { url, headers, timeout_secs, response, .. } => {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
                e.push_node(id, format!("{path}/url"), "invalid_url", "an http(s) URL of at most 2000 characters");
            }
            check_seconds(e, id, format!("{path}/timeout_secs"), *timeout_secs, 1, 30);
            for (k, h) in headers.iter().enumerate() {
                let ok = !h.name.is_empty()
                    && h.name.len() <= 64
                    && h.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !h.value.contains(['\r', '\n']);
                if !ok {
                    e.push_node(
                        id,
                        format!("{path}/headers/{k}"),
                        "invalid_header",
                        "a token name and a single-line value",
                    );
                }
            }
            for (k, m) in response.iter().enumerate() {
                if !(m.pointer.is_empty() || m.pointer.starts_with('/')) {
                    e.push_node(
                        id,
                        format!("{path}/response/{k}/pointer"),
                        "invalid_pointer",
                        "a JSON pointer like /a/b",
                    );
                }
                check_parameter_id(e, id, format!("{path}/response/{k}/parameter"), &m.parameter);
            }
        }
        _ => {}
    }
}

/// A stored workflow: an editable draft plus the immutable versions published from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub id: WorkflowId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    pub kind: WorkflowKind,
    /// The draft being edited. It may break validation rules; it cannot be published until it
    /// passes them.
    pub draft: WorkflowDefinition,
    /// The version new conversations run; `None` until the first publish (a service cannot
    /// select the workflow before then).
    pub current_version: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One published, immutable version of a workflow. Conversations keep the version they started
/// with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowVersion {
    pub workflow_id: WorkflowId,
    pub tenant_id: TenantId,
    /// 1, 2, 3…; never reused.
    pub version: u32,
    pub definition: WorkflowDefinition,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
    /// Set when this version re-published an older one (a rollback).
    pub restored_from: Option<u32>,
}

/// Input of `POST /api/v1/workflows`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    pub kind: WorkflowKind,
    /// The first draft.
    pub definition: WorkflowDefinition,
    /// Publish the draft as version 1 at once (refused, with nothing saved, unless it is valid).
    #[serde(default)]
    pub publish: bool,
}

impl NewWorkflow {
    /// Checks the fields a draft must always satisfy (its graph is checked on publish).
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        e.into_result(self)
    }
}

/// Input of `PUT /api/v1/workflows/{id}/draft`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftUpdate {
    #[serde(default)]
    pub name: Option<String>,
    pub definition: WorkflowDefinition,
}

impl DraftUpdate {
    /// Checks the name, if given.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if let Some(n) = &self.name {
            self.name = Some(required_text(&mut e, "/name", n, MAX_NAME_CHARS));
        }
        e.into_result(self)
    }
}

#[cfg(test)]
mod tests;
