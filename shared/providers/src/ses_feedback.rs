//! SES bounce and complaint notifications, as SES publishes them to SNS: from a
//! configuration set's event destination (`eventType`) or an identity's feedback topic
//! (`notificationType`); both have the same `bounce`/`complaint` and `mail` objects.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What a notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// `permanent`: the address does not exist or refuses mail for good.
    Bounce {
        permanent: bool,
        recipients: Vec<String>,
    },
    Complaint {
        recipients: Vec<String>,
    },
    /// Deliveries, sends, opens…: nothing to do.
    Other(String),
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub feedback: Feedback,
    /// SES's id of the message (what `SendEmail` returned).
    pub ses_message_id: String,
    pub feedback_id: String,
    /// When it happened (RFC 3339, as SES writes it).
    pub timestamp: Option<String>,
    /// The message's tags (`crm_customer`, `crm_message`).
    pub tags: BTreeMap<String, Vec<String>>,
}

impl Notification {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.get(name).and_then(|v| v.first()).map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    event_type: Option<String>,
    notification_type: Option<String>,
    bounce: Option<RawBounce>,
    complaint: Option<RawComplaint>,
    mail: RawMail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    #[serde(default)]
    feedback_id: String,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawComplaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    #[serde(default)]
    feedback_id: String,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMail {
    message_id: String,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
}

/// Parses the SNS message body SES published.
pub fn parse(body: &str) -> Result<Notification, String> {
    let raw: Raw = serde_json::from_str(body).map_err(|e| format!("not an SES notification: {e}"))?;
    let kind = raw.event_type.or(raw.notification_type).unwrap_or_default();
    let addresses = |r: Vec<Recipient>| r.into_iter().map(|r| r.email_address).collect();
    let (feedback, feedback_id, timestamp) = match (kind.as_str(), raw.bounce, raw.complaint) {
        ("Bounce", Some(b), _) => (
            Feedback::Bounce {
                permanent: b.bounce_type == "Permanent",
                recipients: addresses(b.bounced_recipients),
            },
            b.feedback_id,
            b.timestamp,
        ),
        ("Complaint", _, Some(c)) => (
            Feedback::Complaint {
                recipients: addresses(c.complained_recipients),
            },
            c.feedback_id,
            c.timestamp,
        ),
        ("Bounce" | "Complaint", _, _) => return Err(format!("{kind} without its details")),
        (other, _, _) => (Feedback::Other(other.to_owned()), String::new(), None),
    };
    Ok(Notification {
        feedback,
        ses_message_id: raw.mail.message_id,
        feedback_id,
        timestamp,
        tags: raw.mail.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_and_complaints_of_both_formats_parse() {
        let bounce = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
            "bouncedRecipients":[{"emailAddress":"a@example.com"}],"timestamp":"2026-11-22T10:00:00.000Z","feedbackId":"f1"},
            "mail":{"messageId":"ses-1","tags":{"crm_message":["msg_1"]}}}"#;
        let n = parse(bounce).unwrap();
        assert_eq!(
            n.feedback,
            Feedback::Bounce {
                permanent: true,
                recipients: vec!["a@example.com".into()]
            }
        );
        assert_eq!(
            (n.ses_message_id.as_str(), n.tag("crm_message")),
            ("ses-1", Some("msg_1"))
        );
        let complaint = r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"b@example.com"}],"feedbackId":"f2"},"mail":{"messageId":"ses-2"}}"#;
        assert!(matches!(parse(complaint).unwrap().feedback, Feedback::Complaint { .. }));
        let delivery = r#"{"eventType":"Delivery","mail":{"messageId":"ses-3"}}"#;
        assert_eq!(parse(delivery).unwrap().feedback, Feedback::Other("Delivery".into()));
        assert!(parse(r#"{"eventType":"Bounce","mail":{"messageId":"x"}}"#).is_err());
        assert!(parse("nope").is_err());
    }
}
