//! What operators write for messages: each brand's journey definition, the templates and
//! each brand's sending settings. The admin API and the console both come here, so a
//! definition is checked against the same templates and a built-in template is refused
//! the same way whichever door the change came through.

use crm_core::definition::{DefinitionError, JourneyDefinition};
use crm_core::message::{Message, Reason, Status};
use crm_core::profile::Profile;
use crm_core::send::SettingsOverride;
use crm_core::template::{MessageTemplate, resolve};
use crm_core::values::Brand;
use crm_render::{Rendered, TemplateError};
use crm_store::{MessagePosition, Store, StoreError};
use time::Date;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No such template (404).
    #[error("not found")]
    NotFound,
    /// A built-in template cannot be changed or deleted (400).
    #[error(
        "built-in templates cannot be changed; save your own for the same journey, stage and channel to outrank it"
    )]
    BuiltIn,
    /// A journey definition refused, its step named (400).
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A brand's journey definition, and whether it is the brand's own (else the default).
pub async fn journey(store: &Store, brand: &Brand) -> Result<(JourneyDefinition, bool), StoreError> {
    Ok(match store.journey_definition(brand).await? {
        Some(d) => (d, true),
        None => (JourneyDefinition::default_definition(), false),
    })
}

/// Saves a brand's definition once each of its steps has a template to send.
pub async fn save_journey(store: &Store, brand: &Brand, definition: &JourneyDefinition) -> Result<(), ContentError> {
    let templates = usable_templates(store, brand).await?;
    definition.validate(|step| resolve(&templates, step, brand, "en").is_some())?;
    store.put_journey_definition(brand, definition).await?;
    Ok(())
}

/// The templates a brand's messages may use: its own, those for every brand, the built-ins.
pub async fn usable_templates(store: &Store, brand: &Brand) -> Result<Vec<MessageTemplate>, StoreError> {
    let mut all = store.templates_for_brand(brand).await?;
    all.extend(crm_render::built_ins());
    Ok(all)
}

/// Every template: the saved ones, then the built-ins.
pub async fn all_templates(store: &Store) -> Result<Vec<MessageTemplate>, StoreError> {
    let mut all = store.templates("").await?;
    all.extend(crm_render::built_ins());
    Ok(all)
}

fn built_in(id: &str) -> Option<MessageTemplate> {
    crm_render::built_ins().into_iter().find(|t| t.template_id == id)
}

/// A saved template, else a built-in one.
pub async fn template(store: &Store, id: &str) -> Result<MessageTemplate, ContentError> {
    match store.template(id).await? {
        Some(t) => Ok(t),
        None => built_in(id).ok_or(ContentError::NotFound),
    }
}

/// Saves a template: a new one, or (`replacing`) the saved template of that id, whose id
/// and creation time it keeps. Built-ins are not replaced.
pub async fn save_template(
    store: &Store,
    mut template: MessageTemplate,
    replacing: Option<&str>,
) -> Result<MessageTemplate, ContentError> {
    if let Some(id) = replacing {
        if built_in(id).is_some() {
            return Err(ContentError::BuiltIn);
        }
        let existing = store.template(id).await?.ok_or(ContentError::NotFound)?;
        template.template_id = existing.template_id;
        template.created_at = existing.created_at;
    }
    store.put_template(&template).await?;
    Ok(template)
}

/// Deletes a saved template; built-ins stay.
pub async fn delete_template(store: &Store, id: &str) -> Result<(), ContentError> {
    if built_in(id).is_some() {
        return Err(ContentError::BuiltIn);
    }
    if store.delete_template(id).await? {
        Ok(())
    } else {
        Err(ContentError::NotFound)
    }
}

/// A template rendered for a customer (or the example values) under a brand's name, as a
/// preview: no unsubscribe link. The outer error is the store's, the inner the template's.
pub async fn preview(
    store: &Store,
    template: &MessageTemplate,
    brand: &Brand,
    customer: Option<&Profile>,
) -> Result<Result<Rendered, TemplateError>, StoreError> {
    let brand_name = store.brand_display_name(brand).await?;
    Ok(crm_render::preview(template, brand, &brand_name, customer))
}

/// How many customers of a brand are at each stage of its journeys now.
pub async fn stages(
    store: &Store,
    brand: &Brand,
) -> Result<std::collections::BTreeMap<crm_core::journey::Milestone, i64>, StoreError> {
    store.stage_counts(brand).await
}

/// A brand's own sending settings (empty: the deployment's defaults apply).
pub async fn settings(store: &Store, brand: &Brand) -> Result<SettingsOverride, StoreError> {
    Ok(store.brand_settings(brand).await?.unwrap_or_default())
}

/// Replaces a brand's own sending settings.
pub async fn save_settings(store: &Store, brand: &Brand, settings: &SettingsOverride) -> Result<(), StoreError> {
    store.put_brand_settings(brand, settings).await
}

/// Which of a day's messages a list shows.
#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    pub brand: Option<Brand>,
    pub status: Option<Status>,
    pub reason: Option<Reason>,
}

impl MessageFilter {
    fn keeps(&self, m: &Message) -> bool {
        self.brand.as_ref().is_none_or(|b| &m.brand == b)
            && self.status.is_none_or(|s| m.status == s)
            && self.reason.is_none_or(|r| m.reason == Some(r))
    }
}

fn position(m: &Message) -> MessagePosition {
    MessagePosition {
        customer: m.customer_id.clone(),
        message_id: m.message_id.clone(),
        created_at: m.created_at,
    }
}

/// Messages created on `day` (UTC), newest first, after a position, those the filter keeps:
/// up to `limit`, and where the next page starts (`None` at the end). A filter may need many
/// pages of a busy day: after `max_pages` reads of 100 the position says where the search
/// stopped, and the page may hold fewer than `limit`.
pub async fn messages_of_day(
    store: &Store,
    day: Date,
    mut after: Option<MessagePosition>,
    filter: &MessageFilter,
    limit: usize,
    max_pages: usize,
) -> Result<(Vec<Message>, Option<MessagePosition>), StoreError> {
    let mut found: Vec<Message> = Vec::new();
    let mut stopped_at = None;
    for page_number in 0..max_pages.max(1) {
        let (page, more) = store.messages_page(day, after.as_ref(), 100).await?;
        after = page.last().map(position);
        found.extend(page.into_iter().filter(|m| filter.keeps(m)));
        if found.len() > limit || !more {
            break;
        }
        if page_number + 1 == max_pages {
            stopped_at = after.clone();
        }
    }
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(position)
    } else {
        stopped_at
    };
    Ok((found, next))
}

/// Every message of a customer and of the customers merged into it, newest first.
pub async fn customer_messages(store: &Store, customer: &Profile) -> Result<Vec<Message>, StoreError> {
    let mut items = Vec::new();
    for id in std::iter::once(&customer.id).chain(&customer.merged_from) {
        items.extend(store.customer_messages(id).await?);
    }
    items.sort_by(|a, b| (b.created_at, &b.message_id).cmp(&(a.created_at, &a.message_id)));
    Ok(items)
}
