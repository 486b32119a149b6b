//! Password hashing and checking, off the async runtime, on a fixed number of threads behind a
//! bounded queue.
//!
//! Each Argon2id run takes 19 MiB. Run on the runtime's blocking pool, every concurrent sign-in
//! got a thread and its own allocator arena, so 48 sign-ins at once (with any e-mail: unknown
//! users are checked against a dummy hash) held a gigabyte that the allocator never gave back.
//! Here at most `workers` runs happen at once on `workers` threads, so what the allocator keeps
//! is bounded by those threads' arenas (about 150 MiB for two, measured) however many sign-ins
//! arrive; callers beyond the queue's room are turned away at once with 503 and `Retry-After`,
//! never piled up. Giving that memory back (one reused block per worker) is still to do.

use crate::error::ApiError;
use axum::http::StatusCode;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

enum Job {
    Hash { password: String, reply: oneshot::Sender<Result<String, ApiError>> },
    Verify { password: String, phc: String, reply: oneshot::Sender<bool> },
}

/// The hashing workers. Dropping it lets them finish their queue and exit.
#[derive(Debug)]
pub struct Passwords {
    jobs: SyncSender<Job>,
}

impl Passwords {
    /// Starts `workers` threads (at least one) that take jobs from a queue of `queue` places.
    ///
    /// # Errors
    /// If a thread cannot be started.
    pub fn start(workers: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new().name(format!("parley-passwords-{n}")).spawn(move || work(&rx))?;
        }
        Ok(Self { jobs })
    }

    /// Argon2id hash of a password, PHC string form.
    ///
    /// # Errors
    /// `busy` (503) when the queue is full; internal when hashing fails.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        answer.await.map_err(|e| ApiError::internal(&e))?
    }

    /// Whether the password matches the stored hash.
    ///
    /// # Errors
    /// `busy` (503) when the queue is full.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify { password, phc, reply })?;
        answer.await.map_err(|e| ApiError::internal(&e))
    }

    fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                tracing::warn!("password checks are all busy: a sign-in was turned away");
                busy()
            }
            TrySendError::Disconnected(_) => ApiError::internal(&"the password workers stopped"),
        })
    }
}

fn busy() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many sign-ins at once; retry in a moment")
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // One worker waits on the queue at a time; the lock is released before the work.
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(Job::Hash { password, reply }) => {
                let _ = reply.send(crate::auth::hash_password(&password));
            }
            Ok(Job::Verify { password, phc, reply }) => {
                let _ = reply.send(crate::auth::verify_password(&password, &phc));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_and_a_wrong_password_does_not() {
        let p = Passwords::start(1, 4).unwrap();
        let phc = p.hash("correct horse".into()).await.unwrap();
        assert!(p.verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!p.verify("wrong".into(), phc).await.unwrap());
    }

    #[tokio::test]
    async fn callers_beyond_the_queue_are_turned_away_at_once() {
        let p = Arc::new(Passwords::start(1, 2).unwrap());
        // One running and two queued fill it; the rest are refused without waiting.
        let mut waiting = Vec::new();
        let mut refused = 0;
        for _ in 0..8 {
            let (reply, answer) = oneshot::channel();
            match p.submit(Job::Verify { password: "x".into(), phc: crate::auth::DUMMY_PHC.into(), reply }) {
                Ok(()) => waiting.push(answer),
                Err(e) => {
                    assert_eq!((e.status, e.code), (StatusCode::SERVICE_UNAVAILABLE, "busy"));
                    refused += 1;
                }
            }
        }
        assert!((5..=6).contains(&refused), "{refused} refused");
        for w in waiting {
            assert!(!w.await.unwrap());
        }
    }
}
