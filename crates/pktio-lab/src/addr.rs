//! [`LabAddr`]: an IPv4 address that is guaranteed to lie in 198.18.0.0/15.
//!
//! 198.18.0.0/15 is reserved for benchmarking network devices (RFC 2544,
//! RFC 6815): nothing on the Internet answers there. Every address the lab
//! assigns, and every destination a lab user sends to, goes through this type,
//! so a typo cannot send test traffic anywhere else.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;

use crate::error::LabError;

/// An IPv4 address inside 198.18.0.0/15 (RFC 2544 benchmarking range).
///
/// ```
/// use pktio_lab::LabAddr;
/// let a: LabAddr = "198.18.3.2".parse()?;
/// assert_eq!(a.socket_addr(9).to_string(), "198.18.3.2:9");
/// assert!("8.8.8.8".parse::<LabAddr>().is_err());
/// # Ok::<(), pktio_lab::LabError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabAddr(Ipv4Addr);

impl LabAddr {
    /// The first address of the lab range: 198.18.0.0.
    pub const NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
    /// Prefix length of the lab range (/15: 198.18.0.0 to 198.19.255.255).
    pub const RANGE_PREFIX_LEN: u8 = 15;

    /// Checks that `ip` lies in 198.18.0.0/15.
    ///
    /// # Errors
    /// [`LabError::AddrOutsideLabRange`] for any other address.
    pub fn new(ip: Ipv4Addr) -> Result<Self, LabError> {
        if Self::in_range(ip) {
            Ok(LabAddr(ip))
        } else {
            Err(LabError::AddrOutsideLabRange(ip))
        }
    }

    /// Whether `ip` lies in 198.18.0.0/15.
    pub fn in_range(ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - u32::from(Self::RANGE_PREFIX_LEN));
        u32::from(ip) & mask == u32::from(Self::NETWORK)
    }

    /// Address number `host` (1..=254) of the lab's /24 number `slot`
    /// (0..=511, wrapping): `198.18.<slot>.<host>` for slots below 256,
    /// `198.19.<slot-256>.<host>` above.
    pub(crate) fn in_slot(slot: u16, host: u8) -> Self {
        let slot = u32::from(slot % 512);
        LabAddr(Ipv4Addr::from(
            u32::from(Self::NETWORK) + (slot << 8) + u32::from(host),
        ))
    }

    /// The address as a plain [`Ipv4Addr`].
    pub fn ip(self) -> Ipv4Addr {
        self.0
    }

    /// The four octets.
    pub fn octets(self) -> [u8; 4] {
        self.0.octets()
    }

    /// This address with a UDP/TCP port, for `bind`/`connect`/`send_to`.
    pub fn socket_addr(self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.0, port)
    }
}

impl FromStr for LabAddr {
    type Err = LabError;

    /// Parses a dotted quad and checks the range.
    fn from_str(s: &str) -> Result<Self, LabError> {
        let ip: Ipv4Addr = s
            .trim()
            .parse()
            .map_err(|_| LabError::AddrParse(s.to_string()))?;
        LabAddr::new(ip)
    }
}

impl TryFrom<Ipv4Addr> for LabAddr {
    type Error = LabError;
    fn try_from(ip: Ipv4Addr) -> Result<Self, LabError> {
        LabAddr::new(ip)
    }
}

impl fmt::Display for LabAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<LabAddr> for Ipv4Addr {
    fn from(a: LabAddr) -> Ipv4Addr {
        a.0
    }
}

impl From<LabAddr> for IpAddr {
    fn from(a: LabAddr) -> IpAddr {
        IpAddr::V4(a.0)
    }
}

impl From<LabAddr> for SocketAddr {
    /// The address with port 0.
    fn from(a: LabAddr) -> SocketAddr {
        SocketAddr::V4(a.socket_addr(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_outside_range() {
        for s in [
            "10.0.0.1",
            "198.20.0.1",
            "8.8.8.8",
            "198.17.255.255",
            "127.0.0.1",
            "0.0.0.0",
        ] {
            let ip: Ipv4Addr = s.parse().unwrap();
            assert!(
                matches!(LabAddr::new(ip), Err(LabError::AddrOutsideLabRange(x)) if x == ip),
                "{s} accepted"
            );
            assert!(s.parse::<LabAddr>().is_err(), "{s} parsed");
        }
    }

    #[test]
    fn accepts_inside_range() {
        for s in [
            "198.18.0.1",
            "198.19.255.254",
            "198.18.0.0",
            "198.19.255.255",
        ] {
            let a: LabAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            "198.18.0".parse::<LabAddr>(),
            Err(LabError::AddrParse(_))
        ));
        assert!(matches!(
            "::1".parse::<LabAddr>(),
            Err(LabError::AddrParse(_))
        ));
    }

    #[test]
    fn slots_cover_the_range_and_wrap() {
        assert_eq!(LabAddr::in_slot(0, 1).to_string(), "198.18.0.1");
        assert_eq!(LabAddr::in_slot(5, 2).to_string(), "198.18.5.2");
        assert_eq!(LabAddr::in_slot(255, 2).to_string(), "198.18.255.2");
        assert_eq!(LabAddr::in_slot(256, 1).to_string(), "198.19.0.1");
        assert_eq!(LabAddr::in_slot(511, 2).to_string(), "198.19.255.2");
        assert_eq!(LabAddr::in_slot(512, 1), LabAddr::in_slot(0, 1));
    }
}
