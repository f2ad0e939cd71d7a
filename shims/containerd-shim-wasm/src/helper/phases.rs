//! The phases of this helper's one request, kept for its answer (`Created::Ok`), where the
//! shim turns them into spans of the verb's trace. The helper serves one request and has one
//! thread: a process-wide list is the request's.

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use crate::request::Phase;

static PHASES: Mutex<Vec<Phase>> = Mutex::new(Vec::new());

/// Records phase `name`, which ran from `start` to `end`.
pub fn record(name: &str, start: Instant, end: Instant) {
    // The wall clock of `start` and `end`, through one reading of both clocks.
    let (now, wall_now) = (Instant::now(), SystemTime::now());
    let wall = |at: Instant| match at.checked_duration_since(now) {
        Some(ahead) => wall_now + ahead,
        None => wall_now - now.duration_since(at),
    };
    PHASES.lock().unwrap().push(Phase {
        name: name.to_string(),
        start: wall(start),
        end: wall(end),
    });
}

/// The phases recorded so far, leaving none.
pub fn take() -> Vec<Phase> {
    std::mem::take(&mut *PHASES.lock().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn phases_keep_their_order_and_lengths_by_the_wall_clock() {
        let began = Instant::now();
        let middle = began + Duration::from_millis(5);
        record("first", began, middle);
        record("second", middle, middle + Duration::from_millis(2));
        let phases = take();
        assert_eq!(
            phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(
            phases[0].end.duration_since(phases[0].start).unwrap(),
            Duration::from_millis(5)
        );
        let gap = phases[1]
            .start
            .duration_since(phases[0].end)
            .unwrap_or_default();
        assert!(gap < Duration::from_millis(1), "{gap:?}");
        assert!(take().is_empty());
    }
}
