//! Fuzzing the filter front end and both compilers (proptest):
//!
//! - random syntax trees print to text that parses back to the same tree;
//! - random token soups never panic the parser, and whatever it accepts
//!   compiles, passes the kernel's classic BPF checker and the eBPF
//!   verifier, and gives the evaluator's verdicts on sample frames;
//! - random filters from the grammar: the same.
//!
//! The kernel parts need root (BPF_PROG_LOAD); without it they are
//! skipped visibly and only the pure properties run.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

use pktio::bpf::{Program, XdpAction, XskMap};
use pktio::filter::{
    CmpOp, Dir, Expr, Family, Filter, IpNet, OnMatch, PortProto, Primitive, V4Scope,
};
use pktio_lab::skip::Cap;
use proptest::prelude::*;

fn dir() -> impl Strategy<Value = Dir> {
    prop::sample::select(vec![Dir::Src, Dir::Dst, Dir::Either, Dir::Both])
}

fn v4_net() -> impl Strategy<Value = IpNet> {
    (
        prop::sample::select(vec![
            [198u8, 18, 0, 1],
            [198, 18, 0, 2],
            [198, 18, 1, 5],
            [10, 0, 0, 1],
        ]),
        0u8..=32,
        prop::sample::select(vec![V4Scope::Ip, V4Scope::Arp, V4Scope::IpOrArp]),
    )
        .prop_map(|(a, prefix, scope)| {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpNet::V4 {
                addr: Ipv4Addr::from(u32::from(Ipv4Addr::from(a)) & mask),
                prefix,
                scope,
            }
        })
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    (
        prop::sample::select(vec![
            "2001:db8::1",
            "2001:db8::2",
            "2001:db8:0:0:8000::7",
            "fe80::1",
        ]),
        0u8..=128,
    )
        .prop_map(|(a, prefix)| {
            let a: Ipv6Addr = a.parse().unwrap();
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpNet::V6 {
                addr: Ipv6Addr::from(u128::from(a) & mask),
                prefix,
            }
        })
}

fn primitive() -> impl Strategy<Value = Primitive> {
    let port = prop::sample::select(vec![0u16, 7, 9, 53, 80, 443, 4242, 51000, 65535]);
    prop_oneof![
        (
            dir(),
            prop::sample::select(vec![
                [2u8, 0, 0xc6, 0x12, 0, 1],
                [2, 0, 0xc6, 0x12, 0, 2],
                [0xff; 6]
            ])
        )
            .prop_map(|(dir, mac)| Primitive::Ether { dir, mac }),
        prop::option::of(prop::sample::select(vec![0u16, 7, 100, 4095])).prop_map(Primitive::Vlan),
        prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x88cc, 0x8100])
            .prop_map(Primitive::EtherType),
        (
            prop::sample::select(vec![Family::Any, Family::V4, Family::V6]),
            prop::sample::select(vec![0u8, 1, 6, 17, 44, 58, 132, 255])
        )
            .prop_map(|(family, proto)| Primitive::Proto { family, proto }),
        (dir(), prop_oneof![v4_net(), v6_net()]).prop_map(|(dir, net)| Primitive::Net { dir, net }),
        (
            prop::sample::select(vec![
                PortProto::Any,
                PortProto::Tcp,
                PortProto::Udp,
                PortProto::Sctp
            ]),
            dir(),
            port.clone(),
            port
        )
            .prop_map(|(proto, dir, a, b)| Primitive::Port {
                proto,
                dir,
                lo: a.min(b),
                hi: a.max(b)
            }),
        (
            prop::sample::select(vec![
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge
            ]),
            prop::sample::select(vec![
                0u32,
                13,
                14,
                42,
                60,
                61,
                100,
                1514,
                65535,
                65536,
                70000,
                u32::MAX
            ])
        )
            .prop_map(|(op, value)| Primitive::Len { op, value }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    primitive()
        .prop_map(Expr::Prim)
        .prop_recursive(4, 16, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| !e),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
                (inner.clone(), inner).prop_map(|(a, b)| a.or(b)),
            ]
        })
}

/// Words and symbols of the language (and some that are not), for soups.
const VOCABULARY: &[&str] = &[
    "and",
    "or",
    "not",
    "!",
    "&&",
    "||",
    "(",
    ")",
    "ether",
    "src",
    "dst",
    "host",
    "net",
    "port",
    "portrange",
    "proto",
    "vlan",
    "ip",
    "ip6",
    "arp",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "len",
    "greater",
    "less",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "=",
    "0",
    "1",
    "7",
    "53",
    "100",
    "4242",
    "65535",
    "70000",
    "198.18.0.1",
    "198.18",
    "198.18.0.0/15",
    "10/8",
    "2001:db8::1",
    "2001:db8::/32",
    "::/0",
    "02:00:c6:12:00:01",
    "ff:ff:ff:ff:ff:ff",
    "1-1024",
    "\\tcp",
    "0x88cc",
    "gateway",
    "mask",
    "tcp[13]",
    "foo",
    "example.com",
    "-",
    "/",
    ":",
];

/// Whole primitives and connectives: soups of these parse more often.
const CHUNKS: &[&str] = &[
    "tcp",
    "udp",
    "ip6",
    "vlan",
    "vlan 100",
    "port 53",
    "dst port 4242",
    "host 198.18.0.1",
    "net 198.18/16",
    "len <= 60",
    "greater 100",
    "ether src 02:00:c6:12:00:01",
    "icmp",
    "arp",
    "and",
    "or",
    "not",
    "and",
    "or",
    "(",
    ")",
    "4242",
    "198.18.0.2",
];

