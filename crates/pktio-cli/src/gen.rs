//! Traffic generators for the lab.
//!
//! - [`Generator::Live`]: in-kernel live-frame injection. An XDP program that
//!   returns `XDP_TX` is run by `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`
//!   (kernel 5.18) on the sending interface: every run transmits a real frame
//!   out of it, with no skb and no socket (the xdp-trafficgen technique; no
//!   Debian-packaged tool comes close on veth). Two threads on one CPU
//!   issue the calls, so that the kernel's per-call waits do not idle it.
//!   The receiving veth needs a NAPI instance (an XDP program or GRO) or the
//!   frames vanish.
//! - [`Generator::Xsk`]: AF_XDP copy-mode transmit (the txpush loop).
//! - [`run_packet_tx`]: an AF_PACKET `TPACKET_V2` TX ring with
//!   `PACKET_QDISC_BYPASS`, for frames larger than the live-frame engine
//!   can make ([`LIVE_MAX_FRAME`]); `pktio bench` uses it for jumbo frames.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use pktio::bpf::{progs, Program};
use pktio::wire::UdpFrame;

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generator {
    /// BPF_PROG_RUN live frames (XDP_TX), the fastest source.
    Live,
    /// AF_XDP transmit.
    Xsk,
}

/// What a generator run sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenResult {
    /// Frames handed to the interface.
    pub frames: u64,
    /// Seconds it ran.
    pub seconds: f64,
}

/// Frames per `BPF_PROG_RUN` call. Each live-frames call waits twice for
/// an RCU grace period, idle: the kernel puts the program into the XDP
/// dispatcher when the call starts and takes it out when it ends
/// (`bpf_dispatcher_change_prog` → `synchronize_rcu`, ~20–25 ms together on
/// the project's VM). A call must carry many frames, and a stop request is
/// seen between calls: 2²⁰ frames last ~0.1 s at 10 Mpps.
const LIVE_REPEAT: u32 = 1 << 20;
/// Threads issuing `BPF_PROG_RUN` calls, all on the generator's one CPU:
/// while one waits for its grace period the other transmits, so the CPU
/// never idles. Measured on the project's VM (64 B into XDP_DROP, 3 runs):
/// one thread 11.5 Mpps with its CPU 30 % idle; two 15.9 Mpps (the rate of
/// one thread with 2²⁴ frames per call, which would take ~1 s to stop).
const LIVE_SUBMITTERS: usize = 2;
/// The largest frame (bytes, without FCS) the live-frame engine makes:
/// `bpf_prog_test_run_xdp` (net/bpf/test_run.c, v6.18) builds each frame in
/// one page, `PAGE_SIZE - XDP_PACKET_HEADROOM (256) -
/// SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) (320)`, and refuses
/// larger data in live mode ("disallow live data mode for jumbo frames").
pub const LIVE_MAX_FRAME: usize = 4096 - 256 - 320;

/// Frames per batch inside the kernel (at most 256).
const LIVE_BATCH: u32 = 64;

/// Runs the live-frame generator on `ifindex` (of the calling thread's
/// namespace) until `stop` is set.
pub fn run_live(
    ifindex: u32,
    spec: &UdpFrame,
    len: usize,
    stop: &AtomicBool,
) -> anyhow::Result<GenResult> {
    run_live_limited(ifindex, spec, len, stop, &Limits::default())
}

/// Limits of a generator run.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// At most this many frames per second.
    pub rate: Option<f64>,
    /// Vary the UDP source port over this many values (flows); 1 = one flow.
    pub flows: u16,
    /// Stop at this time.
    pub deadline: Option<Instant>,
}

/// The frames of `flows` flows (source ports 9, 10, …).
fn flow_frames(spec: &UdpFrame, len: usize, flows: u16) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..flows.max(1))
        .map(|i| {
            let mut frame = vec![0u8; len];
            let s = UdpFrame {
                src_port: spec.src_port.wrapping_add(i),
                ..*spec
            };
            s.emit(b"pktio gen", len, &mut frame).map_err(|_| {
                anyhow::anyhow!("cannot build a {len}-byte frame (42..=65549 bytes)")
            })?;
            Ok(frame)
        })
        .collect()
}

