//! UDP, and whole Ethernet/IPv4/UDP frames.

use std::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetFrame, ETHERNET_HEADER_LEN};
use super::ipv4::{emit_header, Ipv4Packet, IPV4_HEADER_LEN};
use super::WireError;

/// Bytes in a UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buf` after checking the header and the length field.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < UDP_HEADER_LEN {
            return Err(WireError);
        }
        let len = u16::from_be_bytes([b[4], b[5]]) as usize;
        if len < UDP_HEADER_LEN || len > b.len() {
            return Err(WireError);
        }
        Ok(UdpPacket { buf })
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }
    /// The payload (up to the length field).
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let len = u16::from_be_bytes([b[4], b[5]]) as usize;
        &b[UDP_HEADER_LEN..len]
    }
}

/// The fields of an Ethernet/IPv4/UDP frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// Headers before the UDP payload.
const HEADERS: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;

impl UdpFrame {
    /// The smallest frame (headers only, no FCS): 42 bytes.
    pub const MIN_LEN: usize = HEADERS;

    /// Writes a frame of exactly `frame_len` bytes (without FCS; 60 gives a
    /// 64-byte frame on the wire) into `out`, with `payload` at the start of
    /// the UDP payload and zeros after it. Returns `frame_len`.
    ///
    /// # Errors
    /// When `frame_len` is below [`Self::MIN_LEN`], above 65535 + 14, larger
    /// than `out`, or too small for `payload`.
    pub fn emit(
        &self,
        payload: &[u8],
        frame_len: usize,
        out: &mut [u8],
    ) -> Result<usize, WireError> {
        if frame_len < HEADERS
            || frame_len > out.len()
            || frame_len - HEADERS < payload.len()
            || frame_len - ETHERNET_HEADER_LEN > u16::MAX as usize
        {
            return Err(WireError);
        }
        let out = &mut out[..frame_len];
        let mut eth = EthernetFrame::new_checked(&mut *out)?;
        eth.set_dst(self.dst_mac);
        eth.set_src(self.src_mac);
        eth.set_ethertype(EtherType::IPV4);
        let ip = &mut out[ETHERNET_HEADER_LEN..];
        let udp_len = ip.len() - IPV4_HEADER_LEN;
        emit_header(ip, self.src_ip, self.dst_ip, 17, udp_len);
        let udp = &mut ip[IPV4_HEADER_LEN..];
        udp[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        udp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]); // checksum optional over IPv4
        let data = &mut udp[UDP_HEADER_LEN..];
        data[..payload.len()].copy_from_slice(payload);
        data[payload.len()..].fill(0);
        Ok(frame_len)
    }
}

/// What [`parse_udp`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpView<'a> {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source address.
    pub src_ip: Ipv4Addr,
    /// Destination address.
    pub dst_ip: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// UDP payload.
    pub payload: &'a [u8],
}

/// Parses an untagged Ethernet/IPv4/UDP frame; `None` for anything else or
/// anything malformed (never panics).
pub fn parse_udp(frame: &[u8]) -> Option<UdpView<'_>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(&frame[ETHERNET_HEADER_LEN..]).ok()?;
    if ip.protocol() != 17 {
        return None;
    }
    let start = ETHERNET_HEADER_LEN + ip.header_len();
    let end = ETHERNET_HEADER_LEN + ip.total_len();
    let udp = UdpPacket::new_checked(&frame[start..end]).ok()?;
    let plen = udp.payload().len();
    let pstart = start + UDP_HEADER_LEN;
    Some(UdpView {
        src_mac: eth.src(),
        dst_mac: eth.dst(),
        src_ip: ip.src(),
        dst_ip: ip.dst(),
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
        payload: &frame[pstart..pstart + plen],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> UdpFrame {
        UdpFrame {
            src_mac: [2, 0, 0xc6, 0x12, 0, 1],
            dst_mac: [2, 0, 0xc6, 0x12, 0, 2],
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            src_port: 9,
            dst_port: 4242,
        }
    }

    #[test]
    fn sixty_byte_frame_matches_fixture() {
        let mut out = [0xffu8; 64];
        assert_eq!(spec().emit(b"hi", 60, &mut out), Ok(60));
        #[rustfmt::skip]
        let want: [u8; 44] = [
            2, 0, 0xc6, 0x12, 0, 2, 2, 0, 0xc6, 0x12, 0, 1, 0x08, 0x00,
            0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
            0, 9, 0x10, 0x92, 0, 26, 0, 0, b'h', b'i',
        ];
        // Compare all but the IP checksum, then check the checksum itself.
        assert_eq!(&out[..24], &want[..24]);
        assert_eq!(&out[26..44], &want[26..44]);
        assert!(out[44..60].iter().all(|&b| b == 0));
        assert_eq!(out[60], 0xff, "nothing written past frame_len");
        let v = parse_udp(&out[..60]).unwrap();
        assert_eq!(v.dst_port, 4242);
        assert_eq!(&v.payload[..2], b"hi");
        assert_eq!(v.payload.len(), 18);
        assert!(Ipv4Packet::new_checked(&out[14..60]).unwrap().checksum_ok());
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut out = [0u8; 100];
        assert!(spec().emit(b"", 41, &mut out).is_err());
        assert!(spec().emit(b"", 101, &mut out).is_err());
        assert!(spec().emit(&[1; 20], 60, &mut out).is_err());
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(len in 42usize..1515, seed in any::<u8>()) {
            let payload: Vec<u8> = (0..(len - 42).min(32)).map(|i| seed.wrapping_add(i as u8)).collect();
            let mut out = vec![0u8; 1514];
            spec().emit(&payload, len, &mut out).unwrap();
            let v = parse_udp(&out[..len]).unwrap();
            prop_assert_eq!(&v.payload[..payload.len()], &payload[..]);
            prop_assert_eq!(v.payload.len(), len - 42);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_udp(&bytes);
        }
    }
}
