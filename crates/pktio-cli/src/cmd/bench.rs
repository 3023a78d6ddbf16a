//! `pktio bench`: the seed's benchmark table, reproduced in a lab.
//!
//! For every backend × mode × frame size, N runs of a few seconds each: the
//! generator on one CPU, the measured side on the other. A run warms up,
//! then measures a window: packets delivered (by the measured loop for
//! rxdrop; at the far end for txpush and l2fwd), and the measured side's
//! cost: its thread's CPU time plus the softirq time of its CPU, per packet.
//! The XDP_DROP ceiling (an XDP program dropping everything on the receiving
//! veth, fed by the same generator) is measured in the same run, per size.
//! Within a mode and size the runs interleave across the rows (run 1 of
//! every backend and peer, then run 2, …), so that the machine's drift hits
//! every row alike and the ratios compare like with like.
//!
//! On veth the receiving side's kernel work runs by default as softirq on
//! the *sender's* CPU (`--napi softirq`), so receive rates are usually
//! bounded by the generator's core; the ns/packet column is what the
//! receiver itself costs, and the "gen CPU" column how busy the generator's
//! core was over the window (`/proc/stat`: the generator plus that receive
//! work), so both sides' CPU is shown. `--napi thread` runs each end's
//! receive work in its NAPI kernel thread pinned to that side's own core,
//! as with a NIC: the receiver's ns/packet then includes its NAPI thread,
//! the receivers sleep in `poll()` (spinning would starve the thread on
//! their core), and veth holds the sender back while the receiver's ring
//! is full, so such rows are receiver-bound, not source-bound. See
//! [`super::napi`].
//!
//! Sizes run from 64 to 9000 bytes. When one is above 1518 the lab's veth
//! pair gets MTU 9000, and every XDP program (sinks, the ceiling's drop,
//! the steering program) is loaded frags-aware (`BPF_F_XDP_HAS_FRAGS`),
//! which veth requires at that MTU. Frames an engine cannot make (live
//! frames are built in one page; AF_XDP frames in one UMEM chunk) take the
//! next engine of the ladder; the report's environment says which size
//! used which generator.
//!
//! The generator is chosen per size from the ladder of
//! [`pktio_bench::gen::Engine`] (`--generator auto`): live frames where the
//! kernel allows them, else AF_XDP transmit, an AF_PACKET TX ring, a raw
//! socket; the environment and the JSON say which ran and why the faster
//! ones did not. Every cell records the rate the generator offered in its
//! window beside the rate delivered; a row that took ≥ 99 % of what was
//! offered is *source-bound*: its figure is a lower bound (`≥ x` in the
//! table, `source_bound` in the JSON) and gets no ratio, and the
//! comparison there is the CPU per packet at the same offered load.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::bpf::{progs, LoadOptions, Program, ProgramKind, XdpAction, XdpLink, XdpMode};
use pktio::wire::UdpFrame;
use pktio_lab::{Host, Lab};

use super::napi::{Napi, Wait};
use super::peers::{CaptureDest, CaptureTool};
use crate::report::{bound_by_source, Cell, Environment, Labels, Report};
use pktio::backend::BackendKind;
use pktio_bench::gen::{Choice, Engine, Progress};
use pktio_bench::loops::{run_loop, LoopSpec, Mode, SocketOpts, Summary};
use pktio_bench::run::{pin_to_cpu, CpuTimes, LoopProbe};
use std::sync::Mutex;

/// Arguments of `pktio bench`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    sub: Option<BenchSub>,
    #[command(flatten)]
    packet: PacketBenchArgs,
}

#[derive(Debug, clap::Subcommand)]
enum BenchSub {
    /// TCP receive: blocking, epoll and io_uring engines side by side.
    Tcp(super::tcp::TcpBenchArgs),
    /// What the benchmark's own measuring costs: the generator's rate and the
    /// measured loop's CPU per packet with the harness watching and without.
    Harness(super::harness::HarnessArgs),
    /// The generator engines side by side (live frames where allowed, AF_XDP
    /// transmit, TX ring, raw socket) beside xdp-trafficgen's call and, with
    /// --peers, dpdk-testpmd txonly, into the same XDP_DROP sink.
    Gen(super::genbench::GenBenchArgs),
}

/// The packet benchmark's options.
#[derive(Debug, clap::Args)]
pub struct PacketBenchArgs {
    /// Backends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = BenchBackend::ALL)]
    backends: Vec<BenchBackend>,
    /// Modes to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = BenchMode::ALL)]
    modes: Vec<BenchMode>,
    /// Frame sizes in bytes on the wire (FCS included: 64 sends 60-byte
    /// frames), 64..=9000. Sizes above 1518 run at MTU 9000 (those up to
    /// 1518 keep 1500 in the same run), where the AF_XDP rows without
    /// multi-buffer (xdp, xdp-skb, xdp-zc) show as unsupported (a 9014-byte
    /// frame does not fit a 4096-byte UMEM chunk: use xdp-mb). Sizes above
    /// 3524 (live frames) and 3844 (AF_XDP transmit) are sent by the next
    /// generator engine, an AF_PACKET TX ring (TPACKET_V2,
    /// PACKET_QDISC_BYPASS).
    #[arg(long, value_delimiter = ',', default_values_t = [64u32, 1500])]
    sizes: Vec<u32>,
    /// Seconds measured per run (after a warm-up of a quarter of that, at least 0.3 s).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Runs per cell, 1..=1000; the table shows the median and min–max.
    #[arg(long, default_value_t = 3, value_parser = parse_runs)]
    runs: usize,
    /// One 1-second run per cell: a quick look, not a measurement.
    #[arg(long)]
    quick: bool,
    /// CPU of the generator (and of the receive-side kernel work on veth).
    #[arg(long, default_value_t = 0, value_parser = crate::args::parse_cpu)]
    gen_cpu: usize,
    /// CPU of the measured side.
    #[arg(long, default_value_t = 1, value_parser = crate::args::parse_cpu)]
    cpu: usize,
    /// Packets per batch in the measured loop.
    #[arg(long, default_value_t = 64)]
    batch: u32,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a grouped bar chart (Mpps) as SVG to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Offer this many packets per second (default: as fast as the generator
    /// can), e.g. to compare the receivers' CPU cost at an equal offered rate.
    #[arg(long, value_parser = crate::args::parse_rate)]
    rate: Option<f64>,
    /// Where the lab's receive work runs: `thread` (the receiving veth's
    /// NAPI in a kernel thread pinned to the measured CPU, the generator
    /// end's to the generator's CPU: each side pays for its own receive
    /// work, as with a NIC) or `softirq` (veth's default: on the sender's
    /// CPU). A list (`softirq,thread`) measures each, as rows of one table.
    /// Default: softirq. In thread, veth stops the sender's queue while the
    /// receiver's NAPI ring is full, so the generator runs at what the
    /// receiver takes (such rows are not marked source-bound).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PLACEMENT")]
    napi: Option<Vec<Napi>>,
    /// Our receivers sleep in poll() when idle instead of spinning (their
    /// CPU cost per packet then reflects work, not waiting). Always so in
    /// the thread placement, where a spinning receiver would starve the
    /// NAPI thread on its core.
    #[arg(long)]
    poll: bool,
    /// Busy polling in our sockets (SO_PREFER_BUSY_POLL, 20 µs, budget 64),
    /// as dpdk-testpmd's net_af_xdp does by default.
    #[arg(long)]
    busy_poll: bool,
    /// Measure on this real interface instead of the lab: only the measured
    /// side runs here; generate the traffic elsewhere (txpush sends to the
    /// benchmarking range 198.18.0.0/15). Needs --take-over outside a
    /// pktio lab.
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    interface: Option<String>,
    #[command(flatten)]
    consent: super::xsk::ConsentOpts,
    /// The generator engine: auto (the fastest this host allows: live
    /// frames, then AF_XDP transmit, an AF_PACKET TX ring, a raw socket), or
    /// one by name; the environment says which ran per size and why.
    #[arg(long, default_value = "auto", value_parser = super::gen::engine_flag())]
    generator: Engine,
    /// Also run the existing tools that are installed in the same lab, as
    /// rows of the same table: dpdk-testpmd (net_af_xdp, net_af_packet),
    /// `xdp-bench drop` as a second ceiling ($XDP_BENCH or PATH; xdp-tools
    /// ≥ 1.5.6 on kernels ≥ 6.16), tcpdump and netsniff-ng for capture.
    /// Missing or failing tools are listed in the notes.
    #[arg(long)]
    peers: bool,
}

/// A backend as the benchmark names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    /// AF_XDP zero-copy (driver mode).
    XdpZc,
    /// AF_XDP copy mode, program in driver (native) mode.
    Xdp,
    /// AF_XDP copy mode, native attach, multi-buffer (XDP_USE_SG, frags-aware
    /// program; 4096-byte frames, a 9000-byte frame takes 3): jumbo frames.
    XdpMb,
    /// AF_XDP copy mode, program in skb (generic) mode.
    XdpSkb,
    /// AF_PACKET TPACKET_V3 (block ring RX, V3 TX ring).
    V3,
    /// AF_PACKET TPACKET_V2 (frame rings): the baseline of the ratios.
    V2,
    /// io_uring on an AF_PACKET socket (multishot recv, provided buffers).
    Uring,
}

