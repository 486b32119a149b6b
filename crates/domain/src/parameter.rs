//! Custom parameters: named values a workflow reads and writes (`$(Parameter.<id>)`), each with a
//! tenant-unique id that never changes once created, so workflows can refer to it safely.

use crate::entities::{MAX_MESSAGE_CHARS, MAX_NAME_CHARS};
use crate::error::ValidationErrors;
use crate::ids::{OrgUnitId, TenantId};
use crate::validate::required_text;
use crate::workflow::is_parameter_id;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A stored custom parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomParameter {
    /// Tenant-unique and immutable: 1–64 letters, digits or `_`.
    pub id: String,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    /// The value every new session starts with.
    pub default_value: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/parameters`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewParameter {
    pub id: String,
    /// Organization unit; the tenant root when absent.
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    #[serde(default)]
    pub default_value: String,
}

impl NewParameter {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if !is_parameter_id(&self.id) {
            e.push("/id", "invalid_parameter_id", "must be 1-64 characters of letters, digits and _");
        }
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        check_default(&mut e, &self.default_value);
        e.into_result(self)
    }
}

/// Input of `PATCH /api/v1/parameters/{id}`: the id itself cannot change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub default_value: Option<String>,
}

impl ParameterPatch {
    /// Applies the patch to `p` after checking it.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn apply(self, mut p: CustomParameter) -> Result<CustomParameter, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if let Some(name) = self.name {
            p.name = required_text(&mut e, "/name", &name, MAX_NAME_CHARS);
        }
        if let Some(v) = self.default_value {
            check_default(&mut e, &v);
            p.default_value = v;
        }
        e.into_result(p)
    }
}

fn check_default(e: &mut ValidationErrors, v: &str) {
    if v.chars().count() > MAX_MESSAGE_CHARS {
        e.push("/default_value", "too_long", format!("at most {MAX_MESSAGE_CHARS} characters"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(json: &str) -> Result<NewParameter, Vec<String>> {
        let p: NewParameter = serde_json::from_str(json).map_err(|e| vec![e.to_string()])?;
        p.validate().map_err(|e| e.0.into_iter().map(|f| format!("{} {}", f.path, f.code)).collect())
    }

    #[test]
    fn parameter_id_must_be_letters_digits_and_underscore() {
        assert!(new(r#"{"id":"order_no","name":"Order"}"#).is_ok());
        assert_eq!(new(r#"{"id":"order-no","name":"Order"}"#).unwrap_err(), ["/id invalid_parameter_id"]);
        assert_eq!(new(r#"{"id":"","name":" "}"#).unwrap_err(), ["/id invalid_parameter_id", "/name required"]);
    }

    #[test]
    fn parameter_patch_cannot_change_the_id() {
        let err = serde_json::from_str::<ParameterPatch>(r#"{"id":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
