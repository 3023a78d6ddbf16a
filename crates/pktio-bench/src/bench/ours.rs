//! One cell of pktio's own rows: the measured loop on its core, the
//! generator on the other, a warm-up, then a window in which the loop's
//! packets, its CPU and the receive work of its core are read at both
//! ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktio::backend::BackendKind;
use pktio::bpf::{XdpAction, XdpLink};
use pktio_lab::{Host, Lab};

use crate::bench::cell::{busy_pct, classify, CellError, RunResult};
use crate::bench::lab::{attach_sink, join_generator, lab_frame, start_generator, GenPlan, GenRun};
use crate::bench::matrix::{row_opts, BenchBackend, BenchMode};
use crate::bench::napi::{Napi, Wait};
use crate::bench::plan::PacketBench;
use crate::bench::window::{sleep_unless_stopped, Stopped};
use crate::loops::{run_loop, run_queues_probed, LoopSpec, SocketOpts, Summary};
use crate::run::{pin_to_cpu, CpuTimes, LoopProbe};

/// One cell of the table: what runs, where the receive work runs, and how
/// the measured loop waits.
#[derive(Debug, Clone, Copy)]
pub struct CellSpec {
    /// The mode (the loop it runs).
    pub mode: BenchMode,
    /// The row's backend.
    pub backend: BenchBackend,
    /// Frame size on the wire, FCS included.
    pub size: u32,
    /// Where the receive work runs.
    pub napi: Napi,
    /// How the measured loop waits.
    pub wait: Wait,
}

/// Measures one run of `cell` in `lab`: `warmup` seconds, then a window
/// of `seconds`.
///
/// # Errors
/// [`CellError::Unsupported`] when the row cannot run here;
/// [`CellError::Failed`] with [`Stopped`] at Ctrl-C/SIGTERM.
pub fn measure_cell(
    lab: &Lab,
    gen: &GenPlan,
    cell: CellSpec,
    a: &PacketBench,
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
    // A row that cannot carry this size was planned as unsupported
    // (crate::bench::plan::unsupported) and does not come here.
    let mtu = lab.rx().link_info()?.mtu;
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

    // One probe per queue (one loop per queue with --queues).
    let queues = a.queues.max(1);
    let probes: Arc<Vec<LoopProbe>> = Arc::new((0..queues).map(|_| LoopProbe::default()).collect());
    let loop_stop = Arc::new(AtomicBool::new(false));
    let spec = lab_frame(lab);
    let ifname = measured.ifname().to_string();
    let (o, p, ls, cpu) = (opts.clone(), probes.clone(), loop_stop.clone(), a.cpu);
    let queue_cpus: Vec<usize> = (0..queues as usize).map(|i| a.queue_cpu(i)).collect();
    let frame_len = size - 4;
    let worker = measured.spawn(move || -> anyhow::Result<Summary> {
        let f = (mode == BenchMode::Txpush).then_some((&spec, frame_len));
        let loop_spec = LoopSpec {
            mode: mode.mode(),
            frame: f,
            stop: &ls,
            deadline: None,
            quiet: true,
            json_lines: false,
            probe: Some(&p[0]),
            batch: o.batch,
            poll: o.poll,
        };
        if queues > 1 {
            // Each queue's loop on its own pinned thread; this one only
            // waits for them.
            let ids: Vec<u32> = (0..queues).collect();
            let set = o.open_queues(&ifname, mode.mode(), &ids)?;
            return run_queues_probed(set, &queue_cpus, &loop_spec, true, &p);
        }
        pin_to_cpu(cpu)?;
        let mut b = o.open(&ifname, mode.mode(), true)?;
        run_loop(&mut b, &loop_spec)
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
    let started = || probes.iter().all(|p| p.cpu_ns.load(Ordering::Relaxed) != 0);
    while !started() && !running.worker.is_finished() && t_start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    if running.worker.is_finished() {
        running.finish(lab, gro)?;
        return Err(CellError::Failed(anyhow::anyhow!(
            "the measured loop ended before the run"
        )));
    }
    let stop = crate::run::stop_flag();
    if !sleep_unless_stopped(Duration::from_secs_f64(warmup), &stop) {
        running.finish(lab, gro)?;
        return Err(CellError::Failed(Stopped.into()));
    }
    // In the thread placement the measured side's receive work runs in its
    // NAPI threads (pinned to its core), not as softirq: count them too.
    let napi_threads = crate::bench::napi::threads_of(measured);
    // The softirq of the measured cores; with several queues, not of the
    // generator's core when a queue shares it (the generator's own
    // transmit work is there).
    let softirq_cpus: Vec<usize> = a
        .measured_cpus()
        .into_iter()
        .filter(|&c| queues == 1 || c != a.gen_cpu)
        .collect();
    let queue_packets = || -> Vec<u64> {
        probes
            .iter()
            .map(|p| p.packets.load(Ordering::Relaxed))
            .collect()
    };
    // The queues' counts are read once per snapshot: the total is their
    // sum, exactly.
    type Snap = (u64, u64, u64, u64, Option<u64>, Vec<u64>);
    let snap = |far: &Host| -> anyhow::Result<Snap> {
        let receive: u64 = softirq_cpus
            .iter()
            .map(|&c| crate::bench::napi::receive_work_ns(c, &[]))
            .sum();
        let q = queue_packets();
        Ok((
            q.iter().sum(),
            probes
                .iter()
                .map(|p| p.cpu_ns.load(Ordering::Relaxed))
                .sum(),
            receive + crate::bench::napi::threads_cpu_ns(&napi_threads),
            far.try_stats()?.rx_packets,
            progress.as_ref().map(|p| p.frames()),
            q,
        ))
    };
    let held = || progress.as_ref().map_or(0, |p| p.held_back());
    let (s0, g0, h0) = (snap(far)?, CpuTimes::now(a.gen_cpu), held());
    let t0 = Instant::now();
    let whole = watch_window(|| queue_packets().iter().sum(), seconds);
    let (s1, g1, h1) = (snap(far)?, CpuTimes::now(a.gen_cpu), held());
    let dt = t0.elapsed().as_secs_f64();
    running.finish(lab, gro)?;
    if !whole {
        return Err(CellError::Failed(Stopped.into()));
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
        queue_pps: if queues > 1 {
            s1.5.iter()
                .zip(&s0.5)
                .map(|(b, a)| b.saturating_sub(*a) as f64 / dt)
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// Sleeps through the measured window, printing the loop's rate each
/// second; `false` if Ctrl-C/SIGTERM came first (seen within 50 ms).
pub fn watch_window(packets: impl Fn() -> u64, seconds: f64) -> bool {
    let stop = crate::run::stop_flag();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let (mut last_n, mut last_t) = (packets(), t0);
    loop {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        if !sleep_unless_stopped((end - now).min(Duration::from_secs(1)), &stop) {
            return false;
        }
        let (n, t) = (packets(), Instant::now());
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

/// The run-loop options of one backend row.
pub fn bench_opts(backend: BenchBackend, a: &PacketBench) -> SocketOpts {
    SocketOpts {
        batch: a.batch,
        busy_poll: a.busy_poll.then_some(20),
        ..row_opts(backend, a.poll)
    }
}

/// The threads of one run.
#[derive(Debug)]
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
