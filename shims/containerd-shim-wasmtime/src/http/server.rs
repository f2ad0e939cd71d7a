//! The HTTP/1.1 server: listener, keep-alive connections, and the drain on SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::server::graceful::GracefulShutdown;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{SignalKind, signal};
use wasmtime_wasi_http::io::TokioIo;

use super::settings::Settings;

/// The signals that drain the server instead of killing it.
const DRAIN_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];

/// Serves each request with `respond` (given the request and the client's address) until
/// SIGTERM or SIGINT, then lets in-flight requests finish and returns.
pub fn run<R, F, B>(respond: R, settings: &Settings) -> anyhow::Result<()>
where
    R: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Threads inherit the signal mask: with the drain signals blocked while the runtime starts,
    // only this thread takes them, once it has replaced the library's exit-at-once handlers.
    let drain_signals = SigSet::from_iter(DRAIN_SIGNALS);
    drain_signals
        .thread_block()
        .context("block SIGTERM and SIGINT")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let result = runtime.block_on(async {
        let mut terminate = drain_signals_stream(&drain_signals)?;
        let listener = bind(settings)?;
        let local = listener.local_addr()?;
        eprintln!("wasmtime-shim: serving HTTP on http://{local}/");
        let graceful = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.keep_alive(true);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, client)) => {
                        // Small responses on kept-alive connections must not wait for
                        // delayed ACKs.
                        let _ = stream.set_nodelay(true);
                        let connection = http.serve_connection(
                            TokioIo::new(stream),
                            service_fn({
                                let respond = respond.clone();
                                move |request| respond(request, client)
                            }),
                        );
                        let connection = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(e) = connection.await
                                && !(e.is_incomplete_message() || e.is_canceled())
                            {
                                eprintln!("wasmtime-shim: connection: {e}");
                            }
                        });
                    }
                    // Out of descriptors, or a connection reset before accept: retry shortly.
                    Err(e) => {
                        eprintln!("wasmtime-shim: accept on {local}: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = terminate.recv() => break,
            }
        }
        drop(listener);
        eprintln!("wasmtime-shim: draining {} connection(s)", graceful.count());
        graceful.shutdown().await;
        anyhow::Ok(())
    });
    // Guest tasks still running after their response was sent are not waited for long.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// A stream of the drain signals. Replaces the library's handlers (which `_exit` at once):
/// tokio's handler chains to the previous one, so the default action is restored first,
/// which the chain skips. Runs on the thread that blocked them, and unblocks them there.
fn drain_signals_stream(blocked: &SigSet) -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    for sig in DRAIN_SIGNALS {
        // SAFETY: restoring the default action; the signal is blocked on every thread.
        unsafe { sigaction(sig, &default) }.with_context(|| format!("reset the {sig} handler"))?;
        let mut stream = signal(SignalKind::from_raw(sig as i32))
            .with_context(|| format!("listen for {sig}"))?;
        let sender = sender.clone();
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                let _ = sender.try_send(());
            }
        });
    }
    blocked
        .thread_unblock()
        .context("unblock SIGTERM and SIGINT")?;
    Ok(receiver)
}

fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let addr = settings.addr;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .with_context(|| format!("socket for {addr}"))?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr).with_context(|| format!("bind {addr}"))?;
    socket
        .listen(settings.backlog)
        .with_context(|| format!("listen on {addr} (backlog {})", settings.backlog))
}
