//! Expectations shared by every engine, in one place so that an engine is held to exactly
//! the same rules as the others.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::ctr::CmdOutput;

/// Exit status of a task killed by SIGTERM (128 + 15), as runc reports it.
pub const EXIT_SIGTERM: i32 = 143;
/// Exit status of a task killed by SIGKILL (128 + 9).
pub const EXIT_SIGKILL: i32 = 137;
/// Exit status of a task whose module trapped (128 + SIGABRT, as a native program that
/// aborts): told apart from a kill and an OOM kill.
pub const EXIT_TRAP: i32 = 134;

/// A Wasm module stops this soon after SIGTERM (the project's decision: within a second),
/// whether it sleeps or spins.
pub const WASM_SIGTERM_DEADLINE: Duration = Duration::from_secs(1);

/// How long a native pid 1 without a SIGTERM handler is watched to confirm it ignores
/// SIGTERM, as the kernel makes it do under runc.
pub const SIGTERM_IGNORED_FOR: Duration = Duration::from_millis(1500);

/// The ctr messages of a task that failed at create: containerd wraps the shim's error
/// ("failed to create shim task: ...") or the shim's failure to start ("failed to start shim").
const CREATE_FAILURES: &[&str] = &["failed to create shim task", "failed to start shim"];

/// Why a path cannot be run because it does not exist.
pub const MISSING_FILE: &[&str] = &["no such file", "not found", "does not exist"];

/// Why a file is neither a Wasm module nor something Linux can execute.
pub const NOT_RUNNABLE: &[&str] = &[
    "not a wasm",
    "not a webassembly",
    "not webassembly",
    "neither",
    "not an executable",
    "not executable",
    "exec format error",
    "permission denied",
    "unknown format",
    "unrecognized",
];

/// Why bytes that start like a Wasm module are not one.
pub const INVALID_MODULE: &[&str] = &[
    "invalid",
    "malformed",
    "failed to parse",
    "cannot parse",
    "compil",
    "validat",
    "unexpected",
    "decod",
];

/// Why a module cannot be instantiated (besides naming the missing import).
pub const UNRESOLVED_IMPORT: &[&str] = &[
    "import",
    "unknown",
    "undefined",
    "unresolved",
    "not found",
    "not defined",
];

/// Why process.args cannot be empty.
pub const EMPTY_ARGS: &[&str] = &["empty", "no args", "no arguments", "missing", "must"];

/// Why config.json cannot be read as a runtime spec.
pub const MALFORMED_SPEC: &[&str] = &[
    "parse",
    "invalid",
    "syntax",
    "malformed",
    "decod",
    "deserializ",
    "utf-8",
    "utf8",
    "unicode",
    "unmarshal",
];

/// Why a module is refused for its size.
pub const TOO_LARGE: &[&str] = &["limit", "too large"];

/// Why a runtime spec without a process cannot be run.
pub const NO_PROCESS: &[&str] = &["process"];

/// `out` is a `ctr run` that failed at create with an error that names every one of
/// `names` and gives one of `reasons` (case-insensitive).
pub fn failed_at_create(out: &CmdOutput, names: &[&str], reasons: &[&str]) -> Result<()> {
    failed_with_message(out, names, reasons)?;
    if !is_create_failure(out) {
        bail!(
            "`{}` should fail at task create ({CREATE_FAILURES:?}); got {}",
            out.command,
            out.describe()
        );
    }
    Ok(())
}

/// Whether `out` is a `ctr run` whose task create failed.
pub fn is_create_failure(out: &CmdOutput) -> bool {
    out.code != Some(0) && CREATE_FAILURES.iter().any(|m| out.stderr.contains(m))
}

/// `out` failed with an error that names every one of `names` and gives one of `reasons`.
pub fn failed_with_message(out: &CmdOutput, names: &[&str], reasons: &[&str]) -> Result<()> {
    if out.code == Some(0) {
        bail!("`{}` should fail; got {}", out.command, out.describe());
    }
    message_explains(&out.stderr, names, reasons)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}; got {}", out.command, out.describe()))
}

/// `message` names every one of `names` and gives one of `reasons` (case-insensitive).
pub fn message_explains(message: &str, names: &[&str], reasons: &[&str]) -> Result<()> {
    let lower = message.to_lowercase();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !message.contains(name))
        .collect();
    if !missing.is_empty() {
        bail!("the error does not name {missing:?}");
    }
    if !reasons.iter().any(|reason| lower.contains(reason)) {
        bail!("the error gives none of the expected reasons {reasons:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_must_name_the_file_and_a_reason() {
        let runc = r#"exec: "/missing": stat /missing: no such file or directory: unknown"#;
        assert!(message_explains(runc, &["/missing"], MISSING_FILE).is_ok());
        assert!(message_explains(runc, &["/other"], MISSING_FILE).is_err());
        assert!(message_explains("ctr: failed: /missing", &["/missing"], MISSING_FILE).is_err());
    }
}
