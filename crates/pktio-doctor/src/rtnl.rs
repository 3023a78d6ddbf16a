//! rtnetlink reads (what `ip -d -s link` and `tc -s qdisc` show): the
//! doctor's view of a link (flags, MTU, queue counts, the attached XDP
//! program and its mode, statistics) and of the root qdisc's drops, parsed
//! from the `netlink-packet-route` messages that the host layer's
//! [`Route`] socket fetches.

use std::io;

use netlink_packet_core::NLM_F_DUMP;
use pktio_host::netlink::route::types::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp, State, XdpAttached,
};
use pktio_host::netlink::route::types::tc::{TcAttribute, TcMessage, TcStats2};
use pktio_host::netlink::route::types::RouteNetlinkMessage;
use pktio_host::netlink::route::Route;

/// How an XDP program is attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// No program.
    #[default]
    None,
    /// In the driver (native): fast.
    Native,
    /// Generic (skb) mode: after an skb is built, slow.
    Skb,
    /// Offloaded to the NIC.
    Hw,
    /// Several programs in different modes.
    Multi,
}

impl XdpMode {
    /// The word `ip link` uses.
    pub fn word(self) -> &'static str {
        match self {
            XdpMode::None => "none",
            XdpMode::Native => "native (xdpdrv)",
            XdpMode::Skb => "generic (xdpgeneric)",
            XdpMode::Hw => "offload (xdpoffload)",
            XdpMode::Multi => "multiple (xdpmulti)",
        }
    }
}

/// Link counters that matter for drops (`struct rtnl_link_stats64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Dropped by the kernel after the NIC (no buffer, XDP drop counted by some drivers).
    pub rx_dropped: u64,
    /// Dropped on transmit.
    pub tx_dropped: u64,
    /// The NIC ran out of RX descriptors (ring full).
    pub rx_missed: u64,
    /// FIFO overruns in the NIC.
    pub rx_fifo: u64,
    /// Receiver ring overflow.
    pub rx_over: u64,
    /// Frames for another host's MAC dropped by the stack (Linux 5.18+).
    pub rx_otherhost: u64,
}

/// Everything rtnetlink says about one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub ifname: String,
    /// `IFF_UP`.
    pub up: bool,
    /// `IFF_LOWER_UP` (carrier).
    pub lower_up: bool,
    /// `IFF_PROMISC`.
    pub promisc: bool,
    /// `IFF_LOOPBACK`.
    pub loopback: bool,
    /// Promiscuity counter (how many users asked for promiscuous mode).
    pub promiscuity: u32,
    /// Operational state as `ip link` prints it.
    pub oper_state: String,
    /// MTU.
    pub mtu: u32,
    /// Largest MTU the device accepts.
    pub max_mtu: Option<u32>,
    /// `txqueuelen`.
    pub txqlen: Option<u32>,
    /// Allocated RX queues (`IFLA_NUM_RX_QUEUES`).
    pub num_rx_queues: Option<u32>,
    /// Allocated TX queues (`IFLA_NUM_TX_QUEUES`).
    pub num_tx_queues: Option<u32>,
    /// Root qdisc kind (`IFLA_QDISC`).
    pub qdisc: Option<String>,
    /// Link kind for virtual devices (`veth`, `bond`, …).
    pub kind: Option<String>,
    /// Link-layer address.
    pub mac: Vec<u8>,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// The XDP program id (when one mode).
    pub xdp_prog_id: Option<u32>,
    /// Counters.
    pub stats: LinkStats,
}

