//! `pktio bench harness`: what the benchmark's own measuring costs.
//!
//! Two A/B experiments in one lab, the two variants alternating run by run
//! (off, on, on, off, …) so that drift of the machine hits both alike:
//!
//! - **generator**: the lab's generator (the ladder's engine) into an XDP_DROP sink on the
//!   receiving veth, counted by the sink's link counters read before and
//!   after the window. *off*: nothing else runs. *on*: the harness does what
//!   it does during a `pktio bench` cell: a watcher wakes every second,
//!   reads the loop probe, `/proc/stat` (softirq time) and the far end's
//!   link counters over netlink, and prints a progress line.
//! - **loop**: `rxdrop` over AF_XDP sleeping in `poll()` at a fixed offered
//!   rate, so its CPU time is work, not waiting. *off*: the loop without a
//!   probe. *on*: the loop publishing its probe (a relaxed store per batch,
//!   its thread's CPU time every 64 batches) and the watcher above reading
//!   it. The figure is the loop thread's CPU time per packet over the
//!   loop's whole life, the same sum in both variants.
//!
//! The cost is `1 - on/off` for the generator's rate and `on/off - 1` for
//! the loop's CPU per packet, from the medians and from each off/on pair.
//! Both are noisy on a shared machine (a few % run to run), so the watcher's
//! own CPU time is measured too: the direct figure of what watching costs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::bpf::XdpAction;
use pktio_lab::{Host, Lab};

use crate::bench::lab::{attach_sink, join_generator, start_generator, GenPlan};
use crate::bench::matrix::{row_opts, BenchBackend};
use crate::bench::window::{sleep_window, Stopped};
use crate::loops::{run_loop, LoopSpec, Mode, Summary};
use crate::report::{Cell, Environment, Labels, Report};
use crate::run::{pin_to_cpu, softirq_ns, LoopProbe};

/// What `pktio bench harness` measures, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Harness {
    /// Pairs of runs (one off, one on) per experiment.
    pub runs: usize,
    /// Seconds measured per run (after a warm-up of a quarter of that, at least 0.3 s).
    pub seconds: f64,
    /// Frame size in bytes on the wire (FCS included).
    pub size: u32,
    /// Offered rate of the loop experiment, packets per second.
    pub loop_rate: f64,
    /// CPU of the generator (and of the receive-side kernel work on veth).
    pub gen_cpu: usize,
    /// CPU of the measured loop.
    pub cpu: usize,
    /// The generator engine: auto (the fastest this host allows), or one by name.
    pub generator: crate::gen::Engine,
}

/// The checks shared by `pktio bench harness` and `pktio bench gen`: at
/// least one run, windows of (0, 600] seconds, frames the live-frame
/// generator makes at MTU 1500.
pub fn check_windows(runs: usize, seconds: f64, size: u32) -> anyhow::Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
        bail!("--seconds must be between 0 and 600, not {seconds}");
    }
    if !(64..=1518).contains(&size) {
        bail!("frame size {size} is outside 64..=1518 (bytes on the wire, FCS included)");
    }
    Ok(())
}

/// The harness's activity during a window: every second, read what a
/// `pktio bench` cell reads and print a progress line, until `stop`.
/// Returns the CPU time the watcher's thread used, in ns.
fn watcher(probe: &LoopProbe, far: &Host, cpu: usize, stop: &AtomicBool) -> anyhow::Result<u64> {
    let cpu0 = pktio::host::thread_cpu_time();
    let mut last = probe.packets.load(Ordering::Relaxed);
    let mut at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Sleep in small steps so the window's end is not overrun.
        let next = at + Duration::from_secs(1);
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = probe.packets.load(Ordering::Relaxed);
        let _cpu = probe.cpu_ns.load(Ordering::Relaxed);
        let _si = softirq_ns(cpu);
        let far_rx = far.try_stats()?.rx_packets;
        let dt = at.elapsed().as_secs_f64();
        eprintln!(
            "          harness sample: probe {:.3} Mpps, far end rx {far_rx} packets",
            n.saturating_sub(last) as f64 / dt.max(1e-9) / 1e6
        );
        (last, at) = (n, Instant::now());
    }
    Ok((pktio::host::thread_cpu_time() - cpu0).as_nanos() as u64)
}

/// A window of `seconds` with the harness's watcher running beside it (on
/// `far`, pinned to `cpu`); the watcher's CPU time in ns. `Err` when the
/// window was cut short by a stop, or the watcher failed.
fn watched_window(
    probe: &LoopProbe,
    far: &Host,
    cpu: usize,
    seconds: f64,
    stopped: &AtomicBool,
) -> anyhow::Result<u64> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let w = s.spawn(|| watcher(probe, far, cpu, &stop));
        let full = sleep_window(seconds, stopped);
        stop.store(true, Ordering::Relaxed);
        let ns = w
            .join()
            .map_err(|_| anyhow::anyhow!("the watcher panicked"))??;
        full?;
        Ok(ns)
    })
}

