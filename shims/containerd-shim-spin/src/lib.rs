//! `containerd-shim-spin-v2` (runtime `io.containerd.spin.v2`): runs
//! [Spin](https://github.com/spinframework/spin) applications, a `spin.toml` and the Wasm
//! components it names, on the shared shim library with the wasmtime shim's engine and HTTP
//! server.
//!
//! - [`manifest`]: reads `spin.toml` (manifest version 2) into typed structs, with Spin's
//!   checks and its ids for unnamed triggers and inline components; every error names
//!   the file and the field.
//! - [`routes`]: Spin's HTTP router (which component a request path goes to) and the
//!   `spin-*` request headers that tell the component how it matched.
//! - [`locked`]: the locked app of a Spin OCI artifact (`spin registry push`), read into the
//!   same [`manifest::Manifest`].
//! - [`app`]: the application loaded at create: every component compiled and linked.
//! - [`componentize`]: `wasm32-wasip1` modules made components, as Spin does at load.
//! - [`files`]: what a component's `files` let it read.
//! - [`host`]: Spin's host interfaces (variables, key-value stores).
//! - [`trigger`]: the HTTP trigger serving the application.
//! - [`engine`]: the shim's engine, tying them together.
//!
//! ```
//! use std::path::Path;
//! use containerd_shim_spin::{manifest, routes};
//!
//! let manifest = manifest::parse(
//!     r#"
//!     spin_manifest_version = 2
//!     [application]
//!     name = "hello"
//!     [[trigger.http]]
//!     route = "/hello/..."
//!     component = "hello"
//!     [component.hello]
//!     source = "hello.wasm"
//!     "#,
//!     Path::new("spin.toml"),
//! )?;
//! manifest.check_http_only()?;
//!
//! let router = routes::Router::new(
//!     manifest.http_base(),
//!     manifest
//!         .http_triggers()
//!         .iter()
//!         .filter_map(|t| Some((t.route().path()?, t.component()?))),
//! )?;
//! let matched = router.route("/hello/world").expect("routed");
//! assert_eq!(matched.component_id(), "hello");
//! assert_eq!(matched.path_info(), "/world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod app;
pub mod componentize;
pub mod engine;
pub mod files;
pub mod host;
pub mod locked;
pub mod manifest;
pub mod routes;
pub mod trigger;
