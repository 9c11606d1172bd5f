//! What is personal, defined once per kind of record. Erasure removes these attributes,
//! exports mask them unless `includePii=true`, and the counters keyed by a person's
//! tracker sub-ids are moved out of those keys. Log lines never carry any of them: they
//! name records and customers by id (free text from dependencies goes through
//! `values::redact_personal`).

use serde_json::Value;

use crate::message::Status;
use crate::stats::{CountedRow, Delta, reversal};
use crate::values::{mask, redact_personal};

/// How an export without personal data shows an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// An identifier, a name, an address, a user agent: `a***@example.com`, `J***`.
    Masked,
    /// Free text that may hold an address (a URL, a tracker's sub-id, a provider's error):
    /// what looks like an email or a phone number is redacted, the rest kept.
    Redacted,
}

/// The personal attributes of each entity (`entityType`), as stored and as exported;
/// `CUSTOMER` is a customer as exports show it.
pub fn fields(entity: &str) -> &'static [(&'static str, Shown)] {
    use Shown::{Masked, Redacted};
    match entity {
        "CLICK" => &[
            ("ip", Masked),
            ("clientIp", Masked),
            ("userAgent", Masked),
            ("deviceId", Masked),
            ("referrer", Redacted),
            ("landingPage", Redacted),
            ("subs", Redacted),
            ("params", Masked),
            ("unlistedIdentifiers", Masked),
            ("attribution.subs", Redacted),
            ("attribution.touches", Masked),
        ],
        "LEAD" => &[
            ("email", Masked),
            ("phone", Masked),
            ("deviceId", Masked),
            ("firstName", Masked),
            ("lastName", Masked),
            ("clientIp", Masked),
            ("unlistedIdentifiers", Masked),
            ("attribution.subs", Redacted),
            ("attribution.touches", Masked),
        ],
        "EVENT" => &[
            ("userId", Masked),
            ("clientIp", Masked),
            ("unlistedIdentifiers", Masked),
            ("attribution.subs", Redacted),
            ("attribution.touches", Masked),
        ],
        "MERGE" => &[("absorbedIdentifiers", Masked)],
        "MESSAGE" => &[
            ("to", Masked),
            ("subject", Masked),
            ("body", Masked),
            ("error", Redacted),
        ],
        "CONTACT" => &[("address", Masked), ("previous", Masked)],
        "CUSTOMER" => &[
            ("firstName", Masked),
            ("lastName", Masked),
            ("emails", Masked),
            ("phones", Masked),
            ("deviceIds", Masked),
            ("userIds", Masked),
        ],
        _ => &[],
    }
}

fn show(v: &mut Value, how: Shown) {
    match v {
        Value::String(s) => {
            *s = match how {
                Shown::Masked => mask(s),
                Shown::Redacted => redact_personal(s),
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| show(i, how)),
        Value::Object(o) => o.values_mut().for_each(|i| show(i, how)),
        _ => {}
    }
}

/// A record of `entity` as JSON, its personal attributes (`a.b`: `b` inside `a`) masked or
/// redacted.
pub fn mask_record(entity: &str, record: &mut Value) {
    for (field, how) in fields(entity) {
        let mut at = Some(&mut *record);
        for part in field.split('.') {
            at = at.and_then(|v| v.as_object_mut()).and_then(|o| o.get_mut(part));
        }
        if let Some(v) = at {
            show(v, *how);
        }
    }
}

/// Every kind of record `fields` knows.
const ENTITIES: [&str; 7] = ["CLICK", "LEAD", "EVENT", "MERGE", "MESSAGE", "CONTACT", "CUSTOMER"];

/// How any attribute of that name is shown without personal data: the last part of each
/// of `fields`' paths, over every kind of record.
fn shown_by_name(name: &str) -> Option<Shown> {
    ENTITIES
        .iter()
        .flat_map(|e| fields(e).iter())
        .find(|(path, _)| path.rsplit('.').next() == Some(name))
        .map(|(_, how)| *how)
}

/// Identifier kinds that name a person (a click id does not).
const PERSONAL_IDENTIFIERS: [&str; 4] = ["EMAIL", "PHONE", "DEVICE_ID", "USER_ID"];

/// Any answer of the admin API as a reader without access to personal data (an analyst)
/// sees it: every attribute `fields` names, wherever it appears, masked or redacted, and
/// the value of every personal identifier (`{"type": "EMAIL", "value": …}`).
pub fn mask_personal(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(mask_personal),
        Value::Object(o) => {
            let personal_identifier = o
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| PERSONAL_IDENTIFIERS.contains(&t));
            for (name, value) in o.iter_mut() {
                // Who on the staff did something (a contact change's `by`) is a person too.
                let staff = name == "by";
                match shown_by_name(name).or(staff.then_some(Shown::Masked)) {
                    Some(how) => show(value, how),
                    None if personal_identifier && name == "value" => show(value, Shown::Masked),
                    None => mask_personal(value),
                }
            }
        }
        _ => {}
    }
}

