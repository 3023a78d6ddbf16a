//! One batch API over every packet path this crate has: AF_XDP, AF_PACKET
//! `TPACKET_V2` and `TPACKET_V3` rings, and io_uring on an AF_PACKET socket.
//!
//! # The API
//!
//! [`PacketIo`] is the batch API. Packets are lent to a closure and never
//! escape it (smoltcp's token style): the closure sees `&mut [u8]` into the
//! ring, UMEM or buffer, and the slot goes back when the batch ends. The
//! methods are generic over the closure, so a loop over a concrete backend
//! (or over [`Backend`], an enum dispatching with one `match` per batch)
//! compiles to direct calls.
//!
//! ```no_run
//! use pktio::backend::{Backend, BackendConfig, BackendKind, PacketIo};
//! # fn main() -> Result<(), pktio::backend::BackendError> {
//! let cfg = BackendConfig::new("eth0");
//! let (mut b, skipped) = Backend::auto(&cfg)?;
//! for s in &skipped {
//!     eprintln!("skipped {s}");
//! }
//! eprintln!("using {}", b.describe());
//! // rxdrop
//! loop {
//!     let n = b.rx_batch(64, |_pkt| {})?;
//!     if n == 0 {
//!         b.wait(100)?;
//!     }
//! #   break;
//! }
//! // l2fwd
//! let r = b.forward_batch(64, |pkt| {
//!     pktio::wire::swap_macs(pkt);
//!     true
//! })?;
//! # let _ = r;
//! # Ok(()) }
//! ```
//!
//! # The backends
//!
//! | [`BackendKind`] | type | RX | TX | forward |
//! |---|---|---|---|---|
//! | `Xdp`, `XdpSkb` | [`XdpBackend`] | UMEM frames | UMEM frames | zero-copy: the RX descriptor moves to TX |
//! | `PacketV2` | [`PacketV2`] | V2 frame ring | V2 frame ring | one copy, RX frame → TX frame |
//! | `PacketV3` | [`PacketV3`] | V3 block ring | V3 frame ring (V2 ring on kernels before 4.11) | one copy |
//! | `Uring` | [`UringBackend`] | multishot recv, provided buffers | batched `send` SQEs | one copy |
//!
//! # Choosing one
//!
//! [`Backend::auto`] walks a ladder from the fastest path to the most
//! portable one and records why each skipped step was skipped
//! ([`Skipped`], also in [`BackendInfo::skipped`]):
//! AF_XDP zero-copy → AF_XDP copy with a native (driver) program → AF_XDP
//! copy with an skb (generic) program → AF_PACKET V3 → io_uring.
//!
//! What this module owns: the trait, the configuration, the enum and the
//! ladder, and every [`PacketIo`] implementation, one file each, each
//! built from the pieces of one I/O module below it:
//!
//! - `backend/xdp.rs`: [`XdpBackend`], the UMEM and socket of
//!   [`crate::xdp`] packaged as one owned value;
//! - `backend/packet.rs`: [`PacketBackend`] ([`PacketV2`], [`PacketV3`])
//!   over the socket and rings of [`crate::packet`];
//! - `backend/uring.rs`: [`UringBackend`] over the buffer ring and send
//!   pool of [`crate::uring`] and an AF_PACKET socket.
//!
//! Those modules know nothing of this one: the dependencies point down.

mod error;
mod packet;
mod uring;
mod xdp;

#[cfg(feature = "tokio")]
mod asyncio;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

pub use error::{BackendError, Operation, Skipped};
pub(crate) use xdp::Steering;
pub use xdp::XdpBackend;

#[cfg(feature = "tokio")]
pub use asyncio::AsyncBackend;

pub use packet::{PacketBackend, PacketV2, PacketV3, RxRing};
pub use uring::UringBackend;

pub use crate::packet::{Fanout, FanoutFlags, FanoutMode};
pub use crate::xdp::{AttachMode, BindMode, BusyPoll};

use crate::bpf::XdpMode;
use crate::xdp::XskError;

