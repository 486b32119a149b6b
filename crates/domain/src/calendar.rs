//! Opening-hours calendars: which period type (open, closed, holiday, special 1–4) a service is
//! in at an instant, so the Check Opening Hours activity can pick its exit (spec §1.2
//! "OpeningHours", §3.2, §4.7).
//!
//! A [`Calendar`] is a time zone, a default category and a list of [`Period`]s. Each period has
//! a [`Rule`] in the calendar's local wall-clock time:
//!
//! - `weekly`: on the listed weekdays from `start` to `end` (`HH:MM`; `end` may be `24:00`). When
//!   `end <= start` the period runs past midnight into the next day, so Fri 22:00–06:00 covers
//!   Saturday 03:00, and `start == end` is a full 24 hours.
//! - `dates`: a one-off span `YYYY-MM-DDTHH:MM` to `YYYY-MM-DDTHH:MM`, end exclusive.
//! - `annual`: every year on `month`/`day`, the whole day unless `start`/`end` narrow it (a
//!   missing `start` means 00:00, a missing `end` means 24:00; overnight works as for `weekly`).
//!   Feb 29 is accepted and only matches in leap years.
//!
//! # Precedence
//!
//! When several periods cover an instant, the more specific kind wins: `dates` beats `annual`
//! beats `weekly`. Within one kind the first period in the list wins. A holiday therefore
//! overrides the weekly schedule without the weekly periods having to leave a hole for it.
//!
//! # Daylight-saving time
//!
//! Periods are stated in local time and compared in real instants, so 08:00–17:00 means 08:00 on
//! the wall clock both before and after a change. A local boundary `L` that does not map to
//! exactly one instant is resolved to *the first instant whose wall clock reads `L` or later*:
//!
//! - in a gap (02:30 on a spring-forward day does not exist) that is the first instant after the
//!   gap, i.e. the transition itself (03:00 new time);
//! - in a fold (02:30 on a fall-back day happens twice) that is the earlier of the two instants.
//!
//! Because the rule depends only on the local boundary, back-to-back periods that share a
//! boundary (Mon 00:00–24:00, Tue 00:00–24:00, …) still tile time with no hole and no overlap,
//! even in zones that once skipped a whole day (Pacific/Apia, 2011-12-30).
//!
//! # Invalid calendars
//!
//! [`Calendar::validate`] runs before anything is stored. Should an invalid calendar reach
//! [`Calendar::category_at`] anyway, unusable parts are ignored rather than panicking: a period
//! with an unparsable rule never covers, and an unknown time zone means no period covers, so the
//! default category applies.
//!
//! # Time zone data
//!
//! The IANA database is compiled into the binary (jiff's `tzdb-bundle-always`) and looked up via
//! [`TimeZoneDatabase::bundled`], never through the process-global database: this crate does no
//! IO, and results must not depend on the host's `/usr/share/zoneinfo`. The rest of Parley speaks
//! `time::OffsetDateTime`, so jiff stays internal to this module.

use crate::error::ValidationErrors;
use crate::ids::{CalendarId, OrgUnitId, TenantId};
use jiff::Timestamp;
use jiff::civil;
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Most periods one calendar may have; evaluation walks them all on every check.
pub const MAX_PERIODS: usize = 500;

/// Minutes in a local day; `24:00` parses to this.
const DAY_MINUTES: u16 = 24 * 60;

/// A period type. Each maps 1:1 to an exit of the Check Opening Hours activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Open,
    Closed,
    Holiday,
    Special1,
    Special2,
    Special3,
    Special4,
}

impl Category {
    /// Every category, in exit order.
    pub const ALL: [Self; 7] =
        [Self::Open, Self::Closed, Self::Holiday, Self::Special1, Self::Special2, Self::Special3, Self::Special4];

    /// The stable text form used in storage and the API (`special1`, not `special_1`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Holiday => "holiday",
            Self::Special1 => "special1",
            Self::Special2 => "special2",
            Self::Special3 => "special3",
            Self::Special4 => "special4",
        }
    }

    /// The Check Opening Hours exit taken in this category.
    #[must_use]
    pub const fn exit_name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Holiday => "holiday",
            Self::Special1 => "special_1",
            Self::Special2 => "special_2",
            Self::Special3 => "special_3",
            Self::Special4 => "special_4",
        }
    }
}

/// The outcome of Check Opening Hours: a category, or `Default` when the service has no calendar.
///
/// Serialized as one string: a [`Category`]'s text form or `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum OpeningState {
    Category(Category),
    Default,
}

impl OpeningState {
    /// Every Check Opening Hours exit name, in the order the activity lists them.
    pub const EXIT_NAMES: [&'static str; 8] =
        ["open", "closed", "holiday", "special_1", "special_2", "special_3", "special_4", "default"];

    /// The stable text form: the category's, or `default`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Category(c) => c.as_str(),
            Self::Default => "default",
        }
    }

    /// The Check Opening Hours exit taken in this state.
    #[must_use]
    pub const fn exit_name(self) -> &'static str {
        match self {
            Self::Category(c) => c.exit_name(),
            Self::Default => "default",
        }
    }
}

impl From<Category> for OpeningState {
    fn from(c: Category) -> Self {
        Self::Category(c)
    }
}

impl From<OpeningState> for &'static str {
    fn from(s: OpeningState) -> Self {
        s.as_str()
    }
}

impl TryFrom<String> for OpeningState {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s == "default" {
            return Ok(Self::Default);
        }
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .map(Self::Category)
            .ok_or_else(|| format!("unknown opening state `{s}`"))
    }
}

// Hand-written because the derive would describe the enum's Rust shape, not the one string it
// serializes to.
impl utoipa::PartialSchema for OpeningState {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let values = Category::ALL.into_iter().map(Self::Category).chain([Self::Default]).map(Self::as_str);
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(values))
            .description(Some("An opening-hours category, or `default` when the service has no calendar."))
            .into()
    }
}

impl ToSchema for OpeningState {}

/// A day of the week, as `weekly` rules name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday first, as ISO 8601 orders them.
    pub const ALL: [Self; 7] = [Self::Mon, Self::Tue, Self::Wed, Self::Thu, Self::Fri, Self::Sat, Self::Sun];

    fn of(date: civil::Date) -> Self {
        match date.weekday() {
            civil::Weekday::Monday => Self::Mon,
            civil::Weekday::Tuesday => Self::Tue,
            civil::Weekday::Wednesday => Self::Wed,
            civil::Weekday::Thursday => Self::Thu,
            civil::Weekday::Friday => Self::Fri,
            civil::Weekday::Saturday => Self::Sat,
            civil::Weekday::Sunday => Self::Sun,
        }
    }
}

/// When a period applies, in the calendar's local wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// Every week on `days`, from `start` to `end`; `end <= start` runs into the next day.
    Weekly {
        days: Vec<Weekday>,
        /// `HH:MM`, 00:00–23:59.
        start: String,
        /// `HH:MM`, 00:00–24:00.
        end: String,
    },
    /// One span, e.g. a public holiday or a special event.
    Dates {
        /// `YYYY-MM-DDTHH:MM`, inclusive.
        start: String,
        /// `YYYY-MM-DDTHH:MM`, exclusive; after `start`.
        end: String,
    },
    /// Every year on `month`/`day`; the whole day unless `start`/`end` narrow it.
    Annual {
        /// 1–12.
        month: u8,
        /// 1–31, and a day the month has (Feb 29 matches only in leap years).
        day: u8,
        /// `HH:MM`, 00:00–23:59; 00:00 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<String>,
        /// `HH:MM`, 00:00–24:00; 24:00 when absent; `end <= start` runs into the next day.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<String>,
    },
}

/// The precedence tiers, most specific first (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Dates,
    Annual,
    Weekly,
}

