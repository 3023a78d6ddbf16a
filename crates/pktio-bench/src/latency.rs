//! The engine of `pktio latency`: ping/pong round trips between the lab's two
//! namespaces, or between two named interfaces of the current namespace
//! (`--pinger-if A --ponger-if B`: two NIC ports cabled to each other, a
//! veth pair), one ping in flight at a time, with an HDR histogram of the
//! round-trip times per backend and wakeup mode.
//!
//! Each side is an `End`: an interface, its MAC and IPv4 address, and
//! where code for it runs (a thread that entered the lab host's namespace,
//! or a plain thread for named interfaces). Everything else is shared by
//! the two setups.
//!
//! Both sides run on the same backend, through [`PacketIo`], so one pinger
//! and one ponger measure every backend: AF_XDP with its program in native
//! (`xdp`) or generic (`xdp-skb`) mode, AF_PACKET `TPACKET_V2` (`v2`) and
//! `TPACKET_V3` (`v3`), and io_uring on AF_PACKET (`uring`).
//!
//! The pinger (gen end, its own CPU) writes a sequence number and a
//! `CLOCK_MONOTONIC` send time into each ping's payload and sends it with
//! `tx_batch`; the ponger (rx end, the other CPU) swaps the Ethernet, IPv4
//! and UDP source and destination and sends it back with `forward_batch`
//! (on AF_XDP the received frame itself goes on the TX ring; the other
//! backends copy it once). The pinger takes the round trip from the
//! payload's send time when the matching pong arrives through `rx_batch`.
//! A ping with no answer within the timeout is lost; a late answer to an
//! earlier ping is ignored.
//!
//! What the stack sees: AF_XDP takes the pings away from the stack (the
//! steering program redirects them); AF_PACKET and io_uring see a copy of
//! each frame while the stack gets the frame too. So that the kernel does
//! not answer the pings and pongs itself (ICMP port unreachable, which the
//! other side would then have to look at and throw away), a UDP socket is
//! bound to the ping port on each end for the run; it only holds what the
//! kernel delivers to it. The pinger counts only a UDP pong from the rx
//! end's address carrying the sequence number it waits for, and the
//! AF_PACKET sockets ignore their own outgoing frames
//! (`PACKET_IGNORE_OUTGOING`), so the ponger never sees its pongs again.
//!
//! Every backend except native AF_XDP receives on a veth that has no NAPI
//! instance of its own: in the lab GRO is switched on at both ends for the
//! run, which gives each end one, so that every backend receives through
//! NAPI (as the native XDP program makes the veth do) and busy polling has
//! a NAPI to poll. It is switched off again afterwards.
//!
//! On named interfaces nothing of the interfaces is changed (no GRO, no
//! addresses, no UDP sockets): the addresses (`--pinger-ip`/`--ponger-ip`,
//! 198.18.0.1 / 198.18.0.2 by default, only in 198.18.0.0/15) are written
//! into the frames only, and the MACs are read from the interfaces. On a
//! veth pair, GRO (or an XDP program) on the receiving ends is then the
//! user's business. The AF_XDP backends bind queue 0 in copy mode: on a
//! multi-queue NIC the pings must be steered to queue 0. The AF_PACKET and
//! io_uring backends leave the frames to the stack as well: with IPv4
//! forwarding on, the stack may route them on (a warning says so).
//!
//! Wakeup modes:
//! - `busy-poll`: both sides spin on their batch calls with the busy-poll
//!   socket options set (`SO_PREFER_BUSY_POLL` / `SO_BUSY_POLL`): AF_XDP
//!   kicks the kernel from an empty ring, which then drives the device's
//!   NAPI; AF_PACKET rings are read without a system call; io_uring enters
//!   the ring on each call;
//! - `interrupt`: both sides block in [`PacketIo::wait`] (`poll(2)`, or
//!   `io_uring_enter` waiting for a completion) until a packet is there.
//!
//! `TPACKET_V3` hands a block of packets over when it is full or when its
//! retire timer fires: with one ping in flight that timer is what `v3`
//! measures. It is set to its minimum (1 ms) here.
//!
//! The histogram (`hdrhistogram`, 3 significant digits, 1 ns .. 10 s)
//! holds exactly the answered pings of the measured part of a run (the
//! warm-up pings are left out of both).

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use pktio::backend::{Backend, BackendKind, BusyPoll, PacketIo};
use pktio::wire::UdpFrame;
use pktio_lab::{Host, Lab};

