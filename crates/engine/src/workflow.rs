//! The workflow interpreter: runs one conversation's pinned workflow from node to node until it
//! waits (for time, the customer or an HTTP answer), finishes or fails.
//!
//! It is a pure state machine: `handle(definition, session, input, now, facts)` changes the
//! session and returns what the shell must do plus a trace of the nodes it passed. Everything it
//! needs to know about the world (availability, queue position, task state, opening hours,
//! placeholder values) comes through [`Facts`], answered by the shell from its in-memory state or
//! by the simulator from a script, so a simulation and a live run take the same steps.

use parley_domain::ServiceId;
use parley_domain::pattern::{Anchoring, Patterns};
use parley_domain::workflow::{
    Activity, AnswerRule, CompareOp, Condition, HttpMethod, NEXT, Node, Priority, ServiceTarget, WorkflowDefinition,
    exits, option_exit,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// Most nodes one call may pass; a workflow that gets further is looping without a pause.
pub const STEP_BUDGET: usize = 1000;

/// A service's availability as Availability-based Routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// At least one agent could take the chat now.
    Available,
    /// Agents are signed in and active, but none can take it now.
    Busy,
    /// No active agent is signed in.
    Unavailable,
}

/// The task's live state as Check Task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Offering,
    Connected,
    LimitReached,
    Ended,
}

impl TaskState {
    fn exit(self) -> &'static str {
        match self {
            Self::Queued => exits::QUEUED,
            Self::Offering => exits::OFFERING,
            Self::Connected => exits::CONNECTED,
            Self::LimitReached => exits::LIMIT_REACHED,
            Self::Ended => exits::ENDED,
        }
    }
}

/// What the interpreter may ask about the world.
pub trait Facts {
    fn availability(&self, target: ServiceTarget) -> Availability;
    fn available_users(&self, target: ServiceTarget) -> u32;
    /// 1-based position in the queue, `None` when not waiting in it.
    fn queue_position(&self) -> Option<u32>;
    fn task_state(&self) -> TaskState;
    /// The Check Opening Hours exit for the current service now (`open`, …, `default`).
    fn opening_exit(&self) -> &'static str;
    fn service_exists(&self, service: ServiceId) -> bool;
    /// Resolves the placeholders of `template` with the session's parameters.
    fn render(&self, template: &str, params: &BTreeMap<String, String>) -> String;
}

/// An HTTP call for the shell to make (allow-list and timeout enforced there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout_secs: u32,
}

/// The answer to an [`HttpCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HttpOutcome {
    Response {
        status: u16,
        body: serde_json::Value,
    },
    /// Refused by the allow-list, unreachable, timed out…
    Failed(String),
}

/// What happens next to the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Run from the Start node.
    Start,
    /// The customer wrote something.
    CustomerText(String),
    /// The clock reached a deadline the session asked for.
    Timer,
    /// An HTTP call finished.
    Http(HttpOutcome),
}

/// What the shell must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Accept,
    Send {
        text: String,
    },
    Enqueue {
        priority: Option<Priority>,
        max_queue_secs: u32,
    },
    CancelTask,
    SetPriority(Priority),
    /// Move the conversation to this service; its workflow takes over.
    Transfer {
        service: ServiceId,
    },
    /// End the conversation (or only the workflow when an agent is connected).
    Disconnect {
        text: Option<String>,
    },
    SetParameter {
        id: String,
        value: String,
    },
    /// Call `handle(Input::Timer)` at this time.
    WakeAt(OffsetDateTime),
    Http(HttpCall),
    /// A Check Opening Hours found the service closed (or on a holiday): the customer may be
    /// told so at this point of the workflow (the service's closed-hours system message).
    Closed,
    /// The workflow has nothing more to do.
    Finished,
    /// The workflow cannot go on; the reason is for an administrator. The session is over.
    Failed {
        node: String,
        reason: String,
    },
}

/// One node passed, for traces and the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    pub node: String,
    pub kind: String,
    /// The exit taken, `None` while the node waits or when it ends the workflow.
    pub exit: Option<String>,
}

/// What the session is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wait {
    /// A delayed Message or a Delay.
    Time { until: OffsetDateTime },
    /// A Collect Information or Input Customer answer.
    Answer { until: OffsetDateTime },
    /// An HTTP response.
    Http { until: OffsetDateTime },
}

/// Where a session is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    NotStarted,
    Waiting { node: String, wait: Wait },
    Finished,
    Failed { node: String, reason: String },
}

/// One conversation's run of its workflow. Serializable, so the shell can keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub status: Status,
    /// Custom parameter values, starting from their defaults.
    pub params: BTreeMap<String, String>,
    /// Invalid answers given at the current question.
    pub attempts: u8,
}

