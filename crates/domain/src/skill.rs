//! Skills (spec §1.2, §4.4): agents hold skills with a level; a service's distribution policy
//! asks for skills at minimum levels, and its later levels ask for less so the pool of agents
//! widens the longer a chat waits.

use crate::entities::MAX_NAME_CHARS;
use crate::error::ValidationErrors;
use crate::ids::{SkillId, TenantId};
use crate::validate::required_text;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Highest skill level.
pub const MAX_SKILL_LEVEL: u8 = 10;
/// Most skills one agent holds.
pub const MAX_USER_SKILLS: usize = 100;
/// Most levels in a distribution policy.
pub const MAX_POLICY_LEVELS: usize = 5;

/// A skill of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Skill {
    pub id: SkillId,
    pub tenant_id: TenantId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/skills`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSkill {
    pub name: String,
}

impl NewSkill {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        e.into_result(self)
    }
}

/// A skill an agent holds, at a level from 1 to [`MAX_SKILL_LEVEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSkill {
    pub skill_id: SkillId,
    pub level: u8,
}

/// A skill a policy level asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillRequirement {
    pub skill_id: SkillId,
    /// The agent's level must be at least this (1–10).
    pub min_level: u8,
}

/// One level of a distribution policy: from `after_secs` of waiting on, agents meeting every
/// requirement may be offered the chat (until a later level takes over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyLevel {
    /// Seconds of waiting after which this level applies; the first level starts at 0.
    pub after_secs: u32,
    /// Every one must be met; an empty list lets any member take it.
    #[serde(default)]
    pub requires: Vec<SkillRequirement>,
}

/// Checks a list of agent skills (levels in range, no skill twice).
pub fn check_user_skills(e: &mut ValidationErrors, prefix: &str, skills: &[UserSkill]) {
    if skills.len() > MAX_USER_SKILLS {
        e.push(prefix.to_owned(), "too_many", format!("at most {MAX_USER_SKILLS} skills"));
        return;
    }
    for (i, s) in skills.iter().enumerate() {
        if !(1..=MAX_SKILL_LEVEL).contains(&s.level) {
            e.push(format!("{prefix}/{i}/level"), "out_of_range", format!("must be 1-{MAX_SKILL_LEVEL}"));
        }
        if skills[..i].iter().any(|o| o.skill_id == s.skill_id) {
            e.push(format!("{prefix}/{i}/skill_id"), "duplicate", "skill is listed twice");
        }
    }
}

/// Checks a distribution policy: at most five levels, the first at 0 s, strictly later after
/// that, levels in range.
pub fn check_policy(e: &mut ValidationErrors, prefix: &str, levels: &[PolicyLevel]) {
    if levels.len() > MAX_POLICY_LEVELS {
        e.push(prefix.to_owned(), "too_many", format!("at most {MAX_POLICY_LEVELS} levels"));
        return;
    }
    for (i, l) in levels.iter().enumerate() {
        let ok = if i == 0 { l.after_secs == 0 } else { l.after_secs > levels[i - 1].after_secs };
        if !ok {
            let rule =
                if i == 0 { "the first level starts at 0" } else { "each level starts later than the one before" };
            e.push(format!("{prefix}/{i}/after_secs"), "out_of_order", rule);
        }
        for (k, r) in l.requires.iter().enumerate() {
            if !(1..=MAX_SKILL_LEVEL).contains(&r.min_level) {
                e.push(
                    format!("{prefix}/{i}/requires/{k}/min_level"),
                    "out_of_range",
                    format!("must be 1-{MAX_SKILL_LEVEL}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn skill(n: u128) -> SkillId {
        SkillId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn policy_levels_must_start_at_zero_and_widen_later() {
        let level = |after_secs, min_level| PolicyLevel {
            after_secs,
            requires: vec![SkillRequirement { skill_id: skill(1), min_level }],
        };
        let mut e = ValidationErrors::default();
        check_policy(&mut e, "/routing/policy", &[level(5, 3), level(5, 0)]);
        let got: Vec<_> = e.0.iter().map(|f| (f.path.as_str(), f.code)).collect();
        assert_eq!(
            got,
            [
                ("/routing/policy/0/after_secs", "out_of_order"),
                ("/routing/policy/1/after_secs", "out_of_order"),
                ("/routing/policy/1/requires/0/min_level", "out_of_range")
            ]
        );
        let mut e = ValidationErrors::default();
        check_policy(&mut e, "/p", &[level(0, 5), level(60, 3), level(120, 1)]);
        assert!(e.0.is_empty());
    }

    #[test]
    fn user_skills_have_levels_one_to_ten_and_no_repeats() {
        let mut e = ValidationErrors::default();
        let s = |n, level| UserSkill { skill_id: skill(n), level };
        check_user_skills(&mut e, "/skills", &[s(1, 0), s(2, 10), s(2, 3)]);
        let got: Vec<_> = e.0.iter().map(|f| (f.path.as_str(), f.code)).collect();
        assert_eq!(got, [("/skills/0/level", "out_of_range"), ("/skills/2/skill_id", "duplicate")]);
    }
}
