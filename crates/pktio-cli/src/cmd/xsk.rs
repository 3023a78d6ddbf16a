//! `pktio rxdrop | txpush | l2fwd`: the seed's three benchmarks as commands,
//! on any backend (`--backend auto|xdp|xdp-skb|v3|v2|uring`), with
//! xdpsock-like flags and live per-second statistics. The loops are written
//! once against [`PacketIo`].
//!
//! Each runs on a real interface (`-i IF`), or with `--lab` in a throw-away
//! lab of two network namespaces joined by a veth pair: pktio then also runs
//! the traffic generator (in the `gen` namespace, on its own CPU) and counts
//! at the far end.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::backend::{
    Backend, BackendConfig, BackendError, BackendKind, BackendStats, Direction, PacketIo,
};
use pktio::wire::{swap_macs, UdpFrame};
use pktio::xdp::{Accounting, AttachMode, BindMode, BusyPoll};

use crate::run::{fmt_pps, pin_to_cpu, stop_flag, LoopProbe, Meter};

/// Flags shared by rxdrop, txpush and l2fwd (named as in xdpsock).
#[derive(Debug, Clone, clap::Args)]
pub struct XskOpts {
    /// Packet I/O backend: auto walks AF_XDP zero-copy → AF_XDP copy (native
    /// attach) → AF_XDP copy (skb attach) → AF_PACKET V3 → io_uring and says
    /// why it skipped each step.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,
    /// Interface to bind to (not with --lab).
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    pub interface: Option<String>,
    /// Queue id to bind to.
    #[arg(short = 'q', long, default_value_t = 0)]
    pub queue: u32,
    /// Force copy mode.
    #[arg(short = 'c', long, conflicts_with = "zero_copy")]
    pub copy: bool,
    /// Require zero-copy mode (fail if the driver cannot).
    #[arg(short = 'z', long)]
    pub zero_copy: bool,
    /// Attach the XDP program in generic (skb) mode.
    #[arg(short = 'S', long, conflicts_with = "native")]
    pub skb: bool,
    /// Attach the XDP program in native (driver) mode only.
    #[arg(short = 'N', long)]
    pub native: bool,
    /// Packets per batch (ring operations work on batches).
    #[arg(short = 'b', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// UMEM frame size in bytes.
    #[arg(short = 'f', long, default_value_t = 4096, value_parser = frame_size)]
    pub frame_size: u32,
    /// UMEM frames.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub frames: u32,
    /// AF_XDP RX and TX ring entries (a power of two from 64 to 65536).
    #[arg(long, default_value_t = 2048, value_parser = crate::args::parse_ring_size)]
    pub ring_size: u32,
    /// Busy polling: SO_PREFER_BUSY_POLL with this many microseconds (20 if
    /// no value; 1 to 1000000).
    #[arg(short = 'B', long, value_name = "USECS", num_args = 0..=1, default_missing_value = "20",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub busy_poll: Option<u32>,
    /// Busy-poll budget (packets per busy-poll call, 1 to 65535).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub busy_poll_budget: u32,
    /// Sleep in poll() when idle instead of spinning.
    #[arg(short = 'p', long)]
    pub poll: bool,
    /// Turn XDP_USE_NEED_WAKEUP off (kick on every batch).
    #[arg(long)]
    pub no_need_wakeup: bool,
    /// AF_XDP multi-buffer (jumbo frames; kernel 6.6): bind with XDP_USE_SG
    /// and steer with a frags-aware program, so frames larger than one UMEM
    /// frame arrive (and are sent) as one packet of several frames.
    #[arg(long)]
    pub multi_buffer: bool,
    /// Stop after this many seconds, 0.001 to 31536000 (default: at Ctrl-C;
    /// 5 with --lab).
    #[arg(short = 'd', long, value_name = "SECONDS", value_parser = crate::args::parse_seconds)]
    pub duration: Option<f64>,
    /// Pin the packet loop to this CPU (with --lab: default 1).
    #[arg(long, value_parser = crate::args::parse_cpu)]
    pub cpu: Option<usize>,
    /// Print only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse::<BackendKind>()
        .map_err(|_| format!("{s:?} is not a backend: use auto, xdp, xdp-skb, v3, v2 or uring"))
}

fn frame_size(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v @ (2048 | 4096)) => Ok(v),
        _ => Err(format!(
            "{s} is not a frame size pktio supports: use 2048 or 4096"
        )),
    }
}

/// Running in the lab.
#[derive(Debug, Clone, clap::Args)]
pub struct LabOpts {
    /// Build a throw-away lab (two namespaces and a veth pair), generate the
    /// traffic in it, and remove it at the end.
    #[arg(long)]
    pub lab: bool,
    /// CPU of the lab's traffic generator.
    #[arg(long, default_value_t = 0, requires = "lab", value_parser = crate::args::parse_cpu)]
    pub gen_cpu: usize,
    /// The lab's traffic generator engine: auto (the fastest this host
    /// allows: live, then xsk, packet, raw), or one by name.
    #[arg(long, value_enum, default_value = "auto", requires = "lab")]
    pub generator: crate::gen::Engine,
}

