//! Spin's application manifest and HTTP routing, as containerd-shim-spin needs them.
//!
//! containerd-shim-spin runs [Spin](https://github.com/spinframework/spin) applications:
//! a `spin.toml` and the Wasm components it names. This library holds the parts that do
//! not need a Wasm engine, written to behave as Spin does:
//!
//! - [`routes`]: Spin's HTTP router (which component a request path goes to) and the
//!   `spin-*` request headers that tell the component how it matched.

pub mod routes;
