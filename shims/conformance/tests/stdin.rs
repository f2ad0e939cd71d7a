//! stdin: ctr forwards its stdin and closes the container's at EOF (CloseIO); the program
//! must see that EOF.

use shim_conformance::target::{all_targets, check_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn stdin_is_copied_to_stdout_until_eof() {
    // Larger than a pipe buffer, so that the copy has to stream.
    let input: String = (0..4000)
        .map(|i| format!("line {i} of the input\n"))
        .collect();
    check_targets(&all_targets(), |target, test| {
        target
            .container(test)
            .run_with_stdin(&target.args(&["stdin"]), input.as_bytes())?
            .expect(0, &input)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn empty_stdin_is_an_immediate_eof() {
    check_targets(&all_targets(), |target, test| {
        target
            .container(test)
            .run_with_stdin(&target.args(&["stdin"]), b"")?
            .expect(0, "")
    });
}
