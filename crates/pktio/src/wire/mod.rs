//! Ethernet, IPv4 and UDP: build and parse frames, smoltcp style.
//!
//! Views are `Packet<T: AsRef<[u8]>>` with `new_checked` (after which no
//! accessor panics) and setters where `T: AsMut<[u8]>`. [`UdpFrame`] builds
//! the Ethernet/IPv4/UDP frames the generators and tests send, and
//! [`parse_udp`] reads them back. Pure code: no syscalls.

mod ethernet;
mod ipv4;
mod udp;

pub use ethernet::{swap_macs, EtherType, EthernetFrame, ETHERNET_HEADER_LEN};
pub use ipv4::{checksum, Ipv4Packet, IPV4_HEADER_LEN};
pub use udp::{parse_udp, UdpFrame, UdpPacket, UdpView, UDP_HEADER_LEN};

/// A frame or header was shorter than its fixed part, or its length fields
/// point past the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated or malformed packet")]
pub struct WireError;