/// Whether an attribute name holds a tracker sub-id value: the per-customer "seen" markers
/// are named `sub<N>#<brand>#<value>`.
fn names_a_sub_id(attribute: &str) -> bool {
    attribute
        .strip_prefix("sub")
        .and_then(|rest| rest.split_once('#'))
        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// What erasure does to one item of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scrub {
    /// Nothing personal on it.
    Keep,
    /// Delete the item (a dormancy timer would move an erased customer's journey).
    Delete,
    /// Remove these attributes, each a path (`["attribution", "subs"]`: `subs` inside the
    /// map `attribution`); `cancel_from`: cancel the message if it is still in this status
    /// (a pending message of an erased person never goes).
    Remove {
        attributes: Vec<Vec<String>>,
        cancel_from: Option<Status>,
    },
}

/// Erasure's decision for an item of `entity` with the top-level attributes `present` (and,
/// for a message, its `status`).
pub fn scrub(entity: &str, present: &[&str], status: Option<Status>) -> Scrub {
    // A dormancy timer, and a name's entry in the customer search: nothing to keep.
    if entity == "ADVANCE_TIMER" || entity == "NAME" {
        return Scrub::Delete;
    }
    let mut attributes: Vec<Vec<String>> = fields(entity)
        .iter()
        .map(|(f, _)| f.split('.').map(str::to_owned).collect::<Vec<_>>())
        .filter(|path| present.contains(&path[0].as_str()))
        .collect();
    if entity == "SEEN" {
        attributes.extend(
            present
                .iter()
                .filter(|a| names_a_sub_id(a))
                .map(|a| vec![(*a).to_owned()]),
        );
    }
    let cancel_from = status.filter(|s| entity == "MESSAGE" && s.is_cancellable());
    if attributes.is_empty() && cancel_from.is_none() {
        Scrub::Keep
    } else {
        Scrub::Remove {
            attributes,
            cancel_from,
        }
    }
}

/// The value counters keyed by an erased person's sub-ids move to.
pub const ERASED_VALUE: &str = "(erased)";

/// The counter moves that take an erased person's record out of the rows keyed by its
/// tracker sub-ids (`sub1` … `sub10`): what it counted there taken back, and counted under
/// `ERASED_VALUE` instead, so totals stay and no row is keyed by the person's values.
pub fn sub_id_moves(rows: &[CountedRow]) -> Vec<Delta> {
    let keyed: Vec<Delta> = rows
        .iter()
        .filter(|r| r.dimension.starts_with("sub") && r.value != ERASED_VALUE)
        .filter_map(CountedRow::delta)
        .collect();
    let mut moves = reversal(&keyed);
    moves.extend(keyed.into_iter().map(|mut d| {
        d.row.value = ERASED_VALUE.to_owned();
        d
    }));
    moves
}

