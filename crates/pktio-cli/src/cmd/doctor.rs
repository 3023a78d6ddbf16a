//! `pktio doctor`: the flags, and the printing of what the engine
//! ([`pktio_doctor`]) finds. Exit status 2 for flags that do not fit
//! together, 1 for errors (an unknown interface, `--apply --yes` without
//! root or a change that failed), 0 otherwise.

use std::process::ExitCode;
use std::time::Duration;

use pktio_doctor::{apply, report, watch, Config, MAX_HEADROOM};

/// Arguments of `pktio doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Interface to examine (repeatable; default: every interface but loopback).
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Print the findings as JSON (stable field names) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show rates (per CPU and per interface) every SECONDS instead of
    /// counters since boot; runs until Ctrl-C or --count reports.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["apply", "why_no_packets"],
          value_parser = parse_interval, allow_hyphen_values = true)]
    pub watch: Option<f64>,
    /// With --watch: stop after N reports (at least 1).
    #[arg(long, value_name = "N", requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Show the safe fixes (sysctls, RPS masks, ring sizes) as before → after;
    /// nothing changes without --yes.
    #[arg(long, conflicts_with = "why_no_packets")]
    pub apply: bool,
    /// With --apply: make the changes (needs root) and print how to revert them.
    #[arg(long, requires = "apply")]
    pub yes: bool,
    /// The AF_XDP checklist for one queue: -i IF -q QUEUE.
    #[arg(long)]
    pub why_no_packets: bool,
    /// With --why-no-packets: the receive queue the socket is bound to.
    #[arg(short = 'q', long, value_name = "QUEUE", requires = "why_no_packets")]
    pub queue: Option<u32>,
    /// With --why-no-packets: seconds to sample the per-queue counters.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0,
          value_parser = parse_interval, allow_hyphen_values = true)]
    pub sample: f64,
    /// UMEM frame (chunk) size the MTU is checked against (2048 to 65536):
    /// a frame holds BYTES − 256 (XDP headroom) − --headroom bytes, 3840 by
    /// default.
    #[arg(long, value_name = "BYTES", default_value_t = 4096,
          value_parser = |s: &str| crate::args::parse_u32_in(s, 2048, 65536),
          allow_hyphen_values = true)]
    pub frame_size: u32,
    /// UMEM headroom per frame, on top of the kernel's 256 bytes (0 to 65216,
    /// and at most --frame-size − 320).
    #[arg(long, value_name = "BYTES", default_value_t = 0,
          value_parser = |s: &str| crate::args::parse_u32_in(s, 0, MAX_HEADROOM),
          allow_hyphen_values = true)]
    pub headroom: u32,
    /// Also explain the findings that are ok.
    #[arg(short, long)]
    pub verbose: bool,
}

const _: () = assert!(
    MAX_HEADROOM == 65216,
    "the --headroom help text names 65216"
);

/// The longest `--watch` interval or `--sample` time: a day.
const MAX_INTERVAL: f64 = 86_400.0;

/// Parses `--watch`/`--sample`: seconds from 0.001 to 86400.
fn parse_interval(s: &str) -> Result<f64, String> {
    let range = format!("a number of seconds from 0.001 to {MAX_INTERVAL:.0} (a day)");
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; expected {range}"))?;
    if !(v.is_finite() && (0.001..=MAX_INTERVAL).contains(&v)) {
        return Err(format!("{s} is out of range; expected {range}"));
    }
    Ok(v)
}

fn seconds(v: f64, what: &str) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v <= MAX_INTERVAL) {
        anyhow::bail!("{what} must be a number of seconds between 0 and 86400, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// The checks between flags that clap cannot make one flag at a time: a
/// message naming the flags and the valid range, for exit status 2 before
/// anything is read.
fn check_flags(a: &DoctorArgs) -> Result<(), String> {
    if !pktio_doctor::headroom_fits(a.frame_size, a.headroom) {
        return Err(format!(
            "--headroom {} leaves no room in a {}-byte frame: use 0 to {} \
             (--frame-size − 256 bytes of XDP headroom − 64 bytes of packet)",
            a.headroom,
            a.frame_size,
            pktio_doctor::max_headroom(a.frame_size)
        ));
    }
    if a.why_no_packets {
        if a.interfaces.len() != 1 {
            return Err("--why-no-packets needs exactly one interface: -i IF -q QUEUE".into());
        }
        if a.queue.is_none() {
            return Err("--why-no-packets needs the queue the socket is bound to: -q QUEUE".into());
        }
    }
    Ok(())
}

fn config(a: &DoctorArgs) -> Config {
    Config {
        interfaces: a.interfaces.clone(),
        frame_size: a.frame_size,
        headroom: a.headroom,
    }
}

fn why(a: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let Some(q) = a.queue else {
        anyhow::bail!("--why-no-packets needs the queue the socket is bound to: -q QUEUE");
    };
    let sample = seconds(a.sample, "--sample")?;
    let (findings, verdict) = pktio_doctor::why_no_packets(&config(a), q, sample)?;
    if a.json {
        println!("{}", report::json(&findings, Some(&verdict))?);
    } else {
        print!("{}", report::checklist(&findings, &verdict));
    }
    Ok(ExitCode::SUCCESS)
}

fn watch(a: &DoctorArgs, every: f64) -> anyhow::Result<ExitCode> {
    let every = seconds(every, "--watch")?;
    let names = pktio_doctor::interfaces(&a.interfaces)?;
    watch::run(&names, every, a.count, |r: &watch::Report| {
        if a.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!("{r}");
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn apply(a: &DoctorArgs, findings: &[pktio_doctor::finding::Finding]) -> anyhow::Result<ExitCode> {
    let out = apply::run(findings, a.yes)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", apply::render(&out.changes, a.yes));
    }
    Ok(if out.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `pktio doctor`.
///
/// # Errors
/// Bad arguments, an unknown interface, `--apply --yes` without root.
pub fn run(a: DoctorArgs) -> anyhow::Result<ExitCode> {
    if let Err(msg) = check_flags(&a) {
        eprintln!("pktio: error: {msg}");
        return Ok(ExitCode::from(2));
    }
    if a.why_no_packets {
        return why(&a);
    }
    if let Some(s) = a.watch {
        return watch(&a, s);
    }
    let findings = pktio_doctor::collect(&config(&a))?;
    if a.apply {
        return apply(&a, &findings);
    }
    if a.json {
        println!("{}", report::json(&findings, None)?);
    } else {
        print!("{}", report::table(&findings, a.verbose));
    }
    Ok(ExitCode::SUCCESS)
}
