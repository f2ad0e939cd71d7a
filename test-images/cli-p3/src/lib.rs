//! `cli-p3`: a `wasi:cli/run@0.3` command. It writes `hello from rust (wasi 0.3)` and its
//! arguments (after argv[0]) on one line to stdout through a WASI 0.3 `stream`, then:
//!
//! * with the argument `fail`, returns an error from `run` (exit status 1);
//! * with `env NAME`, also prints `NAME=<value>` from the 0.3 environment interface.

// On the host (a `cargo build --workspace`) the export is not made, so nothing uses this.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use wasip3::cli::{environment, stdout};
use wasip3::wit_stream;

#[cfg(target_arch = "wasm32")]
wasip3::cli::command::export!(CliP3);

struct CliP3;

impl wasip3::exports::cli::run::Guest for CliP3 {
    async fn run() -> Result<(), ()> {
        let args = environment::get_arguments();
        let rest = args.get(1..).unwrap_or_default();
        let mut line = String::from("hello from rust (wasi 0.3)");
        for arg in rest {
            line.push(' ');
            line.push_str(arg);
        }
        line.push('\n');
        if let Some(name) = rest
            .windows(2)
            .find(|pair| pair[0] == "env")
            .map(|pair| &pair[1])
        {
            let value = environment::get_environment()
                .into_iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value)
                .unwrap_or_default();
            line.push_str(&format!("{name}={value}\n"));
        }
        let (mut tx, rx) = wit_stream::new();
        let (written, ()) =
            futures::join!(async { stdout::write_via_stream(rx).await }, async move {
                let remaining = tx.write_all(line.into_bytes()).await;
                assert!(remaining.is_empty(), "stdout closed early");
            });
        written.map_err(|_| ())?;
        if rest.iter().any(|arg| arg == "fail") {
            return Err(());
        }
        Ok(())
    }
}
