//! What the emulator "delivered": SES raw emails and SNS SMS, read back from moto's
//! `GET /moto-api/data.json` and parsed (MIME decoded), so tests assert on what a customer
//! would receive.

use serde_json::Value;

/// An email as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub headers: Vec<(String, String)>,
    pub raw: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn data() -> Value {
    let body =
        crm_local::emulator_get(crate::endpoint(), "/moto-api/data.json").expect("read the emulator's data.json");
    serde_json::from_str(&body).expect("data.json is JSON")
}

/// Every email the emulator's SES accepted for `to`, oldest first.
pub fn emails_to(to: &str) -> Vec<Received> {
    let data = data();
    data["ses"]["RawMessage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|m| m["destinations"].as_array().is_some_and(|d| d.iter().any(|a| a == to)))
        .map(|m| {
            let raw = m["raw_data"].as_str().unwrap_or_default().to_owned();
            let parsed = mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .expect("a MIME message");
            Received {
                from: m["source"].as_str().unwrap_or_default().to_owned(),
                to: m["destinations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect(),
                subject: parsed.subject().unwrap_or_default().to_owned(),
                text: parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: parsed.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
                headers: parsed
                    .headers_raw()
                    .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
                    .collect(),
                raw,
            }
        })
        .collect()
}

/// Every SMS text the emulator's SNS accepted for `phone` (E.164), oldest first.
pub fn sms_to(phone: &str) -> Vec<String> {
    data()["sns"]["SMS"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|m| m["phone_number"] == phone)
        .filter_map(|m| m["message"].as_str().map(str::to_owned))
        .collect()
}