/// The batch API every backend implements. See the [module docs](self).
///
/// Every method is non-blocking except [`wait`](PacketIo::wait). Counts are
/// per call; running totals are in [`stats`](PacketIo::stats).
pub trait PacketIo {
    /// Receives up to `max` packets, showing each to `f` as a mutable slice
    /// of the receive buffer; the slot goes back to the kernel after `f`
    /// returns. Returns how many packets were received (0: none waiting).
    /// On AF_XDP with [`BackendConfig::multi_buffer`], a packet spread over
    /// several frames is copied into one slice first;
    /// [`rx_batch_segments`](PacketIo::rx_batch_segments) avoids the copy.
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] on a backend opened without RX; kernel
    /// errors (the interface vanished, …).
    fn rx_batch<F: FnMut(&mut [u8])>(&mut self, max: u32, f: F) -> Result<u32, BackendError>;

    /// Receives up to `max` packets like [`rx_batch`](PacketIo::rx_batch),
    /// showing each as its segments in order: one slice, except on AF_XDP
    /// with [`BackendConfig::multi_buffer`], where a packet larger than one
    /// UMEM frame is the frames it arrived in. The count is of packets, not
    /// segments, and no copy is made (`rx_batch` on a multi-buffer backend
    /// copies such a packet into one slice first).
    ///
    /// # Errors
    /// As [`rx_batch`](PacketIo::rx_batch).
    fn rx_batch_segments<F: FnMut(&mut [&mut [u8]])>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        self.rx_batch(max, |p| f(&mut [p]))
    }

    /// Sends up to `max` packets. For each free TX slot, `f` gets the slot's
    /// buffer (stale bytes: write the whole packet) and returns
    /// `Some(len)` to send its first `len` bytes, or `None` (or `Some(0)`)
    /// to end the batch. The batch is published and transmission started
    /// (one kick per batch). On AF_XDP with [`BackendConfig::multi_buffer`]
    /// the buffer is a scratch buffer of the largest frame the interface
    /// carries, copied into as many UMEM frames as the packet needs.
    /// Returns how many packets were queued; fewer
    /// than `max` when the TX ring is full (call again after
    /// [`flush`](PacketIo::flush)).
    ///
    /// # Errors
    /// [`BackendError::PacketTooLong`] if `len` exceeds the buffer (that
    /// packet is not sent); [`BackendError::Unsupported`] without TX.
    fn tx_batch<F: FnMut(&mut [u8]) -> Option<usize>>(
        &mut self,
        max: u32,
        f: F,
    ) -> Result<u32, BackendError>;

    /// Receives up to `max` packets and shows each to `f`, which may edit it
    /// in place: `true` sends it back out of the same interface, `false`
    /// drops it. Zero-copy on AF_XDP (the RX frame itself goes on the TX
    /// ring), one copy (RX slot → TX slot) on the others. Stops early,
    /// leaving packets in the RX ring, when no TX slot is free.
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] unless opened for both directions.
    fn forward_batch<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        f: F,
    ) -> Result<Forwarded, BackendError>;

    /// Kicks transmission of anything queued and reaps completed TX slots,
    /// so they can be reused. Call it when `tx_batch` returns less than
    /// asked, and before dropping a backend whose last packets must leave.
    fn flush(&mut self) -> Result<(), BackendError>;

    /// Blocks up to `timeout_ms` (-1: forever) until packets can be
    /// received. Returns whether something is ready (`false` on timeout or
    /// a signal).
    fn wait(&mut self, timeout_ms: i32) -> Result<bool, BackendError>;

    /// Running totals: our counters plus the kernel's (`XDP_STATISTICS`,
    /// `PACKET_STATISTICS`).
    fn stats(&self) -> Result<BackendStats, BackendError>;

    /// What was opened, in which mode, and why.
    fn describe(&self) -> &BackendInfo;
}

/// What one [`PacketIo::forward_batch`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Packets taken from RX (forwarded or dropped).
    pub rx: u32,
    /// Of those, packets queued for TX.
    pub tx: u32,
}

