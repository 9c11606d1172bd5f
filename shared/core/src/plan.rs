//! The decision at the heart of every ingest: given what a request says (a `Touch`) and what
//! the store holds (who owns its identifiers, and profiles when a merge needs them), the
//! list of writes that must land together in one transaction.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::identity::{Identifier, IdentifierKind, Owners, Resolution, resolve};
use crate::input::{ClickCommand, Defaults, FieldError, Fields, LeadCommand, PostbackCommand, Warning};
use crate::journey::Milestone;
use crate::profile::{Facts, Follow, Profile, Touch, follow_merges, merge};
use crate::records::{ClickRecord, EventRecord, LeadRecord, MergeRecord, Provenance};
use crate::values::{Brand, ClickId, CustomerId, TransactionId};

/// One write of a transaction. The store turns each into one conditional DynamoDB operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A new profile; fails if the id exists.
    CreateProfile(Profile),
    /// Commutative update of an existing customer that has not been merged away: add
    /// identifiers, reach the milestone, add revenue, set names. Needs no prior read.
    ApplyTouch {
        customer: CustomerId,
        touch: Touch,
        /// Planned without the profile: the store lists the touch's identifiers only while
        /// the profile lists fewer than `MAX_LISTED_IDENTIFIERS` (its condition); a failed
        /// condition re-plans with the profile read, and `listed_identifiers` decides.
        bounded: bool,
    },
    /// Replaces a profile read at `expected_version` (merges).
    ReplaceProfile {
        profile: Profile,
        expected_version: u64,
    },
    /// Turns a profile into a tombstone pointing at its survivor.
    MarkMerged {
        customer: CustomerId,
        into: CustomerId,
        expected_version: u64,
        at: OffsetDateTime,
    },
    /// Takes an unowned identifier; fails if someone owns it.
    ClaimIdentifier {
        identifier: Identifier,
        customer: CustomerId,
        at: OffsetDateTime,
    },
    /// Moves an identifier; fails unless `from` still owns it.
    RepointIdentifier {
        identifier: Identifier,
        from: CustomerId,
        to: CustomerId,
    },
    RecordMerge(MergeRecord),
    /// Fails if the click id was already recorded (the click's idempotency).
    RecordClick(ClickRecord),
    RecordLead(LeadRecord),
    RecordEvent(EventRecord),
    /// Fails if the key is held and not expired (the idempotency of leads and postbacks).
    ClaimDedupe(DedupeClaim),
    /// Fails if this signature was accepted before (a replayed signed request).
    ClaimSignature(SignatureClaim),
}

/// A signed request's one use: its source and the signature's digest, held past the
/// signature's tolerance so a replay inside it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureClaim {
    pub source_id: String,
    pub digest: String,
    pub at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Write {
    /// Whether this write's failed condition means the request is a repeat (its click was
    /// recorded, or its idempotency key is held), as opposed to a lost race.
    pub fn is_guard(&self) -> bool {
        matches!(self, Self::RecordClick(_) | Self::ClaimDedupe(_))
    }
    /// Whether this write's failed condition means the signed request was replayed.
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::ClaimSignature(_))
    }
}

