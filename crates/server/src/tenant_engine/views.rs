//! How the workspace sees what the engine holds: offers, chats, routing state. Built from the
//! tenant core's state at the moment a frame goes out.

use super::TenantEngine;
use crate::ws::protocol::{ChatView, CustomerView, DetailView, OfferView, RoutingView};
use parley_domain::{Conversation, UserId};

/// What the workspace shows in place of a service name for a direct chat.
const DIRECT_CHAT_LABEL: &str = "Direct chat";

impl TenantEngine {
    pub(super) fn routing_view(&self, agent: UserId) -> RoutingView {
        self.core.router().agent_status(agent).map_or_else(RoutingView::default, |s| RoutingView {
            acw_until: s.acw_until,
            acw_extensions: s.acw_extensions,
            rona: s.rona,
        })
    }

    /// How the workspace names where a chat came from.
    pub(super) fn service_label(&self, c: &Conversation) -> String {
        c.service_id.map_or_else(|| DIRECT_CHAT_LABEL.to_owned(), |s| self.core.service_name(s))
    }

    pub(super) fn offer_view(&self, c: &Conversation, deadline: time::OffsetDateTime) -> OfferView {
        OfferView {
            deadline,
            conversation_id: c.id,
            service_id: c.service_id,
            service_name: self.service_label(c),
            direct: c.is_direct(),
            customer: CustomerView { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() },
            first_message: c.first_message.clone(),
            details: self.details(c),
        }
    }

    /// The parameters the chat's workflow set (not empty, not its default), named for people.
    pub(super) fn details(&self, c: &Conversation) -> Vec<DetailView> {
        let Some(run) = self.core.run(c.id) else { return Vec::new() };
        run.session
            .params
            .iter()
            .filter(|(id, value)| {
                !value.trim().is_empty() && self.parameters.get(*id).is_none_or(|p| p.default_value != **value)
            })
            .map(|(id, value)| DetailView {
                name: self.parameters.get(id).map_or_else(|| id.clone(), |p| p.name.clone()),
                value: value.clone(),
            })
            .collect()
    }

    pub(super) fn chat_view(&self, c: &Conversation) -> ChatView {
        ChatView {
            conversation_id: c.id,
            service_name: self.service_label(c),
            direct: c.is_direct(),
            customer: CustomerView { display_name: c.customer.display_name.clone(), email: c.customer.email.clone() },
            first_message: c.first_message.clone(),
            details: self.details(c),
            status: c.status,
            agent_alias: c.agent_alias.clone(),
        }
    }
}
