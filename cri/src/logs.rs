//! The CRI container log format, as the kubelet reads it: one line per chunk,
//! `<RFC 3339 nano timestamp> <stdout|stderr> <P|F> <content>` (P: partial, the line goes on
//! in the next entry; F: full, the line ends here).

use anyhow::{Result, bail};

/// One entry of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub timestamp: String,
    pub stream: String,
    pub partial: bool,
    pub content: String,
}

/// Parses a whole CRI log file; every line must be well-formed.
pub fn parse(text: &str) -> Result<Vec<LogEntry>> {
    text.lines().map(parse_line).collect()
}

fn parse_line(line: &str) -> Result<LogEntry> {
    let mut fields = line.splitn(4, ' ');
    // The content may be empty, but the space before it is always there.
    let (Some(timestamp), Some(stream), Some(tag), Some(content)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        bail!("CRI log line {line:?} has fewer than four fields");
    };
    if !is_rfc3339_nano(timestamp) {
        bail!("CRI log line {line:?}: {timestamp:?} is not an RFC 3339 timestamp with nanoseconds");
    }
    if stream != "stdout" && stream != "stderr" {
        bail!("CRI log line {line:?}: stream {stream:?} is neither stdout nor stderr");
    }
    let partial = match tag {
        "P" => true,
        "F" => false,
        _ => bail!("CRI log line {line:?}: tag {tag:?} is neither P nor F"),
    };
    Ok(LogEntry {
        timestamp: timestamp.to_owned(),
        stream: stream.to_owned(),
        partial,
        content: content.to_owned(),
    })
}

/// `2026-11-26T09:30:00.123456789Z` or with a `+01:00` offset (Go's RFC3339Nano, which
/// drops trailing zeros of the fraction).
fn is_rfc3339_nano(text: &str) -> bool {
    let bytes = text.as_bytes();
    let date_time_ok = bytes.len() >= 20
        && bytes[..19].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        });
    if !date_time_ok {
        return false;
    }
    let rest = &text[19..];
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (fraction, zone) = rest.split_at(zone_at);
    let fraction_ok = fraction.is_empty()
        || (fraction.len() <= 10
            && fraction.starts_with('.')
            && fraction.len() > 1
            && fraction[1..].bytes().all(|b| b.is_ascii_digit()));
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && zone[1..].bytes().enumerate().all(|(i, b)| {
                if i == 2 {
                    b == b':'
                } else {
                    b.is_ascii_digit()
                }
            }));
    fraction_ok && zone_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_lines() {
        let entries = parse(
            "2026-11-26T09:30:00.123456789Z stdout F hello world\n\
             2026-11-26T09:30:00.2+01:00 stderr P part\n\
             2026-11-26T09:30:01Z stdout F \n",
        )
        .unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].content, "hello world");
        assert_eq!(entries[0].stream, "stdout");
        assert!(!entries[0].partial);
        assert_eq!(entries[1].stream, "stderr");
        assert!(entries[1].partial);
        assert_eq!(entries[2].content, "");
    }

    #[test]
    fn refuses_malformed_lines() {
        for line in [
            "hello",
            "2026-11-26T09:30:00Z stdout F",
            "2026-11-26 09:30:00Z stdout F x",
            "2026-11-26T09:30:00Z stdin F x",
            "2026-11-26T09:30:00Z stdout X x",
            "2026-11-26T09:30:00.Z stdout F x",
        ] {
            assert!(parse(line).is_err(), "{line:?} was accepted");
        }
    }
}
