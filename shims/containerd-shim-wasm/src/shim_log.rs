//! The shim log: the `log` FIFO containerd gives each shim in its bundle and copies into its
//! own log. The shim and its helper processes all write there.
//!
//! Our own logger, not the `containerd-shim` crate's `FifoLogger`, because that one writes a
//! record in several `write(2)` calls straight from the format string: records of the shim and
//! of its helpers cut into each other in the FIFO, and so do records of different shims in
//! containerd's copy (seen in containerd's log under parallel creates). This one formats the
//! whole record first and writes it with one call; a pipe keeps a write of up to `PIPE_BUF`
//! (4 KiB) bytes in one piece. The record layout is the crate's.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The environment variable that sets what the shim logs (as for other Rust programs):
/// `env_logger`'s directives, e.g. `info,containerd_shim_wasm=debug`.
pub const LEVEL_ENV: &str = "RUST_LOG";

/// What the process logs, from [`LEVEL_ENV`]; set once (the helper sets it for its request).
static FILTER: std::sync::OnceLock<env_filter::Filter> = std::sync::OnceLock::new();

/// How long the logger drops records after containerd stopped reading the FIFO. Each write to
/// a FIFO without a reader raises SIGPIPE, which the `containerd-shim` crate's signal thread
/// logs at debug level: without a pause the two feed each other at full speed. A restarted
/// containerd opens the FIFO again, so writing resumes after the pause.
const NO_READER_PAUSE: Duration = Duration::from_secs(1);

/// Writes each record to a file in one `write(2)`.
pub struct ShimLogger {
    output: Mutex<Output>,
}

struct Output {
    file: File,
    /// When a write last found no reader.
    no_reader_since: Option<Instant>,
}

impl ShimLogger {
    fn new(file: File) -> Self {
        ShimLogger {
            output: Mutex::new(Output {
                file,
                no_reader_since: None,
            }),
        }
    }

    /// Makes the logger for `file` the process's logger. A second call changes nothing.
    pub fn install(file: File) {
        let _ = log::set_boxed_logger(Box::new(Self::new(file)));
    }

    /// The serving shim's logger: the `log` FIFO in the working directory (the bundle
    /// containerd started the shim in), at the level `RUST_LOG` names (info if unset),
    /// debug at least when containerd runs in debug mode (`debug`).
    pub fn install_for_shim(debug: bool) -> std::io::Result<()> {
        let fifo = OpenOptions::new().write(true).open("log")?;
        Self::install(fifo);
        set_filter(debug);
        Ok(())
    }
}

/// Makes `RUST_LOG` (info if unset or invalid) this process's filter, its default level
/// raised to debug by `debug` (containerd in debug mode).
pub fn set_filter(debug: bool) {
    let filter =
        FILTER.get_or_init(|| shim_filter(std::env::var(LEVEL_ENV).ok().as_deref(), debug));
    log::set_max_level(filter.filter());
}

/// The filter of `configured` (a `RUST_LOG` value), see [`set_filter`].
fn shim_filter(configured: Option<&str>, debug: bool) -> env_filter::Filter {
    let mut builder = env_filter::Builder::new();
    builder.filter_level(LevelFilter::Info);
    if let Some(directives) = configured
        && builder.try_parse(directives).is_err()
    {
        builder = env_filter::Builder::new();
        builder.filter_level(LevelFilter::Info);
    }
    let mut filter = builder.build();
    if debug && filter.filter() < LevelFilter::Debug {
        let mut raised = env_filter::Builder::new();
        if let Some(directives) = configured {
            let _ = raised.try_parse(directives);
        }
        raised.filter_level(LevelFilter::Debug);
        filter = raised.build();
    }
    filter
}

impl Log for ShimLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        match FILTER.get() {
            Some(filter) => filter.enabled(metadata),
            None => metadata.level() <= log::max_level(),
        }
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        self.write(record);
    }

    fn flush(&self) {}
}

impl ShimLogger {
    fn write(&self, record: &Record) {
        let mut output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        if output
            .no_reader_since
            .is_some_and(|since| since.elapsed() < NO_READER_PAUSE)
        {
            return;
        }
        let line = format_record(record, OffsetDateTime::now_utc());
        // Nobody to tell when containerd is not reading: the record is lost, the shim goes on.
        let written = output.file.write_all(line.as_bytes());
        output.no_reader_since = match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Some(Instant::now()),
            _ => None,
        };
    }
}

