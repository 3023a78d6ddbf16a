//! The modes an AF_XDP socket is set up with and bound in: how to bind
//! ([`BindMode`]), what was obtained ([`BoundMode`]), how the steering
//! program attaches ([`AttachMode`]) and busy polling ([`BusyPoll`]).
//!
//! Plain values, imported by the socket, the steering program and the
//! metadata answers alike, so none of those needs another to name a mode.

use std::fmt;

/// How to bind: zero-copy or copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy where the driver allows it, copy otherwise (reported).
    #[default]
    Auto,
    /// Zero-copy or fail with [`XskError::ZeroCopyUnsupported`](super::XskError::ZeroCopyUnsupported).
    RequireZeroCopy,
    /// Copy mode.
    Copy,
}

/// The mode a socket was bound in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundMode {
    /// The NIC DMAs into the UMEM.
    ZeroCopy,
    /// The kernel copies between its buffers and the UMEM.
    Copy,
}

impl fmt::Display for BoundMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoundMode::ZeroCopy => "zero-copy",
            BoundMode::Copy => "copy",
        })
    }
}

/// How to attach the steering program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Driver (native) mode where supported, skb (generic) mode otherwise.
    #[default]
    Auto,
    /// Driver (native) XDP only.
    Driver,
    /// Generic (skb) XDP.
    Skb,
    /// Attach nothing: the caller steers packets itself (its own program,
    /// whose XSKMAP it fills, or gives to
    /// [`XskSocketBuilder::xsk_map`](super::XskSocketBuilder::xsk_map); or
    /// a shared [`XskProgram`](super::XskProgram) given with
    /// [`XskSocketBuilder::program`](super::XskSocketBuilder::program)).
    /// See "Sharing an interface with other XDP programs" in
    /// [`crate::xdp`].
    None,
}

/// Busy-poll settings (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
/// `SO_BUSY_POLL_BUDGET`; kernel 5.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// Microseconds to busy-poll per call.
    pub usecs: u32,
    /// Packets per busy-poll call.
    pub budget: u32,
}

impl Default for BusyPoll {
    fn default() -> Self {
        BusyPoll {
            usecs: 20,
            budget: 64,
        }
    }
}