/// Result of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub effects: Vec<Effect>,
    pub trace: Vec<TraceStep>,
}

impl Session {
    /// A session that has not started, with the parameters' default values.
    #[must_use]
    pub fn new(params: BTreeMap<String, String>) -> Self {
        Self { status: Status::NotStarted, params, attempts: 0 }
    }

    /// Still running (not finished, not failed).
    #[must_use]
    pub const fn is_live(&self) -> bool {
        matches!(self.status, Status::NotStarted | Status::Waiting { .. })
    }
}

/// Where to go after a node.
enum Next {
    Exit(String),
    Wait(Wait),
    End,
}

struct Run<'a> {
    def: &'a WorkflowDefinition,
    patterns: &'a Patterns,
    session: &'a mut Session,
    facts: &'a dyn Facts,
    now: OffsetDateTime,
    out: Outcome,
}

/// Applies one input to a session and returns the effects and the trace.
pub fn handle(
    def: &WorkflowDefinition,
    patterns: &Patterns,
    session: &mut Session,
    input: Input,
    now: OffsetDateTime,
    facts: &dyn Facts,
) -> Outcome {
    let mut run = Run { def, patterns, session, facts, now, out: Outcome::default() };
    let resume = match (&run.session.status, input) {
        (Status::NotStarted, Input::Start) => Some(Resume::At(def.start.clone())),
        (Status::Waiting { node, wait }, input) => {
            let (node, wait) = (node.clone(), wait.clone());
            run.resume(&node, &wait, input)
        }
        _ => None,
    };
    match resume {
        Some(Resume::At(node)) => run.walk(node),
        Some(Resume::Exit(node, exit)) => run.follow(&node, &exit),
        Some(Resume::Stay) | None => {}
    }
    run.out
}

enum Resume {
    At(String),
    Exit(String, String),
    /// Still waiting at the same node (a retried question).
    Stay,
}

