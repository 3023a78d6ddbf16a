//! `pktio bench gen`: pktio's generator engines beside xdp-trafficgen.
//!
//! All variants send into the same XDP_DROP sink on the lab's receiving
//! veth, from the generator's CPU, runs alternating (the order rotates run
//! by run) so that drift of the machine hits all alike. On veth the sink's
//! work (NAPI, the XDP program, freeing the frame) runs on the sender's CPU,
//! so the rate is what one core does generating *and* dropping: the
//! XDP_DROP ceiling of `pktio bench`. The generator's CPU is read from
//! `/proc/stat` over the window (busy share, of which softirq) and divided
//! by the frames counted at the sink.
//!
//! - **pktio live / xsk / packet / raw**: each engine of
//!   [`crate::gen::Engine::LADDER`] that this host allows, as `pktio gen
//!   --engine E` runs it (live: `XDP_TX` from the sending interface's
//!   context, 2²⁰ frames per call, batches of 64, two submitting threads on
//!   one CPU). An engine the host refuses is named in the notes with the
//!   kernel's answer.
//! - **xdp-trafficgen call**: what xdp-trafficgen (xdp-tools 1.5) asks of
//!   the kernel, re-created: its program (count the frame in a per-CPU
//!   array, `bpf_redirect` to the sending interface) run from the
//!   loopback's context (no ingress interface), 2²⁰ frames per call, the
//!   kernel's default batch, one thread. Same frame as pktio gen. This is
//!   the reference when the tool itself cannot run: Debian's xdp-tools 1.3.1
//!   fails on kernels ≥ 6.16 (its statistics program needs a tracepoint the
//!   kernel no longer has). It needs live frames: where the host refuses
//!   them, it is not run (and the notes say so).
//! - **xdp-trafficgen**: the tool itself (`xdp-trafficgen udp`), found in
//!   `$XDP_TRAFFICGEN` or on `PATH`, when it runs. It sends only IPv6: its
//!   frames carry `::ffff:198.18.0.1 → ::ffff:198.18.0.2` (the lab's IPv4
//!   addresses, IPv4-mapped), and are 64 bytes plus FCS whatever `--size`
//!   says, so it is run for `--size 64` only. It pins its thread to CPU 0,
//!   so it is run with `--gen-cpu 0` only. A tool that is missing or exits
//!   early is listed in the notes with its reason, not fatal.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use pktio::bpf::{
    AluOp, Asm, BpfError, Code, Helper, JmpOp, PerCpuArray, Program, Reg, Size, XdpAction,
};
use pktio_lab::Lab;

use crate::bench::lab::{attach_sink, join_generator, lab_frame, start_generator, GenPlan, GenRun};
use crate::bench::peers::{find_xdp_tool, xdp_tool_unusable, Peer, Testpmd, ToolChild};
use crate::bench::sink::sink_window;
use crate::bench::window::Stopped;
use crate::gen::Engine;
use crate::report::{Cell, Environment, Labels, Report};
use crate::run::pin_to_cpu;

/// What `pktio bench gen` measures, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct GenBench {
    /// Runs per generator.
    pub runs: usize,
    /// Seconds measured per run (after a warm-up of a quarter of that, at least 0.3 s).
    pub seconds: f64,
    /// Frame size in bytes on the wire (FCS included); 64..=1518.
    pub size: u32,
    /// CPU of the generators (and, on veth, of the sink's kernel work).
    pub gen_cpu: usize,
    /// Also run dpdk-testpmd `txonly` (net_af_xdp and net_af_packet, its
    /// forwarding lcore on the generator's CPU) as rows, where installed.
    pub peers: bool,
}

/// Frames per call of the xdp-trafficgen call (its default `repeat`).
const TRAFFICGEN_REPEAT: u32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Variant {
    Pktio(Engine),
    TrafficgenCall,
    Trafficgen(PathBuf),
    /// dpdk-testpmd `txonly` on the gen end.
    Testpmd(Peer),
}

impl Variant {
    fn name(&self) -> &'static str {
        match self {
            Variant::Pktio(Engine::Live) => "pktio live",
            Variant::Pktio(Engine::Xsk) => "pktio xsk",
            Variant::Pktio(Engine::Packet) => "pktio packet",
            Variant::Pktio(Engine::Raw) => "pktio raw",
            Variant::Pktio(Engine::Auto) => "pktio auto",
            Variant::TrafficgenCall => "xdp-trafficgen call",
            Variant::Trafficgen(_) => "xdp-trafficgen",
            Variant::Testpmd(Peer::TestpmdXdp) => "testpmd-xdp txonly",
            Variant::Testpmd(Peer::TestpmdPacket) => "testpmd-pkt txonly",
        }
    }
}

