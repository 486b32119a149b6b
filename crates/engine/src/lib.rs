//! The pure cores that decide what happens to a chat: the workflow interpreter and the router.
//!
//! Both are plain state machines: inputs in, effects out, time passed in. This crate must not
//! depend on tokio, sqlx, axum or any IO, and must never read the clock; the server's tenant
//! engine feeds them and carries out their effects.

pub mod router;
pub mod simulate;
pub mod tenant;
pub mod workflow;

pub use router::{Effect, Input, Phase, Router, Staffing};
pub use workflow::{Effect as WorkflowEffect, Facts, Input as WorkflowInput, Outcome, Session, handle};
