//! `pktio gen`: the traffic generator on an interface, its rate each
//! second on stderr. The engines and their ladder are
//! [`pktio_bench::gen`]; this file holds the flags, the consent and the
//! printing of the summary (text, and JSON with `--json`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pktio_bench::gen::{run, run_queues, Engine, GenResult, Limits, Progress, Target};
use pktio_bench::report::schema::{GEN, GEN_SECOND};

use crate::output::{human, JsonTo};

/// Arguments of `pktio gen`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Engines (--engine auto, the default, takes the first this host allows, and says which and why):
  live    BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (XDP_TX): fastest; kernel 5.18+, refused by
          some kernel builds (EPERM even for root) and by seccomp policies
  xsk     AF_XDP transmit: frames built once in the UMEM, descriptors re-posted
  packet  AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS)
  raw     a plain AF_PACKET socket, one send() per frame
Every engine honours --count (exactly that many frames), --rate, --flows and --duration.")]
pub struct GenArgs {
    /// Interface to send from (in a lab: run it in the gen namespace, e.g.
    /// `pktio lab exec gen -- pktio gen -i vgen`).
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    interface: String,
    /// Engine: auto (the fastest this host allows), live, xsk, packet or raw.
    #[arg(long, default_value = "auto", value_parser = crate::args::engine_flag())]
    engine: Engine,
    /// Frame size in bytes on the wire, FCS included (64..=1518).
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(64..=1518))]
    size: u32,
    /// Stop after exactly this many frames.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// At most this many frames per second (1..=1e9).
    #[arg(short = 'r', long, value_parser = crate::args::parse_rate)]
    rate: Option<f64>,
    /// Number of UDP flows (source ports varied).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    flows: u16,
    /// Stop after this many seconds (default: at Ctrl-C or --count).
    #[arg(short = 'd', long, value_parser = crate::args::parse_seconds)]
    duration: Option<f64>,
    /// Pin to this CPU. Without it the live engine stays on the CPU it
    /// starts on (its two submitting threads share one CPU either way).
    #[arg(long, value_parser = crate::args::parse_cpu)]
    cpu: Option<usize>,
    /// One generator per TX queue, each on a thread of its own: `all`
    /// (every TX queue the interface has, ethtool channels) or a list such
    /// as 0,2-3. Each queue's generator sends its own --flows flows (source
    /// ports following on from the previous queue's), so a receiver's RSS
    /// spreads them; --count and --rate apply to each queue. The xsk engine
    /// binds each socket to its queue (on a veth, TX queue q feeds the
    /// peer's RX queue q); packet and raw leave the TX queue to the
    /// kernel's flow hash; auto skips live, whose frames take the queue of
    /// the submitting CPU. Not with --cpu (use --cpus).
    #[arg(long, value_name = "all|LIST", conflicts_with = "cpu",
          value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<pktio::queues::Queues>()))]
    queues: Option<pktio::queues::Queues>,
    /// With --queues: the CPUs of the generator threads, a list such as 0-1
    /// (the i-th queue on the i-th CPU in the order given, round robin
    /// when fewer CPUs than queues; more is an error). Default: not pinned.
    #[arg(long, value_name = "LIST", requires = "queues", value_parser = crate::args::parse_cpus)]
    cpus: Option<crate::args::CpuList>,
    #[command(flatten)]
    frame: super::xsk::AddrOpts,
    /// Allow sending on an interface outside a pktio lab (frames go onto
    /// its wire). Not needed in a lab of `pktio lab up`.
    #[arg(long)]
    take_over: bool,
    /// Write the summary as JSON to FILE, or to stdout with `-` (the text
    /// summary then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    json: Option<JsonTo>,
    /// Print a JSON object a second on stdout (schema pktio.gen-second/1)
    /// and the summary as the last line (pktio.gen/1); the text goes to
    /// stderr.
    #[arg(long, conflicts_with = "json")]
    json_lines: bool,
}

/// One second of `--json-lines` (schema `pktio.gen-second/1`).
#[derive(serde::Serialize)]
struct GenSecond {
    /// Seconds since the start.
    at: f64,
    /// Frames per second over the last second.
    pps: f64,
    /// Frames sent so far.
    frames: u64,
    /// With --queues: each queue's second.
    #[serde(skip_serializing_if = "Option::is_none")]
    queues: Option<Vec<QueueSecond>>,
}

/// One queue's second in a [`GenSecond`].
#[derive(serde::Serialize)]
struct QueueSecond {
    queue: u32,
    pps: f64,
    frames: u64,
}

/// One queue's part of a [`GenDoc`].
#[derive(serde::Serialize)]
struct QueueDoc {
    queue: u32,
    cpu: Option<usize>,
    frames: u64,
    seconds: f64,
    mpps: f64,
}

/// The `--json` document of `pktio gen` (schema `pktio.gen/1`).
#[derive(serde::Serialize)]
struct GenDoc<'a> {
    interface: &'a str,
    /// Bytes on the wire, FCS included.
    size: u32,
    frames: u64,
    seconds: f64,
    mpps: f64,
    /// The engine that ran and the ones refused before it.
    generator: Option<serde_json::Value>,
    /// With --queues: each queue's frames and rate (the fields above are
    /// the totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    queues: Option<Vec<QueueDoc>>,
}

