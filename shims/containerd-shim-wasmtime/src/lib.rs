//! The wasmtime engine of `containerd-shim-wasmtime-v1`: WASI preview 1 modules, WASI 0.2 and
//! 0.3 components, and the HTTP server for `wasi:http` components. A library as well as the
//! shim's binary, so that `containerd-shim-spin-v2` serves Spin applications with the same
//! engine and server.

pub mod component;
mod debugging;
pub mod engine;
pub mod http;
pub mod limits;
mod outbound;
mod p1;
