//! The daily report's content: yesterday's totals per brand and the top influencers, as the
//! reports API computes them, rendered as an email. The daily-report function claims the
//! day and sends it.

use crm_core::attribution::Model;
use crm_core::stats::{Dimension, GroupBy, Period};
use crm_store::{Store, StoreError};
use serde_json::{Map, Value};
use time::Date;

use crate::config::Reporting;
use crate::reports::{Request, figures, rates, totals};

/// How many influencers the report lists.
pub const TOP_INFLUENCERS: usize = 10;

/// Figures of one day grouped by `dimension`, as the reports API computes them.
async fn rows(
    store: &Store,
    reporting: &Reporting,
    dimension: Dimension,
    day: Date,
) -> Result<Vec<(String, Map<String, Value>)>, StoreError> {
    let request = Request {
        by: GroupBy::Dimension(dimension),
        period: Period {
            from: day,
            to: day,
            zone: reporting.zone.clone(),
        },
        brand: None,
        model: Model::LastTouch,
    };
    let fx = rates(store, &reporting.currency).await?;
    Ok(totals(store, &request)
        .await?
        .iter()
        .map(|(key, t)| (key.clone(), figures(t, &fx)))
        .collect())
}

/// The report of `day` in the reporting time zone: subject, HTML and text.
pub async fn content(store: &Store, reporting: &Reporting, day: Date) -> Result<(String, String, String), StoreError> {
    let brands = rows(store, reporting, Dimension::Brand, day).await?;
    let mut influencers: Vec<(String, Map<String, Value>)> = rows(store, reporting, Dimension::Influencer, day)
        .await?
        .into_iter()
        .filter(|(id, _)| !id.is_empty())
        .collect();
    let number = |row: &Map<String, Value>, field: &str| -> f64 {
        match row.get(field).unwrap_or(&Value::Null) {
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            Value::String(s) => s.parse().unwrap_or(0.0),
            _ => 0.0,
        }
    };
    influencers.sort_by(|a, b| {
        let key = |r: &Map<String, Value>| (number(r, "ftds"), number(r, "revenueConverted"), number(r, "clicks"));
        key(&b.1).partial_cmp(&key(&a.1)).unwrap_or(std::cmp::Ordering::Equal)
    });
    influencers.truncate(TOP_INFLUENCERS);
    let names: std::collections::BTreeMap<String, String> = store
        .influencers()
        .await?
        .into_iter()
        .map(|i| (i.influencer_id, i.name))
        .collect();
    for (id, row) in &mut influencers {
        if let Some(name) = names.get(id.as_str()) {
            row.insert("name".into(), Value::String(name.clone()));
        }
    }
    Ok(render(day, &reporting.zone.to_string(), &brands, &influencers))
}

const COLUMNS: [(&str, &str); 8] = [
    ("clicks", "Clicks"),
    ("leads", "Leads"),
    ("registrations", "Registrations"),
    ("ftds", "FTDs"),
    ("deposits", "Deposits"),
    ("revenue", "Revenue"),
    ("revenueConverted", "Converted"),
    ("attributionRate", "Attributed"),
];

fn cell(row: &Map<String, Value>, field: &str) -> String {
    match row.get(field).unwrap_or(&Value::Null) {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Object(by_currency) => {
            let parts: Vec<String> = by_currency
                .iter()
                .map(|(c, v)| format!("{} {c}", v.as_str().unwrap_or_default()))
                .collect();
            if parts.is_empty() { "0".into() } else { parts.join(", ") }
        }
        other => other.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Subject, HTML and text of the report. Pure: what the numbers are is the reports' job.
pub fn render(
    day: Date,
    zone: &str,
    brands: &[(String, Map<String, Value>)],
    influencers: &[(String, Map<String, Value>)],
) -> (String, String, String) {
    let subject = format!("CRM daily report {day}");
    let mut html = format!("<h1>{}</h1><p>Day {day} ({})</p>", escape(&subject), escape(zone));
    let mut text = format!("{subject}\nDay {day} ({zone})\n");
    for (title, first, rows) in [
        ("Brands", "Brand", brands),
        ("Top influencers", "Influencer", influencers),
    ] {
        html.push_str(&format!("<h2>{title}</h2>"));
        text.push_str(&format!("\n{title}\n"));
        if rows.is_empty() {
            html.push_str("<p>No activity.</p>");
            text.push_str("No activity.\n");
            continue;
        }
        html.push_str(&format!("<table border=\"1\" cellpadding=\"4\"><tr><th>{first}</th>"));
        for (_, label) in COLUMNS {
            html.push_str(&format!("<th>{label}</th>"));
        }
        html.push_str("</tr>");
        for (key, row) in rows {
            let name = row.get("name").and_then(Value::as_str).unwrap_or(key);
            html.push_str(&format!("<tr><td>{}</td>", escape(name)));
            let mut line = vec![name.to_owned()];
            for (field, label) in COLUMNS {
                let v = cell(row, field);
                html.push_str(&format!("<td>{}</td>", escape(&v)));
                line.push(format!("{label} {v}"));
            }
            html.push_str("</tr>");
            text.push_str(&format!("- {}\n", line.join(" · ")));
        }
        html.push_str("</table>");
    }
    (subject, html, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn the_report_names_each_row_and_escapes_what_it_shows() {
        let row = |v: Value| v.as_object().unwrap().clone();
        let brands = vec![(
            "rushbet".to_owned(),
            row(
                json!({"clicks": 3, "leads": 1, "ftds": 1, "revenue": {"USD": "100.5"}, "revenueConverted": "100.50", "attributionRate": "1"}),
            ),
        )];
        let influencers = vec![("inf<1>".to_owned(), row(json!({"clicks": 2})))];
        let (subject, html, text) = render(date!(2026 - 11 - 21), "America/Lima", &brands, &influencers);
        assert_eq!(subject, "CRM daily report 2026-11-21");
        assert!(html.contains("<td>rushbet</td>") && html.contains("<td>100.5 USD</td>"));
        assert!(html.contains("inf&lt;1&gt;"), "{html}");
        assert!(text.contains("- rushbet · Clicks 3 · Leads 1"));
        let (_, empty, _) = render(date!(2026 - 11 - 21), "UTC", &[], &[]);
        assert!(empty.contains("No activity."));
    }
}