/// One generator run: its rate at the sink, with the harness watching or
/// not, and the watcher's CPU time per second of window (ns/s).
fn generator_run(
    lab: &Lab,
    gen: &GenPlan,
    a: &Harness,
    harness: bool,
    warmup: f64,
) -> anyhow::Result<(f64, Option<f64>)> {
    let _sink = attach_sink(lab.rx(), XdpAction::Drop)?;
    let stopped = crate::run::stop_flag();
    let gen_stop = Arc::new(AtomicBool::new(false));
    let g = start_generator(lab, gen, a.size, a.gen_cpu, None, gen_stop.clone())?;
    let result = (|| {
        sleep_window(warmup, &stopped)?;
        let before = lab.rx().try_stats()?.rx_packets;
        let t0 = Instant::now();
        let watcher_ns = if harness {
            let probe = LoopProbe::default();
            Some(watched_window(
                &probe,
                lab.rx(),
                a.cpu,
                a.seconds,
                &stopped,
            )?)
        } else {
            sleep_window(a.seconds, &stopped)?;
            None
        };
        let after = lab.rx().try_stats()?.rx_packets;
        let dt = t0.elapsed().as_secs_f64();
        Ok((
            after.saturating_sub(before) as f64 / dt,
            watcher_ns.map(|ns| ns as f64 / dt),
        ))
    })();
    gen_stop.store(true, Ordering::SeqCst);
    join_generator(g)?;
    result
}

/// One loop run: the rxdrop loop's CPU time per packet at the offered rate,
/// with its probe published and watched, or not, and the watcher's CPU time
/// per second of window (ns/s).
fn loop_run(
    lab: &Lab,
    gen: &GenPlan,
    a: &Harness,
    harness: bool,
    warmup: f64,
) -> anyhow::Result<(f64, Option<f64>)> {
    let opts = row_opts(BenchBackend::Xdp, true);
    let probe = Arc::new(LoopProbe::default());
    let loop_stop = Arc::new(AtomicBool::new(false));
    let (p, ls, cpu) = (probe.clone(), loop_stop.clone(), a.cpu);
    let ifname = lab.rx().ifname().to_string();
    let worker = lab.rx().spawn(move || -> anyhow::Result<Summary> {
        pin_to_cpu(cpu)?;
        let mut b = opts.open(&ifname, Mode::Rxdrop, true)?;
        run_loop(
            &mut b,
            &LoopSpec {
                mode: Mode::Rxdrop,
                frame: None,
                stop: &ls,
                deadline: None,
                quiet: true,
                json_lines: false,
                probe: harness.then_some(&*p),
                batch: opts.batch,
                poll: true,
            },
        )
    });
    let gen_stop = Arc::new(AtomicBool::new(false));
    let g = match start_generator(
        lab,
        gen,
        a.size,
        a.gen_cpu,
        Some(a.loop_rate),
        gen_stop.clone(),
    ) {
        Ok(g) => g,
        Err(e) => {
            loop_stop.store(true, Ordering::SeqCst);
            let _ = worker.join();
            return Err(e);
        }
    };
    let stopped = crate::run::stop_flag();
    let watched = (|| -> anyhow::Result<Option<f64>> {
        sleep_window(warmup, &stopped)?;
        let t0 = Instant::now();
        if !harness {
            sleep_window(a.seconds, &stopped)?;
            return Ok(None);
        }
        let ns = watched_window(&probe, lab.gen(), a.cpu, a.seconds, &stopped)?;
        Ok(Some(ns as f64 / t0.elapsed().as_secs_f64()))
    })();
    gen_stop.store(true, Ordering::SeqCst);
    loop_stop.store(true, Ordering::SeqCst);
    let g = join_generator(g);
    let summary = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the measured loop panicked"))?
        .context("the rxdrop loop")?;
    g?;
    let watcher_ns = watched?;
    if summary.packets == 0 {
        bail!("the rxdrop loop received nothing");
    }
    Ok((summary.cpu_ns_per_packet, watcher_ns))
}

