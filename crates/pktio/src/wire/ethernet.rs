//! Ethernet II header.

use super::WireError;

/// Bytes in an Ethernet header (no VLAN tag, no FCS).
pub const ETHERNET_HEADER_LEN: usize = 14;

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
}

/// Well-known EtherType values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
    /// 802.1Q VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IPv6.
    pub const IPV6: EtherType = EtherType(0x86dd);
}

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buf` after checking it holds a whole header.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < ETHERNET_HEADER_LEN {
            return Err(WireError);
        }
        Ok(EthernetFrame { buf })
    }

    /// Destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        mac(&self.buf.as_ref()[field::DST])
    }

    /// Source MAC.
    pub fn src(&self) -> [u8; 6] {
        mac(&self.buf.as_ref()[field::SRC])
    }

    /// EtherType.
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buf.as_ref()[field::ETHERTYPE];
        EtherType(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[ETHERNET_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    pub fn set_dst(&mut self, m: [u8; 6]) {
        self.buf.as_mut()[field::DST].copy_from_slice(&m);
    }
    /// Sets the source MAC.
    pub fn set_src(&mut self, m: [u8; 6]) {
        self.buf.as_mut()[field::SRC].copy_from_slice(&m);
    }
    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buf.as_mut()[field::ETHERTYPE].copy_from_slice(&t.0.to_be_bytes());
    }
    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[ETHERNET_HEADER_LEN..]
    }
}

fn mac(b: &[u8]) -> [u8; 6] {
    let mut m = [0; 6];
    m.copy_from_slice(b);
    m
}

/// Swaps the source and destination MAC of a frame in place (l2fwd).
/// Frames shorter than 12 bytes are left alone.
#[inline]
pub fn swap_macs(frame: &mut [u8]) {
    if frame.len() >= 12 {
        let (dst, rest) = frame.split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x02, // dst
        0x02, 0, 0, 0, 0, 0x01, // src
        0x08, 0x00, // IPv4
        0xaa, 0xbb,
    ];

    #[test]
    fn reads_fields() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
        assert!(EthernetFrame::new_checked(&FRAME[..13]).is_err());
    }

    #[test]
    fn swaps_macs() {
        let mut f = FRAME;
        swap_macs(&mut f);
        assert_eq!(&f[0..6], &FRAME[6..12]);
        assert_eq!(&f[6..12], &FRAME[0..6]);
        assert_eq!(&f[12..], &FRAME[12..]);
        let mut short = [1u8, 2, 3];
        swap_macs(&mut short);
        assert_eq!(short, [1, 2, 3]);
    }
}
