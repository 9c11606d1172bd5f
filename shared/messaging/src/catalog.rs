//! Journey definitions, brand settings and templates, read through a short per-instance
//! cache: a busy sender reads each brand's at most once per `SETTINGS_CACHE_SECONDS`, not
//! once per message. An edit takes effect within that period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_core::definition::JourneyDefinition;
use crm_core::schedule::Definitions;
use crm_core::send::BrandSettings;
use crm_core::template::MessageTemplate;
use crm_core::values::Brand;
use crm_render::{Compiled, TemplateError};
use crm_store::{Store, StoreError};

struct TtlCache<T> {
    ttl: Duration,
    entries: Mutex<HashMap<Brand, (Instant, T)>>,
}

impl<T: Clone> TtlCache<T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    async fn get_or_load<F, Fut>(&self, brand: &Brand, load: F) -> Result<T, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        if let Some((at, value)) = self.entries.lock().expect("cache lock").get(brand)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = load().await?;
        self.entries
            .lock()
            .expect("cache lock")
            .insert(brand.clone(), (Instant::now(), value.clone()));
        Ok(value)
    }
}

pub struct Catalog {
    store: Store,
    defaults: BrandSettings,
    definitions: TtlCache<Option<JourneyDefinition>>,
    settings: TtlCache<BrandSettings>,
    templates: TtlCache<Arc<Vec<MessageTemplate>>>,
    /// Parsed templates by id and version: parsing is most of a render's cost.
    compiled: Mutex<HashMap<(String, time::OffsetDateTime), Arc<Compiled>>>,
}

/// Parsed templates kept per instance before the cache starts over.
const MAX_COMPILED: usize = 500;

impl Catalog {
    pub fn new(store: Store, defaults: BrandSettings, ttl: Duration) -> Self {
        Self {
            store,
            defaults,
            definitions: TtlCache::new(ttl),
            settings: TtlCache::new(ttl),
            templates: TtlCache::new(ttl),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// `template` parsed, from the cache when this version was parsed before.
    pub fn compiled(&self, template: &MessageTemplate) -> Result<Arc<Compiled>, TemplateError> {
        let key = (template.template_id.clone(), template.updated_at);
        if let Some(c) = self.compiled.lock().expect("cache lock").get(&key) {
            return Ok(c.clone());
        }
        let compiled = Arc::new(crm_render::compile(template)?);
        let mut cache = self.compiled.lock().expect("cache lock");
        if cache.len() >= MAX_COMPILED {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }

    /// The definitions in force for `brands` (a brand without its own runs the default).
    pub async fn definitions(&self, brands: &[Brand]) -> Result<Definitions, StoreError> {
        let mut definitions = Definitions::default();
        for brand in brands {
            if brand.is_unbranded() {
                continue;
            }
            let own = self
                .definitions
                .get_or_load(brand, || self.store.journey_definition(brand))
                .await?;
            if let Some(d) = own {
                definitions.by_brand.insert(brand.clone(), d);
            }
        }
        Ok(definitions)
    }

    pub async fn settings(&self, brand: &Brand) -> Result<BrandSettings, StoreError> {
        self.settings
            .get_or_load(brand, || async {
                Ok(self
                    .store
                    .brand_settings(brand)
                    .await?
                    .unwrap_or_default()
                    .over(&self.defaults))
            })
            .await
    }

    /// Every template a message of `brand` may use: its own, those for all brands, and the
    /// built-in ones.
    pub async fn templates(&self, brand: &Brand) -> Result<Arc<Vec<MessageTemplate>>, StoreError> {
        self.templates
            .get_or_load(brand, || async {
                let mut all = self.store.templates_for_brand(brand).await?;
                all.extend(crm_render::built_ins());
                Ok(Arc::new(all))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let store = Store::from_sdk_config(&shared, "unused");
        let defaults = crate::MessagingConfig::from_lookup(|_| None).unwrap().defaults;
        Catalog::new(store, defaults, Duration::from_secs(60))
    }

    #[test]
    fn a_template_version_is_parsed_once() {
        let catalog = catalog();
        let mut template = crm_render::built_ins().remove(0);
        let first = catalog.compiled(&template).unwrap();
        assert!(Arc::ptr_eq(&first, &catalog.compiled(&template).unwrap()));
        template.updated_at += time::Duration::seconds(1);
        assert!(
            !Arc::ptr_eq(&first, &catalog.compiled(&template).unwrap()),
            "an edited template is parsed again"
        );
    }
}
