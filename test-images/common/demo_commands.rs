//! The sub-commands shared by `wasi-demo-app` (wasm32-wasip1) and `native-demo` (static ELF).
//!
//! Both programs include this file with `#[path]` so the conformance suite can run the very same
//! commands on our shim and on runc and compare the results. The only difference between the two
//! builds is the program name (greeting, messages) and what `trap` does on each target.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

/// Exit status for a command line we do not understand (like most CLIs).
pub const USAGE_EXIT_CODE: i32 = 2;
/// Exit status when a command was understood but failed (a missing file, ...).
pub const FAILURE_EXIT_CODE: i32 = 1;

const USAGE: &str = "\
commands:
  (none)            print a greeting
  echo A B ...      print the arguments joined by one space
  args ...          print every argv entry, one per line
  env               print every environment variable K=V, sorted
  cwd               print the current directory, then list it sorted
  ls DIR            list DIR's entries, sorted
  cat FILE          print FILE's content
  write FILE TEXT   write TEXT to FILE
  mkdir DIR         create the directory DIR
  stdin             copy stdin to stdout until EOF
  stderr TEXT       print TEXT to stderr
  exit N            exit with status N
  sleep SECS        sleep SECS seconds (fractions allowed)
  trap              trap (wasm: unreachable, native: abort)
  loop              spin forever without syscalls
  count M           count to M million without syscalls, then print M
  grow MB           allocate MB MiB and touch every page, then print how much
  threads N         start N threads that wait forever, print how many started";

/// One parsed sub-command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Greet,
    Echo(Vec<String>),
    Args,
    Env,
    Cwd,
    Ls(String),
    Cat(String),
    Write { file: String, text: String },
    Mkdir(String),
    Stdin,
    Stderr(String),
    Exit(i32),
    Sleep { text: String, duration: Duration },
    Trap,
    Loop,
    Count(u64),
    Grow(u32),
    Threads(u32),
}

/// Why a command line was rejected; printed with the usage text.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageError {
    Unknown(String),
    WrongArgCount {
        command: String,
        expected: &'static str,
    },
    BadNumber {
        command: String,
        value: String,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(command) => write!(f, "unknown command {command:?}"),
            Self::WrongArgCount { command, expected } => {
                write!(f, "{command} expects {expected}")
            }
            Self::BadNumber { command, value } => {
                write!(f, "{command}: {value:?} is not a valid number")
            }
        }
    }
}

/// Parses the command line after argv[0].
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((name, rest)) = args.split_first() else {
        return Ok(Command::Greet);
    };
    let wrong_count = |expected| UsageError::WrongArgCount {
        command: name.clone(),
        expected,
    };
    let bad_number = |value: &String| UsageError::BadNumber {
        command: name.clone(),
        value: value.clone(),
    };
    let command = match (name.as_str(), rest) {
        ("echo", words) => Command::Echo(words.to_vec()),
        // Extra words are the point: they show up in the listing.
        ("args", _) => Command::Args,
        ("env", []) => Command::Env,
        ("cwd", []) => Command::Cwd,
        ("ls", [dir]) => Command::Ls(dir.clone()),
        ("cat", [file]) => Command::Cat(file.clone()),
        ("write", [file, text]) => Command::Write {
            file: file.clone(),
            text: text.clone(),
        },
        ("mkdir", [dir]) => Command::Mkdir(dir.clone()),
        ("stdin", []) => Command::Stdin,
        ("stderr", [text]) => Command::Stderr(text.clone()),
        ("exit", [code]) => Command::Exit(code.parse().map_err(|_| bad_number(code))?),
        ("sleep", [secs]) => Command::Sleep {
            duration: secs
                .parse::<f64>()
                .ok()
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                .ok_or_else(|| bad_number(secs))?,
            text: secs.clone(),
        },
        ("trap", []) => Command::Trap,
        ("loop", []) => Command::Loop,
        ("count", [millions]) => {
            Command::Count(millions.parse().map_err(|_| bad_number(millions))?)
        }
        ("grow", [mb]) => Command::Grow(mb.parse().map_err(|_| bad_number(mb))?),
        ("threads", [n]) => Command::Threads(n.parse().map_err(|_| bad_number(n))?),
        ("env" | "cwd" | "stdin" | "trap" | "loop", _) => {
            return Err(wrong_count("no arguments"));
        }
        (
            "ls" | "cat" | "mkdir" | "stderr" | "exit" | "sleep" | "count" | "grow" | "threads",
            _,
        ) => {
            return Err(wrong_count("exactly one argument"));
        }
        ("write", _) => return Err(wrong_count("exactly two arguments: FILE TEXT")),
        (unknown, _) => return Err(UsageError::Unknown(unknown.to_owned())),
    };
    Ok(command)
}

