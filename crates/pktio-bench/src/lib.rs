//! # pktio-bench: the engines behind pktio's benchmarks
//!
//! What the `pktio` command runs, as a library: plain configuration
//! structs in, results out. No command-line parsing and no printing of the
//! results (the CLI does both); the long runs say how far they are on
//! stderr.
//!
//! - [`run`]: what every long-running engine shares: the process-wide stop
//!   flag (the program wires SIGINT/SIGTERM to it, [`run::set_stop_hook`]),
//!   CPU pinning, the per-second rate meter, CPU times from `/proc/stat`.
//! - [`loops`]: the packet loops of rxdrop, txpush and l2fwd
//!   ([`loops::run_loop`]) and the options that open their socket.
//! - [`gen`]: the traffic generators (live frames, AF_XDP, AF_PACKET TX
//!   ring, raw socket) and the ladder that picks one.
//! - [`bench`](mod@bench): the packet benchmark (planner, lab, ceilings, interleaved
//!   runs, peers, NAPI placement), its harness check and the generator
//!   comparison.
//! - [`latency`]: ping/pong round trips per backend and wakeup mode, an
//!   HDR histogram each.
//! - [`report`]: a benchmark's result: labelled cells of samples, their
//!   statistics, and the text, Markdown, JSON and SVG renderings.
//! - [`soak`]: rxdrop and l2fwd for minutes on end, checking that the
//!   rate, the frame accounting and the resident memory stay flat.
//! - [`tcp`]: the TCP receive benchmark's engines.
#![forbid(unsafe_code)]

pub mod bench;
pub mod gen;
pub mod latency;
pub mod loops;
pub mod report;
pub mod run;
pub mod soak;
pub mod tcp;
