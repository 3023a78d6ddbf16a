//! `LabAddr` accepts exactly 198.18.0.0/15 (no root needed).

use std::net::Ipv4Addr;

use pktio_lab::{LabAddr, LabError};

#[test]
fn refuses_addresses_outside_the_lab_range() {
    for s in ["10.0.0.1", "198.20.0.1", "8.8.8.8"] {
        let ip: Ipv4Addr = s.parse().unwrap();
        let err = LabAddr::new(ip).unwrap_err();
        assert!(
            matches!(err, LabError::AddrOutsideLabRange(x) if x == ip),
            "{s}: {err}"
        );
        assert!(err.to_string().contains("198.18.0.0/15"), "{err}");
        assert!(s.parse::<LabAddr>().is_err(), "{s} parsed");
    }
}

#[test]
fn accepts_addresses_inside_the_lab_range() {
    for s in ["198.18.0.1", "198.19.255.254"] {
        let a = LabAddr::new(s.parse().unwrap()).unwrap();
        assert_eq!(a, s.parse::<LabAddr>().unwrap());
        assert_eq!(Ipv4Addr::from(a).to_string(), s);
        assert_eq!(a.socket_addr(7).to_string(), format!("{s}:7"));
    }
}