impl Rule {
    const fn tier(&self) -> Tier {
        match self {
            Self::Dates { .. } => Tier::Dates,
            Self::Annual { .. } => Tier::Annual,
            Self::Weekly { .. } => Tier::Weekly,
        }
    }

    /// `window` holds the local dates on which an occurrence covering `now` can start.
    fn covers(&self, tz: &TimeZone, now: Timestamp, window: &[civil::Date]) -> bool {
        match self {
            Self::Dates { start, end } => match (parse_datetime(start), parse_datetime(end)) {
                (Ok(start), Ok(end)) => within(tz, now, start, end),
                _ => false,
            },
            Self::Weekly { days, start, end } => {
                let Some(span) = DailySpan::parse(Some(start), Some(end)) else { return false };
                window.iter().filter(|d| days.contains(&Weekday::of(**d))).any(|&d| span.covers(tz, now, d))
            }
            Self::Annual { month, day, start, end } => {
                let Some(span) = DailySpan::parse(start.as_deref(), end.as_deref()) else { return false };
                window
                    .iter()
                    .filter(|d| annual_date(d.year(), *month, *day) == Some(**d))
                    .any(|&d| span.covers(tz, now, d))
            }
        }
    }

    fn validate(&self, e: &mut ValidationErrors, path: &str) {
        match self {
            Self::Weekly { days, start, end } => {
                if days.is_empty() {
                    e.push(format!("{path}/days"), "required", "must name at least one weekday");
                }
                check_time(e, &format!("{path}/start"), start, false);
                check_time(e, &format!("{path}/end"), end, true);
            }
            Self::Dates { start, end } => {
                let parsed_start = check_datetime(e, &format!("{path}/start"), start);
                let parsed_end = check_datetime(e, &format!("{path}/end"), end);
                if let (Some(s), Some(t)) = (parsed_start, parsed_end)
                    && t <= s
                {
                    e.push(format!("{path}/end"), "empty_span", "must be after start");
                }
            }
            Self::Annual { month, day, start, end } => {
                if !(1..=12).contains(month) {
                    e.push(format!("{path}/month"), "invalid_date", "must be a month from 1 to 12");
                } else if annual_date(2000, *month, *day).is_none() {
                    // 2000 is a leap year, so Feb 29 passes here and simply never matches in other years.
                    e.push(format!("{path}/day"), "invalid_date", "must be a day that exists in the month");
                }
                if let Some(start) = start {
                    check_time(e, &format!("{path}/start"), start, false);
                }
                if let Some(end) = end {
                    check_time(e, &format!("{path}/end"), end, true);
                }
            }
        }
    }
}

/// One rule and the category it puts the calendar in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub category: Category,
    pub rule: Rule,
}

/// The body of an opening-hours calendar; the stored entity adds id, tenant and organization unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// IANA time zone name, e.g. `Europe/Zurich`; every rule is read in this zone.
    pub time_zone: String,
    /// Applies when no period covers the instant (a calendar always has a state).
    pub default_category: Category,
    /// At most [`MAX_PERIODS`]; precedence is described in the module doc.
    #[serde(default)]
    pub periods: Vec<Period>,
}

impl Calendar {
    /// Checks every rule, so an API client sees all mistakes at once.
    ///
    /// # Errors
    /// Every broken rule, with paths like `/periods/3/rule/start`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::default();
        if self.time_zone.trim().is_empty() {
            e.push("/time_zone", "required", "must not be empty");
        } else if zone(&self.time_zone).is_none() {
            e.push("/time_zone", "unknown_time_zone", "must be an IANA time zone name like Europe/Zurich");
        }
        if self.periods.len() > MAX_PERIODS {
            e.push("/periods", "too_many", format!("must have at most {MAX_PERIODS} periods"));
        }
        for (i, period) in self.periods.iter().enumerate() {
            period.rule.validate(&mut e, &format!("/periods/{i}/rule"));
        }
        e.into_result(())
    }

    /// The category of the period covering `now`, or `None` when no period does (the caller then
    /// decides whether this calendar's default applies, see [`resolve`]).
    #[must_use]
    pub fn category_at(&self, now: OffsetDateTime) -> Option<Category> {
        let tz = zone(&self.time_zone)?;
        let now = Timestamp::from_nanosecond(now.unix_timestamp_nanos()).ok()?;
        let today = tz.to_datetime(now).date();
        // A recurring occurrence lasts at most one local day, so one starting the day before
        // yesterday or yesterday can still be running. Tomorrow is included because a fold
        // around midnight can rewind the wall clock from tomorrow back into today.
        let yesterday = today.yesterday().ok();
        let window: Vec<civil::Date> =
            [yesterday.and_then(|d| d.yesterday().ok()), yesterday, Some(today), today.tomorrow().ok()]
                .into_iter()
                .flatten()
                .collect();
        [Tier::Dates, Tier::Annual, Tier::Weekly].into_iter().find_map(|tier| {
            self.periods
                .iter()
                .filter(|p| p.rule.tier() == tier)
                .find(|p| p.rule.covers(&tz, now, &window))
                .map(|p| p.category)
        })
    }
}

/// The opening state of a service with an optional primary and secondary calendar (spec §4.7).
///
/// The primary's covering period wins, then the secondary's, then the primary's default; the
/// secondary's default only applies when it is the sole calendar. No calendar at all gives
/// [`OpeningState::Default`].
#[must_use]
pub fn resolve(primary: Option<&Calendar>, secondary: Option<&Calendar>, now: OffsetDateTime) -> OpeningState {
    match (primary, secondary) {
        (Some(p), s) => {
            p.category_at(now).or_else(|| s.and_then(|s| s.category_at(now))).unwrap_or(p.default_category).into()
        }
        (None, Some(s)) => s.category_at(now).unwrap_or(s.default_category).into(),
        (None, None) => OpeningState::Default,
    }
}

/// The zone from the compiled-in database; `Etc/Unknown` is jiff's sentinel, not a real zone.
pub(crate) fn zone(name: &str) -> Option<TimeZone> {
    let tz = TimeZoneDatabase::bundled().get(name).ok()?;
    (!tz.is_unknown()).then_some(tz)
}

/// Daily `start`–`end` in minutes after local midnight; `end <= start` ends on the next day.
#[derive(Clone, Copy)]
struct DailySpan {
    start: u16,
    end: u16,
}

impl DailySpan {
    /// Absent times widen the span to the whole day.
    fn parse(start: Option<&str>, end: Option<&str>) -> Option<Self> {
        let start = start.map_or(Some(0), |s| parse_time(s.as_bytes(), false))?;
        let end = end.map_or(Some(DAY_MINUTES), |s| parse_time(s.as_bytes(), true))?;
        Some(Self { start, end })
    }

    fn covers(self, tz: &TimeZone, now: Timestamp, day: civil::Date) -> bool {
        let end_day = if self.end <= self.start { day.tomorrow().ok() } else { Some(day) };
        match (local(day, self.start), end_day.and_then(|d| local(d, self.end))) {
            (Some(start), Some(end)) => within(tz, now, start, end),
            _ => false,
        }
    }
}

/// `minutes` after midnight of `day`; 24:00 becomes the next day's midnight.
fn local(day: civil::Date, minutes: u16) -> Option<civil::DateTime> {
    let (day, minutes) =
        if minutes >= DAY_MINUTES { (day.tomorrow().ok()?, minutes - DAY_MINUTES) } else { (day, minutes) };
    let hour = i8::try_from(minutes / 60).ok()?;
    let minute = i8::try_from(minutes % 60).ok()?;
    civil::Time::new(hour, minute, 0, 0).ok().map(|t| day.to_datetime(t))
}

/// Whether `now` lies in `[start, end)`, both local boundaries resolved as the module doc says.
fn within(tz: &TimeZone, now: Timestamp, start: civil::DateTime, end: civil::DateTime) -> bool {
    boundary(tz, start) <= now && now < boundary(tz, end)
}

