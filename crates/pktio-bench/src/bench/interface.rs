//! The packet benchmark on a real interface (`pktio bench -i IF`), where
//! the traffic comes from elsewhere: no lab, no ceiling, no peers, no
//! capture; each cell is what the measured loop handled in its window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::bench::cell::{classify, CellError};
use crate::bench::matrix::{warmup_of, BenchMode};
use crate::bench::ours::{bench_opts, watch_window};
use crate::bench::plan::PacketBench;
use crate::bench::window::sleep_unless_stopped;
use crate::loops::{run_loop, LoopSpec, Summary, LAB_UP_FRAME};
use crate::report::{Cell, Environment, Labels, Report};
use crate::run::{pin_to_cpu, LoopProbe};

/// `pktio bench -i IF`: the matrix on a real interface, where the traffic
/// comes from elsewhere. No ceiling, no peers, no capture: each cell is
/// what the measured loop handled in its window.
pub fn interface_bench(a: &PacketBench, ifname: &str) -> anyhow::Result<Report> {
    let (runs, seconds) = (a.runs, a.seconds);
    let warmup = warmup_of(seconds);
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
    let stop = crate::run::stop_flag();
    let addr = LAB_UP_FRAME;
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
                    let spec = addr;
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
                                    json_lines: false,
                                    probe: Some(&probe),
                                    batch: a.batch,
                                    poll: a.poll,
                                },
                            )
                        });
                        let whole = sleep_unless_stopped(Duration::from_secs_f64(warmup), &stop);
                        let n0 = probe.packets.load(Ordering::Relaxed);
                        let t0 = Instant::now();
                        let whole = whole
                            && watch_window(|| probe.packets.load(Ordering::Relaxed), seconds);
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
    Ok(report)
}
