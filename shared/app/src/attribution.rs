//! Attribution and counting: a new click, lead or event is attributed
//! (`crm_core::attribution`) and counted into the stats (`crm_core::stats`) in one
//! transaction that also marks the record as counted, so a record seen twice never counts
//! twice; and the recount of days whose records never were counted. The attribution
//! function runs `count` over the table's stream and `recount` when an operator asks.
//!
//! Influencers and campaigns a click names but nobody created yet are created here,
//! flagged `autoCreated`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crm_core::attribution::{Attribution, Conversion, Link, Touchpoint, attribute};
use crm_core::journey::{EventKind, Milestone};
use crm_core::partners::{Campaign, Influencer};
use crm_core::profile::Profile;
use crm_core::quiet::ZoneName;
use crm_core::records::{Activity, Counts, EventRecord as PostbackRecord, LeadRecord, RecordKind};
use crm_core::stats::Period;
use crm_core::stats::{self, Counted, Fact, Influence, Metric};
use crm_core::values::{Brand, Currency, CustomerId, Money};
use crm_store::{FeedPosition, PutMode, Store, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{Config, ConfigError, Reporting};

pub struct Deps {
    pub store: Store,
    pub reporting: Reporting,
}

impl Deps {
    pub async fn cold_start() -> Result<Self, ConfigError> {
        crate::telemetry::init();
        let config = Config::from_env().await?;
        Ok(Self {
            store: config.store().await,
            reporting: config.reporting,
        })
    }
}

/// UTC days whose records to count if they never were: the records of stream positions
/// that failed until the dead-letter queue, or that the stream (24 hours) dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recount {
    pub from: String,
    pub to: String,
    /// Where an earlier invocation stopped, on day `from` (its report's `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Resume>,
}

/// A position in a day's feeds: the kind being walked, after this record of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<FeedPosition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecountReport {
    /// Clicks, leads and events read.
    pub records: usize,
    /// Of those, counted now (the others were counted before).
    pub counted: usize,
    /// Records that could not be counted (each logged with its id, `recount failed`); a
    /// later recount of the day tries them again.
    pub failed: usize,
    /// False when the time ran out first: then `next` is the payload that goes on from
    /// where this invocation stopped.
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Recount>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecountError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records per page of a day's feed.
const RECOUNT_PAGE: i32 = 500;

/// What a day's feeds are walked in: a lead's click is counted before the lead wherever the
/// day has both (the totals do not depend on the order).
const RECOUNTED: [(RecordKind, &str); 3] = [
    (RecordKind::Click, "click"),
    (RecordKind::Lead, "lead"),
    (RecordKind::Event, "event"),
];

/// Walks the days' feeds (the day index: no scan), counting each record not counted yet as
/// the stream would have, with the identity graph and partners as they are now. Handles
/// at least one record, then stops once `budget` is spent. Publishes no metrics: the
/// dashboard shows what happens now, the reports show the recounted figures.
pub async fn recount(deps: &Deps, request: &Recount, budget: Duration) -> Result<RecountReport, RecountError> {
    let started = Instant::now();
    let invalid = |field, message: String| RecountError::Invalid { field, message };
    let utc = ZoneName::parse("UTC").expect("UTC is a zone");
    let period = Period::parse(Some(&request.from), Some(&request.to), utc, OffsetDateTime::now_utc())
        .map_err(|(field, e)| invalid(field, e.message))?;
    let (mut first_kind, mut after) = match &request.after {
        None => (0, None),
        Some(r) => (
            RECOUNTED
                .iter()
                .position(|(_, name)| *name == r.kind)
                .ok_or_else(|| invalid("after.kind", "must be click, lead or event".into()))?,
            r.record.clone(),
        ),
    };
    let mut partners = Partners::default();
    let mut report = RecountReport::default();
    let mut day = period.from;
    loop {
        for (kind, name) in &RECOUNTED[first_kind..] {
            loop {
                if report.records > 0 && started.elapsed() >= budget {
                    report.next = Some(Recount {
                        from: day.to_string(),
                        to: request.to.clone(),
                        after: Some(Resume {
                            kind: (*name).to_owned(),
                            record: after,
                        }),
                    });
                    tracing::info!(records = report.records, counted = report.counted, failed = report.failed,
                        %day, "recount out of time");
                    return Ok(report);
                }
                let (page, more) = deps
                    .store
                    .records_after(*kind, day, after.as_ref(), RECOUNT_PAGE)
                    .await?;
                let mut records = page.iter();
                for record in records.by_ref() {
                    report.records += 1;
                    if !counted_before(record) {
                        match count(deps, &mut partners, record).await {
                            Ok(outcome) => report.counted += usize::from(matches!(outcome, Outcome::Counted(_))),
                            Err(e) => {
                                report.failed += 1;
                                tracing::error!(record = name, id = %record.id(), error = %e, "recount failed");
                            }
                        }
                    }
                    after = Some(FeedPosition {
                        at: record.at(),
                        id: record.id().to_owned(),
                    });
                    if started.elapsed() >= budget {
                        break;
                    }
                }
                if !more && records.next().is_none() {
                    break;
                }
            }
            after = None;
        }
        first_kind = 0;
        match day.next_day() {
            Some(next) if next <= period.to => day = next,
            _ => break,
        }
    }
    tracing::info!(
        records = report.records,
        counted = report.counted,
        failed = report.failed,
        "recount complete"
    );
    report.complete = true;
    Ok(report)
}