/// Consent to run on an interface that pktio did not build.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConsentOpts {
    /// Allow running on an interface outside a pktio lab: rxdrop and l2fwd
    /// take every packet arriving on the queue away from the host (its
    /// connections on that queue stop) and txpush and l2fwd send frames
    /// onto the wire. Not needed with --lab, or in a lab of `pktio lab up`.
    #[arg(long)]
    pub take_over: bool,
}

/// Arguments of `pktio rxdrop`.
#[derive(Debug, clap::Args)]
pub struct RxdropArgs {
    #[command(flatten)]
    xsk: XskOpts,
    #[command(flatten)]
    lab: LabOpts,
    #[command(flatten)]
    consent: ConsentOpts,
}

/// Arguments of `pktio txpush`.
#[derive(Debug, clap::Args)]
pub struct TxpushArgs {
    #[command(flatten)]
    xsk: XskOpts,
    #[command(flatten)]
    lab: LabOpts,
    #[command(flatten)]
    frame: FrameOpts,
    #[command(flatten)]
    consent: ConsentOpts,
}

/// Arguments of `pktio l2fwd`.
#[derive(Debug, clap::Args)]
pub struct L2fwdArgs {
    #[command(flatten)]
    xsk: XskOpts,
    #[command(flatten)]
    lab: LabOpts,
    #[command(flatten)]
    consent: ConsentOpts,
    /// Reflect every frame. Without it l2fwd sends back only IPv4 frames
    /// whose source and destination are in 198.18.0.0/15, and IPv6 frames
    /// in 2001:2::/48 (the benchmarking ranges), and drops and counts the
    /// others.
    #[arg(long)]
    reflect_any: bool,
}

/// The frames txpush sends.
#[derive(Debug, Clone, clap::Args)]
pub struct FrameOpts {
    /// Frame length without FCS (60 gives 64 bytes on the wire).
    #[arg(short = 's', long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(42..=4000))]
    pub size: u32,
    #[command(flatten)]
    pub addr: AddrOpts,
}

/// Addresses of generated frames (defaults: the lab's, `pktio lab up`).
#[derive(Debug, Clone, clap::Args)]
pub struct AddrOpts {
    /// Source MAC (with --lab: the gen end's).
    #[arg(long, value_parser = parse_mac, default_value = "02:00:c6:12:00:01")]
    pub src_mac: [u8; 6],
    /// Destination MAC (with --lab: the rx end's).
    #[arg(long, value_parser = parse_mac, default_value = "02:00:c6:12:00:02")]
    pub dst_mac: [u8; 6],
    /// Source IPv4 address (in 198.18.0.0/15, the benchmarking range).
    #[arg(long, default_value = "198.18.0.1", value_parser = parse_bench_ip)]
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address (must be in 198.18.0.0/15, the benchmarking range).
    #[arg(long, default_value = "198.18.0.2", value_parser = parse_bench_ip)]
    pub dst_ip: Ipv4Addr,
    /// UDP destination port.
    #[arg(long, default_value_t = 9)]
    pub dst_port: u16,
    /// Allow a broadcast or multicast --dst-mac (every host on the link
    /// receives such frames).
    #[arg(long)]
    pub allow_broadcast: bool,
}

impl AddrOpts {
    /// Refuses addresses pktio must not send to unless asked by name.
    ///
    /// # Errors
    /// What is wrong, for a usage error.
    pub fn check(&self) -> Result<(), String> {
        if self.dst_mac[0] & 1 == 1 && !self.allow_broadcast {
            let kind = if self.dst_mac == [0xff; 6] {
                "broadcast"
            } else {
                "multicast"
            };
            return Err(format!(
                "--dst-mac {}: a {kind} address, which every host on the link receives; \
                 give one host's MAC, or add --allow-broadcast if that is what you want",
                pktio_lab::fmt_mac(&self.dst_mac)
            ));
        }
        Ok(())
    }

    /// The defaults: the persistent lab's addresses (`pktio lab up`).
    pub fn lab_defaults() -> AddrOpts {
        AddrOpts {
            src_mac: [0x02, 0, 0xc6, 0x12, 0, 0x01],
            dst_mac: [0x02, 0, 0xc6, 0x12, 0, 0x02],
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            dst_port: 9,
            allow_broadcast: false,
        }
    }

    /// The UDP frame these addresses describe (source port 9).
    pub fn udp_frame(&self) -> UdpFrame {
        UdpFrame {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            src_port: 9,
            dst_port: self.dst_port,
        }
    }
}

/// The kernel's headroom in front of every AF_XDP frame's data.
const XDP_PACKET_HEADROOM: u32 = 256;

/// Refuses frames of `size` bytes (without FCS) that `ifname` cannot carry:
/// longer than its MTU plus the 14-byte Ethernet header. (An AF_PACKET TX
/// ring marks each such frame wrong and goes on, ~0.7 ms apiece; a socket
/// or AF_XDP in copy mode drops it.) An MTU that cannot be read leaves the
/// check to the open, which names a missing interface.
pub(crate) fn check_fits_mtu(ifname: &str, size: u32) -> anyhow::Result<()> {
    let Ok(mtu) = pktio::packet::interface_mtu(ifname) else {
        return Ok(());
    };
    let max = mtu.saturating_add(14);
    anyhow::ensure!(
        size <= max,
        "-s {size}: {ifname} has MTU {mtu}, so it carries frames of up to {max} bytes \
         (without FCS); use -s {max} or less, or raise its MTU (ip link set {ifname} mtu N)"
    );
    Ok(())
}

