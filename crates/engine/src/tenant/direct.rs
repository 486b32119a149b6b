//! Direct chats: a visitor on a user's personal snippet invites that one user, with no
//! workflow and no queue (spec §2.b). The user accepts, declines or lets the invitation run out
//! (missed); once connected, either side ends the chat.
//!
//! They stay outside the router on purpose (ADR 10): a personal chat is the user's own choice,
//! so it neither waits for free capacity nor is redistributed (no RONA), and it starts no
//! after-chat work. Their time still shows in reporting as user sessions.

use super::{Out, Refusal, TenantCore, UserSessionFact};
use parley_domain::system_messages::SystemEvent;
use parley_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationStatus, EndedBy, EntryBody, Outcome, Presence, Sender,
    UserId, UserOutcome,
};
use time::{Duration, OffsetDateTime};

/// One open direct chat.
#[derive(Debug, Clone)]
pub(super) struct Direct {
    pub(super) conversation: Conversation,
    pub(super) user: UserId,
    invited_at: OffsetDateTime,
    /// Until when the invitation may be answered; `None` once accepted.
    pub(super) deadline: Option<OffsetDateTime>,
    answered_at: Option<OffsetDateTime>,
    /// While connected: the customer's silence.
    pub(super) idle: Option<super::Idle>,
}

/// Texts the customer reads when the user cannot or does not take the chat.
fn unavailable_text(name: &str) -> String {
    format!("{name} is not available right now. Please try again later.")
}

fn declined_text(name: &str) -> String {
    format!("{name} cannot take your chat right now. Please try again later.")
}

fn missed_text(name: &str) -> String {
    format!("{name} did not answer in time. Please try again later.")
}

impl TenantCore {
    /// A new direct chat: invites its user, or ends at once (missed) when they cannot be
    /// reached (unknown, not taking direct chats, offline, or with no workspace open).
    pub fn start_direct(&mut self, conversation: Conversation, now: OffsetDateTime) -> Vec<Out> {
        let id = conversation.id;
        let mut out = Vec::new();
        let Some(user_id) = conversation.direct_user_id else { return out };
        if self.is_open(id) {
            return out;
        }
        let reachable = self.users.get(&user_id).filter(|u| {
            u.takes_direct_chats() && u.presence != Presence::Offline && self.connections.contains_key(&u.id)
        });
        let Some(user) = reachable.cloned() else {
            let name = self.direct_alias(&conversation).unwrap_or_else(|| "The person you asked for".to_owned());
            // It never reached the user: missed, with no user session.
            let reason = Some("the user was not available".to_owned());
            let text = self.direct_text(&conversation, SystemEvent::CustomerUnavailable, unavailable_text(&name));
            finish(conversation, Outcome::Missed, reason, text, now, &mut out);
            return out;
        };
        let deadline = now + Duration::seconds(i64::from(user.direct.settings.invite_secs));
        // The widget waits for the user under the name their texts give them.
        let user_name = self.direct_alias(&conversation).unwrap_or_else(|| user.display_name.clone());
        let mut conversation = conversation;
        conversation.status = ConversationStatus::Offered;
        conversation.agent_id = Some(user.id);
        out.push(Out::Status {
            conversation: id,
            status: ConversationStatus::Offered,
            agent: Some(user.id),
            ended_at: None,
        });
        out.push(Out::Append {
            conversation: id,
            body: EntryBody::Event { event: ConversationEvent::Invited { user_id: user.id, user_name, deadline } },
        });
        out.push(Out::Offer { agent: user.id, deadline, conversation: conversation.clone() });
        self.invite_timers.insert((deadline, id));
        self.direct.insert(
            id,
            Direct {
                conversation,
                user: user.id,
                invited_at: now,
                deadline: Some(deadline),
                answered_at: None,
                idle: None,
            },
        );
        self.say(id, SystemEvent::UserIncoming, None, None, &mut out);
        self.say(id, SystemEvent::CustomerIncoming, None, None, &mut out);
        out
    }

