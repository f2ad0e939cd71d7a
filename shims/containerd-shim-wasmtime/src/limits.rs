//! What a container's settings ask of each store: caps on its memories and tables
//! (`StoreLimits`), and the epoch deadline that ends a request taking too long.
//!
//! Every engine of the shim compiles with epoch interruption (so that code compiled at create
//! runs in any of them): a store must then always have a deadline, [`NO_DEADLINE`] unless a
//! request has one. The epoch advances every [`TICK`] only in a server that has a request
//! deadline ([`start_ticker`]).

use std::time::Duration;

use containerd_shim_wasm::ContainerSettings;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

/// The deadline of a store that has none: more ticks than any process lives.
pub const NO_DEADLINE: u64 = u64::MAX / 2;

/// How often the epoch advances while a deadline is watched.
pub const TICK: Duration = Duration::from_millis(10);

/// The caps `settings` put on memories and tables; none by default.
pub fn store_limits(settings: &ContainerSettings) -> StoreLimits {
    let mut limits = StoreLimitsBuilder::new();
    if let Some(bytes) = settings.max_memory {
        limits = limits.memory_size(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    if let Some(elements) = settings.max_table_elements {
        limits = limits.table_elements(usize::try_from(elements).unwrap_or(usize::MAX));
    }
    limits.build()
}

/// Makes `store` hold to its data's limits, with `deadline` (or none) from now.
pub fn apply<T: 'static>(
    store: &mut Store<T>,
    limits: fn(&mut T) -> &mut StoreLimits,
    deadline: Option<Duration>,
) {
    store.limiter(move |data| limits(data) as &mut dyn wasmtime::ResourceLimiter);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(deadline.map_or(NO_DEADLINE, ticks));
}

/// The ticks in `deadline`, rounded up.
fn ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(NO_DEADLINE).max(1)
}

/// Advances `engine`'s epoch every [`TICK`] for as long as the process lives.
pub fn start_ticker(engine: &wasmtime::Engine) -> anyhow::Result<()> {
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        })?;
    Ok(())
}

/// Whether `error` is a store stopped at its epoch deadline.
pub fn is_deadline(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_ticks() {
        assert_eq!(ticks(Duration::from_millis(1)), 1);
        assert_eq!(ticks(Duration::from_millis(10)), 1);
        assert_eq!(ticks(Duration::from_millis(11)), 2);
        assert_eq!(ticks(Duration::from_secs(2)), 200);
    }
}
