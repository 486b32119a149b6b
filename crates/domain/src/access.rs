//! Where a widget may be used (spec §1.2 Domain Template, V6, E3): domain templates list the
//! website origins allowed to use a snippet; a service with Restrict Access on accepts widget
//! requests only from the origins of its linked templates.

use crate::entities::MAX_NAME_CHARS;
use crate::error::ValidationErrors;
use crate::ids::{DomainTemplateId, OrgUnitId, TenantId};
use crate::validate::required_text;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Most origins in one template.
pub const MAX_ORIGINS: usize = 100;

/// A stored domain template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DomainTemplate {
    pub id: DomainTemplateId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    /// `https://www.example.com`, `http://localhost:8080`, or `https://*.example.com` for every
    /// subdomain (not the domain itself).
    pub origins: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/domain-templates` and `PUT /api/v1/domain-templates/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomainTemplate {
    /// Organization unit; the tenant root when absent (ignored on update).
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    pub origins: Vec<String>,
}

impl NewDomainTemplate {
    /// Checks and normalises the input (origins lowercased, without a trailing slash).
    ///
    /// # Errors
    /// Every broken rule, with its field path.
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = required_text(&mut e, "/name", &self.name, MAX_NAME_CHARS);
        if self.origins.is_empty() {
            e.push("/origins", "required", "list at least one origin");
        } else if self.origins.len() > MAX_ORIGINS {
            e.push("/origins", "too_many", format!("at most {MAX_ORIGINS} origins"));
            return e.into_result(self);
        }
        for (i, o) in self.origins.iter_mut().enumerate() {
            match normalize_origin(o) {
                Some(n) => *o = n,
                None => e.push(
                    format!("/origins/{i}"),
                    "invalid_origin",
                    "an origin like https://www.example.com or https://*.example.com (no path)",
                ),
            }
        }
        e.into_result(self)
    }
}

/// Whether a service's widget is restricted to some websites.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetAccess {
    /// When on, only origins of the linked templates may use the snippet (needs ≥ 1 template).
    pub restrict_access: bool,
    pub domain_template_ids: Vec<DomainTemplateId>,
}

impl WidgetAccess {
    /// V6: restricting needs a template (references are checked by the shell).
    pub fn check(&self, e: &mut ValidationErrors, prefix: &str) {
        if self.restrict_access && self.domain_template_ids.is_empty() {
            e.push(
                format!("{prefix}/domain_template_ids"),
                "template_required",
                "Restrict Access needs at least one domain template",
            );
        }
        if self.domain_template_ids.len() > 50 {
            e.push(format!("{prefix}/domain_template_ids"), "too_many", "at most 50 templates");
        }
    }
}

/// `scheme://host[:port]` in lowercase, with `*.` allowed as the host's first label; `None`
/// when it is not an origin (a path, a query, a user, another scheme…).
#[must_use]
pub fn normalize_origin(raw: &str) -> Option<String> {
    let o = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = o.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return None;
    }
    if rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (rest, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return None;
    }
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let valid_host = !bare.is_empty()
        && !bare.contains('*')
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '[' || c == ']' || c == ':')
        });
    valid_host.then_some(o)
}

/// Whether `origin` (as a browser sends it) matches one of the allowed origins.
#[must_use]
pub fn origin_allowed<'a>(allowed: impl IntoIterator<Item = &'a String>, origin: &str) -> bool {
    let origin = origin.trim().to_ascii_lowercase();
    allowed.into_iter().any(|pattern| match pattern.split_once("://*.") {
        Some((scheme, suffix)) => origin
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            .is_some_and(|host| host.ends_with(&format!(".{suffix}")) && host.len() > suffix.len() + 1),
        None => *pattern == origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_paths_refused() {
        assert_eq!(normalize_origin("HTTPS://Www.Example.com/").as_deref(), Some("https://www.example.com"));
        assert_eq!(normalize_origin("http://localhost:8080").as_deref(), Some("http://localhost:8080"));
        assert_eq!(normalize_origin("https://*.example.com").as_deref(), Some("https://*.example.com"));
        for bad in [
            "example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://x.com?q",
            "https://u@x.com",
            "https://x.com:99999",
            "https://a.*.com",
            "https://",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn wildcards_match_subdomains_only_and_schemes_must_agree() {
        let allowed = vec!["https://*.example.com".to_owned(), "http://localhost:8080".to_owned()];
        assert!(origin_allowed(&allowed, "https://shop.example.com"));
        assert!(origin_allowed(&allowed, "https://a.b.example.com"));
        assert!(!origin_allowed(&allowed, "https://example.com"));
        assert!(!origin_allowed(&allowed, "https://badexample.com"));
        assert!(!origin_allowed(&allowed, "http://shop.example.com"));
        assert!(origin_allowed(&allowed, "http://localhost:8080"));
        assert!(!origin_allowed(&allowed, "http://localhost:8081"));
    }

    #[test]
    fn restricting_needs_a_template() {
        let mut e = ValidationErrors::default();
        WidgetAccess { restrict_access: true, domain_template_ids: vec![] }.check(&mut e, "/access");
        assert_eq!(e.0[0].code, "template_required");
    }
}