/// A record's `countedRows` after `sub_id_moves`: its sub-id rows keyed `ERASED_VALUE`.
pub fn erased_rows(rows: &[CountedRow]) -> Vec<CountedRow> {
    rows.iter()
        .map(|r| CountedRow {
            value: if r.dimension.starts_with("sub") {
                ERASED_VALUE.to_owned()
            } else {
                r.value.clone()
            },
            ..r.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_analyst_sees_no_persons_details_anywhere_in_an_answer() {
        let mut answer = serde_json::json!({
            "customerId": "c1",
            "firstName": "Ana",
            "identifiers": [
                {"type": "EMAIL", "value": "ana@example.com", "primary": true},
                {"type": "CLICK_ID", "value": "rt_1"}
            ],
            "items": [{"clickId": "rt_1", "ip": "203.0.113.9", "landingPage": "https://lp/?email=ana@example.com",
                       "attribution": {"subs": {"sub1": "ana@example.com"}}},
                      {"type": "contact", "by": "ana@example.com"}]
        });
        mask_personal(&mut answer);
        let text = answer.to_string();
        assert!(
            !text.contains("ana@example.com") && !text.contains("Ana\"") && !text.contains("203.0.113.9"),
            "{text}"
        );
        assert_eq!(answer["identifiers"][1]["value"], "rt_1", "a click id is not a person");
        assert_eq!(answer["customerId"], "c1");
        assert_eq!(answer["identifiers"][0]["primary"], true);
    }

    #[test]
    fn exports_mask_identifiers_and_redact_free_text_of_every_kind() {
        let mut click = json!({"clickId": "c1", "deviceId": "dev-123", "userAgent": "Mozilla/5.0", "ip": "203.0.113.9",
            "subs": {"sub1": "ana@example.com", "sub2": "carlos-gaming"}, "landingPage": "https://x.test/?e=ana@example.com"});
        mask_record("CLICK", &mut click);
        assert_eq!(click["clickId"], "c1");
        assert_eq!(click["deviceId"], "d***");
        assert_eq!(click["userAgent"], "M***");
        assert_eq!(click["subs"]["sub1"], "<redacted>");
        assert_eq!(click["subs"]["sub2"], "carlos-gaming");
        assert!(!click["landingPage"].as_str().unwrap().contains("ana@"));
        let mut event = json!({"eventId": "e1", "userId": "op-991", "amount": "50"});
        mask_record("EVENT", &mut event);
        assert_eq!(
            (event["userId"].as_str(), event["amount"].as_str()),
            (Some("o***"), Some("50"))
        );
        let mut customer = json!({"deviceIds": ["dev-1"], "userIds": ["rushbet:991"], "clickIds": ["c1"]});
        mask_record("CUSTOMER", &mut customer);
        assert_eq!(
            customer,
            json!({"deviceIds": ["d***"], "userIds": ["r***"], "clickIds": ["c1"]})
        );
    }

    #[test]
    fn erasure_removes_what_is_personal_and_cancels_what_has_not_gone() {
        assert_eq!(
            scrub("CLICK", &["ip", "subs", "clickId", "attribution"], None),
            Scrub::Remove {
                attributes: [
                    &["ip"][..],
                    &["subs"],
                    &["attribution", "subs"],
                    &["attribution", "touches"]
                ]
                .iter()
                .map(|p| p.iter().map(|s| s.to_string()).collect())
                .collect(),
                cancel_from: None
            }
        );
        assert_eq!(scrub("COUNTERS", &["value", "clicks@10"], None), Scrub::Keep);
        assert_eq!(scrub("ADVANCE_TIMER", &[], None), Scrub::Delete);
        assert_eq!(scrub("NAME", &["customerId"], None), Scrub::Delete);
        assert_eq!(
            scrub("MESSAGE", &["to"], Some(Status::Pending)),
            Scrub::Remove {
                attributes: vec![vec!["to".into()]],
                cancel_from: Some(Status::Pending)
            }
        );
        assert_eq!(scrub("MESSAGE", &[], Some(Status::Sent)), Scrub::Keep);
        // The seen markers named by a sub-id's value.
        assert_eq!(
            scrub(
                "SEEN",
                &["sub1#rushbet#ana@example.com", "brand#rushbet#rushbet", "subscribe"],
                None
            ),
            Scrub::Remove {
                attributes: vec![vec!["sub1#rushbet#ana@example.com".into()]],
                cancel_from: None
            }
        );
    }

    #[test]
    fn counters_keyed_by_sub_ids_move_to_the_erased_row_and_keep_their_totals() {
        let row = |dimension: &str, value: &str| CountedRow {
            dimension: dimension.into(),
            brand: "rushbet".into(),
            value: value.into(),
            day: time::macros::date!(2026 - 12 - 01),
            hour: 10,
            metrics: [("clicks".to_owned(), rust_decimal::Decimal::ONE)].into(),
        };
        let moves = sub_id_moves(&[
            row("sub1", "ana@example.com"),
            row("influencer", "inf_1"),
            row("sub2", ERASED_VALUE),
        ]);
        assert_eq!(moves.len(), 2);
        assert_eq!(moves[0].row.value, "ana@example.com");
        assert!(moves[0].metrics.values().all(|v| v.is_sign_negative()));
        assert_eq!(moves[1].row.value, ERASED_VALUE);
        assert!(moves[1].metrics.values().all(|v| v.is_sign_positive()));
    }
}