use crate::bench::cell::{classify, CellError};
use crate::loops::{Mode, SocketOpts};
use crate::report::{Cell, Environment, Labels, Report};
use crate::run::pin_to_cpu;

/// UDP port of the pings (marks them; everything else is left alone).
const PING_PORT: u16 = 7007;
/// First payload word of a ping.
const MAGIC: u32 = 0x7069_6e67;

/// What `pktio latency` measures, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// Backends to measure.
    pub backends: Vec<LatBackend>,
    /// Wakeup modes to measure.
    pub modes: Vec<LatMode>,
    /// Pings measured per run (after the warm-up).
    pub count: u32,
    /// Pings sent first and not measured.
    pub warmup: u32,
    /// Runs per cell.
    pub runs: usize,
    /// Frame size in bytes on the wire, FCS included.
    pub size: u32,
    /// Milliseconds to wait for a pong before counting the ping lost.
    pub timeout_ms: u64,
    /// CPU of the pinger.
    pub ping_cpu: usize,
    /// CPU of the ponger.
    pub pong_cpu: usize,
}

/// A backend as `pktio latency` names it (the names of `pktio bench`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatBackend {
    /// AF_XDP copy mode, program in driver (native) mode.
    Xdp,
    /// AF_XDP copy mode, program in skb (generic) mode.
    XdpSkb,
    /// AF_PACKET TPACKET_V2 (frame rings).
    V2,
    /// AF_PACKET TPACKET_V3 (block ring RX).
    V3,
    /// io_uring on an AF_PACKET socket.
    Uring,
}

impl LatBackend {
    /// Every backend, in the order of the table.
    pub const ALL: [LatBackend; 5] = [
        LatBackend::Xdp,
        LatBackend::XdpSkb,
        LatBackend::V2,
        LatBackend::V3,
        LatBackend::Uring,
    ];

    /// The backend's name (as `pktio bench` names it).
    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    fn kind(self) -> BackendKind {
        match self {
            LatBackend::Xdp => BackendKind::Xdp,
            LatBackend::XdpSkb => BackendKind::XdpSkb,
            LatBackend::V2 => BackendKind::PacketV2,
            LatBackend::V3 => BackendKind::PacketV3,
            LatBackend::Uring => BackendKind::Uring,
        }
    }

    /// Whether the veth needs GRO switched on to receive through NAPI: every
    /// backend but native AF_XDP, whose program gives the veth its NAPI.
    fn needs_gro(self) -> bool {
        self != LatBackend::Xdp
    }
}

/// How each side waits for packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatMode {
    /// Spin on the rings (with kernel busy polling where the device has NAPI).
    BusyPoll,
    /// Block in poll(2) until readable.
    Interrupt,
}

impl LatMode {
    /// Both modes.
    pub const ALL: [LatMode; 2] = [LatMode::BusyPoll, LatMode::Interrupt];

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            LatMode::BusyPoll => "busy-poll",
            LatMode::Interrupt => "interrupt",
        }
    }
}

