//! Translation between domain values and DynamoDB items and expressions, per entity, both
//! ways. Nothing outside this crate sees an `AttributeValue`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use crm_core::compliance::{Consent, Consents, Exclusion};
use crm_core::contact::{ContactUpdate, Contacts};
use crm_core::definition::Channel;
use crm_core::identity::Identifier;
use crm_core::journey::{Milestone, Milestones};
use crm_core::message::Message;
use crm_core::plan::Write;
use crm_core::profile::{ExclusionChange, Facts, Profile};
use crm_core::quiet::ZoneName;
use crm_core::records::{Activity, RecordKind};
use crm_core::retention::Retention;
use crm_core::values::{Brand, Currency, CustomerId, Money, format_ts, parse_ts};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use super::{FeedPosition, Item, StoreError, TimelinePosition};
use crate::keys::{self, entity};

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub(super) fn ts(t: OffsetDateTime) -> AttributeValue {
    s(format_ts(t))
}

pub(super) fn corrupt(key: &str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: keys::loggable(key),
        message: message.into(),
    }
}

pub(super) fn string(item: &Item, attr: &str, key: &str) -> Result<String, StoreError> {
    match item.get(attr) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(corrupt(key, format!("missing string {attr}"))),
    }
}

pub(super) fn opt_string(item: &Item, attr: &str) -> Option<String> {
    match item.get(attr) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn customer_id(item: &Item, attr: &str, key: &str) -> Result<CustomerId, StoreError> {
    CustomerId::parse(&string(item, attr, key)?).map_err(|e| corrupt(key, e.message))
}

fn time_attr(item: &Item, attr: &str, key: &str) -> Result<OffsetDateTime, StoreError> {
    parse_ts(&string(item, attr, key)?).map_err(|e| corrupt(key, format!("{attr}: {}", e.message)))
}

/// Builds expression placeholders without collisions.
#[derive(Default)]
pub(super) struct Expr {
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub(super) fn name(&mut self, real: &str) -> String {
        let k = format!("#n{}", self.names.len());
        self.names.insert(k.clone(), real.to_owned());
        k
    }
    /// A document path, each segment a name (`#n1.#n2`).
    pub(super) fn path(&mut self, segments: &[String]) -> String {
        segments.iter().map(|s| self.name(s)).collect::<Vec<_>>().join(".")
    }
    pub(super) fn value(&mut self, v: AttributeValue) -> String {
        let k = format!(":v{}", self.values.len());
        self.values.insert(k.clone(), v);
        k
    }
}

pub(super) fn key(pk: String, sk: &str) -> Item {
    Item::from([(keys::PK.into(), s(pk)), (keys::SK.into(), s(sk))])
}

/// The key (`PK`, `SK`) of an item read back.
pub(super) fn item_key(item: &Item) -> Item {
    key(
        opt_string(item, keys::PK).unwrap_or_default(),
        &opt_string(item, keys::SK).unwrap_or_default(),
    )
}

pub(super) fn put(table: &str, item: Item, condition: &str, expr: Expr) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names((!expr.names.is_empty()).then_some(expr.names))
        .set_expression_attribute_values((!expr.values.is_empty()).then_some(expr.values))
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(super) fn update(
    table: &str,
    key: Item,
    update_expr: String,
    condition: Option<&str>,
    expr: Expr,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update_expr)
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_names((!expr.names.is_empty()).then_some(expr.names))
        .set_expression_attribute_values((!expr.values.is_empty()).then_some(expr.values))
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

pub(super) fn delete(table: &str, key: Item, condition: &str, expr: Expr) -> Result<TransactWriteItem, StoreError> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_names((!expr.names.is_empty()).then_some(expr.names))
        .set_expression_attribute_values((!expr.values.is_empty()).then_some(expr.values))
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// A record with its own key, its timeline key (GSI1), but for merges and contact changes
/// its recent-list key (GSI2), and when it is removed (`removeAt`, its kind's retention).
pub(super) fn record_item<T: Serialize>(
    record: &T,
    kind: RecordKind,
    id: &str,
    customer: &CustomerId,
    at: OffsetDateTime,
    retention: &Retention,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(|e| StoreError::Rejected(e.to_string()))?;
    item.extend(key(keys::record_pk(kind, id), kind.as_str()));
    if let Some(remove_at) = retention.record(kind, at) {
        item.insert(keys::TTL.into(), n(remove_at.unix_timestamp()));
    }
    item.insert(keys::ENTITY.into(), s(kind.as_str()));
    item.insert(keys::GSI1PK.into(), s(keys::customer_pk(customer)));
    item.insert(keys::GSI1SK.into(), s(keys::timeline_sk(at, kind, id)));
    if kind.has_feed() {
        item.insert(keys::GSI2PK.into(), s(keys::feed_pk(kind, utc_day(at))));
        item.insert(keys::GSI2SK.into(), s(keys::feed_sk(at, id)));
    }
    Ok(item)
}

pub(super) fn utc_day(at: OffsetDateTime) -> time::Date {
    at.to_offset(time::UtcOffset::UTC).date()
}

const NOT_EXISTS: &str = "attribute_not_exists(PK)";

/// One write as a transaction item; `test`: identifiers and dedupe keys in the test
/// namespace.
pub(super) fn transact_item(
    table: &str,
    write: &Write,
    test: bool,
    retention: &Retention,
) -> Result<TransactWriteItem, StoreError> {
    let mut e = Expr::default();
    match write {
        Write::CreateProfile(p) => put(table, profile_item(p)?, NOT_EXISTS, e),
        Write::ReplaceProfile {
            profile,
            expected_version,
        } => {
            let cond = format!(
                "version = {} AND attribute_not_exists(mergedInto) AND attribute_not_exists(erasedAt)",
                e.value(n(expected_version))
            );
            put(table, profile_item(profile)?, &cond, e)
        }
        Write::ApplyTouch {
            customer,
            touch,
            bounded,
        } => {
            let at = e.value(ts(touch.at));
            let mut set = vec![format!("updatedAt = {at}")];
            for m in touch.milestone.reached_with() {
                let attr = e.name(&keys::journey_attr(&touch.brand, m));
                set.push(format!("journeys.{attr} = if_not_exists(journeys.{attr}, {at})"));
            }
            if let Some((currency, amount)) = &touch.revenue {
                let (attr, zero, amt) = (e.name(currency.as_str()), e.value(n(0)), e.value(n(amount)));
                set.push(format!(
                    "revenue.{attr} = if_not_exists(revenue.{attr}, {zero}) + {amt}"
                ));
            }
            if let Some(first) = &touch.names.first {
                set.push(format!("firstName = {}", e.value(s(first))));
            }
            if let Some(last) = &touch.names.last {
                set.push(format!("lastName = {}", e.value(s(last))));
            }
            set.extend(facts_update(&touch.brand, &touch.facts, touch.at, &mut e)?);
            set.extend(contacts_update(&touch.contact_update(), &mut e)?);
            let mut add = vec![format!("version {}", e.value(n(1)))];
            if !touch.identifiers.is_empty() {
                let tags = touch
                    .identifiers
                    .iter()
                    .map(Identifier::tag)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                add.push(format!("identifiers {}", e.value(AttributeValue::Ss(tags))));
            }
            let expr = format!("SET {} ADD {}", set.join(", "), add.join(", "));
            let key = key(keys::customer_pk(customer), keys::PROFILE_SK);
            let mut cond =
                "attribute_exists(PK) AND attribute_not_exists(mergedInto) AND attribute_not_exists(erasedAt)"
                    .to_owned();
            if *bounded && !touch.identifiers.is_empty() {
                // A full profile fails this; the ingest re-plans with it read.
                cond.push_str(&format!(
                    " AND (attribute_not_exists(identifiers) OR size(identifiers) < {})",
                    e.value(n(crm_core::plan::MAX_LISTED_IDENTIFIERS))
                ));
            }
            update(table, key, expr, Some(&cond), e)
        }
        Write::MarkMerged {
            customer,
            into,
            expected_version,
            at,
        } => {
            let expr = format!(
                "SET mergedInto = {}, mergedAt = {t}, updatedAt = {t} ADD version {}",
                e.value(s(into.as_str())),
                e.value(n(1)),
                t = e.value(ts(*at)),
            );
            let cond = format!(
                "version = {} AND attribute_not_exists(mergedInto) AND attribute_not_exists(erasedAt)",
                e.value(n(expected_version))
            );
            update(
                table,
                key(keys::customer_pk(customer), keys::PROFILE_SK),
                expr,
                Some(&cond),
                e,
            )
        }
        Write::ClaimIdentifier {
            identifier,
            customer,
            at,
        } => {
            let mut item = key(keys::identifier_pk_in(identifier, test), keys::IDENT_SK);
            item.insert(keys::ENTITY.into(), s(entity::IDENTIFIER));
            item.insert("identifierType".into(), s(identifier.kind().as_str()));
            item.insert("customerId".into(), s(customer.as_str()));
            item.insert("createdAt".into(), ts(*at));
            put(table, item, NOT_EXISTS, e)
        }
        Write::RepointIdentifier { identifier, from, to } => {
            let expr = format!("SET customerId = {}", e.value(s(to.as_str())));
            let cond = format!("customerId = {}", e.value(s(from.as_str())));
            update(
                table,
                key(keys::identifier_pk_in(identifier, test), keys::IDENT_SK),
                expr,
                Some(&cond),
                e,
            )
        }
        Write::RecordMerge(m) => {
            let item = record_item(m, RecordKind::Merge, &m.merge_id, &m.customer_id, m.at, retention)?;
            put(table, item, NOT_EXISTS, e)
        }
        Write::RecordClick(c) => {
            let item = record_item(c, RecordKind::Click, &c.click_id, &c.customer_id, c.at, retention)?;
            put(table, item, NOT_EXISTS, e)
        }
        Write::RecordLead(l) => {
            let item = record_item(l, RecordKind::Lead, &l.lead_id, &l.customer_id, l.at, retention)?;
            put(table, item, NOT_EXISTS, e)
        }
        Write::RecordEvent(ev) => {
            let item = record_item(ev, RecordKind::Event, &ev.event_id, &ev.customer_id, ev.at, retention)?;
            put(table, item, NOT_EXISTS, e)
        }
        Write::ClaimDedupe(d) => {
            let mut item = key(keys::dedupe_pk_in(&d.key, test), keys::DEDUPE_SK);
            item.insert(keys::ENTITY.into(), s(entity::DEDUPE));
            item.insert("recordId".into(), s(&d.record_id));
            item.insert("customerId".into(), s(d.customer.as_str()));
            item.insert("createdAt".into(), ts(d.at));
            if let Some(exp) = d.expires_at {
                item.insert(keys::TTL.into(), n(exp.unix_timestamp()));
            }
            // TTL deletion lags by up to days, so an expired claim is taken over explicitly.
            let cond = format!(
                "attribute_not_exists(PK) OR (attribute_exists({ttl}) AND {ttl} < {now})",
                ttl = e.name(keys::TTL),
                now = e.value(n(d.at.unix_timestamp()))
            );
            put(table, item, &cond, e)
        }
        Write::ClaimSignature(c) => {
            let mut item = key(keys::signature_pk(&c.source_id, &c.digest), keys::SIGNATURE_SK);
            item.insert(keys::ENTITY.into(), s(entity::SIGNATURE));
            item.insert("createdAt".into(), ts(c.at));
            item.insert(keys::TTL.into(), n(c.expires_at.unix_timestamp()));
            let cond = format!(
                "attribute_not_exists(PK) OR (attribute_exists({ttl}) AND {ttl} < {now})",
                ttl = e.name(keys::TTL),
                now = e.value(n(c.at.unix_timestamp()))
            );
            put(table, item, &cond, e)
        }
    }
}

/// `SET` clauses recording a touch's compliance facts (see `Profile::apply`).
fn facts_update(brand: &Brand, facts: &Facts, at: OffsetDateTime, e: &mut Expr) -> Result<Vec<String>, StoreError> {
    let mut set = Vec::new();
    if let Some(granted) = facts.consent {
        let consent = doc(&Consent {
            granted,
            at,
            source: facts.source.to_owned(),
        })?;
        let value = e.value(consent);
        for channel in Channel::ALL {
            set.push(format!("{} = {value}", e.name(&keys::consent_attr(brand, channel))));
        }
    }
    if let Some(tz) = &facts.timezone {
        set.push(format!("timezone = {}", e.value(s(tz.as_str()))));
    }
    match facts.exclusion {
        Some(ExclusionChange::Excluded(kind)) => {
            let ex = doc(&Exclusion {
                kind,
                at,
                reactivated_at: None,
            })?;
            set.push(format!("{} = {}", e.name(&keys::exclusion_attr(brand)), e.value(ex)));
        }
        Some(ExclusionChange::Reactivated) => {
            set.push(format!(
                "{} = {}",
                e.name(&keys::reactivated_attr(brand)),
                e.value(ts(at))
            ));
        }
        None => {}
    }
    Ok(set)
}

/// `SET` clauses recording what a touch says about addresses (see `Contacts::apply`):
/// provenance and each channel's first are first-write-wins, the chosen address too unless
/// the touch replaces it.
fn contacts_update(update: &ContactUpdate, e: &mut Expr) -> Result<Vec<String>, StoreError> {
    let first_wins = |attr: String, value: AttributeValue, e: &mut Expr| {
        let name = e.name(&attr);
        format!("{name} = if_not_exists({name}, {})", e.value(value))
    };
    let mut set = Vec::new();
    for (identifier, point) in &update.points {
        set.push(first_wins(keys::contact_attr(identifier), doc(point)?, e));
    }
    for (channel, identifier) in &update.first {
        set.push(first_wins(keys::first_contact_attr(*channel), s(identifier.tag()), e));
    }
    for (channel, identifier) in &update.chosen {
        let attr = keys::chosen_contact_attr(*channel);
        set.push(if update.replace {
            format!("{} = {}", e.name(&attr), e.value(s(identifier.tag())))
        } else {
            first_wins(attr, s(identifier.tag()), e)
        });
    }
    Ok(set)
}

/// A value as one DynamoDB attribute (a map, a list, …).
pub(super) fn doc<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Rejected(e.to_string()))
}

