//! What every long-running command shares: a stop flag set by SIGINT /
//! SIGTERM or a deadline, CPU pinning (through `pktio_host::cpu`), a
//! per-second rate meter, and CPU times from `/proc/stat`.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static STOP_HOOK: OnceLock<fn(&Arc<AtomicBool>)> = OnceLock::new();

/// The process-wide stop flag that every engine here watches: set it and
/// the loops, generators and benchmarks end (with what they measured so
/// far). The first call hands the new flag to the hook of
/// [`set_stop_hook`], if the program set one (`pktio` wires SIGINT and
/// SIGTERM to it there); the library installs no signal handler itself.
pub fn stop_flag() -> Arc<AtomicBool> {
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        if let Some(hook) = STOP_HOOK.get() {
            hook(&flag);
        }
        flag
    })
    .clone()
}

/// Sets what the first [`stop_flag`] call does with the new flag: a
/// program installs its SIGINT/SIGTERM handler there, so that only the
/// commands that run an engine trade the default Ctrl-C (end the process)
/// for a clean stop with a summary. `false`, and nothing changes, if a
/// hook was set already or the flag exists already.
pub fn set_stop_hook(hook: fn(&Arc<AtomicBool>)) -> bool {
    STOP.get().is_none() && STOP_HOOK.set(hook).is_ok()
}