impl std::fmt::Display for LatBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for LatMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The payload of a ping: magic, sequence number, send time (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ping {
    seq: u32,
    sent_ns: u64,
}

impl Ping {
    /// Fits the 18 payload bytes of a minimal (60-byte) frame.
    const LEN: usize = 16;

    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// The ping in a UDP payload, if it is one.
    fn decode(payload: &[u8]) -> Option<Ping> {
        let p = payload.get(..Self::LEN)?;
        if p[0..4] != MAGIC.to_be_bytes() {
            return None;
        }
        Some(Ping {
            seq: u32::from_be_bytes(p[4..8].try_into().ok()?),
            sent_ns: u64::from_be_bytes(p[8..16].try_into().ok()?),
        })
    }
}

/// The ping carried by an Ethernet/IPv4/UDP frame from `src` to `dst`,
/// port [`PING_PORT`], if it is one. Pings go from gen to rx, pongs back:
/// the addresses tell a pong from a ping (and from anything else).
fn ping_of(frame: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Option<Ping> {
    let v = pktio::wire::parse_udp(frame)?;
    if v.src_ip != src || v.dst_ip != dst || v.dst_port != PING_PORT {
        return None;
    }
    Ping::decode(v.payload)
}

/// Turns a ping frame into its pong in place: Ethernet, IPv4 and UDP
/// source and destination swapped (the IPv4 and UDP checksums are
/// unchanged by a swap).
fn reflect(frame: &mut [u8]) -> bool {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let ihl = ((frame[14] & 0x0f) as usize) * 4;
    if ihl < 20 || frame.len() < 14 + ihl + 8 {
        return false;
    }
    pktio::wire::swap_macs(frame);
    for i in 0..4 {
        frame.swap(26 + i, 30 + i);
    }
    let l4 = 14 + ihl;
    for i in 0..2 {
        frame.swap(l4 + i, l4 + 2 + i);
    }
    true
}

/// `CLOCK_MONOTONIC` in nanoseconds.
fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One run's results.
#[derive(Debug)]
struct RunResult {
    hist: Histogram<u64>,
    sent: u64,
    answered: u64,
    lost: u64,
}

/// Microseconds at the quantiles the report shows: min, p50, p99, p99.9, max.
fn summary_us(h: &Histogram<u64>) -> [f64; 5] {
    let us = |ns: u64| ns as f64 / 1000.0;
    [
        us(h.min()),
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
    ]
}

/// The two interfaces named on the command line, checked: both given or
/// neither, not the same one twice, different addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfPair {
    /// The pinger's interface and the IPv4 address its frames carry.
    pub pinger: (String, Ipv4Addr),
    /// The ponger's interface and address.
    pub ponger: (String, Ipv4Addr),
}

/// Where the code of one end runs.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    /// On a thread that entered this lab host's network namespace.
    Lab(&'a Host),
    /// On a plain thread, in the current network namespace.
    Here,
}

/// One end of the ping/pong: its interface, the MAC and IPv4 address its
/// frames carry, and where code for it runs.
#[derive(Debug)]
struct End<'a> {
    ifname: String,
    mac: [u8; 6],
    ip: Ipv4Addr,
    place: Place<'a>,
}

impl<'a> End<'a> {
    /// The veth end of a lab host.
    fn of_host(h: &'a Host) -> End<'a> {
        End {
            ifname: h.ifname().to_string(),
            mac: h.mac(),
            ip: h.addr().ip(),
            place: Place::Lab(h),
        }
    }

    /// Runs `f` on a thread of this end (its namespace) and returns its
    /// result; a panic in `f` is resumed here.
    fn run<F, R>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        match self.place {
            Place::Lab(h) => Ok(h.try_run(f)?),
            Place::Here => std::thread::scope(|s| match s.spawn(f).join() {
                Ok(r) => Ok(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }),
        }
    }
}

/// The two ends, and the lab if they are its hosts.
#[derive(Debug)]
struct Pair<'a> {
    pinger: End<'a>,
    ponger: End<'a>,
    lab: Option<&'a Lab>,
}

