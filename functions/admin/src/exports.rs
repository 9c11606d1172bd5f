//! Exports: `GET /api/exports/{customers|clicks|leads|events|messages}?from=&to=&format=csv|jsonl
//! &includePii=&limit=&cursor=`. Every record created in the period, oldest first, walking
//! the day index (one query per day and page, never a scan). A page holds at most `limit`
//! records (API Gateway caps a response at 6 MB); the next page's cursor is in the
//! `X-Next-Cursor` header, absent on the last page. Records are those received in the
//! period (a late postback is in the export of the day it arrived).
//! What `crm_core::personal` defines as personal for each kind (emails, phones, names, IP
//! addresses, device ids, user agents, operator user ids, tracker sub-ids, URLs) is masked
//! or redacted unless `includePii=true`, which is in the audit log with the authenticated actor who asked.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_core::records::{Activity, RecordKind};
use crm_core::values::Invalid;
use crm_http::{ApiError, ApiPath, ApiQuery, AppState};
use crm_store::FeedPosition;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::{Date, OffsetDateTime};

use crate::reports::period;
use crate::{decode_cursor, encode_cursor, field_error};

const DEFAULT_LIMIT: i32 = 1000;
const MAX_LIMIT: i32 = 2000;

/// What can be exported, and the CSV columns of each (nested fields as `a.b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Customers,
    Records(RecordKind),
}

impl Kind {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "customers" => Self::Customers,
            "clicks" => Self::Records(RecordKind::Click),
            "leads" => Self::Records(RecordKind::Lead),
            "events" => Self::Records(RecordKind::Event),
            "messages" => Self::Records(RecordKind::Message),
            _ => return None,
        })
    }

    fn columns(self) -> &'static [&'static str] {
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
    fn entity(self) -> &'static str {
        match self {
            Self::Customers => "CUSTOMER",
            Self::Records(kind) => kind.as_str(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Records(RecordKind::Click) => "clicks",
            Self::Records(RecordKind::Lead) => "leads",
            Self::Records(RecordKind::Event) => "events",
            Self::Records(_) => "messages",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    tz: Option<String>,
    format: Option<String>,
    include_pii: Option<String>,
    limit: Option<i32>,
    cursor: Option<String>,
}

/// Where the next page starts: a UTC day, after a record of it (or at its start).
#[derive(Serialize, Deserialize)]
struct Cursor {
    day: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<FeedPosition>,
}

pub async fn export(
    State(state): State<AppState>,
    ApiPath(kind): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind).ok_or(ApiError::NotFound)?;
    let csv = match q.format.as_deref() {
        None | Some("csv") => true,
        Some("jsonl") => false,
        Some(_) => {
            return Err(field_error(
                "format",
                Invalid::new("invalid_value", "must be csv or jsonl"),
            ));
        }
    };
    let include_pii = match q.include_pii.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(field_error(
                "includePii",
                Invalid::new("invalid_value", "must be true or false"),
            ));
        }
    };
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(field_error(
                "limit",
                Invalid::new("out_of_range", format!("limit must be between 1 and {MAX_LIMIT}")),
            ));
        }
    };
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let cursor: Option<Cursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    if include_pii {
        // Who asked is in the audit log; the log line names no one.
        tracing::warn!(export = kind.name(), "export with personal data");
    }

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
                let (profiles, more) = state.store.customers_after(day, after.as_ref(), want).await?;
                let page = profiles
                    .iter()
                    .map(|p| (p.created_at, p.id.to_string(), (!p.test).then(|| customer_json(p))))
                    .collect();
                (page, more)
            }
            Kind::Records(k) => {
                let (records, more) = state.store.records_after(k, day, after.as_ref(), want).await?;
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
    let body = if csv {
        to_csv(kind.columns(), &rows)
    } else {
        to_jsonl(&rows)
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    let (content_type, extension) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let filename = format!("{}-{}-{}.{extension}", kind.name(), period.from, period.to);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(c) = next {
        if let Ok(v) = HeaderValue::from_str(&encode_cursor(&c)) {
            h.insert("x-next-cursor", v);
        }
    }
    Ok(response)
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

fn to_csv(columns: &[&str], rows: &[Value]) -> String {
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

fn to_jsonl(rows: &[Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}
