//! What the lab reports about a link: [`LinkStats`] and [`LinkInfo`],
//! decoded from `RTM_NEWLINK` replies.

use std::os::fd::BorrowedFd;

use pktio_host::netlink::route::types::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage, State,
};

use crate::error::Result;
use crate::ns;
use pktio_host::netlink::route::Route;

/// Interface counters, from `IFLA_STATS64` (`struct rtnl_link_stats64`),
/// the same numbers as `ip -s link` and `/sys/class/net/<if>/statistics`.
///
/// On a veth, `rx_packets` includes frames handled by XDP, and frames lost
/// because the peer's ring was full (`ndo_xdp_xmit`, NAPI) show up as the
/// receiver's `rx_dropped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Received packets dropped (no buffer, ring full, no NAPI...).
    pub rx_dropped: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
    /// Bad packets received.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

impl LinkStats {
    /// The counters' growth from `earlier` to `self` (saturating at 0, for
    /// counters that were reset, e.g. by recreating the link).
    pub fn since(&self, earlier: &LinkStats) -> LinkStats {
        LinkStats {
            rx_packets: self.rx_packets.saturating_sub(earlier.rx_packets),
            tx_packets: self.tx_packets.saturating_sub(earlier.tx_packets),
            rx_bytes: self.rx_bytes.saturating_sub(earlier.rx_bytes),
            tx_bytes: self.tx_bytes.saturating_sub(earlier.tx_bytes),
            rx_dropped: self.rx_dropped.saturating_sub(earlier.rx_dropped),
            tx_dropped: self.tx_dropped.saturating_sub(earlier.tx_dropped),
            rx_errors: self.rx_errors.saturating_sub(earlier.rx_errors),
            tx_errors: self.tx_errors.saturating_sub(earlier.tx_errors),
        }
    }
}

/// The state of one network interface, as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkInfo {
    /// Interface index (in its namespace).
    pub ifindex: u32,
    /// Interface name.
    pub ifname: String,
    /// Link kind from `IFLA_INFO_KIND` (`"veth"`), `None` for `lo` and
    /// other links without one.
    pub kind: Option<String>,
    /// Hardware address (`IFLA_ADDRESS`), if it is a 6-byte MAC.
    pub mac: Option<[u8; 6]>,
    /// MTU (`IFLA_MTU`).
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`): for a veth, both ends are up.
    pub lower_up: bool,
    /// Operational state is UP (`IFLA_OPERSTATE` = `IF_OPER_UP`). The kernel
    /// sets it from its link-watch work, right before it attaches the
    /// queueing discipline; until then frames sent on the link are dropped.
    pub oper_up: bool,
    /// Number of receive queues (`IFLA_NUM_RX_QUEUES`).
    pub rx_queues: u32,
    /// Number of transmit queues (`IFLA_NUM_TX_QUEUES`).
    pub tx_queues: u32,
    /// Counters (`IFLA_STATS64`).
    pub stats: LinkStats,
}

impl LinkInfo {
    pub(crate) fn from_message(m: &LinkMessage) -> LinkInfo {
        let mut info = LinkInfo {
            ifindex: m.header.index,
            ifname: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            lower_up: m.header.flags.contains(LinkFlags::LowerUp),
            oper_up: false,
            rx_queues: 0,
            tx_queues: 0,
            stats: LinkStats::default(),
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => info.ifname = n.clone(),
                LinkAttribute::Address(mac) => info.mac = <[u8; 6]>::try_from(mac.as_slice()).ok(),
                LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
                LinkAttribute::OperState(st) => info.oper_up = *st == State::Up,
                LinkAttribute::NumRxQueues(q) => info.rx_queues = *q,
                LinkAttribute::NumTxQueues(q) => info.tx_queues = *q,
                LinkAttribute::Stats64(s) => {
                    info.stats = LinkStats {
                        rx_packets: s.rx_packets,
                        tx_packets: s.tx_packets,
                        rx_bytes: s.rx_bytes,
                        tx_bytes: s.tx_bytes,
                        rx_dropped: s.rx_dropped,
                        tx_dropped: s.tx_dropped,
                        rx_errors: s.rx_errors,
                        tx_errors: s.tx_errors,
                    }
                }
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let NlLinkInfo::Kind(k) = i {
                            info.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        info
    }

    /// Whether this is a veth.
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some(&*InfoKind::Veth.to_string())
    }
}

/// Lists the network interfaces of the calling thread's own namespace
/// (`RTM_GETLINK` dump). Enters nothing, so it needs no privilege.
///
/// # Errors
/// [`LabError::Netlink`](crate::LabError::Netlink) if the dump fails.
pub fn list_links_here() -> Result<Vec<LinkInfo>> {
    let links = Route::new()?.links()?;
    Ok(links.iter().map(LinkInfo::from_message).collect())
}

/// Lists the network interfaces of the namespace `netns` refers to (an fd
/// from [`Host::netns_fd`](crate::Host::netns_fd), or an open
/// `/run/netns/<name>` file).
///
/// Makes an `RTM_GETLINK` dump from a helper thread that entered the
/// namespace. Useful to check that a lab left nothing behind.
///
/// # Errors
/// [`LabError::Sys`](crate::LabError::Sys) if the namespace cannot be
/// entered (not root, or `netns` is no namespace), [`LabError::Netlink`](crate::LabError::Netlink)
/// if the dump fails.
pub fn list_links(netns: BorrowedFd<'_>) -> Result<Vec<LinkInfo>> {
    let links = ns::in_ns(netns, "list", || -> Result<Vec<LinkMessage>> {
        Ok(Route::new()?.links()?)
    })??;
    Ok(links.iter().map(LinkInfo::from_message).collect())
}