/// One window's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    pps: f64,
    busy: f64,
    softirq: f64,
    ns_per_frame: f64,
}

/// xdp-trafficgen's `xdp_redirect_notouch` program, re-created:
///
/// ```c
/// __u32 key = 0;
/// __u64 *n = bpf_map_lookup_elem(&counters, &key);
/// if (!n) return XDP_ABORTED;
/// *n += 1;
/// return bpf_redirect(ifindex, 0);
/// ```
fn trafficgen_program(ifindex: u32) -> anyhow::Result<Code> {
    let mut a = Asm::new();
    let missing = a.label();
    a.st_mem(Size::W, Reg::R10, -4, 0)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64_imm(AluOp::Add, Reg::R2, -4)
        .ld_map_fd(Reg::R1, 0)
        .call(Helper::MAP_LOOKUP_ELEM)
        .jmp_imm(JmpOp::Eq, Reg::R0, 0, missing)
        .ldx_mem(Size::DW, Reg::R1, Reg::R0, 0)
        .alu64_imm(AluOp::Add, Reg::R1, 1)
        .stx_mem(Size::DW, Reg::R0, Reg::R1, 0)
        .mov64_imm(Reg::R1, ifindex as i32)
        .mov64_imm(Reg::R2, 0)
        .call(Helper::REDIRECT)
        .exit()
        .bind(missing)
        .mov64_imm(Reg::R0, XdpAction::Aborted.code() as i32)
        .exit();
    Ok(a.finish()?.with_name("tgen_redirect"))
}

/// The xdp-trafficgen call, on the calling thread, until `stop`.
fn run_trafficgen_call(ifindex: u32, frame: &[u8], stop: &AtomicBool) -> anyhow::Result<()> {
    let counters = PerCpuArray::new(1)?;
    let prog = Program::load_xdp(&trafficgen_program(ifindex)?, &[counters.as_fd()])
        .context("loading the xdp-trafficgen reference program")?;
    while !stop.load(Ordering::Relaxed) {
        // Interface 0: the program runs in the loopback's context and
        // redirects to the sending interface, as xdp-trafficgen does.
        match prog.run_live_frames(0, frame, TRAFFICGEN_REPEAT, 0) {
            Ok(_) => {}
            Err(BpfError::Sys(e)) if e.errno() == Some(libc::EINTR) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("BPF_PROG_RUN (live frames)")),
        }
    }
    Ok(())
}

/// A running generator of any kind.
enum Running {
    Pktio(GenRun),
    Thread(std::thread::JoinHandle<anyhow::Result<()>>),
    Process(ToolChild),
    Testpmd(Testpmd),
}

fn start(lab: &Lab, v: &Variant, a: &GenBench, stop: Arc<AtomicBool>) -> anyhow::Result<Running> {
    Ok(match v {
        Variant::Pktio(e) => Running::Pktio(start_generator(
            lab,
            &GenPlan::fixed(*e, a.size),
            a.size,
            a.gen_cpu,
            None,
            stop,
        )?),
        Variant::TrafficgenCall => {
            let mut frame = vec![0u8; (a.size - 4) as usize];
            lab_frame(lab)
                .emit(b"pktio gen", frame.len(), &mut frame)
                .map_err(|_| anyhow::anyhow!("cannot build a {}-byte frame", frame.len()))?;
            let (ifindex, cpu) = (lab.gen().ifindex(), a.gen_cpu);
            Running::Thread(lab.gen().spawn(move || {
                pin_to_cpu(cpu)?;
                run_trafficgen_call(ifindex, &frame, &stop)
            }))
        }
        Variant::Trafficgen(path) => {
            let mac = |m: [u8; 6]| pktio_lab::fmt_mac(&m);
            let mut cmd = lab.gen().command(path);
            cmd.arg("udp")
                .args(["--dst-mac", &mac(lab.rx().mac())])
                .args(["--src-mac", &mac(lab.gen().mac())])
                .args(["--dst-addr", &format!("::ffff:{}", lab.rx().addr().ip())])
                .args(["--src-addr", &format!("::ffff:{}", lab.gen().addr().ip())])
                .args(["--threads", "1"])
                .arg(lab.gen().ifname());
            Running::Process(ToolChild::spawn(cmd)?)
        }
        Variant::Testpmd(peer) => {
            let mut tp = Testpmd::start(lab, lab.gen(), *peer, "txonly", a.size, a.gen_cpu)?;
            if let Err(e) = tp.start_forwarding() {
                // Not left running (its link down, or Ctrl-C meanwhile).
                tp.quit();
                return Err(e);
            }
            Running::Testpmd(tp)
        }
    })
}

