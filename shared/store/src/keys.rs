//! Every key string and entity name of the single table, built here and nowhere else.
//!
//! | entity      | PK                       | SK        | GSI1 (timeline)                  | GSI2 (recent lists)          |
//! |-------------|--------------------------|-----------|----------------------------------|------------------------------|
//! | customer    | `CUSTOMER#<id>`          | `PROFILE` |                                  | `FEED#CUSTOMER#<day>` / `<ts>#<id>` |
//! | identifier  | `IDENT#<KIND>#<value>`   | `IDENT`   |                                  |                              |
//! | click       | `CLICK#<clickId>`        | `CLICK`   | `CUSTOMER#<id>` / `<ts>#CLICK#…` | `FEED#CLICK#<day>` / `<ts>#…`|
//! | lead        | `LEAD#<leadId>`          | `LEAD`    | `CUSTOMER#<id>` / `<ts>#LEAD#…`  | `FEED#LEAD#<day>` / `<ts>#…` |
//! | event       | `EVENT#<eventId>`        | `EVENT`   | `CUSTOMER#<id>` / `<ts>#EVENT#…` | `FEED#EVENT#<day>` / `<ts>#…`|
//! | merge       | `MERGE#<mergeId>`        | `MERGE`   | `CUSTOMER#<id>` / `<ts>#MERGE#…` |                              |
//! | dedupe      | `DEDUPE#<key>`           | `DEDUPE`  |                                  |                              |
//! | journey def.| `BRANDCFG#<brand>`       | `JOURNEY` |                                  |                              |
//! | settings    | `BRANDCFG#<brand>`       | `SETTINGS`|                                  |                              |
//! | message     | `CUSTOMER#<id>`          | `MESSAGE#<messageId>` | `CUSTOMER#<id>` / `<ts>#MESSAGE#…` | `FEED#MESSAGE#<day>` / `<ts>#…` |
//! | template    | `TEMPLATE#<templateId>`  | `TEMPLATE`|                                  | `TEMPLATES` / `<brand>#<channel>#<id>` |
//!
//! | advance timer | `CUSTOMER#<id>`       | `ADVANCE#<brand>` |                          |                              |
//! | send log    | `CUSTOMER#<id>`          | `SENDLOG#<channel>` |                        |                              |
//! | suppression | `SUPPRESS#<channel>#<addressHash>` | `SCOPE#<brand\|*>` |                | `SUPPRESSIONS#<channel>` / `<ts>#<hash>#<scope>` |
//! | transient bounces | `BOUNCES#<addressHash>` | `TRANSIENT` |                             |                              |
//! | erasure     | `ERASURE#<customerId>`   | `ERASURE` |                                  |                              |
//! | influencer  | `INFLUENCER#<id>`        | `INFLUENCER` |                               | `INFLUENCERS` / `<id>`       |
//! | campaign    | `CAMPAIGN#<id>`          | `CAMPAIGN` |                                 | `CAMPAIGNS` / `<id>`         |
//! | campaign name | `CAMPAIGN_NAME#<name>` | `CAMPAIGN_NAME` |                            |                              |
//! | name (search) | `CUSTOMER#<id>`      | `NAME#<name key>` |                         | `NAMES#<first 2 chars>` / `<name key>#<id>` |
//! | stage counted | `CUSTOMER#<id>`      | `STAGE#<brand>` |                           |                              |
//! | stage counts | `STAGES#<brand>`       | `COUNT`   |                                  |                              |
//! | counters    | `STATS#<dimension>#<month>` | `<day>#<brand>#<value>` |                   |                              |
//! | seen rows   | `CUSTOMER#<id>`          | `SEEN`    |                                  |                              |
//! | FX rates    | `CONFIG#FX`              | `RATES`   |                                  |                              |
//! | daily report| `REPORT#<day>`           | `DAILY`   |                                  |                              |
//! | source      | `SOURCE#<id>`            | `SOURCE`  |                                  | `SOURCES` / `<id>#SOURCE`    |
//! | source key  | `SOURCEKEY#<sha256>`     | `SOURCEKEY` |                                | `SOURCES` / `<id>#KEY#<last4>` |
//! | signature   | `SIGNATURE#<source>#<digest>` | `SIGNATURE` |                           |                              |
//! | contact change | `CONTACT#<changeId>`  | `CONTACT` | `CUSTOMER#<id>` / `<ts>#CONTACT#…` |                              |
//! | sending limit | `LIMIT#<brand>#<name>` | `<UTC day or hour>` |                       |                              |
//! | confirmation | `CONFIRM#<channel>#<addressHash>` | `<brand>` |                        |                              |
//! | tracked link | `LINK#<code>`         | `LINK`    |                                  | `LINKS` / `<code>`           |
//! | import cursor | `IMPORT#<sourceId>`   | `CURSOR`  |                                  |                              |
//! | user        | `USER#<id>`              | `USER`    |                                  | `USERS` / `<email>`          |
//! | user email  | `USEREMAIL#<email>`      | `USEREMAIL` |                                |                              |
//! | session     | `SESSION#<sha256>`       | `SESSION` | `USER#<id>` / `SESSION#<ts>#…`   |                              |
//! | user key    | `USERKEY#<sha256>`       | `USERKEY` | `USER#<id>` / `KEY#<last4>`      |                              |
//! | audit line  | `AUDIT#<day>`            | `<ts>#<id>` |                                |                              |
//! | login attempts | `LOGIN#<account\|ip>#<…>` | `<window start>` |                     |                              |
//!
//! Profile compliance attributes: `consent#<brand>#<channel>`, `exclusion#<brand>`,
//! `reactivated#<brand>`, `timezone`; contact points: `contact#<KIND>#<value>` (where an
//! address came from), `firstContact#<channel>` and `chosenContact#<channel>` (the
//! candidates for the channel's primary). Addresses in suppression keys are keyed hashes
//! (`crm_core::unsubscribe`), never plaintext.
//!
//! GSI3 (due work, sparse): `DUE#<shard>` / `<ts>#<messageId>` for messages that are not
//! final (the due time while `PENDING`, the lease expiry while `QUEUED` or `SENDING`), and
//! `ADV#<shard>` / `<ts>#<customerId>#<brand>` for advance timers (when the customer goes
//! dormant unless a deposit comes first).
//!
//! Dedupe keys: `TXN#<operator>#<transactionId>`, `SRCTXN#<sourceId>#<transactionId>` (a
//! source bound to no brand), `FP#<hash>` (postbacks), `LEADFP#<hash>`.

