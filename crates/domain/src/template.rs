//! Placeholder templates: the texts an admin writes for system messages, Message activities and
//! custom display names, with `$(Namespace.Field)` placeholders filled in per conversation
//! (spec §5.4 "Substitutable data").
//!
//! # Syntax
//! - `$(Namespace.Field)` for the fixed system fields of [`SystemField`], e.g. `$(Task.Id)`;
//! - `$(Customer.CustomFields.<name>)` and `$(CustomContextParameters.<ParameterId>)`, where
//!   `<name>` / `<ParameterId>` follow the parameter-id rule of [`is_valid_parameter_id`].
//!
//! Names are case-sensitive and contain no spaces: `$( Task.Id )` is refused rather than guessed.
//!
//! # Escaping a literal `$(`
//! Write `$$(` to get a literal `$(`. The rule is applied left to right at every `$`: `$$(` is the
//! escape, `$(` opens a placeholder, any other `$` is kept. So `$$` followed by anything but `(`
//! stays `$$`, and a run of two or more `$` before `(` is literal text that loses exactly one `$`
//! (`$$$(` renders `$$(`). A consequence worth knowing: a `$` immediately followed by a placeholder
//! (`$` + `$(X)`) cannot be written, because that spelling is the escape; put the currency sign in
//! the value or separate it (`USD $(X)`). [`escape_literal`] produces the escaped spelling of any
//! plain text.
//!
//! # Rendering
//! A placeholder resolves to its value, else (custom parameters only) the parameter's default,
//! else the empty string. Values are plain text: they are inserted, never parsed again, and are
//! cleaned for the target [`Channel`]; the admin's literal text is trusted and kept byte for byte.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ValidationErrors;

/// Longest parameter id / custom-field name, per the Parameter entity (spec §1.2).
pub const MAX_PARAMETER_ID_CHARS: usize = 64;

/// Longest substituted value, in characters, before it is cut and marked with `…`.
pub const MAX_VALUE_CHARS: usize = 1_000;

/// Placeholder names quoted in error messages are shortened to this many characters, so a runaway
/// `$(` swallowing a paragraph does not echo the paragraph back.
const MAX_QUOTED_NAME_CHARS: usize = 80;

const PARAMETERS_PREFIX: &str = "CustomContextParameters.";
const CUSTOM_FIELDS_PREFIX: &str = "Customer.CustomFields.";

/// Whether `id` is a valid custom parameter id: 1 to 64 ASCII letters, digits or `_`.
#[must_use]
pub fn is_valid_parameter_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_PARAMETER_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The spelling of `text` that a template parses back to exactly `text`, with no placeholders.
#[must_use]
pub fn escape_literal(text: &str) -> String {
    text.replace("$(", "$$(")
}

/// A fixed field of the §5.4 table. [`SystemField::name`] is its placeholder spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemField {
    TaskId,
    TaskCreated,
    TaskTerminated,
    TaskDirection,
    TaskModality,
    TaskReferenceId,
    TaskInitialMessage,
    CustomerIdentifier,
    CustomerDisplayName,
    CustomerFirstName,
    CustomerLastName,
    CustomerEmail,
    CustomerCompany,
    CustomerJobTitle,
    CustomerDepartment,
    CustomerStreetAddress,
    CustomerPostCode,
    CustomerCity,
    CustomerState,
    CustomerCountry,
    CustomerPrimaryTelNumber,
    CustomerImAddress,
    CustomerUpn,
    ServiceName,
    ServiceDisplayName,
    ServiceDescription,
    ServiceUpn,
    ServiceInitialName,
    ServiceAvailableUsers,
    UserDisplayName,
    UserFirstName,
    UserUpn,
    QueuePosition,
    /// Not in Nimbus; ours, set alongside `Queue.Position`.
    QueueEstimatedWait,
}

impl SystemField {
    /// Every system field, in table order.
    pub const ALL: [Self; 34] = [
        Self::TaskId,
        Self::TaskCreated,
        Self::TaskTerminated,
        Self::TaskDirection,
        Self::TaskModality,
        Self::TaskReferenceId,
        Self::TaskInitialMessage,
        Self::CustomerIdentifier,
        Self::CustomerDisplayName,
        Self::CustomerFirstName,
        Self::CustomerLastName,
        Self::CustomerEmail,
        Self::CustomerCompany,
        Self::CustomerJobTitle,
        Self::CustomerDepartment,
        Self::CustomerStreetAddress,
        Self::CustomerPostCode,
        Self::CustomerCity,
        Self::CustomerState,
        Self::CustomerCountry,
        Self::CustomerPrimaryTelNumber,
        Self::CustomerImAddress,
        Self::CustomerUpn,
        Self::ServiceName,
        Self::ServiceDisplayName,
        Self::ServiceDescription,
        Self::ServiceUpn,
        Self::ServiceInitialName,
        Self::ServiceAvailableUsers,
        Self::UserDisplayName,
        Self::UserFirstName,
        Self::UserUpn,
        Self::QueuePosition,
        Self::QueueEstimatedWait,
    ];

