//! The frame corpus and the filter list shared by the filter tests
//! (included with `#[path]`; as a test target of its own it has no tests).
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

pub const MAC_A: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x01];
pub const MAC_B: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x02];
pub const BCAST: [u8; 6] = [0xff; 6];
pub const V4_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const V4_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const V4_C: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 5);

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Ethernet header, optional tags (TPID, TCI), EtherType, payload.
pub fn eth(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)], etype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&etype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (with `options` bytes, IHL set to match unless `ihl` is
/// given), then `l4`.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    frag: u16,
    options: &[u8],
    l4: &[u8],
) -> Vec<u8> {
    ipv4_ihl(src, dst, proto, frag, options, l4, None)
}

pub fn ipv4_ihl(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    frag: u16,
    options: &[u8],
    l4: &[u8],
    ihl: Option<u8>,
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let hl = 20 + options.len();
    let mut h = vec![0u8; hl];
    h[0] = 0x40 | ihl.unwrap_or((hl / 4) as u8);
    h[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    h[20..].copy_from_slice(options);
    h.extend_from_slice(l4);
    h
}

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// A transport header with ports (UDP-sized, padded with `extra` bytes).
pub fn ports(sport: u16, dport: u16, extra: usize) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + extra];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4
}

pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut l4 = ports(sport, dport, 12);
    l4[12] = 0x50;
    l4[13] = flags;
    l4
}

pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0u8; 28];
    a[0..2].copy_from_slice(&1u16.to_be_bytes());
    a[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    a[4] = 6;
    a[5] = 4;
    a[6..8].copy_from_slice(&op.to_be_bytes());
    a[8..14].copy_from_slice(&sha);
    a[14..18].copy_from_slice(&spa.octets());
    a[24..28].copy_from_slice(&tpa.octets());
    a
}

pub fn pad(mut f: Vec<u8>, to: usize) -> Vec<u8> {
    if f.len() < to {
        f.resize(to, 0);
    }
    f
}

