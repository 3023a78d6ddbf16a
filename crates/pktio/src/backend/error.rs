//! [`BackendError`]: what can go wrong opening or running any backend.

use std::fmt;

use super::{AutoStep, BackendKind};
use crate::error::SysError;
use crate::packet::PacketError;
use crate::uring::UringError;
use crate::xdp::XskError;

/// A batch operation (or an option) a backend may not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// [`PacketIo::rx_batch`](super::PacketIo::rx_batch).
    Receive,
    /// [`PacketIo::tx_batch`](super::PacketIo::tx_batch).
    Transmit,
    /// [`PacketIo::forward_batch`](super::PacketIo::forward_batch).
    Forward,
    /// `PACKET_FANOUT` ([`BackendConfig::fanout`](super::BackendConfig::fanout)).
    Fanout,
    /// `PACKET_QDISC_BYPASS` ([`BackendConfig::qdisc_bypass`](super::BackendConfig::qdisc_bypass)).
    QdiscBypass,
    /// AF_XDP multi-buffer ([`BackendConfig::multi_buffer`](super::BackendConfig::multi_buffer)).
    MultiBuffer,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Receive => "receive",
            Operation::Transmit => "transmit",
            Operation::Forward => "forward",
            Operation::Fanout => "fanout",
            Operation::QdiscBypass => "qdisc bypass",
            Operation::MultiBuffer => "multi-buffer",
        })
    }
}

/// A step of the [`Backend::auto`](super::Backend::auto) ladder that was
/// tried and skipped, with the error that made it skip.
#[derive(Debug)]
pub struct Skipped {
    /// The step.
    pub step: AutoStep,
    /// Why it was skipped.
    pub error: BackendError,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, chain(&self.error))?;
        if let Some(h) = self.error.hint() {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// An error and its sources on one line ("a: b: c").
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// What can go wrong opening or running a backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The interface does not exist in this network namespace.
    #[error("interface {ifname:?} not found")]
    NoInterface {
        /// The name given.
        ifname: String,
        /// The failed lookup.
        #[source]
        source: SysError,
    },
    /// A setting is out of range or contradicts another; the message says which.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The backend cannot do this (or was opened without the direction it needs).
    #[error("the {backend} backend cannot {operation}{}", why.map(|w| format!(": {w}")).unwrap_or_default())]
    Unsupported {
        /// The backend.
        backend: BackendKind,
        /// What was asked.
        operation: Operation,
        /// Why, when it is a matter of configuration rather than of the backend.
        why: Option<&'static str>,
    },
    /// A packet handed to `tx_batch` does not fit its slot.
    #[error("a {len}-byte packet does not fit in a {capacity}-byte TX slot")]
    PacketTooLong {
        /// The length given.
        len: usize,
        /// What the slot holds.
        capacity: usize,
    },
    /// AF_XDP.
    #[error(transparent)]
    Xsk(#[from] XskError),
    /// AF_PACKET (TPACKET_V2/V3).
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// io_uring.
    #[error(transparent)]
    Uring(#[from] UringError),
    /// The async runtime's reactor failed (registering or polling the descriptor).
    #[error("the async runtime failed to poll the backend's descriptor")]
    Async(#[source] std::io::Error),
    /// Every step of the auto ladder failed.
    #[error("no backend could be opened on {ifname}:{}", skipped.iter().map(|s| format!("\n  {s}")).collect::<String>())]
    NoBackend {
        /// The interface.
        ifname: String,
        /// Each step and why it failed.
        skipped: Vec<Skipped>,
    },
}

impl BackendError {
    /// Whether this is a mistake in the configuration the user gave (which
    /// every backend would refuse the same way), rather than something this
    /// backend cannot do on this host. [`Backend::auto`](super::Backend::auto)
    /// stops on these instead of falling back.
    pub fn is_configuration(&self) -> bool {
        use crate::xdp::XskError;
        matches!(
            self,
            BackendError::Config(_)
                | BackendError::NoInterface { .. }
                | BackendError::Xsk(
                    XskError::Config(_)
                        | XskError::NoSuchQueue { .. }
                        | XskError::NoInterface { .. }
                )
        )
    }

    /// Advice for a person, when there is a well-known cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            BackendError::NoInterface { .. } => {
                Some("check the name with `ip link` (in the right network namespace)")
            }
            BackendError::Unsupported {
                operation: Operation::Fanout,
                ..
            } => Some("fanout is an AF_PACKET feature: use --backend v2, v3 or uring"),
            BackendError::Unsupported {
                operation: Operation::MultiBuffer,
                ..
            } => Some("multi-buffer is an AF_XDP feature: use --backend xdp or xdp-skb"),
            BackendError::Unsupported { .. } => {
                Some("open the backend for both directions, or pick one that can do this")
            }
            BackendError::Xsk(e) => e.hint(),
            BackendError::Packet(e) => e.hint(),
            BackendError::Uring(e) => e.hint(),
            BackendError::NoBackend { skipped, .. } => skipped.iter().find_map(|s| s.error.hint()),
            BackendError::Config(_)
            | BackendError::PacketTooLong { .. }
            | BackendError::Async(_) => None,
        }
    }

    /// The errno at the bottom of the error, if a kernel call failed.
    pub fn errno(&self) -> Option<i32> {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = src {
            if let Some(s) = e.downcast_ref::<SysError>() {
                return s.errno();
            }
            src = e.source();
        }
        None
    }
}
