//! The planner of the packet benchmark: what runs, in which order, and
//! which rows cannot run and why, decided before the lab measures
//! anything; and the progress line with its time estimate.
//!
//! For every placement of the receive work (`--napi`) and frame size: the
//! XDP_DROP ceiling's runs (with `xdp-bench drop` beside it under
//! `--peers`), then every mode, its runs interleaved across the rows (run 1
//! of every row, then run 2, …) so that drift of the machine hits every row
//! alike. An AF_XDP row without multi-buffer cannot carry the frames of a
//! size above 1518 (MTU 9000): it is planned as unsupported, with the
//! reason, and runs nothing.

use std::time::Instant;

use crate::bench::capture::CaptureTool;
use crate::bench::matrix::{size_mtu, BenchBackend, BenchMode};
use crate::bench::napi::Napi;
use crate::bench::peers::Peer;
use crate::gen::Engine;

/// What the packet benchmark measures in the lab, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketBench {
    /// pktio's rows.
    pub backends: Vec<BenchBackend>,
    /// The modes, in order.
    pub modes: Vec<BenchMode>,
    /// Frame sizes on the wire, FCS included (64..=[`MAX_SIZE`](crate::bench::matrix::MAX_SIZE)).
    pub sizes: Vec<u32>,
    /// Seconds measured per run (after the warm-up).
    pub seconds: f64,
    /// Runs per cell.
    pub runs: usize,
    /// CPU of the generator (and of the receive-side kernel work on veth).
    pub gen_cpu: usize,
    /// CPU of the measured side.
    pub cpu: usize,
    /// Packets per batch in the measured loop.
    pub batch: u32,
    /// The offered rate, packets per second (`None`: as fast as it goes).
    pub rate: Option<f64>,
    /// The placements of the receive work (`None`: softirq only).
    pub napi: Option<Vec<Napi>>,
    /// Our receivers sleep in poll() when idle.
    pub poll: bool,
    /// Busy polling in our sockets (20 µs, budget 64).
    pub busy_poll: bool,
    /// The generator engine (`Auto`: the fastest this host allows).
    pub generator: Engine,
    /// Also run the existing tools installed here, as rows.
    pub peers: bool,
    /// Queues of the lab's veth (1: the default lab). With more, pktio's
    /// rows run one loop per queue (a thread each, on
    /// [`queue_cpus`](Self::queue_cpus)) and the generator feeds every
    /// queue; the rows gain each queue's Mpps.
    pub queues: u32,
    /// With several queues: the CPUs of the queues' threads, queue `i` on
    /// `queue_cpus[i % len]` (empty: all on [`cpu`](Self::cpu)).
    pub queue_cpus: Vec<usize>,
}

impl PacketBench {
    /// The CPU of queue `i`'s thread.
    pub fn queue_cpu(&self, i: usize) -> usize {
        match self.queue_cpus.len() {
            0 => self.cpu,
            n => self.queue_cpus[i % n],
        }
    }

    /// The distinct CPUs the measured side's threads run on, in order.
    pub fn measured_cpus(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for i in 0..self.queues.max(1) as usize {
            let c = self.queue_cpu(i);
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

/// A row of the table: one of ours, or an existing tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// pktio's loop on a backend.
    Ours(BenchBackend),
    /// dpdk-testpmd.
    Peer(Peer),
    /// A capture tool (pktio capture, tcpdump, netsniff-ng).
    Capture(CaptureTool),
}

impl Row {
    /// The row's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Row::Ours(b) => b.name(),
            Row::Peer(p) => p.name(),
            Row::Capture(t) => t.name(),
        }
    }
}

/// The existing tools found on this host (`--peers`), and the notes on
/// those that are missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    /// dpdk-testpmd's rows of the packet modes.
    pub tools: Vec<Peer>,
    /// What is missing for the packet modes.
    pub tool_notes: Vec<String>,
    /// The capture tools.
    pub capture: Vec<CaptureTool>,
    /// What is missing for capture.
    pub capture_notes: Vec<String>,
}

