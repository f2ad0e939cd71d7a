//! The security context a Kubernetes pod asks for, honoured as runc honours it for both kinds
//! of container of a pod on our shims: the Wasm demo (whose engine process is the container's
//! process: `cat /proc/self/status` in the module reads the engine's own status, through the
//! rootfs preopened as `/`) and the native demo. Every check is made on the container's init
//! process (a container that runs the command and exits; its output is read from the CRI log)
//! and on an ExecSync process in a running container with the same context. runc (handler
//! `runc`, native demo only) runs the same checks as the reference, where it can.
//!
//! Each check is one test per handler: `<check>::wasmtime`, `<check>::wamr`, `<check>::runc`.
//! Each test goes through all its cases and reports every mismatch at once, then removes the
//! pod and checks that nothing of it is left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use cri_conformance::cases::{Kind, finish, kinds, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::{ContainerSpec, Pod, PodCgroup, PodOptions};
use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    Capability, ContainerState, Int64Value, LinuxContainerSecurityContext, Mount, MountPropagation,
    PodSandboxState, SecurityProfile,
};
use shim_conformance::environment::containerd;
const START_TIMEOUT: Duration = Duration::from_secs(20);
// The paths the kubelet masks (its `defaultMaskedPaths`) and makes read-only
// (`defaultReadonlyPaths`) in every unprivileged container, which are Docker's lists.
// containerd's CRI plugin masks none by itself: it applies what the kubelet sends.
const KUBELET_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const KUBELET_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// CRI's timeout for one ExecSync, in seconds.
const EXEC_TIMEOUT_SECS: i64 = 10;

/// The exit status of the demos when a command fails (test-images/common/demo_commands.rs).
const FAILURE_EXIT_CODE: i32 = 1;

check_on!(seccomp_runtime_default: wasmtime, wamr, wasmedge, runc);
check_on!(seccomp_localhost_profile: wasmtime, wamr, wasmedge, runc);
check_on!(seccomp_unconfined: wasmtime, wamr, wasmedge, runc);
check_on!(run_as_user_and_groups: wasmtime, wamr, wasmedge, runc);
check_on!(readonly_rootfs: wasmtime, wamr, wasmedge, runc);
check_on!(capabilities_drop_all_add_one: wasmtime, wamr, wasmedge, runc);
check_on!(no_new_privs: wasmtime, wamr, wasmedge, runc);
check_on!(privileged: wasmtime, wamr, wasmedge, runc);
check_on!(masked_and_readonly_paths: wasmtime, wamr, wasmedge, runc);
check_on!(pod_sysctls: wasmtime, wamr, wasmedge, runc);
check_on!(mount_propagation: wasmtime, wamr, wasmedge, runc);
check_on!(mount_propagation_private: wasmtime, wamr, wasmedge, runc);
check_on!(systemd_cgroup_parent: wasmtime, wamr, wasmedge, runc);

/// What a command must do.
#[derive(Debug, Clone)]
enum Expect {
    /// Exit 0 and print exactly this.
    Prints(String),
    /// Exit 0 and print each of these lines (among others; trailing blanks ignored).
    Lines(Vec<String>),
    /// Exit 0 and print something that contains this.
    Contains(String),
    /// Exit 0 and print `/proc/self/cgroup` with every controller's cgroup (every v1
    /// hierarchy with controllers, or the v2 one) containing this.
    CgroupsContain(String),
    /// Fail (the demos' exit status 1) with a message that contains this.
    Fails(String),
    /// Exit 0 and print a mountinfo in which the mount at `point` has this propagation.
    Propagation { point: String, peering: Peering },
}

/// A mount's propagation, as the optional fields of its mountinfo line show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peering {
    /// Neither `shared:` nor `master:`.
    Private,
    /// `master:` without `shared:`: receives the mounts of its master's peer group.
    Slave,
    /// `shared:`: in a peer group, mounts go both ways.
    Shared,
}

/// The mountinfo line (in `text`) of the mount at `point`: the last one mounted there.
fn mount_line<'a>(text: &'a str, point: &str) -> Option<&'a str> {
    text.lines()
        .rev()
        .find(|line| line.split(' ').nth(4) == Some(point))
}