fn soup() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        1 => prop::sample::select(VOCABULARY.to_vec()),
        3 => prop::sample::select(CHUNKS.to_vec()),
    ];
    prop::collection::vec(word, 0..14).prop_map(|w| w.join(" "))
}

/// Sample frames (each a different primitive's territory).
fn sample_frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let mut out = Vec::new();
        let mut eth = |tags: &[u16], etype: u16, l3: Vec<u8>| {
            let mut f = vec![2, 0, 0xc6, 0x12, 0, 2, 2, 0, 0xc6, 0x12, 0, 1];
            for t in tags {
                f.extend_from_slice(&0x8100u16.to_be_bytes());
                f.extend_from_slice(&t.to_be_bytes());
            }
            f.extend_from_slice(&etype.to_be_bytes());
            f.extend_from_slice(&l3);
            out.push(f);
        };
        let mut v4 = vec![
            0x45u8, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ];
        v4.extend_from_slice(&[
            0, 9, 0x10, 0x92, 0, 20, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ]);
        eth(&[], 0x0800, v4.clone());
        eth(&[100], 0x0800, v4.clone());
        let mut tcp = v4.clone();
        tcp[9] = 6;
        eth(&[], 0x0800, tcp);
        let mut frag = v4.clone();
        frag[7] = 10;
        eth(&[7], 0x0800, frag);
        let mut v6 = vec![0x60u8, 0, 0, 0, 0, 8, 17, 64];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0x10, 0x92, 0, 80, 0, 8, 0, 0]);
        eth(&[], 0x86dd, v6.clone());
        let mut icmp6 = v6;
        icmp6[6] = 58;
        eth(&[4095], 0x86dd, icmp6);
        let mut arp = vec![
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0xc6, 0x12, 0, 1, 198, 18, 0, 1,
        ];
        arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 198, 18, 0, 2]);
        eth(&[], 0x0806, arp);
        eth(&[], 0x88cc, vec![0; 46]);
        let whole = out.clone();
        for f in &whole {
            for cut in [14, 20, 25, 35, 40, 45] {
                if cut < f.len() {
                    out.push(f[..cut].to_vec());
                }
            }
        }
        out.push(vec![0xff; 6]);
        out
    })
}

/// Whether this process has the capabilities to load XDP programs (asked
/// once; the skip line, if any, is printed once). With them, any failure
/// to load fails the test.
fn can_load() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        !pktio_lab::skip::lacks(
            "the kernel half of filter_fuzz",
            &[Cap::BPF, Cap::NET_ADMIN],
            "loading XDP programs and an XSKMAP",
        )
    })
}

/// Compiles `filter` both ways, has the kernel check both, and compares the
/// kernel's verdicts on the sample frames with the evaluator's.
fn check_in_kernel(filter: &Filter) -> Result<(), TestCaseError> {
    // Classic BPF: the kernel checks the program on attach, then runs it.
    let prog = filter
        .cbpf_program(0)
        .map_err(|e| TestCaseError::fail(format!("{filter}: {e}")))?;
    let (tx, rx) = UnixDatagram::pair().map_err(|e| TestCaseError::fail(e.to_string()))?;
    rx.set_nonblocking(true)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prog.attach(rx.as_fd())
        .map_err(|e| TestCaseError::fail(format!("{filter}: SO_ATTACH_FILTER refused: {e}")))?;
    let mut buf = [0u8; 2048];
    for f in sample_frames() {
        tx.send(f).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = match rx.recv(&mut buf) {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        prop_assert_eq!(
            got,
            filter.matches(f),
            "classic BPF, {} on {:02x?}",
            filter,
            f
        );
    }
    if !can_load() {
        return Ok(());
    }
    // eBPF: the verifier must accept both variants.
    let test = filter
        .xdp_program_with(OnMatch::Return(XdpAction::Drop), XdpAction::Pass)
        .map_err(|e| TestCaseError::fail(format!("{filter}: {e}")))?;
    let loaded = match Program::load_xdp(&test, &[]) {
        Ok(p) => p,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "{filter}: the verifier refused:\n{}\n{e}",
                test.listing()
            )))
        }
    };
    for f in sample_frames().iter().filter(|f| f.len() >= 14) {
        let r = loaded
            .test_run(f, 1)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = if filter.matches(f) {
            XdpAction::Drop
        } else {
            XdpAction::Pass
        };
        prop_assert_eq!(r.action(), Some(want), "XDP, {} on {:02x?}", filter, f);
    }
    let map = XskMap::new(1).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let steer = filter
        .xdp_program()
        .map_err(|e| TestCaseError::fail(format!("{filter}: {e}")))?;
    if let Err(e) = Program::load_xdp(&steer, &[map.as_fd()]) {
        return Err(TestCaseError::fail(format!(
            "{filter}: the verifier refused the steering program:\n{e}"
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_parse_back(e in expr()) {
        let text = e.to_string();
        let parsed = Filter::parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(parsed.expr(), Some(&e));
    }

    #[test]
    fn grammar_filters_compile_verify_and_agree(e in expr()) {
        check_in_kernel(&Filter::from_expr(e))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn token_soups_never_panic_and_what_parses_compiles(text in soup()) {
        if let Ok(filter) = Filter::parse(&text) {
            check_in_kernel(&filter)?;
        }
    }
}
