//! Tests of the parser.

use super::*;

fn p(s: &str) -> Expr {
    parse(s)
        .unwrap_or_else(|e| panic!("{s:?}: {e}\n{}", e.render(s)))
        .unwrap()
}

fn err(s: &str) -> ParseError {
    match parse(s) {
        Err(e) => e,
        Ok(e) => panic!("{s:?} parsed as {e:?}"),
    }
}

fn prim(e: Expr) -> Primitive {
    match e {
        Expr::Prim(p) => p,
        other => panic!("not a primitive: {other}"),
    }
}

#[test]
fn primitives() {
    use Primitive as P;
    let v4 = |a: [u8; 4], prefix, scope| IpNet::V4 {
        addr: Ipv4Addr::from(a),
        prefix,
        scope,
    };
    let cases: Vec<(&str, Primitive)> = vec![
        (
            "ether src 02:00:c6:12:00:01",
            P::Ether {
                dir: Dir::Src,
                mac: [2, 0, 0xc6, 0x12, 0, 1],
            },
        ),
        (
            "ether host 0200.c612.0001",
            P::Ether {
                dir: Dir::Either,
                mac: [2, 0, 0xc6, 0x12, 0, 1],
            },
        ),
        (
            "ether dst ff-ff-ff-ff-ff-ff",
            P::Ether {
                dir: Dir::Dst,
                mac: [0xff; 6],
            },
        ),
        ("vlan", P::Vlan(None)),
        ("vlan 100", P::Vlan(Some(100))),
        ("ip", P::EtherType(ETH_P_IP)),
        ("ip6", P::EtherType(ETH_P_IPV6)),
        ("arp", P::EtherType(ETH_P_ARP)),
        ("ether proto 0x88cc", P::EtherType(0x88cc)),
        ("ether proto \\ip6", P::EtherType(ETH_P_IPV6)),
        (
            "tcp",
            P::Proto {
                family: Family::Any,
                proto: 6,
            },
        ),
        (
            "icmp",
            P::Proto {
                family: Family::V4,
                proto: 1,
            },
        ),
        (
            "icmp6",
            P::Proto {
                family: Family::V6,
                proto: 58,
            },
        ),
        (
            "proto 47",
            P::Proto {
                family: Family::Any,
                proto: 47,
            },
        ),
        (
            "ip proto \\udp",
            P::Proto {
                family: Family::V4,
                proto: 17,
            },
        ),
        (
            "ip6 proto tcp",
            P::Proto {
                family: Family::V6,
                proto: 6,
            },
        ),
        (
            "host 198.18.0.1",
            P::Net {
                dir: Dir::Either,
                net: v4([198, 18, 0, 1], 32, V4Scope::IpOrArp),
            },
        ),
        (
            "198.18.0.1",
            P::Net {
                dir: Dir::Either,
                net: v4([198, 18, 0, 1], 32, V4Scope::IpOrArp),
            },
        ),
        (
            "ip src host 198.18.0.1",
            P::Net {
                dir: Dir::Src,
                net: v4([198, 18, 0, 1], 32, V4Scope::Ip),
            },
        ),
        (
            "arp dst 198.18.0.1",
            P::Net {
                dir: Dir::Dst,
                net: v4([198, 18, 0, 1], 32, V4Scope::Arp),
            },
        ),
        (
            "src and dst net 198.18.0.0/15",
            P::Net {
                dir: Dir::Both,
                net: v4([198, 18, 0, 0], 15, V4Scope::IpOrArp),
            },
        ),
        (
            "net 198.18",
            P::Net {
                dir: Dir::Either,
                net: v4([198, 18, 0, 0], 16, V4Scope::IpOrArp),
            },
        ),
        (
            "dst or src net 10/8",
            P::Net {
                dir: Dir::Either,
                net: v4([10, 0, 0, 0], 8, V4Scope::IpOrArp),
            },
        ),
        (
            "ip6 host 2001:db8::1",
            P::Net {
                dir: Dir::Either,
                net: IpNet::V6 {
                    addr: "2001:db8::1".parse().unwrap(),
                    prefix: 128,
                },
            },
        ),
        (
            "src net 2001:db8::/32",
            P::Net {
                dir: Dir::Src,
                net: IpNet::V6 {
                    addr: "2001:db8::".parse().unwrap(),
                    prefix: 32,
                },
            },
        ),
        (
            "port 53",
            P::Port {
                proto: PortProto::Any,
                dir: Dir::Either,
                lo: 53,
                hi: 53,
            },
        ),
        (
            "udp dst port 4242",
            P::Port {
                proto: PortProto::Udp,
                dir: Dir::Dst,
                lo: 4242,
                hi: 4242,
            },
        ),
        (
            "tcp src 80",
            P::Port {
                proto: PortProto::Tcp,
                dir: Dir::Src,
                lo: 80,
                hi: 80,
            },
        ),
        (
            "portrange 2000-1000",
            P::Port {
                proto: PortProto::Any,
                dir: Dir::Either,
                lo: 1000,
                hi: 2000,
            },
        ),
        (
            "len <= 100",
            P::Len {
                op: CmpOp::Le,
                value: 100,
            },
        ),
        (
            "len==0x40",
            P::Len {
                op: CmpOp::Eq,
                value: 64,
            },
        ),
        (
            "greater 1000",
            P::Len {
                op: CmpOp::Ge,
                value: 1000,
            },
        ),
        (
            "less 60",
            P::Len {
                op: CmpOp::Le,
                value: 60,
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(prim(p(text)), want, "{text}");
        // The canonical form parses back to the same primitive.
        let canon = want.to_string();
        assert_eq!(prim(p(&canon)), want, "{text} → {canon}");
    }
}

#[test]
fn and_or_have_equal_precedence_left_to_right() {
    // pcap: `a or b and c` is `(a or b) and c`.
    assert_eq!(
        p("tcp or udp and port 53").to_string(),
        "((tcp) or (udp)) and (src or dst port 53)"
    );
    assert_eq!(
        p("tcp or (udp and port 53)").to_string(),
        "(tcp) or ((udp) and (src or dst port 53))"
    );
    assert_eq!(
        p("! tcp && not not udp || arp").to_string(),
        "((not (tcp)) and (not (not (udp)))) or (arp)"
    );
}

#[test]
fn abbreviations_reuse_qualifiers() {
    assert_eq!(
        p("tcp dst port 80 or 8080").to_string(),
        "(tcp dst port 80) or (tcp dst port 8080)"
    );
    assert_eq!(
        p("host 198.18.0.1 and not 198.18.0.2").to_string(),
        "(src or dst host 198.18.0.1) and (not (src or dst host 198.18.0.2))"
    );
}

#[test]
fn errors_have_positions_and_say_what_was_expected() {
    let e = err("udp port foo");
    assert_eq!((e.pos, e.len), (9, 3));
    assert!(e.to_string().contains("service name `foo`"), "{e}");
    assert_eq!(e.render("udp port foo"), "udp port foo\n         ^^^");

    let e = err("tcp and");
    assert_eq!(e.pos, 7);
    assert!(e.to_string().contains("end of the filter"), "{e}");

    let e = err("(tcp or udp");
    assert!(
        e.to_string().contains("`)` to close the `(` at byte 0"),
        "{e}"
    );

    let e = err("tcp udp");
    assert_eq!(e.pos, 4);
    assert!(e.to_string().contains("expected `and`, `or`"), "{e}");

    let e = err("port 70000");
    assert_eq!(e.pos, 5);
    assert!(e.to_string().contains("0..=65535"), "{e}");

    let e = err("vlan 5000");
    assert!(e.to_string().contains("at most 4095"), "{e}");

    let e = err("len 100");
    assert!(e.to_string().contains("comparison after `len`"), "{e}");

    let e = err("host 198.18.0.1/24");
    assert!(e.to_string().contains("use `net"), "{e}");

    let e = err("net 198.18.0.1/15");
    assert!(e.to_string().contains("198.18.0.0/15"), "{e}");

    let e = err("ip6 host 198.18.0.1");
    assert!(e.to_string().contains("`ip6` with an IPv4 address"), "{e}");

    let e = err("host example.com");
    assert!(e.to_string().contains("does not resolve names"), "{e}");

    let e = err("tcp host 198.18.0.1");
    assert!(e.to_string().contains("`tcp and host ADDR`"), "{e}");

    let e = err("ether 198.18.0.1");
    assert!(e.to_string().contains("MAC"), "{e}");
    let e = err("ether");
    assert!(e.to_string().contains("after `ether`"), "{e}");

    let e = err("53");
    assert!(e.to_string().contains("needs a qualifier"), "{e}");
}

#[test]
fn unsupported_primitives_are_named() {
    for (text, name) in [
        ("gateway 198.18.0.1", "`gateway`"),
        ("tcp and broadcast", "`broadcast`"),
        ("ip and multicast", "`multicast`"),
        ("net 198.18.0.0 mask 255.254.0.0", "`mask`"),
        ("inbound", "`inbound`"),
        ("ip6 protochain 6", "`protochain`"),
        ("igmp", "`igmp`"),
        ("mpls 3", "`mpls`"),
        ("tcp[13] & 2 != 0", "accessor"),
    ] {
        let e = err(text);
        assert!(
            matches!(e.kind, ParseErrorKind::Unsupported { .. }),
            "{text}: {e}"
        );
        assert!(e.to_string().contains(name), "{text}: {e}");
    }
    let e = err("net 198.18.0.0 mask 255.254.0.0");
    assert_eq!(e.pos, 15);
}

#[test]
fn empty_filter_is_none() {
    assert_eq!(parse("").unwrap(), None);
    assert_eq!(parse("  \t ").unwrap(), None);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}tcp{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep).is_err());
    let nots = format!("{}tcp", "not ".repeat(10_000));
    assert!(parse(&nots).is_err());
    let ok = format!("{}tcp{}", "(".repeat(50), ")".repeat(50));
    assert!(parse(&ok).is_ok());
    let long = vec!["tcp"; 300].join(" or ");
    assert!(err(&long).to_string().contains("at most 256 primitives"));
    let fits = vec!["tcp"; 256].join(" or ");
    assert_eq!(p(&fits).primitives(), 256);
}

#[test]
fn a_huge_filter_is_not_echoed_whole() {
    use crate::filter::{Filter, RENDER_CONTEXT};
    // 5000 primitives: the parser stops at the 257th; the message shows a
    // window around it, not the 55 kB filter.
    let text = vec!["port 1"; 5000].join(" and ");
    let e = Filter::parse(&text).unwrap_err();
    let r = e.render(&text);
    let (line, carets) = r.split_once('\n').unwrap();
    assert!(line.starts_with('…') && line.ends_with('…'), "{r}");
    assert!(
        line.chars().count() <= 2 * RENDER_CONTEXT + 2 + e.len.max(1),
        "{r}"
    );
    // The carets sit under the offending token.
    let col = carets.chars().take_while(|&c| c == ' ').count();
    let under: String = line.chars().skip(col).take(e.len).collect();
    assert_eq!(under, &text[e.pos..e.pos + e.len], "{r}");
    // A short filter is shown whole, as before.
    let e = Filter::parse("udp port foo").unwrap_err();
    assert_eq!(e.render("udp port foo"), "udp port foo\n         ^^^");
}