use crm_core::compliance::Scope;
use crm_core::definition::Channel;
use crm_core::identity::Identifier;
use crm_core::plan::DedupeKey;
use crm_core::records::RecordKind;
use crm_core::stats::{Dimension, Metric, Row};
use crm_core::values::{Brand, CustomerId, format_ts};
use time::{Date, OffsetDateTime};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const GSI3: &str = "GSI3";
pub const GSI3PK: &str = "GSI3PK";
pub const GSI3SK: &str = "GSI3SK";
/// The table's TTL attribute (epoch seconds).
pub const TTL: &str = "removeAt";
/// Every item says what it is.
pub const ENTITY: &str = "entityType";

pub const PROFILE_SK: &str = "PROFILE";
pub const IDENT_SK: &str = "IDENT";
pub const DEDUPE_SK: &str = "DEDUPE";
pub const JOURNEY_SK: &str = "JOURNEY";
pub const SETTINGS_SK: &str = "SETTINGS";
pub const TEMPLATE_SK: &str = "TEMPLATE";
/// The one partition (GSI2) listing every template; templates are few.
pub const TEMPLATES_LIST: &str = "TEMPLATES";
/// Partitions of the due index, so one busy minute is not one hot key.
pub const DUE_SHARDS: u8 = 8;
/// Read by the health check; never written.
pub const HEALTH_PK: &str = "HEALTH";

/// `entityType` values; records use their `RecordKind` name.
pub mod entity {
    pub const CUSTOMER: &str = "CUSTOMER";
    pub const IDENTIFIER: &str = "IDENTIFIER";
    pub const DEDUPE: &str = "DEDUPE";
    pub const INFLUENCER: &str = "INFLUENCER";
    pub const CAMPAIGN: &str = "CAMPAIGN";
    pub const CAMPAIGN_NAME: &str = "CAMPAIGN_NAME";
    pub const COUNTERS: &str = "COUNTERS";
    pub const SEEN: &str = "SEEN";
    pub const FX_RATES: &str = "FX_RATES";
    pub const DAILY_REPORT: &str = "DAILY_REPORT";
    pub const JOURNEY_DEFINITION: &str = "JOURNEY_DEFINITION";
    pub const BRAND_SETTINGS: &str = "BRAND_SETTINGS";
    pub const MESSAGE: &str = "MESSAGE";
    pub const TEMPLATE: &str = "TEMPLATE";
    pub const ADVANCE_TIMER: &str = "ADVANCE_TIMER";
    pub const SEND_LOG: &str = "SEND_LOG";
    pub const SUPPRESSION: &str = "SUPPRESSION";
    pub const TRANSIENT_BOUNCES: &str = "TRANSIENT_BOUNCES";
    pub const ERASURE: &str = "ERASURE";
    pub const SOURCE: &str = "SOURCE";
    pub const SOURCE_KEY: &str = "SOURCE_KEY";
    pub const SIGNATURE: &str = "SIGNATURE";
    pub const LIMIT: &str = "LIMIT";
    pub const CONFIRMATION: &str = "CONFIRMATION";
    pub const LINK: &str = "LINK";
    pub const IMPORT_CURSOR: &str = "IMPORT_CURSOR";
    pub const USER: &str = "USER";
    pub const USER_EMAIL: &str = "USER_EMAIL";
    pub const SESSION: &str = "SESSION";
    pub const AUDIT: &str = "AUDIT";
    pub const USER_KEY: &str = "USER_KEY";
    pub const NAME: &str = "NAME";
    pub const STAGE: &str = "STAGE";
    pub const STAGE_COUNTS: &str = "STAGE_COUNTS";
}