/// The live-frame generator with limits. With several flows, successive
/// `BPF_PROG_RUN` calls use successive flows' frames (each call sends one
/// flow's frame `repeat` times), so flows interleave in chunks.
///
/// The calls are issued by [`LIVE_SUBMITTERS`] threads that share one CPU:
/// the calling thread's, if it is pinned to one, else the CPU it runs on
/// when the run starts. The generator is one core's worth, pinned or not.
pub fn run_live_limited(
    ifindex: u32,
    spec: &UdpFrame,
    len: usize,
    stop: &AtomicBool,
    lim: &Limits,
) -> anyhow::Result<GenResult> {
    let frames_by_flow = flow_frames(spec, len, lim.flows)?;
    let prog =
        Program::load_xdp(&progs::xdp_tx(), &[]).context("loading the XDP_TX generator program")?;
    // With a rate, send 100 ms worth per call (calls are expensive, see
    // LIVE_REPEAT) and pace the calls: the rate holds on average over 0.1 s.
    let chunk = match lim.rate {
        Some(r) => ((r / 10.0).ceil() as u32).clamp(1, LIVE_REPEAT),
        None => LIVE_REPEAT,
    };
    let cpu = one_cpu()?;
    let start = Instant::now();
    let shared = LiveShared {
        ifindex,
        prog: &prog,
        frames_by_flow: &frames_by_flow,
        lim,
        chunk,
        start,
        stop,
        failed: AtomicBool::new(false),
        plan: Mutex::new(Plan::default()),
        sent: AtomicU64::new(0),
    };
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..LIVE_SUBMITTERS)
            .map(|_| {
                s.spawn(|| {
                    // New threads start in the creator's network namespace.
                    crate::run::set_affinity(cpu)?;
                    let r = shared.submit();
                    if r.is_err() {
                        shared.failed.store(true, Ordering::SeqCst);
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a generator thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(GenResult {
        frames: shared.sent.load(Ordering::SeqCst),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The CPU the live-frame submitters share: the calling thread's only
/// allowed CPU, or the one it is running on.
fn one_cpu() -> anyhow::Result<usize> {
    let set = rustix::thread::sched_getaffinity(None).context("sched_getaffinity")?;
    let allowed: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| set.is_set(c))
        .collect();
    Ok(match allowed.as_slice() {
        [only] => *only,
        _ => rustix::thread::sched_getcpu(),
    })
}

/// Work handed out to the submitters, under a lock taken once per call.
#[derive(Debug, Default)]
struct Plan {
    /// Frames claimed by calls (finished or running).
    claimed: u64,
    /// Calls started, for the flow rotation.
    calls: usize,
}

/// What the submitters share.
struct LiveShared<'a> {
    ifindex: u32,
    prog: &'a Program,
    frames_by_flow: &'a [Vec<u8>],
    lim: &'a Limits,
    chunk: u32,
    start: Instant,
    stop: &'a AtomicBool,
    /// Set when a submitter fails: the others stop too.
    failed: AtomicBool,
    plan: Mutex<Plan>,
    /// Frames of completed calls.
    sent: AtomicU64,
}

impl LiveShared<'_> {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
            && !self.failed.load(Ordering::Relaxed)
            && self.lim.deadline.map_or(true, |d| Instant::now() < d)
    }

    /// One submitter: claim a call's worth of frames, wait for its slot
    /// when a rate is set, run it; until stopped or the count is claimed.
    fn submit(&self) -> anyhow::Result<()> {
        while self.running() {
            let (repeat, flow, first) = {
                let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
                let repeat = match self.lim.count {
                    Some(c) if plan.claimed >= c => return Ok(()),
                    Some(c) => self.chunk.min((c - plan.claimed) as u32),
                    None => self.chunk,
                };
                let first = plan.claimed;
                plan.claimed += u64::from(repeat);
                plan.calls += 1;
                (repeat, plan.calls - 1, first)
            };
            if let Some(rate) = self.lim.rate {
                // This call's frames are due from `first / rate` on.
                let due = self.start + Duration::from_secs_f64(first as f64 / rate);
                while self.running() && Instant::now() < due {
                    let left = due.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                }
                if !self.running() {
                    return Ok(());
                }
            }
            let frame = &self.frames_by_flow[flow % self.frames_by_flow.len()];
            match self
                .prog
                .run_live_frames(self.ifindex, frame, repeat, LIVE_BATCH.min(repeat))
            {
                Ok(r) => {
                    self.sent.fetch_add(u64::from(r.frames), Ordering::Relaxed);
                }
                // A signal (Ctrl-C) interrupts the call with EINTR: how many
                // of its frames went out is unknown, so none are counted and
                // the claim is returned; the stop flag ends the run.
                Err(pktio::bpf::BpfError::Sys(e)) if e.errno() == Some(libc::EINTR) => {
                    let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
                    plan.claimed -= u64::from(repeat);
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context("BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (kernel 5.18+)"))
                }
            }
        }
        Ok(())
    }
}

/// Sends `len`-byte copies of `spec` from `ifname` (of the calling thread's
/// namespace) through an AF_PACKET `TPACKET_V2` TX ring with
/// `PACKET_QDISC_BYPASS` (16 KiB slots: frames up to 16 KiB), 64 frames per
/// `sendto`, until `stop` is set. For frames the live-frame engine cannot
/// make. Chosen over AF_XDP multi-buffer copy-mode TX (the `xdp-mb` backend
/// sending): both build one skb per frame, and in the lab at 9000 bytes
/// this one was a little faster (0.29 against 0.26 Mpps into XDP_DROP).
pub fn run_packet_tx(
    ifname: &str,
    spec: &UdpFrame,
    len: u32,
    stop: &AtomicBool,
) -> anyhow::Result<GenResult> {
    use crate::cmd::xsk::{run_loop, LoopSpec, Mode};
    use pktio::backend::{Backend, BackendConfig, BackendKind, Direction};
    let mut cfg = BackendConfig::new(ifname);
    cfg.direction = Direction::Tx;
    cfg.frame_size = 16384;
    cfg.frame_count = 1024;
    cfg.qdisc_bypass = true;
    let mut b = Backend::open(BackendKind::PacketV2, &cfg)
        .with_context(|| format!("opening the AF_PACKET TX generator on {ifname}"))?;
    let s = run_loop(
        &mut b,
        &LoopSpec {
            mode: Mode::Txpush,
            frame: Some((spec, len)),
            stop,
            deadline: None,
            quiet: true,
            probe: None,
            batch: 64,
            poll: false,
        },
    )?;
    Ok(GenResult {
        frames: s.packets,
        seconds: s.seconds,
    })
}

/// Arguments of `pktio gen`.
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// Interface to send from (in a lab: run it in the gen namespace, e.g.
    /// `pktio lab exec gen -- pktio gen -i vgen`).
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    interface: String,
    /// Engine: in-kernel live frames (fastest; kernel 5.18+) or AF_XDP transmit.
    #[arg(long, value_enum, default_value = "live")]
    engine: Generator,
    /// Frame size in bytes on the wire, FCS included (64..=1518).
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(64..=1518))]
    size: u32,
    /// Stop after this many frames.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// At most this many frames per second.
    #[arg(short = 'r', long)]
    rate: Option<f64>,
    /// Number of UDP flows (source ports varied).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    flows: u16,
    /// Stop after this many seconds (default: at Ctrl-C or --count).
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Pin to this CPU. Without it the live engine stays on the CPU it
    /// starts on (its two submitting threads share one CPU either way).
    #[arg(long)]
    cpu: Option<usize>,
    #[command(flatten)]
    frame: crate::cmd::xsk::AddrOpts,
}

