//! What every measurement works with: the private containerd, an API connection, the
//! templates of the imported images, and fresh container ids.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use shim_conformance::api::{Api, Template};

use crate::config::{Paths, Sizes};
use crate::containerd::Containerd;
use crate::images;
use crate::variants::{Cache, Image, Variant};

pub struct Bench {
    pub paths: Paths,
    pub sizes: Sizes,
    pub containerd: Containerd,
    pub api: Api,
    templates: RefCell<HashMap<String, Arc<Template>>>,
    next_id: Cell<u64>,
}

impl Bench {
    pub fn new(paths: Paths, sizes: Sizes, containerd: Containerd) -> Result<Self> {
        // A task create compiles the module, and with sixteen of them on two cores that can
        // take a while; only a hung shim should hit this.
        let api = Api::connect_to(&containerd.endpoint)?.call_timeout(Duration::from_secs(120));
        Ok(Self {
            paths,
            sizes,
            containerd,
            api,
            templates: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        })
    }

    /// A container id not used before in this run, e.g. `cold-runc-12`.
    pub fn unique_id(&self, prefix: &str) -> String {
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        format!("{prefix}-{n}")
    }

    /// The template of an imported image, made on first use.
    pub fn template(&self, image: &Image) -> Result<Arc<Template>> {
        if let Some(template) = self.templates.borrow().get(&image.reference) {
            return Ok(template.clone());
        }
        let template = Arc::new(images::template(&self.containerd, &self.api, image)?);
        self.templates
            .borrow_mut()
            .insert(image.reference.clone(), template.clone());
        Ok(template)
    }

    /// Puts the precompile cache in the state the variant's next container must find.
    /// A cached variant relies on a warm-up container having filled it.
    pub fn before_each(&self, variant: &Variant) -> Result<()> {
        match variant.cache {
            Cache::Uncached => self.containerd.clear_cache(),
            Cache::Cached | Cache::None => Ok(()),
        }
    }
}