fn profile_item(p: &Profile) -> Result<Item, StoreError> {
    let mut item = key(keys::customer_pk(&p.id), keys::PROFILE_SK);
    item.insert(keys::ENTITY.into(), s(entity::CUSTOMER));
    item.insert("customerId".into(), s(p.id.as_str()));
    item.insert("createdAt".into(), ts(p.created_at));
    // The day index of new customers (exports).
    item.insert(keys::GSI2PK.into(), s(keys::customer_feed_pk(utc_day(p.created_at))));
    item.insert(keys::GSI2SK.into(), s(keys::feed_sk(p.created_at, p.id.as_str())));
    item.insert("updatedAt".into(), ts(p.updated_at));
    item.insert("version".into(), n(p.version));
    if let Some(v) = &p.first_name {
        item.insert("firstName".into(), s(v));
    }
    if let Some(v) = &p.last_name {
        item.insert("lastName".into(), s(v));
    }
    if !p.identifiers.is_empty() {
        item.insert(
            "identifiers".into(),
            AttributeValue::Ss(p.identifiers.iter().map(Identifier::tag).collect()),
        );
    }
    let journeys = p
        .milestones
        .iter()
        .flat_map(|(brand, reached)| {
            reached
                .iter()
                .map(move |(m, at)| (keys::journey_attr(brand, *m), ts(*at)))
        })
        .collect();
    item.insert("journeys".into(), AttributeValue::M(journeys));
    item.insert(
        "revenue".into(),
        AttributeValue::M(p.revenue.iter().map(|(c, a)| (c.to_string(), n(a))).collect()),
    );
    if let Some(into) = &p.merged_into {
        item.insert("mergedInto".into(), s(into.as_str()));
    }
    if !p.merged_from.is_empty() {
        item.insert(
            "mergedFrom".into(),
            AttributeValue::Ss(p.merged_from.iter().map(|c| c.to_string()).collect()),
        );
    }
    for ((brand, channel), consent) in &p.consents {
        item.insert(keys::consent_attr(brand, *channel), doc(consent)?);
    }
    for (brand, e) in &p.exclusions {
        let exclusion = Exclusion {
            reactivated_at: None,
            ..e.clone()
        };
        item.insert(keys::exclusion_attr(brand), doc(&exclusion)?);
        if let Some(r) = e.reactivated_at {
            item.insert(keys::reactivated_attr(brand), ts(r));
        }
    }
    for (identifier, point) in &p.contacts.points {
        item.insert(keys::contact_attr(identifier), doc(point)?);
    }
    for (channel, identifier) in &p.contacts.first {
        item.insert(keys::first_contact_attr(*channel), s(identifier.tag()));
    }
    for (channel, identifier) in &p.contacts.chosen {
        item.insert(keys::chosen_contact_attr(*channel), s(identifier.tag()));
    }
    if let Some(tz) = &p.timezone {
        item.insert("timezone".into(), s(tz.as_str()));
    }
    if p.test {
        item.insert("test".into(), AttributeValue::Bool(true));
    }
    Ok(item)
}

