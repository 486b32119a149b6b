//! The workflow model: a graph of activity nodes with named exits, typed for instant messaging.
//!
//! The walking skeleton knows the activities of the fixed accept → welcome → queue shape; the
//! full activity set grows here without changing the graph's form.

use crate::entities::{MAX_MESSAGE_CHARS, MAX_NAME_CHARS};
use crate::error::ValidationErrors;
use crate::ids::{OrgUnitId, TenantId, WorkflowId};
use crate::validate::required_text;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The exit every single-exit activity uses.
pub const NEXT: &str = "next";
/// Most nodes a workflow may have.
pub const MAX_NODES: usize = 200;

/// The modality a workflow is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowKind {
    InstantMessaging,
}

/// What a node does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Activity {
    /// Opens the conversation with the customer.
    Accept,
    /// Sends a text to the customer.
    Message { text: String },
    /// Puts the chat into the service's queue; the engine offers it to an agent.
    QueueTask,
    /// Ends the conversation, optionally with a closing text.
    Disconnect {
        #[serde(default)]
        text: Option<String>,
    },
}

impl Activity {
    /// Needs an earlier Accept on the path from Start.
    #[must_use]
    pub const fn needs_accept(&self) -> bool {
        matches!(self, Self::Message { .. } | Self::QueueTask)
    }

    /// Ends the workflow; it has no exits.
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        matches!(self, Self::Disconnect { .. })
    }
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Unique within the workflow.
    pub id: String,
    pub activity: Activity,
    /// Exit name → target node id.
    #[serde(default)]
    pub exits: BTreeMap<String, String>,
}

/// The graph: where it starts and its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// Id of the first node.
    pub start: String,
    pub nodes: Vec<Node>,
}

impl WorkflowDefinition {
    /// The node with this id.
    #[must_use]
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The recommended minimal shape: accept, welcome the customer, queue.
    #[must_use]
    pub fn accept_welcome_queue(welcome: &str) -> Self {
        let node = |id: &str, activity, next: Option<&str>| Node {
            id: id.to_owned(),
            activity,
            exits: next.map(|n| BTreeMap::from([(NEXT.to_owned(), n.to_owned())])).unwrap_or_default(),
        };
        Self {
            start: "accept".into(),
            nodes: vec![
                node("accept", Activity::Accept, Some("welcome")),
                node("welcome", Activity::Message { text: welcome.to_owned() }, Some("queue")),
                node("queue", Activity::QueueTask, None),
            ],
        }
    }

    /// Checks the graph: unique ids, known targets, allowed exits, Accept before conversation
    /// activities, no loops (the skeleton's activities never wait, so a loop would spin).
    ///
    /// # Errors
    /// Every broken rule; paths point into `/definition`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        if self.nodes.is_empty() {
            e.push("/definition/nodes", "required", "a workflow needs at least one node");
        }
        if self.nodes.len() > MAX_NODES {
            e.push("/definition/nodes", "too_many", format!("at most {MAX_NODES} nodes"));
        }
        let mut seen = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let path = format!("/definition/nodes/{i}");
            if n.id.is_empty() || n.id.len() > 64 {
                e.push(format!("{path}/id"), "invalid_node_id", "must be 1-64 characters");
            } else if !seen.insert(n.id.as_str()) {
                e.push(format!("{path}/id"), "duplicate_node_id", format!("node id '{}' is used twice", n.id));
            }
            match &n.activity {
                Activity::Message { text } => {
                    required_text(&mut e, &format!("{path}/text"), text, MAX_MESSAGE_CHARS);
                }
                Activity::Disconnect { text: Some(text) } => {
                    required_text(&mut e, &format!("{path}/text"), text, MAX_MESSAGE_CHARS);
                }
                _ => {}
            }
            for (exit, target) in &n.exits {
                let ep = format!("{path}/exits/{exit}");
                if exit != NEXT || n.activity.is_terminal() {
                    e.push(ep, "unknown_exit", format!("node '{}' has no exit '{exit}'", n.id));
                } else if self.node(target).is_none() {
                    e.push(ep, "unknown_target", format!("exit leads to missing node '{target}'"));
                }
            }
        }
        if self.node(&self.start).is_none() {
            e.push("/definition/start", "unknown_target", format!("start node '{}' does not exist", self.start));
        } else if e.0.is_empty() {
            self.check_path(&mut e);
        }
        e.into_result(())
    }

    /// Walks the single path from Start (every skeleton activity has at most one exit).
    fn check_path(&self, e: &mut ValidationErrors) {
        let mut accepted = false;
        let mut visited = BTreeSet::new();
        let mut current = Some(self.start.as_str());
        while let Some(id) = current {
            let Some((i, node)) = self.nodes.iter().enumerate().find(|(_, n)| n.id == id) else { return };
            if !visited.insert(id) {
                e.push(format!("/definition/nodes/{i}"), "cycle", format!("node '{id}' is reached twice on one path"));
                return;
            }
            if node.activity.needs_accept() && !accepted {
                e.push(
                    format!("/definition/nodes/{i}"),
                    "accept_required",
                    format!("node '{id}' needs an Accept before it"),
                );
            }
            accepted |= matches!(node.activity, Activity::Accept);
            current = node.exits.get(NEXT).map(String::as_str);
        }
    }
}

/// A stored workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub id: WorkflowId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    pub kind: WorkflowKind,
    pub definition: WorkflowDefinition,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/workflows`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    pub kind: WorkflowKind,
    pub definition: WorkflowDefinition,
}

impl NewWorkflow {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        if let Err(more) = self.definition.validate() {
            e.0.extend(more.0);
        }
        e.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_shape_is_valid() {
        WorkflowDefinition::accept_welcome_queue("Welcome!").validate().unwrap();
    }

    #[test]
    fn a_message_before_accept_is_refused() {
        let mut d = WorkflowDefinition::accept_welcome_queue("Hi");
        d.start = "welcome".into();
        let errs = d.validate().unwrap_err().0;
        assert_eq!((errs[0].path.as_str(), errs[0].code), ("/definition/nodes/1", "accept_required"));
    }

    #[test]
    fn a_missing_target_and_an_unknown_exit_are_refused() {
        let mut d = WorkflowDefinition::accept_welcome_queue("Hi");
        d.nodes[1].exits.insert(NEXT.into(), "nowhere".into());
        d.nodes[2].exits.insert("limit_reached".into(), "accept".into());
        let codes: Vec<_> = d.validate().unwrap_err().0.into_iter().map(|e| e.code).collect();
        assert_eq!(codes, ["unknown_target", "unknown_exit"]);
    }

    #[test]
    fn a_loop_is_refused() {
        let mut d = WorkflowDefinition::accept_welcome_queue("Hi");
        d.nodes[2].exits.insert(NEXT.into(), "welcome".into());
        assert_eq!(d.validate().unwrap_err().0[0].code, "cycle");
    }

    #[test]
    fn duplicate_node_ids_are_refused() {
        let mut d = WorkflowDefinition::accept_welcome_queue("Hi");
        d.nodes[2].id = "welcome".into();
        assert!(d.validate().unwrap_err().0.iter().any(|e| e.code == "duplicate_node_id"));
    }

    #[test]
    fn node_json_is_strict_about_activity_kinds() {
        let n: Node =
            serde_json::from_str(r#"{"id":"m","activity":{"kind":"message","text":"hi"},"exits":{"next":"q"}}"#)
                .unwrap();
        assert_eq!(n.activity, Activity::Message { text: "hi".into() });
        assert!(serde_json::from_str::<Node>(r#"{"id":"m","activity":{"kind":"teleport"}}"#).is_err());
    }
}
