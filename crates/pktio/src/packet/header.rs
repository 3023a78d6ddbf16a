//! The per-packet TPACKET headers, as the one thing V2 and V3 differ in
//! where their logic is otherwise the same.
//!
//! A V2 frame starts with a `tpacket2_hdr`; a V3 TX frame and every packet
//! in a V3 RX block start with a `tpacket3_hdr`. Both carry the same fields
//! (status, wire length, captured length, MAC offset, timestamp) at
//! different offsets, so the frame ring ([`super::ring::FrameRing`]) and the
//! header parser ([`parse_header`]) are written once, generic over
//! [`FrameHeader`], instead of as `__v2_*` / `__v3_*` twins.
//!
//! Pure code: offsets and bounds-checked reads over byte slices.

use std::ops::Range;

use crate::sys::packet::{tpacket_align, Version, SOCKADDR_LL_LEN};
pub(crate) use pktio_host::bytes::{ne_u16 as read_u16, ne_u32 as read_u32};

mod sealed {
    pub trait Sealed {}
}

/// A TPACKET frame header layout: `tpacket2_hdr` ([`V2`]) or `tpacket3_hdr`
/// ([`V3`]). Sealed: the two kernel layouts are the only implementations.
pub trait FrameHeader: sealed::Sealed + Send + 'static {
    /// Printable name ("TPACKET_V2").
    const NAME: &'static str;
    /// `sizeof` the header struct.
    const SIZE: usize;
    /// Offset of `tp_status` (u32).
    const STATUS: usize;
    /// Offset of `tp_len` (u32): the packet's length on the wire.
    const LEN: usize;
    /// Offset of `tp_snaplen` (u32): bytes captured.
    const SNAPLEN: usize;
    /// Offset of `tp_mac` (u16): where the frame's data starts, from the header.
    const MAC: usize;
    /// Offset of `tp_sec` (u32).
    const SEC: usize;
    /// Offset of `tp_nsec` (u32).
    const NSEC: usize;
    /// Offset of `tp_next_offset` (u32, V3 only): the next packet in a block.
    const NEXT_OFFSET: Option<usize>;

    /// Where a TX frame's data starts: `tp_hdrlen - sizeof(struct sockaddr_ll)`
    /// = `TPACKET_ALIGN(sizeof(hdr))` (`tpacket_parse_header` without
    /// `PACKET_TX_HAS_OFF`).
    const TX_DATA: usize = tpacket_align(Self::SIZE);
    /// The kernel's `tp_hdrlen` (`TPACKET2_HDRLEN`, `TPACKET3_HDRLEN`): the
    /// smallest frame it accepts.
    const HDRLEN: usize = tpacket_align(Self::SIZE) + SOCKADDR_LL_LEN;
    /// Whether this is the `TPACKET_V3` layout.
    #[doc(hidden)]
    const IS_V3: bool;
}

/// The `PACKET_VERSION` of header layout `H`.
pub(crate) fn version_of<H: FrameHeader>() -> Version {
    if H::IS_V3 {
        Version::V3
    } else {
        Version::V2
    }
}

/// `struct tpacket2_hdr` (kernel 2.6.27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2;

/// `struct tpacket3_hdr` (kernel 3.2; its TX ring 4.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3;

impl sealed::Sealed for V2 {}
impl sealed::Sealed for V3 {}

impl FrameHeader for V2 {
    const NAME: &'static str = "TPACKET_V2";
    const SIZE: usize = 32;
    const STATUS: usize = 0;
    const LEN: usize = 4;
    const SNAPLEN: usize = 8;
    const MAC: usize = 12;
    const SEC: usize = 16;
    const NSEC: usize = 20;
    const NEXT_OFFSET: Option<usize> = None;
    const IS_V3: bool = false;
}

impl FrameHeader for V3 {
    const NAME: &'static str = "TPACKET_V3";
    const SIZE: usize = 48;
    const STATUS: usize = 20;
    const LEN: usize = 16;
    const SNAPLEN: usize = 12;
    const MAC: usize = 24;
    const SEC: usize = 4;
    const NSEC: usize = 8;
    const NEXT_OFFSET: Option<usize> = Some(0);
    const IS_V3: bool = true;
}

// The offsets above are the uapi's (asserted against libc in sys::packet).
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(V2::SIZE == size_of::<libc::tpacket2_hdr>());
    assert!(V2::STATUS == offset_of!(libc::tpacket2_hdr, tp_status));
    assert!(V2::LEN == offset_of!(libc::tpacket2_hdr, tp_len));
    assert!(V2::SNAPLEN == offset_of!(libc::tpacket2_hdr, tp_snaplen));
    assert!(V2::MAC == offset_of!(libc::tpacket2_hdr, tp_mac));
    assert!(V2::SEC == offset_of!(libc::tpacket2_hdr, tp_sec));
    assert!(V2::NSEC == offset_of!(libc::tpacket2_hdr, tp_nsec));
    assert!(V2::HDRLEN == libc::TPACKET2_HDRLEN);
    assert!(V3::SIZE == size_of::<libc::tpacket3_hdr>());
    assert!(V3::STATUS == offset_of!(libc::tpacket3_hdr, tp_status));
    assert!(V3::LEN == offset_of!(libc::tpacket3_hdr, tp_len));
    assert!(V3::SNAPLEN == offset_of!(libc::tpacket3_hdr, tp_snaplen));
    assert!(V3::MAC == offset_of!(libc::tpacket3_hdr, tp_mac));
    assert!(V3::SEC == offset_of!(libc::tpacket3_hdr, tp_sec));
    assert!(V3::NSEC == offset_of!(libc::tpacket3_hdr, tp_nsec));
    assert!(offset_of!(libc::tpacket3_hdr, tp_next_offset) == 0);
    assert!(V3::HDRLEN == libc::TPACKET3_HDRLEN);
};

