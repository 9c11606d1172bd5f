//! Exports: `GET /api/exports/{customers|clicks|leads|events|messages}?from=&to=&format=csv|jsonl
//! &includePii=&limit=&cursor=`. Every record created in the period, oldest first, walking
//! the day index (one query per day and page, never a scan). A page holds at most `limit`
//! records (API Gateway caps a response at 6 MB); the next page's cursor is in the
//! `X-Next-Cursor` header, absent on the last page. Records are those received in the
//! period (a late postback is in the export of the day it arrived).
//! What `crm_core::personal` defines as personal for each kind (emails, phones, names, IP
//! addresses, device ids, user agents, operator user ids, tracker sub-ids, URLs) is masked
//! or redacted unless `includePii=true`, which is in the audit log with the authenticated actor who asked.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_app::exports;
use crm_core::values::Invalid;
use crm_http::{ApiError, ApiPath, ApiQuery, AppState};
use serde::Deserialize;

use crate::reports::period;
use crate::{decode_cursor, encode_cursor, field_error};

const DEFAULT_LIMIT: i32 = 1000;
const MAX_LIMIT: i32 = 2000;

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

pub async fn export(
    State(state): State<AppState>,
    ApiPath(kind): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let kind = exports::Kind::parse(&kind).ok_or(ApiError::NotFound)?;
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
    let cursor: Option<exports::Cursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    if include_pii {
        // Who asked is in the audit log; the log line names no one.
        tracing::warn!(export = kind.name(), "export with personal data");
    }

    let (rows, next) = exports::page(&state.store, kind, &period, cursor, limit, include_pii).await?;
    let body = if csv {
        exports::to_csv(kind.columns(), &rows)
    } else {
        exports::to_jsonl(&rows)
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