/// The base frames: every primitive has frames that match it and frames
/// that do not.
pub fn base_frames() -> Vec<(&'static str, Vec<u8>)> {
    let udp4 = ipv4(V4_A, V4_B, 17, 0, &[], &ports(9, 4242, 18));
    let a6 = v6("2001:db8::1");
    let b6 = v6("2001:db8::2");
    let c6 = v6("2001:db8:0:0:8000::7");
    let mut icmp_echo = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
    icmp_echo.extend_from_slice(&[0xab; 16]);
    vec![
        ("udp4", pad(eth(MAC_B, MAC_A, &[], 0x0800, &udp4), 60)),
        (
            "udp4 vlan 100",
            eth(MAC_B, MAC_A, &[(0x8100, 0x2064)], 0x0800, &udp4),
        ),
        (
            "udp4 vlan 4095 prio 7",
            eth(MAC_B, MAC_A, &[(0x8100, 0xefff)], 0x0800, &udp4),
        ),
        (
            "udp4 802.1ad vlan 7",
            eth(MAC_B, MAC_A, &[(0x88a8, 7)], 0x0800, &udp4),
        ),
        (
            "udp4 qinq 7/100",
            eth(MAC_B, MAC_A, &[(0x88a8, 7), (0x8100, 100)], 0x0800, &udp4),
        ),
        (
            "tcp4 syn 443→51000",
            eth(
                MAC_A,
                MAC_B,
                &[],
                0x0800,
                &ipv4(V4_B, V4_C, 6, 0x4000, &[], &tcp(443, 51000, 0x02)),
            ),
        ),
        (
            "tcp4 options ihl 6 port 80",
            eth(
                MAC_A,
                MAC_B,
                &[],
                0x0800,
                &ipv4(V4_C, V4_B, 6, 0, &[1, 1, 1, 0], &{
                    let mut seg = tcp(51000, 80, 0x18);
                    seg.extend_from_slice(b"GET / HTTP");
                    seg
                }),
            ),
        ),
        (
            "tcp4 options ihl 15 vlan 100",
            eth(
                MAC_A,
                MAC_B,
                &[(0x8100, 100)],
                0x0800,
                &ipv4(V4_C, V4_B, 6, 0, &[0; 40], &tcp(4242, 80, 0x10)),
            ),
        ),
        (
            "udp4 first fragment port 53",
            eth(
                MAC_B,
                MAC_A,
                &[],
                0x0800,
                &ipv4(V4_A, V4_B, 17, 0x2000, &[], &ports(5353, 53, 24)),
            ),
        ),
        (
            "udp4 later fragment (port bytes 53)",
            eth(
                MAC_B,
                MAC_A,
                &[],
                0x0800,
                &ipv4(V4_A, V4_B, 17, 185, &[], &ports(53, 53, 24)),
            ),
        ),
        (
            "udp4 ihl 2 (bogus)",
            eth(
                MAC_B,
                MAC_A,
                &[],
                0x0800,
                &ipv4_ihl(V4_A, V4_B, 17, 0, &[], &ports(4242, 4242, 4), Some(2)),
            ),
        ),
        (
            "icmp4 echo",
            pad(
                eth(
                    BCAST,
                    MAC_A,
                    &[],
                    0x0800,
                    &ipv4(V4_A, V4_C, 1, 0, &[], &icmp_echo),
                ),
                60,
            ),
        ),
        (
            "sctp4 port 4242",
            eth(
                MAC_B,
                MAC_A,
                &[],
                0x0800,
                &ipv4(V4_A, V4_B, 132, 0, &[], &ports(4242, 9, 8)),
            ),
        ),
        (
            "udp6 4242",
            eth(
                MAC_B,
                MAC_A,
                &[],
                0x86dd,
                &ipv6(a6, b6, 17, &ports(9, 4242, 10)),
            ),
        ),
        (
            "tcp6 vlan 100 port 80",
            eth(
                MAC_B,
                MAC_A,
                &[(0x8100, 100)],
                0x86dd,
                &ipv6(c6, a6, 6, &tcp(80, 40000, 0x12)),
            ),
        ),
        (
            "icmp6 echo",
            eth(
                MAC_A,
                MAC_B,
                &[],
                0x86dd,
                &ipv6(b6, a6, 58, &[128, 0, 0, 0, 0, 1, 0, 1]),
            ),
        ),
        (
            "udp6 behind hop-by-hop",
            eth(MAC_B, MAC_A, &[], 0x86dd, &{
                let mut ext = vec![17u8, 0, 5, 2, 0, 0, 1, 0];
                ext.extend_from_slice(&ports(4242, 4242, 8));
                ipv6(a6, b6, 0, &ext)
            }),
        ),
        (
            "ipv6 fragment header",
            eth(MAC_B, MAC_A, &[], 0x86dd, &{
                let mut ext = vec![17u8, 0, 0, 1, 0, 0, 0, 1];
                ext.extend_from_slice(&ports(4242, 4242, 8));
                ipv6(a6, c6, 44, &ext)
            }),
        ),
        (
            "arp request",
            pad(
                eth(BCAST, MAC_A, &[], 0x0806, &arp(1, MAC_A, V4_A, V4_B)),
                60,
            ),
        ),
        (
            "arp reply vlan 100",
            pad(
                eth(
                    MAC_A,
                    MAC_B,
                    &[(0x8100, 100)],
                    0x0806,
                    &arp(2, MAC_B, V4_B, V4_A),
                ),
                60,
            ),
        ),
        (
            "lldp",
            pad(
                eth(
                    [0x01, 0x80, 0xc2, 0, 0, 0x0e],
                    MAC_A,
                    &[],
                    0x88cc,
                    &[2, 7, 4],
                ),
                60,
            ),
        ),
        (
            "self-addressed udp4 (src and dst equal)",
            eth(
                MAC_A,
                MAC_A,
                &[],
                0x0800,
                &ipv4(V4_A, V4_A, 17, 0, &[], &ports(7, 7, 0)),
            ),
        ),
        (
            "jumbo udp4 1514",
            pad(
                eth(
                    MAC_B,
                    MAC_A,
                    &[],
                    0x0800,
                    &ipv4(V4_A, V4_B, 17, 0, &[], &ports(9, 4242, 1472)),
                ),
                1514,
            ),
        ),
    ]
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug)]
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The corpus: each base frame, every prefix of it (truncated frames, down
/// to 0 bytes) up to 100 bytes plus a few longer cuts, and random frames with
/// plausible EtherTypes and protocols.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, f) in base_frames() {
        for n in 0..f.len().min(100) {
            out.push((format!("{name} cut to {n}"), f[..n].to_vec()));
        }
        for n in [f.len() / 2, f.len() - 1] {
            if n >= 100 {
                out.push((format!("{name} cut to {n}"), f[..n].to_vec()));
            }
        }
        out.push((name.to_string(), f));
    }
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let etypes = [0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x88cc];
    let protos = [6u8, 17, 132, 1, 58, 0, 44];
    for i in 0..300 {
        let len = 14 + (rng.next_u64() % 110) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let et = etypes[(rng.next_u64() % etypes.len() as u64) as usize];
        f[12..14].copy_from_slice(&et.to_be_bytes());
        let tagged = matches!(et, 0x8100 | 0x88a8);
        let l3 = if tagged { 18 } else { 14 };
        if tagged && f.len() >= 18 {
            let inner = etypes[(rng.next_u64() % 3) as usize];
            f[16..18].copy_from_slice(&inner.to_be_bytes());
        }
        // Plausible IP headers half of the time.
        if rng.next_u64() % 2 == 0 && f.len() > l3 + 10 {
            f[l3] = 0x45;
            f[l3 + 6] &= 0x3f;
            if rng.next_u64() % 2 == 0 {
                f[l3 + 7] = 0;
                f[l3 + 6] &= 0xe0;
            }
            f[l3 + 9] = protos[(rng.next_u64() % protos.len() as u64) as usize];
            if f.len() > l3 + 7 {
                f[l3 + 6] = if f[12] == 0x86 {
                    protos[(rng.next_u64() % 7) as usize]
                } else {
                    f[l3 + 6]
                };
            }
        }
        out.push((format!("random {i}"), f));
    }
    out
}

