//! Arbitrary bytes through every wire parser: `parse_udp` and the layered
//! `new_checked` views. Once `new_checked` accepted a buffer, no accessor may
//! panic, and `parse_udp` must agree with the layers it is made of.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktio::wire::{
    parse_udp, EtherType, EthernetFrame, Ipv4Packet, UdpPacket, ETHERNET_HEADER_LEN, UDP_HEADER_LEN,
};

fuzz_target!(|data: &[u8]| {
    let view = parse_udp(data);
    let Ok(eth) = EthernetFrame::new_checked(data) else {
        assert!(
            view.is_none(),
            "parse_udp accepted a frame shorter than Ethernet"
        );
        return;
    };
    let (dst, src, et) = (eth.dst(), eth.src(), eth.ethertype());
    let payload = eth.payload();
    assert_eq!(payload.len(), data.len() - ETHERNET_HEADER_LEN);

    let ip = Ipv4Packet::new_checked(payload);
    if let Ok(ip) = &ip {
        assert!(ip.header_len() >= 20 && ip.header_len() <= ip.total_len());
        assert!(ip.total_len() <= payload.len());
        let _ = (ip.protocol(), ip.src(), ip.dst(), ip.checksum_ok());
        assert_eq!(ip.payload().len(), ip.total_len() - ip.header_len());
        if let Ok(udp) = UdpPacket::new_checked(ip.payload()) {
            let _ = (udp.src_port(), udp.dst_port());
            assert!(udp.payload().len() + UDP_HEADER_LEN <= ip.payload().len());
        }
    }
    // Any byte string also goes through the lower layers directly.
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        let _ = (ip.payload(), ip.checksum_ok(), ip.src(), ip.dst());
    }
    if let Ok(udp) = UdpPacket::new_checked(data) {
        let _ = (udp.payload(), udp.src_port(), udp.dst_port());
    }

    let Some(v) = view else { return };
    // parse_udp's answer is the layers' answer.
    assert_eq!(et, EtherType::IPV4);
    assert_eq!((v.dst_mac, v.src_mac), (dst, src));
    let ip = ip.expect("parse_udp accepted an IPv4 header new_checked refuses");
    assert_eq!(ip.protocol(), 17);
    assert_eq!((v.src_ip, v.dst_ip), (ip.src(), ip.dst()));
    let udp = UdpPacket::new_checked(ip.payload()).expect("and a UDP header");
    assert_eq!((v.src_port, v.dst_port), (udp.src_port(), udp.dst_port()));
    assert_eq!(v.payload, udp.payload());
    // The payload is a slice of the input at the right place.
    let start = ETHERNET_HEADER_LEN + ip.header_len() + UDP_HEADER_LEN;
    assert_eq!(v.payload, &data[start..start + v.payload.len()]);
});
