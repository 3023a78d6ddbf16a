//! The packet loops of rxdrop, txpush and l2fwd, written once against
//! [`PacketIo`]: they run the same on AF_XDP, AF_PACKET V2/V3 and io_uring.
//!
//! [`SocketOpts`] opens the backend a loop runs on (walking the `auto`
//! ladder, retrying a queue still busy from the previous socket);
//! [`run_loop`] runs one loop until a stop flag, a deadline or a backend
//! failure and returns its [`Summary`]. A [`LoopProbe`] lets a watcher on
//! another thread follow the loop (the benchmark's windows). The
//! interface helpers ([`ifindex`], [`check_fits_mtu`], [`in_pktio_lab`])
//! answer the questions a command asks before it opens anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::backend::{
    Backend, BackendConfig, BackendError, BackendKind, BackendStats, Direction, PacketIo,
};
use pktio::queues::{QueueError, QueueSet, Queues};
use pktio::wire::{swap_macs, UdpFrame};
use pktio::xdp::{Accounting, AttachMode, BindMode, BusyPoll};
use pktio_host::retry::BusyRetry;

use crate::report::schema::LOOP_SECOND;
use crate::run::{fmt_pps, LoopProbe, Meter, Tick};
use serde::Serialize;

/// How a loop's socket is opened: the backend and its modes, the UMEM and
/// ring sizes, batching, busy polling and wakeups (the flags rxdrop,
/// txpush and l2fwd share, named as in xdpsock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOpts {
    /// Packet I/O backend; `Auto` walks AF_XDP zero-copy → AF_XDP copy
    /// (native attach) → AF_XDP copy (skb attach) → AF_PACKET V3 → io_uring.
    pub backend: BackendKind,
    /// Queue id to bind to.
    pub queue: u32,
    /// Force copy mode.
    pub copy: bool,
    /// Require zero-copy mode (fail if the driver cannot).
    pub zero_copy: bool,
    /// Attach the XDP program in generic (skb) mode.
    pub skb: bool,
    /// Attach the XDP program in native (driver) mode only.
    pub native: bool,
    /// Packets per batch.
    pub batch: u32,
    /// UMEM frame size in bytes.
    pub frame_size: u32,
    /// UMEM frames.
    pub frames: u32,
    /// AF_XDP RX and TX ring entries.
    pub ring_size: u32,
    /// Busy polling: SO_PREFER_BUSY_POLL with this many microseconds.
    pub busy_poll: Option<u32>,
    /// Busy-poll budget (packets per busy-poll call).
    pub busy_poll_budget: u32,
    /// Sleep in poll() when idle instead of spinning.
    pub poll: bool,
    /// Turn XDP_USE_NEED_WAKEUP off (kick on every batch).
    pub no_need_wakeup: bool,
    /// AF_XDP multi-buffer (XDP_USE_SG, a frags-aware program).
    pub multi_buffer: bool,
}

impl Default for SocketOpts {
    /// The defaults of the command-line flags: `auto`, queue 0, batches of
    /// 64, 4096 frames of 4096 bytes, rings of 2048, wakeups on.
    fn default() -> Self {
        SocketOpts {
            backend: BackendKind::Auto,
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
        }
    }
}

impl SocketOpts {
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
            c.tx_skb_budget = Some(XSK_SKB_BUDGET);
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

    /// Opens the backend of [`backend`](Self::backend) (walking the ladder for
    /// `auto`) on `ifname` of the calling thread's network namespace. A
    /// queue still busy from the previous socket is retried for a moment.
    pub fn open(&self, ifname: &str, mode: Mode, quiet: bool) -> anyhow::Result<Backend> {
        self.open_config(&self.backend_config(ifname, mode), mode, quiet)
    }

    /// [`open`](Self::open) with a configuration the caller adjusted (from
    /// [`backend_config`](Self::backend_config)); `mode` names the loop in
    /// the messages.
    pub fn open_config(
        &self,
        cfg: &BackendConfig,
        mode: Mode,
        quiet: bool,
    ) -> anyhow::Result<Backend> {
        let busy = |e: &BackendError| e.errno() == Some(libc::EBUSY);
        let (b, skipped) = BusyRetry::QUEUE_RELEASE.run(busy, || match self.backend {
            BackendKind::Auto => Backend::auto(cfg),
            k => Backend::open(k, cfg).map(|b| (b, Vec::new())),
        })?;
        if !quiet {
            for s in &skipped {
                eprintln!("{}: skipped {s}", mode.name());
            }
            eprintln!("{}: {}", mode.name(), b.describe());
        }
        Ok(b)
    }
}

