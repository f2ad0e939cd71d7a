//! `native-demo`: the demo sub-commands as a static Linux executable, run by runc (the reference)
//! and by the shim's native (non-wasm) path, so tests can compare both with `wasi-demo-app`.

#[path = "../../common/demo_commands.rs"]
mod demo_commands;

use demo_commands::{Invocation, Streams};

fn main() {
    let invocation = Invocation::from_process("native-demo");
    let mut streams = Streams {
        stdin: &mut std::io::stdin().lock(),
        stdout: &mut std::io::stdout().lock(),
        stderr: &mut std::io::stderr().lock(),
    };
    let code = demo_commands::run(&invocation, &mut streams, || std::process::abort());
    std::process::exit(code);
}