/// The first instant whose wall clock in `tz` reads `local` or later.
///
/// jiff's instants end a few hours inside its civil range; a boundary beyond them clamps, so a
/// span "until 9999-12-31T23:59" (closed until further notice) still covers everything before.
fn boundary(tz: &TimeZone, local: civil::DateTime) -> Timestamp {
    exact_boundary(tz, local).unwrap_or(if local.year() > 0 { Timestamp::MAX } else { Timestamp::MIN })
}

fn exact_boundary(tz: &TimeZone, local: civil::DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok(),
        AmbiguousOffset::Gap { before, after } => {
            // Read with the later offset, a gap time lands strictly before the transition that
            // opened the gap, so the next transition from there is the end of the gap.
            let inside = after.to_timestamp(local).ok()?;
            tz.following(inside).next().map(|t| t.timestamp()).or_else(|| before.to_timestamp(local).ok())
        }
    }
}

/// `HH:MM`; `24:00` only when `end_of_day` is allowed.
fn parse_time(b: &[u8], end_of_day: bool) -> Option<u16> {
    let [h1, h2, b':', m1, m2] = *b else { return None };
    let hour = two_digits(h1, h2)?;
    let minute = two_digits(m1, m2)?;
    match (hour, minute) {
        (0..=23, 0..=59) => Some(hour * 60 + minute),
        (24, 0) if end_of_day => Some(DAY_MINUTES),
        _ => None,
    }
}

fn two_digits(a: u8, b: u8) -> Option<u16> {
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| u16::from(a - b'0') * 10 + u16::from(b - b'0'))
}

/// `YYYY-MM-DDTHH:MM`. The error is the validation code: `invalid_date` for a malformed value or
/// a day that does not exist, `invalid_time` when only the time part is wrong.
fn parse_datetime(s: &str) -> Result<civil::DateTime, &'static str> {
    let b = s.as_bytes();
    let [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T', ref time @ ..] = *b else { return Err("invalid_date") };
    let (Some(yh), Some(yl), Some(month), Some(day)) =
        (two_digits(y1, y2), two_digits(y3, y4), two_digits(mo1, mo2), two_digits(d1, d2))
    else {
        return Err("invalid_date");
    };
    let date = i16::try_from(yh * 100 + yl)
        .ok()
        .zip(i8::try_from(month).ok().zip(i8::try_from(day).ok()))
        .and_then(|(y, (m, d))| civil::Date::new(y, m, d).ok())
        .ok_or("invalid_date")?;
    let minutes = parse_time(time, false).ok_or("invalid_time")?;
    local(date, minutes).ok_or("invalid_time")
}