/// What a program sees of its process: argv (with argv[0]) and environment.
pub struct Invocation {
    /// `wasi-demo-app` or `native-demo`: used in the greeting and in error messages.
    pub program: &'static str,
    pub args: Vec<String>,
    pub vars: Vec<(String, String)>,
}

impl Invocation {
    /// The invocation of the running process (non-UTF-8 bytes are replaced, never fatal).
    pub fn from_process(program: &'static str) -> Self {
        let lossy = |s: OsString| s.to_string_lossy().into_owned();
        Self {
            program,
            args: std::env::args_os().map(lossy).collect(),
            vars: std::env::vars_os()
                .map(|(key, value)| (lossy(key), lossy(value)))
                .collect(),
        }
    }
}

/// The standard streams a command uses; tests pass buffers.
pub struct Streams<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// Runs the command line of `invocation` and returns the exit status.
///
/// `trap` and `loop` never return; `trap` is supplied by the caller because it is the one
/// target-specific behaviour.
pub fn run(invocation: &Invocation, streams: &mut Streams, trap: fn() -> !) -> i32 {
    let after_argv0 = invocation.args.get(1..).unwrap_or_default();
    let command = match parse(after_argv0) {
        Ok(command) => command,
        Err(error) => {
            // Nothing useful can be done if stderr itself is gone.
            let _ = writeln!(streams.stderr, "{}: {error}\n{USAGE}", invocation.program);
            return USAGE_EXIT_CODE;
        }
    };
    let result = execute(&command, invocation, streams, trap)
        .and_then(|code| streams.stdout.flush().map(|()| code));
    match result {
        Ok(code) => code,
        Err(error) => {
            let name = after_argv0.first().map_or("greet", String::as_str);
            let _ = writeln!(streams.stderr, "{}: {name}: {error}", invocation.program);
            FAILURE_EXIT_CODE
        }
    }
}

/// Runs one command; `Ok(status)` is the exit status it asks for.
fn execute(
    command: &Command,
    invocation: &Invocation,
    streams: &mut Streams,
    trap: fn() -> !,
) -> io::Result<i32> {
    let out = &mut *streams.stdout;
    match command {
        Command::Greet => writeln!(out, "hello from {}", invocation.program)?,
        Command::Echo(words) => writeln!(out, "{}", words.join(" "))?,
        Command::Args => {
            for arg in &invocation.args {
                writeln!(out, "{arg}")?;
            }
        }
        Command::Env => {
            let mut vars = invocation.vars.clone();
            vars.sort();
            for (key, value) in vars {
                writeln!(out, "{key}={value}")?;
            }
        }
        Command::Cwd => {
            let cwd = std::env::current_dir()
                .map_err(|e| with_context(e, "cannot read the current directory"))?;
            writeln!(out, "{}", cwd.display())?;
            list_dir(Path::new("."), out)?;
        }
        Command::Ls(dir) => list_dir(Path::new(dir), out)?,
        Command::Cat(file) => {
            let content =
                std::fs::read(file).map_err(|e| with_context(e, &format!("cannot read {file}")))?;
            out.write_all(&content)?;
        }
        Command::Write { file, text } => {
            std::fs::write(file, text)
                .map_err(|e| with_context(e, &format!("cannot write {file}")))?;
            writeln!(out, "wrote {} bytes to {file}", text.len())?;
        }
        Command::Mkdir(dir) => {
            std::fs::create_dir(dir)
                .map_err(|e| with_context(e, &format!("cannot create {dir}")))?;
            writeln!(out, "created {dir}")?;
        }
        Command::Stdin => {
            io::copy(streams.stdin, out)?;
        }
        Command::Stderr(text) => writeln!(streams.stderr, "{text}")?,
        Command::Exit(code) => return Ok(*code),
        Command::Sleep { text, duration } => {
            writeln!(out, "sleeping {text}")?;
            out.flush()?;
            std::thread::sleep(*duration);
            writeln!(out, "slept")?;
        }
        Command::Trap => {
            out.flush()?;
            trap()
        }
        Command::Loop => {
            writeln!(out, "looping")?;
            out.flush()?;
            spin_forever()
        }
        Command::Count(millions) => {
            count(millions.saturating_mul(1_000_000));
            writeln!(out, "counted {millions} million")?;
        }
        Command::Grow(mb) => {
            writeln!(out, "growing {mb} MiB")?;
            out.flush()?;
            let held = grow(*mb);
            writeln!(out, "grew {} MiB", held.len())?;
        }
        Command::Threads(n) => {
            let started = start_waiting_threads(*n);
            writeln!(out, "started {started} of {n} threads")?;
            if started < *n {
                return Ok(FAILURE_EXIT_CODE);
            }
        }
    }
    Ok(0)
}