/// A backend, by name. [`Auto`](BackendKind::Auto) is only a request (the
/// ladder): an opened backend reports the kind it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Walk the ladder ([`Backend::auto`]).
    Auto,
    /// AF_XDP: zero-copy if the driver can, else copy; the XDP program in
    /// native mode if the driver can, else skb mode.
    Xdp,
    /// AF_XDP in copy mode with the program in skb (generic) mode: works on
    /// any interface.
    XdpSkb,
    /// AF_PACKET with a `TPACKET_V3` block ring.
    PacketV3,
    /// AF_PACKET with `TPACKET_V2` frame rings.
    PacketV2,
    /// io_uring on an AF_PACKET socket.
    Uring,
}

impl BackendKind {
    /// Every kind that names one backend (not `Auto`).
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Xdp,
        BackendKind::XdpSkb,
        BackendKind::PacketV3,
        BackendKind::PacketV2,
        BackendKind::Uring,
    ];

    /// The name the CLI uses (`--backend NAME`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Xdp => "xdp",
            BackendKind::XdpSkb => "xdp-skb",
            BackendKind::PacketV3 => "v3",
            BackendKind::PacketV2 => "v2",
            BackendKind::Uring => "uring",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => BackendKind::Auto,
            "xdp" => BackendKind::Xdp,
            "xdp-skb" => BackendKind::XdpSkb,
            "v3" => BackendKind::PacketV3,
            "v2" => BackendKind::PacketV2,
            "uring" => BackendKind::Uring,
            _ => {
                return Err(format!(
                    "unknown backend {s:?}: use auto, xdp, xdp-skb, v3, v2 or uring"
                ))
            }
        })
    }
}

/// A step of the [`Backend::auto`] ladder, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoStep {
    /// AF_XDP, zero-copy bind, program in driver mode.
    XdpZeroCopy,
    /// AF_XDP, copy bind, program in driver (native) mode.
    XdpCopyNative,
    /// AF_XDP, copy bind, program in skb (generic) mode.
    XdpCopySkb,
    /// AF_PACKET TPACKET_V3.
    PacketV3,
    /// io_uring on AF_PACKET.
    Uring,
}

impl AutoStep {
    /// The ladder, in order.
    pub const LADDER: [AutoStep; 5] = [
        AutoStep::XdpZeroCopy,
        AutoStep::XdpCopyNative,
        AutoStep::XdpCopySkb,
        AutoStep::PacketV3,
        AutoStep::Uring,
    ];

    /// The backend this step opens.
    pub fn kind(self) -> BackendKind {
        match self {
            AutoStep::XdpZeroCopy | AutoStep::XdpCopyNative => BackendKind::Xdp,
            AutoStep::XdpCopySkb => BackendKind::XdpSkb,
            AutoStep::PacketV3 => BackendKind::PacketV3,
            AutoStep::Uring => BackendKind::Uring,
        }
    }

    fn open(self, cfg: &BackendConfig) -> Result<Backend, BackendError> {
        match self {
            AutoStep::XdpZeroCopy => {
                XdpBackend::open_with(cfg, BindMode::RequireZeroCopy, AttachMode::Driver)
                    .map(Backend::Xdp)
            }
            AutoStep::XdpCopyNative => {
                XdpBackend::open_with(cfg, BindMode::Copy, AttachMode::Driver).map(Backend::Xdp)
            }
            AutoStep::XdpCopySkb => XdpBackend::open_with(cfg, BindMode::Copy, AttachMode::Skb)
                .map(|mut b| {
                    b.set_kind(BackendKind::XdpSkb);
                    Backend::Xdp(b)
                }),
            AutoStep::PacketV3 => PacketV3::open(cfg).map(Backend::PacketV3),
            AutoStep::Uring => UringBackend::open(cfg).map(Backend::Uring),
        }
    }
}

impl fmt::Display for AutoStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AutoStep::XdpZeroCopy => "AF_XDP zero-copy",
            AutoStep::XdpCopyNative => "AF_XDP copy (native XDP)",
            AutoStep::XdpCopySkb => "AF_XDP copy (skb XDP)",
            AutoStep::PacketV3 => "AF_PACKET TPACKET_V3",
            AutoStep::Uring => "io_uring on AF_PACKET",
        })
    }
}

/// Which directions a backend is opened for. A backend opened for one
/// direction sets nothing up for the other (no TX ring for `Rx`; for `Tx`
/// no RX ring, no XDP program and an AF_PACKET socket that receives nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Receive only.
    Rx,
    /// Transmit only.
    Tx,
    /// Both (needed for `forward_batch`).
    #[default]
    Both,
}