/// The index of `ifname` in this network namespace, with a clear error.
pub fn ifindex(ifname: &str) -> anyhow::Result<u32> {
    use rustix::net::{socket, AddressFamily, SocketType};
    let sock = socket(AddressFamily::INET, SocketType::DGRAM, None).context("socket(AF_INET)")?;
    rustix::net::netdevice::name_to_index(&sock, ifname)
        .with_context(|| format!("interface {ifname:?} not found: check the name with `ip link`"))
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut m = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address like 02:00:c6:12:00:02"));
    }
    for (d, p) in m.iter_mut().zip(parts) {
        *d = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?}: {p:?} is not a hex byte"))?;
    }
    Ok(m)
}

pub(crate) fn parse_bench_ip(s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    pktio_lab::LabAddr::new(ip).map(|a| a.ip()).map_err(|_| {
        format!(
            "{ip} is outside 198.18.0.0/15: pktio generates traffic only to the benchmarking range"
        )
    })
}

impl XskOpts {
    /// Defaults for a TX-only run on `ifname` (the generator's AF_XDP engine).
    pub fn for_tx(ifname: &str, duration: Option<f64>) -> XskOpts {
        XskOpts {
            interface: Some(ifname.to_string()),
            backend: BackendKind::Xdp,
            queue: 0,
            copy: false,
            zero_copy: false,
            skb: false,
            native: false,
            batch: 64,
            frame_size: 4096,
            frames: 4096,
            ring_size: 2048,
            busy_poll: None,
            busy_poll_budget: 64,
            poll: false,
            no_need_wakeup: false,
            multi_buffer: false,
            duration,
            cpu: None,
            quiet: false,
            json: false,
        }
    }

    /// The backend configuration these flags describe, for `mode`.
    pub fn backend_config(&self, ifname: &str, mode: Mode) -> BackendConfig {
        let mut c = BackendConfig::new(ifname);
        c.queue = self.queue;
        c.direction = match mode {
            Mode::Rxdrop => Direction::Rx,
            Mode::Txpush => Direction::Tx,
            Mode::L2fwd => Direction::Both,
        };
        c.frame_size = self.frame_size;
        c.frame_count = self.frames;
        c.ring_size = self.ring_size;
        c.batch = self.batch;
        c.busy_poll = self.busy_poll.map(|usecs| BusyPoll {
            usecs,
            budget: self.busy_poll_budget,
        });
        c.need_wakeup = !self.no_need_wakeup;
        c.multi_buffer = self.multi_buffer;
        // Copy mode sends at most this many frames per sendto() (the
        // kernel's default is 32, then EAGAIN): a whole ring's worth of a
        // batch per call, as the generator does.
        if c.direction.tx() {
            c.tx_skb_budget = Some(crate::gen::XSK_SKB_BUDGET);
        }
        c.xdp_bind = if self.copy {
            BindMode::Copy
        } else if self.zero_copy {
            BindMode::RequireZeroCopy
        } else {
            BindMode::Auto
        };
        c.xdp_attach = if self.skb {
            AttachMode::Skb
        } else if self.native {
            AttachMode::Driver
        } else {
            AttachMode::Auto
        };
        c
    }

    /// Opens the backend chosen with `--backend` (walking the ladder for
    /// `auto`) on `ifname` of the calling thread's network namespace. A
    /// queue still busy from the previous socket is retried for a moment.
    pub fn open(&self, ifname: &str, mode: Mode, quiet: bool) -> anyhow::Result<Backend> {
        self.open_config(&self.backend_config(ifname, mode), mode, quiet)
    }

    /// [`open`](Self::open) with a configuration the caller adjusted (from
    /// [`backend_config`](Self::backend_config)); `mode` names the loop in
    /// the messages.
    pub(crate) fn open_config(
        &self,
        cfg: &BackendConfig,
        mode: Mode,
        quiet: bool,
    ) -> anyhow::Result<Backend> {
        let give_up = Instant::now() + Duration::from_secs(2);
        loop {
            let r = match self.backend {
                BackendKind::Auto => Backend::auto(cfg),
                k => Backend::open(k, cfg).map(|b| (b, Vec::new())),
            };
            match r {
                Err(e) if e.errno() == Some(libc::EBUSY) && Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
                Ok((b, skipped)) => {
                    if !quiet {
                        for s in &skipped {
                            eprintln!("{}: skipped {s}", mode.name());
                        }
                        eprintln!("{}: {}", mode.name(), b.describe());
                    }
                    return Ok(b);
                }
            }
        }
    }