    /// Takes back an open direct chat after a restart: a connected one stays connected, an
    /// invitation starts again with a fresh deadline (the old one may have passed while down).
    pub(super) fn restore_direct(&mut self, conversation: Conversation, now: OffsetDateTime) -> Vec<Out> {
        let id = conversation.id;
        let Some(user) = conversation.direct_user_id else { return Vec::new() };
        if conversation.status == ConversationStatus::Connected && conversation.agent_id == Some(user) {
            // When it was answered is not kept; the restart is the best lower bound.
            let idle = Some(super::Idle { since: now, warned_at: None });
            self.direct.insert(
                id,
                Direct { conversation, user, invited_at: now, deadline: None, answered_at: Some(now), idle },
            );
            self.schedule_idle(id, now);
            return Vec::new();
        }
        let secs = self.users.get(&user).map_or(parley_domain::DEFAULT_INVITE_SECS, |u| u.direct.settings.invite_secs);
        let deadline = now + Duration::seconds(i64::from(secs));
        let mut conversation = conversation;
        let mut out = Vec::new();
        if conversation.status != ConversationStatus::Offered || conversation.agent_id != Some(user) {
            conversation.status = ConversationStatus::Offered;
            conversation.agent_id = Some(user);
            out.push(Out::Status {
                conversation: id,
                status: ConversationStatus::Offered,
                agent: Some(user),
                ended_at: None,
            });
        }
        out.push(Out::Offer { agent: user, deadline, conversation: conversation.clone() });
        self.invite_timers.insert((deadline, id));
        self.direct.insert(
            id,
            Direct { conversation, user, invited_at: now, deadline: Some(deadline), answered_at: None, idle: None },
        );
        out
    }

    /// `Some` when `id` is a direct chat: the user accepts their invitation.
    pub(super) fn accept_direct(
        &mut self,
        agent: UserId,
        id: ConversationId,
        now: OffsetDateTime,
    ) -> Option<Result<Vec<Out>, Refusal>> {
        let d = self.direct.get(&id)?;
        if d.user != agent || d.deadline.is_none() {
            return Some(Err(Refusal::OfferNotFound));
        }
        // The customer reads the user under the name their personal widget's texts give.
        let alias = self.alias(id, agent);
        let d = self.direct.get_mut(&id)?;
        d.deadline = None;
        d.answered_at = Some(now);
        // The customer's silence counts from the moment the user is there.
        d.idle = Some(super::Idle { since: now, warned_at: None });
        d.conversation.status = ConversationStatus::Connected;
        d.conversation.agent_alias = Some(alias.clone());
        let conversation = d.conversation.clone();
        self.schedule_idle(id, now);
        let mut out = vec![
            Out::Status { conversation: id, status: ConversationStatus::Connected, agent: Some(agent), ended_at: None },
            Out::AgentAlias { conversation: id, alias: alias.clone() },
            Out::Append {
                conversation: id,
                body: EntryBody::Event { event: ConversationEvent::Connected { agent_id: agent, agent_name: alias } },
            },
            Out::Chat { agent, conversation },
        ];
        self.say(id, SystemEvent::CustomerConnected, None, None, &mut out);
        self.say(id, SystemEvent::UserAccepted, None, None, &mut out);
        Some(Ok(out))
    }

    /// `Some` when `id` is a direct chat: the user declines their invitation and the chat ends.
    pub(super) fn decline_direct(
        &mut self,
        agent: UserId,
        id: ConversationId,
        now: OffsetDateTime,
    ) -> Option<Result<Vec<Out>, Refusal>> {
        let d = self.direct.get(&id)?;
        if d.user != agent || d.deadline.is_none() {
            return Some(Err(Refusal::OfferNotFound));
        }
        let d = self.direct.remove(&id)?;
        let name = self.direct_alias(&d.conversation).unwrap_or_default();
        let mut out = vec![Out::OfferWithdrawn { agent, conversation: id }];
        let session = self.session_fact(&d, UserOutcome::Declined, now);
        let text = self.direct_text(&d.conversation, SystemEvent::CustomerDeclined, declined_text(&name));
        finish(d.conversation, Outcome::Declined, Some("the user declined".to_owned()), text, now, &mut out);
        out.push(Out::UserSession(session));
        Some(Ok(out))
    }

