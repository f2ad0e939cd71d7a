//! The `ctr` binary against the private containerd, with a deadline on every call.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::containerd::{Containerd, NAMESPACE};

/// Long enough for an image import or an uncached start of the largest module on a busy
/// machine; only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(180);

/// What a finished `ctr` call printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    /// Wall time from spawning ctr to its exit.
    pub elapsed: Duration,
}

/// Runs `ctr ARGS` to completion; fails (with what ctr said) unless it exits 0.
pub fn ctr<S: AsRef<str>>(containerd: &Containerd, args: &[S]) -> Result<Output> {
    let line = std::iter::once("ctr")
        .chain(args.iter().map(AsRef::as_ref))
        .collect::<Vec<_>>()
        .join(" ");
    let started = Instant::now();
    let mut child = Command::new("ctr")
        .arg("--address")
        .arg(&containerd.address)
        .args(["--namespace", NAMESPACE])
        .args(args.iter().map(AsRef::as_ref))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{line}`"))?
        {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{line}` did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = started.elapsed();
    let stdout = read_all(&mut child, true);
    let stderr = read_all(&mut child, false);
    if !status.success() {
        bail!("`{line}` failed ({status}): {}", stderr.trim());
    }
    Ok(Output { stdout, elapsed })
}

/// What the child wrote to a pipe; its output is small, so the pipe never filled while it ran.
fn read_all(child: &mut Child, stdout: bool) -> String {
    let mut text = String::new();
    let pipe: Option<&mut dyn Read> = if stdout {
        child.stdout.as_mut().map(|p| p as &mut dyn Read)
    } else {
        child.stderr.as_mut().map(|p| p as &mut dyn Read)
    };
    if let Some(pipe) = pipe {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}
