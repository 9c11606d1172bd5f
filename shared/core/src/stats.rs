//! The counters behind the stats and reports: what one attributed click, lead or conversion
//! adds, to which rows, in which hour; and how counter rows add up into a report.
//!
//! A row is a value of one dimension (an influencer, a campaign, a source, a sub id, a
//! journey step …) for one brand. Counters are kept per UTC hour, so a report can cut days
//! in any reporting time zone (in whole hours: for a zone with a half-hour offset, a day
//! starts with the first whole UTC hour after its local midnight).

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::attribution::{Attribution, Model, credit};
use crate::journey::{EventKind, JourneyType};
use crate::message::Message;
use crate::quiet::ZoneName;
use crate::values::{Currency, Invalid, Money};

/// What a counter row is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Brand,
    Influencer,
    Campaign,
    Source,
    /// `sub1` … `sub20`.
    Sub(u8),
    /// A journey step that sent a message before a conversion (message-influenced).
    Step,
    /// The template of that message.
    Template,
}

impl Dimension {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let v = raw.trim().to_ascii_lowercase();
        Ok(match v.as_str() {
            "brand" => Self::Brand,
            "influencer" => Self::Influencer,
            "campaign" => Self::Campaign,
            "source" => Self::Source,
            "step" => Self::Step,
            "template" => Self::Template,
            _ => match v.strip_prefix("sub").and_then(|n| n.parse::<u8>().ok()) {
                Some(n @ 1..=20) => Self::Sub(n),
                _ => {
                    return Err(Invalid::new(
                        "invalid_value",
                        "must be one of influencer, campaign, brand, source, sub1 … sub20, step, template, day",
                    ));
                }
            },
        })
    }
    pub fn as_str(self) -> String {
        match self {
            Self::Brand => "brand".into(),
            Self::Influencer => "influencer".into(),
            Self::Campaign => "campaign".into(),
            Self::Source => "source".into(),
            Self::Sub(n) => format!("sub{n}"),
            Self::Step => "step".into(),
            Self::Template => "template".into(),
        }
    }
}

/// One counted quantity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    Clicks,
    /// People new to the row: each person once per row, ever, in the hour of their first
    /// record in it.
    Customers,
    Leads,
    Registrations,
    /// First deposits: a customer's first deposit for a brand, however the operator named it.
    Ftds,
    /// Deposit events, the first one included.
    Deposits,
    /// Postback events other than responsible-gambling notices.
    Conversions,
    /// Leads and conversions credited to a click.
    Attributed,
    Revenue(Currency),
}

impl Metric {
    pub const COUNTS: [Metric; 8] = [
        Self::Clicks,
        Self::Customers,
        Self::Leads,
        Self::Registrations,
        Self::Ftds,
        Self::Deposits,
        Self::Conversions,
        Self::Attributed,
    ];
    /// The metric's name in counter attributes and API fields.
    pub fn name(&self) -> String {
        match self {
            Self::Clicks => "clicks".into(),
            Self::Customers => "customers".into(),
            Self::Leads => "leads".into(),
            Self::Registrations => "registrations".into(),
            Self::Ftds => "ftds".into(),
            Self::Deposits => "deposits".into(),
            Self::Conversions => "conversions".into(),
            Self::Attributed => "attributed".into(),
            Self::Revenue(c) => format!("revenue.{c}"),
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        if let Some(c) = name.strip_prefix("revenue.") {
            return Currency::parse(c).ok().map(Self::Revenue);
        }
        // Matched on the text itself: a report reads this for every counter it loads.
        Some(match name {
            "clicks" => Self::Clicks,
            "customers" => Self::Customers,
            "leads" => Self::Leads,
            "registrations" => Self::Registrations,
            "ftds" => Self::Ftds,
            "deposits" => Self::Deposits,
            "conversions" => Self::Conversions,
            "attributed" => Self::Attributed,
            _ => return None,
        })
    }
}

/// A row of counters: one dimension's value for one brand. An empty value is the row of
/// records without one (unattributed, no campaign …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    pub dimension: Dimension,
    pub value: String,
    pub brand: String,
}

/// A UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour {
    pub day: Date,
    pub hour: u8,
}