/// The stage a customer is counted at with a brand: `CUSTOMER#<id>` / `STAGE#<brand>`.
pub fn stage_sk(brand: &Brand) -> String {
    format!("STAGE#{brand}")
}
/// How many customers are at each stage with a brand: `STAGES#<brand>` / `COUNT`.
pub fn stages_pk(brand: &Brand) -> String {
    format!("STAGES#{brand}")
}
pub const STAGES_SK: &str = "COUNT";

/// A customer's name in the search: `CUSTOMER#<id>` / `NAME#<name key>` (in the customer's
/// partition, so erasure finds and deletes it), listed in GSI2 under the key's first two
/// characters: `NAMES#<ab>` / `<name key>#<id>` (a prefix typed finds it).
pub fn name_sk(key: &str) -> String {
    format!("NAME#{key}")
}
pub fn names_pk(key: &str) -> String {
    format!("NAMES#{}", key.chars().take(2).collect::<String>())
}
pub fn names_sk(key: &str, customer: &CustomerId) -> String {
    format!("{key}#{customer}")
}

/// A user's API key, by the SHA-256 of the key.
pub fn user_key_pk(key_hash: &str) -> String {
    format!("USERKEY#{key_hash}")
}
pub const USER_KEY_SK: &str = "USERKEY";

/// A key's place among its user's (GSI1 under `USER#<id>`).
pub fn user_key_gsi1sk(last4: &str) -> String {
    format!("KEY#{last4}")
}

/// The audit log of a UTC day.
pub fn audit_pk(day: Date) -> String {
    format!("AUDIT#{day}")
}

pub fn audit_sk(at: OffsetDateTime, id: &str) -> String {
    format!("{}#{id}", format_ts(at))
}

pub fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}
pub const USER_SK: &str = "USER";
pub const USER_LIST: &str = "USERS";

pub fn user_email_pk(email: &crm_core::values::Email) -> String {
    format!("USEREMAIL#{}", email.as_str())
}
pub const USER_EMAIL_SK: &str = "USEREMAIL";

/// A session, keyed by the SHA-256 of its token (the token itself is only in the cookie).
pub fn session_pk(token_hash: &str) -> String {
    format!("SESSION#{token_hash}")
}
pub const SESSION_SK: &str = "SESSION";

/// A session's place among its user's (GSI1 under `USER#<id>`).
pub fn session_gsi1sk(created: OffsetDateTime, token_hash: &str) -> String {
    format!("{SESSION_SK}#{}#{token_hash}", format_ts(created))
}

/// Login attempts of one account or address: `LOGIN#<account|ip>#<hash or address>` /
/// `<window start>`.
pub fn login_limit_pk(who: &str) -> String {
    format!("LOGIN#{who}")
}

/// A brand's sending limit counter: `LIMIT#<brand>#<name>` (`budget#email`, `new-addresses`)
/// / `<period>` (a UTC day or hour).
pub fn limit_pk(brand: &Brand, name: &str) -> String {
    format!("LIMIT#{brand}#{name}")
}

/// A double opt-in confirmation sent to an address for a brand: `CONFIRM#<channel>#<hash>` /
/// `<brand>`.
pub fn confirmation_key(channel: Channel, address_hash: &str, brand: &Brand) -> (String, String) {
    (
        format!("CONFIRM#{}#{address_hash}", channel.as_str()),
        brand.to_string(),
    )
}

const CUSTOMER_PREFIX: &str = "CUSTOMER#";

pub fn customer_pk(id: &CustomerId) -> String {
    format!("{CUSTOMER_PREFIX}{id}")
}

/// The customer a `CUSTOMER#<id>` key names.
pub fn customer_from_pk(pk: &str) -> Option<CustomerId> {
    pk.strip_prefix(CUSTOMER_PREFIX).and_then(|c| CustomerId::parse(c).ok())
}

pub fn identifier_pk(identifier: &Identifier) -> String {
    format!("IDENT#{}", identifier.tag())
}

