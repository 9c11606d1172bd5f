//! Exports: every record (or customer) created in a period, oldest first, walking the day
//! index (one query per day and page, never a scan), a page of at most `limit` rows at a
//! time with the cursor of the next. What `crm_core::personal` defines as personal for each
//! kind is masked unless the caller may and asks to see it. The admin API's
//! `GET /api/exports/{kind}` and the console's downloads are this one walk.

use std::collections::BTreeMap;

use crm_core::records::{Activity, RecordKind};
use crm_core::stats::Period;
use crm_store::{FeedPosition, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::{Date, OffsetDateTime};

/// What can be exported, and the CSV columns of each (nested fields as `a.b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customers,
    Records(RecordKind),
}

impl Kind {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "customers" => Self::Customers,
            "clicks" => Self::Records(RecordKind::Click),
            "leads" => Self::Records(RecordKind::Lead),
            "events" => Self::Records(RecordKind::Event),
            "messages" => Self::Records(RecordKind::Message),
            _ => return None,
        })
    }

    pub fn columns(self) -> &'static [&'static str] {
        const ATTRIBUTION: [&str; 4] = [
            "attribution.clickId",
            "attribution.influencerId",
            "attribution.campaignId",
            "attribution.confidence",
        ];
        match self {
            Self::Customers => &[
                "customerId",
                "createdAt",
                "updatedAt",
                "firstName",
                "lastName",
                "emails",
                "phones",
                "clickIds",
                "deviceIds",
                "userIds",
                "revenue",
                "mergedFrom",
            ],
            Self::Records(RecordKind::Click) => &[
                "clickId",
                "customerId",
                "brand",
                "at",
                "influencerId",
                "campaign",
                "attribution.campaignId",
                "source",
                "medium",
                "subs.sub1",
                "subs.sub2",
                "subs.sub3",
                "subs.sub4",
                "subs.sub5",
                "subs.sub6",
                "subs.sub7",
                "subs.sub8",
                "subs.sub9",
                "subs.sub10",
                "subs.sub11",
                "subs.sub12",
                "subs.sub13",
                "subs.sub14",
                "subs.sub15",
                "subs.sub16",
                "subs.sub17",
                "subs.sub18",
                "subs.sub19",
                "subs.sub20",
                "params.cmpid",
                "params.ref_id",
                "params.utm_content",
                "params.utm_term",
                "params.fbclid",
                "params.gclid",
                "params.ttclid",
                "params.msclkid",
                "landingPage",
                "referrer",
                "deviceId",
                "ip",
                "userAgent",
            ],
            Self::Records(RecordKind::Lead) => {
                const LEAD: [&str; 15] = [
                    "leadId",
                    "customerId",
                    "brand",
                    "at",
                    "clickId",
                    "email",
                    "phone",
                    "firstName",
                    "lastName",
                    "deviceId",
                    "campaign",
                    ATTRIBUTION[0],
                    ATTRIBUTION[1],
                    ATTRIBUTION[2],
                    ATTRIBUTION[3],
                ];
                &LEAD
            }
            Self::Records(RecordKind::Event) => {
                const EVENT: [&str; 16] = [
                    "eventId",
                    "customerId",
                    "brand",
                    "at",
                    "occurredAt",
                    "eventType",
                    "amount",
                    "currency",
                    "transactionId",
                    "clickId",
                    "userId",
                    "counted.ftds",
                    ATTRIBUTION[0],
                    ATTRIBUTION[1],
                    ATTRIBUTION[2],
                    ATTRIBUTION[3],
                ];
                &EVENT
            }
            Self::Records(_) => &[
                "messageId",
                "customerId",
                "brand",
                "channel",
                "journeyType",
                "stage",
                "stepId",
                "templateId",
                "status",
                "reason",
                "createdAt",
                "dueAt",
                "sentAt",
                "provider",
                "providerMessageId",
                "to",
                "subject",
            ],
        }
    }

    /// The entity whose personal attributes `crm_core::personal` defines.
    pub fn entity(self) -> &'static str {
        match self {
            Self::Customers => "CUSTOMER",
            Self::Records(kind) => kind.as_str(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Records(RecordKind::Click) => "clicks",
            Self::Records(RecordKind::Lead) => "leads",
            Self::Records(RecordKind::Event) => "events",
            Self::Records(_) => "messages",
        }
    }
}

/// Where the next page starts: a UTC day, after a record of it (or at its start).
#[derive(Serialize, Deserialize)]
pub struct Cursor {
    pub day: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<FeedPosition>,
}