impl Direction {
    /// Whether receiving is set up.
    pub fn rx(self) -> bool {
        matches!(self, Direction::Rx | Direction::Both)
    }
    /// Whether transmitting is set up.
    pub fn tx(self) -> bool {
        matches!(self, Direction::Tx | Direction::Both)
    }
}

/// How to open a backend. Start from [`BackendConfig::new`]; a size of 0
/// means the backend's default (given per field).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackendConfig {
    /// Interface name.
    pub interface: String,
    /// AF_XDP: the queue to bind. AF_PACKET sees every queue (use
    /// [`fanout`](Self::fanout) with [`FanoutMode::QueueMapping`] to split).
    pub queue: u32,
    /// Directions to set up (default both).
    pub direction: Direction,
    /// Bytes per frame: the AF_XDP UMEM chunk (default 4096; 2048 or 4096),
    /// the TPACKET frame (default 2048; a multiple of 16), the io_uring
    /// receive and send buffer (default 2048).
    pub frame_size: u32,
    /// Frames: AF_XDP UMEM frames (default 4096; with both directions half
    /// go to the fill ring, half are kept for TX); TPACKET frames per ring
    /// (default 2048; rounded up to whole blocks); io_uring buffers per
    /// direction (default 1024; a power of two up to 32768 for RX).
    pub frame_count: u32,
    /// AF_XDP RX and TX ring entries (default 2048; a power of two).
    pub ring_size: u32,
    /// TPACKET_V3 RX block size in bytes (default 256 KiB; a multiple of the
    /// page size).
    pub block_size: u32,
    /// TPACKET_V3 RX blocks (default 64).
    pub block_count: u32,
    /// TPACKET_V3: ms after which the kernel hands over a block that is not
    /// full (default 10; 0 lets the kernel derive one from the link speed).
    pub retire_timeout_ms: u32,
    /// Batch size the caller will use (sizes the io_uring queues; default 64).
    pub batch: u32,
    /// Busy polling (`SO_BUSY_POLL`, `SO_PREFER_BUSY_POLL`,
    /// `SO_BUSY_POLL_BUDGET`; kernel 5.11); default off.
    pub busy_poll: Option<BusyPoll>,
    /// AF_PACKET fanout group to join (V2, V3, io_uring); AF_XDP refuses it.
    pub fanout: Option<Fanout>,
    /// AF_PACKET TX straight to the driver, skipping the qdisc
    /// (`PACKET_QDISC_BYPASS`); default off.
    pub qdisc_bypass: bool,
    /// AF_PACKET: do not see the host's own outgoing packets
    /// (`PACKET_IGNORE_OUTGOING`, kernel 4.20); default on.
    pub ignore_outgoing: bool,
    /// AF_XDP: `XDP_USE_NEED_WAKEUP` (default on).
    pub need_wakeup: bool,
    /// AF_XDP: zero-copy or copy (default `Auto`; [`BackendKind::XdpSkb`]
    /// forces copy).
    pub xdp_bind: BindMode,
    /// AF_XDP: program attach mode (default `Auto`; [`BackendKind::XdpSkb`]
    /// forces skb).
    pub xdp_attach: AttachMode,
    /// AF_XDP: `XDP_MAX_TX_SKB_BUDGET` (kernel 6.17); default the kernel's.
    pub tx_skb_budget: Option<u32>,
    /// AF_XDP multi-buffer (jumbo frames; kernel 6.6): bind with
    /// `XDP_USE_SG` and steer with a frags-aware program
    /// (`BPF_F_XDP_HAS_FRAGS`), so a frame larger than one UMEM frame
    /// arrives as several descriptors. The backend presents each such packet
    /// as one packet ([`PacketIo::rx_batch_segments`] shows its segments,
    /// [`PacketIo::rx_batch`] a copy of it in one slice). Default off.
    ///
    /// The AF_PACKET and io_uring backends refuse it
    /// ([`BackendError::Unsupported`] with [`Operation::MultiBuffer`]): a
    /// packet always lands whole in one of their slots, so size
    /// `frame_size` / `block_size` for the largest frame instead.
    pub multi_buffer: bool,
}

