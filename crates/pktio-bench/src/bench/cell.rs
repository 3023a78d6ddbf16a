//! One run of a cell and how it ends: its measurement ([`RunResult`]), or
//! a [`CellError`] that says whether the row cannot run on this host
//! ("unsupported", and why) or failed.

use crate::run::CpuTimes;

/// One run's measurement.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Packets per second delivered.
    pub pps: f64,
    /// Measured side's CPU (thread + softirq of its core) per packet, ns.
    pub ns_per_packet: f64,
    /// Packets the kernel dropped for lack of room in the socket's ring, in
    /// % of those it offered the socket (capture tools: their own count).
    pub drops_pct: Option<f64>,
    /// How busy the generator's CPU was over the window, and its softirq
    /// share, in % (the generator; on veth also the receive side's kernel
    /// work, which is softirq).
    pub gen_cpu_pct: GenCpu,
    /// Packets per second the generator offered in the window (none for
    /// txpush, where the measured side is the sender).
    pub offered_pps: Option<f64>,
    /// Whether the receiving side held the generator back in the window
    /// (its queue stopped: veth's backpressure): then the offered rate is
    /// what the receiver took, and the row is not source-bound.
    pub held_back: bool,
    /// A run on several queues: each queue's packets per second, in queue
    /// order (empty for one queue).
    pub queue_pps: Vec<f64>,
}

/// A CPU's busy and softirq shares over a window, in %, if readable.
pub type GenCpu = Option<(f64, f64)>;

/// The busy and the softirq share of a CPU between two `/proc/stat`
/// readings, in %.
pub fn busy_pct(before: Option<CpuTimes>, after: Option<CpuTimes>) -> GenCpu {
    let d = after?.since(&before?);
    let pct = |x: u64| 100.0 * x as f64 / d.total as f64;
    (d.total > 0).then(|| (pct(d.busy), pct(d.softirq)))
}

/// How a cell ended without a figure.
#[derive(Debug)]
pub enum CellError {
    /// The row cannot run here (zero-copy refused, io_uring missing, a
    /// frame too long for the row): why, for the table's notes.
    Unsupported(String),
    /// Anything else: the run ends with this error.
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CellError {
    fn from(e: E) -> Self {
        CellError::Failed(e.into())
    }
}

/// Zero-copy refused, io_uring not available on this host and similar
/// answers are a row's "unsupported", not a failure.
pub fn classify(e: anyhow::Error) -> CellError {
    use pktio::backend::BackendError;
    use pktio::uring::UringError;
    use pktio::xdp::XskError;
    let zc = |x: &XskError| match x {
        XskError::ZeroCopyUnsupported { reason, driver, .. } => {
            Some(format!("zero-copy: driver {driver}: {reason}"))
        }
        XskError::FrameTooLarge(m) => Some(m.clone()),
        _ => None,
    };
    // A queue of a set (--queues) that failed: its backend's error.
    let queue_source = match e.downcast_ref::<pktio::queues::QueueError>() {
        Some(pktio::queues::QueueError::Open { source, .. }) => Some(source),
        _ => None,
    };
    let why = if let Some(x) = e.downcast_ref::<XskError>() {
        zc(x)
    } else if let Some(b) = queue_source.or_else(|| e.downcast_ref::<BackendError>()) {
        match b {
            BackendError::Xsk(x) => zc(x),
            BackendError::Unsupported { .. }
            | BackendError::Uring(UringError::Unavailable { .. })
            | BackendError::Uring(UringError::MissingFeature { .. }) => Some(b.to_string()),
            _ => None,
        }
    } else {
        None
    };
    match why {
        Some(w) => CellError::Unsupported(w),
        None => CellError::Failed(e),
    }
}