/// Runs `pktio bench harness` and returns its report (the stop flag says
/// whether Ctrl-C/SIGTERM cut it short).
///
/// # Errors
/// Bad windows or CPUs, the lab cannot be built, a run failed.
pub fn run(a: &Harness) -> anyhow::Result<Report> {
    check_windows(a.runs, a.seconds, a.size)?;
    if !(a.loop_rate.is_finite() && a.loop_rate >= 1000.0) {
        bail!(
            "--loop-rate must be at least 1000 packets per second, not {}",
            a.loop_rate
        );
    }
    crate::run::check_cpus(&[a.cpu, a.gen_cpu])?;
    let lab = Lab::new()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let stop = crate::run::stop_flag();
    let warmup = (a.seconds / 4.0).max(0.3);

    let mut env = Environment::detect();
    env.cores.insert("generator".into(), vec![a.gen_cpu]);
    env.cores.insert("measured".into(), vec![a.cpu]);
    env.set("driver", "veth");
    let gen = GenPlan::new(a.generator);
    env.set("generator", gen.choice(&lab, a.size)?.describe());
    env.set("size", format!("{} B", a.size));
    env.set(
        "loop",
        format!("AF_XDP rxdrop, poll(), offered {} pps", a.loop_rate),
    );
    let mut report = Report::new(
        "pktio bench harness: what measuring costs",
        env,
        &["experiment", "harness"],
    );

    let total = 4 * a.runs;
    let mut done = 0;
    let t_start = Instant::now();
    type RunFn = fn(&Lab, &GenPlan, &Harness, bool, f64) -> anyhow::Result<(f64, Option<f64>)>;
    let mut watcher_us_per_s = Vec::new();
    let experiments: [(&str, &str, &str, RunFn); 2] = [
        ("generator", "Mpps at the sink", "Mpps", generator_run),
        ("loop", "loop CPU", "ns/packet", loop_run),
    ];
    let mut pairs: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for (name, metric, unit, f) in experiments {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        let mut paired = Vec::new();
        for r in 0..a.runs {
            // off, on, on, off, …: each pair's order alternates.
            let order = if r % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            let mut got = [0.0; 2];
            for harness in order {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                eprintln!(
                    "[{:>3}/{total}] {name:<9} harness {:<3} run {}/{}   elapsed {:.0} s",
                    done + 1,
                    if harness { "on" } else { "off" },
                    r + 1,
                    a.runs,
                    t_start.elapsed().as_secs_f64()
                );
                let (mut v, w) = match f(&lab, &gen, a, harness, warmup) {
                    Ok(r) => r,
                    // Ctrl-C/SIGTERM: the report of the runs done so far.
                    Err(e) if e.is::<Stopped>() => break,
                    Err(e) => return Err(e),
                };
                watcher_us_per_s.extend(w.map(|ns| ns / 1e3));
                if unit == "Mpps" {
                    v /= 1e6;
                }
                eprintln!("          {v:.3} {unit}");
                got[usize::from(harness)] = v;
                if harness {
                    on.push(v);
                } else {
                    off.push(v);
                }
                done += 1;
            }
            if got[0] > 0.0 && got[1] > 0.0 {
                paired.push((got[0], got[1]));
            }
        }
        for (h, v) in [("off", off), ("on", on)] {
            report.cells.push(Cell::new(
                Labels::new([("experiment", name), ("harness", h)]),
                metric,
                unit,
                v,
            ));
        }
        pairs.push((name, paired));
    }
    // The harness's own CPU, measured directly: far below what the rates
    // above can resolve on a shared machine.
    if let Some(s) = crate::report::Stats::of(&watcher_us_per_s) {
        report.notes.push(format!(
            "the watcher's own CPU: {:.0} µs per second of window (median of {} runs; max {:.0}) = {:.3} % of one core",
            s.median,
            watcher_us_per_s.len(),
            s.max,
            s.median / 1e4
        ));
    }
    report.cells.push(Cell::new(
        Labels::new([("experiment", "watcher"), ("harness", "on")]),
        "watcher CPU",
        "µs/s",
        watcher_us_per_s,
    ));
    // The cost from each off/on pair, so that slow drift cancels.
    for (name, p) in &pairs {
        let costs: Vec<f64> = p
            .iter()
            .map(|&(off, on)| {
                if *name == "generator" {
                    100.0 * (1.0 - on / off)
                } else {
                    100.0 * (on / off - 1.0)
                }
            })
            .collect();
        if let Some(s) = crate::report::Stats::of(&costs) {
            report.notes.push(format!(
                "{name}: the harness costs {:+.2} % (median of {} off/on pairs; min {:+.2} %, max {:+.2} %){}",
                s.median,
                costs.len(),
                s.min,
                s.max,
                if *name == "generator" {
                    " of the generator's rate"
                } else {
                    " of the loop's CPU per packet"
                }
            ));
        }
    }
    Ok(report)
}