    /// The placeholder spelling without `$(` `)`, e.g. `Task.Id`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::TaskId => "Task.Id",
            Self::TaskCreated => "Task.Created",
            Self::TaskTerminated => "Task.Terminated",
            Self::TaskDirection => "Task.Direction",
            Self::TaskModality => "Task.Modality",
            Self::TaskReferenceId => "Task.ReferenceId",
            Self::TaskInitialMessage => "Task.InitialMessage",
            Self::CustomerIdentifier => "Customer.Identifier",
            Self::CustomerDisplayName => "Customer.DisplayName",
            Self::CustomerFirstName => "Customer.FirstName",
            Self::CustomerLastName => "Customer.LastName",
            Self::CustomerEmail => "Customer.Email",
            Self::CustomerCompany => "Customer.Company",
            Self::CustomerJobTitle => "Customer.JobTitle",
            Self::CustomerDepartment => "Customer.Department",
            Self::CustomerStreetAddress => "Customer.StreetAddress",
            Self::CustomerPostCode => "Customer.PostCode",
            Self::CustomerCity => "Customer.City",
            Self::CustomerState => "Customer.State",
            Self::CustomerCountry => "Customer.Country",
            Self::CustomerPrimaryTelNumber => "Customer.PrimaryTelNumber",
            Self::CustomerImAddress => "Customer.ImAddress",
            Self::CustomerUpn => "Customer.UPN",
            Self::ServiceName => "Service.Name",
            Self::ServiceDisplayName => "Service.DisplayName",
            Self::ServiceDescription => "Service.Description",
            Self::ServiceUpn => "Service.UPN",
            Self::ServiceInitialName => "Service.InitialName",
            Self::ServiceAvailableUsers => "Service.AvailableUsers",
            Self::UserDisplayName => "User.DisplayName",
            Self::UserFirstName => "User.FirstName",
            Self::UserUpn => "User.UPN",
            Self::QueuePosition => "Queue.Position",
            Self::QueueEstimatedWait => "Queue.EstimatedWait",
        }
    }

    /// The field spelled exactly `name` (case-sensitive), e.g. `Customer.Email`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What a placeholder asks for; the key a [`Lookup`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlaceholderKey {
    /// A fixed field, e.g. `$(Task.Id)`.
    System(SystemField),
    /// `$(Customer.CustomFields.<name>)`.
    CustomerCustomField(String),
    /// `$(CustomContextParameters.<id>)`: a custom Parameter, which has a default value.
    Parameter(String),
}

impl fmt::Display for PlaceholderKey {
    /// The placeholder spelling without `$(` `)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System(field) => f.write_str(field.name()),
            Self::CustomerCustomField(name) => write!(f, "{CUSTOM_FIELDS_PREFIX}{name}"),
            Self::Parameter(id) => write!(f, "{PARAMETERS_PREFIX}{id}"),
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Admin text, already unescaped (`$$(` became `$(`).
    Literal(String),
    /// A placeholder; `offset` is the byte offset of its `$` in the source text.
    Placeholder { key: PlaceholderKey, offset: usize },
}

/// Why a template text was refused. Offsets are byte offsets of the opening `$` in the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `$(` with no `)` before the end of the text or before the next `$(`.
    #[error("`$(` at byte {offset} is not closed by `)`; write `$$(` for a literal `$(`")]
    Unterminated { offset: usize },
    /// Empty, or not dot-separated runs of ASCII letters, digits and `_`, or a custom parameter
    /// id / custom-field name breaking the parameter-id rule.
    #[error("`$({name})` at byte {offset} is not a valid placeholder: {reason}")]
    Invalid { offset: usize, name: String, reason: &'static str },
    /// Well-formed, but not in the table of substitutable data.
    #[error("`$({name})` at byte {offset} is not a known placeholder{hint}")]
    Unknown { offset: usize, name: String, hint: String },
}

impl TemplateError {
    /// The stable code recorded in [`ValidationErrors`].
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unterminated { .. } => "unterminated_placeholder",
            Self::Invalid { .. } => "invalid_placeholder",
            Self::Unknown { .. } => "unknown_placeholder",
        }
    }

    /// Byte offset of the offending `$(` in the source text.
    #[must_use]
    pub const fn offset(&self) -> usize {
        match self {
            Self::Unterminated { offset } | Self::Invalid { offset, .. } | Self::Unknown { offset, .. } => *offset,
        }
    }
}

/// The conversation data a template is rendered against. Implemented by the shell, which knows
/// the task, customer, service and parameters; `None` means "not set", which differs from
/// `Some("")` (set to empty): only `None` falls back to a parameter's default.
pub trait Lookup {
    /// The current value of `key`, if it has one.
    fn get(&self, key: &PlaceholderKey) -> Option<String>;
    /// The default value of custom parameter `id`, if the parameter exists.
    fn parameter_default(&self, id: &str) -> Option<String>;
}

/// Where a rendered text is delivered; decides how substituted values are cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The web widget, which shows text with `textContent`: nothing is interpreted.
    Web,
    /// WhatsApp, which turns `*`, `_`, `~` and backticks into formatting.
    #[serde(rename = "whatsapp")]
    WhatsApp,
    /// SMS: no formatting, but every non-GSM-7 character makes the whole message UCS-2.
    Sms,
}

impl Channel {
    /// Every text channel.
    pub const ALL: [Self; 3] = [Self::Web, Self::WhatsApp, Self::Sms];
}

/// A parsed template, ready to render any number of times.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`, refusing it at the first broken placeholder.
    ///
    /// # Errors
    /// The first [`TemplateError`] in text order; [`validate_template`] reports all of them.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let (template, errors) = parse_collecting(text);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(template),
        }
    }

    /// The literal and placeholder pieces, in text order; literals are never adjacent.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Ids of the custom parameters referenced, each once, in order of first appearance.
    pub fn parameter_refs(&self) -> impl Iterator<Item = &str> {
        let ids = || {
            self.segments.iter().filter_map(|s| match s {
                Segment::Placeholder { key: PlaceholderKey::Parameter(id), .. } => Some(id.as_str()),
                _ => None,
            })
        };
        ids().enumerate().filter(move |&(i, id)| !ids().take(i).any(|earlier| earlier == id)).map(|(_, id)| id)
    }

    /// Fills every placeholder from `ctx` (value, else parameter default, else empty) and
    /// cleans each value for `channel`. Literal text is copied unchanged.
    #[must_use]
    pub fn render(&self, ctx: &dyn Lookup, channel: Channel) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Placeholder { key, .. } => {
                    let value = ctx.get(key).or_else(|| match key {
                        PlaceholderKey::Parameter(id) => ctx.parameter_default(id),
                        _ => None,
                    });
                    if let Some(value) = value {
                        push_value(&mut out, &value, channel);
                    }
                }
            }
        }
        out
    }
}

