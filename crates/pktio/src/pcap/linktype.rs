//! The link types `-r` understands, and the Ethernet view of their records
//! that the filter and the summaries read.
//!
//! The filter language ([`crate::filter`]) reads Ethernet frames. A record
//! of another link type is shown to it (and to [`super::summary`]) as an
//! Ethernet frame made up for the purpose: the link header is replaced by
//! a 14-byte Ethernet header carrying the same protocol, so every offset
//! past it — IP, ports, flags — is where the filter expects it. The record
//! itself is never changed: a file read with a filter and written again
//! holds the original records, byte for byte, under the original link type.
//!
//! What the made-up header cannot carry: a cooked (`any`) capture has no
//! destination MAC (it reads as `00:00:00:00:00:00`), and its source MAC is
//! the link-layer address the kernel reported, if it was 6 bytes long;
//! `len`/`greater`/`less` compare against the Ethernet-framed length
//! (the record's length − link header + 14).
//!
//! References: <https://www.tcpdump.org/linktypes.html>,
//! `LINKTYPE_LINUX_SLL` (`sll.h`), `LINKTYPE_LINUX_SLL2`.

use std::fmt;

/// `LINKTYPE_LINUX_SLL`: Linux cooked capture v1 (`tcpdump -i any` before
/// libpcap 1.10).
pub const LINKTYPE_LINUX_SLL: u16 = 113;
/// `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2 (`tcpdump -i any` with
/// libpcap 1.10 and later, when asked for it).
pub const LINKTYPE_LINUX_SLL2: u16 = 276;
/// `LINKTYPE_RAW`: raw IPv4 or IPv6, no link header.
pub const LINKTYPE_RAW: u16 = 101;
/// `LINKTYPE_IPV4`: raw IPv4.
pub const LINKTYPE_IPV4: u16 = 228;
/// `LINKTYPE_IPV6`: raw IPv6.
pub const LINKTYPE_IPV6: u16 = 229;
/// `DLT_RAW` as some systems write it in files (12 on most BSDs, 14 on
/// OpenBSD): raw IP, like [`LINKTYPE_RAW`].
pub const DLT_RAW_ALIASES: [u16; 2] = [12, 14];

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// A link type `-r` can filter and show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): a 16-byte cooked header.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): a 20-byte cooked header.
    LinuxSll2,
    /// Raw IP (101, and 12/14 as `DLT_RAW`): the version nibble says which.
    RawIp,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
}

impl LinkType {
    /// The link type of a file's `linktype` field, or `None` when it is not
    /// one of the above.
    pub fn from_code(code: u16) -> Option<LinkType> {
        Some(match code {
            super::LINKTYPE_ETHERNET => LinkType::Ethernet,
            LINKTYPE_LINUX_SLL => LinkType::LinuxSll,
            LINKTYPE_LINUX_SLL2 => LinkType::LinuxSll2,
            LINKTYPE_RAW => LinkType::RawIp,
            c if DLT_RAW_ALIASES.contains(&c) => LinkType::RawIp,
            LINKTYPE_IPV4 => LinkType::Ipv4,
            LINKTYPE_IPV6 => LinkType::Ipv6,
            _ => return None,
        })
    }

    /// The names of the supported link types, for an error message.
    pub const SUPPORTED: &'static str = "EN10MB (1), LINUX_SLL (113), LINUX_SLL2 (276), \
        RAW (101, 12, 14), IPV4 (228), IPV6 (229)";

    /// Bytes of link header before the network layer.
    pub fn header_len(self) -> usize {
        match self {
            LinkType::Ethernet => 14,
            LinkType::LinuxSll => 16,
            LinkType::LinuxSll2 => 20,
            LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => 0,
        }
    }

