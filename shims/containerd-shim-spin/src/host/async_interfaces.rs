//! The WASI 0.3 shapes of the same interfaces, as spin-sdk 6 and later import them:
//! `spin:variables/variables@3.0.0` and `spin:key-value/key-value@3.0.0`, whose functions are
//! `async` (the component model's async ABI) and whose `get-keys` answers with a stream. They
//! serve the same component state as the 2.0.0 ones ([`InstanceHost`]).

use wasmtime::component::{Accessor, FutureReader, HasData, Linker, Resource, StreamReader};

use super::{InstanceHost, KvStore, instance_host};
use containerd_shim_wasmtime::http::RequestState;

wasmtime::component::bindgen!({
    // As spin-sdk 7 declares them (`wit/deps/spin-variables@3.0.0`, `spin-key-value@3.0.0`).
    inline: r#"
        package spin:host@3.0.0;

        package spin:variables@3.0.0 {
            interface variables {
                get: async func(name: string) -> result<string, error>;

                variant error {
                    invalid-name(string),
                    undefined(string),
                    provider(string),
                    other(string),
                }
            }
        }

        package spin:key-value@3.0.0 {
            interface key-value {
                resource store {
                    open: static async func(label: string) -> result<store, error>;
                    get: async func(key: string) -> result<option<list<u8>>, error>;
                    set: async func(key: string, value: list<u8>) -> result<_, error>;
                    delete: async func(key: string) -> result<_, error>;
                    exists: async func(key: string) -> result<bool, error>;
                    get-keys: async func() -> tuple<stream<string>, future<result<_, error>>>;
                }

                variant error {
                    store-table-full,
                    no-such-store,
                    access-denied,
                    other(string),
                }
            }
        }

        world async-interfaces {
            import spin:variables/variables@3.0.0;
            import spin:key-value/key-value@3.0.0;
        }
    "#,
    with: {
        "spin:key-value/key-value.store": crate::host::key_value::KvStore,
    },
    imports: { default: trappable },
});

use spin::key_value::key_value as kv;
use spin::variables::variables as vars;

/// The host state these interfaces reach through an [`Accessor`].
pub struct SpinState;

impl HasData for SpinState {
    type Data<'a> = &'a mut InstanceHost;
}

pub fn add_to_linker(linker: &mut Linker<RequestState>) -> anyhow::Result<()> {
    vars::add_to_linker::<_, SpinState>(linker, instance_host)?;
    kv::add_to_linker::<_, SpinState>(linker, instance_host)?;
    Ok(())
}

/// Runs `f` on the instance's host state.
fn with_host<T, R>(store: &Accessor<T, SpinState>, f: impl FnOnce(&mut InstanceHost) -> R) -> R {
    store.with(|mut access| f(access.get()))
}

impl vars::Host for InstanceHost {}

impl<T> vars::HostWithStore<T> for SpinState {
    async fn get(
        store: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, vars::Error>> {
        Ok(
            with_host(store, |host| host.variable(&name)).map_err(|e| match e {
                super::VariableError::InvalidName(why) => vars::Error::InvalidName(why),
                super::VariableError::Undefined(why) => vars::Error::Undefined(why),
            }),
        )
    }
}

impl kv::Host for InstanceHost {}

impl kv::HostStore for InstanceHost {
    fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.close_store(store)
    }
}

impl<T> kv::HostStoreWithStore<T> for SpinState {
    async fn open(
        store: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvStore>, kv::Error>> {
        with_host(store, |host| {
            Ok(host.open_store(&label)?.map_err(|e| match e {
                super::OpenError::AccessDenied => kv::Error::AccessDenied,
                super::OpenError::TableFull => kv::Error::StoreTableFull,
            }))
        })
    }

    async fn get(
        store: &Accessor<T, Self>,
        this: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::Error>> {
        Ok(with_host(store, |host| host.store(&this))?
            .get(&key)
            .map_err(other))
    }

    async fn set(
        store: &Accessor<T, Self>,
        this: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        Ok(with_host(store, |host| host.store(&this))?
            .set(&key, &value)
            .map_err(other))
    }

    async fn delete(
        store: &Accessor<T, Self>,
        this: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        Ok(with_host(store, |host| host.store(&this))?
            .delete(&key)
            .map_err(other))
    }

    async fn exists(
        store: &Accessor<T, Self>,
        this: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, kv::Error>> {
        Ok(with_host(store, |host| host.store(&this))?
            .exists(&key)
            .map_err(other))
    }

    async fn get_keys(
        store: &Accessor<T, Self>,
        this: Resource<KvStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), kv::Error>>)> {
        let kv_store = with_host(store, |host| host.store(&this))?;
        // The keys are read at once (a store's keys are few): the stream hands them over, the
        // future says whether reading them failed.
        let (keys, result) = match kv_store.keys() {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(other(e))),
        };
        store.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let result =
                FutureReader::new(&mut access, async move { Ok::<_, wasmtime::Error>(result) })?;
            Ok((keys, result))
        })
    }
}

fn other(e: anyhow::Error) -> kv::Error {
    kv::Error::Other(format!("{e:#}"))
}