impl BenchBackend {
    const ALL: [BenchBackend; 7] = [
        BenchBackend::V2,
        BenchBackend::V3,
        BenchBackend::Uring,
        BenchBackend::XdpSkb,
        BenchBackend::Xdp,
        BenchBackend::XdpMb,
        BenchBackend::XdpZc,
    ];

    fn name(self) -> &'static str {
        match self {
            BenchBackend::XdpZc => "xdp-zc",
            BenchBackend::Xdp => "xdp",
            BenchBackend::XdpMb => "xdp-mb",
            BenchBackend::XdpSkb => "xdp-skb",
            BenchBackend::V3 => "v3",
            BenchBackend::V2 => "v2",
            BenchBackend::Uring => "uring",
        }
    }

    /// Why this row cannot carry frames of a lab with MTU `mtu`, if so:
    /// AF_XDP without multi-buffer needs the whole frame in one 4096-byte
    /// UMEM chunk (3840 bytes after XDP_PACKET_HEADROOM).
    fn cannot_carry(self, mtu: u32) -> Option<String> {
        let frame = mtu + 14;
        let one_chunk = 4096 - pktio::xdp::XDP_PACKET_HEADROOM;
        let single = matches!(
            self,
            BenchBackend::Xdp | BenchBackend::XdpSkb | BenchBackend::XdpZc
        );
        (single && frame > one_chunk).then(|| {
            format!(
                "MTU {mtu}: a {frame}-byte frame does not fit one 4096-byte UMEM chunk \
                 ({one_chunk} B) without multi-buffer (see xdp-mb)"
            )
        })
    }

    /// The AF_XDP bind and attach modes of this row, in words (`None` for
    /// the AF_PACKET and io_uring rows).
    fn bound(self) -> Option<&'static str> {
        match self {
            BenchBackend::XdpZc => Some("zero-copy, driver attach"),
            BenchBackend::Xdp => Some("copy, driver attach"),
            BenchBackend::XdpMb => Some("copy, driver attach, multi-buffer"),
            BenchBackend::XdpSkb => Some("copy, skb attach"),
            BenchBackend::V3 | BenchBackend::V2 | BenchBackend::Uring => None,
        }
    }

    fn kind(self) -> BackendKind {
        match self {
            BenchBackend::XdpZc | BenchBackend::Xdp | BenchBackend::XdpMb => BackendKind::Xdp,
            BenchBackend::XdpSkb => BackendKind::XdpSkb,
            BenchBackend::V3 => BackendKind::PacketV3,
            BenchBackend::V2 => BackendKind::PacketV2,
            BenchBackend::Uring => BackendKind::Uring,
        }
    }
}

/// A mode as the benchmark names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    /// Receive and drop.
    Rxdrop,
    /// Transmit.
    Txpush,
    /// Receive, swap MACs, send back.
    L2fwd,
    /// Capture everything to a pcap file on /dev/null (pktio capture over
    /// AF_XDP and TPACKET_V3; tcpdump and netsniff-ng with --peers).
    Capture,
    /// The same, into a pcap file on tmpfs (/dev/shm), removed after each
    /// run; not in the default set (it needs memory for the file).
    CaptureTmpfs,
}

impl BenchMode {
    const ALL: [BenchMode; 4] = [
        BenchMode::Rxdrop,
        BenchMode::Txpush,
        BenchMode::L2fwd,
        BenchMode::Capture,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            BenchMode::Rxdrop => "rxdrop",
            BenchMode::Txpush => "txpush",
            BenchMode::L2fwd => "l2fwd",
            BenchMode::Capture => "capture",
            BenchMode::CaptureTmpfs => "capture-tmpfs",
        }
    }

    fn mode(self) -> Mode {
        match self {
            BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => Mode::Rxdrop,
            BenchMode::Txpush => Mode::Txpush,
            BenchMode::L2fwd => Mode::L2fwd,
        }
    }

    /// Capture modes: rows are capture tools writing a pcap file.
    pub(super) fn is_capture(self) -> bool {
        matches!(self, BenchMode::Capture | BenchMode::CaptureTmpfs)
    }
}

/// Runs `pktio bench`.
pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    match a.sub {
        Some(BenchSub::Tcp(t)) => super::tcp::bench(t),
        Some(BenchSub::Harness(h)) => super::harness::run(h),
        Some(BenchSub::Gen(g)) => super::genbench::run(g),
        None => packet_bench(a.packet),
    }
}

/// One run's measurement.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunResult {
    /// Packets per second delivered.
    pub(super) pps: f64,
    /// Measured side's CPU (thread + softirq of its core) per packet, ns.
    pub(super) ns_per_packet: f64,
    /// Packets the kernel dropped for lack of room in the socket's ring, in
    /// % of those it offered the socket (capture tools: their own count).
    pub(super) drops_pct: Option<f64>,
    /// How busy the generator's CPU was over the window, and its softirq
    /// share, in % (the generator; on veth also the receive side's kernel
    /// work, which is softirq).
    pub(super) gen_cpu_pct: GenCpu,
    /// Packets per second the generator offered in the window (none for
    /// txpush, where the measured side is the sender).
    pub(super) offered_pps: Option<f64>,
    /// Whether the receiving side held the generator back in the window
    /// (its queue stopped: veth's backpressure): then the offered rate is
    /// what the receiver took, and the row is not source-bound.
    pub(super) held_back: bool,
}

/// A CPU's busy and softirq shares over a window, in %, if readable.
pub(super) type GenCpu = Option<(f64, f64)>;

