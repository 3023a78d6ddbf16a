//! What reaches the receiving end of the lab in a measured window (an XDP
//! sink there drops and counts it), and the XDP_DROP ceiling of a frame
//! size: the same generator into that sink, nothing else in the way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pktio::bpf::XdpAction;
use pktio_lab::Lab;

use crate::bench::cell::{busy_pct, GenCpu};
use crate::bench::lab::{attach_sink, join_generator, start_generator, GenPlan};
use crate::bench::window::sleep_window;
use crate::gen::Progress;
use crate::run::CpuTimes;

/// The XDP_DROP ceiling of `size`-byte frames: (delivered, offered) frames
/// per second, and whether the sink held the generator back.
pub fn measure_ceiling(
    lab: &Lab,
    gen: &GenPlan,
    size: u32,
    gen_cpu: usize,
    warmup: f64,
    seconds: f64,
) -> anyhow::Result<(f64, Option<f64>, bool)> {
    let _sink = attach_sink(lab.rx(), XdpAction::Drop)?;
    let stop = Arc::new(AtomicBool::new(false));
    let g = start_generator(lab, gen, size, gen_cpu, None, stop.clone())?;
    let window = sink_window(lab, gen_cpu, warmup, seconds, Some(&g.progress));
    stop.store(true, Ordering::SeqCst);
    join_generator(g)?;
    let w = window?;
    Ok((w.pps(), w.offered_pps(), w.held_back))
}

/// What reached the receiving end's link in a measured window, and how the
/// generator's CPU was used meanwhile.
#[derive(Debug)]
pub struct SinkWindow {
    /// Frames the link counted.
    pub frames: u64,
    /// The window's length.
    pub seconds: f64,
    /// The generator CPU's busy and softirq shares, in %.
    pub gen_cpu: GenCpu,
    /// Frames the generator sent in the window, when it counts them.
    pub offered: Option<u64>,
    /// Whether the receiving end held the generator back in the window.
    pub held_back: bool,
}

impl SinkWindow {
    /// Frames per second that arrived.
    pub fn pps(&self) -> f64 {
        self.frames as f64 / self.seconds
    }

    /// Frames per second the generator sent, when it counts them.
    pub fn offered_pps(&self) -> Option<f64> {
        self.offered.map(|n| n as f64 / self.seconds)
    }
}

/// Waits `warmup` seconds, then counts what the receiving end's link
/// receives over `seconds` (an XDP sink there drops and counts), reading
/// CPU `gen_cpu`'s times at both ends. The caller starts and stops the
/// generator and the sink.
pub fn sink_window(
    lab: &Lab,
    gen_cpu: usize,
    warmup: f64,
    seconds: f64,
    progress: Option<&Progress>,
) -> anyhow::Result<SinkWindow> {
    let stop = crate::run::stop_flag();
    sleep_window(warmup, &stop)?;
    let sent = || progress.map(Progress::frames);
    let held = || progress.map_or(0, Progress::held_back);
    let (p0, c0, o0, h0) = (
        lab.rx().try_stats()?.rx_packets,
        CpuTimes::now(gen_cpu),
        sent(),
        held(),
    );
    let t0 = Instant::now();
    sleep_window(seconds, &stop)?;
    let (p1, c1, o1, h1) = (
        lab.rx().try_stats()?.rx_packets,
        CpuTimes::now(gen_cpu),
        sent(),
        held(),
    );
    Ok(SinkWindow {
        frames: p1.saturating_sub(p0),
        seconds: t0.elapsed().as_secs_f64(),
        gen_cpu: busy_pct(c0, c1),
        offered: o0.zip(o1).map(|(a, b)| b.saturating_sub(a)),
        held_back: h1 > h0,
    })
}
