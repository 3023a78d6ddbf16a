//! `pktio latency`: the flags, the checks of the named interfaces and the
//! consent to use them; the ping/pong engine is [`pktio_bench::latency`].

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::builder::TypedValueParser;
use pktio_bench::latency::{self, IfPair, LatBackend, LatMode, Latency};

use super::xsk::parse_bench_ip;
use crate::args::parse_u32_in;

/// Arguments of `pktio latency`.
#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_values_t = LatBackend::ALL, value_parser = backend_flag())]
    backends: Vec<LatBackend>,
    /// Wakeup modes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = LatMode::ALL, value_parser = mode_flag())]
    modes: Vec<LatMode>,
    /// Pings measured per run (after the warm-up), 1 to 100000000.
    #[arg(long, default_value_t = 10_000, value_parser = |s: &str| parse_u32_in(s, 1, 100_000_000))]
    count: u32,
    /// Pings sent first and not measured, 0 to 100000000.
    #[arg(long, default_value_t = 200, value_parser = |s: &str| parse_u32_in(s, 0, 100_000_000))]
    warmup: u32,
    /// Runs per cell, 1 to 1000; the table shows the median and min–max
    /// over runs.
    #[arg(long, default_value_t = 3, value_parser = |s: &str| parse_u32_in(s, 1, 1000).map(|v| v as usize))]
    runs: usize,
    /// Frame size in bytes on the wire, FCS included, 64 to 1518 (64 sends
    /// 60-byte frames).
    #[arg(long, default_value_t = 64, value_parser = |s: &str| parse_u32_in(s, 64, 1518))]
    size: u32,
    /// Milliseconds to wait for a pong before counting the ping lost, 1 to
    /// 60000.
    #[arg(long, default_value_t = 200, value_parser = |s: &str| parse_u32_in(s, 1, 60_000).map(u64::from))]
    timeout_ms: u64,
    /// CPU of the pinger.
    #[arg(long, default_value_t = 0, value_parser = crate::args::parse_cpu)]
    ping_cpu: usize,
    /// CPU of the ponger.
    #[arg(long, default_value_t = 1, value_parser = crate::args::parse_cpu)]
    pong_cpu: usize,
    /// Write the results as JSON to FILE, or to stdout with `-` (the table
    /// then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    json: Option<crate::output::JsonTo>,
    /// Write a grouped bar chart (p50 and p99 in µs) as SVG to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Run the pinger on this interface of the current network namespace
    /// instead of the lab (needs --ponger-if).
    #[arg(long, value_name = "IF")]
    pinger_if: Option<String>,
    /// Run the ponger on this interface of the current network namespace
    /// instead of the lab (needs --pinger-if).
    #[arg(long, value_name = "IF")]
    ponger_if: Option<String>,
    /// Allow --pinger-if and --ponger-if outside a pktio lab: both ends
    /// take every packet arriving on queue 0 away from the host (its
    /// connections on that queue stop) and send frames onto the wire.
    #[arg(long)]
    take_over: bool,
    /// The pinger's IPv4 address with --pinger-if (in 198.18.0.0/15)
    /// [default: 198.18.0.1].
    #[arg(long, value_name = "IP", value_parser = parse_bench_ip)]
    pinger_ip: Option<Ipv4Addr>,
    /// The ponger's IPv4 address with --ponger-if (in 198.18.0.0/15)
    /// [default: 198.18.0.2].
    #[arg(long, value_name = "IP", value_parser = parse_bench_ip)]
    ponger_ip: Option<Ipv4Addr>,
}

/// The values of `--backends`, with their help.
const BACKEND_VALUES: &[(LatBackend, &str)] = &[
    (
        LatBackend::Xdp,
        "AF_XDP copy mode, program in driver (native) mode",
    ),
    (
        LatBackend::XdpSkb,
        "AF_XDP copy mode, program in skb (generic) mode",
    ),
    (LatBackend::V2, "AF_PACKET TPACKET_V2 (frame rings)"),
    (LatBackend::V3, "AF_PACKET TPACKET_V3 (block ring RX)"),
    (LatBackend::Uring, "io_uring on an AF_PACKET socket"),
];

/// The values of `--modes`, with their help.
const MODE_VALUES: &[(LatMode, &str)] = &[
    (
        LatMode::BusyPoll,
        "Spin on the rings (with kernel busy polling where the device has NAPI)",
    ),
    (LatMode::Interrupt, "Block in poll(2) until readable"),
];

fn backend_flag() -> impl TypedValueParser<Value = LatBackend> {
    crate::args::one_of(BACKEND_VALUES, LatBackend::name)
}

fn mode_flag() -> impl TypedValueParser<Value = LatMode> {
    crate::args::one_of(MODE_VALUES, LatMode::name)
}