/// One page of an export: its rows (masked unless `include_pii`), and where the next starts.
pub async fn page(
    store: &Store,
    kind: Kind,
    period: &Period,
    cursor: Option<Cursor>,
    limit: i32,
    include_pii: bool,
) -> Result<(Vec<Value>, Option<Cursor>), StoreError> {
    let days: Vec<Date> = period.utc_days();
    let (mut day, mut after) = match cursor {
        Some(c) => (c.day, c.after),
        None => (days[0], None),
    };
    let last_day = *days.last().expect("a period has days");
    let mut rows: Vec<Value> = Vec::new();
    let mut next: Option<Cursor> = None;
    while day <= last_day {
        let want = limit - rows.len() as i32;
        // Voided records and test traffic are left out (as if they never came); they still
        // take their place in the walk.
        let (page, more): (Vec<(OffsetDateTime, String, Option<Value>)>, bool) = match kind {
            Kind::Customers => {
                let (profiles, more) = store.customers_after(day, after.as_ref(), want).await?;
                let page = profiles
                    .iter()
                    .map(|p| (p.created_at, p.id.to_string(), (!p.test).then(|| customer_json(p))))
                    .collect();
                (page, more)
            }
            Kind::Records(k) => {
                let (records, more) = store.records_after(k, day, after.as_ref(), want).await?;
                let page = records
                    .iter()
                    .map(|r| {
                        let row = (!r.is_voided() && !r.is_test()).then(|| record_json(r));
                        (r.at(), r.id().to_owned(), row)
                    })
                    .collect();
                (page, more)
            }
        };
        let last = page.last().map(|(at, id, _)| (*at, id.clone()));
        rows.extend(
            page.into_iter()
                .filter(|(at, _, _)| period.contains(*at))
                .filter_map(|(_, _, v)| v),
        );
        if more {
            // This day holds more: the next page starts after the last record read.
            let (at, id) = last.expect("a page with more has records");
            if rows.len() as i32 >= limit {
                next = Some(Cursor {
                    day,
                    after: Some(FeedPosition { at, id }),
                });
                break;
            }
            after = Some(FeedPosition { at, id });
            continue;
        }
        after = None;
        day = day.next_day().unwrap_or(Date::MAX);
        if rows.len() as i32 >= limit && day <= last_day {
            next = Some(Cursor { day, after: None });
            break;
        }
    }
    if !include_pii {
        for row in &mut rows {
            crm_core::personal::mask_record(kind.entity(), row);
        }
    }
    if !include_pii {
        for row in &mut rows {
            crm_core::personal::mask_record(kind.entity(), row);
        }
    }
    Ok((rows, next))
}

fn record_json(r: &Activity) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("type");
        // Bodies can hold anything the template put in them; exports leave them out, and
        // the clicks behind an attribution (up to 20) are in the clicks export.
        o.remove("body");
        if let Some(Value::Object(a)) = o.get_mut("attribution") {
            a.remove("touches");
        }
    }
    v
}

fn customer_json(p: &crm_core::profile::Profile) -> Value {
    let of = |kind: &str| -> Vec<String> {
        p.identifiers
            .iter()
            .filter(|i| i.kind().as_str() == kind)
            .map(|i| i.value())
            .collect()
    };
    json!({
        "customerId": p.id,
        "createdAt": crm_core::values::format_ts(p.created_at),
        "updatedAt": crm_core::values::format_ts(p.updated_at),
        "firstName": p.first_name,
        "lastName": p.last_name,
        "emails": of("EMAIL"),
        "phones": of("PHONE"),
        "clickIds": of("CLICK_ID"),
        "deviceIds": of("DEVICE_ID"),
        "userIds": of("USER_ID"),
        "revenue": p.revenue.iter().map(|(c, a)| (c.to_string(), a.to_string())).collect::<BTreeMap<_, _>>(),
        "mergedFrom": p.merged_from,
        "mergedInto": p.merged_into,
    })
}

/// Nested objects as dotted columns, arrays and objects left as JSON text.
fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

pub fn to_csv(columns: &[&str], rows: &[Value]) -> String {
    let mut out = crate::reports::csv_line(columns.iter().map(|c| c.to_string()));
    for row in rows {
        let mut flat = Map::new();
        flatten("", row, &mut flat);
        out.push_str(&crate::reports::csv_line(columns.iter().map(|c| {
            match flat.get(*c) {
                // An object column (revenue by currency): `USD 10; EUR 5`.
                None => {
                    let prefix = format!("{c}.");
                    flat.iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, v.as_str()?)))
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
                Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                    a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")
                }
                Some(other) => other.to_string(),
            }
        })));
    }
    out
}

pub fn to_jsonl(rows: &[Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}
