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
}

impl Catalog {
    pub fn new(store: Store, defaults: BrandSettings, ttl: Duration) -> Self {
        Self {
            store,
            defaults,
            definitions: TtlCache::new(ttl),
            settings: TtlCache::new(ttl),
            templates: TtlCache::new(ttl),
        }
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
                let mut all = self.store.templates(&format!("{brand}#")).await?;
                all.extend(self.store.templates("*#").await?);
                all.extend(crm_render::built_ins());
                Ok(Arc::new(all))
            })
            .await
    }
}