/// The propagation of the mount at `point` in mountinfo `text`.
fn peering(text: &str, point: &str) -> Option<Peering> {
    let line = mount_line(text, point)?;
    let optional: Vec<&str> = line
        .split(' ')
        .skip(6)
        .take_while(|field| *field != "-")
        .collect();
    Some(if optional.iter().any(|f| f.starts_with("shared:")) {
        Peering::Shared
    } else if optional.iter().any(|f| f.starts_with("master:")) {
        Peering::Slave
    } else {
        Peering::Private
    })
}

impl Expect {
    fn lines(lines: &[&str]) -> Self {
        Self::Lines(lines.iter().map(|l| (*l).to_owned()).collect())
    }

    fn check(&self, code: i32, stdout: &str, stderr: &str) -> Result<()> {
        let seen = || format!("exit code {code}, stdout {stdout:?}, stderr {stderr:?}");
        match self {
            Self::Prints(text) => ensure!(
                code == 0 && stdout == text,
                "expected exit code 0 and stdout {text:?}; saw {}",
                seen()
            ),
            Self::Contains(text) => ensure!(
                code == 0 && stdout.contains(text.as_str()),
                "expected exit code 0 and a stdout that contains {text:?}; saw {}",
                seen()
            ),
            Self::Fails(text) => ensure!(
                code == FAILURE_EXIT_CODE && stderr.contains(text.as_str()),
                "expected exit code {FAILURE_EXIT_CODE} and {text:?} on stderr; saw {}",
                seen()
            ),
            Self::Lines(lines) => {
                ensure!(code == 0, "expected exit code 0; saw {}", seen());
                let printed: Vec<&str> = stdout.lines().map(str::trim_end).collect();
                let missing: Vec<String> = lines
                    .iter()
                    .filter(|line| !printed.contains(&line.trim_end()))
                    .map(|line| {
                        // The line with the same key, if any, is what was seen instead.
                        let key = line.split_once(':').map_or(line.as_str(), |(k, _)| k);
                        let instead = printed
                            .iter()
                            .find(|p| p.split_once(':').is_some_and(|(k, _)| k == key));
                        format!("{line:?} (saw {instead:?})")
                    })
                    .collect();
                ensure!(
                    missing.is_empty(),
                    "expected the line(s) {}; stderr {stderr:?}",
                    missing.join(", ")
                );
            }
            Self::Propagation {
                point,
                peering: expected,
            } => {
                ensure!(code == 0, "expected exit code 0; saw {}", seen());
                ensure!(
                    peering(stdout, point) == Some(*expected),
                    "expected the mount at {point} to be {expected:?}; its mountinfo line: {:?}",
                    mount_line(stdout, point)
                );
            }
            Self::CgroupsContain(text) => {
                ensure!(code == 0, "expected exit code 0; saw {}", seen());
                let cgroups: Vec<(&str, &str)> = stdout
                    .lines()
                    .filter_map(|line| {
                        let mut fields = line.splitn(3, ':');
                        let _id = fields.next()?;
                        Some((fields.next()?, fields.next()?))
                    })
                    .collect();
                let v1: Vec<(&str, &str)> = cgroups
                    .iter()
                    .copied()
                    .filter(|(controllers, _)| {
                        !controllers.is_empty() && !controllers.starts_with("name=")
                    })
                    .collect();
                let checked = if v1.is_empty() { cgroups } else { v1 };
                ensure!(
                    !checked.is_empty()
                        && checked.iter().all(|(_, path)| path.contains(text.as_str())),
                    "expected every controller's cgroup to contain {text:?}; saw {}",
                    seen()
                );
            }
        }
        Ok(())
    }
}

/// A command of the demos and what it must do.
#[derive(Debug, Clone)]
struct Probe {
    args: Vec<String>,
    expect: Expect,
}

fn probe(args: &[&str], expect: Expect) -> Probe {
    Probe {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        expect,
    }
}

