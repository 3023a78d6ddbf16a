//! `pktio rxdrop | txpush | l2fwd`: the seed's three benchmarks as commands,
//! on any backend (`--backend auto|xdp|xdp-skb|v3|v2|uring`), with
//! xdpsock-like flags and live per-second statistics. The loops themselves
//! are [`pktio_bench::loops`]; this file holds the flags, the consent to
//! touch an interface, the lab around a run and the printed summary.
//!
//! Each runs on a real interface (`-i IF`), or with `--lab` in a throw-away
//! lab of two network namespaces joined by a veth pair: pktio then also runs
//! the traffic generator (in the `gen` namespace, on its own CPU) and counts
//! at the far end.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::backend::{BackendKind, PacketIo};
use pktio::queues::Queues;
use pktio::wire::UdpFrame;
use pktio_bench::gen::{self, Engine};
use pktio_bench::loops::{
    check_fits_mtu, ifindex, in_pktio_lab, run_loop_scoped, run_queues, LoopSpec, Mode, SocketOpts,
    Summary, XDP_PACKET_HEADROOM,
};
use pktio_bench::report::schema::LOOP;
use pktio_bench::run::{fmt_pps, pin_to_cpu, stop_flag};

use crate::args::{parse_cpus, CpuList};
use crate::output::{human, json_on_stdout, JsonTo};

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
    /// Run on several queues, one thread each: `all` (every queue the
    /// interface has, ethtool channels) or a list such as 0,2-3. AF_XDP
    /// binds a socket per queue (one steering program for all); AF_PACKET
    /// and io_uring open one socket per entry in a PACKET_FANOUT group
    /// (hash). Prints per-queue and total rates. Not with -q or --cpu.
    /// With --lab: the lab's veth gets as many queues (the highest id
    /// listed plus one; `all`: one per CPU of --cpus, or per usable CPU)
    /// and a generator thread per TX queue, all on --gen-cpu.
    #[arg(long, value_name = "all|LIST", conflicts_with_all = ["queue", "cpu"],
          value_parser = parse_queues)]
    pub queues: Option<Queues>,
    /// With --queues: the CPUs of the queues' threads, a list such as 0-1
    /// or 1,0 (in the order given: the i-th queue on the i-th CPU, round
    /// robin when fewer CPUs than queues; more is an error). Default: the
    /// CPUs this process may run on, round robin (with --lab, --gen-cpu
    /// last).
    #[arg(long, value_name = "LIST", requires = "queues", conflicts_with = "cpu",
          value_parser = parse_cpus)]
    pub cpus: Option<CpuList>,
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
    /// Write the summary as JSON to FILE, or to stdout with `-` or no value
    /// (the text summary then goes to stderr and the per-second lines stop).
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::output::parse_json_to)]
    pub json: Option<JsonTo>,
    /// Print a JSON object a second on stdout (schema
    /// pktio.loop-second/1) and the summary as the last line
    /// (pktio.loop/1); the text goes to stderr.
    #[arg(long, conflicts_with = "json")]
    pub json_lines: bool,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse::<BackendKind>()
        .map_err(|_| format!("{s:?} is not a backend: use auto, xdp, xdp-skb, v3, v2 or uring"))
}

fn parse_queues(s: &str) -> Result<Queues, String> {
    s.parse::<Queues>()
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
    #[arg(long, default_value = "auto", requires = "lab", value_parser = crate::args::engine_flag())]
    pub generator: Engine,
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
    /// Frame size in bytes on the wire, FCS included (64..=4004; the
    /// kernel is handed 4 bytes less).
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(64..=4004))]
    pub size: u32,
    #[command(flatten)]
    pub addr: AddrOpts,
}

/// The FCS the NIC appends to every frame: `-s` counts it, the kernel
/// is handed the frame without it.
const FCS: u32 = 4;