/// The busy and the softirq share of a CPU between two `/proc/stat`
/// readings, in %.
pub(super) fn busy_pct(
    before: Option<pktio_bench::run::CpuTimes>,
    after: Option<pktio_bench::run::CpuTimes>,
) -> GenCpu {
    let d = after?.since(&before?);
    let pct = |x: u64| 100.0 * x as f64 / d.total as f64;
    (d.total > 0).then(|| (pct(d.busy), pct(d.softirq)))
}

/// What the runs of one row gathered.
#[derive(Debug, Default)]
struct RowSamples {
    rates: Vec<f64>,
    costs: Vec<f64>,
    drops: Vec<f64>,
    gen_busy: Vec<f64>,
    gen_softirq: Vec<f64>,
    /// What the generator offered, Mpps.
    offered: Vec<f64>,
    /// Per run, whether the receiver held the generator back.
    held: Vec<bool>,
    /// Why the row cannot run here (then it has no samples).
    unsupported: Option<String>,
}

/// A row of the table: one of ours, or an existing tool.
#[derive(Debug, Clone, Copy)]
enum Row {
    Ours(BenchBackend),
    Peer(super::peers::Peer),
    Capture(CaptureTool),
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Ours(b) => b.name(),
            Row::Peer(p) => p.name(),
            Row::Capture(t) => t.name(),
        }
    }
}

/// The rows of `mode`: ours, then (with --peers) the installed existing tools.
/// Capture runs `pktio capture` over AF_XDP and TPACKET_V3 (when those
/// backends are selected) beside tcpdump and netsniff-ng.
fn rows_for(mode: BenchMode, a: &PacketBenchArgs, notes: &mut Vec<String>) -> Vec<Row> {
    let mut rows: Vec<Row> = if mode.is_capture() {
        [
            (BenchBackend::V3, CaptureTool::PktioV3),
            (BenchBackend::Xdp, CaptureTool::PktioXdp),
        ]
        .into_iter()
        .filter(|(b, _)| a.backends.contains(b))
        .map(|(_, t)| Row::Capture(t))
        .collect()
    } else {
        a.backends.iter().map(|&b| Row::Ours(b)).collect()
    };
    if a.peers {
        if mode.is_capture() {
            rows.extend(CaptureTool::peers(notes).into_iter().map(Row::Capture));
        } else {
            rows.extend(super::peers::available(notes).into_iter().map(Row::Peer));
        }
    }
    rows
}

/// The plan: everything that will run, for progress and time estimates.
struct Plan {
    cells: usize,
    done: usize,
    start: Instant,
    per_run: f64,
}

impl Plan {
    fn progress(&self, what: &str) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let left = (self.cells - self.done) as f64 * self.per_run;
        eprintln!(
            "[{:>3}/{}] {what:<44} elapsed {}  left ~{}",
            self.done + 1,
            self.cells,
            mmss(elapsed),
            mmss(left)
        );
    }
}

