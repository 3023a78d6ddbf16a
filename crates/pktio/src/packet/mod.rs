//! AF_PACKET: the socket ([`PacketSocket`]), the mmap'd `TPACKET_V2` frame
//! rings and `TPACKET_V3` block ring ([`ring`]), the V3 block walker
//! ([`block`], pure), ring geometry checks ([`geometry`], pure), fanout
//! ([`Fanout`]). The two backends built from them,
//! [`PacketV2`](crate::backend::PacketV2) and
//! [`PacketV3`](crate::backend::PacketV3), live in [`crate::backend`]:
//!
//! ```text
//!              RX                          TX
//! PacketV2     FrameRing<V2>               FrameRing<V2>      one socket, one mapping
//! PacketV3     BlockRing (tpacket3_hdr)    FrameRing<V3>      (kernel >= 4.11)
//!                                          FrameRing<V2>      on a second socket otherwise
//! ```
//!
//! V2 and V3 differ in their frame header layout ([`header::FrameHeader`]):
//! the frame ring, the header parser and the backend are each written once,
//! generic over it. The one real difference — V3's RX ring is a ring of
//! variable-sized packets in blocks — is [`ring::BlockRing`], and both RX
//! rings answer the same `receive(max, f)` call, so
//! [`PacketBackend`](crate::backend::PacketBackend) implements
//! [`PacketIo`](crate::backend::PacketIo) once for both.
//!
//! Raw kernel ABI (structs, socket options) lives in `sys::packet`; the
//! only unsafe code of this module is in [`ring`].

pub mod block;
mod fanout;
pub mod geometry;
pub mod header;
pub mod ring;
mod socket;

pub use fanout::{Fanout, FanoutFlags, FanoutMode};
pub use geometry::RingRole;
pub use socket::{KernelStats, PacketSocket, ANY_INTERFACE};

use crate::error::SysError;

/// The MTU of `ifname` in the calling thread's network namespace
/// (`ioctl(SIOCGIFMTU)`): an AF_PACKET or AF_XDP frame sent on it may be
/// at most this plus its 14-byte Ethernet header (plus 4 for a VLAN tag).
///
/// # Errors
/// The ioctl's errno (`ENODEV`: no such interface).
pub fn interface_mtu(ifname: &str) -> Result<u32, SysError> {
    crate::sys::xdp::mtu(ifname)
}

/// What can go wrong with an AF_PACKET socket or its rings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// `socket(AF_PACKET)` failed (most often: no `CAP_NET_RAW`).
    #[error("cannot create an AF_PACKET socket")]
    Socket(#[source] SysError),
    /// The interface does not exist in this network namespace.
    #[error("interface {ifname:?} not found")]
    NoInterface {
        /// The name given.
        ifname: String,
        /// The failed lookup.
        #[source]
        source: SysError,
    },
    /// A ring's geometry is one the kernel refuses; `problem` says which
    /// rule it breaks and what to use instead.
    #[error("{ring} ring geometry refused: {problem}")]
    Geometry {
        /// Which ring.
        ring: RingRole,
        /// The rule broken, in words.
        problem: String,
        /// The kernel's answer, when it was the kernel that refused.
        #[source]
        source: Option<SysError>,
    },
    /// Joining a fanout group failed: the group exists with another mode,
    /// flags or interface (`EINVAL`), is full (`ENOSPC`), or the socket is
    /// already in one (`EALREADY`).
    #[error("cannot join fanout {fanout} on {ifname}: {reason}")]
    FanoutClash {
        /// The group asked for.
        fanout: Fanout,
        /// Interface.
        ifname: String,
        /// The kernel's reason, in words.
        reason: &'static str,
        /// The kernel's answer.
        #[source]
        source: SysError,
    },
    /// A socket call failed.
    #[error("{op} on {ifname} failed")]
    Sys {
        /// What we were doing.
        op: &'static str,
        /// Interface.
        ifname: String,
        /// The failed call.
        #[source]
        source: SysError,
    },
    /// The interface disappeared while the socket was in use.
    #[error("interface {ifname:?} (index {ifindex}) vanished")]
    InterfaceGone {
        /// Its name when the socket was opened.
        ifname: String,
        /// Its index.
        ifindex: u32,
    },
}

impl PacketError {
    /// Advice for a person, when there is a well-known cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PacketError::Geometry { .. } => Some(
                "TPACKET rings: block size a multiple of the page size, frame size a multiple \
                 of 16 and at least the header, whole frames per block",
            ),
            PacketError::FanoutClash { .. } => Some(
                "every member of a fanout group must use the same mode, flags and interface: \
                 use another group id, or the same mode and flags",
            ),
            PacketError::InterfaceGone { .. } => {
                Some("the interface was deleted or moved: open the backend again")
            }
            PacketError::Socket(e)
            | PacketError::NoInterface { source: e, .. }
            | PacketError::Sys { source: e, .. } => match e.errno() {
                Some(libc::EPERM | libc::EACCES) => Some(
                    "AF_PACKET needs CAP_NET_RAW (and CAP_NET_ADMIN for qdisc bypass): run as \
                     root or grant them to the binary (setcap)",
                ),
                Some(libc::ENOMEM | libc::ENOBUFS) => Some(
                    "the kernel could not allocate the ring: use fewer or smaller blocks/frames",
                ),
                Some(libc::ENODEV | libc::ENXIO) => crate::error::hint("", libc::ENODEV),
                Some(_) => None,
                None => None,
            },
        }
    }
}