impl BackendConfig {
    /// Defaults for `interface`.
    pub fn new(interface: &str) -> BackendConfig {
        BackendConfig {
            interface: interface.to_string(),
            queue: 0,
            direction: Direction::Both,
            frame_size: 0,
            frame_count: 0,
            ring_size: 0,
            block_size: 0,
            block_count: 0,
            retire_timeout_ms: 10,
            batch: 64,
            busy_poll: None,
            fanout: None,
            qdisc_bypass: false,
            ignore_outgoing: true,
            need_wakeup: true,
            xdp_bind: BindMode::Auto,
            xdp_attach: AttachMode::Auto,
            tx_skb_budget: None,
            multi_buffer: false,
        }
    }

    /// `value`, or `default` when it is 0.
    pub(crate) fn or(value: u32, default: u32) -> u32 {
        if value == 0 {
            default
        } else {
            value
        }
    }

    /// The refusal of [`multi_buffer`](Self::multi_buffer) by a backend
    /// whose packets always land whole in one slot.
    pub(crate) fn refuse_multi_buffer(&self, backend: BackendKind) -> Result<(), BackendError> {
        if !self.multi_buffer {
            return Ok(());
        }
        Err(BackendError::Unsupported {
            backend,
            operation: Operation::MultiBuffer,
            why: Some(
                "multi-buffer is an AF_XDP option; AF_PACKET and io_uring put each packet whole \
                 in one slot: size frame_size (V2, io_uring) or block_size (V3) for the \
                 largest frame instead",
            ),
        })
    }

    /// Checks the fields every backend shares.
    pub(crate) fn check_common(&self) -> Result<(), BackendError> {
        if self.interface.is_empty() {
            return Err(BackendError::Config("no interface given".into()));
        }
        if self.batch == 0 {
            return Err(BackendError::Config("batch must be at least 1".into()));
        }
        if self.fanout.is_some() && !self.direction.rx() {
            return Err(BackendError::Config(
                "fanout spreads received packets: it needs a backend opened for RX".into(),
            ));
        }
        Ok(())
    }
}

/// Running totals of a backend. Counters a backend does not have stay 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendStats {
    /// Packets received (handed to `rx_batch`/`forward_batch` closures).
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Packets queued for sending (by `tx_batch` and `forward_batch`).
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Packets the kernel dropped for this socket: AF_XDP `rx_dropped +
    /// rx_ring_full`; AF_PACKET `tp_drops` (ring or receive queue full).
    pub kernel_drops: u64,
    /// AF_XDP: drops because the RX ring was full.
    pub rx_ring_full: u64,
    /// AF_XDP: times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// TPACKET_V3: times the block ring froze (every block with user space).
    pub freezes: u64,
    /// Descriptors or frames the kernel refused as invalid (AF_XDP RX/TX
    /// invalid descriptors, AF_PACKET TX frames with a wrong format),
    /// receive slots whose headers made no sense, and io_uring completions
    /// naming a buffer id or length out of range (never recycled).
    pub invalid: u64,
    /// Times `tx_batch`/`forward_batch` found no free TX slot.
    pub tx_ring_full: u64,
    /// TX slots handed to the kernel and not completed yet.
    pub tx_in_flight: u64,
    /// System calls made to start TX (`sendto`, `io_uring_enter`).
    pub tx_kicks: u64,
    /// TX kicks answered with a transient error (`EAGAIN`, `ENOBUFS`, …).
    pub tx_kick_busy: u64,
    /// Sends that completed with an error (io_uring).
    pub tx_errors: u64,
    /// System calls made to drive or wait for RX.
    pub rx_wakeups: u64,
    /// io_uring: times the multishot receive ran out of buffers and was
    /// re-armed.
    pub rx_rearms: u64,
}

/// The counters a backend keeps itself (the kernel's are read on demand).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) rx_packets: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_packets: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) invalid: u64,
    pub(crate) tx_ring_full: u64,
    pub(crate) tx_kicks: u64,
    pub(crate) tx_kick_busy: u64,
    pub(crate) tx_errors: u64,
    pub(crate) rx_wakeups: u64,
    pub(crate) rx_rearms: u64,
}