impl<'a> Pair<'a> {
    /// The pinger on the lab's gen end, the ponger on its rx end.
    fn in_lab(lab: &'a Lab) -> Pair<'a> {
        Pair {
            pinger: End::of_host(lab.gen()),
            ponger: End::of_host(lab.rx()),
            lab: Some(lab),
        }
    }

    /// Two interfaces of the current namespace: they must exist (an ifindex
    /// by `SIOCGIFINDEX`), and their MACs come from `RTM_GETLINK`
    /// (`IFLA_ADDRESS`), which, unlike `/sys/class/net`, always shows the
    /// calling thread's namespace.
    fn on_interfaces(p: IfPair) -> anyhow::Result<Pair<'static>> {
        let pinger_index = crate::loops::ifindex(&p.pinger.0)?;
        let ponger_index = crate::loops::ifindex(&p.ponger.0)?;
        if pinger_index == ponger_index {
            bail!(
                "{} and {} are the same interface (index {pinger_index}): the pinger and the ponger need two",
                p.pinger.0,
                p.ponger.0
            );
        }
        let ns = std::fs::File::open("/proc/thread-self/ns/net")
            .context("opening /proc/thread-self/ns/net")?;
        let links = pktio_lab::list_links(std::os::fd::AsFd::as_fd(&ns)).with_context(|| {
            format!(
                "reading the MACs of {} and {} (RTM_GETLINK; needs root)",
                p.pinger.0, p.ponger.0
            )
        })?;
        let end = |(ifname, ip): (String, Ipv4Addr), index: u32| -> anyhow::Result<End<'static>> {
            let mac = links
                .iter()
                .find(|l| l.ifindex == index)
                .and_then(|l| l.mac)
                .filter(|m| *m != [0; 6])
                .with_context(|| format!("{ifname} has no Ethernet MAC address"))?;
            Ok(End {
                ifname,
                mac,
                ip,
                place: Place::Here,
            })
        };
        Ok(Pair {
            pinger: end(p.pinger, pinger_index)?,
            ponger: end(p.ponger, ponger_index)?,
            lab: None,
        })
    }
}

/// Whether the current namespace forwards IPv4: the stack then routes the
/// pings and pongs the AF_PACKET and io_uring backends leave to it.
fn ipv4_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|t| t.trim() != "0")
}