    /// `Some` when `id` is a direct chat: either side ends it. An agent may end only their own
    /// connected chat; a customer leaving an invitation withdraws it.
    pub(super) fn end_direct(
        &mut self,
        id: ConversationId,
        by: EndedBy,
        agent: Option<UserId>,
        reason: Option<String>,
        now: OffsetDateTime,
    ) -> Option<Result<Vec<Out>, Refusal>> {
        let d = self.direct.get(&id)?;
        let connected = d.deadline.is_none();
        if agent.is_some_and(|a| a != d.user || !connected) {
            return Some(Err(Refusal::NotYourChat));
        }
        // Texts while the chat is still open: the customer's before the end, the user's after.
        let mut text = None;
        let mut note = Vec::new();
        if connected {
            let by_user = by == EndedBy::Agent;
            if by_user {
                text = self.text(id, SystemEvent::CustomerEnded);
            }
            let event = if by_user { SystemEvent::UserTerminated } else { SystemEvent::UserEnded };
            self.say(id, event, None, None, &mut note);
        }
        let d = self.direct.remove(&id)?;
        let mut out = Vec::new();
        let (outcome, user_outcome) = if connected {
            (Outcome::UserAccepted, UserOutcome::Accepted)
        } else {
            out.push(Out::OfferWithdrawn { agent: d.user, conversation: id });
            (Outcome::CustomerHangupInQueue, UserOutcome::Cancelled)
        };
        let session = self.session_fact(&d, user_outcome, now);
        let mut conversation = d.conversation;
        conversation.agent_id = connected.then_some(d.user);
        finish_by(conversation, by, outcome, reason, text, now, &mut out);
        out.extend(note);
        out.push(Out::UserSession(session));
        Some(Ok(out))
    }

    /// Invitations whose time ran out: missed.
    pub(super) fn invites_due(&mut self, now: OffsetDateTime, out: &mut Vec<Out>) {
        while let Some(&(at, id)) = self.invite_timers.first() {
            if at > now {
                break;
            }
            self.invite_timers.remove(&(at, id));
            // Stale entries (answered, ended, or re-invited after a restart) do not match.
            if self.direct.get(&id).is_none_or(|d| d.deadline != Some(at)) {
                continue;
            }
            let Some(d) = self.direct.remove(&id) else { continue };
            let name = self.direct_alias(&d.conversation).unwrap_or_default();
            out.push(Out::OfferWithdrawn { agent: d.user, conversation: id });
            let session = self.session_fact(&d, UserOutcome::Missed, at);
            let reason = Some("the user did not answer in time".to_owned());
            let text = self.direct_text(&d.conversation, SystemEvent::CustomerMissed, missed_text(&name));
            finish(d.conversation, Outcome::Missed, reason, text, at, out);
            out.push(Out::UserSession(session));
        }
    }

    pub(super) fn next_invite_deadline(&self) -> Option<OffsetDateTime> {
        self.invite_timers.first().map(|(t, _)| *t)
    }

    fn session_fact(&self, d: &Direct, outcome: UserOutcome, now: OffsetDateTime) -> UserSessionFact {
        UserSessionFact {
            conversation: d.conversation.id,
            service: None,
            user: d.user,
            outcome,
            offered_at: d.invited_at,
            answered_at: d.answered_at,
            ended_at: now,
        }
    }
}

/// Ends a direct chat the system closed (declined, missed, unavailable).
fn finish(
    conversation: Conversation,
    outcome: Outcome,
    reason: Option<String>,
    text: Option<String>,
    now: OffsetDateTime,
    out: &mut Vec<Out>,
) {
    let mut conversation = conversation;
    conversation.agent_id = None;
    finish_by(conversation, EndedBy::System, outcome, reason, text, now, out);
}

/// The end of a direct chat in the order the shell needs (as for service chats): the status
/// first, so the log refuses later messages; the outcome before the `ended` entry, so whoever
/// sees the end can read it.
fn finish_by(
    conversation: Conversation,
    by: EndedBy,
    outcome: Outcome,
    reason: Option<String>,
    text: Option<String>,
    now: OffsetDateTime,
    out: &mut Vec<Out>,
) {
    let id = conversation.id;
    if let Some(text) = text {
        out.push(Out::Append {
            conversation: id,
            body: EntryBody::Message { sender: Sender::System, text, attachment: None },
        });
    }
    out.push(Out::Status {
        conversation: id,
        status: ConversationStatus::Ended,
        agent: conversation.agent_id,
        ended_at: Some(now),
    });
    out.push(Out::Outcome { conversation: id, outcome, reason, run: None });
    out.push(Out::Append { conversation: id, body: EntryBody::Event { event: ConversationEvent::Ended { by } } });
}
