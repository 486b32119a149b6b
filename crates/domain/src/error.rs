//! Validation errors that name the offending field, so an API client can point at it.

use serde::Serialize;

/// One rule an input broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON-pointer-like path of the field, e.g. `/members/0/user_id`.
    pub path: String,
    /// Stable rule code, e.g. `too_long`, `required`, `invalid_email`.
    pub code: &'static str,
    /// A human sentence explaining the rule.
    pub message: String,
    /// The workflow node the error is about, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Every rule an input broke, in field order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{} validation error(s), first at {}", .0.len(), .0.first().map_or("", |e| e.path.as_str()))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records one broken rule.
    pub fn push(&mut self, path: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError { path: path.into(), code, message: message.into(), node: None });
    }

    /// Records one broken rule about a workflow node.
    pub fn push_node(&mut self, node: &str, path: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError { path: path.into(), code, message: message.into(), node: Some(node.to_owned()) });
    }

    /// `Ok(value)` when nothing was recorded, the errors otherwise.
    ///
    /// # Errors
    /// Returns `self` when at least one rule was broken.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }

    /// A single-error value.
    #[must_use]
    pub fn single(path: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.push(path, code, message);
        e
    }
}
