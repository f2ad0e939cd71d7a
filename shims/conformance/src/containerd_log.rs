//! containerd's log, where it copies what the shims log, read as records.
//!
//! A shim writes `time="..." level=error id="<container>" msg="..."`: its key-values come
//! before `msg`, quoted but not escaped, and a message may span lines. containerd's own
//! records put theirs after `msg`, so [`LogRecord::field`] sees only a shim's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ctr::abbreviate;
use crate::environment::containerd;

/// One record: a line that starts with `time=`, and the lines up to the next such line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    text: String,
}

const MESSAGE_KEY: &str = " msg=\"";

impl LogRecord {
    /// The value of `key` among the fields before the message.
    pub fn field(&self, key: &str) -> Option<&str> {
        let (mut rest, _) = self.text.split_once(MESSAGE_KEY)?;
        while let Some((name, after)) = rest.trim_start().split_once('=') {
            let (value, next) = match after.strip_prefix('"') {
                Some(quoted) => quoted.split_once('"')?,
                None => after.split_once(' ').unwrap_or((after, "")),
            };
            if name == key {
                return Some(value);
            }
            rest = next;
        }
        None
    }

    /// A shim record's message: what follows `msg="`, without the closing quote.
    pub fn message(&self) -> Option<&str> {
        let (_, message) = self.text.split_once(MESSAGE_KEY)?;
        let message = message.trim_end();
        Some(message.strip_suffix('"').unwrap_or(message))
    }
}

/// Splits log text into records; text before the first record is dropped (when reading
/// from an offset, it is the end of a record that started before).
pub fn records(text: &str) -> Vec<LogRecord> {
    let mut records: Vec<LogRecord> = Vec::new();
    for line in text.split_inclusive('\n') {
        match records.last_mut() {
            Some(record) if !line.starts_with("time=") => record.text.push_str(line),
            _ if line.starts_with("time=") => records.push(LogRecord {
                text: line.to_owned(),
            }),
            _ => {}
        }
    }
    records
}

/// containerd's log from the moment [`LogTail::now`] was called.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    from: u64,
}

impl LogTail {
    pub fn now() -> Result<Self> {
        let path = containerd().log_file()?;
        let from = std::fs::metadata(&path)
            .with_context(|| format!("cannot stat containerd's log {}", path.display()))?
            .len();
        Ok(Self { path, from })
    }

    /// Waits for a record that satisfies `wanted` (described as `what` in the error).
    pub fn wait_for(
        &self,
        what: &str,
        wanted: impl Fn(&LogRecord) -> bool,
        timeout: Duration,
    ) -> Result<LogRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let bytes = std::fs::read(&self.path)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            let new = String::from_utf8_lossy(bytes.get(self.from as usize..).unwrap_or_default());
            if let Some(found) = records(&new).into_iter().find(|record| wanted(record)) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd's log {} has no {what} within {timeout:?}; new lines: {}",
                    self.path.display(),
                    abbreviate(&new)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "t=\"tail of an earlier record\"\n\n\
        time=\"2026-01-01T00:00:00Z\" level=info msg=\"shim disconnected\" id=c1 namespace=ns\n\
        time=\"2026-01-01T00:00:01Z\" level=error id=\"c1\" msg=\"c1: /app.wasm failed:\n\
        \x20   0: 0x1 - trap\nwasm `unreachable` instruction executed\"\n\n";

    #[test]
    fn a_record_spans_lines_until_the_next_time() {
        let records = records(LOG);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].field("level"), Some("error"));
        assert!(
            records[1]
                .message()
                .unwrap()
                .ends_with("instruction executed")
        );
    }

    #[test]
    fn fields_after_the_message_are_not_the_records_own() {
        let records = records(LOG);
        assert_eq!(records[0].field("id"), None);
        assert_eq!(records[1].field("id"), Some("c1"));
        assert_eq!(
            records[1].field("time"),
            Some("2026-01-01T00:00:01Z"),
            "quoted values lose their quotes"
        );
    }
}