impl Hour {
    pub fn of(t: OffsetDateTime) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        Self {
            day: t.date(),
            hour: t.hour(),
        }
    }
    pub fn start(self) -> OffsetDateTime {
        self.day
            .with_time(Time::from_hms(self.hour, 0, 0).unwrap_or(Time::MIDNIGHT))
            .assume_utc()
    }
}

/// What one record adds to one row in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub row: Row,
    pub hour: Hour,
    pub metrics: BTreeMap<Metric, Decimal>,
}

/// A delta as the record that made it keeps it (`countedRows`): exactly what voiding the
/// record takes back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountedRow {
    pub dimension: String,
    pub brand: String,
    pub value: String,
    pub day: Date,
    pub hour: u8,
    pub metrics: BTreeMap<String, Decimal>,
}

impl From<&Delta> for CountedRow {
    fn from(d: &Delta) -> Self {
        Self {
            dimension: d.row.dimension.as_str().to_owned(),
            brand: d.row.brand.clone(),
            value: d.row.value.clone(),
            day: d.hour.day,
            hour: d.hour.hour,
            metrics: d.metrics.iter().map(|(m, v)| (m.name(), *v)).collect(),
        }
    }
}

impl CountedRow {
    /// The delta back (`None` for a row this code no longer knows).
    pub fn delta(&self) -> Option<Delta> {
        Some(Delta {
            row: Row {
                dimension: Dimension::parse(&self.dimension).ok()?,
                value: self.value.clone(),
                brand: self.brand.clone(),
            },
            hour: Hour {
                day: self.day,
                hour: self.hour,
            },
            metrics: self
                .metrics
                .iter()
                .map(|(m, v)| Some((Metric::from_name(m)?, *v)))
                .collect::<Option<_>>()?,
        })
    }
}

/// The deltas that take back `deltas` (every amount negated).
pub fn reversal(deltas: &[Delta]) -> Vec<Delta> {
    deltas
        .iter()
        .map(|d| Delta {
            metrics: d.metrics.iter().map(|(m, v)| (m.clone(), -*v)).collect(),
            ..d.clone()
        })
        .collect()
}

/// The kind of record being counted, with what the shell found out about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// `repeat`: another path's click of a visit that was counted already (a tracked
    /// link's visit brought back as `sub10`): it counts no click of its own.
    Click {
        repeat: bool,
    },
    Lead,
    Event {
        kind: EventKind,
        /// The customer's first deposit for the brand.
        first_deposit: bool,
        revenue: Option<(Currency, Money)>,
    },
}

/// A journey message sent to the customer shortly before a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Influence {
    pub step: String,
    pub template: Option<String>,
}

/// The journey message that influenced a conversion: the customer's last one from the same
/// brand sent within `window` before it.
pub fn influence(messages: &[Message], brand: &str, at: OffsetDateTime, window: Duration) -> Option<Influence> {
    messages
        .iter()
        .filter(|m| m.brand.as_str() == brand && m.status.is_sent() && !m.dry_run)
        .filter_map(|m| m.sent_at.filter(|t| *t <= at && *t >= at - window).map(|t| (t, m)))
        .max_by(|a, b| (a.0, &a.1.message_id).cmp(&(b.0, &b.1.message_id)))
        .map(|(_, m)| Influence {
            step: format!(
                "{}/{}/{}",
                match m.journey_type {
                    JourneyType::Acquisition => "acquisition",
                    JourneyType::Retention => "retention",
                },
                m.stage,
                m.step_id
            ),
            template: m.template_id.clone(),
        })
}

/// Everything the counters need to know about one record.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    pub brand: &'a str,
    /// When it happened (its hour is the one counted).
    pub at: OffsetDateTime,
    pub counted: Counted,
    /// Last-touch attribution, campaign and influencer resolved to ids.
    pub attribution: &'a Attribution,
    pub influence: Option<Influence>,
}

