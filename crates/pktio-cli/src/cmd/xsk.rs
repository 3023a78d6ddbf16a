//! `pktio rxdrop | txpush | l2fwd`: the seed's three AF_XDP benchmarks as
//! commands, with xdpsock-like flags and live per-second statistics.
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
use pktio::wire::{swap_macs, UdpFrame};
use pktio::xdp::{
    Accounting, AttachMode, BindMode, BusyPoll, KickCounters, Umem, UmemConfig, XskSocket, XskStats,
};

use crate::run::{fmt_pps, pin_to_cpu, stop_flag, thread_cpu_time, LoopProbe, Meter};

/// Flags shared by the AF_XDP commands (named as in xdpsock).
#[derive(Debug, Clone, clap::Args)]
pub struct XskOpts {
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
    /// RX and TX ring entries (a power of two).
    #[arg(long, default_value_t = 2048)]
    pub ring_size: u32,
    /// Busy polling: SO_PREFER_BUSY_POLL with this many microseconds (20 if no value).
    #[arg(short = 'B', long, value_name = "USECS", num_args = 0..=1, default_missing_value = "20")]
    pub busy_poll: Option<u32>,
    /// Busy-poll budget (packets per busy-poll call).
    #[arg(long, default_value_t = 64)]
    pub busy_poll_budget: u32,
    /// Sleep in poll() when idle instead of spinning.
    #[arg(short = 'p', long)]
    pub poll: bool,
    /// Turn XDP_USE_NEED_WAKEUP off (kick on every batch).
    #[arg(long)]
    pub no_need_wakeup: bool,
    /// Stop after this many seconds (default: at Ctrl-C; 5 with --lab).
    #[arg(short = 'd', long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Pin the packet loop to this CPU (with --lab: default 1).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Print only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
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
    #[arg(long, default_value_t = 0, requires = "lab")]
    pub gen_cpu: usize,
    /// The lab's traffic generator: in-kernel live frames (fastest) or AF_XDP transmit.
    #[arg(long, value_enum, default_value = "live", requires = "lab")]
    pub generator: crate::gen::Generator,
}

/// Arguments of `pktio rxdrop`.
#[derive(Debug, clap::Args)]
pub struct RxdropArgs {
    #[command(flatten)]
    xsk: XskOpts,
    #[command(flatten)]
    lab: LabOpts,
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
}

/// Arguments of `pktio l2fwd`.
#[derive(Debug, clap::Args)]
pub struct L2fwdArgs {
    #[command(flatten)]
    xsk: XskOpts,
    #[command(flatten)]
    lab: LabOpts,
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
    /// Source IPv4 address.
    #[arg(long, default_value = "198.18.0.1")]
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address (must be in 198.18.0.0/15, the benchmarking range).
    #[arg(long, default_value = "198.18.0.2", value_parser = parse_bench_ip)]
    pub dst_ip: Ipv4Addr,
    /// UDP destination port.
    #[arg(long, default_value_t = 9)]
    pub dst_port: u16,
}

