//! CPU time from /proc: machine-wide (/proc/stat) and of one process (/proc/PID/stat), to
//! tell what a throughput run cost in CPU and who spent it.

use anyhow::{Context, Result, bail};

/// Length of one /proc/stat tick (`USER_HZ`, 100 on every Linux architecture we run on).
const TICK_MS: f64 = 10.0;

/// Busy CPU time of all cores so far (everything but idle and iowait), in milliseconds.
pub fn busy_ms() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    busy_ms_of(&stat)
}

fn busy_ms_of(stat: &str) -> Result<f64> {
    let line = stat
        .lines()
        .find(|line| line.starts_with("cpu "))
        .context("/proc/stat has no `cpu` line")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad /proc/stat line {line:?}"))?;
    if ticks.len() < 5 {
        bail!("/proc/stat line {line:?} has fewer than 5 fields");
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let counted = ticks.len().min(8);
    let busy: u64 = ticks[..counted].iter().sum::<u64>() - ticks[3] - ticks[4];
    Ok(busy as f64 * TICK_MS)
}

/// CPU time process `pid` itself has used so far (user and system, all its threads, not its
/// children), in milliseconds.
pub fn process_ms(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    process_ms_of(&stat).with_context(|| format!("bad {path}: {stat:?}"))
}

fn process_ms_of(stat: &str) -> Result<f64> {
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')').context("no command name")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    let ticks =
        |i: usize| -> Result<u64> { Ok(fields.get(i).context("too few fields")?.parse::<u64>()?) };
    Ok((ticks(11)? + ticks(12)?) as f64 * TICK_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_iowait_and_guest_time_are_not_busy() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 40 0\ncpu0 50 2 25 500 10 0 1 1 20 0\n";
        assert_eq!(
            busy_ms_of(stat).unwrap(),
            (100 + 5 + 50 + 1 + 2 + 3) as f64 * 10.0
        );
    }

    #[test]
    fn a_process_time_is_its_user_and_system_ticks() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 50 60 20 0 4 0 123 0 0";
        assert_eq!(process_ms_of(stat).unwrap(), 100.0);
        assert!(process_ms_of("42 (x) S 1 2").is_err());
    }

    #[test]
    fn rejects_a_malformed_line() {
        assert!(busy_ms_of("cpu  1 2 x\n").is_err());
        assert!(busy_ms_of("intr 1 2 3\n").is_err());
    }
}