/// The metrics one record counts, whatever the row.
pub fn metrics(fact: &Fact) -> BTreeMap<Metric, Decimal> {
    let mut m = BTreeMap::new();
    let mut add = |metric: Metric, n: Decimal| {
        *m.entry(metric).or_insert(Decimal::ZERO) += n;
    };
    let one = Decimal::ONE;
    match &fact.counted {
        Counted::Click { repeat: false } => add(Metric::Clicks, one),
        Counted::Click { repeat: true } => {}
        Counted::Lead => {
            add(Metric::Leads, one);
            if fact.attribution.is_attributed() {
                add(Metric::Attributed, one);
            }
        }
        Counted::Event {
            kind,
            first_deposit,
            revenue,
        } => {
            if !is_conversion(kind) {
                return m;
            }
            add(Metric::Conversions, one);
            if fact.attribution.is_attributed() {
                add(Metric::Attributed, one);
            }
            match kind {
                EventKind::Registration => add(Metric::Registrations, one),
                EventKind::Ftd | EventKind::Deposit => add(Metric::Deposits, one),
                _ => {}
            }
            if *first_deposit {
                add(Metric::Ftds, one);
            }
            if let Some((currency, amount)) = revenue {
                add(Metric::Revenue(currency.clone()), amount.to_decimal());
            }
        }
    }
    m
}

/// Responsible-gambling notices are not results anyone is paid for.
fn is_conversion(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Exclusion(_) | EventKind::Reactivated)
}

/// The rows a record counts in: its brand, its influencer and campaign (or their empty
/// rows), its source and sub ids when it has them.
pub fn rows(brand: &str, a: &Attribution) -> Vec<Row> {
    let row = |dimension, value: &str| Row {
        dimension,
        value: value.to_owned(),
        brand: brand.to_owned(),
    };
    let mut out = vec![
        row(Dimension::Brand, brand),
        row(Dimension::Influencer, a.influencer_id.as_deref().unwrap_or_default()),
        row(Dimension::Campaign, a.campaign_id.as_deref().unwrap_or_default()),
    ];
    out.extend(a.source.as_deref().map(|s| row(Dimension::Source, s)));
    for (key, value) in &a.subs {
        if let Ok(Dimension::Sub(n)) = Dimension::parse(key) {
            out.push(row(Dimension::Sub(n), value));
        }
    }
    out
}

/// What one record adds: its metrics on each of its rows, `Customers` on the rows in
/// `first_in` (those where this record is the customer's first), and the conversion's
/// metrics on the journey step and template that influenced it.
pub fn deltas(fact: &Fact, first_in: &BTreeSet<Row>) -> Vec<Delta> {
    let hour = Hour::of(fact.at);
    let base = metrics(fact);
    if base.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Delta> = rows(fact.brand, fact.attribution)
        .into_iter()
        .map(|row| {
            let mut metrics = base.clone();
            if first_in.contains(&row) {
                metrics.insert(Metric::Customers, Decimal::ONE);
            }
            Delta { row, hour, metrics }
        })
        .collect();
    if let Some(influence) = &fact.influence {
        let mut influenced = base.clone();
        influenced.remove(&Metric::Attributed);
        let row = |dimension, value: &str| Row {
            dimension,
            value: value.to_owned(),
            brand: fact.brand.to_owned(),
        };
        let mut push = |r: Row| {
            out.push(Delta {
                row: r,
                hour,
                metrics: influenced.clone(),
            })
        };
        push(row(Dimension::Step, &influence.step));
        if let Some(t) = &influence.template {
            push(row(Dimension::Template, t));
        }
    }
    out
}

/// The counters of one row for one UTC day, by hour, as the store keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCounters {
    pub row: Row,
    pub day: Date,
    pub hours: BTreeMap<u8, BTreeMap<Metric, Decimal>>,
}

/// A reporting period: whole local days, both ends included, in a reporting zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
    pub zone: ZoneName,
}

/// The longest period a report may cover.
pub const MAX_PERIOD_DAYS: i64 = 400;

impl Period {
    /// The period just before this one, as long (to compare with).
    pub fn previous(&self) -> Self {
        let days = (self.to - self.from).whole_days() + 1;
        Self {
            from: self.from - time::Duration::days(days),
            to: self.from - time::Duration::days(1),
            zone: self.zone.clone(),
        }
    }

