//! `pktio bench`: the flags of the packet benchmark and of `bench
//! harness` and `bench gen`, checked and turned into the configurations of
//! the engines in [`pktio_bench::bench`]; their reports printed and
//! written here. `bench tcp` is [`super::tcp`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context};
use clap::builder::TypedValueParser;
use pktio_bench::bench::genbench::{self, GenBench};
use pktio_bench::bench::harness::{self, Harness};
use pktio_bench::bench::interface::interface_bench;
use pktio_bench::bench::matrix::{BenchBackend, BenchMode, MAX_SIZE};
use pktio_bench::bench::napi::Napi;
use pktio_bench::bench::plan::PacketBench;
use pktio_bench::bench::runner::packet_bench;
use pktio_bench::gen::Engine;

use crate::args::engine_flag;
use crate::output::{human, JsonTo};
use crate::report::Report;

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
    Harness(HarnessArgs),
    /// The generator engines side by side (live frames where allowed, AF_XDP
    /// transmit, TX ring, raw socket) beside xdp-trafficgen's call and, with
    /// --peers, dpdk-testpmd txonly, into the same XDP_DROP sink.
    Gen(GenBenchArgs),
}

/// The packet benchmark's options.
#[derive(Debug, clap::Args)]
pub struct PacketBenchArgs {
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_values_t = BenchBackend::ALL, value_parser = backend_flag())]
    backends: Vec<BenchBackend>,
    /// Modes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = BenchMode::ALL, value_parser = mode_flag())]
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
    /// Write the results as JSON to FILE, or to stdout with `-` (the table
    /// then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    json: Option<JsonTo>,
    /// Write a grouped bar chart (Mpps) as SVG to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Offer this many packets per second (default: as fast as the generator
    /// can), e.g. to compare the receivers' CPU cost at an equal offered rate.
    /// The live-frames generator holds it on average over 0.1 s, each 0.1 s
    /// of frames in one burst at its full speed; --generator xsk, packet or
    /// raw pace every batch.
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
    #[arg(long, value_delimiter = ',', value_name = "PLACEMENT", value_parser = napi_flag())]
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
    #[arg(long, default_value = "auto", value_parser = engine_flag())]
    generator: Engine,
    /// Also run the existing tools that are installed in the same lab, as
    /// rows of the same table: dpdk-testpmd (net_af_xdp, net_af_packet),
    /// `xdp-bench drop` as a second ceiling ($XDP_BENCH or PATH; xdp-tools
    /// ≥ 1.5.6 on kernels ≥ 6.16), tcpdump and netsniff-ng for capture.
    /// Missing or failing tools are listed in the notes.
    #[arg(long)]
    peers: bool,
    /// Give the lab's veth N RX/TX queues (1..=64) and run pktio's rows on
    /// all of them: one loop per queue on its own thread (on --cpus), the
    /// generator one thread per TX queue (veth: TX queue q feeds the
    /// peer's RX queue q). The rows gain each queue's Mpps (q0, q1, …)
    /// beside the total. Modes rxdrop, txpush and l2fwd (the capture modes are left
    /// out); not with --peers or -i.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// With --queues N: the CPUs of the queues' threads, a list such as
    /// 0-1 (queue i on the i-th CPU, round robin). Default: --cpu first,
    /// then the other CPUs this process may use.
    #[arg(long, value_name = "LIST", value_parser = crate::args::parse_cpus)]
    cpus: Option<crate::args::CpuList>,
}

