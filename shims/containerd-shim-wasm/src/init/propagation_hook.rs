//! The `createContainer` hook that gives each of a container's mounts its propagation option
//! (`rprivate`, `rslave`, …) as runc does, which `libcontainer` does not (see
//! `helper/spec_compat.rs`, which adds the hook to the spec). `libcontainer`'s init runs it as
//! a process of its own, in the container's mount namespace, once every mount is made and
//! before `pivot_root`.

use anyhow::{Context, anyhow, bail};
use nix::mount::{MsFlags, mount};

/// The first argument that turns the shim binary into the propagation hook.
pub const PROPAGATION_HOOK_ARG: &str = "set-mount-propagation";

/// The mount flags of a propagation option, as runc maps them.
pub fn propagation_flags(option: &str) -> Option<MsFlags> {
    Some(match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The whole life of the propagation hook, run by `libcontainer` in the container's
/// mount namespace (`args`: the rootfs, then `option=destination` per mount). Errors go to
/// stderr (the shim log) and fail the hook, and so the container's create.
pub fn propagation_hook_main(args: &[String]) -> ! {
    let status = match set_propagation(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mount propagation hook: {e:#}");
            1
        }
    };
    std::process::exit(status)
}

fn set_propagation(args: &[String]) -> anyhow::Result<()> {
    let (rootfs, settings) = args
        .split_first()
        .ok_or_else(|| anyhow!("no rootfs given"))?;
    for setting in settings {
        let (option, destination) = setting
            .split_once('=')
            .ok_or_else(|| anyhow!("{setting:?} is not option=destination"))?;
        let Some(flags) = propagation_flags(option) else {
            bail!("{option:?} is no mount propagation");
        };
        // Resolved inside the rootfs, as libcontainer resolved the destination it mounted on.
        let target = safe_path::scoped_join(rootfs, destination)
            .with_context(|| format!("resolve {destination} in {rootfs}"))?;
        mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
            .with_context(|| format!("make the mount at {destination} in {rootfs} {option}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_refuses_what_it_cannot_apply() {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (args, reason) in [
            (&[][..], "no rootfs"),
            (&["/r", "rprivate"][..], "option=destination"),
            (&["/r", "bind=/data"][..], "no mount propagation"),
        ] {
            let error = set_propagation(&strings(args)).unwrap_err();
            assert!(format!("{error:#}").contains(reason), "{args:?}: {error:#}");
        }
    }
}