impl FrameOpts {
    /// The frame's length as handed to the kernel: `-s` less the FCS.
    pub fn len(&self) -> u32 {
        self.size - FCS
    }
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
    /// The socket these flags describe.
    pub fn socket(&self) -> SocketOpts {
        SocketOpts {
            backend: self.backend,
            queue: self.queue,
            copy: self.copy,
            zero_copy: self.zero_copy,
            skb: self.skb,
            native: self.native,
            batch: self.batch,
            frame_size: self.frame_size,
            frames: self.frames,
            ring_size: self.ring_size,
            busy_poll: self.busy_poll,
            busy_poll_budget: self.busy_poll_budget,
            poll: self.poll,
            no_need_wakeup: self.no_need_wakeup,
            multi_buffer: self.multi_buffer,
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
            if may_be_xdp && !self.multi_buffer && f.len() > per_frame {
                let wire = per_frame + FCS;
                return Err(format!(
                    "-s {}: AF_XDP sends at most {per_frame} bytes ({wire} on the wire, FCS \
                     included) from a {}-byte UMEM frame ({} less the kernel's 256-byte \
                     XDP_PACKET_HEADROOM); use -s {wire} or less, --multi-buffer (kernel 6.6), \
                     or --backend v3, v2 or uring",
                    f.size, self.frame_size, self.frame_size
                ));
            }
            f.addr.check()?;
        }
        Ok(())
    }

    /// The queue ids and CPUs of a run on several queues (`--queues`), or
    /// `None` for a run on one. `count`: how many queues the interface has
    /// (`None`: it does not say).
    ///
    /// # Errors
    /// A queue the interface does not have, `all` on an interface that
    /// does not say how many it has, more CPUs than queues: a usage error.
    pub(crate) fn queue_plan(
        &self,
        ifname: &str,
        count: Option<u32>,
    ) -> Result<Option<QueuePlan>, String> {
        let Some(queues) = &self.queues else {
            return Ok(None);
        };
        let ids =
            pktio_bench::loops::queue_ids(ifname, queues, count).map_err(|e| e.to_string())?;
        let cpus = match &self.cpus {
            Some(c) => {
                crate::args::cpus_for_queues(&c.0, ids.len())?;
                c.0.clone()
            }
            None => pktio_host::cpu::allowed_cpus()
                .map_err(|e| format!("cannot read the CPUs this process may use: {e}"))?,
        };
        if cpus.is_empty() {
            return Err("this process may run on no CPU: give --cpus".to_string());
        }
        Ok(Some(QueuePlan { ids, cpus }))
    }

    /// How many queues the lab's veth needs for `--queues` (`None`: one,
    /// the lab's default): the highest queue id listed plus one, or for
    /// `all` one per CPU of `--cpus`, else one per CPU this process may
    /// use.
    fn lab_queues(&self) -> Result<Option<u32>, String> {
        let n = match &self.queues {
            None => return Ok(None),
            Some(Queues::List(l)) => l.iter().max().map_or(1, |m| m.saturating_add(1)),
            Some(Queues::All) => match &self.cpus {
                Some(c) => c.0.len() as u32,
                None => pktio_host::cpu::allowed_cpus().map_or(1, |c| c.len() as u32),
            },
        };
        if n > LAB_MAX_QUEUES {
            return Err(format!(
                "--queues with --lab: the lab's veth has at most {LAB_MAX_QUEUES} queues \
                 (0-{}); give smaller queue ids",
                LAB_MAX_QUEUES - 1
            ));
        }
        Ok(Some(n.max(1)))
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

    /// Where the text for people goes: stderr when JSON takes stdout.
    fn text_to(&self) -> Option<&JsonTo> {
        crate::output::text_target(self.json.as_ref(), self.json_lines)
    }

    fn interface(&self) -> anyhow::Result<&str> {
        self.interface
            .as_deref()
            .context("give an interface with -i IF, or use --lab to run in a throw-away lab")
    }
}

/// Flows of each queue's generator in a lab run on several queues.
const LAB_FLOWS_PER_QUEUE: u16 = 4;

/// The most queues `--queues` gives a lab's veth.
const LAB_MAX_QUEUES: u32 = 64;

/// A run on several queues: which, and the CPUs of their threads (queue
/// `i` on `cpus[i % cpus.len()]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuePlan {
    pub ids: Vec<u32>,
    pub cpus: Vec<usize>,
}

