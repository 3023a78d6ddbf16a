//! `pktio latency`: ping/pong round trips between the lab's two
//! namespaces, one ping in flight at a time, with an HDR histogram of the
//! round-trip times per backend and wakeup mode.
//!
//! The pinger (gen end, its own CPU) writes a sequence number and a
//! `CLOCK_MONOTONIC` send time into each ping's payload and sends it; the
//! ponger (rx end, the other CPU) swaps the Ethernet, IPv4 and UDP source
//! and destination and sends it straight back from the frame it received
//! in (no copy). The pinger takes the round trip from the payload's send
//! time when the matching pong arrives. A ping with no answer within the
//! timeout is lost; a late answer to an earlier ping is ignored.
//!
//! Wakeup modes:
//! - `busy-poll`: both sides spin on their rings and kick the kernel
//!   themselves (`SO_PREFER_BUSY_POLL` / `SO_BUSY_POLL` set, so the kicks
//!   drive the device's NAPI where it has one);
//! - `interrupt`: both sides block in `poll(2)` until a packet is readable.
//!
//! The histogram (`hdrhistogram`, 3 significant digits, 1 ns .. 10 s)
//! holds exactly the answered pings of the measured part of a run (the
//! warm-up pings are left out of both).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use pktio::xdp::{AttachMode, BindMode, BusyPoll, Frame, Umem, UmemConfig, XskSocket};
use pktio_lab::Lab;

use crate::report::{Cell, Environment, Labels, Report};
use crate::run::pin_to_cpu;

/// UDP port of the pings (marks them; everything else is left alone).
const PING_PORT: u16 = 7007;
/// First payload word of a ping.
const MAGIC: u32 = 0x7069_6e67;

/// Arguments of `pktio latency`.
#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// Backends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = LatBackend::ALL)]
    backends: Vec<LatBackend>,
    /// Wakeup modes to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = LatMode::ALL)]
    modes: Vec<LatMode>,
    /// Pings measured per run (after the warm-up).
    #[arg(long, default_value_t = 10_000)]
    count: u32,
    /// Pings sent first and not measured.
    #[arg(long, default_value_t = 200)]
    warmup: u32,
    /// Runs per cell; the table shows the median and min–max over runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Frame size in bytes on the wire (FCS included: 64 sends 60-byte frames).
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Milliseconds to wait for a pong before counting the ping lost.
    #[arg(long, default_value_t = 200)]
    timeout_ms: u64,
    /// CPU of the pinger.
    #[arg(long, default_value_t = 0)]
    ping_cpu: usize,
    /// CPU of the ponger.
    #[arg(long, default_value_t = 1)]
    pong_cpu: usize,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a grouped bar chart (p50 and p99 in µs) as SVG to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// A backend as `pktio latency` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatBackend {
    /// AF_XDP copy mode, program in driver (native) mode.
    Xdp,
    /// AF_XDP copy mode, program in skb (generic) mode.
    XdpSkb,
}

impl LatBackend {
    const ALL: [LatBackend; 2] = [LatBackend::Xdp, LatBackend::XdpSkb];

    fn name(self) -> &'static str {
        match self {
            LatBackend::Xdp => "xdp",
            LatBackend::XdpSkb => "xdp-skb",
        }
    }

    fn attach(self) -> AttachMode {
        match self {
            LatBackend::Xdp => AttachMode::Driver,
            LatBackend::XdpSkb => AttachMode::Skb,
        }
    }
}

/// How each side waits for packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatMode {
    /// Spin on the rings (with kernel busy polling where the device has NAPI).
    BusyPoll,
    /// Block in poll(2) until readable.
    Interrupt,
}

impl LatMode {
    const ALL: [LatMode; 2] = [LatMode::BusyPoll, LatMode::Interrupt];

