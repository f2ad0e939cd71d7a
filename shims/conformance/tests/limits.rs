//! `linux.resources` of the spec hold for every container, Wasm or native: a memory limit
//! ends a module that grows past it as the OOM killer ends any process (137, `/tasks/oom`),
//! a CPU quota caps a spinning module, a pids limit caps a native program's threads. runc is
//! the reference.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::api::Api;
use shim_conformance::container::Status;
use shim_conformance::events::{TASK_TOPICS, task_events_of};
use shim_conformance::expect::EXIT_SIGKILL;
use shim_conformance::target::{all_targets, check_targets, check_targets_in_turn, native_targets};

const MIB: u64 = 1 << 20;
/// Room for the engine and the runtime's own memory, well below what `grow` asks for.
const MEMORY_LIMIT: u64 = 96 * MIB;

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn memory_within_the_limit_is_granted() {
    check_targets(&all_targets(), |target, test| {
        target
            .container(test)
            .flag("--memory-limit", &MEMORY_LIMIT.to_string())
            .run(&target.args(&["grow", "16"]))?
            .expect(0, "growing 16 MiB\ngrew 16 MiB\n")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn growing_past_the_memory_limit_is_an_oom_kill() {
    check_targets(&all_targets(), |target, test| {
        let api = Api::connect()?;
        let mut events = api.subscribe(TASK_TOPICS)?;
        let container = target
            .container(test)
            .flag("--memory-limit", &MEMORY_LIMIT.to_string());
        container
            .run(&target.args(&["grow", "512"]))?
            .expect(EXIT_SIGKILL, "growing 512 MiB\n")?;
        let seen = task_events_of(&mut events, container.id(), Duration::from_secs(10))?;
        let topics: Vec<&str> = seen.iter().map(|e| e.topic.as_str()).collect();
        ensure!(
            topics.contains(&"/tasks/oom"),
            "no /tasks/oom for {} after the OOM kill; its events: {topics:?}",
            container.id()
        );
        Ok(())
    });
}

/// A spinning program under a quota of a tenth of a CPU uses about that, measured from the
/// cgroup's CPU time over a few seconds; and the cgroup reports the throttling.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_cpu_quota_caps_a_spinning_program() {
    const QUOTA: f64 = 0.1;
    const MEASURED_FOR: Duration = Duration::from_secs(3);
    // One pass at a time: the machine's cores are shared, and a sample must not include
    // another target's start-up.
    check_targets_in_turn(&all_targets(), |target, test| {
        let container = target
            .container(test)
            .flag("--cpu-period", "100000")
            .flag("--cpu-quota", &((QUOTA * 100_000.0) as u64).to_string());
        container.run_detached(&target.args(&["loop"]))?;
        container.wait_for_status(Status::Running, Duration::from_secs(10))?;
        // Past the start-up (module load), into the loop.
        std::thread::sleep(Duration::from_millis(500));
        let (used_before, _) = cpu(&container)?;
        let began = Instant::now();
        std::thread::sleep(MEASURED_FOR);
        let (used_after, throttled) = cpu(&container)?;
        let share = (used_after - used_before) as f64 / began.elapsed().as_nanos() as f64;
        eprintln!("[{target}] CPU share under a quota of {QUOTA}: {share:.3}");
        ensure!(
            share <= QUOTA * 1.5,
            "{} used {share:.3} of a CPU under a quota of {QUOTA}",
            container.id()
        );
        ensure!(
            share >= QUOTA * 0.3,
            "{} used only {share:.3} of a CPU: is it spinning at all?",
            container.id()
        );
        ensure!(
            throttled > 0,
            "the cgroup of {} reports no throttled period",
            container.id()
        );
        container.kill("SIGKILL")?;
        container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
        Ok(())
    });
}

/// CPU time used (ns) and throttled periods, from `ctr task metrics` (cgroup v1 or v2 layout).
fn cpu(container: &shim_conformance::container::Container) -> Result<(u64, u64)> {
    let metrics = container.metrics()?;
    let v1 = (
        metrics["cpu"]["usage"]["total"].as_u64(),
        metrics["cpu"]["throttling"]["throttled_periods"].as_u64(),
    );
    // v2 reports microseconds.
    let v2 = (
        metrics["cpu"]["usage_usec"].as_u64().map(|us| us * 1000),
        metrics["cpu"]["nr_throttled"].as_u64(),
    );
    match (v1, v2) {
        ((Some(used), Some(throttled)), _) | (_, (Some(used), Some(throttled))) => {
            Ok((used, throttled))
        }
        _ => bail!(
            "no CPU usage in the metrics of {}: {metrics}",
            container.id()
        ),
    }
}

/// `linux.resources.pids.limit` stops a native program from starting more threads (each is
/// a task the pids controller counts). ctr has no flag for it: the spec is edited.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_pids_limit_caps_a_native_program() {
    const LIMIT: i64 = 8;
    const ASKED: u32 = 40;
    check_targets(&native_targets(), |target, test| {
        let container = target.container(test);
        container.create(&target.args(&["threads", &ASKED.to_string()]))?;
        Api::connect()?.edit_spec(container.id(), |spec| {
            spec["linux"]["resources"]["pids"] = serde_json::json!({ "limit": LIMIT });
        })?;
        let out = container.start_task()?;
        let started: u32 = out
            .stdout
            .strip_prefix("started ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("`{}`: unexpected output; {}", out.command, out.describe()))?;
        ensure!(
            out.code == Some(1) && started >= 1 && (started as i64) < LIMIT,
            "`{}` under pids.limit={LIMIT} started {started} of {ASKED} threads; {}",
            out.command,
            out.describe()
        );
        Ok(())
    });
}
