//! Traffic generators for the lab, and the ladder that picks one.
//!
//! Engines, fastest first — the ladder [`Engine::LADDER`] that
//! `--engine auto` (the default everywhere a generator starts) walks down
//! until one works, recording each refusal with the kernel's answer:
//!
//! - [`Engine::Live`]: in-kernel live-frame injection. An XDP program that
//!   counts and returns `XDP_TX` is run by `BPF_PROG_RUN` with
//!   `BPF_F_TEST_XDP_LIVE_FRAMES` (kernel 5.18) on the sending interface:
//!   every run transmits a real frame out of it, with no skb and no socket
//!   (the xdp-trafficgen technique). Two threads on one CPU issue the calls,
//!   so that the kernel's per-call waits do not idle it. The receiving veth
//!   needs a NAPI instance (an XDP program or GRO) or the frames vanish.
//!   Some kernel builds refuse it even to root (`EPERM`), as do older
//!   kernels and seccomp policies: probed with one frame into `XDP_DROP`,
//!   which sends nothing.
//! - [`Engine::Xsk`]: AF_XDP transmit. The frames are written once into the
//!   UMEM; the loop only re-posts their descriptors as completions return
//!   them, and kicks once per batch (copy mode sends at most
//!   `XDP_MAX_TX_SKB_BUDGET` descriptors per `sendto`, which is raised to
//!   the batch where the kernel has it, 6.17).
//! - [`Engine::Packet`]: an AF_PACKET `TPACKET_V2` TX ring with
//!   `PACKET_QDISC_BYPASS`, one `sendto` per batch (frames up to 16 KiB).
//! - [`Engine::Raw`]: a plain AF_PACKET socket, one `send` per frame.
//!
//! Every engine honours the same [`Limits`] (count, rate, flows, deadline)
//! and counts what it sent in a [`Progress`] that others may read while it
//! runs (the bench's offered rate).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use anyhow::Context;
use pktio::bpf::{progs, BpfError, PerCpuArray, Program, XdpAction};
use pktio::wire::UdpFrame;

use pktio_host::retry::BusyRetry;

use crate::loops::XSK_SKB_BUDGET;

/// A generator engine, or `Auto` for the first of [`Engine::LADDER`] that
/// this host allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The fastest engine this host allows: live, then xsk, packet, raw.
    Auto,
    /// BPF_PROG_RUN live frames (XDP_TX): the fastest source; kernel 5.18+,
    /// refused by some kernel builds and seccomp policies.
    Live,
    /// AF_XDP transmit (frames built once in the UMEM, descriptors re-posted).
    Xsk,
    /// AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS).
    Packet,
    /// A plain AF_PACKET socket, one send() per frame.
    Raw,
}

impl Engine {
    /// The concrete engines, fastest first: the order `Auto` tries them.
    pub const LADDER: [Engine; 4] = [Engine::Live, Engine::Xsk, Engine::Packet, Engine::Raw];

    /// `Auto` and the ladder: every value a flag may name.
    pub const ALL: [Engine; 5] = [
        Engine::Auto,
        Engine::Live,
        Engine::Xsk,
        Engine::Packet,
        Engine::Raw,
    ];

    /// The engine's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Live => "live",
            Engine::Xsk => "xsk",
            Engine::Packet => "packet",
            Engine::Raw => "raw",
        }
    }

    /// What the engine is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Engine::Auto => "the fastest engine this host allows",
            Engine::Live => "XDP live frames (BPF_PROG_RUN, XDP_TX)",
            Engine::Xsk => "AF_XDP transmit",
            Engine::Packet => "AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS)",
            Engine::Raw => "AF_PACKET socket, one send() per frame",
        }
    }

    /// The longest frame (bytes, without FCS) the engine makes.
    fn frame_limit(self) -> usize {
        match self {
            Engine::Live => LIVE_MAX_FRAME,
            Engine::Xsk => XSK_MAX_FRAME,
            Engine::Packet => PACKET_MAX_FRAME,
            Engine::Auto | Engine::Raw => 65535,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine this host (or this frame size) did not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The engine.
    pub engine: Engine,
    /// The kernel's errno, when the kernel said no.
    pub errno: Option<i32>,
    /// Why, in words (the kernel's answer included).
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused: {}", self.engine, self.reason)
    }
}

/// The engine a run used, and the ones refused before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The engine that ran.
    pub engine: Engine,
    /// Engines above it on the ladder that were refused, in order.
    pub refused: Vec<Refusal>,
}

impl Choice {
    /// One line: the engine, and why the faster ones were not used.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({})", self.engine, self.engine.describe());
        for r in &self.refused {
            s.push_str("; ");
            s.push_str(&r.to_string());
        }
        s
    }

    /// The choice as JSON: `{"engine": …, "refused": [{"engine", "errno", "reason"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "engine": self.engine.name(),
            "refused": self.refused.iter().map(|r| serde_json::json!({
                "engine": r.engine.name(),
                "errno": r.errno,
                "reason": r.reason,
            })).collect::<Vec<_>>(),
        })
    }
}

