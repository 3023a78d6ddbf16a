//! A small synchronous rtnetlink client: messages of
//! `netlink-packet-route` over the lab's netlink transport
//! ([`crate::nlsock`]).
//!
//! A netlink socket talks to the network namespace of the thread that
//! created it, for its whole life; so the lab creates one socket per
//! namespace, on a thread that has entered it, and keeps it.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::error::{LabError, Result};
use crate::nlsock::{NlSocket, NLMSG_HDRLEN};

/// `NLM_F_CAPPED` (`<linux/netlink.h>`): the error payload holds only the
/// request's header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` (`<linux/netlink.h>`): extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG` (`<linux/netlink.h>`): the error message string.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// One veth end: what to create it with.
#[derive(Debug, Clone)]
pub(crate) struct VethEnd {
    pub ifname: String,
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
    pub queues: Option<u32>,
}

/// An rtnetlink socket bound to the network namespace it was created in.
#[derive(Debug)]
pub(crate) struct Netlink {
    sock: NlSocket,
}

impl Netlink {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)` in the
    /// calling thread's network namespace, with extended ACKs on.
    pub fn new() -> Result<Self> {
        Ok(Netlink {
            sock: NlSocket::new(NETLINK_ROUTE, "opening an rtnetlink socket")?,
        })
    }

    /// Sends `msg` with `NLM_F_REQUEST | flags` and collects the replies
    /// until the ACK (non-dump requests get `NLM_F_ACK`) or `NLMSG_DONE`.
    fn request(
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
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw).map_err(|e| {
                LabError::Protocol {
                    op: op.to_string(),
                    detail: e.to_string(),
                }
            })?;
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
        let op = format!("reading interface #{index} (RTM_GETLINK)");
        self.request(&op, RouteNetlinkMessage::GetLink(m), 0)?
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .ok_or_else(|| LabError::Protocol {
                op,
                detail: "no RTM_NEWLINK in the reply".into(),
            })
    }

    /// `RTM_GETLINK` by name (`IFLA_IFNAME`).
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkMessage> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let op = format!("looking up interface {name} (RTM_GETLINK)");
        self.request(&op, RouteNetlinkMessage::GetLink(m), 0)?
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .ok_or_else(|| LabError::Protocol {
                op,
                detail: "no RTM_NEWLINK in the reply".into(),
            })
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
        let replies = self.request(
            "listing IPv4 addresses (RTM_GETADDR dump)",
            RouteNetlinkMessage::GetAddress(m),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in replies {
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
            crate::fmt_mac(&mac)
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
        let replies = self.request(
            "listing neighbour entries (RTM_GETNEIGH dump)",
            RouteNetlinkMessage::GetNeighbour(m),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in replies {
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
}

/// The kernel's extended-ACK message (`NLMSGERR_ATTR_MSG`) from the payload
/// of an `NLMSG_ERROR` (everything after the error code), if it has one.
pub(crate) fn ext_ack_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = u32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        (len + 3) & !3
    };
    let mut tlvs = payload.get(skip..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let s = &tlvs[4..len];
            let s = s.split(|b| *b == 0).next().unwrap_or(s);
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_capped() {
        let mut p = vec![0u8; 16];
        let msg = b"Unknown device type\0";
        let tlv_len = (4 + msg.len()) as u16;
        p.extend_from_slice(&tlv_len.to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(msg);
        while p.len() % 4 != 0 {
            p.push(0);
        }
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).as_deref(),
            Some("Unknown device type")
        );
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &p), None);
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p[..10]),
            None
        );
    }
}
