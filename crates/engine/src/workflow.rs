//! Runs a conversation's workflow from a node until it waits or ends.
//!
//! The walking skeleton's activities never wait for input, so one call walks the whole path;
//! the full interpreter keeps this shape and adds waiting states.

use parley_domain::workflow::{Activity, MAX_NODES, NEXT, WorkflowDefinition};

/// What the shell must do for one activity, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Open the conversation (log the `accepted` event).
    Accept,
    /// Send this text to the customer as a system message.
    SendMessage(String),
    /// Put the chat into its service's queue.
    Queue,
    /// End the conversation, with an optional closing text.
    Disconnect(Option<String>),
    /// The workflow cannot go on; the reason is for an administrator.
    Failed(String),
}

/// Walks `definition` from node `from` and returns the steps to carry out.
#[must_use]
pub fn run_from(definition: &WorkflowDefinition, from: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut current = Some(from.to_owned());
    while let Some(id) = current.take() {
        if steps.len() > MAX_NODES {
            steps.push(Step::Failed("the workflow does not end (loop without a wait)".into()));
            break;
        }
        let Some(node) = definition.node(&id) else {
            steps.push(Step::Failed(format!("node '{id}' does not exist")));
            break;
        };
        match &node.activity {
            Activity::Accept => steps.push(Step::Accept),
            Activity::Message { text } => steps.push(Step::SendMessage(text.clone())),
            Activity::QueueTask => steps.push(Step::Queue),
            Activity::Disconnect { text } => {
                steps.push(Step::Disconnect(text.clone()));
                break;
            }
        }
        current = node.exits.get(NEXT).cloned();
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_shape_accepts_welcomes_and_queues() {
        let d = WorkflowDefinition::accept_welcome_queue("Welcome!");
        assert_eq!(run_from(&d, &d.start), [Step::Accept, Step::SendMessage("Welcome!".into()), Step::Queue]);
    }

    #[test]
    fn a_missing_node_fails_with_a_readable_reason() {
        let d = WorkflowDefinition::accept_welcome_queue("Hi");
        assert_eq!(run_from(&d, "gone"), [Step::Failed("node 'gone' does not exist".into())]);
    }

    #[test]
    fn disconnect_ends_the_walk() {
        let mut d = WorkflowDefinition::accept_welcome_queue("Hi");
        d.nodes[1].activity = Activity::Disconnect { text: Some("Bye".into()) };
        assert_eq!(run_from(&d, &d.start), [Step::Accept, Step::Disconnect(Some("Bye".into()))]);
    }

    #[test]
    fn a_loop_is_cut_off_as_failed() {
        let mut d = WorkflowDefinition::accept_welcome_queue("Hi");
        d.nodes[2].exits.insert(NEXT.into(), "welcome".into());
        let steps = run_from(&d, &d.start);
        assert!(matches!(steps.last(), Some(Step::Failed(_))));
    }
}