/// Whether the attribution function counted the record (what the store's condition checks).
fn counted_before(record: &Activity) -> bool {
    match record {
        Activity::Click(r) => r.attribution.is_some(),
        Activity::Lead(r) => r.attribution.is_some(),
        Activity::Event(r) => r.attribution.is_some(),
        Activity::Merge(_) | Activity::Message(_) | Activity::Contact(_) => true,
    }
}

/// What became of one stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Attributed and counted now.
    Counted(CountedRecord),
    /// A redelivery: it was counted before.
    AlreadyCounted,
    /// Not a new click, lead or event.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedRecord {
    pub brand: String,
    /// A lead or a conversion: what the attribution rate is a rate of.
    pub attributable: bool,
    pub attributed: bool,
    pub conversion: bool,
    pub revenue: Option<(Currency, Money)>,
}

/// Attributes and counts one click, lead or event (once: a record counted before counts
/// nothing).
pub async fn count(deps: &Deps, partners: &mut Partners, activity: &Activity) -> Result<Outcome, StoreError> {
    // Test traffic and voided records are stored and shown, never counted: no report,
    // stat, daily report or attribution rate sees them, and they create no influencer or
    // campaign.
    if activity.is_test() || activity.is_voided() {
        return Ok(Outcome::Skipped);
    }
    let counting = match activity {
        Activity::Click(c) => {
            let mut touch = Touchpoint::from(c);
            partners.resolve(&deps.store, &mut touch, c.at).await?;
            Counting {
                kind: RecordKind::Click,
                id: &c.click_id,
                customer: &c.customer_id,
                also: Vec::new(),
                // The campaign's brand when the click named none.
                brand: touch.brand.clone(),
                at: c.at,
                attribution: Attribution::of_click(&touch),
                counted: Counted::Click {
                    repeat: c.visit_id.is_some(),
                },
                influence: None,
            }
        }
        Activity::Lead(l) => {
            let conversion = Conversion {
                brand: &l.brand,
                at: l.at,
                click_id: l.click_id.as_deref(),
                link: Link::strongest(lead_identifiers(l)),
            };
            let (attribution, profile) = attribute_conversion(deps, partners, &l.customer_id, &conversion).await?;
            Counting {
                kind: RecordKind::Lead,
                id: &l.lead_id,
                customer: &l.customer_id,
                also: other_ids(&l.customer_id, profile.as_ref()),
                brand: l.brand.clone(),
                at: l.at,
                attribution,
                counted: Counted::Lead,
                influence: None,
            }
        }
        Activity::Event(e) => event_counting(deps, partners, e).await?,
        Activity::Merge(_) | Activity::Message(_) | Activity::Contact(_) => return Ok(Outcome::Skipped),
    };
    counting.commit(&deps.store).await
}

