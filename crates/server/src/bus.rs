//! In-process fan-out of live events to the sockets that care: a conversation's log entries,
//! typing signals and receipts to its visitor and agent, an agent's offers and chat changes to
//! that agent's tabs.
//!
//! Delivery is best effort by design: a receiver that falls behind is told it lagged and
//! re-reads the durable log, so no acknowledged entry is ever lost to a slow socket. Typing
//! signals are ephemeral: never stored, so a lagging or reconnecting socket simply misses them.

use crate::ws::protocol::{AgentFrame, Typist, VisitorFrame};
use parley_domain::{ConversationId, LogEntry, Reader, TenantId, UserId, Watermark};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Conversation(TenantId, ConversationId),
    Agent(TenantId, UserId),
}

/// What travels on the bus.
#[derive(Debug, Clone)]
pub enum BusEvent {
    /// A committed log entry.
    Entry(LogEntry),
    /// A frame for an agent's workspace.
    Agent(AgentFrame),
    /// A frame for the conversation's visitor only (queue position).
    Visitor(VisitorFrame),
    /// Someone in the conversation is typing: ephemeral, never written to the log nor replayed.
    /// The visitor's socket passes on the agent's, the agent's sockets the customer's.
    Typing {
        who: Typist,
        /// The typist's display name.
        name: String,
    },
    /// One side's receipt marks moved (they are stored; this only tells the other side now).
    Receipt { reader: Reader, mark: Watermark },
}

/// Events buffered per topic before a slow receiver lags (it then re-reads the store).
const TOPIC_CAPACITY: usize = 128;
/// Every this many subscriptions, topics nobody listens to any more are dropped.
const SWEEP_EVERY: u64 = 256;

/// The local bus. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Bus {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<BusEvent>>>>,
    subscriptions: std::sync::atomic::AtomicU64,
}

impl Bus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Receives every event published to `topic` from now on.
    pub fn subscribe(&self, topic: Topic) -> broadcast::Receiver<Arc<BusEvent>> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        // Sockets of ended chats go away without a last publish; sweep their topics now and then
        // so the map stays as large as the live audience, at an amortised O(1) per subscribe.
        let n = self.subscriptions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            topics.retain(|_, tx| tx.receiver_count() > 0);
        }
        topics.entry(topic).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0).subscribe()
    }

    /// Sends to the topic's current subscribers; forgets topics nobody listens to any more.
    pub fn publish(&self, topic: Topic, event: BusEvent) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = topics.get(&topic)
            && tx.send(Arc::new(event)).is_err()
        {
            topics.remove(&topic);
        }
    }

    /// Number of topics with a live sender, for tests and metrics.
    #[must_use]
    pub fn topic_count(&self) -> usize {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::protocol::AgentFrame;
    use parley_domain::Presence;
    use uuid::Uuid;

    fn topic() -> Topic {
        Topic::Agent(TenantId::from_uuid(Uuid::nil()), UserId::from_uuid(Uuid::nil()))
    }

    #[test]
    fn subscribers_receive_what_is_published_after_they_subscribe() {
        let bus = Bus::new();
        let mut rx = bus.subscribe(topic());
        bus.publish(topic(), BusEvent::Agent(AgentFrame::Presence { presence: Presence::Away }));
        assert!(matches!(&*rx.try_recv().unwrap(), BusEvent::Agent(AgentFrame::Presence { .. })));
    }

    #[test]
    fn topics_of_closed_sockets_are_swept() {
        let bus = Bus::new();
        for n in 0..SWEEP_EVERY {
            let t = Topic::Agent(TenantId::from_uuid(Uuid::from_u128(u128::from(n))), UserId::from_uuid(Uuid::nil()));
            drop(bus.subscribe(t));
        }
        assert!(bus.topic_count() <= 1, "{} topics left", bus.topic_count());
    }

    #[test]
    fn typing_travels_on_the_conversation_topic() {
        let bus = Bus::new();
        let t = Topic::Conversation(TenantId::from_uuid(Uuid::nil()), ConversationId::from_uuid(Uuid::nil()));
        let mut rx = bus.subscribe(t);
        bus.publish(t, BusEvent::Typing { who: Typist::Customer, name: "Ann".into() });
        assert!(matches!(&*rx.try_recv().unwrap(), BusEvent::Typing { who: Typist::Customer, .. }));
    }

    #[test]
    fn topics_without_listeners_are_forgotten() {
        let bus = Bus::new();
        drop(bus.subscribe(topic()));
        bus.publish(topic(), BusEvent::Agent(AgentFrame::Presence { presence: Presence::Away }));
        assert_eq!(bus.topic_count(), 0);
    }
}
