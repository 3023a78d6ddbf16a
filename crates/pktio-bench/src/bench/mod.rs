//! `pktio bench`: the packet benchmark, its harness check and the
//! generator comparison, as engines that take a plain configuration and
//! return a [`Report`](crate::report::Report).
//!
//! The modules, each using only those above it:
//!
//! - [`window`]: sleeps that end at a stop, [`window::Stopped`].
//! - [`cell`]: one run's figures, and "unsupported" versus failed.
//! - [`matrix`]: the axes (backends, modes, sizes and their MTU).
//! - [`napi`]: where the lab's receive work runs, how receivers wait.
//! - [`lab`]: the generator per size and its thread, the XDP sink.
//! - [`sink`]: what reaches the sink in a window; the XDP_DROP ceiling.
//! - [`peers`]: existing tools (dpdk-testpmd, xdp-bench) run in the same
//!   lab.
//! - [`capture`]: the capture modes' tools (pktio capture, tcpdump,
//!   netsniff-ng) and their pcap files.
//! - [`plan`]: the planner: which cells, in which order, which rows are
//!   unsupported and why; the progress line.
//! - [`ours`]: one cell of pktio's own rows.
//! - [`runner`]: the packet benchmark in the lab, runs interleaved.
//! - [`interface`]: the packet benchmark on a real interface.
//! - [`harness`]: what the benchmark's own measuring costs.
//! - [`genbench`]: pktio's generator engines beside xdp-trafficgen.

pub mod capture;
pub mod cell;
pub mod genbench;
pub mod harness;
pub mod interface;
pub mod lab;
pub mod matrix;
pub mod napi;
pub mod ours;
pub mod peers;
pub mod plan;
pub mod runner;
pub mod sink;
pub mod window;
