//! A frame taken apart field by field, for the reference evaluator and for
//! one-line packet summaries.
//!
//! Every field is an `Option`: `None` when the bytes it occupies lie beyond
//! the end of the captured data (short and truncated frames never panic).
//! Only the layers the filter language speaks about are dissected:
//! Ethernet, at most one 802.1Q/802.1ad tag, IPv4 (options skipped with the
//! header length, fragments recognised), the IPv6 fixed header (extension
//! headers are *not* walked), ARP, and the ports of TCP, UDP and SCTP, the
//! type and code of ICMP and ICMPv6, and TCP's flags.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ast::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};
use pktio_host::bytes::{array as arr, be_u16 as u16_at, u8_at};

/// A dissected frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dissected<'a> {
    /// The captured bytes.
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()` for a truncated capture).
    pub wire_len: usize,
    /// Destination MAC (bytes 0..6).
    pub eth_dst: Option<[u8; 6]>,
    /// Source MAC (bytes 6..12).
    pub eth_src: Option<[u8; 6]>,
    /// The EtherType field right after the addresses (bytes 12..14): the TPID
    /// for a tagged frame.
    pub outer_type: Option<u16>,
    /// The VLAN tag, if the frame carries one.
    pub vlan: Option<VlanTag>,
    /// The EtherType of the payload: after the tag for a tagged frame.
    pub ethertype: Option<u16>,
    /// Offset of the network header: 14, or 18 behind a tag.
    pub l3_offset: usize,
    /// The network layer.
    pub net: Network,
}

/// An 802.1Q / 802.1ad tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanTag {
    /// 0x8100 or 0x88a8.
    pub tpid: u16,
    /// The tag control information (priority, DEI, VLAN ID), if captured.
    pub tci: Option<u16>,
}

impl VlanTag {
    /// The 12-bit VLAN ID.
    pub fn vid(&self) -> Option<u16> {
        self.tci.map(|t| t & 0x0fff)
    }
}

/// The network layer of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// No EtherType (frame too short).
    None,
    /// IPv4.
    Ipv4(Ipv4),
    /// IPv6.
    Ipv6(Ipv6),
    /// ARP.
    Arp(Arp),
    /// Another EtherType.
    Other(u16),
}

/// IPv4 header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// Header length in bytes (IHL × 4, as written; not validated).
    pub header_len: Option<usize>,
    /// Total length field.
    pub total_len: Option<u16>,
    /// Flags and fragment offset (the 16-bit field).
    pub frag: Option<u16>,
    /// TTL.
    pub ttl: Option<u8>,
    /// Protocol.
    pub proto: Option<u8>,
    /// Source address.
    pub src: Option<Ipv4Addr>,
    /// Destination address.
    pub dst: Option<Ipv4Addr>,
    /// The transport header, on a first (or only) fragment with a known
    /// header length.
    pub transport: Option<Transport>,
}

impl Ipv4 {
    /// The fragment offset (in 8-byte units), if captured.
    pub fn frag_offset(&self) -> Option<u16> {
        self.frag.map(|f| f & 0x1fff)
    }

    /// Whether more fragments follow.
    pub fn more_fragments(&self) -> Option<bool> {
        self.frag.map(|f| f & 0x2000 != 0)
    }
}

/// IPv6 fixed-header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    /// Payload length field.
    pub payload_len: Option<u16>,
    /// Next header (of the fixed header: extension headers are not walked).
    pub next_header: Option<u8>,
    /// Hop limit.
    pub hop_limit: Option<u8>,
    /// Source address.
    pub src: Option<Ipv6Addr>,
    /// Destination address.
    pub dst: Option<Ipv6Addr>,
    /// The transport header right after the fixed header.
    pub transport: Option<Transport>,
}

/// ARP (Ethernet/IPv4 layout) fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Operation (1 request, 2 reply).
    pub op: Option<u16>,
    /// Sender hardware address.
    pub sha: Option<[u8; 6]>,
    /// Sender protocol address.
    pub spa: Option<Ipv4Addr>,
    /// Target protocol address.
    pub tpa: Option<Ipv4Addr>,
}

/// The first bytes of a transport header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transport {
    /// IP protocol number.
    pub proto: u8,
    /// Offset of the header in the frame.
    pub offset: usize,
    /// Source port (TCP, UDP, SCTP).
    pub src_port: Option<u16>,
    /// Destination port (TCP, UDP, SCTP).
    pub dst_port: Option<u16>,
    /// ICMP / ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP / ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// TCP flags (byte 13).
    pub tcp_flags: Option<u8>,
}

fn transport(d: &[u8], proto: u8, offset: usize) -> Transport {
    let ports = matches!(proto, 6 | 17 | 132);
    let icmp = matches!(proto, 1 | 58);
    Transport {
        proto,
        offset,
        src_port: if ports { u16_at(d, offset) } else { None },
        dst_port: if ports { u16_at(d, offset + 2) } else { None },
        icmp_type: if icmp { u8_at(d, offset) } else { None },
        icmp_code: if icmp { u8_at(d, offset + 1) } else { None },
        tcp_flags: if proto == 6 {
            u8_at(d, offset + 13)
        } else {
            None
        },
    }
}

impl<'a> Dissected<'a> {
    /// Dissects `data`, whose length on the wire was `wire_len` (use
    /// `data.len()` for a whole frame).
    pub fn new(data: &'a [u8], wire_len: usize) -> Dissected<'a> {
        let outer_type = u16_at(data, 12);
        let tagged = matches!(outer_type, Some(ETH_P_8021Q | ETH_P_8021AD));
        let (vlan, ethertype, l3) = match outer_type {
            Some(tpid) if tagged => (
                Some(VlanTag {
                    tpid,
                    tci: u16_at(data, 14),
                }),
                u16_at(data, 16),
                18,
            ),
            other => (None, other, 14),
        };
        let net = match ethertype {
            None => Network::None,
            Some(ETH_P_IP) => Network::Ipv4(Self::ipv4(data, l3)),
            Some(ETH_P_IPV6) => Network::Ipv6(Self::ipv6(data, l3)),
            Some(ETH_P_ARP) => Network::Arp(Arp {
                op: u16_at(data, l3 + 6),
                sha: arr(data, l3 + 8),
                spa: arr::<4>(data, l3 + 14).map(Ipv4Addr::from),
                tpa: arr::<4>(data, l3 + 24).map(Ipv4Addr::from),
            }),
            Some(t) => Network::Other(t),
        };
        Dissected {
            data,
            wire_len,
            eth_dst: arr(data, 0),
            eth_src: arr(data, 6),
            outer_type,
            vlan,
            ethertype,
            l3_offset: l3,
            net,
        }
    }

    fn ipv4(d: &[u8], l3: usize) -> Ipv4 {
        let header_len = u8_at(d, l3).map(|b| usize::from(b & 0x0f) * 4);
        let frag = u16_at(d, l3 + 6);
        let proto = u8_at(d, l3 + 9);
        // Ports and ICMP types only on the first fragment (offset 0), as in
        // pcap: later fragments carry no transport header.
        let transport = match (header_len, frag, proto) {
            (Some(hl), Some(f), Some(p)) if f & 0x1fff == 0 => Some(transport(d, p, l3 + hl)),
            _ => None,
        };
        Ipv4 {
            header_len,
            total_len: u16_at(d, l3 + 2),
            frag,
            ttl: u8_at(d, l3 + 8),
            proto,
            src: arr::<4>(d, l3 + 12).map(Ipv4Addr::from),
            dst: arr::<4>(d, l3 + 16).map(Ipv4Addr::from),
            transport,
        }
    }

    fn ipv6(d: &[u8], l3: usize) -> Ipv6 {
        let next_header = u8_at(d, l3 + 6);
        Ipv6 {
            payload_len: u16_at(d, l3 + 4),
            next_header,
            hop_limit: u8_at(d, l3 + 7),
            src: arr::<16>(d, l3 + 8).map(Ipv6Addr::from),
            dst: arr::<16>(d, l3 + 24).map(Ipv6Addr::from),
            transport: next_header.map(|p| transport(d, p, l3 + 40)),
        }
    }

    /// The transport header, for IPv4 or IPv6.
    pub fn transport(&self) -> Option<&Transport> {
        match &self.net {
            Network::Ipv4(ip) => ip.transport.as_ref(),
            Network::Ipv6(ip) => ip.transport.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_of_a_frame_dissects_without_panicking() {
        let mut f = vec![0u8; 80];
        f[12..14].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
        f[14..16].copy_from_slice(&0x2064u16.to_be_bytes());
        f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
        f[18] = 0x46; // IHL 6: 4 bytes of options
        f[18 + 9] = 6;
        f[18 + 24..18 + 26].copy_from_slice(&443u16.to_be_bytes());
        for n in 0..=f.len() {
            let d = Dissected::new(&f[..n], f.len());
            if n >= 18 + 24 + 2 {
                assert_eq!(d.transport().and_then(|t| t.src_port), Some(443));
            }
            if n >= 16 {
                assert_eq!(d.vlan.and_then(|v| v.vid()), Some(100));
            }
        }
        let d = Dissected::new(&f, f.len());
        assert_eq!(d.l3_offset, 18);
        match d.net {
            Network::Ipv4(ip) => {
                assert_eq!(ip.header_len, Some(24));
                assert_eq!(ip.transport.map(|t| t.offset), Some(42));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn later_fragments_have_no_transport() {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        f[14] = 0x45;
        f[14 + 6..14 + 8].copy_from_slice(&0x0001u16.to_be_bytes()); // offset 8 bytes
        f[14 + 9] = 17;
        let d = Dissected::new(&f, 60);
        assert!(d.transport().is_none());
        f[14 + 6..14 + 8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0
        let d = Dissected::new(&f, 60);
        assert_eq!(d.transport().map(|t| t.proto), Some(17));
    }
}