/// `cat /proc/self/status` prints these lines.
fn status_lines(lines: &[&str]) -> Probe {
    probe(&["cat", "/proc/self/status"], Expect::lines(lines))
}

/// A container's security context, and what its processes must show.
#[derive(Debug, Clone)]
struct Case {
    /// Names the containers (with the kind) and the failures.
    name: &'static str,
    security: LinuxContainerSecurityContext,
    probes: Vec<Probe>,
}

impl Case {
    fn new(
        name: &'static str,
        security: LinuxContainerSecurityContext,
        probes: Vec<Probe>,
    ) -> Self {
        Self {
            name,
            security,
            probes,
        }
    }

    fn spec(&self, kind: Kind, name: &str, args: &[&str]) -> ContainerSpec {
        kind.demo(name, args)
            .security_context(self.security.clone())
    }
}

fn seccomp(profile_type: ProfileType, localhost_ref: &str) -> Option<SecurityProfile> {
    Some(SecurityProfile {
        profile_type: profile_type as i32,
        localhost_ref: localhost_ref.to_owned(),
    })
}

/// Every case of `cases` in a new pod `<check>-<handler>` on `handler`, for each kind of
/// container the handler runs; then the pod's removal, which must leave nothing behind.
fn check_cases(handler: &str, check: &str, options: &PodOptions, cases: &[Case]) -> Result<()> {
    let mut pod = Pod::run_with(&format!("{check}-{handler}"), handler, options)?;
    let mut failures = Vec::new();
    let mut containers = Vec::new();
    run_cases(&mut pod, cases, &mut containers, &mut failures);
    finish(pod, &containers, failures)
}

/// Runs `cases` in `pod`: each probe as the init process of a container of its own, then as an
/// ExecSync in a container of the case that sleeps (left running). Records the containers
/// made and every mismatch.
fn run_cases(
    pod: &mut Pod,
    cases: &[Case],
    containers: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    let kinds = kinds(&pod.handler);
    for kind in kinds {
        for case in cases {
            for (n, probe) in case.probes.iter().enumerate() {
                let name = format!("{}-{kind}-init{n}", case.name);
                let spec = case.spec(*kind, &name, &args(&probe.args));
                if let Err(e) = init_probe(pod, &spec, probe, containers) {
                    failures.push(format!(
                        "{kind} {}, init `{}`: {e:#}",
                        case.name,
                        probe.args.join(" ")
                    ));
                }
            }
            let name = format!("{}-{kind}-exec", case.name);
            let spec = case.spec(*kind, &name, &["sleep", "600"]);
            let id = match run_until_running(pod, &spec, containers) {
                Ok(id) => id,
                Err(e) => {
                    failures.push(format!(
                        "{kind} {}, the container for execs: {e:#}",
                        case.name
                    ));
                    continue;
                }
            };
            for probe in &case.probes {
                if let Err(e) = exec_probe(pod, &id, *kind, probe) {
                    failures.push(format!(
                        "{kind} {}, exec `{}`: {e:#}",
                        case.name,
                        probe.args.join(" ")
                    ));
                }
            }
        }
    }
}