impl AddrOpts {
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

fn parse_bench_ip(s: &str) -> Result<Ipv4Addr, String> {
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
            duration,
            cpu: None,
            quiet: false,
            json: false,
        }
    }

    fn umem_config(&self) -> UmemConfig {
        UmemConfig {
            frame_size: self.frame_size,
            frame_count: self.frames,
            ..UmemConfig::default()
        }
    }

    fn builder<'p>(&self, ifname: &str) -> pktio::xdp::XskSocketBuilder<'p> {
        XskSocket::builder(ifname)
            .queue(self.queue)
            .rx_size(self.ring_size)
            .tx_size(self.ring_size)
            .bind_mode(if self.copy {
                BindMode::Copy
            } else if self.zero_copy {
                BindMode::RequireZeroCopy
            } else {
                BindMode::Auto
            })
            .attach_mode(if self.skb {
                AttachMode::Skb
            } else if self.native {
                AttachMode::Driver
            } else {
                AttachMode::Auto
            })
            .need_wakeup(!self.no_need_wakeup)
            .busy_poll(self.busy_poll.map(|usecs| BusyPoll {
                usecs,
                budget: self.busy_poll_budget,
            }))
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
    /// The socket, as text.
    pub socket: String,
    /// XDP_STATISTICS at the end.
    #[serde(skip)]
    pub stats: XskStats,
    /// Wakeup calls.
    #[serde(skip)]
    pub kicks: KickCounters,
    /// Frames by place at the end.
    #[serde(skip)]
    pub accounting: Accounting,
    /// Why the loop stopped early, if it did.
    pub stopped_by: Option<String>,
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

/// Opens a socket on `ifname` and runs `mode` on it.
pub fn run_loop(
    mode: Mode,
    ifname: &str,
    opts: &XskOpts,
    frame: Option<(&UdpFrame, u32)>,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    quiet: bool,
) -> anyhow::Result<Summary> {
    run_loop_probed(mode, ifname, opts, frame, stop, deadline, quiet, None)
}

/// [`run_loop`], publishing progress into `probe` (for the benchmark, which
/// measures a window of the run from another thread).
#[allow(clippy::too_many_arguments)]
pub fn run_loop_probed(
    mode: Mode,
    ifname: &str,
    opts: &XskOpts,
    frame: Option<(&UdpFrame, u32)>,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    quiet: bool,
    probe: Option<&LoopProbe>,
) -> anyhow::Result<Summary> {
    let umem = Umem::new(opts.umem_config())?;
    let mut b = opts.builder(ifname);
    if mode == Mode::Txpush {
        b = b.rx_size(0);
    }
    if mode == Mode::Rxdrop {
        b = b.tx_size(0);
    }
    // A queue stays busy for a few tens of milliseconds after the previous
    // socket on it closed (the kernel releases it deferred): retry briefly.
    let give_up = Instant::now() + Duration::from_secs(2);
    let mut sock = loop {
        match b.clone().build(&umem) {
            Err(pktio::xdp::XskError::Sys {
                op: "bind", source, ..
            }) if source.errno() == Some(libc::EBUSY) && Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r?,
        }
    };
    if !quiet {
        eprintln!("{}: {}", mode.name(), sock.info());
    }
    let mut meter = Meter::new(Duration::from_secs(1));
    let cpu0 = thread_cpu_time();
    let batch = opts.batch;
    let mut stopped_by = None;

    // Frames waiting to go back (fill ring full) or to be sent (txpush).
    let mut stash = Vec::with_capacity(umem.frame_count() as usize);
    let frame_len = frame.map_or(0, |(_, l)| l);
    match mode {
        Mode::Rxdrop | Mode::L2fwd => {
            sock.fill_from_pool(u32::MAX)?;
        }
        Mode::Txpush => {
            let (spec, len) = frame.context("txpush needs a frame")?;
            while let Some(mut f) = umem.alloc() {
                spec.emit(b"pktio", len as usize, f.buffer_mut())
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "a {len}-byte frame does not fit a {}-byte UMEM frame",
                            opts.frame_size
                        )
                    })?;
                f.set_len(len)
                    .map_err(|_| anyhow::anyhow!("frame too small"))?;
                stash.push(f);
            }
        }
    }

    let mut iter: u32 = 0;
    loop {
        iter = iter.wrapping_add(1);
        if iter % 64 == 0 {
            if let Some(p) = probe {
                p.cpu_ns
                    .store(thread_cpu_time().as_nanos() as u64, Ordering::Relaxed);
            }
            let now = Instant::now();
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            if let Some(t) = meter.tick(now) {
                if let Err(e) = sock.check_interface() {
                    stopped_by = Some(e.to_string());
                    break;
                }
                if let Some(why) = program_detached(&sock) {
                    stopped_by = Some(why);
                    break;
                }
                if !quiet {
                    let s = sock.statistics().unwrap_or_default();
                    eprintln!(
                        "{:>7.1}s  {:>9}  {:>8.1} Mbit/s  ring_full {}  fill_empty {}  rx_dropped {}  tx_invalid {}",
                        t.at,
                        fmt_pps(t.pps),
                        t.bps / 1e6,
                        s.rx_ring_full,
                        s.rx_fill_ring_empty_descs,
                        s.rx_dropped,
                        s.tx_invalid_descs
                    );
                }
            }
        }
        let (n, bytes) = match mode {
            Mode::Rxdrop => {
                let p = sock.parts();
                let (Some(rx), Some(fill)) = (p.rx, p.fill) else {
                    bail!("socket has no RX or fill ring")
                };
                // Frames that did not fit last time go first.
                if !stash.is_empty() {
                    fill.fill_from(&mut stash);
                }
                let mut bytes = 0u64;
                let mut fb = fill.reserve(batch);
                let mut n = 0u64;
                for f in rx.receive(fb.remaining()) {
                    bytes += f.len() as u64;
                    n += 1;
                    if let Err(f) = fb.push(f) {
                        stash.push(f);
                    }
                }
                fb.commit();
                (n, bytes)
            }
            Mode::L2fwd => {
                let p = sock.parts();
                let (Some(rx), Some(tx), Some(fill), Some(comp)) =
                    (p.rx, p.tx, p.fill, p.completion)
                else {
                    bail!("socket lacks a ring for l2fwd")
                };
                comp.recycle_into(fill, batch * 2);
                let mut tb = tx.reserve(batch);
                let (mut n, mut bytes) = (0u64, 0u64);
                for mut f in rx.receive(tb.remaining()) {
                    swap_macs(f.data_mut());
                    bytes += f.len() as u64;
                    n += 1;
                    if let Err(f) = tb.push(f) {
                        drop(f); // empty frame: back to the pool
                    }
                }
                tb.commit();
                // Frames dropped to the pool go back to the fill ring.
                if umem.free_frames() >= batch {
                    fill.fill_from_pool(batch);
                }
                (n, bytes)
            }
            Mode::Txpush => {
                let p = sock.parts();
                let (Some(tx), Some(comp)) = (p.tx, p.completion) else {
                    bail!("socket has no TX or completion ring")
                };
                for mut f in comp.complete(batch * 2) {
                    // Completed frames keep their bytes; only the length resets.
                    let _ = f.set_len(frame_len);
                    stash.push(f);
                }
                let mut tb = tx.reserve(batch.min(stash.len() as u32));
                let mut n = 0u64;
                while tb.remaining() > 0 {
                    let Some(f) = stash.pop() else { break };
                    if let Err(f) = tb.push(f) {
                        stash.push(f);
                        break;
                    }
                    n += 1;
                }
                tb.commit();
                (n, n * frame_len as u64)
            }
        };
        meter.add(n, bytes);
        if let Some(p) = probe {
            p.packets.store(meter.packets, Ordering::Relaxed);
        }
        // Wakeups: TX after queuing, RX when idle or asked.
        let mut wake = || -> Result<(), pktio::xdp::XskError> {
            if matches!(mode, Mode::Txpush | Mode::L2fwd) && (n > 0 || mode == Mode::Txpush) {
                sock.kick_tx()?;
            }
            // An empty RX ring: sleep in poll(), or wake the kernel when it asked
            // (with busy poll, wake_rx always calls recvfrom, which runs the
            // device's NAPI on this CPU — the same rule DPDK's af_xdp PMD uses).
            if mode != Mode::Txpush && n == 0 {
                if opts.poll {
                    sock.poll_rx(100)?;
                } else {
                    sock.wake_rx()?;
                }
            }
            Ok(())
        };
        // A failed wakeup ends the run with the stats so far (the interface
        // vanished, or the kernel refused): the summary says why.
        if let Err(e) = wake() {
            stopped_by = Some(match (&e, e.hint()) {
                (pktio::xdp::XskError::InterfaceGone { .. }, _) => e.to_string(),
                (_, Some(h)) => format!("{e}: {} (hint: {h})", error_chain(&e)),
                (_, None) => format!("{e}: {}", error_chain(&e)),
            });
            break;
        }
    }
    let cpu = thread_cpu_time().saturating_sub(cpu0);
    let seconds = meter.elapsed();
    // Give back what the application holds, then check the accounting.
    drop(stash);
    let accounting = match umem.check_accounting() {
        Ok(a) => a,
        Err(e) if cfg!(debug_assertions) => bail!("frame accounting broken: {e}"),
        Err(e) => {
            eprintln!("pktio: warning: {e}");
            umem.accounting()
        }
    };
    Ok(Summary {
        mode: mode.name(),
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
        socket: sock.info().to_string(),
        stats: sock.statistics().unwrap_or_default(),
        kicks: sock.kicks().clone(),
        accounting,
        stopped_by,
    })
}