/// Every primitive, alone and combined.
pub const FILTERS: &[&str] = &[
    "",
    "ip",
    "ip6",
    "arp",
    "vlan",
    "vlan 100",
    "vlan 7",
    "vlan 4095",
    "ether proto 0x88cc",
    "ether proto 0x8100",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "proto 0",
    "proto 44",
    "ip proto 17",
    "ip6 proto \\udp",
    "host 198.18.0.1",
    "src host 198.18.0.1",
    "dst host 198.18.0.2",
    "ip host 198.18.0.2",
    "arp host 198.18.0.2",
    "arp src host 198.18.0.1",
    "src and dst host 198.18.0.1",
    "src and dst net 198.18.0.0/15",
    "net 198.18.1.0/24",
    "net 0.0.0.0/0",
    "dst net 198.18",
    "host 2001:db8::1",
    "ip6 src host 2001:db8::1",
    "net 2001:db8::/32",
    "dst net 2001:db8::2/128",
    "net ::/0",
    "net 2001:db8:0:0:8000::/65",
    "port 4242",
    "src port 9",
    "dst port 4242",
    "udp port 4242",
    "tcp port 443",
    "sctp port 4242",
    "tcp dst port 80",
    "port 53",
    "portrange 4000-5000",
    "tcp portrange 1-1024",
    "src portrange 50000-60000",
    "src and dst port 7",
    "ether host 02:00:c6:12:00:01",
    "ether src 02:00:c6:12:00:01",
    "ether dst ff:ff:ff:ff:ff:ff",
    "ether src and dst 02:00:c6:12:00:01",
    "len <= 60",
    "len < 60",
    "len == 60",
    "len != 60",
    "len > 100",
    "len >= 1514",
    "greater 100",
    "less 64",
    "len >= 0",
    "len > 70000",
    "not ip",
    "not port 4242",
    "udp dst port 4242",
    "vlan 100 and udp dst port 4242",
    "(tcp or udp) and not port 53",
    "ip6 and not icmp6",
    "tcp or udp and port 53",
    "not (host 198.18.0.1 or host 2001:db8::1)",
    "arp or icmp or icmp6",
    "vlan and ip and not tcp",
    "ether dst ff:ff:ff:ff:ff:ff and arp",
    "(port 80 || port 443) && !vlan && len > 60",
    "host 198.18.0.1 and (udp port 9 or 4242) and greater 42",
];

/// Filters that rightly match everything or nothing in the corpus.
pub const TRIVIAL: &[&str] = &["", "len >= 0", "len > 70000"];
