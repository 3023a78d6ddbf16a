//! The packet benchmark in the lab: builds the lab, then walks the matrix
//! in the [planner](crate::bench::plan)'s order (for each placement and
//! size the ceiling's runs, then every mode's rows, runs interleaved),
//! skipping the rows the planner marks unsupported, prints a progress line
//! per run on stderr, gathers each row's samples and turns them into the
//! cells of one [`Report`].

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use pktio_lab::Lab;

use crate::bench::capture::{measure_capture, CaptureDest};
use crate::bench::cell::{CellError, RunResult};
use crate::bench::lab::GenPlan;
use crate::bench::matrix::{lab_mtu, mtus_in_words, size_mtu, warmup_of, BenchMode};
use crate::bench::napi::{self, Napi, Wait};
use crate::bench::ours::{measure_cell, CellSpec};
use crate::bench::peers::{
    find_xdp_tool, measure as measure_peer, measure_xdp_bench_ceiling, xdp_tool_unusable,
};
use crate::bench::plan::{rows_for, steps, unsupported, PacketBench, Peers, Progress, Row, Step};
use crate::bench::sink::measure_ceiling;
use crate::bench::window::Stopped;
use crate::gen::Choice;
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
    /// Per queue (several queues), its rate in each run, Mpps.
    queues: Vec<Vec<f64>>,
    /// Why the row cannot run here (then it has no samples).
    unsupported: Option<String>,
}

impl RowSamples {
    /// Adds one run's figures.
    fn add(&mut self, m: &RunResult) {
        self.rates.push(m.pps / 1e6);
        self.costs.push(m.ns_per_packet);
        self.drops.extend(m.drops_pct);
        self.offered.extend(m.offered_pps.map(|o| o / 1e6));
        self.held.push(m.held_back);
        if self.queues.len() < m.queue_pps.len() {
            self.queues.resize(m.queue_pps.len(), Vec::new());
        }
        for (q, pps) in self.queues.iter_mut().zip(&m.queue_pps) {
            q.push(pps / 1e6);
        }
        if let Some((busy, si)) = m.gen_cpu_pct {
            self.gen_busy.push(busy);
            self.gen_softirq.push(si);
        }
    }

    /// Whether a run of the row went faster than `ceiling` Mpps (beyond a
    /// 5 % margin for run-to-run noise).
    fn above_ceiling(&self, ceiling: f64) -> bool {
        self.rates.iter().any(|&r| r > ceiling * 1.05)
    }

    /// The row's cells under `labels`: its share of the ceiling (rxdrop,
    /// with `ceiling` Mpps), its rate (marked source-bound), what was
    /// offered, the cost, drops, the rate per core and the generator's CPU.
    fn into_cells(self, labels: &Labels, ceiling: Option<f64>) -> Vec<Cell> {
        let mut cells = Vec::new();
        if self.rates.is_empty() {
            return cells;
        }
        let metric = |name: &str, unit: &str, v: Vec<f64>| Cell::new(labels.clone(), name, unit, v);
        let bound = bound_by_source(&self.rates, &self.offered, &self.held);
        let per_core: Vec<f64> = self
            .costs
            .iter()
            .map(|ns| if *ns > 0.0 { 1e3 / ns } else { 0.0 })
            .collect();
        // A row above its ceiling means the ceiling's runs fell short (its
        // median is not a ceiling): no share is printed then, the caller
        // notes why (`above_ceiling`).
        if let Some(c) = ceiling.filter(|&c| c > 0.0 && !self.above_ceiling(c)) {
            let share: Vec<f64> = self.rates.iter().map(|r| 100.0 * r / c).collect();
            cells.push(metric("of ceiling", "%", share));
        }
        cells.push(metric("Mpps", "Mpps", self.rates).with_source_bound(bound));
        // Several queues: each queue's share of the total, beside it.
        for (i, q) in self.queues.into_iter().enumerate() {
            cells.push(metric(&format!("q{i}"), "Mpps", q));
        }
        if !self.offered.is_empty() {
            cells.push(metric("offered", "Mpps", self.offered));
        }
        cells.push(metric("cost", "ns/packet", self.costs));
        if !self.drops.is_empty() {
            cells.push(metric("drops", "%", self.drops));
        }
        cells.push(metric("per core", "Mpps/core", per_core));
        if !self.gen_busy.is_empty() {
            cells.push(metric("gen CPU", "%", self.gen_busy));
            cells.push(metric("gen softirq", "%", self.gen_softirq));
        }
        cells
    }
}

