//! `pktio doctor`: the flags, and the printing of what the engine
//! ([`pktio_doctor`]) finds. Exit status: 0 clean, 1 when a finding is at
//! or above `--fail-on` (default `problem`), 2 for an error (flags that do
//! not fit together, an unknown interface, a host that cannot be read,
//! `--apply --yes` without root or a change that failed; `main` maps the
//! errors this returns to 2).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use pktio_bench::report::schema;
use pktio_doctor::finding::{Finding, Level};
use pktio_doctor::{apply, report, watch, Config, MAX_HEADROOM};

use crate::output::{human, JsonTo};

/// Arguments of `pktio doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Interface to examine (repeatable; default: every interface but loopback).
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Write the findings as JSON (schema pktio.doctor/1, stable ids and
    /// field names) to FILE, or to stdout with `-` or no value (the table
    /// then goes to stderr).
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::output::parse_json_to)]
    pub json: Option<JsonTo>,
    /// Exit with status 1 when a finding is at this level or above: note,
    /// warn, problem (alias error), or never (exit 0 whatever is found).
    /// Status 0 means clean, 2 an error (bad flags, an unreadable host).
    #[arg(long, value_name = "LEVEL", default_value = "problem", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
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

/// `--fail-on`: the lowest level that makes the exit status 1, or none
/// (`never`).
#[derive(Debug, Clone, Copy)]
pub struct FailOn(Option<Level>);

/// Parses `--fail-on`: a level, or `never`.
fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    match s {
        "note" => Ok(FailOn(Some(Level::Note))),
        "warn" => Ok(FailOn(Some(Level::Warn))),
        "problem" | "error" => Ok(FailOn(Some(Level::Problem))),
        "never" => Ok(FailOn(None)),
        _ => Err(format!(
            "{s:?} is not a level: use note, warn, problem (or error) or never"
        )),
    }
}

/// Exit status 1 when a finding reaches `--fail-on`, else 0.
fn verdict_code(a: &DoctorArgs, findings: &[Finding]) -> ExitCode {
    match a.fail_on.0 {
        Some(l) if report::any_at_or_above(findings, l) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

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
    if let Some(to) = &a.json {
        to.write(&report::json(&findings, Some(&verdict))?)?;
    }
    human(a.json.as_ref(), &report::checklist(&findings, &verdict));
    Ok(verdict_code(a, &findings))
}

fn watch(a: &DoctorArgs, every: f64) -> anyhow::Result<ExitCode> {
    let every = seconds(every, "--watch")?;
    let names = pktio_doctor::interfaces(&a.interfaces)?;
    let mut lines = match &a.json {
        Some(JsonTo::File(p)) => {
            Some(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        _ => None,
    };
    watch::run(&names, every, a.count, |r: &watch::Report| {
        let line = schema::line(report::WATCH_SCHEMA, r)?;
        match (&a.json, lines.as_mut()) {
            (Some(JsonTo::Stdout), _) => println!("{line}"),
            (_, Some(f)) => writeln!(f, "{line}")?,
            _ => {}
        }
        human(a.json.as_ref(), &format!("{r}\n"));
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn apply(a: &DoctorArgs, findings: &[Finding]) -> anyhow::Result<ExitCode> {
    let out = apply::run(findings, a.yes)?;
    crate::output::emit(a.json.as_ref(), report::APPLY_SCHEMA, &out)?;
    human(a.json.as_ref(), &apply::render(&out.changes, a.yes));
    if out.failed {
        anyhow::bail!("a change failed (see above)");
    }
    Ok(ExitCode::SUCCESS)
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
    if let Some(to) = &a.json {
        to.write(&report::json(&findings, None)?)?;
    }
    human(a.json.as_ref(), &report::table(&findings, a.verbose));
    Ok(verdict_code(&a, &findings))
}