    fn name(self) -> &'static str {
        match self {
            LatMode::BusyPoll => "busy-poll",
            LatMode::Interrupt => "interrupt",
        }
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

/// The ping carried by an Ethernet/IPv4/UDP frame to [`PING_PORT`], if any.
fn ping_of(frame: &[u8]) -> Option<Ping> {
    let v = pktio::wire::parse_udp(frame)?;
    if v.dst_port != PING_PORT && v.src_port != PING_PORT {
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

/// Runs `pktio latency`.
pub fn run(a: LatencyArgs) -> anyhow::Result<ExitCode> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if !(64..=1518).contains(&a.size) {
        bail!(
            "frame size {} is outside 64..=1518 (bytes on the wire, FCS included)",
            a.size
        );
    }
    if a.timeout_ms == 0 || a.timeout_ms > 60_000 {
        bail!("--timeout-ms must be between 1 and 60000");
    }
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    for c in [a.ping_cpu, a.pong_cpu] {
        if c >= ncpu {
            bail!("CPU {c} does not exist: this host has CPUs 0..{}", ncpu - 1);
        }
    }
    let lab = Lab::new()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let stop = crate::run::stop_flag();

    let mut env = Environment::detect();
    env.cores.insert("pinger".into(), vec![a.ping_cpu]);
    env.cores.insert("ponger".into(), vec![a.pong_cpu]);
    env.set("driver", "veth");
    env.set("bind", "copy");
    env.set("size", format!("{} B", a.size));
    env.set("pings", a.count.to_string());
    env.set("warmup", a.warmup.to_string());
    env.set("timeout", format!("{} ms", a.timeout_ms));
    env.set("clock", "CLOCK_MONOTONIC in the payload");
    let mut report = Report::new(
        "pktio latency: round trips in the veth lab (µs)",
        env,
        &["backend", "mode"],
    );
    report.notes.push(
        "AF_PACKET and io_uring backends are not measured: the library has no such backend yet"
            .into(),
    );

    for &backend in &a.backends {
        for &mode in &a.modes {
            let labels = Labels::new([("backend", backend.name()), ("mode", mode.name())]);
            let mut cols: [Vec<f64>; 5] = Default::default();
            let (mut sent, mut answered, mut lost, mut samples) = (vec![], vec![], vec![], vec![]);
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
                let res = measure(&lab, backend, mode, &a, &stop)
                    .with_context(|| format!("{} {}", backend.name(), mode.name()))?;
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
    super::bench::emit_report(
        &mut report,
        stop.load(Ordering::Relaxed),
        a.markdown,
        None,
        a.json.as_deref(),
        a.svg.as_deref().map(|p| (p, "p50", &["mode"][..])),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A socket for one side: copy mode, rx and tx rings, its own program.
fn side_socket<'u>(
    umem: &'u Umem,
    ifname: &str,
    backend: LatBackend,
    mode: LatMode,
) -> anyhow::Result<XskSocket<'u>> {
    let mut b = XskSocket::builder(ifname)
        .rx_size(512)
        .tx_size(512)
        .bind_mode(BindMode::Copy)
        .attach_mode(backend.attach());
    if mode == LatMode::BusyPoll {
        b = b.busy_poll(Some(BusyPoll::default()));
    }
    // The queue stays busy for a few ms after the previous run's socket
    // closed (deferred release): retry EBUSY for up to a second.
    let mut tries = 0;
    let mut s = loop {
        match b.clone().build(umem) {
            Ok(s) => break s,
            Err(pktio::xdp::XskError::Sys { source, .. })
                if source.errno() == Some(libc::EBUSY) && tries < 50 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).with_context(|| format!("AF_XDP socket on {ifname}")),
        }
    };
    s.fill_from_pool(umem.frame_count() / 2)?;
    Ok(s)
}

fn small_umem() -> UmemConfig {
    UmemConfig {
        frame_size: 2048,
        frame_count: 2048,
        ..Default::default()
    }
}

/// Waits until `sock` has packets: spins (kicking) or blocks in poll(2).
/// Returns false when `deadline` passed first.
fn wait_rx(sock: &mut XskSocket<'_>, mode: LatMode, deadline: Instant) -> anyhow::Result<bool> {
    loop {
        if sock.rx().map_or(0, |r| r.pending()) > 0 {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        match mode {
            LatMode::BusyPoll => {
                sock.wake_rx()?;
            }
            LatMode::Interrupt => {
                let ms = (deadline - now).as_millis().clamp(1, 100) as i32;
                sock.poll_rx(ms)?;
            }
        }
    }
}

/// The ponger: reflects every ping until `stop`.
fn ponger(
    lab: &Lab,
    backend: LatBackend,
    mode: LatMode,
    cpu: usize,
    ready: mpsc::Sender<anyhow::Result<()>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    pin_to_cpu(cpu)?;
    let umem = Umem::new(small_umem())?;
    let mut sock = match side_socket(&umem, lab.rx().ifname(), backend, mode) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("{e:#}")));
            return Err(e);
        }
    };
    let _ = ready.send(Ok(()));
    let mut reflected = 0u64;
    let mut drop_back: Vec<Frame<'_>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if !wait_rx(&mut sock, mode, Instant::now() + Duration::from_millis(50))? {
            continue;
        }
        let p = sock.parts();
        let (rx, tx, fill, comp) = match (p.rx, p.tx, p.fill, p.completion) {
            (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
            _ => bail!("the ponger socket lacks a ring"),
        };
        comp.recycle_into(fill, u32::MAX);
        let mut batch = tx.reserve(64);
        for mut f in rx.receive(batch.remaining()) {
            if ping_of(f.data()).is_some() && reflect(f.data_mut()) {
                if let Err(f) = batch.push(f) {
                    drop_back.push(f);
                }
                reflected += 1;
            } else {
                drop_back.push(f);
            }
        }
        batch.commit();
        fill.fill_from(&mut drop_back);
        drop_back.clear();
        sock.kick_tx()?;
    }
    Ok(reflected)
}

