//! IPv4 header.

use std::net::Ipv4Addr;

use super::WireError;

/// Bytes in an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buf` after checking version, header length and total length.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < IPV4_HEADER_LEN || b[0] >> 4 != 4 {
            return Err(WireError);
        }
        let ihl = (b[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([b[2], b[3]]) as usize;
        if ihl < IPV4_HEADER_LEN || total < ihl || total > b.len() {
            return Err(WireError);
        }
        Ok(Ipv4Packet { buf })
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        (self.buf.as_ref()[0] & 0x0f) as usize * 4
    }
    /// Total length (header and payload).
    pub fn total_len(&self) -> usize {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]]) as usize
    }
    /// Protocol number (17 = UDP).
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[9]
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// Whether the header checksum is right.
    pub fn checksum_ok(&self) -> bool {
        checksum(&self.buf.as_ref()[..self.header_len()]) == 0
    }
    /// The payload (up to the total length).
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..self.total_len()]
    }
}

/// The Internet checksum (RFC 1071) of `data`: 0 over a header that
/// includes a correct checksum field.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a 20-byte IPv4 header (DF set, TTL 64) with its checksum.
pub(crate) fn emit_header(
    out: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
) {
    let total = (IPV4_HEADER_LEN + payload_len) as u16;
    out[0] = 0x45;
    out[1] = 0;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    out[4..6].copy_from_slice(&0u16.to_be_bytes());
    out[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    out[8] = 64;
    out[9] = protocol;
    out[10..12].copy_from_slice(&[0, 0]);
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&out[..IPV4_HEADER_LEN]);
    out[10..12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_and_round_trip() {
        // The worked example of RFC 1071 section 3: sum 0xddf2 -> checksum 0x220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        let mut b = [0u8; 28];
        emit_header(
            &mut b,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            17,
            8,
        );
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.checksum_ok());
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.payload().len(), 8);
        assert!(
            Ipv4Packet::new_checked(&b[..27]).is_err(),
            "total length past the end"
        );
    }
}
