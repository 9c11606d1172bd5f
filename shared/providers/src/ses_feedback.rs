//! SES's notifications about a message it accepted, as SES publishes them to SNS: from a
//! configuration set's event destination (`eventType`) or an identity's feedback topic
//! (`notificationType`); both have the same `bounce`/`complaint`/`delivery` and `mail`
//! objects. A configuration set also reports `Reject` (SES refused to send it, e.g. a
//! virus) and `Rendering Failure` (an SES template failed to render).

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
    /// The receiving mail server accepted the message.
    Delivery,
    /// SES did not send it after all (`Reject`, `Rendering Failure`): why, as SES says.
    Failure {
        rendering: bool,
        reason: String,
    },
    /// Sends, opens, clicks…: nothing to do.
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
    delivery: Option<RawDelivery>,
    reject: Option<RawReject>,
    failure: Option<RawFailure>,
    mail: RawMail,
}

#[derive(Deserialize)]
struct RawDelivery {
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct RawReject {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFailure {
    #[serde(default)]
    error_message: String,
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
        ("Delivery", _, _) => (
            Feedback::Delivery,
            String::new(),
            raw.delivery.and_then(|d| d.timestamp),
        ),
        ("Reject", _, _) => (
            Feedback::Failure {
                rendering: false,
                reason: raw.reject.map(|r| r.reason).unwrap_or_default(),
            },
            String::new(),
            None,
        ),
        ("Rendering Failure", _, _) => (
            Feedback::Failure {
                rendering: true,
                reason: raw.failure.map(|f| f.error_message).unwrap_or_default(),
            },
            String::new(),
            None,
        ),
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
        let send = r#"{"eventType":"Send","mail":{"messageId":"ses-3"},"send":{}}"#;
        assert_eq!(parse(send).unwrap().feedback, Feedback::Other("Send".into()));
        assert!(parse(r#"{"eventType":"Bounce","mail":{"messageId":"x"}}"#).is_err());
        assert!(parse("nope").is_err());
    }

    /// The samples of SES's documentation ("Examples of event data that Amazon SES
    /// publishes to Amazon SNS"), cut to the fields read.
    #[test]
    fn deliveries_rejects_and_rendering_failures_parse() {
        let delivery = r#"{"eventType":"Delivery","mail":{"timestamp":"2016-10-19T23:20:52.240Z","messageId":"EXAMPLE7c191be45",
            "tags":{"crm_message":["msg_1"]}},"delivery":{"timestamp":"2016-10-19T23:21:04.133Z","processingTimeMillis":11893,
            "recipients":["recipient@example.com"],"smtpResponse":"250 2.6.0 Message received","reportingMTA":"mta.example.com"}}"#;
        let n = parse(delivery).unwrap();
        assert_eq!(n.feedback, Feedback::Delivery);
        assert_eq!(n.timestamp.as_deref(), Some("2016-10-19T23:21:04.133Z"));
        let identity = r#"{"notificationType":"Delivery","mail":{"messageId":"m"},"delivery":{"timestamp":"2016-01-27T14:59:38.237Z"}}"#;
        assert_eq!(parse(identity).unwrap().feedback, Feedback::Delivery);
        let reject = r#"{"eventType":"Reject","mail":{"messageId":"m"},"reject":{"reason":"Bad content"}}"#;
        assert_eq!(
            parse(reject).unwrap().feedback,
            Feedback::Failure {
                rendering: false,
                reason: "Bad content".into()
            }
        );
        let rendering = r#"{"eventType":"Rendering Failure","mail":{"messageId":"m"},
            "failure":{"errorMessage":"Attribute 'attributeName' is not present in the rendering data.","templateName":"MyTemplate"}}"#;
        assert_eq!(
            parse(rendering).unwrap().feedback,
            Feedback::Failure {
                rendering: true,
                reason: "Attribute 'attributeName' is not present in the rendering data.".into()
            }
        );
    }
}
