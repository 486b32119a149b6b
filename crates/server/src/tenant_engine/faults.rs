//! Switches that make a tenant's engine fail on purpose, for the tests of its supervision
//! (compiled only with the `fault-injection` feature, which the test kit turns on; a release
//! build has none of this).

use parley_domain::TenantId;
use parley_store::StoreError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// What should go wrong next.
#[derive(Debug)]
pub struct Faults {
    panic_on: Mutex<BTreeSet<TenantId>>,
    fail_commits: Mutex<BTreeMap<TenantId, u32>>,
    hold: tokio::sync::watch::Sender<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            panic_on: Mutex::new(BTreeSet::new()),
            fail_commits: Mutex::new(BTreeMap::new()),
            hold: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Faults {
    /// The tenant's next command panics (once).
    pub fn panic_next_command(&self, tenant: TenantId) {
        self.panic_on.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant);
    }

    /// The tenant's next `n` commits that write anything fail as if the database were gone.
    pub fn fail_next_commits(&self, tenant: TenantId, n: u32) {
        self.fail_commits.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant, n);
    }

    /// While held, every rebuild waits before it reads the store.
    pub fn hold_rebuilds(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    pub(super) async fn before_rebuild(&self) {
        let mut held = self.hold.subscribe();
        let _ = held.wait_for(|h| !*h).await;
    }

    pub(super) fn before_command(&self, tenant: TenantId) {
        let panic = self.panic_on.lock().unwrap_or_else(PoisonError::into_inner).remove(&tenant);
        assert!(!panic, "fault injection: this command panics");
    }

    pub(super) fn before_commit(&self, tenant: TenantId, writes: usize) -> Result<(), StoreError> {
        if writes == 0 {
            return Ok(());
        }
        let mut fail = self.fail_commits.lock().unwrap_or_else(PoisonError::into_inner);
        match fail.get_mut(&tenant) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(StoreError::Unavailable("fault injection: the commit fails".into()))
            }
            _ => Ok(()),
        }
    }
}