fn mmss(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// `--runs`: 1..=1000 (0 would measure nothing).
fn parse_runs(s: &str) -> Result<usize, String> {
    crate::args::parse_u32_in(s, 1, 1000).map(|v| v as usize)
}

fn packet_bench(a: PacketBenchArgs) -> anyhow::Result<ExitCode> {
    let (runs, seconds) = if a.quick {
        (1, 1.0)
    } else {
        (a.runs, a.seconds)
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
        bail!("--seconds must be between 0 and 600, not {seconds}");
    }
    for &s in &a.sizes {
        if !(64..=MAX_SIZE).contains(&s) {
            bail!("frame size {s} is outside 64..={MAX_SIZE} (bytes on the wire, FCS included)");
        }
    }
    pktio_bench::run::check_cpus(&[a.cpu, a.gen_cpu])?;
    if let Some(r) = a.rate {
        if !(r.is_finite() && r >= 1.0) {
            bail!("--rate must be at least 1 packet per second, not {r}");
        }
    }
    if a.cpu == a.gen_cpu {
        eprintln!(
            "pktio: warning: generator and measured side share CPU {}: figures will be lower",
            a.cpu
        );
    }
    let warmup = warmup_of(seconds);
    if let Some(ifname) = a.interface.clone() {
        if a.napi.is_some() {
            bail!("--napi places the lab's receive work: it does not apply with -i {ifname}");
        }
        super::xsk::consent(
            "pktio bench",
            &ifname,
            "take every packet of queue 0 away from the host (rxdrop, l2fwd) and send frames \
             onto it (txpush, l2fwd)",
            a.consent.take_over,
        )?;
        return interface_bench(&a, &ifname, runs, seconds, warmup_of(seconds));
    }
    let lab = Lab::builder()
        .mtu(lab_mtu(&a.sizes))
        .build()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let stop = pktio_bench::run::stop_flag();
    let placements = choose_placements(&lab, &a)?;

    let mut env = Environment::detect();
    env.cores.insert("generator".into(), vec![a.gen_cpu]);
    env.cores.insert("measured".into(), vec![a.cpu]);
    env.set("driver", "veth");
    env.set("batch", a.batch.to_string());
    env.set("need_wakeup", "on");
    env.set(
        "busy_poll",
        if a.busy_poll {
            "20 us, budget 64"
        } else {
            "off"
        },
    );
    let waits: Vec<String> = placements
        .iter()
        .map(|&n| {
            let rx = Wait::of(n, true, a.poll, a.busy_poll).name();
            let tx = Wait::of(n, false, a.poll, a.busy_poll).name();
            let w = if rx == tx {
                rx.to_string()
            } else {
                format!("{rx} (txpush: {tx})")
            };
            if placements.len() > 1 {
                format!("{w} in {}", n.name())
            } else {
                w
            }
        })
        .collect();
    env.set(
        "wait",
        format!(
            "pktio rows: {}{}",
            waits.join(", "),
            if a.peers {
                "; dpdk-testpmd: its defaults (net_af_xdp: preferred busy polling, \
                 busy_budget 64; net_af_packet: spin); tcpdump, netsniff-ng: poll()"
            } else {
                ""
            }
        ),
    );
    env.set(
        "offered",
        a.rate
            .map_or("as fast as the generator can".to_string(), |r| {
                format!("{r} pps")
            }),
    );
    env.set("mtu", mtus_in_words(&a.sizes));
    // What each AF_XDP row binds and attaches (the bench asks for exactly
    // this, no fallback: a row that cannot have it says "unsupported").
    let bound: Vec<String> = a
        .backends
        .iter()
        .filter_map(|b| b.bound().map(|m| format!("{} = {m}", b.name())))
        .collect();
    if !bound.is_empty() {
        env.set("bound", bound.join("; "));
    }
    env.set(
        "napi",
        placements
            .iter()
            .map(|n| n.describe(a.cpu, a.gen_cpu))
            .collect::<Vec<_>>()
            .join("; "),
    );
    if a.modes.iter().any(|m| m.is_capture()) {
        env.set(
            "capture",
            "pktio xdp: --steal --frames 32768 (AF_XDP, 128 MiB UMEM; --spin in the softirq \
             placement, poll() in thread); pktio v3: defaults (AF_PACKET TPACKET_V3, the host \
             keeps the packets); tcpdump: -Z root -w FILE; netsniff-ng: -S 64MiB",
        );
    }
    let row_keys: &[&str] = if placements.len() > 1 {
        &["napi", "mode", "size", "backend"]
    } else {
        &["mode", "size", "backend"]
    };
    let mut report = Report::new("pktio bench: packets in the veth lab", env, row_keys);

    let cells = placements.len()
        * a.sizes.len()
        * (1 + a
            .modes
            .iter()
            .map(|&m| rows_for(m, &a, &mut Vec::new()).len())
            .sum::<usize>())
        * runs;
    let mut plan = Plan {
        cells,
        done: 0,
        start: Instant::now(),
        per_run: seconds + warmup + 0.4,
    };

    // xdp-bench drop beside our ceiling, with --peers, where it runs.
    let mut xdp_bench = None;
    if a.peers {
        xdp_bench = super::peers::find_xdp_tool("XDP_BENCH", "xdp-bench");
        if xdp_bench.is_some() {
            plan.cells += placements.len() * a.sizes.len() * runs;
        } else {
            report.notes.push(
                "peers: xdp-bench not found (xdp-tools ≥ 1.5.6 on PATH, or its path in XDP_BENCH)"
                    .into(),
            );
        }
    }
    let gen = GenPlan::new(a.generator);
    for &napi in &placements {
        let mut ceilings: Vec<(u32, f64)> = Vec::new();
        for &size in &a.sizes {
            let mtu = size_mtu(size);
            for host in [lab.gen(), lab.rx()] {
                if host.link_info()?.mtu != mtu {
                    host.set_mtu(mtu)
                        .with_context(|| format!("setting MTU {mtu} for {size}-byte frames"))?;
                }
            }
            // The ceiling: XDP_DROP on the receiving end, same generator; with
            // --peers, xdp-bench drop as the sink too, runs alternating.
            let (mut samples, mut peer_samples, mut offered) = (Vec::new(), Vec::new(), Vec::new());
            let mut held = Vec::new();
            let choice = gen.choice(&lab, size)?;
            eprintln!("          generator for {size} B: {}", choice.describe());
            for r in 0..runs {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                plan.progress(&format!(
                    "ceiling {size:>4} B  xdp-drop  run {}/{runs}",
                    r + 1
                ));
                super::napi::place(&lab, napi, a.cpu, a.gen_cpu)?;
                let (pps, off, h) =
                    match measure_ceiling(&lab, &gen, size, a.gen_cpu, warmup, seconds) {
                        Ok(m) => m,
                        Err(e) if e.is::<super::peers::Stopped>() => break,
                        Err(e) => return Err(e),
                    };
                held.push(h);
                eprintln!("          {:.3} Mpps", pps / 1e6);
                samples.push(pps / 1e6);
                offered.extend(off.map(|o| o / 1e6));
                plan.done += 1;
                if let Some(path) = xdp_bench.clone() {
                    plan.progress(&format!(
                        "ceiling {size:>4} B  xdp-bench drop  run {}/{runs}",
                        r + 1
                    ));
                    super::napi::place(&lab, napi, a.cpu, a.gen_cpu)?;
                    match super::peers::measure_xdp_bench_ceiling(
                        &lab, &gen, &path, size, a.gen_cpu, warmup, seconds,
                    ) {
                        Ok(pps) => {
                            eprintln!("          {:.3} Mpps", pps / 1e6);
                            peer_samples.push(pps / 1e6);
                        }
                        Err(e) => {
                            eprintln!("          unusable: {e:#}");
                            report.notes.push(super::peers::xdp_tool_unusable(
                                "xdp-bench",
                                "XDP_BENCH",
                                &path,
                                &e,
                            ));
                            xdp_bench = None;
                        }
                    }
                    plan.done += 1;
                }
            }
            if !peer_samples.is_empty() {
                report.cells.push(Cell::new(
                    Labels::new([
                        ("napi", napi.name()),
                        ("mode", "ceiling"),
                        ("size", &*size.to_string()),
                        ("backend", "xdp-bench"),
                    ]),
                    "Mpps",
                    "Mpps",
                    peer_samples,
                ));
            }
            let labels = Labels::new([
                ("napi", napi.name()),
                ("mode", "ceiling"),
                ("size", &*size.to_string()),
                ("backend", "xdp-drop"),
                ("generator", choice.engine.name()),
            ]);
            ceilings.push((size, crate::report::median(&samples).unwrap_or(0.0)));
            let bound = bound_by_source(&samples, &offered, &held);
            report
                .cells
                .push(Cell::new(labels.clone(), "Mpps", "Mpps", samples).with_source_bound(bound));
            if !offered.is_empty() {
                report
                    .cells
                    .push(Cell::new(labels, "offered", "Mpps", offered));
            }

            for &mode in &a.modes {
                let rows = rows_for(mode, &a, &mut report.notes);
                // Runs interleave across the rows (run 1 of every row, then run
                // 2, …), so that drift of the machine hits every row alike.
                let mut acc: Vec<RowSamples> = rows.iter().map(|_| RowSamples::default()).collect();
                for r in 0..runs {
                    for (row, got) in rows.iter().zip(acc.iter_mut()) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if got.unsupported.is_some() {
                            continue;
                        }
                        plan.progress(&format!(
                            "{:<7} {size:>4} B  {:<12} run {}/{runs}",
                            mode.name(),
                            row.name(),
                            r + 1
                        ));
                        // The measured side's receive work on its own core.
                        let (rx_cpu, gen_cpu) = if mode == BenchMode::Txpush {
                            (a.gen_cpu, a.cpu)
                        } else {
                            (a.cpu, a.gen_cpu)
                        };
                        super::napi::place(&lab, napi, rx_cpu, gen_cpu)?;
                        let wait = Wait::of(napi, mode != BenchMode::Txpush, a.poll, a.busy_poll);
                        let m = match *row {
                            Row::Ours(backend) => measure_cell(
                                &lab,
                                &gen,
                                CellSpec {
                                    mode,
                                    backend,
                                    size,
                                    napi,
                                    wait,
                                },
                                &a,
                                warmup,
                                seconds,
                            ),
                            Row::Peer(peer) => super::peers::measure(
                                &lab,
                                &gen,
                                peer,
                                mode,
                                size,
                                (a.cpu, a.gen_cpu),
                                a.rate,
                                warmup,
                                seconds,
                            ),
                            Row::Capture(tool) => super::peers::measure_capture(
                                &lab,
                                &gen,
                                tool,
                                destination(mode, size, &ceilings, seconds + warmup),
                                size,
                                (a.cpu, a.gen_cpu),
                                a.rate,
                                warmup,
                                seconds,
                            ),
                        };
                        match m {
                            Ok(m) => {
                                eprintln!(
                                    "          {:.3} Mpps, {:.1} ns/packet on the measured CPU",
                                    m.pps / 1e6,
                                    m.ns_per_packet
                                );
                                got.rates.push(m.pps / 1e6);
                                got.costs.push(m.ns_per_packet);
                                got.drops.extend(m.drops_pct);
                                got.offered.extend(m.offered_pps.map(|o| o / 1e6));
                                got.held.push(m.held_back);
                                if let Some((busy, si)) = m.gen_cpu_pct {
                                    got.gen_busy.push(busy);
                                    got.gen_softirq.push(si);
                                }
                                plan.done += 1;
                            }
                            Err(CellError::Unsupported(why)) => {
                                eprintln!("          unsupported: {why}");
                                plan.done += runs - r;
                                got.unsupported = Some(why);
                            }
                            // Ctrl-C/SIGTERM: the table of what was measured.
                            Err(CellError::Failed(e)) if e.is::<super::peers::Stopped>() => break,
                            Err(CellError::Failed(e)) => return Err(e),
                        }
                    }
                }
                for (row, got) in rows.iter().zip(acc) {
                    let labels = Labels::new([
                        ("napi", napi.name()),
                        ("mode", mode.name()),
                        ("size", &*size.to_string()),
                        ("backend", row.name()),
                        (
                            "generator",
                            if mode == BenchMode::Txpush {
                                "none"
                            } else {
                                choice.engine.name()
                            },
                        ),
                    ]);
                    if let Some(why) = got.unsupported {
                        let note = format!(
                            "{} {} {size} B: unsupported: {why}",
                            row.name(),
                            mode.name()
                        );
                        if !report.notes.contains(&note) {
                            report.notes.push(note);
                        }
                        // The row stays in the table and the JSON, without samples.
                        report.cells.push(Cell::new(
                            labels.with("status", &format!("unsupported: {why}")),
                            "Mpps",
                            "Mpps",
                            Vec::new(),
                        ));
                    }
                    let RowSamples {
                        rates,
                        costs,
                        drops,
                        gen_busy,
                        gen_softirq,
                        offered,
                        held,
                        ..
                    } = got;
                    if rates.is_empty() {
                        continue;
                    }
                    let bound = bound_by_source(&rates, &offered, &held);
                    let per_core: Vec<f64> = costs
                        .iter()
                        .map(|ns| if *ns > 0.0 { 1e3 / ns } else { 0.0 })
                        .collect();
                    if mode == BenchMode::Rxdrop {
                        if let Some(&(_, c)) = ceilings.iter().find(|(s, _)| *s == size) {
                            if c > 0.0 {
                                let share: Vec<f64> = rates.iter().map(|r| 100.0 * r / c).collect();
                                report.cells.push(Cell::new(
                                    labels.clone(),
                                    "of ceiling",
                                    "%",
                                    share,
                                ));
                            }
                        }
                    }
                    report.cells.push(
                        Cell::new(labels.clone(), "Mpps", "Mpps", rates).with_source_bound(bound),
                    );
                    if !offered.is_empty() {
                        report
                            .cells
                            .push(Cell::new(labels.clone(), "offered", "Mpps", offered));
                    }
                    report
                        .cells
                        .push(Cell::new(labels.clone(), "cost", "ns/packet", costs));
                    if !drops.is_empty() {
                        report
                            .cells
                            .push(Cell::new(labels.clone(), "drops", "%", drops));
                    }
                    report
                        .cells
                        .push(Cell::new(labels.clone(), "per core", "Mpps/core", per_core));
                    if !gen_busy.is_empty() {
                        report
                            .cells
                            .push(Cell::new(labels.clone(), "gen CPU", "%", gen_busy));
                        report
                            .cells
                            .push(Cell::new(labels, "gen softirq", "%", gen_softirq));
                    }
                }
            }
        }
    }
    report.environment.set("generator", gen.describe());
    report.generators = Some(gen.to_json());
    if report.cells.iter().any(|c| c.source_bound) {
        report.notes.push(
            "≥ x: source-bound — the row took ≥ 99 % of what the generator offered, so its \
             rate is a lower bound and has no ratio; compare those rows by ns/packet (CPU per \
             packet at the same offered load)"
                .into(),
        );
    }
    // Ratios to TPACKET_V2, as the seed's table has them.
    let baseline = a
        .backends
        .contains(&BenchBackend::V2)
        .then_some(("backend", "v2"));
    emit_report(
        &mut report,
        stop.load(Ordering::Relaxed),
        a.markdown,
        baseline,
        a.json.as_deref(),
        a.svg.as_deref().map(|p| (p, "Mpps", &["mode", "size"][..])),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a finished report (aligned text, or Markdown) and writes the JSON
/// and SVG files asked for; bars of the SVG are coloured by backend.
pub(super) fn emit_report(
    report: &mut Report,
    interrupted: bool,
    markdown: bool,
    baseline: Option<(&str, &str)>,
    json: Option<&std::path::Path>,
    svg: Option<(&std::path::Path, &str, &[&str])>,
) -> anyhow::Result<()> {
    if interrupted {
        report
            .notes
            .push("interrupted: the table is incomplete".into());
    }
    if markdown {
        println!("{}", report.to_markdown(baseline));
    } else {
        println!("{}", report.to_text(baseline));
    }
    if let Some(p) = json {
        std::fs::write(p, report.to_json()).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("pktio: wrote {}", p.display());
    }
    if let Some((p, metric, groups)) = svg {
        std::fs::write(p, report.to_svg(metric, groups, "backend"))
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("pktio: wrote {}", p.display());
    }
    Ok(())
}

pub(super) enum CellError {
    Unsupported(String),
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CellError {
    fn from(e: E) -> Self {
        CellError::Failed(e.into())
    }
}

/// Where a capture cell's tool writes: /dev/null, or a file on tmpfs big
/// enough for what the ceiling rate would make of a run.
fn destination(mode: BenchMode, size: u32, ceilings: &[(u32, f64)], seconds: f64) -> CaptureDest {
    match mode {
        BenchMode::CaptureTmpfs => {
            let mpps = ceilings
                .iter()
                .find(|(s, _)| *s == size)
                .map_or(10.0, |&(_, c)| c);
            // pcap: a 16-byte record header per frame, the frame without FCS.
            let per_packet = f64::from(size - 4 + 16);
            CaptureDest::Tmpfs {
                expected_bytes: (mpps * 1e6 * (seconds + 1.0) * per_packet) as u64,
            }
        }
        _ => CaptureDest::Null,
    }
}

/// The lab's frame from gen to rx, `size` bytes on the wire (FCS included).
pub(super) fn lab_frame(lab: &Lab) -> UdpFrame {
    UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 9,
        dst_port: 9,
    }
}

/// The generator engine of a benchmark: asked for once (`--generator`),
/// chosen per frame size on first use by probing the ladder in the gen
/// namespace, then the same engine for every run of that size.
#[derive(Debug)]
pub(super) struct GenPlan {
    want: Engine,
    chosen: Mutex<Vec<(u32, Choice)>>,
}

impl GenPlan {
    pub(super) fn new(want: Engine) -> GenPlan {
        GenPlan {
            want,
            chosen: Mutex::new(Vec::new()),
        }
    }

    /// `engine` for `size`, taken as given (already probed).
    pub(super) fn fixed(engine: Engine, size: u32) -> GenPlan {
        GenPlan {
            want: engine,
            chosen: Mutex::new(vec![(
                size,
                Choice {
                    engine,
                    refused: Vec::new(),
                },
            )]),
        }
    }

    /// The engine for `size`-byte frames (FCS included) in `lab`.
    ///
    /// # Errors
    /// [`pktio_bench::gen::EngineRefused`] when the engine asked for by name
    /// cannot run (with the ones that can); [`pktio_bench::gen::NoEngine`].
    pub(super) fn choice(&self, lab: &Lab, size: u32) -> anyhow::Result<Choice> {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = chosen.iter().find(|(s, _)| *s == size) {
            return Ok(c.clone());
        }
        let (want, ifname, spec) = (self.want, lab.gen().ifname().to_string(), lab_frame(lab));
        let c = lab.gen().try_run(move || -> anyhow::Result<Choice> {
            let t = pktio_bench::gen::Target::new(&ifname, spec, (size - 4) as usize)?;
            pktio_bench::gen::choose(&t, want)
        })??;
        chosen.push((size, c.clone()));
        Ok(c)
    }

    /// Per size, the engine and what was refused, for the environment
    /// line: e.g. "64, 1500 B: xsk (AF_XDP transmit); live refused: …".
    pub(super) fn describe(&self) -> String {
        let chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        let mut parts: Vec<(String, Vec<String>)> = Vec::new();
        for (size, c) in chosen.iter() {
            let d = c.describe();
            match parts.iter_mut().find(|(k, _)| *k == d) {
                Some((_, v)) => v.push(size.to_string()),
                None => parts.push((d, vec![size.to_string()])),
            }
        }
        parts
            .iter()
            .map(|(d, v)| format!("{} B: {d}", v.join(", ")))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// The choices as JSON, per size.
    pub(super) fn to_json(&self) -> serde_json::Value {
        let chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::Value::Array(
            chosen
                .iter()
                .map(|(size, c)| {
                    let mut v = c.to_json();
                    v["size"] = serde_json::json!(size);
                    v
                })
                .collect(),
        )
    }
}

/// A generator running on the gen end.
pub(super) struct GenRun {
    handle: std::thread::JoinHandle<anyhow::Result<pktio_bench::gen::GenResult>>,
    /// What it has sent so far.
    pub(super) progress: Arc<Progress>,
}

/// Starts the generator of `plan` on the gen end, pinned to `cpu`.
pub(super) fn start_generator(
    lab: &Lab,
    plan: &GenPlan,
    size: u32,
    cpu: usize,
    rate: Option<f64>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<GenRun> {
    let engine = plan.choice(lab, size)?.engine;
    let spec = lab_frame(lab);
    let ifname = lab.gen().ifname().to_string();
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    // In the thread placement the generator's core also runs the NAPI
    // thread of its own end, which takes what the measured side sends back
    // (l2fwd). A wire drains whatever the sender does: that thread comes
    // first, the generator (nice 19) gets the rest of the core.
    // (None to list before Linux 6.9, where only softirq runs.)
    let yield_to_napi = !super::napi::threads_of(lab.gen()).is_empty();
    let handle = lab.gen().spawn(move || {
        pin_to_cpu(cpu)?;
        if yield_to_napi {
            // On Linux the priority of PRIO_PROCESS 0 is the calling
            // thread's; the engine's threads inherit it.
            rustix::process::setpriority_process(None, 19)
                .context("lowering the generator's priority (setpriority)")?;
        }
        let t = pktio_bench::gen::Target::new(&ifname, spec, (size - 4) as usize)?;
        let lim = pktio_bench::gen::Limits {
            rate,
            flows: 1,
            ..Default::default()
        };
        pktio_bench::gen::run(&t, engine, &lim, &stop, &p)
    });
    Ok(GenRun { handle, progress })
}

pub(super) fn join_generator(g: GenRun) -> anyhow::Result<pktio_bench::gen::GenResult> {
    g.handle
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?
}

/// An XDP program attached to a lab end for the duration of a run: a sink
/// that drops (and so counts in the link's rx counters) everything.
///
/// Above MTU 1500 the program is loaded frags-aware (`BPF_F_XDP_HAS_FRAGS`):
/// veth refuses any other at an MTU whose frames need several buffers.
pub(super) fn attach_sink(host: &Host, action: XdpAction) -> anyhow::Result<XdpLink> {
    let frags = host.link_info()?.mtu > 1500;
    host.try_run(|| -> anyhow::Result<XdpLink> {
        let opts = LoadOptions {
            frags,
            ..LoadOptions::default()
        };
        let prog = Program::load_with(ProgramKind::Xdp, &progs::xdp_return(action), &[], &opts)?;
        Ok(XdpLink::attach(&prog, host.ifindex(), XdpMode::Driver)?)
    })?
}

/// The largest size `pktio bench` takes (bytes on the wire): a frame of
/// the lab's MTU 9000 is 9014 bytes, so 9000 leaves room for the FCS.
const MAX_SIZE: u32 = 9000;

/// The MTU the lab is built with for these sizes: 1500, or 9000 when one
/// is above 1518.
fn lab_mtu(sizes: &[u32]) -> u32 {
    sizes.iter().map(|&s| size_mtu(s)).max().unwrap_or(1500)
}

/// The MTU a size runs at: 1500 up to 1518 bytes on the wire (so those
/// rows match a run without jumbo sizes), 9000 above.
fn size_mtu(size: u32) -> u32 {
    if size > 1518 {
        9000
    } else {
        1500
    }
}

/// The MTU of each size, in words.
fn mtus_in_words(sizes: &[u32]) -> String {
    if sizes.iter().all(|&s| size_mtu(s) == 1500) {
        return "1500".into();
    }
    if sizes.iter().all(|&s| size_mtu(s) == 9000) {
        return "9000".into();
    }
    "1500 up to 1518 B; 9000 above".into()
}

/// The XDP_DROP ceiling: (delivered, offered) frames per second.
/// The placements to measure (`--napi`), each checked on this host before
/// anything runs; `softirq` without `--napi`.
fn choose_placements(lab: &Lab, a: &PacketBenchArgs) -> anyhow::Result<Vec<Napi>> {
    let Some(asked) = &a.napi else {
        return Ok(vec![Napi::Softirq]);
    };
    let list = super::napi::placements(asked)?;
    for &n in &list {
        super::napi::check(lab, n, a.cpu, a.gen_cpu)?;
    }
    Ok(list)
}

fn measure_ceiling(
    lab: &Lab,
    gen: &GenPlan,
    size: u32,
    gen_cpu: usize,
    warmup: f64,
    seconds: f64,
) -> anyhow::Result<(f64, Option<f64>, bool)> {
    let _sink = attach_sink(lab.rx(), XdpAction::Drop)?;
    let stop = Arc::new(AtomicBool::new(false));
    let g = start_generator(lab, gen, size, gen_cpu, None, stop.clone())?;
    let window = sink_window(lab, gen_cpu, warmup, seconds, Some(&g.progress));
    stop.store(true, Ordering::SeqCst);
    join_generator(g)?;
    let w = window?;
    Ok((w.pps(), w.offered_pps(), w.held_back))
}

/// What reached the receiving end's link in a measured window, and how the
/// generator's CPU was used meanwhile.
pub(super) struct SinkWindow {
    /// Frames the link counted.
    pub(super) frames: u64,
    /// The window's length.
    pub(super) seconds: f64,
    /// The generator CPU's busy and softirq shares, in %.
    pub(super) gen_cpu: GenCpu,
    /// Frames the generator sent in the window, when it counts them.
    pub(super) offered: Option<u64>,
    /// Whether the receiving end held the generator back in the window.
    pub(super) held_back: bool,
}

impl SinkWindow {
    pub(super) fn pps(&self) -> f64 {
        self.frames as f64 / self.seconds
    }

    pub(super) fn offered_pps(&self) -> Option<f64> {
        self.offered.map(|n| n as f64 / self.seconds)
    }
}

/// Waits `warmup` seconds, then counts what the receiving end's link
/// receives over `seconds` (an XDP sink there drops and counts), reading
/// CPU `gen_cpu`'s times at both ends. The caller starts and stops the
/// generator and the sink.
pub(super) fn sink_window(
    lab: &Lab,
    gen_cpu: usize,
    warmup: f64,
    seconds: f64,
    progress: Option<&Progress>,
) -> anyhow::Result<SinkWindow> {
    let stop = pktio_bench::run::stop_flag();
    super::peers::sleep_window(warmup, &stop)?;
    let sent = || progress.map(Progress::frames);
    let held = || progress.map_or(0, Progress::held_back);
    let (p0, c0, o0, h0) = (
        lab.rx().try_stats()?.rx_packets,
        CpuTimes::now(gen_cpu),
        sent(),
        held(),
    );
    let t0 = Instant::now();
    super::peers::sleep_window(seconds, &stop)?;
    let (p1, c1, o1, h1) = (
        lab.rx().try_stats()?.rx_packets,
        CpuTimes::now(gen_cpu),
        sent(),
        held(),
    );
    Ok(SinkWindow {
        frames: p1.saturating_sub(p0),
        seconds: t0.elapsed().as_secs_f64(),
        gen_cpu: busy_pct(c0, c1),
        offered: o0.zip(o1).map(|(a, b)| b.saturating_sub(a)),
        held_back: h1 > h0,
    })
}

/// One cell of the table: what runs, where the receive work runs, and how
/// the measured loop waits.
#[derive(Debug, Clone, Copy)]
struct CellSpec {
    mode: BenchMode,
    backend: BenchBackend,
    size: u32,
    napi: Napi,
    wait: Wait,
}

fn measure_cell(
    lab: &Lab,
    gen: &GenPlan,
    cell: CellSpec,
    a: &PacketBenchArgs,
    warmup: f64,
    seconds: f64,
) -> Result<RunResult, CellError> {
    let CellSpec {
        mode,
        backend,
        size,
        napi,
        wait,
    } = cell;
    let mtu = lab.rx().link_info()?.mtu;
    if let Some(why) = backend.cannot_carry(mtu) {
        return Err(CellError::Unsupported(why));
    }
    let mut opts = bench_opts(backend, a);
    opts.poll = wait == Wait::Poll;
    opts.busy_poll = (wait == Wait::BusyPoll).then_some(20);
    // AF_PACKET and io_uring slots hold a whole frame: 16 KiB at MTU 9000.
    if mtu > 1500 && !matches!(backend.kind(), BackendKind::Xdp | BackendKind::XdpSkb) {
        opts.frame_size = 16384;
        opts.frames = 1024;
    }
    let (measured, far): (&Host, &Host) = match mode {
        BenchMode::Txpush => (lab.gen(), lab.rx()),
        BenchMode::Rxdrop | BenchMode::L2fwd | BenchMode::Capture | BenchMode::CaptureTmpfs => {
            (lab.rx(), lab.gen())
        }
    };
    // Where the delivered packets are counted, and the programs that make it so.
    let _sinks: Vec<XdpLink> = match mode {
        // Arrivals at rx: a dropping program counts them (and gives the veth NAPI).
        BenchMode::Txpush => vec![attach_sink(lab.rx(), XdpAction::Drop)?],
        // Frames coming back to gen.
        BenchMode::L2fwd => vec![attach_sink(lab.gen(), XdpAction::Drop)?],
        BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => vec![],
    };
    // Generic (skb) attach leaves the veth without NAPI for frames sent by
    // XDP_TX from the peer: GRO provides one.
    // AF_PACKET and io_uring see frames through the stack: same.
    // (The thread placement keeps GRO on at both ends throughout.)
    let gro = napi == Napi::Softirq
        && !matches!(
            backend,
            BenchBackend::Xdp | BenchBackend::XdpMb | BenchBackend::XdpZc
        )
        && mode != BenchMode::Txpush;
    if gro {
        lab.rx().set_gro(true)?;
    }

    let probe = Arc::new(LoopProbe::default());
    let loop_stop = Arc::new(AtomicBool::new(false));
    let spec = lab_frame(lab);
    let ifname = measured.ifname().to_string();
    let (o, p, ls, cpu) = (opts.clone(), probe.clone(), loop_stop.clone(), a.cpu);
    let frame_len = size - 4;
    let worker = measured.spawn(move || -> anyhow::Result<Summary> {
        pin_to_cpu(cpu)?;
        let f = (mode == BenchMode::Txpush).then_some((&spec, frame_len));
        let mut b = o.open(&ifname, mode.mode(), true)?;
        run_loop(
            &mut b,
            &LoopSpec {
                mode: mode.mode(),
                frame: f,
                stop: &ls,
                deadline: None,
                quiet: true,
                probe: Some(&p),
                batch: o.batch,
                poll: o.poll,
            },
        )
    });
    let gen_stop = Arc::new(AtomicBool::new(false));
    let mut running = Running {
        worker,
        generator: None,
        gen_stop,
        loop_stop,
    };
    if mode != BenchMode::Txpush {
        let g = start_generator(lab, gen, size, a.gen_cpu, a.rate, running.gen_stop.clone());
        match g {
            Ok(g) => running.generator = Some(g),
            Err(e) => {
                let _ = running.finish(lab, gro);
                return Err(CellError::Failed(e));
            }
        }
    }
    let progress = running.generator.as_ref().map(|g| g.progress.clone());
    // Wait for the loop to start (socket bound) or fail.
    let t_start = Instant::now();
    while probe.cpu_ns.load(Ordering::Relaxed) == 0
        && !running.worker.is_finished()
        && t_start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    if running.worker.is_finished() {
        running.finish(lab, gro)?;
        return Err(CellError::Failed(anyhow::anyhow!(
            "the measured loop ended before the run"
        )));
    }
    let stop = pktio_bench::run::stop_flag();
    if !super::peers::sleep_unless_stopped(Duration::from_secs_f64(warmup), &stop) {
        running.finish(lab, gro)?;
        return Err(CellError::Failed(super::peers::Stopped.into()));
    }
    // In the thread placement the measured side's receive work runs in its
    // NAPI threads (pinned to its core), not as softirq: count them too.
    let napi_threads = super::napi::threads_of(measured);
    let snap = |far: &Host| -> anyhow::Result<(u64, u64, u64, u64, Option<u64>)> {
        Ok((
            probe.packets.load(Ordering::Relaxed),
            probe.cpu_ns.load(Ordering::Relaxed),
            super::napi::receive_work_ns(a.cpu, &napi_threads),
            far.try_stats()?.rx_packets,
            progress.as_ref().map(|p| p.frames()),
        ))
    };
    let held = || progress.as_ref().map_or(0, |p| p.held_back());
    let (s0, g0, h0) = (snap(far)?, CpuTimes::now(a.gen_cpu), held());
    let t0 = Instant::now();
    let whole = watch_window(&probe.packets, seconds);
    let (s1, g1, h1) = (snap(far)?, CpuTimes::now(a.gen_cpu), held());
    let dt = t0.elapsed().as_secs_f64();
    running.finish(lab, gro)?;
    if !whole {
        return Err(CellError::Failed(super::peers::Stopped.into()));
    }

    let loop_packets = s1.0.saturating_sub(s0.0);
    let delivered = match mode {
        BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => loop_packets,
        BenchMode::Txpush | BenchMode::L2fwd => s1.3.saturating_sub(s0.3),
    };
    let cpu = s1.1.saturating_sub(s0.1) + s1.2.saturating_sub(s0.2);
    Ok(RunResult {
        pps: delivered as f64 / dt,
        ns_per_packet: if loop_packets > 0 {
            cpu as f64 / loop_packets as f64
        } else {
            0.0
        },
        drops_pct: None,
        // txpush has no generator: the measured side is the sender.
        gen_cpu_pct: busy_pct(g0, g1).filter(|_| mode != BenchMode::Txpush),
        offered_pps: s0.4.zip(s1.4).map(|(a, b)| b.saturating_sub(a) as f64 / dt),
        held_back: h1 > h0,
    })
}

/// Sleeps through the measured window, printing the loop's rate each
/// second; `false` if Ctrl-C/SIGTERM came first (seen within 50 ms).
fn watch_window(packets: &std::sync::atomic::AtomicU64, seconds: f64) -> bool {
    let stop = pktio_bench::run::stop_flag();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let (mut last_n, mut last_t) = (packets.load(Ordering::Relaxed), t0);
    loop {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        if !super::peers::sleep_unless_stopped((end - now).min(Duration::from_secs(1)), &stop) {
            return false;
        }
        let (n, t) = (packets.load(Ordering::Relaxed), Instant::now());
        if t < end {
            let dt = t.duration_since(last_t).as_secs_f64();
            eprintln!(
                "          {:>4.1} s  {:.3} Mpps",
                t.duration_since(t0).as_secs_f64(),
                n.saturating_sub(last_n) as f64 / dt.max(1e-9) / 1e6
            );
        }
        (last_n, last_t) = (n, t);
    }
}

/// The warm-up before each measured window.
fn warmup_of(seconds: f64) -> f64 {
    (seconds / 4.0).max(0.3)
}

/// `pktio bench -i IF`: the matrix on a real interface, where the traffic
/// comes from elsewhere. No ceiling, no peers, no capture: each cell is
/// what the measured loop handled in its window.
fn interface_bench(
    a: &PacketBenchArgs,
    ifname: &str,
    runs: usize,
    seconds: f64,
    warmup: f64,
) -> anyhow::Result<ExitCode> {
    let mut env = Environment::detect();
    env.cores.insert("measured".into(), vec![a.cpu]);
    env.set("interface", ifname);
    env.set("batch", a.batch.to_string());
    let mut report = Report::new(
        &format!("pktio bench on {ifname}"),
        env,
        &["mode", "size", "backend"],
    );
    if a.peers {
        report.notes.push("--peers runs only in the lab".into());
    }
    let stop = pktio_bench::run::stop_flag();
    let addr = super::xsk::AddrOpts::lab_defaults();
    for &size in &a.sizes {
        for &mode in &a.modes {
            if mode.is_capture() {
                report
                    .notes
                    .push("capture: use `pktio capture -i IF` on a real interface".into());
                continue;
            }
            for &backend in &a.backends {
                let labels = Labels::new([
                    ("mode", mode.name()),
                    ("size", &*size.to_string()),
                    ("backend", backend.name()),
                ]);
                let mut rates = Vec::new();
                for r in 0..runs {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    eprintln!(
                        "{} {size} B {} run {}/{runs}",
                        mode.name(),
                        backend.name(),
                        r + 1
                    );
                    let opts = bench_opts(backend, a);
                    let probe = LoopProbe::default();
                    let loop_stop = AtomicBool::new(false);
                    let spec = addr.udp_frame();
                    let frame = (mode == BenchMode::Txpush).then_some((&spec, size - 4));
                    let result = std::thread::scope(|sc| {
                        let h = sc.spawn(|| -> anyhow::Result<Summary> {
                            pin_to_cpu(a.cpu)?;
                            let mut b = opts.open(ifname, mode.mode(), true)?;
                            run_loop(
                                &mut b,
                                &LoopSpec {
                                    mode: mode.mode(),
                                    frame,
                                    stop: &loop_stop,
                                    deadline: None,
                                    quiet: true,
                                    probe: Some(&probe),
                                    batch: a.batch,
                                    poll: a.poll,
                                },
                            )
                        });
                        let whole = super::peers::sleep_unless_stopped(
                            Duration::from_secs_f64(warmup),
                            &stop,
                        );
                        let n0 = probe.packets.load(Ordering::Relaxed);
                        let t0 = Instant::now();
                        let whole = whole && watch_window(&probe.packets, seconds);
                        let n1 = probe.packets.load(Ordering::Relaxed);
                        let dt = t0.elapsed().as_secs_f64();
                        loop_stop.store(true, Ordering::SeqCst);
                        let summary = h
                            .join()
                            .map_err(|_| anyhow::anyhow!("the measured thread panicked"))?;
                        summary.map(|_| (n1.saturating_sub(n0) as f64 / dt, whole))
                    });
                    match result.map_err(classify) {
                        // A window cut short by Ctrl-C has no figure.
                        Ok((_, false)) => break,
                        Ok((pps, true)) => rates.push(pps / 1e6),
                        Err(CellError::Unsupported(why)) => {
                            report.notes.push(format!(
                                "{} {}: unsupported: {why}",
                                backend.name(),
                                mode.name()
                            ));
                            break;
                        }
                        Err(CellError::Failed(e)) => return Err(e),
                    }
                }
                report.cells.push(Cell::new(labels, "Mpps", "Mpps", rates));
            }
        }
    }
    emit_report(
        &mut report,
        stop.load(Ordering::Relaxed),
        a.markdown,
        None,
        a.json.as_deref(),
        None,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The run-loop options of one backend row.
fn bench_opts(backend: BenchBackend, a: &PacketBenchArgs) -> SocketOpts {
    SocketOpts {
        batch: a.batch,
        busy_poll: a.busy_poll.then_some(20),
        ..row_opts(backend, a.poll)
    }
}

/// A backend row's run-loop options with the benchmark's defaults.
pub(super) fn row_opts(backend: BenchBackend, poll: bool) -> SocketOpts {
    SocketOpts {
        backend: backend.kind(),
        copy: matches!(
            backend,
            BenchBackend::Xdp | BenchBackend::XdpMb | BenchBackend::XdpSkb
        ),
        zero_copy: backend == BenchBackend::XdpZc,
        skb: backend == BenchBackend::XdpSkb,
        native: matches!(
            backend,
            BenchBackend::Xdp | BenchBackend::XdpMb | BenchBackend::XdpZc
        ),
        poll,
        multi_buffer: backend == BenchBackend::XdpMb,
        ..SocketOpts::default()
    }
}

/// The threads of one run.
struct Running {
    worker: std::thread::JoinHandle<anyhow::Result<Summary>>,
    generator: Option<GenRun>,
    gen_stop: Arc<AtomicBool>,
    loop_stop: Arc<AtomicBool>,
}

impl Running {
    /// Stops both sides and collects the measured loop's summary.
    fn finish(self, lab: &Lab, gro: bool) -> Result<Summary, CellError> {
        self.gen_stop.store(true, Ordering::SeqCst);
        self.loop_stop.store(true, Ordering::SeqCst);
        let g = self.generator.map(join_generator).transpose();
        if gro {
            lab.rx().set_gro(false)?;
        }
        let w = match self.worker.join() {
            Ok(r) => r.map_err(classify),
            Err(_) => Err(CellError::Failed(anyhow::anyhow!(
                "the measured thread panicked"
            ))),
        };
        g?;
        w
    }
}

/// Zero-copy refused, io_uring not available on this host and similar
/// answers are a row's "unsupported", not a failure.
pub(super) fn classify(e: anyhow::Error) -> CellError {
    use pktio::backend::BackendError;
    use pktio::uring::UringError;
    use pktio::xdp::XskError;
    let zc = |x: &XskError| match x {
        XskError::ZeroCopyUnsupported { reason, driver, .. } => {
            Some(format!("zero-copy: driver {driver}: {reason}"))
        }
        XskError::FrameTooLarge(m) => Some(m.clone()),
        _ => None,
    };
    let why = if let Some(x) = e.downcast_ref::<XskError>() {
        zc(x)
    } else if let Some(b) = e.downcast_ref::<BackendError>() {
        match b {
            BackendError::Xsk(x) => zc(x),
            BackendError::Unsupported { .. }
            | BackendError::Uring(UringError::Unavailable { .. })
            | BackendError::Uring(UringError::MissingFeature { .. }) => Some(b.to_string()),
            _ => None,
        }
    } else {
        None
    };
    match why {
        Some(w) => CellError::Unsupported(w),
        None => CellError::Failed(e),
    }
}
