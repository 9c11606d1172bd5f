//! Reports from the stats counters (and, for the multi-touch models, from the leads and
//! events themselves): the admin API's reports and the daily report email share them.

use std::collections::{BTreeMap, BTreeSet};

use crm_core::attribution::Model;
use crm_core::records::{Activity, RecordKind};
use crm_core::stats::{Credited, Dimension, FxRates, GroupBy, Metric, Period, Totals, group, group_credited, ratio};
use crm_core::values::Currency;
use crm_store::{Store, StoreError};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Iso8601;
use time::{Date, OffsetDateTime};

/// How late a postback may arrive after the day it happened and still be in a
/// multi-touch report of that day (the last-touch counters take any lateness).
pub const LATE_DAYS: usize = 7;

/// What a report covers.
pub struct Request {
    pub by: GroupBy,
    pub period: Period,
    pub brand: Option<String>,
    pub model: Model,
}

/// Report rows by group, with the model's credit. Message influence (step, template) is
/// last message only: callers ask for those with the last-touch model.
pub async fn totals(store: &Store, r: &Request) -> Result<BTreeMap<String, Totals>, StoreError> {
    let days = r.period.utc_days();
    let counters = store.counters(r.by.dimension(), &days, r.brand.as_deref()).await?;
    let mut rows = group(&counters, r.by, &r.period, r.brand.as_deref());
    if r.model == Model::LastTouch {
        return Ok(rows);
    }
    // Keep the model-free counts, replace the conversion counts by the model's credit.
    for totals in rows.values_mut() {
        totals.0.retain(|m, _| matches!(m, Metric::Clicks | Metric::Customers));
    }
    let mut records = Vec::new();
    // Records are indexed by the day they arrived; a late postback dated inside the period
    // can arrive up to `LATE_DAYS` after it.
    let today = OffsetDateTime::now_utc().date();
    let mut received = days.clone();
    let mut day = *days.last().expect("a period has days");
    for _ in 0..LATE_DAYS {
        day = day.next_day().unwrap_or(day);
        if day > today {
            break;
        }
        received.push(day);
    }
    for day in &received {
        for kind in [RecordKind::Lead, RecordKind::Event] {
            records.extend(store.records_of_day(kind, *day).await?);
        }
    }
    let counted: Vec<(String, OffsetDateTime, _, BTreeMap<Metric, Decimal>)> = records
        .iter()
        .filter_map(|record| {
            let (brand, at, attribution, counted) = match record {
                Activity::Lead(l) => (&l.brand, l.at, l.attribution.as_ref()?, l.counted.as_ref()?),
                Activity::Event(e) => (
                    &e.brand,
                    e.occurred_at.unwrap_or(e.at),
                    e.attribution.as_ref()?,
                    e.counted.as_ref()?,
                ),
                _ => return None,
            };
            let metrics = counted
                .iter()
                .filter_map(|(name, v)| Some((Metric::from_name(name)?, *v)))
                .collect();
            Some((brand.clone(), at, attribution, metrics))
        })
        .collect();
    let credited: Vec<Credited> = counted
        .iter()
        .map(|(brand, at, attribution, metrics)| Credited {
            brand,
            at: *at,
            attribution,
            metrics,
        })
        .collect();
    for (key, t) in group_credited(&credited, r.model, r.by, &r.period, r.brand.as_deref()) {
        rows.entry(key).or_default().add(&t.0, Decimal::ONE);
    }
    Ok(rows)
}

/// A count as JSON: whole numbers as integers, shared credit to 4 decimal places.
fn count(d: Decimal) -> Value {
    let d = d.round_dp(4).normalize();
    match i64::try_from(d) {
        Ok(n) if d.fract().is_zero() => json!(n),
        _ => serde_json::Number::from_f64(d.try_into().unwrap_or(0.0)).map_or(Value::Null, Value::Number),
    }
}

