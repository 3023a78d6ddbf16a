//! `pktio soak`: rxdrop and l2fwd in a throw-away lab for minutes on end,
//! checking what a long run must keep flat — the rate, the frames accounted
//! for, and the process's resident memory.
//!
//! The lab's generator (rate-limited, on its own CPU) runs for
//! the whole soak. Each report interval ("minute", `--interval` seconds) is
//! one run of the CLI's own packet loop ([`run_loop`], the loop behind
//! `pktio rxdrop` and `pktio l2fwd`) on a fresh AF_XDP socket and UMEM, so
//! every interval also exercises socket set-up and teardown. At the end of
//! each interval the loop checks the UMEM's frame accounting (every frame in
//! the free pool, with the application, on the RX path or on the TX path —
//! in debug builds also frame by frame); the soak then adds its own checks:
//!
//! - no frame unaccounted for, and fewer left with the application than
//!   the backend holds back for one fill-ring refill (64);
//! - packets arrived in every interval (a frame leak shows up as a stall:
//!   "receive stops after 2048 packets");
//! - VmRSS (from `/proc/self/status`, sampled half-way through each
//!   interval, while the UMEM is mapped) does not grow by more than
//!   `--max-rss-growth` KiB over the mode's first interval.
//!
//! Exit status: 0 when every check held (also when stopped early by Ctrl-C
//! or SIGTERM), 1 when one failed or the run could not start.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::bpf::{progs, Program, XdpAction, XdpLink, XdpMode};
use pktio::xdp::Accounting;
use pktio_lab::{Host, Lab};

use crate::args::parse_f64_in;
use pktio_bench::loops::{run_loop, LoopSpec, Mode, SocketOpts, Summary};
use pktio_bench::run::{fmt_pps, pin_to_cpu, stop_flag, LoopProbe};

/// Arguments of `pktio soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Minutes each mode runs (0.001 to 10080, a week).
    #[arg(long, default_value_t = 10.0, value_parser = |s: &str| parse_f64_in(s, 0.001, 10_080.0, "minutes"))]
    minutes: f64,
    /// Modes to soak, one after the other.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [SoakMode::Rxdrop, SoakMode::L2fwd])]
    modes: Vec<SoakMode>,
    /// Seconds per report line (60: one line a minute; shorter for a quick check).
    #[arg(long, default_value_t = 60.0, value_parser = |s: &str| parse_f64_in(s, 1.0, 3600.0, "seconds"))]
    interval: f64,
    /// Generator rate in frames per second: 0 (as fast as it goes) or 1 to
    /// 1e9.
    #[arg(long, default_value_t = 1_000_000.0, value_parser = parse_soak_rate)]
    rate: f64,
    /// Frame size in bytes on the wire, FCS included (64..=1518).
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(64..=1518))]
    size: u32,
    /// Fail when VmRSS grows by more than this many KiB over a mode's first interval.
    #[arg(long, value_name = "KIB", default_value_t = 4096)]
    max_rss_growth: u64,
    /// CPU of the generator.
    #[arg(long, default_value_t = 0, value_parser = crate::args::parse_cpu)]
    gen_cpu: usize,
    /// The generator engine: auto (the fastest this host allows: live,
    /// then xsk, packet, raw), or one by name.
    #[arg(long, default_value = "auto", value_parser = super::gen::engine_flag())]
    generator: pktio_bench::gen::Engine,
    /// CPU of the packet loop.
    #[arg(long, default_value_t = 1, value_parser = crate::args::parse_cpu)]
    cpu: usize,
}

/// `--rate`: 0 (unlimited) or a rate `crate::args::parse_rate` takes.
fn parse_soak_rate(s: &str) -> Result<f64, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    crate::args::parse_rate(s).map_err(|e| format!("{e}, or 0 for as fast as it goes"))
}

/// A mode the soak runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SoakMode {
    /// Receive and drop.
    Rxdrop,
    /// Receive, swap MACs, send back.
    L2fwd,
}

impl SoakMode {
    fn mode(self) -> Mode {
        match self {
            SoakMode::Rxdrop => Mode::Rxdrop,
            SoakMode::L2fwd => Mode::L2fwd,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SoakMode::Rxdrop => "rxdrop",
            SoakMode::L2fwd => "l2fwd",
        }
    }
}

/// Frames the AF_XDP backend may hold at the end of a run: it gives frames
/// back to the fill ring in batches of 64 (`REFILL_BATCH` in
/// `pktio::backend`), so fewer than that wait in its stash. More is a leak.
const HELD_LIMIT: u32 = 64;

/// One report interval.
#[derive(Debug, Clone)]
struct Interval {
    packets: u64,
    seconds: f64,
    accounting: Accounting,
    rss_kib: Option<u64>,
    stopped_by: Option<String>,
}

/// What the soak checks, over the intervals of one mode.
#[derive(Debug, Default)]
struct Verdict {
    problems: Vec<String>,
    rss_min: Option<u64>,
    rss_max: Option<u64>,
}

