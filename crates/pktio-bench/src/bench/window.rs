//! The measured windows' clock: sleeps that end early at a stop
//! (Ctrl-C/SIGTERM, [`crate::run::stop_flag`]), and [`Stopped`], the error
//! of a measurement cut short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest a measurement window or a wait for a tool sleeps before it
/// looks at the stop flag again (Ctrl-C/SIGTERM, [`crate::run::stop_flag`]):
/// a stop is seen within this time.
pub const STOP_SLICE: Duration = Duration::from_millis(50);

/// Sleeps `d` in slices of at most [`STOP_SLICE`], unless `stop` is or
/// becomes set: `true` if the whole time passed, `false` if it stopped.
pub fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now().checked_add(d);
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = match end {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => STOP_SLICE,
        };
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(STOP_SLICE));
    }
}

/// [`sleep_unless_stopped`] for `seconds` (a validated, finite window
/// length) on the process's stop flag: `Err(Stopped)` if Ctrl-C/SIGTERM
/// came first.
pub fn sleep_window(seconds: f64, stop: &AtomicBool) -> Result<(), Stopped> {
    let d = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    if sleep_unless_stopped(d, stop) {
        Ok(())
    } else {
        Err(Stopped)
    }
}

/// A measurement cut short by Ctrl-C/SIGTERM: no figure for it. Callers
/// find it with `err.is::<Stopped>()` (or `downcast_ref`) and end the run
/// with the figures they have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped (Ctrl-C or SIGTERM) before the measurement ended")
    }
}

impl std::error::Error for Stopped {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_end_at_a_stop() {
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        assert!(sleep_unless_stopped(Duration::from_millis(120), &stop));
        assert!(t.elapsed() >= Duration::from_millis(120));
        // Set from another thread 200 ms into a 60 s window: seen within 100 ms.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                stop.store(true, Ordering::Relaxed);
            });
            let t = Instant::now();
            assert_eq!(sleep_window(60.0, &stop), Err(Stopped));
            let took = t.elapsed();
            assert!(took < Duration::from_millis(300), "{took:?}");
        });
        assert!(!sleep_unless_stopped(Duration::MAX, &stop));
    }
}