/// Checks that every CPU of `cpus` exists on this host (a clear error
/// before anything is built, instead of a failed pin later).
pub fn check_cpus(cpus: &[usize]) -> anyhow::Result<()> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    for &cpu in cpus {
        anyhow::ensure!(
            cpu < n,
            "CPU {cpu} does not exist: this host has CPUs 0..{}",
            n - 1
        );
    }
    Ok(())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity`).
pub fn pin_to_cpu(cpu: usize) -> anyhow::Result<()> {
    check_cpus(&[cpu])?;
    set_affinity(cpu)
}

/// Restricts the calling thread to `cpu`, a CPU known to exist (one it was
/// allowed to run on, say): [`pktio_host::cpu::pin_current_thread`].
pub fn set_affinity(cpu: usize) -> anyhow::Result<()> {
    pktio_host::cpu::pin_current_thread(cpu)
        .with_context(|| format!("sched_setaffinity(CPU {cpu})"))
}

/// Counts packets and bytes and says when a second has passed.
#[derive(Debug)]
pub struct Meter {
    start: Instant,
    last: Instant,
    last_packets: u64,
    last_bytes: u64,
    /// Packets so far.
    pub packets: u64,
    /// Bytes so far.
    pub bytes: u64,
    every: Duration,
    /// Per-interval packet rates, for the summary's median.
    pub rates: Vec<f64>,
}

/// One interval's rates.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Seconds since start.
    pub at: f64,
    /// Packets per second in the interval.
    pub pps: f64,
    /// Bits per second in the interval (frame bytes × 8, no FCS/preamble).
    pub bps: f64,
}

impl Meter {
    /// A meter reporting every `every`.
    pub fn new(every: Duration) -> Self {
        let now = Instant::now();
        Meter {
            start: now,
            last: now,
            last_packets: 0,
            last_bytes: 0,
            packets: 0,
            bytes: 0,
            every,
            rates: Vec::new(),
        }
    }

    /// Adds to the counts.
    #[inline]
    pub fn add(&mut self, packets: u64, bytes: u64) {
        self.packets += packets;
        self.bytes += bytes;
    }

    /// A tick when an interval has passed since the last one.
    pub fn tick(&mut self, now: Instant) -> Option<Tick> {
        let dt = now.duration_since(self.last);
        if dt < self.every {
            return None;
        }
        let secs = dt.as_secs_f64();
        let t = Tick {
            at: now.duration_since(self.start).as_secs_f64(),
            pps: (self.packets - self.last_packets) as f64 / secs,
            bps: (self.bytes - self.last_bytes) as f64 * 8.0 / secs,
        };
        self.rates.push(t.pps);
        self.last = now;
        self.last_packets = self.packets;
        self.last_bytes = self.bytes;
        Some(t)
    }

    /// Seconds since start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The average rate over the whole run.
    pub fn mean_pps(&self) -> f64 {
        let s = self.elapsed();
        if s > 0.0 {
            self.packets as f64 / s
        } else {
            0.0
        }
    }
}

/// `12.345 Mpps`-style formatting.
pub fn fmt_pps(pps: f64) -> String {
    format!("{:.3} Mpps", pps / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_ticks_once_per_interval_with_rates() {
        let mut m = Meter::new(Duration::from_millis(100));
        let t0 = m.start;
        m.add(1000, 64_000);
        assert!(m.tick(t0 + Duration::from_millis(50)).is_none());
        let t = m.tick(t0 + Duration::from_millis(200)).unwrap();
        assert!((t.pps - 5000.0).abs() < 1e-6, "{}", t.pps);
        assert!((t.bps - 64_000.0 * 8.0 / 0.2).abs() < 1e-3);
        m.add(10, 10);
        let t = m.tick(t0 + Duration::from_millis(300)).unwrap();
        assert!((t.pps - 100.0).abs() < 1e-6);
        assert_eq!(m.rates.len(), 2);
    }
}

/// Nanoseconds CPU `cpu` has spent in softirq since boot, from `/proc/stat`
/// (clock ticks × 10⁹ / `_SC_CLK_TCK`). `None` if unreadable.
pub fn softirq_ns(cpu: usize) -> Option<u64> {
    CpuTimes::now(cpu).map(|t| t.softirq)
}

/// Where one CPU's time went since boot, in ns, from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// Of which softirq.
    pub softirq: u64,
    /// All columns up to and including steal.
    pub total: u64,
}

impl CpuTimes {
    /// CPU `cpu`'s times now; `None` if `/proc/stat` is unreadable.
    pub fn now(cpu: usize) -> Option<CpuTimes> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        CpuTimes::parse(&text, cpu)
    }

    /// The `cpuN` line of a `/proc/stat` text: user nice system idle
    /// iowait irq softirq steal (guest time is already in user).
    pub fn parse(proc_stat: &str, cpu: usize) -> Option<CpuTimes> {
        let tag = format!("cpu{cpu}");
        let line = proc_stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tag.as_str()))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let ns = |t: u64| t.saturating_mul(1_000_000_000) / clock_ticks_per_sec();
        let total: u64 = v.iter().sum();
        let idle = v.get(3)? + v.get(4)?;
        Some(CpuTimes {
            busy: ns(total - idle),
            softirq: ns(*v.get(6)?),
            total: ns(total),
        })
    }

    /// The times between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            busy: self.busy.saturating_sub(earlier.busy),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            total: self.total.saturating_sub(earlier.total),
        }
    }
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY-free: sysconf via rustix is not available; USER_HZ is 100 on
    // every Linux architecture pktio supports (it is fixed by the ABI of
    // /proc, independent of CONFIG_HZ).
    100
}

/// Published by a packet loop for a watcher on another thread: packets so
/// far and the loop thread's CPU time, both updated as it runs.
#[derive(Debug, Default)]
pub struct LoopProbe {
    /// Packets handled so far.
    pub packets: std::sync::atomic::AtomicU64,
    /// CPU time of the loop's thread so far, in ns (updated every few batches).
    pub cpu_ns: std::sync::atomic::AtomicU64,
    /// Bytes handled so far.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Set by the watcher to have the loop publish its backend's counters
    /// ([`stats`](Self::stats)) once a second.
    pub want_stats: AtomicBool,
    /// The backend's counters as last published (with
    /// [`want_stats`](Self::want_stats)).
    pub stats: std::sync::Mutex<pktio::backend::BackendStats>,
}

#[cfg(test)]
mod stat_tests {
    use super::*;

    #[test]
    fn softirq_column_of_the_right_cpu() {
        let s = "cpu  10 0 20 300 0 0 7 0 0 0\ncpu0 5 0 10 150 0 0 3 0 0 0\ncpu1 5 0 10 150 0 0 4 0 0 0\ncpu10 1 1 1 1 1 1 99 0 0 0\n";
        let softirq = |cpu| CpuTimes::parse(s, cpu).map(|t| t.softirq);
        assert_eq!(softirq(0), Some(30_000_000));
        assert_eq!(softirq(1), Some(40_000_000));
        assert_eq!(softirq(10), Some(990_000_000));
        assert_eq!(softirq(2), None);
        let t = CpuTimes::parse(s, 1).unwrap();
        // user 5 + system 10 + softirq 4 busy, idle 150: ticks of 10 ms.
        assert_eq!(
            t,
            CpuTimes {
                busy: 190_000_000,
                softirq: 40_000_000,
                total: 1_690_000_000
            }
        );
        let later = CpuTimes::parse("cpu1 6 0 10 160 0 0 4 0\n", 1).unwrap();
        assert_eq!(later.since(&t).busy, 10_000_000);
        assert_eq!(later.since(&t).total, 110_000_000);
        assert_eq!(CpuTimes::parse("cpu1 5 0 x\n", 1), None);
    }
}
