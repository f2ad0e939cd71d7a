//! RunPodSandbox on our runtime handlers: the pause container runs natively in the shim,
//! holds the pod's network namespace, and the pod gets an IP on the pod network.

use cri_conformance::check_on;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cri_conformance::leftovers::PodFootprint;
use cri_conformance::pod::Pod;
use k8s_cri::v1::PodSandboxState;
use shim_conformance::leftovers::shims_of;
use shim_conformance::procfs;

/// The pod subnet of scripts/containerd.sh's CNI config.
const POD_SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 213, 0, 0), 24);

fn in_pod_subnet(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - POD_SUBNET.1);
    u32::from(ip) & mask == u32::from(POD_SUBNET.0) & mask
}

fn sandbox_runs_with_a_pod_ip(handler: &str) -> Result<()> {
    let mut pod = Pod::run(&format!("sandbox-{handler}"), handler)?;
    let response = pod.status()?;
    let status = response
        .status
        .context("PodSandboxStatus without a status")?;
    ensure!(
        status.state == PodSandboxState::SandboxReady as i32,
        "pod {} is {:?}, expected ready",
        pod.id,
        PodSandboxState::try_from(status.state)
    );
    ensure!(
        status.runtime_handler == handler,
        "pod runs on handler {:?}, expected {handler:?}",
        status.runtime_handler
    );
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let ip: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("pod IP {ip:?} is not an IPv4 address"))?;
    ensure!(
        in_pod_subnet(ip),
        "pod IP {ip} is outside the pod subnet {POD_SUBNET:?}"
    );

    // The sandbox's pause process, as the shim reported it to containerd, is alive and is
    // our pause program, under the handler's shim.
    let info: serde_json::Value =
        serde_json::from_str(response.info.get("info").context("no verbose info")?)?;
    let pid = info["pid"]
        .as_u64()
        .context("the verbose info has no sandbox pid")? as u32;
    let shims = shims_of(&pod.id);
    ensure!(
        shims.len() == 1,
        "pod {} has shims {shims:?}, expected one",
        pod.id
    );
    let shim = procfs::cmdline(shims[0]);
    let expected = format!("containerd-shim-{handler}-v1");
    ensure!(
        shim.first().is_some_and(|exe| exe.ends_with(&expected)),
        "the pod's shim is {shim:?}, expected {expected}"
    );
    let host_pid = under_shim_with_containerd_pid(shims[0], pid).with_context(|| {
        format!(
            "no process under the pod's shim {} has pid {pid} in containerd's pid namespace",
            shims[0]
        )
    })?;
    // Start returns once the container's init is told to go: it execs /pause right after.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut cmdline = procfs::cmdline(host_pid);
    while cmdline.first().is_none_or(|exe| exe != "/pause") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        cmdline = procfs::cmdline(host_pid);
    }
    ensure!(
        cmdline.first().is_some_and(|exe| exe == "/pause"),
        "sandbox pid {pid} (host pid {host_pid}) runs {cmdline:?}, expected /pause"
    );

    let footprint = PodFootprint::observe(&mut pod, &[])?;
    pod.stop().context("StopPodSandbox")?;
    let status = pod
        .status()?
        .status
        .context("PodSandboxStatus without a status")?;
    ensure!(
        status.state == PodSandboxState::SandboxNotready as i32,
        "stopped pod {} is {:?}, expected not ready",
        pod.id,
        PodSandboxState::try_from(status.state)
    );
    // CRI: stopping and removing what is already stopped or gone succeeds.
    pod.stop().context("StopPodSandbox of a stopped pod")?;
    pod.remove().context("RemovePodSandbox")?;
    footprint.expect_gone()?;
    pod.remove().context("RemovePodSandbox of a removed pod")?;
    Ok(())
}

/// The host pid of the process below `shim` whose pid is `pid` in containerd's pid
/// namespace (containerd runs in its own: it reports pids as seen there).
fn under_shim_with_containerd_pid(shim: u32, pid: u32) -> Option<u32> {
    procfs::process_tree(shim)
        .into_iter()
        .map(|p| p.pid)
        .find(|host_pid| {
            let status =
                std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|line| line.strip_prefix("NSpid:"))
                .and_then(|pids| pids.split_whitespace().nth(1).map(str::to_owned))
                == Some(pid.to_string())
        })
}

check_on!(sandbox_runs_with_a_pod_ip: wasmtime, wamr, wasmedge);