/// Test traffic's identifiers and dedupe keys live apart (`IDENT#TEST#…`, `DEDUPE#TEST#…`):
/// a test request never resolves to, merges with or repeats a real one.
pub const TEST_NAMESPACE: &str = "TEST#";

/// `identifier_pk` in the live or the test namespace.
pub fn identifier_pk_in(identifier: &Identifier, test: bool) -> String {
    if test {
        format!("IDENT#{TEST_NAMESPACE}{}", identifier.tag())
    } else {
        identifier_pk(identifier)
    }
}

/// `dedupe_pk` in the live or the test namespace.
pub fn dedupe_pk_in(key: &DedupeKey, test: bool) -> String {
    match dedupe_pk(key).strip_prefix("DEDUPE#") {
        Some(rest) if test => format!("DEDUPE#{TEST_NAMESPACE}{rest}"),
        _ => dedupe_pk(key),
    }
}

/// A record's own key: `CLICK#<clickId>`, `LEAD#<id>` …; its SK is the kind itself.
pub fn record_pk(kind: RecordKind, id: &str) -> String {
    format!("{}#{id}", kind.as_str())
}

pub fn timeline_sk(at: OffsetDateTime, kind: RecordKind, id: &str) -> String {
    format!("{}#{}#{id}", format_ts(at), kind.as_str())
}

/// Timeline sort-key bounds: every record at or after `t`, and every record at or before it.
pub fn timeline_bound(t: OffsetDateTime) -> String {
    format_ts(t)
}
pub fn timeline_bound_after(t: OffsetDateTime) -> String {
    format!("{}#~", format_ts(t))
}

pub fn feed_pk(kind: RecordKind, day: Date) -> String {
    format!("FEED#{}#{day}", kind.as_str())
}

/// The day index of new customers (GSI2 of profiles): `FEED#CUSTOMER#<day>`.
pub fn customer_feed_pk(day: Date) -> String {
    format!("FEED#CUSTOMER#{day}")
}

pub fn feed_sk(at: OffsetDateTime, id: &str) -> String {
    format!("{}#{id}", format_ts(at))
}

pub fn dedupe_pk(key: &DedupeKey) -> String {
    match key {
        DedupeKey::Transaction { operator, id } => format!("DEDUPE#TXN#{operator}#{id}"),
        DedupeKey::SourceTransaction { source_id, id } => format!("DEDUPE#SRCTXN#{source_id}#{id}"),
        DedupeKey::Postback(hash) => format!("DEDUPE#FP#{hash}"),
        DedupeKey::Lead(hash) => format!("DEDUPE#LEADFP#{hash}"),
        DedupeKey::Visit(hash) => format!("DEDUPE#VISIT#{hash}"),
    }
}

const MESSAGE_PREFIX: &str = "MESSAGE#";

/// A message lives in its customer's partition: `CUSTOMER#<id>` / `MESSAGE#<messageId>`.
pub fn message_sk(message_id: &str) -> String {
    format!("{MESSAGE_PREFIX}{message_id}")
}

/// The prefix of every message sort key (a customer's messages are one query).
pub fn message_sk_prefix() -> &'static str {
    MESSAGE_PREFIX
}

pub fn message_id_from_sk(sk: &str) -> Option<&str> {
    sk.strip_prefix(MESSAGE_PREFIX)
}

/// The due-index shard of a message: spread by its id.
pub fn due_shard(message_id: &str) -> u8 {
    let sum = message_id
        .bytes()
        .fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(u32::from(b)));
    (sum % u32::from(DUE_SHARDS)) as u8
}

pub fn due_pk(shard: u8) -> String {
    format!("DUE#{shard}")
}

pub fn due_sk(when: OffsetDateTime, message_id: &str) -> String {
    format!("{}#{message_id}", format_ts(when))
}

/// Everything due strictly before `t` sorts below this bound.
pub fn due_bound(t: OffsetDateTime) -> String {
    format_ts(t)
}

const ADVANCE_PREFIX: &str = "ADVANCE#";

/// A customer's advance timer with one brand: `CUSTOMER#<id>` / `ADVANCE#<brand>`.
pub fn advance_sk(brand: &Brand) -> String {
    format!("{ADVANCE_PREFIX}{brand}")
}

pub fn brand_from_advance_sk(sk: &str) -> Option<&str> {
    sk.strip_prefix(ADVANCE_PREFIX)
}

pub fn advance_due_pk(shard: u8) -> String {
    format!("ADV#{shard}")
}

pub fn advance_due_sk(when: OffsetDateTime, customer: &CustomerId, brand: &Brand) -> String {
    format!("{}#{customer}#{brand}", format_ts(when))
}

pub fn template_pk(id: &str) -> String {
    format!("TEMPLATE#{id}")
}