/// Default addresses of the two ends on named interfaces.
const PINGER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PONGER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// `--pinger-if`/`--ponger-if`/`--pinger-ip`/`--ponger-ip` as an
/// [`IfPair`], `None` for the lab. Touches nothing (the addresses were
/// checked against 198.18.0.0/15 by the argument parser).
fn if_pair(a: &LatencyArgs) -> anyhow::Result<Option<IfPair>> {
    let (pinger, ponger) = match (&a.pinger_if, &a.ponger_if) {
        (None, None) => {
            if a.pinger_ip.is_some() || a.ponger_ip.is_some() {
                bail!("--pinger-ip and --ponger-ip go with --pinger-if and --ponger-if (the lab has its own addresses)");
            }
            return Ok(None);
        }
        (Some(p), Some(q)) => (p, q),
        _ => bail!(
            "--pinger-if and --ponger-if go together: give both (two interfaces of this namespace) or neither (the lab)"
        ),
    };
    for name in [pinger, ponger] {
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
            bail!("{name:?} is not an interface name (1 to 15 characters, no '/' or spaces)");
        }
    }
    if pinger == ponger {
        bail!("--pinger-if and --ponger-if are both {pinger}: the pinger and the ponger need two interfaces");
    }
    let pinger_ip = a.pinger_ip.unwrap_or(PINGER_IP);
    let ponger_ip = a.ponger_ip.unwrap_or(PONGER_IP);
    if pinger_ip == ponger_ip {
        bail!("--pinger-ip and --ponger-ip are both {pinger_ip}: a pong is told from a ping by its addresses");
    }
    Ok(Some(IfPair {
        pinger: (pinger.clone(), pinger_ip),
        ponger: (ponger.clone(), ponger_ip),
    }))
}

/// Runs `pktio latency`.
pub fn run(a: LatencyArgs) -> anyhow::Result<ExitCode> {
    // Every number was checked when the flags were parsed (crate::args).
    let ifs = if_pair(&a)?;
    if let Some(p) = &ifs {
        for (role, ifname) in [("pinger", &p.pinger.0), ("ponger", &p.ponger.0)] {
            crate::cmd::xsk::consent(
                &format!("latency ({role})"),
                ifname,
                "take every packet arriving on queue 0 away from the host and send frames onto its wire",
                a.take_over,
            )?;
        }
    }
    let cfg = Latency {
        backends: a.backends.clone(),
        modes: a.modes.clone(),
        count: a.count,
        warmup: a.warmup,
        runs: a.runs,
        size: a.size,
        timeout_ms: a.timeout_ms,
        ping_cpu: a.ping_cpu,
        pong_cpu: a.pong_cpu,
    };
    let mut report = latency::run(&cfg, ifs)?;
    let interrupted = crate::run::stop_flag().load(std::sync::atomic::Ordering::Relaxed);
    super::bench::emit_report(
        &mut report,
        interrupted,
        a.markdown,
        None,
        a.json.as_ref(),
        a.svg.as_deref().map(|p| (p, "p50", &["mode"][..])),
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<LatencyArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: LatencyArgs,
        }
        let argv = std::iter::once("latency").chain(extra.iter().copied());
        <Cli as clap::Parser>::try_parse_from(argv).map(|c| c.a)
    }

    fn pair_of(extra: &[&str]) -> anyhow::Result<Option<IfPair>> {
        if_pair(&args(extra).map_err(anyhow::Error::from)?)
    }

    #[test]
    fn named_interfaces_take_both_flags_and_the_benchmarking_range() {
        assert_eq!(pair_of(&[]).unwrap(), None);
        assert_eq!(
            pair_of(&["--pinger-if", "a0", "--ponger-if", "b0"]).unwrap(),
            Some(IfPair {
                pinger: ("a0".into(), PINGER_IP),
                ponger: ("b0".into(), PONGER_IP),
            })
        );
        let p = pair_of(&[
            "--pinger-if",
            "a0",
            "--ponger-if",
            "b0",
            "--pinger-ip",
            "198.19.255.1",
            "--ponger-ip",
            "198.18.7.9",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(p.pinger.1, Ipv4Addr::new(198, 19, 255, 1));
        assert_eq!(p.ponger.1, Ipv4Addr::new(198, 18, 7, 9));
        for (argv, want) in [
            (&["--pinger-if", "a0"][..], "go together"),
            (&["--ponger-if", "b0"][..], "go together"),
            (&["--pinger-if", "a0", "--ponger-if", "a0"][..], "both a0"),
            (&["--pinger-ip", "198.18.0.5"][..], "go with --pinger-if"),
            (
                &[
                    "--pinger-if",
                    "a0",
                    "--ponger-if",
                    "b0",
                    "--ponger-ip",
                    "198.18.0.1",
                ][..],
                "both 198.18.0.1",
            ),
            (
                &[
                    "--pinger-if",
                    "a0",
                    "--ponger-if",
                    "b0",
                    "--pinger-ip",
                    "10.0.0.1",
                ][..],
                "outside 198.18.0.0/15",
            ),
            (
                &[
                    "--pinger-if",
                    "a0",
                    "--ponger-if",
                    "b0",
                    "--ponger-ip",
                    "198.20.0.1",
                ][..],
                "outside 198.18.0.0/15",
            ),
            (
                &["--pinger-if", "a/0", "--ponger-if", "b0"][..],
                "not an interface name",
            ),
            (
                &["--pinger-if", "a234567890123456", "--ponger-if", "b0"][..],
                "not an interface name",
            ),
        ] {
            let e = pair_of(argv).expect_err(&format!("{argv:?} accepted"));
            assert!(format!("{e:#}").contains(want), "{argv:?}: {e:#}");
        }
    }

    #[test]
    fn every_backend_and_mode_is_a_flag_value_by_its_name() {
        let named: Vec<LatBackend> = BACKEND_VALUES.iter().map(|&(b, _)| b).collect();
        assert_eq!(named, LatBackend::ALL);
        let named: Vec<LatMode> = MODE_VALUES.iter().map(|&(m, _)| m).collect();
        assert_eq!(named, LatMode::ALL);
    }
}