/// An idempotency key; `crm-store`'s `keys` module renders it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DedupeKey {
    /// An operator's transaction id: the same conversion for ever.
    Transaction { operator: Brand, id: TransactionId },
    /// A transaction id from a source bound to no brand: claimed in the source's own
    /// namespace, so one source cannot pre-claim another's ids.
    SourceTransaction { source_id: String, id: TransactionId },
    /// A fingerprint of a postback sent without a transaction id.
    Postback(String),
    /// A fingerprint of a lead form.
    Lead(String),
    /// A browser's visit through a tracked link (link, client address, user agent): a
    /// second hit within the window is the same visit.
    Visit(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeClaim {
    pub key: DedupeKey,
    /// The record (lead or event id) the first request created.
    pub record_id: String,
    pub customer: CustomerId,
    pub at: OffsetDateTime,
    /// `None`: held forever (operator transaction ids).
    pub expires_at: Option<OffsetDateTime>,
}

/// How far in the future an operator's "occurred at" may be before it is ignored.
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
/// How far in the past an operator's "occurred at" may be.
const MAX_OCCURRED_AGE: Duration = Duration::days(90);

/// Ids the shell generated for this attempt (the core does not touch a random source).
#[derive(Debug, Clone)]
pub struct FreshIds {
    pub customer: CustomerId,
    pub merge: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TouchPlan {
    pub customer: CustomerId,
    pub created: bool,
    pub absorbed: Vec<CustomerId>,
    pub writes: Vec<Write>,
    /// New identifiers a full profile does not list (still claimed): the request's record
    /// keeps them (`note_unlisted`), so erasure finds them.
    pub unlisted: Vec<Identifier>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    Ready(TouchPlan),
    /// Load these profiles and plan again.
    NeedProfiles(Vec<CustomerId>),
}

/// How many identifiers a profile lists before it gets choosy: a customer's item cannot
/// grow without bound (5,000 clicks carrying one email), and every identifier, listed or
/// not, stays claimed (its `IDENT#` item resolves to the customer) and on its records.
pub const MAX_LISTED_IDENTIFIERS: usize = 100;
/// Past `MAX_LISTED_IDENTIFIERS`, a new identifier is still listed while fewer than this
/// many of its kind are, so a later email or phone still reaches the profile (and messages).
pub const MIN_LISTED_PER_KIND: usize = 10;

/// Which of `new` a profile lists: those it lacks, all of them while it lists fewer than
/// `MAX_LISTED_IDENTIFIERS`, then only kinds it lists fewer than `MIN_LISTED_PER_KIND` of.
pub fn listed_identifiers(profile: &Profile, new: &[Identifier]) -> Vec<Identifier> {
    let fresh: Vec<Identifier> = new
        .iter()
        .filter(|i| !profile.identifiers.contains(*i))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if profile.identifiers.len() + fresh.len() <= MAX_LISTED_IDENTIFIERS {
        return fresh;
    }
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &profile.identifiers {
        *per_kind.entry(i.kind().as_str()).or_default() += 1;
    }
    fresh
        .into_iter()
        .filter(|i| {
            let n = per_kind.entry(i.kind().as_str()).or_default();
            *n += 1;
            *n <= MIN_LISTED_PER_KIND
        })
        .collect()
}

/// Kinds a full profile keeps the newest of, the oldest making room, as Segment's identity
/// limits do: click ids and device ids. Emails, phones and operator user ids keep their
/// first: they are where messages go, and a flood of made-up ones on a public key must not
/// push the person's own out.
pub fn keeps_newest(kind: IdentifierKind) -> bool {
    matches!(kind, IdentifierKind::ClickId | IdentifierKind::DeviceId)
}

/// A full profile that must list the newest-kept identifiers among `unlisted`: the profile
/// with `touch` applied, and for each of those, the oldest listed identifier of its kind
/// evicted (by `ages`, when each was first claimed; an unknown age counts as oldest).
/// Returns the profile to write at the read version, and every identifier it does not list
/// (evicted, or still unlisted), which the request's record keeps.
pub fn make_room(
    profile: &Profile,
    touch: &Touch,
    unlisted: &[Identifier],
    ages: &BTreeMap<Identifier, OffsetDateTime>,
) -> (Profile, Vec<Identifier>) {
    let mut next = profile.clone();
    next.apply(touch);
    let mut not_listed: Vec<Identifier> = unlisted.iter().filter(|i| !keeps_newest(i.kind())).cloned().collect();
    for i in &not_listed {
        next.identifiers.remove(i);
    }
    for new in unlisted.iter().filter(|i| keeps_newest(i.kind())) {
        let oldest = profile
            .identifiers
            .iter()
            .filter(|i| i.kind() == new.kind() && next.identifiers.contains(*i))
            .min_by_key(|i| (ages.get(*i).copied(), (*i).clone()));
        if let Some(oldest) = oldest.cloned() {
            next.identifiers.remove(&oldest);
            not_listed.push(oldest);
        }
    }
    (next, not_listed)
}

/// Notes on the request's record the identifiers its customer's profile did not list.
pub fn note_unlisted(writes: &mut [Write], unlisted: &[Identifier]) {
    if unlisted.is_empty() {
        return;
    }
    let tags: Vec<String> = unlisted.iter().map(Identifier::tag).collect();
    for w in writes {
        match w {
            Write::RecordClick(r) => r.unlisted_identifiers = tags.clone(),
            Write::RecordLead(r) => r.unlisted_identifiers = tags.clone(),
            Write::RecordEvent(r) => r.unlisted_identifiers = tags.clone(),
            _ => {}
        }
    }
}

/// Follows merge tombstones through the loaded profiles. `Err` names a profile to load.
fn current_owner(start: &CustomerId, profiles: &BTreeMap<CustomerId, Profile>) -> Result<CustomerId, CustomerId> {
    match follow_merges(start, profiles) {
        Follow::Current(id) => Ok(id),
        // An owner whose profile was not read is taken as current: the write's condition
        // (`attribute_not_exists(mergedInto)`) checks it, and a lost race re-plans.
        Follow::Load(id) if id == *start => Ok(id),
        Follow::Load(id) => Err(id),
        // A corrupt chain: stop where it is, the store reports it when it reads the chain.
        Follow::TooLong => Ok(start.clone()),
    }
}

/// Plans the writes that attach `touch` to its customer, creating or merging as needed.
/// `reason` says what linked the identifiers, for the merge audit record.
pub fn plan_touch(
    touch: &Touch,
    owners: &Owners,
    profiles: &BTreeMap<CustomerId, Profile>,
    fresh: &FreshIds,
    reason: &str,
) -> Planned {
    let mut current = BTreeMap::new();
    let mut missing = Vec::new();
    for (identifier, owner) in owners {
        match current_owner(owner, profiles) {
            Ok(c) => {
                current.insert(identifier.clone(), c);
            }
            Err(need) => missing.push(need),
        }
    }
    if !missing.is_empty() {
        return Planned::NeedProfiles(missing);
    }
    // Identifiers still pointing at a merged-away customer are repaired in passing.
    let mut repoint: BTreeMap<Identifier, (CustomerId, CustomerId)> = owners
        .iter()
        .filter(|(i, o)| current[*i] != **o)
        .map(|(i, o)| (i.clone(), (o.clone(), current[i].clone())))
        .collect();
    let claims = |customer: &CustomerId| -> Vec<Write> {
        touch
            .identifiers
            .iter()
            .filter(|i| !owners.contains_key(*i))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|i| Write::ClaimIdentifier {
                identifier: i.clone(),
                customer: customer.clone(),
                at: touch.at,
            })
            .collect()
    };
    let repoints = |repoint: BTreeMap<Identifier, (CustomerId, CustomerId)>| {
        repoint
            .into_iter()
            .map(|(identifier, (from, to))| Write::RepointIdentifier { identifier, from, to })
    };

    match resolve(current.values()) {
        Resolution::New => {
            let customer = fresh.customer.clone();
            let mut writes = vec![Write::CreateProfile(Profile::new(customer.clone(), touch))];
            writes.extend(claims(&customer));
            Planned::Ready(TouchPlan {
                customer,
                created: true,
                absorbed: vec![],
                writes,
                unlisted: Vec::new(),
            })
        }
        Resolution::Existing(customer) => {
            let (touch_listed, bounded, unlisted) = match profiles.get(&customer) {
                Some(p) => {
                    let listed = listed_identifiers(p, &touch.identifiers);
                    let unlisted = touch
                        .identifiers
                        .iter()
                        .filter(|i| !p.identifiers.contains(*i) && !listed.contains(*i))
                        .cloned()
                        .collect();
                    let touch = Touch {
                        identifiers: listed,
                        ..touch.clone()
                    };
                    (touch, false, unlisted)
                }
                None => (touch.clone(), true, Vec::new()),
            };
            let mut writes = vec![Write::ApplyTouch {
                customer: customer.clone(),
                touch: touch_listed,
                bounded,
            }];
            writes.extend(claims(&customer));
            writes.extend(repoints(repoint));
            Planned::Ready(TouchPlan {
                customer,
                created: false,
                absorbed: vec![],
                writes,
                unlisted,
            })
        }
        Resolution::Merge { survivor, absorbed } => {
            let needed: Vec<CustomerId> = std::iter::once(&survivor)
                .chain(&absorbed)
                .filter(|c| !profiles.contains_key(*c))
                .cloned()
                .collect();
            if !needed.is_empty() {
                return Planned::NeedProfiles(needed);
            }
            let survivor_profile = profiles[&survivor].clone();
            let absorbed_profiles: Vec<Profile> = absorbed.iter().map(|c| profiles[c].clone()).collect();
            let expected_version = survivor_profile.version;
            let mut merged = merge(survivor_profile, &absorbed_profiles, touch.at);
            merged.apply(touch);

            let mut writes = vec![Write::ReplaceProfile {
                profile: merged,
                expected_version,
            }];
            let mut absorbed_identifiers = BTreeMap::new();
            for p in &absorbed_profiles {
                writes.push(Write::MarkMerged {
                    customer: p.id.clone(),
                    into: survivor.clone(),
                    expected_version: p.version,
                    at: touch.at,
                });
                for identifier in &p.identifiers {
                    if owners.get(identifier).is_none_or(|o| *o == p.id) {
                        repoint.insert(identifier.clone(), (p.id.clone(), survivor.clone()));
                    }
                }
                absorbed_identifiers.insert(p.id.to_string(), p.identifiers.iter().map(Identifier::tag).collect());
            }
            writes.extend(claims(&survivor));
            writes.extend(repoints(repoint));
            writes.push(Write::RecordMerge(MergeRecord {
                merge_id: fresh.merge.clone(),
                customer_id: survivor.clone(),
                absorbed: absorbed.clone(),
                reason: reason.to_owned(),
                absorbed_identifiers,
                at: touch.at,
            }));
            Planned::Ready(TouchPlan {
                customer: survivor,
                created: false,
                absorbed,
                writes,
                unlisted: Vec::new(),
            })
        }
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(&h.finalize()[..16])
}

/// How a request proves it is new: a click by its click record (a click id is recorded
/// once), a lead or postback by a dedupe claim committed with its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    Click(ClickId),
    Claim {
        key: DedupeKey,
        /// `None`: held for ever.
        expires_at: Option<OffsetDateTime>,
    },
}

impl Guard {
    /// The guard as `source_id` claims it: a source bound to no brand holds its transaction
    /// ids in its own namespace (a brand-bound source, or no source, in the brand's).
    pub fn for_source(self, source_id: Option<&str>) -> Self {
        match (self, source_id) {
            (
                Self::Claim {
                    key: DedupeKey::Transaction { id, .. },
                    expires_at,
                },
                Some(source),
            ) => Self::Claim {
                key: DedupeKey::SourceTransaction {
                    source_id: source.to_owned(),
                    id,
                },
                expires_at,
            },
            (guard, _) => guard,
        }
    }
}

/// What differs between the three ingests. `crm_app::ingest::run` is the one path they
/// share: resolve the customer, add these writes, commit once.
pub trait Ingest: Sized {
    /// `click`, `lead` or `postback`: names the request in merge reasons and logs.
    const KIND: &'static str;
    /// Skip the owner read on the first attempt (most click ids are new).
    const OPTIMISTIC: bool = false;
    fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError>;
    /// Checks that need the time of arrival (an `occurredAt` too old or in the future).
    fn check_at(&self, _now: OffsetDateTime) -> Result<(), FieldError> {
        Ok(())
    }
    /// The brand the request writes for.
    fn brand(&self) -> &Brand;
    /// The command as test traffic: its click ids become `test:<clickId>`, so a test click
    /// is never a real click's repeat (its identifiers and dedupe keys live apart too, see
    /// the store's test namespace).
    fn into_test(self) -> Result<Self, FieldError>;
    /// Optional fields that were dropped, reported back to the caller.
    fn warnings(&self) -> &[Warning];
    fn touch(&self, at: OffsetDateTime) -> Touch;
    fn guard(&self, at: OffsetDateTime, window: Duration) -> Guard;
    /// The id of the request's record when the request names it (a click's id); `None`:
    /// a fresh one.
    fn record_id(&self) -> Option<String> {
        None
    }
    /// The request's own records for the customer it resolved to; `record_id` is the click
    /// id for clicks and a fresh id otherwise.
    fn records(&self, customer: &CustomerId, record_id: &str, from: &Provenance, at: OffsetDateTime) -> Vec<Write>;
}

/// The writes a request adds to its touch plan: the dedupe claim (if that is its guard) and
/// its records.
pub fn request_writes<C: Ingest>(
    cmd: &C,
    guard: &Guard,
    customer: &CustomerId,
    record_id: &str,
    from: &Provenance,
    at: OffsetDateTime,
) -> Vec<Write> {
    let claim = match guard {
        Guard::Click(_) => None,
        Guard::Claim { key, expires_at } => Some(Write::ClaimDedupe(DedupeClaim {
            key: key.clone(),
            record_id: record_id.to_owned(),
            customer: customer.clone(),
            at,
            expires_at: *expires_at,
        })),
    };
    claim
        .into_iter()
        .chain(cmd.records(customer, record_id, from, at))
        .collect()
}

/// `test:<id>`: a test click id.
fn test_click_id(id: ClickId) -> Result<ClickId, FieldError> {
    ClickId::parse(&format!("test:{id}")).map_err(|e| FieldError {
        field: "clickId",
        code: e.code,
        message: format!("as test traffic (test:<clickId>): {}", e.message),
    })
}

/// An `occurredAt` in the future is a clock or mapping error, and one older than the stats
/// keep a day open for would rewrite closed reports: both are refused.
fn check_occurred(occurred_at: Option<OffsetDateTime>, now: OffsetDateTime) -> Result<(), FieldError> {
    let Some(t) = occurred_at else { return Ok(()) };
    let message = if t > now + MAX_CLOCK_SKEW {
        "occurredAt is more than 5 minutes in the future"
    } else if t < now - MAX_OCCURRED_AGE {
        "occurredAt is more than 90 days in the past"
    } else {
        return Ok(());
    };
    Err(FieldError {
        field: "occurredAt",
        code: "out_of_range",
        message: message.into(),
    })
}

impl Ingest for ClickCommand {
    const KIND: &'static str = "click";
    const OPTIMISTIC: bool = true;
    fn into_test(mut self) -> Result<Self, FieldError> {
        self.click_id = test_click_id(self.click_id)?;
        self.visit = self.visit.map(test_click_id).transpose()?;
        Ok(self)
    }
    fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError> {
        ClickCommand::parse(fields, defaults)
    }
    fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
    fn brand(&self) -> &Brand {
        &self.brand
    }
    fn touch(&self, at: OffsetDateTime) -> Touch {
        Touch::new(self.identifiers(), self.brand.clone(), Milestone::Touched, at)
    }
    fn guard(&self, at: OffsetDateTime, _window: Duration) -> Guard {
        match &self.once_per {
            Some(visit) => Guard::Claim {
                key: DedupeKey::Visit(visit.key.clone()),
                expires_at: Some(at + visit.window),
            },
            None => Guard::Click(self.click_id.clone()),
        }
    }
    fn record_id(&self) -> Option<String> {
        Some(self.click_id.to_string())
    }
    fn check_at(&self, now: OffsetDateTime) -> Result<(), FieldError> {
        check_occurred(self.occurred_at, now)
    }
    /// A click reported late (a tracker's click log) is recorded when it happened.
    fn records(&self, customer: &CustomerId, _record_id: &str, from: &Provenance, at: OffsetDateTime) -> Vec<Write> {
        let at = self.occurred_at.filter(|t| *t <= at + MAX_CLOCK_SKEW).unwrap_or(at);
        let mut record = ClickRecord::new(
            self.click_id.to_string(),
            customer.clone(),
            self.brand.to_string(),
            self.device_id.as_ref().map(ToString::to_string),
            self.details.clone(),
            from,
            at,
        );
        record.visit_id = self.visit.as_ref().map(ToString::to_string);
        vec![Write::RecordClick(record)]
    }
}

impl Ingest for LeadCommand {
    const KIND: &'static str = "lead";
    fn into_test(mut self) -> Result<Self, FieldError> {
        self.click_id = self.click_id.map(test_click_id).transpose()?;
        self.visit = self.visit.map(test_click_id).transpose()?;
        Ok(self)
    }
    fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError> {
        LeadCommand::parse(fields, defaults)
    }
    fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
    fn brand(&self) -> &Brand {
        &self.brand
    }
    fn touch(&self, at: OffsetDateTime) -> Touch {
        Touch {
            names: self.names.clone(),
            facts: Facts {
                consent: self.consent,
                timezone: self.timezone.clone(),
                exclusion: None,
                source: Self::KIND,
            },
            ..Touch::new(self.identifiers(), self.brand.clone(), Milestone::Touched, at)
        }
    }
    /// A fingerprint of the normalised form: a double submit or a replayed webhook inside
    /// `window` is the same lead.
    fn guard(&self, at: OffsetDateTime, window: Duration) -> Guard {
        let ids: Vec<String> = self.identifiers().iter().map(Identifier::tag).collect();
        let first = self.names.first.clone().unwrap_or_default();
        let last = self.names.last.clone().unwrap_or_default();
        let campaign = self.campaign.clone().unwrap_or_default();
        let mut parts = vec!["lead", self.brand.as_str(), &first, &last, &campaign];
        parts.extend(ids.iter().map(String::as_str));
        Guard::Claim {
            key: DedupeKey::Lead(digest(&parts)),
            expires_at: Some(at + window),
        }
    }
    fn records(&self, customer: &CustomerId, lead_id: &str, from: &Provenance, at: OffsetDateTime) -> Vec<Write> {
        vec![Write::RecordLead(LeadRecord {
            lead_id: lead_id.to_owned(),
            customer_id: customer.clone(),
            brand: self.brand.to_string(),
            click_id: self.click_id.as_ref().map(ToString::to_string),
            email: self.email.as_ref().map(ToString::to_string),
            phone: self.phone.as_ref().map(ToString::to_string),
            device_id: self.device_id.as_ref().map(ToString::to_string),
            first_name: self.names.first.clone(),
            last_name: self.names.last.clone(),
            campaign: self.campaign.clone(),
            attribution: None,
            counted: None,
            source_id: from.source_id.clone(),
            client_ip: from.client_ip.clone(),
            test: from.test,
            unlisted_identifiers: Vec::new(),
            counted_rows: Vec::new(),
            voided: None,
            at,
        })]
    }
}

impl Ingest for PostbackCommand {
    const KIND: &'static str = "postback";
    fn into_test(mut self) -> Result<Self, FieldError> {
        self.click_id = self.click_id.map(test_click_id).transpose()?;
        self.visit = self.visit.map(test_click_id).transpose()?;
        Ok(self)
    }
    fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError> {
        PostbackCommand::parse(fields, defaults)
    }
    /// An `occurredAt` in the future is a clock or mapping error, and one older than the
    /// stats keep a day open for would rewrite closed reports: both are refused.
    fn check_at(&self, now: OffsetDateTime) -> Result<(), FieldError> {
        check_occurred(self.occurred_at, now)
    }
    fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
    fn brand(&self) -> &Brand {
        &self.brand
    }
    fn touch(&self, at: OffsetDateTime) -> Touch {
        Touch {
            revenue: self.revenue(),
            facts: Facts {
                consent: self.consent,
                timezone: self.timezone.clone(),
                exclusion: self.kind.exclusion(),
                source: Self::KIND,
            },
            ..Touch::new(self.identifiers(), self.brand.clone(), self.kind.milestone(), at)
        }
    }
    /// The operator's transaction id when it sent one (held for ever), else a fingerprint of
    /// the normalised payload (held for `window`).
    fn guard(&self, at: OffsetDateTime, window: Duration) -> Guard {
        if let Some(id) = &self.transaction_id {
            return Guard::Claim {
                key: DedupeKey::Transaction {
                    operator: self.brand.clone(),
                    id: id.clone(),
                },
                expires_at: None,
            };
        }
        let ids: Vec<String> = self.identifiers().iter().map(Identifier::tag).collect();
        let amount = self.amount.map(|a| a.to_string()).unwrap_or_default();
        let mut parts = vec![
            "postback",
            self.kind.as_str(),
            self.brand.as_str(),
            &amount,
            self.currency.as_str(),
        ];
        parts.extend(ids.iter().map(String::as_str));
        Guard::Claim {
            key: DedupeKey::Postback(digest(&parts)),
            expires_at: Some(at + window),
        }
    }
    fn records(&self, customer: &CustomerId, event_id: &str, from: &Provenance, at: OffsetDateTime) -> Vec<Write> {
        vec![Write::RecordEvent(EventRecord {
            event_id: event_id.to_owned(),
            customer_id: customer.clone(),
            brand: self.brand.to_string(),
            event_type: self.kind.as_str().to_owned(),
            amount: self.amount.map(|a| a.to_string()),
            currency: self.amount.map(|_| self.currency.to_string()),
            transaction_id: self.transaction_id.as_ref().map(ToString::to_string),
            click_id: self.click_id.as_ref().map(ToString::to_string),
            user_id: self.user_id.as_ref().map(ToString::to_string),
            // A time in the future is a clock or mapping error: the arrival time stands.
            occurred_at: self.occurred_at.filter(|t| *t <= at + MAX_CLOCK_SKEW),
            identified_by: self
                .identifiers()
                .iter()
                .map(|i| i.kind().as_str().to_owned())
                .collect(),
            attribution: None,
            counted: None,
            source_id: from.source_id.clone(),
            client_ip: from.client_ip.clone(),
            test: from.test,
            unlisted_identifiers: Vec::new(),
            counted_rows: Vec::new(),
            voided: None,
            at,
        })]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Names;
    use crate::values::Currency;
    use crate::values::{ClickId, Email, format_ts};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn cid(n: u8) -> CustomerId {
        CustomerId::parse(&format!("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a{n:02}")).unwrap()
    }
    fn fresh() -> FreshIds {
        FreshIds {
            customer: cid(99),
            merge: "m1".into(),
        }
    }
    fn click(s: &str) -> Identifier {
        Identifier::ClickId(ClickId::parse(s).unwrap())
    }
    fn email(s: &str) -> Identifier {
        Identifier::Email(Email::parse(s).unwrap())
    }
    fn touch(ids: Vec<Identifier>) -> Touch {
        Touch {
            identifiers: ids,
            brand: Brand::unbranded(),
            milestone: Milestone::Touched,
            names: Names::default(),
            revenue: None,
            facts: Default::default(),
            test: false,
            via: None,
            at: T0,
        }
    }
    fn ready(p: Planned) -> TouchPlan {
        match p {
            Planned::Ready(plan) => plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    #[test]
    fn unknown_identifiers_create_a_customer_claiming_all_of_them() {
        let plan = ready(plan_touch(
            &touch(vec![click("c1"), email("a@b.co")]),
            &Owners::new(),
            &BTreeMap::new(),
            &fresh(),
            "click",
        ));
        assert!(plan.created);
        assert_eq!(plan.customer, cid(99));
        assert!(matches!(plan.writes[0], Write::CreateProfile(ref p) if p.identifiers.len() == 2));
        assert_eq!(
            plan.writes
                .iter()
                .filter(|w| matches!(w, Write::ClaimIdentifier { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn known_identifier_attaches_new_ones_to_its_owner_without_reading_the_profile() {
        let owners = Owners::from([(click("c1"), cid(1))]);
        let plan = ready(plan_touch(
            &touch(vec![click("c1"), email("a@b.co")]),
            &owners,
            &BTreeMap::new(),
            &fresh(),
            "lead",
        ));
        assert_eq!((plan.customer.clone(), plan.created), (cid(1), false));
        assert!(matches!(plan.writes[0], Write::ApplyTouch { ref customer, bounded: true, .. } if *customer == cid(1)));
        assert_eq!(
            plan.writes[1],
            Write::ClaimIdentifier {
                identifier: email("a@b.co"),
                customer: cid(1),
                at: T0
            }
        );
        assert_eq!(plan.writes.len(), 2);
    }

    #[test]
    fn identifiers_of_two_customers_ask_for_their_profiles_then_merge_into_the_oldest() {
        let owners = Owners::from([(click("c2"), cid(2)), (email("a@b.co"), cid(1))]);
        let t = touch(vec![click("c2"), email("a@b.co")]);
        assert_eq!(
            plan_touch(&t, &owners, &BTreeMap::new(), &fresh(), "lead"),
            Planned::NeedProfiles(vec![cid(1), cid(2)])
        );

        let mut p1 = Profile::new(cid(1), &touch(vec![email("a@b.co")]));
        p1.version = 4;
        let p2 = Profile::new(cid(2), &touch(vec![click("c2"), click("c3")]));
        let profiles = BTreeMap::from([(cid(1), p1), (cid(2), p2)]);
        let plan = ready(plan_touch(
            &t,
            &owners,
            &profiles,
            &fresh(),
            "lead linked EMAIL, CLICK_ID",
        ));

        assert_eq!((plan.customer.clone(), plan.absorbed.clone()), (cid(1), vec![cid(2)]));
        assert!(
            matches!(plan.writes[0], Write::ReplaceProfile { expected_version: 4, ref profile } if profile.identifiers.len() == 3)
        );
        assert!(plan.writes.contains(&Write::MarkMerged {
            customer: cid(2),
            into: cid(1),
            expected_version: 1,
            at: T0
        }));
        for c in ["c2", "c3"] {
            assert!(plan.writes.contains(&Write::RepointIdentifier {
                identifier: click(c),
                from: cid(2),
                to: cid(1)
            }));
        }
        assert!(matches!(plan.writes.last(), Some(Write::RecordMerge(m)) if m.absorbed == vec![cid(2)]));
    }

    #[test]
    fn an_identifier_left_on_a_tombstone_resolves_to_the_survivor_and_is_repointed() {
        let owners = Owners::from([(click("c2"), cid(2))]);
        let mut tomb = Profile::new(cid(2), &touch(vec![click("c2")]));
        tomb.merged_into = Some(cid(1));
        let profiles = BTreeMap::from([(cid(2), tomb)]);
        assert_eq!(
            plan_touch(&touch(vec![click("c2")]), &owners, &profiles, &fresh(), "x"),
            Planned::NeedProfiles(vec![cid(1)])
        );

        let mut profiles = profiles;
        profiles.insert(cid(1), Profile::new(cid(1), &touch(vec![click("c1")])));
        let plan = ready(plan_touch(&touch(vec![click("c2")]), &owners, &profiles, &fresh(), "x"));
        assert_eq!(plan.customer, cid(1));
        assert!(plan.writes.contains(&Write::RepointIdentifier {
            identifier: click("c2"),
            from: cid(2),
            to: cid(1)
        }));
    }

    fn postback(pairs: &[(&str, &str)]) -> PostbackCommand {
        let defaults = crate::input::Defaults {
            brand: None,
            currency: Currency::parse("USD").unwrap(),
            phone_region: crate::values::PhoneRegion::parse("US").unwrap(),
        };
        PostbackCommand::parse(&pairs.iter().copied().collect(), &defaults).unwrap()
    }

    fn key(g: Guard) -> DedupeKey {
        match g {
            Guard::Claim { key, .. } => key,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[test]
    fn a_full_profile_lists_no_more_click_ids_but_still_a_new_email() {
        let mut p = Profile::new(cid(1), &touch(vec![email("a@b.co")]));
        for n in 0..MAX_LISTED_IDENTIFIERS - 1 {
            p.identifiers.insert(click(&format!("c{n}")));
        }
        assert_eq!(p.identifiers.len(), MAX_LISTED_IDENTIFIERS);
        let new = [click("c-new"), email("a@b.co"), email("new@b.co")];
        assert_eq!(listed_identifiers(&p, &new), vec![email("new@b.co")]);
        let roomy = Profile::new(cid(2), &touch(vec![email("a@b.co")]));
        assert_eq!(
            listed_identifiers(&roomy, &new),
            vec![click("c-new"), email("new@b.co")]
        );
        // Re-planned with the profile read, the update carries no size condition.
        let owners = Owners::from([(email("a@b.co"), cid(1))]);
        let profiles = BTreeMap::from([(cid(1), p)]);
        let plan = ready(plan_touch(&touch(new.to_vec()), &owners, &profiles, &fresh(), "x"));
        assert!(
            matches!(&plan.writes[0], Write::ApplyTouch { touch, bounded: false, .. }
            if touch.identifiers == vec![email("new@b.co")])
        );
        assert_eq!(plan.unlisted, vec![click("c-new")]);
        // Every new identifier is still claimed, listed or not.
        let claimed: Vec<&Identifier> = plan
            .writes
            .iter()
            .filter_map(|w| match w {
                Write::ClaimIdentifier { identifier, .. } => Some(identifier),
                _ => None,
            })
            .collect();
        assert_eq!(claimed, [&click("c-new"), &email("new@b.co")]);
    }

    #[test]
    fn a_full_profile_keeps_its_newest_click_ids_and_its_first_emails() {
        let mut p = Profile::new(cid(1), &touch(vec![email("a@b.co")]));
        let mut ages = BTreeMap::new();
        for n in 0..MAX_LISTED_IDENTIFIERS - 1 {
            p.identifiers.insert(click(&format!("c{n:03}")));
            ages.insert(click(&format!("c{n:03}")), T0 + Duration::seconds(n as i64));
        }
        // c050 is the oldest by age (not by name).
        ages.insert(click("c050"), T0 - Duration::days(1));
        let fresh = [click("c-new"), email("x@b.co")];
        let t = touch(fresh.to_vec());
        let (next, not_listed) = make_room(&p, &t, &fresh, &ages);
        assert!(
            next.identifiers.contains(&click("c-new")),
            "the newest click id is listed"
        );
        assert!(!next.identifiers.contains(&click("c050")), "the oldest made room");
        assert!(
            !next.identifiers.contains(&email("x@b.co")),
            "a contact does not push in"
        );
        assert!(next.identifiers.contains(&email("a@b.co")));
        assert_eq!(next.identifiers.len(), p.identifiers.len());
        assert_eq!(next.version, p.version + 1);
        assert_eq!(not_listed, vec![email("x@b.co"), click("c050")]);
    }

    #[test]
    fn occurred_at_must_be_within_ninety_days_and_five_minutes() {
        let at = |t: &str| postback(&[("event", "deposit"), ("clickId", "c1"), ("occurredAt", t)]);
        assert!(at("2026-11-20T00:00:00Z").check_at(T0).is_ok());
        let future = at(&format_ts(T0 + Duration::minutes(6)));
        assert_eq!(future.check_at(T0).unwrap_err().field, "occurredAt");
        let old = at(&format_ts(T0 - Duration::days(91)));
        assert_eq!(old.check_at(T0).unwrap_err().code, "out_of_range");
        assert!(at(&format_ts(T0 - Duration::days(89))).check_at(T0).is_ok());
    }

    #[test]
    fn an_unbound_source_claims_transaction_ids_in_its_own_namespace() {
        let cmd = postback(&[
            ("event", "deposit"),
            ("clickId", "c1"),
            ("txid", "T-9"),
            ("operator", "rushbet"),
        ]);
        let guard = cmd.guard(T0, Duration::hours(24));
        assert_eq!(
            guard.clone().for_source(None),
            guard,
            "no source, or a brand-bound one: the brand's"
        );
        assert_eq!(
            key(guard.for_source(Some("src_a"))),
            DedupeKey::SourceTransaction {
                source_id: "src_a".into(),
                id: TransactionId::parse("T-9").unwrap()
            }
        );
        let fingerprint = postback(&[("event", "deposit"), ("clickId", "c1")]).guard(T0, Duration::hours(24));
        assert_eq!(fingerprint.clone().for_source(Some("src_a")), fingerprint);
    }

    #[test]
    fn postback_guard_prefers_the_transaction_id_and_holds_it_for_ever() {
        let day = Duration::hours(24);
        let cmd = postback(&[
            ("event", "deposit"),
            ("clickId", "c1"),
            ("txid", "T-9"),
            ("operator", "rushbet"),
        ]);
        assert_eq!(
            cmd.guard(T0, day),
            Guard::Claim {
                key: DedupeKey::Transaction {
                    operator: Brand::parse("rushbet").unwrap(),
                    id: TransactionId::parse("T-9").unwrap()
                },
                expires_at: None
            }
        );
        let a = postback(&[("event", "deposit"), ("clickId", "c1"), ("amount", "100")]);
        let b = postback(&[("event", "deposit"), ("clickId", "c1"), ("amount", "100.00")]);
        let c = postback(&[("event", "deposit"), ("clickId", "c1"), ("amount", "101")]);
        assert_eq!(
            key(a.guard(T0, day)),
            key(b.guard(T0, day)),
            "same payload, same fingerprint"
        );
        assert_ne!(key(a.guard(T0, day)), key(c.guard(T0, day)));
        assert!(matches!(a.guard(T0, day), Guard::Claim { expires_at: Some(t), .. } if t == T0 + day));
    }

    #[test]
    fn a_claimed_request_commits_its_claim_and_records_and_only_guards_count_as_repeats() {
        let cmd = postback(&[
            ("event", "ftd"),
            ("clickId", "c1"),
            ("amount", "5"),
            ("operator", "rushbet"),
        ]);
        let guard = cmd.guard(T0, Duration::hours(24));
        let writes = request_writes(&cmd, &guard, &cid(1), "e1", &Provenance::default(), T0);
        let kinds: Vec<bool> = writes.iter().map(Write::is_guard).collect();
        assert_eq!(
            kinds,
            [true, false],
            "claim, event record (counting is not on the ingest path)"
        );
        assert!(matches!(&writes[0], Write::ClaimDedupe(c) if c.record_id == "e1" && c.customer == cid(1)));
    }
}