pub fn template_list_sk(brand: &str, channel: &str, id: &str) -> String {
    format!("{brand}#{channel}#{id}")
}

/// A brand's configuration (journey definition, sending settings): apart from its
/// counters, so the admin role may write configuration and nothing else of the brand's.
pub fn brand_config_pk(brand: &Brand) -> String {
    format!("BRANDCFG#{brand}")
}

/// Attribute names inside a profile's `journeys` map: `<brand>#<milestone>`.
pub fn journey_attr(brand: &Brand, milestone: crm_core::journey::Milestone) -> String {
    format!("{brand}#{}", milestone.as_str())
}

const CONSENT_PREFIX: &str = "consent#";
const EXCLUSION_PREFIX: &str = "exclusion#";
const REACTIVATED_PREFIX: &str = "reactivated#";
const CONTACT_PREFIX: &str = "contact#";
const FIRST_PREFIX: &str = "firstContact#";
const CHOSEN_PREFIX: &str = "chosenContact#";

/// Profile attribute of a consent statement: `consent#<brand>#<channel>`.
pub fn consent_attr(brand: &Brand, channel: Channel) -> String {
    format!("{CONSENT_PREFIX}{brand}#{}", channel.as_str())
}

/// Profile attribute of a brand's responsible-gambling exclusion: `exclusion#<brand>`.
pub fn exclusion_attr(brand: &Brand) -> String {
    format!("{EXCLUSION_PREFIX}{brand}")
}

/// Profile attribute of a brand's latest reactivation: `reactivated#<brand>`.
pub fn reactivated_attr(brand: &Brand) -> String {
    format!("{REACTIVATED_PREFIX}{brand}")
}

/// Profile attribute of an address's provenance: `contact#<identifier tag>`.
pub fn contact_attr(identifier: &Identifier) -> String {
    format!("{CONTACT_PREFIX}{}", identifier.tag())
}

/// Profile attribute of a channel's first address: `firstContact#<channel>`.
pub fn first_contact_attr(channel: Channel) -> String {
    format!("{FIRST_PREFIX}{}", channel.as_str())
}

/// Profile attribute of a channel's chosen address: `chosenContact#<channel>`.
pub fn chosen_contact_attr(channel: Channel) -> String {
    format!("{CHOSEN_PREFIX}{}", channel.as_str())
}