impl Counters {
    /// The counters as stats (kernel fields 0).
    pub(crate) fn stats(&self) -> BackendStats {
        BackendStats {
            rx_packets: self.rx_packets,
            rx_bytes: self.rx_bytes,
            tx_packets: self.tx_packets,
            tx_bytes: self.tx_bytes,
            invalid: self.invalid,
            tx_ring_full: self.tx_ring_full,
            tx_kicks: self.tx_kicks,
            tx_kick_busy: self.tx_kick_busy,
            tx_errors: self.tx_errors,
            rx_wakeups: self.rx_wakeups,
            rx_rearms: self.rx_rearms,
            ..BackendStats::default()
        }
    }
}

/// What a backend is: kind, interface, mode, rings, and why.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// The backend.
    pub kind: BackendKind,
    /// Interface name.
    pub interface: String,
    /// Interface index.
    pub ifindex: u32,
    /// AF_XDP: the queue bound.
    pub queue: Option<u32>,
    /// Directions set up.
    pub direction: Direction,
    /// Whether packets reach user space without a copy (AF_XDP zero-copy).
    pub zero_copy: bool,
    /// The mode in words ("zero-copy", "copy", "mmap ring", "recv/send").
    pub mode: String,
    /// AF_XDP: how the XDP program is attached (`None`: not by us).
    pub attach: Option<XdpMode>,
    /// Ring and buffer geometry in words.
    pub rings: String,
    /// Why the modes are what they are (fallbacks, refused options).
    pub reasons: Vec<String>,
    /// When opened by [`Backend::auto`]: each step skipped and why.
    pub skipped: Vec<(AutoStep, String)>,
}

impl fmt::Display for BackendInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.kind, self.interface)?;
        if let Some(q) = self.queue {
            write!(f, " queue {q}")?;
        }
        write!(f, ": {}", self.mode)?;
        if let Some(a) = self.attach {
            write!(f, ", XDP program in {a} mode")?;
        }
        let dir = match self.direction {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
            Direction::Both => "rx+tx",
        };
        write!(f, ", {dir}, {}", self.rings)?;
        for r in &self.reasons {
            write!(f, "; {r}")?;
        }
        Ok(())
    }
}

/// Any backend, by value: [`PacketIo`] dispatches with one `match` per
/// batch (static dispatch; no trait objects).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// AF_XDP ([`BackendKind::Xdp`] or [`BackendKind::XdpSkb`]).
    Xdp(XdpBackend),
    /// AF_PACKET TPACKET_V2.
    PacketV2(PacketV2),
    /// AF_PACKET TPACKET_V3.
    PacketV3(PacketV3),
    /// io_uring.
    Uring(UringBackend),
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Backend::Xdp($b) => $e,
            Backend::PacketV2($b) => $e,
            Backend::PacketV3($b) => $e,
            Backend::Uring($b) => $e,
        }
    };
}

impl Backend {
    /// Opens the backend `kind` on `cfg.interface`; [`BackendKind::Auto`]
    /// walks the ladder (the skipped steps are in
    /// [`BackendInfo::skipped`]).
    ///
    /// # Errors
    /// [`BackendError::NoInterface`] first of all; then the backend's own
    /// errors (see each backend), or [`BackendError::NoBackend`] when every
    /// step of the ladder failed.
    pub fn open(kind: BackendKind, cfg: &BackendConfig) -> Result<Backend, BackendError> {
        cfg.check_common()?;
        check_interface(&cfg.interface)?;
        match kind {
            BackendKind::Auto => Backend::auto(cfg).map(|(b, _)| b),
            BackendKind::Xdp => {
                XdpBackend::open_with(cfg, cfg.xdp_bind, cfg.xdp_attach).map(Backend::Xdp)
            }
            BackendKind::XdpSkb => AutoStep::XdpCopySkb.open(cfg),
            BackendKind::PacketV3 => PacketV3::open(cfg).map(Backend::PacketV3),
            BackendKind::PacketV2 => PacketV2::open(cfg).map(Backend::PacketV2),
            BackendKind::Uring => UringBackend::open(cfg).map(Backend::Uring),
        }
    }

