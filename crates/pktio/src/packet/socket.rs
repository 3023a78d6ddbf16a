//! [`PacketSocket`]: an AF_PACKET socket on one interface, with the options
//! the backends use (version, rings, bind, fanout, qdisc bypass, ignore
//! outgoing, busy poll, statistics, TX kick, poll).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::fanout::Fanout;
use super::geometry::{RingRole, KERNEL_RULES};
use super::ring::{self, Installed};
use super::PacketError;
use crate::error::SysError;
use crate::sys;
use crate::sys::packet::{RingReq, Version};
use crate::xdp::BusyPoll;

/// `PACKET_STATISTICS` counters since the previous read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets the socket saw, the dropped ones included.
    pub packets: u64,
    /// Packets dropped because the ring (or the receive queue) was full.
    pub drops: u64,
    /// TPACKET_V3: times the block ring froze.
    pub freezes: u64,
}

/// The interface name that stands for every interface (as in libpcap):
/// a socket opened on it is bound to interface index 0.
pub const ANY_INTERFACE: &str = "any";

/// An AF_PACKET (`SOCK_RAW`) socket for one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifname: String,
    ifindex: u32,
}

impl PacketSocket {
    /// `if_nametoindex(ifname)`, then `socket(AF_PACKET, SOCK_RAW, 0)`: the
    /// socket receives nothing until [`bind`](Self::bind).
    ///
    /// # Errors
    /// [`PacketError::NoInterface`]; [`PacketError::Socket`] (`EPERM`
    /// without `CAP_NET_RAW`).
    ///
    /// `any` ([`ANY_INTERFACE`]) is libpcap's device for every interface:
    /// the socket is bound to interface index 0 and receives the packets of
    /// every interface of the namespace.
    pub fn open(ifname: &str) -> Result<PacketSocket, PacketError> {
        let ifindex = if ifname == ANY_INTERFACE {
            0
        } else {
            sys::xdp::if_nametoindex(ifname).map_err(|source| PacketError::NoInterface {
                ifname: ifname.to_string(),
                source,
            })?
        };
        let fd = sys::packet::socket().map_err(PacketError::Socket)?;
        Ok(PacketSocket {
            fd,
            ifname: ifname.to_string(),
            ifindex,
        })
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub(crate) fn sys_err(&self, op: &'static str) -> impl FnOnce(SysError) -> PacketError + '_ {
        move |source| PacketError::Sys {
            op,
            ifname: self.ifname.clone(),
            source,
        }
    }

    /// `setsockopt(PACKET_VERSION)`, then checks the kernel's frame header
    /// size for it (`getsockopt(PACKET_HDRLEN)`) against the layout pktio
    /// uses (`EPROTO` if they differ).
    pub(crate) fn set_version(&self, v: Version, hdr_size: usize) -> Result<(), PacketError> {
        sys::packet::set_version(self.fd.as_fd(), v)
            .map_err(self.sys_err("set TPACKET version"))?;
        let got = sys::packet::hdrlen(self.fd.as_fd(), v).map_err(self.sys_err("PACKET_HDRLEN"))?;
        if got != hdr_size {
            return Err(PacketError::Sys {
                op: "check TPACKET header length",
                ifname: self.ifname.clone(),
                source: SysError::from_errno("getsockopt(PACKET_HDRLEN)", libc::EPROTO),
            });
        }
        Ok(())
    }

    /// Sets the rings and maps them ([`ring::install`]). A kernel `EINVAL`
    /// becomes [`PacketError::Geometry`] with the rules in words.
    pub(crate) fn install(
        &self,
        v: Version,
        rx: Option<RingReq>,
        tx: Option<RingReq>,
        tx_optional: bool,
    ) -> Result<(Installed, Option<SysError>), PacketError> {
        ring::install(self.fd.as_fd(), v, rx, tx, tx_optional).map_err(|e| {
            match (e.ring, e.source.errno()) {
                (Some(role), Some(libc::EINVAL)) => {
                    let req = if role == RingRole::Rx { rx } else { tx }.unwrap_or_default();
                    PacketError::Geometry {
                        ring: role,
                        problem: format!(
                            "{} blocks of {} bytes, {} frames of {} bytes: {KERNEL_RULES}",
                            req.block_nr, req.block_size, req.frame_nr, req.frame_size
                        ),
                        source: Some(e.source),
                    }
                }
                (Some(RingRole::Rx), _) => (self.sys_err("set up the RX ring"))(e.source),
                (Some(RingRole::Tx), _) => (self.sys_err("set up the TX ring"))(e.source),
                (None, _) => (self.sys_err("map the rings"))(e.source),
            }
        })
    }

    /// `bind(sockaddr_ll { ifindex, protocol })`: with `receive`, every
    /// protocol (`ETH_P_ALL`); without, protocol 0 (the socket can send but
    /// receives nothing).
    pub fn bind(&self, receive: bool) -> Result<(), PacketError> {
        let proto = if receive {
            sys::packet::eth_p_all_be()
        } else {
            0
        };
        sys::packet::bind(self.fd.as_fd(), self.ifindex, proto).map_err(|source| {
            if matches!(source.errno(), Some(libc::ENODEV | libc::ENXIO)) {
                PacketError::InterfaceGone {
                    ifname: self.ifname.clone(),
                    ifindex: self.ifindex,
                }
            } else {
                (self.sys_err("bind"))(source)
            }
        })
    }

    /// `setsockopt(PACKET_QDISC_BYPASS)` (kernel 3.14).
    pub fn set_qdisc_bypass(&self, on: bool) -> Result<(), PacketError> {
        sys::packet::set_qdisc_bypass(self.fd.as_fd(), on).map_err(self.sys_err("qdisc bypass"))
    }

    /// `setsockopt(PACKET_LOSS)`: skip malformed TX frames. Before the rings
    /// (the kernel answers `EBUSY` after).
    pub fn set_loss(&self, on: bool) -> Result<(), PacketError> {
        sys::packet::set_loss(self.fd.as_fd(), on).map_err(self.sys_err("PACKET_LOSS"))
    }

    /// `setsockopt(PACKET_IGNORE_OUTGOING)` (kernel 4.20). Returns `false`
    /// (not an error) on kernels without it (`ENOPROTOOPT`).
    pub fn set_ignore_outgoing(&self, on: bool) -> Result<bool, PacketError> {
        match sys::packet::set_ignore_outgoing(self.fd.as_fd(), on) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOPROTOOPT) => Ok(false),
            Err(e) => Err((self.sys_err("PACKET_IGNORE_OUTGOING"))(e)),
        }
    }

