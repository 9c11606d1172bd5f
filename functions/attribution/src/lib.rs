//! The attribution function: reads new clicks, leads and events from the table's stream and
//! has `crm_app::attribution` attribute and count each (a redelivered record never counts
//! twice); an operator's `{"recount": …}` recounts days whose records never were. Counting
//! here, off the ingest path, keeps every ingest request away from the counters: 200 clicks
//! for one influencer at once are 200 independent ingests, then one reader adding them up.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use crm_app::batch;
use crm_app::metrics::{Metrics, Unit};
use crm_store::{StoreError, record_from_image};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crm_app::attribution::{
    CountedRecord, Deps, Outcome, Partners, Recount, RecountError, RecountReport, Resume, count, recount,
};

/// Records in order; on a failure the batch reports that record, so Lambda retries from it.
pub async fn handle(deps: &Deps, event: Event) -> DynamoDbEventResponse {
    let mut partners = Partners::default();
    let (response, outcomes) =
        batch::stream(&event, async |record, _| process(deps, &mut partners, record).await).await;
    let mut tally = Tally::default();
    outcomes.into_iter().for_each(|o| tally.add(o));
    tally.emit();
    response
}

/// What the function is invoked with: its table's stream, or an operator's recount
/// (`{"recount": {"from": "2026-11-01", "to": "2026-11-02"}}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    Recount { recount: Recount },
    Stream(Event),
}

/// What the function answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Stream(DynamoDbEventResponse),
    Recount(RecountReport),
}

pub async fn invoke(deps: &Deps, invocation: Invocation, budget: Duration) -> Result<Reply, RecountError> {
    Ok(match invocation {
        Invocation::Stream(event) => Reply::Stream(handle(deps, event).await),
        Invocation::Recount { recount: r } => Reply::Recount(recount(deps, &r, budget).await?),
    })
}

/// A batch's counts, published as one set of metrics (conversions and revenue by brand,
/// the attribution rate's two sides).
#[derive(Default)]
struct Tally {
    attributed: usize,
    attributable: usize,
    conversions: BTreeMap<String, usize>,
    revenue: BTreeMap<(String, String), Decimal>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        let Outcome::Counted(c) = outcome else { return };
        if c.attributable {
            self.attributable += 1;
            self.attributed += usize::from(c.attributed);
        }
        if c.conversion {
            *self.conversions.entry(c.brand.clone()).or_default() += 1;
        }
        if let Some((currency, amount)) = c.revenue {
            *self.revenue.entry((c.brand, currency.to_string())).or_default() += amount.to_decimal();
        }
    }

    fn emit(self) {
        Metrics::new()
            .count("Attributed", self.attributed)
            .count("Attributable", self.attributable)
            .emit();
        for (brand, n) in self.conversions {
            Metrics::new().dimension("Brand", brand).count("Conversions", n).emit();
        }
        for ((brand, currency), amount) in self.revenue {
            Metrics::new()
                .dimension("Brand", brand)
                .dimension("Currency", currency)
                .value("Revenue", amount.try_into().unwrap_or(0.0), Unit::None)
                .emit();
        }
    }
}

pub async fn process(deps: &Deps, partners: &mut Partners, record: &EventRecord) -> Result<Outcome, StoreError> {
    if record.event_name != "INSERT" {
        return Ok(Outcome::Skipped);
    }
    match record_from_image(record.change.new_image.clone())? {
        Some(activity) => count(deps, partners, &activity).await,
        None => Ok(Outcome::Skipped),
    }
}