    /// `from`/`to` as `YYYY-MM-DD`; both default to the 30 days ending today (local).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        zone: ZoneName,
        now: OffsetDateTime,
    ) -> Result<Self, (&'static str, Invalid)> {
        let date = |field: &'static str, raw: &str| {
            Date::parse(raw.trim(), time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| (field, Invalid::new("invalid_format", "must be a date, YYYY-MM-DD")))
        };
        let today = local_date(&zone, now);
        let to = match to {
            Some(raw) => date("to", raw)?,
            None => today,
        };
        let from = match from {
            Some(raw) => date("from", raw)?,
            None => to - Duration::days(29),
        };
        if from > to {
            return Err(("from", Invalid::new("invalid_value", "must not be after to")));
        }
        if (to - from).whole_days() >= MAX_PERIOD_DAYS {
            return Err((
                "from",
                Invalid::new("invalid_value", format!("a period is at most {MAX_PERIOD_DAYS} days")),
            ));
        }
        Ok(Self { from, to, zone })
    }

    /// The UTC days whose hours may fall in the period.
    pub fn utc_days(&self) -> Vec<Date> {
        let mut days = Vec::new();
        let mut d = self.from - Duration::days(1);
        while d <= self.to + Duration::days(1) {
            days.push(d);
            d += Duration::days(1);
        }
        days
    }

    /// The local day a UTC hour belongs to, if it is in the period.
    pub fn local_day(&self, hour: Hour) -> Option<Date> {
        let day = local_date(&self.zone, hour.start());
        (self.from..=self.to).contains(&day).then_some(day)
    }

    /// Whether a moment falls in the period.
    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.local_day(Hour::of(t)).is_some()
    }
}

/// The calendar date at `t` in `zone` (UTC if the zone is unknown, which parsing rules out).
pub fn local_date(zone: &ZoneName, t: OffsetDateTime) -> Date {
    let tz = TimeZone::get(zone.as_str()).unwrap_or(TimeZone::UTC);
    let local = jiff::Timestamp::from_second(t.unix_timestamp())
        .map(|ts| ts.to_zoned(tz).date())
        .ok();
    local
        .and_then(|d| {
            let month = time::Month::try_from(d.month() as u8).ok()?;
            Date::from_calendar_date(i32::from(d.year()), month, d.day() as u8).ok()
        })
        .unwrap_or_else(|| t.date())
}

/// Metric totals of one report row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals(pub BTreeMap<Metric, Decimal>);

impl Totals {
    pub fn add(&mut self, metrics: &BTreeMap<Metric, Decimal>, share: Decimal) {
        for (m, v) in metrics {
            *self.0.entry(m.clone()).or_insert(Decimal::ZERO) += *v * share;
        }
    }
    pub fn get(&self, m: &Metric) -> Decimal {
        self.0.get(m).copied().unwrap_or_default()
    }
    pub fn revenue(&self) -> BTreeMap<Currency, Decimal> {
        self.0
            .iter()
            .filter_map(|(m, v)| match m {
                Metric::Revenue(c) => Some((c.clone(), v.normalize())),
                _ => None,
            })
            .collect()
    }
}

/// How a report groups: by a dimension's value, or by local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Dimension(Dimension),
    Day,
}

impl GroupBy {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.trim().eq_ignore_ascii_case("day") {
            return Ok(Self::Day);
        }
        Dimension::parse(raw).map(Self::Dimension)
    }
    /// The rows this grouping reads: a day report sums the brand rows.
    pub fn dimension(self) -> Dimension {
        match self {
            Self::Dimension(d) => d,
            Self::Day => Dimension::Brand,
        }
    }
}

/// Report rows keyed by group (a dimension's value, or a local day as `YYYY-MM-DD`), from
/// the counters of the grouping's dimension. Only the period's hours count.
pub fn group(counters: &[DayCounters], by: GroupBy, period: &Period, brand: Option<&str>) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for c in counters {
        if c.row.dimension != by.dimension() || brand.is_some_and(|b| b != c.row.brand) {
            continue;
        }
        for (hour, metrics) in &c.hours {
            let Some(local) = period.local_day(Hour {
                day: c.day,
                hour: *hour,
            }) else {
                continue;
            };
            let key = match by {
                GroupBy::Day => local.to_string(),
                GroupBy::Dimension(_) => c.row.value.clone(),
            };
            out.entry(key).or_default().add(metrics, Decimal::ONE);
        }
    }
    out
}

/// A conversion record as the multi-touch report reads it.
#[derive(Debug, Clone)]
pub struct Credited<'a> {
    pub brand: &'a str,
    pub at: OffsetDateTime,
    pub attribution: &'a Attribution,
    /// What the record counted (its `metrics`).
    pub metrics: &'a BTreeMap<Metric, Decimal>,
}