impl QueuePlan {
    fn describe_cpus(&self) -> String {
        let used: Vec<String> = (0..self.ids.len())
            .map(|i| self.cpus[i % self.cpus.len()].to_string())
            .collect();
        used.join(",")
    }
}

/// What a mode does to an interface, in words (`queues`: the queue ids,
/// as text).
fn takes(mode: Mode, queues: &str) -> String {
    match mode {
        Mode::Rxdrop => format!("take every packet arriving on {queues} away from the host"),
        Mode::Txpush => "send generated frames onto its wire".to_string(),
        Mode::L2fwd => format!(
            "take every packet arriving on {queues} away from the host and send frames \
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

/// Writes the JSON summary asked for (schema `pktio.loop/1`, a document or
/// the last JSON line) and prints the text one (on stderr when JSON takes
/// stdout).
fn print_summary(s: &Summary, opts: &XskOpts) -> anyhow::Result<()> {
    crate::output::emit(opts.json.as_ref(), LOOP, s)?;
    if opts.json_lines {
        crate::output::print_line(LOOP, s)?;
    }
    human(opts.text_to(), &summary_text(s));
    Ok(())
}

/// The text summary of a run, one fact a line.
fn summary_text(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} packets in {:.2} s: {} mean, {} median of per-second rates; {:.1} ns CPU/packet",
        s.mode,
        s.packets,
        s.seconds,
        fmt_pps(s.mpps * 1e6),
        fmt_pps(s.median_mpps * 1e6),
        s.cpu_ns_per_packet
    );
    for q in s.queues.iter().flatten() {
        let m = &q.summary;
        let cpu = q.cpu.map_or(String::new(), |c| format!(" (CPU {c})"));
        let _ = writeln!(
            out,
            "  queue {}{cpu}: {} packets, {} mean, {} median; {:.1} ns CPU/packet; kernel drops {}",
            q.queue,
            m.packets,
            fmt_pps(m.mpps * 1e6),
            fmt_pps(m.median_mpps * 1e6),
            m.cpu_ns_per_packet,
            m.stats.kernel_drops
        );
        if let Some(a) = m.accounting.filter(|a| a.unaccounted() != 0) {
            let _ = writeln!(
                out,
                "    frames: {} unaccounted ({} free, {} held, {} RX path, {} TX path)",
                a.unaccounted(),
                a.free,
                a.app,
                a.rx_path,
                a.tx_path
            );
        }
    }
    let k = &s.stats;
    let _ = writeln!(
        out,
        "  kernel: drops {} (rx ring full {}, fill ring empty {}), invalid {}, freezes {}",
        k.kernel_drops, k.rx_ring_full, k.fill_ring_empty, k.invalid, k.freezes
    );
    let _ = writeln!(
        out,
        "  wakeups: tx {} ({} busy), rx {}; tx ring full {} times",
        k.tx_kicks, k.tx_kick_busy, k.rx_wakeups, k.tx_ring_full
    );
    if let Some(a) = s.accounting {
        let _ = writeln!(
            out,
            "  frames: {} free, {} held, {} on the RX path, {} on the TX path, {} unaccounted",
            a.free,
            a.app,
            a.rx_path,
            a.tx_path,
            a.unaccounted()
        );
    }
    if s.not_reflected > 0 {
        let _ = writeln!(
            out,
            "  not reflected: {} frames with an address outside 198.18.0.0/15 or 2001:2::/48 \
             (dropped; --reflect-any sends back every frame)",
            s.not_reflected
        );
    }
    if let Some(w) = &s.stopped_by {
        let _ = writeln!(out, "  stopped early: {w}");
    }
    out
}

fn run_on_interface(
    mode: Mode,
    opts: &XskOpts,
    frame: Option<&FrameOpts>,
    consent_opts: &ConsentOpts,
    reflect_any: bool,
) -> anyhow::Result<ExitCode> {
    let ifname = opts.interface()?;
    // Every flag checked before the interface is touched.
    ifindex(ifname)?;
    // txpush sends: its queues are TX queues.
    let count = match mode {
        Mode::Txpush => pktio_bench::loops::tx_queue_count(ifname),
        Mode::Rxdrop | Mode::L2fwd => pktio_bench::loops::queue_count(ifname),
    };
    let plan = opts
        .queue_plan(ifname, count)
        .unwrap_or_else(|m| crate::args::usage_error(m));
    let which = match &plan {
        Some(p) => format!("queues {}", fmt_ids(&p.ids)),
        None => format!("queue {}", opts.queue),
    };
    consent(
        mode.name(),
        ifname,
        &takes(mode, &which),
        consent_opts.take_over,
    )?;
    if let Some(cpu) = opts.cpu {
        pin_to_cpu(cpu)?;
    }
    let stop = stop_flag();
    let spec = frame.map(|f| (f.addr.udp_frame(), f.len()));
    let quiet = opts.quiet || json_on_stdout(opts.json.as_ref());
    if let Some(f) = frame {
        check_fits_mtu(ifname, f.size)?;
    }
    let loop_spec = LoopSpec {
        mode,
        frame: spec.as_ref().map(|(s, l)| (s, *l)),
        stop: &stop,
        deadline: opts.deadline(None)?,
        quiet,
        json_lines: opts.json_lines,
        probe: None,
        batch: opts.batch,
        poll: opts.poll,
    };
    let s = match &plan {
        Some(p) => run_queue_set(ifname, mode, opts, p, &loop_spec, reflect_any)?,
        None => {
            let mut b = opts.socket().open(ifname, mode, quiet)?;
            run_loop_scoped(&mut b, &loop_spec, reflect_any)?
        }
    };
    print_summary(&s, opts)?;
    Ok(if s.stopped_by.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `0,1,5` for a list of queue ids.
fn fmt_ids(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Opens `plan`'s queues of `ifname` (one backend each, [`QueueSet`]) and
/// runs the loop of `spec` on each, on its own pinned thread.
fn run_queue_set(
    ifname: &str,
    mode: Mode,
    opts: &XskOpts,
    plan: &QueuePlan,
    spec: &LoopSpec<'_>,
    reflect_any: bool,
) -> anyhow::Result<Summary> {
    let set = opts.socket().open_queues(ifname, mode, &plan.ids)?;
    if !spec.quiet {
        for (i, h) in set.handles().iter().enumerate() {
            eprintln!(
                "{}: queue {} on CPU {}: {}",
                mode.name(),
                h.queue(),
                plan.cpus[i % plan.cpus.len()],
                h.backend().describe()
            );
        }
    }
    run_queues(set, &plan.cpus, spec, reflect_any)
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
    // The queues are checked against the lab before it is built.
    let lab_queues = opts
        .lab_queues()
        .unwrap_or_else(|m| crate::args::usage_error(m));
    let mut plan = opts
        .queue_plan("the lab's veth", lab_queues)
        .unwrap_or_else(|m| crate::args::usage_error(m));
    if let (Some(p), None) = (plan.as_mut(), &opts.cpus) {
        // The generator's CPU last: the first queues get cores of their own.
        p.cpus.sort_by_key(|&c| c == lab_opts.gen_cpu);
    }
    let mut builder = pktio_lab::Lab::builder();
    if let Some(n) = lab_queues {
        builder = builder.queues(n);
    }
    let lab = builder
        .build()
        .context("building the lab (needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN)")?;
    let (gen, rx) = (lab.gen(), lab.rx());
    // Bytes handed to the kernel: 60 (64 on the wire) for the generator.
    let size = frame.map_or(60, FrameOpts::len);
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
    let quiet = opts.quiet || json_on_stdout(opts.json.as_ref());
    if !quiet {
        let (on, queues) = match &plan {
            Some(p) => (
                format!("CPUs {}", p.describe_cpus()),
                format!(", queues {}", fmt_ids(&p.ids)),
            ),
            None => (format!("CPU {cpu}"), String::new()),
        };
        eprintln!(
            "lab: {} ({}) -> {} ({}){queues}, generator on CPU {}, {} on {on}",
            gen.ifname(),
            gen.addr(),
            rx.ifname(),
            rx.addr(),
            lab_opts.gen_cpu,
            mode.name(),
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
        Some(pktio_bench::bench::lab::attach_sink(
            rx,
            pktio::bpf::XdpAction::Drop,
        )?)
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
        let ids = plan.as_ref().map(|p| p.ids.clone());
        Some(gen.spawn(move || -> anyhow::Result<gen::GenResult> {
            pin_to_cpu(gcpu)?;
            let t = gen::Target::new(&ifname, s, size as usize)?;
            let Some(ids) = ids else {
                let lim = gen::Limits {
                    flows: 1,
                    ..Default::default()
                };
                return gen::run(&t, want, &lim, &gs, &gen::Progress::default());
            };
            // One generator per queue (veth: gen TX queue q feeds rx RX
            // queue q), a few flows each so that a fanout hash spreads
            // them too; all on the generator's CPU.
            let lim = gen::Limits {
                flows: LAB_FLOWS_PER_QUEUE,
                ..Default::default()
            };
            let progress: Vec<gen::Progress> = ids.iter().map(|_| Default::default()).collect();
            let all = gen::run_queues(&t, &ids, &[gcpu], want, &lim, &gs, &progress)?;
            Ok(gen::GenResult {
                frames: all.iter().map(|r| r.frames).sum(),
                seconds: all.iter().map(|r| r.seconds).fold(0.0, f64::max),
                choice: all.into_iter().next().and_then(|r| r.choice),
            })
        }))
    };

    let result = {
        let _ns = measured_host.enter()?;
        if plan.is_none() {
            pin_to_cpu(cpu)?;
        }
        let ifname = measured_host.ifname().to_string();
        let frame_arg = (mode == Mode::Txpush).then_some((&spec, size));
        let fits = match frame_arg {
            Some(_) => check_fits_mtu(&ifname, size + FCS),
            None => Ok(()),
        };
        let loop_spec = LoopSpec {
            mode,
            frame: frame_arg,
            stop: &stop,
            deadline,
            quiet,
            json_lines: opts.json_lines,
            probe: None,
            batch: opts.batch,
            poll: opts.poll,
        };
        fits.and_then(|()| match &plan {
            Some(p) => run_queue_set(&ifname, mode, opts, p, &loop_spec, reflect_any),
            None => opts
                .socket()
                .open(&ifname, mode, quiet)
                .and_then(|mut b| run_loop_scoped(&mut b, &loop_spec, reflect_any)),
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
    print_summary(&s, opts)?;
    let gen_summary = match gen_result {
        None => None,
        Some(Ok(r)) => Some(r?),
        Some(Err(_)) => bail!("the traffic generator thread panicked"),
    };
    // The lab's side of the run: what the generator sent, what arrived.
    let mut out = String::new();
    if let Some(g) = gen_summary {
        let _ = writeln!(
            out,
            "  generator: {} packets sent ({} mean)",
            g.frames,
            fmt_pps(g.frames as f64 / g.seconds.max(1e-9))
        );
        if let Some(c) = &g.choice {
            let _ = writeln!(out, "  generator engine: {}", c.describe());
        }
    }
    let _ = match mode {
        Mode::Txpush => writeln!(
            out,
            "  arrived at {}: {} packets, {} dropped",
            other.ifname(),
            far.rx_packets,
            far.rx_dropped
        ),
        Mode::L2fwd => writeln!(
            out,
            "  came back to {}: {} packets",
            other.ifname(),
            far.rx_packets
        ),
        Mode::Rxdrop => Ok(()),
    };
    human(opts.text_to(), &out);
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

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        x: XskOpts,
    }

    fn opts(args: &[&str]) -> XskOpts {
        use clap::Parser;
        Flags::try_parse_from(std::iter::once("pktio").chain(args.iter().copied()))
            .expect("flags parse")
            .x
    }

    #[test]
    fn the_lab_gets_as_many_queues_as_the_list_needs() {
        assert_eq!(opts(&[]).lab_queues(), Ok(None));
        assert_eq!(opts(&["--queues", "0,3"]).lab_queues(), Ok(Some(4)));
        assert_eq!(opts(&["--queues", "2"]).lab_queues(), Ok(Some(3)));
        let e = opts(&["--queues", "0,64"]).lab_queues().unwrap_err();
        assert!(e.contains("at most 64 queues"), "{e}");
        let allowed = pktio_host::cpu::allowed_cpus().unwrap();
        let all = opts(&["--queues", "all"]).lab_queues().unwrap();
        assert_eq!(all, Some(allowed.len() as u32));
        let one = allowed[0].to_string();
        let all = opts(&["--queues", "all", "--cpus", &one])
            .lab_queues()
            .unwrap();
        assert_eq!(all, Some(1));
    }

    #[test]
    fn queue_plans_pair_queues_with_cpus() {
        assert_eq!(opts(&[]).queue_plan("veth0", Some(2)), Ok(None));
        let allowed = pktio_host::cpu::allowed_cpus().unwrap();
        let p = opts(&["--queues", "all"])
            .queue_plan("veth0", Some(2))
            .unwrap()
            .unwrap();
        assert_eq!(p.ids, [0, 1]);
        assert_eq!(p.cpus, allowed, "default: every usable CPU");
        let one = allowed[0].to_string();
        let p = opts(&["--queues", "1,0", "--cpus", &one])
            .queue_plan("veth0", Some(2))
            .unwrap()
            .unwrap();
        assert_eq!((p.ids, p.cpus), (vec![1, 0], vec![allowed[0]]));
        let e = opts(&["--queues", "0,2"])
            .queue_plan("veth0", Some(2))
            .unwrap_err();
        assert!(
            e.contains("veth0 has 2 queues (0-1), there is no queue 2"),
            "{e}"
        );
        if allowed.len() >= 2 {
            let two = format!("{},{}", allowed[0], allowed[1]);
            let e = opts(&["--queues", "0", "--cpus", &two])
                .queue_plan("veth0", Some(2))
                .unwrap_err();
            assert!(e.contains("--cpus lists 2 CPUs for 1 queue"), "{e}");
        }
    }

    #[test]
    fn cpu_lists_are_checked_against_the_cpus_this_process_may_use() {
        let allowed = pktio_host::cpu::allowed_cpus().unwrap();
        let first = allowed[0];
        assert_eq!(parse_cpus(&first.to_string()), Ok(CpuList(vec![first])));
        assert!(parse_cpus("").unwrap_err().contains("bad CPU"));
        assert!(parse_cpus("1-0").unwrap_err().contains("empty CPU range"));
        assert!(parse_cpus("100000").unwrap_err().contains("bad CPU"));
        let outside = (0..pktio_host::cpu::MAX_CPU)
            .find(|c| !allowed.contains(c))
            .unwrap();
        let e = parse_cpus(&outside.to_string()).unwrap_err();
        assert!(
            e.contains(&format!("CPU {outside} is not one this process may run on")),
            "{e}"
        );
    }

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
}