fn args(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs `spec` (whose args are the probe's) to its exit and checks its status and log.
fn init_probe(
    pod: &mut Pod,
    spec: &ContainerSpec,
    probe: &Probe,
    containers: &mut Vec<String>,
) -> Result<()> {
    let id = pod.create_container(spec)?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    let status = pod.wait_for_state(&id, ContainerState::ContainerExited, START_TIMEOUT)?;
    let (stdout, stderr) = logged_output(&pod.log_path(&spec.name))?;
    probe.expect.check(status.exit_code, &stdout, &stderr)
}

/// CreateContainer + StartContainer, and waits for it to run.
fn run_until_running(
    pod: &mut Pod,
    spec: &ContainerSpec,
    containers: &mut Vec<String>,
) -> Result<String> {
    let id = pod.create_container(spec)?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    pod.wait_for_state(&id, ContainerState::ContainerRunning, START_TIMEOUT)?;
    Ok(id)
}

/// Runs the probe's command as an ExecSync in running container `id`.
fn exec_probe(pod: &mut Pod, id: &str, kind: Kind, probe: &Probe) -> Result<()> {
    let mut cmd = vec![kind.program()];
    cmd.extend(args(&probe.args));
    let response = pod
        .exec_sync(id, &cmd, EXEC_TIMEOUT_SECS)
        .map_err(|status| {
            anyhow!(
                "ExecSync {cmd:?}: {:?}: {}",
                status.code(),
                status.message()
            )
        })?;
    probe.expect.check(
        response.exit_code,
        &String::from_utf8_lossy(&response.stdout),
        &String::from_utf8_lossy(&response.stderr),
    )
}

/// The value of `key` in this test process's /proc/self/status.
fn own_status(key: &str) -> Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
        .with_context(|| format!("/proc/self/status has no {key} line"))
}

/// The demos work under the runtime's default seccomp profile (containerd's, Docker's), and
/// every process of the container is filtered (`Seccomp: 2`): init, exec, and the pod's
/// pause (the sandbox has the pod's profile).
fn seccomp_runtime_default(handler: &str) -> Result<()> {
    let options = PodOptions {
        seccomp: seccomp(ProfileType::RuntimeDefault, ""),
        ..Default::default()
    };
    let mut pod = Pod::run_with(&format!("seccomp-default-{handler}"), handler, &options)?;
    let mut failures = Vec::new();
    let pause = pod.init_host_pid(None).and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Expect::lines(&["Seccomp:\t2"])
            .check(0, &status, "")
            .with_context(|| format!("/proc/{pid}/status"))
    });
    if let Err(e) = pause {
        failures.push(format!("the pause process: {e:#}"));
    }
    let cases = [Case::new(
        "default",
        LinuxContainerSecurityContext {
            seccomp: seccomp(ProfileType::RuntimeDefault, ""),
            ..Default::default()
        },
        vec![
            status_lines(&["Seccomp:\t2"]),
            probe(&["echo", "hi"], Expect::Prints("hi\n".into())),
            probe(
                &["sleep", "0.2"],
                Expect::Prints("sleeping 0.2\nslept\n".into()),
            ),
            probe(
                &["cat", "/data/hello.txt"],
                Expect::Prints("hello from a file\n".into()),
            ),
        ],
    )];
    let mut containers = Vec::new();
    run_cases(&mut pod, &cases, &mut containers, &mut failures);
    finish(pod, &containers, failures)
}

/// A Localhost profile (a file on the node) that refuses making directories with EACCES and
/// allows everything else (runc itself, libcontainer and the engines make none once the filter
/// is loaded; runc does list /proc/self/fd then, so a profile refusing getdents64 would stop it).
const NO_MKDIR_PROFILE: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {
      "names": ["mkdir", "mkdirat"],
      "action": "SCMP_ACT_ERRNO",
      "errnoRet": 13
    }
  ]
}
"#;

/// A directory of its own below the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wasm-shims-cri-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cleanup: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// A Localhost seccomp profile applies to every process of the container: making a directory
/// fails with EACCES in init and exec, of both kinds, while the rest works.
fn seccomp_localhost_profile(handler: &str) -> Result<()> {
    let dir = TempDir::new("seccomp")?;
    let profile = dir.0.join("no-mkdir.json");
    std::fs::write(&profile, NO_MKDIR_PROFILE)
        .with_context(|| format!("cannot write {}", profile.display()))?;
    // containerd reads the profile in its own mount namespace.
    ensure!(
        containerd().path(&profile).exists(),
        "containerd does not see the profile {}",
        profile.display()
    );
    let cases = [Case::new(
        "localhost",
        LinuxContainerSecurityContext {
            seccomp: seccomp(ProfileType::Localhost, &profile.display().to_string()),
            ..Default::default()
        },
        vec![
            probe(
                &["mkdir", "/made"],
                Expect::Fails("Permission denied".into()),
            ),
            probe(&["echo", "hi"], Expect::Prints("hi\n".into())),
            status_lines(&["Seccomp:\t2"]),
        ],
    )];
    check_cases(handler, "seccomp-localhost", &PodOptions::default(), &cases)
}

