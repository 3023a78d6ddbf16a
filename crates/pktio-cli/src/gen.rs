//! Traffic generators for the lab.
//!
//! - [`Generator::Live`]: in-kernel live-frame injection. An XDP program that
//!   returns `XDP_TX` is run by `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`
//!   (kernel 5.18) on the sending interface: every run transmits a real frame
//!   out of it, with no skb and no socket. This is how xdp-trafficgen reaches
//!   ~8 Mpps on one core; no Debian-packaged tool comes close on veth.
//!   The receiving veth needs a NAPI instance (an XDP program or GRO) or the
//!   frames vanish.
//! - [`Generator::Xsk`]: AF_XDP copy-mode transmit (the txpush loop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use pktio::bpf::{progs, Program};
use pktio::wire::UdpFrame;

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generator {
    /// BPF_PROG_RUN live frames (XDP_TX), the fastest source.
    Live,
    /// AF_XDP transmit.
    Xsk,
}

/// What a generator run sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenResult {
    /// Frames handed to the interface.
    pub frames: u64,
    /// Seconds it ran.
    pub seconds: f64,
}

/// Frames per `BPF_PROG_RUN` call: big enough to amortise the syscall, small
/// enough to notice a stop request within a few milliseconds.
const LIVE_REPEAT: u32 = 1 << 15;
/// Frames per batch inside the kernel (at most 256).
const LIVE_BATCH: u32 = 64;

/// Runs the live-frame generator on `ifindex` (of the calling thread's
/// namespace) until `stop` is set.
pub fn run_live(ifindex: u32, spec: &UdpFrame, len: usize, stop: &AtomicBool) -> anyhow::Result<GenResult> {
    let mut frame = vec![0u8; len];
    spec.emit(b"pktio live", len, &mut frame)
        .map_err(|_| anyhow::anyhow!("cannot build a {len}-byte frame"))?;
    let prog = Program::load_xdp(&progs::xdp_tx(), &[]).context("loading the XDP_TX generator program")?;
    let start = Instant::now();
    let mut frames = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let r = prog
            .run_live_frames(ifindex, &frame, LIVE_REPEAT, LIVE_BATCH)
            .context("BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (kernel 5.18+)")?;
        frames += r.frames as u64;
    }
    Ok(GenResult {
        frames,
        seconds: start.elapsed().as_secs_f64(),
    })
}