impl Run<'_> {
    fn trace(&mut self, node: &Node, exit: Option<&str>) {
        self.out.trace.push(TraceStep {
            node: node.id.clone(),
            kind: node.activity.kind().to_owned(),
            exit: exit.map(str::to_owned),
        });
    }

    fn fail(&mut self, node: &str, reason: String) {
        self.session.status = Status::Failed { node: node.to_owned(), reason: reason.clone() };
        self.out.effects.push(Effect::Failed { node: node.to_owned(), reason });
    }

    fn finish(&mut self) {
        self.session.status = Status::Finished;
        self.out.effects.push(Effect::Finished);
    }

    fn set_param(&mut self, id: &str, value: String) {
        self.session.params.insert(id.to_owned(), value.clone());
        self.out.effects.push(Effect::SetParameter { id: id.to_owned(), value });
    }

    fn render(&self, text: &str) -> String {
        self.facts.render(text, &self.session.params)
    }

    fn wait(&mut self, node: &Node, wait: Wait) {
        let until = match &wait {
            Wait::Time { until } | Wait::Answer { until } | Wait::Http { until } => *until,
        };
        self.out.effects.push(Effect::WakeAt(until));
        self.session.status = Status::Waiting { node: node.id.clone(), wait };
    }

    /// Takes `exit` out of `node`: to its target, or the end for a missing `next`.
    fn follow(&mut self, node_id: &str, exit: &str) {
        let target = self.def.node(node_id).and_then(|n| n.exits.get(exit)).cloned();
        match target {
            Some(t) => self.walk(t),
            None if exit == NEXT => self.finish(),
            None => self.fail(node_id, format!("exit '{exit}' of node '{node_id}' is not connected")),
        }
    }

    /// Runs nodes from `start` until a wait, the end or a failure.
    fn walk(&mut self, start: String) {
        let mut current = start;
        for _ in 0..STEP_BUDGET {
            let Some(node) = self.def.node(&current) else {
                self.fail(&current, format!("node '{current}' does not exist"));
                return;
            };
            let next = if node.enabled {
                self.execute(node)
            } else {
                Next::Exit(node.activity.pass_through_exit().unwrap_or(NEXT).to_owned())
            };
            match next {
                Next::Exit(exit) => {
                    self.trace(node, Some(&exit));
                    match node.exits.get(&exit) {
                        Some(t) => current = t.clone(),
                        None if exit == NEXT => return self.finish(),
                        None => {
                            return self
                                .fail(&node.id, format!("exit '{exit}' of node '{}' is not connected", node.id));
                        }
                    }
                }
                Next::Wait(wait) => {
                    self.trace(node, None);
                    return self.wait(node, wait);
                }
                Next::End => {
                    self.trace(node, None);
                    return self.finish();
                }
            }
        }
        self.fail(&current, format!("more than {STEP_BUDGET} steps without a pause: the workflow loops"));
    }

    fn after(&self, secs: u32) -> OffsetDateTime {
        self.now + Duration::seconds(i64::from(secs))
    }

    /// Runs one node's activity.
    fn execute(&mut self, node: &Node) -> Next {
        match &node.activity {
            Activity::Accept => {
                self.out.effects.push(Effect::Accept);
                Next::Exit(NEXT.into())
            }
            Activity::Message { text, delay_secs } => {
                if *delay_secs > 0 {
                    return Next::Wait(Wait::Time { until: self.after(*delay_secs) });
                }
                let text = self.render(text);
                self.out.effects.push(Effect::Send { text });
                Next::Exit(NEXT.into())
            }
            Activity::CollectInformation { prompt, timeout_secs, .. }
            | Activity::InputCustomer { prompt, timeout_secs, .. } => {
                self.session.attempts = 0;
                let text = self.render(prompt);
                self.out.effects.push(Effect::Send { text });
                Next::Wait(Wait::Answer { until: self.after(*timeout_secs) })
            }
            Activity::SaveToParameter { parameter, value } => {
                let v = self.render(value);
                self.set_param(parameter, v);
                Next::Exit(NEXT.into())
            }
            Activity::Transfer { service_id } => {
                if self.facts.service_exists(*service_id) {
                    self.out.effects.push(Effect::Transfer { service: *service_id });
                    Next::End
                } else {
                    Next::Exit(exits::FAILED.into())
                }
            }
            Activity::Delay { secs } => Next::Wait(Wait::Time { until: self.after(*secs) }),
            Activity::Disconnect { text } => {
                let text = text.as_deref().map(|t| self.render(t));
                self.out.effects.push(Effect::Disconnect { text });
                Next::End
            }
            Activity::AvailabilityRouting { service } => Next::Exit(
                match self.facts.availability(*service) {
                    Availability::Available => exits::AVAILABLE,
                    Availability::Busy => exits::BUSY,
                    Availability::Unavailable => exits::UNAVAILABLE,
                }
                .into(),
            ),
            Activity::CheckOpeningHours => {
                let exit = self.facts.opening_exit();
                if exit == exits::OPENING[1] || exit == exits::OPENING[2] {
                    self.out.effects.push(Effect::Closed);
                }
                Next::Exit(exit.into())
            }
            Activity::CheckParameter { parameter, conditions } => {
                let value = self.session.params.get(parameter).cloned().unwrap_or_default();
                let exit = conditions
                    .iter()
                    .find(|c| holds(c, &value, self.patterns))
                    .map_or(exits::DEFAULT, |c| c.exit.as_str());
                Next::Exit(exit.to_owned())
            }
            Activity::GetAvailableUsers { service, parameter } => {
                let n = self.facts.available_users(*service);
                self.set_param(parameter, n.to_string());
                Next::Exit(NEXT.into())
            }
            Activity::GetQueuePosition { parameter } => match self.facts.queue_position() {
                Some(p) => {
                    self.set_param(parameter, p.to_string());
                    Next::Exit(NEXT.into())
                }
                None => Next::Exit(exits::NOT_QUEUED.into()),
            },
            Activity::QueueTask { priority, max_queue_secs } => {
                self.out.effects.push(Effect::Enqueue { priority: *priority, max_queue_secs: *max_queue_secs });
                Next::Exit(NEXT.into())
            }
            Activity::CheckTask => Next::Exit(self.facts.task_state().exit().into()),
            Activity::CancelTask => {
                self.out.effects.push(Effect::CancelTask);
                Next::Exit(NEXT.into())
            }
            Activity::DistributionPriority { priority } => {
                self.out.effects.push(Effect::SetPriority(*priority));
                Next::Exit(NEXT.into())
            }
            Activity::HttpRequest { method, url, headers, body, timeout_secs, .. } => {
                let call = HttpCall {
                    method: *method,
                    url: self.render(url),
                    headers: headers.iter().map(|h| (h.name.clone(), self.render(&h.value))).collect(),
                    body: body.as_deref().map(|b| self.render(b)),
                    timeout_secs: *timeout_secs,
                };
                self.out.effects.push(Effect::Http(call));
                Next::Wait(Wait::Http { until: self.after(*timeout_secs) })
            }
        }
    }

    /// Continues a waiting node with an input; `None` when the input does not concern it.
    fn resume(&mut self, node_id: &str, wait: &Wait, input: Input) -> Option<Resume> {
        let node = self.def.node(node_id)?.clone();
        let due = |until: &OffsetDateTime| self.now >= *until;
        match (wait, input) {
            (Wait::Time { until }, Input::Timer) if due(until) => {
                if let Activity::Message { text, .. } = &node.activity {
                    let text = self.render(text);
                    self.out.effects.push(Effect::Send { text });
                }
                self.trace(&node, Some(NEXT));
                Some(Resume::Exit(node.id, NEXT.into()))
            }
            (Wait::Answer { until }, Input::Timer) if due(until) => Some(self.leave(&node, exits::TIMEOUT)),
            (Wait::Answer { .. }, Input::CustomerText(text)) => Some(self.answer(&node, text.trim())),
            (Wait::Http { until }, Input::Timer) if due(until) => Some(self.leave(&node, exits::FAILURE)),
            (Wait::Http { .. }, Input::Http(outcome)) => Some(self.http_done(&node, outcome)),
            _ => None,
        }
    }

    fn leave(&mut self, node: &Node, exit: &str) -> Resume {
        self.trace(node, Some(exit));
        Resume::Exit(node.id.clone(), exit.to_owned())
    }

    fn answer(&mut self, node: &Node, text: &str) -> Resume {
        let (retries, retry_text, prompt, timeout_secs) = match &node.activity {
            Activity::CollectInformation { retries, retry_text, prompt, timeout_secs, .. }
            | Activity::InputCustomer { retries, retry_text, prompt, timeout_secs, .. } => {
                (*retries, retry_text, prompt, *timeout_secs)
            }
            _ => return Resume::Stay,
        };
        let chosen = match &node.activity {
            Activity::CollectInformation { parameter, rule, .. } => accepts(rule, text, self.patterns).then(|| {
                self.set_param(parameter, text.to_owned());
                exits::ANSWERED.to_owned()
            }),
            Activity::InputCustomer { options, parameter, .. } => {
                options.iter().find(|o| o.key.eq_ignore_ascii_case(text)).map(|o| {
                    if let Some(p) = parameter {
                        self.set_param(p, o.key.clone());
                    }
                    option_exit(&o.key)
                })
            }
            _ => None,
        };
        if let Some(exit) = chosen {
            return self.leave(node, &exit);
        }
        if self.session.attempts < retries {
            self.session.attempts += 1;
            let again = self.render(retry_text.as_deref().unwrap_or(prompt));
            self.out.effects.push(Effect::Send { text: again });
            let until = self.after(timeout_secs);
            self.wait(node, Wait::Answer { until });
            return Resume::Stay;
        }
        self.leave(node, exits::INVALID)
    }

    fn http_done(&mut self, node: &Node, outcome: HttpOutcome) -> Resume {
        let Activity::HttpRequest { response, .. } = &node.activity else { return Resume::Stay };
        match outcome {
            HttpOutcome::Response { status, body } if (200..300).contains(&status) => {
                for m in response {
                    if let Some(v) = body.pointer(&m.pointer) {
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        self.set_param(&m.parameter, text);
                    }
                }
                self.leave(node, exits::SUCCESS)
            }
            _ => self.leave(node, exits::FAILURE),
        }
    }
}