/// Runs the packet benchmark `a` in a lab of its own and returns the
/// report (incomplete, with what was measured, after Ctrl-C/SIGTERM: the
/// stop flag says so).
///
/// # Errors
/// The lab cannot be built, a placement is not possible here, a run
/// failed (other than "unsupported", which the report notes).
pub fn packet_bench(a: &PacketBench) -> anyhow::Result<Report> {
    let mut builder = Lab::builder().mtu(lab_mtu(&a.sizes));
    if a.queues > 1 {
        builder = builder.queues(a.queues);
    }
    let lab = builder
        .build()
        .context("building the lab (needs root: CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")?;
    let placements = napi::choose(&lab, a.napi.as_deref(), a.cpu, a.gen_cpu)?;
    let row_keys: &[&str] = if placements.len() > 1 {
        &["napi", "mode", "size", "backend"]
    } else {
        &["mode", "size", "backend"]
    };
    let env = environment(a, &placements);
    let mut report = Report::new("pktio bench: packets in the veth lab", env, row_keys);
    if a.queues > 1 {
        report.notes.push(queues_note(a));
    }
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
    let warmup = warmup_of(a.seconds);
    let cells = steps(a, &placements, &peers, xdp_bench.is_some())
        .iter()
        .filter(|s| !matches!(s, Step::Unsupported { .. }))
        .count();
    let mut run = Runner {
        a,
        lab: &lab,
        gen: GenPlan::new(a.generator).with_queues(a.queues),
        peers,
        xdp_bench,
        warmup,
        progress: Progress {
            cells,
            done: 0,
            start: Instant::now(),
            per_run: a.seconds + warmup + 0.4,
        },
        report,
    };
    for &napi in &placements {
        let mut ceilings: Vec<(u32, f64)> = Vec::new();
        for &size in &a.sizes {
            run.set_mtu(size)?;
            let choice = run.gen.choice(&lab, size)?;
            eprintln!("          generator for {size} B: {}", choice.describe());
            ceilings.push((size, run.ceiling(napi, size, &choice)?));
            for &mode in &a.modes {
                run.mode(napi, size, mode, &choice, &ceilings)?;
            }
        }
    }
    Ok(run.finish())
}

/// `labels` with `queues` = N for a run on several queues (unchanged for
/// one).
fn with_queues(labels: Labels, queues: u32) -> Labels {
    if queues > 1 {
        labels.with("queues", &queues.to_string())
    } else {
        labels
    }
}

/// The note of a run on several queues: where the threads ran, what the
/// per-queue columns are, and what a machine with few cores can show.
pub fn queues_note(a: &PacketBench) -> String {
    let cpus: Vec<String> = (0..a.queues as usize)
        .map(|i| format!("q{i} on CPU {}", a.queue_cpu(i)))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut note = format!(
        "{} queues: the lab's veth has {} RX/TX queues, pktio's rows run one loop per queue \
         ({}), the generator (on CPU {}) one thread per TX queue; q0..q{} are each queue's \
         Mpps, Mpps their total; the ceiling is XDP_DROP on every queue",
        a.queues,
        a.queues,
        cpus.join(", "),
        a.gen_cpu,
        a.queues - 1
    );
    if a.napi.as_deref().is_some_and(|n| n.contains(&Napi::Thread)) {
        note.push_str(&format!(
            "; in the thread placement every NAPI thread of the receiving end runs on CPU {} \
             (the measured CPU), whichever queue it serves",
            a.cpu
        ));
    }
    let used = a.measured_cpus().len() + usize::from(!a.measured_cpus().contains(&a.gen_cpu));
    if used > cores || a.measured_cpus().contains(&a.gen_cpu) || a.queues as usize > cores {
        note.push_str(&format!(
            "; this machine has {cores} cores, so the queues' threads and the generator share \
             them: the total shows how the work divides, not how it scales with cores"
        ));
    }
    note
}

