//! `pktio soak`: rxdrop and l2fwd in a throw-away lab for minutes on end,
//! checking what a long run must keep flat — the rate, the frames accounted
//! for, and the process's resident memory. The engine is
//! [`pktio_bench::soak`]; this file holds the flags, the table and the
//! verdict's printing, and the same numbers as JSON with `--json`.
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
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::TypedValueParser;
use pktio::xdp::Accounting;
use pktio_bench::soak::{self, kib, Outcome, Soak, SoakMode};
use pktio_lab::Lab;

use crate::args::parse_f64_in;
use pktio_bench::report::schema::SOAK;
use pktio_bench::run::{fmt_pps, stop_flag};

use crate::output::{human, JsonTo};

/// Arguments of `pktio soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Minutes each mode runs (0.001 to 10080, a week).
    #[arg(long, default_value_t = 10.0, value_parser = |s: &str| parse_f64_in(s, 0.001, 10_080.0, "minutes"))]
    minutes: f64,
    /// Modes to soak, one after the other.
    #[arg(long, value_delimiter = ',', default_values_t = [SoakMode::Rxdrop, SoakMode::L2fwd], value_parser = soak_mode_flag())]
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
    #[arg(long, default_value = "auto", value_parser = crate::args::engine_flag())]
    generator: pktio_bench::gen::Engine,
    /// CPU of the packet loop.
    #[arg(long, default_value_t = 1, value_parser = crate::args::parse_cpu)]
    cpu: usize,
    /// Write the intervals and the verdict as JSON to FILE, or to stdout
    /// with `-` (the table then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    json: Option<JsonTo>,
}

/// One interval of the `--json` document.
#[derive(serde::Serialize)]
struct IntervalDoc {
    mode: &'static str,
    /// From 1, per mode.
    interval: usize,
    packets: u64,
    seconds: f64,
    /// Packets per second.
    pps: f64,
    /// UMEM frames by place at the end of the interval.
    frames: FramesDoc,
    /// VmRSS half-way through, KiB.
    rss_kib: Option<u64>,
    stopped_by: Option<String>,
}

/// [`Accounting`] as JSON.
#[derive(serde::Serialize)]
struct FramesDoc {
    free: u32,
    app: u32,
    rx_path: u32,
    tx_path: u32,
    total: u32,
    /// Negative when frames were counted twice.
    unaccounted: i64,
}

/// The `--json` document of `pktio soak` (schema `pktio.soak/1`).
#[derive(serde::Serialize)]
struct SoakDoc {
    intervals: Vec<IntervalDoc>,
    /// Frames the generator sent; null if it failed.
    generator_frames: Option<u64>,
    interrupted: bool,
    rss_min_kib: Option<u64>,
    rss_max_kib: Option<u64>,
    /// What failed, one sentence each; empty when the soak passed.
    problems: Vec<String>,
    ok: bool,
}

/// The values of `--modes`, with their help.
const SOAK_MODE_VALUES: &[(SoakMode, &str)] = &[
    (SoakMode::Rxdrop, "Receive and drop"),
    (SoakMode::L2fwd, "Receive, swap MACs, send back"),
];

fn soak_mode_flag() -> impl TypedValueParser<Value = SoakMode> {
    crate::args::one_of(SOAK_MODE_VALUES, SoakMode::name)
}

/// `--rate`: 0 (unlimited) or a rate `crate::args::parse_rate` takes.
fn parse_soak_rate(s: &str) -> Result<f64, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    crate::args::parse_rate(s).map_err(|e| format!("{e}, or 0 for as fast as it goes"))
}

fn fmt_accounting(a: &Accounting) -> String {
    format!(
        "{}/{}/{}/{} of {}",
        a.free, a.app, a.rx_path, a.tx_path, a.total
    )
}

fn interval_doc(mode: &'static str, n: usize, iv: &soak::Interval) -> IntervalDoc {
    let a = &iv.accounting;
    IntervalDoc {
        mode,
        interval: n,
        packets: iv.packets,
        seconds: iv.seconds,
        pps: iv.packets as f64 / iv.seconds.max(1e-9),
        frames: FramesDoc {
            free: a.free,
            app: a.app,
            rx_path: a.rx_path,
            tx_path: a.tx_path,
            total: a.total,
            unaccounted: a.unaccounted(),
        },
        rss_kib: iv.rss_kib,
        stopped_by: iv.stopped_by.clone(),
    }
}

/// Runs `pktio soak`.
pub fn run(a: SoakArgs) -> anyhow::Result<ExitCode> {
    // Every number was checked when the flags were parsed (crate::args).
    if a.modes.is_empty() {
        bail!("--modes needs at least one of rxdrop, l2fwd");
    }
    let lab = Lab::new()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let json = a.json.as_ref();
    // Text for people: on stderr when the JSON takes stdout.
    macro_rules! say {
        ($($t:tt)*) => { human(json, &format!("{}\n", format_args!($($t)*))) };
    }
    let stop = stop_flag();
    let mut intervals = Vec::new();
    let interval = Duration::from_secs_f64(a.interval);
    say!(
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
    say!(
        "{:<7} {:>4}  {:>13}  {:<28} {:>11}  {:>10}",
        "mode",
        "int",
        "rate",
        "frames free/app/rx/tx",
        "unaccounted",
        "VmRSS"
    );

    let cfg = Soak {
        minutes: a.minutes,
        modes: a.modes.clone(),
        interval: a.interval,
        rate: a.rate,
        size: a.size,
        max_rss_growth: a.max_rss_growth,
        gen_cpu: a.gen_cpu,
        generator: a.generator,
        cpu: a.cpu,
    };
    let Outcome {
        verdict,
        done,
        generator: gen,
    } = soak::run(&cfg, &lab, |mode, n, iv| {
        say!(
            "{:<7} {:>4}  {:>13}  {:<28} {:>11}  {:>10}",
            mode.name(),
            n,
            fmt_pps(iv.packets as f64 / iv.seconds.max(1e-9)),
            fmt_accounting(&iv.accounting),
            iv.accounting.unaccounted(),
            iv.rss_kib.map_or("?".into(), kib),
        );
        intervals.push(interval_doc(mode.name(), n, iv));
    })?;
    // A generator that failed mid-way shows up as stalled intervals (a
    // problem already); here it only costs the count of frames sent.
    let generator_frames = gen.as_ref().ok().map(|g| g.frames);
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
    say!(
        "soak: {}; generator sent {} frames{}",
        ran.join(", "),
        sent,
        if stop.load(Ordering::Relaxed) {
            "; interrupted"
        } else {
            ""
        }
    );
    crate::output::emit(
        json,
        SOAK,
        &SoakDoc {
            intervals,
            generator_frames,
            interrupted: stop.load(Ordering::Relaxed),
            rss_min_kib: verdict.rss_min,
            rss_max_kib: verdict.rss_max,
            problems: verdict.problems.clone(),
            ok: verdict.problems.is_empty(),
        },
    )?;
    if let (Some(lo), Some(hi)) = (verdict.rss_min, verdict.rss_max) {
        say!("soak: VmRSS between {} and {}", kib(lo), kib(hi));
    }
    if verdict.problems.is_empty() {
        say!("soak: ok: no frame unaccounted for, no stall, VmRSS flat");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &verdict.problems {
            eprintln!("pktio: soak: {p}");
        }
        say!("soak: FAILED ({} problem(s))", verdict.problems.len());
        Ok(ExitCode::FAILURE)
    }
}
