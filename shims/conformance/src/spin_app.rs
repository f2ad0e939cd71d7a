//! Spin applications on `containerd-shim-spin-v2`, run as SpinKube runs them: the command `/`,
//! the listen address in `SPIN_HTTP_LISTEN_ADDR`, here 127.0.0.1 in containerd's network
//! namespace (`ctr run --net-host`).

use anyhow::Result;

use crate::component_server::Server;
use crate::container::Container;
use crate::engines::{Runtime, SPIN};
use crate::images::TestImage;

/// SpinKube's command for a Spin app's container.
pub const COMMAND: &str = "/";

fn spin() -> &'static Runtime {
    if let Err(e) = SPIN.locate() {
        panic!("the spin shim is needed for these tests: {e:#}");
    }
    &SPIN
}

/// A container of `image` through the Spin shim, listening on 127.0.0.1:`port`.
pub fn container(label: &str, image: &'static TestImage, port: u16) -> Container {
    Container::new(label, spin(), image)
        .net_host()
        .env(&format!("SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}"))
}

/// That container started with [`COMMAND`], once it answers on `port`.
pub fn app(label: &str, image: &'static TestImage, port: u16) -> Result<Server> {
    Server::launch(container(label, image, port), COMMAND, port)
}
