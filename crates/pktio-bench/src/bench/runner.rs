//! The packet benchmark in the lab: builds the lab, then takes the
//! [plan](crate::bench::plan) step by step (ceilings, then every mode's
//! rows, runs interleaved), gathers each row's samples and turns them into
//! the cells of one [`Report`].

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use pktio_lab::Lab;

use crate::bench::cell::CellError;
use crate::bench::lab::GenPlan;
use crate::bench::matrix::{lab_mtu, mtus_in_words, size_mtu, warmup_of, BenchMode};
use crate::bench::napi::{self, Wait};
use crate::bench::ours::{measure_cell, CellSpec};
use crate::bench::peers::{
    find_xdp_tool, measure as measure_peer, measure_capture, measure_xdp_bench_ceiling,
    xdp_tool_unusable, CaptureDest,
};
use crate::bench::plan::{rows_for, steps, unsupported, PacketBench, Peers, Progress, Row, Step};
use crate::bench::sink::measure_ceiling;
use crate::bench::window::Stopped;
use crate::report::{bound_by_source, median, Cell, Environment, Labels, Report};

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

/// Runs the packet benchmark `a` in a lab of its own and returns the
/// report (incomplete, with what was measured, after Ctrl-C/SIGTERM: the
/// stop flag says so).
///
/// # Errors
/// The lab cannot be built, a placement is not possible here, a run
/// failed (other than "unsupported", which the report notes).
pub fn packet_bench(a: &PacketBench) -> anyhow::Result<Report> {
    let (runs, seconds) = (a.runs, a.seconds);
    let warmup = warmup_of(seconds);
    let lab = Lab::builder()
        .mtu(lab_mtu(&a.sizes))
        .build()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let stop = crate::run::stop_flag();
    let placements = napi::choose(&lab, a.napi.as_deref(), a.cpu, a.gen_cpu)?;

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

    // xdp-bench drop beside our ceiling, with --peers, where it runs.
    let peers = Peers::find(a.peers, &a.modes);
    let mut xdp_bench = None;
    if a.peers {
        xdp_bench = find_xdp_tool("XDP_BENCH", "xdp-bench");
        if xdp_bench.is_none() {
            report.notes.push(
                "peers: xdp-bench not found (xdp-tools ≥ 1.5.6 on PATH, or its path in XDP_BENCH)"
                    .into(),
            );
        }
    }
    let cells = steps(a, &placements, &peers, xdp_bench.is_some())
        .iter()
        .filter(|s| !matches!(s, Step::Unsupported { .. }))
        .count();
    let mut plan = Progress {
        cells,
        done: 0,
        start: Instant::now(),
        per_run: seconds + warmup + 0.4,
    };
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
                plan.line(&format!(
                    "ceiling {size:>4} B  xdp-drop  run {}/{runs}",
                    r + 1
                ));
                napi::place(&lab, napi, a.cpu, a.gen_cpu)?;
                let (pps, off, h) =
                    match measure_ceiling(&lab, &gen, size, a.gen_cpu, warmup, seconds) {
                        Ok(m) => m,
                        Err(e) if e.is::<Stopped>() => break,
                        Err(e) => return Err(e),
                    };
                held.push(h);
                eprintln!("          {:.3} Mpps", pps / 1e6);
                samples.push(pps / 1e6);
                offered.extend(off.map(|o| o / 1e6));
                plan.done += 1;
                if let Some(path) = xdp_bench.clone() {
                    plan.line(&format!(
                        "ceiling {size:>4} B  xdp-bench drop  run {}/{runs}",
                        r + 1
                    ));
                    napi::place(&lab, napi, a.cpu, a.gen_cpu)?;
                    match measure_xdp_bench_ceiling(
                        &lab, &gen, &path, size, a.gen_cpu, warmup, seconds,
                    ) {
                        Ok(pps) => {
                            eprintln!("          {:.3} Mpps", pps / 1e6);
                            peer_samples.push(pps / 1e6);
                        }
                        Err(e) => {
                            eprintln!("          unusable: {e:#}");
                            report.notes.push(xdp_tool_unusable(
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
            ceilings.push((size, median(&samples).unwrap_or(0.0)));
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
                let rows = rows_for(mode, &a.backends, &peers, &mut report.notes);
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
                        plan.line(&format!(
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
                        napi::place(&lab, napi, rx_cpu, gen_cpu)?;
                        let wait = Wait::of(napi, mode != BenchMode::Txpush, a.poll, a.busy_poll);
                        if let Some(why) = unsupported(*row, size) {
                            eprintln!("          unsupported: {why}");
                            got.unsupported = Some(why);
                            continue;
                        }
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
                                a,
                                warmup,
                                seconds,
                            ),
                            Row::Peer(peer) => measure_peer(
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
                            Row::Capture(tool) => measure_capture(
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
                            Err(CellError::Failed(e)) if e.is::<Stopped>() => break,
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
    Ok(report)
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
