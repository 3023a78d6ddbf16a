//! `pktio doctor`: reads this host's network tuning the way the guide
//! (“Linux Network Performance Ultimate Guide”) walks the receive path, says
//! in one sentence what each setting means for packet rates and gives the
//! exact command that fixes it; checks what AF_XDP needs on each interface;
//! and answers “why does my AF_XDP socket receive nothing?”.
//!
//! One file per area. Readers are thin (netlink, procfs, sysfs, a few
//! probes) and never fail the run: what cannot be read becomes a finding.
//! Every check is a pure function over what was read, tested on fixtures.
//!
//! - [`nic`]: per interface (rtnetlink, ethtool netlink, netdev netlink).
//! - [`stack`]: softnet_stat, NAPI budget, backlog, default qdisc, RPS/RFS/XPS.
//! - [`irq`]: queue interrupts, affinity, NUMA, irqbalance.
//! - [`sockets`]: socket buffers, busy polling, hugepages, memlock.
//! - [`kernel`]: AF_XDP, io_uring, BPF JIT, privileges.
//! - [`mod@why`]: the `--why-no-packets` checklist.
//! - [`apply`], [`watch`], [`report`]: `--apply`, `--watch`, output.
//!
//! Frame size: AF_XDP places a received frame after `XDP_PACKET_HEADROOM`
//! (256 bytes) plus the UMEM headroom the application asks for, so a UMEM
//! chunk of `--frame-size` bytes (default 4096) holds frames up to
//! 4096 − 256 − `--headroom` bytes (3840 by default): an MTU of 3822 plus
//! the Ethernet header and a VLAN tag.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

pub mod apply;
pub mod cpus;
pub mod ethtool;
pub mod ethtool_stats;
pub mod finding;
pub mod irq;
pub mod kernel;
pub mod netdev;
pub mod netlink;
pub mod nic;
pub mod report;
pub mod rtnl;
pub mod sockets;
pub mod stack;
pub mod sysctl;
pub mod watch;
pub mod why;
pub mod xsk_diag;

use finding::{Finding, Unavailable};
use nic::HostCtx;

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

