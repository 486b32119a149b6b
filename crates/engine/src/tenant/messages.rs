//! System messages in the tenant core (spec §5): which item speaks for a chat, the texts it
//! sends to the customer (into the log) and to the user (as notices), and the name the customer
//! reads for the connected user.
//!
//! A chat of a service uses the item linked on the service it is in now; a direct chat the one
//! on its user's personal widget. An event the item has no text for sends nothing, unless
//! Parley has a built-in text for it (the caller's `fallback`): a customer is never left
//! without a word when a chat cannot go on.

use super::{Out, TenantCore};
use parley_domain::system_messages::{self, Audience, MessageFacts, SystemEvent, SystemMessagesContent};
use parley_domain::{
    Conversation, ConversationId, EntryBody, Sender, ServiceId, SystemMessages, SystemMessagesId, UserId,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How customer texts name a hidden user.
const HIDDEN_USER: &str = "Agent";

/// The tenant's system messages items, by id.
pub(super) type Items = BTreeMap<SystemMessagesId, Arc<SystemMessagesContent>>;

/// Where a chat stands when a text is rendered.
struct Context<'a> {
    conversation: &'a Conversation,
    item: Option<Arc<SystemMessagesContent>>,
    service: Option<ServiceId>,
    initial_service: Option<ServiceId>,
    user: Option<UserId>,
    parameters: Option<&'a BTreeMap<String, String>>,
    known: Known,
}

/// Facts a caller telling many chats at once has counted already: each is otherwise a walk,
/// through the queue ahead of the chat or through the service's members.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Known {
    pub queue_position: Option<u32>,
    pub available_users: Option<u32>,
}

impl TenantCore {
    /// Replaces the tenant's system messages items (a change reaches open chats at once).
    pub fn set_system_messages(&mut self, items: Vec<SystemMessages>) {
        self.texts = items.into_iter().map(|i| (i.id, Arc::new(i.content))).collect();
    }

    fn item_of_service(&self, service: ServiceId) -> Option<Arc<SystemMessagesContent>> {
        let id = self.services.get(&service)?.service.system_messages_id?;
        self.texts.get(&id).cloned()
    }

    fn item_of_user(&self, user: UserId) -> Option<Arc<SystemMessagesContent>> {
        let id = self.users.get(&user)?.direct.settings.system_messages_id?;
        self.texts.get(&id).cloned()
    }

