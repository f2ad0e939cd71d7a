//! The container's seccomp filter in an exec process, loaded by its executor as the helper
//! planned it (`helper/exec_seccomp.rs` says why and how).

use anyhow::Context;
use libcontainer::syscall::syscall::create_syscall;
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp};

/// What the exec's executor does before the workload runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecFilter {
    pub profile: LinuxSeccomp,
    /// The capabilities the exec asked for, when the helper lent it more to load the filter.
    pub restore: Option<LinuxCapabilities>,
}

impl ExecFilter {
    /// In the exec process just before its workload: loads the filter, then gives
    /// back lent capabilities. An error means the process must not run.
    pub fn apply(&self) -> anyhow::Result<()> {
        libcontainer::seccomp::initialize_seccomp(&self.profile)
            .context("load the container's seccomp filter")?;
        if let Some(requested) = &self.restore {
            // Every set as libcontainer would have left it (an absent bounding set is empty).
            libcontainer::capabilities::drop_privileges(requested, create_syscall().as_ref())
                .context("drop the capabilities lent to load the seccomp filter")?;
        }
        Ok(())
    }
}