impl Peers {
    /// Looks for the tools `modes` would run (testpmd for the packet modes,
    /// tcpdump and netsniff-ng for capture); none without `wanted`.
    pub fn find(wanted: bool, modes: &[BenchMode]) -> Peers {
        let mut p = Peers::default();
        if !wanted {
            return p;
        }
        if modes.iter().any(|m| !m.is_capture()) {
            p.tools = crate::bench::peers::available(&mut p.tool_notes);
        }
        if modes.iter().any(|m| m.is_capture()) {
            p.capture = CaptureTool::peers(&mut p.capture_notes);
        }
        p
    }
}

/// The rows of `mode`: ours, then the existing tools found. Capture runs
/// `pktio capture` over TPACKET_V3 and AF_XDP (when those backends are
/// selected) beside tcpdump and netsniff-ng. The notes on missing tools
/// go to `notes`, each once.
pub fn rows_for(
    mode: BenchMode,
    backends: &[BenchBackend],
    peers: &Peers,
    notes: &mut Vec<String>,
) -> Vec<Row> {
    let (mut rows, extra, missing): (Vec<Row>, Vec<Row>, &[String]) = if mode.is_capture() {
        (
            [
                (BenchBackend::V3, CaptureTool::PktioV3),
                (BenchBackend::Xdp, CaptureTool::PktioXdp),
            ]
            .into_iter()
            .filter(|(b, _)| backends.contains(b))
            .map(|(_, t)| Row::Capture(t))
            .collect(),
            peers.capture.iter().map(|&t| Row::Capture(t)).collect(),
            &peers.capture_notes,
        )
    } else {
        (
            backends.iter().map(|&b| Row::Ours(b)).collect(),
            peers.tools.iter().map(|&p| Row::Peer(p)).collect(),
            &peers.tool_notes,
        )
    };
    rows.extend(extra);
    for n in missing {
        if !notes.contains(n) {
            notes.push(n.clone());
        }
    }
    rows
}

/// Why `row` cannot carry `size`-byte frames, if so (the lab runs that
/// size at [`size_mtu`]): planned as unsupported, nothing runs.
pub fn unsupported(row: Row, size: u32) -> Option<String> {
    match row {
        Row::Ours(b) => b.cannot_carry(size_mtu(size)),
        Row::Peer(_) | Row::Capture(_) => None,
    }
}

/// One run of the plan, in the order the benchmark takes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A run of the XDP_DROP ceiling (`xdp_bench`: of `xdp-bench drop`).
    Ceiling {
        /// Placement of the receive work.
        napi: Napi,
        /// Frame size.
        size: u32,
        /// Run number, from 1.
        run: usize,
        /// `xdp-bench drop` instead of pktio's XDP_DROP program.
        xdp_bench: bool,
    },
    /// A run of one row of one mode.
    Cell {
        /// Placement of the receive work.
        napi: Napi,
        /// Frame size.
        size: u32,
        /// The mode.
        mode: BenchMode,
        /// The row.
        row: Row,
        /// Run number, from 1.
        run: usize,
    },
    /// A row that cannot run at this size: no runs, a note.
    Unsupported {
        /// Placement of the receive work.
        napi: Napi,
        /// Frame size.
        size: u32,
        /// The mode.
        mode: BenchMode,
        /// The row.
        row: Row,
        /// Why.
        why: String,
    },
}