/// The causes below an error, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ")
}

/// Why the run cannot go on if the XDP program this socket attached was
/// detached behind its back (`bpf(BPF_LINK_DETACH)` by another process, e.g.
/// `bpftool link detach`): its link then reports no interface. Replacing it
/// is impossible (another attach fails with EBUSY), so this is the one way
/// another program can take over.
fn program_detached(sock: &XskSocket<'_>) -> Option<String> {
    let prog = sock.program()?;
    match prog.link().info() {
        Ok(info) if info.ifindex.is_none() => Some(format!(
            "the XDP program pktio attached to {} (link {}, program {}) was detached by \
             another process: no more packets reach the socket",
            sock.info().ifname,
            info.id,
            info.prog_id
        )),
        _ => None,
    }
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
    println!(
        "  XDP_STATISTICS: rx_dropped {} rx_invalid {} tx_invalid {} rx_ring_full {} fill_ring_empty {} tx_ring_empty {}",
        s.stats.rx_dropped,
        s.stats.rx_invalid_descs,
        s.stats.tx_invalid_descs,
        s.stats.rx_ring_full,
        s.stats.rx_fill_ring_empty_descs,
        s.stats.tx_ring_empty_descs
    );
    println!(
        "  wakeups: tx {} ({} busy), rx {} ({} busy); frames: {:?}",
        s.kicks.tx_kicks,
        s.kicks.tx_kick_busy,
        s.kicks.rx_wakeups,
        s.kicks.rx_wakeup_busy,
        s.accounting
    );
    if let Some(w) = &s.stopped_by {
        println!("  stopped early: {w}");
    }
    Ok(())
}

