//! The serving engine: wasmtime's pooling allocator, so that each request's instance takes
//! memories, tables and stacks from pre-reserved slots instead of mmap'ing new ones.

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Instances that can exist at once unless the runtime option `PoolingMaxInstances` says
/// otherwise; requests beyond it wait for a slot.
pub const MAX_INSTANCES: u32 = 1000;

/// How instances are allocated, for the server's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    Pooling,
    OnDemand,
}

/// Pool sizes for `instances` concurrent component instances. A Rust component holds a few
/// core instances (its module plus the canonical ABI shims), one memory and a couple of
/// tables, so the core pools are sized by those factors. `max_memory_size`: the largest
/// memory of an instance (wasmtime's default without it).
pub fn pool_config(instances: u32, max_memory_size: Option<u64>) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(4))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(2))
        .total_stacks(instances);
    if let Some(bytes) = max_memory_size {
        pool.max_memory_size(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    pool
}

/// An engine with `base` and the pooling allocator; when the host refuses the pool's address
/// space reservation (e.g. a low `ulimit -v`), one with `base` alone, and why.
pub fn serving_engine(
    base: Config,
    pool: PoolingAllocationConfig,
) -> anyhow::Result<(wasmtime::Engine, Allocator, Option<String>)> {
    let mut pooled = base.clone();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match wasmtime::Engine::new(&pooled) {
        Ok(engine) => Ok((engine, Allocator::Pooling, None)),
        Err(e) => {
            let engine = wasmtime::Engine::new(&base)?;
            Ok((engine, Allocator::OnDemand, Some(format!("{e:#}"))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> wasmtime::Config {
        crate::engine::base_config(&Default::default()).unwrap()
    }

    #[test]
    fn the_pool_is_reserved() {
        let (_, allocator, why) = serving_engine(base(), pool_config(MAX_INSTANCES, None)).unwrap();
        assert_eq!(allocator, Allocator::Pooling, "{why:?}");
    }

    #[test]
    fn an_unreservable_pool_falls_back_to_on_demand() {
        // Far beyond the 128 TiB of a process's address space: the pool cannot be set up.
        let pool = pool_config(u32::MAX / 4, Some(1 << 40));
        let (engine, allocator, why) = serving_engine(base(), pool).unwrap();
        assert_eq!(allocator, Allocator::OnDemand);
        assert!(why.is_some_and(|why| !why.is_empty()));
        drop(engine);
    }
}