    /// Opens the fastest backend this host and interface allow: AF_XDP
    /// zero-copy → AF_XDP copy with a native program → AF_XDP copy with an
    /// skb program → AF_PACKET V3 → io_uring. Returns it with every step
    /// skipped and why (also kept in [`BackendInfo::skipped`]).
    ///
    /// # Errors
    /// [`BackendError::NoInterface`] without trying anything;
    /// [`BackendError::NoBackend`] with every step's error when none opened.
    pub fn auto(cfg: &BackendConfig) -> Result<(Backend, Vec<Skipped>), BackendError> {
        cfg.check_common()?;
        check_interface(&cfg.interface)?;
        let mut skipped: Vec<Skipped> = Vec::new();
        for step in AutoStep::LADDER {
            match step.open(cfg) {
                Ok(mut b) => {
                    let notes = skipped.iter().map(|s| (s.step, s.to_string())).collect();
                    b.info_mut().skipped = notes;
                    return Ok((b, skipped));
                }
                // A mistake in the configuration (a ring size that is not a
                // power of two, a queue the device does not have) is the
                // user's to fix, not a reason to fall back to a slower path.
                Err(error) if error.is_configuration() => return Err(error),
                Err(error) => skipped.push(Skipped { step, error }),
            }
        }
        Err(BackendError::NoBackend {
            ifname: cfg.interface.clone(),
            skipped,
        })
    }

    /// The backend's kind.
    pub fn kind(&self) -> BackendKind {
        self.describe().kind
    }

    /// Whether the backend can go on: the interface still exists under the
    /// same index and, for AF_XDP, the steering program this backend
    /// attached is still attached (another process can detach a `bpf_link`
    /// with `BPF_LINK_DETACH`). Meant to be called about once a second.
    ///
    /// # Errors
    /// [`BackendError::Xsk`] with [`XskError::InterfaceGone`] when the
    /// interface vanished; [`BackendError::Unsupported`] naming the cause when
    /// the program was detached behind our back.
    pub fn health(&self) -> Result<(), BackendError> {
        let info = self.describe();
        if crate::sys::xdp::if_indextoname(info.ifindex).is_err() {
            return Err(BackendError::Xsk(XskError::InterfaceGone {
                ifname: info.interface.clone(),
                ifindex: info.ifindex,
            }));
        }
        if let Backend::Xdp(x) = self {
            if let Some(why) = x.program_detached() {
                return Err(BackendError::Unsupported {
                    backend: info.kind,
                    operation: Operation::Receive,
                    why: Some(why),
                });
            }
        }
        Ok(())
    }

    /// Where the UMEM's frames are, for AF_XDP (`None` for the others, whose
    /// buffers belong to the kernel's rings).
    pub fn accounting(&self) -> Option<crate::xdp::Accounting> {
        match self {
            Backend::Xdp(x) => Some(x.accounting()),
            _ => None,
        }
    }

    /// AF_XDP: checks the per-frame states against the counters (see
    /// [`Umem::check_accounting`](crate::xdp::Umem::check_accounting));
    /// `Ok(None)` for the other backends.
    ///
    /// # Errors
    /// A description of the inconsistency.
    pub fn check_accounting(&self) -> Result<Option<crate::xdp::Accounting>, String> {
        match self {
            Backend::Xdp(x) => x.check_accounting().map(Some),
            _ => Ok(None),
        }
    }

    fn info_mut(&mut self) -> &mut BackendInfo {
        dispatch!(self, b => b.info_mut())
    }
}

/// `if_nametoindex`, as a [`BackendError::NoInterface`].
pub(crate) fn check_interface(ifname: &str) -> Result<u32, BackendError> {
    crate::sys::xdp::if_nametoindex(ifname).map_err(|source| BackendError::NoInterface {
        ifname: ifname.to_string(),
        source,
    })
}