/// Unconfined: no filter at all, and making a directory, which the profile above refuses,
/// works.
fn seccomp_unconfined(handler: &str) -> Result<()> {
    let cases = [Case::new(
        "unconfined",
        LinuxContainerSecurityContext {
            seccomp: seccomp(ProfileType::Unconfined, ""),
            ..Default::default()
        },
        vec![
            status_lines(&["Seccomp:\t0"]),
            probe(
                &["mkdir", "/made"],
                Expect::Prints("created /made\n".into()),
            ),
        ],
    )];
    check_cases(
        handler,
        "seccomp-unconfined",
        &PodOptions::default(),
        &cases,
    )
}

/// runAsUser 1000, runAsGroup 3000, supplementalGroups [4000]: the process's ids, and the
/// root-owned rootfs root is not writable for it.
fn run_as_user_and_groups(handler: &str) -> Result<()> {
    let cases = [Case::new(
        "user",
        LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1000 }),
            run_as_group: Some(Int64Value { value: 3000 }),
            supplemental_groups: vec![4000],
            ..Default::default()
        },
        vec![
            status_lines(&[
                "Uid:\t1000\t1000\t1000\t1000",
                "Gid:\t3000\t3000\t3000\t3000",
                "Groups:\t3000 4000",
                // What runc's execve leaves a user other than root: no capability (none is
                // ambient), so the file permissions hold.
                "CapPrm:\t0000000000000000",
                "CapEff:\t0000000000000000",
            ]),
            probe(
                &["write", "/x.txt", "hi"],
                Expect::Fails("Permission denied".into()),
            ),
        ],
    )];
    check_cases(handler, "run-as-user", &PodOptions::default(), &cases)
}

/// How a refused write fails differs with the engine: the kernel says EROFS (runc, WAMR);
/// wasmtime says EPERM where the shim preopens the rootfs read-only, and EIO for the kernel's
/// EROFS (wasmtime-wasi 48 maps no EROFS to WASI's ROFS). What must hold is the refusal,
/// so the checks ask for the failure and then that nothing was written.
fn write_refused(file: &str) -> Probe {
    probe(
        &["write", file, "x"],
        Expect::Fails(format!("cannot write {file}")),
    )
}

/// readOnlyRootFilesystem: writes to the rootfs are refused, reads work.
fn readonly_rootfs(handler: &str) -> Result<()> {
    let cases = [Case::new(
        "readonly",
        LinuxContainerSecurityContext {
            readonly_rootfs: true,
            ..Default::default()
        },
        vec![
            write_refused("/x.txt"),
            // In the exec container, after the exec's write.
            probe(
                &["cat", "/x.txt"],
                Expect::Fails("No such file or directory".into()),
            ),
            probe(
                &["cat", "/data/hello.txt"],
                Expect::Prints("hello from a file\n".into()),
            ),
        ],
    )];
    check_cases(handler, "readonly-rootfs", &PodOptions::default(), &cases)
}