    /// Refuses combinations of flags that no run can honour, before
    /// anything is opened: a queue on a backend that cannot bind one, a
    /// frame longer than an AF_XDP frame holds. `frame`: txpush's frames.
    ///
    /// # Errors
    /// What is wrong and what to do instead, for a usage error.
    pub(crate) fn check(&self, frame: Option<&FrameOpts>) -> Result<(), String> {
        let packet_socket = matches!(
            self.backend,
            BackendKind::PacketV2 | BackendKind::PacketV3 | BackendKind::Uring
        );
        if packet_socket && self.queue != 0 {
            return Err(format!(
                "-q {}: the {} backend (AF_PACKET) sees every queue of the interface and cannot \
                 bind one; leave out -q, or use --backend xdp or xdp-skb to take one queue",
                self.queue, self.backend
            ));
        }
        if let Some(f) = frame {
            let may_be_xdp = matches!(
                self.backend,
                BackendKind::Auto | BackendKind::Xdp | BackendKind::XdpSkb
            );
            let per_frame = self.frame_size - XDP_PACKET_HEADROOM;
            if may_be_xdp && !self.multi_buffer && f.size > per_frame {
                return Err(format!(
                    "-s {}: AF_XDP sends at most {per_frame} bytes from a {}-byte UMEM frame \
                     ({} less the kernel's 256-byte XDP_PACKET_HEADROOM); use -s {per_frame} or \
                     less, --multi-buffer (kernel 6.6), or --backend v3, v2 or uring",
                    f.size, self.frame_size, self.frame_size
                ));
            }
            f.addr.check()?;
        }
        Ok(())
    }

    fn deadline(&self, default: Option<f64>) -> anyhow::Result<Option<Instant>> {
        match self.duration.or(default) {
            None => Ok(None),
            Some(d) if d.is_finite() && d > 0.0 && d < 1e7 => {
                Ok(Some(Instant::now() + Duration::from_secs_f64(d)))
            }
            Some(d) => bail!("--duration {d} is not a positive number of seconds"),
        }
    }

    fn interface(&self) -> anyhow::Result<&str> {
        self.interface
            .as_deref()
            .context("give an interface with -i IF, or use --lab to run in a throw-away lab")
    }
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// rxdrop, txpush or l2fwd.
    pub mode: &'static str,
    /// Packets handled by this loop.
    pub packets: u64,
    /// Bytes handled.
    pub bytes: u64,
    /// Seconds the loop ran.
    pub seconds: f64,
    /// Mean rate over the run.
    pub mpps: f64,
    /// Median of the per-second rates.
    pub median_mpps: f64,
    /// CPU time of the loop's thread per packet, in ns.
    pub cpu_ns_per_packet: f64,
    /// The backend and its modes, as text.
    pub socket: String,
    /// The backend's counters at the end.
    #[serde(skip)]
    pub stats: BackendStats,
    /// AF_XDP: frames by place at the end.
    #[serde(skip)]
    pub accounting: Option<Accounting>,
    /// Why the loop stopped early, if it did.
    pub stopped_by: Option<String>,
    /// l2fwd: frames dropped instead of reflected, their addresses outside
    /// the benchmarking ranges ([`in_bench_range`]).
    pub not_reflected: u64,
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The packet loops. Each runs until `stop` is set or `deadline` passes,
/// printing a line per second unless `quiet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Receive and drop: frames go straight back to the fill ring.
    Rxdrop,
    /// Transmit pre-built frames.
    Txpush,
    /// Receive, swap MACs, send back out of the same socket (the RX frame
    /// becomes the TX frame: no copy).
    L2fwd,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Rxdrop => "rxdrop",
            Mode::Txpush => "txpush",
            Mode::L2fwd => "l2fwd",
        }
    }
}

/// One run of a packet loop: what to do and when to stop.
#[derive(Debug, Clone, Copy)]
pub struct LoopSpec<'a> {
    /// rxdrop, txpush or l2fwd.
    pub mode: Mode,
    /// txpush: the frame to send and its length.
    pub frame: Option<(&'a UdpFrame, u32)>,
    /// Set to stop (SIGINT/SIGTERM, the benchmark).
    pub stop: &'a AtomicBool,
    /// Stop at this time.
    pub deadline: Option<Instant>,
    /// No per-second lines.
    pub quiet: bool,
    /// Progress for a watcher on another thread (the benchmark).
    pub probe: Option<&'a LoopProbe>,
    /// Packets per batch.
    pub batch: u32,
    /// Sleep in poll() when idle instead of spinning.
    pub poll: bool,
}

/// The packet loops, written once against [`PacketIo`]: they run the same on
/// AF_XDP, AF_PACKET V2/V3 and io_uring. Each runs until `stop` is set or
/// the deadline passes, or until the backend fails (the interface vanished,
/// the steering program was detached): then it ends with the statistics
/// gathered so far and says why in [`Summary::stopped_by`].
///
/// l2fwd reflects every frame here (the benchmark's loops, in a lab where
/// every frame is the generator's); [`run_loop_scoped`] can keep it to the
/// benchmarking ranges.
pub fn run_loop(b: &mut Backend, spec: &LoopSpec<'_>) -> anyhow::Result<Summary> {
    run_loop_scoped(b, spec, true)
}