/// A `firstContact#` or `chosenContact#` attribute: its channel and address.
fn contact_choice(channel: &str, value: &AttributeValue) -> Result<(Channel, Identifier), String> {
    let channel = Channel::parse(channel).map_err(|e| e.message)?;
    let AttributeValue::S(tag) = value else {
        return Err("not an identifier".into());
    };
    Ok((channel, Identifier::from_tag(tag).map_err(|e| e.message)?))
}

pub(super) fn profile_from_item(item: &Item, key: &str) -> Result<Profile, StoreError> {
    let bad = |m: String| corrupt(key, m);
    let set = |attr: &str| match item.get(attr) {
        Some(AttributeValue::Ss(v)) => v.clone(),
        _ => Vec::new(),
    };
    let identifiers = set("identifiers")
        .iter()
        .map(|t| Identifier::from_tag(t).map_err(|e| bad(e.message)))
        .collect::<Result<_, _>>()?;
    let merged_from = set("mergedFrom")
        .iter()
        .map(|c| CustomerId::parse(c).map_err(|e| bad(e.message)))
        .collect::<Result<_, _>>()?;
    let mut milestones = Milestones::new();
    if let Some(AttributeValue::M(map)) = item.get("journeys") {
        for (attr, value) in map {
            let (brand, milestone) = attr.split_once('#').ok_or_else(|| bad(format!("journey key {attr}")))?;
            let brand = Brand::parse(brand).map_err(|e| bad(e.message))?;
            let milestone = Milestone::parse(milestone).ok_or_else(|| bad(format!("milestone {milestone}")))?;
            let AttributeValue::S(at) = value else {
                return Err(bad(format!("journey {attr} is not a timestamp")));
            };
            let at = parse_ts(at).map_err(|e| bad(e.message))?;
            milestones.entry(brand).or_default().insert(milestone, at);
        }
    }
    let mut revenue = BTreeMap::new();
    if let Some(AttributeValue::M(map)) = item.get("revenue") {
        for (currency, value) in map {
            let AttributeValue::N(amount) = value else {
                return Err(bad(format!("revenue {currency} is not a number")));
            };
            let amount: Decimal = amount.parse().map_err(|_| bad(format!("revenue {currency}")))?;
            revenue.insert(
                Currency::parse(currency).map_err(|e| bad(e.message))?,
                Money::from_decimal(amount),
            );
        }
    }
    let mut consents = Consents::new();
    let mut exclusions = BTreeMap::new();
    let mut reactivations = Vec::new();
    let mut contacts = Contacts::default();
    for (attr, value) in item {
        match keys::parse_profile_fact(attr) {
            Some(keys::ProfileFact::Consent(brand, channel)) => {
                let brand = Brand::parse(brand).map_err(|e| bad(e.message))?;
                let channel = Channel::parse(channel).map_err(|e| bad(e.message))?;
                let consent: Consent =
                    serde_dynamo::from_attribute_value(value.clone()).map_err(|e| bad(e.to_string()))?;
                consents.insert((brand, channel), consent);
            }
            Some(keys::ProfileFact::Exclusion(brand)) => {
                let brand = Brand::parse(brand).map_err(|e| bad(e.message))?;
                let e: Exclusion = serde_dynamo::from_attribute_value(value.clone()).map_err(|e| bad(e.to_string()))?;
                exclusions.insert(brand, e);
            }
            Some(keys::ProfileFact::Reactivated(brand)) => {
                let brand = Brand::parse(brand).map_err(|e| bad(e.message))?;
                let AttributeValue::S(at) = value else {
                    return Err(bad(format!("{attr} is not a timestamp")));
                };
                reactivations.push((brand, parse_ts(at).map_err(|e| bad(e.message))?));
            }
            Some(keys::ProfileFact::Contact(tag)) => {
                let identifier = Identifier::from_tag(tag).map_err(|e| bad(e.message))?;
                let point = serde_dynamo::from_attribute_value(value.clone()).map_err(|e| bad(e.to_string()))?;
                contacts.points.insert(identifier, point);
            }
            Some(keys::ProfileFact::FirstContact(channel)) => {
                let (channel, identifier) = contact_choice(channel, value).map_err(|m| bad(format!("{attr}: {m}")))?;
                contacts.first.insert(channel, identifier);
            }
            Some(keys::ProfileFact::ChosenContact(channel)) => {
                let (channel, identifier) = contact_choice(channel, value).map_err(|m| bad(format!("{attr}: {m}")))?;
                contacts.chosen.insert(channel, identifier);
            }
            None => {}
        }
    }
    for (brand, at) in reactivations {
        if let Some(e) = exclusions.get_mut(&brand) {
            e.reactivated_at = Some(at);
        }
    }
    let timezone = opt_string(item, "timezone")
        .map(|z| ZoneName::parse(&z).map_err(|e| bad(e.message)))
        .transpose()?;
    let version = match item.get("version") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| bad("version".into()))?,
        _ => 0,
    };
    Ok(Profile {
        id: customer_id(item, "customerId", key)?,
        created_at: time_attr(item, "createdAt", key)?,
        updated_at: time_attr(item, "updatedAt", key)?,
        first_name: opt_string(item, "firstName"),
        last_name: opt_string(item, "lastName"),
        identifiers,
        contacts,
        milestones,
        revenue,
        merged_into: opt_string(item, "mergedInto")
            .map(|c| CustomerId::parse(&c).map_err(|e| bad(e.message)))
            .transpose()?,
        merged_from,
        consents,
        exclusions,
        timezone,
        erased: item.contains_key("erasedAt"),
        test: matches!(item.get("test"), Some(AttributeValue::Bool(true))),
        version,
    })
}

