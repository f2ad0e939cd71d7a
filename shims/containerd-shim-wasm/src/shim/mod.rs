//! The shim process: one per pod (or per container outside Kubernetes), serving containerd's
//! Task service over ttrpc for all the pod's containers until the last is deleted.
//!
//! [`lifecycle`] is its life (`start`, serving, `-v`, `-info`); [`task`] maps each Task verb
//! onto a [`container`] or an [`exec`] process; processes are reaped through pidfds
//! ([`reaper`]); events go out in order ([`events`]); helpers do the forking ([`helpers`]).
//!
//! Rules of this process:
//! - it is multi-threaded (ttrpc, reaper, events, OOM watchers): it never forks to do work in
//!   the child; everything that forks (`libcontainer`'s create and exec, mounting the rootfs)
//!   runs in a helper process;
//! - its working directory is shared by its threads: whatever changes it runs under
//!   [`cwd::serialized`];
//! - a verb may block on a helper or on `libcontainer`, never on a container's output: stdio
//!   goes from the process to containerd's FIFOs directly;
//! - every child is reaped by [`reaper`] (a child subreaper), none by `waitpid` elsewhere.

pub mod console;
pub mod container;
pub mod cwd;
pub mod error;
pub mod events;
pub mod exec;
pub mod helpers;
pub mod lifecycle;
pub mod oom;
pub mod options;
pub mod process;
pub mod reaper;
pub mod rootfs;
pub mod runtime;
pub mod spin_artifact;
pub mod stats;
pub mod status;
pub mod task;
pub mod telemetry;
pub mod wasm_layers;