/// Stops a generator; for the tool, `Err` says why it could not run.
fn finish(r: Running, stop: &AtomicBool) -> anyhow::Result<()> {
    stop.store(true, Ordering::SeqCst);
    match r {
        Running::Pktio(h) => join_generator(h).map(|_| ()),
        Running::Thread(h) => h
            .join()
            .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?,
        Running::Process(tool) => tool.stop(),
        Running::Testpmd(tp) => {
            tp.quit();
            Ok(())
        }
    }
}

fn measure(lab: &Lab, v: &Variant, a: &GenBench, warmup: f64) -> anyhow::Result<Sample> {
    let stop = Arc::new(AtomicBool::new(false));
    let running = start(lab, v, a, stop.clone())?;
    let window = sink_window(lab, a.gen_cpu, warmup, a.seconds, None);
    finish(running, &stop)?;
    let w = window?;
    let (busy, softirq) = w
        .gen_cpu
        .with_context(|| format!("reading CPU {}'s times from /proc/stat", a.gen_cpu))?;
    let (busy, softirq) = (busy / 100.0, softirq / 100.0);
    Ok(Sample {
        pps: w.pps(),
        busy,
        softirq,
        // The CPU's busy time over the window, per frame delivered.
        ns_per_frame: if w.frames == 0 {
            0.0
        } else {
            busy * w.seconds * 1e9 / w.frames as f64
        },
    })
}