    /// Puts the interface in promiscuous mode while this socket is open
    /// (`setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)`). The kernel
    /// undoes it when the socket closes, however the process ends.
    pub fn set_promiscuous(&self) -> Result<(), PacketError> {
        sys::packet::add_promisc_membership(self.fd.as_fd(), self.ifindex)
            .map_err(self.sys_err("PACKET_ADD_MEMBERSHIP"))
    }

    /// `setsockopt(SO_BUSY_POLL…)` (kernel 5.11).
    pub fn set_busy_poll(&self, b: BusyPoll) -> Result<(), PacketError> {
        sys::xdp::set_busy_poll(self.fd.as_fd(), b.usecs, b.budget)
            .map_err(self.sys_err("busy poll"))
    }

    /// `setsockopt(SO_RCVBUFFORCE)`, or `SO_RCVBUF` without `CAP_NET_ADMIN`
    /// (then capped at `net.core.rmem_max`): the receive queue of a socket
    /// without an RX ring (io_uring). Returns whether the full size was set.
    pub fn set_rcvbuf(&self, bytes: u32) -> Result<bool, PacketError> {
        sys::packet::set_rcvbuf(self.fd.as_fd(), bytes).map_err(self.sys_err("SO_RCVBUF"))
    }

    /// `setsockopt(PACKET_FANOUT)`: joins `f` (after [`bind`](Self::bind)).
    ///
    /// # Errors
    /// [`PacketError::FanoutClash`] naming the kernel's reason.
    pub fn join_fanout(&self, f: Fanout) -> Result<(), PacketError> {
        sys::packet::set_fanout(self.fd.as_fd(), f.group, f.type_flags()).map_err(|source| {
            let reason = match source.errno() {
                Some(libc::EINVAL) => {
                    "the group exists in this network namespace with another mode, other flags \
                     or on another interface (EINVAL)"
                }
                Some(libc::ENOSPC) => "the group is full (ENOSPC)",
                Some(libc::EALREADY) => "this socket is already in a fanout group (EALREADY)",
                Some(libc::ENOMEM) => "the kernel could not allocate the group (ENOMEM)",
                _ => "the kernel refused",
            };
            PacketError::FanoutClash {
                fanout: f,
                ifname: self.ifname.clone(),
                reason,
                source,
            }
        })
    }