    /// The facts of an open chat (service or direct); `user` overrides the chat's own agent
    /// (a text about an offer names the user offered it).
    fn context(&self, id: ConversationId, user: Option<UserId>) -> Option<Context<'_>> {
        if let Some(l) = self.live.get(&id) {
            return Some(Context {
                conversation: &l.conversation,
                item: self.item_of_service(l.service),
                service: Some(l.service),
                initial_service: Some(l.initial_service),
                user: user.or(l.conversation.agent_id),
                parameters: l.run.as_ref().map(|r| &r.session.params),
                known: Known::default(),
            });
        }
        let d = self.direct.get(&id)?;
        Some(self.direct_context(&d.conversation))
    }

    /// The facts of a direct chat, also once it has left the open set.
    fn direct_context<'a>(&self, c: &'a Conversation) -> Context<'a> {
        Context {
            conversation: c,
            item: c.direct_user_id.and_then(|u| self.item_of_user(u)),
            service: None,
            initial_service: None,
            user: c.direct_user_id,
            parameters: None,
            known: Known::default(),
        }
    }

    fn facts<'a>(&'a self, cx: &'a Context<'a>, names: &'a Names) -> MessageFacts<'a> {
        MessageFacts {
            conversation: cx.conversation,
            service_name: names.service.as_deref(),
            service_display_name: names.shown_service.as_deref(),
            initial_service_name: names.initial_service.as_deref(),
            user_name: names.user.as_deref(),
            queue_position: cx
                .known
                .queue_position
                .or_else(|| self.router.position(cx.conversation.id).and_then(|p| u32::try_from(p).ok())),
            available_users: cx.known.available_users.or_else(|| cx.service.map(|s| self.router.staffing(s).free)),
            parameters: cx.parameters,
            parameter_defaults: Some(&self.parameter_defaults),
        }
    }

    fn names(&self, cx: &Context<'_>) -> Names {
        let service = cx.service.map(|s| self.service_name(s));
        let initial = cx.initial_service.map(|s| self.service_name(s));
        let shown_service = match (&initial, &service) {
            (Some(i), Some(s)) => Some(system_messages::service_name_for_customer(cx.item.as_deref(), i, s)),
            _ => None,
        };
        Names {
            service,
            shown_service,
            initial_service: initial,
            user: cx.user.and_then(|u| self.users.get(&u)).map(|u| u.display_name.clone()),
        }
    }

    /// The text of `event` for a chat in the customer's language, rendered; `fallback` when the
    /// item has none; `None` when that leaves nothing to say.
    fn render_in(&self, cx: &Context<'_>, event: SystemEvent, fallback: Option<String>) -> Option<String> {
        let language = cx.conversation.customer.language.as_deref();
        // Names and facts only for a text to render: most events of most items have none, and
        // the facts cost a walk through the queue (once per waiting chat when a queue moves).
        let Some(template) = cx.item.as_deref().and_then(|i| i.text_for(event, language)) else {
            let text = fallback?;
            let text = text.trim();
            return (!text.is_empty()).then(|| text.to_owned());
        };
        let mut names = self.names(cx);
        if event.audience() == Audience::Customer {
            // The customer only ever reads the user under the name the item gives them, so
            // `$(User.…)` in their texts never reveals a hidden or renamed user's own name.
            names.user = names.user.is_some().then(|| match self.alias_in(cx, &names) {
                shown if shown.is_empty() => HIDDEN_USER.to_owned(),
                shown => shown,
            });
        }
        let text = system_messages::render(template, &self.facts(cx, &names));
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// Sends the text of `event` of an open chat: a system message in its log for the customer,
    /// a notice for `user` (or the chat's agent) for a user's event.
    pub(super) fn say(
        &self,
        id: ConversationId,
        event: SystemEvent,
        user: Option<UserId>,
        fallback: Option<String>,
        out: &mut Vec<Out>,
    ) {
        let Some(cx) = self.context(id, user) else { return };
        self.say_in(&cx, event, fallback, out);
    }

    /// [`Self::say`] with facts the caller has just counted.
    pub(super) fn say_known(&self, id: ConversationId, event: SystemEvent, known: Known, out: &mut Vec<Out>) {
        let Some(cx) = self.context(id, None) else { return };
        self.say_in(&Context { known, ..cx }, event, None, out);
    }

    fn say_in(&self, cx: &Context<'_>, event: SystemEvent, fallback: Option<String>, out: &mut Vec<Out>) {
        let Some(text) = self.render_in(cx, event, fallback) else { return };
        let id = cx.conversation.id;
        match event.audience() {
            Audience::Customer => out.push(system_text(id, text)),
            Audience::User => {
                if let Some(agent) = cx.user {
                    out.push(Out::Notice { agent, conversation: id, event, text });
                }
            }
        }
    }

    /// The rendered text of `event` of an open chat, for a caller that places it itself.
    pub(super) fn text(&self, id: ConversationId, event: SystemEvent) -> Option<String> {
        self.render_in(&self.context(id, None)?, event, None)
    }

    /// The text of a customer's event of a direct chat that is ending (already out of the open
    /// set), with Parley's built-in text as the fallback.
    pub(super) fn direct_text(&self, c: &Conversation, event: SystemEvent, fallback: String) -> Option<String> {
        self.render_in(&self.direct_context(c), event, Some(fallback))
    }

    /// The name the customer reads for `user` in this chat, as its item says.
    pub(super) fn alias(&self, id: ConversationId, user: UserId) -> String {
        let Some(cx) = self.context(id, Some(user)) else { return String::new() };
        self.alias_in(&cx, &self.names(&cx))
    }

    /// The name the customer reads for a direct chat's user (the invitation, the built-in
    /// texts); `None` when the user is unknown.
    pub(super) fn direct_alias(&self, c: &Conversation) -> Option<String> {
        let cx = self.direct_context(c);
        let names = self.names(&cx);
        names.user.is_some().then(|| match self.alias_in(&cx, &names) {
            shown if shown.is_empty() => HIDDEN_USER.to_owned(),
            shown => shown,
        })
    }

    /// The alias fixed at the connection, or the one the item would give now (before it).
    fn alias_in(&self, cx: &Context<'_>, names: &Names) -> String {
        if let Some(alias) = &cx.conversation.agent_alias {
            return alias.clone();
        }
        system_messages::agent_name_for_customer(cx.item.as_deref(), &self.facts(cx, names))
    }
}

struct Names {
    service: Option<String>,
    /// The service as the customer reads it (the item's service name setting).
    shown_service: Option<String>,
    initial_service: Option<String>,
    user: Option<String>,
}

pub(super) fn system_text(conversation: ConversationId, text: String) -> Out {
    Out::Append { conversation, body: EntryBody::Message { sender: Sender::System, text, attachment: None } }
}