/// Runs `pktio bench gen` and returns its report with the row the ratios
/// compare with (the stop flag says whether Ctrl-C/SIGTERM cut it short).
///
/// # Errors
/// Bad windows or CPUs, the lab cannot be built, a run failed.
pub fn run(a: &GenBench) -> anyhow::Result<(Report, &'static str)> {
    crate::bench::harness::check_windows(a.runs, a.seconds, a.size)?;
    crate::run::check_cpus(&[a.gen_cpu])?;
    let lab = Lab::new()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let _sink = attach_sink(lab.rx(), XdpAction::Drop)?;
    let stop = crate::run::stop_flag();
    let warmup = (a.seconds / 4.0).max(0.3);

    let mut env = Environment::detect();
    env.cores.insert("generator".into(), vec![a.gen_cpu]);
    env.set("driver", "veth");
    env.set(
        "sink",
        "XDP_DROP on the receiving veth (its NAPI runs on the generator's CPU)",
    );
    env.set("size", format!("{} B", a.size));
    let mut report = Report::new(
        "pktio bench gen: pktio's generator engines beside xdp-trafficgen",
        env,
        &["generator"],
    );

    // Every engine this host allows; the refused ones are named.
    let mut variants = Vec::new();
    let (ifname, spec, len) = (
        lab.gen().ifname().to_string(),
        lab_frame(&lab),
        (a.size - 4) as usize,
    );
    let probes = lab.gen().try_run(move || -> anyhow::Result<_> {
        let t = crate::gen::Target::new(&ifname, spec, len)?;
        Ok(Engine::LADDER.map(|e| (e, crate::gen::probe(&t, e))))
    })??;
    let mut live = false;
    for (e, p) in probes {
        match p {
            Ok(()) => {
                live |= e == Engine::Live;
                variants.push(Variant::Pktio(e));
            }
            Err(r) => {
                eprintln!("pktio: bench gen: {r}");
                report.notes.push(format!("pktio {r}"));
            }
        }
    }
    // dpdk-testpmd txonly on both of its drivers, where it is installed.
    if a.peers {
        variants.extend(
            crate::bench::peers::available(&mut report.notes)
                .into_iter()
                .map(Variant::Testpmd),
        );
    }
    if live {
        variants.push(Variant::TrafficgenCall);
    } else {
        report.notes.push(
            "xdp-trafficgen call: not run: it needs live frames, which this host refuses".into(),
        );
    }
    match find_xdp_tool("XDP_TRAFFICGEN", "xdp-trafficgen") {
        Some(_) if !live => report
            .notes
            .push("xdp-trafficgen: not run (it needs live frames, which this host refuses)".into()),
        None => report.notes.push(
            "xdp-trafficgen: not found (put xdp-tools ≥ 1.5.6's on PATH or name it in XDP_TRAFFICGEN)"
                .into(),
        ),
        Some(_) if a.size != 64 => report
            .notes
            .push("xdp-trafficgen: not run (it sends 64-byte frames only)".into()),
        Some(_) if a.gen_cpu != 0 => report
            .notes
            .push("xdp-trafficgen: not run (it pins itself to CPU 0; use --gen-cpu 0)".into()),
        Some(p) => variants.push(Variant::Trafficgen(p)),
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); variants.len()];
    let mut dropped = vec![false; variants.len()];
    let total = a.runs * variants.len();
    let (mut done, t_start) = (0, Instant::now());
    'runs: for r in 0..a.runs {
        for k in 0..variants.len() {
            // Rotate the order run by run.
            let i = (k + r) % variants.len();
            if stop.load(Ordering::Relaxed) {
                break 'runs;
            }
            done += 1;
            if dropped[i] {
                continue;
            }
            let v = &variants[i];
            eprintln!(
                "[{done:>3}/{total}] {:<20} run {}/{}   elapsed {:.0} s",
                v.name(),
                r + 1,
                a.runs,
                t_start.elapsed().as_secs_f64()
            );
            match measure(&lab, v, a, warmup) {
                Ok(s) => {
                    eprintln!(
                        "          {:.3} Mpps at the sink, CPU {} {:.0} % busy ({:.0} % softirq), {:.1} ns/frame",
                        s.pps / 1e6,
                        a.gen_cpu,
                        s.busy * 100.0,
                        s.softirq * 100.0,
                        s.ns_per_frame
                    );
                    samples[i].push(s);
                }
                // Ctrl-C/SIGTERM: the report of the runs done so far.
                Err(e) if e.is::<Stopped>() => break 'runs,
                Err(e) if matches!(v, Variant::Trafficgen(_)) => {
                    let Variant::Trafficgen(p) = v else {
                        unreachable!()
                    };
                    eprintln!("          unusable: {e:#}");
                    report
                        .notes
                        .push(xdp_tool_unusable("xdp-trafficgen", "XDP_TRAFFICGEN", p, &e));
                    dropped[i] = true;
                }
                Err(e) => return Err(e.context(format!("measuring {}", v.name()))),
            }
        }
    }

    for (v, s) in variants.iter().zip(&samples) {
        if s.is_empty() {
            continue;
        }
        let labels = Labels::new([("generator", v.name())]);
        let col = |f: fn(&Sample) -> f64| s.iter().map(f).collect::<Vec<_>>();
        report.cells.push(Cell::new(
            labels.clone(),
            "at the sink",
            "Mpps",
            col(|s| s.pps / 1e6),
        ));
        report.cells.push(Cell::new(
            labels.clone(),
            "CPU busy",
            "%",
            col(|s| s.busy * 100.0),
        ));
        report.cells.push(Cell::new(
            labels.clone(),
            "softirq",
            "%",
            col(|s| s.softirq * 100.0),
        ));
        report.cells.push(Cell::new(
            labels,
            "CPU per frame",
            "ns/frame",
            col(|s| s.ns_per_frame),
        ));
    }
    // Each engine against its reference, run by run (adjacent windows).
    let at = |v: Variant| variants.iter().position(|x| *x == v);
    for (ours, theirs) in [
        (Variant::Pktio(Engine::Live), Variant::TrafficgenCall),
        (
            Variant::Pktio(Engine::Xsk),
            Variant::Testpmd(Peer::TestpmdXdp),
        ),
        (
            Variant::Pktio(Engine::Packet),
            Variant::Testpmd(Peer::TestpmdPacket),
        ),
    ] {
        let (Some(p), Some(t)) = (at(ours.clone()), at(theirs.clone())) else {
            continue;
        };
        let ratios: Vec<f64> = samples[p]
            .iter()
            .zip(&samples[t])
            .filter(|(_, t)| t.pps > 0.0)
            .map(|(p, t)| p.pps / t.pps)
            .collect();
        if let Some(s) = crate::report::Stats::of(&ratios) {
            report.notes.push(format!(
                "{} / {}: {:.2}× (median of {} runs; min {:.2}×, max {:.2}×)",
                ours.name(),
                theirs.name(),
                s.median,
                ratios.len(),
                s.min,
                s.max
            ));
        }
    }
    let baseline = if live {
        "xdp-trafficgen call"
    } else {
        variants.first().map_or("pktio xsk", |v| v.name())
    };
    Ok((report, baseline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_program_assembles_and_names_the_interface() {
        let code = trafficgen_program(7).unwrap();
        assert_eq!(code.map_slots(), 1);
        let text = format!("{}", code.listing());
        assert!(text.contains("r1 = 7"), "{text}");
        assert!(text.contains("call bpf_redirect#23"), "{text}");
    }
}
