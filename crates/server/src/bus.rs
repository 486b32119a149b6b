//! In-process fan-out of live events to the sockets that care: a conversation's log entries,
//! typing signals and receipts to its visitor and agent, an agent's offers and chat changes to
//! that agent's tabs.
//!
//! Delivery is best effort by design: a receiver that falls behind is told it lagged and
//! re-reads the durable log, so no acknowledged entry is ever lost to a slow socket. Typing
//! signals are ephemeral: never stored, so a lagging or reconnecting socket simply misses them.

pub use parley_domain::event::{LiveEvent, Topic};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// The fan-out every part publishes to and every socket follows. The engines and the sockets see
/// only this trait and domain events; a bus between nodes (NATS) implements it without either
/// noticing. Its receivers lag like a local one's: a socket told it lagged re-reads the store.
pub trait EventBus: Send + Sync + std::fmt::Debug + 'static {
    /// Sends to the topic's current subscribers (none: dropped; nothing here is durable).
    fn publish(&self, topic: Topic, event: LiveEvent);
    /// Receives every event published to `topic` from now on.
    fn subscribe(&self, topic: Topic) -> broadcast::Receiver<Arc<LiveEvent>>;
}

/// Events buffered per topic before a slow receiver lags (it then re-reads the store).
const TOPIC_CAPACITY: usize = 128;
/// Every this many subscriptions, topics nobody listens to any more are dropped.
const SWEEP_EVERY: u64 = 256;

/// The bus of one process. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct LocalBus {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<LiveEvent>>>>,
    subscriptions: std::sync::atomic::AtomicU64,
}

impl LocalBus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of topics with a live sender, for tests and metrics.
    #[must_use]
    pub fn topic_count(&self) -> usize {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl EventBus for LocalBus {
    fn subscribe(&self, topic: Topic) -> broadcast::Receiver<Arc<LiveEvent>> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        // Sockets of ended chats go away without a last publish; sweep their topics now and then
        // so the map stays as large as the live audience, at an amortised O(1) per subscribe.
        let n = self.subscriptions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            topics.retain(|_, tx| tx.receiver_count() > 0);
        }
        topics.entry(topic).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0).subscribe()
    }

    /// Forgets topics nobody listens to any more.
    fn publish(&self, topic: Topic, event: LiveEvent) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = topics.get(&topic)
            && tx.send(Arc::new(event)).is_err()
        {
            topics.remove(&topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_domain::event::Typist;
    use parley_domain::{ConversationId, Presence, TenantId, UserId};
    use uuid::Uuid;

    fn topic() -> Topic {
        Topic::agent(TenantId::from_uuid(Uuid::nil()), UserId::from_uuid(Uuid::nil()))
    }

    fn away() -> LiveEvent {
        LiveEvent::Presence { presence: Presence::Away }
    }

    #[test]
    fn subscribers_receive_what_is_published_after_they_subscribe() {
        let bus = LocalBus::new();
        let mut rx = bus.subscribe(topic());
        bus.publish(topic(), away());
        assert_eq!(*rx.try_recv().unwrap(), away());
    }

    #[test]
    fn topics_of_closed_sockets_are_swept() {
        let bus = LocalBus::new();
        for n in 0..SWEEP_EVERY {
            let t = Topic::agent(TenantId::from_uuid(Uuid::from_u128(u128::from(n))), UserId::from_uuid(Uuid::nil()));
            drop(bus.subscribe(t));
        }
        assert!(bus.topic_count() <= 1, "{} topics left", bus.topic_count());
    }

    #[test]
    fn typing_travels_on_the_conversation_topic() {
        let bus = LocalBus::new();
        let t = Topic::conversation(TenantId::from_uuid(Uuid::nil()), ConversationId::from_uuid(Uuid::nil()));
        let mut rx = bus.subscribe(t);
        bus.publish(t, LiveEvent::Typing { who: Typist::Customer, name: "Ann".into() });
        assert!(matches!(&*rx.try_recv().unwrap(), LiveEvent::Typing { who: Typist::Customer, .. }));
    }

    #[test]
    fn topics_without_listeners_are_forgotten() {
        let bus = LocalBus::new();
        drop(bus.subscribe(topic()));
        bus.publish(topic(), away());
        assert_eq!(bus.topic_count(), 0);
    }
}