/// [`run_loop`]; with `reflect_any` false, l2fwd sends back only frames
/// whose addresses are in the benchmarking ranges ([`in_bench_range`]) and
/// drops and counts the others ([`Summary::not_reflected`]).
pub fn run_loop_scoped(
    b: &mut Backend,
    spec: &LoopSpec<'_>,
    reflect_any: bool,
) -> anyhow::Result<Summary> {
    let mut not_reflected = 0u64;
    let mut meter = Meter::new(Duration::from_secs(1));
    let cpu0 = pktio::host::thread_cpu_time();
    let batch = spec.batch;
    let mut stopped_by = None;
    let mut frame = Vec::new();
    if let Some((f, len)) = spec.frame {
        frame = vec![0u8; len as usize];
        f.emit(b"pktio", len as usize, &mut frame)
            .map_err(|_| anyhow::anyhow!("cannot build a {len}-byte frame"))?;
    }
    if spec.mode == Mode::Txpush && frame.is_empty() {
        bail!("txpush needs a frame");
    }
    // A stop (Ctrl-C, SIGTERM, the deadline) must be seen within
    // 100 ms: the clock is read after every idle turn, and every
    // BUSY_TURNS_PER_CHECK turns while packets flow (a turn is one batch,
    // microseconds); an idle --poll wait is bounded by POLL_WAIT_MS.
    let mut busy_turns: u32 = 0;
    let mut was_idle = true;
    loop {
        busy_turns += 1;
        if was_idle || busy_turns >= BUSY_TURNS_PER_CHECK {
            busy_turns = 0;
            if let Some(p) = spec.probe {
                p.cpu_ns.store(
                    pktio::host::thread_cpu_time().as_nanos() as u64,
                    Ordering::Relaxed,
                );
            }
            let now = Instant::now();
            if spec.stop.load(Ordering::Relaxed) || spec.deadline.is_some_and(|d| now >= d) {
                break;
            }
            if let Some(t) = meter.tick(now) {
                if let Err(e) = b.health() {
                    stopped_by = Some(describe_error(&e));
                    break;
                }
                if !spec.quiet {
                    let s = b.stats().unwrap_or_default();
                    eprintln!(
                        "{:>7.1}s  {:>9}  {:>8.1} Mbit/s  kernel_drops {}  ring_full {}  fill_empty {}  tx_kicks {}",
                        t.at,
                        fmt_pps(t.pps),
                        t.bps / 1e6,
                        s.kernel_drops,
                        s.rx_ring_full,
                        s.fill_ring_empty,
                        s.tx_kicks
                    );
                }
            }
        }
        let step = match spec.mode {
            // Segments, not one slice: a multi-buffer packet is counted
            // once, with all its bytes, and is not copied.
            Mode::Rxdrop => {
                let mut bytes = 0u64;
                b.rx_batch_segments(batch, |segs| {
                    bytes += segs.iter().map(|s| s.len() as u64).sum::<u64>()
                })
                .map(|n| (n, bytes))
            }
            Mode::Txpush => {
                let len = frame.len();
                b.tx_batch(batch, |buf| {
                    // A frame longer than the slot is still asked for: the
                    // backend refuses it (PacketTooLong) and the loop stops
                    // saying so, instead of sending nothing, silently.
                    if let Some(dst) = buf.get_mut(..len) {
                        dst.copy_from_slice(&frame);
                    }
                    Some(len)
                })
                .map(|n| (n, n as u64 * len as u64))
            }
            Mode::L2fwd => {
                let mut bytes = 0u64;
                b.forward_batch(batch, |p| {
                    if !reflect_any && !in_bench_range(p) {
                        not_reflected += 1;
                        return false;
                    }
                    swap_macs(p);
                    bytes += p.len() as u64;
                    true
                })
                .map(|r| (r.tx, bytes))
            }
        };
        let (n, bytes) = match step {
            Ok(x) => x,
            Err(e) => {
                stopped_by = Some(describe_error(&e));
                break;
            }
        };
        meter.add(n as u64, bytes);
        if let Some(p) = spec.probe {
            p.packets.store(meter.packets, Ordering::Relaxed);
        }
        let idle = match spec.mode {
            Mode::Txpush => {
                if n < batch {
                    // TX ring full or frames in flight: reap completions, kick.
                    b.flush().map(|_| false)
                } else {
                    Ok(false)
                }
            }
            _ => Ok(n == 0),
        };
        was_idle = matches!(idle, Ok(true)) || n == 0;
        match idle {
            // An empty ring: the batch call already woke the kernel if it
            // asked; with --poll, sleep until packets come, or until the
            // next look at the stop flag and the deadline is due.
            Ok(true) if spec.poll => {
                if let Err(e) = b.wait(poll_timeout_ms(spec.deadline, Instant::now())) {
                    stopped_by = Some(describe_error(&e));
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                stopped_by = Some(describe_error(&e));
                break;
            }
        }
    }
    let cpu = pktio::host::thread_cpu_time().saturating_sub(cpu0);
    let seconds = meter.elapsed();
    if spec.mode != Mode::Rxdrop {
        // Let what was sent complete, so the accounting sees it home.
        let end = Instant::now() + Duration::from_millis(200);
        while Instant::now() < end
            && b.stats().is_ok_and(|s| s.tx_in_flight > 0)
            && b.flush().is_ok()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let accounting = match b.check_accounting() {
        Ok(a) => a,
        Err(e) if cfg!(debug_assertions) => bail!("frame accounting broken: {e}"),
        Err(e) => {
            eprintln!("pktio: warning: {e}");
            b.accounting()
        }
    };
    Ok(Summary {
        mode: spec.mode.name(),
        packets: meter.packets,
        bytes: meter.bytes,
        seconds,
        mpps: meter.mean_pps() / 1e6,
        median_mpps: median(&meter.rates) / 1e6,
        cpu_ns_per_packet: if meter.packets > 0 {
            cpu.as_nanos() as f64 / meter.packets as f64
        } else {
            0.0
        },
        socket: b.describe().to_string(),
        stats: b.stats().unwrap_or_default(),
        accounting,
        stopped_by,
        not_reflected,
    })
}

/// Whether `frame` (Ethernet, at most one VLAN tag) is IPv4 with source and
/// destination in 198.18.0.0/15, or IPv6 with both in 2001:2::/48: the
/// benchmarking ranges (RFC 2544, RFC 5180), the only frames l2fwd sends
/// back unless told otherwise. Anything else (other protocols, truncated
/// headers) is not.
pub fn in_bench_range(frame: &[u8]) -> bool {
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (mut ethertype, mut ip) = (be16(12), 14);
    if matches!(ethertype, Some(0x8100 | 0x88a8)) {
        (ethertype, ip) = (be16(16), 18);
    }
    let v4 = |a: &[u8]| a[0] == 198 && a[1] & 0xfe == 18;
    let v6 = |a: &[u8]| a[..6] == [0x20, 0x01, 0x00, 0x02, 0x00, 0x00];
    match ethertype {
        Some(0x0800) => match (frame.get(ip + 12..ip + 16), frame.get(ip + 16..ip + 20)) {
            (Some(src), Some(dst)) => v4(src) && v4(dst),
            _ => false,
        },
        Some(0x86dd) => match (frame.get(ip + 8..ip + 24), frame.get(ip + 24..ip + 40)) {
            (Some(src), Some(dst)) => v6(src) && v6(dst),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `ifname` is the veth of a pktio lab: the calling thread's
/// network namespace holds only loopback and this veth, which has an
/// address in 198.18.0.0/15 (what `Lab` and `pktio lab up` build). Anything
/// that cannot be read counts as "no".
pub(crate) fn in_pktio_lab(ifname: &str) -> bool {
    // A dump of this namespace's links: no setns, so it works with the
    // documented capabilities only (no CAP_SYS_ADMIN).
    let Ok(links) = pktio_lab::list_links_here() else {
        return false;
    };
    let only_lab = links
        .iter()
        .all(|l| l.ifname == "lo" || (l.ifname == ifname && l.is_veth()));
    let present = links.iter().any(|l| l.ifname == ifname);
    let in_range = pktio::host::interface_addrs()
        .unwrap_or_default()
        .iter()
        .any(|a| {
            a.name == ifname
                && matches!(a.addr, std::net::IpAddr::V4(v4) if pktio_lab::LabAddr::in_range(v4))
        });
    only_lab && present && in_range
}

/// What a mode does to an interface, in words.
fn takes(mode: Mode, queue: u32) -> String {
    match mode {
        Mode::Rxdrop => format!("take every packet arriving on queue {queue} away from the host"),
        Mode::Txpush => "send generated frames onto its wire".to_string(),
        Mode::L2fwd => format!(
            "take every packet arriving on queue {queue} away from the host and send frames \
             back onto its wire"
        ),
    }
}

/// Consent before touching `ifname`: an interface of a pktio lab needs
/// none; any other needs `--take-over`, and is told about before the run
/// starts. A missing interface is named first.
///
/// # Errors
/// The interface does not exist; without `--take-over` the run ends with
/// a usage error.
pub(crate) fn consent(what: &str, ifname: &str, does: &str, take_over: bool) -> anyhow::Result<()> {
    ifindex(ifname)?;
    if in_pktio_lab(ifname) {
        return Ok(());
    }
    if !take_over {
        crate::args::usage_error(format!(
            "{ifname} is not an interface of a pktio lab: {what} would {does}. Add --take-over \
             if that is what you want; to try pktio without touching a real interface, use --lab \
             (or `pktio lab up`)"
        ));
    }
    eprintln!("{what}: --take-over: will {does} on {ifname} until the run ends");
    Ok(())
}

/// Busy turns (batches) between two looks at the clock and the stop flag.
/// A turn handles at most one batch (≤ 4096 packets, tens of µs), so 16
/// turns stay far below the 100 ms in which a loop must see a stop while the clock costs nothing per
/// packet.
const BUSY_TURNS_PER_CHECK: u32 = 16;

/// The longest idle `poll()` of a `--poll` loop, in ms: half of
/// the 100 ms in which a loop must see a stop (Ctrl-C, SIGTERM, the end of
/// `-d`), since a signal does not interrupt it (the handler runs
/// on its own thread).
const POLL_WAIT_MS: i32 = 50;

/// The idle wait of a `--poll` loop at `now`: [`POLL_WAIT_MS`], or less
/// when the deadline comes sooner (at least 1 ms: 0 would spin).
fn poll_timeout_ms(deadline: Option<Instant>, now: Instant) -> i32 {
    let left = deadline.map_or(u128::MAX, |d| {
        d.saturating_duration_since(now).as_micros().div_ceil(1000)
    });
    left.clamp(1, POLL_WAIT_MS as u128) as i32
}

/// An error as one line: the error, its causes, and the hint if any.
fn describe_error(e: &BackendError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    if let Some(h) = e.hint() {
        s.push_str(&format!(" (hint: {h})"));
    }
    s
}

fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!(
        "{}: {} packets in {:.2} s: {} mean, {} median of per-second rates; {:.1} ns CPU/packet",
        s.mode,
        s.packets,
        s.seconds,
        fmt_pps(s.mpps * 1e6),
        fmt_pps(s.median_mpps * 1e6),
        s.cpu_ns_per_packet
    );
    let k = &s.stats;
    println!(
        "  kernel: drops {} (rx ring full {}, fill ring empty {}), invalid {}, freezes {}",
        k.kernel_drops, k.rx_ring_full, k.fill_ring_empty, k.invalid, k.freezes
    );
    println!(
        "  wakeups: tx {} ({} busy), rx {}; tx ring full {} times",
        k.tx_kicks, k.tx_kick_busy, k.rx_wakeups, k.tx_ring_full
    );
    if let Some(a) = s.accounting {
        println!(
            "  frames: {} free, {} held, {} on the RX path, {} on the TX path, {} unaccounted",
            a.free,
            a.app,
            a.rx_path,
            a.tx_path,
            a.unaccounted()
        );
    }
    if s.not_reflected > 0 {
        println!(
            "  not reflected: {} frames with an address outside 198.18.0.0/15 or 2001:2::/48 \
             (dropped; --reflect-any sends back every frame)",
            s.not_reflected
        );
    }
    if let Some(w) = &s.stopped_by {
        println!("  stopped early: {w}");
    }
    Ok(())
}

fn run_on_interface(
    mode: Mode,
    opts: &XskOpts,
    frame: Option<&FrameOpts>,
    consent_opts: &ConsentOpts,
    reflect_any: bool,
) -> anyhow::Result<ExitCode> {
    let ifname = opts.interface()?;
    consent(
        mode.name(),
        ifname,
        &takes(mode, opts.queue),
        consent_opts.take_over,
    )?;
    if let Some(cpu) = opts.cpu {
        pin_to_cpu(cpu)?;
    }
    let stop = stop_flag();
    let spec = frame.map(|f| (f.addr.udp_frame(), f.size));
    let quiet = opts.quiet || opts.json;
    if let Some(f) = frame {
        check_fits_mtu(ifname, f.size)?;
    }
    let mut b = opts.open(ifname, mode, quiet)?;
    let s = run_loop_scoped(
        &mut b,
        &LoopSpec {
            mode,
            frame: spec.as_ref().map(|(s, l)| (s, *l)),
            stop: &stop,
            deadline: opts.deadline(None)?,
            quiet,
            probe: None,
            batch: opts.batch,
            poll: opts.poll,
        },
        reflect_any,
    )?;
    print_summary(&s, opts.json)?;
    Ok(if s.stopped_by.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `mode` in a throw-away lab: the generator (live frames or AF_XDP) in `gen`,
/// the measured loop in `rx` (rxdrop, l2fwd), or the measured txpush in
/// `gen` with arrivals counted at `rx`.
fn run_in_lab(
    mode: Mode,
    opts: &XskOpts,
    lab_opts: &LabOpts,
    frame: Option<&FrameOpts>,
    reflect_any: bool,
) -> anyhow::Result<ExitCode> {
    if opts.interface.is_some() {
        bail!("--lab builds its own interfaces: drop -i");
    }
    let lab = pktio_lab::Lab::new()
        .context("building the lab (needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN)")?;
    let (gen, rx) = (lab.gen(), lab.rx());
    let size = frame.map_or(60, |f| f.size);
    let spec = UdpFrame {
        src_mac: gen.mac(),
        dst_mac: rx.mac(),
        src_ip: gen.addr().ip(),
        dst_ip: rx.addr().ip(),
        src_port: 9,
        dst_port: 9,
    };
    let stop = stop_flag();
    let deadline = opts.deadline(Some(5.0))?;
    let cpu = opts.cpu.unwrap_or(1);
    let quiet = opts.quiet || opts.json;
    if !quiet {
        eprintln!(
            "lab: {} ({}) -> {} ({}), generator on CPU {}, {} on CPU {}",
            gen.ifname(),
            gen.addr(),
            rx.ifname(),
            rx.addr(),
            lab_opts.gen_cpu,
            mode.name(),
            cpu
        );
    }
    let (measured_host, other) = match mode {
        Mode::Txpush => (gen, rx),
        Mode::Rxdrop | Mode::L2fwd => (rx, gen),
    };
    let before = other.try_stats()?;
    // The live-frame generator sends with XDP_TX (ndo_xdp_xmit): the
    // receiving veth needs a NAPI instance for those frames, which an XDP
    // program gives it; for the backends that attach none, GRO does.
    let stack_rx = matches!(
        opts.backend,
        BackendKind::PacketV2 | BackendKind::PacketV3 | BackendKind::Uring
    );
    if stack_rx && mode != Mode::Txpush {
        rx.set_gro(true)?;
    }
    // txpush: the far end drops what arrives in an XDP program (and counts
    // it), as the bench does. Its stack would answer every frame with an
    // ICMP port unreachable, on the sender's core (veth runs the receive
    // work there): a third of that core went to routing and ICMP.
    let _sink = if mode == Mode::Txpush {
        Some(super::bench::attach_sink(rx, pktio::bpf::XdpAction::Drop)?)
    } else {
        None
    };

    // The generator, for the receive modes.
    let gen_stop = Arc::new(AtomicBool::new(false));
    let generator = if mode == Mode::Txpush {
        None
    } else {
        let (s, ifname, gs, gcpu) = (
            spec,
            gen.ifname().to_string(),
            gen_stop.clone(),
            lab_opts.gen_cpu,
        );
        let want = lab_opts.generator;
        Some(gen.spawn(move || -> anyhow::Result<crate::gen::GenResult> {
            pin_to_cpu(gcpu)?;
            let t = crate::gen::Target::new(&ifname, s, size as usize)?;
            let lim = crate::gen::Limits {
                flows: 1,
                ..Default::default()
            };
            crate::gen::run(&t, want, &lim, &gs, &crate::gen::Progress::default())
        }))
    };

    let result = {
        let _ns = measured_host.enter()?;
        pin_to_cpu(cpu)?;
        let ifname = measured_host.ifname().to_string();
        let frame_arg = (mode == Mode::Txpush).then_some((&spec, size));
        let fits = match frame_arg {
            Some(_) => check_fits_mtu(&ifname, size),
            None => Ok(()),
        };
        fits.and_then(|()| opts.open(&ifname, mode, quiet))
            .and_then(|mut b| {
                run_loop_scoped(
                    &mut b,
                    &LoopSpec {
                        mode,
                        frame: frame_arg,
                        stop: &stop,
                        deadline,
                        quiet,
                        probe: None,
                        batch: opts.batch,
                        poll: opts.poll,
                    },
                    reflect_any,
                )
            })
    };
    gen_stop.store(true, Ordering::SeqCst);
    let gen_result = generator.map(|g| g.join());
    let s = result?;
    // The far end's counters are gone with its link if the lab was torn
    // down under us: report zero rather than lose the summary.
    let far = other
        .try_stats()
        .map(|now| now.since(&before))
        .unwrap_or_default();
    print_summary(&s, opts.json)?;
    let gen_summary = match gen_result {
        None => None,
        Some(Ok(r)) => Some(r?),
        Some(Err(_)) => bail!("the traffic generator thread panicked"),
    };
    if !opts.json {
        if let Some(g) = gen_summary {
            println!(
                "  generator: {} packets sent ({} mean)",
                g.frames,
                fmt_pps(g.frames as f64 / g.seconds.max(1e-9))
            );
            if let Some(c) = &g.choice {
                println!("  generator engine: {}", c.describe());
            }
        }
        match mode {
            Mode::Txpush => println!(
                "  arrived at {}: {} packets, {} dropped",
                other.ifname(),
                far.rx_packets,
                far.rx_dropped
            ),
            Mode::L2fwd => println!(
                "  came back to {}: {} packets",
                other.ifname(),
                far.rx_packets
            ),
            Mode::Rxdrop => {}
        }
    }
    Ok(if s.stopped_by.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `pktio rxdrop`.
pub fn rxdrop(a: RxdropArgs) -> anyhow::Result<ExitCode> {
    if let Err(m) = a.xsk.check(None) {
        crate::args::usage_error(m);
    }
    if a.lab.lab {
        return run_in_lab(Mode::Rxdrop, &a.xsk, &a.lab, None, true);
    }
    run_on_interface(Mode::Rxdrop, &a.xsk, None, &a.consent, true)
}

/// Runs `pktio txpush`.
pub fn txpush(a: TxpushArgs) -> anyhow::Result<ExitCode> {
    if let Err(m) = a.xsk.check(Some(&a.frame)) {
        crate::args::usage_error(m);
    }
    if a.lab.lab {
        return run_in_lab(Mode::Txpush, &a.xsk, &a.lab, Some(&a.frame), true);
    }
    run_on_interface(Mode::Txpush, &a.xsk, Some(&a.frame), &a.consent, true)
}

/// Runs `pktio l2fwd`.
pub fn l2fwd(a: L2fwdArgs) -> anyhow::Result<ExitCode> {
    if let Err(m) = a.xsk.check(None) {
        crate::args::usage_error(m);
    }
    if a.lab.lab {
        return run_in_lab(Mode::L2fwd, &a.xsk, &a.lab, None, a.reflect_any);
    }
    run_on_interface(Mode::L2fwd, &a.xsk, None, &a.consent, a.reflect_any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_macs_and_refuses_addresses_outside_the_range() {
        assert_eq!(
            parse_mac("02:00:c6:12:00:0a"),
            Ok([2, 0, 0xc6, 0x12, 0, 10])
        );
        assert!(parse_mac("02:00:c6").is_err());
        assert!(parse_mac("zz:00:c6:12:00:0a").is_err());
        assert!(parse_bench_ip("198.19.1.1").is_ok());
        let e = parse_bench_ip("10.0.0.1").unwrap_err();
        assert!(e.contains("198.18.0.0/15"), "{e}");
    }

    #[test]
    fn idle_waits_end_before_the_deadline_and_within_the_stop_latency() {
        let now = Instant::now();
        assert_eq!(poll_timeout_ms(None, now), POLL_WAIT_MS);
        let far = now + Duration::from_secs(10);
        assert_eq!(poll_timeout_ms(Some(far), now), POLL_WAIT_MS);
        let soon = now + Duration::from_micros(7_200);
        assert_eq!(poll_timeout_ms(Some(soon), now), 8);
        assert_eq!(poll_timeout_ms(Some(now), now), 1);
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        assert_eq!(poll_timeout_ms(Some(past), now), 1);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