impl PacketIo for Backend {
    #[inline]
    fn rx_batch<F: FnMut(&mut [u8])>(&mut self, max: u32, f: F) -> Result<u32, BackendError> {
        dispatch!(self, b => b.rx_batch(max, f))
    }
    #[inline]
    fn rx_batch_segments<F: FnMut(&mut [&mut [u8]])>(
        &mut self,
        max: u32,
        f: F,
    ) -> Result<u32, BackendError> {
        dispatch!(self, b => b.rx_batch_segments(max, f))
    }
    #[inline]
    fn tx_batch<F: FnMut(&mut [u8]) -> Option<usize>>(
        &mut self,
        max: u32,
        f: F,
    ) -> Result<u32, BackendError> {
        dispatch!(self, b => b.tx_batch(max, f))
    }
    #[inline]
    fn forward_batch<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        f: F,
    ) -> Result<Forwarded, BackendError> {
        dispatch!(self, b => b.forward_batch(max, f))
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        dispatch!(self, b => b.flush())
    }
    fn wait(&mut self, timeout_ms: i32) -> Result<bool, BackendError> {
        dispatch!(self, b => b.wait(timeout_ms))
    }
    fn stats(&self) -> Result<BackendStats, BackendError> {
        dispatch!(self, b => b.stats())
    }
    fn describe(&self) -> &BackendInfo {
        dispatch!(self, b => b.describe())
    }
}

impl AsFd for Backend {
    /// The descriptor to poll for readability (the socket; for io_uring the
    /// ring).
    fn as_fd(&self) -> BorrowedFd<'_> {
        dispatch!(self, b => b.as_fd())
    }
}

impl AsRawFd for Backend {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused before any socket exists: no privilege needed.
    #[test]
    fn a_queue_other_than_zero_is_refused_by_every_af_packet_backend() {
        let mut cfg = BackendConfig::new("pktio-noif0");
        cfg.queue = 3;
        let errs = [
            PacketV2::open(&cfg).unwrap_err(),
            PacketV3::open(&cfg).unwrap_err(),
            UringBackend::open(&cfg).unwrap_err(),
        ];
        for e in errs {
            let m = e.to_string();
            assert!(e.is_configuration(), "{m}");
            assert!(m.contains("cannot bind queue 3"), "{m}");
            assert!(m.contains("use AF_XDP"), "{m}");
        }
    }

    /// Every backend can be opened on one thread and run on another.
    #[test]
    fn backends_are_send() {
        fn send<T: Send>() {}
        send::<Backend>();
        send::<XdpBackend>();
        send::<PacketV2>();
        send::<PacketV3>();
        send::<UringBackend>();
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in BackendKind::ALL.into_iter().chain([BackendKind::Auto]) {
            assert_eq!(k.name().parse::<BackendKind>(), Ok(k));
        }
        assert!("dpdk"
            .parse::<BackendKind>()
            .unwrap_err()
            .contains("xdp-skb"));
    }

    #[test]
    fn the_ladder_goes_from_fastest_to_most_portable() {
        let kinds: Vec<_> = AutoStep::LADDER.iter().map(|s| s.kind()).collect();
        assert_eq!(
            kinds,
            [
                BackendKind::Xdp,
                BackendKind::Xdp,
                BackendKind::XdpSkb,
                BackendKind::PacketV3,
                BackendKind::Uring
            ]
        );
    }

    #[test]
    fn an_unknown_interface_is_reported_before_any_step() {
        let cfg = BackendConfig::new("pktio-nonexistent9");
        for k in BackendKind::ALL.into_iter().chain([BackendKind::Auto]) {
            match Backend::open(k, &cfg) {
                Err(BackendError::NoInterface { ifname, .. }) => {
                    assert_eq!(ifname, "pktio-nonexistent9")
                }
                r => panic!("{k}: expected NoInterface, got {:?}", r.map(|b| b.kind())),
            }
        }
        let e = Backend::auto(&cfg).map(|_| ()).unwrap_err();
        assert!(e.hint().is_some_and(|h| h.contains("ip link")));
    }

    #[test]
    fn common_config_errors_are_named() {
        let mut cfg = BackendConfig::new("lo");
        cfg.direction = Direction::Tx;
        cfg.fanout = Some(Fanout::new(1, FanoutMode::Hash));
        let e = cfg.check_common().unwrap_err();
        assert!(e.to_string().contains("fanout"), "{e}");
    }
}