/// Records every broken placeholder of `text` under `path`, and every reference to a custom
/// parameter for which `known_parameters` answers `false` (code `unknown_parameter`, once per id).
pub fn validate_template(errs: &mut ValidationErrors, path: &str, text: &str, known_parameters: &dyn Fn(&str) -> bool) {
    let (template, errors) = parse_collecting(text);
    for e in errors {
        errs.push(path, e.code(), e.to_string());
    }
    for id in template.parameter_refs().filter(|id| !known_parameters(id)) {
        errs.push(
            path,
            "unknown_parameter",
            format!("`$({PARAMETERS_PREFIX}{id})` refers to a custom parameter that does not exist"),
        );
    }
}

/// Parses all of `text`, keeping every valid placeholder and every error, so validation can
/// report all mistakes at once.
fn parse_collecting(text: &str) -> (Template, Vec<TemplateError>) {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    // Start of source text not yet copied into `literal`. Slicing only ever happens at ASCII
    // `$`, `(` or `)`, which are always char boundaries in UTF-8.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
        } else if bytes[i + 1..].starts_with(b"$(") {
            literal.push_str(&text[copied..i]);
            literal.push_str("$(");
            i += 3;
            copied = i;
        } else if bytes[i + 1..].starts_with(b"(") {
            literal.push_str(&text[copied..i]);
            let body_start = i + 2;
            match body_len(&bytes[body_start..]) {
                Some(c) => {
                    match classify(&text[body_start..body_start + c], i) {
                        Ok(key) => {
                            if !literal.is_empty() {
                                segments.push(Segment::Literal(std::mem::take(&mut literal)));
                            }
                            segments.push(Segment::Placeholder { key, offset: i });
                        }
                        Err(e) => errors.push(e),
                    }
                    i = body_start + c + 1;
                }
                _ => {
                    errors.push(TemplateError::Unterminated { offset: i });
                    // Resume inside the unclosed body so a later, well-formed placeholder is still
                    // checked and the admin sees every mistake in one save.
                    i = body_start;
                }
            }
            copied = i;
        } else {
            i += 1;
        }
    }
    literal.push_str(&text[copied..]);
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    (Template { segments }, errors)
}

/// Length of the placeholder body at the start of `rest`, up to its `)`; `None` when a `$(` or
/// the end of the text comes first. Stopping at the next `$(` keeps parsing linear even for a
/// text full of unclosed openings, and blames the opening that was really left open.
fn body_len(rest: &[u8]) -> Option<usize> {
    for (j, &b) in rest.iter().enumerate() {
        match b {
            b')' => return Some(j),
            b'$' if rest.get(j + 1) == Some(&b'(') => return None,
            _ => {}
        }
    }
    None
}

/// Maps a placeholder body (between `$(` and `)`) to its key.
fn classify(name: &str, offset: usize) -> Result<PlaceholderKey, TemplateError> {
    let invalid = |reason| TemplateError::Invalid { offset, name: quoted(name), reason };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    let well_formed =
        name.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if !well_formed {
        return Err(invalid("names are dot-separated ASCII letters, digits and `_`, without spaces"));
    }
    let id_reason = "the id must be 1 to 64 ASCII letters, digits or `_`";
    if let Some(id) = name.strip_prefix(PARAMETERS_PREFIX) {
        return if is_valid_parameter_id(id) {
            Ok(PlaceholderKey::Parameter(id.to_owned()))
        } else {
            Err(invalid(id_reason))
        };
    }
    if let Some(field) = name.strip_prefix(CUSTOM_FIELDS_PREFIX) {
        return if is_valid_parameter_id(field) {
            Ok(PlaceholderKey::CustomerCustomField(field.to_owned()))
        } else {
            Err(invalid(id_reason))
        };
    }
    if let Some(field) = SystemField::from_name(name) {
        return Ok(PlaceholderKey::System(field));
    }
    if name == PARAMETERS_PREFIX.trim_end_matches('.') || name == CUSTOM_FIELDS_PREFIX.trim_end_matches('.') {
        return Err(invalid("the id after the last `.` is missing"));
    }
    Err(TemplateError::Unknown { offset, name: quoted(name), hint: hint(name) })
}

/// A "did you mean" for the usual mistake, wrong letter case.
fn hint(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some(field) = SystemField::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name)) {
        return format!("; did you mean `$({})`?", field.name());
    }
    for prefix in [PARAMETERS_PREFIX, CUSTOM_FIELDS_PREFIX] {
        if let Some(rest) = lower.strip_prefix(&prefix.to_ascii_lowercase()) {
            // `rest` is lowercased; the original spelling of the id is what the admin meant.
            let id = &name[name.len() - rest.len()..];
            return format!("; did you mean `$({prefix}{id})`?");
        }
    }
    String::new()
}

fn quoted(name: &str) -> String {
    if name.chars().count() <= MAX_QUOTED_NAME_CHARS {
        name.to_owned()
    } else {
        let mut short: String = name.chars().take(MAX_QUOTED_NAME_CHARS).collect();
        short.push('…');
        short
    }
}