/// The largest `--headroom`: the largest frame (65536) minus the kernel's
/// 256 bytes of XDP headroom minus room for a 64-byte packet.
const MAX_HEADROOM: u32 = 65536 - nic::XDP_HEADROOM - 64;
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
    // Saturating: no sum may wrap, whatever reaches here (a wrapped sum
    // once said "ok" for --headroom 4294967295).
    let most = a.frame_size.saturating_sub(nic::XDP_HEADROOM + 64);
    if a.headroom.saturating_add(nic::XDP_HEADROOM + 64) > a.frame_size {
        return Err(format!(
            "--headroom {} leaves no room in a {}-byte frame: use 0 to {most} \
             (--frame-size − 256 bytes of XDP headroom − 64 bytes of packet)",
            a.headroom, a.frame_size
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

fn online_cpus() -> cpus::CpuSet {
    finding::read_trim("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| cpus::parse_list(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

fn host(a: &DoctorArgs) -> anyhow::Result<HostCtx> {
    if a.frame_size < 2048 || a.frame_size > 65536 {
        anyhow::bail!(
            "--frame-size must be between 2048 and 65536 bytes (AF_XDP chunk sizes), got {}",
            a.frame_size
        );
    }
    // Saturating: --headroom is range-checked by clap, but this must not wrap
    // whatever reaches it (a wrapped sum said "ok" for 4294967295).
    if a.headroom.saturating_add(nic::XDP_HEADROOM + 64) > a.frame_size {
        anyhow::bail!(
            "--headroom {} leaves no room in a {}-byte frame: use at most {} \
             (the frame size − 256 bytes of XDP headroom − 64 bytes of packet)",
            a.headroom,
            a.frame_size,
            a.frame_size.saturating_sub(nic::XDP_HEADROOM + 64)
        );
    }
    Ok(HostCtx {
        online: online_cpus(),
        frame_size: a.frame_size,
        headroom: a.headroom,
    })
}

fn no_such_interface(name: &str, e: std::io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::ENODEV) {
        anyhow::anyhow!(
            "no interface named {name:?} in this network namespace (list them with `ip link`)"
        )
    } else {
        anyhow::Error::new(e).context(format!("cannot read interface {name:?} through rtnetlink"))
    }
}

/// The interfaces to examine: the named ones (each must exist) or all but loopback.
fn links(rt: &mut rtnl::Rtnl, names: &[String]) -> anyhow::Result<Vec<rtnl::Link>> {
    if names.is_empty() {
        let all = rt
            .links()
            .context("cannot list interfaces through rtnetlink")?;
        return Ok(all.into_iter().filter(|l| !l.loopback).collect());
    }
    names
        .iter()
        .map(|n| rt.link_by_name(n).map_err(|e| no_such_interface(n, e)))
        .collect()
}

/// Reads the host and runs every check.
///
/// # Errors
/// An unknown interface, or no rtnetlink at all.
pub fn collect(a: &DoctorArgs) -> anyhow::Result<Vec<Finding>> {
    let h = host(a)?;
    let mut rt = rtnl::Rtnl::open().context("cannot open an rtnetlink socket")?;
    let links = links(&mut rt, &a.interfaces)?;
    let mut eth = ethtool::Ethtool::open()
        .map_err(|e| Unavailable::from_io("ethtool netlink (Linux 5.6+)", &e));
    let mut nd =
        netdev::Netdev::open().map_err(|e| Unavailable::from_io("netdev netlink (Linux 6.3+)", &e));
    let sys = sysctl::Sysctls::read();
    let k = kernel::KernelFacts::probe();
    let irqf = irq::IrqFacts::read();

    let mut out = Vec::new();
    out.extend(kernel::check(&k, &sys));
    out.extend(stack::check(&stack::StackFacts {
        sysctl: sys.clone(),
        softnet: stack::read_softnet(),
    }));
    out.extend(irq::check_host(&irqf));
    let named = !a.interfaces.is_empty();
    for l in links {
        let n = nic::gather(&mut rt, &mut eth, &mut nd, l);
        if !named && !n.link.up {
            // An unused interface: say it is down, skip the tuning advice.
            out.push(nic::check_link(&n));
            continue;
        }
        out.extend(nic::check(&n, &h));
        out.extend(stack::check_steering(&n, &h, &sys));
        if let Ok(lines) = &irqf.lines {
            let (msi, names) = irq::device_irq_ids(&n);
            let q = irq::with_affinity(irq::interface_irqs(lines, n.name(), &names, &msi));
            out.extend(irq::check_nic(&n, &q, &h));
        }
    }
    out.extend(sockets::check(&sockets::SocketFacts::read(
        sys.clone(),
        k.caps,
    )));
    let out = sysctl::demote_read_only(out, &sys);
    Ok(finding::merge_global(out))
}

fn why(a: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let [ifname] = a.interfaces.as_slice() else {
        anyhow::bail!("--why-no-packets needs exactly one interface: -i IF -q QUEUE");
    };
    let Some(q) = a.queue else {
        anyhow::bail!("--why-no-packets needs the queue the socket is bound to: -q QUEUE");
    };
    let sample = seconds(a.sample, "--sample")?;
    let facts =
        why::gather(ifname, q, sample, host(a)?).map_err(|e| no_such_interface(ifname, e))?;
    let (findings, verdict) = why::check(&facts);
    if a.json {
        println!("{}", report::json(&findings, Some(&verdict))?);
    } else {
        print!("{}", report::checklist(&findings, &verdict));
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
        let every = seconds(s, "--watch")?;
        let mut rt = rtnl::Rtnl::open().context("cannot open an rtnetlink socket")?;
        let names: Vec<String> = links(&mut rt, &a.interfaces)?
            .into_iter()
            .map(|l| l.ifname)
            .collect();
        return watch::run(&names, every, a.count, a.json);
    }
    let findings = collect(&a)?;
    if a.apply {
        return apply::run(&findings, a.yes, a.json);
    }
    if a.json {
        println!("{}", report::json(&findings, None)?);
    } else {
        print!("{}", report::table(&findings, a.verbose));
    }
    Ok(ExitCode::SUCCESS)
}
