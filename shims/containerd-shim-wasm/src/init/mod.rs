//! The container's init process (and an exec process), forked by `libcontainer` from the
//! helper: once `libcontainer` has set up its namespaces, cgroup, mounts, user and
//! capabilities, the [`executor`] runs the workload the helper prepared: a native program
//! (exec'ed, as runc does) or the module, run by the engine in this process.
//!
//! Rules of this process:
//! - it is a fork of the single-threaded helper: the engine and the compiled module come with
//!   it, and it reads nothing of the spec again (the helper made the module's
//!   [`WasiContext`](crate::WasiContext));
//! - it runs with the container's identity and inside its confinement (seccomp, capabilities,
//!   cgroup): it must not reach for anything of the node's;
//! - an error before the workload runs goes to `libcontainer`'s error pipe and the helper; once
//!   the module runs, to the container's stderr and the shim log (descriptor 3).
//!
//! [`propagation_hook`] is a short process of its own that `libcontainer`'s init runs while it
//! sets up the mounts.

pub mod executor;
pub mod propagation_hook;
pub mod seccomp;