/// Reduces an `RTM_NEWLINK` message to the facts the doctor uses.
pub fn link_from_message(m: &LinkMessage) -> Link {
    let flags = m.header.flags;
    let mut l = Link {
        ifindex: m.header.index,
        up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        promisc: flags.contains(LinkFlags::Promisc),
        loopback: flags.contains(LinkFlags::Loopback),
        xdp_mode: XdpMode::None,
        ..Link::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.ifname = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::MaxMtu(v) => l.max_mtu = Some(*v),
            LinkAttribute::TxQueueLen(v) => l.txqlen = Some(*v),
            LinkAttribute::NumRxQueues(v) => l.num_rx_queues = Some(*v),
            LinkAttribute::NumTxQueues(v) => l.num_tx_queues = Some(*v),
            LinkAttribute::Qdisc(q) => l.qdisc = Some(q.clone()),
            LinkAttribute::Promiscuity(v) => l.promiscuity = *v,
            LinkAttribute::Address(a) => l.mac = a.clone(),
            LinkAttribute::OperState(s) => l.oper_state = oper_state_word(s),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(kind_word(k));
                    }
                }
            }
            LinkAttribute::Xdp(xs) => {
                for x in xs {
                    match x {
                        LinkXdp::Attached(a) => {
                            l.xdp_mode = match a {
                                XdpAttached::None => XdpMode::None,
                                XdpAttached::Driver => XdpMode::Native,
                                XdpAttached::SocketBuffer => XdpMode::Skb,
                                XdpAttached::Hardware => XdpMode::Hw,
                                _ => XdpMode::Multi,
                            }
                        }
                        LinkXdp::ProgId(id) => l.xdp_prog_id = Some(*id),
                        LinkXdp::DrvProgId(id) | LinkXdp::SkbProgId(id)
                            if l.xdp_prog_id.is_none() =>
                        {
                            l.xdp_prog_id = Some(*id)
                        }
                        _ => {}
                    }
                }
            }
            LinkAttribute::Stats64(s) => {
                l.stats = LinkStats {
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_dropped: s.rx_dropped,
                    tx_dropped: s.tx_dropped,
                    rx_missed: s.rx_missed_errors,
                    rx_fifo: s.rx_fifo_errors,
                    rx_over: s.rx_over_errors,
                    rx_otherhost: s.rx_otherhost_dropped,
                }
            }
            _ => {}
        }
    }
    l
}

fn kind_word(k: &InfoKind) -> String {
    k.to_string()
}