/// One received packet, located inside a frame or a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketSpan {
    /// Byte offset of its header in the frame or block.
    pub header: usize,
    /// Where the captured bytes are, in the same frame or block.
    pub data: Range<usize>,
    /// Its length on the wire (`tp_len`); more than `data.len()` when the
    /// packet was truncated to fit.
    pub wire_len: u32,
    /// `tp_status` (`TP_STATUS_USER`, `TP_STATUS_LOSING`, `TP_STATUS_VLAN_VALID` …).
    pub status: u32,
    /// Timestamp, seconds (`tp_sec`).
    pub sec: u32,
    /// Timestamp, nanoseconds (`tp_nsec`).
    pub nsec: u32,
}

impl PacketSpan {
    /// Whether the captured bytes are fewer than the packet's length on the wire.
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < self.wire_len as u64
    }
}

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header itself runs past the end of its frame or block.
    #[error("packet header at offset {at} runs past the end ({limit} bytes)")]
    HeaderOutOfBounds {
        /// Header offset.
        at: usize,
        /// Size of the frame or block.
        limit: usize,
    },
    /// `tp_mac` + `tp_snaplen` point outside the frame or block.
    #[error("packet data at {start}..{end} runs past the end ({limit} bytes)")]
    DataOutOfBounds {
        /// Start of the data.
        start: usize,
        /// End of the data.
        end: usize,
        /// Size of the frame or block.
        limit: usize,
    },
}

/// Parses the `H` header at byte `at` of `bytes` (a V2 frame, or a V3 block)
/// and locates its packet data. Never panics: every offset the kernel wrote
/// is bounds-checked against `bytes`.
pub fn parse_header<H: FrameHeader>(bytes: &[u8], at: usize) -> Result<PacketSpan, HeaderError> {
    let limit = bytes.len();
    let oob = HeaderError::HeaderOutOfBounds { at, limit };
    let hdr_end = at.checked_add(H::SIZE).ok_or(oob)?;
    if hdr_end > limit {
        return Err(oob);
    }
    let field = |off: usize| read_u32(bytes, at + off).ok_or(oob);
    let status = field(H::STATUS)?;
    let wire_len = field(H::LEN)?;
    let snaplen = field(H::SNAPLEN)?;
    let sec = field(H::SEC)?;
    let nsec = field(H::NSEC)?;
    let mac = read_u16(bytes, at + H::MAC).ok_or(oob)? as usize;
    let start = at + mac;
    let end = start.saturating_add(snaplen as usize);
    // Data must lie after the header (it may not overwrite it) and inside.
    if end > limit || (snaplen > 0 && start < hdr_end) {
        return Err(HeaderError::DataOutOfBounds { start, end, limit });
    }
    Ok(PacketSpan {
        header: at,
        data: start..end,
        wire_len,
        status,
        sec,
        nsec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_frame(mac: u16, snaplen: u32, len: u32, size: usize) -> Vec<u8> {
        let mut f = vec![0u8; size];
        f[V2::STATUS..V2::STATUS + 4].copy_from_slice(&1u32.to_ne_bytes());
        f[V2::LEN..V2::LEN + 4].copy_from_slice(&len.to_ne_bytes());
        f[V2::SNAPLEN..V2::SNAPLEN + 4].copy_from_slice(&snaplen.to_ne_bytes());
        f[V2::MAC..V2::MAC + 2].copy_from_slice(&mac.to_ne_bytes());
        f
    }

    #[test]
    fn header_lengths_are_the_kernels() {
        assert_eq!(V2::HDRLEN, 52);
        assert_eq!(V3::HDRLEN, 68);
        assert_eq!(V2::TX_DATA, 32);
        assert_eq!(V3::TX_DATA, 48);
    }

    #[test]
    fn parses_a_v2_frame() {
        let f = v2_frame(66, 60, 60, 2048);
        let s = parse_header::<V2>(&f, 0).unwrap();
        assert_eq!(s.data, 66..126);
        assert_eq!(s.wire_len, 60);
        assert_eq!(s.status, 1);
        assert!(!s.truncated());
        let t = parse_header::<V2>(&v2_frame(66, 60, 1500, 2048), 0).unwrap();
        assert!(t.truncated());
    }

    #[test]
    fn rejects_data_outside_the_frame() {
        let f = v2_frame(2000, 100, 100, 2048);
        assert!(matches!(
            parse_header::<V2>(&f, 0),
            Err(HeaderError::DataOutOfBounds { .. })
        ));
        let f = v2_frame(66, u32::MAX, 100, 2048);
        assert!(parse_header::<V2>(&f, 0).is_err());
        // Data overlapping the header itself.
        let f = v2_frame(4, 10, 10, 2048);
        assert!(parse_header::<V2>(&f, 0).is_err());
        // A header that does not fit.
        assert!(matches!(
            parse_header::<V2>(&f[..20], 0),
            Err(HeaderError::HeaderOutOfBounds { .. })
        ));
        assert!(parse_header::<V3>(&f, usize::MAX - 3).is_err());
    }
}
