//! The lab around a cell: the frame the generator sends, the generator
//! engine per frame size ([`GenPlan`]), the generator's thread on the gen
//! end, and the XDP sink that drops (and counts) what arrives.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use pktio::bpf::{progs, LoadOptions, Program, ProgramKind, XdpAction, XdpLink, XdpMode};
use pktio::wire::UdpFrame;
use pktio_lab::{Host, Lab};

use crate::gen::{Choice, Engine, GenResult, Progress};
use crate::run::pin_to_cpu;

/// The lab's frame from gen to rx, `size` bytes on the wire (FCS included).
pub fn lab_frame(lab: &Lab) -> UdpFrame {
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
pub struct GenPlan {
    want: Engine,
    chosen: Mutex<Vec<(u32, Choice)>>,
    /// TX queues to feed, one generator thread each (1: one generator).
    queues: u32,
}

impl GenPlan {
    /// The engine `want` (or the ladder, for `Auto`), chosen per size on
    /// first use.
    pub fn new(want: Engine) -> GenPlan {
        GenPlan {
            want,
            chosen: Mutex::new(Vec::new()),
            queues: 1,
        }
    }

    /// The same plan feeding the gen end's TX queues `0..queues`, one
    /// generator thread per queue ([`crate::gen::run_queues`]; on veth, TX
    /// queue q reaches the peer's RX queue q), all on the generator's CPU.
    /// `auto` then skips the live engine, whose frames take the submitting
    /// CPU's queue.
    pub fn with_queues(mut self, queues: u32) -> GenPlan {
        self.queues = queues.max(1);
        self
    }

    /// TX queues fed ([`with_queues`](Self::with_queues)).
    pub fn queues(&self) -> u32 {
        self.queues
    }

    /// `engine` for `size`, taken as given (already probed).
    pub fn fixed(engine: Engine, size: u32) -> GenPlan {
        GenPlan {
            want: engine,
            chosen: Mutex::new(vec![(
                size,
                Choice {
                    engine,
                    refused: Vec::new(),
                },
            )]),
            queues: 1,
        }
    }

    /// The engine for `size`-byte frames (FCS included) in `lab`.
    ///
    /// # Errors
    /// [`crate::gen::EngineRefused`] when the engine asked for by name
    /// cannot run (with the ones that can); [`crate::gen::NoEngine`].
    pub fn choice(&self, lab: &Lab, size: u32) -> anyhow::Result<Choice> {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = chosen.iter().find(|(s, _)| *s == size) {
            return Ok(c.clone());
        }
        let (want, ifname, spec) = (self.want, lab.gen().ifname().to_string(), lab_frame(lab));
        let per_queue = self.queues > 1;
        let c = lab.gen().try_run(move || -> anyhow::Result<Choice> {
            let mut t = crate::gen::Target::new(&ifname, spec, (size - 4) as usize)?;
            if per_queue {
                t.queue = Some(0);
            }
            crate::gen::choose(&t, want)
        })??;
        chosen.push((size, c.clone()));
        Ok(c)
    }

    /// Per size, the engine and what was refused, for the environment
    /// line: e.g. "64, 1500 B: xsk (AF_XDP transmit); live refused: …".
    pub fn describe(&self) -> String {
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
    pub fn to_json(&self) -> serde_json::Value {
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
#[derive(Debug)]
pub struct GenRun {
    handle: std::thread::JoinHandle<anyhow::Result<GenResult>>,
    /// What it has sent so far.
    pub progress: Arc<Progress>,
}

/// Starts the generator of `plan` on the gen end, pinned to `cpu`.
pub fn start_generator(
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
    let yield_to_napi = !crate::bench::napi::threads_of(lab.gen()).is_empty();
    let queues = plan.queues;
    let handle = lab.gen().spawn(move || {
        pin_to_cpu(cpu)?;
        if yield_to_napi {
            // On Linux the priority of PRIO_PROCESS 0 is the calling
            // thread's; the engine's threads inherit it.
            rustix::process::setpriority_process(None, 19)
                .context("lowering the generator's priority (setpriority)")?;
        }
        let t = crate::gen::Target::new(&ifname, spec, (size - 4) as usize)?;
        if queues > 1 {
            // A few flows per queue, so that a fanout hash spreads them
            // too; the rate is the total's share per queue; one progress
            // counter for all.
            let lim = crate::gen::Limits {
                rate: rate.map(|r| r / f64::from(queues)),
                flows: 4,
                ..Default::default()
            };
            let ids: Vec<u32> = (0..queues).collect();
            let all = crate::gen::run_queues(
                &t,
                &ids,
                &[cpu],
                engine,
                &lim,
                &stop,
                std::slice::from_ref(&*p),
            )?;
            return Ok(GenResult {
                frames: all.iter().map(|r| r.frames).sum(),
                seconds: all.iter().map(|r| r.seconds).fold(0.0, f64::max),
                choice: all.into_iter().next().and_then(|r| r.choice),
            });
        }
        let lim = crate::gen::Limits {
            rate,
            flows: 1,
            ..Default::default()
        };
        crate::gen::run(&t, engine, &lim, &stop, &p)
    });
    Ok(GenRun { handle, progress })
}

/// Waits for the generator of `g` to end (its stop flag set) and returns
/// what it sent.
pub fn join_generator(g: GenRun) -> anyhow::Result<GenResult> {
    g.handle
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?
}

/// An XDP program attached to a lab end for the duration of a run: a sink
/// that drops (and so counts in the link's rx counters) everything.
///
/// Above MTU 1500 the program is loaded frags-aware (`BPF_F_XDP_HAS_FRAGS`):
/// veth refuses any other at an MTU whose frames need several buffers.
pub fn attach_sink(host: &Host, action: XdpAction) -> anyhow::Result<XdpLink> {
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