    /// `getsockopt(PACKET_STATISTICS)`: counters since the previous call (the
    /// kernel resets them on every read).
    pub fn statistics(&self) -> Result<KernelStats, PacketError> {
        let s =
            sys::packet::statistics(self.fd.as_fd()).map_err(self.sys_err("PACKET_STATISTICS"))?;
        Ok(KernelStats {
            packets: s.packets as u64,
            drops: s.drops as u64,
            freezes: s.freezes as u64,
        })
    }

    /// `sendto(fd, NULL, 0, MSG_DONTWAIT)`: transmits the TX ring frames
    /// marked for sending. `Ok(true)` when the kernel took them,
    /// `Ok(false)` on a transient refusal (`EAGAIN`, `ENOBUFS`, `EBUSY`,
    /// `ENETDOWN`: try again).
    ///
    /// # Errors
    /// [`PacketError::InterfaceGone`], or the kernel's error.
    pub fn kick_tx(&self) -> Result<bool, PacketError> {
        match sys::packet::kick_tx(self.fd.as_fd()) {
            Ok(_) => Ok(true),
            Err(libc::EAGAIN | libc::ENOBUFS | libc::EBUSY | libc::ENETDOWN | libc::EINTR) => {
                Ok(false)
            }
            Err(errno) => {
                Err(self.gone_or("transmit", SysError::from_errno("sendto(AF_PACKET)", errno)))
            }
        }
    }

    /// Sends one whole frame (Ethernet header included) out of the bound
    /// interface with a plain `send` — no ring: one system call and one skb
    /// per frame, through the qdisc unless
    /// [`set_qdisc_bypass`](Self::set_qdisc_bypass). Bind first
    /// ([`bind`](Self::bind)`(false)` for a socket that only sends).
    /// Returns `false`, sending nothing, when the socket's send buffer or the
    /// device queue is full right now (`EAGAIN`, `ENOBUFS`): try again.
    ///
    /// # Errors
    /// [`PacketError::InterfaceGone`]; the kernel's error (`EMSGSIZE` for a
    /// frame longer than the MTU allows).
    pub fn send(&self, frame: &[u8]) -> Result<bool, PacketError> {
        match sys::packet::send(self.fd.as_fd(), frame) {
            Ok(_) => Ok(true),
            Err(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Ok(false),
            Err(errno) => Err(self.gone_or("send", SysError::from_errno("send(AF_PACKET)", errno))),
        }
    }

    /// `poll(POLLIN)` for up to `timeout_ms`: whether packets are waiting.
    ///
    /// # Errors
    /// [`PacketError::InterfaceGone`] when poll reports an error and the
    /// interface is gone; the kernel's error otherwise.
    pub fn poll_in(&self, timeout_ms: i32) -> Result<bool, PacketError> {
        let rev = sys::packet::poll(self.fd.as_fd(), libc::POLLIN, timeout_ms)
            .map_err(self.sys_err("poll"))?;
        if rev & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            self.check_interface()?;
        }
        Ok(rev & libc::POLLIN != 0)
    }

    /// Checks that the interface still exists under the same index.
    ///
    /// # Errors
    /// [`PacketError::InterfaceGone`].
    pub fn check_interface(&self) -> Result<(), PacketError> {
        if self.ifindex == 0 {
            return Ok(()); // `any`: every interface, none to lose.
        }
        match sys::xdp::if_indextoname(self.ifindex) {
            Ok(n) if n == self.ifname => Ok(()),
            _ => Err(PacketError::InterfaceGone {
                ifname: self.ifname.clone(),
                ifindex: self.ifindex,
            }),
        }
    }

    /// `InterfaceGone` if the interface vanished, else a `Sys` error.
    pub(crate) fn gone_or(&self, op: &'static str, source: SysError) -> PacketError {
        if matches!(
            source.errno(),
            Some(libc::ENXIO | libc::ENODEV | libc::ENETDOWN)
        ) && self.check_interface().is_err()
        {
            return PacketError::InterfaceGone {
                ifname: self.ifname.clone(),
                ifindex: self.ifindex,
            };
        }
        (self.sys_err(op))(source)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