/// The customer an identifier item or a click item names.
pub(super) fn owner(item: &Item, key: &str) -> Result<CustomerId, StoreError> {
    customer_id(item, "customerId", key)
}

/// `(recordId, customerId)` of a dedupe claim.
pub(super) fn dedupe_from_item(item: &Item, key: &str) -> Result<(String, CustomerId), StoreError> {
    Ok((string(item, "recordId", key)?, customer_id(item, "customerId", key)?))
}

/// A timeline or recent-list item as its typed record, with its timeline position.
pub(super) fn timeline_entry(item: Item) -> Result<(TimelinePosition, Activity), StoreError> {
    let key = opt_string(&item, keys::PK).unwrap_or_default();
    let position = TimelinePosition(string(&item, keys::GSI1SK, &key)?);
    let kind = string(&item, keys::ENTITY, &key)?;
    let bad = |e: serde_dynamo::Error| corrupt(&key, e.to_string());
    let record = match RecordKind::ALL.into_iter().find(|k| k.as_str() == kind) {
        Some(RecordKind::Click) => Activity::Click(serde_dynamo::from_item(item).map_err(bad)?),
        Some(RecordKind::Lead) => Activity::Lead(serde_dynamo::from_item(item).map_err(bad)?),
        Some(RecordKind::Event) => Activity::Event(serde_dynamo::from_item(item).map_err(bad)?),
        Some(RecordKind::Merge) => Activity::Merge(serde_dynamo::from_item(item).map_err(bad)?),
        Some(RecordKind::Message) => Activity::Message(Box::new(message_from_item(item)?)),
        Some(RecordKind::Contact) => Activity::Contact(serde_dynamo::from_item(item).map_err(bad)?),
        None => return Err(corrupt(&key, format!("{kind} is not a timeline record"))),
    };
    Ok((position, record))
}

