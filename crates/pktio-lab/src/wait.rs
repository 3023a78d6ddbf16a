//! # Waiting on a condition, with a deadline
//!
//! Tests wait for something to happen (a queue to be released, a counter to
//! move, a process to go away) by asking again until it holds or a deadline
//! passes, never by sleeping a fixed time and hoping it happened meanwhile.
//! Between two asks the wait backs off from 1 ms to [`MAX_PAUSE`], so a
//! condition that holds at once costs nothing and a slow one does not spin.
//!
//! [`poll`] returns `None` when the deadline passes, for callers that want
//! to say more in their failure (a child's output); [`for_some`] and
//! [`until`] panic with what was awaited.

use std::time::{Duration, Instant};

/// The longest pause between two asks.
pub const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Asks `probe` until it returns `Some`, and returns that value; `None` if
/// `limit` passes first. `probe` is asked at least once, and once more at
/// the deadline.
pub fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Asks `probe` until it returns `Some`, and returns that value; panics
/// naming `what` if `limit` passes first.
pub fn for_some<T>(limit: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    poll(limit, probe).unwrap_or_else(|| panic!("{what}: not within {limit:?}"))
}

/// Asks `cond` until it holds; panics naming `what` if `limit` passes first.
pub fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    for_some(limit, what, || cond().then_some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_as_soon_as_the_condition_holds() {
        let mut asks = 0;
        let v = for_some(Duration::from_secs(5), "the third ask", || {
            asks += 1;
            (asks == 3).then_some(asks)
        });
        assert_eq!(v, 3);
    }

    #[test]
    fn gives_up_at_the_deadline_and_asks_once_more_there() {
        let t0 = Instant::now();
        let mut asks = 0;
        let got: Option<()> = poll(Duration::from_millis(30), || {
            asks += 1;
            None
        });
        assert!(got.is_none());
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(asks >= 2, "{asks}");
    }

    #[test]
    #[should_panic(expected = "the never: not within")]
    fn until_names_what_never_came() {
        until(Duration::from_millis(5), "the never", || false);
    }
}
