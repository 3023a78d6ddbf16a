//! The EBUSY retry policy: retry an operation the kernel answered "busy"
//! until a deadline, waiting a little longer each time.
//!
//! The kernel releases an AF_XDP queue some milliseconds after the previous
//! socket on it closed (deferred work after an RCU grace period), so a bind
//! right after a close can be answered `EBUSY` for a moment; the same holds
//! for an XDP program being swapped. [`BusyRetry`] retries such an
//! operation: it calls it, and while it fails with an error the caller's
//! predicate calls busy and the deadline is not reached, sleeps (10 ms,
//! doubling up to 100 ms) and calls again. The clock is a parameter
//! ([`Clock`]), so the policy is tested without sleeping.
//!
//! ```
//! use std::time::Duration;
//! use pktio_host::retry::{is_ebusy, BusyRetry};
//! let mut tries = 0;
//! let r: std::io::Result<u32> = BusyRetry::QUEUE_RELEASE.run(is_ebusy, || {
//!     tries += 1;
//!     if tries < 3 {
//!         Err(std::io::Error::from_raw_os_error(libc::EBUSY))
//!     } else {
//!         Ok(tries)
//!     }
//! });
//! assert_eq!(r.unwrap(), 3);
//! ```

use std::io;
use std::time::{Duration, Instant};

/// Time for [`BusyRetry`]: what it is now, and a way to wait.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Waits for `d`.
    fn sleep(&mut self, d: Duration);
}

/// The real clock: [`Instant::now`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// How long to keep retrying a busy answer, and how long to wait between
/// tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyRetry {
    /// Give up once this much time has passed since the first try.
    pub budget: Duration,
    /// The first wait; each next one is twice as long, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl BusyRetry {
    /// For a queue or device the kernel is still releasing: 2 s in all,
    /// waits of 10 ms doubling to 100 ms.
    pub const QUEUE_RELEASE: BusyRetry = BusyRetry {
        budget: Duration::from_secs(2),
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    };

    /// Calls `op` until it succeeds, fails with an error `busy` does not
    /// accept, or the budget is spent (then the last error is returned).
    ///
    /// # Errors
    /// The last error of `op`.
    pub fn run<T, E>(
        &self,
        busy: impl Fn(&E) -> bool,
        op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        self.run_with(&mut SystemClock, busy, op)
    }

    /// [`run`](Self::run) with the clock given.
    ///
    /// # Errors
    /// The last error of `op`.
    pub fn run_with<T, E>(
        &self,
        clock: &mut impl Clock,
        busy: impl Fn(&E) -> bool,
        mut op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        let deadline = clock.now() + self.budget;
        let mut wait = self.backoff;
        loop {
            match op() {
                Err(e) if busy(&e) && clock.now() < deadline => {
                    let left = deadline.saturating_duration_since(clock.now());
                    clock.sleep(wait.min(left));
                    wait = (wait * 2).min(self.max_backoff);
                }
                r => return r,
            }
        }
    }
}

impl Default for BusyRetry {
    fn default() -> Self {
        BusyRetry::QUEUE_RELEASE
    }
}

/// Whether `e` is `EBUSY`: the predicate for [`BusyRetry::run`] over
/// `io::Result`s.
pub fn is_ebusy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that moves only when slept on, and records the sleeps.
    struct FakeClock {
        now: Instant,
        sleeps: Vec<Duration>,
    }

    impl FakeClock {
        fn new() -> Self {
            FakeClock {
                now: Instant::now(),
                sleeps: Vec::new(),
            }
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d;
            self.sleeps.push(d);
        }
    }

    fn busy() -> io::Error {
        io::Error::from_raw_os_error(libc::EBUSY)
    }

    #[test]
    fn busy_is_retried_with_a_growing_wait() {
        let mut clock = FakeClock::new();
        let mut tries = 0;
        let r = BusyRetry::QUEUE_RELEASE.run_with(&mut clock, is_ebusy, || {
            tries += 1;
            if tries <= 5 {
                Err(busy())
            } else {
                Ok("bound")
            }
        });
        assert_eq!(r.unwrap(), "bound");
        let ms: Vec<u128> = clock.sleeps.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [10, 20, 40, 80, 100]);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut clock = FakeClock::new();
        let mut tries = 0;
        let r: io::Result<()> = BusyRetry::QUEUE_RELEASE.run_with(&mut clock, is_ebusy, || {
            tries += 1;
            Err(io::Error::from_raw_os_error(libc::EPERM))
        });
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EPERM));
        assert_eq!(tries, 1);
        assert!(clock.sleeps.is_empty());
    }

    #[test]
    fn the_budget_bounds_the_retries() {
        let mut clock = FakeClock::new();
        let start = clock.now;
        let policy = BusyRetry {
            budget: Duration::from_millis(250),
            ..BusyRetry::QUEUE_RELEASE
        };
        let r: io::Result<()> = policy.run_with(&mut clock, is_ebusy, || Err(busy()));
        assert!(is_ebusy(&r.unwrap_err()));
        // 10 + 20 + 40 + 80 + 100 = 250: the last wait is cut to the deadline.
        assert_eq!(clock.now - start, Duration::from_millis(250));
        assert_eq!(clock.sleeps.len(), 5);
        assert_eq!(BusyRetry::default(), BusyRetry::QUEUE_RELEASE);
    }
}