/// Appends `value` cleaned for `channel`: controls dropped, capped at [`MAX_VALUE_CHARS`], then
/// channel escaping. The cap comes before escaping so a cut never separates a character from
/// its neutralised form, and the escaped text may therefore be a little longer than the cap.
fn push_value(out: &mut String, value: &str, channel: Channel) {
    let mut kept = value.chars().filter_map(|c| keep_in_value(c, channel));
    let mut capped: String = kept.by_ref().take(MAX_VALUE_CHARS).collect();
    if kept.next().is_some() {
        // Make room for the mark so the capped value is exactly MAX_VALUE_CHARS characters.
        capped.pop();
        capped.push('…');
    }
    match channel {
        Channel::Web => out.push_str(&capped),
        Channel::WhatsApp => out.extend(capped.chars().map(whatsapp_neutral)),
        Channel::Sms => {
            for c in capped.chars() {
                match gsm_friendly(c) {
                    Some(s) => out.push_str(s),
                    None => out.push(c),
                }
            }
        }
    }
}

/// Drops what must never reach a recipient from a value. Every channel loses ASCII controls
/// other than `\n` and `\t`, and bidirectional embedding/override/isolate controls, because a
/// customer name holding U+202E would visually reverse the admin's text that follows it.
/// SMS also loses every other control character (C1 included); a tab becomes a space there, as
/// GSM-7 has no tab and dropping it would glue two words together.
fn keep_in_value(c: char, channel: Channel) -> Option<char> {
    let bidi_control = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if bidi_control || (c.is_ascii_control() && c != '\n' && c != '\t') {
        return None;
    }
    if channel == Channel::Sms {
        if c == '\t' {
            return Some(' ');
        }
        if c.is_control() && c != '\n' {
            return None;
        }
    }
    Some(c)
}

/// WhatsApp reads `*`, `_`, `~` and backtick as formatting, so a value holding them could bold or
/// strike the admin's text around it. They become their fullwidth forms (U+FF0A `＊`, U+FF3F `＿`,
/// U+FF5E `～`, U+FF40 `｀`), which WhatsApp does not interpret and a reader still recognises.
/// Lookalikes were chosen over zero-width joiners because they do not depend on WhatsApp's
/// parser details and leave no invisible characters in a copied e-mail address; the mapping is
/// reversible (subtract U+FEE0).
fn whatsapp_neutral(c: char) -> char {
    match c {
        '*' => '＊',
        '_' => '＿',
        '~' => '～',
        '`' => '｀',
        other => other,
    }
}