fn oper_state_word(s: &State) -> String {
    match s {
        State::Up => "UP".into(),
        State::Down => "DOWN".into(),
        State::LowerLayerDown => "LOWERLAYERDOWN".into(),
        State::Dormant => "DORMANT".into(),
        State::NotPresent => "NOTPRESENT".into(),
        State::Testing => "TESTING".into(),
        State::Unknown => "UNKNOWN".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// Queueing statistics of one qdisc (`tc -s qdisc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qdisc {
    /// Qdisc kind (`fq_codel`, `mq`, `noqueue`, …).
    pub kind: String,
    /// Whether it is the root qdisc of the device.
    pub root: bool,
    /// Packets dropped.
    pub drops: u64,
    /// Enqueues over the limit.
    pub overlimits: u64,
    /// Requeues (driver pushed back).
    pub requeues: u64,
}

/// Reduces an `RTM_NEWQDISC` message.
pub fn qdisc_from_message(m: &TcMessage) -> Qdisc {
    let mut q = Qdisc {
        root: m.header.parent.major == u16::MAX && m.header.parent.minor == u16::MAX,
        ..Qdisc::default()
    };
    let mut have_stats2 = false;
    for a in &m.attributes {
        match a {
            TcAttribute::Kind(k) => q.kind = k.clone(),
            TcAttribute::Stats2(s2) => {
                for s in s2 {
                    if let TcStats2::Queue(qs) = s {
                        have_stats2 = true;
                        q.drops = qs.drops.into();
                        q.overlimits = qs.overlimits.into();
                        q.requeues = qs.requeues.into();
                    }
                }
            }
            TcAttribute::Stats(s) if !have_stats2 => {
                q.drops = s.drops.into();
                q.overlimits = s.overlimits.into();
            }
            _ => {}
        }
    }
    q
}

/// An rtnetlink connection ([`Route`]) that answers in the doctor's terms.
///
/// Errors are [`io::Error`]s carrying the kernel's errno (`ENODEV` for an
/// unknown interface), which is what the findings are made from.
#[derive(Debug)]
pub struct Rtnl {
    route: Route,
}

impl Rtnl {
    /// `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`.
    ///
    /// # Errors
    /// Socket errors.
    pub fn open() -> io::Result<Rtnl> {
        Ok(Rtnl {
            route: Route::new()?,
        })
    }

    /// `RTM_GETLINK` by name.
    ///
    /// # Errors
    /// `ENODEV` when the interface does not exist.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Link> {
        Ok(link_from_message(&self.route.link_by_name(name)?))
    }

    /// `RTM_GETLINK` by index.
    ///
    /// # Errors
    /// `ENODEV` when the interface does not exist.
    pub fn link_by_index(&mut self, ifindex: u32) -> io::Result<Link> {
        Ok(link_from_message(&self.route.link(ifindex)?))
    }

    /// `RTM_GETLINK` dump: every interface in this network namespace.
    ///
    /// # Errors
    /// Socket errors.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        Ok(self.route.links()?.iter().map(link_from_message).collect())
    }

    /// `RTM_GETQDISC` dump filtered to one interface.
    ///
    /// # Errors
    /// Socket errors.
    pub fn qdiscs(&mut self, ifindex: u32) -> io::Result<Vec<Qdisc>> {
        let replies = self.route.request(
            "listing queueing disciplines (RTM_GETQDISC dump)",
            RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewQueueDiscipline(t) if t.header.index == ifindex as i32 => {
                    Some(qdisc_from_message(t))
                }
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pktio_host::netlink::route::types::link::Stats64;

    /// A veth as the kernel describes it, with a native XDP program.
    fn veth_message() -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running;
        let mut s = Stats64::default();
        s.rx_packets = 100;
        s.rx_dropped = 3;
        s.rx_missed_errors = 2;
        m.attributes = vec![
            LinkAttribute::IfName("vrx".into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::MaxMtu(65535),
            LinkAttribute::NumRxQueues(2),
            LinkAttribute::NumTxQueues(2),
            LinkAttribute::Qdisc("noqueue".into()),
            LinkAttribute::Promiscuity(0),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
            LinkAttribute::Xdp(vec![
                LinkXdp::Attached(XdpAttached::Driver),
                LinkXdp::ProgId(42),
            ]),
            LinkAttribute::Stats64(s),
        ];
        m
    }

    #[test]
    fn link_facts_of_a_veth_with_native_xdp() {
        let l = link_from_message(&veth_message());
        assert_eq!(l.ifindex, 7);
        assert_eq!(l.ifname, "vrx");
        assert!(l.up && l.lower_up && !l.promisc);
        assert_eq!(l.mtu, 1500);
        assert_eq!(l.num_rx_queues, Some(2));
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert_eq!(l.xdp_mode, XdpMode::Native);
        assert_eq!(l.xdp_prog_id, Some(42));
        assert_eq!(l.oper_state, "UP");
        assert_eq!(l.stats.rx_dropped, 3);
        assert_eq!(l.stats.rx_missed, 2);
    }

    #[test]
    fn link_without_xdp_and_promiscuous() {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up | LinkFlags::Promisc;
        m.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Xdp(vec![LinkXdp::Attached(XdpAttached::None)]),
        ];
        let l = link_from_message(&m);
        assert!(l.promisc);
        assert_eq!(l.xdp_mode, XdpMode::None);
        assert_eq!(l.xdp_prog_id, None);
        assert_eq!(l.kind, None);
    }

    #[test]
    fn qdisc_stats_prefer_stats2() {
        use pktio_host::netlink::route::types::tc::{TcHandle, TcStatsQueue};
        let mut t = TcMessage::default();
        t.header.parent = TcHandle::ROOT;
        let mut qs = TcStatsQueue::default();
        qs.drops = 12;
        qs.requeues = 3;
        t.attributes = vec![
            TcAttribute::Kind("fq_codel".into()),
            TcAttribute::Stats2(vec![TcStats2::Queue(qs)]),
        ];
        let q = qdisc_from_message(&t);
        assert!(q.root);
        assert_eq!(q.kind, "fq_codel");
        assert_eq!(q.drops, 12);
        assert_eq!(q.requeues, 3);
    }
}