fn run_on_interface(
    mode: Mode,
    opts: &XskOpts,
    frame: Option<&FrameOpts>,
) -> anyhow::Result<ExitCode> {
    let ifname = opts.interface()?;
    if let Some(cpu) = opts.cpu {
        pin_to_cpu(cpu)?;
    }
    let stop = stop_flag();
    let spec = frame.map(|f| (f.addr.udp_frame(), f.size));
    let s = run_loop(
        mode,
        ifname,
        opts,
        spec.as_ref().map(|(s, l)| (s, *l)),
        &stop,
        opts.deadline(None)?,
        opts.quiet || opts.json,
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

    // The generator, for the receive modes.
    let gen_stop = Arc::new(AtomicBool::new(false));
    let generator = if mode == Mode::Txpush {
        None
    } else {
        let (o, s, ifname, gs, gcpu) = (
            opts.clone(),
            spec,
            gen.ifname().to_string(),
            gen_stop.clone(),
            lab_opts.gen_cpu,
        );
        let (kind, ifindex) = (lab_opts.generator, gen.ifindex());
        Some(gen.spawn(move || -> anyhow::Result<(u64, f64)> {
            pin_to_cpu(gcpu)?;
            match kind {
                crate::gen::Generator::Live => {
                    let r = crate::gen::run_live(ifindex, &s, size as usize, &gs)?;
                    Ok((r.frames, r.seconds))
                }
                crate::gen::Generator::Xsk => {
                    let o = XskOpts {
                        queue: 0,
                        busy_poll: None,
                        poll: false,
                        ..o
                    };
                    let r = run_loop(Mode::Txpush, &ifname, &o, Some((&s, size)), &gs, None, true)?;
                    Ok((r.packets, r.seconds))
                }
            }
        }))
    };

    let result = {
        let _ns = measured_host.enter()?;
        pin_to_cpu(cpu)?;
        let ifname = measured_host.ifname().to_string();
        let frame_arg = (mode == Mode::Txpush).then_some((&spec, size));
        run_loop(mode, &ifname, opts, frame_arg, &stop, deadline, quiet)
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
        if let Some((frames, secs)) = gen_summary {
            println!(
                "  generator: {frames} packets sent ({} mean)",
                fmt_pps(frames as f64 / secs.max(1e-9))
            );
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
    if a.lab.lab {
        return run_in_lab(Mode::Rxdrop, &a.xsk, &a.lab, None);
    }
    run_on_interface(Mode::Rxdrop, &a.xsk, None)
}

/// Runs `pktio txpush`.
pub fn txpush(a: TxpushArgs) -> anyhow::Result<ExitCode> {
    if a.lab.lab {
        return run_in_lab(Mode::Txpush, &a.xsk, &a.lab, Some(&a.frame));
    }
    run_on_interface(Mode::Txpush, &a.xsk, Some(&a.frame))
}

/// Runs `pktio l2fwd`.
pub fn l2fwd(a: L2fwdArgs) -> anyhow::Result<ExitCode> {
    if a.lab.lab {
        return run_in_lab(Mode::L2fwd, &a.xsk, &a.lab, None);
    }
    run_on_interface(Mode::L2fwd, &a.xsk, None)
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
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
