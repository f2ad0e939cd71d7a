//! A wasmtime HTTP server component run by `ctr run --net-host`, i.e. in the private
//! containerd's network namespace, serving on a port of 127.0.0.1 there; requests come from
//! threads that joined that namespace (`crate::http`).

use std::time::Duration;

use anyhow::{Context, Result};

use crate::container::Container;
use crate::ctr::{CmdOutput, RunningCtr};
use crate::engines::{ENGINES, Runtime};
use crate::http::wait_until_serving;
use crate::images::TestImage;

/// The address a wasmtime HTTP server listens on (the shim reads it from the environment).
pub const ADDR_ENV: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";
/// The annotation that lets a container reach the network.
pub const NETWORK_ANNOTATION: &str = "io.containerd.wasm.network";

/// How long a component may take to start (a server to listen): its first start compiles it,
/// which for a ~20 MB CPython component (componentize-py) takes tens of seconds on a busy
/// 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Components are a wasmtime feature: the other engines run core modules only.
pub fn wasmtime() -> &'static Runtime {
    let runtime = ENGINES
        .iter()
        .find(|engine| engine.name == "wasmtime")
        .expect("wasmtime is in ENGINES");
    if let Err(e) = runtime.locate() {
        panic!("the wasmtime shim is needed for these tests: {e:#}");
    }
    runtime
}

/// A component serving on 127.0.0.1:`port` in containerd's network namespace.
pub struct Server {
    pub container: Container,
    pub running: RunningCtr,
}

impl Server {
    pub fn start(
        label: &str,
        image: &'static TestImage,
        program: &str,
        port: u16,
        env: &[&str],
        network: bool,
    ) -> Result<Self> {
        let mut container = Container::new(label, wasmtime(), image)
            .net_host()
            .env(&format!("{ADDR_ENV}=127.0.0.1:{port}"));
        for var in env {
            container = container.env(var);
        }
        if network {
            container = container.annotation(NETWORK_ANNOTATION, "allow");
        }
        Self::launch(container, program, port)
    }

    /// Runs `program` in `container` (made to serve on 127.0.0.1:`port`) until it serves.
    pub fn launch(container: Container, program: &str, port: u16) -> Result<Self> {
        let running = container.spawn(&[program])?;
        wait_until_serving(port, START_TIMEOUT)
            .with_context(|| format!("`{}` did not start serving", running.command()))?;
        Ok(Self { container, running })
    }

    /// SIGTERM: the server drains and the task exits 0.
    pub fn stop(self) -> Result<CmdOutput> {
        self.container.kill("SIGTERM")?;
        let out = self.running.wait(Duration::from_secs(30))?;
        out.expect_code(0).context("after SIGTERM")?;
        Ok(out)
    }
}
