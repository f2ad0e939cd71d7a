//! Density: the memory of one pod of sleeping containers, summed over its shim and its
//! containers' processes, as the pod grows. Members join the sandbox container's shim
//! through the `io.kubernetes.cri.sandbox-id` annotation, as CRI arranges it (runc's shim
//! groups a pod the same way).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use shim_conformance::api::NewContainer;
use shim_conformance::container::{
    CONTAINER_TYPE_ANNOTATION as CONTAINER_TYPE, SANDBOX_ID_ANNOTATION as SANDBOX_ID,
};
use shim_conformance::procfs;

use crate::bench::Bench;
use crate::containerd::NAMESPACE;
use crate::memory::{self, Usage};
use crate::variants::Variant;

/// Time for the newest containers to reach their sleep (load, instantiate, print) before the
/// pod's memory is read.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Density {
    pub variant: String,
    pub label: String,
    pub points: Vec<Point>,
    /// The pod's PSS growth per added container, from the smallest to the largest pod.
    pub per_added_container_kib: Option<f64>,
    /// One member container's own process at the largest pod (what each one adds).
    pub member_process: Usage,
    /// The shim's process at the largest pod.
    pub shim_process: Usage,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub containers: usize,
    /// Shim processes serving the pod (1 when the pod shares its shim).
    pub shims: usize,
    /// Processes summed: shims and everything in the containers' cgroups.
    pub processes: usize,
    pub total: Usage,
}

pub fn measure(bench: &Bench, variant: &Variant) -> Result<Density> {
    // Untimed: fills the precompile cache, so that no pod member is the one that compiles.
    crate::cold_start::run_api(bench, variant, &["echo", "hi"]).context("warm-up run")?;
    let sandbox = bench.unique_id(&format!("pod-{}", variant.key));
    let mut members = Vec::new();
    let grown = grow_pod(bench, variant, &sandbox, &mut members);
    let removed = remove_all(bench, variant, &members);
    let (points, member_process, shim_process) = grown?;
    removed?;
    Ok(Density {
        variant: variant.key.to_owned(),
        label: variant.label.to_owned(),
        per_added_container_kib: per_added(&points),
        points,
        member_process,
        shim_process,
    })
}

/// Starts the pod's containers (recording each id in `members` as soon as it exists, for
/// removal), reads its memory at each size, then the largest pod's member and shim process.
fn grow_pod(
    bench: &Bench,
    variant: &Variant,
    sandbox: &str,
    members: &mut Vec<String>,
) -> Result<(Vec<Point>, Usage, Usage)> {
    let template = bench.template(&variant.image)?;
    let args = variant.image.args(&["sleep", "3600"]);
    let mut points = Vec::new();
    for &size in &bench.sizes.density {
        while members.len() < size {
            let (id, kind) = if members.is_empty() {
                (sandbox.to_owned(), "sandbox")
            } else {
                (
                    bench.unique_id(&format!("pod-{}-member", variant.key)),
                    "container",
                )
            };
            let annotations = [(SANDBOX_ID, sandbox), (CONTAINER_TYPE, kind)];
            let new = NewContainer {
                id: &id,
                runtime: variant.runtime,
                args: &args,
                annotations: &annotations,
            };
            members.push(id.clone());
            bench.api.create(&template, &new)?;
            bench.api.start_task(&id)?;
        }
        std::thread::sleep(SETTLE);
        points.push(pod_memory(members)?);
    }
    let newest = members.last().context("the pod has no containers")?;
    let member_pid = memory::in_container_cgroups(NAMESPACE, &BTreeSet::from([newest.clone()]))
        .first()
        .copied()
        .with_context(|| format!("no process in the cgroup of {newest}"))?;
    let shim_pid = memory::shims(NAMESPACE, &BTreeSet::from([sandbox.to_owned()]))
        .first()
        .copied()
        .with_context(|| format!("no shim process for the pod of {sandbox}"))?;
    Ok((points, Usage::of(member_pid)?, Usage::of(shim_pid)?))
}

/// The memory of the pod made of `ids`: its shims with every process below them (the
/// containers', and our shims' helper zygote) plus its containers' processes.
fn pod_memory(ids: &[String]) -> Result<Point> {
    let ids: BTreeSet<String> = ids.iter().cloned().collect();
    let shims = memory::shims(NAMESPACE, &ids);
    let below_shims: BTreeSet<u32> = shims
        .iter()
        .flat_map(|shim| procfs::process_tree(*shim))
        .map(|process| process.pid)
        .collect();
    let in_cgroups = memory::in_container_cgroups(NAMESPACE, &ids);
    if in_cgroups.len() < ids.len() {
        bail!(
            "{} processes in the cgroups of {} containers: some did not start or already exited",
            in_cgroups.len(),
            ids.len()
        );
    }
    let processes: BTreeSet<u32> = below_shims.union(&in_cgroups).copied().collect();
    let mut total = Usage::default();
    for pid in &processes {
        total = total.add(Usage::of(*pid)?);
    }
    Ok(Point {
        containers: ids.len(),
        shims: shims.len(),
        processes: processes.len(),
        total,
    })
}

fn per_added(points: &[Point]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    let added = last.containers.checked_sub(first.containers)?;
    (added > 0).then(|| (last.total.pss_kib as f64 - first.total.pss_kib as f64) / added as f64)
}

fn remove_all(bench: &Bench, variant: &Variant, ids: &[String]) -> Result<()> {
    let template = bench.template(&variant.image)?;
    // Members first: the sandbox's shim serves them all.
    for id in ids.iter().rev() {
        bench.api.remove(&template, id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(containers: usize, pss_kib: u64) -> Point {
        Point {
            containers,
            shims: 1,
            processes: containers + 1,
            total: Usage {
                pss_kib,
                ..Usage::default()
            },
        }
    }

    #[test]
    fn growth_per_added_container() {
        let points = [point(1, 10_000), point(10, 28_000), point(50, 108_000)];
        assert_eq!(per_added(&points), Some(2_000.0));
        assert_eq!(per_added(&points[..1]), None);
    }
}