/// capabilities: drop ALL, add NET_BIND_SERVICE (bit 10) leaves exactly that one.
fn capabilities_drop_all_add_one(handler: &str) -> Result<()> {
    let cases = [Case::new(
        "caps",
        LinuxContainerSecurityContext {
            capabilities: Some(Capability {
                add_capabilities: vec!["NET_BIND_SERVICE".into()],
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
        vec![status_lines(&[
            "CapEff:\t0000000000000400",
            "CapPrm:\t0000000000000400",
            "CapBnd:\t0000000000000400",
        ])],
    )];
    check_cases(handler, "capabilities", &PodOptions::default(), &cases)
}

/// allowPrivilegeEscalation=false sets no_new_privs; without it, it is not set.
fn no_new_privs(handler: &str) -> Result<()> {
    let cases = [
        Case::new(
            "nnp",
            LinuxContainerSecurityContext {
                no_new_privs: true,
                ..Default::default()
            },
            vec![status_lines(&["NoNewPrivs:\t1"])],
        ),
        Case::new(
            "plain",
            LinuxContainerSecurityContext::default(),
            vec![status_lines(&["NoNewPrivs:\t0"])],
        ),
    ];
    check_cases(handler, "no-new-privs", &PodOptions::default(), &cases)
}

/// privileged: every capability the node has (the bounding set of this test process, which
/// containerd and the runtimes share), no seccomp filter and nothing masked, even though
/// RuntimeDefault and the kubelet's masked paths are asked for (as the kubelet does).
fn privileged(handler: &str) -> Result<()> {
    let all = own_status("CapBnd")?;
    let options = PodOptions {
        privileged: true,
        ..Default::default()
    };
    let cases = [Case::new(
        "privileged",
        LinuxContainerSecurityContext {
            privileged: true,
            seccomp: seccomp(ProfileType::RuntimeDefault, ""),
            masked_paths: KUBELET_MASKED_PATHS.map(str::to_owned).into(),
            readonly_paths: KUBELET_READONLY_PATHS.map(str::to_owned).into(),
            ..Default::default()
        },
        vec![
            status_lines(&[
                &format!("CapEff:\t{all}"),
                &format!("CapBnd:\t{all}"),
                "Seccomp:\t0",
            ]),
            probe(
                &["cat", "/proc/timer_list"],
                Expect::Contains("Timer List Version".into()),
            ),
        ],
    )];
    check_cases(handler, "privileged", &options, &cases)
}

/// The kubelet's default masked paths (here /proc/timer_list, which has content on this
/// node) read empty, and its read-only paths (/proc/sys) refuse writes.
fn masked_and_readonly_paths(handler: &str) -> Result<()> {
    let host = std::fs::read_to_string("/proc/timer_list").context("/proc/timer_list")?;
    ensure!(
        host.contains("Timer List Version"),
        "/proc/timer_list on this node does not have the expected content, the check would \
         prove nothing: {host:?}"
    );
    // The pod's name (see check_cases), which is its hostname.
    let pod = format!("masked-paths-{handler}");
    let cases = [Case::new(
        "masked",
        LinuxContainerSecurityContext {
            masked_paths: KUBELET_MASKED_PATHS.map(str::to_owned).into(),
            readonly_paths: KUBELET_READONLY_PATHS.map(str::to_owned).into(),
            ..Default::default()
        },
        vec![
            probe(&["cat", "/proc/timer_list"], Expect::Prints(String::new())),
            write_refused("/proc/sys/kernel/hostname"),
            // The containers share the pod's UTS namespace: a write that went through
            // (in init or exec) renamed the pod.
            probe(
                &["cat", "/proc/sys/kernel/hostname"],
                Expect::Prints(format!("{pod}\n")),
            ),
        ],
    )];
    check_cases(handler, "masked-paths", &PodOptions::default(), &cases)
}

/// A namespaced sysctl of the pod (set on the sandbox) holds in every container of the pod.
fn pod_sysctls(handler: &str) -> Result<()> {
    let default = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")?;
    ensure!(
        default.trim() != "80",
        "ip_unprivileged_port_start is already 80 here: the check would prove nothing"
    );
    let options = PodOptions {
        sysctls: HashMap::from([(
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "80".to_owned(),
        )]),
        ..Default::default()
    };
    let cases = [Case::new(
        "sysctl",
        LinuxContainerSecurityContext::default(),
        vec![probe(
            &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
            Expect::Prints("80\n".into()),
        )],
    )];
    check_cases(handler, "sysctls", &options, &cases)
}

/// A directory made a shared mount in containerd's mount namespace, as a node's kubelet
/// directory is, for volumes with mount propagation. Drop unmounts everything at and below
/// it there and removes it.
struct SharedDir {
    dir: TempDir,
    containerd_pid: u32,
}

impl SharedDir {
    fn new() -> Result<Self> {
        let dir = TempDir::new("propagation")?;
        std::fs::create_dir(dir.0.join("sub"))?;
        let shared = Self {
            dir,
            containerd_pid: containerd().pid(),
        };
        let path = shared.path().display().to_string();
        shared.in_containerd_mounts(&["mount", "--bind", &path, &path])?;
        shared.in_containerd_mounts(&["mount", "--make-shared", &path])?;
        Ok(shared)
    }

    fn path(&self) -> &Path {
        &self.dir.0
    }

    /// Runs a command in containerd's mount namespace.
    fn in_containerd_mounts(&self, command: &[&str]) -> Result<()> {
        // The pid namespace too, so that /proc/self is there for mount and umount.
        let output = Command::new("nsenter")
            .arg(format!("--target={}", self.containerd_pid))
            .args(["--mount", "--pid", "--"])
            .args(command)
            .output()
            .with_context(|| format!("cannot run nsenter {command:?}"))?;
        ensure!(
            output.status.success(),
            "{command:?} in containerd's mount namespace: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(())
    }

    /// Mounts a new tmpfs at `sub` with `file` (content `text`) in containerd's namespace.
    fn mount_tmpfs_with(&self, sub: &str, file: &str, text: &str) -> Result<()> {
        let point = self.path().join(sub);
        let point_text = point.display().to_string();
        self.in_containerd_mounts(&["mount", "-t", "tmpfs", "wasm-shims-cri-test", &point_text])?;
        // Written through containerd's view of the filesystem: the tmpfs is only there.
        let path = containerd().path(point.join(file));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Mount points at or below the directory in containerd's mount namespace.
    fn mounts(&self) -> Result<Vec<String>> {
        let mountinfo = format!("/proc/{}/mountinfo", self.containerd_pid);
        let text = std::fs::read_to_string(&mountinfo)
            .with_context(|| format!("cannot read {mountinfo}"))?;
        let dir = self.path().display().to_string();
        Ok(text
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| *point == dir || point.starts_with(&format!("{dir}/")))
            .map(str::to_owned)
            .collect())
    }

    /// Unmounts everything at and below the directory; fails with what is left.
    fn unmount(&self) -> Result<()> {
        let path = self.path().display().to_string();
        if !self.mounts()?.is_empty() {
            self.in_containerd_mounts(&["umount", "--recursive", &path])?;
        }
        let left = self.mounts()?;
        ensure!(
            left.is_empty(),
            "mounts left in containerd's mount namespace: {left:?}"
        );
        Ok(())
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("cleanup: {e:#}");
        }
    }
}

/// The container path of the propagation test's volume.
const VOLUME: &str = "/shared";

/// A volume with mount propagation from the node, in containers of both kinds: its mount in
/// the container is a peer of the node's (Bidirectional, `rshared`: mounts go both ways) or a
/// slave of it (HostToContainer, `rslave`), as the mountinfo of the container's init and of
/// an exec shows; and a mount made below the volume's source on the node after the start
/// shows in the container, as the init (through its mount namespace) and an exec see it.
fn mount_propagation(handler: &str) -> Result<()> {
    volume_propagation(
        handler,
        "propagation",
        &[
            (
                "host-to-container",
                MountPropagation::PropagationHostToContainer,
                Peering::Slave,
            ),
            (
                "bidirectional",
                MountPropagation::PropagationBidirectional,
                Peering::Shared,
            ),
        ],
    )
}

/// The same with a Private volume (`rprivate`, the default): its mount is neither a peer nor
/// a slave of the node's, and the node's later mount does not show in the container.
fn mount_propagation_private(handler: &str) -> Result<()> {
    volume_propagation(
        handler,
        "propagation-private",
        &[(
            "private",
            MountPropagation::PropagationPrivate,
            Peering::Private,
        )],
    )
}

/// A pod `<check>-<handler>` with a container of each kind per mode of `modes` (name, the
/// volume's propagation, the mount's propagation expected in the container), checked as
/// [`mount_propagation`] says.
fn volume_propagation(
    handler: &str,
    check: &str,
    modes: &[(&str, MountPropagation, Peering)],
) -> Result<()> {
    // Made before the pod and dropped after it (locals drop in reverse order).
    let shared = SharedDir::new()?;
    let mut pod = Pod::run(&format!("{check}-{handler}"), handler)?;
    let mut failures = Vec::new();
    let mut containers = Vec::new();
    let mut running = Vec::new();
    for kind in kinds(handler) {
        for (mode, propagation, peering) in modes {
            let what = format!("{kind} {mode}");
            let mount = Mount {
                container_path: VOLUME.to_owned(),
                host_path: shared.path().display().to_string(),
                propagation: *propagation as i32,
                ..Default::default()
            };
            let spec = kind
                .demo(&format!("{mode}-{kind}"), &["sleep", "600"])
                .mount(mount);
            match run_until_running(&mut pod, &spec, &mut containers) {
                Ok(id) => running.push((what, *kind, id, *peering)),
                Err(e) => failures.push(format!("{what}: {e:#}")),
            }
        }
    }
    const TEXT: &str = "mounted after the start\n";
    shared.mount_tmpfs_with("sub", "new.txt", TEXT)?;
    let file = format!("{VOLUME}/sub/new.txt");
    for (what, kind, id, peering) in &running {
        let propagates = *peering != Peering::Private;
        let peers = Expect::Propagation {
            point: VOLUME.to_owned(),
            peering: *peering,
        };
        let file_expect = if propagates {
            Expect::Prints(TEXT.to_owned())
        } else {
            Expect::Fails("No such file or directory".to_owned())
        };
        for exec in [
            probe(&["cat", "/proc/self/mountinfo"], peers.clone()),
            probe(&["cat", &file], file_expect),
        ] {
            if let Err(e) = exec_probe(&mut pod, id, *kind, &exec) {
                failures.push(format!("{what}, exec `{}`: {e:#}", exec.args.join(" ")));
            }
        }
        let init = pod.init_host_pid(Some(id)).and_then(|pid| {
            let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
            peers
                .check(0, &mountinfo, "")
                .with_context(|| format!("/proc/{pid}/mountinfo"))?;
            let path = format!("/proc/{pid}/root{file}");
            match (std::fs::read_to_string(&path), propagates) {
                (Ok(text), true) if text == TEXT => Ok(()),
                (Err(e), false) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                (seen, _) => Err(anyhow!(
                    "{path} (the init's mount namespace): {seen:?}, expected {}",
                    if propagates { TEXT } else { "no such file" }
                )),
            }
        });
        if let Err(e) = init {
            failures.push(format!("{what}, init: {e:#}"));
        }
    }
    let result = finish(pod, &containers, failures);
    // The pod is gone: nothing holds the volume any more.
    let unmounted = shared.unmount();
    result.and(unmounted)
}

/// A pod whose cgroup parent is a systemd slice (the kubelet's systemd driver), on a node
/// without systemd: the runtime places it as runc's cgroupfs driver does, in a cgroup named
/// after containerd's `<slice>:cri-containerd:<id>`. The pod and both containers run there.
fn systemd_cgroup_parent(handler: &str) -> Result<()> {
    let options = PodOptions {
        cgroup: PodCgroup::SystemdSlice,
        ..Default::default()
    };
    let mut pod = Pod::run_with(&format!("slice-{handler}"), handler, &options)?;
    let slice = pod.cgroup_parent().to_owned();
    let text = format!("{slice}:cri-containerd:");
    let mut failures = Vec::new();
    let status = pod
        .status()?
        .status
        .context("PodSandboxStatus without a status")?;
    if status.state != PodSandboxState::SandboxReady as i32 {
        failures.push(format!(
            "the pod is {:?}, expected ready",
            PodSandboxState::try_from(status.state)
        ));
    }
    let pause = pod.init_host_pid(None).and_then(|pid| {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        Expect::CgroupsContain(format!("{text}{}", pod.id)).check(0, &cgroups, "")
    });
    if let Err(e) = pause {
        failures.push(format!("the pause process: {e:#}"));
    }
    let cases = [Case::new(
        "slice",
        LinuxContainerSecurityContext::default(),
        vec![probe(
            &["cat", "/proc/self/cgroup"],
            Expect::CgroupsContain(text),
        )],
    )];
    let mut containers = Vec::new();
    run_cases(&mut pod, &cases, &mut containers, &mut failures);
    finish(pod, &containers, failures)
}