/// The values of `--backends`, with their help.
const BACKEND_VALUES: &[(BenchBackend, &str)] = &[
    (BenchBackend::XdpZc, "AF_XDP zero-copy (driver mode)"),
    (
        BenchBackend::Xdp,
        "AF_XDP copy mode, program in driver (native) mode",
    ),
    (
        BenchBackend::XdpMb,
        "AF_XDP copy mode, native attach, multi-buffer (XDP_USE_SG, frags-aware program; \
         4096-byte frames, a 9000-byte frame takes 3): jumbo frames",
    ),
    (
        BenchBackend::XdpSkb,
        "AF_XDP copy mode, program in skb (generic) mode",
    ),
    (
        BenchBackend::V3,
        "AF_PACKET TPACKET_V3 (block ring RX, V3 TX ring)",
    ),
    (
        BenchBackend::V2,
        "AF_PACKET TPACKET_V2 (frame rings): the baseline of the ratios",
    ),
    (
        BenchBackend::Uring,
        "io_uring on an AF_PACKET socket (multishot recv, provided buffers)",
    ),
];

/// The values of `--modes`, with their help.
const MODE_VALUES: &[(BenchMode, &str)] = &[
    (BenchMode::Rxdrop, "Receive and drop"),
    (BenchMode::Txpush, "Transmit"),
    (BenchMode::L2fwd, "Receive, swap MACs, send back"),
    (
        BenchMode::Capture,
        "Capture everything to a pcap file on /dev/null (pktio capture over AF_XDP and \
         TPACKET_V3; tcpdump and netsniff-ng with --peers)",
    ),
    (
        BenchMode::CaptureTmpfs,
        "The same, into a pcap file on tmpfs (/dev/shm), removed after each run; not in the \
         default set (it needs memory for the file)",
    ),
];

/// The values of `--napi`, with their help.
const NAPI_VALUES: &[(Napi, &str)] = &[
    (
        Napi::Softirq,
        "The kernel's default on veth: receive work runs as softirq on the sender's CPU",
    ),
    (
        Napi::Thread,
        "Threaded NAPI, pinned: the receiving end's NAPI thread on the measured CPU, the \
         generator end's on the generator's CPU",
    ),
];

fn backend_flag() -> impl TypedValueParser<Value = BenchBackend> {
    crate::args::one_of(BACKEND_VALUES, BenchBackend::name)
}

fn mode_flag() -> impl TypedValueParser<Value = BenchMode> {
    crate::args::one_of(MODE_VALUES, BenchMode::name)
}

fn napi_flag() -> impl TypedValueParser<Value = Napi> {
    crate::args::one_of(NAPI_VALUES, Napi::name)
}

