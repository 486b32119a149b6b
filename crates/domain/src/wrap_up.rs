//! Codes and tags (spec §1.2 "Code / Tag"): how an agent sums up a chat for reporting.
//!
//! Codes are predefined by the administrator in an organization unit and listed on services
//! (a primary list shown first and a secondary one behind it, in the administrator's order);
//! the agent picks among the codes of the chat's service. Tags are the agent's own free words.
//! Both are kept on the conversation as its wrap-up, which the agent may change while the chat
//! is open and after it ended (during after-chat work, typically).

use crate::entities::MAX_NAME_CHARS;
use crate::error::ValidationErrors;
use crate::ids::{CodeId, OrgUnitId, TenantId, UserId};
use crate::validate::required_text;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Most codes on one of a service's lists.
pub const MAX_SERVICE_CODES: usize = 100;
/// Most codes one conversation carries.
pub const MAX_CHOSEN_CODES: usize = 10;
/// Most tags one conversation carries.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 40;
/// Longest code description.
pub const MAX_CODE_DESCRIPTION_CHARS: usize = 500;

/// A predefined code of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Code {
    pub id: CodeId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/codes` and `PUT /api/v1/codes/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    /// Organization unit; the tenant root when absent (ignored on update).
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

impl NewCode {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        self.description = self.description.trim().to_owned();
        if self.description.chars().count() > MAX_CODE_DESCRIPTION_CHARS {
            e.push("/description", "too_long", format!("must be at most {MAX_CODE_DESCRIPTION_CHARS} characters"));
        }
        e.into_result(self)
    }
}

/// The codes a service offers its agents, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCodes {
    /// Shown first.
    #[serde(default)]
    pub primary: Vec<CodeId>,
    /// Shown behind "more codes".
    #[serde(default)]
    pub secondary: Vec<CodeId>,
}

impl ServiceCodes {
    /// Checks the lists' sizes and that no code is listed twice (on either list).
    pub fn check(&self, e: &mut ValidationErrors, prefix: &str) {
        let mut seen = BTreeSet::new();
        for (list, ids) in [("primary", &self.primary), ("secondary", &self.secondary)] {
            if ids.len() > MAX_SERVICE_CODES {
                e.push(format!("{prefix}/{list}"), "too_many", format!("at most {MAX_SERVICE_CODES} codes"));
            }
            for (i, id) in ids.iter().enumerate() {
                if !seen.insert(*id) {
                    e.push(format!("{prefix}/{list}/{i}"), "duplicate", "a code is listed once");
                }
            }
        }
    }

    /// Every code listed, primary first.
    pub fn all(&self) -> impl Iterator<Item = CodeId> + '_ {
        self.primary.iter().chain(&self.secondary).copied()
    }

    #[must_use]
    pub fn contains(&self, id: CodeId) -> bool {
        self.all().any(|c| c == id)
    }
}

/// What the agent chose for a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WrapUp {
    pub codes: Vec<CodeId>,
    pub tags: Vec<String>,
    /// Who set it last.
    pub user_id: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Input of `PUT /api/v1/agent/chats/{id}/wrap-up`: replaces the codes and tags as a whole.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapUpInput {
    #[serde(default)]
    pub codes: Vec<CodeId>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl WrapUpInput {
    /// Checks the sizes, drops repeated codes and tags (tags compared without case) and trims
    /// the tags; a tag must be a short single line.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let mut seen = BTreeSet::new();
        self.codes.retain(|c| seen.insert(*c));
        if self.codes.len() > MAX_CHOSEN_CODES {
            e.push("/codes", "too_many", format!("at most {MAX_CHOSEN_CODES} codes"));
        }
        let mut tags: Vec<String> = Vec::with_capacity(self.tags.len());
        let mut seen = BTreeSet::new();
        for (i, raw) in self.tags.iter().enumerate() {
            let tag = raw.split_whitespace().collect::<Vec<_>>().join(" ");
            let path = format!("/tags/{i}");
            if tag.is_empty() {
                e.push(path, "required", "a tag must not be empty");
            } else if tag.chars().count() > MAX_TAG_CHARS {
                e.push(path, "too_long", format!("must be at most {MAX_TAG_CHARS} characters"));
            } else if tag.chars().any(char::is_control) {
                e.push(path, "invalid_characters", "control characters are not allowed");
            } else if seen.insert(tag.to_lowercase()) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            e.push("/tags", "too_many", format!("at most {MAX_TAGS} tags"));
        }
        self.tags = tags;
        e.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(n: u128) -> CodeId {
        CodeId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn paths(e: &ValidationErrors) -> Vec<(&str, &str)> {
        e.0.iter().map(|f| (f.path.as_str(), f.code)).collect()
    }

    #[test]
    fn a_wrap_up_keeps_each_code_and_tag_once_and_tidies_the_tags() {
        let input: WrapUpInput = serde_json::from_value(json!({
            "codes": [code(1), code(2), code(1)],
            "tags": ["  needs   callback ", "VIP", "vip", "Needs callback"]
        }))
        .unwrap();
        let ok = input.validate().unwrap();
        assert_eq!(ok.codes, [code(1), code(2)]);
        assert_eq!(ok.tags, ["needs callback", "VIP"]);
    }

    #[test]
    fn a_wrap_up_refuses_empty_long_control_and_too_many_with_their_paths() {
        let long = "x".repeat(MAX_TAG_CHARS + 1);
        let input = WrapUpInput { codes: (0..11).map(code).collect(), tags: vec![" ".into(), long, "a\u{7}b".into()] };
        let e = input.validate().unwrap_err();
        assert_eq!(
            paths(&e),
            [
                ("/codes", "too_many"),
                ("/tags/0", "required"),
                ("/tags/1", "too_long"),
                ("/tags/2", "invalid_characters")
            ]
        );
        let many = WrapUpInput { codes: vec![], tags: (0..=MAX_TAGS).map(|i| format!("t{i}")).collect() };
        assert_eq!(paths(&many.validate().unwrap_err()), [("/tags", "too_many")]);
    }

    #[test]
    fn a_code_is_listed_once_across_a_services_lists() {
        let lists = ServiceCodes { primary: vec![code(1), code(2)], secondary: vec![code(3), code(1)] };
        let mut e = ValidationErrors::default();
        lists.check(&mut e, "/codes");
        assert_eq!(paths(&e), [("/codes/secondary/1", "duplicate")]);
        assert!(lists.contains(code(3)) && !lists.contains(code(4)));
        assert_eq!(lists.all().collect::<Vec<_>>(), [code(1), code(2), code(3), code(1)]);
    }

    #[test]
    fn a_code_needs_a_name_and_a_short_description() {
        let c = NewCode { ou_id: None, name: "  Resolved ".into(), description: " Fixed on the call ".into() };
        let ok = c.validate().unwrap();
        assert_eq!((ok.name.as_str(), ok.description.as_str()), ("Resolved", "Fixed on the call"));
        let bad = NewCode { ou_id: None, name: String::new(), description: "d".repeat(MAX_CODE_DESCRIPTION_CHARS + 1) };
        assert_eq!(paths(&bad.validate().unwrap_err()), [("/name", "required"), ("/description", "too_long")]);
    }
}
