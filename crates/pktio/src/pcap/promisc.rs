//! Promiscuous mode for the length of a capture, as libpcap sets it: a
//! packet-socket membership (`PACKET_MR_PROMISC`), not the interface flag.
//!
//! The kernel counts the holders of promiscuous mode (`dev->promiscuity`,
//! `IFLA_PROMISCUITY`) and drops a packet socket's membership when the
//! socket is closed (`packet_release` → `packet_flush_mclist` in
//! `net/packet/af_packet.c`). So the interface returns to its previous
//! state however the capture ends — normal exit, a signal, `SIGKILL` — and
//! another holder (a second capture, `ip link set IF promisc on`) is never
//! undone by this one.

use super::live::{interface_up, CaptureError};
use crate::backend::BackendError;
use crate::packet::PacketSocket;

/// Holds an interface in promiscuous mode until dropped.
#[derive(Debug)]
pub struct Promiscuous {
    // An unbound AF_PACKET socket (protocol 0): it receives nothing; it
    // only carries the membership.
    sock: PacketSocket,
}

impl Promiscuous {
    /// Puts `ifname` in promiscuous mode (`socket(AF_PACKET, SOCK_RAW, 0)`,
    /// `setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)`). Needs
    /// `CAP_NET_RAW`.
    ///
    /// # Errors
    /// [`CaptureError::NoInterface`], [`CaptureError::InterfaceDown`],
    /// [`CaptureError::Backend`] when the socket or the membership is
    /// refused (privilege).
    pub fn enable(ifname: &str) -> Result<Promiscuous, CaptureError> {
        interface_up(ifname)?;
        let sock = PacketSocket::open(ifname).map_err(BackendError::from)?;
        sock.set_promiscuous().map_err(BackendError::from)?;
        Ok(Promiscuous { sock })
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        self.sock.ifname()
    }
}