    /// The record as an Ethernet frame, and its length on the wire as one:
    /// the record itself for Ethernet, else a copy in `scratch` with a
    /// made-up Ethernet header in place of the link header (see the module
    /// docs). A record shorter than its link header gives an empty frame.
    pub fn as_ethernet<'a>(
        self,
        data: &'a [u8],
        orig_len: u32,
        scratch: &'a mut Vec<u8>,
    ) -> (&'a [u8], u32) {
        let hl = self.header_len();
        if self == LinkType::Ethernet {
            return (data, orig_len);
        }
        let wire = (orig_len as usize).saturating_sub(hl) + 14;
        scratch.clear();
        let Some(payload) = data.get(hl..) else {
            return (&scratch[..], wire as u32);
        };
        let be16 = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
        let (src, proto): ([u8; 6], u16) = match self {
            LinkType::LinuxSll => {
                // pkttype, hatype, halen, addr[8], protocol
                let halen = be16(4);
                let mut src = [0u8; 6];
                if halen == 6 {
                    src.copy_from_slice(&data[6..12]);
                }
                (src, be16(14))
            }
            LinkType::LinuxSll2 => {
                // protocol, reserved, ifindex, hatype, pkttype, halen, addr[8]
                let mut src = [0u8; 6];
                if data[11] == 6 {
                    src.copy_from_slice(&data[12..18]);
                }
                (src, be16(0))
            }
            LinkType::Ipv4 => ([0; 6], ETH_P_IP),
            LinkType::Ipv6 => ([0; 6], ETH_P_IPV6),
            _ => (
                [0; 6],
                match payload.first().map(|b| b >> 4) {
                    Some(4) => ETH_P_IP,
                    Some(6) => ETH_P_IPV6,
                    _ => 0,
                },
            ),
        };
        scratch.extend_from_slice(&[0; 6]);
        scratch.extend_from_slice(&src);
        scratch.extend_from_slice(&proto.to_be_bytes());
        scratch.extend_from_slice(payload);
        (&scratch[..], wire as u32)
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkType::Ethernet => "EN10MB (Ethernet)",
            LinkType::LinuxSll => "LINUX_SLL (Linux cooked v1)",
            LinkType::LinuxSll2 => "LINUX_SLL2 (Linux cooked v2)",
            LinkType::RawIp => "RAW (Raw IP)",
            LinkType::Ipv4 => "IPV4 (Raw IPv4)",
            LinkType::Ipv6 => "IPV6 (Raw IPv6)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 4] = [0x45, 0, 0, 20];

    #[test]
    fn codes() {
        assert_eq!(LinkType::from_code(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_code(113), Some(LinkType::LinuxSll));
        assert_eq!(LinkType::from_code(276), Some(LinkType::LinuxSll2));
        for c in [101, 12, 14] {
            assert_eq!(LinkType::from_code(c), Some(LinkType::RawIp));
        }
        assert_eq!(LinkType::from_code(105), None); // 802.11
        assert_eq!(LinkType::from_code(0), None); // BSD loopback
    }

    #[test]
    fn cooked_v1_becomes_ethernet_with_its_protocol_and_source() {
        let mut rec = vec![0, 0, 0, 1, 0, 6, 2, 0, 0xc6, 0x12, 0, 1, 0, 0, 0x08, 0x00];
        rec.extend_from_slice(&IP);
        let mut s = Vec::new();
        let (f, wire) = LinkType::LinuxSll.as_ethernet(&rec, 100, &mut s);
        assert_eq!(
            f,
            &[0, 0, 0, 0, 0, 0, 2, 0, 0xc6, 0x12, 0, 1, 8, 0, 0x45, 0, 0, 20]
        );
        assert_eq!(wire, 98);
    }

    #[test]
    fn cooked_v2_and_raw() {
        let mut rec = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6];
        rec.extend_from_slice(&[2, 0, 0xc6, 0x12, 0, 2, 0, 0]);
        rec.push(0x60);
        let mut s = Vec::new();
        let (f, _) = LinkType::LinuxSll2.as_ethernet(&rec, 21, &mut s);
        assert_eq!(&f[6..], &[2, 0, 0xc6, 0x12, 0, 2, 0x86, 0xdd, 0x60]);
        let (f, wire) = LinkType::RawIp.as_ethernet(&IP, 20, &mut s);
        assert_eq!((&f[12..14], wire), (&[8u8, 0][..], 34));
        // Shorter than the link header: an empty frame, no panic.
        let (f, _) = LinkType::LinuxSll2.as_ethernet(&rec[..5], 5, &mut s);
        assert!(f.is_empty());
        let (f, _) = LinkType::RawIp.as_ethernet(&[], 0, &mut s);
        assert_eq!(&f[12..14], &[0, 0]);
    }
}
