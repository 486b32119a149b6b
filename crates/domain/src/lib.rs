//! Parley's vocabulary: identifiers, configuration entities, the conversation log's entries and
//! the validation rules that every input passes before anything is stored.
//!
//! This crate is pure. It must not depend on tokio, sqlx, axum or anything that does IO, and it
//! never reads the clock or a random source: ids and timestamps are handed in by the shell.

pub mod access;
pub mod attachment;
pub mod calendar;
pub mod conversation;
pub mod entities;
pub mod error;
pub mod event;
pub mod ids;
pub mod parameter;
pub mod pattern;
pub mod report;
pub mod skill;
pub mod system_messages;
pub mod template;
pub mod transcript;
pub mod validate;
pub mod workflow;
pub mod wrap_up;

pub use access::{DomainTemplate, NewDomainTemplate, WidgetAccess};
pub use attachment::Attachment;
pub use conversation::*;
pub use entities::*;
pub use error::{FieldError, ValidationErrors};
pub use ids::*;
pub use parameter::{CustomParameter, NewParameter, ParameterPatch};
pub use report::{ServiceSession, UserOutcome, UserSession};
pub use skill::{NewSkill, PolicyLevel, Skill, SkillRequirement, UserSkill};
pub use system_messages::{MessageScope, NewSystemMessages, SystemEvent, SystemMessages, SystemMessagesContent};
pub use workflow::{
    Activity, DraftUpdate, NewWorkflow, Node, Workflow, WorkflowDefinition, WorkflowKind, WorkflowVersion,
};
pub use wrap_up::{Code, NewCode, ServiceCodes, WrapUp, WrapUpInput};