/// A report row's figures, with the rates and the converted revenue.
pub fn figures(t: &Totals, fx: &FxRates) -> Map<String, Value> {
    let mut out = Map::new();
    for m in Metric::COUNTS {
        out.insert(m.name(), count(t.get(&m)));
    }
    let revenue = t.revenue();
    out.insert(
        "revenue".into(),
        json!(
            revenue
                .iter()
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    let converted = fx.convert(&revenue);
    let currency = fx.base.clone();
    out.insert("currency".into(), json!(currency));
    match &converted {
        Ok(total) => out.insert("revenueConverted".into(), json!(format!("{:.2}", total.round_dp(2)))),
        Err(missing) => {
            out.insert("missingRates".into(), json!(missing));
            out.insert("revenueConverted".into(), Value::Null)
        }
    };
    let clicks = t.get(&Metric::Clicks);
    let leads = t.get(&Metric::Leads);
    let rate = |r: Option<Decimal>| r.map_or(Value::Null, |r| json!(r.to_string()));
    out.insert("leadRate".into(), rate(ratio(leads, clicks)));
    out.insert("ftdRate".into(), rate(ratio(t.get(&Metric::Ftds), leads)));
    out.insert(
        "attributionRate".into(),
        rate(ratio(t.get(&Metric::Attributed), leads + t.get(&Metric::Conversions))),
    );
    out.insert(
        "epc".into(),
        rate(converted.ok().and_then(|total| ratio(total, clicks))),
    );
    out
}

/// Replaces the exchange rates revenue is converted with.
pub async fn set_rates(store: &Store, rates: &FxRates) -> Result<(), StoreError> {
    store.put_fx_rates(rates).await
}

/// The exchange rates, with `default_base` as base when none was set.
pub async fn rates(store: &Store, default_base: &Currency) -> Result<FxRates, StoreError> {
    let mut fx = store.fx_rates().await?;
    fx.base.get_or_insert_with(|| default_base.clone());
    Ok(fx)
}

/// A report as shown: the field its groups are named by, a row per group (its value, a
/// name where it has one, its figures) and the totals.
pub struct Table {
    pub field: String,
    pub items: Vec<Map<String, Value>>,
    pub totals: Map<String, Value>,
}

impl Table {
    /// The table as a reader without access to personal data sees it: a sub-id may hold
    /// what a tracker was given about a person, so sub-id groups are redacted.
    pub fn masked(mut self) -> Self {
        if self.field.starts_with("sub") {
            for row in &mut self.items {
                if let Some(Value::String(v)) = row.get_mut(&self.field) {
                    *v = crm_core::values::redact_personal(v);
                }
            }
        }
        self
    }
}

/// The report `r` asks for, with revenue converted into the rates' base (else `currency`).
pub async fn table(store: &Store, r: &Request, currency: &Currency) -> Result<Table, StoreError> {
    let fx = rates(store, currency).await?;
    let names = names(store, r.by).await?;
    Ok(table_of(totals(store, r).await?, r, &fx, &names))
}

/// The report, and beside each row the same group's figures of the period just before
/// (`compare`): FX rates and names read once for both.
pub async fn table_compared(store: &Store, r: &Request, currency: &Currency) -> Result<Table, StoreError> {
    let fx = rates(store, currency).await?;
    let names = names(store, r.by).await?;
    let before = Request {
        by: r.by,
        period: r.period.previous(),
        brand: r.brand.clone(),
        model: r.model,
    };
    let mut current = table_of(totals(store, r).await?, r, &fx, &names);
    let previous = table_of(totals(store, &before).await?, &before, &fx, &names);
    compare(&mut current, &previous, &r.period);
    Ok(current)
}

fn table_of(rows: BTreeMap<String, Totals>, r: &Request, fx: &FxRates, names: &BTreeMap<String, String>) -> Table {
    let field = group_field(r.by);
    let mut all = Totals::default();
    let items = rows
        .iter()
        .map(|(key, t)| {
            all.add(&t.0, Decimal::ONE);
            let mut row = Map::new();
            row.insert(field.clone(), if key.is_empty() { Value::Null } else { json!(key) });
            if let Some(name) = names.get(key) {
                row.insert("name".into(), json!(name));
            }
            row.extend(figures(t, fx));
            row
        })
        .collect();
    Table {
        totals: figures(&all, fx),
        field,
        items,
    }
}

/// The group a row is of, as compared: its value, or for a day the day `shift` days later.
fn group_key(field: &str, row: &Map<String, Value>, shift: i64) -> Option<String> {
    let v = row.get(field)?;
    if field != "day" {
        return Some(v.to_string());
    }
    let day = Date::parse(v.as_str()?, &Iso8601::DATE).ok()?;
    Some((day + time::Duration::days(shift)).to_string())
}

/// A row's figures without its group (what `previous` holds).
fn figures_only(field: &str, row: &Map<String, Value>) -> Value {
    let mut f = row.clone();
    f.remove(field);
    f.remove("name");
    Value::Object(f)
}

/// Puts beside each row of `current` (and beside its totals), under `previous`, the figures
/// `previous` (the same report of the period before) has for the same group; a day is
/// compared with the day as far before it as the period is long.
pub fn compare(current: &mut Table, previous: &Table, period: &Period) {
    let field = current.field.clone();
    let shift = (period.to - period.from).whole_days() + 1;
    let before: BTreeMap<String, Value> = previous
        .items
        .iter()
        .filter_map(|row| Some((group_key(&field, row, shift)?, figures_only(&field, row))))
        .collect();
    for row in &mut current.items {
        let earlier = group_key(&field, row, 0).and_then(|k| before.get(&k).cloned());
        row.insert("previous".into(), earlier.unwrap_or_else(|| json!({})));
    }
    current
        .totals
        .insert("previous".into(), figures_only(&field, &previous.totals));
}

/// The field a group's value is shown under.
fn group_field(by: GroupBy) -> String {
    match by {
        GroupBy::Day => "day".into(),
        GroupBy::Dimension(Dimension::Influencer) => "influencerId".into(),
        GroupBy::Dimension(Dimension::Campaign) => "campaignId".into(),
        GroupBy::Dimension(Dimension::Template) => "templateId".into(),
        GroupBy::Dimension(d) => d.as_str(),
    }
}

async fn names(store: &Store, by: GroupBy) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(match by {
        GroupBy::Dimension(Dimension::Influencer) => store
            .influencers()
            .await?
            .into_iter()
            .map(|i| (i.influencer_id, i.name))
            .collect(),
        GroupBy::Dimension(Dimension::Campaign) => store
            .campaigns()
            .await?
            .into_iter()
            .map(|c| (c.campaign_id, c.name))
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// RFC 4180: a header row, CRLF line ends, fields quoted when they hold a comma, quote or
/// line break. A text cell that a spreadsheet would run as a formula gets a leading `'`.
pub fn to_csv(t: &Table) -> String {
    let (field, items, totals) = (t.field.as_str(), &t.items, &t.totals);
    let currencies: BTreeSet<String> = items
        .iter()
        .chain([totals])
        .filter_map(|r| r.get("revenue").and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    let mut columns: Vec<String> = vec![field.to_owned(), "name".into()];
    columns.extend(Metric::COUNTS.iter().map(Metric::name));
    columns.extend(currencies.iter().map(|c| format!("revenue.{c}")));
    columns.extend(
        [
            "currency",
            "revenueConverted",
            "leadRate",
            "ftdRate",
            "attributionRate",
            "epc",
        ]
        .map(String::from),
    );
    // Compared with the period before: its counts and revenue beside them.
    if totals.contains_key("previous") {
        columns.extend(Metric::COUNTS.iter().map(|m| format!("previous.{}", m.name())));
        columns.push("previous.revenueConverted".into());
    }
    let cell = |row: &Map<String, Value>, column: &str| -> String {
        let value = if let Some(c) = column.strip_prefix("revenue.") {
            row.get("revenue").and_then(|r| r.get(c)).cloned()
        } else if let Some(c) = column.strip_prefix("previous.") {
            row.get("previous").and_then(|r| r.get(c)).cloned()
        } else {
            row.get(column).cloned()
        };
        match value {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
        }
    };
    let mut out = csv_line(columns.iter().cloned());
    for row in items {
        out.push_str(&csv_line(columns.iter().map(|c| cell(row, c))));
    }
    let mut total = totals.clone();
    total.insert(field.to_owned(), json!("TOTAL"));
    out.push_str(&csv_line(columns.iter().map(|c| cell(&total, c))));
    out
}

/// One RFC 4180 record, CRLF-terminated.
pub fn csv_line(cells: impl Iterator<Item = String>) -> String {
    let mut line = cells.map(|c| escape(&c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn escape(cell: &str) -> String {
    let numeric = cell.parse::<Decimal>().is_ok();
    let cell = if !numeric && cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}