/// The environment line of the lab's report.
fn environment(a: &PacketBench, placements: &[Napi]) -> Environment {
    let mut env = Environment::detect();
    env.cores.insert("generator".into(), vec![a.gen_cpu]);
    env.cores.insert("measured".into(), a.measured_cpus());
    env.set("driver", "veth");
    if a.queues > 1 {
        env.set("queues", a.queues.to_string());
    }
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
                format!(
                    "{r} pps, on average over 0.1 s (the live-frames generator sends each \
                     0.1 s of frames in one burst at its full speed, so a receiver whose \
                     rings cannot hold a burst drops; --generator xsk, packet or raw pace \
                     every batch)"
                )
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
    env
}

/// The packet benchmark under way: what it measures, in which lab, and
/// what it has found so far.
struct Runner<'a> {
    a: &'a PacketBench,
    lab: &'a Lab,
    gen: GenPlan,
    peers: Peers,
    /// `xdp-bench`, while it runs.
    xdp_bench: Option<std::path::PathBuf>,
    warmup: f64,
    progress: Progress,
    report: Report,
}

impl Runner<'_> {
    /// Gives both lab ends the MTU of `size`-byte frames.
    fn set_mtu(&self, size: u32) -> anyhow::Result<()> {
        let mtu = size_mtu(size);
        for host in [self.lab.gen(), self.lab.rx()] {
            if host.link_info()?.mtu != mtu {
                host.set_mtu(mtu)
                    .with_context(|| format!("setting MTU {mtu} for {size}-byte frames"))?;
            }
        }
        Ok(())
    }

    /// The ceiling of `size`: XDP_DROP on the receiving end, the same
    /// generator; with --peers, xdp-bench drop as the sink too, runs
    /// alternating. Adds its cells and returns its median, Mpps.
    fn ceiling(&mut self, napi: Napi, size: u32, choice: &Choice) -> anyhow::Result<f64> {
        let (a, runs, stop) = (self.a, self.a.runs, crate::run::stop_flag());
        let (mut samples, mut peer_samples, mut offered) = (Vec::new(), Vec::new(), Vec::new());
        let mut held = Vec::new();
        for r in 0..runs {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            self.progress.line(&format!(
                "ceiling {size:>4} B  xdp-drop  run {}/{runs}",
                r + 1
            ));
            napi::place(self.lab, napi, a.cpu, a.gen_cpu)?;
            let (pps, off, h) =
                match measure_ceiling(self.lab, &self.gen, size, a.gen_cpu, self.warmup, a.seconds)
                {
                    Ok(m) => m,
                    Err(e) if e.is::<Stopped>() => break,
                    Err(e) => return Err(e),
                };
            held.push(h);
            eprintln!("          {:.3} Mpps", pps / 1e6);
            samples.push(pps / 1e6);
            offered.extend(off.map(|o| o / 1e6));
            self.progress.done += 1;
            if let Some(path) = self.xdp_bench.clone() {
                self.progress.line(&format!(
                    "ceiling {size:>4} B  xdp-bench drop  run {}/{runs}",
                    r + 1
                ));
                napi::place(self.lab, napi, a.cpu, a.gen_cpu)?;
                match measure_xdp_bench_ceiling(
                    self.lab,
                    &self.gen,
                    &path,
                    size,
                    a.gen_cpu,
                    self.warmup,
                    a.seconds,
                ) {
                    Ok(pps) => {
                        eprintln!("          {:.3} Mpps", pps / 1e6);
                        peer_samples.push(pps / 1e6);
                    }
                    Err(e) => {
                        eprintln!("          unusable: {e:#}");
                        self.report.notes.push(xdp_tool_unusable(
                            "xdp-bench",
                            "XDP_BENCH",
                            &path,
                            &e,
                        ));
                        self.xdp_bench = None;
                    }
                }
                self.progress.done += 1;
            }
        }
        let size_text = size.to_string();
        if !peer_samples.is_empty() {
            self.report.cells.push(Cell::new(
                Labels::new([
                    ("napi", napi.name()),
                    ("mode", "ceiling"),
                    ("size", &*size_text),
                    ("backend", "xdp-bench"),
                ]),
                "Mpps",
                "Mpps",
                peer_samples,
            ));
        }
        let labels = with_queues(
            Labels::new([
                ("napi", napi.name()),
                ("mode", "ceiling"),
                ("size", &*size_text),
                ("backend", "xdp-drop"),
                ("generator", choice.engine.name()),
            ]),
            a.queues,
        );
        let ceiling = median(&samples).unwrap_or(0.0);
        let bound = bound_by_source(&samples, &offered, &held);
        self.report
            .cells
            .push(Cell::new(labels.clone(), "Mpps", "Mpps", samples).with_source_bound(bound));
        if !offered.is_empty() {
            self.report
                .cells
                .push(Cell::new(labels, "offered", "Mpps", offered));
        }
        Ok(ceiling)
    }

    /// Every row of `mode` at `size`, runs interleaved across the rows (run
    /// 1 of every row, then run 2, …) so that drift of the machine hits
    /// every row alike; then the rows' cells.
    fn mode(
        &mut self,
        napi: Napi,
        size: u32,
        mode: BenchMode,
        choice: &Choice,
        ceilings: &[(u32, f64)],
    ) -> anyhow::Result<()> {
        let (runs, stop) = (self.a.runs, crate::run::stop_flag());
        let rows = rows_for(mode, &self.a.backends, &self.peers, &mut self.report.notes);
        let mut acc: Vec<RowSamples> = rows.iter().map(|_| RowSamples::default()).collect();
        for r in 0..runs {
            for (row, got) in rows.iter().zip(acc.iter_mut()) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if got.unsupported.is_some() {
                    continue;
                }
                self.progress.line(&format!(
                    "{:<7} {size:>4} B  {:<12} run {}/{runs}",
                    mode.name(),
                    row.name(),
                    r + 1
                ));
                if let Some(why) = unsupported(*row, size) {
                    eprintln!("          unsupported: {why}");
                    got.unsupported = Some(why);
                    continue;
                }
                match self.run_row(napi, size, mode, *row, ceilings) {
                    Ok(m) => {
                        eprintln!(
                            "          {:.3} Mpps, {:.1} ns/packet on the measured CPU",
                            m.pps / 1e6,
                            m.ns_per_packet
                        );
                        got.add(&m);
                        self.progress.done += 1;
                    }
                    Err(CellError::Unsupported(why)) => {
                        eprintln!("          unsupported: {why}");
                        self.progress.done += runs - r;
                        got.unsupported = Some(why);
                    }
                    // Ctrl-C/SIGTERM: the table of what was measured.
                    Err(CellError::Failed(e)) if e.is::<Stopped>() => break,
                    Err(CellError::Failed(e)) => return Err(e),
                }
            }
        }
        let generator = if mode == BenchMode::Txpush {
            "none"
        } else {
            choice.engine.name()
        };
        let ceiling = ceilings
            .iter()
            .find(|(s, _)| *s == size)
            .map(|&(_, c)| c)
            .filter(|_| mode == BenchMode::Rxdrop);
        for (row, got) in rows.iter().zip(acc) {
            let labels = with_queues(
                Labels::new([
                    ("napi", napi.name()),
                    ("mode", mode.name()),
                    ("size", &*size.to_string()),
                    ("backend", row.name()),
                    ("generator", generator),
                ]),
                self.a.queues,
            );
            if let Some(why) = &got.unsupported {
                self.note_unsupported(&labels, *row, mode, size, why);
            }
            if let Some(c) = ceiling.filter(|&c| c > 0.0 && got.above_ceiling(c)) {
                self.report.notes.push(format!(
                    "{} {mode} {size} B: no \"of ceiling\" share: a run reached {:.3} Mpps, above \
                     the XDP_DROP ceiling's median of {c:.3} Mpps, so the ceiling's runs fell \
                     short of what the generator can deliver; see their figures above",
                    row.name(),
                    got.rates.iter().copied().fold(0.0, f64::max),
                    mode = mode.name(),
                ));
            }
            self.report.cells.extend(got.into_cells(&labels, ceiling));
        }
        Ok(())
    }

    /// One run of `row`: its receive work placed, then measured.
    fn run_row(
        &self,
        napi: Napi,
        size: u32,
        mode: BenchMode,
        row: Row,
        ceilings: &[(u32, f64)],
    ) -> Result<RunResult, CellError> {
        let (a, lab, gen) = (self.a, self.lab, &self.gen);
        let (warmup, seconds) = (self.warmup, a.seconds);
        // The measured side's receive work on its own core.
        let (rx_cpu, gen_cpu) = if mode == BenchMode::Txpush {
            (a.gen_cpu, a.cpu)
        } else {
            (a.cpu, a.gen_cpu)
        };
        napi::place(lab, napi, rx_cpu, gen_cpu)?;
        let wait = Wait::of(napi, mode != BenchMode::Txpush, a.poll, a.busy_poll);
        let cpus = (a.cpu, a.gen_cpu);
        match row {
            Row::Ours(backend) => {
                let cell = CellSpec {
                    mode,
                    backend,
                    size,
                    napi,
                    wait,
                };
                measure_cell(lab, gen, cell, a, warmup, seconds)
            }
            Row::Peer(peer) => {
                measure_peer(lab, gen, peer, mode, size, cpus, a.rate, warmup, seconds)
            }
            Row::Capture(tool) => {
                let dest = destination(mode, size, ceilings, seconds + warmup);
                measure_capture(lab, gen, tool, dest, size, cpus, a.rate, warmup, seconds)
            }
        }
    }

    /// A row that cannot run: a note (once), and the row in the table and
    /// the JSON without samples.
    fn note_unsupported(
        &mut self,
        labels: &Labels,
        row: Row,
        mode: BenchMode,
        size: u32,
        why: &str,
    ) {
        let note = format!(
            "{} {} {size} B: unsupported: {why}",
            row.name(),
            mode.name()
        );
        if !self.report.notes.contains(&note) {
            self.report.notes.push(note);
        }
        self.report.cells.push(Cell::new(
            labels.with("status", &format!("unsupported: {why}")),
            "Mpps",
            "Mpps",
            Vec::new(),
        ));
    }

    /// The report, with the generators that ran and the note on
    /// source-bound rows.
    fn finish(mut self) -> Report {
        self.report
            .environment
            .set("generator", self.gen.describe());
        self.report.generators = Some(self.gen.to_json());
        if self.report.cells.iter().any(|c| c.source_bound) {
            self.report.notes.push(
                "≥ x: source-bound — the row took ≥ 99 % of what the generator offered, so its \
                 rate is a lower bound and has no ratio; compare those rows by ns/packet (CPU \
                 per packet at the same offered load)"
                    .into(),
            );
        }
        self.report
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pps: f64, offered: f64, held_back: bool) -> RunResult {
        RunResult {
            pps,
            ns_per_packet: 50.0,
            drops_pct: None,
            gen_cpu_pct: Some((100.0, 40.0)),
            offered_pps: Some(offered),
            held_back,
            queue_pps: Vec::new(),
        }
    }

    fn metrics(cells: &[Cell]) -> Vec<&str> {
        cells.iter().map(|c| c.metric.as_str()).collect()
    }

    /// A row faster than its ceiling's median (the ceiling's runs fell
    /// short) gets no share, instead of one far above 100 % (seen: 4380).
    #[test]
    fn no_share_of_a_ceiling_the_row_outran() {
        let labels = Labels::new([("backend", "xdp")]);
        let mut got = RowSamples::default();
        for pps in [2.0e6, 2.1e6, 1.9e6] {
            got.add(&run(pps, 2.2e6, false));
        }
        assert!(got.above_ceiling(0.05));
        assert!(!got.above_ceiling(2.05), "within the 5 % margin");
        let cells = got.into_cells(&labels, Some(0.05));
        assert!(
            !metrics(&cells).contains(&"of ceiling"),
            "{:?}",
            metrics(&cells)
        );
        let mut fine = RowSamples::default();
        fine.add(&run(2e6, 2.2e6, false));
        let cells = fine.into_cells(&labels, Some(4.0));
        let share = cells.iter().find(|c| c.metric == "of ceiling").unwrap();
        assert_eq!(share.samples, [50.0]);
    }

    #[test]
    fn a_row_that_took_all_offered_is_source_bound_unless_held_back() {
        let labels = Labels::new([("backend", "v2")]);
        let mut got = RowSamples::default();
        for _ in 0..3 {
            got.add(&run(2e6, 2e6, false));
        }
        let cells = got.into_cells(&labels, Some(4.0));
        assert_eq!(
            metrics(&cells),
            [
                "of ceiling",
                "Mpps",
                "offered",
                "cost",
                "per core",
                "gen CPU",
                "gen softirq"
            ]
        );
        assert_eq!(cells[0].samples, [50.0, 50.0, 50.0]);
        assert!(cells[1].source_bound);
        assert_eq!(cells[1].display(), "≥ 2.00");
        assert_eq!(cells[4].samples, [20.0, 20.0, 20.0]);

        let mut got = RowSamples::default();
        for held in [true, true, false] {
            got.add(&run(2e6, 2e6, held));
        }
        let cells = got.into_cells(&labels, None);
        assert_eq!(metrics(&cells)[0], "Mpps");
        assert!(!cells[0].source_bound, "the receiver set the rate");
    }

    #[test]
    fn a_row_on_several_queues_has_each_queue_beside_the_total() {
        let labels = with_queues(Labels::new([("backend", "xdp")]), 2);
        assert_eq!(labels.get("queues"), Some("2"));
        let one = with_queues(Labels::new([("backend", "xdp")]), 1);
        assert_eq!(one.get("queues"), None, "one queue: labels unchanged");
        let mut got = RowSamples::default();
        for (a, b) in [(1e6, 2e6), (1.5e6, 0.5e6)] {
            got.add(&RunResult {
                queue_pps: vec![a, b],
                ..run(a + b, 4e6, false)
            });
        }
        let cells = got.into_cells(&labels, None);
        assert_eq!(&metrics(&cells)[..3], ["Mpps", "q0", "q1"]);
        assert_eq!(cells[0].samples, [3.0, 2.0]);
        assert_eq!(cells[1].samples, [1.0, 1.5]);
        assert_eq!(cells[2].samples, [2.0, 0.5]);
        assert!(cells[1..3].iter().all(|c| c.unit == "Mpps"));
    }

    #[test]
    fn the_queues_note_says_where_threads_ran_and_that_cores_are_shared() {
        let a = PacketBench {
            backends: vec![],
            modes: vec![],
            sizes: vec![64],
            seconds: 1.0,
            runs: 1,
            gen_cpu: 0,
            cpu: 1,
            batch: 64,
            rate: None,
            napi: None,
            poll: false,
            busy_poll: false,
            generator: crate::gen::Engine::Auto,
            peers: false,
            queues: 2,
            queue_cpus: vec![1, 0],
        };
        let n = queues_note(&a);
        assert!(n.starts_with("2 queues"), "{n}");
        assert!(n.contains("q0 on CPU 1, q1 on CPU 0"), "{n}");
        // q1 shares the generator's CPU: said, whatever the machine.
        assert!(n.contains("share them"), "{n}");
    }

    #[test]
    fn a_row_without_runs_has_no_cells() {
        let cells = RowSamples::default().into_cells(&Labels::default(), Some(1.0));
        assert!(cells.is_empty());
    }
}