/// Conversion metrics of a multi-touch model: each record's metrics shared among its
/// touches, each share credited to the touch's value of the grouping. Clicks and customers
/// do not depend on the model and come from the counters.
pub fn group_credited(
    records: &[Credited],
    model: Model,
    by: GroupBy,
    period: &Period,
    brand: Option<&str>,
) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for r in records {
        let Some(local) = period.local_day(Hour::of(r.at)) else {
            continue;
        };
        if brand.is_some_and(|b| b != r.brand) {
            continue;
        }
        let conversion_metrics: BTreeMap<Metric, Decimal> = r
            .metrics
            .iter()
            .filter(|(m, _)| !matches!(m, Metric::Clicks | Metric::Customers))
            .map(|(m, v)| (m.clone(), *v))
            .collect();
        let shares = credit(model, r.attribution, r.at);
        let credited: Decimal = shares.iter().sum();
        for (touch, share) in r.attribution.touches.iter().zip(&shares) {
            if share.is_zero() {
                continue;
            }
            let key = match by {
                GroupBy::Day => local.to_string(),
                GroupBy::Dimension(Dimension::Brand) => r.brand.to_owned(),
                GroupBy::Dimension(Dimension::Influencer) => touch.influencer_id.clone().unwrap_or_default(),
                GroupBy::Dimension(Dimension::Campaign) => touch.campaign_id.clone().unwrap_or_default(),
                GroupBy::Dimension(Dimension::Source) => touch.source.clone().unwrap_or_default(),
                GroupBy::Dimension(Dimension::Sub(n)) => {
                    touch.subs.get(&format!("sub{n}")).cloned().unwrap_or_default()
                }
                // Message influence is not a click model.
                GroupBy::Dimension(Dimension::Step | Dimension::Template) => continue,
            };
            out.entry(key).or_default().add(&conversion_metrics, *share);
        }
        // Unattributed records (no touch) stay whole on the empty row.
        if credited.is_zero() {
            let key = match by {
                GroupBy::Day => local.to_string(),
                GroupBy::Dimension(Dimension::Brand) => r.brand.to_owned(),
                _ => String::new(),
            };
            out.entry(key).or_default().add(&conversion_metrics, Decimal::ONE);
        }
    }
    out
}

/// Operator-maintained exchange rates into one reporting currency.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FxRates {
    pub base: Option<Currency>,
    /// Units of `base` per unit of each currency (`"EUR": "1.08"` when the base is USD).
    #[serde(default)]
    pub rates: BTreeMap<Currency, Money>,
}

impl FxRates {
    /// A revenue map in the base currency, or the currencies without a rate.
    pub fn convert(&self, revenue: &BTreeMap<Currency, Decimal>) -> Result<Decimal, Vec<Currency>> {
        let base = self.base.as_ref();
        let mut total = Decimal::ZERO;
        let mut missing = Vec::new();
        for (currency, amount) in revenue {
            if Some(currency) == base {
                total += *amount;
            } else if let Some(rate) = self.rates.get(currency) {
                total += *amount * rate.to_decimal();
            } else {
                missing.push(currency.clone());
            }
        }
        if missing.is_empty() {
            Ok(total.normalize())
        } else {
            Err(missing)
        }
    }
}