/// Allocates `mb` blocks of 1 MiB and writes to every page of each, so that the memory is
/// really used (a Wasm module's linear memory grows; a native process's resident set does).
fn grow(mb: u32) -> Vec<Vec<u8>> {
    const MIB: usize = 1 << 20;
    const PAGE: usize = 4096;
    (0..mb)
        .map(|_| {
            let mut block = vec![0u8; MIB];
            for at in (0..MIB).step_by(PAGE) {
                block[at] = 1;
            }
            std::hint::black_box(block)
        })
        .collect()
}

/// Starts up to `n` threads that park forever; returns how many could be started (a pids
/// limit, or a target without threads, stops it early).
fn start_waiting_threads(n: u32) -> u32 {
    let mut started = 0;
    for _ in 0..n {
        let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| {
            loop {
                std::thread::park();
            }
        });
        if spawned.is_err() {
            break;
        }
        started += 1;
    }
    started
}

/// Prints the names in `dir`, sorted, one per line.
fn list_dir(dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    let context = || format!("cannot list {}", dir.display());
    let mut names = std::fs::read_dir(dir)
        .map_err(|e| with_context(e, &context()))?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| with_context(e, &context()))?;
    names.sort();
    for name in names {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// Burns CPU for `n` steps without a syscall: a fixed amount of work, for benchmarks.
fn count(n: u64) {
    let mut counter: u64 = 0;
    while std::hint::black_box(counter) < n {
        counter += 1;
    }
}

/// Burns CPU without making a single syscall, so only a kill (or an engine's interruption) stops it.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        // black_box keeps the optimizer from proving the loop has no effect.
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn with_context(error: io::Error, context: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    /// Runs a command line (without argv[0]) and returns (status, stdout, stderr).
    fn run_with(args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut full = vec!["/prog.wasm"];
        full.extend_from_slice(args);
        let invocation = Invocation {
            program: "demo",
            args: strings(&full),
            vars: vec![("B".into(), "2".into()), ("A".into(), "1=x".into())],
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input = stdin.as_bytes();
        let mut streams = Streams {
            stdin: &mut input,
            stdout: &mut out,
            stderr: &mut err,
        };
        let code = run(&invocation, &mut streams, || panic!("trap called"));
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn parses_every_command() {
        let cases: &[(&[&str], Command)] = &[
            (&[], Command::Greet),
            (&["echo"], Command::Echo(vec![])),
            (&["echo", "a", "b"], Command::Echo(strings(&["a", "b"]))),
            (&["args"], Command::Args),
            (&["args", "x"], Command::Args),
            (&["env"], Command::Env),
            (&["cwd"], Command::Cwd),
            (&["ls", "/d"], Command::Ls("/d".into())),
            (&["cat", "/f"], Command::Cat("/f".into())),
            (
                &["write", "/f", "x y"],
                Command::Write {
                    file: "/f".into(),
                    text: "x y".into(),
                },
            ),
            (&["mkdir", "/d"], Command::Mkdir("/d".into())),
            (&["stdin"], Command::Stdin),
            (&["stderr", "oops"], Command::Stderr("oops".into())),
            (&["exit", "42"], Command::Exit(42)),
            (
                &["sleep", "0.5"],
                Command::Sleep {
                    text: "0.5".into(),
                    duration: Duration::from_millis(500),
                },
            ),
            (&["trap"], Command::Trap),
            (&["loop"], Command::Loop),
            (&["grow", "3"], Command::Grow(3)),
            (&["threads", "4"], Command::Threads(4)),
        ];
        for (args, expected) in cases {
            assert_eq!(parse(&strings(args)).as_ref(), Ok(expected), "{args:?}");
        }
    }

    #[test]
    fn rejects_bad_command_lines() {
        let cases: &[&[&str]] = &[
            &["nope"],
            &["env", "x"],
            &["ls"],
            &["cat", "a", "b"],
            &["write", "/f"],
            &["mkdir"],
            &["exit", "x"],
            &["sleep", "-1"],
            &["sleep", "NaN"],
            &["grow"],
            &["grow", "-1"],
            &["threads", "x"],
        ];
        for args in cases {
            assert!(parse(&strings(args)).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn unknown_command_prints_usage_and_exits_2() {
        let (code, out, err) = run_with(&["frobnicate"], "");
        assert_eq!(code, USAGE_EXIT_CODE);
        assert_eq!(out, "");
        assert!(
            err.starts_with("demo: unknown command \"frobnicate\"\n"),
            "{err}"
        );
        assert!(err.contains("write FILE TEXT"), "{err}");
    }

    #[test]
    fn output_of_simple_commands() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "hello from demo\n"),
            (&["echo", "a", "b c"], "a b c\n"),
            (&["echo"], "\n"),
            (&["args"], "/prog.wasm\nargs\n"),
            (&["args", "a b", "c"], "/prog.wasm\nargs\na b\nc\n"),
            (&["env"], "A=1=x\nB=2\n"),
            (&["sleep", "0"], "sleeping 0\nslept\n"),
            (&["grow", "2"], "growing 2 MiB\ngrew 2 MiB\n"),
            (&["threads", "2"], "started 2 of 2 threads\n"),
        ];
        for (args, expected) in cases {
            assert_eq!(run_with(args, ""), (0, expected.to_string(), String::new()));
        }
    }

    #[test]
    fn stdin_is_copied_and_stderr_is_written() {
        assert_eq!(
            run_with(&["stdin"], "in\nput"),
            (0, "in\nput".into(), "".into())
        );
        assert_eq!(
            run_with(&["stderr", "oops"], ""),
            (0, "".into(), "oops\n".into())
        );
    }

    #[test]
    fn exit_returns_the_requested_status() {
        assert_eq!(run_with(&["exit", "7"], "").0, 7);
    }

    #[test]
    fn write_cat_and_ls_use_the_file_system() {
        let dir = std::env::temp_dir().join(format!("demo-commands-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let file = dir.join("f.txt");
        let file = file.to_str().unwrap();

        let (code, out, _) = run_with(&["write", file, "some text"], "");
        assert_eq!((code, out), (0, format!("wrote 9 bytes to {file}\n")));
        assert_eq!(run_with(&["cat", file], "").1, "some text");
        assert_eq!(
            run_with(&["ls", dir.to_str().unwrap()], "").1,
            "f.txt\nsub\n"
        );

        std::fs::remove_dir_all(&dir).unwrap();
        let (code, out, err) = run_with(&["cat", file], "");
        assert_eq!((code, out.as_str()), (FAILURE_EXIT_CODE, ""));
        assert!(
            err.starts_with(&format!("demo: cat: cannot read {file}: ")),
            "{err}"
        );
    }

    #[test]
    fn cwd_prints_the_directory_then_its_entries() {
        let (code, out, _) = run_with(&["cwd"], "");
        assert_eq!(code, 0);
        let cwd = std::env::current_dir().unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(cwd.to_str().unwrap()));
        let listed: Vec<&str> = lines.collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted);
        assert!(listed.contains(&"Cargo.toml"), "{listed:?}");
    }
}
