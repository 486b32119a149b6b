//! A conversation's transcript as plain text, for the customer to keep: who wrote what and when,
//! in the customer's time zone, with files and events named. Plain text on purpose: it opens
//! everywhere, prints, pastes into an e-mail and cannot carry anything active.

use crate::calendar::zone;
use crate::conversation::{ConversationEvent, EndedBy, EntryBody, LogEntry, Sender};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

/// A time zone a transcript can be written in.
#[derive(Debug, Clone)]
pub struct TranscriptZone {
    name: String,
    tz: TimeZone,
}

impl TranscriptZone {
    /// An IANA zone name (`Europe/Zurich`) from the bundled database; `None` when unknown.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        zone(name).map(|tz| Self { name: name.to_owned(), tz })
    }

    /// Coordinated universal time.
    #[must_use]
    pub fn utc() -> Self {
        Self { name: "UTC".into(), tz: TimeZone::UTC }
    }

    fn local(&self, t: OffsetDateTime, with_date: bool) -> String {
        let Ok(ts) = Timestamp::from_second(t.unix_timestamp()) else { return String::new() };
        let d = self.tz.to_datetime(ts);
        let time = format!("{:02}:{:02}", d.hour(), d.minute());
        if with_date { format!("{:04}-{:02}-{:02} {time}", d.year(), d.month(), d.day()) } else { time }
    }
}

/// The transcript of `entries` (in `seq` order) of a chat with `service_name`.
#[must_use]
pub fn render(service_name: &str, started: OffsetDateTime, entries: &[LogEntry], zone: &TranscriptZone) -> String {
    let mut out = format!("Chat with {service_name}\nStarted {} ({})\n\n", zone.local(started, true), zone.name);
    for e in entries {
        let at = zone.local(e.created_at, false);
        match &e.body {
            EntryBody::Message { sender, text, attachment } => {
                let who = match sender {
                    Sender::Customer { name } => name.as_str(),
                    // An agent whose service hides names writes under an empty alias.
                    Sender::Agent { name, .. } if name.is_empty() => "Agent",
                    Sender::Agent { name, .. } => name.as_str(),
                    Sender::System => service_name,
                };
                let mut body = text.replace('\n', "\n        ");
                if let Some(a) = attachment {
                    if !body.is_empty() {
                        body.push(' ');
                    }
                    body.push_str(&format!("[file: {}]", a.name));
                }
                out.push_str(&format!("[{at}] {who}: {body}\n"));
            }
            EntryBody::Event { event } => {
                if let Some(line) = event_line(event) {
                    out.push_str(&format!("[{at}] -- {line} --\n"));
                }
            }
        }
    }
    out
}

fn event_line(event: &ConversationEvent) -> Option<String> {
    Some(match event {
        ConversationEvent::Connected { agent_name, .. } if agent_name.is_empty() => "an agent joined".into(),
        ConversationEvent::Connected { agent_name, .. } => format!("{agent_name} joined"),
        ConversationEvent::Transferred { .. } => "transferred".into(),
        ConversationEvent::Ended { by: EndedBy::Customer } => "you ended the chat".into(),
        ConversationEvent::Ended { by: EndedBy::Agent } => "the agent ended the chat".into(),
        ConversationEvent::Ended { by: EndedBy::System } => "the chat was closed".into(),
        // Bookkeeping a customer does not need in their copy.
        ConversationEvent::Accepted | ConversationEvent::Queued | ConversationEvent::Invited { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attachment;
    use crate::ids::{AttachmentId, ConversationId, UserId};
    use time::macros::datetime;
    use uuid::Uuid;

    fn entry(seq: i64, at: OffsetDateTime, body: EntryBody) -> LogEntry {
        LogEntry {
            conversation_id: ConversationId::from_uuid(Uuid::nil()),
            seq,
            client_msg_id: None,
            body,
            created_at: at,
        }
    }

    fn msg(sender: Sender, text: &str) -> EntryBody {
        EntryBody::Message { sender, text: text.into(), attachment: None }
    }

    #[test]
    fn a_transcript_names_who_wrote_what_and_when_in_the_customers_zone() {
        let agent = UserId::from_uuid(Uuid::nil());
        let t0 = datetime!(2026-07-01 08:00 UTC);
        let file = Attachment {
            id: AttachmentId::from_uuid(Uuid::nil()),
            name: "invoice.pdf".into(),
            content_type: "application/pdf".into(),
            size: 10,
        };
        let entries = [
            entry(1, t0, EntryBody::Event { event: ConversationEvent::Accepted }),
            entry(2, t0, msg(Sender::System, "Welcome!")),
            entry(3, datetime!(2026-07-01 08:01 UTC), msg(Sender::Customer { name: "Tess".into() }, "Hi\nmy order")),
            entry(
                4,
                datetime!(2026-07-01 08:02 UTC),
                EntryBody::Event { event: ConversationEvent::Connected { agent_id: agent, agent_name: "Ann".into() } },
            ),
            entry(
                5,
                datetime!(2026-07-01 08:03 UTC),
                EntryBody::Message {
                    sender: Sender::Agent { id: agent, name: "Ann".into() },
                    text: String::new(),
                    attachment: Some(file),
                },
            ),
            entry(
                6,
                datetime!(2026-07-01 08:04 UTC),
                EntryBody::Event { event: ConversationEvent::Ended { by: EndedBy::Agent } },
            ),
        ];
        let text = render("Support", t0, &entries, &TranscriptZone::named("Europe/Zurich").unwrap());
        assert_eq!(
            text,
            "Chat with Support\nStarted 2026-07-01 10:00 (Europe/Zurich)\n\n\
             [10:00] Support: Welcome!\n\
             [10:01] Tess: Hi\n        my order\n\
             [10:02] -- Ann joined --\n\
             [10:03] Ann: [file: invoice.pdf]\n\
             [10:04] -- the agent ended the chat --\n"
        );
        let utc = render("Support", t0, &entries[..2], &TranscriptZone::utc());
        assert!(
            utc.starts_with("Chat with Support\nStarted 2026-07-01 08:00 (UTC)\n\n[08:00] Support: Welcome!\n"),
            "{utc}"
        );
    }

    #[test]
    fn only_known_zones_are_accepted() {
        assert!(TranscriptZone::named("America/New_York").is_some());
        assert!(TranscriptZone::named("Mars/Olympus").is_none());
        assert!(TranscriptZone::named("").is_none());
    }
}