/// Runs the latency measurement of `a`: in a lab of its own, or between
/// the named interfaces `ifs` (checked by the caller, consent given), and
/// returns the report (incomplete after Ctrl-C/SIGTERM: the stop flag
/// says so).
///
/// # Errors
/// The lab cannot be built, the interfaces are unusable, a run failed
/// (other than "unsupported", which the report notes).
pub fn run(a: &Latency, ifs: Option<IfPair>) -> anyhow::Result<Report> {
    let lab;
    let pair = match ifs {
        Some(p) => Pair::on_interfaces(p)?,
        None => {
            lab = Lab::new()
                .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
            Pair::in_lab(&lab)
        }
    };
    let stop = crate::run::stop_flag();

    let mut env = Environment::detect();
    env.cores.insert("pinger".into(), vec![a.ping_cpu]);
    env.cores.insert("ponger".into(), vec![a.pong_cpu]);
    let mut notes = Vec::new();
    let title = if pair.lab.is_some() {
        env.set("driver", "veth");
        env.set("gro", "on for every backend but xdp (veth NAPI)");
        "pktio latency: round trips in the veth lab (µs)".to_string()
    } else {
        let (p, q) = (&pair.pinger, &pair.ponger);
        env.set("interfaces", format!("{} -> {}", p.ifname, q.ifname));
        env.set("addresses", format!("{} -> {}", p.ip, q.ip));
        env.set("gro", "left as it is");
        if ipv4_forwarding() && a.backends.iter().any(|b| b.needs_gro()) {
            let w = "IPv4 forwarding is on: the stack also sees the AF_PACKET and io_uring backends' pings and pongs and may route them on".to_string();
            eprintln!("warning: {w}");
            notes.push(w);
        }
        format!(
            "pktio latency: round trips between {} and {} (µs)",
            p.ifname, q.ifname
        )
    };
    env.set("bind", "AF_XDP copy");
    env.set("v3 retire", format!("{V3_RETIRE_MS} ms"));
    env.set("size", format!("{} B", a.size));
    env.set("pings", a.count.to_string());
    env.set("warmup", a.warmup.to_string());
    env.set("timeout", format!("{} ms", a.timeout_ms));
    env.set("clock", "CLOCK_MONOTONIC in the payload");
    let mut report = Report::new(&title, env, &["backend", "mode"]);
    report.notes.extend(notes);

    for &backend in &a.backends {
        for &mode in &a.modes {
            let labels = Labels::new([("backend", backend.name()), ("mode", mode.name())]);
            let mut cols: [Vec<f64>; 5] = Default::default();
            let (mut sent, mut answered, mut lost, mut samples) = (vec![], vec![], vec![], vec![]);
            let mut unsupported = None;
            for r in 0..a.runs {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                eprintln!(
                    "[{} {} run {}/{}] {} pings",
                    backend.name(),
                    mode.name(),
                    r + 1,
                    a.runs,
                    a.count
                );
                let res = match measure(&pair, backend, mode, a, &stop) {
                    Ok(res) => res,
                    Err(CellError::Unsupported(why)) => {
                        eprintln!("          unsupported: {why}");
                        unsupported = Some(why);
                        break;
                    }
                    Err(CellError::Failed(e)) => {
                        return Err(e.context(format!("{} {}", backend.name(), mode.name())))
                    }
                };
                let s = summary_us(&res.hist);
                eprintln!(
                    "          answered {}/{} (lost {}), min {:.1} p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} µs",
                    res.answered, res.sent, res.lost, s[0], s[1], s[2], s[3], s[4]
                );
                if res.answered > 0 {
                    for (c, v) in cols.iter_mut().zip(s) {
                        c.push(v);
                    }
                }
                sent.push(res.sent as f64);
                answered.push(res.answered as f64);
                lost.push(res.lost as f64);
                samples.push(res.hist.len() as f64);
            }
            if let Some(why) = unsupported {
                report.notes.push(format!(
                    "{} {}: unsupported: {why}",
                    backend.name(),
                    mode.name()
                ));
                if sent.is_empty() {
                    // The row stays in the table and the JSON, without samples.
                    report.cells.push(Cell::new(
                        labels.with("status", &format!("unsupported: {why}")),
                        "p50",
                        "µs",
                        Vec::new(),
                    ));
                    continue;
                }
            }
            for (name, c) in ["min", "p50", "p99", "p99.9", "max"].iter().zip(cols) {
                report.cells.push(Cell::new(labels.clone(), name, "µs", c));
            }
            report
                .cells
                .push(Cell::new(labels.clone(), "sent", "", sent));
            report
                .cells
                .push(Cell::new(labels.clone(), "answered", "", answered));
            report
                .cells
                .push(Cell::new(labels.clone(), "lost", "", lost));
            report
                .cells
                .push(Cell::new(labels, "histogram samples", "", samples));
        }
    }
    Ok(report)
}

/// TPACKET_V3 block retire timeout (ms): the smallest the kernel takes.
const V3_RETIRE_MS: u32 = 1;

/// The flags `pktio rxdrop`/`l2fwd` would take for one side of `backend`
/// in `mode`: AF_XDP in copy mode (veth has no zero-copy), small rings
/// (one ping is in flight), busy polling in busy-poll mode.
fn side_opts(backend: LatBackend, mode: LatMode) -> SocketOpts {
    let bp = BusyPoll::default();
    SocketOpts {
        backend: backend.kind(),
        copy: matches!(backend, LatBackend::Xdp | LatBackend::XdpSkb),
        skb: backend == LatBackend::XdpSkb,
        native: backend == LatBackend::Xdp,
        frame_size: 2048,
        frames: 512,
        ring_size: 512,
        busy_poll: (mode == LatMode::BusyPoll).then_some(bp.usecs),
        busy_poll_budget: bp.budget,
        poll: mode == LatMode::Interrupt,
        ..SocketOpts::default()
    }
}

/// Opens one side (both directions) on `ifname` of the calling thread's
/// namespace.
fn open_side(ifname: &str, backend: LatBackend, mode: LatMode) -> anyhow::Result<Backend> {
    let o = side_opts(backend, mode);
    let mut cfg = o.backend_config(ifname, Mode::L2fwd);
    // One packet at a time: a V3 block is handed over by its retire timer.
    cfg.retire_timeout_ms = V3_RETIRE_MS;
    cfg.block_size = 64 * 1024;
    cfg.block_count = 8;
    // The ponger must not receive its own pongs, nor the pinger its pings.
    cfg.ignore_outgoing = true;
    o.open_config(&cfg, Mode::L2fwd, true)
        .with_context(|| format!("{} on {ifname}", backend.name()))
}