impl SocketOpts {
    /// Opens one backend per queue of `ids` on `ifname` ([`QueueSet::open`]
    /// of [`backend`](Self::backend) with [`backend_config`](Self::backend_config)),
    /// retrying for a moment while a queue is still busy from the previous
    /// socket.
    ///
    /// # Errors
    /// The set's error, the queue that failed named.
    pub fn open_queues(&self, ifname: &str, mode: Mode, ids: &[u32]) -> anyhow::Result<QueueSet> {
        let cfg = self.backend_config(ifname, mode);
        let busy = |e: &QueueError| matches!(e, QueueError::Open { source, .. } if source.errno() == Some(libc::EBUSY));
        let queues = Queues::List(ids.to_vec());
        BusyRetry::QUEUE_RELEASE
            .run(busy, || QueueSet::open(self.backend, &cfg, &queues))
            .with_context(|| {
                let list: Vec<String> = ids.iter().map(u32::to_string).collect();
                format!("opening queues {} of {ifname}", list.join(","))
            })
    }
}

/// `XDP_MAX_TX_SKB_BUDGET`: descriptors one copy-mode `sendto` sends
/// (the kernel's default is 32; a kick per 32 frames costs a system call
/// per 32 frames). The loops' transmit and the AF_XDP generator ask for it.
pub const XSK_SKB_BUDGET: u32 = 256;

/// The frame of the persistent lab (`pktio lab up`): from its gen end to
/// its rx end, in the benchmarking range, UDP port 9 to 9.
pub const LAB_UP_FRAME: UdpFrame = UdpFrame {
    src_mac: [0x02, 0, 0xc6, 0x12, 0, 0x01],
    dst_mac: [0x02, 0, 0xc6, 0x12, 0, 0x02],
    src_ip: std::net::Ipv4Addr::new(198, 18, 0, 1),
    dst_ip: std::net::Ipv4Addr::new(198, 18, 0, 2),
    src_port: 9,
    dst_port: 9,
};

/// The kernel's headroom in front of every AF_XDP frame's data.
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// Refuses frames of `size` bytes on the wire (FCS included) that `ifname`
/// cannot carry: longer than its MTU, the 14-byte Ethernet header and the
/// 4-byte FCS. (An AF_PACKET TX ring marks each such frame wrong and goes
/// on, ~0.7 ms apiece; a socket or AF_XDP in copy mode drops it.) An MTU that cannot be read leaves the
/// check to the open, which names a missing interface.
pub fn check_fits_mtu(ifname: &str, size: u32) -> anyhow::Result<()> {
    let Ok(mtu) = pktio::packet::interface_mtu(ifname) else {
        return Ok(());
    };
    let max = mtu.saturating_add(14);
    let wire = max.saturating_add(4);
    anyhow::ensure!(
        size <= wire,
        "-s {size}: {ifname} has MTU {mtu}, so it carries frames of up to {max} bytes \
         ({wire} on the wire, FCS included); use -s {wire} or less, or raise its MTU \
         (ip link set {ifname} mtu N)"
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
    /// A run on several queues ([`run_queues`]): each queue's own summary,
    /// in the order the queues were given; the fields above are then the
    /// totals. `None` (and absent from JSON) for a one-queue run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<QueueSummary>>,
}

/// One queue's part of a run on several queues.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueSummary {
    /// The queue id.
    pub queue: u32,
    /// The CPU its thread was pinned to, if it was.
    pub cpu: Option<usize>,
    /// What its loop measured.
    #[serde(flatten)]
    pub summary: Summary,
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
    /// The loop's name: rxdrop, txpush or l2fwd.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Rxdrop => "rxdrop",
            Mode::Txpush => "txpush",
            Mode::L2fwd => "l2fwd",
        }
    }
}

