//! `wasi-demo-app`: the demo sub-commands as a WASI preview 1 command module
//! (`cargo build --release -p wasi-demo-app --target wasm32-wasip1`).
//!
//! It also builds for the host (it is a workspace member); only `trap` differs by target.

#[path = "../../common/demo_commands.rs"]
mod demo_commands;

use demo_commands::{Invocation, Streams};

fn main() {
    let invocation = Invocation::from_process("wasi-demo-app");
    let mut streams = Streams {
        stdin: &mut std::io::stdin().lock(),
        stdout: &mut std::io::stdout().lock(),
        stderr: &mut std::io::stderr().lock(),
    };
    let code = demo_commands::run(&invocation, &mut streams, trap);
    std::process::exit(code);
}

/// Entry point `/wasi-demo-app.wasm#greet`: the shim calls this export instead of `_start`.
#[unsafe(export_name = "greet")]
pub extern "C" fn greet() {
    println!("hello from greet");
}

/// Executes the wasm `unreachable` instruction, which the engine reports as a trap.
#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

/// Host builds only exist for `cargo test`/clippy; the nearest equivalent of a trap is abort.
#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}