/// A UDP socket bound to the ping port on `host`'s address for the run: the
/// kernel there delivers the pings and pongs it sees to it (where they wait
/// until the socket is full, then are dropped) instead of answering them
/// with ICMP port unreachable.
fn udp_sink(host: &Host) -> anyhow::Result<UdpSocket> {
    let ip = host.addr().ip();
    host.try_run(|| UdpSocket::bind((ip, PING_PORT)))?
        .with_context(|| format!("binding UDP {ip}:{PING_PORT} in namespace {}", host.name()))
}

/// One run of `backend` in `mode`, in the lab with GRO switched on for it
/// if it needs it (and off again, whatever happened). Named interfaces are
/// left as they are.
fn measure(
    pair: &Pair<'_>,
    backend: LatBackend,
    mode: LatMode,
    a: &Latency,
    stop: &AtomicBool,
) -> Result<RunResult, CellError> {
    let gro_hosts = match pair.lab {
        Some(lab) if backend.needs_gro() => vec![lab.gen(), lab.rx()],
        _ => Vec::new(),
    };
    for h in &gro_hosts {
        h.set_gro(true)?;
    }
    let r = measure_pair(pair, backend, mode, a, stop);
    for h in &gro_hosts {
        let off = h.set_gro(false);
        if r.is_ok() {
            off?;
        }
    }
    r
}

/// One run: a ponger on its end, the pinger on its own.
fn measure_pair(
    pair: &Pair<'_>,
    backend: LatBackend,
    mode: LatMode,
    a: &Latency,
    stop: &AtomicBool,
) -> Result<RunResult, CellError> {
    // The UDP sinks only spare the lab's stacks the ICMP port unreachable
    // answers; the pinger counts UDP pongs only, so they are not needed
    // for correctness. On named interfaces none is bound: the addresses
    // are usually not assigned there (bind would fail) and the user's
    // sockets are not ours to add to.
    let _sinks = match pair.lab {
        Some(lab) => vec![udp_sink(lab.gen())?, udp_sink(lab.rx())?],
        None => Vec::new(),
    };
    let pong_stop = AtomicBool::new(false);
    let (tx_ready, rx_ready) = mpsc::channel();
    std::thread::scope(|s| -> Result<RunResult, CellError> {
        let h = s.spawn(|| {
            pair.ponger
                .run(|| ponger(pair, backend, mode, a.pong_cpu, tx_ready, &pong_stop))?
        });
        let ready = rx_ready
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow::anyhow!("the ponger did not start"))
            .and_then(|r| r);
        let result = match ready {
            Ok(()) => pair
                .pinger
                .run(|| pinger(pair, backend, mode, a, stop))
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        pong_stop.store(true, Ordering::SeqCst);
        let reflected = h
            .join()
            .map_err(|_| anyhow::anyhow!("the ponger thread panicked"))?;
        let r = result.map_err(classify)?;
        let reflected = reflected.map_err(classify)?;
        if reflected < r.answered {
            return Err(CellError::Failed(anyhow::anyhow!(
                "more pongs ({}) than pings reflected ({reflected})",
                r.answered
            )));
        }
        Ok(r)
    })
}

