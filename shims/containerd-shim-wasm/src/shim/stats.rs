//! Cgroup statistics in the shape containerd expects from runc's shim: the
//! `io.containerd.cgroups.v1.Metrics` message on cgroup v1 (and hybrid) hosts, the
//! `io.containerd.cgroups.v2.Metrics` message on unified hosts.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::MessageDyn;
use libcgroups::common::CgroupSetup;
use libcgroups::stats::Stats;

/// Converts `stats` into the metrics message for the host's cgroup `setup`.
pub fn to_metrics(stats: &Stats, setup: CgroupSetup) -> Box<dyn MessageDyn> {
    match setup {
        CgroupSetup::Unified => Box::new(to_v2(stats)),
        CgroupSetup::Legacy | CgroupSetup::Hybrid => Box::new(to_v1(stats)),
    }
}

fn to_v1(stats: &Stats) -> v1::Metrics {
    let mut metrics = v1::Metrics::new();

    let mut pids = v1::PidsStat::new();
    pids.current = stats.pids.current;
    pids.limit = stats.pids.limit;
    metrics.pids = Some(pids).into();

    let usage = &stats.cpu.usage;
    let mut cpu_usage = v1::CPUUsage::new();
    cpu_usage.total = usage.usage_total;
    cpu_usage.kernel = usage.usage_kernel;
    cpu_usage.user = usage.usage_user;
    cpu_usage.per_cpu = usage.per_core_usage_total.clone();
    let mut throttling = v1::Throttle::new();
    throttling.periods = stats.cpu.throttling.periods;
    throttling.throttled_periods = stats.cpu.throttling.throttled_periods;
    throttling.throttled_time = stats.cpu.throttling.throttled_time;
    let mut cpu = v1::CPUStat::new();
    cpu.usage = Some(cpu_usage).into();
    cpu.throttling = Some(throttling).into();
    metrics.cpu = Some(cpu).into();

    let memory = &stats.memory;
    let stat = |key: &str| memory.stats.get(key).copied().unwrap_or_default();
    let mut mem = v1::MemoryStat::new();
    mem.cache = memory.cache;
    mem.rss = stat("rss");
    mem.rss_huge = stat("rss_huge");
    mem.mapped_file = stat("mapped_file");
    mem.dirty = stat("dirty");
    mem.writeback = stat("writeback");
    mem.pg_fault = stat("pgfault");
    mem.pg_maj_fault = stat("pgmajfault");
    mem.inactive_anon = stat("inactive_anon");
    mem.active_anon = stat("active_anon");
    mem.inactive_file = stat("inactive_file");
    mem.active_file = stat("active_file");
    mem.unevictable = stat("unevictable");
    mem.hierarchical_memory_limit = stat("hierarchical_memory_limit");
    mem.total_cache = stat("total_cache");
    mem.total_rss = stat("total_rss");
    mem.usage = Some(memory_entry(&memory.memory)).into();
    mem.swap = Some(memory_entry(&memory.memswap)).into();
    mem.kernel = Some(memory_entry(&memory.kernel)).into();
    mem.kernel_tcp = Some(memory_entry(&memory.kernel_tcp)).into();
    metrics.memory = Some(mem).into();

    metrics
}

fn memory_entry(data: &libcgroups::stats::MemoryData) -> v1::MemoryEntry {
    let mut entry = v1::MemoryEntry::new();
    entry.limit = data.limit;
    entry.usage = data.usage;
    entry.max = data.max_usage;
    entry.failcnt = data.fail_count;
    entry
}

fn to_v2(stats: &Stats) -> v2::Metrics {
    let mut metrics = v2::Metrics::new();

    let mut pids = v2::PidsStat::new();
    pids.current = stats.pids.current;
    pids.limit = stats.pids.limit;
    metrics.pids = Some(pids).into();

    // libcgroups reports nanoseconds; cgroup v2 metrics are in microseconds.
    let usage = &stats.cpu.usage;
    let mut cpu = v2::CPUStat::new();
    cpu.usage_usec = usage.usage_total / 1000;
    cpu.user_usec = usage.usage_user / 1000;
    cpu.system_usec = usage.usage_kernel / 1000;
    cpu.nr_periods = stats.cpu.throttling.periods;
    cpu.nr_throttled = stats.cpu.throttling.throttled_periods;
    cpu.throttled_usec = stats.cpu.throttling.throttled_time / 1000;
    metrics.cpu = Some(cpu).into();

    let memory = &stats.memory;
    let stat = |key: &str| memory.stats.get(key).copied().unwrap_or_default();
    let mut mem = v2::MemoryStat::new();
    mem.anon = stat("anon");
    mem.file = stat("file");
    mem.kernel_stack = stat("kernel_stack");
    mem.slab = stat("slab");
    mem.sock = stat("sock");
    mem.shmem = stat("shmem");
    mem.file_mapped = stat("file_mapped");
    mem.pgfault = stat("pgfault");
    mem.pgmajfault = stat("pgmajfault");
    mem.usage = memory.memory.usage;
    mem.usage_limit = memory.memory.limit;
    mem.swap_usage = memory.memswap.usage;
    mem.swap_limit = memory.memswap.limit;
    metrics.memory = Some(mem).into();

    metrics
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::Message;

    fn sample() -> Stats {
        let mut stats = Stats::default();
        stats.memory.memory.usage = 4096;
        stats.memory.memory.limit = 1 << 20;
        stats.memory.stats.insert("rss".into(), 1024);
        stats.memory.stats.insert("anon".into(), 2048);
        stats.cpu.usage.usage_total = 5_000_000;
        stats.pids.current = 3;
        stats
    }

    #[test]
    fn v1_metrics_carry_memory_cpu_and_pids() {
        let metrics = to_metrics(&sample(), CgroupSetup::Hybrid);
        assert_eq!(
            metrics.descriptor_dyn().full_name(),
            "io.containerd.cgroups.v1.Metrics"
        );
        let bytes = metrics.write_to_bytes_dyn().unwrap();
        let back = v1::Metrics::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back.memory.usage.usage, 4096);
        assert_eq!(back.memory.rss, 1024);
        assert_eq!(back.cpu.usage.total, 5_000_000);
        assert_eq!(back.pids.current, 3);
    }

    #[test]
    fn v2_metrics_use_microseconds() {
        let metrics = to_metrics(&sample(), CgroupSetup::Unified);
        assert_eq!(
            metrics.descriptor_dyn().full_name(),
            "io.containerd.cgroups.v2.Metrics"
        );
        let back = v2::Metrics::parse_from_bytes(&metrics.write_to_bytes_dyn().unwrap()).unwrap();
        assert_eq!(back.memory.usage, 4096);
        assert_eq!(back.memory.anon, 2048);
        assert_eq!(back.cpu.usage_usec, 5000);
    }
}