async fn event_counting<'a>(
    deps: &Deps,
    partners: &mut Partners,
    e: &'a PostbackRecord,
) -> Result<Counting<'a>, StoreError> {
    let at = e.occurred_at.unwrap_or(e.at);
    let conversion = Conversion {
        brand: &e.brand,
        at,
        click_id: e.click_id.as_deref(),
        link: Link::strongest(e.identified_by.iter().map(String::as_str)),
    };
    let (attribution, profile) = attribute_conversion(deps, partners, &e.customer_id, &conversion).await?;
    let kind = EventKind::parse(&e.event_type).unwrap_or(EventKind::Other(e.event_type.clone()));
    // The first deposit is the one that reached the milestone: the profile keeps when that
    // was, and this event was recorded in the same transaction, at the same time. Deposits
    // sent at once can share that millisecond: the first of them to claim it is the one.
    let reached_milestone = matches!(kind, EventKind::Ftd | EventKind::Deposit)
        && Brand::parse(&e.brand).ok().is_some_and(|brand| {
            profile
                .as_ref()
                .and_then(|p| p.milestones.get(&brand))
                .and_then(|m| m.get(&Milestone::FirstDeposit))
                == Some(&e.at)
        });
    let first_deposit = reached_milestone
        && deps
            .store
            .claim_first_deposit(&e.customer_id, &e.brand, &e.event_id)
            .await?;
    let revenue = match (&e.amount, &e.currency) {
        (Some(amount), Some(currency)) => Money::parse(amount)
            .ok()
            .zip(Currency::parse(currency).ok())
            .map(|(a, c)| (c, a))
            .filter(|(_, a)| !a.is_zero()),
        _ => None,
    };
    let influence = influence(deps, profile.as_ref(), &e.customer_id, &e.brand, at).await?;
    Ok(Counting {
        kind: RecordKind::Event,
        id: &e.event_id,
        customer: &e.customer_id,
        also: other_ids(&e.customer_id, profile.as_ref()),
        brand: e.brand.clone(),
        at,
        attribution,
        counted: Counted::Event {
            kind,
            first_deposit,
            revenue,
        },
        influence,
    })
}

/// The identifier kinds a lead carried.
fn lead_identifiers(l: &LeadRecord) -> impl Iterator<Item = &'static str> + '_ {
    [
        (l.click_id.is_some(), "CLICK_ID"),
        (l.email.is_some(), "EMAIL"),
        (l.phone.is_some(), "PHONE"),
        (l.device_id.is_some(), "DEVICE_ID"),
    ]
    .into_iter()
    .filter_map(|(present, kind)| present.then_some(kind))
}

/// The customer as the graph knows them now, and every customer id merged into them.
fn customer_ids(customer: &CustomerId, profile: Option<&Profile>) -> BTreeSet<CustomerId> {
    let mut ids = BTreeSet::from([customer.clone()]);
    if let Some(p) = profile {
        ids.insert(p.id.clone());
        ids.extend(p.merged_from.iter().cloned());
    }
    ids
}

/// The person's other customer ids (merges), besides the record's own.
fn other_ids(customer: &CustomerId, profile: Option<&Profile>) -> Vec<CustomerId> {
    customer_ids(customer, profile)
        .into_iter()
        .filter(|id| id != customer)
        .collect()
}

/// Last-touch attribution among the customer's clicks in the window before the conversion
/// (under every id merged into them), and the customer's profile.
async fn attribute_conversion(
    deps: &Deps,
    partners: &mut Partners,
    customer: &CustomerId,
    conversion: &Conversion<'_>,
) -> Result<(Attribution, Option<Profile>), StoreError> {
    let store = &deps.store;
    let profile = store.current_profile(customer).await?;
    let window = deps.reporting.attribution_window;
    let mut clicks: Vec<Touchpoint> = Vec::new();
    for id in customer_ids(customer, profile.as_ref()) {
        let found = store.clicks_between(&id, conversion.at - window, conversion.at).await?;
        clicks.extend(found.iter().filter(|c| live(c)).map(Touchpoint::from));
    }
    if let Some(own) = conversion
        .click_id
        .filter(|id| !clicks.iter().any(|c| c.click_id == *id))
        && let Some(click) = store.click(own).await?.filter(live)
    {
        clicks.push(Touchpoint::from(&click));
    }
    // Resolved before the rules run: a click without a brand is its campaign's brand's
    // click here too, as in the stats; and the credit names campaigns by id.
    for touch in &mut clicks {
        partners.resolve(store, touch, conversion.at).await?;
    }
    let attribution = attribute(conversion, &clicks, window);
    Ok((attribution, profile))
}

