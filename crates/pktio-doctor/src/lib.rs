//! # pktio-doctor: the engine behind `pktio doctor`
//!
//! Reads this host's network tuning the way the guide
//! (“Linux Network Performance Ultimate Guide”) walks the receive path, says
//! in one sentence what each setting means for packet rates and gives the
//! exact command that fixes it; checks what AF_XDP needs on each interface;
//! and answers “why does my AF_XDP socket receive nothing?”.
//!
//! One file per area. Readers are thin (netlink, procfs, sysfs, a few
//! probes) and never fail the run: what cannot be read becomes a finding.
//! Every check is a pure function over what was read, tested on fixtures.
//! The kernel is asked through the host layer, [`pktio_host`]: its netlink
//! client (rtnetlink, ethtool and netdev generic netlink, `xsk_diag`), the
//! `SIOCETHTOOL` driver counters, the `CapEff` reader and the CPU-list
//! parsers; this crate only turns the answers into findings.
//!
//! - [`nic`]: per interface (rtnetlink, ethtool netlink, netdev netlink).
//! - [`stack`]: softnet_stat, NAPI budget, backlog, default qdisc, RPS/RFS/XPS.
//! - [`irq`]: queue interrupts, affinity, NUMA, irqbalance.
//! - [`sockets`]: socket buffers, busy polling, hugepages, memlock.
//! - [`kernel`]: AF_XDP, io_uring, BPF JIT, privileges.
//! - [`mod@why`]: the `--why-no-packets` checklist.
//! - [`apply`], [`watch`], [`report`]: `--apply`, `--watch`, and the
//!   table, checklist and JSON the findings are printed as.
//!
//! The entry points take a plain [`Config`]: [`collect`] (every check),
//! [`why_no_packets`] (the checklist), [`interfaces`] with [`watch::run`]
//! (rates), and [`apply::run`] over the findings. They print nothing: the
//! caller (the `pktio` command line) prints what they return.
//!
//! Frame size: AF_XDP places a received frame after `XDP_PACKET_HEADROOM`
//! (256 bytes) plus the UMEM headroom the application asks for, so a UMEM
//! chunk of [`Config::frame_size`] bytes (default 4096) holds frames up to
//! 4096 − 256 − [`Config::headroom`] bytes (3840 by default): an MTU of 3822
//! plus the Ethernet header and a VLAN tag.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;

pub mod apply;
pub mod ethtool_stats;
pub mod finding;
pub mod irq;
pub mod kernel;
pub mod nic;
pub mod report;
pub mod rtnl;
pub mod sockets;
pub mod stack;
pub mod sysctl;
pub mod watch;
pub mod why;

use pktio_host::cpu::CpuSet;
use pktio_host::netlink::{ethtool, netdev};

use finding::{Finding, Unavailable};
use nic::HostCtx;

/// What to examine, and the AF_XDP frame layout the MTU is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Interfaces to examine; empty: every interface but loopback.
    pub interfaces: Vec<String>,
    /// UMEM frame (chunk) size, 2048 to 65536 bytes.
    pub frame_size: u32,
    /// UMEM headroom per frame, on top of the kernel's 256 bytes.
    pub headroom: u32,
}

impl Default for Config {
    /// Every interface, 4096-byte frames, no extra headroom.
    fn default() -> Self {
        Config {
            interfaces: Vec::new(),
            frame_size: 4096,
            headroom: 0,
        }
    }
}

/// The largest headroom: the largest frame (65536) minus the kernel's
/// 256 bytes of XDP headroom minus room for a 64-byte packet.
pub const MAX_HEADROOM: u32 = 65536 - nic::XDP_HEADROOM - 64;

/// The largest headroom that leaves a 64-byte packet room in a frame of
/// `frame_size` bytes (0 when even that does not fit).
pub fn max_headroom(frame_size: u32) -> u32 {
    frame_size.saturating_sub(nic::XDP_HEADROOM + 64)
}

