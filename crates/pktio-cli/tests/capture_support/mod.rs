//! What the capture test binaries share: frames of each kind tcpdump
//! decodes, pcap files of any link type, and a scratch directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const MAC1: [u8; 6] = [2, 0, 198, 18, 0, 1];
pub const MAC2: [u8; 6] = [2, 0, 198, 18, 0, 2];
pub const IP1: [u8; 4] = [198, 18, 0, 1];
pub const IP2: [u8; 4] = [198, 18, 0, 2];

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

pub fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&IP1);
    h.extend_from_slice(&IP2);
    let c = pktio::wire::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(8 + data.len() as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

/// One frame of each kind: UDP, ICMP echo, TCP SYN, TCP data, ARP, IPv6
/// UDP, a VLAN-tagged UDP, an unknown ethertype.
pub fn corpus() -> Vec<Vec<u8>> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7];
    icmp.extend_from_slice(b"abcdefgh\r\nxy");
    let c = pktio::wire::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let tcp = |flags: u8, data: &[u8]| {
        let mut t = Vec::new();
        t.extend_from_slice(&40000u16.to_be_bytes());
        t.extend_from_slice(&4000u16.to_be_bytes());
        t.extend_from_slice(&1000u32.to_be_bytes());
        t.extend_from_slice(&555u32.to_be_bytes());
        t.extend_from_slice(&[0x50, flags]);
        t.extend_from_slice(&64240u16.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(data);
        t
    };
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&MAC1);
    arp.extend_from_slice(&IP1);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&IP2);
    let u = udp(4242, 9, b"hello world 123456");
    let mut ip6 = vec![0x60, 0, 0, 0];
    ip6.extend_from_slice(&(u.len() as u16).to_be_bytes());
    ip6.extend_from_slice(&[17, 64]);
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 1, 0xd, 0xb8]);
    a[15] = 1;
    ip6.extend_from_slice(&a);
    a[15] = 2;
    ip6.extend_from_slice(&a);
    ip6.extend_from_slice(&u);
    let mut tagged = vec![0, 100, 8, 0];
    tagged.extend_from_slice(&ipv4(17, &u));
    vec![
        eth(MAC2, MAC1, 0x0800, &ipv4(17, &u)),
        eth(MAC2, MAC1, 0x0800, &ipv4(1, &icmp)),
        eth(MAC2, MAC1, 0x0800, &ipv4(6, &tcp(0x02, b""))),
        eth(
            MAC2,
            MAC1,
            0x0800,
            &ipv4(6, &tcp(0x18, b"GET / HTTP/1.0\r\n")),
        ),
        eth([0xff; 6], MAC1, 0x0806, &arp),
        eth(MAC2, MAC1, 0x86dd, &ip6),
        eth(MAC2, MAC1, 0x8100, &tagged),
        eth(MAC2, MAC1, 0x88b5, &[b'x'; 46]),
    ]
}

/// Ethernet frame → Linux cooked v1 record (`tcpdump -i any`).
pub fn to_sll(frame: &[u8]) -> Vec<u8> {
    let mut r = vec![0, 0, 0, 1, 0, 6];
    r.extend_from_slice(&frame[6..12]);
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(&frame[12..14]);
    r.extend_from_slice(&frame[14..]);
    r
}

/// Ethernet frame → Linux cooked v2 record.
pub fn to_sll2(frame: &[u8]) -> Vec<u8> {
    let mut r = frame[12..14].to_vec();
    r.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1, 0, 6]);
    r.extend_from_slice(&frame[6..12]);
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(&frame[14..]);
    r
}

/// A microsecond pcap file of `linktype` holding `records`, one second apart.
pub fn pcap(linktype: u32, records: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 262_144, linktype] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for (i, r) in records.iter().enumerate() {
        for v in [
            1_700_000_000 + i as u32,
            123_456 + i as u32,
            r.len() as u32,
            r.len() as u32,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(r);
    }
    f
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "pktio-{what}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