/// The ponger: reflects every ping until `stop`. An error opening the
/// backend goes to `ready` (the run reports it).
fn ponger(
    pair: &Pair<'_>,
    backend: LatBackend,
    mode: LatMode,
    cpu: usize,
    ready: mpsc::Sender<anyhow::Result<()>>,
    stop: &AtomicBool,
) -> anyhow::Result<u64> {
    let opened = pin_to_cpu(cpu).and_then(|()| open_side(&pair.ponger.ifname, backend, mode));
    let mut b = match opened {
        Ok(b) => b,
        Err(e) => {
            // If nobody waits any more, the run has given up already.
            let _ = ready.send(Err(e));
            return Ok(0);
        }
    };
    if ready.send(Ok(())).is_err() {
        return Ok(0);
    }
    let (ping_ip, pong_ip) = (pair.pinger.ip, pair.ponger.ip);
    let mut reflected = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let r = b.forward_batch(64, |f| ping_of(f, ping_ip, pong_ip).is_some() && reflect(f))?;
        reflected += r.tx as u64;
        if r.rx == 0 && mode == LatMode::Interrupt {
            b.wait(50)?;
        }
    }
    Ok(reflected)
}

/// Queues one ping with `tx_batch`, the send time taken as the frame is
/// written. A full TX ring is flushed (completions reaped) and tried again.
fn send_ping(b: &mut Backend, spec: &UdpFrame, seq: u32, len: usize) -> anyhow::Result<()> {
    for _ in 0..100 {
        let mut too_long = false;
        let n = b.tx_batch(1, |buf| {
            let mut payload = [0u8; Ping::LEN];
            Ping {
                seq,
                sent_ns: now_ns(),
            }
            .encode(&mut payload);
            let n = spec.emit(&payload, len, buf).ok();
            too_long = n.is_none();
            n
        })?;
        if too_long {
            bail!("a {len}-byte ping does not fit a TX slot");
        }
        if n == 1 {
            return Ok(());
        }
        b.flush()?;
    }
    bail!("the pinger's TX ring stays full: the kernel does not complete its sends")
}

