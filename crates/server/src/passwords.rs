//! Password hashing and checking, off the async runtime, on a fixed number of threads behind a
//! bounded queue.
//!
//! Each Argon2id run takes 19 MiB. Run on the runtime's blocking pool, every concurrent sign-in
//! got a thread and its own allocator arena, so 48 sign-ins at once (with any e-mail: unknown
//! users are checked against a dummy hash) held a gigabyte that the allocator never gave back.
//! Here at most `workers` runs happen at once, on `workers` threads that each keep one Argon2
//! memory block and use it for every run: the memory stays `workers` × 19 MiB however many
//! sign-ins arrive, and nothing is left to the allocator to keep. Callers beyond the queue's room
//! are turned away at once with 503 and `Retry-After`, never piled up.

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
    let mut memory = Memory::default();
    loop {
        // One worker waits on the queue at a time; the lock is released before the work.
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(Job::Hash { password, reply }) => {
                let _ = reply.send(memory.hash(&password).map_err(|e| ApiError::internal(&e)));
            }
            Ok(Job::Verify { password, phc, reply }) => {
                let _ = reply.send(memory.verify(&password, &phc));
            }
            Err(_) => return,
        }
    }
}

/// One worker's Argon2 memory, grown once to the size its parameters need and reused.
#[derive(Default)]
struct Memory {
    blocks: Vec<argon2::Block>,
}

impl Memory {
    /// Argon2id with the default parameters and a random salt, as a PHC string.
    fn hash(&mut self, password: &str) -> Result<String, argon2::password_hash::Error> {
        use argon2::password_hash::{Output, PasswordHash, SaltString};
        use rand::RngCore;
        let params = argon2::Params::default();
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
        self.run(argon2::Algorithm::Argon2id, argon2::Version::V0x13, &params, password, &salt, &mut out)?;
        let salt = SaltString::encode_b64(&salt)?;
        let phc = PasswordHash {
            algorithm: argon2::Algorithm::Argon2id.ident(),
            version: Some(argon2::Version::V0x13.into()),
            params: (&params).try_into()?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out)?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` gives the hash of `phc` (its algorithm, version, parameters and salt).
    fn verify(&mut self, password: &str, phc: &str) -> bool {
        self.check(password, phc).unwrap_or(false)
    }

    fn check(&mut self, password: &str, phc: &str) -> Result<bool, argon2::password_hash::Error> {
        use argon2::password_hash::{Error, PasswordHash};
        let h = PasswordHash::new(phc)?;
        let algorithm = argon2::Algorithm::try_from(h.algorithm)?;
        let version = h.version.map(argon2::Version::try_from).transpose()?.unwrap_or_default();
        let params = argon2::Params::try_from(&h)?;
        let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return Err(Error::PhcStringField) };
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf)?;
        let mut out = vec![0u8; expected.len()];
        self.run(algorithm, version, &params, password, salt, &mut out)?;
        Ok(crate::auth::ct_eq_bytes(&out, expected.as_bytes()))
    }

    fn run(
        &mut self,
        algorithm: argon2::Algorithm,
        version: argon2::Version,
        params: &argon2::Params,
        password: &str,
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::password_hash::Error> {
        let n = params.block_count();
        if self.blocks.len() < n {
            self.blocks.resize(n, argon2::Block::default());
        }
        argon2::Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut self.blocks[..n])
            .map_err(argon2::password_hash::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_read_like_the_library_s_and_check_against_them_both_ways() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
        let library = argon2::Argon2::default();
        let mut m = Memory::default();
        let ours = m.hash("correct horse").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(library.verify_password(b"correct horse", &parsed).is_ok(), "the library accepts ours");
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = library.hash_password(b"correct horse", &salt).unwrap().to_string();
        assert!(m.verify("correct horse", &theirs), "we accept the library's");
        assert!(!m.verify("correct horsE", &theirs));
        assert!(!m.verify("x", crate::auth::DUMMY_PHC));
        assert!(!m.verify("x", "not a hash"));
    }

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