/// One second of a loop, a line of `--json-lines` ([`LOOP_SECOND`]).
#[derive(Serialize)]
struct Second {
    mode: &'static str,
    /// Seconds since the loop started.
    at: f64,
    /// Packets per second over the last second.
    pps: f64,
    /// Bits per second over the last second (frames without FCS).
    bps: f64,
    kernel_drops: u64,
    rx_ring_full: u64,
    fill_ring_empty: u64,
    tx_kicks: u64,
    /// A run on several queues: each queue's second (the fields above are
    /// the totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    queues: Option<Vec<QueueSecond>>,
}

/// One queue's second, in a [`Second`] of a run on several queues.
#[derive(Serialize)]
struct QueueSecond {
    queue: u32,
    pps: f64,
    bps: f64,
    kernel_drops: u64,
}

/// Prints one [`Second`] record on stdout.
fn print_second(mode: Mode, t: &Tick, s: &BackendStats) {
    let rec = Second {
        mode: mode.name(),
        at: t.at,
        pps: t.pps,
        bps: t.bps,
        kernel_drops: s.kernel_drops,
        rx_ring_full: s.rx_ring_full,
        fill_ring_empty: s.fill_ring_empty,
        tx_kicks: s.tx_kicks,
        queues: None,
    };
    // Plain numbers and a name: serialising cannot fail.
    if let Ok(line) = crate::report::schema::line(LOOP_SECOND, &rec) {
        println!("{line}");
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
    /// A JSON record each second on stdout ([`LOOP_SECOND`]), quiet or
    /// not.
    pub json_lines: bool,
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
                // The counters are read only for a line that shows them
                // (a benchmark's quiet loop does not pay for it).
                let publish = spec.probe.filter(|p| p.want_stats.load(Ordering::Relaxed));
                let s = if spec.json_lines || !spec.quiet || publish.is_some() {
                    b.stats().unwrap_or_default()
                } else {
                    BackendStats::default()
                };
                if let Some(p) = publish {
                    *p.stats.lock().unwrap_or_else(|e| e.into_inner()) = s;
                }
                if spec.json_lines {
                    print_second(spec.mode, &t, &s);
                }
                if !spec.quiet {
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
            p.bytes.store(meter.bytes, Ordering::Relaxed);
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
        queues: None,
    })
}

/// The RX queue count of `ifname` in the calling thread's namespace
/// (ethtool channels: the larger of the RX and combined counts); `None`
/// when the driver does not say.
pub fn queue_count(ifname: &str) -> Option<u32> {
    use std::os::fd::AsFd;
    let sock = pktio_host::ethtool::control_socket().ok()?;
    let ch = pktio_host::ethtool::channels(sock.as_fd(), ifname).ok()?;
    Some(ch.rx.max(ch.combined)).filter(|&n| n > 0)
}

/// The TX queue count of `ifname` in the calling thread's namespace
/// (ethtool channels: the larger of the TX and combined counts); `None`
/// when the driver does not say.
pub fn tx_queue_count(ifname: &str) -> Option<u32> {
    use std::os::fd::AsFd;
    let sock = pktio_host::ethtool::control_socket().ok()?;
    let ch = pktio_host::ethtool::channels(sock.as_fd(), ifname).ok()?;
    Some(ch.tx.max(ch.combined)).filter(|&n| n > 0)
}

/// The queue ids `queues` names on a device of `count` queues (`None`:
/// unknown): `all` is `0..count`; a list must stay below `count`.
///
/// # Errors
/// A queue id the device does not have, or `all` with the count unknown;
/// the message names the device `ifname` and says what to give instead.
pub fn queue_ids(ifname: &str, queues: &Queues, count: Option<u32>) -> anyhow::Result<Vec<u32>> {
    let ids = match (queues, count) {
        (Queues::All, Some(n)) => (0..n).collect(),
        (Queues::All, None) => bail!(
            "--queues all: {ifname} does not report its queue count (ethtool channels); \
             give a list such as --queues 0,1"
        ),
        (Queues::List(l), _) => l.clone(),
    };
    if let (Some(n), Some(&bad)) = (count, ids.iter().find(|&&q| Some(q) >= count)) {
        let (plural, ids) = match n {
            1 => ("", "0".to_string()),
            _ => ("s", format!("0-{}", n - 1)),
        };
        bail!(
            "--queues: {ifname} has {n} queue{plural} ({ids}), there is no queue {bad}; \
             see `ethtool -l {ifname}`"
        );
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        bail!("--queues: queue {} is given twice", w[0]);
    }
    anyhow::ensure!(!ids.is_empty(), "--queues: no queue given");
    Ok(ids)
}

