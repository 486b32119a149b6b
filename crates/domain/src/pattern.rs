//! The regular expressions a workflow carries (Collect Information's answer pattern, Check
//! Parameter's `regex` condition), compiled one way for both the save-time check and the run, so
//! a pattern that publishes is a pattern that runs.

use crate::workflow::{Activity, AnswerRule, CompareOp, WorkflowDefinition};
use std::collections::BTreeMap;

/// Largest compiled program a pattern may need: enough for any real answer check, small enough
/// that a hostile pattern cannot take the engine's memory.
const SIZE_LIMIT: usize = 1 << 20;

/// Where a pattern sits and how it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anchoring {
    /// The whole answer must match (Collect Information).
    Whole,
    /// Anywhere in the value, optionally ignoring case (Check Parameter).
    Search { ignore_case: bool },
}

/// Compiles `pattern` as the run uses it.
///
/// # Errors
/// The regex crate's explanation when the pattern does not compile or is too large.
pub fn compile(pattern: &str, anchoring: Anchoring) -> Result<regex::Regex, String> {
    let (source, ignore_case) = match anchoring {
        Anchoring::Whole => (format!("^(?:{pattern})$"), false),
        Anchoring::Search { ignore_case } => (pattern.to_owned(), ignore_case),
    };
    regex::RegexBuilder::new(&source)
        .case_insensitive(ignore_case)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| first_line(&e.to_string()))
}

/// The regex crate's message is a drawing over several lines; its last line says what is wrong.
fn first_line(message: &str) -> String {
    let last = message.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(message).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// Every pattern of one workflow version, compiled once when the version is loaded.
#[derive(Debug, Clone, Default)]
pub struct Patterns(BTreeMap<(String, Anchoring), regex::Regex>);

impl Patterns {
    /// Compiles every pattern of the definition; one that does not compile is left out (a
    /// published version never has one, since publishing checks them) and then never matches.
    #[must_use]
    pub fn of(def: &WorkflowDefinition) -> Self {
        let mut map = BTreeMap::new();
        for (pattern, anchoring) in def.nodes.iter().flat_map(|n| patterns_of(&n.activity)) {
            if let Ok(r) = compile(&pattern, anchoring) {
                map.insert((pattern, anchoring), r);
            }
        }
        Self(map)
    }

    /// Whether `text` matches the pattern; a pattern not compiled here is compiled now (a draft
    /// run by the simulator), and one that does not compile never matches.
    #[must_use]
    pub fn is_match(&self, pattern: &str, anchoring: Anchoring, text: &str) -> bool {
        match self.0.get(&(pattern.to_owned(), anchoring)) {
            Some(r) => r.is_match(text),
            None => compile(pattern, anchoring).is_ok_and(|r| r.is_match(text)),
        }
    }

    /// How many patterns are compiled.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Compiled patterns depend only on the definition they came from.
impl PartialEq for Patterns {
    fn eq(&self, other: &Self) -> bool {
        self.0.keys().eq(other.0.keys())
    }
}

/// The patterns an activity carries, with how each is matched.
fn patterns_of(activity: &Activity) -> Vec<(String, Anchoring)> {
    match activity {
        Activity::CollectInformation { rule: AnswerRule::Regex(p), .. } => vec![(p.clone(), Anchoring::Whole)],
        Activity::CheckParameter { conditions, .. } => conditions
            .iter()
            .filter(|c| c.op == CompareOp::Regex)
            .map(|c| (c.value.clone(), Anchoring::Search { ignore_case: c.ignore_case }))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unbalanced_pattern_is_refused_with_the_reason() {
        let err = compile("([0-9]+", Anchoring::Whole).unwrap_err();
        assert_eq!(err, "unclosed group");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_whole_answer_pattern_matches_only_the_whole_answer() {
        let r = compile("[A-Z]{2}[0-9]+", Anchoring::Whole).unwrap();
        assert!(r.is_match("CH12"));
        assert!(!r.is_match("xCH12"));
    }

    #[test]
    fn a_pattern_too_large_to_run_is_refused() {
        assert!(compile("(\\w{100}){100}", Anchoring::Search { ignore_case: false }).is_err());
    }

    #[test]
    fn search_patterns_may_ignore_case() {
        let p = Patterns::default();
        assert!(p.is_match("^vip", Anchoring::Search { ignore_case: true }, "VIP customer"));
        assert!(!p.is_match("^vip", Anchoring::Search { ignore_case: false }, "VIP customer"));
        assert!(!p.is_match("(", Anchoring::Whole, "("), "a broken pattern never matches");
    }
}
