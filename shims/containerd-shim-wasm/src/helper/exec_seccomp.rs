//! The container's seccomp filter for its exec processes (`kubectl exec`, `ExecSync`, exec
//! probes, `ctr task exec`, `docker exec`), as runc applies it.
//!
//! `libcontainer` 0.7 applies `linux.seccomp` to a container's init process only: its tenant
//! builder rebuilds the `linux` section of an exec without the filter, so an exec process would
//! escape the pod's profile. The helper therefore plans the filter ([`plan`]) and the exec's
//! executor loads it (`ExecFilter::apply`, in `init/seccomp.rs`) after `libcontainer` has set the process up and
//! before the workload runs (a native program is exec'ed, a module is run by the engine).
//!
//! Loading a filter needs `no_new_privs` or `CAP_SYS_ADMIN`. runc loads it before it drops
//! the capabilities when `no_new_privs` is off (the Kubernetes default), which the executor
//! cannot do: `libcontainer` has dropped them by then. So for such a process the helper lends
//! it `CAP_SYS_ADMIN` (and `CAP_SETPCAP`, to shrink the bounding set afterwards) in the
//! process spec it gives `libcontainer`, and the executor loads the filter and then sets every
//! capability set to what the exec asked for, as runc's order (filter, then capabilities)
//! leaves it. Nothing but this module's code runs while the capabilities are lent.

use anyhow::bail;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxSeccomp, Process};

use crate::init::seccomp::ExecFilter;

/// The capabilities that loading the filter and then shrinking the sets need.
const LENT: [Capability; 2] = [Capability::SysAdmin, Capability::Setpcap];

/// Decides how the exec process `process` of a container whose spec has `seccomp` gets the
/// filter, and lends it capabilities where it needs them (see the module comment). `None`:
/// the container has no filter (`Unconfined`), nor does the exec.
pub fn plan(
    seccomp: Option<&LinuxSeccomp>,
    process: &mut Process,
) -> anyhow::Result<Option<ExecFilter>> {
    let Some(profile) = seccomp else {
        return Ok(None);
    };
    if libcontainer::seccomp::is_notify(profile) {
        // The notify descriptor goes to a listener through the container's init, which an exec
        // process does not have here; running the exec without the filter is not an option.
        bail!(
            "the container's seccomp profile uses SCMP_ACT_NOTIFY, which exec processes do not \
             support in this shim"
        );
    }
    let no_new_privs = process.no_new_privileges() == Some(true);
    let keep = ExecFilter {
        profile: profile.clone(),
        restore: None,
    };
    // Without capabilities in the spec, libcontainer leaves the process those it has (all of
    // them, for root).
    let Some(requested) = process.capabilities().clone() else {
        return Ok(Some(keep));
    };
    let privileged = requested
        .effective()
        .as_ref()
        .is_some_and(|effective| effective.contains(&Capability::SysAdmin));
    if no_new_privs || privileged {
        return Ok(Some(keep));
    }
    if requested.effective().is_none() || requested.permitted().is_none() {
        bail!(
            "the exec process has no effective or permitted capability set: cannot load the \
             container's seccomp filter without no_new_privileges"
        );
    }
    process.set_capabilities(Some(lend(&requested)));
    Ok(Some(ExecFilter {
        profile: profile.clone(),
        restore: Some(requested),
    }))
}

/// `requested` with [`LENT`] added to the bounding, effective and permitted sets.
fn lend(requested: &LinuxCapabilities) -> LinuxCapabilities {
    let with_lent = |set: &Option<Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.extend(LENT);
        Some(set)
    };
    let mut lent = requested.clone();
    lent.set_bounding(with_lent(requested.bounding()))
        .set_effective(with_lent(requested.effective()))
        .set_permitted(with_lent(requested.permitted()));
    lent
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCapabilitiesBuilder, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
        ProcessBuilder,
    };

    fn profile(action: LinuxSeccompAction) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(vec![
                LinuxSyscallBuilder::default()
                    .names(vec!["getdents64".to_string()])
                    .action(action)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap()
    }

    fn caps(set: &[Capability]) -> Capabilities {
        set.iter().copied().collect()
    }

    fn process(no_new_privs: Option<bool>, effective: &[Capability]) -> Process {
        let capabilities = LinuxCapabilitiesBuilder::default()
            .bounding(caps(effective))
            .effective(caps(effective))
            .permitted(caps(effective))
            .build()
            .unwrap();
        let mut process = ProcessBuilder::default()
            .capabilities(capabilities)
            .build()
            .unwrap();
        // The builder's default is Some(true); a spec without the field gives None.
        process.set_no_new_privileges(no_new_privs);
        process
    }

    #[test]
    fn no_filter_without_a_profile() {
        let mut exec = process(None, &[Capability::Chown]);
        let before = exec.clone();
        assert_eq!(plan(None, &mut exec).unwrap(), None);
        assert_eq!(exec, before);
    }

    #[test]
    fn capabilities_are_lent_only_when_loading_needs_them() {
        let seccomp = profile(LinuxSeccompAction::ScmpActErrno);
        let chown = [Capability::Chown];
        let admin = [Capability::Chown, Capability::SysAdmin];
        // (no_new_privs, effective capabilities, lent?)
        let cases: [(Option<bool>, &[Capability], bool); 5] = [
            (Some(true), &chown, false),
            (None, &admin, false),
            (Some(true), &admin, false),
            (None, &chown, true),
            (Some(false), &chown, true),
        ];
        for (no_new_privs, effective, lent) in cases {
            let mut exec = process(no_new_privs, effective);
            let requested = exec.capabilities().clone().unwrap();
            let filter = plan(Some(&seccomp), &mut exec).unwrap().unwrap();
            assert_eq!(filter.profile, seccomp);
            let given = exec.capabilities().clone().unwrap();
            let case = format!("no_new_privs {no_new_privs:?}, effective {effective:?}");
            if lent {
                assert_eq!(filter.restore.as_ref(), Some(&requested), "{case}");
                for set in [given.bounding(), given.effective(), given.permitted()] {
                    let set = set.as_ref().unwrap();
                    assert!(LENT.iter().all(|c| set.contains(c)), "{case}: {set:?}");
                    assert!(set.contains(&Capability::Chown), "{case}: {set:?}");
                }
            } else {
                assert_eq!(filter.restore, None, "{case}");
                assert_eq!(given, requested, "{case}");
            }
        }
    }

    #[test]
    fn absent_capabilities_are_not_lent_and_absent_sets_refused() {
        let seccomp = profile(LinuxSeccompAction::ScmpActErrno);
        let mut exec = process(None, &[]);
        exec.set_capabilities(None);
        let filter = plan(Some(&seccomp), &mut exec).unwrap().unwrap();
        assert_eq!(filter.restore, None);
        assert_eq!(exec.capabilities(), &None);

        let mut exec = process(None, &[Capability::Chown]);
        let mut without_effective = exec.capabilities().clone().unwrap();
        without_effective.set_effective(None);
        exec.set_capabilities(Some(without_effective));
        let error = plan(Some(&seccomp), &mut exec).unwrap_err();
        assert!(format!("{error}").contains("no_new_privileges"), "{error}");
    }

    #[test]
    fn a_notify_profile_is_refused() {
        let mut exec = process(Some(true), &[]);
        let error = plan(Some(&profile(LinuxSeccompAction::ScmpActNotify)), &mut exec).unwrap_err();
        assert!(format!("{error}").contains("SCMP_ACT_NOTIFY"), "{error}");
    }
}