/// The `ExclusiveStartKey` that continues a recent list after `position`.
pub(super) fn feed_start_key(kind: RecordKind, position: &FeedPosition) -> Item {
    let mut start = key(keys::record_pk(kind, &position.id), kind.as_str());
    start.insert(keys::GSI2PK.into(), s(keys::feed_pk(kind, utc_day(position.at))));
    start.insert(keys::GSI2SK.into(), s(keys::feed_sk(position.at, &position.id)));
    start
}

pub(super) fn message_item(m: &Message) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(m).map_err(|e| StoreError::Rejected(e.to_string()))?;
    item.extend(key(keys::customer_pk(&m.customer_id), &keys::message_sk(&m.message_id)));
    item.insert(keys::ENTITY.into(), s(entity::MESSAGE));
    item.insert(keys::GSI1PK.into(), s(keys::customer_pk(&m.customer_id)));
    item.insert(
        keys::GSI1SK.into(),
        s(keys::timeline_sk(m.created_at, RecordKind::Message, &m.message_id)),
    );
    item.insert(
        keys::GSI2PK.into(),
        s(keys::feed_pk(RecordKind::Message, utc_day(m.created_at))),
    );
    item.insert(keys::GSI2SK.into(), s(keys::feed_sk(m.created_at, &m.message_id)));
    if !m.status.is_terminal() {
        item.insert(keys::GSI3PK.into(), s(keys::due_pk(keys::due_shard(&m.message_id))));
        item.insert(keys::GSI3SK.into(), s(keys::due_sk(m.due_at, &m.message_id)));
    }
    Ok(item)
}

