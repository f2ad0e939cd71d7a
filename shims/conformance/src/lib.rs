//! End-to-end conformance suite for the Wasm shims.
//!
//! The same tests, images and expectations run through a real (private) containerd against
//! every shim in [`engines::ENGINES`], and against runc with the native demo as the
//! reference. The tests live in `tests/`, one file per area; they are `#[ignore]`d so that a
//! plain `cargo test` lists them without needing containerd, and `make test` runs them with
//! `--include-ignored` against the containerd of `scripts/containerd.sh`.
//!
//! Running it: `make test` (builds the shims and images, starts the private containerd,
//! runs this suite with `--include-ignored`). By hand, against a running
//! `scripts/containerd.sh start`:
//!
//! ```text
//! eval "$(scripts/containerd.sh env)"
//! cargo test --release -p shim-conformance --no-fail-fast -- --include-ignored
//! ```
//!
//! Adding an engine is one entry in [`engines::ENGINES`]; an engine whose shim binary is
//! not on containerd's PATH is skipped with the reason printed on stderr.
//!
//! With `WASM_SHIMS_RESULTS` set (`make test` sets it), every checked target's outcome is
//! appended to that file as a JSON line ([`results`]); `make test` then turns the file into
//! `docs/engines.md` (the `engines-table` binary).
//!
//! A test picks its targets (runtime + demo program) and checks each:
//!
//! ```no_run
//! use shim_conformance::target::{all_targets, check_targets};
//!
//! check_targets(&all_targets(), |target, test| {
//!     target.run(test, &["echo", "hello"])?.expect(0, "hello\n")
//! });
//! ```

pub mod api;
pub mod component_server;
pub mod container;
pub mod containerd_log;
pub mod ctr;
pub mod docker;
pub mod engines;
pub mod environment;
pub mod events;
pub mod expect;
pub mod fifo;
pub mod http;
pub mod images;
pub mod leftovers;
pub mod otlp;
pub mod procfs;
pub mod registry;
pub mod results;
pub mod spin_app;
pub mod target;
