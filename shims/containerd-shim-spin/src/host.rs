//! Spin's host interfaces, as the `spin-sdk` crates import them: `fermyon:spin/variables@2.0.0`
//! and `wasi:config/store@0.2.0-draft-2024-09-27` (a component's variables, see [`variables`];
//! the second is how Spin's other SDKs read them) and `fermyon:spin/key-value@2.0.0` (the
//! stores the component was granted, see [`key_value`]).
//!
//! The interfaces are added to the linker of every server the Spin engine links (so a
//! component importing them links at create); each instance gets a [`InstanceHost`] made from its
//! component's [`ComponentHost`].

mod async_interfaces;
pub mod key_value;
pub mod runtime_config;
pub mod variables;

use std::collections::BTreeMap;
use std::sync::Arc;

use containerd_shim_wasmtime::http::{HostData, RequestState};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

pub use key_value::KvStore;

wasmtime::component::bindgen!({
    // The two interfaces as the spin-sdk crates (3.x to 5.x) declare them in their
    // `wit/deps/spin@2.0.0`; a component's import names must match them exactly.
    inline: r#"
        package fermyon:spin@2.0.0;

        interface variables {
            get: func(name: string) -> result<string, error>;

            variant error {
                invalid-name(string),
                undefined(string),
                provider(string),
                other(string),
            }
        }

        interface key-value {
            resource store {
                open: static func(label: string) -> result<store, error>;
                get: func(key: string) -> result<option<list<u8>>, error>;
                set: func(key: string, value: list<u8>) -> result<_, error>;
                delete: func(key: string) -> result<_, error>;
                exists: func(key: string) -> result<bool, error>;
                get-keys: func() -> result<list<string>, error>;
            }

            variant error {
                store-table-full,
                no-such-store,
                access-denied,
                other(string),
            }
        }

        world spin-interfaces {
            import variables;
            import key-value;
        }
    "#,
    with: {
        "fermyon:spin/key-value.store": KvStore,
    },
    imports: { default: trappable },
});

use fermyon::spin::key_value as kv;
use fermyon::spin::variables as vars;
use wasi_config::wasi::config::store as config;

mod wasi_config {
    wasmtime::component::bindgen!({
        // As Spin's SDKs declare it (`wit/deps/wasi-runtime-config-2024-09-27`).
        inline: r#"
            package wasi:config@0.2.0-draft-2024-09-27;

            interface store {
                variant error {
                    upstream(string),
                    io(string),
                }
                get: func(key: string) -> result<option<string>, error>;
                get-all: func() -> result<list<tuple<string, string>>, error>;
            }

            world config {
                import store;
            }
        "#,
        imports: { default: trappable },
    });
}

/// What the host interfaces give one component: its variables' values and the stores it may
/// open, by label.
pub struct ComponentHost {
    pub variables: BTreeMap<String, String>,
    pub stores: BTreeMap<String, KvStore>,
}

impl ComponentHost {
    /// The state each of the component's instances starts with.
    pub fn host_data(self: Arc<Self>) -> HostData {
        Arc::new(move || {
            Box::new(InstanceHost {
                component: self.clone(),
                open_stores: ResourceTable::new(),
                open: 0,
            })
        })
    }
}

/// One instance's state: its component's, and the stores it has opened.
pub struct InstanceHost {
    component: Arc<ComponentHost>,
    open_stores: ResourceTable,
    /// How many entries `open_stores` has.
    open: usize,
}

/// The stores an instance may hold open at once (Spin's limit too).
const MAX_OPEN_STORES: usize = 256;

/// Adds the interfaces to a server's linker (`containerd_shim_wasmtime::http::AddHostInterfaces`).
pub fn add_to_linker(linker: &mut Linker<RequestState>) -> anyhow::Result<()> {
    vars::add_to_linker::<_, HasSelf<InstanceHost>>(linker, instance_host)?;
    kv::add_to_linker::<_, HasSelf<InstanceHost>>(linker, instance_host)?;
    config::add_to_linker::<_, HasSelf<InstanceHost>>(linker, instance_host)?;
    async_interfaces::add_to_linker(linker)?;
    Ok(())
}

fn instance_host(state: &mut RequestState) -> &mut InstanceHost {
    state.host_data()
}

/// Why a variable cannot be given.
pub enum VariableError {
    InvalidName(String),
    Undefined(String),
}

/// Why a store cannot be opened.
pub enum OpenError {
    AccessDenied,
    TableFull,
}

/// What both releases of the interfaces do, on the instance's state.
impl InstanceHost {
    fn variable(&self, name: &str) -> Result<String, VariableError> {
        variables::check_name(name).map_err(VariableError::InvalidName)?;
        self.component.variables.get(name).cloned().ok_or_else(|| {
            VariableError::Undefined(format!(
                "no variable for {name:?}: the component's manifest entry does not give it"
            ))
        })
    }

    fn open_store(
        &mut self,
        label: &str,
    ) -> wasmtime::Result<Result<Resource<KvStore>, OpenError>> {
        let Some(store) = self.component.stores.get(label) else {
            return Ok(Err(OpenError::AccessDenied));
        };
        if self.open >= MAX_OPEN_STORES {
            return Ok(Err(OpenError::TableFull));
        }
        let opened = self.open_stores.push(store.clone())?;
        self.open += 1;
        Ok(Ok(opened))
    }

    /// The open store `handle` names (a handle to its database).
    fn store(&self, handle: &Resource<KvStore>) -> wasmtime::Result<KvStore> {
        Ok(self.open_stores.get(handle)?.clone())
    }

    fn close_store(&mut self, handle: Resource<KvStore>) -> wasmtime::Result<()> {
        self.open_stores.delete(handle)?;
        self.open -= 1;
        Ok(())
    }
}

impl vars::Host for InstanceHost {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, vars::Error>> {
        Ok(self.variable(&name).map_err(|e| match e {
            VariableError::InvalidName(why) => vars::Error::InvalidName(why),
            VariableError::Undefined(why) => vars::Error::Undefined(why),
        }))
    }
}

/// `wasi:config/store`: the component's variables, as Spin gives them there (an unknown key is
/// `none`).
impl config::Host for InstanceHost {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, config::Error>> {
        Ok(Ok(self.component.variables.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, config::Error>> {
        Ok(Ok(self
            .component
            .variables
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()))
    }
}

impl kv::Host for InstanceHost {}

impl kv::HostStore for InstanceHost {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<KvStore>, kv::Error>> {
        Ok(self.open_store(&label)?.map_err(|e| match e {
            OpenError::AccessDenied => kv::Error::AccessDenied,
            OpenError::TableFull => kv::Error::StoreTableFull,
        }))
    }

    fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::Error>> {
        Ok(self.store(&store)?.get(&key).map_err(other))
    }

    fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        Ok(self.store(&store)?.set(&key, &value).map_err(other))
    }

    fn delete(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        Ok(self.store(&store)?.delete(&key).map_err(other))
    }

    fn exists(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, kv::Error>> {
        Ok(self.store(&store)?.exists(&key).map_err(other))
    }

    fn get_keys(
        &mut self,
        store: Resource<KvStore>,
    ) -> wasmtime::Result<Result<Vec<String>, kv::Error>> {
        Ok(self.store(&store)?.keys().map_err(other))
    }

    fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.close_store(store)
    }
}

/// A store's failure as the guest sees it (the host's message, also logged by the store).
fn other(e: anyhow::Error) -> kv::Error {
    kv::Error::Other(format!("{e:#}"))
}