pub(super) fn message_from_item(item: Item) -> Result<Message, StoreError> {
    let key = opt_string(&item, keys::SK).unwrap_or_default();
    serde_dynamo::from_item(item).map_err(|e| corrupt(&key, e.to_string()))
}

/// The attribute holding a document's value (definitions, settings, templates): nested, so
/// the value's own fields never meet the item's keys.
const DOCUMENT: &str = "document";

pub(super) fn document_item<T: Serialize>(
    value: &T,
    pk: String,
    sk: &str,
    entity_type: &str,
) -> Result<Item, StoreError> {
    let doc = doc(value)?;
    let mut item = key(pk, sk);
    item.insert(keys::ENTITY.into(), s(entity_type));
    item.insert(DOCUMENT.into(), doc);
    Ok(item)
}

pub(super) fn document_from_item<T: serde::de::DeserializeOwned>(item: &Item, key: &str) -> Result<T, StoreError> {
    let doc = item
        .get(DOCUMENT)
        .cloned()
        .ok_or_else(|| corrupt(key, "missing document"))?;
    serde_dynamo::from_attribute_value(doc).map_err(|e| corrupt(key, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::input::Names;
    use crm_core::profile::Touch;
    use crm_core::values::{ClickId, Email};
    use time::macros::datetime;

    #[test]
    fn profiles_round_trip_through_items() {
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        let touch = Touch {
            identifiers: vec![
                Identifier::ClickId(ClickId::parse("c1").unwrap()),
                Identifier::Email(Email::parse("a@b.co").unwrap()),
            ],
            brand: Brand::parse("rushbet").unwrap(),
            milestone: Milestone::FirstDeposit,
            names: Names {
                first: Some("Juan".into()),
                last: Some("Pérez".into()),
            },
            revenue: Some((Currency::parse("USD").unwrap(), Money::parse("100.25").unwrap())),
            facts: Facts {
                consent: Some(true),
                timezone: Some(ZoneName::parse("America/Lima").unwrap()),
                exclusion: Some(ExclusionChange::Excluded(
                    crm_core::compliance::ExclusionKind::CoolingOff,
                )),
                source: "postback",
            },
            test: true,
            via: Some(crm_core::source::SourceKind::Operator),
            at: datetime!(2026-11-22 10:00:00.123 UTC),
        };
        let mut p = Profile::new(id.clone(), &touch);
        p.apply(&Touch {
            facts: Facts {
                exclusion: Some(ExclusionChange::Reactivated),
                ..Facts::default()
            },
            ..Touch::new(
                vec![],
                touch.brand.clone(),
                Milestone::Touched,
                touch.at + time::Duration::days(1),
            )
        });
        assert_eq!(p.consents.len(), 2);
        assert!(p.exclusions.values().all(|e| e.reactivated_at.is_some()));
        p.merged_from
            .insert(CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a11").unwrap());
        let back = profile_from_item(&profile_item(&p).unwrap(), "k").unwrap();
        assert_eq!(back, p);
    }
}