/// `time="…" level=… key="value"… msg="…"` and a newline, as containerd's shims write them.
fn format_record(record: &Record, now: OffsetDateTime) -> String {
    let time = now.format(&Rfc3339).unwrap_or_else(|_| now.to_string());
    let mut line = format!(
        "time=\"{time}\" level={}",
        record.level().as_str().to_lowercase()
    );
    let _ = record.key_values().visit(&mut KeyValues(&mut line));
    let _ = writeln!(line, " msg=\"{}\"", record.args());
    line
}

/// Appends ` key="value"` per pair.
struct KeyValues<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for KeyValues<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let _ = write!(self.0, " {key}=\"{value}\"");
        Ok(())
    }
}

/// The shim's side: the shim log's writer end for the helper, or /dev/null when there is none.
pub fn open_shim_log() -> std::io::Result<File> {
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    {
        Ok(file) => file,
        Err(e) => {
            log::warn!(
                "open the shim log FIFO `log` for the create helpers: {e}; their log is lost"
            );
            std::fs::OpenOptions::new().write(true).open("/dev/null")?
        }
    };
    // Writes must block rather than fail with EAGAIN when containerd is slow to read.
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;

    fn at_epoch() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn a_record_has_time_level_fields_and_message() {
        let line = format_record(
            &Record::builder()
                .level(log::Level::Warn)
                .key_values(&[("id", "c1")])
                .args(format_args!("container {} gone", "c1"))
                .build(),
            at_epoch(),
        );
        assert_eq!(
            line,
            "time=\"1970-01-01T00:00:00Z\" level=warn id=\"c1\" msg=\"container c1 gone\"\n"
        );
    }

    #[test]
    fn a_record_is_one_write() {
        // A datagram socket keeps each write(2) as its own message.
        let (sender, receiver) = UnixDatagram::pair().unwrap();
        let logger = ShimLogger::new(File::from(OwnedFd::from(sender)));
        logger.write(
            &Record::builder()
                .level(log::Level::Info)
                .key_values(&[("id", "c1"), ("exec", "e1")])
                .args(format_args!("exec {} of {} started", "e1", "c1"))
                .build(),
        );
        let mut message = vec![0; 4096];
        let len = receiver.recv(&mut message).unwrap();
        let text = String::from_utf8_lossy(&message[..len]);
        assert!(
            text.starts_with("time=\"") && text.ends_with("msg=\"exec e1 of c1 started\"\n"),
            "the first write(2) holds the whole record: {text:?}"
        );
    }

    #[test]
    fn writing_pauses_while_nobody_reads_the_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let open_reader = || {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap()
        };
        let first_reader = open_reader();
        let logger = ShimLogger::new(OpenOptions::new().write(true).open(&fifo).unwrap());
        drop(first_reader);
        // The test binary ignores SIGPIPE, as the shim's signal thread takes it: EPIPE.
        logger.write(
            &Record::builder()
                .args(format_args!("nobody reads this"))
                .build(),
        );
        assert!(logger.output.lock().unwrap().no_reader_since.is_some());

        let mut reader = open_reader();
        logger.write(&Record::builder().args(format_args!("dropped")).build());
        logger.output.lock().unwrap().no_reader_since = Some(Instant::now() - NO_READER_PAUSE);
        logger.write(
            &Record::builder()
                .args(format_args!("written after the pause"))
                .build(),
        );
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        assert!(!text.contains("dropped"), "{text:?}");
        assert!(text.contains("written after the pause"), "{text:?}");
    }

    #[test]
    fn rust_log_takes_directives_and_debug_mode_raises_the_default() {
        let level = |configured, debug| shim_filter(configured, debug).filter();
        assert_eq!(level(None, false), LevelFilter::Info);
        assert_eq!(level(Some("warn"), false), LevelFilter::Warn);
        assert_eq!(level(Some("nonsense=bogus,="), false), LevelFilter::Info);
        assert_eq!(level(Some("warn"), true), LevelFilter::Debug);
        assert_eq!(level(Some("trace"), true), LevelFilter::Trace);

        let filter = shim_filter(Some("info,containerd_shim_wasm::helper=debug"), false);
        let at = |level, target| {
            filter.enabled(&Metadata::builder().level(level).target(target).build())
        };
        assert!(at(log::Level::Debug, "containerd_shim_wasm::helper::cache"));
        assert!(!at(log::Level::Debug, "containerd_shim_wasm::shim::task"));
        assert!(at(log::Level::Info, "containerd_shim_wasm::shim::task"));
    }
}