/// One run: a ponger on rx, the pinger here on gen.
fn measure(
    lab: &Lab,
    backend: LatBackend,
    mode: LatMode,
    a: &LatencyArgs,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<RunResult> {
    let pong_stop = Arc::new(AtomicBool::new(false));
    let (tx_ready, rx_ready) = mpsc::channel();
    let pong = {
        let (ps, cpu) = (pong_stop.clone(), a.pong_cpu);
        std::thread::scope(|s| -> anyhow::Result<RunResult> {
            let h = s.spawn(|| {
                lab.rx()
                    .try_run(|| ponger(lab, backend, mode, cpu, tx_ready, ps))
                    .map_err(anyhow::Error::from)?
            });
            let ready = rx_ready
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| anyhow::anyhow!("the ponger did not start"))
                .and_then(|r| r);
            let result = match ready {
                Ok(()) => lab
                    .gen()
                    .try_run(|| pinger(lab, backend, mode, a, stop))
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r),
                Err(e) => Err(e),
            };
            pong_stop.store(true, Ordering::SeqCst);
            let reflected = h
                .join()
                .map_err(|_| anyhow::anyhow!("the ponger thread panicked"))?;
            let r = result?;
            let reflected = reflected?;
            if reflected < r.answered {
                bail!(
                    "more pongs ({}) than pings reflected ({reflected})",
                    r.answered
                );
            }
            Ok(r)
        })
    };
    pong
}

/// The pinger: `warmup + count` pings, one at a time.
fn pinger(
    lab: &Lab,
    backend: LatBackend,
    mode: LatMode,
    a: &LatencyArgs,
    stop: &AtomicBool,
) -> anyhow::Result<RunResult> {
    pin_to_cpu(a.ping_cpu)?;
    let umem = Umem::new(small_umem())?;
    let mut sock = side_socket(&umem, lab.gen().ifname(), backend, mode)?;
    let spec = pktio::wire::UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: PING_PORT,
        dst_port: PING_PORT,
    };
    let frame_len = (a.size - 4) as usize;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)
        .context("creating the histogram")?;
    let timeout = Duration::from_millis(a.timeout_ms);
    let (mut sent, mut answered, mut lost) = (0u64, 0u64, 0u64);
    let mut back: Vec<Frame<'_>> = Vec::new();
    let total = a.warmup as u64 + a.count as u64;
    for seq in 0..total {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let measured = seq >= a.warmup as u64;
        sock.completion().map(|c| c.reap(u32::MAX));
        let Some(mut f) = umem.alloc() else {
            bail!("the pinger's UMEM ran out of frames");
        };
        let mut payload = [0u8; Ping::LEN];
        Ping {
            seq: seq as u32,
            sent_ns: now_ns(),
        }
        .encode(&mut payload);
        let n = spec
            .emit(&payload, frame_len, f.buffer_mut())
            .map_err(|_| anyhow::anyhow!("a {frame_len}-byte ping does not fit a frame"))?;
        let _ = f.set_len(n as u32);
        {
            let Some(tx) = sock.tx() else {
                bail!("the pinger socket has no TX ring")
            };
            let mut b = tx.reserve(1);
            if b.push(f).is_err() {
                bail!("the pinger's TX ring is full");
            }
            b.commit();
        }
        sock.kick_tx()?;
        if measured {
            sent += 1;
        }
        let deadline = Instant::now() + timeout;
        let mut got = false;
        while !got && wait_rx(&mut sock, mode, deadline)? {
            let p = sock.parts();
            let (Some(rx), Some(fill)) = (p.rx, p.fill) else {
                bail!("the pinger socket lacks a ring");
            };
            for f in rx.receive(64) {
                let t = now_ns();
                if let Some(pong) = ping_of(f.data()) {
                    if pong.seq == seq as u32 {
                        got = true;
                        if measured {
                            answered += 1;
                            hist.record(t.saturating_sub(pong.sent_ns).max(1))
                                .context("recording a round trip")?;
                        }
                    }
                }
                back.push(f);
            }
            fill.fill_from(&mut back);
            back.clear();
        }
        if !got && measured {
            lost += 1;
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

    fn ping_frame(seq: u32, t: u64) -> Vec<u8> {
        let spec = pktio::wire::UdpFrame {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: std::net::Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: std::net::Ipv4Addr::new(198, 18, 0, 2),
            src_port: 5555,
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
            ping_of(&f),
            Some(Ping {
                seq: 42,
                sent_ns: 123_456_789
            })
        );
        let mut other = f.clone();
        other[42] ^= 0xff; // magic broken
        assert_eq!(ping_of(&other), None);
        assert_eq!(ping_of(&f[..30]), None);
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
        assert_eq!(ping_of(&g).map(|p| p.seq), Some(7));
        // Twice is the identity.
        assert!(reflect(&mut g));
        assert_eq!(g, f);
        assert!(!reflect(&mut [0u8; 20]));
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
}
