//! AF_XDP: the UMEM and its frames, the four typed rings, and the socket.
//!
//! ```no_run
//! use pktio::xdp::{Umem, UmemConfig, XskSocket};
//! # fn main() -> Result<(), pktio::xdp::XskError> {
//! let umem = Umem::new(UmemConfig::default())?;
//! let mut sock = XskSocket::builder("eth0").queue(0).build(&umem)?;
//! println!("{}", sock.info()); // which mode was bound, and why
//! sock.fill_from_pool(u32::MAX)?;
//! loop {
//!     let parts = sock.parts();
//!     let rx = parts.rx.expect("rx ring");
//!     let fill = parts.fill.expect("fill ring");
//!     let mut frames: Vec<_> = rx.receive(64).collect();
//!     // ... look at frame.data() ...
//!     fill.fill_from(&mut frames);
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! What this module owns: the UMEM area and frame ownership ([`umem`]; a
//! [`SharedUmem`] for several threads, each on a view, with a frame pool
//! they share), the
//! ring fronts ([`rings`]), socket set-up with its mode fallbacks, wakeups and
//! statistics ([`socket`]), and the XSK steering program's lifecycle
//! ([`steer`], built on [`crate::bpf`]). Beyond the basics: packets larger
//! than a frame ([`multibuf`]: `XDP_USE_SG`, [`Packet`],
//! [`RxRing::receive_packets`], [`TxBatch::push_packet`]) and per-packet
//! metadata ([`metadata`]: the driver's RX hash and timestamp, TX checksum
//! offload and completion timestamps). Raw kernel calls live in `sys`.
//!
//! # Sharing an interface with other XDP programs
//!
//! An interface runs one XDP program per mode. When another one is already
//! attached, [`XskProgram::attach`] (and a socket build that attaches its
//! own program) fails with [`BpfError::Busy`](crate::bpf::BpfError::Busy),
//! whose message names the program there — its name, id and mode, as
//! `ip link show` would — and says what to do; nothing on the interface
//! changes. [`bpf::attached_programs`](crate::bpf::attached_programs) asks the
//! same question directly.
//!
//! **libxdp's multi-program dispatcher** (xdp-tools, and the daemons built on
//! libxdp) is recognised by its name, `xdp_dispatcher`; the error says so and
//! lists its components where libxdp pinned them. pktio does **not** join the
//! dispatcher: its components must be `freplace` programs carrying BTF and
//! loaded against the dispatcher's own BTF, and pktio generates its programs
//! without BTF, so it refuses rather than replace a program others depend
//! on. What works instead:
//!
//! - Your own program steers into pktio's sockets. Load an XDP program of
//!   yours with an XSKMAP (with aya, libbpf, or as a libxdp component:
//!   `xdp-loader load --pin-path DIR IFNAME prog.o`), and build pktio's
//!   sockets with [`AttachMode::None`]: either insert [`XskSocket::fd`] into
//!   your map yourself, or pin the map and give it to the builder
//!   ([`XskMap::from_pinned`](crate::bpf::XskMap::from_pinned),
//!   [`XskSocketBuilder::xsk_map`]), which puts the socket into slot
//!   `queue` once it is bound.
//! - Remove the other program: `xdp-loader unload IFNAME --all` for the
//!   dispatcher, `ip link set dev IFNAME xdp off` (`xdpgeneric off` in skb
//!   mode) for a program attached through netlink. A program attached
//!   through a `bpf_link` (as pktio's are) goes only when its owner closes
//!   the link or exits.
//! - Use a backend without XDP (AF_PACKET, [`crate::backend`]).
//!
//! ## Bring your own program: an aya example
//!
//! An XDP program of yours (here built with aya-ebpf, redirecting by receive
//! queue into `XSKS`, passing what has no socket), its user-space side with
//! aya, and pktio's socket in the map:
//!
//! ```ignore
//! use std::os::fd::AsRawFd;
//! use aya::maps::XskMap as AyaXskMap;
//! use aya::programs::{Xdp, XdpFlags};
//! use pktio::xdp::{AttachMode, Umem, UmemConfig, XskSocket};
//!
//! let mut ebpf = aya::Ebpf::load(include_bytes!("my_xdp.o"))?;
//! let prog: &mut Xdp = ebpf.program_mut("my_xdp").unwrap().try_into()?;
//! prog.load()?;
//! prog.attach("eth0", XdpFlags::default())?;
//!
//! let umem = Umem::new(UmemConfig::default())?;
//! let mut sock = XskSocket::builder("eth0")
//!     .queue(0)
//!     .attach_mode(AttachMode::None) // pktio attaches nothing
//!     .build(&umem)?;
//! sock.fill_from_pool(u32::MAX)?;
//! let mut xsks = AyaXskMap::try_from(ebpf.map_mut("XSKS").unwrap())?;
//! xsks.set(0, sock.fd().as_raw_fd(), 0)?; // queue 0 -> this socket
//! // ... receive on `sock`; keep `ebpf` alive while steering ...
//! ```
//!
//! If the map is pinned instead (another process owns the program), open it
//! with [`XskMap::from_pinned`](crate::bpf::XskMap::from_pinned) and pass it
//! to [`XskSocketBuilder::xsk_map`].
//!
//! # Handing AF_XDP to an unprivileged worker
//!
//! A privileged helper can create the sockets and attach the program, then
//! pass the sockets over a Unix socket to a worker without capabilities,
//! which registers its UMEM on them ([`Umem::with_socket`]), binds, and puts
//! them into the helper's pinned XSKMAP: see [`handoff`], and
//! `examples/xsk_handoff.rs` for both sides.

pub mod handoff;
pub mod metadata;
mod mode;
pub mod multibuf;
mod pool;
pub mod rings;
pub mod socket;
pub mod steer;
pub mod umem;

pub use metadata::{
    ChecksumRequest, DeviceXdpFeatures, MetaValue, RssHashType, RxMetaSupport, RxMetadata, Support,
    TxMetaPushError, TxMetadataMode, TxMetadataSupport, TxRequest,
};
pub use mode::{AttachMode, BindMode, BoundMode, BusyPoll};
pub use multibuf::{segments_for, Packet, PacketBatch};
pub use pool::PoolAccounting;
pub use rings::{
    CompletionBatch, CompletionRing, FillBatch, FillRing, RxBatch, RxRing, TxBatch, TxRing,
};
pub use socket::{KickCounters, Parts, SocketInfo, XskSocket, XskSocketBuilder, XskStats};
pub use steer::{SteerOptions, XskProgram};
pub use umem::{Accounting, Frame, SharedUmem, Umem, UmemConfig, XDP_PACKET_HEADROOM};

use crate::error::SysError;

/// What can go wrong setting up or running an AF_XDP socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XskError {
    /// A setting is out of range; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The AF_XDP socket could not be created.
    #[error("cannot create an AF_XDP socket")]
    Socket(#[source] SysError),
    /// Huge pages were asked for but none could be mapped.
    #[error(
        "no huge pages for a {bytes}-byte UMEM: reserve some \
         (`echo 64 > /proc/sys/vm/nr_hugepages`) or drop the hugepages option"
    )]
    NoHugepages {
        /// UMEM size.
        bytes: usize,
        /// The failed mmap.
        #[source]
        source: SysError,
    },
    /// Mapping or registering the UMEM failed (often RLIMIT_MEMLOCK).
    #[error("cannot register a {bytes}-byte UMEM")]
    UmemReg {
        /// UMEM size.
        bytes: usize,
        /// The failed call.
        #[source]
        source: SysError,
    },
    /// The interface does not exist in this network namespace.
    #[error("interface {ifname:?} not found")]
    NoInterface {
        /// The name given.
        ifname: String,
        /// The failed lookup.
        #[source]
        source: SysError,
    },
    /// The interface disappeared while the socket was in use.
    #[error("interface {ifname:?} (index {ifindex}) vanished")]
    InterfaceGone {
        /// Its name when the socket was built.
        ifname: String,
        /// Its index.
        ifindex: u32,
    },
    /// The queue id is not below the device's queue count.
    #[error(
        "queue {queue} does not exist on {ifname}: it has {queues} queue(s), {}",
        valid_queues(*queues)
    )]
    NoSuchQueue {
        /// Interface.
        ifname: String,
        /// The queue asked for.
        queue: u32,
        /// How many the device has.
        queues: u32,
    },
    /// `BindMode::RequireZeroCopy` and the driver cannot do it.
    #[error("zero-copy refused on {ifname} queue {queue} (driver {driver}): {reason}")]
    ZeroCopyUnsupported {
        /// Interface.
        ifname: String,
        /// Queue.
        queue: u32,
        /// Driver name.
        driver: String,
        /// Why, in words.
        reason: String,
        /// The kernel's answer.
        #[source]
        source: SysError,
    },
    /// A socket call failed.
    #[error("{op} on {ifname} queue {queue} failed")]
    Sys {
        /// What we were doing.
        op: &'static str,
        /// Interface.
        ifname: String,
        /// Queue.
        queue: u32,
        /// The failed call.
        #[source]
        source: SysError,
    },
    /// The kernel or the driver lacks a feature that was asked for.
    #[error("{feature} is not supported: {reason}")]
    Unsupported {
        /// What was asked for.
        feature: &'static str,
        /// Why not, and what to change.
        reason: String,
    },
    /// The interface's MTU needs more than the UMEM frames and the
    /// kernel's segment limit can carry; the message says which setting to
    /// change.
    #[error("{0}")]
    FrameTooLarge(String),
    /// Handing sockets over a Unix socket failed ([`handoff`]).
    #[error("AF_XDP hand-off")]
    Handoff(#[source] handoff::HandoffError),
    /// Loading or attaching the steering program failed.
    #[error("steering program on {ifname}")]
    Bpf {
        /// Interface.
        ifname: String,
        /// The BPF error.
        #[source]
        source: crate::bpf::BpfError,
    },
}

impl XskError {
    /// Advice for a person, when there is a well-known cause.
    pub fn hint(&self) -> Option<&'static str> {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = src {
            if let Some(s) = e.downcast_ref::<SysError>() {
                return s.hint();
            }
            src = e.source();
        }
        None
    }
}

/// Which queue numbers `queues` queues allow, in words: "use queue 0", or
/// "use 0 to 3" (not Rust's exclusive `0..4`, which reads as "0 or 1" for
/// a one-queue device's `0..1`).
pub(crate) fn valid_queues(queues: u32) -> String {
    match queues {
        0 => "and none can be bound".to_string(),
        1 => "use queue 0".to_string(),
        n => format!("use 0 to {}", n - 1),
    }
}

#[cfg(test)]
mod queue_words_tests {
    use super::valid_queues;

    #[test]
    fn the_valid_queues_are_said_in_words() {
        // "use 0..1" read as "0 or 1" on a one-queue device.
        assert_eq!(valid_queues(1), "use queue 0");
        assert_eq!(valid_queues(4), "use 0 to 3");
        assert_eq!(valid_queues(0), "and none can be bound");
    }
}
