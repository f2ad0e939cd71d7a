//! Outbound hosts for sockets: a module whose container (or Spin component) lists allowed
//! outbound hosts reaches those and nothing else, and every refusal is logged.

use std::sync::Arc;

use containerd_shim_wasm::allowed_hosts::AllowedHosts;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

/// Sockets (and name lookups) for an instance whose outbound hosts are `hosts`: a connection
/// goes to an address one of them allows, and a refusal is logged.
pub fn allow_sockets(wasi: &mut WasiCtxBuilder, hosts: &Arc<AllowedHosts>, name: &str) {
    if !hosts.allows_some_socket() {
        return;
    }
    let (hosts, name) = (hosts.clone(), name.to_string());
    wasi.allow_ip_name_lookup(true)
        .allow_tcp(true)
        .allow_udp(true)
        .socket_addr_check(move |addr, used_for| {
            let allowed = match used_for {
                // The implicit bind of a connect or a send (the wildcard address, an ephemeral
                // port): the allowed hosts say where a socket goes, and it goes nowhere yet.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                    addr.ip().is_unspecified() && addr.port() == 0
                }
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    hosts.allows_socket(addr)
                }
                // Outbound hosts grant no server sockets.
                SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            };
            if !allowed {
                refused(&name, &format!("{used_for:?} {addr}"), &hosts);
            }
            Box::pin(std::future::ready(allowed))
        });
}

/// Logs an outbound refusal on the container's stderr and in the shim log.
pub fn refused(name: &str, what: &str, hosts: &AllowedHosts) {
    eprintln!("wasmtime-shim: {name}: {what} refused: not in its allowed outbound hosts {hosts}");
    log::warn!("{name}: {what} refused: not in its allowed outbound hosts {hosts}");
}