/// An engine asked for by name that this host does not allow.
#[derive(Debug, thiserror::Error)]
#[error(
    "the {} generator ({}) cannot run here: {}; {}",
    refusal.engine,
    refusal.engine.describe(),
    refusal.reason,
    works_in_words(works)
)]
pub struct EngineRefused {
    /// The refusal, with the kernel's errno.
    pub refusal: Refusal,
    /// The engines that do work here (probed), fastest first.
    pub works: Vec<Engine>,
}

fn works_in_words(works: &[Engine]) -> String {
    if works.is_empty() {
        "no other engine works on this interface either".into()
    } else {
        let names: Vec<&str> = works.iter().map(|e| e.name()).collect();
        format!(
            "engines that work here: {} (--engine {} or auto)",
            names.join(", "),
            names[0]
        )
    }
}

/// No engine of the ladder works.
#[derive(Debug, thiserror::Error)]
#[error("no generator engine works on {ifname}: {}", refused.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))]
pub struct NoEngine {
    /// The interface.
    pub ifname: String,
    /// Every refusal, in ladder order.
    pub refused: Vec<Refusal>,
}

/// What a generator run sent.
#[derive(Debug, Clone, Default)]
pub struct GenResult {
    /// Frames handed to the interface.
    pub frames: u64,
    /// Seconds it ran.
    pub seconds: f64,
    /// Which engine ran, and what was refused before it.
    pub choice: Option<Choice>,
}

/// Frames sent so far, readable while a generator runs (from any thread).
#[derive(Debug, Default)]
pub struct Progress {
    /// Frames counted by the engine's loop.
    sent: AtomicU64,
    /// The live engine's in-kernel counter (per-CPU, bumped by the program
    /// for every frame): exact at any moment, where the loop only learns a
    /// call's count when the call returns.
    live: OnceLock<PerCpuArray>,
    /// Times the device pushed back: a transmit the kernel answered "busy"
    /// because the interface's queue was stopped (a veth whose peer's
    /// NAPI ring is full), or a send that took fewer frames than offered.
    held: AtomicU64,
}