impl Verdict {
    /// Checks one interval (`first_rss`: the mode's first interval's RSS).
    fn check(
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

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn fmt_accounting(a: &Accounting) -> String {
    format!(
        "{}/{}/{}/{} of {}",
        a.free, a.app, a.rx_path, a.tx_path, a.total
    )
}

/// Runs `pktio soak`.
pub fn run(a: SoakArgs) -> anyhow::Result<ExitCode> {
    // Every number was checked when the flags were parsed (crate::args).
    if a.modes.is_empty() {
        bail!("--modes needs at least one of rxdrop, l2fwd");
    }
    let lab = Lab::new()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let stop = stop_flag();
    let per_mode = Duration::from_secs_f64(a.minutes * 60.0);
    let interval = Duration::from_secs_f64(a.interval);
    let intervals = (per_mode.as_secs_f64() / interval.as_secs_f64())
        .ceil()
        .max(1.0) as usize;
    println!(
        "soak: lab {} ({}) -> {} ({}); generator {} on CPU {}, loop on CPU {}; {} min per mode, \
         a line every {:.0} s",
        lab.gen().ifname(),
        lab.gen().addr(),
        lab.rx().ifname(),
        lab.rx().addr(),
        if a.rate > 0.0 {
            fmt_pps(a.rate)
        } else {
            "unlimited".into()
        },
        a.gen_cpu,
        a.cpu,
        a.minutes,
        a.interval
    );
    println!(
        "{:<7} {:>4}  {:>13}  {:<28} {:>11}  {:>10}",
        "mode", "int", "rate", "frames free/app/rx/tx", "unaccounted", "VmRSS"
    );

    // The generator runs for the whole soak.
    let gen_stop = Arc::new(AtomicBool::new(false));
    let generator = pktio_bench::bench::lab::start_generator(
        &lab,
        &pktio_bench::bench::lab::GenPlan::new(a.generator),
        a.size,
        a.gen_cpu,
        (a.rate > 0.0).then_some(a.rate),
        gen_stop.clone(),
    )?;

    let mut verdict = Verdict::default();
    let mut done: Vec<(SoakMode, usize)> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for &mode in &a.modes {
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
                let iv = run_interval(&lab, mode, &a, interval, &stop)?;
                let complete = !stop.load(Ordering::Relaxed);
                if n == 1 {
                    first_rss = iv.rss_kib;
                }
                verdict.check(mode.name(), n, &iv, first_rss, a.max_rss_growth, complete);
                println!(
                    "{:<7} {:>4}  {:>13}  {:<28} {:>11}  {:>10}",
                    mode.name(),
                    n,
                    fmt_pps(iv.packets as f64 / iv.seconds.max(1e-9)),
                    fmt_accounting(&iv.accounting),
                    iv.accounting.unaccounted(),
                    iv.rss_kib.map_or("?".into(), kib),
                );
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
    let gen = pktio_bench::bench::lab::join_generator(generator);
    result?;
    // A generator that failed mid-way shows up as stalled intervals (a
    // problem already); here it only costs the count of frames sent.
    let sent = match gen {
        Ok(g) => match &g.choice {
            Some(c) => format!("{} (engine {})", g.frames, c.describe()),
            None => g.frames.to_string(),
        },
        Err(e) => {
            eprintln!("pktio: soak: the generator stopped: {e:#}");
            "?".into()
        }
    };

    let ran: Vec<String> = done
        .iter()
        .map(|(m, n)| {
            format!(
                "{} {:.1} min",
                m.name(),
                *n as f64 * interval.as_secs_f64() / 60.0
            )
        })
        .collect();
    println!(
        "soak: {}; generator sent {} frames{}",
        ran.join(", "),
        sent,
        if stop.load(Ordering::Relaxed) {
            "; interrupted"
        } else {
            ""
        }
    );
    if let (Some(lo), Some(hi)) = (verdict.rss_min, verdict.rss_max) {
        println!("soak: VmRSS between {} and {}", kib(lo), kib(hi));
    }
    if verdict.problems.is_empty() {
        println!("soak: ok: no frame unaccounted for, no stall, VmRSS flat");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &verdict.problems {
            eprintln!("pktio: soak: {p}");
        }
        println!("soak: FAILED ({} problem(s))", verdict.problems.len());
        Ok(ExitCode::FAILURE)
    }
}

/// One interval: the CLI's loop on the rx end for `interval`, VmRSS sampled
/// half-way through.
fn run_interval(
    lab: &Lab,
    mode: SoakMode,
    a: &SoakArgs,
    interval: Duration,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Interval> {
    let opts = SocketOpts {
        backend: pktio::backend::BackendKind::Xdp,
        ..SocketOpts::default()
    };
    let ifname = lab.rx().ifname().to_string();
    let (stop2, cpu) = (Arc::clone(stop), a.cpu);
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