/// Arguments of `pktio bench harness`.
#[derive(Debug, clap::Args)]
pub struct HarnessArgs {
    /// Pairs of runs (one off, one on) per experiment.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Seconds measured per run (after a warm-up of a quarter of that, at least 0.3 s).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Frame size in bytes on the wire, FCS included.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Offered rate of the loop experiment, packets per second.
    #[arg(long, default_value_t = 1_000_000.0)]
    loop_rate: f64,
    /// CPU of the generator (and of the receive-side kernel work on veth).
    #[arg(long, default_value_t = 0)]
    gen_cpu: usize,
    /// CPU of the measured loop.
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// The generator engine: auto (the fastest this host allows), or one by name.
    #[arg(long, default_value = "auto", value_parser = engine_flag())]
    generator: Engine,
    /// Write the results as JSON to FILE, or to stdout with `-` (the table
    /// then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    json: Option<JsonTo>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// Arguments of `pktio bench gen`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Generators, each into the same XDP_DROP program on the lab's receiving veth, runs alternating:
  pktio live|xsk|packet|raw  each engine of `pktio gen` this host allows (refused ones are named
                        in the notes with the kernel's answer)
  xdp-trafficgen call   xdp-trafficgen's BPF_PROG_RUN call re-created (its program, 2^20 frames
                        per call, one thread, from the loopback's context), same frame; needs
                        live frames
  xdp-trafficgen        the tool itself ($XDP_TRAFFICGEN or PATH), 64 B, CPU 0, if it runs
  testpmd-xdp|pkt txonly  with --peers: dpdk-testpmd txonly on net_af_xdp and net_af_packet
The notes give run-by-run ratios: live / trafficgen call, xsk / testpmd-xdp, packet / testpmd-pkt.
On veth the sink's kernel work runs on the generator's CPU: the rate is one core generating and
dropping. CPU busy and ns/frame are that CPU's, from /proc/stat, per frame counted at the sink.")]
pub struct GenBenchArgs {
    /// Runs per generator.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds measured per run (after a warm-up of a quarter of that, at least 0.3 s).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Frame size in bytes on the wire, FCS included (64..=1518).
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// CPU of the generators (and, on veth, of the sink's kernel work).
    #[arg(long, default_value_t = 0)]
    gen_cpu: usize,
    /// Write the results as JSON to FILE, or to stdout with `-` (the table
    /// then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    json: Option<JsonTo>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Also run dpdk-testpmd `txonly` (net_af_xdp and net_af_packet, its
    /// forwarding lcore on the generator's CPU) as rows, where installed.
    #[arg(long)]
    peers: bool,
}

/// Runs `pktio bench`.
pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    match a.sub {
        Some(BenchSub::Tcp(t)) => super::tcp::bench(t),
        Some(BenchSub::Harness(h)) => run_harness(h),
        Some(BenchSub::Gen(g)) => run_genbench(g),
        None => run_packet_bench(a.packet),
    }
}

/// `--runs`: 1..=1000 (0 would measure nothing).
fn parse_runs(s: &str) -> Result<usize, String> {
    crate::args::parse_u32_in(s, 1, 1000).map(|v| v as usize)
}

/// `pktio bench` (packets): checks the flags, asks for consent on a real
/// interface, runs the engine and prints its report.
fn run_packet_bench(a: PacketBenchArgs) -> anyhow::Result<ExitCode> {
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
    crate::run::check_cpus(&[a.cpu, a.gen_cpu])?;
    if let Err(m) = check_queues(&a) {
        crate::args::usage_error(m);
    }
    if a.queues > 1 && a.modes.iter().any(|m| m.is_capture()) {
        eprintln!(
            "pktio: --queues {}: the capture modes run on one queue: left out",
            a.queues
        );
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r >= 1.0) {
            bail!("--rate must be at least 1 packet per second, not {r}");
        }
    }
    if a.cpu == a.gen_cpu && a.queues == 1 {
        eprintln!(
            "pktio: warning: generator and measured side share CPU {}: figures will be lower",
            a.cpu
        );
    }
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
        let report = interface_bench(&bench_config(&a, runs, seconds), &ifname)?;
        return emit(report, a.markdown, None, a.json.as_ref(), None);
    }
    // Ratios to TPACKET_V2, as the seed's table has them.
    let baseline = a
        .backends
        .contains(&BenchBackend::V2)
        .then_some(("backend", "v2"));
    let report = packet_bench(&bench_config(&a, runs, seconds))?;
    emit(
        report,
        a.markdown,
        baseline,
        a.json.as_ref(),
        a.svg.as_deref().map(|p| (p, "Mpps", &["mode", "size"][..])),
    )
}

/// The engine's configuration of these flags, with the runs and seconds
/// `--quick` may have changed.
fn bench_config(a: &PacketBenchArgs, runs: usize, seconds: f64) -> PacketBench {
    PacketBench {
        backends: a.backends.clone(),
        // The capture modes run on one queue (check_queues said so).
        modes: a
            .modes
            .iter()
            .copied()
            .filter(|m| a.queues == 1 || !m.is_capture())
            .collect(),
        sizes: a.sizes.clone(),
        seconds,
        runs,
        gen_cpu: a.gen_cpu,
        cpu: a.cpu,
        batch: a.batch,
        rate: a.rate,
        napi: a.napi.clone(),
        poll: a.poll,
        busy_poll: a.busy_poll,
        generator: a.generator,
        peers: a.peers,
        queues: a.queues,
        queue_cpus: queue_cpus(a),
    }
}