/// A profile attribute holding a compliance fact or a contact point (all personal: erasure
/// removes every one).
pub enum ProfileFact<'a> {
    Consent(&'a str, &'a str),
    Exclusion(&'a str),
    Reactivated(&'a str),
    Contact(&'a str),
    FirstContact(&'a str),
    ChosenContact(&'a str),
}

pub fn parse_profile_fact<'a>(attr: &'a str) -> Option<ProfileFact<'a>> {
    if let Some(rest) = attr.strip_prefix(CONSENT_PREFIX) {
        let (brand, channel) = rest.rsplit_once('#')?;
        return Some(ProfileFact::Consent(brand, channel));
    }
    let rest = |prefix: &str| attr.strip_prefix(prefix);
    None.or_else(|| rest(EXCLUSION_PREFIX).map(ProfileFact::Exclusion))
        .or_else(|| rest(REACTIVATED_PREFIX).map(ProfileFact::Reactivated))
        .or_else(|| rest(CONTACT_PREFIX).map(ProfileFact::Contact))
        .or_else(|| rest(FIRST_PREFIX).map(ProfileFact::FirstContact))
        .or_else(|| rest(CHOSEN_PREFIX).map(ProfileFact::ChosenContact))
}

/// A person's send log on one channel (frequency caps): `CUSTOMER#<id>` / `SENDLOG#<channel>`.
pub fn send_log_sk(channel: Channel) -> String {
    format!("SENDLOG#{}", channel.as_str())
}

/// Suppression entries of one address: `SUPPRESS#<channel>#<address hash>` / `SCOPE#<brand|*>`.
pub fn suppression_pk(channel: Channel, address_hash: &str) -> String {
    format!("SUPPRESS#{}#{address_hash}", channel.as_str())
}

pub fn suppression_sk(scope: &Scope) -> String {
    format!("SCOPE#{}", scope.as_str())
}

/// The list of one channel's suppression entries (GSI2), newest first.
pub fn suppression_list_pk(channel: Channel) -> String {
    format!("SUPPRESSIONS#{}", channel.as_str())
}

pub fn suppression_list_sk(at: OffsetDateTime, address_hash: &str, scope: &Scope) -> String {
    format!("{}#{address_hash}#{}", format_ts(at), scope.as_str())
}

/// The record of a customer's erasure: `ERASURE#<customerId>` / `ERASURE`.
pub fn erasure_pk(customer: &CustomerId) -> String {
    format!("ERASURE#{customer}")
}
pub const ERASURE_SK: &str = "ERASURE";

/// Transient bounces of one address (three in a week suppress it): `BOUNCES#<hash>` / `TRANSIENT`.
pub fn transient_bounces_pk(address_hash: &str) -> String {
    format!("BOUNCES#{address_hash}")
}
pub const TRANSIENT_SK: &str = "TRANSIENT";

/// Influencers: `INFLUENCER#<id>` / `INFLUENCER`, listed on GSI2 `INFLUENCERS` / `<id>`.
pub fn influencer_pk(id: &str) -> String {
    format!("INFLUENCER#{id}")
}
pub const INFLUENCER_SK: &str = "INFLUENCER";

/// Ingest sources: `SOURCE#<id>` / `SOURCE`; each key `SOURCEKEY#<sha256 of the key>` /
/// `SOURCEKEY` (found by the hash a request's key gives). Both listed on GSI2 `SOURCES`,
/// a source and its keys under one prefix: `<id>#SOURCE`, `<id>#KEY#<last4>`.
pub fn source_pk(id: &str) -> String {
    format!("SOURCE#{id}")
}
pub const SOURCE_SK: &str = "SOURCE";
pub fn source_key_pk(hash: &str) -> String {
    format!("SOURCEKEY#{hash}")
}
pub const SOURCE_KEY_SK: &str = "SOURCEKEY";
pub const SOURCE_LIST: &str = "SOURCES";
/// Every GSI2 sort key of a source and its keys starts with this.
pub fn source_list_prefix(id: &str) -> String {
    format!("{id}#")
}
pub fn source_list_sk(id: &str) -> String {
    format!("{id}#SOURCE")
}
pub fn source_key_list_sk(id: &str, last4: &str) -> String {
    format!("{id}#KEY#{last4}")
}

/// A signed request's one use: `SIGNATURE#<sourceId>#<digest>` / `SIGNATURE` (expiring).
pub fn signature_pk(source_id: &str, digest: &str) -> String {
    format!("SIGNATURE#{source_id}#{digest}")
}
pub const SIGNATURE_SK: &str = "SIGNATURE";
pub const INFLUENCER_LIST: &str = "INFLUENCERS";

/// Campaigns: `CAMPAIGN#<id>` / `CAMPAIGN`, listed on GSI2 `CAMPAIGNS` / `<id>`.
pub fn campaign_pk(id: &str) -> String {
    format!("CAMPAIGN#{id}")
}
pub const CAMPAIGN_SK: &str = "CAMPAIGN";
pub const CAMPAIGN_LIST: &str = "CAMPAIGNS";

/// Tracked links: `LINK#<code>` / `LINK`, listed on GSI2 `LINKS` / `<code>`.
pub fn link_pk(code: &crm_core::link::LinkCode) -> String {
    format!("LINK#{code}")
}
pub const LINK_SK: &str = "LINK";
pub const LINK_LIST: &str = "LINKS";

/// A source's click-log import: `IMPORT#<sourceId>` / `CURSOR`.
pub fn import_pk(source_id: &str) -> String {
    format!("IMPORT#{source_id}")
}
pub const IMPORT_SK: &str = "CURSOR";

/// A campaign name's claim (names are unique without case): `CAMPAIGN_NAME#<name>` / `CAMPAIGN_NAME`.
pub fn campaign_name_pk(name: &str) -> String {
    format!("CAMPAIGN_NAME#{}", crm_core::partners::name_key(name))
}
pub const CAMPAIGN_NAME_SK: &str = "CAMPAIGN_NAME";

/// Counters of one dimension for one UTC day, in the partition of its month:
/// `STATS#<dimension>#<YYYY-MM>` / `<day>#<brand>#<value>`. A period's counters are one
/// query per month it touches (a range of sort keys), whatever its length.
pub fn stats_pk(dimension: Dimension, day: Date) -> String {
    format!("STATS#{}#{}", dimension.as_str(), &day.to_string()[..7])
}
pub fn stats_sk(day: Date, brand: &str, value: &str) -> String {
    format!("{day}#{brand}#{value}")
}
/// The months' partitions a period `first..=last` of days reads: each month's first and
/// last day within the period, in order.
pub fn stats_months(first: Date, last: Date) -> Vec<(Date, Date)> {
    let mut months = Vec::new();
    let mut day = first;
    while day <= last {
        let month_end = day
            .replace_day(day.month().length(day.year()))
            .expect("a month's last day exists");
        let to = month_end.min(last);
        months.push((day, to));
        match to.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    months
}

/// The sort keys of the days `from..=to` (of one month): between these two.
pub fn stats_day_range(from: Date, to: Date) -> (String, String) {
    // `$` sorts right after `#`: every key of `to` is below `<to>$`.
    (format!("{from}#"), format!("{to}$"))
}

/// A counter attribute: `<metric>@<HH>` (the UTC hour).
pub fn counter_attr(metric: &Metric, hour: u8) -> String {
    format!("{}@{hour:02}", metric.name())
}
pub fn parse_counter_attr(attr: &str) -> Option<(Metric, u8)> {
    let (metric, hour) = attr.rsplit_once('@')?;
    let hour: u8 = hour.parse().ok().filter(|h| *h < 24)?;
    Some((Metric::from_name(metric)?, hour))
}

/// Which rows a customer has been counted in already (the `customers` metric):
/// `CUSTOMER#<id>` / `SEEN`, one attribute per row, holding the record that came first.
pub const SEEN_SK: &str = "SEEN";
pub fn seen_attr(row: &Row) -> String {
    format!("{}#{}#{}", row.dimension.as_str(), row.brand, row.value)
}
/// On the same item: the event counted as the customer's first deposit for a brand.
pub fn first_deposit_attr(brand: &str) -> String {
    format!("ftd#{brand}")
}

/// The daily report of one local day, claimed before it is sent: `REPORT#<day>` / `DAILY`.
pub fn daily_report_pk(day: Date) -> String {
    format!("REPORT#{day}")
}
pub const DAILY_REPORT_SK: &str = "DAILY";

/// The operator's exchange rates: `CONFIG#FX` / `RATES`.
pub const FX_PK: &str = "CONFIG#FX";
pub const FX_SK: &str = "RATES";

/// A key as it may appear in a log line: identifier keys carry emails and phone numbers.
pub fn loggable(key: &str) -> String {
    crm_core::values::redact_personal(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::values::{ClickId, Email, TransactionId};
    use time::macros::{date, datetime};

    #[test]
    fn a_period_reads_each_month_it_touches_once() {
        assert_eq!(
            stats_months(date!(2026 - 01 - 30), date!(2026 - 03 - 01)),
            vec![
                (date!(2026 - 01 - 30), date!(2026 - 01 - 31)),
                (date!(2026 - 02 - 01), date!(2026 - 02 - 28)),
                (date!(2026 - 03 - 01), date!(2026 - 03 - 01)),
            ]
        );
        assert_eq!(
            stats_months(date!(2026 - 05 - 02), date!(2026 - 05 - 09)),
            vec![(date!(2026 - 05 - 02), date!(2026 - 05 - 09))]
        );
        assert!(stats_months(date!(2026 - 05 - 09), date!(2026 - 05 - 02)).is_empty());
    }

    #[test]
    fn keys_have_their_documented_shape() {
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        assert_eq!(customer_pk(&id), "CUSTOMER#0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10");
        assert_eq!(customer_from_pk(&customer_pk(&id)), Some(id.clone()));
        let email = Identifier::Email(Email::parse("A@B.co").unwrap());
        assert_eq!(identifier_pk(&email), "IDENT#EMAIL#a@b.co");
        let click = Identifier::ClickId(ClickId::parse("TEST_CLICK_001").unwrap());
        assert_eq!(identifier_pk(&click), "IDENT#CLICK_ID#TEST_CLICK_001");
        assert_eq!(record_pk(RecordKind::Click, "TEST_CLICK_001"), "CLICK#TEST_CLICK_001");
        let at = datetime!(2026-11-22 02:25:01.5 UTC);
        assert_eq!(
            timeline_sk(at, RecordKind::Lead, "l1"),
            "2026-11-22T02:25:01.500Z#LEAD#l1"
        );
        assert_eq!(
            feed_pk(RecordKind::Event, date!(2026 - 11 - 22)),
            "FEED#EVENT#2026-11-22"
        );
        assert_eq!(feed_sk(at, "e1"), "2026-11-22T02:25:01.500Z#e1");
        let txn = DedupeKey::Transaction {
            operator: Brand::parse("rushbet").unwrap(),
            id: TransactionId::parse("T1").unwrap(),
        };
        assert_eq!(dedupe_pk(&txn), "DEDUPE#TXN#rushbet#T1");
        let own = DedupeKey::SourceTransaction {
            source_id: "src_1".into(),
            id: TransactionId::parse("T1").unwrap(),
        };
        assert_eq!(dedupe_pk(&own), "DEDUPE#SRCTXN#src_1#T1");
        assert_eq!(source_pk("src_1"), "SOURCE#src_1");
        assert_eq!(source_key_pk("ab12"), "SOURCEKEY#ab12");
        assert!(source_list_sk("src_1").starts_with(&source_list_prefix("src_1")));
        assert!(source_key_list_sk("src_1", "WXYZ").starts_with(&source_list_prefix("src_1")));
        assert!(!source_list_sk("src_10").starts_with(&source_list_prefix("src_1")));
        assert_eq!(signature_pk("src_1", "ff"), "SIGNATURE#src_1#ff");
        assert_eq!(identifier_pk_in(&email, true), "IDENT#TEST#EMAIL#a@b.co");
        assert_eq!(identifier_pk_in(&email, false), identifier_pk(&email));
        assert_eq!(dedupe_pk_in(&own, true), "DEDUPE#TEST#SRCTXN#src_1#T1");
        assert_eq!(dedupe_pk(&DedupeKey::Postback("ab".into())), "DEDUPE#FP#ab");
        assert_eq!(dedupe_pk(&DedupeKey::Lead("cd".into())), "DEDUPE#LEADFP#cd");
        assert_eq!(brand_config_pk(&Brand::parse("rushbet").unwrap()), "BRANDCFG#rushbet");
    }

    #[test]
    fn message_keys_have_their_documented_shape() {
        assert_eq!(message_sk("msg_1"), "MESSAGE#msg_1");
        assert_eq!(message_id_from_sk("MESSAGE#msg_1"), Some("msg_1"));
        let at = datetime!(2026-11-22 02:25:01.5 UTC);
        assert_eq!(due_sk(at, "msg_1"), "2026-11-22T02:25:01.500Z#msg_1");
        assert!(due_sk(at, "msg_1") < due_bound(at + time::Duration::milliseconds(1)));
        assert!(due_sk(at, "msg_1") > due_bound(at));
        assert_eq!(template_pk("tpl_1"), "TEMPLATE#tpl_1");
        let rushbet = Brand::parse("rushbet").unwrap();
        assert_eq!(advance_sk(&rushbet), "ADVANCE#rushbet");
        assert_eq!(brand_from_advance_sk("ADVANCE#rushbet"), Some("rushbet"));
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        assert_eq!(
            advance_due_sk(at, &id, &rushbet),
            "2026-11-22T02:25:01.500Z#0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10#rushbet"
        );
        assert_eq!(template_list_sk("*", "email", "tpl_1"), "*#email#tpl_1");
    }

    #[test]
    fn due_shards_spread_messages() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let s = due_shard(&format!("msg_{i:032x}"));
            assert!(s < DUE_SHARDS);
            seen.insert(s);
        }
        assert_eq!(seen.len(), usize::from(DUE_SHARDS));
    }

    #[test]
    fn stats_keys_have_their_documented_shape() {
        let day = date!(2026 - 11 - 22);
        assert_eq!(stats_pk(Dimension::Sub(3), day), "STATS#sub3#2026-11");
        assert_eq!(stats_sk(day, "rushbet", "inf_1"), "2026-11-22#rushbet#inf_1");
        let (from, to) = stats_day_range(date!(2026 - 11 - 21), day);
        for (sk, inside) in [
            (stats_sk(date!(2026 - 11 - 21), "a", ""), true),
            (stats_sk(day, "~~~", "~~~"), true),
            (stats_sk(date!(2026 - 11 - 20), "~", "~"), false),
            (stats_sk(date!(2026 - 11 - 23), "a", "a"), false),
        ] {
            assert_eq!(from <= sk && sk <= to, inside, "{sk}");
        }
        let usd = crm_core::values::Currency::parse("USD").unwrap();
        assert_eq!(counter_attr(&Metric::Revenue(usd.clone()), 7), "revenue.USD@07");
        assert_eq!(parse_counter_attr("revenue.USD@07"), Some((Metric::Revenue(usd), 7)));
        assert_eq!(parse_counter_attr("clicks@23"), Some((Metric::Clicks, 23)));
        assert_eq!(parse_counter_attr("clicks@24"), None);
        assert_eq!(parse_counter_attr("brand"), None);
        assert_eq!(campaign_name_pk(" Test-Campaign"), "CAMPAIGN_NAME#test-campaign");
        let row = Row {
            dimension: Dimension::Influencer,
            value: "inf_1".into(),
            brand: "rushbet".into(),
        };
        assert_eq!(seen_attr(&row), "influencer#rushbet#inf_1");
    }

    #[test]
    fn identifier_keys_are_redacted_for_logs() {
        let email = Identifier::Email(Email::parse("ana@example.com").unwrap());
        assert_eq!(loggable(&identifier_pk(&email)), "IDENT#EMAIL#<redacted>");
    }

    #[test]
    fn timeline_keys_sort_newest_last_across_kinds() {
        let a = timeline_sk(datetime!(2026-11-22 02:00 UTC), RecordKind::Merge, "z");
        let b = timeline_sk(datetime!(2026-11-22 03:00 UTC), RecordKind::Click, "a");
        assert!(a < b);
    }
}