/// Runs the loop of `spec` on every queue of `set`, each on a thread of its
/// own pinned to `cpus[i % cpus.len()]` (an empty list pins nothing), and
/// returns the totals with each queue's [`Summary`] in
/// [`Summary::queues`].
///
/// Every loop stops at `spec.stop`, at `spec.deadline`, or when another
/// queue's loop ends early (its backend failed). Unless `spec.quiet`, a
/// line a second on stderr gives the total rate and each queue's; with
/// `spec.json_lines` a [`LOOP_SECOND`] record a second carries the same
/// (`queues`). The threads start in the calling thread's network
/// namespace.
///
/// # Errors
/// A thread that could not be pinned or panicked; the first loop that
/// could not start.
pub fn run_queues(
    set: QueueSet,
    cpus: &[usize],
    spec: &LoopSpec<'_>,
    reflect_any: bool,
) -> anyhow::Result<Summary> {
    let probes: Vec<LoopProbe> = set.handles().iter().map(|_| LoopProbe::default()).collect();
    let show = spec.json_lines || !spec.quiet;
    for p in &probes {
        p.want_stats.store(show, Ordering::Relaxed);
    }
    run_queues_probed(set, cpus, spec, reflect_any, &probes)
}

/// [`run_queues`] publishing each queue's progress in `probes` (one per
/// queue of `set`, in order) for a watcher on another thread (the
/// benchmark). `spec.probe` is not used.
///
/// # Errors
/// As [`run_queues`]; a `probes` of another length than `set`.
pub fn run_queues_probed(
    set: QueueSet,
    cpus: &[usize],
    spec: &LoopSpec<'_>,
    reflect_any: bool,
    probes: &[LoopProbe],
) -> anyhow::Result<Summary> {
    let ids: Vec<u32> = set.handles().iter().map(|h| h.queue()).collect();
    anyhow::ensure!(
        probes.len() == ids.len(),
        "one probe per queue: {} for {} queues",
        probes.len(),
        ids.len()
    );
    let halt = AtomicBool::new(false);
    let (results, rates) = std::thread::scope(|s| {
        let runner = s.spawn(|| {
            set.run_pinned(cpus, |mut h| {
                let i = ids.iter().position(|&q| q == h.queue()).unwrap_or(0);
                let one = LoopSpec {
                    stop: &halt,
                    quiet: true,
                    json_lines: false,
                    probe: Some(&probes[i]),
                    ..*spec
                };
                let r = run_loop_scoped(h.backend_mut(), &one, reflect_any);
                // One queue done (the deadline, a stop, a failure): all are.
                halt.store(true, Ordering::SeqCst);
                r
            })
        });
        let rates = watch_queues(&ids, probes, spec, &halt, || runner.is_finished());
        let r = runner
            .join()
            .unwrap_or_else(|_| Err(QueueError::Panicked { queue: ids[0] }));
        (r, rates)
    });
    let summaries = results
        .context("running the queues")?
        .into_iter()
        .collect::<anyhow::Result<Vec<Summary>>>()?;
    let per_queue: Vec<QueueSummary> = ids
        .iter()
        .zip(summaries)
        .enumerate()
        .map(|(i, (&queue, summary))| QueueSummary {
            queue,
            cpu: (!cpus.is_empty()).then(|| cpus[i % cpus.len()]),
            summary,
        })
        .collect();
    Ok(total_of(spec.mode, per_queue, &rates))
}