/// The pinger: `warmup + count` pings, one at a time.
fn pinger(
    pair: &Pair<'_>,
    backend: LatBackend,
    mode: LatMode,
    a: &Latency,
    stop: &AtomicBool,
) -> anyhow::Result<RunResult> {
    pin_to_cpu(a.ping_cpu)?;
    let mut b = open_side(&pair.pinger.ifname, backend, mode)?;
    let (ping_ip, pong_ip) = (pair.pinger.ip, pair.ponger.ip);
    let spec = UdpFrame {
        src_mac: pair.pinger.mac,
        dst_mac: pair.ponger.mac,
        src_ip: ping_ip,
        dst_ip: pong_ip,
        src_port: PING_PORT,
        dst_port: PING_PORT,
    };
    let frame_len = (a.size - 4) as usize;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)
        .context("creating the histogram")?;
    let timeout = Duration::from_millis(a.timeout_ms);
    let (mut sent, mut answered, mut lost) = (0u64, 0u64, 0u64);
    let total = a.warmup as u64 + a.count as u64;
    for i in 0..total {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let measured = i >= a.warmup as u64;
        let seq = i as u32;
        send_ping(&mut b, &spec, seq, frame_len)?;
        if measured {
            sent += 1;
        }
        let deadline = Instant::now() + timeout;
        let mut rtt = None;
        loop {
            let n = b.rx_batch(64, |f| {
                let t = now_ns();
                // Only the pong of this ping: not a late one, not an ICMP
                // error, not anything else the link carries.
                if let Some(pong) = ping_of(f, pong_ip, ping_ip) {
                    if pong.seq == seq {
                        rtt = Some(t.saturating_sub(pong.sent_ns).max(1));
                    }
                }
            })?;
            if rtt.is_some() {
                break;
            }
            if n > 0 {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if mode == LatMode::Interrupt {
                let ms = (deadline - now).as_millis().clamp(1, 100) as i32;
                b.wait(ms)?;
            }
        }
        if measured {
            match rtt {
                Some(ns) => {
                    answered += 1;
                    hist.record(ns).context("recording a round trip")?;
                }
                None => lost += 1,
            }
        }
    }
    Ok(RunResult {
        hist,
        sent,
        answered,
        lost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const RX: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn ping_frame(seq: u32, t: u64) -> Vec<u8> {
        let spec = pktio::wire::UdpFrame {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: GEN,
            dst_ip: RX,
            src_port: PING_PORT,
            dst_port: PING_PORT,
        };
        let mut p = [0u8; Ping::LEN];
        Ping { seq, sent_ns: t }.encode(&mut p);
        let mut out = vec![0u8; 60];
        spec.emit(&p, 60, &mut out).unwrap();
        out
    }

    #[test]
    fn ping_round_trips_through_the_payload() {
        let f = ping_frame(42, 123_456_789);
        assert_eq!(
            ping_of(&f, GEN, RX),
            Some(Ping {
                seq: 42,
                sent_ns: 123_456_789
            })
        );
        let mut other = f.clone();
        other[42] ^= 0xff; // magic broken
        assert_eq!(ping_of(&other, GEN, RX), None);
        assert_eq!(ping_of(&f[..30], GEN, RX), None);
        // A ping is not a pong: the pinger would count its own ping if it
        // saw it (AF_PACKET without PACKET_IGNORE_OUTGOING).
        assert_eq!(ping_of(&f, RX, GEN), None);
        let mut port = f.clone();
        port[37] ^= 1; // UDP destination port 7006
        assert_eq!(ping_of(&port, GEN, RX), None);
        let mut icmp = f.clone();
        icmp[23] = 1; // an ICMP error quoting the ping is not a ping
        assert_eq!(ping_of(&icmp, GEN, RX), None);
    }

    #[test]
    fn reflect_swaps_every_address_and_keeps_the_payload() {
        let f = ping_frame(7, 9);
        let mut g = f.clone();
        assert!(reflect(&mut g));
        assert_eq!(&g[0..6], &f[6..12]);
        assert_eq!(&g[6..12], &f[0..6]);
        assert_eq!(&g[26..30], &f[30..34]);
        assert_eq!(&g[30..34], &f[26..30]);
        assert_eq!(&g[34..36], &f[36..38]);
        assert_eq!(&g[36..38], &f[34..36]);
        assert_eq!(&g[38..], &f[38..]);
        assert_eq!(ping_of(&g, RX, GEN).map(|p| p.seq), Some(7));
        assert_eq!(ping_of(&g, GEN, RX), None);
        // Twice is the identity.
        assert!(reflect(&mut g));
        assert_eq!(g, f);
        assert!(!reflect(&mut [0u8; 20]));
    }

    /// A backend this host cannot run is a row's "unsupported"; anything
    /// else fails the command.
    #[test]
    fn io_uring_switched_off_is_unsupported_not_a_failure() {
        use pktio::backend::BackendError;
        use pktio::uring::{UringCause, UringError};
        let off = BackendError::Uring(UringError::Unavailable {
            cause: UringCause::DisabledBySysctl { value: 2 },
            source: pktio::SysError {
                call: "io_uring_setup",
                source: std::io::Error::from_raw_os_error(libc::EPERM),
            },
        });
        let e = anyhow::Error::from(off).context("uring on pr1x0");
        match classify(e) {
            CellError::Unsupported(why) => assert!(why.contains("io_uring_disabled"), "{why}"),
            CellError::Failed(e) => panic!("failed instead of unsupported: {e:#}"),
        }
        let e = anyhow::Error::from(BackendError::Config("batch must be at least 1".into()));
        assert!(matches!(classify(e), CellError::Failed(_)));
    }

    #[test]
    fn summary_reads_the_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap();
        }
        let s = summary_us(&h);
        assert_eq!(h.len(), 1000);
        assert!((s[0] - 1.0).abs() < 0.01, "{s:?}");
        assert!((s[1] - 500.0).abs() < 1.0, "{s:?}");
        assert!((s[2] - 990.0).abs() < 1.0, "{s:?}");
        assert!((s[4] - 1000.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn every_backend_of_bench_is_measured_under_the_same_name() {
        let names: Vec<_> = LatBackend::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(names, ["xdp", "xdp-skb", "v2", "v3", "uring"]);
        assert!(!LatBackend::Xdp.needs_gro());
        assert!(LatBackend::ALL[1..].iter().all(|b| b.needs_gro()));
    }
}
