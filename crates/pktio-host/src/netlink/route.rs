//! rtnetlink: messages of `netlink-packet-route` (re-exported as
//! [`types`]) over [`NlSocket`]: links (list, look up, create a veth pair,
//! delete, up/down, MTU, state and counters, the XDP programs attached),
//! IPv4 addresses and permanent neighbour entries.
//!
//! A netlink socket talks to the network namespace of the thread that
//! created it, for its whole life; so make one per namespace, on a thread
//! that has entered it, and keep it.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp,
    XdpAttached,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

pub use netlink_packet_route as types;

use super::{NlSocket, NETLINK_ROUTE};
use crate::error::{HostError, Result};

/// Formats a MAC as `02:00:c6:12:00:01`.
pub fn fmt_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An interface's receive counters (from `struct rtnl_link_stats64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets the driver or stack dropped on receive.
    pub rx_dropped: u64,
    /// Packets the hardware missed (no buffer).
    pub rx_missed: u64,
}

impl LinkCounters {
    /// The counts since `earlier` (counters that went backwards count 0).
    pub fn since(&self, earlier: &LinkCounters) -> LinkCounters {
        LinkCounters {
            rx_packets: self.rx_packets.saturating_sub(earlier.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(earlier.rx_dropped),
            rx_missed: self.rx_missed.saturating_sub(earlier.rx_missed),
        }
    }
}

/// The XDP programs attached to an interface, as `RTM_GETLINK` reports
/// them (`IFLA_XDP`: `IFLA_XDP_ATTACHED`, `IFLA_XDP_{DRV,SKB,HW}_PROG_ID`).
/// A program id of 0 means none in that mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpProgIds {
    /// The program in driver (native) mode.
    pub drv: u32,
    /// The program in skb (generic) mode.
    pub skb: u32,
    /// The program offloaded to the NIC.
    pub hw: u32,
}

impl XdpProgIds {
    /// The ids of an `RTM_NEWLINK` message. Kernels that report a single
    /// attachment give only `IFLA_XDP_PROG_ID` with `IFLA_XDP_ATTACHED`;
    /// that id is filed under the mode the latter names.
    pub fn of(link: &LinkMessage) -> XdpProgIds {
        let mut ids = XdpProgIds::default();
        let (mut attached, mut prog) = (None, 0);
        for a in &link.attributes {
            let LinkAttribute::Xdp(xdp) = a else { continue };
            for x in xdp {
                match x {
                    LinkXdp::Attached(m) => attached = Some(*m),
                    LinkXdp::ProgId(id) => prog = *id,
                    LinkXdp::DrvProgId(id) => ids.drv = *id,
                    LinkXdp::SkbProgId(id) => ids.skb = *id,
                    LinkXdp::HwProgId(id) => ids.hw = *id,
                    _ => {}
                }
            }
        }
        if prog != 0 && ids.drv == 0 && ids.skb == 0 && ids.hw == 0 {
            match attached {
                Some(XdpAttached::SocketBuffer) => ids.skb = prog,
                Some(XdpAttached::Hardware) => ids.hw = prog,
                _ => ids.drv = prog,
            }
        }
        ids
    }

    /// Whether no program is attached in any mode.
    pub fn is_empty(&self) -> bool {
        self.drv == 0 && self.skb == 0 && self.hw == 0
    }
}

/// What `RTM_GETLINK` said about an interface's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_LOWER_UP`: carrier (for a veth: its peer is up).
    pub lower_up: bool,
    /// The counters, if the kernel sent them (`IFLA_STATS64`).
    pub counters: Option<LinkCounters>,
    /// `IFLA_PROMISCUITY`: how many holders keep the interface promiscuous
    /// (packet sockets with `PACKET_MR_PROMISC`, `ip link set promisc on`);
    /// `None` if the kernel did not say (before 3.3).
    pub promiscuity: Option<u32>,
}