/// The watcher of [`run_queues`], on the calling thread: passes a stop on
/// to the loops, prints a line (and a JSON record) a second, until `done`.
/// Returns the per-second total rates, for the median.
fn watch_queues(
    ids: &[u32],
    probes: &[LoopProbe],
    spec: &LoopSpec<'_>,
    halt: &AtomicBool,
    done: impl Fn() -> bool,
) -> Vec<f64> {
    let start = Instant::now();
    let mut last = (start, vec![(0u64, 0u64); ids.len()]);
    let mut rates = Vec::new();
    while !done() {
        std::thread::sleep(Duration::from_millis(20));
        if spec.stop.load(Ordering::Relaxed) {
            halt.store(true, Ordering::SeqCst);
        }
        let now = Instant::now();
        let dt = now.duration_since(last.0).as_secs_f64();
        if dt < 1.0 || done() {
            continue;
        }
        let counts: Vec<(u64, u64)> = probes
            .iter()
            .map(|p| {
                (
                    p.packets.load(Ordering::Relaxed),
                    p.bytes.load(Ordering::Relaxed),
                )
            })
            .collect();
        let stats: Vec<BackendStats> = probes
            .iter()
            .map(|p| *p.stats.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let queues: Vec<QueueSecond> = ids
            .iter()
            .zip(&counts)
            .zip(&last.1)
            .zip(&stats)
            .map(|(((&queue, &(p, b)), &(p0, b0)), st)| QueueSecond {
                queue,
                pps: p.saturating_sub(p0) as f64 / dt,
                bps: b.saturating_sub(b0) as f64 * 8.0 / dt,
                kernel_drops: st.kernel_drops,
            })
            .collect();
        let total = sum_stats(stats.iter());
        let rec = Second {
            mode: spec.mode.name(),
            at: now.duration_since(start).as_secs_f64(),
            pps: queues.iter().map(|q| q.pps).sum(),
            bps: queues.iter().map(|q| q.bps).sum(),
            kernel_drops: total.kernel_drops,
            rx_ring_full: total.rx_ring_full,
            fill_ring_empty: total.fill_ring_empty,
            tx_kicks: total.tx_kicks,
            queues: None,
        };
        rates.push(rec.pps);
        if !spec.quiet {
            let mut line = format!(
                "{:>7.1}s  {:>9}  {:>8.1} Mbit/s ",
                rec.at,
                fmt_pps(rec.pps),
                rec.bps / 1e6
            );
            for q in &queues {
                line.push_str(&format!(" q{} {}", q.queue, fmt_pps(q.pps)));
            }
            eprintln!(
                "{line}  kernel_drops {}  ring_full {}  fill_empty {}  tx_kicks {}",
                rec.kernel_drops, rec.rx_ring_full, rec.fill_ring_empty, rec.tx_kicks
            );
        }
        if spec.json_lines {
            let rec = Second {
                queues: Some(queues),
                ..rec
            };
            if let Ok(line) = crate::report::schema::line(LOOP_SECOND, &rec) {
                println!("{line}");
            }
        }
        last = (now, counts);
    }
    rates
}

/// The counters of several backends, added up (those the summaries show).
fn sum_stats<'a>(all: impl Iterator<Item = &'a BackendStats>) -> BackendStats {
    let mut t = BackendStats::default();
    for s in all {
        t.rx_packets += s.rx_packets;
        t.rx_bytes += s.rx_bytes;
        t.tx_packets += s.tx_packets;
        t.tx_bytes += s.tx_bytes;
        t.kernel_drops += s.kernel_drops;
        t.rx_ring_full += s.rx_ring_full;
        t.fill_ring_empty += s.fill_ring_empty;
        t.freezes += s.freezes;
        t.invalid += s.invalid;
        t.tx_ring_full += s.tx_ring_full;
        t.tx_in_flight += s.tx_in_flight;
        t.tx_kicks += s.tx_kicks;
        t.tx_kick_busy += s.tx_kick_busy;
        t.tx_errors += s.tx_errors;
        t.rx_wakeups += s.rx_wakeups;
        t.rx_rearms += s.rx_rearms;
    }
    t
}