impl Progress {
    /// Times the receiving side held the generator back so far: while it
    /// grows, the rate offered is what the receiver took, not what the
    /// generator could make.
    pub fn held_back(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Frames sent so far.
    pub fn frames(&self) -> u64 {
        if let Some(m) = self.live.get() {
            if let Ok(n) = m.sum(0) {
                return n;
            }
        }
        self.sent.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where a generator sends: an interface of the calling thread's namespace
/// and the frame to send (a UDP frame of `len` bytes without FCS).
#[derive(Debug, Clone)]
pub struct Target {
    /// Interface name.
    pub ifname: String,
    /// Its index.
    pub ifindex: u32,
    /// The frame's addresses and ports.
    pub spec: UdpFrame,
    /// Frame length in bytes, without the FCS.
    pub len: usize,
    /// The TX queue to send on, for one generator of several
    /// ([`run_queues`]): the `xsk` engine binds its socket to it, and `auto`
    /// skips `live` (whose frames take the queue of the submitting CPU).
    /// `packet` and `raw` cannot choose: the kernel picks the TX queue from
    /// the flow's hash. `None`: queue 0, every engine.
    pub queue: Option<u32>,
}

impl Target {
    /// The interface `ifname` of the calling thread's namespace.
    pub fn new(ifname: &str, spec: UdpFrame, len: usize) -> anyhow::Result<Target> {
        Ok(Target {
            ifname: ifname.to_string(),
            ifindex: crate::loops::ifindex(ifname)?,
            spec,
            len,
            queue: None,
        })
    }
}

/// Runs a generator on `t` until `stop`, the deadline or the count: the
/// engine `want`, or with [`Engine::Auto`] the first of [`Engine::LADDER`]
/// that opens, each refusal recorded in the result's [`Choice`].
///
/// # Errors
/// [`EngineRefused`] when `want` names an engine this host refuses (with
/// the engines that would work); [`NoEngine`] when no engine works; a
/// failure of the running engine.
pub fn run(
    t: &Target,
    want: Engine,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> anyhow::Result<GenResult> {
    let (ran, choice) = walk(t, want, |e| open_and_run(e, t, lim, stop, progress))?;
    let mut r = ran?;
    r.choice = Some(choice);
    Ok(r)
}

/// One generator per TX queue of `t.ifname`, each on a thread of its own:
/// queue `queues[i]`'s thread pinned to `cpus[i % cpus.len()]` (an empty
/// list pins nothing), all stopping on `stop` and the same [`Limits`] (a
/// count or a rate applies to each queue). Queue `i`'s flows are UDP
/// source ports `spec.src_port + i × flows ..`, so that a receiver's RSS
/// hash, or a fanout group, tells the queues' traffic apart;
/// `progress[i]` counts queue `i`'s frames, or a single `progress` counts
/// every queue's. When one generator fails the
/// others stop. The threads start in the calling thread's network
/// namespace.
///
/// On a veth, the peer receives a frame on the RX queue of the TX queue it
/// was sent on: with the `xsk` engine (bound to its queue) queue `q` here
/// feeds queue `q` there. `packet` and `raw` leave the queue to the
/// kernel's flow hash.
///
/// # Errors
/// The first generator's error, after every thread ended; an empty queue
/// list or a `progress` of another length.
pub fn run_queues(
    t: &Target,
    queues: &[u32],
    cpus: &[usize],
    want: Engine,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &[Progress],
) -> anyhow::Result<Vec<GenResult>> {
    anyhow::ensure!(!queues.is_empty(), "no queue to generate on");
    anyhow::ensure!(
        progress.len() == queues.len() || progress.len() == 1,
        "one progress counter, or one per queue: {} for {} queues",
        progress.len(),
        queues.len()
    );
    let flows = lim.flows.max(1);
    let halt = AtomicBool::new(false);
    std::thread::scope(|s| {
        let threads: Vec<_> = queues
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let mut tq = t.clone();
                tq.queue = Some(q);
                tq.spec.src_port = t.spec.src_port.wrapping_add((i as u16).wrapping_mul(flows));
                let (halt, p) = (&halt, &progress[i % progress.len()]);
                let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
                s.spawn(move || {
                    let r = cpu
                        .map_or(Ok(()), crate::run::set_affinity)
                        .and_then(|()| run(&tq, want, lim, halt, p))
                        .with_context(|| format!("the generator of queue {q}"));
                    if r.is_err() {
                        halt.store(true, Ordering::SeqCst);
                    }
                    r
                })
            })
            .collect();
        while !threads.iter().all(|t| t.is_finished()) {
            if stop.load(Ordering::Relaxed) {
                halt.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a generator thread panicked")))
            })
            .collect()
    })
}

/// Picks the engine for `t` without sending anything: `want`, or with
/// [`Engine::Auto`] the first of [`Engine::LADDER`] that opens, with the
/// refusals before it.
///
/// # Errors
/// As [`run`] before anything is sent.
pub fn choose(t: &Target, want: Engine) -> anyhow::Result<Choice> {
    walk(t, want, |e| probe(t, e)).map(|((), c)| c)
}

/// Whether `engine` opens on `t` (nothing is sent).
pub fn probe(t: &Target, engine: Engine) -> Result<(), Refusal> {
    let lim = Limits {
        count: Some(0),
        ..Limits::default()
    };
    open_and_run(
        engine,
        t,
        &lim,
        &AtomicBool::new(true),
        &Progress::default(),
    )
    .map(|_| ())
}

/// The ladder of `want` ([`Engine::LADDER`] for `Auto`, else `want`
/// alone): the first engine `open` takes, with the refusals before it.
fn walk<T>(
    t: &Target,
    want: Engine,
    mut open: impl FnMut(Engine) -> Result<T, Refusal>,
) -> anyhow::Result<(T, Choice)> {
    let candidates = match want {
        // Live frames leave on the submitting CPU's queue, not t.queue.
        Engine::Auto if t.queue.is_some() => &Engine::LADDER[1..],
        Engine::Auto => &Engine::LADDER[..],
        _ => std::slice::from_ref(&want),
    };
    let mut refused = Vec::new();
    for &engine in candidates {
        match open(engine) {
            Ok(x) => return Ok((x, Choice { engine, refused })),
            Err(r) => refused.push(r),
        }
    }
    if want != Engine::Auto {
        let works = Engine::LADDER
            .into_iter()
            .filter(|&e| e != want && probe(t, e).is_ok())
            .collect();
        return Err(EngineRefused {
            refusal: refused.remove(0),
            works,
        }
        .into());
    }
    Err(NoEngine {
        ifname: t.ifname.clone(),
        refused,
    }
    .into())
}

/// Opens `engine` on `t` (`Err`: refused) and runs it under `lim`; with a
/// count of 0 it only opens.
fn open_and_run(
    engine: Engine,
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<anyhow::Result<GenResult>, Refusal> {
    match engine {
        Engine::Live => run_live_engine(t, lim, stop, progress),
        Engine::Xsk => run_xsk(t, lim, stop, progress),
        Engine::Packet => run_packet(t, lim, stop, progress),
        Engine::Raw => run_raw(t, lim, stop, progress),
        Engine::Auto => unreachable!("Auto is not an engine of the ladder"),
    }
}

/// A refusal from an error: its errno when the kernel gave one.
fn refusal(engine: Engine, e: &anyhow::Error) -> Refusal {
    let errno = e.chain().find_map(|c| {
        c.downcast_ref::<BpfError>()
            .and_then(BpfError::errno)
            .or_else(|| c.downcast_ref::<pktio::SysError>().and_then(|s| s.errno()))
            .or_else(|| {
                c.downcast_ref::<std::io::Error>()
                    .and_then(|s| s.raw_os_error())
            })
    });
    // The chain, each message once: errors that quote their source already
    // would otherwise repeat it.
    let mut parts: Vec<String> = Vec::new();
    for m in e.chain().map(|c| c.to_string()) {
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
    }
    Refusal {
        engine,
        errno,
        reason: parts.join(": "),
    }
}

/// The engine cannot make frames this long.
fn too_long(engine: Engine, len: usize) -> Option<Refusal> {
    (len > engine.frame_limit()).then(|| Refusal {
        engine,
        errno: None,
        reason: format!(
            "it makes frames of up to {} bytes on the wire; {} asked for",
            engine.frame_limit() + 4,
            len + 4
        ),
    })
}

/// The most frames of one `BPF_PROG_RUN` call. Each live-frames call
/// waits twice for an RCU grace period, idle: the kernel puts the program
/// into the XDP dispatcher when the call starts and takes it out when it
/// ends (`bpf_dispatcher_change_prog` → `synchronize_rcu`, ~20–25 ms
/// together on the project's VM). A call must carry many frames; a stop
/// request is seen between calls, so calls are sized by time
/// ([`LIVE_CALL_TIME`], see [`next_repeat`]) up to this many frames.
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

/// Frames of the first `BPF_PROG_RUN` call of a run (later calls are sized
/// from the CPU time the first ones took).
const LIVE_FIRST_REPEAT: u32 = 1 << 14;

/// How much CPU time the frames of one live-frames call should take: a
/// stop request or the end of `-d` waits for the call in progress. Its
/// wall time is this times the threads sharing the CPU (the two
/// submitters, the receive softirq) plus its grace periods (~25 ms): about
/// 60–100 ms here, measured.
const LIVE_CALL_TIME: Duration = Duration::from_millis(20);

/// A live-frames call's cost per frame in picoseconds: the CPU time the
/// calling thread spent in it (`CLOCK_THREAD_CPUTIME_ID`), per frame.
fn ps_per_frame(repeat: u32, cpu: Duration) -> u64 {
    let ps = cpu.as_nanos().saturating_mul(1000) / u128::from(repeat.max(1));
    u64::try_from(ps).unwrap_or(u64::MAX).max(1)
}

/// The frames of the next live-frames call: as many as take
/// [`LIVE_CALL_TIME`] of CPU at the pace `ps` (from [`ps_per_frame`]) the
/// last call showed, growing at most 4× per call, from `LIVE_BATCH` to
/// `LIVE_REPEAT`.
///
/// The pace is CPU time, not wall time: a call's wall time is its frames
/// plus a fixed cost (two RCU grace periods, ~25 ms here, far more on a
/// loaded host) that the thread sleeps through. Sized by wall time, a call
/// shrinks when the grace periods are slow, which makes the fixed cost a
/// larger share of the next call, which shrinks it further, down to 64
/// frames a call: the generator collapsed to a few thousand frames per
/// second that way (bench ceilings of 0.006 Mpps).
fn next_repeat(repeat: u32, ps: u64) -> u32 {
    let want = LIVE_CALL_TIME.as_secs_f64() * 1e12 / ps.max(1) as f64;
    let grown = f64::from(repeat) * 4.0;
    want.min(grown)
        .clamp(f64::from(LIVE_BATCH), f64::from(LIVE_REPEAT)) as u32
}

/// Frames per batch inside the kernel (at most 256).
const LIVE_BATCH: u32 = 64;

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

/// The live-frame generator's loop. With several flows, successive
/// `BPF_PROG_RUN` calls use successive flows' frames (each call sends one
/// flow's frame `repeat` times), so flows interleave in chunks. The program
/// counts every frame in a per-CPU counter before `XDP_TX`, which
/// [`Progress::frames`] reads while the run goes on.
///
/// The calls are issued by [`LIVE_SUBMITTERS`] threads that share one CPU:
/// the calling thread's, if it is pinned to one, else the CPU it runs on
/// when the run starts. The generator is one core's worth, pinned or not.
fn live_loop(
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> anyhow::Result<GenResult> {
    let frames_by_flow = flow_frames(&t.spec, t.len, lim.flows)?;
    let counter = PerCpuArray::new(1).context("creating the generator's frame counter")?;
    let prog = Program::load_xdp(&progs::count_then(XdpAction::Tx), &[counter.as_fd()])
        .context("loading the XDP_TX generator program")?;
    let _ = progress.live.set(counter);
    // With a rate, send 100 ms worth per call (calls are expensive, see
    // LIVE_REPEAT) and pace the calls: the rate holds on average over 0.1 s.
    let chunk = match lim.rate {
        Some(r) => ((r / 10.0).ceil() as u32).clamp(1, LIVE_REPEAT),
        None => LIVE_REPEAT,
    };
    // Calls start small and grow to take about LIVE_CALL_TIME of CPU: a stop is
    // seen between calls, and the frames of a call take as long as the
    // host's rate makes them.
    let first_chunk = chunk.min(LIVE_FIRST_REPEAT);
    let ifindex = t.ifindex;
    let cpu = one_cpu()?;
    let start = Instant::now();
    let shared = LiveShared {
        ifindex,
        prog: &prog,
        frames_by_flow: &frames_by_flow,
        lim,
        chunk,
        repeat: AtomicU32::new(first_chunk),
        start,
        stop,
        failed: AtomicBool::new(false),
        plan: Mutex::new(Plan::default()),
        sent: AtomicU64::new(0),
        progress,
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
        choice: None,
    })
}

/// The CPU the live-frame submitters share: the calling thread's only
/// allowed CPU, or the one it is running on.
fn one_cpu() -> anyhow::Result<usize> {
    let allowed = pktio_host::cpu::allowed_cpus().context("sched_getaffinity")?;
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
    /// The most frames of one call (a rate's 100 ms worth, or LIVE_REPEAT).
    chunk: u32,
    /// Frames of the next call: sized after each call so that a call
    /// takes about [`LIVE_CALL_TIME`] ([`next_repeat`]), at most `chunk`.
    repeat: AtomicU32,
    start: Instant,
    stop: &'a AtomicBool,
    /// Set when a submitter fails: the others stop too.
    failed: AtomicBool,
    plan: Mutex<Plan>,
    /// Frames of completed calls.
    sent: AtomicU64,
    progress: &'a Progress,
}

impl LiveShared<'_> {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
            && !self.failed.load(Ordering::Relaxed)
            && self.lim.deadline.is_none_or(|d| Instant::now() < d)
    }

    /// One submitter: claim a call's worth of frames, wait for its slot
    /// when a rate is set, run it; until stopped or the count is claimed.
    fn submit(&self) -> anyhow::Result<()> {
        while self.running() {
            let (repeat, flow, first) = {
                let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
                let chunk = self.repeat.load(Ordering::Relaxed).clamp(1, self.chunk);
                let repeat = match self.lim.count {
                    Some(c) if plan.claimed >= c => return Ok(()),
                    Some(c) => u64::from(chunk).min(c - plan.claimed) as u32,
                    None => chunk,
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
            let began = pktio_host::iface::thread_cpu_time();
            match self
                .prog
                .run_live_frames(self.ifindex, frame, repeat, LIVE_BATCH.min(repeat))
            {
                Ok(r) => {
                    self.sent.fetch_add(u64::from(r.frames), Ordering::Relaxed);
                    self.progress.add(u64::from(r.frames));
                    let cpu = pktio_host::iface::thread_cpu_time().saturating_sub(began);
                    let next = next_repeat(repeat, ps_per_frame(repeat, cpu));
                    self.repeat.store(next, Ordering::Relaxed);
                }
                // A signal (Ctrl-C) interrupts the call with EINTR: how many
                // of its frames went out is unknown, so none are counted and
                // the claim is returned; the stop flag ends the run.
                Err(pktio::bpf::BpfError::Sys(e)) if e.errno() == Some(libc::EINTR) => {
                    let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
                    plan.claimed -= u64::from(repeat);
                }
                Err(e) => return Err(anyhow::Error::new(e)),
            }
        }
        Ok(())
    }
}

/// The largest frame (bytes, without FCS) the AF_XDP engine makes: one
/// 4096-byte UMEM frame less the kernel's `XDP_PACKET_HEADROOM`.
pub const XSK_MAX_FRAME: usize = 4096 - 256;
/// The largest frame (bytes, without FCS) the TX-ring engine makes: a
/// 16 KiB slot less its `tpacket2_hdr` and alignment.
pub const PACKET_MAX_FRAME: usize = 16384 - 128;
/// UMEM frames of the AF_XDP engine: every one is built once and kept in
/// flight between the TX ring, the kernel and the loop.
const XSK_FRAMES: u32 = 4096;
/// The AF_XDP engine's TX ring.
const XSK_RING: u32 = 2048;
/// Frames posted per loop turn by the socket engines.
const GEN_BATCH: u32 = 256;
/// How long a stopping engine waits for frames already handed to the
/// kernel to complete (they are on their way; the count must be exact).
const DRAIN: Duration = Duration::from_millis(500);

/// Paces the socket engines: how many frames may go now, given a count
/// and a rate.
#[derive(Debug)]
struct Pacer<'a> {
    lim: &'a Limits,
    start: Instant,
}

impl Pacer<'_> {
    /// Frames that may be posted now, `posted` being posted so far.
    fn allowance(&self, posted: u64) -> u64 {
        let mut a = u64::MAX;
        if let Some(c) = self.lim.count {
            a = c.saturating_sub(posted);
        }
        if let Some(r) = self.lim.rate {
            let due = (r * self.start.elapsed().as_secs_f64()) as u64 + 1;
            a = a.min(due.saturating_sub(posted));
        }
        a
    }

    /// Whether the count is done.
    fn counted_out(&self, posted: u64) -> bool {
        self.lim.count.is_some_and(|c| posted >= c)
    }

    /// Sleeps until the next frame is due under the rate (at most 5 ms, so
    /// that a stop is seen promptly).
    fn wait_for_slot(&self, posted: u64) {
        if let Some(r) = self.lim.rate {
            let due = self.start + Duration::from_secs_f64((posted as f64 / r).min(1e9));
            let left = due.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
    }

    fn running(&self, stop: &AtomicBool) -> bool {
        !stop.load(Ordering::Relaxed) && self.lim.deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// The live-frame engine: probes with one frame into `XDP_DROP` (sends
/// nothing), then runs [`live_loop`].
fn run_live_engine(
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<anyhow::Result<GenResult>, Refusal> {
    if let Some(r) = too_long(Engine::Live, t.len) {
        return Err(r);
    }
    let probe = || -> anyhow::Result<()> {
        let frames = flow_frames(&t.spec, t.len, 1)?;
        let prog = Program::load_xdp(&progs::xdp_drop(), &[])
            .context("loading an XDP_DROP program for the probe")?;
        prog.run_live_frames(t.ifindex, &frames[0], 1, 1)?;
        Ok(())
    };
    probe().map_err(|e| refusal(Engine::Live, &e))?;
    if lim.count == Some(0) {
        return Ok(Ok(GenResult::default()));
    }
    Ok(live_loop(t, lim, stop, progress))
}

/// The AF_XDP engine, with `XDP_MAX_TX_SKB_BUDGET` raised where the kernel
/// has it (6.17) and the kernel's default elsewhere.
fn run_xsk(
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<anyhow::Result<GenResult>, Refusal> {
    // The kernel releases a closed socket's hold on its queue after an RCU
    // grace period (deferred work): a probe's socket, just closed, can make
    // the real bind answer EBUSY for a moment.
    // A kernel without the budget option refuses it: then the default.
    let mut budget = Some(XSK_SKB_BUDGET);
    let busy = |r: &Refusal| r.errno == Some(libc::EBUSY);
    BusyRetry::QUEUE_RELEASE.run(busy, || {
        match xsk_open_and_run(t, lim, stop, progress, budget) {
            Err(r) if budget.is_some() && r.reason.contains("tx skb budget") => {
                budget = None;
                xsk_open_and_run(t, lim, stop, progress, budget)
            }
            other => other,
        }
    })
}

fn xsk_open_and_run(
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
    budget: Option<u32>,
) -> Result<anyhow::Result<GenResult>, Refusal> {
    use pktio::xdp::{Umem, UmemConfig, XskSocket};
    if let Some(r) = too_long(Engine::Xsk, t.len) {
        return Err(r);
    }
    let refuse = |e: anyhow::Error| refusal(Engine::Xsk, &e);
    let frames_by_flow = flow_frames(&t.spec, t.len, lim.flows).map_err(refuse)?;
    let umem = Umem::new(UmemConfig {
        frame_count: XSK_FRAMES,
        ..UmemConfig::default()
    })
    .map_err(|e| refuse(e.into()))?;
    let mut sock = XskSocket::builder(&t.ifname)
        .queue(t.queue.unwrap_or(0))
        .rx_size(0)
        .tx_size(XSK_RING)
        .tx_skb_budget(budget)
        // Transmit only: no steering program, nothing taken from the host.
        .attach_mode(pktio::xdp::AttachMode::None)
        .build(&umem)
        .map_err(|e| refuse(e.into()))?;
    if lim.count == Some(0) {
        return Ok(Ok(GenResult::default()));
    }
    Ok(xsk_loop(
        &umem,
        &mut sock,
        &frames_by_flow,
        lim,
        stop,
        progress,
    ))
}

/// The AF_XDP transmit loop: every UMEM frame gets its bytes once; after
/// that the loop moves descriptors only — completed frames straight back
/// onto the TX ring — and kicks once per batch.
fn xsk_loop<'u>(
    umem: &'u pktio::xdp::Umem,
    sock: &mut pktio::xdp::XskSocket<'u>,
    frames_by_flow: &[Vec<u8>],
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> anyhow::Result<GenResult> {
    let len = frames_by_flow[0].len() as u32;
    let mut free = FlowFrames::build(umem, frames_by_flow)?;
    let pacer = Pacer {
        lim,
        start: Instant::now(),
    };
    let (mut posted, mut completed) = (0u64, 0u64);
    let mut busy_seen = sock.kicks().tx_kick_busy;
    let mut drain_until: Option<Instant> = None;
    loop {
        let parts = sock.parts();
        let comp = parts
            .completion
            .ok_or_else(|| anyhow::anyhow!("the AF_XDP socket has no completion ring"))?;
        let mut n = 0u64;
        for mut f in comp.complete(u32::MAX) {
            // The bytes are still there: the kernel only read them.
            f.set_len(len)
                .map_err(|cap| anyhow::anyhow!("frame of {cap} bytes shrank"))?;
            free.put(f);
            n += 1;
        }
        completed += n;
        progress.add(n);
        let stopping = !pacer.running(stop) || pacer.counted_out(posted);
        if stopping {
            if completed >= posted {
                break;
            }
            let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            if Instant::now() >= until {
                break;
            }
            sock.kick_tx()?;
            std::thread::yield_now();
            continue;
        }
        let want = pacer
            .allowance(posted)
            .min(free.len() as u64)
            .min(u64::from(GEN_BATCH)) as u32;
        if want == 0 {
            if free.len() == 0 {
                // Every frame is still in the kernel: in copy mode a frame
                // completes when the receiver frees its skb, so the
                // receiving end is holding the generator back.
                progress.held.fetch_add(1, Ordering::Relaxed);
                sock.kick_tx()?;
            } else {
                pacer.wait_for_slot(posted);
            }
            continue;
        }
        let tx = sock
            .tx()
            .ok_or_else(|| anyhow::anyhow!("the AF_XDP socket has no TX ring"))?;
        let mut batch = tx.reserve(want);
        let mut k = posted;
        while batch.remaining() > 0 {
            // Frame k of the run is of flow k % flows, as in the other engines.
            let Some(f) = free.take(k) else { break };
            if let Err(f) = batch.push(f) {
                free.put(f);
                break;
            }
            k += 1;
        }
        posted += u64::from(batch.commit());
        sock.kick_tx()?;
        if sock.kicks().tx_kick_busy > busy_seen {
            busy_seen = sock.kicks().tx_kick_busy;
            progress.held.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(GenResult {
        frames: completed,
        seconds: pacer.start.elapsed().as_secs_f64(),
        choice: None,
    })
}

/// The AF_XDP engine's frames, written once, kept free per flow: a frame
/// goes back to its flow's list when the kernel completes it, so frame `k`
/// of the run can always be of flow `k % flows`.
struct FlowFrames<'u> {
    /// Free frames of each flow.
    free: Vec<Vec<pktio::xdp::Frame<'u>>>,
    /// The flow of each UMEM chunk (by chunk index).
    flow_of: Vec<usize>,
    chunk: u64,
    len: usize,
}

impl<'u> FlowFrames<'u> {
    /// Takes every frame of `umem` and writes flow `i % flows`'s bytes into
    /// the `i`-th.
    fn build(umem: &'u pktio::xdp::Umem, frames_by_flow: &[Vec<u8>]) -> anyhow::Result<Self> {
        let flows = frames_by_flow.len();
        let mut ff = FlowFrames {
            free: (0..flows).map(|_| Vec::new()).collect(),
            flow_of: vec![0; umem.frame_count() as usize],
            chunk: u64::from(umem.frame_size()),
            len: 0,
        };
        let mut i = 0usize;
        while let Some(mut f) = umem.alloc() {
            let flow = i % flows;
            f.write(&frames_by_flow[flow]).map_err(|cap| {
                anyhow::anyhow!(
                    "a {}-byte frame does not fit a UMEM frame of {cap} bytes",
                    frames_by_flow[flow].len()
                )
            })?;
            if let Some(slot) = ff.flow_of.get_mut((f.addr() / ff.chunk) as usize) {
                *slot = flow;
            }
            ff.free[flow].push(f);
            ff.len += 1;
            i += 1;
        }
        Ok(ff)
    }

    fn len(&self) -> usize {
        self.len
    }

    /// A free frame for frame `k` of the run (flow `k % flows`), if one is.
    fn take(&mut self, k: u64) -> Option<pktio::xdp::Frame<'u>> {
        let flows = self.free.len() as u64;
        let f = self.free[(k % flows) as usize].pop()?;
        self.len -= 1;
        Some(f)
    }

    /// Gives a frame back to its flow's list.
    fn put(&mut self, f: pktio::xdp::Frame<'u>) {
        let flow = self
            .flow_of
            .get((f.addr() / self.chunk) as usize)
            .copied()
            .unwrap_or(0);
        self.free[flow].push(f);
        self.len += 1;
    }
}

/// The AF_PACKET TX-ring engine (`TPACKET_V2`, `PACKET_QDISC_BYPASS`).
fn run_packet(
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<anyhow::Result<GenResult>, Refusal> {
    use pktio::backend::{Backend, BackendConfig, BackendKind, Direction, PacketIo};
    if let Some(r) = too_long(Engine::Packet, t.len) {
        return Err(r);
    }
    let refuse = |e: anyhow::Error| refusal(Engine::Packet, &e);
    let frames_by_flow = flow_frames(&t.spec, t.len, lim.flows).map_err(refuse)?;
    let mut cfg = BackendConfig::new(&t.ifname);
    cfg.direction = Direction::Tx;
    // Slots of a power of two that hold the frame and its header; 16 MiB.
    cfg.frame_size = ((t.len + 128) as u32).next_power_of_two().max(2048);
    cfg.frame_count = ((16u32 << 20) / cfg.frame_size).clamp(256, 4096);
    cfg.qdisc_bypass = true;
    let mut b = Backend::open(BackendKind::PacketV2, &cfg).map_err(|e| refuse(e.into()))?;
    if lim.count == Some(0) {
        return Ok(Ok(GenResult::default()));
    }
    let frame = |k: u64| &frames_by_flow[k as usize % frames_by_flow.len()];
    let r = paced_loop(lim, stop, progress, |first, want| {
        let mut k = first;
        let n = b.tx_batch(want, |buf| {
            let f = frame(k);
            k += 1;
            buf.get_mut(..f.len())?.copy_from_slice(f);
            Some(f.len())
        })?;
        if n < want {
            b.flush()?; // the ring is full: send and reap, then go on
        }
        Ok(n)
    });
    Ok(r.and_then(|r| {
        b.flush()?;
        Ok(r)
    }))
}

/// The plain raw-socket engine: one `send` per frame, through the qdisc.
fn run_raw(
    t: &Target,
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<anyhow::Result<GenResult>, Refusal> {
    use pktio::packet::PacketSocket;
    let refuse = |e: anyhow::Error| refusal(Engine::Raw, &e);
    let frames_by_flow = flow_frames(&t.spec, t.len, lim.flows).map_err(refuse)?;
    let sock = PacketSocket::open(&t.ifname).map_err(|e| refuse(e.into()))?;
    sock.bind(false).map_err(|e| refuse(e.into()))?;
    if lim.count == Some(0) {
        return Ok(Ok(GenResult::default()));
    }
    let frame = |k: u64| &frames_by_flow[k as usize % frames_by_flow.len()];
    Ok(paced_loop(lim, stop, progress, |first, want| {
        for n in 0..want {
            if !sock.send(frame(first + u64::from(n)))? {
                std::thread::yield_now(); // the queue is full: yield, then go on
                return Ok(n);
            }
        }
        Ok(want)
    }))
}

/// The loop of the engines that send from their own memory (the TX ring,
/// the raw socket): each turn, up to a batch within the pacer's allowance.
/// `send(first, want)` sends frames `first..first + want` of the run
/// (frame `k` is flow `k % flows`) and returns how many went (fewer when
/// the kernel has no room now).
fn paced_loop(
    lim: &Limits,
    stop: &AtomicBool,
    progress: &Progress,
    mut send: impl FnMut(u64, u32) -> anyhow::Result<u32>,
) -> anyhow::Result<GenResult> {
    let pacer = Pacer {
        lim,
        start: Instant::now(),
    };
    let mut sent = 0u64;
    while pacer.running(stop) && !pacer.counted_out(sent) {
        let want = pacer.allowance(sent).min(u64::from(GEN_BATCH)) as u32;
        if want == 0 {
            pacer.wait_for_slot(sent);
            continue;
        }
        let n = u64::from(send(sent, want)?);
        sent += n;
        progress.add(n);
        if n < u64::from(want) {
            progress.held.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(GenResult {
        frames: sent,
        seconds: pacer.start.elapsed().as_secs_f64(),
        choice: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_calls_are_sized_to_about_twenty_ms_of_cpu() {
        let pace = |repeat, ms| ps_per_frame(repeat, Duration::from_millis(ms));
        // 8 Mpps: 16384 frames took 2 ms of CPU; grows 4x at most per call.
        assert_eq!(next_repeat(16_384, pace(16_384, 2)), 65_536);
        // 2.5 Mpps with 65536 frames in 26 ms: about 20 ms worth next.
        let n = next_repeat(65_536, pace(65_536, 26));
        assert!((49_000..=51_000).contains(&n), "{n}");
        // A slow host: 100k frames took a second: 2000 next.
        let n = next_repeat(100_000, pace(100_000, 1000));
        assert!((1_900..=2_100).contains(&n), "{n}");
        // Never below a kernel batch nor above the cap.
        assert_eq!(next_repeat(64, pace(64, 10_000)), LIVE_BATCH);
        assert_eq!(next_repeat(LIVE_REPEAT, 1), LIVE_REPEAT);
        assert_eq!(ps_per_frame(0, Duration::ZERO), 1);
    }

    /// Calls whose wall time is mostly a slow fixed cost (grace periods of
    /// 60 ms on a loaded host) must not shrink the next call: sized by CPU
    /// time, the generator converges to about 20 ms of frames a call; sized
    /// by wall time, it collapsed to 64 frames a call (seen: bench ceilings
    /// of 0.006 Mpps).
    #[test]
    fn slow_grace_periods_do_not_shrink_calls() {
        // The host's true cost: 100 ns of CPU a frame, plus 60 ms asleep
        // per call.
        let cpu = |n: u32| Duration::from_nanos(100 * u64::from(n));
        let wall = |n: u32| Duration::from_millis(60) + cpu(n);
        let mut repeat = LIVE_FIRST_REPEAT;
        for _ in 0..20 {
            let next = next_repeat(repeat, ps_per_frame(repeat, cpu(repeat)));
            assert!(next >= repeat, "shrank from {repeat} to {next}");
            repeat = next;
        }
        assert!((190_000..=210_000).contains(&repeat), "{repeat}");
        // Sized by wall time it spirals down to one kernel batch.
        let mut old = LIVE_FIRST_REPEAT;
        for _ in 0..100 {
            old = next_repeat(old, ps_per_frame(old, wall(old)));
        }
        assert_eq!(old, LIVE_BATCH);
    }
}
