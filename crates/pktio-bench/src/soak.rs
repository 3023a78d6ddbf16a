//! The soak's engine: rxdrop and l2fwd in a lab for minutes on end,
//! checking what a long run must keep flat — the rate, the frames accounted
//! for, and the process's resident memory.
//!
//! The lab's generator (rate-limited, on its own CPU) runs for
//! the whole soak. Each report interval ("minute") is one run of the
//! packet loop ([`run_loop`], the loop behind `pktio rxdrop` and `pktio
//! l2fwd`) on a fresh AF_XDP socket and UMEM, so every interval also
//! exercises socket set-up and teardown. At the end of each interval the
//! loop checks the UMEM's frame accounting (every frame in the free pool,
//! with the application, on the RX path or on the TX path — in debug
//! builds also frame by frame); the soak then adds its own checks
//! ([`Verdict::check`]):
//!
//! - no frame unaccounted for, and fewer left with the application than
//!   the backend holds back for one fill-ring refill (64);
//! - packets arrived in every interval (a frame leak shows up as a stall:
//!   "receive stops after 2048 packets");
//! - VmRSS (from `/proc/self/status`, sampled half-way through each
//!   interval, while the UMEM is mapped) does not grow by more than the
//!   allowed KiB over the mode's first interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use pktio::bpf::{progs, Program, XdpAction, XdpLink, XdpMode};
use pktio::xdp::Accounting;
use pktio_lab::{Host, Lab};

use crate::bench::lab::{join_generator, start_generator, GenPlan};
use crate::gen::{Engine, GenResult};
use crate::loops::{run_loop, LoopSpec, Mode, SocketOpts, Summary};
use crate::run::{pin_to_cpu, LoopProbe};

/// What a soak runs, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Soak {
    /// Minutes each mode runs.
    pub minutes: f64,
    /// Modes to soak, one after the other.
    pub modes: Vec<SoakMode>,
    /// Seconds per report interval.
    pub interval: f64,
    /// Generator rate in frames per second (0: as fast as it goes).
    pub rate: f64,
    /// Frame size in bytes on the wire, FCS included.
    pub size: u32,
    /// Fail when VmRSS grows by more than this many KiB over a mode's first
    /// interval.
    pub max_rss_growth: u64,
    /// CPU of the generator.
    pub gen_cpu: usize,
    /// The generator engine.
    pub generator: Engine,
    /// CPU of the packet loop.
    pub cpu: usize,
}

impl Soak {
    /// The report intervals of one mode (at least one).
    pub fn intervals(&self) -> usize {
        (self.minutes * 60.0 / self.interval).ceil().max(1.0) as usize
    }
}

/// A mode the soak runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakMode {
    /// Receive and drop.
    Rxdrop,
    /// Receive, swap MACs, send back.
    L2fwd,
}

impl SoakMode {
    /// The packet loop of this mode.
    pub fn mode(self) -> Mode {
        match self {
            SoakMode::Rxdrop => Mode::Rxdrop,
            SoakMode::L2fwd => Mode::L2fwd,
        }
    }

    /// The mode's name in the table and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SoakMode::Rxdrop => "rxdrop",
            SoakMode::L2fwd => "l2fwd",
        }
    }
}

impl std::fmt::Display for SoakMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Frames the AF_XDP backend may hold at the end of a run: it gives frames
/// back to the fill ring in batches of 64 (`REFILL_BATCH` in
/// `pktio::backend`), so fewer than that wait in its stash. More is a leak.
const HELD_LIMIT: u32 = 64;

/// One report interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Packets the loop handled.
    pub packets: u64,
    /// Seconds it ran.
    pub seconds: f64,
    /// The UMEM's frames by place at the end.
    pub accounting: Accounting,
    /// VmRSS half-way through, KiB.
    pub rss_kib: Option<u64>,
    /// Why the loop stopped early, if it did.
    pub stopped_by: Option<String>,
}

/// What the soak checks, over the intervals of one mode.
#[derive(Debug, Default)]
pub struct Verdict {
    /// What failed, one line each.
    pub problems: Vec<String>,
    /// The smallest VmRSS seen, KiB.
    pub rss_min: Option<u64>,
    /// The largest VmRSS seen, KiB.
    pub rss_max: Option<u64>,
}