/// The date `month`/`day` in `year`, if it exists.
fn annual_date(year: i16, month: u8, day: u8) -> Option<civil::Date> {
    civil::Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

fn check_time(e: &mut ValidationErrors, path: &str, value: &str, end_of_day: bool) {
    if parse_time(value.as_bytes(), end_of_day).is_none() {
        let range = if end_of_day { "00:00 to 24:00" } else { "00:00 to 23:59" };
        e.push(path, "invalid_time", format!("must be a time HH:MM from {range}"));
    }
}

fn check_datetime(e: &mut ValidationErrors, path: &str, value: &str) -> Option<civil::DateTime> {
    parse_datetime(value)
        .inspect_err(|&code| {
            e.push(path, code, "must be an existing local date and time YYYY-MM-DDTHH:MM");
        })
        .ok()
}

/// A stored opening-hours calendar, placed in an organization unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpeningCalendar {
    pub id: CalendarId,
    pub tenant_id: TenantId,
    pub ou_id: OrgUnitId,
    pub name: String,
    pub calendar: Calendar,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Input of `POST /api/v1/calendars` and `PUT /api/v1/calendars/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalendar {
    /// Organization unit; the tenant root when absent (ignored on update).
    #[serde(default)]
    pub ou_id: Option<OrgUnitId>,
    pub name: String,
    pub calendar: Calendar,
}

impl NewCalendar {
    /// Checks and normalises the input.
    ///
    /// # Errors
    /// Every broken rule, with its field path (calendar rules under `/calendar`).
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut e = ValidationErrors::default();
        self.name = crate::validate::required_text(&mut e, "/name", &self.name, crate::entities::MAX_NAME_CHARS);
        if let Err(more) = self.calendar.validate() {
            for f in more.0 {
                e.push(format!("/calendar{}", f.path), f.code, f.message);
            }
        }
        e.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const WORKDAYS: &[Weekday] = &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

    fn weekly(category: Category, days: &[Weekday], start: &str, end: &str) -> Period {
        Period { category, rule: Rule::Weekly { days: days.to_vec(), start: start.into(), end: end.into() } }
    }

    fn dates(category: Category, start: &str, end: &str) -> Period {
        Period { category, rule: Rule::Dates { start: start.into(), end: end.into() } }
    }

    fn annual(category: Category, month: u8, day: u8, start: Option<&str>, end: Option<&str>) -> Period {
        Period { category, rule: Rule::Annual { month, day, start: start.map(Into::into), end: end.map(Into::into) } }
    }

    fn calendar(time_zone: &str, periods: Vec<Period>) -> Calendar {
        Calendar { time_zone: time_zone.into(), default_category: Category::Closed, periods }
    }

    fn office(time_zone: &str) -> Calendar {
        calendar(time_zone, vec![weekly(Category::Open, WORKDAYS, "08:00", "17:00")])
    }

    fn codes(c: &Calendar) -> Vec<(String, &'static str)> {
        c.validate().err().map(|e| e.0).unwrap_or_default().into_iter().map(|f| (f.path, f.code)).collect()
    }

    fn at(unix_seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap()
    }

    // --- categories and exits ---

    #[test]
    fn categories_serialize_in_snake_case() {
        let names: Vec<String> = Category::ALL.iter().map(|c| serde_json::to_value(c).unwrap().to_string()).collect();
        assert_eq!(
            names,
            ["\"open\"", "\"closed\"", "\"holiday\"", "\"special1\"", "\"special2\"", "\"special3\"", "\"special4\""]
        );
        for c in Category::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn every_opening_state_maps_to_its_check_opening_hours_exit() {
        let states = Category::ALL.into_iter().map(OpeningState::Category).chain([OpeningState::Default]);
        let exits: Vec<&str> = states.map(OpeningState::exit_name).collect();
        assert_eq!(exits, OpeningState::EXIT_NAMES);
        assert_eq!(Category::Special3.exit_name(), "special_3");
        assert_eq!(OpeningState::Default.exit_name(), "default");
    }

    #[test]
    fn opening_state_serializes_as_one_string_and_round_trips() {
        for s in Category::ALL.into_iter().map(OpeningState::from).chain([OpeningState::Default]) {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, s.as_str());
            assert_eq!(serde_json::from_value::<OpeningState>(json).unwrap(), s);
        }
        assert!(serde_json::from_str::<OpeningState>("\"special_1\"").is_err());
    }

    #[test]
    fn opening_state_schema_lists_every_state() {
        let schema = serde_json::to_value(<OpeningState as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema["enum"],
            serde_json::json!(["open", "closed", "holiday", "special1", "special2", "special3", "special4", "default"])
        );
    }

    // --- wire format ---

    #[test]
    fn calendar_json_uses_a_kind_tag_for_rules_and_round_trips() {
        let json = serde_json::json!({
            "time_zone": "Europe/Zurich",
            "default_category": "closed",
            "periods": [
                {"category": "open", "rule": {"kind": "weekly", "days": ["mon", "fri"], "start": "08:00", "end": "17:00"}},
                {"category": "holiday", "rule": {"kind": "dates", "start": "2025-12-24T12:00", "end": "2025-12-27T00:00"}},
                {"category": "special2", "rule": {"kind": "annual", "month": 8, "day": 1}}
            ]
        });
        let c: Calendar = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(c.periods[0], weekly(Category::Open, &[Weekday::Mon, Weekday::Fri], "08:00", "17:00"));
        assert_eq!(c.periods[2], annual(Category::Special2, 8, 1, None, None));
        assert_eq!(serde_json::to_value(&c).unwrap(), json);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn calendar_without_periods_is_valid_and_only_has_its_default() {
        let c: Calendar = serde_json::from_str(r#"{"time_zone":"UTC","default_category":"holiday"}"#).unwrap();
        assert!(c.periods.is_empty());
        assert!(c.validate().is_ok());
        assert_eq!(c.category_at(at(0)), None);
        assert_eq!(resolve(Some(&c), None, at(0)), OpeningState::Category(Category::Holiday));
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        for json in [
            r#"{"time_zone":"UTC","default_category":"open","colour":"red"}"#,
            r#"{"time_zone":"UTC","default_category":"open","periods":[{"category":"open","rule":{"kind":"annual","month":1,"day":1},"x":1}]}"#,
            r#"{"time_zone":"UTC","default_category":"open","periods":[{"category":"open","rule":{"kind":"annual","month":1,"day":1,"year":2025}}]}"#,
            r#"{"time_zone":"UTC","default_category":"open","periods":[{"category":"open","rule":{"kind":"monthly"}}]}"#,
            r#"{"time_zone":"UTC","default_category":"special_1"}"#,
        ] {
            assert!(serde_json::from_str::<Calendar>(json).is_err(), "{json}");
        }
    }

    // --- weekly ---

    #[test]
    fn weekly_period_covers_from_start_inclusive_to_end_exclusive() {
        let c = office("UTC");
        // 2025-06-02 is a Monday.
        assert_eq!(c.category_at(datetime!(2025-06-02 07:59:59.999 UTC)), None);
        assert_eq!(c.category_at(datetime!(2025-06-02 08:00 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-06-02 16:59:59.999 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-06-02 17:00 UTC)), None);
    }

    #[test]
    fn weekly_period_only_applies_on_its_days() {
        let c = office("UTC");
        assert_eq!(c.category_at(datetime!(2025-06-06 12:00 UTC)), Some(Category::Open)); // Friday
        assert_eq!(c.category_at(datetime!(2025-06-07 12:00 UTC)), None); // Saturday
        assert_eq!(c.category_at(datetime!(2025-06-08 12:00 UTC)), None); // Sunday
    }

    #[test]
    fn weekly_period_is_read_in_the_calendars_time_zone() {
        let c = office("Asia/Tokyo");
        // 08:30 in Tokyo (UTC+9, no DST) is 23:30 UTC the evening before.
        assert_eq!(c.category_at(datetime!(2025-06-01 23:30 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-06-02 08:30 UTC)), None);
    }

    #[test]
    fn weekly_period_may_end_at_24_00() {
        let c = calendar("UTC", vec![weekly(Category::Special1, &[Weekday::Mon], "18:00", "24:00")]);
        assert_eq!(c.category_at(datetime!(2025-06-02 23:59:59 UTC)), Some(Category::Special1));
        assert_eq!(c.category_at(datetime!(2025-06-03 00:00 UTC)), None);
    }

    #[test]
    fn overnight_friday_period_covers_early_saturday() {
        let c = calendar("Europe/Zurich", vec![weekly(Category::Special1, &[Weekday::Fri], "22:00", "06:00")]);
        // 2025-06-06 is a Friday; Zurich is UTC+2 in summer.
        assert_eq!(c.category_at(datetime!(2025-06-06 19:59 UTC)), None); // Fri 21:59
        assert_eq!(c.category_at(datetime!(2025-06-06 20:00 UTC)), Some(Category::Special1)); // Fri 22:00
        assert_eq!(c.category_at(datetime!(2025-06-07 01:00 UTC)), Some(Category::Special1)); // Sat 03:00
        assert_eq!(c.category_at(datetime!(2025-06-07 04:00 UTC)), None); // Sat 06:00
        // Friday's own early morning belongs to Thursday's night, which is not listed.
        assert_eq!(c.category_at(datetime!(2025-06-06 01:00 UTC)), None); // Fri 03:00
    }

    #[test]
    fn overnight_sunday_period_wraps_into_monday_of_the_next_week() {
        let c = calendar("UTC", vec![weekly(Category::Closed, &[Weekday::Sun], "20:00", "07:00")]);
        assert_eq!(c.category_at(datetime!(2025-06-09 06:59 UTC)), Some(Category::Closed)); // Mon
        assert_eq!(c.category_at(datetime!(2025-06-09 07:00 UTC)), None);
    }

    #[test]
    fn weekly_period_with_equal_start_and_end_lasts_a_full_day() {
        let c = calendar("UTC", vec![weekly(Category::Open, &[Weekday::Mon], "09:00", "09:00")]);
        assert_eq!(c.category_at(datetime!(2025-06-02 09:00 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-06-03 08:59 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-06-03 09:00 UTC)), None);
    }

    // --- daylight-saving time ---

    #[test]
    fn zurich_office_opens_at_eight_local_after_spring_forward() {
        let c = office("Europe/Zurich");
        // Before the change (Fri 2025-03-28, UTC+1) and on the Monday after (2025-03-31, UTC+2).
        assert_eq!(c.category_at(datetime!(2025-03-28 07:30 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-03-28 06:30 UTC)), None);
        assert_eq!(c.category_at(datetime!(2025-03-31 06:30 UTC)), Some(Category::Open)); // 08:30 local
        assert_eq!(c.category_at(datetime!(2025-03-31 05:59 UTC)), None); // 07:59 local
        assert_eq!(c.category_at(datetime!(2025-03-31 06:00 UTC)), Some(Category::Open)); // 08:00 local
        assert_eq!(c.category_at(datetime!(2025-03-31 15:00 UTC)), None); // 17:00 local
    }

    #[test]
    fn zurich_office_opens_at_eight_local_after_fall_back() {
        let c = office("Europe/Zurich");
        assert_eq!(c.category_at(datetime!(2025-10-24 06:30 UTC)), Some(Category::Open)); // Fri, UTC+2
        assert_eq!(c.category_at(datetime!(2025-10-27 07:30 UTC)), Some(Category::Open)); // Mon 08:30, UTC+1
        assert_eq!(c.category_at(datetime!(2025-10-27 06:30 UTC)), None); // 07:30 local
        assert_eq!(c.category_at(datetime!(2025-10-27 15:59 UTC)), Some(Category::Open)); // 16:59 local
        assert_eq!(c.category_at(datetime!(2025-10-27 16:00 UTC)), None); // 17:00 local
    }

    #[test]
    fn new_york_office_opens_at_eight_local_after_spring_forward() {
        let c = office("America/New_York");
        assert_eq!(c.category_at(datetime!(2025-03-07 13:30 UTC)), Some(Category::Open)); // Fri 08:30 EST
        assert_eq!(c.category_at(datetime!(2025-03-10 12:30 UTC)), Some(Category::Open)); // Mon 08:30 EDT
        assert_eq!(c.category_at(datetime!(2025-03-10 11:30 UTC)), None); // 07:30 EDT
        assert_eq!(c.category_at(datetime!(2025-03-10 21:00 UTC)), None); // 17:00 EDT
    }

    #[test]
    fn new_york_office_opens_at_eight_local_after_fall_back() {
        let c = office("America/New_York");
        assert_eq!(c.category_at(datetime!(2025-10-31 12:30 UTC)), Some(Category::Open)); // Fri 08:30 EDT
        assert_eq!(c.category_at(datetime!(2025-11-03 13:30 UTC)), Some(Category::Open)); // Mon 08:30 EST
        assert_eq!(c.category_at(datetime!(2025-11-03 12:30 UTC)), None); // 07:30 EST
        assert_eq!(c.category_at(datetime!(2025-11-03 21:59 UTC)), Some(Category::Open)); // 16:59 EST
    }

    #[test]
    fn start_in_a_spring_forward_gap_moves_to_the_end_of_the_gap_in_zurich() {
        // 2025-03-30 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never happens.
        let c = calendar("Europe/Zurich", vec![weekly(Category::Special2, &[Weekday::Sun], "02:30", "04:00")]);
        assert_eq!(c.category_at(datetime!(2025-03-30 00:59:59 UTC)), None); // 01:59:59 CET
        assert_eq!(c.category_at(datetime!(2025-03-30 01:00 UTC)), Some(Category::Special2)); // 03:00 CEST
        assert_eq!(c.category_at(datetime!(2025-03-30 01:59 UTC)), Some(Category::Special2)); // 03:59 CEST
        assert_eq!(c.category_at(datetime!(2025-03-30 02:00 UTC)), None); // 04:00 CEST
    }

    #[test]
    fn end_in_a_spring_forward_gap_moves_to_the_end_of_the_gap_in_new_york() {
        // 2025-03-09 02:00 EST jumps to 03:00 EDT at 07:00 UTC.
        let c = calendar("America/New_York", vec![weekly(Category::Special2, &[Weekday::Sun], "00:00", "02:30")]);
        assert_eq!(c.category_at(datetime!(2025-03-09 05:00 UTC)), Some(Category::Special2)); // 00:00 EST
        assert_eq!(c.category_at(datetime!(2025-03-09 06:59:59 UTC)), Some(Category::Special2)); // 01:59:59 EST
        assert_eq!(c.category_at(datetime!(2025-03-09 07:00 UTC)), None); // 03:00 EDT
    }

    #[test]
    fn start_in_a_fall_back_fold_uses_the_earlier_instant_in_zurich() {
        // 2025-10-26 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:30 happens at 00:30 and 01:30 UTC.
        let c = calendar("Europe/Zurich", vec![weekly(Category::Special3, &[Weekday::Sun], "02:30", "05:00")]);
        assert_eq!(c.category_at(datetime!(2025-10-26 00:29:59 UTC)), None);
        assert_eq!(c.category_at(datetime!(2025-10-26 00:30 UTC)), Some(Category::Special3)); // first 02:30
        assert_eq!(c.category_at(datetime!(2025-10-26 01:15 UTC)), Some(Category::Special3)); // second 02:15
        assert_eq!(c.category_at(datetime!(2025-10-26 03:59 UTC)), Some(Category::Special3)); // 04:59 CET
        assert_eq!(c.category_at(datetime!(2025-10-26 04:00 UTC)), None); // 05:00 CET
    }

    #[test]
    fn end_in_a_fall_back_fold_uses_the_earlier_instant_in_new_york() {
        // 2025-11-02 02:00 EDT falls back to 01:00 EST at 06:00 UTC; 01:30 happens at 05:30 and 06:30 UTC.
        let c = calendar("America/New_York", vec![weekly(Category::Special3, &[Weekday::Sun], "00:00", "01:30")]);
        assert_eq!(c.category_at(datetime!(2025-11-02 05:29:59 UTC)), Some(Category::Special3));
        assert_eq!(c.category_at(datetime!(2025-11-02 05:30 UTC)), None); // first 01:30
        assert_eq!(c.category_at(datetime!(2025-11-02 06:15 UTC)), None); // second 01:15 is past the end
    }

    #[test]
    fn period_spanning_the_whole_fold_covers_both_passes() {
        let c = calendar("America/New_York", vec![weekly(Category::Open, &[Weekday::Sun], "01:00", "02:00")]);
        assert_eq!(c.category_at(datetime!(2025-11-02 04:59 UTC)), None); // 00:59 EDT
        assert_eq!(c.category_at(datetime!(2025-11-02 05:00 UTC)), Some(Category::Open)); // first 01:00
        assert_eq!(c.category_at(datetime!(2025-11-02 06:30 UTC)), Some(Category::Open)); // second 01:30
        assert_eq!(c.category_at(datetime!(2025-11-02 07:00 UTC)), None); // 02:00 EST
    }

    #[test]
    fn overnight_period_across_spring_forward_is_an_hour_shorter() {
        let c = calendar("Europe/Zurich", vec![weekly(Category::Closed, &[Weekday::Sat], "22:00", "06:00")]);
        assert_eq!(c.category_at(datetime!(2025-03-29 20:59 UTC)), None); // Sat 21:59 CET
        assert_eq!(c.category_at(datetime!(2025-03-29 21:00 UTC)), Some(Category::Closed)); // Sat 22:00 CET
        assert_eq!(c.category_at(datetime!(2025-03-30 03:59 UTC)), Some(Category::Closed)); // Sun 05:59 CEST
        assert_eq!(c.category_at(datetime!(2025-03-30 04:00 UTC)), None); // Sun 06:00 CEST
    }

    #[test]
    fn overnight_period_across_fall_back_is_an_hour_longer() {
        let c = calendar("America/New_York", vec![weekly(Category::Closed, &[Weekday::Sat], "22:00", "06:00")]);
        assert_eq!(c.category_at(datetime!(2025-11-02 02:00 UTC)), Some(Category::Closed)); // Sat 22:00 EDT
        assert_eq!(c.category_at(datetime!(2025-11-02 10:59 UTC)), Some(Category::Closed)); // Sun 05:59 EST
        assert_eq!(c.category_at(datetime!(2025-11-02 11:00 UTC)), None); // Sun 06:00 EST
    }

    #[test]
    fn a_day_skipped_by_the_time_zone_is_never_covered_and_leaves_no_hole() {
        // Samoa skipped Friday 2011-12-30: Thursday 24:00 (UTC-10) became Saturday 00:00 (UTC+14).
        let c = calendar(
            "Pacific/Apia",
            vec![
                weekly(Category::Open, &[Weekday::Thu], "00:00", "24:00"),
                weekly(Category::Holiday, &[Weekday::Fri], "00:00", "24:00"),
                weekly(Category::Special1, &[Weekday::Sat], "00:00", "24:00"),
            ],
        );
        assert_eq!(c.category_at(datetime!(2011-12-30 09:59:59 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2011-12-30 10:00 UTC)), Some(Category::Special1));
        assert_eq!(c.category_at(datetime!(2011-12-31 09:59 UTC)), Some(Category::Special1));
        // The Friday before the skip still exists.
        assert_eq!(c.category_at(datetime!(2011-12-23 12:00 UTC)), Some(Category::Holiday));
    }

    // --- dates ---

    #[test]
    fn holiday_overrides_the_weekly_schedule() {
        let mut c = office("Europe/Zurich");
        c.periods.push(dates(Category::Holiday, "2025-12-24T12:00", "2025-12-27T00:00"));
        // Wed 2025-12-24, UTC+1.
        assert_eq!(c.category_at(datetime!(2025-12-24 10:59 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-12-24 11:00 UTC)), Some(Category::Holiday));
        assert_eq!(c.category_at(datetime!(2025-12-26 09:00 UTC)), Some(Category::Holiday));
        assert_eq!(c.category_at(datetime!(2025-12-26 23:00 UTC)), None); // Sat 00:00, end exclusive
    }

    #[test]
    fn dates_span_is_read_in_local_time_across_a_dst_change() {
        let c = calendar("America/New_York", vec![dates(Category::Special4, "2025-03-08T12:00", "2025-03-09T12:00")]);
        assert_eq!(c.category_at(datetime!(2025-03-08 16:59 UTC)), None); // 11:59 EST
        assert_eq!(c.category_at(datetime!(2025-03-08 17:00 UTC)), Some(Category::Special4)); // 12:00 EST
        assert_eq!(c.category_at(datetime!(2025-03-09 15:59 UTC)), Some(Category::Special4)); // 11:59 EDT
        assert_eq!(c.category_at(datetime!(2025-03-09 16:00 UTC)), None); // 12:00 EDT
    }

    #[test]
    fn dates_span_may_last_longer_than_a_day() {
        let c = calendar("UTC", vec![dates(Category::Holiday, "2025-07-01T00:00", "2025-08-01T00:00")]);
        assert_eq!(c.category_at(datetime!(2025-07-15 12:00 UTC)), Some(Category::Holiday));
        assert_eq!(c.category_at(datetime!(2025-08-01 00:00 UTC)), None);
    }

    // --- annual ---

    #[test]
    fn annual_holiday_covers_the_whole_local_day_every_year() {
        let c = calendar("Europe/Zurich", vec![annual(Category::Holiday, 12, 25, None, None)]);
        for year in [1999, 2025, 2030, 2099] {
            let midnight = jiff::civil::date(i16::try_from(year).unwrap(), 12, 25).at(0, 0, 0, 0);
            let start = zone("Europe/Zurich").unwrap().to_timestamp(midnight).unwrap().as_second();
            assert_eq!(c.category_at(at(start - 1)), None, "{year}");
            assert_eq!(c.category_at(at(start)), Some(Category::Holiday), "{year}");
            assert_eq!(c.category_at(at(start + 24 * 3600 - 1)), Some(Category::Holiday), "{year}");
            assert_eq!(c.category_at(at(start + 24 * 3600)), None, "{year}");
        }
    }

    #[test]
    fn annual_holiday_overrides_the_weekly_schedule() {
        let mut c = office("Europe/Zurich");
        c.periods.push(annual(Category::Holiday, 12, 25, None, None));
        assert_eq!(c.category_at(datetime!(2025-12-25 09:00 UTC)), Some(Category::Holiday)); // Thu
        assert_eq!(c.category_at(datetime!(2025-12-23 09:00 UTC)), Some(Category::Open)); // Tue
    }

    #[test]
    fn annual_period_with_times_covers_only_that_part_of_the_day() {
        let c = calendar("UTC", vec![annual(Category::Special1, 12, 24, Some("12:00"), Some("16:30"))]);
        assert_eq!(c.category_at(datetime!(2025-12-24 11:59 UTC)), None);
        assert_eq!(c.category_at(datetime!(2025-12-24 12:00 UTC)), Some(Category::Special1));
        assert_eq!(c.category_at(datetime!(2025-12-24 16:30 UTC)), None);
    }

    #[test]
    fn annual_period_with_only_a_start_runs_to_midnight_and_with_only_an_end_starts_at_midnight() {
        let from_noon = calendar("UTC", vec![annual(Category::Special1, 12, 24, Some("12:00"), None)]);
        assert_eq!(from_noon.category_at(datetime!(2025-12-24 11:59 UTC)), None);
        assert_eq!(from_noon.category_at(datetime!(2025-12-24 23:59 UTC)), Some(Category::Special1));
        assert_eq!(from_noon.category_at(datetime!(2025-12-25 00:00 UTC)), None);
        let until_noon = calendar("UTC", vec![annual(Category::Special1, 12, 24, None, Some("12:00"))]);
        assert_eq!(until_noon.category_at(datetime!(2025-12-24 00:00 UTC)), Some(Category::Special1));
        assert_eq!(until_noon.category_at(datetime!(2025-12-24 12:00 UTC)), None);
    }

    #[test]
    fn overnight_annual_period_crosses_into_the_new_year() {
        let c = calendar("Europe/Zurich", vec![annual(Category::Special4, 12, 31, Some("22:00"), Some("02:00"))]);
        assert_eq!(c.category_at(datetime!(2025-12-31 20:59 UTC)), None); // 21:59 local
        assert_eq!(c.category_at(datetime!(2025-12-31 21:00 UTC)), Some(Category::Special4));
        assert_eq!(c.category_at(datetime!(2026-01-01 00:59 UTC)), Some(Category::Special4)); // 01:59 local
        assert_eq!(c.category_at(datetime!(2026-01-01 01:00 UTC)), None);
        // The new year's own Dec 31 is a year away, not tonight.
        assert_eq!(c.category_at(datetime!(2026-01-01 21:30 UTC)), None);
    }

    #[test]
    fn leap_day_period_only_matches_in_leap_years() {
        let c = calendar("UTC", vec![annual(Category::Holiday, 2, 29, None, None)]);
        assert!(c.validate().is_ok());
        assert_eq!(c.category_at(datetime!(2028-02-29 12:00 UTC)), Some(Category::Holiday));
        assert_eq!(c.category_at(datetime!(2000-02-29 00:00 UTC)), Some(Category::Holiday));
        assert_eq!(c.category_at(datetime!(2027-02-28 12:00 UTC)), None);
        assert_eq!(c.category_at(datetime!(2027-03-01 12:00 UTC)), None);
        assert_eq!(c.category_at(datetime!(2100-03-01 00:00 UTC)), None); // 2100 is not a leap year
    }

    // --- precedence ---

    #[test]
    fn dates_beat_annual_regardless_of_list_order() {
        let c = calendar(
            "UTC",
            vec![
                annual(Category::Holiday, 12, 25, None, None),
                dates(Category::Special1, "2025-12-25T09:00", "2025-12-25T12:00"),
            ],
        );
        assert_eq!(c.category_at(datetime!(2025-12-25 10:00 UTC)), Some(Category::Special1));
        assert_eq!(c.category_at(datetime!(2025-12-25 13:00 UTC)), Some(Category::Holiday));
    }

    #[test]
    fn annual_beats_weekly_regardless_of_list_order() {
        let c = calendar(
            "UTC",
            vec![weekly(Category::Open, &Weekday::ALL, "00:00", "24:00"), annual(Category::Holiday, 8, 1, None, None)],
        );
        assert_eq!(c.category_at(datetime!(2025-08-01 10:00 UTC)), Some(Category::Holiday));
        assert_eq!(c.category_at(datetime!(2025-08-02 10:00 UTC)), Some(Category::Open));
    }

    #[test]
    fn first_period_in_the_list_wins_within_the_same_kind() {
        let c = calendar(
            "UTC",
            vec![
                weekly(Category::Open, WORKDAYS, "08:00", "17:00"),
                weekly(Category::Special2, WORKDAYS, "12:00", "13:00"),
                dates(Category::Special3, "2025-06-02T00:00", "2025-06-03T00:00"),
                dates(Category::Special4, "2025-06-02T10:00", "2025-06-02T11:00"),
            ],
        );
        assert_eq!(c.category_at(datetime!(2025-06-03 12:30 UTC)), Some(Category::Open));
        assert_eq!(c.category_at(datetime!(2025-06-02 10:30 UTC)), Some(Category::Special3));
    }

    // --- robustness ---

    #[test]
    fn unknown_time_zone_means_no_period_covers() {
        let c = office("Mars/Olympus_Mons");
        assert_eq!(c.category_at(datetime!(2025-06-02 12:00 UTC)), None);
        assert_eq!(resolve(Some(&c), None, datetime!(2025-06-02 12:00 UTC)), OpeningState::Category(Category::Closed));
    }

    #[test]
    fn malformed_periods_are_ignored_rather_than_panicking() {
        let c = calendar(
            "UTC",
            vec![
                weekly(Category::Holiday, &Weekday::ALL, "8am", "17:00"),
                dates(Category::Holiday, "2025-06-02T00:00", "2025-06-02Tnoon"),
                annual(Category::Holiday, 2, 30, None, None),
                annual(Category::Holiday, 6, 2, Some("é:00"), None),
                weekly(Category::Open, &Weekday::ALL, "00:00", "24:00"),
            ],
        );
        assert_eq!(c.category_at(datetime!(2025-06-02 12:00 UTC)), Some(Category::Open));
    }

    #[test]
    fn instants_at_the_edge_of_the_supported_range_do_not_panic() {
        let c = calendar("Pacific/Kiritimati", vec![weekly(Category::Open, &Weekday::ALL, "00:00", "00:00")]);
        for now in [datetime!(-9999-01-01 00:00 UTC), datetime!(9999-12-31 23:59:59.999999999 UTC)] {
            let _ = c.category_at(now);
        }
        // jiff's instants stop a day short of `time`'s: a span "until further notice" still covers
        // everything jiff can represent, and the very last hours are simply uncovered.
        let far = calendar("UTC", vec![dates(Category::Closed, "2025-01-01T00:00", "9999-12-31T23:59")]);
        assert_eq!(far.category_at(datetime!(9999-12-29 10:30 UTC)), Some(Category::Closed));
        assert_eq!(far.category_at(datetime!(9999-12-31 23:30 UTC)), None);
    }

    #[test]
    fn time_zone_names_are_looked_up_in_the_bundled_database() {
        // Zones must resolve without any system tzdb; Etc/Unknown is jiff's placeholder.
        assert!(zone("Europe/Zurich").is_some());
        assert!(zone("America/New_York").is_some());
        assert!(zone("UTC").is_some());
        assert!(zone("Etc/Unknown").is_none());
        assert!(zone("").is_none());
        assert!(zone("/etc/localtime").is_none());
    }

    // --- resolution (spec §4.7) ---

    #[test]
    fn resolution_follows_the_primary_secondary_table() {
        let now = datetime!(2025-06-02 12:00 UTC); // Monday
        let covering = |cat| Calendar {
            time_zone: "UTC".into(),
            default_category: Category::Special4,
            periods: vec![weekly(cat, &[Weekday::Mon], "00:00", "24:00")],
        };
        let not_covering = |default| Calendar {
            time_zone: "UTC".into(),
            default_category: default,
            periods: vec![weekly(Category::Open, &[Weekday::Sun], "00:00", "24:00")],
        };
        let p_open = covering(Category::Open);
        let s_holiday = covering(Category::Holiday);
        let p_idle = not_covering(Category::Closed);
        let s_idle = not_covering(Category::Special2);
        let state = OpeningState::Category;

        // Primary covers: its category, whatever the secondary says.
        assert_eq!(resolve(Some(&p_open), Some(&s_holiday), now), state(Category::Open));
        assert_eq!(resolve(Some(&p_open), Some(&s_idle), now), state(Category::Open));
        assert_eq!(resolve(Some(&p_open), None, now), state(Category::Open));
        // Primary does not cover, secondary does: the secondary's category.
        assert_eq!(resolve(Some(&p_idle), Some(&s_holiday), now), state(Category::Holiday));
        // Neither covers: the primary's default; the secondary's default never applies.
        assert_eq!(resolve(Some(&p_idle), Some(&s_idle), now), state(Category::Closed));
        assert_eq!(resolve(Some(&p_idle), None, now), state(Category::Closed));
        // Only a secondary: its own rule, covering period or default.
        assert_eq!(resolve(None, Some(&s_holiday), now), state(Category::Holiday));
        assert_eq!(resolve(None, Some(&s_idle), now), state(Category::Special2));
        // No calendar at all.
        assert_eq!(resolve(None, None, now), OpeningState::Default);
    }

    #[test]
    fn secondary_calendar_without_periods_is_effectively_ignored() {
        let now = datetime!(2025-06-02 20:00 UTC);
        let p = office("UTC");
        let empty = Calendar { time_zone: "UTC".into(), default_category: Category::Holiday, periods: vec![] };
        assert_eq!(resolve(Some(&p), Some(&empty), now), resolve(Some(&p), None, now));
    }

    // --- validation ---

    #[test]
    fn valid_calendar_passes_validation() {
        let c = calendar(
            "America/New_York",
            vec![
                weekly(Category::Open, WORKDAYS, "08:00", "17:00"),
                weekly(Category::Closed, &[Weekday::Fri], "22:00", "06:00"),
                weekly(Category::Special1, &[Weekday::Sat], "00:00", "24:00"),
                dates(Category::Holiday, "2025-12-24T12:00", "2025-12-27T00:00"),
                annual(Category::Holiday, 7, 4, None, None),
                annual(Category::Special2, 12, 31, Some("18:00"), Some("24:00")),
            ],
        );
        assert_eq!(codes(&c), []);
    }

    #[test]
    fn unknown_or_blank_time_zone_is_refused() {
        assert_eq!(codes(&office("Europe/Zürich")), [("/time_zone".into(), "unknown_time_zone")]);
        assert_eq!(codes(&office("Etc/Unknown")), [("/time_zone".into(), "unknown_time_zone")]);
        assert_eq!(codes(&office("+02:00")), [("/time_zone".into(), "unknown_time_zone")]);
        assert_eq!(codes(&office(" ")), [("/time_zone".into(), "required")]);
    }

    #[test]
    fn weekly_times_must_be_hh_mm_and_only_end_may_be_24_00() {
        for (start, end, bad) in [
            ("8:00", "17:00", Some("start")),
            ("08:00", "17:0", Some("end")),
            ("24:00", "17:00", Some("start")),
            ("08:00", "24:01", Some("end")),
            ("08:60", "17:00", Some("start")),
            ("08h00", "17:00", Some("start")),
            ("08:00", " 17:00", Some("end")),
            ("00:00", "24:00", None),
            ("23:59", "00:00", None),
        ] {
            let c = calendar("UTC", vec![weekly(Category::Open, WORKDAYS, start, end)]);
            let expected: Vec<(String, &str)> =
                bad.map(|f| (format!("/periods/0/rule/{f}"), "invalid_time")).into_iter().collect();
            assert_eq!(codes(&c), expected, "{start}-{end}");
        }
    }

    #[test]
    fn weekly_period_needs_at_least_one_day() {
        let c = calendar("UTC", vec![weekly(Category::Open, &[], "08:00", "17:00")]);
        assert_eq!(codes(&c), [("/periods/0/rule/days".into(), "required")]);
    }

    #[test]
    fn dates_must_be_existing_local_date_times() {
        for (value, code) in [
            ("2025-02-30T10:00", "invalid_date"),
            ("2025-13-01T10:00", "invalid_date"),
            ("2025-12-24 10:00", "invalid_date"),
            ("2025-12-24", "invalid_date"),
            ("25-12-24T10:00", "invalid_date"),
            ("2025-12-24T10:00Z", "invalid_time"),
            ("2025-12-24T25:00", "invalid_time"),
            ("2025-12-24T24:00", "invalid_time"),
            ("2025-12-24Té0:0", "invalid_time"),
        ] {
            let c = calendar("UTC", vec![dates(Category::Holiday, value, "2030-01-01T00:00")]);
            assert_eq!(codes(&c), [("/periods/0/rule/start".into(), code)], "{value}");
        }
    }

    #[test]
    fn dates_span_must_end_after_it_starts() {
        for end in ["2025-12-24T12:00", "2025-12-24T11:59", "2024-12-25T00:00"] {
            let c = calendar("UTC", vec![dates(Category::Holiday, "2025-12-24T12:00", end)]);
            assert_eq!(codes(&c), [("/periods/0/rule/end".into(), "empty_span")], "{end}");
        }
    }

    #[test]
    fn annual_date_must_exist_in_some_year() {
        for (month, day, path) in
            [(2, 30, "day"), (4, 31, "day"), (1, 0, "day"), (1, 32, "day"), (0, 1, "month"), (13, 1, "month")]
        {
            let c = calendar("UTC", vec![annual(Category::Holiday, month, day, None, None)]);
            assert_eq!(codes(&c), [(format!("/periods/0/rule/{path}"), "invalid_date")], "{month}/{day}");
        }
        for (month, day) in [(2, 29), (1, 31), (12, 31), (4, 30)] {
            assert_eq!(codes(&calendar("UTC", vec![annual(Category::Holiday, month, day, None, None)])), []);
        }
    }

    #[test]
    fn annual_times_are_checked_when_present() {
        let c = calendar("UTC", vec![annual(Category::Holiday, 1, 1, Some("24:00"), Some("25:00"))]);
        assert_eq!(
            codes(&c),
            [("/periods/0/rule/start".into(), "invalid_time"), ("/periods/0/rule/end".into(), "invalid_time")]
        );
        let fine = calendar("UTC", vec![annual(Category::Holiday, 1, 1, Some("22:00"), Some("24:00"))]);
        assert_eq!(codes(&fine), []);
    }

    #[test]
    fn at_most_500_periods_are_allowed() {
        let many = |n| calendar("UTC", vec![annual(Category::Holiday, 1, 1, None, None); n]);
        assert_eq!(codes(&many(MAX_PERIODS)), []);
        assert_eq!(codes(&many(MAX_PERIODS + 1)), [("/periods".into(), "too_many")]);
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_path_in_order() {
        let c = calendar(
            "Nowhere/City",
            vec![
                weekly(Category::Open, WORKDAYS, "08:00", "17:00"),
                weekly(Category::Open, &[], "8", "17:00"),
                dates(Category::Holiday, "2025-12-26T00:00", "2025-12-24T00:00"),
                annual(Category::Holiday, 2, 30, None, Some("x")),
            ],
        );
        assert_eq!(
            codes(&c),
            [
                ("/time_zone".into(), "unknown_time_zone"),
                ("/periods/1/rule/days".into(), "required"),
                ("/periods/1/rule/start".into(), "invalid_time"),
                ("/periods/2/rule/end".into(), "empty_span"),
                ("/periods/3/rule/day".into(), "invalid_date"),
                ("/periods/3/rule/end".into(), "invalid_time"),
            ]
        );
    }

    // --- properties ---

    const ZONES: &[&str] = &[
        "UTC",
        "Europe/Zurich",
        "America/New_York",
        "Australia/Lord_Howe", // 30-minute DST shift
        "America/Sao_Paulo",   // historical DST changes at midnight
        "America/Havana",      // DST changes at midnight
        "Asia/Tehran",         // DST changes at midnight until 2022
        "Pacific/Apia",        // skipped a whole day
        "Pacific/Chatham",     // +12:45/+13:45
        "Asia/Kolkata",
    ];

    /// Unix seconds of 1970-01-01 and 2100-01-01.
    const RANGE: std::ops::Range<i64> = 0..4_102_444_800;

    fn hhmm(minutes: u16) -> String {
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    fn local_text(dt: civil::DateTime) -> String {
        format!("{:04}-{:02}-{:02}T{:02}:{:02}", dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute())
    }

    fn category() -> impl Strategy<Value = Category> {
        proptest::sample::select(Category::ALL.to_vec())
    }

    fn local_datetime() -> impl Strategy<Value = civil::DateTime> {
        (1969i16..=2100, 1i8..=12, 1i8..=28, 0i8..24, 0i8..60)
            .prop_map(|(y, mo, d, h, mi)| civil::date(y, mo, d).at(h, mi, 0, 0))
    }

    fn rule() -> impl Strategy<Value = Rule> {
        prop_oneof![
            (proptest::sample::subsequence(Weekday::ALL.to_vec(), 1..=7), 0u16..DAY_MINUTES, 0u16..=DAY_MINUTES)
                .prop_map(|(days, s, e)| Rule::Weekly { days, start: hhmm(s), end: hhmm(e) }),
            (local_datetime(), local_datetime())
                .prop_filter("a span needs two different ends", |(a, b)| a != b)
                .prop_map(|(a, b)| Rule::Dates { start: local_text(a.min(b)), end: local_text(a.max(b)) }),
            (1u8..=12, 1u8..=31, proptest::option::of(0u16..DAY_MINUTES), proptest::option::of(0u16..=DAY_MINUTES))
                .prop_filter_map("the day must exist", |(month, day, s, e)| {
                    annual_date(2000, month, day)?;
                    Some(Rule::Annual { month, day, start: s.map(hhmm), end: e.map(hhmm) })
                }),
        ]
    }

    fn valid_calendar() -> impl Strategy<Value = Calendar> {
        (proptest::sample::select(ZONES), category(), proptest::collection::vec((category(), rule()), 0..12)).prop_map(
            |(tz, default_category, periods)| Calendar {
                time_zone: tz.to_owned(),
                default_category,
                periods: periods.into_iter().map(|(category, rule)| Period { category, rule }).collect(),
            },
        )
    }

    fn instant() -> impl Strategy<Value = OffsetDateTime> {
        (RANGE, 0u32..1_000_000_000).prop_map(|(s, ns)| at(s).replace_nanosecond(ns).unwrap())
    }

    /// Uniform instants almost never land near a DST change, so half of these are drawn within
    /// 36 hours of the zone's next transition after a random instant.
    fn instant_near_transitions(tz: &'static str) -> impl Strategy<Value = OffsetDateTime> {
        (instant(), any::<bool>(), -36 * 3600i64..36 * 3600).prop_map(move |(base, near, delta)| {
            let tz = zone(tz).unwrap();
            match tz.following(Timestamp::from_second(base.unix_timestamp()).unwrap()).next() {
                Some(t) if near => at(t.timestamp().as_second() + delta).replace_nanosecond(base.nanosecond()).unwrap(),
                _ => base,
            }
        })
    }

    fn zone_and_instant() -> impl Strategy<Value = (&'static str, OffsetDateTime)> {
        proptest::sample::select(ZONES).prop_flat_map(|tz| (Just(tz), instant_near_transitions(tz)))
    }

    proptest! {
        #[test]
        fn category_at_never_panics_and_names_a_category_of_the_calendar(
            mut c in valid_calendar(),
            (tz, now) in zone_and_instant(),
        ) {
            c.time_zone = tz.to_owned();
            prop_assert_eq!(c.validate(), Ok(()));
            if let Some(found) = c.category_at(now) {
                prop_assert!(c.periods.iter().any(|p| p.category == found));
            }
            let state = resolve(Some(&c), None, now);
            prop_assert_ne!(state, OpeningState::Default);
        }

        #[test]
        fn resolve_without_calendars_is_always_default(now in instant()) {
            prop_assert_eq!(resolve(None, None, now), OpeningState::Default);
        }

        #[test]
        fn back_to_back_daily_periods_cover_every_instant_in_every_zone(
            (tz, now) in zone_and_instant(),
            start in 0u16..DAY_MINUTES,
        ) {
            // One period per weekday, each ending where the next begins: DST must leave no hole.
            let periods = Weekday::ALL
                .iter()
                .zip(Category::ALL)
                .map(|(&day, category)| weekly(category, &[day], &hhmm(start), &hhmm(start)))
                .collect();
            prop_assert!(calendar(tz, periods).category_at(now).is_some());
        }

        #[test]
        fn category_at_never_panics_on_arbitrary_text(
            tz in "\\PC{0,20}",
            start in "\\PC{0,17}",
            end in "\\PC{0,17}",
            month in any::<u8>(),
            day in any::<u8>(),
            now in instant(),
        ) {
            let c = calendar(&tz, vec![
                weekly(Category::Open, &Weekday::ALL, &start, &end),
                dates(Category::Open, &start, &end),
                annual(Category::Open, month, day, Some(&start), Some(&end)),
            ]);
            let _ = c.validate();
            let _ = c.category_at(now);
        }
    }
}
