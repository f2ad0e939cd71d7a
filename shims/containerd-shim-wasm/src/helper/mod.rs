//! The helper process: creates a container, or starts an exec process in one, and exits.
//!
//! The shim is multi-threaded (ttrpc, reaper, events) and `libcontainer` forks; a fork of a
//! multi-threaded process may deadlock in the child. So the shim hands each create and exec to
//! a helper: a worker forked by the zygote ([`zygote`]), or the shim binary re-executed with
//! [`HELPER_ARG`](crate::request::HELPER_ARG) when there is no zygote. The helper reads one
//! [`HelperRequest`](crate::request::HelperRequest) ([`run`]), mounts the rootfs, resolves and
//! compiles the workload once ([`prepare`]), builds the process with `libcontainer` (a
//! container's init then waits for `start`), answers one line and exits. The process it
//! started is re-parented to the shim, a child subreaper.
//!
//! Rules of this process:
//! - one thread, always: nothing here starts a thread, and the engine must not in `new` or
//!   `compile` ([`threads`] checks before each fork);
//! - it may block and allocate freely before the fork; after `libcontainer`'s fork, the child
//!   runs `init/` code only;
//! - its stderr is the shim log, kept as descriptor 3 of a Wasm container's init process so the
//!   engine's errors (traps) reach the shim log;
//! - every error names the container (and exec) and reaches the shim as the answer's message,
//!   which the shim returns to containerd.

pub mod builder;
pub mod bundle;
pub mod cache;
pub mod capabilities;
pub mod create;
pub mod exec;
pub mod exec_seccomp;
pub mod module_size;
pub mod phases;
pub mod preopens;
pub mod prepare;
pub mod rootfs;
pub mod run;
pub mod spec_compat;
pub mod threads;
pub mod workload;
pub mod zygote;