/// GSM-7 replacements for the few non-GSM characters that typed text commonly carries (smart
/// quotes, dashes, ellipsis, unusual spaces), each of which would otherwise switch the whole SMS
/// to UCS-2 and cut its segment size from 160 to 70. Anything else outside GSM-7 (accented
/// letters beyond GSM's few, other scripts, emoji) is left as is: a transliteration table would
/// be large and lossy, and the SMS adapter picks the encoding for the whole message anyway.
fn gsm_friendly(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => "\"",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => " ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A lookup from placeholder spellings (`Task.Id`) to values, plus parameter defaults.
    #[derive(Default)]
    struct Ctx {
        values: BTreeMap<String, String>,
        defaults: BTreeMap<String, String>,
    }

    impl Ctx {
        fn with(mut self, name: &str, value: &str) -> Self {
            self.values.insert(name.to_owned(), value.to_owned());
            self
        }
        fn with_default(mut self, id: &str, value: &str) -> Self {
            self.defaults.insert(id.to_owned(), value.to_owned());
            self
        }
    }

    impl Lookup for Ctx {
        fn get(&self, key: &PlaceholderKey) -> Option<String> {
            self.values.get(&key.to_string()).cloned()
        }
        fn parameter_default(&self, id: &str) -> Option<String> {
            self.defaults.get(id).cloned()
        }
    }

    fn render(text: &str, ctx: &Ctx, channel: Channel) -> String {
        Template::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}")).render(ctx, channel)
    }

    fn web(text: &str, ctx: &Ctx) -> String {
        render(text, ctx, Channel::Web)
    }

    fn err(text: &str) -> TemplateError {
        Template::parse(text).expect_err(text)
    }

    fn validate(text: &str, known: &[&str]) -> Vec<(String, &'static str)> {
        let mut e = ValidationErrors::default();
        validate_template(&mut e, "/nodes/2/properties/text", text, &|id| known.contains(&id));
        e.0.into_iter().map(|f| (f.path, f.code)).collect()
    }

    // --- parsing ---

    #[test]
    fn text_without_placeholders_is_one_literal() {
        let t = Template::parse("Hello, world").unwrap();
        assert_eq!(t.segments(), [Segment::Literal("Hello, world".into())]);
    }

    #[test]
    fn empty_text_is_an_empty_template() {
        let t = Template::parse("").unwrap();
        assert!(t.segments().is_empty());
        assert_eq!(t.render(&Ctx::default(), Channel::Web), "");
    }

    #[test]
    fn placeholders_split_the_text_and_remember_their_offsets() {
        let t = Template::parse("Hi $(Customer.FirstName), ticket $(Task.Id).").unwrap();
        assert_eq!(
            t.segments(),
            [
                Segment::Literal("Hi ".into()),
                Segment::Placeholder { key: PlaceholderKey::System(SystemField::CustomerFirstName), offset: 3 },
                Segment::Literal(", ticket ".into()),
                Segment::Placeholder { key: PlaceholderKey::System(SystemField::TaskId), offset: 33 },
                Segment::Literal(".".into()),
            ]
        );
    }

    #[test]
    fn adjacent_placeholders_need_no_separator() {
        let ctx = Ctx::default().with("User.FirstName", "Ann").with("Queue.Position", "3");
        assert_eq!(web("$(User.FirstName)$(Queue.Position)", &ctx), "Ann3");
    }

    #[test]
    fn every_system_field_of_the_table_parses_to_itself() {
        for field in SystemField::ALL {
            let t = Template::parse(&format!("$({})", field.name())).unwrap();
            assert_eq!(t.segments(), [Segment::Placeholder { key: PlaceholderKey::System(field), offset: 0 }]);
        }
    }

    #[test]
    fn the_system_field_table_has_34_distinct_names() {
        let mut names: Vec<_> = SystemField::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 34);
        assert!(names.contains(&"Queue.EstimatedWait"));
        assert!(names.contains(&"Customer.UPN"));
    }

    #[test]
    fn custom_fields_and_parameters_carry_their_name() {
        let t = Template::parse("$(Customer.CustomFields.loyalty_tier) $(CustomContextParameters.Order_42)").unwrap();
        assert_eq!(
            t.segments()[0],
            Segment::Placeholder { key: PlaceholderKey::CustomerCustomField("loyalty_tier".into()), offset: 0 }
        );
        assert_eq!(
            t.segments()[2],
            Segment::Placeholder { key: PlaceholderKey::Parameter("Order_42".into()), offset: 38 }
        );
    }

    #[test]
    fn placeholder_keys_display_as_their_spelling() {
        for text in ["Task.Id", "Customer.UPN", "Customer.CustomFields.x", "CustomContextParameters.p1"] {
            let t = Template::parse(&format!("$({text})")).unwrap();
            let Segment::Placeholder { key, .. } = &t.segments()[0] else { panic!("{text}") };
            assert_eq!(key.to_string(), text);
        }
    }

    #[test]
    fn unknown_field_is_refused_with_its_offset() {
        let e = err("Hello $(Task.Idd)");
        assert_eq!(e.code(), "unknown_placeholder");
        assert_eq!(e.offset(), 6);
        assert!(e.to_string().contains("`$(Task.Idd)` at byte 6"), "{e}");
    }

    #[test]
    fn unknown_namespace_is_refused() {
        assert_eq!(err("$(Agent.Name)").code(), "unknown_placeholder");
        assert_eq!(err("$(Task)").code(), "unknown_placeholder");
        assert_eq!(err("$(Task.Id.Extra)").code(), "unknown_placeholder");
        assert_eq!(err("$(Customer.CustomField.x)").code(), "unknown_placeholder");
    }

    #[test]
    fn names_are_case_sensitive_and_the_error_suggests_the_right_case() {
        let e = err("$(customer.email)");
        assert_eq!(e.code(), "unknown_placeholder");
        assert!(e.to_string().contains("did you mean `$(Customer.Email)`?"), "{e}");
        let e = err("$(customcontextparameters.OrderId)");
        assert!(e.to_string().contains("did you mean `$(CustomContextParameters.OrderId)`?"), "{e}");
        assert_eq!(err("$(Customer.Upn)").code(), "unknown_placeholder");
    }

    #[test]
    fn offsets_count_bytes_not_characters() {
        // "héllo " is 7 bytes: é is two.
        assert_eq!(err("héllo $(Nope.X)").offset(), 7);
    }

    #[test]
    fn empty_and_malformed_names_are_invalid() {
        for bad in [
            "$()",
            "$( Task.Id)",
            "$(Task.Id )",
            "$(Task .Id)",
            "$(Task..Id)",
            "$(.Task.Id)",
            "$(Task.Id.)",
            "$(Task-Id)",
            "$(Tâsk.Id)",
            "$(Task.Id\n)",
            "$(Task(Id)",
        ] {
            let e = err(bad);
            assert_eq!(e.code(), "invalid_placeholder", "{bad}: {e}");
            assert_eq!(e.offset(), 0, "{bad}");
        }
    }

    #[test]
    fn parameter_ids_follow_the_parameter_id_rule() {
        let ok = format!("$(CustomContextParameters.{})", "a".repeat(64));
        assert!(Template::parse(&ok).is_ok());
        let too_long = format!("$(CustomContextParameters.{})", "a".repeat(65));
        assert_eq!(err(&too_long).code(), "invalid_placeholder");
        assert_eq!(err("$(CustomContextParameters.a.b)").code(), "invalid_placeholder");
        assert_eq!(err("$(CustomContextParameters)").code(), "invalid_placeholder");
        assert_eq!(err("$(CustomContextParameters.)").code(), "invalid_placeholder");
        assert_eq!(err("$(Customer.CustomFields)").code(), "invalid_placeholder");
        assert_eq!(err("$(Customer.CustomFields.a.b)").code(), "invalid_placeholder");
    }

    #[test]
    fn is_valid_parameter_id_accepts_letters_digits_and_underscore_only() {
        for (id, ok) in [
            ("OrderId", true),
            ("order_42", true),
            ("9", true),
            ("", false),
            ("a b", false),
            ("a-b", false),
            ("é", false),
        ] {
            assert_eq!(is_valid_parameter_id(id), ok, "{id:?}");
        }
    }

    #[test]
    fn an_unclosed_placeholder_is_refused_at_its_opening() {
        let e = err("Hi $(Customer.FirstName");
        assert_eq!(e, TemplateError::Unterminated { offset: 3 });
        assert_eq!(e.code(), "unterminated_placeholder");
        assert_eq!(err("$(").offset(), 0);
        assert_eq!(err("abc $(").offset(), 4);
    }

    #[test]
    fn a_placeholder_opened_again_before_closing_is_unterminated() {
        assert_eq!(err("Hi $(Customer.FirstName, ticket $(Task.Id)"), TemplateError::Unterminated { offset: 3 });
    }

    #[test]
    fn a_huge_text_of_unclosed_openings_is_refused_in_one_pass() {
        // Quadratic parsing would not finish here; each opening is reported once.
        let text = "$(".repeat(200_000);
        let mut e = ValidationErrors::default();
        validate_template(&mut e, "/t", &text, &|_| true);
        assert_eq!(e.0.len(), 200_000);
    }

    #[test]
    fn nested_openings_are_refused_without_panicking() {
        assert_eq!(err("$($("), TemplateError::Unterminated { offset: 0 });
        assert_eq!(err("$($(Task.Id))"), TemplateError::Unterminated { offset: 0 });
        assert_eq!(err("$(Task.$(Id))").code(), "unterminated_placeholder");
        assert_eq!(err("$(Task.Id))$(").offset(), 11);
    }

    #[test]
    fn garbage_around_dollars_and_parentheses_is_literal_when_no_placeholder_opens() {
        let ctx = Ctx::default();
        for text in ["$", "$$", "$$$", "a$b", "(", ")", "))", "$ (Task.Id)", "( $ )", "$)", "$$)", "100$"] {
            assert_eq!(web(text, &ctx), text, "{text:?}");
        }
    }

    #[test]
    fn validation_reports_every_mistake_with_the_property_path() {
        let got = validate("$(Nope.X) $() $(Task.Id) $(CustomContextParameters.Gone) $(Task", &[]);
        assert_eq!(
            got.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            ["unknown_placeholder", "invalid_placeholder", "unterminated_placeholder", "unknown_parameter"]
        );
        assert!(got.iter().all(|(p, _)| p == "/nodes/2/properties/text"));
    }

    #[test]
    fn validation_checks_placeholders_after_an_unclosed_one() {
        let got = validate("$(Task.Id $(Nope.X)", &[]);
        assert_eq!(
            got.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            ["unterminated_placeholder", "unknown_placeholder"]
        );
    }

    #[test]
    fn validation_refuses_unknown_parameters_once_each_and_accepts_known_ones() {
        let text = "$(CustomContextParameters.A) $(CustomContextParameters.B) $(CustomContextParameters.B)";
        assert_eq!(validate(text, &["A", "B"]), []);
        assert_eq!(validate(text, &["A"]), [("/nodes/2/properties/text".to_owned(), "unknown_parameter")]);
        let mut e = ValidationErrors::default();
        validate_template(&mut e, "/t", text, &|_| false);
        assert!(e.0[0].message.contains("$(CustomContextParameters.A)"), "{}", e.0[0].message);
    }

    #[test]
    fn validation_of_a_good_template_records_nothing() {
        assert_eq!(validate("Hi $(Customer.FirstName), $$(not a placeholder)", &[]), []);
    }

    #[test]
    fn error_messages_quote_long_names_shortened() {
        let long = format!("$({} )", "x".repeat(500));
        let msg = err(&long).to_string();
        assert!(msg.len() < 300, "{msg}");
        assert!(msg.contains('…'));
    }

    // --- escaping the syntax ---

    #[test]
    fn double_dollar_paren_is_a_literal_dollar_paren() {
        let ctx = Ctx::default().with("Task.Id", "42");
        assert_eq!(web("Write $$(Task.Id) to get $(Task.Id)", &ctx), "Write $(Task.Id) to get 42");
        assert_eq!(Template::parse("$$(").unwrap().segments(), [Segment::Literal("$(".into())]);
        assert_eq!(web("$$(Task.Id", &ctx), "$(Task.Id");
    }

    #[test]
    fn double_dollar_before_anything_else_stays_double_dollar() {
        let ctx = Ctx::default().with("Task.Id", "42");
        assert_eq!(web("$$ and $$x and $$", &ctx), "$$ and $$x and $$");
    }

    #[test]
    fn a_run_of_dollars_before_a_paren_loses_exactly_one_dollar() {
        let ctx = Ctx::default().with("Task.Id", "42");
        assert_eq!(web("$$$(Task.Id)", &ctx), "$$(Task.Id)");
        assert_eq!(web("$$$$(x", &ctx), "$$$(x");
    }

    #[test]
    fn escape_literal_round_trips_any_text() {
        for text in ["$(Task.Id)", "$$(", "$$$(", "a $( b", "$", "plain"] {
            let t = Template::parse(&escape_literal(text)).unwrap();
            assert_eq!(t.render(&Ctx::default(), Channel::Web), text, "{text:?}");
            assert_eq!(t.parameter_refs().count(), 0);
        }
    }

    // --- rendering ---

    #[test]
    fn literal_text_is_kept_byte_for_byte_including_unicode_and_markup() {
        let text = "Grüße 👋 <b>*bold*</b>\r\n\ttab\u{7}bell — $(Customer.FirstName)";
        let ctx = Ctx::default().with("Customer.FirstName", "Zoë");
        for channel in [Channel::Web, Channel::WhatsApp, Channel::Sms] {
            let out = render(text, &ctx, channel);
            assert_eq!(out, "Grüße 👋 <b>*bold*</b>\r\n\ttab\u{7}bell — Zoë", "{channel:?}");
        }
    }

    #[test]
    fn unicode_values_are_inserted_whole() {
        let ctx = Ctx::default().with("Customer.DisplayName", "山田 太郎 🎉");
        assert_eq!(web("こんにちは $(Customer.DisplayName)さん", &ctx), "こんにちは 山田 太郎 🎉さん");
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_comes_out_literally() {
        let ctx =
            Ctx::default().with("Customer.DisplayName", "$(Customer.Email)").with("Customer.Email", "secret@x.com");
        assert_eq!(web("Hi $(Customer.DisplayName)", &ctx), "Hi $(Customer.Email)");
        let ctx = Ctx::default().with("Customer.DisplayName", "$$(Task.Id) $(");
        assert_eq!(web("$(Customer.DisplayName)", &ctx), "$$(Task.Id) $(");
    }

    #[test]
    fn a_missing_value_renders_empty() {
        assert_eq!(web("Hi $(Customer.FirstName)!", &Ctx::default()), "Hi !");
        assert_eq!(web("[$(Customer.CustomFields.tier)]", &Ctx::default()), "[]");
    }

    #[test]
    fn a_missing_parameter_falls_back_to_its_default_then_to_empty() {
        let text = "[$(CustomContextParameters.Lang)]";
        assert_eq!(web(text, &Ctx::default().with_default("Lang", "en")), "[en]");
        assert_eq!(web(text, &Ctx::default()), "[]");
        let set = Ctx::default().with("CustomContextParameters.Lang", "de").with_default("Lang", "en");
        assert_eq!(web(text, &set), "[de]");
    }

    #[test]
    fn a_parameter_set_to_empty_does_not_fall_back_to_its_default() {
        let ctx = Ctx::default().with("CustomContextParameters.Lang", "").with_default("Lang", "en");
        assert_eq!(web("[$(CustomContextParameters.Lang)]", &ctx), "[]");
    }

    #[test]
    fn only_parameters_have_defaults() {
        struct DefaultsEverything;
        impl Lookup for DefaultsEverything {
            fn get(&self, _: &PlaceholderKey) -> Option<String> {
                None
            }
            fn parameter_default(&self, _: &str) -> Option<String> {
                Some("D".into())
            }
        }
        let t = Template::parse("$(Task.Id)|$(Customer.CustomFields.Lang)|$(CustomContextParameters.Lang)").unwrap();
        assert_eq!(t.render(&DefaultsEverything, Channel::Web), "||D");
    }

    #[test]
    fn parameter_defaults_are_cleaned_like_values() {
        let ctx = Ctx::default().with_default("P", "*x*\u{0}");
        assert_eq!(render("$(CustomContextParameters.P)", &ctx, Channel::WhatsApp), "＊x＊");
    }

    #[test]
    fn every_channel_strips_ascii_controls_but_keeps_newline() {
        let ctx = Ctx::default().with("Customer.DisplayName", "a\u{0}b\u{1b}[31mc\rd\u{7f}e\nf");
        for channel in [Channel::Web, Channel::WhatsApp, Channel::Sms] {
            assert_eq!(render("$(Customer.DisplayName)", &ctx, channel), "ab[31mcde\nf", "{channel:?}");
        }
    }

    #[test]
    fn every_channel_strips_bidi_overrides_from_values() {
        let ctx = Ctx::default().with("Customer.DisplayName", "evil\u{202E}txet\u{2066}x\u{2069}");
        for channel in [Channel::Web, Channel::WhatsApp, Channel::Sms] {
            assert_eq!(render("$(Customer.DisplayName) wrote", &ctx, channel), "eviltxetx wrote", "{channel:?}");
        }
    }

    #[test]
    fn web_and_whatsapp_keep_tabs_and_sms_turns_them_into_spaces() {
        let ctx = Ctx::default().with("Customer.DisplayName", "a\tb");
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::Web), "a\tb");
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::WhatsApp), "a\tb");
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::Sms), "a b");
    }

    #[test]
    fn web_leaves_markup_in_values_untouched() {
        let ctx = Ctx::default().with("Customer.DisplayName", "<script>alert(1)</script> & *x* _y_ “q”");
        assert_eq!(web("$(Customer.DisplayName)", &ctx), "<script>alert(1)</script> & *x* _y_ “q”");
    }

    #[test]
    fn whatsapp_neutralises_formatting_characters_in_values_only() {
        let ctx = Ctx::default().with("Customer.DisplayName", "*Ann* _the_ ~great~ ```x``` `y`");
        assert_eq!(
            render("*Hello* $(Customer.DisplayName)!", &ctx, Channel::WhatsApp),
            "*Hello* ＊Ann＊ ＿the＿ ～great～ ｀｀｀x｀｀｀ ｀y｀!"
        );
    }

    #[test]
    fn whatsapp_neutralisation_is_reversible() {
        let original = "a*b_c~d`e";
        let ctx = Ctx::default().with("Customer.Email", original);
        let out = render("$(Customer.Email)", &ctx, Channel::WhatsApp);
        let back: String = out
            .chars()
            .map(
                |c| if ('\u{FF01}'..='\u{FF5E}').contains(&c) { char::from_u32(c as u32 - 0xFEE0).unwrap() } else { c },
            )
            .collect();
        assert_eq!(back, original);
    }

    #[test]
    fn sms_drops_every_control_character_but_newline() {
        let ctx = Ctx::default().with("Customer.DisplayName", "a\u{85}b\u{9f}c\nd");
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::Sms), "abc\nd");
        // Web keeps C1 controls: only ASCII controls are dropped there.
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::Web), "a\u{85}b\u{9f}c\nd");
    }

    #[test]
    fn sms_replaces_typographic_punctuation_with_gsm_characters() {
        let ctx = Ctx::default().with("Customer.DisplayName", "O’Brien “Bob” – Smith…\u{a0}x");
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::Sms), "O'Brien \"Bob\" - Smith... x");
    }

    #[test]
    fn sms_leaves_other_unicode_as_is() {
        let ctx = Ctx::default().with("Customer.DisplayName", "Łukasz Ωmega 山田 🎉 *x*");
        assert_eq!(render("$(Customer.DisplayName)", &ctx, Channel::Sms), "Łukasz Ωmega 山田 🎉 *x*");
    }

    #[test]
    fn values_are_capped_at_a_thousand_characters_with_an_ellipsis() {
        let ctx = Ctx::default().with("Task.InitialMessage", &"é".repeat(1_500));
        let out = web("$(Task.InitialMessage)", &ctx);
        assert_eq!(out.chars().count(), MAX_VALUE_CHARS);
        assert!(out.ends_with("é…"));
    }

    #[test]
    fn a_value_of_exactly_a_thousand_characters_is_not_cut() {
        let value = "x".repeat(MAX_VALUE_CHARS);
        let ctx = Ctx::default().with("Task.InitialMessage", &value);
        assert_eq!(web("$(Task.InitialMessage)", &ctx), value);
        let ctx = Ctx::default().with("Task.InitialMessage", &"x".repeat(MAX_VALUE_CHARS + 1));
        assert!(web("$(Task.InitialMessage)", &ctx).ends_with("x…"));
    }

    #[test]
    fn the_cap_counts_characters_after_controls_are_dropped() {
        let value = format!("{}{}", "\u{0}".repeat(50), "y".repeat(MAX_VALUE_CHARS));
        let ctx = Ctx::default().with("Task.InitialMessage", &value);
        assert_eq!(web("$(Task.InitialMessage)", &ctx), "y".repeat(MAX_VALUE_CHARS));
    }

    #[test]
    fn the_cap_applies_per_value_not_to_the_whole_text() {
        let v = "z".repeat(900);
        let ctx = Ctx::default().with("Customer.FirstName", &v).with("Customer.LastName", &v);
        assert_eq!(web("$(Customer.FirstName)$(Customer.LastName)", &ctx).len(), 1_800);
    }

    #[test]
    fn sms_spells_the_cap_mark_in_gsm() {
        let ctx = Ctx::default().with("Task.InitialMessage", &"x".repeat(2_000));
        assert!(render("$(Task.InitialMessage)", &ctx, Channel::Sms).ends_with("x..."));
    }

    #[test]
    fn channels_serialise_in_snake_case() {
        for (channel, name) in [(Channel::Web, "web"), (Channel::WhatsApp, "whatsapp"), (Channel::Sms, "sms")] {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&channel).unwrap(), json);
            assert_eq!(serde_json::from_str::<Channel>(&json).unwrap(), channel);
        }
        assert!(serde_json::from_str::<Channel>("\"whats_app\"").is_err());
    }

    // --- parameter references ---

    #[test]
    fn parameter_refs_lists_each_referenced_parameter_once_in_order() {
        let t = Template::parse(
            "$(CustomContextParameters.B) $(Task.Id) $(CustomContextParameters.A) $(Customer.CustomFields.C) \
             $(CustomContextParameters.B)",
        )
        .unwrap();
        assert_eq!(t.parameter_refs().collect::<Vec<_>>(), ["B", "A"]);
    }

    #[test]
    fn escaped_text_references_no_parameter() {
        let t = Template::parse("$$(CustomContextParameters.A)").unwrap();
        assert_eq!(t.parameter_refs().count(), 0);
    }

    // --- properties ---

    /// Strings built from the characters that matter to the parser, plus some multi-byte ones.
    fn tricky_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("$".to_owned()),
                Just("(".to_owned()),
                Just(")".to_owned()),
                Just(".".to_owned()),
                Just("Task.Id".to_owned()),
                Just("CustomContextParameters.P".to_owned()),
                Just("é".to_owned()),
                Just("🎉".to_owned()),
                Just(" ".to_owned()),
                "[a-zA-Z_]{1,3}",
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = Template::parse(&text);
            let mut e = ValidationErrors::default();
            validate_template(&mut e, "/t", &text, &|_| false);
        }

        #[test]
        fn parse_never_panics_on_dollar_and_paren_soup(text in tricky_text()) {
            if let Ok(t) = Template::parse(&text) {
                let _ = t.render(&Ctx::default().with("Task.Id", "$(Task.Id)"), Channel::WhatsApp);
            }
        }

        #[test]
        fn errors_point_at_a_dollar_paren_in_the_source(text in tricky_text()) {
            if let Err(e) = Template::parse(&text) {
                prop_assert!(text[e.offset()..].starts_with("$("));
            }
        }

        #[test]
        fn text_without_placeholders_renders_unchanged_after_unescaping(text in tricky_text()) {
            if let Ok(t) = Template::parse(&text)
                && t.segments().iter().all(|s| matches!(s, Segment::Literal(_)))
            {
                for channel in [Channel::Web, Channel::WhatsApp, Channel::Sms] {
                    prop_assert_eq!(t.render(&Ctx::default(), channel), text.replace("$$(", "$("));
                }
            }
        }

        #[test]
        fn escaped_arbitrary_text_renders_back_to_itself(text in any::<String>()) {
            let t = Template::parse(&escape_literal(&text)).unwrap();
            prop_assert_eq!(t.parameter_refs().count(), 0);
            prop_assert_eq!(t.render(&Ctx::default(), Channel::Sms), text);
        }

        #[test]
        fn escaped_soup_renders_back_to_itself(text in tricky_text()) {
            let t = Template::parse(&escape_literal(&text)).unwrap();
            prop_assert_eq!(t.render(&Ctx::default(), Channel::Web), text);
        }

        #[test]
        fn rendered_values_never_exceed_the_cap_on_web(value in any::<String>()) {
            let ctx = Ctx::default().with("Task.InitialMessage", &value);
            let out = web("$(Task.InitialMessage)", &ctx);
            prop_assert!(out.chars().count() <= MAX_VALUE_CHARS);
            prop_assert!(!out.chars().any(|c| c.is_ascii_control() && c != '\n' && c != '\t'));
        }
    }
}
