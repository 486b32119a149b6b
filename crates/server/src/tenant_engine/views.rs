//! What the engine tells the workspaces about a chat and an agent, in domain terms (the sockets
//! render them): built from the tenant core's state at the moment the event goes out.

use super::TenantEngine;
use parley_domain::event::{AgentRouting, ChatCard, Detail};
use parley_domain::{Conversation, UserId};

/// How a direct chat is labelled in place of a service name.
const DIRECT_CHAT_LABEL: &str = "Direct chat";

impl TenantEngine {
    pub(super) fn routing_of(&self, agent: UserId) -> AgentRouting {
        self.core.router().agent_status(agent).map_or_else(AgentRouting::default, |s| AgentRouting {
            acw_until: s.acw_until,
            acw_extensions: s.acw_extensions,
            rona: s.rona,
        })
    }

    pub(super) fn card(&self, c: &Conversation) -> ChatCard {
        let service_name = c.service_id.map_or_else(|| DIRECT_CHAT_LABEL.to_owned(), |s| self.core.service_name(s));
        ChatCard { conversation: c.clone(), service_name, details: self.details(c) }
    }

    /// The parameters the chat's workflow set (not empty, not its default), named for people.
    fn details(&self, c: &Conversation) -> Vec<Detail> {
        let Some(run) = self.core.run(c.id) else { return Vec::new() };
        run.session
            .params
            .iter()
            .filter(|(id, value)| {
                !value.trim().is_empty() && self.parameters.get(*id).is_none_or(|p| p.default_value != **value)
            })
            .map(|(id, value)| Detail {
                name: self.parameters.get(id).map_or_else(|| id.clone(), |p| p.name.clone()),
                value: value.clone(),
            })
            .collect()
    }
}
