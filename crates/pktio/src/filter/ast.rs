//! The filter's syntax tree. [`Expr`]'s `Display` prints a canonical,
//! fully parenthesised form that parses back to the same tree.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A filter expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// One primitive (`tcp`, `host 198.18.0.1`, …).
    Prim(Primitive),
    /// `not e`
    Not(Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
}

impl std::ops::Not for Expr {
    type Output = Expr;

    /// `not self`.
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

impl Expr {
    /// `self and other`.
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }

    /// `self or other`.
    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }

    /// Number of primitives in the expression.
    pub fn primitives(&self) -> usize {
        match self {
            Expr::Prim(_) => 1,
            Expr::Not(e) => e.primitives(),
            Expr::And(a, b) | Expr::Or(a, b) => a.primitives() + b.primitives(),
        }
    }
}

/// Which address or port of a packet a primitive looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// `src`
    Src,
    /// `dst`
    Dst,
    /// `src or dst` (the default: `host`, `port`, …)
    Either,
    /// `src and dst`
    Both,
}

/// The IP version(s) a protocol primitive applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 or IPv6 (`proto 6`, `tcp`).
    Any,
    /// IPv4 only (`ip proto 6`, `icmp`).
    V4,
    /// IPv6 only (`ip6 proto 6`, `icmp6`).
    V6,
}

/// Where an IPv4 `host`/`net` primitive looks (`ip host`, `arp host`, or
/// both, pcap's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum V4Scope {
    /// `ip host`: IPv4 source/destination.
    Ip,
    /// `arp host`: ARP sender/target protocol address.
    Arp,
    /// `host`: either of the above.
    IpOrArp,
}

/// An address with a prefix length (`host` is a prefix of 32 or 128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpNet {
    /// IPv4 network, with where to look.
    V4 {
        /// The network address (host bits are zero).
        addr: Ipv4Addr,
        /// Prefix length, 0..=32.
        prefix: u8,
        /// IPv4 header, ARP, or either.
        scope: V4Scope,
    },
    /// IPv6 network.
    V6 {
        /// The network address (host bits are zero).
        addr: Ipv6Addr,
        /// Prefix length, 0..=128.
        prefix: u8,
    },
}

/// Which transport protocols a port primitive applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortProto {
    /// TCP, UDP or SCTP (`port 53`).
    Any,
    /// `tcp port`
    Tcp,
    /// `udp port`
    Udp,
    /// `sctp port`
    Sctp,
}

impl PortProto {
    /// IP protocol numbers this applies to.
    pub fn protocols(self) -> &'static [u8] {
        match self {
            PortProto::Any => &[6, 17, 132],
            PortProto::Tcp => &[6],
            PortProto::Udp => &[17],
            PortProto::Sctp => &[132],
        }
    }
}

/// A comparison of the frame length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CmpOp {
    /// `=` / `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// Applies the comparison.
    pub fn holds(self, a: u64, b: u64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of RARP (`host` and `net` match its addresses too, as in pcap).
pub const ETH_P_RARP: u16 = 0x8035;
/// EtherType (TPID) of an 802.1Q VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad (QinQ service) tag.
pub const ETH_P_8021AD: u16 = 0x88a8;

/// One primitive of the filter language (see the [module docs](super)
/// for what each matches).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `ether src|dst|host MAC` (`ether src and dst MAC` too).
    Ether {
        /// Which address.
        dir: Dir,
        /// The MAC address.
        mac: [u8; 6],
    },
    /// `vlan` or `vlan ID`.
    Vlan(Option<u16>),
    /// `ip`, `ip6`, `arp`, `ether proto N`: the EtherType field (after the
    /// tags of the `vlan` primitives before it).
    EtherType(u16),
    /// `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `[ip|ip6] proto N`.
    Proto {
        /// IP version(s).
        family: Family,
        /// IP protocol / IPv6 next header number.
        proto: u8,
    },
    /// `[ip|ip6|arp] [src|dst] host ADDR`, `… net CIDR`.
    Net {
        /// Which address.
        dir: Dir,
        /// The address or network.
        net: IpNet,
    },
    /// `[tcp|udp|sctp] [src|dst] port N`, `… portrange A-B`.
    Port {
        /// Transport protocol(s).
        proto: PortProto,
        /// Which port.
        dir: Dir,
        /// Lowest port matched.
        lo: u16,
        /// Highest port matched (equal to `lo` for `port`).
        hi: u16,
    },
    /// `len OP N`, `greater N` (`len >= N`), `less N` (`len <= N`).
    Len {
        /// The comparison.
        op: CmpOp,
        /// The length compared with.
        value: u32,
    },
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::Src => "src",
            Dir::Dst => "dst",
            Dir::Either => "src or dst",
            Dir::Both => "src and dst",
        })
    }
}

fn fmt_mac(f: &mut fmt::Formatter<'_>, mac: &[u8; 6]) -> fmt::Result {
    write!(
        f,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Primitive::Ether { dir, mac } => {
                write!(f, "ether {dir} ")?;
                fmt_mac(f, mac)
            }
            Primitive::Vlan(None) => f.write_str("vlan"),
            Primitive::Vlan(Some(id)) => write!(f, "vlan {id}"),
            Primitive::EtherType(ETH_P_IP) => f.write_str("ip"),
            Primitive::EtherType(ETH_P_IPV6) => f.write_str("ip6"),
            Primitive::EtherType(ETH_P_ARP) => f.write_str("arp"),
            Primitive::EtherType(t) => write!(f, "ether proto 0x{t:04x}"),
            Primitive::Proto { family, proto } => match (family, proto) {
                (Family::Any, 6) => f.write_str("tcp"),
                (Family::Any, 17) => f.write_str("udp"),
                (Family::Any, 132) => f.write_str("sctp"),
                (Family::V4, 1) => f.write_str("icmp"),
                (Family::V6, 58) => f.write_str("icmp6"),
                (Family::Any, p) => write!(f, "proto {p}"),
                (Family::V4, p) => write!(f, "ip proto {p}"),
                (Family::V6, p) => write!(f, "ip6 proto {p}"),
            },
            Primitive::Net { dir, net } => match net {
                IpNet::V4 {
                    addr,
                    prefix,
                    scope,
                } => {
                    let q = match scope {
                        V4Scope::Ip => "ip ",
                        V4Scope::Arp => "arp ",
                        V4Scope::IpOrArp => "",
                    };
                    if *prefix == 32 {
                        write!(f, "{q}{dir} host {addr}")
                    } else {
                        write!(f, "{q}{dir} net {addr}/{prefix}")
                    }
                }
                IpNet::V6 { addr, prefix } => {
                    if *prefix == 128 {
                        write!(f, "ip6 {dir} host {addr}")
                    } else {
                        write!(f, "ip6 {dir} net {addr}/{prefix}")
                    }
                }
            },
            Primitive::Port { proto, dir, lo, hi } => {
                let q = match proto {
                    PortProto::Any => "",
                    PortProto::Tcp => "tcp ",
                    PortProto::Udp => "udp ",
                    PortProto::Sctp => "sctp ",
                };
                if lo == hi {
                    write!(f, "{q}{dir} port {lo}")
                } else {
                    write!(f, "{q}{dir} portrange {lo}-{hi}")
                }
            }
            Primitive::Len { op, value } => write!(f, "len {} {value}", op.symbol()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Prim(p) => write!(f, "{p}"),
            Expr::Not(e) => write!(f, "not ({e})"),
            Expr::And(a, b) => write!(f, "({a}) and ({b})"),
            Expr::Or(a, b) => write!(f, "({a}) or ({b})"),
        }
    }
}
