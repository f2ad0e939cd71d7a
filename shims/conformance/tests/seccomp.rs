//! `linux.seccomp` holds for every process of a container, its init and its exec processes
//! (`kubectl exec`, exec probes, `ctr task exec`), Wasm and native alike, as runc applies it:
//! a filtered call fails with the profile's errno, `/proc/self/status` says `Seccomp: 2`, and
//! the capabilities an exec ends with are the ones it asked for. The Wasm demo reads
//! `/proc/self/status` through WASI: what it shows is the engine's own process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status};
use shim_conformance::ctr::CmdOutput;
use shim_conformance::target::{Target, all_targets, check_targets};

const STARTUP: Duration = Duration::from_secs(20);

/// mkdir and mkdirat fail with EACCES: making a directory fails with "Permission denied",
/// everything else runs (runc itself, libcontainer and the engines make no directory once the
/// filter is loaded).
const DENY_MKDIR: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [
    { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
  ]
}"#;

/// The profile in a file for `ctr run --seccomp-profile`, removed on drop.
struct ProfileFile(PathBuf);

impl ProfileFile {
    fn write(test: &str, profile: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{test}-{}.json", std::process::id()));
        std::fs::write(&path, profile).with_context(|| format!("write {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The container with the profile in `file` (`--seccomp --seccomp-profile FILE`).
fn confined(target: &Target, label: &str, file: &ProfileFile) -> Container {
    target
        .container(label)
        .switch("--seccomp")
        .flag("--seccomp-profile", file.path())
}

/// `mkdir` was refused by the filter: status 1 and EACCES's message.
fn expect_mkdir_refused(out: &CmdOutput, who: &str) -> Result<()> {
    ensure!(
        out.code == Some(1) && out.stderr.contains("Permission denied"),
        "{who}: `mkdir` under a profile that denies mkdirat should fail with \
         \"Permission denied\"; {}",
        out.describe()
    );
    Ok(())
}

/// The value of `field` in a `/proc/<pid>/status` text.
fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// The fields of `/proc/self/status` that a process's confinement shows.
const CONFINEMENT: [&str; 7] = [
    "Seccomp",
    "NoNewPrivs",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
];

/// `/proc/<which>/status` read by the program in `container` through an exec process.
fn status_via_exec(target: &Target, container: &Container, which: &str) -> Result<String> {
    let out = container.exec(
        &format!("status-{which}"),
        &target.args(&["cat", &format!("/proc/{which}/status")]),
    )?;
    out.success()?;
    Ok(out.stdout)
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_profile_confines_the_init_and_every_exec_process() {
    let file = ProfileFile::write("deny-mkdir", DENY_MKDIR).unwrap();
    check_targets(&all_targets(), |target, test| {
        let init = confined(target, &format!("{test}-init"), &file)
            .run(&target.args(&["mkdir", "/made-by-init"]))?;
        expect_mkdir_refused(&init, "init process")?;

        let container = confined(target, test, &file);
        container.run_detached(&target.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, STARTUP)?;
        let exec = container.exec("mkdir", &target.args(&["mkdir", "/made-by-exec"]))?;
        expect_mkdir_refused(&exec, "exec process")?;
        container
            .exec("echo", &target.args(&["echo", "still", "runs"]))?
            .expect(0, "still runs\n")?;
        for which in ["self", "1"] {
            let status = status_via_exec(target, &container, which)?;
            ensure!(
                status_field(&status, "Seccomp") == Some("2"),
                "/proc/{which}/status of an exec'd process: Seccomp should be 2 (filter):\n{status}"
            );
        }
        Ok(())
    });
}

/// Kubernetes' default: `no_new_privs` off (containerd leaves the field out; a spec may also
/// say `false`). Loading a filter then needs `CAP_SYS_ADMIN`, which the exec must not keep: it
/// ends with exactly the init's capabilities (ctr gives the exec the container's process), and
/// under the filter.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn without_no_new_privs_an_exec_gets_the_filter_and_only_its_capabilities() {
    let file = ProfileFile::write("deny-mkdir-privs", DENY_MKDIR).unwrap();
    check_targets(&all_targets(), |target, test| {
        for (label, no_new_privs) in [("absent", None), ("false", Some(false))] {
            let container = confined(target, &format!("{test}-{label}"), &file);
            container.create(&target.args(&["sleep", "600"]))?;
            let api = Api::connect()?;
            api.edit_spec(container.id(), |spec| match no_new_privs {
                Some(value) => spec["process"]["noNewPrivileges"] = serde_json::json!(value),
                None => {
                    spec["process"]
                        .as_object_mut()
                        .map(|process| process.remove("noNewPrivileges"));
                }
            })?;
            api.create_task(container.id())?;
            api.start_task(container.id())?;
            container.wait_for_status(Status::Running, STARTUP)?;
            confined_like_its_init(target, &container)
                .with_context(|| format!("noNewPrivileges {label}"))?;
        }
        Ok(())
    });
}

/// An exec'd process of `container` is filtered, without no_new_privs, with exactly the init's
/// capabilities.
fn confined_like_its_init(target: &Target, container: &Container) -> Result<()> {
    let init = status_via_exec(target, container, "1")?;
    let exec = status_via_exec(target, container, "self")?;
    for field in CONFINEMENT {
        ensure!(
            status_field(&exec, field) == status_field(&init, field),
            "{field} of the exec'd process differs from the init's: {:?} vs {:?}\n\
             exec:\n{exec}\ninit:\n{init}",
            status_field(&exec, field),
            status_field(&init, field)
        );
    }
    ensure!(
        status_field(&exec, "Seccomp") == Some("2")
            && status_field(&exec, "NoNewPrivs") == Some("0"),
        "the exec'd process should be filtered without no_new_privs:\n{exec}"
    );
    const CAP_SYS_ADMIN: u32 = 21;
    let effective = status_field(&exec, "CapEff")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .with_context(|| format!("no CapEff in:\n{exec}"))?;
    ensure!(
        effective & (1 << CAP_SYS_ADMIN) == 0,
        "the exec'd process kept CAP_SYS_ADMIN (CapEff {effective:016x})"
    );
    let made = container.exec("mkdir", &target.args(&["mkdir", "/made-by-exec"]))?;
    expect_mkdir_refused(&made, "exec process without no_new_privs")
}

/// containerd's default profile (Kubernetes' `RuntimeDefault`) leaves the programs working:
/// the same output and status as without a filter, for the engines' traps too (signals).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_default_profile_leaves_every_engine_working() {
    check_targets(&all_targets(), |target, test| {
        for (label, args) in [
            ("echo", &["echo", "under", "the", "default"][..]),
            ("ls", &["ls", "/data"][..]),
            ("mkdir", &["mkdir", "/made"][..]),
            ("trap", &["trap"][..]),
        ] {
            let free = target
                .container(&format!("{test}-{label}-free"))
                .run(&target.args(args))?;
            let filtered = target
                .container(&format!("{test}-{label}"))
                .switch("--seccomp")
                .run(&target.args(args))?;
            ensure!(
                filtered.code == free.code && filtered.stdout == free.stdout,
                "`{label}` under the default profile: {}\nwithout a profile: {}",
                filtered.describe(),
                free.describe()
            );
        }
        let container = target.container(test).switch("--seccomp");
        container.run_detached(&target.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, STARTUP)?;
        let status = status_via_exec(target, &container, "self")?;
        ensure!(
            status_field(&status, "Seccomp") == Some("2"),
            "an exec'd process under the default profile:\n{status}"
        );
        container
            .exec("echo", &target.args(&["echo", "exec", "runs"]))?
            .expect(0, "exec runs\n")
    });
}

#[test]
fn status_fields_are_read_by_name() {
    let status = "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\nCapEff:\t00000000a80425fb\n";
    assert_eq!(status_field(status, "Seccomp"), Some("2"));
    assert_eq!(status_field(status, "CapEff"), Some("00000000a80425fb"));
    assert_eq!(status_field(status, "NoNewPrivs"), None);
}