/// What `--queues N` cannot be combined with.
fn check_queues(a: &PacketBenchArgs) -> Result<(), String> {
    if a.queues == 1 {
        if a.cpus.is_some() {
            return Err("--cpus places the threads of --queues N: give --queues too".into());
        }
        return Ok(());
    }
    if a.interface.is_some() {
        return Err(format!(
            "--queues {} builds a lab with that many queues: it does not apply with -i",
            a.queues
        ));
    }
    if a.peers {
        return Err(format!(
            "--queues {}: the peers (dpdk-testpmd, xdp-bench) run on one queue; leave out \
             --peers",
            a.queues
        ));
    }
    if a.modes.iter().all(|m| m.is_capture()) {
        return Err(format!(
            "--queues {}: the capture modes run on one queue; use --modes rxdrop,txpush,l2fwd",
            a.queues
        ));
    }
    if let Some(c) = &a.cpus {
        crate::args::cpus_for_queues(&c.0, a.queues as usize)?;
    }
    Ok(())
}

/// The CPUs of the queues' threads: `--cpus`, or `--cpu` first and then
/// the other CPUs this process may use (all on `--cpu` if they cannot be
/// read).
fn queue_cpus(a: &PacketBenchArgs) -> Vec<usize> {
    if a.queues == 1 {
        return Vec::new();
    }
    if let Some(c) = &a.cpus {
        return c.0.clone();
    }
    let mut cpus = vec![a.cpu];
    cpus.extend(
        pktio_host::cpu::allowed_cpus()
            .unwrap_or_default()
            .into_iter()
            .filter(|&c| c != a.cpu),
    );
    cpus
}

/// Runs `pktio bench harness`.
fn run_harness(a: HarnessArgs) -> anyhow::Result<ExitCode> {
    let report = harness::run(&Harness {
        runs: a.runs,
        seconds: a.seconds,
        size: a.size,
        loop_rate: a.loop_rate,
        gen_cpu: a.gen_cpu,
        cpu: a.cpu,
        generator: a.generator,
    })?;
    emit(
        report,
        a.markdown,
        Some(("harness", "off")),
        a.json.as_ref(),
        None,
    )
}

/// Runs `pktio bench gen`.
fn run_genbench(a: GenBenchArgs) -> anyhow::Result<ExitCode> {
    let (report, baseline) = genbench::run(&GenBench {
        runs: a.runs,
        seconds: a.seconds,
        size: a.size,
        gen_cpu: a.gen_cpu,
        peers: a.peers,
    })?;
    emit(
        report,
        a.markdown,
        Some(("generator", baseline)),
        a.json.as_ref(),
        None,
    )
}

/// [`emit_report`] of a finished engine run, interrupted if the stop flag
/// is set; success.
fn emit(
    mut report: Report,
    markdown: bool,
    baseline: Option<(&str, &str)>,
    json: Option<&JsonTo>,
    svg: Option<(&std::path::Path, &str, &[&str])>,
) -> anyhow::Result<ExitCode> {
    let interrupted = crate::run::stop_flag().load(Ordering::Relaxed);
    emit_report(&mut report, interrupted, markdown, baseline, json, svg)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a finished report (aligned text, or Markdown; on stderr when the
/// JSON goes to stdout), writes the JSON (schema `pktio.bench/1`) and the
/// SVG file asked for; bars of the SVG are coloured by backend.
pub(super) fn emit_report(
    report: &mut Report,
    interrupted: bool,
    markdown: bool,
    baseline: Option<(&str, &str)>,
    json: Option<&JsonTo>,
    svg: Option<(&std::path::Path, &str, &[&str])>,
) -> anyhow::Result<()> {
    if interrupted {
        report
            .notes
            .push("interrupted: the table is incomplete".into());
    }
    let table = if markdown {
        report.to_markdown(baseline)
    } else {
        report.to_text(baseline)
    };
    human(json, &format!("{table}\n"));
    if let Some(to) = json {
        to.write(&report.to_json())?;
    }
    if let Some((p, metric, groups)) = svg {
        std::fs::write(p, report.to_svg(metric, groups, "backend"))
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("pktio: wrote {}", p.display());
    }
    Ok(())
}