/// The totals of a run on several queues: counts added up, rates over the
/// longest queue's time, the median of the per-second totals `rates`
/// (the mean when the run was shorter than a second), CPU per packet over
/// all the queues' threads, the first early stop (naming its queue).
pub fn total_of(mode: Mode, queues: Vec<QueueSummary>, rates: &[f64]) -> Summary {
    let packets: u64 = queues.iter().map(|q| q.summary.packets).sum();
    let seconds = queues.iter().map(|q| q.summary.seconds).fold(0.0, f64::max);
    let cpu_ns: f64 = queues
        .iter()
        .map(|q| q.summary.cpu_ns_per_packet * q.summary.packets as f64)
        .sum();
    let mpps = if seconds > 0.0 {
        packets as f64 / seconds / 1e6
    } else {
        0.0
    };
    let list: Vec<String> = queues.iter().map(|q| q.queue.to_string()).collect();
    Summary {
        mode: mode.name(),
        packets,
        bytes: queues.iter().map(|q| q.summary.bytes).sum(),
        seconds,
        mpps,
        median_mpps: if rates.is_empty() {
            mpps
        } else {
            median(rates) / 1e6
        },
        cpu_ns_per_packet: if packets > 0 {
            cpu_ns / packets as f64
        } else {
            0.0
        },
        socket: format!(
            "{} queues ({}): {}",
            queues.len(),
            list.join(","),
            queues.first().map_or("", |q| q.summary.socket.as_str())
        ),
        stats: sum_stats(queues.iter().map(|q| &q.summary.stats)),
        accounting: None,
        stopped_by: queues.iter().find_map(|q| {
            q.summary
                .stopped_by
                .as_ref()
                .map(|w| format!("queue {}: {w}", q.queue))
        }),
        not_reflected: queues.iter().map(|q| q.summary.not_reflected).sum(),
        queues: Some(queues),
    }
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
pub fn in_pktio_lab(ifname: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn queue_lists_are_checked_against_the_device() {
        let all = queue_ids("veth0", &Queues::All, Some(3)).unwrap();
        assert_eq!(all, vec![0, 1, 2]);
        let e = queue_ids("veth0", &Queues::All, None).unwrap_err();
        assert!(e.to_string().contains("give a list"), "{e}");
        let e = queue_ids("veth0", &Queues::List(vec![0, 3]), Some(2)).unwrap_err();
        assert!(
            e.to_string()
                .contains("has 2 queues (0-1), there is no queue 3"),
            "{e}"
        );
        let e = queue_ids("veth0", &Queues::List(vec![1]), Some(1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("has 1 queue (0), there is no queue 1"),
            "{e}"
        );
        let e = queue_ids("veth0", &Queues::List(vec![1, 1]), None).unwrap_err();
        assert!(e.to_string().contains("queue 1 is given twice"), "{e}");
        // An unknown count leaves the check to the open.
        assert_eq!(
            queue_ids("veth0", &Queues::List(vec![7, 2]), None).unwrap(),
            vec![7, 2]
        );
    }

    fn one(queue: u32, packets: u64, secs: f64, stopped: Option<&str>) -> QueueSummary {
        QueueSummary {
            queue,
            cpu: Some(queue as usize),
            summary: Summary {
                mode: "rxdrop",
                packets,
                bytes: packets * 60,
                seconds: secs,
                mpps: packets as f64 / secs / 1e6,
                median_mpps: 0.0,
                cpu_ns_per_packet: 100.0 * f64::from(queue + 1),
                socket: format!("xdp queue {queue}"),
                stats: BackendStats::default(),
                accounting: None,
                stopped_by: stopped.map(str::to_string),
                not_reflected: queue.into(),
                queues: None,
            },
        }
    }

    #[test]
    fn totals_of_several_queues() {
        let t = total_of(
            Mode::Rxdrop,
            vec![
                one(0, 1_000_000, 2.0, None),
                one(1, 3_000_000, 1.9, Some("gone")),
            ],
            &[1.9e6, 2.1e6],
        );
        assert_eq!(t.packets, 4_000_000);
        assert_eq!(t.bytes, 240_000_000);
        assert_eq!(t.seconds, 2.0);
        assert!((t.mpps - 2.0).abs() < 1e-9, "{}", t.mpps);
        assert!((t.median_mpps - 2.0).abs() < 1e-9);
        // (1e6 × 100 + 3e6 × 200) / 4e6
        assert!((t.cpu_ns_per_packet - 175.0).abs() < 1e-9);
        assert_eq!(t.stopped_by.as_deref(), Some("queue 1: gone"));
        assert_eq!(t.not_reflected, 1);
        assert!(t.socket.starts_with("2 queues (0,1): "), "{}", t.socket);
        let doc = serde_json::to_value(&t).unwrap();
        assert_eq!(doc["queues"][1]["queue"], 1);
        assert_eq!(doc["queues"][1]["packets"], 3_000_000);
        assert!(doc["queues"][0].get("queues").is_none());
        // A one-queue summary has no `queues` field at all.
        let single = serde_json::to_value(&one(0, 1, 1.0, None).summary).unwrap();
        assert!(single.get("queues").is_none());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
