//! `UdpFrame::emit` with arbitrary addresses, lengths and payloads: it either
//! refuses or writes a frame that `parse_udp` reads back exactly, with a
//! correct IPv4 checksum, and never writes past the frame.
#![no_main]

use std::net::Ipv4Addr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pktio::wire::{parse_udp, Ipv4Packet, UdpFrame, ETHERNET_HEADER_LEN};

#[derive(Debug, Arbitrary)]
struct Input {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    src_port: u16,
    dst_port: u16,
    frame_len: u16,
    out_len: u16,
    payload: Vec<u8>,
}

fuzz_target!(|i: Input| {
    let spec = UdpFrame {
        src_mac: i.src_mac,
        dst_mac: i.dst_mac,
        src_ip: Ipv4Addr::from(i.src_ip),
        dst_ip: Ipv4Addr::from(i.dst_ip),
        src_port: i.src_port,
        dst_port: i.dst_port,
    };
    let out_len = usize::from(i.out_len % 9000);
    let frame_len = usize::from(i.frame_len % 9000);
    let mut out = vec![0xa5u8; out_len + 16];
    let Ok(n) = spec.emit(&i.payload, frame_len, &mut out[..out_len]) else {
        return;
    };
    assert_eq!(n, frame_len);
    assert!(out[n..].iter().all(|&b| b == 0xa5), "wrote past the frame");
    let v = parse_udp(&out[..n]).expect("an emitted frame parses");
    assert_eq!((v.src_mac, v.dst_mac), (i.src_mac, i.dst_mac));
    assert_eq!((v.src_ip, v.dst_ip), (spec.src_ip, spec.dst_ip));
    assert_eq!((v.src_port, v.dst_port), (i.src_port, i.dst_port));
    assert_eq!(&v.payload[..i.payload.len()], &i.payload[..]);
    assert!(v.payload[i.payload.len()..].iter().all(|&b| b == 0));
    let ip = Ipv4Packet::new_checked(&out[ETHERNET_HEADER_LEN..n]).expect("IPv4 header");
    assert!(ip.checksum_ok());
});
