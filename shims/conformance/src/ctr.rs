//! Runs the `ctr` binary against the private containerd, with a deadline on every call so
//! that a hung container fails its test (or a benchmark's measurement) instead of hanging
//! the run.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::environment::{Endpoint, containerd};

/// Deadline for a `ctr` call that is not given its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `ctr` invocation: `ctr --address <socket> --namespace <ns> ARGS...`.
#[derive(Debug, Clone)]
pub struct Ctr {
    args: Vec<String>,
    /// containerd's socket; `None` is the suite's (`CONTAINERD_ADDRESS`).
    address: Option<PathBuf>,
    /// containerd namespace; `None` is the suite's (`CONTAINERD_NAMESPACE`).
    namespace: Option<String>,
    stdin: Stdin,
    timeout: Duration,
    /// Run inside a pseudo-terminal of its own, after this shell setup (see [`Ctr::in_terminal`]).
    terminal: Option<String>,
}

#[derive(Debug, Clone)]
enum Stdin {
    Null,
    Data(Vec<u8>),
    /// Left open for [`RunningCtr::send_stdin`].
    Open,
}

/// What a finished `ctr` call did.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit code; `None` if ctr itself died of a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ctr {
    pub fn new<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Self {
        Self {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            address: None,
            namespace: None,
            stdin: Stdin::Null,
            timeout: DEFAULT_TIMEOUT,
            terminal: None,
        }
    }

    /// Runs ctr as a user at a terminal does (`ctr run -t` wants its stdin to be one):
    /// inside a pseudo-terminal made by `script` (util-linux), after the shell commands
    /// `setup` ran in it (e.g. `stty cols 100 rows 30`). Its output is the terminal's: the
    /// program's stdout and stderr together, input echoed.
    pub fn in_terminal(mut self, setup: &str) -> Self {
        self.terminal = Some(setup.to_owned());
        self
    }

    /// Feeds `data` to ctr's stdin at once, then closes it (EOF). Without this or
    /// [`Ctr::stdin_open`] stdin is `/dev/null`.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Stdin::Data(data.into());
        self
    }

    /// Leaves ctr's stdin open until [`RunningCtr::send_stdin`].
    pub fn stdin_open(mut self) -> Self {
        self.stdin = Stdin::Open;
        self
    }

    /// Runs in containerd namespace `namespace` instead of the suite's (the CRI suite's
    /// images and pods are in `k8s.io`).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Talks to the containerd of `endpoint` instead of the suite's (the benchmarks start
    /// their own).
    pub fn at(mut self, endpoint: &Endpoint) -> Self {
        self.address = Some(endpoint.address.clone());
        self.namespace = Some(endpoint.namespace.clone());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line as a user would type it (without the address and namespace flags).
    pub fn command_line(&self) -> String {
        std::iter::once("ctr".to_owned())
            .chain(self.args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs ctr to completion; an error means it could not run or hit its deadline (it is
    /// then killed), not that it exited non-zero.
    pub fn output(self) -> Result<CmdOutput> {
        let timeout = self.timeout;
        self.spawn()?.wait(timeout)
    }

    /// Starts ctr and returns at once; its output is collected in the background.
    pub fn spawn(self) -> Result<RunningCtr> {
        let command = self.command_line();
        // The suite's environment is read only when needed: the benchmarks have none.
        let address = self
            .address
            .clone()
            .unwrap_or_else(|| containerd().address.clone());
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| containerd().namespace.clone());
        let mut ctr_args = vec![
            "--address".to_owned(),
            address.to_string_lossy().into_owned(),
            "--namespace".to_owned(),
            namespace,
        ];
        ctr_args.extend(self.args.iter().cloned());
        let mut process = match &self.terminal {
            None => {
                let mut process = Command::new("ctr");
                process.args(&ctr_args);
                process
            }
            Some(setup) => {
                let ctr_line = std::iter::once("ctr")
                    .chain(ctr_args.iter().map(String::as_str))
                    .map(shell_quote)
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut process = Command::new("script");
                // -e: ctr's exit status; -f: no buffering; -q: no banner.
                process.args(["-qefc", &format!("{setup}; exec {ctr_line}"), "/dev/null"]);
                process
            }
        };
        let mut child = process
            .stdin(match self.stdin {
                Stdin::Null => Stdio::null(),
                Stdin::Data(_) | Stdin::Open => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{command}` (is ctr installed?)"))?;
        let stdout = Collector::start(child.stdout.take());
        let stderr = Collector::start(child.stderr.take());
        let mut running = RunningCtr {
            command,
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            stdin_writer: None,
        };
        if let Stdin::Data(data) = self.stdin {
            running.send_stdin(data);
        }
        Ok(running)
    }
}

/// A `ctr` process still running; killed when dropped.
#[derive(Debug)]
pub struct RunningCtr {
    command: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Collector,
    stderr: Collector,
    stdin_writer: Option<JoinHandle<()>>,
}

impl RunningCtr {
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Writes `data` to ctr's stdin on a thread, then closes it. Does nothing if stdin was
    /// not left open or was already sent.
    pub fn send_stdin(&mut self, data: impl Into<Vec<u8>>) {
        let data = data.into();
        if let Some(mut pipe) = self.stdin.take() {
            self.stdin_writer = Some(std::thread::spawn(move || {
                // ctr may exit before reading everything (e.g. when create fails): the exit
                // code and output tell that story, not this write.
                let _ = pipe.write_all(&data);
            }));
        }
    }

    /// Output so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    /// Waits until stdout contains `needle`; fails if ctr exits or the deadline passes first.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout.text().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "`{}` exited ({status}) before printing {needle:?}; stdout: {}, stderr: {}",
                    self.command,
                    abbreviate(&self.stdout.text()),
                    abbreviate(&self.stderr.text())
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "`{}` did not print {needle:?} within {timeout:?}; stdout: {}, stderr: {}",
                    self.command,
                    abbreviate(&self.stdout.text()),
                    abbreviate(&self.stderr.text())
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for ctr to exit; past the deadline it is killed and this fails with what it printed.
    pub fn wait(mut self, timeout: Duration) -> Result<CmdOutput> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "`{}` did not finish within {timeout:?} (killed it); stdout: {}, stderr: {}",
                    self.command,
                    abbreviate(&self.stdout.text()),
                    abbreviate(&self.stderr.text())
                );
            }
            // Fine-grained: the benchmarks time ctr runs of a few tens of milliseconds.
            std::thread::sleep(Duration::from_millis(1));
        };
        Ok(self.finish(status))
    }

    fn finish(&mut self, status: ExitStatus) -> CmdOutput {
        if let Some(writer) = self.stdin_writer.take() {
            let _ = writer.join();
        }
        CmdOutput {
            command: self.command.clone(),
            code: status.code(),
            stdout: self.stdout.finish(),
            stderr: self.stderr.finish(),
        }
    }
}

impl Drop for RunningCtr {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a pipe to its end on a thread, so that ctr never blocks on a full pipe.
#[derive(Debug)]
struct Collector {
    buffer: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let reader = pipe.map(|mut pipe| {
            let buffer = Arc::clone(&buffer);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buffer.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            })
        });
        Self { buffer, reader }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// The whole output; the pipe reaches EOF once ctr has exited (a container that still
    /// holds it would be a leftover, which the kill in the caller's cleanup ends).
    fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}

impl CmdOutput {
    /// Fails unless ctr exited 0.
    pub fn success(&self) -> Result<&Self> {
        if self.code != Some(0) {
            bail!("`{}` failed: {}", self.command, self.describe());
        }
        Ok(self)
    }

    /// Fails unless ctr exited with `code`, whatever it printed.
    pub fn expect_code(&self, code: i32) -> Result<&Self> {
        if self.code != Some(code) {
            bail!(
                "`{}`: expected exit code {code}; got {}",
                self.command,
                self.describe()
            );
        }
        Ok(self)
    }

    /// Fails unless ctr exited with `code` and printed exactly `stdout`.
    pub fn expect(&self, code: i32, stdout: &str) -> Result<()> {
        if self.code != Some(code) || self.stdout != stdout {
            bail!(
                "`{}`: expected exit code {code} and stdout {}; got {}",
                self.command,
                abbreviate(stdout),
                self.describe()
            );
        }
        Ok(())
    }

    /// Exit code, stdout and stderr, for messages.
    pub fn describe(&self) -> String {
        let code = self
            .code
            .map_or_else(|| "none (killed by a signal)".to_owned(), |c| c.to_string());
        format!(
            "exit code {code}, stdout {}, stderr {}",
            abbreviate(&self.stdout),
            abbreviate(&self.stderr)
        )
    }
}

/// Quotes `text` for a message; long text keeps its start and end.
pub fn abbreviate(text: &str) -> String {
    const KEEP: usize = 600;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 2 * KEEP {
        return format!("{text:?}");
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!(
        "{head:?} ...({} more characters)... {tail:?}",
        chars.len() - 2 * KEEP
    )
}

/// `arg` as a shell word, for command lines in messages.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:#,+@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