impl Verdict {
    /// Checks one interval (`first_rss`: the mode's first interval's RSS).
    pub fn check(
        &mut self,
        mode: &str,
        n: usize,
        iv: &Interval,
        first_rss: Option<u64>,
        max_growth: u64,
        complete: bool,
    ) {
        let a = &iv.accounting;
        if a.unaccounted() != 0 {
            self.problems.push(format!(
                "{mode} interval {n}: {} frame(s) unaccounted for ({a:?})",
                a.unaccounted()
            ));
        }
        if a.app >= HELD_LIMIT {
            self.problems.push(format!(
                "{mode} interval {n}: {} frame(s) still held by the loop at its end, more than \
                 the backend holds back for one refill ({a:?})",
                a.app
            ));
        }
        if complete && iv.packets == 0 {
            self.problems.push(format!(
                "{mode} interval {n}: no packets in {:.0} s: receive stalled",
                iv.seconds
            ));
        }
        if let Some(why) = &iv.stopped_by {
            self.problems.push(format!(
                "{mode} interval {n}: the loop stopped early: {why}"
            ));
        }
        if let Some(r) = iv.rss_kib {
            self.rss_min = Some(self.rss_min.map_or(r, |m| m.min(r)));
            self.rss_max = Some(self.rss_max.map_or(r, |m| m.max(r)));
            if let Some(f) = first_rss {
                if r > f + max_growth {
                    self.problems.push(format!(
                        "{mode} interval {n}: VmRSS {} grew by {} KiB over the first interval's {} \
                         (limit {max_growth} KiB)",
                        kib(r),
                        r - f,
                        kib(f)
                    ));
                }
            }
        }
    }
}

/// What a soak did: the checks' verdict, the intervals each mode ran, and
/// what the generator sent (or why it stopped).
#[derive(Debug)]
pub struct Outcome {
    /// The problems found, and the VmRSS range.
    pub verdict: Verdict,
    /// Each mode run, with the intervals it completed.
    pub done: Vec<(SoakMode, usize)>,
    /// The generator's result.
    pub generator: anyhow::Result<GenResult>,
}

/// Soaks `cfg.modes` in `lab`, one after the other, with the generator
/// running throughout; `on_interval` sees every interval as it ends (with
/// its mode and number, from 1). Ctrl-C/SIGTERM ends it early with what
/// was done.
///
/// # Errors
/// The generator or an interval's loop cannot start.
pub fn run(
    cfg: &Soak,
    lab: &Lab,
    mut on_interval: impl FnMut(SoakMode, usize, &Interval),
) -> anyhow::Result<Outcome> {
    let stop = crate::run::stop_flag();
    let interval = Duration::from_secs_f64(cfg.interval);
    let intervals = cfg.intervals();
    // The generator runs for the whole soak.
    let gen_stop = Arc::new(AtomicBool::new(false));
    let generator = start_generator(
        lab,
        &GenPlan::new(cfg.generator),
        cfg.size,
        cfg.gen_cpu,
        (cfg.rate > 0.0).then_some(cfg.rate),
        gen_stop.clone(),
    )?;

    let mut verdict = Verdict::default();
    let mut done: Vec<(SoakMode, usize)> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for &mode in &cfg.modes {
            // l2fwd sends frames back to gen: a dropping program there gives
            // them somewhere to go (and the veth its NAPI), as in `pktio bench`.
            let _sink = match mode {
                SoakMode::L2fwd => Some(attach_sink(lab.gen())?),
                SoakMode::Rxdrop => None,
            };
            let mut first_rss = None;
            let mut n_done = 0;
            for n in 1..=intervals {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let iv = run_interval(lab, mode, cfg.cpu, interval, &stop)?;
                let complete = !stop.load(Ordering::Relaxed);
                if n == 1 {
                    first_rss = iv.rss_kib;
                }
                verdict.check(mode.name(), n, &iv, first_rss, cfg.max_rss_growth, complete);
                on_interval(mode, n, &iv);
                n_done = n;
                if iv.stopped_by.is_some() {
                    break;
                }
            }
            done.push((mode, n_done));
        }
        Ok(())
    })();
    gen_stop.store(true, Ordering::SeqCst);
    let generator = join_generator(generator);
    result?;
    Ok(Outcome {
        verdict,
        done,
        generator,
    })
}

/// `VmRSS` of this process in KiB, from `/proc/self/status`.
pub fn rss_kib() -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let v = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut it = v.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(n),
        Some(_) => None,
    }
}

/// KiB as MiB, one decimal.
pub fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