/// `part / whole` to 4 decimal places; `None` when `whole` is zero.
pub fn ratio(part: Decimal, whole: Decimal) -> Option<Decimal> {
    (!whole.is_zero()).then(|| (part / whole).round_dp(4).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::{Conversion, DEFAULT_WINDOW, Link, Touchpoint, attribute};
    use time::macros::{date, datetime};

    const T0: OffsetDateTime = datetime!(2026-11-22 03:30 UTC);

    fn click(influencer: &str, campaign: Option<&str>) -> Touchpoint {
        Touchpoint {
            click_id: format!("c_{influencer}"),
            brand: "rushbet".into(),
            at: T0 - Duration::hours(1),
            influencer_id: Some(influencer.into()),
            campaign_id: campaign.map(Into::into),
            source: Some("youtube".into()),
            subs: BTreeMap::from([("sub2".into(), "reel".into())]),
        }
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn fact<'a>(a: &'a Attribution, counted: Counted) -> Fact<'a> {
        Fact {
            brand: "rushbet",
            at: T0,
            counted,
            attribution: a,
            influence: None,
        }
    }

    #[test]
    fn a_click_counts_once_on_each_of_its_rows() {
        let a = Attribution::of_click(&click("inf_a", Some("cmp_1")));
        let first_in: BTreeSet<Row> = rows("rushbet", &a).into_iter().take(2).collect();
        let d = deltas(&fact(&a, Counted::Click { repeat: false }), &first_in);
        let dims: Vec<(Dimension, &str)> = d.iter().map(|d| (d.row.dimension, d.row.value.as_str())).collect();
        assert_eq!(
            dims,
            [
                (Dimension::Brand, "rushbet"),
                (Dimension::Influencer, "inf_a"),
                (Dimension::Campaign, "cmp_1"),
                (Dimension::Source, "youtube"),
                (Dimension::Sub(2), "reel"),
            ]
        );
        assert!(d.iter().all(|d| d.metrics[&Metric::Clicks] == Decimal::ONE));
        // Another path's click of a visit already counted adds no click.
        let again = metrics(&fact(&a, Counted::Click { repeat: true }));
        assert_eq!(again.get(&Metric::Clicks), None);
        assert_eq!(d[1].metrics.get(&Metric::Customers), Some(&Decimal::ONE));
        assert_eq!(d[2].metrics.get(&Metric::Customers), None);
        assert_eq!(
            d[0].hour,
            Hour {
                day: date!(2026 - 11 - 22),
                hour: 3
            }
        );
    }

    #[test]
    fn a_first_deposit_labelled_deposit_counts_as_ftd_with_its_revenue() {
        let conv = Conversion {
            brand: "rushbet",
            at: T0,
            click_id: None,
            link: Link::Email,
        };
        let a = attribute(&conv, &[click("inf_a", None)], DEFAULT_WINDOW);
        let counted = Counted::Event {
            kind: EventKind::Deposit,
            first_deposit: true,
            revenue: Some((usd(), Money::parse("100.10").unwrap())),
        };
        let m = metrics(&fact(&a, counted));
        assert_eq!(m[&Metric::Ftds], Decimal::ONE);
        assert_eq!(m[&Metric::Deposits], Decimal::ONE);
        assert_eq!(m[&Metric::Conversions], Decimal::ONE);
        assert_eq!(m[&Metric::Attributed], Decimal::ONE);
        assert_eq!(m[&Metric::Revenue(usd())].to_string(), "100.1", "exact, normalised");
    }

    #[test]
    fn responsible_gambling_notices_count_nothing() {
        let a = Attribution::of_click(&click("inf_a", None));
        let counted = Counted::Event {
            kind: EventKind::parse("self_exclusion").unwrap(),
            first_deposit: false,
            revenue: None,
        };
        assert!(deltas(&fact(&a, counted), &BTreeSet::new()).is_empty());
    }

    #[test]
    fn an_influenced_conversion_also_counts_on_its_step_and_template() {
        let a = Attribution::of_click(&click("inf_a", None));
        let mut f = fact(
            &a,
            Counted::Event {
                kind: EventKind::Deposit,
                first_deposit: false,
                revenue: Some((usd(), Money::parse("5").unwrap())),
            },
        );
        f.influence = Some(Influence {
            step: "retention/1/reload".into(),
            template: Some("tpl_reload".into()),
        });
        let d = deltas(&f, &BTreeSet::new());
        let step = d.iter().find(|d| d.row.dimension == Dimension::Step).unwrap();
        assert_eq!(step.row.value, "retention/1/reload");
        assert_eq!(step.metrics[&Metric::Revenue(usd())], Decimal::new(5, 0));
        assert!(!step.metrics.contains_key(&Metric::Attributed));
        assert!(d.iter().any(|d| d.row.dimension == Dimension::Template));
    }

    #[test]
    fn a_reporting_zone_cuts_days_on_its_own_midnight() {
        let lima = ZoneName::parse("America/Lima").unwrap();
        let period = Period::parse(Some("2026-11-21"), Some("2026-11-21"), lima, T0).unwrap();
        // 03:00 UTC on the 22nd is 22:00 on the 21st in Lima; 05:00 UTC is midnight there.
        assert_eq!(
            period.local_day(Hour {
                day: date!(2026 - 11 - 22),
                hour: 3
            }),
            Some(date!(2026 - 11 - 21))
        );
        assert_eq!(
            period.local_day(Hour {
                day: date!(2026 - 11 - 22),
                hour: 5
            }),
            None
        );
        assert_eq!(
            period.local_day(Hour {
                day: date!(2026 - 11 - 21),
                hour: 4
            }),
            None
        );
        let counters = [DayCounters {
            row: Row {
                dimension: Dimension::Brand,
                value: "rushbet".into(),
                brand: "rushbet".into(),
            },
            day: date!(2026 - 11 - 22),
            hours: BTreeMap::from([
                (3, BTreeMap::from([(Metric::Clicks, Decimal::new(2, 0))])),
                (6, BTreeMap::from([(Metric::Clicks, Decimal::new(5, 0))])),
            ]),
        }];
        let by_day = group(&counters, GroupBy::Day, &period, None);
        assert_eq!(by_day["2026-11-21"].get(&Metric::Clicks), Decimal::new(2, 0));
        assert_eq!(by_day.len(), 1);
    }

    #[test]
    fn periods_default_to_thirty_days_and_reject_nonsense() {
        let utc = ZoneName::parse("UTC").unwrap();
        let p = Period::parse(None, None, utc.clone(), T0).unwrap();
        assert_eq!((p.from, p.to), (date!(2026 - 10 - 24), date!(2026 - 11 - 22)));
        assert_eq!(
            Period::parse(Some("2026-11-23"), Some("2026-11-22"), utc.clone(), T0)
                .unwrap_err()
                .0,
            "from"
        );
        assert_eq!(Period::parse(None, Some("22/11/2026"), utc, T0).unwrap_err().0, "to");
    }

    #[test]
    fn multi_touch_shares_conversions_among_the_clicks() {
        let clicks = [click("inf_a", None), {
            let mut c = click("inf_b", None);
            c.at = T0 - Duration::minutes(10);
            c
        }];
        let conv = Conversion {
            brand: "rushbet",
            at: T0,
            click_id: None,
            link: Link::Email,
        };
        let a = attribute(&conv, &clicks, DEFAULT_WINDOW);
        let m = BTreeMap::from([
            (Metric::Leads, Decimal::ONE),
            (Metric::Revenue(usd()), Decimal::new(10, 0)),
        ]);
        let period = Period::parse(None, None, ZoneName::parse("UTC").unwrap(), T0).unwrap();
        let records = [Credited {
            brand: "rushbet",
            at: T0,
            attribution: &a,
            metrics: &m,
        }];
        let by = GroupBy::Dimension(Dimension::Influencer);
        let linear = group_credited(&records, Model::Linear, by, &period, None);
        assert_eq!(linear["inf_a"].get(&Metric::Leads), Decimal::new(5, 1));
        assert_eq!(linear["inf_b"].get(&Metric::Revenue(usd())), Decimal::new(5, 0));
        let first = group_credited(&records, Model::FirstTouch, by, &period, None);
        assert_eq!(first["inf_a"].get(&Metric::Leads), Decimal::ONE);
        assert!(!first.contains_key("inf_b"));
    }

    #[test]
    fn fx_conversion_is_exact_and_names_missing_rates() {
        let fx = FxRates {
            base: Some(usd()),
            rates: BTreeMap::from([(Currency::parse("EUR").unwrap(), Money::parse("1.08").unwrap())]),
        };
        let revenue = BTreeMap::from([
            (usd(), Decimal::new(1001, 2)),
            (Currency::parse("EUR").unwrap(), Decimal::new(10, 0)),
        ]);
        assert_eq!(fx.convert(&revenue).unwrap().to_string(), "20.81");
        let with_btc = BTreeMap::from([(Currency::parse("BTC").unwrap(), Decimal::ONE)]);
        assert_eq!(fx.convert(&with_btc).unwrap_err(), [Currency::parse("BTC").unwrap()]);
        assert_eq!(ratio(Decimal::ONE, Decimal::new(3, 0)).unwrap().to_string(), "0.3333");
        assert_eq!(ratio(Decimal::ONE, Decimal::ZERO), None);
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::COUNTS.into_iter().chain([Metric::Revenue(usd())]) {
            assert_eq!(Metric::from_name(&m.name()), Some(m));
        }
    }
}