/// Runs `pktio gen`.
pub fn run(a: GenArgs) -> anyhow::Result<std::process::ExitCode> {
    if let Some(c) = a.cpu {
        crate::run::pin_to_cpu(c)?;
    }
    if let Some(r) = a.rate {
        anyhow::ensure!(
            r.is_finite() && r > 0.0,
            "--rate must be a positive number of frames per second"
        );
    }
    let deadline = match a.duration {
        Some(d) if d.is_finite() && d > 0.0 => Some(Instant::now() + Duration::from_secs_f64(d)),
        Some(d) => anyhow::bail!("--duration {d} is not a positive number of seconds"),
        None => None,
    };
    let spec = a.frame.udp_frame();
    let len = (a.size - 4) as usize;
    let stop = crate::run::stop_flag();
    let r = match a.engine {
        Generator::Live => {
            let ifindex = crate::cmd::xsk::ifindex(&a.interface)?;
            let lim = Limits {
                count: a.count,
                rate: a.rate,
                flows: a.flows,
                deadline,
            };
            run_live_limited(ifindex, &spec, len, &stop, &lim)?
        }
        Generator::Xsk => {
            anyhow::ensure!(
                a.rate.is_none() && a.flows == 1,
                "--rate and --flows need --engine live"
            );
            use crate::cmd::xsk::{run_loop, LoopSpec, Mode, XskOpts};
            let opts = XskOpts::for_tx(&a.interface, a.duration);
            let mut b = opts.open(&a.interface, Mode::Txpush, false)?;
            let s = run_loop(
                &mut b,
                &LoopSpec {
                    mode: Mode::Txpush,
                    frame: Some((&spec, len as u32)),
                    stop: &stop,
                    deadline,
                    quiet: false,
                    probe: None,
                    batch: opts.batch,
                    poll: false,
                },
            )?;
            GenResult {
                frames: s.packets,
                seconds: s.seconds,
            }
        }
    };
    println!(
        "gen: {} frames of {} B in {:.2} s: {:.3} Mpps",
        r.frames,
        a.size,
        r.seconds,
        r.frames as f64 / r.seconds.max(1e-9) / 1e6
    );
    Ok(std::process::ExitCode::SUCCESS)
}