impl LinkState {
    /// The state of an `RTM_NEWLINK` message.
    pub fn of(link: &LinkMessage) -> LinkState {
        let mut s = LinkState {
            up: link.header.flags.contains(LinkFlags::Up),
            lower_up: link.header.flags.contains(LinkFlags::LowerUp),
            counters: None,
            promiscuity: None,
        };
        for a in &link.attributes {
            match a {
                LinkAttribute::Stats64(st) => {
                    s.counters = Some(LinkCounters {
                        rx_packets: st.rx_packets,
                        rx_dropped: st.rx_dropped,
                        rx_missed: st.rx_missed_errors,
                    })
                }
                LinkAttribute::Promiscuity(p) => s.promiscuity = Some(*p),
                _ => {}
            }
        }
        s
    }
}

/// The name of an `RTM_NEWLINK` message (`IFLA_IFNAME`), empty if absent.
pub fn link_name(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// One veth end: what to create it with.
#[derive(Debug, Clone)]
pub struct VethEnd {
    /// Interface name.
    pub ifname: String,
    /// MAC address (`IFLA_ADDRESS`).
    pub mac: [u8; 6],
    /// MTU, or the kernel's default.
    pub mtu: Option<u32>,
    /// RX and TX queues (`IFLA_NUM_RX_QUEUES`/`IFLA_NUM_TX_QUEUES`), or 1.
    pub queues: Option<u32>,
}

/// An rtnetlink socket bound to the network namespace it was created in.
#[derive(Debug)]
pub struct Route {
    sock: NlSocket,
}

impl Route {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)` in the
    /// calling thread's network namespace, with extended ACKs on.
    ///
    /// # Errors
    /// [`HostError::Sys`].
    pub fn new() -> Result<Self> {
        Ok(Route {
            sock: NlSocket::new(NETLINK_ROUTE, "opening an rtnetlink socket")?,
        })
    }

    /// Sends `msg` with `NLM_F_REQUEST | flags` and collects the replies
    /// until the ACK (non-dump requests get `NLM_F_ACK`) or `NLMSG_DONE`.
    ///
    /// # Errors
    /// As [`NlSocket::request`].
    pub fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let build = |nl_flags, seq| {
            let mut header = NetlinkHeader::default();
            header.flags = nl_flags;
            header.sequence_number = seq;
            let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg.clone()));
            req.finalize();
            let mut out = vec![0u8; req.buffer_len()];
            req.serialize(&mut out);
            out
        };
        let parse = |raw: &[u8]| {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw)
                .map_err(|e| HostError::protocol(op, e.to_string()))?;
            // A plain reply to a GET is followed by the ACK.
            Ok(match msg.payload {
                NetlinkPayload::InnerMessage(m) => Some(m),
                _ => None,
            })
        };
        self.sock.request(op, flags, build, parse)
    }

    /// `RTM_GETLINK` dump: every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkMessage>> {
        let replies = self.request(
            "listing network interfaces (RTM_GETLINK dump)",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// `RTM_GETLINK` for one interface index.
    pub fn link(&mut self, index: u32) -> Result<LinkMessage> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.one_link(format!("reading interface #{index} (RTM_GETLINK)"), m)
    }

    /// `RTM_GETLINK` by name (`IFLA_IFNAME`).
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkMessage> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.one_link(format!("looking up interface {name} (RTM_GETLINK)"), m)
    }

    /// The `RTM_NEWLINK` answer to an `RTM_GETLINK` of `m`.
    fn one_link(&mut self, op: String, m: LinkMessage) -> Result<LinkMessage> {
        self.request(&op, RouteNetlinkMessage::GetLink(m), 0)?
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .ok_or_else(|| HostError::protocol(op, "no RTM_NEWLINK in the reply"))
    }

    /// `RTM_NEWLINK` (`NLM_F_CREATE|NLM_F_EXCL`) of a veth pair: `local` in
    /// this socket's namespace, `peer` created directly in the namespace
    /// `peer_ns` refers to (`IFLA_NET_NS_FD` inside `VETH_INFO_PEER`), both
    /// down, with their MAC (`IFLA_ADDRESS`), MTU and
    /// `IFLA_NUM_RX_QUEUES`/`IFLA_NUM_TX_QUEUES`.
    pub fn create_veth(
        &mut self,
        local: &VethEnd,
        peer: &VethEnd,
        peer_ns: BorrowedFd<'_>,
    ) -> Result<()> {
        fn attrs(end: &VethEnd) -> Vec<LinkAttribute> {
            let mut a = vec![
                LinkAttribute::IfName(end.ifname.clone()),
                LinkAttribute::Address(end.mac.to_vec()),
            ];
            if let Some(mtu) = end.mtu {
                a.push(LinkAttribute::Mtu(mtu));
            }
            if let Some(q) = end.queues {
                a.push(LinkAttribute::NumTxQueues(q));
                a.push(LinkAttribute::NumRxQueues(q));
            }
            a
        }
        let mut peer_msg = LinkMessage::default();
        peer_msg.attributes = attrs(peer);
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.attributes = attrs(local);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        let op = format!(
            "creating veth pair {}/{} (RTM_NEWLINK)",
            local.ifname, peer.ifname
        );
        self.request(
            &op,
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(|_| ())
    }

    /// `RTM_DELLINK` of interface `index` (for a veth, removes both ends).
    pub fn delete_link(&mut self, index: u32, what: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        let op = format!("deleting interface {what} (RTM_DELLINK)");
        self.request(&op, RouteNetlinkMessage::DelLink(m), 0)
            .map(|_| ())
    }

    /// `RTM_SETLINK` with `IFF_UP` set or cleared in `ifi_change`.
    pub fn set_up(&mut self, index: u32, up: bool, what: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        let op = format!(
            "setting {what} {} (RTM_SETLINK)",
            if up { "up" } else { "down" }
        );
        self.request(&op, RouteNetlinkMessage::SetLink(m), 0)
            .map(|_| ())
    }

    /// `RTM_SETLINK` with `IFLA_MTU`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32, what: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Mtu(mtu));
        let op = format!("setting the MTU of {what} to {mtu} (RTM_SETLINK)");
        self.request(&op, RouteNetlinkMessage::SetLink(m), 0)
            .map(|_| ())
    }

    /// `RTM_NEWADDR` (`NLM_F_CREATE|NLM_F_EXCL`) of `addr/prefix_len` on
    /// interface `index` (`IFA_LOCAL` = `IFA_ADDRESS` = `addr`).
    pub fn add_addr(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        what: &str,
    ) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix_len;
        m.header.scope = AddressScope::Universe;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
        m.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        let op = format!("adding address {addr}/{prefix_len} to {what} (RTM_NEWADDR)");
        self.request(
            &op,
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(|_| ())
    }

    /// `RTM_GETADDR` dump of the IPv4 addresses of the namespace.
    pub fn ipv4_addrs(&mut self) -> Result<Vec<(u32, Ipv4Addr, u8)>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let op = "listing IPv4 addresses (RTM_GETADDR dump)";
        let mut out = Vec::new();
        for r in self.request(op, RouteNetlinkMessage::GetAddress(m), NLM_F_DUMP)? {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            let local = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            let address = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(address) {
                out.push((a.header.index, ip, a.header.prefix_len));
            }
        }
        Ok(out)
    }

    /// `RTM_NEWNEIGH` (`NLM_F_CREATE|NLM_F_REPLACE`): a permanent
    /// (`NUD_PERMANENT`) ARP entry `ip -> mac` on interface `index`.
    pub fn add_neighbour(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        mac: [u8; 6],
        what: &str,
    ) -> Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = index;
        m.header.state = NeighbourState::Permanent;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        let op = format!(
            "adding the static ARP entry {ip} -> {} on {what} (RTM_NEWNEIGH)",
            fmt_mac(&mac)
        );
        self.request(
            &op,
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(|_| ())
    }

    /// The permanent IPv4 neighbour entries of interface `index`.
    pub fn permanent_neighbours(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, Vec<u8>)>> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        let op = "listing neighbour entries (RTM_GETNEIGH dump)";
        let mut out = Vec::new();
        for r in self.request(op, RouteNetlinkMessage::GetNeighbour(m), NLM_F_DUMP)? {
            let RouteNetlinkMessage::NewNeighbour(n) = r else {
                continue;
            };
            if n.header.ifindex != index || n.header.state != NeighbourState::Permanent {
                continue;
            }
            let ip = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            let ll = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(v) => Some(v.clone()),
                _ => None,
            });
            if let (Some(ip), Some(ll)) = (ip, ll) {
                out.push((ip, ll));
            }
        }
        Ok(out)
    }

    /// Every interface of the namespace as `(ifindex, name, state)`, by
    /// index (what `tcpdump -D` lists).
    ///
    /// # Errors
    /// As [`Route::links`].
    pub fn interfaces(&mut self) -> Result<Vec<(u32, String, LinkState)>> {
        let mut out: Vec<_> = self
            .links()?
            .iter()
            .map(|l| (l.header.index, link_name(l), LinkState::of(l)))
            .collect();
        out.sort_by_key(|(i, _, _)| *i);
        Ok(out)
    }

    /// The XDP programs attached to interface `index` (what `ip link show`
    /// prints as `prog/xdp id N`).
    ///
    /// # Errors
    /// `ENODEV` when no interface has this index.
    pub fn xdp_prog_ids(&mut self, index: u32) -> Result<XdpProgIds> {
        self.link(index).map(|l| XdpProgIds::of(&l))
    }

    /// The state and counters of interface `index`.
    ///
    /// # Errors
    /// `ENODEV` when no interface has this index.
    pub fn link_state(&mut self, index: u32) -> Result<LinkState> {
        self.link(index).map(|l| LinkState::of(&l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::Stats64;

    #[test]
    fn xdp_prog_ids_from_a_message() {
        let mut m = LinkMessage::default();
        assert!(XdpProgIds::of(&m).is_empty());
        m.attributes.push(LinkAttribute::Xdp(vec![
            LinkXdp::Attached(XdpAttached::SocketBuffer),
            LinkXdp::ProgId(42),
        ]));
        let ids = XdpProgIds::of(&m);
        assert_eq!((ids.drv, ids.skb, ids.hw), (0, 42, 0));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::Xdp(vec![
            LinkXdp::Attached(XdpAttached::Multiple),
            LinkXdp::DrvProgId(7),
            LinkXdp::SkbProgId(9),
        ]));
        let ids = XdpProgIds::of(&m);
        assert_eq!((ids.drv, ids.skb, ids.hw), (7, 9, 0));
        assert!(!ids.is_empty());
    }

    #[test]
    fn mac_format() {
        assert_eq!(fmt_mac(&[2, 0, 0xc6, 0x12, 0, 1]), "02:00:c6:12:00:01");
    }

    #[test]
    fn link_state_from_a_message() {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        m.attributes.push(LinkAttribute::IfName("veth0".into()));
        m.attributes.push(LinkAttribute::Promiscuity(2));
        let mut st = Stats64::default();
        st.rx_packets = 10;
        st.rx_dropped = 2;
        st.rx_missed_errors = 1;
        m.attributes.push(LinkAttribute::Stats64(st));
        let s = LinkState::of(&m);
        assert!(s.up && s.lower_up);
        assert_eq!(s.promiscuity, Some(2));
        let c = s.counters.unwrap();
        assert_eq!((c.rx_packets, c.rx_dropped, c.rx_missed), (10, 2, 1));
        assert_eq!(link_name(&m), "veth0");
        let earlier = LinkCounters {
            rx_packets: 4,
            rx_dropped: 3,
            rx_missed: 0,
        };
        assert_eq!(c.since(&earlier).rx_packets, 6);
        assert_eq!(c.since(&earlier).rx_dropped, 0);
        assert_eq!(LinkState::of(&LinkMessage::default()), LinkState::default());
    }

    #[test]
    fn loopback_is_listed() {
        let mut r = Route::new().unwrap();
        let all = r.interfaces().unwrap();
        let lo = all.iter().find(|(_, n, _)| n == "lo").expect("lo");
        assert_eq!(r.link_state(lo.0).unwrap().up, lo.2.up);
        let e = r.link_state(0x7fff_fff0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
    }
}
