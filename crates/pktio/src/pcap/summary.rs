//! One line per packet, in tcpdump's manner:
//!
//! ```text
//! IP 198.18.0.1.9 > 198.18.0.2.4242: UDP, length 18
//! vlan 100: IP6 2001:db8::1.80 > 2001:db8::2.40000: Flags [S.], length 0
//! ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 46
//! ```

use std::fmt::Write;

use crate::filter::{Dissected, Network, Transport};

fn mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn tcp_flags(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if f & 0x10 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

fn be16(d: &[u8], off: usize) -> Option<u16> {
    let b = d.get(off..off + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The transport part: `UDP, length 18`, `Flags [S.], length 0`, …
/// `l4_len` is the length of the transport header and payload from the IP
/// header, when known.
fn transport(p: &Dissected<'_>, t: &Transport, l4_len: Option<usize>, v6: bool) -> String {
    let d = p.data;
    match t.proto {
        17 => match be16(d, t.offset + 4) {
            Some(ulen) => format!("UDP, length {}", usize::from(ulen).saturating_sub(8)),
            None => "UDP [|udp]".into(),
        },
        6 => {
            let hl = d.get(t.offset + 12).map(|b| usize::from(b >> 4) * 4);
            match (t.tcp_flags, hl) {
                (Some(flags), Some(hl)) => {
                    let mut s = format!("Flags [{}]", tcp_flags(flags));
                    if let Some(l) = l4_len {
                        let _ = write!(s, ", length {}", l.saturating_sub(hl));
                    }
                    s
                }
                _ => "TCP [|tcp]".into(),
            }
        }
        132 => "SCTP".into(),
        1 | 58 => {
            let (ty, code) = (t.icmp_type, t.icmp_code);
            let name = match (v6, ty) {
                (false, Some(0)) => "echo reply".to_string(),
                (false, Some(3)) => format!("destination unreachable, code {}", code.unwrap_or(0)),
                (false, Some(8)) => "echo request".into(),
                (false, Some(11)) => "time exceeded".into(),
                (true, Some(1)) => format!("destination unreachable, code {}", code.unwrap_or(0)),
                (true, Some(3)) => "time exceeded".into(),
                (true, Some(128)) => "echo request".into(),
                (true, Some(129)) => "echo reply".into(),
                (true, Some(133)) => "router solicitation".into(),
                (true, Some(134)) => "router advertisement".into(),
                (true, Some(135)) => "neighbor solicitation".into(),
                (true, Some(136)) => "neighbor advertisement".into(),
                (true, Some(143)) => "multicast listener report v2".into(),
                (_, Some(t)) => format!("type {t}, code {}", code.unwrap_or(0)),
                (_, None) => "[|icmp]".into(),
            };
            let mut s = format!("{} {name}", if v6 { "ICMP6," } else { "ICMP" });
            if let Some(l) = l4_len {
                let _ = write!(s, ", length {l}");
            }
            s
        }
        p => match l4_len {
            Some(l) => format!("ip-proto-{p} {l}"),
            None => format!("ip-proto-{p}"),
        },
    }
}

fn with_port(addr: String, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{addr}.{p}"),
        None => addr,
    }
}

/// A tcpdump-like summary of the frame's L2, L3 and L4 headers.
pub fn summary(p: &Dissected<'_>) -> String {
    let mut s = String::new();
    if let Some(tag) = p.vlan {
        match tag.tci {
            Some(tci) => {
                let _ = write!(s, "vlan {}", tci & 0x0fff);
                if tci >> 13 != 0 {
                    let _ = write!(s, " p {}", tci >> 13);
                }
                s.push_str(": ");
            }
            None => s.push_str("vlan [|vlan]: "),
        }
    }
    match &p.net {
        Network::None => {
            let _ = write!(s, "truncated Ethernet frame ({} bytes)", p.data.len());
        }
        Network::Ipv4(ip) => {
            let (src, dst) = match (ip.src, ip.dst) {
                (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                _ => {
                    s.push_str("IP [|ip]");
                    return s;
                }
            };
            let l4_len = match (ip.total_len, ip.header_len) {
                (Some(t), Some(h)) => Some(usize::from(t).saturating_sub(h)),
                _ => None,
            };
            let frag_off = ip.frag_offset().unwrap_or(0);
            let more = ip.more_fragments().unwrap_or(false);
            match &ip.transport {
                Some(t) => {
                    let _ = write!(
                        s,
                        "IP {} > {}: {}",
                        with_port(src, t.src_port),
                        with_port(dst, t.dst_port),
                        transport(p, t, l4_len, false)
                    );
                    if more {
                        s.push_str(" (first fragment)");
                    }
                }
                None if frag_off != 0 => {
                    let _ = write!(
                        s,
                        "IP {src} > {dst}: fragment at offset {}, proto {}{}",
                        u32::from(frag_off) * 8,
                        ip.proto.unwrap_or(0),
                        if more { ", more follow" } else { "" }
                    );
                }
                None => {
                    let _ = write!(s, "IP {src} > {dst}: [|ip]");
                }
            }
        }
        Network::Ipv6(ip) => {
            let (src, dst) = match (ip.src, ip.dst) {
                (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                _ => {
                    s.push_str("IP6 [|ip6]");
                    return s;
                }
            };
            let l4_len = ip.payload_len.map(usize::from);
            match &ip.transport {
                Some(t) if matches!(t.proto, 6 | 17 | 132 | 58) => {
                    let _ = write!(
                        s,
                        "IP6 {} > {}: {}",
                        with_port(src, t.src_port),
                        with_port(dst, t.dst_port),
                        transport(p, t, l4_len, true)
                    );
                }
                _ => {
                    let _ = write!(
                        s,
                        "IP6 {src} > {dst}: next header {}",
                        ip.next_header.unwrap_or(0)
                    );
                    if let Some(l) = l4_len {
                        let _ = write!(s, ", payload length {l}");
                    }
                }
            }
        }
        Network::Arp(arp) => {
            let show = |a: Option<std::net::Ipv4Addr>| a.map_or("?".to_string(), |a| a.to_string());
            match arp.op {
                Some(1) => {
                    let _ = write!(
                        s,
                        "ARP, Request who-has {} tell {}",
                        show(arp.tpa),
                        show(arp.spa)
                    );
                }
                Some(2) => {
                    let _ = write!(
                        s,
                        "ARP, Reply {} is-at {}",
                        show(arp.spa),
                        arp.sha.as_ref().map_or("?".to_string(), mac)
                    );
                }
                Some(op) => {
                    let _ = write!(s, "ARP, op {op}");
                }
                None => s.push_str("ARP [|arp]"),
            }
            let _ = write!(s, ", length {}", p.wire_len.saturating_sub(p.l3_offset));
        }
        Network::Other(t) => {
            let _ = write!(s, "ethertype 0x{t:04x}");
            if let (Some(src), Some(dst)) = (p.eth_src, p.eth_dst) {
                let _ = write!(s, ", {} > {}", mac(&src), mac(&dst));
            }
            let _ = write!(s, ", length {}", p.wire_len);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(f: &[u8]) -> String {
        summary(&Dissected::new(f, f.len()))
    }

    #[test]
    fn lines() {
        let mut udp = vec![0u8; 60];
        udp[12..14].copy_from_slice(&[8, 0]);
        udp[14] = 0x45;
        udp[16..18].copy_from_slice(&46u16.to_be_bytes());
        udp[23] = 17;
        udp[26..30].copy_from_slice(&[198, 18, 0, 1]);
        udp[30..34].copy_from_slice(&[198, 18, 0, 2]);
        udp[34..36].copy_from_slice(&9u16.to_be_bytes());
        udp[36..38].copy_from_slice(&4242u16.to_be_bytes());
        udp[38..40].copy_from_slice(&26u16.to_be_bytes());
        assert_eq!(
            sum(&udp),
            "IP 198.18.0.1.9 > 198.18.0.2.4242: UDP, length 18"
        );
        assert_eq!(sum(&udp[..30]), "IP [|ip]");
        assert_eq!(sum(&udp[..37]), "IP 198.18.0.1.9 > 198.18.0.2: UDP [|udp]");
        assert_eq!(sum(&udp[..5]), "truncated Ethernet frame (5 bytes)");

        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[8, 6]);
        arp[20..22].copy_from_slice(&1u16.to_be_bytes());
        arp[28..32].copy_from_slice(&[198, 18, 0, 1]);
        arp[38..42].copy_from_slice(&[198, 18, 0, 2]);
        assert_eq!(
            sum(&arp),
            "ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 46"
        );
    }
}