/// Runs `pktio gen`.
pub fn run_gen(a: GenArgs) -> anyhow::Result<std::process::ExitCode> {
    if let Err(m) = a.frame.check() {
        crate::args::usage_error(m);
    }
    // Every flag checked before the interface is touched.
    pktio_bench::loops::ifindex(&a.interface)?;
    let plan = match &a.queues {
        None => None,
        Some(q) => {
            let count = pktio_bench::loops::tx_queue_count(&a.interface);
            let ids = pktio_bench::loops::queue_ids(&a.interface, q, count)
                .unwrap_or_else(|e| crate::args::usage_error(e));
            let cpus = match &a.cpus {
                Some(c) => crate::args::cpus_for_queues(&c.0, ids.len())
                    .unwrap_or_else(|e| crate::args::usage_error(e)),
                None => Vec::new(),
            };
            Some((ids, cpus))
        }
    };
    super::xsk::consent(
        "gen",
        &a.interface,
        "send generated frames onto its wire",
        a.take_over,
    )?;
    let spec = a.frame.udp_frame();
    let target = Target::new(&a.interface, spec, (a.size - 4) as usize)?;
    if let Some(c) = a.cpu {
        pktio_bench::run::pin_to_cpu(c)?;
    }
    let deadline = a
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    let stop = pktio_bench::run::stop_flag();
    let lim = Limits {
        count: a.count,
        rate: a.rate,
        flows: a.flows,
        deadline,
    };
    let ids: Vec<u32> = plan.as_ref().map_or_else(Vec::new, |p| p.0.clone());
    let progress: Vec<Progress> = (0..ids.len().max(1)).map(|_| Progress::default()).collect();
    let done = AtomicBool::new(false);
    let (r, per_queue) = std::thread::scope(|sc| {
        // The rate each second on stderr, as the loops of rxdrop/txpush do.
        sc.spawn(|| {
            let start = Instant::now();
            let mut t_last = start;
            let mut last = vec![0u64; progress.len()];
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if t_last.elapsed() >= Duration::from_secs(1) {
                    let dt = t_last.elapsed().as_secs_f64();
                    let now: Vec<u64> = progress.iter().map(Progress::frames).collect();
                    let n: u64 = now.iter().sum();
                    let pps = n.saturating_sub(last.iter().sum()) as f64 / dt;
                    let queues: Vec<QueueSecond> = ids
                        .iter()
                        .zip(now.iter().zip(&last))
                        .map(|(&queue, (&f, &f0))| QueueSecond {
                            queue,
                            pps: f.saturating_sub(f0) as f64 / dt,
                            frames: f,
                        })
                        .collect();
                    let mut line = format!("gen: {:.3} Mpps ({n} frames)", pps / 1e6);
                    for q in &queues {
                        line.push_str(&format!("  q{} {:.3} Mpps", q.queue, q.pps / 1e6));
                    }
                    eprintln!("{line}");
                    if a.json_lines {
                        let at = start.elapsed().as_secs_f64();
                        let rec = GenSecond {
                            at,
                            pps,
                            frames: n,
                            queues: plan.is_some().then_some(queues),
                        };
                        if let Err(e) = crate::output::print_line(GEN_SECOND, &rec) {
                            eprintln!("pktio: gen: {e:#}");
                        }
                    }
                    (last, t_last) = (now, Instant::now());
                }
            }
        });
        let r = match &plan {
            None => run(&target, a.engine, &lim, &stop, &progress[0]).map(|r| (r, None)),
            Some((ids, cpus)) => run_queues(&target, ids, cpus, a.engine, &lim, &stop, &progress)
                .map(|all| {
                    let total = GenResult {
                        frames: all.iter().map(|r| r.frames).sum(),
                        seconds: all.iter().map(|r| r.seconds).fold(0.0, f64::max),
                        choice: all.first().and_then(|r| r.choice.clone()),
                    };
                    let per: Vec<QueueDoc> = ids
                        .iter()
                        .zip(&all)
                        .enumerate()
                        .map(|(i, (&queue, r))| QueueDoc {
                            queue,
                            cpu: (!cpus.is_empty()).then(|| cpus[i % cpus.len()]),
                            frames: r.frames,
                            seconds: r.seconds,
                            mpps: r.frames as f64 / r.seconds.max(1e-9) / 1e6,
                        })
                        .collect();
                    (total, Some(per))
                }),
        };
        done.store(true, Ordering::Relaxed);
        r
    })?;
    let mpps = r.frames as f64 / r.seconds.max(1e-9) / 1e6;
    let doc = GenDoc {
        interface: &a.interface,
        size: a.size,
        frames: r.frames,
        seconds: r.seconds,
        mpps,
        generator: r.choice.as_ref().map(|c| c.to_json()),
        queues: per_queue,
    };
    crate::output::emit(a.json.as_ref(), GEN, &doc)?;
    if a.json_lines {
        crate::output::print_line(GEN, &doc)?;
    }
    let mut text = format!(
        "gen: {} frames of {} B in {:.2} s: {:.3} Mpps\n",
        r.frames, a.size, r.seconds, mpps
    );
    for q in doc.queues.iter().flatten() {
        let cpu = q.cpu.map_or(String::new(), |c| format!(" (CPU {c})"));
        text.push_str(&format!(
            "  queue {}{cpu}: {} frames, {:.3} Mpps\n",
            q.queue, q.frames, q.mpps
        ));
    }
    if let Some(c) = &r.choice {
        text.push_str(&format!("gen: engine {}\n", c.describe()));
    }
    human(
        crate::output::text_target(a.json.as_ref(), a.json_lines),
        &text,
    );
    Ok(std::process::ExitCode::SUCCESS)
}
