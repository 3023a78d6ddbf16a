//! The reference evaluator: a filter applied to a [`Dissected`] frame.
//!
//! It is written independently of the compilers (it never sees their
//! intermediate form): the tests run the compiled programs in the kernel on
//! a corpus of frames and compare each verdict with this one.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ast::*;
use super::dissect::{Dissected, Network};

/// Whether `expr` matches the dissected frame.
pub fn matches(expr: &Expr, p: &Dissected<'_>) -> bool {
    match expr {
        Expr::Prim(prim) => primitive(prim, p),
        Expr::Not(e) => !matches(e, p),
        Expr::And(a, b) => matches(a, p) && matches(b, p),
        Expr::Or(a, b) => matches(a, p) || matches(b, p),
    }
}

fn by_dir<T: PartialEq>(
    dir: Dir,
    src: Option<T>,
    dst: Option<T>,
    want: impl Fn(T) -> bool,
) -> bool {
    let s = src.is_some_and(&want);
    let d = dst.is_some_and(&want);
    match dir {
        Dir::Src => s,
        Dir::Dst => d,
        Dir::Either => s || d,
        Dir::Both => s && d,
    }
}

fn in_v4_net(a: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let shift = 32 - u32::from(prefix);
    let (a, n) = (u64::from(u32::from(a)), u64::from(u32::from(net)));
    (a >> shift) == (n >> shift)
}

fn in_v6_net(a: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = 128 - u32::from(prefix);
    (u128::from(a) >> shift) == (u128::from(net) >> shift)
}

fn primitive(prim: &Primitive, p: &Dissected<'_>) -> bool {
    match *prim {
        Primitive::Ether { dir, mac } => by_dir(dir, p.eth_src, p.eth_dst, |m| m == mac),
        Primitive::Vlan(None) => p.vlan.is_some(),
        Primitive::Vlan(Some(id)) => p.vlan.and_then(|v| v.vid()) == Some(id),
        Primitive::EtherType(t) => p.ethertype == Some(t),
        Primitive::Proto { family, proto } => {
            let v4 = matches!(&p.net, Network::Ipv4(ip) if ip.proto == Some(proto));
            let v6 = matches!(&p.net, Network::Ipv6(ip) if ip.next_header == Some(proto));
            match family {
                Family::Any => v4 || v6,
                Family::V4 => v4,
                Family::V6 => v6,
            }
        }
        Primitive::Net {
            dir,
            net:
                IpNet::V4 {
                    addr,
                    prefix,
                    scope,
                },
        } => {
            let inside = |a: Ipv4Addr| in_v4_net(a, addr, prefix);
            let ip = matches!(scope, V4Scope::Ip | V4Scope::IpOrArp)
                && matches!(&p.net, Network::Ipv4(ip) if by_dir(dir, ip.src, ip.dst, inside));
            let arp = matches!(scope, V4Scope::Arp | V4Scope::IpOrArp)
                && matches!(&p.net, Network::Arp(arp) if by_dir(dir, arp.spa, arp.tpa, inside));
            ip || arp
        }
        Primitive::Net {
            dir,
            net: IpNet::V6 { addr, prefix },
        } => matches!(&p.net, Network::Ipv6(ip)
            if by_dir(dir, ip.src, ip.dst, |a| in_v6_net(a, addr, prefix))),
        Primitive::Port { proto, dir, lo, hi } => p.transport().is_some_and(|t| {
            proto.protocols().contains(&t.proto)
                && by_dir(dir, t.src_port, t.dst_port, |port| {
                    (lo..=hi).contains(&port)
                })
        }),
        Primitive::Len { op, value } => op.holds(p.wire_len as u64, u64::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Filter;

    fn udp4(sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 18, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[198, 18, 0, 2]);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn m(filter: &str, frame: &[u8]) -> bool {
        Filter::parse(filter).unwrap().matches(frame)
    }

    #[test]
    fn udp_frame() {
        let f = udp4(9, 4242);
        for yes in [
            "udp",
            "ip",
            "udp dst port 4242",
            "port 9",
            "src port 9 and dst port 4242",
            "portrange 4000-5000",
            "host 198.18.0.1",
            "src host 198.18.0.1",
            "dst net 198.18.0.0/24",
            "src and dst net 198.18.0.0/15",
            "ether src 02:00:00:00:00:01",
            "len == 60",
            "less 60",
            "greater 60",
            "not tcp",
            "ip proto 17",
            "proto \\udp",
            "not vlan",
        ] {
            assert!(m(yes, &f), "{yes} should match");
        }
        for no in [
            "tcp",
            "ip6",
            "arp",
            "icmp",
            "udp src port 4242",
            "tcp port 4242",
            "dst host 198.18.0.1",
            "net 10.0.0.0/8",
            "ether dst 02:00:00:00:00:01",
            "len < 60",
            "vlan",
            "vlan 1",
            "src and dst host 198.18.0.1",
        ] {
            assert!(!m(no, &f), "{no} should not match");
        }
    }

    #[test]
    fn truncated_fields_are_false_and_not_negates() {
        let f = udp4(9, 4242);
        let short = &f[..36]; // source port present, destination port cut
        assert!(m("src port 9", short));
        assert!(!m("dst port 4242", short));
        assert!(m("not dst port 4242", short));
        assert!(m("port 9", short));
        assert!(!m("ip", &f[..13]));
        assert!(m("not ip", &f[..13]));
        assert!(m("ether dst 02:00:00:00:00:02", &f[..6]));
    }
}