/// Whether a Check Parameter condition holds for `value` (patterns from the version's compiled
/// ones).
#[must_use]
pub fn holds(c: &Condition, value: &str, patterns: &Patterns) -> bool {
    let fold = |s: &str| if c.ignore_case { s.to_lowercase() } else { s.to_owned() };
    let number = |s: &str| s.trim().parse::<f64>().ok();
    match c.op {
        CompareOp::Equals => fold(value) == fold(&c.value),
        CompareOp::NotEquals => fold(value) != fold(&c.value),
        CompareOp::Contains => fold(value).contains(&fold(&c.value)),
        CompareOp::StartsWith => fold(value).starts_with(&fold(&c.value)),
        CompareOp::Regex => patterns.is_match(&c.value, Anchoring::Search { ignore_case: c.ignore_case }, value),
        CompareOp::Empty => value.trim().is_empty(),
        CompareOp::NotEmpty => !value.trim().is_empty(),
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => match (number(value), number(&c.value)) {
            (Some(a), Some(b)) => match c.op {
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                _ => a <= b,
            },
            _ => false,
        },
    }
}

/// Whether an answer satisfies a Collect Information rule.
#[must_use]
pub fn accepts(rule: &AnswerRule, text: &str, patterns: &Patterns) -> bool {
    if text.is_empty() {
        return false;
    }
    match rule {
        AnswerRule::Any => true,
        AnswerRule::Email => {
            let mut e = parley_domain::ValidationErrors::default();
            parley_domain::validate::email(&mut e, "", text);
            e.0.is_empty()
        }
        AnswerRule::Phone => {
            let digits = text.chars().filter(char::is_ascii_digit).count();
            (5..=20).contains(&digits) && text.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
        }
        AnswerRule::Number => text.replace(',', ".").parse::<f64>().is_ok_and(f64::is_finite),
        AnswerRule::Regex(p) => patterns.is_match(p, Anchoring::Whole, text),
    }
}

#[cfg(test)]
mod tests;