/// A click that can earn credit: neither voided nor test traffic (as if it never came).
fn live(click: &crm_core::records::ClickRecord) -> bool {
    click.voided.is_none() && !click.test
}

/// The journey message that influenced a conversion, among the customer's messages.
async fn influence(
    deps: &Deps,
    profile: Option<&Profile>,
    customer: &CustomerId,
    brand: &str,
    at: OffsetDateTime,
) -> Result<Option<Influence>, StoreError> {
    let mut messages = Vec::new();
    for id in customer_ids(customer, profile) {
        messages.extend(deps.store.customer_messages(&id).await?);
    }
    Ok(stats::influence(&messages, brand, at, deps.reporting.influence_window))
}

/// One record, attributed, ready to count.
struct Counting<'a> {
    kind: RecordKind,
    id: &'a str,
    customer: &'a CustomerId,
    /// Other ids of the same person (merged into them, or their survivor).
    also: Vec<CustomerId>,
    brand: String,
    at: OffsetDateTime,
    attribution: Attribution,
    counted: Counted,
    influence: Option<Influence>,
}

impl Counting<'_> {
    async fn commit(self, store: &Store) -> Result<Outcome, StoreError> {
        let fact = Fact {
            brand: &self.brand,
            at: self.at,
            counted: self.counted,
            attribution: &self.attribution,
            influence: self.influence,
        };
        let metrics = stats::metrics(&fact);
        let conversion = metrics.contains_key(&Metric::Conversions);
        let attributable = conversion || metrics.contains_key(&Metric::Leads);
        let revenue = match &fact.counted {
            Counted::Event { revenue, .. } if conversion => revenue.clone(),
            _ => None,
        };
        let first_in = if metrics.is_empty() {
            BTreeSet::new()
        } else {
            let rows = stats::rows(&self.brand, &self.attribution);
            store.first_in(self.customer, &self.also, &rows, self.id).await?
        };
        let deltas = stats::deltas(&fact, &first_in);
        let counted: Counts = metrics.iter().map(|(m, v)| (m.name(), *v)).collect();
        let attributed = self.attribution.is_attributed();
        if store
            .count(self.kind, self.id, &self.attribution, &counted, &deltas)
            .await?
        {
            tracing::info!(record = self.kind.as_str(), id = %self.id, attributed,
                confidence = %self.attribution.confidence, "counted");
            Ok(Outcome::Counted(CountedRecord {
                brand: self.brand.clone(),
                attributable,
                attributed,
                conversion,
                revenue,
            }))
        } else {
            Ok(Outcome::AlreadyCounted)
        }
    }
}

/// Influencers and campaigns resolved so far in this batch.
#[derive(Default)]
pub struct Partners {
    campaigns: HashMap<String, Campaign>,
    influencers: HashSet<String>,
}

impl Partners {
    /// Replaces the campaign a click named (a name or an id) by its campaign's id, creating
    /// the campaign if nobody did; credits the campaign's influencer when the click named
    /// none; creates the influencer if nobody did.
    async fn resolve(&mut self, store: &Store, touch: &mut Touchpoint, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(named) = touch.campaign_id.clone() {
            let key = crm_core::partners::name_key(&named);
            let campaign = match self.campaigns.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let found = match store.campaign_named(&named).await? {
                        Some(c) => c,
                        None => {
                            let auto = Campaign::auto(&named, &touch.brand, touch.influencer_id.as_deref(), at);
                            if store.put_campaign(&auto, None, PutMode::Auto).await? {
                                tracing::info!(campaign_id = %auto.campaign_id, "campaign created from a click");
                                auto
                            } else {
                                // Created meanwhile (another reader, or an operator).
                                store.campaign_named(&named).await?.unwrap_or(auto)
                            }
                        }
                    };
                    self.campaigns.insert(key, found.clone());
                    found
                }
            };
            touch.adopt(&campaign);
        }
        if let Some(id) = touch.influencer_id.clone()
            && !self.influencers.contains(&id)
        {
            if store.influencer(&id).await?.is_none()
                && store.put_influencer(&Influencer::auto(&id, at), PutMode::Auto).await?
            {
                tracing::info!(influencer_id = %id, "influencer created from a click");
            }
            self.influencers.insert(id);
        }
        Ok(())
    }
}
