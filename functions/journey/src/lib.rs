//! The journey function: reads committed profile changes from the table's stream and has
//! `crm_messaging::journey` schedule, cancel or wake the customer's messages; new deposit
//! events move the customer's dormancy timer (`crm_messaging::advance`). Records are
//! processed in order; on a failure the batch reports that record, so Lambda retries from
//! it (and only the records after it), keeping each customer's changes in order. A name a
//! profile gains goes into the customer search (`Store::index_names`); a brand's stage
//! that moves moves its count of customers at each stage (`Store::move_stage`).

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use crm_app::batch;
use crm_app::metrics::Metrics;
use crm_core::profile::{Profile, name_keys, stage_moves};
use crm_messaging::Deps;
use crm_messaging::advance::record_deposit;
use crm_messaging::journey::{Planned, matters, process_change};
use crm_store::{StoreError, event_from_image, profile_from_image};
use time::OffsetDateTime;

pub async fn handle(deps: &Deps, event: Event) -> DynamoDbEventResponse {
    batch::stream(&event, async |record, now| process(deps, record, now).await)
        .await
        .0
}

/// One stream record: a profile whose journeys, addresses or merges moved is planned for;
/// a new deposit moves the customer's dormancy timer; every other item and change is
/// skipped.
pub async fn process(deps: &Deps, record: &EventRecord, now: OffsetDateTime) -> Result<Planned, StoreError> {
    let Some(after) = profile_from_image(record.change.new_image.clone())? else {
        if record.event_name == "INSERT"
            && let Some(event) = event_from_image(record.change.new_image.clone())?
        {
            record_deposit(deps, &event, now).await?;
        }
        return Ok(Planned::default());
    };
    let before = profile_from_image(record.change.old_image.clone())?;
    index_new_names(deps, before.as_ref(), &after).await?;
    for (brand, from, to) in stage_moves(before.as_ref(), &after) {
        deps.store.move_stage(&after.id, &brand, from, to).await?;
    }
    if !matters(before.as_ref(), &after) {
        return Ok(Planned::default());
    }
    let planned = process_change(deps, before.as_ref(), &after, now).await?;
    if planned != Planned::default() {
        tracing::info!(customer_id = %after.id, scheduled = planned.scheduled, cancelled = planned.cancelled,
            woken = planned.woken, "journey change planned");
        Metrics::new()
            .count("MessagesScheduled", planned.scheduled)
            .count("MessagesCancelled", planned.cancelled)
            .emit();
    }
    Ok(planned)
}

/// A name a profile did not have before goes into the customer search (one transaction,
/// only while the profile is not erased). Merged-away profiles are their survivor's.
async fn index_new_names(deps: &Deps, before: Option<&Profile>, after: &Profile) -> Result<(), StoreError> {
    if after.erased || after.merged_into.is_some() {
        return Ok(());
    }
    let keys_of = |p: &Profile| name_keys(p.first_name.as_deref(), p.last_name.as_deref());
    let old = before.map(keys_of).unwrap_or_default();
    let new: Vec<String> = keys_of(after).into_iter().filter(|k| !old.contains(k)).collect();
    if !new.is_empty() {
        deps.store.index_names(&after.id, &new).await?;
    }
    Ok(())
}