/// Every step of `cfg` over `placements`, in order, with the rows of
/// `peers` and (`xdp_bench`) `xdp-bench drop` beside each ceiling run.
pub fn steps(cfg: &PacketBench, placements: &[Napi], peers: &Peers, xdp_bench: bool) -> Vec<Step> {
    let mut out = Vec::new();
    for &napi in placements {
        for &size in &cfg.sizes {
            for run in 1..=cfg.runs {
                out.push(Step::Ceiling {
                    napi,
                    size,
                    run,
                    xdp_bench: false,
                });
                if xdp_bench {
                    out.push(Step::Ceiling {
                        napi,
                        size,
                        run,
                        xdp_bench: true,
                    });
                }
            }
            for &mode in &cfg.modes {
                let rows = rows_for(mode, &cfg.backends, peers, &mut Vec::new());
                for &row in &rows {
                    if let Some(why) = unsupported(row, size) {
                        out.push(Step::Unsupported {
                            napi,
                            size,
                            mode,
                            row,
                            why,
                        });
                    }
                }
                for run in 1..=cfg.runs {
                    for &row in &rows {
                        if unsupported(row, size).is_none() {
                            out.push(Step::Cell {
                                napi,
                                size,
                                mode,
                                row,
                                run,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The progress through the plan: runs done of all, and the time left at
/// `per_run` seconds a run.
#[derive(Debug)]
pub struct Progress {
    /// Runs planned.
    pub cells: usize,
    /// Runs done (or skipped).
    pub done: usize,
    /// When the benchmark started.
    pub start: Instant,
    /// Seconds a run takes, warm-up and setup included.
    pub per_run: f64,
}

impl Progress {
    /// Prints the progress line of the run about to start, `what`.
    pub fn line(&self, what: &str) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let left = (self.cells - self.done) as f64 * self.per_run;
        eprintln!(
            "[{:>3}/{}] {what:<44} elapsed {}  left ~{}",
            self.done + 1,
            self.cells,
            mmss(elapsed),
            mmss(left)
        );
    }
}

fn mmss(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        backends: &[BenchBackend],
        modes: &[BenchMode],
        sizes: &[u32],
        runs: usize,
    ) -> PacketBench {
        PacketBench {
            backends: backends.to_vec(),
            modes: modes.to_vec(),
            sizes: sizes.to_vec(),
            seconds: 1.0,
            runs,
            gen_cpu: 0,
            cpu: 1,
            batch: 64,
            rate: None,
            napi: None,
            poll: false,
            busy_poll: false,
            generator: Engine::Auto,
            peers: false,
            queues: 1,
            queue_cpus: Vec::new(),
        }
    }

    fn cell(size: u32, mode: BenchMode, b: BenchBackend, run: usize) -> Step {
        Step::Cell {
            napi: Napi::Softirq,
            size,
            mode,
            row: Row::Ours(b),
            run,
        }
    }

    fn ceiling(size: u32, run: usize, xdp_bench: bool) -> Step {
        Step::Ceiling {
            napi: Napi::Softirq,
            size,
            run,
            xdp_bench,
        }
    }

    #[test]
    fn ceilings_first_then_each_mode_with_runs_interleaved_across_rows() {
        use BenchBackend::{Xdp, V2};
        use BenchMode::{Rxdrop, Txpush};
        let cfg = config(&[V2, Xdp], &[Rxdrop, Txpush], &[64], 2);
        let got = steps(&cfg, &[Napi::Softirq], &Peers::default(), false);
        let want = vec![
            ceiling(64, 1, false),
            ceiling(64, 2, false),
            cell(64, Rxdrop, V2, 1),
            cell(64, Rxdrop, Xdp, 1),
            cell(64, Rxdrop, V2, 2),
            cell(64, Rxdrop, Xdp, 2),
            cell(64, Txpush, V2, 1),
            cell(64, Txpush, Xdp, 1),
            cell(64, Txpush, V2, 2),
            cell(64, Txpush, Xdp, 2),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn xdp_bench_alternates_with_our_ceiling_and_placements_run_in_turn() {
        let cfg = config(&[BenchBackend::V2], &[], &[64, 1500], 1);
        let got = steps(
            &cfg,
            &[Napi::Softirq, Napi::Thread],
            &Peers::default(),
            true,
        );
        let ceilings: Vec<(Napi, u32, bool)> = got
            .iter()
            .map(|s| match s {
                Step::Ceiling {
                    napi,
                    size,
                    xdp_bench,
                    ..
                } => (*napi, *size, *xdp_bench),
                other => panic!("only ceilings without modes: {other:?}"),
            })
            .collect();
        let (s, t) = (Napi::Softirq, Napi::Thread);
        assert_eq!(
            ceilings,
            [
                (s, 64, false),
                (s, 64, true),
                (s, 1500, false),
                (s, 1500, true),
                (t, 64, false),
                (t, 64, true),
                (t, 1500, false),
                (t, 1500, true),
            ]
        );
    }

    #[test]
    fn jumbo_frames_leave_single_buffer_af_xdp_rows_unsupported_with_the_reason() {
        use BenchBackend::{Xdp, XdpMb, XdpSkb, XdpZc, V2};
        for b in [Xdp, XdpSkb, XdpZc] {
            assert_eq!(unsupported(Row::Ours(b), 1518), None, "{b}");
            let why = unsupported(Row::Ours(b), 1519).expect("MTU 9000 above 1518");
            assert!(why.contains("MTU 9000"), "{why}");
            assert!(why.contains("9014-byte frame"), "{why}");
            assert!(why.contains("see xdp-mb"), "{why}");
        }
        for b in [XdpMb, V2, BenchBackend::V3, BenchBackend::Uring] {
            assert_eq!(unsupported(Row::Ours(b), 9000), None, "{b}");
        }
        let cfg = config(&[Xdp, XdpMb], &[BenchMode::Rxdrop], &[9000], 2);
        let got = steps(&cfg, &[Napi::Softirq], &Peers::default(), false);
        assert!(matches!(
            &got[2],
            Step::Unsupported { row: Row::Ours(Xdp), size: 9000, why, .. } if why.contains("MTU 9000")
        ));
        assert_eq!(
            got[3..],
            [
                cell(9000, BenchMode::Rxdrop, XdpMb, 1),
                cell(9000, BenchMode::Rxdrop, XdpMb, 2)
            ]
        );
    }

    #[test]
    fn capture_rows_follow_the_selected_backends_then_the_peers_found() {
        use BenchBackend::{Xdp, V2, V3};
        let peers = Peers {
            tools: vec![Peer::TestpmdXdp],
            tool_notes: vec!["no testpmd-pkt".into()],
            capture: vec![CaptureTool::Tcpdump],
            capture_notes: vec!["netsniff-ng not installed".into()],
        };
        let mut notes = Vec::new();
        let rows = rows_for(BenchMode::Capture, &[V2, Xdp, V3], &peers, &mut notes);
        assert_eq!(
            rows,
            [
                Row::Capture(CaptureTool::PktioV3),
                Row::Capture(CaptureTool::PktioXdp),
                Row::Capture(CaptureTool::Tcpdump)
            ]
        );
        assert_eq!(notes, ["netsniff-ng not installed"]);
        let rows = rows_for(BenchMode::CaptureTmpfs, &[V2], &peers, &mut notes);
        assert_eq!(rows, [Row::Capture(CaptureTool::Tcpdump)]);
        let rows = rows_for(BenchMode::L2fwd, &[V2], &peers, &mut notes);
        assert_eq!(rows, [Row::Ours(V2), Row::Peer(Peer::TestpmdXdp)]);
        // Each note once, however many modes ask.
        let _ = rows_for(BenchMode::Rxdrop, &[V2], &peers, &mut notes);
        assert_eq!(notes, ["netsniff-ng not installed", "no testpmd-pkt"]);
    }

    #[test]
    fn queue_threads_go_round_the_cpus_given_or_on_the_measured_cpu() {
        let mut cfg = config(&[BenchBackend::Xdp], &[BenchMode::Rxdrop], &[64], 1);
        assert_eq!(cfg.measured_cpus(), [1]);
        cfg.queues = 3;
        assert_eq!(cfg.measured_cpus(), [1], "no list: all on --cpu");
        cfg.queue_cpus = vec![1, 0];
        assert_eq!(
            (0..3).map(|i| cfg.queue_cpu(i)).collect::<Vec<_>>(),
            [1, 0, 1]
        );
        assert_eq!(cfg.measured_cpus(), [1, 0]);
        // The plan itself does not change with the queues: the same rows.
        let one = config(&[BenchBackend::Xdp], &[BenchMode::Rxdrop], &[64], 1);
        let p = Peers::default();
        assert_eq!(
            steps(&cfg, &[Napi::Softirq], &p, false),
            steps(&one, &[Napi::Softirq], &p, false)
        );
    }

    #[test]
    fn no_peers_are_looked_for_unless_asked() {
        assert_eq!(Peers::find(false, &BenchMode::ALL), Peers::default());
    }
}
