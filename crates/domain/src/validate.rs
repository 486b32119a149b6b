//! Small reusable field rules. Each records into a [`ValidationErrors`] and returns the cleaned
//! value, so callers validate a whole input in one pass and report every broken rule at once.

use crate::error::ValidationErrors;

/// Trims `value`, requires it to be non-empty and at most `max` characters.
pub fn required_text(errs: &mut ValidationErrors, path: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if v.is_empty() {
        errs.push(path, "required", "must not be empty");
    } else if v.chars().count() > max {
        errs.push(path, "too_long", format!("must be at most {max} characters"));
    } else if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errs.push(path, "invalid_characters", "must not contain control characters");
    }
    v.to_owned()
}

/// Like [`required_text`] but an absent or blank value is allowed and becomes `None`.
pub fn optional_text(errs: &mut ValidationErrors, path: &str, value: Option<&str>, max: usize) -> Option<String> {
    match value.map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(required_text(errs, path, v, max)),
    }
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn email(errs: &mut ValidationErrors, path: &str, value: &str) -> String {
    let v = value.trim();
    let ok = v.len() <= 254
        && !v.contains(char::is_whitespace)
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if v.is_empty() {
        errs.push(path, "required", "must not be empty");
    } else if !ok {
        errs.push(path, "invalid_email", "must be an e-mail address like name@example.com");
    }
    v.to_ascii_lowercase()
}

/// A URL-safe slug: lowercase ASCII letters, digits and `-`, 2 to 40 characters.
pub fn slug(errs: &mut ValidationErrors, path: &str, value: &str) -> String {
    let v = value.trim();
    let ok = (2..=40).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if !ok {
        errs.push(path, "invalid_slug", "must be 2-40 characters of a-z, 0-9 and '-'");
    }
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_accepts_plain_addresses_and_lowercases_them() {
        let mut e = ValidationErrors::default();
        assert_eq!(email(&mut e, "/email", " Ann@Example.COM "), "ann@example.com");
        assert!(e.0.is_empty());
    }

    #[test]
    fn email_rejects_missing_domain_dot_and_spaces() {
        for bad in ["ann", "ann@", "@x.com", "ann@example", "a b@x.com", "a@@x.com", "a@.x"] {
            let mut e = ValidationErrors::default();
            email(&mut e, "/email", bad);
            assert_eq!(e.0.len(), 1, "{bad} should be refused");
        }
    }

    #[test]
    fn required_text_counts_characters_not_bytes() {
        let mut e = ValidationErrors::default();
        required_text(&mut e, "/name", "ééé", 3);
        assert!(e.0.is_empty());
        required_text(&mut e, "/name", "éééé", 3);
        assert_eq!(e.0[0].code, "too_long");
    }

    #[test]
    fn required_text_refuses_control_characters() {
        let mut e = ValidationErrors::default();
        required_text(&mut e, "/name", "a\u{7}b", 10);
        assert_eq!(e.0[0].code, "invalid_characters");
    }

    #[test]
    fn slug_rules() {
        for (s, ok) in [("acme", true), ("a", false), ("Acme", false), ("-x", false), ("ab-9", true)] {
            let mut e = ValidationErrors::default();
            slug(&mut e, "/slug", s);
            assert_eq!(e.0.is_empty(), ok, "{s}");
        }
    }
}