/// True when `headroom` leaves a 64-byte packet room in a frame of
/// `frame_size` bytes.
pub fn headroom_fits(frame_size: u32, headroom: u32) -> bool {
    // Saturating: no sum may wrap (a wrapped sum once said "ok" for a
    // headroom of 4294967295).
    headroom.saturating_add(nic::XDP_HEADROOM + 64) <= frame_size
}

fn online_cpus() -> CpuSet {
    pktio_host::sysfs::online_cpus()
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

fn host(c: &Config) -> anyhow::Result<HostCtx> {
    if c.frame_size < 2048 || c.frame_size > 65536 {
        anyhow::bail!(
            "--frame-size must be between 2048 and 65536 bytes (AF_XDP chunk sizes), got {}",
            c.frame_size
        );
    }
    if !headroom_fits(c.frame_size, c.headroom) {
        anyhow::bail!(
            "--headroom {} leaves no room in a {}-byte frame: use at most {} \
             (the frame size − 256 bytes of XDP headroom − 64 bytes of packet)",
            c.headroom,
            c.frame_size,
            max_headroom(c.frame_size)
        );
    }
    Ok(HostCtx {
        online: online_cpus(),
        frame_size: c.frame_size,
        headroom: c.headroom,
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

/// The names of the interfaces `names` selects (each must exist; empty:
/// every interface but loopback), for [`watch::run`].
///
/// # Errors
/// An unknown interface, or no rtnetlink at all.
pub fn interfaces(names: &[String]) -> anyhow::Result<Vec<String>> {
    let mut rt = rtnl::Rtnl::open().context("cannot open an rtnetlink socket")?;
    Ok(links(&mut rt, names)?
        .into_iter()
        .map(|l| l.ifname)
        .collect())
}

/// Reads the host and runs every check.
///
/// # Errors
/// An unknown interface, or no rtnetlink at all.
pub fn collect(c: &Config) -> anyhow::Result<Vec<Finding>> {
    let h = host(c)?;
    let mut rt = rtnl::Rtnl::open().context("cannot open an rtnetlink socket")?;
    let links = links(&mut rt, &c.interfaces)?;
    let mut eth = ethtool::Ethtool::open()
        .map_err(|e| Unavailable::from_host("ethtool netlink (Linux 5.6+)", e));
    let mut nd = netdev::Netdev::open()
        .map_err(|e| Unavailable::from_host("netdev netlink (Linux 6.3+)", e));
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
    let named = !c.interfaces.is_empty();
    for l in links {
        let n = nic::gather(&mut rt, &mut eth, &mut nd, l);
        let first = out.len();
        if !named && !n.link.up {
            // An unused interface: say it is down, skip the tuning advice.
            out.push(nic::check_link(&n));
        } else {
            out.extend(nic::check(&n, &h));
            out.extend(stack::check_steering(&n, &h, &sys));
            if let Ok(lines) = &irqf.lines {
                let (msi, names) = irq::device_irq_ids(&n);
                let q = irq::with_affinity(irq::interface_irqs(lines, n.name(), &names, &msi));
                out.extend(irq::check_nic(&n, &q, &h));
            }
        }
        for f in &mut out[first..] {
            f.on_interface(n.name());
        }
    }
    out.extend(sockets::check(&sockets::SocketFacts::read(
        sys.clone(),
        k.caps,
    )));
    let out = sysctl::demote_read_only(out, &sys);
    Ok(finding::merge_global(out))
}

/// The `--why-no-packets` checklist for queue `queue` of the one interface
/// in `c`, sampling its counters for `sample`: the findings and the verdict.
///
/// # Errors
/// Not exactly one interface, or an unknown one.
pub fn why_no_packets(
    c: &Config,
    queue: u32,
    sample: Duration,
) -> anyhow::Result<(Vec<Finding>, why::Verdict)> {
    let [ifname] = c.interfaces.as_slice() else {
        anyhow::bail!("--why-no-packets needs exactly one interface: -i IF -q QUEUE");
    };
    let facts =
        why::gather(ifname, queue, sample, host(c)?).map_err(|e| no_such_interface(ifname, e))?;
    let (mut findings, verdict) = why::check(&facts);
    for f in &mut findings {
        f.on_interface(ifname);
    }
    Ok((findings, verdict))
}