/// One interval: the CLI's loop on the rx end for `interval`, VmRSS sampled
/// half-way through.
fn run_interval(
    lab: &Lab,
    mode: SoakMode,
    cpu: usize,
    interval: Duration,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Interval> {
    let opts = SocketOpts {
        backend: pktio::backend::BackendKind::Xdp,
        ..SocketOpts::default()
    };
    let ifname = lab.rx().ifname().to_string();
    let stop2 = Arc::clone(stop);
    let probe = Arc::new(LoopProbe::default());
    let p2 = Arc::clone(&probe);
    let deadline = Instant::now() + interval;
    let worker = lab.rx().spawn(move || -> anyhow::Result<Summary> {
        pin_to_cpu(cpu)?;
        let mut b = opts.open(&ifname, mode.mode(), true)?;
        run_loop(
            &mut b,
            &LoopSpec {
                mode: mode.mode(),
                frame: None,
                stop: &stop2,
                deadline: Some(deadline),
                quiet: true,
                json_lines: false,
                probe: Some(&p2),
                batch: opts.batch,
                poll: false,
            },
        )
    });
    // Half-way through (the loop and its UMEM are live), unless it ended.
    let half = Instant::now() + interval / 2;
    while Instant::now() < half && !worker.is_finished() && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss = rss_kib();
    let s = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the packet loop panicked"))??;
    let accounting = s
        .accounting
        .context("the AF_XDP backend reports no frame accounting")?;
    Ok(Interval {
        packets: s.packets,
        seconds: s.seconds,
        accounting,
        rss_kib: rss,
        stopped_by: s.stopped_by,
    })
}

/// An XDP_DROP program on `host`'s veth end.
fn attach_sink(host: &Host) -> anyhow::Result<XdpLink> {
    host.try_run(|| -> anyhow::Result<XdpLink> {
        let prog = Program::load_xdp(&progs::xdp_return(XdpAction::Drop), &[])?;
        Ok(XdpLink::attach(&prog, host.ifindex(), XdpMode::Auto)?)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_parses() {
        let s = "Name:\tpktio\nVmPeak:\t  30000 kB\nVmRSS:\t   21480 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(s), Some(21480));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert!(rss_kib().is_some_and(|k| k > 0), "this process has a VmRSS");
    }

    fn iv(packets: u64, acc: Accounting, rss: u64) -> Interval {
        Interval {
            packets,
            seconds: 60.0,
            accounting: acc,
            rss_kib: Some(rss),
            stopped_by: None,
        }
    }

    #[test]
    fn verdict_flags_leaks_stalls_and_rss_growth() {
        let good = Accounting {
            total: 4096,
            free: 0,
            app: 0,
            rx_path: 4096,
            tx_path: 0,
            kernel_invalid: 0,
        };
        let mut v = Verdict::default();
        v.check(
            "rxdrop",
            1,
            &iv(1000, good, 20_000),
            Some(20_000),
            4096,
            true,
        );
        v.check(
            "rxdrop",
            2,
            &iv(1000, good, 24_000),
            Some(20_000),
            4096,
            true,
        );
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!((v.rss_min, v.rss_max), (Some(20_000), Some(24_000)));

        let leaked = Accounting {
            rx_path: 4095,
            ..good
        };
        v.check(
            "rxdrop",
            3,
            &iv(1000, leaked, 20_000),
            Some(20_000),
            4096,
            true,
        );
        assert!(
            v.problems[0].contains("1 frame(s) unaccounted"),
            "{:?}",
            v.problems
        );

        let held = Accounting {
            rx_path: 4096 - 64,
            app: 64,
            ..good
        };
        let mut v = Verdict::default();
        v.check(
            "l2fwd",
            1,
            &iv(1000, held, 20_000),
            Some(20_000),
            4096,
            true,
        );
        assert!(v.problems[0].contains("still held"), "{:?}", v.problems);

        let mut v = Verdict::default();
        v.check("l2fwd", 2, &iv(0, good, 20_000), Some(20_000), 4096, true);
        assert!(v.problems[0].contains("stalled"), "{:?}", v.problems);
        // An interrupted interval may have no packets.
        let mut v = Verdict::default();
        v.check("l2fwd", 2, &iv(0, good, 20_000), Some(20_000), 4096, false);
        assert!(v.problems.is_empty());

        let mut v = Verdict::default();
        v.check("rxdrop", 5, &iv(10, good, 24_097), Some(20_000), 4096, true);
        assert!(
            v.problems[0].contains("grew by 4097 KiB"),
            "{:?}",
            v.problems
        );
    }
}
